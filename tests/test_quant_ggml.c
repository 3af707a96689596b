/* ggml block codecs (src/quant/ggml_quant.h) bit for bit against gguf-py
 * (tests/ref/make_quant_fixtures.py, tests/ref/quant/): dequantization of every
 * supported type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K) from
 * gguf-py's own blocks and from random blocks, quantization of the fixture inputs to
 * gguf-py's bytes, the type table against gguf-py's GGML_QUANT_SIZES, round-trip
 * error bounds, threaded (large n) == one block at a time, unaligned blocks, and the
 * errors: n off the block, a byte count past 2^64, unknown and unsupported types. */
#include "core/rng.h"
#include "model/safetensors.h"
#include "quant/ggml_quant.h"
#include "test.h"
#include <stdint.h>

/* a check that counts only when it fails (inside loops over many chunks) */
#define CHECK_OK_QUIET(expr) do { lma_status q_s_ = (expr); \
    if (q_s_ != LMA_OK) CHECK(0, "%s -> %s: %s", #expr, lma_status_name(q_s_), lma_last_error()); \
    lma_clear_error(); } while (0)

static lma_st_file *open_fixture(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/ref/quant/%s.safetensors", LMA_SRC_DIR, name);
    lma_st_file *f = NULL;
    CHECK_OK(lma_st_open(path, &f));
    return f;
}

/* a malloc'd, aligned copy of tensor `name` (its numel in *n, bytes in *nbytes) */
static void *load(lma_st_file *f, const char *file, const char *name, size_t *n, size_t *nbytes) {
    const lma_st_tensor *t = f ? lma_st_find(f, name) : NULL;
    CHECK(t != NULL, "%s: has %s", file, name);
    if (!t) return NULL;
    void *p = malloc(t->nbytes + 8);
    memcpy(p, t->data, t->nbytes);
    if (n) *n = t->numel;
    if (nbytes) *nbytes = t->nbytes;
    return p;
}

/* bit-identical floats, any NaN equal to any NaN; the first difference in *at */
static int same_bits(const float *a, const float *b, size_t n, size_t *at) {
    for (size_t i = 0; i < n; i++) {
        uint32_t x, y;
        memcpy(&x, &a[i], 4);
        memcpy(&y, &b[i], 4);
        if (x != y && !(isnan(a[i]) && isnan(b[i]))) { *at = i; return 0; }
    }
    return 1;
}

static void check_deq(uint32_t type, const char *file, const void *q, size_t qbytes, const float *want, size_t n) {
    float *y = malloc(n * sizeof(float) + 4);
    CHECK_OK(lma_ggml_dequantize(type, q, y, (int64_t)n));
    uint64_t nb = 0;
    CHECK_OK(lma_ggml_nbytes(type, n, &nb));
    CHECK(nb == qbytes, "%s: %zu elements are %llu bytes (fixture %zu)", file, n, (unsigned long long)nb, qbytes);
    size_t at = 0;
    int ok = same_bits(y, want, n, &at);
    CHECK(ok, "%s: dequantized %zu elements bit-identical to gguf-py (first difference at %zu: %.9g vs %.9g)", file,
          n, at, y[at], want[at]);
    /* the same from an odd address (fields are read with byte loads) */
    unsigned char *odd = malloc(qbytes + 1);
    memcpy(odd + 1, q, qbytes);
    memset(y, 0, n * sizeof(float));
    CHECK_OK(lma_ggml_dequantize(type, odd + 1, y, (int64_t)n));
    CHECK(same_bits(y, want, n, &at), "%s: dequantized from an unaligned buffer", file);
    free(odd);
    free(y);
}

