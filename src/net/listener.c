/*
 * Listening sockets.  Each readable event accepts up to ACCEPT_BATCH
 * connections.  On EMFILE/ENFILE the watcher is stopped and a one-second
 * timer restarts it, logging once per episode (libev's advice: never spin
 * on a listener you cannot accept from).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "net/conn.h"
#include "net/listener.h"
#include "util/xalloc.h"

#define ACCEPT_BATCH 64

int listener_parse_addr(const char *spec, struct sockaddr_storage *ss,
                        socklen_t *len, char *err, size_t errcap)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	if (!colon || colon[1] == '\0') {
		snprintf(err, errcap, "'%s': expected HOST:PORT", spec);
		return -1;
	}
	size_t hlen = (size_t)(colon - spec);
	if (hlen >= sizeof(host)) {
		snprintf(err, errcap, "'%s': host too long", spec);
		return -1;
	}
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535) {
		snprintf(err, errcap, "'%s': bad port", spec);
		return -1;
	}
	const char *h = host;
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		h = host + 1;
	}
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (*h == '\0' || strcmp(h, "*") == 0) {
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	} else if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	} else if (strcmp(h, "localhost") == 0) {
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	} else {
		snprintf(err, errcap, "'%s': host must be a numeric IPv4/IPv6 address", spec);
		return -1;
	}
	return 0;
}

static void listener_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct listener *l = (struct listener *)((char *)w - offsetof(struct listener, retry));
	(void)revents;
	ev_io_start(loop, &l->io);
}

static void listener_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = (struct listener *)w;
	(void)revents;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(w->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				if (!l->emfile_logged)
					log_error(&l->b->log, "accept on %s: %s; pausing accepts",
					          l->addr, strerror(errno));
				l->emfile_logged = true;
				ev_io_stop(loop, &l->io);
				ev_timer_set(&l->retry, 1.0, 0.);
				ev_timer_start(loop, &l->retry);
			}
			return;
		}
		if (l->emfile_logged) {
			log_info(&l->b->log, "accepting on %s again", l->addr);
			l->emfile_logged = false;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (l->tls)
			conn_accept_tls(l->b, fd, (struct sockaddr *)&ss, sl);
		else
			conn_accept(l->b, fd, (struct sockaddr *)&ss, sl);
	}
}

struct listener *listener_open(struct broker *b, const char *spec, bool tls)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char err[160];
	if (listener_parse_addr(spec, &ss, &sl, err, sizeof(err)) < 0) {
		log_error(&b->log, "listen %s", err);
		return NULL;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error(&b->log, "listen '%s': socket: %s", spec, strerror(errno));
		return NULL;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* [::]:P and 0.0.0.0:P are separate listeners, as with RabbitMQ */
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
		log_error(&b->log, "listen '%s': %s", spec, strerror(errno));
		close(fd);
		return NULL;
	}
	struct listener *l = xcalloc(1, sizeof(*l));
	l->b = b;
	l->tls = tls;
	snprintf(l->addr, sizeof(l->addr), "%s", spec);
	ev_io_init(&l->io, listener_accept_cb, fd, EV_READ);
	ev_timer_init(&l->retry, listener_retry_cb, 1.0, 0.);
	ev_io_start(b->loop, &l->io);
	log_info(&b->log, "listening on %s (AMQP 0-9-1%s)", spec, tls ? " over TLS" : "");
	return l;
}

void listener_close(struct listener *l)
{
	ev_io_stop(l->b->loop, &l->io);
	ev_timer_stop(l->b->loop, &l->retry);
	close(l->io.fd);
	free(l);
}
