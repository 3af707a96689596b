/* The CLI's side of distributed training (docs/distributed.md): the process's comm made
 * from the launcher's environment (dist/comm.h), the order in which ranks touch the run
 * folder, and the end of the job (MPI_Finalize, or abort on a failure so that no rank
 * waits forever). One comm a process, owned here. */
#ifndef LMA_CLI_DIST_H
#define LMA_CLI_DIST_H
#include "dist/comm.h"
#include "train_flags.h"

/* After parsing a training command: when a launcher's variables are present (RANK/WORLD_SIZE,
 * OMPI_COMM_WORLD_*, SLURM_*), makes the comm (NCCL for --device cuda, else MPI; a local one
 * for world size 1 outside mpirun) into o->tp.comm, with o->zero. 0 ok, 1 failed (printed). */
int cli_dist_setup(const char *cmd, cli_train_opts *o);
lma_comm *cli_dist_comm(void);
int cli_dist_rank(void);
/* Rank 0 runs first(ctx); its result reaches every rank, and then the others run
 * then(ctx) (NULL: nothing); every rank returns the first non-zero result of any rank (1
 * on a rank that did not fail itself). Without a comm: first(ctx) alone. */
int cli_dist_root_first(int (*first)(void *), int (*then)(void *), void *ctx);
/* Every rank's rc, agreed: the first non-zero one (0 when all are 0). */
int cli_dist_agree(int rc);
/* After the command: rc 0 ends the comm (MPI_Finalize); otherwise, with several ranks,
 * aborts the job with rc. */
void cli_dist_end(int rc);
#endif
