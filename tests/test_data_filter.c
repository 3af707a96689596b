/* filter: each Gopher / repetition / boilerplate rule caught by a text built to
 * break it (with the value computed by hand), clean prose kept, and the file
 * driver's removed file naming the rule for the right line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"
#include "core/json.h"
#include "data/curate/curate.h"
#include "test.h"

static void expect(const lma_filter_params *p, const char *text, const char *rule, double value) {
    lma_filter_verdict v;
    CHECK_OK(lma_filter_check(p, text, strlen(text), &v));
    if (!rule) { CHECK(v.rule == NULL, "'%.40s' kept, got rule %s", text, v.rule ? v.rule : ""); return; }
    CHECK(v.rule && !strcmp(v.rule, rule), "'%.40s': rule %s, want %s", text, v.rule ? v.rule : "(none)", rule);
    if (value >= 0) CHECK(fabs(v.value - value) < 1e-9, "%s value %.6f want %.6f", rule, v.value, value);
}

static void rules(void) {
    lma_filter_params p; lma_filter_default_params(&p);
    expect(&p, "The water cycle describes how water evaporates from the surface of the earth, rises into the "
               "atmosphere, cools and condenses into clouds, and falls again to the surface as precipitation.", NULL, 0);
    expect(&p, "Please read our PRIVACY Policy before you continue with the order and the rest.", "boilerplate", 1);
    expect(&p, "Yes ok", "min_words", 2);
    expect(&p, "Supercalifragilistic antidisestablishment pneumonoultramicroscopic", "max_mean_word_len", 64.0 / 3);
    expect(&p, "a b c d e f to of", "min_mean_word_len", 10.0 / 8);
    expect(&p, "#tag #love #life of the day and the night", "hash_symbol_ratio", 3.0 / 9);
    expect(&p, "wait... what... the... and so to be it", "ellipsis_ratio", 3.0 / 8);
    expect(&p, "- the one\n- the two\n- of three", "bullet_lines", 1.0);
    expect(&p, "so the and we went there and back again...\nthe of be it is what it is now...\nto have with it and more words here too", "ellipsis_lines", 2.0 / 3);
    expect(&p, "12 34 56 the and 78 90", "alpha_words", 2.0 / 7);
    expect(&p, "Quick brown foxes jump over lazy dogs daily", "stop_words", 0);
    expect(&p, "to be or not\nto be or not\nthe end of it", "dup_line_frac", 1.0 / 3);
    /* "the cat" x3: 7 chars x 3 over the 42-byte text; below 50 words only with ngram_min_words lowered */
    expect(&p, "the cat and the cat and the cat with a dog", NULL, 0);
    lma_filter_params p0 = p;
    p0.ngram_min_words = 0;
    expect(&p0, "the cat and the cat and the cat with a dog", "top_2gram_chars", 21.0 / 42);
    lma_filter_params q = p0;
    q.max_dup_line_frac = 1; q.max_dup_line_chars = 1;
    /* one of 4 paragraphs repeated: 0.25 by count (under 0.3), 18 of 66 bytes by characters */
    expect(&q, "to be or not to be\n\nwith the rest\n\nto be or not to be\n\nand of that", "dup_para_chars", 18.0 / 66);
    q.max_dup_para_frac = 1; q.max_dup_para_chars = 1;
    q.max_top_ngram[0] = q.max_top_ngram[1] = q.max_top_ngram[2] = 1;
    /* words: 5-gram "alpha beta gamma delta epsilon" repeated once: 26 chars (concatenated) / text length */
    const char *t5 = "alpha beta gamma delta epsilon and the of with alpha beta gamma delta epsilon";
    expect(&q, t5, "dup_5gram_chars", 26.0 / (double)strlen(t5));
    const char *custom[] = {"buy now", NULL};
    q = p0; q.boilerplate = custom;
    expect(&q, "You should BUY NOW and the deal will be with you", "boilerplate", 1);
    expect(&q, "Please read our privacy policy before you continue with the order and the rest.", NULL, 0);
}

static void driver(void) {
    const char *in = "test_data_filter.jsonl";
    const char *body =
        "{\"instruction\":\"Describe the water cycle.\",\"input\":\"\",\"output\":\"Water evaporates from the sea, rises and cools into clouds, and falls as rain to the land.\"}\n"
        "{\"prompt\":\"Lorem ipsum dolor sit amet\",\"completion\":\"lorem ipsum and the rest of it\"}\n"
        "{\"text\":\"12 34 56 78 90 11 12 13\"}\n"
        "not json\n"
        "{\"messages\":[{\"role\":\"user\",\"content\":\"What is the capital of France?\"},{\"role\":\"assistant\",\"content\":\"The capital of France is Paris.\"}]}\n";
    CHECK_OK(lma_write_file_atomic(in, body, strlen(body)));
    lma_filter_file_params p; memset(&p, 0, sizeof p);
    lma_filter_default_params(&p.filter);
    p.out_path = "test_data_filter.out.jsonl"; p.removed_path = "test_data_filter.removed.jsonl";
    p.report_path = "test_data_filter.report.json";
    cJSON *sum = NULL, *rep = NULL;
    CHECK_OK(lma_data_filter(in, &p, &sum));
    CHECK_OK(lma_json_load(p.report_path, &rep));
    if (sum && rep) {
        CHECK(cJSON_GetObjectItem(sum, "kept")->valuedouble == 2 && cJSON_GetObjectItem(sum, "removed")->valuedouble == 2 &&
              cJSON_GetObjectItem(sum, "unreadable")->valuedouble == 1, "2 kept, 2 removed, 1 unreadable");
        const cJSON *l = cJSON_GetObjectItem(rep, "removed");
        int ok = 0;
        for (const cJSON *it = l->child; it; it = it->next) {
            int line = (int)cJSON_GetObjectItem(it, "line")->valuedouble;
            const char *why = cJSON_GetObjectItem(it, "reason")->valuestring;
            ok += (line == 2 && !strcmp(why, "boilerplate")) || (line == 3 && !strcmp(why, "alpha_words")) ||
                  (line == 4 && !strcmp(why, "unreadable"));
        }
        CHECK(ok == 3, "report names line and rule for each removal (%d/3)", ok);
    }
    char *out; size_t len;
    CHECK_OK(lma_read_file(p.out_path, &out, &len));
    CHECK(out && strstr(out, "water cycle") && strstr(out, "Paris") && !strstr(out, "orem"), "kept the right lines verbatim");
    free(out);
    cJSON_Delete(sum); cJSON_Delete(rep);
    remove(in); remove(p.out_path); remove(p.removed_path); remove(p.report_path);
}

int main(void) {
    rules();
    driver();
    TEST_END();
}
