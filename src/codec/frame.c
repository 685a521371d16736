/*
 * The frame reader and the small frame-level helpers.
 *
 * frame_parse() is resumable by being stateless: the connection keeps its
 * unread bytes contiguous and calls again with more of them.  It decides
 * everything it can from the 7-byte header first: a declared size above
 * frame_max is refused before the caller reads (or allocates room for) the
 * payload, so a peer cannot make us buffer a 4 GiB frame.  Only a whole
 * frame is handed out, and only after its frame-end octet checked out.
 */
#include "codec/frame.h"

const uint8_t frame_heartbeat_bytes[8] = {
	FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END_OCTET
};

static int frame_type_known(uint8_t type)
{
	return type == FRAME_METHOD || type == FRAME_HEADER ||
	       type == FRAME_BODY || type == FRAME_HEARTBEAT;
}

int frame_parse(const uint8_t *buf, size_t len, uint32_t frame_max,
                struct frame *f, size_t *consumed)
{
	struct rd r = rd_init(buf, len);
	/* initialised only to quiet the compiler: the lengths were checked */
	uint8_t type = 0, end = 0;
	uint16_t channel = 0;
	uint32_t size = 0;
	uint64_t total;
	struct bytes payload;

	*consumed = 0;
	if (len < FRAME_HEADER_SIZE) {
		*consumed = FRAME_HEADER_SIZE;
		return CODEC_AGAIN;
	}
	rd_u8(&r, &type);
	rd_u16(&r, &channel);
	rd_u32(&r, &size);

	/* The type first: bytes that are not a frame at all (a second
	 * protocol header, an HTTP request) are named for what they are
	 * rather than as a frame whose "size" happens to be huge. */
	if (!frame_type_known(type))
		return CODEC_E_FRAME_TYPE;
	/* 64-bit sum: size + 8 does not wrap, and a frame that cannot even
	 * be addressed on this host is "too large" too. */
	total = (uint64_t)size + FRAME_OVERHEAD;
	if ((frame_max != 0 && total > frame_max) || total > SIZE_MAX)
		return CODEC_E_FRAME_SIZE;
	if (len < total) {
		*consumed = (size_t)total;
		return CODEC_AGAIN;
	}

	rd_bytes(&r, size, &payload);
	rd_u8(&r, &end);
	if (end != FRAME_END_OCTET)
		return CODEC_E_FRAME_END;

	f->type = type;
	f->channel = channel;
	f->payload = payload;
	*consumed = (size_t)total;
	return CODEC_OK;
}

void frame_put_header(uint8_t out[FRAME_HEADER_SIZE], uint8_t type,
                      uint16_t channel, uint32_t size)
{
	struct wr w = wr_init(out, FRAME_HEADER_SIZE);

	wr_u8(&w, type);
	wr_u16(&w, channel);
	wr_u32(&w, size);
}

int frame_method_id(struct bytes payload, uint32_t *id)
{
	struct rd r = rd_init(payload.ptr, payload.len);

	/* class-id and method-id are the least a method frame carries */
	if (rd_u32(&r, id) != CODEC_OK)
		return CODEC_E_BAD_FRAME;
	return CODEC_OK;
}

/*
 * The weight field is read and ignored: the spec says it must be zero, but
 * RabbitMQ does not check it and a client sending something else would
 * otherwise be disconnected for nothing.
 */
int frame_parse_content_header(struct bytes payload, struct content_header *h)
{
	struct rd r = rd_init(payload.ptr, payload.len);
	uint16_t weight;
	int rc;

	if ((rc = rd_u16(&r, &h->class_id)) != CODEC_OK ||
	    (rc = rd_u16(&r, &weight)) != CODEC_OK ||
	    (rc = rd_u64(&r, &h->body_size)) != CODEC_OK)
		return rc;
	/* at least the 16-bit property flags must follow */
	if (r.left < 2)
		return CODEC_E_TRUNCATED;
	h->props.ptr = r.p;
	h->props.len = r.left;
	return CODEC_OK;
}
