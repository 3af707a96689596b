/* lma_backend_cuda(): the op table on an NVIDIA GPU.
 *
 * Two tables share every kernel (templates on the activation storage type TI):
 *   "cuda"      bf16 activations and bf16 compute copy of the weights (act_bytes 2),
 *               fp32 master weights, fp32 parameter gradients and AdamW moments:
 *               the fast path and the default;
 *   "cuda-fp32" fp32 everywhere (act_bytes 4): exact fp32 GEMMs by default (PyTorch's
 *               default; matches the CPU backend at fp32 tolerances), TF32 tensor
 *               cores with LMA_CUDA_TF32=1 or lma_cuda_set_tf32(1).
 * GEMMs go through cuBLASLt (bf16 or fp32 inputs, fp32 accumulation; weight
 * gradients accumulate into fp32; bias fused as an epilogue), with the plans cached
 * by shape and alignment. Attention is flash attention (attention.cu) for head dims
 * 16..128, through cuDNN's fused flash attention (cudnn_sdpa.cu) where it applies (bf16, no
 * segment ids, cuDNN built in); the batched-GEMM path (fp32 table) and the naive kernels stay
 * as the fallback and the oracle (lma_cuda_attention_naive: 1 naive, 2 batched GEMMs, 3 the
 * flash kernel of attention.cu without cuDNN).
 * Everything else: one block per row for reductions (rmsnorm, cross-entropy), one
 * thread per element otherwise, fp32 arithmetic on every storage type.
 *
 * Built as a plugin (liblmadapt_cuda.so) that backend.c loads with dlopen only
 * when the NVIDIA driver is present, so CPU-only runs never map cuBLAS.
 *
 * Errors: ops cannot return a status; the first CUDA or cuBLAS error is
 * recorded with lma_error (LMA_ERR_INTERNAL, naming the op) and can be read with
 * lma_last_error(); allocation failure returns NULL as the table says. */
extern "C" {
#include "backend/backend.h"
#include "lmadapt.h"
}
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cuda/cuda_internal.h"

typedef __nv_bfloat16 bf16;

static cublasHandle_t g_blas;
static cublasLtHandle_t g_lt;
static int g_tf32 = 0;
/* The library's lma_error, handed over by lma_cuda_plugin_open (this file is a
 * plugin, loaded with dlopen: see backend.c). */
static lma_status (*g_err)(lma_status, const char *, ...);
static const int *g_naive; /* lma_cuda_attention_naive of the library */
#define lma_error(...) (g_err ? g_err(__VA_ARGS__) : LMA_ERR_INTERNAL)
#define attention_mode (g_naive ? *g_naive : 0)

/* The first failure since the last sync (backend.h): ops return nothing, so a failure is
 * recorded here and reported by cu_sync at the end of the model's forward, backward,
 * optimizer step or generation step. */
static lma_status g_fail = LMA_OK;
static char g_fail_msg[512];
static void fail(lma_status s, const char *fmt, ...) {
    if (g_fail != LMA_OK) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_fail_msg, sizeof g_fail_msg, fmt, ap);
    va_end(ap);
    g_fail = s;
    lma_error(s, "%s", g_fail_msg);
}
static void check(cudaError_t e, const char *what) {
    if (e != cudaSuccess)
        fail(e == cudaErrorMemoryAllocation ? LMA_ERR_NOMEM : LMA_ERR_INTERNAL, "cuda %s: %s", what, cudaGetErrorString(e));
}
static void check_launch(const char *what) { check(cudaGetLastError(), what); }
static void check_blas(cublasStatus_t s, const char *what) {
    if (s != CUBLAS_STATUS_SUCCESS)
        fail(s == CUBLAS_STATUS_ALLOC_FAILED ? LMA_ERR_NOMEM : LMA_ERR_INTERNAL, "cublas %s: status %d", what, (int)s);
}
static lma_status cu_sync(void) {
    check(cudaDeviceSynchronize(), "synchronize");
    lma_status s = g_fail;
    if (s != LMA_OK) {
        lma_error(s, "%s", g_fail_msg); /* again: the caller may have cleared it since */
        g_fail = LMA_OK;
    }
    return s;
}

static unsigned blocks(size_t n, unsigned threads) { return (unsigned)((n + threads - 1) / threads); }

/* fp32 arithmetic on either storage type */
__device__ __forceinline__ float ld(const float *p) { return *p; }
__device__ __forceinline__ float ld(const bf16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ void st(float *p, float x) { *p = x; }
__device__ __forceinline__ void st(bf16 *p, float x) { *p = __float2bfloat16(x); }

/* E = 8 elements per thread (16-byte loads and stores) when n is a multiple of 8 and every
 * pointer is 16-byte aligned (vec_ok), else E = 1: the elementwise and row kernels. */
template <typename TI, int E> struct chunk;
template <typename TI> struct chunk<TI, 1> {
    static __device__ __forceinline__ void load(const TI *p, float *f) { f[0] = ld(p); }
    static __device__ __forceinline__ void store(TI *p, const float *f) { st(p, f[0]); }
};
template <> struct chunk<bf16, 8> {
    static __device__ __forceinline__ void load(const bf16 *p, float *f) {
        uint4 u = *reinterpret_cast<const uint4 *>(p);
        const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&u);
#pragma unroll
        for (int k = 0; k < 4; k++) { float2 v = __bfloat1622float2(h[k]); f[2 * k] = v.x; f[2 * k + 1] = v.y; }
    }
    static __device__ __forceinline__ void store(bf16 *p, const float *f) {
        uint4 u;
        __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&u);
#pragma unroll
        for (int k = 0; k < 4; k++) h[k] = __floats2bfloat162_rn(f[2 * k], f[2 * k + 1]);
        *reinterpret_cast<uint4 *>(p) = u;
    }
};
template <> struct chunk<float, 8> {
    static __device__ __forceinline__ void load(const float *p, float *f) {
        float4 a = reinterpret_cast<const float4 *>(p)[0], b = reinterpret_cast<const float4 *>(p)[1];
        f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w; f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
    }
    static __device__ __forceinline__ void store(float *p, const float *f) {
        reinterpret_cast<float4 *>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
        reinterpret_cast<float4 *>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
    }
};
/* n a multiple of 8 and the (non-NULL) pointers 16-byte aligned */
static int vec_ok(size_t n, const void *a, const void *b = NULL, const void *c = NULL, const void *d = NULL,
                  const void *e = NULL) {
    const void *p[5] = {a, b, c, d, e};
    if (n % 8) return 0;
    for (int i = 0; i < 5; i++)
        if (p[i] && ((uintptr_t)p[i] & 15)) return 0;
    return 1;
}
/* kernel<TI, 8> over n/8 threads or kernel<TI, 1> over n */
#define LAUNCH_EW(kernel, vec, n, ...)                                                                               \
    do {                                                                                                             \
        if (vec) kernel<TI, 8><<<blocks((n) / 8, 256), 256>>>(__VA_ARGS__);                                          \
        else kernel<TI, 1><<<blocks(n, 256), 256>>>(__VA_ARGS__);                                                    \
    } while (0)
#define EW_INDEX(E) size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * (E); if (i >= n) return


/* one profile row per op and storage type (the templates instantiate it twice; profile.cu) */
#define PROFILE(name)                                                                                                  \
    static lma_cuda_prof_acc *prof_row_ = lma_cuda_prof_register(sizeof(TI) == 2 ? name " bf16" : name);              \
    lma_cuda_prof_scope prof_s_(prof_row_)
#define PROFILE_F32(name)                                                                                              \
    static lma_cuda_prof_acc *prof_row_ = lma_cuda_prof_register(name);                                               \
    lma_cuda_prof_scope prof_s_(prof_row_)

/* ---- memory ----------------------------------------------------------------
 * Every device allocation of the plugin (the model's and the ops' scratch) goes through
 * lma_cuda_malloc/free, which count the bytes held: lma_cuda_memory() reports the current
 * and peak totals, the counterpart of torch.cuda.max_memory_allocated (the CUDA context
 * and cuBLAS's own memory are not included; nvidia-smi shows those too). */
#include <mutex>
#include <unordered_map>
static std::mutex g_mem_mu;
static std::unordered_map<void *, size_t> g_mem_sizes;
static size_t g_mem_cur, g_mem_peak;

/* Fault injection (tests): LMA_CUDA_FAIL_ALLOC_AT=N makes the Nth device allocation fail as an
 * out-of-memory would (tests/cuda_fault.sh sweeps N over a command). */
