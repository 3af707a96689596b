/* BERT-family encoder on the backend op table (encoder.h). Per layer (post-LN):
 *   q k v = x W{q,k,v}^T + b ; a = attention_bidir(q, k, v, lens)
 *   x = LN1(a Wo^T + bo + x) ; x = LN2(gelu(x Wi^T + bi) Wd^T + bd + x)
 * after x = LN0(word[ids] + pos[t] + type[0]). Every token-wise op (matmuls, LayerNorm,
 * GELU, adds) runs on the packed tokens, N = sum of the row lengths, so no compute goes to
 * padding; only the attention works on the padded (B,T) layout, its inputs gathered into it
 * and its output gathered back with embedding_fwd (a row gather). Shapes: C hidden,
 * I intermediate, NH heads of HD = C/NH. */
#include "model/encoder.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/io.h"
#include "core/json.h"
#include "model/safetensors.h"

typedef struct {
    void *wq, *wk, *wv, *wo, *wi, *wd;                    /* (C,C) x4, (I,C), (C,I) */
    void *bq, *bk, *bv, *bo, *bi, *bd;                    /* (C) x4, (I), (C) */
    void *ln1w, *ln1b, *ln2w, *ln2b;                      /* (C) */
} enc_layer;

struct lma_encoder {
    lma_encoder_config cfg;
    const lma_backend *be;
    void *emb, *mat, *vec;          /* the three weight families (act storage) */
    void *word, *pos, *type;        /* (V,C), (P,C), (TV,C) views into emb */
    void *ln0w, *ln0b;              /* (C) views into vec */
    enc_layer *layers;              /* (n_layers) */
    /* scratch: one backend block for Ncap packed tokens, Pcap padded slots and Bcap rows;
     * one host block for the index arrays and the packed hidden states */
    void *scratch;
    size_t Ncap, Pcap, Bcap;
    void *x, *t, *q, *k, *v, *a, *f;  /* packed (N,C) x6, (N,I) */
    void *qp, *kp, *vp, *ap;          /* padded (B*T, C) x4: the attention's layout */
    int32_t *ids_d, *pos_d, *tt_d;    /* (N) */
    int32_t *to_pad_d, *to_pack_d;    /* (B*T) packed row of each padded slot, (N) padded slot of each token */
    int32_t *lens_d;                  /* (B) */
    float *hf;                        /* (N,C) fp32 when act storage is not fp32, else NULL */
    void *host;                       /* host block: the arrays below */
    int32_t *h_ids, *h_pos, *h_to_pad, *h_to_pack; /* (N), (N), (B*T), (N) */
    float *h_hidden;                  /* (N,C) */
};

const lma_encoder_config *lma_encoder_cfg(const lma_encoder *e) { return &e->cfg; }

static lma_status cfg_int(const cJSON *j, const char *k, const char *path, int lo, int hi, int *out) {
    int64_t v = 0;
    LMA_TRY(lma_json_int(j, k, 1, path, &v));
    if (v < lo || v > hi) return lma_error(LMA_ERR_FORMAT, "%s: \"%s\" = %lld is out of range [%d, %d]", path, k, (long long)v, lo, hi);
    *out = (int)v;
    return LMA_OK;
}

