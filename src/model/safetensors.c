/* safetensors reader (mmap, single file or sharded index) and writer.
 * Byte layout and validation rules: docs/formats.md "safetensors" and huggingface/safetensors
 * tensor.rs. The writer reproduces safetensors.torch.save_file(..., metadata=
 * {"format":"pt"}) byte for byte: compact JSON header with __metadata__ first,
 * tensors ordered by dtype size (descending) then name, header padded with
 * spaces to a multiple of 8. */
#include "model/safetensors.h"
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/io.h"
#include "core/json.h"

#define ST_MAX_HEADER 100000000ull
#define ST_MAX_JSON_INT 9007199254740992.0 /* 2^53: cJSON numbers are doubles */

/* ---- dtypes ---------------------------------------------------------------- */

static const struct { const char *name; unsigned bits; } dtypes[LMA_DT_COUNT] = {
    [LMA_DT_BOOL] = {"BOOL", 8},       [LMA_DT_U8] = {"U8", 8},
    [LMA_DT_I8] = {"I8", 8},           [LMA_DT_I16] = {"I16", 16},
    [LMA_DT_U16] = {"U16", 16},        [LMA_DT_F16] = {"F16", 16},
    [LMA_DT_BF16] = {"BF16", 16},      [LMA_DT_I32] = {"I32", 32},
    [LMA_DT_U32] = {"U32", 32},        [LMA_DT_F32] = {"F32", 32},
    [LMA_DT_F64] = {"F64", 64},        [LMA_DT_I64] = {"I64", 64},
    [LMA_DT_U64] = {"U64", 64},        [LMA_DT_F8_E4M3] = {"F8_E4M3", 8},
    [LMA_DT_F8_E5M2] = {"F8_E5M2", 8}, [LMA_DT_C64] = {"C64", 64},
    [LMA_DT_F8_E8M0] = {"F8_E8M0", 8}, [LMA_DT_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [LMA_DT_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8}, [LMA_DT_F4] = {"F4", 4},
    [LMA_DT_F6_E2M3] = {"F6_E2M3", 6}, [LMA_DT_F6_E3M2] = {"F6_E3M2", 6},
};

const char *lma_dtype_name(lma_dtype d) { return (unsigned)d < LMA_DT_COUNT ? dtypes[d].name : "?"; }
size_t lma_dtype_bits(lma_dtype d) { return (unsigned)d < LMA_DT_COUNT ? dtypes[d].bits : 0; }
size_t lma_dtype_size(lma_dtype d) {
    size_t b = lma_dtype_bits(d);
    return b % 8 ? 0 : b / 8;
}

static int dtype_from_name(const char *s, lma_dtype *out) {
    for (int i = 0; i < LMA_DT_COUNT; i++)
        if (!strcmp(s, dtypes[i].name)) { *out = (lma_dtype)i; return 1; }
    return 0;
}

/* ---- bf16 / f16 ------------------------------------------------------------ */

uint16_t lma_f32_to_bf16(float x) {
    uint32_t u; memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float lma_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16; float x; memcpy(&x, &u, 4);
    return x;
}

float lma_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0x1f) u = sign | 0x7f800000u | (man << 13);          /* inf / NaN */
    else if (exp != 0) u = sign | ((exp + 112u) << 23) | (man << 13); /* normal */
    else if (man == 0) u = sign;                                     /* +-0 */
    else {                                                           /* subnormal */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400u));
        u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
    }
    float x; memcpy(&x, &u, 4);
    return x;
}

/* ---- the handle ------------------------------------------------------------- */

struct lma_st_file {
    lma_map *maps;         /* (n_maps) file mappings; empty for lma_st_open_buffer */
    int n_maps;
    lma_st_tensor *t;      /* (n) in storage order: shard by shard, by offset */
    int n, cap;
    int *by_name;          /* (n) indices into t sorted by name, for lma_st_find */
};

void lma_st_close(lma_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free((char *)f->t[i].name);
    for (int i = 0; i < f->n_maps; i++) lma_unmap_file(&f->maps[i]);
    free(f->maps); free(f->t); free(f->by_name); free(f);
}

int lma_st_count(const lma_st_file *f) { return f ? f->n : 0; }
const lma_st_tensor *lma_st_get(const lma_st_file *f, int i) {
    return (f && i >= 0 && i < f->n) ? &f->t[i] : NULL;
}

/* (name, index) pairs sorted by name: no global state, so handles are thread-safe. */
typedef struct { const char *name; int idx; } named;
static int cmp_named(const void *a, const void *b) {
    const named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->idx - y->idx;
}

