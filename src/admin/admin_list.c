/*
 * Read-only admin commands: status, environment and the list_* family.
 * Every listing is sorted by name (hash map order is random), and field
 * names follow rabbitmqctl's info keys so scripts port over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin_int.h"
#include "admin/defs.h"
#include "auth/users.h"
#include "broker/binding.h"
#include "broker/broker.h"
#include "broker/channel_int.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "config.h"
#include "net/conn.h"
#include "net/listener.h"
#include "util/config.h"
#include "util/xalloc.h"

static int cmp_bytes(struct bytes a, struct bytes b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
	if (c)
		return c;
	return a.len < b.len ? -1 : a.len > b.len;
}

static int cmp_queue(const void *a, const void *b)
{
	return cmp_bytes((*(struct queue *const *)a)->name, (*(struct queue *const *)b)->name);
}

static int cmp_exchange(const void *a, const void *b)
{
	return cmp_bytes((*(struct exchange *const *)a)->name, (*(struct exchange *const *)b)->name);
}

static int cmp_binding(const void *a, const void *b)
{
	const struct binding *x = *(struct binding *const *)a, *y = *(struct binding *const *)b;
	int c = cmp_bytes(x->source->name, y->source->name);
	if (!c)
		c = (x->dest_q != NULL) - (y->dest_q != NULL);
	if (!c)
		c = cmp_bytes(x->dest_q ? x->dest_q->name : x->dest_x->name,
		              y->dest_q ? y->dest_q->name : y->dest_x->name);
	if (!c)
		c = cmp_bytes(x->key, y->key);
	return c;
}

static int cmp_vhost(const void *a, const void *b)
{
	return strcmp(vhost_name(*(struct vhost *const *)a), vhost_name(*(struct vhost *const *)b));
}

static void **sorted_values(const struct hmap *m, size_t *n, int (*cmp)(const void *, const void *))
{
	void **v = xmalloc((hmap_count(m) + 1) * sizeof(*v));
	size_t it = 0, i = 0;
	while (i < hmap_count(m) && hmap_next(m, &it, NULL, &v[i]))
		i++;
	qsort(v, i, sizeof(*v), cmp);
	*n = i;
	return v;
}

static void kv_str(struct json_out *w, const char *k, const char *v)
{
	json_key(w, k);
	json_str(w, v);
}

static void kv_bytes(struct json_out *w, const char *k, struct bytes v)
{
	json_key(w, k);
	json_str_n(w, v.ptr, v.len);
}

static void kv_uint(struct json_out *w, const char *k, uint64_t v)
{
	json_key(w, k);
	json_uint(w, v);
}

static void kv_bool(struct json_out *w, const char *k, bool v)
{
	json_key(w, k);
	json_bool(w, v);
}

/* ---- status and environment -------------------------------------------- */

static uint64_t queue_memory(const struct queue *q)
{
	/* an estimate: the queue, its entries and the bodies it keeps ready */
	uint64_t entries = (uint64_t)queue_message_count(q) + queue_unacked_count(q);
	return sizeof(*q) + q->name.len + q->raw_args.len +
	       entries * sizeof(struct queue_entry) + queue_ready_bytes(q);
}

