/*
 * Tests for the generated method codec (src/codec/gen_methods.[ch]).
 *
 * The test carries its own transcription of every method's wire layout
 * (reserved fields included) and its own tiny encoder built from it, so each
 * generated encoder is checked byte for byte against an independent reading
 * of the spec, then decoded back and compared field by field.  Hand-written
 * golden payloads pin the bit packing and byte order, and every error path
 * is driven: truncation at each offset, unknown ids, trailing bytes, bad
 * property flags, over-long short strings and short output buffers.
 *
 * Buffers handed to decoders are heap copies of exactly the bytes under
 * test, so AddressSanitizer catches any read past them.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/frame.h"
#include "codec/gen_methods.h"
#include "codec/table.h"
#include "codec/wire.h"
#include "runner.h"

enum ftype {
	T_END = 0,
	T_OCTET,
	T_SHORT,
	T_LONG,
	T_LONGLONG,
	T_TIMESTAMP,
	T_BIT,
	T_SHORTSTR,
	T_LONGSTR,
	T_TABLE,
};

/* One field on the wire: name is NULL for a reserved field. */
struct fdesc {
	const char *name;
	size_t off;
	enum ftype type;
};

#define MAX_FIELDS 10

struct mdesc {
	uint32_t id;
	const char *name;
	struct fdesc f[MAX_FIELDS];
};

#define F(s, m, t) { #m, offsetof(struct codec_##s, m), t }
#define R(t) { NULL, 0, t }
#define M(ID, NAME, ...) { ID, NAME, { __VA_ARGS__ } }

/* Every method of 0-9-1 with RabbitMQ's extensions, in spec order. */
static const struct mdesc methods[] = {
	M(CODEC_CONNECTION_START, "connection.start",
	  F(connection_start, version_major, T_OCTET),
	  F(connection_start, version_minor, T_OCTET),
	  F(connection_start, server_properties, T_TABLE),
	  F(connection_start, mechanisms, T_LONGSTR),
	  F(connection_start, locales, T_LONGSTR)),
	M(CODEC_CONNECTION_START_OK, "connection.start-ok",
	  F(connection_start_ok, client_properties, T_TABLE),
	  F(connection_start_ok, mechanism, T_SHORTSTR),
	  F(connection_start_ok, response, T_LONGSTR),
	  F(connection_start_ok, locale, T_SHORTSTR)),
	M(CODEC_CONNECTION_SECURE, "connection.secure",
	  F(connection_secure, challenge, T_LONGSTR)),
	M(CODEC_CONNECTION_SECURE_OK, "connection.secure-ok",
	  F(connection_secure_ok, response, T_LONGSTR)),
	M(CODEC_CONNECTION_TUNE, "connection.tune",
	  F(connection_tune, channel_max, T_SHORT),
	  F(connection_tune, frame_max, T_LONG),
	  F(connection_tune, heartbeat, T_SHORT)),
	M(CODEC_CONNECTION_TUNE_OK, "connection.tune-ok",
	  F(connection_tune_ok, channel_max, T_SHORT),
	  F(connection_tune_ok, frame_max, T_LONG),
	  F(connection_tune_ok, heartbeat, T_SHORT)),
	M(CODEC_CONNECTION_OPEN, "connection.open",
	  F(connection_open, virtual_host, T_SHORTSTR),
	  R(T_SHORTSTR), R(T_BIT)),
	M(CODEC_CONNECTION_OPEN_OK, "connection.open-ok", R(T_SHORTSTR)),
	M(CODEC_CONNECTION_CLOSE, "connection.close",
	  F(connection_close, reply_code, T_SHORT),
	  F(connection_close, reply_text, T_SHORTSTR),
	  F(connection_close, class_id, T_SHORT),
	  F(connection_close, method_id, T_SHORT)),
	M(CODEC_CONNECTION_CLOSE_OK, "connection.close-ok", { NULL, 0, T_END }),
	M(CODEC_CONNECTION_BLOCKED, "connection.blocked",
	  F(connection_blocked, reason, T_SHORTSTR)),
	M(CODEC_CONNECTION_UNBLOCKED, "connection.unblocked", { NULL, 0, T_END }),
	M(CODEC_CONNECTION_UPDATE_SECRET, "connection.update-secret",
	  F(connection_update_secret, new_secret, T_LONGSTR),
	  F(connection_update_secret, reason, T_SHORTSTR)),
	M(CODEC_CONNECTION_UPDATE_SECRET_OK, "connection.update-secret-ok",
	  { NULL, 0, T_END }),

	M(CODEC_CHANNEL_OPEN, "channel.open", R(T_SHORTSTR)),
	M(CODEC_CHANNEL_OPEN_OK, "channel.open-ok", R(T_LONGSTR)),
	M(CODEC_CHANNEL_FLOW, "channel.flow", F(channel_flow, active, T_BIT)),
	M(CODEC_CHANNEL_FLOW_OK, "channel.flow-ok",
	  F(channel_flow_ok, active, T_BIT)),
	M(CODEC_CHANNEL_CLOSE, "channel.close",
	  F(channel_close, reply_code, T_SHORT),
	  F(channel_close, reply_text, T_SHORTSTR),
	  F(channel_close, class_id, T_SHORT),
	  F(channel_close, method_id, T_SHORT)),
	M(CODEC_CHANNEL_CLOSE_OK, "channel.close-ok", { NULL, 0, T_END }),

	M(CODEC_EXCHANGE_DECLARE, "exchange.declare", R(T_SHORT),
	  F(exchange_declare, exchange, T_SHORTSTR),
	  F(exchange_declare, type, T_SHORTSTR),
	  F(exchange_declare, passive, T_BIT),
	  F(exchange_declare, durable, T_BIT),
	  F(exchange_declare, auto_delete, T_BIT),
	  F(exchange_declare, internal, T_BIT),
	  F(exchange_declare, no_wait, T_BIT),
	  F(exchange_declare, arguments, T_TABLE)),
	M(CODEC_EXCHANGE_DECLARE_OK, "exchange.declare-ok", { NULL, 0, T_END }),
	M(CODEC_EXCHANGE_DELETE, "exchange.delete", R(T_SHORT),
	  F(exchange_delete, exchange, T_SHORTSTR),
	  F(exchange_delete, if_unused, T_BIT),
	  F(exchange_delete, no_wait, T_BIT)),
	M(CODEC_EXCHANGE_DELETE_OK, "exchange.delete-ok", { NULL, 0, T_END }),
	M(CODEC_EXCHANGE_BIND, "exchange.bind", R(T_SHORT),
	  F(exchange_bind, destination, T_SHORTSTR),
	  F(exchange_bind, source, T_SHORTSTR),
	  F(exchange_bind, routing_key, T_SHORTSTR),
	  F(exchange_bind, no_wait, T_BIT),
	  F(exchange_bind, arguments, T_TABLE)),
	M(CODEC_EXCHANGE_BIND_OK, "exchange.bind-ok", { NULL, 0, T_END }),
	M(CODEC_EXCHANGE_UNBIND, "exchange.unbind", R(T_SHORT),
	  F(exchange_unbind, destination, T_SHORTSTR),
	  F(exchange_unbind, source, T_SHORTSTR),
	  F(exchange_unbind, routing_key, T_SHORTSTR),
	  F(exchange_unbind, no_wait, T_BIT),
	  F(exchange_unbind, arguments, T_TABLE)),
	M(CODEC_EXCHANGE_UNBIND_OK, "exchange.unbind-ok", { NULL, 0, T_END }),

	M(CODEC_QUEUE_DECLARE, "queue.declare", R(T_SHORT),
	  F(queue_declare, queue, T_SHORTSTR),
	  F(queue_declare, passive, T_BIT),
	  F(queue_declare, durable, T_BIT),
	  F(queue_declare, exclusive, T_BIT),
	  F(queue_declare, auto_delete, T_BIT),
	  F(queue_declare, no_wait, T_BIT),
	  F(queue_declare, arguments, T_TABLE)),
	M(CODEC_QUEUE_DECLARE_OK, "queue.declare-ok",
	  F(queue_declare_ok, queue, T_SHORTSTR),
	  F(queue_declare_ok, message_count, T_LONG),
	  F(queue_declare_ok, consumer_count, T_LONG)),
	M(CODEC_QUEUE_BIND, "queue.bind", R(T_SHORT),
	  F(queue_bind, queue, T_SHORTSTR),
	  F(queue_bind, exchange, T_SHORTSTR),
	  F(queue_bind, routing_key, T_SHORTSTR),
	  F(queue_bind, no_wait, T_BIT),
	  F(queue_bind, arguments, T_TABLE)),
	M(CODEC_QUEUE_BIND_OK, "queue.bind-ok", { NULL, 0, T_END }),
	M(CODEC_QUEUE_PURGE, "queue.purge", R(T_SHORT),
	  F(queue_purge, queue, T_SHORTSTR),
	  F(queue_purge, no_wait, T_BIT)),
	M(CODEC_QUEUE_PURGE_OK, "queue.purge-ok",
	  F(queue_purge_ok, message_count, T_LONG)),
	M(CODEC_QUEUE_DELETE, "queue.delete", R(T_SHORT),
	  F(queue_delete, queue, T_SHORTSTR),
	  F(queue_delete, if_unused, T_BIT),
	  F(queue_delete, if_empty, T_BIT),
	  F(queue_delete, no_wait, T_BIT)),
	M(CODEC_QUEUE_DELETE_OK, "queue.delete-ok",
	  F(queue_delete_ok, message_count, T_LONG)),
	M(CODEC_QUEUE_UNBIND, "queue.unbind", R(T_SHORT),
	  F(queue_unbind, queue, T_SHORTSTR),
	  F(queue_unbind, exchange, T_SHORTSTR),
	  F(queue_unbind, routing_key, T_SHORTSTR),
	  F(queue_unbind, arguments, T_TABLE)),
	M(CODEC_QUEUE_UNBIND_OK, "queue.unbind-ok", { NULL, 0, T_END }),

	M(CODEC_BASIC_QOS, "basic.qos",
	  F(basic_qos, prefetch_size, T_LONG),
	  F(basic_qos, prefetch_count, T_SHORT),
	  F(basic_qos, global, T_BIT)),
	M(CODEC_BASIC_QOS_OK, "basic.qos-ok", { NULL, 0, T_END }),
	M(CODEC_BASIC_CONSUME, "basic.consume", R(T_SHORT),
	  F(basic_consume, queue, T_SHORTSTR),
	  F(basic_consume, consumer_tag, T_SHORTSTR),
	  F(basic_consume, no_local, T_BIT),
	  F(basic_consume, no_ack, T_BIT),
	  F(basic_consume, exclusive, T_BIT),
	  F(basic_consume, no_wait, T_BIT),
	  F(basic_consume, arguments, T_TABLE)),
	M(CODEC_BASIC_CONSUME_OK, "basic.consume-ok",
	  F(basic_consume_ok, consumer_tag, T_SHORTSTR)),
	M(CODEC_BASIC_CANCEL, "basic.cancel",
	  F(basic_cancel, consumer_tag, T_SHORTSTR),
	  F(basic_cancel, no_wait, T_BIT)),
	M(CODEC_BASIC_CANCEL_OK, "basic.cancel-ok",
	  F(basic_cancel_ok, consumer_tag, T_SHORTSTR)),
	M(CODEC_BASIC_PUBLISH, "basic.publish", R(T_SHORT),
	  F(basic_publish, exchange, T_SHORTSTR),
	  F(basic_publish, routing_key, T_SHORTSTR),
	  F(basic_publish, mandatory, T_BIT),
	  F(basic_publish, immediate, T_BIT)),
	M(CODEC_BASIC_RETURN, "basic.return",
	  F(basic_return, reply_code, T_SHORT),
	  F(basic_return, reply_text, T_SHORTSTR),
	  F(basic_return, exchange, T_SHORTSTR),
	  F(basic_return, routing_key, T_SHORTSTR)),
	M(CODEC_BASIC_DELIVER, "basic.deliver",
	  F(basic_deliver, consumer_tag, T_SHORTSTR),
	  F(basic_deliver, delivery_tag, T_LONGLONG),
	  F(basic_deliver, redelivered, T_BIT),
	  F(basic_deliver, exchange, T_SHORTSTR),
	  F(basic_deliver, routing_key, T_SHORTSTR)),
	M(CODEC_BASIC_GET, "basic.get", R(T_SHORT),
	  F(basic_get, queue, T_SHORTSTR),
	  F(basic_get, no_ack, T_BIT)),
	M(CODEC_BASIC_GET_OK, "basic.get-ok",
	  F(basic_get_ok, delivery_tag, T_LONGLONG),
	  F(basic_get_ok, redelivered, T_BIT),
	  F(basic_get_ok, exchange, T_SHORTSTR),
	  F(basic_get_ok, routing_key, T_SHORTSTR),
	  F(basic_get_ok, message_count, T_LONG)),
	M(CODEC_BASIC_GET_EMPTY, "basic.get-empty", R(T_SHORTSTR)),
	M(CODEC_BASIC_ACK, "basic.ack",
	  F(basic_ack, delivery_tag, T_LONGLONG),
	  F(basic_ack, multiple, T_BIT)),
	M(CODEC_BASIC_REJECT, "basic.reject",
	  F(basic_reject, delivery_tag, T_LONGLONG),
	  F(basic_reject, requeue, T_BIT)),
	M(CODEC_BASIC_RECOVER_ASYNC, "basic.recover-async",
	  F(basic_recover_async, requeue, T_BIT)),
	M(CODEC_BASIC_RECOVER, "basic.recover",
	  F(basic_recover, requeue, T_BIT)),
	M(CODEC_BASIC_RECOVER_OK, "basic.recover-ok", { NULL, 0, T_END }),
	M(CODEC_BASIC_NACK, "basic.nack",
	  F(basic_nack, delivery_tag, T_LONGLONG),
	  F(basic_nack, multiple, T_BIT),
	  F(basic_nack, requeue, T_BIT)),

	M(CODEC_CONFIRM_SELECT, "confirm.select",
	  F(confirm_select, nowait, T_BIT)),
	M(CODEC_CONFIRM_SELECT_OK, "confirm.select-ok", { NULL, 0, T_END }),

	M(CODEC_TX_SELECT, "tx.select", { NULL, 0, T_END }),
	M(CODEC_TX_SELECT_OK, "tx.select-ok", { NULL, 0, T_END }),
	M(CODEC_TX_COMMIT, "tx.commit", { NULL, 0, T_END }),
	M(CODEC_TX_COMMIT_OK, "tx.commit-ok", { NULL, 0, T_END }),
	M(CODEC_TX_ROLLBACK, "tx.rollback", { NULL, 0, T_END }),
	M(CODEC_TX_ROLLBACK_OK, "tx.rollback-ok", { NULL, 0, T_END }),
};

