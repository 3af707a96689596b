/* The OpenAI request bodies the server accepts, parsed and checked in one place:
 * POST /v1/chat/completions and POST /v1/completions. Every refusal is an lma_serve_error
 * (HTTP status, OpenAI error type, the field at fault, a message) that the server sends
 * as the OpenAI error object {"error": {"message", "type", "param", "code"}}.
 *
 * Accepted: model, messages (role system | developer | user | assistant; content a string
 * or an array of {"type": "text", "text"} parts) or prompt (a string, or an array of one
 * string), max_tokens / max_completion_tokens, temperature [0, 2], top_p (0, 1], seed,
 * stop (a string or up to 4), n = 1, stream, stream_options.include_usage, and the
 * extensions top_k, min_p, repetition_penalty, ignore_eos (as vLLM) and grammar (a GBNF grammar, as
 * llama.cpp's server; not with a json response_format). Fields that would change the
 * answer and are not implemented (n > 1, tools, logprobs, logit_bias, non-zero presence or
 * frequency penalty, a response_format other than text, json_object or json_schema, echo, best_of > 1, suffix) are
 * refused with 400 naming the field; other unknown fields are ignored (clients send many).
 *
 * Ownership: lma_serve_req holds the parsed cJSON tree; its strings point into it and
 * live until lma_serve_req_free. Thread-safe (no globals). */
#ifndef LMA_SERVE_REQUEST_H
#define LMA_SERVE_REQUEST_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include "lmadapt.h" /* lma_chat_msg */

typedef enum { LMA_SREQ_CHAT, LMA_SREQ_COMPLETION } lma_sreq_kind;

#define LMA_SREQ_MAX_STOP 4
#define LMA_SREQ_MAX_STOP_LEN 256

typedef struct {
    int status;        /* HTTP status: 400, 401, 404, 405, 413, 429, 500, 503 */
    const char *type;  /* OpenAI error type: invalid_request_error, authentication_error, ... */
    const char *code;  /* e.g. "invalid_api_key", "context_length_exceeded", or NULL */
    char param[64];    /* the request field at fault, or "" */
    char message[320];
} lma_serve_error;

typedef struct {
    lma_sreq_kind kind;
    const char *model;              /* NULL when absent */
    lma_chat_msg *msgs; size_t n_msgs; /* chat */
    const char *prompt;             /* completion */
    int max_tokens;                 /* -1: not given (the server's default) */
    double temperature, top_p, min_p, repetition_penalty; /* defaults 1, 1, 0, 1 */
    int top_k;                      /* 0: off */
    int has_seed; uint64_t seed;
    const char *stop[LMA_SREQ_MAX_STOP]; int n_stop;
    int stream, include_usage;
    int ignore_eos;                 /* decode past end-of-sequence / end-of-turn ids (benchmarks) */
    int json_mode;                  /* response_format json_object or json_schema: constrained decoding */
    int has_response_format;        /* response_format given (text too): the server's default does not apply */
    const cJSON *json_schema;       /* json_schema's "schema" (NULL: any JSON object) */
    const char *grammar;            /* "grammar": a GBNF grammar (llama.cpp server's extension), or NULL */
    void *root_;                    /* the cJSON tree (private) */
    char *parts_;                   /* concatenated content parts (private) */
} lma_serve_req;

/* POST /v1/embeddings: input (a string or an array of 1..LMA_SREQ_MAX_INPUTS non-empty
 * strings; token-id inputs are refused), model, encoding_format ("float" or "base64"),
 * dimensions (optional: checked by the server against the embedder's width). */
#define LMA_SREQ_MAX_INPUTS 256
typedef struct {
    const char *model;
    const char **inputs; size_t n_inputs;
    int base64;
    int dimensions;  /* 0: not given */
    void *root_;
} lma_serve_embed_req;
int lma_serve_embed_req_parse(const char *body, size_t len, lma_serve_embed_req *out, lma_serve_error *err);
void lma_serve_embed_req_free(lma_serve_embed_req *r);

/* Sets err (status 400, type invalid_request_error, the param and message) and returns
 * err->status; the server's other refusals use the same shape. */
int lma_serve_fail(lma_serve_error *err, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

/* body[len] (need not be NUL-terminated) -> *out. Returns 0, or the HTTP status of the
 * refusal with err filled (out is then empty and needs no free). max_tokens_limit: the
 * largest max_tokens accepted. */
int lma_serve_req_parse(const char *body, size_t len, lma_sreq_kind kind, int max_tokens_limit, lma_serve_req *out,
                        lma_serve_error *err);
void lma_serve_req_free(lma_serve_req *r);
#endif
