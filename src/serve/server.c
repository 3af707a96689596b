#define _GNU_SOURCE /* POLLRDHUP */
#include "serve/server.h"
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>
#include "core/arena.h"
#include "core/progress.h" /* lma_now */
#include "serve/route.h"
#include "serve/watchdog.h"
#include "infer/json_constraint.h"
#include "rag/ask.h"
#include "tok/chat_template.h"

struct lma_server {
    lma_server_params p;
    char *model_name, *chat_template, *embed_name;
    cJSON *default_schema;       /* a copy of p.default_schema */
    char *default_grammar;       /* a copy of p.default_grammar */
    pthread_mutex_t embed_mu;    /* the embedder (and the RAG searcher) runs one request at a time */
    char **keys;
    int32_t *stop_ids;
    lma_model *m;
    const lma_tokenizer *tok;
    lma_engine *engine;
    struct MHD_Daemon *d;
    int port;
    atomic_int stopping;
    atomic_ullong next_id;
    long started;
    lma_watchdog wd;             /* the request deadline (request_timeout_s; serve/watchdog.h) */
};

/* One request on one connection (libmicrohttpd's con_cls). */
struct lma_http {
    lma_server *s;
    struct MHD_Connection *c;
    const lma_route *rt;
    int refused;              /* answered before the body (404, 401, 413): discard it */
    int overflow;             /* the body ran past max_body */
    lma_buf body;
    int status;               /* of the response queued */
    double t0;
    char method[8], path[64];
    int prompt_tokens, completion_tokens;
    const char *finish;       /* "stop" | "length" | NULL */
    int aborted;              /* the client went away (or the server stopped) mid-request */
    char *log_prompt;         /* with --log-prompts */
    cJSON *sources;           /* serve --rag: the sources of the answer (until sent) */
    /* streaming */
    lma_job *job;
    lma_sreq_kind kind;
    int include_usage, stream_done;
    char id[48];
    long created;
    lma_buf out;              /* SSE bytes not yet handed to libmicrohttpd */
    size_t out_off;
};

/* ---- replies ------------------------------------------------------------------- */

static int queue(lma_http *h, int status, const char *ctype, char *text, size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(text); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", ctype);
    int ret = MHD_queue_response(h->c, (unsigned)status, r);
    MHD_destroy_response(r);
    h->status = status;
    return ret;
}

int lma_http_reply_json(lma_http *h, int status, cJSON *obj) {
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!text) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,"
                                  "\"code\":null}}";
        return queue(h, 500, "application/json", strdup(oom), sizeof oom - 1);
    }
    return queue(h, status, "application/json", text, strlen(text));
}

static cJSON *error_object(const lma_serve_error *e) {
    cJSON *o = cJSON_CreateObject(), *x = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(x, "message", e->message);
    cJSON_AddStringToObject(x, "type", e->type ? e->type : "invalid_request_error");
    if (e->param[0]) cJSON_AddStringToObject(x, "param", e->param); else cJSON_AddNullToObject(x, "param");
    if (e->code) cJSON_AddStringToObject(x, "code", e->code); else cJSON_AddNullToObject(x, "code");
    return o;
}

int lma_http_reply_error(lma_http *h, const lma_serve_error *e) {
    return lma_http_reply_json(h, e->status, error_object(e));
}

static int reply_fail(lma_http *h, int status, const char *type, const char *code, const char *param, const char *fmt,
                      ...) LMA_PRINTF(6, 7);
static int reply_fail(lma_http *h, int status, const char *type, const char *code, const char *param, const char *fmt,
                      ...) {
    lma_serve_error e;
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lma_serve_fail(&e, status, type, code, param, "%s", msg);
    return lma_http_reply_error(h, &e);
}

const char *lma_http_body(const lma_http *h, size_t *len) {
    *len = h->body.len;
    return h->body.p ? h->body.p : "";
}

void lma_http_note_tokens(lma_http *h, int prompt_tokens, int completion_tokens) {
    h->prompt_tokens = prompt_tokens;
    h->completion_tokens = completion_tokens;
}

int lma_http_client_gone(lma_http *h) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(h->c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd pf = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&pf, 1, 0) <= 0) return 0;
    if (pf.revents & (POLLHUP | POLLERR | POLLRDHUP)) return 1;
    if (pf.revents & POLLIN) {
        char b;
        return recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
    }
    return 0;
}

