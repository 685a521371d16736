/*
 * A queue's consumers: groups by x-priority (highest first), each a ring
 * served round-robin from a cursor, plus a list in registration order for
 * single-active-consumer (the oldest consumer still present is the active
 * one) and for cancelling everyone when the queue goes.
 *
 * Picking a consumer asks ready() of each candidate in turn: a group whose
 * consumers are all busy lets the next lower group have the message, as
 * RabbitMQ does.  After a delivery the cursor moves past the consumer that
 * got it, so equals share messages in turn.
 */
#include <assert.h>
#include <stdlib.h>

#include "broker/queue_int.h"
#include "codec/gen_methods.h"
#include "util/xalloc.h"

void queue_schedule(struct queue *q)
{
	if (q->ready > 0 && q->nconsumers > 0 && q->hooks && q->hooks->schedule)
		q->hooks->schedule(q->hooks_ctx, q);
}

void queue_kick(struct queue *q)
{
	queue_schedule(q);
}

struct consumer *queue_pick_consumer(struct queue *q)
{
	if (q->args.single_active_consumer) {
		struct consumer *c = q->reg_head;
		if (q->sac_holdback > 0)
			return NULL;
		return c && c->ops->ready(c) ? c : NULL;
	}
	for (struct queue_cgroup *g = q->groups; g; g = g->next) {
		struct consumer *c = g->cursor;
		for (uint32_t i = 0; i < g->n; i++, c = c->rr_next)
			if (c->ops->ready(c))
				return c;
	}
	return NULL;
}

void queue_deliver_to(struct queue *q, struct consumer *c, struct queue_entry *e)
{
	e->delivery_count++;
	if (!c->no_ack)
		q->unacked++;
	else
		queue_note_removed(q, e->msg);
	/* Move on before calling out, so nothing of c is used afterwards. */
	if (c->group)
		c->group->cursor = c->rr_next;
	c->ops->deliver(c, q, e);
}

static int exclusive_use(struct queue *q, struct reply *err)
{
	char qbuf[1024];

	return reply_set(err, CODEC_ACCESS_REFUSED, "queue '%s' in vhost '%s' in exclusive use",
	                 reply_name(qbuf, sizeof(qbuf), q->name.ptr, q->name.len),
	                 q->vhost_name);
}

int queue_consumer_add(struct queue *q, struct consumer *c, struct reply *err)
{
	struct queue_cgroup **pg = &q->groups, *g;

	assert(!q->deleting);
	if (q->has_exclusive_consumer ||
	    (c->exclusive && (q->nconsumers > 0 || q->args.single_active_consumer)))
		return exclusive_use(q, err);

	while (*pg && (*pg)->priority > c->priority)
		pg = &(*pg)->next;
	if (*pg && (*pg)->priority == c->priority) {
		g = *pg;
	} else {
		g = xcalloc(1, sizeof(*g));
		g->priority = c->priority;
		g->next = *pg;
		*pg = g;
	}
	/* Newcomers join at the end of the round: just before the cursor. */
	if (g->cursor) {
		c->rr_next = g->cursor;
		c->rr_prev = g->cursor->rr_prev;
		c->rr_prev->rr_next = c;
		c->rr_next->rr_prev = c;
	} else {
		c->rr_next = c->rr_prev = c;
		g->cursor = c;
	}
	g->n++;
	c->group = g;

	c->reg_next = NULL;
	c->reg_prev = q->reg_tail;
	if (q->reg_tail)
		q->reg_tail->reg_next = c;
	else
		q->reg_head = c;
	q->reg_tail = c;

	c->queue = q;
	q->nconsumers++;
	q->had_consumer = true;
	if (c->exclusive)
		q->has_exclusive_consumer = true;
	queue_schedule(q);
	return 0;
}

static void consumer_unlink(struct queue *q, struct consumer *c)
{
	struct queue_cgroup *g = c->group;

	if (--g->n == 0) {
		struct queue_cgroup **pg = &q->groups;
		while (*pg != g)
			pg = &(*pg)->next;
		*pg = g->next;
		free(g);
	} else {
		if (g->cursor == c)
			g->cursor = c->rr_next;
		c->rr_prev->rr_next = c->rr_next;
		c->rr_next->rr_prev = c->rr_prev;
	}
	c->rr_next = c->rr_prev = NULL;
	c->group = NULL;

	if (c->reg_prev)
		c->reg_prev->reg_next = c->reg_next;
	else
		q->reg_head = c->reg_next;
	if (c->reg_next)
		c->reg_next->reg_prev = c->reg_prev;
	else
		q->reg_tail = c->reg_prev;
	c->reg_next = c->reg_prev = NULL;

	if (c->exclusive)
		q->has_exclusive_consumer = false;
	q->nconsumers--;
	c->queue = NULL;
}

void queue_consumer_remove(struct queue *q, struct consumer *c)
{
	if (c->queue != q)
		return;
	if (q->args.single_active_consumer && q->reg_head == c && q->unacked > 0)
		q->sac_holdback = q->unacked;
	consumer_unlink(q, c);
	if (q->nconsumers == 0 && q->clock_ms >= 0)
		q->last_used_ms = q->clock_ms;
	/* With single-active-consumer the next one in line takes over. */
	queue_schedule(q);
	if (q->nconsumers == 0 && q->had_consumer && (q->flags & QUEUE_F_AUTO_DELETE) &&
	    q->hooks && q->hooks->unused)
		q->hooks->unused(q->hooks_ctx, q); /* may delete q: nothing after this */
}

void queue_cancel_consumers(struct queue *q)
{
	while (q->reg_head) {
		struct consumer *c = q->reg_head;
		consumer_unlink(q, c);
		c->ops->cancelled(c);
	}
}
