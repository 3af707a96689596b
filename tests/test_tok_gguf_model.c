/* The tokenizer of the real SmolLM2-135M-Instruct Q4_1 GGUF (gpt2 model, pre "smollm",
 * ChatML template) against transformers' GGUF tokenizer (tests/ref/gguf/tok_smollm2.json):
 * ids of every fixture text, decodings, bos/eos, and the chat template rendered by
 * lma_chat_render. The model is found by its short name in the model cache
 * (core/model_path.h); without it the test exits 77 (skipped). */
#include <unistd.h>
#include "core/model_path.h"
#include "tok/chat_template.h"
#include "tok_gguf_cases.h"

int main(void) {
    char path[4096];
    if (lma_model_path_resolve("smollm2-135m-instruct", path, sizeof path) != LMA_OK) {
        printf("skipped: %s\n", lma_last_error());
        return 77;
    }
    char fx[1024];
    snprintf(fx, sizeof fx, "%s/tests/ref/gguf/tok_smollm2.json", LMA_SRC_DIR);
    cJSON *doc = NULL;
    CHECK_OK(lma_json_load(fx, &doc));
    lma_tokenizer *t = NULL;
    CHECK_OK(lma_tok_load(path, &t));
    if (!t || !doc) TEST_END();
    int n = check_cases(t, doc, "smollm2");
    CHECK(lma_tok_bos_id(t) == 1 && lma_tok_eos_id(t) == 2, "bos %d eos %d, want 1 (<|im_start|>) and 2 (<|im_end|>)",
          lma_tok_bos_id(t), lma_tok_eos_id(t));
    CHECK(lma_tok_vocab_size(t) == 49152, "vocab size %d", lma_tok_vocab_size(t));
    /* the chat template: recognized as ChatML and rendered as transformers renders it */
    const cJSON *c, *m;
    int nchat = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, "chat")) {
        lma_chat_msg msgs[8]; size_t nm = 0;
        cJSON_ArrayForEach(m, cJSON_GetObjectItem(c, "messages")) {
            msgs[nm].role = cJSON_GetObjectItem(m, "role")->valuestring;
            msgs[nm].content = cJSON_GetObjectItem(m, "content")->valuestring;
            nm++;
        }
        int gen = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt"));
        char *text = NULL; size_t len = 0;
        CHECK_OK(lma_chat_render(t, NULL, msgs, nm, gen, &text, &len, NULL, NULL));
        const char *want = cJSON_GetObjectItem(c, "text")->valuestring;
        CHECK(text && !strcmp(text, want), "chat render:\n%s\nwant\n%s", text ? text : "", want);
        free(text);
        nchat++;
    }
    CHECK(nchat == 2, "%d chat renders", nchat);
    lma_chat_format f;
    char *defsys = NULL;
    CHECK_OK(lma_chat_detect(lma_tok_chat_template(t), &f, &defsys));
    CHECK(f == LMA_CHAT_CHATML && defsys && strstr(defsys, "SmolLM"), "template not ChatML with SmolLM's default system");
    free(defsys);
    printf("%d fixture cases\n", n);
    lma_tok_free(t);
    cJSON_Delete(doc);
    TEST_END();
}
