/*
 * Field tables and arrays: the builder, validation, iteration, lookup and
 * comparison.  Encodings are pinned with hand-written bytes, and malformed
 * input is fed from exactly-sized heap copies so that AddressSanitizer
 * catches any read past the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "codec/table.h"

/* An exactly-sized heap copy: reading one byte past it trips ASan. */
static uint8_t *dup_exact(const uint8_t *p, size_t len)
{
	uint8_t *d = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(d);
	if (len)
		memcpy(d, p, len);
	return d;
}

static void assert_bytes(struct ftable t, const uint8_t *want, size_t n)
{
	ck_assert_uint_eq(t.len, n);
	ck_assert_int_eq(memcmp(t.ptr, want, n), 0);
}

static struct ftable ft(const uint8_t *p, size_t n)
{
	struct ftable t = { p, n };
	return t;
}

/* A table with one value of every type, used by several tests. */
static const uint8_t bin_data[] = { 0x00, 0xff, 0x10 };

static void build_rich(struct ftable_builder *b, struct ftable_builder *inner,
                       struct ftable_builder *arr)
{
	struct fvalue v;

	ftable_builder_init(inner);
	ftable_put_str(inner, "deep", bytes_of("value"));
	ftable_put_int(inner, "n", 'l', -7);

	ftable_builder_init(arr);
	v.type = 'I';
	v.v.i32 = 42;
	farray_add_value(arr, &v);
	v.type = 'S';
	v.v.str = bytes_of("elem");
	farray_add_value(arr, &v);
	v.type = 'F';
	v.v.table = ftable_builder_get(inner);
	farray_add_value(arr, &v);
	v.type = 'V';
	farray_add_value(arr, &v);

	ftable_builder_init(b);
	ftable_put_bool(b, "bool", true);
	ftable_put_int(b, "i8", 'b', -5);
	ftable_put_int(b, "u8", 'B', 250);
	ftable_put_int(b, "i16", 's', -30000);
	ftable_put_int(b, "u16", 'u', 65000);
	ftable_put_int(b, "i32", 'I', -2000000000);
	ftable_put_int(b, "u32", 'i', 4000000000);
	ftable_put_int(b, "i64", 'l', INT64_MIN);
	ftable_put_float(b, "float", 1.5f);
	ftable_put_double(b, "double", -2.25);
	ftable_put_decimal(b, "dec", 2, 12345);
	ftable_put_str(b, "str", bytes_of("hello"));
	struct bytes bin = { bin_data, sizeof(bin_data) };
	ftable_put_bytes(b, "bin", bin);
	ftable_put_array(b, "arr", ftable_builder_get(arr));
	ftable_put_int(b, "ts", 'T', 1700000000);
	ftable_put_table(b, "tbl", ftable_builder_get(inner));
	ftable_put_void(b, "void");
	ck_assert(!b->oom && !inner->oom && !arr->oom);
}

static void free_rich(struct ftable_builder *b, struct ftable_builder *inner,
                      struct ftable_builder *arr)
{
	ftable_builder_free(b);
	ftable_builder_free(inner);
	ftable_builder_free(arr);
}

static void next_entry(struct ftable_iter *it, const char *key,
                       char type, struct fvalue *v)
{
	struct bytes k;
	ck_assert_int_eq(ftable_next(it, &k, v), 1);
	ck_assert_msg(bytes_eq_str(k, key), "expected key %s", key);
	ck_assert_int_eq(v->type, type);
}

START_TEST(test_round_trip_every_type)
{
	struct ftable_builder b, inner, arr;
	struct ftable_iter it, ait, iit;
	struct fvalue v, e;
	struct bytes k;

	build_rich(&b, &inner, &arr);
	struct ftable t = ftable_builder_get(&b);
	ck_assert_int_eq(ftable_validate(t.ptr, t.len, 0), CODEC_OK);
	ck_assert_uint_eq(ftable_count(t), 17);

	ftable_iter_init(&it, t);
	next_entry(&it, "bool", 't', &v);
	ck_assert(v.v.b);
	next_entry(&it, "i8", 'b', &v);
	ck_assert_int_eq(v.v.i8, -5);
	next_entry(&it, "u8", 'B', &v);
	ck_assert_uint_eq(v.v.u8, 250);
	next_entry(&it, "i16", 's', &v);
	ck_assert_int_eq(v.v.i16, -30000);
	next_entry(&it, "u16", 'u', &v);
	ck_assert_uint_eq(v.v.u16, 65000);
	next_entry(&it, "i32", 'I', &v);
	ck_assert_int_eq(v.v.i32, -2000000000);
	next_entry(&it, "u32", 'i', &v);
	ck_assert_uint_eq(v.v.u32, 4000000000u);
	next_entry(&it, "i64", 'l', &v);
	ck_assert(v.v.i64 == INT64_MIN);
	next_entry(&it, "float", 'f', &v);
	ck_assert(v.v.f == 1.5f);
	next_entry(&it, "double", 'd', &v);
	ck_assert(v.v.d == -2.25);
	next_entry(&it, "dec", 'D', &v);
	ck_assert_uint_eq(v.v.dec.scale, 2);
	ck_assert_uint_eq(v.v.dec.value, 12345);
	next_entry(&it, "str", 'S', &v);
	ck_assert(bytes_eq_str(v.v.str, "hello"));
	next_entry(&it, "bin", 'x', &v);
	ck_assert_uint_eq(v.v.str.len, 3);
	ck_assert_int_eq(memcmp(v.v.str.ptr, bin_data, 3), 0);

	next_entry(&it, "arr", 'A', &v);
	ftable_iter_init(&ait, v.v.array);
	ck_assert_int_eq(farray_next(&ait, &e), 1);
	ck_assert_int_eq(e.type, 'I');
	ck_assert_int_eq(e.v.i32, 42);
	ck_assert_int_eq(farray_next(&ait, &e), 1);
	ck_assert_int_eq(e.type, 'S');
	ck_assert(bytes_eq_str(e.v.str, "elem"));
	ck_assert_int_eq(farray_next(&ait, &e), 1);
	ck_assert_int_eq(e.type, 'F');
	ck_assert(ftable_equal(e.v.table, ftable_builder_get(&inner)));
	ck_assert_int_eq(farray_next(&ait, &e), 1);
	ck_assert_int_eq(e.type, 'V');
	ck_assert_int_eq(farray_next(&ait, &e), 0);

	next_entry(&it, "ts", 'T', &v);
	ck_assert(v.v.ts == 1700000000u);

	next_entry(&it, "tbl", 'F', &v);
	ftable_iter_init(&iit, v.v.table);
	ck_assert_int_eq(ftable_next(&iit, &k, &e), 1);
	ck_assert(bytes_eq_str(k, "deep"));
	ck_assert(bytes_eq_str(e.v.str, "value"));
	ck_assert_int_eq(ftable_next(&iit, &k, &e), 1);
	ck_assert(bytes_eq_str(k, "n"));
	ck_assert(e.v.i64 == -7);
	ck_assert_int_eq(ftable_next(&iit, &k, &e), 0);

	next_entry(&it, "void", 'V', &v);
	ck_assert_int_eq(ftable_next(&it, &k, &v), 0);
	/* the end is sticky */
	ck_assert_int_eq(ftable_next(&it, &k, &v), 0);

	free_rich(&b, &inner, &arr);
}
END_TEST

