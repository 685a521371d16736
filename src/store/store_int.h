/*
 * Internals shared by the store's source files (never included outside
 * src/store and its tests).
 *
 * Ownership: everything above the "shared" marker in struct store belongs
 * to the loop thread; the thread owns struct store_thread; the fields
 * under the mutex are the only ones both touch.  A batch belongs to the
 * loop while it is being filled, to the thread from store_kick until the
 * thread posts it back, then to the loop again (which recycles it).
 *
 * Liveness bookkeeping, the heart of deletion and compaction: a record is
 * live while recovery would still need it.  A MSG record is live while its
 * message has queue entries; an ENQ record while its entry exists and it
 * is the entry's newest ENQ; a DLV record while it is the entry's delivered
 * mark.  Each segment counts its live records and bytes.  ACK and QDROP
 * records are not counted: instead the segment holding them is pinned
 * while an older segment holding an ENQ they cancel may still exist, that
 * is while a segment in [pin_min, id) exists, or any stale segment older
 * than it (STORE_SEGF_STALE: one that may hold superseded ENQ copies after
 * a compaction that did not finish).  A segment is deleted only when it
 * has no live record and is not pinned; compaction copies its live
 * records, and the ACK/QDROP records still needed, to the head first.
 */
#ifndef WARREN_STORE_STORE_INT_H
#define WARREN_STORE_STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "store/format.h"
#include "store/idx.h"
#include "store/store.h"

#define STORE_NO_SEG UINT32_MAX
#define STORE_MAX_RFDS 64u /* read descriptors kept open for paging */
#define STORE_DLV_IN_ENQ UINT32_MAX /* entry.dlv: the ENQ record carries the flag */

/* msgs: msg_id -> where its MSG record is and how many entries refer to it. */
#define STORE_MSGF_VERIFIED 0x01u /* recovery checked its CRC */
#define STORE_MSGF_BAD 0x02u      /* recovery found it damaged */

struct store_msg {
	uint64_t id;
	uint32_t seg, off, rec_len, body_len;
	uint32_t refs;
	uint32_t flags; /* STORE_MSGF_* */
};

/* A queue's entries: msg_id -> entry. */
struct store_ent {
	uint64_t msg_id;
	uint64_t seq;
	uint32_t enq_seg; /* segment of the entry's newest ENQ record */
	uint32_t dlv;     /* 0, segment of its DLV record, or STORE_DLV_IN_ENQ */
};

struct store_queue {
	uint32_t id;
	struct store_idx ents; /* of struct store_ent */
};

struct store_qslot {
	uint64_t key; /* queue_id + 1 */
	struct store_queue *q;
};

enum store_seg_state {
	STORE_SEG_LIVE,
	STORE_SEG_COMPACTING, /* the thread is scanning it; copies go to the head */
	STORE_SEG_DOOMED,     /* an unlink is queued behind the copies */
};

#define STORE_SEGF_STALE 0x01u   /* may hold superseded ENQ copies */
#define STORE_SEGF_CANCELS 0x02u /* holds ACK or QDROP records */

struct store_seg {
	uint32_t id;
	uint32_t salt;
	uint32_t pin_min;    /* STORE_NO_SEG, or the oldest segment an ACK/QDROP here refers to */
	uint8_t state;
	uint8_t flags;       /* STORE_SEGF_* */
	int rfd;             /* read descriptor (paging, compaction), -1 until needed */
	uint64_t size;       /* bytes appended so far (logical end) */
	uint64_t live_recs, live_bytes;
	uint64_t doom_batch; /* DOOMED: the batch carrying the unlink */
};

enum store_op_kind {
	STORE_OP_NEWSEG, /* create the segment file (its header follows as DATA) */
	STORE_OP_DATA,   /* records from buf, sealed by the thread */
	STORE_OP_HDR,    /* a segment header from buf (already has its CRC) */
	STORE_OP_COPY,   /* one record from another segment, re-sealed */
	STORE_OP_UNLINK, /* after the sync, if everything succeeded */
};

