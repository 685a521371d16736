/*
 * store_bench: the message store alone, driven the way the broker drives
 * it (writes from a libev loop, one store_kick per loop iteration, a
 * bounded number of unconfirmed messages like a publisher with confirms).
 *
 *   publish   N persistent messages of SIZE bytes to one durable queue:
 *             msgs/s, MB/s, fdatasync/s, messages per sync (group commit)
 *   recover   after a clean shutdown (checkpoint) and after a crash
 *             (checkpoint removed: every segment is replayed)
 *   consume   deliver + ack everything, then reclaim the space
 *   --fsync-probe  cost of one fdatasync round over 1, 2, 4, 8 files
 *
 * make bench/store_bench && bench/store_bench [--messages N] [--size B]
 *     [--window W] [--burst K] [--sync always|batch|never] [--dir D]
 */
#include <ev.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_int.h" /* to wait for batches that carry no ticket */

struct bench {
	struct ev_loop *loop;
	struct store *s;
	struct store_config cfg;
	uint64_t durable;
	int error;
	uint64_t recovered, checksum;
};

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void on_durable(void *ctx, uint64_t upto, int error)
{
	struct bench *b = ctx;
	b->durable = upto;
	if (error)
		b->error = error;
}

static void on_recovered(void *ctx, const struct store_recovered *m)
{
	struct bench *b = ctx;
	b->recovered++;
	/* Touch the body as the broker would when copying it. */
	if (m->body_len)
		b->checksum += m->body[0] + m->body[m->body_len - 1];
}

static void open_store(struct bench *b, struct store_stats *st)
{
	char err[512];
	if (store_open(&b->s, &b->cfg, b->loop, on_durable, b, err, sizeof(err)) < 0) {
		fprintf(stderr, "store_bench: %s\n", err);
		exit(1);
	}
	b->recovered = 0;
	if (store_recover(b->s, on_recovered, b, st) < 0) {
		perror("store_bench: recover");
		exit(1);
	}
}

static void wait_for(struct bench *b, uint64_t ticket)
{
	store_kick(b->s);
	while (b->durable < ticket)
		ev_run(b->loop, EVRUN_ONCE);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	return remove(p);
}

