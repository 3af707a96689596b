/* judge: score parsing on hand-written judge texts; with a tiny random model and the
 * bl test tokenizer (junk judgements, real mechanics): the scores file agrees with
 * the parser, a rerun makes 0 model calls and gives identical scores and outputs, a
 * changed rubric / model id / sampling seed misses the cache, a torn cache line is
 * skipped, kept = score >= threshold (+ unparsed when asked). Also debug --judge:
 * one model call per flagged example, a yes/no/unclear opinion on each flag. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"
#include "core/json.h"
#include "data/curate/curate.h"
#include "eval/curate_model.h"
#include "test.h"
#include "test_models.h"

static char dir[] = "/tmp/lma_judge_XXXXXX";
static void path(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static void parsing(void) {
    static const struct { const char *text; int want; } cases[] = {
        {"Score: 4\nThe response is accurate.", 4},
        {"score:5", 5},
        {"**Score:** 3/5 - partly correct", 3},
        {"Rating = 2", 2},
        {"I would rate this response a 4 out of 5.", 4},
        {"I rate it 4.0", 4},
        {"Score (1-5): 5", 5},
        {"Score: 8/10", 0},          /* a cued number outside 1..5: unparseable */
        {"Score: 4.5", 0},           /* not an integer */
        {"5\nThe answer is complete and correct.", 5},
        {"The response deserves 3 points.", 3},
        {"There are 12 apples; I give it a 2.", 2},
        {"The answer is wrong.", 0},
        {"", 0},
        {"Grade: 1. Off topic.", 1},
        {"It scores 10 out of 10", 0},
        {"In 2023 the answer changed; overall 4", 4},
        {"SCORE: 2", 2},
        {"v1.5 is mentioned, score: 3", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = lma_judge_parse_score(cases[i].text, strlen(cases[i].text));
        CHECK(got == cases[i].want, "parse \"%s\" -> %d (want %d)", cases[i].text, got, cases[i].want);
    }
}

static double num(const cJSON *s, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(s, k);
    return it ? it->valuedouble : -1;
}

/* scores file -> arrays; returns lines */
static int read_scores(const char *p, int *score, char **text, int cap, int *consistent) {
    lma_jsonl j;
    CHECK_OK(lma_jsonl_open(&j, p, 0));
    cJSON *o;
    int n = 0;
    *consistent = 1;
    while (lma_jsonl_next(&j, &o, NULL) == LMA_OK && o && n < cap) {
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(o, "score");
        const char *t = cJSON_GetObjectItemCaseSensitive(o, "judgement")->valuestring;
        score[n] = cJSON_IsNumber(sc) ? sc->valueint : 0;
        text[n] = strdup(t);
        *consistent &= lma_judge_parse_score(t, strlen(t)) == score[n] && num(o, "line") == n + 1;
        n++;
        cJSON_Delete(o);
    }
    lma_jsonl_close(&j);
    return n;
}

/* tiny random Llama with the bl tokenizer's vocabulary, saved as an HF dir */
static int make_model(const char *mdir) {
    lma_model *m = test_tok_model(mdir, (test_tok_model_params){1, 1024, 7, 1}, NULL);
    lma_model_free(m);
    return m != NULL;
}

static char *slurp(const char *p) {
    char *d = NULL; size_t n;
    if (lma_read_file(p, &d, &n)) { lma_clear_error(); return NULL; }
    return d;
}

static cJSON *run(lma_curate_llm *l, const char *data, lma_judge_params *p) {
    cJSON *s = NULL;
    CHECK_OK(lma_data_judge(l, data, p, &s));
    return s;
}

