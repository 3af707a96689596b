/* NF4 + double quantization (see nf4.h for the exact rules). */
#include "quant/nf4.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* gcc: off already under -std=c11 */
#endif

const float lma_nf4_code[16] = {
    -0x1.0000000000000p+0f, -0x1.6473620000000p-1f, -0x1.0cd6600000000p-1f, -0x1.9465400000000p-2f,
    -0x1.23449a0000000p-2f, -0x1.7a6a7e0000000p-3f, -0x1.74f0e20000000p-4f, 0x0.0p+0f,
    0x1.45f5fe0000000p-4f, 0x1.4995c60000000p-3f, 0x1.f809ba0000000p-3f, 0x1.5a06740000000p-2f,
    0x1.c349700000000p-2f, 0x1.200f560000000p-1f, 0x1.7227660000000p-1f, 0x1.0000000000000p+0f,
};
const float lma_nf4_code8[256] = {
    -0x1.fc66660000000p-1f, -0x1.f533340000000p-1f, -0x1.ee00000000000p-1f, -0x1.e6cccc0000000p-1f,
    -0x1.df999a0000000p-1f, -0x1.d866660000000p-1f, -0x1.d133340000000p-1f, -0x1.ca00000000000p-1f,
    -0x1.c2cccc0000000p-1f, -0x1.bb999a0000000p-1f, -0x1.b466660000000p-1f, -0x1.ad33340000000p-1f,
    -0x1.a600000000000p-1f, -0x1.9ecccc0000000p-1f, -0x1.97999a0000000p-1f, -0x1.9066660000000p-1f,
    -0x1.8933340000000p-1f, -0x1.8200000000000p-1f, -0x1.7acccc0000000p-1f, -0x1.73999a0000000p-1f,
    -0x1.6c66680000000p-1f, -0x1.6533340000000p-1f, -0x1.5e00000000000p-1f, -0x1.56cccc0000000p-1f,
    -0x1.4f999a0000000p-1f, -0x1.4866680000000p-1f, -0x1.4133340000000p-1f, -0x1.3a00000000000p-1f,
    -0x1.32cccc0000000p-1f, -0x1.2b999a0000000p-1f, -0x1.2466680000000p-1f, -0x1.1d33340000000p-1f,
    -0x1.1600000000000p-1f, -0x1.0ecccc0000000p-1f, -0x1.0799980000000p-1f, -0x1.0066660000000p-1f,
    -0x1.f266640000000p-2f, -0x1.e400000000000p-2f, -0x1.d599980000000p-2f, -0x1.c733340000000p-2f,
    -0x1.b8cccc0000000p-2f, -0x1.aa66660000000p-2f, -0x1.9c00000000000p-2f, -0x1.8d99980000000p-2f,
    -0x1.7f33340000000p-2f, -0x1.70cccc0000000p-2f, -0x1.6266660000000p-2f, -0x1.5400000000000p-2f,
    -0x1.4599980000000p-2f, -0x1.3733340000000p-2f, -0x1.28cccc0000000p-2f, -0x1.1a66680000000p-2f,
    -0x1.0c00000000000p-2f, -0x1.fb33320000000p-3f, -0x1.de66660000000p-3f, -0x1.c1999a0000000p-3f,
    -0x1.a4cccc0000000p-3f, -0x1.8800000000000p-3f, -0x1.6b33340000000p-3f, -0x1.4e66660000000p-3f,
    -0x1.31999a0000000p-3f, -0x1.14cccc0000000p-3f, -0x1.f000000000000p-4f, -0x1.b666680000000p-4f,
    -0x1.93d70a0000000p-4f, -0x1.8851ee0000000p-4f, -0x1.7cccce0000000p-4f, -0x1.7147ae0000000p-4f,
    -0x1.65c2900000000p-4f, -0x1.5a3d700000000p-4f, -0x1.4eb8540000000p-4f, -0x1.4333340000000p-4f,
    -0x1.37ae140000000p-4f, -0x1.2c28f60000000p-4f, -0x1.20a3d60000000p-4f, -0x1.151eba0000000p-4f,
    -0x1.09999a0000000p-4f, -0x1.fc28f60000000p-5f, -0x1.e51eba0000000p-5f, -0x1.ce147a0000000p-5f,
    -0x1.b70a3e0000000p-5f, -0x1.a000000000000p-5f, -0x1.88f5c20000000p-5f, -0x1.71eb860000000p-5f,
    -0x1.5ae1460000000p-5f, -0x1.43d70a0000000p-5f, -0x1.2cccce0000000p-5f, -0x1.15c2900000000p-5f,
    -0x1.fd70a40000000p-6f, -0x1.cf5c2a0000000p-6f, -0x1.a147ae0000000p-6f, -0x1.7333340000000p-6f,
    -0x1.451eba0000000p-6f, -0x1.170a3e0000000p-6f, -0x1.d1eb860000000p-7f, -0x1.75c2900000000p-7f,
    -0x1.3e76c80000000p-7f, -0x1.2c08300000000p-7f, -0x1.19999a0000000p-7f, -0x1.072b020000000p-7f,
    -0x1.e978d40000000p-8f, -0x1.c49ba60000000p-8f, -0x1.9fbe760000000p-8f, -0x1.7ae1480000000p-8f,
    -0x1.56041a0000000p-8f, -0x1.3126e80000000p-8f, -0x1.0c49ba0000000p-8f, -0x1.ced9140000000p-9f,
    -0x1.851eb80000000p-9f, -0x1.3b645a0000000p-9f, -0x1.e353f80000000p-10f, -0x1.4fdf3a0000000p-10f,
    -0x1.eecbfe0000000p-11f, -0x1.b3d07c0000000p-11f, -0x1.78d5000000000p-11f, -0x1.3dd9820000000p-11f,
    -0x1.02de020000000p-11f, -0x1.8fc5060000000p-12f, -0x1.19ce0a0000000p-12f, -0x1.47ae160000000p-13f,
    -0x1.743e960000000p-14f, -0x1.15df660000000p-14f, -0x1.6f00680000000p-15f, -0x1.64840c0000000p-16f,
    -0x1.040bfe0000000p-17f, -0x1.b435280000000p-19f, -0x1.27476e0000000p-21f, 0x0.0p+0f,
    0x1.27476e0000000p-21f, 0x1.b435280000000p-19f, 0x1.040bfe0000000p-17f, 0x1.64840c0000000p-16f,
    0x1.6f00680000000p-15f, 0x1.15df660000000p-14f, 0x1.743e960000000p-14f, 0x1.47ae160000000p-13f,
    0x1.19ce0a0000000p-12f, 0x1.8fc5060000000p-12f, 0x1.02de020000000p-11f, 0x1.3dd9820000000p-11f,
    0x1.78d5000000000p-11f, 0x1.b3d07c0000000p-11f, 0x1.eecbfe0000000p-11f, 0x1.4fdf3a0000000p-10f,
    0x1.e353f80000000p-10f, 0x1.3b645a0000000p-9f, 0x1.851eb80000000p-9f, 0x1.ced9140000000p-9f,
    0x1.0c49ba0000000p-8f, 0x1.3126e80000000p-8f, 0x1.56041a0000000p-8f, 0x1.7ae1480000000p-8f,
    0x1.9fbe760000000p-8f, 0x1.c49ba60000000p-8f, 0x1.e978d40000000p-8f, 0x1.072b020000000p-7f,
    0x1.19999a0000000p-7f, 0x1.2c08300000000p-7f, 0x1.3e76c80000000p-7f, 0x1.75c2900000000p-7f,
    0x1.d1eb860000000p-7f, 0x1.170a3e0000000p-6f, 0x1.451eba0000000p-6f, 0x1.7333340000000p-6f,
    0x1.a147ae0000000p-6f, 0x1.cf5c2a0000000p-6f, 0x1.fd70a40000000p-6f, 0x1.15c2900000000p-5f,
    0x1.2cccce0000000p-5f, 0x1.43d70a0000000p-5f, 0x1.5ae1460000000p-5f, 0x1.71eb860000000p-5f,
    0x1.88f5c20000000p-5f, 0x1.a000000000000p-5f, 0x1.b70a3e0000000p-5f, 0x1.ce147a0000000p-5f,
    0x1.e51eba0000000p-5f, 0x1.fc28f60000000p-5f, 0x1.09999a0000000p-4f, 0x1.151eba0000000p-4f,
    0x1.20a3d60000000p-4f, 0x1.2c28f60000000p-4f, 0x1.37ae140000000p-4f, 0x1.4333340000000p-4f,
    0x1.4eb8540000000p-4f, 0x1.5a3d700000000p-4f, 0x1.65c2900000000p-4f, 0x1.7147ae0000000p-4f,
    0x1.7cccce0000000p-4f, 0x1.8851ee0000000p-4f, 0x1.93d70a0000000p-4f, 0x1.b666680000000p-4f,
    0x1.f000000000000p-4f, 0x1.14cccc0000000p-3f, 0x1.31999a0000000p-3f, 0x1.4e66660000000p-3f,
    0x1.6b33340000000p-3f, 0x1.8800000000000p-3f, 0x1.a4cccc0000000p-3f, 0x1.c1999a0000000p-3f,
    0x1.de66660000000p-3f, 0x1.fb33320000000p-3f, 0x1.0c00000000000p-2f, 0x1.1a66680000000p-2f,
    0x1.28cccc0000000p-2f, 0x1.3733340000000p-2f, 0x1.4599980000000p-2f, 0x1.5400000000000p-2f,
    0x1.6266660000000p-2f, 0x1.70cccc0000000p-2f, 0x1.7f33340000000p-2f, 0x1.8d99980000000p-2f,
    0x1.9c00000000000p-2f, 0x1.aa66660000000p-2f, 0x1.b8cccc0000000p-2f, 0x1.c733340000000p-2f,
    0x1.d599980000000p-2f, 0x1.e400000000000p-2f, 0x1.f266640000000p-2f, 0x1.0066660000000p-1f,
    0x1.0799980000000p-1f, 0x1.0ecccc0000000p-1f, 0x1.1600000000000p-1f, 0x1.1d33340000000p-1f,
    0x1.2466680000000p-1f, 0x1.2b999a0000000p-1f, 0x1.32cccc0000000p-1f, 0x1.3a00000000000p-1f,
    0x1.4133340000000p-1f, 0x1.4866680000000p-1f, 0x1.4f999a0000000p-1f, 0x1.56cccc0000000p-1f,
    0x1.5e00000000000p-1f, 0x1.6533340000000p-1f, 0x1.6c66680000000p-1f, 0x1.73999a0000000p-1f,
    0x1.7acccc0000000p-1f, 0x1.8200000000000p-1f, 0x1.8933340000000p-1f, 0x1.9066660000000p-1f,
    0x1.97999a0000000p-1f, 0x1.9ecccc0000000p-1f, 0x1.a600000000000p-1f, 0x1.ad33340000000p-1f,
    0x1.b466660000000p-1f, 0x1.bb999a0000000p-1f, 0x1.c2cccc0000000p-1f, 0x1.ca00000000000p-1f,
    0x1.d133340000000p-1f, 0x1.d866660000000p-1f, 0x1.df999a0000000p-1f, 0x1.e6cccc0000000p-1f,
    0x1.ee00000000000p-1f, 0x1.f533340000000p-1f, 0x1.fc66660000000p-1f, 0x1.0000000000000p+0f,
};

