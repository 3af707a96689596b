/* cli generate and chat on a small random model with the Llama 3 template
 * tokenizer fixture: generate --json gives the same ids as the library's greedy
 * generation; chat answers the same first turn identically after /reset (the
 * history really is cleared) and differently with history; bad usage exits 2. */
#include <sys/wait.h>
#include <unistd.h>
#include "core/io.h"
#include "infer/generate.h"
#include "test.h"
#include "test_models.h"

int main(void) {
    char dir[] = "/tmp/lma_cli_infer_XXXXXX", cmd[4096];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    lma_tokenizer *tok = NULL;
    lma_model *m = test_tok_model(dir, (test_tok_model_params){2, 512, 9, 0}, &tok);
    if (!m || !tok) TEST_END();
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
    CHECK(test_run(cmd, out, sizeof out) == 0, "generate exits 0");
    char want[1024] = "{\"ids\": [";
    for (size_t i = 0; i < r.n_ids; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", i ? ", " : "", r.ids[i]);
    CHECK(!strncmp(out, want, strlen(want)), "generate --json ids equal the library's greedy ids:\n%s\n%s", out, want);
    CHECK(strstr(out, "\"text\": \"") && strstr(out, "\"finish_reason\": \"length\""), "json has text and finish_reason");
    free(r.ids); free(r.text); free(ids);
    /* score --text tokenizes with the model dir's tokenizer (BOS included) */
    CHECK_OK(lma_tok_encode(tok, prompt, strlen(prompt), 1, &ids, &n));
    snprintf(cmd, sizeof cmd, "%s score --model %s --text \"%s\" --json --threads 1 2>/dev/null", LMA_CLI, dir, prompt);
    CHECK(test_run(cmd, out, sizeof out) == 0, "score --text exits 0");
    char ids_json[1024] = "{\"ids\": [";
    for (size_t i = 0; i < n; i++) snprintf(ids_json + strlen(ids_json), sizeof ids_json - strlen(ids_json), "%s%d", i ? ", " : "", ids[i]);
    CHECK(!strncmp(out, ids_json, strlen(ids_json)), "score --text scores the tokenizer's ids:\n%s\n%s", out, ids_json);
    free(ids);
    /* chat: same reply to the same first turn after /reset */
    snprintf(cmd, sizeof cmd, "printf 'hello there\\nand then?\\n/reset\\nhello there\\n/exit\\n' | %s chat --model %s "
             "--temperature 0 --max-tokens 6 --threads 1 2>/dev/null", LMA_CLI, dir);
    CHECK(test_run(cmd, out, sizeof out) == 0, "chat exits 0");
    char *lines[8] = {0};
    int k = 0;
    for (char *p = strtok(out, "\n"); p && k < 8; p = strtok(NULL, "\n")) lines[k++] = p;
    CHECK(k == 4 && !strcmp(lines[2], "[conversation reset]"), "three replies and a reset (%d lines)", k);
    if (k == 4) CHECK(!strcmp(lines[0], lines[3]), "after /reset the first turn gets the same reply: '%s' vs '%s'", lines[0], lines[3]);
    snprintf(cmd, sizeof cmd, "%s chat 2>&1", LMA_CLI);
    CHECK(test_run(cmd, out, sizeof out) == 2 && strstr(out, "--model"), "chat without --model is a usage error");
    snprintf(cmd, sizeof cmd, "%s generate --model %s --ids 1,2 --top-p 0 2>&1", LMA_CLI, dir);
    CHECK(test_run(cmd, out, sizeof out) == 2, "bad sampling option is a usage error");
    lma_model_free(m);
    lma_tok_free(tok);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
