/*
 * A consumer as a queue sees it: something that can take deliveries.  The
 * channel embeds struct consumer in its own consumer record and supplies the
 * ops; the queue only links it into its lists and calls back.
 *
 * Invariants: c->queue is the queue the consumer is attached to (set by
 * queue_consumer_add, cleared by queue_consumer_remove and before
 * ops->cancelled runs), and the link fields below belong to that queue.  The
 * consumer must stay allocated while attached.
 */
#ifndef WARREN_BROKER_CONSUMER_H
#define WARREN_BROKER_CONSUMER_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/wire.h"

struct queue;
struct queue_entry;
struct consumer;
struct queue_cgroup;

struct consumer_ops {
	/* Can take one more delivery now (prefetch room, flow, output room).
	 * Called often: keep it cheap and free of side effects. */
	bool (*ready)(struct consumer *c);
	/*
	 * Take a delivery.  The consumer now owns e->msg's reference and keeps
	 * a copy of *e as its unacked record (unless no_ack, in which case the
	 * queue has already counted the message as settled).  Must not add or
	 * remove consumers of q, nor delete q, before returning.
	 */
	void (*deliver)(struct consumer *c, struct queue *q, struct queue_entry *e);
	/* The queue was deleted: the server cancels the consumer (basic.cancel
	 * to clients that asked for it).  c->queue is already NULL. */
	void (*cancelled)(struct consumer *c);
};

struct consumer {
	const struct consumer_ops *ops;
	struct queue *queue;
	struct bytes tag;      /* owned by the channel */
	int32_t priority;      /* x-priority; higher is served first */
	bool exclusive;
	bool no_ack;
	void *owner;           /* the channel, opaque to the queue */

	/* Private to the queue. */
	struct queue_cgroup *group;          /* consumers of the same priority */
	struct consumer *rr_next, *rr_prev;  /* round-robin ring in the group */
	struct consumer *reg_next, *reg_prev; /* every consumer, oldest first */
};

#endif
