/* Checked allocation: overflow-checked size arithmetic, and malloc/calloc that set
 * LMA_ERR_NOMEM with the size and purpose. (The file keeps its old name; the bump
 * allocator it once held had no user.) */
#ifndef LMA_CORE_ARENA_H
#define LMA_CORE_ARENA_H
#include <stddef.h>
#include "core/status.h"

/* Overflow-checked size arithmetic: return 0 on overflow, else store the result. */
int lma_mul_ok(size_t a, size_t b, size_t *out);
int lma_add_ok(size_t a, size_t b, size_t *out);
/* malloc that sets LMA_ERR_NOMEM with the size and purpose on failure. */
void *lma_malloc(size_t bytes, const char *what);
void *lma_calloc(size_t n, size_t size, const char *what);
#endif
