# Network layer: listeners, connections, output queues, SASL, transports
# (plain TCP in transport.c, TLS in tls.c).
src_libwarren_a_SOURCES += \
	src/net/listener.c src/net/listener.h \
	src/net/transport.c src/net/transport.h \
	src/net/tls.c src/net/tls.h \
	src/net/conn.c src/net/conn.h \
	src/net/conn_auth.c src/net/conn_auth.h \
	src/net/conn_handshake.c src/net/conn_int.h src/net/conn_channel.c \
	src/net/outq.c src/net/outq.h

# Connection, channel and consumer state machines over a socketpair.
check_PROGRAMS += tests/unit/conn_test
TESTS += tests/unit/conn_test
tests_unit_conn_test_SOURCES = tests/unit/conn_test.c tests/unit/runner.c tests/unit/runner.h
tests_unit_conn_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_conn_test_LDADD = $(UNIT_LIBS)

# TLS transport: handshakes, partial reads/writes, client certificates and
# EXTERNAL over socketpairs and a broker.
check_PROGRAMS += tests/unit/tls_test
TESTS += tests/unit/tls_test
tests_unit_tls_test_SOURCES = tests/unit/tls_test.c tests/unit/tls_test_broker.c \
	tests/unit/tls_test_util.h tests/unit/runner.c tests/unit/runner.h
tests_unit_tls_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_tls_test_LDADD = $(UNIT_LIBS)

# Test and first-run certificates (openssl CLI).
EXTRA_DIST += scripts/make-certs

# Connection, channel and queue limits, the login delay, escaped log texts.
check_PROGRAMS += tests/unit/limits_test
TESTS += tests/unit/limits_test
tests_unit_limits_test_SOURCES = tests/unit/limits_test.c tests/unit/runner.c tests/unit/runner.h
tests_unit_limits_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_limits_test_LDADD = $(UNIT_LIBS)
