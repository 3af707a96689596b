/* RoPE of a model (model/llama.h): the attention scale yarn implies, the dynamic
 * frequencies' update as the context grows, and rope scaling set for fine-tuning
 * (lma_model_set_rope_scaling). The frequencies themselves come from the config
 * (model/config.h lma_config_rope_inv_freq); the kernels that apply them are the backend's. */
#include "model/llama.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "model/model_internal.h"

/* 1/sqrt(HD), times the square of the factor yarn applies to cos and sin (q.k scales by it) */
float lma_model_attn_scale(const lma_config *c) {
    double af = lma_config_rope_attention_factor(c);
    return (float)(af * af / sqrt((double)c->head_dim));
}

/* dynamic rope: inverse frequencies for sequences of L positions, recomputed as
 * transformers' dynamic_rope_update does (on growth past the length they were made for,
 * and back to the original below max_position_embeddings) */
void lma_model_rope_update(lma_model *m, int L) {
    const lma_config *c = &m->cfg;
    if (c->rope_type != LMA_ROPE_DYNAMIC) return;
    int orig = c->max_position_embeddings, len = m->rope_len ? m->rope_len : orig;
    if (L > len) len = L;
    else if (L < orig && len > orig) len = orig;
    else return;
    float inv[1024];
    if (c->head_dim / 2 > 1024) return;
    lma_config_rope_inv_freq_len(c, len, inv);
    m->be->upload(m->inv_freq, inv, sizeof(float) * (size_t)(c->head_dim / 2));
    m->rope_len = len;
}

lma_status lma_model_set_rope_scaling(lma_model *m, const char *spec) {
    lma_config *c = &m->cfg;
    const char *colon = strchr(spec, ':');
    char *end = NULL;
    double f = colon ? strtod(colon + 1, &end) : 0;
    int k = -1; /* the rope type named before the colon (not "default") */
    for (int t = LMA_ROPE_LINEAR; colon && t <= LMA_ROPE_YARN; t++)
        if ((size_t)(colon - spec) == strlen(lma_rope_type_name(t)) && !strncmp(spec, lma_rope_type_name(t), colon - spec))
            k = t;
    if (k < 0 || !end || *end || !(f > 1) || !isfinite(f) || f > 1024)
        return lma_error(LMA_ERR_ARG, "rope scaling '%s': give TYPE:FACTOR with TYPE linear, dynamic, yarn or llama3 and "
                         "FACTOR in (1, 1024]", spec);
    if ((int)c->rope_type == k && c->rope_factor == f) return LMA_OK; /* a resumed run's config already has it */
    if (c->rope_type != LMA_ROPE_DEFAULT)
        return lma_error(LMA_ERR_UNSUPPORTED, "the model already has rope scaling (%s); scaling it again is not supported",
                         lma_rope_type_name(c->rope_type));
    c->rope_type = (lma_rope_type)k;
    c->rope_factor = f;
    if (c->rope_type == LMA_ROPE_YARN || c->rope_type == LMA_ROPE_LLAMA3) {
        c->rope_original_max_pos = c->max_position_embeddings;
        double mp = c->max_position_embeddings * f;
        c->max_position_embeddings = mp > INT_MAX ? INT_MAX : (int)mp;
        c->rope_low_freq_factor = 1; c->rope_high_freq_factor = 4; /* Llama 3.1's */
        c->rope_beta_fast = 32; c->rope_beta_slow = 1; c->rope_truncate = 1;
        c->rope_attention_factor = 0.1 * log(f) + 1.0;
    }
    float inv[1024];
    if (c->head_dim / 2 > 1024) return lma_error(LMA_ERR_UNSUPPORTED, "head_dim %d is too large", c->head_dim);
    lma_config_rope_inv_freq(c, inv);
    m->be->upload(m->inv_freq, inv, sizeof(float) * (size_t)(c->head_dim / 2));
    m->rope_len = 0;
    return LMA_OK;
}
