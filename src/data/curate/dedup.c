/* dedup: exact (hash of the harness-normalized text) and near duplicates (MinHash
 * over word shingles, LSH bands x rows, candidates verified by the exact Jaccard of
 * their shingle sets). Keep-first: an example is compared with the kept ones only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/rng.h"
#include "core/buf.h"
#include "data/curate/internal.h"
#include "data/curate/u64map.h"

#define MAX_CANDIDATES 256 /* verified per example; more similar-looking kept ones are skipped */

struct lma_dedup {
    lma_dedup_params p;
    int K;
    uint64_t *a, *b;       /* (K) MinHash permutations: a*x+b mod 2^64, a odd */
    lma_u64map exact;      /* exact hash -> kept index */
    lma_u64map *band;      /* (bands) band key -> kept index */
    int64_t *kept_id;      /* (n_kept) */
    uint64_t *kept_off;    /* (n_kept) offset in pool */
    uint32_t *kept_cnt;    /* (n_kept) */
    size_t n_kept, cap_kept;
    uint32_t *pool;        /* shingle hashes of kept examples */
    size_t pool_n, pool_cap;
    uint32_t cand[MAX_CANDIDATES];
    size_t n_cand;
};

void lma_dedup_default_params(lma_dedup_params *p) {
    p->bands = 14; p->rows = 8; p->shingle = 5; p->threshold = 0.8; p->near = 1; p->seed = 0x6c6d61;
}

lma_status lma_dedup_create(const lma_dedup_params *pin, lma_dedup **out) {
    *out = NULL;
    lma_dedup_params p;
    if (pin) p = *pin; else lma_dedup_default_params(&p);
    if (p.bands < 1 || p.rows < 1 || p.bands > 1024 || p.rows > 1024 || p.bands * p.rows > 4096)
        return lma_error(LMA_ERR_ARG, "dedup: bands x rows must be within 1..4096 (got %d x %d)", p.bands, p.rows);
    if (p.shingle < 1 || p.shingle > 64) return lma_error(LMA_ERR_ARG, "dedup: shingle size must be 1..64 (got %d)", p.shingle);
    if (!(p.threshold > 0 && p.threshold <= 1)) return lma_error(LMA_ERR_ARG, "dedup: threshold must be in (0, 1] (got %g)", p.threshold);
    lma_dedup *d = lma_calloc(1, sizeof *d, "dedup");
    if (!d) return LMA_ERR_NOMEM;
    d->p = p; d->K = p.bands * p.rows;
    d->a = lma_malloc((size_t)d->K * sizeof(uint64_t), "minhash");
    d->b = lma_malloc((size_t)d->K * sizeof(uint64_t), "minhash");
    d->band = lma_calloc((size_t)p.bands, sizeof(lma_u64map), "lsh bands");
    if (!d->a || !d->b || !d->band) { lma_dedup_free(d); return LMA_ERR_NOMEM; }
    lma_rng r; lma_rng_seed(&r, p.seed);
    for (int i = 0; i < d->K; i++) { d->a[i] = lma_rng_u64(&r) | 1; d->b[i] = lma_rng_u64(&r); }
    *out = d;
    return LMA_OK;
}

void lma_dedup_free(lma_dedup *d) {
    if (!d) return;
    free(d->a); free(d->b);
    lma_u64map_free(&d->exact);
    if (d->band) for (int i = 0; i < d->p.bands; i++) lma_u64map_free(&d->band[i]);
    free(d->band);
    free(d->kept_id); free(d->kept_off); free(d->kept_cnt); free(d->pool);
    free(d);
}

void lma_dedup_sig_free(lma_dedup_sig *s) {
    free(s->minhash); free(s->shingles);
    lma_words_free(&s->words);
    memset(s, 0, sizeof *s);
}

