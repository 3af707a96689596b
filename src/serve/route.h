/* What a route handler of the server sees (the route table is in server.c; a new
 * endpoint, e.g. POST /v1/embeddings over infer/embed.h, is one row there plus a handler
 * written against this header).
 *
 * A handler runs on the connection's thread once the whole body is in (bounded by
 * max_body), authentication done. It answers exactly once, with lma_http_reply_json or
 * lma_http_reply_error (or, for the generation routes, a stream), and returns what those
 * return (libmicrohttpd's MHD_YES / MHD_NO as an int; MHD_NO closes the connection).
 * Ownership: the body and the request live until the handler returns; reply_json takes
 * the cJSON object. */
#ifndef LMA_SERVE_ROUTE_H
#define LMA_SERVE_ROUTE_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include "serve/request.h"
#include "serve/server.h"

typedef struct lma_http lma_http;
typedef int (*lma_route_fn)(lma_server *s, lma_http *h);

typedef struct {
    const char *method, *path;
    int auth;          /* needs an API key (when the server has any) */
    lma_route_fn fn;
} lma_route;

const char *lma_http_body(const lma_http *h, size_t *len);
int lma_http_reply_json(lma_http *h, int status, cJSON *obj);
int lma_http_reply_error(lma_http *h, const lma_serve_error *e);
/* 1 when the client has closed its side (a long handler should stop and return MHD_NO). */
int lma_http_client_gone(lma_http *h);
/* Token counts for the access log. */
void lma_http_note_tokens(lma_http *h, int prompt_tokens, int completion_tokens);
#endif
