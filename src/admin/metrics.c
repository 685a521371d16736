/*
 * The metrics endpoint's HTTP side: the listening socket, one bounded
 * request head per client, one response, close.  The exposition text
 * itself is metrics_render.c's.
 *
 * Invariant: a client is either reading (io watches EV_READ, out is NULL)
 * or writing its one response (io watches EV_WRITE, out holds it); its
 * timer runs from accept to close, so no client outlives METRICS_TIMEOUT.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "admin/metrics.h"
#include "broker/broker.h"
#include "net/listener.h"
#include "util/xalloc.h"

/* how long to stop accepting when the process is out of descriptors */
#define METRICS_ACCEPT_RETRY 1.0

struct metrics_client {
	ev_io io; /* first: the callbacks cast back */
	ev_timer timer;
	struct metrics *m;
	struct metrics_client *prev, *next;
	char *out;           /* the response, once the request is complete */
	size_t outlen, outoff;
	size_t inlen;
	char in[METRICS_MAX_REQUEST];
};

struct metrics {
	ev_io io; /* listening socket; first */
	ev_timer retry;
	struct broker *b;
	ev_tstamp started;
	struct metrics_client *clients;
	size_t nclients;
	char addr[80];
};

/* ---- request parsing ---------------------------------------------------- */

/* Where the head ends (just past its blank line), or 0 if it has not yet. */
static size_t metrics_head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		/* a line of its own, ended by LF or CRLF, ends the head */
		if (i >= 1 && buf[i - 1] == '\n')
			return i + 1;
		if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')
			return i + 1;
	}
	return 0;
}

/*
 * Check "METHOD SP TARGET SP HTTP/1.x" (line[0..n), line end stripped)
 * and classify it.  The target's query string is ignored, as Prometheus
 * servers do.
 */
static enum metrics_parse metrics_parse_line(const char *line, size_t n)
{
	size_t i = 0;
	while (i < n && i < 16 && line[i] >= 'A' && line[i] <= 'Z')
		i++;
	size_t mlen = i;
	if (mlen == 0 || i >= n || line[i] != ' ')
		return METRICS_PARSE_BAD;
	size_t t0 = ++i;
	while (i < n && line[i] > ' ' && line[i] < 0x7f)
		i++;
	size_t tlen = i - t0;
	if (tlen == 0 || line[t0] != '/' || i >= n || line[i] != ' ')
		return METRICS_PARSE_BAD;
	i++;
	if (n - i != 8 || memcmp(line + i, "HTTP/1.", 7) != 0 ||
	    (line[i + 7] != '0' && line[i + 7] != '1'))
		return METRICS_PARSE_BAD;
	size_t plen = strcspn(line + t0, "?# ");
	if (plen > tlen)
		plen = tlen;
	if (plen != 8 || memcmp(line + t0, "/metrics", 8) != 0)
		return METRICS_PARSE_NOT_FOUND;
	if (mlen == 3 && memcmp(line, "GET", 3) == 0)
		return METRICS_PARSE_METRICS;
	if (mlen == 4 && memcmp(line, "HEAD", 4) == 0)
		return METRICS_PARSE_HEAD;
	return METRICS_PARSE_METHOD;
}

/* One line's length without its LF or CRLF. */
static size_t metrics_line_len(const char *line, size_t n)
{
	return n > 0 && line[n - 1] == '\r' ? n - 1 : n;
}

enum metrics_parse metrics_parse_request(const char *buf, size_t len)
{
	const char *nl = memchr(buf, '\n', len);
	if (!nl)
		return len >= METRICS_MAX_REQUEST ? METRICS_PARSE_TOO_LARGE : METRICS_PARSE_MORE;
	/* the request line is judged as soon as it is whole, so garbage gets
	 * its 400 without waiting for a blank line that may never come */
	enum metrics_parse verdict =
		metrics_parse_line(buf, metrics_line_len(buf, (size_t)(nl - buf)));
	if (verdict == METRICS_PARSE_BAD)
		return verdict;
	size_t end = metrics_head_end(buf, len);
	if (end == 0)
		return len >= METRICS_MAX_REQUEST ? METRICS_PARSE_TOO_LARGE : METRICS_PARSE_MORE;
	/* header lines: "Name: value"; we use none of them, but a head that is
	 * not made of them is not HTTP */
	const char *p = nl + 1, *stop = buf + end;
	while (p < stop) {
		const char *e = memchr(p, '\n', (size_t)(stop - p));
		size_t n = metrics_line_len(p, (size_t)(e - p));
		if (n == 0)
			break;
		const char *colon = memchr(p, ':', n);
		if (!colon || colon == p || p[0] == ' ' || p[0] == '\t')
			return METRICS_PARSE_BAD;
		for (const char *c = p; c < colon; c++)
			if (*c <= ' ' || *c >= 0x7f)
				return METRICS_PARSE_BAD;
		p = e + 1;
	}
	return verdict;
}

/* ---- clients ------------------------------------------------------------- */

static void metrics_client_free(struct metrics_client *c)
{
	struct metrics *m = c->m;
	ev_io_stop(m->b->loop, &c->io);
	ev_timer_stop(m->b->loop, &c->timer);
	close(c->io.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		m->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	m->nclients--;
	free(c->out);
	free(c);
}

static void metrics_client_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct metrics_client *c = w->data;
	log_debug(&c->m->b->log, "metrics: client timed out");
	metrics_client_free(c);
}

