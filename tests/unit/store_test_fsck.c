/*
 * The offline checker and the on-disk fixtures.  tests/unit/data/store/
 * holds format-1 data directories: v1-clean (two sessions' segments) and
 * one per kind of damage (v1-torn: the last record cut short; v1-damaged:
 * a flipped byte in a message body; v1-badheader: an unreadable segment
 * header).  The generator below must still produce v1-clean byte for byte,
 * which pins the format: changing it means a new version and new fixtures.
 * To regenerate: STORE_FIXTURES_WRITE=<dir> CK_RUN_CASE=fsck tests/unit/store_test
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_test_util.h"

static char B[1024];
#define QS(t, q) ts_queue_str((t), (q), B, sizeof(B))

static uint64_t pub_fixture(struct tstore *t, uint64_t id, uint32_t q)
{
	char body[32];
	snprintf(body, sizeof(body), "message %llu", (unsigned long long)id);
	store_msg_write(t->s, id, bytes_of("amq.direct"), bytes_of("k1"),
	                (struct bytes){ (const uint8_t *)"\x10\x00\x02", 3 },
	                (const uint8_t *)body, strlen(body));
	return store_enqueue(t->s, q, id);
}

/*
 * Session 1: messages 1-3 on q1 (2 also on q2), 1 delivered.
 * Session 2: 4-6 on q1, 2 acked on q1, 7 on q3, q3 dropped.
 * Live: q1 "1* 3 4 5 6", q2 "2".
 */
static void make_fixture(struct tstore *t)
{
	ts_open(t);
	store_debug_seed(t->s, 1);
	pub_fixture(t, 1, 1);
	pub_fixture(t, 2, 1);
	store_enqueue(t->s, 2, 2);
	pub_fixture(t, 3, 1);
	store_deliver(t->s, 1, 1);
	ts_wait(t, store_last_ticket(t->s));
	ts_close_dirty(t);
	ts_open(t);
	store_debug_seed(t->s, 2);
	for (uint64_t i = 4; i <= 6; i++)
		pub_fixture(t, i, 1);
	store_ack(t->s, 1, 2);
	pub_fixture(t, 7, 3);
	store_queue_drop(t->s, 3);
	ts_wait(t, store_last_ticket(t->s));
	ts_close_dirty(t);
	char *lock = ts_path(t->dir, "lock");
	unlink(lock);
	free(lock);
}

static char *fixture_dir(const char *name)
{
	const char *top = getenv("top_srcdir");
	char rel[128];
	snprintf(rel, sizeof(rel), "tests/unit/data/store/%s", name);
	return ts_path(top ? top : ".", rel);
}

