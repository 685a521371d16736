/*
 * warrenctl: the operator's command line for a running warrend, in the
 * spirit of rabbitmqctl.  It turns a command and its arguments into one
 * JSON request on the daemon's admin socket (see src/admin/admin.h), waits
 * for the one-line answer and prints it as a table or as JSON.  Two
 * commands, fsck and dump, work offline instead: they read the data
 * directory of a stopped daemon through the store (src/store/store.h).
 *
 * Exit status: 0 done, 1 the broker refused or the command failed, 2 bad
 * usage, 69 (EX_UNAVAILABLE) the daemon could not be reached or did not
 * answer; fsck adds 3 (damage left) and 4 (damage repaired).
 * warrenctl(1) documents the commands.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/ctl.h"
#include "store/store.h"
#include "util/json.h"
#include "util/xalloc.h"


static const struct ctl_cmd ctl_cmds[] = {
	{ "status", "", 0, 0, 0, NULL, NULL, "Status of warrend ..." },
	{ "environment", "", 0, 0, 0, NULL, NULL, "Effective configuration of warrend ..." },
	{ "list_queues", "[-p VHOST] [COLUMN ...]", 0, -1, O_VHOST,
	  "name vhost durable auto_delete exclusive type state messages_ready "
	  "messages_unacknowledged messages message_bytes_ready consumers memory arguments",
	  "name messages", "Listing queues for vhost %V ..." },
	{ "list_exchanges", "[-p VHOST] [COLUMN ...]", 0, -1, O_VHOST,
	  "name vhost type durable auto_delete internal bindings arguments", "name type",
	  "Listing exchanges for vhost %V ..." },
	{ "list_bindings", "[-p VHOST] [COLUMN ...]", 0, -1, O_VHOST,
	  "source_name source_kind destination_name destination_kind routing_key arguments vhost",
	  "source_name source_kind destination_name destination_kind routing_key arguments",
	  "Listing bindings for vhost %V..." },
	{ "list_connections", "[COLUMN ...]", 0, -1, 0,
	  "name user_provided_name peer user vhost state channels channel_max frame_max timeout "
	  "send_pend",
	  "user peer state", "Listing connections ..." },
	{ "list_channels", "[COLUMN ...]", 0, -1, 0,
	  "name connection number user vhost state consumer_count messages_unacknowledged "
	  "prefetch_count global_prefetch_count confirm transactional flow",
	  "name user consumer_count messages_unacknowledged", "Listing channels ..." },
	{ "list_consumers", "[-p VHOST] [COLUMN ...]", 0, -1, O_VHOST,
	  "queue_name channel consumer_tag ack_required exclusive prefetch_count "
	  "messages_unacknowledged active arguments",
	  "queue_name channel consumer_tag ack_required prefetch_count active arguments",
	  "Listing consumers in vhost %V ..." },
	{ "list_vhosts", "[COLUMN ...]", 0, -1, 0, "name queues exchanges connections", "name",
	  "Listing vhosts ..." },
	{ "list_users", "[COLUMN ...]", 0, -1, 0, "user tags", "user tags", "Listing users ..." },
	{ "list_permissions", "[-p VHOST] [COLUMN ...]", 0, -1, O_VHOST,
	  "user configure write read", "user configure write read",
	  "Listing permissions for vhost \"%V\" ..." },
	{ "list_user_permissions", "USER", 1, 1, 0, "vhost configure write read",
	  "vhost configure write read", "Listing permissions for user \"%1\" ..." },
	{ "add_user", "USER PASSWORD [--tags TAG,...]", 2, 2, O_TAGS, NULL, NULL,
	  "Adding user \"%1\" ..." },
	{ "delete_user", "USER", 1, 1, 0, NULL, NULL, "Deleting user \"%1\" ..." },
	{ "change_password", "USER PASSWORD", 2, 2, 0, NULL, NULL,
	  "Changing password for user \"%1\" ..." },
	{ "set_user_tags", "USER [TAG ...]", 1, -1, 0, NULL, NULL,
	  "Setting tags for user \"%1\" ..." },
	{ "authenticate_user", "USER PASSWORD", 2, 2, 0, NULL, NULL,
	  "Authenticating user \"%1\" ..." },
	{ "add_vhost", "VHOST", 1, 1, 0, NULL, NULL, "Adding vhost \"%1\" ..." },
	{ "delete_vhost", "VHOST", 1, 1, 0, NULL, NULL, "Deleting vhost \"%1\" ..." },
	{ "set_permissions", "[-p VHOST] USER CONF WRITE READ", 4, 4, O_VHOST, NULL, NULL,
	  "Setting permissions for user \"%1\" in vhost \"%V\" ..." },
	{ "clear_permissions", "[-p VHOST] USER", 1, 1, O_VHOST, NULL, NULL,
	  "Clearing permissions for user \"%1\" in vhost \"%V\" ..." },
	{ "purge_queue", "[-p VHOST] QUEUE", 1, 1, O_VHOST, NULL, NULL,
	  "Purging queue '%1' in vhost '%V' ..." },
	{ "delete_queue", "[-p VHOST] QUEUE [--if-empty] [--if-unused]", 1, 1,
	  O_VHOST | O_IF_EMPTY | O_IF_UNUSED, NULL, NULL, "Deleting queue '%1' on vhost '%V' ..." },
	{ "close_connection", "NAME REASON", 2, 2, 0, NULL, NULL,
	  "Closing connection %1, reason: %2..." },
	{ "export_definitions", "FILE|- [--durable-only]", 1, 1, O_DURABLE, NULL, NULL,
	  "Exporting definitions in JSON to a file at \"%1\" ..." },
	{ "import_definitions", "FILE|-", 1, 1, 0, NULL, NULL,
	  "Importing definitions in JSON from a file at \"%1\" ..." },
	{ "log_level", "[LEVEL]", 0, 1, 0, NULL, NULL, NULL },
	{ "fsck", "--data-dir DIR [--repair]", 0, 0, O_OFFLINE | O_DATA_DIR | O_REPAIR, NULL,
	  NULL, NULL },
	{ "dump", "--data-dir DIR [-p VHOST] QUEUE", 1, 1, O_OFFLINE | O_DATA_DIR | O_VHOST, NULL,
	  NULL, NULL },
};

#define CTL_NCMDS (sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))


static void usage(FILE *f)
{
	fprintf(f,
	        "usage: warrenctl [options] COMMAND [ARGS...]\n"
	        "  -s, --socket PATH       the daemon's admin socket\n"
	        "  -d, --data-dir DIR      use DIR/warrend.sock (default ./var/warrend.sock)\n"
	        "  -f, --format FORMAT     table (default) or json\n"
	        "  -q, --quiet             print no informational messages\n"
	        "  -t, --timeout SECONDS   give up waiting for the daemon (default 60, 0: never)\n"
	        "  -V, --version           print the version and exit\n"
	        "  -h, --help              print this help and exit\n"
	        "commands:\n");
	for (size_t i = 0; i < CTL_NCMDS; i++)
		fprintf(f, "  %s%s%s\n", ctl_cmds[i].name, ctl_cmds[i].synopsis[0] ? " " : "",
		        ctl_cmds[i].synopsis);
	fprintf(f, "exit status: 0 ok, 1 the command failed, 2 usage error, "
	           "69 the daemon is not reachable;\n"
	           "  fsck: 3 damage found and left, 4 damage repaired\n");
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("warrenctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(see warrenctl --help)\n", stderr);
	return CTL_USAGE;
}

/* ---- command line ------------------------------------------------------ */

