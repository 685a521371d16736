/*
 * Channel lifecycle and the exchange/queue classes.  Each method handler
 * either replies (-ok unless no-wait) or fills ch->err and calls
 * channel_fail(), which closes the channel for soft errors and the
 * connection for hard ones, as the spec and RabbitMQ do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/users.h"
#include "broker/broker.h"
#include "broker/channel_int.h"
#include "broker/exchange.h"
#include "broker/vhost.h"
#include "util/xalloc.h"

void channel_send(struct channel *ch, uint32_t id, const void *args)
{
	ch->own.ops->send_method(ch->own.conn, ch->id, id, args);
}

uint16_t channel_id(const struct channel *ch)
{
	return ch->id;
}

struct channel *channel_new(const struct channel_owner *owner, uint16_t id)
{
	struct channel *ch = xcalloc(1, sizeof(*ch));
	ch->own = *owner;
	ch->id = id;
	ch->st = CHANNEL_ST_OPEN;
	ch->flow_active = true;
	return ch;
}

void channel_free(struct channel *ch)
{
	channel_basic_teardown(ch);
	free(ch);
}

void channel_fail(struct channel *ch, uint32_t method_id)
{
	uint16_t code = ch->err.code ? ch->err.code : CODEC_INTERNAL_ERROR;
	if (codec_reply_is_hard(code)) {
		ch->own.ops->hard_error(ch->own.conn, code, ch->err.text, method_id);
		return;
	}
	log_info(&ch->own.b->log, "channel %u: closing: %s", ch->id, ch->err.text);
	struct codec_channel_close m = {
		.reply_code = code,
		.reply_text = bytes_of(ch->err.text),
		.class_id = (uint16_t)(method_id >> 16),
		.method_id = (uint16_t)(method_id & 0xffff),
	};
	channel_send(ch, CODEC_CHANNEL_CLOSE, &m);
	/* Unacked messages go back and consumers stop now, not at close-ok. */
	channel_basic_teardown(ch);
	ch->st = CHANNEL_ST_CLOSING;
	memset(&ch->err, 0, sizeof(ch->err));
}

/* Resolve "" to the channel's last declared queue, as RabbitMQ does. */
static struct bytes channel_qname(struct channel *ch, struct bytes name)
{
	if (name.len == 0 && ch->last_queue[0])
		return bytes_of(ch->last_queue);
	return name;
}

struct queue *channel_queue_lookup(struct channel *ch, struct bytes name, uint32_t method_id)
{
	name = channel_qname(ch, name);
	struct queue *q = vhost_queue_find(ch->own.vhost, name);
	char buf[300];
	if (!q) {
		reply_set(&ch->err, CODEC_NOT_FOUND, "no queue '%s' in vhost '%s'",
		          reply_name(buf, sizeof(buf), name.ptr, name.len), vhost_name(ch->own.vhost));
		channel_fail(ch, method_id);
		return NULL;
	}
	if (q->owner && q->owner != ch->own.conn) {
		reply_set(&ch->err, CODEC_RESOURCE_LOCKED,
		          "cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It "
		          "could be originally declared on another connection or the exclusive "
		          "property value does not match that of the original declaration.",
		          reply_name(buf, sizeof(buf), name.ptr, name.len), vhost_name(ch->own.vhost));
		channel_fail(ch, method_id);
		return NULL;
	}
	return q;
}

/* ---- permissions ----------------------------------------------------- */

/*
 * RabbitMQ's access check: configure / write / read regular expressions of
 * the user's permissions in this vhost, matched against the resource name
 * (the default exchange is called "amq.default" for this purpose).
 * A refusal is a 403 channel error.
 */
bool channel_allowed(struct channel *ch, enum users_perm kind, const char *type,
                     struct bytes name, uint32_t method_id)
{
	if (strcmp(type, "exchange") == 0 && name.len == 0)
		name = bytes_of("amq.default");
	if (users_permission_check_bytes(ch->own.b->users, ch->own.user, vhost_name(ch->own.vhost),
	                                 kind, name))
		return true;
	char buf[300];
	reply_set(&ch->err, CODEC_ACCESS_REFUSED,
	          "access to %s '%s' in vhost '%s' refused for user '%s'", type,
	          reply_name(buf, sizeof(buf), name.ptr, name.len), vhost_name(ch->own.vhost),
	          ch->own.user);
	channel_fail(ch, method_id);
	return false;
}

