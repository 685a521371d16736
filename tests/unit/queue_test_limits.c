/*
 * Message TTL (per queue, per message, zero) and length limits (drop-head,
 * reject-publish, reject-publish-dlx, bytes, a limit of zero), with what
 * they dead-letter.
 */
#include "queue_test_util.h"
#include "runner.h"

TCase *queue_limits_tcase(void);

static struct fake_hooks H;

static void setup(void)
{
	memset(&H, 0, sizeof(H));
}

static void teardown(void)
{
	fake_hooks_clear(&H);
}

START_TEST(test_ttl_queue)
{
	struct queue_args a = args_dlx("dlx", NULL);
	a.message_ttl = 100;
	struct queue *q = mk_queue("ttl", 0, &a, &H);
	struct queue_entry e;

	ck_assert_int_eq(queue_next_expiry(q), -1);
	pub(q, "a", 1000);
	pub(q, "b", 1050);
	ck_assert_int_eq(queue_next_expiry(q), 1100);
	ck_assert_int_eq(queue_get(q, 1099, false, &e), 1);
	ck_assert(body_is(e.msg, "a"));
	ck_assert_int_eq(e.expires_at, 1100);
	queue_requeue(q, &e);
	ck_assert_int_eq(queue_next_expiry(q), 1100);
	queue_expire(q, 1099);
	ck_assert_uint_eq(queue_message_count(q), 2);
	queue_expire(q, 1100); /* "a" expires, "b" not yet */
	ck_assert_uint_eq(queue_message_count(q), 1);
	ck_assert_uint_eq(H.ndl, 1);
	ck_assert(body_is(H.dl[0], "a"));
	ck_assert_int_eq(queue_next_expiry(q), 1150);
	/* never handed out once expired, even without the timer */
	ck_assert_int_eq(queue_get(q, 1150, false, &e), 0);
	ck_assert_uint_eq(H.ndl, 2);
	ck_assert_uint_eq(queue_message_count(q), 0);
	ck_assert_int_eq(queue_next_expiry(q), -1);
	queue_delete(q);
}
END_TEST

START_TEST(test_ttl_per_message)
{
	struct queue_args a = args_default();
	a.message_ttl = 100;
	struct queue *q = mk_queue("q", 0, &a, &H);
	struct message *m;
	struct queue_entry e;

	m = mk_msg_exp("short", "30");   /* smaller than the queue's: 30 */
	queue_publish(q, m, 0);
	message_unref(m);
	m = mk_msg_exp("long", "5000");  /* the queue's 100 applies */
	queue_publish(q, m, 0);
	message_unref(m);
	pub(q, "plain", 0);
	ck_assert_int_eq(queue_next_expiry(q), 30);
	queue_expire(q, 30);
	ck_assert_uint_eq(queue_message_count(q), 2);
	ck_assert_int_eq(queue_get(q, 40, true, &e), 1);
	ck_assert(body_is(e.msg, "long"));
	ck_assert_int_eq(e.expires_at, 100);
	message_unref(e.msg);

	/* a later-expiring head shields an earlier one behind it until the
	 * head goes (RabbitMQ expires from the head) */
	struct queue_args b = args_default();
	struct queue *q2 = mk_queue("q2", 0, &b, &H);
	m = mk_msg_exp("x", "1000");
	queue_publish(q2, m, 0);
	message_unref(m);
	m = mk_msg_exp("y", "10");
	queue_publish(q2, m, 0);
	message_unref(m);
	queue_expire(q2, 500);
	ck_assert_uint_eq(queue_message_count(q2), 2);
	ck_assert_int_eq(queue_next_expiry(q2), 1000);
	/* but a get skips it once it is at the head */
	ck_assert_int_eq(queue_get(q2, 500, true, &e), 1);
	ck_assert(body_is(e.msg, "x"));
	message_unref(e.msg);
	ck_assert_int_eq(queue_get(q2, 500, true, &e), 0);
	queue_delete(q2);
	queue_delete(q);
}
END_TEST

START_TEST(test_ttl_zero)
{
	struct queue_args a = args_dlx("dlx", NULL);
	a.message_ttl = 0;
	struct queue *q = mk_queue("zero", 0, &a, &H);
	struct fake_consumer c;
	struct reply err = { 0 };

	/* no consumer: gone at once */
	pub(q, "lost", 0);
	ck_assert_uint_eq(queue_message_count(q), 0);
	ck_assert_uint_eq(H.ndl, 1);
	/* a consumer that can take it right now gets it */
	fake_consumer_init(&c, "c", 0, 1);
	queue_consumer_add(q, &c.c, &err);
	pub(q, "taken", 0);
	ck_assert_str_eq(got_str(&c), "taken");
	ck_assert_uint_eq(queue_unacked_count(q), 1);
	/* and when it is busy, the message expires */
	pub(q, "busy", 0);
	ck_assert_uint_eq(queue_message_count(q), 0);
	ck_assert_uint_eq(H.ndl, 2);
	ck_assert(body_is(H.dl[1], "busy"));
	fake_ack_all(q, &c);
	queue_consumer_remove(q, &c.c);
	queue_delete(q);
}
END_TEST