/* largest error of x -> quantize -> dequantize against the step of each block */
static double worst_block_error(uint32_t type, const float *x, const float *deq, size_t n) {
    double worst = 0;
    int64_t bs = lma_ggml_block_elems(type);
    for (size_t b = 0; b < n / (size_t)bs; b++) {
        const float *xb = x + b * bs, *yb = deq + b * bs;
        double amax = 0, lo = INFINITY, hi = -INFINITY, err = 0;
        for (int64_t j = 0; j < bs; j++) {
            amax = fmax(amax, fabs(xb[j]));
            lo = fmin(lo, xb[j]);
            hi = fmax(hi, xb[j]);
            err = fmax(err, fabs((double)yb[j] - xb[j]));
        }
        if (amax > 60000.0 * 8 || (amax > 0 && amax < 1e-3)) continue; /* fp16 scale overflows / is coarse */
        double step = type == LMA_GGML_Q8_0 ? amax / 127 : type == LMA_GGML_Q4_0 ? amax / 8
                    : type == LMA_GGML_Q5_0 ? amax / 16 : type == LMA_GGML_Q4_1 ? (hi - lo) / 15 : (hi - lo) / 31;
        /* Q4_0/Q5_0 put the largest-magnitude element at -8d (-16d): the codes reach +7d (+15d) on
         * the other side, so an element there may be clipped by up to a whole step */
        double reach = type == LMA_GGML_Q4_0 || type == LMA_GGML_Q5_0 ? 1.0 : 0.5;
        double bound = reach * step + 40 * step / 2048 + fabs(lo) / 1024 + 1e-30;
        worst = fmax(worst, err / bound);
    }
    return worst; /* <= 1 when every block is within its bound */
}

static void test_legacy(const char *file, uint32_t type) {
    lma_st_file *f = open_fixture(file);
    if (!f) return;
    size_t n = 0, qb = 0, nr = 0, qrb = 0;
    float *x = load(f, file, "x", &n, NULL), *deq = load(f, file, "deq", NULL, NULL);
    unsigned char *q = load(f, file, "q", NULL, &qb), *qr = load(f, file, "qr", NULL, &qrb);
    float *deqr = load(f, file, "deqr", &nr, NULL);
    if (x && deq && q && qr && deqr) {
        check_deq(type, file, q, qb, deq, n);
        char what[64];
        snprintf(what, sizeof what, "%s random blocks", file);
        check_deq(type, what, qr, qrb, deqr, nr);
        unsigned char *mine = calloc(1, qb);
        CHECK_OK(lma_ggml_quantize(type, x, mine, (int64_t)n));
        size_t at = 0;
        while (at < qb && mine[at] == q[at]) at++;
        CHECK(at == qb, "%s: quantized %zu elements byte-identical to gguf-py's %zu bytes (first difference at byte %zu"
              " of block %zu: %02x vs %02x)", file, n, qb, at, at / lma_ggml_block_bytes(type),
              at < qb ? mine[at] : 0, at < qb ? q[at] : 0);
        double w = worst_block_error(type, x, deq, n);
        CHECK(w <= 1.0, "%s: round trip within half a step per block (a step where clipped) (worst %.3f of the bound)", file, w);
        /* a changed block byte must show: the comparison can fail */
        mine[qb / 2] ^= 0x11;
        float *y = malloc(n * sizeof(float));
        CHECK_OK(lma_ggml_dequantize(type, mine, y, (int64_t)n));
        CHECK(!same_bits(y, deq, n, &at), "%s: a flipped bit changes the dequantized values", file);
        free(y);
        free(mine);
        printf("%-5s %zu elements (+%zu random): quantize and dequantize bit-identical to gguf-py\n", file, n, nr);
    }
    free(x); free(deq); free(q); free(qr); free(deqr);
    lma_st_close(f);
}

static void test_half(const char *file, uint32_t type) {
    lma_st_file *f = open_fixture(file);
    if (!f) return;
    size_t n = 0, qb = 0, nr = 0, qrb = 0;
    float *x = load(f, file, "x", &n, NULL), *deq = load(f, file, "deq", NULL, NULL);
    unsigned char *q = load(f, file, "q", NULL, &qb), *qr = load(f, file, "qr", NULL, &qrb);
    float *deqr = load(f, file, "deqr", &nr, NULL);
    if (x && deq && q && qr && deqr) {
        check_deq(type, file, q, qb, deq, n);
        char what[64];
        snprintf(what, sizeof what, "%s bit patterns", file);
        check_deq(type, what, qr, qrb, deqr, nr);
        unsigned char *mine = calloc(1, qb);
        CHECK_OK(lma_ggml_quantize(type, x, mine, (int64_t)n));
        size_t at = 0;
        while (at < qb && mine[at] == q[at]) at++;
        CHECK(at == qb, "%s: %zu conversions byte-identical to gguf-py (first difference at element %zu: x %.9g)",
              file, n, at / 2, at < qb ? x[at / 2] : 0.0f);
        double rel = 0;
        for (size_t i = 0; i < n; i++) {
            double a = fabs(x[i]);
            if (isfinite(x[i]) && a > (type == LMA_GGML_F16 ? 6.2e-5 : 1.2e-38) && a < (type == LMA_GGML_F16 ? 65504 : 3e38))
                rel = fmax(rel, fabs(deq[i] - (double)x[i]) / a);
        }
        CHECK(rel <= (type == LMA_GGML_F16 ? 0x1p-11 : 0x1p-8), "%s: round trip relative error %.3g within half an ulp",
              file, rel);
        printf("%-5s %zu conversions (+%zu bit patterns): bit-identical to gguf-py\n", file, n, nr);
        free(mine);
    }
    free(x); free(deq); free(q); free(qr); free(deqr);
    lma_st_close(f);
}