static long fail_alloc_at(void) {
    static long at = -1;
    if (at < 0) {
        const char *e = getenv("LMA_CUDA_FAIL_ALLOC_AT");
        at = e ? atol(e) : 0;
    }
    return at;
}
void *lma_cuda_malloc(size_t bytes) {
    static long n_allocs;
    void *p = NULL;
    if (fail_alloc_at() > 0 && ++n_allocs == fail_alloc_at()) return NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) { cudaGetLastError(); return NULL; }
    std::lock_guard<std::mutex> lk(g_mem_mu);
    g_mem_sizes[p] = bytes;
    g_mem_cur += bytes;
    if (g_mem_cur > g_mem_peak) g_mem_peak = g_mem_cur;
    return p;
}
void lma_cuda_free(void *p) {
    if (!p) return;
    {
        std::lock_guard<std::mutex> lk(g_mem_mu);
        auto it = g_mem_sizes.find(p);
        if (it != g_mem_sizes.end()) { g_mem_cur -= it->second; g_mem_sizes.erase(it); }
    }
    check(cudaFree(p), "free");
}
extern "C" __attribute__((visibility("default"))) const char *lma_cuda_plugin_sdpa(int HD, long *runs) {
    int on = lma_cuda_sdpa_usable(HD);
    if (runs) *runs = lma_cuda_sdpa_runs();
    return on ? lma_cuda_sdpa_note() : NULL;
}
extern "C" __attribute__((visibility("default"))) void lma_cuda_plugin_memory(size_t *cur, size_t *peak, int reset) {
    std::lock_guard<std::mutex> lk(g_mem_mu);
    if (cur) *cur = g_mem_cur;
    if (peak) *peak = g_mem_peak;
    if (reset) g_mem_peak = g_mem_cur;
}

static void *cu_alloc(size_t bytes) { return lma_cuda_malloc(bytes); }
static void cu_free(void *p) { lma_cuda_free(p); }
static void cu_upload(void *dst, const void *src, size_t n) { check(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "upload"); }
static void cu_download(void *dst, const void *src, size_t n) { check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost), "download"); }
static void cu_zero(void *p, size_t n) { check(cudaMemset(p, 0, n), "memset"); }
static void cu_copy(void *dst, const void *src, size_t n) { check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToDevice), "copy"); }

template <typename TO, typename TF>
__global__ void k_convert(TO *dst, const TF *src, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) st(dst + i, ld(src + i));
}
template <typename TI> static void cu_cast_to_act(void *dst, const float *src, size_t n) {
    if (dst == (const void *)src || !n) return;
    k_convert<TI, float><<<blocks(n, 256), 256>>>((TI *)dst, src, n);
    check_launch("cast_to_act");
}
template <typename TI> static void cu_act_to_f32(float *dst, const void *src, size_t n) {
    if ((const void *)dst == src || !n) return;
    k_convert<float, TI><<<blocks(n, 256), 256>>>(dst, (const TI *)src, n);
    check_launch("act_to_f32");
}

/* ---- block reductions ---------------------------------------------------------- */

__device__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
/* blockDim.x a multiple of 32, at most 1024; every thread gets the result */
__device__ float block_sum(float v) {
    __shared__ float s[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) s[w] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? s[lane] : 0.0f;
    return warp_sum(v);
}
__device__ float block_max(float v) {
    __shared__ float s[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) s[w] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? s[lane] : -INFINITY;
    return warp_max(v);
}

/* ---- embedding ------------------------------------------------------------------ */

template <typename TI>
__global__ void k_embedding_fwd(TI *out, const int32_t *ids, const TI *wte, int N, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C) return;
    size_t n = i / C, c = i % C;
    out[i] = wte[(size_t)ids[n] * C + c];
}
template <typename TI>
__global__ void k_embedding_bwd(float *dwte, const TI *dout, const int32_t *ids, int N, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C) return;
    size_t n = i / C, c = i % C;
    atomicAdd(&dwte[(size_t)ids[n] * C + c], ld(dout + i));
}
template <typename TI> static void cu_embedding_fwd(void *out, const int32_t *ids, const void *wte, int N, int C) {
    PROFILE("embedding_fwd");
    k_embedding_fwd<TI><<<blocks((size_t)N * C, 256), 256>>>((TI *)out, ids, (const TI *)wte, N, C);
    check_launch("embedding_fwd");
}
template <typename TI> static void cu_embedding_bwd(float *dwte, const void *dout, const int32_t *ids, int N, int C) {
    PROFILE("embedding_bwd");
    if (!dwte) return;
    k_embedding_bwd<TI><<<blocks((size_t)N * C, 256), 256>>>(dwte, (const TI *)dout, ids, N, C);
    check_launch("embedding_bwd");
}

/* ---- rmsnorm ---------------------------------------------------------------------- */

