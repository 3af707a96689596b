/* generate + accept: a tiny random model with the Llama 3 test tokenizer
 * (tests/ref/tok/bl) drafts responses (junk text, real mechanics): one review line
 * per prompt, each draft equal to what lma_generate gives for the same rendered
 * prompt and seed, resume without redoing (or touching) done lines, duplicates and
 * unreadable prompts counted; accept keeps exactly accepted + edited lines with the
 * reviewer's text, and stops with file:line on an unknown status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "core/io.h"
#include "core/json.h"
#include "data/curate/curate.h"
#include "eval/curate_model.h"
#include "infer/generate.h"
#include "test.h"
#include "test_models.h"

static char dir[] = "/tmp/lma_gen_XXXXXX";

static void path(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

/* tiny random Llama with the bl tokenizer's vocabulary, saved as an HF dir */
static int make_model(const char *mdir) {
    lma_model *m = test_tok_model(mdir, (test_tok_model_params){1, 512, 11, 1}, NULL);
    lma_model_free(m);
    return m != NULL;
}

static char *slurp(const char *p, size_t *n) {
    char *d = NULL;
    size_t len = 0;
    if (lma_read_file(p, &d, &len)) { lma_clear_error(); d = NULL; len = 0; }
    if (n) *n = len;
    return d;
}

static int count_lines(const char *p) {
    size_t n;
    char *d = slurp(p, &n);
    int k = 0;
    for (size_t i = 0; d && i < n; i++) k += d[i] == '\n';
    free(d);
    return k;
}

static double num(const cJSON *s, const char *k) { return cJSON_GetObjectItemCaseSensitive(s, k)->valuedouble; }

/* Re-derives each review line's draft with lma_generate on the rendered prompt. */
static void drafts_equal_generate(const char *mdir, const char *review, const lma_gen_params *gp) {
    lma_model *m = NULL;
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_model_load_ex(mdir, lma_backend_cpu(), 0, &m));
    CHECK_OK(lma_tok_load(mdir, &tok));
    if (!m || !tok) { lma_model_free(m); lma_tok_free(tok); return; }
    int32_t eos[16];
    lma_gen_params g = *gp;
    g.n_stop_ids = lma_generation_eos(mdir, &m->cfg, eos, 16);
    g.stop_ids = eos;
    lma_jsonl j;
    CHECK_OK(lma_jsonl_open(&j, review, 0));
    int lines = 0, same = 0, nonempty = 0;
    cJSON *o;
    while (lma_jsonl_next(&j, &o, NULL) == LMA_OK && o) {
        lma_chat_msg msgs[8];
        size_t n = 0;
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "prompt"), *ms = cJSON_GetObjectItemCaseSensitive(o, "messages"), *it;
        if (cJSON_IsString(pr)) msgs[n++] = (lma_chat_msg){"user", pr->valuestring};
        cJSON_ArrayForEach(it, ms) if (n < 8) msgs[n++] = (lma_chat_msg){cJSON_GetObjectItem(it, "role")->valuestring,
                                                                           cJSON_GetObjectItem(it, "content")->valuestring};
        int32_t *ids = NULL; size_t nid = 0, *sp = NULL, nsp = 0;
        CHECK_OK(lma_chat_encode(tok, NULL, msgs, n, 1, &ids, &nid, &sp, &nsp));
        lma_gen_result r;
        memset(&r, 0, sizeof r);
        CHECK_OK(lma_generate(m, tok, ids, nid, &g, &r));
        const char *draft = cJSON_GetObjectItemCaseSensitive(o, "draft")->valuestring;
        same += r.text && !strcmp(r.text, draft);
        nonempty += draft[0] != 0;
        lines++;
        free(ids); free(sp); free(r.ids); free(r.text);
        cJSON_Delete(o);
    }
    lma_jsonl_close(&j);
    CHECK(lines > 0 && same == lines, "drafts equal lma_generate on the rendered prompt (%d of %d)", same, lines);
    CHECK(nonempty > 0, "some drafts are non-empty (%d)", nonempty);
    lma_model_free(m);
    lma_tok_free(tok);
}

