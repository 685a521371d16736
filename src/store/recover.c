/*
 * Recovery: rebuild the in-memory state from disk, then hand every live
 * message to the broker, queue by queue in enqueue order.
 *
 * After a clean shutdown the checkpoint describes the state exactly and
 * only live message records are read (cost proportional to live data).
 * Otherwise every segment is scanned in id order and its records replayed:
 *   MSG   the message's location (a later copy supersedes an earlier one)
 *   ENQ   the entry, with its sequence number and delivered flag (a later
 *         ENQ for the same entry replaces it, and marks the segment of the
 *         earlier one stale)
 *   DLV   the entry was delivered
 *   ACK   the entry goes if its ENQ segment <= the one the ACK names
 *   QDROP the queue's entries with ENQ segment <= its limit go
 * Entries whose message record is missing are dropped and counted, and
 * messages no entry refers to are forgotten.  A damaged region is skipped
 * (resynchronising on the next good record) and counted; garbage at the
 * end of the last segment is a torn write and is truncated.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"
#include "util/xalloc.h"

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static bool seg_name(const char *name, uint32_t *id)
{
	uint32_t v = 0;

	if (strlen(name) != 12 || strcmp(name + 8, ".seg") != 0)
		return false;
	for (int i = 0; i < 8; i++) {
		char c = name[i];
		uint32_t d;
		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (uint32_t)(c - 'a' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	*id = v;
	return v != 0 && v != STORE_NO_SEG;
}

int store_list_segments(const char *msgs_dir, uint32_t **ids, size_t *n)
{
	DIR *d = opendir(msgs_dir);
	struct dirent *de;
	size_t cap = 0;

	*ids = NULL;
	*n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		uint32_t id;
		if (!seg_name(de->d_name, &id))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*ids = xrealloc(*ids, cap * sizeof(**ids));
		}
		(*ids)[(*n)++] = id;
	}
	closedir(d);
	if (*n)
		qsort(*ids, *n, sizeof(**ids), cmp_u32);
	return 0;
}

/* --- replay --- */

static void apply(struct store *s, uint32_t seg, uint64_t off, uint32_t len,
                  const struct store_rec *r)
{
	struct store_queue *q;
	struct store_ent *e;
	struct store_msg *m;
	bool existed;

	switch (r->type) {
	case STORE_REC_MSG:
		m = store_idx_insert(&s->msgs, r->msg_id, &existed);
		m->seg = seg;
		m->off = (uint32_t)off;
		m->rec_len = len;
		m->body_len = (uint32_t)r->body_len;
		m->flags = STORE_MSGF_VERIFIED;
		if (r->msg_id > s->max_msg_id)
			s->max_msg_id = r->msg_id;
		break;
	case STORE_REC_ENQ:
		q = store_queue_get(s, r->queue_id, true);
		e = store_idx_insert(&q->ents, r->msg_id, &existed);
		if (existed && e->enq_seg != seg) {
			struct store_seg *old = store_seg_find(s, e->enq_seg);
			if (old)
				store_seg_mark_stale(s, old);
		}
		e->seq = r->seq;
		e->enq_seg = seg;
		e->dlv = r->flags & STORE_ENQ_DELIVERED ? STORE_DLV_IN_ENQ : 0;
		if (r->seq > s->ticket)
			s->ticket = r->seq;
		break;
	case STORE_REC_DLV:
		q = store_queue_get(s, r->queue_id, false);
		e = q ? store_idx_find(&q->ents, r->msg_id) : NULL;
		if (e)
			e->dlv = seg;
		break;
	case STORE_REC_ACK:
		q = store_queue_get(s, r->queue_id, false);
		e = q ? store_idx_find(&q->ents, r->msg_id) : NULL;
		if (e && e->enq_seg <= r->seg)
			store_idx_remove_slot(&q->ents, e);
		store_pin(s, seg, r->seg);
		break;
	case STORE_REC_QDROP:
		q = store_queue_get(s, r->queue_id, false);
		if (q) {
			size_t it = 0;
			while ((e = store_idx_next(&q->ents, &it)))
				if (e->enq_seg <= r->seg)
					store_idx_remove_iter(&q->ents, e, &it);
		}
		store_pin(s, seg, r->lo);
		break;
	default:
		break;
	}
}

