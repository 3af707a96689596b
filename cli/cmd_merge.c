/* lmadapt merge: folds a LoRA adapter into its base model (W = W0 + s B A) and
 * writes a full HF model dir. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "model/adapter.h"
#include "core/outdir.h"
#include "opts.h"
#include "outputs.h"
#include "train_common.h"

int cmd_merge(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *out = NULL;
    int bf16 = 0, overwrite = 0;
    cli_opt own[] = {
        CLI_OPT_MODEL(&model, "the base (the one the adapter was trained on): HF folder, .gguf\n"
                      "or short name"),
        CLI_STR("adapter", 0, &adapter, "DIR", "PEFT adapter dir", .flags = CLI_REQUIRED | CLI_IN),
        CLI_STR("out", 'o', &out, "DIR", "output model dir", .flags = CLI_REQUIRED | CLI_OUT),
        CLI_BOOL("bf16", 0, &bf16, "store the merged weights as bf16 instead of f32"),
        CLI_BOOL("overwrite", 0, &overwrite, "replace --out when it is not empty (written whole, then swapped in)"),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "merge",
        .usage = "lmadapt merge --model M --adapter DIR --out DIR [--bf16]",
        .about = "Merges a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, made by\n"
                 "lmadapt sft/cpt --method lora|qlora or by PEFT) into the fp32 base model, on the CPU:\n"
                 "W = W0 + s * B @ A for every adapted projection, s = lora_alpha / r (or / sqrt(r)\n"
                 "with use_rslora). The result is a plain HF model dir (config.json, model.safetensors,\n"
                 "tokenizer files copied from the base) that transformers loads unchanged.\n",
        .groups = groups,
        .epilog = "Example:\n  lmadapt merge --model base/ --adapter runs/sft/final --out merged/\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (cli_resolve_model("merge", &model)) return 1;
    if (cli_check_out_dir("merge", "--out", out, overwrite)) return 2;
    lma_model *m = NULL;
    lma_outdir od = {.slot = -1};
    rc = 1;
    if (lma_model_load_ex(model, lma_backend_cpu(), 0, &m) != LMA_OK) goto done;
    if (lma_adapter_load(m, adapter) != LMA_OK) goto done;
    int r = m->lora->p.r;
    float s = m->lora->scale;
    if (lma_lora_merge(m) != LMA_OK) goto done;
    /* the whole model folder is built beside --out and swapped in when complete */
    if (lma_outdir_begin(&od, out) != LMA_OK) goto done;
    if (lma_model_save(m, od.tmp, bf16, 0) != LMA_OK) goto done;
    if (cli_copy_tokenizer(model, od.tmp) != LMA_OK) goto done;
    if (lma_outdir_commit(&od) != LMA_OK) goto done;
    printf("merge: adapter %s (r %d, scale %g) merged into %s -> %s\n", adapter, r, s, model, out);
    rc = 0;
done:
    if (rc) { lma_outdir_abort(&od); cli_fail("merge", NULL); }
    lma_model_free(m);
    return rc;
}
