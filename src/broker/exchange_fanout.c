/*
 * The fanout exchange: every binding matches, whatever the keys and
 * headers.  It needs no index of its own: the exchange's out-list already
 * holds exactly its bindings.
 */
#include "broker/binding.h"

static void fanout_init(struct exchange *x)
{
	x->type_data = NULL;
}

static void fanout_bind(struct exchange *x, struct binding *b)
{
	(void)x;
	(void)b;
}

static void fanout_unbind(struct exchange *x, struct binding *b)
{
	(void)x;
	(void)b;
}

static void fanout_route(struct exchange *x, const struct bytes *keys, size_t nkeys,
                         struct ftable headers, struct route_ctx *rc)
{
	(void)keys;
	(void)nkeys;
	(void)headers;
	for (struct binding *b = x->out; b; b = b->out_next)
		binding_route_to(rc, b);
}

static void fanout_free(struct exchange *x)
{
	(void)x;
}

const struct exchange_type exchange_type_fanout = {
	.name = "fanout",
	.init = fanout_init,
	.validate = NULL,
	.bind = fanout_bind,
	.unbind = fanout_unbind,
	.route = fanout_route,
	.free = fanout_free,
};
