/*
 * A classic queue's contents and consumers, with RabbitMQ's semantics:
 * ready messages in FIFO order per priority level, dispatch to consumers by
 * x-priority then round-robin (or to the single active consumer), acks,
 * requeue to the original position, message TTL, length limits with
 * drop-head or reject-publish, and dead-lettering with x-death headers.
 *
 * No sockets and no timers here: the broker glue supplies a clock (now_ms,
 * any monotonic milliseconds), arms timers from queue_next_expiry() and
 * queue_expires_at(), and runs queue_dispatch() when hooks->schedule asks.
 *
 * Invariants:
 *   - each ready level is sorted by entry seq (publish order), so requeued
 *     messages go back to their original position;
 *   - ready/ready_bytes count exactly the entries in the levels, unacked the
 *     entries handed out with acks outstanding;
 *   - every entry in a level and every unacked entry holds one reference
 *     on its message;
 *   - unacked entries are held by channels (with their own message
 *     references); once a queue is deleted the channels forget them
 *     (dropping the references) and never hand them back to it.
 */
#ifndef WARREN_BROKER_QUEUE_H
#define WARREN_BROKER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/reply.h"
#include "codec/table.h"
#include "codec/wire.h"

struct message;
struct consumer;
struct queue;

enum { QUEUE_F_DURABLE = 1, QUEUE_F_EXCLUSIVE = 2, QUEUE_F_AUTO_DELETE = 4 };
enum queue_overflow { QUEUE_OVERFLOW_DROP_HEAD, QUEUE_OVERFLOW_REJECT_PUBLISH };
/* x-queue-type: only classic behaviour exists; the others are accepted so
 * clients that ask for them keep working (their extra arguments are allowed
 * and ignored). */
enum queue_type { QUEUE_TYPE_CLASSIC, QUEUE_TYPE_QUORUM, QUEUE_TYPE_STREAM };

#define QUEUE_MAX_PRIORITY 255
/* RabbitMQ's ceiling for every TTL-like value (ten years, in ms). */
#define QUEUE_MAX_EXPIRY_MS INT64_C(315360000000)

struct queue_args {                 /* parsed x-arguments; -1 = not set */
	int64_t message_ttl;        /* x-message-ttl, ms */
	int64_t expires;            /* x-expires, ms (>0) */
	int64_t max_length;         /* x-max-length */
	int64_t max_length_bytes;   /* x-max-length-bytes */
	enum queue_overflow overflow; /* x-overflow */
	bool overflow_dlx;          /* reject-publish-dlx: dead-letter the rejected one */
	struct bytes dlx;           /* x-dead-letter-exchange (owned copy; ptr NULL if unset) */
	bool has_dlx;
	struct bytes dlrk;          /* x-dead-letter-routing-key (owned copy) */
	bool has_dlrk;
	int max_priority;           /* x-max-priority 1..255, 0 = not a priority queue */
	bool single_active_consumer; /* x-single-active-consumer */
	enum queue_type type;       /* x-queue-type */
};

/*
 * Parse and validate queue.declare arguments in RabbitMQ 3.10's order; on a
 * bad value fill err with 406 and RabbitMQ's text, e.g. "PRECONDITION_FAILED
 * - invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}",
 * and return -1 (out is then left empty).  Unknown arguments are ignored, as
 * RabbitMQ does; arguments that belong to another queue type are refused
 * ("... of queue type rabbit_classic_queue").  The caller (who knows the
 * flags) still has to refuse quorum/stream queues that are not durable.
 */
int queue_args_parse(struct ftable args, struct bytes qname, const char *vhost_name,
                     struct queue_args *out, struct reply *err);
void queue_args_free(struct queue_args *a);

/* basic.consume arguments: x-priority (any integer type, clamped to int32).
 * *priority is 0 when absent.  406 with RabbitMQ's text on a bad type. */
int queue_consume_args_parse(struct ftable args, struct bytes qname, const char *vhost_name,
                             int32_t *priority, struct reply *err);

/*
 * The Basic expiration property as RabbitMQ reads it: an optional sign and
 * decimal digits, 0..QUEUE_MAX_EXPIRY_MS.  0 with *ttl_ms set, or -1 with
 * err (may be NULL) set to 406 "invalid expiration 'abc': no_integer" and
 * the like.  message_new() refuses messages this rejects; the channel calls
 * it to produce the error text.
 */
int queue_expiration_parse(struct bytes expiration, int64_t *ttl_ms, struct reply *err);

