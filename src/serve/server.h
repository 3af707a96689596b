/* lmadapt serve: an OpenAI-compatible HTTP server (libmicrohttpd) in front of the
 * serving engine (serve/engine.h).
 *
 * Routes (one table in server.c; what a route handler may use is serve/route.h):
 *   POST /v1/chat/completions   messages through the model's chat template
 *   POST /v1/completions        a raw prompt
 *   POST /v1/embeddings         with an embedder (--embed): infer/embed.h
 *   GET  /v1/models             the models served
 *   GET  /health                {"status": "ok", ...}; 503 while shutting down (no key needed)
 * With a RAG store (rag_store), POST /v1/chat/completions answers from retrieved sources
 * as `lmadapt rag ask` does (rag/ask.h lma_rag_retrieve_prompt: the same retrieval,
 * packing and prompt): the question is the last user message, the system prompt the
 * first system or developer message (other turns are not part of the RAG prompt); the
 * response carries "sources": [{"n", "doc_id", "chunk", "score", "path", "text"}] (in the
 * first chunk of a stream). /v1/completions stays a raw prompt.
 * Every error is the OpenAI error object with its HTTP status (request.h).
 *
 * Threads: libmicrohttpd's thread per connection (bounded by max_connections), a watchdog
 * (serve/watchdog.h) that closes connections whose request is not in by request_timeout_s
 * (slowloris), one engine thread that owns the model. A handler waits for its job, checking
 * that the client is still there (a closed socket cancels the job and frees its slot).
 * Ownership: the server keeps pointers to m and tok (they outlive it) and copies p's
 * strings and arrays. lma_server_stop frees it. */
#ifndef LMA_SERVE_SERVER_H
#define LMA_SERVE_SERVER_H
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include "infer/embed.h"
#include "rag/search.h"
#include "serve/engine.h"

typedef struct lma_server lma_server;

typedef struct {
    const char *host;            /* "127.0.0.1" (IPv4 or IPv6 literal) */
    int port;                    /* 0: any free port (lma_server_port tells which) */
    const char *const *api_keys; int n_api_keys; /* Bearer keys; none: no authentication */
    const char *model_name;      /* the id of /v1/models and of responses */
    lma_embedder *embedder;      /* for /v1/embeddings, or NULL (kept, not freed) */
    const char *embed_name;      /* its id */
    lma_rag_store *rag_store;    /* serve --rag: chat answers from this store, or NULL (kept, not freed) */
    lma_rag_searcher *rag_searcher; /* its searcher (with the embedder above, or BM25 only) */
    lma_rag_search_params rag_search; /* mode, k, ... */
    size_t rag_budget;           /* most tokens of a RAG prompt */
    const char *chat_template;   /* a format name, or NULL for the tokenizer's */
    const int32_t *stop_ids; int n_stop_ids; /* end of sequence / end of turn ids */
    size_t max_body;             /* bytes of a request body (413 beyond) */
    int max_prompt_tokens;       /* 400 context_length_exceeded beyond */
    int max_tokens_limit;        /* largest max_tokens a request may ask */
    int default_max_tokens;      /* when a request gives none */
    int context;                 /* prompt + max_tokens limit (the model's positions) */
    int max_connections;         /* concurrent connections */
    int max_per_ip;              /* concurrent connections per client address (0: no limit) */
    int timeout_s;               /* idle seconds before a connection is closed (slow clients) */
    int request_timeout_s;       /* a request's headers and body must be in within this many seconds
                                  * of the connection's start, or of its request line on a kept-alive
                                  * connection (slowloris: 408, closed); 0: no deadline */
    int default_format;          /* a request without response_format: 0 text, 1 JSON, 2 YAML (serve --format) */
    const cJSON *default_schema; /* with default_format 1: the JSON schema (serve --json-schema; copied), or NULL */
    const char *default_grammar; /* a request without response_format or grammar: this GBNF text (serve --grammar;
                                    copied), or NULL */
    lma_engine_params engine;
    int log_prompts;             /* the access log shows prompts (off: never) */
    FILE *log;                   /* access log, one line per request (NULL: none) */
} lma_server_params;

lma_status lma_server_start(lma_model *m, const lma_tokenizer *tok, const lma_server_params *p, lma_server **out);
int lma_server_port(const lma_server *s);
/* Graceful stop: stops accepting, lets requests in flight finish for up to grace_s
 * seconds, cancels the rest (their streams end), closes every connection, frees s. */
void lma_server_stop(lma_server *s, double grace_s);
#endif
