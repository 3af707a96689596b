/* LoRA adapters: parameter table, PEFT init, dropout masks, merge (see lora.h). */
#include "model/lora.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/rng.h"
#include "model/model_internal.h"

static const char *proj_names[LMA_PROJ_COUNT] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};

lma_lora_params lma_lora_default_params(void) {
    lma_lora_params p = {.r = 8, .alpha = 8.0f, .dropout = 0.0f, .rslora = 0, .targets = LMA_LORA_ALL};
    return p;
}

const char *lma_proj_name(lma_proj p) { return p < LMA_PROJ_COUNT ? proj_names[p] : "?"; }
const char *lma_proj_module(lma_proj p) { return p <= LMA_PROJ_O ? "self_attn" : "mlp"; }

void lma_proj_dims(const lma_config *c, lma_proj p, int *in, int *out) {
    int C = c->hidden_size, I = c->intermediate_size, QD = c->n_heads * c->head_dim, KVD = c->n_kv_heads * c->head_dim;
    switch (p) {
    case LMA_PROJ_Q: *in = C; *out = QD; break;
    case LMA_PROJ_K: case LMA_PROJ_V: *in = C; *out = KVD; break;
    case LMA_PROJ_O: *in = QD; *out = C; break;
    case LMA_PROJ_GATE: case LMA_PROJ_UP: *in = C; *out = I; break;
    default: *in = I; *out = C; break;
    }
}

lma_status lma_lora_parse_targets(const char *spec, unsigned *mask) {
    *mask = 0;
    if (!spec || !*spec) return lma_error(LMA_ERR_ARG, "LoRA targets: empty list (use all, attn, mlp or q,k,v,...)");
    if (!strcmp(spec, "all")) { *mask = LMA_LORA_ALL; return LMA_OK; }
    if (!strcmp(spec, "attn")) { *mask = LMA_LORA_ATTN; return LMA_OK; }
    if (!strcmp(spec, "mlp")) { *mask = LMA_LORA_MLP; return LMA_OK; }
    const char *s = spec;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        int found = -1;
        for (int p = 0; p < LMA_PROJ_COUNT; p++) {
            size_t short_len = strlen(proj_names[p]) - 5; /* without "_proj" */
            if ((n == strlen(proj_names[p]) && !strncmp(s, proj_names[p], n)) ||
                (n == short_len && !strncmp(s, proj_names[p], n)))
                found = p;
        }
        if (found < 0)
            return lma_error(LMA_ERR_ARG, "LoRA targets: unknown projection '%.*s' in '%s' (use q,k,v,o,gate,up,down)",
                             (int)n, s, spec);
        *mask |= 1u << found;
        s += n;
        if (*s == ',') s++;
    }
    if (!*mask) return lma_error(LMA_ERR_ARG, "LoRA targets: empty list in '%s'", spec);
    return LMA_OK;
}

static void lora_free(lma_lora *lo, const lma_backend *be) {
    if (!lo) return;
    if (lo->pact && lo->pact != lo->params) be->free(lo->pact);
    void *bufs[] = {lo->params, lo->grads, lo->adam_m, lo->adam_v, lo->xa, lo->xd, lo->tmp, lo->dxa};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) be->free(bufs[i]);
    free(lo->A);
    free(lo->dA);
    lma_params_free(&lo->table);
    free(lo);
}

lma_status lma_lora_table(const lma_config *c, const lma_lora_params *lp, lma_param_table *t, int *maxdim) {
    int L = c->n_layers, n = 0, r = lp->r;
    memset(t, 0, sizeof *t);
    for (int p = 0; p < LMA_PROJ_COUNT; p++) n += (lp->targets >> p & 1u) ? 2 * L : 0;
    t->info = lma_calloc((size_t)(n ? n : 1), sizeof *t->info, "LoRA table");
    if (!t->info) return LMA_ERR_NOMEM;
    *maxdim = 1;
    /* a layer's A matrices first, one after another (q, k, v's and gate, up's read one input:
     * lora_fwd multiplies by them as one), then its B matrices */
    for (int l = 0; l < L; l++)
        for (int ab = 0; ab < 2; ab++)
            for (int p = 0; p < LMA_PROJ_COUNT; p++) {
                if (!(lp->targets >> p & 1u)) continue;
                int in, out;
                lma_proj_dims(c, (lma_proj)p, &in, &out);
                if (in > *maxdim) *maxdim = in;
                if (out > *maxdim) *maxdim = out;
                lma_param_info *pi = &t->info[t->count++];
                snprintf(pi->name, sizeof pi->name, "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", l,
                         lma_proj_module((lma_proj)p), proj_names[p], ab ? 'B' : 'A');
                pi->kind = (lma_param_kind)p; /* the projection (lma_proj), not a model kind */
                pi->layer = l;
                pi->ndim = 2;
                pi->shape[0] = ab ? out : r;
                pi->shape[1] = ab ? r : in;
                pi->numel = (size_t)pi->shape[0] * (size_t)pi->shape[1];
                pi->offset = t->total;
                t->total += (pi->numel + 15) & ~(size_t)15;
            }
    return LMA_OK;
}

