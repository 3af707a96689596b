/* The CLI's comm and the ranks' order around the run folder (dist.h). */
#include "dist.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend/backend.h"
#include "cli.h"

static lma_comm *g_comm;

lma_comm *cli_dist_comm(void) { return g_comm; }
int cli_dist_rank(void) { return lma_comm_rank(g_comm); }

/* One GPU a rank: the LOCAL_RANK-th of CUDA_VISIBLE_DEVICES (all of them when unset), made
 * the only one this process sees. A list of one (srun --gpus-per-task, lmadapt launch) stays. */
static void pick_gpu(const lma_world *w) {
    if (w->world < 2) return;
    const char *v = getenv("CUDA_VISIBLE_DEVICES");
    char one[64];
    if (!v) {
        snprintf(one, sizeof one, "%d", w->local_rank);
        setenv("CUDA_VISIBLE_DEVICES", one, 1);
        return;
    }
    int i = 0;
    for (const char *p = v; *p; i++) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (i == w->local_rank && c) { /* more than one listed: keep mine */
            snprintf(one, sizeof one, "%.*s", (int)(n < 60 ? n : 60), p);
            setenv("CUDA_VISIBLE_DEVICES", one, 1);
            return;
        }
        if (i == w->local_rank && i > 0) {
            snprintf(one, sizeof one, "%.*s", (int)(n < 60 ? n : 60), p);
            setenv("CUDA_VISIBLE_DEVICES", one, 1);
            return;
        }
        if (!c) break;
        p = c + 1;
    }
}

int cli_dist_setup(const char *cmd, cli_train_opts *o) {
    lma_world w;
    if (lma_world_from_env(&w) != LMA_OK) return cli_fail(cmd, NULL);
    if (!strcmp(w.source, "none")) {
        if (o->zero > 0) fprintf(stderr, "lmadapt %s: note: --zero %d on one process changes nothing\n", cmd, o->zero);
        return 0;
    }
    if (!o->device || !strncmp(o->device, "cuda", 4)) pick_gpu(&w); /* before the CUDA runtime starts (the backend below) */
    const lma_backend *be = NULL;
    if (cli_train_backend(o, &be) != LMA_OK) return cli_fail(cmd, NULL);
    lma_comm_kind kind = !strncmp(be->name, "cuda", 4) ? LMA_COMM_NCCL
                         : (w.world > 1 || w.under_mpirun) ? LMA_COMM_MPI : LMA_COMM_LOCAL;
    if (g_comm) lma_comm_free(g_comm);
    g_comm = NULL;
    if (lma_comm_create(kind, &w, &g_comm) != LMA_OK) return cli_fail(cmd, NULL);
    o->tp.comm = g_comm;
    o->tp.zero = o->zero;
    if (w.rank > 0 && w.world > 1 && !getenv("LMA_DIST_ALL_STDOUT")) /* one report of the run, rank 0's */
        if (!freopen("/dev/null", "w", stdout)) return cli_fail(cmd, "cannot silence the stdout of rank > 0");
    if (w.rank == 0)
        printf("distributed: %d rank%s (%s variables), %s comm, ZeRO stage %d\n", w.world, w.world > 1 ? "s" : "",
               w.source, lma_comm_name(g_comm), o->zero);
    fflush(stdout);
    return 0;
}

int cli_dist_agree(int rc) {
    if (!g_comm || lma_comm_world(g_comm) == 1) return rc;
    double v[2] = {rc != 0, 0};
    /* the smallest rank's non-zero rc: every rank adds its own only when it is the first */
    if (lma_comm_allreduce_f64(g_comm, v, 1) != LMA_OK) return rc ? rc : 1;
    return rc ? rc : v[0] > 0 ? 1 : 0;
}

int cli_dist_root_first(int (*first)(void *), int (*then)(void *), void *ctx) {
    if (!g_comm || lma_comm_world(g_comm) == 1) return first(ctx);
    int rank = lma_comm_rank(g_comm), rc = rank == 0 ? first(ctx) : 0;
    rc = cli_dist_agree(rc);
    if (rc) return rc;
    if (rank > 0 && then) rc = then(ctx);
    return cli_dist_agree(rc);
}

void cli_dist_end(int rc) {
    if (!g_comm) return;
    if (rc != 0 && lma_comm_world(g_comm) > 1) lma_comm_abort(g_comm, rc);
    lma_comm_free(g_comm);
    g_comm = NULL;
}
