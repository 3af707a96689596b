/* HF config.json for Llama-family causal LMs (docs/formats.md "config.json"): parse (classic
 * rope_theta/rope_scaling form and the transformers-v5 rope_parameters form),
 * save (classic form), and the RoPE inverse frequencies (HF modeling_rope_utils:
 * default, linear, llama3). Defaults follow the transformers config classes. */
#include "model/config.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"
#include "core/json.h"

static const char *arch_names[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"};
/* the same architectures saved as base models (AutoModel; e.g. Qwen3-Embedding) */
static const char *base_names[] = {"LlamaModel", "MistralModel", "Qwen2Model", "Qwen3Model"};
static const char *model_types[] = {"llama", "mistral", "qwen2", "qwen3"};

const char *lma_arch_name(lma_arch a) { return (unsigned)a < 4 ? arch_names[a] : "?"; }
const char *lma_arch_model_type(lma_arch a) { return (unsigned)a < 4 ? model_types[a] : "?"; }

/* An integer field in [lo, hi]; absent leaves *out unchanged unless required. */
static lma_status get_int(const cJSON *o, const char *key, int required, const char *ctx, int lo, int hi, int *out) {
    int64_t v;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!required && (!it || cJSON_IsNull(it))) return LMA_OK;
    LMA_TRY(lma_json_int(o, key, required, ctx, &v));
    if (v < lo || v > hi)
        return lma_error(LMA_ERR_FORMAT, "%s: field \"%s\" = %lld is out of range [%d, %d]", ctx, key, (long long)v, lo, hi);
    *out = (int)v;
    return LMA_OK;
}

/* A finite number > 0 (or >= 0 when allow_zero). */
static lma_status get_pos(const cJSON *o, const char *key, const char *ctx, int allow_zero, double *out) {
    double v = *out;
    LMA_TRY(lma_json_num(o, key, 0, ctx, &v));
    if (!isfinite(v) || v < 0 || (!allow_zero && v == 0))
        return lma_error(LMA_ERR_FORMAT, "%s: field \"%s\" = %g must be a finite number %s 0", ctx, key, v, allow_zero ? ">=" : ">");
    *out = v;
    return LMA_OK;
}

static int find_name(const char *s, const char *const *names) {
    for (int i = 0; i < 4; i++) if (!strcmp(s, names[i])) return i;
    return -1;
}

static lma_status parse_arch(const cJSON *root, const char *ctx, lma_arch *arch) {
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const char *mt = NULL;
    LMA_TRY(lma_json_str(root, "model_type", 0, ctx, &mt));
    int a = -1, m = -1;
    if (archs && !cJSON_IsNull(archs)) {
        if (!cJSON_IsArray(archs) || cJSON_GetArraySize(archs) < 1 || !cJSON_IsString(archs->child))
            return lma_error(LMA_ERR_FORMAT, "%s: field \"architectures\" must be a list of class names", ctx);
        if (cJSON_GetArraySize(archs) != 1)
            return lma_error(LMA_ERR_UNSUPPORTED, "%s: field \"architectures\" lists %d classes; lmadapt supports exactly one",
                             ctx, cJSON_GetArraySize(archs));
        a = find_name(archs->child->valuestring, arch_names);
        if (a < 0) a = find_name(archs->child->valuestring, base_names);
        if (a < 0)
            return lma_error(LMA_ERR_UNSUPPORTED, "%s: architectures = \"%s\" is not supported (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)",
                             ctx, archs->child->valuestring);
    }
    if (mt) {
        m = find_name(mt, model_types);
        if (m < 0 && a < 0)
            return lma_error(LMA_ERR_UNSUPPORTED, "%s: model_type = \"%s\" is not supported (llama, mistral, qwen2, qwen3)", ctx, mt);
        if (m >= 0 && a >= 0 && m != a)
            return lma_error(LMA_ERR_FORMAT, "%s: model_type = \"%s\" disagrees with architectures = \"%s\"", ctx, mt, arch_names[a]);
        if (m < 0)
            return lma_error(LMA_ERR_UNSUPPORTED, "%s: model_type = \"%s\" is not supported (llama, mistral, qwen2, qwen3)", ctx, mt);
    }
    if (a < 0 && m < 0)
        return lma_error(LMA_ERR_FORMAT, "%s: missing both \"architectures\" and \"model_type\"", ctx);
    *arch = (lma_arch)(a >= 0 ? a : m);
    return LMA_OK;
}

