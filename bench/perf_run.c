/*
 * Throughput mode of warren-perf: producers and consumers, each on its own
 * connection, spread over worker threads that each run one edge-triggered
 * epoll loop.
 *
 * Hot-path rules: a producer copies prebuilt frames (publish method,
 * content header, body frames) into its large output buffer, patches the
 * send timestamp and sequence into the first body frame, and writes the
 * whole batch with one write(); a consumer reads up to its whole input
 * buffer at once and parses frames in place.  Nothing is allocated per
 * message.  Counters go to the worker's own struct perf_stats.
 *
 * Invariants: a link's can_read/can_write say the socket has not yet
 * returned EAGAIN since the last edge, so the loop only sleeps in
 * epoll when no link has work; a producer's outstanding confirms never
 * exceed --confirm, so its confirm ring (a power of two >= the window)
 * holds every unconfirmed tag.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "bench/perf.h"
#include "bench/perf_topo.h"
#include "codec/frame.h"
#include "codec/gen_methods.h"

#define PERF_IN_CAP (1u << 20)
#define PERF_PRODUCER_OUT (512u << 10)
/* Reads per consumer per loop turn, so one busy consumer cannot starve
 * the producers sharing its thread. */
#define PERF_READS_PER_TURN 4

/* Frames of one message, prebuilt: per routing key the publish method
 * and content header, then the body frames shared by all keys. */
struct perf_msgs {
	int nkeys;
	uint8_t *hdr;
	size_t *hdr_off;    /* key k: hdr[hdr_off[k] .. hdr_off[k+1]) */
	uint8_t *body;
	size_t body_len;
	size_t max_len;     /* largest whole message */
};

/* What the epoll loop knows about a socket (first member of both). */
struct perf_link {
	struct perf_conn c;
	bool can_read, can_write;
};

struct perf_producer {
	struct perf_link l;
	int index;
	int key;                /* next routing key */
	uint64_t seq, sent;
	uint64_t next_ns;       /* pacing: next send time */
	/* confirms: tags (acked, tag] are outstanding, ring-indexed */
	uint64_t tag, acked, outstanding;
	size_t ring;
	uint8_t *pending;
	uint64_t *sent_ns;
	bool finished;          /* --count reached and all confirmed */
};

enum perf_kstate { PERF_K_METHOD, PERF_K_HEADER, PERF_K_BODY };

struct perf_consumer {
	struct perf_link l;
	int index;
	enum perf_kstate state;
	uint64_t tag, body_left, ts;
	bool ts_valid, first;
	uint64_t unacked, last_tag;
};

struct perf_run;

struct perf_worker {
	pthread_t th;
	struct perf_run *run;
	struct perf_consumer *cons;
	struct perf_producer *prod;
	int ncons, nprod;
	int ep;
	struct perf_stats *stats;
};

struct perf_run {
	const struct perf_opts *o;
	struct perf_topo topo;
	struct perf_msgs msgs;
	uint32_t frame_max;
	uint64_t interval_ns;   /* pacing; 0 = unpaced */
	bool key_step;          /* topic: each message takes the next key */
	struct perf_worker *workers;
	int nworkers;
	/* workers have connected / the reporter took its first snapshot */
	pthread_barrier_t ready, go;
	atomic_bool stop, failed;
	atomic_int producers_done;
	/* --count: when the consumers went quiet (reporter thread only) */
	uint64_t last_delivered, quiet_since;
};

/* ---- message templates ---- */

