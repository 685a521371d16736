/*
 * Unit tests for the router (vhost, exchanges, bindings, routing) against
 * real queues: matching tables for each exchange type (topic and headers
 * edge cases), exchange-to-exchange loops, alternate exchanges and dedup.
 * The declaration rules (router_defs_test.c) share the fixture below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router_test_util.h"
#include "runner.h"

struct vhost *vh;
struct reply err;
const struct ftable none = { NULL, 0 };
int conn_a, conn_b;

#define MAX_TABLES 32
static struct ftable_builder tables[MAX_TABLES];
static int ntables;

void setup(void)
{
	vh = vhost_new(NULL, "/");
	memset(&err, 0, sizeof(err));
	ntables = 0;
}

void teardown(void)
{
	vhost_free(vh);
	for (int i = 0; i < ntables; i++)
		ftable_builder_free(&tables[i]);
}

struct ftable_builder *tb(void)
{
	ck_assert_int_lt(ntables, MAX_TABLES);
	struct ftable_builder *b = &tables[ntables++];
	ftable_builder_init(b);
	return b;
}

struct bytes B(const char *s)
{
	return bytes_of(s);
}

struct queue *declare_q(const char *name)
{
	struct queue *q = NULL;
	ck_assert_int_eq(vhost_queue_declare(vh, B(name), false, false, false, false, none, &conn_a,
	                                     NULL, NULL, &q, &err),
	                 0);
	return q;
}

void declare_x(const char *name, const char *type)
{
	ck_assert_int_eq(vhost_exchange_declare(vh, B(name), B(type), false, false, false, false,
	                                        none, &err),
	                 0);
}

void qbind(const char *q, const char *x, const char *key, struct ftable args)
{
	ck_assert_int_eq(vhost_queue_bind(vh, B(q), B(x), B(key), args, &err), 0);
}

void xbind(const char *dst, const char *src, const char *key)
{
	ck_assert_int_eq(vhost_exchange_bind(vh, B(dst), B(src), B(key), none, &err), 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Route and return the sorted, comma-separated queue names. */
const char *route_keys(const char *xname, const struct bytes *keys, size_t n,
                              struct ftable headers)
{
	static char out[1024];
	struct exchange *x = vhost_exchange_find(vh, B(xname));
	ck_assert_ptr_nonnull(x);
	struct route_result rr;
	route_result_init(&rr);
	size_t cnt = exchange_route(vh, x, keys, n, headers, &rr);
	ck_assert_uint_eq(cnt, rr.n);
	const char *names[64];
	ck_assert_uint_le(rr.n, 64);
	for (size_t i = 0; i < rr.n; i++)
		names[i] = (const char *)rr.queues[i]->name.ptr;
	qsort(names, rr.n, sizeof(names[0]), cmp_str);
	out[0] = 0;
	for (size_t i = 0; i < rr.n; i++) {
		if (i)
			strcat(out, ",");
		strcat(out, names[i]);
	}
	route_result_free(&rr);
	return out;
}

const char *route(const char *xname, const char *key)
{
	struct bytes k = B(key);
	return route_keys(xname, &k, 1, none);
}

const char *route_h(const char *xname, struct ftable headers)
{
	struct bytes k = B("");
	return route_keys(xname, &k, 1, headers);
}

void expect_err(int rc, uint16_t code, const char *text)
{
	ck_assert_int_eq(rc, -1);
	ck_assert_uint_eq(err.code, code);
	ck_assert_str_eq(err.text, text);
	memset(&err, 0, sizeof(err));
}

void declare_ae(const char *name, const char *type, const char *ae)
{
	struct ftable_builder *t = tb();
	ftable_put_str(t, "alternate-exchange", B(ae));
	ck_assert_int_eq(vhost_exchange_declare(vh, B(name), B(type), false, false, false, false,
	                                        ftable_builder_get(t), &err),
	                 0);
}

/* ---- topic matching table ---------------------------------------------- */

