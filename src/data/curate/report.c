/* Streaming JSON report (see curate.h). */
#include <stdlib.h>
#include <string.h>
#include "data/curate/curate.h"

static lma_status put(lma_report *r, const char *s) {
    return r->open ? lma_atomic_write(&r->af, s, strlen(s)) : LMA_OK;
}

static lma_status put_json(lma_report *r, const cJSON *j) {
    if (!r->open) return LMA_OK;
    char *s = cJSON_PrintUnformatted(j);
    if (!s) return lma_error(LMA_ERR_NOMEM, "%s: out of memory writing the report", r->af.path);
    lma_status st = put(r, s);
    free(s);
    return st;
}

lma_status lma_report_open(lma_report *r, const char *path, const char *command, const char *input,
                           const char *list_name) {
    memset(r, 0, sizeof *r);
    if (!path) return LMA_OK;
    LMA_TRY(lma_atomic_open(&r->af, path));
    r->open = 1;
    cJSON *c = cJSON_CreateString(command), *i = cJSON_CreateString(input ? input : ""),
          *l = cJSON_CreateString(list_name);
    lma_status s = (c && i && l) ? LMA_OK : lma_error(LMA_ERR_NOMEM, "report: out of memory");
    if (!s) s = put(r, "{\"command\":");
    if (!s) s = put_json(r, c);
    if (!s) s = put(r, ",\"input\":");
    if (!s) s = put_json(r, i);
    if (!s) s = put(r, ",");
    if (!s) s = put_json(r, l);
    if (!s) s = put(r, ":[\n");
    cJSON_Delete(c); cJSON_Delete(i); cJSON_Delete(l);
    if (s) { r->open = 0; } /* lma_atomic_write aborted the file */
    return s;
}

lma_status lma_report_item(lma_report *r, cJSON *item) {
    if (!item) return lma_error(LMA_ERR_NOMEM, "report: out of memory");
    lma_status s = LMA_OK;
    if (r->open) {
        if (r->n_items) s = put(r, ",\n");
        if (!s) s = put_json(r, item);
        if (s) r->open = 0;
    }
    r->n_items++;
    cJSON_Delete(item);
    return s;
}

lma_status lma_report_close(lma_report *r, const cJSON *summary) {
    if (!r->open) return LMA_OK;
    lma_status s = put(r, "\n],\"summary\":");
    if (!s) s = put_json(r, summary);
    if (!s) s = put(r, "}\n");
    if (s) { r->open = 0; return s; }
    r->open = 0;
    return lma_atomic_commit(&r->af);
}

void lma_report_abort(lma_report *r) {
    if (r->open) lma_atomic_abort(&r->af);
    r->open = 0;
}
