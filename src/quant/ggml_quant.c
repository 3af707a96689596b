/* ggml block codecs: the type table, dequantization of F32/F16/BF16, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0 and the K-quants Q2_K..Q6_K, quantization to F32/F16/BF16 and
 * the legacy 32-element formats. Each codec is a plain per-block function written
 * after ggml-quants.c (dequantize_row_*, quantize_row_*_ref) and gguf-py's
 * gguf/quants.py; the drivers run the blocks in an OpenMP loop. See ggml_quant.h. */
#include "quant/ggml_quant.h"
#include <math.h>
#include <string.h>
#include "quant/half.h"

/* ggml's fp32 results depend on each product and sum being rounded on its own:
 * no fused multiply-add. GCC in ISO C mode (-std=c11) does not contract; clang
 * contracts within one expression unless told not to. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define QK 32
#define QK_K 256
#define PAR_MIN_ELEMS 65536 /* below this a loop runs on one thread */

/* ---- the type table (ggml.c type_traits; names as gguf-py's GGMLQuantizationType) ---- */
typedef struct { const char *name; int64_t blck; size_t bytes; } type_info;
static const type_info TYPES[] = {
    [0] = {"F32", 1, 4},          [1] = {"F16", 1, 2},
    [2] = {"Q4_0", QK, 18},       [3] = {"Q4_1", QK, 20},
    [6] = {"Q5_0", QK, 22},       [7] = {"Q5_1", QK, 24},
    [8] = {"Q8_0", QK, 34},       [9] = {"Q8_1", QK, 36},
    [10] = {"Q2_K", QK_K, 84},    [11] = {"Q3_K", QK_K, 110},
    [12] = {"Q4_K", QK_K, 144},   [13] = {"Q5_K", QK_K, 176},
    [14] = {"Q6_K", QK_K, 210},   [15] = {"Q8_K", QK_K, 292},
    [16] = {"IQ2_XXS", QK_K, 66}, [17] = {"IQ2_XS", QK_K, 74},
    [18] = {"IQ3_XXS", QK_K, 98}, [19] = {"IQ1_S", QK_K, 50},
    [20] = {"IQ4_NL", QK, 18},    [21] = {"IQ3_S", QK_K, 110},
    [22] = {"IQ2_S", QK_K, 82},   [23] = {"IQ4_XS", QK_K, 136},
    [24] = {"I8", 1, 1},          [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},         [27] = {"I64", 1, 8},
    [28] = {"F64", 1, 8},         [29] = {"IQ1_M", QK_K, 56},
    [30] = {"BF16", 1, 2},
    [34] = {"TQ1_0", QK_K, 54},   [35] = {"TQ2_0", QK_K, 66},
    [39] = {"MXFP4", 32, 17},     [40] = {"NVFP4", 64, 36},
    [41] = {"Q1_0", 128, 18},
};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])

static const type_info *info(uint32_t type) {
    return type < NTYPES && TYPES[type].name ? &TYPES[type] : NULL;
}

const char *lma_ggml_type_name(uint32_t type) { const type_info *t = info(type); return t ? t->name : NULL; }
int64_t lma_ggml_block_elems(uint32_t type) { const type_info *t = info(type); return t ? t->blck : 0; }
size_t lma_ggml_block_bytes(uint32_t type) { const type_info *t = info(type); return t ? t->bytes : 0; }

lma_status lma_ggml_nbytes(uint32_t type, uint64_t n, uint64_t *out) {
    const type_info *t = info(type);
    if (!t) return lma_error(LMA_ERR_FORMAT, "ggml type %u is unknown", (unsigned)type);
    if (n % (uint64_t)t->blck)
        return lma_error(LMA_ERR_FORMAT, "%llu elements of %s are not a multiple of its block of %lld",
                         (unsigned long long)n, t->name, (long long)t->blck);
    uint64_t nb = n / (uint64_t)t->blck;
    if (nb > UINT64_MAX / t->bytes)
        return lma_error(LMA_ERR_FORMAT, "%llu elements of %s overflow a 64-bit byte count",
                         (unsigned long long)n, t->name);
    *out = nb * t->bytes;
    return LMA_OK;
}

/* ---- byte loads (blocks may sit at any address) ---- */
static inline float ld_f16(const uint8_t *p) { return lma_q_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }
static inline uint32_t ld_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void st_f16(uint8_t *p, float f) { uint16_t h = lma_q_f32_to_f16(f); p[0] = (uint8_t)h; p[1] = (uint8_t)(h >> 8); }
static inline void st_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

/* ---- dequantization, one block: b (block bytes) -> y (block elements) ---- */
static void deq_q4_0(const uint8_t *b, float *y) {
    const float d = ld_f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < QK / 2; j++) {
        const int x0 = (qs[j] & 0x0F) - 8, x1 = (qs[j] >> 4) - 8;
        y[j] = x0 * d;
        y[j + QK / 2] = x1 * d;
    }
}

