/* Packing, shuffling, validation split, mixing and cursor. Rules: loader.h. */
#include "data/loader.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/targets.h"
#include "core/arena.h"

enum { STREAM_DATA = 1, STREAM_REPLAY = 2, STREAM_VAL = 3 };

typedef struct {
    const lma_shardset *set;
    uint64_t *docs;  /* (n): global document indices, ascending */
    uint64_t *order; /* (n): this epoch's order (a permutation of docs) */
    uint64_t n;
    int shuffle;
    lma_loader_stream_cursor cur;
    lma_rng next_rng; /* state after this epoch's shuffle: seeds the next epoch */
    uint64_t tokens_per_epoch;
} stream;

struct lma_loader {
    lma_loader_params p;
    const lma_shardset *data;
    stream tr, rp; /* training data, replay (rp.n == 0 when none) */
    uint8_t *is_val;  /* (ndocs of data) */
    uint64_t *val;    /* (nval): validation documents, ascending */
    uint64_t nval, val_pos, val_off, val_tokens;
    uint64_t data_tokens, replay_tokens, rows;
    uint64_t fingerprint;
};

lma_loader_params lma_loader_default_params(void) {
    lma_loader_params p;
    memset(&p, 0, sizeof p);
    p.B = 8; p.T = 256; p.seed = 1234; p.shuffle = 1;
    return p;
}

static uint64_t mix64(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= h >> 33; h *= 0xff51afd7ed558ccdULL; h ^= h >> 33;
    return h;
}
static uint64_t dbits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }

static void stream_order(stream *s) {
    memcpy(s->order, s->docs, s->n * sizeof *s->order);
    lma_rng r = s->cur.rng;
    if (s->shuffle)
        for (uint64_t i = s->n - 1; i > 0; i--) {
            uint64_t j = lma_rng_below(&r, i + 1), t = s->order[i];
            s->order[i] = s->order[j]; s->order[j] = t;
        }
    s->next_rng = r;
}

static lma_status stream_init(stream *s, const lma_shardset *set, uint64_t n, int shuffle, lma_rng rng) {
    s->set = set; s->n = n; s->shuffle = shuffle;
    s->docs = lma_calloc(n, sizeof *s->docs, "loader document list");
    s->order = lma_calloc(n, sizeof *s->order, "loader document order");
    if (!s->docs || !s->order) return LMA_ERR_NOMEM;
    memset(&s->cur, 0, sizeof s->cur);
    s->cur.rng = rng;
    return LMA_OK;
}

static lma_status stream_finish(stream *s) {
    s->tokens_per_epoch = 0;
    for (uint64_t i = 0; i < s->n; i++) {
        uint64_t len;
        LMA_TRY(lma_shardset_doc_len(s->set, s->docs[i], &len));
        s->tokens_per_epoch += len + 1;
    }
    stream_order(s);
    return LMA_OK;
}

/* Reads doc tokens [off, off+n) where index len is the EOS. */
static lma_status read_seg(const lma_shardset *set, uint64_t doc, uint64_t len, uint64_t off, size_t n,
                           int32_t *out) {
    size_t body = off < len ? (size_t)((len - off) < n ? (len - off) : n) : 0;
    if (body) LMA_TRY(lma_shardset_doc_read(set, doc, off, body, out));
    for (size_t i = body; i < n; i++) out[i] = lma_shardset_eos(set); /* only the EOS position */
    return LMA_OK;
}

static void set_targets(const int32_t *ids, const int32_t *seg, int32_t *tgt, int T) {
    for (int t = 0; t < T; t++)
        tgt[t] = (t + 1 < T && seg[t] >= 0 && seg[t + 1] == seg[t]) ? ids[t + 1] : LMA_IGNORE_INDEX;
}

static lma_status stream_row(stream *s, int32_t *ids, int32_t *seg, int T) {
    int t = 0, sid = 0;
    while (t < T) {
        uint64_t doc = s->order[s->cur.pos], len;
        LMA_TRY(lma_shardset_doc_len(s->set, doc, &len));
        uint64_t left = len + 1 - s->cur.offset;
        size_t take = left < (uint64_t)(T - t) ? (size_t)left : (size_t)(T - t);
        LMA_TRY(read_seg(s->set, doc, len, s->cur.offset, take, ids + t));
        for (size_t i = 0; i < take; i++) seg[t + i] = sid;
        sid++;
        t += (int)take;
        s->cur.offset += take;
        if (s->cur.offset == len + 1) {
            s->cur.offset = 0;
            if (++s->cur.pos == s->n) {
                s->cur.pos = 0;
                s->cur.epoch++;
                s->cur.rng = s->next_rng;
                stream_order(s);
            }
        }
    }
    return LMA_OK;
}

