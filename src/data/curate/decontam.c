/* decontam: n-gram overlap with evaluation sets, lm-evaluation-harness style
 * (lower-case, ASCII punctuation deleted, whitespace split; 13-grams). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/io.h"
#include "core/buf.h"
#include "data/curate/internal.h"
#include "data/curate/u64map.h"

struct lma_decontam {
    int n;
    lma_u64map grams;  /* n-gram hash -> doc index */
    uint32_t *doc_file; int64_t *doc_line; size_t n_docs, cap_docs;
    char **files; size_t n_files, cap_files;
    lma_words w;
};

lma_status lma_decontam_create(int n, lma_decontam **out) {
    *out = NULL;
    if (n < 1 || n > 64) return lma_error(LMA_ERR_ARG, "decontam: n-gram size must be 1..64 (got %d)", n);
    lma_decontam *d = lma_calloc(1, sizeof *d, "decontam");
    if (!d) return LMA_ERR_NOMEM;
    d->n = n;
    *out = d;
    return LMA_OK;
}

void lma_decontam_free(lma_decontam *d) {
    if (!d) return;
    lma_u64map_free(&d->grams);
    free(d->doc_file); free(d->doc_line);
    for (size_t i = 0; i < d->n_files; i++) free(d->files[i]);
    free(d->files);
    lma_words_free(&d->w);
    free(d);
}

size_t lma_decontam_ngrams(const lma_decontam *d) { return d->grams.n; }

static lma_status file_index(lma_decontam *d, const char *name, uint32_t *idx) {
    if (d->n_files && !strcmp(d->files[d->n_files - 1], name)) { *idx = (uint32_t)(d->n_files - 1); return LMA_OK; }
    LMA_TRY(lma_grow(&d->files, &d->cap_files, d->n_files + 1, sizeof *d->files, 16, "decontam files"));
    d->files[d->n_files] = strdup(name);
    if (!d->files[d->n_files]) return lma_error(LMA_ERR_NOMEM, "decontam: out of memory");
    *idx = (uint32_t)d->n_files++;
    return LMA_OK;
}

lma_status lma_decontam_add_doc(lma_decontam *d, const char *text, size_t len, const char *name, int64_t line) {
    LMA_TRY(lma_words_norm(text, len, &d->w));
    if (d->w.n < (size_t)d->n) return LMA_OK; /* too short to hold an n-gram */
    uint32_t fi = 0;
    LMA_TRY(file_index(d, name ? name : "(memory)", &fi));
    if (d->n_docs >= UINT32_MAX - 1) return lma_error(LMA_ERR_UNSUPPORTED, "decontam: too many evaluation documents");
    if (d->n_docs == d->cap_docs) { /* 2 arrays, one capacity */
        void *const arrs[] = {&d->doc_file, &d->doc_line};
        const size_t esz[] = {sizeof *d->doc_file, sizeof *d->doc_line};
        LMA_TRY(lma_grow_all(&d->cap_docs, d->n_docs + 1, 1024, "decontam documents", 2, arrs, esz));
    }
    uint32_t di = (uint32_t)d->n_docs++;
    d->doc_file[di] = fi; d->doc_line[di] = line;
    for (size_t i = 0; i + (size_t)d->n <= d->w.n; i++) {
        uint64_t h = lma_ngram_hash(d->w.hash + i, (size_t)d->n);
        if (lma_u64map_get(&d->grams, h) == UINT32_MAX) LMA_TRY(lma_u64map_insert(&d->grams, h, di));
    }
    return LMA_OK;
}

