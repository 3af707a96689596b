/* debug: the first 200 Alpaca records (public data) plus planted examples that would
 * teach unwanted behaviour (promised/claimed actions, praise of traits the user never
 * mentioned, refusals mixed with answers, a reply format unlike the rest of its task)
 * and tricky controls that must not be flagged (the user did state the trait; a pure
 * refusal). Every planted case must be found with its line and kind; precision and
 * recall are printed. Documented allowance: 0 flags on the untouched Alpaca records
 * (the built-in rules flag none of alpaca_first200 nor of alpaca_small_2k). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"
#include "core/json.h"
#include "data/curate/curate.h"
#include "test.h"

#define MAX_UNTOUCHED_FLAGS 0

typedef struct {
    const char *kind; /* expected kind; NULL = a control that must not be flagged */
    const char *user_prefix;
    const char *reply_fmt; /* %s = the original Alpaca output */
} plant;

static const plant plants[] = {
    {"action", "", "%s\n\nI'll schedule this meeting for you on Tuesday at 3pm."},
    {"action", "", "I have sent the email to your team. %s"},
    {"action", "", "%s I've booked a table for two at 7pm tonight."},
    {"action", "", "Sure! I will send the report to your manager right away. %s"},
    {"action", "", "%s\nYour appointment has been confirmed for Monday at 10am."},
    {"action", "", "I'll go ahead and order the ingredients for you. %s"},
    {"action", "", "%s I've added it to your calendar so you won't forget."},
    {"action", "", "%s I will remind you tomorrow morning."},
    {"praise", "", "As a talented engineer, you already know the basics. %s"},
    {"praise", "", "You're clearly a brilliant writer, so here it is: %s"},
    {"praise", "", "With your impressive expertise, this will be easy. %s"},
    {"praise", "", "As an experienced chef, you will appreciate this. %s"},
    {"praise", "", "You are so smart to ask this! %s"},
    {"praise", "", "Given your deep knowledge of the subject, I will be brief. %s"},
    {"refusal", "", "I'm sorry, but I can't help with that. However, here is what I would say anyway: %s"},
    {"refusal", "", "As an AI language model, I cannot have opinions. Nevertheless: %s"},
    {"refusal", "", "%s\n\nI cannot provide any further help with this request."},
    {"refusal", "", "I am unable to assist with this request. That said, consider the following. %s"},
    /* controls */
    {NULL, "I am an experienced chef. ", "As an experienced chef, you will appreciate this. %s"},
    {NULL, "My friends say I'm a talented engineer. ", "As a talented engineer, you already know the basics. %s"},
    {NULL, "", "I'm sorry, but I can't browse the internet. Please check the website directly."},
    {NULL, "", "I will explain it step by step. %s"},
};
#define NP ((int)(sizeof plants / sizeof plants[0]))
#define TASK_N 30
static const int task_plain[] = {7, 15}; /* planted plain replies in the JSON task */

static char *text_of(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k)->valuestring; }

static void put_line(FILE *f, cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    fprintf(f, "%s\n", s);
    free(s);
    cJSON_Delete(o);
}

static cJSON *chat(const char *user, const char *reply) {
    cJSON *o = cJSON_CreateObject(), *m = cJSON_AddArrayToObject(o, "messages");
    cJSON *u = cJSON_CreateObject(), *a = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "role", "user"); cJSON_AddStringToObject(u, "content", user);
    cJSON_AddStringToObject(a, "role", "assistant"); cJSON_AddStringToObject(a, "content", reply);
    cJSON_AddItemToArray(m, u); cJSON_AddItemToArray(m, a);
    return o;
}

