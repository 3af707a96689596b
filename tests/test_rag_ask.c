/* rag ask's prompt (src/rag/ask.c): the token budget is never exceeded, sources enter best
 * first and whole until one is cut; answer metrics (SQuAD EM/F1, citations) and retrieval
 * metrics (src/rag/metrics.c) against values worked out by hand; and the rag CLI end to end
 * on a BM25-only store (JSON lines, filters, one-line errors). */
#include <cjson/cJSON.h>
#include <sys/stat.h>
#include "core/buf.h"
#include "core/status.h"
#include "rag/ask.h"
#include "rag/metrics.h"
#include "test.h"
#include "tok/tokenizer.h"

static void test_budget(void) {
    lma_tokenizer *tok;
    CHECK_OK(lma_tok_load(LMA_SRC_DIR "/tests/ref/tok/bl", &tok));
    if (!tok) return;
    /* 12 sources of 5..200 words */
    enum { NS = 12 };
    char *texts[NS];
    lma_rag_source src[NS];
    uint64_t st = 7;
    for (int i = 0; i < NS; i++) {
        lma_buf b = {0};
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        int words = 5 + (int)((st >> 33) % 196);
        for (int w = 0; w < words; w++) lma_buf_printf(&b, "%sword%d%s", w ? " " : "", (w * 31 + i) % 97, w % 13 == 12 ? "." : "");
        texts[i] = b.p;
        char label[16];
        snprintf(label, sizeof label, "doc%d", i);
        src[i] = (lma_rag_source){strdup(label), texts[i]};
    }
    const char *q = "What does word42 mean in these sources?";
    size_t prev_used = 0, prev_tokens = 0, base = 0;
    int32_t *ids;
    size_t n, used, last;
    CHECK_OK(lma_rag_prompt(tok, "llama3", NULL, q, src, 0, 100000, &ids, &base, &used, &last));
    free(ids);
    int over = 0, nonmono = 0, order = 0;
    for (size_t budget = base; budget < base + 12000; budget += 97) {
        lma_status r = lma_rag_prompt(tok, "llama3", "You answer from sources.", q, src, NS, budget, &ids, &n, &used, &last);
        if (r != LMA_OK) { CHECK(budget < base + 20, "budget %zu: %s", budget, lma_last_error()); lma_clear_error(); continue; }
        over += n > budget;
        nonmono += used < prev_used;
        order += used && last > strlen(src[used - 1].text);
        if (used == NS && last == strlen(src[NS - 1].text)) CHECK(n >= prev_tokens, "all sources: tokens grow");
        /* the prompt holds sources 1..used in order, and not the next */
        char *text;
        size_t tl;
        lma_tok_decode(tok, ids, n, 0, &text, &tl);
        if (used) CHECK(text && strstr(text, "[1] (doc0)") && (used == 1 || strstr(text, "(doc1)")), "budget %zu: sources in order", budget);
        if (used < NS) {
            char lab[32];
            snprintf(lab, sizeof lab, "[%zu] (doc%zu)", used + 1, used);
            CHECK(text && !strstr(text, lab), "budget %zu: source %zu absent", budget, used + 1);
        }
        free(text);
        prev_used = used, prev_tokens = n;
        free(ids);
    }
    CHECK(over == 0, "%d prompts over their budget", over);
    CHECK(nonmono == 0 && order == 0, "more budget never fewer sources (%d), cut length within the source (%d)", nonmono, order);
    CHECK(prev_used == NS, "a large budget takes every source (%zu)", prev_used);
    /* a budget below the question alone */
    CHECK(lma_rag_prompt(tok, "llama3", NULL, q, src, NS, base - 1, &ids, &n, &used, &last) == LMA_ERR_ARG &&
              strstr(lma_last_error(), "budget"), "too small a budget: %s", lma_last_error());
    lma_clear_error();
    /* exactly the question's size: no source, within budget */
    CHECK_OK(lma_rag_prompt(tok, "llama3", NULL, q, src, NS, base, &ids, &n, &used, &last));
    CHECK(n <= base && used == 0, "budget = question: %zu tokens, %zu sources", n, used);
    free(ids);
    for (int i = 0; i < NS; i++) free(texts[i]), free((char *)src[i].label);
    lma_tok_free(tok);
}

