# Message store (src/store/README): segments, group commit thread,
# recovery, compaction, definitions file, offline checker.
src_libwarren_a_SOURCES += \
	src/store/store.h src/store/store_int.h \
	src/store/crc32c.h src/store/crc32c.c src/store/crc32c_table.h \
	src/store/format.h src/store/format.c \
	src/store/idx.h src/store/idx.c \
	src/store/store.c src/store/write.c src/store/flusher.c \
	src/store/compact.c src/store/recover.c src/store/checkpoint.c \
	src/store/defs.c src/store/fsck.c
EXTRA_DIST += src/store/README

check_PROGRAMS += tests/unit/store_test
TESTS += tests/unit/store_test
tests_unit_store_test_SOURCES = tests/unit/store_test.c tests/unit/store_test_recover.c \
	tests/unit/store_test_space.c tests/unit/store_test_fsck.c \
	tests/unit/store_test_util.c tests/unit/store_test_util.h \
	tests/unit/runner.c tests/unit/runner.h
tests_unit_store_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_store_test_LDADD = $(UNIT_LIBS)
# Format-1 fixtures, found through $top_srcdir (see store_test_fsck.c).
EXTRA_DIST += \
	tests/unit/data/store/v1-clean/msgs/00000001.seg \
	tests/unit/data/store/v1-clean/msgs/00000002.seg \
	tests/unit/data/store/v1-torn/msgs/00000001.seg \
	tests/unit/data/store/v1-torn/msgs/00000002.seg \
	tests/unit/data/store/v1-damaged/msgs/00000001.seg \
	tests/unit/data/store/v1-damaged/msgs/00000002.seg \
	tests/unit/data/store/v1-badheader/msgs/00000001.seg \
	tests/unit/data/store/v1-badheader/msgs/00000002.seg

# Store benchmark, built on demand like bench/route_bench (broker.mk sets
# EXTRA_PROGRAMS first): make bench/store_bench && bench/store_bench --help
EXTRA_PROGRAMS += bench/store_bench
CLEANFILES += bench/store_bench
bench_store_bench_SOURCES = bench/store_bench.c
bench_store_bench_LDADD = $(WARREN_LIBS)
