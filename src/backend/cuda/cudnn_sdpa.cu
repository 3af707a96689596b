/* cuDNN's fused flash attention (SDPA), forward and backward, through the backend (C) graph
 * API: the same causal attention with GQA as the flash kernels (flash_fwd.cu, flash_bwd.cu), for
 * bf16 storage without segment ids, head dims a multiple of 8 up to 128. The flash kernels stay
 * the fallback (segment ids, fp32, other head dims, no cuDNN, no engine for a shape) and the
 * oracle: both keep the same lse, the log-sum-exp of each query row's scaled scores, so either
 * backward reads either forward's.
 *
 * The graphs are the operation patterns of cuDNN's flash-attention engines (as the cuDNN
 * frontend's SDPA nodes spell them; causal mask, no dropout):
 *   forward   S = Q K^T * scale; causal select; softmax (max, exp, sum) -> P (bf16), the stats
 *             (max + log sum) out; O = P V
 *   backward  D = rowsum(dO * O); S, P = exp(S - stats) recomputed; dV = P^T dO;
 *             dS = P * (dO V^T - D) * scale; dK = dS^T Q; dQ = dS K (fp32 accumulator, then bf16)
 * with GQA's per-group sums of dK and dV as reductions over the query heads of a group.
 * Layouts are strided views of the backend's (B, T, heads, HD) tensors: no copies. A plan is
 * built once per shape (the first call may compile kernels at run time) and kept.
 *
 * cuDNN writes dq, dk, dv; the op table's backward accumulates, so the backward writes into a
 * scratch copy and one kernel adds it (tens of microseconds a layer).
 *
 * Built only where CMake finds cuDNN (LMA_HAVE_CUDNN); elsewhere every entry reports "not
 * available" and the flash kernels run. LMA_CUDA_CUDNN=0 turns it off at run time;
 * LMA_CUDA_CUDNN_VERBOSE=1 says why a shape falls back; LMA_CUDA_CUDNN_MIN_CALLS (default 2):
 * the call of a shape from which it gets a plan (see seen_enough). */
#include <cuda_bf16.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cuda/cuda_internal.h"

#ifndef LMA_HAVE_CUDNN
int lma_cuda_sdpa_usable(int HD) { return 0; }
long lma_cuda_sdpa_runs(void) { return 0; }
int lma_cuda_sdpa_fwd(void *, float *, const void *, const void *, const void *, int, int, int, int, int, float) { return -1; }
int lma_cuda_sdpa_bwd(void *, void *, void *, const void *, const void *, const float *, const void *, const void *,
                      const void *, int, int, int, int, int, float) {
    return -1;
}
const char *lma_cuda_sdpa_note(void) { return "built without cuDNN"; }
#else
#include <cudnn.h>
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* the plan's and graph's HANDLE */

typedef cudnnBackendDescriptor_t desc_t;
typedef __nv_bfloat16 bf16;

static cudnnHandle_t g_h;
static int g_state; /* 0 untried, 1 ready, -1 unavailable */
static char g_note[256] = "not tried";
static long g_runs; /* executions of either plan */

/* ---- graph building: every descriptor of one plan is kept with it -------------------------- */
enum { MAX_DESC = 160, MAX_OPS = 64 };
typedef struct {
    desc_t d[MAX_DESC];
    int n, failed;
    int64_t next_uid; /* of the virtual tensors */
    desc_t ops[MAX_OPS];
    int nops;
} graph;