/* Set the response: status line, headers, and the body unless HEAD. */
static void metrics_client_respond(struct metrics_client *c, enum metrics_parse p)
{
	const char *status, *type = "text/plain; charset=utf-8", *extra = "";
	char *body = NULL;
	size_t blen = 0;
	switch (p) {
	case METRICS_PARSE_METRICS:
	case METRICS_PARSE_HEAD:
		status = "200 OK";
		type = "text/plain; version=0.0.4; charset=utf-8";
		body = metrics_render(c->m->b, ev_now(c->m->b->loop) - c->m->started, &blen);
		break;
	case METRICS_PARSE_NOT_FOUND:
		status = "404 Not Found";
		break;
	case METRICS_PARSE_METHOD:
		status = "405 Method Not Allowed";
		extra = "Allow: GET, HEAD\r\n";
		break;
	case METRICS_PARSE_TOO_LARGE:
		status = "431 Request Header Fields Too Large";
		break;
	default:
		status = "400 Bad Request";
		break;
	}
	if (!body) {
		/* the status line again, as a body a person reading curl output sees */
		blen = strlen(status) + 1;
		body = xmalloc(blen + 1);
		snprintf(body, blen + 1, "%s\n", status);
	}
	char head[256];
	int hn = snprintf(head, sizeof(head),
	                  "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
	                  "Connection: close\r\n\r\n", status, type, blen, extra);
	size_t send_body = p == METRICS_PARSE_HEAD ? 0 : blen;
	c->outlen = (size_t)hn + send_body;
	c->out = xmalloc(c->outlen);
	memcpy(c->out, head, (size_t)hn);
	memcpy(c->out + hn, body, send_body);
	free(body);
	c->outoff = 0;
	ev_io_stop(c->m->b->loop, &c->io);
	ev_io_set(&c->io, c->io.fd, EV_WRITE);
	ev_io_start(c->m->b->loop, &c->io);
}

static void metrics_client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	struct metrics_client *c = (struct metrics_client *)w;
	if (revents & EV_WRITE) {
		while (c->outoff < c->outlen) {
			ssize_t n = send(w->fd, c->out + c->outoff, c->outlen - c->outoff,
			                 MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			if (n <= 0) {
				metrics_client_free(c);
				return;
			}
			c->outoff += (size_t)n;
		}
		/* FIN before close, so the client reads the whole response */
		shutdown(w->fd, SHUT_WR);
		metrics_client_free(c);
		return;
	}
	if (!(revents & EV_READ))
		return;
	ssize_t n = recv(w->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		/* gone (or reset) before a whole request: nobody to answer */
		metrics_client_free(c);
		return;
	}
	c->inlen += (size_t)n;
	enum metrics_parse p = metrics_parse_request(c->in, c->inlen);
	if (p != METRICS_PARSE_MORE)
		metrics_client_respond(c, p);
}

/* ---- listening ------------------------------------------------------------ */

static void metrics_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct metrics *m = w->data;
	ev_io_start(loop, &m->io);
}

static void metrics_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct metrics *m = (struct metrics *)w;
	for (int batch = 0; batch < 16; batch++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* level-triggered: waiting on the socket now would spin */
				ev_io_stop(loop, &m->io);
				ev_timer_set(&m->retry, METRICS_ACCEPT_RETRY, 0.0);
				ev_timer_start(loop, &m->retry);
			}
			return;
		}
		if (m->nclients >= METRICS_MAX_CLIENTS) {
			close(fd);
			continue;
		}
		struct metrics_client *c = xmalloc(sizeof(*c));
		c->m = m;
		c->out = NULL;
		c->outlen = c->outoff = c->inlen = 0;
		c->prev = NULL;
		c->next = m->clients;
		if (m->clients)
			m->clients->prev = c;
		m->clients = c;
		m->nclients++;
		ev_io_init(&c->io, metrics_client_cb, fd, EV_READ);
		ev_io_start(loop, &c->io);
		ev_timer_init(&c->timer, metrics_client_timeout, METRICS_TIMEOUT, 0.0);
		c->timer.data = c;
		ev_timer_start(loop, &c->timer);
	}
}

/* "HOST:PORT" of a bound socket, with [] around IPv6 hosts. */
static void metrics_local_name(int fd, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(buf, cap, "?");
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, cap, "[%s]:%u", host, (unsigned)ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, cap, "%s:%u", host, (unsigned)ntohs(s4->sin_port));
	}
}

struct metrics *metrics_open(struct broker *b, const char *spec, char *err, size_t errcap)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char why[200];
	if (listener_parse_addr(spec, &ss, &sl, why, sizeof(why)) != 0) {
		snprintf(err, errcap, "[metrics] listen %s", why);
		return NULL;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errcap, "metrics listener %s: socket: %s", spec, strerror(errno));
		return NULL;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 64) != 0) {
		snprintf(err, errcap, "metrics listener %s: %s", spec, strerror(errno));
		close(fd);
		return NULL;
	}
	struct metrics *m = xcalloc(1, sizeof(*m));
	m->b = b;
	m->started = ev_now(b->loop);
	metrics_local_name(fd, m->addr, sizeof(m->addr));
	ev_io_init(&m->io, metrics_accept_cb, fd, EV_READ);
	ev_io_start(b->loop, &m->io);
	ev_timer_init(&m->retry, metrics_retry_cb, METRICS_ACCEPT_RETRY, 0.0);
	m->retry.data = m;
	log_info(&b->log, "metrics endpoint on http://%s/metrics", m->addr);
	return m;
}

void metrics_close(struct metrics *m)
{
	if (!m)
		return;
	while (m->clients)
		metrics_client_free(m->clients);
	ev_io_stop(m->b->loop, &m->io);
	ev_timer_stop(m->b->loop, &m->retry);
	close(m->io.fd);
	free(m);
}

const char *metrics_address(const struct metrics *m)
{
	return m->addr;
}
