/* lmadapt embed: sentence embeddings of texts (src/infer/embed.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "core/json.h"
#include "core/progress.h"
#include "core/threads.h"
#include "infer/embed.h"
#include "opts.h"

enum { CHUNK = 1024 }; /* texts per lma_embed call on files (progress between calls) */

typedef struct {
    char **text, **id; /* (n) text, id as JSON (NULL when absent) */
    size_t n, cap;
} inputs;

static void inputs_free(inputs *in) {
    for (size_t i = 0; i < in->n; i++) { free(in->text[i]); free(in->id[i]); }
    free(in->text); free(in->id);
}

/* JSONL: one {"text": S[, "id": string or number]} per non-blank line */
static int read_jsonl(const char *file, inputs *in) {
    char *buf = NULL;
    size_t len = 0;
    if (lma_read_file(file, &buf, &len) != LMA_OK) return cli_fail("embed", NULL);
    size_t line = 0;
    for (char *p = buf, *end = buf + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        char *s = p;
        p += n + 1;
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r')) k++;
        if (k == n) continue;
        cJSON *j = cJSON_ParseWithLength(s, n);
        const cJSON *t = j ? cJSON_GetObjectItemCaseSensitive(j, "text") : NULL;
        const cJSON *id = j ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
        char msg[256];
        if (!cJSON_IsObject(j)) snprintf(msg, sizeof msg, "%s:%zu: not a JSON object", file, line);
        else if (!cJSON_IsString(t)) snprintf(msg, sizeof msg, "%s:%zu: field \"text\" missing or not a string", file, line);
        else if (id && !cJSON_IsString(id) && !cJSON_IsNumber(id))
            snprintf(msg, sizeof msg, "%s:%zu: field \"id\" must be a string or a number", file, line);
        else msg[0] = 0;
        if (msg[0]) { cJSON_Delete(j); free(buf); return cli_fail("embed", msg); }
        if (in->n == in->cap) {
            size_t nc = in->cap ? in->cap * 2 : 256;
            char **a = realloc(in->text, nc * sizeof *a), **b = a ? realloc(in->id, nc * sizeof *b) : NULL;
            if (a) in->text = a;
            if (!b) { cJSON_Delete(j); free(buf); return cli_fail("embed", "out of memory"); }
            in->id = b; in->cap = nc;
        }
        in->text[in->n] = strdup(t->valuestring);
        in->id[in->n] = id ? cJSON_PrintUnformatted(id) : NULL;
        cJSON_Delete(j);
        if (!in->text[in->n]) { free(buf); return cli_fail("embed", "out of memory"); }
        in->n++;
    }
    free(buf);
    return 0;
}

static void print_row(const char *id, const float *v, int dim, int json) {
    if (json) {
        fputc('{', stdout);
        if (id) printf("\"id\": %s, ", id);
        fputs("\"embedding\": [", stdout);
        for (int i = 0; i < dim; i++) printf(i ? ", %.9g" : "%.9g", v[i]);
        fputs("]}\n", stdout);
    } else {
        if (id) printf("%s\t", id);
        for (int i = 0; i < dim; i++) printf(i ? " %.9g" : "%.9g", v[i]);
        fputc('\n', stdout);
    }
}

