/* lmadapt rag index | search | ask | eval: retrieval-augmented generation over an SQLite
 * store (src/rag/, docs/rag.md). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/backend.h"
#include "cli.h"
#include "core/buf.h"
#include "core/io.h"
#include "core/model_path.h"
#include "core/progress.h"
#include "core/threads.h"
#include "infer/embed.h"
#include "infer/generate.h"
#include "opts.h"
#include "rag/ask.h"
#include "rag/encoder.h"
#include "rag/extract.h"
#include "rag/index.h"
#include "rag/make_sft.h"
#include "rag/metrics.h"
#include "rag/search.h"
#include "rag/store.h"
#include "sampling.h"
#include "tok/chat_template.h"

static const char *const mode_names[] = LMA_RAG_MODE_NAMES;

/* The embedding model of a store: --embed, else the one it was indexed with. */
typedef struct {
    lma_embedder *e;
    lma_rag_encoder enc;
    const lma_backend *be; /* --device: the embedder's and the exact scan's */
    char name[1024];
} rag_embed;

static int open_embed(const char *cmd, lma_rag_store *s, const char *embed, const char *device, rag_embed *out) {
    memset(out, 0, sizeof *out);
    out->enc = lma_rag_encoder_words();
    char *stored = NULL;
    if (!embed) {
        if (s->ops->meta_get(s, "embed_model", &stored) != LMA_OK) return cli_fail(cmd, NULL);
        if (!stored || !*stored || !strcmp(stored, "words")) { free(stored); return 0; } /* BM25 only */
        embed = stored;
    }
    snprintf(out->name, sizeof out->name, "%s", embed);
    free(stored);
    char path[4096];
    if (lma_model_path_resolve(out->name, path, sizeof path) != LMA_OK) return cli_fail(cmd, NULL);
    const lma_backend *be = cli_backend(cmd, device);
    if (!be) return 1;
    if (lma_embedder_load(path, be, &out->e) != LMA_OK) return cli_fail(cmd, NULL);
    out->be = be;
    out->enc = lma_rag_encoder_embedder(out->e, out->name);
    return 0;
}

/* --where KEY=VALUE */
static int make_filter(const char *cmd, const char *path_glob, const char *where, lma_rag_filter *f, char *key, size_t cap) {
    memset(f, 0, sizeof *f);
    f->path_glob = path_glob;
    if (where) {
        const char *eq = strchr(where, '=');
        if (!eq || eq == where || (size_t)(eq - where) >= cap) return cli_usage_error(cmd, "--where %s: expected KEY=VALUE", where);
        memcpy(key, where, eq - where);
        key[eq - where] = 0;
        f->meta_key = key, f->meta_value = eq + 1;
    }
    return 0;
}

#define RAG_FILTER_OPTS(glob, where) \
    CLI_STR("path", 0, glob, "GLOB", "only documents whose file path matches (SQLite GLOB: docs/*.md)"), \
    CLI_STR("where", 0, where, "KEY=VALUE", "only documents whose metadata field KEY equals VALUE")

/* ---- index ---------------------------------------------------------------------------- */
static int quiet_flag;
static void on_file(void *ctx, const char *path, const char *what, size_t n) {
    (void)ctx;
    if (quiet_flag || !strcmp(what, "unchanged")) return;
    if (!strcmp(what, "removed")) fprintf(stderr, "removed %s\n", path);
    else fprintf(stderr, "%s %s (%zu chunks)\n", what, path, n);
}

