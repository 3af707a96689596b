/* Constant memory: validate, stats --no-dup, filter and decontam run (as the CLI,
 * in child processes) on generated 100k- and 1M-line files; the peak RSS of the
 * child (wait4 rusage) must not grow with the line count. dedup's state grows with
 * the kept examples by design: its peak is printed, not bounded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/rng.h"
#include "test.h"

static const char *words[] = {"the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "at",
                              "from", "river", "stone", "garden", "music", "planet", "window", "letter", "winter",
                              "question", "answer", "number", "market", "yellow", "quickly", "bridge", "forest", "coffee"};
#define NW (sizeof words / sizeof words[0])

static void gen(const char *path, long lines) {
    FILE *f = test_fopen(path, "wb");
    static char buf[1 << 16];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    lma_rng r; lma_rng_seed(&r, 99);
    for (long i = 0; i < lines; i++) {
        fputs("{\"messages\":[{\"role\":\"user\",\"content\":\"", f);
        for (int k = 0; k < 10; k++) fprintf(f, "%s ", words[lma_rng_below(&r, NW)]);
        fprintf(f, "%ld?\"},{\"role\":\"assistant\",\"content\":\"", i);
        for (int k = 0; k < 16; k++) fprintf(f, k ? " %s" : "%s", words[lma_rng_below(&r, NW)]);
        fputs(".\"}]}\n", f);
    }
    CHECK(!ferror(f) && fclose(f) == 0, "%s written", path);
}

/* Runs LMA_CLI with args (NULL-terminated), stdout to /dev/null; returns peak RSS in KB,
 * or -1 when it did not run to a successful end (exit status 0: the generated files are
 * valid, so validate finds no errors and every command succeeds). */
static long run_rss(char *const *args) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) { dup2(fd, 1); close(fd); }
        execv(LMA_CLI, args);
        _exit(127);
    }
    int status; struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) return -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    return ru.ru_maxrss;
}

#if defined(__SANITIZE_ADDRESS__)
#define LMA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LMA_ASAN 1
#endif
#endif

int main(void) {
    const char *small = "test_data_memory.100k.jsonl", *big = "test_data_memory.1m.jsonl";
    const char *eval = "test_data_memory.eval.txt";
#ifdef LMA_ASAN
    /* ASan's quarantine keeps freed memory, so RSS says nothing here: run smaller
     * files for the error checks only; the bound is checked in normal builds. */
    long n_small = 20000, n_big = 200000;
    int bound = 0;
#else
    long n_small = 100000, n_big = 1000000;
    int bound = 1;
#endif
    gen(small, n_small);
    gen(big, n_big);
    FILE *f = test_fopen(eval, "wb");
    fputs("the river and the stone of the garden with music in the planet window letter winter\n", f);
    CHECK(fclose(f) == 0, "%s written", eval);
    struct { const char *name; char *args[10]; } cmds[] = {
        {"validate", {"lmadapt", "data", "validate", NULL, NULL}},
        {"stats", {"lmadapt", "data", "stats", NULL, "--no-dup", NULL}},
        {"filter", {"lmadapt", "data", "filter", NULL, "-o", "test_data_memory.out.jsonl", "--removed", "test_data_memory.removed.jsonl", NULL}},
        {"decontam", {"lmadapt", "data", "decontam", NULL, "--eval", (char *)eval, "-o", "test_data_memory.out.jsonl", NULL}},
    };
    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
        cmds[c].args[3] = (char *)small;
        long a = run_rss(cmds[c].args);
        cmds[c].args[3] = (char *)big;
        long b = run_rss(cmds[c].args);
        printf("%-9s peak RSS: %ld lines %ld KB, %ld lines %ld KB\n", cmds[c].name, n_small, a, n_big, b);
        CHECK(a > 0 && b > 0, "%s ran", cmds[c].name);
        /* 900k more lines: growth of even 8 bytes a line (7 MB) would exceed this */
        if (bound) CHECK(b <= a + a / 10 + 4096, "%s: peak RSS grows with the line count (%ld KB -> %ld KB)", cmds[c].name, a, b);
    }
    char *dd[] = {"lmadapt", "data", "dedup", (char *)small, "-o", "test_data_memory.out.jsonl", NULL};
    long dr = run_rss(dd);
    CHECK(dr > 0, "dedup ran");
    printf("dedup     peak RSS: %ld lines %ld KB (grows with the kept examples, by design)\n", n_small, dr);
    remove(small); remove(big); remove(eval);
    remove("test_data_memory.out.jsonl"); remove("test_data_memory.removed.jsonl");
    TEST_END();
}
