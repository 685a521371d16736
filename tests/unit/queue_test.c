/*
 * Queue behaviour: FIFO and counts, dispatch (round-robin, consumer
 * priorities, single active consumer, readiness gating), acks and requeue
 * to the original position, priorities, purge, delete and the zombie
 * state, auto-delete and x-expires bookkeeping.  TTL and length limits are
 * in queue_test_limits.c, dead-letter contents and argument parsing in
 * queue_test_dl.c.
 */
#include "queue_test_util.h"
#include "runner.h"

/* Suite pieces defined in queue_test_dl.c. */
TCase *queue_dl_tcase(void);
TCase *queue_args_tcase(void);
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

START_TEST(test_fifo_get_counts)
{
	struct queue_args a = args_default();
	struct queue *q = mk_queue("q", 0, &a, &H);
	struct queue_entry e;

	ck_assert_uint_eq(queue_message_count(q), 0);
	ck_assert_int_eq(queue_get(q, 0, false, &e), 0);
	pub(q, "one", 0);
	pub(q, "two", 0);
	pub(q, "three", 0);
	ck_assert_uint_eq(queue_message_count(q), 3);
	ck_assert_uint_eq(queue_ready_bytes(q), 11);
	ck_assert_int_eq(H.schedules, 0); /* no consumer: nothing to schedule */

	ck_assert_int_eq(queue_get(q, 0, false, &e), 1);
	ck_assert(body_is(e.msg, "one"));
	ck_assert(!e.redelivered);
	ck_assert_uint_eq(e.delivery_count, 1);
	ck_assert_uint_eq(queue_message_count(q), 2);
	ck_assert_uint_eq(queue_unacked_count(q), 1);
	ck_assert_uint_eq(queue_ready_bytes(q), 8);
	ck_assert_uint_eq(e.msg->refs, 1); /* only the unacked record holds it */
	queue_settle(q, &e);
	ck_assert_uint_eq(queue_unacked_count(q), 0);

	ck_assert_int_eq(queue_get(q, 0, true, &e), 1); /* no_ack: settled already */
	ck_assert(body_is(e.msg, "two"));
	ck_assert_uint_eq(queue_unacked_count(q), 0);
	message_unref(e.msg);
	ck_assert_str_eq(drain_str(q, 0), "three");
	ck_assert_uint_eq(queue_delete(q), 0);
}
END_TEST

/* Every entry that enters is reported once, and once more when it leaves
 * for good (ack, auto-ack, purge, drop-head); requeue and delete are not. */
START_TEST(test_persistence_hooks)
{
	struct queue_args a = args_default();
	a.max_length = 3;
	struct queue *q = mk_queue("q", 0, &a, &H);
	struct queue_entry e;

	pub(q, "a", 0);
	pub(q, "b", 0);
	ck_assert_int_eq(H.enqueued, 2);
	ck_assert_int_eq(H.removed, 0);
	ck_assert_int_eq(queue_get(q, 0, false, &e), 1);
	ck_assert_int_eq(H.removed, 0);  /* delivered, not settled */
	queue_requeue(q, &e);
	ck_assert_int_eq(H.removed, 0);  /* back in the queue */
	ck_assert_int_eq(queue_get(q, 0, false, &e), 1);
	queue_settle(q, &e);
	ck_assert_int_eq(H.removed, 1);  /* acked */
	ck_assert_int_eq(queue_get(q, 0, true, &e), 1);
	message_unref(e.msg);
	ck_assert_int_eq(H.removed, 2);  /* auto-acked */
	pub(q, "c", 0);
	pub(q, "d", 0);
	pub(q, "e", 0);
	pub(q, "f", 0);                  /* drop-head removes "c" */
	ck_assert_int_eq(H.enqueued, 6);
	ck_assert_int_eq(H.removed, 3);
	ck_assert_uint_eq(queue_purge(q), 3);
	ck_assert_int_eq(H.removed, 6);
	pub(q, "g", 0);
	queue_delete(q);                 /* the glue drops the queue as a whole */
	ck_assert_int_eq(H.enqueued, 7);
	ck_assert_int_eq(H.removed, 6);
}
END_TEST

