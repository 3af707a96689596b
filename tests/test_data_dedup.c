/* dedup: Alpaca (2k) + GSM8K (1k) public data with 100 planted exact duplicates
 * (case, punctuation and spacing changed) and 100 planted near duplicates (one
 * word changed in a long example); precision and recall of the removed set
 * (with the right kept twin) must be >= 0.95. Also: the hashed shingle Jaccard
 * equals the Jaccard of the shingle strings computed naively. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "core/io.h"
#include "core/rng.h"
#include "data/curate/curate.h"
#include "test.h"

#define MAXREC 6000
static char *rec[MAXREC];
static int nrec;

static void add_file(const char *path, int limit) {
    lma_ex_reader *r;
    CHECK_OK(lma_ex_open(path, &r));
    if (!r) return;
    lma_example *e;
    lma_buf b = {0};
    int n = 0;
    while (n < limit && nrec < MAXREC && lma_ex_next(r, &e) == LMA_OK && e) {
        b.len = 0;
        CHECK_OK(lma_ex_line(e, &b));
        rec[nrec++] = strdup(b.p);
        n++;
    }
    lma_buf_free(&b);
    lma_ex_close(r);
}

static char *escape(const char *s) {
    cJSON *j = cJSON_CreateString(s);
    char *o = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return o;
}

/* user and assistant text of a record */
static void texts(const char *line, char **u, char **a) {
    lma_example e; memset(&e, 0, sizeof e);
    lma_ex_parse(line, strlen(line), "x", 1, &e);
    *u = strdup(e.msgs[0].text); *a = strdup(e.msgs[1].text);
    lma_ex_clear(&e);
}

static char *messages(const char *u, const char *a) {
    char *eu = escape(u), *ea = escape(a);
    size_t n = strlen(eu) + strlen(ea) + 100;
    char *o = malloc(n);
    snprintf(o, n, "{\"messages\":[{\"role\":\"user\",\"content\":%s},{\"role\":\"assistant\",\"content\":%s}]}", eu, ea);
    free(eu); free(ea);
    return o;
}

static size_t count_words(const char *s) {
    size_t n = 0; int in = 0;
    for (; *s; s++) { int sp = isspace((unsigned char)*s); n += !sp && !in; in = !sp; }
    return n;
}

/* exact: upper case, punctuation and spacing changed (same normalized text) */
static char *exact_variant(const char *u, const char *a) {
    size_t n = strlen(a);
    char *a2 = malloc(2 * n + 8), *u2 = strdup(u);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        a2[o++] = (char)toupper((unsigned char)a[i]);
        if (a[i] == ' ') a2[o++] = ' ';
    }
    memcpy(a2 + o, " !!", 4);
    for (char *c = u2; *c; c++) *c = (char)toupper((unsigned char)*c);
    char *m = messages(u2, a2);
    free(a2); free(u2);
    return m;
}

/* near: one word of the answer (near its middle) replaced */
static char *near_variant(const char *u, const char *a) {
    size_t n = strlen(a), mid = n / 2;
    while (mid < n && a[mid] != ' ') mid++;
    size_t e = mid + 1;
    while (e < n && a[e] != ' ') e++;
    char *a2 = malloc(n + 16);
    memcpy(a2, a, mid);
    strcpy(a2 + mid, " zebra");
    strcat(a2, a + e);
    char *m = messages(u, a2);
    free(a2);
    return m;
}

