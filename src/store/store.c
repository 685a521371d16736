/*
 * The store's life cycle and its loop-side plumbing: opening (directories,
 * the lock, the thread), the segment table, the pending batch that writes
 * append to, handing batches to the thread (store_kick) and taking them
 * back (the ev_async callback reports durable tickets), and closing.
 *
 * Invariants: batches reach the thread in the order they were filled and
 * come back in that order, so durable tickets are reported in increasing
 * order.  Segment ids only grow; only the head segment receives appends;
 * a segment leaves the table only after the thread unlinked it, which it
 * does only after the batch holding the unlink (and every copy out of the
 * segment before it) was written and synced without error.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"
#include "util/xalloc.h"

#define BATCH_KEEP_CAP (16u << 20) /* buffers above this are freed, not recycled */

static void errf(char *err, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (!err || !cap)
		return;
	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
}

char *store_seg_path(const struct store *s, uint32_t id)
{
	size_t n = strlen(s->msgs_dir) + 16;
	char *p = xmalloc(n);
	snprintf(p, n, "%s/%08" PRIx32 ".seg", s->msgs_dir, id);
	return p;
}

/* --- segment table --- */

struct store_seg *store_seg_find(struct store *s, uint32_t id)
{
	size_t lo = 0, hi = s->nsegs;

	if (s->nsegs && s->segs[s->nsegs - 1].id == id)
		return &s->segs[s->nsegs - 1];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->segs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->nsegs && s->segs[lo].id == id ? &s->segs[lo] : NULL;
}

/* Segments are created with growing ids, so adding is an append. */
struct store_seg *store_seg_add(struct store *s, uint32_t id, uint32_t salt, uint64_t size)
{
	if (s->nsegs == s->segcap) {
		s->segcap = s->segcap ? s->segcap * 2 : 16;
		s->segs = xrealloc(s->segs, s->segcap * sizeof(*s->segs));
	}
	struct store_seg *g = &s->segs[s->nsegs++];
	memset(g, 0, sizeof(*g));
	g->id = id;
	g->salt = salt;
	g->size = size;
	g->pin_min = STORE_NO_SEG;
	g->rfd = -1;
	g->state = STORE_SEG_LIVE;
	if (id >= s->next_seg_id)
		s->next_seg_id = id + 1;
	return g;
}

void store_seg_remove(struct store *s, uint32_t id)
{
	struct store_seg *g = store_seg_find(s, id);

	if (!g)
		return;
	store_seg_close_rfd(s, g);
	if (g->flags & STORE_SEGF_STALE)
		s->nstale--;
	if (g->state == STORE_SEG_DOOMED)
		s->ndoomed--;
	s->live_bytes_total -= g->live_bytes;
	size_t i = (size_t)(g - s->segs);
	memmove(g, g + 1, (s->nsegs - i - 1) * sizeof(*g));
	s->nsegs--;
	if (s->head_open && i == s->nsegs)
		s->head_open = false;
}

void store_seg_close_rfd(struct store *s, struct store_seg *g)
{
	if (g->rfd >= 0) {
		close(g->rfd);
		g->rfd = -1;
		s->nrfd--;
	}
}

int store_seg_rfd(struct store *s, struct store_seg *g)
{
	if (g->rfd >= 0)
		return g->rfd;
	/*
	 * Bound the descriptors kept for paging.  A segment being compacted or
	 * deleted keeps its own: the file may be unlinked before the messages'
	 * new locations are in use.
	 */
	for (size_t i = 0; i < s->nsegs && s->nrfd >= STORE_MAX_RFDS; i++)
		if (s->segs[i].state == STORE_SEG_LIVE)
			store_seg_close_rfd(s, &s->segs[i]);
	char *path = store_seg_path(s, g->id);
	g->rfd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (g->rfd >= 0)
		s->nrfd++;
	return g->rfd;
}