template <typename TI, int E>
__global__ void k_rmsnorm_fwd(TI *out, float *rstd, const TI *inp, const TI *w, int C, float eps) {
    const TI *x = inp + (size_t)blockIdx.x * C;
    TI *o = out + (size_t)blockIdx.x * C;
    float ss = 0, v[E], wv[E];
    for (int c = threadIdx.x * E; c < C; c += blockDim.x * E) {
        chunk<TI, E>::load(x + c, v);
#pragma unroll
        for (int k = 0; k < E; k++) ss += v[k] * v[k];
    }
    ss = block_sum(ss);
    float r = rsqrtf(ss / C + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
    for (int c = threadIdx.x * E; c < C; c += blockDim.x * E) {
        chunk<TI, E>::load(x + c, v);
        chunk<TI, E>::load(w + c, wv);
#pragma unroll
        for (int k = 0; k < E; k++) v[k] = wv[k] * (v[k] * r);
        chunk<TI, E>::store(o + c, v);
    }
}
/* dinp += r * (g w) - r^3 / C * x * sum(g w x) */
template <typename TI, int E>
__global__ void k_rmsnorm_bwd_inp(TI *dinp, const TI *dout, const TI *inp, const TI *w, const float *rstd, int C) {
    const TI *x = inp + (size_t)blockIdx.x * C, *g = dout + (size_t)blockIdx.x * C;
    TI *d = dinp + (size_t)blockIdx.x * C;
    float r = rstd[blockIdx.x], dot = 0, xv[E], gv[E], wv[E], dv[E];
    for (int c = threadIdx.x * E; c < C; c += blockDim.x * E) {
        chunk<TI, E>::load(x + c, xv);
        chunk<TI, E>::load(g + c, gv);
        chunk<TI, E>::load(w + c, wv);
#pragma unroll
        for (int k = 0; k < E; k++) dot += gv[k] * wv[k] * xv[k];
    }
    dot = block_sum(dot);
    float kk = r * r * r * dot / C;
    for (int c = threadIdx.x * E; c < C; c += blockDim.x * E) {
        chunk<TI, E>::load(x + c, xv);
        chunk<TI, E>::load(g + c, gv);
        chunk<TI, E>::load(w + c, wv);
        chunk<TI, E>::load(d + c, dv);
#pragma unroll
        for (int k = 0; k < E; k++) dv[k] += r * gv[k] * wv[k] - kk * xv[k];
        chunk<TI, E>::store(d + c, dv);
    }
}
/* dw[c] += sum_n dout[n,c] * inp[n,c] * rstd[n]: each block sums a slab of ROWS rows
 * for every column (coalesced) and adds it with one atomic per column. (A thread per
 * column over all N rows used only C threads: 25% of a 124M training step. 16-row slabs
 * with every thread busy were tried: 2.7x slower, the atomics contend.) */
enum { COLSUM_ROWS = 64 };
template <typename TI, int E>
__global__ void k_rmsnorm_bwd_w(float *dw, const TI *dout, const TI *inp, const float *rstd, int N, int C) {
    int n0 = blockIdx.x * COLSUM_ROWS, n1 = min(N, n0 + COLSUM_ROWS);
    for (int c = threadIdx.x * E; c < C; c += blockDim.x * E) {
        float acc[E] = {0}, gv[E], xv[E];
        for (int n = n0; n < n1; n++) {
            chunk<TI, E>::load(dout + (size_t)n * C + c, gv);
            chunk<TI, E>::load(inp + (size_t)n * C + c, xv);
            float r = rstd[n];
#pragma unroll
            for (int k = 0; k < E; k++) acc[k] += gv[k] * xv[k] * r;
        }
#pragma unroll
        for (int k = 0; k < E; k++) atomicAdd(&dw[c + k], acc[k]);
    }
}
/* threads of a row block: about one per E-element chunk, a multiple of 32, at most 512 */
static unsigned row_threads(int C, int vec) {
    int n = vec ? C / 8 : C;
    return n >= 512 ? 512 : n >= 256 ? 256 : n >= 128 ? 128 : n >= 64 ? 64 : 32;
}
/* rows of C elements: vectorized when C is a multiple of 8 and the bases are aligned */
#define LAUNCH_ROWS(kernel, vec, grid, threads, ...)                                                                 \
    do {                                                                                                             \
        if (vec) kernel<TI, 8><<<grid, threads>>>(__VA_ARGS__);                                                      \
        else kernel<TI, 1><<<grid, threads>>>(__VA_ARGS__);                                                          \
    } while (0)
template <typename TI>
static void cu_rmsnorm_fwd(void *out, float *rstd, const void *inp, const void *w, int N, int C, float eps) {
    PROFILE("rmsnorm_fwd");
    int v = vec_ok((size_t)C, out, inp, w);
    LAUNCH_ROWS(k_rmsnorm_fwd, v, N, row_threads(C, v), (TI *)out, rstd, (const TI *)inp, (const TI *)w, C, eps);
    check_launch("rmsnorm_fwd");
}
template <typename TI>
static void cu_rmsnorm_bwd(void *dinp, float *dw, const void *dout, const void *inp, const void *w, const float *rstd,
                           int N, int C) {
    PROFILE("rmsnorm_bwd");
    if (dinp) {
        int v = vec_ok((size_t)C, dinp, dout, inp, w);
        LAUNCH_ROWS(k_rmsnorm_bwd_inp, v, N, row_threads(C, v), (TI *)dinp, (const TI *)dout, (const TI *)inp,
                    (const TI *)w, rstd, C);
        check_launch("rmsnorm_bwd");
    }
    if (dw) {
        LAUNCH_ROWS(k_rmsnorm_bwd_w, vec_ok((size_t)C, dout, inp), blocks(N, COLSUM_ROWS), 256, dw, (const TI *)dout,
                    (const TI *)inp, rstd, N, C);
        check_launch("rmsnorm_bwd_w");
    }
}

/* ---- matmul: cuBLASLt, row-major through the transposed (column-major) view --------------
 * Plans (descriptors, layouts, the heuristic's algorithm) are cached by shape, types
 * and pointer alignment: building one costs far more than running a small GEMM. */

static void *g_lt_ws;
enum { LT_WS_BYTES = 32 << 20, LT_PLANS = 128 };
struct lt_key {
    int ta, tb, m, n, k, lda, ldb, ldc, ab_type, c_type, compute, bias, align;
};
/* (Timing the heuristic's first 8 algorithms on real calls and keeping the fastest was
 * tried: no row gained, 124m 345k -> 338k tok/s, 1b 51.4k -> 50.9k; the heuristic's first
 * is kept.) */
struct lt_plan {
    lt_key key;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
    lma_cuda_prof_acc prof;
};
static lt_plan g_plans[LT_PLANS];
static int g_nplans;

/* the GEMM table of the profile: time and rate per plan */
static void prof_gemm_report(void) {
    int any = 0;
    for (int i = 0; i < g_nplans; i++) {
        const lt_plan *p = &g_plans[i];
        if (!p->prof.calls) continue;
        if (!any++) fprintf(stderr, "[lmadapt] cuBLASLt GEMMs (column-major m n k, op A B, types):\n");
        double fl = 2.0 * p->key.m * p->key.n * p->key.k * p->prof.calls;
        fprintf(stderr, "  %6d %6d %6d  %c%c %s%s  %6ld calls %9.2f ms %6.0f TFLOP/s\n", p->key.m, p->key.n,
                p->key.k, p->key.ta == CUBLAS_OP_N ? 'N' : 'T', p->key.tb == CUBLAS_OP_N ? 'N' : 'T',
                p->key.ab_type == CUDA_R_16BF ? "bf16" : "f32", p->key.c_type == CUDA_R_32F ? "->f32" : "",
                p->prof.calls, p->prof.ms, p->prof.ms > 0 ? fl / p->prof.ms / 1e9 : 0.0);
    }
}

static int ptr_align(const void *p) {
    uintptr_t u = (uintptr_t)p;
    int a = 256;
    while (a > 2 && (u % (uintptr_t)a)) a >>= 1;
    return a;
}

static void lt_plan_destroy(lt_plan *p) {
    cublasLtMatmulDescDestroy(p->op);
    cublasLtMatrixLayoutDestroy(p->a); cublasLtMatrixLayoutDestroy(p->b); cublasLtMatrixLayoutDestroy(p->c);
}

static lt_plan *lt_get(const lt_key &k) {
    for (int i = 0; i < g_nplans; i++)
        if (!memcmp(&g_plans[i].key, &k, sizeof k)) return &g_plans[i];
    lt_plan *p = g_nplans < LT_PLANS ? &g_plans[g_nplans] : &g_plans[LT_PLANS - 1]; /* full: reuse the last slot */
    if (g_nplans == LT_PLANS) lt_plan_destroy(p);
    else g_nplans++;
    memset(p, 0, sizeof *p);
    p->key = k;
    cublasOperation_t ta = (cublasOperation_t)k.ta, tb = (cublasOperation_t)k.tb;
    cublasLtMatmulDescCreate(&p->op, (cublasComputeType_t)k.compute, CUDA_R_32F);
    cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    if (k.bias) {
        cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
        cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep);
    }
    cublasLtMatrixLayoutCreate(&p->a, (cudaDataType)k.ab_type, ta == CUBLAS_OP_N ? k.m : k.k, ta == CUBLAS_OP_N ? k.k : k.m, k.lda);
    cublasLtMatrixLayoutCreate(&p->b, (cudaDataType)k.ab_type, tb == CUBLAS_OP_N ? k.k : k.n, tb == CUBLAS_OP_N ? k.n : k.k, k.ldb);
    cublasLtMatrixLayoutCreate(&p->c, (cudaDataType)k.c_type, k.m, k.n, k.ldc);
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulPreferenceCreate(&pref);
    size_t ws = LT_WS_BYTES;
    uint32_t al = (uint32_t)k.align;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al);
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(g_lt, p->op, p->a, p->b, p->c, p->c, pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (s != CUBLAS_STATUS_SUCCESS || !found) {
        fail(LMA_ERR_INTERNAL, "cublasLt: no algorithm for a %dx%dx%d GEMM (status %d)", k.m, k.n, k.k, (int)s);
        g_nplans--;
        return NULL;
    }
    p->algo = res.algo;
    return p;
}

/* C (m,n) = alpha op(A) op(B) + beta C, column-major, fp32 accumulation; bias (m) added
 * when given (same type as C). ab: CUDA type of A and B; c: of C. */
static void lt_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A, int lda,
                    const void *Bm, int ldb, void *C, int ldc, float beta, const void *bias, cudaDataType ab,
                    cudaDataType ct, const char *what) {
    if (!m || !n) return;
    int compute = ab == CUDA_R_32F && ct == CUDA_R_32F ? (g_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F)
                                                       : CUBLAS_COMPUTE_32F;
    int al = ptr_align(A);
    if (ptr_align(Bm) < al) al = ptr_align(Bm);
    if (ptr_align(C) < al) al = ptr_align(C);
    lt_key key = {(int)ta, (int)tb, m, n, k, lda, ldb, ldc, (int)ab, (int)ct, compute, bias != NULL, al};
    lt_plan *p = lt_get(key);
    if (!p) return;
    if (bias) cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
    float alpha = 1.0f;
    lma_cuda_prof_scope ps(lma_cuda_prof_on() ? &p->prof : NULL);
    check_blas(cublasLtMatmul(g_lt, p->op, &alpha, A, p->a, Bm, p->b, &beta, C, p->c, C, p->c, &p->algo, g_lt_ws,
                              LT_WS_BYTES, 0), what);
}

template <typename TI> static cudaDataType act_type() { return sizeof(TI) == 2 ? CUDA_R_16BF : CUDA_R_32F; }

