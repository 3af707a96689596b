/* GGUF reader (gguf.h). Every read goes through a cursor that checks the bytes left
 * before it touches them; counts are checked against the bytes they would need
 * before anything is allocated from them. */
#include "format/gguf.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/io.h"
#include "quant/ggml_quant.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_KEY 65536 /* a key longer than this is not a GGUF key */

struct lma_gguf {
    lma_map map;               /* the file (len 0 and data NULL for a buffer) */
    const unsigned char *data; /* whole file */
    size_t len;
    char *path;
    uint32_t version;
    int64_t n_kv, n_tensors;
    lma_gguf_kv *kv;           /* (n_kv) */
    lma_gguf_tensor *tensors;  /* (n_tensors) */
    lma_gguf_str *strs;        /* string array elements of every kv, one allocation */
    size_t alignment;
    uint64_t data_off;         /* start of the tensor data section */
};

typedef struct {
    const unsigned char *p;
    size_t len, pos;
    const char *ctx;
} cursor;

static size_t left(const cursor *c) { return c->len - c->pos; }

static lma_status need(cursor *c, uint64_t n, const char *what) {
    if (n > left(c))
        return lma_error(LMA_ERR_FORMAT, "%s: truncated: %s needs %llu bytes at offset %zu, the file has %zu left",
                         c->ctx, what, (unsigned long long)n, c->pos, left(c));
    return LMA_OK;
}

static lma_status rd(cursor *c, void *out, size_t n, const char *what) {
    LMA_TRY(need(c, n, what));
    memcpy(out, c->p + c->pos, n);
    c->pos += n;
    return LMA_OK;
}

static lma_status rd_u32(cursor *c, uint32_t *v, const char *what) { return rd(c, v, 4, what); }
static lma_status rd_u64(cursor *c, uint64_t *v, const char *what) { return rd(c, v, 8, what); }

static lma_status rd_str(cursor *c, lma_gguf_str *s, const char *what) {
    uint64_t n;
    LMA_TRY(rd_u64(c, &n, what));
    if (n > left(c))
        return lma_error(LMA_ERR_FORMAT, "%s: %s: string length %llu runs past the end of the file (%zu bytes left)",
                         c->ctx, what, (unsigned long long)n, left(c));
    s->s = (const char *)c->p + c->pos;
    s->len = n;
    c->pos += n;
    return LMA_OK;
}

size_t lma_gguf_type_size(lma_gguf_type t) {
    switch (t) {
    case LMA_GGUF_U8: case LMA_GGUF_I8: case LMA_GGUF_BOOL: return 1;
    case LMA_GGUF_U16: case LMA_GGUF_I16: return 2;
    case LMA_GGUF_U32: case LMA_GGUF_I32: case LMA_GGUF_F32: return 4;
    case LMA_GGUF_U64: case LMA_GGUF_I64: case LMA_GGUF_F64: return 8;
    default: return 0;
    }
}

static const char *type_name(uint32_t t) {
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                  "string", "array", "u64", "i64", "f64"};
    return t < LMA_GGUF_NTYPES ? names[t] : "unknown";
}

/* Reads one scalar of type t at p into kv->v. */
static void load_scalar(uint32_t t, const unsigned char *p, lma_gguf_kv *kv) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f32;
            uint64_t u64; int64_t i64; double f64; } x;
    memcpy(&x, p, lma_gguf_type_size(t));
    switch (t) {
    case LMA_GGUF_U8: case LMA_GGUF_BOOL: kv->v.u = x.u8; break;
    case LMA_GGUF_I8: kv->v.i = x.i8; break;
    case LMA_GGUF_U16: kv->v.u = x.u16; break;
    case LMA_GGUF_I16: kv->v.i = x.i16; break;
    case LMA_GGUF_U32: kv->v.u = x.u32; break;
    case LMA_GGUF_I32: kv->v.i = x.i32; break;
    case LMA_GGUF_F32: kv->v.f = x.f32; break;
    case LMA_GGUF_U64: kv->v.u = x.u64; break;
    case LMA_GGUF_I64: kv->v.i = x.i64; break;
    case LMA_GGUF_F64: kv->v.f = x.f64; break;
    default: break;
    }
}