static int cmp_u32(const void *x, const void *y) {
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

lma_status lma_dedup_sign(const lma_dedup *d, const char *text, size_t n, lma_dedup_sig *s) {
    LMA_TRY(lma_words_norm(text, n, &s->words));
    s->exact = lma_hash64(s->words.text, s->words.text_len, 0xe8ac7);
    s->n_shingles = 0;
    if (!d->p.near) return LMA_OK;
    if (!s->minhash) {
        s->minhash = lma_malloc((size_t)d->K * sizeof(uint64_t), "minhash signature");
        if (!s->minhash) return LMA_ERR_NOMEM;
    }
    size_t nw = s->words.n, k = (size_t)d->p.shingle;
    size_t ns = nw == 0 ? 0 : nw < k ? 1 : nw - k + 1;
    if (ns > s->cap_shingles) {
        uint32_t *q = realloc(s->shingles, ns * sizeof *q);
        if (!q) return lma_error(LMA_ERR_NOMEM, "dedup: out of memory for %zu shingles", ns);
        s->shingles = q; s->cap_shingles = ns;
    }
    for (size_t i = 0; i < ns; i++)
        s->shingles[i] = (uint32_t)(lma_ngram_hash(s->words.hash + i, nw < k ? nw : k) >> 32);
    if (ns) qsort(s->shingles, ns, sizeof *s->shingles, cmp_u32);
    size_t u = 0;
    for (size_t i = 0; i < ns; i++)
        if (!u || s->shingles[i] != s->shingles[u - 1]) s->shingles[u++] = s->shingles[i];
    s->n_shingles = u;
    uint64_t *mh = s->minhash;
    const uint64_t *A = d->a, *B = d->b;
    int K = d->K;
    for (int i = 0; i < K; i++) mh[i] = UINT64_MAX;
    for (size_t j = 0; j < u; j++) {
        uint64_t x = lma_mix64((uint64_t)s->shingles[j] + 0x9E3779B97F4A7C15ULL);
        for (int i = 0; i < K; i++) {
            uint64_t v = A[i] * x + B[i];
            mh[i] = v < mh[i] ? v : mh[i];
        }
    }
    return LMA_OK;
}

double lma_jaccard_sorted(const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
    if (!na && !nb) return 1.0;
    size_t i = 0, j = 0, inter = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) { inter++; i++; j++; }
        else if (a[i] < b[j]) i++;
        else j++;
    }
    return (double)inter / (double)(na + nb - inter);
}

static int collect(uint32_t v, void *ctx) {
    lma_dedup *d = ctx;
    for (size_t i = 0; i < d->n_cand; i++)
        if (d->cand[i] == v) return 0;
    if (d->n_cand < MAX_CANDIDATES) d->cand[d->n_cand++] = v;
    return d->n_cand >= MAX_CANDIDATES;
}

static uint64_t band_key(const lma_dedup *d, const lma_dedup_sig *s, int band) {
    return lma_hash64(s->minhash + (size_t)band * d->p.rows, (size_t)d->p.rows * sizeof(uint64_t), 0xba0d + (uint64_t)band);
}

lma_status lma_dedup_insert(lma_dedup *d, const lma_dedup_sig *s, int64_t id, lma_dup_result *res) {
    res->kind = LMA_DUP_NONE; res->twin = -1; res->jaccard = 0;
    uint32_t v = lma_u64map_get(&d->exact, s->exact);
    if (v != UINT32_MAX) {
        res->kind = LMA_DUP_EXACT; res->twin = d->kept_id[v]; res->jaccard = 1.0;
        return LMA_OK;
    }
    if (d->p.near && s->n_shingles) {
        d->n_cand = 0;
        for (int b = 0; b < d->p.bands && d->n_cand < MAX_CANDIDATES; b++)
            lma_u64map_find(&d->band[b], band_key(d, s, b), collect, d);
        if (d->n_cand) qsort(d->cand, d->n_cand, sizeof d->cand[0], cmp_u32); /* earliest kept first */
        for (size_t i = 0; i < d->n_cand; i++) {
            uint32_t c = d->cand[i];
            double j = lma_jaccard_sorted(s->shingles, s->n_shingles, d->pool + d->kept_off[c], d->kept_cnt[c]);
            if (j >= d->p.threshold) {
                res->kind = LMA_DUP_NEAR; res->twin = d->kept_id[c]; res->jaccard = j;
                return LMA_OK;
            }
        }
    }
    /* keep it */
    if (d->n_kept >= UINT32_MAX - 1) return lma_error(LMA_ERR_UNSUPPORTED, "dedup: more than 4e9 kept examples");
    if (d->n_kept == d->cap_kept) { /* 3 arrays, one capacity */
        void *const arrs[] = {&d->kept_id, &d->kept_off, &d->kept_cnt};
        const size_t esz[] = {sizeof *d->kept_id, sizeof *d->kept_off, sizeof *d->kept_cnt};
        LMA_TRY(lma_grow_all(&d->cap_kept, d->n_kept + 1, 4096, "dedup kept examples", 3, arrs, esz));
    }
    size_t need;
    if (!lma_add_ok(d->pool_n, s->n_shingles, &need)) return lma_error(LMA_ERR_NOMEM, "dedup: shingle pool overflow");
    LMA_TRY(lma_grow(&d->pool, &d->pool_cap, need, sizeof *d->pool, 1 << 16, "dedup shingles"));
    uint32_t idx = (uint32_t)d->n_kept;
    d->kept_id[idx] = id;
    d->kept_off[idx] = d->pool_n;
    d->kept_cnt[idx] = (uint32_t)s->n_shingles;
    if (s->n_shingles) memcpy(d->pool + d->pool_n, s->shingles, s->n_shingles * sizeof(uint32_t));
    d->pool_n += s->n_shingles;
    d->n_kept++;
    LMA_TRY(lma_u64map_insert(&d->exact, s->exact, idx));
    if (d->p.near && s->n_shingles)
        for (int b = 0; b < d->p.bands; b++) LMA_TRY(lma_u64map_insert(&d->band[b], band_key(d, s, b), idx));
    return LMA_OK;
}

