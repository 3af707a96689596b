/* Text extraction for the indexer (extract.h). */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "rag/extract.h"

static const char *ext_of(const char *path) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot + 1 : "";
}

int lma_rag_indexable(const char *path) {
    const char *e = ext_of(path);
    return !strcasecmp(e, "txt") || !strcasecmp(e, "md") || !strcasecmp(e, "markdown") || !strcasecmp(e, "html") ||
           !strcasecmp(e, "htm") || !strcasecmp(e, "jsonl");
}

void lma_rag_hash(const void *data, size_t len, char out[64]) {
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ull;
    snprintf(out, 64, "fnv1a64:%016llx:%zu", (unsigned long long)h, len);
}

static void put_utf8(lma_buf *b, unsigned long cp) {
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    char u[4];
    int n;
    if (cp < 0x80) u[0] = (char)cp, n = 1;
    else if (cp < 0x800) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 63)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 63)), u[2] = (char)(0x80 | (cp & 63)), n = 3;
    else
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 63)), u[2] = (char)(0x80 | (cp >> 6 & 63)),
        u[3] = (char)(0x80 | (cp & 63)), n = 4;
    lma_buf_append(b, u, n);
}

static const struct { const char *name; unsigned cp; } entities[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", 0xA0}, {"copy", 0xA9},
    {"reg", 0xAE}, {"ndash", 0x2013}, {"mdash", 0x2014}, {"lsquo", 0x2018}, {"rsquo", 0x2019},
    {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"hellip", 0x2026}, {"eacute", 0xE9}, {"egrave", 0xE8},
    {"agrave", 0xE0}, {"uuml", 0xFC}, {"ouml", 0xF6}, {"auml", 0xE4}, {"szlig", 0xDF}, {"times", 0xD7},
    {"middot", 0xB7}, {"bull", 0x2022}, {"euro", 0x20AC}, {"deg", 0xB0},
};

/* &...; at s (s[0] == '&'): appends the character, returns the bytes consumed (0: not an entity) */
static size_t entity(const char *s, size_t n, lma_buf *b) {
    size_t e = 1;
    while (e < n && e < 12 && s[e] != ';' && (isalnum((unsigned char)s[e]) || s[e] == '#')) e++;
    if (e >= n || s[e] != ';' || e == 1) return 0;
    if (s[1] == '#') {
        char *end;
        unsigned long cp = (s[2] == 'x' || s[2] == 'X') ? strtoul(s + 3, &end, 16) : strtoul(s + 2, &end, 10);
        if (end != s + e) return 0;
        put_utf8(b, cp);
        return e + 1;
    }
    for (size_t i = 0; i < sizeof entities / sizeof entities[0]; i++)
        if (strlen(entities[i].name) == e - 1 && !memcmp(s + 1, entities[i].name, e - 1)) {
            put_utf8(b, entities[i].cp);
            return e + 1;
        }
    return 0;
}

static int tag_is(const char *name, size_t n, const char *const *list) {
    for (; *list; list++)
        if (strlen(*list) == n && !strncasecmp(name, *list, n)) return 1;
    return 0;
}

static const char *const block_tags[] = {"p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "ul", "ol",
                                         "table", "section", "article", "header", "footer", "pre", "blockquote",
                                         "title", "hr", "dt", "dd", "main", "nav", "aside", "figure", NULL};
static const char *const cell_tags[] = {"td", "th", NULL};

/* a whitespace run becomes one space, or "\n\n" when it holds a block break */
static void flush_space(lma_buf *b, int *pending) {
    if (*pending == 2 && b->len) lma_buf_str(b, "\n\n");
    else if (*pending == 1 && b->len) lma_buf_push(b, ' ');
    *pending = 0;
}

