/*
 * The broker object: loop, signals, listeners, vhosts, and the before-sleep
 * hook that runs pending queue dispatch and then flushes connection output
 * (durable work first, replies last, as in Redis's beforeSleep).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/channel.h"
#include "broker/exchange.h"
#include "broker/message.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "codec/gen_methods.h"
#include "codec/table.h"
#include "config.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/tls.h"
#include "auth/users.h"
#include "util/config.h"
#include "util/xalloc.h"

#define BROKER_SCRATCH (64 * 1024 + 16)
#define BROKER_DISPATCH_BUDGET 256 /* deliveries per queue per loop pass */
#define BROKER_STOP_GRACE 2.0

void broker_config_defaults(struct broker_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->data_dir = "./var";
	cfg->pid_file = "warrend.pid";
	cfg->admin_socket = "warrend.sock";
	cfg->log_file = "stderr";
	cfg->channel_max = 2047;
	cfg->frame_max = 131072;
	cfg->heartbeat = 60;
	cfg->handshake_timeout = 10.0;
	cfg->max_message_size = 128u * 1024 * 1024;
	cfg->max_connections = 0;
	cfg->conn_output_limit = 1024 * 1024;
	cfg->vm_memory_high_watermark = 0.4;
	cfg->disk_free_limit = 50u * 1000 * 1000;
	cfg->tls_cert = "none";
	cfg->tls_key = "none";
	cfg->tls_ca = "none";
	cfg->tls_ciphers = "default";
	cfg->tls_ciphersuites = "default";
	cfg->tls_min_version = "TLSv1.2";
	cfg->metrics_listen = "none";
}

static void broker_build_server_props(struct broker *b)
{
	struct ftable_builder caps, props;
	ftable_builder_init(&caps);
	static const char *const cap_names[] = {
		"publisher_confirms", "exchange_exchange_bindings", "basic.nack",
		"consumer_cancel_notify", "connection.blocked", "consumer_priorities",
		"authentication_failure_close", "per_consumer_qos", "direct_reply_to",
	};
	for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
		ftable_put_bool(&caps, cap_names[i], true);
	ftable_builder_init(&props);
	ftable_put_table(&props, "capabilities", ftable_builder_get(&caps));
	ftable_put_str(&props, "cluster_name", bytes_of("warren"));
	ftable_put_str(&props, "copyright", bytes_of("Copyright (c) 2026 The Warren authors"));
	ftable_put_str(&props, "information", bytes_of("Licensed under the MIT licence"));
	ftable_put_str(&props, "platform", bytes_of("C11/Linux"));
	ftable_put_str(&props, "product", bytes_of("Warren"));
	ftable_put_str(&props, "version", bytes_of(PACKAGE_VERSION));
	struct ftable t = ftable_builder_get(&props);
	b->server_props = xmemdup(t.ptr, t.len);
	b->server_props_len = t.len;
	ftable_builder_free(&props);
	ftable_builder_free(&caps);
}

int64_t broker_now_ms(struct broker *b)
{
	return (int64_t)(ev_now(b->loop) * 1000.0);
}

void broker_schedule_queue(struct broker *b, struct queue *q)
{
	struct broker_pending *p = &b->pending;
	if (q->glue_scheduled)
		return;
	q->glue_scheduled = true;
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->q = xrealloc(p->q, p->cap * sizeof(*p->q));
	}
	p->q[p->n++] = q;
}

void broker_unschedule_queue(struct broker *b, struct queue *q)
{
	struct broker_pending *p = &b->pending;
	if (!q->glue_scheduled)
		return;
	for (size_t i = 0; i < p->n; i++)
		if (p->q[i] == q)
			p->q[i] = NULL;
	for (size_t i = 0; i < b->running.n; i++)
		if (b->running.q[i] == q)
			b->running.q[i] = NULL;
	q->glue_scheduled = false;
}

/* ---- queue hooks ----------------------------------------------------- */