#define NMETHODS (sizeof methods / sizeof methods[0])

/* The Basic properties in flag order, bit 15 first. */
static const struct fdesc props[] = {
	F(basic_props, content_type, T_SHORTSTR),
	F(basic_props, content_encoding, T_SHORTSTR),
	F(basic_props, headers, T_TABLE),
	F(basic_props, delivery_mode, T_OCTET),
	F(basic_props, priority, T_OCTET),
	F(basic_props, correlation_id, T_SHORTSTR),
	F(basic_props, reply_to, T_SHORTSTR),
	F(basic_props, expiration, T_SHORTSTR),
	F(basic_props, message_id, T_SHORTSTR),
	F(basic_props, timestamp, T_TIMESTAMP),
	F(basic_props, type, T_SHORTSTR),
	F(basic_props, user_id, T_SHORTSTR),
	F(basic_props, app_id, T_SHORTSTR),
	F(basic_props, cluster_id, T_SHORTSTR),
};

#define NPROPS (sizeof props / sizeof props[0])
#define NPATTERNS 4
#define BUFCAP 8192

/* ------------------------------------------------------------ helpers -- */

static size_t nfields_of(const struct mdesc *d)
{
	size_t n = 0;
	while (n < MAX_FIELDS && d->f[n].type != T_END)
		n++;
	return n;
}

static void *at(void *s, const struct fdesc *f)
{
	return (char *)s + f->off;
}

static const void *cat(const void *s, const struct fdesc *f)
{
	return (const char *)s + f->off;
}

/* Storage behind the strings and tables a filled struct points into. */
struct fill {
	struct ftable_builder tb[MAX_FIELDS + NPROPS];
	int ntb;
	uint8_t str[MAX_FIELDS + NPROPS][600];
};

static void fill_free(struct fill *fl)
{
	for (int i = 0; i < fl->ntb; i++)
		ftable_builder_free(&fl->tb[i]);
	fl->ntb = 0;
}

/*
 * Give field i a value that differs from every other field and pattern:
 * integers with high bits set (to catch truncation and byte order), bits in
 * four patterns (all set, none, even, odd), strings empty, short, or at the
 * 255-byte limit, long strings with NUL bytes, tables with a few entries.
 */
