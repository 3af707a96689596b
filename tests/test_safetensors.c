/* safetensors: byte identity with safetensors.torch.save_file and huggingface_hub
 * sharding (fixtures from tests/ref/make_st_fixtures.py), reading what they wrote,
 * F16/BF16 conversion, round trips, and one distinct error per kind of corruption. */
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/io.h"
#include "core/json.h"
#include "model/safetensors.h"
#include "test.h"

#define REF LMA_SRC_DIR "/tests/ref/st"

/* Must match SHAPES / value() / SPECIAL_BITS in make_st_fixtures.py. */
static const struct { const char *name; int ndim; int64_t shape[4]; } shapes[] = {
    {"model.embed_tokens.weight", 2, {16, 8}},
    {"model.layers.0.self_attn.q_proj.weight", 2, {8, 8}},
    {"model.layers.0.self_attn.q_proj.bias", 1, {8}},
    {"big.conv", 4, {2, 3, 5, 7}},
    {"model.layers.10.mlp.up_proj.weight", 2, {12, 8}},
    {"model.layers.2.mlp.up_proj.weight", 2, {12, 8}},
    {"model.norm.weight", 1, {8}},
    {"scalar", 0, {0}},
    {"empty", 2, {0, 4}},
    {"caf\xc3\xa9 \"quoted\" back\\slash\ttab", 1, {3}},
    {"A_upper", 3, {2, 1, 3}},
    {"special", 1, {8}},
    {"lm_head.weight", 2, {16, 8}},
};
enum { NT = sizeof shapes / sizeof shapes[0], SHARD = 600 };
static const uint32_t special_bits[8] = {0x3F808001, 0x7F800000, 0xFF800000, 0x80000000,
                                         0x3F808000, 0x3F818000, 0x7F7FFFFF, 0x000116C2};
static float *vals[NT];
static lma_st_entry ents[NT];

static uint32_t bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }

static void make_entries(void) {
    for (int k = 0; k < NT; k++) {
        size_t n = 1;
        for (int d = 0; d < shapes[k].ndim; d++) n *= (size_t)shapes[k].shape[d];
        vals[k] = malloc((n ? n : 1) * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(shapes[k].name, "special")) memcpy(&vals[k][i], &special_bits[i], 4);
            else vals[k][i] = (float)(((double)((i * 7919 + (size_t)k * 104729) % 10007) / 10007.0 - 0.5) * 3.0);
        }
        ents[k].name = shapes[k].name; ents[k].ndim = shapes[k].ndim;
        memcpy(ents[k].shape, shapes[k].shape, sizeof shapes[k].shape);
        ents[k].data = vals[k];
    }
}

static int same_file(const char *a, const char *b) {
    char *x, *y; size_t nx, ny;
    if (lma_read_file(a, &x, &nx) != LMA_OK) { lma_clear_error(); return 0; }
    if (lma_read_file(b, &y, &ny) != LMA_OK) { lma_clear_error(); free(x); return 0; }
    int same = nx == ny && !memcmp(x, y, nx);
    free(x); free(y);
    return same;
}

static void check_values_f32(const lma_st_file *f, const char *what) {
    CHECK(lma_st_count(f) == NT, "%s: %d tensors", what, lma_st_count(f));
    for (int k = 0; k < NT; k++) {
        const lma_st_tensor *t = lma_st_find(f, shapes[k].name);
        CHECK(t != NULL, "%s: finds %s", what, shapes[k].name);
        if (!t) continue;
        CHECK(t->dtype == LMA_DT_F32 && t->ndim == shapes[k].ndim, "%s: %s dtype/ndim", what, t->name);
        for (int d = 0; d < t->ndim; d++) CHECK(t->shape[d] == shapes[k].shape[d], "%s: %s shape[%d]", what, t->name, d);
        float *buf = malloc((t->numel ? t->numel : 1) * sizeof *buf);
        CHECK_OK(lma_st_read_f32(t, buf, t->numel));
        int bad = 0;
        for (size_t i = 0; i < t->numel; i++) bad += bits(buf[i]) != bits(vals[k][i]);
        CHECK(bad == 0, "%s: %s: %d values differ from the formula", what, t->name, bad);
        free(buf);
    }
}

