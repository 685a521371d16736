/*
 * Dead-lettering (x-death contents field by field, repeats, cycles) and the
 * validation of queue and consumer arguments and of the expiration
 * property.  The expected texts were taken from RabbitMQ 3.10.8.
 */
#include <time.h>

#include "queue_test_util.h"
#include "runner.h"

TCase *queue_dl_tcase(void);
TCase *queue_args_tcase(void);

static struct fake_hooks H;

static void setup(void)
{
	memset(&H, 0, sizeof(H));
}

static void teardown(void)
{
	fake_hooks_clear(&H);
}

static struct codec_basic_props props_of(const struct message *m)
{
	struct codec_basic_props p;
	struct rd r = rd_init(m->props.ptr, m->props.len);

	ck_assert_int_eq(codec_decode_basic_props(&r, &p), CODEC_OK);
	return p;
}

/* The n-th key of table t, and its value. */
static struct bytes nth_key(struct ftable t, size_t n, struct fvalue *v)
{
	struct ftable_iter it;
	struct bytes k = { NULL, 0 };

	ftable_iter_init(&it, t);
	for (size_t i = 0; i <= n; i++)
		ck_assert_int_eq(ftable_next(&it, &k, v), 1);
	return k;
}

static void assert_key(struct ftable t, size_t n, const char *key, char type, struct fvalue *v)
{
	struct bytes k = nth_key(t, n, v);

	ck_assert_msg(bytes_eq_str(k, key), "field %zu is '%.*s', expected '%s'", n, (int)k.len,
	              (const char *)k.ptr, key);
	ck_assert_msg(v->type == type, "field %s has type %c, expected %c", key, v->type, type);
}

static void assert_str_field(struct ftable t, size_t n, const char *key, const char *val)
{
	struct fvalue v;

	assert_key(t, n, key, 'S', &v);
	ck_assert_msg(bytes_eq_str(v.v.str, val), "%s is '%.*s', expected '%s'", key,
	              (int)v.v.str.len, (const char *)v.v.str.ptr, val);
}

static void assert_long_field(struct ftable t, size_t n, const char *key, int64_t val)
{
	struct fvalue v;

	assert_key(t, n, key, 'l', &v);
	ck_assert_int_eq(v.v.i64, val);
}

/* routing-keys array equal to the given keys. */
static void assert_keys(struct ftable t, size_t n, const char *k1, const char *k2)
{
	struct fvalue v, e;
	struct ftable_iter it;

	assert_key(t, n, "routing-keys", 'A', &v);
	ftable_iter_init(&it, v.v.array);
	ck_assert_int_eq(farray_next(&it, &e), 1);
	ck_assert(e.type == 'S' && bytes_eq_str(e.v.str, k1));
	if (k2) {
		ck_assert_int_eq(farray_next(&it, &e), 1);
		ck_assert(e.type == 'S' && bytes_eq_str(e.v.str, k2));
	}
	ck_assert_int_eq(farray_next(&it, &e), 0);
}

/* The i-th x-death table of m. */
static struct ftable death_n(const struct message *m, size_t i, size_t *count)
{
	struct codec_basic_props p = props_of(m);
	struct fvalue v, e;
	struct ftable_iter it;
	struct ftable out = { NULL, 0 };
	size_t n = 0;

	ck_assert(p.flags & CODEC_BASIC_HEADERS_FLAG);
	ck_assert_int_eq(ftable_get(p.headers, "x-death", &v), 1);
	ck_assert(v.type == 'A');
	ftable_iter_init(&it, v.v.array);
	while (farray_next(&it, &e) > 0) {
		ck_assert(e.type == 'F');
		if (n == i)
			out = e.v.table;
		n++;
	}
	*count = n;
	return out;
}

/* A message published to exchange "ex" with key "key", CC ["cc1"], a header
 * h = 1, an expiration, priority 3 and delivery-mode 2. */
static struct message *mk_rich(void)
{
	struct ftable_builder hb, cc;
	struct fvalue s = { .type = 'S' };

