/* cli training workflows (issue "training workflows"):
 *  - pretrain killed with SIGKILL at random moments and resumed with --resume,
 *    again and again, logs losses bitwise identical to an uninterrupted run;
 *  - cpt mixes replay tokens at the requested share (within 1%);
 *  - sft runs end to end on a chat file and a malformed line stops it before
 *    training with file and line. */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core/io.h"
#include "core/rng.h"
#include "test.h"

static char tmp[64];

static int run_cli_sig(char *const args[], int kill_after_ms, int sig) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", 1);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        execv(LMA_CLI, args);
        _exit(127);
    }
    if (kill_after_ms > 0) {
        struct timespec ts = {kill_after_ms / 1000, (long)(kill_after_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, sig);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st)) return -WTERMSIG(st);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_cli(char *const args[], int kill_after_ms) { return run_cli_sig(args, kill_after_ms, SIGKILL); }

static int read_losses(const char *run, char lines[][48], int cap) {
    char path[512], *d = NULL;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    if (lma_read_file(path, &d, NULL) != LMA_OK) { lma_clear_error(); return 0; }
    int n = 0;
    for (char *p = d; (p = strstr(p, "\"loss\": ")) && n < cap; p++) {
        char *e = strchr(p, ',');
        snprintf(lines[n++], 48, "%.*s", (int)(e - p), p);
    }
    free(d);
    return n;
}

static void test_kill_resume(const char *data, const char *tok) {
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/full", tmp);
    snprintf(b, sizeof b, "%s/killed", tmp);
#define ARGS(out, flag) {(char *)LMA_CLI, "pretrain", "--data", (char *)data, "--tokenizer", (char *)tok, "--preset", \
        "tiny", flag, out, "--steps", "24", "--batch", "2", "--seq", "64", "--save-every", "3", "--eval-every", "6", \
        "--eval-batches", "2", "--threads", "2", "--lr", "3e-3", "--keep", "2", NULL}
    char *full[] = ARGS(a, "--out");
    CHECK(run_cli(full, 0) == 0, "uninterrupted run");
    static char la[64][48], lb[64][48];
    int na = read_losses(a, la, 64);
    CHECK(na == 24, "24 steps logged (%d)", na);
    /* kill at random moments, then resume until it finishes */
    lma_rng r;
    lma_rng_seed(&r, (uint64_t)time(NULL));
    char *first[] = ARGS(b, "--out");
    char *resume[] = ARGS(b, "--resume");
    int rc = run_cli(first, 150 + (int)lma_rng_below(&r, 500)), kills = rc == -SIGKILL;
    for (int i = 0; i < 40 && rc != 0; i++) {
        int delay = i < 5 ? 100 + (int)lma_rng_below(&r, 700) : 0;
        rc = run_cli(resume, delay);
        kills += rc == -SIGKILL;
    }
#undef ARGS
    CHECK(rc == 0, "the killed run finishes after resuming (last status %d)", rc);
    CHECK(kills >= 1, "at least one kill -9 landed (%d)", kills);
    int nb = read_losses(b, lb, 64), same = na == nb;
    for (int i = 0; same && i < na; i++) same = !strcmp(la[i], lb[i]);
    printf("kill/resume: %d kills\n", kills);
    CHECK(same, "losses after %d kills and resumes are bitwise identical (%d vs %d lines)", kills, na, nb);
    if (!same) for (int i = 0; i < na && i < nb; i++) if (strcmp(la[i], lb[i])) { fprintf(stderr, "step %d: %s vs %s\n", i + 1, la[i], lb[i]); break; }
}

/* Ctrl-C (SIGINT): the step finishes, a checkpoint is saved, the exit status is 1;
 * --resume then finishes with the same losses as the uninterrupted run. */
static void test_sigint(const char *data, const char *tok) {
    char a[256], c[256], latest[300];
    snprintf(a, sizeof a, "%s/full", tmp);
    snprintf(c, sizeof c, "%s/interrupted", tmp);
    char *first[] = {(char *)LMA_CLI, "pretrain", "--data", (char *)data, "--tokenizer", (char *)tok, "--preset", "tiny",
                     "--out", c, "--steps", "24", "--batch", "2", "--seq", "64", "--save-every", "100", "--eval-every",
                     "6", "--eval-batches", "2", "--threads", "2", "--lr", "3e-3", "--keep", "2", NULL};
    char *resume[] = {(char *)LMA_CLI, "pretrain", "--data", (char *)data, "--tokenizer", (char *)tok, "--preset", "tiny",
                      "--resume", c, "--steps", "24", "--batch", "2", "--seq", "64", "--save-every", "3", "--eval-every",
                      "6", "--eval-batches", "2", "--threads", "2", "--lr", "3e-3", "--keep", "2", NULL};
    static char la[64][48], lc[64][48];
    int rc = -1, landed = 0;
    /* interrupt after a delay that lands inside training (retry later if the run was faster) */
    for (int delay = 300; delay <= 2400 && !landed; delay *= 2) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf %s", c);
        if (system(cmd) != 0) break;
        rc = run_cli_sig(first, delay, SIGINT);
        snprintf(latest, sizeof latest, "%s/latest", c);
        landed = rc == 1 && lma_file_exists(latest);
    }
    CHECK(landed, "SIGINT mid-run exits 1 with a checkpoint and 'latest' written (status %d)", rc);
    if (!landed) return;
    char *d = NULL;
    CHECK_OK(lma_read_file(latest, &d, NULL));
    int step = d ? atoi(d + 5) : 0;
    free(d);
    CHECK(step > 0 && step < 24, "interrupted at step %d (checkpoint-every is 100: this one is the Ctrl-C save)", step);
    CHECK(run_cli(resume, 0) == 0, "resume after Ctrl-C finishes");
    int na = read_losses(a, la, 64), nc = read_losses(c, lc, 64), same = na == nc;
    for (int i = 0; same && i < na; i++) same = !strcmp(la[i], lc[i]);
    CHECK(same, "losses after Ctrl-C and resume are bitwise identical (%d vs %d lines)", na, nc);
}

