/* decontam: Alpaca (2k, public data) with planted benchmark overlaps (GSM8K
 * questions used as an eval set, MMLU validation questions) embedded in
 * instructions with case and punctuation changed; every planted example must be
 * removed, with the right eval line, and almost no clean example. Also the
 * lm-evaluation-harness normalization itself. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"
#include "core/rng.h"
#include "data/curate/curate.h"
#include "eval/mmlu.h"
#include "test.h"

static void normalization(void) {
    lma_words w = {0};
    const char *s = "Hello, World! It's  a\ttest...\n(really) \xC3\x89t\xC3\xA9 A-B";
    CHECK_OK(lma_words_norm(s, strlen(s), &w));
    /* Python: s.translate(ascii upper->lower, delete string.punctuation).split() */
    CHECK(!strcmp(w.text, "hello world its a test really \xC3\x89t\xC3\xA9 ab"), "normalized '%s'", w.text);
    CHECK(w.n == 8, "8 words, got %zu", w.n);
    lma_words_free(&w);
}

static char *escape(const char *s) {
    cJSON *j = cJSON_CreateString(s);
    char *o = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return o;
}

static size_t nwords(const char *s) {
    size_t n = 0; int in = 0;
    for (; *s; s++) { int sp = isspace((unsigned char)*s); n += !sp && !in; in = !sp; }
    return n;
}

static void planted(void) {
    /* eval set 1: the first 500 GSM8K questions */
    const char *eval1 = "test_data_decontam.eval.jsonl";
    char *gsm; size_t gl;
    CHECK_OK(lma_read_file(LMA_SRC_DIR "/tests/data/gsm8k_train.jsonl", &gsm, &gl));
    if (!gsm) return;
    char *qs[500]; int nq = 0;
    FILE *f = test_fopen(eval1, "wb");
    for (char *line = strtok(gsm, "\n"); line && nq < 500; line = strtok(NULL, "\n")) {
        fprintf(f, "%s\n", line);
        cJSON *j = cJSON_Parse(line);
        qs[nq++] = strdup(cJSON_GetObjectItem(j, "question")->valuestring);
        cJSON_Delete(j);
    }
    fclose(f);
    free(gsm);
    /* eval set 2: MMLU validation questions of 16 to 199 words on one line, from subjects
     * whose first rows have such questions */
    const char *subj[] = {"professional_law", "moral_scenarios", "professional_medicine", "high_school_physics"};
    char *mq[64]; int nm = 0;
    for (int s = 0; s < 4; s++) {
        char path[512];
        lma_mmlu_item *it = NULL; size_t n = 0;
        snprintf(path, sizeof path, "%s/tests/data/mmlu/val/%s_val.csv", LMA_SRC_DIR, subj[s]);
        CHECK_OK(lma_mmlu_read_csv(path, &it, &n));
        for (size_t i = 0; i < n && nm < 64; i++) {
            const char *q = it[i].question;
            if (nwords(q) >= 16 && nwords(q) < 200 && !strchr(q, '\n') && !strchr(q, '\r')) mq[nm++] = strdup(q);
        }
        lma_mmlu_items_free(it, n);
    }
    CHECK(nm >= 20, "found %d long MMLU questions", nm);

    /* training file: alpaca 2k as JSONL, then planted lines */
    const char *in = "test_data_decontam.jsonl";
    f = test_fopen(in, "wb");
    lma_ex_reader *r;
    CHECK_OK(lma_ex_open(LMA_SRC_DIR "/tests/data/alpaca_small_2k.json", &r));
    lma_example *e; lma_buf b = {0};
    int line = 0;
    while (r && lma_ex_next(r, &e) == LMA_OK && e) {
        b.len = 0; lma_ex_line(e, &b);
        fprintf(f, "%s\n", b.p); line++;
    }
    lma_ex_close(r); lma_buf_free(&b);
    int nbase = line;
    lma_rng rng; lma_rng_seed(&rng, 7);
    int planted_line[100], planted_src[100], np = 0;
    for (int k = 0; k < 40; k++) { /* GSM8K questions, upper-cased, punctuation doubled, inside a sentence */
        int qi = (int)lma_rng_below(&rng, (uint64_t)nq);
        char *q = strdup(qs[qi]);
        for (char *c = q; *c; c++) { *c = (char)toupper((unsigned char)*c); if (*c == '?') *c = '!'; }
        size_t n = strlen(q) + 64;
        char *ins = malloc(n);
        snprintf(ins, n, "Solve this: %s Show your work.", q);
        char *ei = escape(ins);
        fprintf(f, "{\"instruction\":%s,\"input\":\"\",\"output\":\"Let me think step by step.\"}\n", ei);
        planted_line[np] = ++line; planted_src[np++] = qi + 1;
        free(q); free(ins); free(ei);
    }
    for (int k = 0; k < 20 && nm; k++) { /* MMLU question as the user turn of a chat */
        char *eq = escape(mq[(size_t)k % (size_t)nm]);
        fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":%s},{\"role\":\"assistant\",\"content\":\"B\"}]}\n", eq);
        planted_line[np] = ++line; planted_src[np++] = -1;
        free(eq);
    }
    fclose(f);

    char mmlu_dir[512];
    snprintf(mmlu_dir, sizeof mmlu_dir, "%s/tests/data/mmlu/val", LMA_SRC_DIR);
    const char *evals[2] = {eval1, mmlu_dir};
    lma_decontam_file_params p; memset(&p, 0, sizeof p);
    p.ngram = 13; p.min_overlaps = 1; p.part = LMA_EX_ALL; p.evals = evals; p.n_evals = 2;
    p.out_path = "test_data_decontam.out.jsonl"; p.removed_path = "test_data_decontam.removed.jsonl";
    cJSON *sum = NULL;
    CHECK_OK(lma_data_decontam(in, &p, &sum));
    char *t; size_t tl;
    CHECK_OK(lma_read_file(p.removed_path, &t, &tl));
    int found = 0, src_ok = 0, clean_removed = 0;
    for (char *l = t ? strtok(t, "\n") : NULL; l; l = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(l);
        if (!j) continue;
        int ln = (int)cJSON_GetObjectItem(j, "line")->valuedouble;
        int k = -1;
        for (int i = 0; i < np; i++) if (planted_line[i] == ln) k = i;
        if (k < 0) clean_removed++;
        else {
            found++;
            const char *ef = cJSON_GetObjectItem(j, "eval_file")->valuestring;
            int el = (int)cJSON_GetObjectItem(j, "eval_line")->valuedouble;
            if (planted_src[k] > 0) src_ok += !strcmp(ef, eval1) && el == planted_src[k];
            else src_ok += strstr(ef, "mmlu/val/") != NULL;
        }
        cJSON_Delete(j);
    }
    free(t);
    printf("decontam: %d/%d planted removed, %d of %d clean alpaca examples removed\n", found, np, clean_removed, nbase);
    CHECK(found == np, "all planted overlaps removed (%d/%d)", found, np);
    CHECK(src_ok == np, "eval file and line reported (%d/%d)", src_ok, np);
    CHECK(clean_removed <= nbase / 100, "clean examples removed: %d", clean_removed);
    if (sum) CHECK(cJSON_GetObjectItem(sum, "kept")->valuedouble == line - found - clean_removed, "kept count");
    cJSON_Delete(sum);
    for (int i = 0; i < nq; i++) free(qs[i]);
    for (int i = 0; i < nm; i++) free(mq[i]);
    remove(in); remove(eval1); remove(p.out_path); remove(p.removed_path);
}