/* Copying every decoded value into a new table reproduces the bytes. */
START_TEST(test_copy_values_is_byte_exact)
{
	struct ftable_builder b, inner, arr, copy, acopy;
	struct ftable_iter it, ait;
	struct fvalue v, e;
	struct bytes k;

	build_rich(&b, &inner, &arr);
	struct ftable t = ftable_builder_get(&b);
	ftable_builder_init(&copy);
	ftable_iter_init(&it, t);
	while (ftable_next(&it, &k, &v) > 0)
		ftable_put_value(&copy, k, &v);
	ck_assert(!copy.oom);
	assert_bytes(ftable_builder_get(&copy), t.ptr, t.len);

	struct ftable a = ftable_builder_get(&arr);
	ftable_builder_init(&acopy);
	ftable_iter_init(&ait, a);
	while (farray_next(&ait, &e) > 0)
		farray_add_value(&acopy, &e);
	assert_bytes(ftable_builder_get(&acopy), a.ptr, a.len);

	ftable_builder_free(&copy);
	ftable_builder_free(&acopy);
	free_rich(&b, &inner, &arr);
}
END_TEST

/* ---- byte-exact encodings, one vector per type ----------------------- */

struct enc_vec {
	const char *name;
	void (*put)(struct ftable_builder *b);
	uint8_t want[32];
	size_t want_len;
};

static void put_t(struct ftable_builder *b) { ftable_put_bool(b, "k", true); }
static void put_t0(struct ftable_builder *b) { ftable_put_bool(b, "k", false); }
static void put_b(struct ftable_builder *b) { ftable_put_int(b, "k", 'b', -2); }
static void put_B(struct ftable_builder *b) { ftable_put_int(b, "k", 'B', 0xAB); }
static void put_s(struct ftable_builder *b) { ftable_put_int(b, "k", 's', -2); }
static void put_u(struct ftable_builder *b) { ftable_put_int(b, "k", 'u', 0x1234); }
static void put_I(struct ftable_builder *b) { ftable_put_int(b, "k", 'I', -2); }
static void put_i(struct ftable_builder *b) { ftable_put_int(b, "k", 'i', 0x89ABCDEF); }
static void put_l(struct ftable_builder *b) { ftable_put_int(b, "k", 'l', 0x0102030405060708); }
static void put_T(struct ftable_builder *b) { ftable_put_int(b, "k", 'T', 0x0000000065000000); }
static void put_f(struct ftable_builder *b) { ftable_put_float(b, "k", 1.0f); }
static void put_d(struct ftable_builder *b) { ftable_put_double(b, "k", -2.0); }
static void put_D(struct ftable_builder *b) { ftable_put_decimal(b, "k", 3, 0x00000100); }
static void put_S(struct ftable_builder *b) { ftable_put_str(b, "k", bytes_of("ab")); }
static void put_x(struct ftable_builder *b) { ftable_put_bytes(b, "k", bytes_of("\x01")); }
static void put_V(struct ftable_builder *b) { ftable_put_void(b, "k"); }
static void put_F(struct ftable_builder *b)
{
	static const uint8_t inner[] = { 1, 'a', 't', 1 };
	ftable_put_table(b, "k", ft(inner, sizeof(inner)));
}
static void put_A(struct ftable_builder *b)
{
	static const uint8_t elems[] = { 'B', 7, 'V' };
	ftable_put_array(b, "k", ft(elems, sizeof(elems)));
}
static void put_two(struct ftable_builder *b)
{
	ftable_put_int(b, "a", 'u', 1);
	ftable_put_str(b, "", bytes_of(""));
}

