/*
 * JSON writer and strict parser; see json.h for the contract.
 *
 * The parser recurses once per nesting level and refuses to go deeper than
 * JSON_MAX_DEPTH, so its stack use is bounded whatever the input.  Array and
 * object children are collected in a heap vector per open container and
 * moved into the arena when the container closes, so the finished tree is
 * contiguous per container and is freed with the arena alone.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/xalloc.h"

/* ---- UTF-8 ------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p (n bytes left), 0 if none. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	if (c < 0x80)
		return 1;
	if (c < 0xC2 || c > 0xF4)
		return 0;
	if (c < 0xE0)
		return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c < 0xF0) {
		if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
			return 0;
		if (c == 0xE0 && p[1] < 0xA0)
			return 0; /* overlong */
		if (c == 0xED && p[1] >= 0xA0)
			return 0; /* UTF-16 surrogate */
		return 3;
	}
	if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
		return 0;
	if (c == 0xF0 && p[1] < 0x90)
		return 0; /* overlong */
	if (c == 0xF4 && p[1] >= 0x90)
		return 0; /* above U+10FFFF */
	return 4;
}

bool json_utf8_valid(const void *p, size_t len)
{
	const uint8_t *s = p;
	while (len) {
		size_t n = utf8_seq(s, len);
		if (!n)
			return false;
		s += n;
		len -= n;
	}
	return true;
}

/* ---- writer ------------------------------------------------------------ */

void json_out_init(struct json_out *w)
{
	memset(w, 0, sizeof(*w));
}

void json_out_free(struct json_out *w)
{
	free(w->buf);
	json_out_init(w);
}

static void out_reserve(struct json_out *w, size_t n)
{
	if (w->cap - w->len > n)
		return;
	size_t cap = w->cap ? w->cap : 256;
	while (cap - w->len <= n)
		cap *= 2;
	w->buf = xrealloc(w->buf, cap);
	w->cap = cap;
}

static void out_put(struct json_out *w, const void *p, size_t n)
{
	out_reserve(w, n);
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void out_ch(struct json_out *w, char c)
{
	out_put(w, &c, 1);
}

const char *json_out_str(struct json_out *w)
{
	out_reserve(w, 0);
	w->buf[w->len] = '\0';
	return w->buf;
}

char *json_out_take(struct json_out *w, size_t *len)
{
	json_out_str(w);
	char *s = w->buf;
	if (len)
		*len = w->len;
	json_out_init(w);
	return s;
}

/* Before a value: separate it from the previous one at this level. */
static void out_sep(struct json_out *w)
{
	if (w->need_comma)
		out_ch(w, ',');
	w->need_comma = true;
}

void json_obj_begin(struct json_out *w)
{
	out_sep(w);
	out_ch(w, '{');
	w->need_comma = false;
}

void json_obj_end(struct json_out *w)
{
	out_ch(w, '}');
	w->need_comma = true;
}

void json_arr_begin(struct json_out *w)
{
	out_sep(w);
	out_ch(w, '[');
	w->need_comma = false;
}

void json_arr_end(struct json_out *w)
{
	out_ch(w, ']');
	w->need_comma = true;
}

static void out_string(struct json_out *w, const uint8_t *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	out_reserve(w, len + 2);
	out_ch(w, '"');
	size_t i = 0;
	while (i < len) {
		uint8_t c = s[i];
		if (c >= 0x80) {
			size_t n = utf8_seq(s + i, len - i);
			if (n) {
				out_put(w, s + i, n);
				i += n;
			} else {
				out_put(w, "\\ufffd", 6);
				i++;
			}
			continue;
		}
		/* copy a run of plain ASCII at once */
		size_t j = i;
		while (j < len && s[j] >= 0x20 && s[j] < 0x80 && s[j] != '"' && s[j] != '\\')
			j++;
		if (j > i) {
			out_put(w, s + i, j - i);
			i = j;
			continue;
		}
		char esc[6] = { '\\', 0 };
		size_t en = 2;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			en = 6;
			break;
		}
		out_put(w, esc, en);
		i++;
	}
	out_ch(w, '"');
}

void json_key_n(struct json_out *w, const void *key, size_t len)
{
	if (w->need_comma)
		out_ch(w, ',');
	out_string(w, key, len);
	out_ch(w, ':');
	w->need_comma = false;
}

void json_key(struct json_out *w, const char *key)
{
	json_key_n(w, key, strlen(key));
}

void json_str_n(struct json_out *w, const void *s, size_t len)
{
	out_sep(w);
	out_string(w, s, len);
}

void json_str(struct json_out *w, const char *s)
{
	json_str_n(w, s, s ? strlen(s) : 0);
}

void json_int(struct json_out *w, int64_t v)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%lld", (long long)v);
	out_sep(w);
	out_put(w, buf, (size_t)n);
}

