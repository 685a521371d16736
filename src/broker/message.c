/*
 * Messages: one allocation laid out as struct message, then exchange name,
 * routing key, encoded properties and body, so a publish costs a single
 * malloc however many queues it reaches.  The header fields the queues need
 * (priority, persistence, per-message TTL) are decoded once here.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/message.h"
#include "broker/queue.h"
#include "codec/gen_methods.h"
#include "util/xalloc.h"

/* Sizes are bounded by the caller (frame and message limits); the sum is
 * still checked so a bogus body_len cannot wrap the allocation size. */
static bool add_size(size_t *acc, uint64_t n)
{
	if (n > SIZE_MAX - *acc)
		return false;
	*acc += (size_t)n;
	return true;
}

static bool message_fill_props(struct message *m, struct bytes props)
{
	struct codec_basic_props p;
	struct rd r = rd_init(props.ptr, props.len);

	if (codec_decode_basic_props(&r, &p) != CODEC_OK || r.left != 0)
		return false;
	m->priority = (p.flags & CODEC_BASIC_PRIORITY_FLAG) ? p.priority : 0;
	m->persistent = (p.flags & CODEC_BASIC_DELIVERY_MODE_FLAG) && p.delivery_mode == 2;
	m->ttl_ms = -1;
	if ((p.flags & CODEC_BASIC_EXPIRATION_FLAG) &&
	    queue_expiration_parse(p.expiration, &m->ttl_ms, NULL) != 0)
		return false;
	return true;
}

static struct message *message_alloc(struct bytes exchange, struct bytes routing_key,
                                     struct bytes props, uint64_t body_len)
{
	size_t size = sizeof(struct message);

	if (!add_size(&size, exchange.len) || !add_size(&size, routing_key.len) ||
	    !add_size(&size, props.len) || !add_size(&size, body_len))
		return NULL;
	struct message *m = xmalloc(size);
	uint8_t *p = m->data;

	memset(m, 0, sizeof(*m));
	m->refs = 1;
	if (exchange.len)
		memcpy(p, exchange.ptr, exchange.len);
	m->exchange.ptr = p;
	m->exchange.len = exchange.len;
	p += exchange.len;
	if (routing_key.len)
		memcpy(p, routing_key.ptr, routing_key.len);
	m->routing_key.ptr = p;
	m->routing_key.len = routing_key.len;
	p += routing_key.len;
	if (props.len)
		memcpy(p, props.ptr, props.len);
	m->props.ptr = p;
	m->props.len = props.len;
	p += props.len;
	m->body = p;
	m->body_len = body_len;
	m->body_filled = 0;
	return m;
}

struct message *message_new(struct bytes exchange, struct bytes routing_key,
                            struct bytes props, uint64_t body_len)
{
	struct message *m = message_alloc(exchange, routing_key, props, body_len);

	if (!m)
		return NULL;
	if (!message_fill_props(m, m->props)) {
		free(m);
		return NULL;
	}
	return m;
}

void message_unref(struct message *m)
{
	if (!m)
		return;
	if (--m->refs == 0)
		free(m);
}

bool message_append_body(struct message *m, struct bytes chunk)
{
	if (chunk.len > m->body_len - m->body_filled)
		return false;
	if (chunk.len)
		memcpy(m->body + m->body_filled, chunk.ptr, chunk.len);
	m->body_filled += chunk.len;
	return true;
}

struct message *message_with_props(const struct message *m, struct bytes props,
                                   struct bytes exchange, struct bytes routing_key)
{
	struct message *n = message_alloc(exchange, routing_key, props, m->body_len);

	if (!n)
		return NULL;
	if (!message_fill_props(n, n->props)) {
		free(n);
		return NULL;
	}
	/* A new message to the broker: the caller gives it a fresh id. */
	n->id = 0;
	if (m->body_filled)
		memcpy(n->body, m->body, (size_t)m->body_filled);
	n->body_filled = m->body_filled;
	return n;
}