/* ---- generation ---------------------------------------------------------------- */

static cJSON *usage_object(int prompt, int completion) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", completion);
    cJSON_AddNumberToObject(u, "total_tokens", prompt + completion);
    return u;
}

static cJSON *response_head(const lma_http *h, const char *object) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", h->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)h->created);
    cJSON_AddStringToObject(o, "model", h->s->model_name);
    return o;
}

/* One choice: chat (message, or delta when streaming) or completion (text). text may be
 * NULL (a stream's first or last chunk). */
static cJSON *choice(lma_sreq_kind kind, int stream, const char *text, size_t len, const char *finish, int first) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    char *t = NULL;
    if (text) {
        t = malloc(len + 1);
        if (t) { memcpy(t, text, len); t[len] = 0; }
    }
    if (kind == LMA_SREQ_CHAT) {
        cJSON *msg = cJSON_AddObjectToObject(c, stream ? "delta" : "message");
        if (!stream || first) cJSON_AddStringToObject(msg, "role", "assistant");
        if (t) cJSON_AddStringToObject(msg, "content", t);
        else if (first) cJSON_AddStringToObject(msg, "content", "");
    } else {
        cJSON_AddStringToObject(c, "text", t ? t : "");
    }
    cJSON_AddNullToObject(c, "logprobs");
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish); else cJSON_AddNullToObject(c, "finish_reason");
    free(t);
    return c;
}

static const char *finish_name(lma_finish_reason f) { return f == LMA_FINISH_STOP ? "stop" : "length"; }

/* Appends one server-sent event "data: <obj>\n\n" (obj freed). */
static void sse(lma_buf *b, cJSON *obj) {
    char *t = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!t) return;
    lma_buf_str(b, "data: ");
    lma_buf_str(b, t);
    lma_buf_str(b, "\n\n");
    free(t);
}