/* bf16 values as torch rounds them (ref_bf16_values.json). */
static void check_values_bf16(const lma_st_file *f, const char *what) {
    cJSON *j = NULL;
    CHECK_OK(lma_json_load(REF "/ref_bf16_values.json", &j));
    if (!j) return;
    const cJSON *m = cJSON_GetObjectItem(j, "f32_bits");
    CHECK(lma_st_count(f) == NT, "%s: count", what);
    for (int k = 0; k < NT; k++) {
        const lma_st_tensor *t = lma_st_find(f, shapes[k].name);
        const cJSON *ref = cJSON_GetObjectItemCaseSensitive(m, shapes[k].name);
        CHECK(t && ref && t->dtype == LMA_DT_BF16 && (size_t)cJSON_GetArraySize(ref) == t->numel, "%s: %s present", what, shapes[k].name);
        if (!t || !ref) continue;
        float *buf = malloc((t->numel ? t->numel : 1) * sizeof *buf);
        CHECK_OK(lma_st_read_f32(t, buf, t->numel));
        int bad = 0, i = 0;
        for (const cJSON *v = ref->child; v; v = v->next, i++) bad += bits(buf[i]) != (uint32_t)v->valuedouble;
        CHECK(bad == 0, "%s: %s: %d bf16 values differ from torch", what, t->name, bad);
        free(buf);
    }
    cJSON_Delete(j);
}

static void test_reference_files(const char *tmp) {
    char p[512];
    /* Byte identity with safetensors.torch.save_file(..., metadata={"format":"pt"}). */
    snprintf(p, sizeof p, "%s/f32.safetensors", tmp);
    CHECK_OK(lma_st_save(p, ents, NT, LMA_DT_F32));
    CHECK(same_file(p, REF "/ref_f32.safetensors"), "F32 file is byte-identical to safetensors.torch.save_file");
    lma_st_file *f = NULL;
    CHECK_OK(lma_st_open(p, &f));
    if (f) { check_values_f32(f, "own f32"); lma_st_close(f); }
    snprintf(p, sizeof p, "%s/bf16.safetensors", tmp);
    CHECK_OK(lma_st_save(p, ents, NT, LMA_DT_BF16));
    CHECK(same_file(p, REF "/ref_bf16.safetensors"), "BF16 file is byte-identical to safetensors.torch.save_file");
    CHECK_OK(lma_st_open(p, &f));
    if (f) { check_values_bf16(f, "own bf16"); lma_st_close(f); }

    /* Reading what the reference writer wrote. */
    CHECK_OK(lma_st_open(REF "/ref_f32.safetensors", &f));
    if (f) {
        check_values_f32(f, "ref f32");
        CHECK(lma_st_find(f, "nope") == NULL && lma_st_get(f, NT) == NULL && lma_st_get(f, -1) == NULL, "absent names");
        /* storage order = offset order */
        for (int i = 1; i < lma_st_count(f); i++)
            CHECK((const char *)lma_st_get(f, i)->data >= (const char *)lma_st_get(f, i - 1)->data, "offset order");
        lma_st_close(f);
    }
    CHECK_OK(lma_st_open(REF "/ref_bf16.safetensors", &f));
    if (f) { check_values_bf16(f, "ref bf16"); lma_st_close(f); }
}

