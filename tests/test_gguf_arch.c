/* GGUF files of every architecture lmadapt maps, written as llama.cpp's convert_hf_to_gguf.py
 * writes them (tests/ref/make_gguf_arch_fixtures.py: gguf-py's GGUFWriter, llama.cpp's keys,
 * tensor names and Q/K permutation; checked there against llama.cpp's own converter and
 * transformers' GGUF loader), from the tiny parity models of tests/ref/models:
 *   llama_gqa (llama, F16), llama_linear_bias (llama, F32: linear RoPE, permuted q/k biases),
 *   mistral (written as llama with general.name "Mistral", F16), qwen2 (q/k/v biases, no
 *   permutation, F16), qwen3 (q/k norms, key_length 32 != 64/4, no permutation, F16).
 * For each: the config read from the metadata equals the HF folder's config.json; the weights
 * equal the HF folder's bit for bit (F16 files: the 2-D ones rounded to fp16, as written); the
 * logits of lma_model_forward are within 1e-5 relative L2 of the reference (F32: the fixture's
 * expected.safetensors; F16: transformers' logits of that GGUF). */
#include <math.h>
#include <string.h>
#include "model/llama.h"
#include "model/safetensors.h"
#include "quant/half.h"
#include "test.h"

static const struct {
    const char *name;
    int f32;
} files[] = {
    {"llama_gqa", 0}, {"llama_linear_bias", 1}, {"mistral", 0}, {"qwen2", 0}, {"qwen3", 0},
};

static float *read_tensor(lma_st_file *st, const char *name, size_t *n) {
    const lma_st_tensor *t = lma_st_find(st, name);
    if (!t) return NULL;
    float *d = malloc(t->numel * sizeof(float));
    if (lma_st_read_f32(t, d, t->numel) != LMA_OK) { free(d); return NULL; }
    if (n) *n = t->numel;
    return d;
}

static void check_config(const char *name, const lma_config *g, const lma_config *h) {
#define SAME(f) CHECK(g->f == h->f, "%s: config " #f " %d from GGUF, %d from config.json", name, (int)g->f, (int)h->f)
    SAME(arch); SAME(vocab_size); SAME(hidden_size); SAME(intermediate_size); SAME(n_layers); SAME(n_heads);
    SAME(n_kv_heads); SAME(head_dim); SAME(max_position_embeddings); SAME(rope_type); SAME(tie_word_embeddings);
    SAME(qkv_bias); SAME(o_bias); SAME(qk_norm); SAME(sliding_window); SAME(bos_token_id); SAME(n_eos);
#undef SAME
    if (g->n_eos == h->n_eos && g->n_eos > 0) CHECK(g->eos_token_ids[0] == h->eos_token_ids[0], "%s: eos", name);
    /* GGUF stores these as f32 */
    CHECK((float)g->rope_theta == (float)h->rope_theta, "%s: rope_theta %g vs %g", name, g->rope_theta, h->rope_theta);
    CHECK((float)g->rms_norm_eps == (float)h->rms_norm_eps, "%s: rms_norm_eps %g vs %g", name, g->rms_norm_eps,
          h->rms_norm_eps);
    if (h->rope_type == LMA_ROPE_LINEAR)
        CHECK((float)g->rope_factor == (float)h->rope_factor, "%s: rope factor %g vs %g", name, g->rope_factor,
              h->rope_factor);
}

/* the GGUF's weights == the HF folder's (F16 file: 2-D tensors rounded to fp16), bit for bit */
static int check_weights(const char *name, const lma_model *g, const lma_model *h, int f32) {
    if (g->table.total != h->table.total || g->table.count != h->table.count) {
        CHECK(0, "%s: parameter tables differ (%zu vs %zu)", name, g->table.total, h->table.total);
        return 0;
    }
    if (f32) {
        int same = memcmp(g->params, h->params, h->table.total * sizeof(float)) == 0;
        CHECK(same, "%s: F32 GGUF weights are not bitwise the HF folder's", name);
        return same;
    }
    int bad = 0;
    for (int i = 0; i < h->table.count; i++) {
        const lma_param_info *p = &h->table.info[i], *q = &g->table.info[i];
        CHECK(!strcmp(p->name, q->name) && p->offset == q->offset && p->numel == q->numel, "%s: param %d layout",
              name, i);
        for (size_t k = 0; k < p->numel; k++) {
            float want = h->params[p->offset + k];
            if (p->ndim == 2) want = lma_q_f16_to_f32(lma_q_f32_to_f16(want));
            if (lma_q_f32_bits(want) != lma_q_f32_bits(g->params[q->offset + k])) {
                if (bad++ < 3)
                    fprintf(stderr, "%s: %s[%zu] = %.9g, HF (rounded) %.9g\n", name, p->name, k,
                            g->params[q->offset + k], want);
            }
        }
    }
    CHECK(bad == 0, "%s: %d weights differ from the HF folder's rounded to the file's types", name, bad);
    return bad == 0;
}