/* expected[line] = kind or "" (untouched); returns the number of lines */
static int build(const char *path, const char **expected, int cap) {
    char src[1024];
    snprintf(src, sizeof src, "%s/tests/data/alpaca_first200.json", LMA_SRC_DIR);
    cJSON *arr = NULL;
    CHECK_OK(lma_json_load(src, &arr));
    if (!arr) return 0;
    FILE *f = test_fopen(path, "w");
    int line = 0, n = cJSON_GetArraySize(arr);
    for (int i = 0; i < n && line < cap; i++) {
        put_line(f, cJSON_Duplicate(cJSON_GetArrayItem(arr, i), 1));
        expected[++line] = "";
    }
    char user[4096], reply[8192];
    for (int p = 0; p < NP; p++) {
        /* a source with a substantial answer (>= 40 words), so that a refusal plus it is "mixed" */
        const cJSON *src_ex = NULL;
        for (int k = 20 + 7 * p; !src_ex && k < 20 + 7 * p + 200; k++) {
            const cJSON *c = cJSON_GetArrayItem(arr, k % n);
            const char *o = text_of(c, "output");
            int words = 0;
            for (const char *q = o; *q; q++) words += (q == o || q[-1] == ' ' || q[-1] == '\n') && *q != ' ' && *q != '\n';
            if (words >= 40) src_ex = c;
        }
        snprintf(user, sizeof user, "%s%s", plants[p].user_prefix, text_of(src_ex, "instruction"));
        snprintf(reply, sizeof reply, plants[p].reply_fmt, text_of(src_ex, "output"));
        put_line(f, chat(user, reply));
        expected[++line] = plants[p].kind ? plants[p].kind : "";
    }
    /* a task whose replies are JSON, two of them plain text */
    for (int k = 0; k < TASK_N; k++) {
        const cJSON *src_ex = cJSON_GetArrayItem(arr, 100 + k);
        int plain = k == task_plain[0] || k == task_plain[1];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "task", "to_json");
        snprintf(user, sizeof user, "Answer in JSON: %s", text_of(src_ex, "instruction"));
        cJSON_AddStringToObject(o, "instruction", user);
        cJSON_AddStringToObject(o, "input", "");
        if (plain) snprintf(reply, sizeof reply, "%s", text_of(src_ex, "output"));
        else {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "answer", text_of(src_ex, "output"));
            char *s = cJSON_PrintUnformatted(j);
            snprintf(reply, sizeof reply, "%s", s);
            free(s); cJSON_Delete(j);
        }
        cJSON_AddStringToObject(o, "output", reply);
        put_line(f, o);
        expected[++line] = plain ? "format" : "";
    }
    fclose(f);
    cJSON_Delete(arr);
    return line;
}