template <typename TI>
__global__ void k_bias_bwd(float *dbias, const TI *dout, int N, int OC) {
    int n0 = blockIdx.x * COLSUM_ROWS, n1 = min(N, n0 + COLSUM_ROWS); /* a slab of rows per block */
    for (int o = threadIdx.x; o < OC; o += blockDim.x) {
        float acc = 0;
        for (int n = n0; n < n1; n++) acc += ld(dout + (size_t)n * OC + o);
        atomicAdd(&dbias[o], acc);
    }
}
template <typename TI>
static void cu_matmul_fwd(void *out, const void *inp, const void *w, const void *bias, int N, int C, int OC) {
    PROFILE("matmul_fwd");
    /* out^T (OC,N) = W (OC,C) . inp^T (C,N) in column-major terms, + bias per row of out^T */
    lt_gemm(CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, w, C, inp, C, out, OC, 0.0f, bias, act_type<TI>(), act_type<TI>(),
            "matmul_fwd");
}
template <typename TI>
static void cu_matmul_fwd_add(void *out, const void *inp, const void *w, int N, int C, int OC) {
    PROFILE("matmul_fwd_add");
    lt_gemm(CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, w, C, inp, C, out, OC, 1.0f, NULL, act_type<TI>(), act_type<TI>(),
            "matmul_fwd_add");
}
template <typename TI>
static void cu_matmul_bwd(void *dinp, float *dw, float *dbias, const void *dout, const void *inp, const void *w, int N,
                          int C, int OC) {
    PROFILE("matmul_bwd");
    if (dinp) /* dinp^T (C,N) += W^T (C,OC) . dout^T (OC,N) */
        lt_gemm(CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, w, C, dout, OC, dinp, C, 1.0f, NULL, act_type<TI>(), act_type<TI>(),
                "matmul_bwd dinp");
    if (dw) /* dW^T (C,OC) += inp^T (C,N) . dout (N,OC), fp32 */
        lt_gemm(CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, inp, C, dout, OC, dw, C, 1.0f, NULL, act_type<TI>(), CUDA_R_32F,
                "matmul_bwd dw");
    if (dbias) {
        k_bias_bwd<TI><<<blocks(N, COLSUM_ROWS), 256>>>(dbias, (const TI *)dout, N, OC);
        check_launch("bias_bwd");
    }
}

/* ---- NF4 base weights (QLoRA): dequantized whole into a scratch (one projection at a
 * time: the largest is 11008 x 4096 for Llama-2-7B, 90 MB in bf16), then the GEMMs above */

static lma_cuda_buf g_deq;
static void *deq_scratch(size_t bytes) {
    void *p = lma_cuda_grow(&g_deq, bytes);
    if (!p) fail(LMA_ERR_NOMEM, "cuda: out of memory for the NF4 dequant scratch (%zu bytes)", bytes);
    return p;
}
template <typename TI>
static void cu_matmul_nf4_fwd(void *out, const void *inp, const struct lma_nf4_tensor *w, const void *bias, int N,
                              int C, int OC) {
    void *wd = deq_scratch((size_t)OC * C * sizeof(TI));
    if (!wd) return;
    check(lma_cuda_nf4_dequant(wd, w, sizeof(TI) == 2), "nf4 dequant");
    cu_matmul_fwd<TI>(out, inp, wd, bias, N, C, OC);
}
template <typename TI>
static void cu_matmul_nf4_bwd(void *dinp, const void *dout, const struct lma_nf4_tensor *w, int N, int C, int OC) {
    void *wd = deq_scratch((size_t)OC * C * sizeof(TI));
    if (!wd) return;
    check(lma_cuda_nf4_dequant(wd, w, sizeof(TI) == 2), "nf4 dequant");
    cu_matmul_bwd<TI>(dinp, NULL, NULL, dout, NULL, wd, N, C, OC);
}

/* ---- rope (HF half split) ------------------------------------------------------------ */

/* a thread rotates E pairs (x[j..j+E), x[j+half..j+half+E)) of one head */
template <typename TI, int E>
__global__ void k_rope(TI *out, const TI *inp, const int32_t *pos, const float *inv_freq, int N, int NH, int HD,
                       int backward) {
    int half = HD / 2;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * NH * (half / E)) return;
    int j = (int)(i % (half / E)) * E;
    size_t row = i / (half / E), n = row / NH;
    const TI *x = inp + row * HD;
    TI *o = out + row * HD;
    float x1[E], x2[E], o1[E], o2[E], p = (float)pos[n];
    chunk<TI, E>::load(x + j, x1);
    chunk<TI, E>::load(x + j + half, x2);
    if (backward) {
        chunk<TI, E>::load(o + j, o1);
        chunk<TI, E>::load(o + j + half, o2);
    }
#pragma unroll
    for (int k = 0; k < E; k++) {
        float c, s;
        sincosf(p * inv_freq[j + k], &s, &c);
        if (!backward) { o1[k] = x1[k] * c - x2[k] * s; o2[k] = x2[k] * c + x1[k] * s; }
        else { o1[k] += x1[k] * c + x2[k] * s; o2[k] += x2[k] * c - x1[k] * s; }
    }
    chunk<TI, E>::store(o + j, o1);
    chunk<TI, E>::store(o + j + half, o2);
}
template <typename TI>
static void rope_launch(void *out, const void *inp, const int32_t *pos, const float *inv_freq, int N, int NH, int HD,
                        int backward) {
    size_t pairs = (size_t)N * NH * (HD / 2);
    if ((HD / 2) % 8 == 0 && vec_ok(8, out, inp))
        k_rope<TI, 8><<<blocks(pairs / 8, 256), 256>>>((TI *)out, (const TI *)inp, pos, inv_freq, N, NH, HD, backward);
    else
        k_rope<TI, 1><<<blocks(pairs, 256), 256>>>((TI *)out, (const TI *)inp, pos, inv_freq, N, NH, HD, backward);
}
template <typename TI>
static void cu_rope_fwd(void *out, const void *inp, const int32_t *pos, const float *inv_freq, int N, int NH, int HD) {
    PROFILE("rope_fwd");
    rope_launch<TI>(out, inp, pos, inv_freq, N, NH, HD, 0);
    check_launch("rope_fwd");
}
template <typename TI>
static void cu_rope_bwd(void *dinp, const void *dout, const int32_t *pos, const float *inv_freq, int N, int NH, int HD) {
    PROFILE("rope_bwd");
    rope_launch<TI>(dinp, dout, pos, inv_freq, N, NH, HD, 1);
    check_launch("rope_bwd");
}

/* ---- attention: the naive kernels (oracle), probabilities kept ------------------------------- */

__device__ bool visible(const int32_t *seg, int b, int T, int t, int s) {
    return s <= t && (!seg || seg[(size_t)b * T + s] == seg[(size_t)b * T + t]);
}

/* one block per (b, h, t): scores -> softmax row in att -> out = P V */
template <typename TI>
__global__ void k_attention_fwd(TI *out, float *att, const TI *q, const TI *k, const TI *v, const int32_t *seg, int T,
                                int NH, int NKV, int HD, float scale) {
    int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z, kh = h / (NH / NKV);
    const TI *qt = q + (((size_t)b * T + t) * NH + h) * HD;
    float *p = att + (((size_t)b * NH + h) * T + t) * T;
    float mx = -INFINITY;
    for (int s = threadIdx.x; s < T; s += blockDim.x) {
        float d = -INFINITY;
        if (visible(seg, b, T, t, s)) {
            const TI *ks = k + (((size_t)b * T + s) * NKV + kh) * HD;
            d = 0;
            for (int i = 0; i < HD; i++) d += ld(qt + i) * ld(ks + i);
            d *= scale;
        }
        p[s] = d;
        mx = fmaxf(mx, d);
    }
    mx = block_max(mx);
    float sum = 0;
    for (int s = threadIdx.x; s < T; s += blockDim.x) {
        float e = p[s] == -INFINITY ? 0.0f : __expf(p[s] - mx);
        p[s] = e;
        sum += e;
    }
    sum = block_sum(sum);
    float inv = 1.0f / sum;
    for (int s = threadIdx.x; s < T; s += blockDim.x) p[s] *= inv;
    __syncthreads();
    TI *ot = out + (((size_t)b * T + t) * NH + h) * HD;
    for (int i = threadIdx.x; i < HD; i += blockDim.x) {
        float acc = 0;
        for (int s = 0; s <= t; s++) acc += p[s] * ld(v + (((size_t)b * T + s) * NKV + kh) * HD + i);
        st(ot + i, acc);
    }
}

/* one block per (b, h, t): dp_s = do.v_s; dz = p (dp - sum p dp); dq += scale dz K; dk_s += scale dz_s q;
 * dv_s += p_s do (fp32 atomics: query rows and grouped heads share k and v) */
