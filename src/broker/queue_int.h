/*
 * Internals shared by the queue module's files (queue.c, queue_consumer.c,
 * queue_deadletter.c): the ring of entries, the priority levels and the
 * consumer groups.  Nothing outside src/broker/queue*.c includes this.
 *
 * A ring's capacity is 0 or a power of two, so an index wraps with a mask;
 * entries are kept sorted by seq (publish order).
 */
#ifndef WARREN_BROKER_QUEUE_INT_H
#define WARREN_BROKER_QUEUE_INT_H

#include "broker/consumer.h"
#include "broker/message.h"
#include "broker/queue.h"

/* Consumers sharing one x-priority, served round-robin from cursor. */
struct queue_cgroup {
	int32_t priority;
	uint32_t n;
	struct consumer *cursor;    /* next to be offered a message */
	struct queue_cgroup *next;  /* lower priority */
};

static inline struct queue_entry *queue_ring_at(struct queue_ring *r, uint32_t i)
{
	return &r->buf[(r->head + i) & (r->cap - 1)];
}

/* Double the capacity (or allocate the first buffer). */
void queue_ring_grow(struct queue_ring *r);
/* Give memory back after a queue drained. */
void queue_ring_shrink(struct queue_ring *r);
/* Insert keeping seq order; O(1) at either end, else shifts the shorter side. */
void queue_ring_insert(struct queue_ring *r, const struct queue_entry *e);

static inline void queue_ring_push_back(struct queue_ring *r, const struct queue_entry *e)
{
	if (r->len == r->cap)
		queue_ring_grow(r);
	*queue_ring_at(r, r->len) = *e;
	r->len++;
}

static inline struct queue_entry queue_ring_pop_front(struct queue_ring *r)
{
	struct queue_entry e = r->buf[r->head];

	r->head = (r->head + 1) & (r->cap - 1);
	r->len--;
	if ((r->len == 0 && r->cap > 64) || (r->cap > 64 && r->len < r->cap / 8))
		queue_ring_shrink(r);
	return e;
}

static inline uint32_t queue_level_of(const struct queue *q, const struct message *m)
{
	if (q->args.max_priority == 0)
		return 0;
	return m->priority > q->args.max_priority ? (uint32_t)q->args.max_priority : m->priority;
}

/* The highest non-empty level, -1 when nothing is ready. */
static inline int queue_top_level(const struct queue *q)
{
	for (int i = 3; i >= 0; i--)
		if (q->level_bits[i])
			return i * 64 + 63 - __builtin_clzll(q->level_bits[i]);
	return -1;
}

static inline bool queue_entry_expired(const struct queue_entry *e, int64_t now_ms)
{
	return e->expires_at >= 0 && e->expires_at <= now_ms;
}

/* queue_consumer.c */
struct consumer *queue_pick_consumer(struct queue *q);
void queue_deliver_to(struct queue *q, struct consumer *c, struct queue_entry *e);
void queue_schedule(struct queue *q);
/* Detach every consumer and tell each it was cancelled (queue deletion). */
void queue_cancel_consumers(struct queue *q);

/* queue_deadletter.c: dead-letter m from q if q has a dead-letter exchange
 * (m's reference stays with the caller). */
void queue_dead_letter_from(struct queue *q, struct message *m, enum queue_dl_reason r);

#endif

/* The persistence hooks (see struct queue_hooks); no-ops without them. */
static inline void queue_note_enqueued(struct queue *q, struct message *m)
{
	if (q->hooks && q->hooks->enqueued)
		q->hooks->enqueued(q->hooks_ctx, q, m);
}

static inline void queue_note_removed(struct queue *q, struct message *m)
{
	if (!q->deleting && q->hooks && q->hooks->removed)
		q->hooks->removed(q->hooks_ctx, q, m);
}
