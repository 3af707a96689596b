/* lmadapt score: per-token log-probabilities, total NLL and perplexity. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "core/threads.h"
#include "infer/score.h"
#include "model/adapter.h"
#include "model/safetensors.h"
#include "tok/tokenizer.h"

static void help(void) {
    printf("Usage: lmadapt score --model M (--ids 1,2,3 | --text S | --file F) [options]\n\n"
           "Scores a token sequence with a Hugging Face model directory: the log-probability of\n"
           "each token given its prefix, the total negative log-likelihood and the perplexity.\n\n"
           "Options:\n"
           "  --model M         HF model folder, .gguf file or short name (docs/models.md)\n"
           "  --adapter DIR     apply a PEFT LoRA adapter dir to the model\n"
           "  --ids LIST        comma-separated token ids (at least 2)\n"
           "  --text S          text, tokenized with the model dir's tokenizer.json (with BOS\n"
           "                    when the tokenizer's post-processor adds one)\n"
           "  --file F          file whose text is tokenized the same way\n"
           "  --json            print {\"ids\": [...], \"logprobs\": [...], \"nll\": x, \"ppl\": y}\n"
           "                    where logprobs[i] = log p(ids[i+1] | ids[0..i])\n"
           "  --dtype f32|bf16  weight precision (bf16 rounds the weights; compute stays fp32)\n"
           "  --threads N       CPU threads (default: all cores, or LMA_THREADS)\n"
           "  --device D        cpu | cuda | cuda-fp32 (default: cuda if a GPU)\n"
           "  -h, --help        this help\n\n"
           "Example: lmadapt score --model tests/ref/models/llama_gqa --ids 1,5,9,2 --json\n");
}

static void round_to_bf16(lma_model *m) {
    size_t n = m->table.total;
    float *h = malloc(n * sizeof(float));
    if (!h) return;
    m->be->download(h, m->params, n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = lma_bf16_to_f32(lma_f32_to_bf16(h[i]));
    m->be->upload(m->params, h, n * sizeof(float));
    lma_model_sync_weights(m);
    free(h);
}

int cmd_score(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"ids", required_argument, 0, 'i'},
        {"text", required_argument, 0, 't'},  {"file", required_argument, 0, 'f'},
        {"json", no_argument, 0, 'j'},        {"dtype", required_argument, 0, 'd'},
        {"threads", required_argument, 0, 'n'}, {"help", no_argument, 0, 'h'},
        {"adapter", required_argument, 0, 'a'}, {"device", required_argument, 0, 'D'}, {0, 0, 0, 0}};
    const char *adapter = NULL, *device = NULL;
    const char *model = NULL, *ids_s = NULL, *text = NULL, *file = NULL, *dtype = "f32";
    int json = 0, threads = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'a': adapter = optarg; break;
        case 'i': ids_s = optarg; break;
        case 't': text = optarg; break;
        case 'f': file = optarg; break;
        case 'j': json = 1; break;
        case 'd': dtype = optarg; break;
        case 'n': threads = atoi(optarg); break;
        case 'D': device = optarg; break;
        case 'h': help(); return 0;
        default: return cli_usage_error("score", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("score", "unexpected argument '%s'", argv[optind]);
    if (!model) return cli_usage_error("score", "--model is required");
    if (cli_resolve_model("score", &model)) return 1;
    if (!!ids_s + !!text + !!file != 1) return cli_usage_error("score", "give exactly one of --ids, --text, --file");
    if (strcmp(dtype, "f32") && strcmp(dtype, "bf16")) return cli_usage_error("score", "--dtype must be f32 or bf16");
    int32_t *ids = NULL;
    size_t n = 0;
    if (ids_s) {
        if (!cli_parse_ids(ids_s, &ids, &n)) return cli_usage_error("score", "--ids must be comma-separated non-negative integers");
    } else {
        char *buf = NULL;
        size_t len = 0;
        if (file && lma_read_file(file, &buf, &len) != LMA_OK) return cli_fail("score", NULL);
        lma_tokenizer *tok = NULL;
        lma_status ts = lma_tok_load(model, &tok);
        if (ts == LMA_OK) ts = lma_tok_encode(tok, file ? buf : text, file ? len : strlen(text), 1, &ids, &n);
        lma_tok_free(tok);
        free(buf);
        if (ts != LMA_OK) return cli_fail("score", NULL);
    }
    if (n < 2) { free(ids); return cli_usage_error("score", "the input must have at least 2 tokens"); }
    lma_threads_set(threads);

    lma_model *m = NULL;
    const lma_backend *be = cli_backend("score", device);
    if (!be) { free(ids); return 1; }
    if (lma_model_load_ex(model, be, 0, &m) != LMA_OK) { free(ids); return cli_fail("score", NULL); }
    if (adapter && lma_adapter_load(m, adapter) != LMA_OK) { free(ids); lma_model_free(m); return cli_fail("score", NULL); }
    if (!strcmp(dtype, "bf16")) round_to_bf16(m);
    lma_score_result r;
    if (lma_score(m, ids, n, &r) != LMA_OK) { free(ids); lma_model_free(m); return cli_fail("score", NULL); }
    if (json) {
        printf("{\"ids\": [");
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? ", " : "", ids[i]);
        printf("], \"logprobs\": [");
        for (size_t i = 0; i < r.n; i++) printf("%s%.9g", i ? ", " : "", r.logprobs[i]);
        printf("], \"nll\": %.9g, \"ppl\": %.9g}\n", r.nll, r.ppl);
    } else {
        printf("%6s %10s %12s\n", "pos", "id", "logprob");
        for (size_t i = 0; i < r.n; i++) printf("%6zu %10d %12.6f\n", i + 1, ids[i + 1], r.logprobs[i]);
        printf("tokens scored: %zu   total NLL: %.6f   mean NLL: %.6f   perplexity: %.6f\n", r.n, r.nll,
               r.nll / (double)r.n, r.ppl);
    }
    free(r.logprobs);
    free(ids);
    lma_model_free(m);
    return 0;
}
