/* The method advisor (see advise.h; each branch and its source: docs/advise.md). */
#include "advise/advise.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "advise/mem.h"
#include "model/llama.h"
#include "model/presets.h"

/* The thresholds of the flow (docs/advise.md says where each comes from). */
#define ICL_MAX_LABELLED 100.0    /* below: a handful of examples, shown in the prompt */
#define FULL_MIN_LABELLED 10000.0 /* above: enough data to move every weight */
#define CPT_MIN_TOKENS 1e8        /* below: too little raw text to shift a model's distribution */
#define PRETRAIN_MIN_TOKENS 1e12  /* the scale at which a model from scratch competes */
#define ICL_SHOTS 4
#define RAG_PASSAGES 4
#define RAG_PASSAGE_TOKENS 256
#define FIT_SHARE 0.9              /* of a GPU's memory a plan may take (allocator fragmentation, other users) */
#define GIB 1073741824.0

static const char *task_names[LMA_TASK_COUNT] = {"qa", "format", "tone", "skill", "domain", "language", "judge"};
const char *lma_task_name(lma_task t) { return (unsigned)t < LMA_TASK_COUNT ? task_names[t] : "?"; }

lma_advise_in lma_advise_default_in(void) {
    lma_advise_in in = {.task = LMA_TASK_FORMAT, .gpus = 1, .gpu_mem_gb = 80, .seq = 2048, .tokens_per_example = 256,
                        .epochs = 3, .mfu = 0.4, .gpu_tflops = 989};
    return in;
}

static void reason(lma_advice *a, const char *fmt, ...) {
    if (a->n_reasons >= LMA_ADVICE_MAX) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->reasons[a->n_reasons++], sizeof a->reasons[0], fmt, ap);
    va_end(ap);
}

static void alt(lma_advice *a, const char *m) {
    for (int i = 0; i < a->n_alt; i++)
        if (!strcmp(a->alternatives[i], m)) return;
    if (a->n_alt < LMA_ADVICE_MAX && strcmp(a->method, m)) snprintf(a->alternatives[a->n_alt++], sizeof a->alternatives[0], "%s", m);
}

/* A Llama-shaped config for `params` parameters: the built-in model nearest in log scale. */
static lma_status config_for(double params, lma_config *c) {
    static const char *names[] = {"125m", "350m", "1b", "llama2-7b", "llama2-13b", "llama2-70b"};
    double best = INFINITY;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        lma_config t;
        if (i < 3) LMA_TRY(lma_config_preset(names[i], 32000, 4096, &t));
        else LMA_TRY(lma_mem_builtin_config(names[i], &t));
        lma_weight_plan w;
        LMA_TRY(lma_model_weight_plan(&t, 4, 0, &w));
        double d = fabs(log((double)w.n_params / params));
        if (d < best) { best = d; *c = t; }
    }
    return LMA_OK;
}

/* lmadapt's peak (GiB, with the CUDA context) of method m at batch 1 x seq, or -1 when it
 * does not fit gpu_mem_gb: first without, then with activation checkpointing. */
static double fit(const lma_config *c, const lma_advise_in *in, lma_mem_method m, int *ckpt) {
    for (int ck = 0; ck < 2; ck++) {
        lma_mem_request r = lma_mem_default_request();
        r.method = m;
        r.cuda = 1;
        r.B = 1;
        r.T = in->seq;
        r.grad_ckpt = ck;
        r.lora.r = 16;
        lma_mem_plan p;
        if (lma_mem_predict(c, &r, &p) != LMA_OK) { lma_clear_error(); return -1; }
        double gib = (p.peak + p.context) / GIB;
        if (gib <= FIT_SHARE * in->gpu_mem_gb) { *ckpt = ck; return gib; }
    }
    return -1;
}

static double gpu_hours(const lma_advise_in *in, double N, double D) {
    return 6.0 * N * D / (in->gpu_tflops * 1e12 * in->mfu) / 3600.0;
}

static const char *model_arg(const lma_advise_in *in) { return in->model ? in->model : "MODEL"; }