static int is_signed(uint32_t t) {
    return t == LMA_GGUF_I8 || t == LMA_GGUF_I16 || t == LMA_GGUF_I32 || t == LMA_GGUF_I64;
}

/* Pass 1 over the key/value section: validates, counts string-array elements. */
static lma_status read_kv(cursor *c, lma_gguf *g, lma_gguf_kv *kv, int64_t idx, uint64_t *n_strs,
                          lma_gguf_str *strs) {
    char what[96];
    snprintf(what, sizeof what, "metadata key %lld", (long long)idx);
    LMA_TRY(rd_str(c, &kv->key, what));
    if (kv->key.len == 0 || kv->key.len > GGUF_MAX_KEY)
        return lma_error(LMA_ERR_FORMAT, "%s: %s has an invalid length %llu", c->ctx, what,
                         (unsigned long long)kv->key.len);
    int kl = kv->key.len > 60 ? 60 : (int)kv->key.len;
    snprintf(what, sizeof what, "key '%.*s'", kl, kv->key.s);
    uint32_t t;
    LMA_TRY(rd_u32(c, &t, what));
    if (t >= LMA_GGUF_NTYPES)
        return lma_error(LMA_ERR_FORMAT, "%s: %s has unknown value type %u", c->ctx, what, t);
    kv->type = (lma_gguf_type)t;
    if (t == LMA_GGUF_STRING) return rd_str(c, &kv->str, what);
    if (t != LMA_GGUF_ARRAY) {
        size_t sz = lma_gguf_type_size(t);
        LMA_TRY(need(c, sz, what));
        load_scalar(t, c->p + c->pos, kv);
        c->pos += sz;
        return LMA_OK;
    }
    uint32_t at;
    uint64_t n;
    LMA_TRY(rd_u32(c, &at, what));
    LMA_TRY(rd_u64(c, &n, what));
    if (at >= LMA_GGUF_NTYPES)
        return lma_error(LMA_ERR_FORMAT, "%s: %s is an array of unknown type %u", c->ctx, what, at);
    if (at == LMA_GGUF_ARRAY)
        return lma_error(LMA_ERR_FORMAT, "%s: %s is an array of arrays (not supported)", c->ctx, what);
    kv->arr_type = (lma_gguf_type)at;
    kv->arr_n = n;
    if (at == LMA_GGUF_STRING) {
        /* each element needs at least its 8-byte length */
        if (n > left(c) / 8)
            return lma_error(LMA_ERR_FORMAT, "%s: %s: array count %llu needs more bytes than the file has left (%zu)",
                             c->ctx, what, (unsigned long long)n, left(c));
        for (uint64_t i = 0; i < n; i++) {
            lma_gguf_str s;
            LMA_TRY(rd_str(c, &s, what));
            if (strs) strs[*n_strs + i] = s;
        }
        if (strs) kv->arr_str = strs + *n_strs;
        *n_strs += n;
        return LMA_OK;
    }
    size_t sz = lma_gguf_type_size(at);
    if (n > left(c) / sz)
        return lma_error(LMA_ERR_FORMAT, "%s: %s: array count %llu x %zu bytes runs past the end of the file (%zu left)",
                         c->ctx, what, (unsigned long long)n, sz, left(c));
    kv->arr_data = c->p + c->pos;
    c->pos += n * sz;
    (void)g;
    return LMA_OK;
}

static int cmp_str(const void *a, const void *b) {
    const lma_gguf_str *x = *(const lma_gguf_str *const *)a, *y = *(const lma_gguf_str *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->s, y->s, n) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* No two of the n names (first at `first`, `stride` bytes apart) are equal: sorted, O(n log n). */
static lma_status check_unique(const lma_gguf_str *first, size_t stride, size_t n, const char *ctx, const char *what) {
    if (n < 2) return LMA_OK;
    const lma_gguf_str **v = malloc(n * sizeof *v);
    if (!v) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx);
    for (size_t i = 0; i < n; i++) v[i] = (const lma_gguf_str *)((const char *)first + i * stride);
    qsort(v, n, sizeof *v, cmp_str);
    lma_status st = LMA_OK;
    for (size_t i = 1; i < n && st == LMA_OK; i++)
        if (!cmp_str(&v[i - 1], &v[i]))
            st = lma_error(LMA_ERR_FORMAT, "%s: duplicate %s '%.*s'", ctx, what, (int)(v[i]->len > 200 ? 200 : v[i]->len),
                           v[i]->s);
    free(v);
    return st;
}

