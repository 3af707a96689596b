/* LoRA / QLoRA in the model:
 *  - gradients of every lora_A / lora_B tensor against central finite differences
 *    of the loss (directional, along each tensor's own gradient), for LoRA on an
 *    fp32 base and QLoRA on an NF4 base, with and without dropout, on the ref
 *    (double inside each op) and cpu backends; the frozen base gets no gradient;
 *  - B = 0 (PEFT init): adapted logits are bitwise the base logits;
 *  - PEFT init bounds: A in [-1/sqrt(in), 1/sqrt(in)];
 *  - merged (W + s B A) logits == unmerged;
 *  - QLoRA forward == LoRA forward on the dequantized fp32 base;
 *  - AdamW on the adapter leaves the base weights bitwise unchanged;
 *  - KV-cache inference with an adapter == the training forward. */
#include "core/rng.h"
#include "model/lora.h"
#include "model/nf4.h"
#include "test.h"
#include "test_models.h"

static lma_rng rng;


/* Random B (and scaled-up A) so that every gradient is nonzero. */
static void randomize_adapter(lma_model *m, float bscale) {
    lma_lora *lo = m->lora;
    float *h = malloc(lo->table.total * sizeof(float));
    m->be->download(h, lo->params, lo->table.total * sizeof(float));
    for (int i = 0; i < lo->table.count; i++) {
        const lma_param_info *p = &lo->table.info[i];
        if (!strstr(p->name, ".lora_B.")) continue;
        for (size_t j = 0; j < p->numel; j++) h[p->offset + j] = (float)(bscale * lma_rng_normal(&rng));
    }
    m->be->upload(lo->params, h, lo->table.total * sizeof(float));
    lma_model_sync_weights(m);
    free(h);
}

static void make_batch(int B, int T, int V, int32_t *ids, int32_t *tg) {
    for (int i = 0; i < B * T; i++) {
        ids[i] = (int32_t)lma_rng_below(&rng, (uint64_t)V);
        tg[i] = (i % 7 == 3) ? LMA_IGNORE_INDEX : (int32_t)lma_rng_below(&rng, (uint64_t)V);
    }
}

/* mean loss in double from the per-token losses, with the dropout stream fixed at call0 */
static double loss_at(lma_model *m, const int32_t *ids, const int32_t *tg, int B, int T, uint64_t call0) {
    m->lora->calls = call0;
    float l;
    lma_status s = lma_model_forward(m, ids, tg, NULL, B, T, 1, 1.0f, &l);
    if (s != LMA_OK) return NAN;
    const float *ls = lma_model_losses(m);
    double sum = 0;
    int n = 0;
    for (int i = 0; i < B * T; i++)
        if (tg[i] != LMA_IGNORE_INDEX) { sum += ls[i]; n++; }
    return sum / n;
}

