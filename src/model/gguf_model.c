/* Llama-family models in GGUF files: config from metadata, llama.cpp's tensor names,
 * the Q/K permutation, and the GGUF weight source (gguf_model.h). */
#include "model/gguf_model.h"
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "quant/ggml_quant.h"

/* ---- names ---- */
static const struct { const char *gguf, *hf; } global_names[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};
/* per layer: blk.N.<gguf> <-> model.layers.N.<hf> */
static const struct { const char *gguf, *hf; } layer_names[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},     {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.weight", "self_attn.k_proj.weight"},     {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.weight", "self_attn.v_proj.weight"},     {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.o_proj.weight"}, {"attn_output.bias", "self_attn.o_proj.bias"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"}, {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};
#define N_GLOBAL (sizeof global_names / sizeof *global_names)
#define N_LAYER (sizeof layer_names / sizeof *layer_names)

/* "<prefix><digits>.<rest>": the layer number and rest, or -1 */
static int split_layer(const char *s, size_t len, const char *prefix, const char **rest, size_t *rest_len) {
    size_t k = strlen(prefix);
    if (len <= k || memcmp(s, prefix, k)) return -1;
    size_t i = k;
    long l = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9' && l < 1000000) l = l * 10 + (s[i++] - '0');
    if (i == k || i >= len || s[i] != '.' || l >= 1000000) return -1;
    *rest = s + i + 1;
    *rest_len = len - i - 1;
    return (int)l;
}

static int eq(const char *s, size_t len, const char *z) { return strlen(z) == len && !memcmp(s, z, len); }

int lma_gguf_name_to_hf(const char *gguf, size_t len, char *hf, size_t cap) {
    for (size_t i = 0; i < N_GLOBAL; i++)
        if (eq(gguf, len, global_names[i].gguf)) return snprintf(hf, cap, "%s", global_names[i].hf) < (int)cap;
    const char *rest;
    size_t rl;
    int l = split_layer(gguf, len, "blk.", &rest, &rl);
    if (l < 0) return 0;
    for (size_t i = 0; i < N_LAYER; i++)
        if (eq(rest, rl, layer_names[i].gguf))
            return snprintf(hf, cap, "model.layers.%d.%s", l, layer_names[i].hf) < (int)cap;
    return 0;
}

int lma_gguf_name_from_hf(const char *hf, char *gguf, size_t cap) {
    for (size_t i = 0; i < N_GLOBAL; i++)
        if (!strcmp(hf, global_names[i].hf)) return snprintf(gguf, cap, "%s", global_names[i].gguf) < (int)cap;
    const char *rest;
    size_t rl;
    int l = split_layer(hf, strlen(hf), "model.layers.", &rest, &rl);
    if (l < 0) return 0;
    for (size_t i = 0; i < N_LAYER; i++)
        if (eq(rest, rl, layer_names[i].hf)) return snprintf(gguf, cap, "blk.%d.%s", l, layer_names[i].gguf) < (int)cap;
    return 0;
}

int lma_gguf_arch_permutes(lma_arch a) { return a == LMA_ARCH_LLAMA || a == LMA_ARCH_MISTRAL; }

/* HF rows of a head: (2, hd/2) [half j, index i] = row j*hd/2 + i; llama.cpp's: (hd/2, 2) = row i*2 + j. */
void lma_gguf_permute_rows(float *dst, const float *src, int n_head, int hd, size_t cols, int to_gguf) {
    int half = hd / 2;
    for (int h = 0; h < n_head; h++)
        for (int i = 0; i < half; i++)
            for (int j = 0; j < 2; j++) {
                size_t hf_row = (size_t)h * hd + (size_t)j * half + i, gg_row = (size_t)h * hd + (size_t)i * 2 + j;
                size_t d = to_gguf ? gg_row : hf_row, s = to_gguf ? hf_row : gg_row;
                memcpy(dst + d * cols, src + s * cols, cols * sizeof(float));
            }
}

