/* BPE training parity with HF BpeTrainer and the tokenizer CLI.
 * - lmadapt trains on tests/ref/tok/train/corpus.txt with the settings of
 *   make_tok_fixtures.py; vocab and merges must equal HF's (hf_trained.json).
 * - The written tokenizer.json, loaded by lmadapt, encodes the test text set exactly as
 *   HF tokenizers encoded it from the same file (lmadapt_check.json, made by
 *   `make_tok_fixtures.py --check-lmadapt DIR` on lmadapt's output).
 * - `lmadapt tokenizer encode/decode/render/train` print what the library computes. */
#include <stdint.h>
#include <unistd.h>
#include "core/json.h"
#include "test.h"
#include "tok/bpe_train.h"
#include "tok/tokenizer.h"

static char *unhex(const char *h, size_t *n) {
    size_t l = strlen(h) / 2;
    char *o = malloc(l + 1);
    for (size_t i = 0; i < l; i++) { unsigned v; sscanf(h + 2 * i, "%2x", &v); o[i] = (char)v; }
    o[l] = 0; *n = l;
    return o;
}

static char *run(const char *cmd) {
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *o = malloc(cap);
    size_t k;
    while ((k = fread(o + n, 1, cap - n - 1, p)) > 0) { n += k; if (n + 1 >= cap) { cap *= 2; o = realloc(o, cap); } }
    o[n] = 0;
    int rc = pclose(p);
    if (rc != 0) { fprintf(stderr, "command failed (%d): %s\n", rc, cmd); free(o); return NULL; }
    return o;
}