static void csv_and_short(void) {
    const char *csv = "test_data_decontam.csv";
    const char *body = "\"A question with a \"\"quoted\"\" part,\r\nand a carriage return, spanning many words in one field\",x,y,z,w,A\n"
                       "short one,a,b,c,d,B\n";
    CHECK_OK(lma_write_file_atomic(csv, body, strlen(body)));
    lma_decontam *d;
    CHECK_OK(lma_decontam_create(13, &d));
    CHECK_OK(lma_decontam_add_eval(d, csv));
    CHECK(lma_decontam_ngrams(d) > 0, "n-grams indexed from a quoted multi-line CSV field");
    lma_words w = {0};
    lma_decontam_hit h;
    const char *t = "Here: a question with a quoted part and a carriage return spanning many words in one field x y";
    CHECK_OK(lma_decontam_check(d, t, strlen(t), &w, &h));
    CHECK(h.overlaps > 0 && h.eval_line == 1, "overlap found at row 1 (%zu, line %lld)", h.overlaps, (long long)h.eval_line);
    const char *t2 = "short one a b c d B and nothing else from the evaluation set at all";
    CHECK_OK(lma_decontam_check(d, t2, strlen(t2), &w, &h));
    CHECK(h.overlaps == 0, "rows shorter than 13 words never match");
    lma_words_free(&w);
    lma_decontam_free(d);
    remove(csv);
}

int main(void) {
    normalization();
    csv_and_short();
    planted();
    TEST_END();
}
