/* Output folders written as a whole, path relations, the temporary-path registry
 * (see outdir.h). */
#define _GNU_SOURCE
#include "core/outdir.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "core/io.h"

/* ---- the registry of temporaries ---------------------------------------------------- */

#define SLOTS 32
static char g_paths[SLOTS][4200];
static volatile sig_atomic_t g_used[SLOTS]; /* 0 free, 1 file, 2 folder */

int lma_cleanup_register(const char *path, int is_dir) {
    if (strlen(path) >= sizeof g_paths[0]) return -1;
    for (int i = 0; i < SLOTS; i++) {
        if (g_used[i]) continue;
        memcpy(g_paths[i], path, strlen(path) + 1);
        g_used[i] = is_dir ? 2 : 1;
        return i;
    }
    return -1;
}

void lma_cleanup_unregister(int slot) {
    if (slot >= 0 && slot < SLOTS) g_used[slot] = 0;
}

/* Removes the entries of a flat folder and the folder: open, getdents64, unlinkat and
 * rmdir are async-signal-safe (opendir/readdir allocate, so they are not used here). */
static void remove_flat_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[4096];
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0) break;
        for (long off = 0; off < n;) {
            struct { unsigned long long ino; long long off; unsigned short reclen; unsigned char type; char name[]; } *d =
                (void *)(buf + off);
            if (strcmp(d->name, ".") && strcmp(d->name, "..")) unlinkat(fd, d->name, 0);
            off += d->reclen;
        }
    }
    close(fd);
    rmdir(path);
}

static void on_fatal_signal(int sig) {
    for (int i = 0; i < SLOTS; i++) {
        if (g_used[i] == 1) unlink(g_paths[i]);
        else if (g_used[i] == 2) remove_flat_dir(g_paths[i]);
        g_used[i] = 0;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void lma_cleanup_install(void) {
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue; /* nohup */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigaction(sigs[i], &sa, NULL);
    }
}

/* ---- removal ------------------------------------------------------------------------ */

lma_status lma_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return LMA_OK;
        return lma_error(LMA_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return lma_error(LMA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        struct dirent *e;
        char sub[4200];
        lma_status s = LMA_OK;
        while (s == LMA_OK && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            s = lma_path_join(sub, sizeof sub, path, e->d_name);
            if (s == LMA_OK) s = lma_remove_tree(sub);
        }
        closedir(d);
        if (s != LMA_OK) return s;
        if (rmdir(path) != 0) return lma_error(LMA_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        return LMA_OK;
    }
    if (unlink(path) != 0) return lma_error(LMA_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return LMA_OK;
}

void lma_remove_stale_tmp(const char *path) {
    char dir[4096], base[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash[1] == 0) { *slash = 0; slash = strrchr(dir, '/'); } /* "a/b/" */
    if (slash) { snprintf(base, sizeof base, "%s", slash + 1); *slash = 0; if (!dir[0]) strcpy(dir, "/"); }
    else { snprintf(base, sizeof base, "%s", dir); strcpy(dir, "."); }
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, base, bl) || strncmp(e->d_name + bl, ".tmp.", 5)) continue;
        char *end = NULL;
        long pid = strtol(e->d_name + bl + 5, &end, 10);
        if (!end || *end || pid <= 0) continue;
        if (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) continue; /* alive: not ours */
        char sub[4200];
        if (lma_path_join(sub, sizeof sub, dir, e->d_name) == LMA_OK) lma_remove_tree(sub);
    }
    closedir(d);
}

int lma_dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return errno == ENOENT;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d))) empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

/* ---- output folders ------------------------------------------------------------------ */

lma_status lma_outdir_begin(lma_outdir *o, const char *path) {
    memset(o, 0, sizeof *o);
    o->slot = -1;
    if (strlen(path) >= sizeof o->path) return lma_error(LMA_ERR_ARG, "path too long: %s", path);
    strcpy(o->path, path);
    size_t n = strlen(o->path);
    while (n > 1 && o->path[n - 1] == '/') o->path[--n] = 0;
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld", o->path, (long)getpid());
    lma_remove_stale_tmp(o->path);
    LMA_TRY(lma_remove_tree(o->tmp));
    LMA_TRY(lma_mkdir_p(o->tmp));
    o->slot = lma_cleanup_register(o->tmp, 1);
    return LMA_OK;
}

static void fsync_path(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
}

