/* lmadapt mem: the peak memory of a training or inference run, before loading any weight
 * (src/advise/mem.h, docs/mem.md). */
#include <stdio.h>
#include <string.h>
#include "advise/mem.h"
#include "cli.h"
#include "model/presets.h"
#include "model/weight_source.h"
#include "opts.h"

static const char *const method_names[] = {"full", "lora", "qlora", "infer", NULL};
static const char *const device_names[] = {"cpu", "cuda", "cpu-bf16", NULL};
static const char *const style_names[] = {"lmadapt", "hf", NULL};
static const char *const table_names[] = {"seed", NULL};

#define GIB 1073741824.0

static void cli_mem_print(FILE *f, const lma_mem_plan *p, int json) {
    if (json) {
        fprintf(f, "{\"peak_gib\": %.3f, \"phase\": \"%s\", \"breakdown_gib\": {", p->peak / GIB, p->phase);
        for (int i = 0; i < LMA_MEM_NPARTS; i++)
            fprintf(f, "%s\"%s\": %.3f", i ? ", " : "", lma_mem_part_name((lma_mem_part)i), p->part[i] / GIB);
        fprintf(f, "}, \"context_gib\": %.3f, \"params\": %zu, \"trainable\": %zu}\n", p->context / GIB, p->n_params,
                p->trainable);
        return;
    }
    for (int i = 0; i < LMA_MEM_NPARTS; i++)
        if (p->part[i] > 0)
            fprintf(f, "  %-14s %9.3f GiB%s\n", lma_mem_part_name((lma_mem_part)i), p->part[i] / GIB,
                    i == LMA_MEM_LOAD ? "  (transient: while the base loads)"
                    : i == LMA_MEM_SAVE ? "  (transient: while a checkpoint is saved)" : "");
    fprintf(f, "  %-14s %9.3f GiB  (%s phase)\n", "peak", p->peak / GIB, p->phase);
    if (p->context > 0)
        fprintf(f, "  %-14s %9.3f GiB  (CUDA context and libraries, outside the allocator: nvidia-smi shows both)\n",
                "+ context", p->context / GIB);
}

static int seed_table(const lma_mem_request *base, int json) {
    static const char *models[] = {"llama2-7b", "llama2-13b"};
    static const lma_mem_method methods[] = {LMA_MEM_FULL, LMA_MEM_LORA, LMA_MEM_QLORA};
    if (json) printf("[");
    else
        printf("Peak GPU memory (GiB), batch %d x %d, LoRA r=%d on every projection%s (lmadapt: its allocator's\n"
               "high-water mark; hf: transformers + PEFT (+ bitsandbytes) bf16 autocast, torch's max_memory_allocated;\n"
               "add ~%.1f GiB of CUDA context for nvidia-smi)\n\n"
               "| model | method | lmadapt | hf |\n|---|---|---|---|\n",
               base->B, base->T, base->lora.r, base->grad_ckpt ? ", activation checkpointing" : "",
               LMA_MEM_CUDA_CONTEXT_BYTES / GIB);
    int first = 1;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            lma_config c;
            if (lma_mem_builtin_config(models[i], &c) != LMA_OK) return cli_fail("mem", NULL);
            lma_mem_request r = *base;
            r.method = methods[j];
            r.cuda = 1;
            lma_mem_plan a, h;
            r.style = LMA_MEM_LMADAPT;
            if (lma_mem_predict(&c, &r, &a) != LMA_OK) return cli_fail("mem", NULL);
            r.style = LMA_MEM_HF;
            if (lma_mem_predict(&c, &r, &h) != LMA_OK) return cli_fail("mem", NULL);
            if (json)
                printf("%s{\"model\": \"%s\", \"method\": \"%s\", \"lmadapt_gib\": %.3f, \"hf_gib\": %.3f}",
                       first ? "" : ", ", models[i], lma_mem_method_name(methods[j]), a.peak / GIB, h.peak / GIB);
            else
                printf("| %s | %s | %.2f | %.2f |\n", models[i], lma_mem_method_name(methods[j]), a.peak / GIB,
                       h.peak / GIB);
            first = 0;
        }
    if (json) printf("]\n");
    return 0;
}

