/*
 * Fuzz target: the byte stream a peer sends after the protocol header.
 * Frames are parsed one after another as the connection would; method
 * frames go through the generated method decoder, content headers through
 * frame_parse_content_header() and the property decoder, and every field
 * table found is walked to the bottom.  Whatever decodes is re-encoded and
 * decoded again to check the encoders against the decoders.
 */
#include <string.h>

#include "fuzz.h"
#include "codec/frame.h"
#include "codec/gen_methods.h"

/* RabbitMQ's default frame_max, so oversize frames are exercised too. */
#define FUZZ_FRAME_MAX 131072

struct stream {
	const uint8_t *data; /* the whole input: every slice lies inside it */
	size_t size;
};

static void walk(const struct stream *s, struct ftable t)
{
	/* decoders validate tables, so this must hold and walk cleanly */
	FUZZ_CHECK(ftable_validate(t.ptr, t.len, 0) == CODEC_OK);
	fuzz_walk_table(t, s->data, s->size);
}

/* The tables a method carries, walked. */
static void walk_method_tables(const struct stream *s, uint32_t id,
                               const union codec_method_args *a)
{
	switch (id) {
	case CODEC_CONNECTION_START:
		walk(s, a->connection_start.server_properties);
		break;
	case CODEC_CONNECTION_START_OK: {
		/* AMQPLAIN sends its response as table contents: the auth
		 * code will validate it the same way */
		struct bytes resp = a->connection_start_ok.response;
		struct ftable rt = { resp.ptr, resp.len };
		walk(s, a->connection_start_ok.client_properties);
		if (ftable_validate(resp.ptr, resp.len, 0) == CODEC_OK)
			fuzz_walk_table(rt, s->data, s->size);
		break;
	}
	case CODEC_EXCHANGE_DECLARE:
		walk(s, a->exchange_declare.arguments);
		break;
	case CODEC_EXCHANGE_BIND:
		walk(s, a->exchange_bind.arguments);
		break;
	case CODEC_EXCHANGE_UNBIND:
		walk(s, a->exchange_unbind.arguments);
		break;
	case CODEC_QUEUE_DECLARE:
		walk(s, a->queue_declare.arguments);
		break;
	case CODEC_QUEUE_BIND:
		walk(s, a->queue_bind.arguments);
		break;
	case CODEC_QUEUE_UNBIND:
		walk(s, a->queue_unbind.arguments);
		break;
	case CODEC_BASIC_CONSUME:
		walk(s, a->basic_consume.arguments);
		break;
	default:
		break;
	}
}

/*
 * encode(decode(x)) is exactly codec_method_size() long and decodes to
 * the same method; encoding that again gives the same bytes.  (x itself
 * need not come back: reserved fields and unused bits are not kept.)
 */
static void check_method_round_trip(uint32_t id, const union codec_method_args *a)
{
	union codec_method_args a2;
	size_t n = codec_method_size(id, a);
	uint8_t *b1, *b2;
	struct wr w;
	uint32_t id2;

	FUZZ_CHECK(n >= 4);
	b1 = malloc(n);
	b2 = malloc(n);
	FUZZ_CHECK(b1 != NULL && b2 != NULL);
	w = wr_init(b1, n);
	FUZZ_CHECK(codec_method_encode(&w, id, a) == CODEC_OK);
	FUZZ_CHECK(w.left == 0);
	/* one byte short must be refused, not overrun */
	if (n > 4) {
		w = wr_init(b2, n - 1);
		FUZZ_CHECK(codec_method_encode(&w, id, a) == CODEC_E_NOSPACE);
		FUZZ_CHECK(w.left == n - 1);
	}

	struct bytes p1 = { b1, n };
	FUZZ_CHECK(codec_method_decode(p1, &id2, &a2) == CODEC_OK);
	FUZZ_CHECK(id2 == id);
	FUZZ_CHECK(codec_method_size(id, &a2) == n);
	w = wr_init(b2, n);
	FUZZ_CHECK(codec_method_encode(&w, id, &a2) == CODEC_OK);
	FUZZ_CHECK(w.left == 0);
	FUZZ_CHECK(memcmp(b1, b2, n) == 0);
	free(b1);
	free(b2);
}

