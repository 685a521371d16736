/*
 * Latency histogram and counter snapshots for warren-perf.
 *
 * The histogram is fixed-size and log-linear so recording a sample is a
 * count-leading-zeros and an increment: no allocation, no sorting.  Each
 * thread owns its struct perf_stats; the reporter sums them into a
 * struct perf_snap, and subtracting two snapshots gives the counts and
 * the latency distribution of the interval between them.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench/perf.h"

uint64_t perf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t perf_rss_kb(pid_t pid)
{
	char path[64], line[256];
	unsigned long long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %llu", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/*
 * Below 2^(SUB_BITS+1) the index is the value.  Above, with e the position
 * of the top bit, the next SUB_BITS bits pick one of 2^SUB_BITS buckets in
 * the power-of-two range [2^e, 2^(e+1)).
 */
unsigned perf_hist_index(uint64_t v)
{
	const unsigned sub = 1u << PERF_HIST_SUB_BITS;
	unsigned e;

	if (v < 2 * sub)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	return (e - PERF_HIST_SUB_BITS + 1) * sub +
	       (unsigned)((v >> (e - PERF_HIST_SUB_BITS)) - sub);
}

uint64_t perf_hist_value(unsigned i)
{
	const unsigned sub = 1u << PERF_HIST_SUB_BITS;
	unsigned e, s;
	uint64_t lo, width;

	if (i < 2 * sub)
		return i;
	e = i / sub + PERF_HIST_SUB_BITS - 1;
	s = i % sub;
	lo = (uint64_t)(sub + s) << (e - PERF_HIST_SUB_BITS);
	width = (uint64_t)1 << (e - PERF_HIST_SUB_BITS);
	return lo + width / 2;
}

void perf_hist_clear(struct perf_hist *h)
{
	memset(h, 0, sizeof(*h));
}

uint64_t perf_hist_quantile(const struct perf_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->total == 0)
		return 0;
	/* the smallest value with at least q of the samples at or below it */
	rank = (uint64_t)(q * (double)h->total + 0.5);
	if (rank < 1)
		rank = 1;
	if (rank > h->total)
		rank = h->total;
	for (unsigned i = 0; i < PERF_HIST_BUCKETS; i++) {
		seen += h->n[i];
		if (seen >= rank)
			return perf_hist_value(i);
	}
	return 0;
}

uint64_t perf_hist_max(const struct perf_hist *h)
{
	for (unsigned i = PERF_HIST_BUCKETS; i-- > 0;)
		if (h->n[i])
			return perf_hist_value(i);
	return 0;
}

static void perf_hist_sum(struct perf_hist *h, _Atomic uint64_t *src)
{
	for (unsigned i = 0; i < PERF_HIST_BUCKETS; i++) {
		uint64_t v = atomic_load_explicit(&src[i], memory_order_relaxed);
		h->n[i] += v;
		h->total += v;
	}
}

void perf_snap_take(struct perf_snap *s, struct perf_stats *const *stats, int n)
{
	memset(s, 0, sizeof(*s));
	for (int t = 0; t < n; t++) {
		for (int k = 0; k < PERF_C_COUNT; k++)
			s->c[k] += atomic_load_explicit(&stats[t]->c[k],
			                                memory_order_relaxed);
		perf_hist_sum(&s->lat, stats[t]->lat);
		perf_hist_sum(&s->clat, stats[t]->clat);
	}
}

void perf_snap_diff(struct perf_snap *d, const struct perf_snap *b,
                    const struct perf_snap *a)
{
	for (int k = 0; k < PERF_C_COUNT; k++)
		d->c[k] = b->c[k] - a->c[k];
	d->lat.total = b->lat.total - a->lat.total;
	d->clat.total = b->clat.total - a->clat.total;
	for (unsigned i = 0; i < PERF_HIST_BUCKETS; i++) {
		d->lat.n[i] = b->lat.n[i] - a->lat.n[i];
		d->clat.n[i] = b->clat.n[i] - a->clat.n[i];
	}
}
