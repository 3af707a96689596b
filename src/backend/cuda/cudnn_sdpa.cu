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
 * Packed rows (segment ids: several documents a row) run as cuDNN's ragged (THD) layout: every
 * document is a sequence of its own, found by a per-document offset into the same tensors
 * (CUDNN_ATTR_TENSOR_RAGGED_OFFSET_DESC) with its length (the padding mask and the matmuls'
 * M/N/K overrides, as the frontend's padding-mask SDPA spells them), so the engine computes only
 * the document's own causal triangle. The documents are the runs of equal ids of a row; the
 * ragged path takes ids that never decrease along a row as unsigned numbers (every run a new
 * document, as the loaders pack them: 0, 1, 2, ... then the -1 of padding); other ids, or
 * documents the plan cannot take, stay with the flash kernel. The lse stays in the flash kernels' (B, NH, T) layout (a ragged offset per document
 * into it), so the two backwards stay interchangeable. Finding the documents costs one small
 * kernel and a device-to-host copy of their count (a sync), kept while the ids' buffer stays as
 * it was (lma_cuda_epoch: once a training step, not once a layer); plans are kept per (documents
 * rounded up to a power of two, longest document rounded up to one).
 *
 * cuDNN writes dq, dk, dv; the op table's backward accumulates, so where the caller has not
 * just zeroed them (set: the model's usual case, ops_memory.cuh's deferred zeroing) the backward
 * writes into a scratch copy and one kernel adds it (tens of microseconds a layer).
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
int lma_cuda_sdpa_fwd(void *, float *, const void *, const void *, const void *, const int32_t *, int, int, int, int,
                      int, float) {
    return -1;
}
int lma_cuda_sdpa_bwd(void *, void *, void *, const void *, const void *, const float *, const void *, const void *,
                      const void *, const int32_t *, int, int, int, int, int, float, int) {
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
                        bool by_value, cudnnBackendTensorReordering_t reorder, desc_t ragged) {
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
    if (ragged) g_set(g, t, CUDNN_ATTR_TENSOR_RAGGED_OFFSET_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ragged);
    g_fin(g, t, "tensor");
    return t;
}
static desc_t tensor_r(graph *g, int64_t uid, cudnnDataType_t dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                       int64_t s0, int64_t s1, int64_t s2, int64_t s3, desc_t ragged) {
    int64_t dim[4] = {d0, d1, d2, d3}, str[4] = {s0, s1, s2, s3};
    return tensor_ex(g, uid, dt, dim, str, false, CUDNN_TENSOR_REORDERING_NONE, ragged);
}
static desc_t tensor(graph *g, int64_t uid, cudnnDataType_t dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                     int64_t s0, int64_t s1, int64_t s2, int64_t s3) {
    return tensor_r(g, uid, dt, d0, d1, d2, d3, s0, s1, s2, s3, NULL);
}
static desc_t scalar(graph *g, int64_t uid) { /* an fp32 passed by value */
    int64_t one[4] = {1, 1, 1, 1};
    return tensor_ex(g, uid, CUDNN_DATA_FLOAT, one, one, true, CUDNN_TENSOR_REORDERING_NONE, NULL);
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
/* c = a @ b; m, n, k: the (B, 1, 1, 1) sequence lengths that bound the product's rows,
 * columns and sum of each batch (ragged: every document its own), or NULL */
static void matmul_ov(graph *g, desc_t a, desc_t b, desc_t c, desc_t m, desc_t n, desc_t k) {
    desc_t md = g_new(g, CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    cudnnDataType_t f = CUDNN_DATA_FLOAT;
    g_set(g, md, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f);
    g_fin(g, md, "matmul");
    const cudnnBackendAttributeName_t names[] = {
        CUDNN_ATTR_OPERATION_MATMUL_ADESC,  CUDNN_ATTR_OPERATION_MATMUL_BDESC,
        CUDNN_ATTR_OPERATION_MATMUL_CDESC,  CUDNN_ATTR_OPERATION_MATMUL_DESC,
        CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC,
        CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC};
    const desc_t ds[] = {a, b, c, md, m, n, k};
    operation(g, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, 7, names, ds, "matmul op");
}
static void reshape(graph *g, desc_t x, desc_t y) {
    const cudnnBackendAttributeName_t names[] = {CUDNN_ATTR_OPERATION_RESHAPE_XDESC, CUDNN_ATTR_OPERATION_RESHAPE_YDESC};
    const desc_t ds[] = {x, y};
    operation(g, CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, 2, names, ds, "reshape op");
}

/* uids of the graphs' real tensors */
enum {
    U_Q = 1, U_K, U_V, U_O, U_STATS, U_SCALE, U_NEG, U_DO, U_DQ, U_DK, U_DV, U_DQACC, U_ONE,
    U_SEQ_Q, U_SEQ_KV, U_OFF_QO, U_OFF_KV, U_OFF_ST /* ragged only */
};

#define F32 CUDNN_DATA_FLOAT
#define BF CUDNN_DATA_BFLOAT16

/* The problem as the graphs see it: B sequences of up to T rows (ragged: B documents, each
 * placed by its offsets, of at most T rows; LT: the row length of the lse's (rows, NH, LT)
 * layout, whose per-document offset places each document's rows), and the ragged graph's
 * extra tensors (NULL when not ragged). */
typedef struct {
    int B, T, NH, NKV, HD, LT;
    desc_t seq_q, seq_kv, off_qo, off_kv, off_st;
} shape_t;

/* the backend's (B, T, heads, HD) tensors as cuDNN's (b, h, s, d) views (a real tensor of a
 * ragged graph carries its documents' offsets), the (b, h, s, 1) lse rows, and the (b, h, s, s)
 * scores (transposed: SST) */
static desc_t qv(graph *g, const shape_t *p, int64_t uid, cudnnDataType_t dt) {
    int64_t T = p->T, NH = p->NH, HD = p->HD;
    return tensor_r(g, uid, dt, p->B, NH, T, HD, T * NH * HD, HD, NH * HD, 1, uid ? p->off_qo : NULL);
}
static desc_t kv(graph *g, const shape_t *p, int64_t uid, cudnnDataType_t dt, desc_t ragged) {
    int64_t T = p->T, NKV = p->NKV, HD = p->HD;
    return tensor_r(g, uid, dt, p->B, NKV, T, HD, T * NKV * HD, HD, NKV * HD, 1, ragged);
}
static desc_t kvt(graph *g, const shape_t *p, int64_t uid) {
    int64_t T = p->T, NKV = p->NKV, HD = p->HD;
    return tensor_r(g, uid, BF, p->B, NKV, HD, T, T * NKV * HD, HD, 1, NKV * HD, p->off_kv);
}
static desc_t rows(graph *g, const shape_t *p, int64_t uid) { /* uid 0: a virtual row value */
    int64_t T = p->T, NH = p->NH, LT = uid ? p->LT : p->T;
    return tensor_r(g, uid, F32, p->B, NH, T, 1, NH * LT, LT, 1, 1, uid ? p->off_st : NULL);
}
#define SS(dt) tensor(g, 0, dt, p->B, p->NH, p->T, p->T, (int64_t)p->NH * p->T * p->T, (int64_t)p->T * p->T, p->T, 1)
#define SST(dt) tensor(g, 0, dt, p->B, p->NH, p->T, p->T, (int64_t)p->NH * p->T * p->T, (int64_t)p->T * p->T, 1, p->T)

/* s (scaled scores) -> s where row >= column, else the lowest float (neg) */
static desc_t causal(graph *g, const shape_t *p, desc_t s, desc_t neg) {
    desc_t row = SS(CUDNN_DATA_INT32), col = SS(CUDNN_DATA_INT32), keep = SS(CUDNN_DATA_BOOLEAN), out = SS(F32);
    pointwise(g, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, s, NULL, NULL, row, 2);
    pointwise(g, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, s, NULL, NULL, col, 3);
    pointwise(g, CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, NULL, keep, -1);
    pointwise(g, CUDNN_POINTWISE_BINARY_SELECT, F32, s, neg, keep, out, -1);
    return out;
}
/* ragged: s -> s where row < seq_q and column < seq_kv of its document, else neg; then the
 * causal mask (the frontend's order). The comparisons are int32 in the forward's pattern and
 * boolean in the backward's, as the frontend has them. */
static desc_t mask(graph *g, const shape_t *p, desc_t s, desc_t neg, int bwd) {
    if (!p->seq_q) return causal(g, p, s, neg);
    cudnnDataType_t cmp = bwd ? CUDNN_DATA_BOOLEAN : CUDNN_DATA_INT32;
    desc_t row = SS(CUDNN_DATA_INT32), col = SS(CUDNN_DATA_INT32), rl = SS(cmp), cl = SS(cmp);
    desc_t keep = SS(CUDNN_DATA_BOOLEAN), out = SS(F32);
    pointwise(g, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, s, NULL, NULL, row, 2);
    pointwise(g, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, s, NULL, NULL, col, 3);
    pointwise(g, CUDNN_POINTWISE_CMP_LT, cmp, row, p->seq_q, NULL, rl, -1);
    pointwise(g, CUDNN_POINTWISE_CMP_LT, cmp, col, p->seq_kv, NULL, cl, -1);
    pointwise(g, CUDNN_POINTWISE_LOGICAL_AND, CUDNN_DATA_BOOLEAN, rl, cl, NULL, keep, -1);
    pointwise(g, CUDNN_POINTWISE_BINARY_SELECT, F32, s, neg, keep, out, -1);
    return causal(g, p, out, neg);
}

/* the ragged graph's tensors: per-document lengths (int32) and offsets (int64, in elements) */
static void ragged_tensors(graph *g, shape_t *p) {
    int64_t B = p->B;
    p->seq_q = tensor(g, U_SEQ_Q, CUDNN_DATA_INT32, B, 1, 1, 1, 1, 1, 1, 1);
    p->seq_kv = tensor(g, U_SEQ_KV, CUDNN_DATA_INT32, B, 1, 1, 1, 1, 1, 1, 1);
    p->off_qo = tensor(g, U_OFF_QO, CUDNN_DATA_INT64, B + 1, 1, 1, 1, 1, 1, 1, 1);
    p->off_kv = tensor(g, U_OFF_KV, CUDNN_DATA_INT64, B + 1, 1, 1, 1, 1, 1, 1, 1);
    p->off_st = tensor(g, U_OFF_ST, CUDNN_DATA_INT64, B + 1, 1, 1, 1, 1, 1, 1, 1);
}

static void build_fwd(graph *g, shape_t *p) {
    if (p->LT) ragged_tensors(g, p);
    else p->LT = p->T;
    desc_t q = qv(g, p, U_Q, BF), kt = kvt(g, p, U_K), v = kv(g, p, U_V, BF, p->off_kv), o = qv(g, p, U_O, BF);
    desc_t stats = rows(g, p, U_STATS), scale = scalar(g, U_SCALE), neg = scalar(g, U_NEG);
    desc_t s = SS(F32), s1 = SS(F32);
    matmul_ov(g, q, kt, s, p->seq_q, p->seq_kv, NULL);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, s, scale, NULL, s1, -1);
    desc_t s2 = mask(g, p, s1, neg, 0);
    desc_t mx = rows(g, p, 0), sub = SS(F32), e = SS(F32), sum = rows(g, p, 0), lg = rows(g, p, 0), pr = SS(BF);
    reduction(g, CUDNN_REDUCE_TENSOR_MAX, s2, mx);
    pointwise(g, CUDNN_POINTWISE_SUB, F32, s2, mx, NULL, sub, -1);
    pointwise(g, CUDNN_POINTWISE_EXP, F32, sub, NULL, NULL, e, -1);
    reduction(g, CUDNN_REDUCE_TENSOR_ADD, e, sum);
    pointwise(g, CUDNN_POINTWISE_LOG, F32, sum, NULL, NULL, lg, -1);
    pointwise(g, CUDNN_POINTWISE_ADD, F32, mx, lg, NULL, stats, -1);
    pointwise(g, CUDNN_POINTWISE_DIV, F32, e, sum, NULL, pr, -1);
    matmul_ov(g, pr, v, o, p->seq_q, NULL, p->seq_kv);
}

/* out = a @ b summed over the query heads of each kv head's group (GQA), or straight (MHA);
 * m, k: the overrides of the product (rows: the keys, sum: the queries) */
static void per_kv_head(graph *g, const shape_t *p, desc_t a, desc_t b, desc_t out) {
    if (p->NH == p->NKV) {
        matmul_ov(g, a, b, out, p->seq_kv, NULL, p->seq_q);
        return;
    }
    int64_t NH = p->NH, T = p->T, HD = p->HD;
    desc_t full = tensor(g, 0, BF, p->B, NH, T, HD, NH * T * HD, T * HD, HD, 1);
    matmul_ov(g, a, b, full, p->seq_kv, NULL, p->seq_q);
    reduction(g, CUDNN_REDUCE_TENSOR_ADD, full, out);
}

static void build_bwd(graph *g, shape_t *p) {
    if (p->LT) ragged_tensors(g, p);
    else p->LT = p->T;
    desc_t q = qv(g, p, U_Q, BF), kt = kvt(g, p, U_K), vt = kvt(g, p, U_V), o = qv(g, p, U_O, BF);
    desc_t stats = rows(g, p, U_STATS), dout = qv(g, p, U_DO, BF), dq = qv(g, p, U_DQ, BF);
    desc_t dk = kv(g, p, U_DK, BF, p->off_kv), dv = kv(g, p, U_DV, BF, p->off_kv);
    desc_t scale = scalar(g, U_SCALE), neg = scalar(g, U_NEG), one = scalar(g, U_ONE);
    /* D = rowsum(dO * O); the two products by `one` below stand where the engines' pattern has
     * the dropout scale (as the frontend builds it without dropout) */
    desc_t dd = qv(g, p, 0, F32), dsum = rows(g, p, 0), dsum1 = rows(g, p, 0);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, dout, o, NULL, dd, -1);
    reduction(g, CUDNN_REDUCE_TENSOR_ADD, dd, dsum);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, dsum, one, NULL, dsum1, -1);
    /* P = exp(masked S * scale - stats); dV = P^T dO */
    desc_t s = SS(F32), s1 = SS(F32);
    matmul_ov(g, q, kt, s, p->seq_q, p->seq_kv, NULL);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, s, scale, NULL, s1, -1);
    desc_t s2 = mask(g, p, s1, neg, 1), s3 = SS(F32), pr = SS(F32), pt = SST(BF);
    pointwise(g, CUDNN_POINTWISE_SUB, F32, s2, stats, NULL, s3, -1);
    pointwise(g, CUDNN_POINTWISE_EXP, F32, s3, NULL, NULL, pr, -1);
    reshape(g, pr, pt);
    per_kv_head(g, p, pt, dout, dv);
    /* dS = P * (dO V^T - D) * scale; dK = dS^T Q; dQ = dS K */
    desc_t dp = SS(F32), dp1 = SS(F32), dp2 = SS(F32), ds = SS(F32), ds1 = SS(F32), dst = SST(BF);
    matmul_ov(g, dout, vt, dp, p->seq_q, p->seq_kv, NULL);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, dp, one, NULL, dp1, -1);
    pointwise(g, CUDNN_POINTWISE_SUB, F32, dp1, dsum1, NULL, dp2, -1);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, dp2, pr, NULL, ds, -1);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, ds, scale, NULL, ds1, -1);
    reshape(g, ds1, dst);
    per_kv_head(g, p, dst, q, dk);
    desc_t k = kv(g, p, 0, BF, p->off_kv);
    reshape(g, kt, k);
    /* the fp32 dQ accumulator (zeroed before each run): (B, NH, T, HD) in the engine's F16x16
     * order, or ragged, dQ's layout and offsets (the newer frontend's THD accumulator) */
    int64_t B = p->B, NH = p->NH, T = p->T, HD = p->HD;
    int64_t adim[4] = {B, NH, T, HD}, astr[4] = {NH * T * HD, T * HD, HD, 1};
    desc_t acc = p->off_qo ? qv(g, p, U_DQACC, F32)
                           : tensor_ex(g, U_DQACC, F32, adim, astr, false, CUDNN_TENSOR_REORDERING_F16x16, NULL);
    matmul_ov(g, ds1, k, acc, p->seq_q, NULL, p->seq_kv);
    pointwise(g, CUDNN_POINTWISE_IDENTITY, F32, acc, NULL, NULL, dq, -1);
}