/*
 * Durable definitions reach the disk before the -ok that confirms them
 * (a save writes only when something durable changed).
 */
static bool channel_defs_saved(struct channel *ch, uint32_t method_id)
{
	char err[256];
	if (broker_defs_save(ch->own.b, err, sizeof(err)) == 0)
		return true;
	log_error(&ch->own.b->log, "saving definitions: %s", err);
	ch->own.ops->hard_error(ch->own.conn, CODEC_INTERNAL_ERROR,
	                        "INTERNAL_ERROR - cannot save definitions", method_id);
	return false;
}

/* ---- exchange class -------------------------------------------------- */

static void on_exchange_declare(struct channel *ch, struct codec_exchange_declare *m)
{
	if (!m->passive &&
	    !channel_allowed(ch, USERS_PERM_CONFIGURE, "exchange", m->exchange, CODEC_EXCHANGE_DECLARE))
		return;
	if (vhost_exchange_declare(ch->own.vhost, m->exchange, m->type, m->passive, m->durable,
	                           m->auto_delete, m->internal, m->arguments, &ch->err) != 0)
		return channel_fail(ch, CODEC_EXCHANGE_DECLARE);
	if (m->durable && !m->passive && !channel_defs_saved(ch, CODEC_EXCHANGE_DECLARE))
		return;
	if (!m->no_wait) {
		struct codec_exchange_declare_ok ok = { 0 };
		channel_send(ch, CODEC_EXCHANGE_DECLARE_OK, &ok);
	}
}

static void on_exchange_delete(struct channel *ch, struct codec_exchange_delete *m)
{
	if (!channel_allowed(ch, USERS_PERM_CONFIGURE, "exchange", m->exchange, CODEC_EXCHANGE_DELETE))
		return;
	if (vhost_exchange_delete(ch->own.vhost, m->exchange, m->if_unused, &ch->err) != 0)
		return channel_fail(ch, CODEC_EXCHANGE_DELETE);
	if (!channel_defs_saved(ch, CODEC_EXCHANGE_DELETE))
		return;
	if (!m->no_wait) {
		struct codec_exchange_delete_ok ok = { 0 };
		channel_send(ch, CODEC_EXCHANGE_DELETE_OK, &ok);
	}
}

static void on_exchange_bind(struct channel *ch, struct codec_exchange_bind *m, bool bind)
{
	uint32_t mid = bind ? CODEC_EXCHANGE_BIND : CODEC_EXCHANGE_UNBIND;
	if (!channel_allowed(ch, USERS_PERM_WRITE, "exchange", m->destination, mid) ||
	    !channel_allowed(ch, USERS_PERM_READ, "exchange", m->source, mid))
		return;
	int rc = bind ? vhost_exchange_bind(ch->own.vhost, m->destination, m->source,
	                                    m->routing_key, m->arguments, &ch->err)
	              : vhost_exchange_unbind(ch->own.vhost, m->destination, m->source,
	                                      m->routing_key, m->arguments, &ch->err);
	uint32_t id = bind ? CODEC_EXCHANGE_BIND : CODEC_EXCHANGE_UNBIND;
	if (rc != 0)
		return channel_fail(ch, id);
	if (!channel_defs_saved(ch, id))
		return;
	if (!m->no_wait) {
		if (bind) {
			struct codec_exchange_bind_ok ok = { 0 };
			channel_send(ch, CODEC_EXCHANGE_BIND_OK, &ok);
		} else {
			struct codec_exchange_unbind_ok ok = { 0 };
			channel_send(ch, CODEC_EXCHANGE_UNBIND_OK, &ok);
		}
	}
}

/* ---- queue class ----------------------------------------------------- */

