/*
 * The direct exchange: a binding matches when its key equals a routing key.
 * Bindings are grouped in one bucket per distinct key, found through a hash
 * map, so a publish costs one lookup per routing key whatever the number of
 * bindings.  The default exchange is a direct exchange whose index stays
 * empty (exchange_route routes it by queue name instead).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/binding.h"
#include "util/hmap.h"
#include "util/xalloc.h"

struct direct_bucket {
	struct bytes key;        /* points at k[]: the map borrows it */
	struct binding *head;    /* bindings with this key, via t_prev/t_next */
	uint8_t k[];
};

static void direct_init(struct exchange *x)
{
	struct hmap *m = xmalloc(sizeof(*m));
	hmap_init(m);
	x->type_data = m;
}

static void direct_bind(struct exchange *x, struct binding *b)
{
	struct hmap *m = x->type_data;
	struct direct_bucket *bk = hmap_get(m, b->key);
	if (!bk) {
		bk = xcalloc(1, sizeof(*bk) + b->key.len + 1);
		if (b->key.len)
			memcpy(bk->k, b->key.ptr, b->key.len);
		bk->key.ptr = bk->k;
		bk->key.len = b->key.len;
		hmap_put(m, bk->key, bk);
	}
	b->t_data = bk;
	b->t_prev = NULL;
	b->t_next = bk->head;
	if (bk->head)
		bk->head->t_prev = b;
	bk->head = b;
}

static void direct_unbind(struct exchange *x, struct binding *b)
{
	struct direct_bucket *bk = b->t_data;
	if (b->t_prev)
		b->t_prev->t_next = b->t_next;
	else
		bk->head = b->t_next;
	if (b->t_next)
		b->t_next->t_prev = b->t_prev;
	if (!bk->head) {
		hmap_del(x->type_data, bk->key);
		free(bk);
	}
}

static void direct_route(struct exchange *x, const struct bytes *keys, size_t nkeys,
                         struct ftable headers, struct route_ctx *rc)
{
	(void)headers;
	const struct hmap *m = x->type_data;
	if (hmap_count(m) == 0)
		return;
	for (size_t i = 0; i < nkeys; i++) {
		struct direct_bucket *bk = hmap_get(m, keys[i]);
		for (struct binding *b = bk ? bk->head : NULL; b; b = b->t_next)
			binding_route_to(rc, b);
	}
}

static void direct_free(struct exchange *x)
{
	struct hmap *m = x->type_data;
	size_t it = 0;
	void *v;
	while (hmap_next(m, &it, NULL, &v))
		free(v);
	hmap_free(m);
	free(m);
}

const struct exchange_type exchange_type_direct = {
	.name = "direct",
	.init = direct_init,
	.validate = NULL,
	.bind = direct_bind,
	.unbind = direct_unbind,
	.route = direct_route,
	.free = direct_free,
};
