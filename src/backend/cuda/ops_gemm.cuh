/* Matrix products through cuBLASLt (plans cached by shape), bias, LoRA's fused add, and the
 * NF4 (QLoRA) projections dequantized into a scratch.
 * A part of the cuda plugin, included once by cuda_backend.cu (one translation unit, as
 * llm.c's llmc/ headers; no include guard), after ops_common.cuh. */
/* ---- matmul: cuBLASLt, row-major through the transposed (column-major) view --------------
 * Plans (descriptors, layouts, the heuristic's algorithm) are cached by shape, types
 * and pointer alignment: building one costs far more than running a small GEMM. */

static void *g_lt_ws;
enum { LT_PLANS = 128 };
#define LT_WS_BYTES LMA_CUDA_LT_WS_BYTES /* cuda_sizes.h */
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

static void prof_gemm_reset(void) {
    for (int i = 0; i < g_nplans; i++) g_plans[i].prof = lma_cuda_prof_acc{0, 0};
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

/* D (m,n) = alpha op(A) op(B) + beta C0, column-major, fp32 accumulation; bias (m) added
 * when given (same type as D). C0 (the layout of D) is D unless given. ab: CUDA type of A
 * and B; c: of D. */
static void lt_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A, int lda,
                    const void *Bm, int ldb, void *C, int ldc, float beta, const void *bias, cudaDataType ab,
                    cudaDataType ct, const char *what, const void *C0 = NULL) {
    if (!m || !n) return;
    if (!C0) C0 = C;
    int compute = ab == CUDA_R_32F && ct == CUDA_R_32F ? (g_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F)
                                                       : CUBLAS_COMPUTE_32F;
    int al = ptr_align(A);
    if (ptr_align(Bm) < al) al = ptr_align(Bm);
    if (ptr_align(C) < al) al = ptr_align(C);
    if (ptr_align(C0) < al) al = ptr_align(C0);
    lt_key key = {(int)ta, (int)tb, m, n, k, lda, ldb, ldc, (int)ab, (int)ct, compute, bias != NULL, al};
    lt_plan *p = lt_get(key);
    if (!p) return;
    if (bias) cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
    float alpha = 1.0f;
    lma_cuda_prof_scope ps(lma_cuda_prof_on() ? &p->prof : NULL);
    check_blas(cublasLtMatmul(g_lt, p->op, &alpha, A, p->a, Bm, p->b, &beta, C0, p->c, C, p->c, &p->algo, g_lt_ws,
                              LT_WS_BYTES, lma_cu_stream), what);
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
/* ---- few-row products (decode): out (NN,OC) = inp (NN,C) W^T (+ bias) (+ out: add), bf16,
 * NN <= GEMV_MAX_N (at 4 rows cuBLASLt is faster: 1,833 vs 1,645 tok/s on TinyLlama).
 * At batch 1 a decode step is the weights read once, so all that counts is the memory's
 * rate: one warp a row of W, each lane 16 bytes of it and of every input row a load, four
 * loads in flight, W streamed past L1 (read once), the inputs kept there (read by every
 * warp). fp32 sums, one rounding to bf16, as cuBLASLt does. test_backend_cuda checks it
 * against the CPU backend; LMA_CUDA_GEMV=0 leaves every product to cuBLASLt (A/B runs). */
enum { GEMV_MAX_N = 3, GEMV_WARPS = 4 };
__device__ __forceinline__ uint4 ld_stream(const uint4 *p) {
    uint4 r;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}
__device__ __forceinline__ float dot8(uint4 a, uint4 b) {
    const __nv_bfloat162 *x = reinterpret_cast<const __nv_bfloat162 *>(&a), *y = reinterpret_cast<const __nv_bfloat162 *>(&b);
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 u = __bfloat1622float2(x[i]), v = __bfloat1622float2(y[i]);
        s = fmaf(u.x, v.x, fmaf(u.y, v.y, s));
    }
    return s;
}
/* A warp streams R rows of W (o, o + 1 with R = 2), four 16-byte loads of each in flight; at
 * one input row the next four are issued before the current ones are summed. Each row's sums
 * in the same order as one row alone, so the products depend neither on R nor on the
 * prefetch. Measured on the 7B shape (H100, decode tok/s): R = 2 pays at 3 rows only (464 vs
 * 434; 186 vs 191 at 1 row: fewer warps); the prefetch at 1 row only (193.9 vs 191.0; 346 vs
 * 357 at 2 rows, 443 vs 464 at 3: registers). */
