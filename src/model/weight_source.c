/* The weight source of an HF folder (safetensors) and the dispatch by format (weight_source.h). */
#include "model/weight_source.h"
#include <stdlib.h>
#include <string.h>
#include "core/io.h"
#include "format/gguf.h"
#include "model/gguf_model.h"
#include "model/safetensors.h"

static lma_status st_info(void *ctx, int i, const char **name, int *ndim, int64_t shape[2]) {
    const lma_st_tensor *t = lma_st_get(ctx, i);
    size_t n = strlen(t->name);
    *name = t->name;
    if (n >= 19 && !strcmp(t->name + n - 19, "rotary_emb.inv_freq")) *name = NULL; /* old checkpoints */
    *ndim = t->ndim;
    shape[0] = t->ndim > 0 ? t->shape[0] : 1;
    shape[1] = t->ndim > 1 ? t->shape[1] : 0;
    return LMA_OK;
}

static lma_status st_read(void *ctx, int i, float *dst, size_t n) { return lma_st_read_f32(lma_st_get(ctx, i), dst, n); }
static void st_close(void *ctx) { lma_st_close(ctx); }

lma_status lma_weight_source_open(const char *path, const lma_config *cfg, lma_weight_source *src) {
    memset(src, 0, sizeof *src);
    if (lma_gguf_is_file(path)) return lma_gguf_weight_source(path, cfg, src);
    lma_st_file *f = NULL;
    LMA_TRY(lma_st_open_dir(path, &f));
    src->ctx = f;
    src->where = path;
    src->n = lma_st_count(f);
    src->info = st_info;
    src->read_f32 = st_read;
    src->close = st_close;
    return LMA_OK;
}

void lma_weight_source_close(lma_weight_source *src) {
    if (src->close) src->close(src->ctx);
    memset(src, 0, sizeof *src);
}

lma_status lma_model_config_load(const char *path, lma_config *cfg) {
    if (!lma_gguf_is_file(path)) return lma_config_load(path, cfg);
    lma_gguf *g = NULL;
    LMA_TRY(lma_gguf_open(path, &g));
    lma_status s = lma_gguf_config(g, cfg);
    lma_gguf_close(g);
    return s;
}