static void set_icl(const lma_advise_in *in, lma_advice *a) {
    snprintf(a->method, sizeof a->method, "icl");
    a->prompt_tokens = (double)ICL_SHOTS * in->tokens_per_example;
    snprintf(a->next, sizeof a->next,
             "lmadapt icl eval --model %s --pool examples.jsonl --task task.jsonl --shots %d --select bm25",
             model_arg(in), ICL_SHOTS);
}

/* the fine-tuning branch: full, lora or qlora by data and memory; 0 when nothing fits */
static int choose_finetune(const lma_config *c, const lma_advise_in *in, lma_advice *a) {
    int ck_full = 0, ck_lora = 0, ck_q = 0;
    double full = fit(c, in, LMA_MEM_FULL, &ck_full), lora = fit(c, in, LMA_MEM_LORA, &ck_lora);
    double q = fit(c, in, LMA_MEM_QLORA, &ck_q);
    double D = in->labelled * in->tokens_per_example * in->epochs;
    const char *m = NULL;
    if (in->labelled >= FULL_MIN_LABELLED && full > 0) {
        m = "full";
        a->peak_gib = full; a->grad_ckpt = ck_full;
        reason(a, "%.0f labelled examples are enough to update every weight, and full fine-tuning fits: %.1f GiB of "
                  "%.0f per GPU (lmadapt mem); LoRA is the cheaper alternative that forgets less",
               in->labelled, full, in->gpu_mem_gb);
        if (lora > 0) alt(a, "lora");
    } else if (lora > 0) {
        m = "lora";
        a->peak_gib = lora; a->grad_ckpt = ck_lora;
        if (in->labelled >= FULL_MIN_LABELLED)
            reason(a, "%.0f labelled examples would support full fine-tuning, but it does not fit %.0f GiB per GPU; "
                      "LoRA does: %.1f GiB%s (lmadapt mem)", in->labelled, in->gpu_mem_gb, lora,
                   ck_lora ? " with activation checkpointing" : "");
        else
            reason(a, "%.0f labelled examples fit parameter-efficient fine-tuning: LoRA trains ~1%% of the weights, "
                      "needs %.1f GiB%s of %.0f (lmadapt mem) and forgets less than full fine-tuning",
                   in->labelled, lora, ck_lora ? " with activation checkpointing" : "", in->gpu_mem_gb);
        if (q > 0) alt(a, "qlora");
        if (in->labelled >= FULL_MIN_LABELLED) alt(a, "full");
    } else if (q > 0) {
        m = "qlora";
        a->peak_gib = q; a->grad_ckpt = ck_q;
        reason(a, "LoRA on a bf16 base does not fit %.0f GiB; QLoRA keeps the base in 4 bits: %.1f GiB%s "
                  "(lmadapt mem)", in->gpu_mem_gb, q, ck_q ? " with activation checkpointing" : "");
    }
    if (!m) return 0;
    snprintf(a->method, sizeof a->method, "%s", m);
    a->train_tokens = D;
    a->gpu_hours = gpu_hours(in, a->n_params, D);
    snprintf(a->next, sizeof a->next,
             "lmadapt sft --model %s --data labelled.jsonl --method %s%s%s --batch 1 --seq %d --epochs %d --out run "
             "&& lmadapt eval --compare",
             model_arg(in), m, strcmp(m, "full") ? " --lora-r 16" : "", a->grad_ckpt ? " --grad-ckpt" : "", in->seq,
             in->epochs);
    return 1;
}

