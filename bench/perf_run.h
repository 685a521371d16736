/*
 * Throughput mode internals shared by perf_run.c (threads, event loop,
 * the run) and perf_flow.c (what producers and consumers do on their
 * sockets).  Everything here belongs to one worker thread except
 * struct perf_run, whose fields are written before the threads start
 * (or are atomics).
 */
#ifndef WARREN_BENCH_PERF_RUN_H
#define WARREN_BENCH_PERF_RUN_H

#include <pthread.h>

#include "bench/perf.h"
#include "bench/perf_topo.h"

/* Frames of one message, prebuilt: per routing key the publish method
 * and content header, then the body frames shared by all keys. */
struct perf_msgs {
	int nkeys;
	uint8_t *hdr;
	size_t *hdr_off;    /* key k: hdr[hdr_off[k] .. hdr_off[k+1]) */
	uint8_t *body;
	size_t body_len;
	size_t max_len;     /* largest whole message */
};

/* What the epoll loop knows about a socket (first member of both). */
struct perf_link {
	struct perf_conn c;
	bool can_read, can_write;
};

struct perf_producer {
	struct perf_link l;
	int index;
	int key;                /* next routing key */
	uint64_t seq, sent;
	uint64_t next_ns;       /* pacing: next send time */
	/* confirms: tags (acked, tag] are outstanding, ring-indexed */
	uint64_t tag, acked, outstanding;
	size_t ring;
	uint8_t *pending;
	uint64_t *sent_ns;
	bool finished;          /* --count reached and all confirmed */
};

enum perf_kstate { PERF_K_METHOD, PERF_K_HEADER, PERF_K_BODY };

struct perf_consumer {
	struct perf_link l;
	int index;
	enum perf_kstate state;
	uint64_t tag, body_left, ts;
	bool ts_valid, first;
	uint64_t unacked, last_tag;
};

struct perf_run;

struct perf_worker {
	pthread_t th;
	struct perf_run *run;
	struct perf_consumer *cons;
	struct perf_producer *prod;
	int ncons, nprod;
	int ep;
	struct perf_stats *stats;
};

struct perf_run {
	const struct perf_opts *o;
	struct perf_topo topo;
	struct perf_msgs msgs;
	uint32_t frame_max;
	uint64_t interval_ns;   /* pacing; 0 = unpaced */
	bool key_step;          /* topic: each message takes the next key */
	struct perf_worker *workers;
	int nworkers;
	/* workers have connected / the reporter took its first snapshot */
	pthread_barrier_t ready, go;
	atomic_bool stop, failed;
	atomic_int producers_done;
	/* --count: when the consumers went quiet (reporter thread only) */
	uint64_t last_delivered, quiet_since;
};

/* Build the frames of every routing key's message; 0 or -1 (memory). */
int perf_msgs_build(struct perf_msgs *m, const struct perf_topo *t,
                    const struct perf_opts *o, uint32_t frame_max);
void perf_msgs_free(struct perf_msgs *m);

/* Read what the broker sent a producer: confirms, returns, errors. */
int perf_producer_read(struct perf_worker *w, struct perf_producer *p);
/*
 * Publish what the window, the rate and the buffer allow and write it.
 * 1 if the producer could go on at once, 0 if it waits (*wake lowered to
 * its next paced send), -1 on error.
 */
int perf_produce(struct perf_worker *w, struct perf_producer *p,
                 uint64_t *wake);
/* Read and parse deliveries, record latency, send acks. */
int perf_consume(struct perf_worker *w, struct perf_consumer *k);

#endif
