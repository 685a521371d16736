/*
 * Connection state machine and I/O.
 *
 * Input: when a connection has no partial frame buffered, it reads into the
 * broker's shared scratch buffer and parses frames in place; only the tail
 * of an incomplete frame is copied into the connection's own buffer, which
 * is freed again as soon as it empties.  An idle connection therefore holds
 * no read buffer at all.
 *
 * Output: frames are queued on c->out and written by conn_flush_dirty()
 * from the before-sleep hook, so many deliveries become one writev.
 * EV_WRITE is armed only after a short write.
 *
 * Bytes move through c->tp (net/transport.h): plain TCP or TLS
 * (net/tls.c).  A TLS connection can hold decrypted input the socket no
 * longer shows; such connections wait on b->conns_pending, which the
 * before-sleep hook drains (conn_drain_pending).  The TLS handshake runs
 * inside the first reads, in CONN_ST_HEADER, so the handshake timeout
 * covers it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/channel.h"
#include "broker/message.h"
#include "broker/vhost.h"
#include "codec/frame.h"
#include "codec/gen_methods.h"
#include "codec/table.h"
#include "net/conn.h"
#include "net/conn_int.h"
#include "net/tls.h"
#include "util/xalloc.h"

#define CONN_PRE_TUNE_FRAME_MAX 8192
#define CONN_CLOSE_TIMEOUT 3.0
#define CONN_READ_MAX 65536

static const uint8_t protocol_header[8] = { 'A', 'M', 'Q', 'P', 0, 0, 9, 1 };

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* Why the last read or write failed, for the log. */
static const char *conn_io_error(const struct conn *c)
{
	const char *why = c->tp.ops->error ? c->tp.ops->error(&c->tp) : NULL;
	return why ? why : strerror(errno);
}

/* ---- output ---------------------------------------------------------- */

static void conn_mark_dirty(struct conn *c)
{
	if (c->dirty || c->st == CONN_ST_DEAD)
		return;
	c->dirty = true;
	struct broker *b = c->b;
	c->dirty_next = b->conns_dirty;
	b->conns_dirty = c;
}

void conn_send_method(struct conn *c, uint16_t ch, uint32_t id, const void *args)
{
	if (c->st == CONN_ST_DEAD)
		return;
	size_t n = codec_method_size(id, args);
	size_t total = FRAME_HEADER_SIZE + n + 1;
	uint8_t *p;
	uint8_t *tmp = NULL;
	if (total <= OUTQ_BLOCK_SIZE)
		p = outq_reserve(&c->out, &c->b->outq_pool, total);
	else
		p = tmp = xmalloc(total);
	frame_put_header(p, FRAME_METHOD, ch, (uint32_t)n);
	struct wr w = wr_init(p + FRAME_HEADER_SIZE, n);
	int rc = codec_method_encode(&w, id, args);
	p[FRAME_HEADER_SIZE + n] = FRAME_END_OCTET;
	if (rc != CODEC_OK)
		log_error(&c->b->log, "encode %s failed (%d)", codec_method_name(id), rc);
	if (tmp) {
		outq_put(&c->out, &c->b->outq_pool, tmp, total);
		free(tmp);
	}
	conn_mark_dirty(c);
}

void conn_send_content(struct conn *c, uint16_t ch, uint32_t id, const void *args,
                       const struct message *m)
{
	if (c->st == CONN_ST_DEAD)
		return;
	conn_send_method(c, ch, id, args);
	struct outq_pool *pool = &c->b->outq_pool;
	size_t hsize = 2 + 2 + 8 + m->props.len;
	uint8_t *p = outq_reserve(&c->out, pool, FRAME_HEADER_SIZE + hsize + 1);
	frame_put_header(p, FRAME_HEADER, ch, (uint32_t)hsize);
	struct wr w = wr_init(p + FRAME_HEADER_SIZE, hsize);
	wr_u16(&w, CODEC_CLASS_BASIC);
	wr_u16(&w, 0);
	wr_u64(&w, m->body_len);
	wr_raw(&w, m->props.ptr, m->props.len);
	p[FRAME_HEADER_SIZE + hsize] = FRAME_END_OCTET;
	size_t chunk_max = c->frame_max ? c->frame_max - FRAME_OVERHEAD : (size_t)1 << 20;
	for (uint64_t off = 0; off < m->body_len;) {
		size_t n = m->body_len - off < chunk_max ? (size_t)(m->body_len - off) : chunk_max;
		p = outq_reserve(&c->out, pool, FRAME_HEADER_SIZE);
		frame_put_header(p, FRAME_BODY, ch, (uint32_t)n);
		outq_put_ref(&c->out, pool, (struct message *)m, m->body + off, n);
		p = outq_reserve(&c->out, pool, 1);
		*p = FRAME_END_OCTET;
		off += n;
	}
	conn_mark_dirty(c);
}

