/*
 * warrend: the Warren AMQP 0-9-1 broker daemon.  Parses the command line,
 * builds the broker, opens the listeners and runs the loop until SIGTERM.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/broker.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: warrend [options]\n"
	        "  -f, --foreground          run in the foreground (log to stderr)\n"
	        "  -l, --listen HOST:PORT    AMQP listener (repeatable; default 127.0.0.1:5672)\n"
	        "  -d, --data-dir DIR        data directory (default ./var)\n"
	        "  -c, --config FILE         configuration file\n"
	        "      --log-level LEVEL     error, warning, info or debug (default info)\n"
	        "  -V, --version             print the version and exit\n"
	        "  -h, --help                print this help and exit\n");
}

int main(int argc, char **argv)
{
	struct broker_config cfg;
	broker_config_defaults(&cfg);
	int log_level = LOG_INFO;
	enum { OPT_LOG_LEVEL = 256 };
	static const struct option opts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "listen", required_argument, NULL, 'l' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	opterr = 0;
	int o;
	while ((o = getopt_long(argc, argv, ":fl:d:c:Vh", opts, NULL)) != -1) {
		switch (o) {
		case 'f':
			break;
		case 'l':
			if (cfg.nlisten == BROKER_MAX_LISTENERS) {
				fprintf(stderr, "warrend: --listen: at most %d listeners\n",
				        BROKER_MAX_LISTENERS);
				return 2;
			}
			cfg.listen[cfg.nlisten++] = optarg;
			break;
		case 'd':
			cfg.data_dir = optarg;
			break;
		case 'c':
			cfg.config_file = optarg;
			break;
		case OPT_LOG_LEVEL:
			log_level = log_level_parse(optarg);
			if (log_level < 0) {
				fprintf(stderr, "warrend: --log-level: unknown level '%s' "
				                "(error, warning, info, debug)\n", optarg);
				return 2;
			}
			break;
		case 'V':
			printf("warrend %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "warrend: option '%s' needs a value\n", argv[optind - 1]);
			return 2;
		default:
			if (optopt)
				fprintf(stderr, "warrend: unknown option '-%c'\n", optopt);
			else
				fprintf(stderr, "warrend: unknown option '%s'\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "warrend: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (cfg.nlisten == 0)
		cfg.listen[cfg.nlisten++] = "127.0.0.1:5672";
	if (cfg.config_file) {
		struct stat st;
		if (stat(cfg.config_file, &st) != 0) {
			fprintf(stderr, "warrend: --config %s: %s\n", cfg.config_file, strerror(errno));
			return 1;
		}
	}
	if (mkdir(cfg.data_dir, 0750) != 0 && errno != EEXIST) {
		fprintf(stderr, "warrend: --data-dir %s: %s\n", cfg.data_dir, strerror(errno));
		return 1;
	}
	struct stat st;
	if (stat(cfg.data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "warrend: --data-dir %s: not a directory\n", cfg.data_dir);
		return 1;
	}

	struct broker b;
	if (broker_init(&b, &cfg) != 0) {
		fprintf(stderr, "warrend: cannot initialise the event loop\n");
		return 1;
	}
	b.log.level = (enum log_level)log_level;
	if (broker_listen(&b) != 0) {
		broker_free(&b);
		return 1;
	}
	log_info(&b.log, "warrend %s started (data dir %s)", PACKAGE_VERSION, cfg.data_dir);
	broker_run(&b);
	int rc = b.exit_code;
	log_info(&b.log, "warrend stopped");
	broker_free(&b);
	return rc;
}
