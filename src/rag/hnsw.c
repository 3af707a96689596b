/* HNSW (hnsw.h). Nodes live in one array (dead slots stay until the graph is reloaded);
 * links are node indices in memory and chunk ids in the store. Per node one int32 array:
 * level 0 at offset 0 (count, then up to M0 = 2M links), level l >= 1 at
 * (M0 + 1) + (l - 1)(M + 1) (count, then up to M). Distance: 1 - dot of unit vectors. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/threads.h"
#include "rag/hnsw.h"

#define HNSW_MAX_M 64 /* links_copy's buffers */

typedef struct {
    int64_t id;
    int level, dead, dirty, lost; /* lost: links to nodes gone before loading were dropped */
    int32_t *links;
} node;

struct lma_hnsw {
    int dim, M, M0, efc;
    double mL;
    uint64_t seed;
    node *nodes;
    float *vecs; /* (cap, dim) */
    size_t n, cap, live;
    int32_t entry;
    int max_level;
    int64_t *map_k; /* id -> index, open addressing (index -1: empty) */
    int32_t *map_v;
    size_t map_cap;
    uint32_t *visited, epoch;
    omp_lock_t *locks, glock; /* during lma_hnsw_add_many only: one per node (its links), entry/max_level */
    int64_t *removed; /* ids removed since the last save */
    size_t n_removed, cap_removed;
    int need_repair;
};

lma_hnsw_params lma_hnsw_defaults(void) {
    lma_hnsw_params p = {16, 100, 0x9E3779B97F4A7C15ull};
    return p;
}

static uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

#if defined(__GNUC__)
/* 16 lanes in 2 x 8 accumulators (GCC/clang vector extension: AVX/AVX-512 where built
 * with -march=native, SSE pairs otherwise); unaligned loads through memcpy */
typedef float lma_v8 __attribute__((vector_size(32)));
static float dot(const float *a, const float *b, int d) {
    lma_v8 s0 = {0}, s1 = {0}, x, y, u, v;
    int i = 0;
    for (; i + 16 <= d; i += 16) {
        memcpy(&x, a + i, 32), memcpy(&y, b + i, 32), memcpy(&u, a + i + 8, 32), memcpy(&v, b + i + 8, 32);
        s0 += x * y, s1 += u * v;
    }
    s0 += s1;
    float r = ((s0[0] + s0[1]) + (s0[2] + s0[3])) + ((s0[4] + s0[5]) + (s0[6] + s0[7]));
    for (; i < d; i++) r += a[i] * b[i];
    return r;
}
#else
static float dot(const float *a, const float *b, int d) {
    float r = 0;
    for (int i = 0; i < d; i++) r += a[i] * b[i];
    return r;
}
#endif

static float dist_q(const lma_hnsw *h, const float *q, int32_t i) { return 1.0f - dot(q, h->vecs + (size_t)i * h->dim, h->dim); }
static float dist_ij(const lma_hnsw *h, int32_t i, int32_t j) { return dist_q(h, h->vecs + (size_t)i * h->dim, j); }

static int32_t *lvl(const lma_hnsw *h, int32_t i, int l) {
    return h->nodes[i].links + (l == 0 ? 0 : (h->M0 + 1) + (size_t)(l - 1) * (h->M + 1));
}
static int cap_of(const lma_hnsw *h, int l) { return l == 0 ? h->M0 : h->M; }

/* id map ---------------------------------------------------------------- */
static size_t slot(const lma_hnsw *h, int64_t id) {
    size_t m = h->map_cap - 1, i = mix((uint64_t)id) & m;
    while (h->map_v[i] >= 0 && h->map_k[i] != id) i = (i + 1) & m;
    return i;
}
static int32_t map_get(const lma_hnsw *h, int64_t id) { return h->map_cap ? h->map_v[slot(h, id)] : -1; }
static lma_status map_put(lma_hnsw *h, int64_t id, int32_t v);
static lma_status map_grow(lma_hnsw *h) {
    size_t oc = h->map_cap;
    int64_t *ok = h->map_k;
    int32_t *ov = h->map_v;
    h->map_cap = oc ? 2 * oc : 1024;
    h->map_k = malloc(h->map_cap * sizeof *h->map_k);
    h->map_v = malloc(h->map_cap * sizeof *h->map_v);
    if (!h->map_k || !h->map_v) return lma_error(LMA_ERR_NOMEM, "hnsw id map");
    for (size_t i = 0; i < h->map_cap; i++) h->map_v[i] = -1;
    for (size_t i = 0; i < oc; i++)
        if (ov[i] >= 0) map_put(h, ok[i], ov[i]);
    free(ok), free(ov);
    return LMA_OK;
}
static lma_status map_put(lma_hnsw *h, int64_t id, int32_t v) {
    if (2 * (h->n + 1) > h->map_cap) LMA_TRY(map_grow(h));
    size_t i = slot(h, id);
    h->map_k[i] = id, h->map_v[i] = v;
    return LMA_OK;
}
/* deletion with backward shift (linear probing) */
static void map_del(lma_hnsw *h, int64_t id) {
    if (!h->map_cap) return;
    size_t m = h->map_cap - 1, i = slot(h, id);
    if (h->map_v[i] < 0) return;
    h->map_v[i] = -1;
    for (size_t j = (i + 1) & m; h->map_v[j] >= 0; j = (j + 1) & m) {
        size_t home = mix((uint64_t)h->map_k[j]) & m;
        /* move j back to i when home is not in (i, j] cyclically */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            h->map_k[i] = h->map_k[j], h->map_v[i] = h->map_v[j];
            h->map_v[j] = -1;
            i = j;
        }
    }
}

