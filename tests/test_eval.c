/* eval: CSV parsing (quoted CR/LF, "" escapes) and every MMLU file of tests/data/mmlu
 * against Python's csv row counts; the MMLU prompt and token ids equal
 * lm-evaluation-harness's (tests/ref/eval/mmlu_prompts.json, made by lm-eval 0.4.13);
 * MMLU accuracy arithmetic with a hand-built log-likelihood source; GSM8K answer
 * extraction on all of tests/data/gsm8k_train.jsonl; exact/json/yaml checks; the KV-cache scorer
 * equals the full-forward scorer and lma_score; perplexity windows equal a direct
 * per-window computation. */
#include <cjson/cJSON.h>
#include <unistd.h>
#include "core/io.h"
#include "core/json.h"
#include "eval/csv.h"
#include "eval/eval.h"
#include "eval/gencheck.h"
#include "infer/score.h"
#include "test.h"

static void csv_cases(void) {
    const char *t = "a,\"b,1\",c\r\n\"x\"\"y\",\"line1\rline2\nline3\",\n\nlast,\"q\"z,end";
    char **c = NULL;
    size_t n = 0;
    CHECK_OK(lma_csv_parse(t, strlen(t), "t", 3, &c, &n));
    CHECK(n == 3, "3 records (blank line skipped), got %zu", n);
    if (n == 3) {
        CHECK(!strcmp(c[0], "a") && !strcmp(c[1], "b,1") && !strcmp(c[2], "c"), "record 1");
        CHECK(!strcmp(c[3], "x\"y") && !strcmp(c[4], "line1\rline2\nline3") && !strcmp(c[5], ""), "record 2: '%s'", c[4]);
        CHECK(!strcmp(c[6], "last") && !strcmp(c[7], "qz") && !strcmp(c[8], "end"), "record 3 (text after a quote kept)");
    }
    lma_csv_free(c, n * 3);
    const char *u = "a,b,c\rd,e,f";
    CHECK_OK(lma_csv_parse(u, strlen(u), "u", 3, &c, &n));
    CHECK(n == 2, "a lone CR ends a record outside quotes");
    lma_csv_free(c, n * 3);
    const char *bad = "a,b,c\nd,e\n";
    CHECK(lma_csv_parse(bad, strlen(bad), "bad.csv", 3, &c, &n) == LMA_ERR_FORMAT && strstr(lma_last_error(), "bad.csv:2"),
          "short record names file:line: %s", lma_last_error());
    lma_clear_error();
    const char *open = "a,\"b\nc,d\n";
    CHECK(lma_csv_parse(open, strlen(open), "o.csv", 3, &c, &n) == LMA_ERR_FORMAT && strstr(lma_last_error(), "o.csv:1"),
          "unclosed quote: %s", lma_last_error());
    lma_clear_error();
}

static void mmlu_files(void) {
    char path[2048], *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/tests/ref/eval/mmlu_rowcounts.txt", LMA_SRC_DIR);
    CHECK_OK(lma_read_file(path, &buf, &len));
    if (!buf) return;
    int files = 0, ok = 0, cr_files = 0;
    long rows = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        char name[512];
        long want;
        if (sscanf(line, "%511s %ld", name, &want) != 2) continue;
        snprintf(path, sizeof path, "%s/tests/data/mmlu/%s", LMA_SRC_DIR, name);
        lma_mmlu_item *it = NULL;
        size_t n = 0;
        lma_status s = lma_mmlu_read_csv(path, &it, &n);
        files++;
        if (s == LMA_OK && (long)n == want) ok++;
        else fprintf(stderr, "  %s: %s, %zu rows vs %ld\n", name, lma_last_error(), n, want);
        lma_clear_error();
        int cr = 0;
        for (size_t i = 0; i < n; i++) cr |= strchr(it[i].question, '\r') != NULL;
        cr_files += cr;
        rows += (long)n;
        lma_mmlu_items_free(it, n);
    }
    free(buf);
    CHECK(files == 114 && ok == files, "every MMLU file parses with Python's row count (%d of %d)", ok, files);
    CHECK(rows == 855, "855 rows in all (%ld)", rows);
    CHECK(cr_files == 3, "carriage returns kept inside quoted fields in 3 files (%d)", cr_files);
    lma_mmlu_set set;
    snprintf(path, sizeof path, "%s/tests/data/mmlu", LMA_SRC_DIR);
    CHECK_OK(lma_mmlu_load(path, NULL, &set));
    CHECK(set.n == 57 && !strcmp(set.split, "val"), "57 subjects, split val without test/ (%zu, %s)", set.n, set.split);
    size_t with_shots = 0;
    for (size_t i = 0; i < set.n; i++) with_shots += set.subj[i].n_shots == 5;
    CHECK(with_shots == 57, "every subject has its 5 dev rows as shots");
    lma_mmlu_free(&set);
    snprintf(path, sizeof path, "%s/tests/data/mmlu/dev", LMA_SRC_DIR);
    CHECK_OK(lma_mmlu_load(path, NULL, &set));
    CHECK(set.n == 57 && !strcmp(set.split, "dev") && set.subj[0].shots_are_items, "a split folder alone (dev)");
    lma_mmlu_free(&set);
}

