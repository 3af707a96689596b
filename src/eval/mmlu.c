#include "eval/mmlu.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/io.h"
#include "eval/csv.h"

int lma_py_isspace(unsigned cp) {
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
           cp == 0x3000;
}

/* decodes the code point starting at s[i] (valid or not); returns its byte length */
static size_t utf8_at(const unsigned char *s, size_t len, size_t i, unsigned *cp) {
    unsigned c = s[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > len) { *cp = 0xfffd; return 1; }
    unsigned v = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t k = 1; k < n; k++) {
        if ((s[i + k] & 0xc0) != 0x80) { *cp = 0xfffd; return 1; }
        v = (v << 6) | (s[i + k] & 0x3f);
    }
    *cp = v;
    return n;
}

void lma_py_strip(const char *s, size_t len, size_t *b, size_t *e) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, end = len;
    while (i < len) {
        unsigned cp;
        size_t n = utf8_at(u, len, i, &cp);
        if (!lma_py_isspace(cp)) break;
        i += n;
    }
    /* from the end: step back over continuation bytes to a lead byte */
    while (end > i) {
        size_t st = end - 1;
        while (st > i && (u[st] & 0xc0) == 0x80 && end - st < 4) st--;
        unsigned cp;
        size_t n = utf8_at(u, len, st, &cp);
        if (st + n != end || !lma_py_isspace(cp)) break;
        end = st;
    }
    *b = i; *e = end;
}

void lma_mmlu_items_free(lma_mmlu_item *items, size_t n) {
    if (!items) return;
    for (size_t i = 0; i < n; i++) {
        free(items[i].question);
        for (int k = 0; k < 4; k++) free(items[i].choices[k]);
    }
    free(items);
}

lma_status lma_mmlu_read_csv(const char *path, lma_mmlu_item **items, size_t *n) {
    *items = NULL; *n = 0;
    char *buf = NULL, **cells = NULL;
    size_t len = 0, rows = 0;
    LMA_TRY(lma_read_file(path, &buf, &len));
    lma_status st = lma_csv_parse(buf, len, path, 6, &cells, &rows);
    free(buf);
    if (st != LMA_OK) return st;
    lma_mmlu_item *it = lma_calloc(rows ? rows : 1, sizeof *it, "mmlu items");
    if (!it) { lma_csv_free(cells, rows * 6); return LMA_ERR_NOMEM; }
    for (size_t r = 0; r < rows; r++) {
        char **c = cells + r * 6;
        const char *a = c[5];
        size_t b, e;
        lma_py_strip(a, strlen(a), &b, &e);
        if (e - b != 1 || a[b] < 'A' || a[b] > 'D') {
            st = lma_error(LMA_ERR_FORMAT, "%s: row %zu: answer must be one of A, B, C, D (got \"%.20s\")", path, r + 1, a);
            for (size_t q = r; q < rows; q++) for (int k = 0; k < 6; k++) { free(cells[q * 6 + k]); cells[q * 6 + k] = NULL; }
            free(cells);
            lma_mmlu_items_free(it, r);
            return st;
        }
        it[r].answer = a[b] - 'A';
        it[r].question = c[0];
        for (int k = 0; k < 4; k++) it[r].choices[k] = c[1 + k];
        free(c[5]);
    }
    free(cells);
    *items = it; *n = rows;
    return LMA_OK;
}

void lma_mmlu_free(lma_mmlu_set *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        lma_mmlu_subject *u = &s->subj[i];
        free(u->name);
        lma_mmlu_items_free(u->items, u->n_items);
        if (!u->shots_are_items) lma_mmlu_items_free(u->shots, u->n_shots);
    }
    free(s->subj);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* subject names of dir/{subject}_{split}.csv, sorted; *split filled from the first
 * file when empty (then every file must share it). */
