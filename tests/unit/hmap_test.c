/*
 * Unit tests for util/hmap: SipHash against the reference vectors, basic
 * put/get/del semantics (borrowed keys, replacement, NULL for absent),
 * iteration, and a randomized run against a brute-force model to exercise
 * backward-shift deletion, growth and shrinking.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "util/hmap.h"

static struct bytes B(const char *s)
{
	return bytes_of(s);
}

START_TEST(test_siphash_vectors)
{
	/* Reference vectors from the SipHash paper: key 00..0f, message 00..(n-1). */
	uint8_t key[16], msg[64];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	uint64_t k0 = 0, k1 = 0;
	for (int i = 7; i >= 0; i--) {
		k0 = k0 << 8 | key[i];
		k1 = k1 << 8 | key[8 + i];
	}
	ck_assert_uint_eq(hmap_siphash(k0, k1, msg, 0), UINT64_C(0x726fdb47dd0e0e31));
	ck_assert_uint_eq(hmap_siphash(k0, k1, msg, 15), UINT64_C(0xa129ca6149be45e5));
	/* lengths around the 8-byte block boundary all differ */
	ck_assert_uint_ne(hmap_siphash(k0, k1, msg, 7), hmap_siphash(k0, k1, msg, 8));
	ck_assert_uint_ne(hmap_siphash(k0, k1, msg, 8), hmap_siphash(k0, k1, msg, 9));
	/* the key matters */
	ck_assert_uint_ne(hmap_siphash(k0, k1, msg, 15), hmap_siphash(k0 ^ 1, k1, msg, 15));
}
END_TEST

START_TEST(test_basic)
{
	struct hmap m;
	hmap_init(&m);
	int a = 1, b = 2, c = 3;
	ck_assert_ptr_null(hmap_get(&m, B("x")));
	ck_assert_ptr_null(hmap_del(&m, B("x")));
	ck_assert_ptr_null(hmap_put(&m, B("alpha"), &a));
	ck_assert_ptr_null(hmap_put(&m, B("beta"), &b));
	ck_assert_ptr_null(hmap_put(&m, B(""), &c)); /* the empty key is a key */
	ck_assert_uint_eq(hmap_count(&m), 3);
	ck_assert_ptr_eq(hmap_get(&m, B("alpha")), &a);
	ck_assert_ptr_eq(hmap_get(&m, B("beta")), &b);
	ck_assert_ptr_eq(hmap_get(&m, B("")), &c);
	ck_assert_ptr_null(hmap_get(&m, B("alph")));
	ck_assert_ptr_null(hmap_get(&m, B("alphaa")));
	/* replacing returns the old value and keeps the count */
	ck_assert_ptr_eq(hmap_put(&m, B("alpha"), &b), &a);
	ck_assert_uint_eq(hmap_count(&m), 3);
	ck_assert_ptr_eq(hmap_get(&m, B("alpha")), &b);
	ck_assert_ptr_eq(hmap_del(&m, B("alpha")), &b);
	ck_assert_ptr_null(hmap_get(&m, B("alpha")));
	ck_assert_uint_eq(hmap_count(&m), 2);
	ck_assert_ptr_eq(hmap_del(&m, B("")), &c);
	ck_assert_ptr_eq(hmap_del(&m, B("beta")), &b);
	ck_assert_uint_eq(hmap_count(&m), 0);
	/* an emptied map releases its slots and works again */
	ck_assert_ptr_null(m.slots);
	ck_assert_ptr_null(hmap_put(&m, B("again"), &a));
	ck_assert_ptr_eq(hmap_get(&m, B("again")), &a);
	hmap_free(&m);
}
END_TEST

START_TEST(test_borrowed_key_handover)
{
	/* The map keeps the caller's slice; put on an existing key swaps the
	 * stored slice, so the old owner may free its copy afterwards. */
	struct hmap m;
	hmap_init(&m);
	char *k1 = strdup("queue-name");
	char *k2 = strdup("queue-name");
	int v1 = 1, v2 = 2;
	hmap_put(&m, B(k1), &v1);
	hmap_put(&m, B(k2), &v2);
	memset(k1, 'z', strlen(k1));
	free(k1);
	ck_assert_ptr_eq(hmap_get(&m, B("queue-name")), &v2);
	size_t it = 0;
	struct bytes key;
	void *val;
	ck_assert(hmap_next(&m, &it, &key, &val));
	ck_assert_ptr_eq(key.ptr, (const uint8_t *)k2);
	ck_assert(!hmap_next(&m, &it, &key, &val));
	hmap_free(&m);
	free(k2);
}
END_TEST