static void fill_field(struct fill *fl, void *s, const struct fdesc *f,
		       int i, int bit, int p)
{
	uint8_t *buf = fl->str[i];
	size_t n;

	switch (f->type) {
	case T_OCTET:
		*(uint8_t *)at(s, f) = (uint8_t)(0x81 + 13 * i + 3 * p);
		break;
	case T_SHORT:
		*(uint16_t *)at(s, f) = (uint16_t)(0xF00D ^ (i << 8) ^ (p << 4));
		break;
	case T_LONG:
		*(uint32_t *)at(s, f) = 0xDEAD0000u | (uint32_t)(i << 8) |
					(uint32_t)p;
		break;
	case T_LONGLONG:
	case T_TIMESTAMP:
		*(uint64_t *)at(s, f) = 0x8877665544332211ull ^
					((uint64_t)i << 40) ^ (uint64_t)p;
		break;
	case T_BIT:
		*(bool *)at(s, f) = p == 0 ? true : p == 1 ? false
					   : p == 2 ? bit % 2 == 0 : bit % 2 == 1;
		break;
	case T_SHORTSTR:
		if (p == 1) {
			n = 0;
		} else if (p == 3) {
			n = 255;
			for (size_t j = 0; j < n; j++)
				buf[j] = (uint8_t)('a' + (j + (size_t)i) % 26);
		} else {
			n = (size_t)snprintf((char *)buf, 64, "%s-%d-%d",
					     f->name, i, p);
		}
		((struct bytes *)at(s, f))->ptr = n ? buf : NULL;
		((struct bytes *)at(s, f))->len = n;
		break;
	case T_LONGSTR:
		n = p == 1 ? 0 : (size_t)(40 + 150 * p + i);
		for (size_t j = 0; j < n; j++)
			buf[j] = (uint8_t)(j * 7 + (size_t)i + (size_t)p);
		((struct bytes *)at(s, f))->ptr = n ? buf : NULL;
		((struct bytes *)at(s, f))->len = n;
		break;
	case T_TABLE: {
		struct ftable_builder *b = &fl->tb[fl->ntb++];
		char key[32];

		ftable_builder_init(b);
		if (p != 1) {
			snprintf(key, sizeof key, "k%d", i);
			ftable_put_str(b, key, bytes_of(f->name));
			ftable_put_int(b, "x-count", 'l', -1000 * i - p);
			ftable_put_bool(b, "flag", p % 2 == 0);
			if (p == 3)
				ftable_put_int(b, "x-max-length", 'I', 77);
		}
		ck_assert(!b->oom);
		*(struct ftable *)at(s, f) = ftable_builder_get(b);
		break;
	}
	case T_END:
		break;
	}
}

static void fill_method(struct fill *fl, const struct mdesc *d, void *s,
			int p)
{
	int bit = 0;

	memset(s, 0, sizeof(union codec_method_args));
	for (size_t i = 0; i < nfields_of(d); i++) {
		const struct fdesc *f = &d->f[i];
		if (f->name == NULL)
			continue;
		fill_field(fl, s, f, (int)i, bit, p);
		if (f->type == T_BIT)
			bit++;
	}
}

/* The test's own encoder for one field, reserved ones as zero/empty. */
static size_t ref_put(uint8_t *out, const struct fdesc *f, const void *s)
{
	uint64_t v = 0;
	size_t width = 0;

	switch (f->type) {
	case T_OCTET:
		width = 1;
		if (f->name)
			v = *(const uint8_t *)cat(s, f);
		break;
	case T_SHORT:
		width = 2;
		if (f->name)
			v = *(const uint16_t *)cat(s, f);
		break;
	case T_LONG:
		width = 4;
		if (f->name)
			v = *(const uint32_t *)cat(s, f);
		break;
	case T_LONGLONG:
	case T_TIMESTAMP:
		width = 8;
		if (f->name)
			v = *(const uint64_t *)cat(s, f);
		break;
	case T_SHORTSTR:
	case T_LONGSTR:
	case T_TABLE: {
		struct bytes b = { NULL, 0 };
		size_t lw = f->type == T_SHORTSTR ? 1 : 4;
		if (f->name && f->type == T_TABLE) {
			const struct ftable *t = cat(s, f);
			b.ptr = t->ptr;
			b.len = t->len;
		} else if (f->name) {
			b = *(const struct bytes *)cat(s, f);
		}
		for (size_t j = 0; j < lw; j++)
			out[j] = (uint8_t)(b.len >> (8 * (lw - 1 - j)));
		if (b.len)
			memcpy(out + lw, b.ptr, b.len);
		return lw + b.len;
	}
	case T_BIT:
	case T_END:
		ck_abort_msg("ref_put: not a byte field");
	}
	for (size_t j = 0; j < width; j++)
		out[j] = (uint8_t)(v >> (8 * (width - 1 - j)));
	return width;
}

/* Arguments as the spec lays them out: bits packed low bit first into
 * octets, a run broken by any other field or after eight bits. */
static size_t ref_encode(const struct mdesc *d, const void *s, uint8_t *out)
{
	size_t n = 0, octet = 0;
	int nbits = -1;

	for (size_t i = 0; i < nfields_of(d); i++) {
		const struct fdesc *f = &d->f[i];
		if (f->type == T_BIT) {
			if (nbits < 0 || nbits == 8) {
				octet = n;
				out[n++] = 0;
				nbits = 0;
			}
			if (f->name && *(const bool *)cat(s, f))
				out[octet] |= (uint8_t)(1u << nbits);
			nbits++;
			continue;
		}
		nbits = -1;
		n += ref_put(out + n, f, s);
		ck_assert_uint_lt(n, BUFCAP);
	}
	return n;
}

static size_t ref_encode_props(const struct codec_basic_props *pr,
			       uint8_t *out)
{
	size_t n = 2;

	out[0] = (uint8_t)(pr->flags >> 8);
	out[1] = (uint8_t)pr->flags;
	for (size_t i = 0; i < NPROPS; i++)
		if (pr->flags & (1u << (15 - i)))
			n += ref_put(out + n, &props[i], pr);
	return n;
}

/* decoded must equal orig field by field; slices must point into wire. */
static void check_same(const struct fdesc *f, const void *orig,
		       const void *decoded, const uint8_t *wire, size_t wlen,
		       const char *what)
{
	const struct bytes *a, *b;
	struct bytes ta, tb;

	switch (f->type) {
	case T_OCTET:
		ck_assert_msg(*(const uint8_t *)cat(orig, f) ==
			      *(const uint8_t *)cat(decoded, f), "%s.%s",
			      what, f->name);
		return;
	case T_SHORT:
		ck_assert_msg(*(const uint16_t *)cat(orig, f) ==
			      *(const uint16_t *)cat(decoded, f), "%s.%s",
			      what, f->name);
		return;
	case T_LONG:
		ck_assert_msg(*(const uint32_t *)cat(orig, f) ==
			      *(const uint32_t *)cat(decoded, f), "%s.%s",
			      what, f->name);
		return;
	case T_LONGLONG:
	case T_TIMESTAMP:
		ck_assert_msg(*(const uint64_t *)cat(orig, f) ==
			      *(const uint64_t *)cat(decoded, f), "%s.%s",
			      what, f->name);
		return;
	case T_BIT:
		ck_assert_msg(*(const bool *)cat(orig, f) ==
			      *(const bool *)cat(decoded, f), "%s.%s",
			      what, f->name);
		return;
	case T_SHORTSTR:
	case T_LONGSTR:
		a = cat(orig, f);
		b = cat(decoded, f);
		break;
	case T_TABLE: {
		const struct ftable *x = cat(orig, f), *y = cat(decoded, f);
		ta.ptr = x->ptr;
		ta.len = x->len;
		tb.ptr = y->ptr;
		tb.len = y->len;
		a = &ta;
		b = &tb;
		break;
	}
	default:
		ck_abort_msg("check_same: bad type");
		return;
	}
	ck_assert_msg(bytes_eq(*a, *b), "%s.%s: %zu vs %zu bytes", what,
		      f->name, a->len, b->len);
	if (b->len)
		ck_assert_msg(b->ptr >= wire && b->ptr + b->len <= wire + wlen,
			      "%s.%s: decoded slice is not in the frame", what,
			      f->name);
}

/* Heap copy of exactly n bytes, so ASan sees any over-read. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

static const struct codec_method_info *info_of(const struct mdesc *d)
{
	const struct codec_method_info *mi = codec_method_lookup(d->id);
	ck_assert_msg(mi != NULL, "%s: no codec_methods entry", d->name);
	return mi;
}

/* Build a whole method payload (ids + arguments) with the test encoder. */
static size_t ref_payload(const struct mdesc *d, const void *s, uint8_t *out)
{
	out[0] = (uint8_t)(d->id >> 24);
	out[1] = (uint8_t)(d->id >> 16);
	out[2] = (uint8_t)(d->id >> 8);
	out[3] = (uint8_t)d->id;
	return 4 + ref_encode(d, s, out + 4);
}

/* --------------------------------------------------------- round trip -- */