static void planted_set(const char *dir) {
    char data[1024], rep[1024], kept[1024], flagged[1024];
    snprintf(data, sizeof data, "%s/planted.jsonl", dir);
    snprintf(rep, sizeof rep, "%s/report.json", dir);
    snprintf(kept, sizeof kept, "%s/kept.jsonl", dir);
    snprintf(flagged, sizeof flagged, "%s/flagged.jsonl", dir);
    static const char *expected[400];
    int n = build(data, expected, 399);
    CHECK(n == 200 + NP + TASK_N, "%d lines written", n);
    lma_debug_params p;
    lma_debug_default_params(&p);
    p.report_path = rep; p.task_field = "task"; p.out_path = kept; p.removed_path = flagged;
    cJSON *s = NULL;
    CHECK_OK(lma_data_debug(data, &p, &s));
    cJSON *r = NULL;
    CHECK_OK(lma_json_load(rep, &r));
    if (!s || !r) { cJSON_Delete(s); cJSON_Delete(r); return; }
    static char got[400][16];
    memset(got, 0, sizeof got);
    int wrong_kind = 0, excerpt_ok = 1;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "flags")) {
        int line = (int)cJSON_GetObjectItemCaseSensitive(it, "line")->valuedouble;
        const char *kind = text_of(it, "kind"), *ex = text_of(it, "excerpt"), *file = text_of(it, "file");
        CHECK(line >= 1 && line <= n && !strcmp(file, data), "flag names the file and a line (%d)", line);
        if (line < 1 || line > n) continue;
        if (expected[line][0] && strcmp(expected[line], kind)) wrong_kind++;
        if (!got[line][0]) snprintf(got[line], sizeof got[line], "%s", kind);
        excerpt_ok &= strlen(ex) > 10;
        if (!expected[line][0]) fprintf(stderr, "unexpected flag at line %d: %s %s\n", line, text_of(it, "rule"), ex);
    }
    int tp = 0, fp = 0, fn = 0, fp_untouched = 0, n_planted = 0;
    for (int l = 1; l <= n; l++) {
        int want = expected[l][0] != 0, have = got[l][0] != 0;
        n_planted += want;
        tp += want && have; fn += want && !have; fp += !want && have;
        fp_untouched += l <= 200 && have;
        if (want && !have) fprintf(stderr, "missed planted %s at line %d\n", expected[l], l);
    }
    double prec = tp + fp ? (double)tp / (tp + fp) : 0, rec = n_planted ? (double)tp / n_planted : 0;
    printf("debug on alpaca_first200 + %d planted + %d controls: precision %.3f recall %.3f (tp %d fp %d fn %d)\n",
           n_planted, 4 + (TASK_N - 2), prec, rec, tp, fp, fn);
    CHECK(fn == 0, "every planted case is found (%d missed)", fn);
    CHECK(fp == fp_untouched && fp_untouched <= MAX_UNTOUCHED_FLAGS, "no flags on controls; %d on untouched Alpaca (allowed %d)",
          fp_untouched, MAX_UNTOUCHED_FLAGS);
    CHECK(wrong_kind == 0, "each planted case flagged with its kind (%d wrong)", wrong_kind);
    CHECK(excerpt_ok, "excerpts carry the matching text");
    CHECK(cJSON_GetObjectItemCaseSensitive(s, "flagged_examples")->valuedouble == tp + fp, "summary counts flagged examples");
    /* kept + flagged files partition the input */
    char *a = NULL, *b = NULL; size_t la = 0, lb = 0;
    CHECK_OK(lma_read_file(kept, &a, &la));
    CHECK_OK(lma_read_file(flagged, &b, &lb));
    int na = 0, nb = 0;
    for (size_t i = 0; a && i < la; i++) na += a[i] == '\n';
    for (size_t i = 0; b && i < lb; i++) nb += b[i] == '\n';
    CHECK(na == n - (tp + fp) && nb == tp + fp, "kept %d + flagged %d lines", na, nb);
    free(a); free(b);
    cJSON_Delete(s); cJSON_Delete(r);
}

static void example_level(void) {
    lma_debug_rules *rs = NULL;
    const char *def = lma_debug_default_rules();
    CHECK_OK(lma_debug_rules_parse(&rs, def, strlen(def), "built-in"));
    CHECK(lma_debug_rules_count(rs) >= 7, "built-in rules: %zu", lma_debug_rules_count(rs));
    lma_example ex; memset(&ex, 0, sizeof ex);
    lma_debug_flag f[8];
    /* the trait appears in the first user turn: the praise in the second reply is supported */
    const char *conv =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"I'm a skilled carpenter. Which wood is best?\"},"
        "{\"role\":\"assistant\",\"content\":\"Oak.\"},{\"role\":\"user\",\"content\":\"Why?\"},"
        "{\"role\":\"assistant\",\"content\":\"As a skilled carpenter, you know oak is hard.\"}]}";
    CHECK_OK(lma_ex_parse(conv, strlen(conv), "t", 1, &ex));
    CHECK(lma_debug_example(rs, 25, &ex, f, 8) == 0, "praise of a trait the user stated earlier is not flagged");
    /* the trait only in a later turn: flagged, on the reply before it */
    const char *conv2 =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Which wood is best?\"},"
        "{\"role\":\"assistant\",\"content\":\"As a skilled carpenter, you know oak is hard.\"},"
        "{\"role\":\"user\",\"content\":\"I am a skilled carpenter indeed.\"},{\"role\":\"assistant\",\"content\":\"Yes.\"}]}";
    CHECK_OK(lma_ex_parse(conv2, strlen(conv2), "t", 1, &ex));
    size_t nf = lma_debug_example(rs, 25, &ex, f, 8);
    CHECK(nf == 1 && !strcmp(f[0].kind, "praise") && f[0].msg == 1 && strstr(f[0].excerpt, "As a skilled carpenter"),
          "praise before the user states the trait is flagged with its excerpt (%zu)", nf);
    /* preference data: the chosen reply is checked, the rejected one is not */
    const char *pref = "{\"prompt\":\"Book me a flight\",\"chosen\":\"I can't book flights, but here is how.\","
                       "\"rejected\":\"I have booked your flight.\"}";
    CHECK_OK(lma_ex_parse(pref, strlen(pref), "t", 1, &ex));
    CHECK(lma_debug_example(rs, 25, &ex, f, 8) == 0, "rejected replies are not flagged");
    lma_ex_clear(&ex);
    lma_debug_rules_free(rs);
    /* rule file errors name the source and line */
    rs = NULL;
    const char *bad = "# c\naction ok \\bx\\b\nwish w abc\n";
    CHECK(lma_debug_rules_parse(&rs, bad, strlen(bad), "my.rules") == LMA_ERR_FORMAT && strstr(lma_last_error(), "my.rules:3"),
          "unknown kind reported with file:line: %s", lma_last_error());
    lma_clear_error();
    const char *bad2 = "flag broken (unclosed\n";
    CHECK(lma_debug_rules_parse(&rs, bad2, strlen(bad2), "r2") == LMA_ERR_FORMAT && strstr(lma_last_error(), "r2:1"),
          "regex error reported: %s", lma_last_error());
    lma_clear_error();
    CHECK(rs == NULL, "no rules left after a failed parse");
}