static int perf_msgs_build(struct perf_msgs *m, const struct perf_topo *t,
                           const struct perf_opts *o, uint32_t frame_max)
{
	size_t chunk = frame_max - FRAME_OVERHEAD;
	size_t nbody = (o->size + chunk - 1) / chunk;
	struct codec_basic_props props = {
		.flags = CODEC_BASIC_DELIVERY_MODE_FLAG,
		.delivery_mode = o->persistent ? 2 : 1,
	};
	uint8_t *p;

	memset(m, 0, sizeof(*m));
	m->nkeys = t->nkeys;
	m->hdr_off = calloc((size_t)t->nkeys + 1, sizeof(*m->hdr_off));
	/* method frame: 4 + 2 + 1+255 + 1+255 + 1; header: 14 + props */
	m->hdr = malloc((size_t)t->nkeys * 600);
	m->body_len = o->size + nbody * FRAME_OVERHEAD;
	m->body = calloc(1, m->body_len);
	if (!m->hdr_off || !m->hdr || !m->body)
		return -1;
	p = m->hdr;
	for (int k = 0; k < t->nkeys; k++) {
		struct codec_basic_publish pub = {
			.exchange = bytes_of(t->exchange),
			.routing_key = bytes_of(t->keys[k]),
		};
		struct wr w = wr_init(p + FRAME_HEADER_SIZE, 600);
		size_t n;

		m->hdr_off[k] = (size_t)(p - m->hdr);
		if (codec_method_encode(&w, CODEC_BASIC_PUBLISH, &pub) != CODEC_OK)
			return -1;
		n = (size_t)(w.p - p) - FRAME_HEADER_SIZE;
		frame_put_header(p, FRAME_METHOD, 1, (uint32_t)n);
		p += FRAME_HEADER_SIZE + n;
		*p++ = FRAME_END_OCTET;

		w = wr_init(p + FRAME_HEADER_SIZE, 300);
		wr_u16(&w, CODEC_CLASS_BASIC);
		wr_u16(&w, 0);
		wr_u64(&w, o->size);
		if (codec_encode_basic_props(&w, &props) != CODEC_OK)
			return -1;
		n = (size_t)(w.p - p) - FRAME_HEADER_SIZE;
		frame_put_header(p, FRAME_HEADER, 1, (uint32_t)n);
		p += FRAME_HEADER_SIZE + n;
		*p++ = FRAME_END_OCTET;
	}
	m->hdr_off[t->nkeys] = (size_t)(p - m->hdr);

	p = m->body;
	for (size_t left = o->size; left > 0;) {
		size_t n = left < chunk ? left : chunk;
		frame_put_header(p, FRAME_BODY, 1, (uint32_t)n);
		p += FRAME_HEADER_SIZE + n; /* payload stays zero */
		*p++ = FRAME_END_OCTET;
		left -= n;
	}
	m->max_len = m->body_len;
	for (int k = 0; k < t->nkeys; k++) {
		size_t len = m->hdr_off[k + 1] - m->hdr_off[k] + m->body_len;
		if (len > m->max_len)
			m->max_len = len;
	}
	return 0;
}

static void perf_msgs_free(struct perf_msgs *m)
{
	free(m->hdr_off);
	free(m->hdr);
	free(m->body);
}

/* ---- producers ---- */

static void perf_confirm_one(struct perf_worker *w, struct perf_producer *p,
                             uint64_t tag, bool nack, uint64_t now)
{
	size_t slot = tag & (p->ring - 1);

	if (tag <= p->acked || tag > p->tag || !p->pending[slot])
		return;
	p->pending[slot] = 0;
	p->outstanding--;
	perf_stat_add(&w->stats->c[nack ? PERF_C_NACKED : PERF_C_CONFIRMED], 1);
	if (now > p->sent_ns[slot])
		perf_stat_lat(w->stats->clat, now - p->sent_ns[slot]);
}

static void perf_confirm(struct perf_worker *w, struct perf_producer *p,
                         uint64_t tag, bool multiple, bool nack)
{
	uint64_t now = perf_now_ns();

	if (multiple)
		for (uint64_t t = p->acked + 1; t <= tag && t <= p->tag; t++)
			perf_confirm_one(w, p, t, nack, now);
	else
		perf_confirm_one(w, p, tag, nack, now);
	while (p->acked < p->tag && !p->pending[(p->acked + 1) & (p->ring - 1)])
		p->acked++;
}

