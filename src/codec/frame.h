/*
 * AMQP frames: the 7-byte header (type, channel, size), the payload and the
 * frame-end octet.  The reader works over a contiguous input buffer owned by
 * the connection: it either returns a whole frame (a slice into that buffer)
 * or says how many bytes it still needs, checking the declared size against
 * frame_max before the caller grows anything.
 */
#ifndef WARREN_CODEC_FRAME_H
#define WARREN_CODEC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "codec/wire.h"

#define FRAME_HEADER_SIZE 7
#define FRAME_OVERHEAD 8 /* header + frame-end */
#define FRAME_END_OCTET 0xCE

enum frame_type {
	FRAME_METHOD = 1,
	FRAME_HEADER = 2,
	FRAME_BODY = 3,
	FRAME_HEARTBEAT = 8,
};

struct frame {
	uint8_t type;
	uint16_t channel;
	struct bytes payload;
};

/*
 * Parse one frame from buf[0..len).  frame_max is the largest whole frame
 * (header + payload + end) accepted; 0 means no limit.
 *   CODEC_OK        *f filled, *consumed = bytes used by the frame
 *   CODEC_AGAIN     need more bytes; *consumed = total bytes the frame needs
 *                   (or FRAME_HEADER_SIZE while the header is incomplete)
 *   CODEC_E_FRAME_TYPE  unknown type (decided from the header alone)
 *   CODEC_E_FRAME_SIZE  size + 8 > frame_max (decided from the header alone)
 *   CODEC_E_FRAME_END   the octet after the payload is not 0xCE
 * The checks run in that order.  The channel and the size of heartbeats
 * are not checked here: the connection layer decides about those.
 */
int frame_parse(const uint8_t *buf, size_t len, uint32_t frame_max,
                struct frame *f, size_t *consumed);

/* Write a frame header into out[0..7). */
void frame_put_header(uint8_t out[FRAME_HEADER_SIZE], uint8_t type,
                      uint16_t channel, uint32_t size);

/* The 8-byte heartbeat frame. */
extern const uint8_t frame_heartbeat_bytes[8];

/*
 * A method frame: method id (class<<16|method) and its encoded arguments.
 * payload is the method frame's payload.
 */
int frame_method_id(struct bytes payload, uint32_t *id);

/*
 * Content header payload: class-id, weight, body size, then the raw property
 * flags and list (decoded with the generated codec_decode_basic_props()).
 */
struct content_header {
	uint16_t class_id;
	uint64_t body_size;
	struct bytes props; /* flags + property list, as on the wire */
};
int frame_parse_content_header(struct bytes payload, struct content_header *h);

#endif
