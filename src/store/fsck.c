/*
 * Offline checking (broker stopped; both take the data directory's lock):
 * store_fsck verifies every segment record by record, the checkpoint, and
 * the state recovery would rebuild, and prints a summary; with repair it
 * rewrites damaged segments keeping every intact record (in order,
 * re-sealed for their new offsets), truncates torn tails, sets aside
 * segments whose header is unreadable and removes a stale checkpoint.
 * store_dump prints one queue's live messages.
 *
 * store_fsck returns 0 when everything is intact, 1 when problems were
 * found and repaired, 2 when problems were found and left alone, and -1
 * when the directory could not be checked at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"
#include "util/xalloc.h"

struct seg_report {
	uint64_t records, by_type[STORE_REC_PAD + 1];
	uint64_t damaged, damaged_bytes, tail_bytes, undecodable;
	bool bad_header, read_error;
};

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Rewrite a segment with only its intact records; 0 or -1. */
static int salvage(struct store *s, uint32_t id, uint32_t salt, int src, uint64_t size)
{
	char *path = store_seg_path(s, id);
	size_t n = strlen(path) + 5;
	char *tmp = xmalloc(n);
	struct store_reader rd;
	const uint8_t *rec;
	uint8_t hdr[STORE_SEG_HDR], *copy = NULL;
	size_t copycap = 0;
	uint64_t off, out = STORE_SEG_HDR;
	uint32_t len;
	int fd, r, rc = -1;

	snprintf(tmp, n, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		goto done;
	store_seg_hdr_encode(hdr, id, salt);
	if (write_all(fd, hdr, sizeof(hdr)) < 0)
		goto done;
	store_reader_init(&rd, src, salt, size, STORE_SEG_HDR);
	while ((r = store_reader_next(&rd, &rec, &off, &len)) > 0) {
		if (copycap < len) {
			copy = xrealloc(copy, len);
			copycap = len;
		}
		memcpy(copy, rec, len);
		store_rec_seal(copy, salt, out);
		if (write_all(fd, copy, len) < 0)
			break;
		out += len;
	}
	store_reader_free(&rd);
	if (r != 0 || fsync(fd) < 0 || rename(tmp, path) < 0 || fsync(s->msgs_fd) < 0)
		goto done;
	rc = 0;
done:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	free(copy);
	free(tmp);
	free(path);
	return rc;
}

static void check_segment(struct store *s, uint32_t id, bool repair, FILE *out,
                          struct seg_report *rep, bool *changed)
{
	char *path = store_seg_path(s, id);
	uint8_t hdr[STORE_SEG_HDR];
	struct store_reader rd;
	struct store_rec rec;
	const uint8_t *p;
	uint32_t hid, salt, len;
	uint64_t off;
	struct stat st;
	int fd, r;

	memset(rep, 0, sizeof(*rep));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(out, "%08" PRIx32 ".seg: cannot read: %s\n", id, strerror(errno));
		rep->read_error = true;
		goto out;
	}
	if (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    store_seg_hdr_check(hdr, sizeof(hdr), &hid, &salt) < 0 || hid != id) {
		rep->bad_header = true;
		fprintf(out, "%08" PRIx32 ".seg: bad or foreign header (%" PRIu64 " bytes)%s\n", id,
		        (uint64_t)st.st_size, repair ? ", set aside as .damaged" : "");
		if (repair) {
			size_t n = strlen(path) + 9;
			char *aside = xmalloc(n);
			snprintf(aside, n, "%s.damaged", path);
			if (rename(path, aside) == 0)
				*changed = true;
			free(aside);
		}
		goto out;
	}
	uint64_t size = (uint64_t)st.st_size;
	store_reader_init(&rd, fd, salt, size, STORE_SEG_HDR);
	while ((r = store_reader_next(&rd, &p, &off, &len)) > 0) {
		rep->records++;
		if (store_rec_decode(p, len, &rec) < 0)
			rep->undecodable++;
		else
			rep->by_type[rec.type]++;
	}
	rep->damaged = rd.damaged;
	rep->damaged_bytes = rd.damaged_bytes;
	rep->read_error = r < 0;
	if (r == 0 && rd.tail < size)
		rep->tail_bytes = size - rd.tail;
	uint64_t tail = rd.tail;
	store_reader_free(&rd);

	fprintf(out,
	        "%08" PRIx32 ".seg: %" PRIu64 " records (msg %" PRIu64 ", enq %" PRIu64
	        ", dlv %" PRIu64 ", ack %" PRIu64 ", qdrop %" PRIu64 ")",
	        id, rep->records, rep->by_type[STORE_REC_MSG], rep->by_type[STORE_REC_ENQ],
	        rep->by_type[STORE_REC_DLV], rep->by_type[STORE_REC_ACK],
	        rep->by_type[STORE_REC_QDROP]);
	if (rep->damaged)
		fprintf(out, ", %" PRIu64 " damaged region(s) (%" PRIu64 " bytes)", rep->damaged,
		        rep->damaged_bytes);
	if (rep->tail_bytes)
		fprintf(out, ", %" PRIu64 " bytes of torn tail", rep->tail_bytes);
	if (rep->undecodable)
		fprintf(out, ", %" PRIu64 " malformed record(s)", rep->undecodable);
	if (rep->read_error)
		fprintf(out, ", read error: %s", strerror(rd.error));
	fputc('\n', out);

	if (!repair || rep->read_error)
		goto out;
	if (rep->damaged || rep->undecodable) {
		if (salvage(s, id, salt, fd, size) == 0) {
			fprintf(out, "%08" PRIx32 ".seg: rewritten with its intact records\n", id);
			*changed = true;
		} else {
			fprintf(out, "%08" PRIx32 ".seg: rewrite failed: %s\n", id, strerror(errno));
		}
	} else if (rep->tail_bytes) {
		int wfd = open(path, O_WRONLY | O_CLOEXEC);
		if (wfd >= 0 && ftruncate(wfd, (off_t)tail) == 0 && fsync(wfd) == 0) {
			fprintf(out, "%08" PRIx32 ".seg: truncated to %" PRIu64 " bytes\n", id, tail);
			*changed = true;
		} else {
			fprintf(out, "%08" PRIx32 ".seg: truncate failed: %s\n", id, strerror(errno));
		}
		if (wfd >= 0)
			close(wfd);
	}
out:
	if (fd >= 0)
		close(fd);
	free(path);
}

