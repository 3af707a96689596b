/* Per-op profile of the CUDA plugin (LMA_CUDA_PROFILE=1): CUDA events around each op (and,
 * from cuda_backend.cu, each cuBLASLt call by plan) give its GPU time without serializing
 * the stream. The events are read when their pool fills and at exit, where the op table,
 * then any extra table (lma_cuda_prof_set_report), go to stderr. Warm-up steps count too
 * unless the caller drops them (lma_cuda_profile_reset, cuda_host.h; bench_train_step does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/cuda/cuda_internal.h"

enum { PROF_OPS = 64, PROF_EVENTS = 4096 };
static int g_prof = -1;
static struct { const char *name; lma_cuda_prof_acc acc; } g_tab[PROF_OPS];
static int g_n;
static struct { lma_cuda_prof_acc *acc; cudaEvent_t a, b; } g_ev[PROF_EVENTS];
static int g_ev_n, g_ev_open; /* pairs recorded; scopes still open (the pool drains only at 0) */
static void (*g_extra)(void), (*g_extra_reset)(void);

static void drain(void) {
    if (!g_ev_n) return;
    cudaEventSynchronize(g_ev[g_ev_n - 1].b);
    for (int i = 0; i < g_ev_n; i++) {
        float ms = 0;
        if (cudaEventElapsedTime(&ms, g_ev[i].a, g_ev[i].b) == cudaSuccess) g_ev[i].acc->ms += ms;
        g_ev[i].acc->calls++;
    }
    g_ev_n = 0;
}

static void report(void) {
    drain();
    double total = 0;
    for (int i = 0; i < g_n; i++)
        if (g_tab[i].name[0] != ' ') total += g_tab[i].acc.ms; /* " name": a part of another row */
    fprintf(stderr, "[lmadapt] cuda op profile (GPU time per op, CUDA events):\n%-22s %10s %8s %6s\n", "op", "ms",
            "calls", "%");
    for (int i = 0; i < g_n; i++)
        fprintf(stderr, "%-22s %10.1f %8ld %5.1f%%\n", g_tab[i].name, g_tab[i].acc.ms, g_tab[i].acc.calls,
                total > 0 ? 100.0 * g_tab[i].acc.ms / total : 0.0);
    if (g_extra) g_extra();
}

int lma_cuda_prof_on(void) {
    if (g_prof < 0) {
        const char *e = getenv("LMA_CUDA_PROFILE");
        g_prof = e && strcmp(e, "0") ? 1 : 0;
        if (g_prof) atexit(report);
    }
    return g_prof;
}

void lma_cuda_prof_set_report(void (*extra)(void), void (*extra_reset)(void)) {
    g_extra = extra;
    g_extra_reset = extra_reset;
}

/* cuda_host.h lma_cuda_profile_reset: what was counted so far dropped (warm-up steps) */
extern "C" __attribute__((visibility("default"))) void lma_cuda_plugin_profile_reset(void) {
    if (!lma_cuda_prof_on()) return;
    drain();
    for (int i = 0; i < g_n; i++) g_tab[i].acc = lma_cuda_prof_acc{0, 0};
    if (g_extra_reset) g_extra_reset();
}

lma_cuda_prof_acc *lma_cuda_prof_register(const char *name) {
    if (!lma_cuda_prof_on() || g_n == PROF_OPS) return NULL;
    g_tab[g_n].name = name;
    return &g_tab[g_n++].acc;
}

int lma_cuda_prof_begin(lma_cuda_prof_acc *acc) {
    if (!acc) return -1;
    if (g_ev_n == PROF_EVENTS) {
        if (g_ev_open) return -1;
        drain();
    }
    int slot = g_ev_n++;
    if (!g_ev[slot].a) { cudaEventCreate(&g_ev[slot].a); cudaEventCreate(&g_ev[slot].b); }
    g_ev[slot].acc = acc;
    g_ev_open++;
    cudaEventRecord(g_ev[slot].a, 0);
    return slot;
}

void lma_cuda_prof_end(int slot) {
    if (slot < 0) return;
    cudaEventRecord(g_ev[slot].b, 0);
    g_ev_open--;
}
