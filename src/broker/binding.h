/*
 * Bindings and the router's internals, shared by vhost.c, exchange.c and
 * the exchange types; nothing outside the router includes this header.
 *
 * A binding is one allocation: the struct plus its index key, which is
 * (source pointer, destination pointer, kind, routing key, arguments) with
 * the arguments in canonical order (top-level entries sorted by key, as
 * RabbitMQ stores them).  Two binds are the same binding exactly when their
 * index keys are equal, so the vhost's binding map makes bind idempotent and
 * unbind exact without comparing tables entry by entry.
 *
 * Every binding sits on three lists: its source's out-list, its
 * destination's in-list (exchange->in, or queue->route_data for queues), and
 * the source type's index list (t_prev/t_next: a direct bucket, a topic trie
 * node, or nothing for fanout and headers, which walk the out-list).
 */
#ifndef WARREN_BROKER_BINDING_H
#define WARREN_BROKER_BINDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/exchange.h"
#include "broker/queue.h"
#include "codec/table.h"
#include "codec/wire.h"

struct vhost;

struct binding {
	struct exchange *source;
	struct exchange *dest_x;      /* exactly one of dest_x and dest_q is set */
	struct queue *dest_q;
	struct bytes key;             /* routing key (slice of ikey) */
	struct ftable args;           /* canonical arguments (slice of ikey) */
	struct bytes ikey;            /* index key in the vhost's binding map */
	struct binding *out_prev, *out_next;
	struct binding *in_prev, *in_next;
	struct binding *t_prev, *t_next;
	void *t_data;                 /* the type's per-binding data */
	uint8_t data[];
};

/* State of one exchange_route call, handed to the types' route(). */
struct route_ctx {
	struct route_result *res;
	uint64_t stamp;
	size_t matched;               /* bindings matched at the current exchange */
};

void route_add_queue(struct route_ctx *rc, struct queue *q);
void route_add_exchange(struct route_ctx *rc, struct exchange *x);

/* A binding matched: send the publish to its destination (once). */
static inline void binding_route_to(struct route_ctx *rc, struct binding *b)
{
	rc->matched++;
	if (b->dest_q) {
		if (b->dest_q->route_mark != rc->stamp)
			route_add_queue(rc, b->dest_q);
	} else if (b->dest_x->route_mark != rc->stamp) {
		route_add_exchange(rc, b->dest_x);
	}
}

/*
 * Build the index key for (source, destination, key, args) into buf, which
 * must have binding_ikey_size(key, args) bytes.  Returns the key length.
 */
size_t binding_ikey_size(struct bytes key, struct ftable args);
size_t binding_ikey_build(uint8_t *buf, const struct exchange *src, const void *dest,
                          bool dest_is_queue, struct bytes key, struct ftable args);

/* Allocate a binding from an index key built as above (not yet linked anywhere). */
struct binding *binding_new(struct exchange *src, struct exchange *dest_x, struct queue *dest_q,
                            const uint8_t *ikey, size_t ikey_len);

/* Link b into its source, destination and the source type's index. */
void binding_link(struct binding *b);
/* Unlink b from everything and free it (no auto-delete; see exchange_unbind_one). */
void binding_unlink_free(struct binding *b);

/* The binding list of a queue (its in-list, kept in queue->route_data). */
static inline struct binding *binding_queue_in(const struct queue *q)
{
	return (struct binding *)q->route_data;
}

/*
 * Value equality on decoded field values.  With numeric set it is the
 * Erlang == the headers exchange uses (1 == 1.0 across integer and float
 * types); otherwise integers equal integers and floats equal floats, as in
 * RabbitMQ's declare-argument equivalence.  Strings and byte arrays compare
 * by bytes either way; tables and arrays compare by encoding.
 */
bool binding_value_equal(const struct fvalue *a, const struct fvalue *b, bool numeric);

/*
 * RabbitMQ's assert_args_equivalence for one argument key of a queue or
 * exchange being redeclared: equal values (integers of any integer type
 * compare by value) or both absent pass; otherwise 406 "inequivalent arg
 * 'key' for <kind> 'name' in vhost 'v': received ... but current is ...".
 */
int binding_arg_equiv(struct ftable cur, struct ftable req, const char *key, const char *kind,
                      struct bytes name, const char *vhost_name, struct reply *err);

/* Render a value as RabbitMQ's error texts do ('~tp' of the Erlang term). */
void binding_value_render(char *buf, size_t cap, const struct fvalue *v);

/* ---- exchange internals (exchange.c) ---- */

/* Create x and enter it in vh's map; args is copied. */
struct exchange *exchange_new(struct vhost *vh, struct bytes name, const struct exchange_type *t,
                              uint32_t flags, struct ftable args);
/* Free an exchange already out of the map and without bindings. */
void exchange_free(struct exchange *x);
/* Remove every binding to and from x, drop it from the map, free it. */
void exchange_destroy(struct exchange *x);
/* Remove one binding; auto-delete its source if that left it unbound. */
void exchange_binding_remove(struct binding *b);
/* Add a binding from src to dx or dq (idempotent); 406 on bad arguments. */
int exchange_bind(struct exchange *src, struct exchange *dx, struct queue *dq, struct bytes key,
                  struct ftable args, struct reply *err);
/* The binding (src -> dx or dq, key, args), or NULL. */
struct binding *exchange_binding_find(struct exchange *src, struct exchange *dx, struct queue *dq,
                                      struct bytes key, struct ftable args);

#endif
