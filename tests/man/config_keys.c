/*
 * Test helper for tests/man/coverage.sh, so the script compares the pages
 * with keys.def as compiled rather than re-parsing C:
 *   config_keys              every key as "section.name", one a line
 *   config_keys --table      "section.name|default|min|max"
 *   config_keys --dump FILE  load FILE over the built-in defaults and print
 *                            the effective settings (as --check-config
 *                            does), or the error on stderr and exit 1
 */
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "util/config.h"
#include "util/log.h"

int main(int argc, char **argv)
{
	if (argc == 1) {
		for (size_t i = 0; i < config_key_count(); i++)
			printf("%s\n", config_key_name(i));
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--table") == 0) {
		for (size_t i = 0; i < config_key_count(); i++) {
			const struct config_key *k = config_key_get(i);
			printf("%s|%s|%s|%s\n", k->full_name, k->def, k->min, k->max);
		}
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "--dump") != 0) {
		fprintf(stderr, "usage: config_keys [--table | --dump FILE]\n");
		return 2;
	}
	struct broker_config cfg;
	struct config_store st;
	char err[512];
	int level = LOG_INFO;
	broker_config_defaults(&cfg);
	config_store_init(&st);
	int rc = config_load(&st, argv[2], &cfg, &level, err, sizeof(err));
	if (rc == 0)
		config_dump(stdout, &cfg, level);
	else
		fprintf(stderr, "%s\n", err);
	config_store_free(&st);
	return rc == 0 ? 0 : 1;
}
