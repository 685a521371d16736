/*
 * Queue contents: the ready messages (a seq-ordered ring per priority
 * level), publish with TTL and length limits, basic.get, acks, requeue to
 * the original position, expiry, purge and deletion.  Consumer bookkeeping
 * and dispatch live in queue_consumer.c, x-death in queue_deadletter.c.
 *
 * Re-entrancy: hooks (schedule, dead_letter, unused) may call back into the
 * queue (a dead-letter exchange can route straight back to this queue), so
 * an entry is always taken out of its ring, and the counts updated, before
 * any hook runs; no pointer into a ring is held across a hook.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "broker/queue_int.h"
#include "util/xalloc.h"

/* ---------------------------------------------------------------- rings */

static void ring_resize(struct queue_ring *r, uint32_t cap)
{
	struct queue_entry *buf = cap ? xmalloc((size_t)cap * sizeof(*buf)) : NULL;

	for (uint32_t i = 0; i < r->len; i++)
		buf[i] = *queue_ring_at(r, i);
	free(r->buf);
	r->buf = buf;
	r->cap = cap;
	r->head = 0;
}

void queue_ring_grow(struct queue_ring *r)
{
	ring_resize(r, r->cap ? r->cap * 2 : 16);
}

void queue_ring_shrink(struct queue_ring *r)
{
	/* An empty ring keeps a small buffer so a queue that drains after each
	 * publish (the common case) does not reallocate every time. */
	ring_resize(r, r->len == 0 ? 16 : r->cap / 2);
}

void queue_ring_insert(struct queue_ring *r, const struct queue_entry *e)
{
	uint32_t lo = 0, hi = r->len;

	if (r->len == r->cap)
		queue_ring_grow(r);
	if (r->len == 0 || e->seq < queue_ring_at(r, 0)->seq) {
		r->head = (r->head - 1) & (r->cap - 1);
		r->buf[r->head] = *e;
		r->len++;
		return;
	}
	if (e->seq > queue_ring_at(r, r->len - 1)->seq) {
		queue_ring_push_back(r, e);
		return;
	}
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (queue_ring_at(r, mid)->seq < e->seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < r->len / 2) {
		/* open the slot by moving the front part one step left */
		r->head = (r->head - 1) & (r->cap - 1);
		r->len++;
		for (uint32_t i = 0; i < lo; i++)
			*queue_ring_at(r, i) = *queue_ring_at(r, i + 1);
	} else {
		r->len++;
		for (uint32_t i = r->len - 1; i > lo; i--)
			*queue_ring_at(r, i) = *queue_ring_at(r, i - 1);
	}
	*queue_ring_at(r, lo) = *e;
}

/* ------------------------------------------------------- ready messages */

static void level_mark(struct queue *q, uint32_t l)
{
	q->level_bits[l / 64] |= UINT64_C(1) << (l % 64);
}

static void level_unmark_if_empty(struct queue *q, uint32_t l)
{
	if (q->levels[l].len == 0)
		q->level_bits[l / 64] &= ~(UINT64_C(1) << (l % 64));
}

static void ready_insert(struct queue *q, const struct queue_entry *e, bool at_end)
{
	uint32_t l = queue_level_of(q, e->msg);

	if (at_end)
		queue_ring_push_back(&q->levels[l], e);
	else
		queue_ring_insert(&q->levels[l], e);
	level_mark(q, l);
	q->ready++;
	q->ready_bytes += message_body_size(e->msg);
}

static struct queue_entry ready_pop(struct queue *q, uint32_t l)
{
	struct queue_entry e = queue_ring_pop_front(&q->levels[l]);

	level_unmark_if_empty(q, l);
	q->ready--;
	q->ready_bytes -= message_body_size(e.msg);
	return e;
}

/* Drop an entry that has left the ready rings, dead-lettering it first. */
static void drop_entry(struct queue *q, struct queue_entry *e, enum queue_dl_reason r)
{
	queue_dead_letter_from(q, e->msg, r);
	queue_note_removed(q, e->msg);
	message_unref(e->msg);
	e->msg = NULL;
}

