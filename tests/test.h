/* Minimal test harness: CHECK(cond, fmt, ...) records a failure and goes on;
 * each test program ends with TEST_END(), which prints "N passed, N failed"
 * and returns the exit status. Paths: LMA_SRC_DIR (repo; public data in
 * LMA_SRC_DIR/tests/data, see tests/data/MANIFEST.md). */
#ifndef LMA_TEST_H
#define LMA_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed_, test_failed_;

#define CHECK(cond, ...) do { \
    if (cond) test_passed_++; \
    else { test_failed_++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
           fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

#define CHECK_OK(expr) do { lma_status s_ = (expr); \
    CHECK(s_ == LMA_OK, "%s -> %s: %s", #expr, lma_status_name(s_), lma_last_error()); \
    lma_clear_error(); } while (0)

#define TEST_END() do { printf("%d passed, %d failed\n", test_passed_, test_failed_); \
    return test_failed_ ? 1 : 0; } while (0)

/* fopen that stops the test (a failure) when the file cannot be opened: a test that
 * writes its input must not go on without it. */
static inline FILE *test_fopen(const char *path, const char *mode) {
    FILE *f = fopen(path, mode);
    if (!f) {
        fprintf(stderr, "FAIL: cannot open %s (mode %s)\n", path, mode);
        printf("%d passed, %d failed\n", test_passed_, test_failed_ + 1);
        exit(1);
    }
    return f;
}

/* relative L2 error of a vs reference b */
static inline double test_rel_l2(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { double d = a[i] - b[i]; num += d * d; den += b[i] * b[i]; }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
static inline double test_rel_l2f(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { double d = (double)a[i] - b[i]; num += d * d; den += (double)b[i] * b[i]; }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
#endif
