/*
 * The Prometheus endpoint: the exposition text of a real broker object
 * (two vhosts, queues with messages, no store), label escaping and UTF-8
 * repair, the request-head parser, and the HTTP side over real sockets on
 * the default loop (200/404/405/400/431, HEAD, the client cap).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "admin/metrics.h"
#include "broker/broker.h"
#include "broker/message.h"
#include "broker/queue.h"
#include "broker/reply.h"
#include "broker/vhost.h"
#include "runner.h"

static struct broker B;
static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/warren-metrics-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	struct broker_config cfg;
	broker_config_defaults(&cfg);
	cfg.data_dir = dir;
	cfg.disk_free_limit = 0;
	ck_assert_int_eq(broker_init(&B, &cfg), 0);
	B.log.level = LOG_ERROR;
}

static void teardown(void)
{
	broker_free(&B);
	rmdir(dir);
}

static struct queue *declare(struct vhost *vh, struct bytes name)
{
	struct queue *q;
	struct reply r = { 0 };
	ck_assert_int_eq(vhost_queue_declare(vh, name, false, false, false, false,
	                                     (struct ftable){ NULL, 0 }, NULL,
	                                     broker_queue_hooks(), &B, &q, &r), 0);
	return q;
}

static void publish(struct queue *q, int n)
{
	static const uint8_t no_props[2] = { 0, 0 };
	for (int i = 0; i < n; i++) {
		struct message *m = message_new(bytes_of(""), q->name,
		                                (struct bytes){ no_props, 2 }, 5);
		ck_assert(message_append_body(m, bytes_of("hello")));
		queue_publish(q, m, broker_now_ms(&B));
		message_unref(m);
	}
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

/*
 * Every line is "# HELP name text", "# TYPE name type" or a sample
 * "name{labels} value" whose family was TYPEd just before (families are
 * contiguous), and no family is TYPEd twice.
 */
static void check_format(const char *text)
{
	char family[128] = "", typed[64][128];
	int ntyped = 0;
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		ck_assert_msg(e != NULL, "unterminated line: %s", p);
		size_t n = (size_t)(e - p);
		char line[1024];
		ck_assert_uint_lt(n, sizeof(line));
		memcpy(line, p, n);
		line[n] = '\0';
		if (strncmp(line, "# HELP ", 7) == 0) {
			ck_assert_uint_gt(strlen(line + 7), strcspn(line + 7, " ") + 1);
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			char type[32];
			ck_assert_int_eq(sscanf(line + 7, "%127s %31s", family, type), 2);
			ck_assert_msg(strcmp(type, "gauge") == 0 || strcmp(type, "counter") == 0,
			              "%s", line);
			if (strcmp(type, "counter") == 0)
				ck_assert_str_eq(family + strlen(family) - 6, "_total");
			for (int i = 0; i < ntyped; i++)
				ck_assert_str_ne(typed[i], family);
			ck_assert_int_lt(ntyped, 64);
			snprintf(typed[ntyped++], sizeof(typed[0]), "%s", family);
		} else {
			size_t nl = strcspn(line, "{ ");
			ck_assert_msg(nl == strlen(family) && strncmp(line, family, nl) == 0,
			              "sample outside its family: %s", line);
			const char *v = strrchr(line, ' ');
			ck_assert_ptr_nonnull(v);
			char *end;
			strtod(v + 1, &end);
			ck_assert_msg(*end == '\0' && end > v + 1, "bad value: %s", line);
			if (line[nl] == '{')
				ck_assert_msg(v > line + nl && v[-1] == '}', "bad labels: %s", line);
		}
		p = e + 1;
	}
}

