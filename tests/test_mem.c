/* The memory planner (advise/mem.h):
 *  1. the breakdown on known configs: Llama-2-7B's parameter count (6,738,415,616) and PEFT's
 *     trainable count for r=16 on every projection (39,976,960), the bytes of each part
 *     from them by hand;
 *  2. the plan is the allocator: the activation block, KV cache and LoRA scratch a real
 *     model allocates equal the planner's sizes;
 *  3. the GPU rows of bench/gpu_vs_hf as measured on an H100 (bench/RESULTS.md, commit
 *     b8c8a00: lmadapt's counted allocations and torch's max_memory_allocated): lmadapt's
 *     within 3%, --style hf within 15% (bench/mem/device_check.sh remeasures them);
 *  4. three CPU runs of the CLI as child processes (pretrain full, sft LoRA, sft QLoRA):
 *     the predicted peak RSS within 10% of the measured one (wait4's ru_maxrss). */
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "advise/mem.h"
#include "model/llama.h"
#include "model/presets.h"
#include "model/weight_source.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define GIB 1073741824.0

static lma_mem_plan plan(const lma_config *c, lma_mem_method m, int cuda, lma_mem_style st, int B, int T, int ckpt,
                         int r) {
    lma_mem_request q = lma_mem_default_request();
    q.method = m;
    q.cuda = cuda;
    q.style = st;
    q.B = B;
    q.T = T;
    q.grad_ckpt = ckpt;
    q.lora.r = r;
    lma_mem_plan p;
    CHECK_OK(lma_mem_predict(c, &q, &p));
    return p;
}

static void known_configs(void) {
    lma_config c;
    CHECK_OK(lma_mem_builtin_config("llama2-7b", &c));
    const double P = 6738415616.0, TR = 39976960.0;
    lma_mem_plan f = plan(&c, LMA_MEM_FULL, 1, LMA_MEM_LMADAPT, 1, 2048, 0, 16);
    CHECK(f.n_params == (size_t)P, "Llama-2-7B has %zu parameters (6738415616)", f.n_params);
    CHECK(f.part[LMA_MEM_WEIGHTS] == 4 * P + 4 * 65, "full: fp32 masters %.0f (+ inv_freq)", f.part[LMA_MEM_WEIGHTS]);
    CHECK(f.part[LMA_MEM_COPY] == 2 * P, "full: bf16 compute copy %.0f", f.part[LMA_MEM_COPY]);
    CHECK(f.part[LMA_MEM_GRADS] == 4 * P && f.part[LMA_MEM_OPTIM] == 8 * P, "full: fp32 grads and two moments");
    lma_mem_plan l = plan(&c, LMA_MEM_LORA, 1, LMA_MEM_LMADAPT, 1, 2048, 0, 16);
    CHECK(l.trainable == (size_t)TR, "LoRA r=16: %zu trainable (PEFT: 39976960)", l.trainable);
    CHECK(l.part[LMA_MEM_WEIGHTS] == 4 * TR + 4 * 65, "LoRA: the base has no fp32 copy (%.0f)", l.part[LMA_MEM_WEIGHTS]);
    CHECK(l.part[LMA_MEM_COPY] == 2 * P + 2 * TR, "LoRA: bf16 base + adapter copy");
    CHECK(l.part[LMA_MEM_GRADS] == 4 * TR && l.part[LMA_MEM_OPTIM] == 8 * TR, "LoRA: grads and moments of A, B only");
    /* activations of one layer-slot vs 32: checkpointing keeps the residual stream only */
    lma_mem_plan k = plan(&c, LMA_MEM_LORA, 1, LMA_MEM_LMADAPT, 1, 2048, 1, 16);
    CHECK(k.part[LMA_MEM_ACTS] < l.part[LMA_MEM_ACTS] / 8, "checkpointing: %.2f vs %.2f GiB of activations",
          k.part[LMA_MEM_ACTS] / GIB, l.part[LMA_MEM_ACTS] / GIB);
    /* NF4: 4 bits a projection weight + one byte per 64 + fp32 per 256 blocks */
    lma_mem_plan q = plan(&c, LMA_MEM_QLORA, 1, LMA_MEM_LMADAPT, 1, 2048, 1, 16);
    double proj = 32.0 * (3 * 4096.0 * 11008 + 4 * 4096.0 * 4096), rest = P - proj;
    double nf4 = 32.0 * (3 * (4096.0 * 11008 / 2 + 4096.0 * 11008 / 64 + 4 * 4096.0 * 11008 / 64 / 256) +
                         4 * (4096.0 * 4096 / 2 + 4096.0 * 4096 / 64 + 4 * 4096.0 * 4096 / 64 / 256));
    CHECK(q.part[LMA_MEM_WEIGHTS] == nf4 + 4 * TR + 4 * 65, "QLoRA weights %.0f, by hand %.0f",
          q.part[LMA_MEM_WEIGHTS], nf4 + 4 * TR + 4 * 65);
    CHECK(q.part[LMA_MEM_COPY] == 2 * rest + 2 * TR, "QLoRA: bf16 copy of embeddings, norms, lm_head");
    /* cpu: fp32 compute, no copy; the process and the checkpoint staging */
    lma_mem_plan cf = plan(&c, LMA_MEM_FULL, 0, LMA_MEM_LMADAPT, 1, 2048, 0, 16);
    CHECK(cf.part[LMA_MEM_COPY] == 0 && cf.part[LMA_MEM_WEIGHTS] == 4 * P + 4 * 65, "cpu: the masters are the copy");
    CHECK(cf.part[LMA_MEM_SAVE] == 0, "no save staging unless asked");
    /* hf style refuses cpu */
    lma_mem_request bad = lma_mem_default_request();
    bad.cuda = 0;
    bad.style = LMA_MEM_HF;
    lma_mem_plan x;
    CHECK(lma_mem_predict(&c, &bad, &x) == LMA_ERR_ARG, "--style hf on cpu is refused");
    lma_clear_error();
}

