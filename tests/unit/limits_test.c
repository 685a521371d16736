/*
 * Limits and login hardening: the queue limit of a vhost, the connection
 * limits per user and per vhost and the channel limit at the wire (RabbitMQ's
 * texts, RabbitMQ's order), the loopback-only guest rule and what a refused
 * login's log text may hold, and the failed-login delay, which must hold
 * back only the refused connection.
 *
 * Clients are socketpairs handed to conn_accept with a made-up peer
 * address (loopback or not); the test plays each client with the codec and
 * runs the broker's loop until the answer arrives.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/users.h"
#include "broker/broker.h"
#include "broker/vhost.h"
#include "codec/frame.h"
#include "codec/gen_methods.h"
#include "codec/table.h"
#include "net/conn.h"
#include "net/conn_auth.h"
#include "runner.h"

static struct broker B;
static struct broker_config cfg;

static void broker_up(void)
{
	cfg.data_dir = "/tmp";
	cfg.disk_free_limit = 0;
	ck_assert_int_eq(broker_init(&B, &cfg), 0);
	B.log.level = LOG_ERROR;
}

static void setup(void)
{
	broker_config_defaults(&cfg);
}

static void teardown(void)
{
	if (B.loop)
		broker_free(&B);
	memset(&B, 0, sizeof(B));
}

/* ---- a client on a socketpair ----------------------------------------- */

struct client {
	int fd;
	uint8_t in[1 << 16];
	size_t len;
};

/* What the broker answered: a method id, and the close fields if it was
 * connection.close or channel.close. */
struct answer {
	uint32_t id;
	uint16_t channel;
	uint16_t code;
	uint32_t method; /* class << 16 | method of the close */
	char text[256];
};

static void pump(void)
{
	for (int i = 0; i < 4; i++)
		ev_run(B.loop, EVRUN_NOWAIT);
}

static struct client *client_new(const char *addr)
{
	struct client *c = calloc(1, sizeof(*c));
	ck_assert_ptr_nonnull(c);
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(40000) };
	ck_assert_int_eq(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
	conn_accept(&B, sv[0], (struct sockaddr *)&sin, sizeof(sin));
	c->fd = sv[1];
	return c;
}

static void client_free(struct client *c)
{
	close(c->fd);
	free(c);
	pump();
}

static void client_send(struct client *c, uint16_t ch, uint32_t id, const void *args)
{
	uint8_t buf[4096];
	size_t n = codec_method_size(id, args);
	ck_assert_uint_lt(n + 8, sizeof(buf));
	frame_put_header(buf, FRAME_METHOD, ch, (uint32_t)n);
	struct wr w = wr_init(buf + 7, n);
	ck_assert_int_eq(codec_method_encode(&w, id, args), CODEC_OK);
	buf[7 + n] = FRAME_END_OCTET;
	ck_assert_int_eq(write(c->fd, buf, n + 8), (ssize_t)(n + 8));
	pump();
}

/*
 * The next method from the broker, waiting up to ms milliseconds of loop
 * time.  Returns false if none came (or the socket closed: *closed).
 */
static bool client_recv(struct client *c, struct answer *ans, int ms, bool *closed)
{
	if (closed)
		*closed = false;
	for (int waited = 0; waited <= ms; waited += 5) {
		struct frame f;
		size_t n;
		while (c->len && frame_parse(c->in, c->len, 0, &f, &n) == CODEC_OK) {
			bool method = f.type == FRAME_METHOD;
			if (method) {
				union codec_method_args a;
				memset(ans, 0, sizeof(*ans));
				ck_assert_int_eq(codec_method_decode(f.payload, &ans->id, &a), CODEC_OK);
				ans->channel = f.channel;
				if (ans->id == CODEC_CONNECTION_CLOSE) {
					const struct codec_connection_close *cl = &a.connection_close;
					ans->code = cl->reply_code;
					ans->method = (uint32_t)cl->class_id << 16 | cl->method_id;
					snprintf(ans->text, sizeof(ans->text), "%.*s",
					         (int)cl->reply_text.len, (const char *)cl->reply_text.ptr);
				} else if (ans->id == CODEC_CHANNEL_CLOSE) {
					const struct codec_channel_close *cl = &a.channel_close;
					ans->code = cl->reply_code;
					ans->method = (uint32_t)cl->class_id << 16 | cl->method_id;
					snprintf(ans->text, sizeof(ans->text), "%.*s",
					         (int)cl->reply_text.len, (const char *)cl->reply_text.ptr);
				}
			}
			memmove(c->in, c->in + n, c->len - n);
			c->len -= n;
			if (method)
				return true;
		}
		pump();
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		if (poll(&pfd, 1, 5) == 1) {
			ssize_t r = read(c->fd, c->in + c->len, sizeof(c->in) - c->len);
			if (r == 0) {
				if (closed)
					*closed = true;
				return false;
			}
			if (r > 0)
				c->len += (size_t)r;
		}
	}
	return false;
}