static const struct {
	const char *binding, *key;
	bool match;
} topic_cases[] = {
	{ "a.b.c", "a.b.c", true }, { "a.b.c", "a.b", false }, { "a.b", "a.b.c", false },
	{ "a.*.c", "a.b.c", true }, { "a.*.c", "a.c", false }, { "a.*.c", "a.b.b.c", false },
	{ "a.#.c", "a.c", true }, { "a.#.c", "a.b.b.c", true }, { "a.#.c", "a.b.b.d", false },
	{ "#", "", true }, { "#", "a", true }, { "#", "a.b.c", true }, { "#", ".", true },
	{ "*", "", false }, { "*", "a", true }, { "*", "a.b", false },
	/* "" is zero words: only the empty key matches it */
	{ "", "", true }, { "", "a", false }, { "", ".", false },
	/* empty words are words */
	{ "a..b", "a..b", true }, { "a..b", "a.b", false }, { "a.*.b", "a..b", true },
	{ "a.*", "a.", true }, { "a.*", "a", false }, { "*.*", ".", true }, { ".", ".", true },
	{ "*", ".", false }, { "a.#", "a", true }, { "a.#", "a.", true }, { "a.#", "ab", false },
	/* # at both ends and doubled */
	{ "#.a", "a", true }, { "#.a", "b.a", true }, { "#.a", "a.b", false },
	{ "#.a.#", "a", true }, { "#.a.#", "x.a.y", true }, { "#.a.#", "x.b.y", false },
	{ "#.#", "", true }, { "#.#", "a.b", true }, { "#.#.#.#", "a.b.c.d.e", true },
	{ "*.#", "", false }, { "*.#", "a", true }, { "#.*", "", false }, { "#.*", "a.b.c", true },
	{ "a.#.b", "a.b", true }, { "a.#.b", "a.x.y.b", true }, { "a.#.b", "a.x.y.c", false },
	{ "a.*.#", "a.b", true }, { "a.*.#", "a", false }, { "#.b.#.d", "a.b.c.d.e.d", true },
	{ "*.*.*", "a.b", false }, { "#.x.#.y.#.z", "q.x.w.y.e.z", true },
	{ "#.x.#.y.#.z", "q.x.w.z.e.y", false },
	/* "a#" and "*a" are literal words, not wildcards */
	{ "a#", "a#", true }, { "a#", "ab", false }, { "*a", "ba", false }, { "*a", "*a", true },
};

START_TEST(test_topic_table)
{
	declare_x("t", "topic");
	declare_q("q");
	qbind("q", "t", topic_cases[_i].binding, none);
	const char *got = route("t", topic_cases[_i].key);
	if (strcmp(got, topic_cases[_i].match ? "q" : "") != 0)
		ck_abort_msg("binding '%s' key '%s': expected %s", topic_cases[_i].binding,
		             topic_cases[_i].key, topic_cases[_i].match ? "match" : "no match");
}
END_TEST

START_TEST(test_topic_long_keys)
{
	/* 128 one-letter words: a 255-byte key */
	char key[256], stars[256];
	size_t o = 0;
	for (int i = 0; i < 128; i++) {
		if (i) {
			key[o] = '.';
			stars[o] = '.';
			o++;
		}
		key[o] = 'a';
		stars[o] = '*';
		o++;
	}
	key[o] = stars[o] = 0;
	ck_assert_uint_eq(strlen(key), 255);
	declare_x("t", "topic");
	declare_q("exact");
	declare_q("stars");
	declare_q("hash");
	declare_q("hashes");
	qbind("exact", "t", key, none);
	qbind("stars", "t", stars, none);
	qbind("hash", "t", "#", none);
	qbind("hashes", "t", "#.#.#.#.#.#.#.#.a.#.#.#.#.#.#.#.#", none);
	ck_assert_str_eq(route("t", key), "exact,hash,hashes,stars");
	key[254] = 'b'; /* still has "a" words for the #...a...# binding */
	ck_assert_str_eq(route("t", key), "hash,hashes,stars");
	/* 256 empty words */
	char dots[256];
	memset(dots, '.', 255);
	dots[255] = 0;
	ck_assert_str_eq(route("t", dots), "hash");
}
END_TEST

