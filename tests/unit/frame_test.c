/*
 * The frame reader and frame helpers: whole frames, frames arriving a byte
 * at a time, frame_max enforced from the header alone, bad frame ends and
 * types, content headers, and the status -> reply-code mapping.  Inputs are
 * exactly-sized heap copies so AddressSanitizer sees any overread.
 */
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "codec/frame.h"

static uint8_t *dup_exact(const uint8_t *p, size_t len)
{
	uint8_t *d = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(d);
	if (len)
		memcpy(d, p, len);
	return d;
}

/* Build a frame into out; returns its length. */
static size_t make_frame(uint8_t *out, size_t cap, uint8_t type,
                         uint16_t channel, const void *payload, uint32_t n)
{
	ck_assert_uint_ge(cap, (size_t)n + FRAME_OVERHEAD);
	frame_put_header(out, type, channel, n);
	if (n)
		memcpy(out + FRAME_HEADER_SIZE, payload, n);
	out[FRAME_HEADER_SIZE + n] = FRAME_END_OCTET;
	return (size_t)n + FRAME_OVERHEAD;
}

/* connection.tune-ok: channel-max 2047, frame-max 131072, heartbeat 60 */
static const uint8_t tune_ok[] = {
	0x00, 0x0A, 0x00, 0x1F, 0x07, 0xFF, 0x00, 0x02, 0x00, 0x00, 0x00, 0x3C,
};

START_TEST(test_put_header)
{
	uint8_t h[FRAME_HEADER_SIZE];
	static const uint8_t want[] = { 2, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF };

	frame_put_header(h, FRAME_HEADER, 0x1234, 0xDEADBEEF);
	ck_assert_int_eq(memcmp(h, want, sizeof(want)), 0);
}
END_TEST

START_TEST(test_parse_whole)
{
	static const uint8_t want[] = {
		1, 0, 0, 0, 0, 0, 12,
		0x00, 0x0A, 0x00, 0x1F, 0x07, 0xFF, 0x00, 0x02, 0x00, 0x00, 0x00, 0x3C,
		0xCE,
	};
	uint8_t buf[64];
	size_t n = make_frame(buf, sizeof(buf), FRAME_METHOD, 0, tune_ok,
	                      sizeof(tune_ok));
	struct frame f;
	size_t used;

	ck_assert_uint_eq(n, sizeof(want));
	ck_assert_int_eq(memcmp(buf, want, n), 0);

	uint8_t *p = dup_exact(buf, n);
	ck_assert_int_eq(frame_parse(p, n, 4096, &f, &used), CODEC_OK);
	ck_assert_uint_eq(used, n);
	ck_assert_uint_eq(f.type, FRAME_METHOD);
	ck_assert_uint_eq(f.channel, 0);
	ck_assert_uint_eq(f.payload.len, sizeof(tune_ok));
	ck_assert_ptr_eq(f.payload.ptr, p + FRAME_HEADER_SIZE);
	ck_assert_int_eq(memcmp(f.payload.ptr, tune_ok, sizeof(tune_ok)), 0);

	uint32_t id;
	ck_assert_int_eq(frame_method_id(f.payload, &id), CODEC_OK);
	ck_assert_uint_eq(id, 0x000A001F);
	free(p);

	/* every frame type, a high channel number, an empty payload */
	static const uint8_t types[] = { FRAME_METHOD, FRAME_HEADER, FRAME_BODY,
	                                 FRAME_HEARTBEAT };
	for (size_t i = 0; i < sizeof(types); i++) {
		n = make_frame(buf, sizeof(buf), types[i], 65535, NULL, 0);
		p = dup_exact(buf, n);
		ck_assert_int_eq(frame_parse(p, n, 0, &f, &used), CODEC_OK);
		ck_assert_uint_eq(used, FRAME_OVERHEAD);
		ck_assert_uint_eq(f.type, types[i]);
		ck_assert_uint_eq(f.channel, 65535);
		ck_assert_uint_eq(f.payload.len, 0);
		free(p);
	}
}
END_TEST

START_TEST(test_parse_every_split)
{
	uint8_t body[300];
	uint8_t buf[400];
	struct frame f;
	size_t used;

	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 7);
	size_t n = make_frame(buf, sizeof(buf), FRAME_BODY, 3, body, sizeof(body));

	for (size_t have = 0; have < n; have++) {
		uint8_t *p = dup_exact(buf, have);
		used = 12345;
		ck_assert_int_eq(frame_parse(p, have, 4096, &f, &used), CODEC_AGAIN);
		/* the header first, then the whole frame */
		ck_assert_uint_eq(used, have < FRAME_HEADER_SIZE ? FRAME_HEADER_SIZE : n);
		free(p);
	}
	uint8_t *p = dup_exact(buf, n);
	ck_assert_int_eq(frame_parse(p, n, 4096, &f, &used), CODEC_OK);
	ck_assert_uint_eq(used, n);
	ck_assert_uint_eq(f.channel, 3);
	ck_assert_int_eq(memcmp(f.payload.ptr, body, sizeof(body)), 0);
	free(p);
}
END_TEST

