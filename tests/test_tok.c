/* Tokenizer parity with HF tokenizers: ids, decodings and offsets on the fixtures
 * made by tests/ref/make_tok_fixtures.py (tokenizers trained there; texts cover prose,
 * code, whitespace, digits, CJK, emoji, combining marks, invalid UTF-8 and special
 * tokens inside text). Also the streaming decoder and load errors. */
#include <pthread.h>
#include <stdint.h>
#include "core/io.h"
#include "core/json.h"
#include "test.h"
#include "tok/tokenizer.h"

static char *unhex(const char *h, size_t *n) {
    size_t l = strlen(h) / 2;
    char *o = malloc(l + 1);
    for (size_t i = 0; i < l; i++) { unsigned v; sscanf(h + 2 * i, "%2x", &v); o[i] = (char)v; }
    o[l] = 0; *n = l;
    return o;
}

static int ids_eq(const int32_t *a, size_t na, const cJSON *arr) {
    if ((size_t)cJSON_GetArraySize(arr) != na) return 0;
    size_t i = 0; const cJSON *it;
    cJSON_ArrayForEach(it, arr) if (a[i++] != (int32_t)it->valuedouble) return 0;
    return 1;
}

static int32_t *arr_ids(const cJSON *arr, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(arr);
    int32_t *v = malloc((*n + 1) * sizeof *v);
    size_t i = 0; const cJSON *it;
    cJSON_ArrayForEach(it, arr) v[i++] = (int32_t)it->valuedouble;
    return v;
}

static void first_diff(const int32_t *a, size_t na, const cJSON *arr) {
    size_t i = 0; const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (i >= na || a[i] != (int32_t)it->valuedouble) {
            fprintf(stderr, "   first difference at %zu: got %d, want %d (got %zu ids, want %d)\n", i, i < na ? a[i] : -1,
                    (int)it->valuedouble, na, cJSON_GetArraySize(arr));
            return;
        }
        i++;
    }
    fprintf(stderr, "   got %zu ids, want %d\n", na, cJSON_GetArraySize(arr));
}

static int valid_utf8(const char *s, size_t n) {
    char *c; size_t cn;
    if (lma_tok_utf8_sanitize(s, n, &c, &cn) != LMA_OK) return 0;
    int ok = cn == n && !memcmp(c, s, n);
    free(c);
    return ok;
}

static void check_decode(const lma_tokenizer *t, const char *name, const char *what, const cJSON *ids, const char *hex, int skip) {
    size_t n, wl; int32_t *v = arr_ids(ids, &n);
    char *want = unhex(hex, &wl);
    char *got = NULL; size_t gl = 0;
    CHECK_OK(lma_tok_decode(t, v, n, skip, &got, &gl));
    CHECK(got && gl == wl && !memcmp(got, want, wl), "%s %s decode(skip=%d): got \"%s\" want \"%s\"", name, what, skip,
          got ? got : "(null)", want);
    /* the streaming decoder yields the same text in valid UTF-8 pieces */
    lma_tok_stream *s = NULL;
    CHECK_OK(lma_tok_stream_new(t, skip, &s));
    char *acc = calloc(1, 1); size_t al = 0; int pieces_ok = 1;
    for (size_t i = 0; i <= n && s; i++) {
        char *p = NULL; size_t pl = 0;
        lma_status st = i < n ? lma_tok_stream_push(s, v[i], &p, &pl) : lma_tok_stream_flush(s, &p, &pl);
        if (st != LMA_OK || !p) { pieces_ok = 0; free(p); break; }
        if (!valid_utf8(p, pl)) pieces_ok = 0;
        acc = realloc(acc, al + pl + 1); memcpy(acc + al, p, pl); al += pl; acc[al] = 0;
        free(p);
    }
    /* equal to the full decode unless bytes turn out invalid after a valid prefix was
     * already streamed (HF's ByteFallback then replaces the whole byte group) */
    int has_repl = strstr(want, "\xEF\xBF\xBD") != NULL;
    CHECK(pieces_ok && (has_repl || (al == wl && !memcmp(acc, want, wl))), "%s %s stream decode: got \"%s\" want \"%s\"",
          name, what, acc, want);
    lma_tok_stream_free(s);
    free(acc); free(got); free(want); free(v);
}

