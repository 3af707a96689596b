/* Encoder throughput (sentences/s) on each backend, and GPU-vs-CPU parity, for a BERT
 * encoder: a real one (--model DIR: a BertModel folder, e.g. the all-MiniLM-L6-v2 cache
 * folder) or, where no model can be had (the device machine), random weights of
 * all-MiniLM-L6-v2's shape written to --dir (6 layers, 384 hidden, 12 heads, 1536 MLP,
 * vocab 30522). Sentences: random ids, lengths uniform in [len/2, len], sorted longest
 * first and run in batches of --batch padded to their longest (as lma_embed does).
 * The forward is lma_encoder_forward (hidden states back on the host), so the GPU numbers
 * include the device-to-host copy; tokenizing and pooling are left out.
 *
 * Usage: bench_embed [--model DIR | --dir DIR] [--devices cpu,cuda-fp32,cuda] [--n 2048]
 *                    [--len 32] [--batch 32] [--threads 2] [--reps 3]
 * Lines: PARITY <device> max_rel_l2 X worst_cos Y    RESULT <device> len L batch B sent_s S */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/threads.h"
#include "model/encoder.h"
#include "model/safetensors.h"

static int die(const char *what) {
    fprintf(stderr, "bench_embed: %s: %s\n", what, lma_last_error());
    return 1;
}

/* random BertModel of all-MiniLM-L6-v2's shape into dir */
static lma_status make_random(const char *dir) {
    enum { V = 30522, C = 384, L = 6, I = 1536, P = 512, TV = 2 };
    LMA_TRY(lma_mkdir_p(dir));
    char path[4096];
    LMA_TRY(lma_path_join(path, sizeof path, dir, "config.json"));
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"model_type\": \"bert\", \"architectures\": [\"BertModel\"], \"vocab_size\": %d, \"hidden_size\": %d, "
             "\"num_hidden_layers\": %d, \"num_attention_heads\": 12, \"intermediate_size\": %d, "
             "\"max_position_embeddings\": %d, \"type_vocab_size\": %d, \"layer_norm_eps\": 1e-12, "
             "\"hidden_act\": \"gelu\", \"position_embedding_type\": \"absolute\"}\n", V, C, L, I, P, TV);
    LMA_TRY(lma_write_file_atomic(path, cfg, strlen(cfg)));
    lma_st_entry e[8 + 16 * L];
    char names[8 + 16 * L][96];
    int k = 0;
    lma_rng r;
    lma_rng_seed(&r, 7);
    size_t total = (size_t)V * C + (size_t)P * C + (size_t)TV * C + 2 * C +
                   (size_t)L * (4 * C * C + 2 * (size_t)I * C + 9 * C + I);
    float *all = malloc(total * sizeof *all), *p = all;
    if (!all) return lma_error(LMA_ERR_NOMEM, "bench_embed: weights");
#define T1(nm, n0, lnw) do { snprintf(names[k], 96, "%s", nm); e[k].name = names[k]; e[k].ndim = 1; \
    e[k].shape[0] = n0; e[k].data = p; for (int64_t i_ = 0; i_ < (n0); i_++) p[i_] = (lnw) ? 1.0f + 0.1f * (float)lma_rng_normal(&r) : 0.02f * (float)lma_rng_normal(&r); \
    p += (n0); k++; } while (0)
#define T2(nm, n0, n1) do { snprintf(names[k], 96, "%s", nm); e[k].name = names[k]; e[k].ndim = 2; \
    e[k].shape[0] = n0; e[k].shape[1] = n1; e[k].data = p; \
    for (int64_t i_ = 0; i_ < (int64_t)(n0) * (n1); i_++) p[i_] = 0.05f * (float)lma_rng_normal(&r); \
    p += (int64_t)(n0) * (n1); k++; } while (0)
    T2("embeddings.word_embeddings.weight", V, C);
    T2("embeddings.position_embeddings.weight", P, C);
    T2("embeddings.token_type_embeddings.weight", TV, C);
    T1("embeddings.LayerNorm.weight", C, 1);
    T1("embeddings.LayerNorm.bias", C, 0);
    static const char *const mats[6] = {"attention.self.query", "attention.self.key", "attention.self.value",
                                        "attention.output.dense", "intermediate.dense", "output.dense"};
    char nm[96];
    for (int l = 0; l < L; l++) {
        for (int m = 0; m < 6; m++) {
            int oc = m == 4 ? I : C, ic = m == 5 ? I : C;
            snprintf(nm, sizeof nm, "encoder.layer.%d.%s.weight", l, mats[m]);
            T2(nm, oc, ic);
            snprintf(nm, sizeof nm, "encoder.layer.%d.%s.bias", l, mats[m]);
            T1(nm, oc, 0);
        }
        snprintf(nm, sizeof nm, "encoder.layer.%d.attention.output.LayerNorm.weight", l); T1(nm, C, 1);
        snprintf(nm, sizeof nm, "encoder.layer.%d.attention.output.LayerNorm.bias", l); T1(nm, C, 0);
        snprintf(nm, sizeof nm, "encoder.layer.%d.output.LayerNorm.weight", l); T1(nm, C, 1);
        snprintf(nm, sizeof nm, "encoder.layer.%d.output.LayerNorm.bias", l); T1(nm, C, 0);
    }
#undef T1
#undef T2
    lma_status st = lma_st_save_dir(dir, e, k, LMA_DT_F32, 0);
    free(all);
    return st;
}

typedef struct { int32_t *ids, *lens; int B, T; } batch;