START_TEST(test_roundtrip)
{
	const struct mdesc *d = &methods[_i];
	const struct codec_method_info *mi = info_of(d);

	for (int p = 0; p < NPATTERNS; p++) {
		union codec_method_args in, out, direct;
		struct fill fl = { .ntb = 0 };
		static uint8_t want[BUFCAP], got[BUFCAP];
		size_t n, size;
		uint32_t id = 0;
		struct wr w;
		struct rd r;
		uint8_t *wire;

		fill_method(&fl, d, &in, p);
		n = ref_payload(d, &in, want);

		size = codec_method_size(d->id, &in);
		ck_assert_msg(size == n, "%s/%d: size %zu, spec says %zu",
			      d->name, p, size, n);
		ck_assert_uint_eq(mi->size(&in), n - 4);

		/* an exactly sized buffer is filled exactly */
		w = wr_init(got, n);
		ck_assert_int_eq(codec_method_encode(&w, d->id, &in), CODEC_OK);
		ck_assert_uint_eq(w.left, 0);
		ck_assert_ptr_eq(w.p, got + n);
		ck_assert_msg(memcmp(got, want, n) == 0,
			      "%s/%d: encoding differs from the spec layout",
			      d->name, p);

		wire = dup_exact(want, n);
		memset(&out, 0xA5, sizeof out);
		ck_assert_int_eq(codec_method_decode((struct bytes){ wire, n },
						     &id, &out), CODEC_OK);
		ck_assert_uint_eq(id, d->id);
		for (size_t i = 0; i < nfields_of(d); i++)
			if (d->f[i].name)
				check_same(&d->f[i], &in, &out, wire, n,
					   d->name);

		/* the per-method entry point reads just the arguments */
		r = rd_init(wire + 4, n - 4);
		ck_assert_int_eq(mi->decode(&r, &direct), CODEC_OK);
		ck_assert_uint_eq(r.left, 0);
		for (size_t i = 0; i < nfields_of(d); i++)
			if (d->f[i].name)
				check_same(&d->f[i], &in, &direct, wire, n,
					   d->name);

		/* and its encoder writes just the arguments */
		w = wr_init(got, BUFCAP);
		ck_assert_int_eq(mi->encode(&w, &in), CODEC_OK);
		ck_assert_uint_eq(BUFCAP - w.left, n - 4);
		ck_assert(memcmp(got, want + 4, n - 4) == 0);

		free(wire);
		fill_free(&fl);
	}
}
END_TEST

/* Reserved fields: written as zero/empty, and whatever a peer put in them
 * is read and ignored. */
START_TEST(test_reserved_ignored)
{
	static const uint8_t open[] = {
		0x00, 0x0A, 0x00, 0x28, 0x01, '/', 0x02, 'x', 'y', 0x01,
	};
	static const uint8_t declare[] = {
		0x00, 0x32, 0x00, 0x0A, 0x12, 0x34, 0x01, 'q', 0x02,
		0x00, 0x00, 0x00, 0x00,
	};
	static const uint8_t open_ok[] = {
		0x00, 0x14, 0x00, 0x0B, 0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c',
	};
	union codec_method_args a;
	uint32_t id;
	uint8_t *p;

	p = dup_exact(open, sizeof open);
	ck_assert_int_eq(codec_method_decode((struct bytes){ p, sizeof open },
					     &id, &a), CODEC_OK);
	ck_assert(bytes_eq_str(a.connection_open.virtual_host, "/"));
	free(p);

	p = dup_exact(declare, sizeof declare);
	ck_assert_int_eq(codec_method_decode((struct bytes){ p,
							      sizeof declare },
					     &id, &a), CODEC_OK);
	ck_assert(bytes_eq_str(a.queue_declare.queue, "q"));
	ck_assert(!a.queue_declare.passive && a.queue_declare.durable);
	free(p);

	p = dup_exact(open_ok, sizeof open_ok);
	ck_assert_int_eq(codec_method_decode((struct bytes){ p,
							      sizeof open_ok },
					     &id, &a), CODEC_OK);
	ck_assert_uint_eq(id, CODEC_CHANNEL_OPEN_OK);
	free(p);
}
END_TEST

/* ------------------------------------------------------------- golden -- */

/* Encode, compare with the hand-made bytes, decode them back.  Returns
 * the heap copy the decoded slices point into; the caller frees it. */
static uint8_t *golden(uint32_t id, const void *args, const uint8_t *bytes,
		       size_t n, union codec_method_args *decoded)
{
	uint8_t buf[512];
	struct wr w = wr_init(buf, sizeof buf);
	uint32_t got_id = 0;
	uint8_t *copy;

	ck_assert_uint_eq(codec_method_size(id, args), n);
	ck_assert_int_eq(codec_method_encode(&w, id, args), CODEC_OK);
	ck_assert_uint_eq(sizeof buf - w.left, n);
	ck_assert_mem_eq(buf, bytes, n);
	copy = dup_exact(bytes, n);
	ck_assert_int_eq(codec_method_decode((struct bytes){ copy, n },
					     &got_id, decoded), CODEC_OK);
	ck_assert_uint_eq(got_id, id);
	/* and the decoded struct encodes to the same bytes again */
	uint8_t again[512];
	w = wr_init(again, sizeof again);
	ck_assert_int_eq(codec_method_encode(&w, id, decoded), CODEC_OK);
	ck_assert_mem_eq(again, bytes, n);
	return copy;
}

START_TEST(test_golden_tune)
{
	static const uint8_t bytes[] = {
		0x00, 0x0A, 0x00, 0x1E,     /* connection.tune */
		0x07, 0xFF,                 /* channel-max 2047 */
		0x00, 0x02, 0x00, 0x00,     /* frame-max 131072 */
		0x00, 0x3C,                 /* heartbeat 60 */
	};
	struct codec_connection_tune t = {
		.channel_max = 2047, .frame_max = 131072, .heartbeat = 60,
	};
	union codec_method_args d;

	free(golden(CODEC_CONNECTION_TUNE, &t, bytes, sizeof bytes, &d));
	ck_assert_uint_eq(d.connection_tune.channel_max, 2047);
	ck_assert_uint_eq(d.connection_tune.frame_max, 131072);
	ck_assert_uint_eq(d.connection_tune.heartbeat, 60);
}
END_TEST

START_TEST(test_golden_queue_declare)
{
	static const uint8_t plain[] = {
		0x00, 0x32, 0x00, 0x0A,     /* queue.declare */
		0x00, 0x00,                 /* reserved-1 */
		0x02, 'q', '1',             /* queue */
		0x0A,                       /* durable (0x02) | auto-delete (0x08) */
		0x00, 0x00, 0x00, 0x00,     /* arguments: empty table */
	};
	static const uint8_t args[] = {
		0x0C, 'x', '-', 'm', 'a', 'x', '-', 'l', 'e', 'n', 'g', 't', 'h',
		'I', 0x00, 0x00, 0x00, 0x0A,
	};
	static const uint8_t with_args[] = {
		0x00, 0x32, 0x00, 0x0A,
		0x00, 0x00,
		0x00,                       /* queue: "" (server names it) */
		0x15,                       /* passive | exclusive | no-wait */
		0x00, 0x00, 0x00, 0x12,     /* arguments: 18 bytes */
		0x0C, 'x', '-', 'm', 'a', 'x', '-', 'l', 'e', 'n', 'g', 't', 'h',
		'I', 0x00, 0x00, 0x00, 0x0A,
	};
	struct codec_queue_declare q = {
		.queue = bytes_of("q1"), .durable = true, .auto_delete = true,
	};
	union codec_method_args d;
	struct fvalue v;
	uint8_t *g;
	int64_t n;

	g = golden(CODEC_QUEUE_DECLARE, &q, plain, sizeof plain, &d);
	ck_assert(bytes_eq_str(d.queue_declare.queue, "q1"));
	ck_assert(!d.queue_declare.passive);
	ck_assert(d.queue_declare.durable);
	ck_assert(!d.queue_declare.exclusive);
	ck_assert(d.queue_declare.auto_delete);
	ck_assert(!d.queue_declare.no_wait);
	ck_assert_uint_eq(d.queue_declare.arguments.len, 0);
	free(g);

	memset(&q, 0, sizeof q);
	q.passive = q.exclusive = q.no_wait = true;
	q.arguments.ptr = args;
	q.arguments.len = sizeof args;
	g = golden(CODEC_QUEUE_DECLARE, &q, with_args, sizeof with_args, &d);
	ck_assert_uint_eq(d.queue_declare.queue.len, 0);
	ck_assert(d.queue_declare.passive && d.queue_declare.exclusive &&
		  d.queue_declare.no_wait);
	ck_assert(!d.queue_declare.durable && !d.queue_declare.auto_delete);
	ck_assert_uint_eq(d.queue_declare.arguments.len, sizeof args);
	/* the decoded table is a usable slice of the frame */
	ck_assert_ptr_eq(d.queue_declare.arguments.ptr, g + 12);
	ck_assert_int_eq(ftable_get(d.queue_declare.arguments, "x-max-length",
				    &v), 1);
	ck_assert(fvalue_as_int(&v, &n));
	ck_assert_int_eq(n, 10);
	free(g);
}
END_TEST

