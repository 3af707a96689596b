/* The comm interface (src/dist/comm.h): the world read from each launcher's variables, the
 * local comm of world size 1, the dp shard ranges, and, when started by mpirun (tests/dist_mpi.sh
 * runs it with 2 and 3 ranks), every collective against sums computed by hand. */
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include "dist/comm.h"
#include "test.h"
#include "train/dist_step.h"

static const char *vars[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                             "OMPI_COMM_WORLD_LOCAL_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "SLURM_PROCID",
                             "SLURM_NTASKS", "SLURM_LOCALID", "MASTER_ADDR", "MASTER_PORT", NULL};

static void world_env_tests(void) {
    char *saved[32] = {0};
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(vars[i]);
    }
    lma_world w;
    CHECK_OK(lma_world_from_env(&w));
    CHECK(w.rank == 0 && w.world == 1 && !strcmp(w.source, "none") && w.master_port == 29500 &&
          !strcmp(w.master_addr, "127.0.0.1"), "no launcher: rank %d of %d (%s)", w.rank, w.world, w.source);
    setenv("SLURM_PROCID", "3", 1); setenv("SLURM_NTASKS", "8", 1); setenv("SLURM_LOCALID", "1", 1);
    CHECK_OK(lma_world_from_env(&w));
    CHECK(w.rank == 3 && w.world == 8 && w.local_rank == 1 && !strcmp(w.source, "slurm") && !w.under_mpirun,
          "slurm: rank %d of %d local %d (%s)", w.rank, w.world, w.local_rank, w.source);
    /* torchrun's variables win over Slurm's (torchrun inside an srun allocation) */
    setenv("RANK", "5", 1); setenv("WORLD_SIZE", "6", 1); setenv("LOCAL_RANK", "2", 1);
    setenv("MASTER_ADDR", "node7", 1); setenv("MASTER_PORT", "1234", 1);
    CHECK_OK(lma_world_from_env(&w));
    CHECK(w.rank == 5 && w.world == 6 && w.local_rank == 2 && !strcmp(w.source, "torchrun") &&
          !strcmp(w.master_addr, "node7") && w.master_port == 1234, "torchrun: rank %d of %d at %s:%d", w.rank, w.world,
          w.master_addr, w.master_port);
    setenv("RANK", "6", 1);
    CHECK(lma_world_from_env(&w) == LMA_ERR_ARG && strstr(lma_last_error(), "RANK=6"), "rank >= world refused: %s",
          lma_last_error());
    lma_clear_error();
    setenv("RANK", "x", 1);
    CHECK(lma_world_from_env(&w) == LMA_ERR_ARG && strstr(lma_last_error(), "RANK=x"), "bad rank refused: %s",
          lma_last_error());
    lma_clear_error();
    unsetenv("RANK");
    CHECK(lma_world_from_env(&w) == LMA_ERR_ARG && strstr(lma_last_error(), "WORLD_SIZE"), "half a pair refused: %s",
          lma_last_error());
    lma_clear_error();
    unsetenv("WORLD_SIZE"); unsetenv("LOCAL_RANK");
    setenv("MASTER_PORT", "70000", 1);
    CHECK(lma_world_from_env(&w) == LMA_ERR_ARG, "port 70000 refused");
    lma_clear_error();
    unsetenv("MASTER_PORT");
    setenv("OMPI_COMM_WORLD_RANK", "1", 1); setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    CHECK_OK(lma_world_from_env(&w));
    CHECK(w.rank == 1 && w.world == 2 && w.local_rank == 1 && w.under_mpirun && !strcmp(w.source, "mpi"),
          "open mpi: rank %d of %d", w.rank, w.world);
    for (int i = 0; vars[i]; i++) {
        if (saved[i]) setenv(vars[i], saved[i], 1);
        else unsetenv(vars[i]);
        free(saved[i]);
    }
}

