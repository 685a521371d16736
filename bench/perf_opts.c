/*
 * warren-perf's command line: defaults, the amqp:// URI, option parsing
 * and the consistency rules between options.  Nothing here touches the
 * network; the result is a filled struct perf_opts that stays read-only
 * for the rest of the run.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/perf.h"

void perf_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("warren-perf: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void perf_usage(FILE *f)
{
	fprintf(f,
	"usage: warren-perf [options]\n"
	"Connection:\n"
	"      --uri URI            amqp://user:pass@host:port/vhost\n"
	"                           (default amqp://guest:guest@127.0.0.1:5672/%%2F)\n"
	"  -h, --host HOST          broker host (overrides the URI)\n"
	"  -p, --port PORT          broker port (overrides the URI)\n"
	"Mode:\n"
	"      --mode MODE          throughput (default), connections, queues or churn\n"
	"      --count N            throughput: messages per producer, then stop;\n"
	"                           connections: idle connections to open (1000);\n"
	"                           queues: queues to declare (10000)\n"
	"      --broker-pid PID     report the broker's RSS from /proc/PID/status\n"
	"Throughput:\n"
	"      --producers N        publishing connections (default 1)\n"
	"      --consumers N        consuming connections (default 1)\n"
	"      --threads N          worker threads sharing the connections (default 1)\n"
	"      --size BYTES         message body size, at least 16 (default 16)\n"
	"      --persistent         publish with delivery-mode 2\n"
	"      --durable            declare durable queues and exchange\n"
	"      --confirm WINDOW     publisher confirms, at most WINDOW unconfirmed\n"
	"      --auto-ack           consume with no-ack (default: manual acks)\n"
	"      --prefetch N         basic.qos prefetch count for manual acks (default 0)\n"
	"      --multi-ack N        ack every N deliveries with multiple=true (default 1)\n"
	"      --exchange-type TYPE direct (default), fanout or topic\n"
	"      --exchange NAME      exchange to publish to (default warren-perf.TYPE;\n"
	"                           \"\" is the default exchange)\n"
	"      --queues N           queues (default 1); fanout reaches all of them,\n"
	"                           direct producers and consumers are spread over them\n"
	"      --bindings N         topic: bindings, each matched by one routing key\n"
	"      --queue-prefix P     queue names are P0, P1, ... (default warren-perf-)\n"
	"      --queue-args K=V,... queue.declare arguments, e.g. x-max-length=1000\n"
	"      --rate N             messages per second per producer (default unpaced)\n"
	"      --time SECONDS       measured duration (default 10; 0 = until --count)\n"
	"      --warmup SECONDS     run this long before measuring (default 0)\n"
	"      --keep               leave the queues and exchange in place\n"
	"Output:\n"
	"      --json               summary as one JSON object (default key=value)\n"
	"      --quiet              no progress lines\n"
	"      --help               print this help and exit\n"
	"      --version            print the version and exit\n");
}

static int perf_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode src[0..n) into dst; -1 if it does not fit or is bad. */
static int perf_unescape(char *dst, size_t cap, const char *src, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = src[i];
		if (ch == '%') {
			int hi, lo;
			if (i + 2 >= n)
				return -1;
			hi = perf_hexval(src[i + 1]);
			lo = perf_hexval(src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			ch = (char)(hi * 16 + lo);
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		dst[o++] = ch;
	}
	dst[o] = 0;
	return 0;
}

/*
 * amqp://[user[:pass]@]host[:port][/vhost].  An empty or absent vhost
 * means "/" (the usual intent, though the URI spec reads "amqp://h/" as
 * the vhost ""); write %2F for "/" explicitly.
 */
int perf_opts_uri(struct perf_opts *o, const char *uri)
{
	const char *p, *at, *slash, *hp_end, *colon;

	if (strncmp(uri, "amqp://", 7) != 0) {
		perf_warn("--uri: only amqp:// URIs are supported");
		return -1;
	}
	p = uri + 7;
	slash = strchr(p, '/');
	hp_end = slash ? slash : p + strlen(p);
	at = memchr(p, '@', (size_t)(hp_end - p));
	if (at) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (perf_unescape(o->user, sizeof(o->user), p,
		                  (size_t)((colon ? colon : at) - p)) < 0 ||
		    (colon && perf_unescape(o->pass, sizeof(o->pass), colon + 1,
		                            (size_t)(at - colon - 1)) < 0))
			goto bad;
		p = at + 1;
	}
	if (*p == '[') { /* [IPv6]:port */
		const char *rb = memchr(p, ']', (size_t)(hp_end - p));
		if (!rb || (size_t)(rb - p - 1) >= sizeof(o->host))
			goto bad;
		memcpy(o->host, p + 1, (size_t)(rb - p - 1));
		o->host[rb - p - 1] = 0;
		colon = rb + 1 < hp_end && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(hp_end - p));
		const char *he = colon ? colon : hp_end;
		if (he > p) {
			if ((size_t)(he - p) >= sizeof(o->host))
				goto bad;
			memcpy(o->host, p, (size_t)(he - p));
			o->host[he - p] = 0;
		}
	}
	if (colon) {
		size_t n = (size_t)(hp_end - colon - 1);
		if (n == 0 || n >= sizeof(o->port))
			goto bad;
		memcpy(o->port, colon + 1, n);
		o->port[n] = 0;
	}
	if (slash && slash[1]) {
		if (perf_unescape(o->vhost, sizeof(o->vhost), slash + 1,
		                  strlen(slash + 1)) < 0)
			goto bad;
	}
	return 0;