const lma_st_tensor *lma_st_find(const lma_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->t[f->by_name[mid]].name, name);
        if (c == 0) return &f->t[f->by_name[mid]];
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return NULL;
}

/* ---- parsing ---------------------------------------------------------------- */

/* Strict UTF-8 (as Rust's str::from_utf8): no overlongs, surrogates or > U+10FFFF.
 * Returns the offset of the first bad byte, or len. */
static size_t utf8_check(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t n; unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) n = 1;
        else if (c >= 0xe0 && c <= 0xef) { n = 2; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
        else if (c >= 0xf0 && c <= 0xf4) { n = 3; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
        else return i;
        if (len - i <= n) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k <= n; k++) if ((s[i + k] & 0xc0) != 0x80) return i;
        i += n + 1;
    }
    return len;
}

/* A JSON number that is a non-negative integer a double holds exactly. */
static int json_uint(const cJSON *it, uint64_t *out) {
    if (!cJSON_IsNumber(it)) return 0;
    double v = it->valuedouble;
    if (!(v >= 0) || v > ST_MAX_JSON_INT || v != floor(v)) return 0;
    *out = (uint64_t)v;
    return 1;
}

static lma_status push_tensor(lma_st_file *f, const lma_st_tensor *t) {
    if (f->n == f->cap) {
        int nc = f->cap ? f->cap * 2 : 64;
        lma_st_tensor *nt = realloc(f->t, (size_t)nc * sizeof *nt);
        if (!nt) return lma_error(LMA_ERR_NOMEM, "out of memory for the safetensors tensor table");
        f->t = nt; f->cap = nc;
    }
    f->t[f->n++] = *t;
    return LMA_OK;
}

/* Parses one tensor entry of the header into t (name not set). */
static lma_status parse_entry(const cJSON *e, const char *ctx, const char *name, lma_st_tensor *t,
                              uint64_t *begin, uint64_t *end) {
    if (!cJSON_IsObject(e)) return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": entry is not a JSON object", ctx, name);
    const cJSON *jd = NULL, *js = NULL, *jo = NULL;
    for (const cJSON *k = e->child; k; k = k->next) {
        const cJSON **slot = !strcmp(k->string, "dtype") ? &jd : !strcmp(k->string, "shape") ? &js
                           : !strcmp(k->string, "data_offsets") ? &jo : NULL;
        if (!slot) return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": unknown key \"%s\" (expected dtype, shape, data_offsets)", ctx, name, k->string);
        if (*slot) return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": duplicate key \"%s\"", ctx, name, k->string);
        *slot = k;
    }
    if (!jd) return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": missing \"dtype\"", ctx, name);
    if (!js) return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": missing \"shape\"", ctx, name);
    if (!jo) return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": missing \"data_offsets\"", ctx, name);
    if (!cJSON_IsString(jd)) return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": dtype is not a string", ctx, name);
    if (!dtype_from_name(jd->valuestring, &t->dtype))
        return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": unknown dtype \"%.40s\"", ctx, name, jd->valuestring);
    if (!cJSON_IsArray(js)) return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": shape is not an array", ctx, name);
    int nd = cJSON_GetArraySize(js);
    if (nd > LMA_ST_MAX_DIMS)
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: tensor \"%s\": %d dimensions (lmadapt supports at most %d)", ctx, name, nd, LMA_ST_MAX_DIMS);
    t->ndim = nd;
    size_t numel = 1;
    int d = 0, overflow = 0;
    for (const cJSON *k = js->child; k; k = k->next, d++) {
        uint64_t v;
        if (!json_uint(k, &v)) return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": shape[%d] is not a non-negative integer", ctx, name, d);
        t->shape[d] = (int64_t)v;
        if (!overflow && !lma_mul_ok(numel, (size_t)v, &numel)) overflow = 1;
    }
    for (; d < LMA_ST_MAX_DIMS; d++) t->shape[d] = 0;
    size_t bits = 0;
    if (numel == 0) overflow = 0; /* a zero dimension wins over an overflowing product */
    if (overflow || !lma_mul_ok(numel, lma_dtype_bits(t->dtype), &bits))
        return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": shape product overflows (element count times dtype size does not fit in 64 bits)", ctx, name);
    if (bits % 8) return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": %zu elements of %s do not fill whole bytes", ctx, name, numel, jd->valuestring);
    t->numel = numel;
    t->nbytes = bits / 8;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_uint(jo->child, begin) || !json_uint(jo->child->next, end))
        return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": data_offsets must be [BEGIN, END], two non-negative integers", ctx, name);
    if (*end < *begin)
        return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin", ctx, name, *begin, *end);
    if (*end - *begin != t->nbytes)
        return lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\": data_offsets span %" PRIu64 " bytes but dtype %s and its shape need %zu",
                         ctx, name, *end - *begin, jd->valuestring, t->nbytes);
    return LMA_OK;
}

