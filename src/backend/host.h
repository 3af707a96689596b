/* Host memory for the CPU-side backends (cpu/, ref/): 64-byte aligned
 * allocations (posix_memalign), memcpy upload/download and copies, memset zero.
 * lma_backend_host_alloc returns NULL on failure (and for an impossible size);
 * the caller owns the block and frees it with lma_backend_host_free. */
#ifndef LMA_BACKEND_HOST_H
#define LMA_BACKEND_HOST_H
#include <stddef.h>

void *lma_backend_host_alloc(size_t bytes);
void lma_backend_host_free(void *p);
void lma_backend_host_copy(void *dst, const void *src, size_t bytes);
void lma_backend_host_zero(void *p, size_t bytes);
void lma_backend_host_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t rows);
#endif