START_TEST(test_round_robin)
{
	struct queue_args a = args_default();
	struct queue *q = mk_queue("q", 0, &a, &H);
	struct fake_consumer c[3];
	struct reply err = { 0 };
	char body[8];

	for (int i = 0; i < 3; i++) {
		fake_consumer_init(&c[i], "c", 0, -1);
		ck_assert_int_eq(queue_consumer_add(q, &c[i].c, &err), 0);
	}
	ck_assert_uint_eq(queue_consumer_count(q), 3);
	for (int i = 0; i < 7; i++) {
		snprintf(body, sizeof(body), "%d", i);
		pub(q, body, 0);
	}
	ck_assert_int_gt(H.schedules, 0);
	ck_assert_uint_eq(queue_dispatch(q, 0, 100), 7);
	ck_assert_str_eq(got_str(&c[0]), "0,3,6");
	ck_assert_str_eq(got_str(&c[1]), "1,4");
	ck_assert_str_eq(got_str(&c[2]), "2,5");
	ck_assert_uint_eq(queue_unacked_count(q), 7);
	/* a newcomer joins at the end of the round */
	struct fake_consumer d;
	fake_consumer_init(&d, "d", 0, -1);
	ck_assert_int_eq(queue_consumer_add(q, &d.c, &err), 0);
	for (int i = 7; i < 11; i++) {
		snprintf(body, sizeof(body), "%d", i);
		pub(q, body, 0);
	}
	ck_assert_uint_eq(queue_dispatch(q, 0, 100), 4);
	ck_assert_str_eq(got_str(&c[1]), "1,4,7");
	ck_assert_str_eq(got_str(&c[2]), "2,5,8");
	ck_assert_str_eq(got_str(&c[0]), "0,3,6,9");
	ck_assert_str_eq(got_str(&d), "10");
	for (int i = 0; i < 3; i++) {
		fake_ack_all(q, &c[i]);
		queue_consumer_remove(q, &c[i].c);
	}
	fake_ack_all(q, &d);
	queue_consumer_remove(q, &d.c);
	ck_assert_uint_eq(queue_unacked_count(q), 0);
	queue_delete(q);
}
END_TEST

START_TEST(test_budget_reschedules)
{
	struct queue_args a = args_default();
	struct queue *q = mk_queue("q", 0, &a, &H);
	struct fake_consumer c;
	struct reply err = { 0 };

	fake_consumer_init(&c, "c", 0, -1);
	queue_consumer_add(q, &c.c, &err);
	for (int i = 0; i < 5; i++)
		pub(q, "m", 0);
	H.schedules = 0;
	ck_assert_uint_eq(queue_dispatch(q, 0, 2), 2);
	ck_assert_int_eq(H.schedules, 1); /* work left: asked to come back */
	ck_assert_uint_eq(queue_dispatch(q, 0, 2), 2);
	ck_assert_uint_eq(queue_dispatch(q, 0, 2), 1);
	ck_assert_int_eq(H.schedules, 2);
	fake_ack_all(q, &c);
	queue_consumer_remove(q, &c.c);
	queue_delete(q);
}
END_TEST

START_TEST(test_consumer_priority)
{
	struct queue_args a = args_default();
	struct queue *q = mk_queue("q", 0, &a, &H);
	struct fake_consumer lo, hi1, hi2;
	struct reply err = { 0 };

	fake_consumer_init(&lo, "lo", 0, -1);
	fake_consumer_init(&hi1, "hi1", 10, 2);
	fake_consumer_init(&hi2, "hi2", 10, 1);
	queue_consumer_add(q, &lo.c, &err);
	queue_consumer_add(q, &hi1.c, &err);
	queue_consumer_add(q, &hi2.c, &err);
	for (int i = 0; i < 6; i++) {
		char b[4];
		snprintf(b, sizeof(b), "%d", i);
		pub(q, b, 0);
	}
	ck_assert_uint_eq(queue_dispatch(q, 0, 100), 6);
	/* high priority consumers first, in turn, until both are full */
	ck_assert_str_eq(got_str(&hi1), "0,2");
	ck_assert_str_eq(got_str(&hi2), "1");
	ck_assert_str_eq(got_str(&lo), "3,4,5");
	/* room again at the top: it gets the next message, not lo */
	hi2.credit = 1;
	pub(q, "6", 0);
	ck_assert_uint_eq(queue_dispatch(q, 0, 100), 1);
	ck_assert_str_eq(got_str(&hi2), "1,6");
	fake_ack_all(q, &lo);
	fake_ack_all(q, &hi1);
	fake_ack_all(q, &hi2);
	queue_delete(q); /* cancels the three */
	ck_assert_int_eq(lo.cancelled + hi1.cancelled + hi2.cancelled, 3);
}
END_TEST

