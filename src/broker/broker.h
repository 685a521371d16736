/*
 * The one top-level object.  Every piece of mutable state in the daemon hangs
 * off struct broker (no globals), and only the event-loop thread touches it.
 */
#ifndef WARREN_BROKER_BROKER_H
#define WARREN_BROKER_BROKER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/exchange.h"
#include "codec/wire.h"
#include "net/outq.h"
#include "store/store.h"
#include "util/hmap.h"
#include "util/log.h"

struct vhost;
struct queue;
struct conn;
struct listener;
struct queue_hooks;
struct users;
struct message;
struct tls;

#define BROKER_MAX_LISTENERS 16

struct broker_config {
	const char *listen[BROKER_MAX_LISTENERS];
	int nlisten;
	const char *data_dir;
	const char *config_file;
	const char *pid_file;        /* relative to data_dir unless absolute */
	const char *admin_socket;    /* relative to data_dir unless absolute */
	const char *log_file;        /* "stderr", "syslog" or a path */
	uint16_t channel_max;        /* offered in connection.tune */
	uint32_t frame_max;          /* offered in connection.tune */
	uint16_t heartbeat;          /* seconds, offered in connection.tune */
	double handshake_timeout;    /* seconds to reach connection.open-ok */
	enum store_sync store_sync;  /* when a persistent message counts as safe */
	uint64_t max_message_size;   /* bytes */
	uint32_t max_connections;    /* 0 = unlimited */
	uint32_t max_connections_per_user;  /* open connections per user; 0 = unlimited */
	uint32_t max_connections_per_vhost; /* open connections per vhost; 0 = unlimited */
	uint32_t max_queues_per_vhost;      /* 0 = unlimited */
	size_t conn_output_limit;    /* stop delivering/reading past this many queued bytes */
	double vm_memory_high_watermark; /* fraction of RAM */
	uint64_t disk_free_limit;    /* bytes */
	/* TLS listeners (amqps); none unless configured.  Strings that are
	 * optional hold a sentinel ("none", "default") rather than NULL so the
	 * configuration dump reads back. */
	const char *tls_listen[BROKER_MAX_LISTENERS];
	int tls_nlisten;
	const char *tls_cert;        /* PEM file, or "none" */
	const char *tls_key;         /* PEM file, or "none": the key is in tls_cert */
	const char *tls_ca;          /* PEM CA bundle for client certificates, or "none" */
	const char *tls_ciphers;     /* TLS 1.2 cipher list, or "default" */
	const char *tls_ciphersuites; /* TLS 1.3 suites, or "default" */
	const char *tls_min_version; /* "TLSv1.2" or "TLSv1.3" */
	bool tls_verify_peer;        /* ask for and verify client certificates */
	bool tls_fail_if_no_peer_cert; /* refuse TLS clients without a certificate */
	const char *run_as_user;     /* account to switch to after binding; NULL or "none": stay */
	const char *metrics_listen;  /* Prometheus endpoint HOST:PORT, or "none" */
};

void broker_config_defaults(struct broker_config *cfg);

/* Queues waiting for queue_dispatch, linked through a small ring. */
struct broker_pending {
	struct queue **q;
	size_t n, cap;
};

/* Auto-delete queues to delete before the loop sleeps (by name). */
struct broker_doomed {
	struct broker_doomed *next;
	struct vhost *vhost;
	size_t len;
	char name[];
};