static void deq_q4_1(const uint8_t *b, float *y) {
    const float d = ld_f16(b), m = ld_f16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < QK / 2; j++) {
        const float p0 = (qs[j] & 0x0F) * d, p1 = (qs[j] >> 4) * d;
        y[j] = p0 + m;
        y[j + QK / 2] = p1 + m;
    }
}

static void deq_q5_0(const uint8_t *b, float *y) {
    const float d = ld_f16(b);
    const uint32_t qh = ld_u32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < QK / 2; j++) {
        const uint8_t xh0 = ((qh >> j) << 4) & 0x10, xh1 = (qh >> (j + 12)) & 0x10;
        const int32_t x0 = ((qs[j] & 0x0F) | xh0) - 16, x1 = ((qs[j] >> 4) | xh1) - 16;
        y[j] = x0 * d;
        y[j + QK / 2] = x1 * d;
    }
}

static void deq_q5_1(const uint8_t *b, float *y) {
    const float d = ld_f16(b), m = ld_f16(b + 2);
    const uint32_t qh = ld_u32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < QK / 2; j++) {
        const uint8_t xh0 = ((qh >> j) << 4) & 0x10, xh1 = (qh >> (j + 12)) & 0x10;
        const int x0 = (qs[j] & 0x0F) | xh0, x1 = (qs[j] >> 4) | xh1;
        const float p0 = x0 * d, p1 = x1 * d;
        y[j] = p0 + m;
        y[j + QK / 2] = p1 + m;
    }
}

static void deq_q8_0(const uint8_t *b, float *y) {
    const float d = ld_f16(b);
    for (int j = 0; j < QK; j++) y[j] = (int8_t)b[2 + j] * d;
}

/* Q2_K: scales[16] | qs[64] | d | dmin */
static void deq_q2_k(const uint8_t *b, float *y) {
    const float d = ld_f16(b + 80), min = ld_f16(b + 82);
    const uint8_t *sc = b, *q = b + 16;
    int is = 0;
    for (int n = 0; n < QK_K; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; j++) {
            for (int half = 0; half < 2; half++) {
                const uint8_t s = sc[is++];
                const float dl = d * (s & 0xF), ml = min * (s >> 4);
                for (int l = 0; l < 16; l++) {
                    const float p = dl * ((q[l + 16 * half] >> shift) & 3);
                    *y++ = p - ml;
                }
            }
            shift += 2;
        }
        q += 32;
    }
}

/* Q3_K: hmask[32] | qs[64] | scales[12] | d */
static void deq_q3_k(const uint8_t *b, float *y) {
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    const float d_all = ld_f16(b + 108);
    const uint8_t *hm = b, *q = b + 32;
    uint32_t aux[4];
    aux[0] = ld_u32(b + 96); aux[1] = ld_u32(b + 100); aux[2] = ld_u32(b + 104);
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    int8_t scales[16]; /* byte k of aux (little-endian), as ggml's int8 view of aux */
    for (int k = 0; k < 16; k++) scales[k] = (int8_t)(uint8_t)(aux[k / 4] >> (8 * (k % 4)));
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < QK_K; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; j++) {
            for (int half = 0; half < 2; half++) {
                const float dl = d_all * (scales[is++] - 32);
                for (int l = 0; l < 16; l++) {
                    const int o = l + 16 * half;
                    *y++ = dl * ((int8_t)((q[o] >> shift) & 3) - ((hm[o] & m) ? 0 : 4));
                }
            }
            shift += 2;
            m <<= 1;
        }
        q += 32;
    }
}

/* the 6-bit scale and min j (0..7) of Q4_K/Q5_K's 12 packed bytes */
static inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

/* Q4_K: d | dmin | scales[12] | qs[128] */
static void deq_q4_k(const uint8_t *b, float *y) {
    const float d = ld_f16(b), min = ld_f16(b + 2);
    const uint8_t *scales = b + 4, *q = b + 16;
    int is = 0;
    uint8_t sc, m;
    for (int j = 0; j < QK_K; j += 64) {
        get_scale_min_k4(is + 0, scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        get_scale_min_k4(is + 1, scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; l++) { const float p = d1 * (q[l] & 0xF); *y++ = p - m1; }
        for (int l = 0; l < 32; l++) { const float p = d2 * (q[l] >> 4); *y++ = p - m2; }
        q += 32;
        is += 2;
    }
}

/* Q5_K: d | dmin | scales[12] | qh[32] | qs[128] */
static void deq_q5_k(const uint8_t *b, float *y) {
    const float d = ld_f16(b), min = ld_f16(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
    int is = 0;
    uint8_t sc, m, u1 = 1, u2 = 2;
    for (int j = 0; j < QK_K; j += 64) {
        get_scale_min_k4(is + 0, scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        get_scale_min_k4(is + 1, scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; l++) { const float p = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)); *y++ = p - m1; }
        for (int l = 0; l < 32; l++) { const float p = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)); *y++ = p - m2; }
        ql += 32;
        is += 2;
        u1 <<= 2;
        u2 <<= 2;
    }
}