int main(void) {
    char tmpl[] = "/tmp/lma_tok_train_XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL, "mkdtemp");
    if (!dir) TEST_END();
    char corpus[1024], path[1200];
    snprintf(corpus, sizeof corpus, "%s/tests/ref/tok/train/corpus.txt", LMA_SRC_DIR);
    const char *specials[] = {"<|endoftext|>", "<|pad|>"};
    lma_bpe_train_params p;
    lma_bpe_train_default_params(&p);
    p.vocab_size = 700; p.special = specials; p.n_special = 2; p.quiet = 1;
    const char *files[] = {corpus};
    CHECK_OK(lma_bpe_train_files(files, 1, &p, dir));

    /* vocab and merges equal HF's */
    cJSON *mine = NULL, *ref = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(lma_json_load(path, &mine));
    snprintf(path, sizeof path, "%s/tests/ref/tok/train/hf_trained.json", LMA_SRC_DIR);
    CHECK_OK(lma_json_load(path, &ref));
    if (mine && ref) {
        const cJSON *mm = cJSON_GetObjectItem(mine, "model");
        const cJSON *mv = cJSON_GetObjectItem(mm, "vocab"), *rv = cJSON_GetObjectItem(ref, "vocab"), *it;
        CHECK(cJSON_GetArraySize(mv) == cJSON_GetArraySize(rv), "vocab sizes %d vs HF %d", cJSON_GetArraySize(mv), cJSON_GetArraySize(rv));
        int bad = 0;
        cJSON_ArrayForEach(it, rv) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(mv, it->string);
            if (!m || m->valueint != it->valueint) { if (!bad) fprintf(stderr, "  vocab differs at \"%s\"\n", it->string); bad++; }
        }
        CHECK(bad == 0, "%d vocab entries differ from HF", bad);
        const cJSON *mg = cJSON_GetObjectItem(mm, "merges"), *rg = cJSON_GetObjectItem(ref, "merges");
        CHECK(cJSON_GetArraySize(mg) == cJSON_GetArraySize(rg) && cJSON_GetArraySize(rg) > 300, "merge counts %d vs HF %d",
              cJSON_GetArraySize(mg), cJSON_GetArraySize(rg));
        bad = 0;
        for (int i = 0; i < cJSON_GetArraySize(rg) && i < cJSON_GetArraySize(mg); i++) {
            const cJSON *a = cJSON_GetArrayItem(mg, i), *b = cJSON_GetArrayItem(rg, i);
            if (strcmp(cJSON_GetArrayItem(a, 0)->valuestring, cJSON_GetArrayItem(b, 0)->valuestring) ||
                strcmp(cJSON_GetArrayItem(a, 1)->valuestring, cJSON_GetArrayItem(b, 1)->valuestring)) {
                if (!bad) fprintf(stderr, "  merge %d differs\n", i);
                bad++;
            }
        }
        CHECK(bad == 0, "%d merges differ from HF", bad);
    }
    cJSON_Delete(mine); cJSON_Delete(ref);

    /* HF tokenizers loading our file encodes the test set as we do */
    lma_tokenizer *t = NULL;
    CHECK_OK(lma_tok_load(dir, &t));
    snprintf(path, sizeof path, "%s/tests/ref/tok/train/lmadapt_check.json", LMA_SRC_DIR);
    cJSON *chk = NULL;
    CHECK_OK(lma_json_load(path, &chk));
    int ncases = 0;
    if (t && chk) {
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(chk, "cases")) {
            size_t tl; char *text = unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &tl);
            int32_t *ids = NULL; size_t n = 0;
            CHECK_OK(lma_tok_encode(t, text, tl, 0, &ids, &n));
            const cJSON *w = cJSON_GetObjectItem(c, "ids"), *it;
            int ok = (size_t)cJSON_GetArraySize(w) == n; size_t i = 0;
            if (ok) cJSON_ArrayForEach(it, w) if (ids[i++] != it->valueint) ok = 0;
            CHECK(ok, "trained tokenizer, case %s: ids differ from HF on the same file", cJSON_GetObjectItem(c, "name")->valuestring);
            free(ids); free(text);
            ncases++;
        }
    }
    CHECK(ncases >= 20, "only %d check cases", ncases);
    cJSON_Delete(chk);

    /* CLI */
    char cmd[4096];
    const char *txt = "Hello world, 12345 \xe6\x97\xa5\xe6\x9c\xac!";
    int32_t *ids = NULL; size_t n = 0;
    CHECK_OK(lma_tok_encode(t, txt, strlen(txt), 0, &ids, &n));
    char want[4096] = ""; size_t wl = 0;
    for (size_t i = 0; i < n; i++) wl += (size_t)snprintf(want + wl, sizeof want - wl, i ? " %d" : "%d", ids[i]);
    snprintf(cmd, sizeof cmd, "%s tokenizer encode --tokenizer %s --text '%s'", LMA_CLI, dir, txt);
    char *out = run(cmd);
    CHECK(out && !strncmp(out, want, wl) && out[wl] == '\n', "CLI encode printed \"%s\", want \"%s\"", out ? out : "", want);
    free(out);
    snprintf(cmd, sizeof cmd, "%s tokenizer decode --tokenizer %s --ids '%s'", LMA_CLI, dir, want);
    out = run(cmd);
    CHECK(out && !strncmp(out, txt, strlen(txt)), "CLI decode printed \"%s\"", out ? out : "");
    free(out); free(ids);
    snprintf(path, sizeof path, "%s/msgs.json", dir);
    FILE *f = test_fopen(path, "w");
    fputs("[{\"role\":\"user\",\"content\":\"Hi there\"}]", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s tokenizer render --tokenizer %s/tests/ref/tok/bl --messages %s --generation-prompt", LMA_CLI,
             LMA_SRC_DIR, path);
    out = run(cmd);
    CHECK(out && !strcmp(out, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                              "<|start_header_id|>assistant<|end_header_id|>\n\n"), "CLI render printed \"%s\"", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "%s tokenizer encode --tokenizer %s 2>/dev/null; echo $?", LMA_CLI, dir);
    out = run(cmd);
    CHECK(out && !strcmp(out, "2\n"), "CLI usage error exits 2, got %s", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "%s tokenizer train --vocab-size 300 --quiet --out %s/cli FILE_THAT_DOES_NOT_EXIST 2>&1; echo $?", LMA_CLI, dir);
    out = run(cmd);
    CHECK(out && strstr(out, "FILE_THAT_DOES_NOT_EXIST") && strstr(out, "\n1\n"), "CLI train on a missing file: %s", out ? out : "");
    free(out);
    lma_tok_free(t);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
