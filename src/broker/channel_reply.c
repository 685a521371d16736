/*
 * Direct reply-to (RabbitMQ's amq.rabbitmq.reply-to pseudo-queue).  An RPC
 * client consumes from "amq.rabbitmq.reply-to" with no-ack; the messages it
 * publishes with reply_to "amq.rabbitmq.reply-to" get a reply address naming
 * its channel, and a reply published to the default exchange with that
 * address as routing key goes straight to the channel, with no queue.
 *
 * Addresses carry a random per-channel secret so one client cannot guess
 * another's; the broker's map from address to channel is the only index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "broker/broker.h"
#include "broker/channel_int.h"
#include "broker/message.h"
#include "util/xalloc.h"

#define REPLY_PSEUDO_QUEUE "amq.rabbitmq.reply-to"

bool channel_reply_is_pseudo_queue(struct bytes name)
{
	return bytes_eq_str(name, REPLY_PSEUDO_QUEUE);
}

bool channel_reply_is_address(struct bytes rk)
{
	size_t n = sizeof(REPLY_PSEUDO_QUEUE) - 1;
	return rk.len > n + 1 && memcmp(rk.ptr, REPLY_PSEUDO_QUEUE ".", n + 1) == 0;
}

int channel_reply_consume(struct channel *ch, struct codec_basic_consume *m)
{
	if (!m->no_ack) {
		reply_set(&ch->err, CODEC_PRECONDITION_FAILED, "reply consumer cannot acknowledge");
		channel_fail(ch, CODEC_BASIC_CONSUME);
		return -1;
	}
	if (ch->reply_tag[0]) {
		reply_set(&ch->err, CODEC_PRECONDITION_FAILED, "reply consumer already set");
		channel_fail(ch, CODEC_BASIC_CONSUME);
		return -1;
	}
	uint64_t secret;
	if (getrandom(&secret, sizeof(secret), 0) != sizeof(secret))
		secret = (uint64_t)ch->own.conn_id * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)ch;
	snprintf(ch->reply_addr, sizeof(ch->reply_addr), REPLY_PSEUDO_QUEUE ".%llx.%x.%016llx",
	         (unsigned long long)ch->own.conn_id, ch->id, (unsigned long long)secret);
	if (m->consumer_tag.len)
		snprintf(ch->reply_tag, sizeof(ch->reply_tag), "%.*s", (int)m->consumer_tag.len,
		         (const char *)m->consumer_tag.ptr);
	else
		snprintf(ch->reply_tag, sizeof(ch->reply_tag), "amq.ctag-reply-%llx-%x",
		         (unsigned long long)ch->own.conn_id, ch->id);
	hmap_put(&ch->own.b->reply_to, bytes_of(ch->reply_addr), ch);
	if (!m->no_wait) {
		struct codec_basic_consume_ok ok = { .consumer_tag = bytes_of(ch->reply_tag) };
		channel_send(ch, CODEC_BASIC_CONSUME_OK, &ok);
	}
	return 0;
}

bool channel_reply_cancel(struct channel *ch, struct bytes tag)
{
	if (!ch->reply_tag[0] || !bytes_eq_str(tag, ch->reply_tag))
		return false;
	channel_reply_teardown(ch);
	return true;
}

void channel_reply_teardown(struct channel *ch)
{
	if (!ch->reply_tag[0])
		return;
	hmap_del(&ch->own.b->reply_to, bytes_of(ch->reply_addr));
	ch->reply_tag[0] = '\0';
	ch->reply_addr[0] = '\0';
}

/*
 * Rewrite a publish's reply_to of "amq.rabbitmq.reply-to" into this
 * channel's address.  Returns 1 and fills *out (heap, caller frees) when
 * props were rewritten, 0 when nothing to do, -1 on error (channel failed).
 */
int channel_reply_rewrite_props(struct channel *ch, const struct codec_basic_props *props,
                                uint8_t **out, size_t *outlen)
{
	struct codec_basic_props p = *props;
	if (!(p.flags & CODEC_BASIC_REPLY_TO_FLAG) || !channel_reply_is_pseudo_queue(p.reply_to))
		return 0;
	if (!ch->reply_tag[0]) {
		reply_set(&ch->err, CODEC_PRECONDITION_FAILED, "fast reply consumer does not exist");
		channel_fail(ch, CODEC_BASIC_PUBLISH);
		return -1;
	}
	p.reply_to = bytes_of(ch->reply_addr);
	size_t n = codec_size_basic_props(&p);
	uint8_t *buf = xmalloc(n);
	struct wr w = wr_init(buf, n);
	codec_encode_basic_props(&w, &p);
	*out = buf;
	*outlen = n;
	return 1;
}

bool channel_reply_deliver(struct broker *b, const struct message *m)
{
	struct channel *ch = hmap_get(&b->reply_to, m->routing_key);
	if (!ch || ch->st != CHANNEL_ST_OPEN)
		return false;
	struct codec_basic_deliver d = {
		.consumer_tag = bytes_of(ch->reply_tag),
		.delivery_tag = ++ch->next_tag,
		.redelivered = false,
		.exchange = m->exchange,
		.routing_key = m->routing_key,
	};
	ch->own.ops->send_content(ch->own.conn, ch->id, CODEC_BASIC_DELIVER, &d, m);
	channel_note_noack_tag(ch, d.delivery_tag);
	return true;
}