void broker_forget_queue(struct broker *b, struct queue *q)
{
	broker_unschedule_queue(b, q);
	for (struct conn *c = b->conns; c; c = c->next)
		for (uint16_t i = 0; i < c->nchans; i++)
			channel_forget_queue(c->chans[i].ch, q);
}

static void broker_queue_gone(void *ctx, struct queue *q)
{
	broker_forget_queue(ctx, q);
	broker_persist_queue_gone(ctx, q);
}

struct vhost *broker_vhost_new(struct broker *b, const char *name)
{
	struct vhost *vh = vhost_new(b, name);
	vh->queue_gone = broker_queue_gone;
	vh->queue_gone_ctx = b;
	return vh;
}

static void hook_schedule(void *ctx, struct queue *q)
{
	broker_schedule_queue(ctx, q);
}

static void hook_dead_letter(void *ctx, struct queue *q, struct message *m,
                             struct bytes exchange, struct bytes routing_key)
{
	struct broker *b = ctx;
	struct vhost *vh = broker_vhost_find(b, q->vhost_name, strlen(q->vhost_name));
	struct exchange *x = vh ? vhost_exchange_find(vh, exchange) : NULL;
	m->id = ++b->next_message_id; /* a new message: the store writes it anew */
	if (x) {
		struct codec_basic_props p;
		struct rd r = rd_init(m->props.ptr, m->props.len);
		struct ftable headers = { NULL, 0 };
		if (codec_decode_basic_props(&r, &p) == CODEC_OK && (p.flags & CODEC_BASIC_HEADERS_FLAG))
			headers = p.headers;
		/* the routing key plus CC keys (the CC header is gone when a
		 * dead-letter routing key replaced the key) */
		struct bytes keys[BROKER_MAX_ROUTING_KEYS];
		size_t nkeys = 1;
		keys[0] = routing_key;
		nkeys += broker_header_keys(headers, "CC", keys + 1, BROKER_MAX_ROUTING_KEYS - 1);
		struct route_result rr;
		route_result_init(&rr);
		exchange_route(vh, x, keys, nkeys, headers, &rr);
		int64_t now = broker_now_ms(b);
		for (size_t i = 0; i < rr.n; i++) {
			/* RabbitMQ drops a dead letter that would cycle back without
			 * a rejection on the way */
			if (queue_dead_letter_is_cycle(m, rr.queues[i]->name))
				continue;
			queue_publish(rr.queues[i], m, now);
			int64_t at = queue_next_expiry(rr.queues[i]);
			if (at >= 0)
				broker_expiry_hint(b, at);
		}
		route_result_free(&rr);
	}
	message_unref(m);
}

size_t broker_header_keys(struct ftable headers, const char *key, struct bytes *keys, size_t cap)
{
	struct fvalue v;
	size_t n = 0;
	if (ftable_get(headers, key, &v) != 1 || v.type != 'A')
		return 0;
	struct ftable_iter it;
	ftable_iter_init(&it, v.v.array);
	struct fvalue e;
	while (n < cap && farray_next(&it, &e) == 1)
		if (e.type == 'S')
			keys[n++] = e.v.str;
	return n;
}

/*
 * An auto-delete queue lost its last consumer.  The queue is inside its own
 * code here, so deletion waits for the before-sleep hook; by then it is
 * looked up by name again, since it may have gone (or come back) meanwhile.
 */
static void hook_unused(void *ctx, struct queue *q)
{
	struct broker *b = ctx;
	struct broker_doomed *d = xmalloc(sizeof(*d) + q->name.len + 1);
	d->vhost = broker_vhost_find(b, q->vhost_name, strlen(q->vhost_name));
	d->len = q->name.len;
	memcpy(d->name, q->name.ptr, q->name.len + 1);
	d->next = b->doomed;
	b->doomed = d;
}

