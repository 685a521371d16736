/*
 * The store thread: takes every batch queued since its last round, writes
 * them (sealing each record's CRC on the way), syncs once for the whole
 * round (group commit), carries out unlinks, and posts the batches back
 * to the loop with ev_async_send (the only libev call made here).  When
 * no batch waits it runs compaction scans one chunk at a time, so a scan
 * never delays a commit by more than one chunk.
 *
 * Invariants: batches are written and posted in queue order; nothing is
 * ever written at an offset below what an earlier batch wrote (offsets are
 * assigned by the loop and only grow), so a failed write cannot damage
 * data that was already durable; a segment is unlinked only after a sync
 * that covered every copy out of it, and never after any write or sync
 * has failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"
#include "util/xalloc.h"

#define SCAN_CHUNK_BYTES (1u << 20)
#define SCAN_CHUNK_DESCS 8192u
#define MAX_SYNC_FDS 8u
#define IOV_BATCH 256u

struct tfd {
	uint32_t seg;
	int fd;
};

struct tstate {
	struct store *s;
	bool failed;               /* a write or sync failed: no unlink, ever */
	int head_fd;
	uint32_t head_seg;
	struct tfd dirty[MAX_SYNC_FDS]; /* written since the last sync */
	size_t ndirty;
	bool dir_dirty;            /* a segment file was created since the last sync */
	int src_fd;                /* COPY source */
	uint32_t src_seg;
	uint8_t *tmp;
	size_t tmpcap;
	struct iovec iov[IOV_BATCH];
	size_t niov;
	int w_fd;
	uint64_t w_off, w_len;
	struct store_batch *held_head, *held_tail; /* written, waiting for a sync */
	struct timespec last_sync;
	struct store_counters ctr;  /* to add to s->ctr when posting */
	/* the compaction scan in progress */
	int scan_fd;
	uint32_t scan_seg;
	struct store_reader rd;
};

