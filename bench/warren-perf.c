/*
 * warren-perf: an AMQP 0-9-1 load generator in the spirit of RabbitMQ's
 * PerfTest, speaking the protocol itself through Warren's codec so that it
 * measures the broker and not a client library.
 *
 * This file holds the once-a-second progress line, the summary writer and
 * main(); see perf.h for how the rest is split.  The
 * summary on stdout is the machine-readable result (key=value lines, or
 * one JSON object with --json); everything for humans goes to stderr.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/perf.h"

/* ---- summary output ---- */

void perf_out_begin(struct perf_out *w, const struct perf_opts *o)
{
	w->json = o->json;
	w->n = 0;
	if (w->json)
		fputc('{', stdout);
}

static void perf_out_key(struct perf_out *w, const char *key)
{
	if (w->json)
		printf("%s\"%s\": ", w->n ? ", " : "", key);
	else
		printf("%s=", key);
	w->n++;
}

void perf_out_u64(struct perf_out *w, const char *key, uint64_t v)
{
	perf_out_key(w, key);
	printf("%llu%s", (unsigned long long)v, w->json ? "" : "\n");
}

void perf_out_f(struct perf_out *w, const char *key, double v)
{
	perf_out_key(w, key);
	printf("%.3f%s", v, w->json ? "" : "\n");
}

/* Values are our own words (modes, names): nothing to escape. */
void perf_out_s(struct perf_out *w, const char *key, const char *v)
{
	perf_out_key(w, key);
	printf(w->json ? "\"%s\"" : "%s\n", v);
}

void perf_out_end(struct perf_out *w)
{
	if (w->json)
		fputs("}\n", stdout);
	fflush(stdout);
}

static double perf_us(uint64_t ns)
{
	return (double)ns / 1e3;
}

void perf_out_snap(struct perf_out *w, const struct perf_snap *d, double secs)
{
	double s = secs > 0 ? secs : 1;

	perf_out_f(w, "duration_s", secs);
	perf_out_u64(w, "published", d->c[PERF_C_PUBLISHED]);
	perf_out_u64(w, "delivered", d->c[PERF_C_DELIVERED]);
	perf_out_u64(w, "confirmed", d->c[PERF_C_CONFIRMED]);
	perf_out_u64(w, "nacked", d->c[PERF_C_NACKED]);
	perf_out_u64(w, "returned", d->c[PERF_C_RETURNED]);
	perf_out_f(w, "published_rate", (double)d->c[PERF_C_PUBLISHED] / s);
	perf_out_f(w, "delivered_rate", (double)d->c[PERF_C_DELIVERED] / s);
	perf_out_f(w, "confirmed_rate", (double)d->c[PERF_C_CONFIRMED] / s);
	perf_out_f(w, "bytes_out_rate", (double)d->c[PERF_C_BYTES_OUT] / s);
	perf_out_f(w, "bytes_in_rate", (double)d->c[PERF_C_BYTES_IN] / s);
	perf_out_u64(w, "latency_samples", d->lat.total);
	perf_out_f(w, "latency_p50_us", perf_us(perf_hist_quantile(&d->lat, 0.50)));
	perf_out_f(w, "latency_p95_us", perf_us(perf_hist_quantile(&d->lat, 0.95)));
	perf_out_f(w, "latency_p99_us", perf_us(perf_hist_quantile(&d->lat, 0.99)));
	perf_out_f(w, "latency_max_us", perf_us(perf_hist_max(&d->lat)));
	if (d->clat.total) {
		perf_out_f(w, "confirm_latency_p50_us",
		           perf_us(perf_hist_quantile(&d->clat, 0.50)));
		perf_out_f(w, "confirm_latency_p99_us",
		           perf_us(perf_hist_quantile(&d->clat, 0.99)));
	}
}

/* ---- progress ---- */

int perf_report_init(struct perf_report *r, const struct perf_opts *o,
                     struct perf_stats **stats, int n)
{
	memset(r, 0, sizeof(*r));
	r->o = o;
	r->stats = stats;
	r->nstats = n;
	r->warm = calloc(1, sizeof(*r->warm));
	r->last = calloc(1, sizeof(*r->last));
	r->prev = calloc(1, sizeof(*r->prev));
	r->cur = calloc(1, sizeof(*r->cur));
	if (!r->warm || !r->last || !r->prev || !r->cur) {
		perf_report_free(r);
		return -1;
	}
	return 0;
}