static void client_expect(struct client *c, uint32_t id, struct answer *ans)
{
	struct answer tmp;
	if (!ans)
		ans = &tmp;
	ck_assert_msg(client_recv(c, ans, 3000, NULL), "no %s from the broker",
	              codec_method_name(id));
	ck_assert_msg(ans->id == id, "expected %s, got %s (%s)", codec_method_name(id),
	              codec_method_name(ans->id), ans->text);
}

static void client_start_ok(struct client *c, const char *user, const char *password)
{
	static const uint8_t hdr[] = { 'A', 'M', 'Q', 'P', 0, 0, 9, 1 };
	ck_assert_int_eq(write(c->fd, hdr, 8), 8);
	pump();
	client_expect(c, CODEC_CONNECTION_START, NULL);
	struct ftable_builder caps, props;
	ftable_builder_init(&caps);
	ftable_put_bool(&caps, "authentication_failure_close", true);
	ftable_builder_init(&props);
	ftable_put_table(&props, "capabilities", ftable_builder_get(&caps));
	char resp[256];
	int n = snprintf(resp, sizeof(resp), "%c%s%c%s", 0, user, 0, password);
	struct codec_connection_start_ok so = {
		.client_properties = ftable_builder_get(&props),
		.mechanism = bytes_of("PLAIN"),
		.response = { (const uint8_t *)resp, (size_t)n },
		.locale = bytes_of("en_US"),
	};
	client_send(c, 0, CODEC_CONNECTION_START_OK, &so);
	ftable_builder_free(&props);
	ftable_builder_free(&caps);
}

/* Log in and ask for vhost; the answer to connection.open lands in *ans. */
static void client_open(struct client *c, const char *user, const char *password,
                        const char *vhost, uint16_t channel_max, struct answer *ans)
{
	client_start_ok(c, user, password);
	client_expect(c, CODEC_CONNECTION_TUNE, NULL);
	struct codec_connection_tune_ok t = { .channel_max = channel_max };
	client_send(c, 0, CODEC_CONNECTION_TUNE_OK, &t);
	struct codec_connection_open o = { .virtual_host = bytes_of(vhost) };
	client_send(c, 0, CODEC_CONNECTION_OPEN, &o);
	ck_assert(client_recv(c, ans, 3000, NULL));
}

static struct client *client_opened(const char *user, const char *password, const char *vhost)
{
	struct client *c = client_new("127.0.0.1");
	struct answer a;
	client_open(c, user, password, vhost, 0, &a);
	ck_assert_msg(a.id == CODEC_CONNECTION_OPEN_OK, "open refused: %s", a.text);
	return c;
}

static void expect_open_refused(const char *user, const char *password, const char *vhost,
                                const char *text)
{
	struct client *c = client_new("127.0.0.1");
	struct answer a;
	client_open(c, user, password, vhost, 0, &a);
	ck_assert_uint_eq(a.id, CODEC_CONNECTION_CLOSE);
	ck_assert_uint_eq(a.code, CODEC_NOT_ALLOWED);
	ck_assert_uint_eq(a.method, CODEC_CONNECTION_OPEN);
	ck_assert_str_eq(a.text, text);
	client_free(c);
}

static void add_user(const char *name, const char *vhost)
{
	char err[200];
	if (!users_find(B.users, name))
		ck_assert_int_eq(users_add(B.users, name, "pw", err, sizeof(err)), 0);
	ck_assert_int_eq(users_set_permissions(B.users, name, vhost, ".*", ".*", ".*", err,
	                                       sizeof(err)), 0);
}