static void check_file(const char *name, int f32) {
    char gpath[1024], hdir[1024], xpath[1100];
    snprintf(gpath, sizeof gpath, "%s/tests/ref/gguf_arch/%s.gguf", LMA_SRC_DIR, name);
    snprintf(hdir, sizeof hdir, "%s/tests/ref/models/%s", LMA_SRC_DIR, name);
    if (f32) snprintf(xpath, sizeof xpath, "%s/expected.safetensors", hdir);
    else snprintf(xpath, sizeof xpath, "%s/tests/ref/gguf_arch/%s.logits.safetensors", LMA_SRC_DIR, name);

    lma_config hc;
    CHECK_OK(lma_config_load(hdir, &hc));
    lma_model *g = NULL, *h = NULL;
    lma_st_file *ex = NULL;
    CHECK_OK(lma_model_load_ex(gpath, lma_backend_cpu(), 0, &g));
    CHECK_OK(lma_model_load_ex(hdir, lma_backend_cpu(), 0, &h));
    CHECK_OK(lma_st_open(xpath, &ex));
    if (!g || !h || !ex) goto done;
    check_config(name, &g->cfg, &hc);
    int same = check_weights(name, g, h, f32);

    const lma_st_tensor *ti = lma_st_find(ex, "input_ids");
    CHECK(ti && ti->ndim == 2, "%s: input_ids in %s", name, xpath);
    if (!ti || ti->ndim != 2) goto done;
    int B = (int)ti->shape[0], T = (int)ti->shape[1], N = B * T, V = g->cfg.vocab_size;
    size_t nref = 0;
    float *fids = read_tensor(ex, "input_ids", NULL), *ref = read_tensor(ex, "logits", &nref);
    int32_t *ids = malloc((size_t)N * sizeof *ids);
    float *lg = malloc((size_t)N * V * sizeof *lg), *lh = malloc((size_t)N * V * sizeof *lh);
    CHECK(ref && nref == (size_t)N * V, "%s: %zu reference logits, %d expected", name, nref, N * V);
    if (!fids || !ref || nref != (size_t)N * V) goto free_all;
    for (int i = 0; i < N; i++) ids[i] = (int32_t)fids[i];
    CHECK_OK(lma_model_forward(g, ids, NULL, NULL, B, T, 0, 1.0f, NULL));
    CHECK_OK(lma_model_logits(g, lg));
    double rel = test_rel_l2f(lg, ref, nref), mx = 0;
    for (size_t i = 0; i < nref; i++) mx = fmax(mx, fabs((double)lg[i] - ref[i]));
    CHECK(rel <= 1e-5, "%s: logits relative L2 error %.3g > 1e-5", name, rel);
    if (f32) { /* same weights, same computation: the HF folder's model gives the same bits */
        CHECK_OK(lma_model_forward(h, ids, NULL, NULL, B, T, 0, 1.0f, NULL));
        CHECK_OK(lma_model_logits(h, lh));
        CHECK(memcmp(lg, lh, nref * sizeof *lg) == 0, "%s: GGUF and HF-folder logits differ", name);
    }
    printf("%-18s %-8s %s  %s  logits rel L2 %.2e  max abs %.2e  (vs %s)\n", name, lma_arch_model_type(g->cfg.arch),
           f32 ? "F32" : "F16", !same ? "weights DIFFER" : f32 ? "weights == HF bitwise" : "weights == fp16(HF) bitwise", rel, mx,
           f32 ? "fixture expected.safetensors" : "transformers on the GGUF");
free_all:
    free(fids); free(ref); free(ids); free(lg); free(lh);
done:
    lma_st_close(ex);
    lma_model_free(g);
    lma_model_free(h);
}

int main(void) {
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) check_file(files[i].name, files[i].f32);
    TEST_END();
}