/* prompts and token ids against lm-eval */
static void mmlu_prompts(void) {
    char path[2048];
    snprintf(path, sizeof path, "%s/tests/ref/eval/mmlu_prompts.json", LMA_SRC_DIR);
    cJSON *j = NULL;
    CHECK_OK(lma_json_load(path, &j));
    if (!j) return;
    snprintf(path, sizeof path, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(path, &tok));
    lma_mmlu_set set;
    snprintf(path, sizeof path, "%s/tests/data/mmlu", LMA_SRC_DIR);
    CHECK_OK(lma_mmlu_load(path, "val", &set));
    const cJSON *it;
    int n = 0, same_text = 0, same_ids = 0, shot_kinds = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "items")) {
        const char *subj = cJSON_GetObjectItem(it, "subject")->valuestring;
        int idx = cJSON_GetObjectItem(it, "index")->valueint, k = cJSON_GetObjectItem(it, "shots")->valueint;
        const char *want = cJSON_GetObjectItem(it, "context")->valuestring;
        const lma_mmlu_subject *u = NULL;
        for (size_t s = 0; s < set.n; s++) if (!strcmp(set.subj[s].name, subj)) u = &set.subj[s];
        n++;
        shot_kinds |= 1 << k;
        if (!u || (size_t)idx >= u->n_items) continue;
        CHECK(u->items[idx].answer == cJSON_GetObjectItem(it, "answer")->valueint, "gold answer %s %d", subj, idx);
        char *p = NULL;
        size_t len = 0;
        CHECK_OK(lma_mmlu_prompt(u->name, u->shots, u->n_shots, 0, k, &u->items[idx], &p, &len));
        if (p && len == strlen(want) && !memcmp(p, want, len)) same_text++;
        else fprintf(stderr, "  prompt differs: %s #%d k=%d\n--- ours:\n%s\n--- lm-eval:\n%s\n", subj, idx, k, p, want);
        const cJSON *cids = cJSON_GetObjectItem(it, "context_ids"), *conts = cJSON_GetObjectItem(it, "continuations"),
                    *kids = cJSON_GetObjectItem(it, "continuation_ids");
        int all = 1;
        for (int c = 0; p && c < 4; c++) {
            const char *cont = cJSON_GetArrayItem(conts, c)->valuestring;
            int32_t *a = NULL, *b = NULL;
            size_t na = 0, nb = 0;
            CHECK_OK(lma_eval_encode_pair(tok, p, len, cont, strlen(cont), &a, &na, &b, &nb));
            const cJSON *kc = cJSON_GetArrayItem(kids, c);
            all &= (int)na == cJSON_GetArraySize(cids) && (int)nb == cJSON_GetArraySize(kc);
            for (size_t i = 0; all && i < na; i++) all &= a[i] == cJSON_GetArrayItem(cids, (int)i)->valueint;
            for (size_t i = 0; all && i < nb; i++) all &= b[i] == cJSON_GetArrayItem(kc, (int)i)->valueint;
            free(a); free(b);
        }
        same_ids += all;
        free(p);
    }
    CHECK(n == 105 && shot_kinds == ((1 << 0) | (1 << 1) | (1 << 5)), "fixture: 105 prompts with 0, 1 and 5 shots (%d)", n);
    CHECK(same_text == n, "prompt text equals lm-eval's byte for byte (%d of %d)", same_text, n);
    CHECK(same_ids == n, "context and continuation ids equal lm-eval's _encode_pair (%d of %d)", same_ids, n);
    /* dev evaluated on itself: the item is left out of its own shots */
    const lma_mmlu_subject *u = &set.subj[0];
    char *p = NULL;
    size_t len;
    lma_mmlu_item pool[3] = {u->items[0], u->items[1], u->items[2]};
    CHECK_OK(lma_mmlu_prompt("x", pool, 3, 1, 2, &pool[1], &p, &len));
    char *first = p ? strstr(p, pool[1].question) : NULL;
    CHECK(p && first && strstr(p, pool[0].question) && strstr(p, pool[2].question) &&
          first == strstr(p, pool[1].question) && strstr(first + 1, pool[1].question) == NULL,
          "same-split shots skip the item (first_n takes k+1)");
    free(p);
    CHECK(lma_mmlu_prompt("x", pool, 3, 0, 4, &pool[0], &p, &len) == LMA_ERR_ARG, "more shots than dev rows is an error");
    lma_clear_error();
    lma_mmlu_free(&set);
    lma_tok_free(tok);
    cJSON_Delete(j);
}