START_TEST(test_ready_gating_and_kick)
{
	struct queue_args a = args_default();
	struct queue *q = mk_queue("q", 0, &a, &H);
	struct fake_consumer c;
	struct reply err = { 0 };

	fake_consumer_init(&c, "c", 0, 2); /* like basic.qos prefetch 2 */
	queue_consumer_add(q, &c.c, &err);
	for (int i = 0; i < 5; i++)
		pub(q, "m", 0);
	ck_assert_uint_eq(queue_dispatch(q, 0, 100), 2);
	ck_assert_uint_eq(queue_message_count(q), 3);
	ck_assert_uint_eq(queue_unacked_count(q), 2);
	H.schedules = 0;
	queue_kick(q); /* work, but the glue would find the consumer busy */
	ck_assert_int_eq(H.schedules, 1);
	ck_assert_uint_eq(queue_dispatch(q, 0, 100), 0);
	/* ack one: room for one more */
	struct queue_entry e = fake_take(&c, 0);
	queue_settle(q, &e);
	c.credit = 1;
	queue_kick(q);
	ck_assert_uint_eq(queue_dispatch(q, 0, 100), 1);
	ck_assert_uint_eq(queue_unacked_count(q), 2);
	fake_ack_all(q, &c);
	queue_consumer_remove(q, &c.c);
	queue_purge(q);
	H.schedules = 0;
	queue_kick(q); /* nothing to do: no schedule */
	ck_assert_int_eq(H.schedules, 0);
	queue_delete(q);
}
END_TEST

START_TEST(test_single_active_consumer)
{
	struct queue_args a = args_default();
	a.single_active_consumer = true;
	struct queue *q = mk_queue("q", 0, &a, &H);
	struct fake_consumer c1, c2, c3, x;
	struct reply err = { 0 };

	fake_consumer_init(&c1, "c1", 0, -1);
	fake_consumer_init(&c2, "c2", 5, -1); /* priority does not matter here */
	fake_consumer_init(&c3, "c3", 0, -1);
	queue_consumer_add(q, &c1.c, &err);
	queue_consumer_add(q, &c2.c, &err);
	queue_consumer_add(q, &c3.c, &err);
	for (int i = 0; i < 3; i++)
		pub(q, "a", 0);
	queue_dispatch(q, 0, 100);
	ck_assert_uint_eq(c1.total, 3);
	ck_assert_uint_eq(c2.total + c3.total, 0);
	/* the active one is busy: the others still get nothing */
	c1.credit = 0;
	pub(q, "b", 0);
	ck_assert_uint_eq(queue_dispatch(q, 0, 100), 0);
	/* it goes: its unacked are requeued by the channel, c2 takes over */
	H.schedules = 0;
	while (c1.ngot) {
		struct queue_entry e = fake_take(&c1, c1.ngot - 1);
		queue_requeue(q, &e);
	}
	queue_consumer_remove(q, &c1.c);
	ck_assert_int_gt(H.schedules, 0);
	queue_dispatch(q, 0, 100);
	ck_assert_str_eq(got_str(&c2), "a,a,a,b");
	ck_assert(c2.got[0].redelivered && !c2.got[3].redelivered);
	ck_assert_uint_eq(c3.total, 0);
	/* exclusive consume is refused on a single-active-consumer queue */
	fake_consumer_init(&x, "x", 0, -1);
	x.c.exclusive = true;
	ck_assert_int_eq(queue_consumer_add(q, &x.c, &err), -1);
	ck_assert_int_eq(err.code, 403);
	fake_ack_all(q, &c2);
	queue_delete(q);
	ck_assert_int_eq(c2.cancelled, 1);
	ck_assert_int_eq(c3.cancelled, 1);
	ck_assert_int_eq(c1.cancelled, 0);
}
END_TEST

