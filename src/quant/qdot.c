/* Quantized weight rows . 8-bit activation blocks (qdot.h): the scalar oracle and the
 * AVX2 and AVX-512 VNNI kernels, one body written once (KERNELS below) over a 32-element
 * unsigned x signed byte dot product (dot_u8s8 of each instruction set). */
#include "quant/qdot.h"
#include <cpuid.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "core/arena.h"
#include "quant/ggml_quant.h"
#include "quant/half.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LMA_X86 1
#endif

int lma_qmat_type_kept(uint32_t t) {
    return t == LMA_GGML_Q8_0 || t == LMA_GGML_Q4_0 || t == LMA_GGML_Q4_1 || t == LMA_GGML_Q4_K;
}

lma_status lma_qmat_alloc(lma_qmat *w, uint32_t type, int rows, int cols) {
    memset(w, 0, sizeof *w);
    if (type != LMA_GGML_F32 && !lma_qmat_type_kept(type))
        return lma_error(LMA_ERR_UNSUPPORTED, "no quantized kernel for ggml type %s", lma_ggml_type_name(type));
    uint64_t rb;
    if (rows < 1 || cols < 1) return lma_error(LMA_ERR_ARG, "quantized matrix of %d x %d", rows, cols);
    LMA_TRY(lma_ggml_nbytes(type, (uint64_t)cols, &rb));
    size_t bytes;
    if (!lma_mul_ok((size_t)rb, (size_t)rows, &bytes) || bytes > SIZE_MAX - 64)
        return lma_error(LMA_ERR_NOMEM, "quantized matrix of %d x %d is too large", rows, cols);
    /* 2 MB and more: on 2 MB boundaries and asked for as huge pages (fewer TLB misses while
     * the kernels stream the matrix; a hint, ignored where THP is off) */
    size_t huge = (size_t)2 << 20, align = bytes >= huge ? huge : 64;
    w->data = aligned_alloc(align, (bytes + align - 1) & ~(align - 1));
#ifdef MADV_HUGEPAGE
    if (w->data && align == huge) madvise(w->data, (bytes + align - 1) & ~(align - 1), MADV_HUGEPAGE);
#endif
    if (!w->data) return lma_error(LMA_ERR_NOMEM, "out of memory for a %d x %d %s matrix (%.1f MB)", rows, cols,
                                   lma_ggml_type_name(type), (double)bytes / 1e6);
    w->type = type;
    w->rows = rows;
    w->cols = cols;
    w->row_bytes = (size_t)rb;
    return LMA_OK;
}

void lma_qmat_free(lma_qmat *w) {
    if (!w) return;
    free(w->data);
    memset(w, 0, sizeof *w);
}


#ifdef LMA_X86
static void q8_quantize_avx2(const float *x, int n, lma_q8_block *dst);
static int has_avx2(void);
#endif

void lma_q8_quantize(const float *x, int n, lma_q8_block *dst) {
#ifdef LMA_X86
    static int avx2 = -1;
    if (avx2 < 0) avx2 = has_avx2();
    if (avx2) { q8_quantize_avx2(x, n, dst); return; }
#endif
    for (int b = 0; b < n / LMA_Q8_BLOCK; b++) {
        const float *v = x + (size_t)b * LMA_Q8_BLOCK;
        float amax = 0;
        for (int j = 0; j < LMA_Q8_BLOCK; j++) amax = fabsf(v[j]) > amax ? fabsf(v[j]) : amax;
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < LMA_Q8_BLOCK; j++) {
            int q = (int)lrintf(v[j] * id);
            q = q > 127 ? 127 : q < -127 ? -127 : q;
            dst[b].q[j] = (int8_t)q;
            sum += q;
        }
        dst[b].d = d;
        dst[b].s = d * (float)sum;
    }
}

double lma_q8_error_bound(const lma_qmat *w, int r, const float *x) {
    float *row = malloc((size_t)w->cols * sizeof(float));
    if (!row) return INFINITY;
    lma_qmat_row_f32(w, r, row);
    double bound = 0;
    for (int b = 0; b < w->cols / LMA_Q8_BLOCK; b++) {
        double amax = 0, wabs = 0;
        for (int j = 0; j < LMA_Q8_BLOCK; j++) {
            size_t k = (size_t)b * LMA_Q8_BLOCK + j;
            amax = fmax(amax, fabs((double)x[k]));
            wabs += fabs((double)row[k]);
        }
        bound += amax / 127.0 / 2.0 * wabs;
    }
    free(row);
    return bound;
}

