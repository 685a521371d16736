/*
 * The admin socket end to end: a real broker on the default loop, the
 * socket in a temporary directory, and the test as the client, pumping the
 * loop until each answer line arrives.  Covers the protocol, the commands,
 * definitions export/import (including a file exported by RabbitMQ 3.10.8)
 * with validate-first import, and the socket's own rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/defs.h"
#include "auth/users.h"
#include "broker/broker.h"
#include "broker/message.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "net/conn.h"
#include "runner.h"
#include "util/json.h"

static struct broker B;
static struct users *U;
static struct admin *A;
static char dir[64], sock_path[128];
static int changes;

static void count_change(void *ctx)
{
	(void)ctx;
	changes++;
}

static void start_broker(void)
{
	struct broker_config cfg;
	broker_config_defaults(&cfg);
	cfg.data_dir = dir;
	cfg.disk_free_limit = 0;
	ck_assert_int_eq(broker_init(&B, &cfg), 0);
	B.log.level = LOG_ERROR;
	U = users_new();
	users_add_default(U);
}

static void stop_broker(void)
{
	broker_free(&B);
	users_free(U);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/warren-admin-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/warrend.sock", dir);
	start_broker();
	char err[256] = "";
	A = admin_open(&B, U, sock_path, err, sizeof(err));
	ck_assert_msg(A != NULL, "%s", err);
	changes = 0;
	admin_set_changed_hook(A, count_change, NULL);
}

static void teardown(void)
{
	admin_close(A);
	stop_broker();
	unlink(sock_path);
	rmdir(dir);
}

static int client_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	ck_assert_uint_lt(strlen(sock_path), sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* Send data, run the loop, collect until nlines newlines or EOF. */
static char *exchange_lines(int fd, const char *data, size_t len, int nlines, bool *eof)
{
	size_t off = 0, cap = 1 << 16, n = 0;
	char *in = malloc(cap);
	int lines = 0;
	*eof = false;
	for (int spins = 0; spins < 20000 && lines < nlines && !*eof; spins++) {
		if (off < len) {
			ssize_t w = send(fd, data + off, len - off, MSG_NOSIGNAL);
			if (w > 0)
				off += (size_t)w;
		}
		ev_run(B.loop, EVRUN_NOWAIT);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, off < len ? 0 : 1) != 1)
			continue;
		if (cap - n < 4096) {
			cap *= 2;
			in = realloc(in, cap);
		}
		ssize_t r = recv(fd, in + n, cap - n - 1, 0);
		if (r == 0)
			*eof = true;
		for (ssize_t i = 0; i < r; i++)
			lines += in[n + (size_t)i] == '\n';
		if (r > 0)
			n += (size_t)r;
	}
	in[n] = '\0';
	return in;
}

/* One request on a fresh connection; the parsed answer goes in doc. */
__attribute__((format(printf, 2, 3)))
static const struct json_value *call(struct json_doc *doc, const char *fmt, ...)
{
	char *req;
	va_list ap;
	va_start(ap, fmt);
	int len = vasprintf(&req, fmt, ap);
	va_end(ap);
	ck_assert_int_gt(len, 0);
	req = realloc(req, (size_t)len + 2);
	req[len] = '\n';
	int fd = client_connect();
	bool eof;
	char *resp = exchange_lines(fd, req, (size_t)len + 1, 1, &eof);
	close(fd);
	free(req);
	char err[256];
	size_t rl = strlen(resp);
	ck_assert_msg(rl > 0 && resp[rl - 1] == '\n', "no answer line: '%s'", resp);
	ck_assert_msg(json_parse(doc, resp, rl - 1, err, sizeof(err)) == 0, "%s: %s", err, resp);
	free(resp);
	return doc->root;
}

static bool ok(const struct json_value *r)
{
	const struct json_value *v = json_get(r, "ok");
	return v && v->type == JSON_BOOL && v->u.b;
}

static const struct json_value *result(const struct json_value *r)
{
	ck_assert_msg(ok(r), "failed: %s", json_get_str(r, "error"));
	return json_get(r, "result");
}

static void expect_error(const char *substring, const char *fmt, const char *arg)
{
	struct json_doc doc;
	const struct json_value *r = call(&doc, fmt, arg);
	ck_assert(!ok(r));
	const char *e = json_get_str(r, "error");
	ck_assert_msg(e && strstr(e, substring), "error '%s' lacks '%s'", e, substring);
	json_doc_free(&doc);
}

/* The string field key of each row, joined with spaces. */
static void column(const struct json_value *rows, const char *key, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < rows->u.arr.n && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? " " : "",
		                      json_get_str(&rows->u.arr.items[i], key));
}

