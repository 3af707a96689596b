/* lmadapt generate: text continuation with a KV cache and the usual samplers. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "core/threads.h"
#include "infer/generate.h"
#include "sampling.h"
#include "model/adapter.h"

static void help(void) {
    printf("Usage: lmadapt generate --model M (--prompt S | --ids 1,2,3) [options]\n\n"
           "Continues a prompt with a Hugging Face model dir, streaming the text as it is made.\n"
           "Stops at an end-of-sequence token (generation_config.json eos_token_id, or config.json),\n"
           "at a --stop string, or after --max-tokens.\n\n"
           "Options:\n"
           "  --model M               HF model folder, .gguf file or short name (docs/models.md);\n"
           "                          its tokenizer is needed for --prompt and text output\n"
           "  --adapter DIR           apply a PEFT LoRA adapter dir to the model\n"
           "  --prompt S              prompt text (tokenized with BOS when the tokenizer adds one)\n"
           "  --prompt-file F         prompt text from a file\n"
           "  --ids LIST              prompt as comma-separated token ids\n"
           "  --max-tokens N          tokens to generate at most (default 128)\n"
           "  --temperature X         0 = greedy (default 0.7)\n"
           "  --top-k K               keep the K most likely tokens (0 = off, default)\n"
           "  --top-p P               nucleus sampling (1 = off, default)\n"
           "  --min-p P               drop tokens below P x the top probability (0 = off, default)\n"
           "  --repetition-penalty R  penalize tokens already present (1 = off, default)\n"
           "  --seed N                sampling seed (default 0)\n"
           "  --stop S                stop string (repeatable)\n"
           "  --json                  print {\"ids\": [generated ids], \"text\": \"...\"} instead of streaming\n"
           "  --threads N             CPU threads\n"
           "  --device D              cpu | cuda | cuda-fp32 (default: cuda if a GPU)\n"
           "  -h, --help              this help\n\n"
           "Example: lmadapt generate --model runs/demo/final --prompt \"Once upon a time\" --max-tokens 64\n");
}

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
    enum { O_MODEL = 1, O_PROMPT, O_PFILE, O_IDS, O_STOP, O_JSON, O_THREADS, O_DEVICE, O_HELP, O_ADAPTER };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL}, {"prompt", required_argument, 0, O_PROMPT},
        {"prompt-file", required_argument, 0, O_PFILE}, {"ids", required_argument, 0, O_IDS},
        CLI_SAMPLING_OPTIONS, {"stop", required_argument, 0, O_STOP},
        {"json", no_argument, 0, O_JSON}, {"threads", required_argument, 0, O_THREADS},
        {"device", required_argument, 0, O_DEVICE},
        {"help", no_argument, 0, O_HELP}, {"adapter", required_argument, 0, O_ADAPTER}, {0, 0, 0, 0}};
    const char *adapter = NULL;
    const char *device = NULL;
    const char *model = NULL, *prompt = NULL, *pfile = NULL, *ids_s = NULL, *stops[32];
    int n_stops = 0, json = 0, threads = 0, c;
    lma_gen_params gp = {.max_tokens = 128, .sample = lma_sample_default_params()};
    gp.sample.temperature = 0.7f;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int r = cli_sampling_opt("generate", c, optarg, &gp);
        if (r < 0) return 2;
        if (r > 0) continue;
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_ADAPTER: adapter = optarg; break;
        case O_PROMPT: prompt = optarg; break;
        case O_PFILE: pfile = optarg; break;
        case O_IDS: ids_s = optarg; break;
        case O_STOP:
            if (n_stops == 32) return cli_usage_error("generate", "at most 32 --stop strings");
            stops[n_stops++] = optarg;
            break;
        case O_JSON: json = 1; break;
        case O_THREADS: threads = atoi(optarg); break;
        case O_DEVICE: device = optarg; break;
        case 'h': case O_HELP: help(); return 0;
        default: return cli_usage_error("generate", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("generate", "unexpected argument '%s'", argv[optind]);
    if (!model) return cli_usage_error("generate", "--model is required");
    if (cli_resolve_model("generate", &model)) return 1;
    if (!!prompt + !!pfile + !!ids_s != 1) return cli_usage_error("generate", "give one of --prompt, --prompt-file, --ids");
    if (cli_sampling_check("generate", &gp)) return 2;
    lma_threads_set(threads);

    lma_tokenizer *tok = NULL;
    lma_model *m = NULL;
    int32_t *ids = NULL, eos[16];
    size_t n = 0;
    char *buf = NULL;
    int rc = 1;
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
    if (lma_model_load_ex(model, be, LMA_MODEL_FROZEN, &m) != LMA_OK) goto done; /* inference: no fp32 copy on cuda */
    if (adapter && lma_adapter_load(m, adapter) != LMA_OK) goto done;
    gp.n_stop_ids = lma_generation_eos(model, &m->cfg, eos, 16);
    if (gp.n_stop_ids == 0 && tok && lma_tok_eos_id(tok) >= 0) eos[gp.n_stop_ids++] = lma_tok_eos_id(tok);
    gp.stop_ids = eos;
    gp.stop_strings = stops;
    gp.n_stop_strings = n_stops;
    if (!json && tok) gp.on_text = stream_out;
    if (n_stops && !tok) { rc = cli_fail("generate", "--stop needs a tokenizer"); goto done; }
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
    return rc;
}
