/* Attention: the dispatch between cuDNN, the flash kernel (flash_fwd.cu, flash_bwd.cu), batched
 * GEMMs and the naive kernels (the oracle), and the KV-cache attention of generation.
 * A part of the cuda plugin, included once by cuda_backend.cu (one translation unit, as
 * llm.c's llmc/ headers; no include guard), after ops_common.cuh. */
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
    k_attention_fwd<TI><<<grid, 128, 0, lma_cu_stream>>>(out, saved, q, k, v, seg, T, NH, NKV, HD, scale);
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
    k_attention_bwd<TI><<<grid, 128, shm, lma_cu_stream>>>(fq, fk, fv, dout, saved, q, k, v, T, NH, NKV, HD, scale);
    check_launch("attention_bwd");
    if (sizeof(TI) == 2) {
        if (dq) k_add_f32<TI><<<blocks(nq, 256), 256, 0, lma_cu_stream>>>(dq, fq, nq);
        if (dk) k_add_f32<TI><<<blocks(nk, 256), 256, 0, lma_cu_stream>>>(dk, fk, nk);
        if (dv) k_add_f32<TI><<<blocks(nk, 256), 256, 0, lma_cu_stream>>>(dv, fv, nk);
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
    k_masked_softmax<<<grid, 256, 0, lma_cu_stream>>>(saved, seg, T, NH);
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
        k_softmax_bwd<<<grid, 256, 0, lma_cu_stream>>>(dp, saved, T, NH, b, scale);
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

/* which path runs: 0 flash, 1 naive, 2 batched GEMMs, 3 cuDNN's flash attention (bf16; segment
 * ids as ragged documents; it falls back to 0 where cuDNN has no engine for the shape or the
 * ids are not packed documents) */
static int attention_path(int HD, int bf, const int32_t *seg) {
    int mode = attention_mode;
    if (mode == 1) return 1;
    if (mode == 0 && bf && lma_cuda_flash_supported(HD) && lma_cuda_sdpa_usable(HD)) return 3;
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
        if (!lma_cuda_sdpa_fwd(out, saved, q, k, v, seg, B, T, NH, NKV, HD, scale)) break;
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
    int bf = sizeof(TI) == 2, path = attention_path(HD, bf, seg);
    /* cuDNN writes its gradients: into dq, dk, dv themselves when all three were zeroed just
     * before (ops_zero.cuh), else into a scratch that is then added */
    size_t nq = (size_t)B * T * NH * HD * sizeof(TI), nk = (size_t)B * T * NKV * HD * sizeof(TI);
    void *dp[3] = {dq, dk, dv};
    size_t dn[3] = {nq, nk, nk};
    int set = path == 3, took[3] = {0, 0, 0};
    for (int j = 0; j < 3 && path == 3; j++) set &= took[j] = lz_take(dp[j], dn[j]);
    for (int j = 0; j < 3; j++)
        if (took[j] && !set) lz_memset(dp[j], dn[j]); /* not all three: the zeros after all */
    lz_enter(dq, dk, dv, dout, out, saved, q, k, v, seg);
    PROFILE("attention_bwd");
    switch (path) {
    case 3:
        if (!lma_cuda_sdpa_bwd(dq, dk, dv, dout, out, saved, q, k, v, seg, B, T, NH, NKV, HD, scale, set)) break;
        if (set) /* no engine for the shape: the flash kernel accumulates, so the zeros after all */
            for (int j = 0; j < 3; j++) lz_memset(dp[j], dn[j]);
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

/* Inference attention against KV caches, one launch for every sequence of a decode step.
 * One block of 128 threads per (new row r, head h, key split z): the first head of each KV
 * group (in split 0) writes row r's k and v into its cache row; the block's keys go by in
 * chunks of ATTC_CHUNK: a thread per key scores it (E-element loads of the key row, all in
 * flight at once; the scaled q in shared memory), an online softmax rescales the running sums,
 * and for P.V each thread takes E adjacent dims of every groups-th key (one E-element load a
 * key, independent across keys), the key subsets summed at the end. Keys of this call's new
 * rows are read from k, v themselves, so no block waits for another's cache write. Scratch is
 * fixed, so any context length runs. E = 8 (16-byte bf16 loads) when HD % 8 == 0, else 1.
 * Few (row, head) pairs (a decode step at batch 1 has NH of them for ~132 SMs) split the keys
 * in S ranges, one block each (flash-decoding): each writes its unnormalized sums, running max
 * and sum to `part`, and the last block of a (row, head) to finish (a counter, reset by it)
 * combines them; S depends on the rows and heads only, so a recorded decode graph replays it. */
enum { ATTC_THREADS = 128, ATTC_CHUNK = 1024, ATTC_HD = LMA_CUDA_ATTC_HD, ATTC_MAX_SPLITS = 8,
       ATTC_SPLIT_BLOCKS = LMA_CUDA_ATTC_SPLIT_BLOCKS };
template <typename TI, int E>
__global__ void __launch_bounds__(ATTC_THREADS)
k_attention_cached(TI *out, const TI *q, const TI *k, const TI *v, const lma_kv_seq *seqs, int n, int layer, int NH,
                   int NKV, int HD, float scale, float *part, int *cnt) {
    __shared__ float qs[ATTC_HD], p[ATTC_CHUNK], red[ATTC_THREADS * E];
    __shared__ int is_last;
    int r = blockIdx.x, h = blockIdx.y, S = gridDim.z, z = blockIdx.z, G = NH / NKV, kh = h / G, t = r % n;
    int tid = threadIdx.x;
    lma_kv_seq sq = seqs[r / n];
    size_t KVD = (size_t)NKV * HD, lay = (size_t)layer * sq.cap * KVD, off = (size_t)kh * HD;
    TI *kc = (TI *)sq.k + lay + off, *vc = (TI *)sq.v + lay + off; /* row s: + s * KVD */
    const TI *kn = k + (size_t)(r - t) * KVD + off, *vn = v + (size_t)(r - t) * KVD + off; /* this call's rows */
    int len = sq.len, last = len + t, per = (last + S) / S, lo = z * per, hi = min(last + 1, lo + per);
    if (h % G == 0 && z == 0)
        for (int d = tid; d < HD; d += ATTC_THREADS) {
            kc[(size_t)last * KVD + d] = kn[(size_t)t * KVD + d];
            vc[(size_t)last * KVD + d] = vn[(size_t)t * KVD + d];
        }
    const TI *qt = q + ((size_t)r * NH + h) * HD;
    for (int d = tid; d < HD; d += ATTC_THREADS) qs[d] = ld(qt + d) * scale;
    __syncthreads();
    int nc = HD / E, groups = ATTC_THREADS / nc, c = tid % nc, g = tid / nc; /* P.V: dims c*E.., keys g + groups*i */
    bool active = g < groups;
    float acc[E], m = -INFINITY, l = 0;
#pragma unroll
    for (int e = 0; e < E; e++) acc[e] = 0;
    for (int c0 = lo; c0 < hi; c0 += ATTC_CHUNK) {
        int cn = min(ATTC_CHUNK, hi - c0);
        float mx = -INFINITY;
        for (int j = tid; j < cn; j += ATTC_THREADS) {
            int s = c0 + j;
            const TI *ks = s < len ? kc + (size_t)s * KVD : kn + (size_t)(s - len) * KVD;
            float dot = 0;
#pragma unroll 4
            for (int i = 0; i < HD; i += E) {
                float f[E];
                chunk<TI, E>::load(ks + i, f);
#pragma unroll
                for (int e = 0; e < E; e++) dot += qs[i + e] * f[e];
            }
            p[j] = dot;
            mx = fmaxf(mx, dot);
        }
        mx = block_max(mx);
        float mn = fmaxf(m, mx), cc = __expf(m - mn), sum = 0;
        for (int j = tid; j < cn; j += ATTC_THREADS) {
            float x = __expf(p[j] - mn);
            p[j] = x;
            sum += x;
        }
        sum = block_sum(sum); /* its barriers also publish p */
        l = l * cc + sum;
        m = mn;
#pragma unroll
        for (int e = 0; e < E; e++) acc[e] *= cc;
        if (active) {
#pragma unroll 4
            for (int j = g; j < cn; j += groups) {
                int s = c0 + j;
                const TI *vs = (s < len ? vc + (size_t)s * KVD : vn + (size_t)(s - len) * KVD) + c * E;
                float f[E], pj = p[j];
                chunk<TI, E>::load(vs, f);
#pragma unroll
                for (int e = 0; e < E; e++) acc[e] += pj * f[e];
            }
        }
        __syncthreads(); /* the next chunk rewrites p */
    }
    if (active)
#pragma unroll
        for (int e = 0; e < E; e++) red[g * HD + c * E + e] = acc[e];
    __syncthreads();
    TI *ot = out + ((size_t)r * NH + h) * HD;
    if (S == 1) {
        for (int d = tid; d < HD; d += ATTC_THREADS) {
            float o = 0;
            for (int i = 0; i < groups; i++) o += red[i * HD + d];
            st(ot + d, o / l);
        }
        return;
    }
    /* split: this block's sums, max and sum to part; the last block of (r, h) combines */
    size_t rh = (size_t)r * NH + h, W = (size_t)HD + 2;
    float *mine = part + (rh * S + z) * W;
    for (int d = tid; d < HD; d += ATTC_THREADS) {
        float o = 0;
        for (int i = 0; i < groups; i++) o += red[i * HD + d];
        mine[d] = o;
    }
    if (tid == 0) mine[HD] = m, mine[HD + 1] = l;
    __threadfence();
    __syncthreads();
    if (tid == 0) is_last = atomicAdd(cnt + rh, 1) == S - 1;
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    const float *all = part + rh * S * W;
    float M = -INFINITY, L = 0;
    for (int i = 0; i < S; i++) M = fmaxf(M, __ldcg(all + i * W + HD));
    for (int i = 0; i < S; i++) L += __ldcg(all + i * W + HD + 1) * __expf(__ldcg(all + i * W + HD) - M);
    for (int d = tid; d < HD; d += ATTC_THREADS) {
        float o = 0;
        for (int i = 0; i < S; i++) o += __ldcg(all + i * W + d) * __expf(__ldcg(all + i * W + HD) - M);
        st(ot + d, o / L);
    }
    if (tid == 0) cnt[rh] = 0; /* ready for the next call (the graph's next replay) */
}
/* the key splits for rows x NH (row, head) pairs: doubled while the blocks stay within
 * ATTC_SPLIT_BLOCKS (two a SM of an H100), so part and cnt have a fixed size */
static int attc_splits(int pairs) {
    static int off = -1;
    if (off < 0) {
        const char *e = getenv("LMA_CUDA_DECODE_SPLIT");
        off = e && !strcmp(e, "0");
    }
    int S = 1;
    while (!off && S < ATTC_MAX_SPLITS && (long)pairs * S * 2 <= ATTC_SPLIT_BLOCKS) S *= 2;
    return S;
}
template <typename TI>
static void cu_attention_cached(void *out, const void *q, const void *k, const void *v, const lma_kv_seq *seqs,
                                int n_seq, int n, int layer, int NH, int NKV, int HD, float scale) {
    PROFILE("attention_cached");
    int vec = vec_ok(HD, q, k, v); /* cache rows are then 16-byte aligned too (cudaMalloc'd, rows of HD) */
    if (HD > ATTC_HD || (!vec && HD > ATTC_THREADS))
        return fail(LMA_ERR_UNSUPPORTED, "attention_cached: head_dim %d not supported (a multiple of 8 up to %d, or "
                    "up to %d)", HD, (int)ATTC_HD, (int)ATTC_THREADS);
    int S = attc_splits(n_seq * n * NH);
    /* the split scratch: its largest size at the first call (never regrown, so recorded
     * graphs keep its address); the counters zeroed once, then reset by the kernels */
    static float *part;
    static int *cnt;
    static std::mutex mu;
    if (S > 1) {
        std::lock_guard<std::mutex> lk(mu);
        size_t pb = (size_t)ATTC_SPLIT_BLOCKS * (ATTC_HD + 2) * sizeof(float);
        char *b = part ? NULL : (char *)lma_cuda_malloc(LMA_CUDA_ATTC_SPLIT_BYTES);
        if (b && cudaMemset(b + pb, 0, ATTC_SPLIT_BLOCKS * sizeof(int)) == cudaSuccess) part = (float *)b, cnt = (int *)(b + pb);
        else if (b) lma_cuda_free(b);
        if (!part) S = 1;
    }
    dim3 grid(n_seq * n, NH, S);
    if (vec)
        k_attention_cached<TI, 8><<<grid, ATTC_THREADS, 0, lma_cu_stream>>>(
            (TI *)out, (const TI *)q, (const TI *)k, (const TI *)v, seqs, n, layer, NH, NKV, HD, scale, part, cnt);
    else
        k_attention_cached<TI, 1><<<grid, ATTC_THREADS, 0, lma_cu_stream>>>(
            (TI *)out, (const TI *)q, (const TI *)k, (const TI *)v, seqs, n, layer, NH, NKV, HD, scale, part, cnt);
    check_launch("attention_cached");
}