static void broker_delete_doomed(struct broker *b)
{
	while (b->doomed) {
		struct broker_doomed *d = b->doomed;
		b->doomed = d->next;
		struct bytes name = { (const uint8_t *)d->name, d->len };
		struct queue *q = d->vhost ? vhost_queue_find(d->vhost, name) : NULL;
		if (q && (q->flags & QUEUE_F_AUTO_DELETE) && queue_consumer_count(q) == 0) {
			vhost_queue_remove(d->vhost, q);
		}
		free(d);
	}
}

static const struct queue_hooks broker_hooks = {
	.schedule = hook_schedule,
	.dead_letter = hook_dead_letter,
	.unused = hook_unused,
	.enqueued = broker_persist_enqueued,
	.removed = broker_persist_removed,
};

const struct queue_hooks *broker_queue_hooks(void)
{
	return &broker_hooks;
}

static void broker_run_pending(struct broker *b)
{
	/* Queues scheduled while dispatching wait for the next pass, which keeps
	 * one busy queue from starving sockets and timers.  The two lists swap
	 * roles so steady-state dispatch allocates nothing. */
	struct broker_pending tmp = b->running;
	b->running = b->pending;
	b->pending = tmp;
	b->pending.n = 0;
	int64_t now = broker_now_ms(b);
	for (size_t i = 0; i < b->running.n; i++) {
		struct queue *q = b->running.q[i];
		if (!q)
			continue;
		q->glue_scheduled = false;
		queue_dispatch(q, now, BROKER_DISPATCH_BUDGET);
	}
	b->running.n = 0;
}

static void broker_pending_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)revents;
	/* its only job was to make this loop pass not block */
	ev_idle_stop(loop, w);
}

static void broker_before_sleep(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct broker *b = (struct broker *)((char *)w - offsetof(struct broker, before_sleep));
	(void)revents;
	/* TLS input first: it can publish, so it precedes dispatch and flush */
	conn_drain_pending(b);
	broker_run_pending(b);
	broker_delete_doomed(b);
	if (b->defs_dirty) {
		char err[256];
		if (broker_defs_save(b, err, sizeof(err)) != 0)
			log_error(&b->log, "saving definitions: %s", err);
	}
	if (b->store)
		store_kick(b->store);
	broker_release_replies(b);
	conn_flush_dirty(b);
	conn_reap(b);
	/* Connections still holding decrypted input, or queues scheduled during
	 * the flush (a consumer's output drained): poll without sleeping and come
	 * back here, since no socket event would wake us for them. */
	if ((b->conns_pending || b->pending.n > 0) && !ev_is_active(&b->pending_idle))
		ev_idle_start(loop, &b->pending_idle);
	if (b->stopping && (b->nconns == 0 || ev_now(b->loop) >= b->stop_deadline))
		ev_break(b->loop, EVBREAK_ALL);
}

/* Resident set size from /proc: what the memory watermark is measured against. */
uint64_t broker_rss(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, rss = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGE_SIZE);
}

static void broker_set_alarm(struct broker *b, bool *flag, bool on, const char *what)
{
	if (*flag == on)
		return;
	*flag = on;
	if (on)
		log_warning(&b->log, "%s alarm set: publishers are blocked", what);
	else
		log_info(&b->log, "%s alarm cleared", what);
	bool any = b->memory_alarm || b->disk_alarm;
	for (struct conn *c = b->conns; c; c = c->next)
		conn_alarm_changed(c, any);
}

/*
 * Message TTLs.  The 1 s tick would let a message outlive a short TTL by up
 * to a second; this timer fires at the earliest expiry any queue has, so
 * messages expire (and dead-letter) on time, as in RabbitMQ.  It runs only
 * while some queue holds a message with a TTL.
 */
