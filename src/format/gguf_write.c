/* GGUF writer (gguf.h "writing"): metadata is serialized into one growing buffer as it
 * is set; tensors are described up front and their bytes produced at write time. */
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/io.h"
#include "format/gguf.h"
#include "quant/ggml_quant.h"

#define ALIGN 32
#define MAX_KEY 65536 /* the reader's limits (gguf.c) */
#define MAX_NAME 63 /* llama.cpp: GGML_MAX_NAME 64 with the NUL */

typedef struct {
    char *name;
    int n_dims;
    int64_t ne[LMA_GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t nbytes, offset;
} wtensor;

struct lma_gguf_writer {
    unsigned char *kv; /* serialized key/value pairs */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    char **keys; size_t n_keys, keys_cap;
    wtensor *t; size_t n_t, t_cap;
    uint64_t data_len;
};

static lma_status put(lma_gguf_writer *w, const void *p, size_t n) {
    LMA_TRY(lma_grow(&w->kv, &w->kv_cap, w->kv_len + n, 1, 4096, "GGUF metadata"));
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return LMA_OK;
}

static lma_status put_u32(lma_gguf_writer *w, uint32_t v) { return put(w, &v, 4); }
static lma_status put_u64(lma_gguf_writer *w, uint64_t v) { return put(w, &v, 8); }
static lma_status put_str(lma_gguf_writer *w, const char *s, size_t n) {
    LMA_TRY(put_u64(w, n));
    return put(w, s, n);
}

lma_status lma_gguf_writer_new(lma_gguf_writer **out) {
    *out = calloc(1, sizeof **out);
    return *out ? LMA_OK : lma_error(LMA_ERR_NOMEM, "out of memory");
}

void lma_gguf_writer_free(lma_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_keys; i++) free(w->keys[i]);
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->keys);
    free(w->t);
    free(w->kv);
    free(w);
}

/* records the key (refusing a duplicate) and writes it with its type */
static lma_status key(lma_gguf_writer *w, const char *k, lma_gguf_type t) {
    size_t kl = strlen(k);
    if (kl == 0 || kl > MAX_KEY)
        return lma_error(LMA_ERR_ARG, "GGUF writer: key '%.60s' has length %zu (1 to %d)", k, kl, MAX_KEY);
    /* the data is laid out on ALIGN: another alignment would make the file unreadable */
    if (!strcmp(k, "general.alignment") && t != LMA_GGUF_U32)
        return lma_error(LMA_ERR_ARG, "GGUF writer: general.alignment must be a u32");
    for (size_t i = 0; i < w->n_keys; i++)
        if (!strcmp(w->keys[i], k)) return lma_error(LMA_ERR_ARG, "GGUF writer: key '%s' set twice", k);
    LMA_TRY(lma_grow(&w->keys, &w->keys_cap, w->n_keys + 1, sizeof *w->keys, 32, "GGUF keys"));
    if (!(w->keys[w->n_keys] = strdup(k))) return lma_error(LMA_ERR_NOMEM, "out of memory");
    w->n_keys++;
    w->n_kv++;
    LMA_TRY(put_str(w, k, strlen(k)));
    return put_u32(w, (uint32_t)t);
}

lma_status lma_gguf_set_str(lma_gguf_writer *w, const char *k, const char *val) {
    LMA_TRY(key(w, k, LMA_GGUF_STRING));
    return put_str(w, val, strlen(val));
}
static lma_status check_alignment(const char *k, uint64_t v) {
    if (!strcmp(k, "general.alignment") && v != ALIGN)
        return lma_error(LMA_ERR_ARG, "GGUF writer: general.alignment %llu (the writer aligns to %d)",
                         (unsigned long long)v, ALIGN);
    return LMA_OK;
}

lma_status lma_gguf_set_u32(lma_gguf_writer *w, const char *k, uint32_t v) {
    LMA_TRY(check_alignment(k, v));
    LMA_TRY(key(w, k, LMA_GGUF_U32));
    return put(w, &v, 4);
}
lma_status lma_gguf_set_i32(lma_gguf_writer *w, const char *k, int32_t v) {
    LMA_TRY(key(w, k, LMA_GGUF_I32));
    return put(w, &v, 4);
}
lma_status lma_gguf_set_f32(lma_gguf_writer *w, const char *k, float v) {
    LMA_TRY(key(w, k, LMA_GGUF_F32));
    return put(w, &v, 4);
}
lma_status lma_gguf_set_bool(lma_gguf_writer *w, const char *k, int v) {
    LMA_TRY(key(w, k, LMA_GGUF_BOOL));
    unsigned char b = v != 0;
    return put(w, &b, 1);
}

