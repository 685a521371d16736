/*
 * store_idx: linear probing over slots of slot_size bytes.  The load
 * factor stays at or below 3/4; removal shifts later members of the probe
 * run back so every entry stays reachable from its home slot.
 */
#include <stdlib.h>
#include <string.h>

#include "store/idx.h"
#include "util/xalloc.h"

#define IDX_MIN_CAP 16u

static inline uint8_t *slot_at(const struct store_idx *t, size_t i)
{
	return t->slots + i * t->slot_size;
}

static inline uint64_t slot_key(const uint8_t *s)
{
	uint64_t k;
	memcpy(&k, s, sizeof(k));
	return k;
}

static inline size_t home_of(const struct store_idx *t, uint64_t key)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> t->shift);
}

void store_idx_init(struct store_idx *t, size_t slot_size)
{
	memset(t, 0, sizeof(*t));
	t->slot_size = (slot_size + 7u) & ~(size_t)7u;
}

void store_idx_free(struct store_idx *t)
{
	free(t->slots);
	t->slots = NULL;
	t->cap = t->n = 0;
}

static void rehash(struct store_idx *t, size_t cap)
{
	struct store_idx old = *t;
	unsigned bits = 0;

	while (((size_t)1 << bits) < cap)
		bits++;
	t->cap = (size_t)1 << bits;
	t->shift = 64u - bits;
	t->slots = xcalloc(t->cap, t->slot_size);
	for (size_t i = 0; i < old.cap; i++) {
		const uint8_t *s = slot_at(&old, i);
		uint64_t k = slot_key(s);
		if (!k)
			continue;
		size_t j = home_of(t, k);
		while (slot_key(slot_at(t, j)))
			j = (j + 1) & (t->cap - 1);
		memcpy(slot_at(t, j), s, t->slot_size);
	}
	free(old.slots);
}

void store_idx_reserve(struct store_idx *t, size_t n)
{
	size_t cap = t->cap ? t->cap : IDX_MIN_CAP;

	while (n > cap / 4 * 3)
		cap *= 2;
	if (cap != t->cap)
		rehash(t, cap);
}

void *store_idx_find(const struct store_idx *t, uint64_t key)
{
	if (!t->cap || !key)
		return NULL;
	for (size_t i = home_of(t, key);; i = (i + 1) & (t->cap - 1)) {
		uint8_t *s = slot_at(t, i);
		uint64_t k = slot_key(s);
		if (k == key)
			return s;
		if (!k)
			return NULL;
	}
}

void *store_idx_insert(struct store_idx *t, uint64_t key, bool *existed)
{
	uint8_t *s;

	if (t->n + 1 > t->cap / 4 * 3)
		store_idx_reserve(t, t->n + 1);
	for (size_t i = home_of(t, key);; i = (i + 1) & (t->cap - 1)) {
		s = slot_at(t, i);
		uint64_t k = slot_key(s);
		if (k == key) {
			if (existed)
				*existed = true;
			return s;
		}
		if (!k)
			break;
	}
	memset(s, 0, t->slot_size);
	memcpy(s, &key, sizeof(key));
	t->n++;
	if (existed)
		*existed = false;
	return s;
}

/* Empty slot i and pull later members of its probe run back into the gap. */
static void remove_at(struct store_idx *t, size_t i)
{
	size_t mask = t->cap - 1;
	size_t j = i;

	for (;;) {
		j = (j + 1) & mask;
		uint8_t *s = slot_at(t, j);
		uint64_t k = slot_key(s);
		if (!k)
			break;
		size_t h = home_of(t, k);
		/* s may move to the gap i only if its home is not in (i, j]. */
		if (((j - h) & mask) >= ((j - i) & mask)) {
			memcpy(slot_at(t, i), s, t->slot_size);
			i = j;
		}
	}
	memset(slot_at(t, i), 0, t->slot_size);
	t->n--;
}

void store_idx_remove_slot(struct store_idx *t, void *slot)
{
	remove_at(t, (size_t)((uint8_t *)slot - t->slots) / t->slot_size);
}

bool store_idx_remove(struct store_idx *t, uint64_t key)
{
	void *s = store_idx_find(t, key);
	if (!s)
		return false;
	store_idx_remove_slot(t, s);
	return true;
}

void *store_idx_next(const struct store_idx *t, size_t *it)
{
	while (*it < t->cap) {
		uint8_t *s = slot_at(t, (*it)++);
		if (slot_key(s))
			return s;
	}
	return NULL;
}

void store_idx_remove_iter(struct store_idx *t, void *slot, size_t *it)
{
	size_t i = (size_t)((uint8_t *)slot - t->slots) / t->slot_size;

	remove_at(t, i);
	/*
	 * An entry may have shifted back into slot i; revisit it.  Entries
	 * that wrap from the front of the table to its end could be seen
	 * twice, so callers that remove while iterating must tolerate that
	 * (the store only removes every entry it visits, which is safe).
	 */
	*it = i;
}
