/*
 * Throughput mode of warren-perf: producers and consumers, each on its own
 * connection, spread over worker threads that each run one edge-triggered
 * epoll loop; the main thread sets up the topology, reports progress and
 * writes the summary.  perf_flow.c holds what producers and consumers do.
 *
 * Invariant: a link's can_read/can_write say its socket has not returned
 * EAGAIN since the last edge, so a worker sleeps in epoll only when no
 * link has work and no paced producer is due.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "bench/perf_run.h"
#include "codec/gen_methods.h"

#define PERF_IN_CAP (1u << 20)
#define PERF_PRODUCER_OUT (512u << 10)

/* ---- worker threads ---- */

static int perf_worker_open(struct perf_worker *w)
{
	const struct perf_opts *o = w->run->o;
	union codec_method_args r;
	char qname[128], tag[32];

	for (int i = 0; i < w->ncons; i++) {
		struct perf_consumer *k = &w->cons[i];
		struct perf_conn *c = &k->l.c;
		if (perf_conn_open(c, o, PERF_IN_CAP, 64u << 10) < 0)
			return -1;
		if (!o->auto_ack && o->prefetch) {
			struct codec_basic_qos q = { .prefetch_count =
				(uint16_t)(o->prefetch > 65535 ? 65535 : o->prefetch) };
			if (perf_conn_rpc(c, CODEC_BASIC_QOS, &q,
			                  CODEC_BASIC_QOS_OK, &r) < 0)
				return -1;
		}
		perf_topo_queue_name(o, k->index % o->queues, qname, sizeof(qname));
		snprintf(tag, sizeof(tag), "warren-perf-%d", k->index);
		struct codec_basic_consume bc = {
			.queue = bytes_of(qname),
			.consumer_tag = bytes_of(tag),
			.no_ack = o->auto_ack,
		};
		if (perf_conn_rpc(c, CODEC_BASIC_CONSUME, &bc,
		                  CODEC_BASIC_CONSUME_OK, &r) < 0)
			return -1;
	}
	for (int i = 0; i < w->nprod; i++) {
		struct perf_producer *p = &w->prod[i];
		struct perf_conn *c = &p->l.c;
		size_t out = 4 * w->run->msgs.max_len;
		if (out < PERF_PRODUCER_OUT)
			out = PERF_PRODUCER_OUT;
		if (perf_conn_open(c, o, 2 * PERF_CONN_FRAME_MAX, out) < 0)
			return -1;
		if (c->frame_max != w->run->frame_max) {
			snprintf(c->err, sizeof(c->err), "frame_max changed");
			return -1;
		}
		if (o->confirm) {
			struct codec_confirm_select cs = { 0 };
			p->ring = 1;
			while (p->ring < o->confirm)
				p->ring <<= 1;
			p->pending = calloc(p->ring, 1);
			p->sent_ns = calloc(p->ring, sizeof(*p->sent_ns));
			if (!p->pending || !p->sent_ns)
				return -1;
			if (perf_conn_rpc(c, CODEC_CONFIRM_SELECT, &cs,
			                  CODEC_CONFIRM_SELECT_OK, &r) < 0)
				return -1;
		}
	}
	return 0;
}

static const char *perf_worker_error(struct perf_worker *w)
{
	for (int i = 0; i < w->ncons; i++)
		if (w->cons[i].l.c.err[0])
			return w->cons[i].l.c.err;
	for (int i = 0; i < w->nprod; i++)
		if (w->prod[i].l.c.err[0])
			return w->prod[i].l.c.err;
	return "worker failed";
}

static int perf_worker_register(struct perf_worker *w)
{
	struct epoll_event ev;

	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0)
		return -1;
	for (int i = 0; i < w->ncons + w->nprod; i++) {
		struct perf_link *l = i < w->ncons ? &w->cons[i].l :
		                      &w->prod[i - w->ncons].l;
		ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
		ev.data.ptr = l;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, l->c.fd, &ev) < 0)
			return -1;
		/* the handshake may have buffered frames already */
		l->can_read = l->can_write = true;
	}
	return 0;
}

