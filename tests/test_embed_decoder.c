/* Decoder-model embeddings (infer/embed.c over model/llama.c's lma_model_hidden_cached)
 * against transformers (tests/ref/make_decoder_embed_fixtures.py: a tiny random Qwen3
 * saved as Qwen3-Embedding is: base-model tensor names, modules.json with last-token
 * Pooling and Normalize, a query prompt): token ids equal; last-token + Normalize for
 * documents and for queries (the folder's query prompt in front), mean pooling without
 * Normalize (options), a query instruction (options) at cosine >= 0.9999; batches equal
 * single texts; a decoder folder without a Pooling config and no option is refused; and
 * `rag index --embed` takes the model: the vector search's scores are the cosines of the
 * query (with its prompt) and document embeddings. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/buf.h"
#include "core/io.h"
#include "infer/embed.h"
#include "test.h"
#include "tok/tokenizer.h"

#define DIR_ LMA_SRC_DIR "/tests/ref/embed_decoder"
#define MODEL DIR_ "/model"

static double cosine(const float *a, const double *b, int n, double *ratio) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) ab += a[i] * b[i], aa += (double)a[i] * a[i], bb += b[i] * b[i];
    if (ratio) *ratio = sqrt(aa / bb);
    return ab / sqrt(aa * bb);
}

static int vec(const cJSON *o, const char *key, double *out, int cap) {
    const cJSON *a = cJSON_GetObjectItem(o, key), *x;
    int n = 0;
    cJSON_ArrayForEach(x, a) if (n < cap) out[n++] = x->valuedouble;
    return n;
}

static char *run(const char *cmd, int *rc) {
    FILE *p = popen(cmd, "r");
    lma_buf b = {0};
    char buf[4096];
    size_t n;
    while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) lma_buf_append(&b, buf, n);
    int st = p ? pclose(p) : -1;
    *rc = st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return b.p ? b.p : strdup("");
}

int main(void) {
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(lma_read_file(DIR_ "/expected.json", &text, &len));
    cJSON *root = cJSON_Parse(text ? text : "");
    free(text);
    const cJSON *cases = cJSON_GetObjectItem(root, "cases"), *c;
    const char *task = cJSON_GetStringValue(cJSON_GetObjectItem(root, "task"));
    int nc = cJSON_GetArraySize(cases);
    CHECK(nc >= 5 && task, "fixture: %d cases", nc);
    lma_embedder *e = NULL, *em = NULL, *et = NULL;
    CHECK_OK(lma_embedder_load(MODEL, NULL, &e));
    lma_embed_options mean = {.pool = "mean", .normalize = 0}, inst = {.normalize = -1, .query_instruction = task};
    CHECK_OK(lma_embedder_load_ex(MODEL, NULL, &mean, &em));
    CHECK_OK(lma_embedder_load_ex(MODEL, NULL, &inst, &et));
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(MODEL, &tok));
    if (!e || !em || !et || !tok || nc < 1) TEST_END();
    int dim = lma_embedder_dim(e);
    CHECK(dim == 32 && lma_embedder_dim(em) == 32 && lma_embedder_max_tokens(e) == 256, "dim %d, max %d", dim,
          lma_embedder_max_tokens(e));
    const char *texts[16];
    int i = 0;
    float *all = calloc((size_t)nc * dim, sizeof *all), v[64];
    double want[64], worst = 1, worst_ratio = 0;
    cJSON_ArrayForEach(c, cases) {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(c, "text"));
        texts[i] = t;
        /* ids: the tokenizer (with its template) as transformers' */
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK_OK(lma_tok_encode(tok, t, strlen(t), 1, &ids, &n));
        const cJSON *wid = cJSON_GetObjectItem(c, "ids");
        int same = (int)n == cJSON_GetArraySize(wid);
        for (size_t k = 0; same && k < n; k++) same = ids[k] == cJSON_GetArrayItem(wid, (int)k)->valueint;
        CHECK(same, "case %d: token ids equal transformers' (%zu tokens)", i, n);
        free(ids);
        struct { lma_embedder *e; int query; const char *key; } runs[] = {
            {e, 0, "last_norm"}, {e, 1, "last_norm_query"}, {em, 0, "mean"}, {et, 1, "last_task_query"}};
        for (int r = 0; r < 4; r++) {
            CHECK(vec(c, runs[r].key, want, 64) == dim, "fixture %s", runs[r].key);
            CHECK_OK(lma_embed(runs[r].e, &t, 1, runs[r].query, v));
            double ratio, cs = cosine(v, want, dim, &ratio);
            if (cs < worst) worst = cs;
            if (fabs(ratio - 1) > worst_ratio) worst_ratio = fabs(ratio - 1);
            CHECK(cs >= 0.9999 && fabs(ratio - 1) < 1e-3, "case %d %s: cosine %.7f, norm ratio %.6f", i, runs[r].key, cs, ratio);
            if (r == 0) memcpy(all + (size_t)i * dim, v, dim * sizeof *v);
        }
        /* a query differs from the document (the prompt is there) */
        float q[64];
        CHECK_OK(lma_embed(e, &t, 1, 1, q));
        double d = 0;
        for (int k = 0; k < dim; k++) d += fabs(q[k] - all[(size_t)i * dim + k]);
        CHECK(d > 1e-2, "case %d: the query prompt changes the vector", i);
        i++;
    }
    printf("worst cosine %.8f, worst norm ratio error %.2e\n", worst, worst_ratio);
    /* all at once == one at a time */
    float *batch = calloc((size_t)nc * dim, sizeof *batch);
    CHECK_OK(lma_embed(e, texts, (size_t)nc, 0, batch));
    double md = 0;
    for (size_t k = 0; k < (size_t)nc * dim; k++) md = fmax(md, fabs(batch[k] - all[k]));
    CHECK(md < 1e-6, "batch == single (max diff %.2e)", md);
    /* a decoder folder without Pooling config and no --pool: refused with a clear message */
    lma_embedder *bad = NULL;
    lma_status st = lma_embedder_load(LMA_SRC_DIR "/tests/ref/models/qwen3", NULL, &bad);
    CHECK(st == LMA_ERR_ARG && strstr(lma_last_error(), "--pool"), "no pooling: %d %s", st, lma_last_error());
    lma_clear_error();
    lma_embedder_free(bad);

    /* rag index --embed with this model; vector scores = cos(query with prompt, document) */
    char dir[] = "/tmp/lma_test_embed_dec_XXXXXX";
    if (mkdtemp(dir)) {
        char path[512], cmd[2048];
        snprintf(path, sizeof path, "%s/docs.jsonl", dir);
        FILE *f = test_fopen(path, "w");
        for (int k = 0; k < 3; k++) {
            cJSON *o = cJSON_CreateObject();
            char id[8];
            snprintf(id, sizeof id, "d%d", k);
            cJSON_AddStringToObject(o, "id", id);
            cJSON_AddStringToObject(o, "text", texts[k == 1 ? 2 : k == 2 ? 4 : 0]);
            char *l = cJSON_PrintUnformatted(o);
            fprintf(f, "%s\n", l);
            free(l);
            cJSON_Delete(o);
        }
        fclose(f);
        int rc;
        snprintf(cmd, sizeof cmd, "cd %s && %s rag index -q --db s.sqlite --embed %s docs.jsonl 2>&1 && "
                 "%s rag search --db s.sqlite --mode vector --k 3 --json 'What is the capital of France?' 2>&1",
                 dir, LMA_CLI, MODEL, LMA_CLI);
        char *out = run(cmd, &rc);
        char *line = strstr(out, "{\"id\"");
        cJSON *o = line ? cJSON_Parse(line) : NULL;
        const cJSON *hits = cJSON_GetObjectItem(o, "hits"), *h;
        CHECK(rc == 0 && cJSON_GetArraySize(hits) == 3, "rag index/search with the decoder embedder: rc %d: %s", rc, out);
        const char *qt = "What is the capital of France?";
        float qv[64], dv[64];
        CHECK_OK(lma_embed(e, &qt, 1, 1, qv));
        int good = 0;
        cJSON_ArrayForEach(h, hits) {
            const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(h, "text"));
            CHECK_OK(lma_embed(e, &t, 1, 0, dv));
            double dot = 0;
            for (int k = 0; k < dim; k++) dot += (double)qv[k] * dv[k];
            double got = cJSON_GetNumberValue(cJSON_GetObjectItem(h, "score"));
            good += fabs(got - dot) < 1e-4;
        }
        CHECK(good == 3, "vector scores are cos(query with its prompt, document): %d of 3", good);
        cJSON_Delete(o);
        free(out);
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    }
    free(all), free(batch);
    lma_tok_free(tok);
    lma_embedder_free(e), lma_embedder_free(em), lma_embedder_free(et);
    cJSON_Delete(root);
    TEST_END();
}
