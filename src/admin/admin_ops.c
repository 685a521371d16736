/*
 * Admin commands that change something: users, vhosts, permissions,
 * queues, connections, definitions and the log level.  Error texts follow
 * rabbitmqctl's (User "x" does not exist) or, where the broker has one,
 * the AMQP reply text (NOT_FOUND - no queue 'q' in vhost '/').
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "admin/defs.h"
#include "auth/users.h"
#include "broker/broker.h"
#include "broker/names.h"
#include "broker/queue.h"
#include "broker/reply.h"
#include "broker/vhost.h"
#include "codec/gen_methods.h"
#include "net/conn.h"
#include "util/log.h"

#define ADMIN_MAX_TAGS 64

static struct users *admin_users(struct admin_req *r)
{
	if (!r->a->u)
		admin_fail(r, "this broker has no user database");
	return r->a->u;
}

/* tags: an array of strings or one comma-separated string. */
static int admin_arg_tags(struct admin_req *r, const char **tags, size_t *n, char *buf,
                          size_t cap)
{
	const struct json_value *v = json_get(r->args, "tags");
	*n = 0;
	if (!v || v->type == JSON_NULL)
		return 0;
	if (v->type == JSON_STRING) {
		snprintf(buf, cap, "%s", v->u.str.ptr);
		for (char *save, *t = strtok_r(buf, ", ", &save); t && *n < ADMIN_MAX_TAGS;
		     t = strtok_r(NULL, ", ", &save))
			tags[(*n)++] = t;
		return 0;
	}
	if (v->type != JSON_ARRAY)
		return admin_fail(r, "argument 'tags' must be an array of strings");
	for (size_t i = 0; i < v->u.arr.n; i++) {
		const struct json_value *t = &v->u.arr.items[i];
		if (t->type != JSON_STRING || strlen(t->u.str.ptr) != t->u.str.len)
			return admin_fail(r, "argument 'tags' must be an array of strings");
		if (*n == ADMIN_MAX_TAGS)
			return admin_fail(r, "at most %d tags", ADMIN_MAX_TAGS);
		tags[(*n)++] = t->u.str.ptr;
	}
	return 0;
}

/* ---- users ------------------------------------------------------------- */

int admin_cmd_add_user(struct admin_req *r)
{
	struct users *u = admin_users(r);
	const char *name = u ? admin_arg_str(r, "name", true) : NULL;
	const char *password = name ? admin_arg_str(r, "password", true) : NULL;
	const char *tags[ADMIN_MAX_TAGS];
	char buf[1024];
	size_t n;
	if (!password || admin_arg_tags(r, tags, &n, buf, sizeof(buf)) != 0)
		return -1;
	if (users_add(u, name, password, r->err, sizeof(r->err)) != 0 ||
	    users_set_tags(u, name, tags, n, r->err, sizeof(r->err)) != 0)
		return -1;
	r->changed = true;
	json_null(r->w);
	return 0;
}

int admin_cmd_delete_user(struct admin_req *r)
{
	struct users *u = admin_users(r);
	const char *name = u ? admin_arg_str(r, "name", true) : NULL;
	if (!name || users_delete(u, name, r->err, sizeof(r->err)) != 0)
		return -1;
	r->changed = true;
	json_null(r->w);
	return 0;
}

int admin_cmd_change_password(struct admin_req *r)
{
	struct users *u = admin_users(r);
	const char *name = u ? admin_arg_str(r, "name", true) : NULL;
	const char *password = name ? admin_arg_str(r, "password", true) : NULL;
	if (!password || users_change_password(u, name, password, r->err, sizeof(r->err)) != 0)
		return -1;
	r->changed = true;
	json_null(r->w);
	return 0;
}

int admin_cmd_set_user_tags(struct admin_req *r)
{
	struct users *u = admin_users(r);
	const char *name = u ? admin_arg_str(r, "name", true) : NULL;
	const char *tags[ADMIN_MAX_TAGS];
	char buf[1024];
	size_t n;
	if (!name || admin_arg_tags(r, tags, &n, buf, sizeof(buf)) != 0 ||
	    users_set_tags(u, name, tags, n, r->err, sizeof(r->err)) != 0)
		return -1;
	r->changed = true;
	json_null(r->w);
	return 0;
}