/* ---- config ---- */
typedef struct {
    const lma_gguf *g;
    const char *arch; /* metadata prefix */
} meta;

static lma_status get_int(const meta *m, const char *key, int required, int lo, int hi, int *out) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", m->arch, key);
    int64_t v = 0;
    int found = 0;
    LMA_TRY(lma_gguf_get_i64(m->g, k, &v, &found));
    if (!found) {
        if (required)
            return lma_error(LMA_ERR_FORMAT, "%s: missing metadata '%s'", lma_gguf_path(m->g), k);
        return LMA_OK;
    }
    if (v < lo || v > hi)
        return lma_error(LMA_ERR_FORMAT, "%s: metadata '%s' = %lld is out of range [%d, %d]", lma_gguf_path(m->g), k,
                         (long long)v, lo, hi);
    *out = (int)v;
    return LMA_OK;
}

static lma_status get_pos(const meta *m, const char *key, double *out) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", m->arch, key);
    double v = *out;
    int found = 0;
    LMA_TRY(lma_gguf_get_f64(m->g, k, &v, &found));
    if (found && !(isfinite(v) && v > 0))
        return lma_error(LMA_ERR_FORMAT, "%s: metadata '%s' = %g must be a finite number > 0", lma_gguf_path(m->g), k, v);
    *out = v;
    return LMA_OK;
}

