/* The method advisor (advise/advise.h): the seed's answer on the scripted scenarios of
 * issue 18, each branch of the flow, the cost arithmetic by hand, and the CLI's JSON. */
#include <cjson/cJSON.h>
#include "advise/advise.h"
#include "advise/mem.h"
#include "test.h"

static lma_advice run(const lma_advise_in *in) {
    lma_advice a;
    CHECK_OK(lma_advise(in, &a));
    return a;
}

static int is(const lma_advice *a, const char *m) { return !strcmp(a->method, m); }

int main(void) {
    /* 1. a Q&A bot over documents that change daily -> rag */
    lma_advise_in in = lma_advise_default_in();
    in.task = LMA_TASK_QA;
    in.knowledge = 1;
    lma_advice a = run(&in);
    CHECK(is(&a, "rag"), "daily-changing documents: %s (want rag)", a.method);
    CHECK(a.prompt_tokens > 0 && strstr(a.next, "lmadapt rag index"), "rag: prompt overhead and the next command");

    /* 2. a handful of examples and no GPU -> icl */
    in = lma_advise_default_in();
    in.task = LMA_TASK_FORMAT;
    in.examples = 5;
    in.gpu_mem_gb = 0;
    a = run(&in);
    CHECK(is(&a, "icl"), "5 examples, no GPU: %s (want icl)", a.method);
    CHECK(a.gpu_hours == 0 && a.peak_gib < 0, "icl trains nothing");
    CHECK(strstr(a.next, "lmadapt icl eval") != NULL, "icl: next is icl eval (%s)", a.next);
    in.cost_per_1k = 0.5;
    a = run(&in);
    CHECK(fabs(a.cost_per_query - a.prompt_tokens / 1000 * 0.5) < 1e-12, "cost per query = tokens / 1000 x price");

    /* 3. a new output format, 2000 labelled examples, one 24 GB GPU, a 7B model -> lora or qlora */
    in = lma_advise_default_in();
    in.task = LMA_TASK_FORMAT;
    in.labelled = 2000;
    in.params = 7e9;
    in.gpu_mem_gb = 24;
    a = run(&in);
    CHECK(is(&a, "lora") || is(&a, "qlora"), "2000 format examples on 24 GB: %s (want lora or qlora)", a.method);
    CHECK(a.peak_gib > 0 && a.peak_gib <= 24, "the plan fits the GPU (%.1f GiB)", a.peak_gib);
    /* 6 N D by hand: N = 6,738,415,616, D = 2000 x 256 x 3, at 0.4 x 989 TFLOP/s */
    double want = 6.0 * 6738415616.0 * 2000 * 256 * 3 / (989e12 * 0.4) / 3600;
    CHECK(fabs(a.gpu_hours / want - 1) < 1e-9, "GPU hours %.6g, by hand %.6g", a.gpu_hours, want);

    /* 4. a new language, 20B unlabelled tokens, 20,000 GPU hours -> cpt */
    in = lma_advise_default_in();
    in.task = LMA_TASK_LANGUAGE;
    in.unlabelled_tokens = 2e10;
    in.gpu_hours = 20000;
    a = run(&in);
    CHECK(is(&a, "cpt"), "a new language with 20B tokens: %s (want cpt)", a.method);
    CHECK(a.train_tokens == 2e10, "the whole corpus fits the budget");
    /* a budget too small for the whole corpus: cpt on the share it affords */
    in.gpu_hours = 100;
    a = run(&in);
    CHECK(is(&a, "cpt") && fabs(a.gpu_hours - 100) < 1e-6, "cpt within a 100-hour budget (%.3g h)", a.gpu_hours);
    /* web-scale text and compute: pretraining */
    in.unlabelled_tokens = 2e12;
    in.gpu_hours = 1e7;
    a = run(&in);
    CHECK(is(&a, "pretrain"), "2e12 tokens, 1e7 GPU hours: %s (want pretrain)", a.method);

    /* 5. 50,000 labelled domain examples on 8 x 80 GB -> full or lora */
    in = lma_advise_default_in();
    in.task = LMA_TASK_DOMAIN;
    in.labelled = 50000;
    in.gpus = 8;
    in.gpu_mem_gb = 80;
    a = run(&in);
    CHECK(is(&a, "full") || is(&a, "lora"), "50,000 domain examples on 8 x 80 GB: %s (want full or lora)", a.method);
    /* a small model fits full fine-tuning: then full */
    in.params = 1.1e9;
    a = run(&in);
    CHECK(is(&a, "full"), "50,000 examples, 1.1B on 80 GB: %s (want full)", a.method);

    /* other branches: only QLoRA fits; nothing fits; labelled answers over documents */
    in = lma_advise_default_in();
    in.task = LMA_TASK_SKILL;
    in.labelled = 3000;
    in.params = 7e9;
    in.gpu_mem_gb = 10;
    a = run(&in);
    CHECK(is(&a, "qlora"), "7B on 10 GB: %s (want qlora)", a.method);
    in.gpu_mem_gb = 2;
    a = run(&in);
    CHECK(is(&a, "icl"), "7B on 2 GB: %s (want icl: nothing fits)", a.method);
    in = lma_advise_default_in();
    in.task = LMA_TASK_QA;
    in.labelled = 5000;
    a = run(&in);
    CHECK(!strncmp(a.method, "rag+", 4), "Q&A with 5000 labelled answers: %s (want rag + a fine-tune)", a.method);
    in.mfu = 0;
    lma_advice bad;
    CHECK(lma_advise(&in, &bad) == LMA_ERR_ARG, "MFU 0 is refused");
    lma_clear_error();

    /* the CLI's JSON: the keys */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s advise --task format --labelled 2000 --params 7e9 --gpu-mem 24 --json", LMA_CLI);
    FILE *p = popen(cmd, "r");
    char buf[8192] = "";
    size_t n = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
    buf[n] = 0;
    CHECK(p && pclose(p) == 0, "lmadapt advise --json ran");
    cJSON *j = cJSON_Parse(buf);
    CHECK(j != NULL, "advise --json is JSON: %s", buf);
    static const char *keys[] = {"method", "alternatives", "reasons", "peak_gib", "gpu_hours", "next"};
    for (size_t i = 0; j && i < 6; i++) CHECK(cJSON_GetObjectItem(j, keys[i]) != NULL, "key %s", keys[i]);
    if (j) CHECK(!strcmp(cJSON_GetObjectItem(j, "method")->valuestring, "lora"), "CLI: lora");
    cJSON_Delete(j);
    TEST_END();
}
