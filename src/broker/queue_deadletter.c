/*
 * Dead-lettering: the copy of a message a dead-letter exchange receives,
 * with the x-death history RabbitMQ 3.10 writes (checked against a real
 * broker), and its rule against dead-letter cycles.
 *
 * x-death is an array of tables, most recent first, one per (queue, reason):
 *   count (long), reason, queue, time (timestamp, s), exchange,
 *   routing-keys (array: the routing key, then CC and BCC keys),
 *   original-expiration (when the message had an expiration).
 * A repeat death moves the matching table to the front with count + 1 and
 * its other fields unchanged.  The very first death also sets
 * x-first-death-reason/-queue/-exchange.  RabbitMQ rewrites the headers
 * table sorted by key, and the tables it updates too; the first death's
 * table keeps insertion order.  Dead-lettering is not on the publish hot
 * path, so this code allocates freely.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/queue_int.h"
#include "codec/gen_methods.h"
#include "util/xalloc.h"

static const char *const reason_names[] = {
	[QUEUE_DL_REJECTED] = "rejected",
	[QUEUE_DL_EXPIRED] = "expired",
	[QUEUE_DL_MAXLEN] = "maxlen",
};

const char *queue_dl_reason_name(enum queue_dl_reason r)
{
	return reason_names[r];
}

struct kv {
	struct bytes key;
	struct fvalue val;
};

/* Erlang's binary order: bytewise, a prefix first. */
static int kv_cmp(const void *pa, const void *pb)
{
	const struct kv *a = pa, *b = pb;
	size_t n = a->key.len < b->key.len ? a->key.len : b->key.len;
	int c = n ? memcmp(a->key.ptr, b->key.ptr, n) : 0;

	if (c)
		return c;
	return a->key.len < b->key.len ? -1 : a->key.len > b->key.len;
}

static void put_kvs(struct ftable_builder *b, struct kv *kvs, size_t n, bool sorted)
{
	if (sorted && n > 1)
		qsort(kvs, n, sizeof(*kvs), kv_cmp);
	for (size_t i = 0; i < n; i++)
		ftable_put_value(b, kvs[i].key, &kvs[i].val);
}

static struct fvalue fv_str(struct bytes s)
{
	struct fvalue v = { .type = 'S' };
	v.v.str = s;
	return v;
}

static struct fvalue fv_long(int64_t n)
{
	struct fvalue v = { .type = 'l' };
	v.v.i64 = n;
	return v;
}

/* Field key/value of a table entry that must be a longstr. */
static bool table_str(struct ftable t, const char *key, struct bytes *out)
{
	struct fvalue v;

	if (!ftable_get(t, key, &v) || v.type != 'S')
		return false;
	*out = v.v.str;
	return true;
}

static bool death_matches(const struct fvalue *e, struct bytes qname, const char *reason)
{
	struct bytes q, r;

	return e->type == 'F' && table_str(e->v.table, "queue", &q) &&
	       table_str(e->v.table, "reason", &r) && bytes_eq(q, qname) &&
	       bytes_eq_str(r, reason);
}

/* The routing keys a message was published with: RabbitMQ's routing key
 * list is the key itself, then the CC and BCC header entries. */
static void add_route_keys(struct ftable_builder *b, struct ftable headers, const char *name)
{
	struct fvalue v, e;
	struct ftable_iter it;

	if (!ftable_get(headers, name, &v) || v.type != 'A')
		return;
	ftable_iter_init(&it, v.v.array);
	while (farray_next(&it, &e) > 0)
		if (e.type == 'S')
			farray_add_value(b, &e);
}

/* A fresh x-death table for this death. */
static void build_new_death(struct ftable_builder *b, const struct message *m,
                            const struct codec_basic_props *p, const char *reason,
                            struct bytes qname, int64_t time_sec, struct ftable route_keys,
                            bool sorted)
{
	struct kv f[7];
	size_t n = 0;

	f[n].key = bytes_of("count");
	f[n++].val = fv_long(1);
	f[n].key = bytes_of("reason");
	f[n++].val = fv_str(bytes_of(reason));
	f[n].key = bytes_of("queue");
	f[n++].val = fv_str(qname);
	f[n].key = bytes_of("time");
	f[n].val.type = 'T';
	f[n++].val.v.ts = (uint64_t)time_sec;
	f[n].key = bytes_of("exchange");
	f[n++].val = fv_str(m->exchange);
	f[n].key = bytes_of("routing-keys");
	f[n].val.type = 'A';
	f[n++].val.v.array = route_keys;
	if (p->flags & CODEC_BASIC_EXPIRATION_FLAG) {
		f[n].key = bytes_of("original-expiration");
		f[n++].val = fv_str(p->expiration);
	}
	put_kvs(b, f, n, sorted);
}

