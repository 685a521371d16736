/*
 * AMQP field tables and field arrays: validation, iteration, lookup,
 * comparison and building.
 *
 * Tables stay in their encoded form (a slice of the frame) and are decoded
 * on demand.  Every read goes through struct rd, so a malformed table can
 * only make a reader return an error, never read outside the slice.
 * ftable_validate() is the one place that walks nested tables, with the
 * depth bounded by FTABLE_MAX_DEPTH so the recursion is bounded too; the
 * iterators read one level and hand nested tables out as slices.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/table.h"

/* Read the payload of one value whose type letter has been read already. */
static int rd_value(struct rd *r, uint8_t type, struct fvalue *v)
{
	/* zeroed so a truncated read leaves a defined (unused) value */
	uint8_t u8 = 0;
	uint16_t u16 = 0;
	uint32_t u32 = 0;
	uint64_t u64 = 0;
	int rc;

	v->type = (char)type;
	switch (type) {
	case 't':
		rc = rd_u8(r, &u8);
		v->v.b = u8 != 0;
		return rc;
	case 'b':
		rc = rd_u8(r, &u8);
		v->v.i8 = (int8_t)u8;
		return rc;
	case 'B':
		return rd_u8(r, &v->v.u8);
	case 's':
		rc = rd_u16(r, &u16);
		v->v.i16 = (int16_t)u16;
		return rc;
	case 'u':
		return rd_u16(r, &v->v.u16);
	case 'I':
		rc = rd_u32(r, &u32);
		v->v.i32 = (int32_t)u32;
		return rc;
	case 'i':
		return rd_u32(r, &v->v.u32);
	case 'l':
		rc = rd_u64(r, &u64);
		v->v.i64 = (int64_t)u64;
		return rc;
	case 'f':
		rc = rd_u32(r, &u32);
		memcpy(&v->v.f, &u32, sizeof(v->v.f));
		return rc;
	case 'd':
		rc = rd_u64(r, &u64);
		memcpy(&v->v.d, &u64, sizeof(v->v.d));
		return rc;
	case 'D':
		rc = rd_u8(r, &v->v.dec.scale);
		if (rc != CODEC_OK)
			return rc;
		return rd_u32(r, &v->v.dec.value);
	case 'S':
	case 'x':
		return rd_longstr(r, &v->v.str);
	case 'T':
		return rd_u64(r, &v->v.ts);
	case 'F':
	case 'A': {
		struct bytes b = { NULL, 0 };
		struct ftable t;
		rc = rd_longstr(r, &b);
		t.ptr = b.ptr;
		t.len = b.len;
		if (type == 'F')
			v->v.table = t;
		else
			v->v.array = t;
		return rc;
	}
	case 'V':
		return CODEC_OK;
	default:
		return CODEC_E_FIELD_TYPE;
	}
}

int ftable_next(struct ftable_iter *it, struct bytes *key, struct fvalue *val)
{
	uint8_t type;
	int rc;

	if (it->r.left == 0)
		return 0;
	if ((rc = rd_shortstr(&it->r, key)) != CODEC_OK)
		return rc;
	if ((rc = rd_u8(&it->r, &type)) != CODEC_OK)
		return rc;
	if ((rc = rd_value(&it->r, type, val)) != CODEC_OK)
		return rc;
	return 1;
}

int farray_next(struct ftable_iter *it, struct fvalue *val)
{
	uint8_t type;
	int rc;

	if (it->r.left == 0)
		return 0;
	if ((rc = rd_u8(&it->r, &type)) != CODEC_OK)
		return rc;
	if ((rc = rd_value(&it->r, type, val)) != CODEC_OK)
		return rc;
	return 1;
}

/* Descend into a nested table or array; other values need no more checks. */
static int validate_nested(const struct fvalue *v, int depth)
{
	if (v->type == 'F')
		return ftable_validate(v->v.table.ptr, v->v.table.len, depth + 1);
	if (v->type == 'A')
		return farray_validate(v->v.array.ptr, v->v.array.len, depth + 1);
	return CODEC_OK;
}