/* Frames a producer receives: confirms, returns (skipped), errors. */
static int perf_producer_read(struct perf_worker *w, struct perf_producer *p)
{
	struct perf_conn *c = &p->l.c;
	union codec_method_args a;
	struct frame f;
	uint32_t id;
	int rc, n;

	for (int r = 0; r < PERF_READS_PER_TURN; r++) {
		n = perf_conn_read_some(c);
		if (n < 0)
			return -1;
		if (n == 0) {
			p->l.can_read = false;
			break;
		}
		perf_stat_add(&w->stats->c[PERF_C_BYTES_IN], (uint64_t)n);
		while ((rc = perf_conn_next_frame(c, &f)) == 1) {
			if (f.type != FRAME_METHOD)
				continue;
			if (codec_method_decode(f.payload, &id, &a) != CODEC_OK)
				return -1;
			if (id == CODEC_BASIC_ACK)
				perf_confirm(w, p, a.basic_ack.delivery_tag,
				             a.basic_ack.multiple, false);
			else if (id == CODEC_BASIC_NACK)
				perf_confirm(w, p, a.basic_nack.delivery_tag,
				             a.basic_nack.multiple, true);
			else if (id == CODEC_BASIC_RETURN)
				perf_stat_add(&w->stats->c[PERF_C_RETURNED], 1);
			else if (id == CODEC_CHANNEL_CLOSE || id == CODEC_CONNECTION_CLOSE) {
				struct bytes t = id == CODEC_CHANNEL_CLOSE ?
					a.channel_close.reply_text :
					a.connection_close.reply_text;
				snprintf(c->err, sizeof(c->err), "producer: %.*s",
				         (int)(t.len > 400 ? 400 : t.len),
				         (const char *)t.ptr);
				return -1;
			}
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* May p publish one more message now?  *wake learns when it may next. */
static bool perf_producer_may(const struct perf_run *run,
                              const struct perf_producer *p, uint64_t now,
                              uint64_t *wake)
{
	const struct perf_opts *o = run->o;

	if (o->count && p->sent >= o->count)
		return false;
	if (o->confirm && p->outstanding >= o->confirm)
		return false;
	if (run->interval_ns && p->next_ns > now) {
		if (p->next_ns < *wake)
			*wake = p->next_ns;
		return false;
	}
	return true;
}

/*
 * Fill the output buffer with as many messages as allowed, write it, and
 * repeat a few times while the socket takes it all.  Returns 1 if the
 * producer could go on right away, 0 if it waits, -1 on error.
 */
static int perf_produce(struct perf_worker *w, struct perf_producer *p,
                        uint64_t *wake)
{
	struct perf_run *run = w->run;
	const struct perf_msgs *m = &run->msgs;
	struct perf_conn *c = &p->l.c;
	uint64_t now = 0;

	for (int round = 0; round < 4; round++) {
		uint64_t n = 0;
		size_t before;
		int rc;

		now = perf_now_ns();
		while (c->out_cap - c->out_len >= m->max_len &&
		       perf_producer_may(run, p, now, wake)) {
			int k = p->key;
			size_t hl = m->hdr_off[k + 1] - m->hdr_off[k];
			uint8_t *dst = c->out + c->out_len;
			uint64_t stamp[2] = { now, ++p->seq };

			memcpy(dst, m->hdr + m->hdr_off[k], hl);
			memcpy(dst + hl, m->body, m->body_len);
			memcpy(dst + hl + FRAME_HEADER_SIZE, stamp, sizeof(stamp));
			c->out_len += hl + m->body_len;
			if (run->key_step && ++p->key == m->nkeys)
				p->key = 0;
			if (run->o->confirm) {
				size_t slot = ++p->tag & (p->ring - 1);
				p->pending[slot] = 1;
				p->sent_ns[slot] = now;
				p->outstanding++;
			}
			if (run->interval_ns) {
				p->next_ns += run->interval_ns;
				/* a stall is not made up with a burst */
				if (p->next_ns + 100000000u < now)
					p->next_ns = now;
			}
			p->sent++;
			n++;
		}
		if (n)
			perf_stat_add(&w->stats->c[PERF_C_PUBLISHED], n);
		if (c->out_len == c->out_off)
			break;
		before = c->out_len - c->out_off;
		rc = perf_conn_write_some(c);
		if (rc < 0)
			return -1;
		perf_stat_add(&w->stats->c[PERF_C_BYTES_OUT],
		              before - (c->out_len - c->out_off));
		if (rc == 0) {
			p->l.can_write = false;
			return 0;
		}
	}
	if (run->o->count && p->sent >= run->o->count && p->outstanding == 0 &&
	    !p->finished) {
		p->finished = true;
		atomic_fetch_add(&run->producers_done, 1);
	}
	uint64_t never = UINT64_MAX;
	return perf_producer_may(run, p, now, &never) ? 1 : 0;
}

/* ---- consumers ---- */

static int perf_consumer_ack(struct perf_worker *w, struct perf_consumer *k,
                             bool force)
{
	struct codec_basic_ack ack = {
		.delivery_tag = k->last_tag,
		.multiple = w->run->o->multi_ack > 1,
	};

	if (k->unacked == 0 || (!force && k->unacked < w->run->o->multi_ack))
		return 0;
	if (perf_conn_put_method(&k->l.c, CODEC_BASIC_ACK, &ack) < 0)
		return -1;
	k->unacked = 0;
	return 0;
}

static void perf_consumer_done(struct perf_worker *w, struct perf_consumer *k,
                               uint64_t *delivered)
{
	if (k->ts_valid) {
		uint64_t now = perf_now_ns();
		if (now > k->ts)
			perf_stat_lat(w->stats->lat, now - k->ts);
	}
	(*delivered)++;
	k->state = PERF_K_METHOD;
	if (!w->run->o->auto_ack) {
		k->unacked++;
		k->last_tag = k->tag;
	}
}

/* Parse the buffered frames; stops early when the ack buffer is full. */
static int perf_consumer_frames(struct perf_worker *w, struct perf_consumer *k,
                                uint64_t *delivered)
{
	struct perf_conn *c = &k->l.c;
	bool manual = !w->run->o->auto_ack;
	union codec_method_args a;
	struct content_header h;
	struct frame f;
	uint32_t id;
	int rc;

	for (;;) {
		if (manual && c->out_cap - c->out_len < 64)
			return 0; /* the caller writes, then we go on */
		rc = perf_conn_next_frame(c, &f);
		if (rc <= 0)
			return rc;
		switch (f.type) {
		case FRAME_METHOD:
			if (codec_method_decode(f.payload, &id, &a) != CODEC_OK)
				return -1;
			if (id == CODEC_BASIC_DELIVER) {
				k->tag = a.basic_deliver.delivery_tag;
				k->state = PERF_K_HEADER;
			} else if (id == CODEC_CHANNEL_CLOSE ||
			           id == CODEC_CONNECTION_CLOSE) {
				struct bytes t = id == CODEC_CHANNEL_CLOSE ?
					a.channel_close.reply_text :
					a.connection_close.reply_text;
				snprintf(c->err, sizeof(c->err), "consumer: %.*s",
				         (int)(t.len > 400 ? 400 : t.len),
				         (const char *)t.ptr);
				return -1;
			}
			break;
		case FRAME_HEADER:
			if (k->state != PERF_K_HEADER ||
			    frame_parse_content_header(f.payload, &h) != CODEC_OK)
				return -1;
			k->body_left = h.body_size;
			k->ts_valid = false;
			k->first = true;
			k->state = PERF_K_BODY;
			if (h.body_size == 0)
				perf_consumer_done(w, k, delivered);
			break;
		case FRAME_BODY:
			if (k->state != PERF_K_BODY || f.payload.len > k->body_left)
				return -1;
			if (k->first && f.payload.len >= PERF_MIN_SIZE) {
				memcpy(&k->ts, f.payload.ptr, sizeof(k->ts));
				k->ts_valid = true;
			}
			k->first = false;
			k->body_left -= f.payload.len;
			if (k->body_left == 0)
				perf_consumer_done(w, k, delivered);
			break;
		default:
			break; /* heartbeat */
		}
		if (manual && perf_consumer_ack(w, k, false) < 0)
			return -1;
	}
}

static int perf_consume(struct perf_worker *w, struct perf_consumer *k)
{
	struct perf_conn *c = &k->l.c;
	uint64_t delivered = 0;
	int rc = 0;

	for (int r = 0; r < PERF_READS_PER_TURN && k->l.can_read; r++) {
		if (perf_consumer_frames(w, k, &delivered) < 0)
			return -1;
		if (c->out_len > c->out_off)
			break; /* acks first */
		int n = perf_conn_read_some(c);
		if (n < 0)
			return -1;
		if (n == 0)
			k->l.can_read = false;
		perf_stat_add(&w->stats->c[PERF_C_BYTES_IN], (uint64_t)n);
	}
	if (perf_consumer_frames(w, k, &delivered) < 0)
		return -1;
	if (delivered)
		perf_stat_add(&w->stats->c[PERF_C_DELIVERED], delivered);
	if (c->out_len > c->out_off && k->l.can_write) {
		size_t before = c->out_len - c->out_off;
		rc = perf_conn_write_some(c);
		if (rc < 0)
			return -1;
		perf_stat_add(&w->stats->c[PERF_C_BYTES_OUT],
		              before - (c->out_len - c->out_off));
		if (rc == 0)
			k->l.can_write = false;
	}
	return 0;
}

/* ---- worker threads ---- */

static int perf_worker_open(struct perf_worker *w)
{
	const struct perf_opts *o = w->run->o;
	union codec_method_args r;
	char qname[128], tag[32];

	for (int i = 0; i < w->ncons; i++) {
		struct perf_consumer *k = &w->cons[i];
		struct perf_conn *c = &k->l.c;
		if (perf_conn_open(c, o, PERF_IN_CAP, 64u << 10) < 0)
			return -1;
		if (!o->auto_ack && o->prefetch) {
			struct codec_basic_qos q = { .prefetch_count =
				(uint16_t)(o->prefetch > 65535 ? 65535 : o->prefetch) };
			if (perf_conn_rpc(c, CODEC_BASIC_QOS, &q,
			                  CODEC_BASIC_QOS_OK, &r) < 0)
				return -1;
		}
		perf_topo_queue_name(o, k->index % o->queues, qname, sizeof(qname));
		snprintf(tag, sizeof(tag), "warren-perf-%d", k->index);
		struct codec_basic_consume bc = {
			.queue = bytes_of(qname),
			.consumer_tag = bytes_of(tag),
			.no_ack = o->auto_ack,
		};
		if (perf_conn_rpc(c, CODEC_BASIC_CONSUME, &bc,
		                  CODEC_BASIC_CONSUME_OK, &r) < 0)
			return -1;
	}
	for (int i = 0; i < w->nprod; i++) {
		struct perf_producer *p = &w->prod[i];
		struct perf_conn *c = &p->l.c;
		size_t out = 4 * w->run->msgs.max_len;
		if (out < PERF_PRODUCER_OUT)
			out = PERF_PRODUCER_OUT;
		if (perf_conn_open(c, o, 2 * PERF_CONN_FRAME_MAX, out) < 0)
			return -1;
		if (c->frame_max != w->run->frame_max) {
			snprintf(c->err, sizeof(c->err), "frame_max changed");
			return -1;
		}
		if (o->confirm) {
			struct codec_confirm_select cs = { 0 };
			p->ring = 1;
			while (p->ring < o->confirm)
				p->ring <<= 1;
			p->pending = calloc(p->ring, 1);
			p->sent_ns = calloc(p->ring, sizeof(*p->sent_ns));
			if (!p->pending || !p->sent_ns)
				return -1;
			if (perf_conn_rpc(c, CODEC_CONFIRM_SELECT, &cs,
			                  CODEC_CONFIRM_SELECT_OK, &r) < 0)
				return -1;
		}
	}
	return 0;
}

static const char *perf_worker_error(struct perf_worker *w)
{
	for (int i = 0; i < w->ncons; i++)
		if (w->cons[i].l.c.err[0])
			return w->cons[i].l.c.err;
	for (int i = 0; i < w->nprod; i++)
		if (w->prod[i].l.c.err[0])
			return w->prod[i].l.c.err;
	return "worker failed";
}

static int perf_worker_register(struct perf_worker *w)
{
	struct epoll_event ev;

	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0)
		return -1;
	for (int i = 0; i < w->ncons + w->nprod; i++) {
		struct perf_link *l = i < w->ncons ? &w->cons[i].l :
		                      &w->prod[i - w->ncons].l;
		ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
		ev.data.ptr = l;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, l->c.fd, &ev) < 0)
			return -1;
		/* the handshake may have buffered frames already */
		l->can_read = l->can_write = true;
	}
	return 0;
}

