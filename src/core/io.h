/* Checked file i/o.
 * - lma_map: read-only mmap of a whole file (empty files map to len 0, data NULL).
 * - lma_read_file: whole file into a malloc'd, NUL-terminated buffer (caller frees),
 *   at most LMA_LIMIT_READ bytes; lma_read_file_max with the limit of a kind of file.
 * - Inputs are regular files: every reader opens through lma_fopen_input (or the two
 *   above), which opens without blocking (a FIFO is refused, not waited on) and refuses
 *   directories, devices and sockets with one line naming the path. /dev/zero as
 *   config.json is "not a regular file", a 20 GB config.json "more than the limit".
 * - lma_atomic_*: write to "<path>.tmp.<pid>", fsync, rename over <path>, fsync the
 *   directory. A crash or a full disk leaves the old file intact; on any error the
 *   temporary file is removed and the destination is untouched. */
#ifndef LMA_CORE_IO_H
#define LMA_CORE_IO_H
#include <stddef.h>
#include <stdio.h>
#include "core/status.h"

typedef struct {
    const unsigned char *data;
    size_t len;
} lma_map;

/* Size limits of the files read whole (docs/reliability.md). */
#define LMA_LIMIT_JSON ((size_t)64 << 20)       /* config.json, tokenizer_config.json, adapter and trainer JSON */
#define LMA_LIMIT_TOKENIZER ((size_t)512 << 20) /* tokenizer.json (Llama 3's is 9 MB) */
#define LMA_LIMIT_READ ((size_t)1 << 30)        /* any other file read whole (prompts, --file, eval sets) */

lma_status lma_map_file(const char *path, lma_map *m);
void lma_unmap_file(lma_map *m);
lma_status lma_read_file(const char *path, char **data, size_t *len);
lma_status lma_read_file_max(const char *path, size_t max, char **data, size_t *len);
/* Opens an input for reading ("rb"); refuses what is not a regular file. */
lma_status lma_fopen_input(const char *path, FILE **f);
int lma_file_exists(const char *path);
int lma_is_dir(const char *path);
lma_status lma_mkdir_p(const char *path);
/* Joins dir and name into out (size cap); error if it does not fit. */
lma_status lma_path_join(char *out, size_t cap, const char *dir, const char *name);

typedef struct {
    FILE *f;
    char path[4096];
    char tmp[4200];
    int slot; /* in the temporary-path registry (core/outdir.h): removed on SIGINT/SIGTERM */
} lma_atomic_file;

lma_status lma_atomic_open(lma_atomic_file *af, const char *path);
lma_status lma_atomic_write(lma_atomic_file *af, const void *data, size_t len);
lma_status lma_atomic_commit(lma_atomic_file *af); /* fsync + rename + dir fsync */
void lma_atomic_abort(lma_atomic_file *af);        /* removes the temporary file */
/* Copies a file atomically (whole file in memory: for small files such as tokenizer.json). */
lma_status lma_copy_file(const char *src, const char *dst);
/* One-shot: the whole buffer, atomically. */
lma_status lma_write_file_atomic(const char *path, const void *data, size_t len);
#endif
