# Unit tests owned by the test infrastructure (module suites live in their
# module's fragment).  golden_test decodes and re-encodes the bytes real
# clients sent (captured by tests/interop/capture_golden.py); it finds them
# through $top_srcdir, so they ship in the tarball for distcheck.
check_PROGRAMS += tests/unit/golden_test
TESTS += tests/unit/golden_test
tests_unit_golden_test_SOURCES = tests/unit/golden_test.c tests/unit/runner.c tests/unit/runner.h
tests_unit_golden_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_golden_test_LDADD = $(UNIT_LIBS)

EXTRA_DIST += \
	tests/unit/data/golden/pika_protocol_header.bin \
	tests/unit/data/golden/pika_start_ok.bin \
	tests/unit/data/golden/pika_tune_ok.bin \
	tests/unit/data/golden/pika_connection_open.bin \
	tests/unit/data/golden/pika_channel_open.bin \
	tests/unit/data/golden/pika_publish.bin \
	tests/unit/data/golden/pika_channel_close.bin \
	tests/unit/data/golden/pika_connection_close.bin \
	tests/unit/data/golden/amqptools_protocol_header.bin \
	tests/unit/data/golden/amqptools_start_ok.bin \
	tests/unit/data/golden/amqptools_tune_ok.bin \
	tests/unit/data/golden/amqptools_connection_open.bin \
	tests/unit/data/golden/amqptools_channel_open.bin \
	tests/unit/data/golden/amqptools_publish.bin \
	tests/unit/data/golden/amqptools_channel_close.bin \
	tests/unit/data/golden/amqptools_connection_close.bin
