/* JSONL / JSON-array example reader and format normalization (see example.h). */
#include "data/example.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/io.h"

/* ---- small helpers ---------------------------------------------------- */

int lma_utf8_valid(const char *str, size_t n, size_t *bad_off) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t k; unsigned cp, min;
        if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; min = 0x10000; }
        else goto bad;
        if (n - i <= k) goto bad;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) goto bad;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) goto bad;
        i += k + 1;
    }
    return 1;
bad:
    if (bad_off) *bad_off = i;
    return 0;
}

const char *lma_ex_format_name(lma_ex_format f) {
    static const char *names[LMA_EXF_COUNT] = {"unknown", "messages", "alpaca", "sharegpt",
                                               "prompt_completion", "preference", "qa", "text"};
    return (f >= 0 && f < LMA_EXF_COUNT) ? names[f] : "unknown";
}

const char *lma_role_name(lma_role r) {
    static const char *names[LMA_ROLE_COUNT] = {"system", "user", "assistant", "tool", "text", "unknown"};
    return (r >= 0 && r < LMA_ROLE_COUNT) ? names[r] : "unknown";
}

static lma_role role_from_name(const char *s) {
    if (!s) return LMA_ROLE_UNKNOWN;
    if (!strcmp(s, "system")) return LMA_ROLE_SYSTEM;
    if (!strcmp(s, "user") || !strcmp(s, "human")) return LMA_ROLE_USER;
    if (!strcmp(s, "assistant") || !strcmp(s, "gpt") || !strcmp(s, "bot") || !strcmp(s, "model"))
        return LMA_ROLE_ASSISTANT;
    if (!strcmp(s, "tool") || !strcmp(s, "function") || !strcmp(s, "ipython") ||
        !strcmp(s, "observation") || !strcmp(s, "function_call"))
        return LMA_ROLE_TOOL;
    return LMA_ROLE_UNKNOWN;
}

/* ---- normalization ---------------------------------------------------- */

static void set_err(lma_example *ex, const char *code, const char *fmt, ...) LMA_PRINTF(3, 4);
static void set_err(lma_example *ex, const char *code, const char *fmt, ...) {
    if (ex->error_code) return; /* keep the first */
    ex->error_code = code;
    int k = snprintf(ex->error, sizeof ex->error, "%s:%lld: ", ex->file ? ex->file : "<input>",
                     (long long)ex->line);
    if (k < 0 || (size_t)k >= sizeof ex->error) return;
    va_list ap; va_start(ap, fmt);
    vsnprintf(ex->error + k, sizeof ex->error - (size_t)k, fmt, ap);
    va_end(ap);
}

/* which: 0 msgs, 1 chosen, 2 rejected */
static lma_status push_msg(lma_example *ex, int which, lma_ex_msg m) {
    lma_ex_msg **arr = which == 0 ? &ex->msgs : which == 1 ? &ex->chosen : &ex->rejected;
    size_t *n = which == 0 ? &ex->n_msgs : which == 1 ? &ex->n_chosen : &ex->n_rejected;
    LMA_TRY(lma_grow(arr, &ex->cap_[which], *n + 1, sizeof **arr, 8, "messages"));
    (*arr)[(*n)++] = m;
    return LMA_OK;
}

static lma_ex_msg str_msg(lma_role role, const char *name, const cJSON *it) {
    lma_ex_msg m = {role, name, "", 0, 0, -1, NULL};
    if (cJSON_IsString(it) && it->valuestring) {
        m.text = it->valuestring; m.len = strlen(it->valuestring); m.has_text = 1;
    }
    return m;
}

/* A message list: [{"role","content"}] (OpenAI) or [{"from","value"}] (ShareGPT). */
static lma_status parse_msg_list(lma_example *ex, int which, const cJSON *list, const char *field) {
    if (!cJSON_IsArray(list)) {
        set_err(ex, "field_type", "field \"%s\" must be a list of messages", field);
        return LMA_OK;
    }
    int i = 0;
    for (const cJSON *m = list->child; m; m = m->next, i++) {
        if (!cJSON_IsObject(m)) {
            set_err(ex, "message_type", "%s[%d] is not a JSON object", field, i);
            LMA_TRY(push_msg(ex, which, (lma_ex_msg){LMA_ROLE_UNKNOWN, NULL, "", 0, 0, -1, NULL}));
            continue;
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!role && !content) {
            role = cJSON_GetObjectItemCaseSensitive(m, "from");
            content = cJSON_GetObjectItemCaseSensitive(m, "value");
        }
        const char *rn = cJSON_IsString(role) ? role->valuestring : NULL;
        lma_ex_msg msg = str_msg(role_from_name(rn), rn, content);
        msg.json = m;
        if (content && !cJSON_IsString(content) && !cJSON_IsNull(content))
            set_err(ex, "content_type", "%s[%d] content must be a string (content parts and other types are not "
                    "supported)", field, i);
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(m, "weight");
        if (cJSON_IsNumber(w)) msg.weight = w->valuedouble == 0 ? 0 : 1;
        LMA_TRY(push_msg(ex, which, msg));
    }
    return LMA_OK;
}

