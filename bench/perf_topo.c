/*
 * Topology for warren-perf: the exchange, queues and bindings a run
 * publishes through, declared (and afterwards deleted) on a control
 * connection.  Declarations are pipelined in batches, so 10,000 queues or
 * 1,000 bindings cost a few round trips, not one each.
 *
 * Naming: queue i is "<prefix><i>"; the exchange is "warren-perf.<type>"
 * unless --exchange names one ("" = the default exchange, direct only).
 * A run starts by deleting what it is about to declare (delete is
 * idempotent in RabbitMQ and Warren), so a run that died half-way never
 * leaves messages or mismatched arguments behind for the next one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/perf_topo.h"
#include "codec/gen_methods.h"
#include "codec/table.h"

/* Replies outstanding at once in a pipelined batch. */
#define PERF_TOPO_BATCH 256

static const char *const perf_xtype_names[] = { "direct", "fanout", "topic" };

const char *perf_xtype_name(enum perf_xtype t)
{
	return perf_xtype_names[t];
}

void perf_topo_queue_name(const struct perf_opts *o, int i, char *buf, size_t n)
{
	snprintf(buf, n, "%s%d", o->queue_prefix, i);
}

/* "k=v,k=v": integers become signed 64-bit (RabbitMQ's 'l'), true/false
 * booleans, anything else a long string. */
static int perf_topo_parse_args(struct perf_topo *t, const char *spec)
{
	char *copy, *save = NULL, *item;

	ftable_builder_init(&t->qargs);
	if (!spec || !*spec)
		return 0;
	copy = strdup(spec);
	if (!copy)
		return -1;
	for (item = strtok_r(copy, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '='), *end;
		long long v;
		if (!eq || eq == item) {
			perf_warn("--queue-args: '%s' is not key=value", item);
			free(copy);
			return -1;
		}
		*eq++ = 0;
		v = strtoll(eq, &end, 10);
		if (*eq && !*end)
			ftable_put_int(&t->qargs, item, 'l', v);
		else if (!strcmp(eq, "true") || !strcmp(eq, "false"))
			ftable_put_bool(&t->qargs, item, !strcmp(eq, "true"));
		else
			ftable_put_str(&t->qargs, item, bytes_of(eq));
	}
	free(copy);
	if (t->qargs.oom) {
		perf_warn("--queue-args: cannot encode '%s'", spec);
		return -1;
	}
	return 0;
}

int perf_topo_init(struct perf_topo *t, const struct perf_opts *o)
{
	int nkeys;

	memset(t, 0, sizeof(*t));
	t->o = o;
	if (!o->exchange_set) /* our own, per type and durability */
		snprintf(t->exchange, sizeof(t->exchange), "warren-perf.%s%s",
		         perf_xtype_name(o->xtype), o->durable ? ".durable" : "");
	else
		snprintf(t->exchange, sizeof(t->exchange), "%s", o->exchange);
	/* the default exchange and the amq.* ones exist already */
	t->declare_x = t->exchange[0] && strncmp(t->exchange, "amq.", 4) != 0;
	if (!t->exchange[0] && o->xtype != PERF_X_DIRECT) {
		perf_warn("the default exchange is a direct exchange");
		return -1;
	}
	if (perf_topo_parse_args(t, o->queue_args) < 0)
		return -1;

	switch (o->xtype) {
	case PERF_X_DIRECT:
		nkeys = o->queues;
		break;
	case PERF_X_FANOUT:
		nkeys = 1;
		break;
	default:
		nkeys = o->bindings > 0 ? o->bindings : o->queues;
		break;
	}
	t->keys = calloc((size_t)nkeys, sizeof(*t->keys));
	if (!t->keys)
		return -1;
	t->nkeys = nkeys;
	for (int i = 0; i < nkeys; i++) {
		if (o->xtype == PERF_X_DIRECT)
			perf_topo_queue_name(o, i, t->keys[i], sizeof(t->keys[i]));
		else if (o->xtype == PERF_X_TOPIC)
			snprintf(t->keys[i], sizeof(t->keys[i]), "perf.k%d.x", i);
	}
	return 0;
}

void perf_topo_free(struct perf_topo *t)
{
	ftable_builder_free(&t->qargs);
	free(t->keys);
	t->keys = NULL;
}

/*
 * Pipelining: methods are buffered and their replies awaited once
 * PERF_TOPO_BATCH are outstanding or the buffer is nearly full.
 */
struct perf_batch {
	struct perf_conn *c;
	uint32_t want[PERF_TOPO_BATCH];
	int n;
};