static int do_index(int argc, char **argv) {
    const char *db = NULL, *embed = NULL, *device = NULL;
    const char *pv[256];
    cli_list paths = CLI_LIST_OF(pv);
    lma_rag_index_params ip = lma_rag_index_defaults();
    int no_graph = 0, threads = 0, json = 0;
    quiet_flag = 0;
    cli_opt own[] = {
        CLI_STR("db", 0, &db, "F", "the store (.sqlite; created when missing)", .flags = CLI_REQUIRED),
        CLI_STR("embed", 0, &embed, "M", "embedding model (sentence-transformers folder or short name, e.g.\n"
                "all-minilm-l6-v2); an existing store keeps the one it was made with; a new\n"
                "store without it holds no vectors (BM25 only) and sizes chunks in words",
                .flags = CLI_NO_DEFAULT),
        CLI_INT("chunk-tokens", 0, &ip.chunk_tokens, 8, 100000, "N", "largest chunk, in the embedder's tokens"),
        CLI_INT("overlap-tokens", 0, &ip.overlap_tokens, 0, 100000, "N", "tokens of whole sentences shared by neighbouring chunks"),
        CLI_INT("batch", 0, &ip.batch, 1, 4096, "N", "chunks per embedding call"),
        CLI_INT("hnsw-m", 0, &ip.hnsw.M, 2, 256, "N", "HNSW links per node (2N at level 0)"),
        CLI_INT("ef-construction", 0, &ip.hnsw.ef_construction, 1, 100000, "N", "HNSW beam width while inserting"),
        CLI_BOOL("no-graph", 0, &no_graph, "do not build the HNSW graph (vector search scans)"),
        CLI_BOOL("quiet", 'q', &quiet_flag, "no per-file progress on stderr"),
        CLI_OPT_JSON(&json, "print the summary as one JSON object"),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&device),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "rag index",
        .usage = "lmadapt rag index --db F.sqlite [--embed M] PATH... [options]",
        .about = "Indexes files and folders (recursively) into a RAG store: .txt, .md, .html (tags stripped,\n"
                 "entities decoded), .jsonl ({\"id\", \"text\"} per line, other fields kept as metadata).\n"
                 "Documents are cut into chunks of at most --chunk-tokens tokens at sentence or line\n"
                 "boundaries (a short document stays whole), embedded, and written with a full-text index\n"
                 "and an HNSW graph. Run it again to update: only files whose content changed are re-read,\n"
                 "files gone from the given folders are dropped. Each file is one transaction: an\n"
                 "interrupted run loses at most the file in flight.\n",
        .groups = groups,
        .epilog = "Example: lmadapt rag index --db docs.sqlite --embed all-minilm-l6-v2 docs README.md\n",
        .pos_name = "PATH", .pos_list = &paths};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    if (paths.n == 0) return cli_usage_error(cmd, "give at least one PATH to index");
    if (ip.overlap_tokens >= ip.chunk_tokens) return cli_require(&a, 0, "overlap-tokens", "<", "chunk-tokens");
    ip.graph = !no_graph;
    ip.on_file = on_file;
    lma_threads_set(threads);
    lma_rag_store *s;
    if (lma_rag_store_open_sqlite(db, 1, &s) != LMA_OK) return cli_fail(cmd, NULL);
    rag_embed re = {0};
    rc = 1;
    if (open_embed(cmd, s, embed, device, &re)) goto out; /* no --embed: the store's own, or none */
    if (re.enc.max_tokens > 0 && ip.chunk_tokens > re.enc.max_tokens) {
        fprintf(stderr, "lmadapt %s: --chunk-tokens %d is over %s's limit: using %d\n", cmd, ip.chunk_tokens, re.name,
                re.enc.max_tokens);
        ip.chunk_tokens = re.enc.max_tokens;
        if (ip.overlap_tokens >= ip.chunk_tokens) ip.overlap_tokens = ip.chunk_tokens / 4;
    }
    lma_rag_index_stats st;
    if (lma_rag_index(s, &re.enc, paths.v, paths.n, &ip, &st) != LMA_OK) { cli_fail(cmd, NULL); goto out; }
    int64_t total = 0;
    s->ops->chunk_count(s, &total);
    if (json)
        printf("{\"added\": %zu, \"changed\": %zu, \"unchanged\": %zu, \"removed\": %zu, \"documents\": %zu, "
               "\"chunks\": %zu, \"graph_added\": %zu, \"graph_removed\": %zu, \"total_chunks\": %lld}\n",
               st.added, st.changed, st.unchanged, st.removed, st.docs, st.chunks, st.graph_added, st.graph_removed,
               (long long)total);
    else
        printf("%s: %zu files added, %zu changed, %zu unchanged, %zu removed; %zu documents, %zu chunks written; "
               "%lld chunks in all\n", db, st.added, st.changed, st.unchanged, st.removed, st.docs, st.chunks, (long long)total);
    rc = 0;
out:
    lma_embedder_free(re.e);
    lma_rag_store_close(s);
    return rc;
}

/* ---- queries (search, eval) -------------------------------------------------------------- */
typedef struct {
    char *id, *text;
    cJSON *obj; /* the whole line (eval reads labels from it) */
} query;

static int read_queries(const char *cmd, const char *path, query **out, size_t *n) {
    char *data;
    size_t len, cap = 0, line = 0;
    *out = NULL, *n = 0;
    if (lma_read_file(path, &data, &len) != LMA_OK) return cli_fail(cmd, NULL);
    for (char *p = data, *e; p < data + len; p = e + 1) {
        e = memchr(p, '\n', data + len - p);
        if (!e) e = data + len;
        line++;
        char *q = p;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q == e) continue;
        cJSON *o = cJSON_ParseWithLength(p, e - p);
        cJSON *t = o ? cJSON_GetObjectItemCaseSensitive(o, "text") : NULL;
        if (!t && o) t = cJSON_GetObjectItemCaseSensitive(o, "question");
        if (!cJSON_IsString(t)) {
            fprintf(stderr, "lmadapt %s: %s:%zu: %s\n", cmd, path, line,
                    o ? "field \"text\" (or \"question\") missing or not a string" : "not a JSON object");
            cJSON_Delete(o);
            free(data);
            return 1;
        }
        if (lma_grow(out, &cap, *n + 1, sizeof **out, 64, "queries")) { cJSON_Delete(o); free(data); return cli_fail(cmd, NULL); }
        cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        char idb[64];
        if (cJSON_IsString(id)) snprintf(idb, sizeof idb, "%.63s", id->valuestring);
        else if (cJSON_IsNumber(id)) snprintf(idb, sizeof idb, "%.17g", id->valuedouble);
        else snprintf(idb, sizeof idb, "%zu", line);
        (*out)[*n] = (query){strdup(cJSON_IsString(id) ? id->valuestring : idb), strdup(t->valuestring), o};
        (*n)++;
    }
    free(data);
    return 0;
}

static void free_queries(query *q, size_t n) {
    for (size_t i = 0; i < n; i++) free(q[i].id), free(q[i].text), cJSON_Delete(q[i].obj);
    free(q);
}