template <typename TI>
__global__ void k_attention_bwd(float *dq, float *dk, float *dv, const TI *dout, const float *att, const TI *q,
                                const TI *k, const TI *v, int T, int NH, int NKV, int HD, float scale) {
    int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z, kh = h / (NH / NKV);
    const float *p = att + (((size_t)b * NH + h) * T + t) * T;
    const TI *go = dout + (((size_t)b * T + t) * NH + h) * HD, *qt = q + (((size_t)b * T + t) * NH + h) * HD;
    extern __shared__ float dz[]; /* (t+1) */
    float dot = 0;
    for (int s = threadIdx.x; s <= t; s += blockDim.x) {
        float d = 0;
        if (p[s] != 0.0f) {
            const TI *vs = v + (((size_t)b * T + s) * NKV + kh) * HD;
            for (int i = 0; i < HD; i++) d += ld(go + i) * ld(vs + i);
        }
        dz[s] = d;
        dot += p[s] * d;
    }
    dot = block_sum(dot);
    for (int s = threadIdx.x; s <= t; s += blockDim.x) dz[s] = p[s] * (dz[s] - dot) * scale;
    __syncthreads();
    if (dq) {
        float *dqt = dq + (((size_t)b * T + t) * NH + h) * HD;
        for (int i = threadIdx.x; i < HD; i += blockDim.x) {
            float acc = 0;
            for (int s = 0; s <= t; s++) acc += dz[s] * ld(k + (((size_t)b * T + s) * NKV + kh) * HD + i);
            dqt[i] += acc;
        }
    }
    for (int s = 0; s <= t; s++) {
        if (p[s] == 0.0f) continue;
        size_t o = (((size_t)b * T + s) * NKV + kh) * HD;
        for (int i = threadIdx.x; i < HD; i += blockDim.x) {
            if (dk) atomicAdd(&dk[o + i], dz[s] * ld(qt + i));
            if (dv) atomicAdd(&dv[o + i], p[s] * ld(go + i));
        }
    }
}

/* fp32 scratch, grown on demand (attention backward of the oracles, bf16 gradients) */
static lma_cuda_buf g_scratch;
static float *scratch(size_t n) {
    float *p = (float *)lma_cuda_grow(&g_scratch, n * sizeof(float));
    if (!p) fail(LMA_ERR_NOMEM, "cuda: out of memory for attention scratch (%zu floats)", n);
    return p;
}
template <typename TI>
__global__ void k_add_f32(TI *dst, const float *src, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) st(dst + i, ld(dst + i) + src[i]);
}

template <typename TI>
static void naive_attention_fwd(TI *out, float *saved, const TI *q, const TI *k, const TI *v, const int32_t *seg, int B,
                                int T, int NH, int NKV, int HD, float scale) {
    dim3 grid(T, NH, B);
    k_attention_fwd<TI><<<grid, 128>>>(out, saved, q, k, v, seg, T, NH, NKV, HD, scale);
    check_launch("attention_fwd");
}
/* fp32 gradients accumulate in place; bf16 ones through an fp32 scratch */
template <typename TI>
static void naive_attention_bwd(TI *dq, TI *dk, TI *dv, const TI *dout, const float *saved, const TI *q, const TI *k,
                                const TI *v, int B, int T, int NH, int NKV, int HD, float scale) {
    dim3 grid(T, NH, B);
    size_t shm = (size_t)(T + 8) * sizeof(float), nq = (size_t)B * T * NH * HD, nk = (size_t)B * T * NKV * HD;
    if (shm > 48 * 1024) cudaFuncSetAttribute(k_attention_bwd<TI>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
    float *fq = (float *)dq, *fk = (float *)dk, *fv = (float *)dv;
    if (sizeof(TI) == 2) {
        float *s = scratch(nq + 2 * nk);
        if (!s) return;
        cudaMemset(s, 0, (nq + 2 * nk) * sizeof(float));
        fq = dq ? s : NULL; fk = dk ? s + nq : NULL; fv = dv ? s + nq + nk : NULL;
    }
    k_attention_bwd<TI><<<grid, 128, shm>>>(fq, fk, fv, dout, saved, q, k, v, T, NH, NKV, HD, scale);
    check_launch("attention_bwd");
    if (sizeof(TI) == 2) {
        if (dq) k_add_f32<TI><<<blocks(nq, 256), 256>>>(dq, fq, nq);
        if (dk) k_add_f32<TI><<<blocks(nk, 256), 256>>>(dk, fk, nk);
        if (dv) k_add_f32<TI><<<blocks(nk, 256), 256>>>(dv, fv, nk);
        check_launch("attention_bwd add");
    }
}

/* ---- attention through batched GEMMs (fp32 table, lma_cuda_attention_naive = 2; and the
 * fp32 fallback for head dims flash attention does not take) --------------------------------
 * For each batch row b and each offset g inside a GQA group, one strided-batched GEMM
 * runs over the NKV kv heads (query head h = kh*group + g):
 *   S = scale Q K^T  ->  P = masked softmax(S) (in place, in `saved`)  ->  O = P V
 * backward: dP = dO V^T; dS = P (dP - rowsum(P dP)) scale; dQ += dS K; dK += dS^T Q;
 * dV += P^T dO. Row-major matrices are passed to column-major cuBLAS transposed. */

/* GEMM precision of the fp32 table: exact fp32 (PyTorch's default), or TF32 tensor cores
 * (fast, ~1e-3 relative) when set to 1 or LMA_CUDA_TF32=1 (the tests compare both). */
extern "C" __attribute__((visibility("default"))) void lma_cuda_plugin_set_tf32(int on) {
    g_tf32 = on;
    if (g_blas) cublasSetMathMode(g_blas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH);
}

/* P = masked softmax of one row of S (in place); one block per (b, h, t) */
__global__ void k_masked_softmax(float *att, const int32_t *seg, int T, int NH) {
    int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    float *p = att + (((size_t)b * NH + h) * T + t) * T;
    float mx = -INFINITY;
    for (int s = threadIdx.x; s < T; s += blockDim.x)
        if (visible(seg, b, T, t, s)) mx = fmaxf(mx, p[s]);
    mx = block_max(mx);
    float sum = 0;
    for (int s = threadIdx.x; s < T; s += blockDim.x) {
        float e = visible(seg, b, T, t, s) ? __expf(p[s] - mx) : 0.0f;
        p[s] = e;
        sum += e;
    }
    sum = block_sum(sum);
    float inv = 1.0f / sum;
    for (int s = threadIdx.x; s < T; s += blockDim.x) p[s] *= inv;
}

/* dS = P (dP - rowsum(P dP)) * scale, in place in dP; rows of one batch row b: grid (T, NH) */
__global__ void k_softmax_bwd(float *dp, const float *att, int T, int NH, int b, float scale) {
    int t = blockIdx.x, h = blockIdx.y;
    const float *p = att + (((size_t)b * NH + h) * T + t) * T;
    float *d = dp + ((size_t)h * T + t) * T;
    float dot = 0;
    for (int s = threadIdx.x; s <= t; s += blockDim.x) dot += p[s] * d[s];
    dot = block_sum(dot);
    for (int s = threadIdx.x; s < T; s += blockDim.x) d[s] = s <= t ? p[s] * (d[s] - dot) * scale : 0.0f;
}

static void gemm_batched(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float *A,
                         int lda, long long sa, const float *Bm, int ldb, long long sb, float beta, float *C, int ldc,
                         long long sc, int batch, const char *what) {
    check_blas(cublasSgemmStridedBatched(g_blas, ta, tb, m, n, k, &alpha, A, lda, sa, Bm, ldb, sb, &beta, C, ldc, sc,
                                         batch), what);
}

static void gemm_attention_fwd(float *out, float *saved, const float *q, const float *k, const float *v,
                               const int32_t *seg, int B, int T, int NH, int NKV, int HD, float scale) {
    int G = NH / NKV, ldq = NH * HD, ldk = NKV * HD;
    for (int b = 0; b < B; b++)
        for (int g = 0; g < G; g++) {
            const float *qb = q + (size_t)b * T * ldq + (size_t)g * HD, *kb = k + (size_t)b * T * ldk;
            float *sb = saved + ((size_t)b * NH + g) * T * T;
            /* S (T,T) = scale Q K^T */
            gemm_batched(CUBLAS_OP_T, CUBLAS_OP_N, T, T, HD, scale, kb, ldk, HD, qb, ldq, (long long)G * HD, 0.0f, sb,
                         T, (long long)G * T * T, NKV, "attention S");
        }
    dim3 grid(T, NH, B);
    k_masked_softmax<<<grid, 256>>>(saved, seg, T, NH);
    check_launch("attention softmax");
    for (int b = 0; b < B; b++)
        for (int g = 0; g < G; g++) {
            const float *vb = v + (size_t)b * T * ldk, *pb = saved + ((size_t)b * NH + g) * T * T;
            float *ob = out + (size_t)b * T * ldq + (size_t)g * HD;
            /* O (T,HD) = P V */
            gemm_batched(CUBLAS_OP_N, CUBLAS_OP_N, HD, T, T, 1.0f, vb, ldk, HD, pb, T, (long long)G * T * T, 0.0f, ob,
                         ldq, (long long)G * HD, NKV, "attention O");
        }
}

static void gemm_attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *saved, const float *q,
                               const float *k, const float *v, int B, int T, int NH, int NKV, int HD, float scale) {
    int G = NH / NKV, ldq = NH * HD, ldk = NKV * HD;
    float *dp = scratch((size_t)NH * T * T);
    if (!dp) return;
    for (int b = 0; b < B; b++) {
        const float *qb = q + (size_t)b * T * ldq, *kb = k + (size_t)b * T * ldk, *vb = v + (size_t)b * T * ldk;
        const float *gob = dout + (size_t)b * T * ldq, *pb = saved + (size_t)b * NH * T * T;
        /* dP (T,T) = dO V^T for every head of this row, in head order: dp[h] */
        for (int g = 0; g < G; g++)
            gemm_batched(CUBLAS_OP_T, CUBLAS_OP_N, T, T, HD, 1.0f, vb, ldk, HD, gob + (size_t)g * HD, ldq,
                         (long long)G * HD, 0.0f, dp + (size_t)g * T * T, T, (long long)G * T * T, NKV, "attention dP");
        dim3 grid(T, NH);
        k_softmax_bwd<<<grid, 256>>>(dp, saved, T, NH, b, scale);
        check_launch("attention softmax bwd");
        for (int g = 0; g < G; g++) {
            const float *ds = dp + (size_t)g * T * T, *pg = pb + (size_t)g * T * T;
            long long sS = (long long)G * T * T, sQ = (long long)G * HD;
            if (dq) /* dQ (T,HD) += dS K */
                gemm_batched(CUBLAS_OP_N, CUBLAS_OP_N, HD, T, T, 1.0f, kb, ldk, HD, ds, T, sS, 1.0f,
                             dq + (size_t)b * T * ldq + (size_t)g * HD, ldq, sQ, NKV, "attention dQ");
            if (dk) /* dK (T,HD) += dS^T Q */
                gemm_batched(CUBLAS_OP_N, CUBLAS_OP_T, HD, T, T, 1.0f, qb + (size_t)g * HD, ldq, sQ, ds, T, sS, 1.0f,
                             dk + (size_t)b * T * ldk, ldk, HD, NKV, "attention dK");
            if (dv) /* dV (T,HD) += P^T dO */
                gemm_batched(CUBLAS_OP_N, CUBLAS_OP_T, HD, T, T, 1.0f, gob + (size_t)g * HD, ldq, sQ, pg, T, sS, 1.0f,
                             dv + (size_t)b * T * ldk, ldk, HD, NKV, "attention dV");
        }
    }
}