START_TEST(test_golden_publish)
{
	static const uint8_t bytes[] = {
		0x00, 0x3C, 0x00, 0x28,     /* basic.publish */
		0x00, 0x00,                 /* reserved-1 */
		0x0A, 'a', 'm', 'q', '.', 'd', 'i', 'r', 'e', 'c', 't',
		0x02, 'r', 'k',
		0x01,                       /* mandatory, not immediate */
	};
	struct codec_basic_publish m = {
		.exchange = bytes_of("amq.direct"), .routing_key = bytes_of("rk"),
		.mandatory = true,
	};
	union codec_method_args d;

	free(golden(CODEC_BASIC_PUBLISH, &m, bytes, sizeof bytes, &d));
	ck_assert(d.basic_publish.mandatory);
	ck_assert(!d.basic_publish.immediate);
	ck_assert_uint_eq(d.basic_publish.routing_key.len, 2);

	/* immediate alone is bit 1 */
	uint8_t buf[64];
	struct wr w = wr_init(buf, sizeof buf);
	m.mandatory = false;
	m.immediate = true;
	ck_assert_int_eq(codec_method_encode(&w, CODEC_BASIC_PUBLISH, &m),
			 CODEC_OK);
	ck_assert_uint_eq(buf[sizeof bytes - 1], 0x02);
}
END_TEST

START_TEST(test_golden_deliver)
{
	static const uint8_t bytes[] = {
		0x00, 0x3C, 0x00, 0x3C,     /* basic.deliver */
		0x04, 'c', 't', 'a', 'g',
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x01,                       /* redelivered */
		0x00,                       /* exchange: default */
		0x03, 'k', 'e', 'y',
	};
	struct codec_basic_deliver m = {
		.consumer_tag = bytes_of("ctag"),
		.delivery_tag = 0x0102030405060708ull,
		.redelivered = true, .exchange = bytes_of(""),
		.routing_key = bytes_of("key"),
	};
	union codec_method_args d;

	free(golden(CODEC_BASIC_DELIVER, &m, bytes, sizeof bytes, &d));
	ck_assert(d.basic_deliver.delivery_tag == 0x0102030405060708ull);
	ck_assert(d.basic_deliver.redelivered);
	ck_assert_uint_eq(d.basic_deliver.exchange.len, 0);
}
END_TEST

START_TEST(test_golden_misc)
{
	static const uint8_t open[] = {
		0x00, 0x0A, 0x00, 0x28, 0x01, '/', 0x00, 0x00,
	};
	static const uint8_t close[] = {
		0x00, 0x14, 0x00, 0x28,     /* channel.close */
		0x01, 0x94,                 /* 404 */
		0x09, 'N', 'O', 'T', '_', 'F', 'O', 'U', 'N', 'D',
		0x00, 0x32, 0x00, 0x0A,     /* caused by queue.declare */
	};
	static const uint8_t nack[] = {
		0x00, 0x3C, 0x00, 0x78,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
		0x03,                       /* multiple | requeue */
	};
	static const uint8_t open_ok[] = {
		0x00, 0x14, 0x00, 0x0B, 0x00, 0x00, 0x00, 0x00,
	};
	static const uint8_t tx_select[] = { 0x00, 0x5A, 0x00, 0x0A };
	static const uint8_t unbind_ok[] = { 0x00, 0x28, 0x00, 0x33 };
	static const uint8_t confirm[] = { 0x00, 0x55, 0x00, 0x0A, 0x01 };
	struct codec_connection_open o = { .virtual_host = bytes_of("/") };
	struct codec_channel_close c = {
		.reply_code = CODEC_NOT_FOUND, .reply_text = bytes_of("NOT_FOUND"),
		.class_id = CODEC_CLASS_QUEUE, .method_id = 10,
	};
	struct codec_basic_nack n = {
		.delivery_tag = 256, .multiple = true, .requeue = true,
	};
	struct codec_channel_open_ok ok = { 0 };
	struct codec_tx_select tx = { 0 };
	struct codec_exchange_unbind_ok u = { 0 };
	struct codec_confirm_select cs = { .nowait = true };
	union codec_method_args d;

	free(golden(CODEC_CONNECTION_OPEN, &o, open, sizeof open, &d));
	free(golden(CODEC_CHANNEL_CLOSE, &c, close, sizeof close, &d));
	ck_assert_uint_eq(d.channel_close.reply_code, 404);
	ck_assert_uint_eq(d.channel_close.class_id, 50);
	ck_assert_uint_eq(d.channel_close.method_id, 10);
	free(golden(CODEC_BASIC_NACK, &n, nack, sizeof nack, &d));
	ck_assert(d.basic_nack.multiple && d.basic_nack.requeue);
	free(golden(CODEC_CHANNEL_OPEN_OK, &ok, open_ok, sizeof open_ok, &d));
	free(golden(CODEC_TX_SELECT, &tx, tx_select, sizeof tx_select, &d));
	free(golden(CODEC_EXCHANGE_UNBIND_OK, &u, unbind_ok, sizeof unbind_ok, &d));
	free(golden(CODEC_CONFIRM_SELECT, &cs, confirm, sizeof confirm, &d));
	ck_assert(d.confirm_select.nowait);
}
END_TEST

START_TEST(test_golden_start)
{
	/* connection.start with a one-entry server-properties table */
	static const uint8_t bytes[] = {
		0x00, 0x0A, 0x00, 0x0A,
		0x00, 0x09,                 /* version 0-9 */
		0x00, 0x00, 0x00, 0x0F,     /* table, 15 bytes */
		0x07, 'p', 'r', 'o', 'd', 'u', 'c', 't',
		'S', 0x00, 0x00, 0x00, 0x02, 'W', 'n',
		0x00, 0x00, 0x00, 0x05, 'P', 'L', 'A', 'I', 'N',
		0x00, 0x00, 0x00, 0x05, 'e', 'n', '_', 'U', 'S',
	};
	struct ftable_builder b;
	struct codec_connection_start s = {
		.version_major = 0, .version_minor = 9,
		.mechanisms = bytes_of("PLAIN"), .locales = bytes_of("en_US"),
	};
	union codec_method_args d;

	ftable_builder_init(&b);
	ftable_put_str(&b, "product", bytes_of("Wn"));
	s.server_properties = ftable_builder_get(&b);
	free(golden(CODEC_CONNECTION_START, &s, bytes, sizeof bytes, &d));
	ck_assert_uint_eq(d.connection_start.version_minor, 9);
	ck_assert_uint_eq(d.connection_start.server_properties.len, 15);
	ftable_builder_free(&b);
}
END_TEST

/* ----------------------------------------------------------- metadata -- */

START_TEST(test_table_matches_spec)
{
	ck_assert_uint_eq(NMETHODS, 64);
	ck_assert_uint_eq(codec_methods_count, 64);
	ck_assert_uint_eq(CODEC_METHODS_COUNT, 64);
	for (size_t i = 0; i < codec_methods_count; i++) {
		const struct codec_method_info *mi = &codec_methods[i];
		if (i > 0)
			ck_assert_msg(codec_methods[i - 1].id < mi->id,
				      "codec_methods not sorted at %zu", i);
		ck_assert_ptr_eq(codec_method_lookup(mi->id), mi);
		ck_assert_str_eq(codec_method_name(mi->id), mi->name);
		ck_assert(mi->decode != NULL && mi->size != NULL &&
			  mi->encode != NULL);
		if (mi->reply_id)
			ck_assert_ptr_nonnull(codec_method_lookup(mi->reply_id));
	}
	/* our description and the generated table name the same methods and
	 * the same non-reserved fields, in order */
	for (size_t i = 0; i < NMETHODS; i++) {
		const struct mdesc *d = &methods[i];
		const struct codec_method_info *mi = info_of(d);
		size_t k = 0;

		ck_assert_str_eq(mi->name, d->name);
		for (size_t j = 0; j < nfields_of(d); j++) {
			char want[64];
			if (d->f[j].name == NULL)
				continue;
			snprintf(want, sizeof want, "%s", d->f[j].name);
			for (char *c = want; *c; c++)
				if (*c == '_')
					*c = '-';
			ck_assert_uint_lt(k, mi->nfields);
			ck_assert_str_eq(mi->field_names[k], want);
			k++;
		}
		ck_assert_uint_eq(k, mi->nfields);
		if (k == 0)
			ck_assert_ptr_null(mi->field_names);
	}
}
END_TEST

