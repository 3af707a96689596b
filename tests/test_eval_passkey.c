/* Passkey prompts (eval/passkey.h): for several context lengths and depths with two
 * tokenizers (byte-level BPE and SentencePiece), the prompt fits the context with the
 * answer tokens and no further filler would; the key sits after round(depth * k)
 * fillers, its token position matches the depth within one filler; the text decodes to
 * prefix, fillers, the key sentence, fillers, the question. The answer check. And
 * `lmadapt eval --task passkey` on a tiny random model: a well-formed table and JSON
 * (cells length-major, counts, accuracy = correct / n, prompt lengths within the
 * context). */
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "core/io.h"
#include "eval/passkey.h"
#include "model/llama.h"
#include "test.h"

static char tmp[] = "/tmp/lma_test_eval_passkey_XXXXXX";

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void builder(const char *tokname) {
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/tests/ref/tok/%s", LMA_SRC_DIR, tokname);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(dir, &tok));
    if (!tok) return;
    const int ctxs[3] = {256, 700, 2048};
    const double depths[5] = {0, 0.25, 0.5, 0.75, 1};
    const char *filler = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
    for (int c = 0; c < 3; c++)
        for (int d = 0; d < 5; d++) {
            int key = 10000 + 7919 * (c * 5 + d) % 90000;
            lma_passkey_prompt pk;
            lma_status st = lma_passkey_build(tok, ctxs[c], depths[d], key, 8, &pk);
            CHECK(st == LMA_OK, "%s ctx %d depth %g: %s", tokname, ctxs[c], depths[d], lma_last_error());
            lma_clear_error();
            if (st != LMA_OK) continue;
            CHECK(pk.n + 8 <= (size_t)ctxs[c], "%s ctx %d: prompt %zu + 8 fits", tokname, ctxs[c], pk.n);
            CHECK(pk.k > 0 && pk.before == (int)floor(depths[d] * pk.k + 0.5), "%s: before = round(depth * k) (%d of %d)",
                  tokname, pk.before, pk.k);
            /* one more filler would not fit: the prompt is within one filler of the budget */
            double unit = (double)pk.filler_tokens / pk.k;
            CHECK((double)pk.n + 8 > ctxs[c] - unit - 2, "%s ctx %d: the context is filled (%zu + 8, filler %.1f tokens)",
                  tokname, ctxs[c], pk.n, unit);
            /* the key's token position: prefix + before fillers */
            double want = (double)(pk.n - pk.filler_tokens) + depths[d] * (double)pk.filler_tokens;
            CHECK(fabs((double)pk.key_token - want) <= unit + 30, "%s ctx %d depth %g: key at token %zu (~%.0f)", tokname,
                  ctxs[c], depths[d], pk.key_token, want);
            /* the text itself */
            char *text = NULL;
            size_t tl = 0;
            CHECK_OK(lma_tok_decode(tok, pk.ids, pk.n, 1, &text, &tl));
            if (text) {
                char ks[80];
                snprintf(ks, sizeof ks, "The pass key is %05d. Remember it. %05d is the pass key.", key, key);
                const char *kp = strstr(text, ks);
                CHECK(kp != NULL, "%s: the key sentence is in the prompt", tokname);
                if (kp) {
                    char *head = malloc((size_t)(kp - text) + 1);
                    memcpy(head, text, (size_t)(kp - text));
                    head[kp - text] = 0;
                    CHECK(count(head, filler + 1) == pk.before && count(kp, filler + 1) == pk.k - pk.before,
                          "%s: %d fillers before the key, %d after (%d, %d)", tokname, pk.before, pk.k - pk.before,
                          count(head, filler + 1), count(kp, filler + 1));
                    free(head);
                }
                CHECK(strstr(text, "There is an important info hidden") != NULL &&
                          tl > 38 && !strcmp(text + tl - 38, "\nWhat is the pass key? The pass key is"),
                      "%s: prefix and question", tokname);
            }
            free(text);
            free(pk.ids);
        }
    lma_passkey_prompt pk;
    CHECK(lma_passkey_build(tok, 40, 0.5, 12345, 8, &pk) == LMA_ERR_ARG && strstr(lma_last_error(), "cannot hold"),
          "a context too short for the question is refused: %s", lma_last_error());
    lma_clear_error();
    lma_tok_free(tok);
}

