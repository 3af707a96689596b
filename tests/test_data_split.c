/* split: GSM8K (public data, 1000 lines) tagged with unequal strata; the split is
 * a partition of the input, counts are exact per stratum, the same seed gives
 * the same files, another seed another split, and the assignment looks uniform. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"
#include "data/curate/curate.h"
#include "test.h"

#define N 1000
static const char *names[3] = {"test_data_split.train.jsonl", "test_data_split.valid.jsonl", "test_data_split.test.jsonl"};

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int read_lines(const char *path, char **out, int cap) {
    char *t; size_t len;
    if (lma_read_file(path, &t, &len)) { lma_clear_error(); return -1; }
    int n = 0;
    for (char *l = strtok(t, "\n"); l && n < cap; l = strtok(NULL, "\n")) out[n++] = strdup(l);
    free(t);
    return n;
}

static char *slurp(const char *path) {
    char *t = NULL; size_t len;
    if (lma_read_file(path, &t, &len)) lma_clear_error();
    return t;
}

static void run(uint64_t seed, const char *stratify, cJSON **sum) {
    lma_split_params p; lma_split_default_params(&p);
    p.seed = seed; p.stratify = stratify;
    for (int k = 0; k < 3; k++) p.out_path[k] = names[k];
    CHECK_OK(lma_data_split("test_data_split.jsonl", &p, sum));
}

int main(void) {
    /* input: GSM8K lines with a "task" field: 60% a, 30% b, 10% c */
    char *all[N + 1]; int n = 0;
    FILE *f = test_fopen("test_data_split.jsonl", "wb");
    lma_ex_reader *r;
    CHECK_OK(lma_ex_open(LMA_SRC_DIR "/tests/data/gsm8k_train.jsonl", &r));
    lma_example *e;
    while (r && n < N && lma_ex_next(r, &e) == LMA_OK && e) {
        const char *task = n % 10 < 6 ? "a" : n % 10 < 9 ? "b" : "c";
        cJSON_AddStringToObject(e->json, "task", task);
        char *s = cJSON_PrintUnformatted(e->json);
        fprintf(f, "%s\n", s);
        all[n++] = s;
    }
    lma_ex_close(r);
    fclose(f);
    CHECK(n == N, "input lines");

    cJSON *sum = NULL;
    run(1, "task", &sum);
    char *first[3];
    for (int k = 0; k < 3; k++) first[k] = slurp(names[k]);
    /* a partition of the input */
    char *got[N + 10]; int ng = 0, counts[3];
    for (int k = 0; k < 3; k++) { counts[k] = read_lines(names[k], got + ng, N + 10 - ng); ng += counts[k] > 0 ? counts[k] : 0; }
    CHECK(ng == N, "outputs hold %d lines, want %d", ng, N);
    if (ng == N) {
        qsort(got, N, sizeof *got, cmp_str);
        qsort(all, N, sizeof *all, cmp_str);
        int same = 0;
        for (int i = 0; i < N; i++) same += !strcmp(got[i], all[i]);
        CHECK(same == N, "outputs are a permutation of the input (%d/%d)", same, N);
    }
    for (int i = 0; i < ng; i++) free(got[i]);
    /* exact per-stratum counts: a 600 -> 480/60/60, b 300 -> 240/30/30, c 100 -> 80/10/10 */
    CHECK(counts[0] == 800 && counts[1] == 100 && counts[2] == 100, "counts %d %d %d", counts[0], counts[1], counts[2]);
    const cJSON *st = sum ? cJSON_GetObjectItem(sum, "strata") : NULL;
    const cJSON *c = st ? cJSON_GetObjectItem(st, "c") : NULL;
    CHECK(c && cJSON_GetArrayItem(c, 0)->valuedouble == 80 && cJSON_GetArrayItem(c, 1)->valuedouble == 10 &&
          cJSON_GetArrayItem(c, 2)->valuedouble == 10, "stratum c split 80/10/10");
    cJSON_Delete(sum);
    int cvalid = 0;
    char *v[200]; int nv = read_lines(names[1], v, 200);
    for (int i = 0; i < nv; i++) { cvalid += strstr(v[i], "\"task\":\"c\"") != NULL; free(v[i]); }
    CHECK(cvalid == 10, "validation holds 10 of stratum c, got %d", cvalid);

    /* determinism and seed dependence */
    run(1, "task", &sum); cJSON_Delete(sum);
    int same = 1;
    for (int k = 0; k < 3; k++) { char *t = slurp(names[k]); same &= t && first[k] && !strcmp(t, first[k]); free(t); }
    CHECK(same, "same seed, same files");
    run(2, "task", &sum); cJSON_Delete(sum);
    char *t = slurp(names[1]);
    CHECK(t && first[1] && strcmp(t, first[1]), "another seed, another validation set");
    free(t);
    /* uniformity: over 200 seeds, each of the first 100 lines lands in validation ~10% of the time */
    int hits = 0;
    for (uint64_t seed = 100; seed < 300; seed++) {
        run(seed, NULL, &sum); cJSON_Delete(sum);
        char *vv = slurp(names[1]);
        hits += vv && strstr(vv, "Natalia sold clips") != NULL; /* GSM8K line 1 */
        free(vv);
    }
    /* binomial(200, 0.1): mean 20, sd 4.2 */
    CHECK(hits >= 5 && hits <= 40, "line 1 in validation %d/200 times", hits);
    for (int k = 0; k < 3; k++) { free(first[k]); remove(names[k]); }
    for (int i = 0; i < N; i++) free(all[i]);
    remove("test_data_split.jsonl");
    TEST_END();
}