static void run_tokenizer(const char *name, const cJSON *fx, const char *long_hex) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/tok/%s", LMA_SRC_DIR, name);
    lma_tokenizer *t = NULL;
    CHECK_OK(lma_tok_load(dir, &t));
    if (!t) return;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(fx, "cases")) {
        const char *cn = cJSON_GetObjectItem(c, "name")->valuestring;
        size_t tl; char *text = unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &tl);
        int32_t *ids = NULL; size_t n = 0;
        CHECK_OK(lma_tok_encode(t, text, tl, 0, &ids, &n));
        int ok = ids_eq(ids, n, cJSON_GetObjectItem(c, "ids"));
        CHECK(ok, "%s/%s: ids differ from HF", name, cn);
        if (!ok) first_diff(ids, n, cJSON_GetObjectItem(c, "ids"));
        free(ids);
        size_t *st = NULL, *en = NULL;
        CHECK_OK(lma_tok_encode_offsets(t, text, tl, 1, &ids, &st, &en, &n));
        CHECK(ids_eq(ids, n, cJSON_GetObjectItem(c, "ids_special")), "%s/%s: ids with specials differ from HF", name, cn);
        /* offsets are ordered and inside the text */
        int off_ok = 1;
        for (size_t i = 0; i < n; i++) {
            if (st[i] > en[i] || en[i] > tl * 3) off_ok = 0;
            if (i && st[i] < st[i - 1]) off_ok = 0;
        }
        CHECK(off_ok, "%s/%s: offsets out of order", name, cn);
        free(ids); free(st); free(en);
        check_decode(t, name, cn, cJSON_GetObjectItem(c, "ids_special"), cJSON_GetObjectItem(c, "decoded_hex")->valuestring, 0);
        check_decode(t, name, cn, cJSON_GetObjectItem(c, "ids_special"), cJSON_GetObjectItem(c, "decoded_skip_hex")->valuestring, 1);
        free(text);
    }
    int k = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(fx, "random_decode")) {
        char what[32]; snprintf(what, sizeof what, "random#%d", k++);
        check_decode(t, name, what, cJSON_GetObjectItem(c, "ids"), cJSON_GetObjectItem(c, "decoded_hex")->valuestring, 0);
        check_decode(t, name, what, cJSON_GetObjectItem(c, "ids"), cJSON_GetObjectItem(c, "decoded_skip_hex")->valuestring, 1);
    }
    /* long text (tinyshakespeare + gsm8k excerpt), twice: the second run hits the word cache */
    size_t tl; char *text = unhex(long_hex, &tl);
    for (int rep = 0; rep < 2; rep++) {
        int32_t *ids = NULL; size_t n = 0;
        CHECK_OK(lma_tok_encode(t, text, tl, 0, &ids, &n));
        int ok = ids_eq(ids, n, cJSON_GetObjectItem(fx, "long_ids"));
        CHECK(ok, "%s: long text ids differ from HF (run %d)", name, rep);
        if (!ok) first_diff(ids, n, cJSON_GetObjectItem(fx, "long_ids"));
        free(ids);
    }
    free(text);
    lma_tok_free(t);
}

/* Without a normalizer, the token offsets tile the text exactly. */
static void offsets_tile(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    lma_tokenizer *t = NULL;
    CHECK_OK(lma_tok_load(dir, &t));
    if (!t) return;
    const char *s = "Hello  world<|eot_id|>\n\n  日本 😀 x=12345;";
    int32_t *ids; size_t *st, *en, n;
    CHECK_OK(lma_tok_encode_offsets(t, s, strlen(s), 1, &ids, &st, &en, &n));
    size_t pos = 0; int ok = st[0] == 0 && en[0] == 0; /* BOS */
    for (size_t i = 1; i < n; i++) { if (st[i] != pos) ok = 0; pos = en[i]; }
    CHECK(ok && pos == strlen(s), "byte-level offsets do not tile the text");
    free(ids); free(st); free(en);
    CHECK(lma_tok_vocab_size(t) == 1200 + 0 || lma_tok_vocab_size(t) > 0, "vocab size");
    CHECK(lma_tok_bos_id(t) == lma_tok_token_to_id(t, "<|begin_of_text|>") && lma_tok_bos_id(t) >= 0, "bos id from config");
    CHECK(lma_tok_is_special(t, lma_tok_eos_id(t)), "eos is special");
    lma_tok_free(t);
}

