/*
 * Reclaiming space: fully-acked segments are deleted, sparse ones are
 * compacted without losing or reordering live data, an ACK that still
 * cancels an entry in an older segment keeps its segment alive, and a
 * randomized workload (publish to several queues, deliver, ack, drop,
 * compact, clean and unclean restarts, paging reads) always recovers
 * exactly the model's queues.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_test_util.h"

static char B[8192];
#define QS(t, q) ts_queue_str((t), (q), B, sizeof(B))

/* Message bodies are derived from the id, so any read can be checked. */
static size_t body_len_of(uint64_t id)
{
	return 100 + (size_t)((id * 7919) % 2900);
}

static void body_of(uint64_t id, uint8_t *out)
{
	size_t n = body_len_of(id);
	for (size_t j = 0; j < n; j++)
		out[j] = (uint8_t)(id * 31 + j);
}

static uint64_t pub_sized(struct tstore *t, uint64_t id, uint32_t q)
{
	uint8_t body[4096];
	body_of(id, body);
	store_msg_write(t->s, id, bytes_of("ex"), bytes_of("rk"), bytes_of("props"), body,
	                body_len_of(id));
	return store_enqueue(t->s, q, id);
}

static void check_read(struct tstore *t, uint64_t id)
{
	uint8_t want[4096], got[4096];
	body_of(id, want);
	ck_assert_msg(store_msg_read(t->s, id, got, body_len_of(id)) == 0, "read %llu",
	              (unsigned long long)id);
	ck_assert_mem_eq(got, want, body_len_of(id));
}

START_TEST(test_acked_segments_deleted)
{
	struct tstore t;
	struct store_counters c;
	uint64_t tk = 0;

	ts_init(&t, 64 << 10);
	ts_open(&t);
	for (uint64_t i = 1; i <= 200; i++)
		tk = pub_sized(&t, i, 1);
	ts_wait(&t, tk);
	int before = ts_count_segments(t.dir);
	ck_assert_int_ge(before, 4);
	/* Acks from the oldest on: whole segments die. */
	for (uint64_t i = 1; i <= 200; i++)
		tk = store_ack(t.s, 1, i);
	ts_wait(&t, tk);
	ts_compact(&t);
	store_counters_get(t.s, &c);
	ck_assert_int_eq(ts_count_segments(t.dir), 0);
	ck_assert_uint_eq(c.segments_deleted, (uint64_t)before);
	ck_assert_uint_eq(c.compactions, 0);
	ck_assert_uint_eq(c.live_bytes, 0);
	/* Life goes on in a new segment. */
	ts_wait(&t, pub_sized(&t, 500, 1));
	ts_reopen(&t);
	ck_assert_str_eq(QS(&t, 1), "500");
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_compaction_keeps_live_data)
{
	struct tstore t;
	struct store_counters c0, c1;
	uint64_t tk = 0;
	char want1[4096] = "", want2[4096] = "";
	size_t n1 = 0, n2 = 0;

	ts_init(&t, 64 << 10);
	ts_open(&t);
	for (uint64_t i = 1; i <= 300; i++) {
		tk = pub_sized(&t, i, (uint32_t)(1 + i % 2));
		if (i % 20 == 0)
			store_deliver(t.s, (uint32_t)(1 + i % 2), i);
	}
	ts_wait(&t, tk);
	/* Keep one in ten; the rest is acked. */
	for (uint64_t i = 1; i <= 300; i++) {
		uint32_t q = (uint32_t)(1 + i % 2);
		if (i % 10 == 0) {
			char *w = q == 1 ? want1 : want2;
			size_t *n = q == 1 ? &n1 : &n2;
			*n += (size_t)snprintf(w + *n, 4096 - *n, "%s%llu%s", *n ? " " : "",
			                       (unsigned long long)i, i % 20 == 0 ? "*" : "");
		} else {
			tk = store_ack(t.s, q, i);
		}
	}
	ts_wait(&t, tk);
	store_counters_get(t.s, &c0);
	ts_compact(&t);
	store_counters_get(t.s, &c1);
	ck_assert_uint_ge(c1.compactions, 2);
	ck_assert_uint_lt(c1.segment_bytes, c0.segment_bytes / 2);
	ck_assert_uint_lt(c1.segments, c0.segments);
	ck_assert_int_eq(ts_count_segments(t.dir), (int)c1.segments);
	/* Relocated messages page in from their new place. */
	for (uint64_t i = 10; i <= 300; i += 10)
		check_read(&t, i);
	ts_reopen(&t);
	ck_assert(t.st.from_checkpoint);
	ck_assert_str_eq(QS(&t, 1), want1);
	ck_assert_str_eq(QS(&t, 2), want2);
	ts_close_dirty(&t);
	ts_open(&t);
	ck_assert_str_eq(QS(&t, 1), want1);
	ck_assert_str_eq(QS(&t, 2), want2);
	ck_assert_uint_eq(t.st.damaged_records, 0);
	for (uint64_t i = 10; i <= 300; i += 10)
		check_read(&t, i);
	ts_cleanup(&t);
}
END_TEST

