/* GGUF blocks kept quantized for inference (quant/qdot.h, backend matmul_q_fwd,
 * LMA_MODEL_GGUF_QUANT):
 *  1. every format (Q8_0, Q4_0, Q4_1, Q4_K) x every kernel the CPU runs (scalar, avx2,
 *     avx512) against the scalar oracle (same integers: only the float summation order
 *     differs, 1e-5 of sum |terms|) and against the fp32 product with the dequantized rows
 *     in double, within the activation-quantization bound of qdot.h (sum over blocks of
 *     d/2 * sum |w|), and that bound is itself tight enough to mean something;
 *  2. the cpu op (int8 path for few rows, dequantized tiles + sgemm for many) against
 *     the ref op (the oracle), biases included;
 *  3. the tiny fixture models exported to Q8_0/Q4_0/Q4_1 GGUF: loaded with their blocks kept
 *     on ref, logits equal the dequantized fp32 model's on ref (block copy and the Q/K
 *     row permutation are exact); on cpu through the sgemm path within 1e-4, through the int8
 *     path within 5% relative L2 of the logits (the activation rounding of each matmul, tiny
 *     random models with small logits; measured 2-3%, printed); training and saving refused. */
#include <stdint.h>
#include <unistd.h>
#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include "core/rng.h"
#include "format/gguf.h"
#include "model/gguf_model.h"
#include "model/llama.h"
#include "quant/ggml_quant.h"
#include "quant/half.h"
#include "quant/qdot.h"
#include "test.h"

static const uint32_t types[] = {LMA_GGML_Q8_0, LMA_GGML_Q4_0, LMA_GGML_Q4_1, LMA_GGML_Q4_K};

/* random blocks: any bytes are a valid block; the fp16 scales are drawn in a sane range */
static void fill_random(lma_qmat *w, lma_rng *r) {
    size_t bb = lma_ggml_block_bytes(w->type), nb = (size_t)w->rows * w->row_bytes / bb;
    uint8_t *p = w->data;
    for (size_t i = 0; i < (size_t)w->rows * w->row_bytes; i++) p[i] = (uint8_t)(lma_rng_u64(r) >> 56);
    for (size_t b = 0; b < nb; b++) {
        uint8_t *blk = p + b * bb;
        int nscale = w->type == LMA_GGML_Q4_1 || w->type == LMA_GGML_Q4_K ? 2 : 1;
        for (int k = 0; k < nscale; k++) {
            float v = (float)(0.001 + 0.02 * lma_rng_uniform(r));
            if (w->type == LMA_GGML_Q4_1 && k == 1) v = -8 * v; /* Q4_1's min: values around 0 */
            uint16_t h = lma_q_f32_to_f16(v);
            memcpy(blk + 2 * k, &h, 2);
        }
    }
    /* the kernels' row layout; lma_qmat_row_f32 of it is ggml's dequantization, bit for bit */
    size_t bytes = (size_t)w->rows * w->row_bytes;
    uint8_t *ggml = malloc(bytes);
    float *a = malloc((size_t)w->cols * sizeof *a), *b = malloc((size_t)w->cols * sizeof *b);
    memcpy(ggml, w->data, bytes);
    CHECK_OK(lma_qmat_pack(w));
    for (int i = 0; i < w->rows; i++) {
        CHECK_OK(lma_ggml_dequantize(w->type, ggml + (size_t)i * w->row_bytes, a, w->cols));
        lma_qmat_row_f32(w, i, b);
        CHECK(!memcmp(a, b, (size_t)w->cols * sizeof *a), "%s row %d: packed dequantization differs from ggml's",
              lma_ggml_type_name(w->type), i);
    }
    free(ggml); free(a); free(b);
}