static void test_kquant(const char *file, uint32_t type) {
    lma_st_file *f = open_fixture(file);
    if (!f) return;
    size_t n = 0, qb = 0;
    float *deq = load(f, file, "deq", &n, NULL);
    unsigned char *q = load(f, file, "q", NULL, &qb);
    if (deq && q) {
        check_deq(type, file, q, qb, deq, n);
        /* every field must matter: flip one bit of the scales and of the quants */
        float *y = malloc(n * sizeof(float));
        size_t at;
        size_t bytes = lma_ggml_block_bytes(type);
        for (size_t k = 0; k < 2; k++) {
            size_t byte = k == 0 ? bytes - 3 : 20; /* a scale/quant byte near the end, a quant byte early */
            q[byte] ^= 0x24;
            CHECK_OK(lma_ggml_dequantize(type, q, y, (int64_t)n));
            CHECK(!same_bits(y, deq, n, &at), "%s: a flipped bit at byte %zu changes the values", file, byte);
            q[byte] ^= 0x24;
        }
        float x[256] = {0};
        CHECK(lma_ggml_quantize(type, x, y, 256) == LMA_ERR_UNSUPPORTED && strstr(lma_last_error(), lma_ggml_type_name(type)) != NULL,
              "%s: quantize refused: %s", file, lma_last_error());
        lma_clear_error();
        free(y);
        printf("%-5s %zu elements: dequantized bit-identical to gguf-py\n", file, n);
    }
    free(deq); free(q);
    lma_st_close(f);
}

static void test_types(void) {
    lma_st_file *f = open_fixture("types");
    if (!f) return;
    size_t n = 0;
    float *s = load(f, "types", "sizes", &n, NULL);
    int agree = 0, rows = (int)(n / 3);
    for (int r = 0; s && r < rows; r++) {
        uint32_t t = (uint32_t)s[3 * r];
        int64_t be = (int64_t)s[3 * r + 1];
        size_t bb = (size_t)s[3 * r + 2];
        if (t == LMA_GGML_Q8_1) { /* gguf-py 0.19 keeps the old 40 (float d, s); ggml's block_q8_1 has two halfs */
            CHECK(lma_ggml_block_elems(t) == 32 && lma_ggml_block_bytes(t) == 36 && bb == 40, "Q8_1: 32 el, 36 B");
            continue;
        }
        if (lma_ggml_block_elems(t) == be && lma_ggml_block_bytes(t) == bb && lma_ggml_type_name(t)) agree++;
        else CHECK(0, "type %u (%s): %lld el %zu B vs gguf-py %lld el %zu B", t, lma_ggml_type_name(t),
                   (long long)lma_ggml_block_elems(t), lma_ggml_block_bytes(t), (long long)be, bb);
    }
    CHECK(rows >= 30 && agree == rows - 1, "block sizes of %d gguf-py types agree (%d)", rows, agree);
    free(s);
    lma_st_close(f);
    int known = 0;
    for (uint32_t t = 0; t < 64; t++) known += lma_ggml_type_name(t) != NULL;
    CHECK(known == rows, "%d type numbers named, gguf-py has %d", known, rows);
    CHECK(!strcmp(lma_ggml_type_name(LMA_GGML_Q4_K), "Q4_K") && !strcmp(lma_ggml_type_name(16), "IQ2_XXS") &&
          !strcmp(lma_ggml_type_name(LMA_GGML_BF16), "BF16") && !strcmp(lma_ggml_type_name(35), "TQ2_0"), "names");
    CHECK(!lma_ggml_type_name(4) && !lma_ggml_type_name(5) && !lma_ggml_type_name(31) && !lma_ggml_type_name(37) &&
          !lma_ggml_type_name(1000) && !lma_ggml_type_name(UINT32_MAX), "removed and unknown numbers have no name");
    CHECK(lma_ggml_block_elems(4) == 0 && lma_ggml_block_bytes(99) == 0, "unknown types have no size");
    const uint32_t sup[] = {0, 1, 30, 8, 2, 3, 6, 7, 10, 11, 12, 13, 14};
    int nsup = 0;
    for (uint32_t t = 0; t < 64; t++) nsup += lma_ggml_type_supported(t);
    int all = 1;
    for (size_t i = 0; i < sizeof sup / sizeof sup[0]; i++) all &= lma_ggml_type_supported(sup[i]);
    CHECK(all && nsup == 13, "13 dequantizable types (%d)", nsup);
    CHECK(!lma_ggml_type_supported(LMA_GGML_Q8_1) && !lma_ggml_type_supported(LMA_GGML_Q8_K) &&
          !lma_ggml_type_supported(16) && !lma_ggml_type_supported(999), "Q8_1, Q8_K, IQ2_XXS, 999 not dequantizable");
    int nq = 0;
    for (uint32_t t = 0; t < 64; t++) nq += lma_ggml_type_quantizable(t);
    CHECK(nq == 8 && lma_ggml_type_quantizable(LMA_GGML_Q5_1) && !lma_ggml_type_quantizable(LMA_GGML_Q4_K),
          "8 quantizable types (%d)", nq);
}