template <int NN, int R>
__global__ void __launch_bounds__(GEMV_WARPS * 32) k_gemv_bf16(bf16 *out, const bf16 *inp, const bf16 *w,
                                                              const bf16 *bias, int add, int C, int OC) {
    int o = (blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5)) * R, lane = threadIdx.x & 31, nc = C / 8;
    if (o >= OC) return;
    int rows = min(R, OC - o);
    const uint4 *wr[R], *x = reinterpret_cast<const uint4 *>(inp);
#pragma unroll
    for (int q = 0; q < R; q++) wr[q] = reinterpret_cast<const uint4 *>(w + (size_t)(q < rows ? o + q : o) * C);
    float acc[R][NN];
#pragma unroll
    for (int q = 0; q < R; q++)
#pragma unroll
        for (int n = 0; n < NN; n++) acc[q][n] = 0.0f;
    int i = lane;
    uint4 nx[R][4]; /* one input row: the loads of the iteration ahead */
    if (NN == 1 && i + 96 < nc)
#pragma unroll
        for (int q = 0; q < R; q++)
#pragma unroll
            for (int k = 0; k < 4; k++) nx[q][k] = ld_stream(wr[q] + i + 32 * k);
    for (; i + 96 < nc; i += 128) {
        uint4 wb[R][4];
#pragma unroll
        for (int q = 0; q < R; q++)
#pragma unroll
            for (int k = 0; k < 4; k++) wb[q][k] = NN == 1 ? nx[q][k] : ld_stream(wr[q] + i + 32 * k);
        if (NN == 1 && i + 128 + 96 < nc) /* the next iteration's loads go out now */
#pragma unroll
            for (int q = 0; q < R; q++)
#pragma unroll
                for (int k = 0; k < 4; k++) nx[q][k] = ld_stream(wr[q] + i + 128 + 32 * k);
#pragma unroll
        for (int q = 0; q < R; q++)
#pragma unroll
            for (int n = 0; n < NN; n++) {
                const uint4 *xn = x + (size_t)n * nc + i;
                acc[q][n] += dot8(wb[q][0], __ldg(xn)) + dot8(wb[q][1], __ldg(xn + 32)) + dot8(wb[q][2], __ldg(xn + 64)) +
                             dot8(wb[q][3], __ldg(xn + 96));
            }
    }
    for (; i < nc; i += 32) {
        uint4 w0[R];
#pragma unroll
        for (int q = 0; q < R; q++) w0[q] = ld_stream(wr[q] + i);
#pragma unroll
        for (int q = 0; q < R; q++)
#pragma unroll
            for (int n = 0; n < NN; n++) acc[q][n] += dot8(w0[q], __ldg(x + (size_t)n * nc + i));
    }
#pragma unroll
    for (int q = 0; q < R; q++)