static void fd_check(lma_model *m, const char *what, double tol) {
    const lma_backend *be = m->be;
    lma_lora *lo = m->lora;
    int B = 2, T = 9, V = m->cfg.vocab_size;
    int32_t ids[18], tg[18];
    make_batch(B, T, V, ids, tg);
    CHECK_OK(lma_model_enable_training(m));
    CHECK(m->grads == NULL && m->adam_m == NULL, "%s: the frozen base has no gradient or optimizer memory", what);
    lma_model_zero_grad(m);
    uint64_t call0 = 41;
    loss_at(m, ids, tg, B, T, call0);
    CHECK_OK(lma_model_backward(m));
    size_t P = lo->table.total;
    float *g = malloc(P * sizeof(float)), *p0 = malloc(P * sizeof(float)), *p1 = malloc(P * sizeof(float));
    be->download(g, lo->grads, P * sizeof(float));
    be->download(p0, lo->params, P * sizeof(float));
    int bad = 0, checked = 0;
    double worst = 0;
    for (int i = 0; i < lo->table.count; i++) {
        const lma_param_info *pi = &lo->table.info[i];
        double gn = 0;
        for (size_t j = 0; j < pi->numel; j++) gn += (double)g[pi->offset + j] * g[pi->offset + j];
        gn = sqrt(gn);
        if (gn == 0) { bad++; CHECK(0, "%s: %s has a zero gradient", what, pi->name); continue; }
        double eps = 1e-3;
        double f[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            memcpy(p1, p0, P * sizeof(float));
            for (size_t j = 0; j < pi->numel; j++)
                p1[pi->offset + j] = (float)(p0[pi->offset + j] + (sgn ? -eps : eps) * g[pi->offset + j] / gn);
            be->upload(lo->params, p1, P * sizeof(float));
            lma_model_sync_weights(m);
            f[sgn] = loss_at(m, ids, tg, B, T, call0);
        }
        double fd = (f[0] - f[1]) / (2 * eps), rel = fabs(fd - gn) / gn;
        worst = fmax(worst, rel);
        checked++;
        if (rel > tol) { bad++; CHECK(0, "%s: %s directional FD %.6g vs |grad| %.6g (rel %.3g)", what, pi->name, fd, gn, rel); }
    }
    be->upload(lo->params, p0, P * sizeof(float));
    lma_model_sync_weights(m);
    CHECK(bad == 0 && checked == lo->table.count, "%s: %d adapter gradients vs finite differences (worst rel %.2e, tol %.0e)",
          what, checked, worst, tol);
    printf("%-34s %d tensors, worst FD rel err %.2e\n", what, checked, worst);
    free(g); free(p0); free(p1);
}

static void test_fd(void) {
    const lma_backend *bes[2] = {lma_backend_ref(), lma_backend_cpu()};
    const char *models[2] = {"llama_gqa", "qwen2"};
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 2; k++) {
            for (int q = 0; q < 2; q++) {
                lma_model *m0 = test_fixture(models[k], bes[b]), *m = m0;
                if (!m0) continue;
                if (q) { CHECK_OK(lma_model_to_nf4(m0, &m)); lma_model_free(m0); if (!m) continue; }
                lma_lora_params p = lma_lora_default_params();
                p.r = 4; p.alpha = 16; p.dropout = (k == 1) ? 0.25f : 0.0f; p.rslora = k == 1;
                CHECK_OK(lma_lora_attach(m, &p, 7));
                randomize_adapter(m, 0.05f);
                char what[128];
                snprintf(what, sizeof what, "%s %s%s [%s]", q ? "QLoRA" : "LoRA", models[k],
                         p.dropout > 0 ? " +dropout" : "", bes[b]->name);
                fd_check(m, what, bes[b] == lma_backend_ref() ? 2e-3 : 5e-3);
                lma_model_free(m);
            }
        }
}

static void logits_of(lma_model *m, const int32_t *ids, int B, int T, float *out) {
    CHECK_OK(lma_model_forward(m, ids, NULL, NULL, B, T, 0, 1.0f, NULL));
    CHECK_OK(lma_model_logits(m, out));
}

static double max_rel(const float *a, const float *b, size_t n) {
    double e = 0, mx = 0;
    for (size_t i = 0; i < n; i++) { e = fmax(e, fabs((double)a[i] - b[i])); mx = fmax(mx, fabs(b[i])); }
    return e / (mx > 0 ? mx : 1);
}