static void test_metrics(void) {
    /* gains by hand: relevant at ranks 2 and 4 (0-based 1, 3) of 2 relevant */
    int g[] = {0, 1, 0, 1, 0, 0, 0, 0, 0, 0};
    CHECK(lma_rag_recall_at(g, 10, 2, 1) == 0 && lma_rag_recall_at(g, 10, 2, 2) == 0.5 && lma_rag_recall_at(g, 10, 2, 5) == 1,
          "recall@k");
    CHECK(fabs(lma_rag_mrr10(g, 10) - 0.5) < 1e-15, "mrr");
    /* DCG = 1/log2(3) + 1/log2(5) = 0.6309298 + 0.4306766; IDCG = 1 + 1/log2(3) = 1.6309298 */
    double want = (1 / log2(3.0) + 1 / log2(5.0)) / (1 + 1 / log2(3.0));
    CHECK(fabs(lma_rag_ndcg10(g, 10, 2) - want) < 1e-12 && fabs(want - 0.65092092) < 1e-7, "ndcg %.9f", lma_rag_ndcg10(g, 10, 2));
    int none[3] = {0};
    CHECK(lma_rag_mrr10(none, 3) == 0 && lma_rag_ndcg10(none, 3, 1) == 0, "no hit");
    int late[12] = {0};
    late[10] = 1;
    CHECK(lma_rag_mrr10(late, 12) == 0 && lma_rag_recall_at(late, 12, 1, 11) == 1, "rank 11 is outside MRR@10");

    const char *gold[] = {"the Eiffel Tower", "Eiffel tower in Paris"};
    CHECK(lma_rag_exact_match("Eiffel Tower.", gold, 2) == 1 && lma_rag_exact_match("A tower", gold, 2) == 0, "exact match");
    /* "tower" vs "eiffel tower": P 1, R 1/2 -> 2/3; vs "eiffel tower in paris": P 1, R 1/4 -> 0.4 */
    CHECK(fabs(lma_rag_f1("the tower", gold, 2) - 2.0 / 3) < 1e-12, "f1 %.6f", lma_rag_f1("the tower", gold, 2));
    CHECK(lma_rag_f1("nothing", gold, 2) == 0, "f1 zero");
    CHECK(lma_rag_citations("see [1] and [3], not [x] or [0] or [99]") == 5, "citations");
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

static void test_cli(void) {
    char dir[] = "/tmp/lma_test_rag_cli_XXXXXX";
    if (!mkdtemp(dir)) return;
    char p[512], cmd[2048];
    snprintf(p, sizeof p, "%s/docs", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/docs/a.md", dir);
    FILE *f = test_fopen(p, "w");
    fputs("# Rivers\n\nThe Nile is the longest river in Africa.\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/docs/b.jsonl", dir);
    f = test_fopen(p, "w");
    fputs("{\"id\": \"m1\", \"text\": \"Mount Kilimanjaro is the highest mountain in Africa.\", \"topic\": \"mountains\"}\n"
          "{\"id\": \"m2\", \"text\": \"The Alps are a mountain range in Europe.\", \"topic\": \"mountains\"}\n", f);
    fclose(f);
    int rc;
    snprintf(cmd, sizeof cmd, "cd %s && %s rag index -q --db s.sqlite docs 2>&1", dir, LMA_CLI);
    char *out = run(cmd, &rc);
    CHECK(rc == 0 && strstr(out, "3 documents"), "index: rc %d: %s", rc, out);
    free(out);
    snprintf(p, sizeof p, "%s/q.jsonl", dir);
    f = test_fopen(p, "w");
    fputs("{\"id\": \"q1\", \"text\": \"highest mountain in Africa\"}\n{\"id\": \"q2\", \"text\": \"longest river\"}\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cd %s && %s rag search --db s.sqlite --k 2 --queries q.jsonl --json", dir, LMA_CLI);
    out = run(cmd, &rc);
    CHECK(rc == 0, "search rc %d", rc);
    char *save = NULL;
    int lines = 0;
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save), lines++) {
        cJSON *o = cJSON_Parse(l);
        cJSON *id = cJSON_GetObjectItem(o, "id"), *hits = cJSON_GetObjectItem(o, "hits");
        cJSON *h0 = cJSON_GetArrayItem(hits, 0);
        const char *doc = cJSON_GetStringValue(cJSON_GetObjectItem(h0, "doc_id"));
        CHECK(cJSON_IsString(id) && cJSON_IsArray(hits) && cJSON_IsNumber(cJSON_GetObjectItem(h0, "score")) &&
                  cJSON_IsNumber(cJSON_GetObjectItem(h0, "chunk")) && cJSON_IsString(cJSON_GetObjectItem(h0, "text")),
              "json line shape: %s", l);
        const char *want = lines == 0 ? "m1" : "docs/a.md";
        CHECK(doc && !strcmp(doc, want), "query %d top hit %s, expected %s", lines + 1, doc ? doc : "-", want);
        cJSON_Delete(o);
    }
    CHECK(lines == 2, "one line per query (%d)", lines);
    free(out);
    snprintf(cmd, sizeof cmd, "cd %s && %s rag search --db s.sqlite --json --where topic=mountains Africa", dir, LMA_CLI);
    out = run(cmd, &rc);
    CHECK(rc == 0 && strstr(out, "m1") && !strstr(out, "a.md"), "metadata filter: %s", out);
    free(out);
    /* eval with doc ids and with answers */
    snprintf(p, sizeof p, "%s/qa.jsonl", dir);
    f = test_fopen(p, "w");
    fputs("{\"id\": 1, \"question\": \"highest mountain in Africa\", \"doc_ids\": [\"m1\"]}\n"
          "{\"id\": 2, \"question\": \"mountain range Europe\", \"answers\": [\"the alps\"]}\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cd %s && %s rag eval --db s.sqlite --qa qa.jsonl --json", dir, LMA_CLI);
    out = run(cmd, &rc);
    cJSON *o = cJSON_Parse(out);
    CHECK(rc == 0 && o && cJSON_GetNumberValue(cJSON_GetObjectItem(o, "recall@1")) == 1 &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(o, "mrr@10")) == 1 && cJSON_GetNumberValue(cJSON_GetObjectItem(o, "n")) == 2,
          "eval: %s", out);
    cJSON_Delete(o);
    free(out);
    /* a foreign file: one line, exit 1 */
    snprintf(cmd, sizeof cmd, "cd %s && %s rag search --db docs/a.md river 2>&1", dir, LMA_CLI);
    out = run(cmd, &rc);
    CHECK(rc == 1 && strstr(out, "not an SQLite database") && strchr(out, '\n') == out + strlen(out) - 1, "foreign db: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "cd %s && %s rag search --db s.sqlite --mode vector river 2>&1", dir, LMA_CLI);
    out = run(cmd, &rc);
    CHECK(rc == 1 && strstr(out, "vector"), "vector on a BM25-only store: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
}

int main(void) {
    test_metrics();
    test_budget();
    test_cli();
    TEST_END();
}