void store_live_add(struct store *s, uint32_t seg, int64_t bytes, int64_t recs)
{
	struct store_seg *g = store_seg_find(s, seg);

	if (!g)
		return;
	g->live_bytes = (uint64_t)((int64_t)g->live_bytes + bytes);
	g->live_recs = (uint64_t)((int64_t)g->live_recs + recs);
	s->live_bytes_total = (uint64_t)((int64_t)s->live_bytes_total + bytes);
}

bool store_seg_exists_in(struct store *s, uint32_t from, uint32_t to)
{
	size_t lo = 0, hi = s->nsegs;

	if (from >= to)
		return false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->segs[mid].id < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->nsegs && s->segs[lo].id < to;
}

bool store_stale_before(struct store *s, uint32_t id)
{
	if (!s->nstale)
		return false;
	for (size_t i = 0; i < s->nsegs && s->segs[i].id < id; i++)
		if (s->segs[i].flags & STORE_SEGF_STALE)
			return true;
	return false;
}

bool store_seg_pinned(struct store *s, const struct store_seg *g)
{
	if (g->pin_min != STORE_NO_SEG && store_seg_exists_in(s, g->pin_min, g->id))
		return true;
	return (g->flags & STORE_SEGF_CANCELS) && store_stale_before(s, g->id);
}

void store_seg_mark_stale(struct store *s, struct store_seg *g)
{
	if (!(g->flags & STORE_SEGF_STALE)) {
		g->flags |= STORE_SEGF_STALE;
		s->nstale++;
	}
}

/* --- batches --- */

static struct store_batch *batch_new(struct store *s)
{
	struct store_batch *b = s->spare;

	if (b) {
		s->spare = b->next;
		s->nspare--;
		b->len = b->nops = b->nrelocs = 0;
		b->upto = 0;
		b->error = 0;
		b->io_failed = false;
	} else {
		b = xcalloc(1, sizeof(*b));
	}
	b->next = NULL;
	b->id = ++s->next_batch_id;
	return b;
}

void store_batch_free(struct store_batch *b)
{
	free(b->buf);
	free(b->ops);
	free(b->relocs);
	free(b);
}

static void batch_recycle(struct store *s, struct store_batch *b)
{
	if (b->cap > BATCH_KEEP_CAP || s->nspare >= 2) {
		store_batch_free(b);
		return;
	}
	b->next = s->spare;
	s->spare = b;
	s->nspare++;
}

static struct store_op *batch_op(struct store_batch *b)
{
	if (b->nops == b->opcap) {
		b->opcap = b->opcap ? b->opcap * 2 : 16;
		b->ops = xrealloc(b->ops, b->opcap * sizeof(*b->ops));
	}
	struct store_op *op = &b->ops[b->nops++];
	memset(op, 0, sizeof(*op));
	return op;
}

static uint8_t *batch_room(struct store_batch *b, uint64_t size)
{
	if (b->cap - b->len < size) {
		size_t cap = b->cap ? b->cap : 64u << 10;
		while (cap - b->len < size)
			cap *= 2;
		b->buf = xrealloc(b->buf, cap);
		b->cap = cap;
	}
	uint8_t *p = b->buf + b->len;
	b->len += (size_t)size;
	return p;
}

static uint32_t next_salt(struct store *s)
{
	/* xorshift64*: salts need to be unpredictable to clients, not strong. */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return (uint32_t)((s->rng * 0x2545F4914F6CDD1Dull) >> 32);
}

static struct store_seg *open_head(struct store *s)
{
	uint32_t salt = next_salt(s);
	struct store_seg *g = store_seg_add(s, s->next_seg_id, salt, STORE_SEG_HDR);
	struct store_batch *b = s->pending;
	struct store_op *op = batch_op(b);

	op->kind = STORE_OP_NEWSEG;
	op->seg = g->id;
	op = batch_op(b);
	op->kind = STORE_OP_HDR;
	op->seg = g->id;
	op->off = 0;
	op->len = STORE_SEG_HDR;
	op->src = b->len;
	store_seg_hdr_encode(batch_room(b, STORE_SEG_HDR), g->id, salt);
	s->head_open = true;
	return g;
}

