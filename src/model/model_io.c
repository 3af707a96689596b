/* Reading and writing a model's weights: load from any weight source (an HF folder or a
 * GGUF file, weight_source.h, found by path or short name), save as an HF folder, and the
 * HF-style random initialisation. The memory and the compute are llama.c's. */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/io.h"
#include "core/model_path.h"
#include "core/rng.h"
#include "model/model_internal.h"
#include "model/safetensors.h"
#include "model/weight_source.h"
#include "format/gguf.h"
#include "quant/ggml_quant.h"
#include "quant/qdot.h"

lma_status lma_model_init_random(lma_model *m, uint64_t seed, float std) {
    lma_rng r;
    lma_rng_seed(&r, seed);
    lma_param_table full; /* the unsplit table: an NF4 model gets the same numbers, quantized */
    LMA_TRY(lma_params_build(&m->cfg, &full));
    /* every tensor draws from its own stream, split in order first: the threads give the same numbers */
    lma_rng *streams = malloc((size_t)full.count * sizeof *streams);
    if (!streams) { lma_params_free(&full); return lma_error(LMA_ERR_NOMEM, "out of memory initialising the model"); }
    lma_status st = LMA_OK; /* the first failure of any worker (each sets its own thread's message) */
    char msg[256] = "";
    for (int i = 0; i < full.count; i++) streams[i] = lma_rng_split(&r, (uint64_t)i);
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < full.count; i++) {
        const lma_param_info *p = &full.info[i];
        lma_rng tr = streams[i];
        const lma_param_info *own = lma_params_find(&m->table, p->name);
        float *d = malloc(p->numel * sizeof(float));
        lma_status ts = LMA_OK;
        if (!d) ts = lma_error(LMA_ERR_NOMEM, "out of memory initialising %s", p->name);
        int is_norm = p->kind == LMA_P_ATTN_NORM || p->kind == LMA_P_MLP_NORM || p->kind == LMA_P_FINAL_NORM ||
                      p->kind == LMA_P_QNORM || p->kind == LMA_P_KNORM;
        for (size_t j = 0; d && j < p->numel; j++)
            d[j] = is_norm ? 1.0f : p->ndim == 1 ? 0.0f : (float)(std * lma_rng_normal(&tr));
        if (d) ts = own ? lma_model_put_weights(m, own, 0, d, p->numel) : lma_model_set_quantized(m, p, d);
        free(d);
        if (ts != LMA_OK) {
#pragma omp critical(lma_init_random_fail)
            if (st == LMA_OK) { st = ts; snprintf(msg, sizeof msg, "%s", lma_last_error()); }
            lma_clear_error(); /* the worker's message travels in msg */
        }
    }
    free(streams);
    lma_params_free(&full);
    if (st != LMA_OK) return lma_error(st, "%s", msg);
    lma_model_sync_weights(m);
    return lma_backend_sync(m->be);
}

static lma_status load_impl(const char *path, const lma_backend *be, unsigned flags, lma_model **out) {
    *out = NULL;
    char where[4096];
    lma_config cfg;
    LMA_TRY(lma_model_path_resolve(path, where, sizeof where));
    LMA_TRY(lma_model_config_load(where, &cfg));
    /* GGUF blocks stay quantized only from a GGUF file onto a backend that has their matmul */
    if (!lma_gguf_is_file(where) || !be->matmul_q_fwd || (flags & LMA_MODEL_NF4)) flags &= ~LMA_MODEL_GGUF_QUANT;
    lma_model *m = NULL;
    LMA_TRY(lma_model_create_ex(&cfg, be, flags, &m));
    lma_status s = lma_model_load_weights(m, where);
    if (s == LMA_OK && !(m->path = strdup(where))) s = lma_error(LMA_ERR_NOMEM, "out of memory");
    if (s != LMA_OK) { lma_model_free(m); return s; }
    *out = m;
    return LMA_OK;
}

