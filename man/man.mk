# Man pages (hand-written mdoc) and their tests: lint.sh runs mandoc/groff
# over them, coverage.sh checks that they, warrend --help, keys.def and the
# sample etc/warren.conf agree (config_keys prints keys.def as compiled).
dist_man_MANS += man/warrend.8 man/warren.conf.5

check_PROGRAMS += tests/man/config_keys
tests_man_config_keys_SOURCES = tests/man/config_keys.c
tests_man_config_keys_LDADD = $(WARREN_LIBS)

dist_check_SCRIPTS += tests/man/lint.sh tests/man/coverage.sh
TESTS += tests/man/lint.sh tests/man/coverage.sh