static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return lma_q_f16_to_f32(h);
}

/* Q4_K's 6-bit scale and min of sub-block j (ggml's get_scale_min_k4) */
static inline void scale_min_k4(int j, const uint8_t *q, int *d, int *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static inline const uint8_t *row_at(const lma_qmat *w, int r) {
    return (const uint8_t *)w->data + (size_t)r * w->row_bytes;
}

/* ---- the packed row layout (Q8_0, Q4_0, Q4_1): the same bytes as ggml's blocks, regrouped
 * per row as  d[nb] fp16 | m[nb] fp16 (Q4_1) | qs[nb] (32 int8 or 16 nibble bytes each),
 * so that 8 blocks' scales convert in one instruction (vcvtph2ps) ---- */
static int packs(uint32_t t) { return t == LMA_GGML_Q8_0 || t == LMA_GGML_Q4_0 || t == LMA_GGML_Q4_1; }
static size_t qs_bytes(uint32_t t) { return t == LMA_GGML_Q8_0 ? 32 : 16; }
static size_t head_bytes(uint32_t t) { return t == LMA_GGML_Q4_1 ? 4 : 2; } /* d (+ m) per block */

lma_status lma_qmat_pack(lma_qmat *w) {
    if (w->packed || !packs(w->type)) return LMA_OK;
    size_t nb = (size_t)w->cols / 32, bb = lma_ggml_block_bytes(w->type), qb = qs_bytes(w->type);
    size_t hb = head_bytes(w->type);
    uint8_t *tmp = malloc(w->row_bytes);
    if (!tmp) return lma_error(LMA_ERR_NOMEM, "out of memory");
    for (int r = 0; r < w->rows; r++) {
        uint8_t *row = (uint8_t *)w->data + (size_t)r * w->row_bytes;
        memcpy(tmp, row, w->row_bytes);
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *blk = tmp + b * bb;
            memcpy(row + 2 * b, blk, 2);
            if (hb == 4) memcpy(row + 2 * nb + 2 * b, blk + 2, 2);
            memcpy(row + hb * nb + qb * b, blk + hb, qb);
        }
    }
    free(tmp);
    w->packed = 1;
    return LMA_OK;
}

void lma_qmat_row_f32(const lma_qmat *w, int r, float *dst) {
    const uint8_t *p = row_at(w, r);
    if (w->type == LMA_GGML_F32) { memcpy(dst, p, (size_t)w->cols * sizeof(float)); return; }
    if (!w->packed) { lma_ggml_dequantize(w->type, p, dst, w->cols); return; } /* a kept type: cannot fail */
    /* ggml's dequantize_row_* on the regrouped bytes, the same operations in the same order
     * (no contraction in ISO C mode: tests/test_quant_matmul.c compares the bits) */
    int nb = w->cols / 32;
    if (w->type == LMA_GGML_Q8_0) {
        const int8_t *qs = (const int8_t *)(p + 2 * (size_t)nb);
        for (int b = 0; b < nb; b++) {
            float d = h2f(p + 2 * b);
            for (int j = 0; j < 32; j++) dst[32 * b + j] = qs[32 * b + j] * d;
        }
        return;
    }
    const uint8_t *qs = p + (w->type == LMA_GGML_Q4_1 ? 4 : 2) * (size_t)nb;
    for (int b = 0; b < nb; b++) {
        float d = h2f(p + 2 * b), m = w->type == LMA_GGML_Q4_1 ? h2f(p + 2 * (size_t)nb + 2 * b) : 0.0f;
        const uint8_t *q = qs + 16 * b;
        float *y = dst + 32 * b;
        if (w->type == LMA_GGML_Q4_1)
            for (int j = 0; j < 16; j++) { y[j] = (q[j] & 0x0F) * d + m; y[j + 16] = (q[j] >> 4) * d + m; }
        else
            for (int j = 0; j < 16; j++) { y[j] = ((q[j] & 0x0F) - 8) * d; y[j + 16] = ((q[j] >> 4) - 8) * d; }
    }
}