lma_status lma_gguf_set_str_array(lma_gguf_writer *w, const char *k, const char *const *vals, const size_t *lens,
                                  uint64_t n) {
    LMA_TRY(key(w, k, LMA_GGUF_ARRAY));
    LMA_TRY(put_u32(w, LMA_GGUF_STRING));
    LMA_TRY(put_u64(w, n));
    for (uint64_t i = 0; i < n; i++) LMA_TRY(put_str(w, vals[i], lens ? lens[i] : strlen(vals[i])));
    return LMA_OK;
}

lma_status lma_gguf_set_array(lma_gguf_writer *w, const char *k, lma_gguf_type t, const void *vals, uint64_t n) {
    size_t sz = lma_gguf_type_size(t);
    if (!sz) return lma_error(LMA_ERR_ARG, "GGUF writer: '%s': arrays of type %d take lma_gguf_set_str_array", k, (int)t);
    LMA_TRY(key(w, k, LMA_GGUF_ARRAY));
    LMA_TRY(put_u32(w, (uint32_t)t));
    LMA_TRY(put_u64(w, n));
    return put(w, vals, n * sz);
}

lma_status lma_gguf_copy_kv(lma_gguf_writer *w, const lma_gguf *g, int (*skip)(const char *key, size_t len)) {
    for (int64_t i = 0; i < lma_gguf_n_kv(g); i++) {
        const lma_gguf_kv *kv = lma_gguf_kv_at(g, i);
        if (skip && skip(kv->key.s, kv->key.len)) continue;
        char *k = malloc(kv->key.len + 1);
        if (!k) return lma_error(LMA_ERR_NOMEM, "out of memory");
        memcpy(k, kv->key.s, kv->key.len);
        k[kv->key.len] = 0;
        lma_status s = kv->type == LMA_GGUF_U32 ? check_alignment(k, kv->v.u) : LMA_OK;
        if (s == LMA_OK) s = key(w, k, kv->type);
        free(k);
        LMA_TRY(s);
        if (kv->type == LMA_GGUF_STRING) LMA_TRY(put_str(w, kv->str.s, kv->str.len));
        else if (kv->type == LMA_GGUF_ARRAY) {
            LMA_TRY(put_u32(w, kv->arr_type));
            LMA_TRY(put_u64(w, kv->arr_n));
            if (kv->arr_type == LMA_GGUF_STRING) {
                for (uint64_t j = 0; j < kv->arr_n; j++) LMA_TRY(put_str(w, kv->arr_str[j].s, kv->arr_str[j].len));
            } else LMA_TRY(put(w, kv->arr_data, kv->arr_n * lma_gguf_type_size(kv->arr_type)));
        } else {
            /* scalars: the widened value back to its own width */
            union { uint64_t u; int64_t i; double f; float f32; } x = {0};
            if (kv->type == LMA_GGUF_F32) x.f32 = (float)kv->v.f;
            else if (kv->type == LMA_GGUF_F64) x.f = kv->v.f;
            else x.u = kv->v.u;
            LMA_TRY(put(w, &x, lma_gguf_type_size(kv->type)));
        }
    }
    return LMA_OK;
}