#pragma unroll
        for (int n = 0; n < NN; n++) {
            float a = acc[q][n];
            for (int s = 16; s > 0; s >>= 1) a += __shfl_xor_sync(0xffffffffu, a, s);
            if (lane == 0 && q < rows) {
                bf16 *y = out + (size_t)n * OC + o + q;
                *y = __float2bfloat16(a + (bias ? __bfloat162float(bias[o + q]) : 0.0f) + (add ? __bfloat162float(*y) : 0.0f));
            }
        }
}
/* whether the few-row kernel takes this product (bf16, N <= GEMV_MAX_N, 16-byte rows) */
static bool gemv_takes(int bf, const void *out, const void *inp, const void *w, int N, int C) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("LMA_CUDA_GEMV");
        on = !(e && !strcmp(e, "0"));
    }
    return on && bf && N >= 1 && N <= GEMV_MAX_N && C % 8 == 0 && ptr_align(inp) >= 16 && ptr_align(w) >= 16 &&
           ptr_align(out) >= 2;
}
static void gemv_bf16(void *out, const void *inp, const void *w, const void *bias, int add, int N, int C, int OC) {
    static int pair_env = -1; /* two rows a warp at 3 input rows; LMA_CUDA_GEMV_PAIR=0: never, =1: always */
    if (pair_env < 0) {
        const char *e = getenv("LMA_CUDA_GEMV_PAIR");
        pair_env = e ? (atoi(e) ? 1 : 0) : 2;
    }
    int pair = pair_env == 2 ? N >= 3 : pair_env, rw = pair ? 2 : 1;
    unsigned nb = (unsigned)((OC + rw * GEMV_WARPS - 1) / (rw * GEMV_WARPS));
    bf16 *o = (bf16 *)out;
    const bf16 *x = (const bf16 *)inp, *wt = (const bf16 *)w, *bs = (const bf16 *)bias;
    dim3 g(nb), b(GEMV_WARPS * 32);
    if (pair) switch (N) {
        case 1: k_gemv_bf16<1, 2><<<g, b, 0, lma_cu_stream>>>(o, x, wt, bs, add, C, OC); break;
        case 2: k_gemv_bf16<2, 2><<<g, b, 0, lma_cu_stream>>>(o, x, wt, bs, add, C, OC); break;
        default: k_gemv_bf16<3, 2><<<g, b, 0, lma_cu_stream>>>(o, x, wt, bs, add, C, OC); break;
        }
    else switch (N) {
        case 1: k_gemv_bf16<1, 1><<<g, b, 0, lma_cu_stream>>>(o, x, wt, bs, add, C, OC); break;
        case 2: k_gemv_bf16<2, 1><<<g, b, 0, lma_cu_stream>>>(o, x, wt, bs, add, C, OC); break;
        default: k_gemv_bf16<3, 1><<<g, b, 0, lma_cu_stream>>>(o, x, wt, bs, add, C, OC); break;
        }
    check_launch("gemv");
}

template <typename TI>
static void cu_matmul_fwd(void *out, const void *inp, const void *w, const void *bias, int N, int C, int OC) {
    PROFILE("matmul_fwd");
    if (gemv_takes(sizeof(TI) == 2, out, inp, w, N, C)) {
        gemv_bf16(out, inp, w, bias, 0, N, C, OC);
        return;
    }
    if (!bias && thin_gemm<TI>(out, inp, w, 1, NULL, N, OC, C)) return; /* ops_thin.cuh */
    /* out^T (OC,N) = W (OC,C) . inp^T (C,N) in column-major terms, + bias per row of out^T */
    lt_gemm(CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, w, C, inp, C, out, OC, 0.0f, bias, act_type<TI>(), act_type<TI>(),
            "matmul_fwd");
}
template <typename TI>
static void cu_matmul_fwd_add(void *out, const void *inp, const void *w, const void *res, int N, int C, int OC) {
    PROFILE("matmul_fwd_add");
    static int res_gemm = -1; /* LMA_CUDA_RES_GEMM=0: res copied to out first, then added into (A/B runs) */
    if (res_gemm < 0) res_gemm = env_on("LMA_CUDA_RES_GEMM");
    if (res != out && !res_gemm) {
        check(cudaMemcpyAsync(out, res, (size_t)N * OC * sizeof(TI), cudaMemcpyDeviceToDevice, lma_cu_stream), "copy");
        res = out;
    }
    if (res == out && gemv_takes(sizeof(TI) == 2, out, inp, w, N, C)) {
        gemv_bf16(out, inp, w, NULL, 1, N, C, OC);
        return;
    }
    if (thin_gemm<TI>(out, inp, w, 1, res, N, OC, C)) return;
    lt_gemm(CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, w, C, inp, C, out, OC, 1.0f, NULL, act_type<TI>(), act_type<TI>(),
            "matmul_fwd_add", res);
}
/* ---- RMSNorm + few-row products in one launch (decode; backend.h norm_proj_fwd) ----------
 * The layer's rmsnorm -> q, k, v GEMVs (glu 0) and rmsnorm -> gate, up GEMVs -> swiglu (glu 1),
 * each one kernel instead of four. A block first copies its NN input rows and the norm weight
 * into shared memory (each warp's first loads of W go out before, so the norm hides behind them),
 * sums x^2 in rmsnorm_fwd's order (k_rmsnorm_fwd's vt = row_threads(C) threads, 8 elements a
 * chunk, chunks vt apart, a warp sum each, then a warp sum of those), so rstd is rmsnorm_fwd's
 * to the bit, and normalizes the rows in place, rounded to bf16 as rmsnorm_fwd stores them.
 * Then each warp runs k_gemv_bf16's loop against those rows (same lanes, same order of sums):
 * the products equal rmsnorm_fwd followed by the GEMV bit for bit. Rows of the concatenated
 * output [0, sum oc) map to (segment j, row o), so one grid covers q|k|v; with glu a warp
 * streams row o of gate and of up together (eight loads in flight) and writes
 * silu(bf16(g)) * bf16(u) as swiglu_fwd does. With RoPE (q|k|v: rope_fwd of q and k folded in)
 * a warp streams rows o and o + HD/2 of one head together (every segment, so v's rows pair the
 * same way) and rotates the q and k pairs as rope_fwd does (the products rounded to bf16 first,
 * sincosf of pos * inv_freq): two launches fewer a layer. LMA_CUDA_FUSE=0 declines every call
 * (A/B runs). */
