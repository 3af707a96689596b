/* Example reader: every format normalized, per-record errors with their line,
 * strict UTF-8, JSONL line numbers, and the JSON-array reader checked against a
 * whole-file cJSON parse of the public Alpaca file. */
#include <stdio.h>
#include <string.h>
#include "core/io.h"
#include "data/example.h"
#include "test.h"

static lma_example ex;

static void parse(const char *s) { CHECK_OK(lma_ex_parse(s, strlen(s), "t.jsonl", 7, &ex)); }

static int msg_is(const lma_ex_msg *m, lma_role r, const char *text) {
    return m->role == r && m->len == strlen(text) && !memcmp(m->text, text, m->len) && m->text[m->len] == 0;
}

static void formats(void) {
    parse("{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"Hi\"},"
          "{\"role\":\"assistant\",\"content\":\"Yo\",\"weight\":0}]}");
    CHECK(!ex.error_code && ex.format == LMA_EXF_MESSAGES && ex.n_msgs == 3, "messages: %s", ex.error);
    CHECK(msg_is(&ex.msgs[0], LMA_ROLE_SYSTEM, "S") && msg_is(&ex.msgs[1], LMA_ROLE_USER, "Hi") &&
          msg_is(&ex.msgs[2], LMA_ROLE_ASSISTANT, "Yo") && ex.msgs[2].weight == 0 && ex.msgs[1].weight == -1, "messages content");
    CHECK(ex.line == 7 && !strcmp(ex.file, "t.jsonl"), "file and line kept");

    parse("{\"instruction\":\"Add\",\"input\":\"2 3\",\"output\":\"5\"}");
    CHECK(ex.format == LMA_EXF_ALPACA && ex.n_msgs == 2 && msg_is(&ex.msgs[0], LMA_ROLE_USER, "Add\n\n2 3") &&
          msg_is(&ex.msgs[1], LMA_ROLE_ASSISTANT, "5"), "alpaca with input");
    parse("{\"instruction\":\"Say hi\",\"input\":\"\",\"output\":\"hi\"}");
    CHECK(ex.n_msgs == 2 && msg_is(&ex.msgs[0], LMA_ROLE_USER, "Say hi"), "alpaca without input");

    parse("{\"conversations\":[{\"from\":\"system\",\"value\":\"S\"},{\"from\":\"human\",\"value\":\"Q\"},{\"from\":\"gpt\",\"value\":\"A\"}]}");
    CHECK(ex.format == LMA_EXF_SHAREGPT && ex.n_msgs == 3 && msg_is(&ex.msgs[1], LMA_ROLE_USER, "Q") &&
          msg_is(&ex.msgs[2], LMA_ROLE_ASSISTANT, "A") && !strcmp(ex.msgs[2].role_name, "gpt"), "sharegpt");

    parse("{\"prompt\":\"P\",\"completion\":\"C\"}");
    CHECK(ex.format == LMA_EXF_PROMPT_COMPLETION && ex.n_msgs == 2 && msg_is(&ex.msgs[0], LMA_ROLE_USER, "P") &&
          msg_is(&ex.msgs[1], LMA_ROLE_ASSISTANT, "C"), "prompt/completion");
    parse("{\"prompt\":[{\"role\":\"user\",\"content\":\"P\"}],\"completion\":[{\"role\":\"assistant\",\"content\":\"C\"}]}");
    CHECK(ex.format == LMA_EXF_PROMPT_COMPLETION && ex.n_msgs == 2 && msg_is(&ex.msgs[1], LMA_ROLE_ASSISTANT, "C"),
          "conversational prompt/completion");

    parse("{\"prompt\":\"P\",\"chosen\":\"good\",\"rejected\":\"bad\"}");
    CHECK(ex.format == LMA_EXF_PREFERENCE && ex.n_msgs == 1 && ex.n_chosen == 1 && ex.n_rejected == 1 &&
          msg_is(&ex.chosen[0], LMA_ROLE_ASSISTANT, "good") && msg_is(&ex.rejected[0], LMA_ROLE_ASSISTANT, "bad"), "preference");
    parse("{\"chosen\":[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"A\"}],"
          "\"rejected\":[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"B\"}]}");
    CHECK(ex.format == LMA_EXF_PREFERENCE && ex.n_msgs == 0 && ex.n_chosen == 2 && msg_is(&ex.rejected[1], LMA_ROLE_ASSISTANT, "B"),
          "implicit-prompt preference");
    parse("{\"input\":{\"messages\":[{\"role\":\"user\",\"content\":\"Q\"}]},\"preferred_output\":[{\"role\":\"assistant\",\"content\":\"A\"}],"
          "\"non_preferred_output\":[{\"role\":\"assistant\",\"content\":\"B\"}]}");
    CHECK(ex.format == LMA_EXF_PREFERENCE && ex.n_msgs == 1 && msg_is(&ex.chosen[0], LMA_ROLE_ASSISTANT, "A") &&
          msg_is(&ex.rejected[0], LMA_ROLE_ASSISTANT, "B"), "OpenAI DPO");

    parse("{\"question\":\"1+1?\",\"answer\":\"#### 2\"}");
    CHECK(ex.format == LMA_EXF_QA && msg_is(&ex.msgs[1], LMA_ROLE_ASSISTANT, "#### 2"), "qa");
    parse("{\"text\":\"plain\"}");
    CHECK(ex.format == LMA_EXF_TEXT && ex.n_msgs == 1 && msg_is(&ex.msgs[0], LMA_ROLE_TEXT, "plain"), "text");

    lma_buf b = {0};
    parse("{\"messages\":[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"A\"}]}");
    CHECK_OK(lma_ex_text(&ex, LMA_EX_PROMPT, &b));
    CHECK(!strcmp(b.p, "Q"), "prompt text '%s'", b.p);
    b.len = 0; CHECK_OK(lma_ex_text(&ex, LMA_EX_ALL, &b));
    CHECK(!strcmp(b.p, "Q\nA"), "all text '%s'", b.p);
    lma_buf_free(&b);
}

