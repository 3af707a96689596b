/* bf16 GEMM on the CPU (the matmuls of --device cpu-bf16):
 *
 *   C (M,N) = beta * C + sum_k bf16(A(m,k)) * bf16(B(k,n)),   fp32 products and sums
 *
 * A and B are fp32 with any strides (A(m,k) = a[m*a_sm + k*a_sk], B(k,n) = b[k*b_sk + n*b_sn]),
 * so the three matmuls of a linear layer (forward, input gradient, weight gradient) are
 * one routine. Both operands are rounded to bf16 (round to nearest even) while being packed
 * into panels of k-pairs, the layout of AVX512_BF16's VDPBF16PS (one 32-bit lane holds two
 * consecutive k of one row, and the instruction adds both products into the fp32 lane):
 *
 *   A panels: ceil(M/MR) panels, [panel][k-pair][MR rows] uint32 (2 bf16 each)
 *   B panels: ceil(N/NR) panels, [panel][k-pair][NR cols] uint32
 *
 * rows past M / columns past N and the odd k past K are zero. The product C is computed in
 * tiles of MR x NR by a micro-kernel over KC k-pairs at a time, the tile's 24 accumulators
 * in registers; tiles are grouped into tasks of MB x NB panels that the OpenMP threads share,
 * each task owning its part of C (no two threads write the same element).
 *
 * Two micro-kernels, chosen once at run time: AVX512_BF16 (VDPBF16PS) where the CPU has it,
 * else portable C with the same packed operands (the products of two bf16 are exact in
 * fp32; only the order of the fp32 additions differs). lma_cpu_bf16_isa forces one (tests).
 * The fp32 backend ("cpu") stays the exact path; tests/test_backend_ops.c checks this one
 * against a double-precision product of the bf16-rounded operands. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/cpu_sizes.h"
#include "core/log.h"
#include "quant/half.h" /* lma_q_f32_to_bf16 */

enum {
    MR = LMA_CPU_BF16_MR, NR = LMA_CPU_BF16_NR, /* the micro-tile: 12 x 2 zmm accumulators */
    KC = 128,         /* k-pairs per micro-kernel call: an A micro-panel 6 KiB, a B one 16 KiB */
    MB = 8, NB = 8,   /* panels per task: 96 x 256 of C */
};

int lma_cpu_bf16_isa = -1; /* -1: not chosen yet; 0 portable C; 1 AVX512_BF16 */

#if defined(__x86_64__) && defined(__GNUC__)
#define LMA_X86_BF16 1
#include <immintrin.h>
#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

int lma_cpu_has_avx512bf16(void) {
#ifdef LMA_X86_BF16
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
#else
    return 0;
#endif
}

static int isa(void) {
    if (lma_cpu_bf16_isa < 0) {
        lma_cpu_bf16_isa = lma_cpu_has_avx512bf16();
        if (!lma_cpu_bf16_isa)
            lma_warn("cpu-bf16: this CPU has no AVX512_BF16; the portable kernel is much slower than --device cpu");
    }
    return lma_cpu_bf16_isa;
}

static uint32_t pair(float lo, float hi) {
    return (uint32_t)lma_q_f32_to_bf16(lo) | (uint32_t)lma_q_f32_to_bf16(hi) << 16;
}

/* Panel p of width W of the operand X(x,k) = src[x*sx + k*sk] (x < X, k < K):
 * dst[kp*W + i] = pair(X(p*W+i, 2kp), X(p*W+i, 2kp+1)), zero outside. */
static void pack_c(uint32_t *dst, const float *src, long sx, long sk, int X, int K, int W, int p) {
    int KP = (K + 1) / 2;
    for (int i = 0; i < W; i++) {
        int x = p * W + i;
        for (int kp = 0; kp < KP; kp++) {
            if (x >= X) { dst[(size_t)kp * W + i] = 0; continue; }
            const float *s = src + (size_t)x * sx;
            int k = 2 * kp;
            dst[(size_t)kp * W + i] = pair(s[k * sk], k + 1 < K ? s[(k + 1) * sk] : 0.0f);
        }
    }
}

#ifdef LMA_X86_BF16
/* 16 fp32 -> 16 bf16 (VCVTNEPS2BF16: round to nearest even; denormals become zero) */
TARGET static inline __m256i cvt16(__m512 v) { return (__m256i)_mm512_cvtneps_pbh(v); }

/* pack_c where the k of a row are contiguous (sk == 1): a row's pairs are 32 consecutive
 * floats at a time, written W apart */