static void kernels_against_oracles(void) {
    lma_rng r;
    lma_rng_seed(&r, 7);
    int nk;
    const lma_qdot_kernel *ks = lma_qdot_kernels(&nk);
    int rows = 37;
    float *x = malloc(576 * sizeof *x), *row = malloc(576 * sizeof *row), *y = malloc(rows * sizeof *y),
          *y0 = malloc(rows * sizeof *y0);
    lma_q8_block *a = malloc(576 / 32 * sizeof *a);
    for (int t = 0; t < 4; t++) {
        int cols = types[t] == LMA_GGML_Q4_K ? 512 : 576; /* 18 blocks: 2 groups of 8 and 2 alone */
        lma_qmat w;
        CHECK_OK(lma_qmat_alloc(&w, types[t], rows, cols));
        if (!w.data) continue;
        fill_random(&w, &r);
        for (int trial = 0; trial < 3; trial++) {
            for (int j = 0; j < cols; j++) /* a few outliers per block, as real activations have */
                x[j] = (float)(lma_rng_normal(&r) * (j % 37 == 0 ? 20 : 1));
            lma_q8_quantize(x, cols, a);
            /* the activation blocks themselves: |x - d q| <= d/2, d = max|x|/127, s = d sum q */
            for (int b = 0; b < cols / 32; b++) {
                float amax = 0;
                int sum = 0;
                for (int j = 0; j < 32; j++) { amax = fmaxf(amax, fabsf(x[32 * b + j])); sum += a[b].q[j]; }
                CHECK(a[b].d == amax / 127.0f && a[b].s == a[b].d * (float)sum, "q8 block %d: d %g s %g", b, a[b].d, a[b].s);
            }
            for (int j = 0; j < cols; j++) {
                const lma_q8_block *b = &a[j / 32];
                CHECK(fabsf(x[j] - b->d * b->q[j % 32]) <= b->d * 0.5f * (1 + 1e-5f) + 1e-30f, "q8 of x[%d]", j);
            }
            ks[0].dot[t](&w, 0, rows, a, y0);
            double worst_bound_frac = 0;
            for (int k = 0; k < nk; k++) {
                if (!ks[k].supported()) {
                    if (trial == 0 && t == 0) printf("kernel %s: not supported by this CPU, not tested here\n", ks[k].name);
                    continue;
                }
                lma_qdot_fn f = lma_qdot_for(&ks[k], types[t]);
                for (int i = 0; i < rows; i++) y[i] = NAN;
                f(&w, 0, rows, a, y);
                /* rows one by one and from an offset give the same */
                float y1;
                f(&w, 5, 1, a, &y1);
                CHECK(y1 == y[5], "%s %s: row 5 alone %g vs %g", ks[k].name, lma_ggml_type_name(types[t]), y1, y[5]);
                for (int i = 0; i < rows; i++) {
                    lma_qmat_row_f32(&w, i, row);
                    double exact = 0, mag = 0, qmag = 0;
                    for (int j = 0; j < cols; j++) {
                        exact += (double)row[j] * x[j];
                        mag += fabs((double)row[j] * x[j]);
                        qmag += fabs((double)row[j] * a[j / 32].d * a[j / 32].q[j % 32]);
                    }
                    double bound = lma_q8_error_bound(&w, i, x);
                    CHECK(fabs(y[i] - y0[i]) <= 1e-5 * (qmag + mag), "%s %s row %d: %g vs scalar %g", ks[k].name,
                          lma_ggml_type_name(types[t]), i, y[i], y0[i]);
                    CHECK(fabs(y[i] - exact) <= bound + 1e-5 * mag, "%s %s row %d: %g vs fp32 %g: error %.3g > bound %.3g",
                          ks[k].name, lma_ggml_type_name(types[t]), i, y[i], exact, fabs(y[i] - exact), bound);
                    if (mag > 0) worst_bound_frac = fmax(worst_bound_frac, bound / mag);
                }
            }
            /* the bound is a bound worth having: under 10% of sum |w x| even with outliers */
            CHECK(worst_bound_frac < 0.1, "%s: bound %.3g of sum |w x|", lma_ggml_type_name(types[t]), worst_bound_frac);
        }
        lma_qmat_free(&w);
    }
    free(x); free(row); free(y); free(y0); free(a);
}

