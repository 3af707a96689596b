/* Format validity in eval (issue 21 item 2): lma_json_schema_check (the constraint's
 * automaton as a validator) on hand-written outputs, valid and invalid against a schema
 * with required keys, enums, integers and arrays, as worked out by hand; and `lmadapt
 * eval` on a tiny random model with gen records carrying required keys and a schema:
 * without constraints the format counts are within [0, n]; with --json-schema every
 * output parses, holds its keys and is schema-valid; with --format yaml every yaml output
 * parses; --check-schema validates without constraining. */
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "core/io.h"
#include "infer/json_constraint.h"
#include "model/llama.h"
#include "test.h"

static char tmp[] = "/tmp/lma_test_eval_format_XXXXXX";

static const char *SCHEMA = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"},"
                            "\"color\":{\"enum\":[\"red\",\"blue\"]},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},"
                            "\"required\":[\"name\",\"age\"],\"additionalProperties\":false}";

static void validator(void) {
    cJSON *s = cJSON_Parse(SCHEMA);
    const char *good[] = {"{\"name\":\"a\",\"age\":3}", "{\"age\": -4, \"name\": \"b\", \"color\": \"blue\"}",
                          "{\"name\":\"x\",\"age\":0,\"tags\":[\"p\",\"q\"]}", "  {\"name\":\"\\u00e9\",\"age\":12}"};
    const char *bad[] = {"{\"name\":\"a\"}",                         /* age missing */
                         "{\"name\":\"a\",\"age\":3.5}",             /* not an integer */
                         "{\"name\":\"a\",\"age\":3,\"color\":\"green\"}", /* not in the enum */
                         "{\"name\":\"a\",\"age\":3,\"extra\":1}",   /* additional property */
                         "{\"name\":\"a\",\"age\":3,\"tags\":[1]}",  /* item type */
                         "{\"name\":\"a\",\"age\":3",                /* not closed */
                         "[\"name\"]", "", "{\"name\":\"a\",\"age\":3} {}"};
    for (int i = 0; i < 4; i++) {
        int v = -1;
        CHECK_OK(lma_json_schema_check(s, good[i], strlen(good[i]), &v));
        CHECK(v == 1, "valid: %s", good[i]);
    }
    for (int i = 0; i < 9; i++) {
        int v = -1;
        CHECK_OK(lma_json_schema_check(s, bad[i], strlen(bad[i]), &v));
        CHECK(v == 0, "invalid: %s", bad[i]);
    }
    int v = -1;
    const char *any = "{\"k\":[1,{\"x\":null}]}";
    CHECK_OK(lma_json_schema_check(NULL, any, strlen(any), &v));
    CHECK(v == 1, "no schema: any object");
    cJSON *u = cJSON_Parse("{\"anyOf\":[]}");
    CHECK(lma_json_schema_check(u, "{}", 2, &v) == LMA_ERR_UNSUPPORTED && strstr(lma_last_error(), "anyOf"),
          "an unsupported schema is an error naming the keyword");
    lma_clear_error();
    cJSON_Delete(u);
    cJSON_Delete(s);
}

