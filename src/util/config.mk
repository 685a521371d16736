# Configuration file parser (warren.conf) and its key table, which is a
# header-like input to config.c and must ship in the tarball.
src_libwarren_a_SOURCES += src/util/config.h src/util/config.c
EXTRA_DIST += src/util/keys.def etc/warren.conf etc/warrend.service

check_PROGRAMS += tests/unit/config_test
TESTS += tests/unit/config_test
tests_unit_config_test_SOURCES = tests/unit/config_test.c tests/unit/runner.c tests/unit/runner.h
tests_unit_config_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_config_test_LDADD = $(UNIT_LIBS)
