/*
 * The basic, confirm and tx classes of a channel: content assembly for
 * basic.publish, routing, consumers and deliveries, acknowledgements,
 * publisher confirms and transactions.
 *
 * Unacked deliveries live in a ring indexed by (delivery tag - base), so an
 * ack by tag is O(1).  Every delivery tag, including no-ack ones, has a slot
 * while older unsettled slots exist, which keeps the index arithmetic exact.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/channel_int.h"
#include "broker/exchange.h"
#include "broker/message.h"
#include "broker/vhost.h"
#include "codec/table.h"
#include "util/xalloc.h"


/* ---- unacked ring ---------------------------------------------------- */

static struct unacked *ua_at(struct channel *ch, size_t i)
{
	return &ch->unacked[(ch->ua_head + i) % ch->ua_cap];
}

static void ua_push(struct channel *ch, uint64_t tag, struct queue *q, struct consumer *c,
                    const struct queue_entry *e)
{
	if (ch->ua_n == 0) {
		ch->unacked_base = tag;
		ch->ua_head = 0;
	}
	if (ch->ua_n == ch->ua_cap) {
		size_t ncap = ch->ua_cap ? ch->ua_cap * 2 : 16;
		struct unacked *nu = xmalloc(ncap * sizeof(*nu));
		for (size_t i = 0; i < ch->ua_n; i++)
			nu[i] = *ua_at(ch, i);
		free(ch->unacked);
		ch->unacked = nu;
		ch->ua_cap = ncap;
		ch->ua_head = 0;
	}
	struct unacked *u = ua_at(ch, ch->ua_n++);
	u->queue = q;
	u->consumer = c;
	if (e)
		u->entry = *e;
	else
		memset(&u->entry, 0, sizeof(u->entry));
}

static void ua_trim(struct channel *ch)
{
	while (ch->ua_n > 0 && ua_at(ch, 0)->queue == NULL) {
		ch->ua_head = (ch->ua_head + 1) % ch->ua_cap;
		ch->ua_n--;
		ch->unacked_base++;
	}
	if (ch->ua_n == 0 && ch->ua_cap > 64) {
		free(ch->unacked);
		ch->unacked = NULL;
		ch->ua_cap = 0;
	}
}

static struct unacked *ua_find(struct channel *ch, uint64_t tag)
{
	if (ch->ua_n == 0 || tag < ch->unacked_base || tag - ch->unacked_base >= ch->ua_n)
		return NULL;
	struct unacked *u = ua_at(ch, (size_t)(tag - ch->unacked_base));
	return u->queue ? u : NULL;
}

enum settle_kind { SETTLE_ACK, SETTLE_REQUEUE, SETTLE_DROP };

static void ua_settle(struct channel *ch, struct unacked *u, enum settle_kind k)
{
	struct queue *q = u->queue;
	if (u->consumer) {
		struct chan_consumer *cc = (struct chan_consumer *)u->consumer;
		cc->unacked--;
	}
	ch->unacked_count--;
	u->queue = NULL;
	switch (k) {
	case SETTLE_ACK:
		queue_settle(q, &u->entry);
		break;
	case SETTLE_REQUEUE:
		queue_requeue(q, &u->entry);
		break;
	case SETTLE_DROP:
		queue_reject(q, &u->entry);
		break;
	}
	queue_kick(q);
}

void channel_forget_queue(struct channel *ch, struct queue *q)
{
	for (size_t i = 0; i < ch->ua_n; i++) {
		struct unacked *u = ua_at(ch, i);
		if (u->queue != q)
			continue;
		if (u->consumer)
			((struct chan_consumer *)u->consumer)->unacked--;
		ch->unacked_count--;
		u->queue = NULL;
		message_unref(u->entry.msg);
	}
	ua_trim(ch);
}

/* ---- consumers ------------------------------------------------------- */

static bool cons_ready(struct consumer *c)
{
	struct chan_consumer *cc = (struct chan_consumer *)c;
	struct channel *ch = cc->ch;
	if (ch->st != CHANNEL_ST_OPEN || !ch->flow_active)
		return false;
	if (!ch->own.ops->can_deliver(ch->own.conn))
		return false;
	if (c->no_ack)
		return true;
	if (cc->prefetch && cc->unacked >= cc->prefetch)
		return false;
	return !ch->prefetch_global || ch->unacked_count < ch->prefetch_global;
}