/* Every string value of a JSON value, space-separated. */
static lma_status json_strings(const cJSON *j, lma_buf *b) {
    for (; j; j = j->next) {
        if (cJSON_IsString(j) && j->valuestring) {
            LMA_TRY(lma_buf_append(b, j->valuestring, strlen(j->valuestring)));
            LMA_TRY(lma_buf_append(b, " ", 1));
        }
        if (j->child) LMA_TRY(json_strings(j->child, b));
    }
    return LMA_OK;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static lma_status add_csv(lma_decontam *d, const char *path, const char *t, size_t n, lma_buf *b) {
    size_t i = 0;
    int64_t line = 1;
    while (i < n) {
        int64_t row_line = line;
        b->len = 0;
        LMA_TRY(lma_buf_append(b, "", 0));
        for (;;) { /* one field */
            if (i < n && t[i] == '"') {
                i++;
                for (;;) {
                    if (i >= n) return lma_error(LMA_ERR_FORMAT, "%s:%lld: unterminated quoted field", path, (long long)row_line);
                    if (t[i] == '"') {
                        if (i + 1 < n && t[i + 1] == '"') { LMA_TRY(lma_buf_append(b, "\"", 1)); i += 2; continue; }
                        i++;
                        break;
                    }
                    if (t[i] == '\n') line++;
                    LMA_TRY(lma_buf_append(b, t + i, 1));
                    i++;
                }
            }
            size_t s = i;
            while (i < n && t[i] != ',' && t[i] != '\n' && t[i] != '\r') i++;
            LMA_TRY(lma_buf_append(b, t + s, i - s));
            if (i < n && t[i] == ',') { LMA_TRY(lma_buf_append(b, " ", 1)); i++; continue; }
            break;
        }
        if (i < n && t[i] == '\r') i++;
        if (i < n && t[i] == '\n') { i++; line++; }
        LMA_TRY(lma_decontam_add_doc(d, b->p, b->len, path, row_line));
    }
    return LMA_OK;
}

static lma_status add_file(lma_decontam *d, const char *path) {
    char *t; size_t n;
    LMA_TRY(lma_read_file(path, &t, &n));
    lma_buf b = {0};
    lma_status st = LMA_OK;
    if (ends_with(path, ".csv")) st = add_csv(d, path, t, n, &b);
    else {
        int jsonl = ends_with(path, ".jsonl") || ends_with(path, ".json");
        size_t i = 0;
        int64_t line = 1;
        while (i < n && !st) {
            size_t e = i;
            while (e < n && t[e] != '\n') e++;
            cJSON *j = NULL;
            if (jsonl && e > i) j = cJSON_ParseWithLength(t + i, e - i);
            if (j) {
                b.len = 0;
                if (!(st = lma_buf_append(&b, "", 0)) && !(st = json_strings(j, &b)))
                    st = lma_decontam_add_doc(d, b.p, b.len, path, line);
                cJSON_Delete(j);
            } else if (e > i) st = lma_decontam_add_doc(d, t + i, e - i, path, line);
            i = e + 1; line++;
        }
    }
    lma_buf_free(&b);
    free(t);
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static lma_status add_tree(lma_decontam *d, const char *path, int depth);

/* A file, or a folder with evaluation files in it or in its subfolders; an input that
 * yields no document is an error (a check against nothing would report success). */
lma_status lma_decontam_add_eval(lma_decontam *d, const char *path) {
    size_t before = d->n_docs;
    LMA_TRY(add_tree(d, path, 0));
    if (d->n_docs == before)
        return lma_error(LMA_ERR_FORMAT, "%s: no evaluation documents (.csv, .jsonl, .json, .txt files, also in "
                         "subfolders): refusing to check against nothing", path);
    return LMA_OK;
}

static lma_status add_tree(lma_decontam *d, const char *path, int depth) {
    if (!lma_is_dir(path)) return add_file(d, path);
    if (depth > 32) return lma_error(LMA_ERR_FORMAT, "%s: folders nested too deep", path);
    DIR *dir = opendir(path);
    if (!dir) return lma_error(LMA_ERR_IO, "%s: cannot open the directory", path);
    char **names = NULL; size_t nn = 0, cap = 0;
    lma_status st = LMA_OK;
    struct dirent *e;
    while ((e = readdir(dir)) && !st) {
        if (e->d_name[0] == '.') continue;
        char full[4096];
        if ((st = lma_path_join(full, sizeof full, path, e->d_name))) break;
        if (!lma_is_dir(full) && !(ends_with(e->d_name, ".csv") || ends_with(e->d_name, ".jsonl") ||
                                   ends_with(e->d_name, ".json") || ends_with(e->d_name, ".txt")))
            continue;
        if ((st = lma_grow(&names, &cap, nn + 1, sizeof *names, 64, "decontam file names"))) break;
        if (!(names[nn] = strdup(full))) { st = lma_error(LMA_ERR_NOMEM, "decontam: out of memory"); break; }
        nn++;
    }
    closedir(dir);
    if (!st && nn) qsort(names, nn, sizeof *names, cmp_str);
    for (size_t i = 0; i < nn && !st; i++) st = add_tree(d, names[i], depth + 1);
    for (size_t i = 0; i < nn; i++) free(names[i]);
    free(names);
    return st;
}

lma_status lma_decontam_check(const lma_decontam *d, const char *text, size_t n, lma_words *w, lma_decontam_hit *hit) {
    memset(hit, 0, sizeof *hit);
    hit->eval_line = -1;
    LMA_TRY(lma_words_norm(text, n, w));
    size_t k = (size_t)d->n;
    for (size_t i = 0; i + k <= w->n; i++) {
        uint32_t di = lma_u64map_get(&d->grams, lma_ngram_hash(w->hash + i, k));
        if (di == UINT32_MAX) continue;
        if (!hit->overlaps++) {
            hit->eval_file = d->files[d->doc_file[di]];
            hit->eval_line = d->doc_line[di];
            /* the matching words, from the normalized text */
            size_t wi = 0, p = 0, o = 0;
            while (p < w->text_len && wi < i) wi += w->text[p++] == ' ';
            for (size_t c = 0; p < w->text_len && o + 1 < sizeof hit->ngram; p++) {
                if (w->text[p] == ' ' && ++c == k) break;
                hit->ngram[o++] = w->text[p];
            }
            hit->ngram[o] = 0;
        }
    }
    return LMA_OK;
}

/* ---- file driver ------------------------------------------------------------ */


lma_status lma_data_decontam(const char *in, const lma_decontam_file_params *p, cJSON **out) {
    *out = NULL;
    if (p->n_evals < 1) return lma_error(LMA_ERR_ARG, "decontam: at least one evaluation set is required");
    lma_curate_sieve sv;
    LMA_TRY(lma_curate_sieve_open(&sv, "decontam", in, p->out_path, p->removed_path, p->report_path));
    lma_decontam *d = NULL;
    lma_ex_reader *r = NULL;
    lma_curate_batch *batch = calloc(1, sizeof *batch);
    lma_decontam_hit *hits = calloc(LMA_CURATE_BATCH, sizeof *hits);
    size_t min_ov = p->min_overlaps > 0 ? (size_t)p->min_overlaps : 1;
    lma_status st = (batch && hits) ? LMA_OK : lma_error(LMA_ERR_NOMEM, "decontam: out of memory");
    if (!st) st = lma_decontam_create(p->ngram > 0 ? p->ngram : 13, &d);
    for (int i = 0; i < p->n_evals && !st; i++) st = lma_decontam_add_eval(d, p->evals[i]);
    if (!st) st = lma_ex_open(in, &r);
    while (!st) {
        if ((st = lma_curate_batch_read(r, p->part ? p->part : LMA_EX_ALL, batch, lma_curate_on_bad, &sv.bad)) || !batch->n) break;
        lma_status ps = LMA_OK;
        #pragma omp parallel
        {
            lma_words w = {0};
            #pragma omp for schedule(dynamic, 16)
            for (size_t i = 0; i < batch->n; i++) {
                lma_status s1 = lma_decontam_check(d, batch->text[i].p, batch->text[i].len, &w, &hits[i]);
                if (s1) {
                    #pragma omp critical
                    ps = s1;
                }
            }
            lma_words_free(&w);
        }
        if ((st = ps)) break;
        for (size_t i = 0; i < batch->n && !st; i++) {
            if (hits[i].overlaps < min_ov) { st = lma_curate_sieve_keep(&sv, &batch->line[i]); continue; }
            cJSON *o = cJSON_CreateObject();
            if (o) {
                cJSON_AddNumberToObject(o, "line", (double)batch->lineno[i]);
                cJSON_AddNumberToObject(o, "overlaps", (double)hits[i].overlaps);
                cJSON_AddStringToObject(o, "eval_file", hits[i].eval_file);
                cJSON_AddNumberToObject(o, "eval_line", (double)hits[i].eval_line);
                cJSON_AddStringToObject(o, "ngram", hits[i].ngram);
            }
            st = lma_curate_sieve_drop(&sv, o, &batch->line[i]);
        }
    }
    cJSON *summary = NULL;
    if (!st && !(summary = cJSON_CreateObject())) st = lma_error(LMA_ERR_NOMEM, "decontam: out of memory");
    if (!st) {
        cJSON_AddNumberToObject(summary, "ngram", d->n);
        cJSON_AddNumberToObject(summary, "eval_documents", (double)d->n_docs);
        cJSON_AddNumberToObject(summary, "eval_ngrams", (double)d->grams.n);
        st = lma_curate_sieve_close(&sv, summary);
    }
    lma_curate_sieve_abort(&sv);
    lma_ex_close(r);
    lma_decontam_free(d);
    free(hits);
    if (batch) { lma_curate_batch_free(batch); free(batch); }
    if (st) { cJSON_Delete(summary); return st; }
    *out = summary;
    return LMA_OK;
}
