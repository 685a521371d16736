/*
 * TLS at the broker level: SASL EXTERNAL (conn_auth_external against the
 * user store), and a broker serving AMQP over TLS to an OpenSSL client on a
 * socketpair: EXTERNAL offered only with a verified client certificate,
 * accepted for a known user and refused otherwise, publishes larger than
 * one read (the before-sleep drain of input held inside TLS), and the
 * handshake timeout covering the TLS handshake.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "auth/users.h"
#include "broker/broker.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "codec/frame.h"
#include "codec/gen_methods.h"
#include "net/conn.h"
#include "net/conn_auth.h"
#include "net/tls.h"
#include "tls_test_util.h"

static struct broker B;

START_TEST(test_external_auth)
{
	struct broker_config cfg;
	broker_config_defaults(&cfg);
	ck_assert_int_eq(broker_init(&B, &cfg), 0);
	char *user = NULL;
	char why[160];
	ck_assert_int_eq(conn_auth_external(&B, "guest", true, &user, why, sizeof(why)),
	                 CONN_AUTH_OK);
	ck_assert_str_eq(user, "guest");
	free(user);
	user = NULL;
	ck_assert_int_eq(conn_auth_external(&B, "someone", true, &user, why, sizeof(why)),
	                 CONN_AUTH_REFUSED);
	ck_assert_str_eq(why, "EXTERNAL: user 'someone' (from the certificate CN): no such user");
	free(user);
	user = NULL;
	/* once the user exists, the certificate is enough: no password asked */
	char err[128];
	ck_assert_int_eq(users_add(B.users, "someone", "secret", err, sizeof(err)), 0);
	ck_assert_int_eq(conn_auth_external(&B, "someone", false, &user, why, sizeof(why)),
	                 CONN_AUTH_OK);
	ck_assert_str_eq(user, "someone");
	free(user);
	user = NULL;
	ck_assert_int_eq(conn_auth_external(&B, "guest", false, &user, why, sizeof(why)),
	                 CONN_AUTH_REFUSED);
	ck_assert_str_eq(why, "user 'guest' can only connect via localhost");
	free(user);
	user = NULL;
	ck_assert_int_eq(conn_auth_external(&B, NULL, true, &user, why, sizeof(why)),
	                 CONN_AUTH_REFUSED);
	ck_assert_ptr_null(user);
	ck_assert_ptr_nonnull(strstr(why, "no verified TLS"));
	broker_free(&B);
}
END_TEST

/* ---- a broker over TLS ----------------------------------------------- */

/* The client end; the broker's connection owns the server end. */
static struct {
	SSL_CTX *cctx;
	SSL *c;
	int sfd, cfd;
} C;
static uint8_t inbuf[1 << 20];
static size_t inlen, inused;

static void pump(void)
{
	for (int i = 0; i < 4; i++)
		ev_run(B.loop, EVRUN_NOWAIT);
}

static void broker_open(bool verify, const char *client_cert, double handshake_timeout)
{
	struct broker_config cfg;
	broker_config_defaults(&cfg);
	cfg.data_dir = "/tmp";
	cfg.disk_free_limit = 0;
	cfg.handshake_timeout = handshake_timeout;
	ck_assert_int_eq(broker_init(&B, &cfg), 0);
	B.log.level = LOG_ERROR;
	struct tls_settings s = tt_settings();
	if (verify) {
		s.ca = tt_path("ca.pem");
		s.verify_peer = true;
	}
	char err[256];
	B.tls = tls_new(&s, err, sizeof(err));
	ck_assert_msg(B.tls != NULL, "%s", err);
	memset(&C, 0, sizeof(C));
	tt_sockpair(&C.sfd, &C.cfd);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	conn_accept_tls(&B, C.sfd, (struct sockaddr *)&sin, sizeof(sin));
	C.cctx = tt_client_ctx(client_cert, 0);
	C.c = SSL_new(C.cctx);
	SSL_set_fd(C.c, C.cfd);
	SSL_set_connect_state(C.c);
	inlen = inused = 0;
}

static void broker_close(void)
{
	SSL_free(C.c);
	SSL_CTX_free(C.cctx);
	close(C.cfd);
	broker_free(&B); /* closes C.sfd with the connection */
}

static void send_all(const void *buf, size_t n)
{
	size_t done = 0;
	for (int i = 0; done < n && i < 100000; i++) {
		size_t k;
		ERR_clear_error();
		if (SSL_write_ex(C.c, (const uint8_t *)buf + done, n - done, &k) == 1)
			done += k;
		else
			ck_assert_int_ne(SSL_get_error(C.c, 0), SSL_ERROR_SSL);
		pump();
	}
	ck_assert_uint_eq(done, n);
	pump();
}

