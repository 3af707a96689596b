/* stats on the public Alpaca 2k file, each number recomputed here from a whole-file
 * cJSON parse: counts, mean words per role, distinct-1 (HyperLogLog vs an exact
 * sorted count), top verb count; duplicate rates and response formats on a small
 * planted file. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"
#include "core/json.h"
#include "data/curate/curate.h"
#include "test.h"

static size_t words(const char *s) {
    size_t n = 0; int in = 0;
    for (; *s; s++) { int sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r'; n += !sp && !in; in = !sp; }
    return n;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static double num(const cJSON *o, const char *path) {
    char buf[256]; snprintf(buf, sizeof buf, "%s", path);
    const cJSON *it = o;
    for (char *k = strtok(buf, "."); k && it; k = strtok(NULL, ".")) it = cJSON_GetObjectItem(it, k);
    return cJSON_IsNumber(it) ? it->valuedouble : -1;
}

static void alpaca(void) {
    const char *path = LMA_SRC_DIR "/tests/data/alpaca_small_2k.json";
    cJSON *all = NULL;
    CHECK_OK(lma_json_load(path, &all));
    if (!all) return;
    double uw = 0, aw = 0;
    int generate = 0;
    char **resp_words = malloc(200000 * sizeof *resp_words);
    size_t nrw = 0;
    lma_words w = {0};
    for (const cJSON *r = all->child; r; r = r->next) {
        const char *ins = cJSON_GetObjectItem(r, "instruction")->valuestring, *in = cJSON_GetObjectItem(r, "input")->valuestring;
        const char *out = cJSON_GetObjectItem(r, "output")->valuestring;
        uw += (double)words(ins) + (in[0] ? (double)words(in) : 0);
        aw += (double)words(out);
        char first[32] = ""; size_t k = 0;
        while (ins[k] && isalpha((unsigned char)ins[k]) && k < 31) { first[k] = (char)tolower((unsigned char)ins[k]); k++; }
        first[k] = 0;
        generate += !strcmp(first, "generate");
        lma_words_norm(out, strlen(out), &w);
        char *t = strdup(w.text);
        for (char *x = strtok(t, " "); x && nrw < 200000; x = strtok(NULL, " ")) resp_words[nrw++] = strdup(x);
        free(t);
    }
    lma_words_free(&w);
    qsort(resp_words, nrw, sizeof *resp_words, cmp_str);
    size_t distinct = nrw ? 1 : 0;
    for (size_t i = 1; i < nrw; i++) distinct += strcmp(resp_words[i], resp_words[i - 1]) != 0;
    for (size_t i = 0; i < nrw; i++) free(resp_words[i]);
    free(resp_words);

    lma_stats_params p; lma_stats_default_params(&p);
    cJSON *s = NULL;
    CHECK_OK(lma_data_stats(path, &p, &s));
    if (!s) { cJSON_Delete(all); return; }
    CHECK(num(s, "examples") == 2000 && num(s, "formats.alpaca") == 2000, "2000 alpaca examples");
    CHECK(num(s, "roles.user.messages") == 2000 && num(s, "roles.assistant.messages") == 2000, "one user and one assistant turn each");
    CHECK(fabs(num(s, "roles.user.mean_words") - uw / 2000) < 1e-9, "user mean words %.4f vs %.4f", num(s, "roles.user.mean_words"), uw / 2000);
    CHECK(fabs(num(s, "roles.assistant.mean_words") - aw / 2000) < 1e-9, "assistant mean words");
    double d1 = num(s, "distinct.responses.distinct_1"), exact = (double)distinct / (double)nrw;
    CHECK(fabs(d1 - exact) / exact < 0.03, "distinct-1 of responses %.4f vs exact %.4f", d1, exact);
    CHECK(num(s, "distinct.responses.words") == (double)nrw, "response word count %.0f vs %zu", num(s, "distinct.responses.words"), nrw);
    const cJSON *v0 = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "verbs"), 0);
    CHECK(v0 && !strcmp(cJSON_GetObjectItem(v0, "verb")->valuestring, "generate") && num(v0, "count") == generate,
          "top verb 'generate' x%d", generate);
    CHECK(num(s, "scripts.latin") == 2000, "all latin");
    cJSON_Delete(s);
    cJSON_Delete(all);
}

static void planted(void) {
    const char *path = "test_data_stats.jsonl";
    FILE *f = test_fopen(path, "wb");
    /* 10 distinct, then 5 exact repeats (changed case), 5 plain, 3 JSON, 2 code answers */
    for (int i = 0; i < 10; i++)
        fprintf(f, "{\"prompt\":\"Tell me fact number %d about rivers and the lakes of the northern plains today\",\"completion\":\"%s\"}\n", i,
                i < 5 ? "Rivers flow." : i < 8 ? "{\\\"answer\\\": 1}" : "```python\\nprint(1)\\n```");
    for (int i = 0; i < 5; i++)
        fprintf(f, "{\"prompt\":\"TELL ME FACT NUMBER %d ABOUT RIVERS AND THE LAKES OF THE NORTHERN PLAINS TODAY\",\"completion\":\"rivers flow\"}\n", i);
    fclose(f);
    lma_stats_params p; lma_stats_default_params(&p);
    cJSON *s = NULL;
    CHECK_OK(lma_data_stats(path, &p, &s));
    if (s) {
        CHECK(fabs(num(s, "duplicates.exact_rate") - 5.0 / 15) < 1e-12, "exact duplicate rate %.4f", num(s, "duplicates.exact_rate"));
        CHECK(num(s, "response_formats.plain") == 10 && num(s, "response_formats.json") == 3 && num(s, "response_formats.code") == 2,
              "response formats");
    }
    cJSON_Delete(s);
    remove(path);
}

int main(void) {
    alpaca();
    planted();
    TEST_END();
}
