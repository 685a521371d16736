/*
 * warren-perf: shared declarations of the load generator.
 *
 * The program is split by concern:
 *   warren-perf.c  the progress/summary reporting, main()
 *   perf_opts.c    the command line
 *   perf_conn.c    one AMQP client connection over a non-blocking socket:
 *                  handshake, buffered frame I/O, synchronous RPC helpers
 *   perf_hist.c    fixed log-linear latency histogram and the per-thread
 *                  counters the reporter samples
 *   perf_topo.c    exchange, queues and bindings: pipelined declarations
 *   perf_run.c     throughput mode: worker threads, event loop, the run
 *   perf_flow.c    throughput mode: what producers and consumers do
 *   perf_modes.c   connections, queues and churn modes
 *
 * Threads share nothing but their struct perf_stats, which each thread
 * writes alone (relaxed atomics, no locked instructions) and the reporter
 * reads once a second; every other object belongs to exactly one thread.
 */
#ifndef WARREN_BENCH_PERF_H
#define WARREN_BENCH_PERF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/wire.h"

enum perf_mode {
	PERF_MODE_THROUGHPUT,
	PERF_MODE_CONNECTIONS,
	PERF_MODE_QUEUES,
	PERF_MODE_CHURN,
};

enum perf_xtype {
	PERF_X_DIRECT,
	PERF_X_FANOUT,
	PERF_X_TOPIC,
};

/* Smallest body: it carries the send timestamp and a sequence number. */
#define PERF_MIN_SIZE 16

struct perf_opts {
	/* where and who */
	char host[256];
	char port[16];
	char user[128];
	char pass[128];
	char vhost[256];
	/* what */
	enum perf_mode mode;
	int producers, consumers, threads;
	size_t size;
	bool persistent, durable, auto_ack;
	unsigned confirm;        /* outstanding window; 0 = no confirms */
	unsigned prefetch;       /* 0 = unlimited */
	unsigned multi_ack;      /* ack every N deliveries, multiple=true */
	enum perf_xtype xtype;
	char exchange[128];      /* "" = default exchange (direct only) */
	bool exchange_set;       /* else "warren-perf.<type>" */
	char queue_prefix[96];
	int queues;
	int bindings;
	double rate;             /* per producer; 0 = unpaced */
	double time;             /* seconds; 0 = until --count is reached */
	double warmup;
	uint64_t count;          /* messages per producer / connections / queues */
	char *queue_args;        /* raw "k=v,..." */
	pid_t broker_pid;        /* 0 = not given */
	bool keep, json, quiet;
};

/* ---- command line (perf_opts.c) ---- */
void perf_opts_defaults(struct perf_opts *o);
/* Fill o from the URI (only the parts it has); 0 or -1 with a message. */
int perf_opts_uri(struct perf_opts *o, const char *uri);
/* 0 to run, 1 to exit successfully (--help, --version), -1 on a usage
 * error (already reported on stderr). */
int perf_opts_parse(struct perf_opts *o, int argc, char **argv);

/* ---- clock ---- */
uint64_t perf_now_ns(void);
/* VmRSS of pid in KiB, 0 if unreadable. */
uint64_t perf_rss_kb(pid_t pid);

/* ---- histogram and counters (perf_hist.c) ---- */

/*
 * Log-linear buckets over nanoseconds: values below 64 exact, then 32
 * buckets per power of two (at most ~3% error), up to 2^64.
 */
#define PERF_HIST_SUB_BITS 5
#define PERF_HIST_BUCKETS ((64 - PERF_HIST_SUB_BITS + 1) << PERF_HIST_SUB_BITS)

struct perf_hist {
	uint64_t n[PERF_HIST_BUCKETS];
	uint64_t total;
};

unsigned perf_hist_index(uint64_t v);
/* A value representative of bucket i (its middle). */
uint64_t perf_hist_value(unsigned i);
void perf_hist_clear(struct perf_hist *h);
/* Value at quantile q (0..1); 0 for an empty histogram. */
uint64_t perf_hist_quantile(const struct perf_hist *h, double q);
uint64_t perf_hist_max(const struct perf_hist *h);

enum perf_counter {
	PERF_C_PUBLISHED,
	PERF_C_DELIVERED,
	PERF_C_CONFIRMED,
	PERF_C_NACKED,
	PERF_C_RETURNED,
	PERF_C_CYCLES,        /* churn: connect/close cycles; others: ops */
	PERF_C_BYTES_OUT,
	PERF_C_BYTES_IN,
	PERF_C_COUNT,
};

/*
 * Written by one thread only, sampled by the reporter.  Two histograms:
 * end-to-end latency (consumers) and confirm latency (producers), or
 * handshake latency in churn mode.
 */
struct perf_stats {
	_Atomic uint64_t c[PERF_C_COUNT];
	_Atomic uint64_t lat[PERF_HIST_BUCKETS];
	_Atomic uint64_t clat[PERF_HIST_BUCKETS];
};