/* Q6_K: ql[128] | qh[64] | scales int8[16] | d */
static void deq_q6_k(const uint8_t *b, float *y) {
    const float d = ld_f16(b + 208);
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    for (int n = 0; n < QK_K; n += 128) {
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int8_t q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int8_t q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l + 0] = d * sc[is + 0] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

typedef void (*deq_fn)(const uint8_t *b, float *y);
typedef void (*quant_fn)(const float *x, uint8_t *b);

static deq_fn deq_for(uint32_t type) {
    switch (type) {
    case LMA_GGML_Q4_0: return deq_q4_0;
    case LMA_GGML_Q4_1: return deq_q4_1;
    case LMA_GGML_Q5_0: return deq_q5_0;
    case LMA_GGML_Q5_1: return deq_q5_1;
    case LMA_GGML_Q8_0: return deq_q8_0;
    case LMA_GGML_Q2_K: return deq_q2_k;
    case LMA_GGML_Q3_K: return deq_q3_k;
    case LMA_GGML_Q4_K: return deq_q4_k;
    case LMA_GGML_Q5_K: return deq_q5_k;
    case LMA_GGML_Q6_K: return deq_q6_k;
    default: return NULL;
    }
}

/* ---- quantization, one block of 32: x -> b (gguf-py quants.py, ggml quantize_row_*_ref) ---- */

/* the element of largest magnitude, the first one on ties (numpy argmax of |x|) */
static inline float signed_absmax(const float *x) {
    int imax = 0;
    float amax = fabsf(x[0]);
    for (int j = 1; j < QK; j++)
        if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); imax = j; }
    return x[imax];
}

/* trunc(v) clipped to [0, hi] (numpy trunc + astype(uint8) + clip; NaN -> 0) */
static inline int trunc_clip(float v, int hi) {
    if (!(v >= 0.0f)) return 0;
    if (v >= (float)hi) return hi;
    return (int)v;
}

static inline void min_max(const float *x, float *mn, float *mx) {
    float lo = 3.40282347e+38f, hi = -3.40282347e+38f;
    for (int j = 0; j < QK; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

static void q_q4_0(const float *x, uint8_t *b) {
    const float d = signed_absmax(x) / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    st_f16(b, d);
    for (int j = 0; j < QK / 2; j++) {
        const float x0 = x[j] * id, x1 = x[j + QK / 2] * id;
        const float v0 = x0 + 8.5f, v1 = x1 + 8.5f;
        b[2 + j] = (uint8_t)(trunc_clip(v0, 15) | trunc_clip(v1, 15) << 4);
    }
}

static void q_q4_1(const float *x, uint8_t *b) {
    float min, max;
    min_max(x, &min, &max);
    const float d = (max - min) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    st_f16(b, d);
    st_f16(b + 2, min);
    for (int j = 0; j < QK / 2; j++) {
        const float x0 = (x[j] - min) * id, x1 = (x[j + QK / 2] - min) * id;
        const float v0 = x0 + 0.5f, v1 = x1 + 0.5f;
        b[4 + j] = (uint8_t)(trunc_clip(v0, 15) | trunc_clip(v1, 15) << 4);
    }
}

static void q_q5_0(const float *x, uint8_t *b) {
    const float d = signed_absmax(x) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    st_f16(b, d);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        const float x0 = x[j] * id, x1 = x[j + QK / 2] * id;
        const float v0 = x0 + 16.5f, v1 = x1 + 16.5f;
        const int q0 = trunc_clip(v0, 31), q1 = trunc_clip(v1, 31);
        b[6 + j] = (uint8_t)((q0 & 0x0F) | (q1 & 0x0F) << 4);
        qh |= (uint32_t)(q0 >> 4) << j;
        qh |= (uint32_t)(q1 >> 4) << (j + QK / 2);
    }
    st_u32(b + 2, qh);
}

static void q_q5_1(const float *x, uint8_t *b) {
    float min, max;
    min_max(x, &min, &max);
    const float d = (max - min) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    st_f16(b, d);
    st_f16(b + 2, min);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        const float x0 = (x[j] - min) * id, x1 = (x[j + QK / 2] - min) * id;
        const float v0 = x0 + 0.5f, v1 = x1 + 0.5f;
        const int q0 = trunc_clip(v0, 31), q1 = trunc_clip(v1, 31);
        b[8 + j] = (uint8_t)((q0 & 0x0F) | (q1 & 0x0F) << 4);
        qh |= (uint32_t)(q0 >> 4) << j;
        qh |= (uint32_t)(q1 >> 4) << (j + QK / 2);
    }
    st_u32(b + 4, qh);
}