static int do_search(int argc, char **argv) {
    const char *db = NULL, *embed = NULL, *device = NULL, *queries = NULL, *query_s = NULL, *glob = NULL, *where = NULL;
    int json = 0, threads = 0, mode = LMA_RAG_HYBRID, preview = 160;
    lma_rag_search_params sp = lma_rag_search_defaults();
    long long hnsw_min = sp.hnsw_min;
    cli_opt own[] = {
        CLI_STR("db", 0, &db, "F", "the store", .flags = CLI_REQUIRED),
        CLI_CHOOSE("mode", 0, &mode, mode_names, NULL, NULL, "bm25 (full text), vector (embeddings) or hybrid (reciprocal\n"
                   "rank fusion of both, k = 60)", .def_text = "hybrid, or bm25 for a store without vectors"),
        CLI_INT("k", 'k', &sp.k, 1, 10000, "N", "hits per query"),
        CLI_STR("queries", 0, &queries, "Q.jsonl", "queries, one {\"id\", \"text\"} per line"),
        RAG_FILTER_OPTS(&glob, &where),
        CLI_OPT_JSON(&json, "one line per query: {\"id\", \"hits\": [{\"doc_id\", \"chunk\", \"score\", \"text\"}]}"),
        CLI_INT("preview", 0, &preview, 0, 1000000, "N", "text output: characters of each hit shown"),
        CLI_STR("embed", 0, &embed, "M", "embedding model", .def_text = "the one the store was indexed with"),
        CLI_I64("hnsw-min", 0, &hnsw_min, 0, INT64_MAX, "N", "search the HNSW graph from this many chunks on\n"
                "(below: the exact scan; 0: always exact)"),
        CLI_INT("ef", 0, &sp.ef_search, 0, 100000, "N", "HNSW beam width", .def_text = "max(64, 2k)"),
        CLI_INT("rrf-k", 0, &sp.rrf_k, 1, 100000, "N", "hybrid: the k of reciprocal rank fusion"),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&device),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "rag search",
        .usage = "lmadapt rag search --db F (QUERY | --queries Q.jsonl) [--mode bm25|vector|hybrid] [--k N] [options]",
        .about = "Retrieves the chunks of a RAG store that best match a query: BM25 over the full-text\n"
                 "index (k1 1.2, b 0.75), cosine similarity of embeddings (exact with BLAS, or the HNSW\n"
                 "graph on large stores), or both fused by reciprocal rank.\n",
        .groups = groups,
        .epilog = "Example: lmadapt rag search --db docs.sqlite --k 5 \"how do I train a LoRA adapter\"\n",
        .pos_name = "QUERY", .pos_one = &query_s};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    if (!!query_s + !!queries != 1) return cli_usage_error(cmd, "give a QUERY or --queries FILE");
    char key[256];
    lma_rag_filter f;
    if (make_filter(cmd, glob, where, &f, key, sizeof key)) return 2;
    lma_threads_set(threads);
    lma_rag_store *s;
    if (lma_rag_store_open_sqlite(db, 0, &s) != LMA_OK) return cli_fail(cmd, NULL);
    rag_embed re = {0};
    query *qs = NULL;
    size_t nq = 0;
    lma_rag_searcher *sr = NULL;
    lma_rag_hit *hits = NULL;
    rc = 1;
    if (!cli_given(&a, "mode")) {
        char *dim = NULL;
        s->ops->meta_get(s, "dim", &dim);
        if (!dim || atoi(dim) <= 0) mode = LMA_RAG_BM25;
        free(dim);
    }
    if (mode != LMA_RAG_BM25 && open_embed(cmd, s, embed, device, &re)) goto out;
    if (queries) {
        if (read_queries(cmd, queries, &qs, &nq)) goto out;
    } else {
        qs = calloc(1, sizeof *qs);
        if (!qs) goto out;
        qs[0].text = strdup(query_s);
        nq = 1;
    }
    sp.mode = (lma_rag_mode)mode, sp.filter = (glob || where) ? &f : NULL, sp.hnsw_min = hnsw_min;
    hits = malloc(sp.k * sizeof *hits);
    if (!hits || lma_rag_searcher_open(s, &re.enc, &sr) != LMA_OK) { cli_fail(cmd, hits ? NULL : "out of memory"); goto out; }
    lma_rag_searcher_set_backend(sr, re.be);
    for (size_t qi = 0; qi < nq; qi++) {
        int n = 0;
        if (lma_rag_search(sr, qs[qi].text, &sp, hits, &n) != LMA_OK) { cli_fail(cmd, NULL); goto out; }
        cJSON *line = json ? cJSON_CreateObject() : NULL, *arr = NULL;
        if (json) {
            if (qs[qi].id) cJSON_AddStringToObject(line, "id", qs[qi].id);
            else cJSON_AddNullToObject(line, "id");
            arr = cJSON_AddArrayToObject(line, "hits");
        } else {
            if (nq > 1) printf("# %s: %s\n", qs[qi].id, qs[qi].text);
        }
        for (int i = 0; i < n; i++) {
            lma_rag_chunk_row row;
            if (s->ops->chunk_get(s, hits[i].id, &row) != LMA_OK) { cli_fail(cmd, NULL); cJSON_Delete(line); goto out; }
            if (json) {
                cJSON *h = cJSON_CreateObject();
                cJSON_AddStringToObject(h, "doc_id", row.doc_id);
                cJSON_AddNumberToObject(h, "chunk", row.seq);
                cJSON_AddNumberToObject(h, "score", hits[i].score);
                cJSON_AddStringToObject(h, "text", row.text);
                cJSON_AddStringToObject(h, "path", row.path);
                cJSON_AddItemToArray(arr, h);
            } else {
                for (char *c = row.text; *c; c++)
                    if (*c == '\n' || *c == '\t') *c = ' ';
                int len = (int)strlen(row.text);
                printf("%2d. %.4f  %s#%d  %.*s%s\n", i + 1, hits[i].score, row.doc_id, row.seq, len < preview ? len : preview,
                       row.text, len > preview ? "..." : "");
            }
            lma_rag_chunk_row_free(&row);
        }
        if (json) {
            char *t = cJSON_PrintUnformatted(line);
            puts(t ? t : "{}");
            free(t);
            cJSON_Delete(line);
        }
    }
    rc = 0;
out:
    free(hits);
    lma_rag_searcher_free(sr);
    free_queries(qs, nq);
    lma_embedder_free(re.e);
    lma_rag_store_close(s);
    return rc;
}

/* ---- ask -------------------------------------------------------------------------------- */
typedef struct {
    lma_model *m;
    lma_tokenizer *tok;
    int32_t stops[16];
    int n_stops;
} chat_model;

static int load_chat(const char *cmd, const char *model, const char *device, chat_model *c) {
    memset(c, 0, sizeof *c);
    const lma_backend *be = cli_backend(cmd, device);
    if (!be) return 1;
    if (lma_tok_load(model, &c->tok) != LMA_OK || lma_model_load_ex(model, be, LMA_MODEL_FROZEN, &c->m) != LMA_OK)
        return cli_fail(cmd, NULL);
    c->n_stops = lma_chat_stop_ids(model, &c->m->cfg, c->tok, c->stops, 16); /* as serve */
    return 0;
}