static void op_against_ref(void) {
    const lma_backend *cpu = lma_backend_cpu(), *ref = lma_backend_ref();
    CHECK(cpu->matmul_q_fwd && ref->matmul_q_fwd, "matmul_q_fwd on cpu and ref");
    if (!cpu->matmul_q_fwd || !ref->matmul_q_fwd) return;
    lma_rng r;
    lma_rng_seed(&r, 11);
    int OC = 70, C = 256;
    static const int Ns[] = {1, 3, 40};
    for (int t = 0; t < 4; t++) {
        lma_qmat w;
        CHECK_OK(lma_qmat_alloc(&w, types[t], OC, C));
        if (!w.data) continue;
        fill_random(&w, &r);
        for (int ni = 0; ni < 3; ni++) {
            int N = Ns[ni];
            float *x = malloc((size_t)N * C * sizeof *x), *b = malloc(OC * sizeof *b);
            float *yc = malloc((size_t)N * OC * sizeof *yc), *yr = malloc((size_t)N * OC * sizeof *yr);
            for (int i = 0; i < N * C; i++) x[i] = (float)lma_rng_normal(&r);
            for (int i = 0; i < OC; i++) b[i] = (float)lma_rng_normal(&r);
            cpu->matmul_q_fwd(yc, x, &w, b, N);
            ref->matmul_q_fwd(yr, x, &w, b, N);
            double worst = 0;
            for (int n = 0; n < N; n++)
                for (int o = 0; o < OC; o++) {
                    /* few rows: int8 dots, within the activation bound; many: fp32 sgemm */
                    double tol = N < lma_cpu_qgemm_rows ? lma_q8_error_bound(&w, o, x + (size_t)n * C) : 0;
                    double d = fabs((double)yc[(size_t)n * OC + o] - yr[(size_t)n * OC + o]);
                    double ex = d - tol - 1e-4 * (1 + fabs(yr[(size_t)n * OC + o]));
                    if (ex > worst) worst = ex;
                }
            CHECK(worst <= 0, "%s N=%d: cpu vs ref beyond the bound by %.3g", lma_ggml_type_name(types[t]), N, worst);
            free(x); free(b); free(yc); free(yr);
        }
        lma_qmat_free(&w);
    }
}

static void greedy(lma_model *m, const int32_t *prompt, int np, int n, int32_t *out) {
    lma_kv_cache *kv = NULL;
    int V = m->cfg.vocab_size;
    float *lg = malloc((size_t)V * sizeof *lg);
    CHECK_OK(lma_kv_create(m, np + n, &kv));
    if (!kv || !lg) { free(lg); lma_kv_free(m, kv); return; }
    CHECK_OK(lma_model_forward_cached(m, kv, prompt, np, lg, 0));
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int v = 1; v < V; v++) if (lg[v] > lg[best]) best = v;
        out[i] = best;
        if (i + 1 < n) CHECK_OK(lma_model_forward_cached(m, kv, &out[i], 1, lg, 0));
    }
    lma_kv_free(m, kv);
    free(lg);
}

static void logits_of(lma_model *m, const int32_t *ids, int T, float *lg) {
    CHECK_OK(lma_model_forward(m, ids, NULL, NULL, 1, T, 0, 1.0f, NULL));
    CHECK_OK(lma_model_logits(m, lg));
}