struct store_op {
	uint8_t kind;
	uint32_t seg, salt;         /* destination (or victim) */
	uint32_t src_seg, src_salt; /* COPY */
	uint64_t off;               /* destination offset */
	uint64_t len;
	uint64_t src;               /* DATA/HDR: offset in buf; COPY: offset in src_seg */
};

/* A message copied by compaction: its location changes once the copy is durable. */
struct store_reloc {
	uint64_t msg_id;
	uint32_t from_seg, to_seg, to_off;
};

struct store_batch {
	struct store_batch *next;
	uint64_t id;               /* sequence number of the batch */
	uint8_t *buf;
	size_t len, cap;
	struct store_op *ops;
	size_t nops, opcap;
	struct store_reloc *relocs; /* loop only */
	size_t nrelocs, reloccap;
	uint64_t upto;             /* highest ticket handed out when the batch was kicked */
	uint32_t end_seg;          /* head position once the batch is written */
	uint64_t end_off;
	int error;                 /* thread: errno of the first failure */
	bool io_failed;            /* thread: a write or sync failed (not just a refused record) */
	bool unlinked;             /* thread: the batch's unlinks were carried out */
};

/* Descriptors of one compaction scan chunk, thread -> loop. */
struct store_desc {
	uint8_t type, flags;
	uint32_t queue_id;
	uint32_t seg, lo;  /* ACK/QDROP fields */
	uint32_t off, len;
	uint64_t msg_id, seq;
};

struct store_scan {
	struct store_scan *next;
	uint32_t seg, salt;
	bool last;       /* the scan of this segment is complete */
	int error;
	size_t n, cap;
	struct store_desc *d;
};

struct store {
	/* --- loop thread --- */
	struct ev_loop *loop;
	ev_async async;
	store_durable_fn cb;
	void *cb_ctx;
	char *dir, *msgs_dir;
	int lock_fd;
	int msgs_fd;          /* msgs/ (fsync after creating files) */
	enum store_sync sync;
	uint64_t segment_size;
	uint32_t batch_ms;
	bool recovered;
	bool failed;          /* a write or sync failed: never delete again */
	bool closing;
	uint64_t ticket;      /* last ticket handed out */
	uint64_t durable;     /* last ticket reported */
	uint64_t max_msg_id;
	uint64_t rng;         /* xorshift state for segment salts */
	uint64_t next_batch_id;
	uint64_t done_batch_id;

	struct store_seg *segs; /* sorted by id */
	size_t nsegs, segcap;
	uint32_t next_seg_id;
	bool head_open;         /* segs[nsegs-1] takes appends */
	uint32_t written_seg;   /* everything before (written_seg, written_off) is on disk */
	uint64_t written_off;
	uint32_t append_seg;    /* where the last record appended ends */
	uint64_t append_off;

	struct store_idx msgs;   /* of struct store_msg */
	struct store_idx queues; /* of struct store_qslot */
	uint64_t *fresh;         /* msg ids written since the last kick */
	size_t nfresh, freshcap;

	struct store_batch *pending; /* being filled */
	struct store_batch *spare;   /* recycled */
	size_t nspare;
	bool compacting;             /* a scan is in flight */
	uint32_t compact_seg;

	uint64_t live_bytes_total;
	uint64_t compactions;
	size_t ndoomed;
	size_t nstale;       /* segments with STORE_SEGF_STALE */
	size_t nrfd;         /* open read descriptors */
	bool sync_init;

	/* --- shared, under mu --- */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool thread_started;
	bool stop;
	bool hold;                 /* tests: the thread takes no new batch */
	struct store_batch *todo_head, *todo_tail;
	struct store_batch *done_head, *done_tail;
	bool scan_want;            /* the loop wants the next chunk of a scan */
	bool scan_start;           /* ... of a new scan of scan_seg */
	uint32_t scan_seg, scan_salt;
	struct store_scan *scans_head, *scans_tail; /* chunks for the loop */
	struct store_counters ctr;  /* counters kept by the thread */
};