static void note_status(const char *what, cudnnStatus_t s) {
    char msg[160] = "";
    cudnnGetLastErrorString(msg, sizeof msg);
    snprintf(g_note, sizeof g_note, "%s: %s %s", what, cudnnGetErrorString(s), msg);
}
static desc_t g_new(graph *g, cudnnBackendDescriptorType_t type) {
    desc_t d = NULL;
    if (g->failed) return NULL;
    cudnnStatus_t s = g->n == MAX_DESC ? CUDNN_STATUS_ALLOC_FAILED : cudnnBackendCreateDescriptor(type, &d);
    if (s != CUDNN_STATUS_SUCCESS) {
        note_status("create descriptor", s);
        g->failed = 1;
        return NULL;
    }
    return g->d[g->n++] = d;
}
static void g_set(graph *g, desc_t d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t n,
                  const void *v) {
    if (g->failed) return;
    cudnnStatus_t s = cudnnBackendSetAttribute(d, name, type, n, v);
    if (s != CUDNN_STATUS_SUCCESS) {
        char what[48];
        snprintf(what, sizeof what, "attribute %d", (int)name);
        note_status(what, s);
        g->failed = 1;
    }
}
static void g_fin(graph *g, desc_t d, const char *what) {
    if (g->failed) return;
    cudnnStatus_t s = cudnnBackendFinalize(d);
    if (s != CUDNN_STATUS_SUCCESS) {
        note_status(what, s);
        g->failed = 1;
    }
}
static void g_free(graph *g) {
    for (int i = g->n - 1; i >= 0; i--) cudnnBackendDestroyDescriptor(g->d[i]);
    g->n = g->nops = 0;
}

/* A 4-d tensor. uid 0: virtual (an intermediate of the graph; the next uid is taken); by_value:
 * a host scalar at execution; reorder: CUDNN_TENSOR_REORDERING_* */
