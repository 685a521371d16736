/*
 * Reclaiming space, loop side.  A segment with no live record that is not
 * pinned is unlinked outright.  A sparse one (under half live, or pinned
 * with nothing live) is compacted: the store thread reads it and sends
 * back descriptors of its records, chunk by chunk; the loop keeps those
 * that are still live (checked against the in-memory state at that
 * moment, so acks that raced with the scan are honoured), appends them to
 * the head in the pending batch (messages as COPY ops the thread performs,
 * small records re-encoded), and finally appends the unlink.  Records
 * keep their relative order, and queue entries keep their sequence number,
 * so recovery sees the same queues.
 *
 * A message's new location is used only once its copy is durable
 * (relocations are applied when the batch comes back), so paging reads
 * never see an unwritten copy.  Queue entries move at once: an ACK written
 * meanwhile names the new segment, and the ACK rule (cancel when the
 * entry's ENQ segment <= the named one) also cancels the older copy.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/xalloc.h"

static bool is_head(const struct store *s, const struct store_seg *g)
{
	return s->head_open && g == &s->segs[s->nsegs - 1];
}

static void doom(struct store *s, struct store_seg *g)
{
	store_append_unlink(s, g->id);
	g->state = STORE_SEG_DOOMED;
	g->doom_batch = s->pending->id;
	s->ndoomed++;
}

static void request_chunk(struct store *s, uint32_t seg, uint32_t salt, bool start)
{
	pthread_mutex_lock(&s->mu);
	s->scan_want = true;
	s->scan_start = start;
	s->scan_seg = seg;
	s->scan_salt = salt;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void store_compact_maybe(struct store *s)
{
	struct store_seg *best = NULL;
	double best_ratio = 2.0;

	if (!s->recovered || s->failed || s->closing || !s->thread_started)
		return;
	/*
	 * A big head with nothing live stops taking appends so it can go
	 * (small ones stay: a new file per second would cost more).
	 */
	if (s->head_open) {
		struct store_seg *h = &s->segs[s->nsegs - 1];
		if (h->live_recs == 0 && h->size >= s->segment_size / 4 &&
		    !store_seg_pinned(s, h) && h->state == STORE_SEG_LIVE) {
			s->head_open = false;
		}
	}
	for (size_t i = 0; i < s->nsegs; i++) {
		struct store_seg *g = &s->segs[i];
		if (is_head(s, g) || g->state != STORE_SEG_LIVE)
			continue;
		bool pinned = store_seg_pinned(s, g);
		if (g->live_recs == 0 && !pinned) {
			doom(s, g);
			continue;
		}
		uint64_t data = g->size > STORE_SEG_HDR ? g->size - STORE_SEG_HDR : 0;
		double ratio;
		if (g->flags & STORE_SEGF_STALE)
			ratio = -1.0; /* it holds up deletions: compact it first */
		else if (g->live_recs == 0)
			ratio = 0.0;
		else if (data && g->live_bytes * 2 <= data)
			ratio = (double)g->live_bytes / (double)data;
		else
			continue;
		if (ratio < best_ratio) {
			best_ratio = ratio;
			best = g;
		}
	}
	if (s->compacting || !best)
		return;
	best->state = STORE_SEG_COMPACTING;
	/* Keep a descriptor: paging reads may still come here after the unlink. */
	store_seg_rfd(s, best);
	s->compacting = true;
	s->compact_seg = best->id;
	request_chunk(s, best->id, best->salt, true);
}

/* Still needed: some segment holding an ENQ it cancels may exist. */
static bool cancel_needed(struct store *s, uint32_t lo, uint32_t seg)
{
	return store_seg_exists_in(s, lo, seg) || store_stale_before(s, seg);
}

