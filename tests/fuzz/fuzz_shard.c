/* libFuzzer target: the token shard reader on arbitrary bytes. A shard that opens
 * must satisfy the format's invariants (checked here); any other input must be
 * refused with a one-line message. Seeds: tests/fuzz/corpus/shard/ (valid width-2,
 * width-4 and empty shards, and wrong document count, token count, version),
 * written by hand with Python struct.pack("<8sIIQQII") + the tokens. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "data/shard.h"
#include "lmadapt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lma_shard *s = NULL;
    lma_clear_error();
    lma_status st = lma_shard_open_mem(data, size, "fuzz", &s);
    if (st != LMA_OK) {
        const char *m = lma_last_error();
        if (s || !m[0] || strchr(m, '\n')) abort();
        return 0;
    }
    uint64_t n = lma_shard_ntokens(s), d = lma_shard_ndocs(s), total = 0;
    if (size != LMA_SHARD_HEADER_BYTES + n * (uint64_t)lma_shard_width(s)) abort();
    int32_t buf[64];
    for (uint64_t i = 0; i < d; i++) {
        uint64_t start, len;
        if (lma_shard_doc(s, i, &start, &len) != LMA_OK) abort();
        if (start != total || lma_shard_token(s, start + len) != lma_shard_eos(s)) abort();
        size_t k = len < 64 ? (size_t)len : 64;
        if (lma_shard_read(s, start, k, buf) != LMA_OK) abort();
        for (size_t j = 0; j < k; j++)
            if (buf[j] == lma_shard_eos(s) || buf[j] < 0 || buf[j] > lma_shard_max_id(s)) abort();
        total += len + 1;
    }
    if (total != n) abort();
    lma_shard_close(s);
    return 0;
}