static int perf_worker_loop(struct perf_worker *w)
{
	struct perf_run *run = w->run;
	struct epoll_event ev[64];
	uint64_t now = perf_now_ns();

	for (int i = 0; i < w->nprod; i++) {
		struct perf_producer *p = &w->prod[i];
		/* spread paced producers over the interval */
		p->next_ns = now + run->interval_ns * (uint64_t)p->index /
		                   (uint64_t)run->o->producers;
	}
	while (!atomic_load_explicit(&run->stop, memory_order_relaxed)) {
		bool busy = false;
		uint64_t wake = perf_now_ns() + 100000000u;

		for (int i = 0; i < w->ncons; i++) {
			struct perf_consumer *k = &w->cons[i];
			if (k->l.can_read || (k->l.can_write &&
			                      k->l.c.out_len > k->l.c.out_off)) {
				if (perf_consume(w, k) < 0)
					return -1;
				/* not while its acks wait for the socket */
				busy |= k->l.can_read &&
				        (k->l.c.out_len == k->l.c.out_off ||
				         k->l.can_write);
			}
		}
		for (int i = 0; i < w->nprod; i++) {
			struct perf_producer *p = &w->prod[i];
			if (p->l.can_read && perf_producer_read(w, p) < 0)
				return -1;
			if (p->l.can_write) {
				int rc = perf_produce(w, p, &wake);
				if (rc < 0)
					return -1;
				busy |= rc == 1;
			}
		}
		now = perf_now_ns();
		struct timespec ts = { 0, 0 };
		if (!busy && wake > now) {
			ts.tv_sec = (time_t)((wake - now) / 1000000000u);
			ts.tv_nsec = (long)((wake - now) % 1000000000u);
		}
		int n = epoll_pwait2(w->ep, ev, 64, &ts, NULL);
		if (n < 0 && errno != EINTR)
			return -1;
		for (int i = 0; i < n; i++) {
			struct perf_link *l = ev[i].data.ptr;
			if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				l->can_read = true;
			if (ev[i].events & EPOLLOUT)
				l->can_write = true;
		}
	}
	return 0;
}

