/* GGUF reader and writer: round trips through lma_gguf_writer (every metadata type,
 * typed getters, F32/F16/Q8_0/Q4_0/Q4_1 tensors of 1-4 dims, alignment, copy_kv,
 * atomic writes), and one clear refusal per kind of malformed file, built by hand
 * with a small byte-buffer builder (counts of 2^62, strings past the end, unknown
 * types, truncation at every byte, ...). */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core/io.h"
#include "format/gguf.h"
#include "quant/ggml_quant.h"
#include "test.h"

static char dir[64];

/* ---- byte-buffer builder ---- */
typedef struct { unsigned char *p; size_t len, cap; } bb;
static void bb_raw(bb *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}
static void bb_u8(bb *b, uint8_t v) { bb_raw(b, &v, 1); }
static void bb_u32(bb *b, uint32_t v) { bb_raw(b, &v, 4); }
static void bb_u64(bb *b, uint64_t v) { bb_raw(b, &v, 8); }
static void bb_str(bb *b, const char *s) { bb_u64(b, strlen(s)); bb_raw(b, s, strlen(s)); }
static void bb_pad(bb *b, size_t a) { while (b->len % a) bb_u8(b, 0); }
static void bb_head(bb *b, uint32_t ver, uint64_t nt, uint64_t nkv) {
    bb_raw(b, "GGUF", 4); bb_u32(b, ver); bb_u64(b, nt); bb_u64(b, nkv);
}
static void bb_key(bb *b, const char *k, uint32_t type) { bb_str(b, k); bb_u32(b, type); }
/* tensor info: name, n_dims, ne..., type, offset */
static void bb_tensor(bb *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    bb_str(b, name); bb_u32(b, nd);
    for (uint32_t d = 0; d < nd; d++) bb_u64(b, ne[d]);
    bb_u32(b, type); bb_u64(b, off);
}
static void bb_free(bb *b) { free(b->p); b->p = NULL; b->len = b->cap = 0; }

/* Opens an exact-size heap copy (so ASan sees any read past the end). */
static lma_status open_copy(const void *p, size_t n, lma_gguf **g, unsigned char **copy) {
    *copy = malloc(n ? n : 1);
    if (n) memcpy(*copy, p, n);
    lma_clear_error();
    return lma_gguf_open_buffer(*copy, n, "crafted", g);
}

/* The buffer must be refused with status st (or any error if st < 0) and a one-line
 * message naming the buffer and containing sub. */
static void expect_fail_(int line, const bb *b, int st, const char *sub) {
    lma_gguf *g = (lma_gguf *)1;
    unsigned char *copy;
    lma_status s = open_copy(b->p, b->len, &g, &copy);
    const char *m = lma_last_error();
    int ok = s != LMA_OK && (st < 0 || (int)s == st) && g == NULL && strstr(m, sub) && strstr(m, "crafted") &&
             !strchr(m, '\n');
    CHECK(ok, "line %d: expected %s with \"%s\", got %s: %s", line, st < 0 ? "an error" : lma_status_name(st), sub,
          lma_status_name(s), m);
    if (s == LMA_OK) lma_gguf_close(g);
    free(copy);
    lma_clear_error();
}
#define expect_fail(b, st, sub) expect_fail_(__LINE__, b, st, sub)

static void expect_ok_(int line, const bb *b) {
    lma_gguf *g = NULL;
    unsigned char *copy;
    lma_status s = open_copy(b->p, b->len, &g, &copy);
    CHECK(s == LMA_OK, "line %d: expected success: %s", line, lma_last_error());
    lma_gguf_close(g);
    free(copy);
    lma_clear_error();
}
#define expect_ok(b) expect_ok_(__LINE__, b)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- writer round trip ---- */
static const struct { const char *name; int nd; int64_t ne[4]; uint32_t type; } tens[] = {
    {"t.f32", 1, {5}, LMA_GGML_F32},
    {"t.f16", 2, {3, 4}, LMA_GGML_F16},
    {"t.q8_0", 3, {64, 2, 3}, LMA_GGML_Q8_0},
    {"t.q4_0", 4, {32, 1, 2, 2}, LMA_GGML_Q4_0},
    {"t.q4_1", 2, {32, 3}, LMA_GGML_Q4_1},
    {"t.empty", 2, {0, 4}, LMA_GGML_F32},
    {"blk.0.attn_q.weight", 1, {7}, LMA_GGML_F16},
};
enum { NTENS = sizeof tens / sizeof tens[0] };

static int64_t nelem_of(int k) {
    int64_t n = 1;
    for (int d = 0; d < tens[k].nd; d++) n *= tens[k].ne[d];
    return n;
}
static float val(int k, int64_t i) { return (float)(((i * 37 + k * 101) % 53) / 53.0 - 0.5) * (float)(k + 1); }

static lma_status fill(void *ctx, int k, void *dst, size_t nbytes) {
    int *calls = ctx;
    if (calls) calls[k]++;
    int64_t n = nelem_of(k);
    uint64_t nb;
    LMA_TRY(lma_ggml_nbytes(tens[k].type, (uint64_t)n, &nb));
    if (nb != nbytes) return lma_error(LMA_ERR_INTERNAL, "fill: %zu bytes for tensor %d, %llu expected", nbytes, k,
                                       (unsigned long long)nb);
    float *src = malloc((size_t)(n ? n : 1) * sizeof *src);
    for (int64_t i = 0; i < n; i++) src[i] = val(k, i);
    lma_status s = n ? lma_ggml_quantize(tens[k].type, src, dst, n) : LMA_OK;
    free(src);
    return s;
}

static lma_status fill_fail(void *ctx, int k, void *dst, size_t nbytes) {
    (void)ctx;
    if (k == 1) return lma_error(LMA_ERR_IO, "fill: simulated failure");
    return fill(NULL, k, dst, nbytes);
}

static int tmp_left(const char *base) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    size_t bl = strlen(base);
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, base, bl) && strstr(e->d_name + bl, ".tmp")) n++;
    closedir(d);
    return n;
}

static const char *names3[] = {"a", "", "c\0d"};
static const size_t lens3[] = {1, 0, 3};

static void build_writer(lma_gguf_writer *w) {
    CHECK_OK(lma_gguf_set_str(w, "general.name", "tiny"));
    CHECK_OK(lma_gguf_set_str(w, "s.empty", ""));
    CHECK_OK(lma_gguf_set_u32(w, "k.u32", 4000000000u));
    CHECK_OK(lma_gguf_set_i32(w, "k.i32", -123456));
    CHECK_OK(lma_gguf_set_f32(w, "k.f32", 0.125f));
    CHECK_OK(lma_gguf_set_bool(w, "k.true", 7));
    CHECK_OK(lma_gguf_set_bool(w, "k.false", 0));
    uint8_t a_u8[] = {0, 1, 255};
    int8_t a_i8[] = {-128, 0, 127};
    uint16_t a_u16[] = {0, 65535};
    int16_t a_i16[] = {-32768, 5, 32767};
    uint32_t a_u32[] = {1, 4294967295u};
    int32_t a_i32[] = {INT32_MIN, -1, INT32_MAX};
    float a_f32[] = {1.5f, -2.25f};
    uint8_t a_bool[] = {1, 0, 1};
    uint64_t a_u64[] = {UINT64_MAX, 3};
    int64_t a_i64[] = {INT64_MIN, 9};
    double a_f64[] = {3.25, -1e300};
    CHECK_OK(lma_gguf_set_array(w, "a.u8", LMA_GGUF_U8, a_u8, 3));
    CHECK_OK(lma_gguf_set_array(w, "a.i8", LMA_GGUF_I8, a_i8, 3));
    CHECK_OK(lma_gguf_set_array(w, "a.u16", LMA_GGUF_U16, a_u16, 2));
    CHECK_OK(lma_gguf_set_array(w, "a.i16", LMA_GGUF_I16, a_i16, 3));
    CHECK_OK(lma_gguf_set_array(w, "a.u32", LMA_GGUF_U32, a_u32, 2));
    CHECK_OK(lma_gguf_set_array(w, "a.i32", LMA_GGUF_I32, a_i32, 3));
    CHECK_OK(lma_gguf_set_array(w, "a.f32", LMA_GGUF_F32, a_f32, 2));
    CHECK_OK(lma_gguf_set_array(w, "a.bool", LMA_GGUF_BOOL, a_bool, 3));
    CHECK_OK(lma_gguf_set_array(w, "a.u64", LMA_GGUF_U64, a_u64, 2));
    CHECK_OK(lma_gguf_set_array(w, "a.i64", LMA_GGUF_I64, a_i64, 2));
    CHECK_OK(lma_gguf_set_array(w, "a.f64", LMA_GGUF_F64, a_f64, 2));
    CHECK_OK(lma_gguf_set_array(w, "a.empty", LMA_GGUF_U32, a_u32, 0));
    CHECK_OK(lma_gguf_set_str_array(w, "a.str", names3, lens3, 3));
    const char *plain[] = {"x", "yy"};
    CHECK_OK(lma_gguf_set_str_array(w, "a.str_plain", plain, NULL, 2));
    CHECK_OK(lma_gguf_set_str_array(w, "a.str_empty", NULL, NULL, 0));
    for (int k = 0; k < NTENS; k++) CHECK_OK(lma_gguf_add_tensor(w, tens[k].name, tens[k].nd, tens[k].ne, tens[k].type));
}

