/*
 * The clean-shutdown checkpoint (msgs/checkpoint): an image of the
 * in-memory state (segments with their sizes, salts and pins; messages
 * with their record locations; every queue's entries) written by
 * store_close after the last sync, so the next recovery reads only live
 * message records instead of replaying history.
 *
 * It is trusted only if it describes the segment files exactly (same ids,
 * sizes and salts): any write after it, or a torn tail, makes it stale and
 * recovery falls back to scanning.  store_recover deletes it once loaded,
 * so it never outlives the state it describes.  Format (little-endian):
 *
 *   header  "WARRENCP" u32 version u32 header size (32) u64 payload length
 *           u32 CRC32C(payload) u32 CRC32C(header bytes 0..27)
 *   payload u64 last ticket, u64 max msg id, u32 next segment id, u32 n
 *           n x {u32 id, u32 salt, u32 pin_min, u32 flags, u64 size}
 *           u64 n x {u64 msg id, u32 seg, u32 off, u32 record len, u32 body len}
 *           u32 n x {u32 queue id, u32 zero, u64 n x {u64 msg id, u64 seq,
 *                    u32 ENQ segment, u32 delivered mark}}
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/crc32c.h"
#include "store/store_int.h"
#include "util/xalloc.h"

#define CP_MAGIC "WARRENCP"
#define CP_HDR 32u
#define CP_SEG 24u
#define CP_MSG 24u
#define CP_ENT 24u

char *store_checkpoint_path(const struct store *s)
{
	size_t n = strlen(s->msgs_dir) + 12;
	char *p = xmalloc(n);
	snprintf(p, n, "%s/checkpoint", s->msgs_dir);
	return p;
}

struct cpw {
	int fd;
	uint8_t *buf;
	size_t len;
	uint64_t off, total;
	uint32_t crc;
	int err;
};

static void cpw_flush(struct cpw *w)
{
	size_t done = 0;

	w->crc = crc32c_update(w->crc, w->buf, w->len);
	while (done < w->len && !w->err) {
		ssize_t n = pwrite(w->fd, w->buf + done, w->len - done, (off_t)w->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			w->err = n < 0 ? errno : EIO;
			break;
		}
		done += (size_t)n;
		w->off += (uint64_t)n;
	}
	w->total += w->len;
	w->len = 0;
}

static uint8_t *cpw_room(struct cpw *w, size_t n)
{
	if (w->len + n > (1u << 20))
		cpw_flush(w);
	uint8_t *p = w->buf + w->len;
	w->len += n;
	return p;
}

int store_checkpoint_write(struct store *s)
{
	char *path = store_checkpoint_path(s);
	size_t plen = strlen(path) + 5;
	char *tmp = xmalloc(plen);
	struct cpw w;
	uint8_t *p, hdr[CP_HDR];
	size_t it = 0;
	struct store_msg *m;
	struct store_qslot *qs;
	int rc = -1;

	snprintf(tmp, plen, "%s.tmp", path);
	memset(&w, 0, sizeof(w));
	w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w.fd < 0)
		goto out;
	w.buf = xmalloc(1u << 20);
	w.off = CP_HDR;

	p = cpw_room(&w, 24);
	store_put64(p, s->ticket);
	store_put64(p + 8, s->max_msg_id);
	store_put32(p + 16, s->next_seg_id);
	store_put32(p + 20, (uint32_t)s->nsegs);
	for (size_t i = 0; i < s->nsegs; i++) {
		const struct store_seg *g = &s->segs[i];
		p = cpw_room(&w, CP_SEG);
		store_put32(p, g->id);
		store_put32(p + 4, g->salt);
		store_put32(p + 8, g->pin_min);
		store_put32(p + 12, g->flags);
		store_put64(p + 16, g->size);
	}
	store_put64(cpw_room(&w, 8), s->msgs.n);
	while ((m = store_idx_next(&s->msgs, &it))) {
		p = cpw_room(&w, CP_MSG);
		store_put64(p, m->id);
		store_put32(p + 8, m->seg);
		store_put32(p + 12, m->off);
		store_put32(p + 16, m->rec_len);
		store_put32(p + 20, m->body_len);
	}
	store_put32(cpw_room(&w, 4), (uint32_t)s->queues.n);
	it = 0;
	while ((qs = store_idx_next(&s->queues, &it))) {
		const struct store_ent *e;
		size_t jt = 0;
		p = cpw_room(&w, 16);
		store_put32(p, qs->q->id);
		store_put32(p + 4, 0);
		store_put64(p + 8, qs->q->ents.n);
		while ((e = store_idx_next(&qs->q->ents, &jt))) {
			p = cpw_room(&w, CP_ENT);
			store_put64(p, e->msg_id);
			store_put64(p + 8, e->seq);
			store_put32(p + 16, e->enq_seg);
			store_put32(p + 20, e->dlv);
		}
	}
	cpw_flush(&w);
	if (w.err)
		goto out;

	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, CP_MAGIC, 8);
	store_put32(hdr + 8, STORE_FORMAT_VERSION);
	store_put32(hdr + 12, CP_HDR);
	store_put64(hdr + 16, w.total);
	store_put32(hdr + 24, w.crc);
	store_put32(hdr + 28, crc32c(hdr, 28));
	if (pwrite(w.fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || fsync(w.fd) < 0)
		goto out;
	if (rename(tmp, path) < 0 || fsync(s->msgs_fd) < 0)
		goto out;
	rc = 0;
out:
	if (w.fd >= 0)
		close(w.fd);
	if (rc < 0)
		unlink(tmp);
	free(w.buf);
	free(tmp);
	free(path);
	return rc;
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t done = 0;

	*data = NULL;
	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	*len = (size_t)st.st_size;
	*data = xmalloc(*len ? *len : 1);
	while (done < *len) {
		ssize_t n = read(fd, *data + done, *len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	if (done != *len) {
		free(*data);
		*data = NULL;
		return -1;
	}
	return 0;
}

/* Does segment file id have this size and salt? */
static bool seg_matches(struct store *s, uint32_t id, uint32_t salt, uint64_t size)
{
	char *path = store_seg_path(s, id);
	uint8_t hdr[STORE_SEG_HDR];
	uint32_t hid, hsalt;
	struct stat st;
	bool ok = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	free(path);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == size &&
	    pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
	    store_seg_hdr_check(hdr, sizeof(hdr), &hid, &hsalt) == 0 && hid == id && hsalt == salt)
		ok = true;
	close(fd);
	return ok;
}

