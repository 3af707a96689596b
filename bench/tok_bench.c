/* Single-thread encode throughput of lmadapt's tokenizer (used by bench/tok_bench.py).
 * Usage: tok_bench TOKENIZER_DIR TEXT_FILE REPEATS IDS_OUT
 * Prints "cold_s best_s n_ids" and writes the ids (one per line) to IDS_OUT. */
#include <stdio.h>
#include <stdlib.h>
#include "core/io.h"
#include "core/progress.h"
#include "tok/tokenizer.h"

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: tok_bench DIR TEXT REPEATS IDS_OUT\n"); return 2; }
    char *text; size_t len;
    if (lma_read_file(argv[2], &text, &len) != LMA_OK) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
    lma_tokenizer *t;
    if (lma_tok_load(argv[1], &t) != LMA_OK) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
    int reps = atoi(argv[3]);
    double cold = 0, best = 1e30;
    int32_t *ids = NULL; size_t n = 0;
    for (int r = 0; r < reps; r++) {
        free(ids);
        double t0 = lma_now();
        if (lma_tok_encode(t, text, len, 0, &ids, &n) != LMA_OK) { fprintf(stderr, "%s\n", lma_last_error()); return 1; }
        double dt = lma_now() - t0;
        if (r == 0) cold = dt;
        if (dt < best) best = dt;
    }
    FILE *f = fopen(argv[4], "w");
    for (size_t i = 0; i < n; i++) fprintf(f, "%d\n", ids[i]);
    fclose(f);
    printf("%.6f %.6f %zu\n", cold, best, n);
    free(ids); free(text); lma_tok_free(t);
    return 0;
}