START_TEST(test_iteration)
{
	struct hmap m;
	hmap_init_seeded(&m, 1, 2);
	enum { N = 1000 };
	static char names[N][16];
	static int vals[N];
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "k%d", i);
		vals[i] = i;
		hmap_put(&m, B(names[i]), &vals[i]);
	}
	static int seen[N];
	memset(seen, 0, sizeof(seen));
	size_t it = 0, n = 0;
	struct bytes key;
	void *val;
	while (hmap_next(&m, &it, &key, &val)) {
		int i = *(int *)val;
		ck_assert(bytes_eq(key, B(names[i])));
		seen[i]++;
		n++;
	}
	ck_assert_uint_eq(n, N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(seen[i], 1);
	/* load stays at or under 3/4 */
	ck_assert_uint_ge(m.cap * 3, m.count * 4);
	hmap_free(&m);
}
END_TEST

/* xorshift: repeatable pseudo-random operations */
static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

START_TEST(test_random_against_model)
{
	enum { KEYS = 600, OPS = 60000 };
	static char names[KEYS][24];
	static int vals[KEYS];
	static bool present[KEYS];
	memset(present, 0, sizeof(present));
	struct hmap m;
	/* a tiny key space of short keys and a fixed seed: many collisions
	 * in probe runs, wrap-around at the table end, repeated shrinking */
	hmap_init_seeded(&m, (uint64_t)_i * 7919u, 42);
	for (int i = 0; i < KEYS; i++) {
		snprintf(names[i], sizeof(names[i]), "%x", i * 2654435761u);
		vals[i] = i;
	}
	uint64_t s = 88172645463325252ull + (uint64_t)_i;
	size_t count = 0;
	for (int op = 0; op < OPS; op++) {
		int k = (int)(rnd_next(&s) % KEYS);
		/* phases: mostly inserts, then mostly deletes, to grow and shrink */
		bool grow = (op / 5000) % 2 == 0;
		bool insert = (int)(rnd_next(&s) % 100) < (grow ? 75 : 25);
		if (insert) {
			void *old = hmap_put(&m, B(names[k]), &vals[k]);
			ck_assert(present[k] ? old == &vals[k] : old == NULL);
			if (!present[k])
				count++;
			present[k] = true;
		} else {
			void *old = hmap_del(&m, B(names[k]));
			ck_assert(present[k] ? old == &vals[k] : old == NULL);
			if (present[k])
				count--;
			present[k] = false;
		}
		ck_assert_uint_eq(hmap_count(&m), count);
		if (op % 997 == 0) {
			for (int j = 0; j < KEYS; j++)
				ck_assert_ptr_eq(hmap_get(&m, B(names[j])), present[j] ? &vals[j] : NULL);
		}
	}
	for (int j = 0; j < KEYS; j++)
		ck_assert_ptr_eq(hmap_get(&m, B(names[j])), present[j] ? &vals[j] : NULL);
	hmap_free(&m);
}
END_TEST

START_TEST(test_binary_keys)
{
	struct hmap m;
	hmap_init(&m);
	static const uint8_t k1[] = { 0, 1, 2, 0 }, k2[] = { 0, 1, 2, 1 }, k3[] = { 0, 1, 2 };
	int a, b, c;
	hmap_put(&m, (struct bytes){ k1, sizeof(k1) }, &a);
	hmap_put(&m, (struct bytes){ k2, sizeof(k2) }, &b);
	hmap_put(&m, (struct bytes){ k3, sizeof(k3) }, &c);
	ck_assert_ptr_eq(hmap_get(&m, (struct bytes){ k1, sizeof(k1) }), &a);
	ck_assert_ptr_eq(hmap_get(&m, (struct bytes){ k2, sizeof(k2) }), &b);
	ck_assert_ptr_eq(hmap_get(&m, (struct bytes){ k3, sizeof(k3) }), &c);
	hmap_free(&m);
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("hmap");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_siphash_vectors);
	tcase_add_test(tc, test_basic);
	tcase_add_test(tc, test_borrowed_key_handover);
	tcase_add_test(tc, test_iteration);
	tcase_add_test(tc, test_binary_keys);
	tcase_add_loop_test(tc, test_random_against_model, 0, 4);
	suite_add_tcase(s, tc);
	return s;
}
