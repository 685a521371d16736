/*
 * The resource modes of warren-perf: what a broker pays per idle
 * connection (connections), per declared queue (queues), and how fast it
 * accepts and tears down connections (churn).  The first two read the
 * broker's resident set from /proc/PID/status before and after (with
 * --broker-pid), after a one-second pause so the broker has settled.
 *
 * Idle connections use small buffers (8 KiB, so frame_max 4096) because
 * thousands of them are held open at once; each has channel 1 open, like
 * an application that connected and is waiting for work.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/perf.h"
#include "bench/perf_topo.h"

#define PERF_IDLE_BUF 8192

static void perf_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Print the broker's RSS once a second for secs seconds. */
static void perf_hold(const struct perf_opts *o, double secs, const char *what)
{
	uint64_t end = perf_now_ns() + (uint64_t)(secs * 1e9);

	while (perf_now_ns() < end) {
		perf_sleep_ms(1000);
		if (!o->quiet && o->broker_pid)
			fprintf(stderr, "warren-perf: holding %s, broker rss %llu KiB\n",
			        what, (unsigned long long)perf_rss_kb(o->broker_pid));
	}
}

/* ---- connections ---- */

struct perf_opener {
	pthread_t th;
	const struct perf_opts *o;
	struct perf_conn *conns;
	uint64_t first, n, opened;
	struct perf_stats stats;
	atomic_bool *failed;
	atomic_int *running;
};

static void *perf_opener_main(void *arg)
{
	struct perf_opener *op = arg;

	for (uint64_t i = op->first; i < op->first + op->n; i++) {
		uint64_t t0 = perf_now_ns();
		if (atomic_load(op->failed))
			break;
		if (perf_conn_open(&op->conns[i], op->o, PERF_IDLE_BUF,
		                   PERF_IDLE_BUF) < 0) {
			perf_warn("connection %llu: %s", (unsigned long long)i,
			          op->conns[i].err);
			atomic_store(op->failed, true);
			break;
		}
		perf_stat_lat(op->stats.lat, perf_now_ns() - t0);
		perf_stat_add(&op->stats.c[PERF_C_CYCLES], 1);
		op->opened++;
	}
	atomic_fetch_sub(op->running, 1);
	return NULL;
}

static bool perf_openers_done(void *arg)
{
	return atomic_load((atomic_int *)arg) == 0;
}