static bool word_in(const char *word, const char *list)
{
	size_t n = strlen(word);
	for (const char *p = list; *p;) {
		size_t k = strcspn(p, " ");
		if (k == n && strncmp(p, word, n) == 0)
			return true;
		p += k;
		p += *p == ' ';
	}
	return false;
}

/* Split a space-separated list into c->cols (pointing into a static string). */
static void default_cols(struct ctl *c, const char *list)
{
	static char buf[512];
	snprintf(buf, sizeof(buf), "%s", list);
	c->ncols = 0;
	for (char *save, *t = strtok_r(buf, " ", &save); t && c->ncols < 64;
	     t = strtok_r(NULL, " ", &save))
		c->cols[c->ncols++] = t;
}

/* Options and positional arguments after the command name. */
static int parse_command_args(struct ctl *c, int argc, char **argv)
{
	const struct ctl_cmd *cmd = c->cmd;
	c->pos = xcalloc((size_t)argc + 1, sizeof(*c->pos));
	bool opts_done = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (opts_done || a[0] != '-' || a[1] == '\0') {
			c->pos[c->npos++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			opts_done = true;
			continue;
		}
		unsigned need;
		const char *val = NULL;
		if (!strcmp(a, "-p") || !strcmp(a, "--vhost"))
			need = O_VHOST;
		else if (!strcmp(a, "--tags"))
			need = O_TAGS;
		else if (!strcmp(a, "-e") || !strcmp(a, "--if-empty"))
			need = O_IF_EMPTY;
		else if (!strcmp(a, "-u") || !strcmp(a, "--if-unused"))
			need = O_IF_UNUSED;
		else if (!strcmp(a, "--durable-only"))
			need = O_DURABLE;
		else if (!strcmp(a, "-d") || !strcmp(a, "--data-dir"))
			need = O_DATA_DIR;
		else if (!strcmp(a, "--repair"))
			need = O_REPAIR;
		else
			return usage_error("%s: unknown option '%s' (use -- before an argument "
			                   "that starts with '-')", cmd->name, a);
		if (!(cmd->opts & need))
			return usage_error("%s does not take %s", cmd->name, a);
		if (need == O_VHOST || need == O_TAGS || need == O_DATA_DIR) {
			if (i + 1 >= argc)
				return usage_error("%s needs a value", a);
			val = argv[++i];
		}
		switch (need) {
		case O_VHOST: c->vhost = val; break;
		case O_TAGS: c->tags = val; break;
		case O_IF_EMPTY: c->if_empty = true; break;
		case O_IF_UNUSED: c->if_unused = true; break;
		case O_DATA_DIR: c->data_dir = val; break;
		case O_REPAIR: c->repair = true; break;
		default: c->durable_only = true; break;
		}
	}
	if (cmd->cols) {
		/* listings: the positional arguments after the fixed ones are columns */
		int fixed = cmd->minpos;
		if (c->npos > fixed) {
			c->ncols = 0;
			for (int i = fixed; i < c->npos; i++) {
				if (!word_in(c->pos[i], cmd->cols))
					return usage_error("%s: unknown column '%s' (columns: %s)", cmd->name,
					                   c->pos[i], cmd->cols);
				if (c->ncols < 64)
					c->cols[c->ncols++] = c->pos[i];
			}
			c->npos = fixed;
		} else {
			default_cols(c, cmd->defcols);
		}
	}
	if (c->npos < cmd->minpos || (cmd->maxpos >= 0 && c->npos > cmd->maxpos))
		return usage_error("usage: warrenctl %s %s", cmd->name, cmd->synopsis);
	return CTL_OK;
}

