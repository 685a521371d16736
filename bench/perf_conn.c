/*
 * One AMQP 0-9-1 client connection for warren-perf, over a non-blocking
 * TCP socket with one large input and one large output buffer.
 *
 * Invariants: in[in_off..in_len) are received bytes not yet handed out as
 * frames; out[out_off..out_len) are encoded bytes not yet written.  Both
 * buffers hold at least one whole frame of the negotiated frame_max, so a
 * frame is always parsed in place (a slice of 'in') and valid until the
 * next read.  The synchronous helpers (handshake, declarations) wait with
 * poll() and a 30 s bound; the hot paths in perf_run.c use the
 * non-blocking calls and their own event loop.  Only channel 1 is used.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include "bench/perf.h"
#include "codec/frame.h"
#include "codec/gen_methods.h"
#include "codec/table.h"

#define PERF_CONN_WAIT_MS 30000

static int perf_conn_fail(struct perf_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int perf_conn_fail(struct perf_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return -1;
}

static int perf_conn_connect(struct perf_conn *c, const struct perf_opts *o)
{
	struct addrinfo hints, *res, *ai;
	int rc, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(o->host, o->port, &hints, &res);
	if (rc != 0)
		return perf_conn_fail(c, "%s:%s: %s", o->host, o->port,
		                      gai_strerror(rc));
	c->fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		                ai->ai_protocol);
		if (fd < 0) {
			rc = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			c->fd = fd;
			break;
		}
		rc = errno;
		close(fd);
	}
	freeaddrinfo(res);
	if (c->fd < 0)
		return perf_conn_fail(c, "connect %s:%s: %s", o->host, o->port,
		                      strerror(rc));
	/* Batching is ours to do: never let Nagle hold a confirm or an ack. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

int perf_conn_write_some(struct perf_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off,
		                  c->out_len - c->out_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return perf_conn_fail(c, "write: %s", strerror(errno));
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return 1;
}

static int perf_conn_poll(struct perf_conn *c, short ev, uint64_t deadline)
{
	uint64_t now = perf_now_ns();
	struct pollfd p = { c->fd, ev, 0 };
	int rc;

	if (now >= deadline)
		return perf_conn_fail(c, "timed out waiting for the broker");
	rc = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
	if (rc < 0 && errno != EINTR)
		return perf_conn_fail(c, "poll: %s", strerror(errno));
	return 0;
}

int perf_conn_flush(struct perf_conn *c)
{
	uint64_t deadline = perf_now_ns() + PERF_CONN_WAIT_MS * 1000000ull;
	int rc;

	while ((rc = perf_conn_write_some(c)) == 0)
		if (perf_conn_poll(c, POLLOUT, deadline) < 0)
			return -1;
	return rc < 0 ? -1 : 0;
}

int perf_conn_read_some(struct perf_conn *c)
{
	ssize_t n;

	if (c->in_off == c->in_len) {
		c->in_off = c->in_len = 0;
	} else if (c->in_cap - c->in_len < c->in_cap / 2) {
		/* keep room for a whole frame after the partial one */
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	if (c->in_len == c->in_cap)
		return perf_conn_fail(c, "input buffer full");
	for (;;) {
		n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (n > 0) {
			c->in_len += (size_t)n;
			return (int)n;
		}
		if (n == 0)
			return perf_conn_fail(c, "connection closed by the broker");
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return perf_conn_fail(c, "read: %s", strerror(errno));
	}
}

int perf_conn_next_frame(struct perf_conn *c, struct frame *f)
{
	size_t used;
	int rc = frame_parse(c->in + c->in_off, c->in_len - c->in_off,
	                     c->frame_max, f, &used);

	if (rc == CODEC_OK) {
		c->in_off += used;
		return 1;
	}
	if (rc == CODEC_AGAIN)
		return 0;
	return perf_conn_fail(c, "bad frame from the broker (%s)",
	                      codec_status_text(rc));
}

/* Methods of the connection class travel on channel 0, the rest on 1. */
int perf_conn_put_method(struct perf_conn *c, uint32_t id, const void *args)
{
	uint16_t ch = CODEC_CLASS_OF(id) == CODEC_CLASS_CONNECTION ? 0 : 1;
	size_t room;
	struct wr w;
	uint8_t *start;

	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	room = c->out_cap - c->out_len;
	if (room < FRAME_OVERHEAD + 4)
		return -1;
	start = c->out + c->out_len;
	w = wr_init(start + FRAME_HEADER_SIZE, room - FRAME_OVERHEAD);
	if (codec_method_encode(&w, id, args) != CODEC_OK)
		return -1;
	size_t len = (size_t)(w.p - (start + FRAME_HEADER_SIZE));
	frame_put_header(start, FRAME_METHOD, ch, (uint32_t)len);
	start[FRAME_HEADER_SIZE + len] = FRAME_END_OCTET;
	c->out_len += len + FRAME_OVERHEAD;
	return 0;
}