static const struct enc_vec enc_vecs[] = {
	{ "t", put_t, { 1, 'k', 't', 1 }, 4 },
	{ "t0", put_t0, { 1, 'k', 't', 0 }, 4 },
	{ "b", put_b, { 1, 'k', 'b', 0xFE }, 4 },
	{ "B", put_B, { 1, 'k', 'B', 0xAB }, 4 },
	{ "s", put_s, { 1, 'k', 's', 0xFF, 0xFE }, 5 },
	{ "u", put_u, { 1, 'k', 'u', 0x12, 0x34 }, 5 },
	{ "I", put_I, { 1, 'k', 'I', 0xFF, 0xFF, 0xFF, 0xFE }, 7 },
	{ "i", put_i, { 1, 'k', 'i', 0x89, 0xAB, 0xCD, 0xEF }, 7 },
	{ "l", put_l, { 1, 'k', 'l', 1, 2, 3, 4, 5, 6, 7, 8 }, 11 },
	{ "T", put_T, { 1, 'k', 'T', 0, 0, 0, 0, 0x65, 0, 0, 0 }, 11 },
	{ "f", put_f, { 1, 'k', 'f', 0x3F, 0x80, 0, 0 }, 7 },
	{ "d", put_d, { 1, 'k', 'd', 0xC0, 0, 0, 0, 0, 0, 0, 0 }, 11 },
	{ "D", put_D, { 1, 'k', 'D', 3, 0, 0, 1, 0 }, 8 },
	{ "S", put_S, { 1, 'k', 'S', 0, 0, 0, 2, 'a', 'b' }, 9 },
	{ "x", put_x, { 1, 'k', 'x', 0, 0, 0, 1, 1 }, 8 },
	{ "V", put_V, { 1, 'k', 'V' }, 3 },
	{ "F", put_F, { 1, 'k', 'F', 0, 0, 0, 4, 1, 'a', 't', 1 }, 11 },
	{ "A", put_A, { 1, 'k', 'A', 0, 0, 0, 3, 'B', 7, 'V' }, 10 },
	{ "two", put_two, { 1, 'a', 'u', 0, 1, 0, 'S', 0, 0, 0, 0 }, 11 },
};

START_TEST(test_encoding_exact)
{
	const struct enc_vec *ev = &enc_vecs[_i];
	struct ftable_builder b;

	ftable_builder_init(&b);
	ev->put(&b);
	ck_assert_msg(!b.oom, "%s: build failed", ev->name);
	struct ftable t = ftable_builder_get(&b);
	ck_assert_msg(t.len == ev->want_len && memcmp(t.ptr, ev->want, t.len) == 0,
	              "%s: encoding differs", ev->name);

	/* the hand-written bytes decode back to the same table */
	uint8_t *copy = dup_exact(ev->want, ev->want_len);
	ck_assert_int_eq(ftable_validate(copy, ev->want_len, 0), CODEC_OK);
	ck_assert(ftable_equal(ft(copy, ev->want_len), t));
	free(copy);
	ftable_builder_free(&b);
}
END_TEST

START_TEST(test_wr_rd_table)
{
	static const uint8_t contents[] = { 1, 'k', 'B', 9 };
	static const uint8_t want[] = { 0, 0, 0, 4, 1, 'k', 'B', 9 };
	uint8_t out[16];
	struct wr w = wr_init(out, sizeof(out));
	struct ftable t;

	ck_assert_int_eq(wr_table(&w, ft(contents, sizeof(contents))), CODEC_OK);
	ck_assert_uint_eq(w.left, sizeof(out) - sizeof(want));
	ck_assert_int_eq(memcmp(out, want, sizeof(want)), 0);

	struct rd r = rd_init(out, sizeof(want));
	ck_assert_int_eq(rd_table(&r, &t), CODEC_OK);
	ck_assert_uint_eq(r.left, 0);
	assert_bytes(t, contents, sizeof(contents));

	/* too small a buffer, including one with room for the prefix only */
	w = wr_init(out, 4);
	ck_assert_int_eq(wr_table(&w, ft(contents, sizeof(contents))), CODEC_E_NOSPACE);
	w = wr_init(out, 7);
	ck_assert_int_eq(wr_table(&w, ft(contents, sizeof(contents))), CODEC_E_NOSPACE);
	w = wr_init(out, 2);
	ck_assert_int_eq(wr_table(&w, ft(contents, sizeof(contents))), CODEC_E_NOSPACE);

	/* empty table */
	w = wr_init(out, 4);
	ck_assert_int_eq(wr_table(&w, ft(NULL, 0)), CODEC_OK);
	r = rd_init(out, 4);
	ck_assert_int_eq(rd_table(&r, &t), CODEC_OK);
	ck_assert_uint_eq(t.len, 0);
	ck_assert_uint_eq(ftable_count(t), 0);
}
END_TEST

START_TEST(test_rd_table_rejects_bad_contents)
{
	static const uint8_t bad_type[] = { 0, 0, 0, 3, 1, 'k', 'Z' };
	static const uint8_t bad_inner[] = { 0, 0, 0, 5, 1, 'k', 'S', 0, 0 };
	struct ftable t;
	struct rd r;

	r = rd_init(bad_type, sizeof(bad_type));
	ck_assert_int_eq(rd_table(&r, &t), CODEC_E_FIELD_TYPE);
	r = rd_init(bad_inner, sizeof(bad_inner));
	ck_assert_int_eq(rd_table(&r, &t), CODEC_E_TRUNCATED);
}
END_TEST

/* ---- nesting ---------------------------------------------------------- */