/* a log-likelihood source that replays planned values and records what it saw */
typedef struct {
    const double (*plan)[4];
    int calls, bad_conts;
    const lma_tokenizer *tok;
} fake;

static lma_status fake_loglik(lma_eval_scorer *s, const int32_t *ctx, size_t n_ctx, const int32_t *const *conts,
                              const size_t *n_conts, int n, double *out) {
    fake *f = s->impl;
    (void)ctx; (void)n_ctx;
    for (int i = 0; i < n; i++) {
        char *t = NULL;
        size_t l = 0;
        lma_tok_decode(f->tok, conts[i], n_conts[i], 0, &t, &l);
        char want[3] = {' ', (char)('A' + i), 0};
        if (n != 4 || !t || strcmp(t, want)) f->bad_conts++;
        free(t);
        out[i] = f->plan[f->calls][i];
    }
    f->calls++;
    return LMA_OK;
}

static void mmlu_arithmetic(void) {
    char path[2048];
    snprintf(path, sizeof path, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(path, &tok));
    if (!tok) return;
    /* subject s0: 3 items (answers A, C, D); s1: 2 items (answers B, B) */
    lma_mmlu_item items0[3] = {{"q1", {"a", "b", "c", "d"}, 0}, {"q2", {"a", "b", "c", "d"}, 2},
                               {"q3", {"a", "b", "c", "d"}, 3}};
    lma_mmlu_item items1[2] = {{"r1", {"a", "b", "c", "d"}, 1}, {"r2", {"a", "b", "c", "d"}, 1}};
    lma_mmlu_subject subj[2] = {{"s0", items0, 3, items0, 3, 1}, {"s1", items1, 2, NULL, 0, 0}};
    lma_mmlu_set set = {subj, 2, "test"};
    static const double plan[5][4] = {
        {-1.0, -2.0, -3.0, -4.0},   /* s0 q1: A (right) */
        {-5.0, -1.5, -1.5, -9.0},   /* s0 q2: tie B/C -> first max B (wrong) */
        {-3.0, -3.0, -3.0, -0.5},   /* s0 q3: D (right) */
        {-0.1, -0.2, -0.3, -0.4},   /* s1 r1: A (wrong) */
        {-7.0, -1.0, -2.0, -1.0001} /* s1 r2: B (right) */
    };
    fake f = {plan, 0, 0, tok};
    lma_eval_scorer sc = {fake_loglik, NULL, &f, 0};
    lma_eval_params p = lma_eval_default_params();
    p.shots = 0;
    lma_eval_result r = {0};
    r.task.kind = LMA_EVAL_MMLU;
    CHECK_OK(lma_eval_mmlu(&sc, tok, &set, &p, &r));
    CHECK(f.calls == 5 && f.bad_conts == 0, "one call per item with continuations \" A\"..\" D\" (%d calls, %d bad)",
          f.calls, f.bad_conts);
    CHECK(r.n_groups == 2 && r.groups[0].n == 3 && r.groups[0].correct == 2 && r.groups[1].n == 2 &&
          r.groups[1].correct == 1, "per-subject counts");
    CHECK(r.n == 5 && r.correct == 3 && fabs(r.score - 0.6) < 1e-12, "micro accuracy 3/5 (%g)", r.score);
    CHECK(fabs(r.macro - (2.0 / 3 + 0.5) / 2) < 1e-12, "macro accuracy = mean(2/3, 1/2) (%g)", r.macro);
    cJSON *js = lma_eval_result_json(&r);
    const cJSON *subs = cJSON_GetObjectItem(js, "subjects");
    CHECK(cJSON_GetArraySize(subs) == 2 && subs && fabs(cJSON_GetObjectItem(cJSON_GetArrayItem(subs, 0), "acc")->valuedouble - 2.0 / 3) < 1e-12,
          "JSON per-subject accuracy");
    const cJSON *s0 = cJSON_GetArrayItem(subs, 0), *s1 = cJSON_GetArrayItem(subs, 1);
    const char *p0 = cJSON_GetStringValue(cJSON_GetObjectItem(s0, "pred")), *g0 = cJSON_GetStringValue(cJSON_GetObjectItem(s0, "gold"));
    const char *p1 = cJSON_GetStringValue(cJSON_GetObjectItem(s1, "pred")), *g1 = cJSON_GetStringValue(cJSON_GetObjectItem(s1, "gold"));
    CHECK(p0 && g0 && p1 && g1 && !strcmp(p0, "ABD") && !strcmp(g0, "ACD") && !strcmp(p1, "AB") && !strcmp(g1, "BB"),
          "JSON per-item letters (pred %s/%s, gold %s/%s)", p0 ? p0 : "-", p1 ? p1 : "-", g0 ? g0 : "-", g1 ? g1 : "-");
    cJSON_Delete(js);
    /* a second "model" on the same suite: compare */
    lma_eval_result a[2], b[2];
    memset(a, 0, sizeof a); memset(b, 0, sizeof b);
    a[0] = r; b[0] = r;
    a[0].task.tag = b[0].task.tag = LMA_EVAL_GENERAL;
    b[0].score = 0.5;
    a[1].task.kind = b[1].task.kind = LMA_EVAL_PPL; a[1].task.tag = b[1].task.tag = LMA_EVAL_DOMAIN;
    a[1].score = 20; b[1].score = 15; a[1].higher_is_better = b[1].higher_is_better = 0;
    lma_eval_tag_summary sums[3];
    lma_eval_compare(a, b, 2, sums);
    CHECK(fabs(sums[LMA_EVAL_GENERAL].mean_dacc + 0.1) < 1e-12 && fabs(sums[LMA_EVAL_DOMAIN].mean_rel_ppl + 0.25) < 1e-12,
          "forgetting -0.1 acc on general, -25%% ppl on domain");
    CHECK(!lma_eval_compare_one(&a[0], &b[0]).better && lma_eval_compare_one(&a[1], &b[1]).better,
          "better: higher accuracy, lower perplexity");
    cJSON *cj = lma_eval_compare_json(a, b, 2);
    CHECK(cj && cJSON_GetObjectItem(cj, "forgetting") && fabs(cJSON_GetObjectItem(cj, "forgetting")->valuedouble - 0.1) < 1e-12, "JSON forgetting = 0.1");
    cJSON_Delete(cj);
    lma_eval_result_free(&r);
    lma_tok_free(tok);
}

