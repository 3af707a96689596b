/* LLM judge (eval/judge.h): Cohen's kappa against textbook examples worked by hand;
 * rubric parsing and its errors; the score schema; parsing a judgement; labels; and a
 * random-weight judge (bl tokenizer, tiny llama) whose constrained replies always parse
 * with every score in range, over many answers; the statistics' accuracy and kappa equal
 * a recount; `lmadapt eval` with a judge:PATH task and with --judge on a gen task: the
 * JSON fields are there and in range. */
#include <sys/wait.h>
#include <unistd.h>
#include "core/io.h"
#include "eval/judge.h"
#include "model/llama.h"
#include "test.h"

static char tmp[] = "/tmp/lma_test_eval_judge_XXXXXX";

static void kappa_cases(void) {
    /* Wikipedia "Cohen's kappa", first example: 50 proposals, both yes 20, A yes B no 5,
     * A no B yes 10, both no 15: p_o = 0.7, p_e = 0.5*0.6 + 0.5*0.4 = 0.5, kappa = 0.4 */
    int a[100], b[100];
    size_t n = 0;
    for (int i = 0; i < 20; i++) { a[n] = 1; b[n++] = 1; }
    for (int i = 0; i < 5; i++) { a[n] = 1; b[n++] = 0; }
    for (int i = 0; i < 10; i++) { a[n] = 0; b[n++] = 1; }
    for (int i = 0; i < 15; i++) { a[n] = 0; b[n++] = 0; }
    double k = lma_cohen_kappa(a, b, n, 0, 1);
    CHECK(fabs(k - 0.4) < 1e-12, "kappa, Wikipedia example 1: %.15f (0.4)", k);
    /* second example: 45 / 15 / 25 / 15 of 100: p_o = 0.6, p_e = 0.6*0.7 + 0.4*0.3 = 0.54,
     * kappa = 0.06 / 0.46 = 0.1304 */
    n = 0;
    for (int i = 0; i < 45; i++) { a[n] = 1; b[n++] = 1; }
    for (int i = 0; i < 15; i++) { a[n] = 1; b[n++] = 0; }
    for (int i = 0; i < 25; i++) { a[n] = 0; b[n++] = 1; }
    for (int i = 0; i < 15; i++) { a[n] = 0; b[n++] = 0; }
    k = lma_cohen_kappa(a, b, n, 0, 1);
    CHECK(fabs(k - 0.06 / 0.46) < 1e-12, "kappa, Wikipedia example 2: %.15f (%.15f)", k, 0.06 / 0.46);
    /* three categories on a 1..3 scale, worked by hand: pairs (1,1)x2 (2,2)x1 (3,3)x1 (1,2)x1 (3,1)x1:
     * A = 1,1,2,3,1,3 -> shares 3/6, 1/6, 2/6; B = 1,1,2,3,2,1 -> 3/6, 2/6, 1/6;
     * p_o = 4/6; p_e = (9 + 2 + 2)/36 = 13/36; kappa = (24/36 - 13/36) / (23/36) = 11/23 */
    int a3[6] = {1, 1, 2, 3, 1, 3}, b3[6] = {1, 1, 2, 3, 2, 1};
    k = lma_cohen_kappa(a3, b3, 6, 1, 3);
    CHECK(fabs(k - 11.0 / 23.0) < 1e-12, "kappa, 3 categories: %.15f (11/23)", k);
    CHECK(fabs(lma_cohen_kappa(a3, a3, 6, 1, 3) - 1) < 1e-12, "kappa of a rater with itself is 1");
    int c[4] = {2, 2, 2, 2};
    CHECK(isnan(lma_cohen_kappa(c, c, 4, 1, 5)), "kappa undefined (NaN) when both raters give one category");
    /* systematic disagreement: kappa below 0 */
    int x[4] = {1, 2, 1, 2}, y[4] = {2, 1, 2, 1};
    CHECK(fabs(lma_cohen_kappa(x, y, 4, 1, 2) + 1) < 1e-12, "kappa = -1 for complete disagreement on balanced shares");
}

