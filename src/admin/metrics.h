/*
 * The Prometheus metrics endpoint: a small HTTP responder on the broker's
 * event loop, enabled by [metrics] listen.  GET (or HEAD) /metrics answers
 * 200 with the text exposition format 0.0.4; any other path is 404, another
 * method on /metrics 405, a request that is not HTTP/1.x 400, and one whose
 * head outgrows METRICS_MAX_REQUEST 431.  Every connection is closed after its one
 * response (no keep-alive), so a client costs one bounded input buffer and
 * one response until it is done.
 *
 * Bounds: at most METRICS_MAX_CLIENTS clients (more are accepted and
 * closed at once, so the backlog never fills with them), and a client that
 * has not finished within METRICS_TIMEOUT seconds, reading or being
 * written to, is dropped.
 *
 * The numbers are read straight off the broker objects when a scrape
 * arrives; nothing is counted on the hot path for this endpoint's sake.
 */
#ifndef WARREN_ADMIN_METRICS_H
#define WARREN_ADMIN_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct broker;
struct metrics;

#define METRICS_MAX_REQUEST 8192
#define METRICS_MAX_CLIENTS 16
#define METRICS_TIMEOUT 10.0

/*
 * Listen on spec (HOST:PORT, as for [amqp] listen).  Returns the endpoint,
 * or NULL with one line in err.  b must outlive it; metrics_close() before
 * broker_free().
 */
struct metrics *metrics_open(struct broker *b, const char *spec, char *err, size_t errcap);
/* Stop listening and drop every client. */
void metrics_close(struct metrics *m);
/* The address bound, as "HOST:PORT" (the port is the real one for ":0"). */
const char *metrics_address(const struct metrics *m);

/*
 * The exposition text for b, uptime_s seconds after start: a malloc'd,
 * NUL-terminated string (free() it) of *len bytes.  Queues are listed by
 * vhost, then name, so scrapes diff cleanly.
 */
char *metrics_render(struct broker *b, double uptime_s, size_t *len);

/*
 * Write the Prometheus label-value form of s[0..n) to out: backslash,
 * double quote and newline escaped, and each byte that is not part of valid
 * UTF-8 replaced by U+FFFD (Prometheus rejects a whole scrape over one
 * invalid label, and AMQP names may hold any byte).  Returns the bytes
 * written, at most 3 * n; out needs room for that much.
 */
size_t metrics_escape_label(char *out, const unsigned char *s, size_t n);

enum metrics_parse {
	METRICS_PARSE_MORE,      /* the head is not complete yet */
	METRICS_PARSE_METRICS,   /* GET /metrics */
	METRICS_PARSE_HEAD,      /* HEAD /metrics: headers only */
	METRICS_PARSE_NOT_FOUND, /* a well-formed request for another path */
	METRICS_PARSE_METHOD,    /* /metrics with a method other than GET or HEAD */
	METRICS_PARSE_BAD,       /* not an HTTP/1.x request */
	METRICS_PARSE_TOO_LARGE, /* no end of head within METRICS_MAX_REQUEST */
};

/* Classify the request head received so far (buf[0..len)). */
enum metrics_parse metrics_parse_request(const char *buf, size_t len);

#endif
