/* The helpers of the op-by-op GPU tests (test_backend_cuda.c, test_shapes_cuda.c): the table
 * under test against the CPU backend, host inputs rounded to what the act storage holds, device
 * copies through the backend's casts, and comparisons by relative L2 with a floor per pass
 * (TF32, bf16). Each test program has its own copy (static). */
#ifndef LMA_TESTS_CUDA_OPS_TEST_H
#define LMA_TESTS_CUDA_OPS_TEST_H
#include <math.h>
#include <string.h>
#include "core/rng.h"
#include "test.h"
#include "cuda_test.h"

static const lma_backend *cpu, *gpu; /* gpu: the table under test */
static double tol_floor;             /* raises every tolerance of a pass (TF32, bf16) */
static lma_rng rng;

static float bf16_round(float x) { /* round to nearest even, as __float2bfloat16 */
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}
static int act2(void) { return gpu->act_bytes == 2; }
/* host N(0, sd) values; act inputs are rounded to what the act storage holds */
static float *frand32(size_t n, float sd) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)(sd * lma_rng_normal(&rng));
    return p;
}
static float *frand(size_t n, float sd) {
    float *p = frand32(n, sd);
    if (act2())
        for (size_t i = 0; i < n; i++) p[i] = bf16_round(p[i]);
    return p;
}
/* device copies: raw bytes (fp32, ints) and act storage (through the backend's casts) */
static void *dev32(const void *h, size_t bytes) {
    void *d = gpu->alloc(bytes);
    gpu->upload(d, h, bytes);
    return d;
}
static void *dev_act(const float *h, size_t n) {
    float *tmp = dev32(h, n * 4);
    void *d = gpu->alloc(n * (size_t)gpu->act_bytes);
    gpu->cast_to_act(d, tmp, n);
    if (d != (void *)tmp) gpu->free(tmp);
    return d;
}
static void *alloc_act(size_t n) { return gpu->alloc(n * (size_t)gpu->act_bytes); }
static float *back32(const void *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof *h);
    gpu->download(h, d, n * sizeof *h);
    return h;
}
static float *back_act(const void *d, size_t n) {
    float *tmp = gpu->alloc(n * 4);
    gpu->act_to_f32(tmp, d, n);
    float *h = back32(tmp, n);
    gpu->free(tmp);
    return h;
}
static void poison_act(void *d, size_t n) {
    float *h = malloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = NAN;
    float *tmp = dev32(h, n * 4);
    gpu->cast_to_act(d, tmp, n);
    gpu->free(tmp);
    free(h);
}
static void cmp_host(const char *what, const float *cpu_out, float *g, size_t n, double tol) {
    int finite = 1;
    for (size_t i = 0; i < n; i++) finite &= isfinite(g[i]);
    double e = test_rel_l2f(g, cpu_out, n);
    if (tol_floor > tol) tol = tol_floor;
    CHECK(finite && e <= tol, "%s %s: rel L2 %.3g (tol %.1g)%s", gpu->name, what, e, tol,
          finite ? "" : ", non-finite output");
    free(g);
}
static void cmp_act(const char *what, const float *cpu_out, const void *d, size_t n, double tol) {
    cmp_host(what, cpu_out, back_act(d, n), n, tol);
}
static void cmp32(const char *what, const float *cpu_out, const void *d, size_t n, double tol) {
    cmp_host(what, cpu_out, back32(d, n), n, tol);
}

#endif
