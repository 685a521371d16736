/*
 * basic.publish: content assembly from the method, header and body frames,
 * the checks RabbitMQ makes on a message (size, expiration, CC/BCC types),
 * routing (with sender-selected distribution and direct reply-to), and the
 * answers a publisher gets (basic.return before its confirm).
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

/* ---- publishing ------------------------------------------------------ */

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
uint64_t channel_publish_route(struct channel *ch, struct message *m,
                               const struct codec_basic_props *props, bool mandatory, uint64_t seq)
{
	struct vhost *vh = ch->own.vhost;
	struct exchange *x = vhost_exchange_find(vh, m->exchange);
	struct codec_basic_props p;
	if (props) {
		p = *props;
	} else {
		struct rd r = rd_init(m->props.ptr, m->props.len);
		codec_decode_basic_props(&r, &p); /* validated by message_new */
	}
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
			channel_reply_later(ch, seq, 0, PENDING_ACK);
		if (qm != m)
			message_unref(qm);
		message_unref(m);
		return 0;
	}
	if (x)
		exchange_route(vh, x, keys, nkeys, p.headers, rr);
	bool rejected = false;
	int64_t now = broker_now_ms(ch->own.b);
	/* the queues' enqueued hooks raise this to the store ticket to wait for */
	ch->own.b->publish_ticket = 0;
	for (size_t i = 0; i < rr->n; i++) {
		struct queue *q = rr->queues[i];
		if (queue_publish(q, qm, now) == QUEUE_PUBLISH_REJECTED)
			rejected = true;
		int64_t at = queue_next_expiry(q);
		if (at >= 0)
			broker_expiry_hint(ch->own.b, at);
	}
	if (rr->n == 0 && mandatory) {
		/* basic.return goes out before the confirm: pika relies on the order */
		struct codec_basic_return ret = {
			.reply_code = CODEC_NO_ROUTE, .reply_text = bytes_of("NO_ROUTE"),
			.exchange = qm->exchange, .routing_key = qm->routing_key,
		};
		ch->own.ops->send_content(ch->own.conn, ch->id, CODEC_BASIC_RETURN, &ret, qm);
	}
	uint64_t ticket = ch->own.b->publish_ticket;
	if (seq)
		channel_reply_later(ch, seq, ticket, rejected ? PENDING_NACK : PENDING_ACK);
	if (qm != m)
		message_unref(qm);
	message_unref(m);
	return ticket;
}


/* CC and BCC must be arrays: RabbitMQ refuses the message otherwise. */
static int check_cc_headers(struct channel *ch, const struct codec_basic_props *p)
{
	if (!(p->flags & CODEC_BASIC_HEADERS_FLAG))
		return 0;
	static const char *const keys[] = { "CC", "BCC" };
	for (size_t i = 0; i < 2; i++) {
		struct fvalue v;
		if (ftable_get(p->headers, keys[i], &v) == 1 && v.type != 'A') {
			reply_set(&ch->err, CODEC_PRECONDITION_FAILED,
			          "invalid message: {unacceptable_type_in_header,\"%s\",%s}", keys[i],
			          ftable_type_name(v.type));
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
	/* one decode serves the checks and, outside a transaction, routing */
	struct codec_basic_props p;
	struct rd r = rd_init(m->props.ptr, m->props.len);
	codec_decode_basic_props(&r, &p); /* validated by message_new */
	if (check_cc_headers(ch, &p) != 0) {
		message_unref(m);
		return;
	}
	m->id = ++ch->own.b->next_message_id;
	ch->own.b->stat_published++;
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
	channel_publish_route(ch, m, &p, ch->publish_mandatory, seq);
}

void channel_on_publish(struct channel *ch, struct codec_basic_publish *m)
{
	char buf[300];
	if (m->immediate) {
		ch->own.ops->hard_error(ch->own.conn, CODEC_NOT_IMPLEMENTED,
		                        "NOT_IMPLEMENTED - immediate=true", CODEC_BASIC_PUBLISH);
		return;
	}
	struct exchange *x = vhost_exchange_find(ch->own.vhost, m->exchange);
	if (x && !channel_allowed(ch, USERS_PERM_WRITE, "exchange", m->exchange, CODEC_BASIC_PUBLISH))
		return;
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
static int props_check_expiration(struct channel *ch, const struct codec_basic_props *p)
{
	if (!(p->flags & CODEC_BASIC_EXPIRATION_FLAG))
		return 0;
	int64_t ttl;
	if (queue_expiration_parse(p->expiration, &ttl, &ch->err) == 0)
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
		struct codec_basic_props p;
		struct rd r = rd_init(h.props.ptr, h.props.len);
		if (codec_decode_basic_props(&r, &p) != CODEC_OK) {
			ch->own.ops->hard_error(ch->own.conn, CODEC_SYNTAX_ERROR,
			                        "SYNTAX_ERROR - malformed content header properties",
			                        CODEC_BASIC_PUBLISH);
			return 0;
		}
		uint8_t *np = NULL;
		size_t nplen = 0;
		rc = channel_reply_rewrite_props(ch, &p, &np, &nplen);
		if (rc < 0) {
			ch->in_publish = false;
			return 0;
		}
		struct bytes props = rc ? (struct bytes){ np, nplen } : h.props;
		if (props_check_expiration(ch, &p) != 0) {
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