START_TEST(test_names_and_flags)
{
	const struct codec_method_info *mi;

	ck_assert_str_eq(codec_method_name(CODEC_QUEUE_DECLARE), "queue.declare");
	ck_assert_str_eq(codec_method_name(CODEC_BASIC_RECOVER_ASYNC),
			 "basic.recover-async");
	ck_assert_str_eq(codec_method_name(0x003C0001u), "unknown");
	ck_assert_str_eq(codec_method_name(0), "unknown");
	ck_assert_ptr_null(codec_method_lookup(0x00630001u));
	ck_assert_str_eq(codec_class_name(CODEC_CLASS_BASIC), "basic");
	ck_assert_str_eq(codec_class_name(85), "confirm");
	ck_assert_str_eq(codec_class_name(10), "connection");
	ck_assert_ptr_null(codec_class_name(11));
	ck_assert_ptr_null(codec_class_name(0));

	mi = codec_method_lookup(CODEC_BASIC_PUBLISH);
	ck_assert_uint_eq(mi->flags,
			  CODEC_M_HAS_CONTENT | CODEC_M_SERVER_RECEIVES);
	ck_assert_uint_eq(mi->reply_id, 0);

	mi = codec_method_lookup(CODEC_QUEUE_DECLARE);
	ck_assert_uint_eq(mi->flags, CODEC_M_SYNC | CODEC_M_SERVER_RECEIVES);
	ck_assert_uint_eq(mi->reply_id, CODEC_QUEUE_DECLARE_OK);
	ck_assert_uint_eq(mi->nfields, 7);
	ck_assert_str_eq(mi->field_names[4], "auto-delete");
	ck_assert_str_eq(mi->field_names[5], "no-wait");

	mi = codec_method_lookup(CODEC_CONNECTION_BLOCKED);
	ck_assert(mi->flags & CODEC_M_CLIENT_RECEIVES);
	ck_assert(!(mi->flags & (CODEC_M_SYNC | CODEC_M_HAS_CONTENT)));

	mi = codec_method_lookup(CODEC_BASIC_DELIVER);
	ck_assert_uint_eq(mi->flags,
			  CODEC_M_HAS_CONTENT | CODEC_M_CLIENT_RECEIVES);
	mi = codec_method_lookup(CODEC_BASIC_GET_OK);
	ck_assert_uint_eq(mi->flags, CODEC_M_HAS_CONTENT | CODEC_M_SYNC |
				     CODEC_M_CLIENT_RECEIVES);
	mi = codec_method_lookup(CODEC_BASIC_GET);
	ck_assert_uint_eq(mi->reply_id, CODEC_BASIC_GET_OK);
	mi = codec_method_lookup(CODEC_BASIC_ACK);
	ck_assert_uint_eq(mi->flags,
			  CODEC_M_SERVER_RECEIVES | CODEC_M_CLIENT_RECEIVES);
	mi = codec_method_lookup(CODEC_CONNECTION_UPDATE_SECRET);
	ck_assert_uint_eq(mi->flags, CODEC_M_SYNC | CODEC_M_SERVER_RECEIVES);
	ck_assert_uint_eq(mi->reply_id, CODEC_CONNECTION_UPDATE_SECRET_OK);
	mi = codec_method_lookup(CODEC_CHANNEL_FLOW_OK);
	ck_assert(!(mi->flags & CODEC_M_SYNC));
	mi = codec_method_lookup(CODEC_TX_SELECT);
	ck_assert_uint_eq(mi->nfields, 0);
	ck_assert_uint_eq(mi->reply_id, CODEC_TX_SELECT_OK);
	mi = codec_method_lookup(CODEC_CONFIRM_SELECT);
	ck_assert_str_eq(mi->field_names[0], "nowait");

	/* exactly the methods with content="1" */
	int content = 0;
	for (size_t i = 0; i < codec_methods_count; i++)
		if (codec_methods[i].flags & CODEC_M_HAS_CONTENT)
			content++;
	ck_assert_int_eq(content, 4);
}
END_TEST

START_TEST(test_ids_and_constants)
{
	ck_assert_uint_eq(CODEC_CONNECTION_START, 0x000A000Au);
	ck_assert_uint_eq(CODEC_QUEUE_DECLARE, (50u << 16) | 10u);
	ck_assert_uint_eq(CODEC_BASIC_PUBLISH, (60u << 16) | 40u);
	ck_assert_uint_eq(CODEC_CONFIRM_SELECT_OK, (85u << 16) | 11u);
	ck_assert_uint_eq(CODEC_EXCHANGE_UNBIND_OK, (40u << 16) | 51u);
	ck_assert_uint_eq(CODEC_QUEUE_UNBIND, (50u << 16) | 50u);
	ck_assert_uint_eq(CODEC_BASIC_NACK, (60u << 16) | 120u);
	ck_assert_uint_eq(CODEC_CLASS_OF(CODEC_BASIC_NACK), 60);
	ck_assert_uint_eq(CODEC_INDEX_OF(CODEC_BASIC_NACK), 120);
	ck_assert_int_eq(CODEC_CLASS_CONNECTION, 10);
	ck_assert_int_eq(CODEC_CLASS_CHANNEL, 20);
	ck_assert_int_eq(CODEC_CLASS_EXCHANGE, 40);
	ck_assert_int_eq(CODEC_CLASS_QUEUE, 50);
	ck_assert_int_eq(CODEC_CLASS_BASIC, 60);
	ck_assert_int_eq(CODEC_CLASS_CONFIRM, 85);
	ck_assert_int_eq(CODEC_CLASS_TX, 90);

	ck_assert_int_eq(CODEC_FRAME_METHOD, 1);
	ck_assert_int_eq(CODEC_FRAME_HEADER, 2);
	ck_assert_int_eq(CODEC_FRAME_BODY, 3);
	ck_assert_int_eq(CODEC_FRAME_HEARTBEAT, 8);
	ck_assert_int_eq(CODEC_FRAME_MIN_SIZE, 4096);
	ck_assert_int_eq(CODEC_FRAME_END, 206);
	/* the hand-written frame layer agrees with the spec */
	ck_assert_int_eq(FRAME_END_OCTET, CODEC_FRAME_END);
	ck_assert_int_eq(FRAME_METHOD, CODEC_FRAME_METHOD);
	ck_assert_int_eq(FRAME_HEADER, CODEC_FRAME_HEADER);
	ck_assert_int_eq(FRAME_BODY, CODEC_FRAME_BODY);
	ck_assert_int_eq(FRAME_HEARTBEAT, CODEC_FRAME_HEARTBEAT);
}
END_TEST

START_TEST(test_reply_codes)
{
	static const int hard[] = { 320, 402, 501, 502, 503, 504, 505, 506,
				    530, 540, 541 };
	static const int soft[] = { 311, 312, 313, 403, 404, 405, 406 };

	for (size_t i = 0; i < sizeof hard / sizeof hard[0]; i++) {
		ck_assert_msg(codec_reply_is_hard(hard[i]), "%d", hard[i]);
		ck_assert_ptr_nonnull(codec_reply_name(hard[i]));
	}
	for (size_t i = 0; i < sizeof soft / sizeof soft[0]; i++) {
		ck_assert_msg(!codec_reply_is_hard(soft[i]), "%d", soft[i]);
		ck_assert_ptr_nonnull(codec_reply_name(soft[i]));
	}
	ck_assert(!codec_reply_is_hard(CODEC_REPLY_SUCCESS));
	ck_assert(!codec_reply_is_hard(999));
	ck_assert(!codec_reply_is_hard(0));
	ck_assert_str_eq(codec_reply_name(CODEC_NOT_FOUND), "NOT_FOUND");
	ck_assert_str_eq(codec_reply_name(406), "PRECONDITION_FAILED");
	ck_assert_str_eq(codec_reply_name(320), "CONNECTION_FORCED");
	ck_assert_str_eq(codec_reply_name(541), "INTERNAL_ERROR");
	ck_assert_str_eq(codec_reply_name(200), "REPLY_SUCCESS");
	ck_assert_ptr_null(codec_reply_name(999));
	ck_assert_ptr_null(codec_reply_name(-1));
	ck_assert_int_eq(CODEC_REPLY_SUCCESS, 200);
	ck_assert_int_eq(CODEC_CONTENT_TOO_LARGE, 311);
	ck_assert_int_eq(CODEC_NO_ROUTE, 312);
	ck_assert_int_eq(CODEC_ACCESS_REFUSED, 403);
	ck_assert_int_eq(CODEC_NOT_FOUND, 404);
	ck_assert_int_eq(CODEC_RESOURCE_LOCKED, 405);
	ck_assert_int_eq(CODEC_FRAME_ERROR, 501);
	ck_assert_int_eq(CODEC_SYNTAX_ERROR, 502);
	ck_assert_int_eq(CODEC_CHANNEL_ERROR, 504);
	ck_assert_int_eq(CODEC_NOT_ALLOWED, 530);
	ck_assert_int_eq(CODEC_NOT_IMPLEMENTED, 540);
	ck_assert_int_eq(CODEC_INTERNAL_ERROR, 541);
}
END_TEST

/* --------------------------------------------------------- properties -- */

static void fill_props(struct fill *fl, struct codec_basic_props *pr,
		       uint16_t flags, int p)
{
	memset(pr, 0, sizeof *pr);
	pr->flags = flags;
	for (size_t i = 0; i < NPROPS; i++)
		if (flags & (1u << (15 - i)))
			fill_field(fl, pr, &props[i], (int)i, 0, p);
}