START_TEST(test_topic_prune_and_shared_prefixes)
{
	declare_x("t", "topic");
	declare_q("q1");
	declare_q("q2");
	qbind("q1", "t", "a.b.c", none);
	qbind("q2", "t", "a.b", none);
	qbind("q2", "t", "a.*.c", none);
	ck_assert_str_eq(route("t", "a.b.c"), "q1,q2");
	ck_assert_int_eq(vhost_queue_unbind(vh, B("q1"), B("t"), B("a.b.c"), none, &err), 0);
	ck_assert_str_eq(route("t", "a.b.c"), "q2");
	ck_assert_str_eq(route("t", "a.b"), "q2");
	ck_assert_int_eq(vhost_queue_unbind(vh, B("q2"), B("t"), B("a.*.c"), none, &err), 0);
	ck_assert_int_eq(vhost_queue_unbind(vh, B("q2"), B("t"), B("a.b"), none, &err), 0);
	ck_assert_str_eq(route("t", "a.b"), "");
	/* the trie is back to its root: no literal edges left */
	struct exchange *x = vhost_exchange_find(vh, B("t"));
	ck_assert_ptr_null(x->out);
	qbind("q1", "t", "a.b.c", none);
	ck_assert_str_eq(route("t", "a.b.c"), "q1");
}
END_TEST

/* ---- direct and fanout ------------------------------------------------- */

START_TEST(test_direct_and_cc)
{
	declare_x("d", "direct");
	declare_q("q1");
	declare_q("q2");
	declare_q("q3");
	qbind("q1", "d", "k", none);
	qbind("q2", "d", "k", none);
	qbind("q3", "d", "other", none);
	ck_assert_str_eq(route("d", "k"), "q1,q2");
	ck_assert_str_eq(route("d", "K"), "");
	ck_assert_str_eq(route("d", ""), "");
	struct bytes keys[3] = { B("k"), B("other"), B("k") }; /* routing key + CC + BCC */
	ck_assert_str_eq(route_keys("d", keys, 3, none), "q1,q2,q3");
	ck_assert_int_eq(vhost_queue_unbind(vh, B("q2"), B("d"), B("k"), none, &err), 0);
	ck_assert_str_eq(route("d", "k"), "q1");
	/* empty key binds like any other */
	qbind("q3", "d", "", none);
	ck_assert_str_eq(route("d", ""), "q3");
}
END_TEST

START_TEST(test_fanout)
{
	declare_x("f", "fanout");
	ck_assert_str_eq(route("f", "x"), "");
	declare_q("q1");
	declare_q("q2");
	qbind("q1", "f", "ignored", none);
	qbind("q2", "f", "", none);
	ck_assert_str_eq(route("f", "anything"), "q1,q2");
}
END_TEST

START_TEST(test_default_exchange)
{
	declare_q("q1");
	declare_q("q2");
	ck_assert_str_eq(route("", "q1"), "q1");
	ck_assert_str_eq(route("", "nope"), "");
	struct bytes keys[3] = { B("q1"), B("q2"), B("q1") };
	ck_assert_str_eq(route_keys("", keys, 3, none), "q1,q2");
	/* amq.* exchanges exist from the start */
	ck_assert_ptr_nonnull(vhost_exchange_find(vh, B("amq.direct")));
	ck_assert_ptr_nonnull(vhost_exchange_find(vh, B("amq.fanout")));
	ck_assert_ptr_nonnull(vhost_exchange_find(vh, B("amq.topic")));
	ck_assert_ptr_nonnull(vhost_exchange_find(vh, B("amq.headers")));
	ck_assert_ptr_nonnull(vhost_exchange_find(vh, B("amq.match")));
	ck_assert(exchange_is_internal(vhost_exchange_find(vh, B("amq.rabbitmq.trace"))));
	qbind("q2", "amq.direct", "rk", none);
	ck_assert_str_eq(route("amq.direct", "rk"), "q2");
}
END_TEST

/* ---- headers ----------------------------------------------------------- */