static lma_status read_config(const char *dir, lma_encoder_config *c) {
    char path[4096];
    LMA_TRY(lma_path_join(path, sizeof path, dir, "config.json"));
    cJSON *j = NULL;
    LMA_TRY(lma_json_load(path, &j));
    lma_status st = LMA_OK;
    const char *mt = NULL, *act = NULL, *pet = NULL;
    if (st == LMA_OK) st = lma_json_str(j, "model_type", 0, path, &mt);
    if (st == LMA_OK && mt && strcmp(mt, "bert"))
        st = lma_error(LMA_ERR_UNSUPPORTED, "%s: model_type \"%s\" is not a BERT encoder", path, mt);
    if (st == LMA_OK) st = cfg_int(j, "vocab_size", path, 1, 1 << 24, &c->vocab);
    if (st == LMA_OK) st = cfg_int(j, "hidden_size", path, 1, 1 << 16, &c->C);
    if (st == LMA_OK) st = cfg_int(j, "num_hidden_layers", path, 1, 1024, &c->n_layers);
    if (st == LMA_OK) st = cfg_int(j, "num_attention_heads", path, 1, 1024, &c->NH);
    if (st == LMA_OK) st = cfg_int(j, "intermediate_size", path, 1, 1 << 20, &c->I);
    if (st == LMA_OK) st = cfg_int(j, "max_position_embeddings", path, 1, 1 << 20, &c->max_pos);
    c->type_vocab = 2;
    if (st == LMA_OK && cJSON_GetObjectItemCaseSensitive(j, "type_vocab_size"))
        st = cfg_int(j, "type_vocab_size", path, 1, 1 << 16, &c->type_vocab);
    double eps = 1e-12;
    if (st == LMA_OK) st = lma_json_num(j, "layer_norm_eps", 0, path, &eps);
    c->eps = (float)eps;
    if (st == LMA_OK) st = lma_json_str(j, "hidden_act", 0, path, &act);
    if (st == LMA_OK && act && strcmp(act, "gelu"))
        st = lma_error(LMA_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (only \"gelu\", the erf form)", path, act);
    if (st == LMA_OK) st = lma_json_str(j, "position_embedding_type", 0, path, &pet);
    if (st == LMA_OK && pet && strcmp(pet, "absolute"))
        st = lma_error(LMA_ERR_UNSUPPORTED, "%s: position_embedding_type \"%s\" is not supported (only \"absolute\")", path, pet);
    if (st == LMA_OK && c->C % c->NH)
        st = lma_error(LMA_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->C, c->NH);
    cJSON_Delete(j);
    return st;
}

/* One tensor (named with the checkpoint's prefix) into host dst, numel checked. */
static lma_status read_tensor(const lma_st_file *f, const char *prefix, const char *name, float *dst, size_t n,
                              const char *dir) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const lma_st_tensor *t = lma_st_find(f, full);
    if (!t) return lma_error(LMA_ERR_FORMAT, "%s/model.safetensors: tensor \"%s\" is missing", dir, full);
    if (t->numel != n)
        return lma_error(LMA_ERR_SHAPE, "%s/model.safetensors: tensor \"%s\" has %zu elements, config.json implies %zu", dir,
                         full, t->numel, n);
    return lma_st_read_f32(t, dst, n);
}

/* host fp32 (n) -> backend act storage at dst */
static lma_status to_act(const lma_backend *be, void *dst, const float *host, size_t n) {
    if (be->act_bytes == 4) { be->upload(dst, host, n * sizeof(float)); return LMA_OK; }
    float *tmp = be->alloc(n * sizeof(float));
    if (!tmp) return lma_error(LMA_ERR_NOMEM, "encoder: cannot allocate %zu floats on %s", n, be->name);
    be->upload(tmp, host, n * sizeof(float));
    be->cast_to_act(dst, tmp, n);
    lma_status st = lma_backend_sync(be);
    be->free(tmp);
    return st;
}

/* Reads a family: names[i] of sizes[i] floats, consecutive, into one backend block. */
typedef struct { char name[160]; size_t n; } fam_item;
static lma_status load_family(const lma_encoder *e, const lma_st_file *f, const char *prefix, const fam_item *it,
                              int count, const char *dir, void **block) {
    size_t total = 0;
    for (int i = 0; i < count; i++) total += it[i].n;
    float *host = lma_malloc(total * sizeof(float), "encoder weights");
    if (!host) return LMA_ERR_NOMEM;
    lma_status st = LMA_OK;
    size_t off = 0;
    for (int i = 0; i < count && st == LMA_OK; i++) {
        st = read_tensor(f, prefix, it[i].name, host + off, it[i].n, dir);
        off += it[i].n;
    }
    if (st == LMA_OK && !(*block = e->be->alloc(total * (size_t)e->be->act_bytes)))
        st = lma_error(LMA_ERR_NOMEM, "encoder: cannot allocate %zu weights on %s", total, e->be->name);
    if (st == LMA_OK) st = to_act(e->be, *block, host, total);
    free(host);
    return st;
}

