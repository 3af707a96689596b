/* NF4 quantization with double-quantized block constants (QLoRA, Dettmers et
 * al. 2023), bit-compatible with bitsandbytes 0.50's reference ("default",
 * pure torch) kernels:
 *
 *   quantize_4bit(x, blocksize=64, quant_type="nf4", compress_statistics=True)
 *   - blocks of 64 consecutive elements of the flattened tensor (the last block
 *     may be shorter); absmax[b] = max |x| over the block;
 *   - scaled = clamp(x * (1/absmax), -1, 1) for full blocks, clamp(x / absmax, -1, 1)
 *     for a short last block (absmax clamped to >= 1e-38 first), all in fp32;
 *   - code = bucketize(scaled, midpoints of lma_nf4_code) (ties go to the lower
 *     code); two codes per byte, the first element in the high nibble;
 *   double quantization of the fp32 absmax constants:
 *   - offset = mean(absmax) (fp32 of the double-precision mean);
 *   - absmax - offset quantized blockwise (256 constants per block) with the
 *     signed 8-bit dynamic map lma_nf4_code8 (bitsandbytes create_dynamic_map),
 *     the same scaled/bucketize rule, giving qabsmax (8 bit) and absmax2 (fp32).
 *   Dequantization: a = code8[qabsmax[b]] * absmax2[b/256] + offset, then
 *   w = nf4_code[q] * a (fp32, no fused multiply-add).
 * tests/ref/make_nf4_fixture.py is the Python reference (checked against the
 * installed bitsandbytes when present); tests/test_nf4.c compares bit for bit.
 *
 * Ownership: an lma_nf4_tensor owns its three arrays (host malloc, or backend
 * memory after lma_nf4_to_backend in model/nf4.h); lma_nf4_free releases them. */
#ifndef LMA_QUANT_NF4_H
#define LMA_QUANT_NF4_H
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

#define LMA_NF4_BLOCK 64
#define LMA_NF4_BLOCK2 256

extern const float lma_nf4_code[16];    /* bitsandbytes get_4bit_type("nf4") */
extern const float lma_nf4_code8[256];  /* bitsandbytes create_dynamic_map(signed=True) */

typedef struct lma_nf4_tensor {
    int64_t n;             /* elements of the flattened tensor */
    int64_t nblocks;       /* ceil(n / 64) */
    int64_t nblocks2;      /* ceil(nblocks / 256) */
    uint8_t *codes;        /* ((n+1)/2) packed 4-bit codes */
    uint8_t *qabsmax;      /* (nblocks) 8-bit codes of absmax - offset */
    float *absmax2;        /* (nblocks2) scale of each group of 256 constants */
    float offset;          /* mean of the absmax constants */
    void (*release)(void *); /* frees the arrays where they live: NULL = host malloc (free) */
} lma_nf4_tensor;

/* Quantizes x (n) into out (arrays allocated here). LMA_ERR_ARG if n < 1 or a
 * value is not finite (the message gives the index). */
lma_status lma_nf4_quantize(const float *x, int64_t n, lma_nf4_tensor *out);
/* The block constants (nblocks) as fp32: code8[q] * absmax2 + offset. */
void lma_nf4_absmax(const lma_nf4_tensor *q, int64_t first_block, int64_t count, float *out);
/* Dequantizes elements [start, start+count) into out (count). */
void lma_nf4_dequantize(const lma_nf4_tensor *q, int64_t start, int64_t count, float *out);
void lma_nf4_free(lma_nf4_tensor *q);
/* Bytes held by a quantized tensor of n elements. */
size_t lma_nf4_bytes(int64_t n);
#endif