/*
 * Walk the payload checking every count against the bytes present before
 * anything is applied; returns false if it does not parse or does not
 * match the segment files.
 */
static bool validate(struct store *s, const uint8_t *p, uint64_t len, const uint32_t *ids,
                     size_t n)
{
	uint64_t pos = 24, cnt;

	if (len < 24 || store_get32(p + 20) != n)
		return false;
	if ((len - pos) / CP_SEG < n)
		return false;
	for (size_t i = 0; i < n; i++, pos += CP_SEG) {
		const uint8_t *q = p + pos;
		if (store_get32(q) != ids[i] ||
		    !seg_matches(s, ids[i], store_get32(q + 4), store_get64(q + 16)))
			return false;
	}
	if (len - pos < 8)
		return false;
	cnt = store_get64(p + pos);
	pos += 8;
	if ((len - pos) / CP_MSG < cnt)
		return false;
	pos += cnt * CP_MSG;
	if (len - pos < 4)
		return false;
	cnt = store_get32(p + pos);
	pos += 4;
	for (uint64_t i = 0; i < cnt; i++) {
		if (len - pos < 16)
			return false;
		uint64_t ne = store_get64(p + pos + 8);
		pos += 16;
		if ((len - pos) / CP_ENT < ne)
			return false;
		pos += ne * CP_ENT;
	}
	return pos == len;
}

int store_checkpoint_load(struct store *s, const uint32_t *ids, size_t n)
{
	char *path = store_checkpoint_path(s);
	uint8_t *data;
	size_t len;
	int rc = read_file(path, &data, &len);
	const uint8_t *p;
	uint64_t plen, pos, cnt;

	free(path);
	if (rc != 0)
		return 1; /* absent or unreadable: scan instead */
	rc = 1;
	if (len < CP_HDR || memcmp(data, CP_MAGIC, 8) != 0 ||
	    store_get32(data + 28) != crc32c(data, 28) ||
	    store_get32(data + 8) != STORE_FORMAT_VERSION || store_get32(data + 12) != CP_HDR)
		goto out;
	plen = store_get64(data + 16);
	p = data + CP_HDR;
	if (plen != len - CP_HDR || store_get32(data + 24) != crc32c(p, (size_t)plen) ||
	    !validate(s, p, plen, ids, n))
		goto out;

	s->ticket = store_get64(p);
	s->max_msg_id = store_get64(p + 8);
	s->next_seg_id = store_get32(p + 16);
	pos = 24;
	for (size_t i = 0; i < n; i++, pos += CP_SEG) {
		struct store_seg *g = store_seg_add(s, store_get32(p + pos), store_get32(p + pos + 4),
		                                    store_get64(p + pos + 16));
		g->pin_min = store_get32(p + pos + 8);
		g->flags = (uint8_t)store_get32(p + pos + 12);
		if (g->flags & STORE_SEGF_STALE)
			s->nstale++;
	}
	cnt = store_get64(p + pos);
	pos += 8;
	store_idx_reserve(&s->msgs, (size_t)cnt);
	for (uint64_t i = 0; i < cnt; i++, pos += CP_MSG) {
		struct store_msg *m = store_idx_insert(&s->msgs, store_get64(p + pos), NULL);
		m->seg = store_get32(p + pos + 8);
		m->off = store_get32(p + pos + 12);
		m->rec_len = store_get32(p + pos + 16);
		m->body_len = store_get32(p + pos + 20);
		m->refs = 0;
		m->flags = 0;
	}
	cnt = store_get32(p + pos);
	pos += 4;
	for (uint64_t i = 0; i < cnt; i++) {
		struct store_queue *q = store_queue_get(s, store_get32(p + pos), true);
		uint64_t ne = store_get64(p + pos + 8);
		pos += 16;
		store_idx_reserve(&q->ents, (size_t)ne);
		for (uint64_t j = 0; j < ne; j++, pos += CP_ENT) {
			struct store_ent *e = store_idx_insert(&q->ents, store_get64(p + pos), NULL);
			e->seq = store_get64(p + pos + 8);
			e->enq_seg = store_get32(p + pos + 16);
			e->dlv = store_get32(p + pos + 20);
			struct store_msg *m = store_idx_find(&s->msgs, e->msg_id);
			if (m && m->refs++ == 0)
				store_live_add(s, m->seg, (int64_t)m->rec_len, 1);
			store_live_add(s, e->enq_seg, STORE_ENQ_SIZE, 1);
			if (e->dlv && e->dlv != STORE_DLV_IN_ENQ)
				store_live_add(s, e->dlv, STORE_DLV_SIZE, 1);
		}
	}
	rc = 0;
out:
	free(data);
	return rc;
}