/* ---- the request ------------------------------------------------------- */

/* Whole file (or stdin for "-"), at most max bytes. */
char *ctl_read_input(const char *path, size_t max, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 65536, n = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (n == cap) {
			if (cap > max) {
				errno = EFBIG;
				break;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	bool bad = ferror(f) || n > max;
	if (f != stdin)
		fclose(f);
	if (bad) {
		if (n > max)
			errno = EFBIG;
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static void arg_str(struct json_out *w, const char *key, const char *val)
{
	json_key(w, key);
	json_str(w, val);
}

/* The request line for c; -1 with a message printed (exit status in *rc). */
static char *build_request(struct ctl *c, size_t *len, int *rc)
{
	const char *n = c->cmd->name;
	struct json_out w;
	json_out_init(&w);
	json_obj_begin(&w);
	arg_str(&w, "cmd", n);
	json_key(&w, "args");
	json_obj_begin(&w);
	if (c->cmd->opts & O_VHOST)
		arg_str(&w, "vhost", c->vhost ? c->vhost : "/");
	if (!strcmp(n, "list_user_permissions")) {
		arg_str(&w, "user", c->pos[0]);
	} else if (!strcmp(n, "add_user") || !strcmp(n, "change_password") ||
	           !strcmp(n, "authenticate_user")) {
		arg_str(&w, "name", c->pos[0]);
		arg_str(&w, "password", c->pos[1]);
		if (c->tags)
			arg_str(&w, "tags", c->tags);
	} else if (!strcmp(n, "delete_user") || !strcmp(n, "add_vhost") ||
	           !strcmp(n, "delete_vhost") || !strcmp(n, "purge_queue") ||
	           !strcmp(n, "delete_queue")) {
		arg_str(&w, "name", c->pos[0]);
		if (c->if_empty) {
			json_key(&w, "if_empty");
			json_bool(&w, true);
		}
		if (c->if_unused) {
			json_key(&w, "if_unused");
			json_bool(&w, true);
		}
	} else if (!strcmp(n, "set_user_tags")) {
		arg_str(&w, "name", c->pos[0]);
		json_key(&w, "tags");
		json_arr_begin(&w);
		for (int i = 1; i < c->npos; i++)
			json_str(&w, c->pos[i]);
		json_arr_end(&w);
	} else if (!strcmp(n, "set_permissions")) {
		arg_str(&w, "user", c->pos[0]);
		arg_str(&w, "configure", c->pos[1]);
		arg_str(&w, "write", c->pos[2]);
		arg_str(&w, "read", c->pos[3]);
	} else if (!strcmp(n, "clear_permissions")) {
		arg_str(&w, "user", c->pos[0]);
	} else if (!strcmp(n, "close_connection")) {
		arg_str(&w, "name", c->pos[0]);
		arg_str(&w, "reason", c->pos[1]);
	} else if (!strcmp(n, "export_definitions")) {
		json_key(&w, "durable_only");
		json_bool(&w, c->durable_only);
	} else if (!strcmp(n, "log_level") && c->npos == 1) {
		arg_str(&w, "level", c->pos[0]);
	} else if (!strcmp(n, "import_definitions")) {
		size_t flen;
		char *file = ctl_read_input(c->pos[0], ADMIN_MAX_REQUEST - 256, &flen);
		if (!file) {
			fprintf(stderr, "Error: %s: %s\n", c->pos[0], strerror(errno));
			*rc = CTL_FAILED;
			json_out_free(&w);
			return NULL;
		}
		/* parse here: errors then name lines of the file, not of the request */
		struct json_doc doc;
		char err[256];
		if (json_parse(&doc, file, flen, err, sizeof(err)) != 0) {
			fprintf(stderr, "Error: %s: not valid JSON: %s\n", c->pos[0], err);
			free(file);
			*rc = CTL_FAILED;
			json_out_free(&w);
			return NULL;
		}
		json_doc_free(&doc);
		/* the request is one line: JSON whitespace may be any of these */
		for (size_t i = 0; i < flen; i++)
			if (file[i] == '\n' || file[i] == '\r')
				file[i] = ' ';
		json_key(&w, "definitions");
		json_raw(&w, file, flen);
		free(file);
	}
	json_obj_end(&w);
	json_obj_end(&w);
	return json_out_take(&w, len);
}

/* ---- talking to the daemon --------------------------------------------- */

static int wait_fd(int fd, short ev, double deadline)
{
	for (;;) {
		int ms = -1;
		if (deadline > 0) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			double left = deadline - ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
			if (left <= 0)
				return 0;
			ms = (int)(left * 1000) + 1;
		}
		struct pollfd p = { .fd = fd, .events = ev };
		int n = poll(&p, 1, ms);
		if (n < 0 && errno == EINTR)
			continue;
		return n;
	}
}

/* Send req and read one line back into *resp; CTL_OK or CTL_UNAVAILABLE. */
static int roundtrip(struct ctl *c, const char *req, size_t len, char **resp, size_t *rlen)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(c->socket) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "Error: socket path too long: %s\n", c->socket);
		return CTL_UNAVAILABLE;
	}
	memcpy(sa.sun_path, c->socket, strlen(c->socket));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "Error: cannot reach warrend at %s: %s\n", c->socket, strerror(errno));
		fprintf(stderr, "Is warrend running?  Point at its socket with -s PATH or "
		                "--data-dir DIR.\n");
		if (fd >= 0)
			close(fd);
		return CTL_UNAVAILABLE;
	}
	double deadline = 0;
	if (c->timeout > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		deadline = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + c->timeout;
	}
	const char *what = NULL;
	size_t off = 0;
	char *line = xmalloc(len + 1);
	memcpy(line, req, len);
	line[len] = '\n';
	while (off < len + 1 && !what) {
		if (wait_fd(fd, POLLOUT, deadline) <= 0) {
			what = "timed out sending the request";
			break;
		}
		ssize_t n = send(fd, line + off, len + 1 - off, MSG_NOSIGNAL);
		if (n < 0 && errno != EINTR)
			what = strerror(errno);
		else if (n > 0)
			off += (size_t)n;
	}
	free(line);
	size_t cap = 65536, n = 0;
	char *buf = xmalloc(cap);
	while (!what) {
		if (n == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		if (wait_fd(fd, POLLIN, deadline) <= 0) {
			what = "timed out waiting for the answer";
			break;
		}
		ssize_t got = recv(fd, buf + n, cap - n, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			what = strerror(errno);
			break;
		}
		if (got == 0) {
			what = "the daemon closed the connection without answering";
			break;
		}
		char *nl = memchr(buf + n, '\n', (size_t)got);
		n += (size_t)got;
		if (nl) {
			n = (size_t)(nl - buf);
			break;
		}
	}
	close(fd);
	if (what) {
		fprintf(stderr, "Error: warrend at %s: %s\n", c->socket, what);
		free(buf);
		return CTL_UNAVAILABLE;
	}
	buf[n] = '\0';
	*resp = buf;
	*rlen = n;
	return CTL_OK;
}

