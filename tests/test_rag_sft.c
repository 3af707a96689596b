/* rag make-sft (src/rag/make_sft.c) on a BM25-only store of 16 made-up facts: with
 * oracle share 1 the passage with the answer is among the sources and the answer cites
 * its number; with 0 no source holds the answer and the answer is the refusal; the
 * distractors hold no answer; the same seed gives the same examples, another seed others;
 * the user message rendered through the chat template equals rag ask's prompt
 * (lma_rag_prompt) over the same sources; the CLI writes SFT JSONL that lma_sft_load
 * accepts, byte-identical for one seed. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/buf.h"
#include "core/io.h"
#include "data/sft.h"
#include "rag/ask.h"
#include "rag/make_sft.h"
#include "rag/store.h"
#include "test.h"
#include "tok/chat_template.h"
#include "tok/tokenizer.h"

enum { ND = 16 };
static const char *country[ND] = {"Arvania", "Belmoria", "Corvath", "Dunmere", "Elbrosia", "Fenwick", "Galdor", "Hestia",
                                  "Istrana", "Jorvik", "Kaldera", "Lunoria", "Mirovia", "Norwend", "Ostmark", "Pelloria"};
static const char *capital[ND] = {"Quillhaven", "Rostamere", "Sundrel", "Tamberlin", "Ulvaston", "Vexmoor", "Wyndale",
                                  "Xandrel", "Yorrick", "Zephyra", "Ashgrove", "Brightwater", "Coldspire", "Dawnfield",
                                  "Emberly", "Frostholm"};

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

typedef struct {
    lma_rag_store *s;
    lma_rag_searcher *sr;
    lma_rag_encoder enc;
    int64_t *all;
    size_t n_all;
} fixture;

/* question i's example */
static lma_status make(fixture *f, const lma_rag_sft_params *p, int i, lma_rag_sft_example *ex, int *skip) {
    char q[128], doc[32];
    snprintf(q, sizeof q, "What is the capital city of %s?", country[i]);
    snprintf(doc, sizeof doc, "c%d", i);
    const char *ans[1] = {capital[i]}, *docs[1] = {doc};
    return lma_rag_sft_example_make(f->s, f->sr, p, f->all, f->n_all, (uint64_t)i, q, ans, 1, docs, 1, ex, skip);
}