/* ---- queues per vhost --------------------------------------------------- */

static int declare(struct vhost *vh, const char *name, bool passive, struct reply *err)
{
	struct ftable none = { NULL, 0 };
	struct queue *q;
	return vhost_queue_declare(vh, bytes_of(name), passive, false, false, false, none, NULL,
	                           NULL, NULL, &q, err);
}

START_TEST(test_queue_limit)
{
	struct vhost *vh = vhost_new(NULL, "/");
	struct reply err;
	ck_assert_uint_eq(vh->max_queues, 0);
	vh->max_queues = 2;
	ck_assert_int_eq(declare(vh, "a", false, &err), 0);
	ck_assert_int_eq(declare(vh, "b", false, &err), 0);
	ck_assert_int_eq(declare(vh, "c", false, &err), -1);
	ck_assert_uint_eq(err.code, CODEC_PRECONDITION_FAILED);
	ck_assert_str_eq(err.text, "PRECONDITION_FAILED - cannot declare queue 'c': "
	                           "queue limit in vhost '/' (2) is reached");
	/* a server-named queue is refused under the name it would have had */
	ck_assert_int_eq(declare(vh, "", false, &err), -1);
	ck_assert_uint_eq(err.code, CODEC_PRECONDITION_FAILED);
	ck_assert_int_eq(strncmp(err.text, "PRECONDITION_FAILED - cannot declare queue 'amq.gen-",
	                         51), 0);
	/* RabbitMQ's order: reserved names and passive lookups first */
	ck_assert_int_eq(declare(vh, "amq.x", false, &err), -1);
	ck_assert_uint_eq(err.code, CODEC_ACCESS_REFUSED);
	ck_assert_int_eq(declare(vh, "c", true, &err), -1);
	ck_assert_uint_eq(err.code, CODEC_NOT_FOUND);
	/* redeclaring is no new queue */
	ck_assert_int_eq(declare(vh, "a", false, &err), 0);
	ck_assert_int_eq(declare(vh, "a", true, &err), 0);
	/* room again after a delete */
	uint32_t count;
	ck_assert_int_eq(vhost_queue_delete(vh, bytes_of("b"), false, false, &count, &err), 0);
	ck_assert_int_eq(declare(vh, "c", false, &err), 0);
	/* 0 is no limit */
	vh->max_queues = 0;
	for (int i = 0; i < 10; i++) {
		char name[16];
		snprintf(name, sizeof(name), "n%d", i);
		ck_assert_int_eq(declare(vh, name, false, &err), 0);
	}
	vhost_free(vh);
}
END_TEST

START_TEST(test_queue_limit_from_config)
{
	cfg.max_queues_per_vhost = 7;
	broker_up();
	ck_assert_uint_eq(B.vhosts[0]->max_queues, 7);
	ck_assert_uint_eq(broker_vhost_add(&B, "other")->max_queues, 7);
}
END_TEST

/* ---- connections per user and per vhost --------------------------------- */

START_TEST(test_connection_limits)
{
	cfg.max_connections_per_user = 1;
	cfg.max_connections_per_vhost = 2;
	broker_up();
	add_user("bob", "/");
	add_user("bob", "v2");
	add_user("carol", "/");
	broker_vhost_add(&B, "v2");
	struct client *g = client_opened("guest", "guest", "/");
	expect_open_refused("guest", "guest", "/",
	                    "NOT_ALLOWED - connection refused for user 'guest': "
	                    "user connection limit (1) is reached");
	struct client *b = client_opened("bob", "pw", "/");
	/* '/' is full and carol has none: the vhost limit speaks */
	expect_open_refused("carol", "pw", "/",
	                    "NOT_ALLOWED - access to vhost '/' refused for user 'carol': "
	                    "connection limit (2) is reached");
	/* over both: still the vhost limit (RabbitMQ checks it first) */
	expect_open_refused("bob", "pw", "/",
	                    "NOT_ALLOWED - access to vhost '/' refused for user 'bob': "
	                    "connection limit (2) is reached");
	/* another vhost counts on its own; bob's own limit still holds */
	expect_open_refused("bob", "pw", "v2",
	                    "NOT_ALLOWED - connection refused for user 'bob': "
	                    "user connection limit (1) is reached");
	client_free(b);
	struct client *b2 = client_opened("bob", "pw", "v2");
	struct client *c = client_opened("carol", "pw", "/");
	/* a connection that is closing no longer counts */
	struct codec_connection_close cl = { .reply_code = 200, .reply_text = bytes_of("bye") };
	client_send(g, 0, CODEC_CONNECTION_CLOSE, &cl);
	client_expect(g, CODEC_CONNECTION_CLOSE_OK, NULL);
	struct client *g2 = client_opened("guest", "guest", "/");
	client_free(g);
	client_free(g2);
	client_free(b2);
	client_free(c);
}
END_TEST

