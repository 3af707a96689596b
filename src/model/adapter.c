/* PEFT adapter directories (see adapter.h). */
#include "model/adapter.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/arena.h"
#include "core/io.h"
#include "core/json.h"
#include "model/safetensors.h"

/* rope_scaling.json: the RoPE scaling the adapter was trained with (a run with --rope-scaling),
 * which adapter_config.json has no field for: {"lmadapt": "rope_scaling", "spec": "yarn:2",
 * "rope_scaling": {config.json's value}, "max_position_embeddings": N}. "spec" is what
 * lma_adapter_load applies (lma_model_set_rope_scaling: a no-op on a base that has it already);
 * the rest tells a reader (or a transformers user) what to put in the base's config.json. */
static lma_status save_rope(const lma_model *m, const char *dir) {
    const lma_config *c = &m->cfg;
    char path[4200], spec[64];
    LMA_TRY(lma_path_join(path, sizeof path, dir, LMA_ADAPTER_ROPE_FILE));
    if (c->rope_type == LMA_ROPE_DEFAULT) { /* an earlier adapter's, saved to the same dir */
        if (unlink(path) != 0 && errno != ENOENT) return lma_error(LMA_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        return LMA_OK;
    }
    snprintf(spec, sizeof spec, "%s:%.17g", lma_rope_type_name(c->rope_type), c->rope_factor);
    cJSON *j = cJSON_CreateObject();
    if (!j) return lma_error(LMA_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(j, "lmadapt", "rope_scaling");
    cJSON_AddStringToObject(j, "spec", spec);
    cJSON_AddItemToObject(j, "rope_scaling", lma_config_rope_json(c));
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_position_embeddings);
    lma_status s = lma_json_save(path, j);
    cJSON_Delete(j);
    return s;
}

/* applies dir/rope_scaling.json when there is one */
static lma_status load_rope(lma_model *m, const char *dir) {
    char path[4200];
    LMA_TRY(lma_path_join(path, sizeof path, dir, LMA_ADAPTER_ROPE_FILE));
    if (!lma_file_exists(path)) return LMA_OK;
    cJSON *j = NULL;
    LMA_TRY(lma_json_load(path, &j));
    const char *spec = NULL;
    lma_status s = lma_json_str(j, "spec", 1, path, &spec);
    if (s == LMA_OK && lma_model_set_rope_scaling(m, spec) != LMA_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", lma_last_error());
        s = lma_error(LMA_ERR_UNSUPPORTED, "%s: the adapter was trained with rope scaling \"%s\": %s", path, spec, why);
    }
    cJSON_Delete(j);
    return s;
}

lma_status lma_adapter_save(const lma_model *m, const char *dir, const char *base_name) {
    const lma_lora *lo = m->lora;
    if (!lo) return lma_error(LMA_ERR_ARG, "%s: the model has no LoRA adapter to save", dir);
    char path[4200];
    LMA_TRY(lma_mkdir_p(dir));
    cJSON *j = cJSON_CreateObject();
    if (!j) return lma_error(LMA_ERR_NOMEM, "out of memory");
    cJSON_AddObjectToObject(j, "alpha_pattern");
    if (base_name) cJSON_AddStringToObject(j, "base_model_name_or_path", base_name);
    else cJSON_AddNullToObject(j, "base_model_name_or_path");
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddBoolToObject(j, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(j, "inference_mode", 1);
    cJSON_AddBoolToObject(j, "init_lora_weights", 1);
    cJSON_AddNullToObject(j, "layers_pattern");
    cJSON_AddNullToObject(j, "layers_to_transform");
    cJSON_AddNumberToObject(j, "lora_alpha", lo->p.alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", lo->p.dropout);
    cJSON_AddNullToObject(j, "modules_to_save");
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddNumberToObject(j, "r", lo->p.r);
    cJSON_AddObjectToObject(j, "rank_pattern");
    cJSON_AddNullToObject(j, "revision");
    cJSON *t = cJSON_AddArrayToObject(j, "target_modules");
    for (int p = 0; p < LMA_PROJ_COUNT; p++)
        if (lo->p.targets >> p & 1u) cJSON_AddItemToArray(t, cJSON_CreateString(lma_proj_name((lma_proj)p)));
    cJSON_AddStringToObject(j, "task_type", "CAUSAL_LM");
    cJSON_AddBoolToObject(j, "use_dora", 0);
    cJSON_AddBoolToObject(j, "use_rslora", lo->p.rslora);
    lma_status s = lma_path_join(path, sizeof path, dir, "adapter_config.json");
    if (s == LMA_OK) s = lma_json_save(path, j);
    cJSON_Delete(j);
    if (s == LMA_OK) s = save_rope(m, dir);
    if (s != LMA_OK) return s;

    int n = lo->table.count;
    float *h = lma_malloc(lo->table.total * sizeof(float) + 1, "adapter staging");
    lma_st_entry *e = lma_calloc((size_t)n + 1, sizeof *e, "adapter entries");
    if (!h || !e) { free(h); free(e); return LMA_ERR_NOMEM; }
    m->be->download(h, lo->params, lo->table.total * sizeof(float));
    for (int i = 0; i < n; i++) {
        const lma_param_info *p = &lo->table.info[i];
        e[i].name = p->name;
        e[i].ndim = 2;
        e[i].shape[0] = p->shape[0];
        e[i].shape[1] = p->shape[1];
        e[i].data = h + p->offset;
    }
    s = lma_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    if (s == LMA_OK) s = lma_st_save(path, e, n, LMA_DT_F32);
    free(h);
    free(e);
    return s;
}

/* The projection named by a target_modules entry ("q_proj", or a dotted name
 * ending in it), or -1. */
static int target_proj(const char *name) {
    const char *dot = strrchr(name, '.');
    const char *base = dot ? dot + 1 : name;
    for (int p = 0; p < LMA_PROJ_COUNT; p++)
        if (!strcmp(base, lma_proj_name((lma_proj)p))) return p;
    return -1;
}

static int is_empty(const cJSON *x) {
    return !x || cJSON_IsNull(x) || (cJSON_IsObject(x) && !x->child) || (cJSON_IsArray(x) && !x->child) ||
           (cJSON_IsBool(x) && cJSON_IsFalse(x));
}

lma_status lma_adapter_read_config(const char *dir, lma_lora_params *p) {
    char path[4200];
    LMA_TRY(lma_path_join(path, sizeof path, dir, "adapter_config.json"));
    cJSON *j = NULL;
    LMA_TRY(lma_json_load(path, &j));
    *p = lma_lora_default_params();
    p->targets = 0;
    const char *type = NULL, *bias = NULL;
    int64_t r = 8;
    double alpha = 8, dropout = 0;
    int rs = 0, dora = 0, fifo = 0;
    lma_status s = lma_json_str(j, "peft_type", 1, path, &type);
    if (s == LMA_OK && type && strcmp(type, "LORA"))
        s = lma_error(LMA_ERR_UNSUPPORTED, "%s: peft_type '%s' (only LORA adapters are supported)", path, type);
    if (s == LMA_OK) s = lma_json_int(j, "r", 0, path, &r);
    if (s == LMA_OK) s = lma_json_num(j, "lora_alpha", 0, path, &alpha);
    if (s == LMA_OK) s = lma_json_num(j, "lora_dropout", 0, path, &dropout);
    if (s == LMA_OK) s = lma_json_bool(j, "use_rslora", 0, path, &rs);
    if (s == LMA_OK) s = lma_json_bool(j, "use_dora", 0, path, &dora);
    if (s == LMA_OK) s = lma_json_bool(j, "fan_in_fan_out", 0, path, &fifo);
    if (s == LMA_OK) s = lma_json_str(j, "bias", 0, path, &bias);
    if (s == LMA_OK && (r < 1 || r > 65536)) s = lma_error(LMA_ERR_FORMAT, "%s: r = %lld is out of range", path, (long long)r);
    if (s == LMA_OK && (!isfinite(alpha) || !(dropout >= 0 && dropout < 1)))
        s = lma_error(LMA_ERR_FORMAT, "%s: lora_alpha or lora_dropout out of range", path);
    if (s == LMA_OK && dora) s = lma_error(LMA_ERR_UNSUPPORTED, "%s: use_dora (DoRA) is not supported", path);
    if (s == LMA_OK && fifo) s = lma_error(LMA_ERR_UNSUPPORTED, "%s: fan_in_fan_out is not supported", path);
    if (s == LMA_OK && bias && strcmp(bias, "none"))
        s = lma_error(LMA_ERR_UNSUPPORTED, "%s: bias '%s' (only \"none\" is supported)", path, bias);
    static const char *unsupported[] = {"rank_pattern", "alpha_pattern", "layers_to_transform", "modules_to_save",
                                        "exclude_modules", "trainable_token_indices", "lora_bias",
                                        "target_parameters", "layer_replication", "use_qalora"};
    for (size_t i = 0; s == LMA_OK && i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (!is_empty(cJSON_GetObjectItemCaseSensitive(j, unsupported[i])))
            s = lma_error(LMA_ERR_UNSUPPORTED, "%s: '%s' is set (not supported)", path, unsupported[i]);
    const cJSON *tm = j ? cJSON_GetObjectItemCaseSensitive(j, "target_modules") : NULL, *it;
    if (s == LMA_OK) {
        if (cJSON_IsString(tm)) {
            int k = target_proj(tm->valuestring);
            if (!strcmp(tm->valuestring, "all-linear")) p->targets = LMA_LORA_ALL;
            else if (k >= 0) p->targets = 1u << k;
            else s = lma_error(LMA_ERR_UNSUPPORTED, "%s: target_modules '%s' (regular expressions are not supported; "
                               "give a list)", path, tm->valuestring);
        } else if (cJSON_IsArray(tm)) {
            cJSON_ArrayForEach(it, tm) {
                int k = cJSON_IsString(it) ? target_proj(it->valuestring) : -1;
                if (k < 0) {
                    s = lma_error(LMA_ERR_UNSUPPORTED, "%s: target_modules entry '%s' is not one of q_proj, k_proj, "
                                  "v_proj, o_proj, gate_proj, up_proj, down_proj", path,
                                  cJSON_IsString(it) ? it->valuestring : "(not a string)");
                    break;
                }
                p->targets |= 1u << k;
            }
            if (s == LMA_OK && !p->targets) s = lma_error(LMA_ERR_FORMAT, "%s: target_modules is empty", path);
        } else {
            s = lma_error(LMA_ERR_FORMAT, "%s: target_modules must be a list of module names", path);
        }
    }
    p->r = (int)r;
    p->alpha = (float)alpha;
    p->dropout = (float)dropout;
    p->rslora = rs;
    cJSON_Delete(j);
    return s;
}

lma_status lma_adapter_load_weights(lma_model *m, const char *dir) {
    lma_lora *lo = m->lora;
    if (!lo) return lma_error(LMA_ERR_ARG, "%s: the model has no LoRA adapter to load into", dir);
    char path[4200];
    LMA_TRY(lma_path_join(path, sizeof path, dir, "adapter_model.safetensors"));
    if (!lma_file_exists(path)) {
        char bin[4200];
        if (lma_path_join(bin, sizeof bin, dir, "adapter_model.bin") == LMA_OK && lma_file_exists(bin))
            return lma_error(LMA_ERR_UNSUPPORTED, "%s: legacy adapter_model.bin (pickle) is not supported; re-save "
                             "with safe_serialization=True", bin);
    }
    lma_st_file *f = NULL;
    LMA_TRY(lma_st_open(path, &f));
    lma_status s = LMA_OK;
    float *stage = NULL;
    char *seen = calloc((size_t)lo->table.count + 1, 1);
    if (!seen) { lma_st_close(f); return lma_error(LMA_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < lma_st_count(f) && s == LMA_OK; i++) {
        const lma_st_tensor *t = lma_st_get(f, i);
        const lma_param_info *p = lma_params_find(&lo->table, t->name);
        if (!p) {
            s = lma_error(LMA_ERR_FORMAT, "%s: unexpected tensor '%s' (not an adapted projection of adapter_config.json "
                          "for this model)", path, t->name);
            break;
        }
        if (t->ndim != 2 || t->shape[0] != p->shape[0] || t->shape[1] != p->shape[1]) {
            s = lma_error(LMA_ERR_SHAPE, "%s: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", path, t->name,
                          (long long)t->shape[0], t->ndim > 1 ? (long long)t->shape[1] : 0LL, (long long)p->shape[0],
                          (long long)p->shape[1]);
            break;
        }
        float *tmp = realloc(stage, p->numel * sizeof(float));
        if (!tmp) { s = lma_error(LMA_ERR_NOMEM, "out of memory"); break; }
        stage = tmp;
        s = lma_st_read_f32(t, stage, p->numel);
        if (s == LMA_OK) s = lma_params_check_finite(stage, p->numel, path, p->name);
        if (s == LMA_OK) m->be->upload(lo->params + p->offset, stage, p->numel * sizeof(float));
        seen[p - lo->table.info] = 1;
    }
    for (int i = 0; i < lo->table.count && s == LMA_OK; i++)
        if (!seen[i]) s = lma_error(LMA_ERR_FORMAT, "%s: missing tensor '%s'", path, lo->table.info[i].name);
    if (s == LMA_OK) lma_model_sync_weights(m); /* the compute copy of the loaded masters */
    free(seen);
    free(stage);
    lma_st_close(f);
    return s;
}

lma_status lma_adapter_load(lma_model *m, const char *dir) {
    lma_lora_params p;
    LMA_TRY(lma_adapter_read_config(dir, &p));
    LMA_TRY(lma_lora_attach(m, &p, 0));
    lma_status s = lma_adapter_load_weights(m, dir);
    if (s == LMA_OK) s = load_rope(m, dir);
    if (s != LMA_OK) lma_lora_detach(m);
    return s;
}
