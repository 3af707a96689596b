/* config.json: every fixture in tests/ref/configs (written by transformers 5 or in
 * the classic hub form) parses to what transformers makes of it (expected.json:
 * sizes, rope, biases and q/k norms of the instantiated model, rotary inv_freq);
 * lma_config_save output equals tests/ref/configs/saved/ (checked to load back in
 * transformers by make_st_fixtures.py --check-saved) and re-parses to the same
 * config; unsupported and malformed configs fail naming the field. */
#include <stdint.h>
#include <unistd.h>
#include "core/io.h"
#include "core/json.h"
#include "model/config.h"
#include "test.h"

#define CFG LMA_SRC_DIR "/tests/ref/configs"

static double num(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsBool(it) ? cJSON_IsTrue(it) : it ? it->valuedouble : NAN;
}

static int same_config(const lma_config *a, const lma_config *b) {
    return a->arch == b->arch && a->vocab_size == b->vocab_size && a->hidden_size == b->hidden_size &&
           a->intermediate_size == b->intermediate_size && a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
           a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim &&
           a->max_position_embeddings == b->max_position_embeddings && a->rms_norm_eps == b->rms_norm_eps &&
           a->rope_theta == b->rope_theta && a->rope_type == b->rope_type && a->rope_factor == b->rope_factor &&
           a->rope_low_freq_factor == b->rope_low_freq_factor && a->rope_high_freq_factor == b->rope_high_freq_factor &&
           a->rope_original_max_pos == b->rope_original_max_pos && a->tie_word_embeddings == b->tie_word_embeddings &&
           a->qkv_bias == b->qkv_bias && a->o_bias == b->o_bias && a->qk_norm == b->qk_norm &&
           a->sliding_window == b->sliding_window && a->bos_token_id == b->bos_token_id && a->n_eos == b->n_eos &&
           !memcmp(a->eos_token_ids, b->eos_token_ids, sizeof a->eos_token_ids) && !strcmp(a->torch_dtype, b->torch_dtype);
}

static void check_against(const char *name, const lma_config *c, const cJSON *e) {
    static const char *rope_names[] = {"default", "linear", "llama3"};
    const cJSON *arch = cJSON_GetObjectItem(e, "arch");
    CHECK(!strcmp(lma_arch_name(c->arch), arch->valuestring), "%s: arch %s vs %s", name, lma_arch_name(c->arch), arch->valuestring);
    CHECK(!strcmp(lma_arch_model_type(c->arch), cJSON_GetObjectItem(e, "model_type")->valuestring), "%s: model_type", name);
    CHECK(!strcmp(rope_names[c->rope_type], cJSON_GetObjectItem(e, "rope_type")->valuestring), "%s: rope_type %s", name, rope_names[c->rope_type]);
#define F(field, key) CHECK((double)c->field == num(e, key), "%s: %s = %g, transformers %g", name, key, (double)c->field, num(e, key))
    F(vocab_size, "vocab_size"); F(hidden_size, "hidden_size"); F(intermediate_size, "intermediate_size");
    F(n_layers, "n_layers"); F(n_heads, "n_heads"); F(n_kv_heads, "n_kv_heads"); F(head_dim, "head_dim");
    F(max_position_embeddings, "max_position_embeddings"); F(rms_norm_eps, "rms_norm_eps"); F(rope_theta, "rope_theta");
    F(rope_factor, "rope_factor"); F(rope_low_freq_factor, "rope_low_freq_factor");
    F(rope_high_freq_factor, "rope_high_freq_factor"); F(rope_original_max_pos, "rope_original_max_pos");
    F(tie_word_embeddings, "tie_word_embeddings"); F(tie_word_embeddings, "lm_head_tied");
    F(qkv_bias, "qkv_bias"); F(o_bias, "o_bias"); F(qk_norm, "qk_norm"); F(sliding_window, "sliding_window");
    F(bos_token_id, "bos_token_id");
#undef F
    const cJSON *eos = cJSON_GetObjectItem(e, "eos_token_ids");
    CHECK(c->n_eos == cJSON_GetArraySize(eos), "%s: %d eos ids", name, c->n_eos);
    int i = 0;
    for (const cJSON *v = eos->child; v && i < c->n_eos; v = v->next, i++)
        CHECK(c->eos_token_ids[i] == (int)v->valuedouble, "%s: eos[%d]", name, i);

    /* inv_freq: transformers computes theta^(2i/d) in float32, lmadapt in double then
     * rounds once, so they agree to a few float ulps; against the float64 formula the
     * result must be the correctly rounded value. */
    const cJSON *hf = cJSON_GetObjectItem(e, "inv_freq_hf"), *f64 = cJSON_GetObjectItem(e, "inv_freq_f64");
    int half = c->head_dim / 2;
    CHECK(cJSON_GetArraySize(hf) == half && cJSON_GetArraySize(f64) == half, "%s: inv_freq length", name);
    float *f = malloc((size_t)half * sizeof *f);
    lma_config_rope_inv_freq(c, f);
    double max_rel = 0;
    int not_rounded = 0;
    i = 0;
    for (const cJSON *a = hf->child, *b = f64->child; a && b && i < half; a = a->next, b = b->next, i++) {
        double r = fabs(f[i] - a->valuedouble) / a->valuedouble;
        if (r > max_rel) max_rel = r;
        not_rounded += f[i] != (float)b->valuedouble;
    }
    CHECK(max_rel < 1e-6, "%s: inv_freq vs transformers: max relative error %.3g", name, max_rel);
    CHECK(not_rounded == 0, "%s: %d inv_freq values are not the rounded float64 value", name, not_rounded);
    free(f);
}