START_TEST(protocol)
{
	struct json_doc doc;
	const struct json_value *st = result(call(&doc, "{\"cmd\":\"status\"}"));
	ck_assert_int_eq(json_get(st, "pid")->u.num.i, getpid());
	ck_assert_str_eq(json_get_str(st, "product"), "Warren");
	ck_assert_int_eq(json_get(st, "queues")->u.num.i, 0);
	ck_assert_int_eq(json_get(st, "vhosts")->u.num.i, 1);
	ck_assert_int_eq(json_get(st, "listeners")->type, JSON_ARRAY);
	ck_assert_str_eq(json_get_str(st, "admin_socket"), sock_path);
	json_doc_free(&doc);
	expect_error("unknown command 'nope'", "{\"cmd\":\"%s\"}", "nope");
	expect_error("request is not valid JSON: line 1", "%s", "{\"cmd\":");
	expect_error("needs a string \"cmd\"", "%s", "{\"args\":{}}");
	expect_error("\"args\" must be an object", "%s", "{\"cmd\":\"status\",\"args\":[]}");
	expect_error("argument 'name' must be a string", "%s",
	             "{\"cmd\":\"add_vhost\",\"args\":{\"name\":1}}");
	expect_error("missing argument 'name'", "%s", "{\"cmd\":\"add_vhost\"}");
	/* several requests in one write: answered in order, one line each, and
	 * the client's end-of-file is answered before the hang-up */
	static const char two[] = "{\"cmd\":\"list_vhosts\"}\r\n\n{\"cmd\":\"bogus\"}\n";
	int fd = client_connect();
	ck_assert_int_eq(send(fd, two, sizeof(two) - 1, 0), (ssize_t)sizeof(two) - 1);
	shutdown(fd, SHUT_WR);
	bool eof;
	char *resp = exchange_lines(fd, "", 0, 3, &eof);
	ck_assert(eof);
	close(fd);
	ck_assert_str_eq(resp, "{\"ok\":true,\"result\":[{\"name\":\"/\",\"queues\":0,"
	                       "\"exchanges\":7,\"connections\":0}]}\n"
	                       "{\"ok\":false,\"error\":\"unknown command 'bogus'\"}\n");
	free(resp);
	ck_assert_int_eq(changes, 0);
}
END_TEST

START_TEST(users_vhosts_permissions)
{
	struct json_doc doc;
	char names[256];
	result(call(&doc, "{\"cmd\":\"add_vhost\",\"args\":{\"name\":\"v1\"}}"));
	json_doc_free(&doc);
	column(result(call(&doc, "{\"cmd\":\"list_vhosts\"}")), "name", names, sizeof(names));
	ck_assert_str_eq(names, "/ v1");
	json_doc_free(&doc);
	result(call(&doc, "{\"cmd\":\"add_user\",\"args\":{\"name\":\"bob\",\"password\":\"s3\","
	                  "\"tags\":\"monitoring,management\"}}"));
	json_doc_free(&doc);
	expect_error("User \"bob\" already exists", "%s",
	             "{\"cmd\":\"add_user\",\"args\":{\"name\":\"bob\",\"password\":\"x\"}}");
	const struct json_value *users = result(call(&doc, "{\"cmd\":\"list_users\"}"));
	column(users, "user", names, sizeof(names));
	ck_assert_str_eq(names, "bob guest");
	ck_assert_str_eq(json_get(&users->u.arr.items[0], "tags")->u.arr.items[1].u.str.ptr,
	                 "management");
	json_doc_free(&doc);
	result(call(&doc, "{\"cmd\":\"set_permissions\",\"args\":{\"vhost\":\"v1\",\"user\":\"bob\","
	                  "\"configure\":\"^bob-\",\"write\":\".*\",\"read\":\"\"}}"));
	json_doc_free(&doc);
	ck_assert(users_permission_check(U, "bob", "v1", USERS_PERM_CONFIGURE, "bob-q"));
	ck_assert(!users_permission_check(U, "bob", "v1", USERS_PERM_CONFIGURE, "q"));
	const struct json_value *perms =
		result(call(&doc, "{\"cmd\":\"list_permissions\",\"args\":{\"vhost\":\"v1\"}}"));
	ck_assert_uint_eq(perms->u.arr.n, 1);
	ck_assert_str_eq(json_get_str(&perms->u.arr.items[0], "configure"), "^bob-");
	ck_assert_str_eq(json_get_str(&perms->u.arr.items[0], "read"), "");
	json_doc_free(&doc);
	perms = result(call(&doc, "{\"cmd\":\"list_user_permissions\",\"args\":{\"user\":\"bob\"}}"));
	column(perms, "vhost", names, sizeof(names));
	ck_assert_str_eq(names, "v1");
	json_doc_free(&doc);
	expect_error("Virtual host \"nov\" does not exist", "%s",
	             "{\"cmd\":\"set_permissions\",\"args\":{\"vhost\":\"nov\",\"user\":\"bob\","
	             "\"configure\":\"\",\"write\":\"\",\"read\":\"\"}}");
	expect_error("regular expression '(' is invalid", "%s",
	             "{\"cmd\":\"set_permissions\",\"args\":{\"user\":\"bob\","
	             "\"configure\":\"(\",\"write\":\"\",\"read\":\"\"}}");
	result(call(&doc, "{\"cmd\":\"authenticate_user\",\"args\":{\"name\":\"bob\",\"password\":\"s3\"}}"));
	json_doc_free(&doc);
	expect_error("user 'bob' - invalid credentials", "%s",
	             "{\"cmd\":\"authenticate_user\",\"args\":{\"name\":\"bob\",\"password\":\"no\"}}");
	result(call(&doc, "{\"cmd\":\"change_password\",\"args\":{\"name\":\"bob\",\"password\":\"new\"}}"));
	json_doc_free(&doc);
	ck_assert(users_check_password(U, "bob", "new"));
	result(call(&doc, "{\"cmd\":\"set_user_tags\",\"args\":{\"name\":\"bob\",\"tags\":[\"administrator\"]}}"));
	json_doc_free(&doc);
	ck_assert(users_has_tag(users_find(U, "bob"), "administrator"));
	ck_assert_uint_eq(users_find(U, "bob")->ntags, 1);
	/* deleting the vhost drops its permissions */
	result(call(&doc, "{\"cmd\":\"delete_vhost\",\"args\":{\"name\":\"v1\"}}"));
	json_doc_free(&doc);
	ck_assert(!users_vhost_access(U, "bob", "v1"));
	expect_error("Virtual host \"v1\" does not exist", "{\"cmd\":\"delete_vhost\",\"args\":"
	             "{\"name\":\"%s\"}}", "v1");
	result(call(&doc, "{\"cmd\":\"delete_user\",\"args\":{\"name\":\"bob\"}}"));
	json_doc_free(&doc);
	expect_error("User \"bob\" does not exist", "{\"cmd\":\"delete_user\",\"args\":"
	             "{\"name\":\"%s\"}}", "bob");
	/* add_vhost, add_user, set_permissions, authenticate (no), change_password,
	 * set_user_tags, delete_vhost, delete_user */
	ck_assert_int_eq(changes, 7);
}
END_TEST

