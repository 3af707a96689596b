/* Linear-probing multimap (see u64map.h). */
#include "data/curate/u64map.h"
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "data/curate/text.h"

static size_t slot_of(uint64_t key, size_t cap) { return (size_t)(lma_mix64(key) & (cap - 1)); }

static lma_status rehash(lma_u64map *m, size_t cap) {
    uint64_t *k = lma_malloc(cap * sizeof *k, "hash table keys");
    uint32_t *v = lma_malloc(cap * sizeof *v, "hash table values");
    if (!k || !v) { free(k); free(v); return LMA_ERR_NOMEM; }
    memset(v, 0xFF, cap * sizeof *v);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->vals[i] == UINT32_MAX) continue;
        size_t s = slot_of(m->keys[i], cap);
        while (v[s] != UINT32_MAX) s = (s + 1) & (cap - 1);
        k[s] = m->keys[i]; v[s] = m->vals[i];
    }
    free(m->keys); free(m->vals);
    m->keys = k; m->vals = v; m->cap = cap;
    return LMA_OK;
}

/* Rehashing walks the old table in slot order, which can reorder equal keys; to
 * keep insertion order for equal keys we rely on values being increasing
 * (callers insert ids in increasing order) and lookups sort nothing: callers
 * that need the smallest value take the minimum. */
lma_status lma_u64map_insert(lma_u64map *m, uint64_t key, uint32_t val) {
    if (val == UINT32_MAX) return lma_error(LMA_ERR_ARG, "hash table: value out of range");
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        if (cap > ((size_t)1 << 40)) return lma_error(LMA_ERR_NOMEM, "hash table: too many entries");
        LMA_TRY(rehash(m, cap));
    }
    size_t s = slot_of(key, m->cap);
    while (m->vals[s] != UINT32_MAX) s = (s + 1) & (m->cap - 1);
    m->keys[s] = key; m->vals[s] = val; m->n++;
    return LMA_OK;
}

size_t lma_u64map_find(const lma_u64map *m, uint64_t key, int (*fn)(uint32_t, void *), void *ctx) {
    if (!m->cap) return 0;
    size_t s = slot_of(key, m->cap), visited = 0;
    while (m->vals[s] != UINT32_MAX) {
        if (m->keys[s] == key) {
            visited++;
            if (fn && fn(m->vals[s], ctx)) break;
        }
        s = (s + 1) & (m->cap - 1);
    }
    return visited;
}

uint32_t lma_u64map_get(const lma_u64map *m, uint64_t key) {
    if (!m->cap) return UINT32_MAX;
    size_t s = slot_of(key, m->cap);
    uint32_t best = UINT32_MAX;
    while (m->vals[s] != UINT32_MAX) {
        if (m->keys[s] == key && m->vals[s] < best) best = m->vals[s];
        s = (s + 1) & (m->cap - 1);
    }
    return best;
}

void lma_u64map_free(lma_u64map *m) {
    free(m->keys); free(m->vals);
    memset(m, 0, sizeof *m);
}

size_t lma_u64map_bytes(const lma_u64map *m) { return m->cap * (sizeof(uint64_t) + sizeof(uint32_t)); }
