/*
 * Store recovery: clean (checkpoint) and replayed restarts give the same
 * queues; a crashed writer loses nothing that was reported durable; torn
 * tails are truncated at every possible cut; a damaged record costs only
 * itself; queue ids may be reused; tickets and order carry on.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store_test_util.h"

static char B[1024];
#define QS(t, q) ts_queue_str((t), (q), B, sizeof(B))

/* q1: 1..6 with 2 acked and 3,5 delivered; q2 shares 1 and 4; q3 dropped. */
static uint64_t fill_basic(struct tstore *t)
{
	char body[32];
	uint64_t tk;

	for (uint64_t i = 1; i <= 6; i++) {
		snprintf(body, sizeof(body), "body %llu", (unsigned long long)i);
		store_msg_write(t->s, i, bytes_of("amq.direct"), bytes_of("key"),
		                (struct bytes){ (const uint8_t *)"\x80\x00\x02", 3 },
		                (const uint8_t *)body, strlen(body));
		store_enqueue(t->s, 1, i);
		if (i == 1 || i == 4)
			store_enqueue(t->s, 2, i);
		if (i >= 5)
			store_enqueue(t->s, 3, i);
	}
	store_deliver(t->s, 1, 3);
	store_deliver(t->s, 1, 5);
	store_deliver(t->s, 1, 5); /* twice: no change */
	store_ack(t->s, 1, 2);
	store_ack(t->s, 7, 2); /* unknown queue: nothing */
	tk = store_queue_drop(t->s, 3);
	ck_assert_uint_eq(tk, store_last_ticket(t->s));
	return tk;
}

static void check_basic(struct tstore *t)
{
	ck_assert_str_eq(QS(t, 1), "1 3* 4 5* 6");
	ck_assert_str_eq(QS(t, 2), "1 4");
	ck_assert_str_eq(QS(t, 3), "");
	ck_assert_uint_eq(t->st.queues, 2);
	ck_assert_uint_eq(t->st.messages, 7);
	ck_assert_uint_eq(t->st.damaged_records, 0);
	ck_assert_uint_eq(t->st.truncated_bytes, 0);
	for (size_t i = 0; i < t->ngot; i++) {
		char want[32];
		snprintf(want, sizeof(want), "body %llu", (unsigned long long)t->got[i].msg_id);
		ck_assert_str_eq((char *)t->got[i].body, want);
		ck_assert_str_eq(t->got[i].exchange, "amq.direct");
		ck_assert_str_eq(t->got[i].routing_key, "key");
		ck_assert_uint_eq(t->got[i].props_len, 3);
		ck_assert_int_eq(memcmp(t->got[i].props, "\x80\x00\x02", 3), 0);
		if (i)
			ck_assert(t->got[i].queue_id > t->got[i - 1].queue_id ||
			          t->got[i].seq > t->got[i - 1].seq);
	}
	ck_assert_uint_eq(store_max_msg_id(t->s), 6);
}