void perf_report_free(struct perf_report *r)
{
	free(r->warm);
	free(r->last);
	free(r->prev);
	free(r->cur);
	r->warm = r->last = r->prev = r->cur = NULL;
}

static void perf_report_line(struct perf_report *r, uint64_t now,
                             uint64_t prev_ns)
{
	struct perf_snap *d = r->last; /* scratch until the end */
	double s = (double)(now - prev_ns) / 1e9;
	double t = (double)(now - r->start_ns) / 1e9;

	perf_snap_diff(d, r->cur, r->prev);
	if (r->o->quiet)
		return;
	if (r->o->mode != PERF_MODE_THROUGHPUT) {
		fprintf(stderr, "warren-perf: %5.1fs  %8.0f conn/s  handshake "
		        "p50 %.0f us p99 %.0f us\n", t,
		        (double)d->c[PERF_C_CYCLES] / s,
		        perf_us(perf_hist_quantile(&d->lat, 0.5)),
		        perf_us(perf_hist_quantile(&d->lat, 0.99)));
		return;
	}
	fprintf(stderr, "warren-perf: %5.1fs%s  sent %9.0f/s  recv %9.0f/s  "
	        "confirmed %9.0f/s  latency p50 %.0f us p99 %.0f us\n", t,
	        r->warm_ns ? "" : " (warm-up)",
	        (double)d->c[PERF_C_PUBLISHED] / s,
	        (double)d->c[PERF_C_DELIVERED] / s,
	        (double)d->c[PERF_C_CONFIRMED] / s,
	        perf_us(perf_hist_quantile(&d->lat, 0.5)),
	        perf_us(perf_hist_quantile(&d->lat, 0.99)));
}

void perf_report_start(struct perf_report *r)
{
	r->start_ns = perf_now_ns();
	perf_snap_take(r->prev, r->stats, r->nstats);
}

void perf_report_run(struct perf_report *r, bool (*finished)(void *),
                     void *arg)
{
	const struct perf_opts *o = r->o;
	uint64_t warm_at, end_at, tick, prev_ns, now;
	bool warm_taken;

	if (!r->start_ns)
		perf_report_start(r);
	prev_ns = r->start_ns;
	warm_at = r->start_ns + (uint64_t)(o->warmup * 1e9);
	end_at = o->time > 0 ? warm_at + (uint64_t)(o->time * 1e9) : UINT64_MAX;
	tick = r->start_ns + 1000000000u;
	*r->warm = *r->prev;
	r->warm_ns = 0;
	warm_taken = o->warmup <= 0;
	if (warm_taken)
		r->warm_ns = r->start_ns;
	for (;;) {
		now = perf_now_ns();
		if (!warm_taken && now >= warm_at) {
			perf_snap_take(r->warm, r->stats, r->nstats);
			r->warm_ns = now;
			warm_taken = true;
		}
		if (now >= end_at || (finished && finished(arg)))
			break;
		if (now >= tick) {
			struct perf_snap *t;
			perf_snap_take(r->cur, r->stats, r->nstats);
			perf_report_line(r, now, prev_ns);
			t = r->prev;
			r->prev = r->cur;
			r->cur = t;
			prev_ns = now;
			while (tick <= now)
				tick += 1000000000u;
		}
		uint64_t wake = now + 20000000u;
		if (tick < wake)
			wake = tick;
		if (!warm_taken && warm_at < wake)
			wake = warm_at;
		if (end_at < wake)
			wake = end_at;
		if (wake > now) {
			struct timespec ts = { (time_t)((wake - now) / 1000000000u),
			                       (long)((wake - now) % 1000000000u) };
			nanosleep(&ts, NULL);
		}
	}
	perf_snap_take(r->last, r->stats, r->nstats);
	r->end_ns = now;
	if (!warm_taken)
		r->warm_ns = r->start_ns; /* finished within the warm-up */
	r->secs = (double)(r->end_ns - r->warm_ns) / 1e9;
}

int main(int argc, char **argv)
{
	struct perf_opts o;
	struct rlimit rl;
	int rc;

	rc = perf_opts_parse(&o, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	/* thousands of idle connections need as many descriptors */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	switch (o.mode) {
	case PERF_MODE_CONNECTIONS:
		return perf_run_connections(&o);
	case PERF_MODE_QUEUES:
		return perf_run_queues(&o);
	case PERF_MODE_CHURN:
		return perf_run_churn(&o);
	default:
		return perf_run_throughput(&o);
	}
}