static void *perf_worker_main(void *arg)
{
	struct perf_worker *w = arg;
	struct perf_run *run = w->run;

	if (perf_worker_open(w) < 0 || perf_worker_register(w) < 0) {
		perf_warn("%s", perf_worker_error(w));
		atomic_store(&run->failed, true);
	}
	pthread_barrier_wait(&run->ready);
	pthread_barrier_wait(&run->go);
	if (atomic_load(&run->failed))
		return NULL;
	if (perf_worker_loop(w) < 0) {
		perf_warn("%s", perf_worker_error(w));
		atomic_store(&run->failed, true);
		atomic_store(&run->stop, true);
	}
	return NULL;
}

/* ---- the run ---- */

static bool perf_run_finished(void *arg)
{
	struct perf_run *run = arg;
	uint64_t delivered = 0, now;

	if (atomic_load(&run->failed))
		return true;
	if (!run->o->count ||
	    atomic_load(&run->producers_done) < run->o->producers)
		return false;
	if (run->o->consumers == 0)
		return true;
	/* consumers are done once nothing arrived for half a second */
	for (int i = 0; i < run->nworkers; i++)
		delivered += atomic_load_explicit(
			&run->workers[i].stats->c[PERF_C_DELIVERED],
			memory_order_relaxed);
	now = perf_now_ns();
	if (delivered != run->last_delivered) {
		run->last_delivered = delivered;
		run->quiet_since = now;
	}
	return now - run->quiet_since > 500000000u;
}

