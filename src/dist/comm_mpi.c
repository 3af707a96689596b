/* The MPI comm (comm.h): CPU buffers, MPI_COMM_WORLD. Built when CMake finds MPI
 * (LMA_HAVE_MPI; Debian's libopenmpi-dev); otherwise lma_comm_mpi_create refuses and says
 * how to get it. Counts above INT_MAX go in pieces (MPI counts are int). */
#include "dist/comm.h"
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"

#ifdef LMA_HAVE_MPI
#include <mpi.h>

int lma_comm_have_mpi(void) { return 1; }

typedef struct { int owns_init; } mpi_impl;

#define PIECE ((size_t)1 << 30)

static lma_status mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return lma_error(LMA_ERR_IO, "MPI %s: %.*s", what, len, msg);
}

static lma_status m_allreduce(lma_comm *c, float *buf, size_t n) {
    (void)c;
    for (size_t o = 0; o < n; o += PIECE) {
        int k = (int)(n - o < PIECE ? n - o : PIECE);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + o, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "all-reduce");
    }
    return LMA_OK;
}
static lma_status m_allreduce64(lma_comm *c, double *buf, size_t n) {
    (void)c;
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? LMA_OK : mpi_fail(rc, "all-reduce");
}
/* per piece of n: rank r's block r of send, reduced into recv */
static lma_status m_reduce_scatter(lma_comm *c, const float *send, float *recv, size_t n) {
    if (n > PIECE) return lma_error(LMA_ERR_UNSUPPORTED, "MPI reduce-scatter of %zu floats a rank: use smaller buckets", n);
    int rc = MPI_Reduce_scatter_block(send, recv, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    (void)c;
    return rc == MPI_SUCCESS ? LMA_OK : mpi_fail(rc, "reduce-scatter");
}
static lma_status m_allgather(lma_comm *c, const float *send, float *recv, size_t n) {
    if (n > PIECE) return lma_error(LMA_ERR_UNSUPPORTED, "MPI all-gather of %zu floats a rank: use smaller buckets", n);
    const void *s = send == recv + (size_t)c->rank * n ? MPI_IN_PLACE : (const void *)send;
    int rc = MPI_Allgather(s, (int)n, MPI_FLOAT, recv, (int)n, MPI_FLOAT, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? LMA_OK : mpi_fail(rc, "all-gather");
}
static lma_status m_bcast(lma_comm *c, float *buf, size_t n, int root) {
    (void)c;
    for (size_t o = 0; o < n; o += PIECE) {
        int k = (int)(n - o < PIECE ? n - o : PIECE);
        int rc = MPI_Bcast(buf + o, k, MPI_FLOAT, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "broadcast");
    }
    return LMA_OK;
}
static lma_status m_barrier(lma_comm *c) {
    (void)c;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? LMA_OK : mpi_fail(rc, "barrier");
}
static void m_free(lma_comm *c) {
    mpi_impl *m = c->impl;
    int fin = 0;
    if (m && m->owns_init && MPI_Finalized(&fin) == MPI_SUCCESS && !fin) MPI_Finalize();
    free(m);
}
static void m_abort(lma_comm *c, int code) { (void)c; MPI_Abort(MPI_COMM_WORLD, code); }
static const lma_comm_ops mpi_ops = {"mpi", m_allreduce, m_allreduce64, m_reduce_scatter, m_allgather, m_bcast,
                                     m_barrier, m_abort, m_free};

lma_status lma_comm_mpi_create(const lma_world *w, lma_comm **out) {
    *out = NULL;
    if (w->world > 1 && !w->under_mpirun)
        return lma_error(LMA_ERR_UNSUPPORTED, "the MPI comm needs an MPI launcher for %d ranks (the %s variables "
                         "came from elsewhere): start with mpirun -n %d, srun --mpi=pmix, or lmadapt launch",
                         w->world, w->source, w->world);
    int inited = 0, rank = 0, size = 1;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return lma_error(LMA_ERR_IO, "MPI_Init failed (code %d)", rc);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    mpi_impl *m = lma_calloc(1, sizeof *m, "mpi comm");
    lma_comm *c = lma_calloc(1, sizeof *c, "mpi comm");
    if (!m || !c) { free(m); free(c); return LMA_ERR_NOMEM; }
    m->owns_init = !inited;
    c->ops = &mpi_ops;
    c->impl = m;
    c->rank = rank;
    c->world = size;
    if (size != w->world || rank != w->rank) {
        lma_status s = lma_error(LMA_ERR_ARG, "MPI says rank %d of %d, the environment (%s) rank %d of %d", rank, size,
                                 w->source, w->rank, w->world);
        lma_comm_free(c);
        return s;
    }
    *out = c;
    return LMA_OK;
}
#else
int lma_comm_have_mpi(void) { return 0; }
lma_status lma_comm_mpi_create(const lma_world *w, lma_comm **out) {
    (void)w;
    *out = NULL;
    return lma_error(LMA_ERR_UNSUPPORTED, "this lmadapt was built without MPI: install Debian's libopenmpi-dev "
                     "(scripts/install-deps.sh) and rebuild for distributed training on CPU");
}
#endif