static void sse_chunk(lma_http *h, const char *text, size_t len, const char *finish, int first) {
    cJSON *o = response_head(h, h->kind == LMA_SREQ_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON *cs = cJSON_AddArrayToObject(o, "choices");
    cJSON_AddItemToArray(cs, choice(h->kind, 1, text, len, finish, first));
    if (h->include_usage) cJSON_AddNullToObject(o, "usage");
    if (first && h->sources) cJSON_AddItemToObject(o, "sources", h->sources), h->sources = NULL;
    sse(&h->out, o);
}

/* The stream's end: the last chunk (finish_reason), usage when asked, [DONE]; or an
 * error event when the generation failed. */
static void sse_end(lma_http *h, const lma_job_info *info) {
    if (info->status != LMA_OK) {
        lma_serve_error e;
        lma_serve_fail(&e, 500, "server_error", NULL, NULL, "generation failed: %s", info->error);
        sse(&h->out, error_object(&e));
    } else {
        h->finish = finish_name(info->finish);
        sse_chunk(h, NULL, 0, h->finish, 0);
        if (h->include_usage) {
            cJSON *o = response_head(h, h->kind == LMA_SREQ_CHAT ? "chat.completion.chunk" : "text_completion");
            cJSON_AddArrayToObject(o, "choices");
            cJSON_AddItemToObject(o, "usage", usage_object(info->prompt_tokens, info->completion_tokens));
            sse(&h->out, o);
        }
    }
    lma_buf_str(&h->out, "data: [DONE]\n\n");
    h->prompt_tokens = info->prompt_tokens;
    h->completion_tokens = info->completion_tokens;
    h->stream_done = 1;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    lma_http *h = cls;
    (void)pos;
    while (h->out_off == h->out.len) {
        if (h->stream_done) return MHD_CONTENT_READER_END_OF_STREAM;
        h->out.len = h->out_off = 0;
        lma_buf text = {0};
        lma_job_info info;
        int ended = lma_job_poll(h->job, 100, &text, &info);
        if (text.len) sse_chunk(h, text.p, text.len, NULL, 0);
        free(text.p);
        if (ended && info.cancelled) { h->aborted = 1; return MHD_CONTENT_READER_END_WITH_ERROR; }
        if (ended) sse_end(h, &info);
        else if (lma_http_client_gone(h)) {
            lma_job_cancel(h->job);
            h->aborted = 1;
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (h->out.st != LMA_OK) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = h->out.len - h->out_off;
    if (n > max) n = max;
    memcpy(buf, h->out.p + h->out_off, n);
    h->out_off += n;
    return (ssize_t)n;
}

/* Text in, ids out, with the limits; 0 or the HTTP status of the refusal (err filled). */
static int prompt_ids(lma_server *s, const lma_serve_req *r, int32_t **ids, size_t *n, lma_serve_error *err) {
    lma_status st;
    if (r->kind == LMA_SREQ_CHAT) {
        size_t *spans = NULL, nsp = 0;
        st = lma_chat_encode(s->tok, s->chat_template, r->msgs, r->n_msgs, 1, ids, n, &spans, &nsp);
        free(spans);
    } else {
        st = lma_tok_encode(s->tok, r->prompt, strlen(r->prompt), 1, ids, n);
    }
    if (st != LMA_OK) {
        int st400 = st == LMA_ERR_ARG || st == LMA_ERR_FORMAT;
        lma_serve_fail(err, st400 ? 400 : 500, st400 ? "invalid_request_error" : "server_error", NULL,
                       r->kind == LMA_SREQ_CHAT ? "messages" : "prompt", "%s", lma_last_error());
        lma_clear_error();
        return err->status;
    }
    if (*n == 0) return lma_serve_fail(err, 400, "invalid_request_error", NULL, "prompt", "the prompt is empty");
    int limit = s->p.max_prompt_tokens < s->p.context ? s->p.max_prompt_tokens : s->p.context - 1;
    if ((long)*n > limit)
        return lma_serve_fail(err, 400, "invalid_request_error", "context_length_exceeded",
                              r->kind == LMA_SREQ_CHAT ? "messages" : "prompt",
                              "the prompt has %zu tokens; this server takes at most %d", *n, limit);
    return 0;
}

/* serve --rag: the chat request's question through retrieval and the RAG prompt
 * (rag/ask.h, as rag ask); h->sources gets the sources. 0 or the HTTP status of the
 * refusal (err filled). */
static int rag_prompt_ids(lma_server *s, lma_http *h, const lma_serve_req *r, int32_t **ids, size_t *n,
                          lma_serve_error *err) {
    const char *question = NULL, *system = NULL;
    for (size_t i = 0; i < r->n_msgs; i++) {
        if (!strcmp(r->msgs[i].role, "user")) question = r->msgs[i].content;
        if (!system && (!strcmp(r->msgs[i].role, "system") || !strcmp(r->msgs[i].role, "developer")))
            system = r->msgs[i].content;
    }
    if (!question || !*question)
        return lma_serve_fail(err, 400, "invalid_request_error", NULL, "messages",
                              "this server answers from retrieved sources: give a user message with the question");
    const lma_rag_search_params *sp = &s->p.rag_search;
    lma_rag_chunk_row *rows = calloc((size_t)sp->k, sizeof *rows);
    double *scores = calloc((size_t)sp->k, sizeof *scores);
    int n_rows = 0;
    size_t used = 0;
    int limit = s->p.max_prompt_tokens < s->p.context ? s->p.max_prompt_tokens : s->p.context - 1;
    size_t budget = s->p.rag_budget < (size_t)limit ? s->p.rag_budget : (size_t)limit;
    lma_status st = rows && scores ? LMA_OK : lma_error(LMA_ERR_NOMEM, "out of memory");
    if (!st) {
        pthread_mutex_lock(&s->embed_mu);
        st = lma_rag_retrieve_prompt(s->p.rag_store, s->p.rag_searcher, sp, s->tok, s->chat_template, system, question,
                                     budget, rows, scores, &n_rows, ids, n, &used);
        pthread_mutex_unlock(&s->embed_mu);
    }
    int ret = 0;
    if (st == LMA_ERR_ARG) /* the question alone is over the budget */
        ret = lma_serve_fail(err, 400, "invalid_request_error", "context_length_exceeded", "messages", "%s",
                             lma_last_error());
    else if (st)
        ret = lma_serve_fail(err, 500, "server_error", NULL, NULL, "retrieval failed: %s", lma_last_error());
    if (st) lma_clear_error();
    if (!ret) {
        h->sources = lma_rag_sources_json(rows, scores, used);
    }
    for (int i = 0; i < n_rows; i++) lma_rag_chunk_row_free(&rows[i]);
    free(rows), free(scores);
    return ret;
}

static int route_generate(lma_server *s, lma_http *h, lma_sreq_kind kind) {
    lma_serve_req r;
    lma_serve_error err;
    size_t blen;
    const char *body = lma_http_body(h, &blen);
    if (lma_serve_req_parse(body, blen, kind, s->p.max_tokens_limit, &r, &err)) return lma_http_reply_error(h, &err);
    int32_t *ids = NULL;
    size_t n = 0;
    int ret;
    if (r.model && strcmp(r.model, s->model_name)) {
        lma_serve_fail(&err, 404, "invalid_request_error", "model_not_found", "model",
                       "the model '%.80s' does not exist; this server serves '%.80s'", r.model, s->model_name);
        ret = lma_http_reply_error(h, &err);
        goto done;
    }
    if (kind == LMA_SREQ_CHAT && s->p.rag_store ? rag_prompt_ids(s, h, &r, &ids, &n, &err)
                                                : prompt_ids(s, &r, &ids, &n, &err)) {
        ret = lma_http_reply_error(h, &err);
        goto done;
    }
    if (s->p.log_prompts) {
        cJSON *lp = kind == LMA_SREQ_CHAT ? cJSON_Duplicate(cJSON_GetObjectItem(r.root_, "messages"), 1)
                                          : cJSON_CreateString(r.prompt);
        h->log_prompt = lp ? cJSON_PrintUnformatted(lp) : NULL;
        cJSON_Delete(lp);
    }
    int room = s->p.context - (int)n;
    int max_tokens = r.max_tokens >= 0 ? r.max_tokens : (s->p.default_max_tokens < room ? s->p.default_max_tokens : room);
    if (max_tokens > room) {
        lma_serve_fail(&err, 400, "invalid_request_error", "context_length_exceeded", "max_tokens",
                       "the prompt (%zu tokens) + max_tokens (%d) exceed the context of %d tokens", n, max_tokens,
                       s->p.context);
        ret = lma_http_reply_error(h, &err);
        goto done;
    }
    lma_gen_params gp = {.max_tokens = max_tokens, .sample = lma_sample_default_params()};
    gp.sample.temperature = (float)r.temperature;
    gp.sample.top_p = (float)r.top_p;
    gp.sample.top_k = r.top_k;
    gp.sample.min_p = (float)r.min_p;
    gp.sample.repetition_penalty = (float)r.repetition_penalty;
    gp.seed = r.has_seed ? r.seed : (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ atomic_fetch_add(&s->next_id, 1);
    gp.stop_ids = s->stop_ids;
    gp.n_stop_ids = r.ignore_eos ? 0 : s->p.n_stop_ids; /* ignore_eos: max_tokens tokens exactly (stop strings still apply) */
    gp.stop_strings = r.stop;
    gp.n_stop_strings = r.n_stop;
    /* the request's grammar, else its response_format, else the server's --grammar / --format / --json-schema */
    int fmt = r.has_response_format ? r.json_mode : s->p.default_format;
    const cJSON *schema = r.has_response_format ? r.json_schema : s->default_schema;
    const char *grammar = r.grammar ? r.grammar : r.has_response_format ? NULL : s->default_grammar;
    const char *field = r.grammar ? "grammar" : r.has_response_format ? "response_format" : NULL;
    if (grammar || fmt) { /* the job owns its constraint (one per sequence) */
        lma_status cst = grammar ? lma_grammar_constraint_new(s->tok, grammar, strlen(grammar), "grammar", &gp.constraint)
                         : fmt == 2 ? lma_yaml_constraint_new(s->tok, &gp.constraint)
                                    : lma_json_constraint_new(s->tok, schema, &gp.constraint);
        if (cst != LMA_OK) {
            lma_serve_fail(&err, field ? 400 : 500, field ? "invalid_request_error" : "server_error", NULL, field, "%s",
                           lma_last_error());
            lma_clear_error();
            ret = lma_http_reply_error(h, &err);
            goto done;
        }
        if (lma_json_constraint_min_tokens(gp.constraint) > max_tokens) {
            lma_serve_fail(&err, 400, "invalid_request_error", NULL, "max_tokens",
                           "max_tokens %d is too small for any output valid under %s (at least %d)", max_tokens,
                           field ? field : "the server's --grammar/--format/--json-schema",
                           lma_json_constraint_min_tokens(gp.constraint));
            lma_json_constraint_free(gp.constraint);
            ret = lma_http_reply_error(h, &err);
            goto done;
        }
    }
    int busy = 0;
    lma_job *job = NULL;
    h->prompt_tokens = (int)n;
    if (lma_engine_submit(s->engine, ids, n, &gp, &job, &busy) != LMA_OK) {
        ret = reply_fail(h, 500, "server_error", NULL, NULL, "%s", lma_last_error());
        lma_clear_error();
        goto done;
    }
    if (!job) {
        ret = busy == 2 ? reply_fail(h, 503, "server_error", "shutting_down", NULL, "the server is shutting down")
                        : reply_fail(h, 429, "rate_limit_error", "server_busy", NULL,
                                     "the server is busy (%d requests decoding, %d queued); retry later",
                                     s->p.engine.max_active, s->p.engine.max_queue);
        goto done;
    }
    h->job = job;
    h->kind = kind;
    h->created = (long)time(NULL);
    snprintf(h->id, sizeof h->id, "%s-%llx%08llx", kind == LMA_SREQ_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)s->started, (unsigned long long)atomic_fetch_add(&s->next_id, 1));
    if (r.stream) {
        h->include_usage = r.include_usage;
        if (kind == LMA_SREQ_CHAT) sse_chunk(h, NULL, 0, NULL, 1); /* the role first, as OpenAI */
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, h, NULL);
        if (!resp) { ret = MHD_NO; goto done; }
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        ret = MHD_queue_response(h->c, 200, resp);
        MHD_destroy_response(resp);
        h->status = 200;
        goto done;
    }
    lma_buf text = {0};
    lma_job_info info;
    for (;;) {
        if (lma_job_poll(job, 100, &text, &info)) break;
        if (lma_http_client_gone(h)) {
            lma_job_cancel(job);
            h->aborted = 1;
            free(text.p);
            ret = MHD_NO;
            goto done;
        }
    }
    h->completion_tokens = info.completion_tokens;
    if (info.cancelled) {
        h->aborted = 1;
        ret = reply_fail(h, 503, "server_error", "shutting_down", NULL, "the request was cancelled: the server is stopping");
    } else if (info.status != LMA_OK) {
        ret = reply_fail(h, 500, "server_error", NULL, NULL, "generation failed: %s", info.error);
    } else {
        h->finish = finish_name(info.finish);
        cJSON *o = response_head(h, kind == LMA_SREQ_CHAT ? "chat.completion" : "text_completion");
        cJSON *cs = cJSON_AddArrayToObject(o, "choices");
        cJSON_AddItemToArray(cs, choice(kind, 0, text.p ? text.p : "", text.len, h->finish, 1));
        cJSON_AddItemToObject(o, "usage", usage_object(info.prompt_tokens, info.completion_tokens));
        if (h->sources) cJSON_AddItemToObject(o, "sources", h->sources), h->sources = NULL;
        ret = lma_http_reply_json(h, 200, o);
    }
    free(text.p);
done:
    free(ids);
    lma_serve_req_free(&r);
    return ret;
}

static int route_chat(lma_server *s, lma_http *h) { return route_generate(s, h, LMA_SREQ_CHAT); }
static int route_completions(lma_server *s, lma_http *h) { return route_generate(s, h, LMA_SREQ_COMPLETION); }

static int route_models(lma_server *s, lma_http *h) {
    cJSON *o = cJSON_CreateObject(), *data = cJSON_AddArrayToObject(o, "data");
    cJSON_AddStringToObject(o, "object", "list");
    for (int k = 0; k < (s->p.embedder ? 2 : 1); k++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", k ? s->embed_name : s->model_name);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", (double)s->started);
        cJSON_AddStringToObject(m, "owned_by", "lmadapt");
        cJSON_AddItemToArray(data, m);
    }
    return lma_http_reply_json(h, 200, o);
}

/* n bytes -> base64 (NUL-terminated, malloc'd) */
static char *base64(const unsigned char *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc((n + 2) / 3 * 4 + 1), *q = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *q++ = tab[v >> 18 & 63];
        *q++ = tab[v >> 12 & 63];
        *q++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *q++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *q = 0;
    return o;
}

static int route_embeddings(lma_server *s, lma_http *h) {
    if (!s->p.embedder)
        return reply_fail(h, 404, "invalid_request_error", "model_not_found", "model",
                          "this server has no embedding model (start it with --embed E)");
    lma_serve_embed_req r;
    lma_serve_error err;
    size_t blen;
    const char *body = lma_http_body(h, &blen);
    if (lma_serve_embed_req_parse(body, blen, &r, &err)) return lma_http_reply_error(h, &err);
    int dim = lma_embedder_dim(s->p.embedder), ret;
    float *v = NULL;
    if (r.model && strcmp(r.model, s->embed_name)) {
        ret = reply_fail(h, 404, "invalid_request_error", "model_not_found", "model",
                         "the model '%.80s' does not exist; this server embeds with '%.80s'", r.model, s->embed_name);
        goto done;
    }
    if (r.dimensions && r.dimensions != dim) {
        ret = reply_fail(h, 400, "invalid_request_error", NULL, "dimensions",
                         "'dimensions' %d: this model's embeddings have %d", r.dimensions, dim);
        goto done;
    }
    v = malloc(r.n_inputs * (size_t)dim * sizeof *v);
    if (!v) { ret = reply_fail(h, 500, "server_error", NULL, NULL, "out of memory"); goto done; }
    size_t tokens = 0, max_t = (size_t)lma_embedder_max_tokens(s->p.embedder);
    pthread_mutex_lock(&s->embed_mu);
    lma_status st = LMA_OK;
    for (size_t i = 0; st == LMA_OK && i < r.n_inputs; i++) {
        size_t k = 0;
        st = lma_embedder_count_tokens(s->p.embedder, r.inputs[i], strlen(r.inputs[i]), &k);
        tokens += k < max_t ? k : max_t;
    }
    if (st == LMA_OK) st = lma_embed(s->p.embedder, r.inputs, r.n_inputs, 0, v);
    pthread_mutex_unlock(&s->embed_mu);
    if (st != LMA_OK) {
        ret = reply_fail(h, 500, "server_error", NULL, NULL, "embedding failed: %s", lma_last_error());
        lma_clear_error();
        goto done;
    }
    cJSON *o = cJSON_CreateObject(), *data = cJSON_AddArrayToObject(o, "data");
    cJSON_AddStringToObject(o, "object", "list");
    for (size_t i = 0; i < r.n_inputs; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "object", "embedding");
        cJSON_AddNumberToObject(e, "index", (double)i);
        if (r.base64) {
            char *b = base64((const unsigned char *)(v + i * (size_t)dim), (size_t)dim * sizeof *v);
            cJSON_AddStringToObject(e, "embedding", b ? b : "");
            free(b);
        } else {
            cJSON_AddItemToObject(e, "embedding", cJSON_CreateFloatArray(v + i * (size_t)dim, dim));
        }
        cJSON_AddItemToArray(data, e);
    }
    cJSON_AddStringToObject(o, "model", s->embed_name);
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)tokens);
    h->prompt_tokens = (int)tokens;
    ret = lma_http_reply_json(h, 200, o);
