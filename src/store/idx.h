/*
 * An open-addressing hash table from a non-zero 64-bit key to a fixed-size
 * value stored inline in the slot (the key is the slot's first 8 bytes, 0
 * marks a free slot).  Linear probing with backward-shift deletion, so
 * there are no tombstones and lookups stay short after many removals.
 * The store keeps every message and queue entry in such tables: inserting
 * allocates only when the table doubles, never per entry.  Slot pointers
 * are valid until the next insert or remove.
 */
#ifndef WARREN_STORE_IDX_H
#define WARREN_STORE_IDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_idx {
	uint8_t *slots;
	size_t slot_size; /* multiple of 8, key included */
	size_t cap;       /* power of two, or 0 */
	size_t n;
	unsigned shift;   /* 64 - log2(cap) */
};

void store_idx_init(struct store_idx *t, size_t slot_size);
void store_idx_free(struct store_idx *t);
/* Make room for n entries without further growth. */
void store_idx_reserve(struct store_idx *t, size_t n);
void *store_idx_find(const struct store_idx *t, uint64_t key);
/* The slot for key, created zeroed (apart from the key) if absent. */
void *store_idx_insert(struct store_idx *t, uint64_t key, bool *existed);
/* Remove the entry whose slot is given (from find/insert/next). */
void store_idx_remove_slot(struct store_idx *t, void *slot);
bool store_idx_remove(struct store_idx *t, uint64_t key);
/*
 * Iterate: *it starts at 0; returns the next used slot or NULL.  Removing
 * the slot just returned is allowed only through store_idx_remove_iter,
 * which keeps the iteration from skipping an entry shifted into it.
 */
void *store_idx_next(const struct store_idx *t, size_t *it);
void store_idx_remove_iter(struct store_idx *t, void *slot, size_t *it);

static inline uint64_t store_idx_key(const void *slot)
{
	return *(const uint64_t *)slot;
}

#endif