/* Take the next message to deliver, dropping expired heads on the way.
 * Only the head that would be delivered is checked; expired messages in
 * lower levels wait for queue_expire, as in RabbitMQ. */
static bool take_next(struct queue *q, int64_t now_ms, struct queue_entry *out)
{
	int l;

	while ((l = queue_top_level(q)) >= 0) {
		struct queue_entry e;
		if (!queue_entry_expired(queue_ring_at(&q->levels[l], 0), now_ms)) {
			*out = ready_pop(q, (uint32_t)l);
			return true;
		}
		e = ready_pop(q, (uint32_t)l);
		drop_entry(q, &e, QUEUE_DL_EXPIRED);
	}
	return false;
}

static bool over_limit(const struct queue *q)
{
	return (q->args.max_length >= 0 && (int64_t)q->ready > q->args.max_length) ||
	       (q->args.max_length_bytes >= 0 &&
	        q->ready_bytes > (uint64_t)q->args.max_length_bytes);
}

/* x-overflow drop-head: drop (dead-letter as "maxlen") from the head until
 * the queue fits its limits again. */
static void enforce_limits(struct queue *q)
{
	int l;

	if (q->args.overflow != QUEUE_OVERFLOW_DROP_HEAD)
		return;
	while (over_limit(q) && (l = queue_top_level(q)) >= 0) {
		struct queue_entry e = ready_pop(q, (uint32_t)l);
		drop_entry(q, &e, QUEUE_DL_MAXLEN);
	}
}

static uint32_t drop_all_ready(struct queue *q)
{
	uint32_t n = 0;
	int l;

	while ((l = queue_top_level(q)) >= 0) {
		struct queue_entry e = ready_pop(q, (uint32_t)l);
		queue_note_removed(q, e.msg);
		message_unref(e.msg);
		n++;
	}
	return n;
}

/* --------------------------------------------------------- life cycle */

struct queue *queue_new(struct bytes name, const char *vhost_name, uint32_t flags,
                        struct ftable raw_args, const struct queue_args *args,
                        const struct queue_hooks *hooks, void *hooks_ctx)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	uint8_t *n = xmalloc(name.len + 1);

	if (name.len)
		memcpy(n, name.ptr, name.len);
	n[name.len] = 0;
	q->name.ptr = n;
	q->name.len = name.len;
	q->vhost_name = vhost_name;
	q->flags = flags;
	if (raw_args.len) {
		q->raw_args.ptr = xmemdup(raw_args.ptr, raw_args.len);
		q->raw_args.len = raw_args.len;
	}
	q->args = *args;
	q->hooks = hooks;
	q->hooks_ctx = hooks_ctx;
	/* No clock yet: x-expires counts from the first queue_touch(). */
	q->clock_ms = -1;
	q->last_used_ms = -1;
	if (q->args.max_priority > 0)
		q->levels = xcalloc((size_t)q->args.max_priority + 1, sizeof(*q->levels));
	else
		q->levels = &q->level0;
	return q;
}

static void queue_free(struct queue *q)
{
	uint32_t nlevels = (uint32_t)q->args.max_priority + 1;

	assert(q->ready == 0 && q->nconsumers == 0);
	for (uint32_t l = 0; l < nlevels; l++)
		free(q->levels[l].buf);
	if (q->levels != &q->level0)
		free(q->levels);
	free((void *)q->name.ptr);
	free((void *)q->raw_args.ptr);
	queue_args_free(&q->args);
	free(q);
}

uint32_t queue_delete(struct queue *q)
{
	uint32_t n;

	assert(!q->deleting);
	/* Consumers' channels may settle or requeue from cancelled(): q stays
	 * valid until they have all been told. */
	q->deleting = true;
	n = drop_all_ready(q);
	queue_cancel_consumers(q);
	queue_free(q);
	return n;
}

/*
 * RabbitMQ hands a single-active-consumer queue to the next consumer only
 * once the previous one's deliveries are settled, so a requeued message
 * keeps its place at the head for the new consumer.
 */
