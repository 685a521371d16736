/*
 * Connection, channel and consumer state machines, driven through a
 * socketpair: the test plays the client with the generated codec and runs
 * the broker's loop until the answer arrives.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/broker.h"
#include "codec/frame.h"
#include "codec/gen_methods.h"
#include "codec/table.h"
#include "net/conn.h"
#include "runner.h"

static struct broker B;
static int cfd = -1;
static uint8_t inbuf[1 << 20];
static size_t inlen;

static void setup(void)
{
	struct broker_config cfg;
	broker_config_defaults(&cfg);
	cfg.data_dir = "/tmp";
	cfg.disk_free_limit = 0;
	ck_assert_int_eq(broker_init(&B, &cfg), 0);
	B.log.level = LOG_ERROR;
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	conn_accept(&B, sv[0], (struct sockaddr *)&sin, sizeof(sin));
	cfd = sv[1];
	inlen = 0;
}

static void teardown(void)
{
	close(cfd);
	broker_free(&B);
}

static void pump(void)
{
	for (int i = 0; i < 4; i++)
		ev_run(B.loop, EVRUN_NOWAIT);
}

static void send_raw(const void *p, size_t n)
{
	ck_assert_int_eq(write(cfd, p, n), (ssize_t)n);
	pump();
}

static void send_method(uint16_t ch, uint32_t id, const void *args)
{
	uint8_t buf[4096];
	size_t n = codec_method_size(id, args);
	frame_put_header(buf, FRAME_METHOD, ch, (uint32_t)n);
	struct wr w = wr_init(buf + 7, n);
	ck_assert_int_eq(codec_method_encode(&w, id, args), CODEC_OK);
	buf[7 + n] = FRAME_END_OCTET;
	send_raw(buf, n + 8);
}

static void send_content(uint16_t ch, const char *body)
{
	uint8_t buf[4096];
	size_t blen = strlen(body);
	/* content header with no properties */
	uint8_t *p = buf;
	frame_put_header(p, FRAME_HEADER, ch, 14);
	struct wr w = wr_init(p + 7, 14);
	wr_u16(&w, 60);
	wr_u16(&w, 0);
	wr_u64(&w, blen);
	wr_u16(&w, 0);
	p[21] = FRAME_END_OCTET;
	p += 22;
	frame_put_header(p, FRAME_BODY, ch, (uint32_t)blen);
	memcpy(p + 7, body, blen);
	p[7 + blen] = FRAME_END_OCTET;
	send_raw(buf, 22 + blen + 8);
}

/* Next frame from the broker; returns false when the socket closed. */
static bool recv_frame(struct frame *f)
{
	static size_t consumed;
	if (consumed) {
		memmove(inbuf, inbuf + consumed, inlen - consumed);
		inlen -= consumed;
		consumed = 0;
	}
	for (int tries = 0; tries < 200; tries++) {
		size_t n;
		if (inlen && frame_parse(inbuf, inlen, 0, f, &n) == CODEC_OK) {
			consumed = n;
			return true;
		}
		pump();
		struct pollfd pfd = { .fd = cfd, .events = POLLIN };
		if (poll(&pfd, 1, 10) == 1) {
			ssize_t r = read(cfd, inbuf + inlen, sizeof(inbuf) - inlen);
			if (r == 0)
				return false;
			if (r > 0)
				inlen += (size_t)r;
		}
	}
	ck_abort_msg("no frame from the broker");
	return false;
}

static uint32_t recv_method(uint16_t *ch, union codec_method_args *a)
{
	struct frame f;
	do {
		ck_assert(recv_frame(&f));
	} while (f.type == FRAME_HEARTBEAT);
	ck_assert_int_eq(f.type, FRAME_METHOD);
	uint32_t id;
	ck_assert_int_eq(codec_method_decode(f.payload, &id, a), CODEC_OK);
	if (ch)
		*ch = f.channel;
	return id;
}

static void expect(uint32_t want, union codec_method_args *a)
{
	union codec_method_args tmp;
	uint32_t id = recv_method(NULL, a ? a : &tmp);
	ck_assert_msg(id == want, "expected %s, got %s", codec_method_name(want),
	              codec_method_name(id));
}

