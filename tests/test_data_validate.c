/* validate: GSM8K (public data) converted to OpenAI messages JSONL with planted
 * errors of every kind at deterministic lines; every planted finding must be
 * reported with its line and code, and the clean lines must give no error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "core/io.h"
#include "core/json.h"
#include "data/curate/curate.h"
#include "tok/chat_template.h"
#include "tok/tokenizer.h"
#include "test.h"

typedef struct { const char *line; const char *code; } plant;
static const plant plants[] = {
    {"{\"messages\": [", "invalid_json"},
    {"[1, 2]", "data_type"},
    {"{\"msgs\": []}", "missing_messages_list"},
    {"{\"messages\":[{\"role\":\"user\"},{\"role\":\"assistant\",\"content\":\"A\"}]}", "message_missing_key"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"Q\",\"extra\":1},{\"role\":\"assistant\",\"content\":\"A\"}]}", "message_unrecognized_key"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"bot\",\"content\":\"A\"}]}", "unrecognized_role"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"\"}]}", "missing_content"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\" \\n\\t \"},{\"role\":\"assistant\",\"content\":\"A\"}]}", "empty_turn"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"Q\"}]}", "example_missing_assistant_message"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"user\",\"content\":\"Q2\"},{\"role\":\"assistant\",\"content\":\"A\"}]}", "role_order"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"A\"},{\"role\":\"system\",\"content\":\"S\"}]}", "role_order"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"caf\xC3\"},{\"role\":\"assistant\",\"content\":\"A\"}]}", "invalid_utf8"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"A<|im_end|>\"}]}", "stray_special_token"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"### Instruction:\\nQ\"},{\"role\":\"assistant\",\"content\":\"A\"}]}", "template_in_content"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"A\",\"weight\":2}]}", "invalid_weight"},
    {"{\"prompt\":\"Q\",\"chosen\":\"same\",\"rejected\":\"same\"}", "chosen_equals_rejected"},
    {"{\"conversations\":[{\"from\":\"human\",\"value\":\"Q\"},{\"from\":\"robot\",\"value\":\"A\"}]}", "unrecognized_role"},
    {"{\"instruction\":\"Q\",\"input\":\"\",\"output\":\"\"}", "missing_content"},
    {"{\"messages\":[{\"role\":\"assistant\",\"content\":\"A\"},{\"role\":\"user\",\"content\":\"Q\"}]}", "role_order"},
};
#define NP ((int)(sizeof plants / sizeof plants[0]))

static char *json_escape(const char *s) {
    cJSON *j = cJSON_CreateString(s);
    char *o = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return o;
}

/* Writes n GSM8K records as messages JSONL, planting plants[k] at line 10 + 13*k. */
static int make_file(const char *path, int n, int *plant_line) {
    FILE *f = fopen(path, "wb");
    lma_ex_reader *r;
    if (!f || lma_ex_open(LMA_SRC_DIR "/tests/data/gsm8k_train.jsonl", &r)) return 0;
    int line = 1, k = 0, written = 0;
    lma_example *e;
    while (written < n && lma_ex_next(r, &e) == LMA_OK && e) {
        while (k < NP && line == 10 + 13 * k) { fprintf(f, "%s\n", plants[k].line); plant_line[k++] = line++; }
        char *q = json_escape(e->msgs[0].text), *a = json_escape(e->msgs[1].text);
        fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":%s},{\"role\":\"assistant\",\"content\":%s}]}\n", q, a);
        free(q); free(a);
        line++; written++;
    }
    lma_ex_close(r);
    fclose(f);
    return k == NP;
}

static int has_finding(const cJSON *list, int line, const char *code) {
    for (const cJSON *it = list->child; it; it = it->next)
        if ((int)cJSON_GetObjectItem(it, "line")->valuedouble == line && !strcmp(cJSON_GetObjectItem(it, "code")->valuestring, code))
            return 1;
    return 0;
}

static void planted(void) {
    const char *path = "test_data_validate.jsonl", *rep = "test_data_validate.report.json";
    int pl[NP];
    CHECK(make_file(path, 400, pl), "test file written");
    lma_validate_params p; lma_validate_default_params(&p);
    p.report_path = rep;
    cJSON *sum = NULL;
    CHECK_OK(lma_data_validate(path, &p, &sum));
    cJSON *report = NULL;
    CHECK_OK(lma_json_load(rep, &report));
    if (!report || !sum) return;
    const cJSON *list = cJSON_GetObjectItem(report, "findings");
    for (int k = 0; k < NP; k++)
        CHECK(has_finding(list, pl[k], plants[k].code), "planted %s at line %d not reported", plants[k].code, pl[k]);
    /* no error on a clean line */
    int false_errors = 0;
    for (const cJSON *it = list->child; it; it = it->next) {
        int line = (int)cJSON_GetObjectItem(it, "line")->valuedouble, planted_line = 0;
        for (int k = 0; k < NP; k++) planted_line |= pl[k] == line;
        if (!planted_line && !strcmp(cJSON_GetObjectItem(it, "severity")->valuestring, "error")) {
            false_errors++;
            fprintf(stderr, "unexpected: line %d %s\n", line, cJSON_GetObjectItem(it, "message")->valuestring);
        }
    }
    CHECK(false_errors == 0, "%d errors on clean GSM8K lines", false_errors);
    CHECK(cJSON_GetObjectItem(sum, "examples")->valuedouble == 400 + NP, "example count");
    cJSON_Delete(report); cJSON_Delete(sum);

    /* the CLI: exit status 1 with errors, findings printed as file:line */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s data validate %s --show 100 > test_data_validate.out 2>&1", LMA_CLI, path);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "CLI exit status 1 on errors (got %d)", rc);
    char *out; size_t len;
    CHECK_OK(lma_read_file("test_data_validate.out", &out, &len));
    char want[256];
    snprintf(want, sizeof want, "%s:%d: error: ", path, pl[0]);
    CHECK(out && strstr(out, want), "CLI prints '%s'", want);
    free(out);
    remove(path); remove(rep); remove("test_data_validate.out");
}