static void free_chat(chat_model *c) {
    lma_model_free(c->m);
    lma_tok_free(c->tok);
}

/* Retrieves, packs (rag/ask.h lma_rag_retrieve_prompt: the same as serve --rag),
 * generates. Fills rows (k) and *n_rows, the answer (malloc'd), the number of sources in
 * the prompt and the prompt's tokens. */
static lma_status answer(lma_rag_store *s, lma_rag_searcher *sr, const lma_rag_search_params *sp, chat_model *c,
                         const char *tmpl, const char *system, const char *question, size_t budget, int retrieve,
                         lma_gen_params gp, lma_rag_chunk_row *rows, double *scores, int *n_rows, char **ans,
                         size_t *n_used, size_t *prompt_tokens) {
    *ans = NULL;
    int32_t *ids = NULL;
    size_t nids = 0;
    lma_status r = lma_rag_retrieve_prompt(s, retrieve ? sr : NULL, sp, c->tok, tmpl, system, question, budget, rows,
                                           scores, n_rows, &ids, &nids, n_used);
    *prompt_tokens = nids;
    lma_gen_result res = {0};
    gp.stop_ids = c->stops, gp.n_stop_ids = c->n_stops;
    if (!r) r = lma_generate(c->m, c->tok, ids, nids, &gp, &res);
    if (!r) {
        *ans = res.text ? res.text : strdup("");
        char *t = *ans; /* trim */
        size_t len = strlen(t);
        while (len && (t[len - 1] == ' ' || t[len - 1] == '\n')) t[--len] = 0;
    }
    free(res.ids), free(ids);
    return r;
}

static int do_ask(int argc, char **argv) {
    const char *db = NULL, *embed = NULL, *device = NULL, *model = "smollm2-135m-instruct", *question = NULL, *glob = NULL,
               *where = NULL, *tmpl = NULL, *system = NULL;
    int json = 0, threads = 0, mode = LMA_RAG_HYBRID, no_retrieval = 0, budget = 1536;
    lma_rag_search_params sp = lma_rag_search_defaults();
    sp.k = 5;
    cli_sampling smp;
    cli_sampling_init(&smp, 256, 0.0f);
    cli_opt own[] = {
        CLI_STR("db", 0, &db, "F", "the store (not needed with --no-retrieval)"),
        CLI_STR("model", 0, &model, "M", "chat model: HF folder, .gguf file or short name"),
        CLI_INT("k", 'k', &sp.k, 1, 1000, "N", "sources retrieved"),
        CLI_CHOOSE("mode", 0, &mode, mode_names, NULL, NULL, "retrieval mode", .def_text = "hybrid, or bm25 for a store without vectors"),
        CLI_INT("budget", 0, &budget, 16, 10000000, "N", "most tokens of the whole prompt (template, sources, question);\n"
                "sources that do not fit are cut or left out"),
        CLI_BOOL("no-retrieval", 0, &no_retrieval, "ask the model without sources (the baseline)"),
        CLI_STR("system", 0, &system, "S", "system prompt", .def_text = "the template's own"),
        CLI_OPT_TEMPLATE(&tmpl),
        RAG_FILTER_OPTS(&glob, &where),
        CLI_OPT_JSON(&json, "print {\"question\", \"answer\", \"sources\": [{\"n\", \"doc_id\", \"chunk\", \"score\", \"text\"}],\n"
                     "\"prompt_tokens\"}"),
        CLI_STR("embed", 0, &embed, "M", "embedding model", .def_text = "the one the store was indexed with"),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&device),
        CLI_END};
    cli_opt samp[CLI_SAMPLING_NOPTS];
    cli_sampling_table(&smp, 1, samp);
    cli_group groups[] = {{NULL, own}, {"Sampling:", samp}, {0}};
    cli_spec spec = {
        .cmd = "rag ask",
        .usage = "lmadapt rag ask --db F [--model CHAT] [--k N] QUESTION [options]",
        .about = "Answers a question from a RAG store: retrieves the best chunks, numbers them as sources\n"
                 "in the prompt (within --budget tokens), asks the chat model through its template to answer\n"
                 "from them and cite them as [n], then prints the answer and the sources.\n",
        .groups = groups,
        .epilog = "Example: lmadapt rag ask --db docs.sqlite \"Which command merges a LoRA adapter?\"\n",
        .pos_name = "QUESTION", .pos_one = &question};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    if (!question) return cli_usage_error(cmd, "give a QUESTION");
    if (!db && !no_retrieval) return cli_usage_error(cmd, "give --db F (or --no-retrieval)");
    char key[256];
    lma_rag_filter f;
    if (make_filter(cmd, glob, where, &f, key, sizeof key)) return 2;
    if (cli_resolve_model(cmd, &model)) return 1;
    cli_sampling_finish(&smp);
    lma_threads_set(threads);
    lma_rag_store *s = NULL;
    rag_embed re = {0};
    lma_rag_searcher *sr = NULL;
    chat_model c = {0};
    lma_rag_chunk_row *rows = calloc(sp.k, sizeof *rows);
    double *scores = calloc(sp.k, sizeof *scores);
    int nrows = 0;
    char *ans = NULL;
    rc = 1;
    if (!no_retrieval) {
        if (lma_rag_store_open_sqlite(db, 0, &s) != LMA_OK) { cli_fail(cmd, NULL); goto out; }
        if (!cli_given(&a, "mode")) {
            char *dim = NULL;
            s->ops->meta_get(s, "dim", &dim);
            if (!dim || atoi(dim) <= 0) mode = LMA_RAG_BM25;
            free(dim);
        }
        if (mode != LMA_RAG_BM25 && open_embed(cmd, s, embed, device, &re)) goto out;
        if (lma_rag_searcher_open(s, &re.enc, &sr) != LMA_OK) { cli_fail(cmd, NULL); goto out; }
        lma_rag_searcher_set_backend(sr, re.be);
    }
    if (load_chat(cmd, model, device, &c)) goto out;
    sp.mode = (lma_rag_mode)mode, sp.filter = (glob || where) ? &f : NULL;
    size_t used = 0, ptok = 0;
    if (!rows || !scores) { cli_fail(cmd, "out of memory"); goto out; }
    if (answer(s, sr, &sp, &c, tmpl, system, question, (size_t)budget, !no_retrieval, smp.gp, rows, scores, &nrows, &ans,
               &used, &ptok) != LMA_OK) {
        cli_fail(cmd, NULL);
        goto out;
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "question", question);
        cJSON_AddStringToObject(o, "answer", ans);
        cJSON_AddItemToObject(o, "sources", lma_rag_sources_json(rows, scores, used));
        cJSON_AddNumberToObject(o, "prompt_tokens", (double)ptok);
        char *t = cJSON_PrintUnformatted(o);
        puts(t ? t : "{}");
        free(t);
        cJSON_Delete(o);
    } else {
        printf("%s\n", ans);
        if (used) printf("\nSources:\n");
        for (size_t i = 0; i < used; i++) printf("[%zu] %s#%d (%s)\n", i + 1, rows[i].doc_id, rows[i].seq, rows[i].path);
    }
    rc = 0;