/*
 * q2's entries live in the first segment, their ACKs land much later.  The
 * segment holding the ACKs must outlive the first segment, or replay
 * would bring q2's messages back.
 */
START_TEST(test_ack_keeps_its_segment)
{
	struct tstore t;
	uint64_t tk = 0, id = 1;

	ts_init(&t, 64 << 10);
	ts_open(&t);
	/* Segment 1: mostly q1 (kept), some q2. */
	for (; id <= 40; id++)
		tk = pub_sized(&t, id, id % 4 == 0 ? 2 : 1);
	ts_wait(&t, tk);
	/* Later segments full of q3 traffic. */
	for (; id <= 200; id++)
		tk = pub_sized(&t, id, 3);
	ts_wait(&t, tk);
	/* Ack q2 (ACKs in the head), then everything of q3. */
	for (uint64_t i = 4; i <= 40; i += 4)
		tk = store_ack(t.s, 2, i);
	for (uint64_t i = 41; i < id; i++)
		tk = store_ack(t.s, 3, i);
	ts_wait(&t, tk);
	/* More q3 traffic so the ACK segment stops being the head, then acked. */
	uint64_t more = id;
	for (; id < more + 100; id++)
		tk = pub_sized(&t, id, 3);
	for (uint64_t i = more; i < id; i++)
		tk = store_ack(t.s, 3, i);
	ts_wait(&t, tk);
	ts_compact(&t);
	struct store_counters c;
	store_counters_get(t.s, &c);
	ck_assert_uint_gt(c.segments_deleted, 0);
	ts_close_dirty(&t);
	ts_open(&t);
	ck_assert_str_eq(QS(&t, 2), "");
	ck_assert_str_eq(QS(&t, 3), "");
	char want[512];
	size_t n = 0;
	for (uint64_t i = 1; i <= 40; i++)
		if (i % 4)
			n += (size_t)snprintf(want + n, sizeof(want) - n, "%s%llu", n ? " " : "",
			                      (unsigned long long)i);
	ck_assert_str_eq(QS(&t, 1), want);
	ts_cleanup(&t);
}
END_TEST

/* ------------------------------------------------------------ model */

#define MQ 5

struct ment {
	uint64_t id;
	bool delivered;
};

struct model {
	struct ment q[MQ + 1][1024];
	size_t n[MQ + 1];
};

static void model_check(struct tstore *t, const struct model *m)
{
	size_t at[MQ + 1] = { 0 };

	for (size_t i = 0; i < t->ngot; i++) {
		const struct rmsg *r = &t->got[i];
		ck_assert_uint_ge(r->queue_id, 1);
		ck_assert_uint_le(r->queue_id, MQ);
		size_t k = at[r->queue_id]++;
		ck_assert_msg(k < m->n[r->queue_id], "queue %u has extra message %llu",
		              r->queue_id, (unsigned long long)r->msg_id);
		const struct ment *e = &m->q[r->queue_id][k];
		ck_assert_msg(e->id == r->msg_id, "queue %u position %zu: want %llu got %llu",
		              r->queue_id, k, (unsigned long long)e->id,
		              (unsigned long long)r->msg_id);
		ck_assert_int_eq(e->delivered, r->delivered);
		ck_assert_uint_eq(r->body_len, body_len_of(r->msg_id));
		uint8_t want[4096];
		body_of(r->msg_id, want);
		ck_assert_mem_eq(r->body, want, r->body_len);
	}
	for (uint32_t q = 1; q <= MQ; q++)
		ck_assert_msg(at[q] == m->n[q], "queue %u: %zu of %zu messages", q, at[q], m->n[q]);
	ck_assert_uint_eq(t->st.damaged_records, 0);
	ck_assert_uint_eq(t->st.lost_entries, 0);
}

static void model_remove(struct model *m, uint32_t q, size_t k)
{
	memmove(&m->q[q][k], &m->q[q][k + 1], (m->n[q] - k - 1) * sizeof(m->q[q][0]));
	m->n[q]--;
}