TARGET static void pack_avx_krow(uint32_t *dst, const float *src, long sx, int X, int K, int W, int p) {
    int KP = (K + 1) / 2, K32 = K / 32 * 32;
    for (int i = 0; i < W; i++) {
        int x = p * W + i;
        if (x >= X) {
            for (int kp = 0; kp < KP; kp++) dst[(size_t)kp * W + i] = 0;
            continue;
        }
        const float *s = src + (size_t)x * sx;
        uint32_t tmp[16];
        for (int k = 0; k < K32; k += 32) {
            __m512i lo = _mm512_cvtepu16_epi32(cvt16(_mm512_loadu_ps(s + k)));      /* k .. k+15 */
            __m512i hi = _mm512_cvtepu16_epi32(cvt16(_mm512_loadu_ps(s + k + 16))); /* k+16 .. k+31 */
            /* pairs (2j, 2j+1): even elements low, odd ones high */
            __m512i idx_e = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
            __m512i ev = _mm512_permutex2var_epi32(lo, idx_e, hi);
            __m512i od = _mm512_permutex2var_epi32(lo, _mm512_add_epi32(idx_e, _mm512_set1_epi32(1)), hi);
            _mm512_storeu_si512(tmp, _mm512_or_si512(ev, _mm512_slli_epi32(od, 16)));
            uint32_t *d = dst + (size_t)(k / 2) * W + i;
            for (int j = 0; j < 16; j++) d[(size_t)j * W] = tmp[j];
        }
        for (int k = K32; k < K; k += 2) dst[(size_t)(k / 2) * W + i] = pair(s[k], k + 1 < K ? s[k + 1] : 0.0f);
    }
}

/* pack_c where the x of a k are contiguous (sx == 1): rows k and k+1 interleaved, 16 x at a
 * time */
TARGET static void pack_avx_xrow(uint32_t *dst, const float *src, long sk, int X, int K, int W, int p) {
    int KP = (K + 1) / 2, x0 = p * W, n = X - x0 < W ? X - x0 : W;
    for (int kp = 0; kp < KP; kp++) {
        const float *r0 = src + (size_t)(2 * kp) * sk + x0;
        const float *r1 = 2 * kp + 1 < K ? r0 + sk : NULL;
        uint32_t *d = dst + (size_t)kp * W;
        for (int i = 0; i < W; i += 16) {
            int m = n - i < 16 ? (n - i > 0 ? n - i : 0) : 16;
            __mmask16 mk = (__mmask16)((1u << m) - 1);
            __m512i lo = _mm512_cvtepu16_epi32(cvt16(_mm512_maskz_loadu_ps(mk, r0 + i)));
            __m512i hi = r1 ? _mm512_cvtepu16_epi32(cvt16(_mm512_maskz_loadu_ps(mk, r1 + i))) : _mm512_setzero_si512();
            __mmask16 ms = (__mmask16)(W - i >= 16 ? 0xffffu : (1u << (W - i)) - 1); /* W = MR: 12 */
            _mm512_mask_storeu_epi32(d + i, ms, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}

/* C tile (mr x nr valid of MR x NR) = (first ? beta * C : C) + A panel . B panel over kn
 * k-pairs */
TARGET static void kernel_avx(int kn, const uint32_t *ap, const uint32_t *bp, float *c, long ldc, int mr, int nr,
                              int first, float beta) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int kp = 0; kp < kn; kp++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp + (size_t)kp * NR);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + (size_t)kp * NR + 16);
        const uint32_t *a = ap + (size_t)kp * MR;
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
        }
    }
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffffu : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xffffu : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
    __m512 vb = _mm512_set1_ps(beta);
    for (int r = 0; r < mr; r++) {
        float *cr = c + (size_t)r * ldc;
        __m512 o0 = _mm512_maskz_loadu_ps(m0, cr), o1 = _mm512_maskz_loadu_ps(m1, cr + 16);
        if (first) {
            o0 = beta == 0.0f ? _mm512_setzero_ps() : _mm512_mul_ps(o0, vb);
            o1 = beta == 0.0f ? _mm512_setzero_ps() : _mm512_mul_ps(o1, vb);
        }
        _mm512_mask_storeu_ps(cr, m0, _mm512_add_ps(o0, acc[r][0]));
        _mm512_mask_storeu_ps(cr + 16, m1, _mm512_add_ps(o1, acc[r][1]));
    }
}
#endif