/* The head segment, rolled over when a record of `size` would overflow it. */
static struct store_seg *head_for(struct store *s, uint64_t size)
{
	struct store_seg *g = s->head_open ? &s->segs[s->nsegs - 1] : NULL;

	if (!g || (g->size + size > s->segment_size && g->size > STORE_SEG_HDR))
		g = open_head(s);
	return g;
}

uint8_t *store_append(struct store *s, uint64_t size, uint32_t *seg, uint64_t *off)
{
	struct store_batch *b = s->pending;

	/* Writing before recovery would append to a state that ignores the disk. */
	assert(s->recovered);
	struct store_seg *g = head_for(s, size);
	struct store_op *last = b->nops ? &b->ops[b->nops - 1] : NULL;

	*seg = g->id;
	*off = g->size;
	if (last && last->kind == STORE_OP_DATA && last->seg == g->id &&
	    last->off + last->len == g->size && last->src + last->len == b->len) {
		last->len += size;
	} else {
		struct store_op *op = batch_op(b);
		op->kind = STORE_OP_DATA;
		op->seg = g->id;
		op->salt = g->salt;
		op->off = g->size;
		op->len = size;
		op->src = b->len;
	}
	g->size += size;
	s->append_seg = g->id;
	s->append_off = g->size;
	return batch_room(b, size);
}

void store_append_copy(struct store *s, const struct store_seg *src, uint64_t src_off,
                       uint32_t len, uint32_t *seg, uint64_t *off)
{
	uint32_t src_id = src->id, src_salt = src->salt; /* src moves if the table grows */
	struct store_seg *g = head_for(s, len);
	struct store_op *op = batch_op(s->pending);

	op->kind = STORE_OP_COPY;
	op->seg = g->id;
	op->salt = g->salt;
	op->off = g->size;
	op->len = len;
	op->src_seg = src_id;
	op->src_salt = src_salt;
	op->src = src_off;
	*seg = g->id;
	*off = g->size;
	g->size += len;
	s->append_seg = g->id;
	s->append_off = g->size;
}

void store_append_unlink(struct store *s, uint32_t seg)
{
	struct store_op *op = batch_op(s->pending);

	op->kind = STORE_OP_UNLINK;
	op->seg = seg;
}

void store_reloc_add(struct store *s, uint64_t msg_id, uint32_t from, uint32_t to, uint32_t to_off)
{
	struct store_batch *b = s->pending;

	if (b->nrelocs == b->reloccap) {
		b->reloccap = b->reloccap ? b->reloccap * 2 : 64;
		b->relocs = xrealloc(b->relocs, b->reloccap * sizeof(*b->relocs));
	}
	struct store_reloc *r = &b->relocs[b->nrelocs++];
	r->msg_id = msg_id;
	r->from_seg = from;
	r->to_seg = to;
	r->to_off = to_off;
}

