/* cli eval end to end on tiny random models with the bl tokenizer: MMLU over every
 * val file of tests/data/mmlu (per-subject counts = the files' rows from Python's csv
 * module, accuracies in [0, 1], micro/macro consistent with the subjects; 0 shots), a gen task
 * and a ppl task; --compare deltas and the forgetting summary; kv and full scoring
 * agree; --adapter / --compare-adapter; usage errors. */
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "core/io.h"
#include "core/json.h"
#include "model/adapter.h"
#include "model/llama.h"
#include "model/lora.h"
#include "tok/tokenizer.h"
#include "test.h"

static char tmp[] = "/tmp/lma_test_eval_cli_XXXXXX";

static int run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    size_t k;
    while (b && (k = fread(b + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (n + 1 == cap) { char *nb = realloc(b, cap *= 2); if (!nb) break; b = nb; }
    }
    if (b) b[n] = 0;
    int st = pclose(p);
    if (out) *out = b; else free(b);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static lma_model *make_model(const char *dir, uint64_t seed, int vocab, const char *tokdir) {
    lma_config c = {0};
    c.arch = LMA_ARCH_LLAMA; c.vocab_size = vocab; c.hidden_size = 32; c.intermediate_size = 64;
    c.n_layers = 2; c.n_heads = 2; c.n_kv_heads = 1; c.head_dim = 16; c.max_position_embeddings = 512;
    c.rms_norm_eps = 1e-5; c.rope_theta = 10000; c.bos_token_id = -1; c.n_eos = 0;
    lma_model *m = NULL;
    CHECK_OK(lma_model_create(&c, lma_backend_cpu(), &m));
    if (!m) return NULL;
    CHECK_OK(lma_model_init_random(m, seed, 0.5f));
    CHECK_OK(lma_model_save(m, dir, 0, 0));
    char a[4200], b[4200];
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "tokenizer_config.json" : "tokenizer.json";
        snprintf(a, sizeof a, "%s/%s", tokdir, f);
        snprintf(b, sizeof b, "%s/%s", dir, f);
        CHECK_OK(lma_copy_file(a, b));
    }
    return m;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static double num(const cJSON *o, const char *k) { const cJSON *v = get(o, k); return cJSON_IsNumber(v) ? v->valuedouble : NAN; }

static void check_mmlu(const cJSON *r, int full_files) {
    const cJSON *subs = get(r, "subjects"), *s;
    char path[2048], *counts = NULL;
    size_t cl = 0;
    snprintf(path, sizeof path, "%s/tests/ref/eval/mmlu_rowcounts.txt", LMA_SRC_DIR);
    CHECK_OK(lma_read_file(path, &counts, &cl));
    int n_sub = 0, rows_ok = 0, acc_ok = 0;
    double n = 0, c = 0, macro = 0;
    cJSON_ArrayForEach(s, subs) {
        const char *name = get(s, "name")->valuestring;
        double sn = num(s, "n"), sc = num(s, "correct"), sa = num(s, "acc");
        char key[600];
        snprintf(key, sizeof key, "val/%s_val.csv ", name);
        const char *hit = counts ? strstr(counts, key) : NULL;
        long want = hit ? strtol(hit + strlen(key), NULL, 10) : -1;
        rows_ok += full_files ? sn == want : sn == (want < 3 ? want : 3);
        acc_ok += sa >= 0 && sa <= 1 && sc <= sn && fabs(sa - sc / sn) < 1e-12;
        n += sn; c += sc; macro += sa;
        n_sub++;
    }
    free(counts);
    CHECK(n_sub == 57, "57 subjects (%d)", n_sub);
    CHECK(rows_ok == n_sub, "per-subject counts = the file rows (%d of %d)", rows_ok, n_sub);
    CHECK(acc_ok == n_sub, "per-subject accuracy in [0,1] and = correct/n");
    CHECK(num(r, "n") == n && num(r, "correct") == c, "totals = sums over subjects");
    CHECK(!full_files || n == 570, "all 570 val rows evaluated (%g)", n);
    CHECK(fabs(num(r, "micro_acc") - c / n) < 1e-12 && num(r, "score") == num(r, "micro_acc"), "micro accuracy");
    CHECK(fabs(num(r, "macro_acc") - macro / n_sub) < 1e-12, "macro accuracy = mean over subjects");
}

int main(void) {
    if (!mkdtemp(tmp)) { CHECK(0, "mkdtemp"); TEST_END(); }
    char tokdir[2048], da[2100], db[2100], dad[2100], gen[2100], txt[2100], outj[2100], cmd[16384], mmlu[2048];
    snprintf(tokdir, sizeof tokdir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    snprintf(mmlu, sizeof mmlu, "%s/tests/data/mmlu", LMA_SRC_DIR);
    snprintf(da, sizeof da, "%s/a", tmp);
    snprintf(db, sizeof db, "%s/b", tmp);
    snprintf(dad, sizeof dad, "%s/adapter", tmp);
    snprintf(gen, sizeof gen, "%s/gen.jsonl", tmp);
    snprintf(txt, sizeof txt, "%s/text.txt", tmp);
    snprintf(outj, sizeof outj, "%s/out.json", tmp);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(tokdir, &tok));
    if (!tok) TEST_END();
    int V = lma_tok_vocab_size(tok);
    lma_tok_free(tok);
    lma_model *ma = make_model(da, 1, V, tokdir), *mb = make_model(db, 2, V, tokdir);
    lma_model_free(mb);
    /* an adapter with non-zero A and B on model a */
    if (ma) {
        lma_lora_params lp = lma_lora_default_params();
        lp.r = 4; lp.alpha = 8; lp.targets = LMA_LORA_ALL;
        CHECK_OK(lma_lora_attach(ma, &lp, 9));
        if (ma->lora) {
            size_t nparam = ma->lora->table.total;
            float *h = malloc(nparam * sizeof(float));
            for (size_t i = 0; h && i < nparam; i++) h[i] = 0.3f * (float)sin(0.37 * (double)i);
            if (h) ma->be->upload(ma->lora->params, h, nparam * sizeof(float));
            lma_model_sync_weights(ma);
            free(h);
            CHECK_OK(lma_adapter_save(ma, dad, "a"));
        }
        lma_model_free(ma);
    }
    const char *g =
        "{\"prompt\": \"The capital of France is\", \"answer\": \"Paris\"}\n"
        "{\"question\": \"Tom has 2 apples and buys 3 more. How many?\", \"answer\": \"2+3=5\\n#### 5\"}\n"
        "{\"prompt\": \"Give JSON with name:\", \"answer\": \"\", \"check\": \"json\", \"required_keys\": [\"name\"]}\n";
    CHECK_OK(lma_write_file_atomic(gen, g, strlen(g)));
    char tpath[2048], *t = NULL;
    size_t tl = 0;
    snprintf(tpath, sizeof tpath, "%s/tests/data/tinyshakespeare.txt", LMA_SRC_DIR);
    CHECK_OK(lma_read_file(tpath, &t, &tl));
    if (t) CHECK_OK(lma_write_file_atomic(txt, t, tl > 3000 ? 3000 : tl));
    free(t);

    /* the whole val split (0 shots) on model a: counts = file rows */
    snprintf(cmd, sizeof cmd, "LMA_QUIET=1 %s eval --threads 2 --model %s --task mmlu:%s --shots 0 --json", LMA_CLI, da, mmlu);
    char *out = NULL;
    CHECK(run(cmd, &out) == 0, "eval over the whole val split exits 0");
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    free(out);
    if (j) check_mmlu(cJSON_GetArrayItem(get(j, "results"), 0), 1);
    cJSON_Delete(j);

    /* 1 shot (2 items per subject), gen and ppl, compared with model b */
    snprintf(cmd, sizeof cmd,
             "LMA_QUIET=1 %s eval --threads 2 --model %s --compare %s --task general:mmlu:%s --shots 1 --limit 3 "
             "--task domain:gen:%s --task general:ppl:%s --max-tokens 6 --ppl-window 128 --json --out %s",
             LMA_CLI, da, db, mmlu, gen, txt, outj);
    CHECK(run(cmd, &out) == 0, "eval --compare exits 0");
    j = out ? cJSON_Parse(out) : NULL;
    CHECK(j != NULL, "stdout is JSON: %.300s", out ? out : "");
    char *file = NULL;
    size_t fl = 0;
    CHECK_OK(lma_read_file(outj, &file, &fl));
    CHECK(file && out && !strncmp(file, out, fl), "--out holds the same JSON");
    free(file);
    free(out);
    if (j) {
        const cJSON *ra = get(j, "results"), *rb = get(j, "compare_results"), *cmp = get(j, "compare");
        CHECK(cJSON_GetArraySize(ra) == 3 && cJSON_GetArraySize(rb) == 3, "3 results per model");
        const cJSON *m0 = cJSON_GetArrayItem(ra, 0), *m1 = cJSON_GetArrayItem(rb, 0);
        CHECK(!strcmp(get(m0, "kind")->valuestring, "mmlu") && !strcmp(get(m0, "tag")->valuestring, "general"), "mmlu first");
        check_mmlu(m0, 0);
        check_mmlu(m1, 0);
        const cJSON *g0 = cJSON_GetArrayItem(ra, 1);
        CHECK(num(g0, "n") == 3 && num(g0, "correct") >= 0 && num(g0, "correct") <= 3 && num(g0, "valid") <= 1,
              "gen: 3 records scored");
        CHECK(cJSON_GetArraySize(get(g0, "checks")) == 3, "gen: exact, number and json checks");
        const cJSON *p0 = cJSON_GetArrayItem(ra, 2);
        CHECK(num(p0, "tokens") == 3 && num(p0, "ppl") > 1 && isfinite(num(p0, "ppl")) &&
              fabs(num(p0, "ppl") - exp(num(p0, "nll") / num(p0, "tokens"))) < 1e-6 * num(p0, "ppl"),
              "ppl = exp(nll / tokens), --limit 3 tokens");
        CHECK(num(p0, "bytes") > 0 && num(p0, "bytes") < 100, "ppl bytes are those of the scored tokens (%g)", num(p0, "bytes"));
        const cJSON *ct = get(cmp, "tasks");
        int dok = 0;
        for (int i = 0; i < 3; i++) {
            const cJSON *e = cJSON_GetArrayItem(ct, i);
            double sa = num(cJSON_GetArrayItem(ra, i), "score"), sb = num(cJSON_GetArrayItem(rb, i), "score");
            dok += fabs(num(e, "delta") - (sb - sa)) <= 1e-12 * (1 + fabs(sa) + fabs(sb));
        }
        CHECK(dok == 3, "compare deltas = B - A");
        double dm = num(cJSON_GetArrayItem(ct, 0), "delta"), dg = num(cJSON_GetArrayItem(ct, 1), "delta");
        CHECK(fabs(num(cmp, "forgetting") + dm) < 1e-12, "forgetting = -(accuracy change on the general set)");
        CHECK(fabs(num(cmp, "domain_gain") - dg) < 1e-12, "domain gain = accuracy change on the domain set");
        CHECK(fabs(num(get(cmp, "general"), "mean_rel_ppl_change") - num(cJSON_GetArrayItem(ct, 2), "rel")) < 1e-12,
              "general perplexity change");
        cJSON_Delete(j);
    }

    /* kv and full scoring agree; a split folder with --limit */
    double acc[2] = {-1, -2};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "LMA_QUIET=1 %s eval --threads 2 --model %s --task mmlu:%s/val --limit 3 --scoring %s --json",
                 LMA_CLI, da, mmlu, k ? "full" : "kv");
        CHECK(run(cmd, &out) == 0, "eval --scoring %s", k ? "full" : "kv");
        j = out ? cJSON_Parse(out) : NULL;
        if (j) {
            check_mmlu(cJSON_GetArrayItem(get(j, "results"), 0), 0);
            acc[k] = num(cJSON_GetArrayItem(get(j, "results"), 0), "correct");
        }
        cJSON_Delete(j);
        free(out);
    }
    CHECK(acc[0] == acc[1], "kv and full scoring give the same answers (%g vs %g correct)", acc[0], acc[1]);

    /* adapters: --adapter equals the B side of --compare-adapter, and changes the model */
    snprintf(cmd, sizeof cmd, "LMA_QUIET=1 %s eval --model %s --compare-adapter %s --task general:ppl:%s --ppl-window 64 --json",
             LMA_CLI, da, dad, txt);
    CHECK(run(cmd, &out) == 0, "eval --compare-adapter");
    j = out ? cJSON_Parse(out) : NULL;
    free(out);
    snprintf(cmd, sizeof cmd, "LMA_QUIET=1 %s eval --model %s --adapter %s --task general:ppl:%s --ppl-window 64 --json",
             LMA_CLI, da, dad, txt);
    CHECK(run(cmd, &out) == 0, "eval --adapter");
    cJSON *j2 = out ? cJSON_Parse(out) : NULL;
    free(out);
    if (j && j2) {
        double base = num(cJSON_GetArrayItem(get(j, "results"), 0), "ppl"),
               withb = num(cJSON_GetArrayItem(get(j, "compare_results"), 0), "ppl"),
               witha = num(cJSON_GetArrayItem(get(j2, "results"), 0), "ppl");
        CHECK(withb == witha, "--adapter = the adapter side of --compare-adapter (%g, %g)", witha, withb);
        CHECK(fabs(withb - base) > 1e-3 * base, "the adapter changes the perplexity (%g vs %g)", base, withb);
    }
    cJSON_Delete(j); cJSON_Delete(j2);

    /* the readable table and usage errors */
    snprintf(cmd, sizeof cmd, "LMA_QUIET=1 %s eval --model %s --compare %s --task general:ppl:%s --task domain:ppl:%s "
             "--ppl-window 64 2>&1", LMA_CLI, da, db, txt, txt);
    CHECK(run(cmd, &out) == 0 && out && strstr(out, "general (forgetting)") && strstr(out, "domain (gain)") &&
          strstr(out, "ppl:text.txt#2"), "table with the forgetting summary: %.600s", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "%s eval --model %s 2>&1", LMA_CLI, da);
    CHECK(run(cmd, &out) == 2 && out && strstr(out, "--task"), "no task is a usage error");
    free(out);
    snprintf(cmd, sizeof cmd, "%s eval --model %s --task foo:%s 2>&1", LMA_CLI, da, txt);
    CHECK(run(cmd, &out) == 2 && out && strstr(out, "KIND"), "bad kind is a usage error");
    free(out);
    snprintf(cmd, sizeof cmd, "%s eval --model %s/nonexistent --task ppl:%s 2>&1", LMA_CLI, tmp, txt);
    CHECK(run(cmd, &out) == 1 && out && strstr(out, "nonexistent"), "a missing model names the path: %s", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "%s eval --model %s --task mmlu:%s/dev --shots 9 2>&1", LMA_CLI, da, mmlu);
    CHECK(run(cmd, &out) == 1 && out && strstr(out, "shots"), "too many shots is explained: %s", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
