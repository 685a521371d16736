# fragment: see Makefile.am
# Hash map (bytes -> pointer) shared by the broker modules.
src_libwarren_a_SOURCES += src/util/hmap.h src/util/hmap.c

check_PROGRAMS += tests/unit/hmap_test
TESTS += tests/unit/hmap_test
tests_unit_hmap_test_SOURCES = tests/unit/hmap_test.c tests/unit/runner.c tests/unit/runner.h
tests_unit_hmap_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_hmap_test_LDADD = $(UNIT_LIBS)