static void start_ok(void)
{
	static const uint8_t resp[] = "\0guest\0guest";
	struct codec_connection_start_ok so = {
		.mechanism = bytes_of("PLAIN"),
		.response = { resp, sizeof(resp) - 1 },
		.locale = bytes_of("en_US"),
	};
	send_method(0, CODEC_CONNECTION_START_OK, &so);
}

static void handshake(void)
{
	static const uint8_t hdr[] = { 'A', 'M', 'Q', 'P', 0, 0, 9, 1 };
	union codec_method_args a;
	send_raw(hdr, 8);
	expect(CODEC_CONNECTION_START, &a);
	start_ok();
	expect(CODEC_CONNECTION_TUNE, &a);
	struct codec_connection_tune_ok t = { .channel_max = 0, .frame_max = 0, .heartbeat = 0 };
	send_method(0, CODEC_CONNECTION_TUNE_OK, &t);
	struct codec_connection_open o = { .virtual_host = bytes_of("/") };
	send_method(0, CODEC_CONNECTION_OPEN, &o);
	expect(CODEC_CONNECTION_OPEN_OK, NULL);
	struct codec_channel_open co = { 0 };
	send_method(1, CODEC_CHANNEL_OPEN, &co);
	expect(CODEC_CHANNEL_OPEN_OK, NULL);
}

static void declare(const char *q)
{
	struct codec_queue_declare d = { .queue = bytes_of(q) };
	send_method(1, CODEC_QUEUE_DECLARE, &d);
	expect(CODEC_QUEUE_DECLARE_OK, NULL);
}

static void publish(const char *q, const char *body, bool mandatory)
{
	struct codec_basic_publish p = { .routing_key = bytes_of(q), .mandatory = mandatory };
	send_method(1, CODEC_BASIC_PUBLISH, &p);
	send_content(1, body);
}

/* A delivery (deliver / get-ok / return) followed by its content; returns the body. */
static char *recv_body(void)
{
	static char body[512];
	struct frame f;
	ck_assert(recv_frame(&f));
	ck_assert_int_eq(f.type, FRAME_HEADER);
	struct content_header h;
	ck_assert_int_eq(frame_parse_content_header(f.payload, &h), CODEC_OK);
	size_t got = 0;
	while (got < h.body_size) {
		ck_assert(recv_frame(&f));
		ck_assert_int_eq(f.type, FRAME_BODY);
		memcpy(body + got, f.payload.ptr, f.payload.len);
		got += f.payload.len;
	}
	body[got] = '\0';
	return body;
}

START_TEST(test_handshake)
{
	static const uint8_t hdr[] = { 'A', 'M', 'Q', 'P', 0, 0, 9, 1 };
	union codec_method_args a;
	send_raw(hdr, 8);
	expect(CODEC_CONNECTION_START, &a);
	ck_assert_int_eq(a.connection_start.version_major, 0);
	ck_assert_int_eq(a.connection_start.version_minor, 9);
	struct fvalue v;
	ck_assert_int_eq(ftable_get(a.connection_start.server_properties, "product", &v), 1);
	ck_assert(bytes_eq_str(v.v.str, "Warren"));
	ck_assert_int_eq(ftable_get(a.connection_start.server_properties, "capabilities", &v), 1);
	struct fvalue cap;
	ck_assert_int_eq(ftable_get(v.v.table, "publisher_confirms", &cap), 1);
	ck_assert(cap.v.b);
	start_ok();
	expect(CODEC_CONNECTION_TUNE, &a);
	ck_assert_int_eq(a.connection_tune.channel_max, 2047);
	ck_assert_int_eq(a.connection_tune.frame_max, 131072);
	ck_assert_int_eq(a.connection_tune.heartbeat, 60);
}
END_TEST

START_TEST(test_bad_header)
{
	send_raw("HTTP/1.1", 8);
	struct frame f;
	pump();
	uint8_t buf[16];
	struct pollfd pfd = { .fd = cfd, .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, 1000), 1);
	ck_assert_int_eq(read(cfd, buf, sizeof(buf)), 8);
	ck_assert(memcmp(buf, "AMQP\0\0\x09\x01", 8) == 0);
	(void)f;
}
END_TEST

