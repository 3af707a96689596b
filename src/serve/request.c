#include "serve/request.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"

int lma_serve_fail(lma_serve_error *err, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) {
    err->status = status;
    err->type = type;
    err->code = code;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return status;
}

#define BAD(param, ...) lma_serve_fail(err, 400, "invalid_request_error", NULL, param, __VA_ARGS__)

/* A number field in [lo, hi] (absent or null: *out unchanged). */
static int num_field(const cJSON *root, const char *key, double lo, double hi, double *out, lma_serve_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return BAD(key, "'%s' must be a number", key);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return BAD(key, "'%s' is %g; it must be in [%g, %g]", key, v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return 0;
}

/* An integer field in [lo, hi]; *given set when present. */
static int int_field(const cJSON *root, const char *key, double lo, double hi, double *out, int *given,
                     lma_serve_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
        return BAD(key, "'%s' must be an integer", key);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return BAD(key, "'%s' is %.0f; it must be in [%.0f, %.0f]", key, v->valuedouble, lo, hi);
    *out = v->valuedouble;
    if (given) *given = 1;
    return 0;
}

static int bool_field(const cJSON *root, const char *key, int *out, lma_serve_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return BAD(key, "'%s' must be true or false", key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* Fields that change the answer and are not implemented: refused rather than ignored. */
static int refuse_unsupported(const cJSON *root, lma_serve_req *r, lma_serve_error *err) {
    static const char *absent[] = {"tools", "functions", "tool_choice", "function_call", "logit_bias", "suffix",
                                   "audio", "prediction"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, absent[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0) &&
            !(cJSON_IsObject(v) && !v->child))
            return BAD(absent[i], "'%s' is not supported by this server", absent[i]);
    }
    static const char *off[] = {"logprobs", "echo"};
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, off[i]);
        if (v && !cJSON_IsNull(v) && !cJSON_IsFalse(v)) return BAD(off[i], "'%s' is not supported by this server", off[i]);
    }
    static const char *zero[] = {"presence_penalty", "frequency_penalty", "top_logprobs"};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++) {
        double x = 0;
        if (num_field(root, zero[i], -1e9, 1e9, &x, err)) return err->status;
        if (x != 0) return BAD(zero[i], "'%s' other than 0 is not supported by this server", zero[i]);
    }
    double one = 1;
    int given = 0;
    if (int_field(root, "n", 1, 128, &one, &given, err)) return err->status;
    if (one != 1) return BAD("n", "'n' must be 1 (one choice per request)");
    one = 1;
    if (int_field(root, "best_of", 1, 128, &one, &given, err)) return err->status;
    if (one != 1) return BAD("best_of", "'best_of' must be 1");
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(root, "response_format");
    if (rf && !cJSON_IsNull(rf)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(rf, "type");
        if (cJSON_IsString(t) && !strcmp(t->valuestring, "json_object")) {
            r->json_mode = 1;
        } else if (cJSON_IsString(t) && !strcmp(t->valuestring, "json_schema")) {
            const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
            const cJSON *sc = js ? cJSON_GetObjectItemCaseSensitive(js, "schema") : NULL;
            if (!cJSON_IsObject(sc))
                return BAD("response_format", "'response_format.json_schema.schema' must be a JSON schema object");
            r->json_mode = 1;
            r->json_schema = sc;
        } else if (!cJSON_IsString(t) || strcmp(t->valuestring, "text")) {
            return BAD("response_format", "'response_format.type' must be text, json_object or json_schema");
        }
        r->has_response_format = 1;
    }
    const cJSON *gr = cJSON_GetObjectItemCaseSensitive(root, "grammar");
    if (gr && !cJSON_IsNull(gr)) {
        if (!cJSON_IsString(gr) || !gr->valuestring[0]) return BAD("grammar", "'grammar' must be a GBNF grammar (a string)");
        if (r->json_mode) return BAD("grammar", "'grammar' does not go with a json response_format");
        r->grammar = gr->valuestring;
    }
    return 0;
}

/* A message's content: a string, or text parts joined with '\n' (appended to parts, whose
 * offset is returned through *off; -1 for a plain string). */
static int content_of(const cJSON *c, size_t i, lma_buf *parts, long *off, const char **s, lma_serve_error *err) {
    char param[48];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    *off = -1;
    if (cJSON_IsString(c)) { *s = c->valuestring; return 0; }
    if (!cJSON_IsArray(c)) return BAD(param, "'%s' must be a string or an array of text parts", param);
    *off = (long)parts->len;
    const cJSON *p;
    int k = 0;
    cJSON_ArrayForEach(p, c) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type"), *x = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsString(t) || strcmp(t->valuestring, "text") || !cJSON_IsString(x))
            return BAD(param, "'%s': only parts {\"type\": \"text\", \"text\": ...} are supported", param);
        if (k++) lma_buf_push(parts, '\n');
        lma_buf_str(parts, x->valuestring);
    }
    lma_buf_push(parts, 0);
    if (parts->st != LMA_OK) return lma_serve_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    return 0;
}