/* ---- plans, one per shape and direction ---------------------------------------------------- */
typedef struct {
    int bwd, ok;
    int key[6]; /* B, T, NH, NKV, HD, LT (0: not ragged) */
    graph g;
    desc_t plan;
    int64_t ws;
} plan_t;
enum { MAX_PLANS = 16 };
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

/* the plan of a direction and shape (LT 0: unsegmented rows; else ragged documents), built
 * on its first use (a forward of unsegmented rows: see seen_enough), NULL where cuDNN has none */
static plan_t *get_plan(int bwd, int B, int T, int NH, int NKV, int HD, int LT) {
    int key[6] = {B, T, NH, NKV, HD, LT};
    for (int i = 0; i < g_nplans; i++) {
        plan_t *p = g_plans[i];
        if (p->bwd == bwd && !memcmp(p->key, key, sizeof key)) return p->ok ? p : NULL;
    }
    if (!bwd && !LT && !seen_enough(bwd, B, T, NH, NKV, HD)) return NULL;
    plan_t *p = (plan_t *)calloc(1, sizeof *p);
    if (!p) return NULL;
    p->bwd = bwd;
    memcpy(p->key, key, sizeof key);
    p->g.next_uid = 100;
    shape_t sh = {B, T, NH, NKV, HD, LT, NULL, NULL, NULL, NULL, NULL};
    if (bwd) build_bwd(&p->g, &sh);
    else build_fwd(&p->g, &sh);
    finish_plan(p);
    p->ok = !p->g.failed && p->plan;
    if (!p->ok) {
        g_free(&p->g); /* the entry stays (no retry); its descriptors go */
        if (getenv("LMA_CUDA_CUDNN_VERBOSE"))
            fprintf(stderr, "[lmadapt] cuDNN SDPA %s%s B=%d T=%d NH=%d NKV=%d HD=%d unavailable (%s): flash kernel\n",
                    bwd ? "backward" : "forward", LT ? " (ragged documents)" : "", B, T, NH, NKV, HD, g_note);
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

/* ---- documents of packed rows ---------------------------------------------------------------- */
enum { DOC_THREADS = 1024 };
/* seg (B, T) -> starts[j]: the first token (of B*T) of document j, a document a run of equal
 * ids in a row, starts[nd] = B*T; hdr: {nd, the longest document, 1 where ids decrease along a
 * row as unsigned numbers (a decrease could bring an earlier run's id back)}. One block: a count a thread over its slice, a scan of the counts, the starts written. */
__global__ void __launch_bounds__(DOC_THREADS) k_doc_starts(const int32_t *seg, int B, int T, int *starts, int *hdr) {
    __shared__ int part[DOC_THREADS];
    __shared__ int longest, bad;
    int n = B * T, per = (n + DOC_THREADS - 1) / DOC_THREADS, i0 = min(n, (int)threadIdx.x * per), i1 = min(n, i0 + per);
    if (threadIdx.x == 0) longest = bad = 0;
    int cnt = 0, dec = 0;
    for (int i = i0; i < i1; i++) {
        int first = i % T == 0;
        cnt += first || seg[i] != seg[i - 1];
        dec |= !first && (uint32_t)seg[i] < (uint32_t)seg[i - 1];
    }
    part[threadIdx.x] = cnt;
    __syncthreads();
    if (dec) atomicOr(&bad, 1);
    for (int off = 1; off < DOC_THREADS; off <<= 1) { /* inclusive scan */
        int add = threadIdx.x >= off ? part[threadIdx.x - off] : 0;
        __syncthreads();
        part[threadIdx.x] += add;
        __syncthreads();
    }
    int nd = part[DOC_THREADS - 1], at = part[threadIdx.x] - cnt;
    for (int i = i0; i < i1; i++)
        if (i % T == 0 || seg[i] != seg[i - 1]) starts[at++] = i;
    if (threadIdx.x == 0) starts[nd] = n;
    __syncthreads();
    int mx = 0;
    for (int j = threadIdx.x; j < nd; j += DOC_THREADS) mx = max(mx, starts[j + 1] - starts[j]);
    atomicMax(&longest, mx);
    __syncthreads();
    if (threadIdx.x == 0) hdr[0] = nd, hdr[1] = longest, hdr[2] = bad;
}
/* the ragged graphs' tables for cap >= nd documents (the ones past nd empty, at the end):
 * lengths, and offsets in elements of q/out (NH heads), k/v (NKV) and the lse (the flash
 * kernels' (B, NH, T): a document's rows at (row, 0, position); cuDNN takes this layout as
 * well as a token-major one, which the flash backward could not read) */
__global__ void k_doc_tables(const int *starts, int nd, int cap, int T, int NH, int NKV, int HD, int32_t *len,
                             int64_t *off_qo, int64_t *off_kv, int64_t *off_st) {
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j <= cap; j += gridDim.x * blockDim.x) {
        int s = starts[min(j, nd)];
        if (j < cap) len[j] = j < nd ? starts[j + 1] - s : 0;
        off_qo[j] = (int64_t)s * NH * HD;
        off_kv[j] = (int64_t)s * NKV * HD;
        off_st[j] = (int64_t)(s / T) * NH * T + s % T;
    }
}

typedef struct {
    int cap, smax;                     /* the plan's documents and longest one */
    int32_t *len;                      /* (cap) */
    int64_t *off_qo, *off_kv, *off_st; /* (cap + 1) each */
} docs_t;
static lma_cuda_buf g_docs;
static int *g_hdr; /* pinned */

/* The documents of seg (B, T) for a ragged plan: 0 with d filled, 1 where every row is one
 * document (the unsegmented plan serves), -1 where the ragged path does not take them (ids
 * decrease along a row, a graph is being recorded, no memory). */
static int find_docs_now(const int32_t *seg, int B, int T, int NH, int NKV, int HD, int pad, docs_t *d);
static int find_docs(const int32_t *seg, int B, int T, int NH, int NKV, int HD, docs_t *d) {
    static int pad = -1;
    if (pad < 0) {
        const char *e = getenv("LMA_CUDA_CUDNN_PAD");
        pad = !(e && !strcmp(e, "0"));
    }
    if (lma_cu_stream != 0) return -1; /* recording: the count is a sync */
    static struct { /* the last answer, while nothing was uploaded, copied or freed since */
        const int32_t *seg;
        int B, T, NH, NKV, HD, r;
        unsigned long epoch;
        docs_t d;
    } last = {NULL, 0, 0, 0, 0, 0, 0, 0, {0, 0, NULL, NULL, NULL, NULL}};
    if (last.seg == seg && last.epoch == lma_cuda_epoch && last.B == B && last.T == T && last.NH == NH &&
        last.NKV == NKV && last.HD == HD) {
        *d = last.d;
        return last.r;
    }
    int r = find_docs_now(seg, B, T, NH, NKV, HD, pad, d);
    last.seg = seg, last.B = B, last.T = T, last.NH = NH, last.NKV = NKV, last.HD = HD, last.r = r, last.d = *d;
    last.epoch = lma_cuda_epoch; /* after find_docs_now's own allocation */
    return r;
}
static int find_docs_now(const int32_t *seg, int B, int T, int NH, int NKV, int HD, int pad, docs_t *d) {
    *d = (docs_t){0, 0, NULL, NULL, NULL, NULL};
    size_t n = (size_t)B * T, ni = (n + 2 + 1) & ~(size_t)1; /* ints, even: the int64s after them are aligned */
    char *buf = (char *)lma_cuda_grow(&g_docs, lma_cuda_sdpa_docs_bytes(n));
    if (!buf || (!g_hdr && cudaMallocHost((void **)&g_hdr, 4 * sizeof(int)) != cudaSuccess)) return -1;
    int *starts = (int *)buf, *hdr = starts + n + 1;
    int32_t *len = (int32_t *)(buf + ni * 4 + 16);
    int64_t *off = (int64_t *)(buf + 2 * ni * 4 + 16);
    k_doc_starts<<<1, DOC_THREADS, 0, 0>>>(seg, B, T, starts, hdr);
    if (cudaMemcpyAsync(g_hdr, hdr, 3 * sizeof(int), cudaMemcpyDeviceToHost, 0) != cudaSuccess ||
        cudaStreamSynchronize(0) != cudaSuccess)
        return -1;
    int nd = g_hdr[0], longest = g_hdr[1];
    if (g_hdr[2] || nd < 1) return -1;
    if (nd == B && longest == T) return 1;
    int cap = nd, smax = 64;
    while (pad && cap & (cap - 1)) cap += cap & -cap; /* up to a power of two */
    while (smax < longest) smax *= 2;
    if (smax > T) smax = T;
    *d = (docs_t){cap, smax, len, off, off + n + 2, off + 2 * (n + 2)};
    k_doc_tables<<<(cap + 256) / 256, 256, 0, 0>>>(starts, nd, cap, T, NH, NKV, HD, d->len, d->off_qo, d->off_kv,
                                                    d->off_st);
    return cudaGetLastError() == cudaSuccess ? 0 : -1;
}

/* the plan for (B, T) rows, or for their documents (seg: d filled, *ragged set) */
static plan_t *plan_for(int bwd, const int32_t *seg, int B, int T, int NH, int NKV, int HD, docs_t *d, int *ragged) {
    *ragged = 0;
    if (seg) {
        int r = find_docs(seg, B, T, NH, NKV, HD, d);
        if (r < 0) return NULL;
        if (r == 0) {
            *ragged = 1;
            return get_plan(bwd, d->cap, d->smax, NH, NKV, HD, T); /* the lse rows: T long */
        }
    }
    return get_plan(bwd, B, T, NH, NKV, HD, 0);
}

int lma_cuda_sdpa_fwd(void *out, float *lse, const void *q, const void *k, const void *v, const int32_t *seg, int B,
                      int T, int NH, int NKV, int HD, float scale) {
    if (!lma_cuda_sdpa_usable(HD)) return -1;
    docs_t d;
    int ragged;
    plan_t *p = plan_for(0, seg, B, T, NH, NKV, HD, &d, &ragged);
    if (!p) return -1;
    void *ws = p->ws ? lma_cuda_grow(&g_ws, (size_t)p->ws) : NULL;
    if (p->ws && !ws) return -1;
    float neg = NEG;
    int64_t uids[] = {U_Q, U_K, U_V, U_O, U_STATS, U_SCALE, U_NEG, U_SEQ_Q, U_SEQ_KV, U_OFF_QO, U_OFF_KV, U_OFF_ST};
    void *ptrs[] = {(void *)q, (void *)k, (void *)v, out, lse, &scale, &neg, d.len, d.len, d.off_qo, d.off_kv, d.off_st};
    return execute(p, ragged ? 12 : 7, uids, ptrs, ws);
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
                      const void *k, const void *v, const int32_t *seg, int B, int T, int NH, int NKV, int HD,
                      float scale, int set) {
    if (!lma_cuda_sdpa_usable(HD) || !dq || !dk || !dv) return -1;
    docs_t d;
    int ragged;
    plan_t *p = plan_for(1, seg, B, T, NH, NKV, HD, &d, &ragged);
    if (!p) return -1;
    /* workspace: the plan's, then the fp32 dQ accumulator (ragged: the tokens' rows, as dq's);
     * the bf16 gradients in g_grad */
    size_t wsb = ((size_t)p->ws + 255) / 256 * 256, acc = lma_cuda_sdpa_ws_bytes(p->ws, B, T, NH, HD) - wsb;
    size_t nq = (size_t)B * T * NH * HD, nk = (size_t)B * T * NKV * HD;
    char *ws = (char *)lma_cuda_grow(&g_ws, wsb + acc);
    bf16 *g = set ? NULL : (bf16 *)lma_cuda_grow(&g_grad, lma_cuda_sdpa_grad_bytes(B, T, NH, NKV, HD));
    if (!ws || (!set && !g) || cudaMemsetAsync(ws + wsb, 0, acc, 0) != cudaSuccess) return -1;
    float neg = NEG, one = 1.0f;
    int64_t uids[] = {U_Q,     U_K,     U_V,   U_O,      U_STATS,  U_DO,     U_DQ,     U_DK,
                      U_DV,    U_DQACC, U_SCALE, U_NEG,  U_ONE,    U_SEQ_Q,  U_SEQ_KV, U_OFF_QO,
                      U_OFF_KV, U_OFF_ST};
    void *ptrs[] = {(void *)q, (void *)k, (void *)v, (void *)out, (void *)lse, (void *)dout,
                    set ? dq : (void *)g, set ? dk : (void *)(g + nq), set ? dv : (void *)(g + nq + nk), ws + wsb,
                    &scale, &neg, &one, d.len, d.len, d.off_qo, d.off_kv, d.off_st};
    if (execute(p, ragged ? 18 : 13, uids, ptrs, ws)) return -1;
    if (set) return 0;
    size_t n8 = (nq + 2 * nk) / 8;
    int vec = (((uintptr_t)dq | (uintptr_t)dk | (uintptr_t)dv) & 15) == 0;
    k_add3<<<(unsigned)((n8 + 255) / 256), 256, 0, lma_cu_stream>>>((bf16 *)dq, (bf16 *)dk, (bf16 *)dv, g, nq, nk, vec);
    return cudaGetLastError() == cudaSuccess ? 0 : -1;
}

const char *lma_cuda_sdpa_note(void) { return g_note; }
long lma_cuda_sdpa_runs(void) { return g_runs; }
#endif