START_TEST(test_headers_all_any)
{
	declare_x("h", "headers");
	declare_q("all");
	declare_q("any");
	declare_q("dflt");
	struct ftable_builder *a = tb();
	ftable_put_str(a, "x-match", B("all"));
	ftable_put_int(a, "n", 'I', 1);
	ftable_put_str(a, "s", B("x"));
	qbind("all", "h", "", ftable_builder_get(a));
	struct ftable_builder *y = tb();
	ftable_put_str(y, "x-match", B("any"));
	ftable_put_int(y, "n", 'I', 1);
	ftable_put_str(y, "s", B("x"));
	qbind("any", "h", "", ftable_builder_get(y));
	struct ftable_builder *d = tb(); /* no x-match: all */
	ftable_put_int(d, "n", 'I', 1);
	ftable_put_str(d, "s", B("x"));
	qbind("dflt", "h", "", ftable_builder_get(d));

	struct ftable_builder *h1 = tb(); /* both, other integer type, extra header */
	ftable_put_str(h1, "s", B("x"));
	ftable_put_int(h1, "other", 'I', 5);
	ftable_put_int(h1, "n", 'l', 1);
	ck_assert_str_eq(route_h("h", ftable_builder_get(h1)), "all,any,dflt");
	struct ftable_builder *h2 = tb(); /* one of them */
	ftable_put_int(h2, "n", 'b', 1);
	ck_assert_str_eq(route_h("h", ftable_builder_get(h2)), "any");
	struct ftable_builder *h3 = tb(); /* one matches, one differs */
	ftable_put_int(h3, "n", 'I', 1);
	ftable_put_str(h3, "s", B("y"));
	ck_assert_str_eq(route_h("h", ftable_builder_get(h3)), "any");
	ck_assert_str_eq(route_h("h", none), "");
}
END_TEST

START_TEST(test_headers_x_args_and_void)
{
	declare_x("h", "headers");
	declare_q("allx");   /* x-foo ignored: nothing left, all matches everything */
	declare_q("anyx");   /* x-foo ignored: nothing left, any matches nothing */
	declare_q("awx");    /* all-with-x: x-foo compared */
	declare_q("anwx");   /* any-with-x */
	declare_q("void");   /* presence only */
	struct ftable_builder *t;
	t = tb();
	ftable_put_str(t, "x-match", B("all"));
	ftable_put_int(t, "x-foo", 'I', 1);
	qbind("allx", "h", "", ftable_builder_get(t));
	t = tb();
	ftable_put_str(t, "x-match", B("any"));
	ftable_put_int(t, "x-foo", 'I', 1);
	qbind("anyx", "h", "", ftable_builder_get(t));
	t = tb();
	ftable_put_str(t, "x-match", B("all-with-x"));
	ftable_put_int(t, "x-foo", 'I', 1);
	qbind("awx", "h", "", ftable_builder_get(t));
	t = tb();
	ftable_put_str(t, "x-match", B("any-with-x"));
	ftable_put_int(t, "x-foo", 'I', 1);
	ftable_put_int(t, "a", 'I', 2);
	qbind("anwx", "h", "", ftable_builder_get(t));
	t = tb();
	ftable_put_void(t, "flag");
	qbind("void", "h", "", ftable_builder_get(t));

	ck_assert_str_eq(route_h("h", none), "allx");
	t = tb();
	ftable_put_int(t, "x-foo", 'I', 1);
	ck_assert_str_eq(route_h("h", ftable_builder_get(t)), "allx,anwx,awx");
	t = tb();
	ftable_put_str(t, "flag", B("anything"));
	ftable_put_int(t, "a", 'u', 2);
	ck_assert_str_eq(route_h("h", ftable_builder_get(t)), "allx,anwx,void");
	t = tb(); /* x-match in the message headers is just a header */
	ftable_put_str(t, "x-match", B("any-with-x"));
	ck_assert_str_eq(route_h("h", ftable_builder_get(t)), "allx");
}
END_TEST

static const struct {
	char ptype, dtype;
	double pv, dv; /* numbers; strings use pv != 0 as "abc" vs "abd" */
	bool match;
} headers_value_cases[] = {
	{ 'I', 'l', 7, 7, true },   /* integers of any width compare by value */
	{ 'B', 'i', 7, 7, true },
	{ 'I', 'd', 1, 1.0, true }, /* Erlang ==: 1 == 1.0 */
	{ 'I', 'd', 1, 1.5, false },
	{ 'f', 'd', 0.5, 0.5, true },
	{ 'I', 'l', -3, 3, false },
	{ 'T', 'l', 9, 9, true },   /* timestamps are integers */
	{ 't', 'I', 1, 1, false },  /* true is not 1 */
	{ 'S', 'x', 0, 0, true },   /* longstr vs byte array, same bytes */
	{ 'S', 'S', 0, 1, false },
	{ 'D', 'I', 1, 1, false },  /* a decimal is not an integer */
};

