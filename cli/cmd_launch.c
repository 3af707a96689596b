/* lmadapt launch: N training processes on this machine (docs/distributed.md).
 *   --device cpu:  the MPI comm: execs `mpirun -n N --bind-to none` on the command (Open MPI
 *                  starts and wires the processes; no transport of ours);
 *   --device cuda: forks N processes, one a GPU (CUDA_VISIBLE_DEVICES=LOCAL_RANK), with
 *                  RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, MASTER_PORT, and
 *                  LMA_NCCL_ID_FILE in a fresh temporary folder through which rank 0 hands
 *                  NCCL's unique id to the others. The first process to fail stops the
 *                  others (SIGTERM); SIGINT/SIGTERM are passed on (each rank saves a
 *                  checkpoint at the same step). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "backend/backend.h"
#include "cli.h"
#include "core/io.h"
#include "opts.h"

static const char *const device_names[] = {"auto", "cpu", "cuda", NULL};
enum { DEV_AUTO, DEV_CPU, DEV_CUDA };

static pid_t g_kids[1024];
static int g_nkids;
static void pass_on(int sig) {
    for (int i = 0; i < g_nkids; i++)
        if (g_kids[i] > 0) kill(g_kids[i], sig);
}

/* mpirun from PATH, or NULL */
static int have_program(const char *name) {
    const char *path = getenv("PATH");
    char buf[4096];
    while (path && *path) {
        const char *c = strchr(path, ':');
        size_t n = c ? (size_t)(c - path) : strlen(path);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, name);
        if (access(buf, X_OK) == 0) return 1;
        path = c ? c + 1 : NULL;
    }
    return 0;
}

static int run_mpirun(int n, int argc, char **cmd) {
    if (!have_program("mpirun"))
        return cli_fail("launch", "--device cpu runs the ranks through MPI, and mpirun is not on PATH (apt install "
                        "openmpi-bin libopenmpi-dev)");
    char **av = calloc((size_t)argc + 8, sizeof *av);
    char nbuf[16], self[4096];
    if (!av) return cli_fail("launch", "out of memory");
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) return cli_fail("launch", "cannot find the lmadapt executable (/proc/self/exe)");
    self[k] = 0;
    snprintf(nbuf, sizeof nbuf, "%d", n);
    int j = 0;
    av[j++] = "mpirun";
    av[j++] = "-n";
    av[j++] = nbuf;
    av[j++] = "--bind-to"; /* the ranks' OpenMP threads spread as the OS sees fit */
    av[j++] = "none";
    /* the command: lmadapt's own path for "lmadapt" */
    av[j++] = !strcmp(cmd[0], "lmadapt") ? self : cmd[0];
    for (int i = 1; i < argc; i++) av[j++] = cmd[i];
    av[j] = NULL;
    fflush(stdout);
    execvp("mpirun", av);
    int e = errno;
    free(av);
    fprintf(stderr, "lmadapt launch: cannot run mpirun: %s\n", strerror(e));
    return 1;
}

static int run_forked(int n, int port, int argc, char **cmd) {
    char tmpl[] = "/tmp/lmadapt-launch-XXXXXX", idfile[128], self[4096];
    if (!mkdtemp(tmpl)) return cli_fail("launch", "cannot make a temporary folder for the NCCL id");
    snprintf(idfile, sizeof idfile, "%s/nccl_id", tmpl);
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) return cli_fail("launch", "cannot find the lmadapt executable (/proc/self/exe)");
    self[k] = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pass_on;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fflush(stdout);
    fflush(stderr);
    g_nkids = n;
    for (int r = 0; r < n; r++) {
        pid_t p = fork();
        if (p < 0) { pass_on(SIGTERM); return cli_fail("launch", "fork failed"); }
        if (p == 0) {
            char v[32];
            snprintf(v, sizeof v, "%d", r); setenv("RANK", v, 1); setenv("LOCAL_RANK", v, 1);
            if (!getenv("CUDA_VISIBLE_DEVICES")) setenv("CUDA_VISIBLE_DEVICES", v, 1);
            snprintf(v, sizeof v, "%d", n); setenv("WORLD_SIZE", v, 1); setenv("LOCAL_WORLD_SIZE", v, 1);
            snprintf(v, sizeof v, "%d", port); setenv("MASTER_PORT", v, 1);
            setenv("MASTER_ADDR", "127.0.0.1", 1);
            setenv("LMA_NCCL_ID_FILE", idfile, 1);
            setenv("NCCL_NVLS_ENABLE", "0", 1); /* no NVLink multicast */
            execv(!strcmp(cmd[0], "lmadapt") ? self : cmd[0], cmd);
            execvp(cmd[0], cmd);
            fprintf(stderr, "lmadapt launch: rank %d: cannot run %s: %s\n", r, cmd[0], strerror(errno));
            _exit(127);
        }
        g_kids[r] = p;
    }
    (void)argc;
    int rc = 0, left = n;
    while (left > 0) {
        int st;
        pid_t p = wait(&st);
        if (p < 0) { if (errno == EINTR) continue; break; }
        int r = -1;
        for (int i = 0; i < n; i++) if (g_kids[i] == p) r = i;
        if (r < 0) continue;
        g_kids[r] = 0;
        left--;
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (code && !rc) {
            rc = code;
            fprintf(stderr, "lmadapt launch: rank %d exited with %d: stopping the others\n", r, code);
            pass_on(SIGTERM);
        }
    }
    unlink(idfile);
    rmdir(tmpl);
    return rc;
}

int cmd_launch(int argc, char **argv) {
    int n = 1, device = DEV_AUTO, port = 29500;
    int split = argc;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) { split = i; break; }
    cli_opt own[] = {
        CLI_INT("nproc", 'n', &n, 1, 1024, "N", "processes (ranks) on this machine, one a GPU with cuda"),
        CLI_CHOOSE("device", 0, &device, device_names, NULL, NULL,
                   "cpu: through mpirun (MPI comm); cuda: forked, NCCL comm; auto: cuda\n"
                   "when a GPU is present"),
        CLI_INT("port", 0, &port, 1, 65535, "P", "MASTER_PORT of the forked ranks (cuda)"),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "launch",
        .usage = "lmadapt launch -n N [--device cpu|cuda] -- lmadapt <training command> [options]",
        .about = "Runs a training command as N data-parallel processes on this machine: on CPU through\n"
                 "mpirun (the MPI comm), on GPUs as N forked processes that agree on an NCCL comm. The\n"
                 "training command's --batch is the global micro-batch (each rank trains on its slice of\n"
                 "rows) and its --zero picks the ZeRO stage. Rank 0 writes the run folder. On a cluster,\n"
                 "start lmadapt under torchrun, srun or mpirun instead (docs/distributed.md).\n",
        .groups = groups,
        .epilog = "\nExample:\n  lmadapt launch -n 2 --device cpu -- lmadapt sft --model base/ --data chat.jsonl \\\n"
                  "      --out runs/sft --batch 8 --zero 2\n"};
    cli_args a;
    int rc = cli_parse(&spec, split, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (split >= argc - 1) return cli_usage_error("launch", "the command to run follows '--' (-- lmadapt sft ...)");
    char **cmd = argv + split + 1;
    int cargc = argc - split - 1;
    if (device == DEV_AUTO) {
        const lma_backend *be = NULL;
        device = lma_backend_select(NULL, &be) == LMA_OK && be && !strncmp(be->name, "cuda", 4) ? DEV_CUDA : DEV_CPU;
        lma_clear_error();
    }
    return device == DEV_CPU ? run_mpirun(n, cargc, cmd) : run_forked(n, port, cargc, cmd);
}