static int perf_run_workers(struct perf_run *run)
{
	const struct perf_opts *o = run->o;
	int nconn = o->producers + o->consumers;
	int nt = o->threads < nconn ? o->threads : nconn;

	if (nt < 1)
		nt = 1;
	run->nworkers = nt;
	run->workers = calloc((size_t)nt, sizeof(*run->workers));
	if (!run->workers)
		return -1;
	for (int t = 0; t < nt; t++) {
		struct perf_worker *w = &run->workers[t];
		w->run = run;
		w->stats = calloc(1, sizeof(*w->stats));
		w->cons = calloc((size_t)o->consumers / (size_t)nt + 1, sizeof(*w->cons));
		w->prod = calloc((size_t)o->producers / (size_t)nt + 1, sizeof(*w->prod));
		w->ep = -1;
		if (!w->stats || !w->cons || !w->prod)
			return -1;
	}
	/* consumers first, then producers, dealt round-robin to threads */
	for (int g = 0; g < nconn; g++) {
		struct perf_worker *w = &run->workers[g % nt];
		struct perf_link *l;
		if (g < o->consumers) {
			struct perf_consumer *k = &w->cons[w->ncons++];
			k->index = g;
			l = &k->l;
		} else {
			struct perf_producer *p = &w->prod[w->nprod++];
			p->index = g - o->consumers;
			/* direct: one queue each; topic: walk all keys */
			p->key = p->index % run->msgs.nkeys;
			l = &p->l;
		}
		l->c.fd = -1;
	}
	return 0;
}

