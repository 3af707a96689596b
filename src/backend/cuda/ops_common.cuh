/* Shared by the op files: the storage type bf16, the plugin's handles and switches, error
 * recording (the first failure, reported by cu_sync: backend.h), chunked loads/stores,
 * block reductions, launch and profiling macros.
 * A part of the cuda plugin, included once by cuda_backend.cu (one translation unit, as
 * llm.c's llmc/ headers; no include guard), after ops_common.cuh. */
typedef __nv_bfloat16 bf16;

static cublasHandle_t g_blas;
static cublasLtHandle_t g_lt;
static int g_tf32 = 0;
/* The library's lma_error, handed over by lma_cuda_plugin_open (this file is a
 * plugin, loaded with dlopen: see backend.c). */
static lma_status (*g_err)(lma_status, const char *, ...);
static const int *g_naive; /* lma_cuda_attention_naive of the library */
#define lma_error(...) (g_err ? g_err(__VA_ARGS__) : LMA_ERR_INTERNAL)
#define attention_mode (g_naive ? *g_naive : 0)

/* The first failure since the last sync (backend.h): ops return nothing, so a failure is
 * recorded here and reported by cu_sync at the end of the model's forward, backward,
 * optimizer step or generation step. */
static lma_status g_fail = LMA_OK;
static char g_fail_msg[512];
static void fail(lma_status s, const char *fmt, ...) {
    if (g_fail != LMA_OK) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_fail_msg, sizeof g_fail_msg, fmt, ap);
    va_end(ap);
    g_fail = s;
    lma_error(s, "%s", g_fail_msg);
}
static void check(cudaError_t e, const char *what) {
    if (e != cudaSuccess)
        fail(e == cudaErrorMemoryAllocation ? LMA_ERR_NOMEM : LMA_ERR_INTERNAL, "cuda %s: %s", what, cudaGetErrorString(e));
}
static void check_launch(const char *what) { check(cudaGetLastError(), what); }
static void check_blas(cublasStatus_t s, const char *what) {
    if (s != CUBLAS_STATUS_SUCCESS)
        fail(s == CUBLAS_STATUS_ALLOC_FAILED ? LMA_ERR_NOMEM : LMA_ERR_INTERNAL, "cublas %s: status %d", what, (int)s);
}
static lma_status cu_sync(void) {
    check(cudaDeviceSynchronize(), "synchronize");
    lma_status s = g_fail;
    if (s != LMA_OK) {
        lma_error(s, "%s", g_fail_msg); /* again: the caller may have cleared it since */
        g_fail = LMA_OK;
    }
    return s;
}

/* an A/B switch of the environment: 1 unless NAME=0 (each call reads it; callers cache it) */
static int env_on(const char *name) {
    const char *e = getenv(name);
    return !(e && !strcmp(e, "0"));
}
/* a switch of a kernel not yet run on a GPU: 0 unless NAME=1 (it becomes env_on once measured) */
static int env_opt_in(const char *name) {
    const char *e = getenv(name);
    return e && !strcmp(e, "1");
}
static unsigned blocks(size_t n, unsigned threads) { return (unsigned)((n + threads - 1) / threads); }

/* fp32 arithmetic on either storage type */
__device__ __forceinline__ float ld(const float *p) { return *p; }
__device__ __forceinline__ float ld(const bf16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ void st(float *p, float x) { *p = x; }
__device__ __forceinline__ void st(bf16 *p, float x) { *p = __float2bfloat16(x); }

/* E = 8 elements per thread (16-byte loads and stores) when n is a multiple of 8 and every
 * pointer is 16-byte aligned (vec_ok), else E = 1: the elementwise and row kernels. */
template <typename TI, int E> struct chunk;
template <typename TI> struct chunk<TI, 1> {
    static __device__ __forceinline__ void load(const TI *p, float *f) { f[0] = ld(p); }
    static __device__ __forceinline__ void store(TI *p, const float *f) { st(p, f[0]); }
};
template <> struct chunk<bf16, 8> {
    static __device__ __forceinline__ void load(const bf16 *p, float *f) {
        uint4 u = *reinterpret_cast<const uint4 *>(p);
        const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&u);
#pragma unroll
        for (int k = 0; k < 4; k++) { float2 v = __bfloat1622float2(h[k]); f[2 * k] = v.x; f[2 * k + 1] = v.y; }
    }
    static __device__ __forceinline__ void store(bf16 *p, const float *f) {
        uint4 u;
        __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&u);
#pragma unroll
        for (int k = 0; k < 4; k++) h[k] = __floats2bfloat162_rn(f[2 * k], f[2 * k + 1]);
        *reinterpret_cast<uint4 *>(p) = u;
    }
};
template <> struct chunk<float, 8> {
    static __device__ __forceinline__ void load(const float *p, float *f) {
        float4 a = reinterpret_cast<const float4 *>(p)[0], b = reinterpret_cast<const float4 *>(p)[1];
        f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w; f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
    }
    static __device__ __forceinline__ void store(float *p, const float *f) {
        reinterpret_cast<float4 *>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
        reinterpret_cast<float4 *>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
    }
};
/* n a multiple of 8 and the (non-NULL) pointers 16-byte aligned */
static int vec_ok(size_t n, const void *a, const void *b = NULL, const void *c = NULL, const void *d = NULL,
                  const void *e = NULL) {
    const void *p[5] = {a, b, c, d, e};
    if (n % 8) return 0;
    for (int i = 0; i < 5; i++)
        if (p[i] && ((uintptr_t)p[i] & 15)) return 0;
    return 1;
}
/* kernel<TI, 8> over n/8 threads or kernel<TI, 1> over n */
#define LAUNCH_EW(kernel, vec, n, ...)                                                                               \
    do {                                                                                                             \
        if (vec) kernel<TI, 8><<<blocks((n) / 8, 256), 256, 0, lma_cu_stream>>>(__VA_ARGS__);                          \
        else kernel<TI, 1><<<blocks(n, 256), 256, 0, lma_cu_stream>>>(__VA_ARGS__);                                    \
    } while (0)
#define EW_INDEX(E) size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * (E); if (i >= n) return


/* one profile row per op and storage type (the templates instantiate it twice; profile.cu) */
#define PROFILE(name)                                                                                                  \
    static lma_cuda_prof_acc *prof_row_ = lma_cuda_prof_register(sizeof(TI) == 2 ? name " bf16" : name);              \
    lma_cuda_prof_scope prof_s_(prof_row_)
#define PROFILE_F32(name)                                                                                              \
    static lma_cuda_prof_acc *prof_row_ = lma_cuda_prof_register(name);                                               \
    lma_cuda_prof_scope prof_s_(prof_row_)

/* ---- block reductions ---------------------------------------------------------- */

__device__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
/* blockDim.x a multiple of 32, at most 1024; every thread gets the result */
__device__ float block_sum(float v) {
    __shared__ float s[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) s[w] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? s[lane] : 0.0f;
    return warp_sum(v);
}
__device__ float block_max(float v) {
    __shared__ float s[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) s[w] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? s[lane] : -INFINITY;
    return warp_max(v);
}