static int is_lora_a(const lma_param_info *pi) {
    size_t n = strlen(pi->name);
    return n > 14 && !strcmp(pi->name + n - 14, ".lora_A.weight");
}

/* table + pointers for the adapted projections of config c */
static lma_status build(lma_lora *lo, const lma_config *c, const lma_backend *be) {
    int L = c->n_layers;
    LMA_TRY(lma_lora_table(c, &lo->p, &lo->table, &lo->maxdim));
    lo->A = lma_calloc((size_t)L * LMA_PROJ_COUNT * 2, sizeof(void *), "LoRA pointers");
    lo->dA = lma_calloc((size_t)L * LMA_PROJ_COUNT * 2, sizeof(float *), "LoRA pointers");
    if (!lo->A || !lo->dA) return LMA_ERR_NOMEM;
    lo->B = lo->A + (size_t)L * LMA_PROJ_COUNT;
    lo->dB = lo->dA + (size_t)L * LMA_PROJ_COUNT;
    size_t bytes, abytes, es = (size_t)be->act_bytes; /* fp32 masters, compute copy */
    if (!lma_mul_ok(lo->table.total ? lo->table.total : 1, sizeof(float), &bytes) ||
        !lma_mul_ok(lo->table.total ? lo->table.total : 1, es, &abytes))
        return lma_error(LMA_ERR_NOMEM, "LoRA parameter count overflows");
    int alias = es == sizeof(float);
    lo->params = be->alloc(bytes);
    lo->pact = alias ? lo->params : be->alloc(abytes);
    if (!lo->params || !lo->pact)
        return lma_error(LMA_ERR_NOMEM, "out of memory for LoRA parameters (%.1f MB)",
                         (bytes + (alias ? 0 : abytes)) / 1e6);
    be->zero(lo->params, bytes);
    if (!alias) be->zero(lo->pact, abytes);
    for (int i = 0; i < lo->table.count; i++) {
        const lma_param_info *pi = &lo->table.info[i];
        size_t k = (size_t)pi->layer * LMA_PROJ_COUNT + (size_t)pi->kind;
        if (is_lora_a(pi)) lo->A[k] = lma_at(lo->pact, pi->offset, es);
        else lo->B[k] = lma_at(lo->pact, pi->offset, es);
    }
    return LMA_OK;
}

static lma_status lora_enable_training(lma_lora *lo, const lma_backend *be) {
    if (lo->grads) return LMA_OK;
    size_t bytes = (lo->table.total ? lo->table.total : 1) * sizeof(float);
    lo->grads = be->alloc(bytes);
    lo->adam_m = be->alloc(bytes);
    lo->adam_v = be->alloc(bytes);
    if (!lo->grads || !lo->adam_m || !lo->adam_v)
        return lma_error(LMA_ERR_NOMEM, "out of memory for LoRA gradients and optimizer state (3 x %.1f MB)", bytes / 1e6);
    be->zero(lo->grads, bytes);
    be->zero(lo->adam_m, bytes);
    be->zero(lo->adam_v, bytes);
    for (int i = 0; i < lo->table.count; i++) {
        const lma_param_info *pi = &lo->table.info[i];
        size_t k = (size_t)pi->layer * LMA_PROJ_COUNT + (size_t)pi->kind;
        if (is_lora_a(pi)) lo->dA[k] = lo->grads + pi->offset;
        else lo->dB[k] = lo->grads + pi->offset;
    }
    return LMA_OK;
}

/* The scratch of N rows (bytes of each buffer; 0 = not allocated): xa, xd, tmp, dxa on the
 * backend. One function for lora_ensure and the planner. */
