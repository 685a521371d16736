# The generated method codec (owned by the generator's module).
#
# gen_methods.[ch] are build outputs, never committed or distributed: they
# are made in the build tree from the spec transcription, so a VPATH build
# (make distcheck) works from a read-only source tree and any edit of the XML
# or of the generator rebuilds them.  Each file has its own rule and its own
# generator run, so parallel make never runs one recipe for two targets.
AMQPGEN = $(top_srcdir)/src/codec/amqpgen.py
AMQPGEN_SPEC = $(top_srcdir)/amqp-spec/amqp0-9-1.xml

nodist_src_libwarren_a_SOURCES += src/codec/gen_methods.c src/codec/gen_methods.h
BUILT_SOURCES += src/codec/gen_methods.h src/codec/gen_methods.c
CLEANFILES += src/codec/gen_methods.h src/codec/gen_methods.c
EXTRA_DIST += src/codec/amqpgen.py

src/codec/gen_methods.h: $(AMQPGEN_SPEC) $(AMQPGEN)
	$(AM_V_GEN)$(MKDIR_P) src/codec && \
	$(PYTHON) $(AMQPGEN) --header $(AMQPGEN_SPEC) $@

src/codec/gen_methods.c: $(AMQPGEN_SPEC) $(AMQPGEN)
	$(AM_V_GEN)$(MKDIR_P) src/codec && \
	$(PYTHON) $(AMQPGEN) --source $(AMQPGEN_SPEC) $@

# The XML checked against the published reference (skipped when that is
# not beside the tree), and the codec round-tripped method by method.
TEST_EXTENSIONS = .py
PY_LOG_COMPILER = $(PYTHON)
TESTS += tests/unit/spec_test.py
dist_check_SCRIPTS += tests/unit/spec_test.py

check_PROGRAMS += tests/unit/methods_test
TESTS += tests/unit/methods_test
tests_unit_methods_test_SOURCES = tests/unit/methods_test.c tests/unit/runner.c tests/unit/runner.h
tests_unit_methods_test_CFLAGS = $(UNIT_CFLAGS)
tests_unit_methods_test_LDADD = $(UNIT_LIBS)
