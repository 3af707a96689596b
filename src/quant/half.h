/* Half-precision helpers for the ggml codecs (quant/ stands below model/, so these
 * are its own): IEEE binary16 and bfloat16 <-> binary32, bit-exact.
 *
 *   f16 -> f32: exact; a NaN keeps its payload and comes back quiet (as x86's F16C
 *               and ggml's conversion do; numpy keeps a signalling NaN signalling).
 *   f32 -> f16: round to nearest, ties to even (ggml, numpy astype(float16)); 65520
 *               and above become infinity; a NaN becomes a quiet NaN with the top ten
 *               payload bits (F16C; numpy agrees for every quiet NaN).
 *   bf16 -> f32: the 16 bits shifted up (ggml, gguf-py).
 *   f32 -> bf16: gguf-py's BF16 quantize = ggml_compute_fp32_to_bf16: a NaN becomes
 *               (upper half | 0x0040), quiet; otherwise round to nearest even. */
#ifndef LMA_QUANT_HALF_H
#define LMA_QUANT_HALF_H
#include <stdint.h>
#include <string.h>

static inline float lma_q_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t lma_q_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float lma_q_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) /* zero or subnormal: m * 2^-24, exact in fp32 */
        return lma_q_bits_f32(lma_q_f32_bits((float)m * 0x1p-24f) | sign);
    if (e == 31) return lma_q_bits_f32(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
    return lma_q_bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

static inline uint16_t lma_q_f32_to_f16(float f) {
    uint32_t x = lma_q_f32_bits(f), sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff)); /* NaN */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);   /* >= 65520 (the tie above 65504): inf */
    if (ax < 0x38800000u) {                                     /* below 2^-14: subnormal half or zero */
        if (ax <= 0x33000000u) return (uint16_t)sign;           /* <= 2^-25 (the tie rounds to even 0) */
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, shift = 126 - e; /* units of 2^-24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t h = (((ax >> 23) - 112) << 10) | ((ax >> 13) & 0x3ff), rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;        /* a carry moves into the exponent */
    return (uint16_t)(sign | h);
}

static inline float lma_q_bf16_to_f32(uint16_t h) { return lma_q_bits_f32((uint32_t)h << 16); }

static inline uint16_t lma_q_f32_to_bf16(float f) {
    uint32_t n = lma_q_f32_bits(f);
    if ((n & 0x7fffffffu) > 0x7f800000u) n = (n & 0xffff0000u) | (64u << 16);
    return (uint16_t)((n + (0x7fffu + ((n >> 16) & 1))) >> 16);
}
#endif
