/*
 * The table walk shared by the fuzz targets (see fuzz.h).  It reads every
 * byte a slice points at, so AddressSanitizer checks the slices too, and
 * rebuilds each validated table to check the builder and ftable_equal()
 * against the decoder.
 */
#include <string.h>

#include "fuzz.h"

struct walk {
	const uint8_t *lo; /* the input buffer: every slice lies inside it */
	size_t len;
	unsigned sum;      /* touched bytes, so the reads are not optimised out */
};

static void walk_slice(struct walk *w, const uint8_t *p, size_t n)
{
	if (n == 0)
		return;
	FUZZ_CHECK(p >= w->lo && n <= w->len &&
	           (size_t)(p - w->lo) <= w->len - n);
	for (size_t i = 0; i < n; i++)
		w->sum += p[i];
}

static void walk_table(struct walk *w, struct ftable t, int depth);
static void walk_array(struct walk *w, struct ftable a, int depth);

static void walk_value(struct walk *w, const struct fvalue *v, int depth)
{
	int64_t n;
	bool is_int = fvalue_as_int(v, &n);

	FUZZ_CHECK(strchr("tbBsuIilfdDSxATFV", v->type) != NULL && v->type);
	if (v->type == 'T')
		FUZZ_CHECK(is_int == (v->v.ts <= (uint64_t)INT64_MAX));
	else
		FUZZ_CHECK(is_int == (strchr("bBsuIil", v->type) != NULL));
	switch (v->type) {
	case 'S':
	case 'x':
		walk_slice(w, v->v.str.ptr, v->v.str.len);
		break;
	case 'F':
		walk_table(w, v->v.table, depth + 1);
		break;
	case 'A':
		walk_array(w, v->v.array, depth + 1);
		break;
	default:
		break;
	}
}

static void walk_array(struct walk *w, struct ftable a, int depth)
{
	struct ftable_iter it;
	struct fvalue v;
	int rc;

	FUZZ_CHECK(depth <= FTABLE_MAX_DEPTH);
	walk_slice(w, a.ptr, a.len);
	ftable_iter_init(&it, a);
	while ((rc = farray_next(&it, &v)) > 0)
		walk_value(w, &v, depth);
	FUZZ_CHECK(rc == 0);
}

static void walk_table(struct walk *w, struct ftable t, int depth)
{
	struct ftable_iter it;
	struct bytes key;
	struct fvalue v, found;
	size_t count = 0;
	char ckey[256];
	int rc;

	FUZZ_CHECK(depth <= FTABLE_MAX_DEPTH);
	walk_slice(w, t.ptr, t.len);
	ftable_iter_init(&it, t);
	while ((rc = ftable_next(&it, &key, &v)) > 0) {
		count++;
		FUZZ_CHECK(key.len <= 255);
		walk_slice(w, key.ptr, key.len);
		/* lookups go by C string: keys with a NUL cannot be asked for */
		if (key.len == 0 || memchr(key.ptr, 0, key.len) == NULL) {
			memcpy(ckey, key.ptr, key.len);
			ckey[key.len] = 0;
			FUZZ_CHECK(ftable_get(t, ckey, &found) == 1);
		}
		walk_value(w, &v, depth);
	}
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(ftable_count(t) == count);
}

/* Copy entry by entry: same size (only bool octets may be normalised),
 * still valid, and equal to the original both ways round. */
static void check_copy(struct ftable t, bool is_array)
{
	struct ftable_builder b;
	struct ftable_iter it;
	struct bytes key;
	struct fvalue v;
	struct ftable c;

	ftable_builder_init(&b);
	ftable_iter_init(&it, t);
	if (is_array) {
		while (farray_next(&it, &v) > 0)
			farray_add_value(&b, &v);
	} else {
		while (ftable_next(&it, &key, &v) > 0)
			ftable_put_value(&b, key, &v);
	}
	FUZZ_CHECK(!b.oom);
	c = ftable_builder_get(&b);
	FUZZ_CHECK(c.len == t.len);
	if (is_array) {
		FUZZ_CHECK(farray_validate(c.ptr, c.len, 0) == CODEC_OK);
	} else {
		FUZZ_CHECK(ftable_validate(c.ptr, c.len, 0) == CODEC_OK);
		FUZZ_CHECK(ftable_equal(t, c));
		FUZZ_CHECK(ftable_equal(c, t));
	}
	ftable_builder_free(&b);
}

void fuzz_walk_table(struct ftable t, const uint8_t *lo, size_t len)
{
	struct walk w = { lo, len, 0 };

	walk_table(&w, t, 0);
	check_copy(t, false);
	FUZZ_CHECK(ftable_equal(t, t));
}

void fuzz_walk_array(struct ftable a, const uint8_t *lo, size_t len)
{
	struct walk w = { lo, len, 0 };

	walk_array(&w, a, 0);
	check_copy(a, true);
}