/*
 * A table whose containers nest `levels` deep below the top level.  pattern
 * 'F': all tables, {"n": {"n": ... {"leaf": true}}}; 'A': all arrays,
 * {"n": [[... [true]]]}; 'M': tables and arrays alternating.
 */
static uint8_t *nest(int levels, char pattern, size_t *len)
{
	char *kinds = malloc((size_t)levels + 1);
	uint8_t *buf, *nb;
	size_t n;
	int i;

	ck_assert_ptr_nonnull(kinds);
	for (i = 0; i < levels; i++)
		kinds[i] = pattern == 'M' ? (i % 2 ? 'A' : 'F') : pattern;

	/* the innermost contents: a table entry or an array element */
	if (levels > 0 && kinds[levels - 1] == 'A') {
		static const uint8_t elem[] = { 't', 1 };
		buf = dup_exact(elem, sizeof(elem));
		n = sizeof(elem);
	} else {
		static const uint8_t entry[] = { 4, 'l', 'e', 'a', 'f', 't', 1 };
		buf = dup_exact(entry, sizeof(entry));
		n = sizeof(entry);
	}
	/* wrap: the container at depth i holds a value of kind kinds[i] */
	for (i = levels - 1; i >= 0; i--) {
		int in_table = i == 0 || kinds[i - 1] == 'F';
		size_t hdr = 5 + (in_table ? 2 : 0);
		nb = malloc(n + hdr);
		ck_assert_ptr_nonnull(nb);
		struct wr w = wr_init(nb, n + hdr);
		if (in_table)
			wr_shortstr(&w, bytes_of("n"));
		wr_u8(&w, (uint8_t)kinds[i]);
		wr_u32(&w, (uint32_t)n);
		wr_raw(&w, buf, n);
		ck_assert_uint_eq(w.left, 0);
		free(buf);
		buf = nb;
		n += hdr;
	}
	free(kinds);
	*len = n;
	return buf;
}

START_TEST(test_depth_limit)
{
	static const char patterns[] = "FAM";
	size_t len;
	uint8_t *p;

	/* The top-level table is depth 0; nested tables and arrays may go
	 * down to FTABLE_MAX_DEPTH and no further. */
	for (const char *pat = patterns; *pat; pat++) {
		p = nest(FTABLE_MAX_DEPTH, *pat, &len);
		ck_assert_msg(ftable_validate(p, len, 0) == CODEC_OK, "%c", *pat);
		ck_assert_int_eq(ftable_validate(p, len, 1), CODEC_E_TABLE_DEPTH);
		uint8_t *wrapped = malloc(len + 4);
		ck_assert_ptr_nonnull(wrapped);
		struct wr w = wr_init(wrapped, len + 4);
		ck_assert_int_eq(wr_table(&w, ft(p, len)), CODEC_OK);
		struct rd r = rd_init(wrapped, len + 4);
		struct ftable t;
		ck_assert_int_eq(rd_table(&r, &t), CODEC_OK);
		free(wrapped);
		free(p);

		p = nest(FTABLE_MAX_DEPTH + 1, *pat, &len);
		ck_assert_msg(ftable_validate(p, len, 0) == CODEC_E_TABLE_DEPTH,
		              "%c", *pat);
		free(p);
	}

	/* very deep input is refused, not recursed into */
	p = nest(2000, 'F', &len);
	ck_assert_int_eq(ftable_validate(p, len, 0), CODEC_E_TABLE_DEPTH);
	ck_assert(ftable_equal(ft(p, len), ft(p, len)));
	/* a copy at a different address, so the byte fast path is skipped */
	uint8_t *q = dup_exact(p, len);
	q[len - 1] = 0; /* the leaf differs: true vs false */
	ck_assert(!ftable_equal(ft(p, len), ft(q, len)));
	free(q);
	free(p);
}
END_TEST

START_TEST(test_nested_iteration)
{
	size_t len;
	uint8_t *p = nest(5, 'F', &len);
	struct ftable t = ft(p, len);
	struct fvalue v;
	int levels = 0;

	ck_assert_int_eq(ftable_validate(p, len, 0), CODEC_OK);
	while (ftable_get(t, "n", &v)) {
		ck_assert_int_eq(v.type, 'F');
		t = v.v.table;
		levels++;
	}
	ck_assert_int_eq(levels, 5);
	ck_assert_int_eq(ftable_get(t, "leaf", &v), 1);
	ck_assert_int_eq(v.type, 't');
	ck_assert(v.v.b);
	free(p);
}
END_TEST

/* ---- malformed input -------------------------------------------------- */

START_TEST(test_every_truncation)
{
	struct ftable_builder b, inner, arr;
	uint8_t enc[1024];
	size_t bounds[32], nb = 0;
	struct ftable_iter it;
	struct bytes k;
	struct fvalue v;

	build_rich(&b, &inner, &arr);
	struct ftable t = ftable_builder_get(&b);
	struct wr w = wr_init(enc, sizeof(enc));
	ck_assert_int_eq(wr_table(&w, t), CODEC_OK);
	size_t total = sizeof(enc) - w.left;

	/* entry boundaries of the contents: cutting there leaves a valid,
	 * shorter table */
	ftable_iter_init(&it, t);
	bounds[nb++] = 0;
	while (ftable_next(&it, &k, &v) > 0)
		bounds[nb++] = t.len - it.r.left;

	for (size_t cut = 0; cut < total; cut++) {
		uint8_t *p = dup_exact(enc, cut);
		struct rd r = rd_init(p, cut);
		struct ftable out;
		ck_assert_msg(rd_table(&r, &out) == CODEC_E_TRUNCATED,
		              "length-prefixed cut at %zu", cut);
		free(p);
	}
	for (size_t cut = 0; cut <= t.len; cut++) {
		int boundary = 0;
		for (size_t i = 0; i < nb; i++)
			boundary |= bounds[i] == cut;
		uint8_t *p = dup_exact(t.ptr, cut);
		int rc = ftable_validate(p, cut, 0);
		ck_assert_msg(rc == (boundary ? CODEC_OK : CODEC_E_TRUNCATED),
		              "contents cut at %zu: %d", cut, rc);
		/* the iterator on its own stops with an error, never crashes */
		struct ftable_iter it2;
		ftable_iter_init(&it2, ft(p, cut));
		int r2;
		while ((r2 = ftable_next(&it2, &k, &v)) > 0)
			;
		ck_assert_int_eq(r2, boundary ? 0 : CODEC_E_TRUNCATED);
		free(p);
	}
	free_rich(&b, &inner, &arr);
}
END_TEST

