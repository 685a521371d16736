/*
 * The topic exchange, as a trie of binding-key words (RabbitMQ's design):
 * keys split on '.', "" is zero words, empty words are ordinary words, "*"
 * matches exactly one word and "#" zero or more.  Each node holds the
 * bindings whose key ends there; literal children are found through one
 * hash map per exchange keyed by (parent node, word), "*" and "#" children
 * hang off the node directly.
 *
 * Matching walks the trie with the routing key's words, so its cost
 * depends on the key and on what matches, not on how many bindings exist.
 * A "#" node expands to every remaining suffix; to keep keys like
 * "#.#.#.#" from exploding combinatorially, each "#" node remembers (per
 * routing key matched) the smallest word position it has already expanded
 * from: every later arrival at that position or beyond is already covered.
 * That bounds a match by (trie nodes visited) x (words + 1).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/binding.h"
#include "util/hmap.h"
#include "util/xalloc.h"

#define TOPIC_STACK_WORDS 256 /* a 255-byte key has at most 256 words */
#define TOPIC_STACK_WORD 255

struct topic_node {
	struct topic_node *parent;
	struct topic_node *star, *hash; /* children for "*" and "#" */
	size_t nlit;                    /* literal children (in the edge map) */
	struct binding *bindings;       /* keys ending here, via t_prev/t_next */
	uint64_t memo_gen;              /* "#" nodes: see the top comment */
	size_t memo_from;
	struct bytes ekey;              /* literal nodes: parent pointer + word */
	uint8_t ek[];
};

struct topic_trie {
	struct hmap edges;              /* ekey -> literal child */
	struct topic_node root;
	uint64_t gen;                   /* bumped per routing key matched */
};

struct topic_words {
	struct bytes *w;
	size_t n;
	struct bytes stack[TOPIC_STACK_WORDS];
};

/* Split key into words; "" has none.  Frees nothing: see topic_words_done. */
static void topic_split(struct topic_words *tw, struct bytes key)
{
	tw->n = 0;
	tw->w = tw->stack;
	if (key.len == 0)
		return;
	size_t n = 1;
	for (size_t i = 0; i < key.len; i++)
		n += key.ptr[i] == '.';
	if (n > TOPIC_STACK_WORDS)
		tw->w = xmalloc(n * sizeof(*tw->w)); /* only CC keys can be this long */
	size_t start = 0;
	for (size_t i = 0; i <= key.len; i++) {
		if (i == key.len || key.ptr[i] == '.') {
			tw->w[tw->n].ptr = key.ptr + start;
			tw->w[tw->n].len = i - start;
			tw->n++;
			start = i + 1;
		}
	}
}

static void topic_words_done(struct topic_words *tw)
{
	if (tw->w != tw->stack)
		free(tw->w);
}

static bool word_is(struct bytes w, char c)
{
	return w.len == 1 && w.ptr[0] == (uint8_t)c;
}

/* Literal child of node for word, via a scratch key in buf (cap bytes). */
static struct topic_node *topic_child(const struct topic_trie *t, const struct topic_node *node,
                                      struct bytes word, uint8_t *buf, size_t cap)
{
	if (node->nlit == 0)
		return NULL;
	size_t n = sizeof(node) + word.len;
	uint8_t *k = n <= cap ? buf : xmalloc(n);
	memcpy(k, &node, sizeof(node));
	if (word.len)
		memcpy(k + sizeof(node), word.ptr, word.len);
	struct bytes key = { k, n };
	struct topic_node *c = hmap_get(&t->edges, key);
	if (k != buf)
		free(k);
	return c;
}

static struct topic_node *topic_node_new(struct topic_node *parent, struct bytes word)
{
	struct topic_node *c = xcalloc(1, sizeof(*c) + sizeof(parent) + word.len);
	c->parent = parent;
	memcpy(c->ek, &parent, sizeof(parent));
	if (word.len)
		memcpy(c->ek + sizeof(parent), word.ptr, word.len);
	c->ekey.ptr = c->ek;
	c->ekey.len = sizeof(parent) + word.len;
	return c;
}

static void topic_init(struct exchange *x)
{
	struct topic_trie *t = xcalloc(1, sizeof(*t));
	hmap_init(&t->edges);
	x->type_data = t;
}

static void topic_bind(struct exchange *x, struct binding *b)
{
	struct topic_trie *t = x->type_data;
	struct topic_words tw;
	uint8_t buf[sizeof(void *) + TOPIC_STACK_WORD];
	topic_split(&tw, b->key);
	struct topic_node *node = &t->root;
	for (size_t i = 0; i < tw.n; i++) {
		struct bytes w = tw.w[i];
		struct topic_node **slot = NULL;
		if (word_is(w, '*'))
			slot = &node->star;
		else if (word_is(w, '#'))
			slot = &node->hash;
		if (slot) {
			if (!*slot)
				*slot = topic_node_new(node, w);
			node = *slot;
			continue;
		}
		struct topic_node *c = topic_child(t, node, w, buf, sizeof(buf));
		if (!c) {
			c = topic_node_new(node, w);
			hmap_put(&t->edges, c->ekey, c);
			node->nlit++;
		}
		node = c;
	}
	topic_words_done(&tw);
	b->t_data = node;
	b->t_prev = NULL;
	b->t_next = node->bindings;
	if (node->bindings)
		node->bindings->t_prev = b;
	node->bindings = b;
}

