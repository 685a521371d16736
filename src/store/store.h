/*
 * The message store: persistent messages and the durable queues' contents
 * on disk, plus the broker's definitions file.  It knows nothing about
 * channels, queues or sockets: the broker hands it messages (written once,
 * referenced by several queues) and queue events (enqueue, deliver, ack,
 * drop), and learns through one callback when they are durable.
 *
 * Threading: every function here runs on the event-loop thread.  Writes
 * only append to an in-memory batch and return a ticket; store_kick (from
 * the loop's before-sleep hook) hands the batch to the store thread, which
 * writes it, fdatasyncs once for everything queued (group commit) and
 * wakes the loop through ev_async; the callback then reports the highest
 * durable ticket.  The loop blocks on disk only in store_open,
 * store_recover, store_msg_read, store_defs_* and store_close.
 *
 * Contract with the caller (checked where cheap, documented in README):
 *  - msg_id is non-zero and never reused while the store holds it; a
 *    queue holds a given msg_id at most once at a time.  A message written
 *    and not enqueued before the next store_kick is garbage.
 *  - store_recover runs once, after store_open and before any write.
 *  - after store_queue_drop(q) the queue id may be reused.
 *  - after a failed write or fsync (error != 0 in the callback) the store
 *    keeps writing later batches but never deletes a segment again until
 *    it is reopened, so a failure cannot cost data that was durable.
 * Layout of the data directory and the file formats: src/store/README.
 */
#ifndef WARREN_STORE_STORE_H
#define WARREN_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "codec/wire.h"

struct ev_loop;
struct store;

enum store_sync {
	STORE_SYNC_ALWAYS,   /* fdatasync before a batch is reported durable (default) */
	STORE_SYNC_BATCH_MS, /* fdatasync at most every batch_ms; report after it */
	STORE_SYNC_NEVER,    /* report after write(): the operator's trade */
};

struct store_config {
	const char *dir;       /* data dir: dir/lock, dir/defs.json, dir/msgs/ */
	enum store_sync sync;
	uint64_t segment_size; /* 0: 64 MiB; clamped to [64 KiB, 1 GiB] */
	uint32_t batch_ms;     /* STORE_SYNC_BATCH_MS interval; 0: 10 ms */
};

/*
 * Called on the loop thread when every operation with ticket <= upto is
 * durable (error 0) or failed (errno of the failed write/fsync).  Calls
 * come in increasing upto; each covers the tickets after the previous one.
 */
typedef void (*store_durable_fn)(void *ctx, uint64_t upto, int error);

/*
 * Creates the directories and takes an exclusive flock on dir/lock; -1 and
 * a one-line err naming the path on failure.  loop is required.
 */
int store_open(struct store **out, const struct store_config *cfg, struct ev_loop *loop,
               store_durable_fn cb, void *ctx, char *err, size_t errcap);
/*
 * Flush everything, fsync, join the thread and write the clean-shutdown
 * checkpoint.  The durable callback is not called from here.
 */
void store_close(struct store *s);

/* Appends to the batch (no syscalls) and returns a ticket (monotonic). */
uint64_t store_msg_write(struct store *s, uint64_t msg_id, struct bytes exchange,
                         struct bytes routing_key, struct bytes props, const uint8_t *body,
                         uint64_t body_len);
uint64_t store_enqueue(struct store *s, uint32_t queue_id, uint64_t msg_id);
/* Delivered-not-acked: such messages come back redelivered=true after a crash. */
uint64_t store_deliver(struct store *s, uint32_t queue_id, uint64_t msg_id);
/* Removed from the queue (ack, drop, expiry, purge). */
uint64_t store_ack(struct store *s, uint32_t queue_id, uint64_t msg_id);
/* The durable queue was deleted: all its entries go. */
uint64_t store_queue_drop(struct store *s, uint32_t queue_id);
uint64_t store_last_ticket(const struct store *s);
/* Highest ticket reported through the callback so far. */
uint64_t store_durable_ticket(const struct store *s);
/* Hand the pending batch to the store thread (once per loop iteration). */
void store_kick(struct store *s);

/*
 * Read back a stored message body (blocking pread; the page cache makes it
 * cheap) and verify its CRC.  body_len must be the message's body length.
 * 0, or -1 with errno: ENOENT (not stored), EAGAIN (not written yet: keep
 * the body until the write is durable), EINVAL (wrong length), EBADMSG
 * (damaged on disk), or the read's errno.
 */
int store_msg_read(struct store *s, uint64_t msg_id, uint8_t *body, uint64_t body_len);

/* Definitions: opaque bytes written atomically and synchronously. */
int store_defs_write(struct store *s, const uint8_t *data, size_t len, char *err, size_t errcap);
/* 0 and malloc'd *data; 1 if there is none yet; -1 on error (errno set). */
int store_defs_read(struct store *s, uint8_t **data, size_t *len);

struct store_recovered {
	uint32_t queue_id;
	uint64_t msg_id;
	uint64_t seq;        /* enqueue order within the store */
	bool delivered;
	struct bytes exchange, routing_key, props;
	const uint8_t *body; /* valid during the callback only */
	uint64_t body_len;
};

struct store_stats {
	uint64_t queues, messages, bytes, damaged_records, truncated_bytes;
	double seconds;
	uint64_t segments;       /* segment files found */
	uint64_t lost_entries;   /* queue entries whose message record was damaged */
	bool from_checkpoint;    /* the clean-shutdown checkpoint was used */
};

/*
 * Recovery: calls cb for each live message of every queue (queues in id
 * order, each in enqueue order); verifies the CRC of every record read,
 * truncates a torn tail of the last segment, skips and counts damaged
 * records.  0, or -1 if the directory cannot be read.
 */
int store_recover(struct store *s, void (*cb)(void *ctx, const struct store_recovered *m),
                  void *ctx, struct store_stats *st);
/* Highest msg_id seen by recovery (the broker continues above it). */
uint64_t store_max_msg_id(const struct store *s);

/*
 * Delete fully-acked segments; start compacting a sparse one (the reading
 * and copying happen in the store thread).  Cheap: call every second.
 */
void store_compact_maybe(struct store *s);

struct store_counters {
	uint64_t batches;         /* batches handed to the thread */
	uint64_t groups;          /* write rounds (each covers >= 1 batch) */
	uint64_t syncs;           /* fdatasync calls on segments */
	uint64_t dir_syncs;       /* fsync calls on msgs/ */
	uint64_t bytes_written;
	uint64_t segments_created, segments_deleted, compactions;
	uint64_t errors;          /* failed writes or syncs */
	uint64_t live_bytes, segment_bytes; /* loop's view: live data vs segment sizes */
	uint64_t segments;
};
void store_counters_get(struct store *s, struct store_counters *c);

/*
 * Offline (broker stopped): verify every file and print a summary; repair
 * rewrites damaged files keeping the intact records.  0 clean, 1 problems
 * repaired, 2 problems found and left, -1 could not check.
 */
int store_fsck(const char *dir, bool repair, FILE *out);
/* Print a queue's live messages. */
int store_dump(const char *dir, uint32_t queue_id, FILE *out);

#endif