START_TEST(render_broker)
{
	struct vhost *prod = broker_vhost_add(&B, "prod");
	ck_assert_ptr_nonnull(prod);
	publish(declare(B.vhosts[0], bytes_of("b")), 0);
	publish(declare(B.vhosts[0], bytes_of("a")), 3);
	publish(declare(prod, bytes_of("jobs")), 1);
	B.stat_published = 7;
	B.stat_delivered = 5;
	B.stat_acked = 2;
	B.disk_alarm = true;
	size_t len;
	char *t = metrics_render(&B, 12.5, &len);
	ck_assert_uint_eq(len, strlen(t));
	check_format(t);
	ck_assert(has_line(t, "# TYPE warren_queue_messages_ready gauge"));
	ck_assert(has_line(t, "warren_queue_messages_ready{vhost=\"/\",queue=\"a\"} 3"));
	ck_assert(has_line(t, "warren_queue_messages_ready{vhost=\"/\",queue=\"b\"} 0"));
	ck_assert(has_line(t, "warren_queue_messages_ready{vhost=\"prod\",queue=\"jobs\"} 1"));
	ck_assert(has_line(t, "warren_queue_messages_unacked{vhost=\"/\",queue=\"a\"} 0"));
	ck_assert(has_line(t, "warren_queue_consumers{vhost=\"prod\",queue=\"jobs\"} 0"));
	/* sorted by vhost, then name */
	const char *a = strstr(t, "warren_queue_messages_ready{vhost=\"/\",queue=\"a\"}");
	const char *b = strstr(t, "warren_queue_messages_ready{vhost=\"/\",queue=\"b\"}");
	const char *j = strstr(t, "warren_queue_messages_ready{vhost=\"prod\",queue=\"jobs\"}");
	ck_assert(a && b && j && a < b && b < j);
	ck_assert(has_line(t, "warren_queues 3"));
	ck_assert(has_line(t, "warren_vhosts 2"));
	ck_assert(has_line(t, "warren_messages_ready 4"));
	ck_assert(has_line(t, "warren_messages_unacked 0"));
	ck_assert(has_line(t, "warren_connections 0"));
	ck_assert(has_line(t, "warren_channels 0"));
	ck_assert(has_line(t, "warren_consumers 0"));
	ck_assert(has_line(t, "warren_messages_published_total 7"));
	ck_assert(has_line(t, "warren_messages_delivered_total 5"));
	ck_assert(has_line(t, "warren_messages_acked_total 2"));
	ck_assert(has_line(t, "warren_alarm{resource=\"memory\"} 0"));
	ck_assert(has_line(t, "warren_alarm{resource=\"disk\"} 1"));
	ck_assert(has_line(t, "warren_uptime_seconds 12.500"));
	ck_assert_ptr_nonnull(strstr(t, "\nwarren_process_resident_memory_bytes "));
	ck_assert_ptr_null(strstr(t, "\nwarren_process_resident_memory_bytes 0\n"));
	/* no store opened: no store families */
	ck_assert_ptr_null(strstr(t, "warren_store_"));
	free(t);

	/* a deleted queue leaves the exposition */
	struct reply r = { 0 };
	uint32_t count;
	ck_assert_int_eq(vhost_queue_delete(prod, bytes_of("jobs"), false, false, &count, &r), 0);
	t = metrics_render(&B, 0, &len);
	check_format(t);
	ck_assert_ptr_null(strstr(t, "queue=\"jobs\""));
	ck_assert(has_line(t, "warren_queues 2"));
	ck_assert(has_line(t, "warren_queue_messages_ready{vhost=\"/\",queue=\"a\"} 3"));
	free(t);
}
END_TEST

START_TEST(render_empty)
{
	size_t len;
	char *t = metrics_render(&B, 0, &len);
	check_format(t);
	ck_assert(has_line(t, "warren_queues 0"));
	ck_assert(has_line(t, "warren_vhosts 1"));
	/* the per-queue families are declared even with no samples */
	ck_assert(has_line(t, "# TYPE warren_queue_messages_ready gauge"));
	ck_assert_ptr_null(strstr(t, "warren_queue_messages_ready{"));
	free(t);
}
END_TEST

static void expect_escape(const char *in, size_t n, const char *want)
{
	char out[64];
	ck_assert_uint_le(3 * n, sizeof(out));
	size_t o = metrics_escape_label(out, (const unsigned char *)in, n);
	ck_assert_uint_le(o, 3 * n);
	ck_assert_uint_eq(o, strlen(want));
	ck_assert_msg(memcmp(out, want, o) == 0, "escape of %s: got %.*s", in, (int)o, out);
}

