/*
 * Encoding and checking of segment headers and records (format.h).  The
 * checker never reads outside [p, p + avail): lengths are compared with
 * what remains before any access.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/crc32c.h"
#include "store/format.h"
#include "util/xalloc.h"

void store_seg_hdr_encode(uint8_t out[STORE_SEG_HDR], uint32_t seg_id, uint32_t salt)
{
	memset(out, 0, STORE_SEG_HDR);
	memcpy(out, STORE_SEG_MAGIC, 8);
	store_put32(out + 8, STORE_FORMAT_VERSION);
	store_put32(out + 12, seg_id);
	store_put32(out + 16, STORE_SEG_HDR);
	store_put32(out + 20, salt);
	store_put32(out + 28, crc32c(out, 28));
}

int store_seg_hdr_check(const uint8_t *p, size_t len, uint32_t *seg_id, uint32_t *salt)
{
	if (len < STORE_SEG_HDR || memcmp(p, STORE_SEG_MAGIC, 8) != 0)
		return -1;
	if (store_get32(p + 28) != crc32c(p, 28))
		return -1;
	if (store_get32(p + 8) != STORE_FORMAT_VERSION || store_get32(p + 16) != STORE_SEG_HDR)
		return -1;
	*seg_id = store_get32(p + 12);
	*salt = store_get32(p + 20);
	return 0;
}

static void rec_header(uint8_t *out, uint32_t payload, uint8_t type)
{
	store_put32(out, STORE_REC_MAGIC);
	store_put32(out + 4, payload);
	out[8] = type;
	out[9] = out[10] = out[11] = 0;
	store_put32(out + 12, 0);
}

uint64_t store_rec_msg_size(size_t ex_len, size_t rk_len, size_t props_len, uint64_t body_len)
{
	if (ex_len > 255 || rk_len > 255 || props_len > STORE_MAX_PAYLOAD ||
	    body_len > STORE_MAX_PAYLOAD)
		return 0;
	uint64_t payload = 8 + 8 + 1 + (uint64_t)ex_len + 1 + (uint64_t)rk_len + 4 +
	                   (uint64_t)props_len + body_len;
	if (payload > STORE_MAX_PAYLOAD)
		return 0;
	return STORE_REC_HDR + payload;
}

size_t store_rec_encode_msg(uint8_t *out, uint64_t msg_id, struct bytes exchange,
                            struct bytes routing_key, struct bytes props,
                            const uint8_t *body, uint64_t body_len)
{
	uint64_t total = store_rec_msg_size(exchange.len, routing_key.len, props.len, body_len);
	uint8_t *p = out + STORE_REC_HDR;

	rec_header(out, (uint32_t)(total - STORE_REC_HDR), STORE_REC_MSG);
	store_put64(p, msg_id);
	store_put64(p + 8, body_len);
	p += 16;
	*p++ = (uint8_t)exchange.len;
	if (exchange.len)
		memcpy(p, exchange.ptr, exchange.len);
	p += exchange.len;
	*p++ = (uint8_t)routing_key.len;
	if (routing_key.len)
		memcpy(p, routing_key.ptr, routing_key.len);
	p += routing_key.len;
	store_put32(p, (uint32_t)props.len);
	p += 4;
	if (props.len)
		memcpy(p, props.ptr, props.len);
	p += props.len;
	if (body_len)
		memcpy(p, body, (size_t)body_len);
	return (size_t)total;
}

size_t store_rec_encode_enq(uint8_t *out, uint32_t queue_id, uint64_t msg_id,
                            uint64_t seq, uint8_t flags)
{
	uint8_t *p = out + STORE_REC_HDR;

	rec_header(out, STORE_ENQ_SIZE - STORE_REC_HDR, STORE_REC_ENQ);
	store_put32(p, queue_id);
	p[4] = flags;
	p[5] = p[6] = p[7] = 0;
	store_put64(p + 8, msg_id);
	store_put64(p + 16, seq);
	return STORE_ENQ_SIZE;
}

size_t store_rec_encode_dlv(uint8_t *out, uint32_t queue_id, uint64_t msg_id)
{
	uint8_t *p = out + STORE_REC_HDR;

	rec_header(out, STORE_DLV_SIZE - STORE_REC_HDR, STORE_REC_DLV);
	store_put32(p, queue_id);
	store_put32(p + 4, 0);
	store_put64(p + 8, msg_id);
	return STORE_DLV_SIZE;
}

size_t store_rec_encode_ack(uint8_t *out, uint32_t queue_id, uint64_t msg_id, uint32_t enq_seg)
{
	uint8_t *p = out + STORE_REC_HDR;

	rec_header(out, STORE_ACK_SIZE - STORE_REC_HDR, STORE_REC_ACK);
	store_put32(p, queue_id);
	store_put32(p + 4, enq_seg);
	store_put64(p + 8, msg_id);
	return STORE_ACK_SIZE;
}

size_t store_rec_encode_qdrop(uint8_t *out, uint32_t queue_id, uint32_t limit, uint32_t lo)
{
	uint8_t *p = out + STORE_REC_HDR;

	rec_header(out, STORE_QDROP_SIZE - STORE_REC_HDR, STORE_REC_QDROP);
	store_put32(p, queue_id);
	store_put32(p + 4, limit);
	store_put32(p + 8, lo);
	store_put32(p + 12, 0);
	return STORE_QDROP_SIZE;
}

size_t store_rec_encode_pad(uint8_t *out, size_t total)
{
	rec_header(out, (uint32_t)(total - STORE_REC_HDR), STORE_REC_PAD);
	memset(out + STORE_REC_HDR, 0, total - STORE_REC_HDR);
	return total;
}

uint32_t store_rec_crc(const uint8_t *rec, uint32_t salt, uint64_t off)
{
	uint8_t pre[12];
	uint32_t c;

	store_put32(pre, salt);
	store_put64(pre + 4, off);
	c = crc32c_update(0, pre, sizeof(pre));
	c = crc32c_update(c, rec, 12);
	return crc32c_update(c, rec + STORE_REC_HDR, store_get32(rec + 4));
}

uint32_t store_rec_crc_split(const uint8_t *head, size_t head_len, const uint8_t *tail,
                             size_t tail_len, uint32_t salt, uint64_t off)
{
	uint8_t pre[12];
	uint32_t c;

	store_put32(pre, salt);
	store_put64(pre + 4, off);
	c = crc32c_update(0, pre, sizeof(pre));
	c = crc32c_update(c, head, 12);
	c = crc32c_update(c, head + STORE_REC_HDR, head_len - STORE_REC_HDR);
	return crc32c_update(c, tail, tail_len);
}

void store_rec_seal(uint8_t *rec, uint32_t salt, uint64_t off)
{
	store_put32(rec + 12, store_rec_crc(rec, salt, off));
}

enum store_rec_check store_rec_check(const uint8_t *p, size_t avail, uint32_t salt,
                                     uint64_t off, uint32_t *rec_len)
{
	uint32_t payload;

	if (avail < STORE_REC_HDR)
		return avail >= 4 && store_get32(p) != STORE_REC_MAGIC ? STORE_CHECK_BAD
		                                                       : STORE_CHECK_SHORT;
	if (store_get32(p) != STORE_REC_MAGIC)
		return STORE_CHECK_BAD;
	payload = store_get32(p + 4);
	if (payload > STORE_MAX_PAYLOAD || p[8] < STORE_REC_MSG || p[8] > STORE_REC_PAD ||
	    p[9] || p[10] || p[11])
		return STORE_CHECK_BAD;
	if (avail - STORE_REC_HDR < payload)
		return STORE_CHECK_SHORT;
	if (store_get32(p + 12) != store_rec_crc(p, salt, off))
		return STORE_CHECK_BAD;
	*rec_len = STORE_REC_HDR + payload;
	return STORE_CHECK_OK;
}

static int decode_msg(const uint8_t *p, uint32_t len, uint64_t body_len, struct store_rec *r)
{
	struct rd in = rd_init(p, len);
	uint32_t props_len;
	uint8_t n;

	if (rd_u8(&in, &n) || rd_bytes(&in, n, &r->exchange) || rd_u8(&in, &n) ||
	    rd_bytes(&in, n, &r->routing_key) || in.left < 4)
		return -1;
	props_len = store_get32(in.p);
	in.p += 4;
	in.left -= 4;
	if (rd_bytes(&in, props_len, &r->props))
		return -1;
	if (body_len != in.left)
		return -1;
	r->body = in.p;
	r->body_len = body_len;
	return 0;
}

int store_rec_decode(const uint8_t *p, uint32_t rec_len, struct store_rec *r)
{
	const uint8_t *q = p + STORE_REC_HDR;
	uint32_t len = rec_len - STORE_REC_HDR;

	memset(r, 0, sizeof(*r));
	r->type = p[8];
	switch (r->type) {
	case STORE_REC_MSG:
		if (len < 16 + 6)
			return -1;
		r->msg_id = store_get64(q);
		return decode_msg(q + 16, len - 16, store_get64(q + 8), r);
	case STORE_REC_ENQ:
		if (len != STORE_ENQ_SIZE - STORE_REC_HDR)
			return -1;
		r->queue_id = store_get32(q);
		r->flags = q[4];
		r->msg_id = store_get64(q + 8);
		r->seq = store_get64(q + 16);
		return 0;
	case STORE_REC_DLV:
		if (len != STORE_DLV_SIZE - STORE_REC_HDR)
			return -1;
		r->queue_id = store_get32(q);
		r->msg_id = store_get64(q + 8);
		return 0;
	case STORE_REC_ACK:
		if (len != STORE_ACK_SIZE - STORE_REC_HDR)
			return -1;
		r->queue_id = store_get32(q);
		r->seg = store_get32(q + 4);
		r->msg_id = store_get64(q + 8);
		return 0;
	case STORE_REC_QDROP:
		if (len != STORE_QDROP_SIZE - STORE_REC_HDR)
			return -1;
		r->queue_id = store_get32(q);
		r->seg = store_get32(q + 4);
		r->lo = store_get32(q + 8);
		return 0;
	case STORE_REC_PAD:
		return 0;
	default:
		return -1;
	}
}

#define READER_CHUNK (1u << 20)

void store_reader_init(struct store_reader *r, int fd, uint32_t salt, uint64_t size, uint64_t from)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->salt = salt;
	r->size = size;
	r->pos = from < size ? from : size;
	r->tail = r->pos;
	r->buf_off = r->pos;
}

void store_reader_free(struct store_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

/*
 * Make buf hold [pos, pos + need) or as much of it as the file has.
 * Returns the bytes available from pos, or -1 on a read error.
 */