static int scan_segment(struct store *s, uint32_t id, bool last, bool readonly,
                        struct store_stats *st)
{
	char *path = store_seg_path(s, id);
	uint8_t hdr[STORE_SEG_HDR];
	struct store_reader rd;
	struct store_rec rec;
	const uint8_t *p;
	uint32_t hid, salt, len;
	uint64_t off;
	struct stat sb;
	int fd, r;

	fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		free(path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	uint64_t size = (uint64_t)sb.st_size;
	ssize_t n = pread(fd, hdr, sizeof(hdr), 0);
	if (n != (ssize_t)sizeof(hdr) || store_seg_hdr_check(hdr, sizeof(hdr), &hid, &salt) < 0 ||
	    hid != id) {
		/* A last segment cut short in its header was being created: drop it. */
		if (last && size <= STORE_SEG_HDR && !readonly) {
			unlink(path);
			st->truncated_bytes += size;
		} else {
			st->damaged_records++;
		}
		close(fd);
		free(path);
		return 0;
	}
	free(path);
	store_seg_add(s, id, salt, size);
	store_reader_init(&rd, fd, salt, size, STORE_SEG_HDR);
	while ((r = store_reader_next(&rd, &p, &off, &len)) > 0) {
		if (store_rec_decode(p, len, &rec) < 0) {
			st->damaged_records++;
			continue;
		}
		apply(s, id, off, len, &rec);
	}
	st->damaged_records += rd.damaged;
	if (r < 0) {
		/* Unreadable from here on: count it, keep what was read. */
		st->damaged_records++;
	} else if (rd.tail < size) {
		if (last) {
			st->truncated_bytes += size - rd.tail;
			if (!readonly && (ftruncate(fd, (off_t)rd.tail) < 0 || fdatasync(fd) < 0)) {
				store_reader_free(&rd);
				close(fd);
				return -1;
			}
			store_seg_find(s, id)->size = rd.tail;
		} else {
			st->damaged_records++;
		}
	}
	store_reader_free(&rd);
	close(fd);
	return 0;
}

/* Join entries with messages, forget the dead, count what is live. */
static void finish_state(struct store *s, struct store_stats *st)
{
	struct store_qslot *qs;
	struct store_ent *e;
	struct store_msg *m;
	size_t it = 0;

	while ((qs = store_idx_next(&s->queues, &it))) {
		size_t jt = 0;
		while ((e = store_idx_next(&qs->q->ents, &jt))) {
			m = store_idx_find(&s->msgs, e->msg_id);
			if (!m) {
				st->lost_entries++;
				store_idx_remove_iter(&qs->q->ents, e, &jt);
				continue;
			}
			m->refs++;
			store_live_add(s, e->enq_seg, STORE_ENQ_SIZE, 1);
			if (e->dlv && e->dlv != STORE_DLV_IN_ENQ)
				store_live_add(s, e->dlv, STORE_DLV_SIZE, 1);
		}
		if (!qs->q->ents.n) {
			store_queue_free(qs->q);
			store_idx_remove_iter(&s->queues, qs, &it);
		}
	}
	it = 0;
	while ((m = store_idx_next(&s->msgs, &it))) {
		if (!m->refs) {
			store_idx_remove_iter(&s->msgs, m, &it);
			continue;
		}
		store_live_add(s, m->seg, (int64_t)m->rec_len, 1);
	}
}

int store_load(struct store *s, bool readonly, struct store_stats *st)
{
	uint32_t *ids;
	size_t n;
	int rc;

	if (store_list_segments(s->msgs_dir, &ids, &n) < 0)
		return -1;
	st->segments = n;
	rc = store_checkpoint_load(s, ids, n);
	if (rc < 0) {
		free(ids);
		return -1;
	}
	if (rc == 0) {
		st->from_checkpoint = true;
	} else {
		for (size_t i = 0; i < n; i++) {
			if (scan_segment(s, ids[i], i + 1 == n, readonly, st) < 0) {
				free(ids);
				return -1;
			}
		}
		finish_state(s, st);
	}
	if (n && ids[n - 1] >= s->next_seg_id)
		s->next_seg_id = ids[n - 1] + 1;
	free(ids);
	s->head_open = false;
	if (s->nsegs) {
		s->written_seg = s->append_seg = s->segs[s->nsegs - 1].id;
		s->written_off = s->append_off = s->segs[s->nsegs - 1].size;
	}
	return 0;
}

/* --- handing the messages over --- */

struct dent {
	uint64_t seq, msg_id;
	bool delivered;
};

static int cmp_dent(const void *a, const void *b)
{
	uint64_t x = ((const struct dent *)a)->seq, y = ((const struct dent *)b)->seq;
	return x < y ? -1 : x > y;
}

struct maps {
	uint8_t **base;
	uint64_t *len;
	bool *tried;
};

static const uint8_t *map_seg(struct store *s, struct maps *mp, size_t i)
{
	struct store_seg *g = &s->segs[i];

	if (!mp->tried[i]) {
		mp->tried[i] = true;
		int fd = store_seg_rfd(s, g);
		if (fd >= 0 && g->size) {
			void *p = mmap(NULL, (size_t)g->size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
			if (p != MAP_FAILED) {
				madvise(p, (size_t)g->size, MADV_SEQUENTIAL);
				mp->base[i] = p;
				mp->len[i] = g->size;
			}
		}
	}
	return mp->base[i];
}

/* The message's record, verified (once) unless it was read by the scan. */
static bool msg_record(struct store *s, struct maps *mp, struct store_msg *m,
                       struct store_rec *r)
{
	struct store_seg *g;
	const uint8_t *base;
	uint32_t len;

	if (m->flags & STORE_MSGF_BAD)
		return false;
	g = store_seg_find(s, m->seg);
	base = g ? map_seg(s, mp, (size_t)(g - s->segs)) : NULL;
	if (!base || (uint64_t)m->off + m->rec_len > g->size)
		goto bad;
	if (!(m->flags & STORE_MSGF_VERIFIED)) {
		if (store_rec_check(base + m->off, m->rec_len, g->salt, m->off, &len) !=
		        STORE_CHECK_OK ||
		    len != m->rec_len)
			goto bad;
		m->flags |= STORE_MSGF_VERIFIED;
	}
	if (store_rec_decode(base + m->off, m->rec_len, r) < 0 || r->type != STORE_REC_MSG ||
	    r->msg_id != m->id || r->body_len != m->body_len)
		goto bad;
	return true;
bad:
	m->flags |= STORE_MSGF_BAD;
	return false;
}

/* Forget entries whose message turned out damaged (checkpoint path). */
static void drop_bad(struct store *s, struct store_stats *st)
{
	struct store_qslot *qs;
	struct store_msg *m;
	struct store_ent *e;
	size_t it = 0;

	while ((qs = store_idx_next(&s->queues, &it))) {
		size_t jt = 0;
		while ((e = store_idx_next(&qs->q->ents, &jt))) {
			m = store_idx_find(&s->msgs, e->msg_id);
			if (!m || !(m->flags & STORE_MSGF_BAD))
				continue;
			store_live_add(s, e->enq_seg, -(int64_t)STORE_ENQ_SIZE, -1);
			if (e->dlv && e->dlv != STORE_DLV_IN_ENQ)
				store_live_add(s, e->dlv, -(int64_t)STORE_DLV_SIZE, -1);
			store_idx_remove_iter(&qs->q->ents, e, &jt);
			if (--m->refs == 0) {
				store_live_add(s, m->seg, -(int64_t)m->rec_len, -1);
				store_idx_remove_slot(&s->msgs, m);
			}
		}
	}
}

int store_deliver_all(struct store *s, bool all, uint32_t queue_id,
                      void (*fn)(void *ctx, const struct store_recovered *m), void *ctx,
                      struct store_stats *st)
{
	struct maps mp;
	uint32_t *qids = NULL;
	size_t nq = 0, it = 0;
	struct store_qslot *qs;
	struct dent *ents = NULL;
	size_t entcap = 0;
	bool any_bad = false;

	mp.base = xcalloc(s->nsegs + 1, sizeof(*mp.base));
	mp.len = xcalloc(s->nsegs + 1, sizeof(*mp.len));
	mp.tried = xcalloc(s->nsegs + 1, sizeof(*mp.tried));
	qids = xmalloc((s->queues.n + 1) * sizeof(*qids));
	while ((qs = store_idx_next(&s->queues, &it)))
		if (all || qs->q->id == queue_id)
			qids[nq++] = qs->q->id;
	if (nq)
		qsort(qids, nq, sizeof(*qids), cmp_u32);

	for (size_t qi = 0; qi < nq; qi++) {
		struct store_queue *q = store_queue_get(s, qids[qi], false);
		struct store_ent *e;
		size_t n = 0, jt = 0;
		uint64_t delivered = 0;

		if (q->ents.n > entcap) {
			entcap = q->ents.n;
			ents = xrealloc(ents, entcap * sizeof(*ents));
		}
		while ((e = store_idx_next(&q->ents, &jt))) {
			ents[n].seq = e->seq;
			ents[n].msg_id = e->msg_id;
			ents[n].delivered = e->dlv != 0;
			n++;
		}
		if (n > 1)
			qsort(ents, n, sizeof(*ents), cmp_dent);
		for (size_t i = 0; i < n; i++) {
			struct store_msg *m = store_idx_find(&s->msgs, ents[i].msg_id);
			struct store_recovered out;
			struct store_rec r;

			if (!m || !msg_record(s, &mp, m, &r)) {
				if (m && (m->flags & STORE_MSGF_BAD)) {
					any_bad = true;
					st->lost_entries++;
				}
				continue;
			}
			out.queue_id = q->id;
			out.msg_id = m->id;
			out.seq = ents[i].seq;
			out.delivered = ents[i].delivered;
			out.exchange = r.exchange;
			out.routing_key = r.routing_key;
			out.props = r.props;
			out.body = r.body;
			out.body_len = r.body_len;
			fn(ctx, &out);
			delivered++;
			st->messages++;
			st->bytes += r.body_len;
		}
		if (delivered)
			st->queues++;
	}
	for (size_t i = 0; i < s->nsegs; i++) {
		if (mp.base[i])
			munmap(mp.base[i], (size_t)mp.len[i]);
		store_seg_close_rfd(s, &s->segs[i]);
	}
	if (any_bad) {
		/* Each damaged message record counts once, however many queues held it. */
		it = 0;
		struct store_msg *m;
		while ((m = store_idx_next(&s->msgs, &it)))
			if (m->flags & STORE_MSGF_BAD)
				st->damaged_records++;
		if (all)
			drop_bad(s, st);
	}
	free(ents);
	free(qids);
	free(mp.base);
	free(mp.len);
	free(mp.tried);
	return 0;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void ignore(void *ctx, const struct store_recovered *m)
{
}

int store_recover(struct store *s, void (*cb)(void *ctx, const struct store_recovered *m),
                  void *ctx, struct store_stats *st)
{
	struct store_stats local;
	double t0 = now_s();

	if (!st)
		st = &local;
	if (!cb)
		cb = ignore;
	memset(st, 0, sizeof(*st));
	if (s->recovered) {
		errno = EALREADY;
		return -1;
	}
	if (store_load(s, false, st) < 0)
		return -1;
	store_deliver_all(s, true, 0, cb, ctx, st);
	/* The checkpoint is consumed: new writes make it stale from here on. */
	char *cp = store_checkpoint_path(s);
	if (unlink(cp) == 0)
		fsync(s->msgs_fd);
	free(cp);
	s->recovered = true;
	s->durable = s->ticket; /* what recovery found is durable by definition */
	st->seconds = now_s() - t0;
	return 0;
}
