/* Backend lookup by name and the host memory shared by cpu/ and ref/. */
#include "backend/backend.h"
#include "backend/host.h"
#include <stdlib.h>
#include <string.h>

void *lma_backend_host_alloc(size_t bytes) {
    void *p = NULL;
    /* round up to the alignment so vector loads of the tail stay in the block */
    size_t sz = bytes ? bytes : 1;
    if (sz > (size_t)-1 - 63) return NULL;
    sz = (sz + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, sz) != 0) return NULL;
    return p;
}

void lma_backend_host_free(void *p) { free(p); }

void lma_backend_host_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
}

void lma_backend_host_zero(void *p, size_t bytes) {
    if (bytes) memset(p, 0, bytes);
}

const lma_backend *lma_backend_by_name(const char *name) {
    if (!name) return NULL;
    if (!strcmp(name, "cpu")) return lma_backend_cpu();
    if (!strcmp(name, "ref")) return lma_backend_ref();
    if (!strcmp(name, "cuda")) return lma_backend_cuda();
    return NULL;
}

const lma_backend *lma_backend_default(void) {
    const lma_backend *c = lma_backend_cuda();
    return c ? c : lma_backend_cpu();
}

#ifndef LMA_HAVE_CUDA
const lma_backend *lma_backend_cuda(void) { return NULL; }
int lma_cuda_attention_naive = 0;
void lma_cuda_set_tf32(int on) { (void)on; }
#endif
