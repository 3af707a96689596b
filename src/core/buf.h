/* The growable buffer: one growth rule for every array that grows as it is filled.
 *
 *   lma_grow  makes room for `need` elements in a typed array (T *a; size_t cap): the
 *             capacity doubles from `first` until it holds need; every size is checked
 *             for overflow. Arrays keep their own element count.
 *   lma_buf   bytes (text or binary) built on lma_grow, always NUL-terminated once
 *             anything was appended (p[len] == 0), so text reads as a C string.
 *
 * On failure both return LMA_ERR_NOMEM with a message naming `what` (lma_buf: "buffer")
 * and leave the array as it was. An lma_buf also keeps its first failure in st: every
 * later call does nothing and returns it, so a run of appends may be checked once, at
 * the end. Zero-initialize (lma_buf b = {0}); free with free(a) / lma_buf_free. */
#ifndef LMA_CORE_BUF_H
#define LMA_CORE_BUF_H
#include <stddef.h>
#include "core/status.h"

/* arrp: the address of the array pointer (T **); esz: sizeof(T). */
lma_status lma_grow(void *arrp, size_t *cap, size_t need, size_t esz, size_t first, const char *what);

/* lma_grow for count arrays that share one capacity: arrps[i] is the address of array i's
 * pointer, esz[i] its element size; all reach the same new capacity, *cap. */
lma_status lma_grow_all(size_t *cap, size_t need, size_t first, const char *what, size_t count, void *const *arrps,
                        const size_t *esz);

typedef struct {
    char *p;
    size_t len, cap; /* bytes used (the NUL not counted), allocated */
    lma_status st;   /* the first failure (sticky), LMA_OK */
} lma_buf;

/* Room for more bytes after len (and the NUL). */
lma_status lma_buf_reserve(lma_buf *b, size_t more);
lma_status lma_buf_append(lma_buf *b, const void *data, size_t n);
lma_status lma_buf_str(lma_buf *b, const char *s); /* strlen(s) bytes */
lma_status lma_buf_push(lma_buf *b, char c);
lma_status lma_buf_printf(lma_buf *b, const char *fmt, ...) LMA_PRINTF(2, 3);
void lma_buf_free(lma_buf *b);
#endif
