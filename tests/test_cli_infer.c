/* cli generate and chat on a small random model with the Llama 3 template
 * tokenizer fixture: generate --json gives the same ids as the library's greedy
 * generation; chat answers the same first turn identically after /reset (the
 * history really is cleared) and differently with history; bad usage exits 2. */
#include <sys/wait.h>
#include <unistd.h>
#include "core/io.h"
#include "infer/generate.h"
#include "test.h"

static int run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void) {
    char dir[] = "/tmp/lma_cli_infer_XXXXXX", tokdir[1024], a[1200], b[1200], cmd[4096];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(tokdir, sizeof tokdir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(tokdir, &tok));
    if (!tok) TEST_END();
    lma_config c = {0};
    c.arch = LMA_ARCH_LLAMA; c.vocab_size = lma_tok_vocab_size(tok); c.hidden_size = 32; c.intermediate_size = 64;
    c.n_layers = 2; c.n_heads = 2; c.n_kv_heads = 1; c.head_dim = 16; c.max_position_embeddings = 512;
    c.rms_norm_eps = 1e-5; c.rope_theta = 10000; c.bos_token_id = lma_tok_bos_id(tok);
    lma_model *m = NULL;
    CHECK_OK(lma_model_create(&c, lma_backend_cpu(), &m));
    if (!m) TEST_END();
    lma_model_init_random(m, 9, 0.3f);
    CHECK_OK(lma_model_save(m, dir, 0, 0));
    const char *files[2] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/%s", tokdir, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        CHECK_OK(lma_copy_file(a, b));
    }
    /* generate --json == library greedy */
    const char *prompt = "The quick brown fox";
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(lma_tok_encode(tok, prompt, strlen(prompt), 1, &ids, &n));
    lma_gen_params gp = {.max_tokens = 10, .sample = lma_sample_default_params()};
    lma_gen_result r = {0};
    CHECK_OK(lma_generate(m, tok, ids, n, &gp, &r));
    static char out[1 << 16];
    snprintf(cmd, sizeof cmd, "%s generate --model %s --prompt \"%s\" --max-tokens 10 --temperature 0 --json --threads 1 2>/dev/null",
             LMA_CLI, dir, prompt);
    CHECK(run(cmd, out, sizeof out) == 0, "generate exits 0");
    char want[1024] = "{\"ids\": [";
    for (size_t i = 0; i < r.n_ids; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", i ? ", " : "", r.ids[i]);
    CHECK(!strncmp(out, want, strlen(want)), "generate --json ids equal the library's greedy ids:\n%s\n%s", out, want);
    CHECK(strstr(out, "\"text\": \"") && strstr(out, "\"finish_reason\": \"length\""), "json has text and finish_reason");
    free(r.ids); free(r.text); free(ids);
    /* score --text tokenizes with the model dir's tokenizer (BOS included) */
    CHECK_OK(lma_tok_encode(tok, prompt, strlen(prompt), 1, &ids, &n));
    snprintf(cmd, sizeof cmd, "%s score --model %s --text \"%s\" --json --threads 1 2>/dev/null", LMA_CLI, dir, prompt);
    CHECK(run(cmd, out, sizeof out) == 0, "score --text exits 0");
    char ids_json[1024] = "{\"ids\": [";
    for (size_t i = 0; i < n; i++) snprintf(ids_json + strlen(ids_json), sizeof ids_json - strlen(ids_json), "%s%d", i ? ", " : "", ids[i]);
    CHECK(!strncmp(out, ids_json, strlen(ids_json)), "score --text scores the tokenizer's ids:\n%s\n%s", out, ids_json);
    free(ids);
    /* chat: same reply to the same first turn after /reset */
    snprintf(cmd, sizeof cmd, "printf 'hello there\\nand then?\\n/reset\\nhello there\\n/exit\\n' | %s chat --model %s "
             "--temperature 0 --max-tokens 6 --threads 1 2>/dev/null", LMA_CLI, dir);
    CHECK(run(cmd, out, sizeof out) == 0, "chat exits 0");
    char *lines[8] = {0};
    int k = 0;
    for (char *p = strtok(out, "\n"); p && k < 8; p = strtok(NULL, "\n")) lines[k++] = p;
    CHECK(k == 4 && !strcmp(lines[2], "[conversation reset]"), "three replies and a reset (%d lines)", k);
    if (k == 4) CHECK(!strcmp(lines[0], lines[3]), "after /reset the first turn gets the same reply: '%s' vs '%s'", lines[0], lines[3]);
    snprintf(cmd, sizeof cmd, "%s chat 2>&1", LMA_CLI);
    CHECK(run(cmd, out, sizeof out) == 2 && strstr(out, "--model"), "chat without --model is a usage error");
    snprintf(cmd, sizeof cmd, "%s generate --model %s --ids 1,2 --top-p 0 2>&1", LMA_CLI, dir);
    CHECK(run(cmd, out, sizeof out) == 2, "bad sampling option is a usage error");
    lma_model_free(m);
    lma_tok_free(tok);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