/* lifecycle -------------------------------------------------------------- */
lma_status lma_hnsw_new(int dim, lma_hnsw_params p, lma_hnsw **out) {
    *out = NULL;
    if (dim <= 0 || p.M < 2 || p.M > HNSW_MAX_M || p.ef_construction < 1) return lma_error(LMA_ERR_ARG, "hnsw: dim %d, M %d, ef %d", dim, p.M, p.ef_construction);
    lma_hnsw *h = calloc(1, sizeof *h);
    if (!h) return lma_error(LMA_ERR_NOMEM, "hnsw");
    h->dim = dim, h->M = p.M, h->M0 = 2 * p.M, h->efc = p.ef_construction, h->seed = p.seed;
    h->mL = 1.0 / log((double)p.M);
    h->entry = -1, h->max_level = -1;
    *out = h;
    return LMA_OK;
}

void lma_hnsw_free(lma_hnsw *h) {
    if (!h) return;
    for (size_t i = 0; i < h->n; i++) free(h->nodes[i].links);
    free(h->nodes), free(h->vecs), free(h->map_k), free(h->map_v), free(h->visited), free(h->removed);
    free(h);
}

size_t lma_hnsw_size(const lma_hnsw *h) { return h ? h->live : 0; }
int lma_hnsw_contains(const lma_hnsw *h, int64_t id) { return map_get(h, id) >= 0; }

/* search layer ----------------------------------------------------------- */
typedef struct { float d; int32_t i; } cand;
/* heaps of cand: min-heap when sign = 1, max-heap when sign = -1 */
static void hpush(cand *a, int *n, cand c, int sign) {
    int i = (*n)++;
    while (i > 0 && sign * (a[(i - 1) / 2].d - c.d) > 0) { a[i] = a[(i - 1) / 2]; i = (i - 1) / 2; }
    a[i] = c;
}
static cand hpop(cand *a, int *n, int sign) {
    cand top = a[0], last = a[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && sign * (a[c].d - a[c + 1].d) > 0) c++;
        if (!(sign * (last.d - a[c].d) > 0)) break;
        a[i] = a[c];
        i = c;
    }
    if (*n) a[i] = last;
    return top;
}
static int by_d(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d ? 1 : (x->i > y->i) - (x->i < y->i);
}

static void visited_ready(lma_hnsw *h) {
    if (++h->epoch == 0) { memset(h->visited, 0, h->cap * sizeof *h->visited); h->epoch = 1; }
}

/* a visited set: the graph's own, or one per thread in lma_hnsw_add_many */
typedef struct { uint32_t *v, epoch; size_t cap; } vset;
static void vset_ready(vset *vs) {
    if (++vs->epoch == 0) { memset(vs->v, 0, vs->cap * sizeof *vs->v); vs->epoch = 1; }
}

/* node i's links at level l copied to out (count first): under its lock while a parallel
 * insertion runs */
static void links_copy(const lma_hnsw *h, int32_t i, int l, int32_t *out) {
    if (h->locks) omp_set_lock(&h->locks[i]);
    const int32_t *ls = lvl(h, i, l);
    memcpy(out, ls, (size_t)(ls[0] + 1) * sizeof *ls);
    if (h->locks) omp_unset_lock(&h->locks[i]);
}

