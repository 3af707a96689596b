/* libFuzzer: the server's request parser (serve/request.c) on arbitrary bytes, as a chat
 * as a completion and as an embeddings body. Invariants: an accepted request has the fields the server
 * relies on (messages with roles and NUL-terminated content, a prompt, stops within
 * bounds, numbers in range); a refusal has an HTTP status, a type and a message; nothing
 * leaks (ASan). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "serve/request.h"

static void check(const lma_serve_req *r, int rc, const lma_serve_error *e, lma_sreq_kind kind) {
    if (rc) {
        if ((rc != 400 && rc != 500) || e->status != rc || !e->type || !e->message[0]) abort();
        if (r->root_ || r->msgs) abort();
        return;
    }
    if (kind == LMA_SREQ_CHAT) {
        if (r->n_msgs < 1 || !r->msgs) abort();
        for (size_t i = 0; i < r->n_msgs; i++) {
            if (!r->msgs[i].role || !r->msgs[i].content) abort();
            (void)strlen(r->msgs[i].content);
        }
    } else if (!r->prompt) {
        abort();
    }
    if (r->n_stop < 0 || r->n_stop > LMA_SREQ_MAX_STOP) abort();
    for (int i = 0; i < r->n_stop; i++)
        if (!r->stop[i][0] || strlen(r->stop[i]) > LMA_SREQ_MAX_STOP_LEN) abort();
    if (!(r->temperature >= 0 && r->temperature <= 2) || !(r->top_p > 0 && r->top_p <= 1)) abort();
    if (r->max_tokens != -1 && (r->max_tokens < 1 || r->max_tokens > 4096)) abort();
    if (!(r->repetition_penalty > 0) || r->top_k < 0) abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    for (int k = 0; k < 2; k++) {
        lma_sreq_kind kind = k ? LMA_SREQ_COMPLETION : LMA_SREQ_CHAT;
        lma_serve_req r;
        lma_serve_error e;
        int rc = lma_serve_req_parse((const char *)data, size, kind, 4096, &r, &e);
        check(&r, rc, &e, kind);
        if (!rc) lma_serve_req_free(&r);
    }
    lma_serve_embed_req er;
    lma_serve_error e;
    int rc = lma_serve_embed_req_parse((const char *)data, size, &er, &e);
    if (rc) {
        if ((rc != 400 && rc != 500) || !e.message[0] || er.root_ || er.inputs) abort();
    } else {
        if (er.n_inputs < 1 || er.n_inputs > LMA_SREQ_MAX_INPUTS) abort();
        for (size_t i = 0; i < er.n_inputs; i++)
            if (!er.inputs[i] || !er.inputs[i][0]) abort();
        lma_serve_embed_req_free(&er);
    }
    return 0;
}
