/*
 * Exchanges and routing.  An exchange owns the bindings it is the source of
 * and indexes them through its type (direct, fanout, topic, headers), behind
 * a small vtable so routing never scans bindings a type can rule out.
 *
 * Routing follows RabbitMQ (rabbit_exchange:route): the default exchange
 * delivers to the queue named by each routing key; any other exchange asks
 * its type for matching bindings, follows exchange-to-exchange bindings
 * (each exchange visited once per publish, so loops end), and when an
 * exchange matched no binding at all its alternate-exchange (the argument)
 * is tried instead.  Every destination queue appears once in the result.
 *
 * Routing allocates nothing in the steady state: struct route_result keeps
 * inline room for ROUTE_INLINE queues and exchanges and keeps whatever it
 * grew to between publishes; de-duplication uses a per-publish stamp
 * (vhost->route_stamp) written into queue->route_mark and exchange->route_mark.
 */
#ifndef WARREN_BROKER_EXCHANGE_H
#define WARREN_BROKER_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/table.h"
#include "codec/wire.h"

struct vhost;
struct queue;
struct binding;
struct reply;
struct route_ctx;

enum {
	EXCHANGE_F_DURABLE = 1,
	EXCHANGE_F_AUTO_DELETE = 2,
	EXCHANGE_F_INTERNAL = 4,
	EXCHANGE_F_DEFAULT = 8, /* the nameless default exchange */
};

struct exchange;

/* An exchange type: how bindings are indexed and matched. */
struct exchange_type {
	const char *name;
	void (*init)(struct exchange *x);
	/* Reject bad binding arguments (headers: x-match) with 406; 0 if fine. */
	int (*validate)(struct exchange *x, struct bytes key, struct ftable args,
	                struct reply *err);
	void (*bind)(struct exchange *x, struct binding *b);
	void (*unbind)(struct exchange *x, struct binding *b);
	/* Report every binding matching the publish through binding_route_to(). */
	void (*route)(struct exchange *x, const struct bytes *keys, size_t nkeys,
	              struct ftable headers, struct route_ctx *rc);
	void (*free)(struct exchange *x);
};

extern const struct exchange_type exchange_type_direct;
extern const struct exchange_type exchange_type_fanout;
extern const struct exchange_type exchange_type_topic;
extern const struct exchange_type exchange_type_headers;

struct exchange {
	struct bytes name;            /* owned, NUL-terminated */
	const struct exchange_type *type;
	uint32_t flags;               /* EXCHANGE_F_* */
	struct ftable args;           /* owned copy of the declare arguments */
	struct bytes alternate;       /* alternate-exchange name (slice of args) */
	bool has_alternate;
	bool deleting;                /* being torn down: no auto-delete recursion */
	struct vhost *vhost;
	struct binding *out;          /* bindings with this exchange as source */
	size_t nout;
	struct binding *in;           /* bindings with this exchange as destination */
	void *type_data;              /* the type's index */
	uint64_t route_mark;          /* == vhost->route_stamp: already visited */
};

static inline bool exchange_is_internal(const struct exchange *x)
{
	return (x->flags & EXCHANGE_F_INTERNAL) != 0;
}

/* Look up a type by its wire name ("direct", ...); NULL if unknown. */
const struct exchange_type *exchange_type_find(struct bytes name);

#define ROUTE_INLINE 8

/* The queues one publish goes to.  Reuse one per channel; see the top note. */
struct route_result {
	struct queue **queues;        /* valid after exchange_route */
	size_t n;
	struct queue *inline_q[ROUTE_INLINE];
	struct queue **heap_q;
	size_t cap_q;
	/* exchanges still to visit (internal to exchange_route) */
	struct exchange **work;
	size_t nwork;
	struct exchange *inline_x[ROUTE_INLINE];
	struct exchange **heap_x;
	size_t cap_x;
};

void route_result_init(struct route_result *r);
void route_result_free(struct route_result *r);

/*
 * Route a publish on x.  keys are the routing key followed by any CC and BCC
 * header keys; headers is the message's headers table (empty if none).
 * Fills out (reset first) and returns the number of queues.
 */
size_t exchange_route(struct vhost *vh, struct exchange *x, const struct bytes *keys,
                      size_t nkeys, struct ftable headers, struct route_result *out);

#endif
