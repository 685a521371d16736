/*
 * Binding records (see binding.h): the canonical index key, linking a
 * binding into its source, destination and type index, and the field-value
 * helpers that both binding matching and declare equivalence need.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/binding.h"
#include "broker/reply.h"
#include "broker/vhost.h"
#include "codec/gen_methods.h"
#include "util/xalloc.h"

/* ---- canonical arguments --------------------------------------------- */

struct arg_entry {
	struct bytes key;
	const uint8_t *raw; /* the whole encoded entry: key, type, value */
	size_t rawlen;
	size_t idx;         /* original position: keeps the sort stable */
};

static int arg_entry_cmp(const void *pa, const void *pb)
{
	const struct arg_entry *a = pa, *b = pb;
	size_t n = a->key.len < b->key.len ? a->key.len : b->key.len;
	int c = n ? memcmp(a->key.ptr, b->key.ptr, n) : 0;
	if (c)
		return c;
	if (a->key.len != b->key.len)
		return a->key.len < b->key.len ? -1 : 1;
	return a->idx < b->idx ? -1 : (a->idx > b->idx);
}

/*
 * Write args with its top-level entries sorted by key (byte order, shorter
 * first, equal keys in their original order: Erlang's lists:keysort, which
 * RabbitMQ applies to binding arguments).  out has args.len bytes.
 */
static void args_canonical(struct ftable args, uint8_t *out)
{
	struct arg_entry small[16];
	size_t n = ftable_count(args);
	struct arg_entry *e = n <= 16 ? small : xmalloc(n * sizeof(*e));
	struct ftable_iter it;
	ftable_iter_init(&it, args);
	size_t i = 0;
	for (;;) {
		const uint8_t *start = it.r.p;
		struct bytes k;
		struct fvalue v;
		if (i >= n || ftable_next(&it, &k, &v) != 1)
			break;
		e[i].key = k;
		e[i].raw = start;
		e[i].rawlen = (size_t)(it.r.p - start);
		e[i].idx = i;
		i++;
	}
	qsort(e, i, sizeof(*e), arg_entry_cmp);
	size_t o = 0;
	for (size_t j = 0; j < i; j++) {
		memcpy(out + o, e[j].raw, e[j].rawlen);
		o += e[j].rawlen;
	}
	/* a table that stopped early (cannot happen once validated) keeps its tail */
	if (o < args.len)
		memcpy(out + o, args.ptr + o, args.len - o);
	if (e != small)
		free(e);
}

/* ---- index key ------------------------------------------------------- */

#define IKEY_HEAD (2 * sizeof(void *) + 1 + 2)

size_t binding_ikey_size(struct bytes key, struct ftable args)
{
	return IKEY_HEAD + key.len + args.len;
}

size_t binding_ikey_build(uint8_t *buf, const struct exchange *src, const void *dest,
                          bool dest_is_queue, struct bytes key, struct ftable args)
{
	size_t o = 0;
	memcpy(buf + o, &src, sizeof(src));
	o += sizeof(src);
	memcpy(buf + o, &dest, sizeof(dest));
	o += sizeof(dest);
	buf[o++] = dest_is_queue ? 'q' : 'x';
	buf[o++] = (uint8_t)(key.len >> 8);
	buf[o++] = (uint8_t)key.len;
	if (key.len)
		memcpy(buf + o, key.ptr, key.len);
	o += key.len;
	if (args.len)
		args_canonical(args, buf + o);
	return o + args.len;
}

struct binding *binding_new(struct exchange *src, struct exchange *dest_x, struct queue *dest_q,
                            const uint8_t *ikey, size_t ikey_len)
{
	struct binding *b = xcalloc(1, sizeof(*b) + ikey_len);
	memcpy(b->data, ikey, ikey_len);
	b->source = src;
	b->dest_x = dest_x;
	b->dest_q = dest_q;
	b->ikey.ptr = b->data;
	b->ikey.len = ikey_len;
	size_t klen = (size_t)b->data[IKEY_HEAD - 2] << 8 | b->data[IKEY_HEAD - 1];
	b->key.ptr = b->data + IKEY_HEAD;
	b->key.len = klen;
	b->args.ptr = b->data + IKEY_HEAD + klen;
	b->args.len = ikey_len - IKEY_HEAD - klen;
	return b;
}

