/* The JSON cursor of an epoch-shuffled batcher (see cursor.h). */
#include "data/cursor.h"
#include <stdio.h>
#include <stdlib.h>

lma_status lma_epoch_cursor_save(size_t epoch, size_t pos, const char *count_key, size_t n, const lma_rng *rng,
                                 cJSON **out) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return lma_error(LMA_ERR_NOMEM, "out of memory");
    char buf[32];
    cJSON_AddNumberToObject(j, "epoch", (double)epoch);
    cJSON_AddNumberToObject(j, "pos", (double)pos);
    cJSON_AddNumberToObject(j, count_key, (double)n);
    cJSON *r = cJSON_AddArrayToObject(j, "rng");
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof buf, "0x%016llx", (unsigned long long)rng->s[i]);
        cJSON_AddItemToArray(r, cJSON_CreateString(buf));
    }
    *out = j;
    return LMA_OK;
}

lma_status lma_epoch_cursor_restore(const cJSON *j, const char *what, const char *count_key, const char *unit, size_t n,
                                    size_t *epoch, size_t *pos, lma_rng *rng) {
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(j, "epoch"), *ps = cJSON_GetObjectItemCaseSensitive(j, "pos"),
                *nx = cJSON_GetObjectItemCaseSensitive(j, count_key), *r = cJSON_GetObjectItemCaseSensitive(j, "rng");
    if (!cJSON_IsNumber(ep) || !cJSON_IsNumber(ps) || !cJSON_IsNumber(nx) || cJSON_GetArraySize(r) != 4)
        return lma_error(LMA_ERR_FORMAT, "%s cursor: malformed", what);
    if ((size_t)nx->valuedouble != n || ps->valuedouble < 0 || (size_t)ps->valuedouble > n)
        return lma_error(LMA_ERR_FORMAT, "%s cursor: the data set changed (%g %s, now %zu)", what, nx->valuedouble, unit, n);
    lma_rng g;
    for (int i = 0; i < 4; i++) {
        const cJSON *x = cJSON_GetArrayItem(r, i);
        if (!cJSON_IsString(x)) return lma_error(LMA_ERR_FORMAT, "%s cursor: bad rng", what);
        g.s[i] = strtoull(x->valuestring, NULL, 16);
    }
    *rng = g;
    *epoch = (size_t)ep->valuedouble;
    *pos = (size_t)ps->valuedouble;
    return LMA_OK;
}
