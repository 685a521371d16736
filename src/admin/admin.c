/*
 * The admin socket: listening, per-client line framing with bounded
 * buffers, and the command table.  See admin.h for the protocol.
 *
 * Flow control: a client is read from only while it has no response
 * waiting to be written, so a client that sends requests without reading
 * answers stalls itself rather than growing our buffers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "admin/admin_int.h"
#include "broker/broker.h"
#include "broker/reply.h"
#include "broker/vhost.h"
#include "net/conn.h"
#include "util/xalloc.h"

#define ADMIN_READ_CHUNK 4096

static const struct {
	const char *name;
	admin_cmd_fn fn;
	bool mutates; /* logged at info; the others at debug */
} admin_table[] = {
	{ "status", admin_cmd_status, false },
	{ "environment", admin_cmd_environment, false },
	{ "list_queues", admin_cmd_list_queues, false },
	{ "list_exchanges", admin_cmd_list_exchanges, false },
	{ "list_bindings", admin_cmd_list_bindings, false },
	{ "list_connections", admin_cmd_list_connections, false },
	{ "list_channels", admin_cmd_list_channels, false },
	{ "list_consumers", admin_cmd_list_consumers, false },
	{ "list_vhosts", admin_cmd_list_vhosts, false },
	{ "list_users", admin_cmd_list_users, false },
	{ "list_permissions", admin_cmd_list_permissions, false },
	{ "list_user_permissions", admin_cmd_list_user_permissions, false },
	{ "authenticate_user", admin_cmd_authenticate_user, false },
	{ "export_definitions", admin_cmd_export_definitions, false },
	{ "add_user", admin_cmd_add_user, true },
	{ "delete_user", admin_cmd_delete_user, true },
	{ "change_password", admin_cmd_change_password, true },
	{ "set_user_tags", admin_cmd_set_user_tags, true },
	{ "add_vhost", admin_cmd_add_vhost, true },
	{ "delete_vhost", admin_cmd_delete_vhost, true },
	{ "set_permissions", admin_cmd_set_permissions, true },
	{ "clear_permissions", admin_cmd_clear_permissions, true },
	{ "purge_queue", admin_cmd_purge_queue, true },
	{ "delete_queue", admin_cmd_delete_queue, true },
	{ "close_connection", admin_cmd_close_connection, true },
	{ "import_definitions", admin_cmd_import_definitions, true },
	{ "log_level", admin_cmd_log_level, true },
};

#define ADMIN_NCMDS (sizeof(admin_table) / sizeof(admin_table[0]))

const char *const *admin_commands(void)
{
	static const char *names[ADMIN_NCMDS + 1];
	for (size_t i = 0; i < ADMIN_NCMDS; i++)
		names[i] = admin_table[i].name;
	names[ADMIN_NCMDS] = NULL;
	return names;
}

/* ---- argument helpers -------------------------------------------------- */

int admin_fail(struct admin_req *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return -1;
}

int admin_arg_bytes(struct admin_req *r, const char *key, bool required, struct bytes *out)
{
	const struct json_value *v = json_get(r->args, key);
	out->ptr = NULL;
	out->len = 0;
	if (!v || v->type == JSON_NULL)
		return required ? admin_fail(r, "missing argument '%s'", key) : 0;
	if (v->type != JSON_STRING)
		return admin_fail(r, "argument '%s' must be a string, not %s", key,
		                  json_type_name(v->type));
	out->ptr = (const uint8_t *)v->u.str.ptr;
	out->len = v->u.str.len;
	return 0;
}

const char *admin_arg_str(struct admin_req *r, const char *key, bool required)
{
	struct bytes s;
	if (admin_arg_bytes(r, key, required, &s) != 0 || !s.ptr)
		return NULL;
	if (memchr(s.ptr, 0, s.len)) {
		admin_fail(r, "argument '%s' contains a NUL character", key);
		return NULL;
	}
	return (const char *)s.ptr;
}

bool admin_arg_bool(struct admin_req *r, const char *key, bool def)
{
	const struct json_value *v = json_get(r->args, key);
	return v && v->type == JSON_BOOL ? v->u.b : def;
}