void conn_send_raw(struct conn *c, const void *p, size_t n)
{
	outq_put(&c->out, &c->b->outq_pool, p, n);
	conn_mark_dirty(c);
}

/* Write what the socket takes; arm EV_WRITE only when it did not take all. */
static void conn_flush(struct conn *c)
{
	if (c->st == CONN_ST_DEAD)
		return;
	if (c->out.bytes > 0) {
		ssize_t w = outq_flush(&c->out, &c->b->outq_pool, &c->tp);
		if (w < 0) {
			conn_destroy(c, conn_io_error(c));
			return;
		}
		if (w > 0)
			c->last_tx = ev_now(c->b->loop);
	}
	if (c->out.bytes == 0 && c->st == CONN_ST_FLUSHING && !c->await_eof) {
		conn_destroy(c, NULL);
		return;
	}
	conn_update_io(c);
}

void conn_flush_dirty(struct broker *b)
{
	while (b->conns_dirty) {
		struct conn *c = b->conns_dirty;
		b->conns_dirty = c->dirty_next;
		c->dirty = false;
		c->dirty_next = NULL;
		conn_flush(c);
	}
}

/* ---- watchers -------------------------------------------------------- */

bool conn_output_full(const struct conn *c)
{
	return c->out.bytes >= c->b->cfg.conn_output_limit;
}

/* Input the socket will not announce: read it before the loop sleeps. */
static void conn_pending_add(struct conn *c)
{
	if (c->pending)
		return;
	c->pending = true;
	c->pending_next = c->b->conns_pending;
	c->b->conns_pending = c;
}

static void conn_pending_remove(struct conn *c)
{
	if (!c->pending)
		return;
	for (struct conn **pp = &c->b->conns_pending; *pp; pp = &(*pp)->pending_next) {
		if (*pp == c) {
			*pp = c->pending_next;
			break;
		}
	}
	/* not found: it is on the list conn_drain_pending is walking, which
	 * skips dead connections */
	c->pending = false;
	c->pending_next = NULL;
}

void conn_update_io(struct conn *c)
{
	if (c->st == CONN_ST_DEAD)
		return;
	bool blocked = c->blocked_sent && c->st == CONN_ST_OPEN;
	bool want_read = (c->st != CONN_ST_FLUSHING || c->await_eof) && !conn_output_full(c) &&
	                 !blocked && !c->auth_delay;
	bool want_write = c->out.bytes > 0;
	int ev = (want_read ? EV_READ : 0) | (want_write ? EV_WRITE : 0);
	/* What TLS itself waits for: a read that must write first, a write that
	 * must read first.  Only while that read or write is still wanted, or
	 * the crossed event would fire with nothing to do. */
	int tw = transport_want(&c->tp);
	if ((tw & TRANSPORT_WANT_READ) && want_write)
		ev |= EV_READ;
	if ((tw & TRANSPORT_WANT_WRITE) && want_read)
		ev |= EV_WRITE;
	if (want_read && transport_pending(&c->tp))
		conn_pending_add(c);
	bool was_paused = c->read_paused;
	c->read_paused = !want_read;
	if ((c->io.events & (EV_READ | EV_WRITE)) != ev || !ev_is_active(&c->io)) {
		ev_io_stop(c->b->loop, &c->io);
		ev_io_set(&c->io, c->io.fd, ev);
		if (ev)
			ev_io_start(c->b->loop, &c->io);
	}
	/* A delivery refused for a full output queue must be retried once the
	 * queue drains, even if reads never paused (one flush can take the
	 * queue from over the limit to under it before reads are looked at). */
	bool refused = c->deliver_refused && !conn_output_full(c);
	if ((was_paused && want_read) || refused) {
		c->deliver_refused = false;
		/* output drained: consumers of this connection may take more */
		for (uint16_t i = 0; i < c->nchans; i++)
			channel_resume(c->chans[i].ch);
	}
}

/* ---- closing --------------------------------------------------------- */