static void cons_deliver(struct consumer *c, struct queue *q, struct queue_entry *e)
{
	struct chan_consumer *cc = (struct chan_consumer *)c;
	struct channel *ch = cc->ch;
	uint64_t tag = ++ch->next_tag;
	struct message *m = e->msg;
	struct codec_basic_deliver d = {
		.consumer_tag = bytes_of(cc->tag),
		.delivery_tag = tag,
		.redelivered = e->redelivered,
		.exchange = m->exchange,
		.routing_key = m->routing_key,
	};
	ch->own.ops->send_content(ch->own.conn, ch->id, CODEC_BASIC_DELIVER, &d, m);
	if (c->no_ack) {
		channel_note_noack_tag(ch, tag);
		message_unref(m);
		return;
	}
	ua_push(ch, tag, q, c, e);
	cc->unacked++;
	ch->unacked_count++;
}

void channel_note_noack_tag(struct channel *ch, uint64_t tag)
{
	if (ch->ua_n > 0)
		ua_push(ch, tag, NULL, NULL, NULL); /* settled placeholder */
}

static void cons_unlink(struct channel *ch, struct chan_consumer *cc)
{
	for (struct chan_consumer **pp = &ch->consumers; *pp; pp = &(*pp)->next) {
		if (*pp == cc) {
			*pp = cc->next;
			break;
		}
	}
	/* unacked deliveries stay unacked, but forget the consumer */
	for (size_t i = 0; i < ch->ua_n; i++) {
		struct unacked *u = ua_at(ch, i);
		if (u->consumer == &cc->c)
			u->consumer = NULL;
	}
}

static void cons_cancelled(struct consumer *c)
{
	struct chan_consumer *cc = (struct chan_consumer *)c;
	struct channel *ch = cc->ch;
	cons_unlink(ch, cc);
	if (ch->own.consumer_cancel_notify && ch->st == CHANNEL_ST_OPEN) {
		struct codec_basic_cancel m = { .consumer_tag = bytes_of(cc->tag), .no_wait = true };
		channel_send(ch, CODEC_BASIC_CANCEL, &m);
	}
	free(cc);
}

static const struct consumer_ops chan_consumer_ops = {
	.ready = cons_ready,
	.deliver = cons_deliver,
	.cancelled = cons_cancelled,
};

static struct chan_consumer *cons_find(struct channel *ch, struct bytes tag)
{
	for (struct chan_consumer *cc = ch->consumers; cc; cc = cc->next)
		if (bytes_eq_str(tag, cc->tag))
			return cc;
	return NULL;
}

void channel_resume(struct channel *ch)
{
	for (struct chan_consumer *cc = ch->consumers; cc; cc = cc->next)
		queue_kick(cc->c.queue);
}