done:
    free(v);
    lma_serve_embed_req_free(&r);
    return ret;
}

static int route_health(lma_server *s, lma_http *h) {
    lma_engine_stats st;
    lma_engine_get_stats(s->engine, &st);
    int stopping = atomic_load(&s->stopping);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", stopping ? "stopping" : "ok");
    cJSON_AddNumberToObject(o, "active", st.active);
    cJSON_AddNumberToObject(o, "queued", st.queued);
    cJSON_AddNumberToObject(o, "finished", (double)st.finished);
    cJSON_AddNumberToObject(o, "decode_steps", (double)st.steps);
    cJSON_AddNumberToObject(o, "tokens_decoded", (double)st.tokens);
    return lma_http_reply_json(h, stopping ? 503 : 200, o);
}

/* The routes: one row per endpoint (serve --rag answers through route_chat). */
static const lma_route routes[] = {
    {"POST", "/v1/chat/completions", 1, route_chat},
    {"POST", "/v1/completions", 1, route_completions},
    {"POST", "/v1/embeddings", 1, route_embeddings},
    {"GET", "/v1/models", 1, route_models},
    {"GET", "/health", 0, route_health},
};

/* ---- libmicrohttpd callbacks ----------------------------------------------------- */

/* Constant-time in the key (the secret): every byte of every key is compared. */
static int key_ok(const lma_server *s, const char *auth) {
    const char *given = "";
    if (auth && !strncmp(auth, "Bearer ", 7)) given = auth + 7;
    size_t gl = strlen(given);
    int ok = 0;
    for (int k = 0; k < s->p.n_api_keys; k++) {
        const char *key = s->keys[k];
        size_t kl = strlen(key);
        unsigned char d = (unsigned char)(gl != kl);
        for (size_t i = 0; i < kl; i++) d |= (unsigned char)(key[i] ^ (i < gl ? given[i] : 0));
        ok |= d == 0;
    }
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    lma_server *s = cls;
    lma_http *h = *con_cls;
    (void)version;
    if (!h) {
        h = calloc(1, sizeof *h);
        if (!h) return MHD_NO;
        *con_cls = h;
        h->s = s;
        h->c = c;
        h->t0 = lma_now();
        snprintf(h->method, sizeof h->method, "%s", method);
        snprintf(h->path, sizeof h->path, "%s", url);
        int path_known = 0;
        for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
            if (!strcmp(url, routes[i].path)) {
                path_known = 1;
                if (!strcmp(method, routes[i].method)) h->rt = &routes[i];
            }
        h->refused = 1; /* answered now; a body that follows is read (and dropped) within the deadline */
        if (!h->rt && path_known)
            return reply_fail(h, 405, "invalid_request_error", "method_not_allowed", NULL, "%.8s %.60s is not supported",
                              method, url);
        if (!h->rt)
            return reply_fail(h, 404, "invalid_request_error", "unknown_url", NULL, "unknown URL: %.8s %.60s", method,
                              url);
        if (h->rt->auth && s->p.n_api_keys &&
            !key_ok(s, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION)))
            return reply_fail(h, 401, "invalid_request_error", "invalid_api_key", NULL,
                              "a valid API key is required (Authorization: Bearer KEY)");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->p.max_body)
            return reply_fail(h, 413, "invalid_request_error", "request_too_large", NULL,
                              "the request body (%.20s bytes) exceeds the limit of %zu bytes", cl, s->p.max_body);
        h->refused = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!h->refused && !h->overflow) {
            if (h->body.len + *upload_size > s->p.max_body) h->overflow = 1;
            else lma_buf_append(&h->body, upload, *upload_size);
        }
        *upload_size = 0;
        /* a body without Content-Length that runs past the limit: close the connection */
        return h->overflow ? MHD_NO : MHD_YES;
    }
    lma_watchdog_deadline(&s->wd, c, 0, 0); /* the request is in */
    if (h->refused) return MHD_YES;
    if (h->body.st != LMA_OK) return reply_fail(h, 500, "server_error", NULL, NULL, "out of memory");
    /* generation may take longer than the idle timeout: none while the request runs
     * (on_completed sets it again) */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    return (enum MHD_Result)h->rt->fn(s, h);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    lma_server *s = cls;
    lma_http *h = *con_cls;
    /* the response is sent: the next request on this connection may idle, then must come whole */
    lma_watchdog_deadline(&s->wd, c, lma_now() + s->p.timeout_s + s->p.request_timeout_s, 0);
    if (!h) return;
    *con_cls = NULL;
    if (h->job) {
        lma_job_info info;
        if (!h->stream_done && !h->aborted && lma_job_poll(h->job, 0, NULL, &info) == 0) h->aborted = 1;
        if (!h->completion_tokens && h->aborted) {
            lma_job_poll(h->job, 0, NULL, &info);
            h->completion_tokens = info.completion_tokens;
        }
        lma_job_release(h->job); /* cancels it when it has not ended: the slot is freed */
    }
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) h->aborted = 1;
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)s->p.timeout_s);
    if (s->p.log) {
        char addr[INET6_ADDRSTRLEN], when[32];
        lma_serve_client_addr(c, addr, sizeof addr);
        lma_serve_utc_now(when, sizeof when);
        fprintf(s->p.log, "%s %s \"%s %s\" %d %.0fms prompt_tokens=%d completion_tokens=%d%s%s%s%s%s\n", when, addr,
                h->method, h->path, h->status ? h->status : 0, (lma_now() - h->t0) * 1e3, h->prompt_tokens,
                h->completion_tokens, h->finish ? " finish=" : "", h->finish ? h->finish : "",
                h->aborted ? " aborted" : "", h->log_prompt ? " prompt=" : "", h->log_prompt ? h->log_prompt : "");
        fflush(s->p.log);
    }
    free(h->log_prompt);
    cJSON_Delete(h->sources);
    free(h->body.p);
    free(h->out.p);
    free(h);
}