typedef struct { uint64_t begin, end; int idx; } span;
static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx - y->idx;
}

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Parses the safetensors file in data[0..len) and appends its tensors to f. */
static lma_status parse_one(lma_st_file *f, const unsigned char *data, size_t len, const char *ctx) {
    if (len < 8) return lma_error(LMA_ERR_FORMAT, "%s: file too short (%zu bytes) for the 8-byte header length", ctx, len);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = (hn << 8) | data[i];
    if (hn > ST_MAX_HEADER)
        return lma_error(LMA_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the limit of %llu bytes", ctx, hn, ST_MAX_HEADER);
    if (hn > len - 8)
        return lma_error(LMA_ERR_FORMAT, "%s: header length %" PRIu64 " runs past the end of the file (%zu bytes)", ctx, hn, len);
    const char *hdr = (const char *)data + 8;
    size_t bad = utf8_check((const unsigned char *)hdr, (size_t)hn);
    if (bad != hn) return lma_error(LMA_ERR_FORMAT, "%s: header is not valid UTF-8 (byte %zu)", ctx, bad + 8);
    if (hn == 0 || hdr[0] != '{')
        return lma_error(LMA_ERR_FORMAT, "%s: header is not a JSON object (it must start with '{')", ctx);
    const char *jend = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hn, &jend, 0);
    if (!root) {
        size_t off = jend ? (size_t)(jend - hdr) : 0;
        return lma_error(LMA_ERR_FORMAT, "%s: malformed header JSON near byte %zu", ctx, off + 8);
    }
    lma_status s = LMA_OK;
    for (const char *p = jend; p < hdr + hn; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            s = lma_error(LMA_ERR_FORMAT, "%s: malformed header JSON: unexpected bytes after the object at byte %zu", ctx, (size_t)(p - hdr) + 8);
            goto done;
        }
    if (!cJSON_IsObject(root)) { s = lma_error(LMA_ERR_FORMAT, "%s: header is not a JSON object", ctx); goto done; }

    int n_keys = 0;
    for (const cJSON *k = root->child; k; k = k->next) n_keys++;
    const char **keys = n_keys ? malloc((size_t)n_keys * sizeof *keys) : NULL;
    span *sp = n_keys ? malloc((size_t)n_keys * sizeof *sp) : NULL;
    if (n_keys && (!keys || !sp)) { free(keys); free(sp); s = lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx); goto done; }
    int nk = 0, ns = 0, first = f->n;
    for (const cJSON *k = root->child; k; k = k->next) keys[nk++] = k->string;
    if (nk > 1) qsort(keys, (size_t)nk, sizeof *keys, cmp_str_ptr);
    for (int i = 1; i < nk; i++)
        if (!strcmp(keys[i], keys[i - 1])) {
            s = lma_error(LMA_ERR_FORMAT, "%s: duplicate tensor name \"%s\" in the header", ctx, keys[i]);
            goto out;
        }
    for (const cJSON *k = root->child; k; k = k->next) {
        if (!strcmp(k->string, "__metadata__")) {
            if (cJSON_IsNull(k)) continue;
            if (!cJSON_IsObject(k)) { s = lma_error(LMA_ERR_FORMAT, "%s: __metadata__ is not a JSON object", ctx); goto out; }
            for (const cJSON *m = k->child; m; m = m->next)
                if (!cJSON_IsString(m)) {
                    s = lma_error(LMA_ERR_FORMAT, "%s: __metadata__ value \"%s\" is not a string (it must map strings to strings)", ctx, m->string);
                    goto out;
                }
            continue;
        }
        lma_st_tensor t; memset(&t, 0, sizeof t);
        uint64_t b = 0, e = 0;
        if ((s = parse_entry(k, ctx, k->string, &t, &b, &e)) != LMA_OK) goto out;
        t.name = strdup(k->string);
        if (!t.name) { s = lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx); goto out; }
        if ((s = push_tensor(f, &t)) != LMA_OK) { free((char *)t.name); goto out; }
        sp[ns].begin = b; sp[ns].end = e; sp[ns].idx = f->n - 1; ns++;
    }
    /* Offsets: contiguous from 0, sorted by (begin, end), no gaps or overlaps. */
    if (ns > 1) qsort(sp, (size_t)ns, sizeof *sp, cmp_span);
    uint64_t pos = 0;
    const char *prev = NULL;
    for (int i = 0; i < ns; i++) {
        const char *nm = f->t[sp[i].idx].name;
        if (sp[i].begin > pos) {
            s = prev ? lma_error(LMA_ERR_FORMAT, "%s: gap in the data: tensor \"%s\" starts at %" PRIu64 " but \"%s\" ends at %" PRIu64, ctx, nm, sp[i].begin, prev, pos)
                     : lma_error(LMA_ERR_FORMAT, "%s: the data does not start at 0: the first tensor \"%s\" starts at %" PRIu64, ctx, nm, sp[i].begin);
            goto out;
        }
        if (sp[i].begin < pos) {
            s = lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\" (starting at %" PRIu64 ") overlaps \"%s\" (ending at %" PRIu64 ")", ctx, nm, sp[i].begin, prev, pos);
            goto out;
        }
        pos = sp[i].end; prev = nm;
    }
    size_t body = len - 8 - (size_t)hn;
    if (pos > body) {
        s = lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\" ends at data byte %" PRIu64 " but the file holds only %zu data bytes (truncated file?)", ctx, prev, pos, body);
        goto out;
    }
    if (pos < body) {
        s = lma_error(LMA_ERR_FORMAT, "%s: %zu trailing bytes after the last tensor (the file must end where the data ends)", ctx, body - (size_t)pos);
        goto out;
    }
    /* Storage order and data pointers. */
    {
        lma_st_tensor *tmp = ns ? malloc((size_t)ns * sizeof *tmp) : NULL;
        if (ns && !tmp) { s = lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx); goto out; }
        for (int i = 0; i < ns; i++) {
            tmp[i] = f->t[sp[i].idx];
            tmp[i].data = data + 8 + hn + sp[i].begin;
        }
        if (ns) memcpy(&f->t[first], tmp, (size_t)ns * sizeof *tmp);
        free(tmp);
    }