static void on_consume(struct channel *ch, struct codec_basic_consume *m)
{
	if (channel_reply_is_pseudo_queue(m->queue)) {
		channel_reply_consume(ch, m);
		return;
	}
	struct queue *q = channel_queue_lookup(ch, m->queue, CODEC_BASIC_CONSUME);
	if (!q)
		return;
	char tag[256];
	if (m->consumer_tag.len == 0) {
		snprintf(tag, sizeof(tag), "amq.ctag-%016llx%08llx",
		         (unsigned long long)ch->own.conn_id * 0x9E3779B97F4A7C15ull,
		         (unsigned long long)++ch->own.b->next_tag_id);
	} else {
		memcpy(tag, m->consumer_tag.ptr, m->consumer_tag.len);
		tag[m->consumer_tag.len] = '\0';
		if (cons_find(ch, m->consumer_tag)) {
			char buf[300];
			reply_set(&ch->err, CODEC_NOT_ALLOWED, "attempt to reuse consumer tag '%s'",
			          reply_name(buf, sizeof(buf), m->consumer_tag.ptr, m->consumer_tag.len));
			return channel_fail(ch, CODEC_BASIC_CONSUME);
		}
	}
	int32_t prio = 0;
	if (queue_consume_args_parse(m->arguments, q->name, vhost_name(ch->own.vhost), &prio,
	                             &ch->err) != 0)
		return channel_fail(ch, CODEC_BASIC_CONSUME);
	struct chan_consumer *cc = xcalloc(1, sizeof(*cc));
	cc->ch = ch;
	memcpy(cc->tag, tag, strlen(tag) + 1);
	cc->prefetch = ch->prefetch_next;
	cc->c.ops = &chan_consumer_ops;
	cc->c.queue = q;
	cc->c.tag = bytes_of(cc->tag);
	cc->c.priority = prio;
	cc->c.exclusive = m->exclusive;
	cc->c.no_ack = m->no_ack;
	cc->c.owner = ch;
	if (queue_consumer_add(q, &cc->c, &ch->err) != 0) {
		free(cc);
		return channel_fail(ch, CODEC_BASIC_CONSUME);
	}
	cc->next = ch->consumers;
	ch->consumers = cc;
	if (!m->no_wait) {
		struct codec_basic_consume_ok ok = { .consumer_tag = bytes_of(cc->tag) };
		channel_send(ch, CODEC_BASIC_CONSUME_OK, &ok);
	}
	queue_kick(q);
}

static void on_cancel(struct channel *ch, struct codec_basic_cancel *m)
{
	struct chan_consumer *cc = cons_find(ch, m->consumer_tag);
	struct codec_basic_cancel_ok ok = { .consumer_tag = m->consumer_tag };
	if (!m->no_wait)
		channel_send(ch, CODEC_BASIC_CANCEL_OK, &ok);
	if (!cc) {
		channel_reply_cancel(ch, m->consumer_tag);
		return;
	}
	cons_unlink(ch, cc);
	/* an auto-delete queue is deleted later, by the broker's unused hook */
	struct queue *q = cc->c.queue;
	queue_consumer_remove(q, &cc->c);
	queue_touch(q, broker_now_ms(ch->own.b));
	free(cc);
}

static void on_get(struct channel *ch, struct codec_basic_get *m)
{
	struct queue *q = channel_queue_lookup(ch, m->queue, CODEC_BASIC_GET);
	if (!q)
		return;
	struct queue_entry e;
	if (queue_get(q, broker_now_ms(ch->own.b), m->no_ack, &e) != 1) {
		struct codec_basic_get_empty ge = { 0 };
		channel_send(ch, CODEC_BASIC_GET_EMPTY, &ge);
		return;
	}
	uint64_t tag = ++ch->next_tag;
	struct codec_basic_get_ok g = {
		.delivery_tag = tag,
		.redelivered = e.redelivered,
		.exchange = e.msg->exchange,
		.routing_key = e.msg->routing_key,
		.message_count = queue_message_count(q),
	};
	ch->own.ops->send_content(ch->own.conn, ch->id, CODEC_BASIC_GET_OK, &g, e.msg);
	if (m->no_ack) {
		channel_note_noack_tag(ch, tag);
		message_unref(e.msg);
		return;
	}
	ua_push(ch, tag, q, NULL, &e);
	ch->unacked_count++;
}

/* ---- acknowledgements ------------------------------------------------ */

static int settle_tags(struct channel *ch, uint64_t tag, bool multiple, enum settle_kind k,
                       uint32_t method_id)
{
	if (multiple) {
		/* RabbitMQ: the tag itself must be outstanding (0 means all) */
		if (tag != 0 && !ua_find(ch, tag))
			goto unknown;
		uint64_t last = tag == 0 ? ch->next_tag : tag;
		for (size_t i = 0; i < ch->ua_n; i++) {
			struct unacked *u = ua_at(ch, i);
			if (ch->unacked_base + i > last)
				break;
			if (u->queue)
				ua_settle(ch, u, k);
		}
		ua_trim(ch);
		goto settled;
	}
	struct unacked *u = ua_find(ch, tag);
	if (!u)
		goto unknown;
	ua_settle(ch, u, k);
	ua_trim(ch);
settled:
	/* a channel-wide prefetch freed room for every consumer, not just the
	 * ones whose queues got the acks */
	if (ch->prefetch_global)
		channel_resume(ch);
	return 0;
unknown:
	reply_set(&ch->err, CODEC_PRECONDITION_FAILED, "unknown delivery tag %llu",
	          (unsigned long long)tag);
	channel_fail(ch, method_id);
	return -1;
}

