/* The side queue (backend.h side): a layer's optimizer update runs on a second stream beside
 * the backward of the layers below it (model/adamw.c), the update bound by memory, the
 * backward's GEMMs by arithmetic. The stream is non-blocking, ordered with the main (legacy)
 * stream by events alone: FORK records where the main stream is and makes the side wait for
 * it; BACK returns this thread's ops to the main stream without waiting; JOIN makes the main
 * stream wait for all the side holds. Refused while profiling (the profiler's events time the
 * legacy stream) and while a graph is recorded. Per thread, like the capture stream.
 * A part of the cuda plugin, included once by cuda_backend.cu, after ops_zero.cuh. */
static thread_local cudaStream_t g_side;
static thread_local cudaEvent_t g_side_fork, g_side_join;

static int side_on(void) { /* LMA_CUDA_SIDE=0: every update after the backward, in order (A/B runs) */
    static int on = -1;
    if (on < 0) on = env_on("LMA_CUDA_SIDE");
    return on;
}
static int cu_side(int what) {
    if (what == LMA_SIDE_BACK) {
        if (g_side && lma_cu_stream == g_side) lma_cu_stream = 0;
        return 1;
    }
    if (what == LMA_SIDE_JOIN) {
        if (g_side) {
            check(cudaEventRecord(g_side_join, g_side), "side join");
            check(cudaStreamWaitEvent(0, g_side_join, 0), "side join");
        }
        return 1;
    }
    if (!side_on() || lma_cuda_prof_on() || lma_cu_stream != 0) return 0;
    if (!g_side) {
        if (cudaStreamCreateWithFlags(&g_side, cudaStreamNonBlocking) != cudaSuccess ||
            cudaEventCreateWithFlags(&g_side_fork, cudaEventDisableTiming) != cudaSuccess ||
            cudaEventCreateWithFlags(&g_side_join, cudaEventDisableTiming) != cudaSuccess) {
            cudaGetLastError();
            g_side = 0;
            return 0;
        }
    }
    lz_flush(); /* the pieces zeroed for the main stream's next op: cleared there, not on the side */
    check(cudaEventRecord(g_side_fork, 0), "side fork");
    check(cudaStreamWaitEvent(g_side, g_side_fork, 0), "side fork");
    lma_cu_stream = g_side;
    return 1;
}

/* adamw's deferred zeros: only the ranges it reads and writes (the whole-allocation flush of
 * lz_enter would clear, on the side stream, gradients the backward is still writing) */
template <typename TI>
static void cu_adamw_lz(float *p, const float *g, float *m, float *v, void *p_act, size_t n, float lr, float b1,
                        float b2, float eps, float wd, int t, float grad_scale) {
    lz_flush();
    size_t f = n * sizeof(float);
    lzb_need(p, f); lzb_need(g, f); lzb_need(m, f); lzb_need(v, f);
    if (p_act != (void *)p) lzb_need(p_act, n * sizeof(TI));
    cu_adamw<TI>(p, g, m, v, p_act, n, lr, b1, b2, eps, wd, t, grad_scale);
}
