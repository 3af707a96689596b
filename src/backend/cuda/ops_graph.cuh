/* Recorded graphs (backend.h graph_*): the ops of a decode step captured once into a CUDA
 * graph and replayed, one launch for the hundreds of small kernels a token takes (at batch 1
 * a step of a 1B model is bound by launches, not by memory). While recording, every op of
 * this thread goes to its capture stream (lma_cu_stream; the legacy default stream
 * otherwise: both thread-local, so two threads record and replay apart); a graph runs on that
 * stream (created blocking, so ordered with the legacy stream the rest of the plugin uses:
 * uploads before it, downloads after it), or on the legacy stream in a thread that never
 * recorded.
 * A part of the cuda plugin, included once by cuda_backend.cu. */
thread_local cudaStream_t lma_cu_stream = 0;
static thread_local cudaStream_t g_cap; /* this thread's capture and replay stream */

static int cu_graph_begin(void) {
    if (lma_cuda_prof_on()) return 0; /* the profiler's events would be recorded too */
    lz_flush_all();                   /* deferred zeros: now, not at every replay (ops_zero.cuh) */
    if (!g_cap && cudaStreamCreate(&g_cap) != cudaSuccess) { cudaGetLastError(); g_cap = 0; return 0; }
    if (cudaStreamBeginCapture(g_cap, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    lma_cu_stream = g_cap;
    return 1;
}
static void *cu_graph_end(void) {
    cudaGraph_t g = NULL;
    cudaGraphExec_t x = NULL;
    lma_cu_stream = 0;
    check(cudaStreamEndCapture(g_cap, &g), "graph capture");
    if (g) {
        check(cudaGraphInstantiate(&x, g, 0), "graph instantiate");
        cudaGraphDestroy(g);
    }
    return x;
}
static void cu_graph_run(void *x) { check(cudaGraphLaunch((cudaGraphExec_t)x, g_cap), "graph launch"); }
static void cu_graph_free(void *x) {
    if (x) cudaGraphExecDestroy((cudaGraphExec_t)x);
}
