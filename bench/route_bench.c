/*
 * Routing cost of a topic exchange as the number of bindings grows
 * (10, 1,000, 100,000), with routing keys of 2-5 plain words drawn from a
 * 1,000-word vocabulary and binding keys of 2-5 words in two mixes:
 *   selective: the first word is always a plain word, later words are "*"
 *              10% and "#" 4% of the time (most real topic schemes);
 *   wildcard:  any word may be "*" (10%) or "#" (4%), so keys like "*.#"
 *              match nearly everything and matches grow with bindings.
 * Prints nanoseconds per publish, the average number of queues matched and
 * the cost per matched queue, to show the cost follows key length and
 * matches, not the number of bindings.
 *
 * Built on demand (make bench/route_bench); not part of make check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/exchange.h"
#include "broker/queue.h"
#include "broker/vhost.h"

#define VOCAB 1000
#define NQUEUES 1000
#define NKEYS 4096

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void word(char *out, size_t *o, unsigned w)
{
	*o += (size_t)sprintf(out + *o, "w%u", w);
}

enum mix { MIX_PLAIN, MIX_SELECTIVE, MIX_WILDCARD };

/* 2-5 words; wildcards as described at the top. */
static size_t make_key(char *out, enum mix mix)
{
	size_t o = 0;
	int n = 2 + (int)(rnd() % 4);
	for (int i = 0; i < n; i++) {
		if (i)
			out[o++] = '.';
		unsigned r = (unsigned)(rnd() % 100);
		bool wildcards = mix == MIX_WILDCARD || (mix == MIX_SELECTIVE && i > 0);
		if (wildcards && r < 10)
			out[o++] = '*';
		else if (wildcards && r < 14)
			out[o++] = '#';
		else
			word(out, &o, (unsigned)(rnd() % VOCAB));
	}
	out[o] = 0;
	return o;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void run(enum mix mix, size_t nbindings)
{
	struct vhost *vh = vhost_new(NULL, "/");
	struct reply err = { 0 };
	struct ftable none = { NULL, 0 };
	if (vhost_exchange_declare(vh, bytes_of("t"), bytes_of("topic"), false, false, false, false,
	                           none, &err) != 0) {
		fprintf(stderr, "declare: %s\n", err.text);
		exit(1);
	}
	char name[32], key[256];
	for (int i = 0; i < NQUEUES; i++) {
		struct queue *q;
		snprintf(name, sizeof(name), "q%d", i);
		vhost_queue_declare(vh, bytes_of(name), false, false, false, false, none, NULL, NULL,
		                    NULL, &q, &err);
	}
	double t0 = now_ns();
	for (size_t i = 0; i < nbindings; i++) {
		snprintf(name, sizeof(name), "q%d", (int)(rnd() % NQUEUES));
		make_key(key, mix);
		if (vhost_queue_bind(vh, bytes_of(name), bytes_of("t"), bytes_of(key), none, &err)) {
			fprintf(stderr, "bind: %s\n", err.text);
			exit(1);
		}
	}
	double bind_ns = (now_ns() - t0) / (double)nbindings;

	static char keys[NKEYS][256];
	static struct bytes kb[NKEYS];
	for (int i = 0; i < NKEYS; i++) {
		size_t n = make_key(keys[i], MIX_PLAIN);
		kb[i].ptr = (const uint8_t *)keys[i];
		kb[i].len = n;
	}
	struct exchange *x = vhost_exchange_find(vh, bytes_of("t"));
	struct route_result rr;
	route_result_init(&rr);
	/* warm up, then time a fixed number of publishes */
	for (int i = 0; i < NKEYS; i++)
		exchange_route(vh, x, &kb[i], 1, none, &rr);
	const int rounds = 100000;
	uint64_t matched = 0;
	t0 = now_ns();
	for (int i = 0; i < rounds; i++)
		matched += exchange_route(vh, x, &kb[i % NKEYS], 1, none, &rr);
	double ns = (now_ns() - t0) / rounds;
	double avg = (double)matched / rounds;
	printf("%-9s %7zu bindings: %9.1f ns/publish, %7.2f queues matched, %7.1f ns per "
	       "queue matched (bind %.0f ns)\n",
	       mix == MIX_SELECTIVE ? "selective" : "wildcard", nbindings, ns, avg,
	       avg > 0 ? ns / avg : 0.0, bind_ns);
	route_result_free(&rr);
	vhost_free(vh);
}

int main(void)
{
	static const size_t sizes[] = { 10, 1000, 100000 };
	for (int m = MIX_SELECTIVE; m <= MIX_WILDCARD; m++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			run((enum mix)m, sizes[i]);
	return 0;
}