static void keep_record(struct store *s, uint32_t from, const struct store_desc *d)
{
	struct store_queue *q;
	struct store_ent *e;
	struct store_msg *m;
	uint32_t seg;
	uint64_t off;
	uint8_t *p;

	switch (d->type) {
	case STORE_REC_MSG:
		m = store_idx_find(&s->msgs, d->msg_id);
		if (!m || !m->refs || m->seg != from || m->off != d->off)
			return;
		store_append_copy(s, store_seg_find(s, from), d->off, d->len, &seg, &off);
		store_reloc_add(s, d->msg_id, from, seg, (uint32_t)off);
		return;
	case STORE_REC_ENQ:
		q = store_queue_get(s, d->queue_id, false);
		e = q ? store_idx_find(&q->ents, d->msg_id) : NULL;
		if (!e || e->enq_seg != from)
			return;
		p = store_append(s, STORE_ENQ_SIZE, &seg, &off);
		store_rec_encode_enq(p, d->queue_id, d->msg_id, e->seq,
		                     e->dlv ? (uint8_t)STORE_ENQ_DELIVERED : 0);
		store_live_add(s, from, -(int64_t)STORE_ENQ_SIZE, -1);
		store_live_add(s, seg, STORE_ENQ_SIZE, 1);
		if (e->dlv && e->dlv != STORE_DLV_IN_ENQ)
			store_live_add(s, e->dlv, -(int64_t)STORE_DLV_SIZE, -1);
		e->dlv = e->dlv ? STORE_DLV_IN_ENQ : 0;
		e->enq_seg = seg;
		return;
	case STORE_REC_DLV:
		q = store_queue_get(s, d->queue_id, false);
		e = q ? store_idx_find(&q->ents, d->msg_id) : NULL;
		if (!e || e->dlv != from)
			return;
		store_rec_encode_dlv(store_append(s, STORE_DLV_SIZE, &seg, &off), d->queue_id,
		                     d->msg_id);
		store_live_add(s, from, -(int64_t)STORE_DLV_SIZE, -1);
		store_live_add(s, seg, STORE_DLV_SIZE, 1);
		e->dlv = seg;
		return;
	case STORE_REC_ACK:
		if (!cancel_needed(s, d->seg, from))
			return;
		p = store_append(s, STORE_ACK_SIZE, &seg, &off);
		store_rec_encode_ack(p, d->queue_id, d->msg_id, d->seg);
		store_pin(s, seg, d->seg);
		return;
	case STORE_REC_QDROP:
		if (!cancel_needed(s, d->lo, from))
			return;
		/*
		 * A carried QDROP cancels only entries older than its first
		 * segment: entries of a re-created queue may follow it there.
		 */
		p = store_append(s, STORE_QDROP_SIZE, &seg, &off);
		store_rec_encode_qdrop(p, d->queue_id, d->seg == from ? from - 1 : d->seg, d->lo);
		store_pin(s, seg, d->lo);
		return;
	default:
		return;
	}
}

void store_compact_scan_done(struct store *s, struct store_scan *sc)
{
	struct store_seg *g = store_seg_find(s, sc->seg);

	if (!s->compacting || sc->seg != s->compact_seg || !g) {
		free(sc->d);
		free(sc);
		return;
	}
	for (size_t i = 0; i < sc->n; i++)
		keep_record(s, sc->seg, &sc->d[i]);
	g = store_seg_find(s, sc->seg); /* appends may have moved the table */
	if (sc->last) {
		s->compacting = false;
		if (sc->error || s->failed) {
			/* Some entries moved already: the old copies here are stale. */
			g->state = STORE_SEG_LIVE;
			store_seg_mark_stale(s, g);
		} else {
			doom(s, g);
			s->compactions++;
		}
	} else {
		request_chunk(s, sc->seg, sc->salt, false);
	}
	free(sc->d);
	free(sc);
}

void store_compact_batch_done(struct store *s, struct store_batch *b)
{
	if (!b->io_failed) {
		for (size_t i = 0; i < b->nrelocs; i++) {
			const struct store_reloc *r = &b->relocs[i];
			struct store_msg *m = store_idx_find(&s->msgs, r->msg_id);
			if (!m || m->seg != r->from_seg || !m->refs)
				continue;
			store_live_add(s, r->from_seg, -(int64_t)m->rec_len, -1);
			m->seg = r->to_seg;
			m->off = r->to_off;
			store_live_add(s, r->to_seg, (int64_t)m->rec_len, 1);
		}
	}
	if (!s->ndoomed)
		return;
	for (size_t i = 0; i < s->nsegs;) {
		struct store_seg *g = &s->segs[i];
		if (g->state != STORE_SEG_DOOMED || g->doom_batch != b->id) {
			i++;
			continue;
		}
		if (b->unlinked) {
			store_seg_remove(s, g->id);
			continue;
		}
		/* The unlink was refused (a failure): the segment stays, stale. */
		g->state = STORE_SEG_LIVE;
		s->ndoomed--;
		store_seg_mark_stale(s, g);
		i++;
	}
}