out:
    if (s != LMA_OK) { /* drop this file's tensors */
        for (int i = first; i < f->n; i++) free((char *)f->t[i].name);
        f->n = first;
    }
    free(keys); free(sp);
done:
    cJSON_Delete(root);
    return s;
}

/* Builds the name index; a name present twice (in two shards) is an error. */
static lma_status finish(lma_st_file *f, const char *ctx) {
    f->by_name = malloc((size_t)(f->n ? f->n : 1) * sizeof *f->by_name);
    if (!f->by_name) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx);
    named *tmp = lma_malloc((size_t)(f->n ? f->n : 1) * sizeof *tmp, "safetensors name index");
    if (!tmp) return LMA_ERR_NOMEM;
    for (int i = 0; i < f->n; i++) { tmp[i].name = f->t[i].name; tmp[i].idx = i; }
    qsort(tmp, (size_t)f->n, sizeof *tmp, cmp_named);
    for (int i = 0; i < f->n; i++) f->by_name[i] = tmp[i].idx;
    free(tmp);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->t[f->by_name[i]].name, f->t[f->by_name[i - 1]].name))
            return lma_error(LMA_ERR_FORMAT, "%s: duplicate tensor name \"%s\" (in two shards)", ctx, f->t[f->by_name[i]].name);
    return LMA_OK;
}

static lma_st_file *new_file(void) { return lma_calloc(1, sizeof(lma_st_file), "safetensors handle"); }

lma_status lma_st_open_buffer(const void *data, size_t len, const char *ctx, lma_st_file **out) {
    *out = NULL;
    if (!data && len) return lma_error(LMA_ERR_ARG, "lma_st_open_buffer: NULL data");
    if (!ctx) ctx = "<buffer>";
    lma_st_file *f = new_file();
    if (!f) return LMA_ERR_NOMEM;
    lma_status s = parse_one(f, data, len, ctx);
    if (s == LMA_OK) s = finish(f, ctx);
    if (s != LMA_OK) { lma_st_close(f); return s; }
    *out = f;
    return LMA_OK;
}

static lma_status add_map(lma_st_file *f, const char *path) {
    lma_map *nm = realloc(f->maps, (size_t)(f->n_maps + 1) * sizeof *nm);
    if (!nm) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", path);
    f->maps = nm;
    LMA_TRY(lma_map_file(path, &f->maps[f->n_maps]));
    f->n_maps++;
    return parse_one(f, f->maps[f->n_maps - 1].data, f->maps[f->n_maps - 1].len, path);
}

lma_status lma_st_open(const char *path, lma_st_file **out) {
    *out = NULL;
    lma_st_file *f = new_file();
    if (!f) return LMA_ERR_NOMEM;
    lma_status s = add_map(f, path);
    if (s == LMA_OK) s = finish(f, path);
    if (s != LMA_OK) { lma_st_close(f); return s; }
    *out = f;
    return LMA_OK;
}