lma_status lma_rag_html_text(const char *s, size_t n, char **out, size_t *out_len) {
    lma_buf b = {0};
    int pending = 0; /* 0 none, 1 space, 2 paragraph */
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (c == '<') {
            if (n - i >= 4 && !memcmp(s + i, "<!--", 4)) {
                const char *e = strstr(s + i + 4, "-->");
                i = e && (size_t)(e - s) < n ? (size_t)(e - s) + 3 : n;
                continue;
            }
            size_t j = i + 1;
            int closing = j < n && s[j] == '/';
            if (closing) j++;
            size_t name = j;
            while (j < n && (isalnum((unsigned char)s[j]) || s[j] == '-')) j++;
            size_t name_len = j - name;
            if (name_len == 0 && !(j < n && (s[j] == '!' || s[j] == '?'))) { /* a lone '<' is text */
                flush_space(&b, &pending);
                lma_buf_push(&b, c);
                i++;
                continue;
            }
            const char *gt = memchr(s + j, '>', n - j);
            size_t end = gt ? (size_t)(gt - s) + 1 : n;
            if (!closing && (tag_is(s + name, name_len, (const char *const[]){"script", "style", NULL}))) {
                char close[16];
                snprintf(close, sizeof close, "</%.*s", (int)name_len, s + name);
                size_t k = end;
                while (k < n && !(s[k] == '<' && n - k >= name_len + 2 && !strncasecmp(s + k, close, name_len + 2))) k++;
                const char *gt2 = k < n ? memchr(s + k, '>', n - k) : NULL;
                end = gt2 ? (size_t)(gt2 - s) + 1 : n;
            }
            if (tag_is(s + name, name_len, block_tags)) pending = 2;
            else if (tag_is(s + name, name_len, cell_tags) && pending < 1) pending = 1;
            i = end;
            continue;
        }
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            if (pending < 1) pending = 1;
            i++;
            continue;
        }
        flush_space(&b, &pending);
        if (c == '&') {
            size_t used = entity(s + i, n - i, &b);
            if (used) { i += used; continue; }
        }
        lma_buf_push(&b, c);
        i++;
    }
    if (b.st) { lma_buf_free(&b); return lma_error(LMA_ERR_NOMEM, "html text"); }
    if (!b.p) lma_buf_str(&b, "");
    *out = b.p, *out_len = b.len;
    return b.st;
}

static lma_status add_doc(lma_rag_doc **docs, size_t *n, size_t *cap, char *id, char *meta, char *text, size_t len) {
    if (!id || !meta || !text || lma_grow(docs, cap, *n + 1, sizeof **docs, 8, "documents")) {
        free(id), free(meta), free(text);
        return lma_error(LMA_ERR_NOMEM, "documents");
    }
    (*docs)[(*n)++] = (lma_rag_doc){id, meta, text, len};
    return LMA_OK;
}

static lma_status jsonl_docs(const char *path, const char *data, size_t len, lma_rag_doc **docs, size_t *n) {
    size_t cap = 0, line = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - data) : len;
        line++;
        size_t k = i;
        while (k < e && isspace((unsigned char)data[k])) k++;
        if (k < e) {
            cJSON *o = cJSON_ParseWithLength(data + i, e - i);
            if (!o || !cJSON_IsObject(o)) {
                cJSON_Delete(o);
                return lma_error(LMA_ERR_FORMAT, "%s:%zu: not a JSON object", path, line);
            }
            cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text"), *id = cJSON_GetObjectItemCaseSensitive(o, "id");
            if (!cJSON_IsString(t)) {
                cJSON_Delete(o);
                return lma_error(LMA_ERR_FORMAT, "%s:%zu: field \"text\" missing or not a string", path, line);
            }
            char idb[64], *ids;
            if (cJSON_IsString(id)) ids = strdup(id->valuestring);
            else if (cJSON_IsNumber(id)) snprintf(idb, sizeof idb, "%.17g", id->valuedouble), ids = strdup(idb);
            else if (!id || cJSON_IsNull(id)) { /* no id: path#line */
                ids = malloc(strlen(path) + 32);
                if (ids) sprintf(ids, "%s#%zu", path, line);
            } else {
                cJSON_Delete(o);
                return lma_error(LMA_ERR_FORMAT, "%s:%zu: field \"id\" must be a string or a number", path, line);
            }
            char *text = strdup(t->valuestring);
            size_t tl = text ? strlen(text) : 0;
            cJSON_DeleteItemFromObjectCaseSensitive(o, "text");
            cJSON_DeleteItemFromObjectCaseSensitive(o, "id");
            char *meta = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
            LMA_TRY(add_doc(docs, n, &cap, ids, meta, text, tl));
        }
        i = e + 1;
    }
    return LMA_OK;
}

lma_status lma_rag_extract(const char *path, const char *data, size_t len, lma_rag_doc **docs, size_t *n) {
    *docs = NULL, *n = 0;
    const char *e = ext_of(path);
    lma_status r;
    if (!strcasecmp(e, "jsonl")) r = jsonl_docs(path, data, len, docs, n);
    else {
        char *text;
        size_t tl;
        size_t cap = 0;
        if (!strcasecmp(e, "html") || !strcasecmp(e, "htm")) {
            LMA_TRY(lma_rag_html_text(data, len, &text, &tl));
        } else {
            if (memchr(data, 0, len)) return lma_error(LMA_ERR_FORMAT, "%s: binary file (NUL byte)", path);
            text = malloc(len + 1);
            if (text) memcpy(text, data, len), text[len] = 0;
            tl = len;
        }
        r = add_doc(docs, n, &cap, strdup(path), strdup("{}"), text, tl);
    }
    if (r) { lma_rag_docs_free(*docs, *n); *docs = NULL, *n = 0; }
    return r;
}

void lma_rag_docs_free(lma_rag_doc *docs, size_t n) {
    for (size_t i = 0; i < n; i++) free(docs[i].doc_id), free(docs[i].meta), free(docs[i].text);
    free(docs);
}