static void kernel_c(int kn, const uint32_t *ap, const uint32_t *bp, float *c, long ldc, int mr, int nr, int first,
                     float beta) {
    float acc[MR][NR] = {{0}};
    for (int kp = 0; kp < kn; kp++)
        for (int r = 0; r < MR; r++) {
            uint32_t a = ap[(size_t)kp * MR + r];
            float a0 = lma_q_bf16_to_f32((uint16_t)a), a1 = lma_q_bf16_to_f32((uint16_t)(a >> 16));
            for (int j = 0; j < NR; j++) {
                uint32_t b = bp[(size_t)kp * NR + j];
                acc[r][j] += a0 * lma_q_bf16_to_f32((uint16_t)b) + a1 * lma_q_bf16_to_f32((uint16_t)(b >> 16));
            }
        }
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            float *o = c + (size_t)r * ldc + j;
            *o = (first ? (beta == 0.0f ? 0.0f : beta * *o) : *o) + acc[r][j];
        }
}

static void pack(uint32_t *dst, const float *src, long sx, long sk, int X, int K, int W, int p, int use_avx) {
#ifdef LMA_X86_BF16
    if (use_avx && sk == 1) return pack_avx_krow(dst, src, sx, X, K, W, p);
    if (use_avx && sx == 1) return pack_avx_xrow(dst, src, sk, X, K, W, p);
#endif
    (void)use_avx;
    pack_c(dst, src, sx, sk, X, K, W, p);
}

/* the packed operands: one buffer, grown as needed and kept (ops run from one host thread at a
 * time, cpu_matmul.c); NULL when it cannot grow */
static uint32_t *scratch(size_t words) {
    static uint32_t *buf;
    static size_t cap;
    if (words <= cap) return buf;
    free(buf);
    cap = 0;
    buf = aligned_alloc(64, (words * 4 + 63) / 64 * 64);
    if (buf) cap = words;
    return buf;
}

int lma_cpu_gemm_bf16(int M, int N, int K, const float *a, long a_sm, long a_sk, const float *b, long b_sk, long b_sn,
                      float *c, long ldc, float beta) {
    if (M <= 0 || N <= 0) return 0;
    if (K <= 0) { /* no products: C = beta * C */
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) c[(size_t)m * ldc + n] = beta == 0.0f ? 0.0f : beta * c[(size_t)m * ldc + n];
        return 0;
    }
    int KP = (K + 1) / 2, mp = (M + MR - 1) / MR, np = (N + NR - 1) / NR;
    size_t asz = (size_t)mp * KP * MR, bsz = (size_t)np * KP * NR; /* lma_cpu_gemm_bf16_bytes / 4 */
    uint32_t *ap = scratch(asz + bsz);
    if (!ap) return -1;
    uint32_t *bp = ap + asz;
    int avx = isa(), tm = (mp + MB - 1) / MB, tn = (np + NB - 1) / NB;
    int big = (double)M * N * K > 1e6;
#pragma omp parallel if (big)
    {
#pragma omp for schedule(static) nowait
        for (int p = 0; p < mp; p++) pack(ap + (size_t)p * KP * MR, a, a_sm, a_sk, M, K, MR, p, avx);
#pragma omp for schedule(static)
        for (int p = 0; p < np; p++) pack(bp + (size_t)p * KP * NR, b, b_sn, b_sk, N, K, NR, p, avx);
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < tm * tn; t++) {
            int pm0 = t / tn * MB, pn0 = t % tn * NB;
            int pm1 = pm0 + MB < mp ? pm0 + MB : mp, pn1 = pn0 + NB < np ? pn0 + NB : np;
            for (int k0 = 0; k0 < KP; k0 += KC) {
                int kn = KP - k0 < KC ? KP - k0 : KC;
                for (int pn = pn0; pn < pn1; pn++)
                    for (int pm = pm0; pm < pm1; pm++) {
                        int mr = M - pm * MR < MR ? M - pm * MR : MR, nr = N - pn * NR < NR ? N - pn * NR : NR;
                        const uint32_t *at = ap + ((size_t)pm * KP + k0) * MR, *bt = bp + ((size_t)pn * KP + k0) * NR;
                        float *ct = c + (size_t)pm * MR * ldc + (size_t)pn * NR;
#ifdef LMA_X86_BF16
                        if (avx) {
                            kernel_avx(kn, at, bt, ct, ldc, mr, nr, k0 == 0, beta);
                            continue;
                        }
#endif
                        kernel_c(kn, at, bt, ct, ldc, mr, nr, k0 == 0, beta);
                    }
            }
        }
    }
    return 0;
}