static void test_cpt_replay(const char *data, const char *replay, const char *tok) {
    char base[256], run[256], cmd[2048];
    snprintf(base, sizeof base, "%s/full/final", tmp);
    snprintf(run, sizeof run, "%s/cpt", tmp);
    snprintf(cmd, sizeof cmd, "%s cpt --model %s --data %s --replay %s --replay-ratio 0.3 --out %s --steps 60 "
             "--batch 4 --seq 32 --threads 2 2>/dev/null", LMA_CLI, base, data, replay, run);
    FILE *p = popen(cmd, "r");
    char out[4096] = {0};
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    int st = p ? pclose(p) : -1;
    CHECK(st == 0, "cpt runs: %s", out);
    const char *s = strstr(out, "replay share of training tokens ");
    double share = s ? strtod(s + strlen("replay share of training tokens "), NULL) : -1;
    CHECK(fabs(share - 0.3) <= 0.01, "replay share %.4f within 1%% of 0.3", share);
    (void)tok;
}

static void test_sft(const char *tokdir) {
    char model[256], data[256], bad[256], run[256], cmd[2048];
    snprintf(model, sizeof model, "%s/full/final", tmp); /* trained with the same tokenizer */
    snprintf(data, sizeof data, "%s/tests/ref/sft/bl.jsonl", LMA_SRC_DIR);
    snprintf(bad, sizeof bad, "%s/bad.jsonl", tmp);
    snprintf(run, sizeof run, "%s/sft", tmp);
    FILE *f = test_fopen(bad, "w");
    fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}\n");
    fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}\n");
    fclose(f);
    (void)tokdir;
    snprintf(cmd, sizeof cmd, "%s sft --model %s --data %s --out %s --steps 4 --batch 2 --seq 64 --threads 2 "
             "--template llama3 >/dev/null 2>&1", LMA_CLI, model, data, run);
    CHECK(system(cmd) == 0, "sft runs end to end");
    snprintf(cmd, sizeof cmd, "%s/final/model.safetensors", run);
    CHECK(lma_file_exists(cmd), "sft writes the final model");
    snprintf(cmd, sizeof cmd, "%s sft --model %s --data %s --out %s/sft2 --steps 4 --template llama3 2>&1", LMA_CLI,
             model, bad, tmp);
    FILE *p = popen(cmd, "r");
    char out[2048] = {0};
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    int st = p ? pclose(p) : -1;
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(out, "bad.jsonl:2") && strstr(out, "assistant"),
          "a line without an assistant message stops sft with file:line: %s", out);
    snprintf(cmd, sizeof cmd, "%s/sft2/metrics.jsonl", tmp);
    CHECK(!lma_file_exists(cmd), "nothing was trained");
}

/* --grad-ckpt (activation checkpointing) trains the same: LoRA sft with dropout, losses
 * bitwise equal with and without it (the CPU is deterministic) */
static void test_grad_ckpt(void) {
    char model[256], data[256], run[2][256], cmd[2048];
    snprintf(model, sizeof model, "%s/full/final", tmp);
    snprintf(data, sizeof data, "%s/tests/ref/sft/bl.jsonl", LMA_SRC_DIR);
    for (int k = 0; k < 2; k++) {
        snprintf(run[k], sizeof run[k], "%s/ckpt%d", tmp, k);
        snprintf(cmd, sizeof cmd, "%s sft --model %s --data %s --out %s --steps 3 --batch 2 --seq 64 --threads 2 "
                 "--template llama3 --method lora --lora-dropout 0.1 %s 2>&1", LMA_CLI, model, data, run[k],
                 k ? "--grad-ckpt" : "");
        static char out[1 << 16];
        int said = 0;
        FILE *p = popen(cmd, "r");
        size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
        out[n] = 0;
        said = strstr(out, "activation checkpointing") != NULL;
        CHECK(p && pclose(p) == 0, "sft --method lora%s runs", k ? " --grad-ckpt" : "");
        CHECK(said == k, "checkpointing is on exactly with --grad-ckpt (run %d)", k);
    }
    static char la[16][48], lb[16][48];
    int na = read_losses(run[0], la, 16), nb = read_losses(run[1], lb, 16), same = na == 3 && na == nb;
    for (int i = 0; same && i < na; i++) same = !strcmp(la[i], lb[i]);
    CHECK(same, "--grad-ckpt gives the same losses (%d vs %d steps; first %s vs %s)", na, nb, na ? la[0] : "-",
          nb ? lb[0] : "-");
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/lma_cli_train_XXXXXX");
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    char src[512], data[256], replay[256], tok[512];
    snprintf(src, sizeof src, "%s/tests/data/tinyshakespeare.txt", LMA_SRC_DIR);
    snprintf(tok, sizeof tok, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    snprintf(data, sizeof data, "%s/domain.txt", tmp);
    snprintf(replay, sizeof replay, "%s/general.txt", tmp);
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(lma_read_file(src, &text, &len));
    if (!text || len < 200000) TEST_END();
    CHECK_OK(lma_write_file_atomic(data, text, 60000));
    CHECK_OK(lma_write_file_atomic(replay, text + 100000, 60000));
    free(text);
    test_kill_resume(data, tok);
    test_sigint(data, tok);
    test_cpt_replay(data, replay, tok);
    test_sft(tok);
    test_grad_ckpt();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
