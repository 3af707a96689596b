/* data/sft: loss labels of chat examples equal those computed from
 * transformers' apply_chat_template (tests/ref/make_sft_fixtures.py: single
 * turn, system prompt, multi-turn, weight 0), and the batcher's targets follow
 * the labels, never cross examples, and resume exactly from a saved cursor. */
#include <unistd.h>
#include "core/io.h"
#include "core/json.h"
#include "data/sft.h"
#include "test.h"

static void check_fixture(const char *name) {
    char dir[1024], data[1024], exp[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/tok/%s", LMA_SRC_DIR, name);
    snprintf(data, sizeof data, "%s/tests/ref/sft/%s.jsonl", LMA_SRC_DIR, name);
    snprintf(exp, sizeof exp, "%s/tests/ref/sft/%s.expected.json", LMA_SRC_DIR, name);
    lma_tokenizer *tok = NULL;
    lma_sft_set *s = NULL;
    cJSON *j = NULL;
    lma_sft_params p = {0};
    lma_sft_stats st;
    CHECK_OK(lma_tok_load(dir, &tok));
    CHECK_OK(lma_sft_load(data, tok, &p, &s, &st));
    CHECK_OK(lma_json_load(exp, &j));
    if (!tok || !s || !j) goto done;
    const cJSON *ids = cJSON_GetObjectItem(j, "ids"), *labels = cJSON_GetObjectItem(j, "labels");
    CHECK(lma_sft_count(s) == (size_t)cJSON_GetArraySize(ids), "%s: %zu examples", name, lma_sft_count(s));
    for (size_t i = 0; i < lma_sft_count(s); i++) {
        const int32_t *x; const uint8_t *l; size_t n;
        lma_sft_example(s, i, &x, &l, &n);
        const cJSON *ei = cJSON_GetArrayItem(ids, (int)i), *el = cJSON_GetArrayItem(labels, (int)i);
        int ok_ids = n == (size_t)cJSON_GetArraySize(ei), ok_lab = ok_ids;
        for (size_t t = 0; ok_ids && t < n; t++) {
            ok_ids &= x[t] == cJSON_GetArrayItem(ei, (int)t)->valueint;
            ok_lab &= l[t] == cJSON_GetArrayItem(el, (int)t)->valueint;
        }
        CHECK(ok_ids, "%s example %zu: token ids equal apply_chat_template's", name, i);
        CHECK(ok_lab, "%s example %zu: loss labels equal the transformers mask", name, i);
    }
    /* truncation and all-tokens */
    lma_sft_free(s); s = NULL;
    p.max_len = 30; p.all_tokens = 1;
    CHECK_OK(lma_sft_load(data, tok, &p, &s, &st));
    CHECK(st.truncated == 4 && st.labelled == st.tokens - st.examples, "%s: truncated %zu, labelled %zu of %zu", name,
          st.truncated, st.labelled, st.tokens);
done:
    cJSON_Delete(j);
    lma_sft_free(s);
    lma_tok_free(tok);
}

static void check_batcher(void) {
    char dir[1024], data[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    snprintf(data, sizeof data, "%s/tests/ref/sft/bl.jsonl", LMA_SRC_DIR);
    lma_tokenizer *tok = NULL;
    lma_sft_set *s = NULL;
    lma_sft_params p = {0};
    lma_sft_stats st;
    CHECK_OK(lma_tok_load(dir, &tok));
    CHECK_OK(lma_sft_load(data, tok, &p, &s, &st));
    if (!s) { lma_tok_free(tok); return; }
    enum { B = 2, T = 100, N = B * T };
    lma_sft_batcher *a = NULL, *b = NULL;
    CHECK_OK(lma_sft_batcher_create(s, B, T, 1, 7, 42, 1, 0, &a));
    CHECK_OK(lma_sft_batcher_create(s, B, T, 1, 7, 42, 1, 0, &b));
    int32_t ids[N], tg[N], seg[N], ids2[N], tg2[N], seg2[N];
    int rows, bad = 0, labelled = 0;
    for (int k = 0; k < 6; k++) {
        CHECK_OK(lma_sft_batcher_next(a, ids, tg, seg, &rows));
        for (int i = 0; i < N; i++) {
            if (tg[i] == -100) continue;
            labelled++;
            bad += (i % T == T - 1) || seg[i + 1] != seg[i] || tg[i] != ids[i + 1];
        }
    }
    CHECK(bad == 0 && labelled > 0, "targets stay inside their example (%d bad of %d)", bad, labelled);
    CHECK(lma_sft_batcher_epoch(a) >= 1, "epochs advance");
    cJSON *cur = NULL;
    CHECK_OK(lma_sft_batcher_save(a, &cur));
    CHECK_OK(lma_sft_batcher_restore(b, cur));
    cJSON_Delete(cur);
    int same = 1;
    for (int k = 0; k < 8; k++) {
        CHECK_OK(lma_sft_batcher_next(a, ids, tg, seg, &rows));
        CHECK_OK(lma_sft_batcher_next(b, ids2, tg2, seg2, &rows));
        same &= !memcmp(ids, ids2, sizeof ids) && !memcmp(tg, tg2, sizeof tg) && !memcmp(seg, seg2, sizeof seg);
    }
    CHECK(same, "restored cursor reproduces the batches");
    lma_sft_batcher_free(a);
    lma_sft_batcher_free(b);
    /* validation: single pass, then 0 rows */
    CHECK_OK(lma_sft_batcher_create(s, B, T, 0, 7, 1, 0, 1, &a));
    int total = 0;
    for (int k = 0; k < 5; k++) { CHECK_OK(lma_sft_batcher_next(a, ids, tg, seg, &rows)); total += rows; }
    CHECK(total == 4, "single pass without packing yields each example once (%d rows)", total);
    lma_sft_batcher_free(a);
    lma_sft_free(s);
    lma_tok_free(tok);
}

static void check_errors(void) {
    char dir[1024], path[] = "/tmp/lma_sft_bad_XXXXXX";
    snprintf(dir, sizeof dir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    int fd = mkstemp(path);
    const char *txt = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}\n"
                      "{\"messages\": [oops\n";
    CHECK(fd >= 0 && write(fd, txt, strlen(txt)) == (ssize_t)strlen(txt), "write");
    close(fd);
    lma_tokenizer *tok = NULL;
    lma_sft_set *s = NULL;
    lma_sft_params p = {0};
    lma_sft_stats st;
    CHECK_OK(lma_tok_load(dir, &tok));
    CHECK(lma_sft_load(path, tok, &p, &s, &st) == LMA_ERR_FORMAT, "malformed line stops the load");
    CHECK(strstr(lma_last_error(), path) && strstr(lma_last_error(), ":2"), "names file and line: %s", lma_last_error());
    lma_clear_error();
    unlink(path);
    lma_tok_free(tok);
}

int main(void) {
    check_fixture("bl");
    check_fixture("sp");
    check_batcher();
    check_errors();
    TEST_END();
}