/* which path runs: 0 flash, 1 naive, 2 batched GEMMs, 3 cuDNN's flash attention (bf16, no
 * segment ids; it falls back to 0 where cuDNN has no engine for the shape) */
static int attention_path(int HD, int bf, const int32_t *seg) {
    int mode = attention_mode;
    if (mode == 1) return 1;
    if (mode == 0 && bf && !seg && lma_cuda_flash_supported(HD) && lma_cuda_sdpa_usable(HD)) return 3;
    /* cuda-fp32 is exact fp32 unless TF32 is on: the flash kernel's tensor-core products are not */
    if (mode == 0 && !bf && !g_tf32) return 2;
    if ((mode == 0 || mode == 3) && lma_cuda_flash_supported(HD)) return 0;
    return bf ? 1 : 2;
}
template <typename TI> static size_t cu_attention_saved_floats(int B, int T, int NH, int HD) {
    /* the lse per query row for flash attention, else the probabilities */
    int path = attention_path(HD, sizeof(TI) == 2, NULL);
    return path == 0 || path == 3 ? (size_t)B * NH * T : (size_t)B * NH * T * T;
}
template <typename TI>
static void cu_attention_fwd(void *out, float *saved, const void *q, const void *k, const void *v, const int32_t *seg,
                             int B, int T, int NH, int NKV, int HD, float scale) {
    PROFILE("attention_fwd");
    int bf = sizeof(TI) == 2;
    switch (attention_path(HD, bf, seg)) {
    case 3:
        if (!lma_cuda_sdpa_fwd(out, saved, q, k, v, B, T, NH, NKV, HD, scale)) break;
        [[fallthrough]]; /* no cuDNN engine for this shape */
    case 0: check(lma_cuda_flash_fwd(out, saved, q, k, v, seg, B, T, NH, NKV, HD, scale, bf), "flash attention fwd"); break;
    case 1: naive_attention_fwd<TI>((TI *)out, saved, (const TI *)q, (const TI *)k, (const TI *)v, seg, B, T, NH, NKV, HD, scale); break;
    default: gemm_attention_fwd((float *)out, saved, (const float *)q, (const float *)k, (const float *)v, seg, B, T, NH, NKV, HD, scale);
    }
}
template <typename TI>
static void cu_attention_bwd(void *dq, void *dk, void *dv, const void *dout, const void *out, const float *saved,
                             const void *q, const void *k, const void *v, const int32_t *seg, int B, int T, int NH,
                             int NKV, int HD, float scale) {
    PROFILE("attention_bwd");
    int bf = sizeof(TI) == 2;
    switch (attention_path(HD, bf, seg)) {
    case 3:
        if (!lma_cuda_sdpa_bwd(dq, dk, dv, dout, out, saved, q, k, v, B, T, NH, NKV, HD, scale)) break;
        [[fallthrough]];
    case 0:
        check(lma_cuda_flash_bwd(dq, dk, dv, dout, out, saved, q, k, v, seg, B, T, NH, NKV, HD, scale, bf),
              "flash attention bwd");
        break;
    case 1: /* the saved probabilities are zero where the mask hides a key */
        naive_attention_bwd<TI>((TI *)dq, (TI *)dk, (TI *)dv, (const TI *)dout, saved, (const TI *)q, (const TI *)k,
                                (const TI *)v, B, T, NH, NKV, HD, scale);
        break;
    default:
        gemm_attention_bwd((float *)dq, (float *)dk, (float *)dv, (const float *)dout, saved, (const float *)q,
                           (const float *)k, (const float *)v, B, T, NH, NKV, HD, scale);
    }
}

