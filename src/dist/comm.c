/* The world from the environment, the comm factory and the local comm (comm.h). */
#define _GNU_SOURCE
#include "dist/comm.h"
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core/arena.h"
#include "core/io.h"

/* ---- the world ---------------------------------------------------------------- */

/* An integer variable: 1 found and valid, 0 absent, -1 present but not a number >= lo. */
static int env_int(const char *name, int lo, int *out) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > 1 << 20) return -1;
    *out = (int)v;
    return 1;
}

static lma_status read_triple(lma_world *w, const char *src, const char *r, const char *n, const char *l, int *found) {
    int rank = 0, world = 1, local = 0;
    int a = env_int(r, 0, &rank), b = env_int(n, 1, &world), c = l ? env_int(l, 0, &local) : 0;
    *found = 0;
    if (a == 0 && b == 0) return LMA_OK;
    if (a < 0) return lma_error(LMA_ERR_ARG, "environment: %s=%s is not a rank (an integer >= 0)", r, getenv(r));
    if (b < 0) return lma_error(LMA_ERR_ARG, "environment: %s=%s is not a world size (an integer >= 1)", n, getenv(n));
    if (c < 0) return lma_error(LMA_ERR_ARG, "environment: %s=%s is not a local rank", l, getenv(l));
    if (a == 0 || b == 0)
        return lma_error(LMA_ERR_ARG, "environment: %s is set but %s is not; a launcher sets both", a ? r : n, a ? n : r);
    if (rank >= world) return lma_error(LMA_ERR_ARG, "environment: %s=%d is not below %s=%d", r, rank, n, world);
    w->rank = rank; w->world = world; w->local_rank = c ? local : rank; w->source = src;
    *found = 1;
    return LMA_OK;
}

lma_status lma_world_from_env(lma_world *w) {
    memset(w, 0, sizeof *w);
    w->world = 1;
    w->source = "none";
    int found = 0;
    LMA_TRY(read_triple(w, "torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", &found));
    if (!found) LMA_TRY(read_triple(w, "mpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", &found));
    if (!found) LMA_TRY(read_triple(w, "mpi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", &found));
    if (!found) LMA_TRY(read_triple(w, "slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", &found));
    w->under_mpirun = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE");
    const char *a = getenv("MASTER_ADDR");
    snprintf(w->master_addr, sizeof w->master_addr, "%s", a && *a ? a : "127.0.0.1");
    w->master_port = 29500;
    if (env_int("MASTER_PORT", 1, &w->master_port) < 0 || w->master_port > 65535)
        return lma_error(LMA_ERR_ARG, "environment: MASTER_PORT=%s is not a port number", getenv("MASTER_PORT"));
    return LMA_OK;
}

/* ---- the local comm (world size 1) ---------------------------------------------- */

static lma_status local_nop(lma_comm *c, float *buf, size_t n) { (void)c; (void)buf; (void)n; return LMA_OK; }
static lma_status local_nop64(lma_comm *c, double *buf, size_t n) { (void)c; (void)buf; (void)n; return LMA_OK; }
static lma_status local_copy(lma_comm *c, const float *send, float *recv, size_t n) {
    (void)c;
    if (send != recv) memmove(recv, send, n * sizeof(float));
    return LMA_OK;
}
static lma_status local_bcast(lma_comm *c, float *buf, size_t n, int root) { (void)c; (void)buf; (void)n; (void)root; return LMA_OK; }
static lma_status local_barrier(lma_comm *c) { (void)c; return LMA_OK; }
static void local_free(lma_comm *c) { (void)c; }
static void local_abort(lma_comm *c, int code) { (void)c; (void)code; }
static const lma_comm_ops local_ops = {"local", local_nop, local_nop64, local_copy, local_copy, local_bcast,
                                       local_barrier, local_abort, local_free};

/* ---- NCCL through the CUDA plugin (comm_nccl.cu) -------------------------------- */

#define NCCL_ID_BYTES 128

