/* lma_backend_cuda(): the op table on an NVIDIA GPU, fp32 storage and compute.
 *
 * This is the correctness-first CUDA backend: every op of backend.h on the
 * device, GEMMs through cuBLAS (TF32 tensor cores by default; exact fp32 with
 * LMA_CUDA_TF32=0 or lma_cuda_set_tf32(0), which matches the CPU backend at fp32
 * tolerances), attention as batched GEMMs plus masked-softmax kernels, the rest as
 * simple kernels: one block per row
 * for reductions (rmsnorm, softmax, cross-entropy), one thread per element
 * otherwise. Attention keeps the probabilities (B,NH,T,T) like the CPU backend
 * (not flash attention yet). The bf16/flash/fused fast path of the CUDA issue
 * builds on this file and keeps it as its oracle.
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
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cublasHandle_t g_blas;
/* The library's lma_error, handed over by lma_cuda_plugin_open (this file is a
 * plugin, loaded with dlopen: see backend.c). */
static lma_status (*g_err)(lma_status, const char *, ...);
static const int *g_naive; /* lma_cuda_attention_naive of the library */
#define lma_error(...) (g_err ? g_err(__VA_ARGS__) : LMA_ERR_INTERNAL)

static void check(cudaError_t e, const char *what) {
    if (e != cudaSuccess) lma_error(LMA_ERR_INTERNAL, "cuda %s: %s", what, cudaGetErrorString(e));
}
static void check_launch(const char *what) { check(cudaGetLastError(), what); }
static void check_blas(cublasStatus_t s, const char *what) {
    if (s != CUBLAS_STATUS_SUCCESS) lma_error(LMA_ERR_INTERNAL, "cublas %s: status %d", what, (int)s);
}

static unsigned blocks(size_t n, unsigned threads) { return (unsigned)((n + threads - 1) / threads); }


/* ---- per-op profile (LMA_CUDA_PROFILE=1): each op synchronizes before and after
 * and adds its wall time; the table goes to stderr at exit. Off by default: it
 * serializes the stream, so it explains where time goes, not how fast things are. */
#include <chrono>
static int g_prof = -1;
static struct { const char *name; double ms; long calls; } g_prof_tab[48];
static int g_prof_n;
static void prof_report(void) {
    double total = 0;
    for (int i = 0; i < g_prof_n; i++) total += g_prof_tab[i].ms;
    fprintf(stderr, "[lmadapt] cuda op profile (synchronized per op):\n%-22s %10s %8s %6s\n", "op", "ms", "calls", "%");
    for (int i = 0; i < g_prof_n; i++)
        fprintf(stderr, "%-22s %10.1f %8ld %5.1f%%\n", g_prof_tab[i].name, g_prof_tab[i].ms, g_prof_tab[i].calls,
                total > 0 ? 100.0 * g_prof_tab[i].ms / total : 0.0);
}
static int prof_register(const char *name) {
    if (g_prof < 0) {
        const char *e = getenv("LMA_CUDA_PROFILE");
        g_prof = e && strcmp(e, "0") ? 1 : 0;
        if (g_prof) atexit(prof_report);
    }
    if (g_prof_n == 48) return -1;
    g_prof_tab[g_prof_n].name = name;
    return g_prof_n++;
}
struct prof_scope {
    int id;
    std::chrono::steady_clock::time_point t0;
    explicit prof_scope(int i) : id(g_prof > 0 ? i : -1) {
        if (id >= 0) { cudaDeviceSynchronize(); t0 = std::chrono::steady_clock::now(); }
    }
    ~prof_scope() {
        if (id < 0) return;
        cudaDeviceSynchronize();
        g_prof_tab[id].ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        g_prof_tab[id].calls++;
    }
};
#define PROFILE(name) static int prof_id_ = prof_register(name); prof_scope prof_s_(prof_id_)

/* ---- memory ---------------------------------------------------------------- */