static void test_identity_merge(void) {
    const lma_backend *be = lma_backend_cpu();
    lma_model *m = test_fixture("qwen3", be);
    if (!m) return;
    int B = 2, T = 11, V = m->cfg.vocab_size;
    size_t n = (size_t)B * T * V;
    int32_t ids[22], tg[22];
    make_batch(B, T, V, ids, tg);
    float *base = malloc(n * sizeof(float)), *ad = malloc(n * sizeof(float)), *mg = malloc(n * sizeof(float));
    logits_of(m, ids, B, T, base);
    lma_lora_params p = lma_lora_default_params();
    p.r = 8; p.alpha = 32; p.dropout = 0.1f;
    CHECK_OK(lma_lora_attach(m, &p, 99));
    /* PEFT init: A within the kaiming bound, not all zero; B exactly zero */
    lma_lora *lo = m->lora;
    int a_ok = 1, b_zero = 1;
    double a_max = 0;
    for (int i = 0; i < lo->table.count; i++) {
        const lma_param_info *pi = &lo->table.info[i];
        double bound = 1.0 / sqrt((double)pi->shape[1]);
        for (size_t j = 0; j < pi->numel; j++) {
            float v = lo->params[pi->offset + j];
            if (strstr(pi->name, ".lora_A.")) { a_ok &= fabs(v) <= bound; a_max = fmax(a_max, fabs(v) / bound); }
            else b_zero &= v == 0.0f;
        }
    }
    CHECK(a_ok && a_max > 0.9, "PEFT init: |A| <= 1/sqrt(in), max |A|*sqrt(in) = %.3f", a_max);
    CHECK(b_zero, "PEFT init: B = 0");
    CHECK(lo->table.count == 2 * 7 * m->cfg.n_layers, "all 7 projections of %d layers adapted", m->cfg.n_layers);
    logits_of(m, ids, B, T, ad);
    CHECK(memcmp(base, ad, n * sizeof(float)) == 0, "B = 0: adapted logits are bitwise the base logits");
    /* also in a training forward with dropout (the loss equals the base loss) */
    randomize_adapter(m, 0.2f);
    logits_of(m, ids, B, T, ad);
    double d = max_rel(ad, base, n);
    CHECK(d > 1e-3, "a nonzero B changes the logits (%.3g)", d);
    /* KV-cache inference sees the adapter too */
    lma_kv_cache *kv = NULL;
    CHECK_OK(lma_kv_create(m, T, &kv));
    float *cl = malloc((size_t)T * V * sizeof(float));
    if (kv) {
        CHECK_OK(lma_model_forward_cached(m, kv, ids, T, cl, 1));
        double e = max_rel(cl, ad, (size_t)T * V);
        CHECK(e < 1e-5, "cached forward with adapter == full forward (rel %.3g)", e);
        lma_kv_free(m, kv);
    }
    CHECK_OK(lma_lora_merge(m));
    CHECK(m->lora == NULL && !m->frozen, "merge detaches the adapter");
    logits_of(m, ids, B, T, mg);
    double e = max_rel(mg, ad, n);
    CHECK(e < 1e-5, "merged logits == unmerged (max rel %.3g)", e);
    printf("merge: max rel diff %.2e\n", e);
    free(base); free(ad); free(mg); free(cl);
    lma_model_free(m);
}