/* model.safetensors.index.json: {"metadata":{...},"weight_map":{tensor: shard}}. */
static lma_status open_index(lma_st_file *f, const char *dir, const char *ipath) {
    cJSON *root = NULL;
    LMA_TRY(lma_json_load(ipath, &root));
    lma_status s = LMA_OK;
    const char **files = NULL;
    int nf = 0;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(wm)) {
        s = lma_error(LMA_ERR_FORMAT, "%s: field \"weight_map\" must be an object of tensor name -> shard file", ipath);
        goto done;
    }
    int n = cJSON_GetArraySize(wm);
    files = malloc((size_t)(n ? n : 1) * sizeof *files);
    if (!files) { s = lma_error(LMA_ERR_NOMEM, "%s: out of memory", ipath); goto done; }
    for (const cJSON *k = wm->child; k; k = k->next) {
        if (!cJSON_IsString(k)) { s = lma_error(LMA_ERR_FORMAT, "%s: weight_map[\"%s\"] is not a file name", ipath, k->string); goto done; }
        const char *v = k->valuestring;
        if (!*v || strchr(v, '/') || strchr(v, '\\') || v[0] == '.') {
            s = lma_error(LMA_ERR_FORMAT, "%s: weight_map[\"%s\"] = \"%s\" is not a file name inside the model directory", ipath, k->string, v);
            goto done;
        }
        files[nf++] = v;
    }
    if (nf > 1) qsort(files, (size_t)nf, sizeof *files, cmp_str_ptr);
    int nu = 0;
    for (int i = 0; i < nf; i++) if (!nu || strcmp(files[i], files[nu - 1])) files[nu++] = files[i];
    for (int i = 0; i < nu; i++) {
        char p[4096];
        if ((s = lma_path_join(p, sizeof p, dir, files[i])) != LMA_OK) goto done;
        if ((s = add_map(f, p)) != LMA_OK) goto done;
    }
    if ((s = finish(f, ipath)) != LMA_OK) goto done;
    /* Every listed tensor must be in its shard, and every stored tensor listed. */
    for (const cJSON *k = wm->child; k; k = k->next) {
        const lma_st_tensor *t = lma_st_find(f, k->string);
        if (!t) { s = lma_error(LMA_ERR_FORMAT, "%s: tensor \"%s\" is listed in shard %s, which does not hold it", ipath, k->string, k->valuestring); goto done; }
    }
    if (f->n != n) {
        for (int i = 0; i < f->n; i++)
            if (!cJSON_GetObjectItemCaseSensitive(wm, f->t[i].name)) {
                s = lma_error(LMA_ERR_FORMAT, "%s: a shard holds tensor \"%s\", which weight_map does not list", ipath, f->t[i].name);
                goto done;
            }
        s = lma_error(LMA_ERR_FORMAT, "%s: weight_map lists a tensor twice", ipath);
    }
done:
    free(files);
    cJSON_Delete(root);
    return s;
}