struct broker {
	struct ev_loop *loop;
	struct broker_config cfg;
	struct log log;
	struct vhost **vhosts;
	size_t nvhosts;
	struct outq_pool outq_pool;
	struct listener *listeners[2 * BROKER_MAX_LISTENERS]; /* plain and TLS */
	int nlisteners;
	struct tls *tls;          /* server TLS context, NULL without TLS listeners */
	struct conn *conns; /* doubly linked list of live connections */
	struct conn *conns_dirty; /* connections with output to flush */
	struct conn *conns_dead;  /* destroyed, freed before sleeping */
	struct conn *conns_pending; /* TLS input buffered where the loop cannot see it */
	ev_idle pending_idle;     /* keeps the loop from blocking while that list is non-empty */
	uint8_t *server_props;    /* encoded connection.start server-properties */
	size_t server_props_len;
	uint32_t nconns;
	uint8_t *scratch;   /* shared read buffer: frames are parsed in place */
	size_t scratch_cap;
	struct broker_pending pending; /* scheduled for the next pass */
	struct broker_pending running; /* being dispatched in this pass */
	struct broker_doomed *doomed;
	/* Reused by every publish so routing allocates nothing in the steady
	 * state (dead-lettering, which can run inside a publish, uses its own). */
	struct route_result route;
	struct hmap reply_to; /* direct reply-to address -> channel */
	struct users *users;  /* accounts, tags and permissions */
	/* channels owing confirms or commit-oks (channel_confirm.c) */
	struct channel **confirm_chans;
	size_t nconfirm, capconfirm;
	struct store *store;    /* NULL: nothing persists (unit tests) */
	uint32_t next_store_queue_id;
	uint64_t publish_ticket; /* highest store ticket of the publish being routed */
	bool defs_dirty;        /* durable definitions changed behind a client's back */
	bool loading;           /* restoring definitions: do not save them */
	char *defs_saved;       /* the last definitions document written */
	size_t defs_saved_len;
	uint64_t store_durable; /* every store ticket <= this is on disk */
	uint64_t store_failed;  /* tickets <= this whose write failed */
	uint64_t next_message_id;
	/* totals since start, for status and metrics */
	uint64_t stat_published;  /* complete messages received from publishers */
	uint64_t stat_delivered;  /* basic.deliver and basic.get-ok sent */
	uint64_t stat_acked;      /* deliveries acknowledged by clients */
	uint64_t next_conn_id;
	uint64_t next_tag_id;
	uint64_t memory_limit;    /* bytes of message data before publishers block */
	bool memory_alarm;
	bool disk_alarm;
	bool stopping;
	ev_signal sig_term, sig_int, sig_hup;
	ev_prepare before_sleep;
	ev_timer tick;
	ev_timer expiry;          /* earliest message TTL expiry (broker_expiry_hint) */
	int64_t expiry_at;        /* when it fires, ms; -1 = idle */
	ev_tstamp stop_deadline;
	int exit_code;
};

int broker_init(struct broker *b, const struct broker_config *cfg);
/* Open listeners; returns -1 (logged) if one cannot be bound. */
int broker_listen(struct broker *b);
void broker_run(struct broker *b);
void broker_free(struct broker *b);

/* A new vhost wired to the broker (queue removal notifications). */
struct vhost *broker_vhost_new(struct broker *b, const char *name);
/* Add a vhost (returns the existing one if present); delete one, closing its
 * connections (-1 if there is no such vhost). */
struct vhost *broker_vhost_add(struct broker *b, const char *name);
int broker_vhost_delete(struct broker *b, const char *name);
struct vhost *broker_vhost_find(struct broker *b, const char *name, size_t len);
/* Ask for queue_dispatch(q) before the loop next sleeps. */
void broker_schedule_queue(struct broker *b, struct queue *q);
void broker_unschedule_queue(struct broker *b, struct queue *q);
/* Hooks queues use to reach the broker (dispatch, dead-lettering, auto-delete). */
const struct queue_hooks *broker_queue_hooks(void);
/* A queue is about to be deleted: drop it from the dispatch list. */
void broker_forget_queue(struct broker *b, struct queue *q);
/* Begin graceful shutdown: close listeners, close clients with 320. */
void broker_stop(struct broker *b);
uint64_t broker_rss(void);
/* Persistence (broker_store.c). */
int broker_store_open(struct broker *b, enum store_sync sync, char *err, size_t errcap);
void broker_store_close(struct broker *b);
int broker_defs_save(struct broker *b, char *err, size_t errcap);
/* Definitions changed outside a channel (warrenctl): save before sleeping. */
void broker_defs_changed(void *b);
uint32_t broker_queue_store_id(struct broker *b, struct queue *q);
void broker_persist_enqueued(void *ctx, struct queue *q, struct message *m);
void broker_persist_removed(void *ctx, struct queue *q, struct message *m);
void broker_persist_delivered(struct broker *b, struct queue *q, const struct message *m);
void broker_persist_queue_gone(struct broker *b, struct queue *q);
/* Raise or clear the free-disk alarm (also raised by store write errors). */
void broker_disk_alarm(struct broker *b, bool on);
/* A queue holds a message that expires at at_ms: make sure the expiry
 * timer fires by then. */
void broker_expiry_hint(struct broker *b, int64_t at_ms);
/* Send the confirms and commit-oks whose store tickets are durable. */
void broker_release_replies(struct broker *b);
/* Routing keys from a CC or BCC header (an array of longstr) into keys[]. */
#define BROKER_MAX_ROUTING_KEYS 64
size_t broker_header_keys(struct ftable headers, const char *key, struct bytes *keys, size_t cap);
/* Monotonic milliseconds from the loop's clock. */
int64_t broker_now_ms(struct broker *b);

#endif