START_TEST(test_frame_max)
{
	uint8_t hdr[FRAME_HEADER_SIZE];
	struct frame f;
	size_t used;

	/* Only the header has arrived: an oversize frame is refused now, not
	 * after the caller has buffered its payload. */
	frame_put_header(hdr, FRAME_BODY, 1, 4096 - FRAME_OVERHEAD + 1);
	uint8_t *p = dup_exact(hdr, sizeof(hdr));
	ck_assert_int_eq(frame_parse(p, sizeof(hdr), 4096, &f, &used),
	                 CODEC_E_FRAME_SIZE);
	/* exactly frame_max is fine: more bytes wanted */
	frame_put_header(p, FRAME_BODY, 1, 4096 - FRAME_OVERHEAD);
	ck_assert_int_eq(frame_parse(p, sizeof(hdr), 4096, &f, &used), CODEC_AGAIN);
	ck_assert_uint_eq(used, 4096);
	/* the largest declared size, with and without a limit */
	frame_put_header(p, FRAME_METHOD, 0, UINT32_MAX);
	ck_assert_int_eq(frame_parse(p, sizeof(hdr), 131072, &f, &used),
	                 CODEC_E_FRAME_SIZE);
	ck_assert_int_eq(frame_parse(p, sizeof(hdr), UINT32_MAX, &f, &used),
	                 CODEC_E_FRAME_SIZE);
	ck_assert_int_eq(frame_parse(p, sizeof(hdr), 0, &f, &used), CODEC_AGAIN);
	ck_assert(used == (size_t)((uint64_t)UINT32_MAX + FRAME_OVERHEAD));
	/* size + 8 is just over a limit near 2^32 */
	frame_put_header(p, FRAME_METHOD, 0, UINT32_MAX - 7);
	ck_assert_int_eq(frame_parse(p, sizeof(hdr), UINT32_MAX, &f, &used),
	                 CODEC_E_FRAME_SIZE);
	frame_put_header(p, FRAME_METHOD, 0, UINT32_MAX - 8);
	ck_assert_int_eq(frame_parse(p, sizeof(hdr), UINT32_MAX, &f, &used),
	                 CODEC_AGAIN);
	free(p);

	/* a whole frame that is too big is refused too */
	uint8_t big[4200], payload[4089];
	memset(payload, 0x5A, sizeof(payload));
	size_t n = make_frame(big, sizeof(big), FRAME_BODY, 1, payload,
	                      sizeof(payload));
	p = dup_exact(big, n);
	ck_assert_int_eq(frame_parse(p, n, 4096, &f, &used), CODEC_E_FRAME_SIZE);
	ck_assert_int_eq(frame_parse(p, n, 4097, &f, &used), CODEC_OK);
	free(p);
}
END_TEST

START_TEST(test_bad_frame_end)
{
	uint8_t buf[64];
	struct frame f;
	size_t used;
	size_t n = make_frame(buf, sizeof(buf), FRAME_METHOD, 1, tune_ok,
	                      sizeof(tune_ok));
	static const uint8_t bad_ends[] = { 0x00, 0xCD, 0xCF, 0xFF, 0xEC };

	for (size_t i = 0; i < sizeof(bad_ends); i++) {
		buf[n - 1] = bad_ends[i];
		uint8_t *p = dup_exact(buf, n);
		ck_assert_int_eq(frame_parse(p, n, 4096, &f, &used), CODEC_E_FRAME_END);
		free(p);
	}
	/* a size one too small makes the last payload byte the frame end */
	buf[n - 1] = FRAME_END_OCTET;
	frame_put_header(buf, FRAME_METHOD, 1, sizeof(tune_ok) - 1);
	uint8_t *p = dup_exact(buf, n);
	ck_assert_int_eq(frame_parse(p, n, 4096, &f, &used), CODEC_E_FRAME_END);
	free(p);
}
END_TEST