static int run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 1 << 16, n = 0, k;
    char *b = malloc(cap);
    while (b && (k = fread(b + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (n + 1 == cap) { char *nb = realloc(b, cap *= 2); if (!nb) break; b = nb; }
    }
    if (b) b[n] = 0;
    int st = pclose(p);
    if (out) *out = b; else free(b);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static double fnum(const cJSON *r, const char *k) {
    const cJSON *v = get(get(r, "format"), k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

int main(void) {
    validator();
    if (!mkdtemp(tmp)) { CHECK(0, "mkdtemp"); TEST_END(); }
    char tokdir[2048], dm[2100], gen[2100], yml[2100], sch[2100], cmd[8192];
    snprintf(tokdir, sizeof tokdir, "%s/tests/ref/tok/bl", LMA_SRC_DIR);
    snprintf(dm, sizeof dm, "%s/m", tmp);
    snprintf(gen, sizeof gen, "%s/gen.jsonl", tmp);
    snprintf(yml, sizeof yml, "%s/yaml.jsonl", tmp);
    snprintf(sch, sizeof sch, "%s/schema.json", tmp);
    lma_tokenizer *tok = NULL;
    CHECK_OK(lma_tok_load(tokdir, &tok));
    if (!tok) TEST_END();
    lma_config c = {0};
    c.arch = LMA_ARCH_LLAMA; c.vocab_size = lma_tok_vocab_size(tok); c.hidden_size = 32; c.intermediate_size = 64;
    c.n_layers = 2; c.n_heads = 2; c.n_kv_heads = 1; c.head_dim = 16; c.max_position_embeddings = 512;
    c.rms_norm_eps = 1e-5; c.rope_theta = 10000; c.bos_token_id = -1; c.n_eos = 0;
    lma_tok_free(tok);
    lma_model *m = NULL;
    CHECK_OK(lma_model_create(&c, lma_backend_cpu(), &m));
    if (m) {
        CHECK_OK(lma_model_init_random(m, 4, 0.5f));
        CHECK_OK(lma_model_save(m, dm, 0, 0));
        lma_model_free(m);
    }
    char a[4200], b[4200];
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "tokenizer_config.json" : "tokenizer.json";
        snprintf(a, sizeof a, "%s/%s", tokdir, f);
        snprintf(b, sizeof b, "%s/%s", dm, f);
        CHECK_OK(lma_copy_file(a, b));
    }
    FILE *f = test_fopen(sch, "w");
    fputs(SCHEMA, f);
    fclose(f);
    f = test_fopen(gen, "w");
    for (int i = 0; i < 6; i++)
        fprintf(f, "{\"prompt\":\"Person %d as JSON:\",\"answer\":\"x\",\"check\":\"json\",\"required_keys\":[\"name\",\"age\"]}\n", i);
    fclose(f);
    f = test_fopen(yml, "w");
    for (int i = 0; i < 5; i++) fprintf(f, "{\"prompt\":\"Item %d as YAML:\",\"answer\":\"x\",\"check\":\"yaml\"}\n", i);
    fclose(f);
    const char *modes[3] = {"--check-schema", "--json-schema", NULL};
    for (int k = 0; k < 2; k++) {
        char *out = NULL;
        snprintf(cmd, sizeof cmd, "%s eval --model %s --task gen:%s --max-tokens 40 %s %s --json 2>/dev/null", LMA_CLI, dm,
                 gen, modes[k], sch);
        int rc = run(cmd, &out);
        cJSON *o = out ? cJSON_Parse(out) : NULL;
        const cJSON *r = cJSON_GetArrayItem(get(o, "results"), 0);
        CHECK(rc == 0 && r && get(r, "format"), "%s: rc %d: %s", modes[k], rc, out ? out : "");
        if (r) {
            double n = fnum(r, "n"), pa = fnum(r, "parsed"), ke = fnum(r, "required_keys"), sc = fnum(r, "schema_checked"),
                   sv = fnum(r, "schema_valid");
            CHECK(n == 6 && sc == 6 && pa >= 0 && pa <= n && ke <= pa && sv <= pa && sv <= ke, "%s: counts consistent", modes[k]);
            if (k == 1) CHECK(pa == 6 && ke == 6 && sv == 6, "constrained by the schema: every output parses, has its keys, "
                                                            "and is schema-valid (%g %g %g)", pa, ke, sv);
            else CHECK(sv == 0, "a random model without constraints: no output is schema-valid (%g)", sv);
        }
        cJSON_Delete(o);
        free(out);
    }
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "%s eval --model %s --task gen:%s --max-tokens 30 --format yaml --json 2>/dev/null", LMA_CLI,
             dm, yml);
    int rc = run(cmd, &out);
    cJSON *o = out ? cJSON_Parse(out) : NULL;
    const cJSON *r = cJSON_GetArrayItem(get(o, "results"), 0);
    CHECK(rc == 0 && r && fnum(r, "n") == 5 && fnum(r, "parsed") == 5 && fnum(r, "schema_checked") == 0,
          "--format yaml: every yaml output parses: %s", out ? out : "");
    cJSON_Delete(o);
    free(out);
    /* an object answer: accuracy = the output holds its values; a one-value enum schema forces
     * {"answer": "yes"}, so the "yes" records are right and the "no" records wrong */
    char one[2200];
    snprintf(one, sizeof one, "%s/one.json", tmp);
    f = test_fopen(one, "w");
    fputs("{\"type\":\"object\",\"properties\":{\"answer\":{\"enum\":[\"yes\"]}},\"required\":[\"answer\"],"
          "\"additionalProperties\":false}", f);
    fclose(f);
    f = test_fopen(gen, "w");
    for (int i = 0; i < 4; i++)
        fprintf(f, "{\"prompt\":\"Q%d\",\"answer\":{\"answer\":\"%s\"},\"required_keys\":[\"answer\"]}\n", i, i % 2 ? "no" : "yes");
    fclose(f);
    out = NULL;
    snprintf(cmd, sizeof cmd, "%s eval --model %s --task gen:%s --max-tokens 20 --json-schema %s --json 2>/dev/null", LMA_CLI,
             dm, gen, one);
    rc = run(cmd, &out);
    o = out ? cJSON_Parse(out) : NULL;
    r = cJSON_GetArrayItem(get(o, "results"), 0);
    CHECK(rc == 0 && r && get(r, "correct")->valuedouble == 2 && fnum(r, "required_keys") == 4 &&
              fnum(r, "schema_valid") == 4,
          "object answers: 2 of 4 right, 4 of 4 well-formed: %s", out ? out : "");
    cJSON_Delete(o);
    free(out);
    /* grammar validity: the same records under a GBNF grammar (every output a sentence of it,
     * the exact-answer accuracy beside: "yes" right on 2 of 4), and checked without it (a random
     * model's free text is no sentence of it) */
    char gbnf[2200];
    snprintf(gbnf, sizeof gbnf, "%s/yn.gbnf", tmp);
    f = test_fopen(gbnf, "w");
    fputs("root ::= \"yes\"\n", f);
    fclose(f);
    f = test_fopen(gen, "w");
    for (int i = 0; i < 4; i++) fprintf(f, "{\"prompt\":\"Q%d\",\"answer\":\"%s\",\"check\":\"exact\"}\n", i, i % 2 ? "no" : "yes");
    fclose(f);
    const char *gmodes[2] = {"--check-grammar", "--grammar"};
    for (int k = 0; k < 2; k++) {
        out = NULL;
        snprintf(cmd, sizeof cmd, "%s eval --model %s --task gen:%s --max-tokens 20 %s %s --json 2>/dev/null", LMA_CLI, dm,
                 gen, gmodes[k], gbnf);
        rc = run(cmd, &out);
        o = out ? cJSON_Parse(out) : NULL;
        r = cJSON_GetArrayItem(get(o, "results"), 0);
        const cJSON *gm = get(r, "grammar"), *gn = get(gm, "n"), *gv = get(gm, "valid"), *cr = get(r, "correct");
        CHECK(rc == 0 && cJSON_IsNumber(gn) && gn->valuedouble == 4 && cJSON_IsNumber(gv) && cJSON_IsNumber(cr) &&
                  gv->valuedouble == (k ? 4 : 0) && cr->valuedouble == (k ? 2 : 0),
              "%s: grammar-valid %s of 4 expected: %s", gmodes[k], k ? "4" : "0", out ? out : "");
        cJSON_Delete(o);
        free(out);
    }
    snprintf(cmd, sizeof cmd, "%s eval --model %s --task gen:%s --check-grammar %s 2>&1", LMA_CLI, dm, gen, sch);
    out = NULL;
    rc = run(cmd, &out);
    CHECK(rc != 0 && out && strstr(out, "schema.json:"), "a file that is no grammar: one line naming it: %s", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
