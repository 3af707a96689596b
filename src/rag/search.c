/* Retrieval (search.h): BM25 from the store, exact cosine with BLAS or HNSW, RRF. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "rag/topk.h"
#include "rag/hnsw.h"
#include "rag/scan.h"
#include "rag/search.h"

struct lma_rag_searcher {
    lma_rag_store *s;
    const lma_rag_encoder *enc;
    int dim;
    int loaded;       /* vectors loaded (unfiltered) */
    int64_t *ids;     /* (n) */
    float *vecs;      /* (n, dim) */
    float *norms;     /* (n) */
    size_t n;
    const lma_backend *be; /* the exact scan's device: NULL or cpu/ref: BLAS here */
    lma_rag_scan *scan;    /* on be, made on the first unfiltered exact search */
    lma_hnsw *graph;  /* loaded on the first search that uses it */
    int graph_tried, used_hnsw;
};

lma_rag_search_params lma_rag_search_defaults(void) {
    lma_rag_search_params p = {LMA_RAG_HYBRID, 10, NULL, 60, 0, 50000, 0};
    return p;
}

lma_status lma_rag_searcher_open(lma_rag_store *s, const lma_rag_encoder *enc, lma_rag_searcher **out) {
    *out = NULL;
    lma_rag_searcher *q = calloc(1, sizeof *q);
    if (!q) return lma_error(LMA_ERR_NOMEM, "searcher");
    q->s = s, q->enc = enc;
    char *dv = NULL;
    lma_status r = s->ops->meta_get(s, "dim", &dv);
    q->dim = dv ? atoi(dv) : 0;
    free(dv);
    if (r) { free(q); return r; }
    *out = q;
    return LMA_OK;
}

void lma_rag_searcher_free(lma_rag_searcher *q) {
    if (!q) return;
    free(q->ids), free(q->vecs), free(q->norms);
    lma_rag_scan_free(q->scan);
    lma_hnsw_free(q->graph);
    free(q);
}

int lma_rag_searcher_used_hnsw(const lma_rag_searcher *q) { return q->used_hnsw; }

void lma_rag_searcher_set_backend(lma_rag_searcher *q, const lma_backend *be) {
    q->be = be && !lma_backend_on_host(be) ? be : NULL;
}


void lma_rag_exact_topk(const float *vecs, const float *norms, size_t n, int dim, const float *q, int k, int64_t *idx,
                        float *score, int *nk) {
    *nk = 0;
    if (!n || k <= 0) return;
    float qn = cblas_snrm2(dim, q, 1);
    if (!(qn > 0)) qn = 1;
    size_t block = 4096;
    float *dots = malloc(block * sizeof *dots);
    if (!dots) return;
    for (size_t b0 = 0; b0 < n; b0 += block) {
        size_t m = n - b0 < block ? n - b0 : block;
        /* dots (m) = vecs[b0 : b0+m] (m, dim) @ q (dim) */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, dim, 1.0f, vecs + b0 * dim, dim, q, 1, 0.0f, dots, 1);
        for (size_t i = 0; i < m; i++) {
            float nv = norms[b0 + i] > 0 ? norms[b0 + i] : 1;
            lma_topk_push(idx, score, nk, k, (int64_t)(b0 + i), dots[i] / (nv * qn));
        }
    }
    free(dots);
    lma_topk_sort(idx, score, *nk);
}