void conn_close(struct conn *c, uint16_t code, const char *text, uint32_t method_id)
{
	if (c->st == CONN_ST_DEAD || c->st == CONN_ST_CLOSING || c->st == CONN_ST_FLUSHING)
		return;
	log_warning(&c->b->log, "connection %s%s%s: closing: %s", c->peer,
	            c->name ? " " : "", c->name ? c->name : "", text);
	struct codec_connection_close m = {
		.reply_code = code,
		.reply_text = bytes_of(text),
		.class_id = (uint16_t)(method_id >> 16),
		.method_id = (uint16_t)(method_id & 0xffff),
	};
	if (m.reply_text.len > 255)
		m.reply_text.len = 255;
	conn_send_method(c, 0, CODEC_CONNECTION_CLOSE, &m);
	/* Channels die with the connection; their work is undone now. */
	conn_chans_free(c);
	c->st = CONN_ST_CLOSING;
	c->deadline = ev_now(c->b->loop) + CONN_CLOSE_TIMEOUT;
	ev_timer_stop(c->b->loop, &c->timer);
	ev_timer_set(&c->timer, CONN_CLOSE_TIMEOUT, 0.);
	ev_timer_start(c->b->loop, &c->timer);
	conn_update_io(c);
}

void conn_close_fmt(struct conn *c, uint16_t code, uint32_t method_id,
                           const char *fmt, ...)
{
	char text[256];
	const char *name = codec_reply_name(code);
	int n = snprintf(text, sizeof(text), "%s - ", name ? name : "ERROR");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
	va_end(ap);
	conn_close(c, code, text, method_id);
}

/*
 * Answer the client's connection.close.  The client closes the socket once
 * it has our close-ok (as with RabbitMQ); closing first could reset the
 * connection and lose the close-ok, so wait for its EOF, bounded by the
 * flushing timer.
 */
void conn_close_ok(struct conn *c)
{
	struct codec_connection_close_ok ok = { 0 };
	conn_send_method(c, 0, CODEC_CONNECTION_CLOSE_OK, &ok);
	conn_finish(c);
	c->await_eof = true;
}

void conn_finish(struct conn *c)
{
	/* nothing more will be read: send what is queued, then close */
	conn_chans_free(c);
	c->st = CONN_ST_FLUSHING;
	ev_timer_stop(c->b->loop, &c->timer);
	ev_timer_set(&c->timer, CONN_CLOSE_TIMEOUT, 0.);
	ev_timer_start(c->b->loop, &c->timer);
	conn_mark_dirty(c);
}

void conn_destroy(struct conn *c, const char *why)
{
	struct broker *b = c->b;
	if (c->st == CONN_ST_DEAD)
		return;
	if (why)
		log_info(&b->log, "connection %s%s%s: closed: %s", c->peer, c->name ? " " : "",
		         c->name ? c->name : "", why);
	else
		log_debug(&b->log, "connection %s closed", c->peer);
	conn_chans_free(c);
	if (c->vhost)
		vhost_delete_owned(c->vhost, c);
	ev_io_stop(b->loop, &c->io);
	ev_timer_stop(b->loop, &c->timer);
	conn_pending_remove(c);
	c->tp.ops->close(&c->tp);
	close(c->io.fd);
	outq_clear(&c->out, &b->outq_pool);
	free(c->rbuf);
	c->rbuf = NULL;
	c->st = CONN_ST_DEAD;
	if (c->prev)
		c->prev->next = c->next;
	else
		b->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	b->nconns--;
	c->next = b->conns_dead;
	b->conns_dead = c;
}

void conn_reap(struct broker *b)
{
	while (b->conns_dead) {
		struct conn *c = b->conns_dead;
		b->conns_dead = c->next;
		/* conn_flush_dirty() ran first and never re-marks a dead connection */
		free(c->name);
		free(c->user);
		free(c);
	}
}

/*
 * Parse and handle whole frames in buf.  Returns bytes consumed; stops early
 * when the connection stops reading (closing, dead, paused by an alarm).
 */