/* Single-writer increment: a plain load/add/store, never a locked op. */
static inline void perf_stat_add(_Atomic uint64_t *a, uint64_t n)
{
	atomic_store_explicit(a, atomic_load_explicit(a, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

static inline void perf_stat_lat(_Atomic uint64_t *hist, uint64_t ns)
{
	perf_stat_add(&hist[perf_hist_index(ns)], 1);
}

/* A sum of all threads' stats at one instant. */
struct perf_snap {
	uint64_t c[PERF_C_COUNT];
	struct perf_hist lat, clat;
};

void perf_snap_take(struct perf_snap *s, struct perf_stats *const *stats, int n);
/* d = b - a */
void perf_snap_diff(struct perf_snap *d, const struct perf_snap *b,
                    const struct perf_snap *a);

/* ---- connection (perf_conn.c) ---- */

struct perf_conn {
	int fd;
	uint32_t frame_max;
	uint8_t *in;
	size_t in_off, in_len, in_cap;
	uint8_t *out;
	size_t out_off, out_len, out_cap;
	char err[512];
};

/* The largest frame proposed: RabbitMQ's default. */
#define PERF_CONN_FRAME_MAX 131072u

/*
 * Open TCP, run the handshake and open channel 1.  0 or -1 with c->err.
 * The buffers are in_cap and out_cap bytes (at least 8 KiB); the frame_max
 * proposed is the broker's, at most PERF_CONN_FRAME_MAX and in_cap / 2, so
 * idle connections can be small.  The structure must be freed with
 * perf_conn_free() whatever this returns.
 */
int perf_conn_open(struct perf_conn *c, const struct perf_opts *o,
                   size_t in_cap, size_t out_cap);
/* Close politely (connection.close, wait up to wait_ms for close-ok). */
void perf_conn_close(struct perf_conn *c, int wait_ms);
/* The same in two steps, so many connections can close in parallel:
 * start flushes what is buffered and sends connection.close, both by the
 * deadline (-1: the socket was dropped instead); finish waits for
 * close-ok until its deadline and closes the socket. */
int perf_conn_close_start(struct perf_conn *c, uint64_t deadline_ns);
void perf_conn_close_finish(struct perf_conn *c, uint64_t deadline_ns);
/* Drop the socket without the AMQP goodbye, free the buffers. */
void perf_conn_free(struct perf_conn *c);

/* Append a method frame on channel 1; -1 if the buffer is full. */
int perf_conn_put_method(struct perf_conn *c, uint32_t id, const void *args);
/* Write everything buffered, waiting up to 30 s.  0 or -1. */
int perf_conn_flush(struct perf_conn *c);
/* One non-blocking write: 1 all written, 0 some left (EAGAIN), -1 error. */
int perf_conn_write_some(struct perf_conn *c);
/* One non-blocking read into the buffer: >0 bytes, 0 EAGAIN, -1 error/EOF. */
int perf_conn_read_some(struct perf_conn *c);

struct frame;
/* Next whole buffered frame: 1 found, 0 need more bytes, -1 bad stream. */
int perf_conn_next_frame(struct perf_conn *c, struct frame *f);

/*
 * Wait (up to 30 s) for the next method on channel 1, skipping heartbeats;
 * a channel.close or connection.close from the broker is an error whose
 * text lands in c->err.  Fills *id and args.
 */
union codec_method_args;
int perf_conn_wait_method(struct perf_conn *c, uint32_t *id,
                          union codec_method_args *args);
/* Send one method and wait for the reply 'want'. */
int perf_conn_rpc(struct perf_conn *c, uint32_t id, const void *args,
                  uint32_t want, union codec_method_args *reply);
/* Wait for 'want'; anything else is an error. */
int perf_conn_expect(struct perf_conn *c, uint32_t want,
                     union codec_method_args *reply);

/* ---- modes ---- */
int perf_run_throughput(const struct perf_opts *o);
int perf_run_connections(const struct perf_opts *o);
int perf_run_queues(const struct perf_opts *o);
int perf_run_churn(const struct perf_opts *o);

/* ---- reporting (warren-perf.c) ---- */

/*
 * The sampling loop shared by all modes: a progress line on stderr each
 * second, the snapshot that ends the warm-up, and the one that ends the
 * run; the summary is their difference.
 */
struct perf_report {
	const struct perf_opts *o;
	struct perf_stats **stats;
	int nstats;
	uint64_t start_ns, warm_ns, end_ns;
	double secs;                    /* measured: end - warm-up */
	struct perf_snap *warm, *last;  /* at warm_ns and end_ns */
	struct perf_snap *prev, *cur;   /* progress scratch */
};

int perf_report_init(struct perf_report *r, const struct perf_opts *o,
                     struct perf_stats **stats, int n);
/* The starting snapshot; perf_report_run() takes it if this was not called. */
void perf_report_start(struct perf_report *r);
/*
 * Run until --warmup + --time have passed (never with --time 0), or until
 * finished(arg) returns true (asked every 20 ms; NULL: never).
 */
void perf_report_run(struct perf_report *r, bool (*finished)(void *),
                     void *arg);
void perf_report_free(struct perf_report *r);

/* Summary output: key=value lines, or one JSON object with --json. */
struct perf_out {
	bool json;
	int n; /* keys written so far */
};

void perf_out_begin(struct perf_out *w, const struct perf_opts *o);
void perf_out_u64(struct perf_out *w, const char *key, uint64_t v);
void perf_out_f(struct perf_out *w, const char *key, double v);
void perf_out_s(struct perf_out *w, const char *key, const char *v);
void perf_out_end(struct perf_out *w);
/* The counters and latencies of a measured interval of secs seconds. */
void perf_out_snap(struct perf_out *w, const struct perf_snap *d, double secs);

/* Print to stderr with the program name prefix. */
void perf_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