static void local_tests(void) {
    lma_world w = {.rank = 0, .world = 1, .source = "none"};
    lma_comm *c = NULL;
    CHECK_OK(lma_comm_create(LMA_COMM_LOCAL, &w, &c));
    if (!c) return;
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {0};
    double d[2] = {0.5, -2};
    CHECK_OK(lma_comm_allreduce(c, a, 5));
    CHECK_OK(lma_comm_allreduce_f64(c, d, 2));
    CHECK_OK(lma_comm_reduce_scatter(c, a, b, 5));
    CHECK(a[0] == 1 && a[4] == 5 && d[0] == 0.5 && d[1] == -2 && b[0] == 1 && b[4] == 5, "world 1: sums are the inputs");
    memset(b, 0, sizeof b);
    CHECK_OK(lma_comm_allgather(c, a, b, 5));
    CHECK_OK(lma_comm_bcast(c, a, 5, 0));
    CHECK_OK(lma_comm_barrier(c));
    CHECK(b[2] == 3 && a[3] == 4 && lma_comm_rank(c) == 0 && lma_comm_world(c) == 1, "world 1: gather copies");
    CHECK(lma_comm_bcast(c, a, 5, 1) == LMA_ERR_ARG, "root outside the world refused");
    lma_clear_error();
    lma_comm_free(c);
    w.world = 2;
    CHECK(lma_comm_create(LMA_COMM_LOCAL, &w, &c) == LMA_ERR_ARG && !c, "a local comm of 2 refused");
    lma_clear_error();
    if (!lma_comm_have_mpi()) {
        CHECK(lma_comm_create(LMA_COMM_MPI, &w, &c) == LMA_ERR_UNSUPPORTED && strstr(lma_last_error(), "libopenmpi-dev"),
              "without MPI: %s", lma_last_error());
    } else {
        w.source = "torchrun";
        w.under_mpirun = 0;
        CHECK(lma_comm_create(LMA_COMM_MPI, &w, &c) == LMA_ERR_UNSUPPORTED && strstr(lma_last_error(), "mpirun"),
              "MPI of 2 without a launcher: %s", lma_last_error());
    }
    lma_clear_error();
    /* shards: contiguous, 16-aligned, covering [0, total) exactly */
    for (size_t total = 1; total < 200; total += 37)
        for (int W = 1; W <= 5; W++) {
            size_t prev = 0, lo, hi;
            int ok = 1;
            for (int r = 0; r < W; r++) {
                lma_dp_shard_range(total, W, r, &lo, &hi);
                ok &= lo == prev && hi >= lo && (lo % 16 == 0 || lo == total);
                prev = hi;
            }
            CHECK(ok && prev == total, "shards of %zu over %d ranks", total, W);
        }
}