bad:
	perf_warn("--uri: cannot parse '%s'", uri);
	return -1;
}

static int perf_num(const char *opt, const char *s, double min, double max,
                    double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || *out < min || *out > max) {
		perf_warn("--%s: '%s' is not a number from %g to %g", opt, s, min, max);
		return -1;
	}
	return 0;
}

enum {
	OPT_URI = 256, OPT_MODE, OPT_COUNT, OPT_PID, OPT_PRODUCERS, OPT_CONSUMERS,
	OPT_THREADS, OPT_SIZE, OPT_PERSISTENT, OPT_DURABLE, OPT_CONFIRM,
	OPT_AUTO_ACK, OPT_PREFETCH, OPT_MULTI_ACK, OPT_XTYPE, OPT_EXCHANGE,
	OPT_QUEUES, OPT_BINDINGS, OPT_PREFIX, OPT_QARGS, OPT_RATE, OPT_TIME,
	OPT_WARMUP, OPT_KEEP, OPT_JSON, OPT_QUIET, OPT_HELP, OPT_VERSION,
};

static const struct option perf_longopts[] = {
	{ "uri", required_argument, NULL, OPT_URI },
	{ "host", required_argument, NULL, 'h' },
	{ "port", required_argument, NULL, 'p' },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "broker-pid", required_argument, NULL, OPT_PID },
	{ "producers", required_argument, NULL, OPT_PRODUCERS },
	{ "consumers", required_argument, NULL, OPT_CONSUMERS },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "persistent", no_argument, NULL, OPT_PERSISTENT },
	{ "durable", no_argument, NULL, OPT_DURABLE },
	{ "confirm", required_argument, NULL, OPT_CONFIRM },
	{ "auto-ack", no_argument, NULL, OPT_AUTO_ACK },
	{ "prefetch", required_argument, NULL, OPT_PREFETCH },
	{ "multi-ack", required_argument, NULL, OPT_MULTI_ACK },
	{ "exchange-type", required_argument, NULL, OPT_XTYPE },
	{ "exchange", required_argument, NULL, OPT_EXCHANGE },
	{ "queues", required_argument, NULL, OPT_QUEUES },
	{ "bindings", required_argument, NULL, OPT_BINDINGS },
	{ "queue-prefix", required_argument, NULL, OPT_PREFIX },
	{ "queue-args", required_argument, NULL, OPT_QARGS },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "time", required_argument, NULL, OPT_TIME },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "keep", no_argument, NULL, OPT_KEEP },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

void perf_opts_defaults(struct perf_opts *o)
{
	memset(o, 0, sizeof(*o));
	strcpy(o->host, "127.0.0.1");
	strcpy(o->port, "5672");
	strcpy(o->user, "guest");
	strcpy(o->pass, "guest");
	strcpy(o->vhost, "/");
	strcpy(o->queue_prefix, "warren-perf-");
	o->mode = PERF_MODE_THROUGHPUT;
	o->producers = o->consumers = o->threads = o->queues = 1;
	o->size = PERF_MIN_SIZE;
	o->multi_ack = 1;
	o->xtype = PERF_X_DIRECT;
	o->time = 10;
}

static int perf_copy(const char *opt, char *dst, size_t cap, const char *src)
{
	if (strlen(src) >= cap) {
		perf_warn("--%s: longer than %zu bytes", opt, cap - 1);
		return -1;
	}
	strcpy(dst, src);
	return 0;
}