static lma_status load_weights(lma_encoder *e, const char *dir) {
    const lma_encoder_config *c = &e->cfg;
    lma_st_file *f = NULL;
    LMA_TRY(lma_st_open_dir(dir, &f));
    const char *prefix = lma_st_find(f, "embeddings.word_embeddings.weight") ? "" : "bert.";
    size_t C = (size_t)c->C, I = (size_t)c->I, L = (size_t)c->n_layers;
    size_t esz = (size_t)e->be->act_bytes;
    fam_item *it = lma_calloc(16 * L + 8, sizeof *it, "encoder weights");
    if (!it) { lma_st_close(f); return LMA_ERR_NOMEM; }
    lma_status st = LMA_OK;
    /* embeddings */
    int k = 0;
    it[k++] = (fam_item){"embeddings.word_embeddings.weight", (size_t)c->vocab * C};
    it[k++] = (fam_item){"embeddings.position_embeddings.weight", (size_t)c->max_pos * C};
    it[k++] = (fam_item){"embeddings.token_type_embeddings.weight", (size_t)c->type_vocab * C};
    st = load_family(e, f, prefix, it, k, dir, &e->emb);
    /* matrices */
    static const char *const mats[6] = {"attention.self.query", "attention.self.key", "attention.self.value",
                                        "attention.output.dense", "intermediate.dense", "output.dense"};
    k = 0;
    for (size_t l = 0; l < L; l++)
        for (int m = 0; m < 6; m++) {
            snprintf(it[k].name, sizeof it[k].name, "encoder.layer.%zu.%s.weight", l, mats[m]);
            it[k++].n = m < 4 ? C * C : I * C;
        }
    if (st == LMA_OK) st = load_family(e, f, prefix, it, k, dir, &e->mat);
    /* vectors: LN0, then per layer 6 biases and 2 LayerNorms */
    static const char *const lns[2] = {"attention.output.LayerNorm", "output.LayerNorm"};
    k = 0;
    it[k++] = (fam_item){"embeddings.LayerNorm.weight", C};
    it[k++] = (fam_item){"embeddings.LayerNorm.bias", C};
    for (size_t l = 0; l < L; l++) {
        for (int m = 0; m < 6; m++) {
            snprintf(it[k].name, sizeof it[k].name, "encoder.layer.%zu.%s.bias", l, mats[m]);
            it[k++].n = m == 4 ? I : C;
        }
        for (int m = 0; m < 2; m++) {
            snprintf(it[k].name, sizeof it[k].name, "encoder.layer.%zu.%s.weight", l, lns[m]);
            it[k++].n = C;
            snprintf(it[k].name, sizeof it[k].name, "encoder.layer.%zu.%s.bias", l, lns[m]);
            it[k++].n = C;
        }
    }
    if (st == LMA_OK) st = load_family(e, f, prefix, it, k, dir, &e->vec);
    free(it);
    lma_st_close(f);
    LMA_TRY(st);
    /* views */
    e->word = e->emb;
    e->pos = lma_at(e->word, (size_t)c->vocab * C, esz);
    e->type = lma_at(e->pos, (size_t)c->max_pos * C, esz);
    e->ln0w = e->vec;
    e->ln0b = lma_at(e->vec, C, esz);
    char *m = e->mat, *v = (char *)lma_at(e->vec, 2 * C, esz);
#define TAKE(p, n) (p += (n) * esz, p - (n) * esz)
    for (size_t l = 0; l < L; l++) {
        enc_layer *y = &e->layers[l];
        y->wq = TAKE(m, C * C); y->wk = TAKE(m, C * C); y->wv = TAKE(m, C * C); y->wo = TAKE(m, C * C);
        y->wi = TAKE(m, I * C); y->wd = TAKE(m, C * I);
        y->bq = TAKE(v, C); y->bk = TAKE(v, C); y->bv = TAKE(v, C); y->bo = TAKE(v, C);
        y->bi = TAKE(v, I); y->bd = TAKE(v, C);
        y->ln1w = TAKE(v, C); y->ln1b = TAKE(v, C); y->ln2w = TAKE(v, C); y->ln2b = TAKE(v, C);
    }
#undef TAKE
    return LMA_OK;
}

lma_status lma_encoder_load(const char *dir, const lma_backend *be, lma_encoder **out) {
    *out = NULL;
    if (!be) be = lma_backend_cpu();
    if (!be->layernorm_fwd || !be->gelu_fwd || !be->attention_bidir_fwd || !be->embedding_fwd || !be->matmul_fwd ||
        !be->add)
        return lma_error(LMA_ERR_UNSUPPORTED, "backend %s has no encoder ops (layernorm, gelu, bidirectional attention)",
                         be->name);
    lma_encoder *e = lma_calloc(1, sizeof *e, "encoder");
    if (!e) return LMA_ERR_NOMEM;
    e->be = be;
    lma_status st = read_config(dir, &e->cfg);
    if (st == LMA_OK && !(e->layers = lma_calloc((size_t)e->cfg.n_layers, sizeof *e->layers, "encoder layers")))
        st = LMA_ERR_NOMEM;
    if (st == LMA_OK) st = load_weights(e, dir);
    if (st != LMA_OK) { lma_encoder_free(e); return st; }
    *out = e;
    return LMA_OK;
}