START_TEST(test_unknown_type_letter)
{
	/* the letters and the size of their (all-zero) payloads: zero is a
	 * valid value of every type and an empty length-prefixed one */
	static const char known[] = "tbBsuIilfdDSxATFV";
	static const size_t sizes[] = { 1, 1, 1, 2, 2, 4, 4, 8, 4, 8, 5,
	                                4, 4, 4, 8, 4, 0 };
	for (int c = 0; c < 256; c++) {
		const char *k = c != 0 ? strchr(known, c) : NULL;
		size_t vsize = k ? sizes[k - known] : 8;
		uint8_t tb[11] = { 1, 'k', (uint8_t)c };
		uint8_t ab[9] = { (uint8_t)c };
		uint8_t *pt = dup_exact(tb, 3 + vsize);
		uint8_t *pa = dup_exact(ab, 1 + vsize);
		int rt = ftable_validate(pt, 3 + vsize, 0);
		int ra = farray_validate(pa, 1 + vsize, 0);
		int want = k ? CODEC_OK : CODEC_E_FIELD_TYPE;
		ck_assert_msg(rt == want, "table, byte %d: %d", c, rt);
		ck_assert_msg(ra == want, "array, byte %d: %d", c, ra);
		/* one byte short of the value: truncated, for known letters */
		if (k && vsize > 0) {
			ck_assert_int_eq(ftable_validate(pt, 2 + vsize, 0),
			                 CODEC_E_TRUNCATED);
			ck_assert_int_eq(farray_validate(pa, vsize, 0),
			                 CODEC_E_TRUNCATED);
		}
		free(pt);
		free(pa);
	}

	/* an unknown letter deep inside is found too */
	static const uint8_t nested[] = {
		1, 'o', 'F', 0, 0, 0, 10,
		1, 'a', 'A', 0, 0, 0, 3, 'B', 1, 'U',
	};
	ck_assert_int_eq(ftable_validate(nested, sizeof(nested), 0), CODEC_E_FIELD_TYPE);
	/* but the first level can still be iterated */
	struct ftable_iter it;
	struct bytes k;
	struct fvalue v;
	ftable_iter_init(&it, ft(nested, sizeof(nested)));
	ck_assert_int_eq(ftable_next(&it, &k, &v), 1);
	ck_assert_int_eq(v.type, 'F');
}
END_TEST

START_TEST(test_huge_lengths)
{
	/* lengths near 2^32 must be compared with what is left, not added */
	static const uint8_t s[] = { 1, 'k', 'S', 0xFF, 0xFF, 0xFF, 0xFF, 'x' };
	static const uint8_t f[] = { 1, 'k', 'F', 0xFF, 0xFF, 0xFF, 0xFC };
	static const uint8_t key[] = { 0xFF, 'k' };
	uint8_t *p;

	p = dup_exact(s, sizeof(s));
	ck_assert_int_eq(ftable_validate(p, sizeof(s), 0), CODEC_E_TRUNCATED);
	free(p);
	p = dup_exact(f, sizeof(f));
	ck_assert_int_eq(ftable_validate(p, sizeof(f), 0), CODEC_E_TRUNCATED);
	free(p);
	p = dup_exact(key, sizeof(key));
	ck_assert_int_eq(ftable_validate(p, sizeof(key), 0), CODEC_E_TRUNCATED);
	free(p);
	struct rd r = rd_init(s + 3, 5);
	struct ftable t;
	ck_assert_int_eq(rd_table(&r, &t), CODEC_E_TRUNCATED);
}
END_TEST

/* ---- lookup, comparison, integers ------------------------------------- */

START_TEST(test_get)
{
	struct ftable_builder b;
	struct fvalue v;

	ftable_builder_init(&b);
	ftable_put_str(&b, "x-queue-type", bytes_of("quorum"));
	ftable_put_int(&b, "x-max-length", 'l', 100);
	ftable_put_int(&b, "x-max-length", 'l', 200); /* duplicate: first wins */
	ftable_put_void(&b, "");
	struct ftable t = ftable_builder_get(&b);

	ck_assert_int_eq(ftable_get(t, "x-queue-type", &v), 1);
	ck_assert(bytes_eq_str(v.v.str, "quorum"));
	ck_assert_int_eq(ftable_get(t, "x-max-length", &v), 1);
	ck_assert(v.v.i64 == 100);
	ck_assert_int_eq(ftable_get(t, "", &v), 1);
	ck_assert_int_eq(v.type, 'V');
	ck_assert_int_eq(ftable_get(t, "x-max", &v), 0);
	ck_assert_int_eq(ftable_get(t, "x-queue-typeX", &v), 0);
	ck_assert_int_eq(ftable_get(ft(NULL, 0), "a", &v), 0);

	/* malformed before the key: absent, not found */
	static const uint8_t bad[] = { 1, 'a', 'Z', 1, 'b', 'V' };
	ck_assert_int_eq(ftable_get(ft(bad, sizeof(bad)), "b", &v), 0);
	ftable_builder_free(&b);
}
END_TEST

