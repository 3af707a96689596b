/* The exact cosine scan on a backend (scan.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "rag/topk.h"
#include "rag/scan.h"
#include "rag/search.h"

struct lma_rag_scan {
    const lma_backend *be;
    size_t n;
    int dim;
    void *dvecs;  /* (n, dim) act = fp32, unit rows (zero rows stay zero) */
    void *dq;     /* (dim) */
    void *ddots;  /* (n) */
    float *dots;  /* (n) host */
};

void lma_rag_scan_free(lma_rag_scan *s) {
    if (!s) return;
    if (s->be) s->be->free(s->dvecs), s->be->free(s->dq), s->be->free(s->ddots);
    free(s->dots);
    free(s);
}

lma_status lma_rag_scan_new(const lma_backend *be, const float *vecs, const float *norms, size_t n, int dim,
                            lma_rag_scan **out) {
    *out = NULL;
    if (be->act_bytes != 4 && !strcmp(be->name, "cuda")) be = lma_backend_cuda_fp32();
    if (!be || be->act_bytes != 4 || !be->matmul_fwd)
        return lma_error(LMA_ERR_UNSUPPORTED, "exact scan: the backend has no fp32 matmul");
    if (n > 0x7fffffff || dim <= 0) return lma_error(LMA_ERR_ARG, "exact scan: %zu vectors of %d dims", n, dim);
    lma_rag_scan *s = calloc(1, sizeof *s);
    if (!s) return lma_error(LMA_ERR_NOMEM, "exact scan");
    s->be = be, s->n = n, s->dim = dim;
    size_t rows = n ? n : 1, block = 4096;
    float *unit = malloc(block * dim * sizeof *unit);
    s->dots = malloc(rows * sizeof *s->dots);
    s->dvecs = be->alloc(rows * dim * sizeof(float));
    s->dq = be->alloc(dim * sizeof(float));
    s->ddots = be->alloc(rows * sizeof(float));
    lma_status r = unit && s->dots && s->dvecs && s->dq && s->ddots ? LMA_OK
                   : lma_error(LMA_ERR_NOMEM, "exact scan: %zu x %d vectors on %s", n, dim, be->name);
    for (size_t b0 = 0; !r && b0 < n; b0 += block) { /* normalized on the host, a block at a time */
        size_t m = n - b0 < block ? n - b0 : block;
        for (size_t i = 0; i < m; i++) {
            float nv = norms[b0 + i] > 0 ? 1.0f / norms[b0 + i] : 0;
            for (int j = 0; j < dim; j++) unit[i * dim + j] = vecs[(b0 + i) * dim + j] * nv;
        }
        be->upload((float *)s->dvecs + b0 * dim, unit, m * dim * sizeof *unit);
    }
    free(unit);
    if (!r) r = lma_backend_sync(be);
    if (r) { lma_rag_scan_free(s); return r; }
    *out = s;
    return LMA_OK;
}


lma_status lma_rag_scan_topk(lma_rag_scan *s, const float *q, int k, int64_t *idx, float *score, int *nk) {
    *nk = 0;
    if (!s->n || k <= 0) return LMA_OK;
    const lma_backend *be = s->be;
    float *u = malloc(s->dim * sizeof *u), qn = 0;
    if (!u) return lma_error(LMA_ERR_NOMEM, "exact scan");
    for (int j = 0; j < s->dim; j++) qn += q[j] * q[j];
    qn = qn > 0 ? 1.0f / sqrtf(qn) : 1;
    for (int j = 0; j < s->dim; j++) u[j] = q[j] * qn;
    be->upload(s->dq, u, s->dim * sizeof *u);
    free(u);
    /* dots (1, n) = q (1, dim) @ vecs (n, dim)^T */
    be->matmul_fwd(s->ddots, s->dq, s->dvecs, NULL, 1, s->dim, (int)s->n);
    be->download(s->dots, s->ddots, s->n * sizeof *s->dots);
    LMA_TRY(lma_backend_sync(be));
    for (size_t i = 0; i < s->n; i++) lma_topk_push(idx, score, nk, k, (int64_t)i, s->dots[i]);
    lma_topk_sort(idx, score, *nk);
    return LMA_OK;
}