/* The plugin, already loaded by the cuda backend (backend.c) */
static void *plugin_sym(const char *name) {
#ifdef LMA_CUDA_PLUGIN
    void *h = dlopen(LMA_CUDA_PLUGIN, RTLD_NOW | RTLD_NOLOAD);
    if (!h) h = dlopen("liblmadapt_cuda.so", RTLD_NOW | RTLD_NOLOAD);
    return h ? dlsym(h, name) : NULL;
#else
    (void)name;
    return NULL;
#endif
}

/* rank 0 writes the id to path (atomically); the others wait for it (up to 10 minutes) */
static lma_status id_by_file(const char *path, int rank, unsigned char *id) {
    if (rank == 0) return lma_write_file_atomic(path, id, NCCL_ID_BYTES);
    for (int i = 0; i < 60000; i++) {
        FILE *f = fopen(path, "rb");
        if (f) {
            size_t got = fread(id, 1, NCCL_ID_BYTES, f);
            fclose(f);
            if (got == NCCL_ID_BYTES) return LMA_OK;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return lma_error(LMA_ERR_IO, "%s: rank 0 wrote no NCCL id within 10 minutes", path);
}

/* rank 0 listens at addr:(MASTER_PORT + 1) and hands the id to world-1 connections; the others connect
 * (retrying for up to 10 minutes while rank 0 starts) and read it */
static lma_status id_by_socket(const lma_world *w, unsigned char *id) {
    char port[16]; /* MASTER_PORT + 1: torchrun's own store holds MASTER_PORT */
    snprintf(port, sizeof port, "%d", w->master_port < 65535 ? w->master_port + 1 : w->master_port - 1);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = w->rank == 0 ? AI_PASSIVE : 0;
    int e = getaddrinfo(w->rank == 0 ? NULL : w->master_addr, port, &hints, &ai);
    if (e) return lma_error(LMA_ERR_IO, "MASTER_ADDR %s:%s: %s", w->master_addr, port, gai_strerror(e));
    lma_status s = LMA_OK;
    if (w->rank == 0) {
        int fd = socket(ai->ai_family, SOCK_STREAM, 0), one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, w->world))
            s = lma_error(LMA_ERR_IO, "MASTER_PORT %s: cannot listen: %s", port, strerror(errno));
        for (int k = 1; s == LMA_OK && k < w->world; k++) {
            int c = accept(fd, NULL, NULL);
            if (c < 0 || write(c, id, NCCL_ID_BYTES) != NCCL_ID_BYTES)
                s = lma_error(LMA_ERR_IO, "MASTER_PORT %s: handing out the NCCL id: %s", port, strerror(errno));
            if (c >= 0) close(c);
        }
        if (fd >= 0) close(fd);
    } else {
        s = LMA_ERR_IO;
        for (int i = 0; i < 6000 && s != LMA_OK; i++) {
            int fd = socket(ai->ai_family, SOCK_STREAM, 0);
            if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
                size_t got = 0;
                while (got < NCCL_ID_BYTES) {
                    ssize_t r = read(fd, id + got, NCCL_ID_BYTES - got);
                    if (r <= 0) break;
                    got += (size_t)r;
                }
                if (got == NCCL_ID_BYTES) s = LMA_OK;
            }
            if (fd >= 0) close(fd);
            if (s != LMA_OK) { struct timespec ts = {0, 100000000}; nanosleep(&ts, NULL); }
        }
        if (s != LMA_OK) s = lma_error(LMA_ERR_IO, "MASTER_ADDR %s:%s: no NCCL id from rank 0 within 10 minutes",
                                       w->master_addr, port);
    }
    freeaddrinfo(ai);
    return s;
}

lma_status lma_comm_share_id(const lma_world *w, unsigned char id[128]) {
    const char *file = getenv("LMA_NCCL_ID_FILE");
    if (w->world < 2) return LMA_OK;
    return file && *file ? id_by_file(file, w->rank, id) : id_by_socket(w, id);
}