lma_status lma_gguf_config(const lma_gguf *g, lma_config *c) {
    const char *path = lma_gguf_path(g);
    memset(c, 0, sizeof *c);
    char *arch = NULL, *name = NULL, *scaling = NULL;
    int found = 0;
    LMA_TRY(lma_gguf_get_str(g, "general.architecture", &arch, &found));
    if (!found) return lma_error(LMA_ERR_FORMAT, "%s: missing metadata 'general.architecture'", path);
    lma_status s = LMA_OK;
    if (!strcmp(arch, "llama")) c->arch = LMA_ARCH_LLAMA;
    else if (!strcmp(arch, "mistral")) c->arch = LMA_ARCH_MISTRAL;
    else if (!strcmp(arch, "qwen2")) c->arch = LMA_ARCH_QWEN2;
    else if (!strcmp(arch, "qwen3")) c->arch = LMA_ARCH_QWEN3;
    else {
        s = lma_error(LMA_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (llama, mistral, qwen2, qwen3)", path,
                      arch);
        goto done;
    }
    /* transformers reads a llama file whose general.name says mistral as Mistral */
    if (c->arch == LMA_ARCH_LLAMA && (s = lma_gguf_get_str(g, "general.name", &name, NULL)) == LMA_OK && name) {
        for (char *p = name; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        if (strstr(name, "mistral")) c->arch = LMA_ARCH_MISTRAL;
    }
    if (s != LMA_OK) goto done;
    meta m = {g, arch};
    const int big = 1 << 30;
#define T(x) do { if ((s = (x)) != LMA_OK) goto done; } while (0)
    T(get_int(&m, "embedding_length", 1, 1, big, &c->hidden_size));
    T(get_int(&m, "feed_forward_length", 1, 1, big, &c->intermediate_size));
    T(get_int(&m, "block_count", 1, 1, 1 << 16, &c->n_layers));
    T(get_int(&m, "attention.head_count", 1, 1, 1 << 16, &c->n_heads));
    c->n_kv_heads = c->n_heads;
    T(get_int(&m, "attention.head_count_kv", 0, 1, 1 << 16, &c->n_kv_heads));
    if (c->n_heads % c->n_kv_heads) {
        s = lma_error(LMA_ERR_FORMAT, "%s: %d KV heads do not divide %d heads", path, c->n_kv_heads, c->n_heads);
        goto done;
    }
    c->head_dim = c->hidden_size % c->n_heads ? 0 : c->hidden_size / c->n_heads;
    T(get_int(&m, "attention.key_length", 0, 2, 1 << 16, &c->head_dim));
    int vlen = c->head_dim, rdim = c->head_dim;
    T(get_int(&m, "attention.value_length", 0, 1, 1 << 16, &vlen));
    T(get_int(&m, "rope.dimension_count", 0, 1, 1 << 16, &rdim));
    if (!c->head_dim || c->head_dim % 2) {
        s = lma_error(LMA_ERR_FORMAT, "%s: head size %d (hidden %d / %d heads) is not an even whole number", path,
                      c->head_dim, c->hidden_size, c->n_heads);
        goto done;
    }
    if (vlen != c->head_dim || rdim != c->head_dim) {
        s = lma_error(LMA_ERR_UNSUPPORTED, "%s: key length %d, value length %d and rotary dimensions %d differ "
                      "(partial rotary or asymmetric heads are not supported)", path, c->head_dim, vlen, rdim);
        goto done;
    }
    c->vocab_size = 0;
    T(get_int(&m, "vocab_size", 0, 1, big, &c->vocab_size));
    if (!c->vocab_size) {
        const lma_gguf_tensor *e = lma_gguf_find_tensor(g, "token_embd.weight");
        const lma_gguf_kv *toks = lma_gguf_find(g, "tokenizer.ggml.tokens");
        if (e && e->n_dims == 2 && e->ne[1] <= big) c->vocab_size = (int)e->ne[1];
        else if (toks && toks->type == LMA_GGUF_ARRAY && toks->arr_n <= (uint64_t)big) c->vocab_size = (int)toks->arr_n;
        else {
            s = lma_error(LMA_ERR_FORMAT, "%s: no %s.vocab_size, token_embd.weight or tokenizer.ggml.tokens to size the "
                          "vocabulary", path, arch);
            goto done;
        }
    }
    static const int max_pos[] = {2048, 131072, 32768, 32768};
    c->max_position_embeddings = max_pos[c->arch];
    T(get_int(&m, "context_length", 0, 1, INT_MAX, &c->max_position_embeddings));
    c->rms_norm_eps = 1e-6;
    T(get_pos(&m, "attention.layer_norm_rms_epsilon", &c->rms_norm_eps));
    c->rope_theta = 10000.0;
    T(get_pos(&m, "rope.freq_base", &c->rope_theta));
    c->rope_type = LMA_ROPE_DEFAULT;
    {
        char k[160];
        snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
        T(lma_gguf_get_str(g, k, &scaling, NULL));
        double factor = 0;
        snprintf(k, sizeof k, "%s.rope.scaling.factor", arch);
        T(lma_gguf_get_f64(g, k, &factor, NULL));
        if (!scaling && factor > 0 && factor != 1) scaling = strdup("linear"); /* older files: factor alone */
        if (scaling && strcmp(scaling, "none")) {
            if (strcmp(scaling, "linear")) {
                s = lma_error(LMA_ERR_UNSUPPORTED, "%s: rope scaling '%s' is not supported (none, linear)", path, scaling);
                goto done;
            }
            if (!(factor > 0) || !isfinite(factor)) {
                s = lma_error(LMA_ERR_FORMAT, "%s: linear rope scaling needs a factor > 0", path);
                goto done;
            }
            c->rope_type = LMA_ROPE_LINEAR;
            c->rope_factor = factor;
        }
    }
    if (lma_gguf_find_tensor(g, "rope_freqs.weight")) {
        s = lma_error(LMA_ERR_UNSUPPORTED, "%s: per-frequency rope factors (rope_freqs.weight, Llama 3.1 scaling) are not "
                      "supported yet", path);
        goto done;
    }
    c->tie_word_embeddings = lma_gguf_find_tensor(g, "output.weight") == NULL;
    c->qk_norm = c->arch == LMA_ARCH_QWEN3;
    if (c->arch == LMA_ARCH_QWEN2) { c->qkv_bias = 1; c->o_bias = 0; }
    else { c->qkv_bias = c->o_bias = lma_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL; }
    int64_t id = -1;
    c->bos_token_id = -1;
    found = 0;
    T(lma_gguf_get_i64(g, "tokenizer.ggml.bos_token_id", &id, &found));
    if (found && id >= 0 && id < c->vocab_size) c->bos_token_id = (int)id;
    found = 0;
    T(lma_gguf_get_i64(g, "tokenizer.ggml.eos_token_id", &id, &found));
    if (found && id >= 0 && id < c->vocab_size) { c->eos_token_ids[0] = (int)id; c->n_eos = 1; }
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "float32");
#undef T
done:
    free(arch);
    free(name);
    free(scaling);
    return s;
}