/* rope: classic (rope_theta + rope_scaling) or v5 (rope_parameters). */
static lma_status parse_rope(const cJSON *root, const char *ctx, lma_config *c) {
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    const char *where = "rope_parameters";
    c->rope_theta = 10000.0;
    LMA_TRY(get_pos(root, "rope_theta", ctx, 0, &c->rope_theta));
    if (!rp || cJSON_IsNull(rp)) { rp = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling"); where = "rope_scaling"; }
    if (!rp || cJSON_IsNull(rp)) return LMA_OK;
    if (!cJSON_IsObject(rp)) return lma_error(LMA_ERR_FORMAT, "%s: field \"%s\" must be an object or null", ctx, where);
    char sub[512];
    snprintf(sub, sizeof sub, "%s: %s", ctx, where);
    const char *rt = NULL, *ty = NULL;
    LMA_TRY(lma_json_str(rp, "rope_type", 0, sub, &rt));
    LMA_TRY(lma_json_str(rp, "type", 0, sub, &ty));
    if (rt && ty && strcmp(rt, ty))
        return lma_error(LMA_ERR_FORMAT, "%s: field \"%s\" has rope_type \"%s\" but type \"%s\"", ctx, where, rt, ty);
    if (!rt) rt = ty ? ty : "default";
    LMA_TRY(get_pos(rp, "rope_theta", sub, 0, &c->rope_theta));
    double prf = 1.0;
    LMA_TRY(get_pos(rp, "partial_rotary_factor", sub, 0, &prf));
    if (prf != 1.0)
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: %s.partial_rotary_factor = %g is not supported (only 1.0)", ctx, where, prf);
    if (!strcmp(rt, "default")) { c->rope_type = LMA_ROPE_DEFAULT; return LMA_OK; }
    if (!strcmp(rt, "linear")) c->rope_type = LMA_ROPE_LINEAR;
    else if (!strcmp(rt, "llama3")) c->rope_type = LMA_ROPE_LLAMA3;
    else if (!strcmp(rt, "dynamic")) c->rope_type = LMA_ROPE_DYNAMIC;
    else if (!strcmp(rt, "yarn")) c->rope_type = LMA_ROPE_YARN;
    else return lma_error(LMA_ERR_UNSUPPORTED, "%s: %s.rope_type = \"%s\" is not supported (default, linear, dynamic, yarn, "
                          "llama3)", ctx, where, rt);
    const cJSON *fac = cJSON_GetObjectItemCaseSensitive(rp, "factor");
    if (c->rope_type == LMA_ROPE_YARN) {
        c->rope_original_max_pos = c->max_position_embeddings;
        LMA_TRY(get_int(rp, "original_max_position_embeddings", 0, sub, 1, INT_MAX, &c->rope_original_max_pos));
        if (!fac || cJSON_IsNull(fac)) c->rope_factor = (double)c->max_position_embeddings / c->rope_original_max_pos;
        else LMA_TRY(get_pos(rp, "factor", sub, 0, &c->rope_factor));
        double ms = 0, msa = 0;
        if (cJSON_GetObjectItemCaseSensitive(rp, "mscale")) LMA_TRY(get_pos(rp, "mscale", sub, 0, &ms));
        if (cJSON_GetObjectItemCaseSensitive(rp, "mscale_all_dim")) LMA_TRY(get_pos(rp, "mscale_all_dim", sub, 0, &msa));
        double f = c->rope_factor;
#define YARN_MSCALE(m) (f <= 1 ? 1.0 : 0.1 * (m) * log(f) + 1.0)
        c->rope_attention_factor = ms && msa ? YARN_MSCALE(ms) / YARN_MSCALE(msa) : YARN_MSCALE(1.0);
#undef YARN_MSCALE
        const cJSON *af = cJSON_GetObjectItemCaseSensitive(rp, "attention_factor");
        if (af && !cJSON_IsNull(af)) LMA_TRY(get_pos(rp, "attention_factor", sub, 0, &c->rope_attention_factor));
        c->rope_beta_fast = 32; c->rope_beta_slow = 1;
        const cJSON *bf = cJSON_GetObjectItemCaseSensitive(rp, "beta_fast"), *bs = cJSON_GetObjectItemCaseSensitive(rp, "beta_slow");
        if (bf && !cJSON_IsNull(bf)) LMA_TRY(get_pos(rp, "beta_fast", sub, 0, &c->rope_beta_fast));
        if (bs && !cJSON_IsNull(bs)) LMA_TRY(get_pos(rp, "beta_slow", sub, 0, &c->rope_beta_slow));
        c->rope_truncate = 1;
        LMA_TRY(lma_json_bool(rp, "truncate", 0, sub, &c->rope_truncate));
        return LMA_OK;
    }
    if (!fac)
        return lma_error(LMA_ERR_FORMAT, "%s: %s: missing required field \"factor\" for rope_type %s", ctx, where, rt);
    LMA_TRY(get_pos(rp, "factor", sub, 0, &c->rope_factor));
    if (c->rope_type == LMA_ROPE_LINEAR || c->rope_type == LMA_ROPE_DYNAMIC) return LMA_OK;
    static const char *req[] = {"low_freq_factor", "high_freq_factor"};
    for (int i = 0; i < 2; i++)
        if (!cJSON_GetObjectItemCaseSensitive(rp, req[i]))
            return lma_error(LMA_ERR_FORMAT, "%s: %s: missing required field \"%s\" for rope_type llama3", ctx, where, req[i]);
    LMA_TRY(get_pos(rp, "low_freq_factor", sub, 0, &c->rope_low_freq_factor));
    LMA_TRY(get_pos(rp, "high_freq_factor", sub, 0, &c->rope_high_freq_factor));
    if (!(c->rope_high_freq_factor > c->rope_low_freq_factor))
        return lma_error(LMA_ERR_FORMAT, "%s: %s.high_freq_factor (%g) must exceed low_freq_factor (%g)", ctx, where,
                         c->rope_high_freq_factor, c->rope_low_freq_factor);
    c->rope_original_max_pos = c->max_position_embeddings; /* transformers' fallback */
    LMA_TRY(get_int(rp, "original_max_position_embeddings", 0, sub, 1, INT_MAX, &c->rope_original_max_pos));
    return LMA_OK;
}

static lma_status parse_tokens(const cJSON *root, const char *ctx, lma_config *c) {
    LMA_TRY(get_int(root, "bos_token_id", 0, ctx, 0, INT_MAX, &c->bos_token_id));
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    if (eos && cJSON_IsNull(eos)) { c->n_eos = 0; }
    else if (eos && cJSON_IsArray(eos)) {
        int n = cJSON_GetArraySize(eos);
        if (n > LMA_MAX_EOS)
            return lma_error(LMA_ERR_UNSUPPORTED, "%s: field \"eos_token_id\" lists %d ids (lmadapt keeps at most %d)", ctx, n, LMA_MAX_EOS);
        int i = 0;
        for (const cJSON *it = eos->child; it; it = it->next, i++) {
            double v = it->valuedouble;
            if (!cJSON_IsNumber(it) || v != floor(v) || v < 0 || v > INT_MAX)
                return lma_error(LMA_ERR_FORMAT, "%s: field \"eos_token_id\"[%d] must be a non-negative integer", ctx, i);
            c->eos_token_ids[i] = (int)v;
        }
        c->n_eos = n;
    } else if (eos) {
        int v = 0;
        LMA_TRY(get_int(root, "eos_token_id", 1, ctx, 0, INT_MAX, &v));
        c->eos_token_ids[0] = v; c->n_eos = 1;
    }
    return LMA_OK;
}

static lma_status parse_obj(const cJSON *root, const char *ctx, lma_config *c) {
    if (!cJSON_IsObject(root)) return lma_error(LMA_ERR_FORMAT, "%s: config is not a JSON object", ctx);
    memset(c, 0, sizeof *c);
    LMA_TRY(parse_arch(root, ctx, &c->arch));
    const int big = 1 << 30;
    LMA_TRY(get_int(root, "vocab_size", 1, ctx, 1, big, &c->vocab_size));
    LMA_TRY(get_int(root, "hidden_size", 1, ctx, 1, big, &c->hidden_size));
    LMA_TRY(get_int(root, "intermediate_size", 1, ctx, 1, big, &c->intermediate_size));
    LMA_TRY(get_int(root, "num_hidden_layers", 1, ctx, 1, 1 << 16, &c->n_layers));
    LMA_TRY(get_int(root, "num_attention_heads", 1, ctx, 1, 1 << 16, &c->n_heads));
    c->n_kv_heads = c->n_heads;
    LMA_TRY(get_int(root, "num_key_value_heads", 0, ctx, 1, 1 << 16, &c->n_kv_heads));
    if (c->n_heads % c->n_kv_heads)
        return lma_error(LMA_ERR_FORMAT, "%s: num_key_value_heads = %d does not divide num_attention_heads = %d", ctx, c->n_kv_heads, c->n_heads);
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(root, "head_dim");
    if (hd && !cJSON_IsNull(hd)) {
        LMA_TRY(get_int(root, "head_dim", 1, ctx, 1, 1 << 16, &c->head_dim));
    } else {
        if (c->hidden_size % c->n_heads)
            return lma_error(LMA_ERR_FORMAT, "%s: num_attention_heads = %d does not divide hidden_size = %d (and no head_dim is given)", ctx, c->n_heads, c->hidden_size);
        c->head_dim = c->hidden_size / c->n_heads;
    }
    if (c->head_dim % 2)
        return lma_error(LMA_ERR_FORMAT, "%s: head_dim = %d must be even for rotary embeddings", ctx, c->head_dim);
    if ((long long)c->n_heads * c->head_dim > big)
        return lma_error(LMA_ERR_FORMAT, "%s: num_attention_heads * head_dim is too large", ctx);

    static const int max_pos[] = {2048, 131072, 32768, 32768};
    c->max_position_embeddings = max_pos[c->arch];
    LMA_TRY(get_int(root, "max_position_embeddings", 0, ctx, 1, INT_MAX, &c->max_position_embeddings));
    c->rms_norm_eps = 1e-6;
    LMA_TRY(get_pos(root, "rms_norm_eps", ctx, 1, &c->rms_norm_eps));
    LMA_TRY(parse_rope(root, ctx, c));

    const char *act = "silu";
    LMA_TRY(lma_json_str(root, "hidden_act", 0, ctx, &act));
    if (!act) act = "silu";
    if (strcmp(act, "silu"))
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: hidden_act = \"%s\" is not supported (only \"silu\")", ctx, act);
    int mlp_bias = 0, attn_bias = 0;
    LMA_TRY(lma_json_bool(root, "mlp_bias", 0, ctx, &mlp_bias));
    if (mlp_bias) return lma_error(LMA_ERR_UNSUPPORTED, "%s: mlp_bias = true is not supported", ctx);
    LMA_TRY(lma_json_bool(root, "attention_bias", 0, ctx, &attn_bias));
    LMA_TRY(lma_json_bool(root, "tie_word_embeddings", 0, ctx, &c->tie_word_embeddings));
    if (c->arch == LMA_ARCH_QWEN2) { c->qkv_bias = 1; c->o_bias = 0; }
    else { c->qkv_bias = c->o_bias = attn_bias; }
    c->qk_norm = c->arch == LMA_ARCH_QWEN3;

    /* Sliding window: Mistral records it; Qwen supports only full attention. */
    if (c->arch == LMA_ARCH_MISTRAL) {
        LMA_TRY(get_int(root, "sliding_window", 0, ctx, 1, INT_MAX, &c->sliding_window));
    } else if (c->arch == LMA_ARCH_QWEN2 || c->arch == LMA_ARCH_QWEN3) {
        int use = 0;
        LMA_TRY(lma_json_bool(root, "use_sliding_window", 0, ctx, &use));
        if (use) return lma_error(LMA_ERR_UNSUPPORTED, "%s: use_sliding_window = true is not supported", ctx);
    }
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt)) return lma_error(LMA_ERR_FORMAT, "%s: field \"layer_types\" must be a list", ctx);
        int i = 0;
        for (const cJSON *it = lt->child; it; it = it->next, i++) {
            if (!cJSON_IsString(it)) return lma_error(LMA_ERR_FORMAT, "%s: field \"layer_types\"[%d] must be a string", ctx, i);
            if (strcmp(it->valuestring, "full_attention"))
                return lma_error(LMA_ERR_UNSUPPORTED, "%s: layer_types[%d] = \"%s\" is not supported (only full_attention)", ctx, i, it->valuestring);
        }
    }

    /* Llama and Mistral classes default to bos 1 / eos 2; Qwen to none. */
    int llama_like = c->arch == LMA_ARCH_LLAMA || c->arch == LMA_ARCH_MISTRAL;
    c->bos_token_id = llama_like ? 1 : -1;
    if (llama_like) { c->eos_token_ids[0] = 2; c->n_eos = 1; }
    const cJSON *bos = cJSON_GetObjectItemCaseSensitive(root, "bos_token_id");
    if (bos && cJSON_IsNull(bos)) c->bos_token_id = -1;
    LMA_TRY(parse_tokens(root, ctx, c));

    const char *dt = NULL;
    LMA_TRY(lma_json_str(root, "torch_dtype", 0, ctx, &dt));
    if (!dt) LMA_TRY(lma_json_str(root, "dtype", 0, ctx, &dt));
    if (dt) {
        if (strlen(dt) >= sizeof c->torch_dtype)
            return lma_error(LMA_ERR_FORMAT, "%s: field \"torch_dtype\" = \"%.40s\" is not a dtype name", ctx, dt);
        strcpy(c->torch_dtype, dt);
    }
    return LMA_OK;
}