enum { S_XA, S_XD, S_TMP, S_DXA, S_COUNT };
enum { GROUP_MAX = 3 }; /* projections of one input: q, k, v */
static void scratch_sizes(const lma_lora_params *lp, int n_layers, int maxdim, int N, int act_bytes, int fwd_add,
                          size_t sz[S_COUNT]) {
    size_t n = (size_t)N, r = (size_t)lp->r, md = (size_t)maxdim, es = (size_t)act_bytes;
    size_t slots = (size_t)n_layers * LMA_PROJ_COUNT;
    /* xd: the dropped-out input; tmp: the up projection's product where the backend cannot
     * add it in its GEMM, and the dropout path's input gradient */
    int drop = lp->dropout > 0, need_tmp = drop || !fwd_add;
    sz[S_XA] = slots * n * r * es;
    sz[S_XD] = drop ? n * md * es : 0;
    sz[S_TMP] = need_tmp ? n * md * es : 0;
    sz[S_DXA] = (GROUP_MAX + 1) * n * r * es; /* a group's (N, n r), then one (N, r) */
}

size_t lma_lora_scratch_bytes(const lma_config *c, const lma_lora_params *lp, int maxdim, int N, int act_bytes,
                              int fwd_add) {
    size_t sz[S_COUNT], dev = 0;
    scratch_sizes(lp, c->n_layers, maxdim, N, act_bytes, fwd_add, sz);
    for (int i = 0; i < S_COUNT; i++) dev += sz[i];
    return dev;
}

static lma_status lora_ensure(lma_lora *lo, const lma_backend *be, int N) {
    if (N <= lo->cap_N) return LMA_OK;
    void **bufs[] = {&lo->xa, &lo->xd, &lo->tmp, &lo->dxa};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (*bufs[i]) { be->free(*bufs[i]); *bufs[i] = NULL; }
    lo->cap_N = 0;
    size_t sz[S_COUNT];
    scratch_sizes(&lo->p, lo->n_layers, lo->maxdim, N, be->act_bytes, be->matmul_fwd_add != NULL, sz);
    lo->xa = be->alloc(sz[S_XA]);
    lo->xd = sz[S_XD] ? be->alloc(sz[S_XD]) : NULL;
    lo->tmp = sz[S_TMP] ? be->alloc(sz[S_TMP]) : NULL;
    lo->dxa = be->alloc(sz[S_DXA]);
    if (!lo->xa || !lo->dxa || (sz[S_TMP] && !lo->tmp) || (sz[S_XD] && !lo->xd))
        return lma_error(LMA_ERR_NOMEM, "out of memory for LoRA activations of %d tokens", N);
    lo->cap_N = N;
    return LMA_OK;
}

/* The dropout stream of (forward count, layer, projection): the backward replays it. */
static uint64_t mask_seed(const lma_lora *lo, int l, int p) {
    lma_rng root, r;
    lma_rng_seed(&root, lo->seed ^ (lo->calls * 0x9e3779b97f4a7c15ULL));
    r = lma_rng_split(&root, (uint64_t)l * LMA_PROJ_COUNT + (uint64_t)p);
    return lma_rng_u64(&r);
}

/* ---- the hooks the model calls (adapter_hooks.h) ---- */

/* 1 when the n projections p0.. of layer l (one input) run as one: all adapted, their A
 * matrices one after another (a (n r, C) matrix), no dropout (each has its own mask) */
static int grouped(const lma_lora *lo, const lma_backend *be, size_t k, int n, int C, int train) {
    if (n < 2 || n > GROUP_MAX || !be->copy2d || (train && lo->p.dropout > 0)) return 0;
    size_t rc = (size_t)lo->p.r * C;
    for (int j = 0; j < n; j++)
        if (!lo->A[k + j] || lo->A[k + j] != lma_at(lo->A[k], j * rc, (size_t)be->act_bytes)) return 0;
    return 1;
}

/* out[j] = res[j] + s * (dropout(inp) A^T) B^T for each adapted (l, p0 + j) (res[j] NULL: the
 * term alone); the xa slot of each keeps s * dropout(inp) A^T for the backward. Grouped: inp
 * A^T for all n in one product (inp read once), its columns then copied to the slots. */
