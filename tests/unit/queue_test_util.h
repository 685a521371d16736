/*
 * Fixtures shared by the queue unit tests (queue_test.c, queue_test_dl.c):
 * messages built from real encoded properties, a fake consumer whose
 * readiness works like a prefetch window, and fake broker hooks that record
 * what the queue asked for.  Everything is static: each test file gets its
 * own copy.
 */
#ifndef WARREN_TEST_QUEUE_TEST_UTIL_H
#define WARREN_TEST_QUEUE_TEST_UTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/consumer.h"
#include "broker/message.h"
#include "broker/queue.h"
#include "codec/gen_methods.h"
#include "codec/table.h"

/* ------------------------------------------------------------ messages */

struct msg_spec {
	const char *exchange;  /* NULL = "" */
	const char *rk;
	const char *body;
	int priority;          /* -1 = absent */
	const char *expiration; /* NULL = absent */
	struct ftable headers; /* len 0 = absent */
	bool persistent;
};

static inline struct message *mk_msg_spec(const struct msg_spec *s)
{
	struct codec_basic_props p;
	uint8_t buf[4096];
	struct wr w = wr_init(buf, sizeof(buf));

	memset(&p, 0, sizeof(p));
	if (s->priority >= 0) {
		p.flags |= CODEC_BASIC_PRIORITY_FLAG;
		p.priority = (uint8_t)s->priority;
	}
	if (s->expiration) {
		p.flags |= CODEC_BASIC_EXPIRATION_FLAG;
		p.expiration = bytes_of(s->expiration);
	}
	if (s->headers.len) {
		p.flags |= CODEC_BASIC_HEADERS_FLAG;
		p.headers = s->headers;
	}
	if (s->persistent) {
		p.flags |= CODEC_BASIC_DELIVERY_MODE_FLAG;
		p.delivery_mode = 2;
	}
	ck_assert_int_eq(codec_encode_basic_props(&w, &p), CODEC_OK);
	struct bytes props = { buf, sizeof(buf) - w.left };
	size_t blen = strlen(s->body);
	struct message *m = message_new(bytes_of(s->exchange ? s->exchange : ""),
	                                bytes_of(s->rk), props, blen);
	ck_assert_ptr_nonnull(m);
	struct bytes body = { (const uint8_t *)s->body, blen };
	ck_assert(message_append_body(m, body));
	ck_assert(message_complete(m));
	return m;
}

static inline struct message *mk_msg(const char *body)
{
	struct msg_spec s = { NULL, "rk", body, -1, NULL, { NULL, 0 }, false };
	return mk_msg_spec(&s);
}

static inline struct message *mk_msg_prio(const char *body, int prio)
{
	struct msg_spec s = { NULL, "rk", body, prio, NULL, { NULL, 0 }, false };
	return mk_msg_spec(&s);
}

static inline struct message *mk_msg_exp(const char *body, const char *exp)
{
	struct msg_spec s = { NULL, "rk", body, -1, exp, { NULL, 0 }, false };
	return mk_msg_spec(&s);
}

/* Publish a fresh message and drop the test's own reference. */
static inline int pub(struct queue *q, const char *body, int64_t now)
{
	struct message *m = mk_msg(body);
	int rc = queue_publish(q, m, now);
	message_unref(m);
	return rc;
}

static inline bool body_is(const struct message *m, const char *s)
{
	return m->body_len == strlen(s) && memcmp(m->body, s, m->body_len) == 0;
}

/* --------------------------------------------------------- fake hooks */

#define FAKE_MAX 64

struct fake_hooks {
	int schedules;
	int unused;
	int enqueued;  /* persistence hooks: entries in and out */
	int removed;
	bool delete_on_unused;
	struct message *dl[FAKE_MAX];
	size_t ndl;
};

static inline void fake_schedule(void *ctx, struct queue *q)
{
	(void)q;
	((struct fake_hooks *)ctx)->schedules++;
}

static inline void fake_dead_letter(void *ctx, struct queue *q, struct message *m,
                                    struct bytes exchange, struct bytes rk)
{
	struct fake_hooks *h = ctx;

	(void)q;
	ck_assert(exchange.ptr == m->exchange.ptr && exchange.len == m->exchange.len);
	ck_assert(rk.ptr == m->routing_key.ptr && rk.len == m->routing_key.len);
	ck_assert_uint_lt(h->ndl, FAKE_MAX);
	h->dl[h->ndl++] = m;
}

static inline void fake_unused(void *ctx, struct queue *q)
{
	struct fake_hooks *h = ctx;

	h->unused++;
	if (h->delete_on_unused)
		queue_delete(q);
}

static inline void fake_enqueued(void *ctx, struct queue *q, struct message *m)
{
	(void)q;
	(void)m;
	((struct fake_hooks *)ctx)->enqueued++;
}

static inline void fake_removed(void *ctx, struct queue *q, struct message *m)
{
	(void)q;
	(void)m;
	((struct fake_hooks *)ctx)->removed++;
}