/* ef closest to q at level l from entry ep: out (ef) sorted ascending, *nout */
static lma_status search_layer_vs(lma_hnsw *h, vset *vs, const float *q, int32_t ep, int ef, int l, cand *out, int *nout) {
    vset_ready(vs);
    uint32_t *visited = vs->v, epoch = vs->epoch;
    int32_t ls[1 + 2 * HNSW_MAX_M];
    int ccap = ef + h->M0 + 16;
    cand *C = malloc((size_t)ccap * sizeof *C);
    cand *W = malloc((size_t)(ef + 1) * sizeof *W);
    if (!C || !W) { free(C), free(W); return lma_error(LMA_ERR_NOMEM, "hnsw search"); }
    int nc = 0, nw = 0;
    cand e = {dist_q(h, q, ep), ep};
    visited[ep] = epoch;
    hpush(C, &nc, e, 1);
    hpush(W, &nw, e, -1);
    while (nc) {
        cand c = hpop(C, &nc, 1);
        if (c.d > W[0].d && nw >= ef) break;
        links_copy(h, c.i, l, ls);
        for (int k = 0; k < ls[0]; k++) {
            int32_t j = ls[1 + k];
            if (visited[j] == epoch) continue;
            visited[j] = epoch;
            float d = dist_q(h, q, j);
            if (nw < ef || d < W[0].d) {
                if (nc == ccap) { /* grow the candidate heap */
                    cand *t = realloc(C, (size_t)ccap * 2 * sizeof *C);
                    if (!t) { free(C), free(W); return lma_error(LMA_ERR_NOMEM, "hnsw search"); }
                    C = t, ccap *= 2;
                }
                hpush(C, &nc, (cand){d, j}, 1);
                hpush(W, &nw, (cand){d, j}, -1);
                if (nw > ef) hpop(W, &nw, -1);
            }
        }
    }
    memcpy(out, W, nw * sizeof *W);
    qsort(out, nw, sizeof *out, by_d);
    *nout = nw;
    free(C), free(W);
    return LMA_OK;
}
static lma_status search_layer(lma_hnsw *h, const float *q, int32_t ep, int ef, int l, cand *out, int *nout) {
    vset vs = {h->visited, h->epoch, h->cap};
    lma_status r = search_layer_vs(h, &vs, q, ep, ef, l, out, nout);
    h->epoch = vs.epoch;
    return r;
}

static int32_t greedy(const lma_hnsw *h, const float *q, int32_t ep, int l) {
    float best = dist_q(h, q, ep);
    int32_t ls[1 + 2 * HNSW_MAX_M];
    for (int changed = 1; changed;) {
        changed = 0;
        links_copy(h, ep, l, ls);
        for (int k = 0; k < ls[0]; k++) {
            float d = dist_q(h, q, ls[1 + k]);
            if (d < best) best = d, ep = ls[1 + k], changed = 1;
        }
    }
    return ep;
}

/* the heuristic of the paper (alg. 4): c is kept when it is closer to the base than to
 * every neighbour already kept. c sorted ascending by distance to the base. */
static int select_neighbors(const lma_hnsw *h, const cand *c, int nc, int m, int32_t *out) {
    int n = 0;
    for (int i = 0; i < nc && n < m; i++) {
        int good = 1;
        for (int j = 0; j < n && good; j++)
            if (dist_ij(h, c[i].i, out[j]) < c[i].d) good = 0;
        if (good) out[n++] = c[i].i;
    }
    return n;
}

/* node i gets link to j at level l; over capacity: re-selected by the heuristic */
static lma_status link_to_unlocked(lma_hnsw *h, int32_t i, int32_t j, int l);
static lma_status link_to(lma_hnsw *h, int32_t i, int32_t j, int l) {
    if (!h->locks) return link_to_unlocked(h, i, j, l);
    omp_set_lock(&h->locks[i]);
    lma_status r = link_to_unlocked(h, i, j, l);
    omp_unset_lock(&h->locks[i]);
    return r;
}
static lma_status link_to_unlocked(lma_hnsw *h, int32_t i, int32_t j, int l) {
    int32_t *ls = lvl(h, i, l);
    int m = cap_of(h, l);
    for (int k = 0; k < ls[0]; k++)
        if (ls[1 + k] == j) return LMA_OK;
    h->nodes[i].dirty = 1;
    if (ls[0] < m) { ls[1 + ls[0]++] = j; return LMA_OK; }
    cand *c = malloc((size_t)(m + 1) * sizeof *c);
    if (!c) return lma_error(LMA_ERR_NOMEM, "hnsw links");
    for (int k = 0; k < m; k++) c[k] = (cand){dist_ij(h, i, ls[1 + k]), ls[1 + k]};
    c[m] = (cand){dist_ij(h, i, j), j};
    qsort(c, m + 1, sizeof *c, by_d);
    ls[0] = select_neighbors(h, c, m + 1, m, ls + 1);
    free(c);
    return LMA_OK;
}

