/*
 * Virtual hosts: lifecycle, the queue registry (queue.declare semantics,
 * delete, purge, exclusive owners), binding entry points and the periodic
 * tick.  Exchange declare/delete and routing live in exchange.c.
 *
 * Queue removal always goes through vhost_queue_remove: bindings first (so
 * routing can never reach a freed queue), then the registry entry, then the
 * queue_gone callback, then queue_delete().
 */
#include <stdlib.h>
#include <string.h>

#include "broker/binding.h"
#include "broker/broker.h"
#include "broker/names.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "codec/gen_methods.h"
#include "util/xalloc.h"

/* The exchanges every vhost starts with (rabbit_vhost's list). */
static const struct {
	const char *name;
	const struct exchange_type *type;
	uint32_t flags;
} vhost_builtin[] = {
	{ "", &exchange_type_direct, EXCHANGE_F_DURABLE | EXCHANGE_F_DEFAULT },
	{ "amq.direct", &exchange_type_direct, EXCHANGE_F_DURABLE },
	{ "amq.topic", &exchange_type_topic, EXCHANGE_F_DURABLE },
	{ "amq.match", &exchange_type_headers, EXCHANGE_F_DURABLE },
	{ "amq.headers", &exchange_type_headers, EXCHANGE_F_DURABLE },
	{ "amq.fanout", &exchange_type_fanout, EXCHANGE_F_DURABLE },
	{ "amq.rabbitmq.trace", &exchange_type_topic, EXCHANGE_F_DURABLE | EXCHANGE_F_INTERNAL },
};

/*
 * Queue arguments compared on redeclare: RabbitMQ's declare_args() keys.
 * Others (a client's own x-foo) may differ freely, as in RabbitMQ.
 */
static const char *const vhost_queue_equiv_keys[] = {
	"x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
	"x-max-length", "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes",
	"x-max-priority", "x-overflow", "x-queue-mode", "x-queue-version",
	"x-single-active-consumer", "x-queue-type", "x-quorum-initial-group-size", "x-max-age",
	"x-max-segment-size", "x-stream-max-segment-size-bytes", "x-initial-cluster-size",
	"x-queue-leader-locator", "x-queue-master-locator",
};

struct vhost *vhost_new(struct broker *owner, const char *name)
{
	struct vhost *vh = xcalloc(1, sizeof(*vh));
	vh->name = xstrdup(name);
	vh->owner = owner;
	vh->max_queues = owner ? owner->cfg.max_queues_per_vhost : 0;
	hmap_init(&vh->exchanges);
	hmap_init(&vh->queues);
	hmap_init(&vh->bindings);
	struct ftable none = { NULL, 0 };
	for (size_t i = 0; i < sizeof(vhost_builtin) / sizeof(vhost_builtin[0]); i++) {
		struct exchange *x = exchange_new(vh, bytes_of(vhost_builtin[i].name),
		                                  vhost_builtin[i].type, vhost_builtin[i].flags, none);
		if (x->flags & EXCHANGE_F_DEFAULT)
			vh->default_x = x;
	}
	return vh;
}

/* Snapshot a map's values (the map must not change while we walk it). */
static void **vhost_values(const struct hmap *m, size_t *n)
{
	void **v = xmalloc((hmap_count(m) + 1) * sizeof(*v));
	size_t it = 0, i = 0;
	while (hmap_next(m, &it, NULL, &v[i]))
		i++;
	*n = i;
	return v;
}

void vhost_free(struct vhost *vh)
{
	size_t nx, nq;
	struct exchange **xs = (struct exchange **)vhost_values(&vh->exchanges, &nx);
	struct queue **qs = (struct queue **)vhost_values(&vh->queues, &nq);
	/* no cascades while everything goes */
	for (size_t i = 0; i < nx; i++)
		xs[i]->deleting = true;
	for (size_t i = 0; i < nx; i++)
		while (xs[i]->out)
			binding_unlink_free(xs[i]->out);
	for (size_t i = 0; i < nx; i++)
		exchange_free(xs[i]);
	for (size_t i = 0; i < nq; i++) {
		if (vh->queue_gone)
			vh->queue_gone(vh->queue_gone_ctx, qs[i]);
		queue_delete(qs[i]);
	}
	free(xs);
	free(qs);
	hmap_free(&vh->exchanges);
	hmap_free(&vh->queues);
	hmap_free(&vh->bindings);
	free(vh->name);
	free(vh);
}