/* ---- start and stop ------------------------------------------------------------ */

static void free_server(lma_server *s) {
    if (!s) return;
    for (int i = 0; s->keys && i < s->p.n_api_keys; i++) free(s->keys[i]);
    free(s->keys);
    free(s->model_name);
    free(s->embed_name);
    free(s->chat_template);
    cJSON_Delete(s->default_schema);
    free(s->default_grammar);
    pthread_mutex_destroy(&s->embed_mu);
    lma_watchdog_destroy(&s->wd);
    free(s->stop_ids);
    free(s);
}

lma_status lma_server_start(lma_model *m, const lma_tokenizer *tok, const lma_server_params *p, lma_server **out) {
    *out = NULL;
    lma_server *s = lma_calloc(1, sizeof *s, "server");
    if (!s) return LMA_ERR_NOMEM;
    s->p = *p;
    s->m = m;
    s->tok = tok;
    s->started = (long)time(NULL);
    pthread_mutex_init(&s->embed_mu, NULL);
    lma_watchdog_init(&s->wd, p->request_timeout_s, p->log);
    s->model_name = strdup(p->model_name ? p->model_name : "lmadapt");
    s->embed_name = strdup(p->embed_name ? p->embed_name : "embedder");
    s->chat_template = p->chat_template ? strdup(p->chat_template) : NULL;
    s->keys = calloc((size_t)p->n_api_keys + 1, sizeof *s->keys);
    s->stop_ids = malloc((size_t)(p->n_stop_ids + 1) * sizeof *s->stop_ids);
    s->default_schema = p->default_schema ? cJSON_Duplicate(p->default_schema, 1) : NULL;
    s->default_grammar = p->default_grammar ? strdup(p->default_grammar) : NULL;
    int ok = s->model_name && s->embed_name && s->keys && s->stop_ids && (!p->chat_template || s->chat_template) &&
             (!p->default_schema || s->default_schema) && (!p->default_grammar || s->default_grammar);
    for (int i = 0; ok && i < p->n_api_keys; i++) ok = (s->keys[i] = strdup(p->api_keys[i])) != NULL;
    if (!ok) { free_server(s); return lma_error(LMA_ERR_NOMEM, "out of memory"); }
    if (p->n_stop_ids) memcpy(s->stop_ids, p->stop_ids, (size_t)p->n_stop_ids * sizeof *s->stop_ids);
    s->p.api_keys = NULL;
    s->p.default_schema = NULL; /* s->default_schema is the copy */
    s->p.default_grammar = NULL;
    /* the address */
    struct sockaddr_in a4 = {0};
    struct sockaddr_in6 a6 = {0};
    struct sockaddr *sa;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    if (inet_pton(AF_INET, p->host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)p->port);
        sa = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, p->host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)p->port);
        sa = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        free_server(s);
        return lma_error(LMA_ERR_ARG, "--host %s: not an IPv4 or IPv6 address", p->host);
    }
    lma_status st = lma_engine_start(m, tok, &p->engine, &s->engine);
    if (st != LMA_OK) { free_server(s); return st; }
    s->d = MHD_start_daemon(flags, (uint16_t)p->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)p->max_connections,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)p->max_per_ip,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p->timeout_s,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, lma_watchdog_on_connection, &s->wd,
                            MHD_OPTION_URI_LOG_CALLBACK, lma_watchdog_on_uri, &s->wd, MHD_OPTION_END);
    if (s->d && lma_watchdog_start(&s->wd) != LMA_OK) { MHD_stop_daemon(s->d); s->d = NULL; }
    if (!s->d) {
        lma_engine_free(s->engine);
        free_server(s);
        return lma_error(LMA_ERR_IO, "cannot listen on %s port %d (in use? permission?)", p->host, p->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : p->port;
    *out = s;
    return LMA_OK;
}

int lma_server_port(const lma_server *s) { return s->port; }

void lma_server_stop(lma_server *s, double grace_s) {
    if (!s) return;
    atomic_store(&s->stopping, 1);
    MHD_socket ls = MHD_quiesce_daemon(s->d); /* no new connections */
    lma_engine_drain(s->engine, grace_s);     /* in-flight requests finish or are cancelled */
    MHD_stop_daemon(s->d);                    /* their connections end; threads joined */
    if (ls != MHD_INVALID_SOCKET) close(ls);
    lma_watchdog_stop(&s->wd);
    lma_engine_free(s->engine);
    free_server(s);
}