static void test_examples(fixture *f, const lma_tokenizer *tok) {
    lma_rag_sft_params p = {.search = lma_rag_search_defaults(), .distractors = 3, .oracle_share = 1, .seed = 11};
    p.search.mode = LMA_RAG_BM25;
    for (int k = 1; k <= 4; k += 3) {
        p.search.k = k;
        for (int share = 0; share <= 1; share++) {
            p.oracle_share = share;
            for (int i = 0; i < ND; i++) {
                lma_rag_sft_example ex;
                int skip = 1;
                CHECK_OK(make(f, &p, i, &ex, &skip));
                CHECK(!skip, "question %d skipped", i);
                if (skip) continue;
                int holders = 0, distractors = 0, bad_distractor = 0;
                for (size_t j = 0; j < ex.n_sources; j++) {
                    lma_rag_chunk_row row;
                    CHECK_OK(f->s->ops->chunk_get(f->s, ex.chunk_ids[j], &row));
                    int has = lma_rag_contains(row.text, capital[i]);
                    holders += has;
                    distractors += ex.distractor[j];
                    bad_distractor += ex.distractor[j] && has;
                    /* the user message numbers this chunk as [j+1] with its doc id and text */
                    char lab[64];
                    snprintf(lab, sizeof lab, "[%zu] (%s) ", j + 1, row.doc_id);
                    const char *at = strstr(ex.user, lab);
                    CHECK(at && !strncmp(at + strlen(lab), row.text, strlen(row.text)), "q %d: source %zu in the message", i, j + 1);
                    if (share && (int)j + 1 == ex.gold) {
                        char doc[32];
                        snprintf(doc, sizeof doc, "c%d", i);
                        CHECK(has && !strcmp(row.doc_id, doc), "q %d: [%d] is the right passage (%s)", i, ex.gold, row.doc_id);
                    }
                    lma_rag_chunk_row_free(&row);
                }
                CHECK(distractors == 3 && !bad_distractor, "q %d: 3 distractors without the answer (%d, %d bad)", i,
                      distractors, bad_distractor);
                CHECK(ex.n_sources <= (size_t)k + 3, "q %d: at most k + K sources (%zu)", i, ex.n_sources);
                if (share) {
                    char want[64];
                    snprintf(want, sizeof want, "%s [%d]", capital[i], ex.gold);
                    CHECK(ex.oracle && ex.gold >= 1 && holders >= 1 && !strcmp(ex.answer, want), "q %d k %d: oracle: %s (gold %d)",
                          i, k, ex.answer, ex.gold);
                } else {
                    CHECK(!ex.oracle && ex.gold == 0 && holders == 0 && !strcmp(ex.answer, LMA_RAG_REFUSAL),
                          "q %d k %d: no passage with the answer (%d), refusal: %s", i, k, holders, ex.answer);
                }
                /* the same format as rag ask: the message through the template == lma_rag_prompt */
                if (i < 4 && tok) {
                    lma_rag_source src[16];
                    lma_rag_chunk_row rows[16];
                    for (size_t j = 0; j < ex.n_sources; j++) {
                        CHECK_OK(f->s->ops->chunk_get(f->s, ex.chunk_ids[j], &rows[j]));
                        src[j] = (lma_rag_source){rows[j].doc_id, rows[j].text};
                    }
                    char q[128];
                    snprintf(q, sizeof q, "What is the capital city of %s?", country[i]);
                    int32_t *a = NULL, *b = NULL;
                    size_t na = 0, nb = 0, used = 0, last = 0, *spans = NULL, nsp = 0;
                    CHECK_OK(lma_rag_prompt(tok, "llama3", NULL, q, src, ex.n_sources, 1000000, &a, &na, &used, &last));
                    lma_chat_msg m = {"user", ex.user};
                    CHECK_OK(lma_chat_encode(tok, "llama3", &m, 1, 1, &b, &nb, &spans, &nsp));
                    CHECK(used == ex.n_sources && na == nb && na && !memcmp(a, b, na * sizeof *a),
                          "q %d: the SFT prompt == rag ask's prompt (%zu vs %zu tokens)", i, na, nb);
                    free(a), free(b), free(spans);
                    for (size_t j = 0; j < ex.n_sources; j++) lma_rag_chunk_row_free(&rows[j]);
                }
                lma_rag_sft_example_free(&ex);
            }
        }
    }
    /* a share of 0.5: some of each; the same seed the same examples, another seed others */
    p.oracle_share = 0.5, p.search.k = 3;
    int oracles = 0, same = 1, differ = 0;
    for (int i = 0; i < ND; i++) {
        lma_rag_sft_example a, b, c;
        int s1, s2, s3;
        CHECK_OK(make(f, &p, i, &a, &s1));
        CHECK_OK(make(f, &p, i, &b, &s2));
        p.seed = 12;
        CHECK_OK(make(f, &p, i, &c, &s3));
        p.seed = 11;
        oracles += a.oracle;
        same &= !strcmp(a.user, b.user) && !strcmp(a.answer, b.answer);
        differ += strcmp(a.user, c.user) != 0;
        lma_rag_sft_example_free(&a), lma_rag_sft_example_free(&b), lma_rag_sft_example_free(&c);
    }
    CHECK(oracles > 2 && oracles < ND - 2, "share 0.5: %d of %d keep the passage", oracles, ND);
    CHECK(same, "the same seed gives the same examples");
    CHECK(differ > ND / 2, "another seed gives other examples (%d of %d differ)", differ, ND);
}