static void count_only(void *ctx, const struct store_recovered *m)
{
}

int store_fsck(const char *dir, bool repair, FILE *out)
{
	struct store *s;
	char err[512];
	uint32_t *ids;
	size_t n;
	uint64_t records = 0, damaged = 0, damaged_bytes = 0, tail = 0, bad = 0;
	bool problems = false, changed = false;

	if (store_open_dir(&s, dir, false, LOCK_EX, err, sizeof(err)) < 0) {
		fprintf(out, "store check: %s\n", err);
		return -1;
	}
	if (store_list_segments(s->msgs_dir, &ids, &n) < 0) {
		fprintf(out, "store check: cannot list %s: %s\n", s->msgs_dir, strerror(errno));
		store_free(s);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct seg_report rep;
		check_segment(s, ids[i], repair, out, &rep, &changed);
		records += rep.records;
		damaged += rep.damaged + rep.undecodable;
		damaged_bytes += rep.damaged_bytes;
		tail += rep.tail_bytes;
		if (rep.bad_header || rep.read_error)
			bad++;
		if (rep.damaged || rep.undecodable || rep.tail_bytes || rep.bad_header ||
		    rep.read_error)
			problems = true;
	}
	free(ids);

	/* The checkpoint, if any, must describe the files exactly. */
	char *cp = store_checkpoint_path(s);
	if (access(cp, F_OK) == 0) {
		struct store *t;
		if (store_open_dir(&t, dir, false, 0, err, sizeof(err)) == 0) {
			uint32_t *tids;
			size_t tn;
			int rc = store_list_segments(t->msgs_dir, &tids, &tn) < 0
			                 ? 1
			                 : store_checkpoint_load(t, tids, tn);
			if (rc != 0 && !changed) {
				fprintf(out, "checkpoint: stale or damaged%s\n",
				        repair ? ", removed" : "");
				problems = true;
			} else if (rc != 0 || changed) {
				fprintf(out, "checkpoint: no longer matches the repaired files, removed\n");
			} else {
				fprintf(out, "checkpoint: valid\n");
			}
			if ((rc != 0 && repair) || changed) {
				unlink(cp);
				fsync(s->msgs_fd);
			}
			free(tids);
			store_free(t);
		}
	}
	free(cp);

	/* What recovery would hand the broker now. */
	struct store_stats st;
	memset(&st, 0, sizeof(st));
	if (store_load(s, true, &st) == 0)
		store_deliver_all(s, true, 0, count_only, NULL, &st);
	fprintf(out,
	        "segments: %zu, records: %" PRIu64 ", damaged: %" PRIu64 " (%" PRIu64
	        " bytes), torn tail: %" PRIu64 " bytes, unreadable segments: %" PRIu64 "\n",
	        n, records, damaged, damaged_bytes, tail, bad);
	fprintf(out,
	        "live: %" PRIu64 " queues, %" PRIu64 " messages, %" PRIu64
	        " body bytes, %" PRIu64 " entries without a message (dropped by recovery)\n",
	        st.queues, st.messages, st.bytes, st.lost_entries);
	fprintf(out, "status: %s\n",
	        !problems ? "clean" : repair ? "repaired" : "damaged (repair would fix what it can)");
	store_free(s);
	return !problems ? 0 : repair ? 1 : 2;
}

