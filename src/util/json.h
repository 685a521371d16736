/*
 * A small JSON writer and a strict, bounded JSON parser (RFC 8259), for the
 * admin socket and definitions files.
 *
 * Writer: appends to a growable buffer and places commas itself, so callers
 * only say begin/key/value/end.  Strings are escaped so the output never
 * holds a raw control character (one response is one line); bytes that are
 * not valid UTF-8 are written as U+FFFD, so the output is always valid JSON.
 *
 * Parser: builds a read-only tree in an arena freed in one go.  It is strict
 * (no comments, trailing commas, leading zeros, NaN, single quotes, invalid
 * UTF-8 or lone surrogates; only one top-level value) and bounded: nesting
 * deeper than JSON_MAX_DEPTH and inputs longer than JSON_MAX_INPUT are
 * refused, recursion follows nesting so the stack is bounded too, and the
 * tree takes memory proportional to the input.  Errors name line and column.
 * Duplicate object keys are kept; json_get returns the last, as JavaScript
 * and RabbitMQ's decoder do.
 */
#ifndef WARREN_UTIL_JSON_H
#define WARREN_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64
#define JSON_MAX_INPUT ((size_t)64 << 20)

/* ---- writer ------------------------------------------------------------ */

struct json_out {
	char *buf;
	size_t len, cap;
	bool need_comma; /* a value was written at this level: the next needs ',' */
};

void json_out_init(struct json_out *w);
void json_out_free(struct json_out *w);
/* The text so far, NUL-terminated (never NULL). */
const char *json_out_str(struct json_out *w);
/* Hand the buffer to the caller (free() it); *len may be NULL.  w is reset. */
char *json_out_take(struct json_out *w, size_t *len);

void json_obj_begin(struct json_out *w);
void json_obj_end(struct json_out *w);
void json_arr_begin(struct json_out *w);
void json_arr_end(struct json_out *w);
void json_key(struct json_out *w, const char *key);
void json_key_n(struct json_out *w, const void *key, size_t len);
void json_str(struct json_out *w, const char *s);
void json_str_n(struct json_out *w, const void *s, size_t len);
void json_int(struct json_out *w, int64_t v);
void json_uint(struct json_out *w, uint64_t v);
/* Non-finite values have no JSON form and are written as null. */
void json_double(struct json_out *w, double v);
void json_bool(struct json_out *w, bool v);
void json_null(struct json_out *w);
/* An already-encoded JSON value, copied as is (the caller vouches for it). */
void json_raw(struct json_out *w, const char *text, size_t len);
/* Plain bytes appended to the buffer, outside the JSON bookkeeping (for
 * callers that use json_out as a string builder). */
void json_out_put(struct json_out *w, const void *p, size_t len);

/* True if p[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool json_utf8_valid(const void *p, size_t len);

/* ---- parser ------------------------------------------------------------ */

enum json_type {
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_member;

struct json_value {
	enum json_type type;
	union {
		bool b;
		struct {
			double d;      /* always set */
			int64_t i;     /* set when is_int */
			bool is_int;   /* written without fraction or exponent, fits int64 */
		} num;
		struct {
			const char *ptr; /* NUL-terminated UTF-8 */
			size_t len;
		} str;
		struct {
			struct json_value *items;
			size_t n;
		} arr;
		struct {
			struct json_member *members;
			size_t n;
		} obj;
	} u;
};

struct json_member {
	const char *key;   /* NUL-terminated; may also hold \u0000, see key_len */
	size_t key_len;
	struct json_value value;
};

struct json_arena;

struct json_doc {
	struct json_value *root;
	struct json_arena *arena;
};

/*
 * Parse text[0..len).  Returns 0 with doc->root set, or -1 with a message
 * such as "line 3, column 14: expected ',' or '}'" in err (errcap bytes,
 * always NUL-terminated) and doc left empty.  Free with json_doc_free either way.
 */
int json_parse(struct json_doc *doc, const char *text, size_t len, char *err, size_t errcap);
void json_doc_free(struct json_doc *doc);

/* Member of an object by key (the last one if repeated); NULL if absent or
 * obj is not an object. */
const struct json_value *json_get(const struct json_value *obj, const char *key);
/* The string value of member key, or NULL when absent or not a string. */
const char *json_get_str(const struct json_value *obj, const char *key);
const char *json_type_name(enum json_type t);

#endif
