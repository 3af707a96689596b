/* Constrained decoding (infer/json_constraint.h): a random-weight model sampled at
 * temperature 1 with --format json gives JSON that cJSON parses on every seed, and with a
 * schema a value that this file's own validator accepts (nested objects and arrays of
 * item schemas, enums, every scalar type, required keys), including at budgets just
 * above the shortest output; a budget below it is refused; unsupported schemas are
 * refused naming the keyword. The tokenizer is a byte-level BPE (tests/ref/tok/bl).
 * With argument "cuda" the model runs on the GPU (ctest label cuda; 77 without one). */
#include "core/json.h"
#include "infer/generate.h"
#include "infer/json_constraint.h"
#include "sample_loop.h"
#include "test.h"

/* 1 when v is valid against schema s (the subset json_constraint supports) */
static int valid(const cJSON *s, const cJSON *v) {
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    if (en) {
        for (const cJSON *e = en->child; e; e = e->next)
            if (cJSON_Compare(e, v, 1)) return 1;
        return 0;
    }
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(s, "type");
    if (!ty) return 1;
    const char *t = ty->valuestring;
    if (!strcmp(t, "string")) return cJSON_IsString(v);
    if (!strcmp(t, "boolean")) return cJSON_IsBool(v);
    if (!strcmp(t, "null")) return cJSON_IsNull(v);
    if (!strcmp(t, "number")) return cJSON_IsNumber(v);
    if (!strcmp(t, "integer")) return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble);
    if (!strcmp(t, "array")) {
        if (!cJSON_IsArray(v)) return 0;
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(s, "items");
        for (const cJSON *e = v->child; it && e; e = e->next)
            if (!valid(it, e)) return 0;
        return 1;
    }
    if (!strcmp(t, "object")) {
        if (!cJSON_IsObject(v)) return 0;
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
        const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
        for (const cJSON *r = req ? req->child : NULL; r; r = r->next)
            if (!cJSON_GetObjectItemCaseSensitive(v, r->valuestring)) return 0;
        for (const cJSON *m = v->child; props && m; m = m->next) {
            const cJSON *ps = cJSON_GetObjectItemCaseSensitive(props, m->string);
            if (!ps || !valid(ps, m)) return 0; /* only listed keys */
            int dup = 0;
            for (const cJSON *o = v->child; o != m; o = o->next) dup |= !strcmp(o->string, m->string);
            if (dup) return 0;
        }
        return 1;
    }
    return 0;
}

static const lma_backend *g_be;

/* an output parses, and validates against the schema ctx (NULL: any object) */
static int json_judge(void *ctx, const char *what, int seed, const lma_gen_result *r) {
    const cJSON *schema = ctx;
    cJSON *v = cJSON_ParseWithLength(r->text, r->len);
    int ok = v && (!schema || valid(schema, v)) && (schema || cJSON_IsObject(v));
    if (!ok) fprintf(stderr, "%s seed %d: not valid: %.*s\n", what, seed, (int)r->len, r->text);
    cJSON_Delete(v);
    return ok;
}

/* generates with the constraint at temperature 1 over `seeds` seeds; counts outputs that
 * parse (and, with a schema, validate) */
static void run(lma_model *m, const lma_tokenizer *tok, const char *schema_text, int max_tokens, int seeds,
                const char *what) {
    cJSON *schema = schema_text ? cJSON_Parse(schema_text) : NULL;
    lma_json_constraint *jc = NULL;
    CHECK_OK(lma_json_constraint_new(tok, schema, &jc));
    if (!jc) { cJSON_Delete(schema); return; }
    int complete = 0;
    int good = test_sample_loop(m, tok, jc, max_tokens, seeds, 1.0f, 7919, 1, what, json_judge, schema, &complete);
    CHECK(good == seeds, "%s: %d of %d outputs valid (max_tokens %d)", what, good, seeds, max_tokens);
    CHECK(complete == seeds, "%s: every output ends as soon as the value is complete (%d of %d)", what, complete, seeds);
    lma_json_constraint_free(jc);
    cJSON_Delete(schema);
}

