/*
 * Golden vectors: the exact bytes real clients (python3-pika 1.2.0 and
 * amqp-tools from rabbitmq-c 0.11) sent to a fake server, captured by
 * tests/interop/capture_golden.py into tests/unit/data/golden/.  Each file
 * is parsed with the frame reader and the generated method codec, the
 * decoded fields are checked against what the client was asked to send, and
 * every method frame and content header is re-encoded and compared byte for
 * byte, so a codec change that a real client would notice fails here first.
 *
 * The files are found through $top_srcdir (set by AM_TESTS_ENVIRONMENT), so
 * the test runs the same in a VPATH build and under distcheck.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/frame.h"
#include "codec/gen_methods.h"
#include "codec/table.h"
#include "codec/wire.h"

#include "runner.h"

/* Largest frame the captures may hold: the frame_max the fake server offered. */
#define GOLDEN_FRAME_MAX 131072
#define GOLDEN_MAX_FRAMES 8

struct golden {
	uint8_t *buf;
	size_t len;
	size_t nframes;
	struct frame frames[GOLDEN_MAX_FRAMES];
};

/* Read tests/unit/data/golden/<client>_<what>.bin whole. */
static void golden_load(struct golden *g, const char *client, const char *what)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	FILE *f;
	long size;

	memset(g, 0, sizeof(*g));
	snprintf(path, sizeof(path), "%s/tests/unit/data/golden/%s_%s.bin",
	         top ? top : ".", client, what);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	ck_assert_int_gt(size, 0);
	rewind(f);
	g->buf = malloc((size_t)size);
	ck_assert_ptr_nonnull(g->buf);
	ck_assert_uint_eq(fread(g->buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	g->len = (size_t)size;
}

/* Load a capture made of whole frames and split it, insisting that the
 * frames tile the file exactly. */
static void golden_load_frames(struct golden *g, const char *client,
                               const char *what)
{
	size_t off = 0;

	golden_load(g, client, what);
	while (off < g->len) {
		size_t used = 0;
		int rc;

		ck_assert_uint_lt(g->nframes, GOLDEN_MAX_FRAMES);
		rc = frame_parse(g->buf + off, g->len - off, GOLDEN_FRAME_MAX,
		                 &g->frames[g->nframes], &used);
		ck_assert_msg(rc == CODEC_OK, "%s_%s: frame %zu: frame_parse %d",
		              client, what, g->nframes, rc);
		ck_assert_uint_gt(used, FRAME_OVERHEAD - 1);
		ck_assert_uint_le(used, g->len - off);
		off += used;
		g->nframes++;
	}
	ck_assert_uint_eq(off, g->len);
}

static void golden_free(struct golden *g)
{
	free(g->buf);
	g->buf = NULL;
}

/* The frame's header as frame_put_header would write it, and its end octet. */
static void check_frame_bytes(const struct golden *g, size_t i)
{
	const struct frame *f = &g->frames[i];
	const uint8_t *start = f->payload.ptr - FRAME_HEADER_SIZE;
	uint8_t head[FRAME_HEADER_SIZE];

	frame_put_header(head, f->type, f->channel, (uint32_t)f->payload.len);
	ck_assert_mem_eq(head, start, FRAME_HEADER_SIZE);
	ck_assert_uint_eq(f->payload.ptr[f->payload.len], FRAME_END_OCTET);
}

/*
 * Decode a method frame, check it is the expected method on the expected
 * channel, and re-encode it: the size must match and the bytes must be the
 * client's own.
 */
static void decode_method(const struct golden *g, size_t i, uint16_t channel,
                          uint32_t want_id, union codec_method_args *args)
{
	const struct frame *f = &g->frames[i];
	uint32_t id = 0;
	uint8_t out[1024];
	struct wr w = wr_init(out, sizeof(out));
	int rc;

	ck_assert_uint_eq(f->type, FRAME_METHOD);
	ck_assert_uint_eq(f->channel, channel);
	check_frame_bytes(g, i);
	rc = codec_method_decode(f->payload, &id, args);
	ck_assert_msg(rc == CODEC_OK, "codec_method_decode: %d", rc);
	ck_assert_uint_eq(id, want_id);

	ck_assert_uint_eq(codec_method_size(id, args), f->payload.len);
	ck_assert_uint_le(f->payload.len, sizeof(out));
	rc = codec_method_encode(&w, id, args);
	ck_assert_int_eq(rc, CODEC_OK);
	ck_assert_uint_eq(sizeof(out) - w.left, f->payload.len);
	if (id == CODEC_CONNECTION_OPEN &&
	    memcmp(out, f->payload.ptr, f->payload.len) != 0) {
		/*
		 * Both clients set connection.open's reserved-2 bit (the old
		 * "insist" flag), which the codec does not keep: a server has
		 * no use for it and never sends connection.open.  That bit,
		 * the low bit of the last octet, is the only difference
		 * allowed.
		 */
		uint8_t want[64];

		ck_assert_uint_le(f->payload.len, sizeof(want));
		memcpy(want, f->payload.ptr, f->payload.len);
		ck_assert_uint_eq(want[f->payload.len - 1], 1);
		want[f->payload.len - 1] = 0;
		ck_assert_mem_eq(out, want, f->payload.len);
		return;
	}
	ck_assert_mem_eq(out, f->payload.ptr, f->payload.len);
}

static void check_str(struct bytes got, const char *want)
{
	ck_assert_msg(bytes_eq_str(got, want), "got '%.*s', want '%s'",
	              (int)got.len, (const char *)got.ptr, want);
}

static void check_table_str(struct ftable t, const char *key, const char *want)
{
	struct fvalue v;

	ck_assert_msg(ftable_get(t, key, &v) == 1, "no '%s' in table", key);
	ck_assert_msg(v.type == 'S', "'%s' has type '%c'", key, v.type);
	check_str(v.v.str, want);
}

static void check_table_bool(struct ftable t, const char *key, bool want)
{
	struct fvalue v;

	ck_assert_msg(ftable_get(t, key, &v) == 1, "no '%s' in table", key);
	ck_assert_msg(v.type == 't', "'%s' has type '%c'", key, v.type);
	ck_assert(v.v.b == want);
}

static void check_table_int(struct ftable t, const char *key, char type,
                            int64_t want)
{
	struct fvalue v;
	int64_t n;

	ck_assert_msg(ftable_get(t, key, &v) == 1, "no '%s' in table", key);
	ck_assert_msg(v.type == type, "'%s' has type '%c', want '%c'", key,
	              v.type, type);
	ck_assert(fvalue_as_int(&v, &n));
	ck_assert_int_eq(n, want);
}

/*
 * What each client was asked to send (or sends by itself), in the order of
 * the loop tests below.
 */
struct client_expect {
	const char *client;
	const char *product;
	const char *version;
	/* capabilities table: every key announced, all true */
	const char *capabilities[8];
	uint16_t heartbeat;
	const char *close_text;
	const char *body;
	uint16_t props_flags;
	size_t nheaders;
};

static const struct client_expect clients[] = {
	{
		.client = "pika",
		.product = "Pika Python Client Library",
		.version = "1.2.0",
		.capabilities = { "authentication_failure_close", "basic.nack",
		                  "connection.blocked", "consumer_cancel_notify",
		                  "publisher_confirms", NULL },
		.heartbeat = 60,
		.close_text = "Normal shutdown",
		.body = "hello",
		.props_flags = CODEC_BASIC_CONTENT_TYPE_FLAG |
		               CODEC_BASIC_HEADERS_FLAG |
		               CODEC_BASIC_DELIVERY_MODE_FLAG |
		               CODEC_BASIC_CORRELATION_ID_FLAG,
		.nheaders = 7,
	},
	{
		.client = "amqptools",
		.product = "rabbitmq-c",
		.version = "0.11.0",
		.capabilities = { "authentication_failure_close",
		                  "exchange_exchange_bindings", NULL },
		/* amqp-tools asks for no heartbeats */
		.heartbeat = 0,
		/* rabbitmq-c sends the reply code, in decimal, as the text */
		.close_text = "200",
		.body = "hello from amqp-tools",
		.props_flags = CODEC_BASIC_CONTENT_TYPE_FLAG |
		               CODEC_BASIC_HEADERS_FLAG |
		               CODEC_BASIC_DELIVERY_MODE_FLAG,
		.nheaders = 1,
	},
};

#define NCLIENTS ((int)(sizeof(clients) / sizeof(clients[0])))

START_TEST(test_protocol_header)
{
	const struct client_expect *c = &clients[_i];
	static const uint8_t want[8] = { 'A', 'M', 'Q', 'P', 0, 0, 9, 1 };
	struct golden g;

	golden_load(&g, c->client, "protocol_header");
	ck_assert_uint_eq(g.len, sizeof(want));
	ck_assert_mem_eq(g.buf, want, sizeof(want));
	golden_free(&g);
}
END_TEST

START_TEST(test_start_ok)
{
	const struct client_expect *c = &clients[_i];
	union codec_method_args a;
	struct codec_connection_start_ok *m = &a.connection_start_ok;
	struct fvalue caps;
	struct golden g;
	size_t ncaps = 0;

	golden_load_frames(&g, c->client, "start_ok");
	ck_assert_uint_eq(g.nframes, 1);
	decode_method(&g, 0, 0, CODEC_CONNECTION_START_OK, &a);

	check_str(m->mechanism, "PLAIN");
	ck_assert_uint_eq(m->response.len, 12);
	ck_assert_mem_eq(m->response.ptr, "\0guest\0guest", 12);
	check_str(m->locale, "en_US");

	check_table_str(m->client_properties, "product", c->product);
	check_table_str(m->client_properties, "version", c->version);
	ck_assert(ftable_get(m->client_properties, "platform", &caps) == 1);
	ck_assert(ftable_get(m->client_properties, "capabilities", &caps) == 1);
	ck_assert_int_eq(caps.type, 'F');
	for (; c->capabilities[ncaps] != NULL; ncaps++)
		check_table_bool(caps.v.table, c->capabilities[ncaps], true);
	ck_assert_uint_eq(ftable_count(caps.v.table), ncaps);
	golden_free(&g);
}
END_TEST

START_TEST(test_tune_ok)
{
	const struct client_expect *c = &clients[_i];
	union codec_method_args a;
	struct golden g;

	golden_load_frames(&g, c->client, "tune_ok");
	ck_assert_uint_eq(g.nframes, 1);
	decode_method(&g, 0, 0, CODEC_CONNECTION_TUNE_OK, &a);
	/* Both clients accept what the server offered (2047/131072/60), except
	 * for the heartbeat amqp-tools turns off. */
	ck_assert_uint_eq(a.connection_tune_ok.channel_max, 2047);
	ck_assert_uint_eq(a.connection_tune_ok.frame_max, 131072);
	ck_assert_uint_eq(a.connection_tune_ok.heartbeat, c->heartbeat);
	golden_free(&g);
}
END_TEST

START_TEST(test_connection_open)
{
	const struct client_expect *c = &clients[_i];
	union codec_method_args a;
	struct golden g;

	golden_load_frames(&g, c->client, "connection_open");
	ck_assert_uint_eq(g.nframes, 1);
	decode_method(&g, 0, 0, CODEC_CONNECTION_OPEN, &a);
	check_str(a.connection_open.virtual_host, "/");
	golden_free(&g);
}
END_TEST

START_TEST(test_channel_open)
{
	const struct client_expect *c = &clients[_i];
	union codec_method_args a;
	struct golden g;

	golden_load_frames(&g, c->client, "channel_open");
	ck_assert_uint_eq(g.nframes, 1);
	decode_method(&g, 0, 1, CODEC_CHANNEL_OPEN, &a);
	golden_free(&g);
}
END_TEST

START_TEST(test_channel_close)
{
	const struct client_expect *c = &clients[_i];
	union codec_method_args a;
	struct golden g;

	golden_load_frames(&g, c->client, "channel_close");
	ck_assert_uint_eq(g.nframes, 1);
	decode_method(&g, 0, 1, CODEC_CHANNEL_CLOSE, &a);
	ck_assert_uint_eq(a.channel_close.reply_code, CODEC_REPLY_SUCCESS);
	check_str(a.channel_close.reply_text, c->close_text);
	ck_assert_uint_eq(a.channel_close.class_id, 0);
	ck_assert_uint_eq(a.channel_close.method_id, 0);
	golden_free(&g);
}
END_TEST

START_TEST(test_connection_close)
{
	const struct client_expect *c = &clients[_i];
	union codec_method_args a;
	struct golden g;

	golden_load_frames(&g, c->client, "connection_close");
	ck_assert_uint_eq(g.nframes, 1);
	decode_method(&g, 0, 0, CODEC_CONNECTION_CLOSE, &a);
	ck_assert_uint_eq(a.connection_close.reply_code, CODEC_REPLY_SUCCESS);
	check_str(a.connection_close.reply_text, c->close_text);
	ck_assert_uint_eq(a.connection_close.class_id, 0);
	ck_assert_uint_eq(a.connection_close.method_id, 0);
	golden_free(&g);
}
END_TEST

/* pika's headers: one of each field type pika picks for a Python value. */
static void check_pika_headers(struct ftable h)
{
	struct fvalue v, e;
	struct ftable_iter it;

	check_table_str(h, "x-str", "value");
	check_table_int(h, "x-int", 'I', 42);
	check_table_int(h, "x-neg", 'I', -7);
	check_table_int(h, "x-big", 'l', (int64_t)1 << 40);
	check_table_bool(h, "x-bool", true);

	ck_assert(ftable_get(h, "x-nested", &v) == 1);
	ck_assert_int_eq(v.type, 'F');
	ck_assert_uint_eq(ftable_count(v.v.table), 1);
	check_table_str(v.v.table, "inner", "yes");

	ck_assert(ftable_get(h, "x-list", &v) == 1);
	ck_assert_int_eq(v.type, 'A');
	ftable_iter_init(&it, v.v.array);
	ck_assert_int_eq(farray_next(&it, &e), 1);
	ck_assert_int_eq(e.type, 'I');
	ck_assert_int_eq(e.v.i32, 1);
	ck_assert_int_eq(farray_next(&it, &e), 1);
	ck_assert_int_eq(e.type, 'S');
	check_str(e.v.str, "two");
	ck_assert_int_eq(farray_next(&it, &e), 0);
}

START_TEST(test_publish)
{
	const struct client_expect *c = &clients[_i];
	union codec_method_args a;
	struct content_header ch;
	struct codec_basic_props p;
	struct golden g;
	struct rd r;
	uint8_t out[1024];
	struct wr w = wr_init(out, sizeof(out));
	size_t body_len = strlen(c->body);

	golden_load_frames(&g, c->client, "publish");
	ck_assert_uint_eq(g.nframes, 3);

	decode_method(&g, 0, 1, CODEC_BASIC_PUBLISH, &a);
	check_str(a.basic_publish.exchange, "amq.direct");
	check_str(a.basic_publish.routing_key, "golden.key");
	ck_assert(!a.basic_publish.mandatory);
	ck_assert(!a.basic_publish.immediate);

	ck_assert_uint_eq(g.frames[1].type, FRAME_HEADER);
	ck_assert_uint_eq(g.frames[1].channel, 1);
	check_frame_bytes(&g, 1);
	ck_assert_int_eq(frame_parse_content_header(g.frames[1].payload, &ch),
	                 CODEC_OK);
	ck_assert_uint_eq(ch.class_id, 60);
	ck_assert_uint_eq(ch.body_size, body_len);
	/* class-id, weight and body size come first; the properties end the
	 * payload. */
	ck_assert_uint_eq(ch.props.len, g.frames[1].payload.len - 12);

	r = rd_init(ch.props.ptr, ch.props.len);
	ck_assert_int_eq(codec_decode_basic_props(&r, &p), CODEC_OK);
	ck_assert_uint_eq(r.left, 0);
	ck_assert_uint_eq(p.flags, c->props_flags);
	check_str(p.content_type, "text/plain");
	ck_assert_uint_eq(p.delivery_mode, 2);
	ck_assert_uint_eq(ftable_count(p.headers), c->nheaders);
	if (strcmp(c->client, "pika") == 0) {
		check_str(p.correlation_id, "corr-42");
		check_pika_headers(p.headers);
	} else {
		ck_assert_uint_eq(p.correlation_id.len, 0);
		check_table_str(p.headers, "x-tool", "amqp-publish");
	}
	ck_assert_uint_eq(p.content_encoding.len, 0);
	ck_assert_uint_eq(p.priority, 0);
	ck_assert_uint_eq(p.timestamp, 0);

	ck_assert_uint_eq(codec_size_basic_props(&p), ch.props.len);
	ck_assert_int_eq(codec_encode_basic_props(&w, &p), CODEC_OK);
	ck_assert_uint_eq(sizeof(out) - w.left, ch.props.len);
	ck_assert_mem_eq(out, ch.props.ptr, ch.props.len);

	ck_assert_uint_eq(g.frames[2].type, FRAME_BODY);
	ck_assert_uint_eq(g.frames[2].channel, 1);
	check_frame_bytes(&g, 2);
	ck_assert_uint_eq(g.frames[2].payload.len, body_len);
	ck_assert_mem_eq(g.frames[2].payload.ptr, c->body, body_len);
	golden_free(&g);
}
END_TEST

/* A capture cut anywhere short of its end is incomplete, never an error
 * and never a frame: the reader must ask for more. */
START_TEST(test_truncated_captures)
{
	const struct client_expect *c = &clients[_i];
	struct golden g;
	struct frame f;
	size_t cut;

	golden_load_frames(&g, c->client, "start_ok");
	for (cut = 0; cut < g.len; cut++) {
		size_t need = 0;
		int rc = frame_parse(g.buf, cut, GOLDEN_FRAME_MAX, &f, &need);

		ck_assert_msg(rc == CODEC_AGAIN, "cut at %zu: %d", cut, rc);
		ck_assert_uint_gt(need, cut);
		ck_assert_uint_le(need, g.len);
	}
	golden_free(&g);
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("golden");
	TCase *tc = tcase_create("clients");

	tcase_add_loop_test(tc, test_protocol_header, 0, NCLIENTS);
	tcase_add_loop_test(tc, test_start_ok, 0, NCLIENTS);
	tcase_add_loop_test(tc, test_tune_ok, 0, NCLIENTS);
	tcase_add_loop_test(tc, test_connection_open, 0, NCLIENTS);
	tcase_add_loop_test(tc, test_channel_open, 0, NCLIENTS);
	tcase_add_loop_test(tc, test_publish, 0, NCLIENTS);
	tcase_add_loop_test(tc, test_channel_close, 0, NCLIENTS);
	tcase_add_loop_test(tc, test_connection_close, 0, NCLIENTS);
	tcase_add_loop_test(tc, test_truncated_captures, 0, NCLIENTS);
	suite_add_tcase(s, tc);
	return s;
}
