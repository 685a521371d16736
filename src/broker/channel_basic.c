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
		ch->own.b->stat_acked++;
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
	ch->own.b->stat_delivered++;
	if (c->no_ack) {
		channel_note_noack_tag(ch, tag);
		message_unref(m);
		return;
	}
	ua_push(ch, tag, q, c, e);
	cc->unacked++;
	ch->unacked_count++;
	broker_persist_delivered(ch->own.b, q, m);
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
	if (!q || !channel_allowed(ch, USERS_PERM_READ, "queue", q->name, CODEC_BASIC_CONSUME))
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
	if (!q || !channel_allowed(ch, USERS_PERM_READ, "queue", q->name, CODEC_BASIC_GET))
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
	ch->own.b->stat_delivered++;
	if (m->no_ack) {
		channel_note_noack_tag(ch, tag);
		message_unref(e.msg);
		return;
	}
	ua_push(ch, tag, q, NULL, &e);
	ch->unacked_count++;
	broker_persist_delivered(ch->own.b, q, e.msg);
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

/* ---- tx -------------------------------------------------------------- */

static void tx_discard(struct channel *ch)
{
	for (size_t i = 0; i < ch->ntxp; i++)
		message_unref(ch->txp[i].msg);
	ch->ntxp = 0;
	ch->ntxa = 0;
}

/* Returns the store ticket the commit-ok must wait for, or UINT64_MAX when
 * the channel failed. */
static uint64_t tx_commit(struct channel *ch)
{
	size_t np = ch->ntxp;
	uint64_t ticket = 0;
	ch->ntxp = 0;
	for (size_t i = 0; i < np; i++) {
		uint64_t t = channel_publish_route(ch, ch->txp[i].msg, NULL, ch->txp[i].mandatory, 0);
		if (t > ticket)
			ticket = t;
	}
	size_t na = ch->ntxa;
	ch->ntxa = 0;
	for (size_t i = 0; i < na; i++) {
		struct tx_ack *a = &ch->txa[i];
		if (settle_tags(ch, a->tag, a->multiple, (enum settle_kind)a->kind, CODEC_TX_COMMIT) != 0)
			return UINT64_MAX;
	}
	return ticket;
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
		channel_on_publish(ch, &a->basic_publish);
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
			uint64_t ticket = tx_commit(ch);
			if (ticket == UINT64_MAX || ch->st != CHANNEL_ST_OPEN)
				return 0;
			/* commit-ok once the transaction's persistent messages are on disk */
			channel_reply_later(ch, 0, ticket, PENDING_COMMIT_OK);
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
	channel_replies_forget(ch);
}