static void lora_fwd(lma_lora *lo, const lma_backend *be, int l, int p0, int n, int train, void *const *out,
                     const void *const *res, const void *inp, int N, int C, const int *oc) {
    size_t k0 = (size_t)l * LMA_PROJ_COUNT + p0, es = (size_t)be->act_bytes;
    int r = lo->p.r, group = grouped(lo, be, k0, n, C, train);
    if (group) {
        be->matmul_fwd(lo->dxa, inp, lo->A[k0], NULL, N, C, n * r); /* (N, n r) */
        be->scale(lo->dxa, lo->scale, (size_t)N * n * r);
    }
    for (int j = 0; j < n; j++) {
        size_t k = k0 + j;
        if (!lo->A[k]) continue;
        void *xa = lma_at(lo->xa, k * (size_t)lo->cap_N * r, es);
        if (group) {
            be->copy2d(xa, r * es, lma_at(lo->dxa, (size_t)j * r, es), (size_t)n * r * es, r * es, (size_t)N);
        } else {
            const void *x = inp;
            if (train && lo->p.dropout > 0) {
                be->dropout(lo->xd, inp, lo->p.dropout, mask_seed(lo, l, p0 + j), (size_t)N * C);
                x = lo->xd;
            }
            be->matmul_fwd(xa, x, lo->A[k], NULL, N, C, r);
            be->scale(xa, lo->scale, (size_t)N * r);
        }
        if (!res[j]) {
            be->matmul_fwd(out[j], xa, lo->B[k], NULL, N, r, oc[j]);
        } else if (be->matmul_fwd_add) {
            be->matmul_fwd_add(out[j], xa, lo->B[k], res[j], N, r, oc[j]);
        } else {
            be->matmul_fwd(lo->tmp, xa, lo->B[k], NULL, N, r, oc[j]);
            be->add(out[j], res[j], lo->tmp, (size_t)N * oc[j]);
        }
    }
}

/* dinp of a fresh backward (adapter_hooks.h bwd) zeroed just before its first writer, so that
 * the backend's deferred zero lets that writer write instead of add */
static void clear_once(const lma_backend *be, void *dinp, size_t bytes, int *fresh) {
    if (*fresh) be->zero(dinp, bytes);
    *fresh = 0;
}

/* For each adapted (l, p0 + j): dB += dout^T xa, dA += s (dout B)^T dropout(inp), dinp += the
 * path's input gradient (fresh: dinp written). Grouped: the n (dout B) side by side, then dA
 * and dinp of all n in one product each (inp read once, dinp written once). */
static void lora_bwd(lma_lora *lo, const lma_backend *be, int l, int p0, int n, void *dinp, int fresh,
                     const void *const *dout, const void *inp, int N, int C, const int *oc) {
    size_t k0 = (size_t)l * LMA_PROJ_COUNT + p0, es = (size_t)be->act_bytes, bytes = (size_t)N * C * es;
    int r = lo->p.r, group = grouped(lo, be, k0, n, C, 1);
    void *dxa = group ? lma_at(lo->dxa, (size_t)GROUP_MAX * N * r, es) : lo->dxa; /* (N, r) */
    for (int j = 0; j < n; j++) {
        size_t k = k0 + j;
        if (!lo->A[k]) continue;
        void *xa = lma_at(lo->xa, k * (size_t)lo->cap_N * r, es);
        be->zero(dxa, (size_t)N * r * es);
        be->matmul_bwd(dxa, lo->dB[k], NULL, dout[j], xa, lo->B[k], N, r, oc[j]);
        if (group) {
            be->copy2d(lma_at(lo->dxa, (size_t)j * r, es), (size_t)n * r * es, dxa, r * es, r * es, (size_t)N);
            continue;
        }
        be->scale(dxa, lo->scale, (size_t)N * r);
        if (lo->p.dropout > 0) {
            uint64_t seed = mask_seed(lo, l, p0 + j);
            be->dropout(lo->xd, inp, lo->p.dropout, seed, (size_t)N * C);
            be->zero(lo->tmp, (size_t)N * C * es);
            be->matmul_bwd(lo->tmp, lo->dA[k], NULL, dxa, lo->xd, lo->A[k], N, C, r);
            be->dropout(lo->tmp, lo->tmp, lo->p.dropout, seed, (size_t)N * C); /* the same mask */
            if (fresh) be->copy(dinp, lo->tmp, bytes);
            else be->add(dinp, dinp, lo->tmp, (size_t)N * C);
            fresh = 0;
        } else {
            clear_once(be, dinp, bytes, &fresh);
            be->matmul_bwd(dinp, lo->dA[k], NULL, dxa, inp, lo->A[k], N, C, r);
        }
    }
    if (group) { /* dA (n r, C): the n A gradients lie one after another as the A matrices do */
        be->scale(lo->dxa, lo->scale, (size_t)N * n * r);
        clear_once(be, dinp, bytes, &fresh);
        be->matmul_bwd(dinp, lo->dA[k0], NULL, lo->dxa, inp, lo->A[k0], N, C, n * r);
    }
    clear_once(be, dinp, bytes, &fresh); /* no path wrote it */
}

