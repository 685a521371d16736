/*
 * A channel: method dispatch for one AMQP channel of a connection, content
 * assembly for basic.publish, consumers, unacked deliveries, confirms and
 * transactions.  It reaches its connection only through struct channel_sink,
 * so it can be driven in unit tests without sockets.
 */
#ifndef WARREN_BROKER_CHANNEL_H
#define WARREN_BROKER_CHANNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/frame.h"

struct broker;
struct vhost;
struct message;
struct channel;

/* What the owning connection offers its channels. */
struct channel_sink_ops {
	void (*send_method)(void *conn, uint16_t ch, uint32_t id, const void *args);
	/* method frame + content header (class 60) + body frames */
	void (*send_content)(void *conn, uint16_t ch, uint32_t id, const void *args,
	                     const struct message *m);
	/* a connection-level error: the connection closes */
	void (*hard_error)(void *conn, uint16_t code, const char *text, uint32_t method_id);
	/* room in the connection's output for more deliveries */
	bool (*can_deliver)(void *conn);
	/* the client published while the broker is in a resource alarm */
	void (*published)(void *conn);
};

struct channel_owner {
	const struct channel_sink_ops *ops;
	void *conn;             /* the connection, opaque */
	struct broker *b;
	struct vhost *vhost;
	uint32_t frame_max;
	bool consumer_cancel_notify; /* client capability */
	const char *user;
	uint64_t conn_id;
};

enum channel_state {
	CHANNEL_ST_OPEN,
	CHANNEL_ST_CLOSING, /* sent channel.close, waiting for close-ok */
};

/* Create an open channel (the caller has sent channel.open-ok). */
struct channel *channel_new(const struct channel_owner *owner, uint16_t id);
/*
 * Handle one frame for this channel.  Returns 1 when the channel is finished
 * (close-ok sent or received) and the caller must channel_free() it.
 */
int channel_handle_frame(struct channel *ch, const struct frame *f);
/* Tear down: requeue unacked messages, cancel consumers. */
void channel_free(struct channel *ch);
/* The connection has room again (output drained, unblocked). */
void channel_resume(struct channel *ch);
uint16_t channel_id(const struct channel *ch);
struct queue;
/* The queue is being deleted: forget unacked records that point at it. */
void channel_forget_queue(struct channel *ch, struct queue *q);

#endif