int cmd_mem(int argc, char **argv) {
    const char *model = NULL, *preset = NULL;
    int method = LMA_MEM_LORA, device = 1, style = LMA_MEM_LMADAPT, json = 0, table = -1, vocab = 32000, save = 1;
    lma_mem_request r = lma_mem_default_request();
    cli_opt own[] = {
        CLI_STR("model", 0, &model, "M", "HF model folder (config.json alone is enough), .gguf file or short name"),
        CLI_STR("preset", 0, &preset, "NAME", "a model-size preset instead of --model (model/presets.h: tiny|15m|60m|\n"
                "125m|350m|1b|7b), or llama2-7b | llama2-13b | llama2-70b"),
        CLI_INT("vocab", 0, &vocab, 1, 10000000, "N", "vocabulary of a --preset model"),
        CLI_CHOOSE("method", 0, &method, method_names, NULL, NULL, "full | lora | qlora fine-tuning, or infer (generation)"),
        CLI_INT("batch", 0, &r.B, 1, 1 << 20, "B", "sequences per micro-batch (infer: sequences)"),
        CLI_INT("seq", 0, &r.T, 1, 1 << 24, "T", "tokens per sequence (infer: the context of the KV cache)"),
        CLI_BOOL("grad-ckpt", 0, &r.grad_ckpt, "activation checkpointing"),
        CLI_INT("lora-rank", 0, &r.lora.r, 1, 65536, "R", "LoRA rank (every projection adapted)", .alias = "lora-r"),
        CLI_CHOOSE("device", 0, &device, device_names, NULL, NULL, "cpu (peak RSS), cpu-bf16 (the same, with its GEMMs'\n"
                   "packing scratch) or cuda (the allocator's high-water mark)"),
        CLI_CHOOSE("style", 0, &style, style_names, NULL, NULL, "lmadapt's own plan, or transformers + PEFT (+ bitsandbytes)\n"
                   "in bf16 autocast with fused AdamW (cuda only)"),
        CLI_FLAG_SET("no-save", 0, &save, 0, "cpu: the run saves no checkpoint (no host staging phase)"),
        CLI_CHOOSE("table", 0, &table, table_names, NULL, NULL, "seed: the seed's Table 1 (Llama 2 7B and 13B x full / LoRA /\n"
                   "QLoRA) in both styles", .flags = CLI_NO_DEFAULT),
        CLI_OPT_JSON(&json, "print {\"peak_gib\", \"phase\", \"breakdown_gib\": {...}, \"context_gib\", \"params\", \"trainable\"}"),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "mem",
        .usage = "lmadapt mem (--model M | --preset NAME) [--method full|lora|qlora|infer] [--batch B] [--seq T]\n"
                 "            [--grad-ckpt] [--lora-rank R] [--device cpu|cpu-bf16|cuda] [--style lmadapt|hf] [--json]\n"
                 "lmadapt mem --table seed [--batch B] [--seq T] [--lora-rank R] [--grad-ckpt] [--json]",
        .about = "Predicts the peak memory of a training or inference run from lmadapt's own allocation plan\n"
                 "(the functions that size each allocation), before any weight is read, with a breakdown:\n"
                 "weights, compute copy, gradients, optimizer moments, activations, logits and loss, backend\n"
                 "workspace, and (cpu) the process, the weight files mapped while loading, the checkpoint\n"
                 "staging. Training commands print this prediction at the start and the measured peak at\n"
                 "the end (metrics.jsonl: mem_pred_gib, mem_peak_gib). docs/mem.md says what each term is.\n",
        .groups = groups,
        .epilog = "Examples:\n  lmadapt mem --model smollm2-135m-instruct --method full --batch 4 --seq 512 --device cpu\n"
                  "  lmadapt mem --preset llama2-7b --method qlora --grad-ckpt --lora-rank 16\n"
                  "  lmadapt mem --table seed\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    r.method = (lma_mem_method)method;
    r.style = (lma_mem_style)style;
    r.cuda = device == 1;
    r.cpu_bf16 = device == 2;
    r.save = save && r.method != LMA_MEM_INFER;
    if (table == 0) return seed_table(&r, json);
    if (!!model + !!preset != 1) return cli_usage_error("mem", "give exactly one of --model, --preset (or --table seed)");
    lma_config c;
    if (preset) {
        lma_status s = strncmp(preset, "llama2-", 7) ? lma_config_preset(preset, vocab, r.T, &c)
                                                      : lma_mem_builtin_config(preset, &c);
        if (s != LMA_OK) return cli_fail("mem", NULL);
    } else {
        if (cli_resolve_model("mem", &model)) return 1;
        if (lma_model_config_load(model, &c) != LMA_OK) return cli_fail("mem", NULL);
        if (!r.cuda) r.source_bytes = lma_mem_source_bytes(model);
    }
    lma_mem_plan p;
    if (lma_mem_predict(&c, &r, &p) != LMA_OK) return cli_fail("mem", NULL);
    if (!json)
        printf("%s: %.1fM parameters (%zu trainable), %s, batch %d x %d%s, %s, style %s\n",
               preset ? preset : model, (double)p.n_params / 1e6, p.trainable, lma_mem_method_name(r.method), r.B, r.T,
               r.grad_ckpt ? ", activation checkpointing" : "", device_names[device],
               r.style == LMA_MEM_HF ? "hf (transformers + PEFT)" : "lmadapt");
    cli_mem_print(stdout, &p, json);
    return 0;
}
