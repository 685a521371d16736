/*
 * Store test helpers (see store_test_util.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_test_util.h"

void ts_durable_cb(void *ctx, uint64_t upto, int error)
{
	struct tstore *t = ctx;

	if (upto <= t->upto && t->calls)
		t->order_ok = false;
	t->upto = upto;
	t->calls++;
	t->last_error = error;
	if (error && !t->first_error)
		t->first_error = error;
}

static char *dup_bytes(struct bytes b)
{
	char *p = malloc(b.len + 1);
	if (b.len)
		memcpy(p, b.ptr, b.len);
	p[b.len] = '\0';
	return p;
}

void ts_recovered_cb(void *ctx, const struct store_recovered *m)
{
	struct tstore *t = ctx;
	struct rmsg *r;

	if (t->ngot == t->gotcap) {
		t->gotcap = t->gotcap ? t->gotcap * 2 : 64;
		t->got = realloc(t->got, t->gotcap * sizeof(*t->got));
	}
	r = &t->got[t->ngot++];
	r->queue_id = m->queue_id;
	r->msg_id = m->msg_id;
	r->seq = m->seq;
	r->delivered = m->delivered;
	r->exchange = dup_bytes(m->exchange);
	r->routing_key = dup_bytes(m->routing_key);
	r->props = dup_bytes(m->props);
	r->props_len = m->props.len;
	r->body = malloc(m->body_len + 1);
	memcpy(r->body, m->body, m->body_len);
	r->body[m->body_len] = 0;
	r->body_len = m->body_len;
}

void ts_free_got(struct tstore *t)
{
	for (size_t i = 0; i < t->ngot; i++) {
		free(t->got[i].exchange);
		free(t->got[i].routing_key);
		free(t->got[i].props);
		free(t->got[i].body);
	}
	free(t->got);
	t->got = NULL;
	t->ngot = t->gotcap = 0;
}

void ts_init(struct tstore *t, uint64_t segment_size)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/store_test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	t->loop = ev_loop_new(EVFLAG_AUTO);
	ck_assert_ptr_nonnull(t->loop);
	t->cfg.dir = t->dir;
	t->cfg.sync = STORE_SYNC_ALWAYS;
	t->cfg.segment_size = segment_size;
	t->order_ok = true;
}

void ts_open(struct tstore *t)
{
	char err[256] = "";

	ts_free_got(t);
	int rc = store_open(&t->s, &t->cfg, t->loop, ts_durable_cb, t, err, sizeof(err));
	ck_assert_msg(rc == 0, "store_open: %s", err);
	ck_assert_int_eq(store_recover(t->s, ts_recovered_cb, t, &t->st), 0);
	t->upto = store_last_ticket(t->s);
}

void ts_close(struct tstore *t)
{
	store_close(t->s);
	t->s = NULL;
}

void ts_close_dirty(struct tstore *t)
{
	ts_close(t);
	char *cp = ts_path(t->dir, "msgs/checkpoint");
	unlink(cp);
	free(cp);
}

void ts_reopen(struct tstore *t)
{
	ts_close(t);
	ts_open(t);
}

void ts_cleanup(struct tstore *t)
{
	if (t->s)
		ts_close(t);
	ts_free_got(t);
	ev_loop_destroy(t->loop);
	ts_rm_rf(t->dir);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	*(bool *)w->data = true;
}

void ts_wait(struct tstore *t, uint64_t ticket)
{
	ev_timer tm;
	bool expired = false;

	store_kick(t->s);
	ev_timer_init(&tm, timeout_cb, 10.0, 0.0);
	tm.data = &expired;
	ev_timer_start(t->loop, &tm);
	while (store_durable_ticket(t->s) < ticket && !expired)
		ev_run(t->loop, EVRUN_ONCE);
	ev_timer_stop(t->loop, &tm);
	ck_assert_msg(!expired, "ticket %llu not durable in 10 s (at %llu)",
	              (unsigned long long)ticket,
	              (unsigned long long)store_durable_ticket(t->s));
}

void ts_compact(struct tstore *t)
{
	ev_timer tm;
	bool expired = false;

	ev_timer_init(&tm, timeout_cb, 10.0, 0.0);
	tm.data = &expired;
	ev_timer_start(t->loop, &tm);
	/* Deletions and one compaction per round, until a round does nothing. */
	for (int round = 0; round < 64 && !expired; round++) {
		uint64_t before = t->s->next_batch_id;
		store_compact_maybe(t->s);
		while (t->s->compacting && !expired) {
			store_kick(t->s);
			ev_run(t->loop, EVRUN_ONCE);
		}
		store_kick(t->s);
		while (t->s->done_batch_id + 1 < t->s->next_batch_id && !expired)
			ev_run(t->loop, EVRUN_ONCE);
		if (t->s->next_batch_id == before)
			break;
	}
	ev_timer_stop(t->loop, &tm);
	ck_assert_msg(!expired, "compaction did not settle in 10 s");
}

uint64_t ts_pub(struct tstore *t, uint64_t msg_id, uint32_t queue_id, const char *body)
{
	store_msg_write(t->s, msg_id, bytes_of("ex"), bytes_of("rk"), bytes_of("P"),
	                (const uint8_t *)body, strlen(body));
	return store_enqueue(t->s, queue_id, msg_id);
}

const char *ts_queue_str(struct tstore *t, uint32_t queue_id, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < t->ngot; i++) {
		if (t->got[i].queue_id != queue_id)
			continue;
		n += (size_t)snprintf(buf + n, cap - n, "%s%llu%s", n ? " " : "",
		                      (unsigned long long)t->got[i].msg_id,
		                      t->got[i].delivered ? "*" : "");
		ck_assert_uint_lt(n, cap);
	}
	return buf;
}

char *ts_path(const char *dir, const char *rel)
{
	size_t n = strlen(dir) + strlen(rel) + 2;
	char *p = malloc(n);
	snprintf(p, n, "%s/%s", dir, rel);
	return p;
}

int ts_count_segments(const char *dir)
{
	char *m = ts_path(dir, "msgs");
	DIR *d = opendir(m);
	struct dirent *de;
	int n = 0;

	free(m);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l == 12 && strcmp(de->d_name + 8, ".seg") == 0)
			n++;
	}
	closedir(d);
	return n;
}

char *ts_last_segment(const char *dir)
{
	char *m = ts_path(dir, "msgs");
	DIR *d = opendir(m);
	struct dirent *de;
	char best[32] = "";

	if (!d) {
		free(m);
		return NULL;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l == 12 && strcmp(de->d_name + 8, ".seg") == 0 && strcmp(de->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	}
	closedir(d);
	char *p = best[0] ? ts_path(m, best) : NULL;
	free(m);
	return p;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

void ts_rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY), out;
	char buf[65536];
	ssize_t n;

	ck_assert_int_ge(in, 0);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	ck_assert_int_ge(out, 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

/* Copy a data directory (one level of subdirectories is enough here). */
void ts_copy_tree(const char *src, const char *dst)
{
	DIR *d = opendir(src);
	struct dirent *de;

	ck_assert_ptr_nonnull(d);
	mkdir(dst, 0750);
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *s = ts_path(src, de->d_name), *t = ts_path(dst, de->d_name);
		struct stat st;
		ck_assert_int_eq(stat(s, &st), 0);
		if (S_ISDIR(st.st_mode))
			ts_copy_tree(s, t);
		else
			copy_file(s, t);
		free(s);
		free(t);
	}
	closedir(d);
}

uint64_t ts_file_size(const char *path)
{
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

void ts_flip_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, (off_t)off), 1);
	c ^= 0x5a;
	ck_assert_int_eq(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}