int ftable_validate(const uint8_t *p, size_t len, int depth)
{
	struct ftable_iter it;
	struct ftable t = { p, len };
	struct bytes key;
	struct fvalue v;
	int rc;

	if (depth < 0)
		depth = 0;
	if (depth > FTABLE_MAX_DEPTH)
		return CODEC_E_TABLE_DEPTH;
	ftable_iter_init(&it, t);
	while ((rc = ftable_next(&it, &key, &v)) > 0) {
		if ((rc = validate_nested(&v, depth)) != CODEC_OK)
			return rc;
	}
	return rc;
}

int farray_validate(const uint8_t *p, size_t len, int depth)
{
	struct ftable_iter it;
	struct ftable t = { p, len };
	struct fvalue v;
	int rc;

	if (depth < 0)
		depth = 0;
	if (depth > FTABLE_MAX_DEPTH)
		return CODEC_E_TABLE_DEPTH;
	ftable_iter_init(&it, t);
	while ((rc = farray_next(&it, &v)) > 0) {
		if ((rc = validate_nested(&v, depth)) != CODEC_OK)
			return rc;
	}
	return rc;
}

int rd_table(struct rd *r, struct ftable *out)
{
	struct bytes b;
	int rc;

	if ((rc = rd_longstr(r, &b)) != CODEC_OK)
		return rc;
	if ((rc = ftable_validate(b.ptr, b.len, 0)) != CODEC_OK)
		return rc;
	out->ptr = b.ptr;
	out->len = b.len;
	return CODEC_OK;
}

/*
 * The first entry with this key wins, as in RabbitMQ's table lookup.  A
 * malformed table reads as "absent" so a caller's `if (ftable_get(...))`
 * can never mistake an error for a hit; tables are validated on decode,
 * so this only matters for callers that skipped validation.
 */
int ftable_get(struct ftable t, const char *key, struct fvalue *val)
{
	struct bytes want = bytes_of(key);
	struct ftable_iter it;
	struct bytes k;
	struct fvalue v;

	ftable_iter_init(&it, t);
	while (ftable_next(&it, &k, &v) > 0) {
		if (bytes_eq(k, want)) {
			*val = v;
			return 1;
		}
	}
	return 0;
}

/* A timestamp above INT64_MAX does not fit and is reported as not-an-int. */
bool fvalue_as_int(const struct fvalue *v, int64_t *out)
{
	switch (v->type) {
	case 'b':
		*out = v->v.i8;
		return true;
	case 'B':
		*out = v->v.u8;
		return true;
	case 's':
		*out = v->v.i16;
		return true;
	case 'u':
		*out = v->v.u16;
		return true;
	case 'I':
		*out = v->v.i32;
		return true;
	case 'i':
		*out = v->v.u32;
		return true;
	case 'l':
		*out = v->v.i64;
		return true;
	case 'T':
		if (v->v.ts > (uint64_t)INT64_MAX)
			return false;
		*out = (int64_t)v->v.ts;
		return true;
	default:
		return false;
	}
}

/* Entries, or SIZE_MAX for a malformed table. */
static size_t table_count(struct ftable t)
{
	struct ftable_iter it;
	struct bytes k;
	struct fvalue v;
	size_t n = 0;
	int rc;

	ftable_iter_init(&it, t);
	while ((rc = ftable_next(&it, &k, &v)) > 0)
		n++;
	return rc < 0 ? SIZE_MAX : n;
}

size_t ftable_count(struct ftable t)
{
	size_t n = table_count(t);
	return n == SIZE_MAX ? 0 : n;
}

/* ---- equality ---------------------------------------------------------- */

static bool table_equal(struct ftable a, struct ftable b, int depth);
static bool array_equal(struct ftable a, struct ftable b, int depth);

/* The integer letters whose values compare by number, whatever the width:
 * clients pick different widths for the same declare argument (one sends
 * x-max-length as 'I', another as 'l'), and RabbitMQ treats them alike.
 * Timestamps are not included: they are a different kind of value. */
static bool value_int_class(const struct fvalue *v, int64_t *out)
{
	return v->type != 'T' && fvalue_as_int(v, out);
}