static void fsync_probe(const char *dir)
{
	char buf[4096], path[4200];
	int fds[8];

	memset(buf, 'x', sizeof(buf));
	for (int i = 0; i < 8; i++) {
		snprintf(path, sizeof(path), "%s/probe%d", dir, i);
		fds[i] = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	}
	for (int k = 1; k <= 8; k *= 2) {
		const int rounds = 300;
		double t0 = now();
		for (int r = 0; r < rounds; r++) {
			for (int i = 0; i < k; i++)
				if (write(fds[i], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
					perror("write");
			for (int i = 0; i < k; i++)
				fdatasync(fds[i]);
		}
		double d = now() - t0;
		printf("fsync-probe: %d file(s): %.3f ms per round (write 4 KiB + fdatasync each)\n",
		       k, d / rounds * 1e3);
	}
	for (int i = 0; i < 8; i++) {
		close(fds[i]);
		snprintf(path, sizeof(path), "%s/probe%d", dir, i);
		unlink(path);
	}
}

int main(int argc, char **argv)
{
	uint64_t n = 1000000, size = 1024, window = 4000, burst = 64;
	const char *base = NULL;
	bool probe = false;
	struct bench b;
	struct store_stats st;
	struct store_counters c0, c1;
	char dir[4096];

	memset(&b, 0, sizeof(b));
	b.cfg.sync = STORE_SYNC_ALWAYS;
	static const struct option opts[] = {
		{ "messages", required_argument, 0, 'n' }, { "size", required_argument, 0, 's' },
		{ "window", required_argument, 0, 'w' },   { "burst", required_argument, 0, 'b' },
		{ "sync", required_argument, 0, 'y' },     { "dir", required_argument, 0, 'd' },
		{ "fsync-probe", no_argument, 0, 'p' },    { "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int o;
	while ((o = getopt_long(argc, argv, "n:s:w:b:y:d:ph", opts, NULL)) != -1) {
		switch (o) {
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 's': size = strtoull(optarg, NULL, 10); break;
		case 'w': window = strtoull(optarg, NULL, 10); break;
		case 'b': burst = strtoull(optarg, NULL, 10); break;
		case 'd': base = optarg; break;
		case 'p': probe = true; break;
		case 'y':
			b.cfg.sync = strcmp(optarg, "never") == 0   ? STORE_SYNC_NEVER
			             : strcmp(optarg, "batch") == 0 ? STORE_SYNC_BATCH_MS
			                                            : STORE_SYNC_ALWAYS;
			break;
		default:
			fprintf(stderr, "usage: %s [--messages N] [--size BYTES] [--window W] "
			                "[--burst K] [--sync always|batch|never] [--dir D] "
			                "[--fsync-probe]\n", argv[0]);
			return o == 'h' ? 0 : 2;
		}
	}
	if (base)
		snprintf(dir, sizeof(dir), "%s/store_bench.XXXXXX", base);
	else
		snprintf(dir, sizeof(dir), "/tmp/store_bench.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("store_bench: mkdtemp");
		return 1;
	}
	if (probe) {
		fsync_probe(dir);
		rmdir(dir);
		return 0;
	}
	b.cfg.dir = dir;
	b.loop = ev_loop_new(EVFLAG_AUTO);
	uint8_t *body = malloc(size ? size : 1);
	for (uint64_t i = 0; i < size; i++)
		body[i] = (uint8_t)(i * 13);

	/* --- publish --- */
	open_store(&b, &st);
	store_counters_get(b.s, &c0);
	double t0 = now();
	uint64_t last = 0;
	for (uint64_t id = 1; id <= n;) {
		for (uint64_t k = 0; k < burst && id <= n; k++, id++) {
			store_msg_write(b.s, id, (struct bytes){ (const uint8_t *)"bench", 5 },
			                (struct bytes){ (const uint8_t *)"q", 1 },
			                (struct bytes){ (const uint8_t *)"\x10\x00\x02", 3 }, body, size);
			last = store_enqueue(b.s, 1, id);
		}
		/* One loop iteration: hand the batch over, take confirms. */
		store_kick(b.s);
		ev_run(b.loop, EVRUN_NOWAIT);
		while (last - b.durable > window)
			ev_run(b.loop, EVRUN_ONCE);
	}
	wait_for(&b, last);
	double dt = now() - t0;
	store_counters_get(b.s, &c1);
	uint64_t syncs = c1.syncs - c0.syncs;
	printf("publish: %" PRIu64 " x %" PRIu64 " B in %.2f s: %.0f msgs/s, %.1f MB/s, "
	       "%.0f fdatasync/s, %.1f msgs per fdatasync, %" PRIu64 " batches in %" PRIu64
	       " write rounds%s\n",
	       n, size, dt, (double)n / dt, (double)(c1.bytes_written - c0.bytes_written) / dt / 1e6,
	       (double)syncs / dt, syncs ? (double)n / (double)syncs : 0.0,
	       c1.batches - c0.batches, c1.groups - c0.groups, b.error ? " (ERRORS)" : "");

	/* --- recover after a clean shutdown --- */
	store_close(b.s);
	open_store(&b, &st);
	printf("recover (clean, checkpoint=%s): %" PRIu64 " messages, %.1f MB in %.3f s\n",
	       st.from_checkpoint ? "yes" : "no", st.messages, (double)st.bytes / 1e6, st.seconds);

	/* --- recover after a crash: no checkpoint, every record replayed --- */
	store_close(b.s);
	char cp[4200];
	snprintf(cp, sizeof(cp), "%s/msgs/checkpoint", dir);
	unlink(cp);
	open_store(&b, &st);
	printf("recover (crash, scan): %" PRIu64 " messages, %.1f MB, %" PRIu64
	       " segments in %.3f s (damaged %" PRIu64 ")\n",
	       st.messages, (double)st.bytes / 1e6, st.segments, st.seconds, st.damaged_records);

	/* --- consume: deliver + ack all, then reclaim --- */
	store_counters_get(b.s, &c0);
	t0 = now();
	for (uint64_t id = 1; id <= n;) {
		for (uint64_t k = 0; k < burst && id <= n; k++, id++) {
			store_deliver(b.s, 1, id);
			last = store_ack(b.s, 1, id);
		}
		store_kick(b.s);
		ev_run(b.loop, EVRUN_NOWAIT);
	}
	wait_for(&b, last);
	dt = now() - t0;
	double t1 = now();
	/* Rounds of the 1 s tick, run back to back until nothing changes. */
	for (int round = 0; round < 100; round++) {
		uint64_t before = b.s->next_batch_id;
		store_compact_maybe(b.s);
		do {
			store_kick(b.s);
			ev_run(b.loop, EVRUN_ONCE);
		} while (b.s->compacting || b.s->done_batch_id + 1 < b.s->next_batch_id);
		if (b.s->next_batch_id == before)
			break;
	}
	store_counters_get(b.s, &c1);
	printf("consume: %" PRIu64 " deliver+ack in %.2f s: %.0f msgs/s; reclaim: %" PRIu64
	       " segments deleted in %.3f s, %" PRIu64 " left\n",
	       n, dt, (double)n / dt, c1.segments_deleted - c0.segments_deleted, now() - t1,
	       c1.segments);
	store_close(b.s);
	ev_loop_destroy(b.loop);
	free(body);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return b.error ? 1 : 0;
}