static void errors(void) {
    struct { const char *rec; const char *code; } cases[] = {
        {"{\"messages\": [", "invalid_json"},
        {"{\"text\":\"a\"} x", "invalid_json"},
        {"[1,2]", "data_type"},
        {"\"str\"", "data_type"},
        {"{\"foo\":1}", "missing_messages_list"},
        {"{\"messages\":3}", "missing_messages_list"},
        {"{\"instruction\":\"a\",\"output\":5}", "field_type"},
        {"{\"instruction\":\"a\"}", "missing_field"},
        {"{\"chosen\":\"a\"}", "missing_field"},
        {"{\"text\":\"\xC0\xAF\"}", "invalid_utf8"},
        {"{\"messages\":[\"not an object\"]}", "message_type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        parse(cases[i].rec);
        CHECK(ex.error_code && !strcmp(ex.error_code, cases[i].code), "'%s': got %s, want %s", cases[i].rec,
              ex.error_code ? ex.error_code : "(none)", cases[i].code);
        CHECK(strstr(ex.error, "t.jsonl:7:") == ex.error, "error names file:line: %s", ex.error);
    }
    /* UTF-8 validator */
    struct { const char *s; int ok; } u[] = {
        {"abc", 1}, {"\xC3\xA9", 1}, {"\xE2\x82\xAC", 1}, {"\xF0\x9F\x98\x80", 1}, {"\xC0\x80", 0},
        {"\xE0\x80\xAF", 0}, {"\xED\xA0\x80", 0}, {"\xF4\x90\x80\x80", 0}, {"\xC3", 0}, {"\x80", 0}, {"\xFF", 0}};
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        CHECK(lma_utf8_valid(u[i].s, strlen(u[i].s), NULL) == u[i].ok, "utf8 case %zu", i);
}

static void jsonl_lines(void) {
    const char *path = "test_data_example.jsonl";
    const char *content = "\n{\"text\":\"one\"}\r\n\n  \n{\"text\":\"two\"}\nnot json\n{\"text\":\"last\"}";
    CHECK_OK(lma_write_file_atomic(path, content, strlen(content)));
    lma_ex_reader *r;
    CHECK_OK(lma_ex_open(path, &r));
    int64_t want_line[] = {2, 5, 6, 7};
    const char *want_code[] = {NULL, NULL, "invalid_json", NULL};
    lma_example *e; int n = 0;
    while (lma_ex_next(r, &e) == LMA_OK && e) {
        if (n < 4) {
            CHECK(e->line == want_line[n], "record %d line %lld want %lld", n, (long long)e->line, (long long)want_line[n]);
            CHECK((e->error_code == NULL) == (want_code[n] == NULL), "record %d code %s", n, e->error_code ? e->error_code : "-");
        }
        n++;
    }
    CHECK(n == 4, "4 records, got %d", n);
    lma_ex_close(r);
    remove(path);
}

/* Line of each top-level element's "  {" in the indent=2 json.dump file. */
static void alpaca_array(void) {
    const char *path = LMA_SRC_DIR "/tests/data/alpaca_first200.json";
    char *text; size_t len;
    CHECK_OK(lma_read_file(path, &text, &len));
    if (!text) return;
    cJSON *all = cJSON_Parse(text);
    CHECK(cJSON_GetArraySize(all) == 200, "reference parse has 200 records");
    int64_t lines[256]; int nl = 0; int64_t line = 1;
    for (size_t i = 0; i < len; i++) {
        if (i + 3 <= len && (i == 0 || text[i - 1] == '\n') && !memcmp(text + i, "  {", 3) && nl < 256) lines[nl++] = line;
        if (text[i] == '\n') line++;
    }
    lma_ex_reader *r;
    CHECK_OK(lma_ex_open(path, &r));
    lma_example *e; int n = 0, same = 0, line_ok = 0;
    const cJSON *ref = all ? all->child : NULL;
    while (lma_ex_next(r, &e) == LMA_OK && e) {
        if (ref && !e->error_code && e->format == LMA_EXF_ALPACA) {
            const char *ins = cJSON_GetObjectItem(ref, "instruction")->valuestring;
            const char *out = cJSON_GetObjectItem(ref, "output")->valuestring;
            same += !strncmp(e->msgs[0].text, ins, strlen(ins)) && !strcmp(e->msgs[1].text, out);
        }
        line_ok += n < nl && e->line == lines[n];
        if (ref) ref = ref->next;
        n++;
    }
    CHECK(n == 200 && same == 200, "200 records equal to the reference, got %d/%d", same, n);
    CHECK(line_ok == 200 && nl == 200, "element lines match (%d/%d)", line_ok, nl);
    lma_ex_close(r);
    cJSON_Delete(all);
    free(text);

    /* brackets and escaped quotes inside strings, scalars, unterminated array */
    const char *p2 = "test_data_example.json";
    const char *arr = "[ {\"text\":\"a ] \\\" } [\"}, {\"text\":\"b\"},\n 3 ]";
    CHECK_OK(lma_write_file_atomic(p2, arr, strlen(arr)));
    CHECK_OK(lma_ex_open(p2, &r));
    n = 0;
    const char *codes[3] = {NULL, NULL, "data_type"};
    while (lma_ex_next(r, &e) == LMA_OK && e) {
        if (n < 3) CHECK((e->error_code == NULL) == (codes[n] == NULL), "array element %d: %s", n, e->error);
        if (n == 0) CHECK(e->n_msgs == 1 && !strcmp(e->msgs[0].text, "a ] \" } ["), "string with brackets");
        n++;
    }
    CHECK(n == 3, "3 array elements, got %d", n);
    lma_ex_close(r);
    const char *bad = "[{\"text\":\"a\"}, {\"text\":\"b\"}";
    CHECK_OK(lma_write_file_atomic(p2, bad, strlen(bad)));
    CHECK_OK(lma_ex_open(p2, &r));
    lma_status s = LMA_OK;
    while ((s = lma_ex_next(r, &e)) == LMA_OK && e) {}
    CHECK(s == LMA_ERR_FORMAT && strstr(lma_last_error(), "not closed"), "unclosed array reported: %s", lma_last_error());
    lma_clear_error();
    lma_ex_close(r);
    remove(p2);
}

int main(void) {
    formats();
    errors();
    jsonl_lines();
    alpaca_array();
    lma_ex_clear(&ex);
    TEST_END();
}
