# fragment: see Makefile.am

# Queue contents, consumers and messages (queue module).
src_libwarren_a_SOURCES += \
	src/broker/message.c \
	src/broker/consumer.h \
	src/broker/queue.h src/broker/queue_int.h \
	src/broker/queue.c src/broker/queue_consumer.c \
	src/broker/queue_args.c src/broker/queue_deadletter.c

check_PROGRAMS += tests/unit/queue_test tests/unit/message_test
TESTS += tests/unit/queue_test tests/unit/message_test
tests_unit_queue_test_SOURCES = tests/unit/queue_test.c tests/unit/queue_test_limits.c \
	tests/unit/queue_test_dl.c tests/unit/queue_test_util.h \
	tests/unit/runner.c tests/unit/runner.h
tests_unit_queue_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_queue_test_LDADD = $(UNIT_LIBS)
tests_unit_message_test_SOURCES = tests/unit/message_test.c tests/unit/runner.c tests/unit/runner.h
tests_unit_message_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_message_test_LDADD = $(UNIT_LIBS)

# Router: vhosts, exchanges, bindings, routing (router module).
src_libwarren_a_SOURCES += \
	src/broker/vhost.h src/broker/vhost.c \
	src/broker/exchange.h src/broker/exchange.c \
	src/broker/exchange_direct.c src/broker/exchange_fanout.c \
	src/broker/exchange_topic.c src/broker/exchange_headers.c \
	src/broker/binding.h src/broker/binding.c \
	src/broker/names.h src/broker/names.c

check_PROGRAMS += tests/unit/router_test
TESTS += tests/unit/router_test
tests_unit_router_test_SOURCES = tests/unit/router_test.c tests/unit/router_defs_test.c \
	tests/unit/router_test_util.h tests/unit/runner.c tests/unit/runner.h
tests_unit_router_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_router_test_LDADD = $(UNIT_LIBS)

# Routing benchmark: built on demand (make bench/route_bench), never run by make check.
# (Makefile.am does not initialise EXTRA_PROGRAMS, so it is set here.)
EXTRA_PROGRAMS = bench/route_bench
CLEANFILES += bench/route_bench
bench_route_bench_SOURCES = bench/route_bench.c
bench_route_bench_LDADD = $(WARREN_LIBS)