static size_t conn_process(struct conn *c, const uint8_t *buf, size_t len)
{
	size_t used = 0;
	c->rneed = 0;
	while (used < len) {
		if (c->st == CONN_ST_DEAD || c->st == CONN_ST_FLUSHING || c->auth_delay)
			return len; /* discard the rest */
		if (c->st == CONN_ST_HEADER) {
			if (len - used < sizeof(protocol_header)) {
				if (memcmp(buf + used, protocol_header, len - used) != 0)
					goto bad_header;
				c->rneed = sizeof(protocol_header);
				return used;
			}
			if (memcmp(buf + used, protocol_header, sizeof(protocol_header)) != 0)
				goto bad_header;
			used += sizeof(protocol_header);
			conn_send_start(c);
			continue;
		}
		if (c->blocked_sent && c->st == CONN_ST_OPEN)
			return used; /* hold further frames until the alarm clears */
		struct frame f;
		size_t n;
		uint32_t fmax = c->st == CONN_ST_OPEN || c->st == CONN_ST_CLOSING
		                        ? c->frame_max
		                        : CONN_PRE_TUNE_FRAME_MAX;
		int rc = frame_parse(buf + used, len - used, fmax, &f, &n);
		if (rc == CODEC_AGAIN) {
			c->rneed = n;
			return used;
		}
		if (rc != CODEC_OK) {
			if (c->st == CONN_ST_CLOSING) {
				conn_finish(c);
				return len;
			}
			if (rc == CODEC_E_FRAME_SIZE) {
				conn_close_fmt(c, CODEC_FRAME_ERROR, 0,
				               "frame size exceeds frame_max %u", fmax);
			} else {
				conn_close_fmt(c, (uint16_t)codec_status_reply_code(rc), 0, "%s",
				               codec_status_text(rc));
			}
			/* the stream cannot be re-synchronised: read no more */
			conn_finish(c);
			return len;
		}
		used += n;
		c->last_rx = ev_now(c->b->loop);
		conn_on_frame(c, &f);
	}
	return used;

bad_header:
	/* Tell the client which protocol we speak, then hang up (spec 4.2.2). */
	conn_send_raw(c, protocol_header, sizeof(protocol_header));
	conn_finish(c);
	return len;
}

static void conn_read(struct conn *c)
{
	struct broker *b = c->b;
	if (c->rlen == 0) {
		ssize_t n = c->tp.ops->read(&c->tp, b->scratch, b->scratch_cap);
		if (n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			conn_destroy(c, c->st == CONN_ST_FLUSHING ? NULL
			                : n == 0 ? "client closed the socket" : conn_io_error(c));
			return;
		}
		size_t used = conn_process(c, b->scratch, (size_t)n);
		if (c->st == CONN_ST_DEAD || used == (size_t)n)
			return;
		/* keep the partial frame; size the buffer for the whole frame */
		size_t keep = (size_t)n - used;
		size_t cap = c->rneed > keep ? c->rneed : keep;
		c->rbuf = xrealloc(c->rbuf, cap);
		c->rcap = cap;
		memcpy(c->rbuf, b->scratch + used, keep);
		c->rlen = keep;
		return;
	}
	size_t want = c->rneed > c->rlen ? c->rneed : c->rlen + 4096;
	if (want > c->rcap) {
		c->rbuf = xrealloc(c->rbuf, want);
		c->rcap = want;
	}
	ssize_t n = c->tp.ops->read(&c->tp, c->rbuf + c->rlen, c->rcap - c->rlen);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_destroy(c, c->st == CONN_ST_FLUSHING ? NULL
		                : n == 0 ? "client closed the socket" : conn_io_error(c));
		return;
	}
	c->rlen += (size_t)n;
	size_t used = conn_process(c, c->rbuf, c->rlen);
	if (c->st == CONN_ST_DEAD)
		return;
	if (used == c->rlen) {
		free(c->rbuf);
		c->rbuf = NULL;
		c->rlen = c->rcap = 0;
	} else if (used > 0) {
		memmove(c->rbuf, c->rbuf + used, c->rlen - used);
		c->rlen -= used;
	}
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = (struct conn *)w;
	(void)loop;
	/* TLS may cross the directions: a read that waits for writability, a
	 * write that waits for readability */
	int tw = transport_want(&c->tp);
	if ((revents & EV_WRITE) || ((revents & EV_READ) && (tw & TRANSPORT_WANT_READ))) {
		conn_flush(c);
		if (c->st == CONN_ST_DEAD)
			return;
	}
	bool readable = (revents & EV_READ) || ((revents & EV_WRITE) && (tw & TRANSPORT_WANT_WRITE));
	if (readable && !c->read_paused)
		conn_read(c);
	if (c->st != CONN_ST_DEAD)
		conn_update_io(c);
}