void json_uint(struct json_out *w, uint64_t v)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	out_sep(w);
	out_put(w, buf, (size_t)n);
}

void json_double(struct json_out *w, double v)
{
	if (!isfinite(v)) {
		json_null(w);
		return;
	}
	/* the shortest of %.15g..%.17g that reads back exactly */
	char buf[40];
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	/* keep it a float when read back: 2.0 must not come back as integer 2 */
	if (!strpbrk(buf, ".eE"))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".0");
	out_sep(w);
	out_put(w, buf, (size_t)n);
}

void json_bool(struct json_out *w, bool v)
{
	out_sep(w);
	if (v)
		out_put(w, "true", 4);
	else
		out_put(w, "false", 5);
}

void json_null(struct json_out *w)
{
	out_sep(w);
	out_put(w, "null", 4);
}

void json_raw(struct json_out *w, const char *text, size_t len)
{
	out_sep(w);
	out_put(w, text, len);
}

void json_out_put(struct json_out *w, const void *p, size_t len)
{
	out_put(w, p, len);
}

/* ---- arena ------------------------------------------------------------- */

struct json_chunk {
	struct json_chunk *next;
	size_t used, cap;
	alignas(max_align_t) unsigned char data[];
};

struct json_arena {
	struct json_chunk *head;
};

#define JSON_CHUNK (64 * 1024)

static void *arena_alloc(struct json_arena *a, size_t n)
{
	const size_t align = alignof(max_align_t);
	n = (n + align - 1) & ~(align - 1);
	struct json_chunk *c = a->head;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > JSON_CHUNK ? n : JSON_CHUNK;
		c = xmalloc(sizeof(*c) + cap);
		c->used = 0;
		c->cap = cap;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	return p;
}

