/* lmadapt demo: the main job. Pretrains a tiny model on CPU on lmadapt's own
 * documentation (embedded in the binary at build time: no download), then
 * samples text from it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include <cjson/cJSON.h>
#include "core/io.h"
#include "core/json.h"
#include "core/threads.h"
#include "infer/generate.h"
#include "opts.h"
#include "train_common.h"

extern const unsigned char lma_demo_corpus[];
extern const size_t lma_demo_corpus_len;

static void out_text(void *ctx, const char *t, size_t n) {
    (void)ctx;
    fwrite(t, 1, n, stdout);
    fflush(stdout);
}

/* out holds a run this command wrote (run.json says "demo") */
static int is_demo_run(const char *out) {
    char path[4200];
    cJSON *j = NULL;
    if (lma_path_join(path, sizeof path, out, "run.json") != LMA_OK || !lma_file_exists(path) ||
        lma_json_load(path, &j) != LMA_OK) {
        lma_clear_error();
        return 0;
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "command");
    int yes = cJSON_IsString(c) && !strcmp(c->valuestring, "demo");
    cJSON_Delete(j);
    return yes;
}

int cmd_demo(int argc, char **argv) {
    const char *out = "lmadapt-demo", *prompt = "lmadapt ", *device = NULL;
    int steps = 400, max_tokens = 120, threads = 0;
    cli_opt own[] = {
        CLI_STR("out", 'o', &out, "DIR", "run directory"),
        CLI_INT("steps", 0, &steps, 1, 1000000000, "N", "training steps"),
        CLI_STR("prompt", 0, &prompt, "S", "text to continue"),
        CLI_INT("max-tokens", 0, &max_tokens, 0, 1000000, "N", "tokens to sample"),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&device),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "demo",
        .usage = "lmadapt demo [--out DIR] [--steps N] [--prompt S] [--max-tokens N] [--threads N]",
        .about = "The whole pipeline in a few minutes on a laptop CPU, with no download: writes the\n"
                 "documentation embedded in lmadapt (README + docs/) to DIR/corpus.txt, trains a\n"
                 "byte-level BPE tokenizer on it, pretrains a tiny Llama model (preset 'tiny', about 1M\n"
                 "parameters) with AdamW + warmup/cosine, saves it in HF format in DIR/final, and\n"
                 "samples a continuation of the prompt.\n",
        .groups = groups,
        .epilog = "Then try: lmadapt generate --model DIR/final --prompt \"The trainer\"\n"
                  "          lmadapt score --model DIR/final --text \"Checkpoints are written atomically.\"\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    lma_threads_set(threads);
    cli_train_opts to;
    cli_train_opts_init(&to);
    to.tp.out_dir = out;
    to.overwrite = is_demo_run(out); /* the demo replaces its own earlier run, nothing else */
    if ((rc = cli_train_prepare(NULL, "demo", &to)) != 0) return rc;
    char corpus[4200], final[4200];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", out);
    snprintf(final, sizeof final, "%s/final", out);
    if (lma_write_file_atomic(corpus, lma_demo_corpus, lma_demo_corpus_len) != LMA_OK) return cli_fail("demo", NULL);
    printf("demo: %zu bytes of lmadapt's documentation -> %s\n", lma_demo_corpus_len, corpus);

    to.tp.steps = steps;
    to.tp.B = 8; to.tp.T = 128;
    to.tp.sched.lr = 3e-3; to.tp.sched.min_lr = 3e-4; to.tp.sched.warmup_steps = 20;
    to.tp.save_every = steps; to.tp.eval_every = steps / 4 > 0 ? steps / 4 : 1; to.tp.eval_batches = 0;
    to.val_fraction = 0.05;
    to.seed = 1;
    to.device = device;
    cli_data_opts data;
    cli_data_opts_init(&data);
    data.paths[data.list.n++] = corpus;
    cli_run_spec run = {.vocab_size = 1024, .preset = "tiny"};
    rc = cli_run_text_training("demo", &to, &data, &run);
    if (rc != 0) return rc;

    lma_tokenizer *tok = NULL;
    lma_model *m = NULL;
    int32_t *ids = NULL, eos[4];
    size_t n = 0;
    rc = 1;
    const lma_backend *be = NULL;
    if (lma_backend_select(device, &be) != LMA_OK || lma_tok_load(final, &tok) != LMA_OK ||
        lma_model_load_ex(final, be, 0, &m) != LMA_OK ||
        lma_tok_encode(tok, prompt, strlen(prompt), 1, &ids, &n) != LMA_OK)
        goto done;
    if (n == 0) { rc = cli_usage_error("demo", "the prompt is empty"); goto done; }
    lma_gen_params gp = {.max_tokens = max_tokens, .sample = lma_sample_default_params(), .seed = 7,
                         .on_text = out_text};
    gp.sample.temperature = 0.8f;
    gp.sample.top_p = 0.95f;
    gp.n_stop_ids = lma_generation_eos(final, &m->cfg, eos, 4);
    gp.stop_ids = eos;
    printf("\ndemo: a sample from the model (temperature 0.8, top-p 0.95):\n\n%s", prompt);
    lma_gen_result r;
    if (lma_generate(m, tok, ids, n, &gp, &r) != LMA_OK) goto done;
    printf("\n\ndemo: %zu tokens at %.1f tokens/s. Model: %s (loads in transformers).\n", r.n_ids,
           r.decode_s > 0 ? r.n_ids / r.decode_s : 0.0, final);
    free(r.ids);
    free(r.text);
    rc = 0;
done:
    if (rc == 1) cli_fail("demo", NULL);
    free(ids);
    lma_model_free(m);
    lma_tok_free(tok);
    return rc;
}
