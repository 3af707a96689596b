/* libFuzzer: lma_config_parse on arbitrary bytes; a parsed config must satisfy the
 * invariants the model code relies on, and its inv_freq must be computable. */
#include <stdlib.h>
#include "model/config.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    lma_config c;
    if (lma_config_parse((const char *)data, size, "fuzz", &c) == LMA_OK) {
        if (c.n_heads < 1 || c.n_kv_heads < 1 || c.n_heads % c.n_kv_heads || c.head_dim < 2 || c.head_dim % 2 ||
            c.n_eos < 0 || c.n_eos > LMA_MAX_EOS || !(c.rope_theta > 0))
            abort();
        float *f = malloc((size_t)(c.head_dim / 2) * sizeof *f);
        if (f) { lma_config_rope_inv_freq(&c, f); free(f); }
    }
    lma_clear_error();
    return 0;
}