lma_status lma_config_parse(const char *json, size_t len, const char *ctx, lma_config *c) {
    if (!ctx) ctx = "config.json";
    cJSON *root;
    LMA_TRY(lma_json_parse(json, len, ctx, &root));
    lma_status s = parse_obj(root, ctx, c);
    cJSON_Delete(root);
    return s;
}

lma_status lma_config_load(const char *path, lma_config *c) {
    char p[4096];
    const char *file = path;
    if (lma_is_dir(path)) { LMA_TRY(lma_path_join(p, sizeof p, path, "config.json")); file = p; }
    char *text; size_t len;
    LMA_TRY(lma_read_file_max(file, LMA_LIMIT_JSON, &text, &len));
    lma_status s = lma_config_parse(text, len, file, c);
    free(text);
    return s;
}

/* ---- save ---------------------------------------------------------------------- */

static lma_status check_savable(const char *path, const lma_config *c) {
    if ((unsigned)c->arch > LMA_ARCH_QWEN3) return lma_error(LMA_ERR_ARG, "%s: bad arch %d", path, (int)c->arch);
    if (c->vocab_size < 1 || c->hidden_size < 1 || c->intermediate_size < 1 || c->n_layers < 1 || c->n_heads < 1 ||
        c->n_kv_heads < 1 || c->head_dim < 1 || c->n_heads % c->n_kv_heads || c->max_position_embeddings < 1)
        return lma_error(LMA_ERR_ARG, "%s: config has a non-positive or inconsistent size", path);
    if (c->arch == LMA_ARCH_QWEN2 ? (c->qkv_bias != 1 || c->o_bias != 0) : (!c->qkv_bias != !c->o_bias))
        return lma_error(LMA_ERR_ARG, "%s: qkv_bias=%d o_bias=%d cannot be expressed for %s", path, c->qkv_bias, c->o_bias, lma_arch_name(c->arch));
    if (!c->qk_norm != (c->arch != LMA_ARCH_QWEN3))
        return lma_error(LMA_ERR_ARG, "%s: qk_norm=%d cannot be expressed for %s", path, c->qk_norm, lma_arch_name(c->arch));
    if (c->sliding_window && c->arch != LMA_ARCH_MISTRAL)
        return lma_error(LMA_ERR_ARG, "%s: sliding_window is only written for Mistral", path);
    if (c->n_eos < 0 || c->n_eos > LMA_MAX_EOS || (unsigned)c->rope_type > LMA_ROPE_YARN)
        return lma_error(LMA_ERR_ARG, "%s: bad eos count or rope type", path);
    return LMA_OK;
}