/* Add the store's counters to the run's totals (before it is closed). */
static void tally(struct tstore *t, struct store_counters *tot)
{
	struct store_counters c;
	store_counters_get(t->s, &c);
	tot->compactions += c.compactions;
	tot->segments_deleted += c.segments_deleted;
	tot->syncs += c.syncs;
}

static void run_model(unsigned seed, int steps)
{
	static struct model m;
	struct tstore t;
	struct store_counters tot;
	uint64_t next_id = 1;
	size_t live = 0;

	memset(&tot, 0, sizeof(tot));
	memset(&m, 0, sizeof(m));
	srand(seed);
	ts_init(&t, 64 << 10);
	ts_open(&t);
	for (int step = 0; step < steps; step++) {
		int r = rand() % 1000;
		if (r < 300 && live < 600) {
			/* Publish to one to three queues. */
			uint64_t id = next_id++;
			int k = 1 + rand() % 3;
			uint8_t body[4096];
			body_of(id, body);
			store_msg_write(t.s, id, bytes_of("ex"), bytes_of("rk"), bytes_of("props"),
			                body, body_len_of(id));
			uint32_t first = (uint32_t)(1 + rand() % MQ);
			for (int j = 0; j < k; j++) {
				uint32_t q = 1 + (first - 1 + (uint32_t)j) % MQ;
				store_enqueue(t.s, q, id);
				m.q[q][m.n[q]++] = (struct ment){ id, false };
				live++;
			}
		} else if (r < 400) {
			uint32_t q = (uint32_t)(1 + rand() % MQ);
			if (m.n[q]) {
				size_t k = (size_t)rand() % m.n[q];
				store_deliver(t.s, q, m.q[q][k].id);
				m.q[q][k].delivered = true;
			}
		} else if (r < 750) {
			/* Ack, mostly near the head of the queue like a consumer would. */
			uint32_t q = (uint32_t)(1 + rand() % MQ);
			if (m.n[q]) {
				size_t k = rand() % 4 ? 0 : (size_t)rand() % m.n[q];
				store_ack(t.s, q, m.q[q][k].id);
				model_remove(&m, q, k);
				live--;
			}
		} else if (r < 755) {
			uint32_t q = (uint32_t)(1 + rand() % MQ);
			store_queue_drop(t.s, q);
			live -= m.n[q];
			m.n[q] = 0;
		} else if (r < 900) {
			ts_wait(&t, store_last_ticket(t.s));
		} else if (r < 960) {
			ts_wait(&t, store_last_ticket(t.s));
			ts_compact(&t);
			/* Spot-check paging after compaction moved things. */
			for (uint32_t q = 1; q <= MQ; q++)
				if (m.n[q])
					check_read(&t, m.q[q][(size_t)rand() % m.n[q]].id);
		} else if (r < 975) {
			/* Close in the middle of a compaction sometimes. */
			if (rand() % 2) {
				ts_wait(&t, store_last_ticket(t.s));
				store_compact_maybe(t.s);
				for (int spin = 0; spin < 3; spin++) {
					store_kick(t.s);
					ev_run(t.loop, EVRUN_NOWAIT);
				}
			}
			tally(&t, &tot);
			ts_reopen(&t);
			model_check(&t, &m);
		} else if (r < 990) {
			tally(&t, &tot);
			ts_close_dirty(&t);
			ts_open(&t);
			model_check(&t, &m);
		}
	}
	ts_wait(&t, store_last_ticket(t.s));
	ts_compact(&t);
	tally(&t, &tot);
	ts_close_dirty(&t);
	ts_open(&t);
	model_check(&t, &m);
	ts_reopen(&t);
	model_check(&t, &m);
	/* The run exercised what it is meant to. */
	if (getenv("STORE_MODEL_VERBOSE"))
		fprintf(stderr, "seed %u: %llu compactions, %llu segments deleted, %llu syncs\n",
		        seed, (unsigned long long)tot.compactions,
		        (unsigned long long)tot.segments_deleted, (unsigned long long)tot.syncs);
	ck_assert_uint_gt(tot.compactions, 0);
	ck_assert_uint_gt(tot.segments_deleted, 0);
	ts_cleanup(&t);
}

START_TEST(test_random_model)
{
	run_model((unsigned)(1000 + _i), 6000);
}
END_TEST

TCase *store_space_tcase(void)
{
	TCase *tc = tcase_create("space");
	tcase_add_test(tc, test_acked_segments_deleted);
	tcase_add_test(tc, test_compaction_keeps_live_data);
	tcase_add_test(tc, test_ack_keeps_its_segment);
	tcase_add_loop_test(tc, test_random_model, 0, 4);
	tcase_set_timeout(tc, 240);
	return tc;
}
