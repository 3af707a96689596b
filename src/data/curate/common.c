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
    for (size_t i = 0; i < LMA_CURATE_BATCH; i++) { lma_ex_buf_free(&b->text[i]); lma_ex_buf_free(&b->line[i]); }
    b->n = 0;
}

lma_status lma_curate_on_bad(const lma_example *ex, void *vctx) {
    lma_curate_bad *c = vctx;
    c->unreadable++;
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddNumberToObject(o, "line", (double)ex->line);
        cJSON_AddStringToObject(o, "reason", "unreadable");
        cJSON_AddStringToObject(o, "error", ex->error);
    }
    return lma_report_item(c->rep, o);
}