static void perf_run_workers_free(struct perf_run *run)
{
	uint64_t deadline;

	if (!run->workers)
		return;
	deadline = perf_now_ns() + 3000000000ull;
	for (int t = 0; t < run->nworkers; t++) {
		struct perf_worker *w = &run->workers[t];
		for (int i = 0; i < w->ncons; i++)
			perf_conn_close_start(&w->cons[i].l.c, deadline);
		for (int i = 0; i < w->nprod; i++)
			perf_conn_close_start(&w->prod[i].l.c, deadline);
	}
	deadline = perf_now_ns() + 3000000000ull;
	for (int t = 0; t < run->nworkers; t++) {
		struct perf_worker *w = &run->workers[t];
		for (int i = 0; i < w->ncons; i++) {
			perf_conn_close_finish(&w->cons[i].l.c, deadline);
			perf_conn_free(&w->cons[i].l.c);
		}
		for (int i = 0; i < w->nprod; i++) {
			perf_conn_close_finish(&w->prod[i].l.c, deadline);
			perf_conn_free(&w->prod[i].l.c);
			free(w->prod[i].pending);
			free(w->prod[i].sent_ns);
		}
		if (w->ep >= 0)
			close(w->ep);
		free(w->cons);
		free(w->prod);
		free(w->stats);
	}
	free(run->workers);
	run->workers = NULL;
}

