/* Elementwise ops: add, SwiGLU, scale, dropout.
 * A part of the cuda plugin, included once by cuda_backend.cu (one translation unit, as
 * llm.c's llmc/ headers; no include guard), after ops_common.cuh. */
/* ---- elementwise (E elements per thread: chunk, vec_ok above) -------------------------- */

/* out = op(a, b) elementwise, in fp32: add and swiglu_fwd (silu(gate) * up); the op
 * (an empty struct) is deduced from the last argument */
struct op_add { __device__ float operator()(float x, float y) const { return x + y; } };
struct op_swiglu { __device__ float operator()(float x, float y) const { return x / (1.0f + __expf(-x)) * y; } };
template <typename TI, int E, typename OP>
__global__ void k_binary(TI *out, const TI *a, const TI *b, size_t n, OP op) {
    EW_INDEX(E);
    float x[E], y[E];
    chunk<TI, E>::load(a + i, x);
    chunk<TI, E>::load(b + i, y);
#pragma unroll
    for (int k = 0; k < E; k++) x[k] = op(x[k], y[k]);
    chunk<TI, E>::store(out + i, x);
}
template <typename TI, int E>
__global__ void k_swiglu_bwd(TI *dg, TI *du, const TI *d, const TI *g, const TI *u, size_t n, int set_g, int set_u) {
    EW_INDEX(E);
    float x[E], di[E], ui[E], a[E] = {};
    chunk<TI, E>::load(g + i, x);
    chunk<TI, E>::load(d + i, di);
    chunk<TI, E>::load(u + i, ui);
    if (dg) {
        if (!set_g) chunk<TI, E>::load(dg + i, a);
#pragma unroll
        for (int k = 0; k < E; k++) {
            float sg = 1.0f / (1.0f + __expf(-x[k]));
            a[k] += di[k] * ui[k] * sg * (1.0f + x[k] * (1.0f - sg));
        }
        chunk<TI, E>::store(dg + i, a);
    }
    if (du) {
        if (set_u) {
#pragma unroll
            for (int k = 0; k < E; k++) a[k] = 0.0f;
        } else {
            chunk<TI, E>::load(du + i, a);
        }
#pragma unroll
        for (int k = 0; k < E; k++) a[k] += di[k] * (x[k] / (1.0f + __expf(-x[k])));
        chunk<TI, E>::store(du + i, a);
    }
}
template <typename TI, int E>
__global__ void k_scale(TI *x, float s, size_t n) {
    EW_INDEX(E);
    float v[E];
    chunk<TI, E>::load(x + i, v);
#pragma unroll
    for (int k = 0; k < E; k++) v[k] *= s;
    chunk<TI, E>::store(x + i, v);
}
template <typename TI> static void cu_scale(void *x, float a, size_t n) {
    PROFILE("scale");
    LAUNCH_EW(k_scale, vec_ok(n, x), n, (TI *)x, a, n);
    check_launch("scale");
}
template <typename TI, int E>
__global__ void k_dropout(TI *out, const TI *x, uint32_t thr, float keep, uint64_t seed, size_t n) {
    EW_INDEX(E);
    float v[E];
    chunk<TI, E>::load(x + i, v);
#pragma unroll
    for (int k = 0; k < E; k++) v[k] = lma_dropout_bits(seed, i + k) >= thr ? v[k] * keep : 0.0f;
    chunk<TI, E>::store(out + i, v);
}
template <typename TI> static void cu_dropout(void *out, const void *x, float p, uint64_t seed, size_t n) {
    PROFILE("dropout");
    LAUNCH_EW(k_dropout, vec_ok(n, out, x), n, (TI *)out, (const TI *)x, lma_dropout_threshold(p), 1.0f / (1.0f - p),
              seed, n);
    check_launch("dropout");
}
template <typename TI> static void cu_swiglu_fwd(void *out, const void *g, const void *u, size_t n) {
    PROFILE("swiglu_fwd");
    LAUNCH_EW(k_binary, vec_ok(n, out, g, u), n, (TI *)out, (const TI *)g, (const TI *)u, n, op_swiglu());
    check_launch("swiglu_fwd");
}
template <typename TI>
static void cu_swiglu_bwd(void *dg, void *du, const void *d, const void *g, const void *u, size_t n) {
    int set_g = lz_take(dg, n * sizeof(TI)), set_u = lz_take(du, n * sizeof(TI)); /* zeroed: set (ops_zero.cuh) */
    lz_enter(d, g, u);
    PROFILE("swiglu_bwd");
    LAUNCH_EW(k_swiglu_bwd, vec_ok(n, dg, du, d, g, u), n, (TI *)dg, (TI *)du, (const TI *)d, (const TI *)g,
              (const TI *)u, n, set_g, set_u);
    check_launch("swiglu_bwd");
}
template <typename TI> static void cu_add(void *out, const void *a, const void *b, size_t n) {
    PROFILE("add");
    LAUNCH_EW(k_binary, vec_ok(n, out, a, b), n, (TI *)out, (const TI *)a, (const TI *)b, n, op_add());
    check_launch("add");
}