/* under mpirun: rank r contributes values only it has; the sums are known in closed form */
static void mpi_tests(void) {
    lma_world w;
    CHECK_OK(lma_world_from_env(&w));
    lma_comm *c = NULL;
    CHECK_OK(lma_comm_create(LMA_COMM_MPI, &w, &c));
    if (!c) return;
    int r = lma_comm_rank(c), W = lma_comm_world(c);
    CHECK(r == w.rank && W == w.world && W >= 2, "mpi: rank %d of %d", r, W);
    enum { N = 1000 };
    float *a = malloc(N * W * sizeof(float)), *b = malloc(N * W * sizeof(float));
    for (int i = 0; i < N; i++) a[i] = (float)(i + 1) * (float)(r + 1); /* sum over ranks: (i+1) W(W+1)/2 */
    CHECK_OK(lma_comm_allreduce(c, a, N));
    int bad = 0;
    for (int i = 0; i < N; i++) bad += a[i] != (float)(i + 1) * (float)(W * (W + 1) / 2);
    CHECK(bad == 0, "all-reduce: %d wrong", bad);
    double d[2] = {0.25 * r, 1};
    CHECK_OK(lma_comm_allreduce_f64(c, d, 2));
    CHECK(d[0] == 0.25 * W * (W - 1) / 2 && d[1] == W, "all-reduce f64: %g %g", d[0], d[1]);
    /* reduce-scatter: send[q*N + i] = 1000 q + i + r; rank r gets sum_r' (1000 r + i + r') */
    for (int q = 0; q < W; q++)
        for (int i = 0; i < N; i++) a[q * N + i] = (float)(1000 * q + i + r);
    CHECK_OK(lma_comm_reduce_scatter(c, a, b, N));
    bad = 0;
    for (int i = 0; i < N; i++) bad += b[i] != (float)(W * (1000 * r + i) + W * (W - 1) / 2);
    CHECK(bad == 0, "reduce-scatter: %d wrong", bad);
    /* all-gather in place: rank q's block holds -q - i */
    for (int i = 0; i < N; i++) b[r * N + i] = (float)(-r - i);
    CHECK_OK(lma_comm_allgather(c, b + r * N, b, N));
    bad = 0;
    for (int q = 0; q < W; q++)
        for (int i = 0; i < N; i++) bad += b[q * N + i] != (float)(-q - i);
    CHECK(bad == 0, "all-gather: %d wrong", bad);
    for (int i = 0; i < N; i++) a[i] = r == W - 1 ? (float)i * 0.5f : -1.0f;
    CHECK_OK(lma_comm_bcast(c, a, N, W - 1));
    bad = 0;
    for (int i = 0; i < N; i++) bad += a[i] != (float)i * 0.5f;
    CHECK(bad == 0, "broadcast from the last rank: %d wrong", bad);
    CHECK_OK(lma_comm_barrier(c));
    free(a);
    free(b);
    lma_comm_free(c); /* MPI_Finalize */
}

/* NCCL's id from rank 0 to 3 forked ranks, by file and by socket (loopback), with the
 * ranks started in both orders */
static int share_in_children(int world, int port, int root_late) {
    pid_t kids[8];
    for (int r = 0; r < world; r++) {
        pid_t p = fork();
        if (p == 0) {
            if (r == 0 && root_late) usleep(300000); /* the others connect before rank 0 listens */
            lma_world w = {.rank = r, .world = world, .source = "torchrun", .master_port = port};
            snprintf(w.master_addr, sizeof w.master_addr, "127.0.0.1");
            unsigned char id[128];
            for (int i = 0; i < 128; i++) id[i] = r == 0 ? (unsigned char)(i * 7 + 3) : 0;
            if (lma_comm_share_id(&w, id) != LMA_OK) _exit(2);
            for (int i = 0; i < 128; i++) if (id[i] != (unsigned char)(i * 7 + 3)) _exit(3);
            _exit(0);
        }
        kids[r] = p;
    }
    int bad = 0;
    for (int r = 0; r < world; r++) {
        int st = 0;
        waitpid(kids[r], &st, 0);
        bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    return bad;
}

static void share_id_tests(void) {
    char dir[] = "/tmp/lma_dist_XXXXXX", file[64];
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    snprintf(file, sizeof file, "%s/nccl_id", dir);
    setenv("LMA_NCCL_ID_FILE", file, 1);
    CHECK(share_in_children(4, 0, 1) == 0, "id through a file: every rank has rank 0's bytes");
    unlink(file);
    unsetenv("LMA_NCCL_ID_FILE");
    int port = 20000 + (int)(getpid() % 20000);
    CHECK(share_in_children(4, port, 0) == 0, "id through a socket at MASTER_PORT+1 (%d)", port + 1);
    CHECK(share_in_children(3, port + 2, 1) == 0, "id through a socket, rank 0 started last");
    rmdir(dir);
}

int main(void) {
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE")) {
        mpi_tests();
    } else {
        world_env_tests();
        local_tests();
        share_id_tests();
    }
    TEST_END();
}