static void q_q8_0(const float *x, uint8_t *b) {
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    st_f16(b, d);
    for (int j = 0; j < QK; j++) {
        const float v = roundf(x[j] * id); /* half away from zero, as gguf-py's np_roundf */
        const int q = v >= 127.0f ? 127 : v <= -127.0f ? -127 : v == v ? (int)v : 0;
        b[2 + j] = (uint8_t)(int8_t)q;
    }
}

static quant_fn quant_for(uint32_t type) {
    switch (type) {
    case LMA_GGML_Q4_0: return q_q4_0;
    case LMA_GGML_Q4_1: return q_q4_1;
    case LMA_GGML_Q5_0: return q_q5_0;
    case LMA_GGML_Q5_1: return q_q5_1;
    case LMA_GGML_Q8_0: return q_q8_0;
    default: return NULL;
    }
}

int lma_ggml_type_supported(uint32_t type) {
    return type == LMA_GGML_F32 || type == LMA_GGML_F16 || type == LMA_GGML_BF16 || deq_for(type) != NULL;
}

int lma_ggml_type_quantizable(uint32_t type) {
    return type == LMA_GGML_F32 || type == LMA_GGML_F16 || type == LMA_GGML_BF16 || quant_for(type) != NULL;
}

/* the checks both drivers make */
static lma_status check_call(const char *what, uint32_t type, int ok, const void *src, const void *dst, int64_t n) {
    const type_info *t = info(type);
    if (!t) return lma_error(LMA_ERR_UNSUPPORTED, "%s: ggml type %u is unknown", what, (unsigned)type);
    if (!ok) return lma_error(LMA_ERR_UNSUPPORTED, "%s: ggml type %s is not supported", what, t->name);
    if (n < 0 || n % t->blck)
        return lma_error(LMA_ERR_ARG, "%s %s: %lld elements are not a multiple of its block of %lld", what,
                         t->name, (long long)n, (long long)t->blck);
    if (n > 0 && (!src || !dst)) return lma_error(LMA_ERR_ARG, "%s %s: NULL buffer", what, t->name);
    return LMA_OK;
}

lma_status lma_ggml_dequantize(uint32_t type, const void *src, float *dst, int64_t n) {
    LMA_TRY(check_call("dequantize", type, lma_ggml_type_supported(type), src, dst, n));
    const uint8_t *s = src;
    if (type == LMA_GGML_F32) {
        if (n) memcpy(dst, s, (size_t)n * 4);
        return LMA_OK;
    }
    if (type == LMA_GGML_F16 || type == LMA_GGML_BF16) {
        const int bf = type == LMA_GGML_BF16;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_ELEMS)
        for (int64_t i = 0; i < n; i++) {
            const uint16_t h = (uint16_t)(s[2 * i] | s[2 * i + 1] << 8);
            dst[i] = bf ? lma_q_bf16_to_f32(h) : lma_q_f16_to_f32(h);
        }
        return LMA_OK;
    }
    const deq_fn f = deq_for(type);
    const int64_t blck = TYPES[type].blck, nb = n / blck;
    const size_t bytes = TYPES[type].bytes;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_ELEMS)
    for (int64_t i = 0; i < nb; i++) f(s + (size_t)i * bytes, dst + i * blck);
    return LMA_OK;
}

lma_status lma_ggml_quantize(uint32_t type, const float *src, void *dst, int64_t n) {
    LMA_TRY(check_call("quantize", type, lma_ggml_type_quantizable(type), src, dst, n));
    uint8_t *d = dst;
    if (type == LMA_GGML_F32) {
        if (n) memcpy(d, src, (size_t)n * 4);
        return LMA_OK;
    }
    if (type == LMA_GGML_F16 || type == LMA_GGML_BF16) {
        const int bf = type == LMA_GGML_BF16;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_ELEMS)
        for (int64_t i = 0; i < n; i++) {
            const uint16_t h = bf ? lma_q_f32_to_bf16(src[i]) : lma_q_f32_to_f16(src[i]);
            d[2 * i] = (uint8_t)h;
            d[2 * i + 1] = (uint8_t)(h >> 8);
        }
        return LMA_OK;
    }
    const quant_fn f = quant_for(type);
    const int64_t nb = n / QK;
    const size_t bytes = TYPES[type].bytes;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_ELEMS)
    for (int64_t i = 0; i < nb; i++) f(src + i * QK, d + (size_t)i * bytes);
    return LMA_OK;
}