void store_kick(struct store *s)
{
	struct store_batch *b = s->pending;

	/* A message written but enqueued nowhere is garbage: forget it now. */
	for (size_t i = 0; i < s->nfresh; i++) {
		struct store_msg *m = store_idx_find(&s->msgs, s->fresh[i]);
		if (m && m->refs == 0)
			store_idx_remove_slot(&s->msgs, m);
	}
	s->nfresh = 0;
	if ((!b->nops && !b->error) || !s->thread_started)
		return;
	b->upto = s->ticket;
	b->end_seg = s->append_seg;
	b->end_off = s->append_off;
	s->pending = batch_new(s);
	pthread_mutex_lock(&s->mu);
	if (s->todo_tail)
		s->todo_tail->next = b;
	else
		s->todo_head = b;
	s->todo_tail = b;
	s->ctr.batches++;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* --- results from the thread --- */

/*
 * Take back what the thread finished: compaction scan chunks (which append
 * copies to the pending batch) and written batches, reporting durable
 * tickets in order when `report` is set.
 */
static void drain(struct store *s, bool report)
{
	struct store_batch *done;
	struct store_scan *scans;
	uint64_t ok_upto = 0;

	pthread_mutex_lock(&s->mu);
	done = s->done_head;
	s->done_head = s->done_tail = NULL;
	scans = s->scans_head;
	s->scans_head = s->scans_tail = NULL;
	pthread_mutex_unlock(&s->mu);

	while (scans) {
		struct store_scan *next = scans->next;
		if (s->closing) {
			free(scans->d);
			free(scans);
		} else {
			store_compact_scan_done(s, scans);
		}
		scans = next;
	}
	while (done) {
		struct store_batch *b = done;
		done = b->next;
		if (b->io_failed)
			s->failed = true;
		s->written_seg = b->end_seg;
		s->written_off = b->end_off;
		s->done_batch_id = b->id;
		store_compact_batch_done(s, b);
		if (b->upto > s->durable) {
			if (b->error) {
				if (ok_upto && report)
					s->cb(s->cb_ctx, ok_upto, 0);
				ok_upto = 0;
				s->durable = b->upto;
				if (report)
					s->cb(s->cb_ctx, b->upto, b->error);
			} else {
				ok_upto = b->upto;
				s->durable = b->upto;
			}
		}
		batch_recycle(s, b);
	}
	if (ok_upto && report)
		s->cb(s->cb_ctx, ok_upto, 0);
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	drain(w->data, true);
}

/* --- open and close --- */

static int mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	int rc = 0;

	for (char *q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			rc = -1;
			break;
		}
		*q = '/';
	}
	if (rc == 0 && mkdir(p, mode) < 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

int store_open_dir(struct store **out, const char *dir, bool create, int lock_op, char *err,
                   size_t errcap)
{
	struct store *s = xcalloc(1, sizeof(*s));
	size_t n = strlen(dir);
	char *lock_path;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	s->dir = xmalloc(n + 1);
	memcpy(s->dir, dir, n);
	s->dir[n] = '\0';
	s->msgs_dir = xmalloc(n + 6);
	snprintf(s->msgs_dir, n + 6, "%s/msgs", s->dir);
	s->lock_fd = s->msgs_fd = -1;
	s->next_seg_id = 1;
	s->segment_size = 64u << 20;
	store_idx_init(&s->msgs, sizeof(struct store_msg));
	store_idx_init(&s->queues, sizeof(struct store_qslot));
	*out = NULL;

	if (create && (mkdir_p(s->dir, 0750) < 0 || (mkdir(s->msgs_dir, 0750) < 0 && errno != EEXIST))) {
		errf(err, errcap, "cannot create data directory %s: %s", s->dir, strerror(errno));
		goto fail;
	}
	lock_path = xmalloc(n + 6);
	snprintf(lock_path, n + 6, "%s/lock", s->dir);
	s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0 && !create)
		s->lock_fd = open(lock_path, O_RDONLY | O_CLOEXEC);
	if (s->lock_fd < 0 && !(errno == ENOENT && !create)) {
		errf(err, errcap, "cannot open lock file %s: %s", lock_path, strerror(errno));
		free(lock_path);
		goto fail;
	}
	/* Offline tools on a directory no broker ever locked need no lock. */
	if (lock_op && s->lock_fd >= 0 && flock(s->lock_fd, lock_op | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			errf(err, errcap, "data directory %s is in use by another process (lock %s)",
			     s->dir, lock_path);
		else
			errf(err, errcap, "cannot lock %s: %s", lock_path, strerror(errno));
		free(lock_path);
		goto fail;
	}
	free(lock_path);
	s->msgs_fd = open(s->msgs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->msgs_fd < 0) {
		errf(err, errcap, "cannot open %s: %s", s->msgs_dir, strerror(errno));
		goto fail;
	}
	if (getrandom(&s->rng, sizeof(s->rng), GRND_NONBLOCK) != sizeof(s->rng))
		s->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	s->rng |= 1;
	s->pending = batch_new(s);
	*out = s;
	return 0;
fail:
	store_free(s);
	return -1;
}

int store_open(struct store **out, const struct store_config *cfg, struct ev_loop *loop,
               store_durable_fn cb, void *ctx, char *err, size_t errcap)
{
	struct store *s;
	sigset_t all, old;

	if (!cfg || !cfg->dir || !*cfg->dir) {
		errf(err, errcap, "no data directory configured");
		return -1;
	}
	if (store_open_dir(&s, cfg->dir, true, LOCK_EX, err, errcap) < 0)
		return -1;
	s->loop = loop;
	s->cb = cb;
	s->cb_ctx = ctx;
	s->sync = cfg->sync;
	s->batch_ms = cfg->batch_ms ? cfg->batch_ms : 10;
	if (cfg->segment_size)
		s->segment_size = cfg->segment_size;
	if (s->segment_size < (64u << 10))
		s->segment_size = 64u << 10;
	if (s->segment_size > (1u << 30))
		s->segment_size = 1u << 30;

	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	s->sync_init = true;

	ev_async_init(&s->async, async_cb);
	s->async.data = s;
	ev_async_start(loop, &s->async);
	/* The store alone must not keep ev_run from returning. */
	ev_unref(loop);

	/* Signals belong to the loop thread (ev_signal), not to ours. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&s->thread, NULL, store_thread_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errf(err, errcap, "cannot start the store thread for %s: %s", s->dir, strerror(rc));
		store_close(s);
		return -1;
	}
	s->thread_started = true;
	*out = s;
	return 0;
}

void store_free(struct store *s)
{
	struct store_batch *b;
	size_t it = 0;
	struct store_qslot *qs;

	while ((qs = store_idx_next(&s->queues, &it)))
		store_queue_free(qs->q);
	store_idx_free(&s->queues);
	store_idx_free(&s->msgs);
	for (size_t i = 0; i < s->nsegs; i++)
		if (s->segs[i].rfd >= 0)
			close(s->segs[i].rfd);
	free(s->segs);
	free(s->fresh);
	if (s->pending)
		store_batch_free(s->pending);
	while ((b = s->spare)) {
		s->spare = b->next;
		store_batch_free(b);
	}
	if (s->sync_init) {
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->cv);
	}
	if (s->msgs_fd >= 0)
		close(s->msgs_fd);
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	free(s->dir);
	free(s->msgs_dir);
	free(s);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->thread_started) {
		store_kick(s);
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		s->hold = false;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
		s->thread_started = false;
		s->closing = true;
		drain(s, false);
		/* A compaction cut short leaves superseded copies behind. */
		if (s->compacting) {
			struct store_seg *g = store_seg_find(s, s->compact_seg);
			if (g) {
				g->state = STORE_SEG_LIVE;
				store_seg_mark_stale(s, g);
			}
			s->compacting = false;
		}
		/* Anything the loop queued while draining (copies of a scan) is dropped. */
		if (!s->failed && s->recovered)
			store_checkpoint_write(s);
	}
	if (s->loop) {
		ev_ref(s->loop);
		ev_async_stop(s->loop, &s->async);
	}
	store_free(s);
}

/* --- small accessors --- */

uint64_t store_last_ticket(const struct store *s)
{
	return s->ticket;
}

uint64_t store_durable_ticket(const struct store *s)
{
	return s->durable;
}

uint64_t store_max_msg_id(const struct store *s)
{
	return s->max_msg_id;
}

void store_counters_get(struct store *s, struct store_counters *c)
{
	pthread_mutex_lock(&s->mu);
	*c = s->ctr;
	pthread_mutex_unlock(&s->mu);
	c->compactions = s->compactions;
	c->live_bytes = s->live_bytes_total;
	c->segments = s->nsegs;
	c->segment_bytes = 0;
	for (size_t i = 0; i < s->nsegs; i++)
		c->segment_bytes += s->segs[i].size;
}

void store_debug_hold(struct store *s, bool hold)
{
	pthread_mutex_lock(&s->mu);
	s->hold = hold;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void store_debug_seed(struct store *s, uint64_t seed)
{
	s->rng = seed | 1;
}