static void props_roundtrip(uint16_t flags, int p)
{
	struct fill fl = { .ntb = 0 };
	struct codec_basic_props in, out;
	static uint8_t want[BUFCAP], got[BUFCAP];
	size_t n;
	struct wr w;
	struct rd r;
	uint8_t *wire;

	fill_props(&fl, &in, flags, p);
	n = ref_encode_props(&in, want);
	ck_assert_uint_eq(codec_size_basic_props(&in), n);
	w = wr_init(got, n);
	ck_assert_int_eq(codec_encode_basic_props(&w, &in), CODEC_OK);
	ck_assert_uint_eq(w.left, 0);
	ck_assert_msg(memcmp(got, want, n) == 0, "flags %04x", flags);

	wire = dup_exact(want, n);
	r = rd_init(wire, n);
	memset(&out, 0x5A, sizeof out);
	ck_assert_int_eq(codec_decode_basic_props(&r, &out), CODEC_OK);
	ck_assert_uint_eq(r.left, 0);
	ck_assert_uint_eq(out.flags, flags);
	for (size_t i = 0; i < NPROPS; i++) {
		if (flags & (1u << (15 - i))) {
			check_same(&props[i], &in, &out, wire, n, "props");
			continue;
		}
		/* absent properties read back as zero */
		static const uint8_t zero[sizeof(struct bytes)];
		size_t sz = props[i].type == T_OCTET ? 1
			    : props[i].type == T_TIMESTAMP ? 8
			    : sizeof(struct bytes);
		ck_assert_msg(memcmp(cat(&out, &props[i]), zero, sz) == 0,
			      "absent %s not zeroed", props[i].name);
	}

	/* every strict prefix is truncated */
	for (size_t k = 0; k < n; k++) {
		uint8_t *cut = dup_exact(want, k);
		r = rd_init(cut, k);
		ck_assert_int_eq(codec_decode_basic_props(&r, &out),
				 CODEC_E_TRUNCATED);
		free(cut);
	}
	/* every short buffer is refused, leaving the cursor alone */
	for (size_t k = 0; k < n; k++) {
		w = wr_init(got, k);
		ck_assert_int_eq(codec_encode_basic_props(&w, &in),
				 CODEC_E_NOSPACE);
		ck_assert_ptr_eq(w.p, got);
		ck_assert_uint_eq(w.left, k);
	}
	free(wire);
	fill_free(&fl);
}

START_TEST(test_props_all)
{
	ck_assert_uint_eq(CODEC_BASIC_PROPS_KNOWN, 0xFFFCu);
	for (int p = 0; p < NPATTERNS; p++)
		props_roundtrip(CODEC_BASIC_PROPS_KNOWN, p);
}
END_TEST

START_TEST(test_props_none)
{
	static const uint8_t none[] = { 0x00, 0x00 };
	struct codec_basic_props pr = { 0 };
	uint8_t buf[4];
	struct wr w = wr_init(buf, sizeof buf);
	struct rd r;

	ck_assert_uint_eq(codec_size_basic_props(&pr), 2);
	ck_assert_int_eq(codec_encode_basic_props(&w, &pr), CODEC_OK);
	ck_assert_mem_eq(buf, none, 2);
	r = rd_init(none, sizeof none);
	memset(&pr, 0x77, sizeof pr);
	ck_assert_int_eq(codec_decode_basic_props(&r, &pr), CODEC_OK);
	ck_assert_uint_eq(pr.flags, 0);
	ck_assert_uint_eq(pr.content_type.len, 0);
	ck_assert_uint_eq(pr.headers.len, 0);
	ck_assert_uint_eq(pr.delivery_mode, 0);
	ck_assert(pr.timestamp == 0);
	props_roundtrip(0, 0);
}
END_TEST

/* Each flag on its own, in its spec position. */
START_TEST(test_props_each)
{
	static const uint16_t bit[NPROPS] = {
		CODEC_BASIC_CONTENT_TYPE_FLAG, CODEC_BASIC_CONTENT_ENCODING_FLAG,
		CODEC_BASIC_HEADERS_FLAG, CODEC_BASIC_DELIVERY_MODE_FLAG,
		CODEC_BASIC_PRIORITY_FLAG, CODEC_BASIC_CORRELATION_ID_FLAG,
		CODEC_BASIC_REPLY_TO_FLAG, CODEC_BASIC_EXPIRATION_FLAG,
		CODEC_BASIC_MESSAGE_ID_FLAG, CODEC_BASIC_TIMESTAMP_FLAG,
		CODEC_BASIC_TYPE_FLAG, CODEC_BASIC_USER_ID_FLAG,
		CODEC_BASIC_APP_ID_FLAG, CODEC_BASIC_CLUSTER_ID_FLAG,
	};

	ck_assert_uint_eq(bit[_i], 1u << (15 - _i));
	props_roundtrip(bit[_i], 0);
	props_roundtrip(bit[_i], 3);
}
END_TEST

START_TEST(test_props_golden)
{
	static const uint8_t bytes[] = {
		0x98, 0x40,                 /* content-type, delivery-mode,
					       priority, timestamp */
		0x0A, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n',
		0x02,                       /* persistent */
		0x05,
		0x00, 0x00, 0x00, 0x00, 0x65, 0x00, 0x00, 0x01,
	};
	struct codec_basic_props pr = {
		.flags = CODEC_BASIC_CONTENT_TYPE_FLAG |
			 CODEC_BASIC_DELIVERY_MODE_FLAG |
			 CODEC_BASIC_PRIORITY_FLAG | CODEC_BASIC_TIMESTAMP_FLAG,
		.content_type = bytes_of("text/plain"),
		.delivery_mode = 2, .priority = 5, .timestamp = 0x65000001,
		/* set but not flagged: must not be written */
		.app_id = bytes_of("ignored"),
	};
	uint8_t buf[64];
	struct wr w = wr_init(buf, sizeof buf);
	struct rd r = rd_init(bytes, sizeof bytes);
	struct codec_basic_props d;

	ck_assert_uint_eq(codec_size_basic_props(&pr), sizeof bytes);
	ck_assert_int_eq(codec_encode_basic_props(&w, &pr), CODEC_OK);
	ck_assert_uint_eq(sizeof buf - w.left, sizeof bytes);
	ck_assert_mem_eq(buf, bytes, sizeof bytes);
	ck_assert_int_eq(codec_decode_basic_props(&r, &d), CODEC_OK);
	ck_assert(bytes_eq_str(d.content_type, "text/plain"));
	ck_assert_uint_eq(d.delivery_mode, 2);
	ck_assert_uint_eq(d.priority, 5);
	ck_assert(d.timestamp == 0x65000001);
	ck_assert_uint_eq(d.app_id.len, 0);
}
END_TEST

START_TEST(test_props_bad_flags)
{
	/* continuation (bit 0) and the unused bit 1, alone or with others */
	static const uint16_t bad[] = { 0x0001, 0x0002, 0x0003, 0x8001,
					0xFFFF, 0x1002 };
	struct codec_basic_props pr = { 0 };
	uint8_t buf[64];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint8_t in[2] = { (uint8_t)(bad[i] >> 8), (uint8_t)bad[i] };
		struct rd r = rd_init(in, sizeof in);
		struct wr w = wr_init(buf, sizeof buf);

		ck_assert_int_eq(codec_decode_basic_props(&r, &pr),
				 CODEC_E_BAD_PROPS);
		pr.flags = bad[i];
		ck_assert_int_eq(codec_encode_basic_props(&w, &pr),
				 CODEC_E_BAD_PROPS);
		ck_assert_uint_eq(w.left, sizeof buf);
		memset(&pr, 0, sizeof pr);
	}
	/* a malformed headers table is reported as the table error */
	static const uint8_t badtable[] = {
		0x20, 0x00, 0x00, 0x00, 0x00, 0x03, 0x01, 'k', 'Z',
	};
	struct rd r = rd_init(badtable, sizeof badtable);
	ck_assert_int_eq(codec_decode_basic_props(&r, &pr),
			 CODEC_E_FIELD_TYPE);
	/* a short string over 255 bytes cannot be encoded */
	static uint8_t longs[256];
	struct wr w = wr_init(buf, sizeof buf);
	memset(longs, 'z', sizeof longs);
	memset(&pr, 0, sizeof pr);
	pr.flags = CODEC_BASIC_MESSAGE_ID_FLAG;
	pr.message_id.ptr = longs;
	pr.message_id.len = 256;
	uint8_t big[600];
	w = wr_init(big, sizeof big);
	ck_assert_int_eq(codec_encode_basic_props(&w, &pr), CODEC_E_NOSPACE);
	ck_assert_uint_eq(w.left, sizeof big);
	pr.message_id.len = 255;
	ck_assert_int_eq(codec_encode_basic_props(&w, &pr), CODEC_OK);
	ck_assert_uint_eq(sizeof big - w.left, 2 + 1 + 255);
}
END_TEST

/* ------------------------------------------------------------- errors -- */

/* Every strict prefix of every method (all fill patterns) is truncated,
 * and one byte more than the fields is trailing. */