static void tx_add_ack(struct channel *ch, uint64_t tag, bool multiple, uint8_t kind)
{
	if (ch->ntxa == ch->captxa) {
		ch->captxa = ch->captxa ? ch->captxa * 2 : 8;
		ch->txa = xrealloc(ch->txa, ch->captxa * sizeof(*ch->txa));
	}
	ch->txa[ch->ntxa++] = (struct tx_ack){ tag, multiple, kind };
}

static void on_ack(struct channel *ch, uint64_t tag, bool multiple, enum settle_kind k,
                   uint32_t method_id)
{
	if (ch->tx) {
		/* validate now so errors surface on the method, apply on commit */
		if (!(multiple && tag == 0) && !ua_find(ch, tag)) {
			reply_set(&ch->err, CODEC_PRECONDITION_FAILED, "unknown delivery tag %llu",
			          (unsigned long long)tag);
			channel_fail(ch, method_id);
			return;
		}
		tx_add_ack(ch, tag, multiple, (uint8_t)k);
		return;
	}
	settle_tags(ch, tag, multiple, k, method_id);
}

static void requeue_all(struct channel *ch)
{
	for (size_t i = 0; i < ch->ua_n; i++) {
		struct unacked *u = ua_at(ch, i);
		if (u->queue)
			ua_settle(ch, u, SETTLE_REQUEUE);
	}
	ua_trim(ch);
}

/* ---- publishing ------------------------------------------------------ */

static void confirm_send(struct channel *ch, uint64_t seq, bool ack)
{
	if (ack) {
		struct codec_basic_ack a = { .delivery_tag = seq, .multiple = false };
		channel_send(ch, CODEC_BASIC_ACK, &a);
	} else {
		struct codec_basic_nack n = { .delivery_tag = seq, .multiple = false, .requeue = false };
		channel_send(ch, CODEC_BASIC_NACK, &n);
	}
}

/* A copy of m whose headers lack BCC (sender-selected distribution). */
static struct message *strip_bcc(struct message *m, const struct codec_basic_props *p)
{
	struct ftable_builder tb;
	ftable_builder_init(&tb);
	struct ftable_iter it;
	ftable_iter_init(&it, p->headers);
	struct bytes k;
	struct fvalue v;
	while (ftable_next(&it, &k, &v) == 1)
		if (!bytes_eq_str(k, "BCC"))
			ftable_put_value(&tb, k, &v);
	struct codec_basic_props np = *p;
	np.headers = ftable_builder_get(&tb);
	size_t sz = codec_size_basic_props(&np);
	uint8_t *buf = xmalloc(sz);
	struct wr w = wr_init(buf, sz);
	codec_encode_basic_props(&w, &np);
	struct message *nm = message_with_props(m, (struct bytes){ buf, sz }, m->exchange,
	                                        m->routing_key);
	free(buf);
	ftable_builder_free(&tb);
	return nm;
}