	ftable_builder_init(&hb);
	ftable_builder_init(&cc);
	ftable_put_int(&hb, "h", 'I', 1);
	s.v.str = bytes_of("cc1");
	farray_add_value(&cc, &s);
	ftable_put_array(&hb, "CC", ftable_builder_get(&cc));
	struct msg_spec spec = { "ex", "key", "payload", 3, "60000", ftable_builder_get(&hb), true };
	struct message *m = mk_msg_spec(&spec);
	ftable_builder_free(&hb);
	ftable_builder_free(&cc);
	return m;
}

START_TEST(test_dl_reject_first_death)
{
	struct queue_args a = args_dlx("dlx", NULL);
	struct queue *q = mk_queue("src", 0, &a, &H);
	struct message *m = mk_rich();
	struct queue_entry e;
	struct fvalue v;
	size_t n;

	queue_publish(q, m, 0);
	message_unref(m);
	ck_assert_int_eq(queue_get(q, 0, false, &e), 1);
	int64_t t0 = (int64_t)time(NULL);
	queue_reject(q, &e);
	int64_t t1 = (int64_t)time(NULL);
	ck_assert_uint_eq(queue_unacked_count(q), 0);
	ck_assert_uint_eq(H.ndl, 1);

	struct message *d = H.dl[0];
	ck_assert(bytes_eq_str(d->exchange, "dlx"));
	ck_assert(bytes_eq_str(d->routing_key, "key"));
	ck_assert(body_is(d, "payload"));
	ck_assert_uint_eq(d->refs, 1);
	ck_assert_int_eq(d->ttl_ms, -1); /* expiration moved into x-death */
	ck_assert_uint_eq(d->priority, 3);
	ck_assert(d->persistent);

	struct codec_basic_props p = props_of(d);
	ck_assert(!(p.flags & CODEC_BASIC_EXPIRATION_FLAG));
	ck_assert_uint_eq(p.priority, 3);
	ck_assert_uint_eq(p.delivery_mode, 2);
	/* headers sorted by key, as RabbitMQ rewrites them */
	ck_assert_uint_eq(ftable_count(p.headers), 6);
	assert_key(p.headers, 0, "CC", 'A', &v);
	assert_key(p.headers, 1, "h", 'I', &v);
	ck_assert_int_eq(v.v.i32, 1);
	assert_key(p.headers, 2, "x-death", 'A', &v);
	assert_str_field(p.headers, 3, "x-first-death-exchange", "ex");
	assert_str_field(p.headers, 4, "x-first-death-queue", "src");
	assert_str_field(p.headers, 5, "x-first-death-reason", "rejected");

	/* the first death's table in RabbitMQ's insertion order */
	struct ftable x = death_n(d, 0, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(ftable_count(x), 7);
	assert_long_field(x, 0, "count", 1);
	assert_str_field(x, 1, "reason", "rejected");
	assert_str_field(x, 2, "queue", "src");
	assert_key(x, 3, "time", 'T', &v);
	ck_assert_int_ge((int64_t)v.v.ts, t0);
	ck_assert_int_le((int64_t)v.v.ts, t1);
	assert_str_field(x, 4, "exchange", "ex");
	assert_keys(x, 5, "key", "cc1");
	assert_str_field(x, 6, "original-expiration", "60000");
	queue_delete(q);
}
END_TEST

START_TEST(test_dl_repeats_and_order)
{
	struct message *m = mk_rich();
	struct bytes zz = bytes_of("zz");
	struct fvalue v;
	size_t n;

	struct message *d1 = queue_dead_letter_message(m, QUEUE_DL_REJECTED, bytes_of("src"),
	                                               bytes_of("dlx"), NULL, 1000);
	struct message *d2 = queue_dead_letter_message(d1, QUEUE_DL_REJECTED, bytes_of("src"),
	                                               bytes_of("dlx"), NULL, 2000);
	/* the same queue and reason again: one table, count 2, fields sorted,
	 * the rest (time, exchange, keys) as first recorded */
	struct ftable x = death_n(d2, 0, &n);
	ck_assert_uint_eq(n, 1);
	assert_long_field(x, 0, "count", 2);
	assert_str_field(x, 1, "exchange", "ex");
	assert_str_field(x, 2, "original-expiration", "60000");
	assert_str_field(x, 3, "queue", "src");
	assert_str_field(x, 4, "reason", "rejected");
	assert_keys(x, 5, "key", "cc1");
	assert_key(x, 6, "time", 'T', &v);
	ck_assert_uint_eq(v.v.ts, 1000);

	/* another queue and reason, with a dead-letter routing key: a new table
	 * in front (sorted), CC dropped from the headers, first-death kept */
	struct message *d3 = queue_dead_letter_message(d2, QUEUE_DL_EXPIRED, bytes_of("q2"),
	                                               bytes_of("dlx2"), &zz, 3000);
	ck_assert(bytes_eq_str(d3->exchange, "dlx2"));
	ck_assert(bytes_eq_str(d3->routing_key, "zz"));
	x = death_n(d3, 0, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(ftable_count(x), 6); /* no expiration any more */
	assert_long_field(x, 0, "count", 1);
	assert_str_field(x, 1, "exchange", "dlx");
	assert_str_field(x, 2, "queue", "q2");
	assert_str_field(x, 3, "reason", "expired");
	assert_keys(x, 4, "key", "cc1");
	assert_key(x, 5, "time", 'T', &v);
	ck_assert_uint_eq(v.v.ts, 3000);
	x = death_n(d3, 1, &n);
	assert_long_field(x, 0, "count", 2);
	assert_str_field(x, 3, "queue", "src");
	struct codec_basic_props p = props_of(d3);
	ck_assert_int_eq(ftable_get(p.headers, "CC", &v), 0);
	ck_assert_int_eq(ftable_get(p.headers, "h", &v), 1);
	ck_assert_int_eq(ftable_get(p.headers, "x-first-death-queue", &v), 1);
	ck_assert(bytes_eq_str(v.v.str, "src"));
	ck_assert_int_eq(ftable_get(p.headers, "x-first-death-reason", &v), 1);
	ck_assert(bytes_eq_str(v.v.str, "rejected"));

	/* dying in src again moves its table back to the front */
	struct message *d4 = queue_dead_letter_message(d3, QUEUE_DL_REJECTED, bytes_of("src"),
	                                               bytes_of("dlx"), NULL, 4000);
	x = death_n(d4, 0, &n);
	ck_assert_uint_eq(n, 2);
	assert_long_field(x, 0, "count", 3);
	assert_str_field(x, 3, "queue", "src");
	x = death_n(d4, 1, &n);
	assert_str_field(x, 2, "queue", "q2");
	assert_long_field(x, 0, "count", 1);

	message_unref(m);
	message_unref(d1);
	message_unref(d2);
	message_unref(d3);
	message_unref(d4);
}
END_TEST

START_TEST(test_dl_reasons_from_queue)
{
	struct queue_args a = args_dlx("dlx", "to");
	a.max_length = 1;
	a.message_ttl = 10;
	struct queue *q = mk_queue("lim", 0, &a, &H);
	struct fvalue v;
	size_t n;

	pub(q, "1", 0);
	pub(q, "2", 0);       /* "1" dropped: maxlen */
	queue_expire(q, 100); /* "2" expired */
	ck_assert_uint_eq(H.ndl, 2);
	struct ftable x = death_n(H.dl[0], 0, &n);
	assert_str_field(x, 1, "reason", "maxlen");
	x = death_n(H.dl[1], 0, &n);
	assert_str_field(x, 1, "reason", "expired");
	assert_str_field(x, 2, "queue", "lim");
	assert_str_field(x, 4, "exchange", "");
	assert_keys(x, 5, "rk", NULL);
	ck_assert(bytes_eq_str(H.dl[1]->routing_key, "to"));
	struct codec_basic_props p = props_of(H.dl[1]);
	ck_assert_int_eq(ftable_get(p.headers, "x-first-death-reason", &v), 1);
	ck_assert(bytes_eq_str(v.v.str, "expired"));
	queue_delete(q);

	/* without a dead-letter exchange nothing is republished */
	struct queue_args b = args_default();
	q = mk_queue("plain", 0, &b, &H);
	struct queue_entry e;
	pub(q, "r", 0);
	queue_get(q, 0, false, &e);
	queue_reject(q, &e);
	ck_assert_uint_eq(H.ndl, 2);
	ck_assert_uint_eq(queue_unacked_count(q), 0);
	queue_delete(q);
}
END_TEST

START_TEST(test_dl_mangled_xdeath)
{
	struct ftable_builder hb;
	size_t n;
	struct fvalue v;

	ftable_builder_init(&hb);
	ftable_put_str(&hb, "x-death", bytes_of("garbage"));
	struct msg_spec spec = { "", "k", "b", -1, NULL, ftable_builder_get(&hb), false };
	struct message *m = mk_msg_spec(&spec);
	ftable_builder_free(&hb);
	struct message *d = queue_dead_letter_message(m, QUEUE_DL_REJECTED, bytes_of("q"),
	                                              bytes_of("dlx"), NULL, 5);
	/* reset to a fresh history; no first-death headers in that case */
	struct ftable x = death_n(d, 0, &n);
	ck_assert_uint_eq(n, 1);
	assert_long_field(x, 0, "count", 1);
	struct codec_basic_props p = props_of(d);
	ck_assert_uint_eq(ftable_count(p.headers), 1);
	ck_assert_int_eq(ftable_get(p.headers, "x-first-death-reason", &v), 0);
	message_unref(d);
	message_unref(m);
}
END_TEST

START_TEST(test_dl_cycles)
{
	struct message *m = mk_msg("c");
	struct message *d1, *d2, *d3;

	ck_assert(!queue_dead_letter_is_cycle(m, bytes_of("a")));
	d1 = queue_dead_letter_message(m, QUEUE_DL_EXPIRED, bytes_of("a"), bytes_of(""), NULL, 1);
	ck_assert(queue_dead_letter_is_cycle(d1, bytes_of("a")));
	ck_assert(!queue_dead_letter_is_cycle(d1, bytes_of("b")));
	d2 = queue_dead_letter_message(d1, QUEUE_DL_MAXLEN, bytes_of("b"), bytes_of(""), NULL, 2);
	ck_assert(queue_dead_letter_is_cycle(d2, bytes_of("a")));
	ck_assert(queue_dead_letter_is_cycle(d2, bytes_of("b")));
	/* a rejection on the way: a human was in the loop, no cycle */
	d3 = queue_dead_letter_message(d2, QUEUE_DL_REJECTED, bytes_of("c"), bytes_of(""), NULL, 3);
	ck_assert(!queue_dead_letter_is_cycle(d3, bytes_of("a")));
	ck_assert(!queue_dead_letter_is_cycle(d3, bytes_of("c")));
	message_unref(m);
	message_unref(d1);
	message_unref(d2);
	message_unref(d3);
}
END_TEST

TCase *queue_dl_tcase(void)
{
	TCase *tc = tcase_create("dead-letter");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_dl_reject_first_death);
	tcase_add_test(tc, test_dl_repeats_and_order);
	tcase_add_test(tc, test_dl_reasons_from_queue);
	tcase_add_test(tc, test_dl_mangled_xdeath);
	tcase_add_test(tc, test_dl_cycles);
	return tc;
}

/* ------------------------------------------------------------ arguments */

struct arg {
	const char *key;
	char type;     /* field type letter; 0 ends the list */
	int64_t i;
	const char *s;
};

struct args_case {
	struct arg a[3];
	const char *text; /* expected error, NULL for success */
};

#define PF "PRECONDITION_FAILED - "
#define INV(k) PF "invalid arg '" k "' for queue 'q' in vhost '/': "

static const struct args_case args_cases[] = {
	{ { { "x-max-length", 'I', -1, NULL } }, INV("x-max-length") "{value_negative,-1}" },
	{ { { "x-max-length", 'S', 0, "abc" } }, INV("x-max-length") "\"expected integer, got longstr\"" },
	{ { { "x-max-length", 'A', 0, NULL } }, INV("x-max-length") "\"expected integer, got array\"" },
	{ { { "x-max-length", 'F', 0, NULL } }, INV("x-max-length") "\"expected integer, got table\"" },
	{ { { "x-max-length", 'V', 0, NULL } }, INV("x-max-length") "\"expected integer, got void\"" },
	{ { { "x-max-length", 'D', 0, NULL } }, INV("x-max-length") "\"expected integer, got decimal\"" },
	{ { { "x-max-length", 'T', 0, NULL } }, INV("x-max-length") "\"expected integer, got timestamp\"" },
	{ { { "x-max-length", 'x', 0, "abc" } }, INV("x-max-length") "\"expected integer, got binary\"" },
	{ { { "x-max-length-bytes", 'I', -5, NULL } }, INV("x-max-length-bytes") "{value_negative,-5}" },
	{ { { "x-expires", 'I', 0, NULL } }, INV("x-expires") "{value_zero,0}" },
	{ { { "x-expires", 'I', -3, NULL } }, INV("x-expires") "{value_negative,-3}" },
	{ { { "x-expires", 'l', 4294967296, NULL } }, NULL },
	{ { { "x-message-ttl", 'I', -1, NULL } }, INV("x-message-ttl") "{value_negative,-1}" },
	{ { { "x-message-ttl", 'l', 315360000001, NULL } }, INV("x-message-ttl") "{value_too_large,315360000001}" },
	{ { { "x-message-ttl", 'l', 315360000000, NULL } }, NULL },
	{ { { "x-message-ttl", 'S', 0, "x" } }, INV("x-message-ttl") "\"expected integer, got longstr\"" },
	{ { { "x-dead-letter-routing-key", 'S', 0, "rk" } },
	  INV("x-dead-letter-routing-key") "routing_key_but_no_dlx_defined" },
	{ { { "x-dead-letter-routing-key", 'I', 5, NULL }, { "x-dead-letter-exchange", 'S', 0, "e" } },
	  INV("x-dead-letter-routing-key") "{unacceptable_type,signedint}" },
	{ { { "x-dead-letter-exchange", 'I', 5, NULL } },
	  PF "invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'" },
	{ { { "x-max-length", 'I', -1, NULL }, { "x-dead-letter-exchange", 'I', 5, NULL } },
	  PF "invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'" },
	{ { { "x-max-priority", 'I', 256, NULL } }, INV("x-max-priority") "{max_value_exceeded,256}" },
	{ { { "x-max-priority", 'I', -1, NULL } }, INV("x-max-priority") "{value_negative,-1}" },
	{ { { "x-max-priority", 't', 1, NULL } }, INV("x-max-priority") "\"expected integer, got bool\"" },
	{ { { "x-max-priority", 'I', 0, NULL } }, NULL },
	{ { { "x-overflow", 'S', 0, "foo" } }, INV("x-overflow") "invalid_overflow" },
	{ { { "x-overflow", 'I', 1, NULL } }, INV("x-overflow") "{unacceptable_type,signedint}" },
	{ { { "x-queue-mode", 'S', 0, "foo" } }, INV("x-queue-mode") "\"unsupported queue mode 'foo'\"" },
	{ { { "x-queue-mode", 'A', 0, NULL } }, INV("x-queue-mode") "{unacceptable_type,array}" },
	{ { { "x-queue-mode", 'S', 0, "lazy" } }, NULL },
	{ { { "x-single-active-consumer", 'I', 1, NULL } },
	  INV("x-single-active-consumer") "{unacceptable_type,signedint}" },
	{ { { "x-single-active-consumer", 'S', 0, "true" } },
	  INV("x-single-active-consumer") "{unacceptable_type,longstr}" },
	{ { { "x-queue-type", 'S', 0, "foo" } }, INV("x-queue-type") "\"unsupported queue type 'foo'\"" },
	{ { { "x-queue-type", 'S', 0, "classic" } }, NULL },
	{ { { "x-queue-version", 'I', 3, NULL } }, INV("x-queue-version") "\"unsupported queue version '3'\"" },
	{ { { "x-queue-version", 'I', 2, NULL } }, NULL },
	/* validation order is RabbitMQ's, not the table's */
	{ { { "x-max-length", 'I', -1, NULL }, { "x-expires", 'I', 0, NULL } },
	  INV("x-expires") "{value_zero,0}" },
	{ { { "x-max-in-memory-length", 'I', -1, NULL } },
	  PF "invalid arg 'x-max-in-memory-length' for queue 'q' in vhost '/' of queue type rabbit_classic_queue" },
	{ { { "x-max-in-memory-length", 'I', -1, NULL }, { "x-max-length", 'I', -1, NULL } },
	  INV("x-max-length") "{value_negative,-1}" },
	{ { { "x-delivery-limit", 'I', 5, NULL } },
	  PF "invalid arg 'x-delivery-limit' for queue 'q' in vhost '/' of queue type rabbit_classic_queue" },
	{ { { "x-max-age", 'S', 0, "1D" } },
	  PF "invalid arg 'x-max-age' for queue 'q' in vhost '/' of queue type rabbit_classic_queue" },
	{ { { "x-queue-type", 'S', 0, "quorum" }, { "x-max-priority", 'I', 5, NULL } },
	  PF "invalid arg 'x-max-priority' for queue 'q' in vhost '/' of queue type rabbit_quorum_queue" },
	{ { { "x-queue-type", 'S', 0, "quorum" }, { "x-delivery-limit", 'I', 5, NULL } }, NULL },
	{ { { "x-foo", 'I', -1, NULL }, { "foo", 'S', 0, "bar" } }, NULL },
};

#define NARGS(a) (sizeof(a) / sizeof((a)[0]))

/* A table of the first n arguments of a (fewer if one has type 0). */
static struct ftable build_args(struct ftable_builder *b, const struct arg *a, size_t n)
{
	ftable_builder_init(b);
	for (size_t i = 0; i < n && a[i].type; i++) {
		switch (a[i].type) {
		case 'S':
			ftable_put_str(b, a[i].key, bytes_of(a[i].s));
			break;
		case 'x':
			ftable_put_bytes(b, a[i].key, bytes_of(a[i].s));
			break;
		case 't':
			ftable_put_bool(b, a[i].key, a[i].i != 0);
			break;
		case 'V':
			ftable_put_void(b, a[i].key);
			break;
		case 'D':
			ftable_put_decimal(b, a[i].key, 1, 15);
			break;
		case 'A': {
			struct ftable empty = { NULL, 0 };
			ftable_put_array(b, a[i].key, empty);
			break;
		}
		case 'F': {
			struct ftable empty = { NULL, 0 };
			ftable_put_table(b, a[i].key, empty);
			break;
		}
		default:
			ftable_put_int(b, a[i].key, a[i].type, a[i].i);
		}
	}
	ck_assert(!b->oom);
	return ftable_builder_get(b);
}

START_TEST(test_args_cases)
{
	const struct args_case *c = &args_cases[_i];
	struct ftable_builder b;
	struct queue_args qa;
	struct reply err = { 0 };
	struct ftable t = build_args(&b, c->a, NARGS(c->a));
	int rc = queue_args_parse(t, bytes_of("q"), "/", &qa, &err);

	if (c->text) {
		ck_assert_int_eq(rc, -1);
		ck_assert_int_eq(err.code, 406);
		ck_assert_str_eq(err.text, c->text);
		ck_assert_ptr_null(qa.dlx.ptr);
	} else {
		ck_assert_msg(rc == 0, "case %d: %s", _i, err.text);
		queue_args_free(&qa);
	}
	ftable_builder_free(&b);
}
END_TEST

START_TEST(test_args_values)
{
	const struct arg a[] = {
		{ "x-message-ttl", 'i', 1000, NULL },
		{ "x-dead-letter-exchange", 'S', 0, "dlx" },
		{ "x-max-priority", 'b', 10, NULL },
	};
	struct ftable_builder b, b2;
	struct queue_args qa;
	struct reply err = { 0 };
	struct ftable t = build_args(&b, a, NARGS(a));

	ck_assert_int_eq(queue_args_parse(t, bytes_of("q"), "/", &qa, &err), 0);
	ck_assert_int_eq(qa.message_ttl, 1000);
	ck_assert(qa.has_dlx && bytes_eq_str(qa.dlx, "dlx") && qa.dlx.ptr[3] == 0);
	ck_assert(!qa.has_dlrk);
	ck_assert_int_eq(qa.max_priority, 10);
	ck_assert_int_eq(qa.expires, -1);
	ck_assert_int_eq(qa.max_length, -1);
	ck_assert_int_eq(qa.max_length_bytes, -1);
	ck_assert_int_eq(qa.overflow, QUEUE_OVERFLOW_DROP_HEAD);
	ck_assert(!qa.single_active_consumer);
	ck_assert_int_eq(qa.type, QUEUE_TYPE_CLASSIC);
	/* the queue takes the parsed arguments over */
	struct queue *q = queue_new(bytes_of("q"), "/", QUEUE_F_DURABLE, t, &qa, NULL, NULL);
	ck_assert(ftable_equal(q->raw_args, t));
	ck_assert(q->raw_args.ptr != t.ptr);
	ck_assert_uint_eq(q->name.ptr[q->name.len], 0);
	ftable_builder_free(&b);
	pub(q, "no hooks needed", 0);
	queue_delete(q);

	const struct arg a2[] = {
		{ "x-dead-letter-routing-key", 'S', 0, "" },
		{ "x-dead-letter-exchange", 'S', 0, "" },
		{ "x-overflow", 'S', 0, "reject-publish-dlx" },
	};
	t = build_args(&b2, a2, NARGS(a2));
	ck_assert_int_eq(queue_args_parse(t, bytes_of("q"), "/", &qa, &err), 0);
	ck_assert(qa.has_dlx && qa.dlx.len == 0 && qa.has_dlrk && qa.dlrk.len == 0);
	ck_assert_int_eq(qa.overflow, QUEUE_OVERFLOW_REJECT_PUBLISH);
	ck_assert(qa.overflow_dlx);
	queue_args_free(&qa);
	ftable_builder_free(&b2);

	const struct arg a3[] = {
		{ "x-expires", 'l', 5000, NULL },
		{ "x-max-length", 's', 10, NULL },
		{ "x-single-active-consumer", 't', 1, NULL },
	};
	t = build_args(&b2, a3, NARGS(a3));
	ck_assert_int_eq(queue_args_parse(t, bytes_of("q"), "/", &qa, &err), 0);
	ck_assert_int_eq(qa.expires, 5000);
	ck_assert_int_eq(qa.max_length, 10);
	ck_assert(qa.single_active_consumer);
	queue_args_free(&qa);
	ftable_builder_free(&b2);
}
END_TEST

START_TEST(test_args_names_escaped)
{
	const struct arg a[] = { { "x-max-length", 'I', -1, NULL } };
	struct ftable_builder b;
	struct queue_args qa;
	struct reply err = { 0 };
	struct ftable t = build_args(&b, a, NARGS(a));
	struct bytes name = { (const uint8_t *)"a\nb", 3 };

	ck_assert_int_eq(queue_args_parse(t, name, "vh", &qa, &err), -1);
	ck_assert_str_eq(err.text, PF "invalid arg 'x-max-length' for queue 'a\\x0ab' in vhost 'vh': "
	                           "{value_negative,-1}");
	ftable_builder_free(&b);
}
END_TEST

START_TEST(test_consume_args)
{
	struct ftable_builder b;
	struct reply err = { 0 };
	int32_t prio = 99;
	struct ftable none = { NULL, 0 };
	const struct arg bad[] = { { "x-priority", 'S', 0, "a" } };
	const struct arg big[] = { { "x-priority", 'l', INT64_C(1) << 40, NULL } };
	const struct arg neg[] = { { "x-priority", 'I', -7, NULL } };

	ck_assert_int_eq(queue_consume_args_parse(none, bytes_of("q"), "/", &prio, &err), 0);
	ck_assert_int_eq(prio, 0);
	struct ftable t = build_args(&b, bad, NARGS(bad));
	ck_assert_int_eq(queue_consume_args_parse(t, bytes_of("h5c"), "/", &prio, &err), -1);
	ck_assert_int_eq(err.code, 406);
	ck_assert_str_eq(err.text, PF "invalid arg 'x-priority' for queue 'h5c' in vhost '/': "
	                           "\"expected integer, got longstr\"");
	ftable_builder_free(&b);
	t = build_args(&b, big, NARGS(big));
	ck_assert_int_eq(queue_consume_args_parse(t, bytes_of("q"), "/", &prio, &err), 0);
	ck_assert_int_eq(prio, INT32_MAX);
	ftable_builder_free(&b);
	t = build_args(&b, neg, NARGS(neg));
	ck_assert_int_eq(queue_consume_args_parse(t, bytes_of("q"), "/", &prio, &err), 0);
	ck_assert_int_eq(prio, -7);
	ftable_builder_free(&b);
}
END_TEST

static const struct {
	const char *in;
	int64_t ttl;       /* when valid */
	const char *text;  /* expected error, NULL when valid */
} expiration_cases[] = {
	{ "abc", 0, PF "invalid expiration 'abc': no_integer" },
	{ "-1", 0, PF "invalid expiration '-1': {value_negative,-1}" },
	{ "10x", 0, PF "invalid expiration '10x': {leftover_string,\"x\"}" },
	{ "", 0, PF "invalid expiration '': no_integer" },
	{ " 5", 0, PF "invalid expiration ' 5': no_integer" },
	{ "1.5", 0, PF "invalid expiration '1.5': {leftover_string,\".5\"}" },
	{ "315360000001", 0, PF "invalid expiration '315360000001': {value_too_large,315360000001}" },
	{ "99999999999999999999", 0,
	  PF "invalid expiration '99999999999999999999': {value_too_large,\n"
	     "                                            99999999999999999999}" },
	{ "+5", 5, NULL },
	{ "0", 0, NULL },
	{ "-0", 0, NULL },
	{ "4294967296", 4294967296, NULL },
	{ "315360000000", 315360000000, NULL },
	{ "007", 7, NULL },
};

START_TEST(test_expiration_parse)
{
	struct reply err = { 0 };
	int64_t ttl = -1;
	int rc = queue_expiration_parse(bytes_of(expiration_cases[_i].in), &ttl, &err);

	if (expiration_cases[_i].text) {
		ck_assert_int_eq(rc, -1);
		ck_assert_int_eq(err.code, 406);
		ck_assert_str_eq(err.text, expiration_cases[_i].text);
		ck_assert_int_eq(queue_expiration_parse(bytes_of(expiration_cases[_i].in), &ttl, NULL), -1);
	} else {
		ck_assert_int_eq(rc, 0);
		ck_assert_int_eq(ttl, expiration_cases[_i].ttl);
	}
}
END_TEST

TCase *queue_args_tcase(void)
{
	TCase *tc = tcase_create("arguments");

	tcase_add_loop_test(tc, test_args_cases, 0, (int)(sizeof(args_cases) / sizeof(args_cases[0])));
	tcase_add_test(tc, test_args_values);
	tcase_add_test(tc, test_args_names_escaped);
	tcase_add_test(tc, test_consume_args);
	tcase_add_loop_test(tc, test_expiration_parse, 0,
	                    (int)(sizeof(expiration_cases) / sizeof(expiration_cases[0])));
	return tc;
}