/* ---- queues ---------------------------------------------------------- */

struct queue *vhost_queue_find(struct vhost *vh, struct bytes name)
{
	return hmap_get(&vh->queues, name);
}

static int vhost_locked(struct vhost *vh, struct bytes name, struct reply *err)
{
	char nb[NAMES_RENDER_MAX];
	return reply_set(err, CODEC_RESOURCE_LOCKED,
	                 "cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It "
	                 "could be originally declared on another connection or the exclusive "
	                 "property value does not match that of the original declaration.",
	                 names_render(nb, name), vh->name);
}

static int vhost_no_queue(struct vhost *vh, struct bytes name, struct reply *err)
{
	char nb[NAMES_RENDER_MAX];
	return reply_set(err, CODEC_NOT_FOUND, "no queue '%s' in vhost '%s'",
	                 names_render(nb, name), vh->name);
}

static int vhost_no_exchange(struct vhost *vh, struct bytes name, struct reply *err)
{
	char nb[NAMES_RENDER_MAX];
	return reply_set(err, CODEC_NOT_FOUND, "no exchange '%s' in vhost '%s'",
	                 names_render(nb, name), vh->name);
}

static int vhost_default_refused(struct reply *err)
{
	return reply_set(err, CODEC_ACCESS_REFUSED, "operation not permitted on the default exchange");
}

static int queue_flag_equiv(struct queue *q, const char *field, bool cur, bool req,
                            struct reply *err)
{
	if (cur == req)
		return 0;
	char nb[NAMES_RENDER_MAX];
	return reply_set(err, CODEC_PRECONDITION_FAILED,
	                 "inequivalent arg '%s' for queue '%s' in vhost '%s': "
	                 "received '%s' but current is '%s'",
	                 field, names_render(nb, q->name), q->vhost_name, req ? "true" : "false",
	                 cur ? "true" : "false");
}

/* rabbit_amqqueue:assert_equivalence, in its order. */
static int queue_equiv(struct vhost *vh, struct queue *q, bool durable, bool auto_delete,
                       struct ftable args, void *owner, struct reply *err)
{
	if (q->owner != owner)
		return vhost_locked(vh, q->name, err);
	if (queue_flag_equiv(q, "durable", q->flags & QUEUE_F_DURABLE, durable, err) ||
	    queue_flag_equiv(q, "auto_delete", q->flags & QUEUE_F_AUTO_DELETE, auto_delete, err))
		return -1;
	for (size_t i = 0; i < sizeof(vhost_queue_equiv_keys) / sizeof(vhost_queue_equiv_keys[0]);
	     i++)
		if (binding_arg_equiv(q->raw_args, args, vhost_queue_equiv_keys[i], "queue", q->name,
		                      q->vhost_name, err) != 0)
			return -1;
	return 0;
}

/* Quorum and stream queues must be durable, shared, and not auto-delete. */
static int queue_type_props(struct vhost *vh, struct bytes name, const struct queue_args *qa,
                            bool durable, bool exclusive, bool auto_delete, struct reply *err)
{
	if (qa->type == QUEUE_TYPE_CLASSIC)
		return 0;
	const char *bad = auto_delete ? "auto-delete"
	                : exclusive   ? "exclusive-owner"
	                : !durable    ? "non-durable"
	                              : NULL;
	if (!bad)
		return 0;
	char nb[NAMES_RENDER_MAX];
	return reply_set(err, CODEC_PRECONDITION_FAILED, "invalid property '%s' for queue '%s' in vhost '%s'",
	                 bad, names_render(nb, name), vh->name);
}