/* ---- output ------------------------------------------------------------ */

static void print_banner(const struct ctl *c)
{
	const char *b = c->cmd->banner;
	if (!b || c->quiet || c->json)
		return;
	for (const char *p = b; *p; p++) {
		if (p[0] == '%' && p[1] == 'V') {
			fputs(c->vhost ? c->vhost : "/", stdout);
			p++;
		} else if (p[0] == '%' && p[1] >= '1' && p[1] <= '9') {
			int i = p[1] - '1';
			fputs(i < c->npos ? c->pos[i] : "", stdout);
			p++;
		} else {
			fputc(*p, stdout);
		}
	}
	fputc('\n', stdout);
}

static int show_export(struct ctl *c, const char *resp, size_t len)
{
	/* the answer is {"ok":true,"result":DEFS}: write DEFS without parsing
	 * it, so exports are not bounded by the parser's input limit */
	static const char head[] = "{\"ok\":true,\"result\":";
	size_t hl = sizeof(head) - 1;
	if (len < hl + 1 || memcmp(resp, head, hl) != 0 || resp[len - 1] != '}')
		return -1;
	const char *defs = resp + hl;
	size_t dlen = len - hl - 1;
	bool to_stdout = strcmp(c->pos[0], "-") == 0;
	FILE *f = to_stdout ? stdout : fopen(c->pos[0], "w");
	if (!f) {
		fprintf(stderr, "Error: %s: %s\n", c->pos[0], strerror(errno));
		return CTL_FAILED;
	}
	bool ok = fwrite(defs, 1, dlen, f) == dlen && fputc('\n', f) != EOF;
	ok = (to_stdout ? fflush(f) == 0 : fclose(f) == 0) && ok;
	if (!ok) {
		fprintf(stderr, "Error: %s: %s\n", c->pos[0], strerror(errno));
		return CTL_FAILED;
	}
	return CTL_OK;
}