static void generate(const char *mdir) {
    char prompts[1100], review[1100];
    path(prompts, sizeof prompts, "prompts.jsonl");
    path(review, sizeof review, "review.jsonl");
    FILE *f = test_fopen(prompts, "w");
    fprintf(f, "{\"prompt\": \"Give three tips for staying healthy.\"}\n");
    fprintf(f, "{\"instruction\": \"Translate to French\", \"input\": \"good morning\"}\n");
    fprintf(f, "not json at all\n");
    fprintf(f, "{\"messages\": [{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"What is 2+2?\"},"
               "{\"role\":\"assistant\",\"content\":\"old answer\"}]}\n");
    fprintf(f, "{\"id\": \"q7\", \"question\": \"Why is the sky blue?\"}\n");
    fprintf(f, "{\"id\": \"q7\", \"prompt\": \"Why is the sky blue?\"}\n"); /* duplicate id */
    fprintf(f, "{\"instruction\": \"Name a color.\", \"output\": \"Red.\"}\n");
    fclose(f);
    lma_curate_llm l;
    CHECK_OK(lma_curate_llm_load(mdir, NULL, NULL, &l));
    if (!l.ctx) return;
    lma_data_generate_params p;
    lma_data_generate_default_params(&p);
    p.gen.max_tokens = 12;
    p.gen.sample.temperature = 0.9f;
    p.gen.seed = 5;
    p.checkpoint_s = 0; /* commit after every draft */
    p.limit = 2;
    cJSON *s = NULL;
    CHECK_OK(lma_data_generate(&l, prompts, review, &p, &s));
    if (!s) { lma_curate_llm_free(&l); return; }
    CHECK(num(s, "drafted") == 2 && num(s, "model_calls") == 2 && count_lines(review) == 2, "limit 2: two drafts");
    cJSON_Delete(s);
    /* a reviewer edits the first line before the rerun */
    size_t n0;
    char *before = slurp(review, &n0);
    char *nl = before ? strchr(before, '\n') : NULL;
    if (nl) {
        cJSON *o = cJSON_ParseWithLength(before, (size_t)(nl - before));
        cJSON_ReplaceItemInObject(o, "status", cJSON_CreateString("accepted"));
        char *js = cJSON_PrintUnformatted(o);
        FILE *w = test_fopen(review, "w");
        fprintf(w, "%s%s", js, nl);
        fclose(w);
        free(js); cJSON_Delete(o);
    }
    free(before);
    before = slurp(review, &n0);
    p.limit = 0;
    CHECK_OK(lma_data_generate(&l, prompts, review, &p, &s));
    if (s) {
        CHECK(num(s, "prompts") == 7 && num(s, "drafted") == 3 && num(s, "skipped") == 2 && num(s, "duplicates") == 1 &&
                  num(s, "unreadable") == 1 && num(s, "model_calls") == 3,
              "resume: 3 new drafts, 2 skipped, 1 duplicate, 1 unreadable (got %g %g %g %g %g)", num(s, "drafted"),
              num(s, "skipped"), num(s, "duplicates"), num(s, "unreadable"), num(s, "model_calls"));
        const cJSON *pr0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s, "problems"), 0);
        CHECK(pr0 && num(pr0, "line") == 3, "the unreadable prompt is reported with its line");
        cJSON_Delete(s);
    }
    size_t n1;
    char *after = slurp(review, &n1);
    CHECK(before && after && n1 > n0 && !memcmp(before, after, n0), "done lines are kept byte for byte (reviewer's edit too)");
    CHECK(count_lines(review) == 5, "one line per distinct readable prompt (%d)", count_lines(review));
    free(before); free(after);
    /* every line's fields */
    lma_jsonl j;
    CHECK_OK(lma_jsonl_open(&j, review, 0));
    cJSON *o;
    int ok = 1, k = 0, has_q7 = 0, sys_kept = 0;
    while (lma_jsonl_next(&j, &o, NULL) == LMA_OK && o) {
        const char *st = cJSON_GetObjectItemCaseSensitive(o, "status")->valuestring;
        ok &= cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "id")) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "draft")) &&
              cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "reviewer_note")) && !strcmp(st, k == 0 ? "accepted" : "pending");
        has_q7 |= !strcmp(cJSON_GetObjectItemCaseSensitive(o, "id")->valuestring, "q7");
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "messages");
        if (ms) sys_kept = cJSON_GetArraySize(ms) == 2 && !strcmp(cJSON_GetArrayItem(ms, 0)->child->valuestring, "system");
        k++;
        cJSON_Delete(o);
    }
    lma_jsonl_close(&j);
    CHECK(ok && has_q7 && sys_kept, "lines carry id, prompt/messages (trailing assistant dropped), draft, status, note");
    drafts_equal_generate(mdir, review, &p.gen);
    /* a third run has nothing to do */
    CHECK_OK(lma_data_generate(&l, prompts, review, &p, &s));
    if (s) { CHECK(num(s, "model_calls") == 0 && num(s, "skipped") == 6, "rerun: no model call"); cJSON_Delete(s); }
    /* the output never replaces the input */
    CHECK(lma_data_generate(&l, prompts, prompts, &p, &s) == LMA_ERR_ARG, "review file = prompt file refused");
    lma_clear_error();
    lma_curate_llm_free(&l);
    /* the CLI */
    char cmd[4096], r2[1100];
    path(r2, sizeof r2, "review_cli.jsonl");
    snprintf(cmd, sizeof cmd, "LMA_QUIET=1 %s data generate --model %s --prompts %s --out %s --max-tokens 4 --seed 5 "
             "--temperature 0.9 > /dev/null 2>&1", LMA_CLI, mdir, prompts, r2);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0 && count_lines(r2) == 5, "CLI data generate writes 5 lines");
}