/* ---- linking --------------------------------------------------------- */

void binding_link(struct binding *b)
{
	struct exchange *src = b->source;
	b->out_prev = NULL;
	b->out_next = src->out;
	if (src->out)
		src->out->out_prev = b;
	src->out = b;
	src->nout++;

	struct binding **in = b->dest_q ? (struct binding **)&b->dest_q->route_data : &b->dest_x->in;
	b->in_prev = NULL;
	b->in_next = *in;
	if (*in)
		(*in)->in_prev = b;
	*in = b;

	hmap_put(&src->vhost->bindings, b->ikey, b);
	src->type->bind(src, b);
}

void binding_unlink_free(struct binding *b)
{
	struct exchange *src = b->source;
	src->type->unbind(src, b);
	hmap_del(&src->vhost->bindings, b->ikey);

	if (b->out_prev)
		b->out_prev->out_next = b->out_next;
	else
		src->out = b->out_next;
	if (b->out_next)
		b->out_next->out_prev = b->out_prev;
	src->nout--;

	struct binding **in = b->dest_q ? (struct binding **)&b->dest_q->route_data : &b->dest_x->in;
	if (b->in_prev)
		b->in_prev->in_next = b->in_next;
	else
		*in = b->in_next;
	if (b->in_next)
		b->in_next->in_prev = b->in_prev;
	free(b);
}

/* ---- field values ---------------------------------------------------- */

/* How the broker's Erlang side sees a value: the kind of term it decodes to. */
enum vkind { VK_INT, VK_FLOAT, VK_BIN, VK_BOOL, VK_DEC, VK_VOID, VK_LIST, VK_OTHER };

struct vnum {
	bool neg;
	uint64_t mag;
};

static enum vkind value_kind(const struct fvalue *v, struct vnum *n, double *d)
{
	int64_t i;
	switch (v->type) {
	case 'T':
		n->neg = false;
		n->mag = v->v.ts;
		return VK_INT;
	case 'b': case 'B': case 's': case 'u': case 'I': case 'i': case 'l':
		fvalue_as_int(v, &i);
		n->neg = i < 0;
		n->mag = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
		return VK_INT;
	case 'f':
		*d = (double)v->v.f;
		return VK_FLOAT;
	case 'd':
		*d = v->v.d;
		return VK_FLOAT;
	case 'S': case 'x':
		return VK_BIN;
	case 't':
		return VK_BOOL;
	case 'D':
		return VK_DEC;
	case 'V':
		return VK_VOID;
	case 'F': case 'A':
		return VK_LIST;
	default:
		return VK_OTHER;
	}
}

static bool int_equals_double(struct vnum n, double d)
{
	if (!isfinite(d) || d != trunc(d))
		return false;
	double mag = fabs(d);
	if (mag >= 18446744073709551616.0)
		return false;
	if (n.mag == 0)
		return d == 0;
	return (d < 0) == n.neg && (uint64_t)mag == n.mag;
}

bool binding_value_equal(const struct fvalue *a, const struct fvalue *b, bool numeric)
{
	struct vnum na = { false, 0 }, nb = { false, 0 };
	double da = 0, db = 0;
	enum vkind ka = value_kind(a, &na, &da), kb = value_kind(b, &nb, &db);
	if (ka != kb) {
		if (!numeric)
			return false;
		if (ka == VK_INT && kb == VK_FLOAT)
			return int_equals_double(na, db);
		if (ka == VK_FLOAT && kb == VK_INT)
			return int_equals_double(nb, da);
		return false;
	}
	switch (ka) {
	case VK_INT:
		return (na.mag == 0 && nb.mag == 0) || (na.neg == nb.neg && na.mag == nb.mag);
	case VK_FLOAT:
		return da == db;
	case VK_BIN:
		return bytes_eq(a->v.str, b->v.str);
	case VK_BOOL:
		return a->v.b == b->v.b;
	case VK_DEC:
		return a->v.dec.scale == b->v.dec.scale && a->v.dec.value == b->v.dec.value;
	case VK_VOID:
		return true;
	case VK_LIST: {
		/* tables decode to lists of triples, arrays to lists of pairs */
		struct ftable ta = a->type == 'F' ? a->v.table : a->v.array;
		struct ftable tb = b->type == 'F' ? b->v.table : b->v.array;
		if (ta.len == 0 && tb.len == 0)
			return true;
		return a->type == b->type && ta.len == tb.len && memcmp(ta.ptr, tb.ptr, ta.len) == 0;
	}
	default:
		return false;
	}
}


