/*
 * One client connection: protocol header, the connection-class handshake
 * (start/start-ok, tune/tune-ok, open/open-ok), heartbeats, channels, the
 * close handshake, and the output queue.
 *
 * Lifetime: a connection is destroyed at most once (conn_destroy), which
 * tears down its channels and exclusive queues at once; the memory itself is
 * freed in the loop's before-sleep hook so callers up the stack never touch
 * freed memory.
 */
#ifndef WARREN_NET_CONN_H
#define WARREN_NET_CONN_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/outq.h"
#include "net/transport.h"

struct broker;
struct vhost;
struct channel;

enum conn_state {
	CONN_ST_HEADER,    /* waiting for the 8-byte protocol header */
	CONN_ST_START_OK,  /* sent connection.start */
	CONN_ST_TUNE_OK,   /* sent connection.tune */
	CONN_ST_OPEN_WAIT, /* got tune-ok, waiting for connection.open */
	CONN_ST_OPEN,
	CONN_ST_CLOSING,   /* sent connection.close, waiting for close-ok */
	CONN_ST_FLUSHING,  /* nothing more to read: flush output, then close */
	CONN_ST_DEAD,      /* destroyed; freed before the loop sleeps */
};

/* How long a failed login waits for its answer: slows password guessing
 * without blocking anyone else (only this connection's timer runs). */
#define CONN_AUTH_FAIL_DELAY 1.0

/* Client capabilities (from client-properties) that change what we send. */
enum {
	CONN_CAP_AUTH_FAILURE_CLOSE = 1,
	CONN_CAP_BLOCKED = 2,
	CONN_CAP_CANCEL_NOTIFY = 4,
	CONN_CAP_PUBLISHER_CONFIRMS = 8,
};

struct conn_chan {
	uint16_t id;
	struct channel *ch;
};

struct conn {
	ev_io io; /* first: callbacks cast back */
	ev_timer timer;
	struct broker *b;
	struct transport tp;        /* plain TCP or TLS */
	struct conn *prev, *next;   /* broker's list of connections */
	struct conn *dirty_next;    /* broker's list of connections with output */
	struct conn *pending_next;  /* broker's list of connections with buffered input */
	bool pending;               /* on that list */
	uint64_t id;
	enum conn_state st;
	bool dirty;
	bool write_armed;
	bool read_paused;           /* output over limit, or blocked by an alarm */
	bool await_eof;             /* FLUSHING: close-ok sent, the client hangs up */
	bool deliver_refused;       /* a consumer was refused for a full output queue */
	bool blocked_sent;          /* connection.blocked was sent */
	bool published;             /* has published at least once */
	bool loopback;
	/* A failed login is answered only when the timer fires (conn_auth_fail):
	 * until then nothing is read.  auth_mech names the mechanism for the
	 * 403 text, or is empty when the client gets no close method. */
	bool auth_delay;
	char auth_mech[12];
	uint32_t caps;
	uint16_t channel_max;
	uint32_t frame_max;
	uint16_t heartbeat;
	ev_tstamp last_rx, last_tx, deadline;
	char peer[64];
	char *name;                 /* client's connection_name, or NULL */
	char *user;
	struct vhost *vhost;
	uint8_t *rbuf;              /* partial frame carried between reads */
	size_t rlen, rcap, rneed;
	struct outq out;
	struct conn_chan *chans;
	uint16_t nchans, chans_cap;
};

struct message;
void conn_send_method(struct conn *c, uint16_t ch, uint32_t id, const void *args);
void conn_send_content(struct conn *c, uint16_t ch, uint32_t id, const void *args,
                       const struct message *m);
void conn_accept(struct broker *b, int fd, const struct sockaddr *sa, socklen_t salen);
/* The same over TLS with the broker's context (b->tls); the handshake runs
 * within the handshake timeout. */
void conn_accept_tls(struct broker *b, int fd, const struct sockaddr *sa, socklen_t salen);
/* Close with connection.close (code, text) and wait for close-ok. */
void conn_close(struct conn *c, uint16_t code, const char *text, uint32_t method_id);
/* Tear down now (socket error, timeout). */
void conn_destroy(struct conn *c, const char *why);
/* Free connections destroyed since the last call (before-sleep hook). */
void conn_reap(struct broker *b);
/* Write out pending output of connections that queued some. */
void conn_flush_dirty(struct broker *b);
/* Read input that TLS already holds but the socket no longer announces
 * (before-sleep hook, before dispatch and flushing). */
void conn_drain_pending(struct broker *b);
/* A resource alarm changed: block or unblock publishers. */
void conn_alarm_changed(struct conn *c, bool alarm);

#endif
