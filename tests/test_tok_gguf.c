/* The tokenizer from GGUF metadata (src/tok/tok_gguf.c) against transformers' GGUF
 * tokenizer, on the committed vocab-only fixtures of tests/ref/gguf/ (made by
 * tests/ref/make_gguf_tok_fixtures.py): a SentencePiece (llama) vocab and one byte-level
 * (gpt2) vocab under six tokenizer.ggml.pre names. Also lma_tok_save_files (GGUF and HF
 * folder sources) and malformed metadata (missing tokens, arrays of different lengths, a
 * merge naming an unknown token), whose messages must name the file and the key.
 * The real SmolLM2 GGUF is test_tok_gguf_model.c (skipped without the model). */
#include <unistd.h>
#include "core/io.h"
#include "format/gguf.h"
#include "tok/chat_template.h"
#include "tok_gguf_cases.h"

static lma_tokenizer *load(const char *path) {
    lma_tokenizer *t = NULL;
    CHECK_OK(lma_tok_load(path, &t));
    return t;
}

static cJSON *fixture(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/ref/gguf/%s", LMA_SRC_DIR, name);
    cJSON *doc = NULL;
    CHECK_OK(lma_json_load(path, &doc));
    return doc;
}

/* ---- a tiny GGUF writer for the malformed cases ---- */
typedef struct { unsigned char *p; size_t n, cap; uint64_t nkv; } gbuf;
static void put(gbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 64; b->p = realloc(b->p, b->cap); }
    memcpy(b->p + b->n, d, n); b->n += n;
}
static void put_u32(gbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(gbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_s(gbuf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void kv_str(gbuf *b, const char *k, const char *v) { put_s(b, k); put_u32(b, LMA_GGUF_STRING); put_s(b, v); b->nkv++; }
static void kv_u32(gbuf *b, const char *k, uint32_t v) { put_s(b, k); put_u32(b, LMA_GGUF_U32); put_u32(b, v); b->nkv++; }
static void kv_strs(gbuf *b, const char *k, const char **v, int n) {
    put_s(b, k); put_u32(b, LMA_GGUF_ARRAY); put_u32(b, LMA_GGUF_STRING); put_u64(b, (uint64_t)n);
    for (int i = 0; i < n; i++) put_s(b, v[i]);
    b->nkv++;
}
static void kv_f32s(gbuf *b, const char *k, int n) {
    put_s(b, k); put_u32(b, LMA_GGUF_ARRAY); put_u32(b, LMA_GGUF_F32); put_u64(b, (uint64_t)n);
    for (int i = 0; i < n; i++) { float f = (float)-i; put(b, &f, 4); }
    b->nkv++;
}
static void kv_i32s(gbuf *b, const char *k, int n) {
    put_s(b, k); put_u32(b, LMA_GGUF_ARRAY); put_u32(b, LMA_GGUF_I32); put_u64(b, (uint64_t)n);
    for (int i = 0; i < n; i++) put_u32(b, 1);
    b->nkv++;
}
/* header + kvs (no tensors), padded to 32 */
static size_t finish(const gbuf *kv, unsigned char **out) {
    gbuf b = {0};
    put(&b, "GGUF", 4); put_u32(&b, 3); put_u64(&b, 0); put_u64(&b, kv->nkv);
    put(&b, kv->p, kv->n);
    while (b.n % 32) put(&b, "", 1);
    *out = b.p;
    return b.n;
}

/* Writes the GGUF to a file, loads it; the load must fail with a message holding the
 * file name and `key`. */
static void expect_fail(const gbuf *kv, const char *key, const char *what) {
    unsigned char *data = NULL;
    size_t n = finish(kv, &data);
    char path[256];
    snprintf(path, sizeof path, "/tmp/lma_test_tok_gguf_%d.gguf", (int)getpid());
    CHECK_OK(lma_write_file_atomic(path, data, n));
    lma_tokenizer *t = NULL;
    lma_status st = lma_tok_load(path, &t);
    const char *msg = lma_last_error();
    CHECK(st != LMA_OK && t == NULL, "%s: loaded", what);
    CHECK(msg && strstr(msg, path) && strstr(msg, key), "%s: message \"%s\" names neither %s nor %s", what, msg ? msg : "",
          path, key);
    lma_clear_error();
    lma_tok_free(t);
    /* the same through lma_tok_gguf_json on a buffer */
    lma_gguf *g = NULL;
    if (lma_gguf_open_buffer(data, n, "buffer.gguf", &g) == LMA_OK) {
        char *tj = NULL, *tc = NULL;
        st = lma_tok_gguf_json(g, &tj, &tc);
        CHECK(st != LMA_OK && !tj && !tc, "%s: lma_tok_gguf_json succeeded", what);
        msg = lma_last_error();
        CHECK(msg && strstr(msg, "buffer.gguf") && strstr(msg, key), "%s: buffer message \"%s\"", what, msg ? msg : "");
        lma_gguf_close(g);
    }
    lma_clear_error();
    unlink(path);
    free(data);
}

static void malformed(void) {
    static const char *toks[] = {"a", "b", "ab", "<s>"};
    gbuf kv = {0};
    kv_str(&kv, "general.architecture", "llama");
    kv_str(&kv, "tokenizer.ggml.model", "llama");
    expect_fail(&kv, "tokenizer.ggml.tokens", "no tokens");
    free(kv.p);

    kv = (gbuf){0};
    kv_str(&kv, "tokenizer.ggml.model", "llama");
    kv_strs(&kv, "tokenizer.ggml.tokens", toks, 4);
    kv_f32s(&kv, "tokenizer.ggml.scores", 3);
    expect_fail(&kv, "tokenizer.ggml.scores", "3 scores for 4 tokens");
    free(kv.p);

    kv = (gbuf){0};
    kv_str(&kv, "tokenizer.ggml.model", "llama");
    kv_strs(&kv, "tokenizer.ggml.tokens", toks, 4);
    kv_f32s(&kv, "tokenizer.ggml.scores", 4);
    kv_i32s(&kv, "tokenizer.ggml.token_type", 5);
    expect_fail(&kv, "tokenizer.ggml.token_type", "5 token types for 4 tokens");
    free(kv.p);

    static const char *merges[] = {"a b", "a c"};
    kv = (gbuf){0};
    kv_str(&kv, "tokenizer.ggml.model", "gpt2");
    kv_strs(&kv, "tokenizer.ggml.tokens", toks, 4);
    kv_strs(&kv, "tokenizer.ggml.merges", merges, 2);
    expect_fail(&kv, "tokenizer.ggml.merges[1]", "a merge naming an unknown token");
    free(kv.p);

    kv = (gbuf){0};
    kv_str(&kv, "tokenizer.ggml.model", "bert");
    kv_strs(&kv, "tokenizer.ggml.tokens", toks, 4);
    expect_fail(&kv, "tokenizer.ggml.model", "an unsupported model");
    free(kv.p);

    kv = (gbuf){0};
    kv_str(&kv, "tokenizer.ggml.model", "llama");
    kv_strs(&kv, "tokenizer.ggml.tokens", toks, 4);
    kv_f32s(&kv, "tokenizer.ggml.scores", 4);
    kv_u32(&kv, "tokenizer.ggml.bos_token_id", 4);
    expect_fail(&kv, "tokenizer.ggml.bos_token_id", "a bos id past the vocab");
    free(kv.p);

    /* no tokenizer at all */
    kv = (gbuf){0};
    kv_str(&kv, "general.architecture", "llama");
    expect_fail(&kv, "tokenizer.ggml.model", "no tokenizer metadata");
    free(kv.p);

    /* a well-formed minimal SentencePiece vocab loads: merges derived from the scores */
    kv = (gbuf){0};
    kv_str(&kv, "tokenizer.ggml.model", "llama");
    kv_strs(&kv, "tokenizer.ggml.tokens", toks, 4);
    kv_f32s(&kv, "tokenizer.ggml.scores", 4);
    unsigned char *data = NULL;
    size_t n = finish(&kv, &data);
    lma_gguf *g = NULL;
    CHECK_OK(lma_gguf_open_buffer(data, n, "minimal.gguf", &g));
    char *tj = NULL, *tc = NULL;
    if (g) CHECK_OK(lma_tok_gguf_json(g, &tj, &tc));
    lma_tokenizer *t = NULL;
    if (tj) CHECK_OK(lma_tok_load_json(tj, strlen(tj), "minimal", &t));
    if (t) {
        int32_t *ids = NULL; size_t nid = 0;
        CHECK_OK(lma_tok_encode(t, "ab", 2, 0, &ids, &nid));
        CHECK(nid == 1 && ids[0] == 2, "minimal: \"ab\" -> %zu ids (first %d), want [2]", nid, nid ? ids[0] : -1);
        free(ids);
        /* LlamaTokenizer's default "</s>" and "<unk>" are absent: transformers appends them with ids
         * past the vocab (rows no embedding has); lmadapt does not (tok_gguf.c) */
        CHECK(lma_tok_vocab_size(t) == 4 && lma_tok_token_to_id(t, "</s>") == -1 && lma_tok_token_to_id(t, "<unk>") == -1,
              "minimal: vocab size %d, </s> %d, <unk> %d", lma_tok_vocab_size(t), lma_tok_token_to_id(t, "</s>"),
              lma_tok_token_to_id(t, "<unk>"));
    }
    lma_tok_free(t);
    free(tj); free(tc);
    lma_gguf_close(g);
    free(data);
    free(kv.p);
}

/* lma_tok_save_files from a GGUF and from an HF folder: the written folder loads to the same ids */
static void save_files(const lma_tokenizer *ref, const char *gguf_path) {
    char dir[256], sub[300];
    snprintf(dir, sizeof dir, "/tmp/lma_test_tok_gguf_save_%d", (int)getpid());
    CHECK_OK(lma_tok_save_files(gguf_path, dir));
    lma_tokenizer *t = load(dir);
    if (t && ref) {
        const char *text = "Saved <think>folder</think> 12 x\n  y";
        int32_t *a = NULL, *b = NULL; size_t na = 0, nb = 0;
        CHECK_OK(lma_tok_encode(ref, text, strlen(text), 1, &a, &na));
        CHECK_OK(lma_tok_encode(t, text, strlen(text), 1, &b, &nb));
        CHECK(na == nb && na && !memcmp(a, b, na * sizeof *a), "saved folder encodes differently");
        CHECK(lma_tok_chat_template(t) && lma_tok_chat_template(ref) &&
              !strcmp(lma_tok_chat_template(t), lma_tok_chat_template(ref)), "saved folder lost the chat template");
        CHECK(lma_tok_bos_id(t) == lma_tok_bos_id(ref) && lma_tok_eos_id(t) == lma_tok_eos_id(ref), "saved bos/eos differ");
        free(a); free(b);
    }
    lma_tok_free(t);
    /* copy of an HF folder */
    char src[1024];
    snprintf(src, sizeof src, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    snprintf(sub, sizeof sub, "%s/hf", dir);
    CHECK_OK(lma_tok_save_files(src, sub));
    char p1[1100], p2[400];
    snprintf(p1, sizeof p1, "%s/tokenizer.json", src);
    snprintf(p2, sizeof p2, "%s/tokenizer.json", sub);
    char *x = NULL, *y = NULL; size_t nx = 0, ny = 0;
    CHECK_OK(lma_read_file(p1, &x, &nx));
    CHECK_OK(lma_read_file(p2, &y, &ny));
    CHECK(x && y && nx == ny && !memcmp(x, y, nx), "HF folder: tokenizer.json not copied as is");
    free(x); free(y);
    CHECK(lma_tok_save_files("/nonexistent/dir", sub) != LMA_OK, "a source without tokenizer succeeded");
    lma_clear_error();
    static const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"};
    for (int i = 0; i < 4; i++) {
        snprintf(p2, sizeof p2, "%s/%s", sub, files[i]); unlink(p2);
        snprintf(p2, sizeof p2, "%s/%s", dir, files[i]); unlink(p2);
    }
    rmdir(sub); rmdir(dir);
}

int main(void) {
    char path[1024];
    /* SentencePiece (llama) vocab, no merges in the file */
    snprintf(path, sizeof path, "%s/tests/ref/gguf/tok_spm.gguf", LMA_SRC_DIR);
    lma_tokenizer *t = load(path);
    cJSON *doc = fixture("tok_spm.json");
    int n = 0;
    if (t && doc) n += check_cases(t, doc, "tok_spm");
    if (t) {
        CHECK(lma_tok_is_special(t, lma_tok_bos_id(t)) && !lma_tok_is_special(t, lma_tok_token_to_id(t, "<think>")),
              "spm: <s> special, <think> (user-defined) not");
        CHECK(lma_tok_chat_template(t) != NULL, "spm: chat template missing");
        save_files(t, path);
    }
    lma_tok_free(t);
    cJSON_Delete(doc);

    /* byte-level (gpt2) vocab under each pre-tokenizer name */
    doc = fixture("tok_bl.json");
    const cJSON *pre;
    int npre = 0;
    if (doc) cJSON_ArrayForEach(pre, cJSON_GetObjectItem(doc, "pres")) {
        snprintf(path, sizeof path, "%s/tests/ref/gguf/%s", LMA_SRC_DIR, cJSON_GetObjectItem(pre, "source")->valuestring);
        t = load(path);
        char name[128];
        snprintf(name, sizeof name, "tok_bl pre=%s", pre->string);
        if (t) n += check_cases(t, pre, name);
        lma_tok_free(t);
        npre++;
    }
    CHECK(npre == 6, "tok_bl.json: %d pre names, want 6", npre);
    cJSON_Delete(doc);

    malformed();
    printf("%d fixture cases\n", n);
    TEST_END();
}
