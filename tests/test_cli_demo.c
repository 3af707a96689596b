/* The main job: `lmadapt demo` (the adaptation ladder, cli/ladder.h) on the real
 * SmolLM2-135M-Instruct and all-MiniLM-L6-v2, shrunk (2 questions, 2 LoRA steps, 1 shot):
 *   - it exits 0 and leaves summary.json with the five rungs in ladder order, each scored
 *     in [0, 1] with format validity (the references are JSON), prompt tokens per query
 *     growing zero-shot < icl and zero-shot < rag (shots and sources cost tokens), training
 *     time only on the LoRA rungs; forgetting with both measures; a recommendation;
 *   - every answer is in rungs/<method>.answers.jsonl, and its "correct" / "format_valid"
 *     agree with the summary's score and validity (the scoring is recomputed here: the first
 *     JSON object's fields against the reference, the whole answer an object);
 *   - report.html holds the ladder table;
 *   - a second run reuses every rung and the LoRA adapter (it says so) and gives the same
 *     summary; a third with other --shots and --lora-steps measures icl, rag, the adapter and
 *     its rungs again and reuses zero-shot;
 *   - advise --measure with only --task measures zero-shot and skips the other rungs, each
 *     with its reason; its usage errors.
 * Without the fetched models the test exits 77 (skipped). */
#include <cjson/cJSON.h>
#include <math.h>
#include <sys/wait.h>
#include "core/io.h"
#include "core/json.h"
#include "core/model_path.h"
#include "eval/gencheck.h"
#include "test.h"