const char *lma_rope_type_name(int rope_type) {
    static const char *const names[] = {"default", "linear", "llama3", "dynamic", "yarn"};
    return rope_type >= 0 && rope_type < (int)(sizeof names / sizeof *names) ? names[rope_type] : "?";
}

struct cJSON *lma_config_rope_json(const lma_config *c) {
    if (c->rope_type == LMA_ROPE_DEFAULT) return cJSON_CreateNull();
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "rope_type", lma_rope_type_name(c->rope_type));
    cJSON_AddNumberToObject(x, "factor", c->rope_factor);
    if (c->rope_type == LMA_ROPE_YARN) {
        cJSON_AddNumberToObject(x, "original_max_position_embeddings", c->rope_original_max_pos);
        cJSON_AddNumberToObject(x, "attention_factor", c->rope_attention_factor);
        cJSON_AddNumberToObject(x, "beta_fast", c->rope_beta_fast);
        cJSON_AddNumberToObject(x, "beta_slow", c->rope_beta_slow);
        if (!c->rope_truncate) cJSON_AddFalseToObject(x, "truncate");
    }
    if (c->rope_type == LMA_ROPE_LLAMA3) {
        cJSON_AddNumberToObject(x, "low_freq_factor", c->rope_low_freq_factor);
        cJSON_AddNumberToObject(x, "high_freq_factor", c->rope_high_freq_factor);
        cJSON_AddNumberToObject(x, "original_max_position_embeddings", c->rope_original_max_pos);
    }
    return x;
}