START_TEST(test_exclusive_consumer)
{
	struct queue_args a = args_default();
	struct queue *q = mk_queue("excl-q", 0, &a, &H);
	struct fake_consumer n, x, y;
	struct reply err = { 0 };

	fake_consumer_init(&n, "n", 0, -1);
	fake_consumer_init(&x, "x", 0, -1);
	fake_consumer_init(&y, "y", 0, -1);
	x.c.exclusive = true;
	ck_assert_int_eq(queue_consumer_add(q, &n.c, &err), 0);
	ck_assert_int_eq(queue_consumer_add(q, &x.c, &err), -1);
	ck_assert_int_eq(err.code, 403);
	ck_assert_str_eq(err.text, "ACCESS_REFUSED - queue 'excl-q' in vhost '/' in exclusive use");
	ck_assert_ptr_null(x.c.queue);
	queue_consumer_remove(q, &n.c);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(queue_consumer_add(q, &x.c, &err), 0);
	ck_assert_int_eq(queue_consumer_add(q, &y.c, &err), -1);
	ck_assert_str_eq(err.text, "ACCESS_REFUSED - queue 'excl-q' in vhost '/' in exclusive use");
	queue_consumer_remove(q, &x.c);
	ck_assert_int_eq(queue_consumer_add(q, &y.c, &err), 0);
	queue_consumer_remove(q, &y.c);
	queue_delete(q);
}
END_TEST

/* deliver 1..5, requeue 2 and 4: they go back in front of what is left, in
 * their original order; redelivered is set on them only. */
START_TEST(test_requeue_original_position)
{
	struct queue_args a = args_default();
	struct queue *q = mk_queue("q", 0, &a, &H);
	struct fake_consumer c;
	struct reply err = { 0 };

	for (int i = 1; i <= 7; i++) {
		char b[4];
		snprintf(b, sizeof(b), "%d", i);
		pub(q, b, 0);
	}
	fake_consumer_init(&c, "c", 0, 5);
	queue_consumer_add(q, &c.c, &err);
	ck_assert_uint_eq(queue_dispatch(q, 0, 100), 5);
	ck_assert_str_eq(got_str(&c), "1,2,3,4,5");
	struct queue_entry e4 = fake_take(&c, 3), e2 = fake_take(&c, 1);
	queue_requeue(q, &e4); /* out of order on purpose */
	queue_requeue(q, &e2);
	ck_assert_ptr_null(e2.msg);
	ck_assert_uint_eq(queue_message_count(q), 4);
	ck_assert_uint_eq(queue_unacked_count(q), 3);
	c.credit = -1;
	ck_assert_uint_eq(queue_dispatch(q, 0, 100), 4);
	ck_assert_str_eq(got_str(&c), "1,3,5,2,4,6,7");
	ck_assert(!c.got[0].redelivered && !c.got[2].redelivered);
	ck_assert(c.got[3].redelivered && c.got[4].redelivered);
	ck_assert(!c.got[5].redelivered);
	ck_assert_uint_eq(c.got[3].delivery_count, 2);
	ck_assert_uint_eq(c.got[5].delivery_count, 1);
	/* channel close: everything back, in publish order, in one go */
	queue_consumer_remove(q, &c.c);
	queue_requeue_many(q, c.got, c.ngot);
	c.ngot = 0;
	ck_assert_uint_eq(queue_unacked_count(q), 0);
	ck_assert_str_eq(drain_str(q, 0), "1,2,3,4,5,6,7");
	queue_delete(q);
}
END_TEST

/* Requeue into the middle of ready messages (some of them delivered later
 * than those still waiting), exercising both shift directions. */