static void broker_expire_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = (struct broker *)((char *)w - offsetof(struct broker, expiry));
	(void)loop;
	(void)revents;
	int64_t now = broker_now_ms(b);
	int64_t next = -1;
	for (size_t i = 0; i < b->nvhosts; i++) {
		size_t it = 0;
		struct bytes key;
		void *val;
		while (hmap_next(&b->vhosts[i]->queues, &it, &key, &val)) {
			struct queue *q = val;
			int64_t at = queue_next_expiry(q);
			if (at >= 0 && at <= now) {
				queue_expire(q, now);
				at = queue_next_expiry(q);
			}
			if (at >= 0 && (next < 0 || at < next))
				next = at;
		}
	}
	b->expiry_at = -1;
	if (next >= 0)
		broker_expiry_hint(b, next);
}

void broker_expiry_hint(struct broker *b, int64_t at_ms)
{
	if (b->expiry_at >= 0 && b->expiry_at <= at_ms)
		return;
	b->expiry_at = at_ms;
	double delay = (double)(at_ms - broker_now_ms(b)) / 1000.0;
	ev_timer_stop(b->loop, &b->expiry);
	ev_timer_set(&b->expiry, delay > 0 ? delay + 0.001 : 0.001, 0.);
	ev_timer_start(b->loop, &b->expiry);
}

void broker_disk_alarm(struct broker *b, bool on)
{
	broker_set_alarm(b, &b->disk_alarm, on, "disk");
}

static void broker_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = (struct broker *)((char *)w - offsetof(struct broker, tick));
	(void)loop;
	(void)revents;
	broker_set_alarm(b, &b->memory_alarm, broker_rss() > b->memory_limit, "memory");
	if (b->store)
		store_compact_maybe(b->store);
	struct statvfs sv;
	if (b->cfg.disk_free_limit && statvfs(b->cfg.data_dir, &sv) == 0) {
		uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
		broker_set_alarm(b, &b->disk_alarm, avail < b->cfg.disk_free_limit, "disk");
	}
	int64_t now = broker_now_ms(b);
	for (size_t i = 0; i < b->nvhosts; i++)
		vhost_tick(b->vhosts[i], now);
	if (b->stopping && ev_now(b->loop) >= b->stop_deadline)
		ev_break(b->loop, EVBREAK_ALL);
}

static uint64_t broker_total_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long psize = sysconf(_SC_PAGE_SIZE);
	if (pages <= 0 || psize <= 0)
		return (uint64_t)1 << 30;
	return (uint64_t)pages * (uint64_t)psize;
}

/*
 * SIGHUP: reopen the log file (logrotate), re-read the TLS certificate, key
 * and CA files into a fresh context for new connections (renewed
 * certificates without a restart), and re-read what can change at run time
 * (the log level) from the configuration file.
 */
static void broker_reload(struct broker *b)
{
	if (log_reopen(&b->log) != 0)
		log_error(&b->log, "SIGHUP: cannot reopen the log file: %s", strerror(errno));
	if (b->tls) {
		char terr[512];
		if (tls_reload(b->tls, terr, sizeof(terr)) != 0)
			log_error(&b->log, "SIGHUP: %s (keeping the current TLS certificate)", terr);
		else
			log_info(&b->log, "SIGHUP: TLS certificate, key and CA reloaded");
	}
	if (!b->cfg.config_file) {
		log_info(&b->log, "SIGHUP: log reopened");
		return;
	}
	struct config_store st;
	struct broker_config cfg = b->cfg;
	int level = (int)b->log.level;
	char err[512];
	config_store_init(&st);
	if (config_load(&st, b->cfg.config_file, &cfg, &level, err, sizeof(err)) != 0) {
		log_error(&b->log, "SIGHUP: %s (keeping the current settings)", err);
	} else {
		b->log.level = (enum log_level)level;
		/* Limits apply from now on; what already exists is not cut back
		 * (connections over a lowered limit stay open, as in RabbitMQ). */
		b->cfg.max_connections = cfg.max_connections;
		b->cfg.max_connections_per_user = cfg.max_connections_per_user;
		b->cfg.max_connections_per_vhost = cfg.max_connections_per_vhost;
		b->cfg.max_queues_per_vhost = cfg.max_queues_per_vhost;
		for (size_t i = 0; i < b->nvhosts; i++)
			b->vhosts[i]->max_queues = cfg.max_queues_per_vhost;
		b->cfg.max_message_size = cfg.max_message_size;
		b->cfg.conn_output_limit = cfg.conn_output_limit;
		b->cfg.vm_memory_high_watermark = cfg.vm_memory_high_watermark;
		b->memory_limit = (uint64_t)((double)broker_total_ram() * cfg.vm_memory_high_watermark);
		b->cfg.disk_free_limit = cfg.disk_free_limit;
		log_info(&b->log, "SIGHUP: reloaded %s (log level %s, limits and watermarks)",
		         b->cfg.config_file, log_level_name(b->log.level));
	}
	config_store_free(&st);
}