static int run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, cap - 1, p) : 0;
    out[n] = 0;
    int st = p ? pclose(p) : -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int main(void) {
    char path[4096];
    if (lma_model_path_resolve("smollm2-135m-instruct", path, sizeof path) != LMA_OK ||
        lma_model_path_resolve("all-minilm-l6-v2", path, sizeof path) != LMA_OK) {
        printf("SKIP: models not fetched (scripts/fetch-models.sh)\n");
        return 77;
    }
    lma_clear_error();
    char dir[] = "/tmp/lma_cli_demo_XXXXXX", cmd[2048];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    static char out[1 << 18];
    /* advise --measure: the rungs without their inputs are skipped, with the reason */
    char task[1200];
    snprintf(task, sizeof task, "%s/eval.jsonl", dir);
    const char *line = "{\"input\": \"Say OK.\", \"output\": \"OK\"}\n";
    CHECK_OK(lma_write_file_atomic(task, line, strlen(line)));
    snprintf(cmd, sizeof cmd, "%s advise --measure --model smollm2-135m-instruct --task %s --out %s/adv --max-tokens 4 "
             "--threads 2 2>&1", LMA_CLI, task, dir);
    CHECK(run(cmd, out, sizeof out) == 0, "advise --measure exits 0:\n%s", out);
    CHECK(strstr(out, "icl        skipped: no pool of examples (--pool or --train)") &&
              strstr(out, "rag        skipped: no documents (--docs)") &&
              strstr(out, "lora       skipped: no training set (--train)") &&
              strstr(out, "rag+lora   skipped: needs both --docs and --train") && strstr(out, "zero-shot "),
          "zero-shot measured, the rest skipped with reasons:\n%s", out);
    snprintf(cmd, sizeof cmd, "%s advise --measure --task %s 2>&1", LMA_CLI, task);
    CHECK(run(cmd, out, sizeof out) == 2 && strstr(out, "--measure needs --model"), "--measure without --model: %s", out);
    snprintf(cmd, sizeof cmd, "%s advise --task nonsense 2>&1", LMA_CLI);
    CHECK(run(cmd, out, sizeof out) == 2 && strstr(out, "expected qa | format"), "a bad --task: %s", out);
    snprintf(cmd, sizeof cmd, "%s demo --out %s/run --limit 2 --lora-steps 2 --shots 1 --mmlu-limit 1 --threads 2 2>&1",
             LMA_CLI, dir);
    CHECK(run(cmd, out, sizeof out) == 0, "demo exits 0:\n%s", out);
    CHECK(strstr(out, "recommendation: ") != NULL, "a recommendation is printed");

    snprintf(path, sizeof path, "%s/run/summary.json", dir);
    cJSON *s = NULL;
    CHECK_OK(lma_json_load(path, &s));
    const char *names[5] = {"zero-shot", "icl", "rag", "lora", "rag+lora"};
    const cJSON *rungs = cJSON_GetObjectItemCaseSensitive(s, "rungs");
    CHECK(cJSON_GetArraySize(rungs) == 5, "five rungs");
    double ptok[5] = {0};
    for (int i = 0; i < 5 && cJSON_GetArraySize(rungs) == 5; i++) {
        const cJSON *r = cJSON_GetArrayItem(rungs, i);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "method");
        CHECK(cJSON_IsString(m) && !strcmp(m->valuestring, names[i]), "rung %d is %s", i, names[i]);
        double sc = num(r, "score"), fv = num(r, "format_valid"), ts = num(r, "train_seconds");
        ptok[i] = num(r, "prompt_tokens_per_query");
        CHECK(sc >= 0 && sc <= 1 && fv >= 0 && fv <= 1, "%s: score %g, format_valid %g in [0, 1]", names[i], sc, fv);
        CHECK(ptok[i] > 0 && num(r, "peak_gib") > 0, "%s: prompt tokens and peak measured", names[i]);
        CHECK((i >= 3) == (ts > 0), "%s: training time %g only on the LoRA rungs", names[i], ts);
        /* the answers file agrees with the summary */
        char ap[4300];
        snprintf(ap, sizeof ap, "%s/run/rungs/%s.answers.jsonl", dir, names[i]);
        char *text = NULL;
        size_t len = 0;
        CHECK_OK(lma_read_file(ap, &text, &len));
        int n = 0, correct = 0, valid = 0;
        for (char *l = text; l && *l;) {
            char *e = strchr(l, '\n');
            if (e) *e = 0;
            cJSON *o = cJSON_Parse(l);
            const cJSON *ans = cJSON_GetObjectItemCaseSensitive(o, "answer"), *ref = cJSON_GetObjectItemCaseSensitive(o, "output");
            if (cJSON_IsString(ans) && cJSON_IsString(ref)) {
                int v = 0, ok = lma_gen_check_json_fields(ans->valuestring, strlen(ans->valuestring), ref->valuestring, &v);
                CHECK(ok == cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "correct")), "%s answer %d: correct", names[i], n);
                CHECK(v == cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "format_valid")), "%s answer %d: valid", names[i], n);
                correct += ok, valid += v == 1, n++;
            }
            cJSON_Delete(o);
            l = e ? e + 1 : NULL;
        }
        CHECK(n == 2, "%s: 2 answers (%d)", names[i], n);
        CHECK(n && fabs(sc - (double)correct / n) < 1e-9 && fabs(fv - (double)valid / n) < 1e-9,
              "%s: the summary's score and validity are the answers' (%d, %d of %d)", names[i], correct, valid, n);
        free(text);
    }
    CHECK(ptok[1] > ptok[0] && ptok[2] > ptok[0], "shots and sources cost prompt tokens (%.0f, %.0f, %.0f)", ptok[0],
          ptok[1], ptok[2]);
    const cJSON *fg = cJSON_GetObjectItemCaseSensitive(s, "forgetting");
    CHECK(cJSON_GetArraySize(fg) == 2, "forgetting: perplexity and MMLU");
    for (int i = 0; i < cJSON_GetArraySize(fg); i++) {
        const cJSON *f = cJSON_GetArrayItem(fg, i);
        CHECK(num(f, "base") > 0 && num(f, "adapted") > 0 && fabs(num(f, "adapted") - num(f, "base") - num(f, "delta")) < 1e-9,
              "forgetting %d: base, adapted, delta", i);
    }
    const cJSON *rec = cJSON_GetObjectItemCaseSensitive(s, "recommendation");
    CHECK(cJSON_IsString(rec) && strlen(rec->valuestring) > 10, "a recommendation in summary.json");

    snprintf(path, sizeof path, "%s/run/report.html", dir);
    char *html = NULL;
    size_t hl = 0;
    CHECK_OK(lma_read_file(path, &html, &hl));
    CHECK(html && strstr(html, "rag+lora") && strstr(html, "<svg"), "report.html: the ladder and the LoRA curves");
    free(html);

    /* a second run: everything reused, the same summary */
    CHECK(run(cmd, out, sizeof out) == 0, "second demo exits 0:\n%s", out);
    CHECK(strstr(out, "rag+lora measured before") && strstr(out, "LoRA adapter trained before") &&
              strstr(out, "forgetting measured before"),
          "the second run reuses the rungs, the adapter and the forgetting:\n%s", out);
    snprintf(path, sizeof path, "%s/run/summary.json", dir);
    cJSON *s2 = NULL;
    CHECK_OK(lma_json_load(path, &s2));
    CHECK(s && s2 && cJSON_Compare(cJSON_GetObjectItem(s, "rungs"), cJSON_GetObjectItem(s2, "rungs"), 1),
          "the same rungs the second time");
    cJSON_Delete(s);
    cJSON_Delete(s2);

    /* a third run with other shots and LoRA steps: what depends on them is measured again */
    snprintf(cmd, sizeof cmd, "%s demo --out %s/run --limit 2 --lora-steps 3 --shots 2 --mmlu-limit 1 --threads 2 2>&1",
             LMA_CLI, dir);
    CHECK(run(cmd, out, sizeof out) == 0, "third demo exits 0:\n%s", out);
    CHECK(strstr(out, "zero-shot measured before") && !strstr(out, "icl measured before") &&
              !strstr(out, "rag measured before") && strstr(out, "other settings: training again") &&
              !strstr(out, "rag+lora measured before"),
          "changed --shots and --lora-steps: icl, rag, the adapter and its rungs again, zero-shot reused:\n%s", out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