struct vhost *admin_arg_vhost(struct admin_req *r)
{
	r->err[0] = '\0';
	const char *name = admin_arg_str(r, "vhost", false);
	if (!name && r->err[0])
		return NULL;
	if (!name)
		name = "/";
	struct vhost *vh = broker_vhost_find(r->a->b, name, strlen(name));
	if (!vh)
		admin_fail(r, "Virtual host \"%s\" does not exist", name);
	return vh;
}

static void admin_sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		snprintf(buf, cap, "%s:%u", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(buf, cap, "[%s]:%u", host, port);
	} else {
		snprintf(buf, cap, "local");
	}
}

void admin_conn_name(const struct conn *c, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char local[80] = "?";
	memset(&ss, 0, sizeof(ss));
	if (getsockname(c->io.fd, (struct sockaddr *)&ss, &sl) == 0)
		admin_sockaddr_str(&ss, local, sizeof(local));
	snprintf(buf, cap, "%s -> %s", c->peer, local);
}

/* ---- requests ---------------------------------------------------------- */

/* " vhost='/' name='q'" for the log: what a command acted on, never a
 * password, with unprintable bytes escaped so a name cannot forge lines. */
static void admin_describe(const struct json_value *args, char *out, size_t cap)
{
	static const char *const keys[] = { "vhost", "user", "name", "level" };
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && n < cap; i++) {
		const struct json_value *v = json_get(args, keys[i]);
		if (!v || v->type != JSON_STRING)
			continue;
		char nb[200];
		reply_name(nb, sizeof(nb), (const uint8_t *)v->u.str.ptr, v->u.str.len);
		n += (size_t)snprintf(out + n, cap - n, " %s='%s'", keys[i], nb);
	}
}

char *admin_execute(struct admin *a, const char *line, size_t len, size_t *outlen)
{
	struct json_doc doc;
	struct json_out res, w;
	struct admin_req r = { .a = a };
	static const struct json_value no_args = { .type = JSON_OBJECT };
	int rc = -1;
	size_t i = ADMIN_NCMDS;
	char perr[256];
	json_out_init(&res);
	json_out_init(&w);
	r.w = &res;
	if (json_parse(&doc, line, len, perr, sizeof(perr)) != 0) {
		admin_fail(&r, "request is not valid JSON: %s", perr);
		goto reply;
	}
	const char *cmd = json_get_str(doc.root, "cmd");
	if (!cmd) {
		admin_fail(&r, "request needs a string \"cmd\"");
		goto reply;
	}
	for (i = 0; i < ADMIN_NCMDS; i++)
		if (strcmp(admin_table[i].name, cmd) == 0)
			break;
	if (i == ADMIN_NCMDS) {
		admin_fail(&r, "unknown command '%.64s'", cmd);
		goto reply;
	}
	r.args = json_get(doc.root, "args");
	if (!r.args || r.args->type == JSON_NULL)
		r.args = &no_args;
	if (r.args->type != JSON_OBJECT) {
		admin_fail(&r, "\"args\" must be an object");
		goto reply;
	}
	rc = admin_table[i].fn(&r);
	if (admin_table[i].mutates) {
		char what[300];
		admin_describe(r.args, what, sizeof(what));
		if (rc == 0)
			log_info(&a->b->log, "admin: %s%s", cmd, what);
		else
			log_info(&a->b->log, "admin: %s%s failed: %s", cmd, what, r.err);
	} else {
		log_debug(&a->b->log, "admin: %s%s%s", cmd, rc ? " failed: " : "", rc ? r.err : "");
	}
reply:
	json_obj_begin(&w);
	json_key(&w, "ok");
	json_bool(&w, rc == 0);
	if (rc == 0) {
		json_key(&w, "result");
		if (res.len)
			json_raw(&w, res.buf, res.len);
		else
			json_null(&w);
	} else {
		json_key(&w, "error");
		json_str(&w, r.err);
	}
	json_obj_end(&w);
	json_out_free(&res);
	json_doc_free(&doc);
	if (r.changed && a->changed)
		a->changed(a->changed_ctx);
	return json_out_take(&w, outlen);
}