static bool value_equal(const struct fvalue *a, const struct fvalue *b,
                        int depth)
{
	int64_t ia, ib;
	uint32_t fa, fb;
	uint64_t da, db;

	if (value_int_class(a, &ia) && value_int_class(b, &ib))
		return ia == ib;
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case 't':
		return a->v.b == b->v.b;
	case 'f':
		/* bit patterns, so that NaN equals itself and the same encoded
		 * argument always compares equal */
		memcpy(&fa, &a->v.f, sizeof(fa));
		memcpy(&fb, &b->v.f, sizeof(fb));
		return fa == fb;
	case 'd':
		memcpy(&da, &a->v.d, sizeof(da));
		memcpy(&db, &b->v.d, sizeof(db));
		return da == db;
	case 'D':
		return a->v.dec.scale == b->v.dec.scale &&
		       a->v.dec.value == b->v.dec.value;
	case 'S':
	case 'x':
		return bytes_eq(a->v.str, b->v.str);
	case 'T':
		return a->v.ts == b->v.ts;
	case 'F':
		return table_equal(a->v.table, b->v.table, depth + 1);
	case 'A':
		return array_equal(a->v.array, b->v.array, depth + 1);
	case 'V':
		return true;
	default:
		return false;
	}
}

static bool array_equal(struct ftable a, struct ftable b, int depth)
{
	struct ftable_iter ia, ib;
	struct fvalue va, vb;
	int ra, rb;

	if (depth > FTABLE_MAX_DEPTH)
		return false;
	ftable_iter_init(&ia, a);
	ftable_iter_init(&ib, b);
	for (;;) {
		ra = farray_next(&ia, &va);
		rb = farray_next(&ib, &vb);
		if (ra < 0 || rb < 0 || ra != rb)
			return false;
		if (ra == 0)
			return true;
		if (!value_equal(&va, &vb, depth))
			return false;
	}
}

struct table_entry {
	struct bytes key;
	struct fvalue val;
	size_t pos; /* position in the table: keeps duplicate keys in order */
};

static int entry_cmp(const void *pa, const void *pb)
{
	const struct table_entry *a = pa, *b = pb;
	size_t n = a->key.len < b->key.len ? a->key.len : b->key.len;
	int c = n ? memcmp(a->key.ptr, b->key.ptr, n) : 0;

	if (c != 0)
		return c;
	if (a->key.len != b->key.len)
		return a->key.len < b->key.len ? -1 : 1;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static void collect_entries(struct ftable t, struct table_entry *e, size_t n)
{
	struct ftable_iter it;
	size_t i;

	ftable_iter_init(&it, t);
	for (i = 0; i < n && ftable_next(&it, &e[i].key, &e[i].val) > 0; i++)
		e[i].pos = i;
	qsort(e, n, sizeof(*e), entry_cmp);
}

/*
 * Order-independent: both tables sorted by key (duplicates keep their
 * relative order) must match entry by entry.  Sorting rather than looking
 * every key up keeps this O(n log n): a client controls the arguments
 * compared on redeclare and could otherwise send tens of thousands of tiny
 * entries to make the loop thread do quadratic work.
 */
static bool table_equal(struct ftable a, struct ftable b, int depth)
{
	struct table_entry small[16];
	struct table_entry *ea, *eb;
	size_t na, nb, i;
	bool eq = true;

	if (a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0))
		return true;
	if (depth > FTABLE_MAX_DEPTH)
		return false;
	na = table_count(a);
	nb = table_count(b);
	if (na == SIZE_MAX || nb == SIZE_MAX || na != nb)
		return false;
	if (na == 0)
		return true;
	if (na <= sizeof(small) / sizeof(small[0]) / 2) {
		ea = small;
	} else {
		if (na > SIZE_MAX / 2 / sizeof(*ea))
			return false;
		ea = malloc(2 * na * sizeof(*ea));
		if (ea == NULL)
			return false;
	}
	eb = ea + na;
	collect_entries(a, ea, na);
	collect_entries(b, eb, nb);
	for (i = 0; i < na && eq; i++)
		eq = bytes_eq(ea[i].key, eb[i].key) &&
		     value_equal(&ea[i].val, &eb[i].val, depth);
	if (ea != small)
		free(ea);
	return eq;
}

bool ftable_equal(struct ftable a, struct ftable b)
{
	return table_equal(a, b, 0);
}

/* ---- building ---------------------------------------------------------- */

void ftable_builder_init(struct ftable_builder *b)
{
	b->buf = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = false;
}

void ftable_builder_free(struct ftable_builder *b)
{
	free(b->buf);
	ftable_builder_init(b);
}