/* Route a complete message and answer for it (return, confirm). Consumes m. */
static void publish_route(struct channel *ch, struct message *m, bool mandatory, uint64_t seq)
{
	struct vhost *vh = ch->own.vhost;
	struct exchange *x = vhost_exchange_find(vh, m->exchange);
	struct codec_basic_props p;
	struct rd r = rd_init(m->props.ptr, m->props.len);
	codec_decode_basic_props(&r, &p); /* validated by message_new */
	struct bytes keys[BROKER_MAX_ROUTING_KEYS];
	size_t nkeys = 0;
	keys[nkeys++] = m->routing_key;
	struct message *qm = m; /* what the queues get */
	if (p.flags & CODEC_BASIC_HEADERS_FLAG) {
		struct fvalue bcc;
		nkeys += broker_header_keys(p.headers, "CC", keys + nkeys, BROKER_MAX_ROUTING_KEYS - nkeys);
		nkeys += broker_header_keys(p.headers, "BCC", keys + nkeys, BROKER_MAX_ROUTING_KEYS - nkeys);
		if (ftable_get(p.headers, "BCC", &bcc) == 1)
			qm = strip_bcc(m, &p); /* keys still point into m, alive until the end */
	}
	struct route_result *rr = &ch->own.b->route;
	rr->n = 0;
	if (m->exchange.len == 0 && channel_reply_is_address(m->routing_key)) {
		/* a reply to a direct reply-to client: no queue involved */
		bool delivered = channel_reply_deliver(ch->own.b, qm);
		if (!delivered && mandatory) {
			struct codec_basic_return ret = {
				.reply_code = CODEC_NO_ROUTE, .reply_text = bytes_of("NO_ROUTE"),
				.exchange = qm->exchange, .routing_key = qm->routing_key,
			};
			ch->own.ops->send_content(ch->own.conn, ch->id, CODEC_BASIC_RETURN, &ret, qm);
		}
		if (seq)
			confirm_send(ch, seq, true);
		if (qm != m)
			message_unref(qm);
		message_unref(m);
		return;
	}
	if (x)
		exchange_route(vh, x, keys, nkeys, p.headers, rr);
	bool rejected = false;
	int64_t now = broker_now_ms(ch->own.b);
	for (size_t i = 0; i < rr->n; i++)
		if (queue_publish(rr->queues[i], qm, now) == QUEUE_PUBLISH_REJECTED)
			rejected = true;
	if (rr->n == 0 && mandatory) {
		/* basic.return goes out before the confirm: pika relies on the order */
		struct codec_basic_return ret = {
			.reply_code = CODEC_NO_ROUTE, .reply_text = bytes_of("NO_ROUTE"),
			.exchange = qm->exchange, .routing_key = qm->routing_key,
		};
		ch->own.ops->send_content(ch->own.conn, ch->id, CODEC_BASIC_RETURN, &ret, qm);
	}
	if (seq)
		confirm_send(ch, seq, !rejected);
	if (qm != m)
		message_unref(qm);
	message_unref(m);
}

/* RabbitMQ's names for field types, as its error texts show them. */
static const char *field_type_name(char t)
{
	switch (t) {
	case 'S': return "longstr";
	case 'I': return "signedint";
	case 'i': return "unsignedint";
	case 'l': return "long";
	case 'F': return "table";
	case 't': return "bool";
	case 'b': return "byte";
	case 'B': return "unsignedbyte";
	case 's': return "short";
	case 'u': return "unsignedshort";
	case 'f': return "float";
	case 'd': return "double";
	case 'D': return "decimal";
	case 'T': return "timestamp";
	case 'x': return "binary";
	case 'V': return "void";
	default: return "unknown";
	}
}

/* CC and BCC must be arrays: RabbitMQ refuses the message otherwise. */
static int check_cc_headers(struct channel *ch, const struct message *m)
{
	struct codec_basic_props p;
	struct rd r = rd_init(m->props.ptr, m->props.len);
	if (codec_decode_basic_props(&r, &p) != CODEC_OK || !(p.flags & CODEC_BASIC_HEADERS_FLAG))
		return 0;
	static const char *const keys[] = { "CC", "BCC" };
	for (size_t i = 0; i < 2; i++) {
		struct fvalue v;
		if (ftable_get(p.headers, keys[i], &v) == 1 && v.type != 'A') {
			reply_set(&ch->err, CODEC_PRECONDITION_FAILED,
			          "invalid message: {unacceptable_type_in_header,\"%s\",%s}", keys[i],
			          field_type_name(v.type));
			channel_fail(ch, CODEC_BASIC_PUBLISH);
			return -1;
		}
	}
	return 0;
}

static void publish_complete(struct channel *ch)
{
	struct message *m = ch->pub_msg;
	ch->pub_msg = NULL;
	ch->in_publish = false;
	if (check_cc_headers(ch, m) != 0) {
		message_unref(m);
		return;
	}
	m->id = ++ch->own.b->next_message_id;
	uint64_t seq = ch->confirm ? ++ch->publish_seq : 0;
	ch->own.ops->published(ch->own.conn);
	if (ch->tx) {
		if (ch->ntxp == ch->captxp) {
			ch->captxp = ch->captxp ? ch->captxp * 2 : 8;
			ch->txp = xrealloc(ch->txp, ch->captxp * sizeof(*ch->txp));
		}
		ch->txp[ch->ntxp++] = (struct tx_publish){ m, ch->publish_mandatory };
		return;
	}
	publish_route(ch, m, ch->publish_mandatory, seq);
}

