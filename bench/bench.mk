# Benchmark tools: warren-perf, the AMQP load generator (installed, with its
# man page), and bench/compare, the side-by-side run against RabbitMQ (a
# script run by hand, never by make check; see bench/README).
bin_PROGRAMS += bench/warren-perf
bench_warren_perf_SOURCES = bench/warren-perf.c bench/perf.h \
	bench/perf_conn.c bench/perf_hist.c bench/perf_modes.c \
	bench/perf_opts.c bench/perf_flow.c bench/perf_run.c bench/perf_run.h \
	bench/perf_topo.c bench/perf_topo.h
bench_warren_perf_LDADD = $(WARREN_LIBS)
dist_man_MANS += man/warren-perf.1
EXTRA_DIST += bench/compare bench/README bench/RESULTS.md \
	bench/conn_bench.py bench/soak_workqueue.py bench/recovery_bench.py

# Its pure parts (histogram, URI, options) as a Check unit test, and every
# mode run briefly against a real warrend.
check_PROGRAMS += bench/perf_test
TESTS += bench/perf_test bench/perf_smoke.sh
dist_check_SCRIPTS += bench/perf_smoke.sh
bench_perf_test_SOURCES = bench/perf_test.c bench/perf_hist.c \
	bench/perf_opts.c bench/perf.h tests/unit/runner.c tests/unit/runner.h
bench_perf_test_CFLAGS = $(UNIT_CFLAGS)
bench_perf_test_LDADD = $(UNIT_LIBS)