static void show_result(struct ctl *c, const struct json_value *res)
{
	const char *n = c->cmd->name;
	if (c->cmd->cols) {
		if (c->json)
			ctl_print_json_rows(stdout, res, c->cols, c->ncols);
		else
			ctl_print_table(stdout, res, c->cols, c->ncols, true);
		return;
	}
	if (c->json) {
		if (res->type != JSON_NULL) {
			struct json_out w;
			json_out_init(&w);
			ctl_write_value(&w, res);
			printf("%s\n", json_out_str(&w));
			json_out_free(&w);
		}
		return;
	}
	if (!strcmp(n, "status")) {
		ctl_print_kv(stdout, res);
	} else if (!strcmp(n, "environment")) {
		const struct json_value *s = json_get(res, "settings");
		for (size_t i = 0; s && s->type == JSON_OBJECT && i < s->u.obj.n; i++) {
			char *cell = ctl_cell(&s->u.obj.members[i].value);
			printf("%s = %s\n", s->u.obj.members[i].key, cell);
			free(cell);
		}
	} else if (!strcmp(n, "delete_queue")) {
		const struct json_value *m = json_get(res, "messages");
		if (!c->quiet && m && m->type == JSON_NUMBER)
			printf("Queue was successfully deleted with %lld ready messages\n",
			       (long long)m->u.num.i);
	} else if (!strcmp(n, "purge_queue")) {
		const struct json_value *m = json_get(res, "messages");
		if (!c->quiet && m && m->type == JSON_NUMBER)
			printf("Purged %lld messages\n", (long long)m->u.num.i);
	} else if (!strcmp(n, "authenticate_user")) {
		if (!c->quiet)
			printf("Success\n");
	} else if (!strcmp(n, "import_definitions")) {
		if (!c->quiet)
			ctl_print_kv(stdout, res);
	} else if (!strcmp(n, "log_level")) {
		const char *l = json_get_str(res, "level");
		printf("%s\n", l ? l : "?");
	}
}