int perf_run_throughput(const struct perf_opts *o)
{
	struct perf_run run;
	struct perf_conn ctl;
	struct perf_report rep;
	struct perf_stats **stats = NULL;
	struct perf_out out;
	uint64_t rss0 = 0, rss1 = 0;
	int status = 1, started = 0;

	memset(&run, 0, sizeof(run));
	memset(&rep, 0, sizeof(rep));
	run.o = o;
	run.interval_ns = o->rate > 0 ? (uint64_t)(1e9 / o->rate) : 0;
	run.key_step = o->xtype == PERF_X_TOPIC;
	if (perf_topo_init(&run.topo, o) < 0)
		return 1;
	if (perf_conn_open(&ctl, o, 2 * PERF_CONN_FRAME_MAX,
	                   2 * PERF_CONN_FRAME_MAX) < 0) {
		perf_warn("%s", ctl.err);
		goto out;
	}
	run.frame_max = ctl.frame_max;
	if (perf_topo_setup(&ctl, &run.topo) < 0) {
		perf_warn("setup: %s", ctl.err);
		goto out;
	}
	if (perf_msgs_build(&run.msgs, &run.topo, o, ctl.frame_max) < 0 ||
	    perf_run_workers(&run) < 0) {
		perf_warn("out of memory");
		goto out;
	}
	if (o->broker_pid)
		rss0 = perf_rss_kb(o->broker_pid);
	pthread_barrier_init(&run.ready, NULL, (unsigned)run.nworkers + 1);
	pthread_barrier_init(&run.go, NULL, (unsigned)run.nworkers + 1);
	for (int t = 0; t < run.nworkers; t++) {
		if (pthread_create(&run.workers[t].th, NULL, perf_worker_main,
		                   &run.workers[t]) != 0) {
			perf_warn("cannot start threads");
			exit(1);
		}
		started++;
	}
	stats = calloc(run.nworkers > 0 ? (size_t)run.nworkers : 1, sizeof(*stats));
	if (stats) {
		for (int t = 0; t < run.nworkers; t++)
			stats[t] = run.workers[t].stats;
	}
	if (!stats || perf_report_init(&rep, o, stats, run.nworkers) < 0) {
		perf_warn("out of memory");
		atomic_store(&run.failed, true);
	}
	pthread_barrier_wait(&run.ready);
	if (!atomic_load(&run.failed))
		perf_report_start(&rep);
	pthread_barrier_wait(&run.go);
	if (!atomic_load(&run.failed)) {
		run.quiet_since = perf_now_ns();
		perf_report_run(&rep, perf_run_finished, &run);
	}
	atomic_store(&run.stop, true);
	if (o->broker_pid && !atomic_load(&run.failed)) {
		/* let the broker settle what it just stored or freed */
		struct timespec pause = { 1, 0 };
		nanosleep(&pause, NULL);
		rss1 = perf_rss_kb(o->broker_pid);
	}
	for (int t = 0; t < started; t++)
		pthread_join(run.workers[t].th, NULL);
	pthread_barrier_destroy(&run.ready);
	pthread_barrier_destroy(&run.go);
	if (!atomic_load(&run.failed) && rep.last) {
		struct perf_snap *d = rep.cur;
		perf_snap_diff(d, rep.last, rep.warm);
		perf_out_begin(&out, o);
		perf_out_s(&out, "mode", "throughput");
		perf_out_snap(&out, d, rep.secs);
		if (o->broker_pid) {
			perf_out_u64(&out, "rss_start_kb", rss0);
			perf_out_u64(&out, "rss_end_kb", rss1);
		}
		perf_out_end(&out);
		status = 0;
	}
	perf_run_workers_free(&run);
	if (!o->keep && perf_topo_teardown(&ctl, &run.topo) < 0) {
		perf_warn("teardown: %s", ctl.err);
		status = 1;
	}
out:
	perf_run_workers_free(&run); /* if setup failed half-way */
	perf_conn_close(&ctl, 3000);
	perf_conn_free(&ctl);
	perf_report_free(&rep);
	free(stats);
	perf_msgs_free(&run.msgs);
	perf_topo_free(&run.topo);
	return status;
}