int main(int argc, char **argv) {
    g_be = lma_backend_cpu();
    if (argc > 1 && lma_backend_select(argv[1], &g_be) != LMA_OK) {
        printf("no %s backend here: skipped\n", argv[1]);
        return 77;
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(dir, &tok));
    if (!tok) TEST_END();
    lma_model *m = test_random_model(g_be, lma_tok_vocab_size(tok), 42);
    if (!m) TEST_END();

    run(m, tok, NULL, 48, 30, "json format");
    run(m, tok, NULL, 2, 5, "json format at its shortest budget");
    const char *nested =
        "{\"type\":\"object\",\"properties\":{"
        "\"name\":{\"type\":\"string\"},"
        "\"age\":{\"type\":\"integer\"},"
        "\"score\":{\"type\":\"number\"},"
        "\"ok\":{\"type\":\"boolean\"},"
        "\"none\":{\"type\":\"null\"},"
        "\"color\":{\"enum\":[\"red\",\"green\",\"blue\",1,10,true,null]},"
        "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"bb\"]}},"
        "\"rows\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
        "\"x\":{\"type\":\"integer\"},\"ys\":{\"type\":\"array\",\"items\":{\"type\":\"number\"}}},"
        "\"required\":[\"x\",\"ys\"]}}},"
        "\"required\":[\"name\",\"color\",\"rows\"]}";
    run(m, tok, nested, 120, 25, "nested schema");
    cJSON *ns = cJSON_Parse(nested);
    lma_json_constraint *jc = NULL;
    CHECK_OK(lma_json_constraint_new(tok, ns, &jc));
    int need = jc ? lma_json_constraint_min_tokens(jc) : 0;
    /* {"name":"","color":1,"rows":[]} is the shortest: 2 + 9+2 + 1+10+1 + 1+9+2 */
    CHECK(need == (int)strlen("{\"name\":\"\",\"color\":1,\"rows\":[]}"), "shortest output %d bytes", need);
    lma_json_constraint_free(jc);
    cJSON_Delete(ns);
    run(m, tok, nested, need, 10, "nested schema at its shortest budget");
    run(m, tok, nested, need + 3, 10, "nested schema at a tight budget");
    run(m, tok, "{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}", 30, 15, "array of integers");
    run(m, tok, "{\"enum\":[\"yes\",\"no\",\"maybe\"]}", 8, 10, "enum at the top");

    /* refusals */
    lma_gen_params p = {0};
    p.max_tokens = need - 1;
    p.sample = lma_sample_default_params();
    ns = cJSON_Parse(nested);
    CHECK_OK(lma_json_constraint_new(tok, ns, &jc));
    p.constraint = jc;
    int32_t prompt[2] = {1, 2};
    lma_gen_result r;
    CHECK(lma_generate(m, tok, prompt, 2, &p, &r) == LMA_ERR_ARG && strstr(lma_last_error(), "too small"),
          "a budget below the shortest output is refused: %s", lma_last_error());
    lma_clear_error();
    lma_json_constraint_free(jc);
    cJSON_Delete(ns);
    const char *bad[] = {"{\"type\":\"string\",\"pattern\":\"a+\"}", "{\"anyOf\":[{\"type\":\"string\"}]}",
                         "{\"type\":[\"string\",\"null\"]}", "{\"type\":\"object\",\"additionalProperties\":true}"};
    for (int i = 0; i < 4; i++) {
        cJSON *b = cJSON_Parse(bad[i]);
        lma_json_constraint *x = NULL;
        CHECK(lma_json_constraint_new(tok, b, &x) == LMA_ERR_UNSUPPORTED && strstr(lma_last_error(), "supported:") && !x,
              "refused: %s (%s)", bad[i], lma_last_error());
        lma_clear_error();
        cJSON_Delete(b);
    }
    lma_model_free(m);
    lma_tok_free(tok);
    TEST_END();
}