enum { NP_MAX_W = 3, NP_WARPS = 8, NP_MAX_C = 16384 };
struct np_args {
    bf16 *out[NP_MAX_W];
    const bf16 *w[NP_MAX_W];
    int end[NP_MAX_W]; /* segment j holds the rows [end[j-1], end[j]); unused segments end at rows */
    int oc[NP_MAX_W];
    const bf16 *x, *g;
    float eps;
    int C, rows, vt; /* vt: the threads k_rmsnorm_fwd gives a row (row_threads), whose order of sums is kept */
    const int32_t *pos; /* RoPE (ROPE kernels): positions (NN), inverse frequencies (half), half the head dim */
    const float *inv_freq;
    int half;
};
/* GLU 1: gate|up and SwiGLU; GLU 2: q|k|v with RoPE on q and k; GLU 0: plain segments */
template <int NN, int GLU>
__global__ void __launch_bounds__(NP_WARPS * 32, 2) k_norm_proj_bf16(np_args a) {
    enum { R = GLU ? 2 : 1, ROPE = GLU == 2 }; /* rows of W a warp streams */
    extern __shared__ uint4 sm[]; /* the NN input rows (normalized in place), then g: (NN + 1) * C bf16 */
    __shared__ float part[NN][16], rs[NN];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, C = a.C, nc = C / 8;
    int r = blockIdx.x * NP_WARPS + warp, valid = r < a.rows; /* ROPE: r counts row pairs, rows too */
    /* segment j, row o (selected, not indexed: a dynamic index would copy the arguments to local memory) */
    int j = GLU == 1 ? 0 : (r >= a.end[0]) + (r >= a.end[1]), o = valid ? r - (j == 2 ? a.end[1] : j ? a.end[0] : 0) : 0;
    int fi = 0; /* ROPE: the pair's frequency index */
    if (ROPE) fi = o % a.half, o = o / a.half * 2 * a.half + fi; /* pair (o, o + half) of head o / half */
    bf16 *out = j == 2 ? a.out[2] : j ? a.out[1] : a.out[0];
    int oc = j == 2 ? a.oc[2] : j ? a.oc[1] : a.oc[0];
    const uint4 *wr[R];
    const bf16 *wj = j == 2 ? a.w[2] : j ? a.w[1] : a.w[0];
    wr[0] = reinterpret_cast<const uint4 *>(wj + (size_t)o * C);
    if (GLU == 1) wr[R - 1] = reinterpret_cast<const uint4 *>(a.w[1] + (size_t)o * C);
    if (ROPE) wr[R - 1] = reinterpret_cast<const uint4 *>(wj + (size_t)(o + a.half) * C);
    uint4 wb[R][4];
    if (valid && lane + 96 < nc) /* the first loads of W go out before the norm */
#pragma unroll
        for (int q = 0; q < R; q++)
#pragma unroll
            for (int k = 0; k < 4; k++) wb[q][k] = ld_stream(wr[q] + lane + 32 * k);
    const uint4 *xs = reinterpret_cast<const uint4 *>(a.x), *gs = reinterpret_cast<const uint4 *>(a.g);
#pragma unroll 4
    for (int i = threadIdx.x; i < (NN + 1) * nc; i += blockDim.x) sm[i] = __ldg(i < NN * nc ? xs + i : gs + (i - NN * nc));
    __syncthreads();
    bf16 *ys = reinterpret_cast<bf16 *>(sm);
    for (int t = threadIdx.x; t < a.vt; t += blockDim.x) { /* virtual thread t of k_rmsnorm_fwd */
#pragma unroll
        for (int n = 0; n < NN; n++) {
            float ss = 0, v[8];
            for (int c = t * 8; c < C; c += a.vt * 8) {
                chunk<bf16, 8>::load(ys + (size_t)n * C + c, v);
#pragma unroll
                for (int k = 0; k < 8; k++) ss += v[k] * v[k];
            }
            ss = warp_sum(ss);
            if (lane == 0) part[n][t >> 5] = ss;
        }
    }
    __syncthreads();
    if (warp == 0)
#pragma unroll
        for (int n = 0; n < NN; n++) {
            float ss = warp_sum(lane < (a.vt >> 5) ? part[n][lane] : 0.0f);
            if (lane == 0) rs[n] = rsqrtf(ss / C + a.eps);
        }
    __syncthreads();
    for (int i = threadIdx.x; i < NN * nc; i += blockDim.x) {
        int n = i / nc, c = (i - n * nc) * 8;
        float v[8], wv[8], rn = rs[n];
        chunk<bf16, 8>::load(ys + (size_t)i * 8, v);
        chunk<bf16, 8>::load(ys + (size_t)NN * C + c, wv);
#pragma unroll
        for (int k = 0; k < 8; k++) v[k] = wv[k] * (v[k] * rn);
        chunk<bf16, 8>::store(ys + (size_t)i * 8, v);
    }
    __syncthreads();
    if (!valid) return;
    float acc[R][NN];
#pragma unroll
    for (int q = 0; q < R; q++)
#pragma unroll
        for (int n = 0; n < NN; n++) acc[q][n] = 0.0f;
    int i = lane;
    for (; i + 96 < nc; i += 128) { /* as k_gemv_bf16, the inputs from shared memory */
        if (i != lane)
#pragma unroll
            for (int q = 0; q < R; q++)
#pragma unroll
                for (int k = 0; k < 4; k++) wb[q][k] = ld_stream(wr[q] + i + 32 * k);
#pragma unroll
        for (int q = 0; q < R; q++)
#pragma unroll
            for (int n = 0; n < NN; n++) {
                const uint4 *xn = sm + (size_t)n * nc + i;
                acc[q][n] += dot8(wb[q][0], xn[0]) + dot8(wb[q][1], xn[32]) + dot8(wb[q][2], xn[64]) + dot8(wb[q][3], xn[96]);
            }
    }
    for (; i < nc; i += 32) {
        uint4 w0[R];
#pragma unroll
        for (int q = 0; q < R; q++) w0[q] = ld_stream(wr[q] + i);
#pragma unroll
        for (int q = 0; q < R; q++)
#pragma unroll
            for (int n = 0; n < NN; n++) acc[q][n] += dot8(w0[q], sm[(size_t)n * nc + i]);
    }
#pragma unroll
    for (int n = 0; n < NN; n++) {
        float s[R];
#pragma unroll
        for (int q = 0; q < R; q++) s[q] = warp_sum(acc[q][n]);
        if (lane) continue;
        if (GLU == 1) { /* the products rounded as matmul_fwd stores them, then swiglu_fwd's formula */
            float x = __bfloat162float(__float2bfloat16(s[0])), y = __bfloat162float(__float2bfloat16(s[R - 1]));
            out[(size_t)n * oc + o] = __float2bfloat16(x / (1.0f + __expf(-x)) * y);
        } else if (ROPE) { /* the products rounded as matmul_fwd stores them, then rope_fwd's rotation */
            float x1 = __bfloat162float(__float2bfloat16(s[0])), x2 = __bfloat162float(__float2bfloat16(s[R - 1]));
            float y1 = x1, y2 = x2;
            if (j < 2) {
                float c, sn;
                sincosf((float)a.pos[n] * a.inv_freq[fi], &sn, &c);
                y1 = x1 * c - x2 * sn, y2 = x2 * c + x1 * sn;
            }
            out[(size_t)n * oc + o] = __float2bfloat16(y1);
            out[(size_t)n * oc + o + a.half] = __float2bfloat16(y2);
        } else {
            out[(size_t)n * oc + o] = __float2bfloat16(s[0]);
        }
    }
}
/* Shared memory past 48 KB a block must be granted a kernel: np_grant, at the plugin's open
 * (never while a graph is being recorded), asks for what C = NP_MAX_C takes; where that is
 * refused, blocks stay under 32 KB and larger rows are declined. */
