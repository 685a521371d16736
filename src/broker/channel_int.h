/*
 * Channel internals shared by channel.c (lifecycle, exchange and queue
 * classes) and channel_basic.c (publish, consume, acks, confirms, tx).
 */
#ifndef WARREN_BROKER_CHANNEL_INT_H
#define WARREN_BROKER_CHANNEL_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/users.h"
#include "broker/channel.h"
#include "broker/consumer.h"
#include "broker/queue.h"
#include "broker/reply.h"
#include "codec/gen_methods.h"

struct message;

/* A delivery awaiting ack; slot index = delivery tag - unacked_base. */
struct unacked {
	struct queue *queue;  /* NULL once settled, or when the queue went away */
	struct consumer *consumer; /* NULL for basic.get */
	struct queue_entry entry;
};

struct chan_consumer {
	struct consumer c;    /* first: consumer_ops callbacks cast back */
	struct channel *ch;
	char tag[256];
	uint32_t prefetch;    /* per-consumer limit (global=false), 0 = none */
	uint32_t unacked;
	struct chan_consumer *next;
};

/* A message published inside a transaction, applied on tx.commit. */
struct tx_publish {
	struct message *msg;
	bool mandatory;
};

/* An ack/nack/reject inside a transaction. */
struct tx_ack {
	uint64_t tag;
	bool multiple;
	uint8_t kind; /* 0 ack, 1 nack/reject requeue, 2 nack/reject drop */
};

/* An answer owed to the client once a store ticket is durable. */
enum pending_kind { PENDING_ACK, PENDING_NACK, PENDING_COMMIT_OK };
struct pending_reply {
	uint64_t seq;    /* publish sequence number (acks and nacks) */
	uint64_t ticket; /* store ticket to wait for; 0 = none */
	enum pending_kind kind;
};

struct channel {
	struct channel_owner own;
	uint16_t id;
	enum channel_state st;
	bool flow_active;
	bool confirm;
	bool tx;
	/* content assembly */
	bool in_publish;
	bool publish_mandatory;
	struct message *pub_msg;
	uint8_t pub_exchange_len, pub_rk_len;
	char pub_exchange[256];
	char pub_rk[256];
	/* qos */
	uint32_t prefetch_next;   /* applied to consumers created from now on */
	uint32_t prefetch_global; /* channel-wide, 0 = none */
	uint32_t unacked_count;
	/* deliveries */
	uint64_t next_tag;        /* last delivery tag handed out */
	uint64_t unacked_base;    /* tag of unacked[0] */
	struct unacked *unacked;  /* ring of unacked[head..head+n) */
	size_t ua_head, ua_n, ua_cap;
	struct chan_consumer *consumers;
	/* confirms and deferred commit-oks, released in order */
	uint64_t publish_seq;
	struct pending_reply *pr;
	size_t pr_head, pr_n, pr_cap;
	bool pr_listed;
	/* transactions */
	struct tx_publish *txp;
	size_t ntxp, captxp;
	struct tx_ack *txa;
	size_t ntxa, captxa;
	/* the last queue declared on this channel ("" in later methods means it) */
	char last_queue[256];
	/* direct reply-to: consumer tag and address, empty when not consuming */
	char reply_tag[64];
	char reply_addr[80];
	struct reply err;
};

/* The user's permission for kind on the resource (type "queue" or
 * "exchange"); on refusal the channel fails with 403 and false is returned. */
bool channel_allowed(struct channel *ch, enum users_perm kind, const char *type,
                     struct bytes name, uint32_t method_id);
/* Fail the current method: a soft error closes the channel, a hard one the connection. */
void channel_fail(struct channel *ch, uint32_t method_id);
void channel_send(struct channel *ch, uint32_t id, const void *args);

int channel_basic_method(struct channel *ch, uint32_t id, union codec_method_args *a);
int channel_basic_content(struct channel *ch, const struct frame *f);
/* channel_confirm.c */
void channel_reply_later(struct channel *ch, uint64_t seq, uint64_t ticket, enum pending_kind k);
void channel_replies_forget(struct channel *ch);
/* channel_publish.c */
void channel_on_publish(struct channel *ch, struct codec_basic_publish *m);
/* Route a complete message and answer for it (return, confirm). Consumes m. */
/* props: m's decoded properties, or NULL to decode them here.  Returns the
 * store ticket to wait for. */
uint64_t channel_publish_route(struct channel *ch, struct message *m,
                               const struct codec_basic_props *props, bool mandatory,
                               uint64_t seq);
void channel_basic_teardown(struct channel *ch);
/* A no-ack delivery used delivery tag `tag` (keeps the unacked ring exact). */
void channel_note_noack_tag(struct channel *ch, uint64_t tag);

/* direct reply-to, in channel_reply.c */
bool channel_reply_is_pseudo_queue(struct bytes name);
bool channel_reply_is_address(struct bytes rk);
int channel_reply_consume(struct channel *ch, struct codec_basic_consume *m);
bool channel_reply_cancel(struct channel *ch, struct bytes tag);
void channel_reply_teardown(struct channel *ch);
int channel_reply_rewrite_props(struct channel *ch, const struct codec_basic_props *props,
                                uint8_t **out, size_t *outlen);
bool channel_reply_deliver(struct broker *b, const struct message *m);

struct queue *channel_queue_lookup(struct channel *ch, struct bytes name, uint32_t method_id);

#endif