/* QLoRA forward == LoRA forward on the fp32 model whose projections are the dequantized NF4 weights. */
static void test_qlora_vs_dequant(void) {
    const lma_backend *be = lma_backend_cpu();
    lma_model *m = test_fixture("llama_gqa", be), *q = NULL;
    if (!m) return;
    CHECK_OK(lma_model_to_nf4(m, &q));
    if (!q) { lma_model_free(m); return; }
    CHECK(lma_model_num_params(q) == lma_model_num_params(m), "NF4 model counts the same parameters");
    /* overwrite m's projections (the fp32 masters) with the dequantized weights */
    lma_tensors mw;
    CHECK_OK(lma_tensors_carve(&m->cfg, &m->table, m->params, sizeof(float), &mw));
    for (int l = 0; l < m->cfg.n_layers; l++) {
        lma_layer_tensors *w = &mw.layers[l];
        float *ws[7] = {w->wq, w->wk, w->wv, w->wo, w->wgate, w->wup, w->wdown};
        for (int p = 0; p < 7; p++) {
            int in, out;
            lma_proj_dims(&m->cfg, (lma_proj)p, &in, &out);
            lma_nf4_dequantize(&q->nf4[l * 7 + p], 0, (int64_t)in * out, ws[p]);
            CHECK(q->w.layers[l].wq == NULL, "NF4 model holds no fp32 projection");
        }
    }
    lma_tensors_free(&mw);
    lma_model_sync_weights(m);
    lma_lora_params p = lma_lora_default_params();
    p.r = 4;
    CHECK_OK(lma_lora_attach(m, &p, 5));
    CHECK_OK(lma_lora_attach(q, &p, 5));
    lma_rng keep = rng;
    randomize_adapter(m, 0.2f);
    rng = keep;
    randomize_adapter(q, 0.2f);
    int B = 2, T = 7, V = m->cfg.vocab_size;
    int32_t ids[14], tg[14];
    make_batch(B, T, V, ids, tg);
    size_t n = (size_t)B * T * V;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    logits_of(m, ids, B, T, a);
    logits_of(q, ids, B, T, b);
    double e = max_rel(b, a, n);
    CHECK(e < 1e-5, "QLoRA logits == LoRA on the dequantized base (rel %.3g)", e);
    /* one AdamW step: the base does not move, the adapter does */
    size_t P = m->table.total;
    float *before = malloc(P * sizeof(float));
    memcpy(before, m->params, P * sizeof(float));
    float *ab = malloc(m->lora->table.total * sizeof(float));
    memcpy(ab, m->lora->params, m->lora->table.total * sizeof(float));
    CHECK_OK(lma_model_enable_training(m));
    float loss, gn;
    CHECK_OK(lma_model_forward(m, ids, tg, NULL, B, T, 1, 1.0f, &loss));
    CHECK_OK(lma_model_backward(m));
    lma_adamw_params ap = lma_adamw_default_params();
    ap.weight_decay = 0.1f;
    CHECK_OK(lma_model_adamw_step(m, &ap, 1, &gn));
    CHECK(memcmp(before, m->params, P * sizeof(float)) == 0, "AdamW on the adapter leaves the base bitwise unchanged");
    CHECK(memcmp(ab, m->lora->params, m->lora->table.total * sizeof(float)) != 0 && gn > 0, "the adapter moved (grad norm %g)", gn);
    size_t tr, all;
    lma_lora_counts(m, &tr, &all);
    size_t want = 0;
    for (int pp = 0; pp < 7; pp++) {
        int in, out;
        lma_proj_dims(&m->cfg, (lma_proj)pp, &in, &out);
        want += (size_t)m->cfg.n_layers * (size_t)p.r * (size_t)(in + out);
    }
    CHECK(tr == want && all == lma_model_num_params(m) + want, "trainable %zu (want %zu), all %zu", tr, want, all);
    free(a); free(b); free(before); free(ab);
    lma_model_free(m);
    lma_model_free(q);
}

static void test_targets(void) {
    unsigned k = 0;
    CHECK_OK(lma_lora_parse_targets("all", &k));
    CHECK(k == LMA_LORA_ALL, "targets all");
    CHECK_OK(lma_lora_parse_targets("attn", &k));
    CHECK(k == 0x0f, "targets attn");
    CHECK_OK(lma_lora_parse_targets("mlp", &k));
    CHECK(k == 0x70, "targets mlp");
    CHECK_OK(lma_lora_parse_targets("q,v_proj,down", &k));
    CHECK(k == ((1u << LMA_PROJ_Q) | (1u << LMA_PROJ_V) | (1u << LMA_PROJ_DOWN)), "targets list (%x)", k);
    CHECK(lma_lora_parse_targets("q,lm_head", &k) == LMA_ERR_ARG && strstr(lma_last_error(), "lm_head"),
          "unknown target named: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_lora_parse_targets("", &k) == LMA_ERR_ARG, "empty targets refused");
    lma_clear_error();
    lma_model *m = test_fixture("llama_gqa", lma_backend_cpu());
    if (!m) return;
    lma_lora_params p = lma_lora_default_params();
    p.r = 0;
    CHECK(lma_lora_attach(m, &p, 1) == LMA_ERR_ARG, "rank 0 refused");
    lma_clear_error();
    p.r = 2; p.targets = (1u << LMA_PROJ_Q) | (1u << LMA_PROJ_V);
    CHECK_OK(lma_lora_attach(m, &p, 1));
    CHECK(m->lora && m->lora->table.count == 4 * m->cfg.n_layers, "q,v only: 2 tensors x 2 per layer");
    CHECK(lma_lora_attach(m, &p, 1) == LMA_ERR_ARG, "second adapter refused");
    lma_clear_error();
    lma_model_free(m);
}

int main(void) {
    lma_rng_seed(&rng, 515);
    test_targets();
    test_identity_merge();
    test_qlora_vs_dequant();
    test_fd();
    TEST_END();
}