/* one block per (t, h) of the new tokens */
template <typename TI>
__global__ void k_attention_cached(TI *out, const TI *q, const TI *kc, const TI *vc, int past, int NH, int NKV, int HD,
                                   float scale) {
    extern __shared__ float p[];
    int t = blockIdx.x, h = blockIdx.y, kh = h / (NH / NKV), last = past + t;
    const TI *qt = q + ((size_t)t * NH + h) * HD;
    float mx = -INFINITY;
    for (int s = threadIdx.x; s <= last; s += blockDim.x) {
        const TI *ks = kc + ((size_t)s * NKV + kh) * HD;
        float d = 0;
        for (int i = 0; i < HD; i++) d += ld(qt + i) * ld(ks + i);
        p[s] = d * scale;
        mx = fmaxf(mx, p[s]);
    }
    mx = block_max(mx);
    float sum = 0;
    for (int s = threadIdx.x; s <= last; s += blockDim.x) { p[s] = __expf(p[s] - mx); sum += p[s]; }
    sum = block_sum(sum);
    __syncthreads();
    float inv = 1.0f / sum;
    TI *ot = out + ((size_t)t * NH + h) * HD;
    for (int i = threadIdx.x; i < HD; i += blockDim.x) {
        float acc = 0;
        for (int s = 0; s <= last; s++) acc += p[s] * ld(vc + ((size_t)s * NKV + kh) * HD + i);
        st(ot + i, acc * inv);
    }
}
template <typename TI>
static void cu_attention_cached(void *out, const void *q, const void *kc, const void *vc, int past, int n, int NH,
                                int NKV, int HD, float scale) {
    PROFILE("attention_cached");
    size_t shm = (size_t)(past + n + 8) * sizeof(float);
    if (shm > 48 * 1024) cudaFuncSetAttribute(k_attention_cached<TI>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
    dim3 grid(n, NH);
    k_attention_cached<TI><<<grid, 128, shm>>>((TI *)out, (const TI *)q, (const TI *)kc, (const TI *)vc, past, NH, NKV,
                                               HD, scale);
    check_launch("attention_cached");
}

/* ---- elementwise (E elements per thread: chunk, vec_ok above) -------------------------- */

/* out = op(a, b) elementwise, in fp32: add, mul and swiglu_fwd (silu(gate) * up); the op
 * (an empty struct) is deduced from the last argument */
struct op_add { __device__ float operator()(float x, float y) const { return x + y; } };
struct op_mul { __device__ float operator()(float x, float y) const { return x * y; } };
struct op_swiglu { __device__ float operator()(float x, float y) const { return x / (1.0f + __expf(-x)) * y; } };
template <typename TI, int E, typename OP>
__global__ void k_binary(TI *out, const TI *a, const TI *b, size_t n, OP op) {
    EW_INDEX(E);
    float x[E], y[E];
    chunk<TI, E>::load(a + i, x);
    chunk<TI, E>::load(b + i, y);
#pragma unroll
    for (int k = 0; k < E; k++) x[k] = op(x[k], y[k]);
    chunk<TI, E>::store(out + i, x);
}
template <typename TI, int E>
__global__ void k_swiglu_bwd(TI *dg, TI *du, const TI *d, const TI *g, const TI *u, size_t n) {
    EW_INDEX(E);
    float x[E], di[E], ui[E], a[E];
    chunk<TI, E>::load(g + i, x);
    chunk<TI, E>::load(d + i, di);
    chunk<TI, E>::load(u + i, ui);
    if (dg) {
        chunk<TI, E>::load(dg + i, a);
#pragma unroll
        for (int k = 0; k < E; k++) {
            float sg = 1.0f / (1.0f + __expf(-x[k]));
            a[k] += di[k] * ui[k] * sg * (1.0f + x[k] * (1.0f - sg));
        }
        chunk<TI, E>::store(dg + i, a);
    }
    if (du) {
        chunk<TI, E>::load(du + i, a);
#pragma unroll
        for (int k = 0; k < E; k++) a[k] += di[k] * (x[k] / (1.0f + __expf(-x[k])));
        chunk<TI, E>::store(du + i, a);
    }
}
template <typename TI, int E>
__global__ void k_scale(TI *x, float s, size_t n) {
    EW_INDEX(E);
    float v[E];
    chunk<TI, E>::load(x + i, v);
#pragma unroll
    for (int k = 0; k < E; k++) v[k] *= s;
    chunk<TI, E>::store(x + i, v);
}
template <typename TI> static void cu_scale(void *x, float a, size_t n) {
    PROFILE("scale");
    LAUNCH_EW(k_scale, vec_ok(n, x), n, (TI *)x, a, n);
    check_launch("scale");
}
template <typename TI> static void cu_mul(void *out, const void *a, const void *b, size_t n) {
    PROFILE("mul");
    LAUNCH_EW(k_binary, vec_ok(n, out, a, b), n, (TI *)out, (const TI *)a, (const TI *)b, n, op_mul());
    check_launch("mul");
}
template <typename TI> static void cu_swiglu_fwd(void *out, const void *g, const void *u, size_t n) {
    PROFILE("swiglu_fwd");
    LAUNCH_EW(k_binary, vec_ok(n, out, g, u), n, (TI *)out, (const TI *)g, (const TI *)u, n, op_swiglu());
    check_launch("swiglu_fwd");
}
template <typename TI>
static void cu_swiglu_bwd(void *dg, void *du, const void *d, const void *g, const void *u, size_t n) {
    PROFILE("swiglu_bwd");
    LAUNCH_EW(k_swiglu_bwd, vec_ok(n, dg, du, d, g, u), n, (TI *)dg, (TI *)du, (const TI *)d, (const TI *)g,
              (const TI *)u, n);
    check_launch("swiglu_bwd");
}
template <typename TI> static void cu_add(void *out, const void *a, const void *b, size_t n) {
    PROFILE("add");
    LAUNCH_EW(k_binary, vec_ok(n, out, a, b), n, (TI *)out, (const TI *)a, (const TI *)b, n, op_add());
    check_launch("add");
}

/* ---- cross-entropy: one block per row, online max/sum (one read), then the gradient ----------- */

template <typename TI, int E>
__global__ void k_cross_entropy(float *losses, TI *dlogits, const TI *logits, const int32_t *targets, int V,
                                float dscale) {
    __shared__ float sm[32], ss[32];
    size_t row = blockIdx.x;
    const TI *x = logits + row * V;
    int y = targets[row];
    if (y == LMA_IGNORE_INDEX) {
        if (threadIdx.x == 0) losses[row] = 0.0f;
        if (dlogits) for (int i = threadIdx.x; i < V; i += blockDim.x) st(dlogits + row * V + i, 0.0f);
        return;
    }
    float m = -INFINITY, s = 0.0f;
    for (int i = threadIdx.x * E; i < V; i += blockDim.x * E) { /* E at a time: their max, then the sum */
        float xv[E], mx = -INFINITY;
        chunk<TI, E>::load(x + i, xv);
#pragma unroll
        for (int k = 0; k < E; k++) mx = fmaxf(mx, xv[k]);
        if (mx > m) { s *= __expf(m - mx); m = mx; }
#pragma unroll
        for (int k = 0; k < E; k++) s += __expf(xv[k] - m);
    }
    /* combine (m, s) pairs: warp, then block */
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o), mm = fmaxf(m, m2);
        s = (m == -INFINITY ? 0.0f : s * __expf(m - mm)) + (m2 == -INFINITY ? 0.0f : s2 * __expf(m2 - mm));
        m = mm;
    }
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) { sm[w] = m; ss[w] = s; }
    __syncthreads();
    float M = -INFINITY, S = 0.0f;
    for (int j = 0; j < nw; j++) M = fmaxf(M, sm[j]);
    for (int j = 0; j < nw; j++) S += sm[j] == -INFINITY ? 0.0f : ss[j] * __expf(sm[j] - M);
    float lse = M + logf(S), xy = ld(x + y);
    __syncthreads();
    if (threadIdx.x == 0) losses[row] = lse - xy;
    if (dlogits)
        for (int i = threadIdx.x * E; i < V; i += blockDim.x * E) {
            float xv[E];
            chunk<TI, E>::load(x + i, xv);
#pragma unroll
            for (int k = 0; k < E; k++) xv[k] = (__expf(xv[k] - lse) - (i + k == y ? 1.0f : 0.0f)) * dscale;
            chunk<TI, E>::store(dlogits + row * V + i, xv);
        }
}
template <typename TI>
static void cu_cross_entropy(float *losses, void *dlogits, const void *logits, const int32_t *targets, int N, int V,
                             float dscale) {
    PROFILE("cross_entropy");
    if (vec_ok((size_t)V, dlogits, logits))
        k_cross_entropy<TI, 8><<<N, 512>>>(losses, (TI *)dlogits, (const TI *)logits, targets, V, dscale);
    else
        k_cross_entropy<TI, 1><<<N, 512>>>(losses, (TI *)dlogits, (const TI *)logits, targets, V, dscale);
    check_launch("cross_entropy");
}

/* ---- optimizer ------------------------------------------------------------------------- */

