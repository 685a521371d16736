/*
 * Exchange lifecycle and routing: exchange.declare/delete/bind/unbind with
 * RabbitMQ's checks and texts, the auto-delete cascade, and exchange_route.
 *
 * Deletion order matters: an exchange being torn down is marked deleting
 * first, so removing its own bindings cannot auto-delete it a second time;
 * every loop that removes bindings takes the list head afresh, because a
 * removal may cascade (auto-delete exchanges) and unlink other bindings.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/binding.h"
#include "broker/names.h"
#include "broker/vhost.h"
#include "codec/gen_methods.h"
#include "util/xalloc.h"

static const struct exchange_type *const exchange_types[] = {
	&exchange_type_direct, &exchange_type_fanout, &exchange_type_topic, &exchange_type_headers,
};

const struct exchange_type *exchange_type_find(struct bytes name)
{
	for (size_t i = 0; i < sizeof(exchange_types) / sizeof(exchange_types[0]); i++)
		if (bytes_eq_str(name, exchange_types[i]->name))
			return exchange_types[i];
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------- */

struct exchange *exchange_new(struct vhost *vh, struct bytes name, const struct exchange_type *t,
                              uint32_t flags, struct ftable args)
{
	struct exchange *x = xcalloc(1, sizeof(*x) + name.len + 1 + args.len);
	uint8_t *p = (uint8_t *)(x + 1);
	if (name.len)
		memcpy(p, name.ptr, name.len);
	p[name.len] = 0;
	x->name.ptr = p;
	x->name.len = name.len;
	if (args.len)
		memcpy(p + name.len + 1, args.ptr, args.len);
	x->args.ptr = args.len ? p + name.len + 1 : NULL;
	x->args.len = args.len;
	struct fvalue v;
	if (ftable_get(x->args, "alternate-exchange", &v) == 1 && v.type == 'S') {
		x->alternate = v.v.str;
		x->has_alternate = true;
	}
	x->type = t;
	x->flags = flags;
	x->vhost = vh;
	t->init(x);
	hmap_put(&vh->exchanges, x->name, x);
	return x;
}

/* Free x's memory; it must have no bindings and be out of the map. */
void exchange_free(struct exchange *x)
{
	x->type->free(x);
	free(x);
}

void exchange_binding_remove(struct binding *b)
{
	struct exchange *src = b->source;
	binding_unlink_free(b);
	if ((src->flags & EXCHANGE_F_AUTO_DELETE) && src->nout == 0 && !src->deleting)
		exchange_destroy(src);
}

void exchange_destroy(struct exchange *x)
{
	x->deleting = true;
	while (x->out)
		exchange_binding_remove(x->out);
	while (x->in)
		exchange_binding_remove(x->in);
	hmap_del(&x->vhost->exchanges, x->name);
	exchange_free(x);
}

/* ---- bindings -------------------------------------------------------- */

/* Find or build the index key of a binding; *heap is set if buf was allocated. */
static uint8_t *ikey_make(uint8_t *small, size_t cap, struct exchange *src, const void *dest,
                          bool dest_is_queue, struct bytes key, struct ftable args, size_t *len)
{
	size_t n = binding_ikey_size(key, args);
	uint8_t *buf = n <= cap ? small : xmalloc(n);
	*len = binding_ikey_build(buf, src, dest, dest_is_queue, key, args);
	return buf;
}

int exchange_bind(struct exchange *src, struct exchange *dx, struct queue *dq, struct bytes key,
                  struct ftable args, struct reply *err)
{
	if (src->type->validate && src->type->validate(src, key, args, err) != 0)
		return -1;
	uint8_t small[512];
	size_t len;
	uint8_t *ik = ikey_make(small, sizeof(small), src, dq ? (const void *)dq : (const void *)dx,
	                        dq != NULL, key, args, &len);
	struct bytes ikey = { ik, len };
	if (!hmap_get(&src->vhost->bindings, ikey))
		binding_link(binding_new(src, dx, dq, ik, len));
	if (ik != small)
		free(ik);
	return 0;
}

