/* Quantized weight matrices for inference (GGUF blocks kept as they are) and their
 * dot-product kernels against 8-bit activations, as ggml's vec_dot_q4_1_q8_1.
 *
 * A weight matrix W (rows, cols), row-major, each row a run of ggml blocks of `type`
 * (ggml_quant.h): Q8_0, Q4_0, Q4_1 (32 elements a block) or Q4_K (256); or F32 (a tensor
 * of another type, dequantized when loaded). y = x . W^T takes an activation row x (cols)
 * quantized per 32 elements to an lma_q8_block:
 *   d = max|x_j| / 127,  q_j = round(x_j / d) in [-127, 127],  s = d * sum_j q_j.
 * One activation format serves every weight type (with w_j = a*q_j + b per 32 elements,
 * sum_j w_j x_j ~ a*d*sum(q_w q_x) + b*s):
 *   Q8_0  d_w d sum(q_w q)          Q4_0  d_w (d sum(nib q) - 8 s)
 *   Q4_1  d_w d sum(nib q) + m_w s  Q4_K  (d sc) d sum(nib q) - (dmin m) s, per 32 of 256
 * The integer sums are exact; the kernels differ from each other only in the order
 * of the float additions. Error against the fp32 product with the dequantized weights
 * (the only error this scheme adds; the weights are used exactly):
 *   |y - sum_j w_j x_j| <= sum_blocks d_b/2 * sum_{j in b} |w_j|  (+ float rounding),
 * lma_q8_error_bound computes it (tests/test_quant_matmul.c checks every kernel within it).
 *
 * Kernels: "scalar" (the oracle, portable C), "avx2" (AVX2 + FMA + F16C), "avx512"
 * (AVX-512 F/BW/VL + VNNI: vpdpbusd); compiled with target attributes, so the build is
 * portable, and chosen at run time from the CPU's features (lma_qdot_best). */
#ifndef LMA_QUANT_QDOT_H
#define LMA_QUANT_QDOT_H
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

enum { LMA_Q8_BLOCK = 32 };
typedef struct {
    float d, s;                  /* scale; d * sum(q) */
    int8_t q[LMA_Q8_BLOCK];
} lma_q8_block;

typedef struct lma_qmat {
    uint32_t type;     /* LMA_GGML_Q8_0, Q4_0, Q4_1, Q4_K or F32 */
    int rows, cols;    /* (OC, C) */
    size_t row_bytes;  /* bytes of one row */
    int packed;        /* Q8_0, Q4_0, Q4_1 rows regrouped by lma_qmat_pack (qdot.c): the kernels need it */
    void *data;        /* rows * row_bytes, 64-byte aligned, owned (lma_qmat_free) */
} lma_qmat;

/* 1 for the types kept quantized (a kernel exists): Q8_0, Q4_0, Q4_1, Q4_K. */
int lma_qmat_type_kept(uint32_t type);
/* Allocates w for (rows, cols) of type (F32 or a kept type; cols a multiple of its block). */
lma_status lma_qmat_alloc(lma_qmat *w, uint32_t type, int rows, int cols);
void lma_qmat_free(lma_qmat *w);
/* After the rows are filled with ggml's blocks: regroups each row of a Q8_0, Q4_0 or Q4_1
 * matrix as d[nb] | m[nb] (Q4_1) | qs[nb] (the same bytes; the SIMD kernels convert 8 scales at
 * once). Nothing for Q4_K and F32. The kernels and lma_qmat_row_f32 need it done. */
lma_status lma_qmat_pack(lma_qmat *w);
/* Row r of w as fp32 (cols floats), exactly as lma_ggml_dequantize gives it. */
void lma_qmat_row_f32(const lma_qmat *w, int r, float *dst);

/* x (n) -> n/32 blocks; n a multiple of 32. */
void lma_q8_quantize(const float *x, int n, lma_q8_block *dst);
/* The bound above for one row of w against x (n = cols), in double. */
double lma_q8_error_bound(const lma_qmat *w, int r, const float *x);

/* out[i] = row (r0 + i) of w . a for i < nr; a: cols/32 blocks. */
typedef void (*lma_qdot_fn)(const lma_qmat *w, int r0, int nr, const lma_q8_block *a, float *out);
typedef struct {
    const char *name;     /* "scalar", "avx2", "avx512" */
    int (*supported)(void); /* the CPU runs it */
    lma_qdot_fn dot[4];   /* Q8_0, Q4_0, Q4_1, Q4_K */
} lma_qdot_kernel;
/* All kernels compiled in (supported or not): *n of them. */
const lma_qdot_kernel *lma_qdot_kernels(int *n);
/* The best supported kernel; LMA_QDOT=scalar|avx2|avx512 in the environment picks one
 * (an unsupported or unknown name falls back to the best). */
const lma_qdot_kernel *lma_qdot_best(void);
/* The kernel's function for w's type (NULL for F32). */
lma_qdot_fn lma_qdot_for(const lma_qdot_kernel *k, uint32_t type);
#endif