/* LMA_LORA_FIRST=0 (A/B runs) answers 0: the model then runs the base product first and the
 * term is added into it, as before the term-first order */
static int lora_term_first(const lma_lora *lo, int l, int p) {
    static int first = -1;
    if (first < 0) {
        const char *e = getenv("LMA_LORA_FIRST");
        first = !(e && !strcmp(e, "0"));
    }
    return first && lo->A[(size_t)l * LMA_PROJ_COUNT + p] != NULL;
}

static lma_status lora_begin(lma_lora *lo, const lma_backend *be, int N, int train) {
    LMA_TRY(lora_ensure(lo, be, N));
    if (train) lo->calls++; /* the dropout stream of this forward */
    return LMA_OK;
}

static lma_trainable lora_trainable(const lma_lora *lo) {
    lma_trainable t = {.table = &lo->table, .params = lo->params, .grads = lo->grads, .m = lo->adam_m,
                       .v = lo->adam_v, .pact = lo->pact};
    return t;
}

static void lora_sync(lma_lora *lo, const lma_backend *be) {
    if (lo->pact && lo->pact != lo->params) be->cast_to_act(lo->pact, lo->params, lo->table.total);
}

static const lma_adapter_hooks lora_hooks = {
    .begin = lora_begin, .fwd = lora_fwd, .term_first = lora_term_first, .bwd = lora_bwd, .enable_training = lora_enable_training,
    .trainable = lora_trainable, .sync = lora_sync, .free = lora_free,
};

lma_status lma_lora_attach(lma_model *m, const lma_lora_params *p, uint64_t seed) {
    if (m->lora) return lma_error(LMA_ERR_ARG, "the model already has a LoRA adapter");
    if (p->r < 1 || p->r > 65536) return lma_error(LMA_ERR_ARG, "LoRA rank %d must be in [1, 65536]", p->r);
    if (!(p->dropout >= 0 && p->dropout < 1)) return lma_error(LMA_ERR_ARG, "LoRA dropout %g must be in [0, 1)", p->dropout);
    if (!isfinite(p->alpha)) return lma_error(LMA_ERR_ARG, "LoRA alpha is not finite");
    if (!(p->targets & LMA_LORA_ALL)) return lma_error(LMA_ERR_ARG, "LoRA targets no projection");
    const lma_backend *be = m->be;
    if (!be->scale || !be->dropout)
        return lma_error(LMA_ERR_UNSUPPORTED, "backend '%s' has no LoRA ops (scale, dropout)", be->name);
    lma_lora *lo = lma_calloc(1, sizeof *lo, "LoRA adapter");
    if (!lo) return LMA_ERR_NOMEM;
    lo->p = *p;
    lo->p.targets &= LMA_LORA_ALL;
    lo->scale = p->rslora ? p->alpha / sqrtf((float)p->r) : p->alpha / (float)p->r;
    lo->n_layers = m->cfg.n_layers;
    lo->seed = seed;
    lma_status s = build(lo, &m->cfg, be);
    if (s != LMA_OK) { lora_free(lo, be); return s; }
    /* PEFT init: A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0; one stream per tensor */
    float *h = lma_malloc(lo->table.total * sizeof(float) + 1, "LoRA init");
    if (!h) { lora_free(lo, be); return LMA_ERR_NOMEM; }
    memset(h, 0, lo->table.total * sizeof(float));
    lma_rng root;
    lma_rng_seed(&root, seed);
    /* stream 2 x (the adapted pair's index in (layer, projection) order): PEFT's order of the A matrices */
    uint64_t pair = 0;
    size_t es = (size_t)be->act_bytes;
    for (size_t k = 0; k < (size_t)lo->n_layers * LMA_PROJ_COUNT; k++) {
        if (!lo->A[k]) continue;
        int in, out;
        lma_proj_dims(&m->cfg, (lma_proj)(k % LMA_PROJ_COUNT), &in, &out);
        float *a = h + (size_t)((const char *)lo->A[k] - (const char *)lo->pact) / es;
        lma_rng r = lma_rng_split(&root, 2 * pair++);
        double bound = 1.0 / sqrt((double)in);
        for (size_t j = 0; j < (size_t)p->r * in; j++) a[j] = (float)((2.0 * lma_rng_uniform(&r) - 1.0) * bound);
    }
    be->upload(lo->params, h, lo->table.total * sizeof(float));
    free(h);
    lma_model_set_adapter(m, lo, &lora_hooks);
    lma_model_sync_weights(m);
    return LMA_OK;
}