static struct queue *declare(const char *name, bool durable, struct ftable args)
{
	struct queue *q;
	struct reply r = { 0 };
	ck_assert_int_eq(vhost_queue_declare(B.vhosts[0], bytes_of(name), false, durable, false, false,
	                                     args, NULL, broker_queue_hooks(), &B, &q, &r),
	                 0);
	return q;
}

static void publish(struct queue *q, const char *body)
{
	static const uint8_t no_props[2] = { 0, 0 };
	struct message *m = message_new(bytes_of(""), q->name, (struct bytes){ no_props, 2 },
	                                strlen(body));
	ck_assert(message_append_body(m, bytes_of(body)));
	queue_publish(q, m, broker_now_ms(&B));
	message_unref(m);
}

START_TEST(queues_exchanges_bindings)
{
	struct ftable_builder tb;
	ftable_builder_init(&tb);
	ftable_put_int(&tb, "x-max-length", 'I', 10);
	struct queue *q = declare("work", true, ftable_builder_get(&tb));
	ftable_builder_free(&tb);
	publish(q, "one");
	publish(q, "two");
	publish(q, "three");
	struct json_doc doc;
	const struct json_value *qs = result(call(&doc, "{\"cmd\":\"list_queues\"}"));
	ck_assert_uint_eq(qs->u.arr.n, 1);
	const struct json_value *row = &qs->u.arr.items[0];
	ck_assert_str_eq(json_get_str(row, "name"), "work");
	ck_assert_int_eq(json_get(row, "messages")->u.num.i, 3);
	ck_assert_int_eq(json_get(row, "messages_ready")->u.num.i, 3);
	ck_assert_int_eq(json_get(row, "message_bytes_ready")->u.num.i, 11);
	ck_assert_int_eq(json_get(row, "consumers")->u.num.i, 0);
	ck_assert(json_get(row, "durable")->u.b);
	ck_assert_int_eq(json_get(json_get(row, "arguments"), "x-max-length")->u.num.i, 10);
	ck_assert_int_gt(json_get(row, "memory")->u.num.i, 11);
	json_doc_free(&doc);
	expect_error("Virtual host \"nov\" does not exist",
	             "{\"cmd\":\"list_queues\",\"args\":{\"vhost\":\"%s\"}}", "nov");
	/* default exchange listed with the amq.* ones */
	const struct json_value *xs = result(call(&doc, "{\"cmd\":\"list_exchanges\"}"));
	char names[512];
	column(xs, "name", names, sizeof(names));
	ck_assert_str_eq(names, " amq.direct amq.fanout amq.headers amq.match amq.rabbitmq.trace amq.topic");
	json_doc_free(&doc);
	const struct json_value *bs = result(call(&doc, "{\"cmd\":\"list_bindings\"}"));
	ck_assert_uint_eq(bs->u.arr.n, 1);
	ck_assert_str_eq(json_get_str(&bs->u.arr.items[0], "source_name"), "");
	ck_assert_str_eq(json_get_str(&bs->u.arr.items[0], "routing_key"), "work");
	json_doc_free(&doc);
	const struct json_value *p =
		result(call(&doc, "{\"cmd\":\"purge_queue\",\"args\":{\"name\":\"work\"}}"));
	ck_assert_int_eq(json_get(p, "messages")->u.num.i, 3);
	json_doc_free(&doc);
	ck_assert_uint_eq(queue_message_count(q), 0);
	publish(q, "again");
	expect_error("NOT_FOUND - no queue 'nope' in vhost '/'",
	             "{\"cmd\":\"delete_queue\",\"args\":{\"name\":\"%s\"}}", "nope");
	expect_error("NOT_FOUND - no queue 'nope' in vhost '/'",
	             "{\"cmd\":\"purge_queue\",\"args\":{\"name\":\"%s\"}}", "nope");
	expect_error("PRECONDITION_FAILED - queue 'work' in vhost '/' not empty",
	             "{\"cmd\":\"delete_queue\",\"args\":{\"name\":\"%s\",\"if_empty\":true}}", "work");
	p = result(call(&doc, "{\"cmd\":\"delete_queue\",\"args\":{\"name\":\"work\"}}"));
	ck_assert_int_eq(json_get(p, "messages")->u.num.i, 1);
	json_doc_free(&doc);
	ck_assert_ptr_null(vhost_queue_find(B.vhosts[0], bytes_of("work")));
}
END_TEST

