/*
 * A virtual host: its exchanges, queues and bindings, and the entry points
 * the channel calls for exchange.* and queue.* methods.  Pure data: no
 * sockets, no loop; every operation either succeeds (returns 0) or fills a
 * struct reply with RabbitMQ's code and text and returns -1.
 *
 * Invariants:
 *  - exchanges and queues are keyed by their own (owned) names;
 *  - every binding is in the vhost's binding map and on its source's,
 *    destination's and type's lists (binding.h); deleting a queue or an
 *    exchange removes every binding to or from it first;
 *  - an auto-delete exchange is deleted when a binding removal leaves it
 *    with no bindings as source (never merely for being unbound at declare);
 *  - the default exchange and the amq.* exchanges exist for the vhost's life.
 *
 * The channel resolves "" to the channel's last queue and checks exclusive
 * ownership (405) before calling the queue entry points that take no owner.
 */
#ifndef WARREN_BROKER_VHOST_H
#define WARREN_BROKER_VHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/exchange.h"
#include "broker/reply.h"
#include "codec/wire.h"
#include "util/hmap.h"

struct broker;
struct queue;
struct queue_hooks;

/*
 * Called on every path that deletes a queue, after its bindings and registry
 * entry are gone and just before queue_delete(), so the glue can drop its own
 * references (dispatch lists, channels' unacked records).
 */
typedef void (*vhost_queue_gone_fn)(void *ctx, struct queue *q);

struct vhost {
	char *name;               /* NUL-terminated; queues borrow it for error texts */
	struct broker *owner;     /* opaque back-pointer for the glue; may be NULL */
	struct hmap exchanges;    /* name -> struct exchange * */
	struct hmap queues;       /* name -> struct queue * */
	struct hmap bindings;     /* binding index key -> struct binding * */
	struct exchange *default_x;
	uint64_t route_stamp;     /* bumped per publish; see exchange.h */
	vhost_queue_gone_fn queue_gone; /* optional; set by the owner after vhost_new */
	void *queue_gone_ctx;
	uint32_t max_queues;      /* queue.declare may not create more; 0 = unlimited */
};

/* A vhost with the default exchange and the amq.* exchanges declared.
 * max_queues starts as the owner's [limits] max_queues_per_vhost (0 without
 * an owner). */
struct vhost *vhost_new(struct broker *owner, const char *name);
/* Free everything, deleting queues through queue_delete(). */
void vhost_free(struct vhost *vh);

static inline const char *vhost_name(const struct vhost *vh)
{
	return vh->name;
}

/*
 * Periodic housekeeping (now_ms on the queues' clock): delete queues whose
 * x-expires idle time has passed and expire messages whose TTL has.
 */
void vhost_tick(struct vhost *vh, int64_t now_ms);

/* ---- exchanges ------------------------------------------------------- */

struct exchange *vhost_exchange_find(struct vhost *vh, struct bytes name);

/*
 * exchange.declare.  Errors, in RabbitMQ's order: unknown type (503, not
 * passive), the default exchange (403), passive and missing (404), reserved
 * "amq." name on creation (403), alternate-exchange not a string (406),
 * type/durable/auto_delete/internal/alternate-exchange differing from the
 * existing exchange (406).
 */
int vhost_exchange_declare(struct vhost *vh, struct bytes name, struct bytes type, bool passive,
                           bool durable, bool auto_delete, bool internal, struct ftable args,
                           struct reply *err);
/* exchange.delete: missing is success; default or amq.* is 403; if_unused with bindings 406. */
int vhost_exchange_delete(struct vhost *vh, struct bytes name, bool if_unused, struct reply *err);

/* exchange.bind / exchange.unbind (destination first, as in the method). */
int vhost_exchange_bind(struct vhost *vh, struct bytes dest, struct bytes source, struct bytes key,
                        struct ftable args, struct reply *err);
int vhost_exchange_unbind(struct vhost *vh, struct bytes dest, struct bytes source,
                          struct bytes key, struct ftable args, struct reply *err);

/* ---- queues ---------------------------------------------------------- */

struct queue *vhost_queue_find(struct vhost *vh, struct bytes name);

/*
 * queue.declare.  conn is the declaring connection: it becomes the owner of
 * an exclusive queue and is compared with the owner of an existing one.
 * An empty name makes a server-named queue.  Exclusive queues are never
 * durable (RabbitMQ).  On success *out is the queue (new or existing).
 * Creating a queue when the vhost holds max_queues already is 406, checked
 * where RabbitMQ checks it: after the reserved-name and redeclare checks,
 * before the arguments are looked at.  Code that restores queues from disk
 * must not be refused by a lowered limit: clear max_queues around it.
 */
int vhost_queue_declare(struct vhost *vh, struct bytes name, bool passive, bool durable,
                        bool exclusive, bool auto_delete, struct ftable args, void *conn,
                        const struct queue_hooks *hooks, void *hooks_ctx, struct queue **out,
                        struct reply *err);

/*
 * queue.delete: a missing queue is success with *count 0 (RabbitMQ);
 * if_empty with ready messages and if_unused with consumers are 406.
 * *count is the number of ready messages dropped.
 */
int vhost_queue_delete(struct vhost *vh, struct bytes name, bool if_unused, bool if_empty,
                       uint32_t *count, struct reply *err);
/* queue.purge: 404 if missing; *count messages dropped. */
int vhost_queue_purge(struct vhost *vh, struct bytes name, uint32_t *count, struct reply *err);

/*
 * Delete q unconditionally (auto-delete, x-expires, owner gone): bindings,
 * registry entry, then queue_delete().  Does nothing and returns 0 if q is
 * not (or no longer) this vhost's queue, so a second request is harmless.
 */
uint32_t vhost_queue_remove(struct vhost *vh, struct queue *q);

/* Delete every exclusive queue owned by owner (a closing connection). */
void vhost_delete_owned(struct vhost *vh, void *owner);

/* queue.bind / queue.unbind.  Unbinding something missing is success (RabbitMQ). */
int vhost_queue_bind(struct vhost *vh, struct bytes queue, struct bytes exchange, struct bytes key,
                     struct ftable args, struct reply *err);
int vhost_queue_unbind(struct vhost *vh, struct bytes queue, struct bytes exchange,
                       struct bytes key, struct ftable args, struct reply *err);

#endif
