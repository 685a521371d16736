/*
 * The write API (messages, enqueue, deliver, ack, queue drop) and paging
 * reads.  Every write encodes one record into the pending batch and keeps
 * the in-memory state (messages, queue entries, per-segment live counts)
 * exactly in step with what recovery would rebuild from the records, so
 * deletion and compaction can trust it (see store_int.h).
 *
 * Writes never make a syscall and allocate only when a table or the batch
 * buffer doubles.  Operations that change nothing (acking an unknown
 * entry, delivering twice) write nothing and return the last ticket.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "store/crc32c.h"
#include "store/store_int.h"
#include "util/xalloc.h"

struct store_queue *store_queue_get(struct store *s, uint32_t queue_id, bool create)
{
	uint64_t key = (uint64_t)queue_id + 1;
	struct store_qslot *qs;
	bool existed;

	if (!create) {
		qs = store_idx_find(&s->queues, key);
		return qs ? qs->q : NULL;
	}
	qs = store_idx_insert(&s->queues, key, &existed);
	if (!existed) {
		qs->q = xcalloc(1, sizeof(*qs->q));
		qs->q->id = queue_id;
		store_idx_init(&qs->q->ents, sizeof(struct store_ent));
	}
	return qs->q;
}

void store_queue_free(struct store_queue *q)
{
	store_idx_free(&q->ents);
	free(q);
}

/* The batch cannot hold this record: report the batch failed, write nothing. */
static uint64_t refuse(struct store *s, int error)
{
	if (!s->pending->error)
		s->pending->error = error;
	return ++s->ticket;
}

static void msg_unref(struct store *s, uint64_t msg_id)
{
	struct store_msg *m = store_idx_find(&s->msgs, msg_id);

	if (!m || !m->refs)
		return;
	if (--m->refs == 0) {
		store_live_add(s, m->seg, -(int64_t)m->rec_len, -1);
		store_idx_remove_slot(&s->msgs, m);
	}
}

/* The entry is gone: its records are no longer live. */
static void ent_dead(struct store *s, const struct store_ent *e)
{
	store_live_add(s, e->enq_seg, -(int64_t)STORE_ENQ_SIZE, -1);
	if (e->dlv && e->dlv != STORE_DLV_IN_ENQ)
		store_live_add(s, e->dlv, -(int64_t)STORE_DLV_SIZE, -1);
}

void store_pin(struct store *s, uint32_t seg, uint32_t target)
{
	struct store_seg *g = store_seg_find(s, seg);

	if (!g)
		return;
	g->flags |= STORE_SEGF_CANCELS;
	if (target < seg && target < g->pin_min)
		g->pin_min = target;
}

uint64_t store_msg_write(struct store *s, uint64_t msg_id, struct bytes exchange,
                         struct bytes routing_key, struct bytes props, const uint8_t *body,
                         uint64_t body_len)
{
	uint64_t size = store_rec_msg_size(exchange.len, routing_key.len, props.len, body_len);
	struct store_msg *m;
	uint32_t seg;
	uint64_t off;
	bool existed;

	if (!size || !msg_id)
		return refuse(s, !msg_id ? EINVAL : EMSGSIZE);
	store_rec_encode_msg(store_append(s, size, &seg, &off), msg_id, exchange, routing_key,
	                     props, body, body_len);
	m = store_idx_insert(&s->msgs, msg_id, &existed);
	if (existed && m->refs)
		store_live_add(s, m->seg, -(int64_t)m->rec_len, -1);
	m->seg = seg;
	m->off = (uint32_t)off;
	m->rec_len = (uint32_t)size;
	m->body_len = (uint32_t)body_len;
	if (existed && m->refs)
		store_live_add(s, seg, (int64_t)size, 1);
	if (msg_id > s->max_msg_id)
		s->max_msg_id = msg_id;
	if (s->nfresh == s->freshcap) {
		s->freshcap = s->freshcap ? s->freshcap * 2 : 256;
		s->fresh = xrealloc(s->fresh, s->freshcap * sizeof(*s->fresh));
	}
	s->fresh[s->nfresh++] = msg_id;
	return ++s->ticket;
}

uint64_t store_enqueue(struct store *s, uint32_t queue_id, uint64_t msg_id)
{
	struct store_msg *m = store_idx_find(&s->msgs, msg_id);
	struct store_queue *q;
	struct store_ent *e;
	uint32_t seg;
	uint64_t off;
	bool existed;

	if (!m)
		return s->ticket;
	q = store_queue_get(s, queue_id, true);
	e = store_idx_insert(&q->ents, msg_id, &existed);
	if (existed)
		return s->ticket;
	e->seq = ++s->ticket;
	store_rec_encode_enq(store_append(s, STORE_ENQ_SIZE, &seg, &off), queue_id, msg_id,
	                     e->seq, 0);
	e->enq_seg = seg;
	e->dlv = 0;
	store_live_add(s, seg, STORE_ENQ_SIZE, 1);
	if (m->refs++ == 0)
		store_live_add(s, m->seg, (int64_t)m->rec_len, 1);
	return s->ticket;
}