int admin_cmd_authenticate_user(struct admin_req *r)
{
	struct users *u = admin_users(r);
	const char *name = u ? admin_arg_str(r, "name", true) : NULL;
	const char *password = name ? admin_arg_str(r, "password", true) : NULL;
	if (!password)
		return -1;
	if (!users_check_password(u, name, password))
		return admin_fail(r, "user '%s' - invalid credentials", name);
	json_obj_begin(r->w);
	json_key(r->w, "user");
	json_str(r->w, name);
	json_key(r->w, "tags");
	json_arr_begin(r->w);
	const struct users_user *user = users_find(u, name);
	for (size_t i = 0; i < user->ntags; i++)
		json_str(r->w, user->tags[i]);
	json_arr_end(r->w);
	json_obj_end(r->w);
	return 0;
}

/* ---- vhosts and permissions -------------------------------------------- */

int admin_cmd_add_vhost(struct admin_req *r)
{
	const char *name = admin_arg_str(r, "name", true);
	if (!name)
		return -1;
	if (name[0] == '\0' || strlen(name) > NAMES_MAX)
		return admin_fail(r, "vhost name must be 1 to %d bytes", NAMES_MAX);
	bool exists = broker_vhost_find(r->a->b, name, strlen(name)) != NULL;
	if (!exists) {
		broker_vhost_add(r->a->b, name);
		r->changed = true;
	}
	json_obj_begin(r->w);
	json_key(r->w, "created");
	json_bool(r->w, !exists);
	json_obj_end(r->w);
	return 0;
}

int admin_cmd_delete_vhost(struct admin_req *r)
{
	const char *name = admin_arg_str(r, "name", true);
	if (!name)
		return -1;
	if (broker_vhost_delete(r->a->b, name) != 0)
		return admin_fail(r, "Virtual host \"%s\" does not exist", name);
	if (r->a->u)
		users_clear_vhost(r->a->u, name);
	r->changed = true;
	json_null(r->w);
	return 0;
}

int admin_cmd_set_permissions(struct admin_req *r)
{
	struct users *u = admin_users(r);
	struct vhost *vh = u ? admin_arg_vhost(r) : NULL;
	const char *user = vh ? admin_arg_str(r, "user", true) : NULL;
	const char *conf = user ? admin_arg_str(r, "configure", true) : NULL;
	const char *wr = conf ? admin_arg_str(r, "write", true) : NULL;
	const char *rd = wr ? admin_arg_str(r, "read", true) : NULL;
	if (!rd || users_set_permissions(u, user, vhost_name(vh), conf, wr, rd, r->err,
	                                 sizeof(r->err)) != 0)
		return -1;
	r->changed = true;
	json_null(r->w);
	return 0;
}

int admin_cmd_clear_permissions(struct admin_req *r)
{
	struct users *u = admin_users(r);
	struct vhost *vh = u ? admin_arg_vhost(r) : NULL;
	const char *user = vh ? admin_arg_str(r, "user", true) : NULL;
	if (!user || users_clear_permissions(u, user, vhost_name(vh), r->err, sizeof(r->err)) != 0)
		return -1;
	r->changed = true;
	json_null(r->w);
	return 0;
}

/* ---- queues ------------------------------------------------------------ */

static struct queue *admin_queue(struct admin_req *r, struct vhost **vhp, struct bytes *name)
{
	struct vhost *vh = admin_arg_vhost(r);
	if (!vh || admin_arg_bytes(r, "name", true, name) != 0)
		return NULL;
	struct queue *q = vhost_queue_find(vh, *name);
	if (!q) {
		char nb[NAMES_RENDER_MAX];
		admin_fail(r, "NOT_FOUND - no queue '%s' in vhost '%s'", names_render(nb, *name),
		           vhost_name(vh));
		return NULL;
	}
	*vhp = vh;
	return q;
}

int admin_cmd_purge_queue(struct admin_req *r)
{
	struct vhost *vh;
	struct bytes name;
	struct reply err = { 0 };
	uint32_t count;
	if (!admin_queue(r, &vh, &name))
		return -1;
	if (vhost_queue_purge(vh, name, &count, &err) != 0)
		return admin_fail(r, "%s", err.text);
	json_obj_begin(r->w);
	json_key(r->w, "messages");
	json_uint(r->w, count);
	json_obj_end(r->w);
	return 0;
}