START_TEST(test_no_limits_by_default)
{
	broker_up();
	struct client *c[5];
	for (int i = 0; i < 5; i++)
		c[i] = client_opened("guest", "guest", "/");
	for (int i = 0; i < 5; i++)
		client_free(c[i]);
}
END_TEST

/* ---- channels ----------------------------------------------------------- */

static void channel_open(struct client *c, uint16_t ch)
{
	struct codec_channel_open o = { 0 };
	client_send(c, ch, CODEC_CHANNEL_OPEN, &o);
}

START_TEST(test_channel_limit)
{
	broker_up();
	struct client *c = client_new("127.0.0.1");
	struct answer a;
	client_open(c, "guest", "guest", "/", 3, &a);
	ck_assert_uint_eq(a.id, CODEC_CONNECTION_OPEN_OK);
	for (uint16_t ch = 1; ch <= 3; ch++) {
		channel_open(c, ch);
		client_expect(c, CODEC_CHANNEL_OPEN_OK, NULL);
	}
	channel_open(c, 4);
	client_expect(c, CODEC_CONNECTION_CLOSE, &a);
	ck_assert_uint_eq(a.code, CODEC_NOT_ALLOWED);
	ck_assert_uint_eq(a.method, 0);
	ck_assert_str_eq(a.text, "NOT_ALLOWED - number of channels opened (3) has reached "
	                         "the negotiated channel_max (3)");
	client_free(c);

	/* a number above channel_max is refused even with room (the spec) */
	c = client_new("127.0.0.1");
	client_open(c, "guest", "guest", "/", 3, &a);
	channel_open(c, 9);
	client_expect(c, CODEC_CONNECTION_CLOSE, &a);
	ck_assert_uint_eq(a.code, CODEC_NOT_ALLOWED);
	ck_assert_str_eq(a.text, "NOT_ALLOWED - channel number 9 is out of range (channel_max 3)");
	client_free(c);
}
END_TEST

/* ---- logins ------------------------------------------------------------- */

static int auth(const char *user, const char *password, bool loopback, char *why, size_t cap)
{
	char resp[300];
	int n = snprintf(resp, sizeof(resp), "%c%s%c%s", 0, user, 0, password);
	char *who = NULL;
	why[0] = '\0';
	int rc = conn_auth_check(&B, bytes_of("PLAIN"), (struct bytes){ (const uint8_t *)resp,
	                                                                 (size_t)n },
	                         loopback, &who, why, cap);
	if (rc == CONN_AUTH_OK)
		ck_assert_str_eq(who, user);
	free(who);
	return rc;
}

START_TEST(test_guest_loopback_only)
{
	broker_up();
	char why[160];
	ck_assert_int_eq(auth("guest", "guest", true, why, sizeof(why)), CONN_AUTH_OK);
	ck_assert_int_eq(auth("guest", "guest", false, why, sizeof(why)), CONN_AUTH_REFUSED);
	ck_assert_str_eq(why, "user 'guest' can only connect via localhost");
	/* any other user from anywhere */
	add_user("remote", "/");
	ck_assert_int_eq(auth("remote", "pw", false, why, sizeof(why)), CONN_AUTH_OK);
	/* and the same rule through the handshake, from a non-loopback peer */
	struct client *c = client_new("192.0.2.7");
	struct answer a;
	client_open(c, "remote", "pw", "/", 0, &a);
	ck_assert_uint_eq(a.id, CODEC_CONNECTION_OPEN_OK);
	client_free(c);
	c = client_new("192.0.2.7");
	client_start_ok(c, "guest", "guest");
	client_expect(c, CODEC_CONNECTION_CLOSE, &a);
	ck_assert_uint_eq(a.code, CODEC_ACCESS_REFUSED);
	client_free(c);
}
END_TEST

