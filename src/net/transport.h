/*
 * How a connection's bytes move: a small vtable so that conn.c and outq.c
 * never know whether they talk to a plain socket or to OpenSSL (Redis's
 * ConnectionType, nginx's recv/send swap).
 *
 * Contract of every implementation:
 *  - read returns > 0 bytes, 0 when the peer closed the stream, or -1 with
 *    errno set; EAGAIN means "nothing now, wait for the watcher".
 *  - writev returns the bytes taken (possibly fewer than offered: the rest
 *    would block), or -1 with errno set (EAGAIN when nothing could go).
 *    After a short or EAGAIN write the caller must offer the same bytes
 *    again first (more may follow them), possibly from other addresses:
 *    TLS records already cut from them are still in flight.
 *  - pending is true when read would return data without the socket
 *    becoming readable (bytes already decrypted, or the last read stopped
 *    because the caller's buffer was full).  The event loop cannot see
 *    such data, so the connection waits on a list drained before sleeping.
 *  - want reports the watcher events the transport itself needs beyond
 *    what the connection asks for (TLS: a read that must write first, a
 *    write that must read first, a handshake that blocked on writing).
 *  - close sends a polite goodbye if the stream is healthy (TLS
 *    close_notify, never blocking) and frees the transport's state; the
 *    caller closes the descriptor.
 *
 * The TCP transport (transport.c) has no per-connection state and no
 * allocation.
 */
#ifndef WARREN_NET_TRANSPORT_H
#define WARREN_NET_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Extra watcher events a transport needs (want()). */
enum {
	TRANSPORT_WANT_READ = 1,  /* a pending write cannot finish until the socket is readable */
	TRANSPORT_WANT_WRITE = 2, /* a pending read or handshake needs the socket writable */
};

struct transport;

struct transport_ops {
	const char *name; /* "tcp" or "tls", for logs */
	ssize_t (*read)(struct transport *t, void *buf, size_t n);
	ssize_t (*writev)(struct transport *t, const struct iovec *iov, int iovcnt);
	bool (*pending)(const struct transport *t);      /* NULL: never */
	int (*want)(const struct transport *t);          /* NULL: nothing */
	/* Why the last read or write failed, or NULL to use strerror(errno). */
	const char *(*error)(const struct transport *t); /* NULL: always strerror */
	void (*close)(struct transport *t);
};

struct transport {
	const struct transport_ops *ops;
	int fd;
	void *ctx; /* the implementation's per-connection state; NULL for TCP */
};

/* Plain TCP: read(2) and sendmsg(2) with MSG_NOSIGNAL. */
void transport_tcp_init(struct transport *t, int fd);

static inline bool transport_pending(const struct transport *t)
{
	return t->ops->pending && t->ops->pending(t);
}

static inline int transport_want(const struct transport *t)
{
	return t->ops->want ? t->ops->want(t) : 0;
}

#endif