lma_status lma_gguf_add_tensor(lma_gguf_writer *w, const char *name, int n_dims, const int64_t *ne, uint32_t type) {
    size_t nl = strlen(name);
    if (nl == 0 || nl > MAX_NAME)
        return lma_error(LMA_ERR_ARG, "GGUF writer: tensor name '%.60s' has length %zu (1 to %d)", name, nl, MAX_NAME);
    if (!lma_ggml_type_name(type))
        return lma_error(LMA_ERR_ARG, "GGUF writer: tensor '%s' has unknown ggml type %u", name, (unsigned)type);
    if (n_dims < 1 || n_dims > LMA_GGUF_MAX_DIMS)
        return lma_error(LMA_ERR_ARG, "GGUF writer: tensor '%s' has %d dimensions", name, n_dims);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return lma_error(LMA_ERR_ARG, "GGUF writer: tensor '%s' added twice", name);
    uint64_t n = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 0 || (ne[d] && n > UINT64_MAX / (uint64_t)ne[d]))
            return lma_error(LMA_ERR_ARG, "GGUF writer: tensor '%s' has a bad shape", name);
        n *= (uint64_t)ne[d];
    }
    if (ne[0] % lma_ggml_block_elems(type))
        return lma_error(LMA_ERR_ARG, "GGUF writer: tensor '%s': rows of %lld do not fill %s blocks of %lld", name,
                         (long long)ne[0], lma_ggml_type_name(type) ? lma_ggml_type_name(type) : "?",
                         (long long)lma_ggml_block_elems(type));
    uint64_t nb;
    LMA_TRY(lma_ggml_nbytes(type, n, &nb));
    LMA_TRY(lma_grow(&w->t, &w->t_cap, w->n_t + 1, sizeof *w->t, 64, "GGUF tensors"));
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return lma_error(LMA_ERR_NOMEM, "out of memory");
    t->n_dims = n_dims;
    for (int d = 0; d < n_dims; d++) t->ne[d] = ne[d];
    t->type = type;
    t->nbytes = nb;
    t->offset = w->data_len;
    w->data_len += (nb + ALIGN - 1) / ALIGN * ALIGN;
    w->n_t++;
    return LMA_OK;
}

static const unsigned char zeros[ALIGN];

lma_status lma_gguf_write(lma_gguf_writer *w, const char *path, lma_gguf_fill_fn fill, void *ctx) {
    /* header + metadata + tensor infos, in memory */
    size_t kv_end = w->kv_len;
    lma_status s = LMA_OK;
    for (size_t i = 0; i < w->n_t && s == LMA_OK; i++) {
        const wtensor *t = &w->t[i];
        s = put_str(w, t->name, strlen(t->name));
        if (s == LMA_OK) s = put_u32(w, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims && s == LMA_OK; d++) s = put_u64(w, (uint64_t)t->ne[d]);
        if (s == LMA_OK) s = put_u32(w, t->type);
        if (s == LMA_OK) s = put_u64(w, t->offset);
    }
    if (s != LMA_OK) { w->kv_len = kv_end; return s; }
    unsigned char head[24];
    memcpy(head, "GGUF", 4);
    uint32_t ver = 3;
    uint64_t nt = w->n_t;
    memcpy(head + 4, &ver, 4);
    memcpy(head + 8, &nt, 8);
    memcpy(head + 16, &w->n_kv, 8);
    size_t meta_len = sizeof head + w->kv_len;
    size_t pad = (ALIGN - meta_len % ALIGN) % ALIGN;
    lma_atomic_file af;
    unsigned char *buf = NULL;
    s = lma_atomic_open(&af, path);
    if (s != LMA_OK) { w->kv_len = kv_end; return s; }
    s = lma_atomic_write(&af, head, sizeof head);
    if (s == LMA_OK) s = lma_atomic_write(&af, w->kv, w->kv_len);
    if (s == LMA_OK && pad) s = lma_atomic_write(&af, zeros, pad);
    uint64_t maxb = 0;
    for (size_t i = 0; i < w->n_t; i++) if (w->t[i].nbytes > maxb) maxb = w->t[i].nbytes;
    if (s == LMA_OK && w->n_t && !(buf = malloc(maxb ? maxb : 1)))
        s = lma_error(LMA_ERR_NOMEM, "%s: out of memory for a %llu-byte tensor", path, (unsigned long long)maxb);
    for (size_t i = 0; i < w->n_t && s == LMA_OK; i++) {
        const wtensor *t = &w->t[i];
        s = fill(ctx, (int)i, buf, t->nbytes);
        if (s == LMA_OK) s = lma_atomic_write(&af, buf, t->nbytes);
        size_t tp = (ALIGN - t->nbytes % ALIGN) % ALIGN;
        if (s == LMA_OK && tp) s = lma_atomic_write(&af, zeros, tp);
    }
    free(buf);
    w->kv_len = kv_end; /* the writer stays reusable */
    if (s == LMA_OK) return lma_atomic_commit(&af);
    lma_atomic_abort(&af);
    return s;
}