/* the planner's sizes are the sizes a real model allocates */
static void plan_is_allocator(void) {
    lma_config c;
    CHECK_OK(lma_config_preset("tiny", 300, 64, &c));
    lma_model *m = NULL;
    CHECK_OK(lma_model_create(&c, lma_backend_cpu(), &m));
    if (!m) return;
    CHECK_OK(lma_model_init_random(m, 1, 0.02f));
    CHECK_OK(lma_model_enable_training(m));
    int B = 2, T = 24;
    int32_t ids[48], tg[48];
    for (int i = 0; i < B * T; i++) { ids[i] = (i * 7) % 300; tg[i] = (i * 11) % 300; }
    for (int ck = 0; ck < 2; ck++) {
        m->grad_ckpt = ck;
        float loss;
        CHECK_OK(lma_model_forward(m, ids, tg, NULL, B, T, 1, 1.0f, &loss));
        size_t saved = lma_backend_cpu()->attention_saved_floats(B, T, c.n_heads, c.head_dim);
        size_t want = lma_model_acts_bytes(&c, 4, saved, B, T, 0, ck, NULL);
        CHECK(m->act_cap_bytes == want, "ckpt %d: activation block %zu bytes, planned %zu", ck, m->act_cap_bytes, want);
    }
    lma_weight_plan w;
    CHECK_OK(lma_model_weight_plan(&c, 4, 0, &w));
    CHECK(w.table_elems == m->table.total && w.n_params == lma_model_num_params(m), "weight plan = parameter table");
    lma_kv_cache *kv = NULL;
    CHECK_OK(lma_kv_create(m, 40, &kv));
    CHECK(lma_kv_bytes(&c, 40, 4) == 2 * (size_t)c.n_layers * 40 * c.n_kv_heads * c.head_dim * 4, "KV cache bytes");
    lma_kv_free(m, kv);
    lma_model_free(m);
}

/* bench/RESULTS.md, the H100 table of commit b8c8a00 (GiB); the QLoRA row's transformers
 * + bitsandbytes peak from bench/mem/hf_qlora_peak.py (H100, 2026-12-06) */
static void gpu_rows(void) {
    static const struct { const char *preset; lma_mem_method m; int B, T, ckpt; double lma, hf; } rows[] = {
        {"125m", LMA_MEM_FULL, 16, 1024, 0, 7.33, 17.65},  {"1b", LMA_MEM_FULL, 4, 2048, 0, 29.12, 36.27},
        {"1b", LMA_MEM_LORA, 4, 2048, 0, 12.97, 21.74},    {"7b", LMA_MEM_LORA, 2, 2048, 0, 30.08, 39.64},
        {"7b", LMA_MEM_LORA, 1, 2048, 1, 14.36, 14.48},    {"7b", LMA_MEM_QLORA, 1, 2048, 1, 5.50, 6.66},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        lma_config c;
        CHECK_OK(lma_config_preset(rows[i].preset, 32000, rows[i].T, &c));
        lma_mem_plan a = plan(&c, rows[i].m, 1, LMA_MEM_LMADAPT, rows[i].B, rows[i].T, rows[i].ckpt, 16);
        double e = a.peak / GIB / rows[i].lma - 1;
        printf("%-5s %-5s %2d x %d%s: lmadapt predicted %.2f GiB, measured %.2f (%+.1f%%)", rows[i].preset,
               lma_mem_method_name(rows[i].m), rows[i].B, rows[i].T, rows[i].ckpt ? " ckpt" : "", a.peak / GIB,
               rows[i].lma, 100 * e);
        CHECK(fabs(e) < 0.03, "row %zu: lmadapt within 3%%", i);
        if (rows[i].hf > 0) {
            lma_mem_plan h = plan(&c, rows[i].m, 1, LMA_MEM_HF, rows[i].B, rows[i].T, rows[i].ckpt, 16);
            double eh = h.peak / GIB / rows[i].hf - 1;
            printf("; hf predicted %.2f, measured %.2f (%+.1f%%)", h.peak / GIB, rows[i].hf, 100 * eh);
            CHECK(fabs(eh) < 0.15, "row %zu: hf within 15%%", i);
        }
        printf("\n");
    }
}

