/*
 * A hash map from byte strings to pointers: open addressing with linear
 * probing and backward-shift deletion (no tombstones), so lookups touch one
 * contiguous run of slots and never allocate.
 *
 * Invariants and contract:
 *  - Keys are BORROWED: the map stores the caller's slice, not a copy.  The
 *    bytes must stay alive and unchanged while the entry exists; usually the
 *    key points into the value object itself (a queue's name, say).
 *    hmap_put on an existing key replaces both the value and the stored key
 *    slice, which is how an owner hands the key over to another object.
 *  - Values are never NULL (NULL means "absent" in every return value).
 *  - Keys come from clients, so the hash is SipHash-2-4 with a per-map random
 *    key: an attacker cannot aim names at one probe run.
 *  - The slot array is allocated on first insert: an empty map costs nothing.
 *  - Do not insert or delete while iterating (deletion moves entries); collect
 *    first, then modify.
 */
#ifndef WARREN_UTIL_HMAP_H
#define WARREN_UTIL_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/wire.h"

struct hmap_slot {
	uint64_t hash;
	const uint8_t *key;
	size_t klen;
	void *value; /* NULL: empty slot */
};

struct hmap {
	struct hmap_slot *slots;
	size_t cap;   /* 0 or a power of two */
	size_t count;
	uint64_t k0, k1; /* SipHash key */
};

/* Initialise with a random hash key (getrandom). */
void hmap_init(struct hmap *m);
/* Initialise with a fixed hash key (tests and benchmarks that want repeatability). */
void hmap_init_seeded(struct hmap *m, uint64_t k0, uint64_t k1);
/* Release the slot array; the values are the caller's to free (iterate first). */
void hmap_free(struct hmap *m);

void *hmap_get(const struct hmap *m, struct bytes key);
/* Insert or replace; returns the previous value or NULL.  value must not be NULL. */
void *hmap_put(struct hmap *m, struct bytes key, void *value);
/* Remove; returns the removed value or NULL if absent. */
void *hmap_del(struct hmap *m, struct bytes key);

static inline size_t hmap_count(const struct hmap *m)
{
	return m->count;
}

/*
 * Iterate: start with *iter = 0; each call fills key and value and returns
 * true, or returns false at the end.  Order is unspecified.
 */
bool hmap_next(const struct hmap *m, size_t *iter, struct bytes *key, void **value);

/* SipHash-2-4 of data under the 128-bit key (k0, k1), exposed for tests. */
uint64_t hmap_siphash(uint64_t k0, uint64_t k1, const uint8_t *data, size_t len);

#endif
