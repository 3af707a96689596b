/* Chat templates against transformers' apply_chat_template on the real Llama 2, Llama 3,
 * ChatML (plain and Qwen2 with a default system prompt), Zephyr and Mistral template
 * strings (tests/ref/tok/chat.json): rendered text, ids, and assistant token spans
 * computed in Python from HF offsets. Also detection, errors and "no double BOS". */
#include "core/json.h"
#include "test.h"
#include "tok/chat_template.h"
#include "tok/tokenizer.h"

static lma_tokenizer *load(const char *name) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/tok/%s", LMA_SRC_DIR, name);
    lma_tokenizer *t = NULL;
    CHECK_OK(lma_tok_load(dir, &t));
    return t;
}

int main(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/ref/tok/chat.json", LMA_SRC_DIR);
    cJSON *root = NULL;
    CHECK_OK(lma_json_load(path, &root));
    if (!root) TEST_END();
    lma_tokenizer *bl = load("bl"), *sp = load("sp");
    if (!bl || !sp) TEST_END();
    const cJSON *convs = cJSON_GetObjectItem(root, "conversations"), *r;
    int n_renders = 0, jinja_seen[LMA_CHAT_MISTRAL + 1] = {0};
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(root, "renders")) {
        const char *fmt = cJSON_GetObjectItem(r, "format")->valuestring;
        const char *tmpl = cJSON_GetObjectItem(r, "template")->valuestring;
        const lma_tokenizer *t = !strcmp(cJSON_GetObjectItem(r, "tokenizer")->valuestring, "bl") ? bl : sp;
        int ci = cJSON_GetObjectItem(r, "conv")->valueint, gen = cJSON_IsTrue(cJSON_GetObjectItem(r, "generation_prompt"));
        const cJSON *conv = cJSON_GetArrayItem(convs, ci), *m;
        lma_chat_msg msgs[16]; size_t n = 0;
        cJSON_ArrayForEach(m, conv) {
            msgs[n].role = cJSON_GetObjectItem(m, "role")->valuestring;
            msgs[n].content = cJSON_GetObjectItem(m, "content")->valuestring;
            n++;
        }
        lma_chat_format f;
        char *defsys = NULL;
        CHECK_OK(lma_chat_detect(tmpl, &f, &defsys));
        CHECK(!strcmp(lma_chat_format_name(f), fmt), "template for %s detected as %s", fmt, lma_chat_format_name(f));
        /* the Jinja a trained model keeps is one of these HF-rendered templates, verbatim */
        if (!defsys) {
            CHECK(!strcmp(lma_chat_jinja(f), tmpl), "lma_chat_jinja(%s) is the fixture's template", fmt);
            jinja_seen[f] = 1;
        }
        free(defsys);
        char *text = NULL; size_t len = 0;
        CHECK_OK(lma_chat_render(t, tmpl, msgs, n, gen, &text, &len, NULL, NULL));
        const char *want = cJSON_GetObjectItem(r, "text")->valuestring;
        CHECK(text && !strcmp(text, want), "%s conv %d gen %d: rendered\n%s\nwant\n%s", fmt, ci, gen, text ? text : "", want);
        free(text);
        int32_t *ids = NULL; size_t nid = 0, *spans = NULL, nsp = 0;
        CHECK_OK(lma_chat_encode(t, tmpl, msgs, n, gen, &ids, &nid, &spans, &nsp));
        const cJSON *wids = cJSON_GetObjectItem(r, "ids"), *it;
        int ok = (size_t)cJSON_GetArraySize(wids) == nid;
        size_t i = 0;
        if (ok) cJSON_ArrayForEach(it, wids) if (ids[i++] != it->valueint) ok = 0;
        CHECK(ok, "%s conv %d gen %d: ids differ from HF", fmt, ci, gen);
        const cJSON *wsp = cJSON_GetObjectItem(r, "assistant_spans");
        ok = (size_t)cJSON_GetArraySize(wsp) == nsp;
        i = 0;
        if (ok) cJSON_ArrayForEach(it, wsp) {
            if ((size_t)cJSON_GetArrayItem(it, 0)->valueint != spans[2 * i] ||
                (size_t)cJSON_GetArrayItem(it, 1)->valueint != spans[2 * i + 1]) ok = 0;
            i++;
        }
        CHECK(ok, "%s conv %d gen %d: assistant spans differ (%zu spans, first [%zu,%zu))", fmt, ci, gen, nsp,
              nsp ? spans[0] : 0, nsp ? spans[1] : 0);
        /* never a double BOS */
        int32_t bos = lma_tok_bos_id(t);
        CHECK(!(nid >= 2 && ids[0] == bos && ids[1] == bos), "%s: double BOS", fmt);
        free(ids); free(spans);
        n_renders++;
    }
    CHECK(n_renders >= 40, "only %d renders in the fixture", n_renders);

    /* by name; the tokenizer's own template (bl: Llama 3) when no spec */
    lma_chat_msg hi[] = {{"user", "hi"}, {"assistant", "yo"}};
    char *a = NULL, *b = NULL; size_t al, bl_;
    CHECK_OK(lma_chat_render(bl, NULL, hi, 2, 0, &a, &al, NULL, NULL));
    CHECK_OK(lma_chat_render(bl, "llama3", hi, 2, 0, &b, &bl_, NULL, NULL));
    CHECK(a && b && !strcmp(a, b) && strstr(a, "<|start_header_id|>assistant<|end_header_id|>\n\nyo<|eot_id|>"),
          "default template render: %s", a ? a : "");
    free(a); free(b);
    /* errors */
    lma_chat_format f;
    CHECK(lma_chat_detect("{% for m in messages %}{{ m.content }}{% endfor %}", &f, NULL) == LMA_ERR_UNSUPPORTED &&
          strstr(lma_last_error(), "llama2, llama3, chatml"), "unrecognized template error lists names: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_chat_render(bl, "vicuna", hi, 2, 0, &a, &al, NULL, NULL) == LMA_ERR_ARG && !a, "unknown name rejected");
    lma_clear_error();
    lma_chat_msg bad[] = {{"user", "a"}, {"user", "b"}};
    CHECK(lma_chat_render(sp, "llama2", bad, 2, 0, &a, &al, NULL, NULL) == LMA_ERR_ARG && strstr(lma_last_error(), "alternate"),
          "llama2 rejects non-alternating roles");
    lma_clear_error();
    lma_tok_free(bl); lma_tok_free(sp);
    cJSON_Delete(root);
    for (int k = 0; k <= LMA_CHAT_MISTRAL; k++)
        CHECK(jinja_seen[k], "the Jinja of %s is compared with a transformers render", lma_chat_format_name((lma_chat_format)k));
    TEST_END();
}
