# Fuzz targets (see tests/fuzz/README).  Each target is built here as a
# replay binary: the target linked with replay_main.c instead of libFuzzer,
# run by `make check` over its committed corpus.  run-libfuzzer.sh builds
# the real libFuzzer binaries with clang.
FUZZ_REPLAY_SOURCES = tests/fuzz/replay_main.c tests/fuzz/walk.c tests/fuzz/fuzz.h

check_PROGRAMS += tests/fuzz/fuzz_table_replay tests/fuzz/fuzz_frame_replay
TESTS += tests/fuzz/fuzz_table_replay tests/fuzz/fuzz_frame_replay

tests_fuzz_fuzz_table_replay_SOURCES = tests/fuzz/fuzz_table.c $(FUZZ_REPLAY_SOURCES)
tests_fuzz_fuzz_table_replay_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_TARGET=fuzz_table
tests_fuzz_fuzz_table_replay_LDADD = $(WARREN_LIBS)

tests_fuzz_fuzz_frame_replay_SOURCES = tests/fuzz/fuzz_frame.c $(FUZZ_REPLAY_SOURCES)
tests_fuzz_fuzz_frame_replay_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_TARGET=fuzz_frame
tests_fuzz_fuzz_frame_replay_LDADD = $(WARREN_LIBS)

# The corpus directories are distributed whole (automake copies a listed
# directory recursively), so new seeds and crash reproducers need no edit
# here.
EXTRA_DIST += \
	tests/fuzz/README \
	tests/fuzz/corpus \
	tests/fuzz/make-seeds.py \
	tests/fuzz/run-libfuzzer.sh