/* ---- clients ----------------------------------------------------------- */

static void client_free(struct admin_client *cl)
{
	struct admin *a = cl->a;
	ev_io_stop(a->b->loop, &cl->io);
	close(cl->io.fd);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		a->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	a->nclients--;
	free(cl->in);
	free(cl->out);
	free(cl);
}

static void client_queue(struct admin_client *cl, const char *s, size_t n)
{
	if (cl->outoff == cl->outlen)
		cl->outoff = cl->outlen = 0;
	cl->out = xrealloc(cl->out, cl->outlen + n + 1);
	memcpy(cl->out + cl->outlen, s, n);
	cl->outlen += n;
	cl->out[cl->outlen++] = '\n';
}

/* Write what we can; false if the client is gone. */
static bool client_flush(struct admin_client *cl)
{
	while (cl->outoff < cl->outlen) {
		ssize_t n = send(cl->io.fd, cl->out + cl->outoff, cl->outlen - cl->outoff,
		                 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			client_free(cl);
			return false;
		}
		cl->outoff += (size_t)n;
	}
	free(cl->out);
	cl->out = NULL;
	cl->outoff = cl->outlen = 0;
	return true;
}

/* Watch for what the client's state needs; frees a finished client. */
static void client_rearm(struct admin_client *cl)
{
	bool pending = cl->outoff < cl->outlen;
	if (!pending && cl->closing) {
		client_free(cl);
		return;
	}
	int ev = pending ? EV_WRITE : EV_READ;
	if (cl->io.events != ev || !ev_is_active(&cl->io)) {
		ev_io_stop(cl->a->b->loop, &cl->io);
		ev_io_set(&cl->io, cl->io.fd, ev);
		ev_io_start(cl->a->b->loop, &cl->io);
	}
}

static void client_lines(struct admin_client *cl)
{
	size_t start = 0;
	while (start < cl->inlen) {
		char *nl = memchr(cl->in + start, '\n', cl->inlen - start);
		if (!nl)
			break;
		size_t len = (size_t)(nl - (cl->in + start));
		size_t n = len;
		if (n && cl->in[start + n - 1] == '\r')
			n--;
		if (n) {
			size_t rlen;
			char *resp = admin_execute(cl->a, cl->in + start, n, &rlen);
			client_queue(cl, resp, rlen);
			free(resp);
		}
		start += len + 1;
	}
	if (start) {
		memmove(cl->in, cl->in + start, cl->inlen - start);
		cl->inlen -= start;
	}
	if (cl->inlen > ADMIN_MAX_REQUEST) {
		char msg[128];
		int n = snprintf(msg, sizeof(msg),
		                 "{\"ok\":false,\"error\":\"request larger than %zu bytes\"}",
		                 ADMIN_MAX_REQUEST);
		client_queue(cl, msg, (size_t)n);
		cl->closing = true;
		cl->inlen = 0;
	}
}

static void client_read(struct admin_client *cl)
{
	for (;;) {
		if (cl->incap - cl->inlen < ADMIN_READ_CHUNK) {
			size_t cap = cl->incap ? cl->incap * 2 : 2 * ADMIN_READ_CHUNK;
			if (cap > ADMIN_MAX_REQUEST + 2 * ADMIN_READ_CHUNK)
				cap = ADMIN_MAX_REQUEST + 2 * ADMIN_READ_CHUNK;
			cl->in = xrealloc(cl->in, cap);
			cl->incap = cap;
		}
		ssize_t n = recv(cl->io.fd, cl->in + cl->inlen, cl->incap - cl->inlen, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			/* end of requests: answer what came, then hang up */
			client_lines(cl);
			cl->closing = true;
			break;
		}
		cl->inlen += (size_t)n;
		client_lines(cl);
		if (cl->closing || cl->outoff < cl->outlen)
			break;
	}
}

static void client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct admin_client *cl = (struct admin_client *)w;
	(void)loop;
	if ((revents & EV_READ) && !cl->closing)
		client_read(cl);
	if (cl->outoff < cl->outlen && !client_flush(cl))
		return;
	client_rearm(cl);
}