static int perf_worker_loop(struct perf_worker *w)
{
	struct perf_run *run = w->run;
	struct epoll_event ev[64];
	uint64_t now = perf_now_ns();

	for (int i = 0; i < w->nprod; i++) {
		struct perf_producer *p = &w->prod[i];
		/* spread paced producers over the interval */
		p->next_ns = now + run->interval_ns * (uint64_t)p->index /
		                   (uint64_t)run->o->producers;
	}
	while (!atomic_load_explicit(&run->stop, memory_order_relaxed)) {
		bool busy = false;
		uint64_t wake = perf_now_ns() + 100000000u;

		for (int i = 0; i < w->ncons; i++) {
			struct perf_consumer *k = &w->cons[i];
			if (k->l.can_read || (k->l.can_write &&
			                      k->l.c.out_len > k->l.c.out_off)) {
				if (perf_consume(w, k) < 0)
					return -1;
				/* not while its acks wait for the socket */
				busy |= k->l.can_read &&
				        (k->l.c.out_len == k->l.c.out_off ||
				         k->l.can_write);
			}
		}
		for (int i = 0; i < w->nprod; i++) {
			struct perf_producer *p = &w->prod[i];
			if (p->l.can_read && perf_producer_read(w, p) < 0)
				return -1;
			if (p->l.can_write) {
				int rc = perf_produce(w, p, &wake);
				if (rc < 0)
					return -1;
				busy |= rc == 1;
			}
		}
		now = perf_now_ns();
		struct timespec ts = { 0, 0 };
		if (!busy && wake > now) {
			ts.tv_sec = (time_t)((wake - now) / 1000000000u);
			ts.tv_nsec = (long)((wake - now) % 1000000000u);
		}
		int n = epoll_pwait2(w->ep, ev, 64, &ts, NULL);
		if (n < 0 && errno != EINTR)
			return -1;
		for (int i = 0; i < n; i++) {
			struct perf_link *l = ev[i].data.ptr;
			if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				l->can_read = true;
			if (ev[i].events & EPOLLOUT)
				l->can_write = true;
		}
	}
	return 0;
}

static void *perf_worker_main(void *arg)
{
	struct perf_worker *w = arg;
	struct perf_run *run = w->run;

	if (perf_worker_open(w) < 0 || perf_worker_register(w) < 0) {
		perf_warn("%s", perf_worker_error(w));
		atomic_store(&run->failed, true);
	}
	pthread_barrier_wait(&run->ready);
	pthread_barrier_wait(&run->go);
	if (atomic_load(&run->failed))
		return NULL;
	if (perf_worker_loop(w) < 0) {
		perf_warn("%s", perf_worker_error(w));
		atomic_store(&run->failed, true);
		atomic_store(&run->stop, true);
	}
	return NULL;
}

/* ---- the run ---- */

static bool perf_run_finished(void *arg)
{
	struct perf_run *run = arg;
	uint64_t delivered = 0, now;

	if (atomic_load(&run->failed))
		return true;
	if (!run->o->count ||
	    atomic_load(&run->producers_done) < run->o->producers)
		return false;
	if (run->o->consumers == 0)
		return true;
	/* consumers are done once nothing arrived for half a second */
	for (int i = 0; i < run->nworkers; i++)
		delivered += atomic_load_explicit(
			&run->workers[i].stats->c[PERF_C_DELIVERED],
			memory_order_relaxed);
	now = perf_now_ns();
	if (delivered != run->last_delivered) {
		run->last_delivered = delivered;
		run->quiet_since = now;
	}
	return now - run->quiet_since > 500000000u;
}

static int perf_run_workers(struct perf_run *run)
{
	const struct perf_opts *o = run->o;
	int nconn = o->producers + o->consumers;
	int nt = o->threads < nconn ? o->threads : nconn;

	if (nt < 1)
		nt = 1;
	run->nworkers = nt;
	run->workers = calloc((size_t)nt, sizeof(*run->workers));
	if (!run->workers)
		return -1;
	for (int t = 0; t < nt; t++) {
		struct perf_worker *w = &run->workers[t];
		w->run = run;
		w->stats = calloc(1, sizeof(*w->stats));
		w->cons = calloc((size_t)o->consumers / (size_t)nt + 1, sizeof(*w->cons));
		w->prod = calloc((size_t)o->producers / (size_t)nt + 1, sizeof(*w->prod));
		w->ep = -1;
		if (!w->stats || !w->cons || !w->prod)
			return -1;
	}
	/* consumers first, then producers, dealt round-robin to threads */
	for (int g = 0; g < nconn; g++) {
		struct perf_worker *w = &run->workers[g % nt];
		struct perf_link *l;
		if (g < o->consumers) {
			struct perf_consumer *k = &w->cons[w->ncons++];
			k->index = g;
			l = &k->l;
		} else {
			struct perf_producer *p = &w->prod[w->nprod++];
			p->index = g - o->consumers;
			/* direct: one queue each; topic: walk all keys */
			p->key = p->index % run->msgs.nkeys;
			l = &p->l;
		}
		l->c.fd = -1;
	}
	return 0;
}

