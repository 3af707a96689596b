/* cli score: `lmadapt score --json` on a fixture model equals transformers'
 * log-probabilities (logprobs0 in expected.safetensors), and bad usage gets
 * exit status 2 with a message. */
#include <sys/wait.h>
#include "backend/backend.h"
#include "model/safetensors.h"
#include "test.h"
#include "test_models.h"

int main(void) {
    char dir[1024], path[1200], cmd[8192];
    snprintf(dir, sizeof dir, "%s/tests/ref/models/llama_gqa", LMA_SRC_DIR);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    lma_st_file *ex = NULL;
    CHECK_OK(lma_st_open(path, &ex));
    if (!ex) TEST_END();
    const lma_st_tensor *ti = lma_st_find(ex, "input_ids"), *tl = lma_st_find(ex, "logprobs0");
    CHECK(ti && tl, "fixture has input_ids and logprobs0");
    if (!ti || !tl) TEST_END();
    int T = (int)ti->shape[1];
    float *ids = malloc(ti->numel * sizeof(float)), *lp = malloc(tl->numel * sizeof(float));
    CHECK_OK(lma_st_read_f32(ti, ids, ti->numel));
    CHECK_OK(lma_st_read_f32(tl, lp, tl->numel));
    int k = snprintf(cmd, sizeof cmd, "%s score --threads 1 --json --model %s --ids ", LMA_CLI, dir);
    for (int t = 0; t < T; t++) k += snprintf(cmd + k, sizeof cmd - k, "%s%d", t ? "," : "", (int)ids[t]);
    static char out[1 << 16];
    CHECK(test_run(cmd, out, sizeof out) == 0, "score exits 0");
    char *p = strstr(out, "\"logprobs\": [");
    CHECK(p != NULL, "json has logprobs: %s", out);
    if (p) {
        p += strlen("\"logprobs\": [");
        double worst = 0, nll = 0;
        for (int t = 0; t < T - 1; t++) {
            char *end;
            double v = strtod(p, &end);
            worst = fmax(worst, fabs(v - lp[t]));
            nll -= lp[t];
            p = end + 1;
        }
        CHECK(worst < 1e-4, "logprobs match transformers (max abs err %.3g)", worst);
        char *q = strstr(out, "\"nll\": ");
        CHECK(q && fabs(strtod(q + 7, NULL) - nll) < 1e-3, "nll = -sum(logprobs)");
        char *r = strstr(out, "\"ppl\": ");
        CHECK(r && fabs(strtod(r + 7, NULL) - exp(nll / (T - 1))) < 1e-3 * exp(nll / (T - 1)), "ppl");
    }
    snprintf(cmd, sizeof cmd, "%s score --model %s 2>&1", LMA_CLI, dir);
    CHECK(test_run(cmd, out, sizeof out) == 2 && strstr(out, "--ids"), "missing input is a usage error: %s", out);
    snprintf(cmd, sizeof cmd, "%s score --model %s --ids 1,x 2>&1", LMA_CLI, dir);
    CHECK(test_run(cmd, out, sizeof out) == 2, "bad ids are a usage error");
    snprintf(cmd, sizeof cmd, "%s score --model /nonexistent --ids 1,2 2>&1", LMA_CLI);
    CHECK(test_run(cmd, out, sizeof out) == 1 && strstr(out, "/nonexistent"), "missing model names the path: %s", out);
    snprintf(cmd, sizeof cmd, "%s score --model %s --ids 1,99999 2>&1", LMA_CLI, dir);
    CHECK(test_run(cmd, out, sizeof out) == 1 && strstr(out, "vocabulary"), "out-of-vocab id: %s", out);
    snprintf(cmd, sizeof cmd, "%s score --model %s --ids 1,2 --device tpu 2>&1", LMA_CLI, dir);
    CHECK(test_run(cmd, out, sizeof out) == 1 && strstr(out, "tpu") && strstr(out, "cuda-fp32"),
          "an unknown --device is named with the choices: %s", out);
    if (!lma_backend_cuda()) { /* no GPU here: both cuda tables say so */
        snprintf(cmd, sizeof cmd, "%s score --model %s --ids 1,2 --device cuda-fp32 2>&1", LMA_CLI, dir);
        CHECK(test_run(cmd, out, sizeof out) == 1 && strstr(out, "--device cuda-fp32: no CUDA GPU"),
              "--device cuda-fp32 without a GPU: %s", out);
    } else { /* on a GPU: the fp32 table runs the command */
        snprintf(cmd, sizeof cmd, "%s score --device cuda-fp32 --json --model %s --ids 1,2,3 2>&1", LMA_CLI, dir);
        CHECK(test_run(cmd, out, sizeof out) == 0, "score on cuda-fp32 exits 0: %s", out);
    }
    free(ids); free(lp);
    lma_st_close(ex);
    TEST_END();
}