/* n sentences of lengths in [len/2, len], longest first, cut into batches */
static batch *make_batches(int n, int len, int bs, int vocab, int *nb) {
    lma_rng r;
    lma_rng_seed(&r, 11);
    int32_t *L = malloc((size_t)n * sizeof *L);
    for (int i = 0; i < n; i++) L[i] = len / 2 + (int32_t)lma_rng_below(&r, (uint64_t)(len - len / 2 + 1));
    for (int i = 1; i < n; i++) /* insertion sort, longest first */
        for (int j = i; j > 0 && L[j] > L[j - 1]; j--) { int32_t t = L[j]; L[j] = L[j - 1]; L[j - 1] = t; }
    *nb = (n + bs - 1) / bs;
    batch *b = calloc((size_t)*nb, sizeof *b);
    for (int k = 0; k < *nb; k++) {
        int s = k * bs, m = n - s < bs ? n - s : bs, T = L[s];
        b[k].B = m; b[k].T = T;
        b[k].ids = malloc((size_t)m * T * sizeof(int32_t));
        b[k].lens = malloc((size_t)m * sizeof(int32_t));
        for (int i = 0; i < m; i++) {
            b[k].lens[i] = L[s + i];
            for (int t = 0; t < T; t++)
                b[k].ids[(size_t)i * T + t] = t == 0 ? 101 : t < L[s + i] ? 1000 + (int32_t)lma_rng_below(&r, (uint64_t)(vocab - 1000)) : 0;
        }
    }
    free(L);
    return b;
}

int main(int argc, char **argv) {
    const char *model = NULL, *dir = "/tmp/lma_bench_bert", *devices = "cpu,cuda-fp32,cuda";
    int n = 2048, len = 32, bs = 32, threads = 2, reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "bench_embed: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--dir")) dir = v;
        else if (!strcmp(a, "--devices")) devices = v;
        else if (!strcmp(a, "--n")) n = atoi(v);
        else if (!strcmp(a, "--len")) len = atoi(v);
        else if (!strcmp(a, "--batch")) bs = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else { fprintf(stderr, "bench_embed: unknown option %s\n", a); return 2; }
        i++;
    }
    if (n < 1 || len < 2 || len > 512 || bs < 1 || reps < 1) { fprintf(stderr, "bench_embed: bad sizes\n"); return 2; }
    lma_threads_set(threads);
    if (!model) {
        if (make_random(dir) != LMA_OK) return die("random model");
        model = dir;
    }
    lma_encoder *ce = NULL;
    if (lma_encoder_load(model, lma_backend_cpu(), &ce) != LMA_OK) return die("load on cpu");
    const lma_encoder_config *c = lma_encoder_cfg(ce);
    int nb;
    batch *b = make_batches(n, len, bs, c->vocab, &nb);
    size_t cap = (size_t)b[0].B * b[0].T * c->C;
    float *h = malloc(cap * sizeof *h), *href = malloc(cap * sizeof *href);
    /* the CPU result of the first (longest) batch: the parity reference */
    if (lma_encoder_forward(ce, b[0].ids, b[0].lens, b[0].B, b[0].T, href) != LMA_OK) return die("cpu forward");
    char list[256];
    snprintf(list, sizeof list, "%s", devices);
    for (char *dev = strtok(list, ","); dev; dev = strtok(NULL, ",")) {
        const lma_backend *be = NULL;
        if (lma_backend_select(dev, &be) != LMA_OK) { printf("SKIP %s: %s\n", dev, lma_last_error()); continue; }
        lma_encoder *e = ce;
        if (be != lma_backend_cpu() && lma_encoder_load(model, be, &e) != LMA_OK) return die(dev);
        if (lma_encoder_forward(e, b[0].ids, b[0].lens, b[0].B, b[0].T, h) != LMA_OK) return die("forward");
        double worst_cos = 1, worst_rel = 0;
        for (int i = 0; i < b[0].B; i++)
            for (int t = 0; t < b[0].lens[i]; t++) {
                const float *x = h + ((size_t)i * b[0].T + t) * c->C, *y = href + ((size_t)i * b[0].T + t) * c->C;
                double xy = 0, xx = 0, yy = 0, dd = 0;
                for (int j = 0; j < c->C; j++) { xy += (double)x[j] * y[j]; xx += (double)x[j] * x[j]; yy += (double)y[j] * y[j]; dd += ((double)x[j] - y[j]) * ((double)x[j] - y[j]); }
                double cs = xy / sqrt(xx * yy), rel = sqrt(dd / yy);
                if (!(cs >= worst_cos)) worst_cos = cs;
                if (!(rel <= worst_rel)) worst_rel = rel;
            }
        printf("PARITY %s vs cpu: worst token cosine %.8f, worst token rel L2 %.3g\n", be->name, worst_cos, worst_rel);
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = lma_now();
            for (int k = 0; k < nb; k++)
                if (lma_encoder_forward(e, b[k].ids, b[k].lens, b[k].B, b[k].T, h) != LMA_OK) return die("forward");
            double dt = lma_now() - t0;
            if (dt < best) best = dt;
        }
        printf("RESULT %s len %d batch %d n %d threads %d seconds %.3f sent_s %.1f\n", be->name, len, bs, n, threads, best,
               n / best);
        fflush(stdout);
        if (e != ce) lma_encoder_free(e);
    }
    for (int k = 0; k < nb; k++) { free(b[k].ids); free(b[k].lens); }
    free(b); free(h); free(href);
    lma_encoder_free(ce);
    return 0;
}
