/*
 * The headers exchange, with RabbitMQ's rules: x-match is all (default),
 * any, all-with-x or any-with-x; the x-match entry itself never takes part,
 * other "x-" arguments only with the -with-x variants; a void-typed
 * argument matches on the header's presence; values compare as Erlang's
 * == does (1 equals 1.0, a longstr equals a byte array with the same bytes).
 * A binding with nothing left to compare matches every message under all
 * and none under any.
 *
 * Each binding's arguments are decoded once at bind time into a pattern;
 * routing then checks the patterns of all bindings, looking each pattern key
 * up in the message headers (RabbitMQ also visits every binding).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/binding.h"
#include "broker/reply.h"
#include "codec/gen_methods.h"
#include "util/xalloc.h"

enum hmatch { HM_ALL, HM_ANY, HM_ALL_X, HM_ANY_X };

struct hpat_entry {
	struct bytes key;     /* slices into the binding's arguments */
	struct fvalue v;
};

struct hpat {
	enum hmatch mode;
	size_t n;
	struct hpat_entry e[];
};

static bool x_match_kind(const struct fvalue *v, enum hmatch *out)
{
	static const struct {
		const char *s;
		enum hmatch m;
	} kinds[] = { { "all", HM_ALL }, { "any", HM_ANY },
	              { "all-with-x", HM_ALL_X }, { "any-with-x", HM_ANY_X } };
	if (v->type != 'S')
		return false;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (bytes_eq_str(v->v.str, kinds[i].s)) {
			*out = kinds[i].m;
			return true;
		}
	}
	return false;
}

/* Erlang's ~tp of a binary: <<"text">>. */
static void render_erl(char *buf, size_t cap, const struct fvalue *v)
{
	char inner[300];
	binding_value_render(inner, sizeof(inner), v);
	if (v->type == 'S' || v->type == 'x')
		snprintf(buf, cap, "<<\"%s\">>", inner);
	else
		snprintf(buf, cap, "%s", inner);
}

static int headers_validate(struct exchange *x, struct bytes key, struct ftable args,
                            struct reply *err)
{
	(void)x;
	(void)key;
	struct fvalue v;
	enum hmatch m;
	if (ftable_get(args, "x-match", &v) != 1 || x_match_kind(&v, &m))
		return 0;
	char r[320];
	render_erl(r, sizeof(r), &v);
	if (v.type == 'S')
		return reply_set(err, CODEC_PRECONDITION_FAILED,
		                 "Invalid x-match field value %s; expected all, any, all-with-x, or "
		                 "any-with-x",
		                 r);
	return reply_set(err, CODEC_PRECONDITION_FAILED,
	                 "Invalid x-match field type %s (value %s); expected longstr",
	                 ftable_type_name(v.type), r);
}

static void headers_init(struct exchange *x)
{
	x->type_data = NULL;
}

static void headers_bind(struct exchange *x, struct binding *b)
{
	(void)x;
	struct fvalue v;
	enum hmatch mode = HM_ALL;
	if (ftable_get(b->args, "x-match", &v) == 1)
		x_match_kind(&v, &mode); /* validated; anything else means all */
	bool with_x = mode == HM_ALL_X || mode == HM_ANY_X;
	struct hpat *p = xcalloc(1, sizeof(*p) + ftable_count(b->args) * sizeof(p->e[0]));
	p->mode = mode;
	struct ftable_iter it;
	ftable_iter_init(&it, b->args);
	struct bytes k;
	while (ftable_next(&it, &k, &v) == 1) {
		if (bytes_eq_str(k, "x-match"))
			continue;
		if (!with_x && k.len >= 2 && k.ptr[0] == 'x' && k.ptr[1] == '-')
			continue;
		p->e[p->n].key = k;
		p->e[p->n].v = v;
		p->n++;
	}
	b->t_data = p;
}

static void headers_unbind(struct exchange *x, struct binding *b)
{
	(void)x;
	free(b->t_data);
	b->t_data = NULL;
}

/* The first header named key (RabbitMQ sorts headers stably, then merges). */
static bool header_find(struct ftable headers, struct bytes key, struct fvalue *out)
{
	struct ftable_iter it;
	ftable_iter_init(&it, headers);
	struct bytes k;
	while (ftable_next(&it, &k, out) == 1)
		if (bytes_eq(k, key))
			return true;
	return false;
}

static bool headers_match(const struct hpat *p, struct ftable headers)
{
	bool all_mode = p->mode == HM_ALL || p->mode == HM_ALL_X;
	bool all = true, any = false;
	for (size_t i = 0; i < p->n; i++) {
		struct fvalue dv;
		const struct hpat_entry *e = &p->e[i];
		if (header_find(headers, e->key, &dv) &&
		    (e->v.type == 'V' || binding_value_equal(&e->v, &dv, true)))
			any = true;
		else
			all = false;
		if (all_mode && !all)
			return false;
		if (!all_mode && any)
			return true;
	}
	return all_mode ? all : any;
}

static void headers_route(struct exchange *x, const struct bytes *keys, size_t nkeys,
                          struct ftable headers, struct route_ctx *rc)
{
	(void)keys;
	(void)nkeys;
	for (struct binding *b = x->out; b; b = b->out_next)
		if (headers_match(b->t_data, headers))
			binding_route_to(rc, b);
}

static void headers_free(struct exchange *x)
{
	(void)x;
}

const struct exchange_type exchange_type_headers = {
	.name = "headers",
	.init = headers_init,
	.validate = headers_validate,
	.bind = headers_bind,
	.unbind = headers_unbind,
	.route = headers_route,
	.free = headers_free,
};