int vhost_queue_declare(struct vhost *vh, struct bytes name, bool passive, bool durable,
                        bool exclusive, bool auto_delete, struct ftable args, void *conn,
                        const struct queue_hooks *hooks, void *hooks_ctx, struct queue **out,
                        struct reply *err)
{
	char nb[NAMES_RENDER_MAX];
	struct names_buf sb;
	name = names_strip(&sb, name);
	*out = NULL;
	if (passive) {
		struct queue *q = vhost_queue_find(vh, name);
		if (!q)
			return vhost_no_queue(vh, name, err);
		if (q->owner && q->owner != conn)
			return vhost_locked(vh, name, err);
		*out = q;
		return 0;
	}
	char gen[NAMES_GEN_LEN + 1];
	if (name.len == 0) {
		do {
			names_generate(gen);
			name = bytes_of(gen);
		} while (vhost_queue_find(vh, name));
	} else if (names_reserved(name)) {
		return reply_set(err, CODEC_ACCESS_REFUSED,
		                 "queue name '%s' contains reserved prefix 'amq.*'",
		                 names_render(nb, name));
	}
	void *owner = exclusive ? conn : NULL;
	durable = durable && !exclusive; /* RabbitMQ never makes exclusive queues durable */
	struct queue *q = vhost_queue_find(vh, name);
	if (q) {
		if (queue_equiv(vh, q, durable, auto_delete, args, owner, err) != 0)
			return -1;
		*out = q;
		return 0;
	}
	if (vh->max_queues && hmap_count(&vh->queues) >= vh->max_queues)
		return reply_set(err, CODEC_PRECONDITION_FAILED,
		                 "cannot declare queue '%s': queue limit in vhost '%s' (%u) is reached",
		                 names_render(nb, name), vh->name, vh->max_queues);
	struct queue_args qa;
	if (queue_args_parse(args, name, vh->name, &qa, err) != 0)
		return -1;
	if (queue_type_props(vh, name, &qa, durable, exclusive, auto_delete, err) != 0) {
		queue_args_free(&qa);
		return -1;
	}
	uint32_t flags = (durable ? QUEUE_F_DURABLE : 0) | (exclusive ? QUEUE_F_EXCLUSIVE : 0) |
	                 (auto_delete ? QUEUE_F_AUTO_DELETE : 0);
	q = queue_new(name, vh->name, flags, args, &qa, hooks, hooks_ctx);
	q->owner = owner;
	q->route_data = NULL;
	q->route_mark = 0;
	hmap_put(&vh->queues, q->name, q);
	*out = q;
	return 0;
}

uint32_t vhost_queue_remove(struct vhost *vh, struct queue *q)
{
	if (hmap_get(&vh->queues, q->name) != q)
		return 0;
	while (binding_queue_in(q))
		exchange_binding_remove(binding_queue_in(q));
	hmap_del(&vh->queues, q->name);
	if (vh->queue_gone)
		vh->queue_gone(vh->queue_gone_ctx, q);
	return queue_delete(q);
}

int vhost_queue_delete(struct vhost *vh, struct bytes name, bool if_unused, bool if_empty,
                       uint32_t *count, struct reply *err)
{
	char nb[NAMES_RENDER_MAX];
	struct names_buf sb;
	name = names_strip(&sb, name);
	*count = 0;
	struct queue *q = vhost_queue_find(vh, name);
	if (!q)
		return 0;
	/* the queue process checks emptiness before use */
	if (if_empty && queue_message_count(q) > 0)
		return reply_set(err, CODEC_PRECONDITION_FAILED, "queue '%s' in vhost '%s' not empty",
		                 names_render(nb, name), vh->name);
	if (if_unused && queue_consumer_count(q) > 0)
		return reply_set(err, CODEC_PRECONDITION_FAILED, "queue '%s' in vhost '%s' in use",
		                 names_render(nb, name), vh->name);
	*count = vhost_queue_remove(vh, q);
	return 0;
}

int vhost_queue_purge(struct vhost *vh, struct bytes name, uint32_t *count, struct reply *err)
{
	struct names_buf sb;
	name = names_strip(&sb, name);
	*count = 0;
	struct queue *q = vhost_queue_find(vh, name);
	if (!q)
		return vhost_no_queue(vh, name, err);
	*count = queue_purge(q);
	return 0;
}