static lma_status nccl_create(const lma_world *w, lma_comm **out) {
    typedef int (*id_fn)(unsigned char *);
    typedef int (*comm_fn)(int, int, int, const unsigned char *, lma_comm **, char *, size_t);
    id_fn get_id = (id_fn)plugin_sym("lma_cuda_plugin_nccl_id");
    comm_fn make = (comm_fn)plugin_sym("lma_cuda_plugin_nccl_comm");
    if (!get_id || !make)
        return lma_error(LMA_ERR_UNSUPPORTED, "NCCL: this lmadapt has no CUDA plugin with NCCL loaded (build with the "
                         "CUDA toolkit's NCCL and train on --device cuda)");
    unsigned char id[NCCL_ID_BYTES] = {0};
    char msg[256] = "";
    if (w->rank == 0 && get_id(id)) return lma_error(LMA_ERR_IO, "ncclGetUniqueId failed");
    LMA_TRY(lma_comm_share_id(w, id));
    if (make(w->rank, w->world, w->local_rank, id, out, msg, sizeof msg))
        return lma_error(LMA_ERR_IO, "NCCL: %s", msg);
    return LMA_OK;
}

/* ---- the factory and the calls ------------------------------------------------- */

lma_status lma_comm_create(lma_comm_kind kind, const lma_world *w, lma_comm **out) {
    *out = NULL;
    if (kind == LMA_COMM_MPI) return lma_comm_mpi_create(w, out);
    if (kind == LMA_COMM_NCCL) return nccl_create(w, out);
    if (w->world != 1) return lma_error(LMA_ERR_ARG, "a local comm has world size 1, not %d", w->world);
    lma_comm *c = lma_calloc(1, sizeof *c, "comm");
    if (!c) return LMA_ERR_NOMEM;
    c->ops = &local_ops;
    c->rank = 0;
    c->world = 1;
    *out = c;
    return LMA_OK;
}

void lma_comm_free(lma_comm *c) {
    if (!c) return;
    c->ops->free(c);
    free(c);
}
int lma_comm_rank(const lma_comm *c) { return c ? c->rank : 0; }
int lma_comm_world(const lma_comm *c) { return c ? c->world : 1; }
const char *lma_comm_name(const lma_comm *c) { return c ? c->ops->name : "none"; }

/* a failure with its message in c->err (the plugin's) becomes the pending error */
static lma_status said(lma_comm *c, lma_status s) {
    if (s != LMA_OK && c->err[0]) {
        lma_error(s, "%s", c->err);
        c->err[0] = 0;
    }
    return s;
}
lma_status lma_comm_allreduce(lma_comm *c, float *buf, size_t n) { return n ? said(c, c->ops->allreduce(c, buf, n)) : LMA_OK; }
lma_status lma_comm_allreduce_f64(lma_comm *c, double *host, size_t n) {
    return n ? said(c, c->ops->allreduce_f64(c, host, n)) : LMA_OK;
}
lma_status lma_comm_reduce_scatter(lma_comm *c, const float *send, float *recv, size_t n) {
    return n ? said(c, c->ops->reduce_scatter(c, send, recv, n)) : LMA_OK;
}
lma_status lma_comm_allgather(lma_comm *c, const float *send, float *recv, size_t n) {
    return n ? said(c, c->ops->allgather(c, send, recv, n)) : LMA_OK;
}
lma_status lma_comm_bcast(lma_comm *c, float *buf, size_t n, int root) {
    if (root < 0 || root >= c->world) return lma_error(LMA_ERR_ARG, "broadcast root %d outside the world of %d", root, c->world);
    return n ? said(c, c->ops->bcast(c, buf, n, root)) : LMA_OK;
}
lma_status lma_comm_barrier(lma_comm *c) { return said(c, c->ops->barrier(c)); }
void lma_comm_abort(lma_comm *c, int code) {
    fflush(stdout);
    fflush(stderr);
    if (c) c->ops->abort(c, code);
    exit(code);
}