static void put_num(struct ftable_builder *b, const char *k, char type, double v)
{
	switch (type) {
	case 'd': ftable_put_double(b, k, v); break;
	case 'f': ftable_put_float(b, k, (float)v); break;
	case 't': ftable_put_bool(b, k, v != 0); break;
	case 'S': ftable_put_str(b, k, B(v != 0 ? "abd" : "abc")); break;
	case 'x': ftable_put_bytes(b, k, B(v != 0 ? "abd" : "abc")); break;
	case 'D': ftable_put_decimal(b, k, 0, (uint32_t)v); break;
	default: ftable_put_int(b, k, type, (int64_t)v); break;
	}
}

START_TEST(test_headers_value_types)
{
	declare_x("h", "headers");
	declare_q("q");
	struct ftable_builder *p = tb();
	put_num(p, "v", headers_value_cases[_i].ptype, headers_value_cases[_i].pv);
	qbind("q", "h", "", ftable_builder_get(p));
	struct ftable_builder *d = tb();
	put_num(d, "v", headers_value_cases[_i].dtype, headers_value_cases[_i].dv);
	ck_assert_str_eq(route_h("h", ftable_builder_get(d)), headers_value_cases[_i].match ? "q" : "");
}
END_TEST

START_TEST(test_headers_bad_x_match)
{
	declare_x("h", "headers");
	declare_q("q");
	struct ftable_builder *t = tb();
	ftable_put_str(t, "x-match", B("some"));
	expect_err(vhost_queue_bind(vh, B("q"), B("h"), B(""), ftable_builder_get(t), &err),
	           CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - Invalid x-match field value <<\"some\">>; expected all, "
	           "any, all-with-x, or any-with-x");
	t = tb();
	ftable_put_int(t, "x-match", 'I', 5);
	expect_err(vhost_queue_bind(vh, B("q"), B("h"), B(""), ftable_builder_get(t), &err),
	           CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - Invalid x-match field type signedint (value 5); expected "
	           "longstr");
	/* other exchange types do not look at x-match */
	qbind("q", "amq.direct", "k", ftable_builder_get(t));
}
END_TEST

/* ---- exchange-to-exchange, alternate exchanges, dedup ------------------ */

START_TEST(test_e2e_and_loops)
{
	declare_x("x1", "direct");
	declare_x("x2", "fanout");
	declare_x("x3", "topic");
	declare_q("q");
	declare_q("r");
	xbind("x2", "x1", "k");
	qbind("q", "x2", "", none);
	ck_assert_str_eq(route("x1", "k"), "q");
	ck_assert_str_eq(route("x1", "j"), "");
	/* a loop x1 -> x2 -> x3 -> x1, with queues on two of them: terminates, once each */
	xbind("x3", "x2", "");
	xbind("x1", "x3", "#");
	qbind("r", "x3", "k", none);
	qbind("q", "x1", "k", none);
	ck_assert_str_eq(route("x1", "k"), "q,r");
	ck_assert_str_eq(route("x2", "z"), "q");
	/* an exchange bound to itself */
	xbind("x2", "x2", "");
	ck_assert_str_eq(route("x2", "k"), "q,r");
	/* exchange.bind errors */
	expect_err(vhost_exchange_bind(vh, B("x1"), B("nope"), B(""), none, &err), CODEC_NOT_FOUND,
	           "NOT_FOUND - no exchange 'nope' in vhost '/'");
	expect_err(vhost_exchange_bind(vh, B("nope"), B("x1"), B(""), none, &err), CODEC_NOT_FOUND,
	           "NOT_FOUND - no exchange 'nope' in vhost '/'");
	expect_err(vhost_exchange_bind(vh, B(""), B("x1"), B(""), none, &err), CODEC_ACCESS_REFUSED,
	           "ACCESS_REFUSED - operation not permitted on the default exchange");
	expect_err(vhost_exchange_bind(vh, B("x1"), B(""), B(""), none, &err), CODEC_ACCESS_REFUSED,
	           "ACCESS_REFUSED - operation not permitted on the default exchange");
	/* unbinding what is not there is fine */
	ck_assert_int_eq(vhost_exchange_unbind(vh, B("x1"), B("nope"), B(""), none, &err), 0);
	ck_assert_int_eq(vhost_exchange_unbind(vh, B("x3"), B("x1"), B("zz"), none, &err), 0);
	ck_assert_int_eq(vhost_exchange_unbind(vh, B("x2"), B("x1"), B("k"), none, &err), 0);
	ck_assert_str_eq(route("x1", "k"), "q");
}
END_TEST