START_TEST(test_recover_clean_and_replayed)
{
	struct tstore t;

	ts_init(&t, 0);
	ts_open(&t);
	ck_assert_uint_eq(t.ngot, 0);
	ck_assert(!t.st.from_checkpoint);
	ts_wait(&t, fill_basic(&t));
	ts_reopen(&t);
	ck_assert(t.st.from_checkpoint);
	check_basic(&t);
	/* The checkpoint is consumed by recovery. */
	char *cp = ts_path(t.dir, "msgs/checkpoint");
	ck_assert_int_eq(access(cp, F_OK), -1);
	free(cp);
	ts_close_dirty(&t);
	ts_open(&t);
	ck_assert(!t.st.from_checkpoint);
	check_basic(&t);
	/* Reopening again (now over two sessions' worth) changes nothing. */
	ts_reopen(&t);
	check_basic(&t);
	ck_assert_int_eq(store_recover(t.s, ts_recovered_cb, &t, NULL), -1);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_recover_after_crash)
{
	struct tstore t;
	int pipefd[2];
	uint64_t durable_n = 0;

	ts_init(&t, 256 << 10);
	ck_assert_int_eq(pipe(pipefd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The writer: reports how many messages were durable, then dies. */
		struct tstore c = t;
		char body[600];
		c.loop = ev_loop_new(EVFLAG_AUTO);
		char err[256];
		if (store_open(&c.s, &c.cfg, c.loop, ts_durable_cb, &c, err, sizeof(err)) ||
		    store_recover(c.s, NULL, NULL, NULL))
			_exit(3);
		memset(body, 'c', sizeof(body));
		uint64_t n = 0;
		for (int round = 0; round < 20; round++) {
			uint64_t tk = 0;
			for (int i = 0; i < 50; i++) {
				n++;
				store_msg_write(c.s, n, bytes_of(""), bytes_of("k"), bytes_of(""),
				                (uint8_t *)body, sizeof(body));
				tk = store_enqueue(c.s, 1, n);
				if (n % 3 == 0)
					store_ack(c.s, 1, n - 1);
			}
			store_kick(c.s);
			while (store_durable_ticket(c.s) < tk)
				ev_run(c.loop, EVRUN_ONCE);
			if (write(pipefd[1], &n, sizeof(n)) != sizeof(n))
				_exit(4);
		}
		/* More that is never waited for, then a hard exit mid-flight. */
		for (int i = 0; i < 200; i++) {
			n++;
			store_msg_write(c.s, n, bytes_of(""), bytes_of("k"), bytes_of(""),
			                (uint8_t *)body, sizeof(body));
			store_enqueue(c.s, 1, n);
			if (i % 10 == 0)
				store_kick(c.s);
		}
		_exit(0);
	}
	close(pipefd[1]);
	uint64_t v;
	while (read(pipefd[0], &v, sizeof(v)) == sizeof(v))
		durable_n = v;
	close(pipefd[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_uint_eq(durable_n, 1000);

	ts_open(&t);
	ck_assert(!t.st.from_checkpoint);
	/* Every durable message except the acked ones, in order, then maybe more. */
	uint64_t want = 1;
	size_t i = 0;
	for (; want <= durable_n; want++) {
		if (want % 3 == 2)
			continue; /* acked by the writer */
		ck_assert_uint_lt(i, t.ngot);
		ck_assert_uint_eq(t.got[i].msg_id, want);
		i++;
	}
	for (; i < t.ngot; i++)
		ck_assert_uint_gt(t.got[i].msg_id, durable_n);
	ck_assert_uint_eq(t.st.damaged_records, 0);
	ts_cleanup(&t);
}
END_TEST

/* Ten messages on q1, bodies "message NN", closed without a checkpoint. */
static void fill_ten(struct tstore *t)
{
	char body[16];
	uint64_t tk = 0;

	ts_init(t, 0);
	ts_open(t);
	for (uint64_t i = 1; i <= 10; i++) {
		snprintf(body, sizeof(body), "message %02llu", (unsigned long long)i);
		tk = ts_pub(t, i, 1, body);
	}
	ts_wait(t, tk);
	ts_close_dirty(t);
}

/* Offset of message i's MSG record (1-based) in the ten-message segment. */
static uint64_t msg_off(uint64_t i)
{
	uint64_t msg = store_rec_msg_size(2, 2, 1, 10);
	return STORE_SEG_HDR + (i - 1) * (msg + STORE_ENQ_SIZE);
}

START_TEST(test_torn_tail_every_offset)
{
	struct tstore t, w;
	char *seg, *wseg;
	uint64_t size, start;

	fill_ten(&t);
	seg = ts_last_segment(t.dir);
	size = ts_file_size(seg);
	start = msg_off(10);
	ck_assert_uint_eq(size, msg_off(11));
	for (uint64_t cut = start; cut < size; cut++) {
		ts_init(&w, 0);
		ts_copy_tree(t.dir, w.dir);
		wseg = ts_last_segment(w.dir);
		ck_assert_int_eq(truncate(wseg, (off_t)cut), 0);
		ts_open(&w);
		ck_assert_str_eq(QS(&w, 1), "1 2 3 4 5 6 7 8 9");
		uint64_t good = cut < start + (size - start - STORE_ENQ_SIZE) ? start
		                                                              : size - STORE_ENQ_SIZE;
		ck_assert_uint_eq(w.st.truncated_bytes, cut - good);
		ck_assert_uint_eq(w.st.damaged_records, 0);
		ck_assert_uint_eq(ts_file_size(wseg), good);
		/* The store goes on: a new message after the repaired tail. */
		ts_wait(&w, ts_pub(&w, 11, 1, "message 11"));
		ts_close_dirty(&w);
		ts_open(&w);
		ck_assert_str_eq(QS(&w, 1), "1 2 3 4 5 6 7 8 9 11");
		ck_assert_uint_eq(w.st.truncated_bytes, 0);
		free(wseg);
		ts_cleanup(&w);
	}
	free(seg);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_damaged_middle_records)
{
	struct tstore t, w;
	char *seg;

	fill_ten(&t);
	/* A flipped body byte of message 5: that record is lost, nothing else. */
	ts_init(&w, 0);
	ts_copy_tree(t.dir, w.dir);
	seg = ts_last_segment(w.dir);
	ts_flip_byte(seg, msg_off(6) - STORE_ENQ_SIZE - 3);
	ts_open(&w);
	ck_assert_str_eq(QS(&w, 1), "1 2 3 4 6 7 8 9 10");
	ck_assert_uint_eq(w.st.damaged_records, 1);
	ck_assert_uint_eq(w.st.lost_entries, 1);
	ck_assert_uint_eq(w.st.truncated_bytes, 0);
	free(seg);
	ts_cleanup(&w);

	/* A flipped sequence number in message 6's ENQ: it is not in the queue. */
	ts_init(&w, 0);
	ts_copy_tree(t.dir, w.dir);
	seg = ts_last_segment(w.dir);
	ts_flip_byte(seg, msg_off(7) - 2);
	ts_open(&w);
	ck_assert_str_eq(QS(&w, 1), "1 2 3 4 5 7 8 9 10");
	ck_assert_uint_eq(w.st.damaged_records, 1);
	free(seg);
	ts_cleanup(&w);

	/* A flipped length field of message 7: resynchronised on the next record. */
	ts_init(&w, 0);
	ts_copy_tree(t.dir, w.dir);
	seg = ts_last_segment(w.dir);
	ts_flip_byte(seg, msg_off(7) + 6);
	ts_open(&w);
	ck_assert_str_eq(QS(&w, 1), "1 2 3 4 5 6 8 9 10");
	ck_assert_uint_eq(w.st.damaged_records, 1);
	ck_assert_uint_eq(w.st.lost_entries, 1); /* its ENQ survived, the message did not */
	free(seg);
	ts_cleanup(&w);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_queue_id_reuse)
{
	struct tstore t;

	ts_init(&t, 0);
	ts_open(&t);
	ts_pub(&t, 1, 4, "old a");
	ts_pub(&t, 2, 4, "old b");
	ts_pub(&t, 3, 5, "other");
	store_queue_drop(t.s, 4);
	ts_pub(&t, 4, 4, "new c");
	store_deliver(t.s, 4, 4);
	ts_wait(&t, store_last_ticket(t.s));
	ts_close_dirty(&t);
	ts_open(&t);
	ck_assert_str_eq(QS(&t, 4), "4*");
	ck_assert_str_eq(QS(&t, 5), "3");
	ts_reopen(&t);
	ck_assert_str_eq(QS(&t, 4), "4*");
	/* Dropping an unknown or empty queue writes nothing. */
	uint64_t tk = store_last_ticket(t.s);
	ck_assert_uint_eq(store_queue_drop(t.s, 99), tk);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_reenqueue_and_tickets)
{
	struct tstore t;

	ts_init(&t, 0);
	ts_open(&t);
	store_msg_write(t.s, 1, bytes_of(""), bytes_of("k"), bytes_of(""), (const uint8_t *)"x", 1);
	store_enqueue(t.s, 1, 1);
	store_enqueue(t.s, 2, 1);
	store_deliver(t.s, 1, 1);
	store_ack(t.s, 1, 1);
	ts_pub(&t, 2, 1, "y");
	store_enqueue(t.s, 1, 1); /* back on q1, after 2 */
	ck_assert_uint_eq(store_enqueue(t.s, 1, 1), store_last_ticket(t.s)); /* already there */
	ts_wait(&t, store_last_ticket(t.s));
	uint64_t before = store_last_ticket(t.s);
	ts_close_dirty(&t);
	ts_open(&t);
	ck_assert_str_eq(QS(&t, 1), "2 1");
	ck_assert_str_eq(QS(&t, 2), "1");
	/* Tickets (and so enqueue order) carry on above what was recovered. */
	ck_assert_uint_eq(store_last_ticket(t.s), before);
	ts_pub(&t, 3, 1, "z");
	ts_wait(&t, store_last_ticket(t.s));
	ts_reopen(&t);
	ck_assert_str_eq(QS(&t, 1), "2 1 3");
	ck_assert_uint_eq(store_max_msg_id(t.s), 3);
	ts_cleanup(&t);
}
END_TEST

TCase *store_recover_tcase(void)
{
	TCase *tc = tcase_create("recover");
	tcase_add_test(tc, test_recover_clean_and_replayed);
	tcase_add_test(tc, test_recover_after_crash);
	tcase_add_test(tc, test_torn_tail_every_offset);
	tcase_add_test(tc, test_damaged_middle_records);
	tcase_add_test(tc, test_queue_id_reuse);
	tcase_add_test(tc, test_reenqueue_and_tickets);
	tcase_set_timeout(tc, 120);
	return tc;
}