static void perf_conn_copy_text(struct perf_conn *c, const char *what,
                                struct bytes text)
{
	int n = text.len > 400 ? 400 : (int)text.len;

	snprintf(c->err, sizeof(c->err), "%s: %.*s", what, n,
	         (const char *)text.ptr);
}

int perf_conn_wait_method(struct perf_conn *c, uint32_t *id,
                          union codec_method_args *args)
{
	uint64_t deadline = perf_now_ns() + PERF_CONN_WAIT_MS * 1000000ull;
	struct frame f;
	int rc;

	for (;;) {
		while ((rc = perf_conn_next_frame(c, &f)) == 1) {
			if (f.type != FRAME_METHOD)
				continue; /* heartbeats; stray content */
			rc = codec_method_decode(f.payload, id, args);
			if (rc != CODEC_OK)
				return perf_conn_fail(c, "undecodable %s from the broker",
				                      codec_method_name(*id));
			if (*id == CODEC_CONNECTION_CLOSE) {
				struct codec_connection_close_ok ok = { 0 };
				perf_conn_copy_text(c, "connection closed",
				                    args->connection_close.reply_text);
				perf_conn_put_method(c, CODEC_CONNECTION_CLOSE_OK, &ok);
				perf_conn_write_some(c);
				return -1;
			}
			if (*id == CODEC_CHANNEL_CLOSE) {
				struct codec_channel_close_ok ok = { 0 };
				perf_conn_copy_text(c, "channel closed",
				                    args->channel_close.reply_text);
				perf_conn_put_method(c, CODEC_CHANNEL_CLOSE_OK, &ok);
				perf_conn_write_some(c);
				return -1;
			}
			return 0;
		}
		if (rc < 0)
			return -1;
		rc = perf_conn_read_some(c);
		if (rc < 0)
			return -1;
		if (rc == 0 && perf_conn_poll(c, POLLIN, deadline) < 0)
			return -1;
	}
}

int perf_conn_expect(struct perf_conn *c, uint32_t want,
                     union codec_method_args *reply)
{
	uint32_t id;

	if (perf_conn_wait_method(c, &id, reply) < 0)
		return -1;
	if (id != want)
		return perf_conn_fail(c, "expected %s, got %s",
		                      codec_method_name(want), codec_method_name(id));
	return 0;
}

int perf_conn_rpc(struct perf_conn *c, uint32_t id, const void *args,
                  uint32_t want, union codec_method_args *reply)
{
	if (perf_conn_put_method(c, id, args) < 0)
		return perf_conn_fail(c, "cannot encode %s", codec_method_name(id));
	if (perf_conn_flush(c) < 0)
		return -1;
	return perf_conn_expect(c, want, reply);
}

static int perf_conn_handshake(struct perf_conn *c, const struct perf_opts *o)
{
	static const uint8_t header[8] = { 'A', 'M', 'Q', 'P', 0, 0, 9, 1 };
	union codec_method_args r;
	struct ftable_builder caps, props;
	char resp[300];
	size_t ulen = strlen(o->user), plen = strlen(o->pass);
	int rc;

	memcpy(c->out, header, sizeof(header));
	c->out_len = sizeof(header);
	if (perf_conn_flush(c) < 0 ||
	    perf_conn_expect(c, CODEC_CONNECTION_START, &r) < 0)
		return -1;
	if (ulen + plen + 2 > sizeof(resp))
		return perf_conn_fail(c, "user name or password too long");
	resp[0] = 0;
	memcpy(resp + 1, o->user, ulen);
	resp[1 + ulen] = 0;
	memcpy(resp + 2 + ulen, o->pass, plen);

	ftable_builder_init(&caps);
	ftable_put_bool(&caps, "publisher_confirms", true);
	ftable_put_bool(&caps, "basic.nack", true);
	ftable_put_bool(&caps, "consumer_cancel_notify", true);
	/* a refused login then says why instead of just closing */
	ftable_put_bool(&caps, "authentication_failure_close", true);
	ftable_builder_init(&props);
	ftable_put_str(&props, "product", bytes_of("warren-perf"));
	ftable_put_str(&props, "version", bytes_of(PACKAGE_VERSION));
	ftable_put_str(&props, "platform", bytes_of("C11"));
	ftable_put_table(&props, "capabilities", ftable_builder_get(&caps));
	struct codec_connection_start_ok so = {
		.client_properties = ftable_builder_get(&props),
		.mechanism = bytes_of("PLAIN"),
		.response = { (const uint8_t *)resp, ulen + plen + 2 },
		.locale = bytes_of("en_US"),
	};
	rc = perf_conn_put_method(c, CODEC_CONNECTION_START_OK, &so);
	ftable_builder_free(&props);
	ftable_builder_free(&caps);
	if (rc < 0)
		return perf_conn_fail(c, "cannot encode connection.start-ok");
	if (perf_conn_flush(c) < 0 ||
	    perf_conn_expect(c, CODEC_CONNECTION_TUNE, &r) < 0)
		return -1;

	struct codec_connection_tune_ok to = {
		.channel_max = r.connection_tune.channel_max,
		.frame_max = r.connection_tune.frame_max,
		.heartbeat = 0, /* idle connections must stay open for --time */
	};
	/* c->frame_max is at most half the input buffer, as
	 * perf_conn_read_some() needs */
	if (to.frame_max == 0 || to.frame_max > c->frame_max)
		to.frame_max = c->frame_max;
	c->frame_max = to.frame_max;
	struct codec_connection_open op = { .virtual_host = bytes_of(o->vhost) };
	struct codec_channel_open ch = { 0 };
	if (perf_conn_put_method(c, CODEC_CONNECTION_TUNE_OK, &to) < 0 ||
	    perf_conn_rpc(c, CODEC_CONNECTION_OPEN, &op,
	                  CODEC_CONNECTION_OPEN_OK, &r) < 0 ||
	    perf_conn_rpc(c, CODEC_CHANNEL_OPEN, &ch, CODEC_CHANNEL_OPEN_OK, &r) < 0)
		return -1;
	return 0;
}

