/* Shared driver helpers (see internal.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "data/curate/internal.h"

lma_status lma_curate_check_output(const char *in, const char *out) {
    if (!in || !out) return LMA_OK;
    if (!strcmp(in, out)) return lma_error(LMA_ERR_ARG, "%s: output would replace the input; choose another path", out);
    struct stat a, b;
    if (stat(in, &a) == 0 && stat(out, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return lma_error(LMA_ERR_ARG, "%s: output is the input file; choose another path", out);
    return LMA_OK;
}

void lma_curate_count(cJSON *obj, const char *key, double by) {
    cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (it) cJSON_SetNumberValue(it, it->valuedouble + by);
    else cJSON_AddNumberToObject(obj, key, by);
}

lma_status lma_curate_batch_read(lma_ex_reader *r, lma_ex_part part, lma_curate_batch *b,
                                 lma_status (*on_bad)(const lma_example *ex, void *ctx), void *ctx) {
    b->n = 0;
    while (b->n < LMA_CURATE_BATCH) {
        lma_example *ex;
        LMA_TRY(lma_ex_next(r, &ex));
        if (!ex) break;
        if (ex->error_code) {
            if (on_bad) LMA_TRY(on_bad(ex, ctx));
            continue;
        }
        size_t i = b->n;
        b->text[i].len = 0; b->line[i].len = 0;
        LMA_TRY(lma_ex_text(ex, part, &b->text[i]));
        LMA_TRY(lma_ex_line(ex, &b->line[i]));
        b->lineno[i] = ex->line;
        b->n++;
    }
    return LMA_OK;
}

void lma_curate_batch_free(lma_curate_batch *b) {
    for (size_t i = 0; i < LMA_CURATE_BATCH; i++) { lma_buf_free(&b->text[i]); lma_buf_free(&b->line[i]); }
    b->n = 0;
}

void lma_curate_bad_summary(const lma_curate_bad *c, cJSON *summary) {
    cJSON_AddNumberToObject(summary, "unreadable", (double)c->unreadable);
    cJSON *l = cJSON_AddArrayToObject(summary, "unreadable_lines");
    for (int64_t i = 0; l && i < c->unreadable && i < LMA_CURATE_FIRST_BAD; i++)
        cJSON_AddItemToArray(l, cJSON_CreateNumber((double)c->first[i]));
}

lma_status lma_curate_on_bad(const lma_example *ex, void *vctx) {
    lma_curate_bad *c = vctx;
    if (c->unreadable < LMA_CURATE_FIRST_BAD) c->first[c->unreadable] = ex->line;
    c->unreadable++;
    if (!c->rep) return LMA_OK;
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddNumberToObject(o, "line", (double)ex->line);
        cJSON_AddStringToObject(o, "reason", "unreadable");
        cJSON_AddStringToObject(o, "error", ex->error);
    }
    return lma_report_item(c->rep, o);
}

lma_status lma_curate_sieve_open(lma_curate_sieve *s, const char *cmd, const char *in, const char *out,
                                 const char *removed, const char *report) {
    memset(s, 0, sizeof *s);
    s->bad.rep = &s->rep;
    if (!out) return lma_error(LMA_ERR_ARG, "%s: an output path is required", cmd);
    LMA_TRY(lma_curate_check_output(in, out));
    LMA_TRY(lma_curate_check_output(in, removed));
    LMA_TRY(lma_curate_check_output(in, report));
    LMA_TRY(lma_atomic_open(&s->fo, out));
    s->fo_open = 1;
    lma_status st = LMA_OK;
    if (removed && !(st = lma_atomic_open(&s->fr, removed))) s->fr_open = 1;
    if (!st) st = lma_report_open(&s->rep, report, cmd, in, "removed");
    if (st) lma_curate_sieve_abort(s);
    return st;
}

lma_status lma_curate_sieve_keep(lma_curate_sieve *s, const lma_buf *line) {
    s->n_ex++; s->n_kept++;
    lma_status st = lma_atomic_write(&s->fo, line->p, line->len);
    if (!st) st = lma_atomic_write(&s->fo, "\n", 1);
    if (st) s->fo_open = 0; /* the failed write removed it */
    return st;
}

lma_status lma_curate_sieve_drop(lma_curate_sieve *s, cJSON *info, const lma_buf *line) {
    s->n_ex++; s->n_removed++;
    if (!info) return lma_error(LMA_ERR_NOMEM, "out of memory");
    lma_status st = LMA_OK;
    if (s->fr_open) {
        char *j = cJSON_PrintUnformatted(info);
        if (!j) { cJSON_Delete(info); return lma_error(LMA_ERR_NOMEM, "out of memory"); }
        s->tmp.len = 0;
        st = lma_buf_append(&s->tmp, j, strlen(j) - 1); /* without the closing brace */
        free(j);
        if (!st) st = lma_buf_append(&s->tmp, ",\"example\":", 11);
        if (!st) st = lma_buf_append(&s->tmp, line->p, line->len);
        if (!st) st = lma_buf_append(&s->tmp, "}\n", 2);
        if (!st && (st = lma_atomic_write(&s->fr, s->tmp.p, s->tmp.len))) s->fr_open = 0;
    }
    if (st) { cJSON_Delete(info); return st; }
    return lma_report_item(&s->rep, info);
}

lma_status lma_curate_sieve_close(lma_curate_sieve *s, cJSON *summary) {
    cJSON_AddNumberToObject(summary, "examples", (double)s->n_ex);
    cJSON_AddNumberToObject(summary, "kept", (double)s->n_kept);
    cJSON_AddNumberToObject(summary, "removed", (double)s->n_removed);
    lma_curate_bad_summary(&s->bad, summary);
    lma_status st = lma_atomic_commit(&s->fo);
    s->fo_open = 0;
    if (!st && s->fr_open) { st = lma_atomic_commit(&s->fr); s->fr_open = 0; }
    if (!st) st = lma_report_close(&s->rep, summary);
    lma_curate_sieve_abort(s);
    return st;
}

void lma_curate_sieve_abort(lma_curate_sieve *s) {
    if (s->fo_open) lma_atomic_abort(&s->fo);
    if (s->fr_open) lma_atomic_abort(&s->fr);
    s->fo_open = s->fr_open = 0;
    lma_report_abort(&s->rep);
    lma_buf_free(&s->tmp);
}

int lma_curate_reply_format(const lma_example *ex) {
    const lma_ex_msg *m = NULL;
    for (size_t i = 0; i < ex->n_msgs; i++)
        if (ex->msgs[i].role == LMA_ROLE_ASSISTANT) m = &ex->msgs[i];
    if (ex->n_chosen) m = &ex->chosen[ex->n_chosen - 1];
    if (!m || !m->len) return -1;
    return (int)lma_text_format_of(m->text, m->len);
}