int admin_cmd_status(struct admin_req *r)
{
	struct broker *b = r->a->b;
	struct json_out *w = r->w;
	uint64_t queues = 0, exchanges = 0, ready = 0, unacked = 0, consumers = 0, channels = 0;
	uint64_t conns = 0;
	for (size_t i = 0; i < b->nvhosts; i++) {
		struct vhost *vh = b->vhosts[i];
		size_t it = 0;
		void *v;
		exchanges += hmap_count(&vh->exchanges);
		while (hmap_next(&vh->queues, &it, NULL, &v)) {
			const struct queue *q = v;
			queues++;
			ready += queue_message_count(q);
			unacked += queue_unacked_count(q);
			consumers += queue_consumer_count(q);
		}
	}
	for (const struct conn *c = b->conns; c; c = c->next) {
		conns++;
		channels += c->nchans;
	}
	json_obj_begin(w);
	kv_uint(w, "pid", (uint64_t)getpid());
	kv_str(w, "product", "Warren");
	kv_str(w, "version", PACKAGE_VERSION);
	kv_uint(w, "uptime", (uint64_t)(ev_now(b->loop) - r->a->started));
	kv_uint(w, "connections", conns);
	kv_uint(w, "channels", channels);
	kv_uint(w, "vhosts", b->nvhosts);
	kv_uint(w, "exchanges", exchanges);
	kv_uint(w, "queues", queues);
	kv_uint(w, "consumers", consumers);
	kv_uint(w, "messages", ready + unacked);
	kv_uint(w, "messages_ready", ready);
	kv_uint(w, "messages_unacknowledged", unacked);
	kv_uint(w, "users", r->a->u ? users_count(r->a->u) : 0);
	kv_uint(w, "memory_rss", broker_rss());
	kv_uint(w, "memory_limit", b->memory_limit);
	kv_uint(w, "disk_free_limit", b->cfg.disk_free_limit);
	json_key(w, "alarms");
	json_arr_begin(w);
	if (b->memory_alarm)
		json_str(w, "memory");
	if (b->disk_alarm)
		json_str(w, "disk");
	json_arr_end(w);
	json_key(w, "listeners");
	json_arr_begin(w);
	for (int i = 0; i < b->nlisteners; i++)
		json_str(w, b->listeners[i]->addr);
	json_arr_end(w);
	kv_str(w, "data_dir", b->cfg.data_dir ? b->cfg.data_dir : "");
	kv_str(w, "admin_socket", r->a->path);
	kv_str(w, "log_level", log_level_name(b->log.level));
	kv_bool(w, "stopping", b->stopping);
	json_obj_end(w);
	return 0;
}

int admin_cmd_environment(struct admin_req *r)
{
	struct broker *b = r->a->b;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return admin_fail(r, "cannot dump the configuration: out of memory");
	config_dump(f, &b->cfg, (int)b->log.level);
	fclose(f);
	struct json_out *w = r->w;
	json_obj_begin(w);
	kv_str(w, "config_file", b->cfg.config_file ? b->cfg.config_file : "");
	/* "section.key": "value" from the dump, in its order; a repeated key
	 * (listen) becomes an array */
	json_key(w, "settings");
	json_obj_begin(w);
	char section[64] = "";
	char prev[160] = "";
	bool in_array = false;
	for (char *save, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '[') {
			snprintf(section, sizeof(section), "%.*s", (int)strcspn(line + 1, "]"), line + 1);
			continue;
		}
		char *eq = strstr(line, " = ");
		if (!eq)
			continue;
		*eq = '\0';
		char *val = eq + 3;
		size_t vl = strlen(val);
		if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
			val[vl - 1] = '\0';
			val++;
		}
		char key[160];
		snprintf(key, sizeof(key), "%s.%s", section, line);
		bool repeat = strcmp(key, prev) == 0;
		if (!repeat && in_array) {
			json_arr_end(w);
			in_array = false;
		}
		if (!repeat) {
			json_key(w, key);
			/* listen may repeat: always an array */
			if (strcmp(line, "listen") == 0) {
				json_arr_begin(w);
				in_array = true;
			}
		}
		json_str(w, val);
		snprintf(prev, sizeof(prev), "%s", key);
	}
	if (in_array)
		json_arr_end(w);
	json_obj_end(w);
	json_obj_end(w);
	free(text);
	return 0;
}

/* ---- topology ---------------------------------------------------------- */

