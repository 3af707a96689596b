/* Sentence embeddings and the WordPiece tokenizer of the real all-MiniLM-L6-v2 against
 * sentence-transformers and HF tokenizers (fixtures: tests/ref/make_embed_fixtures.py):
 *   - WordPiece ids (with [CLS]/[SEP], untruncated) equal HF's on 26 varied sentences and
 *     on the tokenizer test texts of make_tok_fixtures.py (invalid UTF-8 included);
 *   - lma_embed equals SentenceTransformer.encode (cosine >= 0.9999 per sentence) with batch
 *     32, and with batch 5 (several padded batches), and one row at a time (no padding);
 *   - the whole encoder run on the double-precision ref backend gives the same vectors;
 *   - dim, max_seq_length, token counts before truncation, and a Dense module refused;
 *   - lmadapt embed --file --json: ids kept, input order, the same vectors; a bad line named.
 * The model comes from scripts/fetch-models.sh; without it the test exits 77 (skipped). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/io.h"
#include "core/json.h"
#include "core/model_path.h"
#include "infer/embed.h"
#include "test.h"
#include "tok/tokenizer.h"

#define NAME "all-minilm-l6-v2"
#define DIM 384

static char *unhex(const char *h, size_t *n) {
    size_t l = strlen(h) / 2;
    char *s = malloc(l + 1);
    for (size_t i = 0; i < l; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        s[i] = (char)v;
    }
    s[l] = 0;
    *n = l;
    return s;
}

static double cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
    return ab / sqrt(aa * bb);
}

/* ids of every case of arr equal the fixture's */
static void check_ids(const lma_tokenizer *tok, const cJSON *arr, const char *what) {
    const cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, arr) {
        size_t n;
        char *s = unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &n);
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        int32_t *ids = NULL;
        size_t m = 0;
        CHECK_OK(lma_tok_encode(tok, s, n, 1, &ids, &m));
        int same = (int)m == cJSON_GetArraySize(want);
        for (size_t i = 0; same && i < m; i++) same = ids[i] == cJSON_GetArrayItem(want, (int)i)->valueint;
        const cJSON *name = cJSON_GetObjectItem(c, "name");
        CHECK(same, "%s %d (%s): %zu ids, HF %d", what, k, name ? name->valuestring : s, m, cJSON_GetArraySize(want));
        free(ids);
        free(s);
        k++;
    }
}

static int run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* lmadapt embed --file: ids kept, input order, the library's vectors; a bad line named */
static void check_cli(const char *const *texts, const float *want) {
    char dir[] = "/tmp/lma_embed_cli_XXXXXX", f[1100], cmd[2400];
    static char out[1 << 16];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(f, sizeof f, "%s/in.jsonl", dir);
    cJSON *a = cJSON_CreateObject(), *b = cJSON_CreateObject(), *c = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "id", "a"); cJSON_AddStringToObject(a, "text", texts[0]);
    cJSON_AddNumberToObject(b, "id", 7); cJSON_AddStringToObject(b, "text", texts[1]);
    cJSON_AddStringToObject(c, "text", texts[2]);
    char *sa = cJSON_PrintUnformatted(a), *sb = cJSON_PrintUnformatted(b), *sc = cJSON_PrintUnformatted(c);
    char body[4096];
    snprintf(body, sizeof body, "%s\n\n%s\n%s\n", sa, sb, sc);
    CHECK_OK(lma_write_file_atomic(f, body, strlen(body)));
    snprintf(cmd, sizeof cmd, "%s embed --model %s --file %s --json -q --threads 1 2>&1", LMA_CLI, NAME, f);
    CHECK(run(cmd, out, sizeof out) == 0, "embed --file exits 0: %.300s", out);
    const char *want_id[3] = {"\"a\"", "7", NULL};
    char *line = out;
    for (int i = 0; i < 3; i++) {
        char *nl = strchr(line, '\n');
        if (!nl) { CHECK(0, "embed --file: %d lines, want 3", i); break; }
        *nl = 0;
        cJSON *j = cJSON_Parse(line);
        const cJSON *id = cJSON_GetObjectItem(j, "id"), *emb = cJSON_GetObjectItem(j, "embedding");
        char *ids = id ? cJSON_PrintUnformatted(id) : NULL;
        CHECK(want_id[i] ? ids && !strcmp(ids, want_id[i]) : !id, "embed --file line %d: id %s", i, ids ? ids : "none");
        free(ids);
        int ok = cJSON_GetArraySize(emb) == DIM;
        float v[DIM];
        for (int k = 0; ok && k < DIM; k++) v[k] = (float)cJSON_GetArrayItem(emb, k)->valuedouble;
        CHECK(ok && cosine(v, want + (size_t)i * DIM, DIM) >= 0.9999, "embed --file line %d: 384 values, the fixture's vector", i);
        cJSON_Delete(j);
        line = nl + 1;
    }
    CHECK(*line == 0, "embed --file: nothing after the 3 lines");
    const char *bad = "{\"text\": \"ok\"}\n{\"txt\": \"no\"}\n";
    CHECK_OK(lma_write_file_atomic(f, bad, strlen(bad)));
    CHECK(run(cmd, out, sizeof out) == 1 && strstr(out, ":2: field \"text\""), "bad line named: %.300s", out);
    snprintf(cmd, sizeof cmd, "%s embed --model %s --text a --file %s 2>&1", LMA_CLI, NAME, f);
    CHECK(run(cmd, out, sizeof out) == 2, "--text with --file is bad usage");
    unlink(f);
    rmdir(dir);
    cJSON_Delete(a); cJSON_Delete(b); cJSON_Delete(c);
    free(sa); free(sb); free(sc);
}

