/*
 * Output chain.  Segments are either copy blocks (OUTQ_BLOCK_SIZE bytes of
 * buf[], recycled through the pool) or references into a message body
 * (header-only allocations).  Flushing gathers up to OUTQ_IOV segments per
 * writev call of the connection's transport.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "broker/message.h"
#include "net/outq.h"
#include "net/transport.h"
#include "util/xalloc.h"

#define OUTQ_IOV 64

void outq_pool_init(struct outq_pool *p, size_t max_free)
{
	p->free = NULL;
	p->nfree = 0;
	p->max_free = max_free;
}

void outq_pool_drain(struct outq_pool *p)
{
	while (p->free) {
		struct outq_seg *s = p->free;
		p->free = s->next;
		free(s);
	}
	p->nfree = 0;
}

static struct outq_seg *seg_block(struct outq_pool *p)
{
	struct outq_seg *s = p->free;
	if (s) {
		p->free = s->next;
		p->nfree--;
	} else {
		s = xmalloc(sizeof(*s) + OUTQ_BLOCK_SIZE);
		s->cap = OUTQ_BLOCK_SIZE;
	}
	s->next = NULL;
	s->msg = NULL;
	s->ptr = s->buf;
	s->len = 0;
	s->off = 0;
	return s;
}

static void seg_release(struct outq_pool *p, struct outq_seg *s)
{
	if (s->msg) {
		message_unref(s->msg);
		free(s);
		return;
	}
	if (p->nfree < p->max_free) {
		s->next = p->free;
		p->free = s;
		p->nfree++;
	} else {
		free(s);
	}
}

static void seg_append(struct outq *q, struct outq_seg *s)
{
	if (q->tail)
		q->tail->next = s;
	else
		q->head = s;
	q->tail = s;
}

uint8_t *outq_reserve(struct outq *q, struct outq_pool *p, size_t n)
{
	struct outq_seg *t = q->tail;
	if (!t || t->msg || t->cap - t->len < n) {
		t = seg_block(p);
		seg_append(q, t);
	}
	uint8_t *w = t->buf + t->len;
	t->len += (uint32_t)n;
	q->bytes += n;
	return w;
}

void outq_put(struct outq *q, struct outq_pool *p, const void *data, size_t n)
{
	const uint8_t *src = data;
	while (n > 0) {
		struct outq_seg *t = q->tail;
		if (!t || t->msg || t->len == t->cap) {
			t = seg_block(p);
			seg_append(q, t);
		}
		size_t room = t->cap - t->len;
		size_t k = n < room ? n : room;
		memcpy(t->buf + t->len, src, k);
		t->len += (uint32_t)k;
		q->bytes += k;
		src += k;
		n -= k;
	}
}

void outq_put_ref(struct outq *q, struct outq_pool *p, struct message *m,
                  const uint8_t *ptr, size_t len)
{
	if (len < OUTQ_REF_THRESHOLD) {
		outq_put(q, p, ptr, len);
		return;
	}
	struct outq_seg *s = xmalloc(sizeof(*s));
	s->next = NULL;
	s->msg = message_ref(m);
	s->ptr = ptr;
	s->len = (uint32_t)len;
	s->off = 0;
	s->cap = 0;
	seg_append(q, s);
	q->bytes += len;
}

ssize_t outq_flush(struct outq *q, struct outq_pool *p, struct transport *t)
{
	ssize_t total = 0;
	while (q->head) {
		struct iovec iov[OUTQ_IOV];
		int n = 0;
		size_t want = 0;
		for (struct outq_seg *s = q->head; s && n < OUTQ_IOV; s = s->next) {
			iov[n].iov_base = (void *)(s->ptr + s->off);
			iov[n].iov_len = s->len - s->off;
			want += iov[n].iov_len;
			n++;
		}
		ssize_t w = t->ops->writev(t, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return total;
			return -1;
		}
		total += w;
		q->bytes -= (size_t)w;
		size_t left = (size_t)w;
		while (left > 0 && q->head) {
			struct outq_seg *s = q->head;
			size_t avail = s->len - s->off;
			if (left < avail) {
				s->off += (uint32_t)left;
				left = 0;
				break;
			}
			left -= avail;
			q->head = s->next;
			if (!q->head)
				q->tail = NULL;
			seg_release(p, s);
		}
		if ((size_t)w < want || w == 0)
			return total; /* short write: the socket is full */
	}
	return total;
}

void outq_clear(struct outq *q, struct outq_pool *p)
{
	while (q->head) {
		struct outq_seg *s = q->head;
		q->head = s->next;
		seg_release(p, s);
	}
	q->tail = NULL;
	q->bytes = 0;
}