static void gsm8k_and_checks(void) {
    char path[2048], *ref = NULL, *data = NULL;
    size_t rl = 0, dl = 0;
    snprintf(path, sizeof path, "%s/tests/ref/eval/gsm8k_answers.txt", LMA_SRC_DIR);
    CHECK_OK(lma_read_file(path, &ref, &rl));
    snprintf(path, sizeof path, "%s/tests/data/gsm8k_train.jsonl", LMA_SRC_DIR);
    CHECK_OK(lma_read_file(path, &data, &dl));
    if (!ref || !data) { free(ref); free(data); return; }
    int n = 0, ok = 0;
    char *rp = ref, *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *a = cJSON_GetObjectItem(j, "answer");
        double want = strtod(rp, &rp), got = 0;
        n++;
        if (cJSON_IsString(a) && lma_extract_number(a->valuestring, strlen(a->valuestring), &got) && got == want) ok++;
        else if (n - ok < 5) fprintf(stderr, "  gsm8k line %d: got %g want %g\n", n, got, want);
        if (cJSON_IsString(a)) {
            /* the model wrote the same reasoning: number check passes; a changed number fails */
            char out[64];
            snprintf(out, sizeof out, "so the result is #### %.0f", want + 1);
            if (!lma_gen_check_number(a->valuestring, strlen(a->valuestring), a->valuestring) ||
                lma_gen_check_number(out, strlen(out), a->valuestring))
                ok--;
        }
        cJSON_Delete(j);
    }
    CHECK(n == 1000 && ok == n, "GSM8K: all %d answers extracted equal the Python reference (%d)", n, ok);
    free(ref); free(data);
    double v;
    CHECK(lma_extract_number("The answer is 1,234.", 20, &v) && v == 1234, "last number, commas dropped");
    CHECK(lma_extract_number("costs $3.50 then 7 more", 23, &v) && v == 7, "last number without ####");
    CHECK(lma_extract_number("x #### -12 apples 5", 19, &v) && v == -12, "first number after #### (negative)");
    CHECK(lma_extract_number("well-3", 6, &v) && v == 3, "hyphen glued to a word is no sign");
    CHECK(!lma_extract_number("no digits here", 14, &v), "no number");
    CHECK(lma_gen_check_exact("  Paris\n", 8, "Paris") && !lma_gen_check_exact("paris", 5, "Paris"), "exact after strip");
    const char *keys[2] = {"name", "age"};
    int valid;
    const char *j1 = "```json\n{\"name\": \"a\", \"age\": 3}\n```";
    CHECK(lma_gen_check_json(j1, strlen(j1), keys, 2, &valid) && valid, "fenced JSON with the keys");
    CHECK(!lma_gen_check_json("{\"name\": 1}", 11, keys, 2, &valid) && valid, "valid JSON missing a key");
    CHECK(!lma_gen_check_json("{\"name\": 1", 10, keys, 0, &valid) && !valid, "truncated JSON");
    CHECK(!lma_gen_check_json("{} extra", 8, keys, 0, &valid) && !valid, "trailing text after JSON");
    /* fields: the first object's values against the reference's; validity of the whole */
    const char *want = "{\"command\": \"sft\", \"flag\": \"--lora-r\"}";
    const char *f1 = "```json\n{\"flag\": \"--lora-r\", \"command\": \"sft\"}\n```";
    CHECK(lma_gen_check_json_fields(f1, strlen(f1), want, &valid) && valid == 1, "fenced, keys reordered: right, valid");
    const char *f2 = "The answer is {\"command\": \"sft\", \"flag\": \"--lora-r\"} [1]";
    CHECK(lma_gen_check_json_fields(f2, strlen(f2), want, &valid) && valid == 0, "text around it: right, not valid");
    const char *f3 = "{\"command\": \"sft\", \"flag\": \"--lora-alpha\"}";
    CHECK(!lma_gen_check_json_fields(f3, strlen(f3), want, &valid) && valid == 1, "a wrong value: wrong, valid");
    const char *f4 = "{\"command\": \"sft\"}";
    CHECK(!lma_gen_check_json_fields(f4, strlen(f4), want, &valid) && valid == 0, "a missing key: wrong, not valid");
    CHECK(!lma_gen_check_json_fields("{\"a\": 1", 8, want, &valid) && valid == 0, "truncated: wrong, not valid");
    CHECK(!lma_gen_check_json_fields("x", 1, "\"sft\"", &valid) && valid == -1, "a reference that is no object");
    const char *y1 = "---\nname: Ann  # comment\nage: 31\ntags:\n  - a\n  - b\n";
    CHECK(lma_gen_check_yaml(y1, strlen(y1), keys, 2, &valid) && valid, "YAML mapping with the keys");
    const char *y2 = "name: [a, b\nage: 3\n";
    CHECK(!lma_gen_check_yaml(y2, strlen(y2), keys, 2, &valid) && !valid, "unclosed flow sequence");
    const char *y3 = "name: x\n\tage: 3\n";
    CHECK(!lma_gen_check_yaml(y3, strlen(y3), keys, 0, &valid) && !valid, "tab indentation");
    const char *y4 = "just a sentence";
    CHECK(!lma_gen_check_yaml(y4, strlen(y4), keys, 0, &valid) && !valid, "plain text is no mapping");
    CHECK(!lma_gen_check_yaml("name: x\n", 8, keys, 2, &valid) && valid, "mapping missing a key");
}