static desc_t tensor_ex(graph *g, int64_t uid, cudnnDataType_t dt, const int64_t dim[4], const int64_t str[4],
                        bool by_value, cudnnBackendTensorReordering_t reorder) {
    desc_t t = g_new(g, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    int64_t align = 16;
    bool virt = uid == 0;
    if (virt) uid = g->next_uid++;
    g_set(g, t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt);
    g_set(g, t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dim);
    g_set(g, t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, str);
    g_set(g, t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    g_set(g, t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
    g_set(g, t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt);
    if (by_value) g_set(g, t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value);
    if (reorder != CUDNN_TENSOR_REORDERING_NONE)
        g_set(g, t, CUDNN_ATTR_TENSOR_REORDERING_MODE, CUDNN_TYPE_TENSOR_REORDERING_MODE, 1, &reorder);
    g_fin(g, t, "tensor");
    return t;
}
static desc_t tensor(graph *g, int64_t uid, cudnnDataType_t dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                     int64_t s0, int64_t s1, int64_t s2, int64_t s3) {
    int64_t dim[4] = {d0, d1, d2, d3}, str[4] = {s0, s1, s2, s3};
    return tensor_ex(g, uid, dt, dim, str, false, CUDNN_TENSOR_REORDERING_NONE);
}
static desc_t scalar(graph *g, int64_t uid) { /* an fp32 passed by value */
    int64_t one[4] = {1, 1, 1, 1};
    return tensor_ex(g, uid, CUDNN_DATA_FLOAT, one, one, true, CUDNN_TENSOR_REORDERING_NONE);
}
/* An operation of the graph: its descriptor-valued attributes (names[i] = ds[i]; a NULL
 * value is left unset), finalized and appended. */
static void operation(graph *g, cudnnBackendDescriptorType_t type, int n, const cudnnBackendAttributeName_t *names,
                      const desc_t *ds, const char *what) {
    desc_t op = g_new(g, type);
    for (int i = 0; i < n; i++)
        if (ds[i]) g_set(g, op, names[i], CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ds[i]);
    g_fin(g, op, what);
    if (g->failed) return;
    if (g->nops == MAX_OPS) {
        snprintf(g_note, sizeof g_note, "more than %d operations", MAX_OPS);
        g->failed = 1;
        return;
    }
    g->ops[g->nops++] = op;
}
/* y = mode(x, b, t); prec: the math precision; axis: GEN_INDEX's (else -1) */
static void pointwise(graph *g, cudnnPointwiseMode_t mode, cudnnDataType_t prec, desc_t x, desc_t b, desc_t t,
                      desc_t y, int64_t axis) {
    desc_t pw = g_new(g, CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    g_set(g, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    g_set(g, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    if (axis >= 0) g_set(g, pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis);
    g_fin(g, pw, "pointwise");
    const cudnnBackendAttributeName_t names[] = {
        CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_ATTR_OPERATION_POINTWISE_XDESC,
        CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_ATTR_OPERATION_POINTWISE_YDESC};
    const desc_t ds[] = {pw, x, b, t, y};
    operation(g, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, 5, names, ds, "pointwise op");
}
static void reduction(graph *g, cudnnReduceTensorOp_t red, desc_t x, desc_t y) {
    desc_t rd = g_new(g, CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    cudnnDataType_t f = CUDNN_DATA_FLOAT;
    g_set(g, rd, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &red);
    g_set(g, rd, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f);
    g_fin(g, rd, "reduction");
    const cudnnBackendAttributeName_t names[] = {CUDNN_ATTR_OPERATION_REDUCTION_XDESC,
                                                 CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_ATTR_OPERATION_REDUCTION_DESC};
    const desc_t ds[] = {x, y, rd};
    operation(g, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, 3, names, ds, "reduction op");
}
static void matmul(graph *g, desc_t a, desc_t b, desc_t c) {
    desc_t md = g_new(g, CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    cudnnDataType_t f = CUDNN_DATA_FLOAT;
    g_set(g, md, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f);
    g_fin(g, md, "matmul");
    const cudnnBackendAttributeName_t names[] = {CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_ATTR_OPERATION_MATMUL_BDESC,
                                                 CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_ATTR_OPERATION_MATMUL_DESC};
    const desc_t ds[] = {a, b, c, md};
    operation(g, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, 4, names, ds, "matmul op");
}
static void reshape(graph *g, desc_t x, desc_t y) {
    const cudnnBackendAttributeName_t names[] = {CUDNN_ATTR_OPERATION_RESHAPE_XDESC, CUDNN_ATTR_OPERATION_RESHAPE_YDESC};
    const desc_t ds[] = {x, y};
    operation(g, CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, 2, names, ds, "reshape op");
}

/* uids of the graphs' real tensors */
enum { U_Q = 1, U_K, U_V, U_O, U_STATS, U_SCALE, U_NEG, U_DO, U_DQ, U_DK, U_DV, U_DQACC, U_ONE };

#define F32 CUDNN_DATA_FLOAT
#define BF CUDNN_DATA_BFLOAT16
/* the backend's (B, T, heads, HD) tensors as cuDNN's (b, h, s, d) views, and the (b, h, s, s)
 * scores (SST: transposed) and (b, h, s, 1) row values */
#define QV(u, dt) tensor(g, u, dt, B, NH, T, HD, (int64_t)T * NH * HD, HD, (int64_t)NH * HD, 1)
#define KV(u, dt) tensor(g, u, dt, B, NKV, T, HD, (int64_t)T * NKV * HD, HD, (int64_t)NKV * HD, 1)
#define KVT(u) tensor(g, u, BF, B, NKV, HD, T, (int64_t)T * NKV * HD, HD, 1, (int64_t)NKV * HD)
#define ROWS(u) tensor(g, u, F32, B, NH, T, 1, (int64_t)NH * T, T, 1, 1)
#define SS(dt) tensor(g, 0, dt, B, NH, T, T, (int64_t)NH * T * T, (int64_t)T * T, T, 1)
#define SST(dt) tensor(g, 0, dt, B, NH, T, T, (int64_t)NH * T * T, (int64_t)T * T, 1, T)

/* s (scaled scores) -> s where row >= column, else the lowest float (neg) */
static desc_t causal(graph *g, desc_t s, desc_t neg, int B, int NH, int T) {
    desc_t row = SS(CUDNN_DATA_INT32), col = SS(CUDNN_DATA_INT32), keep = SS(CUDNN_DATA_BOOLEAN), out = SS(F32);
    pointwise(g, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, s, NULL, NULL, row, 2);
    pointwise(g, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, s, NULL, NULL, col, 3);
    pointwise(g, CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, NULL, keep, -1);
    pointwise(g, CUDNN_POINTWISE_BINARY_SELECT, F32, s, neg, keep, out, -1);
    return out;
}

static void build_fwd(graph *g, int B, int T, int NH, int NKV, int HD) {
    desc_t q = QV(U_Q, BF), kt = KVT(U_K), v = KV(U_V, BF), o = QV(U_O, BF), stats = ROWS(U_STATS);
    desc_t scale = scalar(g, U_SCALE), neg = scalar(g, U_NEG);
    desc_t s = SS(F32), s1 = SS(F32);
    matmul(g, q, kt, s);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, s, scale, NULL, s1, -1);
    desc_t s2 = causal(g, s1, neg, B, NH, T);
    desc_t mx = ROWS(0), sub = SS(F32), e = SS(F32), sum = ROWS(0), lg = ROWS(0), p = SS(BF);
    reduction(g, CUDNN_REDUCE_TENSOR_MAX, s2, mx);
    pointwise(g, CUDNN_POINTWISE_SUB, F32, s2, mx, NULL, sub, -1);
    pointwise(g, CUDNN_POINTWISE_EXP, F32, sub, NULL, NULL, e, -1);
    reduction(g, CUDNN_REDUCE_TENSOR_ADD, e, sum);
    pointwise(g, CUDNN_POINTWISE_LOG, F32, sum, NULL, NULL, lg, -1);
    pointwise(g, CUDNN_POINTWISE_ADD, F32, mx, lg, NULL, stats, -1);
    pointwise(g, CUDNN_POINTWISE_DIV, F32, e, sum, NULL, p, -1);
    matmul(g, p, v, o);
}

/* out = a @ b summed over the query heads of each kv head's group (GQA), or straight (MHA) */
static void per_kv_head(graph *g, desc_t a, desc_t b, desc_t out, int B, int T, int NH, int NKV, int HD) {
    if (NH == NKV) {
        matmul(g, a, b, out);
        return;
    }
    desc_t full = tensor(g, 0, BF, B, NH, T, HD, (int64_t)NH * T * HD, (int64_t)T * HD, HD, 1);
    matmul(g, a, b, full);
    reduction(g, CUDNN_REDUCE_TENSOR_ADD, full, out);
}

static void build_bwd(graph *g, int B, int T, int NH, int NKV, int HD) {
    desc_t q = QV(U_Q, BF), kt = KVT(U_K), vt = KVT(U_V), o = QV(U_O, BF), stats = ROWS(U_STATS);
    desc_t dout = QV(U_DO, BF), dq = QV(U_DQ, BF), dk = KV(U_DK, BF), dv = KV(U_DV, BF);
    desc_t scale = scalar(g, U_SCALE), neg = scalar(g, U_NEG), one = scalar(g, U_ONE);
    /* D = rowsum(dO * O); the two products by `one` below stand where the engines' pattern has
     * the dropout scale (as the frontend builds it without dropout) */
    desc_t dd = QV(0, F32), dsum = ROWS(0), dsum1 = ROWS(0);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, dout, o, NULL, dd, -1);
    reduction(g, CUDNN_REDUCE_TENSOR_ADD, dd, dsum);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, dsum, one, NULL, dsum1, -1);
    /* P = exp(masked S * scale - stats); dV = P^T dO */
    desc_t s = SS(F32), s1 = SS(F32);
    matmul(g, q, kt, s);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, s, scale, NULL, s1, -1);
    desc_t s2 = causal(g, s1, neg, B, NH, T), s3 = SS(F32), p = SS(F32), pt = SST(BF);
    pointwise(g, CUDNN_POINTWISE_SUB, F32, s2, stats, NULL, s3, -1);
    pointwise(g, CUDNN_POINTWISE_EXP, F32, s3, NULL, NULL, p, -1);
    reshape(g, p, pt);
    per_kv_head(g, pt, dout, dv, B, T, NH, NKV, HD);
    /* dS = P * (dO V^T - D) * scale; dK = dS^T Q; dQ = dS K */
    desc_t dp = SS(F32), dp1 = SS(F32), dp2 = SS(F32), ds = SS(F32), ds1 = SS(F32), dst = SST(BF);
    matmul(g, dout, vt, dp);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, dp, one, NULL, dp1, -1);
    pointwise(g, CUDNN_POINTWISE_SUB, F32, dp1, dsum1, NULL, dp2, -1);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, dp2, p, NULL, ds, -1);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, ds, scale, NULL, ds1, -1);
    reshape(g, ds1, dst);
    per_kv_head(g, dst, q, dk, B, T, NH, NKV, HD);
    desc_t k = KV(0, BF);
    reshape(g, kt, k);
    /* the fp32 dQ accumulator (zeroed before each run), in the engine's F16x16 order */
    int64_t adim[4] = {B, NH, T, HD}, astr[4] = {(int64_t)NH * T * HD, (int64_t)T * HD, HD, 1};
    desc_t acc = tensor_ex(g, U_DQACC, F32, adim, astr, false, CUDNN_TENSOR_REORDERING_F16x16);
    matmul(g, ds1, k, acc);
    pointwise(g, CUDNN_POINTWISE_IDENTITY, F32, acc, NULL, NULL, dq, -1);
}

/* ---- plans, one per shape and direction ---------------------------------------------------- */
typedef struct {
    int bwd, B, T, NH, NKV, HD, ok;
    graph g;
    desc_t plan;
    int64_t ws;
} plan_t;
enum { MAX_PLANS = 8 };
static plan_t *g_plans[MAX_PLANS];
static int g_nplans;

static int init(void) {
    if (g_state) return g_state > 0;
    g_state = -1;
    const char *env = getenv("LMA_CUDA_CUDNN");
    if (env && !strcmp(env, "0")) {
        snprintf(g_note, sizeof g_note, "off (LMA_CUDA_CUDNN=0)");
        return 0;
    }
    cudnnStatus_t s = cudnnCreate(&g_h);
    if (s != CUDNN_STATUS_SUCCESS) {
        note_status("cudnnCreate", s);
        return 0;
    }
    cudnnSetStream(g_h, 0);
    snprintf(g_note, sizeof g_note, "cuDNN %zu", cudnnGetVersion());
    g_state = 1;
    return 1;
}

/* operation graph -> heuristics (mode A) -> the first engine config whose plan builds */
static void finish_plan(plan_t *p) {
    graph *g = &p->g;
    desc_t og = g_new(g, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    g_set(g, og, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &g_h);
    g_set(g, og, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, g->nops, g->ops);
    g_fin(g, og, "operation graph");
    desc_t heur = g_new(g, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    g_set(g, heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &og);
    g_set(g, heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    g_fin(g, heur, "heuristics");
    if (g->failed) return;
    int64_t count = 0, got = 0;
    cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, NULL);
    if (count > 8) count = 8;
    desc_t cfg[8];
    for (int i = 0; i < count; i++) cfg[i] = g_new(g, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    if (count > 0 && !g->failed)
        cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, cfg);
    if (got <= 0 && !g->failed) snprintf(g_note, sizeof g_note, "no engine for the graph");
    for (int i = 0; i < got && !g->failed; i++) {
        desc_t plan = NULL;
        if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) != CUDNN_STATUS_SUCCESS) break;
        cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &g_h);
        cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                 &cfg[i]);
        cudnnStatus_t s = cudnnBackendFinalize(plan);
        if (s == CUDNN_STATUS_SUCCESS) {
            int64_t n = 0;
            cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &p->ws);
            p->plan = plan;
            return;
        }
        note_status("execution plan", s);
        cudnnBackendDestroyDescriptor(plan);
    }
    g->failed = 1;
}