static void sac_settled_one(struct queue *q)
{
	if (q->sac_holdback > 0 && --q->sac_holdback == 0)
		queue_schedule(q);
}

static void unacked_done(struct queue *q)
{
	assert(q->unacked > 0);
	q->unacked--;
	sac_settled_one(q);
}

uint32_t queue_message_count(const struct queue *q)
{
	return q->ready;
}

uint32_t queue_consumer_count(const struct queue *q)
{
	return q->nconsumers;
}

uint32_t queue_unacked_count(const struct queue *q)
{
	return q->unacked;
}

uint64_t queue_ready_bytes(const struct queue *q)
{
	return q->ready_bytes;
}

uint32_t queue_purge(struct queue *q)
{
	return drop_all_ready(q);
}

/* ------------------------------------------------------------ publish */

static int64_t effective_ttl(const struct queue *q, const struct message *m)
{
	int64_t t = q->args.message_ttl;

	if (m->ttl_ms >= 0 && (t < 0 || m->ttl_ms < t))
		t = m->ttl_ms;
	return t;
}

static bool would_overflow(const struct queue *q, const struct message *m)
{
	return (q->args.max_length >= 0 && (int64_t)q->ready + 1 > q->args.max_length) ||
	       (q->args.max_length_bytes >= 0 &&
	        q->ready_bytes + message_body_size(m) > (uint64_t)q->args.max_length_bytes);
}

int queue_publish(struct queue *q, struct message *m, int64_t now_ms)
{
	int64_t ttl = effective_ttl(q, m);
	struct queue_entry e = { m, q->next_seq++, ttl >= 0 ? now_ms + ttl : -1, 0, false };

	assert(!q->deleting);
	q->clock_ms = now_ms;
	if (q->args.overflow == QUEUE_OVERFLOW_REJECT_PUBLISH && would_overflow(q, m)) {
		if (q->args.overflow_dlx)
			queue_dead_letter_from(q, m, QUEUE_DL_MAXLEN);
		return QUEUE_PUBLISH_REJECTED;
	}
	/* A message that could not even sit in the queue (TTL 0, a limit of 0)
	 * still reaches a consumer that can take it right now, as in RabbitMQ,
	 * which delivers straight to a waiting consumer when the queue is
	 * empty. */
	if (q->ready == 0 &&
	    (ttl == 0 || (q->args.overflow == QUEUE_OVERFLOW_DROP_HEAD && would_overflow(q, m)))) {
		struct consumer *c = queue_pick_consumer(q);
		if (c) {
			message_ref(m);
			queue_note_enqueued(q, m);
			queue_deliver_to(q, c, &e);
			return QUEUE_PUBLISH_OK;
		}
		if (ttl == 0) {
			queue_dead_letter_from(q, m, QUEUE_DL_EXPIRED);
			return QUEUE_PUBLISH_OK;
		}
	}
	message_ref(m);
	queue_note_enqueued(q, m);
	ready_insert(q, &e, true);
	enforce_limits(q);
	queue_schedule(q);
	return QUEUE_PUBLISH_OK;
}

void queue_restore(struct queue *q, struct message *m, bool redelivered, int64_t now_ms)
{
	int64_t ttl = effective_ttl(q, m);
	/* TTLs count again from the restart: the store keeps no arrival time */
	struct queue_entry e = { m, q->next_seq++, ttl >= 0 ? now_ms + ttl : -1,
	                         redelivered ? 1u : 0u, redelivered };
	message_ref(m);
	ready_insert(q, &e, true);
}

/* ----------------------------------------------------------- dispatch */

