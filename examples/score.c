/* score: the log-probability of every token of a text under a model, and its perplexity.
 * Uses only the public API (<lmadapt.h>); docs/api.md walks through it.
 *
 *   score MODEL TEXT            tokenize TEXT with the model's tokenizer (BOS as the model adds it)
 *   score MODEL --ids 1,2,3     score these token ids (a model without a tokenizer)
 *
 * MODEL: an HF folder, a .gguf file or a short name (smollm2-135m-instruct).
 * LMA_DEVICE picks the device (cpu, cuda, cuda-fp32; default: cuda where present).
 * Output: one line per scored token "i<TAB>id<TAB>logprob<TAB>token", then
 * "nll N", "perplexity P". Exit 1 with lma_last_error() on failure. */
#include <lmadapt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "score: %s: %s\n", what, lma_last_error());
    return 1;
}

/* "1,2,3" -> ids (malloc'd) */
static int parse_ids(const char *s, int32_t **ids, size_t *n) {
    size_t cap = strlen(s) / 2 + 1, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    while (v && *s) {
        char *end;
        long x = strtol(s, &end, 10);
        if (end == s || x < 0 || x > 2147483647L || k == cap) { free(v); return 0; }
        v[k++] = (int32_t)x;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') { free(v); return 0; }
    }
    *ids = v;
    *n = k;
    return v != NULL;
}

int main(int argc, char **argv) {
    if (argc != 3 && !(argc == 4 && !strcmp(argv[2], "--ids"))) {
        fprintf(stderr, "usage: score MODEL TEXT | score MODEL --ids 1,2,3   (lmadapt %s)\n", lma_version());
        return 2;
    }
    lma_model *model = NULL;
    lma_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = 1;
    if (lma_model_load(argv[1], getenv("LMA_DEVICE"), &model) != LMA_OK) return fail("loading the model");
    if (argc == 4) {
        if (!parse_ids(argv[3], &ids, &n)) { fprintf(stderr, "score: bad --ids list\n"); goto done; }
    } else {
        if (lma_tok_load(argv[1], &tok) != LMA_OK) { fail("loading the tokenizer"); goto done; }
        if (lma_tok_encode(tok, argv[2], strlen(argv[2]), 1, &ids, &n) != LMA_OK) { fail("tokenizing"); goto done; }
    }
    if (n < 2) { fprintf(stderr, "score: need at least 2 tokens, got %zu\n", n); goto done; }
    float *lp = malloc((n - 1) * sizeof *lp);
    if (!lp || lma_score_ids(model, ids, (int)n, lp) != LMA_OK) { free(lp); fail("scoring"); goto done; }
    double nll = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        const char *piece = tok ? lma_tok_id_to_token(tok, ids[i + 1]) : NULL;
        printf("%zu\t%d\t%.7f\t%s\n", i + 1, ids[i + 1], lp[i], piece ? piece : "");
        nll -= lp[i];
    }
    printf("nll %.6f\nperplexity %.6f\n", nll, lma_perplexity(lp, (int)n - 1));
    free(lp);
    rc = 0;
done:
    lma_free(ids);
    lma_tok_free(tok);
    lma_model_free(model);
    return rc;
}