START_TEST(test_as_int)
{
	struct fvalue v;
	int64_t n;

	v.type = 'b'; v.v.i8 = -128;
	ck_assert(fvalue_as_int(&v, &n) && n == -128);
	v.type = 'B'; v.v.u8 = 255;
	ck_assert(fvalue_as_int(&v, &n) && n == 255);
	v.type = 's'; v.v.i16 = -32768;
	ck_assert(fvalue_as_int(&v, &n) && n == -32768);
	v.type = 'u'; v.v.u16 = 65535;
	ck_assert(fvalue_as_int(&v, &n) && n == 65535);
	v.type = 'I'; v.v.i32 = INT32_MIN;
	ck_assert(fvalue_as_int(&v, &n) && n == INT32_MIN);
	v.type = 'i'; v.v.u32 = UINT32_MAX;
	ck_assert(fvalue_as_int(&v, &n) && n == (int64_t)UINT32_MAX);
	v.type = 'l'; v.v.i64 = INT64_MAX;
	ck_assert(fvalue_as_int(&v, &n) && n == INT64_MAX);
	v.type = 'T'; v.v.ts = 1234;
	ck_assert(fvalue_as_int(&v, &n) && n == 1234);
	v.type = 'T'; v.v.ts = (uint64_t)INT64_MAX + 1;
	ck_assert(!fvalue_as_int(&v, &n));

	static const char not_int[] = "tfdDSxAFV";
	for (const char *c = not_int; *c; c++) {
		memset(&v, 0, sizeof(v));
		v.type = *c;
		n = 77;
		ck_assert_msg(!fvalue_as_int(&v, &n), "type %c", *c);
		ck_assert(n == 77);
	}

	/* through the decoder: sign extension of the narrow signed types */
	static const uint8_t enc[] = { 1, 'a', 'b', 0x80, 1, 'b', 's', 0xFF, 0xFF };
	ck_assert_int_eq(ftable_get(ft(enc, sizeof(enc)), "a", &v), 1);
	ck_assert(fvalue_as_int(&v, &n) && n == -128);
	ck_assert_int_eq(ftable_get(ft(enc, sizeof(enc)), "b", &v), 1);
	ck_assert(fvalue_as_int(&v, &n) && n == -1);
}
END_TEST

START_TEST(test_equal)
{
	struct ftable_builder a, b, c, d, na, nb;

	ftable_builder_init(&na);
	ftable_put_str(&na, "p", bytes_of("q"));
	ftable_put_int(&na, "r", 'I', 1);
	ftable_builder_init(&nb);
	ftable_put_int(&nb, "r", 'I', 1);
	ftable_put_str(&nb, "p", bytes_of("q"));

	ftable_builder_init(&a);
	ftable_put_str(&a, "x-dead-letter-exchange", bytes_of("dlx"));
	ftable_put_int(&a, "x-max-length", 'I', 10);
	ftable_put_table(&a, "nested", ftable_builder_get(&na));
	ftable_put_bool(&a, "flag", true);

	/* same entries in another order, nested table reordered too, and
	 * the integer sent at another width */
	ftable_builder_init(&b);
	ftable_put_bool(&b, "flag", true);
	ftable_put_table(&b, "nested", ftable_builder_get(&nb));
	ftable_put_int(&b, "x-max-length", 'l', 10);
	ftable_put_str(&b, "x-dead-letter-exchange", bytes_of("dlx"));

	ck_assert(ftable_equal(ftable_builder_get(&a), ftable_builder_get(&b)));
	ck_assert(ftable_equal(ftable_builder_get(&b), ftable_builder_get(&a)));
	ck_assert(ftable_equal(ftable_builder_get(&a), ftable_builder_get(&a)));

	/* one value differs */
	ftable_builder_init(&c);
	ftable_put_bool(&c, "flag", false);
	ftable_put_table(&c, "nested", ftable_builder_get(&nb));
	ftable_put_int(&c, "x-max-length", 'l', 10);
	ftable_put_str(&c, "x-dead-letter-exchange", bytes_of("dlx"));
	ck_assert(!ftable_equal(ftable_builder_get(&a), ftable_builder_get(&c)));

	/* a subset is not equal, either way round */
	ftable_builder_init(&d);
	ftable_put_bool(&d, "flag", true);
	ck_assert(!ftable_equal(ftable_builder_get(&a), ftable_builder_get(&d)));
	ck_assert(!ftable_equal(ftable_builder_get(&d), ftable_builder_get(&a)));
	ck_assert(!ftable_equal(ftable_builder_get(&d), ft(NULL, 0)));
	ck_assert(ftable_equal(ft(NULL, 0), ft(NULL, 0)));

	ftable_builder_free(&a);
	ftable_builder_free(&b);
	ftable_builder_free(&c);
	ftable_builder_free(&d);
	ftable_builder_free(&na);
	ftable_builder_free(&nb);
}
END_TEST

/* Single-entry tables "k" -> value, compared pairwise. */
struct eq_vec {
	uint8_t a[16], b[16];
	size_t alen, blen;
	bool equal;
};