static void tune_ok_expect_close(uint16_t cmax, uint32_t fmax, uint16_t code)
{
	static const uint8_t hdr[] = { 'A', 'M', 'Q', 'P', 0, 0, 9, 1 };
	union codec_method_args a;
	send_raw(hdr, 8);
	expect(CODEC_CONNECTION_START, &a);
	start_ok();
	expect(CODEC_CONNECTION_TUNE, &a);
	struct codec_connection_tune_ok t = { .channel_max = cmax, .frame_max = fmax };
	send_method(0, CODEC_CONNECTION_TUNE_OK, &t);
	expect(CODEC_CONNECTION_CLOSE, &a);
	ck_assert_int_eq(a.connection_close.reply_code, code);
}

START_TEST(test_tune_frame_max_small)
{
	tune_ok_expect_close(0, 1024, CODEC_NOT_ALLOWED);
}
END_TEST

START_TEST(test_tune_channel_max_big)
{
	tune_ok_expect_close(5000, 0, CODEC_NOT_ALLOWED);
}
END_TEST

START_TEST(test_channel_reopen)
{
	handshake();
	struct codec_channel_open co = { 0 };
	send_method(1, CODEC_CHANNEL_OPEN, &co);
	union codec_method_args a;
	expect(CODEC_CONNECTION_CLOSE, &a);
	ck_assert_int_eq(a.connection_close.reply_code, CODEC_CHANNEL_ERROR);
}
END_TEST

START_TEST(test_publish_get)
{
	handshake();
	declare("q1");
	publish("q1", "hello", false);
	struct codec_basic_get g = { .queue = bytes_of("q1"), .no_ack = true };
	send_method(1, CODEC_BASIC_GET, &g);
	union codec_method_args a;
	expect(CODEC_BASIC_GET_OK, &a);
	ck_assert_int_eq(a.basic_get_ok.message_count, 0);
	ck_assert_str_eq(recv_body(), "hello");
	send_method(1, CODEC_BASIC_GET, &g);
	expect(CODEC_BASIC_GET_EMPTY, NULL);
}
END_TEST

START_TEST(test_prefetch_and_ack)
{
	handshake();
	declare("q2");
	publish("q2", "m1", false);
	publish("q2", "m2", false);
	struct codec_basic_qos qos = { .prefetch_count = 1 };
	send_method(1, CODEC_BASIC_QOS, &qos);
	expect(CODEC_BASIC_QOS_OK, NULL);
	struct codec_basic_consume c = { .queue = bytes_of("q2"), .consumer_tag = bytes_of("t") };
	send_method(1, CODEC_BASIC_CONSUME, &c);
	expect(CODEC_BASIC_CONSUME_OK, NULL);
	union codec_method_args a;
	expect(CODEC_BASIC_DELIVER, &a);
	ck_assert_int_eq(a.basic_deliver.delivery_tag, 1);
	ck_assert_str_eq(recv_body(), "m1");
	/* prefetch 1: nothing more until the ack */
	pump();
	struct pollfd pfd = { .fd = cfd, .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, 50), 0);
	struct codec_basic_ack ack = { .delivery_tag = 1 };
	send_method(1, CODEC_BASIC_ACK, &ack);
	expect(CODEC_BASIC_DELIVER, &a);
	ck_assert_int_eq(a.basic_deliver.delivery_tag, 2);
	ck_assert(!a.basic_deliver.redelivered);
	ck_assert_str_eq(recv_body(), "m2");
	/* nack with requeue comes back redelivered */
	struct codec_basic_nack nack = { .delivery_tag = 2, .requeue = true };
	send_method(1, CODEC_BASIC_NACK, &nack);
	expect(CODEC_BASIC_DELIVER, &a);
	ck_assert_int_eq(a.basic_deliver.delivery_tag, 3);
	ck_assert(a.basic_deliver.redelivered);
	ck_assert_str_eq(recv_body(), "m2");
	/* acking an unknown tag closes the channel with 406 */
	ack.delivery_tag = 99;
	send_method(1, CODEC_BASIC_ACK, &ack);
	expect(CODEC_CHANNEL_CLOSE, &a);
	ck_assert_int_eq(a.channel_close.reply_code, CODEC_PRECONDITION_FAILED);
	ck_assert_int_eq(a.channel_close.class_id, 60);
	ck_assert_int_eq(a.channel_close.method_id, 80);
}
END_TEST

