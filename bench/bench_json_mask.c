/* Cost of constrained decoding per generated token (infer/json_constraint.h): replays a
 * fixed JSON answer token by token through the constraint (the json format, then a
 * schema), and a YAML answer through --format yaml's constraint, and times
 * lma_json_constraint_mask over the whole vocabulary at each step.
 * With a GBNF file (--grammar's format, e.g. bench/grammar/json.gbnf) the JSON answer is also
 * replayed through that grammar's constraint ("grammar" line).
 * Usage: bench_json_mask TOKENIZER_DIR [REPEATS [GRAMMAR.gbnf]]
 * Prints "format tokens mask_us_per_token" lines; bench/json/mask_cost.sh sets them beside
 * the model's decode time per token. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"
#include "core/progress.h"
#include "infer/json_constraint.h"
#include "tok/tokenizer.h"

static const char *answer = "{\"name\": \"Ada Lovelace\", \"born\": 1815, \"fields\": [\"mathematics\", \"computing\"], "
                            "\"notes\": \"wrote the first published algorithm, for the Analytical Engine\"}";
static const char *yaml_answer = "name: Ada Lovelace\nborn: 1815\nfields:\n  - mathematics\n  - computing\n"
                                 "notes: wrote the first published algorithm, for the Analytical Engine\n";
static const char *schema_text =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"born\":{\"type\":\"integer\"},"
    "\"fields\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"notes\":{\"type\":\"string\"}},"
    "\"required\":[\"name\",\"born\"]}";

static int replay(const char *what, lma_json_constraint *c, const int32_t *ids, size_t n, int V, int reps) {
    float *logits = malloc((size_t)V * sizeof(float));
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        lma_json_constraint_reset(c);
        double t = 0;
        for (size_t i = 0; i < n; i++) {
            for (int k = 0; k < V; k++) logits[k] = 0;
            double t0 = lma_now();
            if (lma_json_constraint_mask(c, logits, V, 1000, NULL, 0) != LMA_OK) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
            t += lma_now() - t0;
            if (isinf(logits[ids[i]])) { fprintf(stderr, "%s: token %zu (%d) masked\n", what, i, ids[i]); return 1; }
            int done = 0;
            if (lma_json_constraint_accept(c, ids[i], &done) != LMA_OK) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
        }
        if (t < best) best = t;
    }
    printf("%s %zu %.1f\n", what, n, best / (double)n * 1e6);
    free(logits);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: bench_json_mask TOKENIZER_DIR [REPEATS]\n"); return 2; }
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    lma_tokenizer *t = NULL;
    if (lma_tok_load(argv[1], &t) != LMA_OK) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
    int32_t *ids = NULL;
    size_t n = 0;
    if (lma_tok_encode(t, answer, strlen(answer), 0, &ids, &n) != LMA_OK) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
    int V = lma_tok_vocab_size(t);
    printf("# vocabulary %d tokens, answer %zu tokens\n", V, n);
    lma_json_constraint *c = NULL;
    if (lma_json_constraint_new(t, NULL, &c) != LMA_OK) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
    int rc = replay("json", c, ids, n, V, reps);
    lma_json_constraint_free(c);
    cJSON *s = cJSON_Parse(schema_text);
    if (!rc && lma_json_constraint_new(t, s, &c) == LMA_OK) { rc = replay("schema", c, ids, n, V, reps); lma_json_constraint_free(c); }
    cJSON_Delete(s);
    if (!rc && argc > 3) {
        char *g = NULL;
        size_t glen = 0;
        if (lma_read_file(argv[3], &g, &glen) != LMA_OK || lma_grammar_constraint_new(t, g, glen, argv[3], &c) != LMA_OK) {
            fprintf(stderr, "%s\n", lma_last_error());
            rc = 1;
        } else {
            rc = replay("grammar", c, ids, n, V, reps);
            lma_json_constraint_free(c);
        }
        free(g);
    }
    free(ids);
    ids = NULL;
    if (!rc && lma_tok_encode(t, yaml_answer, strlen(yaml_answer), 0, &ids, &n) == LMA_OK &&
        lma_yaml_constraint_new(t, &c) == LMA_OK) {
        rc = replay("yaml", c, ids, n, V, reps);
        lma_json_constraint_free(c);
    }
    free(ids);
    lma_tok_free(t);
    return rc;
}