START_TEST(connections)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(4242) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	conn_accept(&B, sv[0], (struct sockaddr *)&sin, sizeof(sin));
	struct json_doc doc;
	const struct json_value *cs = result(call(&doc, "{\"cmd\":\"list_connections\"}"));
	ck_assert_uint_eq(cs->u.arr.n, 1);
	ck_assert_str_eq(json_get_str(&cs->u.arr.items[0], "peer"), "127.0.0.1:4242");
	ck_assert_str_eq(json_get_str(&cs->u.arr.items[0], "state"), "starting");
	ck_assert(strncmp(json_get_str(&cs->u.arr.items[0], "name"), "127.0.0.1:4242 -> ", 18) == 0);
	json_doc_free(&doc);
	const struct json_value *st = result(call(&doc, "{\"cmd\":\"status\"}"));
	ck_assert_int_eq(json_get(st, "connections")->u.num.i, 1);
	json_doc_free(&doc);
	expect_error("no connection named 'nope'",
	             "{\"cmd\":\"close_connection\",\"args\":{\"name\":\"%s\"}}", "nope");
	const struct json_value *r = result(call(
		&doc, "{\"cmd\":\"close_connection\",\"args\":{\"name\":\"127.0.0.1:4242\",\"reason\":\"bye\"}}"));
	ck_assert_int_eq(json_get(r, "closed")->u.num.i, 1);
	json_doc_free(&doc);
	ev_run(B.loop, EVRUN_NOWAIT);
	ck_assert_ptr_null(B.conns);
	char c;
	ck_assert_int_eq(read(sv[1], &c, 1), 0); /* the broker hung up */
	close(sv[1]);
	cs = result(call(&doc, "{\"cmd\":\"list_channels\"}"));
	ck_assert_uint_eq(cs->u.arr.n, 0);
	json_doc_free(&doc);
	cs = result(call(&doc, "{\"cmd\":\"list_consumers\"}"));
	ck_assert_uint_eq(cs->u.arr.n, 0);
	json_doc_free(&doc);
}
END_TEST

START_TEST(log_level_and_environment)
{
	struct json_doc doc;
	const struct json_value *r =
		result(call(&doc, "{\"cmd\":\"log_level\",\"args\":{\"level\":\"warning\"}}"));
	ck_assert_str_eq(json_get_str(r, "level"), "warning");
	ck_assert_int_eq(B.log.level, LOG_WARNING);
	json_doc_free(&doc);
	expect_error("unknown log level 'loud'",
	             "{\"cmd\":\"log_level\",\"args\":{\"level\":\"%s\"}}", "loud");
	r = result(call(&doc, "{\"cmd\":\"log_level\"}"));
	ck_assert_str_eq(json_get_str(r, "level"), "warning");
	json_doc_free(&doc);
	r = result(call(&doc, "{\"cmd\":\"environment\"}"));
	const struct json_value *s = json_get(r, "settings");
	ck_assert_str_eq(json_get_str(s, "amqp.channel_max"), "2047");
	ck_assert_str_eq(json_get_str(s, "paths.data_dir"), dir);
	ck_assert_str_eq(json_get_str(s, "log.level"), "warning");
	ck_assert_int_eq(json_get(s, "amqp.listen")->type, JSON_ARRAY);
	json_doc_free(&doc);
}
END_TEST

START_TEST(oversized_request)
{
	size_t len = ADMIN_MAX_REQUEST + 8192;
	char *big = malloc(len);
	memset(big, ' ', len);
	int fd = client_connect();
	bool eof;
	char *resp = exchange_lines(fd, big, len, 1, &eof);
	ck_assert_ptr_nonnull(strstr(resp, "\"error\":\"request larger than 16777216 bytes\""));
	free(resp);
	free(big);
	close(fd);
	/* the daemon goes on serving others */
	struct json_doc doc;
	result(call(&doc, "{\"cmd\":\"status\"}"));
	json_doc_free(&doc);
}
END_TEST