lma_status lma_loader_create(const lma_shardset *data, const lma_loader_params *p, lma_loader **out) {
    *out = NULL;
    if (!data || !p) return lma_error(LMA_ERR_ARG, "loader: NULL data or params");
    if (p->B < 1 || p->T < 1)
        return lma_error(LMA_ERR_ARG, "loader: batch %d x sequence %d (both must be >= 1)", p->B, p->T);
    if (!(p->val_fraction >= 0 && p->val_fraction < 1))
        return lma_error(LMA_ERR_ARG, "loader: val_fraction %g (must be in [0, 1))", p->val_fraction);
    if (p->replay && !(p->replay_ratio >= 0 && p->replay_ratio <= 1))
        return lma_error(LMA_ERR_ARG, "loader: replay_ratio %g (must be in [0, 1])", p->replay_ratio);
    if (p->replay && lma_shardset_ndocs(p->replay) == 0 && p->replay_ratio > 0)
        return lma_error(LMA_ERR_ARG, "loader: the replay set has no documents");
    if (p->replay && lma_shardset_eos(p->replay) != lma_shardset_eos(data))
        return lma_error(LMA_ERR_ARG, "loader: replay EOS id %d differs from data EOS id %d",
                         (int)lma_shardset_eos(p->replay), (int)lma_shardset_eos(data));
    uint64_t D = lma_shardset_ndocs(data);
    if (D == 0) return lma_error(LMA_ERR_ARG, "loader: the data set has no documents");
    if (D > SIZE_MAX / 8) return lma_error(LMA_ERR_ARG, "loader: %" PRIu64 " documents is too many", D);

    lma_loader *L = lma_calloc(1, sizeof *L, "loader");
    if (!L) return LMA_ERR_NOMEM;
    lma_status st = LMA_OK;
    L->p = *p;
    if (!p->replay) { L->p.replay_ratio = 0; }
    L->data = data;
    lma_rng base;
    lma_rng_seed(&base, p->seed);
    lma_rng r_data = lma_rng_split(&base, STREAM_DATA);
    lma_rng r_rep = lma_rng_split(&base, STREAM_REPLAY);
    lma_rng r_val = lma_rng_split(&base, STREAM_VAL);

    /* validation split: seeded partial Fisher-Yates */
    uint64_t nval = 0;
    if (p->val_fraction > 0) {
        nval = (uint64_t)llround(p->val_fraction * (double)D);
        if (nval == 0) nval = 1;
        if (nval >= D) {
            lma_loader_free(L);
            return lma_error(LMA_ERR_ARG, "loader: val_fraction %g of %" PRIu64 " documents leaves none for training",
                             p->val_fraction, D);
        }
    }
    L->is_val = lma_calloc((size_t)D, 1, "loader validation flags");
    if (!L->is_val) { st = LMA_ERR_NOMEM; goto fail; }
    if (nval) {
        uint64_t *idx = lma_calloc((size_t)D, sizeof *idx, "loader validation split");
        L->val = lma_calloc((size_t)nval, sizeof *L->val, "loader validation list");
        if (!idx || !L->val) { free(idx); st = LMA_ERR_NOMEM; goto fail; }
        for (uint64_t i = 0; i < D; i++) idx[i] = i;
        for (uint64_t i = 0; i < nval; i++) {
            uint64_t j = i + lma_rng_below(&r_val, D - i), t = idx[i];
            idx[i] = idx[j]; idx[j] = t;
            L->is_val[idx[i]] = 1;
        }
        free(idx);
        uint64_t k = 0;
        for (uint64_t i = 0; i < D; i++)
            if (L->is_val[i]) {
                L->val[k++] = i;
                uint64_t len;
                if ((st = lma_shardset_doc_len(data, i, &len)) != LMA_OK) goto fail;
                L->val_tokens += len + 1;
            }
    }
    L->nval = nval;

    if ((st = stream_init(&L->tr, data, D - nval, p->shuffle, r_data)) != LMA_OK) goto fail;
    for (uint64_t i = 0, k = 0; i < D; i++)
        if (!L->is_val[i]) L->tr.docs[k++] = i;
    if ((st = stream_finish(&L->tr)) != LMA_OK) goto fail;
    if (p->replay && lma_shardset_ndocs(p->replay) > 0) {
        uint64_t R = lma_shardset_ndocs(p->replay);
        if ((st = stream_init(&L->rp, p->replay, R, p->shuffle, r_rep)) != LMA_OK) goto fail;
        for (uint64_t i = 0; i < R; i++) L->rp.docs[i] = i;
        if ((st = stream_finish(&L->rp)) != LMA_OK) goto fail;
    } else {
        L->rp.cur.rng = r_rep;
    }

    uint64_t h = mix64(0x4c4d414c4f414452ULL, p->seed); /* "LMALOADR" */
    h = mix64(h, D);
    h = mix64(h, lma_shardset_ntokens(data));
    h = mix64(h, p->replay ? lma_shardset_ndocs(p->replay) : 0);
    h = mix64(h, p->replay ? lma_shardset_ntokens(p->replay) : 0);
    h = mix64(h, dbits(p->val_fraction));
    h = mix64(h, dbits(L->p.replay_ratio));
    h = mix64(h, (uint64_t)(p->shuffle != 0));
    L->fingerprint = h;
    *out = L;
    return LMA_OK;
fail:
    lma_loader_free(L);
    return st;
}

