/* The curation model: data/curate's lma_curate_llm backed by a model that
 * lmadapt loads (see curate_model.h). */
#include "eval/curate_model.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/arena.h"
#include "core/io.h"
#include "data/curate/text.h"
#include "infer/generate.h"
#include "model/adapter.h"

typedef struct {
    lma_model *model;
    lma_tokenizer *tok;
    int32_t eos[16]; int n_eos;
} curate_model;

static void hash_file_bytes(const char *dir, const char *name, uint64_t h[2]) {
    char path[4200];
    char *data = NULL; size_t len = 0;
    if (lma_path_join(path, sizeof path, dir, name) || !lma_file_exists(path) || lma_read_file(path, &data, &len)) {
        lma_clear_error();
        return;
    }
    h[0] = lma_mix64(h[0] ^ lma_hash64(data, len, 11));
    h[1] = lma_mix64(h[1] + lma_hash64(data, len, 12));
    free(data);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* config.json and tokenizer_config.json bytes; tokenizer.json and every weight file
 * by name, size and mtime (hashing gigabytes of weights would cost a minute). */
static void model_identity(const char *dir, uint64_t id[2]) {
    id[0] = 0x6a756467652d6964ULL; id[1] = 0x6c6d61646170742dULL;
    struct stat fs;
    if (!lma_is_dir(dir) && !stat(dir, &fs)) { /* a GGUF file: its path, size and mtime */
        uint64_t v[3] = {lma_hash64(dir, strlen(dir), 1), (uint64_t)fs.st_size, (uint64_t)fs.st_mtim.tv_sec};
        id[0] = lma_mix64(id[0] ^ lma_hash64(v, sizeof v, 21));
        id[1] = lma_mix64(id[1] ^ lma_hash64(v, sizeof v, 22));
        return;
    }
    hash_file_bytes(dir, "config.json", id);
    hash_file_bytes(dir, "tokenizer_config.json", id);
    uint64_t acc[2] = {0, 0};
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!ends_with(e->d_name, ".safetensors") && !ends_with(e->d_name, ".safetensors.index.json") &&
            strcmp(e->d_name, "tokenizer.json"))
            continue;
        char path[4200];
        struct stat st;
        if (lma_path_join(path, sizeof path, dir, e->d_name) || stat(path, &st)) { lma_clear_error(); continue; }
        uint64_t v[4] = {lma_hash64(e->d_name, strlen(e->d_name), 1), (uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec,
                         (uint64_t)st.st_mtim.tv_nsec};
        acc[0] += lma_hash64(v, sizeof v, 21); /* order-independent over the directory */
        acc[1] += lma_hash64(v, sizeof v, 22);
    }
    if (d) closedir(d);
    id[0] = lma_mix64(id[0] ^ acc[0]);
    id[1] = lma_mix64(id[1] ^ acc[1]);
}

static void model_free(void *ctx) {
    curate_model *cm = ctx;
    lma_model_free(cm->model);
    lma_tok_free(cm->tok);
    free(cm);
}

static lma_status model_complete(const lma_curate_llm *l, lma_curate_call *calls, size_t n, const lma_gen_params *gp) {
    const curate_model *cm = l->ctx;
    lma_gen_params g = *gp;
    if (!g.stop_ids) { g.stop_ids = cm->eos; g.n_stop_ids = cm->n_eos; }
    lma_gen_request *rq = lma_calloc(n, sizeof *rq, "curation prompts");
    lma_gen_result *r = lma_calloc(n, sizeof *r, "curation prompts");
    lma_status st = rq && r ? LMA_OK : LMA_ERR_NOMEM;
    for (size_t i = 0; st == LMA_OK && i < n; i++) {
        int32_t *ids = NULL;
        size_t *spans = NULL, n_spans = 0;
        st = lma_chat_encode(cm->tok, l->chat_template, calls[i].msgs, calls[i].n, 1, &ids, &rq[i].n_prompt, &spans, &n_spans);
        free(spans);
        rq[i].prompt = ids;
        rq[i].p = &g;
    }
    if (st == LMA_OK) st = lma_generate_batch(cm->model, cm->tok, rq, n, l->max_active, r);
    for (size_t i = 0; st == LMA_OK && i < n; i++)
        if (!r[i].text && !(r[i].text = lma_calloc(1, 1, "curation model"))) st = LMA_ERR_NOMEM;
    for (size_t i = 0; i < n && rq && r; i++) {
        free((int32_t *)rq[i].prompt);
        free(r[i].ids);
        if (st == LMA_OK) { calls[i].text = r[i].text; calls[i].len = r[i].len; }
        else free(r[i].text);
    }
    free(rq); free(r);
    return st;
}

lma_status lma_curate_llm_load(const char *dir, const char *adapter_dir, const struct lma_backend *be,
                               lma_curate_llm *l) {
    memset(l, 0, sizeof *l);
    curate_model *cm = lma_calloc(1, sizeof *cm, "curation model");
    if (!cm) return LMA_ERR_NOMEM;
    lma_status st = lma_tok_load(dir, &cm->tok); /* needed to render prompts */
    if (!st) st = lma_model_load_ex(dir, be ? be : lma_backend_cpu(), LMA_MODEL_FROZEN | LMA_MODEL_GGUF_QUANT, &cm->model);
    if (!st && adapter_dir) st = lma_adapter_load(cm->model, adapter_dir);
    if (st) { model_free(cm); return st; }
    cm->n_eos = lma_generation_eos(dir, &cm->model->cfg, cm->eos, 16);
    if (!cm->n_eos && lma_tok_eos_id(cm->tok) >= 0) cm->eos[cm->n_eos++] = lma_tok_eos_id(cm->tok);
    l->ctx = cm;
    l->complete = model_complete;
    l->max_active = 8;
    l->free_ctx = model_free;
    model_identity(dir, l->identity);
    if (adapter_dir) { /* the adapter's config and weights file join the identity */
        uint64_t a[2];
        model_identity(adapter_dir, a);
        hash_file_bytes(adapter_dir, "adapter_config.json", a);
        l->identity[0] = lma_mix64(l->identity[0] ^ a[0]);
        l->identity[1] = lma_mix64(l->identity[1] ^ a[1]);
    }
    return LMA_OK;
}