static void *cu_alloc(size_t bytes) {
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) { cudaGetLastError(); return NULL; }
    return p;
}
static void cu_free(void *p) { if (p) check(cudaFree(p), "free"); }
static void cu_upload(void *dst, const void *src, size_t n) { check(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "upload"); }
static void cu_download(void *dst, const void *src, size_t n) { check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost), "download"); }
static void cu_zero(void *p, size_t n) { check(cudaMemset(p, 0, n), "memset"); }
static void cu_copy(void *dst, const void *src, size_t n) { check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToDevice), "copy"); }

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

__global__ void k_embedding_fwd(float *out, const int32_t *ids, const float *wte, int N, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C) return;
    size_t n = i / C, c = i % C;
    out[i] = wte[(size_t)ids[n] * C + c];
}
__global__ void k_embedding_bwd(float *dwte, const float *dout, const int32_t *ids, int N, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C) return;
    size_t n = i / C, c = i % C;
    atomicAdd(&dwte[(size_t)ids[n] * C + c], dout[i]);
}
static void cu_embedding_fwd(float *out, const int32_t *ids, const float *wte, int N, int C) {
    PROFILE("embedding_fwd");
    k_embedding_fwd<<<blocks((size_t)N * C, 256), 256>>>(out, ids, wte, N, C);
    check_launch("embedding_fwd");
}
static void cu_embedding_bwd(float *dwte, const float *dout, const int32_t *ids, int N, int C) {
    PROFILE("embedding_bwd");
    if (!dwte) return;
    k_embedding_bwd<<<blocks((size_t)N * C, 256), 256>>>(dwte, dout, ids, N, C);
    check_launch("embedding_bwd");
}

/* ---- rmsnorm ---------------------------------------------------------------------- */

__global__ void k_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int C, float eps) {
    const float *x = inp + (size_t)blockIdx.x * C;
    float ss = 0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) ss += x[c] * x[c];
    ss = block_sum(ss);
    float r = rsqrtf(ss / C + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
    float *o = out + (size_t)blockIdx.x * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = w[c] * (x[c] * r);
}
/* dinp += r * (g w) - r^3 / C * x * sum(g w x) */
__global__ void k_rmsnorm_bwd_inp(float *dinp, const float *dout, const float *inp, const float *w, const float *rstd,
                                  int C) {
    const float *x = inp + (size_t)blockIdx.x * C, *g = dout + (size_t)blockIdx.x * C;
    float r = rstd[blockIdx.x], dot = 0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dot += g[c] * w[c] * x[c];
    dot = block_sum(dot);
    float k = r * r * r * dot / C;
    float *d = dinp + (size_t)blockIdx.x * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) d[c] += r * g[c] * w[c] - k * x[c];
}
/* dw[c] += sum_n dout[n,c] * inp[n,c] * rstd[n]: each block sums a slab of ROWS rows
 * for every column (coalesced) and adds it with one atomic per column. (A thread per
 * column over all N rows used only C threads: 25% of a 124M training step.) */
enum { COLSUM_ROWS = 64 };
__global__ void k_rmsnorm_bwd_w(float *dw, const float *dout, const float *inp, const float *rstd, int N, int C) {
    int n0 = blockIdx.x * COLSUM_ROWS, n1 = min(N, n0 + COLSUM_ROWS);
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = 0;
        for (int n = n0; n < n1; n++) acc += dout[(size_t)n * C + c] * inp[(size_t)n * C + c] * rstd[n];
        atomicAdd(&dw[c], acc);
    }
}
static void cu_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps) {
    PROFILE("rmsnorm_fwd");
    k_rmsnorm_fwd<<<N, 256>>>(out, rstd, inp, w, C, eps);
    check_launch("rmsnorm_fwd");
}
static void cu_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                           const float *rstd, int N, int C) {
    PROFILE("rmsnorm_bwd");
    if (dinp) { k_rmsnorm_bwd_inp<<<N, 256>>>(dinp, dout, inp, w, rstd, C); check_launch("rmsnorm_bwd"); }
    if (dw) { k_rmsnorm_bwd_w<<<blocks(N, COLSUM_ROWS), 256>>>(dw, dout, inp, rstd, N, C); check_launch("rmsnorm_bwd_w"); }
}

/* ---- matmul (cuBLAS, row-major through the transposed view) ----------------------------- */