lma_status lma_config_save(const char *path, const lma_config *c) {
    LMA_TRY(check_savable(path, c));
    cJSON *o = cJSON_CreateObject();
    if (!o) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", path);
    const char *an = lma_arch_name(c->arch);
    cJSON_AddItemToObject(o, "architectures", cJSON_CreateStringArray(&an, 1));
    cJSON_AddStringToObject(o, "model_type", lma_arch_model_type(c->arch));
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(o, "intermediate_size", c->intermediate_size);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddStringToObject(o, "hidden_act", "silu");
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_position_embeddings);
    cJSON_AddNumberToObject(o, "rms_norm_eps", c->rms_norm_eps);
    cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
    cJSON_AddItemToObject(o, "rope_scaling", lma_config_rope_json(c));
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tie_word_embeddings);
    if (c->arch != LMA_ARCH_QWEN2) cJSON_AddBoolToObject(o, "attention_bias", c->o_bias);
    if (c->arch == LMA_ARCH_LLAMA) cJSON_AddBoolToObject(o, "mlp_bias", 0);
    if (c->arch == LMA_ARCH_MISTRAL) {
        if (c->sliding_window > 0) cJSON_AddNumberToObject(o, "sliding_window", c->sliding_window);
        else cJSON_AddNullToObject(o, "sliding_window");
    }
    if (c->arch == LMA_ARCH_QWEN2 || c->arch == LMA_ARCH_QWEN3) {
        cJSON_AddBoolToObject(o, "use_sliding_window", 0);
        cJSON_AddNullToObject(o, "sliding_window");
    }
    if (c->bos_token_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", c->bos_token_id);
    else cJSON_AddNullToObject(o, "bos_token_id");
    if (c->n_eos == 0) cJSON_AddNullToObject(o, "eos_token_id");
    else if (c->n_eos == 1) cJSON_AddNumberToObject(o, "eos_token_id", c->eos_token_ids[0]);
    else cJSON_AddItemToObject(o, "eos_token_id", cJSON_CreateIntArray(c->eos_token_ids, c->n_eos));
    if (c->torch_dtype[0]) cJSON_AddStringToObject(o, "torch_dtype", c->torch_dtype);
    lma_status s = lma_json_save(path, o);
    cJSON_Delete(o);
    return s;
}

