/* RoPE (HF half split), forward and backward.
 * A part of the cuda plugin, included once by cuda_backend.cu (one translation unit, as
 * llm.c's llmc/ headers; no include guard), after ops_common.cuh. */
/* ---- rope (HF half split) ------------------------------------------------------------ */

/* a thread rotates E pairs (x[j..j+E), x[j+half..j+half+E)) of hg heads of one token (1, or
 * ROPE_HG by default: the angles computed once for them; LMA_CUDA_ROPE_HEADS=0 gives 1, for A/B
 * runs; the same arithmetic either way); token n's heads start at element n * ld_out of out
 * and n * ld_in of inp (NH * HD: packed; the fused q|k|v rows: qkv_rope_*); backward 0: the
 * forward, 1: the backward added into out, 2: the backward written (out zeroed just before) */
enum { ROPE_HG = 4 };
template <typename TI, int E>
__global__ void k_rope(TI *out, const TI *inp, const int32_t *pos, const float *inv_freq, int N, int NH, int HD,
                       size_t ld_out, size_t ld_in, int backward, int hg) {
    int half = HD / 2, groups = (NH + hg - 1) / hg;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * groups * (half / E)) return;
    int j = (int)(i % (half / E)) * E;
    size_t row = i / (half / E), n = row / groups;
    int h0 = (int)(row % groups) * hg, h1 = min(NH, h0 + hg);
    float c[E], s[E], p = (float)pos[n];
#pragma unroll
    for (int k = 0; k < E; k++) sincosf(p * inv_freq[j + k], &s[k], &c[k]);
#pragma unroll
    for (int h = h0; h < h0 + ROPE_HG; h++) {
        if (h >= h1) break;
        const TI *x = inp + n * ld_in + (size_t)h * HD;
        TI *o = out + n * ld_out + (size_t)h * HD;
        float x1[E], x2[E], o1[E], o2[E];
        chunk<TI, E>::load(x + j, x1);
        chunk<TI, E>::load(x + j + half, x2);
        if (backward == 1) {
            chunk<TI, E>::load(o + j, o1);
            chunk<TI, E>::load(o + j + half, o2);
        } else {
#pragma unroll
            for (int k = 0; k < E; k++) o1[k] = o2[k] = 0.0f;
        }
#pragma unroll
        for (int k = 0; k < E; k++) {
            if (!backward) { o1[k] = x1[k] * c[k] - x2[k] * s[k]; o2[k] = x2[k] * c[k] + x1[k] * s[k]; }
            else { o1[k] += x1[k] * c[k] + x2[k] * s[k]; o2[k] += x2[k] * c[k] - x1[k] * s[k]; }
        }
        chunk<TI, E>::store(o + j, o1);
        chunk<TI, E>::store(o + j + half, o2);
    }
}
template <typename TI>
static void rope_launch(void *out, const void *inp, const int32_t *pos, const float *inv_freq, int N, int NH, int HD,
                        int backward, size_t ld_out = 0, size_t ld_in = 0) {
    static int heads = -1;
    if (heads < 0) heads = env_on("LMA_CUDA_ROPE_HEADS");
    int hg = heads ? ROPE_HG : 1;
    size_t pairs = (size_t)N * ((NH + hg - 1) / hg) * (HD / 2); /* a thread's hg heads count once */
    if (!ld_out) ld_out = (size_t)NH * HD;
    if (!ld_in) ld_in = (size_t)NH * HD;
    if ((HD / 2) % 8 == 0 && ld_out % 8 == 0 && ld_in % 8 == 0 && vec_ok(8, out, inp))
        k_rope<TI, 8><<<blocks(pairs / 8, 256), 256, 0, lma_cu_stream>>>((TI *)out, (const TI *)inp, pos, inv_freq, N, NH,
                                                                          HD, ld_out, ld_in, backward, hg);
    else
        k_rope<TI, 1><<<blocks(pairs, 256), 256, 0, lma_cu_stream>>>((TI *)out, (const TI *)inp, pos, inv_freq, N, NH,
                                                                          HD, ld_out, ld_in, backward, hg);
}
template <typename TI>
static void cu_rope_fwd(void *out, const void *inp, const int32_t *pos, const float *inv_freq, int N, int NH, int HD) {
    PROFILE("rope_fwd");
    rope_launch<TI>(out, inp, pos, inv_freq, N, NH, HD, 0);
    check_launch("rope_fwd");
}
template <typename TI>
static void cu_rope_bwd(void *dinp, const void *dout, const int32_t *pos, const float *inv_freq, int N, int NH, int HD) {
    int set = lz_take(dinp, (size_t)N * NH * HD * sizeof(TI)); /* zeroed just before: set (ops_zero.cuh) */
    lz_enter(dout, pos, inv_freq);
    PROFILE("rope_bwd");
    rope_launch<TI>(dinp, dout, pos, inv_freq, N, NH, HD, set ? 2 : 1);
    check_launch("rope_bwd");
}


/* ---- the fused q|k|v projection's rows (backend.h qkv_rope_*): RoPE between the rows' layout
 * [q | k | v] (N, QD + 2 KVD) and the attention's q, k, v; v as a 2-D copy. On by default
 * (measured both ways on an H100: 1.1B -1.7 ms a step); LMA_CUDA_FUSE_QKV=0 leaves the two
 * entries NULL and the model runs three projections. */
static int qkv_fuse_on(void) { return env_on("LMA_CUDA_FUSE_QKV"); } /* 0: three products (A/B runs) */
template <typename TI>
static void cu_qkv_rope_fwd(void *q, void *k, void *v, const void *qkv, const int32_t *pos, const float *inv_freq,
                            int N, int NH, int NKV, int HD) {
    PROFILE("qkv_rope_fwd");
    size_t QD = (size_t)NH * HD, KVD = (size_t)NKV * HD, W = QD + 2 * KVD, es = sizeof(TI);
    rope_launch<TI>(q, qkv, pos, inv_freq, N, NH, HD, 0, QD, W);
    rope_launch<TI>(k, (const char *)qkv + QD * es, pos, inv_freq, N, NKV, HD, 0, KVD, W);
    check(cudaMemcpy2DAsync(v, KVD * es, (const char *)qkv + (QD + KVD) * es, W * es, KVD * es, (size_t)N,
                            cudaMemcpyDeviceToDevice, lma_cu_stream), "qkv_rope_fwd v");
    check_launch("qkv_rope_fwd");
}
template <typename TI>
static void cu_qkv_rope_bwd(void *dqkv, const void *dq, const void *dk, const void *dv, const int32_t *pos,
                            const float *inv_freq, int N, int NH, int NKV, int HD) {
    PROFILE("qkv_rope_bwd");
    size_t QD = (size_t)NH * HD, KVD = (size_t)NKV * HD, W = QD + 2 * KVD, es = sizeof(TI);
    rope_launch<TI>(dqkv, dq, pos, inv_freq, N, NH, HD, 2, W, QD);
    rope_launch<TI>((char *)dqkv + QD * es, dk, pos, inv_freq, N, NKV, HD, 2, W, KVD);
    check(cudaMemcpy2DAsync((char *)dqkv + (QD + KVD) * es, W * es, dv, KVD * es, KVD * es, (size_t)N,
                            cudaMemcpyDeviceToDevice, lma_cu_stream), "qkv_rope_bwd dv");
    check_launch("qkv_rope_bwd");
}