static void judge(const char *mdir) {
    enum { N = 10 };
    char data[1100], kept[1100], scores[1100], scores2[1100], cache[1100], kept2[1100], src[1024];
    path(data, sizeof data, "data.jsonl");
    path(kept, sizeof kept, "kept.jsonl");
    path(kept2, sizeof kept2, "kept2.jsonl");
    path(scores, sizeof scores, "scores.jsonl");
    path(scores2, sizeof scores2, "scores2.jsonl");
    path(cache, sizeof cache, "cache/");
    snprintf(src, sizeof src, "%s/tests/data/alpaca_first200.json", LMA_SRC_DIR);
    cJSON *arr = NULL;
    CHECK_OK(lma_json_load(src, &arr));
    if (!arr) return;
    FILE *f = test_fopen(data, "w");
    for (int i = 0; i < N; i++) {
        char *s = cJSON_PrintUnformatted(cJSON_GetArrayItem(arr, i));
        fprintf(f, "%s\n", s);
        free(s);
    }
    fclose(f);
    cJSON_Delete(arr);
    lma_curate_llm l;
    CHECK_OK(lma_curate_llm_load(mdir, NULL, NULL, &l));
    if (!l.ctx) return;
    lma_judge_params p;
    lma_judge_default_params(&p);
    p.gen.max_tokens = 10;
    p.threshold = 1; /* keep every parsed score */
    p.cache_path = cache; p.out_path = kept; p.scores_path = scores;
    cJSON *s = run(&l, data, &p);
    if (!s) { lma_curate_llm_free(&l); return; }
    CHECK(num(s, "scored") == N && num(s, "model_calls") == N && num(s, "cache_hits") == 0, "first run: %d model calls", N);
    int sc1[N], sc2[N], cons1, cons2;
    char *tx1[N], *tx2[N];
    int n1 = read_scores(scores, sc1, tx1, N, &cons1);
    CHECK(n1 == N && cons1, "scores file: one line per example, score = parse(judgement)");
    int parsed = 0;
    for (int i = 0; i < n1; i++) parsed += sc1[i] != 0;
    CHECK(num(s, "kept") == parsed && num(s, "unparsed") == N - parsed, "kept = parsed scores >= 1 (%d)", parsed);
    /* the reply is constrained (lma_judge_score_grammar): a random model's every judgement
     * starts "Score: N" with N in 1..5, so every one parses */
    int led = 0;
    for (int i = 0; i < n1; i++) led += !strncmp(tx1[i], "Score: ", 7) && tx1[i][7] >= '1' && tx1[i][7] <= '5';
    CHECK(parsed == N && led == N, "constrained judge: %d of %d judgements begin \"Score: N\", %d parse", led, N, parsed);
    cJSON_Delete(s);
    char *kept_first = slurp(kept);
    /* rerun with a freshly loaded model: everything from the cache */
    lma_curate_llm_free(&l);
    CHECK_OK(lma_curate_llm_load(mdir, NULL, NULL, &l));
    p.scores_path = scores2; p.out_path = kept2;
    s = run(&l, data, &p);
    if (s) {
        CHECK(num(s, "model_calls") == 0 && num(s, "cache_hits") == N && l.calls == 0, "rerun: 0 model calls, %d cache hits", N);
        cJSON_Delete(s);
    }
    int n2 = read_scores(scores2, sc2, tx2, N, &cons2);
    int same = n2 == n1;
    for (int i = 0; same && i < n1; i++) same = sc1[i] == sc2[i] && !strcmp(tx1[i], tx2[i]);
    char *kept_second = slurp(kept2);
    CHECK(same && kept_first && kept_second && !strcmp(kept_first, kept_second), "rerun: identical scores, judgements and kept file");
    free(kept_first); free(kept_second);
    for (int i = 0; i < n2; i++) free(tx2[i]);
    /* one record at a time, no cache: the same judgements as the batched first run */
    {
        lma_judge_params p1 = p;
        p1.cache_path = NULL; p1.out_path = kept2; p1.scores_path = scores2;
        l.max_active = 1;
        s = run(&l, data, &p1);
        cJSON_Delete(s);
        n2 = read_scores(scores2, sc2, tx2, N, &cons2);
        same = n2 == n1;
        for (int i = 0; same && i < n1; i++) same = sc1[i] == sc2[i] && !strcmp(tx1[i], tx2[i]);
        CHECK(same && l.calls == N, "one at a time: the judgements of the batched run (%d calls)", (int)l.calls);
        for (int i = 0; i < n2; i++) free(tx2[i]);
        l.max_active = 8;
    }
    /* threshold on known scores: rewrite the cache entries (file order = example order)
     * with judgements "Score: k", k = 1 + i % 5, and rerun from the cache */
    {
        char cf[1200], *old = NULL;
        snprintf(cf, sizeof cf, "%sjudge_cache.jsonl", cache);
        old = slurp(cf);
        FILE *w = test_fopen(cf, "w");
        int i = 0;
        for (char *line = old ? strtok(old, "\n") : NULL; line; line = strtok(NULL, "\n"), i++) {
            cJSON *o = cJSON_Parse(line);
            char t[32];
            snprintf(t, sizeof t, "Score: %d\nbecause", 1 + i % 5);
            cJSON_ReplaceItemInObject(o, "score", cJSON_CreateNumber(1 + i % 5));
            cJSON_ReplaceItemInObject(o, "judgement", cJSON_CreateString(t));
            char *js = cJSON_PrintUnformatted(o);
            fprintf(w, "%s\n", js);
            free(js); cJSON_Delete(o);
        }
        fclose(w);
        free(old);
        p.threshold = 4;
        s = run(&l, data, &p);
        if (s) {
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(s, "histogram");
            CHECK(num(s, "model_calls") == 0 && num(s, "kept") == 4 && num(s, "removed") == 6 && num(h, "4") == 2 &&
                      num(h, "5") == 2 && num(s, "mean_score") == 3.0,
                  "threshold 4 keeps the 4s and 5s (kept %g)", num(s, "kept"));
            cJSON_Delete(s);
        }
        int sc3[N], cons3;
        char *tx3[N];
        int n3 = read_scores(scores2, sc3, tx3, N, &cons3);
        int ok = n3 == N && cons3;
        for (int k = 0; k < n3; k++) { ok &= sc3[k] == 1 + k % 5; free(tx3[k]); }
        CHECK(ok, "scores come back from the cache in example order");
        /* kept = input lines 4, 5, 9, 10 (scores 4, 5, 4, 5), byte for byte */
        char *in = slurp(data), *kp = slurp(kept2), want[16384] = "";
        int ln = 1;
        for (char *q = in, *e; q && *q; q = e + 1, ln++) {
            e = strchr(q, '\n');
            if (!e) break;
            if (ln == 4 || ln == 5 || ln == 9 || ln == 10) strncat(want, q, (size_t)(e - q + 1));
        }
        CHECK(kp && !strcmp(kp, want), "kept file holds input lines 4, 5, 9, 10");
        free(in); free(kp);
        p.threshold = 1;
    }
    /* keep_unparsed keeps everything (threshold 1) */
    p.keep_unparsed = 1;
    s = run(&l, data, &p);
    if (s) { CHECK(num(s, "kept") == N && num(s, "model_calls") == 0, "keep_unparsed keeps the unparsed too"); cJSON_Delete(s); }
    p.keep_unparsed = 0;
    /* what goes into the key */
    p.rubric = "Rate this reply from 1 to 5.\n{response}\nScore:";
    s = run(&l, data, &p);
    if (s) { CHECK(num(s, "model_calls") == N, "another rubric: every example misses the cache"); cJSON_Delete(s); }
    p.rubric = NULL;
    p.model_id = "another-model";
    s = run(&l, data, &p);
    if (s) { CHECK(num(s, "model_calls") == N, "another model id: misses"); cJSON_Delete(s); }
    p.model_id = NULL;
    p.gen.sample.temperature = 1.0f; p.gen.seed = 1;
    s = run(&l, data, &p);
    if (s) { CHECK(num(s, "model_calls") == N, "sampling settings: misses"); cJSON_Delete(s); }
    p.gen.seed = 2;
    s = run(&l, data, &p);
    if (s) { CHECK(num(s, "model_calls") == N, "another seed: misses"); cJSON_Delete(s); }
    s = run(&l, data, &p);
    if (s) { CHECK(num(s, "model_calls") == 0, "same seed again: hits"); cJSON_Delete(s); }
    p.gen.sample.temperature = 0; p.gen.seed = 0;
    /* a torn last line (crash while appending) is skipped; entries after it load */
    char cfile[1200];
    snprintf(cfile, sizeof cfile, "%sjudge_cache.jsonl", cache);
    f = test_fopen(cfile, "a");
    fprintf(f, "{\"key\":\"0123");
    fclose(f);
    p.rubric = "Score the reply 1-5: {response}";
    s = run(&l, data, &p); /* appends after the torn line */
    if (s) { CHECK(num(s, "cache_lines_skipped") == 1 && num(s, "model_calls") == N, "torn line skipped"); cJSON_Delete(s); }
    s = run(&l, data, &p);
    if (s) { CHECK(num(s, "model_calls") == 0 && num(s, "cache_lines_skipped") == 1, "entries after a torn line load"); cJSON_Delete(s); }
    p.rubric = "no placeholder";
    CHECK(lma_data_judge(&l, data, &p, &s) == LMA_ERR_ARG, "a rubric without {response} is refused");
    lma_clear_error();
    p.rubric = NULL;
    for (int i = 0; i < n1; i++) free(tx1[i]);
    /* debug --judge: one opinion per flagged example */
    char dd[1100], rep[1100];
    path(dd, sizeof dd, "debug.jsonl");
    path(rep, sizeof rep, "debug_report.json");
    f = test_fopen(dd, "w");
    fprintf(f, "{\"prompt\":\"Set up a call\",\"completion\":\"I'll schedule this meeting for you.\"}\n");
    fprintf(f, "{\"prompt\":\"Hi\",\"completion\":\"Hello there.\"}\n");
    fprintf(f, "{\"prompt\":\"Help\",\"completion\":\"As a brilliant engineer, you know this. I have sent the email.\"}\n");
    fclose(f);
    lma_debug_params dp;
    lma_debug_default_params(&dp);
    dp.judge = &l; dp.report_path = rep;
    int64_t calls0 = l.calls;
    CHECK_OK(lma_data_debug(dd, &dp, &s));
    if (s) {
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(s, "judge");
        CHECK(num(s, "flagged_examples") == 2 && num(s, "flags") == 3 && l.calls - calls0 == 2 && num(jd, "model_calls") == 2,
              "debug --judge: one model call per flagged example");
        const cJSON *it;
        int ok = 1;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(s, "shown")) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "judge");
            ok &= cJSON_IsString(v) && (!strcmp(v->valuestring, "yes") || !strcmp(v->valuestring, "no") || !strcmp(v->valuestring, "unclear"));
        }
        CHECK(ok, "every flag carries the model's yes/no/unclear");
        cJSON_Delete(s);
    }
    lma_curate_llm_free(&l);
}

static void rubric_matches_file(void) {
    char p[1024];
    snprintf(p, sizeof p, "%s/data/curate/judge_rubric.txt", LMA_SRC_DIR);
    char *t = slurp(p);
    CHECK(t && !strcmp(t, lma_judge_default_rubric()), "built-in rubric equals data/curate/judge_rubric.txt");
    free(t);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    parsing();
    rubric_matches_file();
    char mdir[1100];
    path(mdir, sizeof mdir, "model");
    if (make_model(mdir)) judge(mdir);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (getenv("LMA_KEEP_TMP")) fprintf(stderr, "kept %s\n", dir); /* for inspection */
    else if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    TEST_END();
}