static void planted(void) {
    add_file(LMA_SRC_DIR "/tests/data/alpaca_small_2k.json", 2000);
    add_file(LMA_SRC_DIR "/tests/data/gsm8k_train.jsonl", 1000);
    int nbase = nrec;
    CHECK(nbase == 3000, "3000 base records, got %d", nbase);
    lma_rng rng; lma_rng_seed(&rng, 2024);
    static int src_of[MAXREC], kind_of[MAXREC], used[MAXREC];
    for (int i = 0; i < MAXREC; i++) src_of[i] = -1;
    for (int k = 0; k < 200; k++) {
        int s;
        char *u, *a;
        for (;;) {
            s = (int)lma_rng_below(&rng, (uint64_t)nbase);
            if (used[s]) continue;
            texts(rec[s], &u, &a);
            if (k < 100 || count_words(u) + count_words(a) >= 70) break;
            free(u); free(a);
        }
        used[s] = 1;
        src_of[nrec] = s; kind_of[nrec] = k < 100 ? 1 : 2;
        rec[nrec++] = k < 100 ? exact_variant(u, a) : near_variant(u, a);
        free(u); free(a);
    }
    /* shuffle the planted records among themselves (they stay after their sources) */
    for (int i = nrec - 1; i > nbase; i--) {
        int j = nbase + (int)lma_rng_below(&rng, (uint64_t)(i - nbase + 1));
        char *t = rec[i]; rec[i] = rec[j]; rec[j] = t;
        int ts = src_of[i]; src_of[i] = src_of[j]; src_of[j] = ts;
        int tk = kind_of[i]; kind_of[i] = kind_of[j]; kind_of[j] = tk;
    }
    const char *in = "test_data_dedup.jsonl";
    FILE *f = test_fopen(in, "wb");
    for (int i = 0; i < nrec; i++) fprintf(f, "%s\n", rec[i]);
    fclose(f);

    lma_dedup_file_params p; memset(&p, 0, sizeof p);
    lma_dedup_default_params(&p.dedup);
    p.part = LMA_EX_ALL;
    p.out_path = "test_data_dedup.out.jsonl"; p.removed_path = "test_data_dedup.removed.jsonl";
    p.report_path = "test_data_dedup.report.json";
    cJSON *sum = NULL;
    CHECK_OK(lma_data_dedup(in, &p, &sum));
    char *text; size_t len;
    CHECK_OK(lma_read_file(p.removed_path, &text, &len));
    int removed = 0, tp = 0, kind_ok = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        CHECK(j && cJSON_GetObjectItem(j, "example"), "removed line is JSON with the example");
        if (!j) continue;
        int l = (int)cJSON_GetObjectItem(j, "line")->valuedouble, tw = (int)cJSON_GetObjectItem(j, "twin_line")->valuedouble;
        const char *why = cJSON_GetObjectItem(j, "reason")->valuestring;
        removed++;
        int i = l - 1; /* line -> record index */
        if (i >= nbase && i < nrec && src_of[i] + 1 == tw) {
            tp++;
            kind_ok += (kind_of[i] == 1) == !strcmp(why, "exact");
        }
        cJSON_Delete(j);
    }
    free(text);
    double prec = removed ? (double)tp / removed : 0, rec_ = tp / 200.0;
    printf("dedup planted: removed %d, true positives %d, precision %.3f recall %.3f\n", removed, tp, prec, rec_);
    CHECK(prec >= 0.95, "precision %.3f < 0.95", prec);
    CHECK(rec_ >= 0.95, "recall %.3f < 0.95", rec_);
    CHECK(kind_ok == tp, "exact plants found as exact, near as near (%d/%d)", kind_ok, tp);
    if (sum) CHECK(cJSON_GetObjectItem(sum, "kept")->valuedouble + removed == nrec, "kept + removed = input");

    /* the CLI gives the same kept file */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s data dedup %s -o test_data_dedup.cli.jsonl > /dev/null", LMA_CLI, in);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "CLI dedup ran (%d)", rc);
    char *a, *b; size_t la, lb;
    CHECK_OK(lma_read_file(p.out_path, &a, &la));
    CHECK_OK(lma_read_file("test_data_dedup.cli.jsonl", &b, &lb));
    CHECK(a && b && la == lb && !memcmp(a, b, la), "CLI output equals the library output");
    free(a); free(b);
    /* refusing to overwrite the input */
    p.out_path = in;
    cJSON *s2 = NULL;
    CHECK(lma_data_dedup(in, &p, &s2) == LMA_ERR_ARG, "output over the input refused");
    lma_clear_error();
    cJSON_Delete(sum);
    remove(in); remove("test_data_dedup.out.jsonl"); remove(p.removed_path); remove(p.report_path);
    remove("test_data_dedup.cli.jsonl");
    for (int i = 0; i < nrec; i++) free(rec[i]);
}