struct queue_hooks {   /* set by the broker glue, called by the queue */
	/* q has messages and a consumer: call queue_dispatch soon */
	void (*schedule)(void *ctx, struct queue *q);
	/* Republish m (its reference now belongs to the callee) to exchange
	 * with routing_key; m already carries the x-death header.  exchange and
	 * routing_key point into m.  Routing should skip target queues for
	 * which queue_dead_letter_is_cycle() is true, as RabbitMQ does.  While
	 * this runs, further dead-lettering from q is dropped: a synchronous
	 * chain that comes back to q is a cycle. */
	void (*dead_letter)(void *ctx, struct queue *q, struct message *m,
	                    struct bytes exchange, struct bytes routing_key);
	/* an auto-delete queue lost its last consumer: the glue deletes it
	 * (q is not touched by the queue after this call) */
	void (*unused)(void *ctx, struct queue *q);
	/* Persistence (optional): m entered the queue (inserted, or handed
	 * straight to a consumer), and m left it for good (acked, dropped,
	 * expired, purged, auto-acked).  Not called while the queue is being
	 * deleted: the glue drops the whole queue from the store then. */
	void (*enqueued)(void *ctx, struct queue *q, struct message *m);
	void (*removed)(void *ctx, struct queue *q, struct message *m);
};

/* One message in the queue or handed to a consumer.  Copied by value: the
 * channel keeps a copy as its unacked record. */
struct queue_entry {
	struct message *msg;   /* one reference */
	uint64_t seq;          /* publish order within the queue */
	int64_t expires_at;    /* now_ms clock; -1 = never */
	uint32_t delivery_count;
	bool redelivered;
};

/* A growable ring of entries sorted by seq: one per priority level. */
struct queue_ring {
	struct queue_entry *buf;
	uint32_t cap;          /* 0 or a power of two */
	uint32_t head;
	uint32_t len;
};

struct queue_cgroup;

struct queue {
	struct bytes name;          /* owned, NUL-terminated copy (name.ptr[name.len] == 0) */
	const char *vhost_name;     /* borrowed from the vhost, for error texts */
	uint32_t flags;             /* QUEUE_F_* */
	void *owner;                /* exclusive owner (a connection), opaque; NULL if not exclusive */
	struct ftable raw_args;     /* owned copy of the declare arguments, for the equivalence check */
	struct queue_args args;
	const struct queue_hooks *hooks;
	void *hooks_ctx;
	void *route_data;           /* reserved for the routing module */
	uint64_t route_mark;        /* reserved for the routing module */
	uint32_t store_id;          /* durable queues: the store's id, 0 until assigned */
	bool glue_scheduled;        /* reserved for the broker glue: lets it drop
	                             * repeated hooks->schedule calls in O(1) */

	/* Private to the queue module. */
	uint32_t sac_holdback;      /* single active consumer: unacked deliveries of a
	                             * consumer that went; the next one waits for them */
	struct queue_ring *levels;  /* max_priority + 1 rings, index = priority */
	struct queue_ring level0;   /* storage for non-priority queues */
	uint64_t level_bits[4];     /* non-empty levels, for the highest one */
	uint32_t ready;
	uint64_t ready_bytes;
	uint32_t unacked;
	uint64_t next_seq;
	struct queue_cgroup *groups; /* by priority, highest first */
	struct consumer *reg_head, *reg_tail; /* consumers, oldest first */
	uint32_t nconsumers;
	bool has_exclusive_consumer;
	bool had_consumer;          /* auto-delete only after a first consumer */
	bool deleting;              /* inside queue_delete: hand-backs drop */
	uint32_t dl_depth;          /* dead-letter hook calls in progress */
	int64_t clock_ms;           /* latest now_ms seen, -1 before any */
	int64_t last_used_ms;       /* for x-expires, -1 before any use */
};

/* Create a queue.  name and raw_args are copied; *args is moved into q (the
 * caller must not free it).  hooks may be NULL (nothing is called). */
struct queue *queue_new(struct bytes name, const char *vhost_name, uint32_t flags,
                        struct ftable raw_args, const struct queue_args *args,
                        const struct queue_hooks *hooks, void *hooks_ctx);
/*
 * Delete: drop ready messages (not dead-lettered, like RabbitMQ), detach and
 * server-cancel every consumer (consumer->ops->cancelled), and free q.
 * Unacked entries held by channels stay valid (they hold their own message
 * references) but must not be given back to q afterwards: the channel layer
 * forgets them.  Inside the cancelled() callbacks q is still alive, and
 * settles and requeues made there are accepted (requeued messages are
 * dropped).  Returns the ready count dropped.
 */
uint32_t queue_delete(struct queue *q);

uint32_t queue_message_count(const struct queue *q);   /* ready messages */
uint32_t queue_consumer_count(const struct queue *q);
uint32_t queue_unacked_count(const struct queue *q);
uint64_t queue_ready_bytes(const struct queue *q);      /* body bytes of ready messages */
uint32_t queue_purge(struct queue *q);
/* Recovery: append m (the queue takes a reference) as it was before a
 * restart, without the enqueued hook; redelivered marks a message that had
 * been delivered and not acked. */
void queue_restore(struct queue *q, struct message *m, bool redelivered, int64_t now_ms);                 /* drops ready messages, returns how many */

enum { QUEUE_PUBLISH_OK = 0, QUEUE_PUBLISH_REJECTED = 1 };
/*
 * Enqueue m (the queue takes its own reference).  QUEUE_PUBLISH_REJECTED when
 * x-overflow is reject-publish(-dlx) and the queue is full: the publisher
 * gets a nack.  When the message would otherwise be dropped at once (TTL 0,
 * or a limit of 0) and the queue is empty, it goes straight to a ready
 * consumer from inside this call, as RabbitMQ delivers it; otherwise
 * delivery waits for queue_dispatch (hooks->schedule is called).
 */
