/*
 * warrend: the Warren AMQP 0-9-1 broker daemon.  Parses the command line,
 * builds the broker, opens the listeners and runs the loop until SIGTERM.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/listener.h"

#include "broker/broker.h"
#include "util/config.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: warrend [options]\n"
	        "  -f, --foreground          run in the foreground (log to stderr)\n"
	        "  -l, --listen HOST:PORT    AMQP listener (repeatable; default 127.0.0.1:5672)\n"
	        "  -d, --data-dir DIR        data directory (default ./var)\n"
	        "  -c, --config FILE         configuration file\n"
	        "      --check-config        check the configuration, print the effective\n"
	        "                            settings and exit\n"
	        "      --log-level LEVEL     error, warning, info or debug (default info)\n"
	        "  -V, --version             print the version and exit\n"
	        "  -h, --help                print this help and exit\n");
}

int main(int argc, char **argv)
{
	struct broker_config cfg;
	broker_config_defaults(&cfg);
	int log_level = LOG_INFO;
	/* Flags override the file, which overrides the defaults: remember the
	 * flags here and apply them after loading the file. */
	const char *flag_listen[BROKER_MAX_LISTENERS];
	int flag_nlisten = 0;
	const char *flag_data_dir = NULL;
	int flag_log_level = -1;
	bool check_config = false;
	enum { OPT_LOG_LEVEL = 256, OPT_CHECK_CONFIG };
	static const struct option opts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "listen", required_argument, NULL, 'l' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
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
			if (flag_nlisten == BROKER_MAX_LISTENERS) {
				fprintf(stderr, "warrend: --listen: at most %d listeners\n",
				        BROKER_MAX_LISTENERS);
				return 2;
			}
			flag_listen[flag_nlisten++] = optarg;
			break;
		case 'd':
			flag_data_dir = optarg;
			break;
		case OPT_CHECK_CONFIG:
			check_config = true;
			break;
		case 'c':
			cfg.config_file = optarg;
			break;
		case OPT_LOG_LEVEL:
			flag_log_level = log_level_parse(optarg);
			if (flag_log_level < 0) {
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
	struct config_store store;
	config_store_init(&store);
	if (cfg.config_file) {
		char err[512];
		const char *path = cfg.config_file;
		if (config_load(&store, path, &cfg, &log_level, err, sizeof(err)) != 0) {
			fprintf(stderr, "warrend: %s\n", err);
			config_store_free(&store);
			return 1;
		}
		cfg.config_file = path;
	}
	if (flag_nlisten > 0) {
		for (int i = 0; i < flag_nlisten; i++)
			cfg.listen[i] = flag_listen[i];
		cfg.nlisten = flag_nlisten;
	}
	for (int i = 0; i < flag_nlisten; i++) {
		struct sockaddr_storage ss;
		socklen_t sl;
		char err[200];
		if (listener_parse_addr(flag_listen[i], &ss, &sl, err, sizeof(err)) != 0) {
			fprintf(stderr, "warrend: --listen %s\n", err);
			config_store_free(&store);
			return 2;
		}
	}
	if (flag_data_dir)
		cfg.data_dir = flag_data_dir;
	if (flag_log_level >= 0)
		log_level = flag_log_level;
	if (cfg.nlisten == 0)
		cfg.listen[cfg.nlisten++] = "127.0.0.1:5672";
	if (check_config) {
		config_dump(stdout, &cfg, log_level);
		config_store_free(&store);
		return 0;
	}
	struct stat st;
	if ((mkdir(cfg.data_dir, 0750) != 0 && errno != EEXIST) ||
	    stat(cfg.data_dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    access(cfg.data_dir, R_OK | W_OK | X_OK) != 0) {
		fprintf(stderr, "warrend: data dir %s: %s\n", cfg.data_dir,
		        errno ? strerror(errno) : "not a directory");
		config_store_free(&store);
		return 1;
	}

	struct broker b;
	if (broker_init(&b, &cfg) != 0) {
		fprintf(stderr, "warrend: cannot initialise the event loop\n");
		config_store_free(&store);
		return 1;
	}
	b.log.level = (enum log_level)log_level;
	if (broker_listen(&b) != 0) {
		broker_free(&b);
		config_store_free(&store);
		return 1;
	}
	log_info(&b.log, "warrend %s started (data dir %s)", PACKAGE_VERSION, cfg.data_dir);
	broker_run(&b);
	int rc = b.exit_code;
	log_info(&b.log, "warrend stopped");
	broker_free(&b);
	config_store_free(&store);
	return rc;
}
