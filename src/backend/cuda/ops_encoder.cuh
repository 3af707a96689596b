/* Encoder (BERT family) forward ops: LayerNorm with bias, exact GELU, bidirectional
 * attention over padded rows (backend.h). fp32 arithmetic on either storage type.
 * A part of the cuda plugin, included once by cuda_backend.cu (one translation unit, as
 * llm.c's llmc/ headers; no include guard), after ops_norm.cuh (row_threads, LAUNCH_ROWS). */

/* one block per row: mean, then the biased variance around it, then the output; out may
 * equal inp (each thread rewrites only the elements it read, after both reductions) */
template <typename TI, int E>
__global__ void k_layernorm_fwd(TI *out, const TI *inp, const TI *w, const TI *b, int C, float eps) {
    const TI *x = inp + (size_t)blockIdx.x * C;
    TI *o = out + (size_t)blockIdx.x * C;
    float s = 0, v[E], wv[E], bv[E];
    for (int c = threadIdx.x * E; c < C; c += blockDim.x * E) {
        chunk<TI, E>::load(x + c, v);
#pragma unroll
        for (int k = 0; k < E; k++) s += v[k];
    }
    float mean = block_sum(s) / C, ss = 0;
    for (int c = threadIdx.x * E; c < C; c += blockDim.x * E) {
        chunk<TI, E>::load(x + c, v);
#pragma unroll
        for (int k = 0; k < E; k++) ss += (v[k] - mean) * (v[k] - mean);
    }
    float r = rsqrtf(block_sum(ss) / C + eps);
    for (int c = threadIdx.x * E; c < C; c += blockDim.x * E) {
        chunk<TI, E>::load(x + c, v);
        chunk<TI, E>::load(w + c, wv);
        chunk<TI, E>::load(b + c, bv);
#pragma unroll
        for (int k = 0; k < E; k++) v[k] = (v[k] - mean) * r * wv[k] + bv[k];
        chunk<TI, E>::store(o + c, v);
    }
}
template <typename TI>
static void cu_layernorm_fwd(void *out, const void *inp, const void *w, const void *b, int N, int C, float eps) {
    PROFILE("layernorm_fwd");
    int v = vec_ok((size_t)C, out, inp, w, b);
    LAUNCH_ROWS(k_layernorm_fwd, v, N, row_threads(C, v), (TI *)out, (const TI *)inp, (const TI *)w, (const TI *)b, C,
                eps);
    check_launch("layernorm_fwd");
}

template <typename TI, int E>
__global__ void k_gelu(TI *out, const TI *inp, size_t n) {
    EW_INDEX(E);
    float x[E];
    chunk<TI, E>::load(inp + i, x);
#pragma unroll
    for (int k = 0; k < E; k++) x[k] = 0.5f * x[k] * (1.0f + erff(x[k] * 0.70710678118654752f));
    chunk<TI, E>::store(out + i, x);
}
template <typename TI> static void cu_gelu_fwd(void *out, const void *inp, size_t n) {
    PROFILE("gelu_fwd");
    LAUNCH_EW(k_gelu, vec_ok(n, out, inp), n, (TI *)out, (const TI *)inp, n);
    check_launch("gelu_fwd");
}

/* one block per (query row t, head h, sequence b): the row's scores in shared memory (T
 * floats), softmax, out = P V; rows t >= lens[b] are zeroed. Encoders are short (T <= 512
 * for BERT), so the row always fits. */
template <typename TI>
__global__ void k_attention_bidir(TI *out, const TI *q, const TI *k, const TI *v, const int32_t *lens, int T, int NH,
                                  int HD, float scale) {
    int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z, L = lens[b];
    size_t rs = (size_t)NH * HD;
    TI *ot = out + ((size_t)b * T + t) * rs + (size_t)h * HD;
    if (t >= L) {
        for (int i = threadIdx.x; i < HD; i += blockDim.x) st(ot + i, 0.0f);
        return;
    }
    extern __shared__ float p[]; /* (T) */
    const TI *qt = q + ((size_t)b * T + t) * rs + (size_t)h * HD;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int s = warp; s < L; s += nw) { /* one warp per key: a coalesced dot product */
        const TI *ks = k + ((size_t)b * T + s) * rs + (size_t)h * HD;
        float d = 0;
        for (int i = lane; i < HD; i += 32) d += ld(qt + i) * ld(ks + i);
        d = warp_sum(d);
        if (lane == 0) p[s] = d * scale;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int s = threadIdx.x; s < L; s += blockDim.x) mx = fmaxf(mx, p[s]);
    mx = block_max(mx);
    float sum = 0;
    for (int s = threadIdx.x; s < L; s += blockDim.x) {
        float e = __expf(p[s] - mx);
        p[s] = e;
        sum += e;
    }
    float inv = 1.0f / block_sum(sum); /* block_sum syncs: every p[s] is written */
    for (int i = threadIdx.x; i < HD; i += blockDim.x) {
        float acc = 0;
        for (int s = 0; s < L; s++) acc += p[s] * ld(v + ((size_t)b * T + s) * rs + (size_t)h * HD + i);
        st(ot + i, acc * inv);
    }
}
template <typename TI>
static void cu_attention_bidir_fwd(void *out, const void *q, const void *k, const void *v, const int32_t *lens, int B,
                                   int T, int NH, int HD, float scale) {
    PROFILE("attention_bidir_fwd");
    size_t shm = (size_t)T * sizeof(float);
    if (shm > 48 * 1024) cudaFuncSetAttribute(k_attention_bidir<TI>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
    dim3 grid(T, NH, B);
    k_attention_bidir<TI><<<grid, 128, shm, lma_cu_stream>>>((TI *)out, (const TI *)q, (const TI *)k, (const TI *)v, lens, T, NH, HD,
                                              scale);
    check_launch("attention_bidir_fwd");
}
