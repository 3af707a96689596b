/* Open-addressing multimap from 64-bit keys to 32-bit values (linear probing,
 * grows at load 1/2). The same key may be inserted several times; lookups visit
 * every value stored under a key. Memory: 12 bytes per slot, 2-4 slots per entry.
 * Ownership: caller-owned struct (zero-init), freed with lma_u64map_free. */
#ifndef LMA_CURATE_U64MAP_H
#define LMA_CURATE_U64MAP_H
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

typedef struct {
    uint64_t *keys; /* (cap) */
    uint32_t *vals; /* (cap); UINT32_MAX marks an empty slot */
    size_t cap, n;
} lma_u64map;

lma_status lma_u64map_insert(lma_u64map *m, uint64_t key, uint32_t val);
/* Calls fn(val, ctx) for each value under key, in insertion order; stops when fn
 * returns nonzero. Returns the number of values visited. */
size_t lma_u64map_find(const lma_u64map *m, uint64_t key, int (*fn)(uint32_t val, void *ctx), void *ctx);
/* First value under key, or UINT32_MAX. */
uint32_t lma_u64map_get(const lma_u64map *m, uint64_t key);
void lma_u64map_free(lma_u64map *m);
size_t lma_u64map_bytes(const lma_u64map *m);
#endif