static void check_arrays(const lma_gguf *g) {
    const lma_gguf_kv *kv;
    struct { const char *k; lma_gguf_type t; uint64_t n; double f[3]; int64_t i[3]; } want[] = {
        {"a.u8", LMA_GGUF_U8, 3, {0, 1, 255}, {0, 1, 255}},
        {"a.i8", LMA_GGUF_I8, 3, {-128, 0, 127}, {-128, 0, 127}},
        {"a.u16", LMA_GGUF_U16, 2, {0, 65535}, {0, 65535}},
        {"a.i16", LMA_GGUF_I16, 3, {-32768, 5, 32767}, {-32768, 5, 32767}},
        {"a.u32", LMA_GGUF_U32, 2, {1, 4294967295.0}, {1, 4294967295LL}},
        {"a.i32", LMA_GGUF_I32, 3, {INT32_MIN, -1, INT32_MAX}, {INT32_MIN, -1, INT32_MAX}},
        {"a.f32", LMA_GGUF_F32, 2, {1.5, -2.25}, {1, -2}},
        {"a.bool", LMA_GGUF_BOOL, 3, {1, 0, 1}, {1, 0, 1}},
        {"a.i64", LMA_GGUF_I64, 2, {(double)INT64_MIN, 9}, {INT64_MIN, 9}},
        {"a.f64", LMA_GGUF_F64, 2, {3.25, -1e300}, {3, INT64_MIN}},
    };
    for (size_t j = 0; j < sizeof want / sizeof want[0]; j++) {
        kv = lma_gguf_find(g, want[j].k);
        CHECK(kv && kv->type == LMA_GGUF_ARRAY && kv->arr_type == want[j].t && kv->arr_n == want[j].n,
              "%s: array of %llu", want[j].k, kv ? (unsigned long long)kv->arr_n : 0ULL);
        if (!kv || kv->arr_n != want[j].n) continue;
        for (uint64_t i = 0; i < kv->arr_n; i++) {
            CHECK(lma_gguf_arr_f64(kv, i) == want[j].f[i], "%s[%llu] f64 %g", want[j].k, (unsigned long long)i,
                  lma_gguf_arr_f64(kv, i));
            CHECK(lma_gguf_arr_i64(kv, i) == want[j].i[i], "%s[%llu] i64 %lld", want[j].k, (unsigned long long)i,
                  (long long)lma_gguf_arr_i64(kv, i));
        }
    }
    kv = lma_gguf_find(g, "a.u64");
    CHECK(kv && kv->arr_n == 2 && lma_gguf_arr_f64(kv, 0) == 18446744073709551615.0 && lma_gguf_arr_i64(kv, 1) == 3,
          "a.u64");
    uint64_t u;
    if (kv) { memcpy(&u, kv->arr_data, 8); CHECK(u == UINT64_MAX, "a.u64 raw"); }
    kv = lma_gguf_find(g, "a.empty");
    CHECK(kv && kv->type == LMA_GGUF_ARRAY && kv->arr_type == LMA_GGUF_U32 && kv->arr_n == 0, "a.empty");
    kv = lma_gguf_find(g, "a.str");
    CHECK(kv && kv->arr_type == LMA_GGUF_STRING && kv->arr_n == 3 && kv->arr_str, "a.str");
    if (kv && kv->arr_n == 3 && kv->arr_str)
        for (int i = 0; i < 3; i++)
            CHECK(kv->arr_str[i].len == lens3[i] && !memcmp(kv->arr_str[i].s, names3[i], lens3[i]), "a.str[%d]", i);
    kv = lma_gguf_find(g, "a.str_plain");
    CHECK(kv && kv->arr_n == 2 && kv->arr_str && kv->arr_str[1].len == 2 && !memcmp(kv->arr_str[1].s, "yy", 2),
          "a.str_plain");
    kv = lma_gguf_find(g, "a.str_empty");
    CHECK(kv && kv->type == LMA_GGUF_ARRAY && kv->arr_type == LMA_GGUF_STRING && kv->arr_n == 0, "a.str_empty");
}