START_TEST(test_alternate_exchange)
{
	declare_ae("x", "direct", "ae");
	declare_x("ae", "fanout");
	declare_q("q");
	declare_q("unrouted");
	qbind("q", "x", "k", none);
	qbind("unrouted", "ae", "", none);
	ck_assert_str_eq(route("x", "k"), "q");
	ck_assert_str_eq(route("x", "other"), "unrouted");
	/* matched a binding to an exchange that routes nowhere: no AE */
	declare_x("empty", "fanout");
	xbind("empty", "x", "e");
	ck_assert_str_eq(route("x", "e"), "");
	/* a missing AE is ignored; AEs that point at each other end */
	declare_ae("y", "direct", "gone");
	ck_assert_str_eq(route("y", "k"), "");
	declare_ae("p", "direct", "r");
	declare_ae("r", "direct", "p");
	ck_assert_str_eq(route("p", "k"), "");
	/* AE chains are followed */
	declare_ae("c1", "direct", "c2");
	declare_ae("c2", "direct", "ae");
	ck_assert_str_eq(route("c1", "k"), "unrouted");
	/* a non-string AE is refused at declare */
	struct ftable_builder *t = tb();
	ftable_put_int(t, "alternate-exchange", 'I', 1);
	expect_err(vhost_exchange_declare(vh, B("bad"), B("direct"), false, false, false, false,
	                                  ftable_builder_get(t), &err),
	           CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - invalid type 'signedint' for arg 'alternate-exchange' in "
	           "exchange 'bad' in vhost '/'");
}
END_TEST

START_TEST(test_dedup_and_growth)
{
	declare_x("t", "topic");
	declare_x("f", "fanout");
	declare_q("q");
	qbind("q", "t", "a.*", none);
	qbind("q", "t", "*.b", none);
	qbind("q", "t", "#", none);
	qbind("q", "t", "a.b", none);
	xbind("f", "t", "#");
	qbind("q", "f", "", none);
	ck_assert_str_eq(route("t", "a.b"), "q");
	/* more queues than the inline room: the result grows, stays unique */
	char name[16];
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "m%02d", i);
		declare_q(name);
		qbind(name, "f", "", none);
		qbind(name, "t", "a.#", none);
	}
	struct route_result rr;
	route_result_init(&rr);
	struct bytes k = B("a.b");
	struct exchange *x = vhost_exchange_find(vh, B("t"));
	for (int round = 0; round < 3; round++) {
		ck_assert_uint_eq(exchange_route(vh, x, &k, 1, none, &rr), 41);
		for (size_t i = 0; i < rr.n; i++)
			for (size_t j = i + 1; j < rr.n; j++)
				ck_assert_ptr_ne(rr.queues[i], rr.queues[j]);
	}
	/* reused after growing: no new allocation, smaller results fine */
	struct queue **grown = rr.heap_q;
	ck_assert_ptr_nonnull(grown);
	k = B("z");
	ck_assert_uint_eq(exchange_route(vh, x, &k, 1, none, &rr), 41); /* via "#" and f */
	ck_assert_ptr_eq(rr.heap_q, grown);
	route_result_free(&rr);
}
END_TEST
Suite *unit_suite(void)
{
	Suite *s = suite_create("router");
	TCase *tc = tcase_create("matching");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_topic_table, 0, sizeof(topic_cases) / sizeof(topic_cases[0]));
	tcase_add_test(tc, test_topic_long_keys);
	tcase_add_test(tc, test_topic_prune_and_shared_prefixes);
	tcase_add_test(tc, test_direct_and_cc);
	tcase_add_test(tc, test_fanout);
	tcase_add_test(tc, test_default_exchange);
	tcase_add_test(tc, test_headers_all_any);
	tcase_add_test(tc, test_headers_x_args_and_void);
	tcase_add_loop_test(tc, test_headers_value_types, 0,
	                    sizeof(headers_value_cases) / sizeof(headers_value_cases[0]));
	tcase_add_test(tc, test_headers_bad_x_match);
	tcase_add_test(tc, test_e2e_and_loops);
	tcase_add_test(tc, test_alternate_exchange);
	tcase_add_test(tc, test_dedup_and_growth);
	suite_add_tcase(s, tc);

	suite_add_tcase(s, router_defs_tcase());
	return s;
}