int perf_run_connections(const struct perf_opts *o)
{
	uint64_t n = o->count ? o->count : 1000, rss0 = 0, rss1 = 0, t0, t1;
	int nt = o->threads > 0 ? o->threads : 1, status = 1;
	struct perf_conn *conns = calloc(n, sizeof(*conns));
	struct perf_opener *ops = calloc((size_t)nt, sizeof(*ops));
	struct perf_stats **stats = calloc((size_t)nt, sizeof(*stats));
	struct perf_opts phase = *o;
	struct perf_report rep;
	struct perf_out out;
	atomic_bool failed = false;
	atomic_int running = nt;

	memset(&rep, 0, sizeof(rep));
	if (!conns || !ops || !stats) {
		perf_warn("out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < n; i++)
		conns[i].fd = -1;
	if (o->broker_pid)
		rss0 = perf_rss_kb(o->broker_pid);
	t0 = perf_now_ns();
	for (int t = 0; t < nt; t++) {
		struct perf_opener *op = &ops[t];
		op->o = o;
		op->conns = conns;
		op->first = n * (uint64_t)t / (uint64_t)nt;
		op->n = n * (uint64_t)(t + 1) / (uint64_t)nt - op->first;
		op->failed = &failed;
		op->running = &running;
		stats[t] = &op->stats;
		if (pthread_create(&op->th, NULL, perf_opener_main, op) != 0) {
			perf_warn("cannot start threads");
			exit(1);
		}
	}
	/* progress while opening: no time limit, until all are open */
	phase.time = 0;
	phase.warmup = 0;
	if (perf_report_init(&rep, &phase, stats, nt) == 0)
		perf_report_run(&rep, perf_openers_done, &running);
	for (int t = 0; t < nt; t++)
		pthread_join(ops[t].th, NULL);
	t1 = perf_now_ns();
	if (atomic_load(&failed))
		goto close;

	perf_sleep_ms(1000);
	perf_hold(o, o->time, "connections");
	if (o->broker_pid)
		rss1 = perf_rss_kb(o->broker_pid);

	perf_snap_take(rep.cur, stats, nt);
	perf_out_begin(&out, o);
	perf_out_s(&out, "mode", "connections");
	perf_out_u64(&out, "connections", n);
	perf_out_f(&out, "open_s", (double)(t1 - t0) / 1e9);
	perf_out_f(&out, "connect_rate", (double)n * 1e9 / (double)(t1 - t0));
	perf_out_f(&out, "handshake_p50_us",
	           (double)perf_hist_quantile(&rep.cur->lat, 0.50) / 1e3);
	perf_out_f(&out, "handshake_p99_us",
	           (double)perf_hist_quantile(&rep.cur->lat, 0.99) / 1e3);
	if (o->broker_pid) {
		perf_out_u64(&out, "rss_before_kb", rss0);
		perf_out_u64(&out, "rss_after_kb", rss1);
		perf_out_f(&out, "rss_per_connection_kb",
		           ((double)rss1 - (double)rss0) / (double)n);
	}
	perf_out_end(&out);
	status = 0;
close:
	{
		uint64_t deadline = perf_now_ns() + 5000000000ull;
		for (uint64_t i = 0; i < n; i++)
			perf_conn_close_start(&conns[i], deadline);
		deadline = perf_now_ns() + 5000000000ull;
		for (uint64_t i = 0; i < n; i++) {
			perf_conn_close_finish(&conns[i], deadline);
			perf_conn_free(&conns[i]);
		}
	}
out:
	perf_report_free(&rep);
	free(conns);
	free(ops);
	free(stats);
	return status;
}

/* ---- queues ---- */

int perf_run_queues(const struct perf_opts *o)
{
	struct perf_opts qo = *o;
	struct perf_topo topo;
	struct perf_conn ctl;
	struct perf_out out;
	uint64_t rss0 = 0, rss1 = 0, t0, t1, t2 = 0, t3 = 0;
	int n, status = 1;

	qo.queues = n = o->count ? (int)o->count : 10000;
	qo.xtype = PERF_X_DIRECT;
	if (perf_topo_init(&topo, &qo) < 0)
		return 1;
	if (perf_conn_open(&ctl, o, 2 * PERF_CONN_FRAME_MAX,
	                   2 * PERF_CONN_FRAME_MAX) < 0) {
		perf_warn("%s", ctl.err);
		goto out;
	}
	if (perf_topo_delete_queues(&ctl, &topo, 0, n) < 0)
		goto fail;
	if (o->broker_pid)
		rss0 = perf_rss_kb(o->broker_pid);
	t0 = perf_now_ns();
	if (perf_topo_declare_queues(&ctl, &topo, 0, n) < 0)
		goto fail;
	t1 = perf_now_ns();
	if (!o->quiet)
		fprintf(stderr, "warren-perf: declared %d queues in %.3f s\n", n,
		        (double)(t1 - t0) / 1e9);
	perf_sleep_ms(1000);
	perf_hold(o, o->time, "queues");
	if (o->broker_pid)
		rss1 = perf_rss_kb(o->broker_pid);
	if (!o->keep) {
		t2 = perf_now_ns();
		if (perf_topo_delete_queues(&ctl, &topo, 0, n) < 0)
			goto fail;
		t3 = perf_now_ns();
	}

	perf_out_begin(&out, o);
	perf_out_s(&out, "mode", "queues");
	perf_out_u64(&out, "queues", (uint64_t)n);
	perf_out_f(&out, "declare_s", (double)(t1 - t0) / 1e9);
	perf_out_f(&out, "declare_rate", (double)n * 1e9 / (double)(t1 - t0));
	if (!o->keep)
		perf_out_f(&out, "delete_s", (double)(t3 - t2) / 1e9);
	if (o->broker_pid) {
		perf_out_u64(&out, "rss_before_kb", rss0);
		perf_out_u64(&out, "rss_after_kb", rss1);
		perf_out_f(&out, "rss_per_queue_kb",
		           ((double)rss1 - (double)rss0) / (double)n);
	}
	perf_out_end(&out);
	status = 0;
	goto out;
fail:
	perf_warn("%s", ctl.err);
out:
	perf_conn_close(&ctl, 3000);
	perf_conn_free(&ctl);
	perf_topo_free(&topo);
	return status;
}

/* ---- churn ---- */

struct perf_churner {
	pthread_t th;
	const struct perf_opts *o;
	struct perf_stats stats;
	atomic_bool *stop, *failed;
};

static void *perf_churner_main(void *arg)
{
	struct perf_churner *ch = arg;

	while (!atomic_load_explicit(ch->stop, memory_order_relaxed)) {
		struct perf_conn c;
		uint64_t t0 = perf_now_ns();
		int rc = perf_conn_open(&c, ch->o, PERF_IDLE_BUF, PERF_IDLE_BUF);

		if (rc == 0) {
			perf_stat_lat(ch->stats.lat, perf_now_ns() - t0);
			perf_conn_close(&c, 5000);
			perf_stat_add(&ch->stats.c[PERF_C_CYCLES], 1);
		} else {
			perf_warn("%s", c.err);
			atomic_store(ch->failed, true);
		}
		perf_conn_free(&c);
		if (rc < 0)
			break;
	}
	return NULL;
}

static bool perf_churn_failed(void *arg)
{
	return atomic_load((atomic_bool *)arg);
}

int perf_run_churn(const struct perf_opts *o)
{
	int nt = o->threads > 0 ? o->threads : 1, status = 1;
	struct perf_churner *chs = calloc((size_t)nt, sizeof(*chs));
	struct perf_stats **stats = calloc((size_t)nt, sizeof(*stats));
	atomic_bool stop = false, failed = false;
	struct perf_report rep;
	struct perf_out out;

	memset(&rep, 0, sizeof(rep));
	if (!chs || !stats || perf_report_init(&rep, o, stats, nt) < 0) {
		perf_warn("out of memory");
		goto out;
	}
	for (int t = 0; t < nt; t++) {
		chs[t].o = o;
		chs[t].stop = &stop;
		chs[t].failed = &failed;
		stats[t] = &chs[t].stats;
		if (pthread_create(&chs[t].th, NULL, perf_churner_main, &chs[t]) != 0) {
			perf_warn("cannot start threads");
			exit(1);
		}
	}
	perf_report_run(&rep, perf_churn_failed, &failed);
	atomic_store(&stop, true);
	for (int t = 0; t < nt; t++)
		pthread_join(chs[t].th, NULL);
	if (atomic_load(&failed))
		goto out;
	perf_snap_diff(rep.cur, rep.last, rep.warm);
	perf_out_begin(&out, o);
	perf_out_s(&out, "mode", "churn");
	perf_out_f(&out, "duration_s", rep.secs);
	perf_out_u64(&out, "cycles", rep.cur->c[PERF_C_CYCLES]);
	perf_out_f(&out, "churn_rate",
	           rep.secs > 0 ? (double)rep.cur->c[PERF_C_CYCLES] / rep.secs : 0);
	perf_out_f(&out, "handshake_p50_us",
	           (double)perf_hist_quantile(&rep.cur->lat, 0.50) / 1e3);
	perf_out_f(&out, "handshake_p99_us",
	           (double)perf_hist_quantile(&rep.cur->lat, 0.99) / 1e3);
	perf_out_end(&out);
	status = 0;
out:
	perf_report_free(&rep);
	free(chs);
	free(stats);
	return status;
}
