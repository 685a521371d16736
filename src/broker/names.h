/*
 * Entity names (queues, exchanges) as RabbitMQ treats them: CR and LF are
 * stripped from names clients send, the "amq." prefix is reserved for the
 * broker when something is created, and server-named queues get
 * "amq.gen-" plus 22 base64url characters of a random 128-bit value.
 * RabbitMQ deliberately does not enforce the spec's character regexp or
 * UTF-8 (its channel code says so), so neither do we; the only limit is the
 * shortstr length of 255 bytes, which the codec already guarantees.
 */
#ifndef WARREN_BROKER_NAMES_H
#define WARREN_BROKER_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "codec/wire.h"

#define NAMES_MAX 255
/* Room for a rendered name in an error text (escapes make it longer). */
#define NAMES_RENDER_MAX (4 * NAMES_MAX + 1)
/* "amq.gen-" + 22 */
#define NAMES_GEN_LEN 30

/* A name with CR and LF removed, in caller-provided storage. */
struct names_buf {
	uint8_t b[NAMES_MAX + 1]; /* NUL-terminated */
	struct bytes name;        /* points into b */
};

/* Strip CR/LF from in into buf (names longer than NAMES_MAX are cut). */
struct bytes names_strip(struct names_buf *buf, struct bytes in);

/* True if name starts with "amq." (reserved for server-created entities). */
bool names_reserved(struct bytes name);

/* Fill out with "amq.gen-" + 22 base64url chars of 16 random bytes; NUL-terminated. */
void names_generate(char out[NAMES_GEN_LEN + 1]);

/* Render a name for an error text into buf (see reply_name). */
const char *names_render(char buf[NAMES_RENDER_MAX], struct bytes name);

#endif