int queue_publish(struct queue *q, struct message *m, int64_t now_ms);

/*
 * Deliver up to budget ready messages: highest x-priority consumers first,
 * round-robin among equals, skipping consumers that are not ready (lower
 * priorities get messages while the higher ones are all busy); with
 * single-active-consumer only the oldest consumer gets any.  Expired
 * messages at the head are dropped (dead-lettered) first.  Returns the
 * number delivered; calls hooks->schedule again when it stopped at the
 * budget with work left.
 */
size_t queue_dispatch(struct queue *q, int64_t now_ms, size_t budget);
/* A consumer may have become ready (ack, qos, flow, output drained):
 * schedule a dispatch if there is work. */
void queue_kick(struct queue *q);

/*
 * Attach c (c->ops, tag, priority, exclusive, no_ack and owner set by the
 * caller).  403 "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use"
 * when c is exclusive and the queue has consumers (or is a single-active-
 * consumer queue), or when an exclusive consumer holds the queue.
 */
int queue_consumer_add(struct queue *q, struct consumer *c, struct reply *err);
/*
 * Detach c (basic.cancel, channel close).  The channel requeues c's unacked
 * entries itself.  An auto-delete queue that loses its last consumer calls
 * hooks->unused last thing (the glue may delete q from there).  For
 * x-expires, call queue_touch() afterwards so the idle time starts now.
 */
void queue_consumer_remove(struct queue *q, struct consumer *c);

/* basic.get: 1 and *out filled (the caller owns out->msg's reference; with
 * no_ack the queue has already settled it), 0 when empty.  Expired messages
 * are never returned. */
int queue_get(struct queue *q, int64_t now_ms, bool no_ack, struct queue_entry *out);

/* Ack: drop the entry's reference. */
void queue_settle(struct queue *q, struct queue_entry *e);
/* Nack/reject with requeue, channel close, basic.recover: back to the ready
 * messages at its original position, marked redelivered. */
void queue_requeue(struct queue *q, struct queue_entry *e);
/* Many at once (e.g. all of a channel's unacked): sorts es[] by seq, then
 * requeues; O(1) per entry when they all precede the ready messages. */
void queue_requeue_many(struct queue *q, struct queue_entry *es, size_t n);
/* Nack/reject without requeue: dead-letter ("rejected") when the queue has a
 * dead-letter exchange, then settle. */
void queue_reject(struct queue *q, struct queue_entry *e);

/* Drop (dead-letter) the expired messages at the head of each level. */
void queue_expire(struct queue *q, int64_t now_ms);
/* When the earliest head message expires (now_ms clock), -1 if none: the
 * glue arms a timer for it after publish, requeue and dispatch. */
int64_t queue_next_expiry(const struct queue *q);

/*
 * x-expires: a queue expires after being unused for args.expires ms, where
 * unused means no consumers and no basic.get or redeclare.  queue_touch()
 * records a use: the glue calls it after every queue.declare of the queue
 * (new or redeclared, passive too) and after basic.cancel; queue_get()
 * records one itself.  queue_idle_since() is -1 while a consumer is
 * attached or before the first use, else the time of the last use;
 * queue_expires_at() adds args.expires (-1 without x-expires, while in
 * use, or before the first queue_touch).
 */
void queue_touch(struct queue *q, int64_t now_ms);
int64_t queue_idle_since(const struct queue *q);
int64_t queue_expires_at(const struct queue *q);

/* Dead-lettering, in queue_deadletter.c. */
enum queue_dl_reason { QUEUE_DL_REJECTED, QUEUE_DL_EXPIRED, QUEUE_DL_MAXLEN };
const char *queue_dl_reason_name(enum queue_dl_reason r);
/*
 * The copy of m that a dead-letter exchange receives, as RabbitMQ builds it:
 * x-death updated (an entry per queue and reason, most recent first, count
 * incremented on repeats), x-first-death-* set on the first death, the
 * expiration property moved into x-death as original-expiration, the CC
 * header dropped when dlrk is given; the headers table sorted by key.  The
 * new message's exchange is dlx and its routing key dlrk (or m's).
 * time_sec is the wall-clock time for the "time" field.  NULL if m's
 * properties cannot be decoded.
 */
struct message *queue_dead_letter_message(const struct message *m, enum queue_dl_reason reason,
                                          struct bytes queue_name, struct bytes dlx,
                                          const struct bytes *dlrk, int64_t time_sec);
/*
 * RabbitMQ's cycle rule: a dead-lettered message must not be routed to a
 * queue it already died in unless a rejection happened since.  True when
 * target appears in m's x-death history with no "rejected" entry up to and
 * including that occurrence.
 */
bool queue_dead_letter_is_cycle(const struct message *m, struct bytes target);

#endif