/* A plan costs ~0.1 s to build: a forward shape gets one from its LMA_CUDA_CUDNN_MIN_CALLS-th
 * call (default 2) among the last SEEN shapes asked for; before that the flash kernel serves
 * it. Scoring prompts of ever-new lengths never waits; training repeats its shapes every step.
 * A backward (training only) gets its plan at once: the flash backward's scratch (fp32 dK, dV
 * per query head under GQA) would otherwise stay allocated beside cuDNN's. */
enum { SEEN = 64 };
static int g_seen[SEEN][6], g_seen_next;
static int seen_enough(int bwd, int B, int T, int NH, int NKV, int HD) {
    static int min_calls = -1;
    if (min_calls < 0) {
        const char *e = getenv("LMA_CUDA_CUDNN_MIN_CALLS");
        min_calls = e ? atoi(e) : 2;
    }
    int key[6] = {bwd + 1, B, T, NH, NKV, HD}, calls = 1; /* this one */
    for (int i = 0; i < SEEN; i++) calls += !memcmp(g_seen[i], key, sizeof key);
    if (calls >= min_calls) return 1;
    memcpy(g_seen[g_seen_next], key, sizeof key);
    g_seen_next = (g_seen_next + 1) % SEEN;
    return 0;
}

static plan_t *get_plan(int bwd, int B, int T, int NH, int NKV, int HD) {
    for (int i = 0; i < g_nplans; i++) {
        plan_t *p = g_plans[i];
        if (p->bwd == bwd && p->B == B && p->T == T && p->NH == NH && p->NKV == NKV && p->HD == HD)
            return p->ok ? p : NULL;
    }
    if (!bwd && !seen_enough(bwd, B, T, NH, NKV, HD)) return NULL;
    plan_t *p = (plan_t *)calloc(1, sizeof *p);
    if (!p) return NULL;
    p->bwd = bwd, p->B = B, p->T = T, p->NH = NH, p->NKV = NKV, p->HD = HD;
    p->g.next_uid = 100;
    if (bwd) build_bwd(&p->g, B, T, NH, NKV, HD);
    else build_fwd(&p->g, B, T, NH, NKV, HD);
    finish_plan(p);
    p->ok = !p->g.failed && p->plan;
    if (!p->ok) {
        g_free(&p->g); /* the entry stays (no retry); its descriptors go */
        if (getenv("LMA_CUDA_CUDNN_VERBOSE"))
            fprintf(stderr, "[lmadapt] cuDNN SDPA %s B=%d T=%d NH=%d NKV=%d HD=%d unavailable (%s): flash kernel\n",
                    bwd ? "backward" : "forward", B, T, NH, NKV, HD, g_note);
    }
    if (g_nplans == MAX_PLANS) { /* forget the oldest */
        plan_t *old = g_plans[0];
        if (old->plan) cudnnBackendDestroyDescriptor(old->plan);
        g_free(&old->g);
        free(old);
        memmove(g_plans, g_plans + 1, (MAX_PLANS - 1) * sizeof *g_plans);
        g_nplans--;
    }
    g_plans[g_nplans++] = p;
    return p->ok ? p : NULL;
}