static void on_publish(struct channel *ch, struct codec_basic_publish *m)
{
	char buf[300];
	if (m->immediate) {
		ch->own.ops->hard_error(ch->own.conn, CODEC_NOT_IMPLEMENTED,
		                        "NOT_IMPLEMENTED - immediate=true", CODEC_BASIC_PUBLISH);
		return;
	}
	struct exchange *x = vhost_exchange_find(ch->own.vhost, m->exchange);
	if (!x) {
		reply_set(&ch->err, CODEC_NOT_FOUND, "no exchange '%s' in vhost '%s'",
		          reply_name(buf, sizeof(buf), m->exchange.ptr, m->exchange.len),
		          vhost_name(ch->own.vhost));
		return channel_fail(ch, CODEC_BASIC_PUBLISH);
	}
	if (exchange_is_internal(x)) {
		reply_set(&ch->err, CODEC_ACCESS_REFUSED,
		          "cannot publish to internal exchange '%s' in vhost '%s'",
		          reply_name(buf, sizeof(buf), m->exchange.ptr, m->exchange.len),
		          vhost_name(ch->own.vhost));
		return channel_fail(ch, CODEC_BASIC_PUBLISH);
	}
	ch->in_publish = true;
	ch->publish_mandatory = m->mandatory;
	memcpy(ch->pub_exchange, m->exchange.ptr, m->exchange.len);
	ch->pub_exchange_len = (uint8_t)m->exchange.len;
	memcpy(ch->pub_rk, m->routing_key.ptr, m->routing_key.len);
	ch->pub_rk_len = (uint8_t)m->routing_key.len;
}

/* An invalid expiration property is a channel error (406), not a syntax error. */
static int props_check_expiration(struct channel *ch, struct bytes props)
{
	struct codec_basic_props p;
	struct rd r = rd_init(props.ptr, props.len);
	if (codec_decode_basic_props(&r, &p) != CODEC_OK || !(p.flags & CODEC_BASIC_EXPIRATION_FLAG))
		return 0; /* malformed properties are message_new's to report */
	int64_t ttl;
	if (queue_expiration_parse(p.expiration, &ttl, &ch->err) == 0)
		return 0;
	ch->in_publish = false;
	channel_fail(ch, CODEC_BASIC_PUBLISH);
	return -1;
}