static int cmp_offset(const void *a, const void *b) {
    const lma_gguf_tensor *x = *(const lma_gguf_tensor *const *)a, *y = *(const lma_gguf_tensor *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* No two tensors share bytes (llama.cpp lays them out back to back; overlap is malformed). */
static lma_status check_no_overlap(const lma_gguf *g, const char *ctx) {
    if (g->n_tensors < 2) return LMA_OK;
    const lma_gguf_tensor **v = malloc((size_t)g->n_tensors * sizeof *v);
    if (!v) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx);
    for (int64_t i = 0; i < g->n_tensors; i++) v[i] = &g->tensors[i];
    qsort(v, (size_t)g->n_tensors, sizeof *v, cmp_offset);
    lma_status st = LMA_OK;
    for (int64_t i = 1; i < g->n_tensors && st == LMA_OK; i++)
        if (v[i - 1]->nbytes && v[i]->nbytes && v[i - 1]->offset + v[i - 1]->nbytes > v[i]->offset)
            st = lma_error(LMA_ERR_FORMAT, "%s: tensors '%.*s' and '%.*s' overlap in the data section", ctx,
                           (int)v[i - 1]->name.len, v[i - 1]->name.s, (int)v[i]->name.len, v[i]->name.s);
    free(v);
    return st;
}

static lma_status parse(lma_gguf *g, const char *ctx) {
    cursor c = {g->data, g->len, 0, ctx};
    char magic[4];
    LMA_TRY(rd(&c, magic, 4, "the magic"));
    if (memcmp(magic, "GGUF", 4))
        return lma_error(LMA_ERR_FORMAT, "%s: not a GGUF file (no \"GGUF\" magic)", ctx);
    LMA_TRY(rd_u32(&c, &g->version, "the version"));
    if (g->version == 1)
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: GGUF version 1 is not supported (2 and 3 are)", ctx);
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xFFFF) == 0 && g->version)
            return lma_error(LMA_ERR_FORMAT, "%s: GGUF version %u looks big-endian (only little-endian files are read)",
                             ctx, g->version);
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (2 and 3 are)", ctx, g->version);
    }
    uint64_t nt, nkv;
    LMA_TRY(rd_u64(&c, &nt, "the tensor count"));
    LMA_TRY(rd_u64(&c, &nkv, "the metadata count"));
    /* a key needs >= 8 (length) + 1 + 4 bytes, a tensor info >= 8 + 4 + 4 + 8 bytes */
    if (nkv > left(&c) / 13)
        return lma_error(LMA_ERR_FORMAT, "%s: metadata count %llu is more than the file could hold", ctx,
                         (unsigned long long)nkv);
    if (nt > left(&c) / 24)
        return lma_error(LMA_ERR_FORMAT, "%s: tensor count %llu is more than the file could hold", ctx,
                         (unsigned long long)nt);
    g->n_kv = (int64_t)nkv;
    g->n_tensors = (int64_t)nt;
    g->kv = calloc(nkv ? nkv : 1, sizeof *g->kv);
    g->tensors = calloc(nt ? nt : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return lma_error(LMA_ERR_NOMEM, "%s: out of memory for %llu keys", ctx,
                                                (unsigned long long)nkv);
    /* pass 1: validate and count string-array elements; pass 2 fills them in */
    size_t kv_start = c.pos;
    uint64_t n_strs = 0;
    for (int64_t i = 0; i < g->n_kv; i++) LMA_TRY(read_kv(&c, g, &g->kv[i], i, &n_strs, NULL));
    if (n_strs) {
        g->strs = malloc(n_strs * sizeof *g->strs);
        if (!g->strs) return lma_error(LMA_ERR_NOMEM, "%s: out of memory for %llu strings", ctx,
                                       (unsigned long long)n_strs);
        c.pos = kv_start;
        n_strs = 0;
        for (int64_t i = 0; i < g->n_kv; i++) LMA_TRY(read_kv(&c, g, &g->kv[i], i, &n_strs, g->strs));
    }
    LMA_TRY(check_unique(&g->kv[0].key, sizeof *g->kv, (size_t)g->n_kv, ctx, "metadata key"));
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const lma_gguf_kv *al = lma_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != LMA_GGUF_U32)
            return lma_error(LMA_ERR_FORMAT, "%s: general.alignment has type %s (u32 expected)", ctx,
                             type_name(al->type));
        if (al->v.u == 0 || (al->v.u & (al->v.u - 1)) || al->v.u > (1u << 20))
            return lma_error(LMA_ERR_FORMAT, "%s: general.alignment %llu is not a power of two up to 1 MiB", ctx,
                             (unsigned long long)al->v.u);
        g->alignment = al->v.u;
    }
    /* tensor infos */
    for (int64_t i = 0; i < g->n_tensors; i++) {
        lma_gguf_tensor *t = &g->tensors[i];
        char what[96];
        snprintf(what, sizeof what, "tensor info %lld", (long long)i);
        LMA_TRY(rd_str(&c, &t->name, what));
        if (t->name.len == 0 || t->name.len > 256)
            return lma_error(LMA_ERR_FORMAT, "%s: %s: name length %llu (1 to 256 expected)", ctx, what,
                             (unsigned long long)t->name.len);
        snprintf(what, sizeof what, "tensor '%.*s'", (int)t->name.len, t->name.s);
        uint32_t nd;
        LMA_TRY(rd_u32(&c, &nd, what));
        if (nd == 0 || nd > LMA_GGUF_MAX_DIMS)
            return lma_error(LMA_ERR_FORMAT, "%s: %s has %u dimensions (1 to %d supported)", ctx, what, nd,
                             LMA_GGUF_MAX_DIMS);
        t->n_dims = (int)nd;
        uint64_t nel = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t ne;
            LMA_TRY(rd_u64(&c, &ne, what));
            if (ne > (uint64_t)INT64_MAX || (ne && nel > (uint64_t)INT64_MAX / ne))
                return lma_error(LMA_ERR_FORMAT, "%s: %s: dimension %u (%llu) overflows the element count", ctx, what,
                                 d, (unsigned long long)ne);
            t->ne[d] = (int64_t)ne;
            nel *= ne;
        }
        for (int d = (int)nd; d < LMA_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        LMA_TRY(rd_u32(&c, &t->type, what));
        LMA_TRY(rd_u64(&c, &t->offset, what));
        t->nelem = nel;
        if (!lma_ggml_type_name(t->type))
            return lma_error(LMA_ERR_FORMAT, "%s: %s has unknown ggml type %u", ctx, what, t->type);
        if (t->ne[0] % lma_ggml_block_elems(t->type))
            return lma_error(LMA_ERR_FORMAT, "%s: %s: row length %lld is not a multiple of the %s block (%lld)", ctx,
                             what, (long long)t->ne[0], lma_ggml_type_name(t->type),
                             (long long)lma_ggml_block_elems(t->type));
        if (lma_ggml_nbytes(t->type, nel, &t->nbytes) != LMA_OK) {
            /* copied first: lma_last_error() is the buffer lma_error_replace writes */
            char why[256];
            snprintf(why, sizeof why, "%s", lma_last_error());
            return lma_error_replace(LMA_ERR_FORMAT, "%s: %s: %s", ctx, what, why);
        }
        if (t->offset % g->alignment)
            return lma_error(LMA_ERR_FORMAT, "%s: %s: offset %llu is not a multiple of the alignment %zu", ctx, what,
                             (unsigned long long)t->offset, g->alignment);
    }
    LMA_TRY(check_unique(&g->tensors[0].name, sizeof *g->tensors, (size_t)g->n_tensors, ctx, "tensor"));
    /* data section: aligned after the infos; every tensor inside the file */
    uint64_t off = c.pos;
    off = (off + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors && off > g->len)
        return lma_error(LMA_ERR_FORMAT, "%s: truncated: the tensor data would start at %llu, past the end (%zu)", ctx,
                         (unsigned long long)off, g->len);
    g->data_off = off;
    uint64_t data_len = off <= g->len ? g->len - off : 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        lma_gguf_tensor *t = &g->tensors[i];
        if (t->offset > data_len || t->nbytes > data_len - t->offset)
            return lma_error(LMA_ERR_FORMAT,
                             "%s: tensor '%.*s' (%llu bytes at data offset %llu) runs past the end of the file "
                             "(%llu data bytes): truncated?",
                             ctx, (int)t->name.len, t->name.s, (unsigned long long)t->nbytes,
                             (unsigned long long)t->offset, (unsigned long long)data_len);
        t->data = g->data + off + t->offset;
    }
    return check_no_overlap(g, ctx);
}