/* Naive shingle-string Jaccard vs the hashed one. */
static double naive_jaccard(const char *x, const char *y, int k) {
    lma_words wx = {0}, wy = {0};
    lma_words_norm(x, strlen(x), &wx); lma_words_norm(y, strlen(y), &wy);
    char *sx[512], *sy[512]; int nx = 0, ny = 0;
    const lma_words *ws[2] = {&wx, &wy};
    char **out[2] = {sx, sy}; int *cnt[2] = {&nx, &ny};
    for (int s = 0; s < 2; s++) {
        char *words[512]; int nw = 0;
        char *t = strdup(ws[s]->text);
        for (char *w = strtok(t, " "); w && nw < 512; w = strtok(NULL, " ")) words[nw++] = w;
        for (int i = 0; i + k <= nw && *cnt[s] < 512; i++) {
            char buf[4096] = "";
            for (int j = 0; j < k; j++) { strcat(buf, words[i + j]); strcat(buf, " "); }
            int dup = 0;
            for (int q = 0; q < *cnt[s]; q++) dup |= !strcmp(out[s][q], buf);
            if (!dup) out[s][(*cnt[s])++] = strdup(buf);
        }
        free(t);
    }
    int inter = 0;
    for (int i = 0; i < nx; i++) for (int j = 0; j < ny; j++) inter += !strcmp(sx[i], sy[j]);
    for (int i = 0; i < nx; i++) free(sx[i]);
    for (int i = 0; i < ny; i++) free(sy[i]);
    lma_words_free(&wx); lma_words_free(&wy);
    return (double)inter / (nx + ny - inter);
}

static void jaccard(void) {
    uint32_t a[] = {1, 2, 3, 4}, b[] = {2, 3, 4, 5, 6};
    CHECK(fabs(lma_jaccard_sorted(a, 4, b, 5) - 3.0 / 6.0) < 1e-12, "jaccard of small sets");
    const char *x = "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat near the door today";
    const char *y = "the QUICK brown fox jumps over the lazy dog, while the cat naps on the warm mat near the door today!";
    lma_dedup_params p; lma_dedup_default_params(&p);
    lma_dedup *d;
    CHECK_OK(lma_dedup_create(&p, &d));
    lma_dedup_sig sx, sy; memset(&sx, 0, sizeof sx); memset(&sy, 0, sizeof sy);
    CHECK_OK(lma_dedup_sign(d, x, strlen(x), &sx));
    CHECK_OK(lma_dedup_sign(d, y, strlen(y), &sy));
    double jh = lma_jaccard_sorted(sx.shingles, sx.n_shingles, sy.shingles, sy.n_shingles), jn = naive_jaccard(x, y, 5);
    CHECK(fabs(jh - jn) < 1e-12, "hashed shingle Jaccard %.4f == naive %.4f", jh, jn);
    /* MinHash agreement estimates the Jaccard: 112 hashes, error well under 0.15 */
    int agree = 0;
    for (int i = 0; i < p.bands * p.rows; i++) agree += sx.minhash[i] == sy.minhash[i];
    double est = (double)agree / (p.bands * p.rows);
    CHECK(fabs(est - jn) < 0.15, "MinHash estimate %.3f vs Jaccard %.3f", est, jn);
    /* exact: normalization makes these equal */
    lma_dup_result r;
    CHECK_OK(lma_dedup_add(d, "Hello,   World!", 15, 1, &r));
    CHECK(r.kind == LMA_DUP_NONE, "first kept");
    CHECK_OK(lma_dedup_add(d, "hello world", 11, 2, &r));
    CHECK(r.kind == LMA_DUP_EXACT && r.twin == 1, "normalized exact duplicate of 1");
    lma_dedup_sig_free(&sx); lma_dedup_sig_free(&sy);
    lma_dedup_free(d);
}

int main(void) {
    jaccard();
    planted();
    TEST_END();
}
