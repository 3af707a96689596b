/* Writing a model as GGUF the way llama.cpp's convert_hf_to_gguf.py does: llama.cpp's
 * metadata keys and tensor names, Q/K rows permuted for llama/mistral, norms and biases
 * in F32, every matrix in the chosen type (gguf_model.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/gguf_model.h"
#include "model/lora.h"
#include "model/llama.h"
#include "model/model_internal.h"
#include "quant/ggml_quant.h"

/* llama.cpp's llama_ftype of a file whose matrices are all of one type */
static uint32_t file_type(uint32_t t) {
    switch (t) {
    case LMA_GGML_F32: return 0;
    case LMA_GGML_F16: return 1;
    case LMA_GGML_Q4_0: return 2;
    case LMA_GGML_Q4_1: return 3;
    case LMA_GGML_Q8_0: return 7;
    case LMA_GGML_Q5_0: return 8;
    case LMA_GGML_Q5_1: return 9;
    case LMA_GGML_BF16: return 32;
    default: return 0;
    }
}

static const char *gguf_arch(lma_arch a) {
    switch (a) {
    case LMA_ARCH_QWEN2: return "qwen2";
    case LMA_ARCH_QWEN3: return "qwen3";
    default: return "llama"; /* llama.cpp converts Mistral (v0.x) as llama */
    }
}

typedef struct {
    const lma_model *m;
    float *host;       /* (table.total) the fp32 masters on the host */
    int *param;        /* (n tensors) index into the parameter table */
    uint32_t *type;    /* (n tensors) */
    float *scratch;    /* largest tensor, for the permutation */
} exp_ctx;

static lma_status fill(void *vctx, int i, void *dst, size_t nbytes) {
    exp_ctx *c = vctx;
    const lma_param_info *p = &c->m->table.info[c->param[i]];
    const float *x = c->host + p->offset;
    int q = p->kind == LMA_P_WQ || p->kind == LMA_P_BQ, k = p->kind == LMA_P_WK || p->kind == LMA_P_BK;
    if ((q || k) && lma_gguf_arch_permutes(c->m->cfg.arch)) {
        const lma_config *cfg = &c->m->cfg;
        size_t cols = p->ndim == 2 ? (size_t)p->shape[1] : 1;
        lma_gguf_permute_rows(c->scratch, x, q ? cfg->n_heads : cfg->n_kv_heads, cfg->head_dim, cols, 1);
        x = c->scratch;
    }
    uint64_t want;
    LMA_TRY(lma_ggml_nbytes(c->type[i], p->numel, &want));
    if (want != nbytes) return lma_error(LMA_ERR_INTERNAL, "GGUF export: %s: %zu bytes asked, %llu needed", p->name, nbytes,
                                         (unsigned long long)want);
    return lma_ggml_quantize(c->type[i], x, dst, (int64_t)p->numel);
}