static int g_np_granted;
template <int NN, int GLU> static int np_grant1(void) {
    if (cudaFuncSetAttribute(k_norm_proj_bf16<NN, GLU>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             (NN + 1) * NP_MAX_C * 2) == cudaSuccess)
        return 1;
    cudaGetLastError();
    return 0;
}
static void np_grant(void) {
    g_np_granted = np_grant1<1, 0>() & np_grant1<2, 0>() & np_grant1<3, 0>() & np_grant1<1, 1>() &
                   np_grant1<2, 1>() & np_grant1<3, 1>() & np_grant1<1, 2>() & np_grant1<2, 2>() & np_grant1<3, 2>();
}
template <int NN, int GLU> static int np_launch(const np_args &a) {
    size_t bytes = (size_t)(NN + 1) * a.C * 2;
    if (bytes > (g_np_granted ? (size_t)(NN + 1) * NP_MAX_C * 2 : (size_t)32 << 10)) return 1;
    k_norm_proj_bf16<NN, GLU><<<(unsigned)((a.rows + NP_WARPS - 1) / NP_WARPS), NP_WARPS * 32, bytes, lma_cu_stream>>>(a);
    check_launch(GLU == 1 ? "norm_swiglu" : "norm_proj");
    return 0;
}
template <int GLU> static int np_run(const np_args &a, int N) {
    PROFILE_F32(GLU == 1 ? "norm_swiglu_fwd bf16" : GLU ? "norm_proj_rope_fwd bf16" : "norm_proj_fwd bf16");
    return N == 1 ? np_launch<1, GLU>(a) : N == 2 ? np_launch<2, GLU>(a) : np_launch<3, GLU>(a);
}
/* the bf16 table's norm_proj_fwd (backend.h): 0 when it ran, 1 when it declines */
static int cu_norm_proj_fwd(void *const *out, const void *x, const void *g, float eps, const void *const *w,
                            const int *oc, int n_w, int glu, int N, int C, const int32_t *pos, const float *inv_freq,
                            int HD) {
    lz_enter(x, g, pos, inv_freq); /* its arrays' pointers too (ops_zero.cuh) */
    for (int j = 0; j < n_w; j++) lz_enter(out[j], w[j]);
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("LMA_CUDA_FUSE");
        on = !(e && !strcmp(e, "0"));
    }
    if (!on || n_w < 1 || n_w > NP_MAX_W || (glu && (n_w != 2 || oc[0] != oc[1])) || C > NP_MAX_C ||
        ptr_align(g) < 16 || (pos && (glu || !inv_freq || HD < 2 || HD % 2)))
        return 1;
    for (int j = 0; pos && j < n_w; j++)
        if (oc[j] % HD) return 1; /* RoPE: whole heads */
    np_args a;
    memset(&a, 0, sizeof a);
    int rows = 0;
    for (int j = 0; j < n_w; j++) {
        if (oc[j] < 1 || !gemv_takes(1, out[glu ? 0 : j], x, w[j], N, C)) return 1;
        a.out[j] = (bf16 *)out[glu ? 0 : j];
        a.w[j] = (const bf16 *)w[j];
        a.oc[j] = oc[j];
        rows += glu ? 0 : oc[j];
        a.end[j] = rows;
    }
    a.rows = glu ? oc[0] : rows;
    for (int j = glu ? 0 : n_w; j < NP_MAX_W; j++) a.end[j] = a.rows;
    a.x = (const bf16 *)x;
    a.g = (const bf16 *)g;
    a.eps = eps;
    a.C = C;
    a.vt = (int)row_threads(C, 1);
    if (pos) { /* RoPE: the rows counted in pairs */
        a.pos = pos, a.inv_freq = inv_freq, a.half = HD / 2;
        a.rows /= 2;
        for (int j = 0; j < NP_MAX_W; j++) a.end[j] /= 2;
        return np_run<2>(a, N);
    }
    return glu ? np_run<1>(a, N) : np_run<0>(a, N);
}

