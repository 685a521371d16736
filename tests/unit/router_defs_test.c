/*
 * Router unit tests, second half: exchange declare/redeclare/delete rules,
 * auto-delete cascades, binding identity, and the queue registry (declare
 * equivalence, exclusivity, delete/purge, x-expires) with RabbitMQ's exact
 * error texts.  Fixture and helpers are in router_test.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/consumer.h"
#include "broker/message.h"
#include "router_test_util.h"

/* ---- exchange declare / delete ----------------------------------------- */

START_TEST(test_exchange_declare_rules)
{
	declare_x("x1", "direct");
	declare_x("x1", "direct");
	expect_err(vhost_exchange_declare(vh, B("x1"), B("fanout"), false, false, false, false, none,
	                                  &err),
	           CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x1' in vhost '/': "
	           "received 'fanout' but current is 'direct'");
	expect_err(vhost_exchange_declare(vh, B("x1"), B("direct"), false, true, false, false, none,
	                                  &err),
	           CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'x1' in vhost '/': "
	           "received 'true' but current is 'false'");
	expect_err(vhost_exchange_declare(vh, B("x1"), B("direct"), false, false, true, false, none,
	                                  &err),
	           CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange 'x1' in vhost "
	           "'/': received 'true' but current is 'false'");
	expect_err(vhost_exchange_declare(vh, B("x1"), B("direct"), false, false, false, true, none,
	                                  &err),
	           CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - inequivalent arg 'internal' for exchange 'x1' in vhost '/': "
	           "received 'true' but current is 'false'");
	expect_err(vhost_exchange_declare(vh, B("x1"), B("foo"), false, false, false, false, none,
	                                  &err),
	           CODEC_COMMAND_INVALID, "COMMAND_INVALID - unknown exchange type 'foo'");
	/* passive: type is not looked at */
	ck_assert_int_eq(vhost_exchange_declare(vh, B("x1"), B("foo"), true, true, true, true, none,
	                                        &err),
	                 0);
	expect_err(vhost_exchange_declare(vh, B("nope"), B("direct"), true, false, false, false, none,
	                                  &err),
	           CODEC_NOT_FOUND, "NOT_FOUND - no exchange 'nope' in vhost '/'");
	expect_err(vhost_exchange_declare(vh, B(""), B("direct"), false, false, false, false, none,
	                                  &err),
	           CODEC_ACCESS_REFUSED,
	           "ACCESS_REFUSED - operation not permitted on the default exchange");
	expect_err(vhost_exchange_declare(vh, B(""), B("direct"), true, false, false, false, none,
	                                  &err),
	           CODEC_ACCESS_REFUSED,
	           "ACCESS_REFUSED - operation not permitted on the default exchange");
	expect_err(vhost_exchange_declare(vh, B("amq.foo"), B("direct"), false, false, false, false,
	                                  none, &err),
	           CODEC_ACCESS_REFUSED,
	           "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'");
	/* existing amq.* exchanges may be redeclared equivalently */
	ck_assert_int_eq(vhost_exchange_declare(vh, B("amq.direct"), B("direct"), false, true, false,
	                                        false, none, &err),
	                 0);
	expect_err(vhost_exchange_declare(vh, B("amq.direct"), B("direct"), false, false, false,
	                                  false, none, &err),
	           CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'amq.direct' in "
	           "vhost '/': received 'false' but current is 'true'");
	/* CR and LF are stripped from names */
	declare_x("a\r\nb", "fanout");
	ck_assert_ptr_nonnull(vhost_exchange_find(vh, B("ab")));
}
END_TEST

START_TEST(test_exchange_args_equivalence)
{
	declare_ae("x", "direct", "a");
	declare_ae("x", "direct", "a");
	struct ftable_builder *t = tb();
	ftable_put_str(t, "alternate-exchange", B("b"));
	expect_err(vhost_exchange_declare(vh, B("x"), B("direct"), false, false, false, false,
	                                  ftable_builder_get(t), &err),
	           CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'x' in "
	           "vhost '/': received 'b' but current is 'a'");
	expect_err(vhost_exchange_declare(vh, B("x"), B("direct"), false, false, false, false, none,
	                                  &err),
	           CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'x' in "
	           "vhost '/': received none but current is the value 'a' of type 'longstr'");
	/* any other argument may differ */
	t = tb();
	ftable_put_str(t, "alternate-exchange", B("a"));
	ftable_put_int(t, "x-whatever", 'I', 3);
	ck_assert_int_eq(vhost_exchange_declare(vh, B("x"), B("direct"), false, false, false, false,
	                                        ftable_builder_get(t), &err),
	                 0);
}
END_TEST

