/*
 * The Prometheus text exposition (format 0.0.4) of a broker: process and
 * alarm gauges, object counts, message totals, store counters and one
 * series per queue.  Every family is written whole (HELP, TYPE, samples)
 * before the next, as the format requires, and queues come sorted by vhost
 * then name so two scrapes diff line by line.
 *
 * Label values are escaped and forced to valid UTF-8 (see
 * metrics_escape_label): names come from clients and may hold any byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/metrics.h"
#include "broker/broker.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "config.h"
#include "net/conn.h"
#include "util/xalloc.h"

/* The length of the valid UTF-8 sequence at s[0..n), or 0 if none is. */
static size_t metrics_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* bounds of the second byte */
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	/* no overlong forms, no surrogates, nothing past U+10FFFF */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

size_t metrics_escape_label(char *out, const unsigned char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t len = metrics_utf8_len(s + i, n - i);
		if (len == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		if (len == 1 && (s[i] == '\\' || s[i] == '"' || s[i] == '\n')) {
			out[o++] = '\\';
			out[o++] = s[i] == '\n' ? 'n' : (char)s[i];
		} else {
			memcpy(out + o, s + i, len);
			o += len;
		}
		i += len;
	}
	return o;
}

/* Write an escaped label value; scratch is grown to fit. */
static void metrics_put_label(FILE *f, char **scratch, size_t *cap, const void *s, size_t n)
{
	if (*cap < 3 * n + 1) {
		*cap = 3 * n + 1;
		*scratch = xrealloc(*scratch, *cap);
	}
	size_t o = metrics_escape_label(*scratch, s, n);
	fwrite(*scratch, 1, o, f);
}

static void metrics_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_one(FILE *f, const char *name, const char *type, const char *help,
                        unsigned long long v)
{
	metrics_family(f, name, type, help);
	fprintf(f, "%s %llu\n", name, v);
}

struct metrics_q {
	const struct vhost *vh;
	const struct queue *q;
};

static int metrics_q_cmp(const void *a, const void *b)
{
	const struct metrics_q *x = a, *y = b;
	int c = strcmp(vhost_name(x->vh), vhost_name(y->vh));
	if (c)
		return c;
	size_t n = x->q->name.len < y->q->name.len ? x->q->name.len : y->q->name.len;
	c = n ? memcmp(x->q->name.ptr, y->q->name.ptr, n) : 0;
	if (c)
		return c;
	return x->q->name.len < y->q->name.len ? -1 : x->q->name.len > y->q->name.len;
}

/* The per-queue families, over qs[0..n) (sorted). */
static void metrics_queues(FILE *f, const struct metrics_q *qs, size_t n)
{
	static const struct {
		const char *name, *help;
		uint32_t (*get)(const struct queue *q);
	} fams[] = {
		{ "warren_queue_messages_ready", "Messages ready for delivery in a queue.",
		  queue_message_count },
		{ "warren_queue_messages_unacked",
		  "Messages delivered from a queue and not yet acknowledged.", queue_unacked_count },
		{ "warren_queue_consumers", "Consumers on a queue.", queue_consumer_count },
	};
	char *scratch = NULL;
	size_t cap = 0;
	for (size_t k = 0; k < sizeof(fams) / sizeof(fams[0]); k++) {
		metrics_family(f, fams[k].name, "gauge", fams[k].help);
		for (size_t i = 0; i < n; i++) {
			const char *vn = vhost_name(qs[i].vh);
			fprintf(f, "%s{vhost=\"", fams[k].name);
			metrics_put_label(f, &scratch, &cap, vn, strlen(vn));
			fputs("\",queue=\"", f);
			metrics_put_label(f, &scratch, &cap, qs[i].q->name.ptr, qs[i].q->name.len);
			fprintf(f, "\"} %u\n", (unsigned)fams[k].get(qs[i].q));
		}
	}
	free(scratch);
}

