/*
 * A connection's channels: the table of open channels, the sink through
 * which channels reach the connection, resource alarms, and the dispatch of
 * each parsed frame to the connection class or to its channel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/channel.h"
#include "codec/frame.h"
#include "codec/gen_methods.h"
#include "net/conn.h"
#include "net/conn_int.h"
#include "util/xalloc.h"

/* ---- channels -------------------------------------------------------- */

static struct channel *conn_chan_find(struct conn *c, uint16_t id)
{
	for (uint16_t i = 0; i < c->nchans; i++)
		if (c->chans[i].id == id)
			return c->chans[i].ch;
	return NULL;
}

static void conn_chan_remove(struct conn *c, uint16_t id)
{
	for (uint16_t i = 0; i < c->nchans; i++) {
		if (c->chans[i].id == id) {
			struct channel *ch = c->chans[i].ch;
			c->chans[i] = c->chans[--c->nchans];
			channel_free(ch);
			return;
		}
	}
}

void conn_chans_free(struct conn *c)
{
	while (c->nchans > 0) {
		struct channel *ch = c->chans[--c->nchans].ch;
		channel_free(ch);
	}
	free(c->chans);
	c->chans = NULL;
	c->chans_cap = 0;
}

static void sink_send_method(void *conn, uint16_t ch, uint32_t id, const void *args)
{
	conn_send_method(conn, ch, id, args);
}

static void sink_send_content(void *conn, uint16_t ch, uint32_t id, const void *args,
                              const struct message *m)
{
	conn_send_content(conn, ch, id, args, m);
}

static void sink_hard_error(void *conn, uint16_t code, const char *text, uint32_t method_id)
{
	conn_close(conn, code, text, method_id);
}

static bool sink_can_deliver(void *conn)
{
	struct conn *c = conn;
	if (c->st != CONN_ST_OPEN)
		return false;
	if (conn_output_full(c)) {
		c->deliver_refused = true; /* conn_update_io resumes the consumers */
		return false;
	}
	return true;
}

static void sink_published(void *conn)
{
	struct conn *c = conn;
	c->published = true;
	if (c->b->memory_alarm || c->b->disk_alarm)
		conn_alarm_changed(c, true);
}

static const struct channel_sink_ops conn_sink_ops = {
	.send_method = sink_send_method,
	.send_content = sink_send_content,
	.hard_error = sink_hard_error,
	.can_deliver = sink_can_deliver,
	.published = sink_published,
};

void conn_alarm_changed(struct conn *c, bool alarm)
{
	if (c->st != CONN_ST_OPEN || !c->published)
		return;
	if (alarm && !c->blocked_sent) {
		c->blocked_sent = true;
		if (c->caps & CONN_CAP_BLOCKED) {
			struct codec_connection_blocked m = {
				.reason = bytes_of(c->b->disk_alarm ? "low on disk" : "low on memory"),
			};
			conn_send_method(c, 0, CODEC_CONNECTION_BLOCKED, &m);
		}
		log_warning(&c->b->log, "connection %s: blocked (resource alarm)", c->peer);
	} else if (!alarm && c->blocked_sent) {
		c->blocked_sent = false;
		if (c->caps & CONN_CAP_BLOCKED) {
			struct codec_connection_unblocked m = { 0 };
			conn_send_method(c, 0, CODEC_CONNECTION_UNBLOCKED, &m);
		}
	}
	conn_update_io(c);
}

/* ---- frame dispatch -------------------------------------------------- */

/*
 * The negotiated channel_max bounds both how many channels are open and
 * their numbers.  RabbitMQ checks only the count (its text below); a number
 * above channel_max, which the spec forbids, is refused here too.
 */