static lma_status reserve(lma_hnsw *h, size_t want) {
    if (want > h->cap) {
        size_t nc = h->cap ? 2 * h->cap : 1024;
        while (nc < want) nc *= 2;
        node *nn = realloc(h->nodes, nc * sizeof *nn);
        if (nn) h->nodes = nn;
        float *nv = nn ? realloc(h->vecs, nc * h->dim * sizeof *nv) : NULL;
        if (nv) h->vecs = nv;
        uint32_t *vis = nv ? realloc(h->visited, nc * sizeof *vis) : NULL;
        if (!vis) return lma_error(LMA_ERR_NOMEM, "hnsw nodes");
        memset(vis + h->cap, 0, (nc - h->cap) * sizeof *vis);
        h->visited = vis;
        h->cap = nc;
    }
    return LMA_OK;
}

static lma_status new_node(lma_hnsw *h, int64_t id, const float *vec, int level, int32_t *out) {
    LMA_TRY(reserve(h, h->n + 1));
    int32_t i = (int32_t)h->n;
    size_t nl = (size_t)(h->M0 + 1) + (size_t)level * (h->M + 1);
    node *nd = &h->nodes[i];
    *nd = (node){id, level, 0, 1, 0, calloc(nl, sizeof(int32_t))};
    if (!nd->links) return lma_error(LMA_ERR_NOMEM, "hnsw links");
    float *v = h->vecs + (size_t)i * h->dim, nrm = 0;
    for (int k = 0; k < h->dim; k++) nrm += vec[k] * vec[k];
    nrm = nrm > 0 ? 1.0f / sqrtf(nrm) : 0;
    for (int k = 0; k < h->dim; k++) v[k] = vec[k] * nrm;
    h->n++;
    LMA_TRY(map_put(h, id, i));
    h->live++;
    *out = i;
    return LMA_OK;
}

