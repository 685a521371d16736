/*
 * Open-addressing hash map (see hmap.h for the contract).  Load is kept at
 * or under 3/4 so probe runs stay short; deletion shifts the following run
 * back instead of leaving tombstones, so a map that churns (queues declared
 * and deleted all day) never degrades.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util/hmap.h"
#include "util/xalloc.h"

#define HMAP_MIN_CAP 8

static inline uint64_t rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	       (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	       (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

#define SIP_ROUND(v0, v1, v2, v3)                                            \
	do {                                                                 \
		v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32); \
		v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                     \
		v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                     \
		v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32); \
	} while (0)

uint64_t hmap_siphash(uint64_t k0, uint64_t k1, const uint8_t *data, size_t len)
{
	uint64_t v0 = k0 ^ UINT64_C(0x736f6d6570736575);
	uint64_t v1 = k1 ^ UINT64_C(0x646f72616e646f6d);
	uint64_t v2 = k0 ^ UINT64_C(0x6c7967656e657261);
	uint64_t v3 = k1 ^ UINT64_C(0x7465646279746573);
	size_t whole = len & ~(size_t)7;
	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = load_le64(data + i);
		v3 ^= m;
		SIP_ROUND(v0, v1, v2, v3);
		SIP_ROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	uint64_t b = (uint64_t)len << 56;
	for (size_t i = 0; i < (len & 7); i++)
		b |= (uint64_t)data[whole + i] << (8 * i);
	v3 ^= b;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		SIP_ROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

void hmap_init_seeded(struct hmap *m, uint64_t k0, uint64_t k1)
{
	m->slots = NULL;
	m->cap = 0;
	m->count = 0;
	m->k0 = k0;
	m->k1 = k1;
}

void hmap_init(struct hmap *m)
{
	uint64_t k[2];
	if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) {
		/* No entropy source: still differ per map and per run. */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		k[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)m;
		k[1] = rotl64(k[0], 29) ^ UINT64_C(0x9e3779b97f4a7c15);
	}
	hmap_init_seeded(m, k[0], k[1]);
}

void hmap_free(struct hmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = 0;
	m->count = 0;
}

static inline uint64_t hmap_hash(const struct hmap *m, struct bytes key)
{
	return hmap_siphash(m->k0, m->k1, key.ptr, key.len);
}

static inline bool slot_is(const struct hmap_slot *s, uint64_t h, struct bytes key)
{
	return s->hash == h && s->klen == key.len &&
	       (key.len == 0 || memcmp(s->key, key.ptr, key.len) == 0);
}

/* Index of key's slot, or of the empty slot ending its probe run. */
static size_t hmap_find(const struct hmap *m, uint64_t h, struct bytes key)
{
	size_t mask = m->cap - 1;
	size_t i = (size_t)h & mask;
	while (m->slots[i].value && !slot_is(&m->slots[i], h, key))
		i = (i + 1) & mask;
	return i;
}

static void hmap_resize(struct hmap *m, size_t cap)
{
	struct hmap_slot *old = m->slots;
	size_t oldcap = m->cap;
	m->slots = xcalloc(cap, sizeof(*m->slots));
	m->cap = cap;
	size_t mask = cap - 1;
	for (size_t i = 0; i < oldcap; i++) {
		if (!old[i].value)
			continue;
		size_t j = (size_t)old[i].hash & mask;
		while (m->slots[j].value)
			j = (j + 1) & mask;
		m->slots[j] = old[i];
	}
	free(old);
}

void *hmap_get(const struct hmap *m, struct bytes key)
{
	if (m->count == 0)
		return NULL;
	uint64_t h = hmap_hash(m, key);
	return m->slots[hmap_find(m, h, key)].value;
}

void *hmap_put(struct hmap *m, struct bytes key, void *value)
{
	if ((m->count + 1) * 4 > m->cap * 3)
		hmap_resize(m, m->cap ? m->cap * 2 : HMAP_MIN_CAP);
	uint64_t h = hmap_hash(m, key);
	struct hmap_slot *s = &m->slots[hmap_find(m, h, key)];
	void *old = s->value;
	if (!old)
		m->count++;
	s->hash = h;
	s->key = key.ptr;
	s->klen = key.len;
	s->value = value;
	return old;
}

void *hmap_del(struct hmap *m, struct bytes key)
{
	if (m->count == 0)
		return NULL;
	uint64_t h = hmap_hash(m, key);
	size_t mask = m->cap - 1;
	size_t i = hmap_find(m, h, key);
	void *old = m->slots[i].value;
	if (!old)
		return NULL;
	/*
	 * Backward shift: walk the run after the hole and pull back every entry
	 * whose home slot does not lie cyclically in (hole, j]; such an entry
	 * would become unreachable if the hole stayed empty.
	 */
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!m->slots[j].value)
			break;
		size_t home = (size_t)m->slots[j].hash & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	memset(&m->slots[i], 0, sizeof(m->slots[i]));
	m->count--;
	if (m->count == 0) {
		hmap_free(m);
	} else if (m->cap > HMAP_MIN_CAP && m->count * 8 < m->cap) {
		hmap_resize(m, m->cap / 2);
	}
	return old;
}

bool hmap_next(const struct hmap *m, size_t *iter, struct bytes *key, void **value)
{
	for (size_t i = *iter; i < m->cap; i++) {
		if (m->slots[i].value) {
			if (key) {
				key->ptr = m->slots[i].key;
				key->len = m->slots[i].klen;
			}
			if (value)
				*value = m->slots[i].value;
			*iter = i + 1;
			return true;
		}
	}
	*iter = m->cap;
	return false;
}
