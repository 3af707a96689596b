/* Output sets written as a whole, paths compared through symlinks, temporaries that a
 * signal does not leave behind.
 *
 * lma_outdir: a folder built at "<path>.tmp.<pid>" and renamed to <path> when complete.
 *   When <path> exists (the caller has decided it may be replaced: --overwrite, or its own
 *   earlier output such as a run's final/), the two are exchanged atomically
 *   (renameat2 RENAME_EXCHANGE) and the old one is removed, so a reader sees the old set
 *   or the new one, never a mix. A kill -9 leaves only "<path>.tmp.<pid>", which the next
 *   lma_outdir_begin on the same path removes (lma_remove_stale_tmp).
 * Temporaries: lma_atomic_open (core/io.h) and lma_outdir_begin register their temporary
 *   path; after lma_cleanup_install, SIGINT, SIGTERM and SIGHUP remove every registered
 *   temporary (files, and folders one level deep, with async-signal-safe calls only) and
 *   the process then dies of the signal as before. A handler installed later (the
 *   trainer's graceful stop) takes precedence while it is installed.
 * Failure: every function returns a status with the message set; on failure the
 *   destination is untouched and the temporary removed. */
#ifndef LMA_CORE_OUTDIR_H
#define LMA_CORE_OUTDIR_H
#include "core/status.h"

typedef struct {
    char path[4096];
    char tmp[4200];
    int slot; /* cleanup registry slot, -1 when not registered */
} lma_outdir;

lma_status lma_outdir_begin(lma_outdir *o, const char *path);
lma_status lma_outdir_commit(lma_outdir *o);
void lma_outdir_abort(lma_outdir *o);

/* rm -rf path (symlinks are removed, never followed). A missing path is not an error. */
lma_status lma_remove_tree(const char *path);
/* Removes "<path>.tmp.<pid>" siblings left by a killed process (pid not alive). */
void lma_remove_stale_tmp(const char *path);
/* 1 when path does not exist or is an empty folder. */
int lma_dir_is_empty(const char *path);

/* How path a relates to path b, both resolved through symlinks ("." and ".." too); a path
 * that does not exist yet is resolved from its nearest existing ancestor. */
typedef enum { LMA_PATH_APART, LMA_PATH_SAME, LMA_PATH_INSIDE /* a is inside b */, LMA_PATH_CONTAINS } lma_path_rel;
lma_path_rel lma_path_relate(const char *a, const char *b);

/* The temporary-path registry (used by core/io.c and lma_outdir). */
void lma_cleanup_install(void);
int lma_cleanup_register(const char *path, int is_dir); /* slot, or -1 when full (not fatal) */
void lma_cleanup_unregister(int slot);
#endif