static char tmp[64];

/* runs lmadapt with argv (NULL-terminated) as a child; its peak RSS in bytes */
static double run_peak(char *const argv[]) {
    fflush(stdout); /* or the child's freopen writes our buffer again */
    pid_t pid = fork();
    if (pid == 0) {
        FILE *n = freopen("/dev/null", "w", stdout);
        (void)n;
        n = freopen("/dev/null", "w", stderr);
        execv(LMA_CLI, argv);
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t w = wait4(pid, &st, 0, &ru);
    CHECK(w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %s ran (status %d)", argv[1], argv[2], st);
    return (double)ru.ru_maxrss * 1024.0;
}

static void cpu_runs(void) {
    char base[400], cmd[1024], docs[512], tok[512], data[512], run[320];
    snprintf(tmp, sizeof tmp, "/tmp/lma_mem_XXXXXX");
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    snprintf(base, sizeof base, "%s/base", tmp);
    snprintf(docs, sizeof docs, "%s/docs", LMA_SRC_DIR);
    snprintf(tok, sizeof tok, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    snprintf(data, sizeof data, "%s/tests/ref/sft/bl.jsonl", LMA_SRC_DIR);
    /* 1. pretrain 60m from scratch, full: the peak is the checkpoint save at the end */
    snprintf(run, sizeof run, "%s/pre", tmp);
    char *pre[] = {LMA_CLI, "pretrain", "--data", docs, "--tokenizer", tok, "--preset", "60m", "--batch", "2", "--seq",
                   "128", "--steps", "2", "--threads", "2", "--out", run, "--eval-every", "0", NULL};
    double meas[4], pred[4];
    meas[0] = run_peak(pre);
    lma_config c;
    snprintf(cmd, sizeof cmd, "%s/final/config.json", run);
    CHECK_OK(lma_config_load(cmd, &c));
    lma_mem_request q = lma_mem_default_request();
    q.method = LMA_MEM_FULL;
    q.cuda = 0;
    q.B = 2;
    q.T = 128;
    q.save = 1;
    lma_mem_plan p;
    CHECK_OK(lma_mem_predict(&c, &q, &p));
    pred[0] = p.peak;
    /* 2, 3. sft LoRA and QLoRA on that model: the peak is the load (weights + the mapped file) */
    snprintf(base, sizeof base, "%s/final", run);
    /* 4. LoRA again on cpu-bf16: its GEMMs' packing scratch in the workspace */
    static const char *meth[] = {"lora", "qlora", "lora"};
    for (int i = 0; i < 3; i++) {
        char out[320];
        snprintf(out, sizeof out, "%s/%s%d", tmp, meth[i], i);
        char *sft[] = {LMA_CLI, "sft", "--model", base, "--data", data, "--method", (char *)meth[i], "--out", out,
                       "--steps", "2", "--batch", "2", "--seq", "64", "--threads", "2", "--template", "llama3",
                       "--lora-r", "8", "--eval-every", "0", "--device", i == 2 ? "cpu-bf16" : "cpu", NULL};
        meas[1 + i] = run_peak(sft);
        q.method = i == 1 ? LMA_MEM_QLORA : LMA_MEM_LORA;
        q.cpu_bf16 = i == 2;
        q.T = 64;
        q.lora.r = 8;
        q.source_bytes = lma_mem_source_bytes(base);
        CHECK(q.source_bytes > 0, "the base's safetensors found");
        CHECK_OK(lma_mem_predict(&c, &q, &p));
        pred[1 + i] = p.peak;
        CHECK(i == 2 ? p.part[LMA_MEM_WORKSPACE] > 0 : p.part[LMA_MEM_WORKSPACE] == 0, "cpu-bf16 only: packing scratch");
    }
    static const char *names[] = {"pretrain 60m full 2x128", "sft lora r8 2x64", "sft qlora r8 2x64",
                                  "sft lora r8 2x64 cpu-bf16"};
    for (int i = 0; i < 4; i++) {
        double e = pred[i] / meas[i] - 1;
        printf("cpu %s: predicted %.1f MiB, measured peak RSS %.1f MiB (%+.1f%%)\n", names[i], pred[i] / 1048576,
               meas[i] / 1048576, 100 * e);
        /* under AddressSanitizer freed blocks stay in quarantine and every allocation has
         * shadow memory: RSS says nothing about the plan there */
        if (!SANITIZED) CHECK(fabs(e) < 0.10, "%s: within 10%%", names[i]);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void) {
    known_configs();
    plan_is_allocator();
    gpu_rows();
    cpu_runs();
    TEST_END();
}