int admin_cmd_list_queues(struct admin_req *r)
{
	struct vhost *vh = admin_arg_vhost(r);
	if (!vh)
		return -1;
	size_t n;
	struct queue **qs = (struct queue **)sorted_values(&vh->queues, &n, cmp_queue);
	struct json_out *w = r->w;
	json_arr_begin(w);
	for (size_t i = 0; i < n; i++) {
		const struct queue *q = qs[i];
		uint32_t ready = queue_message_count(q), unacked = queue_unacked_count(q);
		json_obj_begin(w);
		kv_bytes(w, "name", q->name);
		kv_str(w, "vhost", vhost_name(vh));
		kv_bool(w, "durable", q->flags & QUEUE_F_DURABLE);
		kv_bool(w, "auto_delete", q->flags & QUEUE_F_AUTO_DELETE);
		kv_bool(w, "exclusive", q->flags & QUEUE_F_EXCLUSIVE);
		kv_str(w, "type", q->args.type == QUEUE_TYPE_QUORUM   ? "quorum"
		                  : q->args.type == QUEUE_TYPE_STREAM ? "stream"
		                                                      : "classic");
		kv_str(w, "state", "running");
		kv_uint(w, "messages_ready", ready);
		kv_uint(w, "messages_unacknowledged", unacked);
		kv_uint(w, "messages", (uint64_t)ready + unacked);
		kv_uint(w, "message_bytes_ready", queue_ready_bytes(q));
		kv_uint(w, "consumers", queue_consumer_count(q));
		kv_uint(w, "memory", queue_memory(q));
		json_key(w, "arguments");
		defs_write_table(w, q->raw_args);
		json_obj_end(w);
	}
	json_arr_end(w);
	free(qs);
	return 0;
}

int admin_cmd_list_exchanges(struct admin_req *r)
{
	struct vhost *vh = admin_arg_vhost(r);
	if (!vh)
		return -1;
	size_t n;
	struct exchange **xs = (struct exchange **)sorted_values(&vh->exchanges, &n, cmp_exchange);
	struct json_out *w = r->w;
	json_arr_begin(w);
	for (size_t i = 0; i < n; i++) {
		const struct exchange *x = xs[i];
		json_obj_begin(w);
		kv_bytes(w, "name", x->name);
		kv_str(w, "vhost", vhost_name(vh));
		kv_str(w, "type", x->type->name);
		kv_bool(w, "durable", x->flags & EXCHANGE_F_DURABLE);
		kv_bool(w, "auto_delete", x->flags & EXCHANGE_F_AUTO_DELETE);
		kv_bool(w, "internal", x->flags & EXCHANGE_F_INTERNAL);
		kv_uint(w, "bindings", x->nout);
		json_key(w, "arguments");
		defs_write_table(w, x->args);
		json_obj_end(w);
	}
	json_arr_end(w);
	free(xs);
	return 0;
}

static void binding_row(struct json_out *w, struct bytes source, struct bytes dest, bool to_queue,
                        struct bytes key, struct ftable args, const char *vhost)
{
	json_obj_begin(w);
	kv_bytes(w, "source_name", source);
	kv_str(w, "source_kind", "exchange");
	kv_bytes(w, "destination_name", dest);
	kv_str(w, "destination_kind", to_queue ? "queue" : "exchange");
	kv_bytes(w, "routing_key", key);
	json_key(w, "arguments");
	defs_write_table(w, args);
	kv_str(w, "vhost", vhost);
	json_obj_end(w);
}

int admin_cmd_list_bindings(struct admin_req *r)
{
	struct vhost *vh = admin_arg_vhost(r);
	if (!vh)
		return -1;
	struct json_out *w = r->w;
	struct ftable none = { NULL, 0 };
	size_t nq, nb;
	struct queue **qs = (struct queue **)sorted_values(&vh->queues, &nq, cmp_queue);
	struct binding **bs = (struct binding **)sorted_values(&vh->bindings, &nb, cmp_binding);
	json_arr_begin(w);
	/* the default exchange's implicit bindings first, as rabbitmqctl shows them */
	for (size_t i = 0; i < nq; i++)
		binding_row(w, (struct bytes){ NULL, 0 }, qs[i]->name, true, qs[i]->name, none,
		            vhost_name(vh));
	for (size_t i = 0; i < nb; i++) {
		const struct binding *bd = bs[i];
		binding_row(w, bd->source->name, bd->dest_q ? bd->dest_q->name : bd->dest_x->name,
		            bd->dest_q != NULL, bd->key, bd->args, vhost_name(vh));
	}
	json_arr_end(w);
	free(qs);
	free(bs);
	return 0;
}

