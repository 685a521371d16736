# admin socket and warrenctl fragment: the operator surface.  The user
# database (src/auth/users.*) and the JSON code (src/util/json.*) are listed
# here too: the admin module is their first user.
src_libwarren_a_SOURCES += \
	src/util/json.h src/util/json.c \
	src/auth/users.h src/auth/users.c \
	src/admin/defs.h src/admin/defs_export.c src/admin/defs_import.c \
	src/admin/admin.h src/admin/admin_int.h src/admin/admin.c \
	src/admin/admin_list.c src/admin/admin_ops.c

bin_PROGRAMS += src/warrenctl
src_warrenctl_SOURCES = src/warrenctl.c src/admin/ctl.h src/admin/ctl_fmt.c src/admin/ctl_offline.c
src_warrenctl_LDADD = $(WARREN_LIBS)

dist_man_MANS += man/warrenctl.1

check_PROGRAMS += tests/unit/json_test tests/unit/users_test tests/unit/admin_test
TESTS += tests/unit/json_test tests/unit/users_test tests/unit/admin_test
tests_unit_json_test_SOURCES = tests/unit/json_test.c tests/unit/runner.c tests/unit/runner.h
tests_unit_json_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_json_test_LDADD = $(UNIT_LIBS)
tests_unit_users_test_SOURCES = tests/unit/users_test.c tests/unit/runner.c tests/unit/runner.h
tests_unit_users_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_users_test_LDADD = $(UNIT_LIBS)
tests_unit_admin_test_SOURCES = tests/unit/admin_test.c tests/unit/runner.c tests/unit/runner.h
tests_unit_admin_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_admin_test_LDADD = $(UNIT_LIBS)

# Prometheus metrics endpoint ([metrics] listen).
src_libwarren_a_SOURCES += \
	src/admin/metrics.h src/admin/metrics.c src/admin/metrics_render.c
check_PROGRAMS += tests/unit/metrics_test
TESTS += tests/unit/metrics_test
tests_unit_metrics_test_SOURCES = tests/unit/metrics_test.c tests/unit/runner.c tests/unit/runner.h
tests_unit_metrics_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_metrics_test_LDADD = $(UNIT_LIBS)
