/* Quantized weight rows . 8-bit activation blocks (qdot.h): the scalar oracle and the
 * AVX2 and AVX-512 VNNI kernels, one body written once (KERNELS below) over a 32-element
 * unsigned x signed byte dot product (dot_u8s8 of each instruction set). */
#include "quant/qdot.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
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
    w->data = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
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

void lma_qmat_row_f32(const lma_qmat *w, int r, float *dst) {
    const char *p = (const char *)w->data + (size_t)r * w->row_bytes;
    if (w->type == LMA_GGML_F32) memcpy(dst, p, (size_t)w->cols * sizeof(float));
    else lma_ggml_dequantize(w->type, p, dst, w->cols); /* a kept type: cannot fail */
}

void lma_q8_quantize(const float *x, int n, lma_q8_block *dst) {
    for (int b = 0; b < n / LMA_Q8_BLOCK; b++) {
        const float *v = x + (size_t)b * LMA_Q8_BLOCK;
        float amax = 0;
        for (int j = 0; j < LMA_Q8_BLOCK; j++) amax = fmaxf(amax, fabsf(v[j]));
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

/* ---- scalar: the oracle ---- */
static inline const uint8_t *row_at(const lma_qmat *w, int r) {
    return (const uint8_t *)w->data + (size_t)r * w->row_bytes;
}

static void q8_0_scalar(const lma_qmat *w, int r0, int nr, const lma_q8_block *a, float *out) {
    int nb = w->cols / 32;
    for (int i = 0; i < nr; i++) {
        const uint8_t *p = row_at(w, r0 + i);
        float acc = 0;
        for (int b = 0; b < nb; b++, p += 34) {
            int s = 0;
            for (int j = 0; j < 32; j++) s += (int8_t)p[2 + j] * a[b].q[j];
            acc += h2f(p) * a[b].d * (float)s;
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
        const uint8_t *p = row_at(w, r0 + i);
        float acc = 0;
        for (int b = 0; b < nb; b++, p += 18) {
            float dw = h2f(p);
            acc += dw * a[b].d * (float)nib_dot(p + 2, a[b].q) - 8.0f * dw * a[b].s;
        }
        out[i] = acc;
    }
}

static void q4_1_scalar(const lma_qmat *w, int r0, int nr, const lma_q8_block *a, float *out) {
    int nb = w->cols / 32;
    for (int i = 0; i < nr; i++) {
        const uint8_t *p = row_at(w, r0 + i);
        float acc = 0;
        for (int b = 0; b < nb; b++, p += 20)
            acc += h2f(p) * a[b].d * (float)nib_dot(p + 4, a[b].q) + h2f(p + 2) * a[b].s;
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
 * 32 unsigned (u, 0..255) and signed (s, -127..127) bytes; the weights are unpacked to
 * bytes, the per-block float scales applied with an FMA into 8 float accumulators. */
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
    __attribute__((target(TARGET))) static void q8_0_##SFX(const lma_qmat *w, int r0, int nr,                      \
                                                           const lma_q8_block *a, float *out) {                    \
        int nb = w->cols / 32, i = 0;                                                                               \
        for (; i + 1 < nr; i += 2) { /* two rows: one activation load, two FMA chains */                           \
            const uint8_t *p = row_at(w, r0 + i), *p2 = p + w->row_bytes;                                          \
            __m256 acc = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps();                                           \
            for (int b = 0; b < nb; b++, p += 34, p2 += 34) {                                                       \
                __m256i aq = _mm256_loadu_si256((const __m256i *)a[b].q);                                           \
                __m256i wq = _mm256_loadu_si256((const __m256i *)(p + 2));                                          \
                __m256i wq2 = _mm256_loadu_si256((const __m256i *)(p2 + 2));                                        \
                __m256i s = DOT(_mm256_abs_epi8(wq), _mm256_sign_epi8(aq, wq));                                     \
                __m256i s2 = DOT(_mm256_abs_epi8(wq2), _mm256_sign_epi8(aq, wq2));                                  \
                acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_##SFX(p) * a[b].d), _mm256_cvtepi32_ps(s), acc);          \
                acc2 = _mm256_fmadd_ps(_mm256_set1_ps(f16_##SFX(p2) * a[b].d), _mm256_cvtepi32_ps(s2), acc2);      \
            }                                                                                                       \
            out[i] = hsum_##SFX(acc);                                                                               \
            out[i + 1] = hsum_##SFX(acc2);                                                                          \
        }                                                                                                           \
        for (; i < nr; i++) {                                                                                       \
            const uint8_t *p = row_at(w, r0 + i);                                                                   \
            __m256 acc = _mm256_setzero_ps();                                                                       \
            for (int b = 0; b < nb; b++, p += 34) {                                                                 \
                __m256i wq = _mm256_loadu_si256((const __m256i *)(p + 2));                                          \
                __m256i aq = _mm256_loadu_si256((const __m256i *)a[b].q);                                           \
                __m256i s = DOT(_mm256_abs_epi8(wq), _mm256_sign_epi8(aq, wq));                                     \
                acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_##SFX(p) * a[b].d), _mm256_cvtepi32_ps(s), acc);          \
            }                                                                                                       \
            out[i] = hsum_##SFX(acc);                                                                               \
        }                                                                                                           \
    }                                                                                                               \
    __attribute__((target(TARGET))) static void q4_0_##SFX(const lma_qmat *w, int r0, int nr,                      \
                                                           const lma_q8_block *a, float *out) {                    \
        int nb = w->cols / 32;                                                                                      \
        for (int i = 0; i < nr; i++) {                                                                              \
            const uint8_t *p = row_at(w, r0 + i);                                                                   \
            __m256 acc = _mm256_setzero_ps();                                                                       \
            float corr = 0;                                                                                         \
            for (int b = 0; b < nb; b++, p += 18) {                                                                 \
                float dw = f16_##SFX(p);                                                                            \
                __m256i s = DOT(nib_##SFX(p + 2), _mm256_loadu_si256((const __m256i *)a[b].q));                     \
                acc = _mm256_fmadd_ps(_mm256_set1_ps(dw * a[b].d), _mm256_cvtepi32_ps(s), acc);                    \
                corr -= 8.0f * dw * a[b].s;                                                                         \
            }                                                                                                       \
            out[i] = hsum_##SFX(acc) + corr;                                                                        \
        }                                                                                                           \
    }                                                                                                               \
    __attribute__((target(TARGET))) static void q4_1_##SFX(const lma_qmat *w, int r0, int nr,                      \
                                                           const lma_q8_block *a, float *out) {                    \
        int nb = w->cols / 32, i = 0;                                                                               \
        for (; i + 1 < nr; i += 2) {                                                                                \
            const uint8_t *p = row_at(w, r0 + i), *p2 = p + w->row_bytes;                                          \
            __m256 acc = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps();                                           \
            float corr = 0, corr2 = 0;                                                                              \
            for (int b = 0; b < nb; b++, p += 20, p2 += 20) {                                                       \
                __m256i aq = _mm256_loadu_si256((const __m256i *)a[b].q);                                           \
                __m256i s = DOT(nib_##SFX(p + 4), aq), s2 = DOT(nib_##SFX(p2 + 4), aq);                             \
                acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_##SFX(p) * a[b].d), _mm256_cvtepi32_ps(s), acc);          \
                acc2 = _mm256_fmadd_ps(_mm256_set1_ps(f16_##SFX(p2) * a[b].d), _mm256_cvtepi32_ps(s2), acc2);      \
                corr += f16_##SFX(p + 2) * a[b].s;                                                                  \
                corr2 += f16_##SFX(p2 + 2) * a[b].s;                                                                \
            }                                                                                                       \
            out[i] = hsum_##SFX(acc) + corr;                                                                        \
            out[i + 1] = hsum_##SFX(acc2) + corr2;                                                                  \
        }                                                                                                           \
        for (; i < nr; i++) {                                                                                       \
            const uint8_t *p = row_at(w, r0 + i);                                                                   \
            __m256 acc = _mm256_setzero_ps();                                                                       \
            float corr = 0;                                                                                         \
            for (int b = 0; b < nb; b++, p += 20) {                                                                 \
                __m256i s = DOT(nib_##SFX(p + 4), _mm256_loadu_si256((const __m256i *)a[b].q));                     \
                acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_##SFX(p) * a[b].d), _mm256_cvtepi32_ps(s), acc);          \
                corr += f16_##SFX(p + 2) * a[b].s;                                                                  \
            }                                                                                                       \
            out[i] = hsum_##SFX(acc) + corr;                                                                        \
        }                                                                                                           \
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

static int has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
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
