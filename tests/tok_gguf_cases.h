/* Shared by test_tok_gguf.c and test_tok_gguf_model.c: checks a tokenizer against a
 * fixture of {"text", "add_special", "ids", ["decoded", "decoded_skip"]} cases made by
 * tests/ref/make_gguf_tok_fixtures.py with transformers' GGUF tokenizer. */
#ifndef LMA_TEST_TOK_GGUF_CASES_H
#define LMA_TEST_TOK_GGUF_CASES_H
#include "core/json.h"
#include "test.h"
#include "tok/tokenizer.h"

/* Returns the number of cases compared. */
static int check_cases(const lma_tokenizer *t, const cJSON *doc, const char *name) {
    const cJSON *c;
    int n = 0;
    int64_t v = -1;
    if (lma_json_int(doc, "bos_id", 0, name, &v) == LMA_OK && cJSON_IsNumber(cJSON_GetObjectItem(doc, "bos_id")))
        CHECK(lma_tok_bos_id(t) == v, "%s: bos id %d, want %lld", name, lma_tok_bos_id(t), (long long)v);
    if (cJSON_IsNumber(cJSON_GetObjectItem(doc, "eos_id"))) {
        lma_json_int(doc, "eos_id", 1, name, &v);
        CHECK(lma_tok_eos_id(t) == v, "%s: eos id %d, want %lld", name, lma_tok_eos_id(t), (long long)v);
    }
    if (cJSON_IsNumber(cJSON_GetObjectItem(doc, "vocab_size"))) {
        lma_json_int(doc, "vocab_size", 1, name, &v);
        CHECK(lma_tok_vocab_size(t) == v, "%s: vocab size %d, want %lld", name, lma_tok_vocab_size(t), (long long)v);
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, "cases")) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        int add = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_special"));
        const cJSON *want = cJSON_GetObjectItem(c, "ids"), *it;
        int32_t *ids = NULL; size_t nid = 0;
        CHECK_OK(lma_tok_encode(t, text, strlen(text), add, &ids, &nid));
        int ok = (size_t)cJSON_GetArraySize(want) == nid;
        size_t i = 0;
        if (ok) cJSON_ArrayForEach(it, want) if (ids[i++] != it->valueint) ok = 0;
        if (!ok) {
            fprintf(stderr, "  got:");
            for (i = 0; i < nid; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n  want:");
            cJSON_ArrayForEach(it, want) fprintf(stderr, " %d", it->valueint);
            fputc('\n', stderr);
        }
        CHECK(ok, "%s: ids of \"%.60s\" (add_special %d) differ from transformers", name, text, add);
        static const char *keys[2] = {"decoded", "decoded_skip"};
        for (int k = 0; k < 2 && ok; k++) {
            const cJSON *d = cJSON_GetObjectItem(c, keys[k]);
            if (!cJSON_IsString(d)) continue;
            char *out = NULL; size_t len = 0;
            CHECK_OK(lma_tok_decode(t, ids, nid, k, &out, &len));
            CHECK(out && !strcmp(out, d->valuestring), "%s: %s of \"%.60s\": \"%s\", want \"%s\"", name, keys[k], text,
                  out ? out : "", d->valuestring);
            free(out);
        }
        free(ids);
        n++;
    }
    return n;
}
#endif