static lma_status open_common(lma_gguf *g, const char *ctx, lma_gguf **out) {
    g->path = strdup(ctx);
    lma_status st = g->path ? parse(g, ctx) : lma_error(LMA_ERR_NOMEM, "out of memory");
    if (st != LMA_OK) {
        lma_gguf_close(g);
        return st;
    }
    *out = g;
    return LMA_OK;
}

lma_status lma_gguf_open(const char *path, lma_gguf **out) {
    *out = NULL;
    lma_gguf *g = calloc(1, sizeof *g);
    if (!g) return lma_error(LMA_ERR_NOMEM, "out of memory");
    /* lma_map_file's open() would block on a FIFO until a writer comes */
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        free(g);
        return lma_error(LMA_ERR_IO, "%s: not a regular file", path);
    }
    lma_status st = lma_map_file(path, &g->map);
    if (st != LMA_OK) {
        free(g);
        return st;
    }
    g->data = g->map.data;
    g->len = g->map.len;
    return open_common(g, path, out);
}

lma_status lma_gguf_open_buffer(const void *data, size_t len, const char *ctx, lma_gguf **out) {
    *out = NULL;
    lma_gguf *g = calloc(1, sizeof *g);
    if (!g) return lma_error(LMA_ERR_NOMEM, "out of memory");
    g->data = data;
    g->len = len;
    return open_common(g, ctx ? ctx : "(buffer)", out);
}