/* --- dump --- */

struct dump_ctx {
	FILE *out;
	uint64_t n;
};

static void put_escaped(FILE *out, const uint8_t *p, size_t len, size_t max)
{
	for (size_t i = 0; i < len && i < max; i++) {
		uint8_t c = p[i];
		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
			fputc(c, out);
		else
			fprintf(out, "\\x%02x", c);
	}
	if (len > max)
		fputs("...", out);
}

static void dump_one(void *arg, const struct store_recovered *m)
{
	struct dump_ctx *d = arg;

	fprintf(d->out, "seq=%" PRIu64 " msg=%" PRIu64 " redelivered=%s exchange='", m->seq,
	        m->msg_id, m->delivered ? "yes" : "no");
	put_escaped(d->out, m->exchange.ptr, m->exchange.len, 255);
	fputs("' routing_key='", d->out);
	put_escaped(d->out, m->routing_key.ptr, m->routing_key.len, 255);
	fprintf(d->out, "' props=%zu body=%" PRIu64 " '", m->props.len, m->body_len);
	put_escaped(d->out, m->body, (size_t)m->body_len, 64);
	fputs("'\n", d->out);
	d->n++;
}

int store_dump(const char *dir, uint32_t queue_id, FILE *out)
{
	struct store *s;
	struct store_stats st;
	struct dump_ctx d = { out, 0 };
	char err[512];

	if (store_open_dir(&s, dir, false, LOCK_SH, err, sizeof(err)) < 0) {
		fprintf(out, "store dump: %s\n", err);
		return -1;
	}
	memset(&st, 0, sizeof(st));
	if (store_load(s, true, &st) < 0) {
		fprintf(out, "store dump: cannot read %s: %s\n", s->msgs_dir, strerror(errno));
		store_free(s);
		return -1;
	}
	store_deliver_all(s, false, queue_id, dump_one, &d, &st);
	fprintf(out, "queue %" PRIu32 ": %" PRIu64 " messages\n", queue_id, d.n);
	store_free(s);
	return 0;
}
