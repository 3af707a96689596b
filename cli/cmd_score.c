/* lmadapt score: per-token log-probabilities, total NLL and perplexity. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "core/threads.h"
#include "infer/score.h"
#include "model/adapter.h"
#include "model/safetensors.h"
#include "opts.h"
#include "tok/tokenizer.h"

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

static const char *const dtype_names[] = {"f32", "bf16", NULL};

int cmd_score(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *device = NULL, *ids_s = NULL, *text = NULL, *file = NULL;
    int json = 0, threads = 0, bf16 = 0, dequantize = 0;
    cli_opt own[] = {
        CLI_OPT_MODEL(&model, "HF model folder, .gguf file or short name (docs/models.md)"),
        CLI_OPT_ADAPTER(&adapter),
        CLI_STR("ids", 0, &ids_s, "LIST", "comma-separated token ids (at least 2)"),
        CLI_STR("text", 0, &text, "S", "text, tokenized with the model's tokenizer (with BOS when its\n"
                "post-processor adds one)"),
        CLI_STR("file", 0, &file, "F", "file whose text is tokenized the same way", .flags = CLI_IN),
        CLI_OPT_JSON(&json, "print {\"ids\": [...], \"logprobs\": [...], \"nll\": x, \"ppl\": y}\n"
                     "where logprobs[i] = log p(ids[i+1] | ids[0..i])"),
        CLI_CHOOSE("dtype", 0, &bf16, dtype_names, NULL, NULL, "weight precision (bf16 rounds the weights; compute stays fp32)"),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&device),
        CLI_OPT_DEQUANTIZE(&dequantize),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "score",
        .usage = "lmadapt score --model M (--ids 1,2,3 | --text S | --file F) [options]",
        .about = "Scores a token sequence with a model: the log-probability of each token given its\n"
                 "prefix, the total negative log-likelihood and the perplexity.\n",
        .groups = groups,
        .epilog = "Example: lmadapt score --model tests/ref/models/llama_gqa --ids 1,5,9,2 --json\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (cli_resolve_model("score", &model)) return 1;
    if (!!ids_s + !!text + !!file != 1) return cli_usage_error("score", "give exactly one of --ids, --text, --file");
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
    if (lma_model_load_ex(model, be, bf16 ? 0 : CLI_INFER_FLAGS(dequantize), &m) != LMA_OK) { free(ids); return cli_fail("score", NULL); }
    if (adapter && lma_adapter_load(m, adapter) != LMA_OK) { free(ids); lma_model_free(m); return cli_fail("score", NULL); }
    if (bf16) round_to_bf16(m);
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
