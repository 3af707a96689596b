#include "core/arena.h"
#include <stdlib.h>
#include <string.h>

int lma_mul_ok(size_t a, size_t b, size_t *out) {
    if (a && b > (size_t)-1 / a) return 0;
    *out = a * b;
    return 1;
}
int lma_add_ok(size_t a, size_t b, size_t *out) {
    if (b > (size_t)-1 - a) return 0;
    *out = a + b;
    return 1;
}

void *lma_malloc(size_t bytes, const char *what) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0) {
        lma_error(LMA_ERR_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
        return NULL;
    }
    return p;
}

void *lma_calloc(size_t n, size_t size, const char *what) {
    size_t bytes;
    if (!lma_mul_ok(n, size, &bytes)) {
        lma_error(LMA_ERR_NOMEM, "size overflow allocating %zu x %zu bytes for %s", n, size, what);
        return NULL;
    }
    void *p = lma_malloc(bytes, what);
    if (p) memset(p, 0, bytes);
    return p;
}

lma_status lma_arena_init(lma_arena *a, size_t cap) {
    memset(a, 0, sizeof *a);
    a->base = lma_malloc(cap, "arena");
    if (!a->base) return LMA_ERR_NOMEM;
    a->cap = cap;
    return LMA_OK;
}

void *lma_arena_alloc(lma_arena *a, size_t bytes) {
    size_t off = (a->used + 63) & ~(size_t)63, end;
    if (!lma_add_ok(off, bytes, &end) || end > a->cap) {
        lma_error(LMA_ERR_NOMEM, "arena full: %zu of %zu bytes used, %zu more asked", a->used, a->cap, bytes);
        return NULL;
    }
    a->used = end;
    if (end > a->peak) a->peak = end;
    return a->base + off;
}

void lma_arena_reset(lma_arena *a) { a->used = 0; }
void lma_arena_free(lma_arena *a) { free(a->base); memset(a, 0, sizeof *a); }