static int run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 1 << 16, n = 0, k;
    char *b = malloc(cap);
    while (b && (k = fread(b + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (n + 1 == cap) { char *nb = realloc(b, cap *= 2); if (!nb) break; b = nb; }
    }
    if (b) b[n] = 0;
    int st = pclose(p);
    if (out) *out = b; else free(b);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

int main(void) {
    builder("bl");
    builder("sp");
    CHECK(lma_passkey_check(" 12345.", 7, 12345) && lma_passkey_check("is 12345", 8, 12345), "check: right key");
    CHECK(!lma_passkey_check(" 123456", 7, 12345) && !lma_passkey_check(" 54321 12345", 12, 12345) &&
              !lma_passkey_check("none", 4, 12345),
          "check: the first 5-digit run only");
    if (!mkdtemp(tmp)) { CHECK(0, "mkdtemp"); TEST_END(); }
    char tokdir[2048], dm[2100], cmd[8192];
    snprintf(tokdir, sizeof tokdir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    snprintf(dm, sizeof dm, "%s/m", tmp);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(tokdir, &tok));
    if (!tok) TEST_END();
    lma_config c = {0};
    c.arch = LMA_ARCH_LLAMA; c.vocab_size = lma_tok_vocab_size(tok); c.hidden_size = 32; c.intermediate_size = 64;
    c.n_layers = 2; c.n_heads = 2; c.n_kv_heads = 1; c.head_dim = 16; c.max_position_embeddings = 512;
    c.rms_norm_eps = 1e-5; c.rope_theta = 10000; c.bos_token_id = -1; c.n_eos = 0;
    lma_tok_free(tok);
    lma_model *m = NULL;
    CHECK_OK(lma_model_create(&c, lma_backend_cpu(), &m));
    if (m) {
        CHECK_OK(lma_model_init_random(m, 3, 0.5f));
        CHECK_OK(lma_model_save(m, dm, 0, 0));
        lma_model_free(m);
    }
    char a[4200], b[4200];
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "tokenizer_config.json" : "tokenizer.json";
        snprintf(a, sizeof a, "%s/%s", tokdir, f);
        snprintf(b, sizeof b, "%s/%s", dm, f);
        CHECK_OK(lma_copy_file(a, b));
    }
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "%s eval --model %s --task passkey --context 128,256,384 --depths 0,0.5,1 --passkey-trials 2 "
             "--json 2>/dev/null", LMA_CLI, dm);
    int rc = run(cmd, &out);
    cJSON *o = out ? cJSON_Parse(out) : NULL;
    const cJSON *r = cJSON_GetArrayItem(get(o, "results"), 0), *cells = get(r, "cells"), *e;
    CHECK(rc == 0 && cJSON_GetArraySize(cells) == 9, "passkey JSON: 9 cells (rc %d): %s", rc, out ? out : "");
    int i = 0, good = 0;
    double n = 0, correct = 0;
    const int want_ctx[3] = {128, 256, 384};
    const double want_d[3] = {0, 0.5, 1};
    cJSON_ArrayForEach(e, cells) {
        double cn = get(e, "n")->valuedouble, cc = get(e, "correct")->valuedouble, pt = get(e, "prompt_tokens")->valuedouble;
        good += get(e, "context")->valueint == want_ctx[i / 3] && get(e, "depth")->valuedouble == want_d[i % 3] && cn == 2 &&
                cc >= 0 && cc <= cn && fabs(get(e, "acc")->valuedouble - cc / cn) < 1e-12 && pt + 8 <= want_ctx[i / 3] &&
                pt > want_ctx[i / 3] / 2;
        n += cn; correct += cc;
        i++;
    }
    CHECK(good == 9, "cells: length-major, 2 keys each, acc = correct / n, prompts within the context (%d of 9)", good);
    CHECK(r && get(r, "n")->valuedouble == n && get(r, "correct")->valuedouble == correct &&
              fabs(get(r, "score")->valuedouble - correct / n) < 1e-12,
          "totals and score");
    cJSON_Delete(o);
    free(out);
    out = NULL;
    snprintf(cmd, sizeof cmd, "%s eval --model %s --task passkey --context 128,256 --depths 0,1 --passkey-trials 1 2>/dev/null",
             LMA_CLI, dm);
    rc = run(cmd, &out);
    CHECK(rc == 0 && out && strstr(out, "depth \\ ctx") && strstr(out, "     128      256") && strstr(out, "    0.00  ") &&
              strstr(out, "    1.00  "),
          "table: %s", out ? out : "");
    free(out);
    out = NULL;
    snprintf(cmd, sizeof cmd, "%s eval --model %s --task passkey 2>&1", LMA_CLI, dm);
    rc = run(cmd, &out);
    CHECK(rc == 2 && out && strstr(out, "--context"), "passkey without --context is a usage error: %s", out ? out : "");
    free(out);
    out = NULL;
    snprintf(cmd, sizeof cmd, "%s eval --model %s --task passkey --context 128 --depths 0,1.5 2>&1", LMA_CLI, dm);
    rc = run(cmd, &out);
    CHECK(rc == 2 && out && strstr(out, "--depths"), "a depth outside [0, 1] is a usage error: %s", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