START_TEST(test_bad_type)
{
	uint8_t buf[16];
	struct frame f;
	size_t used;

	for (int t = 0; t < 256; t++) {
		size_t n = make_frame(buf, sizeof(buf), (uint8_t)t, 0, "ab", 2);
		uint8_t *p = dup_exact(buf, n);
		int rc = frame_parse(p, n, 4096, &f, &used);
		if (t == 1 || t == 2 || t == 3 || t == 8)
			ck_assert_int_eq(rc, CODEC_OK);
		else
			ck_assert_msg(rc == CODEC_E_FRAME_TYPE, "type %d: %d", t, rc);
		/* decided from the header alone */
		rc = frame_parse(p, FRAME_HEADER_SIZE, 4096, &f, &used);
		if (t == 1 || t == 2 || t == 3 || t == 8)
			ck_assert_int_eq(rc, CODEC_AGAIN);
		else
			ck_assert_int_eq(rc, CODEC_E_FRAME_TYPE);
		free(p);
	}
	/* "AMQP\0\0\9\1" arriving where a frame is expected */
	static const uint8_t proto[] = { 'A', 'M', 'Q', 'P', 0, 0, 9, 1 };
	ck_assert_int_eq(frame_parse(proto, sizeof(proto), 4096, &f, &used),
	                 CODEC_E_FRAME_TYPE);
}
END_TEST

START_TEST(test_back_to_back)
{
	uint8_t buf[256];
	size_t n = 0;
	struct frame f;
	size_t used;
	static const uint8_t hdr_payload[] = {
		0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0x10, 0x00, 0x02,
	};

	n += make_frame(buf + n, sizeof(buf) - n, FRAME_METHOD, 1, tune_ok,
	                sizeof(tune_ok));
	n += make_frame(buf + n, sizeof(buf) - n, FRAME_HEADER, 1, hdr_payload,
	                sizeof(hdr_payload));
	n += make_frame(buf + n, sizeof(buf) - n, FRAME_BODY, 1, "hello", 5);
	memcpy(buf + n, frame_heartbeat_bytes, 8);
	n += 8;
	size_t partial = 3; /* and the start of a fifth frame */
	memcpy(buf + n, frame_heartbeat_bytes, partial);
	n += partial;

	uint8_t *p = dup_exact(buf, n);
	size_t off = 0;
	static const uint8_t want_types[] = { FRAME_METHOD, FRAME_HEADER,
	                                      FRAME_BODY, FRAME_HEARTBEAT };
	for (size_t i = 0; i < sizeof(want_types); i++) {
		ck_assert_int_eq(frame_parse(p + off, n - off, 4096, &f, &used),
		                 CODEC_OK);
		ck_assert_uint_eq(f.type, want_types[i]);
		off += used;
	}
	ck_assert_uint_eq(off, n - partial);
	ck_assert_int_eq(frame_parse(p + off, n - off, 4096, &f, &used),
	                 CODEC_AGAIN);
	ck_assert_uint_eq(used, FRAME_HEADER_SIZE);
	free(p);
}
END_TEST

START_TEST(test_heartbeat)
{
	static const uint8_t want[] = { 8, 0, 0, 0, 0, 0, 0, 0xCE };
	struct frame f;
	size_t used;

	ck_assert_int_eq(memcmp(frame_heartbeat_bytes, want, 8), 0);
	ck_assert_int_eq(frame_parse(frame_heartbeat_bytes, 8, 4096, &f, &used),
	                 CODEC_OK);
	ck_assert_uint_eq(used, 8);
	ck_assert_uint_eq(f.type, FRAME_HEARTBEAT);
	ck_assert_uint_eq(f.channel, 0);
	ck_assert_uint_eq(f.payload.len, 0);

	/* a heartbeat on a channel, or with a payload, still parses: the
	 * connection layer decides what to do with it */
	uint8_t buf[16];
	size_t n = make_frame(buf, sizeof(buf), FRAME_HEARTBEAT, 5, "x", 1);
	ck_assert_int_eq(frame_parse(buf, n, 4096, &f, &used), CODEC_OK);
	ck_assert_uint_eq(f.channel, 5);
	ck_assert_uint_eq(f.payload.len, 1);
}
END_TEST

START_TEST(test_method_id)
{
	static const uint8_t pl[] = { 0x00, 0x32, 0x00, 0x0A, 0x00, 0x00 };
	uint32_t id = 0;

	for (size_t n = 0; n < 4; n++) {
		uint8_t *p = dup_exact(pl, n);
		struct bytes b = { p, n };
		ck_assert_int_eq(frame_method_id(b, &id), CODEC_E_BAD_FRAME);
		free(p);
	}
	struct bytes b = { pl, 4 };
	ck_assert_int_eq(frame_method_id(b, &id), CODEC_OK);
	ck_assert_uint_eq(id, 0x0032000A);
	b.len = sizeof(pl);
	ck_assert_int_eq(frame_method_id(b, &id), CODEC_OK);
	ck_assert_uint_eq(id, (50u << 16) | 10u);
}
END_TEST