static int parse_messages(const cJSON *root, lma_serve_req *r, lma_buf *parts, long **offs, lma_serve_error *err) {
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!ms) return BAD("messages", "'messages' is required");
    if (!cJSON_IsArray(ms)) return BAD("messages", "'messages' must be an array");
    int n = cJSON_GetArraySize(ms);
    if (n < 1) return BAD("messages", "'messages' is empty");
    r->msgs = calloc((size_t)n, sizeof *r->msgs);
    *offs = calloc((size_t)n, sizeof **offs);
    if (!r->msgs || !*offs) return lma_serve_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    const cJSON *m;
    size_t i = 0;
    cJSON_ArrayForEach(m, ms) {
        char param[48];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!cJSON_IsObject(m)) return BAD(param, "'%s' must be an object", param);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role)) return BAD(param, "'%s.role' must be a string", param);
        const char *ro = role->valuestring;
        if (!strcmp(ro, "developer")) ro = "system";
        if (strcmp(ro, "system") && strcmp(ro, "user") && strcmp(ro, "assistant"))
            return BAD(param, "'%s.role' is '%.40s'; supported: system, developer, user, assistant", param, ro);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!c) return BAD(param, "'%s.content' is required", param);
        r->msgs[i].role = ro;
        if (content_of(c, i, parts, &(*offs)[i], &r->msgs[i].content, err)) return err->status;
        i++;
    }
    r->n_msgs = i;
    return 0;
}

static int parse_prompt(const cJSON *root, lma_serve_req *r, lma_serve_error *err) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!p) return BAD("prompt", "'prompt' is required");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(p->child)) p = p->child;
    if (!cJSON_IsString(p)) return BAD("prompt", "'prompt' must be a string (or an array of one string)");
    r->prompt = p->valuestring;
    return 0;
}

static int parse_stop(const cJSON *root, lma_serve_req *r, lma_serve_error *err) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (!s || cJSON_IsNull(s)) return 0;
    const cJSON *one[1] = {s};
    int n = cJSON_IsString(s) ? 1 : cJSON_IsArray(s) ? cJSON_GetArraySize(s) : -1;
    if (n < 0) return BAD("stop", "'stop' must be a string or an array of strings");
    if (n > LMA_SREQ_MAX_STOP) return BAD("stop", "'stop' has %d strings; at most %d", n, LMA_SREQ_MAX_STOP);
    const cJSON *it = cJSON_IsString(s) ? one[0] : s->child;
    for (int i = 0; i < n; i++, it = it->next) {
        if (!cJSON_IsString(it)) return BAD("stop", "'stop' must be a string or an array of strings");
        size_t k = strlen(it->valuestring);
        if (k == 0) return BAD("stop", "'stop' strings must not be empty");
        if (k > LMA_SREQ_MAX_STOP_LEN) return BAD("stop", "'stop' strings are limited to %d bytes", LMA_SREQ_MAX_STOP_LEN);
        r->stop[r->n_stop++] = it->valuestring;
    }
    return 0;
}

static int parse_fields(const cJSON *root, lma_sreq_kind kind, int max_tokens_limit, lma_serve_req *r, lma_buf *parts,
                        long **offs, lma_serve_error *err) {
    if (!cJSON_IsObject(root)) return BAD(NULL, "the request body must be a JSON object");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (model && !cJSON_IsNull(model) && !cJSON_IsString(model)) return BAD("model", "'model' must be a string");
    r->model = cJSON_IsString(model) ? model->valuestring : NULL;
    if (refuse_unsupported(root, r, err)) return err->status;
    if (kind == LMA_SREQ_CHAT ? parse_messages(root, r, parts, offs, err) : parse_prompt(root, r, err)) return err->status;
    double mt = -1, mct = -1, seed = 0, top_k = 0;
    int given = 0;
    if (int_field(root, "max_tokens", 1, max_tokens_limit, &mt, NULL, err)) return err->status;
    if (int_field(root, "max_completion_tokens", 1, max_tokens_limit, &mct, NULL, err)) return err->status;
    r->max_tokens = mct >= 0 ? (int)mct : (int)mt;
    if (num_field(root, "temperature", 0, 2, &r->temperature, err)) return err->status;
    if (num_field(root, "top_p", 0, 1, &r->top_p, err)) return err->status;
    if (r->top_p <= 0) return BAD("top_p", "'top_p' must be in (0, 1]");
    if (num_field(root, "min_p", 0, 1, &r->min_p, err)) return err->status;
    if (num_field(root, "repetition_penalty", 0, 100, &r->repetition_penalty, err)) return err->status;
    if (r->repetition_penalty <= 0) return BAD("repetition_penalty", "'repetition_penalty' must be > 0");
    if (int_field(root, "top_k", -1, 1e9, &top_k, NULL, err)) return err->status;
    r->top_k = top_k < 0 ? 0 : (int)top_k; /* -1: off, as vLLM */
    /* seeds beyond 2^53 cannot be told apart in a double: refused rather than rounded */
    if (int_field(root, "seed", -9007199254740992.0, 9007199254740992.0, &seed, &given, err)) return err->status;
    r->has_seed = given;
    r->seed = (uint64_t)(int64_t)seed;
    if (parse_stop(root, r, err)) return err->status;
    if (bool_field(root, "stream", &r->stream, err)) return err->status;
    if (bool_field(root, "ignore_eos", &r->ignore_eos, err)) return err->status;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) return BAD("stream_options", "'stream_options' must be an object");
        if (!r->stream) return BAD("stream_options", "'stream_options' is only allowed with stream: true");
        if (bool_field(so, "include_usage", &r->include_usage, err)) return err->status;
    }
    return 0;
}