lma_status lma_rag_rrf(const int64_t *const *lists, const int *lens, int n_lists, int rrf_k, int k, lma_rag_hit *out,
                       int *n) {
    int total = 0;
    for (int l = 0; l < n_lists; l++) total += lens[l];
    lma_rag_hit *all = malloc((total ? total : 1) * sizeof *all);
    if (!all) return lma_error(LMA_ERR_NOMEM, "rrf");
    int m = 0;
    for (int l = 0; l < n_lists; l++)
        for (int r = 0; r < lens[l]; r++) {
            int j = 0;
            while (j < m && all[j].id != lists[l][r]) j++;
            if (j == m) all[m++] = (lma_rag_hit){lists[l][r], 0};
            all[j].score += 1.0 / (rrf_k + r + 1);
        }
    /* sort on the double score, ties by id */
    for (int i = 1; i < m; i++) {
        lma_rag_hit h = all[i];
        int j = i;
        while (j > 0 && (all[j - 1].score < h.score || (all[j - 1].score == h.score && all[j - 1].id > h.id))) {
            all[j] = all[j - 1];
            j--;
        }
        all[j] = h;
    }
    *n = m < k ? m : k;
    memcpy(out, all, *n * sizeof *out);
    free(all);
    return LMA_OK;
}

static lma_status load_vectors(lma_rag_searcher *q) {
    if (q->loaded) return LMA_OK;
    LMA_TRY(q->s->ops->vectors(q->s, NULL, &q->ids, &q->vecs, &q->n));
    q->norms = malloc((q->n ? q->n : 1) * sizeof *q->norms);
    if (!q->norms) return lma_error(LMA_ERR_NOMEM, "vector norms");
    for (size_t i = 0; i < q->n; i++) q->norms[i] = cblas_snrm2(q->dim, q->vecs + i * q->dim, 1);
    q->loaded = 1;
    return LMA_OK;
}

static lma_status vector_search(lma_rag_searcher *q, const float *qv, const lma_rag_search_params *p, int k,
                                lma_rag_hit *hits, int *n) {
    lma_rag_store *s = q->s;
    *n = 0;
    q->used_hnsw = 0;
    int64_t count = 0;
    LMA_TRY(s->ops->chunk_count(s, &count));
    if (p->hnsw_min > 0 && count >= p->hnsw_min && !q->graph_tried) {
        q->graph_tried = 1;
        LMA_TRY(lma_hnsw_load(s, q->dim, &q->graph));
        if (q->graph && lma_hnsw_size(q->graph) == 0) { lma_hnsw_free(q->graph); q->graph = NULL; }
    }
    if (q->graph && p->hnsw_min > 0 && count >= p->hnsw_min) {
        /* the graph knows no filter: widen the beam and keep the hits that pass */
        int want = p->filter ? 4 * k : k;
        int ef = p->ef_search > 0 ? p->ef_search : (2 * want > 64 ? 2 * want : 64);
        if (ef < want) ef = want;
        int64_t *ids = malloc(want * sizeof *ids);
        float *sc = malloc(want * sizeof *sc);
        int got = 0;
        lma_status r = ids && sc ? lma_hnsw_search(q->graph, qv, want, ef, ids, sc, &got) : lma_error(LMA_ERR_NOMEM, "hnsw");
        for (int i = 0; !r && i < got && *n < k; i++) {
            int ok = 1;
            if (p->filter) r = s->ops->filter_match(s, p->filter, ids[i], &ok);
            if (ok) hits[(*n)++] = (lma_rag_hit){ids[i], sc[i]};
        }
        free(ids), free(sc);
        q->used_hnsw = 1;
        return r;
    }
    int64_t *ids = NULL, *idx = malloc(k * sizeof *idx);
    float *vecs = NULL, *norms = NULL, *sc = malloc(k * sizeof *sc);
    size_t nv = 0;
    lma_status r = idx && sc ? LMA_OK : lma_error(LMA_ERR_NOMEM, "vector search");
    if (!r && p->filter) {
        r = s->ops->vectors(s, p->filter, &ids, &vecs, &nv);
        if (!r && !(norms = malloc((nv ? nv : 1) * sizeof *norms))) r = lma_error(LMA_ERR_NOMEM, "norms");
        for (size_t i = 0; !r && i < nv; i++) norms[i] = cblas_snrm2(q->dim, vecs + i * q->dim, 1);
    } else if (!r) {
        r = load_vectors(q);
    }
    if (!r && !p->filter && q->be) { /* the GEMM on the device; the vectors go up once */
        int nk = 0;
        if (!q->scan) r = lma_rag_scan_new(q->be, q->vecs, q->norms, q->n, q->dim, &q->scan);
        if (!r) r = lma_rag_scan_topk(q->scan, qv, k, idx, sc, &nk);
        for (int i = 0; !r && i < nk; i++) hits[i] = (lma_rag_hit){q->ids[idx[i]], sc[i]};
        *n = r ? 0 : nk;
    } else if (!r) {
        int nk;
        lma_rag_exact_topk(p->filter ? vecs : q->vecs, p->filter ? norms : q->norms, p->filter ? nv : q->n, q->dim, qv,
                           k, idx, sc, &nk);
        for (int i = 0; i < nk; i++) hits[i] = (lma_rag_hit){(p->filter ? ids : q->ids)[idx[i]], sc[i]};
        *n = nk;
    }
    free(ids), free(vecs), free(norms), free(idx), free(sc);
    return r;
}