static const char *RUBRIC =
    "{\"instructions\":\"Grade it.\",\"criteria\":["
    "{\"name\":\"groundedness\",\"description\":\"claims are supported by the sources\",\"min\":1,\"max\":5},"
    "{\"name\":\"compliance\",\"description\":\"follows the instruction\",\"min\":0,\"max\":1},"
    "{\"name\":\"helpfulness\",\"description\":\"answers the question\",\"min\":1,\"max\":10}]}";

static void rubric_cases(void) {
    cJSON *j = cJSON_Parse(RUBRIC);
    lma_rubric r;
    CHECK_OK(lma_rubric_parse(j, "r.json", &r));
    cJSON_Delete(j);
    CHECK(r.n == 3 && !strcmp(r.crit[2].name, "helpfulness") && r.crit[2].min == 1 && r.crit[2].max == 10,
          "rubric parsed");
    cJSON *s = lma_rubric_schema(&r);
    char *st = cJSON_PrintUnformatted(s);
    const char *want = "{\"type\":\"object\",\"properties\":{\"groundedness\":{\"enum\":[1,2,3,4,5]},"
                       "\"compliance\":{\"enum\":[0,1]},\"helpfulness\":{\"enum\":[1,2,3,4,5,6,7,8,9,10]}},"
                       "\"required\":[\"groundedness\",\"compliance\",\"helpfulness\"],\"additionalProperties\":false}";
    CHECK(st && !strcmp(st, want), "score schema: %s", st ? st : "(null)");
    free(st);
    cJSON_Delete(s);
    int sc[3];
    const char *good = "{\"groundedness\": 4, \"compliance\":0,\"helpfulness\":10}\n";
    CHECK(lma_judge_parse(&r, good, strlen(good), sc) && sc[0] == 4 && sc[1] == 0 && sc[2] == 10, "judgement parsed");
    const char *bad[] = {"{\"groundedness\":6,\"compliance\":0,\"helpfulness\":1}", /* out of range */
                         "{\"groundedness\":3,\"helpfulness\":1}",                  /* missing */
                         "{\"groundedness\":3.5,\"compliance\":0,\"helpfulness\":1}", /* not an integer */
                         "{\"groundedness\":3,\"compliance\":0,\"helpfulness\":1} x", /* trailing text */
                         "[3,0,1]", "Score: 4"};
    for (int i = 0; i < 6; i++) CHECK(!lma_judge_parse(&r, bad[i], strlen(bad[i]), sc), "rejected: %s", bad[i]);
    /* the prompt names every criterion with its range, the question, numbered sources, the answer */
    const char *src[2] = {"Paris is in France.", "The Seine flows through Paris."};
    char *pr = lma_judge_prompt(&r, "Where is Paris?", src, 2, "In France.");
    CHECK(pr && strstr(pr, "Grade it.") && strstr(pr, "- helpfulness (1 to 10): answers the question") &&
              strstr(pr, "Question:\nWhere is Paris?") && strstr(pr, "[2] The Seine flows through Paris.") &&
              strstr(pr, "Answer:\nIn France.") && strstr(pr, "\"compliance\": <0 to 1>"),
          "judge prompt: %s", pr ? pr : "(null)");
    free(pr);
    pr = lma_judge_prompt(&r, "q", NULL, 0, "a");
    CHECK(pr && !strstr(pr, "Sources:"), "no Sources section without sources");
    free(pr);
    /* labels */
    int lb[3], any;
    cJSON *it = cJSON_Parse("{\"label\":{\"helpfulness\":7,\"compliance\":1}}");
    CHECK_OK(lma_judge_read_labels(&r, it, "f.jsonl", 3, lb, &any));
    CHECK(any && lb[0] == LMA_JUDGE_NO_LABEL && lb[1] == 1 && lb[2] == 7, "labels read");
    cJSON_Delete(it);
    it = cJSON_Parse("{\"label\":{\"helpfulness\":11}}");
    CHECK(lma_judge_read_labels(&r, it, "f.jsonl", 3, lb, &any) == LMA_ERR_FORMAT &&
              strstr(lma_last_error(), "f.jsonl:3") && strstr(lma_last_error(), "helpfulness"),
          "label out of range names file:line and field: %s", lma_last_error());
    lma_clear_error();
    cJSON_Delete(it);
    it = cJSON_Parse("{\"label\":{\"style\":1}}");
    CHECK(lma_judge_read_labels(&r, it, "f.jsonl", 4, lb, &any) == LMA_ERR_FORMAT && strstr(lma_last_error(), "style"),
          "label for an unknown criterion: %s", lma_last_error());
    lma_clear_error();
    cJSON_Delete(it);
    /* statistics: accuracy and kappa recounted */
    lma_judge_stats stt = {0};
    stt.rubric = &r;
    int S[6][3] = {{1, 0, 1}, {1, 0, 2}, {2, 1, 3}, {3, 1, 4}, {1, 0, 5}, {3, 1, 6}};
    int L[6][3] = {{1, 0, 2}, {1, 1, 2}, {2, 1, 2}, {3, 1, 2}, {2, 0, LMA_JUDGE_NO_LABEL}, {1, 1, LMA_JUDGE_NO_LABEL}};
    for (int i = 0; i < 6; i++) CHECK_OK(lma_judge_stats_add(&stt, S[i], L[i]));
    lma_judge_summary sm;
    lma_judge_summarize(&stt, 0, &sm);
    /* groundedness: the 3-category case above (scale 1..5; empty categories add nothing) */
    CHECK(sm.n_labelled == 6 && fabs(sm.accuracy - 4.0 / 6) < 1e-12 && fabs(sm.kappa - 11.0 / 23) < 1e-12 &&
              fabs(sm.mean - 11.0 / 6) < 1e-12,
          "criterion 0: n %ld acc %g kappa %g mean %g", sm.n_labelled, sm.accuracy, sm.kappa, sm.mean);
    lma_judge_summarize(&stt, 2, &sm);
    CHECK(sm.n_labelled == 4 && fabs(sm.accuracy - 0.25) < 1e-12 && fabs(sm.mean - 3.5) < 1e-12,
          "criterion 2: only labelled items count for agreement (n %ld acc %g)", sm.n_labelled, sm.accuracy);
    lma_judge_stats_free(&stt);
    lma_rubric_free(&r);
    /* rubric errors name the file and the criterion */
    const char *errs[][2] = {
        {"{\"criteria\":[]}", "criteria"},
        {"{\"criteria\":[{\"name\":\"a\",\"min\":1,\"max\":5},{\"name\":\"a\",\"min\":1,\"max\":5}]}", "twice"},
        {"{\"criteria\":[{\"name\":\"a\",\"min\":5,\"max\":1}]}", "min <= max"},
        {"{\"criteria\":[{\"name\":\"a\",\"min\":0,\"max\":64}]}", "64"},
        {"{\"criteria\":[{\"name\":\"a b\",\"min\":0,\"max\":1}]}", "name"},
        {"{\"criteria\":[{\"min\":0,\"max\":1}]}", "name"},
        {"{\"criteria\":[{\"name\":\"a\",\"max\":1}]}", "min"},
        {"{\"critera\":[]}", "critera"}};
    for (int i = 0; i < 8; i++) {
        j = cJSON_Parse(errs[i][0]);
        lma_status s2 = lma_rubric_parse(j, "bad.json", &r);
        CHECK(s2 != LMA_OK && strstr(lma_last_error(), "bad.json") && strstr(lma_last_error(), errs[i][1]),
              "rubric error %d: %s", i, lma_last_error());
        lma_clear_error();
        cJSON_Delete(j);
    }
}

