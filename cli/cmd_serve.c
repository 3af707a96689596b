/* lmadapt serve: the OpenAI-compatible HTTP server (src/serve/, docs/serve.md). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "core/io.h"
#include "core/model_path.h"
#include "core/threads.h"
#include "infer/generate.h"
#include "model/adapter.h"
#include "core/json.h"
#include "opts.h"
#include "sampling.h"
#include "rag/encoder.h"
#include "rag/store.h"
#include "serve/server.h"

#define MAX_KEYS 64

/* One key per line (blank lines and lines starting with '#' skipped, spaces trimmed). */
static int read_keys(const char *path, char **buf, const char **keys, int *n) {
    size_t len = 0;
    *n = 0;
    if (lma_read_file(path, buf, &len) != LMA_OK) return cli_fail("serve", NULL);
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077))
        fprintf(stderr, "lmadapt serve: warning: %s can be read by other users (chmod 600 it)\n", path);
    char *save = NULL;
    for (char *line = strtok_r(*buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t') line++;
        size_t k = strlen(line);
        while (k && (line[k - 1] == '\r' || line[k - 1] == ' ' || line[k - 1] == '\t')) line[--k] = 0;
        if (!k || line[0] == '#') continue;
        if (*n == MAX_KEYS) return cli_fail("serve", "--api-key-file: more than 64 keys");
        if (k < 16) {
            fprintf(stderr, "lmadapt serve: --api-key-file %s: a key of %zu characters is too short (16 at least)\n",
                    path, k);
            return 1;
        }
        keys[(*n)++] = line;
    }
    if (!*n) {
        fprintf(stderr, "lmadapt serve: --api-key-file %s holds no key\n", path);
        return 1;
    }
    return 0;
}

static int is_loopback(const char *host) {
    return !strncmp(host, "127.", 4) || !strcmp(host, "::1");
}

