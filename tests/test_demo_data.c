/* The demo's task (data/demo, docs/demo.md) keeps its promises:
 *   - every line parses: {"input", "output"}, output a JSON object {"command", "flag"} written
 *     as json.dumps writes it, input ending with the one instruction;
 *   - no flag that answers an eval question answers a training question, and no question
 *     appears twice (nothing leaks through the shots or the LoRA run);
 *   - every eval flag appears in README.md or docs/ (the RAG rung can find it), and no
 *     eval question or answer object is quoted there (nothing leaks through retrieval). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include "core/buf.h"
#include "core/io.h"
#include "test.h"

#define SUFFIX " Answer with a JSON object with the keys \"command\" and \"flag\"."

typedef struct { char q[512], out[256], flag[64]; } item;

static int load(const char *name, item *it, int cap) {
    char path[1024], *data = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/data/demo/%s", LMA_SRC_DIR, name);
    CHECK_OK(lma_read_file(path, &data, &len));
    int n = 0;
    for (char *l = data; l && *l && n < cap;) {
        char *e = strchr(l, '\n');
        if (e) *e = 0;
        cJSON *o = cJSON_Parse(l);
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "input"), *out = cJSON_GetObjectItemCaseSensitive(o, "output");
        CHECK(cJSON_IsString(in) && cJSON_IsString(out), "%s line %d: input and output strings", name, n + 1);
        if (cJSON_IsString(in) && cJSON_IsString(out)) {
            size_t il = strlen(in->valuestring), sl = strlen(SUFFIX);
            CHECK(il > sl && !strcmp(in->valuestring + il - sl, SUFFIX), "%s line %d ends with the instruction", name, n + 1);
            snprintf(it[n].q, sizeof it[n].q, "%.*s", (int)(il > sl ? il - sl : il), in->valuestring);
            snprintf(it[n].out, sizeof it[n].out, "%s", out->valuestring);
            cJSON *a = cJSON_Parse(out->valuestring);
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "command"), *f = cJSON_GetObjectItemCaseSensitive(a, "flag");
            CHECK(cJSON_GetArraySize(a) == 2 && cJSON_IsString(c) && cJSON_IsString(f) && !strncmp(f->valuestring, "--", 2),
                  "%s line %d: {\"command\", \"flag\"}", name, n + 1);
            if (cJSON_IsString(c) && cJSON_IsString(f)) {
                char want[256];
                snprintf(want, sizeof want, "{\"command\": \"%s\", \"flag\": \"%s\"}", c->valuestring, f->valuestring);
                CHECK(!strcmp(want, out->valuestring), "%s line %d: output written as json.dumps", name, n + 1);
                snprintf(it[n].flag, sizeof it[n].flag, "%s", f->valuestring);
            }
            cJSON_Delete(a);
            n++;
        }
        cJSON_Delete(o);
        l = e ? e + 1 : NULL;
    }
    free(data);
    return n;
}

/* the flag as a whole word: not followed by a letter, digit or '-' */
static int has_flag(const char *text, const char *flag) {
    size_t n = strlen(flag);
    for (const char *p = strstr(text, flag); p; p = strstr(p + 1, flag)) {
        char c = p[n];
        if (!(c == '-' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return 1;
    }
    return 0;
}

int main(void) {
    static item ev[64], tr[128];
    int ne = load("eval.jsonl", ev, 64), nt = load("train.jsonl", tr, 128);
    CHECK(ne == 24 && nt == 42, "24 eval and 42 training questions (%d, %d)", ne, nt);
    for (int i = 0; i < ne; i++)
        for (int j = 0; j < nt; j++) CHECK(strcmp(ev[i].flag, tr[j].flag), "eval flag %s also answers training", ev[i].flag);
    for (int i = 0; i < ne + nt; i++)
        for (int j = i + 1; j < ne + nt; j++) {
            const item *a = i < ne ? &ev[i] : &tr[i - ne], *b = j < ne ? &ev[j] : &tr[j - ne];
            CHECK(strcmp(a->q, b->q), "question twice: %s", a->q);
        }
    /* the documents of the RAG rung, as CMakeLists.txt embeds them: README.md, docs/ *.md */
    lma_buf all = {0};
    char path[1024], *data = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/README.md", LMA_SRC_DIR);
    CHECK_OK(lma_read_file(path, &data, &len));
    lma_buf_str(&all, data ? data : "");
    free(data);
    snprintf(path, sizeof path, "%s/docs", LMA_SRC_DIR);
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l < 4 || strcmp(e->d_name + l - 3, ".md") || !strcmp(e->d_name, "demo.md")) continue; /* as CMakeLists.txt */
        snprintf(path, sizeof path, "%s/docs/%s", LMA_SRC_DIR, e->d_name);
        CHECK_OK(lma_read_file(path, &data, &len));
        lma_buf_str(&all, data ? data : "");
        free(data);
    }
    if (d) closedir(d);
    for (int i = 0; i < ne && all.p; i++) {
        CHECK(has_flag(all.p, ev[i].flag), "eval flag %s is in the docs", ev[i].flag);
        CHECK(!strstr(all.p, ev[i].q), "the docs quote eval question '%s'", ev[i].q);
        CHECK(!strstr(all.p, ev[i].out), "the docs quote eval answer %s", ev[i].out);
    }
    lma_buf_free(&all);
    TEST_END();
}
