/* --format yaml (infer/json_constraint.h, the YAML subset): a random-weight model sampled
 * at temperature 1 over many seeds gives output that this file's own reader of the
 * subset accepts (key: value lines and key: lists of "  - item" lines, plain scalars
 * that are no YAML indicator, no ':' or '#') and that eval's YAML check
 * (lma_gen_check_yaml) calls valid, at generous budgets and at the shortest (4 tokens);
 * the mask lets EOS through only where the document can end. Tokenizer: byte-level BPE
 * (tests/ref/tok/bl). */
#include "eval/gencheck.h"
#include "infer/generate.h"
#include "infer/json_constraint.h"
#include "sample_loop.h"
#include "test.h"

static int key_first(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

/* a plain scalar of the subset: alnum first, no ':' '#' or control bytes */
static int scalar_ok(const char *s, size_t n) {
    if (!n || !alnum(s[0])) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':' || s[i] == '#' || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) return 0;
    return 1;
}

/* 1 when text is a document of the subset; *items counts lines */
static int subset_ok(const char *t, size_t len, int *lines) {
    size_t i = 0;
    int after_key_list = 0, in_list = 0;
    *lines = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && t[e] != '\n') e++;
        const char *l = t + i;
        size_t n = e - i;
        if (n >= 4 && !memcmp(l, "  - ", 4)) {
            if (!after_key_list && !in_list) return 0;
            if (!scalar_ok(l + 4, n - 4)) return 0;
            in_list = 1; after_key_list = 0;
        } else {
            if (after_key_list) return 0; /* "key:" must be followed by an item */
            in_list = 0;
            size_t k = 0;
            if (!n || !key_first(l[0])) return 0;
            while (k < n && l[k] != ':') k++;
            if (k == n) return 0;
            for (size_t q = 1; q < k; q++)
                if (!(alnum(l[q]) || l[q] == '_' || l[q] == '-')) return 0;
            if (k + 1 == n) after_key_list = 1;
            else if (l[k + 1] != ' ' || !scalar_ok(l + k + 2, n - k - 2)) return 0;
        }
        (*lines)++;
        i = e + 1;
    }
    return *lines > 0 && !after_key_list;
}

typedef struct { int checked, *lists; } yaml_judge_ctx;

/* an output is in the subset by this file's reader; eval's YAML check counted apart */
static int yaml_judge(void *ctx, const char *what, int seed, const lma_gen_result *r) {
    yaml_judge_ctx *x = ctx;
    int lines = 0, valid = 0;
    int ok = subset_ok(r->text, r->len, &lines);
    lma_gen_check_yaml(r->text, r->len, NULL, 0, &valid);
    if (!ok || !valid) fprintf(stderr, "%s seed %d: not valid (subset %d, check %d): [%.*s]\n", what, seed, ok, valid,
                               (int)r->len, r->text);
    x->checked += valid;
    if (x->lists && strstr(r->text, "\n  - ")) (*x->lists)++;
    return ok;
}

static void run(lma_model *m, const lma_tokenizer *tok, lma_json_constraint *jc, int max_tokens, int seeds, float temp,
                const char *what, int *lists) {
    yaml_judge_ctx x = {0, lists};
    int good = test_sample_loop(m, tok, jc, max_tokens, seeds, temp, 7919, 3, what, yaml_judge, &x, NULL);
    CHECK(good == seeds, "%s: %d of %d outputs in the subset (max_tokens %d)", what, good, seeds, max_tokens);
    CHECK(x.checked == seeds, "%s: %d of %d outputs pass eval's YAML check", what, x.checked, seeds);
}

int main(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(dir, &tok));
    if (!tok) TEST_END();
    /* the reader itself */
    int n;
    const char *yes[] = {"a: b", "a: b\n", "name: Ann Lee\nage: 42\n", "tags:\n  - x\n  - y z\nk: v"};
    const char *no[] = {"", "a:", "a:\n", "a: :b", "- x", "a: b\n  - c", "a:b", "1a: b", "a: #x", "a:\n - x"};
    for (int i = 0; i < 4; i++) CHECK(subset_ok(yes[i], strlen(yes[i]), &n), "reader accepts [%s]", yes[i]);
    for (int i = 0; i < 10; i++) CHECK(!subset_ok(no[i], strlen(no[i]), &n), "reader refuses [%s]", no[i]);

    lma_json_constraint *jc = NULL;
    CHECK_OK(lma_yaml_constraint_new(tok, &jc));
    if (!jc) TEST_END();
    CHECK(lma_json_constraint_min_tokens(jc) == 4, "shortest document: 4 tokens (\"a: b\")");
    /* EOS only where the document can end */
    int V = lma_tok_vocab_size(tok);
    int32_t eos = lma_tok_eos_id(tok);
    float *logits = malloc((size_t)V * sizeof *logits);
    if (eos >= 0 && logits) {
        for (int i = 0; i < V; i++) logits[i] = 0;
        lma_json_constraint_reset(jc);
        CHECK_OK(lma_json_constraint_mask(jc, logits, V, 100, &eos, 1));
        CHECK(isinf(logits[eos]), "EOS masked on an empty document");
        int32_t ids[16];
        size_t nid = 0;
        int32_t *enc = NULL;
        CHECK_OK(lma_tok_encode(tok, "ab: c", 5, 0, &enc, &nid));
        int complete = 0;
        for (size_t i = 0; enc && i < nid && i < 16; i++) { ids[i] = enc[i]; CHECK_OK(lma_json_constraint_accept(jc, ids[i], &complete)); }
        free(enc);
        for (int i = 0; i < V; i++) logits[i] = 0;
        CHECK_OK(lma_json_constraint_mask(jc, logits, V, 100, &eos, 1));
        CHECK(!isinf(logits[eos]) && !complete, "EOS allowed after the first value (not complete before it)");
        for (int i = 0; i < V; i++) logits[i] = 0;
        CHECK_OK(lma_json_constraint_mask(jc, logits, V, 0, &eos, 1));
        int allowed = 0;
        for (int i = 0; i < V; i++) allowed += !isinf(logits[i]);
        CHECK(allowed >= 1, "with no tokens left something can still end the document");
    }
    free(logits);
    lma_model *m = test_random_model(lma_backend_cpu(), V, 11);
    int lists = 0;
    if (m) {
        run(m, tok, jc, 64, 40, 1.0f, "yaml, 64 tokens", &lists);
        run(m, tok, jc, 4, 10, 1.0f, "yaml at its shortest budget", NULL);
        run(m, tok, jc, 20, 20, 1.5f, "yaml, 20 tokens, temperature 1.5", &lists);
        fprintf(stderr, "outputs with a list: %d\n", lists);
    }
    lma_model_free(m);
    lma_json_constraint_free(jc);
    lma_tok_free(tok);
    TEST_END();
}
