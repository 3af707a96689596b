/* libFuzzer target: the option parser of every command (argv fuzzing). The input is
 * split at NUL and newline bytes into at most 24 arguments after "lmadapt"; the first
 * byte picks the command (and "data"/"tokenizer" actions come from the input itself).
 * cli_parse_only makes every command return after parsing and checking its options, so
 * nothing runs: the property is no crash, no hang, no leak, and an exit status of 0 or 2
 * (1 only for a command's own checks after parsing). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../cli/cli.h"

static const char *const cmds[] = {"demo", "pretrain", "cpt", "tokenizer", "sft", "merge", "export", "generate",
                                   "chat", "score", "eval", "data", "nosuchcommand", "--help", "-V"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    char *buf = malloc(size);
    if (!buf) return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = 0;
    char *argv[28];
    int argc = 0;
    argv[argc++] = "lmadapt";
    argv[argc++] = (char *)cmds[data[0] % (sizeof cmds / sizeof cmds[0])];
    char *p = buf, *end = buf + size - 1;
    while (p < end && argc < 26) {
        argv[argc++] = p;
        while (p < end && *p && *p != '\n') p++;
        *p++ = 0;
    }
    argv[argc] = NULL;
    cli_parse_only = 1;
    int rc = cli_main(argc, argv);
    free(buf);
    if (rc < 0 || rc > 2) abort();
    return 0;
}