static int64_t reader_fill(struct store_reader *r, uint64_t need)
{
	uint64_t end = r->buf_off + r->buf_len;
	uint64_t want_end = r->pos + need;

	if (want_end > r->size)
		want_end = r->size;
	if (r->pos >= r->buf_off && want_end <= end)
		return (int64_t)(end - r->pos);
	/* Keep the bytes from pos on, move them to the front, read more. */
	size_t keep = 0;
	if (r->pos >= r->buf_off && r->pos < end) {
		keep = (size_t)(end - r->pos);
		memmove(r->buf, r->buf + (r->pos - r->buf_off), keep);
	}
	size_t room = (size_t)(want_end - r->pos);
	if (room < READER_CHUNK)
		room = READER_CHUNK;
	if (r->cap < room) {
		r->buf = xrealloc(r->buf, room);
		r->cap = room;
	}
	r->buf_off = r->pos;
	r->buf_len = keep;
	uint64_t file_left = r->size - (r->pos + keep);
	size_t to_read = r->cap - keep;
	if (to_read > file_left)
		to_read = (size_t)file_left;
	while (to_read) {
		ssize_t n = pread(r->fd, r->buf + r->buf_len, to_read,
		                  (off_t)(r->buf_off + r->buf_len));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r->error = errno;
			return -1;
		}
		if (n == 0) {
			/* The file shrank under us: treat the rest as absent. */
			r->size = r->buf_off + r->buf_len;
			break;
		}
		r->buf_len += (size_t)n;
		to_read -= (size_t)n;
	}
	return (int64_t)(r->buf_len);
}

