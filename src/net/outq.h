/*
 * A connection's output: a chain of segments flushed with writev.  Small
 * frames are packed into 16 KiB blocks; large message bodies are referenced
 * (with a message reference) instead of copied, so fanning a message out to
 * many consumers never copies its body.
 *
 * Invariant: bytes == sum of unsent bytes of all segments.
 */
#ifndef WARREN_NET_OUTQ_H
#define WARREN_NET_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct message;
struct transport;

#define OUTQ_BLOCK_SIZE 16384
/* Bodies at least this large are referenced rather than copied. */
#define OUTQ_REF_THRESHOLD 2048

struct outq_seg {
	struct outq_seg *next;
	struct message *msg; /* non-NULL: ptr/len point into msg's body */
	const uint8_t *ptr;
	uint32_t len;        /* bytes in the segment */
	uint32_t off;        /* bytes already written */
	uint32_t cap;        /* for copy blocks: size of buf[] */
	uint8_t buf[];
};

/* Free blocks are recycled through a pool shared by all connections. */
struct outq_pool {
	struct outq_seg *free;
	size_t nfree;
	size_t max_free;
};

struct outq {
	struct outq_seg *head, *tail;
	size_t bytes;
};

void outq_pool_init(struct outq_pool *p, size_t max_free);
void outq_pool_drain(struct outq_pool *p);

/* Copy n bytes to the end of the queue. */
void outq_put(struct outq *q, struct outq_pool *p, const void *data, size_t n);
/* Reserve n (<= OUTQ_BLOCK_SIZE) contiguous bytes at the end; returns where to write. */
uint8_t *outq_reserve(struct outq *q, struct outq_pool *p, size_t n);
/* Reference len bytes at ptr inside m's body (takes a message reference). */
void outq_put_ref(struct outq *q, struct outq_pool *p, struct message *m,
                  const uint8_t *ptr, size_t len);
/*
 * Write as much as the transport takes (writev on TCP).  Returns bytes
 * written, 0 if the socket would block, -1 on an error (errno set).
 */
ssize_t outq_flush(struct outq *q, struct outq_pool *p, struct transport *t);
/* Drop everything (connection gone). */
void outq_clear(struct outq *q, struct outq_pool *p);

#endif