static void send_method(uint16_t ch, uint32_t id, const void *args)
{
	uint8_t buf[4096];
	size_t n = codec_method_size(id, args);
	frame_put_header(buf, FRAME_METHOD, ch, (uint32_t)n);
	struct wr w = wr_init(buf + FRAME_HEADER_SIZE, n);
	ck_assert_int_eq(codec_method_encode(&w, id, args), CODEC_OK);
	buf[FRAME_HEADER_SIZE + n] = FRAME_END_OCTET;
	send_all(buf, n + FRAME_OVERHEAD);
}

/* The next frame from the broker; false once the stream ended. */
static bool recv_frame(struct frame *f)
{
	memmove(inbuf, inbuf + inused, inlen - inused);
	inlen -= inused;
	inused = 0;
	for (int tries = 0; tries < 2000; tries++) {
		size_t n;
		if (inlen && frame_parse(inbuf, inlen, 0, f, &n) == CODEC_OK) {
			inused = n;
			return true;
		}
		pump();
		size_t k;
		ERR_clear_error();
		if (SSL_read_ex(C.c, inbuf + inlen, sizeof(inbuf) - inlen, &k) == 1) {
			inlen += k;
			continue;
		}
		int e = SSL_get_error(C.c, 0);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return false;
		usleep(500);
	}
	ck_abort_msg("no frame from the broker");
	return false;
}

static uint32_t recv_method(union codec_method_args *a)
{
	struct frame f;
	ck_assert(recv_frame(&f));
	ck_assert_int_eq(f.type, FRAME_METHOD);
	uint32_t id;
	ck_assert_int_eq(codec_method_decode(f.payload, &id, a), CODEC_OK);
	return id;
}

static void expect(uint32_t want, union codec_method_args *a)
{
	union codec_method_args tmp;
	uint32_t id = recv_method(a ? a : &tmp);
	ck_assert_msg(id == want, "expected %s, got %s", codec_method_name(want),
	              codec_method_name(id));
}

/* Header and connection.start; returns the offered mechanisms. */
static const char *amqp_start(void)
{
	static const uint8_t hdr[] = { 'A', 'M', 'Q', 'P', 0, 0, 9, 1 };
	static char mechs[64];
	send_all(hdr, sizeof(hdr));
	union codec_method_args a;
	expect(CODEC_CONNECTION_START, &a);
	struct bytes m = a.connection_start.mechanisms;
	snprintf(mechs, sizeof(mechs), "%.*s", (int)m.len, (const char *)m.ptr);
	return mechs;
}

static void amqp_open(const char *mechanism)
{
	static const uint8_t plain[] = "\0guest\0guest";
	struct codec_connection_start_ok so = {
		.mechanism = bytes_of(mechanism),
		.response = strcmp(mechanism, "PLAIN") == 0 ? (struct bytes){ plain, sizeof(plain) - 1 }
		                                            : bytes_of(""),
		.locale = bytes_of("en_US"),
	};
	send_method(0, CODEC_CONNECTION_START_OK, &so);
	expect(CODEC_CONNECTION_TUNE, NULL);
	struct codec_connection_tune_ok t = { .frame_max = 131072 };
	send_method(0, CODEC_CONNECTION_TUNE_OK, &t);
	struct codec_connection_open o = { .virtual_host = bytes_of("/") };
	send_method(0, CODEC_CONNECTION_OPEN, &o);
	expect(CODEC_CONNECTION_OPEN_OK, NULL);
	struct codec_channel_open co = { 0 };
	send_method(1, CODEC_CHANNEL_OPEN, &co);
	expect(CODEC_CHANNEL_OPEN_OK, NULL);
}

START_TEST(test_broker_external_offered_and_accepted)
{
	broker_open(true, "guest", 10.0);
	ck_assert_str_eq(amqp_start(), "PLAIN AMQPLAIN EXTERNAL");
	amqp_open("EXTERNAL");
	ck_assert_str_eq(B.conns->user, "guest");
	broker_close();
}
END_TEST

START_TEST(test_broker_external_refused)
{
	/* no client certificate: EXTERNAL is not offered, and refused if tried */
	broker_open(true, NULL, 10.0);
	ck_assert_str_eq(amqp_start(), "PLAIN AMQPLAIN");
	struct codec_connection_start_ok so = {
		.client_properties = { NULL, 0 },
		.mechanism = bytes_of("EXTERNAL"),
		.response = bytes_of(""),
		.locale = bytes_of("en_US"),
	};
	send_method(0, CODEC_CONNECTION_START_OK, &so);
	struct frame f;
	ck_assert(!recv_frame(&f)); /* no authentication_failure_close: hang up */
	ck_assert_uint_eq(B.nconns, 0);
	broker_close();

	/* a verified certificate naming no user */
	broker_open(true, "someone", 10.0);
	ck_assert_str_eq(amqp_start(), "PLAIN AMQPLAIN EXTERNAL");
	send_method(0, CODEC_CONNECTION_START_OK, &so);
	ck_assert(!recv_frame(&f));
	broker_close();
}
END_TEST