static const char *review_lines[] = {
    "{\"id\":\"a\",\"prompt\":\"P1\",\"draft\":\"D1\",\"status\":\"accepted\",\"reviewer_note\":\"\"}",
    "{\"id\":\"b\",\"prompt\":\"P2\",\"draft\":\"D2\",\"status\":\"edited\",\"response\":\"E2\",\"reviewer_note\":\"fixed\"}",
    "{\"id\":\"c\",\"prompt\":\"P3\",\"draft\":\"D3\",\"status\":\"rejected\",\"reviewer_note\":\"wrong\"}",
    "{\"id\":\"d\",\"prompt\":\"P4\",\"draft\":\"D4\",\"status\":\"pending\",\"reviewer_note\":\"\"}",
    "",
    "{\"id\":\"e\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"P5\"}],\"draft\":\"D5\",\"status\":\"edited\",\"response\":\"E5\"}",
    "{\"id\":\"f\",\"prompt\":\"P6\",\"draft\":\"D6\",\"status\":\"accepted\",\"response\":\"R6\"}",
};

static void write_review(const char *p, const char *extra) {
    FILE *f = test_fopen(p, "w");
    for (size_t i = 0; i < sizeof review_lines / sizeof review_lines[0]; i++) fprintf(f, "%s\n", review_lines[i]);
    if (extra) fprintf(f, "%s\n", extra);
    fclose(f);
}