static void test_fixtures(const char *tmp) {
    cJSON *exp = NULL;
    CHECK_OK(lma_json_load(CFG "/expected.json", &exp));
    if (!exp) return;
    const char *regen = getenv("LMA_REGEN_SAVED_CONFIGS"); /* writes tests/ref/configs/saved/ */
    int n = 0;
    for (const cJSON *e = cJSON_GetObjectItem(exp, "configs")->child; e; e = e->next, n++) {
        char p[512], q[512], r[512];
        snprintf(p, sizeof p, CFG "/%s.json", e->string);
        lma_config c, d;
        CHECK_OK(lma_config_load(p, &c));
        check_against(e->string, &c, e);
        /* save: identical to the transformers-checked file, and parses back the same */
        snprintf(q, sizeof q, "%s/%s.json", tmp, e->string);
        snprintf(r, sizeof r, CFG "/saved/%s.json", e->string);
        if (regen) { CHECK_OK(lma_mkdir_p(CFG "/saved")); CHECK_OK(lma_config_save(r, &c)); }
        CHECK_OK(lma_config_save(q, &c));
        CHECK_OK(lma_config_load(q, &d));
        CHECK(same_config(&c, &d), "%s: saved config parses back to the same config", e->string);
        char *x = NULL, *y = NULL; size_t nx = 0, ny = 0;
        CHECK_OK(lma_read_file(q, &x, &nx));
        CHECK_OK(lma_read_file(r, &y, &ny));
        CHECK(x && y && nx == ny && !memcmp(x, y, nx), "%s: saved config equals tests/ref/configs/saved/%s.json", e->string, e->string);
        free(x); free(y);
        unlink(q);
    }
    CHECK(n >= 12, "%d fixture configs", n);
    cJSON_Delete(exp);
    lma_config c;
    CHECK_OK(lma_config_load(CFG "/llama32_classic.json", &c));
    CHECK(!strcmp(c.torch_dtype, "bfloat16"), "torch_dtype kept");
}

/* Parses llama_gqa.json (v5 form) or qwen2.json after edit(), expecting status and a
 * message that contains field. */
static cJSON *base(const char *file) {
    cJSON *j = NULL;
    char p[512];
    snprintf(p, sizeof p, CFG "/%s.json", file);
    if (lma_json_load(p, &j) != LMA_OK) lma_clear_error();
    return j;
}

static void expect(cJSON *j, lma_status want, const char *field, const char *what) {
    char *text = cJSON_PrintUnformatted(j);
    lma_config c;
    lma_clear_error();
    lma_status s = lma_config_parse(text, strlen(text), "cfg.json", &c);
    CHECK(s == want, "%s: got %s (%s), want %s", what, lma_status_name(s), lma_last_error(), lma_status_name(want));
    CHECK(strstr(lma_last_error(), field) && strstr(lma_last_error(), "cfg.json"), "%s: message '%s' names '%s' and the file", what, lma_last_error(), field);
    lma_clear_error();
    free(text);
    cJSON_Delete(j);
}