void lma_encoder_free(lma_encoder *e) {
    if (!e) return;
    const lma_backend *be = e->be;
    if (e->emb) be->free(e->emb);
    if (e->mat) be->free(e->mat);
    if (e->vec) be->free(e->vec);
    if (e->scratch) be->free(e->scratch);
    free(e->layers);
    free(e->host);
    free(e);
}

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

/* scratch for N packed tokens, P = B*T padded slots, B rows (grows; contents not kept) */
static lma_status ensure_scratch(lma_encoder *e, size_t N, size_t P, size_t B) {
    if (N <= e->Ncap && P <= e->Pcap && B <= e->Bcap) return LMA_OK;
    if (N < e->Ncap) N = e->Ncap;
    if (P < e->Pcap) P = e->Pcap;
    if (B < e->Bcap) B = e->Bcap;
    const lma_backend *be = e->be;
    size_t C = (size_t)e->cfg.C, I = (size_t)e->cfg.I, esz = (size_t)be->act_bytes;
    size_t nc = up64(N * C * esz), pc = up64(P * C * esz), ni = up64(N * I * esz), nid = up64(N * sizeof(int32_t));
    size_t pid = up64(P * sizeof(int32_t)), bid = up64(B * sizeof(int32_t));
    size_t total = 6 * nc + ni + 4 * pc + 4 * nid + pid + bid + (esz != 4 ? up64(N * C * sizeof(float)) : 0);
    size_t htotal = 3 * N * sizeof(int32_t) + P * sizeof(int32_t) + N * C * sizeof(float);
    if (e->scratch) be->free(e->scratch);
    free(e->host);
    e->Ncap = e->Pcap = e->Bcap = 0;
    e->host = lma_malloc(htotal, "encoder host scratch");
    e->scratch = be->alloc(total);
    if (!e->scratch || !e->host) {
        if (e->scratch) be->free(e->scratch);
        e->scratch = NULL;
        return lma_error(LMA_ERR_NOMEM, "encoder: cannot allocate %zu bytes of scratch on %s", total, be->name);
    }
    char *p = e->scratch;
    void **acts[6] = {&e->x, &e->t, &e->q, &e->k, &e->v, &e->a};
    for (int i = 0; i < 6; i++) { *acts[i] = p; p += nc; }
    e->f = p; p += ni;
    void **pads[4] = {&e->qp, &e->kp, &e->vp, &e->ap};
    for (int i = 0; i < 4; i++) { *pads[i] = p; p += pc; }
    e->ids_d = (int32_t *)p; p += nid;
    e->pos_d = (int32_t *)p; p += nid;
    e->tt_d = (int32_t *)p; p += nid;
    e->to_pack_d = (int32_t *)p; p += nid;
    e->to_pad_d = (int32_t *)p; p += pid;
    e->lens_d = (int32_t *)p; p += bid;
    e->hf = esz != 4 ? (float *)p : NULL;
    e->h_ids = e->host;
    e->h_pos = e->h_ids + N;
    e->h_to_pack = e->h_pos + N;
    e->h_to_pad = e->h_to_pack + N;
    e->h_hidden = (float *)(e->h_to_pad + P);
    e->Ncap = N;
    e->Pcap = P;
    e->Bcap = B;
    return LMA_OK;
}