void lma_loader_free(lma_loader *L) {
    if (!L) return;
    free(L->tr.docs); free(L->tr.order);
    free(L->rp.docs); free(L->rp.order);
    free(L->is_val); free(L->val);
    free(L);
}

/* Source of the next row: 1 for replay. See loader.h (mixing). */
static int pick_replay(const lma_loader *L) {
    if (L->rp.n == 0 || L->p.replay_ratio <= 0) return 0;
    double T = (double)L->p.T, tot = (double)(L->data_tokens + L->replay_tokens);
    double target = L->p.replay_ratio * (tot + T), r = (double)L->replay_tokens;
    return fabs(r + T - target) < fabs(r - target);
}

lma_status lma_loader_next(lma_loader *L, int32_t *ids, int32_t *targets, int32_t *seg) {
    if (!L || !ids || !targets || !seg) return lma_error(LMA_ERR_ARG, "loader_next: NULL argument");
    const int T = L->p.T;
    for (int b = 0; b < L->p.B; b++) {
        size_t o = (size_t)b * (size_t)T;
        int rep = pick_replay(L);
        LMA_TRY(stream_row(rep ? &L->rp : &L->tr, ids + o, seg + o, T));
        set_targets(ids + o, seg + o, targets + o, T);
        if (rep) L->replay_tokens += (uint64_t)T; else L->data_tokens += (uint64_t)T;
        L->rows++;
    }
    return LMA_OK;
}

lma_status lma_loader_val_next(lma_loader *L, int32_t *ids, int32_t *targets, int32_t *seg, int *rows) {
    if (!L || !ids || !targets || !seg || !rows) return lma_error(LMA_ERR_ARG, "loader_val_next: NULL argument");
    const int T = L->p.T;
    const int32_t eos = lma_shardset_eos(L->data);
    *rows = 0;
    if (L->val_pos >= L->nval) { /* pass over: report it and rewind */
        for (size_t i = 0; i < (size_t)L->p.B * (size_t)T; i++) { ids[i] = eos; seg[i] = -1; targets[i] = LMA_IGNORE_INDEX; }
        lma_loader_val_reset(L);
        return LMA_OK;
    }
    for (int b = 0; b < L->p.B; b++) {
        int32_t *id = ids + (size_t)b * T, *sg = seg + (size_t)b * T;
        int t = 0, sid = 0;
        while (t < T && L->val_pos < L->nval) {
            uint64_t doc = L->val[L->val_pos], len;
            LMA_TRY(lma_shardset_doc_len(L->data, doc, &len));
            uint64_t left = len + 1 - L->val_off;
            size_t take = left < (uint64_t)(T - t) ? (size_t)left : (size_t)(T - t);
            LMA_TRY(read_seg(L->data, doc, len, L->val_off, take, id + t));
            for (size_t i = 0; i < take; i++) sg[t + i] = sid;
            sid++; t += (int)take; L->val_off += take;
            if (L->val_off == len + 1) { L->val_off = 0; L->val_pos++; }
        }
        if (t > 0) (*rows)++;
        for (; t < T; t++) { id[t] = eos; sg[t] = -1; }
        set_targets(id, sg, targets + (size_t)b * T, T);
    }
    return LMA_OK;
}