/* The body as one JSON value (nothing but white space after it). */
static int parse_json(const char *body, size_t len, cJSON **out, lma_serve_error *err) {
    const char *end = NULL;
    *out = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        return BAD(NULL, "the request body is not valid JSON (at byte %zu)", at);
    }
    for (const char *p = end; p && p < body + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            cJSON_Delete(root);
            return BAD(NULL, "the request body has bytes after the JSON value (at byte %zu)", (size_t)(p - body));
        }
    *out = root;
    return 0;
}

int lma_serve_req_parse(const char *body, size_t len, lma_sreq_kind kind, int max_tokens_limit, lma_serve_req *out,
                        lma_serve_error *err) {
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    out->kind = kind;
    out->max_tokens = -1;
    out->temperature = 1; out->top_p = 1; out->repetition_penalty = 1;
    cJSON *root = NULL;
    if (parse_json(body, len, &root, err)) return err->status;
    out->root_ = root;
    lma_buf parts = {0};
    long *offs = NULL;
    int rc = parse_fields(root, kind, max_tokens_limit, out, &parts, &offs, err);
    if (!rc)
        for (size_t i = 0; i < out->n_msgs; i++)
            if (offs[i] >= 0) out->msgs[i].content = parts.p + offs[i];
    free(offs);
    out->parts_ = parts.p;
    if (rc) lma_serve_req_free(out);
    return rc;
}

void lma_serve_req_free(lma_serve_req *r) {
    cJSON_Delete(r->root_);
    free(r->msgs);
    free(r->parts_);
    memset(r, 0, sizeof *r);
}

int lma_serve_embed_req_parse(const char *body, size_t len, lma_serve_embed_req *out, lma_serve_error *err) {
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    cJSON *root = NULL;
    if (parse_json(body, len, &root, err)) return err->status;
    out->root_ = root;
    int rc = 0;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model"), *in, *fmt, *one[1];
    if (!cJSON_IsObject(root)) { rc = BAD(NULL, "the request body must be a JSON object"); goto done; }
    if (model && !cJSON_IsNull(model) && !cJSON_IsString(model)) { rc = BAD("model", "'model' must be a string"); goto done; }
    out->model = cJSON_IsString(model) ? model->valuestring : NULL;
    in = cJSON_GetObjectItemCaseSensitive(root, "input");
    if (!in) { rc = BAD("input", "'input' is required"); goto done; }
    one[0] = in;
    int n = cJSON_IsString(in) ? 1 : cJSON_IsArray(in) ? cJSON_GetArraySize(in) : -1;
    if (n < 1) { rc = BAD("input", "'input' must be a string or a non-empty array of strings"); goto done; }
    if (n > LMA_SREQ_MAX_INPUTS) { rc = BAD("input", "'input' has %d strings; at most %d", n, LMA_SREQ_MAX_INPUTS); goto done; }
    out->inputs = calloc((size_t)n, sizeof *out->inputs);
    if (!out->inputs) { rc = lma_serve_fail(err, 500, "server_error", NULL, NULL, "out of memory"); goto done; }
    const cJSON *it = cJSON_IsString(in) ? one[0] : in->child;
    for (int i = 0; i < n; i++, it = it->next) {
        if (!cJSON_IsString(it)) { rc = BAD("input", "'input' must be strings (token ids are not supported)"); goto done; }
        if (!it->valuestring[0]) { rc = BAD("input", "'input' strings must not be empty"); goto done; }
        out->inputs[i] = it->valuestring;
    }
    out->n_inputs = (size_t)n;
    fmt = cJSON_GetObjectItemCaseSensitive(root, "encoding_format");
    if (fmt && !cJSON_IsNull(fmt)) {
        if (!cJSON_IsString(fmt) || (strcmp(fmt->valuestring, "float") && strcmp(fmt->valuestring, "base64"))) {
            rc = BAD("encoding_format", "'encoding_format' must be \"float\" or \"base64\"");
            goto done;
        }
        out->base64 = !strcmp(fmt->valuestring, "base64");
    }
    double d = 0;
    if (int_field(root, "dimensions", 1, 1 << 20, &d, NULL, err)) { rc = err->status; goto done; }
    out->dimensions = (int)d;
done:
    if (rc) lma_serve_embed_req_free(out);
    return rc;
}

void lma_serve_embed_req_free(lma_serve_embed_req *r) {
    cJSON_Delete(r->root_);
    free(r->inputs);
    memset(r, 0, sizeof *r);
}
