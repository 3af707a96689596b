/* The NCCL comm (dist/comm.h): device buffers of the cuda backend, one GPU a rank. Built into
 * the CUDA plugin (liblmadapt_cuda.so) when CMake finds NCCL (LMA_HAVE_NCCL); comm.c reaches
 * it through dlsym (lma_cuda_plugin_nccl_id, lma_cuda_plugin_nccl_comm) after handing the
 * unique id from rank 0 to the others (a file or a socket).
 *
 * NVLink multicast (NVLS) is kept off: NCCL_NVLS_ENABLE=0 is set before the comm is made.
 * The collectives run on a stream of their own, created blocking, so that they wait for the
 * work already queued on the backend's (legacy default) stream and the backend's next work
 * waits for them; each call returns when its result is in place (comm.h: blocking).
 * The plugin cannot call the library's lma_error (hidden in the executable): a failure's
 * message goes to c->err, which comm.c reports. */
#ifdef LMA_HAVE_NCCL
extern "C" {
#include "dist/comm.h"
}
#include "backend/cuda/cuda_internal.h" /* lma_cuda_zero_settle: the table's deferred zeros (C++, as the plugin's .cu files) */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ncclComm_t comm;
    cudaStream_t stream;
    double *d64; /* device scratch of the f64 all-reduce */
    size_t d64_cap;
} nccl_impl;

static lma_status fail(lma_comm *c, const char *what, const char *why) {
    snprintf(c->err, sizeof c->err, "NCCL %s: %s", what, why);
    return LMA_ERR_IO;
}
static lma_status finish(lma_comm *c, ncclResult_t r, const char *what) {
    nccl_impl *m = (nccl_impl *)c->impl;
    if (r != ncclSuccess) return fail(c, what, ncclGetErrorString(r));
    cudaError_t e = cudaStreamSynchronize(m->stream);
    if (e != cudaSuccess) return fail(c, what, cudaGetErrorString(e));
    return LMA_OK;
}

static lma_status n_allreduce(lma_comm *c, float *buf, size_t n) {
    nccl_impl *m = (nccl_impl *)c->impl;
    lma_cuda_zero_settle(buf);
    return finish(c, ncclAllReduce(buf, buf, n, ncclFloat32, ncclSum, m->comm, m->stream), "all-reduce");
}
/* host doubles: through a small device buffer */
static lma_status n_allreduce64(lma_comm *c, double *host, size_t n) {
    nccl_impl *m = (nccl_impl *)c->impl;
    if (n > m->d64_cap) {
        if (m->d64) cudaFree(m->d64);
        m->d64 = NULL;
        m->d64_cap = 0;
        if (cudaMalloc(&m->d64, n * sizeof(double)) != cudaSuccess) {
            fail(c, "all-reduce", "out of device memory");
            return LMA_ERR_NOMEM;
        }
        m->d64_cap = n;
    }
    cudaMemcpyAsync(m->d64, host, n * sizeof(double), cudaMemcpyHostToDevice, m->stream);
    ncclResult_t r = ncclAllReduce(m->d64, m->d64, n, ncclFloat64, ncclSum, m->comm, m->stream);
    if (r != ncclSuccess) return fail(c, "all-reduce", ncclGetErrorString(r));
    cudaMemcpyAsync(host, m->d64, n * sizeof(double), cudaMemcpyDeviceToHost, m->stream);
    return finish(c, ncclSuccess, "all-reduce");
}
static lma_status n_reduce_scatter(lma_comm *c, const float *send, float *recv, size_t n) {
    nccl_impl *m = (nccl_impl *)c->impl;
    lma_cuda_zero_settle(send), lma_cuda_zero_settle(recv);
    return finish(c, ncclReduceScatter(send, recv, n, ncclFloat32, ncclSum, m->comm, m->stream), "reduce-scatter");
}
static lma_status n_allgather(lma_comm *c, const float *send, float *recv, size_t n) {
    nccl_impl *m = (nccl_impl *)c->impl;
    lma_cuda_zero_settle(send), lma_cuda_zero_settle(recv);
    return finish(c, ncclAllGather(send, recv, n, ncclFloat32, m->comm, m->stream), "all-gather");
}
static lma_status n_bcast(lma_comm *c, float *buf, size_t n, int root) {
    nccl_impl *m = (nccl_impl *)c->impl;
    lma_cuda_zero_settle(buf);
    return finish(c, ncclBroadcast(buf, buf, n, ncclFloat32, root, m->comm, m->stream), "broadcast");
}
/* a barrier: an all-reduce of one float */
static lma_status n_barrier(lma_comm *c) {
    double one = 1;
    return n_allreduce64(c, &one, 1);
}
static void n_abort(lma_comm *c, int code) {
    (void)code;
    nccl_impl *m = (nccl_impl *)c->impl;
    if (m && m->comm) ncclCommAbort(m->comm);
    if (m) m->comm = NULL;
}
static void n_free(lma_comm *c) {
    nccl_impl *m = (nccl_impl *)c->impl;
    if (!m) return;
    if (m->comm) {
        cudaStreamSynchronize(m->stream);
        ncclCommDestroy(m->comm);
    }
    if (m->d64) cudaFree(m->d64);
    if (m->stream) cudaStreamDestroy(m->stream);
    free(m);
}
static const lma_comm_ops nccl_ops = {"nccl", n_allreduce, n_allreduce64, n_reduce_scatter, n_allgather, n_bcast,
                                      n_barrier, n_abort, n_free};

extern "C" __attribute__((visibility("default"))) int lma_cuda_plugin_nccl_id(unsigned char *id) {
    ncclUniqueId u;
    if (ncclGetUniqueId(&u) != ncclSuccess) return 1;
    memcpy(id, u.internal, NCCL_UNIQUE_ID_BYTES);
    return 0;
}

/* 0 and *out on success; else non-zero with the reason in msg */
extern "C" __attribute__((visibility("default"))) int
lma_cuda_plugin_nccl_comm(int rank, int world, int local_rank, const unsigned char *id, lma_comm **out, char *msg,
                          size_t cap) {
    *out = NULL;
    setenv("NCCL_NVLS_ENABLE", "0", 1); /* no NVLink multicast */
    (void)local_rank; /* the device: the one the backend uses (CUDA_VISIBLE_DEVICES per rank, cli/dist.c) */
    ncclUniqueId u;
    memcpy(u.internal, id, NCCL_UNIQUE_ID_BYTES);
    nccl_impl *m = (nccl_impl *)calloc(1, sizeof *m);
    lma_comm *c = (lma_comm *)calloc(1, sizeof *c);
    if (!m || !c) { free(m); free(c); snprintf(msg, cap, "out of memory"); return 1; }
    if (cudaStreamCreate(&m->stream) != cudaSuccess) {
        snprintf(msg, cap, "cannot create a stream: %s", cudaGetErrorString(cudaGetLastError()));
        free(m); free(c);
        return 1;
    }
    ncclResult_t r = ncclCommInitRank(&m->comm, world, u, rank);
    if (r != ncclSuccess) {
        snprintf(msg, cap, "ncclCommInitRank (rank %d of %d): %s", rank, world, ncclGetErrorString(r));
        cudaStreamDestroy(m->stream);
        free(m); free(c);
        return 1;
    }
    c->ops = &nccl_ops;
    c->impl = m;
    c->rank = rank;
    c->world = world;
    *out = c;
    return 0;
}
#endif
