/* NF4 weights on a backend (see nf4.h). */
#include "model/nf4.h"
#include <stdlib.h>

lma_status lma_nf4_to_backend(lma_nf4_tensor *q, const lma_backend *be) {
    if (q->release) return LMA_OK;
    size_t nc = (size_t)(q->n + 1) / 2, nb = (size_t)q->nblocks, nb2 = (size_t)q->nblocks2 * sizeof(float);
    uint8_t *c = be->alloc(nc), *a = be->alloc(nb);
    float *a2 = be->alloc(nb2);
    if (!c || !a || !a2) {
        if (c) be->free(c);
        if (a) be->free(a);
        if (a2) be->free(a2);
        return lma_error(LMA_ERR_NOMEM, "out of %s memory for NF4 weights", be->name);
    }
    be->upload(c, q->codes, nc);
    be->upload(a, q->qabsmax, nb);
    be->upload(a2, q->absmax2, nb2);
    free(q->codes); free(q->qabsmax); free(q->absmax2);
    q->codes = c; q->qabsmax = a; q->absmax2 = a2;
    q->release = be->free;
    return LMA_OK;
}
