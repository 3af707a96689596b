/* Cross-entropy (fused, chunked rows), AdamW, and the sum of squares for the gradient norm.
 * A part of the cuda plugin, included once by cuda_backend.cu (one translation unit, as
 * llm.c's llmc/ headers; no include guard), after ops_common.cuh. */
/* ---- cross-entropy: one block per row, online max/sum (one read), then the gradient -----------
 * NCH > 0 (8 or 12: vocabularies up to 32768 or 49152, bf16): the row's NCH chunks a thread
 * (V <= blockDim.x * E * NCH) stay in registers, stored
 * as read, between the two passes (the second pass read the row again: from L2 when it was still
 * there, with ~500 rows of 64 KB in flight not always); NCH = 0: any V, read twice. */

template <typename TI, int E, int NCH>
__global__ void __launch_bounds__(512) k_cross_entropy(float *losses, TI *dlogits, const TI *logits, const int32_t *targets, int V,
                                float dscale) {
    __shared__ float sm[32], ss[32];
    size_t row = blockIdx.x;
    const TI *x = logits + row * V;
    int y = targets[row];
    if (y == LMA_IGNORE_INDEX) {
        if (threadIdx.x == 0) losses[row] = 0.0f;
        if (dlogits) for (int i = threadIdx.x; i < V; i += blockDim.x) st(dlogits + row * V + i, 0.0f);
        return;
    }
    float m = -INFINITY, s = 0.0f;
    struct alignas(16) raw_t { TI v[E]; } raw[NCH > 0 ? NCH : 1];
    auto online = [&](const float *xv) { /* E at a time: their max, then the sum */
        float mx = -INFINITY;
#pragma unroll
        for (int k = 0; k < E; k++) mx = fmaxf(mx, xv[k]);
        if (mx > m) { s *= __expf(m - mx); m = mx; }
#pragma unroll
        for (int k = 0; k < E; k++) s += __expf(xv[k] - m);
    };
    if (NCH > 0) {
#pragma unroll
        for (int j = 0; j < NCH; j++) {
            int i = (threadIdx.x + j * blockDim.x) * E;
            if (i < V) raw[j] = *reinterpret_cast<const raw_t *>(x + i);
        }
#pragma unroll
        for (int j = 0; j < NCH; j++) {
            float xv[E];
            if ((threadIdx.x + j * blockDim.x) * E < V) { chunk<TI, E>::load(raw[j].v, xv); online(xv); }
        }
    } else {
        for (int i = threadIdx.x * E; i < V; i += blockDim.x * E) {
            float xv[E];
            chunk<TI, E>::load(x + i, xv);
            online(xv);
        }
    }
    /* combine (m, s) pairs: warp, then block */
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o), mm = fmaxf(m, m2);
        s = (m == -INFINITY ? 0.0f : s * __expf(m - mm)) + (m2 == -INFINITY ? 0.0f : s2 * __expf(m2 - mm));
        m = mm;
    }
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) { sm[w] = m; ss[w] = s; }
    __syncthreads();
    float M = -INFINITY, S = 0.0f;
    for (int j = 0; j < nw; j++) M = fmaxf(M, sm[j]);
    for (int j = 0; j < nw; j++) S += sm[j] == -INFINITY ? 0.0f : ss[j] * __expf(sm[j] - M);
    float lse = M + logf(S), xy = ld(x + y);
    __syncthreads();
    if (threadIdx.x == 0) losses[row] = lse - xy;
    if (!dlogits) return;
    auto grad = [&](int i, float *xv) {
#pragma unroll
        for (int k = 0; k < E; k++) xv[k] = (__expf(xv[k] - lse) - (i + k == y ? 1.0f : 0.0f)) * dscale;
        chunk<TI, E>::store(dlogits + row * V + i, xv);
    };
    if (NCH > 0) {
#pragma unroll
        for (int j = 0; j < NCH; j++) {
            int i = (threadIdx.x + j * blockDim.x) * E;
            float xv[E];
            if (i < V) { chunk<TI, E>::load(raw[j].v, xv); grad(i, xv); }
        }
    } else {
        for (int i = threadIdx.x * E; i < V; i += blockDim.x * E) {
            float xv[E];
            chunk<TI, E>::load(x + i, xv);
            grad(i, xv);
        }
    }
}
template <typename TI>
static void cu_cross_entropy(float *losses, void *dlogits, const void *logits, const int32_t *targets, int N, int V,
                             float dscale) {
    PROFILE("cross_entropy");
    static int reg = -1; /* the row in registers; LMA_CUDA_CE_REG=0: read twice (A/B runs) */
    if (reg < 0) reg = env_on("LMA_CUDA_CE_REG");
    TI *d = (TI *)dlogits;
    const TI *l = (const TI *)logits;
    if (!vec_ok((size_t)V, dlogits, logits))
        k_cross_entropy<TI, 1, 0><<<N, 512, 0, lma_cu_stream>>>(losses, d, l, targets, V, dscale);
    else if (reg && sizeof(TI) == 2 && V <= 512 * 8 * 8) /* bf16 rows up to 32768: 32 registers of a row */
        k_cross_entropy<TI, 8, 8><<<N, 512, 0, lma_cu_stream>>>(losses, d, l, targets, V, dscale);
    else if (reg && sizeof(TI) == 2 && V <= 512 * 8 * 12) /* up to 49152 (SmolLM2): 48 registers */
        k_cross_entropy<TI, 8, 12><<<N, 512, 0, lma_cu_stream>>>(losses, d, l, targets, V, dscale);
    else
        k_cross_entropy<TI, 8, 0><<<N, 512, 0, lma_cu_stream>>>(losses, d, l, targets, V, dscale);
    check_launch("cross_entropy");
}