START_TEST(test_truncated_and_trailing)
{
	const struct mdesc *d = &methods[_i];

	for (int p = 0; p < NPATTERNS; p++) {
		union codec_method_args in, out;
		struct fill fl = { .ntb = 0 };
		static uint8_t want[BUFCAP + 1];
		size_t n;
		uint32_t id;

		fill_method(&fl, d, &in, p);
		n = ref_payload(d, &in, want);
		for (size_t k = 0; k < n; k++) {
			uint8_t *cut = dup_exact(want, k);
			id = 0xFFFFFFFFu;
			ck_assert_msg(codec_method_decode((struct bytes){ cut, k },
							  &id, &out) ==
				      CODEC_E_TRUNCATED,
				      "%s/%d cut at %zu", d->name, p, k);
			ck_assert_uint_eq(id, k < 4 ? 0 : d->id);
			free(cut);
		}
		want[n] = 0x00;
		uint8_t *more = dup_exact(want, n + 1);
		ck_assert_int_eq(codec_method_decode((struct bytes){ more,
								      n + 1 },
						     &id, &out),
				 CODEC_E_TRAILING);
		ck_assert_uint_eq(id, d->id);
		free(more);
		fill_free(&fl);
	}
}
END_TEST

/* Every output buffer one byte or more too small is refused, and the
 * writer is left exactly where it was. */
START_TEST(test_nospace)
{
	const struct mdesc *d = &methods[_i];
	const struct codec_method_info *mi = info_of(d);

	for (int p = 0; p < NPATTERNS; p++) {
		union codec_method_args in;
		struct fill fl = { .ntb = 0 };
		size_t n;

		fill_method(&fl, d, &in, p);
		n = codec_method_size(d->id, &in);
		for (size_t k = 0; k < n; k++) {
			uint8_t *buf = malloc(k ? k : 1);
			struct wr w = wr_init(buf, k);
			ck_assert_int_eq(codec_method_encode(&w, d->id, &in),
					 CODEC_E_NOSPACE);
			ck_assert_ptr_eq(w.p, buf);
			ck_assert_uint_eq(w.left, k);
			if (k < n - 4) {
				w = wr_init(buf, k);
				ck_assert_int_eq(mi->encode(&w, &in),
						 CODEC_E_NOSPACE);
				ck_assert_uint_eq(w.left, k);
			}
			free(buf);
		}
		fill_free(&fl);
	}
}
END_TEST

/* A short string of 256 bytes in any shortstr field is refused even with
 * room to spare; 255 is fine. */
START_TEST(test_shortstr_limit)
{
	const struct mdesc *d = &methods[_i];
	static uint8_t big[256];
	static uint8_t out[BUFCAP];

	memset(big, 'L', sizeof big);
	for (size_t i = 0; i < nfields_of(d); i++) {
		const struct fdesc *f = &d->f[i];
		union codec_method_args in;
		struct fill fl = { .ntb = 0 };
		struct wr w;

		if (f->name == NULL || f->type != T_SHORTSTR)
			continue;
		fill_method(&fl, d, &in, 0);
		((struct bytes *)at(&in, f))->ptr = big;
		((struct bytes *)at(&in, f))->len = 256;
		w = wr_init(out, sizeof out);
		ck_assert_msg(codec_method_encode(&w, d->id, &in) ==
			      CODEC_E_NOSPACE, "%s.%s", d->name, f->name);
		ck_assert_uint_eq(w.left, sizeof out);
		((struct bytes *)at(&in, f))->len = 255;
		ck_assert_int_eq(codec_method_encode(&w, d->id, &in), CODEC_OK);
		ck_assert_uint_eq(sizeof out - w.left,
				  codec_method_size(d->id, &in));
		fill_free(&fl);
	}
}
END_TEST

START_TEST(test_unknown_ids)
{
	static const uint8_t unknown_class[] = { 0x00, 0x0B, 0x00, 0x0A };
	static const uint8_t unknown_method[] = { 0x00, 0x3C, 0x00, 0x0C };
	static const uint8_t unknown_confirm[] = { 0x00, 0x55, 0x00, 0x0C, 0 };
	static const uint8_t class_zero[] = { 0x00, 0x00, 0x00, 0x00 };
	union codec_method_args a;
	uint32_t id;
	uint8_t buf[16];
	struct wr w = wr_init(buf, sizeof buf);
	uint8_t *p;

	p = dup_exact(unknown_class, 4);
	ck_assert_int_eq(codec_method_decode((struct bytes){ p, 4 }, &id, &a),
			 CODEC_E_UNKNOWN_CLASS);
	ck_assert_uint_eq(id, 0x000B000Au);
	free(p);
	p = dup_exact(unknown_method, 4);
	ck_assert_int_eq(codec_method_decode((struct bytes){ p, 4 }, &id, &a),
			 CODEC_E_UNKNOWN_METHOD);
	ck_assert_uint_eq(id, 0x003C000Cu);
	free(p);
	p = dup_exact(unknown_confirm, 5);
	ck_assert_int_eq(codec_method_decode((struct bytes){ p, 5 }, &id, &a),
			 CODEC_E_UNKNOWN_METHOD);
	free(p);
	p = dup_exact(class_zero, 4);
	ck_assert_int_eq(codec_method_decode((struct bytes){ p, 4 }, &id, &a),
			 CODEC_E_UNKNOWN_CLASS);
	free(p);
	ck_assert_int_eq(codec_method_decode((struct bytes){ NULL, 0 }, &id,
					     &a), CODEC_E_TRUNCATED);
	ck_assert_uint_eq(id, 0);

	memset(&a, 0, sizeof a);
	ck_assert_uint_eq(codec_method_size(0x000B000Au, &a), 0);
	ck_assert_uint_eq(codec_method_size(0x003C000Cu, &a), 0);
	ck_assert_int_eq(codec_method_encode(&w, 0x000B000Au, &a),
			 CODEC_E_UNKNOWN_CLASS);
	ck_assert_int_eq(codec_method_encode(&w, 0x003C000Cu, &a),
			 CODEC_E_UNKNOWN_METHOD);
	ck_assert_uint_eq(w.left, sizeof buf);
}
END_TEST

/* Errors inside a field table surface unchanged through the method. */
START_TEST(test_table_errors)
{
	static const uint8_t bad_type[] = {
		0x00, 0x32, 0x00, 0x0A, 0x00, 0x00, 0x01, 'q', 0x00,
		0x00, 0x00, 0x00, 0x03, 0x01, 'k', 'Z',
	};
	/* the table claims 9 bytes; its one entry's string claims 100 */
	static const uint8_t bad_inner[] = {
		0x00, 0x3C, 0x00, 0x14, 0x00, 0x00, 0x01, 'q', 0x00, 0x00,
		0x00, 0x00, 0x00, 0x09, 0x01, 'k', 'S', 0x00, 0x00, 0x00,
		0x64, 'a', 'b',
	};
	union codec_method_args a;
	uint32_t id;
	uint8_t *p;

	p = dup_exact(bad_type, sizeof bad_type);
	ck_assert_int_eq(codec_method_decode((struct bytes){ p,
							      sizeof bad_type },
					     &id, &a), CODEC_E_FIELD_TYPE);
	free(p);
	p = dup_exact(bad_inner, sizeof bad_inner);
	ck_assert_int_eq(codec_method_decode((struct bytes){ p,
							      sizeof bad_inner },
					     &id, &a), CODEC_E_TRUNCATED);
	free(p);
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("methods");
	TCase *tc;

	tc = tcase_create("roundtrip");
	tcase_add_loop_test(tc, test_roundtrip, 0, (int)NMETHODS);
	tcase_add_test(tc, test_reserved_ignored);
	suite_add_tcase(s, tc);

	tc = tcase_create("golden");
	tcase_add_test(tc, test_golden_tune);
	tcase_add_test(tc, test_golden_queue_declare);
	tcase_add_test(tc, test_golden_publish);
	tcase_add_test(tc, test_golden_deliver);
	tcase_add_test(tc, test_golden_misc);
	tcase_add_test(tc, test_golden_start);
	suite_add_tcase(s, tc);

	tc = tcase_create("metadata");
	tcase_add_test(tc, test_table_matches_spec);
	tcase_add_test(tc, test_names_and_flags);
	tcase_add_test(tc, test_ids_and_constants);
	tcase_add_test(tc, test_reply_codes);
	suite_add_tcase(s, tc);

	tc = tcase_create("props");
	tcase_add_test(tc, test_props_all);
	tcase_add_test(tc, test_props_none);
	tcase_add_loop_test(tc, test_props_each, 0, (int)NPROPS);
	tcase_add_test(tc, test_props_golden);
	tcase_add_test(tc, test_props_bad_flags);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_truncated_and_trailing, 0, (int)NMETHODS);
	tcase_add_loop_test(tc, test_nospace, 0, (int)NMETHODS);
	tcase_add_loop_test(tc, test_shortstr_limit, 0, (int)NMETHODS);
	tcase_add_test(tc, test_unknown_ids);
	tcase_add_test(tc, test_table_errors);
	suite_add_tcase(s, tc);

	return s;
}