__global__ void k_add_bias(float *out, const float *bias, int N, int OC) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)N * OC) out[i] += bias[i % OC];
}
__global__ void k_bias_bwd(float *dbias, const float *dout, int N, int OC) {
    int n0 = blockIdx.x * 64, n1 = min(N, n0 + 64); /* a slab of rows per block, as k_rmsnorm_bwd_w */
    for (int o = threadIdx.x; o < OC; o += blockDim.x) {
        float acc = 0;
        for (int n = n0; n < n1; n++) acc += dout[(size_t)n * OC + o];
        atomicAdd(&dbias[o], acc);
    }
}
static void cu_matmul_fwd(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    PROFILE("matmul_fwd");
    const float one = 1.0f, zero = 0.0f;
    /* out^T (OC,N) = W (OC,C) . inp^T (C,N) in column-major terms */
    check_blas(cublasSgemm(g_blas, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, w, C, inp, C, &zero, out, OC), "matmul_fwd");
    if (bias) { k_add_bias<<<blocks((size_t)N * OC, 256), 256>>>(out, bias, N, OC); check_launch("bias"); }
}
static void cu_matmul_bwd(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                          int N, int C, int OC) {
    PROFILE("matmul_bwd");
    const float one = 1.0f;
    if (dinp) /* dinp^T (C,N) += W^T (C,OC) . dout^T (OC,N) */
        check_blas(cublasSgemm(g_blas, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, w, C, dout, OC, &one, dinp, C),
                   "matmul_bwd dinp");
    if (dw) /* dW^T (C,OC) += inp^T (C,N) . dout (N,OC) */
        check_blas(cublasSgemm(g_blas, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, inp, C, dout, OC, &one, dw, C),
                   "matmul_bwd dw");
    if (dbias) { k_bias_bwd<<<blocks(N, 64), 256>>>(dbias, dout, N, OC); check_launch("bias_bwd"); }
}

/* ---- rope (HF half split) ------------------------------------------------------------ */

__global__ void k_rope(float *out, const float *inp, const int32_t *pos, const float *inv_freq, int N, int NH, int HD,
                       int backward) {
    int half = HD / 2;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * NH * half) return;
    int j = (int)(i % half);
    size_t row = i / half, n = row / NH;
    float ang = (float)pos[n] * inv_freq[j], c = cosf(ang), s = sinf(ang);
    const float *x = inp + row * HD;
    float *o = out + row * HD;
    float x1 = x[j], x2 = x[j + half];
    if (!backward) { o[j] = x1 * c - x2 * s; o[j + half] = x2 * c + x1 * s; }
    else { o[j] += x1 * c + x2 * s; o[j + half] += x2 * c - x1 * s; }
}
static void cu_rope_fwd(float *out, const float *inp, const int32_t *pos, const float *inv_freq, int N, int NH, int HD) {
    PROFILE("rope_fwd");
    k_rope<<<blocks((size_t)N * NH * (HD / 2), 256), 256>>>(out, inp, pos, inv_freq, N, NH, HD, 0);
    check_launch("rope_fwd");
}
static void cu_rope_bwd(float *dinp, const float *dout, const int32_t *pos, const float *inv_freq, int N, int NH, int HD) {
    PROFILE("rope_bwd");
    k_rope<<<blocks((size_t)N * NH * (HD / 2), 256), 256>>>(dinp, dout, pos, inv_freq, N, NH, HD, 1);
    check_launch("rope_bwd");
}

/* ---- attention (probabilities kept) ------------------------------------------------------- */

__device__ bool visible(const int32_t *seg, int b, int T, int t, int s) {
    return s <= t && (!seg || seg[(size_t)b * T + s] == seg[(size_t)b * T + t]);
}