int admin_cmd_list_vhosts(struct admin_req *r)
{
	struct broker *b = r->a->b;
	struct vhost **vs = xmalloc((b->nvhosts + 1) * sizeof(*vs));
	if (b->nvhosts)
		memcpy(vs, b->vhosts, b->nvhosts * sizeof(*vs));
	qsort(vs, b->nvhosts, sizeof(*vs), cmp_vhost);
	struct json_out *w = r->w;
	json_arr_begin(w);
	for (size_t i = 0; i < b->nvhosts; i++) {
		uint64_t conns = 0;
		for (const struct conn *c = b->conns; c; c = c->next)
			conns += c->vhost == vs[i];
		json_obj_begin(w);
		kv_str(w, "name", vhost_name(vs[i]));
		kv_uint(w, "queues", hmap_count(&vs[i]->queues));
		kv_uint(w, "exchanges", hmap_count(&vs[i]->exchanges));
		kv_uint(w, "connections", conns);
		json_obj_end(w);
	}
	json_arr_end(w);
	free(vs);
	return 0;
}

/* ---- connections, channels, consumers ---------------------------------- */

static const char *conn_state_name(const struct conn *c)
{
	switch (c->st) {
	case CONN_ST_HEADER:
	case CONN_ST_START_OK: return "starting";
	case CONN_ST_TUNE_OK: return "tuning";
	case CONN_ST_OPEN_WAIT: return "opening";
	case CONN_ST_OPEN: return c->blocked_sent ? "blocked" : "running";
	case CONN_ST_CLOSING:
	case CONN_ST_FLUSHING: return "closing";
	case CONN_ST_DEAD: return "closed";
	}
	return "?";
}

int admin_cmd_list_connections(struct admin_req *r)
{
	struct json_out *w = r->w;
	json_arr_begin(w);
	for (const struct conn *c = r->a->b->conns; c; c = c->next) {
		char name[200];
		admin_conn_name(c, name, sizeof(name));
		json_obj_begin(w);
		kv_str(w, "name", name);
		kv_str(w, "user_provided_name", c->name ? c->name : "");
		kv_str(w, "peer", c->peer);
		kv_str(w, "user", c->user ? c->user : "");
		kv_str(w, "vhost", c->vhost ? vhost_name(c->vhost) : "");
		kv_str(w, "state", conn_state_name(c));
		kv_uint(w, "channels", c->nchans);
		kv_uint(w, "channel_max", c->channel_max);
		kv_uint(w, "frame_max", c->frame_max);
		kv_uint(w, "timeout", c->heartbeat);
		kv_uint(w, "send_pend", c->out.bytes);
		json_obj_end(w);
	}
	json_arr_end(w);
	return 0;
}

int admin_cmd_list_channels(struct admin_req *r)
{
	struct json_out *w = r->w;
	json_arr_begin(w);
	for (const struct conn *c = r->a->b->conns; c; c = c->next) {
		char cname[200], name[220];
		admin_conn_name(c, cname, sizeof(cname));
		for (uint16_t i = 0; i < c->nchans; i++) {
			const struct channel *ch = c->chans[i].ch;
			size_t consumers = ch->reply_tag[0] != '\0';
			for (const struct chan_consumer *cc = ch->consumers; cc; cc = cc->next)
				consumers++;
			snprintf(name, sizeof(name), "%s (%u)", cname, (unsigned)c->chans[i].id);
			json_obj_begin(w);
			kv_str(w, "name", name);
			kv_str(w, "connection", cname);
			kv_uint(w, "number", c->chans[i].id);
			kv_str(w, "user", c->user ? c->user : "");
			kv_str(w, "vhost", c->vhost ? vhost_name(c->vhost) : "");
			kv_str(w, "state", ch->st == CHANNEL_ST_OPEN ? "running" : "closing");
			kv_uint(w, "consumer_count", consumers);
			kv_uint(w, "messages_unacknowledged", ch->unacked_count);
			kv_uint(w, "prefetch_count", ch->prefetch_next);
			kv_uint(w, "global_prefetch_count", ch->prefetch_global);
			kv_bool(w, "confirm", ch->confirm);
			kv_bool(w, "transactional", ch->tx);
			kv_bool(w, "flow", ch->flow_active);
			json_obj_end(w);
		}
	}
	json_arr_end(w);
	return 0;
}