static void broker_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct broker *b = w->data;
	(void)loop;
	(void)revents;
	if (w->signum == SIGHUP) {
		broker_reload(b);
		return;
	}
	log_info(&b->log, "%s: shutting down", w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
	broker_stop(b);
}

struct vhost *broker_vhost_find(struct broker *b, const char *name, size_t len)
{
	for (size_t i = 0; i < b->nvhosts; i++) {
		const char *vn = vhost_name(b->vhosts[i]);
		if (strlen(vn) == len && memcmp(vn, name, len) == 0)
			return b->vhosts[i];
	}
	return NULL;
}

struct vhost *broker_vhost_add(struct broker *b, const char *name)
{
	struct vhost *vh = broker_vhost_find(b, name, strlen(name));
	if (vh)
		return vh;
	b->vhosts = xrealloc(b->vhosts, (b->nvhosts + 1) * sizeof(*b->vhosts));
	vh = broker_vhost_new(b, name);
	b->vhosts[b->nvhosts++] = vh;
	return vh;
}

int broker_vhost_delete(struct broker *b, const char *name)
{
	struct vhost *vh = broker_vhost_find(b, name, strlen(name));
	if (!vh)
		return -1;
	/* Connections on the vhost go first (RabbitMQ closes them with 320). */
	for (struct conn *c = b->conns, *next; c; c = next) {
		next = c->next;
		if (c->vhost != vh)
			continue;
		if (c->st == CONN_ST_OPEN) {
			/* close frees the channels; the vhost's queues go with it below */
			conn_close(c, CODEC_CONNECTION_FORCED, "CONNECTION_FORCED - vhost deleted", 0);
			c->vhost = NULL;
		} else {
			conn_destroy(c, "vhost deleted");
		}
	}
	for (size_t i = 0; i < b->nvhosts; i++) {
		if (b->vhosts[i] == vh) {
			b->vhosts[i] = b->vhosts[--b->nvhosts];
			break;
		}
	}
	vhost_free(vh);
	return 0;
}


int broker_init(struct broker *b, const struct broker_config *cfg)
{
	memset(b, 0, sizeof(*b));
	b->cfg = *cfg;
	log_init(&b->log);
	b->loop = ev_default_loop(EVFLAG_AUTO);
	if (!b->loop)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	outq_pool_init(&b->outq_pool, 256);
	b->scratch_cap = BROKER_SCRATCH;
	b->scratch = xmalloc(b->scratch_cap);
	b->memory_limit = (uint64_t)((double)broker_total_ram() * cfg->vm_memory_high_watermark);
	broker_build_server_props(b);
	route_result_init(&b->route);
	hmap_init(&b->reply_to);
	b->users = users_new();
	users_add_default(b->users);
	b->vhosts = xmalloc(sizeof(*b->vhosts));
	b->vhosts[0] = broker_vhost_new(b, "/");
	b->nvhosts = 1;

	ev_signal_init(&b->sig_term, broker_signal, SIGTERM);
	ev_signal_init(&b->sig_int, broker_signal, SIGINT);
	ev_signal_init(&b->sig_hup, broker_signal, SIGHUP);
	b->sig_term.data = b->sig_int.data = b->sig_hup.data = b;
	ev_signal_start(b->loop, &b->sig_term);
	ev_signal_start(b->loop, &b->sig_int);
	ev_signal_start(b->loop, &b->sig_hup);
	ev_prepare_init(&b->before_sleep, broker_before_sleep);
	ev_prepare_start(b->loop, &b->before_sleep);
	ev_idle_init(&b->pending_idle, broker_pending_idle);
	ev_timer_init(&b->tick, broker_tick, 1.0, 1.0);
	ev_timer_init(&b->expiry, broker_expire_cb, 1.0, 0.);
	b->expiry_at = -1;
	ev_timer_start(b->loop, &b->tick);
	/* the tick must not keep a stopping loop alive on its own */
	return 0;
}

