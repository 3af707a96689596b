/* lmadapt generate: text continuation with a KV cache and the usual samplers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "core/threads.h"
#include "infer/generate.h"
#include "opts.h"
#include "sampling.h"
#include "model/adapter.h"

static void stream_out(void *ctx, const char *text, size_t len) {
    (void)ctx;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

static void json_string(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *device = NULL, *prompt = NULL, *pfile = NULL, *ids_s = NULL;
    int json = 0, threads = 0, dequantize = 0;
    cli_sampling smp;
    cli_sampling_init(&smp, 128, 0.7f);
    cli_opt own[] = {
        CLI_OPT_MODEL(&model, "HF model folder, .gguf file or short name (docs/models.md);\n"
                      "its tokenizer is needed for --prompt and text output"),
        CLI_OPT_ADAPTER(&adapter),
        CLI_STR("prompt", 0, &prompt, "S", "prompt text (tokenized with BOS when the tokenizer adds one)"),
        CLI_STR("prompt-file", 0, &pfile, "F", "prompt text from a file", .flags = CLI_IN),
        CLI_STR("ids", 0, &ids_s, "LIST", "prompt as comma-separated token ids"),
        CLI_OPT_JSON(&json, "print {\"ids\": [generated ids], \"text\": \"...\", \"finish_reason\"}\n"
                     "instead of streaming"),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&device),
        CLI_OPT_DEQUANTIZE(&dequantize),
        CLI_END};
    cli_opt samp[CLI_SAMPLING_NOPTS];
    cli_sampling_table(&smp, CLI_SAMPLING_STOP | CLI_SAMPLING_FORMAT, samp);
    cli_group groups[] = {{NULL, own}, {"Sampling:", samp}, {0}};
    cli_spec spec = {
        .cmd = "generate",
        .usage = "lmadapt generate --model M (--prompt S | --prompt-file F | --ids 1,2,3) [options]",
        .about = "Continues a prompt with a model, streaming the text as it is made. Stops at an\n"
                 "end-of-sequence token (generation_config.json eos_token_id, or config.json), at a\n"
                 "--stop string, or after --max-tokens.\n",
        .groups = groups,
        .epilog = "Example: lmadapt generate --model runs/demo/final --prompt \"Once upon a time\" --max-tokens 64\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (cli_resolve_model("generate", &model)) return 1;
    if (!!prompt + !!pfile + !!ids_s != 1) return cli_usage_error("generate", "give one of --prompt, --prompt-file, --ids");
    cli_sampling_finish(&smp);
    lma_gen_params gp = smp.gp;
    lma_threads_set(threads);

    lma_tokenizer *tok = NULL;
    lma_model *m = NULL;
    int32_t *ids = NULL, eos[16];
    size_t n = 0;
    char *buf = NULL;
    rc = 1;
    if (lma_tok_load(model, &tok) != LMA_OK) { /* without a tokenizer, --ids in and ids out */
        if (!ids_s) { rc = cli_fail("generate", NULL); fprintf(stderr, "(without a tokenizer, give --ids)\n"); goto done; }
        lma_clear_error();
    }
    if (ids_s) {
        if (!cli_parse_ids(ids_s, &ids, &n)) { rc = cli_usage_error("generate", "--ids must be comma-separated integers"); goto done; }
    } else {
        size_t len = 0;
        if (pfile && lma_read_file(pfile, &buf, &len) != LMA_OK) goto done;
        if (lma_tok_encode(tok, pfile ? buf : prompt, pfile ? len : strlen(prompt), 1, &ids, &n) != LMA_OK) goto done;
        if (n == 0) { rc = cli_usage_error("generate", "the prompt is empty"); goto done; }
    }
    const lma_backend *be = cli_backend("generate", device);
    if (!be) { rc = 1; goto done; }
    if (lma_model_load_ex(model, be, CLI_INFER_FLAGS(dequantize), &m) != LMA_OK) goto done; /* inference: no fp32 copy on cuda */
    if (adapter && lma_adapter_load(m, adapter) != LMA_OK) goto done;
    gp.n_stop_ids = lma_generation_eos(model, &m->cfg, eos, 16);
    if (gp.n_stop_ids == 0 && tok && lma_tok_eos_id(tok) >= 0) eos[gp.n_stop_ids++] = lma_tok_eos_id(tok);
    gp.stop_ids = eos;
    if (!json && tok) gp.on_text = stream_out;
    if (gp.n_stop_strings && !tok) { rc = cli_fail("generate", "--stop needs a tokenizer"); goto done; }
    if ((smp.format || smp.schema_path || smp.grammar_path) && !tok) {
        rc = cli_fail("generate", "--format/--json-schema/--grammar need a tokenizer");
        goto done;
    }
    if (tok && cli_sampling_constraint(&smp, tok) != LMA_OK) goto done;
    gp.constraint = smp.gp.constraint;
    lma_gen_result r;
    if (lma_generate(m, tok, ids, n, &gp, &r) != LMA_OK) goto done;
    if (json) {
        printf("{\"ids\": [");
        for (size_t i = 0; i < r.n_ids; i++) printf("%s%d", i ? ", " : "", r.ids[i]);
        printf("]");
        if (r.text) { printf(", \"text\": "); json_string(stdout, r.text, r.len); }
        printf(", \"finish_reason\": \"%s\"}\n", r.finish == LMA_FINISH_STOP ? "stop" : "length");
    } else if (!tok) {
        for (size_t i = 0; i < r.n_ids; i++) printf("%s%d", i ? " " : "", r.ids[i]);
        printf("\n");
    } else {
        printf("\n");
    }
    fprintf(stderr, "[lmadapt] prompt %d tokens in %.2fs (%.1f tok/s); generated %zu tokens in %.2fs (%.1f tok/s); %s\n",
            r.prompt_tokens, r.prefill_s, r.prefill_s > 0 ? r.prompt_tokens / r.prefill_s : 0.0, r.n_ids, r.decode_s,
            r.decode_s > 0 ? r.n_ids / r.decode_s : 0.0, r.finish == LMA_FINISH_STOP ? "stopped" : "length limit");
    free(r.ids);
    free(r.text);
    rc = 0;
done:
    if (rc == 1 && lma_last_error()[0]) cli_fail("generate", NULL);
    free(buf);
    free(ids);
    lma_model_free(m);
    lma_tok_free(tok);
    cli_sampling_free(&smp);
    return rc;
}