/* ---- weight source ---- */
typedef struct {
    lma_gguf *g;
    lma_config cfg;
    int permute;
    char (*names)[96]; /* (n) HF names; "" = not a model tensor */
} gsrc;

static lma_status g_info(void *ctx, int i, const char **name, int *ndim, int64_t shape[2]) {
    gsrc *s = ctx;
    const lma_gguf_tensor *t = lma_gguf_tensor_at(s->g, i);
    *name = s->names[i][0] ? s->names[i] : NULL;
    *ndim = t->n_dims;
    if (t->n_dims > 2)
        return lma_error(LMA_ERR_SHAPE, "%s: tensor '%.*s' has %d dimensions (1 or 2 expected)", lma_gguf_path(s->g),
                         (int)t->name.len, t->name.s, t->n_dims);
    /* ggml's ne[0] is the contiguous dimension: HF shape [ne1, ne0] */
    shape[0] = t->n_dims == 2 ? t->ne[1] : t->ne[0];
    shape[1] = t->n_dims == 2 ? t->ne[0] : 0;
    return LMA_OK;
}

static lma_status g_read(void *ctx, int i, float *dst, size_t n) {
    gsrc *s = ctx;
    const lma_gguf_tensor *t = lma_gguf_tensor_at(s->g, i);
    if (n != t->nelem)
        return lma_error(LMA_ERR_SHAPE, "%s: tensor '%.*s' has %llu elements, %zu asked", lma_gguf_path(s->g),
                         (int)t->name.len, t->name.s, (unsigned long long)t->nelem, n);
    lma_status st = lma_ggml_dequantize(t->type, t->data, dst, (int64_t)n);
    if (st != LMA_OK)
        return lma_error_replace(st, "%s: tensor '%.*s': %s", lma_gguf_path(s->g), (int)t->name.len, t->name.s,
                                 lma_last_error());
    const char *nm = s->names[i];
    int q = strstr(nm, "q_proj.") != NULL, k = strstr(nm, "k_proj.") != NULL;
    if (s->permute && (q || k)) {
        int nh = q ? s->cfg.n_heads : s->cfg.n_kv_heads, hd = s->cfg.head_dim;
        size_t cols = t->n_dims == 2 ? (size_t)t->ne[0] : 1;
        if ((size_t)nh * hd * cols != n)
            return lma_error(LMA_ERR_SHAPE, "%s: tensor '%s' does not have %d heads of %d rows", lma_gguf_path(s->g), nm,
                             nh, hd);
        float *tmp = malloc(n * sizeof(float));
        if (!tmp) return lma_error(LMA_ERR_NOMEM, "out of memory un-permuting %s", nm);
        memcpy(tmp, dst, n * sizeof(float));
        lma_gguf_permute_rows(dst, tmp, nh, hd, cols, 0);
        free(tmp);
    }
    return LMA_OK;
}

static uint32_t g_block_type(void *ctx, int i) {
    gsrc *s = ctx;
    return lma_gguf_tensor_at(s->g, i)->type;
}

