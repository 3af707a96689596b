/* Products with a thin inner dimension (K <= 64: LoRA's rank): out (N,M) = X (N,K) . W^T (+ res),
 * bf16, on the tensor cores (mma.cuh). LoRA's B products (the forward's xa B^T, K = r) and the
 * input gradients of its A products (dout A, K = r or the r of a group) write an (N, M) output
 * from a few KB of operands: they are the memory's write (and, adding, read) and nothing else,
 * where cuBLASLt's kernels for them ran at ~1.4 TB/s on an H100 (the 7B LoRA profile).
 * A part of the cuda plugin, included once by cuda_backend.cu (one translation unit, as llm.c's
 * llmc/ headers; no include guard), after ops_common.cuh and mma.cuh.
 *
 * A block: a 128 x 64 tile of out, 8 warps of 16 rows; X's rows and W's 64 columns go to shared
 * memory (zero-padded to KP, a multiple of 16), then KP / 16 mma steps a warp and n-tile; the fp32
 * sums are staged in shared memory, and each thread writes 16-byte chunks (res added in fp32
 * first: one rounding, as cuBLASLt's beta = 1). Opt-in (LMA_CUDA_THIN=1; tests/test_shapes_cuda.c
 * sets it): correct on an H100, but its speed against cuBLASLt is not yet measured on its own (the
 * LoRA rows lost 1.1-1.3 ms with it and three other changes on; docs/cuda.md). Otherwise every
 * product stays with cuBLASLt. */
enum { TH_BM = 128, TH_BN = 64, TH_THREADS = 256, TH_KMAX = 64 };

/* WT 1: W is (M, K) row-major (a forward, x W^T); WT 0: W is (K, M) row-major (a backward, dout W) */
template <int WT, int KP>
__global__ void __launch_bounds__(TH_THREADS) k_thin(bf16 *out, const bf16 *X, const bf16 *W, const bf16 *res, int N,
                                                     int M, int K) {
    constexpr int LDX = KP + 8, LDW = WT ? KP + 8 : TH_BN + 8, LDO = TH_BN + 4;
    constexpr int SX = TH_BM * LDX * 2, SW = (WT ? TH_BN * LDW : KP * LDW) * 2, SO = TH_BM * LDO * 4;
    constexpr int SMEM = SX + SW > SO ? SX + SW : SO;
    __shared__ __align__(16) unsigned char smem[SMEM];
    bf16 *sx = reinterpret_cast<bf16 *>(smem), *sw = reinterpret_cast<bf16 *>(smem + SX);
    float *so = reinterpret_cast<float *>(smem); /* after the products: the fp32 tile */
    int n0 = blockIdx.y * TH_BM, m0 = blockIdx.x * TH_BN;
    const uint4 z = make_uint4(0, 0, 0, 0);
    for (int i = threadIdx.x; i < TH_BM * (KP / 8); i += TH_THREADS) {
        int r = i / (KP / 8), c = i % (KP / 8) * 8;
        *reinterpret_cast<uint4 *>(sx + r * LDX + c) =
            n0 + r < N && c < K ? *reinterpret_cast<const uint4 *>(X + (size_t)(n0 + r) * K + c) : z;
    }
    if (WT) {
        for (int i = threadIdx.x; i < TH_BN * (KP / 8); i += TH_THREADS) {
            int r = i / (KP / 8), c = i % (KP / 8) * 8;
            *reinterpret_cast<uint4 *>(sw + r * LDW + c) =
                m0 + r < M && c < K ? *reinterpret_cast<const uint4 *>(W + (size_t)(m0 + r) * K + c) : z;
        }
    } else {
        for (int i = threadIdx.x; i < KP * (TH_BN / 8); i += TH_THREADS) {
            int r = i / (TH_BN / 8), c = i % (TH_BN / 8) * 8;
            *reinterpret_cast<uint4 *>(sw + r * LDW + c) =
                r < K && m0 + c < M ? *reinterpret_cast<const uint4 *>(W + (size_t)r * M + m0 + c) : z;
        }
    }
    __syncthreads();
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float acc[TH_BN / 8][4] = {};
#pragma unroll
    for (int k0 = 0; k0 < KP; k0 += 16) {
        uint32_t a[4];
        frag_a_rows(a, sx, LDX, warp * 16, k0);
#pragma unroll
        for (int j = 0; j < TH_BN / 16; j++) {
            uint32_t b[4];
            if (WT) frag_b_nk2(b, sw, LDW, j * 16, k0);
            else frag_b_kn2(b, sw, LDW, k0, j * 16);
            mma16816(acc[2 * j], a, b[0], b[1]);
            mma16816(acc[2 * j + 1], a, b[2], b[3]);
        }
    }
    __syncthreads(); /* the operands are dead: their shared memory takes the fp32 tile */
    int g = lane >> 2, c = lane & 3, row = warp * 16 + g;
#pragma unroll
    for (int j = 0; j < TH_BN / 8; j++) {
        *reinterpret_cast<float2 *>(so + row * LDO + j * 8 + 2 * c) = make_float2(acc[j][0], acc[j][1]);
        *reinterpret_cast<float2 *>(so + (row + 8) * LDO + j * 8 + 2 * c) = make_float2(acc[j][2], acc[j][3]);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < TH_BM * (TH_BN / 8); i += TH_THREADS) {
        int r = i / (TH_BN / 8), cc = i % (TH_BN / 8) * 8, n = n0 + r, m = m0 + cc;
        if (n >= N || m >= M) continue;
        float v[8], rv[8];
        const float4 *s4 = reinterpret_cast<const float4 *>(so + r * LDO + cc);
        float4 p = s4[0], q = s4[1];
        v[0] = p.x; v[1] = p.y; v[2] = p.z; v[3] = p.w; v[4] = q.x; v[5] = q.y; v[6] = q.z; v[7] = q.w;
        size_t o = (size_t)n * M + m;
        if (res) {
            chunk<bf16, 8>::load(res + o, rv);
#pragma unroll
            for (int k = 0; k < 8; k++) v[k] += rv[k];
        }
        chunk<bf16, 8>::store(out + o, v);
    }
}