lma_status lma_advise(const lma_advise_in *in, lma_advice *a) {
    memset(a, 0, sizeof *a);
    a->peak_gib = -1;
    if (in->labelled < 0 || in->examples < 0 || in->unlabelled_tokens < 0 || in->gpu_mem_gb < 0 || in->gpu_hours < 0 ||
        in->params < 0 || in->gpus < 0)
        return lma_error(LMA_ERR_ARG, "advise: counts and budgets must be >= 0");
    if (!(in->mfu > 0 && in->mfu <= 1)) return lma_error(LMA_ERR_ARG, "advise: MFU %g must be in (0, 1]", in->mfu);
    if ((unsigned)in->task >= LMA_TASK_COUNT) return lma_error(LMA_ERR_ARG, "advise: unknown task");
    lma_config c;
    if (in->cfg) c = *in->cfg;
    else LMA_TRY(config_for(in->params > 0 ? in->params : 7e9, &c));
    lma_weight_plan w;
    LMA_TRY(lma_model_weight_plan(&c, 4, 0, &w));
    a->n_params = (double)w.n_params;
    if (!in->cfg && in->params <= 0) reason(a, "no --model or --params: a 7B Llama-shaped model assumed");
    int gpu = in->gpu_mem_gb > 0 && in->gpus > 0;
    double N = a->n_params;

    /* 1. knowledge that changes, or answers from documents: retrieval */
    if (in->knowledge || in->task == LMA_TASK_QA) {
        snprintf(a->method, sizeof a->method, "rag");
        a->prompt_tokens = (double)RAG_PASSAGES * RAG_PASSAGE_TOKENS;
        if (in->knowledge)
            reason(a, "the knowledge changes: weights are frozen at their training data, retrieval reads today's "
                      "documents (no retraining when they change) and cites its sources");
        else
            reason(a, "questions over documents: retrieval grounds each answer in the passages and cites them; "
                      "fine-tuning teaches form and style more reliably than facts");
        snprintf(a->next, sizeof a->next,
                 "lmadapt rag index --db docs.sqlite DOCS/ && lmadapt rag ask --db docs.sqlite --model %s \"QUESTION\"",
                 model_arg(in));
        /* a hybrid where labelled answers exist to teach the answer's form */
        lma_advice ft;
        memset(&ft, 0, sizeof ft);
        ft.n_params = N;
        if (gpu && in->labelled >= 1000 && choose_finetune(&c, in, &ft)) {
            snprintf(a->method, sizeof a->method, "rag+%.24s", ft.method);
            a->peak_gib = ft.peak_gib; a->grad_ckpt = ft.grad_ckpt;
            a->gpu_hours = ft.gpu_hours; a->train_tokens = ft.train_tokens;
            reason(a, "%.0f labelled answers teach the answer's form and tone: %s on them, retrieval for the facts",
                   in->labelled, ft.method);
            size_t k = strlen(a->next);
            snprintf(a->next + k, sizeof a->next - k, "; %s", ft.next);
        } else {
            alt(a, "icl");
            if (gpu && in->labelled >= ICL_MAX_LABELLED) alt(a, "rag+lora");
        }
    } else if (!gpu) {
        /* 2. no GPU: nothing is trained */
        set_icl(in, a);
        reason(a, "no GPU: training is out of reach; in-context learning is the cheapest adaptation, paid in "
                  "prompt tokens (%d shots) instead of GPU hours", ICL_SHOTS);
        if (in->unlabelled_tokens > 0 || in->labelled > 0) alt(a, "rag");
    } else if ((in->task == LMA_TASK_LANGUAGE || in->task == LMA_TASK_DOMAIN) &&
               in->unlabelled_tokens >= CPT_MIN_TOKENS) {
        /* 3. a new language or domain with raw text: continued pretraining (or, at web scale, pretraining) */
        double need = gpu_hours(in, N, in->unlabelled_tokens);
        double budget = in->gpu_hours > 0 ? in->gpu_hours : need;
        double D = budget >= need ? in->unlabelled_tokens : in->unlabelled_tokens * budget / need;
        a->train_tokens = D;
        a->gpu_hours = gpu_hours(in, N, D);
        if (in->unlabelled_tokens >= PRETRAIN_MIN_TOKENS && budget >= need) {
            snprintf(a->method, sizeof a->method, "pretrain");
            reason(a, "%.3g tokens and %.0f GPU hours reach the scale where a model from scratch competes "
                      "(6 N D = %.3g FLOPs); otherwise continued pretraining of an existing model is cheaper",
                   in->unlabelled_tokens, budget, 6 * N * D);
            alt(a, "cpt");
            snprintf(a->next, sizeof a->next, "lmadapt pretrain --data CORPUS/ --config config.json --out run");
        } else {
            snprintf(a->method, sizeof a->method, "cpt");
            reason(a, "%s with %.3g unlabelled tokens: continued pretraining adapts an existing model to it; "
                      "pretraining from scratch is rarely worth it below ~1e12 tokens",
                   in->task == LMA_TASK_LANGUAGE ? "a new language" : "a new domain", in->unlabelled_tokens);
            if (budget < need)
                reason(a, "the %.0f GPU-hour budget covers %.3g of the %.3g tokens (6 N D at MFU %.2f): train on "
                          "that share", budget, D, in->unlabelled_tokens, in->mfu);
            else
                reason(a, "6 N D = %.3g FLOPs: %.0f GPU hours at MFU %.2f of %.0f TFLOP/s%s", 6 * N * D, a->gpu_hours,
                       in->mfu, in->gpu_tflops, in->gpu_hours > 0 ? ", within the budget" : "");
            reason(a, "replay general text against forgetting, then instruction-tune (sft) for chat use");
            if (in->labelled >= ICL_MAX_LABELLED) alt(a, "lora");
        }
        int ck = 0;
        double pk = fit(&c, in, LMA_MEM_FULL, &ck);
        const char *how = "";
        if (pk < 0 && (pk = fit(&c, in, LMA_MEM_LORA, &ck)) > 0) {
            how = " --method lora --lora-r 64";
            reason(a, "full training of this model does not fit %.0f GiB per GPU (lmadapt mem)%s: continue it through "
                      "a LoRA adapter of high rank (%.1f GiB), less plastic than full training",
                   in->gpu_mem_gb, in->gpus > 1 ? " and lmadapt does not shard states over GPUs" : "", pk);
        } else if (pk < 0) {
            reason(a, "no training of this model fits %.0f GiB per GPU (lmadapt mem): continue a smaller model",
                   in->gpu_mem_gb);
        }
        a->peak_gib = pk;
        a->grad_ckpt = ck;
        if (!strcmp(a->method, "cpt"))
            snprintf(a->next, sizeof a->next,
                     "lmadapt cpt --model %s --data CORPUS/ --replay GENERAL/ --replay-ratio 0.1%s%s --out run "
                     "&& lmadapt eval --compare", model_arg(in), how, ck ? " --grad-ckpt" : "");
    } else if (in->labelled < ICL_MAX_LABELLED) {
        /* 4. a handful of examples: in the prompt */
        set_icl(in, a);
        reason(a, "%.0f labelled examples are a handful: shown in the prompt they teach the format at once; "
                  "fine-tuning needs hundreds to thousands", in->labelled + in->examples);
        alt(a, "lora");
    } else if (!choose_finetune(&c, in, a)) {
        /* 5. labelled data, but no training run fits the GPU */
        set_icl(in, a);
        reason(a, "no fine-tuning of this %.2gB model fits %.0f GiB per GPU, not even QLoRA with checkpointing "
                  "(lmadapt mem): prompt it, or fine-tune a smaller model", N / 1e9, in->gpu_mem_gb);
    } else {
        if (in->labelled < 1000) alt(a, "icl");
        if (in->gpu_hours > 0 && a->gpu_hours > in->gpu_hours)
            reason(a, "the run needs %.1f GPU hours, over the budget of %.1f: fewer epochs or examples", a->gpu_hours,
                   in->gpu_hours);
        else
            reason(a, "6 N D = %.3g FLOPs over %.3g tokens (%d epochs): %.2f GPU hours at MFU %.2f of %.0f TFLOP/s",
                   6 * N * a->train_tokens, a->train_tokens, in->epochs, a->gpu_hours, in->mfu, in->gpu_tflops);
        if (in->task == LMA_TASK_JUDGE) reason(a, "a judge: hold out labelled verdicts to measure its agreement");
    }
    if (a->prompt_tokens > 0) {
        if (in->cost_per_1k > 0) a->cost_per_query = a->prompt_tokens / 1000.0 * in->cost_per_1k;
        reason(a, "~%.0f extra prompt tokens per query%s", a->prompt_tokens,
               in->cost_per_1k > 0 ? " (priced below)" : "");
        if (in->latency_ms > 0 && in->latency_ms < 500 && in->labelled >= ICL_MAX_LABELLED && gpu)
            reason(a, "a %.0f ms latency budget leaves little room for long prompts: a fine-tuned model answers "
                      "without them", in->latency_ms);
    }
    return LMA_OK;
}