static lma_cuda_buf g_ws, g_grad;

static int execute(plan_t *p, int n, const int64_t *uids, void *const *ptrs, void *ws) {
    desc_t vp = NULL;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(vp);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendExecute(g_h, p->plan, vp);
    if (vp) cudnnBackendDestroyDescriptor(vp);
    if (s != CUDNN_STATUS_SUCCESS) {
        note_status("execute", s);
        return -1;
    }
    g_runs++;
    return 0;
}

int lma_cuda_sdpa_usable(int HD) { return HD % 8 == 0 && HD <= 128 && init(); }

static const float NEG = -3.402823466e38f; /* the lowest float: the masked scores, as the frontend has them */

int lma_cuda_sdpa_fwd(void *out, float *lse, const void *q, const void *k, const void *v, int B, int T, int NH, int NKV,
                      int HD, float scale) {
    if (!lma_cuda_sdpa_usable(HD)) return -1;
    plan_t *p = get_plan(0, B, T, NH, NKV, HD);
    if (!p) return -1;
    void *ws = p->ws ? lma_cuda_grow(&g_ws, (size_t)p->ws) : NULL;
    if (p->ws && !ws) return -1;
    float neg = NEG;
    int64_t uids[] = {U_Q, U_K, U_V, U_O, U_STATS, U_SCALE, U_NEG};
    void *ptrs[] = {(void *)q, (void *)k, (void *)v, out, lse, &scale, &neg};
    return execute(p, 7, uids, ptrs, ws);
}