/* ---- optimizer ------------------------------------------------------------------------- */

__device__ __forceinline__ float adamw1(float &p, float g, float &m, float &v, float lr, float b1, float b2,
                                        float eps, float wd, float bc1, float bc2s, float gs) {
    float gi = g * gs;
    m = fmaf(b1, m - gi, gi); /* torch lerp: m + (1-b1)(g - m) */
    v = fmaf(b2, v, (1.0f - b2) * gi * gi);
    float pi = p * (1.0f - lr * wd);
    float denom = sqrtf(v) / bc2s + eps;
    return p = pi - (lr / bc1) * m / denom;
}
/* E = 4: a thread updates 4 elements with 16-byte accesses (all pointers 16-byte aligned) */
template <typename TI, int E>
__global__ void k_adamw(float *p, const float *g, float *m, float *v, TI *pact, size_t n, float lr, float b1, float b2,
                        float eps, float wd, float bc1, float bc2s, float gs) {
    size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * E;
    if (i >= n) return;
    if constexpr (E == 4) {
        float4 P = *reinterpret_cast<float4 *>(p + i), G = *reinterpret_cast<const float4 *>(g + i);
        float4 M = *reinterpret_cast<float4 *>(m + i), V = *reinterpret_cast<float4 *>(v + i);
        adamw1(P.x, G.x, M.x, V.x, lr, b1, b2, eps, wd, bc1, bc2s, gs);
        adamw1(P.y, G.y, M.y, V.y, lr, b1, b2, eps, wd, bc1, bc2s, gs);
        adamw1(P.z, G.z, M.z, V.z, lr, b1, b2, eps, wd, bc1, bc2s, gs);
        adamw1(P.w, G.w, M.w, V.w, lr, b1, b2, eps, wd, bc1, bc2s, gs);
        *reinterpret_cast<float4 *>(p + i) = P;
        *reinterpret_cast<float4 *>(m + i) = M;
        *reinterpret_cast<float4 *>(v + i) = V;
        if (pact) { st(pact + i, P.x); st(pact + i + 1, P.y); st(pact + i + 2, P.z); st(pact + i + 3, P.w); }
    } else {
        float pi = adamw1(p[i], g[i], m[i], v[i], lr, b1, b2, eps, wd, bc1, bc2s, gs);
        if (pact) st(pact + i, pi);
    }
}
template <typename TI>
static void cu_adamw(float *p, const float *g, float *m, float *v, void *p_act, size_t n, float lr, float b1, float b2,
                     float eps, float wd, int t, float grad_scale) {
    PROFILE("adamw");
    float bc1 = 1.0f - powf(b1, (float)t), bc2s = sqrtf(1.0f - powf(b2, (float)t));
    TI *pa = p_act == (void *)p ? NULL : (TI *)p_act;
    if (n % 4 == 0 && !(((uintptr_t)p | (uintptr_t)g | (uintptr_t)m | (uintptr_t)v) & 15) &&
        !((uintptr_t)pa & (4 * sizeof(TI) - 1)))
        k_adamw<TI, 4><<<blocks(n / 4, 256), 256, 0, lma_cu_stream>>>(p, g, m, v, pa, n, lr, b1, b2, eps, wd, bc1, bc2s, grad_scale);
    else
        k_adamw<TI, 1><<<blocks(n, 256), 256, 0, lma_cu_stream>>>(p, g, m, v, pa, n, lr, b1, b2, eps, wd, bc1, bc2s, grad_scale);
    check_launch("adamw");
}

/* sum of squares: each thread streams 16-byte loads, four in flight, accumulates in fp32
 * per load and in double across loads; one double atomic per warp */
__global__ void k_sum_sq(double *out, const float *x, size_t n) {
    double acc = 0;
    size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, nt = (size_t)gridDim.x * blockDim.x;
    if (((uintptr_t)x & 15) == 0) {
        const float4 *x4 = reinterpret_cast<const float4 *>(x);
        size_t n4 = n / 4, i = tid;
        for (; i + 3 * nt < n4; i += 4 * nt) {
            float4 v[4];
#pragma unroll
            for (int u = 0; u < 4; u++) v[u] = x4[i + u * nt];
#pragma unroll
            for (int u = 0; u < 4; u++) acc += (double)(v[u].x * v[u].x + v[u].y * v[u].y + v[u].z * v[u].z + v[u].w * v[u].w);
        }
        for (; i < n4; i += nt) {
            float4 v = x4[i];
            acc += (double)(v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w);
        }
        for (size_t j = n4 * 4 + tid; j < n; j += nt) acc += (double)x[j] * x[j];
    } else {
        for (size_t j = tid; j < n; j += nt) acc += (double)x[j] * x[j];
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if ((threadIdx.x & 31) == 0) atomicAdd(out, acc);
}
static double cu_sum_sq(const float *x, size_t n) {
    PROFILE_F32("sum_sq");
    static double *d = NULL;
    if (!d && cudaMalloc(&d, sizeof(double)) != cudaSuccess) { check(cudaGetLastError(), "sum_sq alloc"); return NAN; }
    double h = 0;
    check(cudaMemset(d, 0, sizeof(double)), "sum_sq");
    k_sum_sq<<<132 * 8, 256, 0, lma_cu_stream>>>(d, x, n);
    check_launch("sum_sq");
    check(cudaMemcpy(&h, d, sizeof h, cudaMemcpyDeviceToHost), "sum_sq");
    return h;
}