/* An earlier death for the same queue and reason: count + 1, sorted. */
static void build_repeat_death(struct ftable_builder *b, struct ftable old)
{
	size_t cap = ftable_count(old) + 1, n = 0;
	struct kv *f = xcalloc(cap, sizeof(*f));
	struct ftable_iter it;
	struct bytes key;
	struct fvalue v;
	bool counted = false;

	ftable_iter_init(&it, old);
	while (n < cap && ftable_next(&it, &key, &v) > 0) {
		f[n].key = key;
		f[n].val = v;
		if (!counted && bytes_eq_str(key, "count")) {
			int64_t c;
			f[n].val = fv_long(fvalue_as_int(&v, &c) ? c + 1 : 1);
			counted = true;
		}
		n++;
	}
	if (!counted && n < cap) {
		f[n].key = bytes_of("count");
		f[n++].val = fv_long(1);
	}
	put_kvs(b, f, n, true);
	free(f);
}

struct message *queue_dead_letter_message(const struct message *m, enum queue_dl_reason reason,
                                          struct bytes qname, struct bytes dlx,
                                          const struct bytes *dlrk, int64_t time_sec)
{
	const char *rname = queue_dl_reason_name(reason);
	struct codec_basic_props p;
	struct rd r = rd_init(m->props.ptr, m->props.len);
	struct ftable headers = { NULL, 0 };
	struct ftable_builder keys, death, deaths, hdrs;
	struct message *out = NULL;
	struct fvalue xdeath = { .type = 0 };
	struct kv *kvs = NULL;
	size_t nkv = 0;
	uint8_t *buf = NULL;

	if (codec_decode_basic_props(&r, &p) != CODEC_OK)
		return NULL;
	if (p.flags & CODEC_BASIC_HEADERS_FLAG)
		headers = p.headers;

	ftable_builder_init(&keys);
	ftable_builder_init(&death);
	ftable_builder_init(&deaths);
	ftable_builder_init(&hdrs);

	struct fvalue rk = fv_str(m->routing_key);
	farray_add_value(&keys, &rk);
	add_route_keys(&keys, headers, "CC");
	add_route_keys(&keys, headers, "BCC");
	struct ftable route_keys = ftable_builder_get(&keys);

	/* Keep the other headers; x-death is rebuilt, CC goes when the
	 * dead-letter routing key replaces the message's keys. */
	kvs = xcalloc(ftable_count(headers) + 4, sizeof(*kvs));
	struct ftable_iter it;
	struct bytes key;
	struct fvalue v;
	ftable_iter_init(&it, headers);
	while (ftable_next(&it, &key, &v) > 0) {
		if (bytes_eq_str(key, "x-death")) {
			if (xdeath.type == 0)
				xdeath = v;
			continue;
		}
		if (dlrk && bytes_eq_str(key, "CC"))
			continue;
		kvs[nkv].key = key;
		kvs[nkv++].val = v;
	}

	bool first = xdeath.type == 0;
	if (xdeath.type == 'A') {
		/* Update: the matching (queue, reason) table moves to the front,
		 * the others follow in order (duplicates of it are merged away). */
		struct ftable_iter ai;
		struct fvalue e;
		bool matched = false;

		ftable_iter_init(&ai, xdeath.v.array);
		while (!matched && farray_next(&ai, &e) > 0) {
			if (death_matches(&e, qname, rname)) {
				build_repeat_death(&death, e.v.table);
				matched = true;
			}
		}
		if (!matched)
			build_new_death(&death, m, &p, rname, qname, time_sec, route_keys, true);
		struct fvalue t = { .type = 'F' };
		t.v.table = ftable_builder_get(&death);
		farray_add_value(&deaths, &t);
		ftable_iter_init(&ai, xdeath.v.array);
		while (farray_next(&ai, &e) > 0)
			if (!death_matches(&e, qname, rname))
				farray_add_value(&deaths, &e);
	} else {
		/* First death, or an x-death a client mangled (RabbitMQ resets it
		 * and leaves x-first-death-* alone then). */
		build_new_death(&death, m, &p, rname, qname, time_sec, route_keys, false);
		struct fvalue t = { .type = 'F' };
		t.v.table = ftable_builder_get(&death);
		farray_add_value(&deaths, &t);
	}
	kvs[nkv].key = bytes_of("x-death");
	kvs[nkv].val.type = 'A';
	kvs[nkv++].val.v.array = ftable_builder_get(&deaths);
	if (first) {
		const char *names[3] = { "x-first-death-exchange", "x-first-death-queue",
		                         "x-first-death-reason" };
		struct bytes vals[3] = { m->exchange, qname, bytes_of(rname) };
		for (int i = 0; i < 3; i++) {
			size_t j;
			for (j = 0; j < nkv; j++)
				if (bytes_eq_str(kvs[j].key, names[i]))
					break;
			if (j == nkv)
				nkv++;
			kvs[j].key = bytes_of(names[i]);
			kvs[j].val = fv_str(vals[i]);
		}
	}
	put_kvs(&hdrs, kvs, nkv, true);
	if (keys.oom || death.oom || deaths.oom || hdrs.oom)
		goto done;

	p.headers = ftable_builder_get(&hdrs);
	p.flags |= CODEC_BASIC_HEADERS_FLAG;
	p.flags &= (uint16_t)~CODEC_BASIC_EXPIRATION_FLAG;
	p.expiration.ptr = NULL;
	p.expiration.len = 0;
	size_t size = codec_size_basic_props(&p);
	buf = xmalloc(size);
	struct wr w = wr_init(buf, size);
	if (codec_encode_basic_props(&w, &p) != CODEC_OK)
		goto done;
	struct bytes props = { buf, size };
	out = message_with_props(m, props, dlx, dlrk ? *dlrk : m->routing_key);
done:
	free(buf);
	free(kvs);
	ftable_builder_free(&keys);
	ftable_builder_free(&death);
	ftable_builder_free(&deaths);
	ftable_builder_free(&hdrs);
	return out;
}

