/* NF4 with double-quantized constants, bit for bit against the Python
 * reference of tests/ref/make_nf4_fixture.py (bitsandbytes' rules; the fixture
 * script checks the reference against bitsandbytes itself): code tables,
 * packed 4-bit codes, 8-bit constants, second-level scales, offset and the
 * dequantized values. Then the NF4 matmul ops: cpu (tiled dequantization +
 * sgemm) against ref (whole weight dequantized, double loops), forward with a
 * bias and the input gradient, on shapes with partial tiles and blocks. */
#include "backend/backend.h"
#include "core/rng.h"
#include "model/nf4.h"
#include "model/safetensors.h"
#include "test.h"

static const lma_st_tensor *get(lma_st_file *f, const char *k, const char *field) {
    char name[128];
    snprintf(name, sizeof name, "%s%s%s", k, *k ? "." : "", field);
    const lma_st_tensor *t = lma_st_find(f, name);
    CHECK(t != NULL, "fixture has %s", name);
    return t;
}

static float *f32(const lma_st_tensor *t) {
    float *d = malloc(t->numel * sizeof(float) + 4);
    CHECK_OK(lma_st_read_f32(t, d, t->numel));
    return d;
}

static void check_case(lma_st_file *f, const char *k) {
    const lma_st_tensor *tx = get(f, k, "x"), *tc = get(f, k, "codes"), *tq = get(f, k, "qabsmax");
    const lma_st_tensor *ta = get(f, k, "absmax2"), *to = get(f, k, "offset"), *td = get(f, k, "deq");
    if (!tx || !tc || !tq || !ta || !to || !td) return;
    float *x = f32(tx), *a2 = f32(ta), *off = f32(to), *deq = f32(td);
    lma_nf4_tensor q;
    CHECK_OK(lma_nf4_quantize(x, (int64_t)tx->numel, &q));
    CHECK(tc->dtype == LMA_DT_U8 && (size_t)((q.n + 1) / 2) == tc->numel &&
          !memcmp(q.codes, tc->data, tc->numel), "%s: packed 4-bit codes bit-identical (%zu bytes)", k, tc->numel);
    CHECK(tq->dtype == LMA_DT_U8 && (size_t)q.nblocks == tq->numel && !memcmp(q.qabsmax, tq->data, tq->numel),
          "%s: 8-bit block constants bit-identical (%zu)", k, tq->numel);
    CHECK((size_t)q.nblocks2 == ta->numel && !memcmp(q.absmax2, a2, ta->numel * sizeof(float)),
          "%s: second-level scales bit-identical", k);
    CHECK(!memcmp(&q.offset, off, sizeof(float)), "%s: offset %.9g vs %.9g", k, q.offset, off[0]);
    float *y = malloc(tx->numel * sizeof(float));
    lma_nf4_dequantize(&q, 0, (int64_t)tx->numel, y);
    CHECK(!memcmp(y, deq, tx->numel * sizeof(float)), "%s: dequantized values bit-identical", k);
    /* a range that starts and ends inside blocks equals the slice */
    int64_t s0 = 37, cnt = (int64_t)tx->numel - 100;
    lma_nf4_dequantize(&q, s0, cnt, y);
    CHECK(!memcmp(y, deq + s0, (size_t)cnt * sizeof(float)), "%s: dequantized range [%lld, +%lld)", k, (long long)s0,
          (long long)cnt);
    double err = 0, mx = 0;
    for (size_t i = 0; i < tx->numel; i++) { err = fmax(err, fabs(deq[i] - x[i])); mx = fmax(mx, fabs(x[i])); }
    CHECK(err <= 0.35 * mx, "%s: NF4 error %.3g within the code spacing of absmax %.3g", k, err, mx);
    CHECK(lma_nf4_bytes(q.n) < tx->numel * sizeof(float) / 7, "%s: %zu bytes vs %zu fp32", k, lma_nf4_bytes(q.n),
          tx->numel * sizeof(float));
    printf("%-10s %7zu elements: bit-identical to the reference\n", k, tx->numel);
    free(x); free(a2); free(off); free(deq); free(y);
    lma_nf4_free(&q);
}

