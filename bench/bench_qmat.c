/* Batch-1 generation from a GGUF file on the CPU: prompt (prefill) tokens/s and decode
 * tokens/s, with the file's blocks kept quantized (LMA_MODEL_GGUF_QUANT, the default of the
 * inference commands) or dequantized to fp32 (--dequantize), and the greedy text of a
 * chat prompt, to set beside llama.cpp's llama-bench and llama-completion
 * (bench/llamacpp/quant_bench.sh).
 *
 * Loop measured (as llama-bench's pp/tg): pp = one forward of P prompt tokens into an empty
 * KV cache; tg = N single-token forwards after a 1-token start. Best of --reps each.
 *
 * Usage: bench_qmat MODEL.gguf [--prompt P] [--gen N] [--reps R] [--threads T] [--dequantize]
 *                   [--qgemm-rows K] [--text "PROMPT" --greedy N]
 *   --qgemm-rows K: from K rows on, dequantized tiles + sgemm instead of the int8 kernels
 *                   (the crossover, cpu_qmat.c).
 * Last line: RESULT lmadapt mode quant|fp32 kernel K prompt P gen N pp_tok_s A tg_tok_s B */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cpu/cpu_ops.h"
#include "core/progress.h"
#include "core/threads.h"
#include "model/llama.h"
#include "quant/qdot.h"
#include "tok/tokenizer.h"

static int die(const char *what) {
    fprintf(stderr, "bench_qmat: %s: %s\n", what, lma_last_error());
    return 1;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: bench_qmat MODEL.gguf [options] (see the source)\n"); return 2; }
    const char *path = argv[1], *text = NULL;
    int P = 128, N = 64, reps = 3, threads = 2, deq = 0, greedy_n = 0;
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "--dequantize")) { deq = 1; continue; }
        if (!v) { fprintf(stderr, "bench_qmat: %s needs a value\n", k); return 2; }
        if (!strcmp(k, "--prompt")) P = atoi(v);
        else if (!strcmp(k, "--gen")) N = atoi(v);
        else if (!strcmp(k, "--reps")) reps = atoi(v);
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--qgemm-rows")) lma_cpu_qgemm_rows = atoi(v);
        else if (!strcmp(k, "--text")) text = v;
        else if (!strcmp(k, "--greedy")) greedy_n = atoi(v);
        else { fprintf(stderr, "bench_qmat: unknown option %s\n", k); return 2; }
        i++;
    }
    lma_threads_set(threads);
    lma_model *m = NULL;
    double t0 = lma_now();
    if (lma_model_load_ex(path, lma_backend_cpu(), LMA_MODEL_FROZEN | (deq ? 0 : LMA_MODEL_GGUF_QUANT), &m) != LMA_OK)
        return die("load");
    printf("loaded %s in %.2f s (%s)\n", path, lma_now() - t0, m->qm ? "blocks kept" : "dequantized to fp32");
    int V = m->cfg.vocab_size;
    float *lg = malloc((size_t)V * sizeof *lg);
    int32_t *ids = malloc((size_t)(P > 1 ? P : 1) * sizeof *ids);
    lma_kv_cache *kv = NULL;
    if (!lg || !ids || lma_kv_create(m, P + N + 2 + (greedy_n > 0 ? 4096 : 0), &kv) != LMA_OK) return die("kv cache");
    for (int i = 0; i < P; i++) ids[i] = (int32_t)((1000 + 37 * i) % V);
    double pp = 0, tg = 0;
    for (int r = 0; r < reps; r++) {
        kv->len = 0;
        double a = lma_now();
        if (lma_model_forward_cached(m, kv, ids, P, lg, 0) != LMA_OK) return die("prefill");
        double dt = lma_now() - a;
        if (P / dt > pp) pp = P / dt;
        kv->len = 0;
        int32_t t = ids[0];
        if (lma_model_forward_cached(m, kv, &t, 1, lg, 0) != LMA_OK) return die("decode");
        a = lma_now();
        for (int i = 0; i < N; i++) {
            t = argmax(lg, V);
            if (lma_model_forward_cached(m, kv, &t, 1, lg, 0) != LMA_OK) return die("decode");
        }
        dt = lma_now() - a;
        if (N / dt > tg) tg = N / dt;
    }
    if (text && greedy_n > 0) {
        lma_tokenizer *tok = NULL;
        int32_t *pi = NULL;
        size_t np = 0;
        if (lma_tok_load(path, &tok) != LMA_OK || lma_tok_encode(tok, text, strlen(text), 1, &pi, &np) != LMA_OK)
            return die("tokenizer");
        kv->len = 0;
        if (lma_model_forward_cached(m, kv, pi, (int)np, lg, 0) != LMA_OK) return die("greedy");
        int eos = lma_tok_eos_id(tok), ng = 0;
        int32_t *gen = malloc((size_t)greedy_n * sizeof *gen);
        for (int i = 0; gen && i < greedy_n; i++) {
            int32_t t = argmax(lg, V);
            if (t == eos || (m->cfg.n_eos && t == m->cfg.eos_token_ids[0])) break;
            gen[ng++] = t;
            if (lma_model_forward_cached(m, kv, &t, 1, lg, 0) != LMA_OK) return die("greedy");
        }
        char *s = NULL;
        size_t sl = 0;
        if (!gen || lma_tok_decode(tok, gen, (size_t)ng, 1, &s, &sl) != LMA_OK) return die("decode text");
        printf("greedy (%zu prompt tokens, %d generated): %s", np, ng, s);
        free(s);
        free(gen);
        printf("\n");
        free(pi);
        lma_tok_free(tok);
    }
    printf("RESULT lmadapt mode %s kernel %s prompt %d gen %d pp_tok_s %.1f tg_tok_s %.1f\n", m->qm ? "quant" : "fp32",
           m->qm ? lma_qdot_best()->name : "sgemm", P, N, pp, tg);
    lma_kv_free(m, kv);
    lma_model_free(m);
    free(lg);
    free(ids);
    return 0;
}