/* the KV scorer (with prefix reuse and truncation) equals the full-forward scorer and lma_score */
static void scorers(void) {
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/tests/ref/models/llama_gqa", LMA_SRC_DIR);
    lma_model *m = NULL;
    CHECK_OK(lma_model_load_ex(dir, lma_backend_cpu(), 0, &m));
    if (!m) return;
    int maxp = m->cfg.max_position_embeddings; /* 128 */
    int32_t seq[300];
    for (int i = 0; i < 300; i++) seq[i] = (int32_t)((i * 37 + 11) % 256);
    int32_t c0[1] = {5}, c1[3] = {7, 8, 9}, c2[2] = {100, 3}, c3[1] = {255};
    const int32_t *conts[4] = {c0, c1, c2, c3};
    size_t nc[4] = {1, 3, 2, 1};
    lma_eval_scorer *kv = NULL, *full = NULL;
    CHECK_OK(lma_eval_scorer_model(m, LMA_EVAL_SCORE_KV, &kv));
    CHECK_OK(lma_eval_scorer_model(m, LMA_EVAL_SCORE_FULL, &full));
    double worst = 0, worst_ref = 0;
    size_t lens[4] = {40, 60, 41, 20}; /* 60 then 41 shares a 40-token prefix: reuse */
    for (int r = 0; r < 4; r++) {
        double a[4], b[4];
        CHECK_OK(kv->loglik(kv, seq, lens[r], conts, nc, 4, a));
        CHECK_OK(full->loglik(full, seq, lens[r], conts, nc, 4, b));
        for (int i = 0; i < 4; i++) {
            worst = fmax(worst, fabs(a[i] - b[i]));
            int32_t ids[80];
            memcpy(ids, seq, lens[r] * sizeof(int32_t));
            memcpy(ids + lens[r], conts[i], nc[i] * sizeof(int32_t));
            lma_score_result sr;
            CHECK_OK(lma_score(m, ids, lens[r] + nc[i], &sr));
            double lp = 0;
            for (size_t k = 0; k < nc[i]; k++) lp += sr.logprobs[lens[r] - 1 + k];
            worst_ref = fmax(worst_ref, fabs(a[i] - lp));
            free(sr.logprobs);
        }
    }
    CHECK(worst < 2e-4, "KV scorer = full-forward scorer (max diff %.3g)", worst);
    CHECK(worst_ref < 2e-4, "KV scorer = lma_score of context+continuation (max diff %.3g)", worst_ref);
    /* a context longer than the model: the oldest tokens are dropped, as lm-eval does */
    const int32_t *one[1] = {c0};
    size_t n1[1] = {1};
    double a, b, c;
    CHECK_OK(kv->loglik(kv, seq, 300, one, n1, 1, &a));
    CHECK_OK(full->loglik(full, seq, 300, one, n1, 1, &b));
    CHECK_OK(full->loglik(full, seq + 300 - maxp, (size_t)maxp, one, n1, 1, &c));
    CHECK(fabs(a - c) < 2e-4 && fabs(b - c) < 2e-4, "left truncation to %d tokens (%g %g %g)", maxp, a, b, c);
    CHECK(kv->tokens_run < full->tokens_run, "the KV scorer runs fewer tokens (%ld vs %ld)", kv->tokens_run, full->tokens_run);
    lma_eval_scorer_free(kv);
    lma_eval_scorer_free(full);
    lma_model_free(m);
}