lma_status lma_encoder_forward(lma_encoder *e, const int32_t *ids, const int32_t *lens, int B, int T, float *hidden) {
    const lma_encoder_config *c = &e->cfg;
    if (B < 1 || T < 1 || T > c->max_pos)
        return lma_error(LMA_ERR_ARG, "encoder: %d rows of %d tokens (at most %d positions)", B, T, c->max_pos);
    for (int b = 0; b < B; b++)
        if (lens[b] < 1 || lens[b] > T) return lma_error(LMA_ERR_ARG, "encoder: row %d has length %d (T %d)", b, lens[b], T);
    size_t P = (size_t)B * T, C = (size_t)c->C, I = (size_t)c->I, N = 0;
    for (size_t i = 0; i < P; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab) return lma_error(LMA_ERR_ARG, "encoder: token id %d outside the vocab (%d)", ids[i], c->vocab);
    for (int b = 0; b < B; b++) N += (size_t)lens[b];
    LMA_TRY(ensure_scratch(e, N, P, (size_t)B));
    const lma_backend *be = e->be;
    /* packed tokens (no padding) for every token-wise op; the attention gathers them into
     * the padded layout and back (embedding_fwd as a row gather) */
    size_t n0 = 0;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            size_t slot = (size_t)b * T + (size_t)t;
            e->h_to_pad[slot] = (int32_t)(n0 + (size_t)(t < lens[b] ? t : 0)); /* padded slots: any row */
            if (t >= lens[b]) continue;
            e->h_ids[n0 + (size_t)t] = ids[slot];
            e->h_pos[n0 + (size_t)t] = t;
            e->h_to_pack[n0 + (size_t)t] = (int32_t)slot;
        }
        n0 += (size_t)lens[b];
    }
    be->upload(e->ids_d, e->h_ids, N * sizeof(int32_t));
    be->upload(e->pos_d, e->h_pos, N * sizeof(int32_t));
    be->upload(e->to_pack_d, e->h_to_pack, N * sizeof(int32_t));
    be->upload(e->to_pad_d, e->h_to_pad, P * sizeof(int32_t));
    be->upload(e->lens_d, lens, (size_t)B * sizeof(int32_t));
    be->zero(e->tt_d, N * sizeof(int32_t));
    int n = (int)N, np = (int)P, iC = c->C, iI = c->I, HD = c->C / c->NH;
    float scale = 1.0f / sqrtf((float)HD);
    be->embedding_fwd(e->x, e->ids_d, e->word, n, iC);
    be->embedding_fwd(e->t, e->tt_d, e->type, n, iC);
    be->add(e->x, e->x, e->t, N * C);
    be->embedding_fwd(e->t, e->pos_d, e->pos, n, iC);
    be->add(e->x, e->x, e->t, N * C);
    be->layernorm_fwd(e->x, e->x, e->ln0w, e->ln0b, n, iC, c->eps);
    for (int l = 0; l < c->n_layers; l++) {
        const enc_layer *y = &e->layers[l];
        be->matmul_fwd(e->q, e->x, y->wq, y->bq, n, iC, iC);
        be->matmul_fwd(e->k, e->x, y->wk, y->bk, n, iC, iC);
        be->matmul_fwd(e->v, e->x, y->wv, y->bv, n, iC, iC);
        be->embedding_fwd(e->qp, e->to_pad_d, e->q, np, iC);
        be->embedding_fwd(e->kp, e->to_pad_d, e->k, np, iC);
        be->embedding_fwd(e->vp, e->to_pad_d, e->v, np, iC);
        be->attention_bidir_fwd(e->ap, e->qp, e->kp, e->vp, e->lens_d, B, T, c->NH, HD, scale);
        be->embedding_fwd(e->a, e->to_pack_d, e->ap, n, iC);
        be->matmul_fwd(e->t, e->a, y->wo, y->bo, n, iC, iC);
        be->add(e->t, e->t, e->x, N * C);
        be->layernorm_fwd(e->x, e->t, y->ln1w, y->ln1b, n, iC, c->eps);
        be->matmul_fwd(e->f, e->x, y->wi, y->bi, n, iC, iI);
        be->gelu_fwd(e->f, e->f, N * I);
        be->matmul_fwd(e->t, e->f, y->wd, y->bd, n, iI, iC);
        be->add(e->t, e->t, e->x, N * C);
        be->layernorm_fwd(e->x, e->t, y->ln2w, y->ln2b, n, iC, c->eps);
    }
    if (e->hf) {
        be->act_to_f32(e->hf, e->x, N * C);
        be->download(e->h_hidden, e->hf, N * C * sizeof(float));
    } else
        be->download(e->h_hidden, e->x, N * C * sizeof(float));
    LMA_TRY(lma_backend_sync(be));
    for (size_t i = 0; i < N; i++)
        memcpy(hidden + (size_t)e->h_to_pack[i] * C, e->h_hidden + i * C, C * sizeof(float));
    return LMA_OK;
}