/* ---- scalar: the oracle (packed rows for Q8_0, Q4_0, Q4_1) ----
 * Not vectorized by GCC: GCC 12 at -O3 -march=native on a CPU with AVX512_VNNI (AMD Zen 4)
 * turned q8_0_scalar's signed x signed byte dot into wrong code (VPDPBUSD, which is unsigned
 * x signed), and the oracle then disagreed with the fp32 dot and with both SIMD kernels. */
#if defined(__GNUC__) && !defined(__clang__)
#define LMA_NO_VECTORIZE __attribute__((optimize("no-tree-vectorize")))
#else
#define LMA_NO_VECTORIZE
#endif
LMA_NO_VECTORIZE static void q8_0_scalar(const lma_qmat *w, int r0, int nr, const lma_q8_block *a, float *out) {
    int nb = w->cols / 32;
    for (int i = 0; i < nr; i++) {
        const uint8_t *p = row_at(w, r0 + i), *qs = p + 2 * nb;
        float acc = 0;
        for (int b = 0; b < nb; b++) {
            int s = 0;
            for (int j = 0; j < 32; j++) s += (int8_t)qs[32 * b + j] * a[b].q[j];
            acc += h2f(p + 2 * b) * a[b].d * (float)s;
        }
        out[i] = acc;
    }
}

/* Q4_0 (off 8, no min) and Q4_1 (off 0, min) share the nibble layout */
static inline int nib_dot(const uint8_t *qs, const int8_t *q) {
    int s = 0;
    for (int j = 0; j < 16; j++) s += (qs[j] & 0xF) * q[j] + (qs[j] >> 4) * q[j + 16];
    return s;
}

static void q4_0_scalar(const lma_qmat *w, int r0, int nr, const lma_q8_block *a, float *out) {
    int nb = w->cols / 32;
    for (int i = 0; i < nr; i++) {
        const uint8_t *p = row_at(w, r0 + i), *qs = p + 2 * nb;
        float acc = 0;
        for (int b = 0; b < nb; b++) {
            float dw = h2f(p + 2 * b);
            acc += dw * a[b].d * (float)nib_dot(qs + 16 * b, a[b].q) - 8.0f * dw * a[b].s;
        }
        out[i] = acc;
    }
}

static void q4_1_scalar(const lma_qmat *w, int r0, int nr, const lma_q8_block *a, float *out) {
    int nb = w->cols / 32;
    for (int i = 0; i < nr; i++) {
        const uint8_t *p = row_at(w, r0 + i), *qs = p + 4 * nb;
        float acc = 0;
        for (int b = 0; b < nb; b++)
            acc += h2f(p + 2 * b) * a[b].d * (float)nib_dot(qs + 16 * b, a[b].q) + h2f(p + 2 * nb + 2 * b) * a[b].s;
        out[i] = acc;
    }
}

static void q4_k_scalar(const lma_qmat *w, int r0, int nr, const lma_q8_block *a, float *out) {
    int ns = w->cols / 256;
    for (int i = 0; i < nr; i++) {
        const uint8_t *p = row_at(w, r0 + i);
        float acc = 0;
        for (int sb = 0; sb < ns; sb++, p += 144) {
            float d = h2f(p), dmin = h2f(p + 2);
            const uint8_t *sc = p + 4, *qs = p + 16;
            const lma_q8_block *ab = a + 8 * sb;
            for (int j = 0; j < 4; j++, qs += 32) {
                int s1, m1, s2, m2, lo = 0, hi = 0;
                scale_min_k4(2 * j, sc, &s1, &m1);
                scale_min_k4(2 * j + 1, sc, &s2, &m2);
                for (int l = 0; l < 32; l++) {
                    lo += (qs[l] & 0xF) * ab[2 * j].q[l];
                    hi += (qs[l] >> 4) * ab[2 * j + 1].q[l];
                }
                acc += d * (float)s1 * ab[2 * j].d * (float)lo - dmin * (float)m1 * ab[2 * j].s;
                acc += d * (float)s2 * ab[2 * j + 1].d * (float)hi - dmin * (float)m2 * ab[2 * j + 1].s;
            }
        }
        out[i] = acc;
    }
}

static int always(void) { return 1; }

