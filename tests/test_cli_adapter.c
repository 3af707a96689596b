/* --adapter everywhere a model is used: chat and data generate with a PEFT
 * adapter give the replies of the merged model (lmadapt merge), and differ from
 * the base model's (the adapter really is applied). generate and score are
 * covered the same way in test_lora_train.c. */
#include <sys/wait.h>
#include "core/io.h"
#include "core/rng.h"
#include "model/adapter.h"
#include "model/lora.h"
#include "tok/tokenizer.h"
#include "test.h"
#include "test_models.h"

static char *slurp(const char *path) {
    char *d = NULL;
    if (lma_read_file(path, &d, NULL) != LMA_OK) { lma_clear_error(); return NULL; }
    return d;
}

int main(void) {
    char dir[] = "/tmp/lma_cli_adapter_XXXXXX", base[256], ad[256], merged[256], tokdir[1024], a[1200], b[1200];
    char cmd[4096];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(base, sizeof base, "%s/base", dir);
    snprintf(ad, sizeof ad, "%s/adapter", dir);
    snprintf(merged, sizeof merged, "%s/merged", dir);
    snprintf(tokdir, sizeof tokdir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    lma_tokenizer *tok = NULL;
    lma_model *m = test_tok_model(base, (test_tok_model_params){2, 512, 9, 0}, &tok);
    if (!m || !tok) TEST_END();
    const char *files[2] = {"tokenizer.json", "tokenizer_config.json"};
    /* an adapter whose B is not zero (PEFT init has B = 0: identity) */
    lma_lora_params lp = lma_lora_default_params();
    lp.r = 4; lp.alpha = 16;
    CHECK_OK(lma_lora_attach(m, &lp, 3));
    if (!m->lora) TEST_END();
    lma_rng r;
    lma_rng_seed(&r, 4);
    for (size_t i = 0; i < m->lora->table.total; i++) m->lora->params[i] = (float)(0.5 * lma_rng_normal(&r));
    lma_model_sync_weights(m);
    CHECK_OK(lma_adapter_save(m, ad, base));
    snprintf(cmd, sizeof cmd, "%s merge --model %s --adapter %s --out %s >/dev/null 2>&1", LMA_CLI, base, ad, merged);
    CHECK(system(cmd) == 0, "merge");
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/%s", tokdir, files[i]);
        snprintf(b, sizeof b, "%s/%s", merged, files[i]);
        CHECK_OK(lma_copy_file(a, b));
    }
    /* chat */
    static char o_ad[8192], o_merged[8192], o_base[8192];
    const char *chat = "printf 'hello there\\n/exit\\n' | %s chat --model %s %s %s --temperature 0 --max-tokens 8 --threads 1 2>/dev/null";
    snprintf(cmd, sizeof cmd, chat, LMA_CLI, base, "--adapter", ad);
    CHECK(test_run(cmd, o_ad, sizeof o_ad) == 0, "chat --adapter runs");
    snprintf(cmd, sizeof cmd, chat, LMA_CLI, merged, "", "");
    CHECK(test_run(cmd, o_merged, sizeof o_merged) == 0, "chat on the merged model runs");
    snprintf(cmd, sizeof cmd, chat, LMA_CLI, base, "", "");
    CHECK(test_run(cmd, o_base, sizeof o_base) == 0, "chat on the base runs");
    CHECK(!strcmp(o_ad, o_merged), "chat --adapter == merged model:\n%s\n%s", o_ad, o_merged);
    CHECK(strcmp(o_ad, o_base) != 0, "the adapter changes the reply");
    /* data generate */
    char prompts[300], r1[300], r2[300];
    snprintf(prompts, sizeof prompts, "%s/prompts.jsonl", dir);
    snprintf(r1, sizeof r1, "%s/review_adapter.jsonl", dir);
    snprintf(r2, sizeof r2, "%s/review_merged.jsonl", dir);
    CHECK_OK(lma_write_file_atomic(prompts, "{\"id\": \"a\", \"prompt\": \"Say something.\"}\n", 40));
    snprintf(cmd, sizeof cmd, "%s data generate --model %s --adapter %s --prompts %s --out %s --temperature 0 "
             "--max-tokens 8 >/dev/null 2>&1", LMA_CLI, base, ad, prompts, r1);
    CHECK(system(cmd) == 0, "data generate --adapter runs");
    snprintf(cmd, sizeof cmd, "%s data generate --model %s --prompts %s --out %s --temperature 0 --max-tokens 8 "
             ">/dev/null 2>&1", LMA_CLI, merged, prompts, r2);
    CHECK(system(cmd) == 0, "data generate on the merged model runs");
    char *x = slurp(r1), *y = slurp(r2);
    const char *dx = x ? strstr(x, "\"draft\"") : NULL, *dy = y ? strstr(y, "\"draft\"") : NULL;
    CHECK(dx && dy && !strncmp(dx, dy, strcspn(dx, "}")), "data generate --adapter drafts == merged model's");
    free(x); free(y);
    lma_model_free(m);
    lma_tok_free(tok);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