static void test_mixed(void) {
    lma_st_file *f = NULL;
    cJSON *j = NULL;
    CHECK_OK(lma_st_open(REF "/mixed.safetensors", &f));
    CHECK_OK(lma_json_load(REF "/mixed.json", &j));
    if (!f || !j) { lma_st_close(f); cJSON_Delete(j); return; }
    CHECK(lma_st_count(f) == cJSON_GetArraySize(j), "mixed: all tensors");
    for (const cJSON *e = j->child; e; e = e->next) {
        const lma_st_tensor *t = lma_st_find(f, e->string);
        CHECK(t != NULL, "mixed: %s", e->string);
        if (!t) continue;
        const cJSON *shape = cJSON_GetObjectItem(e, "shape");
        CHECK(t->ndim == cJSON_GetArraySize(shape), "mixed %s ndim", e->string);
        const cJSON *fb = cJSON_GetObjectItem(e, "f32_bits"), *iv = cJSON_GetObjectItem(e, "ints");
        float *buf = malloc((t->numel + 1) * sizeof *buf);
        if (fb) {
            CHECK_OK(lma_st_read_f32(t, buf, t->numel));
            int i = 0, bad = 0;
            for (const cJSON *v = fb->child; v; v = v->next, i++) bad += bits(buf[i]) != (uint32_t)v->valuedouble;
            CHECK(bad == 0 && (size_t)i == t->numel, "mixed %s (%s): %d values differ from torch", e->string, lma_dtype_name(t->dtype), bad);
            CHECK(lma_st_read_f32(t, buf, t->numel + 1) == LMA_ERR_SHAPE, "wrong count is a shape error");
            lma_clear_error();
        } else {
            CHECK(lma_st_read_f32(t, buf, t->numel) == LMA_ERR_UNSUPPORTED, "%s as f32 unsupported", e->string);
            CHECK(strstr(lma_last_error(), lma_dtype_name(t->dtype)) != NULL, "message names the dtype: %s", lma_last_error());
            lma_clear_error();
            int i = 0, bad = 0;
            const unsigned char *d = t->data;
            for (const cJSON *v = iv->child; v; v = v->next, i++) {
                long long x;
                if (t->dtype == LMA_DT_I32) { int32_t y; memcpy(&y, d + 4 * i, 4); x = y; }
                else x = d[i];
                bad += x != (long long)v->valuedouble;
            }
            CHECK(bad == 0, "mixed %s raw integers", e->string);
        }
        free(buf);
    }
    CHECK(lma_st_find(f, "f16")->dtype == LMA_DT_F16 && lma_st_find(f, "u8")->dtype == LMA_DT_U8, "dtypes");
    CHECK(lma_st_find(f, "scalar")->ndim == 0 && lma_st_find(f, "scalar")->numel == 1, "scalar");
    CHECK(lma_st_find(f, "empty")->numel == 0 && lma_st_find(f, "empty")->nbytes == 0, "empty");
    lma_st_close(f); cJSON_Delete(j);
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir); int n = 0; struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_sharded(const char *tmp) {
    lma_st_file *f = NULL;
    CHECK_OK(lma_st_open_dir(REF "/sharded", &f));
    if (f) { check_values_f32(f, "hub sharded"); lma_st_close(f); }

    char dir[512], p[600], q[600];
    snprintf(dir, sizeof dir, "%s/sharded", tmp);
    CHECK_OK(lma_st_save_dir(dir, ents, NT, LMA_DT_F32, SHARD));
    CHECK(count_files(dir) == 7, "6 shards + index (%d files)", count_files(dir));
    for (int i = 1; i <= 6; i++) {
        snprintf(p, sizeof p, "%s/model-%05d-of-00006.safetensors", dir, i);
        snprintf(q, sizeof q, REF "/sharded/model-%05d-of-00006.safetensors", i);
        CHECK(same_file(p, q), "shard %d byte-identical to huggingface_hub's", i);
    }
    /* index: same weight_map and total_size as huggingface_hub's */
    cJSON *a = NULL, *b = NULL;
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    CHECK_OK(lma_json_load(p, &a));
    CHECK_OK(lma_json_load(REF "/sharded/model.safetensors.index.json", &b));
    if (a && b) {
        const cJSON *wa = cJSON_GetObjectItem(a, "weight_map"), *wb = cJSON_GetObjectItem(b, "weight_map");
        CHECK(cJSON_GetArraySize(wa) == cJSON_GetArraySize(wb) && cJSON_GetArraySize(wa) == NT, "weight_map sizes");
        for (const cJSON *e = wb->child; e; e = e->next) {
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(wa, e->string);
            CHECK(o && cJSON_IsString(o) && !strcmp(o->valuestring, e->valuestring), "weight_map[%s]", e->string);
        }
        double ta = cJSON_GetObjectItem(cJSON_GetObjectItem(a, "metadata"), "total_size")->valuedouble;
        double tb = cJSON_GetObjectItem(cJSON_GetObjectItem(b, "metadata"), "total_size")->valuedouble;
        CHECK(ta == tb, "total_size %g vs %g", ta, tb);
    }
    cJSON_Delete(a); cJSON_Delete(b);
    CHECK_OK(lma_st_open_dir(dir, &f));
    if (f) { check_values_f32(f, "own sharded f32"); lma_st_close(f); }

    /* bf16 sharded round trip, then the same directory rewritten unsharded */
    CHECK_OK(lma_st_save_dir(dir, ents, NT, LMA_DT_BF16, 300));
    CHECK_OK(lma_st_open_dir(dir, &f));
    if (f) { check_values_bf16(f, "own sharded bf16"); lma_st_close(f); }
    CHECK_OK(lma_st_save_dir(dir, ents, NT, LMA_DT_F32, 0));
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    CHECK(!lma_file_exists(p), "unsharded save removes the stale index");
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CHECK(same_file(p, REF "/ref_f32.safetensors"), "unsharded save_dir = save_file");
    CHECK_OK(lma_st_open_dir(dir, &f));
    if (f) { check_values_f32(f, "own single"); lma_st_close(f); }

    /* index errors */
    snprintf(dir, sizeof dir, "%s/badindex", tmp);
    CHECK_OK(lma_mkdir_p(dir));
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    const char *idx = "{\"weight_map\":{\"x\":\"../../etc/passwd\"}}";
    CHECK_OK(lma_write_file_atomic(p, idx, strlen(idx)));
    CHECK(lma_st_open_dir(dir, &f) == LMA_ERR_FORMAT && strstr(lma_last_error(), "inside the model directory"), "index escaping the dir: %s", lma_last_error());
    lma_clear_error();
    snprintf(q, sizeof q, "%s/a.safetensors", dir);
    CHECK_OK(lma_st_save(q, ents, 2, LMA_DT_F32));
    idx = "{\"weight_map\":{\"model.embed_tokens.weight\":\"a.safetensors\",\"ghost\":\"a.safetensors\"}}";
    CHECK_OK(lma_write_file_atomic(p, idx, strlen(idx)));
    CHECK(lma_st_open_dir(dir, &f) == LMA_ERR_FORMAT && strstr(lma_last_error(), "ghost"), "listed tensor missing: %s", lma_last_error());
    lma_clear_error();
    idx = "{\"weight_map\":{\"model.embed_tokens.weight\":\"a.safetensors\"}}";
    CHECK_OK(lma_write_file_atomic(p, idx, strlen(idx)));
    CHECK(lma_st_open_dir(dir, &f) == LMA_ERR_FORMAT && strstr(lma_last_error(), "does not list"), "unlisted tensor: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_st_open_dir(tmp, &f) == LMA_ERR_IO, "dir without weights is an i/o error");
    lma_clear_error();
}

/* ---- corruption ---------------------------------------------------------------- */

/* [u64 header length][header][data_len zero bytes]; hlen_override if nonzero. */
static unsigned char *build(const char *header, size_t data_len, uint64_t hlen_override, size_t *len) {
    size_t hn = strlen(header);
    *len = 8 + hn + data_len;
    unsigned char *b = calloc(1, *len);
    uint64_t h = hlen_override ? hlen_override : hn;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(h >> (8 * i));
    memcpy(b + 8, header, hn);
    return b;
}

static void test_corruption(void) {
    static const struct { const char *what, *header; size_t data; uint64_t hlen; lma_status want; const char *key; } cases[] = {
        {"header too large", "{}", 0, 100000001ull, LMA_ERR_FORMAT, "exceeds the limit"},
        {"header beyond file", "{}", 0, 64, LMA_ERR_FORMAT, "runs past the end of the file"},
        {"non-object header", "[1,2]   ", 0, 0, LMA_ERR_FORMAT, "not a JSON object"},
        {"malformed JSON", "{\"a\":{\"dtype\":", 0, 0, LMA_ERR_FORMAT, "malformed header JSON near"},
        {"bytes after the object", "{}  x", 0, 0, LMA_ERR_FORMAT, "unexpected bytes after"},
        {"invalid UTF-8", "{\"\xc3\x28\":1}", 0, 0, LMA_ERR_FORMAT, "UTF-8"},
        {"unknown dtype", "{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16, 0, LMA_ERR_FORMAT, "unknown dtype"},
        {"duplicate name", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0, LMA_ERR_FORMAT, "duplicate tensor name"},
        {"end before begin", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, 0, LMA_ERR_FORMAT, "end before they begin"},
        {"size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, 0, LMA_ERR_FORMAT, "span 4 bytes but"},
        {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0, LMA_ERR_FORMAT, "overlaps"},
        {"gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, 0, LMA_ERR_FORMAT, "gap in the data"},
        {"first not at 0", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0, LMA_ERR_FORMAT, "does not start at 0"},
        {"shape overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4, 0, LMA_ERR_FORMAT, "shape product overflows"},
        {"truncated", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12, 0, LMA_ERR_FORMAT, "truncated file"},
        {"trailing bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5, 0, LMA_ERR_FORMAT, "trailing bytes"},
        {"unknown key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"offsets\":[0,4]}}", 4, 0, LMA_ERR_FORMAT, "unknown key \"offsets\""},
        {"missing key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, 0, LMA_ERR_FORMAT, "missing \"data_offsets\""},
        {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, 0, LMA_ERR_FORMAT, "shape[0] is not a non-negative"},
        {"fractional offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}", 4, 0, LMA_ERR_FORMAT, "two non-negative integers"},
        {"bad metadata", "{\"__metadata__\":{\"format\":1}}", 0, 0, LMA_ERR_FORMAT, "__metadata__ value"},
        {"half bytes", "{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, 0, LMA_ERR_FORMAT, "whole bytes"},
        {"too many dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, 0, LMA_ERR_UNSUPPORTED, "at most 8"},
    };
    enum { NC = sizeof cases / sizeof cases[0] };
    char msgs[NC][512];
    for (int i = 0; i < NC; i++) {
        size_t len;
        unsigned char *b = build(cases[i].header, cases[i].data, cases[i].hlen, &len);
        /* an exact-size copy so ASan catches any read past the end */
        lma_st_file *f = NULL;
        lma_clear_error();
        lma_status s = lma_st_open_buffer(b, len, "bad.safetensors", &f);
        snprintf(msgs[i], sizeof msgs[i], "%s", lma_last_error());
        CHECK(s == cases[i].want && f == NULL, "%s: status %s", cases[i].what, lma_status_name(s));
        CHECK(strstr(msgs[i], cases[i].key) != NULL, "%s: message '%s' lacks '%s'", cases[i].what, msgs[i], cases[i].key);
        CHECK(strstr(msgs[i], "bad.safetensors") != NULL, "%s: message names the file", cases[i].what);
        lma_st_close(f);
        free(b);
    }
    /* Each message is specific to its case: no other case's key appears in it. */
    for (int i = 0; i < NC; i++)
        for (int j = 0; j < NC; j++)
            if (i != j) CHECK(strstr(msgs[i], cases[j].key) == NULL, "'%s' message also matches '%s'", cases[i].what, cases[j].what);
    lma_clear_error();

    /* Too short for the length; a real file cut anywhere fails cleanly. */
    lma_st_file *f = NULL;
    CHECK(lma_st_open_buffer("abc", 3, "short", &f) == LMA_ERR_FORMAT && strstr(lma_last_error(), "too short"), "short file");
    lma_clear_error();
    char *d; size_t n;
    CHECK_OK(lma_read_file(REF "/ref_f32.safetensors", &d, &n));
    int ok = 1;
    for (size_t cut = 0; cut < n; cut += 7) {
        unsigned char *c = malloc(cut + 1);
        memcpy(c, d, cut);
        if (lma_st_open_buffer(c, cut, "cut", &f) != LMA_ERR_FORMAT) ok = 0;
        lma_st_close(f); f = NULL;
        lma_clear_error();
        free(c);
    }
    CHECK(ok, "every truncation of a valid file is a format error");
    CHECK(lma_st_open_buffer(d, n - 1, "cut", &f) == LMA_ERR_FORMAT && strstr(lma_last_error(), "truncated"), "last byte cut: %s", lma_last_error());
    lma_clear_error();
    free(d);

    /* Valid corner cases: empty, null metadata, padding, zero-size, scalar, all dtypes. */
    size_t len;
    unsigned char *b = build("{\"__metadata__\":null}   ", 0, 0, &len);
    CHECK_OK(lma_st_open_buffer(b, len, "ok", &f));
    CHECK(f && lma_st_count(f) == 0, "empty file");
    lma_st_close(f); free(b);
    b = build("{\"z\":{\"data_offsets\":[2,2],\"shape\":[0],\"dtype\":\"F32\"},\"a\":{\"dtype\":\"F4\",\"shape\":[2,2],\"data_offsets\":[0,2]},"
              "\"c\":{\"dtype\":\"C64\",\"shape\":[],\"data_offsets\":[2,10]},\"e\":{\"dtype\":\"F8_E8M0\",\"shape\":[1],\"data_offsets\":[10,11]},"
              "\"f\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[11,14]}}", 14, 0, &len);
    CHECK_OK(lma_st_open_buffer(b, len, "ok", &f));
    if (f) {
        CHECK(lma_st_count(f) == 5 && lma_st_find(f, "f")->dtype == LMA_DT_F6_E2M3 && lma_st_find(f, "f")->nbytes == 3, "sub-byte dtypes");
        CHECK(lma_st_get(f, 0)->data == b + len - 14, "first in storage order starts the data");
    }
    lma_st_close(f); free(b);
}

static void test_write_errors(const char *tmp) {
    char p[512];
    snprintf(p, sizeof p, "%s/dup.safetensors", tmp);
    lma_st_entry two[2] = {ents[0], ents[0]};
    CHECK(lma_st_save(p, two, 2, LMA_DT_F32) == LMA_ERR_ARG && strstr(lma_last_error(), "twice"), "duplicate names refused");
    lma_clear_error();
    CHECK(lma_st_save(p, ents, 1, LMA_DT_F16) == LMA_ERR_ARG, "F16 writing refused");
    lma_clear_error();
    CHECK(!lma_file_exists(p), "nothing written on error");
    CHECK(lma_st_save("/nonexistent_dir/x.safetensors", ents, 1, LMA_DT_F32) == LMA_ERR_IO, "unwritable");
    lma_clear_error();
    /* conversions */
    CHECK(isnan(lma_bf16_to_f32(lma_f32_to_bf16(NAN))) && isnan(lma_bf16_to_f32(lma_f32_to_bf16(-NAN))), "NaN stays NaN");
    uint32_t snan = 0x7f800001u; float fs; memcpy(&fs, &snan, 4);
    CHECK(isnan(lma_bf16_to_f32(lma_f32_to_bf16(fs))), "NaN with a low payload stays NaN (not inf)");
    CHECK(lma_f32_to_bf16(1.0f) == 0x3f80 && lma_bf16_to_f32(0x3f80) == 1.0f, "bf16 1.0");
    CHECK(lma_f16_to_f32(0x3c00) == 1.0f && lma_f16_to_f32(0x0001) == 5.9604644775390625e-08f && lma_f16_to_f32(0xfbff) == -65504.0f, "f16");
    CHECK(isnan(lma_f16_to_f32(0x7e00)) && isinf(lma_f16_to_f32(0x7c00)), "f16 nan/inf");
    CHECK(lma_dtype_size(LMA_DT_BF16) == 2 && lma_dtype_size(LMA_DT_F4) == 0 && lma_dtype_bits(LMA_DT_F6_E3M2) == 6, "dtype sizes");
}

int main(void) {
    char tmp[] = "/tmp/lma_st_XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    make_entries();
    test_reference_files(tmp);
    test_mixed();
    test_sharded(tmp);
    test_corruption();
    test_write_errors(tmp);
    for (int k = 0; k < NT; k++) free(vals[k]);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    TEST_END();
}
