/* libFuzzer: lma_gguf_open_buffer on arbitrary bytes; on success every key is read
 * through the typed getters and every numeric array element with lma_gguf_arr_f64/i64,
 * and every tensor of a dequantizable type has up to its first 4096 elements
 * dequantized. The reader must never crash, leak, hang or read outside the buffer. */
#include <stdlib.h>
#include <string.h>
#include "format/gguf.h"
#include "quant/ggml_quant.h"

static volatile double sink;

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    lma_gguf *g = NULL;
    if (lma_gguf_open_buffer(data, size, "fuzz", &g) != LMA_OK) {
        if (g) abort();
        lma_clear_error();
        return 0;
    }
    for (int64_t i = 0; i < lma_gguf_n_kv(g); i++) {
        const lma_gguf_kv *kv = lma_gguf_kv_at(g, i);
        if (!kv || kv->key.len == 0 || (const unsigned char *)kv->key.s < data ||
            (const unsigned char *)kv->key.s + kv->key.len > data + size)
            abort();
        /* a key with an embedded NUL cannot be looked up by name */
        if (memchr(kv->key.s, 0, kv->key.len)) continue;
        char *key = malloc(kv->key.len + 1);
        memcpy(key, kv->key.s, kv->key.len);
        key[kv->key.len] = 0;
        if (lma_gguf_find(g, key) != kv) abort(); /* keys are unique */
        uint64_t u; int64_t s; double f; int b, found; char *str = NULL;
        lma_gguf_get_u64(g, key, &u, &found);
        lma_gguf_get_i64(g, key, &s, &found);
        lma_gguf_get_f64(g, key, &f, &found);
        lma_gguf_get_bool(g, key, &b, &found);
        if (lma_gguf_get_str(g, key, &str, &found) == LMA_OK && found) {
            if (kv->type != LMA_GGUF_STRING || strlen(str) != kv->str.len) abort();
            free(str);
        }
        lma_clear_error();
        free(key);
        if (kv->type == LMA_GGUF_ARRAY) {
            if (kv->arr_type == LMA_GGUF_STRING) {
                for (uint64_t j = 0; j < kv->arr_n; j++) {
                    const lma_gguf_str *e = &kv->arr_str[j];
                    if (e->len && ((const unsigned char *)e->s < data || (const unsigned char *)e->s + e->len > data + size))
                        abort();
                    if (e->len) sink += (unsigned char)e->s[e->len - 1];
                }
            } else {
                for (uint64_t j = 0; j < kv->arr_n; j++)
                    sink += lma_gguf_arr_f64(kv, j) + (double)lma_gguf_arr_i64(kv, j);
            }
        }
    }
    for (int64_t i = 0; i < lma_gguf_n_tensors(g); i++) {
        const lma_gguf_tensor *t = lma_gguf_tensor_at(g, i);
        if ((const unsigned char *)t->data < data || t->nbytes > (size_t)(data + size - (const unsigned char *)t->data))
            abort();
        char name[257];
        memcpy(name, t->name.s, t->name.len);
        name[t->name.len] = 0;
        if (!memchr(t->name.s, 0, t->name.len) && lma_gguf_find_tensor(g, name) != t) abort();
        if (!lma_ggml_type_supported(t->type)) continue;
        int64_t n = t->nelem < 4096 ? (int64_t)t->nelem : 4096;
        if (n == 0) continue;
        float *y = malloc((size_t)n * sizeof *y);
        if (lma_ggml_dequantize(t->type, t->data, y, n) != LMA_OK) abort();
        for (int64_t j = 0; j < n; j++) sink += y[j];
        free(y);
    }
    lma_gguf_close(g);
    lma_clear_error();
    return 0;
}