static int perf_batch_drain(struct perf_batch *b)
{
	union codec_method_args r;

	if (b->n == 0)
		return 0;
	if (perf_conn_flush(b->c) < 0)
		return -1;
	for (int i = 0; i < b->n; i++)
		if (perf_conn_expect(b->c, b->want[i], &r) < 0)
			return -1;
	b->n = 0;
	return 0;
}

static int perf_batch_put(struct perf_batch *b, uint32_t id, const void *args,
                          uint32_t want)
{
	if (b->n == PERF_TOPO_BATCH ||
	    b->c->out_cap - b->c->out_len < 4096)
		if (perf_batch_drain(b) < 0)
			return -1;
	if (perf_conn_put_method(b->c, id, args) < 0)
		return -1;
	b->want[b->n++] = want;
	return 0;
}

int perf_topo_declare_queues(struct perf_conn *c, struct perf_topo *t,
                             int first, int n)
{
	struct perf_batch b = { .c = c };
	char name[128];

	for (int i = first; i < first + n; i++) {
		perf_topo_queue_name(t->o, i, name, sizeof(name));
		struct codec_queue_declare qd = {
			.queue = bytes_of(name),
			.durable = t->o->durable,
			.arguments = ftable_builder_get(&t->qargs),
		};
		if (perf_batch_put(&b, CODEC_QUEUE_DECLARE, &qd,
		                   CODEC_QUEUE_DECLARE_OK) < 0)
			return -1;
	}
	return perf_batch_drain(&b);
}

int perf_topo_delete_queues(struct perf_conn *c, struct perf_topo *t,
                            int first, int n)
{
	struct perf_batch b = { .c = c };
	char name[128];

	for (int i = first; i < first + n; i++) {
		perf_topo_queue_name(t->o, i, name, sizeof(name));
		struct codec_queue_delete qd = { .queue = bytes_of(name) };
		if (perf_batch_put(&b, CODEC_QUEUE_DELETE, &qd,
		                   CODEC_QUEUE_DELETE_OK) < 0)
			return -1;
	}
	return perf_batch_drain(&b);
}

static int perf_topo_delete_exchange(struct perf_conn *c, struct perf_topo *t)
{
	struct codec_exchange_delete xd = { .exchange = bytes_of(t->exchange) };
	union codec_method_args r;

	if (!t->declare_x)
		return 0;
	return perf_conn_rpc(c, CODEC_EXCHANGE_DELETE, &xd,
	                     CODEC_EXCHANGE_DELETE_OK, &r);
}

int perf_topo_setup(struct perf_conn *c, struct perf_topo *t)
{
	const struct perf_opts *o = t->o;
	struct perf_batch b = { .c = c };
	union codec_method_args r;
	char qname[128], key[128];

	if (perf_topo_delete_queues(c, t, 0, o->queues) < 0 ||
	    perf_topo_delete_exchange(c, t) < 0)
		return -1;
	if (t->declare_x) {
		struct codec_exchange_declare xd = {
			.exchange = bytes_of(t->exchange),
			.type = bytes_of(perf_xtype_name(o->xtype)),
			.durable = o->durable,
		};
		if (perf_conn_rpc(c, CODEC_EXCHANGE_DECLARE, &xd,
		                  CODEC_EXCHANGE_DECLARE_OK, &r) < 0)
			return -1;
	}
	if (perf_topo_declare_queues(c, t, 0, o->queues) < 0)
		return -1;
	if (!t->exchange[0])
		return 0; /* the default exchange binds every queue by name */

	/* direct: queue i under its name; fanout: every queue; topic:
	 * binding i ("perf.k<i>.*") to queue i mod queues */
	int nbind = o->xtype == PERF_X_TOPIC ? t->nkeys : o->queues;
	for (int i = 0; i < nbind; i++) {
		perf_topo_queue_name(o, i % o->queues, qname, sizeof(qname));
		if (o->xtype == PERF_X_TOPIC)
			snprintf(key, sizeof(key), "perf.k%d.*", i);
		else if (o->xtype == PERF_X_DIRECT)
			snprintf(key, sizeof(key), "%s", qname);
		else
			key[0] = 0;
		struct codec_queue_bind qb = {
			.queue = bytes_of(qname),
			.exchange = bytes_of(t->exchange),
			.routing_key = bytes_of(key),
		};
		if (perf_batch_put(&b, CODEC_QUEUE_BIND, &qb,
		                   CODEC_QUEUE_BIND_OK) < 0)
			return -1;
	}
	return perf_batch_drain(&b);
}

int perf_topo_teardown(struct perf_conn *c, struct perf_topo *t)
{
	if (perf_topo_delete_queues(c, t, 0, t->o->queues) < 0)
		return -1;
	return perf_topo_delete_exchange(c, t);
}