static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	return cred.uid == geteuid() || cred.uid == 0;
}

static void admin_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct admin *a = (struct admin *)w;
	(void)loop;
	(void)revents;
	for (;;) {
		int fd = accept4(a->io.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warning(&a->b->log, "admin socket: accept: %s", strerror(errno));
			return;
		}
		const char *refuse = NULL;
		if (!peer_allowed(fd))
			refuse = "{\"ok\":false,\"error\":\"permission denied\"}\n";
		else if (a->nclients >= ADMIN_MAX_CLIENTS)
			refuse = "{\"ok\":false,\"error\":\"too many admin clients\"}\n";
		if (refuse) {
			if (send(fd, refuse, strlen(refuse), MSG_NOSIGNAL) < 0)
				log_debug(&a->b->log, "admin socket: %s", strerror(errno));
			close(fd);
			continue;
		}
		struct admin_client *cl = xcalloc(1, sizeof(*cl));
		cl->a = a;
		cl->next = a->clients;
		if (a->clients)
			a->clients->prev = cl;
		a->clients = cl;
		a->nclients++;
		ev_io_init(&cl->io, client_cb, fd, EV_READ);
		ev_io_start(a->b->loop, &cl->io);
	}
}

/* ---- open and close ---------------------------------------------------- */

/* A socket file exists at path: is a live daemon behind it? */
static int admin_probe(const char *path, const struct sockaddr_un *sa, char *err, size_t errcap)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errcap, "admin socket %s: exists and is not a socket", path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errcap, "admin socket: %s", strerror(errno));
		return -1;
	}
	int rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
		snprintf(err, errcap, "admin socket %s: another warrend is running there", path);
		return -1;
	}
	/* nobody listening: a stale file from a daemon that died */
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(err, errcap, "admin socket %s: cannot remove stale socket: %s", path,
		         strerror(errno));
		return -1;
	}
	return 0;
}

struct admin *admin_open(struct broker *b, struct users *u, const char *path, char *err,
                         size_t errcap)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (errcap)
		err[0] = '\0';
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errcap, "admin socket %s: path longer than %zu bytes", path,
		         sizeof(sa.sun_path) - 1);
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path));
	if (admin_probe(path, &sa, err, errcap) != 0) {
		if (errcap && !err[0])
			snprintf(err, errcap, "admin socket %s: %s", path, strerror(errno));
		return NULL;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errcap, "admin socket: %s", strerror(errno));
		return NULL;
	}
	/* bind creates the file with the umask applied: make it owner-only
	 * from the start (called at startup, before any thread exists) */
	mode_t old = umask(0177);
	int rc = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	umask(old);
	struct stat st;
	if (rc != 0 || chmod(path, 0600) != 0 || stat(path, &st) != 0 || listen(fd, 16) != 0) {
		if (rc == 0)
			e = errno;
		snprintf(err, errcap, "admin socket %s: %s", path, strerror(e));
		close(fd);
		if (rc == 0)
			unlink(path);
		return NULL;
	}
	struct admin *a = xcalloc(1, sizeof(*a));
	a->b = b;
	a->u = u;
	a->path = xstrdup(path);
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	a->started = ev_now(b->loop);
	ev_io_init(&a->io, admin_accept_cb, fd, EV_READ);
	ev_io_start(b->loop, &a->io);
	return a;
}

void admin_set_changed_hook(struct admin *a, admin_changed_fn fn, void *ctx)
{
	a->changed = fn;
	a->changed_ctx = ctx;
}

void admin_close(struct admin *a)
{
	if (!a)
		return;
	while (a->clients)
		client_free(a->clients);
	ev_io_stop(a->b->loop, &a->io);
	close(a->io.fd);
	/* a newer daemon may have replaced the file: remove only our own */
	struct stat st;
	if (stat(a->path, &st) == 0 && st.st_dev == a->dev && st.st_ino == a->ino)
		unlink(a->path);
	free(a->path);
	free(a);
}