static lma_status g_read_blocks(void *ctx, int i, void *dst, size_t row_bytes, int64_t rows) {
    gsrc *s = ctx;
    const lma_gguf_tensor *t = lma_gguf_tensor_at(s->g, i);
    uint64_t bytes = 0;
    LMA_TRY(lma_ggml_nbytes(t->type, t->nelem, &bytes));
    if (t->n_dims != 2 || (uint64_t)t->ne[1] != (uint64_t)rows || bytes != row_bytes * (uint64_t)rows)
        return lma_error(LMA_ERR_SHAPE, "%s: tensor '%.*s' is not %lld rows of %zu bytes", lma_gguf_path(s->g),
                         (int)t->name.len, t->name.s, (long long)rows, row_bytes);
    const char *nm = s->names[i];
    int q = strstr(nm, "q_proj.") != NULL, k = strstr(nm, "k_proj.") != NULL;
    if (!(s->permute && (q || k))) { memcpy(dst, t->data, (size_t)bytes); return LMA_OK; }
    /* lma_gguf_permute_rows on whole rows of blocks: HF row h*hd + j*half + i is GGUF row h*hd + i*2 + j */
    int nh = q ? s->cfg.n_heads : s->cfg.n_kv_heads, hd = s->cfg.head_dim, half = hd / 2;
    if ((int64_t)nh * hd != rows)
        return lma_error(LMA_ERR_SHAPE, "%s: tensor '%s' does not have %d heads of %d rows", lma_gguf_path(s->g), nm, nh,
                         hd);
    for (int h = 0; h < nh; h++)
        for (int ii = 0; ii < half; ii++)
            for (int j = 0; j < 2; j++) {
                size_t hf_row = (size_t)h * hd + (size_t)j * half + ii, gg_row = (size_t)h * hd + (size_t)ii * 2 + j;
                memcpy((char *)dst + hf_row * row_bytes, (const char *)t->data + gg_row * row_bytes, row_bytes);
            }
    return LMA_OK;
}

static void g_close(void *ctx) {
    gsrc *s = ctx;
    if (!s) return;
    lma_gguf_close(s->g);
    free(s->names);
    free(s);
}

lma_status lma_gguf_weight_source(const char *path, const lma_config *cfg, lma_weight_source *src) {
    memset(src, 0, sizeof *src);
    gsrc *s = calloc(1, sizeof *s);
    if (!s) return lma_error(LMA_ERR_NOMEM, "out of memory");
    lma_status st = lma_gguf_open(path, &s->g);
    if (st != LMA_OK) { free(s); return st; }
    s->cfg = *cfg;
    s->permute = lma_gguf_arch_permutes(cfg->arch);
    int64_t n = lma_gguf_n_tensors(s->g);
    if (n > INT_MAX) { g_close(s); return lma_error(LMA_ERR_FORMAT, "%s: too many tensors", path); }
    s->names = calloc((size_t)(n ? n : 1), sizeof *s->names);
    if (!s->names) { g_close(s); return lma_error(LMA_ERR_NOMEM, "out of memory"); }
    for (int64_t i = 0; i < n; i++) {
        const lma_gguf_tensor *t = lma_gguf_tensor_at(s->g, i);
        if (!lma_gguf_name_to_hf(t->name.s, t->name.len, s->names[i], sizeof s->names[i])) {
            st = lma_error(LMA_ERR_UNSUPPORTED, "%s: tensor '%.*s' has no place in a %s model", path,
                           (int)(t->name.len > 100 ? 100 : t->name.len), t->name.s, lma_arch_name(cfg->arch));
            g_close(s);
            return st;
        }
    }
    src->ctx = s;
    src->where = lma_gguf_path(s->g);
    src->n = (int)n;
    src->info = g_info;
    src->read_f32 = g_read;
    src->block_type = g_block_type;
    src->read_blocks = g_read_blocks;
    src->close = g_close;
    return LMA_OK;
}
