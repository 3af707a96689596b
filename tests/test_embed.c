/* Sentence embeddings and the WordPiece tokenizer of the real all-MiniLM-L6-v2 against
 * sentence-transformers and HF tokenizers (fixtures: tests/ref/make_embed_fixtures.py):
 *   - WordPiece ids (with [CLS]/[SEP], untruncated) equal HF's on 26 varied sentences and
 *     on the tokenizer test texts of make_tok_fixtures.py (invalid UTF-8 included);
 *   - lma_embed equals SentenceTransformer.encode (cosine >= 0.9999 per sentence) with batch
 *     32, and with batch 5 (several padded batches), and one row at a time (no padding);
 *   - the whole encoder run on the double-precision ref backend gives the same vectors;
 *   - dim, max_seq_length, token counts before truncation, and a Dense module refused.
 * The model comes from scripts/fetch-models.sh; without it the test exits 77 (skipped). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