template <typename TI>
static void cu_matmul_bwd(void *dinp, float *dw, float *dbias, const void *dout, const void *inp, const void *w, int N,
                          int C, int OC) {
    /* zeroed and not written since (ops_zero.cuh): written, not added into */
    float beta = lz_take(dinp, (size_t)N * C * sizeof(TI)) ? 0.0f : 1.0f;
    float beta_w = lz_take(dw, (size_t)OC * C * sizeof(float)) ? 0.0f : 1.0f;
    if (dbias) lzb_need(dbias, (size_t)OC * sizeof(float));
    lz_enter(dout, inp, w);
    PROFILE("matmul_bwd");
    if (dinp && !thin_gemm<TI>(dinp, dout, w, 0, beta ? dinp : NULL, N, C, OC))
        /* dinp^T (C,N) += W^T (C,OC) . dout^T (OC,N) */
        lt_gemm(CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, w, C, dout, OC, dinp, C, beta, NULL, act_type<TI>(), act_type<TI>(),
                "matmul_bwd dinp");
    if (dw) /* dW^T (C,OC) += inp^T (C,N) . dout (N,OC), fp32 */
        lt_gemm(CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, inp, C, dout, OC, dw, C, beta_w, NULL, act_type<TI>(), CUDA_R_32F,
                "matmul_bwd dw");
    if (dbias) {
        k_bias_bwd<TI><<<blocks(N, COLSUM_ROWS), 256, 0, lma_cu_stream>>>(dbias, (const TI *)dout, N, OC);
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
    void *wd = deq_scratch(lma_cuda_nf4_deq_bytes((size_t)OC * C, (int)sizeof(TI)));
    if (!wd) return;
    check(lma_cuda_nf4_dequant(wd, w, sizeof(TI) == 2), "nf4 dequant");
    cu_matmul_fwd<TI>(out, inp, wd, bias, N, C, OC);
}
template <typename TI>
static void cu_matmul_nf4_bwd(void *dinp, const void *dout, const struct lma_nf4_tensor *w, int N, int C, int OC) {
    void *wd = deq_scratch(lma_cuda_nf4_deq_bytes((size_t)OC * C, (int)sizeof(TI)));
    if (!wd) return;
    check(lma_cuda_nf4_dequant(wd, w, sizeof(TI) == 2), "nf4 dequant");
    cu_matmul_bwd<TI>(dinp, NULL, NULL, dout, NULL, wd, N, C, OC);
}