static void do_method(const struct stream *s, struct bytes payload)
{
	union codec_method_args args;
	uint32_t id, id0;
	int rc;

	rc = frame_method_id(payload, &id0);
	FUZZ_CHECK(rc == (payload.len >= 4 ? CODEC_OK : CODEC_E_BAD_FRAME));
	memset(&args, 0, sizeof(args));
	rc = codec_method_decode(payload, &id, &args);
	if (payload.len >= 4)
		FUZZ_CHECK(id == id0);
	FUZZ_CHECK(rc <= 0 && rc >= CODEC_E_BAD_FRAME);
	if (rc == CODEC_E_UNKNOWN_CLASS || rc == CODEC_E_UNKNOWN_METHOD)
		FUZZ_CHECK(codec_method_lookup(id) == NULL);
	if (rc != CODEC_OK)
		return;
	FUZZ_CHECK(codec_method_lookup(id) != NULL);
	walk_method_tables(s, id, &args);
	check_method_round_trip(id, &args);
}

static void do_content_header(const struct stream *s, struct bytes payload)
{
	struct content_header h;
	struct codec_basic_props p, p2;
	struct rd r;
	int rc;

	rc = frame_parse_content_header(payload, &h);
	FUZZ_CHECK(rc == CODEC_OK || rc == CODEC_E_TRUNCATED);
	if (rc != CODEC_OK)
		return;
	FUZZ_CHECK(h.props.len >= 2 && h.props.len == payload.len - 12);
	r = rd_init(h.props.ptr, h.props.len);
	rc = codec_decode_basic_props(&r, &p);
	FUZZ_CHECK(rc == CODEC_OK || rc == CODEC_E_TRUNCATED ||
	           rc == CODEC_E_BAD_PROPS || rc == CODEC_E_FIELD_TYPE ||
	           rc == CODEC_E_TABLE_DEPTH);
	if (rc != CODEC_OK)
		return;
	if (p.flags & CODEC_BASIC_HEADERS_FLAG)
		walk(s, p.headers);

	/* Properties are kept as they arrived and re-sent unchanged, so
	 * encoding them must reproduce the bytes the decoder consumed. */
	size_t used = h.props.len - r.left;
	size_t n = codec_size_basic_props(&p);
	FUZZ_CHECK(n == used);
	uint8_t *out = malloc(n);
	FUZZ_CHECK(out != NULL);
	struct wr w = wr_init(out, n);
	FUZZ_CHECK(codec_encode_basic_props(&w, &p) == CODEC_OK);
	FUZZ_CHECK(w.left == 0);
	FUZZ_CHECK(memcmp(out, h.props.ptr, n) == 0);
	r = rd_init(out, n);
	FUZZ_CHECK(codec_decode_basic_props(&r, &p2) == CODEC_OK);
	FUZZ_CHECK(r.left == 0 && p2.flags == p.flags);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stream s = { data, size };
	size_t off = 0, used;
	struct frame f;
	int rc;

	while (off < size) {
		rc = frame_parse(data + off, size - off, FUZZ_FRAME_MAX, &f, &used);
		if (rc == CODEC_AGAIN) {
			/* asks for more than there is, and never more than allowed */
			FUZZ_CHECK(used > size - off && used <= FUZZ_FRAME_MAX);
			break;
		}
		if (rc != CODEC_OK) {
			FUZZ_CHECK(rc == CODEC_E_FRAME_SIZE || rc == CODEC_E_FRAME_END ||
			           rc == CODEC_E_FRAME_TYPE);
			break;
		}
		FUZZ_CHECK(used >= FRAME_OVERHEAD && used <= size - off &&
		           used <= FUZZ_FRAME_MAX);
		FUZZ_CHECK(f.payload.len == used - FRAME_OVERHEAD &&
		           f.payload.ptr == data + off + FRAME_HEADER_SIZE);
		if (f.type == FRAME_METHOD)
			do_method(&s, f.payload);
		else if (f.type == FRAME_HEADER)
			do_content_header(&s, f.payload);
		else
			FUZZ_CHECK(f.type == FRAME_BODY || f.type == FRAME_HEARTBEAT);
		off += used;
	}
	return 0;
}