/* ---- RoPE ------------------------------------------------------------------------ */

int lma_config_context(const lma_config *c) {
    double n = c->max_position_embeddings;
    if (c->rope_type == LMA_ROPE_LINEAR || c->rope_type == LMA_ROPE_DYNAMIC) n *= c->rope_factor;
    return n > INT_MAX ? INT_MAX : (int)n;
}

double lma_config_rope_attention_factor(const lma_config *c) {
    return c->rope_type == LMA_ROPE_YARN ? c->rope_attention_factor : 1.0;
}

void lma_config_rope_inv_freq(const lma_config *c, float *inv_freq) {
    lma_config_rope_inv_freq_len(c, c->max_position_embeddings, inv_freq);
}

/* yarn: the dimension (of head_dim) whose wavelength makes num_rot turns over L positions */
static double yarn_dim(double num_rot, int dim, double base, double L) {
    const double pi = 3.14159265358979323846;
    return dim * log(L / (num_rot * 2 * pi)) / (2 * log(base));
}

void lma_config_rope_inv_freq_len(const lma_config *c, int seq_len, float *inv_freq) {
    const double pi = 3.14159265358979323846;
    int half = c->head_dim / 2, dim = c->head_dim;
    double base = c->rope_theta;
    if (c->rope_type == LMA_ROPE_DYNAMIC) {
        double L = seq_len > c->max_position_embeddings ? seq_len : c->max_position_embeddings;
        base *= pow(c->rope_factor * L / c->max_position_embeddings - (c->rope_factor - 1), (double)dim / (dim - 2));
    }
    double lo = 0, hi = 0;
    if (c->rope_type == LMA_ROPE_YARN) {
        lo = yarn_dim(c->rope_beta_fast, dim, base, c->rope_original_max_pos);
        hi = yarn_dim(c->rope_beta_slow, dim, base, c->rope_original_max_pos);
        if (c->rope_truncate) { lo = floor(lo); hi = ceil(hi); }
        if (lo < 0) lo = 0;
        if (hi > dim - 1) hi = dim - 1;
        if (lo == hi) hi += 0.001;
    }
    for (int i = 0; i < half; i++) {
        /* in double, rounded once at the end (transformers: float32; a few ulps apart) */
        double f = 1.0 / pow(base, (2.0 * i) / dim);
        if (c->rope_type == LMA_ROPE_YARN) {
            double ramp = ((double)i - lo) / (hi - lo);
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            double extra = 1 - ramp; /* the extrapolation share */
            f = f / c->rope_factor * (1 - extra) + f * extra;
        }
        if (c->rope_type == LMA_ROPE_LINEAR) f /= c->rope_factor;
        else if (c->rope_type == LMA_ROPE_LLAMA3) {
            double L = c->rope_original_max_pos, lff = c->rope_low_freq_factor, hff = c->rope_high_freq_factor;
            double wl = 2 * pi / f;
            if (wl > L / lff) f /= c->rope_factor;
            else if (!(wl < L / hff)) {
                double s = (L / wl - lff) / (hff - lff);
                f = (1 - s) * f / c->rope_factor + s * f;
            }
        }
        inv_freq[i] = (float)f;
    }
}
