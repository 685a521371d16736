/*
 * Producers and consumers of warren-perf's throughput mode: what each
 * does with its socket when the worker's event loop says it may.
 *
 * A producer copies prebuilt frames (publish method, content header, body
 * frames) into its large output buffer, patches the send timestamp and
 * sequence into the first body frame, and writes the whole batch with
 * one write(); a consumer reads up to its whole input buffer at once and
 * parses frames in place.  Nothing is allocated per message, and counters
 * go to the worker's own struct perf_stats.
 *
 * Invariant: a producer's outstanding confirms never exceed --confirm, so
 * its confirm ring (a power of two >= the window) holds every
 * unconfirmed tag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/perf_run.h"
#include "codec/frame.h"
#include "codec/gen_methods.h"

/* Reads per connection per loop turn, so one busy consumer cannot starve
 * the producers sharing its thread. */
#define PERF_READS_PER_TURN 4

/* ---- message templates ---- */

int perf_msgs_build(struct perf_msgs *m, const struct perf_topo *t,
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

void perf_msgs_free(struct perf_msgs *m)
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
int perf_producer_read(struct perf_worker *w, struct perf_producer *p)
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
int perf_produce(struct perf_worker *w, struct perf_producer *p,
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

int perf_consume(struct perf_worker *w, struct perf_consumer *k)
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