/* Make room for n more bytes; on failure the builder is marked failed. */
static bool builder_reserve(struct ftable_builder *b, size_t n)
{
	size_t need, cap;
	uint8_t *nbuf;

	if (b->oom)
		return false;
	if (b->cap - b->len >= n)
		return true;
	if (n > SIZE_MAX - b->len)
		goto fail;
	need = b->len + n;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	nbuf = realloc(b->buf, cap);
	if (nbuf == NULL)
		goto fail;
	b->buf = nbuf;
	b->cap = cap;
	return true;
fail:
	b->oom = true;
	return false;
}

/* The bytes of a length-prefixed value (S x F A). */
static struct bytes value_slice(const struct fvalue *v)
{
	struct bytes b;

	if (v->type == 'F') {
		b.ptr = v->v.table.ptr;
		b.len = v->v.table.len;
	} else if (v->type == 'A') {
		b.ptr = v->v.array.ptr;
		b.len = v->v.array.len;
	} else {
		b = v->v.str;
	}
	return b;
}

/* Encoded size of a value after its type letter; false if unencodable. */
static bool value_size(const struct fvalue *v, size_t *out)
{
	switch (v->type) {
	case 'V':
		*out = 0;
		return true;
	case 't':
	case 'b':
	case 'B':
		*out = 1;
		return true;
	case 's':
	case 'u':
		*out = 2;
		return true;
	case 'I':
	case 'i':
	case 'f':
		*out = 4;
		return true;
	case 'D':
		*out = 5;
		return true;
	case 'l':
	case 'd':
	case 'T':
		*out = 8;
		return true;
	case 'S':
	case 'x':
	case 'F':
	case 'A':
		if ((uint64_t)value_slice(v).len > UINT32_MAX)
			return false;
		*out = 4 + value_slice(v).len;
		return true;
	default:
		return false;
	}
}

/* w has room for the value: value_size() said how much. */
static void value_write(struct wr *w, const struct fvalue *v)
{
	uint32_t u32;
	uint64_t u64;

	switch (v->type) {
	case 't':
		wr_u8(w, v->v.b ? 1 : 0);
		break;
	case 'b':
		wr_u8(w, (uint8_t)v->v.i8);
		break;
	case 'B':
		wr_u8(w, v->v.u8);
		break;
	case 's':
		wr_u16(w, (uint16_t)v->v.i16);
		break;
	case 'u':
		wr_u16(w, v->v.u16);
		break;
	case 'I':
		wr_u32(w, (uint32_t)v->v.i32);
		break;
	case 'i':
		wr_u32(w, v->v.u32);
		break;
	case 'l':
		wr_u64(w, (uint64_t)v->v.i64);
		break;
	case 'f':
		memcpy(&u32, &v->v.f, sizeof(u32));
		wr_u32(w, u32);
		break;
	case 'd':
		memcpy(&u64, &v->v.d, sizeof(u64));
		wr_u64(w, u64);
		break;
	case 'D':
		wr_u8(w, v->v.dec.scale);
		wr_u32(w, v->v.dec.value);
		break;
	case 'S':
	case 'x':
	case 'F':
	case 'A':
		wr_longstr(w, value_slice(v));
		break;
	case 'T':
		wr_u64(w, v->v.ts);
		break;
	default: /* 'V' */
		break;
	}
}

/* Append [key] type value; key NULL for array elements. */
static void builder_put(struct ftable_builder *b, const struct bytes *key,
                        const struct fvalue *v)
{
	size_t vsize, total;
	struct wr w;

	if (b->oom)
		return;
	if (!value_size(v, &vsize) || (key && key->len > 255)) {
		b->oom = true; /* unencodable: the build has failed */
		return;
	}
	total = 1 + vsize + (key ? 1 + key->len : 0);
	if (!builder_reserve(b, total))
		return;
	w = wr_init(b->buf + b->len, total);
	if (key)
		wr_shortstr(&w, *key);
	wr_u8(&w, (uint8_t)v->type);
	value_write(&w, v);
	b->len += total;
}

static void builder_put_key(struct ftable_builder *b, const char *key,
                            const struct fvalue *v)
{
	struct bytes k = bytes_of(key);
	builder_put(b, &k, v);
}

