# Hand-written codec core (owned by the codec module): wire access, frames,
# field tables and the codec status codes.
src_libwarren_a_SOURCES += \
	src/codec/errors.h src/codec/errors.c \
	src/codec/wire.h \
	src/codec/table.h src/codec/table.c \
	src/codec/frame.h src/codec/frame.c

# Unit tests for the hand-written core (one binary per source file here:
# tables and frames are tested separately so a failure names its half).
check_PROGRAMS += tests/unit/table_test tests/unit/frame_test
TESTS += tests/unit/table_test tests/unit/frame_test

tests_unit_table_test_SOURCES = tests/unit/table_test.c tests/unit/runner.c tests/unit/runner.h
tests_unit_table_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_table_test_LDADD = $(UNIT_LIBS)

tests_unit_frame_test_SOURCES = tests/unit/frame_test.c tests/unit/runner.c tests/unit/runner.h
tests_unit_frame_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_frame_test_LDADD = $(UNIT_LIBS)
