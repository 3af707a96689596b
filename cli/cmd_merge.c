/* lmadapt merge: folds a LoRA adapter into its base model (W = W0 + s B A) and
 * writes a full HF model dir. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "model/adapter.h"
#include "train_common.h"

static void help(void) {
    printf("Usage: lmadapt merge --model M --adapter DIR --out DIR [--bf16]\n\n"
           "Merges a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, made by\n"
           "lmadapt sft/cpt --method lora|qlora or by PEFT) into the fp32 base model:\n"
           "W = W0 + s * B @ A for every adapted projection, s = lora_alpha / r (or / sqrt(r)\n"
           "with use_rslora). The result is a plain HF model dir (config.json, model.safetensors,\n"
           "tokenizer files copied from the base) that transformers loads unchanged.\n\n"
           "Options:\n"
           "  --model M       the base (the one the adapter was trained on): HF folder, .gguf or short name\n"
           "  --adapter DIR   PEFT adapter dir\n"
           "  --out DIR       output model dir\n"
           "  --bf16          store the merged weights as bf16 (default f32)\n\n"
           "Example:\n  lmadapt merge --model base/ --adapter runs/sft/final --out merged/\n");
}

int cmd_merge(int argc, char **argv) {
    enum { O_MODEL = 1, O_ADAPTER, O_OUT, O_BF16, O_HELP };
    static const struct option opts[] = {{"model", required_argument, 0, O_MODEL},
                                         {"adapter", required_argument, 0, O_ADAPTER},
                                         {"out", required_argument, 0, O_OUT},
                                         {"bf16", no_argument, 0, O_BF16},
                                         {"help", no_argument, 0, O_HELP},
                                         {0, 0, 0, 0}};
    const char *model = NULL, *adapter = NULL, *out = NULL;
    int bf16 = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': case O_HELP: help(); return 0;
        case O_MODEL: model = optarg; break;
        case O_ADAPTER: adapter = optarg; break;
        case O_OUT: out = optarg; break;
        case O_BF16: bf16 = 1; break;
        default: return cli_usage_error("merge", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("merge", "unexpected argument '%s'", argv[optind]);
    if (!model || !adapter || !out) return cli_usage_error("merge", "--model DIR, --adapter DIR and --out DIR are required");
    if (cli_resolve_model("merge", &model)) return 1;
    lma_model *m = NULL;
    int rc = 1;
    if (lma_model_load_ex(model, lma_backend_cpu(), 0, &m) != LMA_OK) goto done;
    if (lma_adapter_load(m, adapter) != LMA_OK) goto done;
    int r = m->lora->p.r;
    float s = m->lora->scale;
    if (lma_lora_merge(m) != LMA_OK) goto done;
    if (lma_model_save(m, out, bf16, 0) != LMA_OK) goto done;
    if (cli_copy_tokenizer(model, out) != LMA_OK) goto done;
    printf("merge: adapter %s (r %d, scale %g) merged into %s -> %s\n", adapter, r, s, model, out);
    rc = 0;
done:
    if (rc) cli_fail("merge", NULL);
    lma_model_free(m);
    return rc;
}