START_TEST(test_confirm_and_return)
{
	handshake();
	declare("q3");
	struct codec_confirm_select cs = { 0 };
	send_method(1, CODEC_CONFIRM_SELECT, &cs);
	expect(CODEC_CONFIRM_SELECT_OK, NULL);
	publish("q3", "a", false);
	union codec_method_args a;
	expect(CODEC_BASIC_ACK, &a);
	ck_assert_int_eq(a.basic_ack.delivery_tag, 1);
	publish("nowhere", "b", true);
	expect(CODEC_BASIC_RETURN, &a);
	ck_assert_int_eq(a.basic_return.reply_code, CODEC_NO_ROUTE);
	ck_assert_str_eq(recv_body(), "b");
	expect(CODEC_BASIC_ACK, &a);
	ck_assert_int_eq(a.basic_ack.delivery_tag, 2);
	struct codec_tx_select ts = { 0 };
	send_method(1, CODEC_TX_SELECT, &ts);
	expect(CODEC_CHANNEL_CLOSE, &a);
	ck_assert_int_eq(a.channel_close.reply_code, CODEC_PRECONDITION_FAILED);
}
END_TEST

START_TEST(test_tx)
{
	handshake();
	declare("q4");
	struct codec_tx_select ts = { 0 };
	send_method(1, CODEC_TX_SELECT, &ts);
	expect(CODEC_TX_SELECT_OK, NULL);
	publish("q4", "x", false);
	struct codec_tx_rollback rb = { 0 };
	send_method(1, CODEC_TX_ROLLBACK, &rb);
	expect(CODEC_TX_ROLLBACK_OK, NULL);
	struct codec_queue_declare d = { .queue = bytes_of("q4"), .passive = true };
	send_method(1, CODEC_QUEUE_DECLARE, &d);
	union codec_method_args a;
	expect(CODEC_QUEUE_DECLARE_OK, &a);
	ck_assert_int_eq(a.queue_declare_ok.message_count, 0);
	publish("q4", "y", false);
	struct codec_tx_commit cm = { 0 };
	send_method(1, CODEC_TX_COMMIT, &cm);
	expect(CODEC_TX_COMMIT_OK, NULL);
	send_method(1, CODEC_QUEUE_DECLARE, &d);
	expect(CODEC_QUEUE_DECLARE_OK, &a);
	ck_assert_int_eq(a.queue_declare_ok.message_count, 1);
}
END_TEST

START_TEST(test_close_requeues)
{
	handshake();
	declare("q5");
	publish("q5", "keep", false);
	struct codec_basic_get g = { .queue = bytes_of("q5") };
	send_method(1, CODEC_BASIC_GET, &g);
	expect(CODEC_BASIC_GET_OK, NULL);
	ck_assert_str_eq(recv_body(), "keep");
	struct codec_channel_close cc = { .reply_code = 200, .reply_text = bytes_of("bye") };
	send_method(1, CODEC_CHANNEL_CLOSE, &cc);
	expect(CODEC_CHANNEL_CLOSE_OK, NULL);
	struct codec_channel_open co = { 0 };
	send_method(1, CODEC_CHANNEL_OPEN, &co);
	expect(CODEC_CHANNEL_OPEN_OK, NULL);
	send_method(1, CODEC_BASIC_GET, &g);
	union codec_method_args a;
	expect(CODEC_BASIC_GET_OK, &a);
	ck_assert(a.basic_get_ok.redelivered);
	ck_assert_str_eq(recv_body(), "keep");
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("conn");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_handshake);
	tcase_add_test(tc, test_bad_header);
	tcase_add_test(tc, test_tune_frame_max_small);
	tcase_add_test(tc, test_tune_channel_max_big);
	tcase_add_test(tc, test_channel_reopen);
	tcase_add_test(tc, test_publish_get);
	tcase_add_test(tc, test_prefetch_and_ack);
	tcase_add_test(tc, test_confirm_and_return);
	tcase_add_test(tc, test_tx);
	tcase_add_test(tc, test_close_requeues);
	suite_add_tcase(s, tc);
	return s;
}
