/* Device memory: counted allocation (lma_cuda_malloc/free, fault injection), the table's
 * alloc/free/upload/download/copy (zero: ops_zero.cuh) and the fp32 <-> act casts.
 * A part of the cuda plugin, included once by cuda_backend.cu (one translation unit, as
 * llm.c's llmc/ headers; no include guard), after ops_common.cuh. */
/* ---- memory ----------------------------------------------------------------
 * Every device allocation of the plugin (the model's and the ops' scratch) goes through
 * lma_cuda_malloc/free, which count the bytes held: lma_cuda_memory() reports the current
 * and peak totals, the counterpart of torch.cuda.max_memory_allocated (the CUDA context
 * and cuBLAS's own memory are not included; nvidia-smi shows those too). */
#include <mutex>
#include <unordered_map>
static std::mutex g_mem_mu;
static std::unordered_map<void *, size_t> g_mem_sizes;
static size_t g_mem_cur, g_mem_peak;

/* Fault injection (tests): LMA_CUDA_FAIL_ALLOC_AT=N makes the Nth device allocation fail as an
 * out-of-memory would (tests/cuda_fault.sh sweeps N over a command). */
static long fail_alloc_at(void) {
    static long at = -1;
    if (at < 0) {
        const char *e = getenv("LMA_CUDA_FAIL_ALLOC_AT");
        at = e ? atol(e) : 0;
    }
    return at;
}
unsigned long lma_cuda_epoch;
void *lma_cuda_malloc(size_t bytes) {
    static long n_allocs;
    lma_cuda_epoch++;
    void *p = NULL;
    if (fail_alloc_at() > 0 && ++n_allocs == fail_alloc_at()) return NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) { cudaGetLastError(); return NULL; }
    std::lock_guard<std::mutex> lk(g_mem_mu);
    g_mem_sizes[p] = bytes;
    g_mem_cur += bytes;
    if (g_mem_cur > g_mem_peak) g_mem_peak = g_mem_cur;
    return p;
}
void lma_cuda_free(void *p) {
    if (!p) return;
    lma_cuda_epoch++;
    {
        std::lock_guard<std::mutex> lk(g_mem_mu);
        auto it = g_mem_sizes.find(p);
        if (it != g_mem_sizes.end()) { g_mem_cur -= it->second; g_mem_sizes.erase(it); }
    }
    check(cudaFree(p), "free");
}
static size_t lma_cuda_alloc_size(const void *p) {
    std::lock_guard<std::mutex> lk(g_mem_mu);
    auto it = g_mem_sizes.find((void *)p);
    return it == g_mem_sizes.end() ? 0 : it->second;
}
extern "C" __attribute__((visibility("default"))) const char *lma_cuda_plugin_sdpa(int HD, long *runs) {
    int on = lma_cuda_sdpa_usable(HD);
    if (runs) *runs = lma_cuda_sdpa_runs();
    return on ? lma_cuda_sdpa_note() : NULL;
}
extern "C" __attribute__((visibility("default"))) void lma_cuda_plugin_memory(size_t *cur, size_t *peak, int reset) {
    std::lock_guard<std::mutex> lk(g_mem_mu);
    if (cur) *cur = g_mem_cur;
    if (peak) *peak = g_mem_peak;
    if (reset) g_mem_peak = g_mem_cur;
}

static void *cu_alloc(size_t bytes) { return lma_cuda_malloc(bytes); }
static void cu_free(void *p) { lma_cuda_free(p); }
static void cu_upload(void *dst, const void *src, size_t n) {
    lma_cuda_epoch++;
    check(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "upload");
}
static void cu_download(void *dst, const void *src, size_t n) { check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost), "download"); }
/* zero: ops_zero.cuh (deferred) */
static void cu_copy(void *dst, const void *src, size_t n) {
    lma_cuda_epoch++;
    check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToDevice), "copy");
}

static void cu_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t rows) {
    lma_cuda_epoch++;
    if (rows && width)
        check(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, rows, cudaMemcpyDeviceToDevice, lma_cu_stream), "copy2d");
}

template <typename TO, typename TF>
__global__ void k_convert(TO *dst, const TF *src, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) st(dst + i, ld(src + i));
}
template <typename TI> static void cu_cast_to_act(void *dst, const float *src, size_t n) {
    if (dst == (const void *)src || !n) return;
    k_convert<TI, float><<<blocks(n, 256), 256, 0, lma_cu_stream>>>((TI *)dst, src, n);
    check_launch("cast_to_act");
}
template <typename TI> static void cu_act_to_f32(float *dst, const void *src, size_t n) {
    if ((const void *)dst == src || !n) return;
    k_convert<float, TI><<<blocks(n, 256), 256, 0, lma_cu_stream>>>(dst, (const TI *)src, n);
    check_launch("act_to_f32");
}