static void on_queue_declare(struct channel *ch, struct codec_queue_declare *m)
{
	struct queue *q = NULL;
	struct broker *b = ch->own.b;
	if (!m->passive && m->queue.len &&
	    !channel_allowed(ch, USERS_PERM_CONFIGURE, "queue", m->queue, CODEC_QUEUE_DECLARE))
		return;
	if (vhost_queue_declare(ch->own.vhost, m->queue, m->passive, m->durable, m->exclusive,
	                        m->auto_delete, m->arguments, ch->own.conn, broker_queue_hooks(),
	                        b, &q, &ch->err) != 0)
		return channel_fail(ch, CODEC_QUEUE_DECLARE);
	snprintf(ch->last_queue, sizeof(ch->last_queue), "%.*s", (int)q->name.len,
	         (const char *)q->name.ptr);
	queue_touch(q, broker_now_ms(b));
	if ((q->flags & QUEUE_F_DURABLE) && !m->passive &&
	    !channel_defs_saved(ch, CODEC_QUEUE_DECLARE))
		return;
	if (!m->no_wait) {
		struct codec_queue_declare_ok ok = {
			.queue = q->name,
			.message_count = queue_message_count(q),
			.consumer_count = queue_consumer_count(q),
		};
		channel_send(ch, CODEC_QUEUE_DECLARE_OK, &ok);
	}
}

static void on_queue_bind(struct channel *ch, struct codec_queue_bind *m, bool bind)
{
	uint32_t id = bind ? CODEC_QUEUE_BIND : CODEC_QUEUE_UNBIND;
	struct bytes qn = channel_qname(ch, m->queue);
	if (!channel_allowed(ch, USERS_PERM_WRITE, "queue", qn, id) ||
	    !channel_allowed(ch, USERS_PERM_READ, "exchange", m->exchange, id))
		return;
	struct queue *q = vhost_queue_find(ch->own.vhost, qn);
	if (q && !channel_queue_lookup(ch, qn, id))
		return;
	int rc = bind ? vhost_queue_bind(ch->own.vhost, qn, m->exchange, m->routing_key,
	                                 m->arguments, &ch->err)
	              : vhost_queue_unbind(ch->own.vhost, qn, m->exchange, m->routing_key,
	                                   m->arguments, &ch->err);
	if (rc != 0)
		return channel_fail(ch, id);
	if (!channel_defs_saved(ch, id))
		return;
	if (bind && !m->no_wait) {
		struct codec_queue_bind_ok ok = { 0 };
		channel_send(ch, CODEC_QUEUE_BIND_OK, &ok);
	} else if (!bind) {
		struct codec_queue_unbind_ok ok = { 0 };
		channel_send(ch, CODEC_QUEUE_UNBIND_OK, &ok);
	}
}

static void on_queue_purge(struct channel *ch, struct codec_queue_purge *m)
{
	if (!channel_allowed(ch, USERS_PERM_READ, "queue", channel_qname(ch, m->queue),
	                     CODEC_QUEUE_PURGE))
		return;
	struct queue *q = channel_queue_lookup(ch, m->queue, CODEC_QUEUE_PURGE);
	if (!q)
		return;
	uint32_t n = queue_purge(q);
	if (!m->no_wait) {
		struct codec_queue_purge_ok ok = { .message_count = n };
		channel_send(ch, CODEC_QUEUE_PURGE_OK, &ok);
	}
}

static void on_queue_delete(struct channel *ch, struct codec_queue_delete *m)
{
	struct bytes qn = channel_qname(ch, m->queue);
	uint32_t n = 0;
	if (!channel_allowed(ch, USERS_PERM_CONFIGURE, "queue", qn, CODEC_QUEUE_DELETE))
		return;
	struct queue *q = vhost_queue_find(ch->own.vhost, qn);
	if (q) {
		if (!channel_queue_lookup(ch, qn, CODEC_QUEUE_DELETE))
			return;
		if (vhost_queue_delete(ch->own.vhost, qn, m->if_unused, m->if_empty, &n,
		                       &ch->err) != 0)
			return channel_fail(ch, CODEC_QUEUE_DELETE);
		if (!channel_defs_saved(ch, CODEC_QUEUE_DELETE))
			return;
	}
	if (!m->no_wait) {
		struct codec_queue_delete_ok ok = { .message_count = n };
		channel_send(ch, CODEC_QUEUE_DELETE_OK, &ok);
	}
}

/* ---- dispatch -------------------------------------------------------- */