START_TEST(test_requeue_into_middle)
{
	struct queue_args a = args_default();
	struct queue *q = mk_queue("q", 0, &a, &H);
	struct queue_entry got[40];
	char b[8];

	for (int i = 0; i < 40; i++) {
		snprintf(b, sizeof(b), "%02d", i);
		pub(q, b, 0);
	}
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(queue_get(q, 0, false, &got[i]), 1);
	/* requeue the even ones first, then the odd ones one by one */
	struct queue_entry evens[20];
	for (int i = 0; i < 20; i++)
		evens[i] = got[2 * i];
	queue_requeue_many(q, evens, 20);
	for (int i = 39; i >= 1; i -= 2)
		queue_requeue(q, &got[i]);
	ck_assert_uint_eq(queue_message_count(q), 40);
	for (int i = 0; i < 40; i++) {
		struct queue_entry e;
		snprintf(b, sizeof(b), "%02d", i);
		ck_assert_int_eq(queue_get(q, 0, true, &e), 1);
		ck_assert_msg(body_is(e.msg, b), "position %d", i);
		ck_assert(e.redelivered);
		message_unref(e.msg);
	}
	queue_delete(q);
}
END_TEST

START_TEST(test_priority_queue)
{
	struct queue_args a = args_default();
	a.max_priority = 5;
	struct queue *q = mk_queue("q", 0, &a, &H);
	struct message *m;
	const int prios[] = { 1, 5, -1, 3, 9, 0, 3 };
	const char *bodies[] = { "p1", "p5", "none", "p3", "p9", "p0", "p3b" };

	for (int i = 0; i < 7; i++) {
		m = mk_msg_prio(bodies[i], prios[i]);
		queue_publish(q, m, 0);
		message_unref(m);
	}
	/* higher first; above the maximum counts as the maximum; FIFO within */
	ck_assert_str_eq(drain_str(q, 0), "p5,p9,p3,p3b,p1,none,p0");

	/* requeue keeps priority and position */
	for (int i = 0; i < 7; i++) {
		m = mk_msg_prio(bodies[i], prios[i]);
		queue_publish(q, m, 0);
		message_unref(m);
	}
	struct queue_entry e1, e2;
	queue_get(q, 0, false, &e1); /* p5 */
	queue_get(q, 0, false, &e2); /* p9 */
	queue_requeue(q, &e2);
	queue_requeue(q, &e1);
	ck_assert_str_eq(drain_str(q, 0), "p5,p9,p3,p3b,p1,none,p0");

	/* a plain queue ignores priorities */
	struct queue_args b = args_default();
	struct queue *plain = mk_queue("plain", 0, &b, &H);
	for (int i = 0; i < 7; i++) {
		m = mk_msg_prio(bodies[i], prios[i]);
		queue_publish(plain, m, 0);
		message_unref(m);
	}
	ck_assert_str_eq(drain_str(plain, 0), "p1,p5,none,p3,p9,p0,p3b");
	queue_delete(plain);
	queue_delete(q);
}
END_TEST

START_TEST(test_purge)
{
	struct queue_args a = args_dlx("dlx", NULL);
	struct queue *q = mk_queue("p", 0, &a, &H);
	struct queue_entry e;

	pub(q, "1", 0);
	pub(q, "2", 0);
	pub(q, "3", 0);
	queue_get(q, 0, false, &e);
	ck_assert_uint_eq(queue_purge(q), 2);
	ck_assert_uint_eq(queue_message_count(q), 0);
	ck_assert_uint_eq(queue_ready_bytes(q), 0);
	ck_assert_uint_eq(queue_unacked_count(q), 1); /* purge leaves unacked */
	ck_assert_uint_eq(H.ndl, 0);                  /* and dead-letters nothing */
	queue_requeue(q, &e);
	ck_assert_uint_eq(queue_message_count(q), 1);
	ck_assert_uint_eq(queue_delete(q), 1);
}
END_TEST

