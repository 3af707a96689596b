/* Generation speed: prompt (prefill) tokens/s and decode tokens/s of a preset-shaped model
 * with random weights (saved with --dir so that bench/gen_torch.py runs the same weights),
 * on any backend (--device cpu | cuda | cuda-fp32), at batch 1 or several sequences decoded
 * together (--batch B[,B...]: each sequence's prompt prefilled alone, then one
 * lma_model_decode_batch step for all B per token, as serve and eval run them); and (--mmlu)
 * the MMLU scoring paths, KV cache vs full forwards.
 *
 * Loop measured (the same as gen_torch.py): one forward of the P prompt tokens with
 * the KV cache, argmax, then N - 1 decode steps with argmax. Best of --reps.
 *
 * Usage:
 *   bench_gen --preset 15m --vocab 32000 --prompt 128 --gen 128 --threads 2 --dir /tmp/m15
 *   bench_gen --preset 1b --device cuda --batch 1,32 --prompt 128 --gen 256
 *   bench_gen --mmlu tests/data/mmlu --tok tests/ref/tok/bl --shots 5 --limit 2
 * Run by bench/gen_bench.sh (CPU) and bench/gen_gpu.sh (device). Last line:
 *   RESULT lmadapt preset X params P device D batch B prompt P gen N prefill_tok_s A decode_tok_s B */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/progress.h"
#include "core/threads.h"
#include "eval/eval.h"
#include "model/llama.h"
#include "model/presets.h"

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

static int die(const char *what) {
    fprintf(stderr, "bench_gen: %s: %s\n", what, lma_last_error());
    return 1;
}

static int mmlu_bench(const char *dir, const char *tokdir, int shots, int limit) {
    lma_tokenizer *tok = NULL;
    if (lma_tok_load(tokdir, &tok) != LMA_OK) return die("tokenizer");
    lma_config c;
    if (lma_config_preset("15m", lma_tok_vocab_size(tok), 2048, &c) != LMA_OK) return die("preset");
    lma_model *m = NULL;
    if (lma_model_create(&c, lma_backend_cpu(), &m) != LMA_OK) return die("model");
    lma_model_init_random(m, 1, 0.02f);
    lma_mmlu_set set;
    if (lma_mmlu_load(dir, "val", &set) != LMA_OK) return die("mmlu");
    printf("MMLU scoring, preset 15m (vocab %d, %zu params), %d shots, %d items per subject, %zu subjects\n",
           c.vocab_size, lma_model_num_params(m), shots, limit, set.n);
    long correct[2];
    for (int mode = 0; mode < 2; mode++) {
        lma_eval_scorer *sc = NULL;
        lma_eval_scorer_model(m, mode ? LMA_EVAL_SCORE_FULL : LMA_EVAL_SCORE_KV, &sc);
        lma_eval_params p = lma_eval_default_params();
        p.shots = shots; p.limit = (size_t)limit;
        lma_eval_result r = {0};
        r.task.kind = LMA_EVAL_MMLU;
        double t0 = lma_now();
        if (lma_eval_mmlu(sc, tok, &set, &p, &r) != LMA_OK) return die("eval");
        double dt = lma_now() - t0;
        correct[mode] = r.correct;
        printf("RESULT mmlu_scoring mode %s items %ld seconds %.2f items_s %.2f tokens_run %ld acc %.4f\n",
               mode ? "full" : "kv", r.n, dt, (double)r.n / dt, sc->tokens_run, r.score);
        lma_eval_result_free(&r);
        lma_eval_scorer_free(sc);
    }
    printf("same answers correct: %s\n", correct[0] == correct[1] ? "yes" : "NO");
    lma_mmlu_free(&set);
    lma_model_free(m);
    lma_tok_free(tok);
    return 0;
}

/* One measurement at batch B (the first B caches and prompts): best of reps rounds after a
 * warm-up round; prints the RESULT line. */