/* A field that is either a string (one message of `role`) or a message list. */
static lma_status parse_str_or_list(lma_example *ex, int which, const cJSON *it, lma_role role,
                                    const char *field) {
    if (cJSON_IsString(it)) return push_msg(ex, which, str_msg(role, NULL, it));
    if (cJSON_IsArray(it)) return parse_msg_list(ex, which, it, field);
    if (cJSON_IsObject(it)) { /* OpenAI DPO: one assistant message object */
        cJSON tmp; memset(&tmp, 0, sizeof tmp);
        const cJSON *role_it = cJSON_GetObjectItemCaseSensitive(it, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        const char *rn = cJSON_IsString(role_it) ? role_it->valuestring : NULL;
        lma_ex_msg m = str_msg(rn ? role_from_name(rn) : role, rn, content);
        m.json = it;
        if (content && !cJSON_IsString(content) && !cJSON_IsNull(content))
            set_err(ex, "content_type", "%s content must be a string", field);
        return push_msg(ex, which, m);
    }
    set_err(ex, "field_type", "field \"%s\" must be a string or a list of messages", field);
    return LMA_OK;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static lma_status normalize(lma_example *ex) {
    const cJSON *o = ex->json;
    const cJSON *it;
    if ((it = get(o, "messages"))) {
        ex->format = LMA_EXF_MESSAGES;
        if (!cJSON_IsArray(it)) { set_err(ex, "missing_messages_list", "field \"messages\" must be a list"); return LMA_OK; }
        return parse_msg_list(ex, 0, it, "messages");
    }
    const cJSON *inp = get(o, "input");
    if (cJSON_IsObject(inp) && (get(o, "preferred_output") || get(o, "non_preferred_output"))) {
        ex->format = LMA_EXF_PREFERENCE;
        LMA_TRY(parse_msg_list(ex, 0, get(inp, "messages"), "input.messages"));
        const cJSON *p = get(o, "preferred_output"), *n = get(o, "non_preferred_output");
        if (!p || !n) { set_err(ex, "missing_field", "needs both \"preferred_output\" and \"non_preferred_output\""); return LMA_OK; }
        LMA_TRY(parse_msg_list(ex, 1, p, "preferred_output"));
        return parse_msg_list(ex, 2, n, "non_preferred_output");
    }
    if ((it = get(o, "conversations"))) {
        ex->format = LMA_EXF_SHAREGPT;
        return parse_msg_list(ex, 0, it, "conversations");
    }
    const cJSON *ch = get(o, "chosen"), *rj = get(o, "rejected");
    if (ch || rj) {
        ex->format = LMA_EXF_PREFERENCE;
        if (!ch || !rj) { set_err(ex, "missing_field", "preference record needs both \"chosen\" and \"rejected\""); return LMA_OK; }
        if ((it = get(o, "prompt")) && !cJSON_IsNull(it)) LMA_TRY(parse_str_or_list(ex, 0, it, LMA_ROLE_USER, "prompt"));
        LMA_TRY(parse_str_or_list(ex, 1, ch, LMA_ROLE_ASSISTANT, "chosen"));
        return parse_str_or_list(ex, 2, rj, LMA_ROLE_ASSISTANT, "rejected");
    }
    if ((it = get(o, "instruction"))) {
        ex->format = LMA_EXF_ALPACA;
        const cJSON *in = get(o, "input"), *out = get(o, "output");
        if (!cJSON_IsString(it)) { set_err(ex, "field_type", "field \"instruction\" must be a string"); return LMA_OK; }
        if (in && !cJSON_IsNull(in) && !cJSON_IsString(in)) { set_err(ex, "field_type", "field \"input\" must be a string"); return LMA_OK; }
        if (!out) { set_err(ex, "missing_field", "alpaca record has no \"output\""); return LMA_OK; }
        if (!cJSON_IsString(out)) { set_err(ex, "field_type", "field \"output\" must be a string"); return LMA_OK; }
        lma_ex_msg user = str_msg(LMA_ROLE_USER, NULL, it);
        if (cJSON_IsString(in) && in->valuestring[0]) {
            size_t a = strlen(it->valuestring), b = strlen(in->valuestring), need;
            if (!lma_add_ok(a, b, &need) || !lma_add_ok(need, 3, &need)) return lma_error(LMA_ERR_NOMEM, "alpaca: size overflow");
            if (need > ex->buf_cap_) {
                char *p = realloc(ex->buf_, need);
                if (!p) return lma_error(LMA_ERR_NOMEM, "alpaca: out of memory");
                ex->buf_ = p; ex->buf_cap_ = need;
            }
            memcpy(ex->buf_, it->valuestring, a);
            memcpy(ex->buf_ + a, "\n\n", 2);
            memcpy(ex->buf_ + a + 2, in->valuestring, b + 1);
            user.text = ex->buf_; user.len = a + 2 + b;
        }
        LMA_TRY(push_msg(ex, 0, user));
        return push_msg(ex, 0, str_msg(LMA_ROLE_ASSISTANT, NULL, out));
    }
    const cJSON *pr = get(o, "prompt"), *co = get(o, "completion");
    if (pr && co) {
        ex->format = LMA_EXF_PROMPT_COMPLETION;
        LMA_TRY(parse_str_or_list(ex, 0, pr, LMA_ROLE_USER, "prompt"));
        return parse_str_or_list(ex, 0, co, LMA_ROLE_ASSISTANT, "completion");
    }
    const cJSON *q = get(o, "question"), *a = get(o, "answer");
    if (q && a) {
        ex->format = LMA_EXF_QA;
        if (!cJSON_IsString(q) || !cJSON_IsString(a)) { set_err(ex, "field_type", "fields \"question\" and \"answer\" must be strings"); return LMA_OK; }
        LMA_TRY(push_msg(ex, 0, str_msg(LMA_ROLE_USER, NULL, q)));
        return push_msg(ex, 0, str_msg(LMA_ROLE_ASSISTANT, NULL, a));
    }
    if ((it = get(o, "text"))) {
        ex->format = LMA_EXF_TEXT;
        if (!cJSON_IsString(it)) { set_err(ex, "field_type", "field \"text\" must be a string"); return LMA_OK; }
        return push_msg(ex, 0, str_msg(LMA_ROLE_TEXT, NULL, it));
    }
    if (pr) { set_err(ex, "missing_field", "record has \"prompt\" but no \"completion\" or \"chosen\"/\"rejected\""); return LMA_OK; }
    set_err(ex, "missing_messages_list",
            "no known format: expected \"messages\", \"conversations\", \"instruction\", "
            "\"prompt\"+\"completion\", \"chosen\"+\"rejected\", \"question\"+\"answer\" or \"text\"");
    return LMA_OK;
}

lma_status lma_ex_parse(const char *text, size_t len, const char *file, int64_t line, lma_example *ex) {
    if (ex->json) { cJSON_Delete(ex->json); ex->json = NULL; }
    ex->file = file; ex->line = line;
    ex->format = LMA_EXF_UNKNOWN;
    ex->n_msgs = ex->n_chosen = ex->n_rejected = 0;
    ex->raw = text; ex->raw_len = len;
    ex->error_code = NULL; ex->error[0] = 0;
    size_t bad;
    if (!lma_utf8_valid(text, len, &bad)) {
        set_err(ex, "invalid_utf8", "invalid UTF-8 at byte %zu of the record", bad);
        return LMA_OK;
    }
    const char *end = NULL;
    ex->json = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!ex->json) {
        size_t off = end ? (size_t)(end - text) : 0;
        set_err(ex, "invalid_json", "malformed JSON near byte %zu", off);
        return LMA_OK;
    }
    for (const char *p = end; p && p < text + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            set_err(ex, "invalid_json", "extra bytes after the JSON value at byte %zu", (size_t)(p - text));
            return LMA_OK;
        }
    }
    if (!cJSON_IsObject(ex->json)) {
        set_err(ex, "data_type", "record is not a JSON object");
        return LMA_OK;
    }
    return normalize(ex);
}