static void arena_free(struct json_arena *a)
{
	if (!a)
		return;
	for (struct json_chunk *c = a->head, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

/* ---- parser ------------------------------------------------------------ */

#define JSON_MAX_NUMBER 512 /* characters in one number token */

struct jp {
	const char *start, *p, *end;
	struct json_arena *arena;
	char *err;
	size_t errcap;
	bool failed;
};

__attribute__((format(printf, 2, 3)))
static int jp_fail(struct jp *jp, const char *fmt, ...)
{
	if (jp->failed)
		return -1;
	jp->failed = true;
	size_t line = 1, col = 1;
	for (const char *q = jp->start; q < jp->p && q < jp->end; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	char what[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (jp->errcap)
		snprintf(jp->err, jp->errcap, "line %zu, column %zu: %s", line, col, what);
	return -1;
}

static void jp_ws(struct jp *jp)
{
	while (jp->p < jp->end &&
	       (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
		jp->p++;
}

static int jp_unexpected(struct jp *jp, const char *expected)
{
	if (jp->p >= jp->end)
		return jp_fail(jp, "unexpected end of input, expected %s", expected);
	unsigned char c = (unsigned char)*jp->p;
	if (c >= 0x21 && c < 0x7f)
		return jp_fail(jp, "unexpected '%c', expected %s", c, expected);
	return jp_fail(jp, "unexpected byte 0x%02x, expected %s", c, expected);
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* At the opening quote.  The decoded text is never longer than the raw
 * text (every escape shrinks), so one arena block of the raw size fits. */
static int jp_string(struct jp *jp, const char **out, size_t *outlen)
{
	const char *s = ++jp->p;
	const char *q = s;
	while (q < jp->end && *q != '"') {
		if (*q == '\\' && q + 1 < jp->end)
			q++;
		q++;
	}
	if (q >= jp->end)
		return jp_fail(jp, "unterminated string");
	char *buf = arena_alloc(jp->arena, (size_t)(q - s) + 1);
	size_t n = 0;
	while (jp->p < q) {
		unsigned char c = (unsigned char)*jp->p;
		if (c < 0x20)
			return jp_fail(jp, "control character 0x%02x in string", c);
		if (c >= 0x80) {
			size_t k = utf8_seq((const uint8_t *)jp->p, (size_t)(q - jp->p));
			if (!k)
				return jp_fail(jp, "invalid UTF-8 in string");
			memcpy(buf + n, jp->p, k);
			n += k;
			jp->p += k;
			continue;
		}
		if (c != '\\') {
			buf[n++] = (char)c;
			jp->p++;
			continue;
		}
		char e = jp->p[1];
		jp->p += 2;
		switch (e) {
		case '"': buf[n++] = '"'; break;
		case '\\': buf[n++] = '\\'; break;
		case '/': buf[n++] = '/'; break;
		case 'b': buf[n++] = '\b'; break;
		case 'f': buf[n++] = '\f'; break;
		case 'n': buf[n++] = '\n'; break;
		case 'r': buf[n++] = '\r'; break;
		case 't': buf[n++] = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			if (q - jp->p < 4 || hex4(jp->p, &cp) != 0)
				return jp_fail(jp, "bad \\u escape");
			jp->p += 4;
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return jp_fail(jp, "lone low surrogate in \\u escape");
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (q - jp->p < 6 || jp->p[0] != '\\' || jp->p[1] != 'u' ||
				    hex4(jp->p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
					return jp_fail(jp, "lone high surrogate in \\u escape");
				jp->p += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			n += put_utf8(buf + n, cp);
			break;
		}
		default:
			jp->p -= 1;
			return jp_fail(jp, "bad escape '\\%c'", e >= 0x21 && e < 0x7f ? e : '?');
		}
	}
	buf[n] = '\0';
	jp->p = q + 1;
	*out = buf;
	*outlen = n;
	return 0;
}

static int jp_number(struct jp *jp, struct json_value *v)
{
	const char *s = jp->p, *q = s;
	bool is_int = true;
	if (q < jp->end && *q == '-')
		q++;
	if (q >= jp->end || *q < '0' || *q > '9') {
		jp->p = q;
		return jp_unexpected(jp, "a digit");
	}
	if (*q == '0') {
		q++;
		if (q < jp->end && *q >= '0' && *q <= '9') {
			jp->p = q;
			return jp_fail(jp, "leading zero in number");
		}
	} else {
		while (q < jp->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < jp->end && *q == '.') {
		is_int = false;
		q++;
		if (q >= jp->end || *q < '0' || *q > '9') {
			jp->p = q;
			return jp_unexpected(jp, "a digit after '.'");
		}
		while (q < jp->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < jp->end && (*q == 'e' || *q == 'E')) {
		is_int = false;
		q++;
		if (q < jp->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= jp->end || *q < '0' || *q > '9') {
			jp->p = q;
			return jp_unexpected(jp, "a digit in the exponent");
		}
		while (q < jp->end && *q >= '0' && *q <= '9')
			q++;
	}
	size_t n = (size_t)(q - s);
	if (n > JSON_MAX_NUMBER)
		return jp_fail(jp, "number longer than %d characters", JSON_MAX_NUMBER);
	char buf[JSON_MAX_NUMBER + 1];
	memcpy(buf, s, n);
	buf[n] = '\0';
	v->type = JSON_NUMBER;
	v->u.num.is_int = false;
	v->u.num.i = 0;
	if (is_int) {
		errno = 0;
		long long i = strtoll(buf, NULL, 10);
		if (errno == 0) {
			v->u.num.is_int = true;
			v->u.num.i = i;
		}
	}
	errno = 0;
	v->u.num.d = strtod(buf, NULL);
	if (!isfinite(v->u.num.d))
		return jp_fail(jp, "number out of range");
	jp->p = q;
	return 0;
}

static int jp_literal(struct jp *jp, const char *word, struct json_value *v, enum json_type t,
                      bool b)
{
	size_t n = strlen(word);
	if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, word, n) != 0)
		return jp_unexpected(jp, "a JSON value");
	jp->p += n;
	v->type = t;
	v->u.b = b;
	return 0;
}

static int jp_value(struct jp *jp, struct json_value *v, int depth);

/* Growable vector of children while a container is open. */
struct jp_vec {
	void *items;
	size_t n, cap, size;
};

static void *vec_push(struct jp_vec *vec)
{
	if (vec->n == vec->cap) {
		vec->cap = vec->cap ? vec->cap * 2 : 8;
		vec->items = xrealloc(vec->items, vec->cap * vec->size);
	}
	void *slot = (char *)vec->items + vec->n * vec->size;
	vec->n++;
	memset(slot, 0, vec->size);
	return slot;
}

static void *vec_to_arena(struct jp *jp, struct jp_vec *vec)
{
	void *p = NULL;
	if (vec->n) {
		p = arena_alloc(jp->arena, vec->n * vec->size);
		memcpy(p, vec->items, vec->n * vec->size);
	}
	free(vec->items);
	vec->items = NULL;
	return p;
}

static int jp_array(struct jp *jp, struct json_value *v, int depth)
{
	struct jp_vec vec = { NULL, 0, 0, sizeof(struct json_value) };
	jp->p++;
	jp_ws(jp);
	if (jp->p < jp->end && *jp->p == ']') {
		jp->p++;
	} else {
		for (;;) {
			struct json_value *item = vec_push(&vec);
			if (jp_value(jp, item, depth + 1) != 0)
				goto fail;
			jp_ws(jp);
			if (jp->p < jp->end && *jp->p == ',') {
				jp->p++;
				continue;
			}
			if (jp->p < jp->end && *jp->p == ']') {
				jp->p++;
				break;
			}
			jp_unexpected(jp, "',' or ']'");
			goto fail;
		}
	}
	v->type = JSON_ARRAY;
	v->u.arr.n = vec.n;
	v->u.arr.items = vec_to_arena(jp, &vec);
	return 0;
fail:
	free(vec.items);
	return -1;
}

static int jp_object(struct jp *jp, struct json_value *v, int depth)
{
	struct jp_vec vec = { NULL, 0, 0, sizeof(struct json_member) };
	jp->p++;
	jp_ws(jp);
	if (jp->p < jp->end && *jp->p == '}') {
		jp->p++;
	} else {
		for (;;) {
			jp_ws(jp);
			if (jp->p >= jp->end || *jp->p != '"') {
				jp_unexpected(jp, "a string key");
				goto fail;
			}
			struct json_member *m = vec_push(&vec);
			if (jp_string(jp, &m->key, &m->key_len) != 0)
				goto fail;
			jp_ws(jp);
			if (jp->p >= jp->end || *jp->p != ':') {
				jp_unexpected(jp, "':'");
				goto fail;
			}
			jp->p++;
			if (jp_value(jp, &m->value, depth + 1) != 0)
				goto fail;
			jp_ws(jp);
			if (jp->p < jp->end && *jp->p == ',') {
				jp->p++;
				continue;
			}
			if (jp->p < jp->end && *jp->p == '}') {
				jp->p++;
				break;
			}
			jp_unexpected(jp, "',' or '}'");
			goto fail;
		}
	}
	v->type = JSON_OBJECT;
	v->u.obj.n = vec.n;
	v->u.obj.members = vec_to_arena(jp, &vec);
	return 0;
fail:
	free(vec.items);
	return -1;
}

/* depth counts the containers around v; v itself may open one more. */
static int jp_value(struct jp *jp, struct json_value *v, int depth)
{
	jp_ws(jp);
	if (jp->p >= jp->end)
		return jp_unexpected(jp, "a JSON value");
	switch (*jp->p) {
	case '{':
	case '[':
		if (depth >= JSON_MAX_DEPTH)
			return jp_fail(jp, "nesting deeper than %d levels", JSON_MAX_DEPTH);
		return *jp->p == '{' ? jp_object(jp, v, depth) : jp_array(jp, v, depth);
	case '"':
		v->type = JSON_STRING;
		return jp_string(jp, &v->u.str.ptr, &v->u.str.len);
	case 't':
		return jp_literal(jp, "true", v, JSON_BOOL, true);
	case 'f':
		return jp_literal(jp, "false", v, JSON_BOOL, false);
	case 'n':
		return jp_literal(jp, "null", v, JSON_NULL, false);
	default:
		if (*jp->p == '-' || (*jp->p >= '0' && *jp->p <= '9'))
			return jp_number(jp, v);
		return jp_unexpected(jp, "a JSON value");
	}
}

int json_parse(struct json_doc *doc, const char *text, size_t len, char *err, size_t errcap)
{
	doc->root = NULL;
	doc->arena = NULL;
	if (errcap)
		err[0] = '\0';
	struct jp jp = {
		.start = text, .p = text, .end = text + len, .err = err, .errcap = errcap,
	};
	if (len > JSON_MAX_INPUT) {
		if (errcap)
			snprintf(err, errcap, "document larger than %zu bytes", JSON_MAX_INPUT);
		return -1;
	}
	jp.arena = xcalloc(1, sizeof(*jp.arena));
	struct json_value *root = arena_alloc(jp.arena, sizeof(*root));
	memset(root, 0, sizeof(*root));
	if (jp_value(&jp, root, 0) != 0)
		goto fail;
	jp_ws(&jp);
	if (jp.p != jp.end) {
		jp_fail(&jp, "trailing characters after the JSON value");
		goto fail;
	}
	doc->root = root;
	doc->arena = jp.arena;
	return 0;
fail:
	arena_free(jp.arena);
	return -1;
}

void json_doc_free(struct json_doc *doc)
{
	arena_free(doc->arena);
	doc->arena = NULL;
	doc->root = NULL;
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	size_t klen = strlen(key);
	for (size_t i = obj->u.obj.n; i-- > 0;) {
		const struct json_member *m = &obj->u.obj.members[i];
		if (m->key_len == klen && memcmp(m->key, key, klen) == 0)
			return &m->value;
	}
	return NULL;
}

const char *json_get_str(const struct json_value *obj, const char *key)
{
	const struct json_value *v = json_get(obj, key);
	return v && v->type == JSON_STRING ? v->u.str.ptr : NULL;
}

const char *json_type_name(enum json_type t)
{
	switch (t) {
	case JSON_NULL: return "null";
	case JSON_BOOL: return "boolean";
	case JSON_NUMBER: return "number";
	case JSON_STRING: return "string";
	case JSON_ARRAY: return "array";
	case JSON_OBJECT: return "object";
	}
	return "?";
}