size_t queue_dispatch(struct queue *q, int64_t now_ms, size_t budget)
{
	size_t n = 0;

	q->clock_ms = now_ms;
	while (n < budget && q->ready > 0 && q->nconsumers > 0) {
		struct queue_entry e;
		struct consumer *c;
		int l = queue_top_level(q);

		if (queue_entry_expired(queue_ring_at(&q->levels[l], 0), now_ms)) {
			e = ready_pop(q, (uint32_t)l);
			drop_entry(q, &e, QUEUE_DL_EXPIRED);
			continue;
		}
		c = queue_pick_consumer(q);
		if (!c)
			break;
		e = ready_pop(q, (uint32_t)l);
		queue_deliver_to(q, c, &e);
		n++;
	}
	/* Stopped by the budget: come back later so other queues get a turn. */
	if (n == budget && n > 0)
		queue_schedule(q);
	return n;
}

/* ------------------------------------------------------ get, ack, requeue */

int queue_get(struct queue *q, int64_t now_ms, bool no_ack, struct queue_entry *out)
{
	q->clock_ms = now_ms;
	q->last_used_ms = now_ms;
	if (!take_next(q, now_ms, out))
		return 0;
	out->delivery_count++;
	if (!no_ack)
		q->unacked++;
	else
		queue_note_removed(q, out->msg);
	return 1;
}

void queue_settle(struct queue *q, struct queue_entry *e)
{
	queue_note_removed(q, e->msg);
	message_unref(e->msg);
	e->msg = NULL;
	unacked_done(q);
}

static void requeue_one(struct queue *q, struct queue_entry *e)
{
	e->redelivered = true;
	ready_insert(q, e, false);
	e->msg = NULL;
	q->unacked--;
	sac_settled_one(q);
}

void queue_requeue(struct queue *q, struct queue_entry *e)
{
	if (q->deleting) {
		queue_settle(q, e); /* the queue is going: so is the message */
		return;
	}
	requeue_one(q, e);
	enforce_limits(q);
	queue_schedule(q);
}

static int entry_seq_cmp(const void *a, const void *b)
{
	const struct queue_entry *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void queue_requeue_many(struct queue *q, struct queue_entry *es, size_t n)
{
	if (q->deleting) {
		for (size_t i = 0; i < n; i++)
			queue_settle(q, &es[i]);
		return;
	}
	qsort(es, n, sizeof(*es), entry_seq_cmp);
	/* Newest first, so each one lands in front of the ready messages in
	 * the usual case (they were delivered from the head). */
	for (size_t i = n; i-- > 0;)
		requeue_one(q, &es[i]);
	enforce_limits(q);
	queue_schedule(q);
}

void queue_reject(struct queue *q, struct queue_entry *e)
{
	if (!q->deleting)
		queue_dead_letter_from(q, e->msg, QUEUE_DL_REJECTED);
	queue_settle(q, e);
}

/* ---------------------------------------------------------------- TTL */

void queue_expire(struct queue *q, int64_t now_ms)
{
	q->clock_ms = now_ms;
	for (int l = queue_top_level(q); l >= 0; l--) {
		struct queue_ring *r = &q->levels[l];
		while (r->len > 0 && queue_entry_expired(queue_ring_at(r, 0), now_ms)) {
			struct queue_entry e = ready_pop(q, (uint32_t)l);
			drop_entry(q, &e, QUEUE_DL_EXPIRED);
		}
	}
}

int64_t queue_next_expiry(const struct queue *q)
{
	int64_t best = -1;

	for (int l = queue_top_level(q); l >= 0; l--) {
		const struct queue_ring *r = &q->levels[l];
		if (r->len == 0)
			continue;
		int64_t t = r->buf[r->head].expires_at;
		if (t >= 0 && (best < 0 || t < best))
			best = t;
	}
	return best;
}

void queue_touch(struct queue *q, int64_t now_ms)
{
	q->clock_ms = now_ms;
	q->last_used_ms = now_ms;
}

int64_t queue_idle_since(const struct queue *q)
{
	return q->nconsumers > 0 ? -1 : q->last_used_ms;
}

int64_t queue_expires_at(const struct queue *q)
{
	if (q->args.expires < 0 || q->nconsumers > 0 || q->last_used_ms < 0)
		return -1;
	return q->last_used_ms + q->args.expires;
}