void queue_dead_letter_from(struct queue *q, struct message *m, enum queue_dl_reason r)
{
	struct message *d;

	/* dl_depth: a dead-letter chain that comes back to this queue within
	 * the same call (TTL 0 or a zero limit on the way) is a cycle; drop it
	 * rather than recurse without bound. */
	if (!q->args.has_dlx || !q->hooks || !q->hooks->dead_letter || q->dl_depth > 0)
		return;
	d = queue_dead_letter_message(m, r, q->name, q->args.dlx,
	                              q->args.has_dlrk ? &q->args.dlrk : NULL,
	                              (int64_t)time(NULL));
	if (!d)
		return;
	q->dl_depth++;
	q->hooks->dead_letter(q->hooks_ctx, q, d, d->exchange, d->routing_key);
	q->dl_depth--;
}

bool queue_dead_letter_is_cycle(const struct message *m, struct bytes target)
{
	struct codec_basic_props p;
	struct rd r = rd_init(m->props.ptr, m->props.len);
	struct ftable_iter it;
	struct fvalue v, e;

	if (codec_decode_basic_props(&r, &p) != CODEC_OK ||
	    !(p.flags & CODEC_BASIC_HEADERS_FLAG) ||
	    !ftable_get(p.headers, "x-death", &v) || v.type != 'A')
		return false;
	/* Walk from the most recent death: a rejection (or anything a client
	 * put there) before reaching target means a human was in the loop. */
	ftable_iter_init(&it, v.v.array);
	while (farray_next(&it, &e) > 0) {
		struct bytes s;
		if (e.type != 'F')
			return false;
		if (table_str(e.v.table, "reason", &s) && bytes_eq_str(s, "rejected"))
			return false;
		if (table_str(e.v.table, "queue", &s) && bytes_eq(s, target))
			return true;
	}
	return false;
}