int main(void) {
    char dir[] = "/tmp/lma_test_rag_sft_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/facts.jsonl", dir);
    FILE *f = test_fopen(path, "w");
    for (int i = 0; i < ND; i++)
        fprintf(f, "{\"id\": \"c%d\", \"text\": \"%s is a small country in the north. The capital city of %s is %s, "
                   "a town on the river.\"}\n", i, country[i], country[i], capital[i]);
    fclose(f);
    snprintf(path, sizeof path, "%s/qa.jsonl", dir);
    f = test_fopen(path, "w");
    for (int i = 0; i < ND; i++)
        fprintf(f, "{\"id\": \"q%d\", \"question\": \"What is the capital city of %s?\", \"answers\": [\"%s\"], "
                   "\"doc_ids\": [\"c%d\"]}\n", i, country[i], capital[i], i);
    fclose(f);
    int rc;
    snprintf(cmd, sizeof cmd, "cd %s && %s rag index -q --db s.sqlite facts.jsonl 2>&1", dir, LMA_CLI);
    char *out = run(cmd, &rc);
    CHECK(rc == 0, "index: %s", out);
    free(out);
    fixture fx = {0};
    snprintf(path, sizeof path, "%s/s.sqlite", dir);
    CHECK_OK(lma_rag_store_open_sqlite(path, 0, &fx.s));
    fx.enc = lma_rag_encoder_words();
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(LMA_SRC_DIR "/tests/ref/tok/bl", &tok));
    if (fx.s) {
        CHECK_OK(fx.s->ops->chunk_ids(fx.s, &fx.all, &fx.n_all));
        CHECK(fx.n_all == ND, "chunk_ids: %zu chunks", fx.n_all);
        CHECK_OK(lma_rag_searcher_open(fx.s, &fx.enc, &fx.sr));
        if (fx.sr) test_examples(&fx, tok);
        lma_rag_searcher_free(fx.sr);
        free(fx.all);
        lma_rag_store_close(fx.s);
    }
    /* the CLI: SFT JSONL that the SFT loader takes, identical for one seed */
    char *o1 = NULL, *o2 = NULL;
    size_t l1 = 0, l2 = 0;
    for (int r = 0; r < 2; r++) {
        snprintf(cmd, sizeof cmd, "cd %s && %s rag make-sft -q --db s.sqlite --qa qa.jsonl --out o%d.jsonl --k 2 "
                 "--distractors 2 --oracle-share 0.75 --seed 3 2>&1", dir, LMA_CLI, r);
        out = run(cmd, &rc);
        CHECK(rc == 0, "make-sft: %s", out);
        free(out);
        snprintf(path, sizeof path, "%s/o%d.jsonl", dir, r);
        CHECK_OK(lma_read_file(path, r ? &o2 : &o1, r ? &l2 : &l1));
    }
    CHECK(o1 && o2 && l1 == l2 && !memcmp(o1, o2, l1), "the same --seed: the same file");
    int lines = 0, cited_ok = 0;
    for (char *save = NULL, *l = o1 ? strtok_r(o1, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save), lines++) {
        cJSON *o = cJSON_Parse(l);
        int gold = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "gold"));
        const char *ans = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "messages"), 1), "content"));
        cJSON *src = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "sources"), gold - 1);
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(o, "id"));
        if (gold && src && ans && id && lma_rag_citations(ans) == 1ull << (gold - 1) &&
            !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(src, "doc_id")) + 1, id + 1))
            cited_ok++;
        else if (!gold && ans && !strcmp(ans, LMA_RAG_REFUSAL))
            cited_ok++;
        cJSON_Delete(o);
    }
    CHECK(lines == ND && cited_ok == ND, "%d lines, %d with the right citation or the refusal", lines, cited_ok);
    free(o1), free(o2);
    if (tok) {
        lma_sft_params sp = {.template_spec = "llama3", .max_len = 4096};
        lma_sft_set *set = NULL;
        lma_sft_stats st;
        snprintf(path, sizeof path, "%s/o0.jsonl", dir);
        CHECK_OK(lma_sft_load(path, tok, &sp, &set, &st));
        CHECK(set && lma_sft_count(set) == ND && st.labelled > 0, "the SFT loader takes it (%zu examples)", set ? lma_sft_count(set) : 0);
        lma_sft_free(set);
    }
    lma_tok_free(tok);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    TEST_END();
}