START_TEST(test_delete_cancels)
{
	struct queue_args a = args_default();
	struct queue *q = mk_queue("d", 0, &a, &H);
	struct fake_consumer c1, c2;
	struct reply err = { 0 };
	struct queue_entry g;

	fake_consumer_init(&c1, "c1", 0, 1);
	fake_consumer_init(&c2, "c2", 0, 1);
	c1.home = q;
	c1.requeue_on_cancel = true; /* a channel handing back from cancelled() */
	queue_consumer_add(q, &c1.c, &err);
	queue_consumer_add(q, &c2.c, &err);
	for (int i = 0; i < 5; i++)
		pub(q, "m", 0);
	queue_dispatch(q, 0, 10);
	queue_get(q, 0, false, &g);
	ck_assert_uint_eq(queue_unacked_count(q), 3);
	struct message *held = c1.got[0].msg;
	message_ref(held);
	ck_assert_uint_eq(held->refs, 2);
	ck_assert_uint_eq(queue_delete(q), 2);
	ck_assert_int_eq(c1.cancelled, 1);
	ck_assert_int_eq(c2.cancelled, 1);
	ck_assert_ptr_null(c1.c.queue);
	ck_assert_ptr_null(c2.c.queue);
	/* c1's requeue during the cancel dropped the message */
	ck_assert_uint_eq(c1.ngot, 0);
	ck_assert_uint_eq(held->refs, 1);
	message_unref(held);
	/* the other unacked records still hold their messages: the channel
	 * layer forgets them (drops the references) */
	ck_assert_uint_eq(c2.ngot, 1);
	ck_assert_uint_eq(c2.got[0].msg->refs, 1);
	message_unref(c2.got[0].msg);
	message_unref(g.msg);
	ck_assert_uint_eq(H.ndl, 0);
}
END_TEST

START_TEST(test_auto_delete_unused)
{
	struct queue_args a = args_default();
	struct queue *q = mk_queue("ad", QUEUE_F_AUTO_DELETE, &a, &H);
	struct fake_consumer c1, c2;
	struct reply err = { 0 };

	fake_consumer_init(&c1, "c1", 0, -1);
	fake_consumer_init(&c2, "c2", 0, -1);
	queue_consumer_add(q, &c1.c, &err);
	queue_consumer_add(q, &c2.c, &err);
	queue_consumer_remove(q, &c1.c);
	ck_assert_int_eq(H.unused, 0);
	queue_consumer_remove(q, &c1.c); /* not attached any more: ignored */
	ck_assert_uint_eq(queue_consumer_count(q), 1);
	H.delete_on_unused = true;
	queue_consumer_remove(q, &c2.c); /* the glue deletes it from the hook */
	ck_assert_int_eq(H.unused, 1);
	ck_assert_int_eq(c2.cancelled, 0);

	/* never had a consumer: nothing to report */
	q = mk_queue("ad2", QUEUE_F_AUTO_DELETE, &a, &H);
	ck_assert_int_eq(H.unused, 1);
	queue_delete(q);
}
END_TEST

START_TEST(test_expires_bookkeeping)
{
	struct queue_args a = args_default();
	a.expires = 1000;
	struct queue *q = mk_queue("x", 0, &a, &H);
	struct fake_consumer c;
	struct reply err = { 0 };
	struct queue_entry e;

	ck_assert_int_eq(queue_expires_at(q), -1); /* not touched yet */
	queue_touch(q, 50);
	ck_assert_int_eq(queue_idle_since(q), 50);
	ck_assert_int_eq(queue_expires_at(q), 1050);
	pub(q, "m", 400); /* publishing is not a use */
	ck_assert_int_eq(queue_expires_at(q), 1050);
	queue_get(q, 500, true, &e); /* basic.get is */
	message_unref(e.msg);
	ck_assert_int_eq(queue_expires_at(q), 1500);
	queue_get(q, 600, true, &e); /* even on an empty queue */
	ck_assert_int_eq(queue_expires_at(q), 1600);
	fake_consumer_init(&c, "c", 0, -1);
	queue_consumer_add(q, &c.c, &err);
	ck_assert_int_eq(queue_idle_since(q), -1);
	ck_assert_int_eq(queue_expires_at(q), -1);
	queue_consumer_remove(q, &c.c);
	queue_touch(q, 2000);
	ck_assert_int_eq(queue_expires_at(q), 3000);
	queue_delete(q);

	struct queue_args b = args_default();
	q = mk_queue("y", 0, &b, &H);
	ck_assert_int_eq(queue_expires_at(q), -1);
	queue_delete(q);
}
END_TEST