int store_reader_next(struct store_reader *r, const uint8_t **rec, uint64_t *off, uint32_t *len)
{
	static const uint8_t magic[4] = { 'W', 'R', 'E', 'C' };
	bool damaged = false;
	uint64_t damage_start = r->pos;

	while (r->pos < r->size) {
		int64_t avail = reader_fill(r, STORE_REC_HDR);
		if (avail < 0)
			return -1;
		const uint8_t *p = r->buf + (r->pos - r->buf_off);
		uint64_t need = STORE_REC_HDR;
		if (avail >= (int64_t)STORE_REC_HDR && store_get32(p) == STORE_REC_MAGIC &&
		    store_get32(p + 4) <= STORE_MAX_PAYLOAD)
			need += store_get32(p + 4);
		if ((uint64_t)avail < need && r->pos + need <= r->size) {
			avail = reader_fill(r, need);
			if (avail < 0)
				return -1;
			p = r->buf + (r->pos - r->buf_off);
		}
		if (store_rec_check(p, (size_t)avail, r->salt, r->pos, len) == STORE_CHECK_OK) {
			if (damaged) {
				r->damaged++;
				r->damaged_bytes += r->pos - damage_start;
			}
			*rec = p;
			*off = r->pos;
			r->pos += *len;
			r->tail = r->pos;
			return 1;
		}
		/* Damage: look for the next magic in what is buffered. */
		if (!damaged) {
			damaged = true;
			damage_start = r->pos;
		}
		const uint8_t *from = p + 1;
		const uint8_t *bend = r->buf + r->buf_len;
		const uint8_t *hit = from < bend ? memmem(from, (size_t)(bend - from), magic, 4) : NULL;
		if (hit) {
			r->pos = r->buf_off + (uint64_t)(hit - r->buf);
		} else {
			/* Keep the last 3 bytes: a magic may straddle the refill. */
			uint64_t next = r->buf_off + r->buf_len;
			next = next > r->pos + 4 ? next - 3 : r->pos + 1;
			r->pos = next < r->size ? next : r->size;
		}
	}
	if (damaged)
		r->tail = damage_start;
	else
		r->tail = r->pos;
	return 0;
}