lma_status lma_st_open_dir(const char *dir, lma_st_file **out) {
    *out = NULL;
    char ipath[4096], spath[4096];
    LMA_TRY(lma_path_join(ipath, sizeof ipath, dir, "model.safetensors.index.json"));
    LMA_TRY(lma_path_join(spath, sizeof spath, dir, "model.safetensors"));
    int has_index = lma_file_exists(ipath);
    if (!has_index && !lma_file_exists(spath))
        return lma_error(LMA_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json in this directory", dir);
    lma_st_file *f = new_file();
    if (!f) return LMA_ERR_NOMEM;
    lma_status s = has_index ? open_index(f, dir, ipath) : add_map(f, spath);
    if (s == LMA_OK && !has_index) s = finish(f, spath);
    if (s != LMA_OK) { lma_st_close(f); return s; }
    *out = f;
    return LMA_OK;
}

/* ---- reading tensors ---------------------------------------------------------- */

lma_status lma_st_read_f32(const lma_st_tensor *t, float *dst, size_t n) {
    if (!t || (!dst && n)) return lma_error(LMA_ERR_ARG, "lma_st_read_f32: NULL argument");
    if (n != t->numel)
        return lma_error(LMA_ERR_SHAPE, "tensor \"%s\": has %zu elements, caller expects %zu", t->name, t->numel, n);
    const unsigned char *src = t->data;
    switch (t->dtype) {
    case LMA_DT_F32:
        if (n) memcpy(dst, src, n * 4); /* little-endian host assumed (x86-64, aarch64) */
        return LMA_OK;
    case LMA_DT_BF16:
        #pragma omp parallel for if (n > (1 << 18)) schedule(static)
        for (size_t i = 0; i < n; i++) dst[i] = lma_bf16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        return LMA_OK;
    case LMA_DT_F16:
        #pragma omp parallel for if (n > (1 << 18)) schedule(static)
        for (size_t i = 0; i < n; i++) dst[i] = lma_f16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        return LMA_OK;
    default:
        return lma_error(LMA_ERR_UNSUPPORTED, "tensor \"%s\": dtype %s cannot be read as f32 (lmadapt reads F32, F16 and BF16)",
                         t->name, lma_dtype_name(t->dtype));
    }
}

/* ---- writing ------------------------------------------------------------------ */

/* A JSON string as serde_json writes it: escapes " \ and control characters. */
static void sb_json_str(lma_buf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    lma_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[7];
        switch (*p) {
        case '"': lma_buf_append(b, "\\\"", 2); break;
        case '\\': lma_buf_append(b, "\\\\", 2); break;
        case '\b': lma_buf_append(b, "\\b", 2); break;
        case '\f': lma_buf_append(b, "\\f", 2); break;
        case '\n': lma_buf_append(b, "\\n", 2); break;
        case '\r': lma_buf_append(b, "\\r", 2); break;
        case '\t': lma_buf_append(b, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                e[0] = '\\'; e[1] = 'u'; e[2] = '0'; e[3] = '0'; e[4] = hex[*p >> 4]; e[5] = hex[*p & 15];
                lma_buf_append(b, e, 6);
            } else lma_buf_append(b, (const char *)p, 1);
        }
    }
    lma_buf_append(b, "\"", 1);
}

/* Sorts idx[0..n) by the names of e[idx[i]]; returns the first duplicate name or NULL. */
static const char *sort_by_name(const lma_st_entry *e, int *idx, int n, lma_status *s) {
    *s = LMA_OK;
    named *tmp = lma_malloc((size_t)(n ? n : 1) * sizeof *tmp, "safetensors writer");
    if (!tmp) { *s = LMA_ERR_NOMEM; return NULL; }
    for (int i = 0; i < n; i++) { tmp[i].name = e[idx[i]].name; tmp[i].idx = idx[i]; }
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_named);
    const char *dup = NULL;
    for (int i = 0; i < n; i++) {
        idx[i] = tmp[i].idx;
        if (i && !dup && !strcmp(tmp[i].name, tmp[i - 1].name)) dup = tmp[i].name;
    }
    free(tmp);
    return dup;
}

/* Checks the entries and computes each one's element count. */
static lma_status check_entries(const char *path, const lma_st_entry *e, int n, lma_dtype dtype, size_t *numel) {
    if (dtype != LMA_DT_F32 && dtype != LMA_DT_BF16)
        return lma_error(LMA_ERR_ARG, "%s: lmadapt writes F32 or BF16, not %s", path, lma_dtype_name(dtype));
    if (n < 0 || (n && !e)) return lma_error(LMA_ERR_ARG, "%s: bad tensor list", path);
    for (int i = 0; i < n; i++) {
        if (!e[i].name || !*e[i].name || !strcmp(e[i].name, "__metadata__") || utf8_check((const unsigned char *)e[i].name, strlen(e[i].name)) != strlen(e[i].name))
            return lma_error(LMA_ERR_ARG, "%s: tensor %d has an invalid name", path, i);
        if (e[i].ndim < 0 || e[i].ndim > LMA_ST_MAX_DIMS)
            return lma_error(LMA_ERR_ARG, "%s: tensor \"%s\": ndim %d out of range", path, e[i].name, e[i].ndim);
        size_t ne = 1;
        for (int d = 0; d < e[i].ndim; d++) {
            if (e[i].shape[d] < 0 || (double)e[i].shape[d] > ST_MAX_JSON_INT || !lma_mul_ok(ne, (size_t)e[i].shape[d], &ne))
                return lma_error(LMA_ERR_ARG, "%s: tensor \"%s\": bad shape[%d] = %" PRId64, path, e[i].name, d, e[i].shape[d]);
        }
        size_t nb;
        if (!lma_mul_ok(ne, lma_dtype_size(dtype), &nb) || (double)nb > ST_MAX_JSON_INT)
            return lma_error(LMA_ERR_ARG, "%s: tensor \"%s\" is too large", path, e[i].name);
        if (ne && !e[i].data) return lma_error(LMA_ERR_ARG, "%s: tensor \"%s\": NULL data", path, e[i].name);
        numel[i] = ne;
    }
    int *idx = lma_malloc((size_t)(n ? n : 1) * sizeof *idx, "safetensors writer");
    if (!idx) return LMA_ERR_NOMEM;
    for (int i = 0; i < n; i++) idx[i] = i;
    lma_status s;
    const char *dup = sort_by_name(e, idx, n, &s);
    free(idx);
    if (s != LMA_OK) return s;
    if (dup) return lma_error(LMA_ERR_ARG, "%s: tensor name \"%s\" given twice", path, dup);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (!lma_add_ok(total, numel[i] * lma_dtype_size(dtype), &total) || (double)total > ST_MAX_JSON_INT)
            return lma_error(LMA_ERR_ARG, "%s: tensors too large in total", path);
    return LMA_OK;
}

