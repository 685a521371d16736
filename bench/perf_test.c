/*
 * Unit tests of warren-perf's pure parts: the latency histogram (bucket
 * bounds, error, quantiles), counter snapshots, the amqp:// URI and the
 * option rules.  The network parts are exercised against a real warrend by
 * bench/perf_smoke.sh.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "bench/perf.h"
#include "tests/unit/runner.h"

/* The representative value of v's bucket is within 1/32 of v. */
static void check_bucket(uint64_t v)
{
	unsigned i = perf_hist_index(v);
	uint64_t r = perf_hist_value(i);
	double err = v ? ((double)r - (double)v) / (double)v : 0;

	ck_assert_uint_lt(i, PERF_HIST_BUCKETS);
	if (v < 64)
		ck_assert_uint_eq(r, v);
	else
		ck_assert_msg(err < 1.0 / 32 && err > -1.0 / 32,
		              "v=%llu value=%llu", (unsigned long long)v,
		              (unsigned long long)r);
}

START_TEST(hist_buckets)
{
	unsigned prev = 0;

	for (uint64_t v = 0; v < 200000; v++) {
		unsigned i = perf_hist_index(v);
		ck_assert_uint_ge(i, prev); /* monotonic: no bucket overlaps */
		ck_assert_uint_le(i, prev + 1); /* and none is skipped */
		prev = i;
		check_bucket(v);
	}
	for (int b = 6; b < 64; b++) {
		uint64_t p = (uint64_t)1 << b;
		check_bucket(p - 1);
		check_bucket(p);
		check_bucket(p + 1);
		ck_assert_uint_eq(perf_hist_index(p - 1) + 1, perf_hist_index(p));
	}
	check_bucket(UINT64_MAX);
	ck_assert_uint_eq(perf_hist_index(UINT64_MAX), PERF_HIST_BUCKETS - 1);
}
END_TEST

START_TEST(hist_quantiles)
{
	struct perf_hist *h = calloc(1, sizeof(*h));

	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(perf_hist_quantile(h, 0.5), 0);
	ck_assert_uint_eq(perf_hist_max(h), 0);
	/* 1 us .. 1000 us, one sample each */
	for (uint64_t us = 1; us <= 1000; us++) {
		h->n[perf_hist_index(us * 1000)]++;
		h->total++;
	}
	uint64_t p50 = perf_hist_quantile(h, 0.50);
	uint64_t p99 = perf_hist_quantile(h, 0.99);
	uint64_t max = perf_hist_max(h);
	ck_assert_msg(p50 > 485000 && p50 < 516000, "p50 %llu", (unsigned long long)p50);
	ck_assert_msg(p99 > 960000 && p99 < 1022000, "p99 %llu", (unsigned long long)p99);
	ck_assert_msg(max > 970000 && max < 1032000, "max %llu", (unsigned long long)max);
	ck_assert_uint_le(perf_hist_quantile(h, 0), perf_hist_value(perf_hist_index(1000)));
	ck_assert_uint_eq(perf_hist_quantile(h, 1), max);
	free(h);
}
END_TEST

START_TEST(snap_diff)
{
	struct perf_stats *st[2] = { calloc(1, sizeof(struct perf_stats)),
	                             calloc(1, sizeof(struct perf_stats)) };
	struct perf_snap *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b)),
	                 *d = calloc(1, sizeof(*d));

	ck_assert(st[0] && st[1] && a && b && d);
	perf_stat_add(&st[0]->c[PERF_C_PUBLISHED], 5);
	perf_stat_lat(st[1]->lat, 2000);
	perf_snap_take(a, st, 2);
	perf_stat_add(&st[0]->c[PERF_C_PUBLISHED], 7);
	perf_stat_add(&st[1]->c[PERF_C_PUBLISHED], 1);
	perf_stat_add(&st[1]->c[PERF_C_DELIVERED], 3);
	perf_stat_lat(st[0]->lat, 5000);
	perf_stat_lat(st[1]->lat, 5000);
	perf_stat_lat(st[1]->clat, 100);
	perf_snap_take(b, st, 2);
	perf_snap_diff(d, b, a);
	ck_assert_uint_eq(b->c[PERF_C_PUBLISHED], 13);
	ck_assert_uint_eq(d->c[PERF_C_PUBLISHED], 8);
	ck_assert_uint_eq(d->c[PERF_C_DELIVERED], 3);
	ck_assert_uint_eq(d->lat.total, 2);
	ck_assert_uint_eq(d->lat.n[perf_hist_index(5000)], 2);
	ck_assert_uint_eq(d->lat.n[perf_hist_index(2000)], 0);
	ck_assert_uint_eq(d->clat.total, 1);
	free(st[0]);
	free(st[1]);
	free(a);
	free(b);
	free(d);
}
END_TEST