int cmd_embed(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *file = NULL, *device = NULL, *instruction = NULL;
    int json = 0, threads = 0, batch = 32, quiet = 0, pool = -1, normalize = 0, query = 0;
    static const char *const pools[] = {"last", "mean", "cls", NULL};
    cli_opt own[] = {
        CLI_OPT_MODEL(&model, "sentence-transformers folder, Llama-family model folder or short name\n"
                      "(all-minilm-l6-v2)"),
        CLI_STR("text", 0, &text, "S", "one text"),
        CLI_STR("file", 0, &file, "F.jsonl", "texts, one {\"text\": S} (optional \"id\") per line"),
        CLI_OPT_JSON(&json, "one line {\"embedding\": [...]} per input (with \"id\" when the input has one);\n"
                     "default: the values separated by spaces (after the id and a tab)"),
        CLI_INT("batch", 0, &batch, 1, 4096, "N", "texts per forward pass (sorted by length, padded to the longest)"),
        CLI_CHOOSE("pool", 0, &pool, pools, NULL, NULL, "pooling instead of the folder's Pooling config: last token, mean\n"
                   "or first token (a Llama-family folder without modules.json needs it)",
                   .def_text = "the folder's"),
        CLI_BOOL("normalize", 0, &normalize, "L2-normalize the vectors (besides a folder's Normalize module)"),
        CLI_BOOL("query", 0, &query, "embed the texts as queries: the model's query prompt in front\n"
                 "(config_sentence_transformers.json prompts.query, or --query-instruction)"),
        CLI_STR("query-instruction", 0, &instruction, "TASK", "queries become \"Instruct: TASK\\nQuery:TEXT\"\n"
                "(Qwen3-Embedding style; documents stay plain)", .flags = CLI_NO_DEFAULT),
        CLI_BOOL("quiet", 'q', &quiet, "no progress bar"),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&device),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "embed",
        .usage = "lmadapt embed --model M (--text S | --file F.jsonl) [--json] [options]",
        .about = "Sentence embeddings with a sentence-transformers model (BERT family: its pooling and\n"
                 "Normalize modules, inputs truncated at max_seq_length) or a Llama-family decoder\n"
                 "(Qwen3-Embedding style: last-token or mean pooling of the final hidden states), one\n"
                 "vector per input in input order. docs/embed.md.\n",
        .groups = groups,
        .epilog = "Example: lmadapt embed --model all-minilm-l6-v2 --text \"How do I reset my password?\" --json\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (!!text + !!file != 1) return cli_usage_error("embed", "give exactly one of --text, --file");
    if (cli_resolve_model("embed", &model)) return 1;
    inputs in = {0};
    if (file) {
        if ((rc = read_jsonl(file, &in))) return rc;
    } else {
        in.text = malloc(sizeof *in.text); in.id = malloc(sizeof *in.id);
        if (!in.text || !in.id || !(in.text[0] = strdup(text))) { inputs_free(&in); return cli_fail("embed", "out of memory"); }
        in.id[0] = NULL; in.n = in.cap = 1;
    }
    lma_threads_set(threads);
    const lma_backend *be = cli_backend("embed", device);
    lma_embedder *e = NULL;
    lma_embed_options eo = {.pool = pool >= 0 ? pools[pool] : NULL, .normalize = normalize ? 1 : -1,
                            .query_instruction = instruction};
    if (!be || lma_embedder_load_ex(model, be, &eo, &e) != LMA_OK) { inputs_free(&in); return be ? cli_fail("embed", NULL) : 1; }
    lma_embedder_set_batch(e, batch);
    int dim = lma_embedder_dim(e);
    float *v = malloc((size_t)CHUNK * dim * sizeof *v);
    if (!v) { lma_embedder_free(e); inputs_free(&in); return cli_fail("embed", "out of memory"); }
    lma_progress pr;
    int show = file && !quiet;
    if (show) lma_progress_start(&pr, "embed", (int64_t)in.n);
    for (size_t s = 0; s < in.n; s += CHUNK) {
        size_t m = in.n - s < CHUNK ? in.n - s : CHUNK;
        if (lma_embed(e, (const char *const *)in.text + s, m, query, v) != LMA_OK) {
            free(v); lma_embedder_free(e); inputs_free(&in);
            return cli_fail("embed", NULL);
        }
        for (size_t i = 0; i < m; i++) print_row(in.id[s + i], v + i * (size_t)dim, dim, json);
        if (show) lma_progress_update(&pr, (int64_t)(s + m));
    }
    if (show) lma_progress_finish(&pr);
    free(v);
    lma_embedder_free(e);
    inputs_free(&in);
    return fflush(stdout) ? cli_fail("embed", "cannot write the output") : 0;
}