int cmd_serve(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *device = NULL, *tmpl = NULL, *host = "127.0.0.1", *key_file = NULL;
    const char *name = NULL, *embed = NULL, *rag = NULL;
    static const char *const rag_modes[] = LMA_RAG_MODE_NAMES;
    int rag_k = 5, rag_budget = 1536, rag_mode = LMA_RAG_HYBRID;
    int dequantize = 0, threads = 0, port = 8080, max_active = 8, max_queue = 64, max_conn = 64, max_per_ip = 0, timeout = 15;
    int request_timeout = 10;
    int max_prompt = 4096, max_tokens_limit = 4096, default_max_tokens = 256, context = 0, log_prompts = 0, quiet = 0;
    int max_body_kb = 1024;
    double grace = 10;
    cli_opt own[] = {
        CLI_OPT_MODEL(&model, "HF model folder, .gguf file or short name (docs/models.md)"),
        CLI_OPT_ADAPTER(&adapter),
        CLI_OPT_TEMPLATE(&tmpl),
        CLI_STR("model-name", 0, &name, "NAME", "the model id clients send and /v1/models lists",
                .def_text = "the model folder's or file's name"),
        CLI_STR("embed", 0, &embed, "E", "serve POST /v1/embeddings with this sentence-transformers model\n"
                "(folder or short name, e.g. all-minilm-l6-v2)", .flags = CLI_NO_DEFAULT),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&device),
        CLI_OPT_DEQUANTIZE(&dequantize),
        CLI_END};
    cli_opt rag_opts[] = {
        CLI_STR("rag", 0, &rag, "DB", "answer chat requests from this RAG store (lmadapt rag index) as\n"
                "'lmadapt rag ask' does, with the sources in the response's \"sources\" field\n"
                "(docs/serve.md); its embedding model is --embed, else the one it was indexed with",
                .flags = CLI_NO_DEFAULT),
        CLI_INT("rag-k", 0, &rag_k, 1, 1000, "N", "sources retrieved per question"),
        CLI_CHOOSE("rag-mode", 0, &rag_mode, rag_modes, NULL, NULL, "retrieval mode",
                   .def_text = "hybrid, or bm25 for a store without vectors"),
        CLI_INT("rag-budget", 0, &rag_budget, 16, 10000000, "N", "most tokens of a RAG prompt (sources that do not fit\n"
                "are cut or left out)"),
        CLI_END};
    cli_opt net[] = {
        CLI_STR("host", 0, &host, "ADDR", "address to listen on (IPv4 or IPv6); anything but loopback\n"
                "exposes the model to the network: use --api-key-file"),
        CLI_INT("port", 'p', &port, 0, 65535, "N", "port (0: any free port, printed at start)"),
        CLI_STR("api-key-file", 0, &key_file, "F", "require 'Authorization: Bearer KEY' with a KEY from F\n"
                "(one a line, 16 characters at least; compared in constant time)", .flags = CLI_NO_DEFAULT),
        CLI_INT("max-connections", 0, &max_conn, 1, 100000, "N", "concurrent connections (one thread each)"),
        CLI_INT("max-connections-per-ip", 0, &max_per_ip, 0, 100000, "N", "concurrent connections of one client address\n"
                "(0: no limit)"),
        CLI_INT("timeout", 0, &timeout, 1, 86400, "S", "seconds a connection may stay idle while sending its\n"
                "request or between requests (a stalled client is cut off)"),
        CLI_INT("request-timeout", 0, &request_timeout, 0, 86400, "S", "seconds a request (headers and body) may take to\n"
                "arrive, however steadily it trickles (slowloris):\n"
                "beyond, 408 and the connection is closed (0: no\n"
                "deadline; generation time does not count)"),
        CLI_INT("max-body-kb", 0, &max_body_kb, 1, 1 << 20, "KB", "largest request body (413 beyond)"),
        CLI_REALV("shutdown-grace", 0, &grace, 0, 3600, "S", "on SIGINT/SIGTERM, seconds requests in flight may\n"
                  "take to finish before they are cancelled"),
        CLI_BOOL("log-prompts", 0, &log_prompts, "show prompts in the access log (never by default)"),
        CLI_BOOL("quiet", 'q', &quiet, "no access log"),
        CLI_END};
    cli_opt gen[] = {
        CLI_OPT_MAX_ACTIVE(&max_active),
        CLI_INT("max-queue", 0, &max_queue, 0, 1000000, "N", "requests waiting for a slot (429 beyond)"),
        CLI_INT("max-prompt-tokens", 0, &max_prompt, 1, 10000000, "N", "longest prompt (400 beyond)"),
        CLI_INT("max-tokens-limit", 0, &max_tokens_limit, 1, 10000000, "N", "largest max_tokens a request may ask"),
        CLI_INT("default-max-tokens", 0, &default_max_tokens, 1, 10000000, "N", "max_tokens of a request that gives none"),
        CLI_INT("context", 0, &context, 0, 10000000, "N", "prompt + max_tokens limit",
                .def_text = "the model's max_position_embeddings"),
        CLI_END};
    /* --format / --json-schema / --grammar as generate's (cli/sampling.h): the default of a request
     * that gives no response_format */
    cli_sampling smp;
    cli_sampling_init(&smp, 1, 1);
    cli_opt fmt[CLI_SAMPLING_NOPTS];
    cli_sampling_table(&smp, CLI_SAMPLING_FORMAT | CLI_SAMPLING_NO_SAMPLER, fmt);
    cli_group groups[] = {{NULL, own}, {"Network and safety:", net}, {"Generation:", gen},
                          {"Output format (of a request without response_format):", fmt},
                          {"Retrieval (--rag):", rag_opts}, {0}};
    cli_spec spec = {
        .cmd = "serve",
        .usage = "lmadapt serve --model M [--host 127.0.0.1] [--port 8080] [--api-key-file F] [options]",
        .about = "Serves a model over HTTP with the OpenAI API: POST /v1/chat/completions (messages through\n"
                 "the model's chat template), POST /v1/completions, POST /v1/embeddings (with --embed),\n"
                 "GET /v1/models, GET /health. With --rag DB, chat requests are answered from retrieved\n"
                 "sources as rag ask does, the sources in the response. Streaming\n"
                 "with stream: true (server-sent events ending with data: [DONE]). Requests are decoded\n"
                 "together (continuous batching, --max-active); an access log line per request goes to\n"
                 "stderr. SIGINT or SIGTERM stops it gracefully. docs/serve.md has the details.\n",
        .groups = groups,
        .epilog = "Example:\n"
                  "  lmadapt serve --model smollm2-135m-instruct --port 8080 &\n"
                  "  curl -s localhost:8080/v1/chat/completions -H 'Content-Type: application/json' \\\n"
                  "    -d '{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}], \"max_tokens\": 32}'\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
#ifndef LMA_HAVE_MHD
    (void)model; (void)adapter; (void)embed; (void)device; (void)tmpl; (void)host; (void)key_file; (void)name; (void)threads;
    (void)log_prompts; (void)quiet; (void)grace; (void)is_loopback; (void)read_keys; (void)rag; (void)smp;
    return cli_fail("serve", "this build has no HTTP server: install libmicrohttpd-dev (scripts/install-deps.sh) "
                             "and rebuild");
#else
    const char *given = model, *embed_given = embed;
    if (cli_resolve_model("serve", &model)) return 1;
    if (embed && cli_resolve_model("serve", &embed)) return 1;
    if (cli_require(&a, default_max_tokens <= max_tokens_limit, "default-max-tokens", "<=", "max-tokens-limit")) return 2;
    lma_threads_set(threads);
    char *key_buf = NULL;
    const char *keys[MAX_KEYS];
    int n_keys = 0;
    if (key_file && read_keys(key_file, &key_buf, keys, &n_keys)) { free(key_buf); return 1; }
    if (!is_loopback(host) && !n_keys)
        fprintf(stderr, "lmadapt serve: warning: listening on %s without --api-key-file: anyone who can reach it "
                        "can use the model\n", host);
    const lma_backend *be = cli_backend("serve", device);
    lma_tokenizer *tok = NULL;
    lma_model *m = NULL;
    lma_server *srv = NULL;
    lma_embedder *emb = NULL;
    lma_rag_store *store = NULL;
    lma_rag_searcher *searcher = NULL;
    lma_rag_encoder enc = lma_rag_encoder_words();
    cJSON *schema = NULL;
    char *grammar = NULL;
    size_t grammar_len = 0;
    char *stored = NULL, rag_embed[4096];
    rc = 1;
    if (!be) goto done;
    if (rag) { /* the store, and its embedding model when --embed is not given */
        if (lma_rag_store_open_sqlite(rag, 0, &store) != LMA_OK) { cli_fail("serve", NULL); goto done; }
        char *dim = NULL;
        store->ops->meta_get(store, "dim", &dim);
        int has_vec = dim && atoi(dim) > 0;
        free(dim);
        if (!cli_given(&a, "rag-mode") && !has_vec) rag_mode = LMA_RAG_BM25;
        if (rag_mode != LMA_RAG_BM25 && !has_vec) {
            fprintf(stderr, "lmadapt serve: --rag %s holds no vectors: use --rag-mode bm25\n", rag);
            goto done;
        }
        if (has_vec && !embed) {
            if (store->ops->meta_get(store, "embed_model", &stored) != LMA_OK) { cli_fail("serve", NULL); goto done; }
            if (stored && *stored && lma_model_path_resolve(stored, rag_embed, sizeof rag_embed) == LMA_OK)
                embed = rag_embed, embed_given = stored;
            else if (rag_mode != LMA_RAG_BM25) {
                fprintf(stderr, "lmadapt serve: --rag %s: give --embed E (the store's embedding model '%s' is not found)\n",
                        rag, stored ? stored : "");
                goto done;
            }
        }
    }
    if (lma_tok_load(model, &tok) != LMA_OK || lma_model_load_ex(model, be, CLI_INFER_FLAGS(dequantize), &m) != LMA_OK ||
        (adapter && lma_adapter_load(m, adapter) != LMA_OK)) {
        cli_fail("serve", NULL);
        goto done;
    }
    if (embed && lma_embedder_load(embed, be, &emb) != LMA_OK) { cli_fail("serve", NULL); goto done; }
    /* --format / --json-schema / --grammar: checked now (an unsupported schema or a bad grammar stops the start) */
    if (cli_sampling_constraint(&smp, tok) != LMA_OK) { cli_fail("serve", NULL); goto done; }
    cli_sampling_free(&smp);
    if (smp.schema_path && lma_json_load(smp.schema_path, &schema) != LMA_OK) { cli_fail("serve", NULL); goto done; }
    if (smp.grammar_path && lma_read_file(smp.grammar_path, &grammar, &grammar_len) != LMA_OK) {
        cli_fail("serve", NULL);
        goto done;
    }
    if (store) {
        if (emb && rag_mode != LMA_RAG_BM25) enc = lma_rag_encoder_embedder(emb, embed_given);
        if (lma_rag_searcher_open(store, &enc, &searcher) != LMA_OK) { cli_fail("serve", NULL); goto done; }
    }
    int32_t stops[16];
    char base[256];
    if (!name) {
        snprintf(base, sizeof base, "%s", given);
        size_t k = strlen(base);
        while (k > 1 && base[k - 1] == '/') base[--k] = 0;
        const char *b = strrchr(base, '/');
        name = b ? b + 1 : base;
    }
    char ebase[256] = "";
    const char *ename = NULL;
    if (embed) {
        snprintf(ebase, sizeof ebase, "%s", embed_given);
        size_t k = strlen(ebase);
        while (k > 1 && ebase[k - 1] == '/') ebase[--k] = 0;
        const char *b = strrchr(ebase, '/');
        ename = b ? b + 1 : ebase;
    }
    /* block the stop signals in every thread (libmicrohttpd's and the engine's inherit the
     * mask); this thread waits for them below */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int ctx = context ? context : m->cfg.max_position_embeddings;
    lma_server_params sp = {
        .host = host, .port = port, .api_keys = keys, .n_api_keys = n_keys, .model_name = name,
        .embedder = emb, .embed_name = ename,
        .rag_store = store, .rag_searcher = searcher, .rag_budget = (size_t)rag_budget,
        .chat_template = tmpl, .stop_ids = stops, .n_stop_ids = lma_chat_stop_ids(model, &m->cfg, tok, stops, 16),
        .max_body = (size_t)max_body_kb * 1024, .max_prompt_tokens = max_prompt, .max_tokens_limit = max_tokens_limit,
        .default_max_tokens = default_max_tokens, .context = ctx > 1 ? ctx : 2048, .max_connections = max_conn,
        .max_per_ip = max_per_ip, .timeout_s = timeout, .request_timeout_s = request_timeout,
        .default_format = smp.schema_path ? 1 : smp.format, .default_schema = schema, .default_grammar = grammar,
        .engine = {.max_active = max_active, .max_queue = max_queue}, .log_prompts = log_prompts,
        .log = quiet ? NULL : stderr};
    sp.rag_search = lma_rag_search_defaults();
    sp.rag_search.mode = (lma_rag_mode)rag_mode, sp.rag_search.k = rag_k;
    if (lma_server_start(m, tok, &sp, &srv) != LMA_OK) { cli_fail("serve", NULL); goto done; }
    fprintf(stderr, "lmadapt serve: listening on http://%s%s%s:%d (model '%s'%s%s%s%s, %d decoded together, %s)\n",
            strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", lma_server_port(srv), name,
            ename ? ", embeddings " : "", ename ? ename : "", rag ? ", answers from " : "", rag ? rag : "", max_active,
            n_keys ? "API key required" : "no API key");
    fflush(stderr);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "lmadapt serve: %s: stopping (requests in flight have %.0f s to finish)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", grace);
    lma_server_stop(srv, grace);
    fprintf(stderr, "lmadapt serve: stopped\n");
    rc = 0;
done:
    cJSON_Delete(schema);
    free(grammar);
    lma_rag_searcher_free(searcher);
    lma_rag_store_close(store);
    free(stored);
    lma_embedder_free(emb);
    lma_model_free(m);
    lma_tok_free(tok);
    free(key_buf);
    return rc;
#endif
}