/* A consumer that acks from inside deliver and a dead-letter hook that
 * publishes back into the same queue: the queue must not hold pointers
 * into its rings across callbacks. */
static struct queue *reenter_q;
static int64_t reenter_now;

static void reenter_dead_letter(void *ctx, struct queue *q, struct message *m,
                                struct bytes exchange, struct bytes rk)
{
	struct fake_hooks *h = ctx;

	(void)exchange;
	(void)rk;
	ck_assert_ptr_eq(q, reenter_q);
	/* the republished copy lands here again (a DLX routing back) */
	for (int i = 0; i < 40; i++)
		queue_publish(q, m, reenter_now);
	h->ndl++;
	message_unref(m);
}

static const struct queue_hooks reenter_hooks = { fake_schedule, reenter_dead_letter, fake_unused,
	                                          NULL, NULL };

START_TEST(test_reentrant_dead_letter)
{
	struct queue_args a = args_dlx("", NULL);
	a.message_ttl = 10;
	struct ftable none = { NULL, 0 };
	struct queue *q = queue_new(bytes_of("loop"), "/", 0, none, &a, &reenter_hooks, &H);

	reenter_q = q;
	pub(q, "a", 0);
	pub(q, "b", 0);
	reenter_now = 10;
	queue_expire(q, 10); /* both expire; each hook call adds 40 (ring grows) */
	ck_assert_uint_eq(H.ndl, 2);
	ck_assert_uint_eq(queue_message_count(q), 80);
	/* they expire at 20: dead-lettering them again republishes more */
	reenter_now = 20;
	queue_expire(q, 20);
	ck_assert_uint_eq(queue_message_count(q), 80 * 40);
	ck_assert_uint_eq(H.ndl, 82);
	H.ndl = 0;
	queue_delete(q);
}
END_TEST

/* A TTL-0 queue whose dead-letter exchange routes straight back to it: the
 * second death happens inside the first hook call and is dropped instead of
 * recursing forever. */
START_TEST(test_dead_letter_loop_is_cut)
{
	struct queue_args a = args_dlx("", NULL);
	a.message_ttl = 0;
	struct ftable none = { NULL, 0 };
	struct queue *q = queue_new(bytes_of("loop0"), "/", 0, none, &a, &reenter_hooks, &H);

	reenter_q = q;
	reenter_now = 0;
	pub(q, "a", 0);
	ck_assert_uint_eq(H.ndl, 1); /* one hook call, whose 40 copies died quietly */
	ck_assert_uint_eq(queue_message_count(q), 0);
	H.ndl = 0;
	queue_delete(q);
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fifo_get_counts);
	tcase_add_test(tc, test_persistence_hooks);
	tcase_add_test(tc, test_round_robin);
	tcase_add_test(tc, test_budget_reschedules);
	tcase_add_test(tc, test_consumer_priority);
	tcase_add_test(tc, test_ready_gating_and_kick);
	tcase_add_test(tc, test_single_active_consumer);
	tcase_add_test(tc, test_exclusive_consumer);
	tcase_add_test(tc, test_requeue_original_position);
	tcase_add_test(tc, test_requeue_into_middle);
	tcase_add_test(tc, test_priority_queue);
	tcase_add_test(tc, test_purge);
	tcase_add_test(tc, test_delete_cancels);
	tcase_add_test(tc, test_auto_delete_unused);
	tcase_add_test(tc, test_expires_bookkeeping);
	tcase_add_test(tc, test_reentrant_dead_letter);
	tcase_add_test(tc, test_dead_letter_loop_is_cut);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, queue_limits_tcase());
	suite_add_tcase(s, queue_dl_tcase());
	suite_add_tcase(s, queue_args_tcase());
	return s;
}
