/* libFuzzer: lma_st_open_buffer on arbitrary bytes, then every tensor read as f32
 * (or refused). The reader must never crash, leak or read outside the buffer. */
#include <stdlib.h>
#include <string.h>
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    lma_st_file *f = NULL;
    if (lma_st_open_buffer(data, size, "fuzz", &f) == LMA_OK) {
        for (int i = 0; i < lma_st_count(f); i++) {
            const lma_st_tensor *t = lma_st_get(f, i);
            if (lma_st_find(f, t->name) != t) abort(); /* names are unique */
            if (t->numel > (1u << 24)) continue;      /* valid files hold their bytes, so this is tiny */
            float *buf = malloc((t->numel ? t->numel : 1) * sizeof *buf);
            if (buf) { lma_st_read_f32(t, buf, t->numel); free(buf); }
        }
    }
    lma_st_close(f);
    lma_clear_error();
    return 0;
}