static void test_fixture(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/ref/nf4/nf4.safetensors", LMA_SRC_DIR);
    lma_st_file *f = NULL;
    CHECK_OK(lma_st_open(path, &f));
    if (!f) return;
    const lma_st_tensor *c4 = get(f, "", "code4"), *c8 = get(f, "", "code8");
    if (c4 && c8) {
        float *a = f32(c4), *b = f32(c8);
        CHECK(!memcmp(a, lma_nf4_code, sizeof lma_nf4_code), "NF4 code table == bitsandbytes'");
        CHECK(!memcmp(b, lma_nf4_code8, sizeof lma_nf4_code8), "8-bit dynamic map == bitsandbytes'");
        free(a); free(b);
    }
    check_case(f, "w96x64");
    check_case(f, "odd33x67");
    check_case(f, "long");
    lma_st_close(f);
    float bad[3] = {1, NAN, 2};
    lma_nf4_tensor q;
    CHECK(lma_nf4_quantize(bad, 3, &q) == LMA_ERR_ARG && strstr(lma_last_error(), "element 1"), "NaN refused: %s",
          lma_last_error());
    lma_clear_error();
}

static void cmp_matmul(int N, int C, int OC, int bias) {
    const lma_backend *cpu = lma_backend_cpu(), *ref = lma_backend_ref();
    lma_rng r;
    lma_rng_seed(&r, (uint64_t)(N * 131 + C * 7 + OC));
    size_t nw = (size_t)OC * C;
    float *w = malloc(nw * sizeof(float)), *x = malloc((size_t)N * C * sizeof(float)), *b = malloc(OC * sizeof(float));
    float *g = malloc((size_t)N * OC * sizeof(float));
    for (size_t i = 0; i < nw; i++) w[i] = (float)(0.1 * lma_rng_normal(&r));
    for (size_t i = 0; i < (size_t)N * C; i++) x[i] = (float)lma_rng_normal(&r);
    for (int i = 0; i < OC; i++) b[i] = (float)lma_rng_normal(&r);
    for (size_t i = 0; i < (size_t)N * OC; i++) g[i] = (float)lma_rng_normal(&r);
    lma_nf4_tensor q;
    CHECK_OK(lma_nf4_quantize(w, (int64_t)nw, &q));
    float *o1 = malloc((size_t)N * OC * sizeof(float)), *o2 = malloc((size_t)N * OC * sizeof(float));
    cpu->matmul_nf4_fwd(o1, x, &q, bias ? b : NULL, N, C, OC);
    ref->matmul_nf4_fwd(o2, x, &q, bias ? b : NULL, N, C, OC);
    double e = test_rel_l2f(o1, o2, (size_t)N * OC);
    CHECK(e < 1e-6, "nf4 fwd %dx%dx%d cpu vs ref rel %.3g", N, C, OC, e);
    /* and vs an fp32 matmul on the dequantized weight */
    float *wd = malloc(nw * sizeof(float)), *o3 = malloc((size_t)N * OC * sizeof(float));
    lma_nf4_dequantize(&q, 0, (int64_t)nw, wd);
    ref->matmul_fwd(o3, x, wd, bias ? b : NULL, N, C, OC);
    e = test_rel_l2f(o2, o3, (size_t)N * OC);
    CHECK(e < 1e-7, "nf4 fwd %dx%dx%d == matmul on the dequantized weight (rel %.3g)", N, C, OC, e);
    float *d1 = malloc((size_t)N * C * sizeof(float)), *d2 = malloc((size_t)N * C * sizeof(float));
    for (size_t i = 0; i < (size_t)N * C; i++) d1[i] = d2[i] = 0.5f; /* accumulates */
    cpu->matmul_nf4_bwd(d1, g, &q, N, C, OC);
    ref->matmul_nf4_bwd(d2, g, &q, N, C, OC);
    e = test_rel_l2f(d1, d2, (size_t)N * C);
    CHECK(e < 1e-6, "nf4 bwd %dx%dx%d cpu vs ref rel %.3g", N, C, OC, e);
    free(w); free(x); free(b); free(g); free(o1); free(o2); free(o3); free(wd); free(d1); free(d2);
    lma_nf4_free(&q);
}

int main(void) {
    test_fixture();
    cmp_matmul(7, 13, 11, 1);    /* blocks span rows */
    cmp_matmul(67, 64, 131, 1);  /* partial tile */
    cmp_matmul(130, 288, 300, 0); /* above the threading threshold */
    cmp_matmul(1, 96, 257, 1);
    TEST_END();
}
