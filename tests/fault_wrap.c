/* Fault injection (SQLite's style), in builds configured with -DLMA_FAULT=ON only:
 * this file is linked into the lmadapt executable with -Wl,--wrap for the calls below, so every call
 * lmadapt's own code makes goes through a counter. LMA_FAULT_AT=N makes the N-th such call
 * fail (once) the way the system would: malloc/calloc/realloc return NULL (ENOMEM);
 * fwrite writes nothing, fflush/fsync/write/rename/mkdir/open fail (ENOSPC, EIO). With
 * LMA_FAULT_COUNT=1 the number of calls is printed at exit ("lmadapt-fault: N calls"),
 * which is how tests/fault.sh learns how many points to try. Calls from other libraries
 * (OpenBLAS, cJSON, libc itself) are not counted. */
#ifdef LMA_FAULT
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
size_t __real_fwrite(const void *p, size_t s, size_t n, FILE *f);
int __real_fflush(FILE *f);
int __real_fsync(int fd);
ssize_t __real_write(int fd, const void *p, size_t n);
int __real_rename(const char *a, const char *b);
int __real_mkdir(const char *p, mode_t m);

static atomic_long g_calls;
static long g_at = -1; /* 0: not read yet */
static int g_count;

static void report(void) { fprintf(stderr, "lmadapt-fault: %ld calls\n", (long)atomic_load(&g_calls)); }

static int hit(void) {
    if (g_at < 0) {
        const char *a = getenv("LMA_FAULT_AT"), *c = getenv("LMA_FAULT_COUNT");
        g_at = a ? atol(a) : 0;
        if (c && *c == '1' && !g_count) { g_count = 1; atexit(report); }
    }
    long k = atomic_fetch_add(&g_calls, 1) + 1;
    return g_at > 0 && k == g_at;
}

void *__wrap_malloc(size_t n) { if (hit()) { errno = ENOMEM; return NULL; } return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { if (hit()) { errno = ENOMEM; return NULL; } return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { if (hit()) { errno = ENOMEM; return NULL; } return __real_realloc(p, n); }
size_t __wrap_fwrite(const void *p, size_t s, size_t n, FILE *f) {
    if (hit()) { errno = ENOSPC; return 0; }
    return __real_fwrite(p, s, n, f);
}
int __wrap_fflush(FILE *f) { if (hit()) { errno = ENOSPC; return EOF; } return __real_fflush(f); }
int __wrap_fsync(int fd) { if (hit()) { errno = EIO; return -1; } return __real_fsync(fd); }
ssize_t __wrap_write(int fd, const void *p, size_t n) { if (hit()) { errno = ENOSPC; return -1; } return __real_write(fd, p, n); }
int __wrap_rename(const char *a, const char *b) { if (hit()) { errno = EIO; return -1; } return __real_rename(a, b); }
int __wrap_mkdir(const char *p, mode_t m) { if (hit()) { errno = ENOSPC; return -1; } return __real_mkdir(p, m); }
#endif
