/*
 * A message: one allocation holding routing info, the raw encoded Basic
 * properties (flags + list, re-sent unchanged on delivery) and the body,
 * with a reference count.  Queues, unacked records and output frames hold
 * references; the body is never copied per queue or per consumer.
 */
#ifndef WARREN_BROKER_MESSAGE_H
#define WARREN_BROKER_MESSAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/wire.h"

struct message {
	uint32_t refs;
	uint8_t priority;      /* 0 when the property is absent */
	bool persistent;       /* delivery-mode 2 */
	bool stored;           /* written to the message store */
	int64_t ttl_ms;        /* per-message expiration property, -1 if none */
	uint64_t id;           /* set by the broker; unique per run */
	struct bytes exchange; /* point into data[] */
	struct bytes routing_key;
	struct bytes props;    /* encoded property flags + list */
	uint64_t body_len;
	uint64_t body_filled;  /* bytes of body received so far */
	uint8_t *body;         /* points into data[] */
	uint8_t data[];
};

/*
 * Allocate a message with room for the body.  props must be a valid encoded
 * property list (it is decoded to fill priority, persistent and ttl_ms); the
 * caller has already bounded body_len by the configured max message size.
 * Returns NULL if props are malformed.  refs starts at 1.
 */
struct message *message_new(struct bytes exchange, struct bytes routing_key,
                            struct bytes props, uint64_t body_len);
static inline struct message *message_ref(struct message *m)
{
	m->refs++;
	return m;
}
void message_unref(struct message *m);

/* Append body bytes; returns false if they would exceed body_len. */
bool message_append_body(struct message *m, struct bytes chunk);
static inline bool message_complete(const struct message *m)
{
	return m->body_filled == m->body_len;
}

/*
 * A copy of m with different properties (used to add x-death or strip BCC)
 * and optionally a different routing key; the body is copied once.
 */
struct message *message_with_props(const struct message *m, struct bytes props,
                                   struct bytes exchange, struct bytes routing_key);

/* Bytes of memory the message accounts for (for x-max-length-bytes: body only). */
static inline uint64_t message_body_size(const struct message *m) { return m->body_len; }

#endif