static int draw_level(const lma_hnsw *h, int64_t id) {
    double u = ((mix(h->seed ^ (uint64_t)id) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    int l = (int)(-log(u) * h->mL);
    return l > 30 ? 30 : l;
}

static lma_status repair(lma_hnsw *h);

/* links node i (created by new_node, not yet linked) into the graph; vs: the caller's
 * visited set. In lma_hnsw_add_many several run at once: links are read and written under
 * their node's lock, entry and max_level under glock (held through an insertion that
 * raises max_level, as hnswlib does). */
static lma_status insert(lma_hnsw *h, int32_t i, vset *vs) {
    int level = h->nodes[i].level;
    if (h->locks) omp_set_lock(&h->glock);
    int32_t ep = h->entry;
    int maxl = h->max_level, hold = level > maxl;
    if (h->locks && !hold) omp_unset_lock(&h->glock);
    if (ep < 0) { /* the first node */
        h->entry = i, h->max_level = level;
        if (h->locks) omp_unset_lock(&h->glock);
        return LMA_OK;
    }
    const float *q = h->vecs + (size_t)i * h->dim;
    for (int l = maxl; l > level; l--) ep = greedy(h, q, ep, l);
    cand *W = malloc((size_t)(h->efc + 1) * sizeof *W);
    int32_t *sel = malloc((size_t)(h->M0 + 1) * sizeof *sel);
    lma_status r = W && sel ? LMA_OK : lma_error(LMA_ERR_NOMEM, "hnsw add");
    for (int l = level < maxl ? level : maxl; !r && l >= 0; l--) {
        int nw, m = 0;
        r = search_layer_vs(h, vs, q, ep, h->efc, l, W, &nw);
        if (r) break;
        for (int k = 0; k < nw; k++) /* itself: reachable when another insertion linked to it */
            if (W[k].i != i) W[m++] = W[k];
        if (!m) continue;
        int ns = select_neighbors(h, W, m, cap_of(h, l), sel); /* 2M at level 0, as faiss */
        if (h->locks) omp_set_lock(&h->locks[i]);
        int32_t *ls = lvl(h, i, l);
        for (int k = 0; k < ns; k++) ls[1 + k] = sel[k];
        ls[0] = ns;
        if (h->locks) omp_unset_lock(&h->locks[i]);
        for (int k = 0; !r && k < ns; k++) r = link_to(h, sel[k], i, l);
        ep = W[0].i;
    }
    free(W), free(sel);
    if (!r && hold) h->entry = i, h->max_level = level;
    if (h->locks && hold) omp_unset_lock(&h->glock);
    return r;
}

lma_status lma_hnsw_add(lma_hnsw *h, int64_t id, const float *vec) {
    if (map_get(h, id) >= 0) return lma_error(LMA_ERR_ARG, "hnsw: id %lld is already in the graph", (long long)id);
    int32_t i;
    LMA_TRY(new_node(h, id, vec, draw_level(h, id), &i));
    vset vs = {h->visited, h->epoch, h->cap};
    lma_status r = insert(h, i, &vs);
    h->epoch = vs.epoch;
    return r;
}

lma_status lma_hnsw_add_many(lma_hnsw *h, size_t n, const int64_t *ids, const float *vecs, int threads) {
    if (threads < 1) threads = 1;
    if (threads == 1 || n < 2) {
        for (size_t k = 0; k < n; k++) LMA_TRY(lma_hnsw_add(h, ids[k], vecs + k * h->dim));
        return LMA_OK;
    }
    LMA_TRY(repair(h));
    LMA_TRY(reserve(h, h->n + n));
    size_t first = h->n;
    for (size_t k = 0; k < n; k++) {
        if (map_get(h, ids[k]) >= 0) return lma_error(LMA_ERR_ARG, "hnsw: id %lld is already in the graph", (long long)ids[k]);
        int32_t i;
        LMA_TRY(new_node(h, ids[k], vecs + k * h->dim, draw_level(h, ids[k]), &i));
    }
    h->locks = malloc(h->n * sizeof *h->locks);
    if (!h->locks) return lma_error(LMA_ERR_NOMEM, "hnsw locks");
    for (size_t i = 0; i < h->n; i++) omp_init_lock(&h->locks[i]);
    omp_init_lock(&h->glock);
    lma_status r = LMA_OK;
    char msg[512] = "";
    size_t start = first;
    if (h->entry < 0) { /* the entry, alone */
        vset vs = {h->visited, h->epoch, h->cap};
        r = insert(h, (int32_t)start++, &vs);
        h->epoch = vs.epoch;
    }
    size_t nn = h->n;
#pragma omp parallel num_threads(threads)
    {
        vset vs = {calloc(h->cap, sizeof(uint32_t)), 0, h->cap};
        lma_status mine = vs.v ? LMA_OK : lma_error(LMA_ERR_NOMEM, "hnsw visited");
#pragma omp for schedule(dynamic, 64)
        for (size_t i = start; i < nn; i++)
            if (!mine) mine = insert(h, (int32_t)i, &vs);
#pragma omp critical(lma_hnsw_add_many)
        if (mine && !r) r = mine, snprintf(msg, sizeof msg, "%s", lma_last_error()); /* errors are per thread */
        free(vs.v);
    }
    for (size_t i = 0; i < h->n; i++) omp_destroy_lock(&h->locks[i]);
    omp_destroy_lock(&h->glock);
    free(h->locks);
    h->locks = NULL;
    return r && msg[0] ? lma_error(r, "%s", msg) : r;
}

lma_status lma_hnsw_remove(lma_hnsw *h, int64_t id) {
    int32_t i = map_get(h, id);
    if (i < 0) return lma_error(LMA_ERR_ARG, "hnsw: no id %lld", (long long)id);
    h->nodes[i].dead = 1;
    map_del(h, id);
    h->live--;
    h->need_repair = 1;
    if (h->n_removed == h->cap_removed) {
        size_t nc = h->cap_removed ? 2 * h->cap_removed : 64;
        int64_t *p = realloc(h->removed, nc * sizeof *p);
        if (!p) return lma_error(LMA_ERR_NOMEM, "hnsw");
        h->removed = p, h->cap_removed = nc;
    }
    h->removed[h->n_removed++] = id;
    return LMA_OK;
}

/* Node i's links at level l chosen again from a search for its own vector (the
 * insertion's procedure), its current links among the candidates; the new neighbours link
 * back. c: scratch of cmax candidates. */
static lma_status reconnect(lma_hnsw *h, int32_t i, int l, cand *c, int cmax) {
    const float *q = h->vecs + (size_t)i * h->dim;
    int32_t ep = h->entry;
    if (ep < 0 || ep == i) return LMA_OK;
    for (int L = h->max_level; L > l; L--) ep = greedy(h, q, ep, L);
    int ef = h->efc < cmax - h->M0 - 1 ? h->efc : cmax - h->M0 - 1, nw;
    LMA_TRY(search_layer(h, q, ep, ef, l, c, &nw));
    int32_t *ls = lvl(h, i, l);
    int nc = 0;
    visited_ready(h);
    h->visited[i] = h->epoch;
    for (int k = 0; k < nw; k++)
        if (h->visited[c[k].i] != h->epoch && !h->nodes[c[k].i].dead) h->visited[c[k].i] = h->epoch, c[nc++] = c[k];
    for (int k = 0; k < ls[0] && nc < cmax; k++)
        if (h->visited[ls[1 + k]] != h->epoch && !h->nodes[ls[1 + k]].dead)
            h->visited[ls[1 + k]] = h->epoch, c[nc++] = (cand){dist_ij(h, i, ls[1 + k]), ls[1 + k]};
    qsort(c, nc, sizeof *c, by_d);
    ls[0] = select_neighbors(h, c, nc, cap_of(h, l), ls + 1);
    h->nodes[i].dirty = 1;
    for (int k = 0; k < ls[0]; k++) LMA_TRY(link_to(h, ls[1 + k], i, l));
    return LMA_OK;
}

/* Drops links to dead nodes; a node that lost some is reconnected from its live links and
 * the links of the dead ones (two hops), re-selected by the heuristic. A node loaded with
 * links to nodes gone from the store (lost) takes its candidates two hops through its live
 * links instead. */
static lma_status repair(lma_hnsw *h) {
    if (!h->need_repair) return LMA_OK;
    int cmax = (h->M0 + 1) * (h->M0 + 1) + h->efc;
    cand *c = malloc((size_t)cmax * sizeof *c);
    if (!c) return lma_error(LMA_ERR_NOMEM, "hnsw repair");
    for (size_t i = 0; i < h->n; i++) {
        node *nd = &h->nodes[i];
        if (nd->dead) continue;
        for (int l = 0; l <= nd->level; l++) {
            int32_t *ls = lvl(h, (int32_t)i, l);
            if (nd->lost) { /* a search from the entry, as when it was inserted */
                lma_status r = reconnect(h, (int32_t)i, l, c, cmax);
                if (r) { free(c); return r; }
                continue;
            }
            int lost = 0;
            for (int k = 0; k < ls[0]; k++) lost |= h->nodes[ls[1 + k]].dead;
            if (!lost) continue;
            int nc = 0;
            visited_ready(h);
            h->visited[i] = h->epoch;
            for (int k = 0; k < ls[0]; k++) {
                int32_t j = ls[1 + k];
                if (!h->nodes[j].dead && h->visited[j] != h->epoch && nc < cmax)
                    h->visited[j] = h->epoch, c[nc++] = (cand){dist_ij(h, (int32_t)i, j), j};
                if (!h->nodes[j].dead && !nd->lost) continue;
                int32_t *lj = lvl(h, j, l);
                for (int m = 0; m < lj[0] && nc < cmax; m++) {
                    int32_t t = lj[1 + m];
                    if (h->nodes[t].dead || h->visited[t] == h->epoch) continue;
                    h->visited[t] = h->epoch;
                    c[nc++] = (cand){dist_ij(h, (int32_t)i, t), t};
                }
            }
            qsort(c, nc, sizeof *c, by_d);
            ls[0] = select_neighbors(h, c, nc, cap_of(h, l), ls + 1);
            nd->dirty = 1;
        }
        nd->lost = 0;
    }
    free(c);
    if (h->entry >= 0 && h->nodes[h->entry].dead) { /* a new entry: the live node of the highest level */
        h->entry = -1, h->max_level = -1;
        for (size_t i = 0; i < h->n; i++)
            if (!h->nodes[i].dead && h->nodes[i].level > h->max_level) h->entry = (int32_t)i, h->max_level = h->nodes[i].level;
    }
    h->need_repair = 0;
    return LMA_OK;
}

/* one query after repair: vs the caller's visited set (the graph is only read) */
static lma_status search_one(lma_hnsw *h, vset *vs, const float *q, int k, int ef, int64_t *ids, float *scores, int *n) {
    *n = 0;
    if (h->entry < 0 || k <= 0) return LMA_OK;
    if (ef < k) ef = k;
    float *u = malloc(h->dim * sizeof *u), nrm = 0;
    cand *W = malloc((size_t)(ef + 1) * sizeof *W);
    if (!u || !W) { free(u), free(W); return lma_error(LMA_ERR_NOMEM, "hnsw search"); }
    for (int i = 0; i < h->dim; i++) nrm += q[i] * q[i];
    nrm = nrm > 0 ? 1.0f / sqrtf(nrm) : 0;
    for (int i = 0; i < h->dim; i++) u[i] = q[i] * nrm;
    int32_t ep = h->entry;
    for (int l = h->max_level; l > 0; l--) ep = greedy(h, u, ep, l);
    int nw;
    lma_status r = search_layer_vs(h, vs, u, ep, ef, 0, W, &nw);
    for (int i = 0; !r && i < nw && *n < k; i++) {
        if (h->nodes[W[i].i].dead) continue;
        ids[*n] = h->nodes[W[i].i].id, scores[*n] = 1.0f - W[i].d;
        (*n)++;
    }
    free(u), free(W);
    return r;
}

lma_status lma_hnsw_search(lma_hnsw *h, const float *q, int k, int ef, int64_t *ids, float *scores, int *n) {
    *n = 0;
    LMA_TRY(repair(h));
    vset vs = {h->visited, h->epoch, h->cap};
    lma_status r = search_one(h, &vs, q, k, ef, ids, scores, n);
    h->epoch = vs.epoch;
    return r;
}

lma_status lma_hnsw_search_many(lma_hnsw *h, size_t nq, const float *q, int k, int ef, int64_t *ids, float *scores,
                                int *n, int threads) {
    LMA_TRY(repair(h));
    lma_status r = LMA_OK;
    char msg[512] = "";
#pragma omp parallel num_threads(threads < 1 ? 1 : threads)
    {
        vset vs = {calloc(h->cap ? h->cap : 1, sizeof(uint32_t)), 0, h->cap};
        lma_status mine = vs.v ? LMA_OK : lma_error(LMA_ERR_NOMEM, "hnsw visited");
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < nq; i++) {
            n[i] = 0;
            if (!mine) mine = search_one(h, &vs, q + i * h->dim, k, ef, ids + i * k, scores + i * k, &n[i]);
        }
#pragma omp critical(lma_hnsw_search_many)
        if (mine && !r) r = mine, snprintf(msg, sizeof msg, "%s", lma_last_error()); /* errors are per thread */
        free(vs.v);
    }
    return r && msg[0] ? lma_error(r, "%s", msg) : r;
}

/* the store ---------------------------------------------------------------- */
static lma_status meta_int(lma_rag_store *s, const char *key, long long *v, int *found) {
    char *t = NULL;
    LMA_TRY(s->ops->meta_get(s, key, &t));
    *found = t != NULL;
    if (t) *v = atoll(t);
    free(t);
    return LMA_OK;
}

lma_status lma_hnsw_load(lma_rag_store *s, int dim, lma_hnsw **out) {
    *out = NULL;
    lma_hnsw_params p = lma_hnsw_defaults();
    long long v;
    int f;
    LMA_TRY(meta_int(s, "hnsw_M", &v, &f));
    if (f) p.M = (int)v;
    LMA_TRY(meta_int(s, "hnsw_ef_construction", &v, &f));
    if (f) p.ef_construction = (int)v;
    LMA_TRY(meta_int(s, "hnsw_seed", &v, &f));
    if (f) p.seed = (uint64_t)v;
    lma_hnsw *h;
    LMA_TRY(lma_hnsw_new(dim, p, &h));
    int64_t *gids = NULL, *vids = NULL;
    float *vecs = NULL;
    size_t ng = 0, nv = 0;
    void **blobs = NULL;
    size_t *lens = NULL;
    lma_status r = s->ops->graph_ids(s, &gids, &ng);
    if (!r && ng) r = s->ops->vectors(s, NULL, &vids, &vecs, &nv);
    if (!r && ng) {
        blobs = calloc(ng, sizeof *blobs), lens = calloc(ng, sizeof *lens);
        if (!blobs || !lens) r = lma_error(LMA_ERR_NOMEM, "hnsw load");
    }
    /* nodes first (those whose chunk still has a vector), links second */
    size_t vi = 0;
    for (size_t g = 0; !r && g < ng; g++) {
        int level, found;
        r = s->ops->graph_get(s, gids[g], &level, &blobs[g], &lens[g], &found);
        while (!r && vi < nv && vids[vi] < gids[g]) vi++;
        if (r || !found || vi == nv || vids[vi] != gids[g]) continue;
        int32_t i;
        /* new_node draws nothing: the stored level wins */
        r = new_node(h, gids[g], vecs + vi * dim, level, &i);
        if (!r && level > h->max_level) h->entry = i, h->max_level = level;
    }
    for (size_t g = 0; !r && g < ng; g++) {
        int32_t i = map_get(h, gids[g]);
        if (i < 0) continue;
        const unsigned char *b = blobs[g], *e = b + lens[g];
        for (int l = 0; l <= h->nodes[i].level && b + 4 <= e; l++) {
            uint32_t cnt;
            memcpy(&cnt, b, 4);
            b += 4;
            int32_t *ls = lvl(h, i, l);
            for (uint32_t k = 0; k < cnt && b + 8 <= e; k++, b += 8) {
                int64_t id;
                memcpy(&id, b, 8);
                int32_t j = map_get(h, id);
                if (j >= 0 && ls[0] < cap_of(h, l)) ls[1 + ls[0]++] = j;
                else if (j < 0) h->need_repair = 1, h->nodes[i].lost = 1;
            }
        }
        h->nodes[i].dirty = 0;
    }
    LMA_TRY(meta_int(s, "hnsw_entry", &v, &f));
    if (!r && f && map_get(h, v) >= 0) {
        h->entry = map_get(h, v);
        h->max_level = h->nodes[h->entry].level;
    }
    for (size_t g = 0; g < ng && blobs; g++) free(blobs[g]);
    free(blobs), free(lens), free(gids), free(vids), free(vecs);
    if (r) { lma_hnsw_free(h); return r; }
    *out = h;
    return LMA_OK;
}

static lma_status save(lma_hnsw *h, lma_rag_store *s) {
    for (size_t k = 0; k < h->n_removed; k++) LMA_TRY(s->ops->graph_delete(s, h->removed[k]));
    h->n_removed = 0;
    size_t cap = (size_t)(h->M0 + 1) * 8 + 64;
    unsigned char *buf = malloc(cap + 31 * (size_t)(h->M + 1) * 8);
    if (!buf) return lma_error(LMA_ERR_NOMEM, "hnsw save");
    lma_status r = LMA_OK;
    for (size_t i = 0; !r && i < h->n; i++) {
        node *nd = &h->nodes[i];
        if (nd->dead || !nd->dirty) continue;
        unsigned char *b = buf;
        for (int l = 0; l <= nd->level; l++) {
            int32_t *ls = lvl(h, (int32_t)i, l);
            uint32_t cnt = (uint32_t)ls[0];
            memcpy(b, &cnt, 4), b += 4;
            for (int k = 0; k < ls[0]; k++, b += 8) memcpy(b, &h->nodes[ls[1 + k]].id, 8);
        }
        r = s->ops->graph_put(s, nd->id, nd->level, buf, (size_t)(b - buf));
        nd->dirty = 0;
    }
    free(buf);
    char v[32];
    if (!r && h->entry >= 0) {
        snprintf(v, sizeof v, "%lld", (long long)h->nodes[h->entry].id);
        r = s->ops->meta_set(s, "hnsw_entry", v);
    }
    if (!r) snprintf(v, sizeof v, "%d", h->M), r = s->ops->meta_set(s, "hnsw_M", v);
    if (!r) snprintf(v, sizeof v, "%d", h->efc), r = s->ops->meta_set(s, "hnsw_ef_construction", v);
    if (!r) snprintf(v, sizeof v, "%lld", (long long)h->seed), r = s->ops->meta_set(s, "hnsw_seed", v);
    return r;
}

lma_status lma_hnsw_update(lma_rag_store *s, int dim, lma_hnsw_params p, size_t *added, size_t *removed) {
    *added = *removed = 0;
    char *t = NULL;
    LMA_TRY(s->ops->meta_get(s, "hnsw_M", &t));
    int fresh = t == NULL;
    free(t);
    lma_hnsw *h = NULL;
    lma_status r = fresh ? lma_hnsw_new(dim, p, &h) : lma_hnsw_load(s, dim, &h);
    if (r) return r;
    int64_t *gids = NULL, *vids = NULL;
    float *vecs = NULL;
    size_t ng = 0, nv = 0;
    r = s->ops->graph_ids(s, &gids, &ng);
    if (!r) r = s->ops->vectors(s, NULL, &vids, &vecs, &nv);
    if (!r) r = s->ops->begin(s);
    /* graph rows without a vector: gone (load skipped them; delete the rows) */
    size_t vi = 0;
    for (size_t g = 0; !r && g < ng; g++) {
        while (vi < nv && vids[vi] < gids[g]) vi++;
        if (vi < nv && vids[vi] == gids[g]) continue;
        if (lma_hnsw_contains(h, gids[g])) r = lma_hnsw_remove(h, gids[g]);
        else r = s->ops->graph_delete(s, gids[g]);
        (*removed)++;
    }
    if (!r && *removed) h->need_repair = 1;
    if (!r) r = repair(h);
    for (size_t i = 0; !r && i < nv; i++) /* the chunks without a node, packed to the front */
        if (!lma_hnsw_contains(h, vids[i])) {
            vids[*added] = vids[i];
            memmove(vecs + *added * dim, vecs + i * dim, (size_t)dim * sizeof *vecs);
            (*added)++;
        }
    if (!r) r = lma_hnsw_add_many(h, *added, vids, vecs, lma_threads_get());
    if (!r) r = save(h, s);
    if (!r) r = s->ops->commit(s);
    else s->ops->rollback(s);
    free(gids), free(vids), free(vecs);
    lma_hnsw_free(h);
    return r;
}