/* perplexity windows: each token scored once, with the context its window gives */
static void ppl_windows(void) {
    char tokdir[2048], tmp[] = "/tmp/lma_test_eval_XXXXXX";
    snprintf(tokdir, sizeof tokdir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(tokdir, &tok));
    if (!tok || !mkdtemp(tmp)) { lma_tok_free(tok); return; }
    lma_config c = {0};
    c.arch = LMA_ARCH_LLAMA; c.vocab_size = lma_tok_vocab_size(tok); c.hidden_size = 32; c.intermediate_size = 64;
    c.n_layers = 2; c.n_heads = 2; c.n_kv_heads = 1; c.head_dim = 16; c.max_position_embeddings = 64;
    c.rms_norm_eps = 1e-5; c.rope_theta = 10000; c.bos_token_id = -1;
    lma_model *m = NULL;
    CHECK_OK(lma_model_create(&c, lma_backend_cpu(), &m));
    if (!m) { lma_tok_free(tok); return; }
    CHECK_OK(lma_model_init_random(m, 7, 0.3f));
    char file[2100], *text = NULL;
    size_t tl = 0;
    snprintf(file, sizeof file, "%s/tests/data/tinyshakespeare.txt", LMA_SRC_DIR);
    CHECK_OK(lma_read_file(file, &text, &tl));
    if (!text) { lma_model_free(m); lma_tok_free(tok); return; }
    tl = 600;
    text[tl] = 0;
    snprintf(file, sizeof file, "%s/a.txt", tmp);
    CHECK_OK(lma_write_file_atomic(file, text, tl));
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(lma_tok_encode(tok, text, tl, 1, &ids, &n));
    lma_eval_task t;
    char spec[2200];
    snprintf(spec, sizeof spec, "domain:ppl:%s", file);
    CHECK_OK(lma_eval_task_parse(spec, &t));
    CHECK(t.kind == LMA_EVAL_PPL && t.tag == LMA_EVAL_DOMAIN && !strcmp(t.name, "ppl:a.txt"), "task spec parsed");
    lma_eval_params p = lma_eval_default_params();
    p.ppl_window = 40; p.ppl_stride = 15;
    lma_eval_result r;
    CHECK_OK(lma_eval_run(m, tok, &t, &p, &r));
    /* reference: token j scored in the window [b, b+W) holding it that the HF loop picks */
    double nll = 0;
    long cnt = 0;
    size_t W = 40, S = 15, prev = 0;
    for (size_t b = 0;; b += S) {
        size_t e = b + W < n ? b + W : n;
        lma_score_result sr;
        CHECK_OK(lma_score(m, ids + b, e - b, &sr));
        for (size_t j = (prev > 1 ? prev : 1); j < e; j++) { nll -= sr.logprobs[j - b - 1]; cnt++; }
        free(sr.logprobs);
        prev = e;
        if (e == n) break;
    }
    CHECK(r.tokens == (long)n - 1 && cnt == r.tokens, "every token but the first scored once (%ld of %zu)", r.tokens, n);
    CHECK(fabs(r.nll - nll) < 1e-3 * fabs(nll) && fabs(r.score - exp(nll / cnt)) < 1e-3 * r.score,
          "sliding-window NLL equals the direct computation (%g vs %g)", r.nll, nll);
    CHECK(r.bytes == (long)tl, "bytes counted");
    lma_eval_result_free(&r);
    CHECK(lma_eval_task_parse("foo:bar", &t) == LMA_ERR_ARG, "unknown kind rejected");
    lma_clear_error();
    remove(file);
    rmdir(tmp);
    free(ids); free(text);
    lma_model_free(m);
    lma_tok_free(tok);
}

int main(void) {
    csv_cases();
    mmlu_files();
    mmlu_prompts();
    mmlu_arithmetic();
    gsm8k_and_checks();
    scorers();
    ppl_windows();
    TEST_END();
}