/* Index of the first midpoint >= v (torch.bucketize, right=False) over the
 * sorted code c (k entries): codes below the midpoint win ties. */
static int bucket(const float *mid, int k, float v) {
    int lo = 0, hi = k - 1; /* answer in [0, k-1] */
    while (lo < hi) {
        int m = (lo + hi) / 2;
        if (mid[m] < v) lo = m + 1;
        else hi = m;
    }
    return lo;
}

static float clamp1(float v) { return v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v; }

/* bitsandbytes' blockwise rule: absmax per block; codes by midpoints. */
static void quantize_blocks(const float *x, int64_t n, int block, const float *code, int k, uint8_t *idx,
                            float *absmax) {
    float mid[256];
    for (int i = 0; i + 1 < k; i++) mid[i] = (code[i] + code[i + 1]) / 2.0f;
    int64_t full = n - n % block;
    for (int64_t b0 = 0; b0 < n; b0 += block) {
        int64_t len = n - b0 < block ? n - b0 : block;
        float am = 0;
        for (int64_t i = 0; i < len; i++) am = fmaxf(am, fabsf(x[b0 + i]));
        if (b0 < full) {
            float inv = 1.0f / (am < 1e-38f ? 1e-38f : am);
            absmax[b0 / block] = am;
            for (int64_t i = 0; i < len; i++) idx[b0 + i] = (uint8_t)bucket(mid, k, clamp1(x[b0 + i] * inv));
        } else {
            float a = am < 1e-38f ? 1e-38f : am;
            absmax[b0 / block] = a;
            for (int64_t i = 0; i < len; i++) idx[b0 + i] = (uint8_t)bucket(mid, k, clamp1(x[b0 + i] / a));
        }
    }
}