lma_status lma_rag_search(lma_rag_searcher *q, const char *query, const lma_rag_search_params *p, lma_rag_hit *hits,
                          int *n) {
    *n = 0;
    if (p->k <= 0) return LMA_OK;
    lma_rag_store *s = q->s;
    int depth = p->mode == LMA_RAG_HYBRID ? (p->depth > 0 ? p->depth : (p->k > 50 ? p->k : 50)) : p->k;
    int64_t *bm_ids = NULL;
    double *bm_sc = NULL;
    lma_rag_hit *vh = NULL;
    int nb = 0, nvh = 0;
    float *qv = NULL;
    lma_status r = LMA_OK;
    if (p->mode != LMA_RAG_BM25) {
        if (q->dim <= 0 || !q->enc || q->enc->dim != q->dim || !q->enc->embed)
            return lma_error(LMA_ERR_ARG, "%s: %s search needs the store's embedding model (the store has %s)", s->name,
                             p->mode == LMA_RAG_VECTOR ? "vector" : "hybrid", q->dim > 0 ? "vectors" : "no vectors");
    }
    if (p->mode != LMA_RAG_VECTOR) {
        bm_ids = malloc(depth * sizeof *bm_ids), bm_sc = malloc(depth * sizeof *bm_sc);
        r = bm_ids && bm_sc ? s->ops->bm25(s, query, p->filter, depth, bm_ids, bm_sc, &nb) : lma_error(LMA_ERR_NOMEM, "bm25");
    }
    if (!r && p->mode != LMA_RAG_BM25) {
        qv = malloc(q->dim * sizeof *qv), vh = malloc(depth * sizeof *vh);
        r = qv && vh ? q->enc->embed(q->enc->ctx, &query, 1, 1, qv) : lma_error(LMA_ERR_NOMEM, "query vector");
        if (!r) r = vector_search(q, qv, p, depth, vh, &nvh);
    }
    if (!r) {
        if (p->mode == LMA_RAG_BM25) {
            for (int i = 0; i < nb; i++) hits[i] = (lma_rag_hit){bm_ids[i], bm_sc[i]};
            *n = nb;
        } else if (p->mode == LMA_RAG_VECTOR) {
            memcpy(hits, vh, nvh * sizeof *hits);
            *n = nvh;
        } else {
            int64_t *vids = malloc((nvh ? nvh : 1) * sizeof *vids);
            if (!vids) r = lma_error(LMA_ERR_NOMEM, "rrf");
            for (int i = 0; !r && i < nvh; i++) vids[i] = vh[i].id;
            const int64_t *lists[2] = {bm_ids, vids};
            int lens[2] = {nb, nvh};
            if (!r) r = lma_rag_rrf(lists, lens, 2, p->rrf_k > 0 ? p->rrf_k : 60, p->k, hits, n);
            free(vids);
        }
    }
    free(bm_ids), free(bm_sc), free(vh), free(qv);
    return r;
}