static void drift(void) {
    const char *path = "test_data_validate_drift.jsonl";
    FILE *f = test_fopen(path, "wb");
    for (int i = 0; i < 40; i++) {
        if (i == 17) fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"Q%d\"},{\"role\":\"assistant\",\"content\":\"{\\\"answer\\\": %d}\"}]}\n", i, i);
        else if (i == 23) fprintf(f, "{\"messages\":[{\"role\":\"system\",\"content\":\"You are a pirate.\"},{\"role\":\"user\",\"content\":\"Q%d\"},{\"role\":\"assistant\",\"content\":\"The answer is %d.\"}]}\n", i, i);
        else fprintf(f, "{\"messages\":[{\"role\":\"system\",\"content\":\"You are helpful.\"},{\"role\":\"user\",\"content\":\"Q%d\"},{\"role\":\"assistant\",\"content\":\"The answer is %d.\"}]}\n", i, i);
    }
    fclose(f);
    lma_validate_params p; lma_validate_default_params(&p);
    p.format_check = 1;
    p.inference_system = "You are helpful.";
    p.report_path = "test_data_validate_drift.report.json";
    cJSON *sum = NULL, *report = NULL;
    CHECK_OK(lma_data_validate(path, &p, &sum));
    CHECK_OK(lma_json_load(p.report_path, &report));
    if (report) {
        const cJSON *list = cJSON_GetObjectItem(report, "findings");
        CHECK(has_finding(list, 18, "answer_format_drift"), "JSON answer among plain ones flagged at line 18");
        CHECK(has_finding(list, 18, "system_prompt_drift"), "missing system prompt flagged at line 18");
        CHECK(has_finding(list, 24, "system_prompt_drift"), "other system prompt flagged at line 24");
        CHECK(cJSON_GetArraySize((cJSON *)list) == 3, "exactly 3 findings, got %d", cJSON_GetArraySize((cJSON *)list));
    }
    cJSON_Delete(sum); cJSON_Delete(report);
    remove(path); remove(p.report_path);
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* too_long: the flagged lines are exactly those whose chat-template encoding (the
 * tokenizer module's, checked against transformers in its own tests) exceeds the limit. */
static void too_long(void) {
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(LMA_SRC_DIR "/tests/ref/tok/bl", &tok));
    if (!tok) return;
    const char *path = "test_data_validate_len.jsonl";
    FILE *f = test_fopen(path, "wb");
    lma_ex_reader *r;
    CHECK_OK(lma_ex_open(LMA_SRC_DIR "/tests/data/gsm8k_train.jsonl", &r));
    enum { N = 200 };
    size_t len[N], sorted[N];
    lma_example *e;
    int n = 0;
    while (r && n < N && lma_ex_next(r, &e) == LMA_OK && e) {
        char *q = json_escape(e->msgs[0].text), *a = json_escape(e->msgs[1].text);
        fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":%s},{\"role\":\"assistant\",\"content\":%s}]}\n", q, a);
        free(q); free(a);
        lma_chat_msg m[2] = {{"user", e->msgs[0].text}, {"assistant", e->msgs[1].text}};
        int32_t *ids = NULL; size_t n_ids = 0, *spans = NULL, ns = 0;
        CHECK_OK(lma_chat_encode(tok, NULL, m, 2, 0, &ids, &n_ids, &spans, &ns));
        free(ids); free(spans);
        len[n] = sorted[n] = n_ids;
        n++;
    }
    lma_ex_close(r);
    fclose(f);
    qsort(sorted, N, sizeof *sorted, cmp_size);
    lma_validate_params p; lma_validate_default_params(&p);
    p.tokenizer = tok;
    p.max_tokens = (int)sorted[N / 2];
    p.report_path = "test_data_validate_len.report.json";
    cJSON *sum = NULL, *rep = NULL;
    CHECK_OK(lma_data_validate(path, &p, &sum));
    CHECK_OK(lma_json_load(p.report_path, &rep));
    int want = 0, match = 0;
    const cJSON *list = rep ? cJSON_GetObjectItem(rep, "findings") : NULL;
    for (int i = 0; i < N && list; i++) {
        int over = len[i] > (size_t)p.max_tokens;
        want += over;
        match += over == has_finding(list, i + 1, "too_long");
    }
    CHECK(want > 20 && want < N - 20, "limit splits the set (%d over)", want);
    CHECK(match == N, "too_long flags exactly the over-length lines (%d/%d)", match, N);
    CHECK(list && cJSON_GetArraySize((cJSON *)list) == want, "no other findings");
    cJSON_Delete(sum); cJSON_Delete(rep);
    lma_tok_free(tok);
    remove(path); remove(p.report_path);
}

int main(void) {
    planted();
    drift();
    too_long();
    TEST_END();
}