lma_status lma_model_save_gguf(const lma_model *m, lma_gguf_writer *w, const char *path, uint32_t type) {
    const lma_config *cfg = &m->cfg;
    if (!m->params) return lma_error(LMA_ERR_UNSUPPORTED, "%s: the model keeps no fp32 weights (loaded frozen)", path);
    if (m->nf4) return lma_error(LMA_ERR_UNSUPPORTED, "%s: an NF4 (QLoRA) model cannot be exported; merge first", path);
    LMA_TRY(lma_model_no_qm(m, "export"));
    if (!lma_ggml_type_quantizable(type))
        return lma_error(LMA_ERR_ARG, "%s: lmadapt does not write GGUF type %u", path, type);
    if (cfg->rope_type == LMA_ROPE_LLAMA3)
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: llama3 rope scaling is written by llama.cpp as a rope_freqs tensor, "
                         "which lmadapt does not write yet", path);
    /* only linear scaling is written below: a yarn or dynamic model would load unscaled */
    if (cfg->rope_type == LMA_ROPE_YARN || cfg->rope_type == LMA_ROPE_DYNAMIC)
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: %s rope scaling is not written to GGUF by lmadapt yet (llama.cpp "
                         "would run the model unscaled); use the HF folder", path,
                         lma_rope_type_name(cfg->rope_type));
    const char *a = gguf_arch(cfg->arch);
    char k[128];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", a, s), k)
    LMA_TRY(lma_gguf_set_str(w, "general.architecture", a));
    LMA_TRY(lma_gguf_set_u32(w, "general.file_type", file_type(type)));
    if (type != LMA_GGML_F32 && type != LMA_GGML_F16 && type != LMA_GGML_BF16)
        LMA_TRY(lma_gguf_set_u32(w, "general.quantization_version", 2));
    LMA_TRY(lma_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)cfg->vocab_size));
    LMA_TRY(lma_gguf_set_u32(w, KEY("context_length"), (uint32_t)cfg->max_position_embeddings));
    LMA_TRY(lma_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)cfg->hidden_size));
    LMA_TRY(lma_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)cfg->intermediate_size));
    LMA_TRY(lma_gguf_set_u32(w, KEY("block_count"), (uint32_t)cfg->n_layers));
    LMA_TRY(lma_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)cfg->n_heads));
    LMA_TRY(lma_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)cfg->n_kv_heads));
    LMA_TRY(lma_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)cfg->rms_norm_eps));
    LMA_TRY(lma_gguf_set_f32(w, KEY("rope.freq_base"), (float)cfg->rope_theta));
    LMA_TRY(lma_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)cfg->head_dim));
    if (cfg->head_dim * cfg->n_heads != cfg->hidden_size) {
        LMA_TRY(lma_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)cfg->head_dim));
        LMA_TRY(lma_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)cfg->head_dim));
    }
    if (cfg->rope_type == LMA_ROPE_LINEAR) {
        LMA_TRY(lma_gguf_set_str(w, KEY("rope.scaling.type"), "linear"));
        LMA_TRY(lma_gguf_set_f32(w, KEY("rope.scaling.factor"), (float)cfg->rope_factor));
    }
#undef KEY
    /* tensors: the table's, in its order; matrices whose rows do not fill blocks stay F32 */
    exp_ctx c = {m, NULL, NULL, NULL, NULL};
    lma_status s = LMA_OK;
    int n = m->table.count;
    size_t maxn = 0;
    c.host = malloc(m->table.total * sizeof(float));
    c.param = malloc((size_t)n * sizeof *c.param);
    c.type = malloc((size_t)n * sizeof *c.type);
    for (int i = 0; i < n; i++) if (m->table.info[i].numel > maxn) maxn = m->table.info[i].numel;
    c.scratch = malloc((maxn ? maxn : 1) * sizeof(float));
    if (!c.host || !c.param || !c.type || !c.scratch) { s = lma_error(LMA_ERR_NOMEM, "%s: out of memory", path); goto done; }
    m->be->download(c.host, m->params, m->table.total * sizeof(float));
    for (size_t i = 0; i < m->table.total; i++)
        if (!isfinite(c.host[i])) { s = lma_error(LMA_ERR_NUMERIC, "%s: the model holds a non-finite weight", path); goto done; }
    for (int i = 0; i < n && s == LMA_OK; i++) {
        const lma_param_info *p = &m->table.info[i];
        char gname[96];
        if (!lma_gguf_name_from_hf(p->name, gname, sizeof gname)) {
            s = lma_error(LMA_ERR_INTERNAL, "%s: no GGUF name for %s", path, p->name);
            break;
        }
        int64_t ne[2] = {p->ndim == 2 ? p->shape[1] : p->shape[0], p->ndim == 2 ? p->shape[0] : 1};
        uint32_t t = p->ndim == 2 && ne[0] % lma_ggml_block_elems(type) == 0 ? type : LMA_GGML_F32;
        c.param[i] = i;
        c.type[i] = t;
        s = lma_gguf_add_tensor(w, gname, p->ndim, ne, t);
    }
    if (s == LMA_OK) s = lma_gguf_write(w, path, fill, &c);
done:
    free(c.host);
    free(c.param);
    free(c.type);
    free(c.scratch);
    return s;
}

/* ---- LoRA adapters, as llama.cpp's --lora reads them (convert_lora_to_gguf.py) ---- */
typedef struct {
    const lma_model *m;
    const float *host;  /* (lora table.total) the adapter's fp32 masters on the host */
    int *param;         /* (n tensors) index into the adapter's table */
    int *permute;       /* (n tensors) rows of a q/k B to permute: heads, or 0 */
    float *scratch;
} lora_ctx;