/* fsyncs the files of a flat folder and the folder */
static void fsync_flat_dir(const char *path) {
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    char sub[4200];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && lma_path_join(sub, sizeof sub, path, e->d_name) == LMA_OK) fsync_path(sub);
    closedir(d);
    fsync_path(path);
}

lma_status lma_outdir_commit(lma_outdir *o) {
    if (!o->tmp[0]) return lma_error(LMA_ERR_ARG, "output folder committed twice");
    fsync_flat_dir(o->tmp);
    struct stat st;
    lma_status s = LMA_OK;
    if (lstat(o->path, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            s = lma_error(LMA_ERR_IO, "%s: exists and is not a folder", o->path);
        } else if (renameat2(AT_FDCWD, o->tmp, AT_FDCWD, o->path, RENAME_EXCHANGE) == 0) {
            s = lma_remove_tree(o->tmp); /* now the old set */
        } else {
            /* no RENAME_EXCHANGE on this file system: move the old set aside, then rename */
            char old[4300];
            snprintf(old, sizeof old, "%s.old.%ld", o->path, (long)getpid());
            if (rename(o->path, old) != 0)
                s = lma_error(LMA_ERR_IO, "%s: cannot replace: %s", o->path, strerror(errno));
            else if (rename(o->tmp, o->path) != 0) {
                int e = errno;
                rename(old, o->path);
                s = lma_error(LMA_ERR_IO, "%s: cannot rename: %s", o->tmp, strerror(e));
            } else {
                s = lma_remove_tree(old);
            }
        }
    } else if (rename(o->tmp, o->path) != 0) {
        s = lma_error(LMA_ERR_IO, "%s: cannot rename: %s", o->tmp, strerror(errno));
    }
    if (s != LMA_OK) { lma_outdir_abort(o); return s; }
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", o->path);
    char *slash = strrchr(parent, '/');
    if (slash) { *slash = 0; fsync_path(parent[0] ? parent : "/"); } else fsync_path(".");
    lma_cleanup_unregister(o->slot);
    o->slot = -1;
    o->tmp[0] = 0;
    return LMA_OK;
}

void lma_outdir_abort(lma_outdir *o) {
    if (o->tmp[0]) lma_remove_tree(o->tmp);
    lma_cleanup_unregister(o->slot);
    o->slot = -1;
    o->tmp[0] = 0;
}

/* ---- path relations ------------------------------------------------------------------ */

/* realpath of p, or of its nearest existing ancestor with the rest appended */
static void resolve(const char *p, char *out, size_t cap) {
    char buf[PATH_MAX], rest[PATH_MAX] = "";
    snprintf(buf, sizeof buf, "%s", p);
    for (;;) {
        char r[PATH_MAX];
        if (realpath(buf, r)) {
            snprintf(out, cap, "%s%s%s", r, rest[0] && strcmp(r, "/") ? "/" : "", rest);
            return;
        }
        char *slash = strrchr(buf, '/');
        char tail[PATH_MAX];
        if (snprintf(tail, sizeof tail, "%s%s%s", slash ? slash + 1 : buf, rest[0] ? "/" : "", rest) >= (int)sizeof tail) {
            snprintf(out, cap, "%s", p); /* too long to resolve: compared as spelled */
            return;
        }
        snprintf(rest, sizeof rest, "%s", tail);
        if (!slash) { strcpy(buf, "."); if (!realpath(buf, r)) { snprintf(out, cap, "%s", p); return; }
                      snprintf(out, cap, "%s/%s", r, rest); return; }
        if (slash == buf) { snprintf(out, cap, "/%s", rest); return; }
        *slash = 0;
    }
}

static int inside(const char *a, const char *b) { /* a strictly inside b */
    size_t n = strlen(b);
    if (n == 1 && b[0] == '/') return a[1] != 0;
    return strncmp(a, b, n) == 0 && a[n] == '/';
}

lma_path_rel lma_path_relate(const char *a, const char *b) {
    char ra[2 * PATH_MAX + 8], rb[2 * PATH_MAX + 8];
    resolve(a, ra, sizeof ra);
    resolve(b, rb, sizeof rb);
    if (!strcmp(ra, rb)) return LMA_PATH_SAME;
    if (inside(ra, rb)) return LMA_PATH_INSIDE;
    if (inside(rb, ra)) return LMA_PATH_CONTAINS;
    return LMA_PATH_APART;
}
