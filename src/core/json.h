/* JSON on cJSON, with errors that name the file and the field.
 * lma_json_load parses a file (caller frees with cJSON_Delete). The getters
 * return LMA_ERR_FORMAT naming `ctx` (usually the file) and the key when the
 * field has the wrong type; a missing optional field leaves *out unchanged
 * and returns LMA_OK (required ones say so). */
#ifndef LMA_CORE_JSON_H
#define LMA_CORE_JSON_H
#include <cjson/cJSON.h>
#include <stdint.h>
#include "core/status.h"

lma_status lma_json_load(const char *path, cJSON **out);
lma_status lma_json_parse(const char *text, size_t len, const char *ctx, cJSON **out);
lma_status lma_json_int(const cJSON *obj, const char *key, int required, const char *ctx, int64_t *out);
lma_status lma_json_num(const cJSON *obj, const char *key, int required, const char *ctx, double *out);
lma_status lma_json_bool(const cJSON *obj, const char *key, int required, const char *ctx, int *out);
/* Points into obj (no copy); NULL when absent or JSON null. */
lma_status lma_json_str(const cJSON *obj, const char *key, int required, const char *ctx, const char **out);
/* Serializes and writes atomically, pretty-printed, with a trailing newline. */
lma_status lma_json_save(const char *path, const cJSON *obj);
#endif