int perf_conn_open(struct perf_conn *c, const struct perf_opts *o,
                   size_t in_cap, size_t out_cap)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	/* frame_max will be at most in_cap / 2: see perf_conn_read_some() */
	if (in_cap < 2 * CODEC_FRAME_MIN_SIZE)
		in_cap = 2 * CODEC_FRAME_MIN_SIZE;
	if (out_cap < 2 * CODEC_FRAME_MIN_SIZE)
		out_cap = 2 * CODEC_FRAME_MIN_SIZE;
	c->in = malloc(in_cap);
	c->out = malloc(out_cap);
	if (!c->in || !c->out)
		return perf_conn_fail(c, "out of memory");
	c->in_cap = in_cap;
	c->out_cap = out_cap;
	c->frame_max = in_cap / 2 < PERF_CONN_FRAME_MAX ?
	               (uint32_t)(in_cap / 2) : PERF_CONN_FRAME_MAX;
	if (perf_conn_connect(c, o) < 0)
		return -1;
	return perf_conn_handshake(c, o);
}

/*
 * Anything still buffered is sent first: a frame cut in half would make
 * the broker read our connection.close as the rest of it.
 */
int perf_conn_close_start(struct perf_conn *c, uint64_t deadline)
{
	struct codec_connection_close cl = {
		.reply_code = CODEC_REPLY_SUCCESS,
		.reply_text = bytes_of("warren-perf done"),
	};
	int rc;

	if (c->fd < 0)
		return -1;
	while ((rc = perf_conn_write_some(c)) == 0)
		if (perf_conn_poll(c, POLLOUT, deadline) < 0)
			break;
	if (rc != 1 || perf_conn_put_method(c, CODEC_CONNECTION_CLOSE, &cl) < 0 ||
	    perf_conn_write_some(c) != 1) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

void perf_conn_close_finish(struct perf_conn *c, uint64_t deadline)
{
	struct frame f;
	int rc;

	if (c->fd < 0)
		return;
	for (;;) {
		while ((rc = perf_conn_next_frame(c, &f)) == 1) {
			uint32_t id;
			if (f.type == FRAME_METHOD &&
			    frame_method_id(f.payload, &id) == CODEC_OK &&
			    id == CODEC_CONNECTION_CLOSE_OK)
				goto out;
		}
		if (rc < 0)
			goto out;
		/* deliveries may still be in flight: they are skipped */
		rc = perf_conn_read_some(c);
		if (rc < 0)
			goto out;
		if (rc == 0) {
			uint64_t now = perf_now_ns();
			struct pollfd p = { c->fd, POLLIN, 0 };
			if (now >= deadline)
				goto out;
			poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
		}
	}
out:
	close(c->fd);
	c->fd = -1;
}

void perf_conn_close(struct perf_conn *c, int wait_ms)
{
	if (perf_conn_close_start(c, perf_now_ns() + 2000000000ull) == 0)
		perf_conn_close_finish(c, perf_now_ns() +
		                       (uint64_t)wait_ms * 1000000u);
}

void perf_conn_free(struct perf_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
}
