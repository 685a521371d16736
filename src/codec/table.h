/*
 * AMQP field tables and field arrays, with RabbitMQ's type letters (its
 * 0-9-1 errata, which real clients follow):
 *   t bool   b int8   B uint8  s int16  u uint16  I int32  i uint32
 *   l int64  f float  d double D decimal S longstr x byte array
 *   A array  T timestamp  F table  V void
 *
 * Validation walks the encoded bytes once (bounded depth and length); after a
 * table has been validated the iterators cannot fail on structure, so callers
 * treat any error from them as a bug-level condition and stop.
 */
#ifndef WARREN_CODEC_TABLE_H
#define WARREN_CODEC_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/wire.h"

/* Nesting of tables/arrays inside a table is bounded so recursion is bounded. */
#define FTABLE_MAX_DEPTH 32

struct fvalue {
	char type; /* one of the letters above */
	union {
		bool b;             /* t */
		int8_t i8;          /* b */
		uint8_t u8;         /* B */
		int16_t i16;        /* s */
		uint16_t u16;       /* u */
		int32_t i32;        /* I */
		uint32_t u32;       /* i */
		int64_t i64;        /* l */
		float f;            /* f */
		double d;           /* d */
		struct {
			uint8_t scale;
			uint32_t value;
		} dec;              /* D */
		struct bytes str;   /* S and x: slice into the table */
		uint64_t ts;        /* T */
		struct ftable table; /* F: contents without length prefix */
		struct ftable array; /* A: contents without length prefix */
	} v;
};

/*
 * Validate the contents of a table (bytes after the 4-byte length) or of an
 * array.  Returns CODEC_OK, CODEC_E_TRUNCATED, CODEC_E_FIELD_TYPE or
 * CODEC_E_TABLE_DEPTH.  depth is the current nesting depth (0 at top level).
 */
int ftable_validate(const uint8_t *p, size_t len, int depth);
int farray_validate(const uint8_t *p, size_t len, int depth);

/* Read a length-prefixed table from r, validate it, and return its slice. */
int rd_table(struct rd *r, struct ftable *out);

struct ftable_iter {
	struct rd r;
};

static inline void ftable_iter_init(struct ftable_iter *it, struct ftable t)
{
	it->r = rd_init(t.ptr, t.len);
}

/* 1 and fills key/val while entries remain, 0 at the end, <0 on a malformed table. */
int ftable_next(struct ftable_iter *it, struct bytes *key, struct fvalue *val);
/* Field arrays: same protocol, values only. */
int farray_next(struct ftable_iter *it, struct fvalue *val);

/* Find key in table t: 1 if found (val filled), 0 if absent (or if the
 * table turns out malformed before the key is found).  With duplicate keys
 * the first one wins. */
int ftable_get(struct ftable t, const char *key, struct fvalue *val);

/* The name of a field type letter as RabbitMQ's error texts spell it
 * ("longstr", "signedint", ...); "unknown" for other letters. */
const char *ftable_type_name(char type);

/* Integer value of any integer-typed field (b B s u I i l T); false otherwise
 * (and for a timestamp above INT64_MAX). */
bool fvalue_as_int(const struct fvalue *v, int64_t *out);

/* Number of entries in a validated table. */
size_t ftable_count(struct ftable t);

/* Equal tables: same keys with equal values, in any order (RabbitMQ compares
 * declare arguments that way).  Integer values compare by number whatever
 * their width (b B s u I i l); other values need the same type letter.
 * Floats compare by bit pattern; arrays element by element, in order;
 * duplicate keys must appear in the same relative order. */
bool ftable_equal(struct ftable a, struct ftable b);

/*
 * Building tables: a growable heap buffer (not used on hot paths).  Entries
 * are appended in order; ftable_build_finish returns the contents without a
 * length prefix.  Nested tables and arrays are built separately and added as
 * already-encoded contents.
 */
struct ftable_builder {
	uint8_t *buf;
	size_t len, cap;
	bool oom; /* the build failed: out of memory, or a key longer than 255
	           * bytes, a value longer than 4 GiB or an unknown type letter;
	           * later puts are ignored and the result is an empty table */
};

void ftable_builder_init(struct ftable_builder *b);
void ftable_builder_free(struct ftable_builder *b);
void ftable_put_bool(struct ftable_builder *b, const char *key, bool v);
void ftable_put_int(struct ftable_builder *b, const char *key, char type, int64_t v);  /* b B s u I i l T */
void ftable_put_double(struct ftable_builder *b, const char *key, double v);
void ftable_put_float(struct ftable_builder *b, const char *key, float v);
void ftable_put_decimal(struct ftable_builder *b, const char *key, uint8_t scale, uint32_t v);
void ftable_put_str(struct ftable_builder *b, const char *key, struct bytes v);     /* S */
void ftable_put_bytes(struct ftable_builder *b, const char *key, struct bytes v);   /* x */
void ftable_put_void(struct ftable_builder *b, const char *key);
void ftable_put_table(struct ftable_builder *b, const char *key, struct ftable v);  /* F */
void ftable_put_array(struct ftable_builder *b, const char *key, struct ftable v);  /* A */
/* Copy an already-decoded value (any type) under key. */
void ftable_put_value(struct ftable_builder *b, struct bytes key, const struct fvalue *v);
/* Array elements: same as above without a key. */
void farray_add_value(struct ftable_builder *b, const struct fvalue *v);
/* The built contents; valid until the builder is freed. */
struct ftable ftable_builder_get(const struct ftable_builder *b);

/* Encode a length-prefixed table into w. */
int wr_table(struct wr *w, struct ftable t);

#endif