START_TEST(label_escaping)
{
	expect_escape("plain", 5, "plain");
	expect_escape("a\"b\\c\nd", 7, "a\\\"b\\\\c\\nd");
	expect_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x87", 14,
	              "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x87");
	/* tabs and carriage returns are legal in label values */
	expect_escape("a\tb\r", 4, "a\tb\r");
	/* invalid bytes each become U+FFFD */
	expect_escape("\xff", 1, "\xef\xbf\xbd");
	expect_escape("x\xc0\x80y", 4, "x\xef\xbf\xbd\xef\xbf\xbdy");   /* overlong NUL */
	expect_escape("\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd");       /* truncated */
	expect_escape("\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* surrogate */
	expect_escape("\xf4\x90\x80\x80", 4,                             /* past U+10FFFF */
	              "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	expect_escape("", 0, "");

	/* and in the exposition (queue names lose CR and LF at declare, like
	 * RabbitMQ's, so the newline comes in through the vhost name) */
	struct vhost *vh = broker_vhost_add(&B, "v\"h\n");
	publish(declare(vh, (struct bytes){ (const uint8_t *)"q\\1\xfe", 4 }), 2);
	size_t len;
	char *t = metrics_render(&B, 0, &len);
	check_format(t);
	ck_assert(has_line(t, "warren_queue_messages_ready{vhost=\"v\\\"h\\n\",queue=\"q\\\\1"
	                      "\xef\xbf\xbd\"} 2"));
	free(t);
}
END_TEST

#define P(s) metrics_parse_request(s, sizeof(s) - 1)

START_TEST(request_parser)
{
	ck_assert_int_eq(P("GET /metrics HTTP/1.1\r\nHost: localhost:15692\r\n"
	                   "Accept: text/plain\r\n\r\n"), METRICS_PARSE_METRICS);
	ck_assert_int_eq(P("GET /metrics HTTP/1.0\r\n\r\n"), METRICS_PARSE_METRICS);
	ck_assert_int_eq(P("GET /metrics HTTP/1.0\n\n"), METRICS_PARSE_METRICS);
	ck_assert_int_eq(P("GET /metrics?name[]=x HTTP/1.1\r\n\r\n"), METRICS_PARSE_METRICS);
	ck_assert_int_eq(P("HEAD /metrics HTTP/1.1\r\n\r\n"), METRICS_PARSE_HEAD);
	ck_assert_int_eq(P("GET / HTTP/1.1\r\n\r\n"), METRICS_PARSE_NOT_FOUND);
	ck_assert_int_eq(P("GET /metricsx HTTP/1.1\r\n\r\n"), METRICS_PARSE_NOT_FOUND);
	ck_assert_int_eq(P("GET /metrics/ HTTP/1.1\r\n\r\n"), METRICS_PARSE_NOT_FOUND);
	ck_assert_int_eq(P("GET /api/overview HTTP/1.1\r\n\r\n"), METRICS_PARSE_NOT_FOUND);
	ck_assert_int_eq(P("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
	                 METRICS_PARSE_METHOD);
	/* incomplete heads wait for more */
	ck_assert_int_eq(P(""), METRICS_PARSE_MORE);
	ck_assert_int_eq(P("GET /metr"), METRICS_PARSE_MORE);
	ck_assert_int_eq(P("GET /metrics HTTP/1.1\r\n"), METRICS_PARSE_MORE);
	ck_assert_int_eq(P("GET /metrics HTTP/1.1\r\nHost: x\r\n"), METRICS_PARSE_MORE);
	ck_assert_int_eq(P("GET /metrics HTTP/1.1\r\nHost: x\r\n\r"), METRICS_PARSE_MORE);
	/* not HTTP/1.x: judged as soon as the first line is whole */
	ck_assert_int_eq(P("hello\n"), METRICS_PARSE_BAD);
	ck_assert_int_eq(P("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n"), METRICS_PARSE_BAD);
	ck_assert_int_eq(P("AMQP\x00\x00\x09\x01\n"), METRICS_PARSE_BAD);
	ck_assert_int_eq(P("GET /metrics HTTP/2.0\r\n\r\n"), METRICS_PARSE_BAD);
	ck_assert_int_eq(P("GET /metrics\r\n\r\n"), METRICS_PARSE_BAD);
	ck_assert_int_eq(P("GET metrics HTTP/1.1\r\n\r\n"), METRICS_PARSE_BAD);
	ck_assert_int_eq(P("GET  /metrics HTTP/1.1\r\n\r\n"), METRICS_PARSE_BAD);
	ck_assert_int_eq(P("get /metrics HTTP/1.1\r\n\r\n"), METRICS_PARSE_BAD);
	ck_assert_int_eq(P("GET /metrics HTTP/1.1 \r\n\r\n"), METRICS_PARSE_BAD);
	ck_assert_int_eq(P("GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n"), METRICS_PARSE_BAD);
	ck_assert_int_eq(P("GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n"), METRICS_PARSE_BAD);
	ck_assert_int_eq(P("GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n"), METRICS_PARSE_BAD);

	/* bounded: a head that does not end within METRICS_MAX_REQUEST */
	static char big[METRICS_MAX_REQUEST + 100];
	int n = snprintf(big, sizeof(big), "GET /metrics HTTP/1.1\r\nX-Pad: ");
	memset(big + n, 'a', sizeof(big) - (size_t)n);
	ck_assert_int_eq(metrics_parse_request(big, METRICS_MAX_REQUEST - 1), METRICS_PARSE_MORE);
	ck_assert_int_eq(metrics_parse_request(big, METRICS_MAX_REQUEST), METRICS_PARSE_TOO_LARGE);
	memcpy(big, "GET /", 5);
	memset(big + 5, 'b', sizeof(big) - 5);
	ck_assert_int_eq(metrics_parse_request(big, METRICS_MAX_REQUEST), METRICS_PARSE_TOO_LARGE);
}
END_TEST

/* ---- over sockets -------------------------------------------------------- */

static int connect_to(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	ck_assert_ptr_nonnull(colon);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* Send req (if any), pump the loop, return all bytes up to EOF (or NULL
 * if none came within the spin budget). */
static char *http(int fd, const char *req, size_t reqlen, size_t *outlen)
{
	size_t off = 0, n = 0, cap = 1 << 16;
	char *in = malloc(cap);
	for (int spins = 0; spins < 5000; spins++) {
		if (off < reqlen) {
			ssize_t w = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
			if (w > 0)
				off += (size_t)w;
		}
		ev_run(B.loop, EVRUN_NOWAIT);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 1) != 1)
			continue;
		if (cap - n < 4096) {
			cap *= 2;
			in = realloc(in, cap);
		}
		ssize_t r = recv(fd, in + n, cap - n - 1, 0);
		if (r < 0 && errno == EAGAIN)
			continue;
		if (r <= 0) {
			in[n] = '\0';
			*outlen = n;
			return in;
		}
		n += (size_t)r;
	}
	free(in);
	return NULL;
}

static char *fetch(struct metrics *m, const char *req, size_t reqlen, size_t *len)
{
	int fd = connect_to(metrics_address(m));
	char *out = http(fd, req, reqlen, len);
	close(fd);
	ck_assert_msg(out != NULL, "no complete response to %.40s", req);
	return out;
}

/* The body after the head, checking Content-Length against it. */
static const char *body_of(const char *resp, size_t len, size_t *blen)
{
	const char *sep = strstr(resp, "\r\n\r\n");
	ck_assert_ptr_nonnull(sep);
	const char *cl = strstr(resp, "\r\nContent-Length: ");
	ck_assert(cl && cl < sep);
	*blen = len - (size_t)(sep + 4 - resp);
	return sep + 4;
}

START_TEST(http_endpoint)
{
	char err[256] = "";
	struct metrics *m = metrics_open(&B, "127.0.0.1:0", err, sizeof(err));
	ck_assert_msg(m != NULL, "%s", err);
	ck_assert_str_ne(metrics_address(m), "127.0.0.1:0");
	ck_assert_int_eq(strncmp(metrics_address(m), "127.0.0.1:", 10), 0);
	publish(declare(B.vhosts[0], bytes_of("work")), 3);

	static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t len, blen;
	char *r = fetch(m, get, sizeof(get) - 1, &len);
	ck_assert_int_eq(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
	ck_assert_ptr_nonnull(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4"));
	ck_assert_ptr_nonnull(strstr(r, "\r\nConnection: close\r\n"));
	const char *body = body_of(r, len, &blen);
	char want[64];
	snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", blen);
	ck_assert_ptr_nonnull(strstr(r, want));
	check_format(body);
	ck_assert(has_line(body, "warren_queue_messages_ready{vhost=\"/\",queue=\"work\"} 3"));
	free(r);

	/* the request may arrive a byte at a time */
	int fd = connect_to(metrics_address(m));
	for (size_t i = 0; i + 1 < sizeof(get) - 1; i++) {
		ck_assert_int_eq(send(fd, get + i, 1, MSG_NOSIGNAL), 1);
		ev_run(B.loop, EVRUN_NOWAIT);
	}
	r = http(fd, get + sizeof(get) - 2, 1, &len);
	close(fd);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
	free(r);

	static const char head[] = "HEAD /metrics HTTP/1.0\r\n\r\n";
	r = fetch(m, head, sizeof(head) - 1, &len);
	ck_assert_int_eq(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
	body_of(r, len, &blen);
	ck_assert_uint_eq(blen, 0);
	ck_assert_ptr_null(strstr(r, "Content-Length: 0\r\n"));
	free(r);

	static const char other[] = "GET /index.html HTTP/1.1\r\n\r\n";
	r = fetch(m, other, sizeof(other) - 1, &len);
	ck_assert_int_eq(strncmp(r, "HTTP/1.1 404 Not Found\r\n", 24), 0);
	body = body_of(r, len, &blen);
	ck_assert_str_eq(body, "404 Not Found\n");
	free(r);

	static const char post[] = "POST /metrics HTTP/1.1\r\n\r\n";
	r = fetch(m, post, sizeof(post) - 1, &len);
	ck_assert_int_eq(strncmp(r, "HTTP/1.1 405 Method Not Allowed\r\n", 33), 0);
	ck_assert_ptr_nonnull(strstr(r, "\r\nAllow: GET, HEAD\r\n"));
	free(r);

	static const char junk[] = "\x01\x02 not http at all\r\n";
	r = fetch(m, junk, sizeof(junk) - 1, &len);
	ck_assert_int_eq(strncmp(r, "HTTP/1.1 400 Bad Request\r\n", 26), 0);
	free(r);

	char *big = malloc(3 * METRICS_MAX_REQUEST);
	int n = snprintf(big, 64, "GET /metrics HTTP/1.1\r\nX-Pad: ");
	memset(big + n, 'z', 3 * METRICS_MAX_REQUEST - (size_t)n);
	r = fetch(m, big, 3 * METRICS_MAX_REQUEST, &len);
	ck_assert_int_eq(strncmp(r, "HTTP/1.1 431 ", 13), 0);
	free(r);
	free(big);

	metrics_close(m);
}
END_TEST

START_TEST(http_client_cap)
{
	char err[256] = "";
	struct metrics *m = metrics_open(&B, "127.0.0.1:0", err, sizeof(err));
	ck_assert_msg(m != NULL, "%s", err);
	int idle[METRICS_MAX_CLIENTS];
	for (int i = 0; i < METRICS_MAX_CLIENTS; i++) {
		idle[i] = connect_to(metrics_address(m));
		ev_run(B.loop, EVRUN_NOWAIT);
	}
	/* one too many: accepted and closed without a word */
	int extra = connect_to(metrics_address(m));
	size_t len;
	char *r = http(extra, NULL, 0, &len);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(len, 0);
	free(r);
	close(extra);
	/* the idle ones are still being served */
	static const char get[] = "GET /metrics HTTP/1.1\r\n\r\n";
	r = http(idle[0], get, sizeof(get) - 1, &len);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
	free(r);
	close(idle[0]);
	/* its slot is free again */
	r = fetch(m, get, sizeof(get) - 1, &len);
	ck_assert_int_eq(strncmp(r, "HTTP/1.1 200 OK\r\n", 17), 0);
	free(r);
	for (int i = 1; i < METRICS_MAX_CLIENTS; i++)
		close(idle[i]);
	/* clients still open are dropped by close */
	metrics_close(m);
}
END_TEST

START_TEST(open_errors)
{
	char err[256] = "";
	ck_assert_ptr_null(metrics_open(&B, "nonsense", err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "[metrics] listen"));
	struct metrics *m = metrics_open(&B, "127.0.0.1:0", err, sizeof(err));
	ck_assert_ptr_nonnull(m);
	char spec[80];
	snprintf(spec, sizeof(spec), "%s", metrics_address(m));
	err[0] = '\0';
	ck_assert_ptr_null(metrics_open(&B, spec, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, spec));
	ck_assert_ptr_nonnull(strstr(err, "in use"));
	metrics_close(m);
	metrics_close(NULL);
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, render_broker);
	tcase_add_test(tc, render_empty);
	tcase_add_test(tc, label_escaping);
	tcase_add_test(tc, request_parser);
	tcase_add_test(tc, http_endpoint);
	tcase_add_test(tc, http_client_cap);
	tcase_add_test(tc, open_errors);
	suite_add_tcase(s, tc);
	return s;
}