/* PROFILE's row of the thin products: their time is also in the matmul row that called them */
static lma_cuda_prof_acc *thin_prof_row(void) {
    static lma_cuda_prof_acc *row = lma_cuda_prof_register("  thin products (in matmul rows) bf16");
    return row;
}
/* out = X W^T (wt 1, W (M,K)) or X W (wt 0, W (K,M)), + res when given (may be out): 1 when it ran,
 * 0 when the call is not one for these kernels (fp32 storage, K past 64 or not a multiple of 8, M
 * not a multiple of 8, bases not 16-byte aligned, LMA_CUDA_THIN not 1) */
template <typename TI>
static int thin_gemm(void *out, const void *X, const void *W, int wt, const void *res, int N, int M, int K) {
    static int on = -1;
    if (on < 0) on = env_opt_in("LMA_CUDA_THIN");
    if (sizeof(TI) != 2 || !on || N <= 0 || K <= 0 || K > TH_KMAX || K % 8 || M % 8 || !vec_ok(8, out, X, W, res))
        return 0;
    lma_cuda_prof_scope ps(thin_prof_row());
    dim3 grid((unsigned)((M + TH_BN - 1) / TH_BN), (unsigned)((N + TH_BM - 1) / TH_BM));
    bf16 *o = (bf16 *)out;
    const bf16 *x = (const bf16 *)X, *w = (const bf16 *)W, *r = (const bf16 *)res;
#define TH_LAUNCH(KP)                                                                                                  \
    do {                                                                                                               \
        if (wt) k_thin<1, KP><<<grid, TH_THREADS, 0, lma_cu_stream>>>(o, x, w, r, N, M, K);                            \
        else k_thin<0, KP><<<grid, TH_THREADS, 0, lma_cu_stream>>>(o, x, w, r, N, M, K);                               \
    } while (0)
    if (K <= 16) TH_LAUNCH(16);
    else if (K <= 32) TH_LAUNCH(32);
    else if (K <= 48) TH_LAUNCH(48);
    else TH_LAUNCH(64);
#undef TH_LAUNCH
    check_launch("thin product");
    return 1;
}