static void accept(void) {
    char review[1100], out[1100];
    path(review, sizeof review, "reviewed.jsonl");
    path(out, sizeof out, "train.jsonl");
    write_review(review, NULL);
    cJSON *s = NULL;
    CHECK_OK(lma_data_accept(review, out, LMA_ACCEPT_MESSAGES, &s));
    if (!s) return;
    CHECK(num(s, "lines") == 6 && num(s, "accepted") == 2 && num(s, "edited") == 2 && num(s, "rejected") == 1 &&
              num(s, "pending") == 1 && num(s, "written") == 4,
          "counts per status");
    cJSON_Delete(s);
    /* exactly the accepted + edited lines, in order, with the reviewer's text */
    static const char *want[4][3] = {{"P1", "D1", NULL}, {"P2", "E2", NULL}, {"S", "P5", "E5"}, {"P6", "R6", NULL}};
    lma_ex_reader *r = NULL;
    CHECK_OK(lma_ex_open(out, &r));
    int k = 0, ok = 1;
    lma_example *ex;
    while (r && lma_ex_next(r, &ex) == LMA_OK && ex) {
        ok &= !ex->error_code && ex->format == LMA_EXF_MESSAGES && k < 4;
        if (!ok) break;
        size_t nw = want[k][2] ? 3 : 2;
        ok &= ex->n_msgs == nw && ex->msgs[nw - 1].role == LMA_ROLE_ASSISTANT;
        for (size_t i = 0; ok && i < nw; i++) ok &= !strcmp(ex->msgs[i].text, want[k][i]);
        k++;
    }
    lma_ex_close(r);
    CHECK(ok && k == 4, "accepted and edited lines only, edits win (%d lines)", k);
    /* alpaca: single user turns only */
    CHECK(lma_data_accept(review, out, LMA_ACCEPT_ALPACA, &s) == LMA_ERR_FORMAT && strstr(lma_last_error(), "reviewed.jsonl:6"),
          "alpaca refuses a system+user prompt with its line: %s", lma_last_error());
    lma_clear_error();
    /* unknown status and edited without text */
    write_review(review, "{\"id\":\"g\",\"prompt\":\"P\",\"draft\":\"D\",\"status\":\"approved\"}");
    CHECK(lma_data_accept(review, out, LMA_ACCEPT_MESSAGES, &s) == LMA_ERR_FORMAT && strstr(lma_last_error(), "reviewed.jsonl:8") &&
              strstr(lma_last_error(), "approved"),
          "unknown status reported with file:line: %s", lma_last_error());
    lma_clear_error();
    write_review(review, "{\"id\":\"h\",\"prompt\":\"P\",\"draft\":\"D\",\"status\":\"edited\"}");
    CHECK(lma_data_accept(review, out, LMA_ACCEPT_MESSAGES, &s) == LMA_ERR_FORMAT && strstr(lma_last_error(), "response"),
          "edited without the reviewer's text is an error: %s", lma_last_error());
    lma_clear_error();
    /* alpaca output from single-turn lines, through the CLI */
    char review2[1100], out2[1100], cmd[4096];
    path(review2, sizeof review2, "reviewed2.jsonl");
    path(out2, sizeof out2, "train_alpaca.jsonl");
    FILE *f = test_fopen(review2, "w");
    fprintf(f, "%s\n%s\n%s\n", review_lines[0], review_lines[1], review_lines[2]);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s data accept --review %s --out %s --format alpaca > /dev/null", LMA_CLI, review2, out2);
    int rc = system(cmd);
    size_t n;
    char *d = slurp(out2, &n);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0 && d &&
              !strcmp(d, "{\"instruction\":\"P1\",\"input\":\"\",\"output\":\"D1\"}\n{\"instruction\":\"P2\",\"input\":\"\",\"output\":\"E2\"}\n"),
          "CLI accept --format alpaca: %s", d ? d : "(none)");
    free(d);
    write_review(review, "{\"id\":\"g\",\"prompt\":\"P\",\"draft\":\"D\",\"status\":\"approved\"}");
    snprintf(cmd, sizeof cmd, "%s data accept --review %s --out %s 2> /dev/null", LMA_CLI, review, out2);
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "CLI accept exits 1 on an unknown status");
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    char mdir[1100];
    path(mdir, sizeof mdir, "model");
    if (make_model(mdir)) generate(mdir);
    accept();
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    TEST_END();
}