/* dq += g[0, nq); dk += g[nq, nq + nk); dv += g[nq + nk, nq + 2 nk) (bf16); 8 elements a thread
 * (each array is whole groups of 8: HD % 8 == 0), 16-byte accesses when the pointers allow */
__global__ void k_add3(bf16 *dq, bf16 *dk, bf16 *dv, const bf16 *g, size_t nq, size_t nk, int vec) {
    size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (i >= nq + 2 * nk) return;
    bf16 *d = i < nq ? dq + i : i < nq + nk ? dk + (i - nq) : dv + (i - nq - nk);
    if (!vec) {
        for (int j = 0; j < 8; j++) d[j] = __float2bfloat16(__bfloat162float(d[j]) + __bfloat162float(g[i + j]));
        return;
    }
    uint4 a = *reinterpret_cast<const uint4 *>(g + i), b = *reinterpret_cast<const uint4 *>(d);
    __nv_bfloat162 *x = reinterpret_cast<__nv_bfloat162 *>(&a);
    const __nv_bfloat162 *y = reinterpret_cast<const __nv_bfloat162 *>(&b);
#pragma unroll
    for (int j = 0; j < 4; j++) {
        float2 u = __bfloat1622float2(x[j]), w = __bfloat1622float2(y[j]);
        x[j] = __floats2bfloat162_rn(u.x + w.x, u.y + w.y);
    }
    *reinterpret_cast<uint4 *>(d) = a;
}