static void fixture_models(void) {
    static const char *names[] = {"llama_gqa", "llama3_tied", "qwen2"};
    static const uint32_t ftypes[] = {LMA_GGML_Q8_0, LMA_GGML_Q4_0, LMA_GGML_Q4_1};
    char dir[] = "/tmp/lma_qmatXXXXXX";
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    const lma_backend *cpu = lma_backend_cpu(), *ref = lma_backend_ref();
    enum { T = 12, G = 16 };
    for (int f = 0; f < 3; f++)
        for (int t = 0; t < 3; t++) {
            char hdir[1024], gpath[1100];
            snprintf(hdir, sizeof hdir, "%s/tests/ref/models/%s", LMA_SRC_DIR, names[f]);
            snprintf(gpath, sizeof gpath, "%s/%s.%s.gguf", dir, names[f], lma_ggml_type_name(ftypes[t]));
            lma_model *h = NULL, *rq = NULL, *rd = NULL, *cq = NULL, *cd = NULL;
            lma_gguf_writer *w = NULL;
            CHECK_OK(lma_model_load_ex(hdir, cpu, 0, &h));
            CHECK_OK(lma_gguf_writer_new(&w));
            if (h) h->cfg.rope_type = LMA_ROPE_DEFAULT; /* llama3 scaling is not exported; irrelevant here */
            if (h && w) CHECK_OK(lma_model_save_gguf(h, w, gpath, ftypes[t]));
            lma_gguf_writer_free(w);
            CHECK_OK(lma_model_load_ex(gpath, ref, LMA_MODEL_GGUF_QUANT, &rq));
            CHECK_OK(lma_model_load_ex(gpath, ref, 0, &rd));
            CHECK_OK(lma_model_load_ex(gpath, cpu, LMA_MODEL_FROZEN | LMA_MODEL_GGUF_QUANT, &cq));
            CHECK_OK(lma_model_load_ex(gpath, cpu, LMA_MODEL_FROZEN, &cd));
            if (!rq || !rd || !cq || !cd) goto next;
            CHECK(rq->qm && cq->qm && !rd->qm && !cd->qm, "%s: blocks kept only when asked", gpath);
            CHECK(cq->qm[0].type == ftypes[t] && cq->qm[cq->cfg.n_layers * 7].type == ftypes[t],
                  "%s: projection and embedding kept as %s (got %u, %u)", gpath, lma_ggml_type_name(ftypes[t]),
                  cq->qm[0].type, cq->qm[cq->cfg.n_layers * 7].type);
            CHECK(cq->table.total < cd->table.total / 4, "%s: the dense table lost the matrices (%zu vs %zu)", gpath,
                  cq->table.total, cd->table.total);
            int V = cq->cfg.vocab_size;
            int32_t ids[T], g1[G], g2[G];
            for (int i = 0; i < T; i++) ids[i] = (int32_t)((i * 37 + 11) % V);
            float *a = malloc((size_t)T * V * sizeof *a), *b = malloc((size_t)T * V * sizeof *b);
            logits_of(rq, ids, T, a);
            logits_of(rd, ids, T, b);
            double mx = 0, d = 0;
            for (int i = 0; i < T * V; i++) { mx = fmax(mx, fabs(b[i])); d = fmax(d, fabs(a[i] - b[i])); }
            CHECK(d <= 1e-5 * mx, "%s: ref, blocks kept vs dequantized: max diff %.3g (max |logit| %.3g)", gpath, d, mx);
            /* many rows: the dequantized tiles + sgemm path, the same fp32 arithmetic */
            int keep = lma_cpu_qgemm_rows;
            lma_cpu_qgemm_rows = 1;
            logits_of(cq, ids, T, a);
            lma_cpu_qgemm_rows = keep;
            double ds = 0;
            for (int i = 0; i < T * V; i++) ds = fmax(ds, fabs(a[i] - b[i]));
            CHECK(ds <= 1e-4 * mx, "%s: cpu tiles+sgemm vs ref fp32: max diff %.3g (max |logit| %.3g)", gpath, ds, mx);
            /* few rows: the int8 kernels */
            logits_of(cq, ids, T, a);
            double num = 0, den = 0, dc = 0;
            for (int i = 0; i < T * V; i++) {
                num += (a[i] - b[i]) * (double)(a[i] - b[i]);
                den += (double)b[i] * b[i];
                dc = fmax(dc, fabs(a[i] - b[i]));
            }
            double rel = sqrt(num / den);
            CHECK(rel <= 0.05, "%s: cpu int8 vs ref fp32: logits relative L2 error %.3g > 0.05", gpath, rel);
            /* the cached decode runs (prefill + steps) and agrees with the dequantized model's on
             * its first token (random fixtures have near-ties after that: the real model's test
             * compares whole greedy runs) */
            greedy(cq, ids, 4, G, g1);
            greedy(cd, ids, 4, G, g2);
            int same = 0;
            while (same < G && g1[same] == g2[same]) same++;
            printf("%-12s %-5s ref kept-vs-dequant %.1e; cpu sgemm path %.1e; cpu int8 rel L2 %.2e, max %.2e (max |logit| %.2f); greedy %d/%d equal\n",
                   names[f], lma_ggml_type_name(ftypes[t]), d, ds, rel, dc, mx, same, G);
            free(a); free(b);
            /* inference only */
            lma_status s = lma_model_enable_training(cq);
            CHECK(s == LMA_ERR_UNSUPPORTED && strstr(lma_last_error(), "--dequantize"), "training refused: %s", lma_last_error());
            lma_clear_error();
            char sdir[1200];
            snprintf(sdir, sizeof sdir, "%s/saved", dir);
            s = lma_model_save(cq, sdir, 0, 0);
            CHECK(s == LMA_ERR_UNSUPPORTED, "saving refused: %s", lma_last_error());
            lma_clear_error();
        next:
            lma_model_free(h); lma_model_free(rq); lma_model_free(rd); lma_model_free(cq); lma_model_free(cd);
            unlink(gpath);
        }
    rmdir(dir);
}

int main(void) {
    kernels_against_oracles();
    op_against_ref();
    fixture_models();
    TEST_END();
}