/* one block per (b, h, t): scores -> softmax row in att -> out = P V */
__global__ void k_attention_fwd(float *out, float *att, const float *q, const float *k, const float *v,
                                const int32_t *seg, int T, int NH, int NKV, int HD, float scale) {
    int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z, kh = h / (NH / NKV);
    const float *qt = q + (((size_t)b * T + t) * NH + h) * HD;
    float *p = att + (((size_t)b * NH + h) * T + t) * T;
    float mx = -INFINITY;
    for (int s = threadIdx.x; s < T; s += blockDim.x) {
        float d = -INFINITY;
        if (visible(seg, b, T, t, s)) {
            const float *ks = k + (((size_t)b * T + s) * NKV + kh) * HD;
            d = 0;
            for (int i = 0; i < HD; i++) d += qt[i] * ks[i];
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
    float *ot = out + (((size_t)b * T + t) * NH + h) * HD;
    for (int i = threadIdx.x; i < HD; i += blockDim.x) {
        float acc = 0;
        for (int s = 0; s <= t; s++) acc += p[s] * v[(((size_t)b * T + s) * NKV + kh) * HD + i];
        ot[i] = acc;
    }
}

/* one block per (b, h, t): dp_s = do.v_s; dz = p (dp - sum p dp); dq += scale dz K; dk_s += scale dz_s q;
 * dv_s += p_s do (atomics: query rows and grouped heads share k and v) */
__global__ void k_attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                                const float *k, const float *v, int T, int NH, int NKV, int HD, float scale) {
    int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z, kh = h / (NH / NKV);
    const float *p = att + (((size_t)b * NH + h) * T + t) * T;
    const float *go = dout + (((size_t)b * T + t) * NH + h) * HD, *qt = q + (((size_t)b * T + t) * NH + h) * HD;
    extern __shared__ float dz[]; /* (t+1) */
    float dot = 0;
    for (int s = threadIdx.x; s <= t; s += blockDim.x) {
        float d = 0;
        if (p[s] != 0.0f) {
            const float *vs = v + (((size_t)b * T + s) * NKV + kh) * HD;
            for (int i = 0; i < HD; i++) d += go[i] * vs[i];
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
            for (int s = 0; s <= t; s++) acc += dz[s] * k[(((size_t)b * T + s) * NKV + kh) * HD + i];
            dqt[i] += acc;
        }
    }
    for (int s = 0; s <= t; s++) {
        if (p[s] == 0.0f) continue;
        size_t o = (((size_t)b * T + s) * NKV + kh) * HD;
        for (int i = threadIdx.x; i < HD; i += blockDim.x) {
            if (dk) atomicAdd(&dk[o + i], dz[s] * qt[i]);
            if (dv) atomicAdd(&dv[o + i], p[s] * go[i]);
        }
    }
}

static size_t cu_attention_saved_floats(int B, int T, int NH) { return (size_t)B * NH * T * T; }
static void naive_attention_fwd(float *out, float *saved, const float *q, const float *k, const float *v,
                             const int32_t *seg, int B, int T, int NH, int NKV, int HD, float scale) {
    dim3 grid(T, NH, B);
    k_attention_fwd<<<grid, 128>>>(out, saved, q, k, v, seg, T, NH, NKV, HD, scale);
    check_launch("attention_fwd");
}
static void naive_attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *saved, const float *q,
                             const float *k, const float *v, const int32_t *seg, int B, int T, int NH, int NKV,
                             int HD, float scale) {
    (void)seg; /* the saved probabilities are zero where the mask hides a key */
    dim3 grid(T, NH, B);
    size_t shm = (size_t)(T + 8) * sizeof(float);
    if (shm > 48 * 1024) {
        cudaFuncSetAttribute(k_attention_bwd, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
    }
    k_attention_bwd<<<grid, 128, shm>>>(dq, dk, dv, dout, saved, q, k, v, T, NH, NKV, HD, scale);
    check_launch("attention_bwd");
}


/* ---- attention through batched GEMMs (the default) --------------------------------------
 * For each batch row b and each offset g inside a GQA group, one strided-batched GEMM
 * runs over the NKV kv heads (query head h = kh*group + g):
 *   S = scale Q K^T  ->  P = masked softmax(S) (in place, in `saved`)  ->  O = P V
 * backward: dP = dO V^T; dS = P (dP - rowsum(P dP)) scale; dQ += dS K; dK += dS^T Q;
 * dV += P^T dO. Row-major matrices are passed to column-major cuBLAS transposed. The
 * naive kernels above stay as the oracle (lma_cuda_attention_naive = 1 selects them). */

#define lma_cuda_attention_naive (g_naive && *g_naive)

/* GEMM precision: TF32 tensor cores (fast, ~1e-3 relative) unless set to 0, or
 * LMA_CUDA_TF32=0 in the environment: then exact fp32 (the tests compare both). */
extern "C" __attribute__((visibility("default"))) void lma_cuda_plugin_set_tf32(int on) {
    if (g_blas) cublasSetMathMode(g_blas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH);
}

static float *g_scratch;
static size_t g_scratch_n;
static float *scratch(size_t n) {
    if (n > g_scratch_n) {
        if (g_scratch) cudaFree(g_scratch);
        g_scratch = NULL;
        g_scratch_n = 0;
        if (cudaMalloc(&g_scratch, n * sizeof(float)) != cudaSuccess) {
            check(cudaGetLastError(), "attention scratch");
            return NULL;
        }
        g_scratch_n = n;
    }
    return g_scratch;
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

static void cu_attention_fwd(float *out, float *saved, const float *q, const float *k, const float *v,
                             const int32_t *seg, int B, int T, int NH, int NKV, int HD, float scale) {
    PROFILE("attention_fwd");
    if (lma_cuda_attention_naive) { naive_attention_fwd(out, saved, q, k, v, seg, B, T, NH, NKV, HD, scale); return; }
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

static void cu_attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *saved, const float *q,
                             const float *k, const float *v, const int32_t *seg, int B, int T, int NH, int NKV,
                             int HD, float scale) {
    PROFILE("attention_bwd");
    if (lma_cuda_attention_naive) {
        naive_attention_bwd(dq, dk, dv, dout, saved, q, k, v, seg, B, T, NH, NKV, HD, scale);
        return;
    }
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

/* one block per (t, h) of the new tokens */
__global__ void k_attention_cached(float *out, const float *q, const float *kc, const float *vc, int past, int NH,
                                   int NKV, int HD, float scale) {
    extern __shared__ float p[];
    int t = blockIdx.x, h = blockIdx.y, kh = h / (NH / NKV), last = past + t;
    const float *qt = q + ((size_t)t * NH + h) * HD;
    float mx = -INFINITY;
    for (int s = threadIdx.x; s <= last; s += blockDim.x) {
        const float *ks = kc + ((size_t)s * NKV + kh) * HD;
        float d = 0;
        for (int i = 0; i < HD; i++) d += qt[i] * ks[i];
        p[s] = d * scale;
        mx = fmaxf(mx, p[s]);
    }
    mx = block_max(mx);
    float sum = 0;
    for (int s = threadIdx.x; s <= last; s += blockDim.x) { p[s] = __expf(p[s] - mx); sum += p[s]; }
    sum = block_sum(sum);
    __syncthreads();
    float inv = 1.0f / sum, *ot = out + ((size_t)t * NH + h) * HD;
    for (int i = threadIdx.x; i < HD; i += blockDim.x) {
        float acc = 0;
        for (int s = 0; s <= last; s++) acc += p[s] * vc[((size_t)s * NKV + kh) * HD + i];
        ot[i] = acc * inv;
    }
}
static void cu_attention_cached(float *out, const float *q, const float *kc, const float *vc, int past, int n, int NH,
                                int NKV, int HD, float scale) {
    PROFILE("attention_cached");
    size_t shm = (size_t)(past + n + 8) * sizeof(float);
    if (shm > 48 * 1024) cudaFuncSetAttribute(k_attention_cached, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
    dim3 grid(n, NH);
    k_attention_cached<<<grid, 128, shm>>>(out, q, kc, vc, past, NH, NKV, HD, scale);
    check_launch("attention_cached");
}

/* ---- elementwise ------------------------------------------------------------------- */

__global__ void k_swiglu_fwd(float *out, const float *g, const float *u, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
__global__ void k_swiglu_bwd(float *dg, float *du, const float *d, const float *g, const float *u, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float sg = 1.0f / (1.0f + expf(-g[i])), silu = g[i] * sg;
    if (dg) dg[i] += d[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
    if (du) du[i] += d[i] * silu;
}
__global__ void k_add(float *out, const float *a, const float *b, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a[i] + b[i];
}
__global__ void k_scale(float *x, float a, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= a;
}
__global__ void k_mul(float *out, const float *a, const float *b, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a[i] * b[i];
}
static void cu_scale(float *x, float a, size_t n) {
    PROFILE("scale");
    k_scale<<<blocks(n, 256), 256>>>(x, a, n);
    check_launch("scale");
}
static void cu_mul(float *out, const float *a, const float *b, size_t n) {
    PROFILE("mul");
    k_mul<<<blocks(n, 256), 256>>>(out, a, b, n);
    check_launch("mul");
}
static void cu_swiglu_fwd(float *out, const float *g, const float *u, size_t n) {
    PROFILE("swiglu_fwd");
    k_swiglu_fwd<<<blocks(n, 256), 256>>>(out, g, u, n);
    check_launch("swiglu_fwd");
}
static void cu_swiglu_bwd(float *dg, float *du, const float *d, const float *g, const float *u, size_t n) {
    PROFILE("swiglu_bwd");
    k_swiglu_bwd<<<blocks(n, 256), 256>>>(dg, du, d, g, u, n);
    check_launch("swiglu_bwd");
}
static void cu_add(float *out, const float *a, const float *b, size_t n) {
    PROFILE("add");
    k_add<<<blocks(n, 256), 256>>>(out, a, b, n);
    check_launch("add");
}

/* ---- cross-entropy: one block per row ------------------------------------------------------ */

__global__ void k_cross_entropy(float *losses, float *dlogits, const float *logits, const int32_t *targets, int V,
                                float dscale) {
    size_t row = blockIdx.x;
    const float *x = logits + row * V;
    int y = targets[row];
    if (y == LMA_IGNORE_INDEX) {
        if (threadIdx.x == 0) losses[row] = 0.0f;
        if (dlogits) for (int i = threadIdx.x; i < V; i += blockDim.x) dlogits[row * V + i] = 0.0f;
        return;
    }
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, x[i]);
    mx = block_max(mx);
    float sum = 0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) sum += expf(x[i] - mx);
    sum = block_sum(sum);
    float lse = mx + logf(sum), xy = x[y];
    __syncthreads();
    if (threadIdx.x == 0) losses[row] = lse - xy;
    if (dlogits)
        for (int i = threadIdx.x; i < V; i += blockDim.x)
            dlogits[row * V + i] = (expf(x[i] - lse) - (i == y ? 1.0f : 0.0f)) * dscale;
}
static void cu_cross_entropy(float *losses, float *dlogits, const float *logits, const int32_t *targets, int N, int V,
                             float dscale) {
    PROFILE("cross_entropy");
    k_cross_entropy<<<N, 512>>>(losses, dlogits, logits, targets, V, dscale);
    check_launch("cross_entropy");
}

/* ---- optimizer ------------------------------------------------------------------------- */

__global__ void k_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2, float eps,
                        float wd, float bc1, float bc2s, float gs) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float gi = g[i] * gs;
    float mi = fmaf(b1, m[i] - gi, gi);          /* torch lerp: m + (1-b1)(g - m) */
    float vi = fmaf(b2, v[i], (1.0f - b2) * gi * gi);
    m[i] = mi;
    v[i] = vi;
    float pi = p[i] * (1.0f - lr * wd);
    float denom = sqrtf(vi) / bc2s + eps;
    p[i] = pi - (lr / bc1) * mi / denom;
}
static void cu_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2, float eps,
                     float wd, int t, float grad_scale) {
    PROFILE("adamw");
    float bc1 = 1.0f - powf(b1, (float)t), bc2s = sqrtf(1.0f - powf(b2, (float)t));
    k_adamw<<<blocks(n, 256), 256>>>(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2s, grad_scale);
    check_launch("adamw");
}

__global__ void k_sum_sq(double *out, const float *x, size_t n) {
    double acc = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        acc += (double)x[i] * x[i];
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if ((threadIdx.x & 31) == 0) atomicAdd(out, acc);
}
static double cu_sum_sq(const float *x, size_t n) {
    PROFILE("sum_sq");
    static double *d = NULL;
    if (!d && cudaMalloc(&d, sizeof(double)) != cudaSuccess) { check(cudaGetLastError(), "sum_sq alloc"); return NAN; }
    double h = 0;
    check(cudaMemset(d, 0, sizeof(double)), "sum_sq");
    k_sum_sq<<<264, 256>>>(d, x, n);
    check_launch("sum_sq");
    check(cudaMemcpy(&h, d, sizeof h, cudaMemcpyDeviceToHost), "sum_sq");
    return h;
}

/* ---- the table's signatures: act storage is fp32 here (act_bytes 4), so the `void *`
 * act arguments of backend.h are the float arrays of the ops above ---------------------- */

#define F(p) ((float *)(p))
#define CF(p) ((const float *)(p))
static void cu_cast_to_act(void *dst, const float *src, size_t n) {
    if (dst != (const void *)src && n)
        check(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice), "cast_to_act");
}
static void cu_act_to_f32(float *dst, const void *src, size_t n) {
    if ((const void *)dst != src && n)
        check(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice), "act_to_f32");
}
static void ca_embedding_fwd(void *out, const int32_t *ids, const void *wte, int N, int C) {
    cu_embedding_fwd(F(out), ids, CF(wte), N, C);
}
static void ca_embedding_bwd(float *dwte, const void *dout, const int32_t *ids, int N, int C) {
    cu_embedding_bwd(dwte, CF(dout), ids, N, C);
}
static void ca_rmsnorm_fwd(void *out, float *rstd, const void *inp, const void *w, int N, int C, float eps) {
    cu_rmsnorm_fwd(F(out), rstd, CF(inp), CF(w), N, C, eps);
}
static void ca_rmsnorm_bwd(void *dinp, float *dw, const void *dout, const void *inp, const void *w, const float *rstd,
                           int N, int C) {
    cu_rmsnorm_bwd(F(dinp), dw, CF(dout), CF(inp), CF(w), rstd, N, C);
}
static void ca_matmul_fwd(void *out, const void *inp, const void *w, const void *bias, int N, int C, int OC) {
    cu_matmul_fwd(F(out), CF(inp), CF(w), CF(bias), N, C, OC);
}
static void ca_matmul_bwd(void *dinp, float *dw, float *dbias, const void *dout, const void *inp, const void *w, int N,
                          int C, int OC) {
    cu_matmul_bwd(F(dinp), dw, dbias, CF(dout), CF(inp), CF(w), N, C, OC);
}
static void ca_rope_fwd(void *out, const void *inp, const int32_t *pos, const float *inv_freq, int N, int NH, int HD) {
    cu_rope_fwd(F(out), CF(inp), pos, inv_freq, N, NH, HD);
}
static void ca_rope_bwd(void *dinp, const void *dout, const int32_t *pos, const float *inv_freq, int N, int NH,
                        int HD) {
    cu_rope_bwd(F(dinp), CF(dout), pos, inv_freq, N, NH, HD);
}
static size_t ca_attention_saved_floats(int B, int T, int NH, int HD) { return cu_attention_saved_floats(B, T, NH); }
static void ca_attention_fwd(void *out, float *saved, const void *q, const void *k, const void *v, const int32_t *seg,
                             int B, int T, int NH, int NKV, int HD, float scale) {
    cu_attention_fwd(F(out), saved, CF(q), CF(k), CF(v), seg, B, T, NH, NKV, HD, scale);
}
/* out (the forward's output) is not needed: the probabilities are saved */
static void ca_attention_bwd(void *dq, void *dk, void *dv, const void *dout, const void *out, const float *saved,
                             const void *q, const void *k, const void *v, const int32_t *seg, int B, int T, int NH,
                             int NKV, int HD, float scale) {
    cu_attention_bwd(F(dq), F(dk), F(dv), CF(dout), saved, CF(q), CF(k), CF(v), seg, B, T, NH, NKV, HD, scale);
}
static void ca_attention_cached(void *out, const void *q, const void *kc, const void *vc, int past, int n, int NH,
                                int NKV, int HD, float scale) {
    cu_attention_cached(F(out), CF(q), CF(kc), CF(vc), past, n, NH, NKV, HD, scale);
}
static void ca_swiglu_fwd(void *out, const void *g, const void *u, size_t n) { cu_swiglu_fwd(F(out), CF(g), CF(u), n); }
static void ca_swiglu_bwd(void *dg, void *du, const void *d, const void *g, const void *u, size_t n) {
    cu_swiglu_bwd(F(dg), F(du), CF(d), CF(g), CF(u), n);
}
static void ca_add(void *out, const void *a, const void *b, size_t n) { cu_add(F(out), CF(a), CF(b), n); }
static void ca_cross_entropy(float *losses, void *dlogits, const void *logits, const int32_t *targets, int N, int V,
                             float dscale) {
    cu_cross_entropy(losses, F(dlogits), CF(logits), targets, N, V, dscale);
}
/* p_act (the compute copy, fp32 here) gets a copy of the updated p unless it is p */
static void ca_adamw(float *p, const float *g, float *m, float *v, void *p_act, size_t n, float lr, float b1, float b2,
                     float eps, float wd, int t, float grad_scale) {
    cu_adamw(p, g, m, v, n, lr, b1, b2, eps, wd, t, grad_scale);
    if (p_act && p_act != (void *)p) cu_cast_to_act(p_act, p, n);
}
static void ca_scale(void *x, float a, size_t n) { cu_scale(F(x), a, n); }
static void ca_mul(void *out, const void *a, const void *b, size_t n) { cu_mul(F(out), CF(a), CF(b), n); }
#undef F
#undef CF