START_TEST(uri_parts)
{
	struct perf_opts o;

	perf_opts_defaults(&o);
	ck_assert_int_eq(perf_opts_uri(&o, "amqp://u%40x:p%3Aw@h.example:5999/v%2Fh"), 0);
	ck_assert_str_eq(o.user, "u@x");
	ck_assert_str_eq(o.pass, "p:w");
	ck_assert_str_eq(o.host, "h.example");
	ck_assert_str_eq(o.port, "5999");
	ck_assert_str_eq(o.vhost, "v/h");

	perf_opts_defaults(&o);
	ck_assert_int_eq(perf_opts_uri(&o, "amqp://[::1]:5673"), 0);
	ck_assert_str_eq(o.host, "::1");
	ck_assert_str_eq(o.port, "5673");
	ck_assert_str_eq(o.user, "guest");
	ck_assert_str_eq(o.vhost, "/");

	perf_opts_defaults(&o);
	ck_assert_int_eq(perf_opts_uri(&o, "amqp://bob@rabbit/"), 0);
	ck_assert_str_eq(o.user, "bob");
	ck_assert_str_eq(o.pass, "guest");
	ck_assert_str_eq(o.host, "rabbit");
	ck_assert_str_eq(o.port, "5672");
	ck_assert_str_eq(o.vhost, "/");

	ck_assert_int_eq(perf_opts_uri(&o, "http://x"), -1);
	ck_assert_int_eq(perf_opts_uri(&o, "amqp://h:/"), -1);
	ck_assert_int_eq(perf_opts_uri(&o, "amqp://h/%zz"), -1);
	ck_assert_int_eq(perf_opts_uri(&o, "amqp://h/%2"), -1);
	ck_assert_int_eq(perf_opts_uri(&o, "amqp://[::1/"), -1);
}
END_TEST

static int parse(struct perf_opts *o, const char *const *args)
{
	char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)"warren-perf";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	optind = 0; /* GNU: start a fresh scan */
	return perf_opts_parse(o, argc, argv);
}

START_TEST(options)
{
	struct perf_opts o;

	static const char *const a1[] = {
		"--uri", "amqp://a:b@x:1/v", "-h", "y", "-p", "2", "--producers", "3",
		"--consumers", "0", "--confirm", "10", "--prefetch", "5",
		"--multi-ack", "10", "--exchange-type", "topic", "--bindings", "7",
		"--queue-args", "x-max-length=5", NULL };
	ck_assert_int_eq(parse(&o, a1), 0);
	ck_assert_str_eq(o.host, "y"); /* -h and -p win over the URI */
	ck_assert_str_eq(o.port, "2");
	ck_assert_str_eq(o.user, "a");
	ck_assert_int_eq(o.producers, 3);
	ck_assert_int_eq(o.consumers, 0);
	ck_assert_uint_eq(o.confirm, 10);
	ck_assert_uint_eq(o.multi_ack, 5); /* never above the prefetch */
	ck_assert_int_eq(o.xtype, PERF_X_TOPIC);
	ck_assert_int_eq(o.bindings, 7);
	ck_assert_str_eq(o.queue_args, "x-max-length=5");
	ck_assert(o.time == 10);

	static const char *const a2[] = { "--count", "100", NULL };
	ck_assert_int_eq(parse(&o, a2), 0);
	ck_assert(o.time == 0); /* --count alone runs until done */

	static const char *const a3[] = { "--time", "0", NULL };
	ck_assert_int_eq(parse(&o, a3), -1);
	static const char *const a4[] = { "--size", "15", NULL };
	ck_assert_int_eq(parse(&o, a4), -1);
	static const char *const a5[] = { "--bogus", NULL };
	ck_assert_int_eq(parse(&o, a5), -1);
	static const char *const a6[] = { "--mode", "nope", NULL };
	ck_assert_int_eq(parse(&o, a6), -1);
	static const char *const a7[] = { "--producers", NULL };
	ck_assert_int_eq(parse(&o, a7), -1);

	static const char *const a8[] = { "--mode", "connections", "--exchange", "",
	                                  NULL };
	ck_assert_int_eq(parse(&o, a8), 0);
	ck_assert_int_eq(o.mode, PERF_MODE_CONNECTIONS);
	ck_assert(o.time == 0);
	ck_assert(o.exchange_set);
	ck_assert_str_eq(o.exchange, "");
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("perf");
	TCase *tc = tcase_create("perf");

	tcase_add_test(tc, hist_buckets);
	tcase_add_test(tc, hist_quantiles);
	tcase_add_test(tc, snap_diff);
	tcase_add_test(tc, uri_parts);
	tcase_add_test(tc, options);
	suite_add_tcase(s, tc);
	return s;
}
