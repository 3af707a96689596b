/* Learning really happens: `lmadapt pretrain --preset 15m` for 300 steps on
 * tests/data/tinyshakespeare.txt (the first 512 KiB of it; a 1024-token BPE tokenizer trained
 * on it) must reach a validation loss well below the unigram entropy of the
 * training tokens. The unigram entropy H1 is what the best context-free model
 * (one that only knows token frequencies) scores; beating it by 0.7 nats means
 * the model uses context. Label: slow (a few minutes on 2 cores). */
#include <unistd.h>
#include "core/io.h"
#include "data/shard.h"
#include "test.h"

int main(void) {
    char tmp[] = "/tmp/lma_learn_XXXXXX", cmd[4096], path[512];
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    snprintf(cmd, sizeof cmd,
             "%s pretrain --data %s/tests/data/tinyshakespeare.txt --vocab-size 1024 --preset 15m --out %s/run "
             "--steps 300 --batch 8 --seq 128 --lr 2e-3 --min-lr 2e-4 --warmup 30 --eval-every 100 --eval-batches 0 "
             "--save-every 300 --val-fraction 0.02 --threads 2 2>&1",
             LMA_CLI, LMA_SRC_DIR, tmp);
    FILE *p = popen(cmd, "r");
    char out[8192] = {0};
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    CHECK(p && pclose(p) == 0, "pretrain runs: %s", out);
    const char *v = strstr(out, "validation loss ");
    double val = v ? strtod(v + strlen("validation loss "), NULL) : NAN;
    /* unigram entropy of the training shard */
    snprintf(path, sizeof path, "%s/run/data/train.bin", tmp);
    lma_shard *s = NULL;
    CHECK_OK(lma_shard_open(path, &s));
    double h1 = NAN;
    if (s) {
        uint64_t nt = lma_shard_ntokens(s);
        double *cnt = calloc(1 << 16, sizeof *cnt);
        for (uint64_t i = 0; i < nt; i++) cnt[lma_shard_token(s, i) & 0xffff] += 1;
        h1 = 0;
        for (int i = 0; i < 1 << 16; i++) if (cnt[i] > 0) h1 -= cnt[i] / nt * log(cnt[i] / nt);
        free(cnt);
        lma_shard_close(s);
    }
    printf("validation loss %.4f, unigram entropy %.4f nats, ln(1024) = %.4f\n", val, h1, log(1024.0));
    CHECK(val < h1 - 0.7, "validation loss %.4f is below the unigram entropy %.4f by > 0.7 nats", val, h1);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