static void set(cJSON *j, const char *key, cJSON *v) {
    if (cJSON_GetObjectItemCaseSensitive(j, key)) cJSON_ReplaceItemInObjectCaseSensitive(j, key, v);
    else cJSON_AddItemToObject(j, key, v);
}

static void test_rejects(void) {
    cJSON *j;
    const char *gemma = "GemmaForCausalLM";
    j = base("llama_gqa"); set(j, "architectures", cJSON_CreateStringArray(&gemma, 1));
    expect(j, LMA_ERR_UNSUPPORTED, "GemmaForCausalLM", "unsupported architecture");
    j = base("llama_gqa"); set(j, "model_type", cJSON_CreateString("gemma"));
    expect(j, LMA_ERR_UNSUPPORTED, "model_type", "unsupported model_type");
    j = base("llama_gqa"); set(j, "hidden_act", cJSON_CreateString("gelu"));
    expect(j, LMA_ERR_UNSUPPORTED, "hidden_act", "gelu");
    j = base("llama_gqa"); set(j, "mlp_bias", cJSON_CreateTrue());
    expect(j, LMA_ERR_UNSUPPORTED, "mlp_bias", "mlp_bias");
    static const char *bad_rope[] = {"longrope", "su", "ntk-by-parts"}; /* dynamic and yarn: tests/test_rope_scaling.c */
    for (int i = 0; i < 3; i++) {
        j = base("llama_gqa");
        cJSON *rp = cJSON_GetObjectItem(j, "rope_parameters");
        cJSON_ReplaceItemInObject(rp, "rope_type", cJSON_CreateString(bad_rope[i]));
        cJSON_AddNumberToObject(rp, "factor", 2.0);
        expect(j, LMA_ERR_UNSUPPORTED, "rope_type", bad_rope[i]);
        j = base("tinyllama_classic");
        cJSON *rs = cJSON_CreateObject();
        cJSON_AddStringToObject(rs, "type", bad_rope[i]);
        cJSON_AddNumberToObject(rs, "factor", 2.0);
        set(j, "rope_scaling", rs);
        expect(j, LMA_ERR_UNSUPPORTED, "rope_scaling.rope_type", bad_rope[i]);
    }
    j = base("qwen2"); set(j, "use_sliding_window", cJSON_CreateTrue());
    expect(j, LMA_ERR_UNSUPPORTED, "use_sliding_window", "qwen2 sliding window");
    j = base("qwen2");
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(j, "layer_types"), 1, cJSON_CreateString("sliding_attention"));
    expect(j, LMA_ERR_UNSUPPORTED, "layer_types", "sliding layer");
    j = base("llama_gqa"); cJSON_AddNumberToObject(cJSON_GetObjectItem(j, "rope_parameters"), "partial_rotary_factor", 0.5);
    expect(j, LMA_ERR_UNSUPPORTED, "partial_rotary_factor", "partial rotary");
    int many[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    j = base("llama_gqa"); set(j, "eos_token_id", cJSON_CreateIntArray(many, 9));
    expect(j, LMA_ERR_UNSUPPORTED, "eos_token_id", "too many eos");

    j = base("llama_gqa"); set(j, "vocab_size", cJSON_CreateString("128"));
    expect(j, LMA_ERR_FORMAT, "vocab_size", "string size");
    j = base("llama_gqa"); set(j, "hidden_size", cJSON_CreateNumber(-64));
    expect(j, LMA_ERR_FORMAT, "hidden_size", "negative size");
    j = base("llama_gqa"); set(j, "num_hidden_layers", cJSON_CreateNumber(2.5));
    expect(j, LMA_ERR_FORMAT, "num_hidden_layers", "fractional size");
    j = base("llama_gqa"); set(j, "num_key_value_heads", cJSON_CreateNumber(3));
    expect(j, LMA_ERR_FORMAT, "num_key_value_heads", "kv heads not dividing");
    j = base("llama_gqa"); set(j, "head_dim", cJSON_CreateNumber(15));
    expect(j, LMA_ERR_FORMAT, "head_dim", "odd head_dim");
    j = base("llama_gqa"); cJSON_DeleteItemFromObject(j, "head_dim"); set(j, "hidden_size", cJSON_CreateNumber(66));
    expect(j, LMA_ERR_FORMAT, "hidden_size", "heads not dividing hidden");
    j = base("llama_gqa"); cJSON_DeleteItemFromObject(j, "intermediate_size");
    expect(j, LMA_ERR_FORMAT, "intermediate_size", "missing size");
    j = base("llama_gqa"); cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "rope_parameters"), "rope_theta", cJSON_CreateNumber(-1));
    expect(j, LMA_ERR_FORMAT, "rope_theta", "negative theta");
    j = base("llama3_tied"); cJSON_DeleteItemFromObject(cJSON_GetObjectItem(j, "rope_parameters"), "low_freq_factor");
    expect(j, LMA_ERR_FORMAT, "low_freq_factor", "llama3 without low_freq_factor");
    j = base("llama3_tied"); cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "rope_parameters"), "high_freq_factor", cJSON_CreateNumber(1.0));
    expect(j, LMA_ERR_FORMAT, "high_freq_factor", "llama3 hff <= lff");
    j = base("llama_linear"); cJSON_DeleteItemFromObject(cJSON_GetObjectItem(j, "rope_parameters"), "factor");
    expect(j, LMA_ERR_FORMAT, "factor", "linear without factor");
    j = base("llama_linear"); cJSON_AddStringToObject(cJSON_GetObjectItem(j, "rope_parameters"), "type", "llama3");
    expect(j, LMA_ERR_FORMAT, "type", "rope_type/type conflict");
    j = base("llama32_classic"); set(j, "model_type", cJSON_CreateString("qwen2"));
    expect(j, LMA_ERR_FORMAT, "model_type", "arch/model_type disagree");
    j = base("llama_gqa"); set(j, "eos_token_id", cJSON_CreateString("x"));
    expect(j, LMA_ERR_FORMAT, "eos_token_id", "string eos");
    j = base("llama_gqa"); set(j, "rms_norm_eps", cJSON_CreateString("1e-5"));
    expect(j, LMA_ERR_FORMAT, "rms_norm_eps", "string eps");
    j = base("llama_gqa"); set(j, "tie_word_embeddings", cJSON_CreateNumber(1));
    expect(j, LMA_ERR_FORMAT, "tie_word_embeddings", "number as bool");
    j = base("llama_gqa"); cJSON_DeleteItemFromObject(j, "model_type");
    expect(j, LMA_ERR_FORMAT, "architectures", "no arch at all");

    lma_config c;
    CHECK(lma_config_parse("[1]", 3, "cfg.json", &c) == LMA_ERR_FORMAT && strstr(lma_last_error(), "not a JSON object"), "array config");
    lma_clear_error();
    CHECK(lma_config_parse("{\"a\":", 5, "cfg.json", &c) == LMA_ERR_FORMAT && strstr(lma_last_error(), "malformed JSON"), "malformed config");
    lma_clear_error();
    CHECK(lma_config_load("/nonexistent/config.json", &c) == LMA_ERR_IO, "missing file");
    lma_clear_error();

    /* Defaults: no num_key_value_heads, no head_dim, nothing about rope. */
    const char *min = "{\"model_type\":\"llama\",\"vocab_size\":10,\"hidden_size\":32,\"intermediate_size\":8,"
                      "\"num_hidden_layers\":1,\"num_attention_heads\":4}";
    CHECK_OK(lma_config_parse(min, strlen(min), "min", &c));
    CHECK(c.n_kv_heads == 4 && c.head_dim == 8 && c.rope_theta == 10000.0 && c.rope_type == LMA_ROPE_DEFAULT &&
          c.bos_token_id == 1 && c.n_eos == 1 && c.eos_token_ids[0] == 2 && !c.tie_word_embeddings && c.torch_dtype[0] == 0,
          "transformers' Llama defaults");
    /* Qwen2 biases whatever attention_bias says. */
    cJSON *q = base("qwen2"); cJSON_AddTrueToObject(q, "attention_bias");
    char *text = cJSON_PrintUnformatted(q);
    CHECK_OK(lma_config_parse(text, strlen(text), "q", &c));
    CHECK(c.qkv_bias == 1 && c.o_bias == 0, "qwen2 bias fixed");
    free(text); cJSON_Delete(q);
    c.o_bias = 1;
    CHECK(lma_config_save("/tmp/never_written.json", &c) == LMA_ERR_ARG, "qwen2 with o_bias cannot be saved");
    lma_clear_error();
}

int main(void) {
    char tmp[] = "/tmp/lma_cfg_XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    test_fixtures(tmp);
    test_rejects();
    rmdir(tmp);
    TEST_END();
}