/* A configured string, or NULL for its "not set" sentinel. */
static const char *broker_opt(const char *s, const char *unset)
{
	return s && strcmp(s, unset) != 0 ? s : NULL;
}

int broker_listen(struct broker *b)
{
	const struct broker_config *cfg = &b->cfg;
	/* TLS settings first: a bad certificate binds nothing */
	if (cfg->tls_nlisten > 0 && !b->tls) {
		struct tls_settings ts = {
			.cert = broker_opt(cfg->tls_cert, "none"),
			.key = broker_opt(cfg->tls_key, "none"),
			.ca = broker_opt(cfg->tls_ca, "none"),
			.ciphers = broker_opt(cfg->tls_ciphers, "default"),
			.ciphersuites = broker_opt(cfg->tls_ciphersuites, "default"),
			.min_version = cfg->tls_min_version,
			.verify_peer = cfg->tls_verify_peer,
			.fail_if_no_peer_cert = cfg->tls_fail_if_no_peer_cert,
		};
		char err[512];
		if (!(b->tls = tls_new(&ts, err, sizeof(err)))) {
			log_error(&b->log, "%s", err);
			return -1;
		}
	}
	for (int i = 0; i < cfg->nlisten + cfg->tls_nlisten; i++) {
		bool tls = i >= cfg->nlisten;
		const char *spec = tls ? cfg->tls_listen[i - cfg->nlisten] : cfg->listen[i];
		struct listener *l = listener_open(b, spec, tls);
		if (!l)
			return -1;
		b->listeners[b->nlisteners++] = l;
	}
	return 0;
}

void broker_stop(struct broker *b)
{
	if (b->stopping)
		return;
	b->stopping = true;
	b->stop_deadline = ev_now(b->loop) + BROKER_STOP_GRACE;
	for (int i = 0; i < b->nlisteners; i++)
		listener_close(b->listeners[i]);
	b->nlisteners = 0;
	for (struct conn *c = b->conns, *next; c; c = next) {
		next = c->next;
		if (c->st == CONN_ST_OPEN)
			conn_close(c, CODEC_CONNECTION_FORCED,
			           "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'",
			           0);
		else
			conn_destroy(c, "broker shutting down");
	}
	ev_feed_event(b->loop, &b->tick, EV_TIMER);
}

void broker_run(struct broker *b)
{
	ev_run(b->loop, 0);
}

void broker_free(struct broker *b)
{
	while (b->conns)
		conn_destroy(b->conns, NULL);
	conn_reap(b);
	broker_delete_doomed(b);
	/* before the vhosts: freeing them must not drop durable queues */
	broker_store_close(b);
	for (int i = 0; i < b->nlisteners; i++)
		listener_close(b->listeners[i]);
	ev_idle_stop(b->loop, &b->pending_idle);
	tls_free(b->tls);
	b->tls = NULL;
	for (size_t i = 0; i < b->nvhosts; i++)
		vhost_free(b->vhosts[i]);
	free(b->vhosts);
	free(b->pending.q);
	free(b->running.q);
	route_result_free(&b->route);
	hmap_free(&b->reply_to);
	users_free(b->users);
	free(b->confirm_chans);
	free(b->scratch);
	free(b->server_props);
	outq_pool_drain(&b->outq_pool);
	ev_loop_destroy(b->loop);
}
