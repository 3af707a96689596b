/* The table's zero, deferred: the first writer of a zeroed gradient writes instead of adding.
 *
 * Backward ops accumulate (backend.h), so the model zeroes each gradient before its first
 * writer: the memset and that writer's read of the zeros are traffic for nothing (on the 1.1B
 * step ~0.3 ms a layer of activation gradients, and 4.4 GB cleared then read back by the
 * weight-gradient GEMMs). So cu_zero only records what it was asked to clear:
 *
 * - a piece of an allocation goes to a short list (lz_*), which the next op clears: an op that
 *   writes exactly that piece as an accumulating output takes it (lz_take) and writes instead
 *   of adding (matmul_bwd's dinp with beta 0, swiglu_bwd, rope_bwd, cuDNN's attention_bwd);
 *   every other op, and those for what they do not take, clear the list first (lz_enter).
 *   The model zeroes just before the first writer, so the list never outlives one op.
 * - a whole allocation (the parameter gradients, zeroed once a step after the optimizer) stays
 *   pending across ops (lzb_*), since an op reaches an allocation only through a pointer into
 *   it: its pieces are taken the first time they are written whole (matmul_bwd's dw with beta
 *   0), cleared on demand where an op adds into them by atomics (lzb_need: rmsnorm's weight,
 *   the bias), and an op with any other pointer into it (adamw, sum_sq, a copy, the
 *   embedding's scatter) clears what is left first (lz_enter).
 *
 * Every table entry goes through lz_enter with its arguments before it runs: cuda_backend.cu
 * wraps the entries that take nothing (lz_flushed), the takers call it themselves after their
 * takes; code outside the table that touches device memory (NCCL's collectives) settles the
 * allocation first (lma_cuda_zero_settle), and a graph about to be recorded clears everything
 * (a clearing recorded into it would rerun at each replay). The listed pieces are per thread
 * (they never outlive the zeroing thread's next op); the pending whole allocations belong to the
 * memory, so every thread sees them (one lock): the model's random initialisation zeroes its
 * weights in one thread and uploads them from OpenMP workers, and a per-thread list cleared the
 * zeroing thread's pending region over what the workers had written (a partly zeroed model,
 * run to run different; the thirteenth session found it by the losses). Threads that share an
 * allocation share the legacy stream, so a clearing enqueued by one precedes what another
 * enqueues after it. LMA_CUDA_LAZY_ZERO=0 clears at once (A/B runs).
 * A part of the cuda plugin, included once by cuda_backend.cu, after ops_memory.cuh. */
#include <mutex>
#include <vector>

static int lz_on(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("LMA_CUDA_LAZY_ZERO");
        on = !(e && !strcmp(e, "0"));
    }
    return on;
}
static void lz_memset(void *p, size_t n) {
    if (n) check(cudaMemsetAsync(p, 0, n, lma_cu_stream), "memset");
}

/* ---- whole allocations: pending across ops ---- */
enum { LZB_MAX = 4 };
struct lzb_region {
    char *p; /* NULL: unused */
    size_t n;
    std::vector<std::pair<size_t, size_t>> done; /* no longer pending: sorted, disjoint [begin, end) offsets */
};
static lzb_region g_lzb[LZB_MAX];
static std::recursive_mutex g_lzb_mu; /* g_lzb: the lzb_* functions below run under it */

static lzb_region *lzb_of(const void *p) {
    for (int i = 0; i < LZB_MAX; i++)
        if (g_lzb[i].p && (const char *)p >= g_lzb[i].p && (const char *)p < g_lzb[i].p + g_lzb[i].n) return &g_lzb[i];
    return NULL;
}
/* marks [b, e) of r done (clear: what was pending of it cleared first); 1 when none of it was done */
static int lzb_mark(lzb_region *r, size_t b, size_t e, int clear) {
    auto &d = r->done;
    size_t i = 0;
    while (i < d.size() && d[i].second < b) i++;
    size_t first = i, cur = b, lo = b, hi = e;
    int fresh = 1;
    for (; i < d.size() && d[i].first <= e; i++) { /* the done pieces touching [b, e] */
        if (d[i].first < e && d[i].second > b) fresh = 0;
        if (clear && d[i].first > cur) lz_memset(r->p + cur, (d[i].first < e ? d[i].first : e) - cur);
        if (d[i].second > cur) cur = d[i].second;
        if (d[i].first < lo) lo = d[i].first;
        if (d[i].second > hi) hi = d[i].second;
    }
    if (clear && cur < e) lz_memset(r->p + cur, e - cur);
    d.erase(d.begin() + first, d.begin() + i);
    d.insert(d.begin() + first, {lo, hi}); /* the touching pieces and [b, e) as one */
    return fresh;
}
static void lzb_flush(lzb_region *r) { /* all that is pending cleared; the region forgotten */
    size_t cur = 0;
    for (auto &x : r->done) { lz_memset(r->p + cur, x.first - cur); cur = x.second; }
    lz_memset(r->p + cur, r->n - cur);
    r->p = NULL;
    r->done.clear();
}
/* [p, p + n) is about to be written whole by an op that can overwrite: 1 when all of it is still
 * pending (now done: the caller writes), 0 otherwise (what was pending of it cleared: it adds) */