static void perf_run_workers_free(struct perf_run *run)
{
	uint64_t deadline;

	if (!run->workers)
		return;
	deadline = perf_now_ns() + 3000000000ull;
	for (int t = 0; t < run->nworkers; t++) {
		struct perf_worker *w = &run->workers[t];
		for (int i = 0; i < w->ncons; i++)
			perf_conn_close_start(&w->cons[i].l.c, deadline);
		for (int i = 0; i < w->nprod; i++)
			perf_conn_close_start(&w->prod[i].l.c, deadline);
	}
	deadline = perf_now_ns() + 3000000000ull;
	for (int t = 0; t < run->nworkers; t++) {
		struct perf_worker *w = &run->workers[t];
		for (int i = 0; i < w->ncons; i++) {
			perf_conn_close_finish(&w->cons[i].l.c, deadline);
			perf_conn_free(&w->cons[i].l.c);
		}
		for (int i = 0; i < w->nprod; i++) {
			perf_conn_close_finish(&w->prod[i].l.c, deadline);
			perf_conn_free(&w->prod[i].l.c);
			free(w->prod[i].pending);
			free(w->prod[i].sent_ns);
		}
		if (w->ep >= 0)
			close(w->ep);
		free(w->cons);
		free(w->prod);
		free(w->stats);
	}
	free(run->workers);
	run->workers = NULL;
}

int perf_run_throughput(const struct perf_opts *o)
{
	struct perf_run run;
	struct perf_conn ctl;
	struct perf_report rep;
	struct perf_stats **stats = NULL;
	struct perf_out out;
	uint64_t rss0 = 0, rss1 = 0;
	int status = 1, started = 0;

	memset(&run, 0, sizeof(run));
	memset(&rep, 0, sizeof(rep));
	run.o = o;
	run.interval_ns = o->rate > 0 ? (uint64_t)(1e9 / o->rate) : 0;
	run.key_step = o->xtype == PERF_X_TOPIC;
	if (perf_topo_init(&run.topo, o) < 0)
		return 1;
	if (perf_conn_open(&ctl, o, 2 * PERF_CONN_FRAME_MAX,
	                   2 * PERF_CONN_FRAME_MAX) < 0) {
		perf_warn("%s", ctl.err);
		goto out;
	}
	run.frame_max = ctl.frame_max;
	if (perf_topo_setup(&ctl, &run.topo) < 0) {
		perf_warn("setup: %s", ctl.err);
		goto out;
	}
	if (perf_msgs_build(&run.msgs, &run.topo, o, ctl.frame_max) < 0 ||
	    perf_run_workers(&run) < 0) {
		perf_warn("out of memory");
		goto out;
	}
	if (o->broker_pid)
		rss0 = perf_rss_kb(o->broker_pid);
	pthread_barrier_init(&run.ready, NULL, (unsigned)run.nworkers + 1);
	pthread_barrier_init(&run.go, NULL, (unsigned)run.nworkers + 1);
	for (int t = 0; t < run.nworkers; t++) {
		if (pthread_create(&run.workers[t].th, NULL, perf_worker_main,
		                   &run.workers[t]) != 0) {
			perf_warn("cannot start threads");
			exit(1);
		}
		started++;
	}
	stats = calloc(run.nworkers > 0 ? (size_t)run.nworkers : 1, sizeof(*stats));
	if (stats) {
		for (int t = 0; t < run.nworkers; t++)
			stats[t] = run.workers[t].stats;
	}
	if (!stats || perf_report_init(&rep, o, stats, run.nworkers) < 0) {
		perf_warn("out of memory");
		atomic_store(&run.failed, true);
	}
	pthread_barrier_wait(&run.ready);
	if (!atomic_load(&run.failed))
		perf_report_start(&rep);
	pthread_barrier_wait(&run.go);
	if (!atomic_load(&run.failed)) {
		run.quiet_since = perf_now_ns();
		perf_report_run(&rep, perf_run_finished, &run);
	}
	atomic_store(&run.stop, true);
	if (o->broker_pid && !atomic_load(&run.failed)) {
		/* let the broker settle what it just stored or freed */
		struct timespec pause = { 1, 0 };
		nanosleep(&pause, NULL);
		rss1 = perf_rss_kb(o->broker_pid);
	}
	for (int t = 0; t < started; t++)
		pthread_join(run.workers[t].th, NULL);
	pthread_barrier_destroy(&run.ready);
	pthread_barrier_destroy(&run.go);
	if (!atomic_load(&run.failed) && rep.last) {
		struct perf_snap *d = rep.cur;
		perf_snap_diff(d, rep.last, rep.warm);
		perf_out_begin(&out, o);
		perf_out_s(&out, "mode", "throughput");
		perf_out_snap(&out, d, rep.secs);
		if (o->broker_pid) {
			perf_out_u64(&out, "rss_start_kb", rss0);
			perf_out_u64(&out, "rss_end_kb", rss1);
		}
		perf_out_end(&out);
		status = 0;
	}
	perf_run_workers_free(&run);
	if (!o->keep && perf_topo_teardown(&ctl, &run.topo) < 0) {
		perf_warn("teardown: %s", ctl.err);
		status = 1;
	}
out:
	perf_run_workers_free(&run); /* if setup failed half-way */
	perf_conn_close(&ctl, 3000);
	perf_conn_free(&ctl);
	perf_report_free(&rep);
	free(stats);
	perf_msgs_free(&run.msgs);
	perf_topo_free(&run.topo);
	return status;
}