static const struct eq_vec eq_vecs[] = {
	/* integer widths compare by value */
	{ { 1, 'k', 'B', 5 }, { 1, 'k', 'l', 0, 0, 0, 0, 0, 0, 0, 5 }, 4, 11, true },
	{ { 1, 'k', 'b', 0xFF }, { 1, 'k', 'I', 0xFF, 0xFF, 0xFF, 0xFF }, 4, 7, true },
	{ { 1, 'k', 'B', 0xFF }, { 1, 'k', 'b', 0xFF }, 4, 4, false },
	{ { 1, 'k', 'i', 0xFF, 0xFF, 0xFF, 0xFF }, { 1, 'k', 'I', 0xFF, 0xFF, 0xFF, 0xFF }, 7, 7, false },
	/* timestamps only equal timestamps */
	{ { 1, 'k', 'T', 0, 0, 0, 0, 0, 0, 0, 5 }, { 1, 'k', 'l', 0, 0, 0, 0, 0, 0, 0, 5 }, 11, 11, false },
	{ { 1, 'k', 'T', 0, 0, 0, 0, 0, 0, 0, 5 }, { 1, 'k', 'T', 0, 0, 0, 0, 0, 0, 0, 5 }, 11, 11, true },
	/* strings and byte arrays are different kinds */
	{ { 1, 'k', 'S', 0, 0, 0, 1, 'a' }, { 1, 'k', 'x', 0, 0, 0, 1, 'a' }, 8, 8, false },
	{ { 1, 'k', 'S', 0, 0, 0, 1, 'a' }, { 1, 'k', 'S', 0, 0, 0, 1, 'b' }, 8, 8, false },
	/* bool: any non-zero octet is true */
	{ { 1, 'k', 't', 1 }, { 1, 'k', 't', 2 }, 4, 4, true },
	{ { 1, 'k', 't', 1 }, { 1, 'k', 't', 0 }, 4, 4, false },
	/* floats by bit pattern: NaN equals itself, -0 differs from 0 */
	{ { 1, 'k', 'f', 0x7F, 0xC0, 0, 0 }, { 1, 'k', 'f', 0x7F, 0xC0, 0, 0 }, 7, 7, true },
	{ { 1, 'k', 'd', 0x80, 0, 0, 0, 0, 0, 0, 0 }, { 1, 'k', 'd', 0, 0, 0, 0, 0, 0, 0, 0 }, 11, 11, false },
	{ { 1, 'k', 'f', 0x3F, 0x80, 0, 0 }, { 1, 'k', 'd', 0x3F, 0xF0, 0, 0, 0, 0, 0, 0 }, 7, 11, false },
	/* decimals need scale and value */
	{ { 1, 'k', 'D', 1, 0, 0, 0, 10 }, { 1, 'k', 'D', 2, 0, 0, 0, 10 }, 8, 8, false },
	{ { 1, 'k', 'D', 1, 0, 0, 0, 10 }, { 1, 'k', 'D', 1, 0, 0, 0, 10 }, 8, 8, true },
	/* void */
	{ { 1, 'k', 'V' }, { 1, 'k', 'V' }, 3, 3, true },
	{ { 1, 'k', 'V' }, { 1, 'j', 'V' }, 3, 3, false },
	/* arrays compare in order, elements by value */
	{ { 1, 'k', 'A', 0, 0, 0, 4, 'B', 1, 'B', 2 }, { 1, 'k', 'A', 0, 0, 0, 5, 'B', 1, 's', 0, 2 }, 11, 12, true },
	{ { 1, 'k', 'A', 0, 0, 0, 4, 'B', 1, 'B', 2 }, { 1, 'k', 'A', 0, 0, 0, 4, 'B', 2, 'B', 1 }, 11, 11, false },
	{ { 1, 'k', 'A', 0, 0, 0, 4, 'B', 1, 'B', 2 }, { 1, 'k', 'A', 0, 0, 0, 2, 'B', 1 }, 11, 9, false },
	/* malformed tables are never equal to anything but their own bytes */
	{ { 1, 'k', 'Z' }, { 1, 'k', 'Z', 0 }, 3, 4, false },
};

START_TEST(test_equal_values)
{
	const struct eq_vec *e = &eq_vecs[_i];
	/* separate heap copies, so the identical-bytes shortcut is not what
	 * decides equal vectors */
	uint8_t *a = dup_exact(e->a, e->alen);
	uint8_t *b = dup_exact(e->b, e->blen);

	ck_assert_msg(ftable_equal(ft(a, e->alen), ft(b, e->blen)) == e->equal,
	              "vector %d", _i);
	ck_assert_msg(ftable_equal(ft(b, e->blen), ft(a, e->alen)) == e->equal,
	              "vector %d reversed", _i);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_equal_many_and_duplicates)
{
	struct ftable_builder a, b, c;
	char key[16];
	int i;

	/* enough entries to leave the on-stack path */
	ftable_builder_init(&a);
	ftable_builder_init(&b);
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		ftable_put_int(&a, key, 'I', i);
		snprintf(key, sizeof(key), "key%d", 499 - i);
		ftable_put_int(&b, key, 'l', 499 - i);
	}
	ck_assert(ftable_equal(ftable_builder_get(&a), ftable_builder_get(&b)));
	ftable_put_int(&a, "extra", 'I', 1);
	ftable_put_int(&b, "extrb", 'I', 1);
	ck_assert(!ftable_equal(ftable_builder_get(&a), ftable_builder_get(&b)));
	ftable_builder_free(&a);
	ftable_builder_free(&b);

	/* duplicate keys: compared in their relative order */
	ftable_builder_init(&a);
	ftable_builder_init(&b);
	ftable_builder_init(&c);
	ftable_put_int(&a, "d", 'I', 1);
	ftable_put_int(&a, "z", 'I', 0);
	ftable_put_int(&a, "d", 'I', 2);
	ftable_put_int(&b, "z", 'I', 0);
	ftable_put_int(&b, "d", 'I', 1);
	ftable_put_int(&b, "d", 'I', 2);
	ftable_put_int(&c, "d", 'I', 2);
	ftable_put_int(&c, "d", 'I', 1);
	ftable_put_int(&c, "z", 'I', 0);
	ck_assert(ftable_equal(ftable_builder_get(&a), ftable_builder_get(&b)));
	ck_assert(!ftable_equal(ftable_builder_get(&a), ftable_builder_get(&c)));
	ftable_builder_free(&a);
	ftable_builder_free(&b);
	ftable_builder_free(&c);
}
END_TEST