static void metrics_store(FILE *f, struct store *s)
{
	struct store_counters sc;
	memset(&sc, 0, sizeof(sc));
	store_counters_get(s, &sc);
	metrics_one(f, "warren_store_bytes_written_total", "counter",
	            "Bytes the message store has written to its segment files.",
	            (unsigned long long)sc.bytes_written);
	metrics_one(f, "warren_store_syncs_total", "counter",
	            "fdatasync calls the message store has made on segment files.",
	            (unsigned long long)sc.syncs);
	metrics_one(f, "warren_store_segments", "gauge",
	            "Segment files the message store holds.", (unsigned long long)sc.segments);
	metrics_one(f, "warren_store_errors_total", "counter",
	            "Message store writes or syncs that failed.", (unsigned long long)sc.errors);
	metrics_one(f, "warren_store_live_bytes", "gauge",
	            "Bytes of live messages in the message store.",
	            (unsigned long long)sc.live_bytes);
}

char *metrics_render(struct broker *b, double uptime_s, size_t *len)
{
	char *text = NULL;
	size_t tlen = 0;
	FILE *f = open_memstream(&text, &tlen);
	if (!f)
		abort(); /* out of memory, as xmalloc would */

	size_t nq = 0, capq = 16;
	struct metrics_q *qs = xmalloc(capq * sizeof(*qs));
	unsigned long long ready = 0, unacked = 0, consumers = 0;
	for (size_t i = 0; i < b->nvhosts; i++) {
		const struct vhost *vh = b->vhosts[i];
		size_t it = 0;
		void *v;
		while (hmap_next(&vh->queues, &it, NULL, &v)) {
			if (nq == capq) {
				capq *= 2;
				qs = xrealloc(qs, capq * sizeof(*qs));
			}
			const struct queue *q = v;
			qs[nq].vh = vh;
			qs[nq++].q = q;
			ready += queue_message_count(q);
			unacked += queue_unacked_count(q);
			consumers += queue_consumer_count(q);
		}
	}
	qsort(qs, nq, sizeof(*qs), metrics_q_cmp);
	unsigned long long conns = 0, channels = 0;
	for (const struct conn *c = b->conns; c; c = c->next) {
		conns++;
		channels += c->nchans;
	}

	metrics_family(f, "warren_build_info", "gauge", "Warren version; always 1.");
	fprintf(f, "warren_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	metrics_family(f, "warren_uptime_seconds", "gauge", "Seconds since the broker started.");
	fprintf(f, "warren_uptime_seconds %.3f\n", uptime_s > 0 ? uptime_s : 0.0);
	metrics_one(f, "warren_process_resident_memory_bytes", "gauge",
	            "Resident memory of the broker process.", (unsigned long long)broker_rss());
	metrics_one(f, "warren_memory_limit_bytes", "gauge",
	            "Message memory above which publishers are blocked.",
	            (unsigned long long)b->memory_limit);
	metrics_family(f, "warren_alarm", "gauge",
	               "1 while a resource alarm blocks publishers, else 0.");
	fprintf(f, "warren_alarm{resource=\"memory\"} %d\n", b->memory_alarm ? 1 : 0);
	fprintf(f, "warren_alarm{resource=\"disk\"} %d\n", b->disk_alarm ? 1 : 0);
	metrics_one(f, "warren_connections", "gauge", "Open client connections.", conns);
	metrics_one(f, "warren_channels", "gauge", "Open channels on all connections.", channels);
	metrics_one(f, "warren_consumers", "gauge", "Consumers on all queues.", consumers);
	metrics_one(f, "warren_vhosts", "gauge", "Virtual hosts.", (unsigned long long)b->nvhosts);
	metrics_one(f, "warren_queues", "gauge", "Queues in all virtual hosts.",
	            (unsigned long long)nq);
	metrics_one(f, "warren_messages_ready", "gauge", "Messages ready in all queues.", ready);
	metrics_one(f, "warren_messages_unacked", "gauge",
	            "Messages delivered and not yet acknowledged, all queues.", unacked);
	metrics_one(f, "warren_messages_published_total", "counter",
	            "Messages received from publishers since start.",
	            (unsigned long long)b->stat_published);
	metrics_one(f, "warren_messages_delivered_total", "counter",
	            "Messages sent to consumers or basic.get since start.",
	            (unsigned long long)b->stat_delivered);
	metrics_one(f, "warren_messages_acked_total", "counter",
	            "Deliveries acknowledged by clients since start.",
	            (unsigned long long)b->stat_acked);
	if (b->store)
		metrics_store(f, b->store);
	metrics_queues(f, qs, nq);
	free(qs);
	fclose(f);
	*len = tlen;
	return text;
}