int lma_cuda_sdpa_bwd(void *dq, void *dk, void *dv, const void *dout, const void *out, const float *lse, const void *q,
                      const void *k, const void *v, int B, int T, int NH, int NKV, int HD, float scale) {
    if (!lma_cuda_sdpa_usable(HD) || !dq || !dk || !dv) return -1;
    plan_t *p = get_plan(1, B, T, NH, NKV, HD);
    if (!p) return -1;
    /* workspace: the plan's, then the fp32 dQ accumulator; the bf16 gradients in g_grad */
    size_t wsb = ((size_t)p->ws + 255) / 256 * 256, acc = lma_cuda_sdpa_ws_bytes(p->ws, B, T, NH, HD) - wsb;
    size_t nq = (size_t)B * T * NH * HD, nk = (size_t)B * T * NKV * HD;
    char *ws = (char *)lma_cuda_grow(&g_ws, wsb + acc);
    bf16 *g = (bf16 *)lma_cuda_grow(&g_grad, lma_cuda_sdpa_grad_bytes(B, T, NH, NKV, HD));
    if (!ws || !g || cudaMemsetAsync(ws + wsb, 0, acc, 0) != cudaSuccess) return -1;
    float neg = NEG, one = 1.0f;
    int64_t uids[] = {U_Q, U_K, U_V, U_O, U_STATS, U_DO, U_DQ, U_DK, U_DV, U_DQACC, U_SCALE, U_NEG, U_ONE};
    void *ptrs[] = {(void *)q, (void *)k, (void *)v,   (void *)out, (void *)lse, (void *)dout, g,
                    g + nq,    g + nq + nk, ws + wsb, &scale,      &neg,        &one};
    if (execute(p, 13, uids, ptrs, ws)) return -1;
    size_t n8 = (nq + 2 * nk) / 8;
    int vec = (((uintptr_t)dq | (uintptr_t)dk | (uintptr_t)dv) & 15) == 0;
    k_add3<<<(unsigned)((n8 + 255) / 256), 256, 0, lma_cu_stream>>>((bf16 *)dq, (bf16 *)dk, (bf16 *)dv, g, nq, nk, vec);
    return cudaGetLastError() == cudaSuccess ? 0 : -1;
}

const char *lma_cuda_sdpa_note(void) { return g_note; }
long lma_cuda_sdpa_runs(void) { return g_runs; }
#endif