void ftable_put_bool(struct ftable_builder *b, const char *key, bool v)
{
	struct fvalue fv = { .type = 't' };
	fv.v.b = v;
	builder_put_key(b, key, &fv);
}

/* Out-of-range values are truncated to the width, as a cast would. */
void ftable_put_int(struct ftable_builder *b, const char *key, char type,
                    int64_t v)
{
	struct fvalue fv = { .type = type };

	switch (type) {
	case 'b':
		fv.v.i8 = (int8_t)v;
		break;
	case 'B':
		fv.v.u8 = (uint8_t)v;
		break;
	case 's':
		fv.v.i16 = (int16_t)v;
		break;
	case 'u':
		fv.v.u16 = (uint16_t)v;
		break;
	case 'I':
		fv.v.i32 = (int32_t)v;
		break;
	case 'i':
		fv.v.u32 = (uint32_t)v;
		break;
	case 'l':
		fv.v.i64 = v;
		break;
	case 'T':
		fv.v.ts = (uint64_t)v;
		break;
	default:
		b->oom = true; /* not an integer letter: a caller bug */
		return;
	}
	builder_put_key(b, key, &fv);
}

void ftable_put_double(struct ftable_builder *b, const char *key, double v)
{
	struct fvalue fv = { .type = 'd' };
	fv.v.d = v;
	builder_put_key(b, key, &fv);
}

void ftable_put_float(struct ftable_builder *b, const char *key, float v)
{
	struct fvalue fv = { .type = 'f' };
	fv.v.f = v;
	builder_put_key(b, key, &fv);
}

void ftable_put_decimal(struct ftable_builder *b, const char *key,
                        uint8_t scale, uint32_t v)
{
	struct fvalue fv = { .type = 'D' };
	fv.v.dec.scale = scale;
	fv.v.dec.value = v;
	builder_put_key(b, key, &fv);
}

void ftable_put_str(struct ftable_builder *b, const char *key, struct bytes v)
{
	struct fvalue fv = { .type = 'S' };
	fv.v.str = v;
	builder_put_key(b, key, &fv);
}

void ftable_put_bytes(struct ftable_builder *b, const char *key,
                      struct bytes v)
{
	struct fvalue fv = { .type = 'x' };
	fv.v.str = v;
	builder_put_key(b, key, &fv);
}

void ftable_put_void(struct ftable_builder *b, const char *key)
{
	struct fvalue fv = { .type = 'V' };
	builder_put_key(b, key, &fv);
}

void ftable_put_table(struct ftable_builder *b, const char *key,
                      struct ftable v)
{
	struct fvalue fv = { .type = 'F' };
	fv.v.table = v;
	builder_put_key(b, key, &fv);
}

void ftable_put_array(struct ftable_builder *b, const char *key,
                      struct ftable v)
{
	struct fvalue fv = { .type = 'A' };
	fv.v.array = v;
	builder_put_key(b, key, &fv);
}

void ftable_put_value(struct ftable_builder *b, struct bytes key,
                      const struct fvalue *v)
{
	builder_put(b, &key, v);
}

void farray_add_value(struct ftable_builder *b, const struct fvalue *v)
{
	builder_put(b, NULL, v);
}

/* A failed build yields an empty table: never a half-written one. */
struct ftable ftable_builder_get(const struct ftable_builder *b)
{
	struct ftable t = { NULL, 0 };

	if (!b->oom && b->buf != NULL) {
		t.ptr = b->buf;
		t.len = b->len;
	}
	return t;
}

int wr_table(struct wr *w, struct ftable t)
{
	struct bytes b = { t.ptr, t.len };
	return wr_longstr(w, b);
}

const char *ftable_type_name(char type)
{
	switch (type) {
	case 't': return "bool";
	case 'b': return "byte";
	case 'B': return "unsignedbyte";
	case 's': return "short";
	case 'u': return "unsignedshort";
	case 'I': return "signedint";
	case 'i': return "unsignedint";
	case 'l': return "long";
	case 'f': return "float";
	case 'd': return "double";
	case 'D': return "decimal";
	case 'S': return "longstr";
	case 'x': return "binary";
	case 'A': return "array";
	case 'T': return "timestamp";
	case 'F': return "table";
	case 'V': return "void";
	default: return "unknown";
	}
}