static bool same_file(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	bool same = fa && fb;
	int ca, cb;

	while (same) {
		ca = fgetc(fa);
		cb = fgetc(fb);
		if (ca != cb)
			same = false;
		if (ca == EOF || cb == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* Write the fixture set under dir (only when regenerating). */
static void write_fixtures(struct tstore *gen, const char *dir)
{
	const char *names[] = { "v1-clean", "v1-torn", "v1-damaged", "v1-badheader" };
	for (size_t i = 0; i < 4; i++) {
		char *d = ts_path(dir, names[i]);
		ts_rm_rf(d);
		ts_copy_tree(gen->dir, d);
		char *s1 = ts_path(d, "msgs/00000001.seg"), *s2 = ts_path(d, "msgs/00000002.seg");
		if (i == 1)
			ck_assert_int_eq(truncate(s2, (off_t)(ts_file_size(s2) - 5)), 0);
		if (i == 2) /* the last byte of message 3's body: the first segment's end - ENQ */
			ts_flip_byte(s1, ts_file_size(s1) - STORE_DLV_SIZE - STORE_ENQ_SIZE - 1);
		if (i == 3)
			ts_flip_byte(s1, 2);
		free(s1);
		free(s2);
		free(d);
	}
}

START_TEST(test_fixture_is_format_v1)
{
	struct tstore t;

	ts_init(&t, 0);
	make_fixture(&t);
	const char *regen = getenv("STORE_FIXTURES_WRITE");
	if (regen)
		write_fixtures(&t, regen);
	char *fx = fixture_dir("v1-clean");
	for (int i = 1; i <= 2; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "msgs/0000000%d.seg", i);
		char *a = ts_path(t.dir, rel), *b = ts_path(fx, rel);
		ck_assert_msg(same_file(a, b), "%s differs from the generator's output", b);
		free(a);
		free(b);
	}
	free(fx);
	ts_open(&t);
	ck_assert_str_eq(QS(&t, 1), "1* 3 4 5 6");
	ck_assert_str_eq(QS(&t, 2), "2");
	ck_assert_str_eq(QS(&t, 3), "");
	ts_cleanup(&t);
}
END_TEST

/* Copy fixture `name` into a fresh directory of t. */
static void use_fixture(struct tstore *t, const char *name)
{
	char *fx = fixture_dir(name);
	ts_init(t, 0);
	ts_copy_tree(fx, t->dir);
	free(fx);
}

static int fsck_to(const char *dir, bool repair, char *out, size_t cap)
{
	FILE *f = tmpfile();
	int rc = store_fsck(dir, repair, f);
	rewind(f);
	size_t n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
	return rc;
}

#define HAS(out, s) ck_assert_msg(strstr((out), (s)) != NULL, "missing '%s' in:\n%s", (s), (out))

START_TEST(test_fsck_clean)
{
	struct tstore t;
	char out[4096];

	use_fixture(&t, "v1-clean");
	ck_assert_int_eq(fsck_to(t.dir, false, out, sizeof(out)), 0);
	HAS(out, "00000001.seg: 8 records (msg 3, enq 4, dlv 1, ack 0, qdrop 0)");
	HAS(out, "00000002.seg: 10 records (msg 4, enq 4, dlv 0, ack 1, qdrop 1)");
	HAS(out, "segments: 2, records: 18, damaged: 0");
	HAS(out, "live: 2 queues, 6 messages");
	HAS(out, "status: clean");
	/* repair on a clean store changes nothing */
	ck_assert_int_eq(fsck_to(t.dir, true, out, sizeof(out)), 0);
	ts_open(&t);
	ck_assert_str_eq(QS(&t, 1), "1* 3 4 5 6");
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_fsck_torn)
{
	struct tstore t;
	char out[4096];

	use_fixture(&t, "v1-torn");
	ck_assert_int_eq(fsck_to(t.dir, false, out, sizeof(out)), 2);
	HAS(out, "bytes of torn tail");
	HAS(out, "status: damaged");
	ck_assert_int_eq(fsck_to(t.dir, true, out, sizeof(out)), 1);
	HAS(out, "00000002.seg: truncated to");
	HAS(out, "status: repaired");
	ck_assert_int_eq(fsck_to(t.dir, false, out, sizeof(out)), 0);
	ts_open(&t);
	/* The queue drop was the torn record: never durable, so q3 is back. */
	ck_assert_str_eq(QS(&t, 1), "1* 3 4 5 6");
	ck_assert_str_eq(QS(&t, 3), "7");
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_fsck_damaged)
{
	struct tstore t;
	char out[4096];

	use_fixture(&t, "v1-damaged");
	ck_assert_int_eq(fsck_to(t.dir, false, out, sizeof(out)), 2);
	HAS(out, "00000001.seg: 7 records");
	HAS(out, "1 damaged region(s)");
	HAS(out, "1 entries without a message");
	ck_assert_int_eq(fsck_to(t.dir, true, out, sizeof(out)), 1);
	HAS(out, "00000001.seg: rewritten with its intact records");
	ck_assert_int_eq(fsck_to(t.dir, false, out, sizeof(out)), 0);
	HAS(out, "segments: 2, records: 17, damaged: 0");
	ts_open(&t);
	ck_assert_str_eq(QS(&t, 1), "1* 4 5 6");
	ck_assert_str_eq(QS(&t, 2), "2");
	ck_assert_uint_eq(t.st.lost_entries, 1);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_fsck_bad_header)
{
	struct tstore t;
	char out[4096];

	use_fixture(&t, "v1-badheader");
	ck_assert_int_eq(fsck_to(t.dir, false, out, sizeof(out)), 2);
	HAS(out, "00000001.seg: bad or foreign header");
	/* Recovery skips the segment and counts it. */
	ts_open(&t);
	ck_assert_uint_eq(t.st.damaged_records, 1);
	ck_assert_str_eq(QS(&t, 1), "4 5 6");
	ts_close(&t);
	ck_assert_int_eq(fsck_to(t.dir, true, out, sizeof(out)), 1);
	HAS(out, "set aside as .damaged");
	char *aside = ts_path(t.dir, "msgs/00000001.seg.damaged");
	ck_assert_int_eq(access(aside, F_OK), 0);
	free(aside);
	ck_assert_int_eq(fsck_to(t.dir, false, out, sizeof(out)), 0);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_fsck_checkpoint)
{
	struct tstore t;
	char out[4096];

	use_fixture(&t, "v1-clean");
	ts_open(&t);
	ts_close(&t); /* writes a checkpoint */
	ck_assert_int_eq(fsck_to(t.dir, false, out, sizeof(out)), 0);
	HAS(out, "checkpoint: valid");
	/* Bytes appended behind its back make it stale. */
	char *seg = ts_path(t.dir, "msgs/00000002.seg");
	int fd = open(seg, O_WRONLY | O_APPEND);
	ck_assert_int_eq(write(fd, "junk", 4), 4);
	close(fd);
	free(seg);
	ck_assert_int_eq(fsck_to(t.dir, true, out, sizeof(out)), 1);
	HAS(out, "truncated to");
	HAS(out, "checkpoint: no longer matches the repaired files, removed");
	char *cp = ts_path(t.dir, "msgs/checkpoint");
	ck_assert_int_eq(access(cp, F_OK), -1);
	free(cp);
	ts_open(&t);
	ck_assert(!t.st.from_checkpoint);
	ck_assert_str_eq(QS(&t, 1), "1* 3 4 5 6");
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_dump)
{
	struct tstore t;
	char out[4096];

	use_fixture(&t, "v1-clean");
	FILE *f = tmpfile();
	ck_assert_int_eq(store_dump(t.dir, 1, f), 0);
	rewind(f);
	size_t n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	HAS(out, "msg=1 redelivered=yes exchange='amq.direct' routing_key='k1' props=3 body=9 "
	         "'message 1'");
	HAS(out, "msg=3 redelivered=no");
	HAS(out, "queue 1: 5 messages");
	ck_assert_ptr_null(strstr(out, "msg=2 "));
	/* Nothing changed on disk, and dump refuses while the store is open. */
	ck_assert_int_eq(fsck_to(t.dir, false, out, sizeof(out)), 0);
	ts_open(&t);
	f = tmpfile();
	ck_assert_int_eq(store_dump(t.dir, 1, f), -1);
	fclose(f);
	ts_cleanup(&t);
}
END_TEST

TCase *store_fsck_tcase(void)
{
	TCase *tc = tcase_create("fsck");
	tcase_add_test(tc, test_fixture_is_format_v1);
	tcase_add_test(tc, test_fsck_clean);
	tcase_add_test(tc, test_fsck_torn);
	tcase_add_test(tc, test_fsck_damaged);
	tcase_add_test(tc, test_fsck_bad_header);
	tcase_add_test(tc, test_fsck_checkpoint);
	tcase_add_test(tc, test_dump);
	tcase_set_timeout(tc, 60);
	return tc;
}