size_t lma_nf4_bytes(int64_t n) {
    int64_t nb = (n + LMA_NF4_BLOCK - 1) / LMA_NF4_BLOCK, nb2 = (nb + LMA_NF4_BLOCK2 - 1) / LMA_NF4_BLOCK2;
    return (size_t)((n + 1) / 2 + nb + nb2 * 4);
}

lma_status lma_nf4_quantize(const float *x, int64_t n, lma_nf4_tensor *out) {
    memset(out, 0, sizeof *out);
    if (n < 1) return lma_error(LMA_ERR_ARG, "nf4: cannot quantize %lld elements", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return lma_error(LMA_ERR_ARG, "nf4: element %lld is not finite (%g)", (long long)i, x[i]);
    int64_t nb = (n + LMA_NF4_BLOCK - 1) / LMA_NF4_BLOCK, nb2 = (nb + LMA_NF4_BLOCK2 - 1) / LMA_NF4_BLOCK2;
    out->n = n;
    out->nblocks = nb;
    out->nblocks2 = nb2;
    out->codes = lma_malloc((size_t)(n + 1) / 2, "nf4 codes");
    out->qabsmax = lma_malloc((size_t)nb, "nf4 block constants");
    out->absmax2 = lma_malloc((size_t)nb2 * sizeof(float), "nf4 second-level constants");
    uint8_t *idx = lma_malloc((size_t)(n < LMA_NF4_BLOCK * 1024 ? n : LMA_NF4_BLOCK * 1024) + 1, "nf4 scratch");
    float *absmax = lma_malloc((size_t)nb * sizeof(float), "nf4 scratch");
    if (!out->codes || !out->qabsmax || !out->absmax2 || !idx || !absmax) {
        free(idx); free(absmax); lma_nf4_free(out);
        return LMA_ERR_NOMEM;
    }
    /* 4-bit codes, a chunk of whole blocks at a time */
    int64_t chunk = (int64_t)LMA_NF4_BLOCK * 1024;
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        int64_t len = n - c0 < chunk ? n - c0 : chunk;
        quantize_blocks(x + c0, len, LMA_NF4_BLOCK, lma_nf4_code, 16, idx, absmax + c0 / LMA_NF4_BLOCK);
        if (len % 2) idx[len] = 7; /* odd length: padded with 0.0, whose code is 7 */
        for (int64_t i = 0; i < len; i += 2) out->codes[(c0 + i) / 2] = (uint8_t)(idx[i] << 4 | idx[i + 1]);
    }
    /* double quantization of the constants */
    double sum = 0;
    for (int64_t b = 0; b < nb; b++) sum += absmax[b];
    out->offset = (float)(sum / (double)nb);
    for (int64_t b = 0; b < nb; b++) absmax[b] = absmax[b] - out->offset;
    quantize_blocks(absmax, nb, LMA_NF4_BLOCK2, lma_nf4_code8, 256, out->qabsmax, out->absmax2);
    free(idx);
    free(absmax);
    return LMA_OK;
}