static int run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 1 << 16, n = 0, k;
    char *b = malloc(cap);
    while (b && (k = fread(b + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (n + 1 == cap) { char *nb = realloc(b, cap *= 2); if (!nb) break; b = nb; }
    }
    if (b) b[n] = 0;
    int st = pclose(p);
    if (out) *out = b; else free(b);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static lma_model *make_model(const char *dir, uint64_t seed, int vocab, const char *tokdir) {
    lma_config c = {0};
    c.arch = LMA_ARCH_LLAMA; c.vocab_size = vocab; c.hidden_size = 32; c.intermediate_size = 64;
    c.n_layers = 2; c.n_heads = 2; c.n_kv_heads = 1; c.head_dim = 16; c.max_position_embeddings = 1024;
    c.rms_norm_eps = 1e-5; c.rope_theta = 10000; c.bos_token_id = -1; c.n_eos = 0;
    lma_model *m = NULL;
    CHECK_OK(lma_model_create(&c, lma_backend_cpu(), &m));
    if (!m) return NULL;
    CHECK_OK(lma_model_init_random(m, seed, 0.5f));
    CHECK_OK(lma_model_save(m, dir, 0, 0));
    char a[4200], b[4200];
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "tokenizer_config.json" : "tokenizer.json";
        snprintf(a, sizeof a, "%s/%s", tokdir, f);
        snprintf(b, sizeof b, "%s/%s", dir, f);
        CHECK_OK(lma_copy_file(a, b));
    }
    return m;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* the "judge" object of a result: every criterion's mean within its range, accuracy in
 * [0, 1], kappa in [-1, 1] or null, n = items */
static int judge_json_ok(const cJSON *jo, int n_items, int labelled) {
    const cJSON *cr = get(jo, "criteria"), *rub = get(jo, "rubric"), *e;
    if (!cJSON_IsObject(cr) || !cJSON_IsArray(rub) || cJSON_GetArraySize(rub) != 3) return 0;
    if (!cJSON_IsNumber(get(jo, "n")) || get(jo, "n")->valueint != n_items) return 0;
    cJSON_ArrayForEach(e, rub) {
        const cJSON *c = get(cr, get(e, "name")->valuestring);
        double mn = get(e, "min")->valuedouble, mx = get(e, "max")->valuedouble;
        if (!c || !cJSON_IsNumber(get(c, "mean")) || get(c, "mean")->valuedouble < mn || get(c, "mean")->valuedouble > mx)
            return 0;
        if (labelled) {
            const cJSON *acc = get(c, "accuracy"), *k = get(c, "kappa");
            if (!cJSON_IsNumber(acc) || acc->valuedouble < 0 || acc->valuedouble > 1) return 0;
            if (!(cJSON_IsNull(k) || (cJSON_IsNumber(k) && k->valuedouble >= -1 - 1e-12 && k->valuedouble <= 1 + 1e-12)))
                return 0;
        }
    }
    return 1;
}

int main(void) {
    kappa_cases();
    rubric_cases();
    if (!mkdtemp(tmp)) { CHECK(0, "mkdtemp"); TEST_END(); }
    char tokdir[2048], dm[2100], rub[2100], items[2100], gen[2100], cmd[16384];
    snprintf(tokdir, sizeof tokdir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    snprintf(dm, sizeof dm, "%s/judge", tmp);
    snprintf(rub, sizeof rub, "%s/rubric.json", tmp);
    snprintf(items, sizeof items, "%s/items.jsonl", tmp);
    snprintf(gen, sizeof gen, "%s/gen.jsonl", tmp);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(tokdir, &tok));
    if (!tok) TEST_END();
    lma_model *m = make_model(dm, 5, lma_tok_vocab_size(tok), tokdir);
    cJSON *rj = cJSON_Parse(RUBRIC);
    lma_rubric r;
    CHECK_OK(lma_rubric_parse(rj, "rubric", &r));
    cJSON_Delete(rj);
    /* a random judge over many answers: every reply parses, every score in range */
    lma_eval_judge *jd = NULL;
    int32_t eos = lma_tok_eos_id(tok);
    if (m) CHECK_OK(lma_eval_judge_new(m, tok, &r, &eos, eos >= 0, &jd));
    enum { total = 40 };
    int good = 0, distinct_text = 0, same = 0;
    char prev[512] = "", qs[total][64], as[total][128];
    const char *src[1] = {"A source sentence."};
    lma_judge_call calls[total], one;
    long toks = 0, toks1 = 0;
    for (int i = 0; i < total; i++) {
        snprintf(qs[i], sizeof qs[i], "Question number %d?", i);
        snprintf(as[i], sizeof as[i], "Answer %d: %s", i * 37 % 101, i % 3 ? "yes indeed" : "no");
        calls[i] = (lma_judge_call){.question = qs[i], .sources = src, .n_sources = i % 2, .answer = as[i]};
    }
    if (jd) CHECK_OK(lma_eval_judge_score(jd, calls, total, 4, &toks)); /* 4 at a time */
    for (int i = 0; jd && i < total; i++) {
        const char *text = calls[i].text;
        const int *sc = calls[i].scores;
        int ok = text != NULL;
        for (int c = 0; ok && c < 3; c++) ok = sc[c] >= r.crit[c].min && sc[c] <= r.crit[c].max;
        cJSON *v = text ? cJSON_Parse(text) : NULL;
        ok = ok && cJSON_IsObject(v) && cJSON_GetArraySize(v) == 3;
        if (!ok) fprintf(stderr, "judge %d: %s\n", i, text ? text : "(none)");
        good += ok;
        if (text && strcmp(prev, text)) { distinct_text++; snprintf(prev, sizeof prev, "%s", text); }
        cJSON_Delete(v);
        one = (lma_judge_call){.question = qs[i], .sources = src, .n_sources = i % 2, .answer = as[i]};
        CHECK_OK(lma_eval_judge_score(jd, &one, 1, 1, &toks1)); /* alone */
        same += one.text && text && !strcmp(one.text, text) && !memcmp(one.scores, sc, sizeof one.scores);
        free(one.text);
        free(calls[i].text);
    }
    CHECK(toks > 0 && toks == toks1, "tokens counted (%ld batched, %ld alone)", toks, toks1);
    CHECK(!jd || same == total, "the batched judge replies equal the judge alone (%d of %d)", same, total);
    CHECK(good == total, "random judge: %d of %d replies valid JSON with every score in range", good, total);
    fprintf(stderr, "random judge: %d changes of reply over %d items\n", distinct_text, total);
    lma_eval_judge_free(jd);
    lma_model_free(m);
    lma_tok_free(tok);

    /* the CLI: a judge task with labels, and --judge on a gen task */
    FILE *f = test_fopen(rub, "w");
    fputs(RUBRIC, f);
    fclose(f);
    f = test_fopen(items, "w");
    for (int i = 0; i < 6; i++)
        fprintf(f, "{\"question\":\"What is %d + %d?\",\"response\":\"%d\",\"sources\":[\"%d plus %d is %d.\"],"
                   "\"label\":{\"groundedness\":%d,\"compliance\":%d,\"helpfulness\":%d}}\n",
                i, i, 2 * i + (i % 2), i, i, 2 * i, i % 2 ? 1 : 5, 1, i % 2 ? 2 : 9);
    fclose(f);
    f = test_fopen(gen, "w");
    for (int i = 0; i < 4; i++) fprintf(f, "{\"question\":\"What is %d + 1?\",\"answer\":\"%d\",\"sources\":\"%d.\"}\n", i, i + 1, i + 1);
    fclose(f);
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "%s eval --model %s --task judge:%s --rubric %s --json 2>/dev/null", LMA_CLI, dm, items, rub);
    int rc = run(cmd, &out);
    cJSON *o = out ? cJSON_Parse(out) : NULL;
    const cJSON *res = cJSON_GetArrayItem(get(o, "results"), 0);
    CHECK(rc == 0 && res, "eval judge task: rc %d: %s", rc, out ? out : "");
    if (res) {
        CHECK(!strcmp(get(res, "metric")->valuestring, "agree") && get(res, "score")->valuedouble >= 0 &&
                  get(res, "score")->valuedouble <= 1 && get(res, "n")->valueint == 6,
              "judge task: metric agree in [0,1] over 6 items");
        CHECK(judge_json_ok(get(res, "judge"), 6, 1), "judge task: per-criterion JSON in range");
        /* score = mean over criteria of accuracy */
        const cJSON *cr = get(get(res, "judge"), "criteria");
        double mean = (get(get(cr, "groundedness"), "accuracy")->valuedouble +
                       get(get(cr, "compliance"), "accuracy")->valuedouble +
                       get(get(cr, "helpfulness"), "accuracy")->valuedouble) / 3;
        CHECK(fabs(mean - get(res, "score")->valuedouble) < 1e-9, "agree = mean accuracy over criteria");
    }
    cJSON_Delete(o);
    free(out);
    out = NULL;
    snprintf(cmd, sizeof cmd, "%s eval --model %s --task gen:%s --max-tokens 6 --judge %s --rubric %s --json 2>/dev/null",
             LMA_CLI, dm, gen, dm, rub);
    rc = run(cmd, &out);
    o = out ? cJSON_Parse(out) : NULL;
    res = cJSON_GetArrayItem(get(o, "results"), 0);
    CHECK(rc == 0 && res, "eval gen --judge: rc %d: %s", rc, out ? out : "");
    if (res) {
        CHECK(!strcmp(get(res, "metric")->valuestring, "acc"), "gen keeps its accuracy metric");
        CHECK(judge_json_ok(get(res, "judge"), 4, 0), "gen --judge: per-criterion means in range");
        CHECK(cJSON_IsNumber(get(res, "judge_tokens_run")) && get(res, "judge_tokens_run")->valuedouble > 0,
              "judge tokens counted");
    }
    cJSON_Delete(o);
    free(out);
    /* the judge's training set: the same prompt, the labels as the reply */
    char sft[2200];
    snprintf(sft, sizeof sft, "%s/sft.jsonl", tmp);
    {
        long w = 0, sk = 0;
        f = test_fopen(gen, "w");
        fputs("{\"question\":\"Q1\",\"response\":\"R1\",\"sources\":[\"S1\"],"
              "\"label\":{\"groundedness\":2,\"compliance\":1,\"helpfulness\":10}}\n"
              "{\"question\":\"Q2\",\"response\":\"R2\",\"label\":{\"groundedness\":2}}\n", f);
        fclose(f);
        CHECK_OK(lma_judge_sft_write(&r, gen, sft, &w, &sk));
        CHECK(w == 1 && sk == 1, "one SFT example, one partly labelled record skipped (%ld, %ld)", w, sk);
        char *text = NULL;
        size_t tl = 0;
        CHECK_OK(lma_read_file(sft, &text, &tl));
        cJSON *e = text ? cJSON_Parse(text) : NULL;
        const cJSON *msgs = get(e, "messages");
        const char *const srcs[1] = {"S1"};
        char *want = lma_judge_prompt(&r, "Q1", srcs, 1, "R1");
        CHECK(cJSON_GetArraySize(msgs) == 2 && want &&
                  !strcmp(get(cJSON_GetArrayItem(msgs, 0), "content")->valuestring, want) &&
                  !strcmp(get(cJSON_GetArrayItem(msgs, 1), "content")->valuestring,
                          "{\"groundedness\": 2, \"compliance\": 1, \"helpfulness\": 10}"),
              "SFT example: the judge prompt and the labels as JSON: %s", text ? text : "");
        int sc[3];
        const char *rep = msgs ? get(cJSON_GetArrayItem(msgs, 1), "content")->valuestring : "";
        CHECK(lma_judge_parse(&r, rep, strlen(rep), sc), "the SFT reply parses as a judgement");
        free(want);
        cJSON_Delete(e);
        free(text);
    }
    /* usage errors */
    snprintf(cmd, sizeof cmd, "%s eval --model %s --task gen:%s --judge %s 2>&1", LMA_CLI, dm, gen, dm);
    out = NULL;
    rc = run(cmd, &out);
    CHECK(rc != 0 && out && strstr(out, "--rubric"), "--judge without --rubric: %s", out ? out : "");
    free(out);
    f = test_fopen(gen, "w");
    fputs("{\"question\":\"What is 1 + 1?\",\"response\":\"2\"}\n{\"question\":\"What is 2 + 1?\"}\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s eval --model %s --task judge:%s --rubric %s 2>&1", LMA_CLI, dm, gen, rub);
    out = NULL;
    rc = run(cmd, &out);
    CHECK(rc != 0 && out && strstr(out, "gen.jsonl:2") && strstr(out, "response"), "a judge item without a response: %s", out ? out : "");
    free(out);
    lma_rubric_free(&r);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