int admin_cmd_delete_queue(struct admin_req *r)
{
	struct vhost *vh;
	struct bytes name;
	struct reply err = { 0 };
	uint32_t count;
	if (!admin_queue(r, &vh, &name))
		return -1;
	if (vhost_queue_delete(vh, name, admin_arg_bool(r, "if_unused", false),
	                       admin_arg_bool(r, "if_empty", false), &count, &err) != 0)
		return admin_fail(r, "%s", err.text);
	r->changed = true;
	json_obj_begin(r->w);
	json_key(r->w, "messages");
	json_uint(r->w, count);
	json_obj_end(r->w);
	return 0;
}

/* ---- connections ------------------------------------------------------- */

int admin_cmd_close_connection(struct admin_req *r)
{
	const char *name = admin_arg_str(r, "name", true);
	if (!name)
		return -1;
	const char *reason = admin_arg_str(r, "reason", false);
	if (!reason)
		reason = "Closed via warrenctl";
	char text[REPLY_TEXT_MAX + 1];
	snprintf(text, sizeof(text), "CONNECTION_FORCED - %s", reason);
	size_t closed = 0;
	for (struct conn *c = r->a->b->conns, *next; c; c = next) {
		next = c->next;
		char full[200];
		admin_conn_name(c, full, sizeof(full));
		if (strcmp(full, name) != 0 && strcmp(c->peer, name) != 0 &&
		    !(c->name && strcmp(c->name, name) == 0))
			continue;
		if (c->st == CONN_ST_OPEN)
			conn_close(c, CODEC_CONNECTION_FORCED, text, 0);
		else if (c->st < CONN_ST_OPEN)
			conn_destroy(c, "closed by an operator");
		else
			continue; /* already closing */
		closed++;
	}
	if (!closed)
		return admin_fail(r, "no connection named '%s'", name);
	json_obj_begin(r->w);
	json_key(r->w, "closed");
	json_uint(r->w, closed);
	json_obj_end(r->w);
	return 0;
}

/* ---- definitions and logging ------------------------------------------- */

int admin_cmd_export_definitions(struct admin_req *r)
{
	defs_write(r->w, r->a->b, r->a->u,
	           admin_arg_bool(r, "durable_only", false) ? DEFS_DURABLE_ONLY : 0);
	return 0;
}

int admin_cmd_import_definitions(struct admin_req *r)
{
	const struct json_value *defs = json_get(r->args, "definitions");
	struct defs_stats st;
	if (!defs)
		return admin_fail(r, "missing argument 'definitions'");
	if (!r->a->u)
		return admin_fail(r, "this broker has no user database");
	int rc = defs_import_value(r->a->b, r->a->u, defs, &st, r->err, sizeof(r->err));
	/* a failure part-way may still have changed something */
	r->changed = true;
	if (rc != 0)
		return -1;
	json_obj_begin(r->w);
	json_key(r->w, "users");
	json_uint(r->w, st.users);
	json_key(r->w, "vhosts");
	json_uint(r->w, st.vhosts);
	json_key(r->w, "permissions");
	json_uint(r->w, st.permissions);
	json_key(r->w, "exchanges");
	json_uint(r->w, st.exchanges);
	json_key(r->w, "queues");
	json_uint(r->w, st.queues);
	json_key(r->w, "bindings");
	json_uint(r->w, st.bindings);
	json_key(r->w, "skipped");
	json_uint(r->w, st.skipped);
	json_obj_end(r->w);
	return 0;
}

int admin_cmd_log_level(struct admin_req *r)
{
	struct broker *b = r->a->b;
	r->err[0] = '\0';
	const char *level = admin_arg_str(r, "level", false);
	if (!level && r->err[0])
		return -1;
	if (level) {
		int l = log_level_parse(level);
		if (l < 0)
			return admin_fail(r, "unknown log level '%s' (error, warning, info, debug)",
			                  level);
		b->log.level = (enum log_level)l;
	}
	json_obj_begin(r->w);
	json_key(r->w, "level");
	json_str(r->w, log_level_name(b->log.level));
	json_obj_end(r->w);
	return 0;
}