out:
    for (int i = 0; rows && i < nrows; i++) lma_rag_chunk_row_free(&rows[i]);
    free(rows), free(scores), free(ans);
    free_chat(&c);
    lma_rag_searcher_free(sr);
    lma_embedder_free(re.e);
    lma_rag_store_close(s);
    return rc;
}

/* ---- eval ------------------------------------------------------------------------------- */
/* the labels of a QA line: "doc_ids" (or "doc_id") and/or "answers" (or "answer") */
static void labels(cJSON *o, const char **docs, size_t *nd, const char **ans, size_t *na, size_t cap) {
    *nd = *na = 0;
    const char *dk[] = {"doc_ids", "doc_id"}, *ak[] = {"answers", "answer"};
    for (int w = 0; w < 2; w++) {
        const char **out = w ? ans : docs;
        size_t *n = w ? na : nd;
        for (int k = 0; k < 2; k++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(o, w ? ak[k] : dk[k]), *e;
            if (cJSON_IsString(v) && *n < cap) out[(*n)++] = v->valuestring;
            if (cJSON_IsArray(v))
                cJSON_ArrayForEach(e, v) if (cJSON_IsString(e) && *n < cap) out[(*n)++] = e->valuestring;
        }
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int do_eval(int argc, char **argv) {
    const char *db = NULL, *qa = NULL, *embed = NULL, *device = NULL, *model = NULL, *modes_s = NULL, *tmpl = NULL;
    int json = 0, threads = 0, k = 10, limit = 0, budget = 1536;
    long long hnsw_min = lma_rag_search_defaults().hnsw_min;
    cli_sampling smp;
    cli_sampling_init(&smp, 64, 0.0f);
    cli_opt own[] = {
        CLI_STR("db", 0, &db, "F", "the store", .flags = CLI_REQUIRED),
        CLI_STR("qa", 0, &qa, "QA.jsonl", "one {\"id\", \"question\" (or \"text\"), \"doc_ids\": [...] and/or \"answers\": [...]}\n"
                "per line", .flags = CLI_REQUIRED),
        CLI_INT("k", 'k', &k, 1, 10000, "N", "retrieval depth; recall is reported at 1, 5 and N"),
        CLI_STR("modes", 0, &modes_s, "LIST", "comma-separated modes", .def_text = "bm25,vector,hybrid (bm25 without vectors)"),
        CLI_INT("limit", 0, &limit, 0, 100000000, "N", "first N questions only (0: all)"),
        CLI_STR("model", 0, &model, "M", "also answer each question with this chat model (hybrid retrieval, k 5):\n"
                "exact match, F1 and the share of answers citing a source that holds the answer",
                .flags = CLI_NO_DEFAULT),
        CLI_INT("budget", 0, &budget, 16, 10000000, "N", "with --model: prompt budget in tokens"),
        CLI_OPT_TEMPLATE(&tmpl),
        CLI_OPT_JSON(&json, "one JSON object per mode (and one for the answers)"),
        CLI_STR("embed", 0, &embed, "M", "embedding model", .def_text = "the one the store was indexed with"),
        CLI_I64("hnsw-min", 0, &hnsw_min, 0, INT64_MAX, "N", "search the HNSW graph from this many chunks on"),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&device),
        CLI_END};
    cli_opt samp[CLI_SAMPLING_NOPTS];
    cli_sampling_table(&smp, 1, samp);
    cli_group groups[] = {{NULL, own}, {"Sampling (with --model):", samp}, {0}};
    cli_spec spec = {
        .cmd = "rag eval",
        .usage = "lmadapt rag eval --db F --qa QA.jsonl [--k N] [--model CHAT] [options]",
        .about = "Measures retrieval on labelled questions, for each mode: recall@1, recall@5, recall@k,\n"
                 "MRR@10 and nDCG@10. A hit is a chunk of a labelled document (\"doc_ids\"; each document\n"
                 "counts once) or, without doc ids, the first chunk containing one of the \"answers\"\n"
                 "(case-insensitive). With --model, also the answers' exact match and F1 (SQuAD's\n"
                 "normalization) and the share citing a source that contains an answer.\n",
        .groups = groups,
        .epilog = "Example: lmadapt rag eval --db squad.sqlite --qa tests/data/squad/qa.jsonl\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    if (model && cli_resolve_model(cmd, &model)) return 1;
    cli_sampling_finish(&smp);
    lma_threads_set(threads);
    lma_rag_store *s;
    if (lma_rag_store_open_sqlite(db, 0, &s) != LMA_OK) return cli_fail(cmd, NULL);
    rag_embed re = {0};
    query *qs = NULL;
    size_t nq = 0;
    lma_rag_searcher *sr = NULL;
    lma_rag_hit *hits = malloc(k * sizeof *hits);
    int *gains = malloc(k * sizeof *gains);
    double *lat = NULL; /* per-question search time, ms */
    chat_model c = {0};
    rc = 1;
    char *dim = NULL;
    s->ops->meta_get(s, "dim", &dim);
    int has_vec = dim && atoi(dim) > 0;
    free(dim);
    int modes[3], nm = 0;
    if (modes_s) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", modes_s);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int m = -1;
            for (int i = 0; mode_names[i]; i++)
                if (!strcmp(t, mode_names[i])) m = i;
            if (m < 0 || nm == 3) { rc = cli_usage_error(cmd, "--modes: unknown mode '%s' (bm25, vector, hybrid)", t); goto out; }
            modes[nm++] = m;
        }
    } else {
        modes[nm++] = LMA_RAG_BM25;
        if (has_vec) modes[nm++] = LMA_RAG_VECTOR, modes[nm++] = LMA_RAG_HYBRID;
    }
    int need_vec = 0;
    for (int i = 0; i < nm; i++) need_vec |= modes[i] != LMA_RAG_BM25;
    if ((need_vec || (model && has_vec)) && open_embed(cmd, s, embed, device, &re)) goto out;
    if (read_queries(cmd, qa, &qs, &nq)) goto out;
    if (limit > 0 && (size_t)limit < nq) {
        for (size_t i = (size_t)limit; i < nq; i++) free(qs[i].id), free(qs[i].text), cJSON_Delete(qs[i].obj);
        nq = (size_t)limit;
    }
    lat = malloc((nq ? nq : 1) * sizeof *lat);
    if (!hits || !gains || !lat || lma_rag_searcher_open(s, &re.enc, &sr) != LMA_OK) { cli_fail(cmd, NULL); goto out; }
    lma_rag_searcher_set_backend(sr, re.be);
    if (!json) {
        char h[16];
        snprintf(h, sizeof h, "recall@%d", k);
        printf("%-7s %9s %9s %9s %9s %9s %6s\n", "mode", "recall@1", "recall@5", h, "MRR@10", "nDCG@10", "n");
    }
    for (int mi = 0; mi < nm; mi++) {
        lma_rag_search_params sp = lma_rag_search_defaults();
        sp.mode = (lma_rag_mode)modes[mi], sp.k = k, sp.hnsw_min = hnsw_min;
        double r1 = 0, r5 = 0, rk = 0, mrr = 0, ndcg = 0;
        size_t counted = 0;
        for (size_t qi = 0; qi < nq; qi++) {
            const char *docs[64], *ans[64];
            size_t nd, na;
            labels(qs[qi].obj, docs, &nd, ans, &na, 64);
            if (!nd && !na) continue;
            int n = 0;
            double t0 = lma_now();
            if (lma_rag_search(sr, qs[qi].text, &sp, hits, &n) != LMA_OK) { cli_fail(cmd, NULL); goto out; }
            lat[counted] = (lma_now() - t0) * 1e3;
            int seen[64] = {0}, found_ans = 0;
            for (int i = 0; i < n; i++) {
                lma_rag_chunk_row row;
                if (s->ops->chunk_get(s, hits[i].id, &row) != LMA_OK) { cli_fail(cmd, NULL); goto out; }
                gains[i] = 0;
                if (nd) {
                    for (size_t d = 0; d < nd; d++)
                        if (!seen[d] && !strcmp(row.doc_id, docs[d])) seen[d] = 1, gains[i] = 1;
                } else if (!found_ans) {
                    for (size_t j = 0; j < na && !gains[i]; j++) gains[i] = lma_rag_contains(row.text, ans[j]);
                    found_ans = gains[i];
                }
                lma_rag_chunk_row_free(&row);
            }
            size_t nrel = nd ? nd : 1;
            r1 += lma_rag_recall_at(gains, n, nrel, 1), r5 += lma_rag_recall_at(gains, n, nrel, 5);
            rk += lma_rag_recall_at(gains, n, nrel, k), mrr += lma_rag_mrr10(gains, n), ndcg += lma_rag_ndcg10(gains, n, nrel);
            counted++;
        }
        double d = counted ? (double)counted : 1;
        qsort(lat, counted, sizeof *lat, cmp_double);
        double p50 = counted ? lat[counted / 2] : 0, p99 = counted ? lat[(size_t)(counted * 0.99)] : 0;
        if (json) /* search time per question (query embedding included), the index as p50/p99 */
            printf("{\"mode\": \"%s\", \"recall@1\": %.6f, \"recall@5\": %.6f, \"recall@%d\": %.6f, \"mrr@10\": %.6f, "
                   "\"ndcg@10\": %.6f, \"n\": %zu, \"query_p50_ms\": %.3f, \"query_p99_ms\": %.3f}\n", mode_names[modes[mi]],
                   r1 / d, r5 / d, k, rk / d, mrr / d, ndcg / d, counted, p50, p99);
        else
            printf("%-7s %9.4f %9.4f %9.4f %9.4f %9.4f %6zu\n", mode_names[modes[mi]], r1 / d, r5 / d, rk / d, mrr / d,
                   ndcg / d, counted);
        fflush(stdout);
    }
    if (model) {
        if (load_chat(cmd, model, device, &c)) goto out;
        lma_rag_search_params sp = lma_rag_search_defaults();
        sp.mode = has_vec ? LMA_RAG_HYBRID : LMA_RAG_BM25, sp.k = 5, sp.hnsw_min = hnsw_min;
        lma_rag_chunk_row rows[5];
        double scores[5], em = 0, f1 = 0, cite = 0;
        size_t counted = 0;
        for (size_t qi = 0; qi < nq; qi++) {
            const char *docs[64], *ans[64];
            size_t nd, na;
            labels(qs[qi].obj, docs, &nd, ans, &na, 64);
            if (!na) continue;
            int nr = 0;
            char *out_text = NULL;
            size_t used, ptok;
            if (answer(s, sr, &sp, &c, tmpl, NULL, qs[qi].text, (size_t)budget, 1, smp.gp, rows, scores, &nr, &out_text,
                       &used, &ptok) != LMA_OK) {
                cli_fail(cmd, NULL);
                for (int i = 0; i < nr; i++) lma_rag_chunk_row_free(&rows[i]);
                goto out;
            }
            /* the answer without its citations, for EM/F1 */
            char *plain = strdup(out_text);
            for (char *p = strchr(plain, '['); p; p = strchr(p, '[')) {
                char *e = strchr(p, ']');
                if (!e) break;
                memmove(p, e + 1, strlen(e + 1) + 1);
            }
            em += lma_rag_exact_match(plain, ans, na), f1 += lma_rag_f1(plain, ans, na);
            uint64_t cited = lma_rag_citations(out_text);
            int good = 0;
            for (size_t i = 0; i < used && i < 64; i++)
                if (cited >> i & 1)
                    for (size_t j = 0; j < na; j++) good |= lma_rag_contains(rows[i].text, ans[j]);
            cite += good;
            counted++;
            free(plain), free(out_text);
            for (int i = 0; i < nr; i++) lma_rag_chunk_row_free(&rows[i]);
        }
        double d = counted ? (double)counted : 1;
        if (json)
            printf("{\"answers\": \"%s\", \"exact_match\": %.6f, \"f1\": %.6f, \"citing_a_source_with_the_answer\": %.6f, "
                   "\"n\": %zu}\n", mode_names[sp.mode], em / d, f1 / d, cite / d, counted);
        else
            printf("\nanswers (%s, k 5): exact match %.4f  F1 %.4f  citing a source with the answer %.4f  (n %zu)\n",
                   mode_names[sp.mode], em / d, f1 / d, cite / d, counted);
    }
    rc = 0;
out:
    free(hits), free(gains), free(lat);
    free_chat(&c);
    lma_rag_searcher_free(sr);
    free_queries(qs, nq);
    lma_embedder_free(re.e);
    lma_rag_store_close(s);
    return rc;
}