void lma_ex_clear(lma_example *ex) {
    if (!ex) return;
    cJSON_Delete(ex->json);
    free(ex->msgs); free(ex->chosen); free(ex->rejected); free(ex->buf_);
    memset(ex, 0, sizeof *ex);
}

lma_status lma_ex_text(const lma_example *ex, lma_ex_part part, lma_buf *b) {
    int first = 1;
    const lma_ex_msg *lists[3] = {ex->msgs, ex->chosen, ex->rejected};
    size_t ns[3] = {ex->n_msgs, ex->n_chosen, ex->n_rejected};
    LMA_TRY(lma_buf_append(b, "", 0));
    for (int l = 0; l < 3; l++)
        for (size_t i = 0; i < ns[l]; i++) {
            const lma_ex_msg *m = &lists[l][i];
            int resp = l > 0 || m->role == LMA_ROLE_ASSISTANT || m->role == LMA_ROLE_TEXT;
            if (!((resp ? LMA_EX_RESPONSE : LMA_EX_PROMPT) & part)) continue;
            if (!first) LMA_TRY(lma_buf_append(b, "\n", 1));
            LMA_TRY(lma_buf_append(b, m->text, m->len));
            first = 0;
        }
    return LMA_OK;
}

lma_status lma_ex_line(const lma_example *ex, lma_buf *out) {
    if (!memchr(ex->raw, '\n', ex->raw_len) || !ex->json) {
        size_t n = ex->raw_len;
        while (n && (ex->raw[n - 1] == '\n' || ex->raw[n - 1] == '\r')) n--;
        return lma_buf_append(out, ex->raw, n);
    }
    char *s = cJSON_PrintUnformatted(ex->json);
    if (!s) return lma_error(LMA_ERR_NOMEM, "%s:%lld: out of memory re-serializing the record", ex->file, (long long)ex->line);
    lma_status st = lma_buf_append(out, s, strlen(s));
    free(s);
    return st;
}

