/*
 * Bounds-checked access to AMQP wire data.  All peer bytes are read through
 * struct rd, which compares every length with the bytes *remaining* (never
 * with offset+len, which can wrap), so no decoder does pointer arithmetic of
 * its own.  Writers use struct wr, which refuses to run past its end.
 */
#ifndef WARREN_CODEC_WIRE_H
#define WARREN_CODEC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec/errors.h"

/* A slice of bytes owned by someone else (usually the frame being decoded). */
struct bytes {
	const uint8_t *ptr;
	size_t len;
};

/*
 * An encoded field table, without its 4-byte length prefix.  Decoders
 * validate the whole table before handing it out, so the table.h iterators
 * can walk it later without failing on structure.
 */
struct ftable {
	const uint8_t *ptr;
	size_t len;
};

static inline struct bytes bytes_of(const char *s)
{
	struct bytes b = { (const uint8_t *)s, s ? strlen(s) : 0 };
	return b;
}

static inline bool bytes_eq(struct bytes a, struct bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool bytes_eq_str(struct bytes a, const char *s)
{
	return bytes_eq(a, bytes_of(s));
}

struct rd {
	const uint8_t *p;
	size_t left;
};

static inline struct rd rd_init(const void *p, size_t len)
{
	struct rd r = { (const uint8_t *)p, len };
	return r;
}

static inline int rd_u8(struct rd *r, uint8_t *v)
{
	if (r->left < 1)
		return CODEC_E_TRUNCATED;
	*v = r->p[0];
	r->p += 1;
	r->left -= 1;
	return CODEC_OK;
}

static inline int rd_u16(struct rd *r, uint16_t *v)
{
	if (r->left < 2)
		return CODEC_E_TRUNCATED;
	*v = (uint16_t)((uint16_t)r->p[0] << 8 | r->p[1]);
	r->p += 2;
	r->left -= 2;
	return CODEC_OK;
}

static inline int rd_u32(struct rd *r, uint32_t *v)
{
	if (r->left < 4)
		return CODEC_E_TRUNCATED;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 |
	     (uint32_t)r->p[2] << 8 | (uint32_t)r->p[3];
	r->p += 4;
	r->left -= 4;
	return CODEC_OK;
}

static inline int rd_u64(struct rd *r, uint64_t *v)
{
	uint32_t hi, lo;
	if (r->left < 8)
		return CODEC_E_TRUNCATED;
	rd_u32(r, &hi);
	rd_u32(r, &lo);
	*v = (uint64_t)hi << 32 | lo;
	return CODEC_OK;
}

/* Take n raw bytes as a slice. */
static inline int rd_bytes(struct rd *r, size_t n, struct bytes *out)
{
	if (r->left < n)
		return CODEC_E_TRUNCATED;
	out->ptr = r->p;
	out->len = n;
	r->p += n;
	r->left -= n;
	return CODEC_OK;
}

static inline int rd_shortstr(struct rd *r, struct bytes *out)
{
	uint8_t n;
	int rc = rd_u8(r, &n);
	if (rc != CODEC_OK)
		return rc;
	return rd_bytes(r, n, out);
}

static inline int rd_longstr(struct rd *r, struct bytes *out)
{
	uint32_t n;
	int rc = rd_u32(r, &n);
	if (rc != CODEC_OK)
		return rc;
	return rd_bytes(r, n, out);
}

struct wr {
	uint8_t *p;
	size_t left;
};

static inline struct wr wr_init(void *p, size_t cap)
{
	struct wr w = { (uint8_t *)p, cap };
	return w;
}

static inline int wr_u8(struct wr *w, uint8_t v)
{
	if (w->left < 1)
		return CODEC_E_NOSPACE;
	w->p[0] = v;
	w->p += 1;
	w->left -= 1;
	return CODEC_OK;
}

static inline int wr_u16(struct wr *w, uint16_t v)
{
	if (w->left < 2)
		return CODEC_E_NOSPACE;
	w->p[0] = (uint8_t)(v >> 8);
	w->p[1] = (uint8_t)v;
	w->p += 2;
	w->left -= 2;
	return CODEC_OK;
}

static inline int wr_u32(struct wr *w, uint32_t v)
{
	if (w->left < 4)
		return CODEC_E_NOSPACE;
	w->p[0] = (uint8_t)(v >> 24);
	w->p[1] = (uint8_t)(v >> 16);
	w->p[2] = (uint8_t)(v >> 8);
	w->p[3] = (uint8_t)v;
	w->p += 4;
	w->left -= 4;
	return CODEC_OK;
}

static inline int wr_u64(struct wr *w, uint64_t v)
{
	if (w->left < 8)
		return CODEC_E_NOSPACE;
	wr_u32(w, (uint32_t)(v >> 32));
	wr_u32(w, (uint32_t)v);
	return CODEC_OK;
}

static inline int wr_raw(struct wr *w, const void *src, size_t n)
{
	if (w->left < n)
		return CODEC_E_NOSPACE;
	if (n)
		memcpy(w->p, src, n);
	w->p += n;
	w->left -= n;
	return CODEC_OK;
}

/* Short strings longer than 255 bytes cannot be encoded: CODEC_E_NOSPACE. */
static inline int wr_shortstr(struct wr *w, struct bytes s)
{
	if (s.len > 255)
		return CODEC_E_NOSPACE;
	if (w->left < 1 + s.len)
		return CODEC_E_NOSPACE;
	wr_u8(w, (uint8_t)s.len);
	return wr_raw(w, s.ptr, s.len);
}

static inline int wr_longstr(struct wr *w, struct bytes s)
{
	/* Compare with what is left after the prefix: 4 + len could wrap. */
	if ((uint64_t)s.len > UINT32_MAX || w->left < 4 || w->left - 4 < s.len)
		return CODEC_E_NOSPACE;
	wr_u32(w, (uint32_t)s.len);
	return wr_raw(w, s.ptr, s.len);
}

#endif