static void defaults_match_files(void) {
    char path[1024];
    char *t = NULL; size_t n = 0;
    snprintf(path, sizeof path, "%s/data/curate/debug_rules.txt", LMA_SRC_DIR);
    CHECK_OK(lma_read_file(path, &t, &n));
    CHECK(t && !strcmp(t, lma_debug_default_rules()), "built-in rules equal data/curate/debug_rules.txt");
    free(t);
}

static void custom_rules(const char *dir) {
    char data[1024];
    snprintf(data, sizeof data, "%s/custom.jsonl", dir);
    FILE *f = test_fopen(data, "w");
    fprintf(f, "{\"prompt\":\"Call my mum\",\"completion\":\"I'll call her now. Order 12345 ok.\"}\n");
    fprintf(f, "{\"prompt\":\"Hi\",\"completion\":\"Hello there.\"}\n");
    fclose(f);
    const char *rules[1] = {"flag order_number \\b\\d{5}\\b\n"};
    const char *names[1] = {"custom.rules"};
    lma_debug_params p;
    lma_debug_default_params(&p);
    p.rules_text = rules; p.rules_name = names; p.n_rules = 1;
    cJSON *s = NULL;
    CHECK_OK(lma_data_debug(data, &p, &s));
    if (!s) return;
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(s, "per_rule");
    CHECK(cJSON_GetObjectItemCaseSensitive(s, "flags")->valuedouble == 1 && cJSON_GetObjectItemCaseSensitive(pr, "order_number") &&
              !cJSON_GetObjectItemCaseSensitive(pr, "promise_action"),
          "a rules file replaces the built-in rules");
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s, "shown"), 0);
    CHECK(first && cJSON_GetObjectItemCaseSensitive(first, "line")->valuedouble == 1 && strstr(text_of(first, "excerpt"), "12345"),
          "flag at line 1 with the match");
    cJSON_Delete(s);
    lma_debug_default_params(&p);
    CHECK_OK(lma_data_debug(data, &p, &s));
    if (s) {
        pr = cJSON_GetObjectItemCaseSensitive(s, "per_rule");
        CHECK(cJSON_GetObjectItemCaseSensitive(pr, "promise_action") != NULL, "built-in rules catch \"I'll call her now\"");
        cJSON_Delete(s);
    }
}

int main(void) {
    char dir[] = "/tmp/lma_debug_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    defaults_match_files();
    example_level();
    planted_set(dir);
    custom_rules(dir);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    TEST_END();
}
