/* One CPU training step (forward + backward + AdamW) in tokens/s for the
 * stories15M shape (dim 288, 6 layers, 6 heads, MLP 768, vocab 32000, untied
 * head: 24.4M parameters; batch 8 x 256), the same setup as
 * bench/torch_cpu_step.py. Usage: bench_train_step [--threads N] [--steps N]
 * [--batch B] [--seq T] [--device cpu|cuda|cuda-fp32] [--preset NAME --vocab V] (model size presets
 * of model/presets.h instead of the stories15M shape) [--lora R] (LoRA r=R, alpha 2R, on every
 * projection; the base frozen, kept only in bf16 on cuda) [--qlora R] (the same on an NF4 base)
 * [--dropout P] (LoRA dropout) [--ckpt 1] (activation checkpointing) [--docs L] (rows packed with documents of L tokens:
 * segment ids, as the trainer's packed batches have them) [--trace 1] (each step's loss; the gradient norm of the two untimed warm-up steps); with LMA_CUDA_PROFILE=1 the profile covers the timed
 * steps only. Prints "RESULT lmadapt device D threads N ... step_ms X tok_s Y". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cuda/cuda_host.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/threads.h"
#include "model/llama.h"
#include "model/lora.h"
#include "model/presets.h"

int main(int argc, char **argv) {
    int threads = 2, steps = 5, B = 8, T = 256;
    const char *device = "cpu", *preset = NULL;
    int vocab = 32000, lora_r = 0, qlora = 0, ckpt = 0, docs = 0, trace = 0;
    float dropout = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seq")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--device")) device = argv[i + 1];
        else if (!strcmp(argv[i], "--preset")) preset = argv[i + 1];
        else if (!strcmp(argv[i], "--vocab")) vocab = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--lora")) lora_r = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--qlora")) { lora_r = atoi(argv[i + 1]); qlora = 1; }
        else if (!strcmp(argv[i], "--dropout")) dropout = (float)atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--ckpt")) ckpt = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--docs")) docs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--trace")) trace = atoi(argv[i + 1]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    /* on a GPU the host threads only initialize the weights: all of them (a 7B model) */
    lma_threads_set(strcmp(device, "cpu") && strcmp(device, "ref") ? 0 : threads);
    lma_config c = {0};
    c.arch = LMA_ARCH_LLAMA;
    c.vocab_size = 32000; c.hidden_size = 288; c.intermediate_size = 768; c.n_layers = 6;
    c.n_heads = 6; c.n_kv_heads = 6; c.head_dim = 48; c.max_position_embeddings = 1024;
    c.rms_norm_eps = 1e-5; c.rope_theta = 10000; c.bos_token_id = 1;
    if (preset && lma_config_preset(preset, vocab, T, &c) != LMA_OK) { fprintf(stderr, "bench: %s\n", lma_last_error()); return 1; }
    c.vocab_size = vocab;
    lma_model *m;
    const lma_backend *be = lma_backend_by_name(device);
    if (!be) { fprintf(stderr, "bench: device '%s' is not available\n", device); return 1; }
    unsigned flags = qlora ? LMA_MODEL_NF4 : lora_r > 0 ? LMA_MODEL_FROZEN : 0; /* a frozen base: bf16 only on cuda */
    if (lma_model_create_ex(&c, be, flags, &m) != LMA_OK) {
        fprintf(stderr, "bench: %s\n", lma_last_error());
        return 1;
    }
    lma_model_init_random(m, 1, 0.02f);
    m->grad_ckpt = ckpt;
    lma_lora_params lp = lma_lora_default_params();
    lp.r = lora_r;
    lp.alpha = 2.0f * lora_r;
    lp.dropout = dropout;
    if ((lora_r > 0 && lma_lora_attach(m, &lp, 3) != LMA_OK) || lma_model_enable_training(m) != LMA_OK) {
        fprintf(stderr, "bench: %s\n", lma_last_error());
        return 1;
    }
    int N = B * T;
    int32_t *x = malloc(N * sizeof(int32_t)), *y = malloc(N * sizeof(int32_t)), *seg = malloc(N * sizeof(int32_t));
    for (int i = 0; i < N; i++) seg[i] = docs > 0 ? (i % T) / docs : 0;
    lma_rng r;
    lma_rng_seed(&r, 2);
    for (int i = 0; i < N; i++) { x[i] = (int32_t)lma_rng_below(&r, (uint64_t)c.vocab_size); y[i] = (int32_t)lma_rng_below(&r, (uint64_t)c.vocab_size); }
    lma_adamw_params ap = lma_adamw_default_params();
    ap.lr = 1e-4f; ap.clip = 0; ap.weight_decay = 0.01f; ap.decay_all = 1; /* torch AdamW defaults */
    double t0 = 0;
    float loss = 0, gnorm = 0;
    for (int s = 0; s < steps + 2; s++) {
        if (s == 2) {
            lma_cuda_profile_reset(); /* LMA_CUDA_PROFILE=1: the timed steps only */
            t0 = lma_now();
        }
        /* no clipping: the timed steps compute no gradient norm (nothing needs it: torch's step
         * without a clip); the warm-up steps do */
        if (lma_model_forward(m, x, y, docs > 0 ? seg : NULL, B, T, 1, 1.0f, &loss) != LMA_OK ||
            lma_model_backward(m) != LMA_OK || lma_model_adamw_step(m, &ap, s + 1, s < 2 ? &gnorm : NULL) != LMA_OK) {
            fprintf(stderr, "bench: %s\n", lma_last_error());
            return 1;
        }
        if (trace && s < 2) printf("step %d loss %.6f grad_norm %.6g\n", s + 1, loss, gnorm);
        else if (trace) printf("step %d loss %.6f\n", s + 1, loss);
        lma_model_zero_grad(m);
    }
    double dt = (lma_now() - t0) / steps;
    size_t cur = 0, peak = 0;
    lma_cuda_memory(&cur, &peak, 0);
    printf("RESULT lmadapt device %s threads %d params %.1fM %s r %d ckpt %d batch %d seq %d loss %.4f step_ms %.1f "
           "tok_s %.0f peak_alloc_gb %.2f%s\n", be->name, lma_threads_get(), lma_model_num_params(m) / 1e6,
           lora_r ? (qlora ? "qlora" : "lora") : "full", lora_r, ckpt, B, T, loss, dt * 1000, N / dt,
           peak / 1073741824.0, docs > 0 ? " (packed documents)" : "");
    free(x); free(y); free(seg);
    lma_model_free(m);
    return 0;
}
