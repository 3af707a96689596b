/* lmadapt icl build|eval: in-context learning prompts from a pool of examples, and their
 * evaluation (src/icl/icl.h, docs/icl.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/model_path.h"
#include "core/threads.h"
#include "icl/icl.h"
#include "infer/generate.h"
#include "opts.h"

static const char *const select_names[] = {"random", "fixed", "bm25", "knn", "mmr", NULL};
static const char *const format_names[] = {"plain", "chat", "cot", NULL};

static const char usage_main[] =
    "Usage: lmadapt icl build --model M --pool P.jsonl (--query Q | --task T.jsonl) [options]\n"
    "       lmadapt icl eval --model M --pool P.jsonl --task T.jsonl [--shots K] [--select S] [--json]\n"
    "In-context learning: k shots from a pool of {\"input\", \"output\", \"reasoning\"?} examples,\n"
    "chosen random | fixed | bm25 | mmr | knn, formatted plain | chat | cot, within a prompt-token\n"
    "budget; eval generates greedily and scores exact match (docs/icl.md).\n";

/* the options both actions share, into these */
typedef struct {
    const char *model, *pool, *tmpl, *embed, *device;
    lma_icl_params p;
    lma_embedder *e; /* knn */
    int select, format;
} icl_opts;

#define ICL_SHARED(o)                                                                                                   \
    CLI_OPT_MODEL(&(o).model, "the model whose tokenizer (and, for eval, weights) is used"),                           \
        CLI_STR("pool", 0, &(o).pool, "P", "examples to draw shots from: JSONL {\"input\", \"output\", \"reasoning\"?}", \
                .flags = CLI_REQUIRED),                                                                                 \
        CLI_INT("shots", 0, &(o).p.shots, 0, 1000, "K", "shots per prompt"),                                            \
        CLI_CHOOSE("select", 0, &(o).select, select_names, NULL, NULL,                                                  \
                   "random (seeded, per query) | fixed (the pool's first) | bm25 | mmr |\n"                             \
                   "knn (nearest by sentence-embedding cosine, --embed)"),                                              \
        CLI_STR("embed", 0, &(o).embed, "M", "embedding model of --select knn", .def_text = "all-minilm-l6-v2"),         \
        CLI_CHOOSE("format", 0, &(o).format, format_names, NULL, NULL,                                                  \
                   "plain (Input:/Output:) | chat (shots as prior turns) | cot (Reasoning: before Output:)"),          \
        CLI_INT("budget", 0, &(o).p.budget, 0, 1 << 24, "N", "max prompt tokens (0 = none): shots are dropped to fit"), \
        CLI_U64("seed", 0, &(o).p.seed, "N", "seed of --select random"), CLI_OPT_TEMPLATE(&(o).tmpl)

static void icl_opts_init(icl_opts *o) {
    memset(o, 0, sizeof *o);
    o->p = lma_icl_default_params();
    o->select = (int)o->p.select;
    o->format = (int)o->p.format;
}

/* the pool of --pool, embedded when --select knn */
static lma_status icl_pool_open(const char *cmd, icl_opts *o, lma_icl_pool **pool) {
    LMA_TRY(lma_icl_pool_load(o->pool, pool));
    if (o->p.select != LMA_ICL_KNN) return LMA_OK;
    char path[4096];
    const lma_backend *be = NULL;
    LMA_TRY(lma_model_path_resolve(o->embed ? o->embed : "all-minilm-l6-v2", path, sizeof path));
    LMA_TRY(lma_backend_select(o->device, &be));
    LMA_TRY(lma_embedder_load(path, be, &o->e));
    fprintf(stderr, "%s: embedding %zu pool inputs for knn\n", cmd, lma_icl_pool_size(*pool));
    return lma_icl_pool_embed(*pool, o->e);
}

static void icl_opts_apply(icl_opts *o) {
    o->p.select = (lma_icl_select)o->select;
    o->p.format = (lma_icl_format)o->format;
    o->p.template_spec = o->tmpl;
}

