/*
 * The outcome of a broker operation that can fail with an AMQP error.
 * Broker code fills code and text ("NOT_FOUND - no queue 'x' in vhost '/'");
 * the channel adds class and method ids and decides, through
 * codec_reply_is_hard(), whether the channel or the connection closes.
 */
#ifndef WARREN_BROKER_REPLY_H
#define WARREN_BROKER_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define REPLY_TEXT_MAX 255 /* reply-text is a shortstr */

struct reply {
	uint16_t code; /* 0 while no error */
	char text[REPLY_TEXT_MAX + 1];
};

/* Set code and text; the text is prefixed with the code's name and " - ",
 * as RabbitMQ does, and truncated to fit a shortstr.  Always returns -1 so
 * callers can `return reply_set(...)`. */
int reply_set(struct reply *r, uint16_t code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Render a name for error texts: printable as is, other bytes as \xNN,
 * into buf (at most cap bytes with the NUL); returns buf. */
const char *reply_name(char *buf, size_t cap, const uint8_t *p, size_t len);

#endif