void lma_loader_val_reset(lma_loader *L) { L->val_pos = 0; L->val_off = 0; }

uint64_t lma_loader_val_batches(const lma_loader *L) {
    uint64_t rowsn = (L->val_tokens + (uint64_t)L->p.T - 1) / (uint64_t)L->p.T;
    return (rowsn + (uint64_t)L->p.B - 1) / (uint64_t)L->p.B;
}

uint64_t lma_loader_train_docs(const lma_loader *L) { return L->tr.n; }
uint64_t lma_loader_val_docs(const lma_loader *L) { return L->nval; }
uint64_t lma_loader_train_tokens(const lma_loader *L) { return L->tr.tokens_per_epoch; }
int lma_loader_is_val(const lma_loader *L, uint64_t doc) {
    return doc < lma_shardset_ndocs(L->data) && L->is_val[doc];
}

void lma_loader_get_cursor(const lma_loader *L, lma_loader_cursor *c) {
    memset(c, 0, sizeof *c);
    c->fingerprint = L->fingerprint;
    c->data = L->tr.cur;
    c->replay = L->rp.cur;
    c->data_tokens = L->data_tokens;
    c->replay_tokens = L->replay_tokens;
    c->rows = L->rows;
}

static lma_status check_stream(const stream *s, const lma_loader_stream_cursor *c, const char *what) {
    if (s->n == 0) return LMA_OK;
    if (c->pos >= s->n)
        return lma_error(LMA_ERR_ARG, "loader cursor: %s position %" PRIu64 " out of range (%" PRIu64 " documents)",
                         what, c->pos, s->n);
    return LMA_OK;
}

/* offset check needs the order, which the rng regenerates */
static lma_status apply_stream(stream *s, const lma_loader_stream_cursor *c, const char *what) {
    if (s->n == 0) { s->cur = *c; return LMA_OK; }
    stream tmp = *s;
    tmp.cur = *c;
    stream_order(&tmp); /* fills s->order in place (shared pointer) */
    uint64_t len;
    LMA_TRY(lma_shardset_doc_len(s->set, tmp.order[c->pos], &len));
    if (c->offset > len) {
        stream_order(s); /* restore the previous order */
        return lma_error(LMA_ERR_ARG, "loader cursor: %s offset %" PRIu64 " beyond document length %" PRIu64,
                         what, c->offset, len);
    }
    *s = tmp;
    return LMA_OK;
}

lma_status lma_loader_set_cursor(lma_loader *L, const lma_loader_cursor *c) {
    if (c->fingerprint != L->fingerprint)
        return lma_error(LMA_ERR_ARG, "loader cursor: fingerprint %016" PRIx64 " does not match this loader (%016" PRIx64
                         "): different data, seed, val_fraction, replay ratio or shuffle", c->fingerprint, L->fingerprint);
    LMA_TRY(check_stream(&L->tr, &c->data, "data"));
    LMA_TRY(check_stream(&L->rp, &c->replay, "replay"));
    lma_loader_stream_cursor old = L->tr.cur;
    LMA_TRY(apply_stream(&L->tr, &c->data, "data"));
    lma_status st = apply_stream(&L->rp, &c->replay, "replay");
    if (st != LMA_OK) { apply_stream(&L->tr, &old, "data"); return st; } /* leave the loader as it was */
    L->data_tokens = c->data_tokens;
    L->replay_tokens = c->replay_tokens;
    L->rows = c->rows;
    return LMA_OK;
}

/* ---- JSON ---- */
static int add_hex(cJSON *o, const char *k, uint64_t v) {
    char b[24];
    snprintf(b, sizeof b, "0x%016" PRIx64, v);
    return cJSON_AddStringToObject(o, k, b) != NULL;
}

static cJSON *stream_json(const lma_loader_stream_cursor *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = add_hex(o, "epoch", c->epoch) && add_hex(o, "pos", c->pos) && add_hex(o, "offset", c->offset);
    cJSON *r = cJSON_AddArrayToObject(o, "rng");
    ok = ok && r;
    for (int i = 0; ok && i < 4; i++) {
        char b[24];
        snprintf(b, sizeof b, "0x%016" PRIx64, c->rng.s[i]);
        cJSON *x = cJSON_CreateString(b);
        ok = x && cJSON_AddItemToArray(r, x);
    }
    if (!ok) { cJSON_Delete(o); return NULL; }
    return o;
}