/* Writes the tensors idx[0..n) of e (sorted here by name) to path. */
static lma_status save_subset(const char *path, const lma_st_entry *e, const int *idx_in, int n, lma_dtype dtype,
                              const size_t *numel) {
    int *idx = lma_malloc((size_t)(n ? n : 1) * sizeof *idx, "safetensors writer index");
    if (!idx) return LMA_ERR_NOMEM;
    if (n) memcpy(idx, idx_in, (size_t)n * sizeof *idx);
    lma_status s;
    sort_by_name(e, idx, n, &s);
    if (s != LMA_OK) { free(idx); return s; }
    size_t es = lma_dtype_size(dtype), off = 0;
    lma_buf h = {0};
    lma_buf_str(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        const lma_st_entry *t = &e[idx[i]];
        lma_buf_str(&h, ",");
        sb_json_str(&h, t->name);
        lma_buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", lma_dtype_name(dtype));
        for (int d = 0; d < t->ndim; d++) lma_buf_printf(&h, d ? ",%" PRId64 : "%" PRId64, t->shape[d]);
        size_t nb = numel[idx[i]] * es;
        lma_buf_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
        off += nb;
    }
    lma_buf_str(&h, "}");
    while (!h.st && h.len % 8) lma_buf_append(&h, " ", 1);
    if (h.st) { lma_buf_free(&h); free(idx); return lma_error(LMA_ERR_NOMEM, "%s: out of memory for the header", path); }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    lma_atomic_file af;
    if ((s = lma_atomic_open(&af, path)) != LMA_OK) { free(h.p); free(idx); return s; }
    s = lma_atomic_write(&af, len8, 8);
    if (s == LMA_OK) s = lma_atomic_write(&af, h.p, h.len);
    enum { CHUNK = 1 << 15 };
    uint16_t *buf = dtype == LMA_DT_BF16 ? lma_malloc(CHUNK * sizeof *buf, "bf16 write buffer") : NULL;
    if (dtype == LMA_DT_BF16 && !buf && s == LMA_OK) { lma_atomic_abort(&af); s = LMA_ERR_NOMEM; }
    for (int i = 0; i < n && s == LMA_OK; i++) {
        const lma_st_entry *t = &e[idx[i]];
        size_t ne = numel[idx[i]];
        if (dtype == LMA_DT_F32) { s = lma_atomic_write(&af, t->data, ne * 4); continue; }
        for (size_t j = 0; j < ne && s == LMA_OK; j += CHUNK) {
            size_t m = ne - j < CHUNK ? ne - j : CHUNK;
            for (size_t k = 0; k < m; k++) buf[k] = lma_f32_to_bf16(t->data[j + k]); /* little-endian host */
            s = lma_atomic_write(&af, buf, m * 2);
        }
    }
    if (s == LMA_OK) s = lma_atomic_commit(&af);
    free(buf); free(h.p); free(idx);
    return s;
}

lma_status lma_st_save(const char *path, const lma_st_entry *e, int n, lma_dtype dtype) {
    size_t *numel = lma_malloc((size_t)(n > 0 ? n : 1) * sizeof *numel, "safetensors writer");
    int *idx = lma_malloc((size_t)(n > 0 ? n : 1) * sizeof *idx, "safetensors writer");
    lma_status s = (numel && idx) ? check_entries(path, e, n, dtype, numel) : LMA_ERR_NOMEM;
    if (s == LMA_OK) {
        for (int i = 0; i < n; i++) idx[i] = i;
        s = save_subset(path, e, idx, n, dtype, numel);
    }
    free(numel); free(idx);
    return s;
}