/* ---- streaming reader ------------------------------------------------- */

struct lma_ex_reader {
    FILE *f;
    int own;
    char path[1024];
    char *buf; size_t cap, pos, end; /* buf[pos..end) unread */
    int eof;
    int mode;          /* 0 undecided, 1 JSONL, 2 JSON array, 3 array finished */
    int64_t line;      /* line number of buf[pos] */
    int64_t index;
    lma_example ex;
};

lma_status lma_ex_open(const char *path, lma_ex_reader **out) {
    *out = NULL;
    lma_ex_reader *r = lma_calloc(1, sizeof *r, "example reader");
    if (!r) return LMA_ERR_NOMEM;
    snprintf(r->path, sizeof r->path, "%s", path);
    if (!strcmp(path, "-")) { r->f = stdin; r->own = 0; }
    else {
        if (lma_fopen_input(path, &r->f) != LMA_OK) { free(r); return LMA_ERR_IO; }
        r->own = 1;
    }
    r->cap = 1 << 20;
    r->buf = lma_malloc(r->cap, "example reader buffer");
    if (!r->buf) { lma_ex_close(r); return LMA_ERR_NOMEM; }
    r->line = 1;
    *out = r;
    return LMA_OK;
}

void lma_ex_close(lma_ex_reader *r) {
    if (!r) return;
    if (r->own && r->f) fclose(r->f);
    free(r->buf);
    lma_ex_clear(&r->ex);
    free(r);
}


/* Reads more bytes, keeping buf[pos..end) (moved to the front). Returns 0 at EOF. */
static lma_status fill(lma_ex_reader *r, int *got) {
    *got = 0;
    if (r->eof) return LMA_OK;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->end -= r->pos; r->pos = 0;
    }
    if (r->end == r->cap) {
        if (r->cap >= LMA_EX_MAX_RECORD + 2)
            return lma_error(LMA_ERR_FORMAT, "%s:%lld: record longer than %zu bytes", r->path,
                             (long long)r->line, LMA_EX_MAX_RECORD);
        LMA_TRY(lma_grow(&r->buf, &r->cap, r->cap + 1, 1, 0, r->path)); /* doubles */
    }
    size_t n = fread(r->buf + r->end, 1, r->cap - r->end, r->f);
    if (n == 0) {
        if (ferror(r->f)) return lma_error(LMA_ERR_IO, "%s: read error: %s", r->path, strerror(errno));
        r->eof = 1;
        return LMA_OK;
    }
    r->end += n;
    *got = 1;
    return LMA_OK;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Skips whitespace (and in array mode commas), counting lines. Returns the next
 * byte or -1 at EOF. */