/* ---- the table ---------------------------------------------------------------------------- */

static lma_backend cuda_backend;

extern "C" __attribute__((visibility("default"))) const lma_backend *
lma_cuda_plugin_open(lma_status (*err)(lma_status, const char *, ...), const int *naive_flag) {
    static int tried = 0, ok = 0;
    g_err = err;
    g_naive = naive_flag;
    if (!tried) {
        tried = 1;
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) { cudaGetLastError(); return NULL; }
        if (cublasCreate(&g_blas) != CUBLAS_STATUS_SUCCESS) return NULL;
        const char *e = getenv("LMA_CUDA_TF32");
        cublasSetMathMode(g_blas, (e && !strcmp(e, "0")) ? CUBLAS_PEDANTIC_MATH : CUBLAS_TF32_TENSOR_OP_MATH);
        lma_backend *b = &cuda_backend;
        b->name = "cuda";
        b->act_bytes = 4;
        b->alloc = cu_alloc; b->free = cu_free; b->upload = cu_upload; b->download = cu_download;
        b->zero = cu_zero; b->copy = cu_copy;
        b->cast_to_act = cu_cast_to_act; b->act_to_f32 = cu_act_to_f32;
        b->embedding_fwd = ca_embedding_fwd; b->embedding_bwd = ca_embedding_bwd;
        b->rmsnorm_fwd = ca_rmsnorm_fwd; b->rmsnorm_bwd = ca_rmsnorm_bwd;
        b->matmul_fwd = ca_matmul_fwd; b->matmul_bwd = ca_matmul_bwd;
        b->rope_fwd = ca_rope_fwd; b->rope_bwd = ca_rope_bwd;
        b->attention_saved_floats = ca_attention_saved_floats;
        b->attention_fwd = ca_attention_fwd; b->attention_bwd = ca_attention_bwd;
        b->attention_cached = ca_attention_cached;
        b->swiglu_fwd = ca_swiglu_fwd; b->swiglu_bwd = ca_swiglu_bwd; b->add = ca_add;
        b->cross_entropy = ca_cross_entropy; b->adamw = ca_adamw; b->sum_sq = cu_sum_sq;
        b->scale = ca_scale; b->mul = ca_mul; /* LoRA; the NF4 matmuls (QLoRA) are CPU-only so far */
        ok = 1;
    }
    return ok ? &cuda_backend : NULL;
}