#ifdef LMA_X86
/* The SIMD kernels: for each ISA, DOT(u, s) is 8 int32 lanes whose sum is sum_j u_j s_j over
 * 32 unsigned (u, 0..255) and signed (s, -127..127) bytes. Packed rows (Q8_0, Q4_0, Q4_1) go
 * 8 blocks at a time: the 8 blocks' lane sums are folded into one vector of 8 block sums
 * (hadd tree), scaled by the 8 weight scales (one vcvtph2ps) times the 8 activation scales,
 * one FMA; the other blocks (nb % 8) one at a time. Q4_K: per 32-element sub-block. */
#ifndef LMA_QDOT_PREFETCH
#define LMA_QDOT_PREFETCH 1024 /* bytes ahead in the weight stream */
#endif
#define KERNELS(SFX, TARGET, DOT)                                                                                   \
    __attribute__((target(TARGET))) static inline float hsum_##SFX(__m256 v) {                                     \
        __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));                             \
        x = _mm_add_ps(x, _mm_movehl_ps(x, x));                                                                     \
        x = _mm_add_ss(x, _mm_movehdup_ps(x));                                                                      \
        return _mm_cvtss_f32(x);                                                                                    \
    }                                                                                                               \
    __attribute__((target(TARGET))) static inline float f16_##SFX(const uint8_t *p) {                              \
        uint16_t h;                                                                                                 \
        memcpy(&h, p, 2);                                                                                           \
        return _cvtsh_ss(h);                                                                                        \
    }                                                                                                               \
    /* 16 bytes of nibbles -> 32 bytes in element order (low nibbles first) */                                      \
    __attribute__((target(TARGET))) static inline __m256i nib_##SFX(const uint8_t *qs) {                           \
        __m128i raw = _mm_loadu_si128((const __m128i *)qs), m4 = _mm_set1_epi8(0xF);                                \
        return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4));                \
    }                                                                                                               \
    /* the integer dot of block b of a packed row (type by qb: 32 = Q8_0 signed, 16 = nibbles) */                  \
    __attribute__((target(TARGET))) static inline __m256i bdot_##SFX(const uint8_t *qs, int qb, int b,             \
                                                                      const lma_q8_block *a) {                     \
        __m256i aq = _mm256_loadu_si256((const __m256i *)a[b].q);                                                   \
        if (qb == 32) {                                                                                             \
            __m256i wq = _mm256_loadu_si256((const __m256i *)(qs + 32 * b));                                        \
            return DOT(_mm256_abs_epi8(wq), _mm256_sign_epi8(aq, wq));                                              \
        }                                                                                                           \
        return DOT(nib_##SFX(qs + 16 * b), aq);                                                                     \
    }                                                                                                               \
    /* [sum(v0) .. sum(v7)] */                                                                                      \
    __attribute__((target(TARGET))) static inline __m256i fold8_##SFX(__m256i v0, __m256i v1, __m256i v2,          \
                                                                       __m256i v3, __m256i v4, __m256i v5,          \
                                                                       __m256i v6, __m256i v7) {                    \
        __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));                      \
        __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(v4, v5), _mm256_hadd_epi32(v6, v7));                      \
        return _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31)); \
    }                                                                                                               \
    /* mode 0: Q8_0 (d q), 1: Q4_0 (d (nib - 8)), 2: Q4_1 (d nib + m) */                                           \
    __attribute__((target(TARGET))) static inline void packed_##SFX(const lma_qmat *w, int r0, int nr,             \
                                                                    const lma_q8_block *a, float *out, int mode) { \
        int nb = w->cols / 32, qb = mode == 0 ? 32 : 16, hb = mode == 2 ? 4 : 2, n8 = nb & ~7;                    \
        float ad[n8 + 8], as[n8 + 8];                                                                               \
        for (int b = 0; b < n8; b++) { ad[b] = a[b].d; as[b] = a[b].s; }                                            \
        for (int i = 0; i < nr; i++) {                                                                              \
            const uint8_t *p = row_at(w, r0 + i), *qs = p + (size_t)hb * nb;                                        \
            __m256 acc = _mm256_setzero_ps(), corr = _mm256_setzero_ps();                                           \
            for (int g = 0; g < n8; g += 8) {                                                                       \
                const char *pf = (const char *)(qs + (size_t)qb * g) + LMA_QDOT_PREFETCH;                          \
                for (int l = 0; l < qb * 8; l += 64) _mm_prefetch(pf + l, _MM_HINT_T0);                             \
                __m256i t = fold8_##SFX(bdot_##SFX(qs, qb, g, a), bdot_##SFX(qs, qb, g + 1, a),                     \
                                        bdot_##SFX(qs, qb, g + 2, a), bdot_##SFX(qs, qb, g + 3, a),                 \
                                        bdot_##SFX(qs, qb, g + 4, a), bdot_##SFX(qs, qb, g + 5, a),                 \
                                        bdot_##SFX(qs, qb, g + 6, a), bdot_##SFX(qs, qb, g + 7, a));                \
                __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * g)));                         \
                acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_loadu_ps(ad + g)), _mm256_cvtepi32_ps(t), acc);      \
                if (mode == 1)                                                                                      \
                    corr = _mm256_fmadd_ps(dw, _mm256_loadu_ps(as + g), corr);                                      \
                else if (mode == 2)                                                                                 \
                    corr = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * nb + 2 * g))), \
                                           _mm256_loadu_ps(as + g), corr);                                          \
            }                                                                                                       \
            float y = hsum_##SFX(acc), c = hsum_##SFX(corr);                                                        \
            y += mode == 1 ? -8.0f * c : c;                                                                         \
            for (int b = n8; b < nb; b++) {                                                                         \
                float dw = f16_##SFX(p + 2 * b);                                                                    \
                __m256i v = bdot_##SFX(qs, qb, b, a);                                                               \
                __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));               \
                h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));                                                   \
                h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));                                                   \
                y += dw * a[b].d * (float)_mm_cvtsi128_si32(h);                                                     \
                if (mode == 1) y -= 8.0f * dw * a[b].s;                                                             \
                else if (mode == 2) y += f16_##SFX(p + 2 * nb + 2 * b) * a[b].s;                                    \
            }                                                                                                       \
            out[i] = y;                                                                                             \
        }                                                                                                           \
    }                                                                                                               \
    __attribute__((target(TARGET))) static void q8_0_##SFX(const lma_qmat *w, int r0, int nr,                      \
                                                           const lma_q8_block *a, float *out) {                    \
        packed_##SFX(w, r0, nr, a, out, 0);                                                                         \
    }                                                                                                               \
    __attribute__((target(TARGET))) static void q4_0_##SFX(const lma_qmat *w, int r0, int nr,                      \
                                                           const lma_q8_block *a, float *out) {                    \
        packed_##SFX(w, r0, nr, a, out, 1);                                                                         \
    }                                                                                                               \
    __attribute__((target(TARGET))) static void q4_1_##SFX(const lma_qmat *w, int r0, int nr,                      \
                                                           const lma_q8_block *a, float *out) {                    \
        packed_##SFX(w, r0, nr, a, out, 2);                                                                         \
    }                                                                                                               \
    __attribute__((target(TARGET))) static void q4_k_##SFX(const lma_qmat *w, int r0, int nr,                      \
                                                           const lma_q8_block *a, float *out) {                    \
        int ns = w->cols / 256;                                                                                     \
        const __m256i m4 = _mm256_set1_epi8(0xF);                                                                   \
        for (int i = 0; i < nr; i++) {                                                                              \
            const uint8_t *p = row_at(w, r0 + i);                                                                   \
            __m256 acc = _mm256_setzero_ps();                                                                       \
            float corr = 0;                                                                                         \
            for (int sb = 0; sb < ns; sb++, p += 144) {                                                             \
                float d = f16_##SFX(p), dmin = f16_##SFX(p + 2);                                                    \
                const uint8_t *sc = p + 4, *qs = p + 16;                                                            \
                const lma_q8_block *ab = a + 8 * sb;                                                                \
                for (int j = 0; j < 4; j++, qs += 32) {                                                             \
                    int s1, m1, s2, m2;                                                                             \
                    scale_min_k4(2 * j, sc, &s1, &m1);                                                              \
                    scale_min_k4(2 * j + 1, sc, &s2, &m2);                                                          \
                    __m256i raw = _mm256_loadu_si256((const __m256i *)qs);                                          \
                    __m256i lo = DOT(_mm256_and_si256(raw, m4), _mm256_loadu_si256((const __m256i *)ab[2 * j].q));  \
                    __m256i hi = DOT(_mm256_and_si256(_mm256_srli_epi16(raw, 4), m4),                               \
                                     _mm256_loadu_si256((const __m256i *)ab[2 * j + 1].q));                         \
                    acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)s1 * ab[2 * j].d), _mm256_cvtepi32_ps(lo), acc); \
                    acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)s2 * ab[2 * j + 1].d), _mm256_cvtepi32_ps(hi),  \
                                          acc);                                                                     \
                    corr -= dmin * ((float)m1 * ab[2 * j].s + (float)m2 * ab[2 * j + 1].s);                         \
                }                                                                                                   \
            }                                                                                                       \
            out[i] = hsum_##SFX(acc) + corr;                                                                        \
        }                                                                                                           \
    }