lma_status lma_loader_cursor_to_json(const lma_loader_cursor *c, cJSON **out) {
    *out = NULL;
    cJSON *o = cJSON_CreateObject();
    int ok = o && add_hex(o, "fingerprint", c->fingerprint) && add_hex(o, "data_tokens", c->data_tokens) &&
             add_hex(o, "replay_tokens", c->replay_tokens) && add_hex(o, "rows", c->rows);
    cJSON *d = ok ? stream_json(&c->data) : NULL;
    ok = d && cJSON_AddItemToObject(o, "data", d);
    if (!ok) cJSON_Delete(d);
    cJSON *r = ok ? stream_json(&c->replay) : NULL;
    ok = r && cJSON_AddItemToObject(o, "replay", r);
    if (!ok) { cJSON_Delete(r); cJSON_Delete(o); return lma_error(LMA_ERR_NOMEM, "loader cursor: out of memory building JSON"); }
    *out = o;
    return LMA_OK;
}

static lma_status parse_hex(const cJSON *s, const char *ctx, const char *key, uint64_t *v) {
    if (!cJSON_IsString(s))
        return lma_error(LMA_ERR_FORMAT, "%s: loader cursor field \"%s\" missing or not a \"0x...\" string", ctx, key);
    const char *p = s->valuestring;
    if (p[0] != '0' || (p[1] != 'x' && p[1] != 'X') || !p[2] || strlen(p) > 18)
        return lma_error(LMA_ERR_FORMAT, "%s: loader cursor field \"%s\" = \"%s\" is not a 64-bit hex string", ctx, key, p);
    uint64_t x = 0;
    for (const char *q = p + 2; *q; q++) {
        int d = (*q >= '0' && *q <= '9') ? *q - '0' : (*q >= 'a' && *q <= 'f') ? *q - 'a' + 10
              : (*q >= 'A' && *q <= 'F') ? *q - 'A' + 10 : -1;
        if (d < 0) return lma_error(LMA_ERR_FORMAT, "%s: loader cursor field \"%s\" = \"%s\" is not hex", ctx, key, p);
        x = x << 4 | (uint64_t)d;
    }
    *v = x;
    return LMA_OK;
}

static lma_status stream_from_json(const cJSON *o, const char *ctx, const char *name, lma_loader_stream_cursor *c) {
    if (!cJSON_IsObject(o)) return lma_error(LMA_ERR_FORMAT, "%s: loader cursor field \"%s\" missing or not an object", ctx, name);
    LMA_TRY(parse_hex(cJSON_GetObjectItemCaseSensitive(o, "epoch"), ctx, "epoch", &c->epoch));
    LMA_TRY(parse_hex(cJSON_GetObjectItemCaseSensitive(o, "pos"), ctx, "pos", &c->pos));
    LMA_TRY(parse_hex(cJSON_GetObjectItemCaseSensitive(o, "offset"), ctx, "offset", &c->offset));
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "rng");
    if (!cJSON_IsArray(r) || cJSON_GetArraySize(r) != 4)
        return lma_error(LMA_ERR_FORMAT, "%s: loader cursor field \"%s.rng\" must be an array of 4 hex strings", ctx, name);
    for (int i = 0; i < 4; i++) LMA_TRY(parse_hex(cJSON_GetArrayItem(r, i), ctx, "rng", &c->rng.s[i]));
    return LMA_OK;
}

lma_status lma_loader_cursor_from_json(const cJSON *j, const char *ctx, lma_loader_cursor *c) {
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(j)) return lma_error(LMA_ERR_FORMAT, "%s: loader cursor is not a JSON object", ctx);
    LMA_TRY(parse_hex(cJSON_GetObjectItemCaseSensitive(j, "fingerprint"), ctx, "fingerprint", &c->fingerprint));
    LMA_TRY(parse_hex(cJSON_GetObjectItemCaseSensitive(j, "data_tokens"), ctx, "data_tokens", &c->data_tokens));
    LMA_TRY(parse_hex(cJSON_GetObjectItemCaseSensitive(j, "replay_tokens"), ctx, "replay_tokens", &c->replay_tokens));
    LMA_TRY(parse_hex(cJSON_GetObjectItemCaseSensitive(j, "rows"), ctx, "rows", &c->rows));
    LMA_TRY(stream_from_json(cJSON_GetObjectItemCaseSensitive(j, "data"), ctx, "data", &c->data));
    LMA_TRY(stream_from_json(cJSON_GetObjectItemCaseSensitive(j, "replay"), ctx, "replay", &c->replay));
    return LMA_OK;
}
