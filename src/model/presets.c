#include "model/presets.h"
#include <string.h>

static const struct { const char *name; int dim, layers, heads, kv, hidden; } presets[] = {
    {"tiny", 128, 4, 4, 4, 352},     {"15m", 288, 6, 6, 6, 768},      {"60m", 512, 8, 8, 8, 1376},     {"125m", 768, 12, 12, 12, 2048},
    {"350m", 1024, 24, 16, 16, 2816}, {"1b", 2048, 22, 32, 4, 5632},
    {"7b", 4096, 32, 32, 32, 11008},
};

const char *lma_config_preset_names(void) { return "tiny|15m|60m|125m|350m|1b|7b"; }

lma_status lma_config_preset(const char *name, int vocab_size, int max_seq, lma_config *c) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(name, presets[i].name)) continue;
        memset(c, 0, sizeof *c);
        c->arch = LMA_ARCH_LLAMA;
        c->vocab_size = vocab_size;
        c->hidden_size = presets[i].dim;
        c->intermediate_size = presets[i].hidden;
        c->n_layers = presets[i].layers;
        c->n_heads = presets[i].heads;
        c->n_kv_heads = presets[i].kv;
        c->head_dim = presets[i].dim / presets[i].heads;
        c->max_position_embeddings = max_seq > 2048 ? max_seq : 2048;
        c->rms_norm_eps = 1e-5;
        c->rope_theta = 10000.0;
        c->bos_token_id = -1;
        strcpy(c->torch_dtype, "float32");
        return LMA_OK;
    }
    return lma_error(LMA_ERR_ARG, "unknown preset '%s' (choose %s)", name, lma_config_preset_names());
}