/* AVX2: maddubs gives 16 int16 pair sums (at most 2*255*127 = 64770 would overflow, but
 * the unsigned side is a nibble or |int8| <= 128: 2*128*127 = 32512 fits), madd by 1 widens */
__attribute__((target("avx2,fma,f16c"))) static inline __m256i dot_avx2(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
KERNELS(avx2, "avx2,fma,f16c", dot_avx2)

/* AVX-512 VNNI (256-bit vpdpbusd: AVX512_VNNI + AVX512VL): the 4-byte dot in one step */
#define AVX512_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
__attribute__((target(AVX512_TARGET))) static inline __m256i dot_avx512(__m256i u, __m256i s) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}
KERNELS(avx512, AVX512_TARGET, dot_avx512)

/* lma_q8_quantize with AVX2: the same numbers (cvtps rounds to nearest even as lrintf
 * does in the default rounding mode; |x / d| <= 127 needs no clamp) */
__attribute__((target("avx2,fma"))) static void q8_quantize_avx2(const float *x, int n, lma_q8_block *dst) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int b = 0; b < n / LMA_Q8_BLOCK; b++) {
        const float *v = x + (size_t)b * LMA_Q8_BLOCK;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8), v2 = _mm256_loadu_ps(v + 16),
               v3 = _mm256_loadu_ps(v + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h), d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        __m256 s = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, s)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, s));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, s)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, s));
        __m256i sum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)dst[b].q, _mm256_permutevar8x32_epi32(p, perm));
        dst[b].d = d;
        dst[b].s = d * (float)_mm_cvtsi128_si32(s4);
    }
}