static void put_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static int do_build(int argc, char **argv) {
    icl_opts o;
    icl_opts_init(&o);
    const char *query = NULL, *task = NULL;
    int json = 0;
    cli_opt own[] = {ICL_SHARED(o),
                     CLI_STR("query", 0, &query, "Q", "one query: its prompt is printed"),
                     CLI_STR("task", 0, &task, "T", "a JSONL of queries ({\"input\", ...}): one prompt each"),
                     CLI_OPT_JSON(&json, "one JSON line per query: {\"input\", \"prompt\", \"prompt_tokens\", \"shots\"}"),
                     CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {.cmd = "icl build",
                     .usage = "lmadapt icl build --model M --pool P.jsonl (--query Q | --task T.jsonl) [options]",
                     .about = "Builds the in-context prompt of each query: k shots selected from the pool, formatted,\n"
                              "tokenized with the model's tokenizer and cut to the token budget.\n",
                     .groups = groups};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (!!query + !!task != 1) return cli_usage_error("icl build", "give exactly one of --query, --task");
    icl_opts_apply(&o);
    if (cli_resolve_model("icl build", &o.model)) return 1;
    lma_tokenizer *tok = NULL;
    lma_icl_pool *pool = NULL, *tq = NULL;
    rc = 1;
    if (lma_tok_load(o.model, &tok) != LMA_OK || icl_pool_open("icl build", &o, &pool) != LMA_OK) goto done;
    if (task && lma_icl_pool_load(task, &tq) != LMA_OK) goto done;
    size_t nq = tq ? lma_icl_pool_size(tq) : 1;
    for (size_t q = 0; q < nq; q++) {
        const char *in = tq ? lma_icl_pool_get(tq, q)->input : query;
        int32_t *ids = NULL;
        size_t n = 0;
        char *text = NULL;
        int k = 0;
        if (lma_icl_build(pool, tok, in, q, &o.p, &ids, &n, &text, &k) != LMA_OK) goto done;
        if (json) {
            printf("{\"input\": ");
            put_json_str(stdout, in);
            printf(", \"prompt\": ");
            put_json_str(stdout, text);
            printf(", \"prompt_tokens\": %zu, \"shots\": %d}\n", n, k);
        } else {
            printf("%s%s\n", q ? "\n----\n" : "", text);
            fprintf(stderr, "icl build: %zu prompt tokens, %d shots\n", n, k);
        }
        free(ids);
        free(text);
    }
    rc = 0;
done:
    if (rc) cli_fail("icl build", NULL);
    lma_tok_free(tok);
    lma_icl_pool_free(pool);
    lma_embedder_free(o.e);
    lma_icl_pool_free(tq);
    return rc;
}

typedef struct {
    int verbose;
    const lma_icl_pool *task;
} show_ctx;

static void show(void *ctx, size_t qi, const char *answer, int correct) {
    show_ctx *c = ctx;
    if (!c->verbose) return;
    fprintf(stderr, "%s %zu: ", correct ? "ok  " : "miss", qi);
    fprintf(stderr, "%s -> [%s] (want %s)\n", lma_icl_pool_get(c->task, qi)->input, answer,
            lma_icl_pool_get(c->task, qi)->output);
}

static int do_eval(int argc, char **argv) {
    icl_opts o;
    icl_opts_init(&o);
    const char *task = NULL;
    const char *stops_v[16];
    cli_list stops = CLI_LIST_OF(stops_v);
    int json = 0, threads = 0, max_new = 32, verbose = 0;
    cli_opt own[] = {ICL_SHARED(o),
                     CLI_STR("task", 0, &task, "T", "queries with references: JSONL {\"input\", \"output\"}",
                             .flags = CLI_REQUIRED),
                     CLI_INT("max-tokens", 0, &max_new, 1, 4096, "N", "tokens generated per query at most"),
                     CLI_MULTI("stop", 0, &stops, "S", "a stop string (repeatable; default: the first newline,\n"
                               "cot: the end of the Output: line)"),
                     CLI_BOOL("verbose", 'v', &verbose, "print each query's answer on stderr"),
                     CLI_OPT_JSON(&json, "print {\"accuracy\", \"prompt_tokens_per_query\", \"shots\", \"select\", \"n\", ...}"),
                     CLI_OPT_THREADS(&threads),
                     CLI_OPT_DEVICE(&o.device),
                     CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {.cmd = "icl eval",
                     .usage = "lmadapt icl eval --model M --pool P.jsonl --task T.jsonl [--shots K] [--select S] [options]",
                     .about = "Prompts the model with k shots for every query of the task, generates greedily up to the\n"
                              "first newline (or --stop), and scores exact match of the stripped answer against the\n"
                              "stripped output; reports the accuracy and the mean prompt tokens per query. Prompts that\n"
                              "share a prefix (--select fixed) reuse its KV cache.\n",
                     .groups = groups,
                     .epilog = "Example: lmadapt icl eval --model smollm2-135m-instruct --pool data/icl/dates_pool.jsonl \\\n"
                               "           --task data/icl/dates_task.jsonl --shots 4 --select bm25 --json\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    icl_opts_apply(&o);
    if (cli_resolve_model("icl eval", &o.model)) return 1;
    lma_threads_set(threads);
    lma_tokenizer *tok = NULL;
    lma_icl_pool *pool = NULL, *tq = NULL;
    lma_model *m = NULL;
    rc = 1;
    if (lma_tok_load(o.model, &tok) != LMA_OK || icl_pool_open("icl eval", &o, &pool) != LMA_OK ||
        lma_icl_pool_load(task, &tq) != LMA_OK)
        goto done;
    const lma_backend *be = cli_backend("icl eval", o.device);
    if (!be) goto quiet;
    if (lma_model_load_ex(o.model, be, LMA_MODEL_FROZEN, &m) != LMA_OK) goto done;
    int32_t eos[16];
    show_ctx sc = {verbose, tq};
    lma_icl_gen g = {.max_new_tokens = max_new, .stops = stops.v, .n_stops = stops.n, .eos = eos,
                     .n_eos = lma_generation_eos(o.model, &m->cfg, eos, 16), .on_query = show, .ctx = &sc};
    lma_icl_eval_result r;
    if (lma_icl_eval(m, tok, pool, tq, &o.p, &g, &r) != LMA_OK) goto done;
    if (json)
        printf("{\"accuracy\": %.4f, \"prompt_tokens_per_query\": %.1f, \"shots\": %d, \"select\": \"%s\", \"n\": %d, "
               "\"format\": \"%s\", \"shots_used_min\": %d, \"prefix_tokens_reused\": %ld, \"prompt_tokens_computed\": %ld}\n",
               r.accuracy, r.prompt_tokens_per_query, o.p.shots, lma_icl_select_name(o.p.select), r.n,
               format_names[o.format], r.shots_used_min, r.prefix_tokens_reused, r.prompt_tokens_computed);
    else
        printf("icl eval: %d queries, %d shots (%s, %s): accuracy %.4f, %.1f prompt tokens per query "
               "(%ld of them reused from the shared prefix's KV cache)\n",
               r.n, o.p.shots, lma_icl_select_name(o.p.select), format_names[o.format], r.accuracy,
               r.prompt_tokens_per_query, r.prefix_tokens_reused);
    rc = 0;
done:
    if (rc) cli_fail("icl eval", NULL);
quiet:
    lma_model_free(m);
    lma_tok_free(tok);
    lma_icl_pool_free(pool);
    lma_embedder_free(o.e);
    lma_icl_pool_free(tq);
    return rc;
}

int cmd_icl(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "build")) return do_build(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval")) return do_eval(argc - 1, argv + 1);
    return cli_usage_error("icl", "unknown action '%s' (build, eval)", argv[1]);
}