START_TEST(test_exchange_delete)
{
	ck_assert_int_eq(vhost_exchange_delete(vh, B("missing"), false, &err), 0);
	expect_err(vhost_exchange_delete(vh, B(""), false, &err), CODEC_ACCESS_REFUSED,
	           "ACCESS_REFUSED - operation not permitted on the default exchange");
	expect_err(vhost_exchange_delete(vh, B("amq.direct"), false, &err), CODEC_ACCESS_REFUSED,
	           "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not "
	           "allowed");
	declare_x("x", "direct");
	declare_x("dst", "fanout");
	declare_q("q");
	/* being a destination does not make an exchange "in use" */
	xbind("dst", "x", "k");
	ck_assert_int_eq(vhost_exchange_delete(vh, B("dst"), true, &err), 0);
	ck_assert_ptr_null(vhost_exchange_find(vh, B("dst")));
	qbind("q", "x", "k", none);
	expect_err(vhost_exchange_delete(vh, B("x"), true, &err), CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - exchange 'x' in vhost '/' in use");
	ck_assert_uint_eq(hmap_count(&vh->bindings), 1);
	ck_assert_int_eq(vhost_exchange_delete(vh, B("x"), false, &err), 0);
	ck_assert_ptr_null(vhost_exchange_find(vh, B("x")));
	ck_assert_uint_eq(hmap_count(&vh->bindings), 0);
	ck_assert_ptr_null(vhost_queue_find(vh, B("q"))->route_data);
}
END_TEST

static void declare_ad(const char *name, const char *type)
{
	ck_assert_int_eq(vhost_exchange_declare(vh, B(name), B(type), false, false, true, false,
	                                        none, &err),
	                 0);
}

START_TEST(test_auto_delete_cascade)
{
	declare_ad("ad", "fanout");
	declare_q("q");
	declare_q("r");
	/* never bound: stays */
	ck_assert_ptr_nonnull(vhost_exchange_find(vh, B("ad")));
	qbind("q", "ad", "", none);
	qbind("r", "ad", "", none);
	ck_assert_int_eq(vhost_queue_unbind(vh, B("q"), B("ad"), B(""), none, &err), 0);
	ck_assert_ptr_nonnull(vhost_exchange_find(vh, B("ad")));
	ck_assert_int_eq(vhost_queue_unbind(vh, B("r"), B("ad"), B(""), none, &err), 0);
	ck_assert_ptr_null(vhost_exchange_find(vh, B("ad")));

	/* deleting a queue removes its bindings; a chain of auto-delete sources goes */
	declare_ad("ad1", "topic");
	declare_ad("ad2", "direct");
	declare_x("keep", "fanout");
	xbind("ad2", "ad1", "#");
	qbind("q", "ad2", "k", none);
	qbind("r", "keep", "", none);
	xbind("ad1", "keep", ""); /* ad1 is also a destination */
	uint32_t n = 99;
	ck_assert_int_eq(vhost_queue_delete(vh, B("q"), false, false, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(vhost_queue_find(vh, B("q")));
	ck_assert_ptr_null(vhost_exchange_find(vh, B("ad2")));
	ck_assert_ptr_null(vhost_exchange_find(vh, B("ad1")));
	ck_assert_ptr_nonnull(vhost_exchange_find(vh, B("keep")));
	ck_assert_uint_eq(hmap_count(&vh->bindings), 1); /* keep -> r */
	ck_assert_str_eq(route("keep", ""), "r");

	/* deleting a destination exchange removes the source's binding: auto-delete */
	declare_ad("src", "direct");
	declare_x("dst", "direct");
	xbind("dst", "src", "k");
	ck_assert_int_eq(vhost_exchange_delete(vh, B("dst"), false, &err), 0);
	ck_assert_ptr_null(vhost_exchange_find(vh, B("src")));
}
END_TEST

/* ---- bindings ---------------------------------------------------------- */

START_TEST(test_binding_identity)
{
	declare_x("d", "direct");
	declare_q("q");
	struct ftable_builder *a1 = tb();
	ftable_put_int(a1, "a", 'I', 1);
	ftable_put_str(a1, "b", B("two"));
	struct ftable_builder *a2 = tb(); /* same entries, other order */
	ftable_put_str(a2, "b", B("two"));
	ftable_put_int(a2, "a", 'I', 1);
	struct ftable_builder *a3 = tb(); /* other value */
	ftable_put_int(a3, "a", 'I', 2);
	qbind("q", "d", "k", ftable_builder_get(a1));
	qbind("q", "d", "k", ftable_builder_get(a1));
	qbind("q", "d", "k", ftable_builder_get(a2));
	ck_assert_uint_eq(hmap_count(&vh->bindings), 1);
	qbind("q", "d", "k", ftable_builder_get(a3));
	qbind("q", "d", "k", none);
	qbind("q", "d", "k2", none);
	ck_assert_uint_eq(hmap_count(&vh->bindings), 4);
	ck_assert_str_eq(route("d", "k"), "q");
	ck_assert_int_eq(vhost_queue_unbind(vh, B("q"), B("d"), B("k"), ftable_builder_get(a2), &err),
	                 0);
	ck_assert_uint_eq(hmap_count(&vh->bindings), 3);
	/* unbinding a missing binding, or from/to missing things, succeeds */
	ck_assert_int_eq(vhost_queue_unbind(vh, B("q"), B("d"), B("k"), ftable_builder_get(a2), &err),
	                 0);
	ck_assert_int_eq(vhost_queue_unbind(vh, B("nq"), B("d"), B("k"), none, &err), 0);
	ck_assert_int_eq(vhost_queue_unbind(vh, B("q"), B("nx"), B("k"), none, &err), 0);
	ck_assert_uint_eq(hmap_count(&vh->bindings), 3);
	/* bind errors: exchange checked before queue */
	expect_err(vhost_queue_bind(vh, B("nq"), B("nx"), B(""), none, &err), CODEC_NOT_FOUND,
	           "NOT_FOUND - no exchange 'nx' in vhost '/'");
	expect_err(vhost_queue_bind(vh, B("nq"), B("d"), B(""), none, &err), CODEC_NOT_FOUND,
	           "NOT_FOUND - no queue 'nq' in vhost '/'");
	expect_err(vhost_queue_bind(vh, B("q"), B(""), B("q"), none, &err), CODEC_ACCESS_REFUSED,
	           "ACCESS_REFUSED - operation not permitted on the default exchange");
	expect_err(vhost_queue_unbind(vh, B("q"), B(""), B("q"), none, &err), CODEC_ACCESS_REFUSED,
	           "ACCESS_REFUSED - operation not permitted on the default exchange");
}
END_TEST

/* ---- queue registry ---------------------------------------------------- */

static int qdecl(const char *name, bool passive, bool durable, bool excl, bool ad,
                 struct ftable args, void *conn, struct queue **q)
{
	return vhost_queue_declare(vh, B(name), passive, durable, excl, ad, args, conn, NULL, NULL,
	                           q, &err);
}

START_TEST(test_queue_declare_rules)
{
	struct queue *q, *q2;
	ck_assert_int_eq(qdecl("q", false, false, false, false, none, &conn_a, &q), 0);
	ck_assert_int_eq(qdecl("q", false, false, false, false, none, &conn_b, &q2), 0);
	ck_assert_ptr_eq(q, q2);
	expect_err(qdecl("q", false, true, false, false, none, &conn_a, &q2), CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': "
	           "received 'true' but current is 'false'");
	expect_err(qdecl("q", false, false, false, true, none, &conn_a, &q2), CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'q' in vhost '/': "
	           "received 'true' but current is 'false'");
	expect_err(qdecl("nq", true, false, false, false, none, &conn_a, &q2), CODEC_NOT_FOUND,
	           "NOT_FOUND - no queue 'nq' in vhost '/'");
	ck_assert_int_eq(qdecl("q", true, true, true, true, none, &conn_b, &q2), 0);
	ck_assert_ptr_eq(q, q2);
	expect_err(qdecl("amq.q", false, false, false, false, none, &conn_a, &q2),
	           CODEC_ACCESS_REFUSED,
	           "ACCESS_REFUSED - queue name 'amq.q' contains reserved prefix 'amq.*'");
	/* server-named */
	ck_assert_int_eq(qdecl("", false, false, true, false, none, &conn_a, &q), 0);
	ck_assert_int_eq(qdecl("", false, false, true, false, none, &conn_a, &q2), 0);
	ck_assert_ptr_ne(q, q2);
	ck_assert_uint_eq(q->name.len, 30);
	ck_assert_int_eq(memcmp(q->name.ptr, "amq.gen-", 8), 0);
	for (size_t i = 8; i < q->name.len; i++)
		ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
		                 q->name.ptr[i]));
	ck_assert(!bytes_eq(q->name, q2->name));
	/* ... and may then be redeclared by name (passive or not) */
	ck_assert_int_eq(vhost_queue_declare(vh, q->name, true, false, false, false, none, &conn_a,
	                                     NULL, NULL, &q2, &err),
	                 0);
	ck_assert_ptr_eq(q, q2);
	/* a non-passive declare by such a name hits the reserved prefix (RabbitMQ) */
	ck_assert_int_eq(vhost_queue_declare(vh, q->name, false, false, true, false, none, &conn_a,
	                                     NULL, NULL, &q2, &err),
	                 -1);
	ck_assert_uint_eq(err.code, CODEC_ACCESS_REFUSED);
	/* exclusive queues are never durable */
	ck_assert_int_eq(qdecl("ex", false, true, true, false, none, &conn_a, &q), 0);
	ck_assert_uint_eq(q->flags & (QUEUE_F_DURABLE | QUEUE_F_EXCLUSIVE), QUEUE_F_EXCLUSIVE);
	ck_assert_ptr_eq(q->owner, &conn_a);
	ck_assert_int_eq(qdecl("ex", false, true, true, false, none, &conn_a, &q2), 0);
}
END_TEST

#define LOCKED(q)                                                                        \
	"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '" q "' in vhost " \
	"'/'. It could be originally declared on another connection or the exclusive "      \
	"property value does not match that of the original declaration."

START_TEST(test_queue_exclusive)
{
	struct queue *q;
	ck_assert_int_eq(qdecl("e", false, false, true, false, none, &conn_a, &q), 0);
	expect_err(qdecl("e", false, false, true, false, none, &conn_b, &q), CODEC_RESOURCE_LOCKED,
	           LOCKED("e"));
	expect_err(qdecl("e", true, false, false, false, none, &conn_b, &q), CODEC_RESOURCE_LOCKED,
	           LOCKED("e"));
	ck_assert_int_eq(qdecl("e", true, false, false, false, none, &conn_a, &q), 0);
	/* the owner redeclaring it non-exclusive is refused too (strict match) */
	expect_err(qdecl("e", false, false, false, false, none, &conn_a, &q), CODEC_RESOURCE_LOCKED,
	           LOCKED("e"));
	/* and a shared queue cannot be redeclared exclusive */
	ck_assert_int_eq(qdecl("s", false, false, false, false, none, &conn_a, &q), 0);
	expect_err(qdecl("s", false, false, true, false, none, &conn_a, &q), CODEC_RESOURCE_LOCKED,
	           LOCKED("s"));
	/* a closing connection takes its exclusive queues and their bindings along */
	ck_assert_int_eq(qdecl("e2", false, false, true, false, none, &conn_a, &q), 0);
	ck_assert_int_eq(qdecl("eb", false, false, true, false, none, &conn_b, &q), 0);
	qbind("e2", "amq.fanout", "", none);
	qbind("s", "amq.fanout", "", none);
	vhost_delete_owned(vh, &conn_a);
	ck_assert_ptr_null(vhost_queue_find(vh, B("e")));
	ck_assert_ptr_null(vhost_queue_find(vh, B("e2")));
	ck_assert_ptr_nonnull(vhost_queue_find(vh, B("s")));
	ck_assert_ptr_nonnull(vhost_queue_find(vh, B("eb")));
	ck_assert_str_eq(route("amq.fanout", ""), "s");
}
END_TEST

START_TEST(test_queue_args_equivalence)
{
	struct queue *q;
	struct ftable_builder *a = tb();
	ftable_put_int(a, "x-max-length", 'I', 10);
	ftable_put_str(a, "x-custom", B("one"));
	ck_assert_int_eq(qdecl("q", false, false, false, false, ftable_builder_get(a), &conn_a, &q), 0);
	struct ftable_builder *b = tb(); /* same value as another integer type; custom differs */
	ftable_put_str(b, "x-custom", B("two"));
	ftable_put_int(b, "x-max-length", 'l', 10);
	ck_assert_int_eq(qdecl("q", false, false, false, false, ftable_builder_get(b), &conn_a, &q), 0);
	struct ftable_builder *c = tb();
	ftable_put_int(c, "x-max-length", 'I', 20);
	expect_err(qdecl("q", false, false, false, false, ftable_builder_get(c), &conn_a, &q),
	           CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q' in vhost "
	           "'/': received '20' but current is '10'");
	expect_err(qdecl("q", false, false, false, false, none, &conn_a, &q), CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q' in vhost "
	           "'/': received none but current is the value '10' of type 'signedint'");
	struct ftable_builder *d = tb();
	ftable_put_int(d, "x-max-length", 'I', 10);
	ftable_put_int(d, "x-message-ttl", 'I', 500);
	expect_err(qdecl("q", false, false, false, false, ftable_builder_get(d), &conn_a, &q),
	           CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost "
	           "'/': received the value '500' of type 'signedint' but current is none");
	/* x-queue-type classic is what a queue without x-queue-type is */
	struct ftable_builder *e = tb();
	ftable_put_int(e, "x-max-length", 'I', 10);
	ftable_put_str(e, "x-queue-type", B("classic"));
	ck_assert_int_eq(qdecl("q", false, false, false, false, ftable_builder_get(e), &conn_a, &q), 0);
	/* bad values on creation come from the queue's argument parser */
	struct ftable_builder *f = tb();
	ftable_put_int(f, "x-max-length", 'I', -1);
	ck_assert_int_eq(qdecl("bad", false, false, false, false, ftable_builder_get(f), &conn_a, &q),
	                 -1);
	ck_assert_uint_eq(err.code, CODEC_PRECONDITION_FAILED);
	ck_assert_ptr_nonnull(strstr(err.text, "'x-max-length'"));
	ck_assert_ptr_null(vhost_queue_find(vh, B("bad")));
}
END_TEST

static bool never_ready(struct consumer *c)
{
	(void)c;
	return false;
}

static void no_deliver(struct consumer *c, struct queue *q, struct queue_entry *e)
{
	(void)c;
	(void)q;
	(void)e;
}

static int cancelled_count;

static void count_cancel(struct consumer *c)
{
	(void)c;
	cancelled_count++;
}

static const struct consumer_ops test_consumer_ops = { never_ready, no_deliver, count_cancel };

static struct queue *gone_seen;

static void on_gone(void *ctx, struct queue *q)
{
	*(int *)ctx += 1;
	gone_seen = q;
}

START_TEST(test_queue_delete_and_purge)
{
	uint32_t n = 7;
	int gone = 0;
	vh->queue_gone = on_gone;
	vh->queue_gone_ctx = &gone;
	ck_assert_int_eq(vhost_queue_delete(vh, B("missing"), true, true, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	expect_err(vhost_queue_purge(vh, B("missing"), &n, &err), CODEC_NOT_FOUND,
	           "NOT_FOUND - no queue 'missing' in vhost '/'");
	struct queue *q = declare_q("q");
	qbind("q", "amq.topic", "#", none);
	uint8_t props[2] = { 0, 0 };
	for (int i = 0; i < 3; i++) {
		struct message *m = message_new(B(""), B("q"), (struct bytes){ props, 2 }, 0);
		ck_assert_ptr_nonnull(m);
		ck_assert_int_eq(queue_publish(q, m, 0), QUEUE_PUBLISH_OK);
		message_unref(m);
	}
	struct consumer c = { .ops = &test_consumer_ops, .tag = B("ctag") };
	ck_assert_int_eq(queue_consumer_add(q, &c, &err), 0);
	expect_err(vhost_queue_delete(vh, B("q"), false, true, &n, &err), CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - queue 'q' in vhost '/' not empty");
	expect_err(vhost_queue_delete(vh, B("q"), true, false, &n, &err), CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - queue 'q' in vhost '/' in use");
	/* both set: emptiness is checked first, as RabbitMQ's queue process does */
	expect_err(vhost_queue_delete(vh, B("q"), true, true, &n, &err), CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - queue 'q' in vhost '/' not empty");
	ck_assert_int_eq(vhost_queue_purge(vh, B("q"), &n, &err), 0);
	ck_assert_uint_eq(n, 3);
	expect_err(vhost_queue_delete(vh, B("q"), true, true, &n, &err), CODEC_PRECONDITION_FAILED,
	           "PRECONDITION_FAILED - queue 'q' in vhost '/' in use");
	ck_assert_int_eq(gone, 0);
	ck_assert_int_eq(vhost_queue_delete(vh, B("q"), false, false, &n, &err), 0);
	ck_assert_int_eq(cancelled_count, 1);
	ck_assert_int_eq(gone, 1);
	ck_assert_ptr_eq(gone_seen, q);
	ck_assert_ptr_null(vhost_queue_find(vh, B("q")));
	ck_assert_uint_eq(hmap_count(&vh->bindings), 0);
	ck_assert_str_eq(route("amq.topic", "q"), "");
	/* deleting again by pointer is a no-op */
	q = declare_q("q2");
	ck_assert_uint_eq(vhost_queue_remove(vh, q), 0);
	ck_assert_int_eq(gone, 2);
}
END_TEST

START_TEST(test_queue_expires_tick)
{
	struct queue *q;
	struct ftable_builder *a = tb();
	ftable_put_int(a, "x-expires", 'I', 1000);
	ck_assert_int_eq(qdecl("tmp", false, false, false, false, ftable_builder_get(a), &conn_a, &q),
	                 0);
	qbind("tmp", "amq.direct", "k", none);
	queue_touch(q, 0);
	vhost_tick(vh, 999);
	ck_assert_ptr_eq(vhost_queue_find(vh, B("tmp")), q);
	vhost_tick(vh, 1000);
	ck_assert_ptr_null(vhost_queue_find(vh, B("tmp")));
	ck_assert_str_eq(route("amq.direct", "k"), "");

	/* never touched by the glue: the idle clock starts at the first tick */
	ck_assert_int_eq(qdecl("tmp2", false, false, false, false, ftable_builder_get(a), &conn_a, &q),
	                 0);
	vhost_tick(vh, 5000);
	vhost_tick(vh, 5999);
	ck_assert_ptr_eq(vhost_queue_find(vh, B("tmp2")), q);
	vhost_tick(vh, 6000);
	ck_assert_ptr_null(vhost_queue_find(vh, B("tmp2")));

	/* message TTL: expired head messages go at the tick */
	struct ftable_builder *t = tb();
	ftable_put_int(t, "x-message-ttl", 'I', 100);
	ck_assert_int_eq(qdecl("ttl", false, false, false, false, ftable_builder_get(t), &conn_a, &q),
	                 0);
	uint8_t props[2] = { 0, 0 };
	struct message *m = message_new(B(""), B("ttl"), (struct bytes){ props, 2 }, 0);
	ck_assert_int_eq(queue_publish(q, m, 0), QUEUE_PUBLISH_OK);
	message_unref(m);
	vhost_tick(vh, 50);
	ck_assert_uint_eq(queue_message_count(q), 1);
	vhost_tick(vh, 1000);
	ck_assert_uint_eq(queue_message_count(q), 0);
}
END_TEST

/* ---- randomized: cascades keep every index consistent ------------------ */

static uint64_t rnd_next(uint64_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 7;
	*st ^= *st << 17;
	return *st;
}

/* Every binding is on its source's out-list, its destination's in-list and
 * in the map; both ends are registered; the counts agree. */
static void check_router_invariants(void)
{
	size_t total = 0, it = 0;
	void *v;
	while (hmap_next(&vh->exchanges, &it, NULL, &v)) {
		struct exchange *x = v;
		ck_assert_ptr_eq(vhost_exchange_find(vh, x->name), x);
		size_t n = 0;
		for (struct binding *b = x->out; b; b = b->out_next) {
			ck_assert_ptr_eq(b->source, x);
			ck_assert_ptr_eq(hmap_get(&vh->bindings, b->ikey), b);
			if (b->dest_q) {
				ck_assert_ptr_eq(vhost_queue_find(vh, b->dest_q->name), b->dest_q);
			} else {
				ck_assert_ptr_eq(vhost_exchange_find(vh, b->dest_x->name), b->dest_x);
				bool found = false;
				for (struct binding *i = b->dest_x->in; i; i = i->in_next)
					found |= i == b;
				ck_assert(found);
			}
			n++;
		}
		ck_assert_uint_eq(n, x->nout);
		total += n;
	}
	ck_assert_uint_eq(total, hmap_count(&vh->bindings));
	it = 0;
	while (hmap_next(&vh->queues, &it, NULL, &v))
		for (struct binding *b = binding_queue_in(v); b; b = b->in_next)
			ck_assert_ptr_eq(b->dest_q, v);
}

START_TEST(test_random_cascades)
{
	static const char *const types[] = { "direct", "fanout", "topic", "headers" };
	static const char *const keys[] = { "a", "b", "a.b", "#", "*.b", "" };
	uint64_t st = 0x2545F4914F6CDD1Dull + (uint64_t)_i;
	char n1[16], n2[16];
	for (int op = 0; op < 3000; op++) {
		unsigned r = (unsigned)(rnd_next(&st) % 100);
		unsigned a = (unsigned)(rnd_next(&st) % 8), b = (unsigned)(rnd_next(&st) % 8);
		const char *key = keys[rnd_next(&st) % 6];
		if (r < 10) {
			snprintf(n1, sizeof(n1), "x%u", a);
			vhost_exchange_declare(vh, B(n1), B(types[a % 4]), false, false, a % 2 == 0,
			                       false, none, &err);
		} else if (r < 18) {
			snprintf(n1, sizeof(n1), "q%u", a);
			struct queue *q;
			vhost_queue_declare(vh, B(n1), false, false, false, false, none, &conn_a, NULL,
			                    NULL, &q, &err);
		} else if (r < 45) {
			snprintf(n1, sizeof(n1), "q%u", a);
			snprintf(n2, sizeof(n2), "x%u", b);
			vhost_queue_bind(vh, B(n1), B(n2), B(key), none, &err);
		} else if (r < 65) {
			snprintf(n1, sizeof(n1), "x%u", a);
			snprintf(n2, sizeof(n2), "x%u", b);
			vhost_exchange_bind(vh, B(n1), B(n2), B(key), none, &err);
		} else if (r < 80) {
			snprintf(n1, sizeof(n1), "q%u", a);
			snprintf(n2, sizeof(n2), "x%u", b);
			vhost_queue_unbind(vh, B(n1), B(n2), B(key), none, &err);
		} else if (r < 88) {
			snprintf(n1, sizeof(n1), "x%u", a);
			snprintf(n2, sizeof(n2), "x%u", b);
			vhost_exchange_unbind(vh, B(n1), B(n2), B(key), none, &err);
		} else if (r < 94) {
			snprintf(n1, sizeof(n1), "x%u", a);
			vhost_exchange_delete(vh, B(n1), rnd_next(&st) % 2 == 0, &err);
		} else {
			snprintf(n1, sizeof(n1), "q%u", a);
			uint32_t cnt;
			vhost_queue_delete(vh, B(n1), false, false, &cnt, &err);
		}
		memset(&err, 0, sizeof(err));
		if (op % 50 == 0) {
			check_router_invariants();
			snprintf(n1, sizeof(n1), "x%u", a);
			if (vhost_exchange_find(vh, B(n1)))
				route(n1, key); /* must terminate and stay within bounds */
		}
	}
	check_router_invariants();
}
END_TEST

TCase *router_defs_tcase(void)
{
	TCase *td = tcase_create("definitions");
	tcase_add_checked_fixture(td, setup, teardown);
	tcase_add_test(td, test_exchange_declare_rules);
	tcase_add_test(td, test_exchange_args_equivalence);
	tcase_add_test(td, test_exchange_delete);
	tcase_add_test(td, test_auto_delete_cascade);
	tcase_add_test(td, test_binding_identity);
	tcase_add_test(td, test_queue_declare_rules);
	tcase_add_test(td, test_queue_exclusive);
	tcase_add_test(td, test_queue_args_equivalence);
	tcase_add_test(td, test_queue_delete_and_purge);
	tcase_add_test(td, test_queue_expires_tick);
	tcase_add_loop_test(td, test_random_cascades, 0, 4);
	return td;
}