/* A publish frame sequence for queue q with a body of n bytes into out;
 * returns its length. */
static size_t build_publish(uint8_t *out, const uint8_t *body, size_t len)
{
	struct codec_basic_publish pm = { .routing_key = bytes_of("q") };
	size_t mlen = codec_method_size(CODEC_BASIC_PUBLISH, &pm);
	frame_put_header(out, FRAME_METHOD, 1, (uint32_t)mlen);
	struct wr w = wr_init(out + FRAME_HEADER_SIZE, mlen);
	ck_assert_int_eq(codec_method_encode(&w, CODEC_BASIC_PUBLISH, &pm), CODEC_OK);
	size_t n = FRAME_HEADER_SIZE + mlen;
	out[n++] = FRAME_END_OCTET;
	frame_put_header(out + n, FRAME_HEADER, 1, 14);
	w = wr_init(out + n + FRAME_HEADER_SIZE, 14);
	wr_u16(&w, CODEC_CLASS_BASIC);
	wr_u16(&w, 0);
	wr_u64(&w, len);
	wr_u16(&w, 0);
	n += FRAME_HEADER_SIZE + 14;
	out[n++] = FRAME_END_OCTET;
	for (size_t off = 0; off < len;) {
		size_t k = len - off < 131064 ? len - off : 131064;
		frame_put_header(out + n, FRAME_BODY, 1, (uint32_t)k);
		memcpy(out + n + FRAME_HEADER_SIZE, body + off, k);
		n += FRAME_HEADER_SIZE + k;
		out[n++] = FRAME_END_OCTET;
		off += k;
	}
	return n;
}

/*
 * Publishes larger than one read.  Whatever a read leaves inside TLS is
 * reachable only through the before-sleep drain: once the client stops
 * writing, the socket never becomes readable again.
 */
START_TEST(test_broker_large_publish_and_get)
{
	broker_open(false, NULL, 10.0);
	ck_assert_str_eq(amqp_start(), "PLAIN AMQPLAIN");
	amqp_open("PLAIN");
	struct codec_queue_declare d = { .queue = bytes_of("q") };
	send_method(1, CODEC_QUEUE_DECLARE, &d);
	expect(CODEC_QUEUE_DECLARE_OK, NULL);
	struct queue *q = vhost_queue_find(B.vhosts[0], bytes_of("q"));
	ck_assert_ptr_nonnull(q);

	enum { BODY = 300000 };
	static uint8_t msg[BODY + 4096], body[BODY], back[BODY];
	for (size_t i = 0; i < BODY; i++)
		body[i] = (uint8_t)(i % 253);
	static const size_t sizes[] = { 70000, 100000, 140000, BODY };
	for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
		size_t len = sizes[t];
		size_t n = build_publish(msg, body, len);
		/* as much as the socket takes before the broker runs */
		size_t done = 0, k;
		while (done < n && SSL_write_ex(C.c, msg + done, n - done, &k) == 1)
			done += k;
		ERR_clear_error();
		send_all(msg + done, n - done);
		for (int i = 0; i < 50 && q->ready == 0; i++)
			ev_run(B.loop, EVRUN_NOWAIT);
		ck_assert_msg(q->ready == 1, "body of %zu bytes: not all read", len);
		ck_assert_ptr_null(B.conns_pending);

		struct codec_basic_get g = { .queue = bytes_of("q"), .no_ack = true };
		send_method(1, CODEC_BASIC_GET, &g);
		expect(CODEC_BASIC_GET_OK, NULL);
		struct frame f;
		ck_assert(recv_frame(&f));
		ck_assert_int_eq(f.type, FRAME_HEADER);
		size_t got = 0;
		while (got < len) {
			ck_assert(recv_frame(&f));
			ck_assert_int_eq(f.type, FRAME_BODY);
			ck_assert_uint_le(got + f.payload.len, len);
			memcpy(back + got, f.payload.ptr, f.payload.len);
			got += f.payload.len;
		}
		ck_assert(memcmp(back, body, len) == 0);
	}
	broker_close();
}
END_TEST

START_TEST(test_broker_handshake_timeout)
{
	/* a client that connects and never says hello */
	broker_open(false, NULL, 0.2);
	ck_assert_uint_eq(B.nconns, 1);
	for (int i = 0; i < 100 && B.nconns > 0; i++) {
		ev_run(B.loop, EVRUN_ONCE);
	}
	ck_assert_uint_eq(B.nconns, 0);
	broker_close();
}
END_TEST

TCase *tt_broker_case(void)
{
	TCase *tc = tcase_create("broker");
	tcase_add_unchecked_fixture(tc, tt_pki_setup, tt_pki_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_external_auth);
	tcase_add_test(tc, test_broker_external_offered_and_accepted);
	tcase_add_test(tc, test_broker_external_refused);
	tcase_add_test(tc, test_broker_large_publish_and_get);
	tcase_add_test(tc, test_broker_handshake_timeout);
	return tc;
}