lma_status lma_model_load_nf4(const char *dir, const lma_backend *be, lma_model **out) {
    return load_impl(dir, be, LMA_MODEL_NF4, out);
}

lma_status lma_model_load_ex(const char *dir, const lma_backend *be, unsigned flags, lma_model **out) {
    return load_impl(dir, be, flags, out);
}

/* Tensor i of src into its GGUF-block slot (LMA_MODEL_GGUF_QUANT): the blocks as stored
 * when a kernel takes their type, else the fp32 values (an F32 slot). */
static lma_status put_blocks(lma_model *m, const lma_param_info *p, lma_weight_source *src, int i, float **stage,
                             const char *dir) {
    int L7 = m->cfg.n_layers * LMA_PROJ_COUNT;
    lma_qmat *w = p->kind == LMA_P_EMBED ? &m->qm[L7] : p->kind == LMA_P_LM_HEAD ? &m->qm[L7 + 1] : NULL;
    static const lma_param_kind proj[LMA_PROJ_COUNT] = {LMA_P_WQ, LMA_P_WK, LMA_P_WV, LMA_P_WO,
                                                        LMA_P_WGATE, LMA_P_WUP, LMA_P_WDOWN};
    for (int k = 0; !w && k < LMA_PROJ_COUNT; k++)
        if (p->kind == proj[k]) w = &m->qm[(size_t)p->layer * LMA_PROJ_COUNT + k];
    if (!w) return lma_error(LMA_ERR_FORMAT, "%s: '%s' cannot be kept quantized", dir, p->name);
    lma_qmat_free(w);
    int rows = (int)p->shape[0], cols = (int)p->shape[1];
    uint32_t type = src->block_type && src->read_blocks ? src->block_type(src->ctx, i) : LMA_GGML_F32;
    if (lma_qmat_type_kept(type) && cols % lma_ggml_block_elems(type) == 0) {
        LMA_TRY(lma_qmat_alloc(w, type, rows, cols));
        LMA_TRY(src->read_blocks(src->ctx, i, w->data, w->row_bytes, rows));
        return lma_qmat_pack(w);
    }
    LMA_TRY(lma_qmat_alloc(w, LMA_GGML_F32, rows, cols));
    LMA_TRY(src->read_f32(src->ctx, i, w->data, p->numel));
    (void)stage;
    return lma_params_check_finite(w->data, p->numel, dir, p->name);
}

