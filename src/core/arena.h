/* Bump allocator for per-step scratch: lma_arena_alloc() carves aligned blocks
 * from one allocation; lma_arena_reset() frees them all at once. Returns NULL
 * (and sets the error) when the arena is full: the arena never grows, so a
 * planning mistake shows up as an error, not as hidden allocation. */
#ifndef LMA_CORE_ARENA_H
#define LMA_CORE_ARENA_H
#include <stddef.h>
#include "core/status.h"

typedef struct {
    unsigned char *base;
    size_t cap, used, peak;
} lma_arena;

lma_status lma_arena_init(lma_arena *a, size_t cap);
void *lma_arena_alloc(lma_arena *a, size_t bytes); /* 64-byte aligned, zeroed=no */
void lma_arena_reset(lma_arena *a);
void lma_arena_free(lma_arena *a);

/* Overflow-checked size arithmetic: return 0 on overflow, else store the result. */
int lma_mul_ok(size_t a, size_t b, size_t *out);
int lma_add_ok(size_t a, size_t b, size_t *out);
/* malloc that sets LMA_ERR_NOMEM with the size and purpose on failure. */
void *lma_malloc(size_t bytes, const char *what);
void *lma_calloc(size_t n, size_t size, const char *what);
#endif
