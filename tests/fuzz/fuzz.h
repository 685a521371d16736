/*
 * What every fuzz target shares: the libFuzzer entry point (called by
 * libFuzzer itself, or by replay_main.c under `make check`) and FUZZ_CHECK,
 * which turns a broken invariant into a crash the fuzzer records.  A plain
 * decode error is not a finding; only a crash, a sanitizer report or a
 * failed FUZZ_CHECK is.
 */
#ifndef WARREN_TESTS_FUZZ_H
#define WARREN_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "codec/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline _Noreturn void fuzz_fail(const char *what, const char *file,
                                       int line)
{
	fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, what);
	abort();
}

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			fuzz_fail(#cond, __FILE__, __LINE__); \
	} while (0)

/*
 * Walk a table (or array) that validated, to the bottom, checking what
 * validation promises: the iterators never fail, nesting stays within
 * FTABLE_MAX_DEPTH, every slice lies inside [lo, lo + len), lookups find
 * every key, and a copy made through the builder compares equal.
 */
void fuzz_walk_table(struct ftable t, const uint8_t *lo, size_t len);
void fuzz_walk_array(struct ftable a, const uint8_t *lo, size_t len);

#endif
