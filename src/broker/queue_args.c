/*
 * Validation of queue.declare and basic.consume arguments and of the
 * expiration property, with RabbitMQ 3.10's rules, order and error texts
 * (checked against a real 3.10.8 broker).  The texts embed Erlang terms as
 * RabbitMQ prints them with ~p: {value_negative,-1}, invalid_overflow,
 * "expected integer, got longstr" (a string, so quoted).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/queue.h"
#include "codec/gen_methods.h"
#include "util/xalloc.h"


static bool arg_is_int(const struct fvalue *v, int64_t *out)
{
	switch (v->type) {
	case 'b': case 'B': case 's': case 'u': case 'I': case 'i': case 'l':
		return fvalue_as_int(v, out);
	default:
		return false;
	}
}

struct arg_ctx {
	struct ftable args;
	const char *qname;
	const char *vhost;
	struct reply *err;
};

/* Fails with "invalid arg 'KEY' for queue 'Q' in vhost 'V': DETAIL". */
static int arg_fail(const struct arg_ctx *c, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int arg_fail(const struct arg_ctx *c, const char *key, const char *fmt, ...)
{
	char detail[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return reply_set(c->err, CODEC_PRECONDITION_FAILED,
	                 "invalid arg '%s' for queue '%s' in vhost '%s': %s",
	                 key, c->qname, c->vhost, detail);
}

static int check_int(const struct arg_ctx *c, const char *key, const struct fvalue *v,
                     int64_t *n)
{
	if (!arg_is_int(v, n))
		return arg_fail(c, key, "\"expected integer, got %s\"", ftable_type_name(v->type));
	return 0;
}

static int check_non_neg(const struct arg_ctx *c, const char *key, const struct fvalue *v,
                         int64_t *n)
{
	if (check_int(c, key, v, n) != 0)
		return -1;
	if (*n < 0)
		return arg_fail(c, key, "{value_negative,%" PRId64 "}", *n);
	return 0;
}

static int check_expiry(const struct arg_ctx *c, const char *key, int64_t n)
{
	if (n < 0)
		return arg_fail(c, key, "{value_negative,%" PRId64 "}", n);
	if (n > QUEUE_MAX_EXPIRY_MS)
		return arg_fail(c, key, "{value_too_large,%" PRId64 "}", n);
	return 0;
}

static int check_str(const struct arg_ctx *c, const char *key, const struct fvalue *v)
{
	if (v->type != 'S')
		return arg_fail(c, key, "{unacceptable_type,%s}", ftable_type_name(v->type));
	return 0;
}

static bool str_is(const struct fvalue *v, const char *s)
{
	return bytes_eq_str(v->v.str, s);
}

/* Render a string value for a detail text (bounded; names are printable
 * in practice, anything else is escaped by reply_name). */
static const char *str_render(char *buf, size_t cap, const struct fvalue *v)
{
	return reply_name(buf, cap, v->v.str.ptr, v->v.str.len);
}

/* Arguments RabbitMQ knows, and which queue types accept them; the ones a
 * type does not accept are refused for it. */
enum { T_C = 1 << QUEUE_TYPE_CLASSIC, T_Q = 1 << QUEUE_TYPE_QUORUM, T_S = 1 << QUEUE_TYPE_STREAM };
static const struct {
	const char *key;
	unsigned types;
} known_args[] = {
	{ "x-expires", T_C | T_Q },
	{ "x-message-ttl", T_C | T_Q },
	{ "x-dead-letter-exchange", T_C | T_Q },
	{ "x-dead-letter-routing-key", T_C | T_Q },
	{ "x-dead-letter-strategy", T_Q },
	{ "x-max-length", T_C | T_Q },
	{ "x-max-length-bytes", T_C | T_Q | T_S },
	{ "x-max-in-memory-length", T_Q },
	{ "x-max-in-memory-bytes", T_Q },
	{ "x-max-priority", T_C },
	{ "x-overflow", T_C | T_Q },
	{ "x-queue-mode", T_C },
	{ "x-queue-version", T_C },
	{ "x-queue-master-locator", T_C },
	{ "x-single-active-consumer", T_C | T_Q },
	{ "x-queue-type", T_C | T_Q | T_S },
	{ "x-quorum-initial-group-size", T_Q },
	{ "x-delivery-limit", T_Q },
	{ "x-max-age", T_S },
	{ "x-stream-max-segment-size-bytes", T_S },
	{ "x-initial-cluster-size", T_S },
	{ "x-queue-leader-locator", T_Q | T_S },
};

static const char *const type_module[] = {
	[QUEUE_TYPE_CLASSIC] = "rabbit_classic_queue",
	[QUEUE_TYPE_QUORUM] = "rabbit_quorum_queue",
	[QUEUE_TYPE_STREAM] = "rabbit_stream_queue",
};

static int check_type_args(const struct arg_ctx *c, enum queue_type type)
{
	struct ftable_iter it;
	struct bytes key;
	struct fvalue v;

	ftable_iter_init(&it, c->args);
	while (ftable_next(&it, &key, &v) > 0) {
		for (size_t i = 0; i < sizeof(known_args) / sizeof(known_args[0]); i++) {
			if (!bytes_eq_str(key, known_args[i].key))
				continue;
			if (!(known_args[i].types & (1u << type)))
				return reply_set(c->err, CODEC_PRECONDITION_FAILED,
				                 "invalid arg '%s' for queue '%s' in vhost '%s' "
				                 "of queue type %s", known_args[i].key, c->qname,
				                 c->vhost, type_module[type]);
		}
	}
	return 0;
}

/* An owned, NUL-terminated copy. */
static struct bytes bytes_dup(struct bytes b)
{
	uint8_t *p = xmalloc(b.len + 1);
	struct bytes out = { p, b.len };

	if (b.len)
		memcpy(p, b.ptr, b.len);
	p[b.len] = 0;
	return out;
}

static int parse_declare(const struct arg_ctx *c, struct queue_args *out)
{
	struct fvalue v;
	int64_t n;
	char sbuf[96];

	/* rabbit_channel checks the dead-letter exchange's type before the
	 * queue validates anything, with its own wording. */
	if (ftable_get(c->args, "x-dead-letter-exchange", &v) && v.type != 'S')
		return reply_set(c->err, CODEC_PRECONDITION_FAILED,
		                 "invalid type '%s' for arg 'x-dead-letter-exchange' in "
		                 "queue '%s' in vhost '%s'", ftable_type_name(v.type), c->qname,
		                 c->vhost);

	if (ftable_get(c->args, "x-expires", &v)) {
		if (check_int(c, "x-expires", &v, &n) != 0)
			return -1;
		if (n == 0)
			return arg_fail(c, "x-expires", "{value_zero,0}");
		if (check_expiry(c, "x-expires", n) != 0)
			return -1;
		out->expires = n;
	}
	if (ftable_get(c->args, "x-message-ttl", &v)) {
		if (check_int(c, "x-message-ttl", &v, &n) != 0 ||
		    check_expiry(c, "x-message-ttl", n) != 0)
			return -1;
		out->message_ttl = n;
	}
	if (ftable_get(c->args, "x-dead-letter-exchange", &v)) {
		out->dlx = bytes_dup(v.v.str);
		out->has_dlx = true;
	}
	if (ftable_get(c->args, "x-dead-letter-routing-key", &v)) {
		if (check_str(c, "x-dead-letter-routing-key", &v) != 0)
			return -1;
		if (!out->has_dlx)
			return arg_fail(c, "x-dead-letter-routing-key", "routing_key_but_no_dlx_defined");
		out->dlrk = bytes_dup(v.v.str);
		out->has_dlrk = true;
	}
	if (ftable_get(c->args, "x-max-length", &v)) {
		if (check_non_neg(c, "x-max-length", &v, &n) != 0)
			return -1;
		out->max_length = n;
	}
	if (ftable_get(c->args, "x-max-length-bytes", &v)) {
		if (check_non_neg(c, "x-max-length-bytes", &v, &n) != 0)
			return -1;
		out->max_length_bytes = n;
	}
	if (ftable_get(c->args, "x-max-priority", &v)) {
		if (check_non_neg(c, "x-max-priority", &v, &n) != 0)
			return -1;
		if (n > QUEUE_MAX_PRIORITY)
			return arg_fail(c, "x-max-priority", "{max_value_exceeded,%" PRId64 "}", n);
		out->max_priority = (int)n;
	}
	if (ftable_get(c->args, "x-overflow", &v)) {
		if (check_str(c, "x-overflow", &v) != 0)
			return -1;
		if (str_is(&v, "drop-head")) {
			out->overflow = QUEUE_OVERFLOW_DROP_HEAD;
		} else if (str_is(&v, "reject-publish")) {
			out->overflow = QUEUE_OVERFLOW_REJECT_PUBLISH;
		} else if (str_is(&v, "reject-publish-dlx")) {
			out->overflow = QUEUE_OVERFLOW_REJECT_PUBLISH;
			out->overflow_dlx = true;
		} else {
			return arg_fail(c, "x-overflow", "invalid_overflow");
		}
	}
	if (ftable_get(c->args, "x-queue-mode", &v)) {
		if (check_str(c, "x-queue-mode", &v) != 0)
			return -1;
		if (!str_is(&v, "default") && !str_is(&v, "lazy"))
			return arg_fail(c, "x-queue-mode", "\"unsupported queue mode '%s'\"",
			                str_render(sbuf, sizeof(sbuf), &v));
	}
	if (ftable_get(c->args, "x-queue-version", &v)) {
		if (check_int(c, "x-queue-version", &v, &n) != 0)
			return -1;
		if (n != 1 && n != 2)
			return arg_fail(c, "x-queue-version",
			                "\"unsupported queue version '%" PRId64 "'\"", n);
	}
	if (ftable_get(c->args, "x-single-active-consumer", &v)) {
		if (v.type != 't')
			return arg_fail(c, "x-single-active-consumer", "{unacceptable_type,%s}",
			                ftable_type_name(v.type));
		out->single_active_consumer = v.v.b;
	}
	if (ftable_get(c->args, "x-queue-type", &v)) {
		if (check_str(c, "x-queue-type", &v) != 0)
			return -1;
		if (str_is(&v, "classic"))
			out->type = QUEUE_TYPE_CLASSIC;
		else if (str_is(&v, "quorum"))
			out->type = QUEUE_TYPE_QUORUM;
		else if (str_is(&v, "stream"))
			out->type = QUEUE_TYPE_STREAM;
		else
			return arg_fail(c, "x-queue-type", "\"unsupported queue type '%s'\"",
			                str_render(sbuf, sizeof(sbuf), &v));
	}
	return check_type_args(c, out->type);
}

int queue_args_parse(struct ftable args, struct bytes qname, const char *vhost_name,
                     struct queue_args *out, struct reply *err)
{
	char qbuf[1024];
	struct arg_ctx c = {
		args, reply_name(qbuf, sizeof(qbuf), qname.ptr, qname.len), vhost_name, err
	};

	memset(out, 0, sizeof(*out));
	out->message_ttl = -1;
	out->expires = -1;
	out->max_length = -1;
	out->max_length_bytes = -1;
	out->overflow = QUEUE_OVERFLOW_DROP_HEAD;
	out->type = QUEUE_TYPE_CLASSIC;
	if (parse_declare(&c, out) != 0) {
		queue_args_free(out);
		return -1;
	}
	return 0;
}

void queue_args_free(struct queue_args *a)
{
	free((void *)a->dlx.ptr);
	free((void *)a->dlrk.ptr);
	a->dlx.ptr = NULL;
	a->dlx.len = 0;
	a->dlrk.ptr = NULL;
	a->dlrk.len = 0;
	a->has_dlx = false;
	a->has_dlrk = false;
}

int queue_consume_args_parse(struct ftable args, struct bytes qname, const char *vhost_name,
                             int32_t *priority, struct reply *err)
{
	char qbuf[1024];
	struct arg_ctx c = {
		args, reply_name(qbuf, sizeof(qbuf), qname.ptr, qname.len), vhost_name, err
	};
	struct fvalue v;
	int64_t n;

	*priority = 0;
	if (ftable_get(args, "x-priority", &v)) {
		if (check_int(&c, "x-priority", &v, &n) != 0)
			return -1;
		*priority = n > INT32_MAX ? INT32_MAX : n < INT32_MIN ? INT32_MIN : (int32_t)n;
	}
	if (ftable_get(args, "x-cancel-on-ha-failover", &v) && v.type != 't')
		return arg_fail(&c, "x-cancel-on-ha-failover", "{unacceptable_type,%s}",
		                ftable_type_name(v.type));
	return 0;
}

/*
 * Erlang's ~p breaks a tuple that does not fit in the line (80 columns from
 * where it starts) after its first element, indenting the second to just
 * inside the brace; RabbitMQ's expiration errors show that for long values.
 */
static void fmt_tuple(char *out, size_t cap, size_t col, const char *atom, const char *val)
{
	size_t len = 1 + strlen(atom) + 1 + strlen(val) + 1;

	if (col + len > 80)
		snprintf(out, cap, "{%s,\n%*s%s}", atom, (int)(col + 1), "", val);
	else
		snprintf(out, cap, "{%s,%s}", atom, val);
}

/* An Erlang string as ~p prints it: quoted when printable, else a list of
 * byte values. */
static void fmt_erl_string(char *out, size_t cap, const uint8_t *p, size_t n)
{
	size_t o = 0;
	bool printable = true;

	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			printable = false;
	if (printable) {
		o += (size_t)snprintf(out + o, cap - o, "\"");
		for (size_t i = 0; i < n && o + 4 < cap; i++) {
			if (p[i] == '"' || p[i] == '\\')
				out[o++] = '\\';
			out[o++] = (char)p[i];
		}
		snprintf(out + o, cap - o, "\"");
		return;
	}
	o += (size_t)snprintf(out + o, cap - o, "[");
	for (size_t i = 0; i < n && o + 6 < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%u", i ? "," : "", p[i]);
	snprintf(out + o, cap - o, "]");
}

int queue_expiration_parse(struct bytes e, int64_t *ttl_ms, struct reply *err)
{
	char shown[128], digits[128], detail[256];
	size_t i = 0, nd = 0;
	bool neg = false, big = false;
	int64_t n = 0;

	reply_name(shown, sizeof(shown), e.ptr, e.len);
	if (i < e.len && (e.ptr[i] == '+' || e.ptr[i] == '-'))
		neg = e.ptr[i++] == '-';
	size_t start = i;
	while (i < e.len && e.ptr[i] >= '0' && e.ptr[i] <= '9') {
		if (n > QUEUE_MAX_EXPIRY_MS)
			big = true;
		else
			n = n * 10 + (e.ptr[i] - '0');
		/* keep the significant digits for the error text */
		if (nd < sizeof(digits) - 1 && !(nd == 0 && e.ptr[i] == '0'))
			digits[nd++] = (char)e.ptr[i];
		i++;
	}
	digits[nd] = '\0';
	if (nd == 0)
		snprintf(digits, sizeof(digits), "0");
	if (n > QUEUE_MAX_EXPIRY_MS)
		big = true;
	if (i == start) {
		if (err)
			reply_set(err, CODEC_PRECONDITION_FAILED,
			          "invalid expiration '%s': no_integer", shown);
		return -1;
	}
	/* the ~p term starts after "invalid expiration '<value>': " */
	size_t col = strlen("invalid expiration '") + strlen(shown) + strlen("': ");
	if (i < e.len) {
		char rest[128];
		fmt_erl_string(rest, sizeof(rest), e.ptr + i, e.len - i);
		fmt_tuple(detail, sizeof(detail), col, "leftover_string", rest);
	} else if (neg && (n != 0 || big)) {
		char val[130];
		snprintf(val, sizeof(val), "-%s", digits);
		fmt_tuple(detail, sizeof(detail), col, "value_negative", val);
	} else if (big) {
		fmt_tuple(detail, sizeof(detail), col, "value_too_large", digits);
	} else {
		*ttl_ms = n;
		return 0;
	}
	if (err)
		reply_set(err, CODEC_PRECONDITION_FAILED, "invalid expiration '%s': %s",
		          shown, detail);
	return -1;
}