START_TEST(test_refusal_text_has_no_password)
{
	broker_up();
	char why[160];
	ck_assert_int_eq(auth("guest", "Secret-42", true, why, sizeof(why)), CONN_AUTH_REFUSED);
	ck_assert_str_eq(why, "user 'guest': invalid credentials");
	ck_assert_int_eq(auth("nobody", "Secret-42", true, why, sizeof(why)), CONN_AUTH_REFUSED);
	ck_assert_ptr_null(strstr(why, "Secret"));
	/* the name is the client's: control bytes cannot forge log lines */
	ck_assert_int_eq(auth("ev\nil", "x", true, why, sizeof(why)), CONN_AUTH_REFUSED);
	ck_assert_str_eq(why, "user 'ev\\x0ail': invalid credentials");
	char *who = NULL;
	ck_assert_int_eq(conn_auth_check(&B, bytes_of("X\r\n"), bytes_of("a"), true, &who, why,
	                                 sizeof(why)), CONN_AUTH_BAD_MECHANISM);
	ck_assert_str_eq(why, "unsupported authentication mechanism 'X\\x0d\\x0a'");
	free(who);
}
END_TEST

/* ---- the failed-login delay ---------------------------------------------- */

START_TEST(test_failed_login_delayed)
{
	broker_up();
	struct client *bad = client_new("127.0.0.1");
	ev_tstamp t0 = ev_time();
	client_start_ok(bad, "guest", "wrong");
	struct answer a;
	/* nothing for a while ... */
	ck_assert(!client_recv(bad, &a, 300, NULL));
	/* ... while another client is served in full */
	struct client *good = client_opened("guest", "guest", "/");
	channel_open(good, 1);
	client_expect(good, CODEC_CHANNEL_OPEN_OK, NULL);
	ck_assert(ev_time() - t0 < CONN_AUTH_FAIL_DELAY);
	/* then the 403 */
	client_expect(bad, CODEC_CONNECTION_CLOSE, &a);
	ck_assert(ev_time() - t0 >= CONN_AUTH_FAIL_DELAY - 0.05);
	ck_assert_uint_eq(a.code, CODEC_ACCESS_REFUSED);
	ck_assert_uint_eq(a.method, CODEC_CONNECTION_START_OK);
	ck_assert_str_eq(a.text, "ACCESS_REFUSED - Login was refused using authentication "
	                         "mechanism PLAIN. For details see the broker logfile.");
	struct codec_connection_close_ok ok = { 0 };
	client_send(bad, 0, CODEC_CONNECTION_CLOSE_OK, &ok);
	bool closed;
	ck_assert(!client_recv(bad, &a, 3000, &closed));
	ck_assert(closed);
	client_free(bad);
	client_free(good);
}
END_TEST

START_TEST(test_failed_login_input_ignored)
{
	broker_up();
	struct client *bad = client_new("127.0.0.1");
	client_start_ok(bad, "guest", "wrong");
	/* what a client sends meanwhile is not acted on */
	struct codec_connection_tune_ok t = { 0 };
	client_send(bad, 0, CODEC_CONNECTION_TUNE_OK, &t);
	struct codec_connection_open o = { .virtual_host = bytes_of("/") };
	client_send(bad, 0, CODEC_CONNECTION_OPEN, &o);
	struct answer a;
	client_expect(bad, CODEC_CONNECTION_CLOSE, &a);
	ck_assert_uint_eq(a.code, CODEC_ACCESS_REFUSED);
	client_free(bad);
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_queue_limit);
	tcase_add_test(tc, test_queue_limit_from_config);
	tcase_add_test(tc, test_connection_limits);
	tcase_add_test(tc, test_no_limits_by_default);
	tcase_add_test(tc, test_channel_limit);
	tcase_add_test(tc, test_guest_loopback_only);
	tcase_add_test(tc, test_refusal_text_has_no_password);
	tcase_add_test(tc, test_failed_login_delayed);
	tcase_add_test(tc, test_failed_login_input_ignored);
	suite_add_tcase(s, tc);
	return s;
}
