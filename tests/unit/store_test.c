/*
 * Store unit tests, part one: CRC32C, the record and header formats, the
 * hash index and the segment reader, then the running store: the lock,
 * durable-callback order, group commit, write errors, paging reads and the
 * definitions file.  Recovery is in store_test_recover.c, deletion and
 * compaction in store_test_space.c, fsck/dump and fixtures in
 * store_test_fsck.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"
#include "store/crc32c.h"
#include "store/format.h"
#include "store/idx.h"
#include "store_test_util.h"

/* ------------------------------------------------------------ CRC32C */

static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
	}
	return ~c;
}

START_TEST(test_crc_vectors)
{
	uint8_t buf[32];

	ck_assert_uint_eq(crc32c("123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(crc32c_update_sw(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(crc32c("", 0), 0);
	/* RFC 3720 (iSCSI) B.4 vectors. */
	memset(buf, 0, sizeof(buf));
	ck_assert_uint_eq(crc32c(buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	ck_assert_uint_eq(crc32c(buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	ck_assert_uint_eq(crc32c(buf, 32), 0x46DD794Eu);
	ck_assert_uint_eq(crc32c_update_sw(0, buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	ck_assert_uint_eq(crc32c(buf, 32), 0x113FDB5Cu);
}
END_TEST

START_TEST(test_crc_paths_agree)
{
	uint8_t buf[4096 + 16];
	uint8_t w[8];

	/* Every slice-by-8 table entry: each byte value at each of 8 positions. */
	for (int pos = 0; pos < 8; pos++) {
		for (int v = 0; v < 256; v++) {
			memset(w, 0, sizeof(w));
			w[pos] = (uint8_t)v;
			ck_assert_uint_eq(crc32c_update_sw(0, w, 8), crc_bitwise(w, 8));
			ck_assert_uint_eq(crc32c_update_sw(0, w + pos, 1), crc_bitwise(w + pos, 1));
		}
	}
	srand(7);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
	/* Every alignment and many lengths; chaining equals one pass. */
	for (size_t off = 0; off < 16; off++) {
		for (size_t len = 0; len < 300; len += 7) {
			uint32_t ref = crc_bitwise(buf + off, len);
			ck_assert_uint_eq(crc32c(buf + off, len), ref);
			ck_assert_uint_eq(crc32c_update_sw(0, buf + off, len), ref);
			uint32_t c = crc32c_update(0, buf + off, len / 3);
			c = crc32c_update(c, buf + off + len / 3, len - len / 3);
			ck_assert_uint_eq(c, ref);
		}
	}
	ck_assert_uint_eq(crc32c(buf, 4096), crc_bitwise(buf, 4096));
}
END_TEST

/* ------------------------------------------------------------ formats */

START_TEST(test_record_roundtrip)
{
	uint8_t buf[512];
	struct store_rec r;
	uint32_t len;
	const char *body = "hello body";
	uint64_t size = store_rec_msg_size(3, 2, 4, 10);

	ck_assert_uint_eq(size, STORE_REC_HDR + 8 + 8 + 1 + 3 + 1 + 2 + 4 + 4 + 10);
	ck_assert_uint_eq(store_rec_encode_msg(buf, 77, bytes_of("amq"), bytes_of("rk"),
	                                       bytes_of("PROP"), (const uint8_t *)body, 10),
	                  size);
	/* Not sealed yet: the CRC does not match. */
	ck_assert_int_eq(store_rec_check(buf, (size_t)size, 9, 32, &len), STORE_CHECK_BAD);
	store_rec_seal(buf, 9, 32);
	ck_assert_int_eq(store_rec_check(buf, (size_t)size, 9, 32, &len), STORE_CHECK_OK);
	ck_assert_uint_eq(len, size);
	/* Bound to its place: another offset or salt does not check. */
	ck_assert_int_eq(store_rec_check(buf, (size_t)size, 9, 40, &len), STORE_CHECK_BAD);
	ck_assert_int_eq(store_rec_check(buf, (size_t)size, 10, 32, &len), STORE_CHECK_BAD);
	ck_assert_int_eq(store_rec_decode(buf, (uint32_t)size, &r), 0);
	ck_assert_uint_eq(r.type, STORE_REC_MSG);
	ck_assert_uint_eq(r.msg_id, 77);
	ck_assert(bytes_eq_str(r.exchange, "amq"));
	ck_assert(bytes_eq_str(r.routing_key, "rk"));
	ck_assert(bytes_eq_str(r.props, "PROP"));
	ck_assert_uint_eq(r.body_len, 10);
	ck_assert_mem_eq(r.body, body, 10);
	/* Every flipped byte is caught; every cut is short. */
	for (uint64_t i = 0; i < size; i++) {
		buf[i] ^= 0x01;
		ck_assert_int_ne(store_rec_check(buf, (size_t)size, 9, 32, &len), STORE_CHECK_OK);
		buf[i] ^= 0x01;
	}
	for (uint64_t cut = 4; cut < size; cut++)
		ck_assert_int_eq(store_rec_check(buf, (size_t)cut, 9, 32, &len), STORE_CHECK_SHORT);

	ck_assert_uint_eq(store_rec_encode_enq(buf, 5, 77, 1234, STORE_ENQ_DELIVERED),
	                  STORE_ENQ_SIZE);
	store_rec_seal(buf, 1, 100);
	ck_assert_int_eq(store_rec_check(buf, STORE_ENQ_SIZE, 1, 100, &len), STORE_CHECK_OK);
	ck_assert_int_eq(store_rec_decode(buf, len, &r), 0);
	ck_assert_uint_eq(r.type, STORE_REC_ENQ);
	ck_assert_uint_eq(r.queue_id, 5);
	ck_assert_uint_eq(r.msg_id, 77);
	ck_assert_uint_eq(r.seq, 1234);
	ck_assert_uint_eq(r.flags, STORE_ENQ_DELIVERED);

	store_rec_encode_dlv(buf, 6, 78);
	store_rec_seal(buf, 1, 0);
	ck_assert_int_eq(store_rec_check(buf, STORE_DLV_SIZE, 1, 0, &len), STORE_CHECK_OK);
	ck_assert_int_eq(store_rec_decode(buf, len, &r), 0);
	ck_assert(r.type == STORE_REC_DLV && r.queue_id == 6 && r.msg_id == 78);

	store_rec_encode_ack(buf, 7, 79, 3);
	store_rec_seal(buf, 1, 0);
	ck_assert_int_eq(store_rec_check(buf, STORE_ACK_SIZE, 1, 0, &len), STORE_CHECK_OK);
	ck_assert_int_eq(store_rec_decode(buf, len, &r), 0);
	ck_assert(r.type == STORE_REC_ACK && r.queue_id == 7 && r.msg_id == 79 && r.seg == 3);

	store_rec_encode_qdrop(buf, 8, 12, 4);
	store_rec_seal(buf, 1, 0);
	ck_assert_int_eq(store_rec_check(buf, STORE_QDROP_SIZE, 1, 0, &len), STORE_CHECK_OK);
	ck_assert_int_eq(store_rec_decode(buf, len, &r), 0);
	ck_assert(r.type == STORE_REC_QDROP && r.queue_id == 8 && r.seg == 12 && r.lo == 4);

	/* Limits: short strings and the payload cap. */
	ck_assert_uint_eq(store_rec_msg_size(256, 0, 0, 0), 0);
	ck_assert_uint_eq(store_rec_msg_size(0, 256, 0, 0), 0);
	ck_assert_uint_eq(store_rec_msg_size(0, 0, 0, STORE_MAX_PAYLOAD), 0);
}
END_TEST

START_TEST(test_segment_header)
{
	uint8_t h[STORE_SEG_HDR];
	uint32_t id, salt;

	store_seg_hdr_encode(h, 42, 0xabcdef);
	ck_assert_int_eq(store_seg_hdr_check(h, sizeof(h), &id, &salt), 0);
	ck_assert_uint_eq(id, 42);
	ck_assert_uint_eq(salt, 0xabcdef);
	ck_assert_int_eq(memcmp(h, "WARRENSG", 8), 0);
	ck_assert_uint_eq(store_get32(h + 8), STORE_FORMAT_VERSION);
	ck_assert_int_eq(store_seg_hdr_check(h, 31, &id, &salt), -1);
	for (size_t i = 0; i < sizeof(h); i++) {
		h[i] ^= 0x10;
		ck_assert_int_eq(store_seg_hdr_check(h, sizeof(h), &id, &salt), -1);
		h[i] ^= 0x10;
	}
	/* A future version is refused even with a valid CRC. */
	store_put32(h + 8, STORE_FORMAT_VERSION + 1);
	store_put32(h + 28, crc32c(h, 28));
	ck_assert_int_eq(store_seg_hdr_check(h, sizeof(h), &id, &salt), -1);
}
END_TEST

/* ------------------------------------------------------------ index */

struct tslot {
	uint64_t key;
	uint64_t val;
};

START_TEST(test_idx_random)
{
	struct store_idx t;
	uint64_t *keys = calloc(70000, sizeof(*keys));
	uint64_t *vals = calloc(70000, sizeof(*vals));
	size_t nk = 0;

	/* Random inserts and removes, checked against a plain array. */
	store_idx_init(&t, sizeof(struct tslot));
	srand(3);
	for (int round = 0; round < 60000; round++) {
		uint64_t k = (uint64_t)(rand() % 4000) + 1;
		/* Keys that share their high bits stress the backward shift. */
		if (round % 3 == 0)
			k = ((uint64_t)(rand() % 64) << 20) + 1;
		size_t j;
		for (j = 0; j < nk && keys[j] != k; j++)
			;
		if (rand() % 3 < 2) {
			bool existed;
			struct tslot *s = store_idx_insert(&t, k, &existed);
			ck_assert(existed == (j < nk));
			s->val = k * 3 + (uint64_t)round;
			if (j == nk)
				keys[nk++] = k;
			vals[j] = s->val;
		} else {
			ck_assert(store_idx_remove(&t, k) == (j < nk));
			if (j < nk) {
				keys[j] = keys[nk - 1];
				vals[j] = vals[nk - 1];
				nk--;
			}
		}
		ck_assert_uint_eq(t.n, nk);
	}
	for (size_t j = 0; j < nk; j++) {
		struct tslot *s = store_idx_find(&t, keys[j]);
		ck_assert_ptr_nonnull(s);
		ck_assert_uint_eq(s->val, vals[j]);
	}
	ck_assert_ptr_null(store_idx_find(&t, 999999999));
	/* Iteration sees each entry once; removing while iterating empties it. */
	size_t it = 0, seen = 0;
	struct tslot *s;
	while ((s = store_idx_next(&t, &it)))
		seen++;
	ck_assert_uint_eq(seen, nk);
	it = 0;
	while ((s = store_idx_next(&t, &it)))
		store_idx_remove_iter(&t, s, &it);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_ptr_null(store_idx_find(&t, keys[0]));
	free(keys);
	free(vals);
	store_idx_free(&t);
}
END_TEST

/* ------------------------------------------------------------ reader */

/* A segment file of n ENQ records; returns its size. */
static uint64_t write_records(const char *path, int n, uint32_t salt)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	uint8_t h[STORE_SEG_HDR], r[STORE_ENQ_SIZE];
	uint64_t off = STORE_SEG_HDR;

	store_seg_hdr_encode(h, 1, salt);
	ck_assert_int_eq(write(fd, h, sizeof(h)), (ssize_t)sizeof(h));
	for (int i = 0; i < n; i++) {
		store_rec_encode_enq(r, 1, (uint64_t)i + 1, (uint64_t)i + 1, 0);
		store_rec_seal(r, salt, off);
		ck_assert_int_eq(write(fd, r, sizeof(r)), (ssize_t)sizeof(r));
		off += sizeof(r);
	}
	close(fd);
	return off;
}

static int read_all(const char *path, uint32_t salt, uint64_t *ids, struct store_reader *out)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	const uint8_t *p;
	uint64_t off;
	uint32_t len;
	int n = 0;

	fstat(fd, &st);
	store_reader_init(out, fd, salt, (uint64_t)st.st_size, STORE_SEG_HDR);
	while (store_reader_next(out, &p, &off, &len) > 0) {
		struct store_rec r;
		ck_assert_int_eq(store_rec_decode(p, len, &r), 0);
		ids[n++] = r.msg_id;
	}
	store_reader_free(out);
	close(fd);
	return n;
}

START_TEST(test_reader_damage)
{
	char path[] = "/tmp/store_reader.XXXXXX";
	int fd = mkstemp(path);
	uint64_t ids[64];
	struct store_reader rd;

	close(fd);
	uint64_t size = write_records(path, 10, 5);
	ck_assert_int_eq(read_all(path, 5, ids, &rd), 10);
	ck_assert_uint_eq(rd.damaged, 0);
	ck_assert_uint_eq(rd.tail, size);
	/* A flipped length field in record 4: skipped, the rest found again. */
	ts_flip_byte(path, STORE_SEG_HDR + 3 * STORE_ENQ_SIZE + 5);
	ck_assert_int_eq(read_all(path, 5, ids, &rd), 9);
	ck_assert_uint_eq(rd.damaged, 1);
	ck_assert_uint_eq(rd.damaged_bytes, STORE_ENQ_SIZE);
	ck_assert_uint_eq(ids[3], 5);
	ck_assert_uint_eq(rd.tail, size);
	/* A cut in the last record: the tail starts where it began. */
	ck_assert_int_eq(truncate(path, (off_t)(size - 7)), 0);
	ck_assert_int_eq(read_all(path, 5, ids, &rd), 8);
	ck_assert_uint_eq(rd.tail, size - STORE_ENQ_SIZE);
	/* The wrong salt: nothing is valid, everything is tail. */
	ck_assert_int_eq(read_all(path, 6, ids, &rd), 0);
	ck_assert_uint_eq(rd.tail, STORE_SEG_HDR);
	unlink(path);
}
END_TEST

/* ------------------------------------------------------------ running store */

START_TEST(test_lock_refuses_second_open)
{
	struct tstore t;
	struct store *s2 = NULL;
	char err[256] = "";

	ts_init(&t, 0);
	ts_open(&t);
	ck_assert_int_eq(store_open(&s2, &t.cfg, t.loop, ts_durable_cb, &t, err, sizeof(err)), -1);
	ck_assert_ptr_null(s2);
	ck_assert_msg(strstr(err, t.dir) && strstr(err, "/lock") && strstr(err, "in use"),
	              "err: %s", err);
	ck_assert_ptr_null(strchr(err, '\n'));
	/* fsck refuses too while the store is open. */
	FILE *out = tmpfile();
	ck_assert_int_eq(store_fsck(t.dir, false, out), -1);
	fclose(out);
	ts_close(&t);
	ck_assert_int_eq(store_open(&s2, &t.cfg, t.loop, ts_durable_cb, &t, err, sizeof(err)), 0);
	store_close(s2);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_open_error_names_path)
{
	struct tstore t;
	struct store *s = NULL;
	char err[256] = "";

	ts_init(&t, 0);
	/* A file where the data directory should be. */
	char *file = ts_path(t.dir, "plain");
	close(open(file, O_WRONLY | O_CREAT, 0600));
	struct store_config cfg = { .dir = file };
	ck_assert_int_eq(store_open(&s, &cfg, t.loop, ts_durable_cb, &t, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, file) != NULL, "err: %s", err);
	free(file);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_durable_order)
{
	struct tstore t;
	uint64_t last = 0;

	ts_init(&t, 64 << 10);
	ts_open(&t);
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 20; i++) {
			uint64_t id = (uint64_t)round * 100 + (uint64_t)i + 1;
			uint64_t a = store_msg_write(t.s, id, bytes_of(""), bytes_of("k"),
			                             bytes_of(""), (const uint8_t *)"xyzxyzxyz", 9);
			uint64_t b = store_enqueue(t.s, 1, id);
			ck_assert_uint_gt(a, last);
			ck_assert_uint_gt(b, a);
			last = b;
		}
		store_kick(t.s);
		ev_run(t.loop, EVRUN_NOWAIT);
	}
	ck_assert_uint_eq(store_last_ticket(t.s), last);
	ts_wait(&t, last);
	ck_assert(t.order_ok);
	ck_assert_uint_eq(t.upto, last);
	ck_assert_int_eq(t.first_error, 0);
	ck_assert_uint_ge(t.calls, 1);
	ck_assert_uint_le(t.calls, 50);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_group_commit)
{
	struct tstore t;
	struct store_counters c0, c1;
	uint64_t tk = 0;
	char body[1024];

	memset(body, 'b', sizeof(body));
	ts_init(&t, 0);
	ts_open(&t);
	/* 1000 writes in one batch: one fdatasync. */
	store_counters_get(t.s, &c0);
	for (uint64_t i = 1; i <= 1000; i++) {
		store_msg_write(t.s, i, bytes_of("x"), bytes_of("k"), bytes_of(""),
		                (uint8_t *)body, sizeof(body));
		tk = store_enqueue(t.s, 1, i);
	}
	ts_wait(&t, tk);
	store_counters_get(t.s, &c1);
	ck_assert_uint_eq(c1.batches - c0.batches, 1);
	ck_assert_uint_eq(c1.syncs - c0.syncs, 1);
	ck_assert_uint_eq(c1.dir_syncs - c0.dir_syncs, 1); /* the new segment's entry */
	ck_assert_uint_eq(t.calls, 1);

	/* 200 batches queued while the thread is busy: one round, one sync. */
	store_debug_hold(t.s, true);
	c0 = c1;
	uint64_t calls0 = t.calls;
	for (uint64_t i = 1001; i <= 1200; i++) {
		store_msg_write(t.s, i, bytes_of("x"), bytes_of("k"), bytes_of(""),
		                (uint8_t *)body, sizeof(body));
		tk = store_enqueue(t.s, 1, i);
		store_kick(t.s);
	}
	store_debug_hold(t.s, false);
	ts_wait(&t, tk);
	store_counters_get(t.s, &c1);
	ck_assert_uint_eq(c1.batches - c0.batches, 200);
	ck_assert_uint_eq(c1.groups - c0.groups, 1);
	ck_assert_uint_eq(c1.syncs - c0.syncs, 1);
	/* One callback for the whole group. */
	ck_assert_uint_eq(t.calls - calls0, 1);
	ck_assert_uint_eq(t.upto, tk);
	ck_assert_uint_ge(c1.bytes_written - c0.bytes_written, 200 * sizeof(body));
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_sync_modes)
{
	struct tstore t;
	struct store_counters c;
	uint64_t tk = 0;

	/* NEVER: reported without any fdatasync. */
	ts_init(&t, 0);
	t.cfg.sync = STORE_SYNC_NEVER;
	ts_open(&t);
	for (uint64_t i = 1; i <= 20; i++) {
		tk = ts_pub(&t, i, 1, "never");
		ts_wait(&t, tk);
	}
	store_counters_get(t.s, &c);
	ck_assert_uint_eq(c.syncs, 0);
	ck_assert_uint_eq(t.upto, tk);
	ts_reopen(&t);
	ck_assert_uint_eq(t.ngot, 20);
	ts_cleanup(&t);

	/* BATCH_MS: many quick batches, few syncs, all reported. */
	ts_init(&t, 0);
	t.cfg.sync = STORE_SYNC_BATCH_MS;
	t.cfg.batch_ms = 50;
	ts_open(&t);
	for (uint64_t i = 1; i <= 20; i++) {
		tk = ts_pub(&t, i, 1, "batch");
		store_kick(t.s);
		ev_run(t.loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	ts_wait(&t, tk);
	store_counters_get(t.s, &c);
	ck_assert_uint_le(c.syncs, 5);
	ck_assert_uint_ge(c.syncs, 1);
	ck_assert_uint_eq(t.upto, tk);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_write_error_reported)
{
	struct tstore t;
	struct rlimit rl;
	char body[4096];
	uint64_t tk = 0, good;

	memset(body, 'e', sizeof(body));
	signal(SIGXFSZ, SIG_IGN);
	ts_init(&t, 64 << 10);
	ts_open(&t);
	/* A first segment whose messages are all acked: deletable. */
	for (uint64_t i = 1000; i < 1020; i++) {
		store_msg_write(t.s, i, bytes_of(""), bytes_of("k"), bytes_of(""),
		                (uint8_t *)body, sizeof(body));
		store_enqueue(t.s, 3, i);
	}
	for (uint64_t i = 1000; i < 1020; i++)
		tk = store_ack(t.s, 3, i);
	good = ts_pub(&t, 1, 1, "survivor");
	ts_wait(&t, good);
	ck_assert_int_eq(t.last_error, 0);
	int nseg = ts_count_segments(t.dir);
	ck_assert_int_ge(nseg, 2);
	/* Files may not grow much from now on: writes fail with EFBIG. */
	char *head = ts_last_segment(t.dir);
	getrlimit(RLIMIT_FSIZE, &rl);
	rl.rlim_cur = ts_file_size(head) + 6000;
	free(head);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	for (uint64_t i = 2; i < 12; i++) {
		store_msg_write(t.s, i, bytes_of(""), bytes_of("k"), bytes_of(""),
		                (uint8_t *)body, sizeof(body));
		tk = store_enqueue(t.s, 1, i);
	}
	ts_wait(&t, tk);
	ck_assert_int_eq(t.first_error, EFBIG);
	ck_assert_uint_eq(t.upto, tk);
	struct store_counters c;
	store_counters_get(t.s, &c);
	ck_assert_uint_ge(c.errors, 1);
	ck_assert(t.s->failed);
	rl.rlim_cur = rl.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	/* Later batches work again and are durable. */
	tk = ts_pub(&t, 100, 2, "after");
	ts_wait(&t, tk);
	ck_assert_int_eq(t.last_error, 0);
	/* After a failure nothing is deleted, not even the fully acked segment. */
	ts_compact(&t);
	ck_assert_int_eq(ts_count_segments(t.dir), nseg);
	ts_reopen(&t);
	/*
	 * What was durable before the failure and after it is intact.  Of the
	 * failed batch, records that made it to disk whole may come back (a
	 * failure means "may be lost", as with a nack); the cut one is a
	 * damaged region.
	 */
	char buf[256];
	ck_assert_uint_ge(t.ngot, 2);
	ck_assert_uint_eq(t.got[0].msg_id, 1);
	ck_assert_str_eq((char *)t.got[0].body, "survivor");
	for (size_t i = 1; i + 1 < t.ngot; i++)
		ck_assert_uint_eq(t.got[i].msg_id, i + 1);
	ck_assert_str_eq(ts_queue_str(&t, 2, buf, sizeof(buf)), "100");
	ck_assert_str_eq(ts_queue_str(&t, 3, buf, sizeof(buf)), "");
	ck_assert_uint_le(t.st.damaged_records, 1);
	/* Reopened, the store deletes again. */
	ts_compact(&t);
	ck_assert_int_lt(ts_count_segments(t.dir), nseg);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_refused_record)
{
	struct tstore t;
	char longkey[300];

	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = 0;
	ts_init(&t, 0);
	ts_open(&t);
	uint64_t a = store_msg_write(t.s, 5, bytes_of(""), bytes_of(longkey), bytes_of(""),
	                             (const uint8_t *)"x", 1);
	uint64_t b = store_enqueue(t.s, 1, 5); /* unknown message: nothing to do */
	ck_assert_uint_eq(a, b);
	ts_wait(&t, a);
	ck_assert_int_eq(t.first_error, EMSGSIZE);
	/* Not an I/O failure: the store keeps deleting. */
	ck_assert(!t.s->failed);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_msg_read)
{
	struct tstore t;
	uint8_t buf[5000], big[5000];
	uint64_t tk;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	ts_init(&t, 0);
	ts_open(&t);
	store_msg_write(t.s, 9, bytes_of("ex"), bytes_of("rk"), bytes_of("props"), big,
	                sizeof(big));
	tk = store_enqueue(t.s, 1, 9);
	errno = 0;
	ck_assert_int_eq(store_msg_read(t.s, 9, buf, sizeof(big)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ts_wait(&t, tk);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(store_msg_read(t.s, 9, buf, sizeof(big)), 0);
	ck_assert_mem_eq(buf, big, sizeof(big));
	ck_assert_int_eq(store_msg_read(t.s, 9, buf, 10), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(store_msg_read(t.s, 10, buf, 10), -1);
	ck_assert_int_eq(errno, ENOENT);
	/* Rot on disk is detected, not returned. */
	char *seg = ts_last_segment(t.dir);
	ts_flip_byte(seg, ts_file_size(seg) - STORE_ENQ_SIZE - 100);
	ck_assert_int_eq(store_msg_read(t.s, 9, buf, sizeof(big)), -1);
	ck_assert_int_eq(errno, EBADMSG);
	free(seg);
	/* Acked everywhere: gone. */
	tk = store_ack(t.s, 1, 9);
	ts_wait(&t, tk);
	ck_assert_int_eq(store_msg_read(t.s, 9, buf, sizeof(big)), -1);
	ck_assert_int_eq(errno, ENOENT);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_big_message)
{
	struct tstore t;
	size_t n = 300 << 10;
	uint8_t *big = malloc(n), *back = malloc(n);

	for (size_t i = 0; i < n; i++)
		big[i] = (uint8_t)(i ^ (i >> 9));
	/* Bigger than a segment: it gets a segment of its own. */
	ts_init(&t, 64 << 10);
	ts_open(&t);
	ts_pub(&t, 1, 1, "small");
	store_msg_write(t.s, 2, bytes_of(""), bytes_of("k"), bytes_of(""), big, n);
	store_enqueue(t.s, 1, 2);
	ts_wait(&t, ts_pub(&t, 3, 1, "after"));
	ck_assert_int_eq(ts_count_segments(t.dir), 3);
	ck_assert_int_eq(store_msg_read(t.s, 2, back, n), 0);
	ck_assert_mem_eq(back, big, n);
	ts_reopen(&t);
	ck_assert_uint_eq(t.ngot, 3);
	ck_assert_uint_eq(t.got[1].body_len, n);
	ck_assert_mem_eq(t.got[1].body, big, n);
	ck_assert_int_eq(store_msg_read(t.s, 2, back, n), 0);
	free(big);
	free(back);
	ts_cleanup(&t);
}
END_TEST

START_TEST(test_defs)
{
	struct tstore t;
	uint8_t *data;
	size_t len;
	char err[256];
	const char *a = "{\"vhosts\":[\"/\"],\"queues\":[1,2,3]}";

	ts_init(&t, 0);
	ts_open(&t);
	ck_assert_int_eq(store_defs_read(t.s, &data, &len), 1);
	ck_assert_int_eq(store_defs_write(t.s, (const uint8_t *)a, strlen(a), err, sizeof(err)), 0);
	ck_assert_int_eq(store_defs_read(t.s, &data, &len), 0);
	ck_assert_uint_eq(len, strlen(a));
	ck_assert_mem_eq(data, a, len);
	free(data);
	/* Replaced whole by a shorter one; no temp file left behind. */
	ck_assert_int_eq(store_defs_write(t.s, (const uint8_t *)"{}", 2, err, sizeof(err)), 0);
	ts_reopen(&t);
	ck_assert_int_eq(store_defs_read(t.s, &data, &len), 0);
	ck_assert_uint_eq(len, 2);
	ck_assert_mem_eq(data, "{}", 2);
	free(data);
	char *tmp = ts_path(t.dir, "defs.json.tmp");
	ck_assert_int_eq(access(tmp, F_OK), -1);
	/* A failure keeps the old file and names the path. */
	char *path = ts_path(t.dir, "defs.json");
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(store_defs_write(t.s, (const uint8_t *)a, strlen(a), err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "defs.json") != NULL, "err: %s", err);
	ck_assert_int_eq(access(tmp, F_OK), -1);
	ck_assert_int_eq(store_defs_read(t.s, &data, &len), -1);
	free(tmp);
	free(path);
	ts_cleanup(&t);
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("format");
	tcase_add_test(tc, test_crc_vectors);
	tcase_add_test(tc, test_crc_paths_agree);
	tcase_add_test(tc, test_record_roundtrip);
	tcase_add_test(tc, test_segment_header);
	tcase_add_test(tc, test_idx_random);
	tcase_add_test(tc, test_reader_damage);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("running");
	tcase_add_test(tc, test_lock_refuses_second_open);
	tcase_add_test(tc, test_open_error_names_path);
	tcase_add_test(tc, test_durable_order);
	tcase_add_test(tc, test_group_commit);
	tcase_add_test(tc, test_sync_modes);
	tcase_add_test(tc, test_write_error_reported);
	tcase_add_test(tc, test_refused_record);
	tcase_add_test(tc, test_msg_read);
	tcase_add_test(tc, test_big_message);
	tcase_add_test(tc, test_defs);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	suite_add_tcase(s, store_recover_tcase());
	suite_add_tcase(s, store_space_tcase());
	suite_add_tcase(s, store_fsck_tcase());
	return s;
}
