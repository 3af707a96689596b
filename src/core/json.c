#include "core/json.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"

lma_status lma_json_parse(const char *text, size_t len, const char *ctx, cJSON **out) {
    const char *end = NULL;
    *out = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!*out) {
        size_t off = end ? (size_t)(end - text) : 0, line = 1;
        for (size_t i = 0; i < off && i < len; i++) line += text[i] == '\n';
        return lma_error(LMA_ERR_FORMAT, "%s: malformed JSON near line %zu (byte %zu)", ctx, line, off);
    }
    return LMA_OK;
}

lma_status lma_json_load(const char *path, cJSON **out) {
    char *text; size_t len;
    *out = NULL;
    LMA_TRY(lma_read_file_max(path, LMA_LIMIT_JSON, &text, &len));
    lma_status s = lma_json_parse(text, len, path, out);
    free(text);
    return s;
}

static const cJSON *field(const cJSON *obj, const char *key, int required, const char *ctx, lma_status *s) {
    *s = LMA_OK;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if ((!it || cJSON_IsNull(it)) && required)
        *s = lma_error(LMA_ERR_FORMAT, "%s: missing required field \"%s\"", ctx, key);
    return (it && !cJSON_IsNull(it)) ? it : NULL;
}

lma_status lma_json_int(const cJSON *obj, const char *key, int required, const char *ctx, int64_t *out) {
    lma_status s; const cJSON *it = field(obj, key, required, ctx, &s);
    if (!it) return s;
    double v = it->valuedouble;
    if (!cJSON_IsNumber(it) || v != floor(v) || fabs(v) > 9.007199254740992e15)
        return lma_error(LMA_ERR_FORMAT, "%s: field \"%s\" must be an integer", ctx, key);
    *out = (int64_t)v;
    return LMA_OK;
}

lma_status lma_json_num(const cJSON *obj, const char *key, int required, const char *ctx, double *out) {
    lma_status s; const cJSON *it = field(obj, key, required, ctx, &s);
    if (!it) return s;
    if (!cJSON_IsNumber(it)) return lma_error(LMA_ERR_FORMAT, "%s: field \"%s\" must be a number", ctx, key);
    *out = it->valuedouble;
    return LMA_OK;
}

lma_status lma_json_bool(const cJSON *obj, const char *key, int required, const char *ctx, int *out) {
    lma_status s; const cJSON *it = field(obj, key, required, ctx, &s);
    if (!it) return s;
    if (!cJSON_IsBool(it)) return lma_error(LMA_ERR_FORMAT, "%s: field \"%s\" must be true or false", ctx, key);
    *out = cJSON_IsTrue(it);
    return LMA_OK;
}

lma_status lma_json_str(const cJSON *obj, const char *key, int required, const char *ctx, const char **out) {
    lma_status s; const cJSON *it = field(obj, key, required, ctx, &s);
    if (!it) { if (s == LMA_OK) *out = NULL; return s; }
    if (!cJSON_IsString(it)) return lma_error(LMA_ERR_FORMAT, "%s: field \"%s\" must be a string", ctx, key);
    *out = it->valuestring;
    return LMA_OK;
}

lma_status lma_json_save(const char *path, const cJSON *obj) {
    char *text = cJSON_Print(obj);
    if (!text) return lma_error(LMA_ERR_NOMEM, "%s: cannot serialize JSON", path);
    size_t n = strlen(text);
    lma_atomic_file af;
    lma_status s = lma_atomic_open(&af, path);
    if (s == LMA_OK) s = lma_atomic_write(&af, text, n);
    if (s == LMA_OK) s = lma_atomic_write(&af, "\n", 1);
    if (s == LMA_OK) s = lma_atomic_commit(&af);
    free(text);
    return s;
}