lma_status lma_dedup_add(lma_dedup *d, const char *text, size_t n, int64_t id, lma_dup_result *res) {
    lma_dedup_sig s; memset(&s, 0, sizeof s);
    lma_status st = lma_dedup_sign(d, text, n, &s);
    if (!st) st = lma_dedup_insert(d, &s, id, res);
    lma_dedup_sig_free(&s);
    return st;
}

size_t lma_dedup_memory(const lma_dedup *d) {
    size_t b = lma_u64map_bytes(&d->exact) + d->pool_cap * sizeof(uint32_t) +
               d->cap_kept * (sizeof(int64_t) + sizeof(uint64_t) + sizeof(uint32_t));
    for (int i = 0; i < d->p.bands; i++) b += lma_u64map_bytes(&d->band[i]);
    return b;
}

/* ---- file driver ------------------------------------------------------------ */


lma_status lma_data_dedup(const char *in, const lma_dedup_file_params *p, cJSON **out) {
    *out = NULL;
    lma_curate_sieve sv;
    LMA_TRY(lma_curate_sieve_open(&sv, "dedup", in, p->out_path, p->removed_path, p->report_path));
    lma_dedup *d = NULL;
    lma_ex_reader *r = NULL;
    lma_curate_batch *batch = calloc(1, sizeof *batch);
    lma_dedup_sig *sigs = calloc(LMA_CURATE_BATCH, sizeof *sigs);
    int64_t n_exact = 0, n_near = 0;
    lma_status st = (batch && sigs) ? LMA_OK : lma_error(LMA_ERR_NOMEM, "dedup: out of memory");
    if (!st) st = lma_dedup_create(&p->dedup, &d);
    if (!st) st = lma_ex_open(in, &r);
    while (!st) {
        if ((st = lma_curate_batch_read(r, p->part ? p->part : LMA_EX_ALL, batch, lma_curate_on_bad, &sv.bad)) || !batch->n) break;
        lma_status ps = LMA_OK;
        #pragma omp parallel for schedule(dynamic, 16)
        for (size_t i = 0; i < batch->n; i++) {
            lma_status s1 = lma_dedup_sign(d, batch->text[i].p, batch->text[i].len, &sigs[i]);
            if (s1) {
                #pragma omp critical
                ps = s1;
            }
        }
        if ((st = ps)) break;
        for (size_t i = 0; i < batch->n && !st; i++) {
            lma_dup_result res;
            if ((st = lma_dedup_insert(d, &sigs[i], batch->lineno[i], &res))) break;
            if (res.kind == LMA_DUP_NONE) { st = lma_curate_sieve_keep(&sv, &batch->line[i]); continue; }
            if (res.kind == LMA_DUP_EXACT) n_exact++; else n_near++;
            cJSON *o = cJSON_CreateObject();
            if (o) {
                cJSON_AddNumberToObject(o, "line", (double)batch->lineno[i]);
                cJSON_AddNumberToObject(o, "twin_line", (double)res.twin);
                cJSON_AddStringToObject(o, "reason", res.kind == LMA_DUP_EXACT ? "exact" : "near");
                cJSON_AddNumberToObject(o, "jaccard", res.jaccard);
            }
            st = lma_curate_sieve_drop(&sv, o, &batch->line[i]);
        }
    }
    cJSON *summary = NULL;
    if (!st && !(summary = cJSON_CreateObject())) st = lma_error(LMA_ERR_NOMEM, "dedup: out of memory");
    if (!st) {
        cJSON_AddNumberToObject(summary, "exact_duplicates", (double)n_exact);
        cJSON_AddNumberToObject(summary, "near_duplicates", (double)n_near);
        cJSON_AddNumberToObject(summary, "state_bytes", (double)lma_dedup_memory(d));
        cJSON *pp = cJSON_AddObjectToObject(summary, "params");
        if (pp) {
            cJSON_AddNumberToObject(pp, "bands", d->p.bands);
            cJSON_AddNumberToObject(pp, "rows", d->p.rows);
            cJSON_AddNumberToObject(pp, "shingle", d->p.shingle);
            cJSON_AddNumberToObject(pp, "threshold", d->p.threshold);
            cJSON_AddBoolToObject(pp, "near", d->p.near);
        }
        st = lma_curate_sieve_close(&sv, summary);
    }
    lma_curate_sieve_abort(&sv);
    lma_ex_close(r);
    lma_dedup_free(d);
    if (sigs) for (size_t i = 0; i < LMA_CURATE_BATCH; i++) lma_dedup_sig_free(&sigs[i]);
    free(sigs);
    if (batch) { lma_curate_batch_free(batch); free(batch); }
    if (st) { cJSON_Delete(summary); return st; }
    *out = summary;
    return LMA_OK;
}