static lma_status list_subjects(const char *dir, char *split, size_t split_cap, char ***names, size_t *n) {
    *names = NULL; *n = 0;
    DIR *d = opendir(dir);
    if (!d) return lma_error(LMA_ERR_IO, "%s: cannot open the MMLU folder", dir);
    char **v = NULL;
    size_t k = 0, cap = 0;
    lma_status st = LMA_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        size_t l = strlen(nm);
        if (l < 5 || strcmp(nm + l - 4, ".csv")) continue;
        const char *us = NULL;
        for (const char *p = nm; p < nm + l - 4; p++) if (*p == '_') us = p;
        if (!us || us == nm) continue;
        size_t sl = (size_t)(nm + l - 4 - (us + 1));
        if (!split[0]) {
            if (sl == 0 || sl >= split_cap) continue;
            memcpy(split, us + 1, sl); split[sl] = 0;
        } else if (sl != strlen(split) || memcmp(us + 1, split, sl)) {
            continue;
        }
        if ((st = lma_grow(&v, &cap, k + 1, sizeof *v, 64, dir))) break;
        v[k] = malloc((size_t)(us - nm) + 1);
        if (!v[k]) { st = lma_error(LMA_ERR_NOMEM, "out of memory listing %s", dir); break; }
        memcpy(v[k], nm, (size_t)(us - nm)); v[k][us - nm] = 0;
        k++;
    }
    closedir(d);
    if (st != LMA_OK) { for (size_t i = 0; i < k; i++) free(v[i]); free(v); return st; }
    if (k == 0) { free(v); return lma_error(LMA_ERR_FORMAT, "%s: no {subject}_{split}.csv files", dir); }
    qsort(v, k, sizeof *v, cmp_str);
    *names = v; *n = k;
    return LMA_OK;
}

