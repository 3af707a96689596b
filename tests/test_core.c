/* core: status messages, checked allocation, the growable buffer, atomic writes, JSON getters, RNG determinism. */
#include <unistd.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/io.h"
#include "core/json.h"
#include "core/rng.h"
#include "test.h"

static void test_status(void) {
    lma_clear_error();
    lma_status s = lma_error(LMA_ERR_FORMAT, "first %d", 1);
    lma_error(LMA_ERR_IO, "second");
    CHECK(s == LMA_ERR_FORMAT, "lma_error returns its code");
    CHECK(!strcmp(lma_last_error(), "first 1"), "first message wins: '%s'", lma_last_error());
    lma_clear_error();
    CHECK(!strcmp(lma_last_error(), ""), "cleared");
}

static void test_checked_alloc(void) {
    void *p = lma_malloc(100, "test"), *q = lma_calloc(10, 10, "test");
    CHECK(p && q && ((size_t)p % 64) == 0 && ((size_t)q % 64) == 0, "64-byte aligned");
    free(p); free(q);
    CHECK(lma_calloc((size_t)1 << 40, (size_t)1 << 40, "test") == NULL, "calloc size overflow refused");
    lma_clear_error();
    size_t r;
    CHECK(!lma_mul_ok((size_t)1 << 40, (size_t)1 << 40, &r), "mul overflow detected");
    CHECK(lma_mul_ok(3, 5, &r) && r == 15, "mul");
}

static void test_buf(void) {
    lma_buf b = {0};
    CHECK_OK(lma_buf_append(&b, "", 0));
    CHECK(b.p && b.len == 0 && b.p[0] == 0, "an empty append gives an empty string");
    for (int i = 0; i < 1000; i++) CHECK_OK(lma_buf_push(&b, (char)('a' + i % 26)));
    CHECK_OK(lma_buf_str(&b, "|"));
    CHECK_OK(lma_buf_printf(&b, "%d-%s", 42, "x"));
    CHECK(b.len == 1005 && b.p[b.len] == 0 && !strcmp(b.p + 1000, "|42-x") && b.p[26] == 'a', "push, str, printf");
    CHECK(lma_buf_reserve(&b, (size_t)-1) == LMA_ERR_NOMEM, "size overflow refused");
    CHECK(lma_buf_str(&b, "y") == LMA_ERR_NOMEM && b.len == 1005, "the first failure sticks");
    lma_clear_error();
    lma_buf_free(&b);
    CHECK(!b.p && !b.len && !b.cap && !b.st, "freed and reset");
    int *a = NULL;
    size_t cap = 0;
    CHECK_OK(lma_grow(&a, &cap, 5, sizeof *a, 4, "ints"));
    CHECK(a && cap == 8, "doubles from first: cap %zu", cap);
    for (int i = 0; i < 8; i++) a[i] = i;
    CHECK_OK(lma_grow(&a, &cap, 8, sizeof *a, 4, "ints"));
    CHECK(cap == 8, "no growth when it fits");
    CHECK_OK(lma_grow(&a, &cap, 100, sizeof *a, 4, "ints"));
    CHECK(cap == 128 && a[7] == 7, "contents kept: cap %zu", cap);
    CHECK(lma_grow(&a, &cap, (size_t)1 << 62, 16, 4, "ints") == LMA_ERR_NOMEM && cap == 128, "overflow refused, array kept");
    lma_clear_error();
    free(a);
    int32_t *x = NULL; double *y = NULL;
    cap = 0;
    void *const arrs[] = {&x, &y};
    const size_t esz[] = {sizeof *x, sizeof *y};
    CHECK_OK(lma_grow_all(&cap, 3, 2, "pair", 2, arrs, esz));
    CHECK(x && y && cap == 4, "arrays sharing one capacity: cap %zu", cap);
    x[3] = 3; y[3] = 3.0;
    free(x); free(y);
}

static void test_atomic(void) {
    char dir[] = "/tmp/lma_core_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256]; snprintf(path, sizeof path, "%s/f.txt", dir);
    CHECK_OK(lma_write_file_atomic(path, "hello", 5));
    lma_atomic_file af;
    CHECK_OK(lma_atomic_open(&af, path));
    CHECK_OK(lma_atomic_write(&af, "partial", 7));
    lma_atomic_abort(&af); /* a killed writer: the old content stays */
    char *d; size_t n;
    CHECK_OK(lma_read_file(path, &d, &n));
    CHECK(n == 5 && !memcmp(d, "hello", 5), "old content survives an aborted write");
    free(d);
    CHECK(access(af.tmp, F_OK) != 0, "temporary removed");
    CHECK(lma_write_file_atomic("/nonexistent_dir/x", "a", 1) == LMA_ERR_IO, "unwritable path is an i/o error");
    lma_clear_error();
    unlink(path); rmdir(dir);
}

static void test_json(void) {
    cJSON *j;
    const char *t = "{\"a\": 3, \"b\": 2.5, \"c\": true, \"d\": \"x\", \"e\": null}";
    CHECK_OK(lma_json_parse(t, strlen(t), "t.json", &j));
    int64_t a = 0; double b = 0; int c = 0; const char *d = NULL;
    CHECK_OK(lma_json_int(j, "a", 1, "t.json", &a));
    CHECK_OK(lma_json_num(j, "b", 1, "t.json", &b));
    CHECK_OK(lma_json_bool(j, "c", 1, "t.json", &c));
    CHECK_OK(lma_json_str(j, "d", 1, "t.json", &d));
    CHECK(a == 3 && b == 2.5 && c == 1 && d && !strcmp(d, "x"), "values");
    CHECK(lma_json_int(j, "b", 1, "t.json", &a) == LMA_ERR_FORMAT, "2.5 is not an integer");
    CHECK(strstr(lma_last_error(), "\"b\"") != NULL, "message names the field: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_json_int(j, "e", 1, "t.json", &a) == LMA_ERR_FORMAT, "null required field");
    lma_clear_error();
    a = 7;
    CHECK_OK(lma_json_int(j, "zz", 0, "t.json", &a));
    CHECK(a == 7, "optional missing leaves value");
    cJSON_Delete(j);
    CHECK(lma_json_parse("{\"a\":\n1,", 8, "bad.json", &j) == LMA_ERR_FORMAT, "malformed");
    CHECK(strstr(lma_last_error(), "bad.json") != NULL, "names the file");
    lma_clear_error();
}

static void test_rng(void) {
    lma_rng a, b;
    lma_rng_seed(&a, 42); lma_rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 100; i++) same &= lma_rng_u64(&a) == lma_rng_u64(&b);
    CHECK(same, "same seed, same stream");
    lma_rng c1 = lma_rng_split(&a, 1), c2 = lma_rng_split(&a, 2);
    CHECK(lma_rng_u64(&c1) != lma_rng_u64(&c2), "split streams differ");
    double m = 0, v = 0; int n = 20000;
    for (int i = 0; i < n; i++) { double x = lma_rng_normal(&a); m += x; v += x * x; }
    m /= n; v = v / n - m * m;
    CHECK(fabs(m) < 0.05 && fabs(v - 1) < 0.05, "normal moments %g %g", m, v);
    int hist[10] = {0};
    for (int i = 0; i < n; i++) hist[lma_rng_below(&a, 10)]++;
    int ok = 1;
    for (int i = 0; i < 10; i++) ok &= abs(hist[i] - n / 10) < 300;
    CHECK(ok, "below(10) uniform");
}

int main(void) {
    test_status();
    test_checked_alloc();
    test_buf();
    test_atomic();
    test_json();
    test_rng();
    TEST_END();
}