START_TEST(test_max_length_drop_head)
{
	struct queue_args a = args_dlx("dlx", NULL);
	a.max_length = 2;
	struct queue *q = mk_queue("ml", 0, &a, &H);

	ck_assert_int_eq(pub(q, "1", 0), QUEUE_PUBLISH_OK);
	ck_assert_int_eq(pub(q, "2", 0), QUEUE_PUBLISH_OK);
	ck_assert_int_eq(pub(q, "3", 0), QUEUE_PUBLISH_OK);
	ck_assert_uint_eq(queue_message_count(q), 2);
	ck_assert_uint_eq(H.ndl, 1);
	ck_assert(body_is(H.dl[0], "1"));
	/* unacked messages do not count; a requeue can overflow and drops
	 * from the head again */
	struct queue_entry e;
	queue_get(q, 0, false, &e); /* "2" */
	pub(q, "4", 0);
	ck_assert_uint_eq(queue_message_count(q), 2);
	ck_assert_uint_eq(H.ndl, 1);
	queue_requeue(q, &e);
	ck_assert_uint_eq(H.ndl, 2);
	ck_assert(body_is(H.dl[1], "2"));
	ck_assert_str_eq(drain_str(q, 0), "3,4");
	queue_delete(q);
}
END_TEST

START_TEST(test_max_length_zero)
{
	struct queue_args a = args_dlx("dlx", NULL);
	a.max_length = 0;
	struct queue *q = mk_queue("ml0", 0, &a, &H);
	struct fake_consumer c;
	struct reply err = { 0 };

	pub(q, "x", 0);
	ck_assert_uint_eq(queue_message_count(q), 0);
	ck_assert_uint_eq(H.ndl, 1);
	fake_consumer_init(&c, "c", 0, -1);
	queue_consumer_add(q, &c.c, &err);
	pub(q, "y", 0); /* straight to the waiting consumer */
	ck_assert_str_eq(got_str(&c), "y");
	ck_assert_uint_eq(H.ndl, 1);
	fake_ack_all(q, &c);
	queue_delete(q);
	ck_assert_int_eq(c.cancelled, 1);
}
END_TEST

START_TEST(test_reject_publish)
{
	struct queue_args a = args_dlx("dlx", NULL);
	a.max_length = 2;
	a.overflow = QUEUE_OVERFLOW_REJECT_PUBLISH;
	struct queue *q = mk_queue("rp", 0, &a, &H);
	struct fake_consumer c;
	struct reply err = { 0 };

	ck_assert_int_eq(pub(q, "1", 0), QUEUE_PUBLISH_OK);
	ck_assert_int_eq(pub(q, "2", 0), QUEUE_PUBLISH_OK);
	ck_assert_int_eq(pub(q, "3", 0), QUEUE_PUBLISH_REJECTED);
	ck_assert_uint_eq(H.ndl, 0); /* plain reject-publish: no dead-letter */
	ck_assert_uint_eq(queue_message_count(q), 2);
	/* even a waiting consumer does not help a full queue */
	fake_consumer_init(&c, "c", 0, -1);
	queue_consumer_add(q, &c.c, &err);
	ck_assert_int_eq(pub(q, "4", 0), QUEUE_PUBLISH_REJECTED);
	queue_dispatch(q, 0, 10);
	ck_assert_int_eq(pub(q, "5", 0), QUEUE_PUBLISH_OK);
	fake_ack_all(q, &c);
	queue_consumer_remove(q, &c.c);
	queue_delete(q);

	struct queue_args b = args_dlx("dlx", "rk2");
	b.max_length = 1;
	b.overflow = QUEUE_OVERFLOW_REJECT_PUBLISH;
	b.overflow_dlx = true;
	q = mk_queue("rpd", 0, &b, &H);
	ck_assert_int_eq(pub(q, "a", 0), QUEUE_PUBLISH_OK);
	ck_assert_int_eq(pub(q, "b", 0), QUEUE_PUBLISH_REJECTED);
	ck_assert_uint_eq(H.ndl, 1);
	ck_assert(body_is(H.dl[0], "b"));
	ck_assert(bytes_eq_str(H.dl[0]->routing_key, "rk2"));
	ck_assert_str_eq(drain_str(q, 0), "a");
	queue_delete(q);
}
END_TEST

START_TEST(test_max_length_bytes)
{
	struct queue_args a = args_default();
	a.max_length_bytes = 10;
	struct queue *q = mk_queue("mlb", 0, &a, &H);

	pub(q, "aaaa", 0);
	pub(q, "bbbb", 0);
	ck_assert_uint_eq(queue_ready_bytes(q), 8);
	pub(q, "cccc", 0); /* 12 > 10: the oldest goes */
	ck_assert_uint_eq(queue_ready_bytes(q), 8);
	pub(q, "0123456789A", 0); /* larger than the limit on its own */
	ck_assert_uint_eq(queue_message_count(q), 0);
	ck_assert_uint_eq(queue_ready_bytes(q), 0);
	pub(q, "0123456789", 0); /* exactly the limit fits */
	ck_assert_str_eq(drain_str(q, 0), "0123456789");
	queue_delete(q);

	struct queue_args b = args_default();
	b.max_length_bytes = 5;
	b.overflow = QUEUE_OVERFLOW_REJECT_PUBLISH;
	q = mk_queue("mlb2", 0, &b, &H);
	ck_assert_int_eq(pub(q, "abc", 0), QUEUE_PUBLISH_OK);
	ck_assert_int_eq(pub(q, "def", 0), QUEUE_PUBLISH_REJECTED);
	ck_assert_int_eq(pub(q, "de", 0), QUEUE_PUBLISH_OK);
	queue_delete(q);
}
END_TEST

TCase *queue_limits_tcase(void)
{
	TCase *tc = tcase_create("limits");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_ttl_queue);
	tcase_add_test(tc, test_ttl_per_message);
	tcase_add_test(tc, test_ttl_zero);
	tcase_add_test(tc, test_max_length_drop_head);
	tcase_add_test(tc, test_max_length_zero);
	tcase_add_test(tc, test_reject_publish);
	tcase_add_test(tc, test_max_length_bytes);
	return tc;
}
