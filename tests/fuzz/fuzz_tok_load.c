/* libFuzzer: arbitrary bytes as tokenizer.json. Loading must fail cleanly or give a
 * tokenizer that encodes and decodes without memory errors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tok/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lma_tokenizer *t = NULL;
    if (lma_tok_load_json((const char *)data, size, "fuzz", &t) != LMA_OK) { lma_clear_error(); return 0; }
    static const char text[] = "Hello  world <s> 12345 \xe6\x97\xa5\xff\xf0\x9f\x98\x80 ab\n";
    int32_t *ids = NULL; size_t n = 0;
    if (lma_tok_encode(t, text, sizeof text - 1, 1, &ids, &n) == LMA_OK) {
        char *s = NULL; size_t l = 0;
        if (lma_tok_decode(t, ids, n, 0, &s, &l) == LMA_OK) free(s);
        free(ids);
    }
    lma_clear_error();
    lma_tok_free(t);
    return 0;
}
