/* The communicator of data-parallel training: the collectives the trainer needs, on fp32
 * buffers, over an engine clusters already run (NCCL on GPUs, MPI on CPU processes); no
 * transport of our own.
 *
 * A comm is an opaque handle with a vtable (one implementation a file):
 *   comm.c        the world from the environment (torchrun, Slurm, Open MPI variables),
 *                 the factory and the local comm (world size 1: every collective a copy);
 *   comm_mpi.c    MPI (CPU buffers; built when CMake finds MPI: LMA_HAVE_MPI);
 *   comm_nccl.cu  NCCL (device buffers; in the CUDA plugin, NCCL_NVLS_ENABLE=0: no
 *                 NVLink multicast).
 * Buffers are the memory of the backend the comm was made for (host memory for cpu/ref,
 * device memory for cuda). Every collective is blocking (returns when the result is in
 * place) and must be called by every rank in the same order with the same counts.
 * Sums are reduced in an order fixed by the engine for a given world size (MPI: the
 * same on every run; with 2 ranks a + b, which is order-free), so a run repeats bitwise.
 *
 * Ownership: lma_comm_free ends the comm (and MPI, when this comm started it). */
#ifndef LMA_DIST_COMM_H
#define LMA_DIST_COMM_H
#include <stddef.h>
#include "core/status.h"

/* Where this process sits, from the launcher's environment (first match wins):
 *   RANK / WORLD_SIZE / LOCAL_RANK (+ MASTER_ADDR, MASTER_PORT)   torchrun, lmadapt launch
 *   OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK                    mpirun (Open MPI)
 *   PMI_RANK / PMI_SIZE                                            MPICH, Intel MPI
 *   SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID                    srun
 * none: rank 0 of 1. */
typedef struct {
    int rank, world, local_rank;
    const char *source;      /* which variables: "torchrun", "mpi", "slurm", "none" */
    char master_addr[256];   /* MASTER_ADDR (default 127.0.0.1) */
    int master_port;         /* MASTER_PORT (default 29500) */
    int under_mpirun;        /* an MPI launcher started this process (OMPI_ / PMI_ variables) */
} lma_world;
lma_status lma_world_from_env(lma_world *w);

typedef struct lma_comm lma_comm;
typedef enum { LMA_COMM_LOCAL, LMA_COMM_MPI, LMA_COMM_NCCL } lma_comm_kind;

/* A comm of kind for world w. LOCAL: world size 1 only. MPI: refused (LMA_ERR_UNSUPPORTED,
 * saying how to get it) when lmadapt was built without MPI, or when no MPI launcher started
 * this process and w.world > 1. NCCL: needs the CUDA plugin built with NCCL and a GPU; the
 * unique id goes from rank 0 to the others through the file LMA_NCCL_ID_FILE (lmadapt
 * launch sets it) or else a TCP socket at MASTER_ADDR, port MASTER_PORT + 1 (torchrun's own
 * store listens at MASTER_PORT). */
lma_status lma_comm_create(lma_comm_kind kind, const lma_world *w, lma_comm **out);
void lma_comm_free(lma_comm *c);
/* The 128 bytes of NCCL's unique id from rank 0 (whose id holds it) to every rank of w, as
 * lma_comm_create does it (exposed for tests). */
lma_status lma_comm_share_id(const lma_world *w, unsigned char id[128]);
int lma_comm_rank(const lma_comm *c);
int lma_comm_world(const lma_comm *c);
const char *lma_comm_name(const lma_comm *c);
/* 1 when lmadapt was built with MPI (comm_mpi.c). */
int lma_comm_have_mpi(void);

/* buf (n) = sum over ranks, in place. */
lma_status lma_comm_allreduce(lma_comm *c, float *buf, size_t n);
/* Host doubles (n, small: losses, counts, norms) summed over ranks, in place. */
lma_status lma_comm_allreduce_f64(lma_comm *c, double *host, size_t n);
/* recv (n) = sum over ranks of send[rank*n .. rank*n + n); send (world * n). */
lma_status lma_comm_reduce_scatter(lma_comm *c, const float *send, float *recv, size_t n);
/* recv (world * n): rank r's send (n) at recv + r*n; send may be recv + rank*n (in place). */
lma_status lma_comm_allgather(lma_comm *c, const float *send, float *recv, size_t n);
/* buf (n) = root's buf. */
lma_status lma_comm_bcast(lma_comm *c, float *buf, size_t n, int root);
lma_status lma_comm_barrier(lma_comm *c);
/* A rank that fails ends the whole job (the others would wait in their next collective
 * forever): MPI_Abort / ncclCommAbort, then exit(code). Frees nothing else. */
void lma_comm_abort(lma_comm *c, int code);

/* ---- for implementations (comm_mpi.c, comm_nccl.cu) ---- */
typedef struct {
    const char *name;
    lma_status (*allreduce)(lma_comm *c, float *buf, size_t n);
    lma_status (*allreduce_f64)(lma_comm *c, double *host, size_t n);
    lma_status (*reduce_scatter)(lma_comm *c, const float *send, float *recv, size_t n);
    lma_status (*allgather)(lma_comm *c, const float *send, float *recv, size_t n);
    lma_status (*bcast)(lma_comm *c, float *buf, size_t n, int root);
    lma_status (*barrier)(lma_comm *c);
    void (*abort)(lma_comm *c, int code); /* may return: lma_comm_abort then exits */
    void (*free)(lma_comm *c);
} lma_comm_ops;
struct lma_comm {
    const lma_comm_ops *ops;
    int rank, world;
    void *impl;
    char err[256]; /* an implementation that cannot call lma_error (the CUDA plugin) leaves its
                      failure's message here; the lma_comm_* calls report it */
};
lma_status lma_comm_mpi_create(const lma_world *w, lma_comm **out);
#endif
