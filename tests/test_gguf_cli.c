/* Every command that takes a model, run on the real SmolLM2 GGUF by its short name
 * (docs/models.md): chat, eval (ppl), data generate and judge, sft with full / LoRA /
 * QLoRA, cpt, merge, export of the merged HF folder back to GGUF, export --adapter
 * (read back with the GGUF reader: llama.cpp's layout), and the errors of a missing
 * model name. Each must exit 0 and leave what it promises. Without the model (fetched
 * by scripts/fetch-models.sh) the test exits 77 (skipped). */
#include <sys/stat.h>
#include <unistd.h>
#include "core/io.h"
#include "core/model_path.h"
#include "format/gguf.h"
#include "test.h"

#define NAME "smollm2-135m-instruct"
static char dir[] = "/tmp/lma_gguf_cli_XXXXXX";

/* runs LMA_CLI with args (a shell fragment), output to dir/log; returns the exit code */
static int run(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s > log 2>&1", dir, LMA_CLI, args);
    int rc = system(cmd);
    rc = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    if (rc) {
        char p[256];
        snprintf(p, sizeof p, "%s/log", dir);
        char *t = NULL;
        if (lma_read_file(p, &t, NULL) == LMA_OK) fprintf(stderr, "--- lmadapt %s:\n%s\n", args, t);
        free(t);
        lma_clear_error();
    }
    return rc;
}

static int exists(const char *rel) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    return access(p, F_OK) == 0;
}

static char *slurp(const char *rel) {
    char p[512], *t = NULL;
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    if (lma_read_file(p, &t, NULL) != LMA_OK) lma_clear_error();
    return t;
}

static void write_file(const char *rel, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL, "cannot write %s", p);
    if (f) { fputs(text, f); fclose(f); }
}

int main(void) {
    char path[4096];
    if (lma_model_path_resolve(NAME, path, sizeof path) != LMA_OK) {
        printf("skipped: %s\n", lma_last_error());
        return 77;
    }
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    write_file("train.jsonl",
               "{\"messages\":[{\"role\":\"user\",\"content\":\"Name a primary color.\"},{\"role\":\"assistant\",\"content\":\"Red.\"}]}\n"
               "{\"messages\":[{\"role\":\"user\",\"content\":\"What is 2+2?\"},{\"role\":\"assistant\",\"content\":\"4.\"}]}\n");
    write_file("text.txt", "The quick brown fox jumps over the lazy dog. Language models predict the next token.\n");
    write_file("prompts.jsonl", "{\"id\":\"p1\",\"prompt\":\"Say hello.\"}\n");
    char *log = NULL;
    write_file("judge.jsonl", "{\"instruction\":\"Name a primary color.\",\"output\":\"Red.\"}\n");

    /* chat: a turn on stdin, then /exit */
    write_file("chat_in.txt", "Hi\n/exit\n");
    CHECK(run("chat --model " NAME " --max-tokens 8 --temperature 0 < chat_in.txt") == 0, "chat");
    log = slurp("log");
    CHECK(log && strlen(log) > 0, "chat printed nothing");
    free(log);
    CHECK(run("eval --model " NAME " --task ppl:text.txt --json") == 0, "eval ppl");
    log = slurp("log");
    CHECK(log && strstr(log, "ppl"), "eval output: %s", log ? log : "");
    free(log);
    CHECK(run("data generate --model " NAME " --prompts prompts.jsonl --out review.jsonl --max-tokens 6") == 0 &&
              exists("review.jsonl"), "data generate");
    CHECK(run("data judge --model " NAME " --data judge.jsonl --out kept.jsonl --max-tokens 10 --scores scores.jsonl") == 0,
          "data judge");
    log = slurp("scores.jsonl");
    CHECK(log && strstr(log, "\"judgement\":\"Score: ") && !strstr(log, "\"score\":null"),
          "data judge: the constrained reply parses: %s", log ? log : "");
    free(log);
    const char *common = " --data train.jsonl --steps 1 --batch 1 --seq 64 --save-every 1";
    char a[512];
    snprintf(a, sizeof a, "sft --model %s --method lora --out lora%s", NAME, common);
    CHECK(run(a) == 0 && exists("lora/final/adapter_model.safetensors") && exists("lora/final/tokenizer.json"), "sft lora");
    snprintf(a, sizeof a, "sft --model %s --method qlora --out qlora%s", NAME, common);
    CHECK(run(a) == 0 && exists("qlora/final/adapter_model.safetensors"), "sft qlora");
    snprintf(a, sizeof a, "sft --model %s --out full%s", NAME, common);
    CHECK(run(a) == 0 && exists("full/final/model.safetensors") && exists("full/final/tokenizer_config.json"), "sft full");
    snprintf(a, sizeof a, "cpt --model %s --data text.txt --out cpt --steps 1 --batch 1 --seq 16 --val-fraction 0", NAME);
    CHECK(run(a) == 0 && exists("cpt/final/model.safetensors"), "cpt");
    /* the full run's folder is an HF model: it scores, and exports back to GGUF */
    CHECK(run("score --model full/final --text 'Hello world, hello.'") == 0, "score the sft output");
    CHECK(run("merge --model " NAME " --adapter lora/final --out merged") == 0 && exists("merged/model.safetensors"),
          "merge");
    CHECK(run("export --model merged --type f16 --out merged.gguf") == 0 && exists("merged.Modelfile"),
          "export an HF folder (tokenizer converted)");
    CHECK(run("score --model merged.gguf --text 'Hello world, hello.'") == 0, "score the exported merge");
    CHECK(run("export --model " NAME " --adapter lora/final --out lora.gguf") == 0, "export --adapter");
    lma_gguf *g = NULL;
    char p[512];
    snprintf(p, sizeof p, "%s/lora.gguf", dir);
    CHECK_OK(lma_gguf_open(p, &g));
    if (g) {
        char *type = NULL, *at = NULL;
        CHECK_OK(lma_gguf_get_str(g, "general.type", &type, NULL));
        CHECK_OK(lma_gguf_get_str(g, "adapter.type", &at, NULL));
        double alpha = 0;
        CHECK_OK(lma_gguf_get_f64(g, "adapter.lora.alpha", &alpha, NULL));
        CHECK(type && !strcmp(type, "adapter") && at && !strcmp(at, "lora") && alpha > 0, "adapter metadata");
        const lma_gguf_tensor *ta = lma_gguf_find_tensor(g, "blk.0.attn_q.weight.lora_a");
        const lma_gguf_tensor *tb = lma_gguf_find_tensor(g, "blk.29.ffn_down.weight.lora_b");
        CHECK(ta && ta->ne[0] == 576 && ta->ne[1] == 16, "lora_a ne [in 576, r 16]");
        CHECK(tb && tb->ne[0] == 16 && tb->ne[1] == 576, "lora_b ne [r 16, out 576]");
        CHECK(lma_gguf_n_tensors(g) == 30 * 7 * 2, "%lld adapter tensors (30 layers x 7 projections x 2)",
              (long long)lma_gguf_n_tensors(g));
        free(type);
        free(at);
        lma_gguf_close(g);
    }
    /* a missing model gets one line naming what to do */
    CHECK(run("score --model no-such-model --text hi") == 1, "unknown model name: exit 1");
    log = slurp("log");
    CHECK(log && strstr(log, "no such file or folder, and no model of that name"), "message: %s", log ? log : "");
    free(log);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_END();
}
