/*
 * Helpers shared by the store suites: a temporary data directory, a real
 * libev loop that receives the store's durable callbacks, and a copy of
 * whatever recovery handed over, so tests compare queues by value.
 */
#ifndef WARREN_TEST_STORE_TEST_UTIL_H
#define WARREN_TEST_STORE_TEST_UTIL_H

#include <check.h>
#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "store/store_int.h"

struct rmsg {
	uint32_t queue_id;
	uint64_t msg_id, seq;
	bool delivered;
	char *exchange, *routing_key, *props;
	size_t props_len;
	uint8_t *body;
	uint64_t body_len;
};

struct tstore {
	struct ev_loop *loop;
	struct store *s;
	char dir[64];
	struct store_config cfg;
	/* durable callbacks */
	uint64_t upto, calls;
	int last_error, first_error;
	bool order_ok; /* every upto was above the previous one */
	/* the last recovery */
	struct rmsg *got;
	size_t ngot, gotcap;
	struct store_stats st;
};

/* Callbacks used by ts_open (exposed for tests that open stores themselves). */
void ts_durable_cb(void *ctx, uint64_t upto, int error);
void ts_recovered_cb(void *ctx, const struct store_recovered *m);

/* mkdtemp data dir, new loop; segment_size 0 = default. */
void ts_init(struct tstore *t, uint64_t segment_size);
/* store_open + store_recover (fails the test on error). */
void ts_open(struct tstore *t);
void ts_close(struct tstore *t);
/* Close, then remove the checkpoint: the next open replays the segments. */
void ts_close_dirty(struct tstore *t);
void ts_reopen(struct tstore *t);
void ts_cleanup(struct tstore *t);
void ts_free_got(struct tstore *t);
/* Kick and run the loop until ticket is reported (10 s limit). */
void ts_wait(struct tstore *t, uint64_t ticket);
/* Run compaction rounds until nothing is in flight. */
void ts_compact(struct tstore *t);

/* Write a message with a text body and enqueue it on one queue. */
uint64_t ts_pub(struct tstore *t, uint64_t msg_id, uint32_t queue_id, const char *body);
/* Recovered messages of one queue, in order, as "id[*]" joined by spaces (* = delivered). */
const char *ts_queue_str(struct tstore *t, uint32_t queue_id, char *buf, size_t cap);

int ts_count_segments(const char *dir);
char *ts_path(const char *dir, const char *rel);
void ts_rm_rf(const char *dir);
void ts_copy_tree(const char *src, const char *dst);
uint64_t ts_file_size(const char *path);
/* Path of the segment with the highest id (malloc'd), NULL if none. */
char *ts_last_segment(const char *dir);
void ts_flip_byte(const char *path, uint64_t off);

/* The suite's other parts. */
TCase *store_recover_tcase(void);
TCase *store_space_tcase(void);
TCase *store_fsck_tcase(void);

#endif