static lma_status save_index(const char *path, const lma_st_entry *e, int n, const int *shard_of, int n_shards,
                             size_t total_params, size_t total_size) {
    int *idx = lma_malloc((size_t)(n ? n : 1) * sizeof *idx, "index writer");
    if (!idx) return LMA_ERR_NOMEM;
    for (int i = 0; i < n; i++) idx[i] = i;
    lma_status s;
    sort_by_name(e, idx, n, &s);
    if (s != LMA_OK) { free(idx); return s; }
    lma_buf b = {0};
    lma_buf_printf(&b, "{\n  \"metadata\": {\n    \"total_parameters\": %zu,\n    \"total_size\": %zu\n  },\n  \"weight_map\": {",
           total_params, total_size);
    for (int i = 0; i < n; i++) {
        lma_buf_str(&b, i ? ",\n    " : "\n    ");
        sb_json_str(&b, e[idx[i]].name);
        lma_buf_printf(&b, ": \"model-%05d-of-%05d.safetensors\"", shard_of[idx[i]] + 1, n_shards);
    }
    lma_buf_str(&b, n ? "\n  }\n}\n" : "}\n}\n");
    free(idx);
    if (b.st) { lma_buf_free(&b); return lma_error(LMA_ERR_NOMEM, "%s: out of memory", path); }
    s = lma_write_file_atomic(path, b.p, b.len);
    free(b.p);
    return s;
}

lma_status lma_st_save_dir(const char *dir, const lma_st_entry *e, int n, lma_dtype dtype, size_t max_shard_bytes) {
    char spath[4096], ipath[4096];
    LMA_TRY(lma_path_join(spath, sizeof spath, dir, "model.safetensors"));
    LMA_TRY(lma_path_join(ipath, sizeof ipath, dir, "model.safetensors.index.json"));
    size_t *numel = lma_malloc((size_t)(n > 0 ? n : 1) * sizeof *numel, "safetensors writer");
    int *idx = lma_malloc((size_t)(n > 0 ? n : 1) * sizeof *idx, "safetensors writer");
    int *shard_of = lma_malloc((size_t)(n > 0 ? n : 1) * sizeof *shard_of, "safetensors writer");
    lma_status s = (numel && idx && shard_of) ? check_entries(dir, e, n, dtype, numel) : LMA_ERR_NOMEM;
    if (s == LMA_OK) s = lma_mkdir_p(dir);
    size_t es = lma_dtype_size(dtype), total = 0, params = 0;
    for (int i = 0; i < n && s == LMA_OK; i++) { total += numel[i] * es; params += numel[i]; }
    /* Shards exactly as huggingface_hub split_torch_state_dict_into_shards (used by
     * transformers): walk the tensors in the given order; a tensor larger than the
     * limit gets a shard of its own at once; otherwise a new shard starts when the
     * next tensor would push the current one over the limit. */
    int ns = 0;
    if (s == LMA_OK && n > 0) {
        int *pos = lma_malloc((size_t)n * sizeof *pos, "shard plan"), cur = -1, g = 0;
        size_t cur_size = 0, lim = max_shard_bytes ? max_shard_bytes : SIZE_MAX;
        if (!pos) s = LMA_ERR_NOMEM;
        for (int i = 0; i < n && s == LMA_OK; i++) {
            size_t nb = numel[i] * es;
            if (nb > lim) { shard_of[i] = g; pos[g++] = ns++; continue; }
            if (cur >= 0 && cur_size + nb > lim) { pos[cur] = ns++; cur = -1; cur_size = 0; }
            if (cur < 0) cur = g++;
            shard_of[i] = cur; cur_size += nb;
        }
        if (s == LMA_OK) {
            if (cur >= 0) pos[cur] = ns++;
            for (int i = 0; i < n; i++) shard_of[i] = pos[shard_of[i]];
        }
        free(pos);
    }
    if (s == LMA_OK && ns <= 1) {
        for (int i = 0; i < n; i++) idx[i] = i;
        s = save_subset(spath, e, idx, n, dtype, numel);
        if (s == LMA_OK && lma_file_exists(ipath)) remove(ipath); /* a stale index would win over the new file */
    } else if (s == LMA_OK) {
        if (ns > 99999) s = lma_error(LMA_ERR_ARG, "%s: %d shards is more than the file names allow", dir, ns);
        for (int k = 0; k < ns && s == LMA_OK; k++) {
            int m = 0;
            for (int i = 0; i < n; i++) if (shard_of[i] == k) idx[m++] = i;
            char name[64], p[4096];
            snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", k + 1, ns);
            s = lma_path_join(p, sizeof p, dir, name);
            if (s == LMA_OK) s = save_subset(p, e, idx, m, dtype, numel);
        }
        if (s == LMA_OK) s = save_index(ipath, e, n, shard_of, ns, params, total);
        if (s == LMA_OK && lma_file_exists(spath)) remove(spath); /* keep one form only */
    }
    free(numel); free(idx); free(shard_of);
    return s;
}
