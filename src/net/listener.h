/*
 * TCP listeners, plain or TLS (the connection then speaks TLS from its first
 * byte).  Accepts in batches; when the process runs out of file descriptors
 * it stops accepting for a while instead of spinning on EMFILE.
 */
#ifndef WARREN_NET_LISTENER_H
#define WARREN_NET_LISTENER_H

#include <ev.h>
#include <stdbool.h>
#include <sys/socket.h>

struct broker;

struct listener {
	ev_io io; /* first: the callback casts back */
	ev_timer retry;
	struct broker *b;
	char addr[80];
	bool emfile_logged;
	bool tls;         /* connections get the broker's TLS context */
};

/*
 * Parse "HOST:PORT", "[V6]:PORT" or ":PORT" into a sockaddr.  Returns 0, or
 * -1 with a message in err.
 */
int listener_parse_addr(const char *spec, struct sockaddr_storage *ss,
                        socklen_t *len, char *err, size_t errcap);
struct listener *listener_open(struct broker *b, const char *spec, bool tls);
void listener_close(struct listener *l);

#endif