void lma_lora_detach(lma_model *m) {
    if (m->lora) lma_model_set_adapter(m, NULL, NULL); /* frees it */
}

void lma_lora_counts(const lma_model *m, size_t *trainable, size_t *all) {
    size_t t = 0;
    if (m->lora)
        for (int i = 0; i < m->lora->table.count; i++) t += m->lora->table.info[i].numel;
    *trainable = m->lora ? t : lma_model_num_params(m);
    *all = lma_model_num_params(m) + (m->lora ? t : 0);
}

lma_status lma_lora_merge(lma_model *m) {
    lma_lora *lo = m->lora;
    if (!lo) return lma_error(LMA_ERR_ARG, "no LoRA adapter to merge");
    if (m->nf4) return lma_error(LMA_ERR_UNSUPPORTED, "merging into an NF4 base: load the base in fp32 to merge");
    LMA_TRY(lma_model_no_qm(m, "merging an adapter"));
    if (!m->params)
        return lma_error(LMA_ERR_UNSUPPORTED,
                         "merging: the base was loaded frozen (no fp32 copy); load it without LMA_MODEL_FROZEN");
    const lma_backend *be = m->be;
    int L = lo->n_layers, r = lo->p.r;
    float *hA = NULL, *hB = NULL, *hW = NULL;
    size_t md = (size_t)lo->maxdim, es = (size_t)be->act_bytes;
    lma_tensors mw; /* views of the fp32 masters (m->w views the compute copy) */
    LMA_TRY(lma_tensors_carve(&m->cfg, &m->table, m->params, sizeof(float), &mw));
    hA = malloc((size_t)r * md * sizeof(float));
    hB = malloc(md * (size_t)r * sizeof(float));
    hW = malloc(md * md * sizeof(float));
    if (!hA || !hB || !hW) {
        free(hA); free(hB); free(hW);
        lma_tensors_free(&mw);
        return lma_error(LMA_ERR_NOMEM, "out of memory merging LoRA");
    }
    for (int l = 0; l < L; l++) {
        lma_layer_tensors *w = &mw.layers[l];
        void *ws[LMA_PROJ_COUNT] = {w->wq, w->wk, w->wv, w->wo, w->wgate, w->wup, w->wdown};
        for (int p = 0; p < LMA_PROJ_COUNT; p++) {
            size_t k = (size_t)l * LMA_PROJ_COUNT + p;
            if (!lo->A[k]) continue;
            int in, out;
            lma_proj_dims(&m->cfg, (lma_proj)p, &in, &out);
            /* the adapter's masters at the offsets of its views */
            const float *A = lo->params + (size_t)((const char *)lo->A[k] - (const char *)lo->pact) / es;
            const float *B = lo->params + (size_t)((const char *)lo->B[k] - (const char *)lo->pact) / es;
            be->download(hA, A, (size_t)r * in * sizeof(float));
            be->download(hB, B, (size_t)out * r * sizeof(float));
            be->download(hW, ws[p], (size_t)out * in * sizeof(float));
            for (int o = 0; o < out; o++)
                for (int i = 0; i < in; i++) {
                    double acc = 0;
                    for (int j = 0; j < r; j++) acc += (double)hB[(size_t)o * r + j] * hA[(size_t)j * in + i];
                    hW[(size_t)o * in + i] = (float)(hW[(size_t)o * in + i] + lo->scale * acc);
                }
            be->upload(ws[p], hW, (size_t)out * in * sizeof(float));
        }
    }
    free(hA); free(hB); free(hW);
    lma_tensors_free(&mw);
    lma_lora_detach(m);
    lma_model_sync_weights(m);
    return LMA_OK;
}