static void consumer_row(struct json_out *w, struct bytes queue, const char *chname,
                         struct bytes tag, bool ack, bool exclusive, uint32_t prefetch,
                         int32_t priority, uint32_t unacked)
{
	json_obj_begin(w);
	kv_bytes(w, "queue_name", queue);
	kv_str(w, "channel", chname);
	kv_bytes(w, "consumer_tag", tag);
	kv_bool(w, "ack_required", ack);
	kv_bool(w, "exclusive", exclusive);
	kv_uint(w, "prefetch_count", prefetch);
	kv_uint(w, "messages_unacknowledged", unacked);
	kv_bool(w, "active", true);
	json_key(w, "arguments");
	json_obj_begin(w);
	if (priority) {
		json_key(w, "x-priority");
		json_int(w, priority);
	}
	json_obj_end(w);
	json_obj_end(w);
}

int admin_cmd_list_consumers(struct admin_req *r)
{
	struct vhost *vh = admin_arg_vhost(r);
	if (!vh)
		return -1;
	struct json_out *w = r->w;
	json_arr_begin(w);
	for (const struct conn *c = r->a->b->conns; c; c = c->next) {
		if (c->vhost != vh)
			continue;
		char cname[200], name[220];
		admin_conn_name(c, cname, sizeof(cname));
		for (uint16_t i = 0; i < c->nchans; i++) {
			const struct channel *ch = c->chans[i].ch;
			snprintf(name, sizeof(name), "%s (%u)", cname, (unsigned)c->chans[i].id);
			for (const struct chan_consumer *cc = ch->consumers; cc; cc = cc->next) {
				if (!cc->c.queue)
					continue;
				consumer_row(w, cc->c.queue->name, name, cc->c.tag, !cc->c.no_ack,
				             cc->c.exclusive, cc->prefetch, cc->c.priority, cc->unacked);
			}
			if (ch->reply_tag[0])
				consumer_row(w, bytes_of("amq.rabbitmq.reply-to"), name,
				             bytes_of(ch->reply_tag), false, false, 0, 0, 0);
		}
	}
	json_arr_end(w);
	return 0;
}

/* ---- users and permissions --------------------------------------------- */

int admin_cmd_list_users(struct admin_req *r)
{
	struct json_out *w = r->w;
	const struct users *u = r->a->u;
	json_arr_begin(w);
	for (size_t i = 0; u && i < users_count(u); i++) {
		const struct users_user *user = users_at(u, i);
		json_obj_begin(w);
		kv_str(w, "user", user->name);
		json_key(w, "tags");
		json_arr_begin(w);
		for (size_t t = 0; t < user->ntags; t++)
			json_str(w, user->tags[t]);
		json_arr_end(w);
		json_obj_end(w);
	}
	json_arr_end(w);
	return 0;
}

static void perm_row(struct json_out *w, const char *key, const char *val,
                     const struct users_perms *p)
{
	json_obj_begin(w);
	kv_str(w, key, val);
	kv_str(w, "configure", p->re[USERS_PERM_CONFIGURE]);
	kv_str(w, "write", p->re[USERS_PERM_WRITE]);
	kv_str(w, "read", p->re[USERS_PERM_READ]);
	json_obj_end(w);
}

int admin_cmd_list_permissions(struct admin_req *r)
{
	struct vhost *vh = admin_arg_vhost(r);
	if (!vh)
		return -1;
	const struct users *u = r->a->u;
	struct json_out *w = r->w;
	json_arr_begin(w);
	for (size_t i = 0; u && i < users_count(u); i++) {
		const struct users_user *user = users_at(u, i);
		const struct users_perms *p = users_permissions(user, vhost_name(vh));
		if (p)
			perm_row(w, "user", user->name, p);
	}
	json_arr_end(w);
	return 0;
}

int admin_cmd_list_user_permissions(struct admin_req *r)
{
	const char *name = admin_arg_str(r, "user", true);
	if (!name)
		return -1;
	const struct users_user *user = r->a->u ? users_find(r->a->u, name) : NULL;
	if (!user)
		return admin_fail(r, "User \"%s\" does not exist", name);
	struct json_out *w = r->w;
	json_arr_begin(w);
	for (size_t i = 0; i < user->nperms; i++)
		perm_row(w, "vhost", user->perms[i].vhost, &user->perms[i]);
	json_arr_end(w);
	return 0;
}