static int channel_on_method(struct channel *ch, const struct frame *f)
{
	uint32_t id;
	union codec_method_args a;
	int rc = codec_method_decode(f->payload, &id, &a);
	if (rc != CODEC_OK) {
		ch->own.ops->hard_error(ch->own.conn, (uint16_t)codec_status_reply_code(rc),
		                        codec_status_text(rc), 0);
		return 0;
	}
	const struct codec_method_info *mi = codec_method_lookup(id);
	if (ch->st == CHANNEL_ST_CLOSING) {
		/* after channel.close only close / close-ok mean anything */
		if (id == CODEC_CHANNEL_CLOSE_OK)
			return 1;
		if (id == CODEC_CHANNEL_CLOSE) {
			struct codec_channel_close_ok ok = { 0 };
			channel_send(ch, CODEC_CHANNEL_CLOSE_OK, &ok);
			return 1;
		}
		return 0;
	}
	if (ch->in_publish) {
		reply_set(&ch->err, CODEC_UNEXPECTED_FRAME,
		          "expected content header for class 60, got non content header frame instead");
		channel_fail(ch, id);
		return 0;
	}
	if (!(mi->flags & CODEC_M_SERVER_RECEIVES)) {
		reply_set(&ch->err, CODEC_COMMAND_INVALID, "%s is not sent by clients", mi->name);
		channel_fail(ch, id);
		return 0;
	}
	switch (id) {
	case CODEC_CHANNEL_CLOSE: {
		struct codec_channel_close_ok ok = { 0 };
		channel_send(ch, CODEC_CHANNEL_CLOSE_OK, &ok);
		return 1;
	}
	case CODEC_CHANNEL_CLOSE_OK:
		return 0; /* stray close-ok: ignore */
	case CODEC_CHANNEL_FLOW: {
		ch->flow_active = a.channel_flow.active;
		struct codec_channel_flow_ok ok = { .active = ch->flow_active };
		channel_send(ch, CODEC_CHANNEL_FLOW_OK, &ok);
		if (ch->flow_active)
			channel_resume(ch);
		return 0;
	}
	case CODEC_EXCHANGE_DECLARE:
		on_exchange_declare(ch, &a.exchange_declare);
		return 0;
	case CODEC_EXCHANGE_DELETE:
		on_exchange_delete(ch, &a.exchange_delete);
		return 0;
	case CODEC_EXCHANGE_BIND:
		on_exchange_bind(ch, &a.exchange_bind, true);
		return 0;
	case CODEC_EXCHANGE_UNBIND:
	{
		struct codec_exchange_bind eb = {
			.destination = a.exchange_unbind.destination,
			.source = a.exchange_unbind.source,
			.routing_key = a.exchange_unbind.routing_key,
			.no_wait = a.exchange_unbind.no_wait,
			.arguments = a.exchange_unbind.arguments,
		};
		on_exchange_bind(ch, &eb, false);
		return 0;
	}
	case CODEC_QUEUE_DECLARE:
		on_queue_declare(ch, &a.queue_declare);
		return 0;
	case CODEC_QUEUE_BIND:
		on_queue_bind(ch, &a.queue_bind, true);
		return 0;
	case CODEC_QUEUE_UNBIND: {
		struct codec_queue_bind qb = {
			.queue = a.queue_unbind.queue,
			.exchange = a.queue_unbind.exchange,
			.routing_key = a.queue_unbind.routing_key,
			.arguments = a.queue_unbind.arguments,
		};
		on_queue_bind(ch, &qb, false);
		return 0;
	}
	case CODEC_QUEUE_PURGE:
		on_queue_purge(ch, &a.queue_purge);
		return 0;
	case CODEC_QUEUE_DELETE:
		on_queue_delete(ch, &a.queue_delete);
		return 0;
	default:
		return channel_basic_method(ch, id, &a);
	}
}

int channel_handle_frame(struct channel *ch, const struct frame *f)
{
	switch (f->type) {
	case FRAME_METHOD:
		return channel_on_method(ch, f);
	case FRAME_HEADER:
	case FRAME_BODY:
		if (ch->st == CHANNEL_ST_CLOSING)
			return 0;
		return channel_basic_content(ch, f);
	default:
		ch->own.ops->hard_error(ch->own.conn, CODEC_FRAME_ERROR,
		                        "FRAME_ERROR - unknown frame type", 0);
		return 0;
	}
}