START_TEST(test_content_header)
{
	/* basic (60), weight 0, body 0x0102030405060708, flags content-type,
	 * content-type "text/plain" */
	static const uint8_t pl[] = {
		0x00, 0x3C, 0x00, 0x00,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x80, 0x00, 10, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n',
	};
	struct content_header h;

	uint8_t *p = dup_exact(pl, sizeof(pl));
	struct bytes b = { p, sizeof(pl) };
	ck_assert_int_eq(frame_parse_content_header(b, &h), CODEC_OK);
	ck_assert_uint_eq(h.class_id, 60);
	ck_assert(h.body_size == 0x0102030405060708ull);
	ck_assert_ptr_eq(h.props.ptr, p + 12);
	ck_assert_uint_eq(h.props.len, sizeof(pl) - 12);
	free(p);

	/* flags only (no properties); weight is not checked */
	static const uint8_t minimal[] = { 0, 60, 0xFF, 0xFF, 0, 0, 0, 0,
	                                   0, 0, 0, 0, 0, 0 };
	b.ptr = minimal;
	b.len = sizeof(minimal);
	ck_assert_int_eq(frame_parse_content_header(b, &h), CODEC_OK);
	ck_assert(h.body_size == 0);
	ck_assert_uint_eq(h.props.len, 2);

	/* anything shorter than class, weight, size and flags */
	for (size_t n = 0; n < 14; n++) {
		p = dup_exact(pl, n);
		b.ptr = p;
		b.len = n;
		ck_assert_msg(frame_parse_content_header(b, &h) == CODEC_E_TRUNCATED,
		              "length %zu", n);
		free(p);
	}
}
END_TEST

struct reply_vec {
	int status;
	int code;
};

static const struct reply_vec reply_vecs[] = {
	{ CODEC_E_FRAME_END, 501 },
	{ CODEC_E_FRAME_TYPE, 501 },
	{ CODEC_E_FRAME_SIZE, 501 },
	{ CODEC_E_BAD_FRAME, 501 },
	{ CODEC_E_TRUNCATED, 502 },
	{ CODEC_E_TRAILING, 502 },
	{ CODEC_E_FIELD_TYPE, 502 },
	{ CODEC_E_TABLE_DEPTH, 502 },
	{ CODEC_E_BAD_PROPS, 502 },
	{ CODEC_E_UNKNOWN_CLASS, 540 },
	{ CODEC_E_UNKNOWN_METHOD, 540 },
	{ CODEC_E_NOSPACE, 541 },
	{ CODEC_OK, 541 },
	{ CODEC_AGAIN, 541 },
	{ -100, 541 },
};

START_TEST(test_reply_codes)
{
	const struct reply_vec *v = &reply_vecs[_i];
	ck_assert_msg(codec_status_reply_code(v->status) == v->code,
	              "status %d", v->status);
	const char *text = codec_status_text(v->status);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_gt(strlen(text), 0);
}
END_TEST

START_TEST(test_status_texts_distinct)
{
	/* each error has its own text, so close texts tell them apart */
	for (int a = CODEC_AGAIN; a >= CODEC_E_NOSPACE; a--)
		for (int b = a - 1; b >= CODEC_E_NOSPACE; b--)
			ck_assert_msg(strcmp(codec_status_text(a),
			                     codec_status_text(b)) != 0,
			              "%d and %d", a, b);
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_put_header);
	tcase_add_test(tc, test_parse_whole);
	tcase_add_test(tc, test_parse_every_split);
	tcase_add_test(tc, test_frame_max);
	tcase_add_test(tc, test_bad_frame_end);
	tcase_add_test(tc, test_bad_type);
	tcase_add_test(tc, test_back_to_back);
	tcase_add_test(tc, test_heartbeat);
	suite_add_tcase(s, tc);

	tc = tcase_create("payload");
	tcase_add_test(tc, test_method_id);
	tcase_add_test(tc, test_content_header);
	suite_add_tcase(s, tc);

	tc = tcase_create("status");
	tcase_add_loop_test(tc, test_reply_codes, 0,
	                    (int)(sizeof(reply_vecs) / sizeof(reply_vecs[0])));
	tcase_add_test(tc, test_status_texts_distinct);
	suite_add_tcase(s, tc);
	return s;
}