START_TEST(socket_rules)
{
	struct stat st;
	ck_assert_int_eq(stat(sock_path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	char err[256] = "";
	/* a live daemon on the path */
	ck_assert_ptr_null(admin_open(&B, U, sock_path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "another warrend is running"));
	/* not a socket */
	char path[160];
	snprintf(path, sizeof(path), "%s/file", dir);
	FILE *f = fopen(path, "w");
	fclose(f);
	ck_assert_ptr_null(admin_open(&B, U, path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "is not a socket"));
	unlink(path);
	/* a stale socket left by a dead daemon is replaced */
	snprintf(path, sizeof(path), "%s/stale.sock", dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	struct admin *a2 = admin_open(&B, U, path, err, sizeof(err));
	ck_assert_msg(a2 != NULL, "%s", err);
	admin_close(a2);
	ck_assert_int_eq(stat(path, &st), -1); /* removed on close */
	/* too long for sun_path */
	char lng[200];
	memset(lng, 'a', sizeof(lng) - 1);
	lng[0] = '/';
	lng[sizeof(lng) - 1] = '\0';
	ck_assert_ptr_null(admin_open(&B, U, lng, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "path longer than"));
	/* the command list is there for help texts */
	const char *const *cmds = admin_commands();
	size_t n = 0;
	while (cmds[n])
		n++;
	ck_assert_uint_ge(n, 27);
}
END_TEST

/* ---- definitions ------------------------------------------------------- */

/*
 * `rabbitmqctl export_definitions` from RabbitMQ 3.10.8 after add_user
 * alice/bob, add_vhost vh1, set_permissions and declares from pika (byte
 * array argument "by", decimal "f").  One binding, ex1 -> ex2, is left out:
 * ex2 was internal, which RabbitMQ does not export while it still exports
 * bindings to it, so its own file would not import.
 */
static const char rabbit_export[] =
	"{\"bindings\":[{\"arguments\":{},\"destination\":\"q1\",\"destination_type\":\"qu"
	"eue\",\"routing_key\":\"rk\",\"source\":\"amq.direct\",\"vhost\":\"/\"},{\"arguments"
	"\":{\"k\":\"v\"},\"destination\":\"q1\",\"destination_type\":\"queue\",\"routing_key"
	"\":\"a.*.b\",\"source\":\"ex1\",\"vhost\":\"/\"}],\"exchanges\":[{\"arguments\":{\"alt"
	"ernate-exchange\":\"ae\",\"b\":true,\"big\":1099511627776,\"by\":\"Not UTF-8, ba"
	"se64 is: AP8=\",\"f\":1.15,\"n\":1,\"nested\":{\"a\":[1,\"x\",false]}},\"auto_dele"
	"te\":false,\"durable\":true,\"name\":\"ex1\",\"type\":\"topic\",\"vhost\":\"/\"}],\"gl"
	"obal_parameters\":[],\"parameters\":[],\"permissions\":[{\"configure\":\".*\",\""
	"read\":\".*\",\"user\":\"guest\",\"vhost\":\"/\",\"write\":\".*\"},{\"configure\":\"^ali"
	"ce-.*\",\"read\":\"\",\"user\":\"alice\",\"vhost\":\"vh1\",\"write\":\".*\"}],\"policies"
	"\":[],\"queues\":[{\"arguments\":{\"x-dead-letter-exchange\":\"dlx\",\"x-max-len"
	"gth\":10,\"x-message-ttl\":60000},\"auto_delete\":false,\"durable\":true,\"nam"
	"e\":\"q1\",\"type\":\"classic\",\"vhost\":\"/\"},{\"arguments\":{},\"auto_delete\":tr"
	"ue,\"durable\":false,\"name\":\"q2\",\"type\":\"classic\",\"vhost\":\"/\"}],\"rabbit_"
	"version\":\"3.10.8\",\"rabbitmq_version\":\"3.10.8\",\"topic_permissions\":[],\""
	"users\":[{\"hashing_algorithm\":\"rabbit_password_hashing_sha256\",\"limits\""
	":{},\"name\":\"bob\",\"password_hash\":\"8G5GOoCCIMPegXAuzC/0ZLliniqFZyTDQk7l"
	"4qBtTknUowMZ\",\"tags\":[]},{\"hashing_algorithm\":\"rabbit_password_hashing"
	"_sha256\",\"limits\":{},\"name\":\"alice\",\"password_hash\":\"wx5yzOeOFcecNDpaI"
	"y/unZ5Rr899BVci52S6hQop1cPf2Oh7\",\"tags\":[\"monitoring\",\"management\"]},{"
	"\"hashing_algorithm\":\"rabbit_password_hashing_sha256\",\"limits\":{},\"name"
	"\":\"guest\",\"password_hash\":\"0dRy+wtV4w37ePY6GrPOOL2BoNa/iNCkzKLcQcJZRSA"
	"HFfdZ\",\"tags\":[\"administrator\"]}],\"vhosts\":[{\"limits\":[],\"metadata\":{\""
	"description\":\"Default virtual host\",\"tags\":[]},\"name\":\"/\"},{\"limits\":["
	"],\"metadata\":{\"description\":\"\",\"tags\":\"\"},\"name\":\"vh1\"}]}";

static char *export_now(int flags)
{
	size_t len;
	char *s = defs_export(&B, U, flags, &len);
	ck_assert_uint_eq(strlen(s), len);
	return s;
}

static void restart_empty(void)
{
	admin_close(A);
	stop_broker();
	start_broker();
	char err[256] = "";
	A = admin_open(&B, U, sock_path, err, sizeof(err));
	ck_assert_msg(A != NULL, "%s", err);
}

START_TEST(import_rabbit_export)
{
	char err[512];
	ck_assert_msg(defs_import(&B, U, rabbit_export, sizeof(rabbit_export) - 1, err,
	                          sizeof(err)) == 0, "%s", err);
	struct vhost *vh1 = broker_vhost_find(&B, "vh1", 3);
	ck_assert_ptr_nonnull(vh1);
	ck_assert(users_check_password(U, "alice", "s3cret-p\xc3\xa4ssword"));
	ck_assert(users_has_tag(users_find(U, "alice"), "management"));
	ck_assert(users_permission_check(U, "alice", "vh1", USERS_PERM_CONFIGURE, "alice-q"));
	ck_assert(!users_permission_check(U, "alice", "vh1", USERS_PERM_READ, "alice-q"));
	ck_assert(users_check_password(U, "guest", "guest"));
	struct vhost *vh = B.vhosts[0];
	struct exchange *x = vhost_exchange_find(vh, bytes_of("ex1"));
	ck_assert_ptr_nonnull(x);
	ck_assert_str_eq(x->type->name, "topic");
	ck_assert(x->has_alternate && bytes_eq_str(x->alternate, "ae"));
	struct fvalue v;
	ck_assert_int_eq(ftable_get(x->args, "big", &v), 1);
	ck_assert(v.type == 'l' && v.v.i64 == 1099511627776);
	ck_assert_int_eq(ftable_get(x->args, "nested", &v), 1);
	ck_assert_int_eq(v.type, 'F');
	struct queue *q1 = vhost_queue_find(vh, bytes_of("q1"));
	ck_assert_ptr_nonnull(q1);
	ck_assert(q1->flags & QUEUE_F_DURABLE);
	ck_assert_int_eq(q1->args.max_length, 10);
	ck_assert_int_eq(q1->args.message_ttl, 60000);
	struct queue *q2 = vhost_queue_find(vh, bytes_of("q2"));
	ck_assert(q2 && (q2->flags & QUEUE_F_AUTO_DELETE) && !(q2->flags & QUEUE_F_DURABLE));
	/* the bindings route */
	struct route_result rr;
	route_result_init(&rr);
	struct bytes key = bytes_of("a.x.b");
	ck_assert_uint_eq(exchange_route(vh, x, &key, 1, (struct ftable){ NULL, 0 }, &rr), 1);
	ck_assert_ptr_eq(rr.queues[0], q1);
	route_result_free(&rr);
	ck_assert_uint_eq(hmap_count(&vh->bindings), 2);
	/* export, import into an empty broker, export again: the same bytes */
	char *first = export_now(0);
	ck_assert_ptr_nonnull(strstr(first, "\"password_hash\":\"wx5yzOeOFcecNDpaIy/unZ5Rr899BVci52S6hQop1cPf2Oh7\""));
	ck_assert_ptr_nonnull(strstr(first, "{\"arguments\":{\"k\":\"v\"},\"destination\":\"q1\","
	                                    "\"destination_type\":\"queue\",\"routing_key\":\"a.*.b\","
	                                    "\"source\":\"ex1\",\"vhost\":\"/\"}"));
	restart_empty();
	ck_assert_int_eq(defs_import(&B, U, first, strlen(first), err, sizeof(err)), 0);
	char *second = export_now(0);
	ck_assert_str_eq(first, second);
	free(first);
	free(second);
}
END_TEST

START_TEST(import_through_the_socket)
{
	struct json_doc doc;
	const struct json_value *r = result(call(&doc, "{\"cmd\":\"import_definitions\",\"args\":"
	                                               "{\"definitions\":%s}}", rabbit_export));
	ck_assert_int_eq(json_get(r, "users")->u.num.i, 3);
	ck_assert_int_eq(json_get(r, "vhosts")->u.num.i, 2);
	ck_assert_int_eq(json_get(r, "queues")->u.num.i, 2);
	ck_assert_int_eq(json_get(r, "bindings")->u.num.i, 2);
	json_doc_free(&doc);
	ck_assert_int_eq(changes, 1);
	r = result(call(&doc, "{\"cmd\":\"export_definitions\"}"));
	ck_assert_int_eq(json_get(r, "queues")->u.arr.n, 2);
	ck_assert_str_eq(json_get_str(r, "rabbit_version"), "3.10.8");
	json_doc_free(&doc);
	expect_error("missing argument 'definitions'", "%s", "{\"cmd\":\"import_definitions\"}");
}
END_TEST

static const struct {
	const char *defs;
	const char *error;
} bad_imports[] = {
	{ "[]", "definitions must be a JSON object" },
	{ "{\"queues\":{}}", "'queues' must be an array, not object" },
	{ "{@P\"queues\":[{\"name\":\"newq\",\"vhost\":\"/\"}],\"bindings\":[{\"source\":\"nox\","
	  "\"vhost\":\"/\",\"destination\":\"newq\",\"destination_type\":\"queue\","
	  "\"routing_key\":\"k\",\"arguments\":{}}]}",
	  "bindings[0]: source exchange 'nox' does not exist in vhost '/'" },
	{ "{@P\"bindings\":[{\"source\":\"amq.direct\",\"vhost\":\"/\",\"destination\":\"gone\","
	  "\"destination_type\":\"queue\",\"routing_key\":\"\"}]}",
	  "destination queue 'gone' does not exist" },
	{ "{@P\"bindings\":[{\"source\":\"amq.direct\",\"vhost\":\"/\",\"destination\":\"x\","
	  "\"destination_type\":\"topic\",\"routing_key\":\"\"}]}",
	  "destination_type must be" },
	{ "{@P\"permissions\":[{\"user\":\"guest\",\"vhost\":\"/\",\"configure\":\"(\","
	  "\"write\":\"\",\"read\":\"\"}]}",
	  "permissions[0]: configure: regular expression '(' is invalid" },
	{ "{@P\"permissions\":[{\"user\":\"guest\",\"vhost\":\"nov\",\"configure\":\"\","
	  "\"write\":\"\",\"read\":\"\"}]}",
	  "virtual host 'nov' does not exist and is not in the definitions" },
	{ "{@P\"permissions\":[{\"user\":\"ghost\",\"vhost\":\"/\",\"configure\":\"\","
	  "\"write\":\"\",\"read\":\"\"}]}",
	  "user 'ghost' does not exist" },
	{ "{@P\"queues\":[{\"name\":\"q\",\"vhost\":\"/\",\"arguments\":{\"x\":null}}]}",
	  "queues[0]: null is not allowed in arguments" },
	{ "{@P\"queues\":[{\"name\":\"q\",\"vhost\":\"/\",\"arguments\":{\"x-max-length\":-1}}]}",
	  "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q'" },
	{ "{@P\"queues\":[{\"name\":\"q\",\"vhost\":\"/\",\"durable\":\"yes\"}]}",
	  "'durable' must be a boolean, not string" },
	{ "{@P\"queues\":[{\"vhost\":\"/\"}]}", "queues[0]: missing 'name'" },
	{ "{@P\"exchanges\":[{\"name\":\"e\",\"vhost\":\"/\",\"type\":\"bogus\"}]}",
	  "unknown exchange type 'bogus'" },
	{ "{@P\"exchanges\":[{\"name\":\"exd\",\"vhost\":\"/\",\"type\":\"fanout\"}]}",
	  "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'exd'" },
	{ "{@P\"exchanges\":[{\"name\":\"e\",\"vhost\":\"/\",\"type\":\"direct\","
	  "\"arguments\":{\"alternate-exchange\":1}}]}",
	  "alternate-exchange must be a string" },
	{ "{@P\"exchanges\":[\"e\"]}", "exchanges[0]: must be an object, not string" },
	{ "{\"users\":[{\"name\":\"u\",\"password\":\"p\",\"password_hash\":\"\"}]}",
	  "users[0]: both password and password_hash" },
	{ "{\"users\":[{\"name\":\"u\",\"password_hash\":\"zz\"}]}", "not valid base64" },
	{ "{\"users\":[{\"name\":\"u\",\"hashing_algorithm\":\"md4\"}]}",
	  "unknown hashing_algorithm 'md4'" },
	{ "{\"vhosts\":[{\"name\":\"\"}]}", "vhosts[0]: 'name' must be 1 to 255 bytes" },
};

START_TEST(import_validates_first)
{
	/* something that exists, for the equivalence case */
	struct reply r = { 0 };
	ck_assert_int_eq(vhost_exchange_declare(B.vhosts[0], bytes_of("exd"), bytes_of("direct"),
	                                        false, true, false, false, (struct ftable){ NULL, 0 },
	                                        &r),
	                 0);
	/* @P: valid entries ahead of the bad one, which must not be applied */
	static const char prefix[] = "\"vhosts\":[{\"name\":\"shouldnt\"}],\"users\":[{\"name\":"
	                             "\"shouldnt\",\"password\":\"x\"}],";
	char doc[2048];
	const char *src = bad_imports[_i].defs;
	const char *at = strstr(src, "@P");
	if (at)
		snprintf(doc, sizeof(doc), "%.*s%s%s", (int)(at - src), src, prefix, at + 2);
	else
		snprintf(doc, sizeof(doc), "%s", src);
	char *before = export_now(0);
	char err[512] = "";
	ck_assert_int_eq(defs_import(&B, U, doc, strlen(doc), err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, bad_imports[_i].error) != NULL, "error '%s' lacks '%s'", err,
	              bad_imports[_i].error);
	char *after = export_now(0);
	ck_assert_str_eq(before, after);
	ck_assert_ptr_null(broker_vhost_find(&B, "shouldnt", 8));
	ck_assert_ptr_null(users_find(U, "shouldnt"));
	free(before);
	free(after);
}
END_TEST

START_TEST(import_odd_files)
{
	char err[256];
	ck_assert_int_eq(defs_import(&B, U, "{\"users\":[}", 11, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "definitions are not valid JSON: line 1, column 11: unexpected '}', "
	                      "expected a JSON value");
	/* RabbitMQ before 3.6 wrote no hashing_algorithm and hashed with MD5;
	 * tags came as one comma-separated string */
	static const char old[] = "{\"rabbit_version\":\"3.5.7\",\"users\":[{\"name\":\"old\","
	                          "\"password_hash\":\"AQIDBNvo4BDSCtwH6D3+t011PrY=\","
	                          "\"tags\":\"administrator,monitoring\"}]}";
	ck_assert_msg(defs_import(&B, U, old, strlen(old), err, sizeof(err)) == 0, "%s", err);
	ck_assert(users_check_password(U, "old", "legacy"));
	ck_assert(users_has_tag(users_find(U, "old"), "monitoring"));
	/* empty sections and extra keys (policies, parameters) are fine */
	static const char empty[] = "{\"policies\":[{\"name\":\"p\"}],\"queues\":[],\"bindings\":null}";
	ck_assert_int_eq(defs_import(&B, U, empty, strlen(empty), err, sizeof(err)), 0);
}
END_TEST

START_TEST(export_durable_only)
{
	struct reply r = { 0 };
	struct vhost *vh = B.vhosts[0];
	struct ftable none = { NULL, 0 };
	declare("dq", true, none);
	declare("tq", false, none);
	ck_assert_int_eq(vhost_exchange_declare(vh, bytes_of("dx"), bytes_of("fanout"), false, true,
	                                        false, false, none, &r), 0);
	ck_assert_int_eq(vhost_exchange_declare(vh, bytes_of("ix"), bytes_of("fanout"), false, true,
	                                        false, true, none, &r), 0);
	/* a byte array argument: exported the way RabbitMQ writes it */
	struct ftable_builder tb;
	ftable_builder_init(&tb);
	static const uint8_t raw[] = { 0x00, 0xff };
	ftable_put_bytes(&tb, "by", (struct bytes){ raw, 2 });
	ck_assert_int_eq(vhost_exchange_declare(vh, bytes_of("tx"), bytes_of("direct"), false,
	                                        false, false, false, ftable_builder_get(&tb), &r), 0);
	ftable_builder_free(&tb);
	ck_assert_int_eq(vhost_queue_bind(vh, bytes_of("dq"), bytes_of("dx"), bytes_of(""), none, &r), 0);
	ck_assert_int_eq(vhost_queue_bind(vh, bytes_of("tq"), bytes_of("dx"), bytes_of(""), none, &r), 0);
	char *all = export_now(0);
	char *durable = export_now(DEFS_DURABLE_ONLY);
	ck_assert_ptr_nonnull(strstr(all, "\"name\":\"tq\""));
	ck_assert_ptr_nonnull(strstr(all, "\"by\":\"Not UTF-8, base64 is: AP8=\""));
	ck_assert_ptr_nonnull(strstr(all, "\"internal\":true,\"name\":\"ix\""));
	ck_assert_ptr_nonnull(strstr(durable, "\"name\":\"dq\""));
	ck_assert_ptr_null(strstr(durable, "\"name\":\"tq\""));
	ck_assert_ptr_nonnull(strstr(durable, "\"name\":\"dx\""));
	ck_assert_ptr_null(strstr(durable, "\"name\":\"tx\""));
	ck_assert_ptr_nonnull(strstr(durable, "\"destination\":\"dq\""));
	ck_assert_ptr_null(strstr(durable, "\"destination\":\"tq\""));
	ck_assert_ptr_null(strstr(all, "amq.direct"));
	free(all);
	free(durable);
}
END_TEST

static void add_defs_tests(TCase *tc)
{
	tcase_add_test(tc, import_rabbit_export);
	tcase_add_test(tc, import_through_the_socket);
	tcase_add_loop_test(tc, import_validates_first, 0,
	                    (int)(sizeof(bad_imports) / sizeof(bad_imports[0])));
	tcase_add_test(tc, import_odd_files);
	tcase_add_test(tc, export_durable_only);
}

Suite *unit_suite(void)
{
	Suite *s = suite_create("admin");
	TCase *tc = tcase_create("socket");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, protocol);
	tcase_add_test(tc, users_vhosts_permissions);
	tcase_add_test(tc, queues_exchanges_bindings);
	tcase_add_test(tc, connections);
	tcase_add_test(tc, log_level_and_environment);
	tcase_add_test(tc, oversized_request);
	tcase_add_test(tc, socket_rules);
	suite_add_tcase(s, tc);
	tc = tcase_create("definitions");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	add_defs_tests(tc);
	suite_add_tcase(s, tc);
	return s;
}