static int has_f16c(void) { /* CPUID.1:ECX bit 29 (clang 14's __builtin_cpu_supports does not know "f16c") */
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
static int has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
}
static int has_avx512(void) {
    __builtin_cpu_init();
    return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
#endif

static const lma_qdot_kernel kernels[] = {
    {"scalar", always, {q8_0_scalar, q4_0_scalar, q4_1_scalar, q4_k_scalar}},
#ifdef LMA_X86
    {"avx2", has_avx2, {q8_0_avx2, q4_0_avx2, q4_1_avx2, q4_k_avx2}},
    {"avx512", has_avx512, {q8_0_avx512, q4_0_avx512, q4_1_avx512, q4_k_avx512}},
#endif
};

const lma_qdot_kernel *lma_qdot_kernels(int *n) {
    *n = (int)(sizeof kernels / sizeof *kernels);
    return kernels;
}

const lma_qdot_kernel *lma_qdot_best(void) {
    int n = (int)(sizeof kernels / sizeof *kernels);
    const char *want = getenv("LMA_QDOT");
    for (int i = 0; want && i < n; i++)
        if (!strcmp(want, kernels[i].name) && kernels[i].supported()) return &kernels[i];
    for (int i = n - 1; i > 0; i--)
        if (kernels[i].supported()) return &kernels[i];
    return &kernels[0];
}

lma_qdot_fn lma_qdot_for(const lma_qdot_kernel *k, uint32_t type) {
    switch (type) {
    case LMA_GGML_Q8_0: return k->dot[0];
    case LMA_GGML_Q4_0: return k->dot[1];
    case LMA_GGML_Q4_1: return k->dot[2];
    case LMA_GGML_Q4_K: return k->dot[3];
    default: return NULL;
    }
}