static int run(struct ctl *c)
{
	int rc = CTL_OK;
	size_t len, rlen;
	char *req = build_request(c, &len, &rc);
	if (!req)
		return rc;
	bool export_stdout = !strcmp(c->cmd->name, "export_definitions") && !strcmp(c->pos[0], "-");
	if (!export_stdout)
		print_banner(c);
	fflush(stdout);
	char *resp = NULL;
	rc = roundtrip(c, req, len, &resp, &rlen);
	free(req);
	if (rc != CTL_OK)
		return rc;
	if (!strcmp(c->cmd->name, "export_definitions")) {
		int erc = show_export(c, resp, rlen);
		if (erc >= 0) {
			free(resp);
			return erc;
		}
		/* not a success answer: parse it for the error below */
	}
	struct json_doc doc;
	char err[256];
	if (json_parse(&doc, resp, rlen, err, sizeof(err)) != 0 || doc.root->type != JSON_OBJECT) {
		fprintf(stderr, "Error: warrend sent an answer warrenctl cannot read: %s\n", err);
		json_doc_free(&doc);
		free(resp);
		return CTL_UNAVAILABLE;
	}
	const struct json_value *ok = json_get(doc.root, "ok");
	if (!ok || ok->type != JSON_BOOL || !ok->u.b) {
		const char *e = json_get_str(doc.root, "error");
		fprintf(stderr, "Error: %s\n", e ? e : "the command failed");
		rc = CTL_FAILED;
	} else {
		static const struct json_value null_value = { .type = JSON_NULL };
		const struct json_value *res = json_get(doc.root, "result");
		show_result(c, res ? res : &null_value);
	}
	json_doc_free(&doc);
	free(resp);
	if (fflush(stdout) != 0 && rc == CTL_OK) {
		fprintf(stderr, "Error: writing the output: %s\n", strerror(errno));
		rc = CTL_FAILED;
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct ctl c = { .timeout = 60 };
	const char *data_dir = NULL;
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "format", required_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "timeout", required_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	opterr = 0;
	int o;
	/* '+': options end at the command, whose own options come after it */
	while ((o = getopt_long(argc, argv, "+:s:d:f:qt:Vh", opts, NULL)) != -1) {
		char *end;
		switch (o) {
		case 's':
			c.socket = optarg;
			break;
		case 'd':
			data_dir = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "json") == 0)
				c.json = true;
			else if (strcmp(optarg, "table") != 0)
				return usage_error("--format: '%s' is neither table nor json", optarg);
			break;
		case 'q':
			c.quiet = true;
			break;
		case 't':
			errno = 0;
			c.timeout = strtod(optarg, &end);
			if (errno || end == optarg || *end || c.timeout < 0)
				return usage_error("--timeout: '%s' is not a number of seconds", optarg);
			break;
		case 'V':
			printf("warrenctl %s\n", PACKAGE_VERSION);
			return CTL_OK;
		case 'h':
			usage(stdout);
			return CTL_OK;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt)
				return usage_error("unknown option '-%c'", optopt);
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("no command given");
	const char *name = argv[optind];
	if (!strcmp(name, "help")) {
		usage(stdout);
		return CTL_OK;
	}
	for (size_t i = 0; i < CTL_NCMDS; i++)
		if (!strcmp(ctl_cmds[i].name, name))
			c.cmd = &ctl_cmds[i];
	if (!c.cmd)
		return usage_error("unknown command '%s'", name);
	int rc = parse_command_args(&c, argc - optind - 1, argv + optind + 1);
	if (rc == CTL_OK && (c.cmd->opts & O_OFFLINE)) {
		if (c.socket)
			rc = usage_error("%s works without the daemon: give --data-dir, not --socket",
			                 c.cmd->name);
		else if (c.json)
			rc = usage_error("%s prints text only: -f json is not supported", c.cmd->name);
		else
			rc = ctl_run_offline(&c, c.data_dir ? c.data_dir : data_dir ? data_dir : "./var");
		free(c.pos);
		return rc;
	}
	char path[4096];
	if (rc == CTL_OK && !c.socket) {
		snprintf(path, sizeof(path), "%s/warrend.sock", data_dir ? data_dir : "./var");
		c.socket = path;
	}
	if (rc == CTL_OK)
		rc = run(&c);
	free(c.pos);
	return rc;
}