void lma_gguf_close(lma_gguf *g) {
    if (!g) return;
    if (g->map.data) lma_unmap_file(&g->map);
    free(g->kv);
    free(g->tensors);
    free(g->strs);
    free(g->path);
    free(g);
}

int lma_gguf_is_file(const char *path) {
    if (!path) return 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK); /* a FIFO must not block */
    if (fd < 0) return 0;
    struct stat sb;
    char m[4];
    int ok = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && read(fd, m, 4) == 4 && !memcmp(m, "GGUF", 4);
    close(fd);
    return ok;
}

uint32_t lma_gguf_version(const lma_gguf *g) { return g->version; }
const char *lma_gguf_path(const lma_gguf *g) { return g->path; }
int64_t lma_gguf_n_kv(const lma_gguf *g) { return g->n_kv; }
const lma_gguf_kv *lma_gguf_kv_at(const lma_gguf *g, int64_t i) { return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL; }
int64_t lma_gguf_n_tensors(const lma_gguf *g) { return g->n_tensors; }
const lma_gguf_tensor *lma_gguf_tensor_at(const lma_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

static int str_eq(lma_gguf_str s, const char *z) {
    size_t n = strlen(z);
    return s.len == n && !memcmp(s.s, z, n);
}

const lma_gguf_kv *lma_gguf_find(const lma_gguf *g, const char *key) {
    for (int64_t i = 0; i < g->n_kv; i++)
        if (str_eq(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const lma_gguf_tensor *lma_gguf_find_tensor(const lma_gguf *g, const char *name) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (str_eq(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

/* ---- typed lookups ---- */
static const lma_gguf_kv *lookup(const lma_gguf *g, const char *key, int *found) {
    const lma_gguf_kv *kv = lma_gguf_find(g, key);
    if (found) *found = kv != NULL;
    return kv;
}

static lma_status wrong_type(const lma_gguf *g, const lma_gguf_kv *kv, const char *want) {
    return lma_error(LMA_ERR_FORMAT, "%s: metadata '%.*s' has type %s (%s expected)", g->path, (int)kv->key.len,
                     kv->key.s, type_name(kv->type), want);
}

static int is_int(uint32_t t) {
    return t == LMA_GGUF_U8 || t == LMA_GGUF_I8 || t == LMA_GGUF_U16 || t == LMA_GGUF_I16 || t == LMA_GGUF_U32 ||
           t == LMA_GGUF_I32 || t == LMA_GGUF_U64 || t == LMA_GGUF_I64;
}

lma_status lma_gguf_get_u64(const lma_gguf *g, const char *key, uint64_t *out, int *found) {
    const lma_gguf_kv *kv = lookup(g, key, found);
    if (!kv) return LMA_OK;
    if (!is_int(kv->type)) return wrong_type(g, kv, "an integer");
    if (is_signed(kv->type) && kv->v.i < 0)
        return lma_error(LMA_ERR_FORMAT, "%s: metadata '%s' is negative (%lld)", g->path, key, (long long)kv->v.i);
    *out = kv->v.u;
    return LMA_OK;
}

lma_status lma_gguf_get_i64(const lma_gguf *g, const char *key, int64_t *out, int *found) {
    const lma_gguf_kv *kv = lookup(g, key, found);
    if (!kv) return LMA_OK;
    if (!is_int(kv->type)) return wrong_type(g, kv, "an integer");
    if (!is_signed(kv->type) && kv->v.u > (uint64_t)INT64_MAX)
        return lma_error(LMA_ERR_FORMAT, "%s: metadata '%s' is too large (%llu)", g->path, key,
                         (unsigned long long)kv->v.u);
    *out = kv->v.i;
    return LMA_OK;
}

lma_status lma_gguf_get_f64(const lma_gguf *g, const char *key, double *out, int *found) {
    const lma_gguf_kv *kv = lookup(g, key, found);
    if (!kv) return LMA_OK;
    if (kv->type == LMA_GGUF_F32 || kv->type == LMA_GGUF_F64) *out = kv->v.f;
    else if (is_int(kv->type)) *out = is_signed(kv->type) ? (double)kv->v.i : (double)kv->v.u;
    else return wrong_type(g, kv, "a number");
    return LMA_OK;
}

lma_status lma_gguf_get_bool(const lma_gguf *g, const char *key, int *out, int *found) {
    const lma_gguf_kv *kv = lookup(g, key, found);
    if (!kv) return LMA_OK;
    if (kv->type != LMA_GGUF_BOOL) return wrong_type(g, kv, "bool");
    *out = kv->v.u != 0;
    return LMA_OK;
}

lma_status lma_gguf_get_str(const lma_gguf *g, const char *key, char **out, int *found) {
    const lma_gguf_kv *kv = lookup(g, key, found);
    if (!kv) return LMA_OK;
    if (kv->type != LMA_GGUF_STRING) return wrong_type(g, kv, "string");
    if (memchr(kv->str.s, 0, kv->str.len))
        return lma_error(LMA_ERR_FORMAT, "%s: metadata '%s' holds a NUL byte", g->path, key);
    char *s = malloc(kv->str.len + 1);
    if (!s) return lma_error(LMA_ERR_NOMEM, "%s: out of memory for '%s'", g->path, key);
    memcpy(s, kv->str.s, kv->str.len);
    s[kv->str.len] = 0;
    *out = s;
    return LMA_OK;
}

double lma_gguf_arr_f64(const lma_gguf_kv *kv, uint64_t i) {
    lma_gguf_kv x = {0};
    load_scalar(kv->arr_type, kv->arr_data + i * lma_gguf_type_size(kv->arr_type), &x);
    if (kv->arr_type == LMA_GGUF_F32 || kv->arr_type == LMA_GGUF_F64) return x.v.f;
    return is_signed(kv->arr_type) ? (double)x.v.i : (double)x.v.u;
}

int64_t lma_gguf_arr_i64(const lma_gguf_kv *kv, uint64_t i) {
    lma_gguf_kv x = {0};
    load_scalar(kv->arr_type, kv->arr_data + i * lma_gguf_type_size(kv->arr_type), &x);
    if (kv->arr_type == LMA_GGUF_F32 || kv->arr_type == LMA_GGUF_F64) {
        /* out-of-range or NaN float-to-int conversion is undefined: saturate, NaN -> 0 */
        if (!(x.v.f == x.v.f)) return 0;
        if (x.v.f >= 9223372036854775808.0) return INT64_MAX;
        if (x.v.f < -9223372036854775808.0) return INT64_MIN;
        return (int64_t)x.v.f;
    }
    return is_signed(kv->arr_type) ? x.v.i : (int64_t)x.v.u;
}