static int lzb_take(const void *p, size_t n) {
    lzb_region *r = lzb_of(p);
    if (!r) return 0;
    size_t b = (size_t)((const char *)p - r->p), e = b + n;
    if (e > r->n) return lzb_flush(r), 0;
    for (auto &x : r->done)
        if (x.second > b && x.first < e) return lzb_mark(r, b, e, 1), 0;
    return lzb_mark(r, b, e, 0);
}
/* [p, p + n) is about to be added into: what is pending of it cleared now */
static void lzb_need(const void *p, size_t n) {
    std::lock_guard<std::recursive_mutex> lk(g_lzb_mu);
    lzb_region *r = lzb_of(p);
    if (!r) return;
    size_t b = (size_t)((const char *)p - r->p);
    if (b + n > r->n) lzb_flush(r);
    else lzb_mark(r, b, b + n, 1);
}

/* ---- pieces: pending until the next op ---- */
enum { LZ_MAX = 8 };
static thread_local struct { void *p; size_t n; } g_lz[LZ_MAX];
static thread_local int g_lz_n;
static void lz_flush(void) {
    for (int i = 0; i < g_lz_n; i++) lz_memset(g_lz[i].p, g_lz[i].n);
    g_lz_n = 0;
}
/* 1 when [p, p + n) was zeroed and not written since (a listed piece, or a pending piece of a
 * whole allocation): the caller writes it whole instead of adding into it */
static int lz_take(const void *p, size_t n) {
    if (!p) return 0;
    std::lock_guard<std::recursive_mutex> lk(g_lzb_mu);
    for (int i = 0; i < g_lz_n; i++)
        if (g_lz[i].p == p && g_lz[i].n == n) {
            g_lz[i] = g_lz[--g_lz_n];
            lzb_region *r = lzb_of(p); /* a piece of a pending whole allocation too: written now */
            if (r) {
                size_t b = (size_t)((const char *)p - r->p);
                if (b + n <= r->n) lzb_mark(r, b, b + n, 0);
                else lzb_flush(r);
            }
            return 1;
        }
    return lzb_take(p, n);
}
/* before an op runs: the listed pieces cleared, and any pending whole allocation that one of its
 * arguments (device pointers among them; other arguments are ignored) points into */
template <typename T> static void lz_touch(const T &) {}
template <typename T> static void lz_touch(T *p) {
    lzb_region *r = p ? lzb_of((const void *)p) : NULL;
    if (r) lzb_flush(r);
}
template <typename... A> static void lz_enter(const A &...a) {
    lz_flush();
    std::lock_guard<std::recursive_mutex> lk(g_lzb_mu);
    (lz_touch(a), ...);
}
/* everything pending cleared (before a graph is recorded: a clearing recorded into it would run
 * at every replay instead of now) */
static void lz_flush_all(void) {
    lz_flush();
    std::lock_guard<std::recursive_mutex> lk(g_lzb_mu);
    for (int i = 0; i < LZB_MAX; i++)
        if (g_lzb[i].p) lzb_flush(&g_lzb[i]);
}
/* cuda_internal.h: for the plugin's code outside the table (NCCL's collectives) */
void lma_cuda_zero_settle(const void *p) {
    lz_enter(p);
    check(cudaStreamSynchronize(lma_cu_stream), "synchronize");
}
/* an entry of the table that takes nothing (fill() in cuda_backend.cu) */
template <auto F> struct lz_flushed;
template <typename R, typename... A, R (*F)(A...)> struct lz_flushed<F> {
    static R call(A... a) {
        lz_enter(a...);
        return F(a...);
    }
};

static void cu_zero(void *p, size_t n) {
    lma_cuda_epoch++;
    if (!n) return;
    if (!lz_on()) {
        lz_memset(p, n);
        return;
    }
    if (lma_cuda_alloc_size(p) == n) { /* a whole allocation */
        std::lock_guard<std::recursive_mutex> lk(g_lzb_mu);
        lzb_region *r = lzb_of(p);
        if (!r) {
            r = &g_lzb[0];
            for (int i = 0; i < LZB_MAX; i++)
                if (!g_lzb[i].p) { r = &g_lzb[i]; break; }
            if (r->p) lzb_flush(r);
        }
        r->p = (char *)p;
        r->n = n;
        r->done.clear(); /* zeroed again: all of it pending */
        return;
    }
    if (g_lz_n == LZ_MAX) lz_flush();
    g_lz[g_lz_n].p = p;
    g_lz[g_lz_n++].n = n;
}