void conn_drain_pending(struct broker *b)
{
	/* Take the list as it is now: connections that still have input after
	 * one read go back on b->conns_pending for the next pass, so one fast
	 * sender cannot hold the loop here. */
	struct conn *c = b->conns_pending;
	b->conns_pending = NULL;
	while (c) {
		struct conn *next = c->pending_next;
		c->pending = false;
		c->pending_next = NULL;
		/* dead ones are freed only by conn_reap, after this returns */
		if (c->st != CONN_ST_DEAD) {
			if (!c->read_paused)
				conn_read(c);
			if (c->st != CONN_ST_DEAD)
				conn_update_io(c);
		}
		c = next;
	}
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, timer));
	(void)revents;
	ev_tstamp now = ev_now(loop);
	switch (c->st) {
	case CONN_ST_START_OK:
		if (c->auth_delay) {
			conn_auth_fail_answer(c);
			return;
		}
		conn_destroy(c, "handshake timeout");
		return;
	case CONN_ST_HEADER:
	case CONN_ST_TUNE_OK:
	case CONN_ST_OPEN_WAIT:
		conn_destroy(c, "handshake timeout");
		return;
	case CONN_ST_CLOSING:
	case CONN_ST_FLUSHING:
		conn_destroy(c, c->st == CONN_ST_CLOSING ? "no connection.close-ok in time" : NULL);
		return;
	case CONN_ST_OPEN:
		if (now - c->last_rx > 2.0 * c->heartbeat) {
			/* RabbitMQ closes the socket without a close method here */
			conn_destroy(c, "missed heartbeats from client");
			return;
		}
		if (now - c->last_tx >= c->heartbeat / 2.0 && c->out.bytes == 0) {
			conn_send_raw(c, frame_heartbeat_bytes, sizeof(frame_heartbeat_bytes));
		}
		return;
	case CONN_ST_DEAD:
		return;
	}
}

/* "host:port" ("[v6]:port") of sa into buf; whether it is a loopback address. */
static bool conn_peer_name(const struct sockaddr *sa, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	uint16_t port = 0;
	bool loopback = false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
		           (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && s6->sin6_addr.s6_addr[12] == 127);
	}
	snprintf(buf, cap, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
	return loopback;
}

static struct conn *conn_new(struct broker *b, int fd, const struct sockaddr *sa, bool tls)
{
	char peer[sizeof(((struct conn *)0)->peer)];
	bool loopback = conn_peer_name(sa, peer, sizeof(peer));
	if (b->stopping || (b->cfg.max_connections && b->nconns >= b->cfg.max_connections)) {
		if (!b->stopping)
			log_warning(&b->log, "connection refused: max_connections (%u) reached; "
			            "closed %s", b->cfg.max_connections, peer);
		close(fd);
		return NULL;
	}
	struct transport tp;
	if (tls) {
		char err[256];
		if (!b->tls || tls_transport_init(b->tls, &tp, fd, err, sizeof(err)) != 0) {
			log_error(&b->log, "%s", b->tls ? err : "TLS connection without a TLS context");
			close(fd);
			return NULL;
		}
	} else {
		transport_tcp_init(&tp, fd);
	}
	struct conn *c = xcalloc(1, sizeof(*c));
	c->tp = tp;
	c->b = b;
	c->id = ++b->next_conn_id;
	c->st = CONN_ST_HEADER;
	c->frame_max = CONN_PRE_TUNE_FRAME_MAX;
	c->loopback = loopback;
	memcpy(c->peer, peer, sizeof(c->peer));
	c->last_rx = c->last_tx = ev_now(b->loop);
	ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
	ev_timer_init(&c->timer, conn_timer_cb, b->cfg.handshake_timeout, 0.);
	ev_io_start(b->loop, &c->io);
	ev_timer_start(b->loop, &c->timer);
	c->next = b->conns;
	if (b->conns)
		b->conns->prev = c;
	b->conns = c;
	b->nconns++;
	log_debug(&b->log, "accepted %sconnection %s", tls ? "TLS " : "", c->peer);
	return c;
}

void conn_accept(struct broker *b, int fd, const struct sockaddr *sa, socklen_t salen)
{
	(void)salen;
	conn_new(b, fd, sa, false);
}

void conn_accept_tls(struct broker *b, int fd, const struct sockaddr *sa, socklen_t salen)
{
	(void)salen;
	conn_new(b, fd, sa, true);
}