/* Several threads encoding at once (shared word cache) give the single-thread ids. */
typedef struct { const lma_tokenizer *t; const char *text; size_t len; int32_t *ids; size_t n; lma_status st; } job;
static void *encode_job(void *arg) {
    job *j = arg;
    j->st = lma_tok_encode(j->t, j->text, j->len, 1, &j->ids, &j->n);
    return NULL;
}
static void threads_agree(const char *long_hex) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/tok/sp", LMA_SRC_DIR);
    lma_tokenizer *t = NULL, *ref = NULL;
    CHECK_OK(lma_tok_load(dir, &t));
    CHECK_OK(lma_tok_load(dir, &ref));
    if (!t || !ref) return;
    size_t tl; char *text = unhex(long_hex, &tl);
    int32_t *want; size_t nw;
    CHECK_OK(lma_tok_encode(ref, text, tl, 1, &want, &nw));
    job jobs[4]; pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){t, text + i * 97, tl - (size_t)i * 97, NULL, 0, LMA_OK};
        pthread_create(&th[i], NULL, encode_job, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        int32_t *w1; size_t n1;
        CHECK_OK(lma_tok_encode(ref, text + i * 97, tl - (size_t)i * 97, 1, &w1, &n1));
        CHECK(jobs[i].st == LMA_OK && jobs[i].n == n1 && !memcmp(jobs[i].ids, w1, n1 * sizeof *w1), "thread %d ids differ", i);
        free(w1); free(jobs[i].ids);
    }
    free(want); free(text);
    lma_tok_free(t); lma_tok_free(ref);
}

static void load_errors(void) {
    struct { const char *json; lma_status want; const char *needle; } cases[] = {
        {"{", LMA_ERR_FORMAT, "tokenizer.json"},
        {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", LMA_ERR_FORMAT, "unk_token"},
        {"{\"normalizer\":{\"type\":\"Precompiled\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
         LMA_ERR_UNSUPPORTED, "Precompiled"},
        {"{\"pre_tokenizer\":{\"type\":\"Whitespace\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
         LMA_ERR_UNSUPPORTED, "Whitespace"},
        {"{\"decoder\":{\"type\":\"CTC\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
         LMA_ERR_UNSUPPORTED, "CTC"},
        {"{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", LMA_ERR_UNSUPPORTED, "Unigram"},
        {"{\"post_processor\":{\"type\":\"BertProcessing\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
         LMA_ERR_UNSUPPORTED, "BertProcessing"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b\"]}}", LMA_ERR_FORMAT, "merges[0]"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]}}", LMA_ERR_FORMAT, "vocab"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[], \"unk_token\":\"<unk>\"}}", LMA_ERR_FORMAT, "unk_token"},
        {"{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"},"
         "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}", LMA_ERR_UNSUPPORTED, "regex"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lma_tokenizer *t = NULL;
        lma_clear_error();
        lma_status s = lma_tok_load_json(cases[i].json, strlen(cases[i].json), "tokenizer.json", &t);
        CHECK(s == cases[i].want && !t && strstr(lma_last_error(), cases[i].needle),
              "load error case %zu: got %s \"%s\"", i, lma_status_name(s), lma_last_error());
        lma_clear_error();
        lma_tok_free(t);
    }
    lma_tokenizer *t = NULL;
    CHECK(lma_tok_load("/nonexistent-dir", &t) == LMA_ERR_IO && !t, "missing dir is an I/O error");
    lma_clear_error();
}

int main(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/ref/tok/cases.json", LMA_SRC_DIR);
    cJSON *root = NULL;
    CHECK_OK(lma_json_load(path, &root));
    if (!root) TEST_END();
    const cJSON *toks = cJSON_GetObjectItem(root, "tokenizers");
    const char *long_hex = cJSON_GetObjectItem(cJSON_GetObjectItem(toks, "bl"), "long_hex")->valuestring;
    const char *names[] = {"bl", "sp", "spm", "g2"};
    for (int i = 0; i < 4; i++) run_tokenizer(names[i], cJSON_GetObjectItem(toks, names[i]), long_hex);
    threads_agree(long_hex);
    cJSON_Delete(root);
    offsets_tile();
    load_errors();
    TEST_END();
}