lma_status lma_model_load_weights(lma_model *m, const char *path) {
    const lma_config *cfg = &m->cfg;
    char dir[4096];
    LMA_TRY(lma_model_path_resolve(path, dir, sizeof dir));
    lma_weight_source src;
    LMA_TRY(lma_weight_source_open(dir, cfg, &src));
    lma_status s = LMA_OK;
    float *stage = NULL;
    char *seen = calloc((size_t)(m->table.count + m->qtable.count), 1);
    if (!seen) { s = lma_error(LMA_ERR_NOMEM, "out of memory"); goto done; }
    for (int i = 0; i < src.n; i++) {
        const char *name;
        int ndim;
        int64_t shape[2];
        s = src.info(src.ctx, i, &name, &ndim, shape);
        if (s != LMA_OK) goto done;
        if (!name) continue;
        const lma_param_info *p = lma_params_find(&m->table, name);
        int quant = 0;
        if (!p && (m->nf4 || m->qm) && (p = lma_params_find(&m->qtable, name))) quant = 1;
        char prefixed[512]; /* a base-model checkpoint (AutoModel's, e.g. Qwen3-Embedding): no "model." */
        if (!p && strncmp(name, "model.", 6) && snprintf(prefixed, sizeof prefixed, "model.%s", name) < (int)sizeof prefixed) {
            p = lma_params_find(&m->table, prefixed);
            if (!p && (m->nf4 || m->qm) && (p = lma_params_find(&m->qtable, prefixed))) quant = 1;
        }
        if (!p) {
            if (cfg->tie_word_embeddings && !strcmp(name, "lm_head.weight")) continue; /* tied copy */
            s = lma_error(LMA_ERR_FORMAT, "%s: unexpected tensor '%s' for %s (check config.json)", dir, name,
                          lma_arch_name(cfg->arch));
            goto done;
        }
        if (ndim != p->ndim || shape[0] != p->shape[0] || (p->ndim > 1 && shape[1] != p->shape[1])) {
            s = lma_error(LMA_ERR_SHAPE, "%s: tensor '%s' has shape [%lld%s%lld], config says [%lld, %lld]", dir, name,
                          (long long)shape[0], ndim > 1 ? ", " : "", ndim > 1 ? (long long)shape[1] : 0LL,
                          (long long)p->shape[0], (long long)p->shape[1]);
            goto done;
        }
        if (quant && m->qm) {
            s = put_blocks(m, p, &src, i, &stage, dir);
            if (s != LMA_OK) goto done;
            seen[m->table.count + (p - m->qtable.info)] = 1;
            continue;
        }
        float *tmp = realloc(stage, p->numel * sizeof(float));
        if (!tmp) { s = lma_error(LMA_ERR_NOMEM, "out of memory reading %s", name); goto done; }
        stage = tmp;
        s = src.read_f32(src.ctx, i, stage, p->numel);
        if (s != LMA_OK) goto done;
        s = lma_params_check_finite(stage, p->numel, dir, name);
        if (s != LMA_OK) goto done;
        if (quant) {
            s = lma_model_set_quantized(m, p, stage);
            if (s != LMA_OK) goto done;
            seen[m->table.count + (p - m->qtable.info)] = 1;
        } else {
            s = lma_model_put_weights(m, p, 0, stage, p->numel);
            if (s != LMA_OK) goto done;
            seen[p - m->table.info] = 1;
        }
    }
    for (int i = 0; i < m->table.count + m->qtable.count; i++)
        if (!seen[i]) {
            const char *name = i < m->table.count ? m->table.info[i].name : m->qtable.info[i - m->table.count].name;
            s = lma_error(LMA_ERR_FORMAT, "%s: missing tensor '%s'", dir, name);
            goto done;
        }
    lma_model_sync_weights(m);
done:
    free(stage);
    free(seen);
    lma_weight_source_close(&src);
    return s;
}

lma_status lma_model_save(const lma_model *m, const char *dir, int bf16, size_t max_shard_bytes) {
    char path[4096];
    if (m->nf4) return lma_error(LMA_ERR_UNSUPPORTED, "%s: saving an NF4 model is not supported (merge on an fp32 base)", dir);
    LMA_TRY(lma_model_no_qm(m, "saving"));
    LMA_TRY(lma_model_need_masters(m, dir));
    LMA_TRY(lma_mkdir_p(dir));
    LMA_TRY(lma_path_join(path, sizeof path, dir, "config.json"));
    LMA_TRY(lma_config_save(path, &m->cfg));
    float *h = lma_malloc(m->table.total * sizeof(float), "model save staging");
    lma_st_entry *e = lma_calloc((size_t)m->table.count, sizeof *e, "model save entries");
    lma_status s = LMA_OK;
    if (!h || !e) { s = LMA_ERR_NOMEM; goto done; }
    m->be->download(h, m->params, m->table.total * sizeof(float));
    for (int i = 0; i < m->table.count; i++) {
        const lma_param_info *p = &m->table.info[i];
        e[i].name = p->name;
        e[i].ndim = p->ndim;
        e[i].shape[0] = p->shape[0];
        e[i].shape[1] = p->shape[1];
        e[i].data = h + p->offset;
    }
    s = lma_st_save_dir(dir, e, m->table.count, bf16 ? LMA_DT_BF16 : LMA_DT_F32, max_shard_bytes);
done:
    free(h);
    free(e);
    return s;
}