/* ---- make-sft ----------------------------------------------------------------------- */
static int do_make_sft(int argc, char **argv) {
    const char *db = NULL, *qa = NULL, *out = NULL, *embed = NULL, *device = NULL;
    int threads = 0, limit = 0, mode = LMA_RAG_HYBRID, quiet = 0;
    lma_rag_sft_params p = {.search = lma_rag_search_defaults(), .distractors = 2, .oracle_share = 0.8, .seed = 0};
    p.search.k = 5;
    unsigned long long seed = 0;
    cli_opt own[] = {
        CLI_STR("db", 0, &db, "F", "the store", .flags = CLI_REQUIRED),
        CLI_STR("qa", 0, &qa, "QA.jsonl", "one {\"id\", \"question\" (or \"text\"), \"answers\": [...], \"doc_ids\": [...]\n"
                "(optional)} per line (rag eval's format)", .flags = CLI_REQUIRED),
        CLI_STR("out", 'o', &out, "F.jsonl", "the SFT examples (lmadapt sft --data F.jsonl)", .flags = CLI_REQUIRED),
        CLI_INT("k", 'k', &p.search.k, 1, 1000, "N", "passages retrieved per question"),
        CLI_INT("distractors", 0, &p.distractors, 0, 1000, "K", "random chunks without the answer added per question"),
        CLI_REALV("oracle-share", 0, &p.oracle_share, 0, 1, "P", "share of questions whose passage with the answer is kept\n"
                  "(the rest: removed, and the answer is the refusal)"),
        CLI_U64("seed", 0, &seed, "S", "random seed (oracle draws, distractors, source order)"),
        CLI_CHOOSE("mode", 0, &mode, mode_names, NULL, NULL, "retrieval mode", .def_text = "hybrid, or bm25 for a store without vectors"),
        CLI_INT("limit", 0, &limit, 0, 100000000, "N", "first N questions only (0: all)"),
        CLI_STR("embed", 0, &embed, "M", "embedding model", .def_text = "the one the store was indexed with"),
        CLI_BOOL("quiet", 'q', &quiet, "no summary on stderr"),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&device),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "rag make-sft",
        .usage = "lmadapt rag make-sft --db F --qa QA.jsonl --out sft.jsonl [--k N] [--distractors K]\n"
                 "       [--oracle-share P] [--seed S] [options]",
        .about = "Makes supervised fine-tuning data for answering from sources (RAFT): each question with\n"
                 "its retrieved passages plus K random distractors, numbered as rag ask numbers them, in\n"
                 "exactly rag ask's user message; the answer cites the passage that holds it as [n]. For\n"
                 "a share 1-P of the questions the passage with the answer is removed and the answer is\n"
                 "\"" LMA_RAG_REFUSAL "\"\n"
                 "Output: OpenAI messages JSONL (lmadapt sft), one line per question, with \"id\",\n"
                 "\"oracle\", \"gold\" (the cited number, 0 when none) and \"sources\" beside \"messages\".\n",
        .groups = groups,
        .epilog = "Example: lmadapt rag make-sft --db squad.sqlite --qa tests/data/squad/qa.jsonl --out rag_sft.jsonl\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *cmd = spec.cmd;
    p.seed = seed;
    lma_threads_set(threads);
    lma_rag_store *s;
    if (lma_rag_store_open_sqlite(db, 0, &s) != LMA_OK) return cli_fail(cmd, NULL);
    rag_embed re = {0};
    query *qs = NULL;
    size_t nq = 0, n_all = 0, written = 0, skipped = 0, refusals = 0;
    int64_t *all = NULL;
    lma_rag_searcher *sr = NULL;
    lma_atomic_file af;
    int af_open = 0;
    lma_buf line = {0};
    rc = 1;
    if (!cli_given(&a, "mode")) {
        char *dim = NULL;
        s->ops->meta_get(s, "dim", &dim);
        if (!dim || atoi(dim) <= 0) mode = LMA_RAG_BM25;
        free(dim);
    }
    if (mode != LMA_RAG_BM25 && open_embed(cmd, s, embed, device, &re)) goto out;
    if (read_queries(cmd, qa, &qs, &nq)) goto out;
    if (limit > 0 && (size_t)limit < nq) {
        for (size_t i = (size_t)limit; i < nq; i++) free(qs[i].id), free(qs[i].text), cJSON_Delete(qs[i].obj);
        nq = (size_t)limit;
    }
    p.search.mode = (lma_rag_mode)mode;
    if (s->ops->chunk_ids(s, &all, &n_all) != LMA_OK || lma_rag_searcher_open(s, &re.enc, &sr) != LMA_OK ||
        lma_atomic_open(&af, out) != LMA_OK) {
        cli_fail(cmd, NULL);
        goto out;
    }
    af_open = 1;
    for (size_t qi = 0; qi < nq; qi++) {
        const char *docs[64], *ans[64];
        size_t nd, na;
        labels(qs[qi].obj, docs, &nd, ans, &na, 64);
        if (!na) {
            fprintf(stderr, "lmadapt %s: %s: question %s has no \"answers\"\n", cmd, qa, qs[qi].id);
            goto out;
        }
        lma_rag_sft_example ex;
        int skip = 0;
        if (lma_rag_sft_example_make(s, sr, &p, all, n_all, qi, qs[qi].text, ans, na, docs, nd, &ex, &skip) != LMA_OK) {
            cli_fail(cmd, NULL);
            goto out;
        }
        if (skip) {
            if (!quiet) fprintf(stderr, "lmadapt %s: skipped %s: no chunk of the store contains its answer\n", cmd, qs[qi].id);
            skipped++;
            continue;
        }
        cJSON *o = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(o, "messages"), *m;
        m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", ex.user);
        cJSON_AddItemToArray(msgs, m);
        m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", ex.answer);
        cJSON_AddItemToArray(msgs, m);
        cJSON_AddStringToObject(o, "id", qs[qi].id);
        cJSON_AddBoolToObject(o, "oracle", ex.oracle);
        cJSON_AddNumberToObject(o, "gold", ex.gold);
        cJSON *arr = cJSON_AddArrayToObject(o, "sources");
        for (size_t i = 0; i < ex.n_sources; i++) {
            lma_rag_chunk_row row;
            if (s->ops->chunk_get(s, ex.chunk_ids[i], &row) != LMA_OK) {
                cJSON_Delete(o), lma_rag_sft_example_free(&ex);
                cli_fail(cmd, NULL);
                goto out;
            }
            cJSON *h = cJSON_CreateObject();
            cJSON_AddNumberToObject(h, "n", (double)i + 1);
            cJSON_AddStringToObject(h, "doc_id", row.doc_id);
            cJSON_AddNumberToObject(h, "chunk", row.seq);
            cJSON_AddBoolToObject(h, "distractor", ex.distractor[i]);
            cJSON_AddItemToArray(arr, h);
            lma_rag_chunk_row_free(&row);
        }
        char *t = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        refusals += !ex.oracle;
        lma_rag_sft_example_free(&ex);
        line.len = 0;
        lma_buf_str(&line, t ? t : "");
        lma_buf_str(&line, "\n");
        free(t);
        if (!t || line.st != LMA_OK || lma_atomic_write(&af, line.p, line.len) != LMA_OK) { cli_fail(cmd, NULL); goto out; }
        written++;
    }
    if (lma_atomic_commit(&af) != LMA_OK) { af_open = 0; cli_fail(cmd, NULL); goto out; }
    af_open = 0;
    if (!quiet)
        fprintf(stderr, "%s: %zu examples (%zu answered from a source, %zu refusals), %zu questions skipped\n", out, written,
                written - refusals, refusals, skipped);
    rc = 0;
out:
    if (af_open) lma_atomic_abort(&af);
    lma_buf_free(&line);
    free(all);
    lma_rag_searcher_free(sr);
    free_queries(qs, nq);
    lma_embedder_free(re.e);
    lma_rag_store_close(s);
    return rc;
}

static const char *usage_main =
    "Usage: lmadapt rag <command> [options]   (lmadapt rag <command> --help)\n"
    "Retrieval-augmented generation over an SQLite store (docs/rag.md):\n"
    "  index   index .txt/.md/.html/.jsonl files and folders (incremental)\n"
    "  search  BM25, vector or hybrid retrieval; JSON lines with --json\n"
    "  ask     answer a question from retrieved sources, citing them as [n]\n"
    "  eval    recall@k, MRR@10, nDCG@10 per mode on labelled questions (+ EM/F1 with --model)\n"
    "  make-sft  SFT data for answering from sources: retrieved passages + distractors, cited [n]\n";

int cmd_rag(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct { const char *name; int (*run)(int, char **); } subs[] = {
        {"index", do_index}, {"search", do_search}, {"ask", do_ask}, {"eval", do_eval}, {"make-sft", do_make_sft}};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(argv[1], subs[i].name)) return subs[i].run(argc - 1, argv + 1);
    fprintf(stderr, "lmadapt rag: unknown command '%s'\n%s", argv[1], usage_main);
    return 2;
}
