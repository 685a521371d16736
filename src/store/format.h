/*
 * The on-disk format of the message store, version 1 (see src/store/README
 * for the reasoning).  Every file starts with a fixed header carrying a
 * magic, a format version and a CRC32C of the header; these are encoded
 * and decoded only here, byte by byte in little-endian order, never by
 * casting structs over buffers, so the format does not depend on the
 * compiler's layout or the host's byte order.
 *
 * A segment (msgs/XXXXXXXX.seg) is a 32-byte header followed by records:
 *
 *   0  u32 magic 'WREC'   4  u32 payload length   8  u8 type
 *   9  u8 zero[3]        12  u32 crc               16 payload
 *
 * crc = CRC32C(salt LE32 | file offset LE64 | bytes 0..11 | payload), where
 * salt is the segment's random salt from its header.  Binding the CRC to
 * the segment and the offset means a record can only be valid where it was
 * written: bytes inside a message body that imitate a record are rejected
 * when recovery resynchronises after damage, and so is stale data.
 */
#ifndef WARREN_STORE_FORMAT_H
#define WARREN_STORE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec/wire.h"

#define STORE_FORMAT_VERSION 1u

#define STORE_SEG_MAGIC "WARRENSG"
#define STORE_SEG_HDR 32u
#define STORE_REC_MAGIC 0x43455257u /* "WREC" as stored (little-endian) */
#define STORE_REC_HDR 16u
/* Payloads are capped so offsets and lengths fit 32 bits in memory. */
#define STORE_MAX_PAYLOAD (1u << 30)

enum store_rec_type {
	STORE_REC_MSG = 1,   /* a message: id, exchange, routing key, props, body */
	STORE_REC_ENQ = 2,   /* queue entry: (queue, msg) with its sequence number */
	STORE_REC_DLV = 3,   /* the entry was delivered (redelivered after a crash) */
	STORE_REC_ACK = 4,   /* the entry is gone; names the segment of its ENQ */
	STORE_REC_QDROP = 5, /* every entry of the queue up to a segment is gone */
	STORE_REC_PAD = 6,   /* filler, ignored (replaces an unreadable copy) */
};

#define STORE_ENQ_DELIVERED 0x01u

#define STORE_ENQ_SIZE (STORE_REC_HDR + 24u)
#define STORE_DLV_SIZE (STORE_REC_HDR + 16u)
#define STORE_ACK_SIZE (STORE_REC_HDR + 16u)
#define STORE_QDROP_SIZE (STORE_REC_HDR + 16u)

/* A decoded record; slices point into the buffer it was decoded from. */
struct store_rec {
	uint8_t type;
	uint8_t flags;      /* ENQ */
	uint32_t queue_id;  /* ENQ DLV ACK QDROP */
	uint32_t seg;       /* ACK: segment of the ENQ; QDROP: limit segment */
	uint32_t lo;        /* QDROP: oldest segment holding a dropped ENQ */
	uint64_t msg_id;    /* MSG ENQ DLV ACK */
	uint64_t seq;       /* ENQ */
	struct bytes exchange, routing_key, props;
	const uint8_t *body;
	uint64_t body_len;
};

static inline void store_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void store_put64(uint8_t *p, uint64_t v)
{
	store_put32(p, (uint32_t)v);
	store_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t store_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t store_get64(const uint8_t *p)
{
	return (uint64_t)store_get32(p) | (uint64_t)store_get32(p + 4) << 32;
}

/* Segment header: encode one; check one (0 ok, -1 bad magic/crc/version). */
void store_seg_hdr_encode(uint8_t out[STORE_SEG_HDR], uint32_t seg_id, uint32_t salt);
int store_seg_hdr_check(const uint8_t *p, size_t len, uint32_t *seg_id, uint32_t *salt);

/*
 * Record size for a message, 0 if it cannot be stored (exchange or routing
 * key over 255 bytes, payload over STORE_MAX_PAYLOAD).
 */
uint64_t store_rec_msg_size(size_t ex_len, size_t rk_len, size_t props_len, uint64_t body_len);

/*
 * Encoders write a whole record with a zero CRC (the store thread seals
 * records just before writing them, off the event loop) and return its
 * size.  out must have room for the size they return.
 */
size_t store_rec_encode_msg(uint8_t *out, uint64_t msg_id, struct bytes exchange,
                            struct bytes routing_key, struct bytes props,
                            const uint8_t *body, uint64_t body_len);
size_t store_rec_encode_enq(uint8_t *out, uint32_t queue_id, uint64_t msg_id,
                            uint64_t seq, uint8_t flags);
size_t store_rec_encode_dlv(uint8_t *out, uint32_t queue_id, uint64_t msg_id);
size_t store_rec_encode_ack(uint8_t *out, uint32_t queue_id, uint64_t msg_id, uint32_t enq_seg);
size_t store_rec_encode_qdrop(uint8_t *out, uint32_t queue_id, uint32_t limit, uint32_t lo);
size_t store_rec_encode_pad(uint8_t *out, size_t total);

/* The CRC of the record at rec (whose header length field is filled in). */
uint32_t store_rec_crc(const uint8_t *rec, uint32_t salt, uint64_t off);
/* The same over a record held in two pieces (head holds at least the 16-byte header). */
uint32_t store_rec_crc_split(const uint8_t *head, size_t head_len, const uint8_t *tail,
                             size_t tail_len, uint32_t salt, uint64_t off);
/* Fill in the CRC of an encoded record that will live at (salt, off). */
void store_rec_seal(uint8_t *rec, uint32_t salt, uint64_t off);

enum store_rec_check {
	STORE_CHECK_OK = 0,
	STORE_CHECK_SHORT = 1, /* the record runs past the bytes available */
	STORE_CHECK_BAD = 2,   /* wrong magic, length, type or CRC */
};
/* Check the record at p (at file offset off), *rec_len = its total size. */
enum store_rec_check store_rec_check(const uint8_t *p, size_t avail, uint32_t salt,
                                     uint64_t off, uint32_t *rec_len);
/* Decode a record that passed store_rec_check: 0, or -1 if its payload is malformed. */
int store_rec_decode(const uint8_t *p, uint32_t rec_len, struct store_rec *r);

/*
 * Reads the records of one segment file sequentially with pread (so a
 * disk error is an errno, never a SIGBUS), verifying each, and
 * resynchronises after damage: it searches for the next offset where a
 * whole record checks out.  A damaged region followed by a good record is
 * counted; one that runs to the end of the file is the tail, and the
 * caller decides (truncate the last segment, count it elsewhere).
 */
struct store_reader {
	int fd;
	uint32_t salt;
	uint64_t size;          /* file size */
	uint8_t *buf;
	size_t cap;
	uint64_t buf_off;       /* buf holds file bytes [buf_off, buf_off + buf_len) */
	size_t buf_len;
	uint64_t pos;           /* next offset to examine */
	uint64_t damaged;       /* damaged regions followed by a good record */
	uint64_t damaged_bytes;
	uint64_t tail;          /* end of the last good record (at the end: where garbage starts) */
	int error;              /* errno of a failed read */
};
/* Start reading at `from` (normally STORE_SEG_HDR). */
void store_reader_init(struct store_reader *r, int fd, uint32_t salt, uint64_t size, uint64_t from);
void store_reader_free(struct store_reader *r);
/* 1 and the next good record (valid until the next call); 0 at the end; -1 on a read error. */
int store_reader_next(struct store_reader *r, const uint8_t **rec, uint64_t *off, uint32_t *len);

#endif
