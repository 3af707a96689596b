#include "core/io.h"
#include "core/buf.h"
#include "core/outdir.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens path read-only without blocking and checks that it is a regular file. */
static lma_status open_regular(const char *path, int *fd_out, struct stat *st) {
    *fd_out = -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return lma_error(LMA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, st) != 0) {
        int e = errno; close(fd);
        return lma_error(LMA_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        if (S_ISDIR(st->st_mode)) return lma_error(LMA_ERR_IO, "%s: is a directory; a file is expected here", path);
        return lma_error(LMA_ERR_IO, "%s: not a regular file (a FIFO, device or socket); lmadapt reads regular files only",
                         path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fd_out = fd;
    return LMA_OK;
}

lma_status lma_fopen_input(const char *path, FILE **f) {
    *f = NULL;
    int fd;
    struct stat st;
    LMA_TRY(open_regular(path, &fd, &st));
    *f = fdopen(fd, "rb");
    if (!*f) { int e = errno; close(fd); return lma_error(LMA_ERR_IO, "%s: cannot open: %s", path, strerror(e)); }
    return LMA_OK;
}

lma_status lma_map_file(const char *path, lma_map *m) {
    m->data = NULL; m->len = 0;
    int fd;
    struct stat st;
    LMA_TRY(open_regular(path, &fd, &st));
    if (st.st_size == 0) { close(fd); return LMA_OK; }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return lma_error(LMA_ERR_IO, "%s: cannot mmap: %s", path, strerror(e));
    m->data = p; m->len = (size_t)st.st_size;
    return LMA_OK;
}

void lma_unmap_file(lma_map *m) {
    if (m->data) munmap((void *)m->data, m->len);
    m->data = NULL; m->len = 0;
}

static lma_status too_big(const char *path, size_t max) {
    return lma_error(LMA_ERR_IO, "%s: larger than the %zu MiB limit for this kind of file (docs/reliability.md)", path,
                     max >> 20);
}

lma_status lma_read_file_max(const char *path, size_t max, char **data, size_t *len) {
    *data = NULL; if (len) *len = 0;
    int fd;
    struct stat st;
    LMA_TRY(open_regular(path, &fd, &st));
    if ((uint64_t)st.st_size > max) { close(fd); return too_big(path, max); }
    size_t cap = (size_t)st.st_size + 2, n = 0; /* a file that grows while read is followed, up to max */
    char *buf = malloc(cap);
    if (!buf) { close(fd); return lma_error(LMA_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, cap); }
    for (;;) {
        if (n + 1 >= cap) {
            if (n >= max) { free(buf); close(fd); return too_big(path, max); }
            lma_status gs = lma_grow(&buf, &cap, n + 2, 1, 0, path);
            if (gs) { free(buf); close(fd); return gs; }
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno; free(buf); close(fd);
            return lma_error(LMA_ERR_IO, "%s: read error: %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (n > max) { free(buf); return too_big(path, max); }
    buf[n] = 0;
    *data = buf; if (len) *len = n;
    return LMA_OK;
}

lma_status lma_read_file(const char *path, char **data, size_t *len) {
    return lma_read_file_max(path, LMA_LIMIT_READ, data, len);
}

int lma_file_exists(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISREG(st.st_mode); }
int lma_is_dir(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISDIR(st.st_mode); }

lma_status lma_path_join(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return lma_error(LMA_ERR_ARG, "path too long: %s/%s", dir, name);
    return LMA_OK;
}

lma_status lma_mkdir_p(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return lma_error(LMA_ERR_ARG, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i]; buf[i] = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return lma_error(LMA_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    if (!lma_is_dir(path)) return lma_error(LMA_ERR_IO, "%s: exists and is not a directory", path);
    return LMA_OK;
}

lma_status lma_atomic_open(lma_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    af->slot = -1;
    if (strlen(path) >= sizeof af->path) return lma_error(LMA_ERR_ARG, "path too long: %s", path);
    strcpy(af->path, path);
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp.%ld", path, (long)getpid());
    af->slot = lma_cleanup_register(af->tmp, 0);
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        int e = errno;
        lma_atomic_abort(af);
        return lma_error(LMA_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    return LMA_OK;
}

lma_status lma_atomic_write(lma_atomic_file *af, const void *data, size_t len) {
    if (!af->f) return lma_error(LMA_ERR_ARG, "atomic write on a closed file");
    if (len && fwrite(data, 1, len, af->f) != len) {
        int e = errno;
        lma_atomic_abort(af);
        return lma_error(LMA_ERR_IO, "%s: write failed: %s", af->path, strerror(e));
    }
    return LMA_OK;
}

static void fsync_dir(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY);
    if (fd >= 0) { fsync(fd); close(fd); }
}

lma_status lma_atomic_commit(lma_atomic_file *af) {
    if (!af->f) return lma_error(LMA_ERR_ARG, "atomic commit on a closed file");
    int bad = fflush(af->f) != 0;
    int e = errno;
    if (!bad && fsync(fileno(af->f)) != 0) { bad = 1; e = errno; }
    if (fclose(af->f) != 0 && !bad) { bad = 1; e = errno; }
    af->f = NULL;
    if (!bad && rename(af->tmp, af->path) != 0) {
        e = errno;
        lma_atomic_abort(af);
        return lma_error(LMA_ERR_IO, "%s: rename failed: %s", af->path, strerror(e));
    }
    if (bad) {
        lma_atomic_abort(af);
        return lma_error(LMA_ERR_IO, "%s: write failed: %s", af->path, strerror(e));
    }
    lma_cleanup_unregister(af->slot);
    af->slot = -1;
    af->tmp[0] = 0;
    fsync_dir(af->path);
    return LMA_OK;
}

/* Removes the temporary file (if any) and releases its registry slot; idempotent. */
void lma_atomic_abort(lma_atomic_file *af) {
    if (af->f) { fclose(af->f); af->f = NULL; }
    if (af->tmp[0]) unlink(af->tmp);
    lma_cleanup_unregister(af->slot);
    af->slot = -1;
    af->tmp[0] = 0;
}

lma_status lma_write_file_atomic(const char *path, const void *data, size_t len) {
    lma_atomic_file af;
    LMA_TRY(lma_atomic_open(&af, path));
    LMA_TRY(lma_atomic_write(&af, data, len));
    return lma_atomic_commit(&af);
}

lma_status lma_copy_file(const char *src, const char *dst) {
    char *data = NULL;
    size_t len = 0;
    LMA_TRY(lma_read_file(src, &data, &len));
    lma_status s = lma_write_file_atomic(dst, data, len);
    free(data);
    return s;
}