int channel_basic_content(struct channel *ch, const struct frame *f)
{
	if (!ch->in_publish) {
		reply_set(&ch->err, CODEC_UNEXPECTED_FRAME,
		          "expected method frame, got non method frame instead");
		channel_fail(ch, 0);
		return 0;
	}
	if (f->type == FRAME_HEADER) {
		if (ch->pub_msg) {
			reply_set(&ch->err, CODEC_UNEXPECTED_FRAME,
			          "expected content body, got non content body frame instead");
			channel_fail(ch, CODEC_BASIC_PUBLISH);
			return 0;
		}
		struct content_header h;
		int rc = frame_parse_content_header(f->payload, &h);
		if (rc != CODEC_OK || h.class_id != CODEC_CLASS_BASIC) {
			ch->own.ops->hard_error(ch->own.conn, CODEC_FRAME_ERROR,
			                        "FRAME_ERROR - malformed content header", CODEC_BASIC_PUBLISH);
			return 0;
		}
		if (h.body_size > ch->own.b->cfg.max_message_size) {
			ch->in_publish = false;
			reply_set(&ch->err, CODEC_PRECONDITION_FAILED,
			          "message size %llu is larger than configured max size %llu",
			          (unsigned long long)h.body_size,
			          (unsigned long long)ch->own.b->cfg.max_message_size);
			channel_fail(ch, CODEC_BASIC_PUBLISH);
			return 0;
		}
		struct bytes xn = { (const uint8_t *)ch->pub_exchange, ch->pub_exchange_len };
		struct bytes rk = { (const uint8_t *)ch->pub_rk, ch->pub_rk_len };
		uint8_t *np = NULL;
		size_t nplen = 0;
		rc = channel_reply_rewrite_props(ch, h.props, &np, &nplen);
		if (rc < 0) {
			ch->in_publish = false;
			return 0;
		}
		struct bytes props = rc ? (struct bytes){ np, nplen } : h.props;
		if (props_check_expiration(ch, props) != 0) {
			free(np);
			return 0;
		}
		ch->pub_msg = message_new(xn, rk, props, h.body_size);
		free(np);
		if (!ch->pub_msg) {
			ch->own.ops->hard_error(ch->own.conn, CODEC_SYNTAX_ERROR,
			                        "SYNTAX_ERROR - malformed content header properties",
			                        CODEC_BASIC_PUBLISH);
			return 0;
		}
		if (h.body_size == 0)
			publish_complete(ch);
		return 0;
	}
	/* body frame */
	if (!ch->pub_msg) {
		reply_set(&ch->err, CODEC_UNEXPECTED_FRAME,
		          "expected content header for class 60, got non content header frame instead");
		channel_fail(ch, CODEC_BASIC_PUBLISH);
		return 0;
	}
	if (!message_append_body(ch->pub_msg, f->payload)) {
		ch->own.ops->hard_error(ch->own.conn, CODEC_FRAME_ERROR,
		                        "FRAME_ERROR - content body exceeds the declared size",
		                        CODEC_BASIC_PUBLISH);
		return 0;
	}
	if (message_complete(ch->pub_msg))
		publish_complete(ch);
	return 0;
}

/* ---- tx -------------------------------------------------------------- */

static void tx_discard(struct channel *ch)
{
	for (size_t i = 0; i < ch->ntxp; i++)
		message_unref(ch->txp[i].msg);
	ch->ntxp = 0;
	ch->ntxa = 0;
}

static void tx_commit(struct channel *ch)
{
	size_t np = ch->ntxp;
	ch->ntxp = 0;
	for (size_t i = 0; i < np; i++)
		publish_route(ch, ch->txp[i].msg, ch->txp[i].mandatory, 0);
	size_t na = ch->ntxa;
	ch->ntxa = 0;
	for (size_t i = 0; i < na; i++) {
		struct tx_ack *a = &ch->txa[i];
		if (settle_tags(ch, a->tag, a->multiple, (enum settle_kind)a->kind, CODEC_TX_COMMIT) != 0)
			return;
	}
}

/* ---- dispatch -------------------------------------------------------- */