START_TEST(test_builder_failures)
{
	struct ftable_builder b;
	char longkey[300];
	struct fvalue v;

	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = 0;

	ftable_builder_init(&b);
	ftable_put_bool(&b, "ok", true);
	ck_assert(!b.oom);
	ftable_put_bool(&b, longkey, true);
	ck_assert(b.oom);
	/* failure is sticky and the result is empty, never half-written */
	ftable_put_bool(&b, "later", true);
	ck_assert(b.oom);
	ck_assert_uint_eq(ftable_builder_get(&b).len, 0);
	ftable_builder_free(&b);
	ck_assert(!b.oom);
	ck_assert_ptr_null(b.buf);

	/* a 255-byte key is the longest that fits */
	longkey[255] = 0;
	ftable_builder_init(&b);
	ftable_put_void(&b, longkey);
	ck_assert(!b.oom);
	ck_assert_uint_eq(ftable_builder_get(&b).len, 257);
	ck_assert_int_eq(ftable_get(ftable_builder_get(&b), longkey, &v), 1);
	ftable_builder_free(&b);

	ftable_builder_init(&b);
	ftable_put_int(&b, "k", 'f', 1);
	ck_assert(b.oom);
	ftable_builder_free(&b);

	ftable_builder_init(&b);
	v.type = 'Q';
	farray_add_value(&b, &v);
	ck_assert(b.oom);
	ftable_builder_free(&b);

	/* an empty builder gives an empty table */
	ftable_builder_init(&b);
	struct ftable t = ftable_builder_get(&b);
	ck_assert_uint_eq(t.len, 0);
	ck_assert_int_eq(ftable_validate(t.ptr, t.len, 0), CODEC_OK);
	ftable_builder_free(&b);
}
END_TEST

START_TEST(test_builder_grows)
{
	struct ftable_builder b;
	uint8_t big[5000];
	struct fvalue v;
	char key[16];

	memset(big, 0xA5, sizeof(big));
	ftable_builder_init(&b);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		struct bytes s = { big, (size_t)i * 50 };
		ftable_put_bytes(&b, key, s);
	}
	ck_assert(!b.oom);
	struct ftable t = ftable_builder_get(&b);
	ck_assert_int_eq(ftable_validate(t.ptr, t.len, 0), CODEC_OK);
	ck_assert_uint_eq(ftable_count(t), 100);
	ck_assert_int_eq(ftable_get(t, "k99", &v), 1);
	ck_assert_uint_eq(v.v.str.len, 99 * 50);
	ck_assert_int_eq(memcmp(v.v.str.ptr, big, v.v.str.len), 0);
	ftable_builder_free(&b);
}
END_TEST

START_TEST(test_count)
{
	static const uint8_t two[] = { 1, 'a', 'V', 1, 'b', 'V' };
	static const uint8_t bad[] = { 1, 'a', 'V', 1, 'b' };
	ck_assert_uint_eq(ftable_count(ft(two, sizeof(two))), 2);
	ck_assert_uint_eq(ftable_count(ft(bad, sizeof(bad))), 0);
	ck_assert_uint_eq(ftable_count(ft(NULL, 0)), 0);
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("table");
	TCase *tc = tcase_create("build");

	tcase_add_test(tc, test_round_trip_every_type);
	tcase_add_test(tc, test_copy_values_is_byte_exact);
	tcase_add_loop_test(tc, test_encoding_exact, 0,
	                    (int)(sizeof(enc_vecs) / sizeof(enc_vecs[0])));
	tcase_add_test(tc, test_wr_rd_table);
	tcase_add_test(tc, test_builder_failures);
	tcase_add_test(tc, test_builder_grows);
	suite_add_tcase(s, tc);

	tc = tcase_create("validate");
	tcase_add_test(tc, test_rd_table_rejects_bad_contents);
	tcase_add_test(tc, test_depth_limit);
	tcase_add_test(tc, test_nested_iteration);
	tcase_add_test(tc, test_every_truncation);
	tcase_add_test(tc, test_unknown_type_letter);
	tcase_add_test(tc, test_huge_lengths);
	suite_add_tcase(s, tc);

	tc = tcase_create("query");
	tcase_add_test(tc, test_get);
	tcase_add_test(tc, test_as_int);
	tcase_add_test(tc, test_equal);
	tcase_add_loop_test(tc, test_equal_values, 0,
	                    (int)(sizeof(eq_vecs) / sizeof(eq_vecs[0])));
	tcase_add_test(tc, test_equal_many_and_duplicates);
	tcase_add_test(tc, test_count);
	suite_add_tcase(s, tc);
	return s;
}