lma_status lma_mmlu_load(const char *path, const char *split, lma_mmlu_set *out) {
    memset(out, 0, sizeof *out);
    char evdir[4096], devdir[4096], sub[4096];
    if (!lma_is_dir(path)) return lma_error(LMA_ERR_IO, "%s: not a folder (expected the MMLU data folder)", path);
    snprintf(sub, sizeof sub, "%s/dev", path);
    int has_sub = lma_is_dir(sub);
    if (!has_sub && split) {
        snprintf(sub, sizeof sub, "%s/%s", path, split);
        has_sub = lma_is_dir(sub);
    }
    devdir[0] = 0;
    if (has_sub) {
        const char *sp = split;
        if (!sp) {
            snprintf(sub, sizeof sub, "%s/test", path);
            sp = lma_is_dir(sub) ? "test" : (snprintf(sub, sizeof sub, "%s/val", path), lma_is_dir(sub)) ? "val" : "dev";
        }
        if (strlen(sp) >= sizeof out->split) return lma_error(LMA_ERR_ARG, "MMLU split name too long: %s", sp);
        snprintf(evdir, sizeof evdir, "%s/%s", path, sp);
        if (!lma_is_dir(evdir)) return lma_error(LMA_ERR_IO, "%s: no such MMLU split folder", evdir);
        strcpy(out->split, sp);
        snprintf(devdir, sizeof devdir, "%s/dev", path);
    } else {
        snprintf(evdir, sizeof evdir, "%s", path);
        /* a dev folder beside the split folder */
        snprintf(sub, sizeof sub, "%s", path);
        size_t l = strlen(sub);
        while (l > 1 && sub[l - 1] == '/') sub[--l] = 0;
        char *sl = strrchr(sub, '/');
        if (sl) { *sl = 0; snprintf(devdir, sizeof devdir, "%s/dev", sub[0] ? sub : "/"); }
        else snprintf(devdir, sizeof devdir, "../dev");
    }
    char **names = NULL;
    size_t n = 0;
    LMA_TRY(list_subjects(evdir, out->split, sizeof out->split, &names, &n));
    int same = !strcmp(out->split, "dev");
    lma_status st = LMA_OK;
    out->subj = lma_calloc(n, sizeof *out->subj, "mmlu subjects");
    if (!out->subj) st = LMA_ERR_NOMEM;
    for (size_t i = 0; st == LMA_OK && i < n; i++) {
        lma_mmlu_subject *u = &out->subj[i];
        u->name = names[i]; names[i] = NULL;
        out->n = i + 1;
        char f[4600];
        snprintf(f, sizeof f, "%s/%s_%s.csv", evdir, u->name, out->split);
        st = lma_mmlu_read_csv(f, &u->items, &u->n_items);
        if (st != LMA_OK) break;
        if (same) { u->shots = u->items; u->n_shots = u->n_items; u->shots_are_items = 1; continue; }
        snprintf(f, sizeof f, "%s/%s_dev.csv", devdir, u->name);
        if (lma_file_exists(f)) st = lma_mmlu_read_csv(f, &u->shots, &u->n_shots);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (st != LMA_OK) lma_mmlu_free(out);
    return st;
}

static void add_question(lma_buf *b, const lma_mmlu_item *it) {
    size_t qb, qe;
    lma_py_strip(it->question, strlen(it->question), &qb, &qe);
    lma_buf_append(b, it->question + qb, qe - qb);
    for (int k = 0; k < 4; k++) {
        char h[5] = {'\n', (char)('A' + k), '.', ' ', 0};
        lma_buf_str(b, h);
        lma_buf_str(b, it->choices[k]);
    }
    lma_buf_str(b, "\nAnswer:");
}

static int same_item(const lma_mmlu_item *a, const lma_mmlu_item *b) {
    if (a == b) return 1;
    if (a->answer != b->answer || strcmp(a->question, b->question)) return 0;
    for (int k = 0; k < 4; k++) if (strcmp(a->choices[k], b->choices[k])) return 0;
    return 1;
}

lma_status lma_mmlu_prompt(const char *subject, const lma_mmlu_item *shots, size_t n_shots, int shots_are_items,
                           int k, const lma_mmlu_item *item, char **out, size_t *len) {
    return lma_mmlu_prompt_form(LMA_MMLU_LETTER, subject, shots, n_shots, shots_are_items, k, item, out, len);
}

/* cloze: "Question: {q.strip()}\nAnswer:" (the choices are not listed) */
static void add_cloze_question(lma_buf *b, const lma_mmlu_item *it) {
    size_t qb, qe;
    lma_py_strip(it->question, strlen(it->question), &qb, &qe);
    lma_buf_str(b, "Question: ");
    lma_buf_append(b, it->question + qb, qe - qb);
    lma_buf_str(b, "\nAnswer:");
}

lma_status lma_mmlu_prompt_form(lma_mmlu_form form, const char *subject, const lma_mmlu_item *shots, size_t n_shots,
                                int shots_are_items, int k, const lma_mmlu_item *item, char **out, size_t *len) {
    *out = NULL; *len = 0;
    if (k < 0) return lma_error(LMA_ERR_ARG, "negative number of shots");
    /* first_n: the first k (k+1 when the pool is the evaluated split, minus the item) */
    size_t want = (size_t)k + (shots_are_items ? 1 : 0);
    if (k > 0 && n_shots < want)
        return lma_error(LMA_ERR_ARG, "%s: %d shots asked, the dev split has %zu rows", subject, k, n_shots);
    int cloze = form == LMA_MMLU_CLOZE;
    lma_buf b = {0};
    lma_buf_str(&b, cloze ? "The following are questions (with answers) about "
                          : "The following are multiple choice questions (with answers) about ");
    for (const char *p = subject; *p; p++) lma_buf_append(&b, *p == '_' ? " " : p, 1);
    lma_buf_str(&b, ".\n\n");
    int used = 0;
    for (size_t i = 0; k > 0 && i < want && used < k; i++) {
        if (shots_are_items && same_item(&shots[i], item)) continue;
        if (cloze) {
            add_cloze_question(&b, &shots[i]);
            lma_buf_str(&b, " ");
            lma_buf_str(&b, shots[i].choices[shots[i].answer]);
        } else {
            add_question(&b, &shots[i]);
            char g[4] = {' ', (char)('A' + shots[i].answer), 0};
            lma_buf_str(&b, g);
        }
        lma_buf_str(&b, "\n\n");
        used++;
    }
    if (cloze) add_cloze_question(&b, item);
    else add_question(&b, item);
    if (b.st) { lma_buf_free(&b); return lma_error(LMA_ERR_NOMEM, "out of memory building an MMLU prompt"); }
    *out = b.p; *len = b.len;
    return LMA_OK;
}

size_t lma_utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}