static const struct queue_hooks fake_hook_ops = { fake_schedule, fake_dead_letter, fake_unused,
	                                          fake_enqueued, fake_removed };

static inline void fake_hooks_clear(struct fake_hooks *h)
{
	for (size_t i = 0; i < h->ndl; i++)
		message_unref(h->dl[i]);
	h->ndl = 0;
}

/* ------------------------------------------------------ fake consumers */

struct fake_consumer {
	struct consumer c;
	int credit;                    /* ready while != 0; -1 = unlimited */
	struct queue_entry got[FAKE_MAX]; /* deliveries not yet settled */
	size_t ngot;
	size_t total;                  /* deliveries ever */
	int cancelled;
	struct queue *home;            /* for requeue_on_cancel */
	bool requeue_on_cancel;        /* hand everything back when cancelled */
};

static inline bool fake_ready(struct consumer *c)
{
	return ((struct fake_consumer *)c)->credit != 0;
}

static inline void fake_deliver(struct consumer *c, struct queue *q, struct queue_entry *e)
{
	struct fake_consumer *f = (struct fake_consumer *)c;

	ck_assert_ptr_eq(c->queue, q);
	ck_assert_uint_lt(f->ngot, FAKE_MAX);
	f->got[f->ngot++] = *e;
	f->total++;
	if (f->credit > 0)
		f->credit--;
}

static inline struct queue_entry fake_take(struct fake_consumer *f, size_t i);

static inline void fake_cancelled(struct consumer *c)
{
	struct fake_consumer *f = (struct fake_consumer *)c;

	ck_assert_ptr_null(c->queue);
	f->cancelled++;
	while (f->requeue_on_cancel && f->ngot) {
		struct queue_entry e = fake_take(f, 0);
		queue_requeue(f->home, &e);
	}
}

static const struct consumer_ops fake_consumer_ops = { fake_ready, fake_deliver, fake_cancelled };

static inline void fake_consumer_init(struct fake_consumer *f, const char *tag, int32_t prio,
                                      int credit)
{
	memset(f, 0, sizeof(*f));
	f->c.ops = &fake_consumer_ops;
	f->c.tag = bytes_of(tag);
	f->c.priority = prio;
	f->credit = credit;
}

/* Take delivery i out of f's records (shifting the rest down). */
static inline struct queue_entry fake_take(struct fake_consumer *f, size_t i)
{
	struct queue_entry e = f->got[i];

	ck_assert_uint_lt(i, f->ngot);
	memmove(&f->got[i], &f->got[i + 1], (f->ngot - i - 1) * sizeof(f->got[0]));
	f->ngot--;
	return e;
}

/* Ack everything f holds. */
static inline void fake_ack_all(struct queue *q, struct fake_consumer *f)
{
	while (f->ngot) {
		struct queue_entry e = fake_take(f, 0);
		queue_settle(q, &e);
	}
}

/* ------------------------------------------------------------ contents */

/* Bodies of what f holds, concatenated ("1,2,3"). */
static inline const char *got_str(struct fake_consumer *f)
{
	static char buf[256];
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; i < f->ngot && o + 20 < sizeof(buf); i++) {
		const struct message *m = f->got[i].msg;
		if (i)
			buf[o++] = ',';
		memcpy(buf + o, m->body, m->body_len);
		o += m->body_len;
		buf[o] = 0;
	}
	return buf;
}

/* Drain the ready messages with basic.get (no_ack) into "a,b,c". */
static inline const char *drain_str(struct queue *q, int64_t now)
{
	static char buf[256];
	struct queue_entry e;
	size_t o = 0;

	buf[0] = 0;
	while (queue_get(q, now, true, &e) == 1) {
		if (o)
			buf[o++] = ',';
		memcpy(buf + o, e.msg->body, e.msg->body_len);
		o += e.msg->body_len;
		buf[o] = 0;
		message_unref(e.msg);
	}
	return buf;
}

/* --------------------------------------------------------------- queues */

static inline struct queue_args args_default(void)
{
	struct queue_args a;

	memset(&a, 0, sizeof(a));
	a.message_ttl = a.expires = a.max_length = a.max_length_bytes = -1;
	return a;
}

static inline struct queue *mk_queue(const char *name, uint32_t flags,
                                     struct queue_args *a, struct fake_hooks *h)
{
	struct ftable none = { NULL, 0 };
	return queue_new(bytes_of(name), "/", flags, none, a, &fake_hook_ops, h);
}

/* A queue with a dead-letter exchange (and routing key unless NULL). */
static inline struct queue_args args_dlx(const char *dlx, const char *dlrk)
{
	struct queue_args a = args_default();

	a.has_dlx = true;
	a.dlx.len = strlen(dlx);
	a.dlx.ptr = (const uint8_t *)strdup(dlx);
	if (dlrk) {
		a.has_dlrk = true;
		a.dlrk.len = strlen(dlrk);
		a.dlrk.ptr = (const uint8_t *)strdup(dlrk);
	}
	return a;
}

#endif