static double elapsed_ms(const struct timespec *since)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) * 1e3 +
	       (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

static void fail(struct tstate *t, struct store_batch *b, int err)
{
	if (!b->error)
		b->error = err;
	b->io_failed = true;
	t->failed = true;
	t->ctr.errors++;
}

static void mark_dirty(struct tstate *t, uint32_t seg, int fd)
{
	for (size_t i = 0; i < t->ndirty; i++)
		if (t->dirty[i].fd == fd)
			return;
	if (t->ndirty == MAX_SYNC_FDS) {
		/* Cannot happen with one head at a time; sync early rather than lose track. */
		fdatasync(t->dirty[0].fd);
		if (t->dirty[0].fd != t->head_fd)
			close(t->dirty[0].fd);
		memmove(t->dirty, t->dirty + 1, (MAX_SYNC_FDS - 1) * sizeof(t->dirty[0]));
		t->ndirty--;
	}
	t->dirty[t->ndirty].seg = seg;
	t->dirty[t->ndirty].fd = fd;
	t->ndirty++;
}

/* The descriptor to write segment seg (normally the head). */
static int wfd(struct tstate *t, uint32_t seg, bool create)
{
	char *path;
	int fd;

	if (!create && seg == t->head_seg && t->head_fd >= 0)
		return t->head_fd;
	for (size_t i = 0; i < t->ndirty; i++)
		if (t->dirty[i].seg == seg && !create)
			return t->dirty[i].fd;
	path = store_seg_path(t->s, seg);
	fd = open(path, O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0640);
	free(path);
	if (fd < 0)
		return -1;
	/* The previous head stays open until the next sync (it may be dirty). */
	if (t->head_fd >= 0) {
		bool dirty = false;
		for (size_t i = 0; i < t->ndirty; i++)
			dirty |= t->dirty[i].fd == t->head_fd;
		if (!dirty)
			close(t->head_fd);
	}
	t->head_fd = fd;
	t->head_seg = seg;
	if (create) {
		t->dir_dirty = true;
		t->ctr.segments_created++;
	}
	return fd;
}

static int pwritev_all(int fd, struct iovec *iov, int n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwritev(fd, iov, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		off += (uint64_t)w;
		size_t left = (size_t)w;
		while (n > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

static void flush_iov(struct tstate *t, struct store_batch *b)
{
	if (!t->niov)
		return;
	if (pwritev_all(t->w_fd, t->iov, (int)t->niov, t->w_off) < 0)
		fail(t, b, errno);
	else
		t->ctr.bytes_written += t->w_len;
	t->niov = 0;
}

/* Queue bytes for writing at (fd, off), coalescing with what is queued. */
static void put_iov(struct tstate *t, struct store_batch *b, int fd, uint64_t off,
                    uint8_t *p, uint64_t len)
{
	if (t->niov && (t->w_fd != fd || t->w_off + t->w_len != off || t->niov == IOV_BATCH))
		flush_iov(t, b);
	if (!t->niov) {
		t->w_fd = fd;
		t->w_off = off;
		t->w_len = 0;
	}
	t->iov[t->niov].iov_base = p;
	t->iov[t->niov].iov_len = (size_t)len;
	t->niov++;
	t->w_len += len;
}

static void seal_records(uint8_t *p, uint64_t len, uint32_t salt, uint64_t off)
{
	uint64_t pos = 0;

	while (pos + STORE_REC_HDR <= len) {
		uint32_t rl = STORE_REC_HDR + store_get32(p + pos + 4);
		store_rec_seal(p + pos, salt, off + pos);
		pos += rl;
	}
}

static int read_full(int fd, uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Copy one record from another segment, re-sealed for its new place. */
static void do_copy(struct tstate *t, struct store_batch *b, const struct store_op *op)
{
	uint32_t rl;
	int fd;

	flush_iov(t, b);
	if (t->src_fd < 0 || t->src_seg != op->src_seg) {
		if (t->src_fd >= 0)
			close(t->src_fd);
		char *path = store_seg_path(t->s, op->src_seg);
		t->src_fd = open(path, O_RDONLY | O_CLOEXEC);
		t->src_seg = op->src_seg;
		free(path);
	}
	if (t->tmpcap < op->len) {
		t->tmp = xrealloc(t->tmp, (size_t)op->len);
		t->tmpcap = (size_t)op->len;
	}
	if (t->src_fd < 0 || read_full(t->src_fd, t->tmp, (size_t)op->len, op->src) < 0 ||
	    store_rec_check(t->tmp, (size_t)op->len, op->src_salt, op->src, &rl) != STORE_CHECK_OK ||
	    rl != op->len) {
		/* The source went bad since the scan: keep the space, mark it filler. */
		store_rec_encode_pad(t->tmp, (size_t)op->len);
	}
	store_rec_seal(t->tmp, op->salt, op->off);
	fd = wfd(t, op->seg, false);
	if (fd < 0) {
		fail(t, b, errno);
		return;
	}
	mark_dirty(t, op->seg, fd);
	put_iov(t, b, fd, op->off, t->tmp, op->len);
	flush_iov(t, b);
}

static void write_batch(struct tstate *t, struct store_batch *b)
{
	for (size_t i = 0; i < b->nops; i++) {
		struct store_op *op = &b->ops[i];
		int fd;

		switch (op->kind) {
		case STORE_OP_NEWSEG:
			flush_iov(t, b);
			if (wfd(t, op->seg, true) < 0)
				fail(t, b, errno);
			break;
		case STORE_OP_DATA:
			seal_records(b->buf + op->src, op->len, op->salt, op->off);
			/* fall through */
		case STORE_OP_HDR:
			fd = wfd(t, op->seg, false);
			if (fd < 0) {
				fail(t, b, errno);
				break;
			}
			mark_dirty(t, op->seg, fd);
			put_iov(t, b, fd, op->off, b->buf + op->src, op->len);
			break;
		case STORE_OP_COPY:
			do_copy(t, b, op);
			break;
		case STORE_OP_UNLINK:
			break;
		}
	}
	flush_iov(t, b);
}

/* Sync everything written since the last sync; 0 or errno. */
static int sync_dirty(struct tstate *t)
{
	int err = 0;

	for (size_t i = 0; i < t->ndirty; i++) {
		if (fdatasync(t->dirty[i].fd) < 0 && !err)
			err = errno;
		t->ctr.syncs++;
		if (t->dirty[i].fd != t->head_fd)
			close(t->dirty[i].fd);
	}
	t->ndirty = 0;
	if (t->dir_dirty) {
		if (fsync(t->s->msgs_fd) < 0 && !err)
			err = errno;
		t->ctr.dir_syncs++;
		t->dir_dirty = false;
	}
	clock_gettime(CLOCK_MONOTONIC, &t->last_sync);
	return err;
}

static void do_unlinks(struct tstate *t, struct store_batch *b)
{
	bool any = false;

	for (size_t i = 0; i < b->nops; i++)
		any |= b->ops[i].kind == STORE_OP_UNLINK;
	if (!any)
		return;
	if (t->failed || b->io_failed)
		return;
	for (size_t i = 0; i < b->nops; i++) {
		const struct store_op *op = &b->ops[i];
		if (op->kind != STORE_OP_UNLINK)
			continue;
		if (op->seg == t->head_seg && t->head_fd >= 0) {
			close(t->head_fd);
			t->head_fd = -1;
			t->head_seg = STORE_NO_SEG;
		}
		if (op->seg == t->src_seg && t->src_fd >= 0) {
			close(t->src_fd);
			t->src_fd = -1;
		}
		char *path = store_seg_path(t->s, op->seg);
		if (unlink(path) == 0)
			t->ctr.segments_deleted++;
		free(path);
	}
	/*
	 * Make the unlinks durable before the loop learns of them: it may then
	 * drop records (ACKs) that only mattered while these segments existed,
	 * and a segment resurrected by a crash would bring entries back.
	 */
	if (fsync(t->s->msgs_fd) < 0) {
		/* The batch's own writes were synced; stop deleting from now on. */
		t->failed = true;
		b->io_failed = true;
		t->ctr.errors++;
	}
	t->ctr.dir_syncs++;
	b->unlinked = true;
}

static void post(struct tstate *t, struct store_batch *list, struct store_scan *sc)
{
	struct store *s = t->s;
	struct store_batch *last = list;

	while (last && last->next)
		last = last->next;
	pthread_mutex_lock(&s->mu);
	if (list) {
		if (s->done_tail)
			s->done_tail->next = list;
		else
			s->done_head = list;
		s->done_tail = last;
	}
	if (sc) {
		if (s->scans_tail)
			s->scans_tail->next = sc;
		else
			s->scans_head = sc;
		s->scans_tail = sc;
	}
	s->ctr.groups += t->ctr.groups;
	s->ctr.syncs += t->ctr.syncs;
	s->ctr.dir_syncs += t->ctr.dir_syncs;
	s->ctr.bytes_written += t->ctr.bytes_written;
	s->ctr.segments_created += t->ctr.segments_created;
	s->ctr.segments_deleted += t->ctr.segments_deleted;
	s->ctr.errors += t->ctr.errors;
	memset(&t->ctr, 0, sizeof(t->ctr));
	pthread_mutex_unlock(&s->mu);
	ev_async_send(s->loop, &s->async);
}

/* Sync what is held, then unlink and report it. */
static void release_held(struct tstate *t)
{
	struct store_batch *list = t->held_head;
	bool unlinks = false;
	int err;

	if (!list)
		return;
	for (struct store_batch *b = list; b; b = b->next)
		for (size_t i = 0; i < b->nops && !unlinks; i++)
			unlinks = b->ops[i].kind == STORE_OP_UNLINK;
	/* Unlinks wait for a sync of the copies even when syncing is off. */
	if (t->s->sync != STORE_SYNC_NEVER || unlinks) {
		err = sync_dirty(t);
		if (err)
			for (struct store_batch *b = list; b; b = b->next)
				fail(t, b, err);
	} else {
		for (size_t i = 0; i < t->ndirty; i++)
			if (t->dirty[i].fd != t->head_fd)
				close(t->dirty[i].fd);
		t->ndirty = 0;
	}
	for (struct store_batch *b = list; b; b = b->next)
		do_unlinks(t, b);
	t->held_head = t->held_tail = NULL;
	post(t, list, NULL);
}

static void write_round(struct tstate *t, struct store_batch *list)
{
	struct store_batch *last = list;

	for (struct store_batch *b = list; b; b = b->next) {
		write_batch(t, b);
		last = b;
	}
	t->ctr.groups++;
	if (t->held_tail)
		t->held_tail->next = list;
	else
		t->held_head = list;
	t->held_tail = last;
	if (t->s->sync != STORE_SYNC_BATCH_MS || elapsed_ms(&t->last_sync) >= t->s->batch_ms)
		release_held(t);
}

static void scan_close(struct tstate *t)
{
	if (t->scan_fd >= 0) {
		close(t->scan_fd);
		store_reader_free(&t->rd);
	}
	t->scan_fd = -1;
}

/* Read the next chunk of the segment being compacted into descriptors. */
static void scan_step(struct tstate *t, uint32_t seg, uint32_t salt, bool start)
{
	struct store_scan *sc = xcalloc(1, sizeof(*sc));
	const uint8_t *rec;
	uint64_t off, from;
	uint32_t len;
	struct stat st;

	sc->seg = seg;
	sc->salt = salt;
	if (start || t->scan_seg != seg) {
		scan_close(t);
		char *path = store_seg_path(t->s, seg);
		t->scan_fd = open(path, O_RDONLY | O_CLOEXEC);
		free(path);
		if (t->scan_fd >= 0 && fstat(t->scan_fd, &st) < 0) {
			close(t->scan_fd);
			t->scan_fd = -1;
		}
		if (t->scan_fd < 0) {
			sc->error = errno;
			sc->last = true;
			post(t, NULL, sc);
			return;
		}
		t->scan_seg = seg;
		store_reader_init(&t->rd, t->scan_fd, salt, (uint64_t)st.st_size, STORE_SEG_HDR);
	}
	from = t->rd.pos;
	for (;;) {
		int r = store_reader_next(&t->rd, &rec, &off, &len);
		if (r <= 0) {
			if (r < 0)
				sc->error = t->rd.error ? t->rd.error : EIO;
			sc->last = true;
			break;
		}
		struct store_rec d;
		if (store_rec_decode(rec, len, &d) < 0 || d.type == STORE_REC_PAD)
			continue;
		if (sc->n == sc->cap) {
			sc->cap = sc->cap ? sc->cap * 2 : 256;
			sc->d = xrealloc(sc->d, sc->cap * sizeof(*sc->d));
		}
		struct store_desc *x = &sc->d[sc->n++];
		x->type = d.type;
		x->flags = d.flags;
		x->queue_id = d.queue_id;
		x->seg = d.seg;
		x->lo = d.lo;
		x->off = (uint32_t)off;
		x->len = len;
		x->msg_id = d.msg_id;
		x->seq = d.seq;
		if (sc->n >= SCAN_CHUNK_DESCS || t->rd.pos - from >= SCAN_CHUNK_BYTES)
			break;
	}
	if (sc->last)
		scan_close(t);
	post(t, NULL, sc);
}

void *store_thread_main(void *arg)
{
	struct store *s = arg;
	struct tstate t;

	memset(&t, 0, sizeof(t));
	t.s = s;
	t.head_fd = t.src_fd = t.scan_fd = -1;
	t.head_seg = t.src_seg = t.scan_seg = STORE_NO_SEG;
	clock_gettime(CLOCK_MONOTONIC, &t.last_sync);

	for (;;) {
		struct store_batch *list = NULL;
		bool scan = false, start = false, stop;
		uint32_t seg = 0, salt = 0;

		pthread_mutex_lock(&s->mu);
		for (;;) {
			if (s->todo_head && !s->hold)
				break;
			if (s->scan_want && !s->hold && !s->stop)
				break;
			if (s->stop && !s->todo_head)
				break;
			if (t.held_head) {
				double left = s->batch_ms - elapsed_ms(&t.last_sync);
				if (left <= 0)
					break;
				struct timespec dl;
				clock_gettime(CLOCK_MONOTONIC, &dl);
				long ns = dl.tv_nsec + (long)(left * 1e6);
				dl.tv_sec += ns / 1000000000L;
				dl.tv_nsec = ns % 1000000000L;
				pthread_cond_timedwait(&s->cv, &s->mu, &dl);
			} else {
				pthread_cond_wait(&s->cv, &s->mu);
			}
		}
		if (s->todo_head && !s->hold) {
			list = s->todo_head;
			s->todo_head = s->todo_tail = NULL;
		} else if (s->scan_want && !s->stop) {
			scan = true;
			start = s->scan_start;
			seg = s->scan_seg;
			salt = s->scan_salt;
			s->scan_want = s->scan_start = false;
		}
		stop = s->stop;
		pthread_mutex_unlock(&s->mu);

		if (list)
			write_round(&t, list);
		else if (scan)
			scan_step(&t, seg, salt, start);
		else if (t.held_head)
			release_held(&t);
		else if (stop)
			break;
	}
	release_held(&t);
	scan_close(&t);
	if (t.head_fd >= 0)
		close(t.head_fd);
	if (t.src_fd >= 0)
		close(t.src_fd);
	free(t.tmp);
	return NULL;
}