struct binding *exchange_binding_find(struct exchange *src, struct exchange *dx, struct queue *dq,
                                      struct bytes key, struct ftable args)
{
	uint8_t small[512];
	size_t len;
	uint8_t *ik = ikey_make(small, sizeof(small), src, dq ? (const void *)dq : (const void *)dx,
	                        dq != NULL, key, args, &len);
	struct bytes ikey = { ik, len };
	struct binding *b = hmap_get(&src->vhost->bindings, ikey);
	if (ik != small)
		free(ik);
	return b;
}

/* ---- exchange.declare / delete --------------------------------------- */

static const char *tf(bool v)
{
	return v ? "true" : "false";
}

static int exchange_flag_equiv(struct exchange *x, const char *field, bool cur, bool req,
                               struct reply *err)
{
	if (cur == req)
		return 0;
	char nb[NAMES_RENDER_MAX];
	return reply_set(err, CODEC_PRECONDITION_FAILED,
	                 "inequivalent arg '%s' for exchange '%s' in vhost '%s': "
	                 "received '%s' but current is '%s'",
	                 field, names_render(nb, x->name), x->vhost->name, tf(req), tf(cur));
}

static int exchange_equiv(struct exchange *x, const struct exchange_type *t, bool durable,
                          bool auto_delete, bool internal, struct ftable args, struct reply *err)
{
	char nb[NAMES_RENDER_MAX];
	if (x->type != t)
		return reply_set(err, CODEC_PRECONDITION_FAILED,
		                 "inequivalent arg 'type' for exchange '%s' in vhost '%s': "
		                 "received '%s' but current is '%s'",
		                 names_render(nb, x->name), x->vhost->name, t->name, x->type->name);
	if (exchange_flag_equiv(x, "durable", x->flags & EXCHANGE_F_DURABLE, durable, err) ||
	    exchange_flag_equiv(x, "auto_delete", x->flags & EXCHANGE_F_AUTO_DELETE, auto_delete,
	                        err) ||
	    exchange_flag_equiv(x, "internal", x->flags & EXCHANGE_F_INTERNAL, internal, err))
		return -1;
	/* RabbitMQ compares only alternate-exchange among exchange arguments. */
	return binding_arg_equiv(x->args, args, "alternate-exchange", "exchange", x->name,
	                         x->vhost->name, err);
}

int vhost_exchange_declare(struct vhost *vh, struct bytes name, struct bytes type, bool passive,
                           bool durable, bool auto_delete, bool internal, struct ftable args,
                           struct reply *err)
{
	char nb[NAMES_RENDER_MAX];
	const struct exchange_type *t = NULL;
	if (!passive) {
		t = exchange_type_find(type);
		if (!t)
			return reply_set(err, CODEC_COMMAND_INVALID, "unknown exchange type '%s'",
			                 names_render(nb, type));
	}
	struct names_buf sb;
	name = names_strip(&sb, name);
	if (name.len == 0)
		return reply_set(err, CODEC_ACCESS_REFUSED,
		                 "operation not permitted on the default exchange");
	struct exchange *x = vhost_exchange_find(vh, name);
	if (passive) {
		if (!x)
			return reply_set(err, CODEC_NOT_FOUND, "no exchange '%s' in vhost '%s'",
			                 names_render(nb, name), vh->name);
		return 0;
	}
	if (x)
		return exchange_equiv(x, t, durable, auto_delete, internal, args, err);
	if (names_reserved(name))
		return reply_set(err, CODEC_ACCESS_REFUSED,
		                 "exchange name '%s' contains reserved prefix 'amq.*'",
		                 names_render(nb, name));
	struct fvalue ae;
	if (ftable_get(args, "alternate-exchange", &ae) == 1 && ae.type != 'S')
		return reply_set(err, CODEC_PRECONDITION_FAILED,
		                 "invalid type '%s' for arg 'alternate-exchange' in exchange '%s' in "
		                 "vhost '%s'",
		                 ftable_type_name(ae.type), names_render(nb, name), vh->name);
	uint32_t flags = (durable ? EXCHANGE_F_DURABLE : 0) |
	                 (auto_delete ? EXCHANGE_F_AUTO_DELETE : 0) |
	                 (internal ? EXCHANGE_F_INTERNAL : 0);
	exchange_new(vh, name, t, flags, args);
	return 0;
}