uint64_t store_deliver(struct store *s, uint32_t queue_id, uint64_t msg_id)
{
	struct store_queue *q = store_queue_get(s, queue_id, false);
	struct store_ent *e = q ? store_idx_find(&q->ents, msg_id) : NULL;
	uint32_t seg;
	uint64_t off;

	if (!e || e->dlv)
		return s->ticket;
	store_rec_encode_dlv(store_append(s, STORE_DLV_SIZE, &seg, &off), queue_id, msg_id);
	e->dlv = seg;
	store_live_add(s, seg, STORE_DLV_SIZE, 1);
	return ++s->ticket;
}

uint64_t store_ack(struct store *s, uint32_t queue_id, uint64_t msg_id)
{
	struct store_queue *q = store_queue_get(s, queue_id, false);
	struct store_ent *e = q ? store_idx_find(&q->ents, msg_id) : NULL;
	uint32_t seg;
	uint64_t off;

	if (!e)
		return s->ticket;
	store_rec_encode_ack(store_append(s, STORE_ACK_SIZE, &seg, &off), queue_id, msg_id,
	                     e->enq_seg);
	store_pin(s, seg, e->enq_seg);
	ent_dead(s, e);
	store_idx_remove_slot(&q->ents, e);
	msg_unref(s, msg_id);
	return ++s->ticket;
}

uint64_t store_queue_drop(struct store *s, uint32_t queue_id)
{
	struct store_queue *q = store_queue_get(s, queue_id, false);
	struct store_ent *e;
	uint32_t lo = STORE_NO_SEG, seg;
	uint64_t off;
	size_t it = 0;

	if (!q)
		return s->ticket;
	if (q->ents.n) {
		while ((e = store_idx_next(&q->ents, &it)))
			if (e->enq_seg < lo)
				lo = e->enq_seg;
		/* The limit is the segment the record lands in (the newest). */
		uint8_t *p = store_append(s, STORE_QDROP_SIZE, &seg, &off);
		store_rec_encode_qdrop(p, queue_id, seg, lo);
		store_pin(s, seg, lo);
		it = 0;
		while ((e = store_idx_next(&q->ents, &it))) {
			ent_dead(s, e);
			msg_unref(s, e->msg_id);
		}
		s->ticket++;
	}
	store_idx_remove(&s->queues, (uint64_t)queue_id + 1);
	store_queue_free(q);
	return s->ticket;
}

/* --- paging --- */

static bool msg_written(const struct store *s, const struct store_msg *m)
{
	return m->seg < s->written_seg ||
	       (m->seg == s->written_seg && (uint64_t)m->off + m->rec_len <= s->written_off);
}

static int pread_full(int fd, uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EBADMSG; /* the record is cut short */
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int store_msg_read(struct store *s, uint64_t msg_id, uint8_t *body, uint64_t body_len)
{
	struct store_msg *m = store_idx_find(&s->msgs, msg_id);
	uint8_t stack[4096], *head = stack;
	struct store_seg *g;
	size_t head_len;
	int fd, rc = -1;

	if (!m) {
		errno = ENOENT;
		return -1;
	}
	if (body_len != m->body_len) {
		errno = EINVAL;
		return -1;
	}
	if (!msg_written(s, m)) {
		errno = EAGAIN;
		return -1;
	}
	g = store_seg_find(s, m->seg);
	if (!g || (fd = store_seg_rfd(s, g)) < 0) {
		if (g)
			return -1;
		errno = ENOENT;
		return -1;
	}
	head_len = m->rec_len - (size_t)body_len;
	if (head_len > sizeof(stack))
		head = xmalloc(head_len);
	if (pread_full(fd, head, head_len, m->off) < 0 ||
	    pread_full(fd, body, (size_t)body_len, (uint64_t)m->off + head_len) < 0)
		goto out;
	errno = EBADMSG;
	if (store_get32(head) != STORE_REC_MAGIC || head[8] != STORE_REC_MSG ||
	    store_get32(head + 4) != m->rec_len - STORE_REC_HDR ||
	    store_get32(head + 12) !=
	        store_rec_crc_split(head, head_len, body, (size_t)body_len, g->salt, m->off))
		goto out;
	/* Decode the fields before the body to make sure it is this message. */
	if (store_get64(head + STORE_REC_HDR) != msg_id ||
	    store_get64(head + STORE_REC_HDR + 8) != body_len)
		goto out;
	rc = 0;
out:
	if (head != stack)
		free(head);
	return rc;
}