int channel_basic_method(struct channel *ch, uint32_t id, union codec_method_args *a)
{
	switch (id) {
	case CODEC_BASIC_QOS:
		if (a->basic_qos.prefetch_size != 0) {
			char text[80];
			snprintf(text, sizeof(text), "NOT_IMPLEMENTED - prefetch_size!=0 (%u)",
			         a->basic_qos.prefetch_size);
			ch->own.ops->hard_error(ch->own.conn, CODEC_NOT_IMPLEMENTED, text, id);
			return 0;
		}
		if (a->basic_qos.global) {
			ch->prefetch_global = a->basic_qos.prefetch_count;
		} else {
			/* RabbitMQ: a per-consumer qos also lifts the channel-wide limit */
			ch->prefetch_next = a->basic_qos.prefetch_count;
			ch->prefetch_global = 0;
		}
		{
			struct codec_basic_qos_ok ok = { 0 };
			channel_send(ch, CODEC_BASIC_QOS_OK, &ok);
		}
		channel_resume(ch);
		return 0;
	case CODEC_BASIC_CONSUME:
		on_consume(ch, &a->basic_consume);
		return 0;
	case CODEC_BASIC_CANCEL:
		on_cancel(ch, &a->basic_cancel);
		return 0;
	case CODEC_BASIC_PUBLISH:
		on_publish(ch, &a->basic_publish);
		return 0;
	case CODEC_BASIC_GET:
		on_get(ch, &a->basic_get);
		return 0;
	case CODEC_BASIC_ACK:
		on_ack(ch, a->basic_ack.delivery_tag, a->basic_ack.multiple, SETTLE_ACK, id);
		return 0;
	case CODEC_BASIC_REJECT:
		on_ack(ch, a->basic_reject.delivery_tag, false,
		       a->basic_reject.requeue ? SETTLE_REQUEUE : SETTLE_DROP, id);
		return 0;
	case CODEC_BASIC_NACK:
		on_ack(ch, a->basic_nack.delivery_tag, a->basic_nack.multiple,
		       a->basic_nack.requeue ? SETTLE_REQUEUE : SETTLE_DROP, id);
		return 0;
	case CODEC_BASIC_RECOVER:
	case CODEC_BASIC_RECOVER_ASYNC: {
		bool requeue = id == CODEC_BASIC_RECOVER ? a->basic_recover.requeue
		                                         : a->basic_recover_async.requeue;
		if (!requeue) {
			ch->own.ops->hard_error(ch->own.conn, CODEC_NOT_IMPLEMENTED,
			                        "NOT_IMPLEMENTED - requeue=false", id);
			return 0;
		}
		requeue_all(ch);
		if (id == CODEC_BASIC_RECOVER) {
			struct codec_basic_recover_ok ok = { 0 };
			channel_send(ch, CODEC_BASIC_RECOVER_OK, &ok);
		}
		return 0;
	}
	case CODEC_CONFIRM_SELECT:
		if (ch->tx) {
			reply_set(&ch->err, CODEC_PRECONDITION_FAILED,
			          "cannot switch from tx to confirm mode");
			channel_fail(ch, id);
			return 0;
		}
		ch->confirm = true;
		if (!a->confirm_select.nowait) {
			struct codec_confirm_select_ok ok = { 0 };
			channel_send(ch, CODEC_CONFIRM_SELECT_OK, &ok);
		}
		return 0;
	case CODEC_TX_SELECT:
		if (ch->confirm) {
			reply_set(&ch->err, CODEC_PRECONDITION_FAILED,
			          "cannot switch from confirm to tx mode");
			channel_fail(ch, id);
			return 0;
		}
		ch->tx = true;
		{
			struct codec_tx_select_ok ok = { 0 };
			channel_send(ch, CODEC_TX_SELECT_OK, &ok);
		}
		return 0;
	case CODEC_TX_COMMIT:
	case CODEC_TX_ROLLBACK:
		if (!ch->tx) {
			reply_set(&ch->err, CODEC_PRECONDITION_FAILED, "channel is not transactional");
			channel_fail(ch, id);
			return 0;
		}
		if (id == CODEC_TX_COMMIT) {
			tx_commit(ch);
			if (ch->st != CHANNEL_ST_OPEN)
				return 0;
			struct codec_tx_commit_ok ok = { 0 };
			channel_send(ch, CODEC_TX_COMMIT_OK, &ok);
		} else {
			tx_discard(ch);
			struct codec_tx_rollback_ok ok = { 0 };
			channel_send(ch, CODEC_TX_ROLLBACK_OK, &ok);
		}
		return 0;
	default:
		reply_set(&ch->err, CODEC_COMMAND_INVALID, "unexpected method %s",
		          codec_method_name(id));
		channel_fail(ch, id);
		return 0;
	}
}

void channel_basic_teardown(struct channel *ch)
{
	if (ch->pub_msg) {
		message_unref(ch->pub_msg);
		ch->pub_msg = NULL;
	}
	ch->in_publish = false;
	tx_discard(ch);
	free(ch->txp);
	free(ch->txa);
	ch->txp = NULL;
	ch->txa = NULL;
	ch->captxp = ch->captxa = 0;
	/* requeue first: an auto-delete queue may vanish when its consumer goes */
	requeue_all(ch);
	while (ch->consumers) {
		struct chan_consumer *cc = ch->consumers;
		cons_unlink(ch, cc);
		queue_consumer_remove(cc->c.queue, &cc->c);
		free(cc);
	}
	free(ch->unacked);
	ch->unacked = NULL;
	ch->ua_cap = ch->ua_n = 0;
	channel_reply_teardown(ch);
}