/* Erlang prints floats in the shortest form that reads back exactly, always
 * with a fraction and with exponents like "1.0e20". */
static void render_double(char *buf, size_t cap, double d)
{
	char tmp[64];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	char ex[16] = "";
	char *e = strchr(tmp, 'e');
	if (e) {
		*e = 0;
		snprintf(ex, sizeof(ex), "e%d", atoi(e + 1));
	}
	snprintf(buf, cap, "%s%s%s", tmp, strchr(tmp, '.') ? "" : ".0", ex);
}

void binding_value_render(char *buf, size_t cap, const struct fvalue *v)
{
	struct vnum n = { false, 0 };
	double d = 0;
	switch (value_kind(v, &n, &d)) {
	case VK_INT:
		snprintf(buf, cap, "%s%llu", n.neg ? "-" : "", (unsigned long long)n.mag);
		break;
	case VK_FLOAT:
		render_double(buf, cap, d);
		break;
	case VK_BIN:
		reply_name(buf, cap, v->v.str.ptr, v->v.str.len);
		break;
	case VK_BOOL:
		snprintf(buf, cap, "%s", v->v.b ? "true" : "false");
		break;
	case VK_DEC:
		snprintf(buf, cap, "{%u,%lu}", v->v.dec.scale, (unsigned long)v->v.dec.value);
		break;
	case VK_VOID:
		snprintf(buf, cap, "undefined");
		break;
	case VK_LIST: {
		struct ftable t = v->type == 'F' ? v->v.table : v->v.array;
		snprintf(buf, cap, "%s", t.len ? "[...]" : "[]");
		break;
	}
	default:
		snprintf(buf, cap, "?");
		break;
	}
}

/* ---- declare-argument equivalence ------------------------------------ */

int binding_arg_equiv(struct ftable cur, struct ftable req, const char *key, const char *kind,
                      struct bytes name, const char *vhost_name, struct reply *err)
{
	struct fvalue c, r;
	bool hc = ftable_get(cur, key, &c) == 1;
	bool hr = ftable_get(req, key, &r) == 1;
	if (!hc && !hr)
		return 0;
	if (hc && hr && binding_value_equal(&c, &r, false))
		return 0;
	/* classic queues may or may not carry x-queue-type: both mean classic */
	if (hc != hr && strcmp(key, "x-queue-type") == 0) {
		const struct fvalue *v = hc ? &c : &r;
		if (v->type == 'S' && bytes_eq_str(v->v.str, "classic"))
			return 0;
	}
	char nb[4 * 255 + 1], cv[300], rv[300], cs[360], rs[360];
	reply_name(nb, sizeof(nb), name.ptr, name.len);
	if (hc && hr) {
		binding_value_render(cv, sizeof(cv), &c);
		binding_value_render(rv, sizeof(rv), &r);
		snprintf(cs, sizeof(cs), "'%s'", cv);
		snprintf(rs, sizeof(rs), "'%s'", rv);
	} else if (hc) {
		binding_value_render(cv, sizeof(cv), &c);
		snprintf(cs, sizeof(cs), "the value '%s' of type '%s'", cv, ftable_type_name(c.type));
		snprintf(rs, sizeof(rs), "none");
	} else {
		binding_value_render(rv, sizeof(rv), &r);
		snprintf(rs, sizeof(rs), "the value '%s' of type '%s'", rv, ftable_type_name(r.type));
		snprintf(cs, sizeof(cs), "none");
	}
	return reply_set(err, CODEC_PRECONDITION_FAILED,
	                 "inequivalent arg '%s' for %s '%s' in vhost '%s': received %s but current "
	                 "is %s",
	                 key, kind, nb, vhost_name, rs, cs);
}