static void check_getters(const lma_gguf *g) {
    uint64_t u = 77; int64_t i = 77; double f = 77; int b = 77, found = 9; char *s = NULL;
    CHECK_OK(lma_gguf_get_u64(g, "k.u32", &u, &found));
    CHECK(u == 4000000000u && found == 1, "get_u64 u32 %llu", (unsigned long long)u);
    CHECK_OK(lma_gguf_get_i64(g, "k.i32", &i, &found));
    CHECK(i == -123456 && found == 1, "get_i64 i32 %lld", (long long)i);
    CHECK_OK(lma_gguf_get_i64(g, "k.u32", &i, NULL));
    CHECK(i == 4000000000LL, "get_i64 u32");
    CHECK_OK(lma_gguf_get_f64(g, "k.f32", &f, &found));
    CHECK(f == 0.125 && found == 1, "get_f64 f32 %g", f);
    CHECK_OK(lma_gguf_get_f64(g, "k.i32", &f, NULL));
    CHECK(f == -123456.0, "get_f64 i32");
    CHECK_OK(lma_gguf_get_f64(g, "k.u32", &f, NULL));
    CHECK(f == 4000000000.0, "get_f64 u32");
    CHECK_OK(lma_gguf_get_bool(g, "k.true", &b, &found));
    CHECK(b == 1 && found == 1, "get_bool true");
    CHECK_OK(lma_gguf_get_bool(g, "k.false", &b, &found));
    CHECK(b == 0 && found == 1, "get_bool false");
    CHECK_OK(lma_gguf_get_str(g, "general.name", &s, &found));
    CHECK(s && !strcmp(s, "tiny") && found == 1, "get_str");
    free(s); s = NULL;
    CHECK_OK(lma_gguf_get_str(g, "s.empty", &s, &found));
    CHECK(s && s[0] == 0 && found == 1, "get_str empty");
    free(s); s = NULL;
    /* wrong type: LMA_ERR_FORMAT naming the key */
    lma_clear_error();
    CHECK(lma_gguf_get_u64(g, "general.name", &u, &found) == LMA_ERR_FORMAT && strstr(lma_last_error(), "general.name") && strstr(lma_last_error(), "string"),
          "get_u64 on a string: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_gguf_get_i64(g, "k.f32", &i, &found) == LMA_ERR_FORMAT && strstr(lma_last_error(), "'k.f32'"),
          "get_i64 on f32: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_gguf_get_f64(g, "a.f32", &f, &found) == LMA_ERR_FORMAT && strstr(lma_last_error(), "'a.f32'") &&
          strstr(lma_last_error(), "array"), "get_f64 on an array: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_gguf_get_bool(g, "k.u32", &b, &found) == LMA_ERR_FORMAT && strstr(lma_last_error(), "'k.u32'"),
          "get_bool on u32: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_gguf_get_str(g, "k.true", &s, &found) == LMA_ERR_FORMAT && strstr(lma_last_error(), "'k.true'") && !s,
          "get_str on bool: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_gguf_get_u64(g, "k.i32", &u, &found) == LMA_ERR_FORMAT && strstr(lma_last_error(), "k.i32") &&
          strstr(lma_last_error(), "negative"), "get_u64 of a negative i32: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_gguf_get_u64(g, "k.true", &u, &found) == LMA_ERR_FORMAT, "get_u64 on bool");
    lma_clear_error();
    /* absent: LMA_OK, found = 0, out unchanged */
    u = 5; i = 6; f = 7; b = 8; s = (char *)"keep";
    found = 1; CHECK(lma_gguf_get_u64(g, "nope", &u, &found) == LMA_OK && found == 0 && u == 5, "absent u64");
    found = 1; CHECK(lma_gguf_get_i64(g, "nope", &i, &found) == LMA_OK && found == 0 && i == 6, "absent i64");
    found = 1; CHECK(lma_gguf_get_f64(g, "nope", &f, &found) == LMA_OK && found == 0 && f == 7, "absent f64");
    found = 1; CHECK(lma_gguf_get_bool(g, "nope", &b, &found) == LMA_OK && found == 0 && b == 8, "absent bool");
    found = 1; CHECK(lma_gguf_get_str(g, "nope", &s, &found) == LMA_OK && found == 0 && !strcmp(s, "keep"), "absent str");
    CHECK(lma_gguf_get_u64(g, "nope", &u, NULL) == LMA_OK, "absent, found NULL");
    CHECK(lma_gguf_get_u64(g, "general.nam", &u, &found) == LMA_OK && !found, "a prefix of a key is not the key");
    CHECK(!lma_error_pending(), "no error pending after absent lookups");
}

static void check_tensors(const lma_gguf *g, const unsigned char *base, size_t len) {
    CHECK(lma_gguf_n_tensors(g) == NTENS, "%lld tensors", (long long)lma_gguf_n_tensors(g));
    const lma_gguf_tensor *t0 = lma_gguf_tensor_at(g, 0);
    const unsigned char *dstart = t0 ? (const unsigned char *)t0->data - t0->offset : NULL;
    CHECK(dstart && (size_t)(dstart - base) % 32 == 0 && dstart > base && (size_t)(dstart - base) <= len,
          "data section starts 32-aligned");
    uint64_t expect_off = 0;
    for (int k = 0; k < NTENS; k++) {
        const lma_gguf_tensor *t = lma_gguf_tensor_at(g, k);
        CHECK(t && t == lma_gguf_find_tensor(g, tens[k].name), "tensor %d in order and found by name", k);
        if (!t) continue;
        CHECK(t->name.len == strlen(tens[k].name) && !memcmp(t->name.s, tens[k].name, t->name.len), "name %d", k);
        CHECK(t->n_dims == tens[k].nd && t->type == tens[k].type, "%s: dims/type", tens[k].name);
        for (int d = 0; d < 4; d++)
            CHECK(t->ne[d] == (d < tens[k].nd ? tens[k].ne[d] : 1), "%s: ne[%d] = %lld", tens[k].name, d,
                  (long long)t->ne[d]);
        uint64_t nb;
        lma_ggml_nbytes(t->type, (uint64_t)nelem_of(k), &nb);
        CHECK(t->nelem == (uint64_t)nelem_of(k) && t->nbytes == nb, "%s: nelem/nbytes", tens[k].name);
        CHECK(t->offset % 32 == 0 && t->offset == expect_off, "%s: offset %llu", tens[k].name,
              (unsigned long long)t->offset);
        CHECK((const unsigned char *)t->data == dstart + t->offset && ((const unsigned char *)t->data - dstart) % 32 == 0,
              "%s: data pointer", tens[k].name);
        CHECK((const unsigned char *)t->data + t->nbytes <= base + len, "%s: inside the file", tens[k].name);
        expect_off += (nb + 31) / 32 * 32;
        /* the bytes are what fill() wrote, and dequantize to about the values */
        void *want = malloc(nb ? nb : 1);
        fill(NULL, k, want, nb);
        CHECK(!memcmp(want, t->data, nb), "%s: data bytes", tens[k].name);
        free(want);
        int64_t n = nelem_of(k);
        float *y = malloc((size_t)(n ? n : 1) * sizeof *y);
        if (n) CHECK_OK(lma_ggml_dequantize(t->type, t->data, y, n));
        double err = 0;
        for (int64_t i = 0; i < n; i++) err = fmax(err, fabs(y[i] - val(k, i)));
        double tol = t->type == LMA_GGML_F32 ? 0 : t->type == LMA_GGML_F16 ? 4e-3 : t->type == LMA_GGML_Q8_0 ? 0.05 : 0.6;
        CHECK(err <= tol, "%s: max error %g", tens[k].name, err);
        free(y);
    }
    CHECK(lma_gguf_tensor_at(g, -1) == NULL && lma_gguf_tensor_at(g, NTENS) == NULL, "tensor_at out of range");
    CHECK(lma_gguf_find_tensor(g, "t.f3") == NULL && lma_gguf_find_tensor(g, "t.f32x") == NULL, "find_tensor absent");
}

static void test_roundtrip(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/rt.gguf", dir);
    lma_gguf_writer *w = NULL;
    CHECK_OK(lma_gguf_writer_new(&w));
    build_writer(w);
    int calls[NTENS] = {0};
    CHECK_OK(lma_gguf_write(w, path, fill, calls));
    for (int k = 0; k < NTENS; k++) CHECK(calls[k] == 1, "fill called once for tensor %d (%d)", k, calls[k]);
    CHECK(tmp_left("rt.gguf") == 0, "no temporary file left");
    char *bytes = NULL; size_t len = 0;
    CHECK_OK(lma_read_file(path, &bytes, &len));
    uint32_t ver = 0;
    if (len >= 8) memcpy(&ver, bytes + 4, 4);
    CHECK(len >= 24 && !memcmp(bytes, "GGUF", 4) && ver == 3, "GGUF v3 header");
    CHECK(len % 32 == 0, "file length %zu is a multiple of the alignment", len);
    lma_gguf *g = NULL;
    CHECK_OK(lma_gguf_open_buffer(bytes, len, "rt", &g));
    if (g) {
        CHECK(lma_gguf_version(g) == 3, "version 3");
        CHECK(lma_gguf_n_kv(g) == 22, "%lld keys", (long long)lma_gguf_n_kv(g));
        CHECK(!strcmp(lma_gguf_path(g), "rt"), "ctx name kept");
        CHECK(lma_gguf_find(g, "general.alignment") == NULL, "general.alignment not written");
        CHECK(lma_gguf_kv_at(g, -1) == NULL && lma_gguf_kv_at(g, lma_gguf_n_kv(g)) == NULL, "kv_at out of range");
        const lma_gguf_kv *kv0 = lma_gguf_kv_at(g, 0);
        CHECK(kv0 && kv0->key.len == 12 && !memcmp(kv0->key.s, "general.name", 12) && kv0->type == LMA_GGUF_STRING,
              "keys in the order set");
        const lma_gguf_kv *kv = lma_gguf_find(g, "k.true");
        CHECK(kv && kv->type == LMA_GGUF_BOOL && kv->v.u == 1, "bool stored as 1");
        check_getters(g);
        check_arrays(g);
        check_tensors(g, (const unsigned char *)bytes, len);
        lma_gguf_close(g);
    }
    /* the same through the file path (mmap) */
    g = NULL;
    CHECK_OK(lma_gguf_open(path, &g));
    if (g) {
        CHECK(!strcmp(lma_gguf_path(g), path) && lma_gguf_n_tensors(g) == NTENS, "lma_gguf_open");
        const lma_gguf_tensor *t = lma_gguf_find_tensor(g, "t.q8_0");
        CHECK(t && ((uintptr_t)t->data % 32) == 0, "mapped data 32-byte aligned");
        lma_gguf_close(g);
    }
    /* writing again with the same writer gives the same bytes */
    char path2[128];
    snprintf(path2, sizeof path2, "%s/rt2.gguf", dir);
    CHECK_OK(lma_gguf_write(w, path2, fill, NULL));
    char *b2 = NULL; size_t l2 = 0;
    CHECK_OK(lma_read_file(path2, &b2, &l2));
    CHECK(l2 == len && b2 && !memcmp(bytes, b2, len), "the writer is reusable and deterministic");
    free(b2);

    /* atomic: a failing fill leaves the existing file untouched and no temporary */
    lma_clear_error();
    lma_status s = lma_gguf_write(w, path, fill_fail, NULL);
    CHECK(s == LMA_ERR_IO && strstr(lma_last_error(), "simulated"), "fill failure returned: %s", lma_last_error());
    lma_clear_error();
    b2 = NULL;
    CHECK_OK(lma_read_file(path, &b2, &l2));
    CHECK(l2 == len && b2 && !memcmp(bytes, b2, len), "existing file untouched after a failed write");
    free(b2);
    CHECK(tmp_left("rt.gguf") == 0, "no temporary file left after a failed write");
    /* a failing fill with no earlier file: nothing is created */
    char path3[128];
    snprintf(path3, sizeof path3, "%s/never.gguf", dir);
    CHECK(lma_gguf_write(w, path3, fill_fail, NULL) != LMA_OK && access(path3, F_OK) != 0 && tmp_left("never") == 0,
          "failed write creates nothing");
    lma_clear_error();
    /* unwritable destination */
    CHECK(lma_gguf_write(w, "/nonexistent-dir/x.gguf", fill, NULL) == LMA_ERR_IO, "unwritable path -> IO");
    lma_clear_error();

    /* duplicates and bad tensors are refused by the writer, which stays usable */
    CHECK(lma_gguf_set_u32(w, "k.u32", 1) == LMA_ERR_ARG && strstr(lma_last_error(), "'k.u32'"),
          "duplicate key: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_gguf_set_str(w, "k.f32", "x") == LMA_ERR_ARG, "duplicate key of another type");
    lma_clear_error();
    CHECK(lma_gguf_set_str_array(w, "a.str", names3, lens3, 3) == LMA_ERR_ARG, "duplicate array key");
    lma_clear_error();
    int64_t ne[5] = {32, 2, 1, 1, 1};
    CHECK(lma_gguf_add_tensor(w, "t.f16", 1, ne, LMA_GGML_F32) == LMA_ERR_ARG && strstr(lma_last_error(), "'t.f16'"),
          "duplicate tensor: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_gguf_add_tensor(w, "bad0", 0, ne, LMA_GGML_F32) == LMA_ERR_ARG, "0 dims refused");
    lma_clear_error();
    CHECK(lma_gguf_add_tensor(w, "bad5", 5, ne, LMA_GGML_F32) == LMA_ERR_ARG, "5 dims refused");
    lma_clear_error();
    int64_t ne31[1] = {31};
    CHECK(lma_gguf_add_tensor(w, "bad31", 1, ne31, LMA_GGML_Q8_0) != LMA_OK && strstr(lma_last_error(), "bad31"),
          "Q8_0 row of 31 refused: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_gguf_add_tensor(w, "badtype", 1, ne, 4) != LMA_OK && strstr(lma_last_error(), "4"),
          "unknown ggml type 4 refused: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_gguf_add_tensor(w, "badtype2", 1, ne, 1000) != LMA_OK, "unknown ggml type 1000 refused");
    lma_clear_error();
    int64_t neg[2] = {4, -1};
    CHECK(lma_gguf_add_tensor(w, "neg", 2, neg, LMA_GGML_F32) == LMA_ERR_ARG, "negative dim refused");
    lma_clear_error();
    CHECK(lma_gguf_add_tensor(w, "", 1, ne, LMA_GGML_F32) == LMA_ERR_ARG, "empty tensor name refused: %s",
          lma_last_error());
    lma_clear_error();
    CHECK(lma_gguf_set_u32(w, "", 1) == LMA_ERR_ARG, "empty key refused");
    lma_clear_error();
    CHECK(lma_gguf_set_u32(w, "general.alignment", 64) == LMA_ERR_ARG, "general.alignment other than 32 refused");
    lma_clear_error();
    CHECK(lma_gguf_set_array(w, "arr.str", LMA_GGUF_STRING, names3, 1) == LMA_ERR_ARG, "set_array of strings refused");
    lma_clear_error();
    CHECK(lma_gguf_set_array(w, "arr.arr", LMA_GGUF_ARRAY, names3, 1) == LMA_ERR_ARG, "set_array of arrays refused");
    lma_clear_error();
    /* after the refusals the writer still writes the same file */
    CHECK_OK(lma_gguf_write(w, path2, fill, NULL));
    b2 = NULL;
    CHECK_OK(lma_read_file(path2, &b2, &l2));
    CHECK(l2 == len && b2 && !memcmp(bytes, b2, len), "refusals changed nothing");
    free(b2);
    lma_gguf_writer_free(w);
    free(bytes);

    /* an empty writer: a 24-byte file, 0 keys, 0 tensors */
    CHECK_OK(lma_gguf_writer_new(&w));
    CHECK_OK(lma_gguf_write(w, path3, NULL, NULL));
    g = NULL;
    CHECK_OK(lma_gguf_open(path3, &g));
    CHECK(g && lma_gguf_n_kv(g) == 0 && lma_gguf_n_tensors(g) == 0, "empty file");
    lma_gguf_close(g);
    struct stat st;
    CHECK(stat(path3, &st) == 0 && st.st_size == 32, "empty file is the header padded to 32 bytes");
    /* general.alignment = 32 may be set explicitly */
    CHECK_OK(lma_gguf_set_u32(w, "general.alignment", 32));
    int64_t ne1[1] = {5};
    CHECK_OK(lma_gguf_add_tensor(w, "t.f32", 1, ne1, LMA_GGML_F32));
    CHECK_OK(lma_gguf_write(w, path3, fill, NULL));
    g = NULL;
    CHECK_OK(lma_gguf_open(path3, &g));
    CHECK(g && lma_gguf_n_tensors(g) == 1 && lma_gguf_find(g, "general.alignment"), "explicit alignment 32");
    lma_gguf_close(g);
    lma_gguf_writer_free(w);
}

/* every scalar type, hand-written, then copied through lma_gguf_copy_kv */
static void all_scalars(bb *b) {
    bb_head(b, 3, 0, 16);
    bb_key(b, "u8", LMA_GGUF_U8); bb_u8(b, 200);
    bb_key(b, "i8", LMA_GGUF_I8); bb_u8(b, (uint8_t)-100);
    bb_key(b, "u16", LMA_GGUF_U16); uint16_t u16 = 60000; bb_raw(b, &u16, 2);
    bb_key(b, "i16", LMA_GGUF_I16); int16_t i16 = -30000; bb_raw(b, &i16, 2);
    bb_key(b, "u32", LMA_GGUF_U32); bb_u32(b, 4000000000u);
    bb_key(b, "i32", LMA_GGUF_I32); bb_u32(b, (uint32_t)-2000000000);
    bb_key(b, "f32", LMA_GGUF_F32); float f32 = -1.75f; bb_raw(b, &f32, 4);
    bb_key(b, "bool", LMA_GGUF_BOOL); bb_u8(b, 1);
    bb_key(b, "str", LMA_GGUF_STRING); bb_str(b, "hello");
    bb_key(b, "u64", LMA_GGUF_U64); bb_u64(b, UINT64_MAX);
    bb_key(b, "i64", LMA_GGUF_I64); bb_u64(b, (uint64_t)INT64_MIN);
    bb_key(b, "f64", LMA_GGUF_F64); double f64 = 1e-300; bb_raw(b, &f64, 8);
    bb_key(b, "nul", LMA_GGUF_STRING); bb_u64(b, 3); bb_raw(b, "a\0b", 3);
    bb_key(b, "arr", LMA_GGUF_ARRAY); bb_u32(b, LMA_GGUF_I16); bb_u64(b, 2); bb_raw(b, "\x01\x00\xff\xff", 4);
    float fa[4] = {NAN, 1e30f, -1e30f, -2.5f};
    bb_key(b, "fa", LMA_GGUF_ARRAY); bb_u32(b, LMA_GGUF_F32); bb_u64(b, 4); bb_raw(b, fa, sizeof fa);
    bb_key(b, "skip.me", LMA_GGUF_U8); bb_u8(b, 1);
}

static void check_scalars(const lma_gguf *g, int copied) {
    uint64_t u = 0; int64_t i = 0; double f = 0; int b = 0;
    CHECK_OK(lma_gguf_get_u64(g, "u8", &u, NULL)); CHECK(u == 200, "u8");
    CHECK_OK(lma_gguf_get_i64(g, "i8", &i, NULL)); CHECK(i == -100, "i8");
    CHECK_OK(lma_gguf_get_u64(g, "u16", &u, NULL)); CHECK(u == 60000, "u16");
    CHECK_OK(lma_gguf_get_i64(g, "i16", &i, NULL)); CHECK(i == -30000, "i16");
    CHECK_OK(lma_gguf_get_u64(g, "u32", &u, NULL)); CHECK(u == 4000000000u, "u32");
    CHECK_OK(lma_gguf_get_i64(g, "i32", &i, NULL)); CHECK(i == -2000000000, "i32");
    CHECK_OK(lma_gguf_get_f64(g, "f32", &f, NULL)); CHECK(f == -1.75, "f32");
    CHECK_OK(lma_gguf_get_bool(g, "bool", &b, NULL)); CHECK(b == 1, "bool");
    CHECK_OK(lma_gguf_get_u64(g, "u64", &u, NULL)); CHECK(u == UINT64_MAX, "u64");
    CHECK_OK(lma_gguf_get_f64(g, "u64", &f, NULL)); CHECK(f == 18446744073709551615.0, "u64 as f64");
    CHECK_OK(lma_gguf_get_i64(g, "i64", &i, NULL)); CHECK(i == INT64_MIN, "i64");
    CHECK_OK(lma_gguf_get_f64(g, "f64", &f, NULL)); CHECK(f == 1e-300, "f64");
    char *s = NULL;
    CHECK_OK(lma_gguf_get_str(g, "str", &s, NULL)); CHECK(s && !strcmp(s, "hello"), "str");
    free(s); s = NULL;
    lma_clear_error();
    CHECK(lma_gguf_get_str(g, "nul", &s, NULL) == LMA_ERR_FORMAT && strstr(lma_last_error(), "'nul'") && !s,
          "string with a NUL refused: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_gguf_get_i64(g, "u64", &i, NULL) == LMA_ERR_FORMAT && strstr(lma_last_error(), "u64"),
          "u64 above INT64_MAX refused by get_i64: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_gguf_get_u64(g, "i64", &u, NULL) == LMA_ERR_FORMAT, "negative i64 refused by get_u64");
    lma_clear_error();
    const lma_gguf_kv *kv = lma_gguf_find(g, "arr");
    CHECK(kv && kv->arr_n == 2 && lma_gguf_arr_i64(kv, 0) == 1 && lma_gguf_arr_i64(kv, 1) == -1, "i16 array");
    CHECK((lma_gguf_find(g, "skip.me") == NULL) == copied, "skip");
    CHECK(lma_gguf_n_kv(g) == (copied ? 15 : 16), "key count");
    kv = lma_gguf_find(g, "fa");
    CHECK(kv && kv->arr_n == 4 && isnan(lma_gguf_arr_f64(kv, 0)) && lma_gguf_arr_i64(kv, 0) == 0 &&
          lma_gguf_arr_i64(kv, 1) == INT64_MAX && lma_gguf_arr_i64(kv, 2) == INT64_MIN && lma_gguf_arr_i64(kv, 3) == -2,
          "f32 array as i64: NaN -> 0, out of range saturates");
}

static int skip_fn(const char *k, size_t n) { return n == 7 && !memcmp(k, "skip.me", 7); }

static void test_scalars_copy_kv(void) {
    bb b = {0};
    all_scalars(&b);
    lma_gguf *g = NULL;
    unsigned char *copy;
    CHECK(open_copy(b.p, b.len, &g, &copy) == LMA_OK, "all scalars: %s", lma_last_error());
    if (!g) { free(copy); bb_free(&b); return; }
    check_scalars(g, 0);
    lma_gguf_writer *w = NULL;
    CHECK_OK(lma_gguf_writer_new(&w));
    CHECK_OK(lma_gguf_copy_kv(w, g, skip_fn));
    /* copying again collides with every key */
    lma_clear_error();
    CHECK(lma_gguf_copy_kv(w, g, NULL) == LMA_ERR_ARG && strstr(lma_last_error(), "'u8'"), "copy_kv twice: %s",
          lma_last_error());
    lma_clear_error();
    char path[128];
    snprintf(path, sizeof path, "%s/copy.gguf", dir);
    CHECK_OK(lma_gguf_write(w, path, NULL, NULL));
    lma_gguf *g2 = NULL;
    CHECK_OK(lma_gguf_open(path, &g2));
    if (g2) {
        check_scalars(g2, 1);
        /* the metadata bytes are the original's minus skip.me */
        char *bytes; size_t len;
        CHECK_OK(lma_read_file(path, &bytes, &len));
        size_t skip_len = 8 + 7 + 4 + 1;
        CHECK(len >= b.len - skip_len && !memcmp(bytes + 24, b.p + 24, b.len - 24 - skip_len),
              "copy_kv copies the bytes");
        free(bytes);
        lma_gguf_close(g2);
    }
    lma_gguf_writer_free(w);
    lma_gguf_close(g);
    free(copy);
    bb_free(&b);
    /* version 2 files are read */
    bb_head(&b, 2, 0, 1);
    bb_key(&b, "x", LMA_GGUF_U8); bb_u8(&b, 1);
    lma_clear_error();
    unsigned char *c2;
    g = NULL;
    CHECK(open_copy(b.p, b.len, &g, &c2) == LMA_OK && g && lma_gguf_version(g) == 2, "version 2 read");
    lma_gguf_close(g);
    free(c2);
    bb_free(&b);
}

/* ---- hand-crafted refusals ---- */
/* a valid file with one F32 tensor [8] and metadata key "k" (u32) */
static void one_tensor(bb *b, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off, size_t data) {
    bb_head(b, 3, 1, 1);
    bb_key(b, "k", LMA_GGUF_U32); bb_u32(b, 1);
    bb_tensor(b, "w", nd, ne, type, off);
    bb_pad(b, 32);
    for (size_t i = 0; i < data; i++) bb_u8(b, 0);
}

static void test_rejections(void) {
    bb b = {0};
    const uint64_t E62 = 1ULL << 62, EMAX = UINT64_MAX, E63 = 1ULL << 63;
    uint64_t ne8[1] = {8};

    /* sanity: the base file is valid */
    one_tensor(&b, 1, ne8, LMA_GGML_F32, 0, 32); expect_ok(&b); bb_free(&b);

    bb_raw(&b, "GGUX", 4); bb_u32(&b, 3); bb_u64(&b, 0); bb_u64(&b, 0);
    expect_fail(&b, LMA_ERR_FORMAT, "not a GGUF file"); bb_free(&b);
    bb_raw(&b, "gguf", 4); bb_u32(&b, 3); bb_u64(&b, 0); bb_u64(&b, 0);
    expect_fail(&b, LMA_ERR_FORMAT, "magic"); bb_free(&b);
    bb_head(&b, 1, 0, 0); expect_fail(&b, LMA_ERR_UNSUPPORTED, "version 1"); bb_free(&b);
    bb_head(&b, 4, 0, 0); expect_fail(&b, LMA_ERR_UNSUPPORTED, "version 4"); bb_free(&b);
    bb_head(&b, 0, 0, 0); expect_fail(&b, -1, "version 0"); bb_free(&b);
    bb_head(&b, 0x03000000u, 0, 0); expect_fail(&b, LMA_ERR_FORMAT, "big-endian"); bb_free(&b);
    bb_head(&b, 0x02000000u, 0, 0); expect_fail(&b, LMA_ERR_FORMAT, "big-endian"); bb_free(&b);

    /* truncated / empty */
    expect_fail(&b, LMA_ERR_FORMAT, "truncated");
    bb_raw(&b, "GGUF", 4); bb_u32(&b, 3); bb_u32(&b, 0); expect_fail(&b, LMA_ERR_FORMAT, "truncated"); bb_free(&b);
    bb_head(&b, 3, 0, 1); expect_fail(&b, LMA_ERR_FORMAT, "metadata count 1 is more than the file could hold"); bb_free(&b);
    bb_head(&b, 3, 0, 1); bb_str(&b, "key"); bb_u8(&b, 0); bb_u8(&b, 0); expect_fail(&b, LMA_ERR_FORMAT, "truncated: key 'key' needs 4 bytes"); bb_free(&b);
    bb_head(&b, 3, 0, 1); bb_key(&b, "key", LMA_GGUF_U64); bb_u32(&b, 0);
    expect_fail(&b, LMA_ERR_FORMAT, "truncated: key 'key'"); bb_free(&b);

    /* huge counts */
    uint64_t huge[] = {E62, EMAX, E63, 1ULL << 40};
    for (int h = 0; h < 4; h++) {
        bb_head(&b, 3, 0, huge[h]); bb_key(&b, "k", LMA_GGUF_U8); bb_u8(&b, 0);
        expect_fail(&b, LMA_ERR_FORMAT, "metadata count"); bb_free(&b);
        double t0 = now();
        bb_head(&b, 3, huge[h], 0); bb_tensor(&b, "w", 1, ne8, LMA_GGML_F32, 0);
        expect_fail(&b, LMA_ERR_FORMAT, "tensor count"); bb_free(&b);
        CHECK(now() - t0 < 1.0, "tensor count %llu refused fast", (unsigned long long)huge[h]);
        bb_head(&b, 3, 0, 1); bb_key(&b, "arr", LMA_GGUF_ARRAY); bb_u32(&b, LMA_GGUF_U32); bb_u64(&b, huge[h]);
        bb_u32(&b, 7);
        expect_fail(&b, LMA_ERR_FORMAT, "array count"); bb_free(&b);
        bb_head(&b, 3, 0, 1); bb_key(&b, "arr", LMA_GGUF_ARRAY); bb_u32(&b, LMA_GGUF_STRING); bb_u64(&b, huge[h]);
        bb_str(&b, "x");
        expect_fail(&b, LMA_ERR_FORMAT, "array count"); bb_free(&b);
        bb_head(&b, 3, 0, 1); bb_key(&b, "arr", LMA_GGUF_ARRAY); bb_u32(&b, LMA_GGUF_U8); bb_u64(&b, huge[h]);
        bb_u8(&b, 7);
        expect_fail(&b, LMA_ERR_FORMAT, "array count"); bb_free(&b);
    }
    /* a count that fits the bytes but not 13 per key: refused by the per-key reads */
    bb_head(&b, 3, 0, 3); bb_key(&b, "k", LMA_GGUF_U64); bb_u64(&b, 0); bb_u64(&b, 0); bb_u64(&b, 0);
    expect_fail(&b, LMA_ERR_FORMAT, "metadata count 3"); bb_free(&b);
    bb_head(&b, 3, 0, 2); bb_key(&b, "k", LMA_GGUF_U64); bb_u64(&b, 0); bb_key(&b, "kk", LMA_GGUF_U64); bb_u32(&b, 0);
    expect_fail(&b, LMA_ERR_FORMAT, "truncated: key 'kk' needs 8 bytes"); bb_free(&b);

    /* string lengths past the end */
    uint64_t slen[] = {E63, EMAX, 100};
    for (int h = 0; h < 3; h++) {
        bb_head(&b, 3, 0, 1); bb_u64(&b, slen[h]); bb_raw(&b, "key", 3); bb_u32(&b, 0);
        expect_fail(&b, LMA_ERR_FORMAT, "string length"); bb_free(&b);
        bb_head(&b, 3, 0, 1); bb_key(&b, "s", LMA_GGUF_STRING); bb_u64(&b, slen[h]); bb_raw(&b, "abc", 3);
        expect_fail(&b, LMA_ERR_FORMAT, "key 's': string length"); bb_free(&b);
        bb_head(&b, 3, 0, 1); bb_key(&b, "sa", LMA_GGUF_ARRAY); bb_u32(&b, LMA_GGUF_STRING); bb_u64(&b, 2);
        bb_str(&b, "ok"); bb_u64(&b, slen[h]); bb_raw(&b, "abc", 3);
        expect_fail(&b, LMA_ERR_FORMAT, "key 'sa': string length"); bb_free(&b);
        bb_head(&b, 3, 1, 0); bb_u64(&b, slen[h]); bb_raw(&b, "w", 1); bb_u32(&b, 1); bb_u64(&b, 8); bb_u32(&b, 0);
        bb_u64(&b, 0);
        expect_fail(&b, LMA_ERR_FORMAT, "tensor info 0: string length"); bb_free(&b);
    }
    bb_head(&b, 3, 0, 1); bb_key(&b, "", LMA_GGUF_U8); bb_u8(&b, 0);
    expect_fail(&b, LMA_ERR_FORMAT, "invalid length 0"); bb_free(&b);

    /* unknown value types, arrays of arrays */
    uint32_t badt[] = {13, 100, 0xFFFFFFFFu};
    for (int h = 0; h < 3; h++) {
        bb_head(&b, 3, 0, 1); bb_key(&b, "kt", badt[h]); bb_u64(&b, 0);
        expect_fail(&b, LMA_ERR_FORMAT, "key 'kt' has unknown value type"); bb_free(&b);
        bb_head(&b, 3, 0, 1); bb_key(&b, "kt", LMA_GGUF_ARRAY); bb_u32(&b, badt[h]); bb_u64(&b, 0);
        expect_fail(&b, LMA_ERR_FORMAT, "array of unknown type"); bb_free(&b);
    }
    bb_head(&b, 3, 0, 1); bb_key(&b, "aa", LMA_GGUF_ARRAY); bb_u32(&b, LMA_GGUF_ARRAY); bb_u64(&b, 1);
    bb_u32(&b, LMA_GGUF_U8); bb_u64(&b, 1); bb_u8(&b, 0);
    expect_fail(&b, LMA_ERR_FORMAT, "key 'aa' is an array of arrays"); bb_free(&b);
    /* an empty array of arrays is refused too */
    bb_head(&b, 3, 0, 1); bb_key(&b, "aa", LMA_GGUF_ARRAY); bb_u32(&b, LMA_GGUF_ARRAY); bb_u64(&b, 0);
    expect_fail(&b, LMA_ERR_FORMAT, "array of arrays"); bb_free(&b);

    /* tensors */
    uint32_t badg[] = {4, 5, 31, 1000, 0xFFFFFFFFu};
    for (int h = 0; h < 5; h++) {
        one_tensor(&b, 1, ne8, badg[h], 0, 32);
        expect_fail(&b, LMA_ERR_FORMAT, "tensor 'w' has unknown ggml type"); bb_free(&b);
    }
    uint64_t ov1[2] = {1ULL << 32, 1ULL << 32}, ov2[1] = {E63}, ov3[4] = {1ULL << 20, 1ULL << 20, 1ULL << 20, 1ULL << 4},
             ov4[2] = {EMAX, 0}, ov5[3] = {0, EMAX, 2};
    one_tensor(&b, 2, ov1, LMA_GGML_F32, 0, 32); expect_fail(&b, LMA_ERR_FORMAT, "overflows"); bb_free(&b);
    one_tensor(&b, 1, ov2, LMA_GGML_F32, 0, 32); expect_fail(&b, LMA_ERR_FORMAT, "overflows"); bb_free(&b);
    one_tensor(&b, 4, ov3, LMA_GGML_F32, 0, 32); expect_fail(&b, LMA_ERR_FORMAT, "overflows"); bb_free(&b);
    one_tensor(&b, 2, ov4, LMA_GGML_F32, 0, 32); expect_fail(&b, LMA_ERR_FORMAT, "overflows"); bb_free(&b);
    one_tensor(&b, 3, ov5, LMA_GGML_F32, 0, 32); expect_fail(&b, LMA_ERR_FORMAT, "overflows"); bb_free(&b);
    /* 2^62 F32 elements: the element count fits int64, the byte count not uint64 */
    uint64_t big[2] = {1ULL << 31, 1ULL << 31};
    one_tensor(&b, 2, big, LMA_GGML_F32, 0, 32);
    expect_fail(&b, LMA_ERR_FORMAT, "crafted: tensor 'w': 4611686018427387904 elements of F32 overflow a 64-bit byte count");
    bb_free(&b);
    /* 2^60 F32 elements: 2^62 bytes, past the end */
    uint64_t big1[2] = {1ULL << 30, 1ULL << 30};
    one_tensor(&b, 2, big1, LMA_GGML_F32, 0, 32); expect_fail(&b, LMA_ERR_FORMAT, "runs past the end"); bb_free(&b);
    uint64_t ne5[5] = {1, 1, 1, 1, 8};
    one_tensor(&b, 0, ne5, LMA_GGML_F32, 0, 32); expect_fail(&b, LMA_ERR_FORMAT, "has 0 dimensions"); bb_free(&b);
    one_tensor(&b, 5, ne5, LMA_GGML_F32, 0, 32); expect_fail(&b, LMA_ERR_FORMAT, "has 5 dimensions"); bb_free(&b);
    one_tensor(&b, 1, ne8, LMA_GGML_F32, 16, 64); expect_fail(&b, LMA_ERR_FORMAT, "offset 16 is not a multiple"); bb_free(&b);
    one_tensor(&b, 1, ne8, LMA_GGML_F32, 1, 64); expect_fail(&b, LMA_ERR_FORMAT, "not a multiple of the alignment"); bb_free(&b);
    /* tensor past the end */
    one_tensor(&b, 1, ne8, LMA_GGML_F32, 0, 31); expect_fail(&b, LMA_ERR_FORMAT, "tensor 'w' (32 bytes at data offset 0) runs past the end"); bb_free(&b);
    one_tensor(&b, 1, ne8, LMA_GGML_F32, 32, 32); expect_fail(&b, LMA_ERR_FORMAT, "runs past the end"); bb_free(&b);
    one_tensor(&b, 1, ne8, LMA_GGML_F32, 1ULL << 63, 32); expect_fail(&b, LMA_ERR_FORMAT, "runs past the end"); bb_free(&b);
    one_tensor(&b, 1, ne8, LMA_GGML_F32, EMAX - 31, 32); expect_fail(&b, LMA_ERR_FORMAT, "runs past the end"); bb_free(&b);
    /* tensor infos cut before the data section: the data would start past the end */
    bb_head(&b, 3, 1, 0); bb_tensor(&b, "w", 1, ne8, LMA_GGML_F32, 0);
    expect_fail(&b, LMA_ERR_FORMAT, "past the end"); bb_free(&b);
    /* block sizes */
    uint64_t ne31[2] = {31, 2}, ne64[1] = {64};
    one_tensor(&b, 2, ne31, LMA_GGML_Q8_0, 0, 96); expect_fail(&b, LMA_ERR_FORMAT, "row length 31 is not a multiple of the Q8_0 block (32)"); bb_free(&b);
    uint64_t ne128[1] = {128};
    one_tensor(&b, 1, ne128, LMA_GGML_Q4_K, 0, 160); expect_fail(&b, LMA_ERR_FORMAT, "Q4_K block (256)"); bb_free(&b);
    one_tensor(&b, 1, ne64, LMA_GGML_Q8_0, 0, 68); expect_ok(&b); bb_free(&b);
    one_tensor(&b, 1, ne64, LMA_GGML_Q8_0, 0, 67); expect_fail(&b, LMA_ERR_FORMAT, "runs past the end"); bb_free(&b);
    /* names */
    bb_head(&b, 3, 1, 0); bb_str(&b, ""); bb_u32(&b, 1); bb_u64(&b, 8); bb_u32(&b, 0); bb_u64(&b, 0);
    bb_pad(&b, 32); for (int i = 0; i < 32; i++) bb_u8(&b, 0);
    expect_fail(&b, LMA_ERR_FORMAT, "name length 0"); bb_free(&b);
    char longname[258];
    memset(longname, 'n', 257); longname[257] = 0;
    bb_head(&b, 3, 1, 0); bb_tensor(&b, longname, 1, ne8, LMA_GGML_F32, 0);
    bb_pad(&b, 32); for (int i = 0; i < 32; i++) bb_u8(&b, 0);
    expect_fail(&b, LMA_ERR_FORMAT, "name length 257"); bb_free(&b);

    /* general.alignment */
    uint32_t badal[] = {0, 3, 48, 1u << 21};
    for (int h = 0; h < 4; h++) {
        bb_head(&b, 3, 0, 1); bb_key(&b, "general.alignment", LMA_GGUF_U32); bb_u32(&b, badal[h]);
        expect_fail(&b, LMA_ERR_FORMAT, "is not a power of two"); bb_free(&b);
    }
    bb_head(&b, 3, 0, 1); bb_key(&b, "general.alignment", LMA_GGUF_U64); bb_u64(&b, 32);
    expect_fail(&b, LMA_ERR_FORMAT, "general.alignment has type u64 (u32 expected)"); bb_free(&b);
    bb_head(&b, 3, 0, 1); bb_key(&b, "general.alignment", LMA_GGUF_STRING); bb_str(&b, "32");
    expect_fail(&b, LMA_ERR_FORMAT, "general.alignment has type string"); bb_free(&b);
    bb_head(&b, 3, 0, 1); bb_key(&b, "general.alignment", LMA_GGUF_ARRAY); bb_u32(&b, LMA_GGUF_U32); bb_u64(&b, 1);
    bb_u32(&b, 32);
    expect_fail(&b, LMA_ERR_FORMAT, "general.alignment has type array"); bb_free(&b);
    /* alignment 64 is honoured: data section and offsets on 64 */
    for (int off = 0; off <= 64; off += 32) {
        bb_head(&b, 3, 1, 1); bb_key(&b, "general.alignment", LMA_GGUF_U32); bb_u32(&b, 64);
        bb_tensor(&b, "w", 1, ne8, LMA_GGML_F32, (uint64_t)off);
        size_t hdr = b.len;
        bb_pad(&b, 64);
        for (int i = 0; i < 96; i++) bb_u8(&b, (uint8_t)i);
        if (off == 32) { expect_fail(&b, LMA_ERR_FORMAT, "offset 32 is not a multiple of the alignment 64"); bb_free(&b); continue; }
        lma_gguf *g = NULL; unsigned char *copy;
        CHECK(open_copy(b.p, b.len, &g, &copy) == LMA_OK, "alignment 64: %s", lma_last_error());
        const lma_gguf_tensor *t = g ? lma_gguf_tensor_at(g, 0) : NULL;
        size_t dstart = (hdr + 63) / 64 * 64;
        CHECK(t && (const unsigned char *)t->data == copy + dstart + (size_t)off, "alignment 64: data at %zu", dstart);
        lma_gguf_close(g); free(copy); bb_free(&b);
    }

    /* duplicates */
    bb_head(&b, 3, 0, 3); bb_key(&b, "a", LMA_GGUF_U8); bb_u8(&b, 1); bb_key(&b, "b", LMA_GGUF_U8); bb_u8(&b, 1);
    bb_key(&b, "a", LMA_GGUF_STRING); bb_str(&b, "x");
    expect_fail(&b, LMA_ERR_FORMAT, "duplicate metadata key 'a'"); bb_free(&b);
    bb_head(&b, 3, 2, 0); bb_tensor(&b, "w", 1, ne8, LMA_GGML_F32, 0); bb_tensor(&b, "w", 1, ne8, LMA_GGML_F32, 32);
    bb_pad(&b, 32); for (int i = 0; i < 64; i++) bb_u8(&b, 0);
    expect_fail(&b, LMA_ERR_FORMAT, "duplicate tensor 'w'"); bb_free(&b);
    /* two tensors sharing bytes (ne8: 8 F32 = 32 bytes; the second starts inside the first) */
    {
        uint64_t ne16[1] = {16};
        bb_head(&b, 3, 2, 0); bb_tensor(&b, "a", 1, ne16, LMA_GGML_F32, 0); bb_tensor(&b, "b", 1, ne8, LMA_GGML_F32, 32);
        bb_pad(&b, 32); for (int i = 0; i < 96; i++) bb_u8(&b, 0);
        expect_fail(&b, LMA_ERR_FORMAT, "overlap"); bb_free(&b);
    }
    /* keys that differ only in length are not duplicates */
    bb_head(&b, 3, 0, 2); bb_key(&b, "ab", LMA_GGUF_U8); bb_u8(&b, 1); bb_key(&b, "a", LMA_GGUF_U8); bb_u8(&b, 1);
    expect_ok(&b); bb_free(&b);

    /* many empty string arrays and zero-length tensors are fine */
    bb_head(&b, 3, 2, 1); bb_key(&b, "e", LMA_GGUF_ARRAY); bb_u32(&b, LMA_GGUF_STRING); bb_u64(&b, 0);
    uint64_t ne0[2] = {0, 3};
    bb_tensor(&b, "z0", 2, ne0, LMA_GGML_Q4_0, 0); bb_tensor(&b, "z1", 2, ne0, LMA_GGML_F32, 0);
    bb_pad(&b, 32);
    expect_ok(&b); bb_free(&b);
}

/* every prefix of a small valid file is refused cleanly; the whole file is read */
static void test_truncation(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/small.gguf", dir);
    lma_gguf_writer *w = NULL;
    CHECK_OK(lma_gguf_writer_new(&w));
    CHECK_OK(lma_gguf_set_str(w, "general.architecture", "llama"));
    CHECK_OK(lma_gguf_set_u32(w, "n", 3));
    const char *toks[] = {"<s>", "a", ""};
    CHECK_OK(lma_gguf_set_str_array(w, "tokenizer.ggml.tokens", toks, NULL, 3));
    float sc[3] = {0, -1, -2};
    CHECK_OK(lma_gguf_set_array(w, "tokenizer.ggml.scores", LMA_GGUF_F32, sc, 3));
    CHECK_OK(lma_gguf_add_tensor(w, tens[0].name, tens[0].nd, tens[0].ne, tens[0].type));
    CHECK_OK(lma_gguf_add_tensor(w, tens[1].name, tens[1].nd, tens[1].ne, tens[1].type));
    CHECK_OK(lma_gguf_write(w, path, fill, NULL));
    lma_gguf_writer_free(w);
    char *bytes = NULL; size_t len = 0;
    CHECK_OK(lma_read_file(path, &bytes, &len));
    /* the padding after the last tensor's bytes is optional: from there on it reads */
    size_t end = len;
    lma_gguf *gf = NULL;
    CHECK_OK(lma_gguf_open_buffer(bytes, len, "full", &gf));
    if (gf) {
        const lma_gguf_tensor *t = lma_gguf_tensor_at(gf, 1);
        end = (size_t)((const char *)t->data + t->nbytes - bytes);
        lma_gguf_close(gf);
    }
    CHECK(end < len && end + 32 > len, "last tensor ends at %zu of %zu", end, len);
    int bad = 0, fmt = 0;
    for (size_t n = 0; n <= len; n++) {
        lma_gguf *g = NULL; unsigned char *copy;
        lma_status s = open_copy(bytes, n, &g, &copy);
        const char *m = lma_last_error();
        if (n >= end) CHECK(s == LMA_OK && g && lma_gguf_n_tensors(g) == 2, "prefix %zu (last tensor ends at %zu): %s", n, end, m);
        else {
            int ok = s == LMA_ERR_FORMAT && !g && strstr(m, "crafted:") && !strchr(m, '\n') &&
                     (strstr(m, "truncated") || strstr(m, "past the end") || strstr(m, "more than the file") ||
                      strstr(m, "more bytes than"));
            if (!ok && bad++ < 5) fprintf(stderr, "prefix %zu: %s: %s\n", n, lma_status_name(s), m);
            fmt += ok;
        }
        lma_gguf_close(g);
        free(copy);
        lma_clear_error();
    }
    CHECK(bad == 0 && fmt == (int)end, "%d of %zu prefixes refused with a truncation message", fmt, len);
    free(bytes);
}

/* ---- files: is_file, directories, FIFOs, missing ---- */
/* runs lma_gguf_open (what == 0) or lma_gguf_is_file (1) on path in a child with a
 * 5 s alarm: 0 refused with a message / not a GGUF, 1 accepted, 2 hung */
static int in_child(const char *path, int what) {
    pid_t pid = fork();
    if (pid == 0) {
        alarm(5);
        if (what == 1) _exit(lma_gguf_is_file(path) ? 1 : 0);
        lma_gguf *g = NULL;
        lma_status s = lma_gguf_open(path, &g);
        if (s == LMA_OK) _exit(1);
        _exit(strstr(lma_last_error(), path) ? 0 : 3);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st)) return WTERMSIG(st) == SIGALRM ? 2 : 4;
    return WEXITSTATUS(st);
}

static void test_files(void) {
    char gg[128], txt[128], shortf[128], empty[128], sub[128], fifo[128], missing[128];
    snprintf(gg, sizeof gg, "%s/rt.gguf", dir);
    snprintf(txt, sizeof txt, "%s/x.txt", dir);
    snprintf(shortf, sizeof shortf, "%s/short", dir);
    snprintf(empty, sizeof empty, "%s/empty", dir);
    snprintf(sub, sizeof sub, "%s/sub.gguf", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo.gguf", dir);
    snprintf(missing, sizeof missing, "%s/missing.gguf", dir);
    CHECK_OK(lma_write_file_atomic(txt, "{\"not\": \"gguf\"}", 15));
    CHECK_OK(lma_write_file_atomic(shortf, "GGU", 3));
    CHECK_OK(lma_write_file_atomic(empty, "", 0));
    CHECK(mkdir(sub, 0700) == 0, "mkdir");
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    CHECK(lma_gguf_is_file(gg) == 1, "is_file on a GGUF");
    CHECK(lma_gguf_is_file(txt) == 0, "is_file on JSON");
    CHECK(lma_gguf_is_file(shortf) == 0, "is_file on a 3-byte file");
    CHECK(lma_gguf_is_file(empty) == 0, "is_file on an empty file");
    CHECK(lma_gguf_is_file(sub) == 0, "is_file on a directory");
    CHECK(lma_gguf_is_file(missing) == 0, "is_file on a missing path");
    CHECK(lma_gguf_is_file(NULL) == 0, "is_file(NULL)");
    int r = in_child(fifo, 1);
    CHECK(r == 0, "is_file on a FIFO: %s", r == 2 ? "hangs" : "wrong answer");
    lma_gguf *g = (lma_gguf *)1;
    lma_clear_error();
    lma_status s = lma_gguf_open(sub, &g);
    CHECK(s != LMA_OK && !g && strstr(lma_last_error(), sub) && strstr(lma_last_error(), "not a regular file"),
          "open on a directory: %s", lma_last_error());
    lma_clear_error();
    s = lma_gguf_open(missing, &g);
    CHECK(s == LMA_ERR_IO && !g && strstr(lma_last_error(), missing), "open on a missing file: %s", lma_last_error());
    lma_clear_error();
    s = lma_gguf_open(empty, &g);
    CHECK(s == LMA_ERR_FORMAT && !g && strstr(lma_last_error(), empty) && strstr(lma_last_error(), "truncated"),
          "open on an empty file: %s", lma_last_error());
    lma_clear_error();
    s = lma_gguf_open(txt, &g);
    CHECK(s == LMA_ERR_FORMAT && !g && strstr(lma_last_error(), "not a GGUF file"), "open on JSON: %s",
          lma_last_error());
    lma_clear_error();
    r = in_child(fifo, 0);
    CHECK(r == 0, "open on a FIFO: %s", r == 2 ? "hangs (blocking open)" : r == 1 ? "accepted" : "no message");
    unlink(txt); unlink(shortf); unlink(empty); rmdir(sub); unlink(fifo);
}

static void cleanup(void) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/lma_gguf_test_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_roundtrip();
    test_scalars_copy_kv();
    test_rejections();
    test_truncation();
    test_files();
    cleanup();
    TEST_END();
}