static void test_errors(void) {
    uint64_t nb = 12345;
    lma_clear_error();
    CHECK(lma_ggml_nbytes(LMA_GGML_Q4_0, 33, &nb) == LMA_ERR_FORMAT && strstr(lma_last_error(), "Q4_0") &&
          strstr(lma_last_error(), "33") && nb == 12345, "n off the block: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_ggml_nbytes(LMA_GGML_Q6_K, 512 + 32, &nb) == LMA_ERR_FORMAT, "Q6_K n = 544: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_ggml_nbytes(LMA_GGML_F32, 1ull << 62, &nb) == LMA_ERR_FORMAT && strstr(lma_last_error(), "overflow"),
          "2^62 F32 elements overflow: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_ggml_nbytes(28 /* F64 */, 1ull << 62, &nb) == LMA_ERR_FORMAT, "2^62 F64 overflow: %s", lma_last_error());
    lma_clear_error();
    CHECK_OK(lma_ggml_nbytes(LMA_GGML_Q4_0, 1ull << 62, &nb));
    CHECK(nb == (1ull << 57) * 18, "2^62 Q4_0 elements are 2^57 * 18 bytes");
    CHECK_OK(lma_ggml_nbytes(LMA_GGML_F32, (1ull << 62) - 1, &nb));
    CHECK(nb == ((1ull << 62) - 1) * 4, "2^62 - 1 F32 elements fit");
    CHECK_OK(lma_ggml_nbytes(LMA_GGML_Q4_K, 0, &nb));
    CHECK(nb == 0, "0 elements, 0 bytes");
    CHECK_OK(lma_ggml_nbytes(LMA_GGML_Q6_K, 4096, &nb));
    CHECK(nb == 16 * 210, "4096 Q6_K = 3360 bytes");
    CHECK(lma_ggml_nbytes(4, 32, &nb) == LMA_ERR_FORMAT && strstr(lma_last_error(), "type 4"),
          "type 4 (removed): %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_ggml_nbytes(77, 32, &nb) == LMA_ERR_FORMAT && strstr(lma_last_error(), "77") &&
          strstr(lma_last_error(), "unknown"), "type 77: %s", lma_last_error());
    lma_clear_error();

    float x[64] = {0}, y[64];
    unsigned char q[256];
    CHECK(lma_ggml_dequantize(77, q, y, 32) == LMA_ERR_UNSUPPORTED && strstr(lma_last_error(), "77"),
          "dequantize type 77: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_ggml_dequantize(16, q, y, 256) == LMA_ERR_UNSUPPORTED && strstr(lma_last_error(), "IQ2_XXS"),
          "dequantize IQ2_XXS: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_ggml_dequantize(LMA_GGML_Q8_K, q, y, 256) == LMA_ERR_UNSUPPORTED, "dequantize Q8_K: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_ggml_quantize(LMA_GGML_Q4_0, x, q, 48) == LMA_ERR_ARG && strstr(lma_last_error(), "48"),
          "quantize 48 Q4_0: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_ggml_dequantize(LMA_GGML_Q8_0, q, y, -32) == LMA_ERR_ARG, "negative n: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_ggml_dequantize(LMA_GGML_Q8_0, NULL, y, 32) == LMA_ERR_ARG, "NULL src: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_ggml_quantize(20, x, q, 32) == LMA_ERR_UNSUPPORTED, "quantize IQ4_NL: %s",
          lma_last_error());
    lma_clear_error();
    CHECK_OK(lma_ggml_dequantize(LMA_GGML_Q4_K, NULL, NULL, 0));
}

/* large n (OpenMP) equals one block at a time; round trips on random data */
static void test_threads_and_round_trip(void) {
    const int64_t n = 1 << 17;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)), *z = malloc(n * sizeof(float));
    unsigned char *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
    lma_rng r;
    lma_rng_seed(&r, 7);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lma_rng_normal(&r) * (1 + (i / 4096) % 5));
    const uint32_t types[] = {LMA_GGML_F16, LMA_GGML_BF16, LMA_GGML_Q8_0, LMA_GGML_Q4_0, LMA_GGML_Q4_1, LMA_GGML_Q5_0,
                              LMA_GGML_Q5_1, LMA_GGML_F32};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        uint32_t t = types[k];
        const char *nm = lma_ggml_type_name(t);
        int64_t bs = lma_ggml_block_elems(t), chunk = 32 * 4; /* below the threading threshold */
        size_t bb = lma_ggml_block_bytes(t);
        CHECK_OK(lma_ggml_quantize(t, x, a, n));
        for (int64_t i = 0; i < n; i += chunk) CHECK_OK_QUIET(lma_ggml_quantize(t, x + i, b + i / bs * bb, chunk));
        uint64_t nb = 0;
        CHECK_OK(lma_ggml_nbytes(t, (uint64_t)n, &nb));
        CHECK(!memcmp(a, b, nb), "%s: quantize of %lld elements (threads) == block by block", nm, (long long)n);
        CHECK_OK(lma_ggml_dequantize(t, a, y, n));
        for (int64_t i = 0; i < n; i += chunk) CHECK_OK_QUIET(lma_ggml_dequantize(t, a + i / bs * bb, z + i, chunk));
        size_t at = 0;
        CHECK(same_bits(y, z, (size_t)n, &at), "%s: dequantize (threads) == block by block", nm);
        double w = 0, rel = 0;
        if (bs == 32) w = worst_block_error(t, x, y, (size_t)n);
        else for (int64_t i = 0; i < n; i++) rel = fmax(rel, fabs(y[i] - (double)x[i]) / fmax(fabs(x[i]), 1e-4));
        CHECK(bs == 32 ? w <= 1.0 : rel <= (t == LMA_GGML_BF16 ? 0x1p-8 : t == LMA_GGML_F16 ? 0x1p-11 : 0),
              "%s: round trip of normal data within bounds (%.3g)", nm, bs == 32 ? w : rel);
        double err2 = 0, x2 = 0;
        for (int64_t i = 0; i < n; i++) { err2 += (y[i] - (double)x[i]) * (y[i] - (double)x[i]); x2 += (double)x[i] * x[i]; }
        printf("%-5s round trip of %lld normal values: relative L2 error %.3g\n", nm, (long long)n, sqrt(err2 / x2));
    }
    free(x); free(y); free(z); free(a); free(b);
}

int main(void) {
    test_types();
    test_errors();
    test_legacy("q8_0", LMA_GGML_Q8_0);
    test_legacy("q4_0", LMA_GGML_Q4_0);
    test_legacy("q4_1", LMA_GGML_Q4_1);
    test_legacy("q5_0", LMA_GGML_Q5_0);
    test_legacy("q5_1", LMA_GGML_Q5_1);
    test_half("f16", LMA_GGML_F16);
    test_half("bf16", LMA_GGML_BF16);
    test_kquant("q2_k", LMA_GGML_Q2_K);
    test_kquant("q3_k", LMA_GGML_Q3_K);
    test_kquant("q4_k", LMA_GGML_Q4_K);
    test_kquant("q5_k", LMA_GGML_Q5_K);
    test_kquant("q6_k", LMA_GGML_Q6_K);
    test_threads_and_round_trip();
    TEST_END();
}
