/* ggml's tensor types and block codecs (GGUF files), bit for bit.
 *
 * Block layouts (little-endian; fp16 = IEEE half; QK_K = 256), as ggml-common.h:
 *   Q4_0  32 el, 18 B: d fp16 | qs[16]       q = nibble - 8 (low nibbles: elements 0..15,
 *                                            high nibbles: 16..31);      y = q*d
 *   Q4_1  32 el, 20 B: d, m fp16 | qs[16]    q = nibble;                 y = q*d + m
 *   Q5_0  32 el, 22 B: d | qh u32 | qs[16]   q = (nibble | bit j of qh << 4) - 16; y = q*d
 *   Q5_1  32 el, 24 B: d, m | qh | qs[16]    q = nibble | bit << 4;      y = q*d + m
 *   Q8_0  32 el, 34 B: d | qs int8[32]                                   y = q*d
 *   Q2_K 256 el, 84 B: scales[16] (low nibble scale, high nibble min) | qs[64] (2 bits) | d, dmin
 *                      y = (d*sc)*q - dmin*m, per 16 elements
 *   Q3_K 256 el,110 B: hmask[32] | qs[64] | scales[12] (16 six-bit scales, kmask1/kmask2
 *                      packing) | d;  q = 2 low bits - (hmask bit clear ? 4 : 0);
 *                      y = (d*(sc-32))*q, per 16 elements
 *   Q4_K 256 el,144 B: d, dmin | scales[12] (8 six-bit scales + 8 six-bit mins,
 *                      get_scale_min_k4) | qs[128];  y = (d*sc)*q - dmin*m, per 32 elements
 *   Q5_K 256 el,176 B: d, dmin | scales[12] | qh[32] | qs[128]; q = nibble + 16*bit
 *   Q6_K 256 el,210 B: ql[128] | qh[64] | scales int8[16] | d;  q = 6 bits - 32;
 *                      y = (d*sc)*q, per 16 elements
 * Dequantization computes in fp32 in ggml's order of operations (ggml-quants.c
 * dequantize_row_*; no fused multiply-add), so it equals gguf-py's
 * gguf.quants.dequantize bit for bit. Quantization follows gguf-py's
 * gguf.quants.quantize (the numpy mirror of ggml's quantize_row_*_ref) bit for bit;
 * it differs from ggml's C only on blocks whose elements are all zero and whose
 * first element is -0.0 (Q4_0/Q5_0: gguf-py takes d = -0.0/-8 = +0, ggml -0) and
 * in which of +0/-0 is the min/max of a block of mixed zeros (Q4_1/Q5_1: here the
 * first met, as ggml; numpy's reduction order decides in gguf-py).
 * tests/test_quant_ggml.c checks both against gguf-py fixtures
 * (tests/ref/make_quant_fixtures.py).
 *
 * Large n runs on OpenMP threads, one block per iteration: results do not depend
 * on the thread count. Buffers: src and dst are the caller's; a block may start at
 * any byte address (fields are read with byte loads). */
#ifndef LMA_QUANT_GGML_QUANT_H
#define LMA_QUANT_GGML_QUANT_H
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

/* ggml tensor types as numbered in GGUF files (ggml.h enum ggml_type) */
typedef enum {
    LMA_GGML_F32 = 0, LMA_GGML_F16 = 1, LMA_GGML_Q4_0 = 2, LMA_GGML_Q4_1 = 3, LMA_GGML_Q5_0 = 6,
    LMA_GGML_Q5_1 = 7, LMA_GGML_Q8_0 = 8, LMA_GGML_Q8_1 = 9, LMA_GGML_Q2_K = 10, LMA_GGML_Q3_K = 11,
    LMA_GGML_Q4_K = 12, LMA_GGML_Q5_K = 13, LMA_GGML_Q6_K = 14, LMA_GGML_Q8_K = 15, LMA_GGML_BF16 = 30
} lma_ggml_type;

/* "Q4_K", "IQ2_XXS", "BF16" ... (gguf-py's GGMLQuantizationType names); NULL for a
 * number ggml does not define (4, 5, 31..33 and 36..38 were removed from ggml). */
const char *lma_ggml_type_name(uint32_t type);
/* 1 for the types lma_ggml_dequantize takes: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
 * Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K; 0 otherwise. */
int lma_ggml_type_supported(uint32_t type);
/* 1 for the types lma_ggml_quantize writes: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1. */
int lma_ggml_type_quantizable(uint32_t type);
/* Elements per block and bytes per block (1 and 4 for F32) of every type ggml
 * defines, also those lmadapt cannot dequantize (Q8_1, Q8_K, IQ*, I8..I64, F64, TQ*,
 * MXFP4, NVFP4, Q1_0), so a GGUF reader can size and validate their tensors;
 * 0 for unknown numbers. Q8_1 is 36 bytes as in ggml (gguf-py 0.19 says 40). */
int64_t lma_ggml_block_elems(uint32_t type);
size_t lma_ggml_block_bytes(uint32_t type);
/* Bytes of n elements of type: n a multiple of the block size and the product
 * within uint64 (overflow-checked). LMA_ERR_FORMAT with a message naming the type
 * and n otherwise (also for an unknown type); *out is set only on success. */
lma_status lma_ggml_nbytes(uint32_t type, uint64_t n, uint64_t *out);
/* dst (n) = the n elements held by src (lma_ggml_nbytes(type, n) bytes), n a
 * multiple of the block size. LMA_ERR_UNSUPPORTED (with a message) for a type
 * outside lma_ggml_type_supported, LMA_ERR_ARG for a bad n or NULL buffers. */
lma_status lma_ggml_dequantize(uint32_t type, const void *src, float *dst, int64_t n);
/* dst (lma_ggml_nbytes(type, n) bytes) = src (n) encoded as type, bit-identical to
 * gguf-py's gguf.quants.quantize. LMA_ERR_UNSUPPORTED for a type outside
 * lma_ggml_type_quantizable, LMA_ERR_ARG for a bad n or NULL buffers. Inputs are
 * expected finite for the block types (an Inf or NaN gives an unspecified but
 * in-range block, as in ggml); F16/BF16 convert every value. */
lma_status lma_ggml_quantize(uint32_t type, const float *src, void *dst, int64_t n);
#endif