static void conn_channel_open(struct conn *c, uint16_t id)
{
	if (c->nchans >= c->channel_max) {
		conn_close_fmt(c, CODEC_NOT_ALLOWED, 0,
		               "number of channels opened (%u) has reached the negotiated "
		               "channel_max (%u)", c->nchans, c->channel_max);
		return;
	}
	if (id == 0 || id > c->channel_max) {
		conn_close_fmt(c, CODEC_NOT_ALLOWED, CODEC_CHANNEL_OPEN,
		               "channel number %u is out of range (channel_max %u)", id, c->channel_max);
		return;
	}
	if (conn_chan_find(c, id)) {
		conn_close_fmt(c, CODEC_CHANNEL_ERROR, CODEC_CHANNEL_OPEN,
		               "second 'channel.open' seen");
		return;
	}
	if (c->nchans == c->chans_cap) {
		c->chans_cap = c->chans_cap ? (uint16_t)(c->chans_cap * 2) : 2;
		c->chans = xrealloc(c->chans, c->chans_cap * sizeof(*c->chans));
	}
	struct channel_owner owner = {
		.ops = &conn_sink_ops,
		.conn = c,
		.b = c->b,
		.vhost = c->vhost,
		.frame_max = c->frame_max,
		.consumer_cancel_notify = (c->caps & CONN_CAP_CANCEL_NOTIFY) != 0,
		.user = c->user,
		.conn_id = c->id,
	};
	c->chans[c->nchans].id = id;
	c->chans[c->nchans].ch = channel_new(&owner, id);
	c->nchans++;
	struct codec_channel_open_ok ok = { 0 };
	conn_send_method(c, id, CODEC_CHANNEL_OPEN_OK, &ok);
}

void conn_on_frame(struct conn *c, const struct frame *f)
{
	if (c->st == CONN_ST_CLOSING) {
		/* After connection.close only close-ok (or a crossing close) counts. */
		uint32_t id;
		if (f->type != FRAME_METHOD || f->channel != 0 || frame_method_id(f->payload, &id) != CODEC_OK)
			return;
		if (id == CODEC_CONNECTION_CLOSE_OK) {
			conn_finish(c);
		} else if (id == CODEC_CONNECTION_CLOSE) {
			conn_close_ok(c);
		}
		return;
	}
	if (f->type == FRAME_HEARTBEAT) {
		if (f->channel != 0)
			conn_close_fmt(c, CODEC_UNEXPECTED_FRAME, 0,
			               "heartbeat frame on channel %u", f->channel);
		return;
	}
	if (f->channel == 0) {
		if (f->type != FRAME_METHOD) {
			conn_close_fmt(c, CODEC_UNEXPECTED_FRAME, 0,
			               "content frame of type %u on channel 0", f->type);
			return;
		}
		uint32_t id;
		union codec_method_args a;
		int rc = codec_method_decode(f->payload, &id, &a);
		if (rc != CODEC_OK) {
			conn_close_fmt(c, (uint16_t)codec_status_reply_code(rc), 0, "%s",
			               codec_status_text(rc));
			return;
		}
		if (id >> 16 != CODEC_CLASS_CONNECTION) {
			conn_close_fmt(c, CODEC_COMMAND_INVALID, id, "%s on channel 0",
			               codec_method_name(id));
			return;
		}
		conn_on_method0(c, id, &a);
		return;
	}
	if (c->st != CONN_ST_OPEN) {
		conn_close_fmt(c, CODEC_COMMAND_INVALID, 0,
		               "frame on channel %u before connection.open", f->channel);
		return;
	}
	struct channel *ch = conn_chan_find(c, f->channel);
	if (!ch) {
		uint32_t id = 0;
		if (f->type == FRAME_METHOD && frame_method_id(f->payload, &id) == CODEC_OK &&
		    id == CODEC_CHANNEL_OPEN) {
			/* channel.open has only a reserved shortstr; validate it anyway */
			union codec_method_args a;
			int rc = codec_method_decode(f->payload, &id, &a);
			if (rc != CODEC_OK) {
				conn_close_fmt(c, (uint16_t)codec_status_reply_code(rc), id, "%s",
				               codec_status_text(rc));
				return;
			}
			conn_channel_open(c, f->channel);
			return;
		}
		conn_close_fmt(c, CODEC_CHANNEL_ERROR, id, "expected 'channel.open' on channel %u",
		               f->channel);
		return;
	}
	if (f->type == FRAME_METHOD) {
		uint32_t id;
		if (frame_method_id(f->payload, &id) == CODEC_OK && id == CODEC_CHANNEL_OPEN) {
			conn_close_fmt(c, CODEC_CHANNEL_ERROR, id, "second 'channel.open' seen");
			return;
		}
	}
	if (channel_handle_frame(ch, f) == 1)
		conn_chan_remove(c, f->channel);
}

