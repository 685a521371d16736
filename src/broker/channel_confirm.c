/*
 * Publisher confirms and deferred tx.commit-ok.  Each answer a publisher is
 * owed goes into the channel's FIFO with the store ticket that must be
 * durable first (0: nothing to wait for).  Answers are released in order
 * from the before-sleep hook, so consecutive acks collapse into one
 * basic.ack with multiple=true, and a confirm never precedes the
 * basic.return of its message.
 */
#include <stdlib.h>

#include "broker/broker.h"
#include "broker/channel_int.h"
#include "util/xalloc.h"

static struct pending_reply *pr_at(struct channel *ch, size_t i)
{
	return &ch->pr[(ch->pr_head + i) % ch->pr_cap];
}

static void confirm_list_add(struct broker *b, struct channel *ch)
{
	if (ch->pr_listed)
		return;
	if (b->nconfirm == b->capconfirm) {
		b->capconfirm = b->capconfirm ? b->capconfirm * 2 : 16;
		b->confirm_chans = xrealloc(b->confirm_chans, b->capconfirm * sizeof(*b->confirm_chans));
	}
	b->confirm_chans[b->nconfirm++] = ch;
	ch->pr_listed = true;
}

void channel_reply_later(struct channel *ch, uint64_t seq, uint64_t ticket, enum pending_kind k)
{
	if (ch->pr_n == ch->pr_cap) {
		size_t ncap = ch->pr_cap ? ch->pr_cap * 2 : 16;
		struct pending_reply *np = xmalloc(ncap * sizeof(*np));
		for (size_t i = 0; i < ch->pr_n; i++)
			np[i] = *pr_at(ch, i);
		free(ch->pr);
		ch->pr = np;
		ch->pr_cap = ncap;
		ch->pr_head = 0;
	}
	*pr_at(ch, ch->pr_n++) = (struct pending_reply){ seq, ticket, k };
	confirm_list_add(ch->own.b, ch);
}

static void send_acks(struct channel *ch, uint64_t first, uint64_t last)
{
	struct codec_basic_ack a = { .delivery_tag = last, .multiple = last != first };
	channel_send(ch, CODEC_BASIC_ACK, &a);
}

/* Release every answer whose ticket is durable; true when none is left. */
static bool channel_release(struct channel *ch, uint64_t durable, uint64_t failed_upto)
{
	uint64_t run_first = 0, run_last = 0;
	while (ch->pr_n > 0) {
		struct pending_reply *p = pr_at(ch, 0);
		if (p->ticket > durable)
			break;
		enum pending_kind k = p->kind;
		if (k == PENDING_ACK && p->ticket && p->ticket <= failed_upto)
			k = PENDING_NACK; /* the write failed: never confirm it */
		if (k == PENDING_ACK && run_last && p->seq == run_last + 1) {
			run_last = p->seq;
		} else {
			if (run_last)
				send_acks(ch, run_first, run_last);
			run_first = run_last = 0;
			if (k == PENDING_ACK) {
				run_first = run_last = p->seq;
			} else if (k == PENDING_NACK) {
				struct codec_basic_nack n = { .delivery_tag = p->seq };
				channel_send(ch, CODEC_BASIC_NACK, &n);
			} else {
				struct codec_tx_commit_ok ok = { 0 };
				channel_send(ch, CODEC_TX_COMMIT_OK, &ok);
			}
		}
		ch->pr_head = (ch->pr_head + 1) % ch->pr_cap;
		ch->pr_n--;
	}
	if (run_last)
		send_acks(ch, run_first, run_last);
	return ch->pr_n == 0;
}

void broker_release_replies(struct broker *b)
{
	size_t keep = 0;
	for (size_t i = 0; i < b->nconfirm; i++) {
		struct channel *ch = b->confirm_chans[i];
		if (!ch)
			continue;
		if (channel_release(ch, b->store_durable, b->store_failed)) {
			ch->pr_listed = false;
			continue;
		}
		b->confirm_chans[keep++] = ch;
	}
	b->nconfirm = keep;
}

void channel_replies_forget(struct channel *ch)
{
	struct broker *b = ch->own.b;
	if (ch->pr_listed) {
		for (size_t i = 0; i < b->nconfirm; i++)
			if (b->confirm_chans[i] == ch)
				b->confirm_chans[i] = NULL;
		ch->pr_listed = false;
	}
	free(ch->pr);
	ch->pr = NULL;
	ch->pr_n = ch->pr_cap = ch->pr_head = 0;
}