int perf_opts_parse(struct perf_opts *o, int argc, char **argv)
{
	const char *host = NULL, *port = NULL;
	bool time_set = false;
	double v;
	int c;

	perf_opts_defaults(o);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h:p:", perf_longopts, NULL)) != -1) {
		int rc = 0;
		switch (c) {
		case OPT_URI: rc = perf_opts_uri(o, optarg); break;
		case 'h': host = optarg; break;
		case 'p': port = optarg; break;
		case OPT_MODE:
			if (!strcmp(optarg, "throughput"))
				o->mode = PERF_MODE_THROUGHPUT;
			else if (!strcmp(optarg, "connections"))
				o->mode = PERF_MODE_CONNECTIONS;
			else if (!strcmp(optarg, "queues"))
				o->mode = PERF_MODE_QUEUES;
			else if (!strcmp(optarg, "churn"))
				o->mode = PERF_MODE_CHURN;
			else {
				perf_warn("--mode: unknown mode '%s'", optarg);
				rc = -1;
			}
			break;
		case OPT_COUNT:
			if ((rc = perf_num("count", optarg, 0, 1e15, &v)) == 0)
				o->count = (uint64_t)v;
			break;
		case OPT_PID:
			if ((rc = perf_num("broker-pid", optarg, 1, 4194304, &v)) == 0)
				o->broker_pid = (pid_t)v;
			break;
		case OPT_PRODUCERS:
			if ((rc = perf_num("producers", optarg, 0, 100000, &v)) == 0)
				o->producers = (int)v;
			break;
		case OPT_CONSUMERS:
			if ((rc = perf_num("consumers", optarg, 0, 100000, &v)) == 0)
				o->consumers = (int)v;
			break;
		case OPT_THREADS:
			if ((rc = perf_num("threads", optarg, 1, 1024, &v)) == 0)
				o->threads = (int)v;
			break;
		case OPT_SIZE:
			if ((rc = perf_num("size", optarg, PERF_MIN_SIZE, 512 << 20, &v)) == 0)
				o->size = (size_t)v;
			break;
		case OPT_PERSISTENT: o->persistent = true; break;
		case OPT_DURABLE: o->durable = true; break;
		case OPT_CONFIRM:
			if ((rc = perf_num("confirm", optarg, 0, 1 << 24, &v)) == 0)
				o->confirm = (unsigned)v;
			break;
		case OPT_AUTO_ACK: o->auto_ack = true; break;
		case OPT_PREFETCH:
			if ((rc = perf_num("prefetch", optarg, 0, 65535, &v)) == 0)
				o->prefetch = (unsigned)v;
			break;
		case OPT_MULTI_ACK:
			if ((rc = perf_num("multi-ack", optarg, 1, 65535, &v)) == 0)
				o->multi_ack = (unsigned)v;
			break;
		case OPT_XTYPE:
			if (!strcmp(optarg, "direct"))
				o->xtype = PERF_X_DIRECT;
			else if (!strcmp(optarg, "fanout"))
				o->xtype = PERF_X_FANOUT;
			else if (!strcmp(optarg, "topic"))
				o->xtype = PERF_X_TOPIC;
			else {
				perf_warn("--exchange-type: '%s' is not direct, fanout or topic",
				          optarg);
				rc = -1;
			}
			break;
		case OPT_EXCHANGE:
			rc = perf_copy("exchange", o->exchange, sizeof(o->exchange), optarg);
			o->exchange_set = true;
			break;
		case OPT_QUEUES:
			if ((rc = perf_num("queues", optarg, 1, 1000000, &v)) == 0)
				o->queues = (int)v;
			break;
		case OPT_BINDINGS:
			if ((rc = perf_num("bindings", optarg, 0, 10000000, &v)) == 0)
				o->bindings = (int)v;
			break;
		case OPT_PREFIX:
			rc = perf_copy("queue-prefix", o->queue_prefix,
			               sizeof(o->queue_prefix), optarg);
			break;
		case OPT_QARGS: o->queue_args = optarg; break;
		case OPT_RATE:
			if ((rc = perf_num("rate", optarg, 0, 1e9, &v)) == 0)
				o->rate = v;
			break;
		case OPT_TIME:
			rc = perf_num("time", optarg, 0, 1e7, &o->time);
			time_set = true;
			break;
		case OPT_WARMUP:
			rc = perf_num("warmup", optarg, 0, 1e7, &o->warmup);
			break;
		case OPT_KEEP: o->keep = true; break;
		case OPT_JSON: o->json = true; break;
		case OPT_QUIET: o->quiet = true; break;
		case OPT_HELP:
			perf_usage(stdout);
			return 1;
		case OPT_VERSION:
			printf("warren-perf %s\n", PACKAGE_VERSION);
			return 1;
		case ':':
			perf_warn("%s needs a value", argv[optind - 1]);
			return -1;
		default:
			perf_warn("unknown option '%s' (see --help)", argv[optind - 1]);
			return -1;
		}
		if (rc < 0)
			return -1;
	}
	if (optind < argc) {
		perf_warn("unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if ((host && perf_copy("host", o->host, sizeof(o->host), host) < 0) ||
	    (port && perf_copy("port", o->port, sizeof(o->port), port) < 0))
		return -1;
	/* a fixed number of messages runs until done unless told otherwise */
	if (o->mode == PERF_MODE_THROUGHPUT && o->count && !time_set)
		o->time = 0;
	if (o->mode == PERF_MODE_THROUGHPUT && o->time == 0 && !o->count) {
		perf_warn("--time 0 needs --count");
		return -1;
	}
	if (o->mode != PERF_MODE_THROUGHPUT && !time_set)
		o->time = o->mode == PERF_MODE_CHURN ? 10 : 0;
	if (!o->auto_ack && o->prefetch && o->multi_ack > o->prefetch) {
		perf_warn("--multi-ack %u above --prefetch %u would stall; using %u",
		          o->multi_ack, o->prefetch, o->prefetch);
		o->multi_ack = o->prefetch;
	}
	if (o->xtype == PERF_X_TOPIC && o->bindings && o->bindings < o->queues)
		perf_warn("fewer bindings than queues: some queues get nothing");
	return 0;
}