static lma_status lora_fill(void *vctx, int i, void *dst, size_t nbytes) {
    lora_ctx *c = vctx;
    const lma_param_info *p = &c->m->lora->table.info[c->param[i]];
    const float *x = c->host + p->offset;
    if (nbytes != p->numel * sizeof(float)) return lma_error(LMA_ERR_INTERNAL, "GGUF export: %s: size", p->name);
    if (c->permute[i]) {
        lma_gguf_permute_rows(dst, x, c->permute[i], c->m->cfg.head_dim, (size_t)p->shape[1], 1);
        return LMA_OK;
    }
    memcpy(dst, x, nbytes);
    return LMA_OK;
}

lma_status lma_adapter_save_gguf(const lma_model *m, lma_gguf_writer *w, const char *path) {
    const lma_lora *l = m->lora;
    if (!l) return lma_error(LMA_ERR_ARG, "%s: the model has no adapter attached", path);
    /* llama.cpp scales by alpha / r: rsLoRA's alpha / sqrt(r) is alpha * sqrt(r) / r */
    float alpha = l->p.rslora ? l->p.alpha * sqrtf((float)l->p.r) : l->p.alpha;
    LMA_TRY(lma_gguf_set_str(w, "general.architecture", gguf_arch(m->cfg.arch)));
    LMA_TRY(lma_gguf_set_str(w, "general.type", "adapter"));
    LMA_TRY(lma_gguf_set_str(w, "adapter.type", "lora"));
    LMA_TRY(lma_gguf_set_f32(w, "adapter.lora.alpha", alpha));
    int n = l->table.count;
    lora_ctx c = {m, NULL, malloc((size_t)n * sizeof(int)), malloc((size_t)n * sizeof(int)), NULL};
    float *host = malloc(l->table.total * sizeof(float));
    lma_status s = LMA_OK;
    if (!c.param || !c.permute || !host) { s = lma_error(LMA_ERR_NOMEM, "%s: out of memory", path); goto done; }
    m->be->download(host, l->params, l->table.total * sizeof(float));
    c.host = host;
    for (int i = 0; i < n && s == LMA_OK; i++) {
        const lma_param_info *p = &l->table.info[i];
        /* base_model.model.model.layers.N.<module>.<proj>.lora_{A,B}.weight -> blk.N.<gguf>.weight.lora_{a,b} */
        const char *pre = "base_model.model.", *nm = p->name;
        size_t k = strlen(pre), len = strlen(nm);
        int is_a = len > 14 && !strcmp(nm + len - 14, ".lora_A.weight"), is_b = len > 14 && !strcmp(nm + len - 14, ".lora_B.weight");
        char hf[128], gname[128];
        if (strncmp(nm, pre, k) || (!is_a && !is_b) || len - k - 14 + 8 > sizeof hf) {
            s = lma_error(LMA_ERR_INTERNAL, "%s: unexpected adapter tensor %s", path, nm);
            break;
        }
        snprintf(hf, sizeof hf, "%.*s.weight", (int)(len - k - 14), nm + k);
        if (!lma_gguf_name_from_hf(hf, gname, sizeof gname - 8)) {
            s = lma_error(LMA_ERR_INTERNAL, "%s: no GGUF name for %s", path, hf);
            break;
        }
        strcat(gname, is_a ? ".lora_a" : ".lora_b");
        c.param[i] = i;
        c.permute[i] = 0;
        if (is_b && lma_gguf_arch_permutes(m->cfg.arch)) {
            if (strstr(hf, "q_proj")) c.permute[i] = m->cfg.n_heads;
            if (strstr(hf, "k_proj")) c.permute[i] = m->cfg.n_kv_heads;
        }
        int64_t ne[2] = {p->shape[1], p->shape[0]};
        s = lma_gguf_add_tensor(w, gname, 2, ne, LMA_GGML_F32);
    }
    if (s == LMA_OK) s = lma_gguf_write(w, path, lora_fill, &c);
done:
    free(host);
    free(c.param);
    free(c.permute);
    return s;
}