int vhost_exchange_delete(struct vhost *vh, struct bytes name, bool if_unused, struct reply *err)
{
	char nb[NAMES_RENDER_MAX];
	struct names_buf sb;
	name = names_strip(&sb, name);
	if (name.len == 0)
		return reply_set(err, CODEC_ACCESS_REFUSED,
		                 "operation not permitted on the default exchange");
	if (names_reserved(name))
		return reply_set(err, CODEC_ACCESS_REFUSED,
		                 "deletion of system exchange '%s' in vhost '%s' not allowed",
		                 names_render(nb, name), vh->name);
	struct exchange *x = vhost_exchange_find(vh, name);
	if (!x)
		return 0;
	if (if_unused && x->nout)
		return reply_set(err, CODEC_PRECONDITION_FAILED, "exchange '%s' in vhost '%s' in use",
		                 names_render(nb, name), vh->name);
	exchange_destroy(x);
	return 0;
}

struct exchange *vhost_exchange_find(struct vhost *vh, struct bytes name)
{
	return hmap_get(&vh->exchanges, name);
}

/* ---- routing --------------------------------------------------------- */

void route_result_init(struct route_result *r)
{
	memset(r, 0, sizeof(*r));
	r->queues = r->inline_q;
	r->work = r->inline_x;
}

void route_result_free(struct route_result *r)
{
	free(r->heap_q);
	free(r->heap_x);
	route_result_init(r);
}

void route_add_queue(struct route_ctx *rc, struct queue *q)
{
	struct route_result *r = rc->res;
	q->route_mark = rc->stamp;
	size_t cap = r->heap_q ? r->cap_q : ROUTE_INLINE;
	if (r->n == cap) {
		size_t ncap = cap * 2;
		struct queue **nq = xmalloc(ncap * sizeof(*nq));
		memcpy(nq, r->queues, r->n * sizeof(*nq));
		free(r->heap_q);
		r->heap_q = r->queues = nq;
		r->cap_q = ncap;
	}
	r->queues[r->n++] = q;
}

void route_add_exchange(struct route_ctx *rc, struct exchange *x)
{
	struct route_result *r = rc->res;
	x->route_mark = rc->stamp;
	size_t cap = r->heap_x ? r->cap_x : ROUTE_INLINE;
	if (r->nwork == cap) {
		size_t ncap = cap * 2;
		struct exchange **nx = xmalloc(ncap * sizeof(*nx));
		memcpy(nx, r->work, r->nwork * sizeof(*nx));
		free(r->heap_x);
		r->heap_x = r->work = nx;
		r->cap_x = ncap;
	}
	r->work[r->nwork++] = x;
}

size_t exchange_route(struct vhost *vh, struct exchange *x, const struct bytes *keys,
                      size_t nkeys, struct ftable headers, struct route_result *out)
{
	/* The struct may have been copied since the last call: re-aim the views. */
	out->queues = out->heap_q ? out->heap_q : out->inline_q;
	out->work = out->heap_x ? out->heap_x : out->inline_x;
	out->n = 0;
	out->nwork = 0;
	struct route_ctx rc = { out, ++vh->route_stamp, 0 };
	if (x->flags & EXCHANGE_F_DEFAULT) {
		for (size_t i = 0; i < nkeys; i++) {
			struct queue *q = hmap_get(&vh->queues, keys[i]);
			if (q && q->route_mark != rc.stamp)
				route_add_queue(&rc, q);
		}
		return out->n;
	}
	route_add_exchange(&rc, x);
	while (out->nwork) {
		struct exchange *cur = out->work[--out->nwork];
		rc.matched = 0;
		cur->type->route(cur, keys, nkeys, headers, &rc);
		if (rc.matched == 0 && cur->has_alternate) {
			struct exchange *ae = hmap_get(&vh->exchanges, cur->alternate);
			if (ae && ae->route_mark != rc.stamp)
				route_add_exchange(&rc, ae);
		}
	}
	return out->n;
}