void lma_nf4_absmax(const lma_nf4_tensor *q, int64_t first_block, int64_t count, float *out) {
    for (int64_t i = 0; i < count; i++) {
        int64_t b = first_block + i;
        float a = lma_nf4_code8[q->qabsmax[b]] * q->absmax2[b / LMA_NF4_BLOCK2];
        out[i] = a + q->offset;
    }
}

void lma_nf4_dequantize(const lma_nf4_tensor *q, int64_t start, int64_t count, float *out) {
    int64_t i = 0;
    while (i < count) {
        int64_t e = start + i, b = e / LMA_NF4_BLOCK, end = (b + 1) * LMA_NF4_BLOCK;
        if (end > start + count) end = start + count;
        float a;
        lma_nf4_absmax(q, b, 1, &a);
        for (; e < end; e++, i++) {
            uint8_t byte = q->codes[e / 2];
            int code = (e & 1) ? (byte & 15) : (byte >> 4);
            out[i] = lma_nf4_code[code] * a;
        }
    }
}

void lma_nf4_free(lma_nf4_tensor *q) {
    if (!q) return;
    void (*rel)(void *) = q->release ? q->release : free;
    if (q->codes) rel(q->codes);
    if (q->qabsmax) rel(q->qabsmax);
    if (q->absmax2) rel(q->absmax2);
    memset(q, 0, sizeof *q);
}