static void check_vectors(const float *got, const float *want, int n, const char *what) {
    double worst = 1;
    for (int i = 0; i < n; i++) {
        double c = cosine(got + (size_t)i * DIM, want + (size_t)i * DIM, DIM);
        CHECK(c >= 0.9999, "%s: sentence %d cosine %.7f", what, i, c);
        if (c < worst) worst = c;
    }
    printf("%s: worst cosine over %d sentences: 1 - %.2e\n", what, n, 1 - worst);
}

int main(void) {
    char path[4096];
    if (lma_model_path_resolve(NAME, path, sizeof path) != LMA_OK) {
        printf("skipped: %s\n", lma_last_error());
        return 77;
    }
    char fx[1024];
    snprintf(fx, sizeof fx, "%s/tests/ref/embed/cases.json", LMA_SRC_DIR);
    cJSON *doc = NULL;
    CHECK_OK(lma_json_load(fx, &doc));
    if (!doc) TEST_END();
    const cJSON *sents = cJSON_GetObjectItem(doc, "sentences");
    int n = cJSON_GetArraySize(sents);
    CHECK(n >= 20, "%d fixture sentences", n);

    /* WordPiece */
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(NAME, &tok));
    if (tok) {
        check_ids(tok, sents, "sentence");
        check_ids(tok, cJSON_GetObjectItem(doc, "tok_texts"), "tokenizer text");
        /* decode as HF: pieces joined, ## removed, " ," and " !" cleaned up (not " ' ") */
        int32_t ids[] = {101, 2123, 1005, 1056, 14477, 20961, 3468, 1010, 2088, 999, 102};
        char *txt = NULL;
        size_t tl = 0;
        CHECK_OK(lma_tok_decode(tok, ids, 11, 1, &txt, &tl));
        CHECK(txt && !strcmp(txt, "don ' t unaffable, world!"), "decode: \"%s\"", txt ? txt : "");
        free(txt);
        txt = NULL;
        CHECK_OK(lma_tok_decode(tok, ids, 11, 0, &txt, &tl));
        CHECK(txt && !strcmp(txt, "[CLS] don ' t unaffable, world! [SEP]"), "decode with specials: \"%s\"", txt ? txt : "");
        free(txt);
        lma_tok_free(tok);
    }

    /* embeddings */
    snprintf(fx, sizeof fx, "%s/tests/ref/embed/embeddings.f32", LMA_SRC_DIR);
    char *raw = NULL;
    size_t rawlen = 0;
    CHECK_OK(lma_read_file(fx, &raw, &rawlen));
    CHECK(rawlen == (size_t)n * DIM * sizeof(float), "embeddings.f32: %zu bytes for %d sentences", rawlen, n);
    const char **texts = calloc((size_t)n, sizeof *texts);
    for (int i = 0; i < n; i++) {
        size_t l;
        texts[i] = unhex(cJSON_GetObjectItem(cJSON_GetArrayItem(sents, i), "hex")->valuestring, &l);
    }
    lma_embedder *e = NULL;
    CHECK_OK(lma_embedder_load(NAME, NULL, &e));
    if (e && raw && rawlen == (size_t)n * DIM * sizeof(float)) {
        const float *want = (const float *)raw;
        CHECK(lma_embedder_dim(e) == DIM, "dim %d", lma_embedder_dim(e));
        CHECK(lma_embedder_max_tokens(e) == 256, "max_seq_length %d", lma_embedder_max_tokens(e));
        for (int i = 0; i < n; i++) { /* token counts before truncation */
            size_t cnt = 0;
            CHECK_OK(lma_embedder_count_tokens(e, texts[i], strlen(texts[i]), &cnt));
            int hf = cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(sents, i), "ids"));
            CHECK((int)cnt == hf, "count_tokens of sentence %d: %zu, HF %d", i, cnt, hf);
        }
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(sents, n - 1), "ids")) > 256,
              "the last fixture sentence is truncated");
        float *got = malloc((size_t)n * DIM * sizeof *got);
        CHECK_OK(lma_embed(e, texts, (size_t)n, 0, got));
        check_vectors(got, want, n, "batch 32");
        lma_embedder_set_batch(e, 5);
        CHECK_OK(lma_embed(e, texts, (size_t)n, 0, got));
        check_vectors(got, want, n, "batch 5");
        lma_embedder_set_batch(e, 1);
        CHECK_OK(lma_embed(e, texts, (size_t)n, 1, got));
        check_vectors(got, want, n, "batch 1 (no padding)");
        float nrm = 0;
        for (int i = 0; i < DIM; i++) nrm += got[i] * got[i];
        CHECK(fabsf(nrm - 1.0f) < 1e-5f, "Normalize: |v|^2 = %.7f", (double)nrm);
        CHECK_OK(lma_embed(e, texts, 0, 0, got)); /* nothing to do */
        check_cli(texts, want);
        /* the same model on the double-precision reference backend (two short sentences) */
        lma_embedder *er = NULL;
        CHECK_OK(lma_embedder_load(NAME, lma_backend_ref(), &er));
        if (er) {
            CHECK_OK(lma_embed(er, texts, 2, 0, got));
            check_vectors(got, want, 2, "ref backend");
            lma_embedder_free(er);
        }
        free(got);
    }
    lma_embedder_free(e);

    /* a module lmadapt does not have is refused by name */
    char dir[] = "/tmp/lma_embed_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char mj[1100];
    snprintf(mj, sizeof mj, "%s/modules.json", dir);
    const char *mods = "[{\"idx\":0,\"name\":\"0\",\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"},"
                       "{\"idx\":1,\"name\":\"1\",\"path\":\"2_Dense\",\"type\":\"sentence_transformers.models.Dense\"}]";
    CHECK_OK(lma_write_file_atomic(mj, mods, strlen(mods)));
    lma_embedder *bad = NULL;
    lma_status st = lma_embedder_load(dir, NULL, &bad);
    CHECK(st == LMA_ERR_UNSUPPORTED && strstr(lma_last_error(), "Dense") && !bad, "Dense module: %s", lma_last_error());
    lma_clear_error();
    unlink(mj);
    rmdir(dir);

    for (int i = 0; i < n; i++) free((char *)texts[i]);
    free(texts);
    free(raw);
    cJSON_Delete(doc);
    CHECK(!lma_error_pending(), "no error left: %s", lma_last_error());
    TEST_END();
}