void vhost_delete_owned(struct vhost *vh, void *owner)
{
	if (!owner)
		return;
	size_t n;
	struct queue **qs = (struct queue **)vhost_values(&vh->queues, &n);
	for (size_t i = 0; i < n; i++)
		if (qs[i]->owner == owner)
			vhost_queue_remove(vh, qs[i]);
	free(qs);
}

void vhost_tick(struct vhost *vh, int64_t now_ms)
{
	if (hmap_count(&vh->queues) == 0)
		return;
	size_t n;
	struct queue **qs = (struct queue **)vhost_values(&vh->queues, &n);
	for (size_t i = 0; i < n; i++) {
		struct queue *q = qs[i];
		/* an earlier removal may have cascaded; only touch live queues */
		if (hmap_get(&vh->queues, q->name) != q)
			continue;
		/* x-expires counts from the last use; a queue the glue never
		 * touched starts its idle clock at the first tick that sees it */
		if (q->args.expires >= 0 && queue_idle_since(q) < 0 && queue_consumer_count(q) == 0)
			queue_touch(q, now_ms);
		int64_t at = queue_expires_at(q);
		if (at >= 0 && at <= now_ms) {
			vhost_queue_remove(vh, q);
			continue;
		}
		int64_t next = queue_next_expiry(q);
		if (next >= 0 && next <= now_ms)
			queue_expire(q, now_ms);
	}
	free(qs);
}

/* ---- bindings -------------------------------------------------------- */

int vhost_queue_bind(struct vhost *vh, struct bytes queue, struct bytes exchange, struct bytes key,
                     struct ftable args, struct reply *err)
{
	struct names_buf qb, xb;
	queue = names_strip(&qb, queue);
	exchange = names_strip(&xb, exchange);
	if (exchange.len == 0)
		return vhost_default_refused(err);
	struct exchange *x = vhost_exchange_find(vh, exchange);
	if (!x)
		return vhost_no_exchange(vh, exchange, err);
	struct queue *q = vhost_queue_find(vh, queue);
	if (!q)
		return vhost_no_queue(vh, queue, err);
	return exchange_bind(x, NULL, q, key, args, err);
}

int vhost_queue_unbind(struct vhost *vh, struct bytes queue, struct bytes exchange,
                       struct bytes key, struct ftable args, struct reply *err)
{
	struct names_buf qb, xb;
	queue = names_strip(&qb, queue);
	exchange = names_strip(&xb, exchange);
	if (exchange.len == 0)
		return vhost_default_refused(err);
	struct exchange *x = vhost_exchange_find(vh, exchange);
	struct queue *q = vhost_queue_find(vh, queue);
	if (!x || !q)
		return 0;
	struct binding *b = exchange_binding_find(x, NULL, q, key, args);
	if (b)
		exchange_binding_remove(b);
	return 0;
}

int vhost_exchange_bind(struct vhost *vh, struct bytes dest, struct bytes source, struct bytes key,
                        struct ftable args, struct reply *err)
{
	struct names_buf db, sb;
	dest = names_strip(&db, dest);
	source = names_strip(&sb, source);
	if (dest.len == 0 || source.len == 0)
		return vhost_default_refused(err);
	struct exchange *src = vhost_exchange_find(vh, source);
	if (!src)
		return vhost_no_exchange(vh, source, err);
	struct exchange *dst = vhost_exchange_find(vh, dest);
	if (!dst)
		return vhost_no_exchange(vh, dest, err);
	return exchange_bind(src, dst, NULL, key, args, err);
}

int vhost_exchange_unbind(struct vhost *vh, struct bytes dest, struct bytes source,
                          struct bytes key, struct ftable args, struct reply *err)
{
	struct names_buf db, sb;
	dest = names_strip(&db, dest);
	source = names_strip(&sb, source);
	if (dest.len == 0 || source.len == 0)
		return vhost_default_refused(err);
	struct exchange *src = vhost_exchange_find(vh, source);
	struct exchange *dst = vhost_exchange_find(vh, dest);
	if (!src || !dst)
		return 0;
	struct binding *b = exchange_binding_find(src, dst, NULL, key, args);
	if (b)
		exchange_binding_remove(b);
	return 0;
}
