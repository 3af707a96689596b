/* The growable buffer (see buf.h). */
#include "core/buf.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"

lma_status lma_grow(void *arrp, size_t *cap, size_t need, size_t esz, size_t first, const char *what) {
    if (need <= *cap) return LMA_OK;
    size_t nc = *cap ? *cap : (first ? first : 1), bytes;
    while (nc < need) nc = nc > SIZE_MAX / 2 ? need : nc * 2;
    if (!lma_mul_ok(nc, esz, &bytes))
        return lma_error(LMA_ERR_NOMEM, "%s: %zu elements of %zu bytes overflow", what, nc, esz);
    void *old, *p;
    memcpy(&old, arrp, sizeof old);
    p = realloc(old, bytes);
    if (!p) return lma_error(LMA_ERR_NOMEM, "out of memory growing %s to %zu bytes", what, bytes);
    memcpy(arrp, &p, sizeof p);
    *cap = nc;
    return LMA_OK;
}

lma_status lma_grow_all(size_t *cap, size_t need, size_t first, const char *what, size_t count, void *const *arrps,
                        const size_t *esz) {
    size_t c = *cap;
    for (size_t i = 0; i < count; i++) {
        c = *cap;
        LMA_TRY(lma_grow(arrps[i], &c, need, esz[i], first, what));
    }
    *cap = c;
    return LMA_OK;
}

lma_status lma_buf_reserve(lma_buf *b, size_t more) {
    size_t need;
    if (b->st) return b->st;
    if (!lma_add_ok(b->len, more, &need) || !lma_add_ok(need, 1, &need))
        return b->st = lma_error(LMA_ERR_NOMEM, "buffer: %zu + %zu bytes overflow", b->len, more);
    return b->st = lma_grow(&b->p, &b->cap, need, 1, 256, "buffer");
}

lma_status lma_buf_append(lma_buf *b, const void *data, size_t n) {
    LMA_TRY(lma_buf_reserve(b, n));
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
    return LMA_OK;
}

lma_status lma_buf_str(lma_buf *b, const char *s) { return lma_buf_append(b, s, strlen(s)); }

lma_status lma_buf_push(lma_buf *b, char c) { return lma_buf_append(b, &c, 1); }

lma_status lma_buf_printf(lma_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->st) return b->st;
    if (n < 0) return b->st = lma_error(LMA_ERR_ARG, "buffer: bad format \"%s\"", fmt);
    LMA_TRY(lma_buf_reserve(b, (size_t)n));
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return LMA_OK;
}

void lma_buf_free(lma_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