static lma_status skip_ws(lma_ex_reader *r, int commas, int *next) {
    for (;;) {
        while (r->pos < r->end) {
            char c = r->buf[r->pos];
            if (c == '\n') r->line++;
            if (is_ws(c) || (commas && c == ',')) { r->pos++; continue; }
            *next = (unsigned char)c;
            return LMA_OK;
        }
        int got; LMA_TRY(fill(r, &got));
        if (!got) { *next = -1; return LMA_OK; }
    }
}

lma_status lma_ex_next(lma_ex_reader *r, lma_example **out) {
    *out = NULL;
    if (r->mode == 0) {
        int c; LMA_TRY(skip_ws(r, 0, &c));
        /* UTF-8 byte order mark */
        if (c == 0xEF && r->end - r->pos >= 3 && !memcmp(r->buf + r->pos, "\xEF\xBB\xBF", 3)) {
            r->pos += 3;
            LMA_TRY(skip_ws(r, 0, &c));
        }
        if (c == '[') { r->mode = 2; r->pos++; }
        else r->mode = 1;
    }
    if (r->mode == 3) return LMA_OK;
    if (r->mode == 1) {
        for (;;) {
            char *nl = memchr(r->buf + r->pos, '\n', r->end - r->pos);
            if (!nl) {
                int got; LMA_TRY(fill(r, &got));
                if (got) continue;
                if (r->pos == r->end) return LMA_OK;
                nl = r->buf + r->end; /* last line without a newline */
            }
            size_t start = r->pos, len = (size_t)(nl - (r->buf + start));
            int64_t line = r->line;
            r->pos = start + len + (nl < r->buf + r->end ? 1 : 0);
            r->line++;
            size_t n = len;
            while (n && is_ws(r->buf[start + n - 1])) n--;
            size_t s0 = 0;
            while (s0 < n && is_ws(r->buf[start + s0])) s0++;
            if (s0 == n) continue; /* blank line */
            LMA_TRY(lma_ex_parse(r->buf + start + s0, n - s0, r->path, line, &r->ex));
            r->ex.index = r->index++;
            *out = &r->ex;
            return LMA_OK;
        }
    }
    /* JSON array: one element at a time, tracking strings and nesting. */
    int c; LMA_TRY(skip_ws(r, 1, &c));
    if (c == -1) return lma_error(LMA_ERR_FORMAT, "%s:%lld: JSON array is not closed with ']'", r->path, (long long)r->line);
    if (c == ']') {
        r->mode = 3; r->pos++;
        LMA_TRY(skip_ws(r, 0, &c));
        if (c != -1) return lma_error(LMA_ERR_FORMAT, "%s:%lld: extra data after the closing ']'", r->path, (long long)r->line);
        return LMA_OK;
    }
    int64_t line = r->line;
    size_t i = r->pos; /* scan offset relative to buf; rebased after fill */
    int depth = 0, in_str = 0, esc = 0;
    int64_t nl = 0;
    for (;;) {
        if (i == r->end) {
            size_t rel = i - r->pos;
            int got; LMA_TRY(fill(r, &got));
            i = r->pos + rel;
            if (!got) {
                /* an unterminated element: hand it to the parser, which reports it */
                break;
            }
            continue;
        }
        char ch = r->buf[i++];
        if (ch == '\n') nl++;
        if (in_str) {
            if (esc) esc = 0;
            else if (ch == '\\') esc = 1;
            else if (ch == '"') in_str = 0;
            continue;
        }
        if (ch == '"') in_str = 1;
        else if (ch == '{' || ch == '[') depth++;
        else if (ch == '}' || ch == ']') {
            if (depth == 0) { /* a ']' closing the array after a scalar; a stray '}' is its own (bad) element */
                if (i - 1 > r->pos) i--;
                break;
            }
            if (--depth == 0) break;
        } else if (ch == ',' && depth == 0) { i--; break; }
    }
    size_t start = r->pos, len = i - start;
    r->pos = i; r->line += nl;
    size_t n = len;
    while (n && is_ws(r->buf[start + n - 1])) n--;
    LMA_TRY(lma_ex_parse(r->buf + start, n, r->path, line, &r->ex));
    r->ex.index = r->index++;
    *out = &r->ex;
    if (r->eof && r->pos == r->end && !r->ex.error_code)
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: JSON array is not closed with ']'", r->path, (long long)r->line);
    return LMA_OK;
}