__device__ __forceinline__ float adamw1(float &p, float g, float &m, float &v, float lr, float b1, float b2,
                                        float eps, float wd, float bc1, float bc2s, float gs) {
    float gi = g * gs;
    m = fmaf(b1, m - gi, gi); /* torch lerp: m + (1-b1)(g - m) */
    v = fmaf(b2, v, (1.0f - b2) * gi * gi);
    float pi = p * (1.0f - lr * wd);
    float denom = sqrtf(v) / bc2s + eps;
    return p = pi - (lr / bc1) * m / denom;
}
/* E = 4: a thread updates 4 elements with 16-byte accesses (all pointers 16-byte aligned) */
template <typename TI, int E>
__global__ void k_adamw(float *p, const float *g, float *m, float *v, TI *pact, size_t n, float lr, float b1, float b2,
                        float eps, float wd, float bc1, float bc2s, float gs) {
    size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * E;
    if (i >= n) return;
    if constexpr (E == 4) {
        float4 P = *reinterpret_cast<float4 *>(p + i), G = *reinterpret_cast<const float4 *>(g + i);
        float4 M = *reinterpret_cast<float4 *>(m + i), V = *reinterpret_cast<float4 *>(v + i);
        adamw1(P.x, G.x, M.x, V.x, lr, b1, b2, eps, wd, bc1, bc2s, gs);
        adamw1(P.y, G.y, M.y, V.y, lr, b1, b2, eps, wd, bc1, bc2s, gs);
        adamw1(P.z, G.z, M.z, V.z, lr, b1, b2, eps, wd, bc1, bc2s, gs);
        adamw1(P.w, G.w, M.w, V.w, lr, b1, b2, eps, wd, bc1, bc2s, gs);
        *reinterpret_cast<float4 *>(p + i) = P;
        *reinterpret_cast<float4 *>(m + i) = M;
        *reinterpret_cast<float4 *>(v + i) = V;
        if (pact) { st(pact + i, P.x); st(pact + i + 1, P.y); st(pact + i + 2, P.z); st(pact + i + 3, P.w); }
    } else {
        float pi = adamw1(p[i], g[i], m[i], v[i], lr, b1, b2, eps, wd, bc1, bc2s, gs);
        if (pact) st(pact + i, pi);
    }
}
template <typename TI>
static void cu_adamw(float *p, const float *g, float *m, float *v, void *p_act, size_t n, float lr, float b1, float b2,
                     float eps, float wd, int t, float grad_scale) {
    PROFILE("adamw");
    float bc1 = 1.0f - powf(b1, (float)t), bc2s = sqrtf(1.0f - powf(b2, (float)t));
    TI *pa = p_act == (void *)p ? NULL : (TI *)p_act;
    if (n % 4 == 0 && !(((uintptr_t)p | (uintptr_t)g | (uintptr_t)m | (uintptr_t)v) & 15) &&
        !((uintptr_t)pa & (4 * sizeof(TI) - 1)))
        k_adamw<TI, 4><<<blocks(n / 4, 256), 256>>>(p, g, m, v, pa, n, lr, b1, b2, eps, wd, bc1, bc2s, grad_scale);
    else
        k_adamw<TI, 1><<<blocks(n, 256), 256>>>(p, g, m, v, pa, n, lr, b1, b2, eps, wd, bc1, bc2s, grad_scale);
    check_launch("adamw");
}

/* sum of squares: each thread streams 16-byte loads, four in flight, accumulates in fp32
 * per load and in double across loads; one double atomic per warp */
__global__ void k_sum_sq(double *out, const float *x, size_t n) {
    double acc = 0;
    size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, nt = (size_t)gridDim.x * blockDim.x;
    if (((uintptr_t)x & 15) == 0) {
        const float4 *x4 = reinterpret_cast<const float4 *>(x);
        size_t n4 = n / 4, i = tid;
        for (; i + 3 * nt < n4; i += 4 * nt) {
            float4 v[4];
#pragma unroll
            for (int u = 0; u < 4; u++) v[u] = x4[i + u * nt];
#pragma unroll
            for (int u = 0; u < 4; u++) acc += (double)(v[u].x * v[u].x + v[u].y * v[u].y + v[u].z * v[u].z + v[u].w * v[u].w);
        }
        for (; i < n4; i += nt) {
            float4 v = x4[i];
            acc += (double)(v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w);
        }
        for (size_t j = n4 * 4 + tid; j < n; j += nt) acc += (double)x[j] * x[j];
    } else {
        for (size_t j = tid; j < n; j += nt) acc += (double)x[j] * x[j];
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if ((threadIdx.x & 31) == 0) atomicAdd(out, acc);
}
static double cu_sum_sq(const float *x, size_t n) {
    PROFILE_F32("sum_sq");
    static double *d = NULL;
    if (!d && cudaMalloc(&d, sizeof(double)) != cudaSuccess) { check(cudaGetLastError(), "sum_sq alloc"); return NAN; }
    double h = 0;
    check(cudaMemset(d, 0, sizeof(double)), "sum_sq");
    k_sum_sq<<<132 * 8, 256>>>(d, x, n);
    check_launch("sum_sq");
    check(cudaMemcpy(&h, d, sizeof h, cudaMemcpyDeviceToHost), "sum_sq");
    return h;
}

/* ---- the tables ---------------------------------------------------------------------------- */

static lma_backend g_tables[2]; /* [0] fp32, [1] bf16 */
static char g_open_fail[160];     /* why the plugin could not start, when it was not "no GPU" */

template <typename TI> static void fill(lma_backend *b, const char *name) {
    b->name = name;
    b->act_bytes = (int)sizeof(TI);
    b->sync = cu_sync;
    b->alloc = cu_alloc; b->free = cu_free; b->upload = cu_upload; b->download = cu_download;
    b->zero = cu_zero; b->copy = cu_copy;
    b->cast_to_act = cu_cast_to_act<TI>; b->act_to_f32 = cu_act_to_f32<TI>;
    b->embedding_fwd = cu_embedding_fwd<TI>; b->embedding_bwd = cu_embedding_bwd<TI>;
    b->rmsnorm_fwd = cu_rmsnorm_fwd<TI>; b->rmsnorm_bwd = cu_rmsnorm_bwd<TI>;
    b->matmul_fwd = cu_matmul_fwd<TI>; b->matmul_bwd = cu_matmul_bwd<TI>;
    b->rope_fwd = cu_rope_fwd<TI>; b->rope_bwd = cu_rope_bwd<TI>;
    b->attention_saved_floats = cu_attention_saved_floats<TI>;
    b->attention_fwd = cu_attention_fwd<TI>; b->attention_bwd = cu_attention_bwd<TI>;
    b->attention_cached = cu_attention_cached<TI>;
    b->swiglu_fwd = cu_swiglu_fwd<TI>; b->swiglu_bwd = cu_swiglu_bwd<TI>; b->add = cu_add<TI>;
    b->cross_entropy = cu_cross_entropy<TI>; b->adamw = cu_adamw<TI>; b->sum_sq = cu_sum_sq;
    b->scale = cu_scale<TI>; b->mul = cu_mul<TI>; b->matmul_fwd_add = cu_matmul_fwd_add<TI>; /* LoRA */
    b->matmul_nf4_fwd = cu_matmul_nf4_fwd<TI>; b->matmul_nf4_bwd = cu_matmul_nf4_bwd<TI>; /* QLoRA */
}

/* The table for `want_bf16` (1: "cuda", bf16 activations; 0: "cuda-fp32"), NULL without a GPU.
 * nf4_code (16), nf4_code8 (256): the NF4 code tables of quant/nf4.h. */
extern "C" __attribute__((visibility("default"))) const lma_backend *
lma_cuda_plugin_open(lma_status (*err)(lma_status, const char *, ...), const int *naive_flag, int want_bf16,
                     const float *nf4_code, const float *nf4_code8) {
    static int tried = 0, ok = 0;
    g_err = err;
    g_naive = naive_flag;
    if (!tried) {
        tried = 1;
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) { cudaGetLastError(); return NULL; }
        if (cublasCreate(&g_blas) != CUBLAS_STATUS_SUCCESS) return NULL;
        if (cublasLtCreate(&g_lt) != CUBLAS_STATUS_SUCCESS) return NULL;
        if (!(g_lt_ws = lma_cuda_malloc(LT_WS_BYTES))) {
            snprintf(g_open_fail, sizeof g_open_fail, "cuda: out of memory for the cuBLASLt workspace (%d MiB)",
                     (int)(LT_WS_BYTES >> 20));
            lma_error(LMA_ERR_NOMEM, "%s", g_open_fail);
            return NULL;
        }
        if (lma_cuda_nf4_set_tables(nf4_code, nf4_code8) != cudaSuccess) { cudaGetLastError(); return NULL; }
        const char *e = getenv("LMA_CUDA_TF32"); /* exact fp32 unless LMA_CUDA_TF32=1 */
        lma_cuda_plugin_set_tf32(e && !strcmp(e, "1"));
        fill<float>(&g_tables[0], "cuda-fp32");
        fill<bf16>(&g_tables[1], "cuda");
        if (lma_cuda_prof_on()) lma_cuda_prof_set_report(prof_gemm_report);
        ok = 1;
    }
    if (!ok && g_open_fail[0]) lma_error(LMA_ERR_NOMEM, "%s", g_open_fail); /* each caller hears why */
    return ok ? &g_tables[want_bf16 ? 1 : 0] : NULL;
}