/* store.c */
/*
 * Open dir without thread or loop (fsck, dump) or as the first step of
 * store_open; lock_op is LOCK_EX, LOCK_SH or 0 (no lock).
 */
int store_open_dir(struct store **out, const char *dir, bool create, int lock_op, char *err,
                   size_t errcap);
void store_free(struct store *s);
struct store_seg *store_seg_find(struct store *s, uint32_t id);
struct store_seg *store_seg_add(struct store *s, uint32_t id, uint32_t salt, uint64_t size);
bool store_seg_pinned(struct store *s, const struct store_seg *g);
/* Does a segment with id in [from, to) exist? */
bool store_seg_exists_in(struct store *s, uint32_t from, uint32_t to);
bool store_stale_before(struct store *s, uint32_t id);
void store_seg_mark_stale(struct store *s, struct store_seg *g);
int store_seg_rfd(struct store *s, struct store_seg *g);
void store_seg_close_rfd(struct store *s, struct store_seg *g);
void store_seg_remove(struct store *s, uint32_t id);
void store_live_add(struct store *s, uint32_t seg, int64_t bytes, int64_t recs);
void store_reloc_add(struct store *s, uint64_t msg_id, uint32_t from, uint32_t to, uint32_t to_off);
/* Reserve room for a record of `size` bytes in the pending batch: returns where to encode it. */
uint8_t *store_append(struct store *s, uint64_t size, uint32_t *seg, uint64_t *off);
void store_append_copy(struct store *s, const struct store_seg *src, uint64_t src_off,
                       uint32_t len, uint32_t *seg, uint64_t *off);
void store_append_unlink(struct store *s, uint32_t seg);
void store_batch_free(struct store_batch *b);
char *store_seg_path(const struct store *s, uint32_t id);

/* flusher.c: the store thread */
void *store_thread_main(void *arg);

/* compact.c: loop side of deletion and compaction */
void store_compact_scan_done(struct store *s, struct store_scan *sc);
void store_compact_batch_done(struct store *s, struct store_batch *b);

/* checkpoint.c: the clean-shutdown image of the in-memory state */
int store_checkpoint_write(struct store *s);
/*
 * Load it if it matches the segment files exactly (ids, sizes, salts):
 * 0 loaded, 1 absent, unreadable or stale (state untouched).
 */
int store_checkpoint_load(struct store *s, const uint32_t *ids, size_t n);
char *store_checkpoint_path(const struct store *s);

/* write.c */
/* Record that an ACK/QDROP in seg cancels entries whose ENQ is in target (or older copies). */
void store_pin(struct store *s, uint32_t seg, uint32_t target);
struct store_queue *store_queue_get(struct store *s, uint32_t queue_id, bool create);
void store_queue_free(struct store_queue *q);

/* recover.c: also used offline by fsck and dump */
int store_list_segments(const char *msgs_dir, uint32_t **ids, size_t *n);
/*
 * Rebuild the in-memory state (segments, messages, queue entries, live
 * counts) from the checkpoint or by scanning every segment.  readonly:
 * change nothing on disk (no truncation, checkpoint kept).
 */
int store_load(struct store *s, bool readonly, struct store_stats *st);
/* Call fn for each live entry of one queue (or all: queue_id 0 with all set), in order. */
int store_deliver_all(struct store *s, bool all, uint32_t queue_id,
                      void (*fn)(void *ctx, const struct store_recovered *m), void *ctx,
                      struct store_stats *st);

/* Tests only: while held, the thread leaves queued batches alone. */
void store_debug_hold(struct store *s, bool hold);
/* Tests only: make segment salts (and so the files) deterministic. */
void store_debug_seed(struct store *s, uint64_t seed);

#endif