static int run_batch(lma_model *m, int32_t *ids, int32_t *step, float *logits, lma_kv_cache **kv, int B, int P,
                     int N, int reps, const char *preset) {
    int V = m->cfg.vocab_size;
    double best_pre = 1e30, best_dec = 1e30;
    for (int r = 0; r < reps + 1; r++) { /* the first round warms up */
        double t0 = lma_now();
        for (int b = 0; b < B; b++) {
            int32_t *sb = ids + (size_t)b * (P + N);
            kv[b]->len = 0;
            if (lma_model_forward_cached(m, kv[b], sb, P, logits, 0) != LMA_OK) return die("prefill");
            sb[P] = argmax(logits, V);
        }
        double t1 = lma_now();
        for (int i = 0; i < N - 1; i++) {
            for (int b = 0; b < B; b++) step[b] = ids[(size_t)b * (P + N) + P + i];
            lma_status st = B == 1 ? lma_model_forward_cached(m, kv[0], step, 1, logits, 0)
                                   : lma_model_decode_batch(m, kv, step, B, logits);
            if (st != LMA_OK) return die("decode");
            for (int b = 0; b < B; b++) ids[(size_t)b * (P + N) + P + i + 1] = argmax(logits + (size_t)b * V, V);
        }
        double t2 = lma_now();
        if (r == 0) continue;
        if (t1 - t0 < best_pre) best_pre = t1 - t0;
        if (t2 - t1 < best_dec) best_dec = t2 - t1;
    }
    printf("first generated ids:");
    for (int i = 0; i < 16 && i < N; i++) printf(" %d", ids[P + i]);
    printf("\nRESULT lmadapt preset %s params %zu device %s batch %d prompt %d gen %d prefill_tok_s %.1f "
           "decode_tok_s %.2f\n", preset, lma_model_num_params(m), m->be->name, B, P, N, (double)B * P / best_pre,
           (double)B * (N - 1) / best_dec);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    const char *preset = "15m", *dir = NULL, *mmlu = NULL, *tokdir = NULL, *device = "cpu", *batches = "1";
    int vocab = 32000, P = 128, N = 128, threads = -1, reps = 3, shots = 5, limit = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--preset")) preset = v;
        else if (!strcmp(k, "--vocab")) vocab = atoi(v);
        else if (!strcmp(k, "--prompt")) P = atoi(v);
        else if (!strcmp(k, "--gen")) N = atoi(v);
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--reps")) reps = atoi(v);
        else if (!strcmp(k, "--dir")) dir = v;
        else if (!strcmp(k, "--mmlu")) mmlu = v;
        else if (!strcmp(k, "--tok")) tokdir = v;
        else if (!strcmp(k, "--shots")) shots = atoi(v);
        else if (!strcmp(k, "--limit")) limit = atoi(v);
        else if (!strcmp(k, "--device")) device = v;
        else if (!strcmp(k, "--batch")) batches = v;
        else { fprintf(stderr, "bench_gen: unknown option %s\n", k); return 2; }
    }
    /* --threads: 2 on the CPU (the benchmark's machine); on a GPU every core, which only the
     * random initialisation uses (6.7e9 normals for the 7b preset: 130 s on 2 threads) */
    lma_threads_set(threads >= 0 ? threads : strcmp(device, "cpu") ? 0 : 2);
    if (mmlu) return tokdir ? mmlu_bench(mmlu, tokdir, shots, limit) : 2;
    int maxb = 0; /* the largest batch of the list */
    for (const char *bl = batches; bl; bl = strchr(bl, ',') ? strchr(bl, ',') + 1 : NULL)
        if (atoi(bl) > maxb) maxb = atoi(bl);
    if (maxb < 1 || P < 1 || N < 2) { fprintf(stderr, "bench_gen: --batch B[,B...] >= 1, --prompt >= 1, --gen >= 2\n"); return 2; }
    const lma_backend *be = lma_backend_by_name(device);
    if (!be) { fprintf(stderr, "bench_gen: no backend %s in this build\n", device); return 2; }
    lma_config c;
    if (lma_config_preset(preset, vocab, P + N, &c) != LMA_OK) return die("preset");
    lma_model *m = NULL;
    /* a saved model needs its fp32 masters; a bench on the GPU does not (7B: 13 GB, not 40) */
    if (lma_model_create_ex(&c, be, dir ? 0 : LMA_MODEL_FROZEN, &m) != LMA_OK) return die("model");
    if (lma_model_init_random(m, 1, 0.02f) != LMA_OK) return die("init");
    if (dir && lma_model_save(m, dir, 0, 0) != LMA_OK) return die("save");
    int32_t *ids = malloc((size_t)maxb * (P + N) * sizeof(int32_t)), *step = malloc((size_t)maxb * sizeof(int32_t));
    float *logits = malloc((size_t)maxb * c.vocab_size * sizeof(float));
    lma_kv_cache **kv = calloc((size_t)maxb, sizeof *kv);
    uint64_t s = 12345;
    for (int i = 0; i < maxb * (P + N); i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = (int32_t)((s >> 33) % (uint64_t)vocab); /* sequence b: ids + b * (P + N) */
    }
    if (dir) {
        char path[4200];
        snprintf(path, sizeof path, "%s/prompt_ids.txt", dir);
        FILE *f = fopen(path, "w");
        for (int i = 0; f && i < P; i++) fprintf(f, "%d\n", ids[i]);
        if (f) fclose(f);
    }
    for (int b = 0; b < maxb; b++)
        if (lma_kv_create(m, P + N, &kv[b]) != LMA_OK) return die("kv");
    for (const char *bl = batches; bl; bl = strchr(bl, ',') ? strchr(bl, ',') + 1 : NULL)
        if (run_batch(m, ids, step, logits, kv, atoi(bl), P, N, reps, preset) != 0) return 1;
    for (int b = 0; b < maxb; b++) lma_kv_free(m, kv[b]);
    free(kv); free(ids); free(step); free(logits);
    lma_model_free(m);
    return 0;
}
