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