static bool topic_node_empty(const struct topic_node *n)
{
	return !n->bindings && !n->nlit && !n->star && !n->hash;
}

static void topic_unbind(struct exchange *x, struct binding *b)
{
	struct topic_trie *t = x->type_data;
	struct topic_node *node = b->t_data;
	if (b->t_prev)
		b->t_prev->t_next = b->t_next;
	else
		node->bindings = b->t_next;
	if (b->t_next)
		b->t_next->t_prev = b->t_prev;
	/* prune the branch back to the first node still in use */
	while (node != &t->root && topic_node_empty(node)) {
		struct topic_node *p = node->parent;
		if (p->star == node)
			p->star = NULL;
		else if (p->hash == node)
			p->hash = NULL;
		else {
			hmap_del(&t->edges, node->ekey);
			p->nlit--;
		}
		free(node);
		node = p;
	}
}

struct topic_match {
	const struct topic_trie *t;
	const struct bytes *w;
	size_t n;
	uint64_t gen;
	struct route_ctx *rc;
	uint8_t buf[sizeof(void *) + TOPIC_STACK_WORD];
};

static void topic_match_hash(struct topic_match *m, struct topic_node *h, size_t i);

/* Match words [i, n) below node. */
static void topic_match(struct topic_match *m, struct topic_node *node, size_t i)
{
	if (i == m->n) {
		for (struct binding *b = node->bindings; b; b = b->t_next)
			binding_route_to(m->rc, b);
		if (node->hash)
			topic_match_hash(m, node->hash, i);
		return;
	}
	struct topic_node *c = topic_child(m->t, node, m->w[i], m->buf, sizeof(m->buf));
	if (c)
		topic_match(m, c, i + 1);
	if (node->star)
		topic_match(m, node->star, i + 1);
	if (node->hash)
		topic_match_hash(m, node->hash, i);
}

/* A "#" node swallows words [i, j) for every j: match [j, n) below it. */
static void topic_match_hash(struct topic_match *m, struct topic_node *h, size_t i)
{
	size_t end = m->n + 1;
	if (h->memo_gen == m->gen) {
		if (h->memo_from <= i)
			return;
		end = h->memo_from;
	}
	h->memo_gen = m->gen;
	h->memo_from = i;
	for (size_t j = i; j < end; j++)
		topic_match(m, h, j);
}

static void topic_route(struct exchange *x, const struct bytes *keys, size_t nkeys,
                        struct ftable headers, struct route_ctx *rc)
{
	(void)headers;
	struct topic_trie *t = x->type_data;
	if (!x->out)
		return;
	struct topic_match m;
	m.t = t;
	m.rc = rc;
	for (size_t k = 0; k < nkeys; k++) {
		struct topic_words tw;
		topic_split(&tw, keys[k]);
		m.w = tw.w;
		m.n = tw.n;
		m.gen = ++t->gen;
		topic_match(&m, &t->root, 0);
		topic_words_done(&tw);
	}
}

static void topic_free(struct exchange *x)
{
	struct topic_trie *t = x->type_data;
	/* Normally only the root is left (bindings go first and prune the
	 * trie); free whatever remains anyway. */
	size_t cap = 16, n = 0;
	struct topic_node **work = xmalloc(cap * sizeof(*work));
	size_t it = 0;
	void *v;
	while (hmap_next(&t->edges, &it, NULL, &v)) {
		if (n == cap)
			work = xrealloc(work, (cap *= 2) * sizeof(*work));
		work[n++] = v;
	}
	struct topic_node *extra[2] = { t->root.star, t->root.hash };
	for (size_t i = 0; i < 2 + n; i++) {
		struct topic_node *node = i < 2 ? extra[i] : work[i - 2];
		if (!node)
			continue;
		/* star/hash children are not in the edge map: queue them too */
		struct topic_node *sub[2] = { node->star, node->hash };
		for (int s = 0; s < 2; s++) {
			if (!sub[s])
				continue;
			if (n == cap)
				work = xrealloc(work, (cap *= 2) * sizeof(*work));
			work[n++] = sub[s];
		}
		free(node);
	}
	free(work);
	hmap_free(&t->edges);
	free(t);
}

const struct exchange_type exchange_type_topic = {
	.name = "topic",
	.init = topic_init,
	.validate = NULL,
	.bind = topic_bind,
	.unbind = topic_unbind,
	.route = topic_route,
	.free = topic_free,
};
