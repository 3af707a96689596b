/* The method advisor: the seed's decision flow (docs/advise.md cites the reasoning of
 * each branch) from a description of the task, the data and the compute, to one method
 * (icl, rag, lora, qlora, full, cpt, pretrain, or a hybrid such as rag+lora), the
 * alternatives, the reasons, the training cost (6 N D FLOPs at a stated MFU -> GPU hours),
 * the peak memory from the planner (advise/mem.h), the prompt-token overhead per query of
 * ICL and RAG, and the next command to run. Pure: no I/O; `lmadapt advise` prints it. */
#ifndef LMA_ADVISE_ADVISE_H
#define LMA_ADVISE_ADVISE_H
#include "model/config.h"

typedef enum {
    LMA_TASK_QA, LMA_TASK_FORMAT, LMA_TASK_TONE, LMA_TASK_SKILL, LMA_TASK_DOMAIN, LMA_TASK_LANGUAGE, LMA_TASK_JUDGE,
    LMA_TASK_COUNT
} lma_task;
const char *lma_task_name(lma_task t); /* "qa", "format", ... */

typedef struct {
    lma_task task;
    int knowledge;             /* 1: the knowledge changes (dynamic), 0: static */
    double labelled;           /* labelled examples (input -> output) */
    double examples;           /* examples at hand for prompts (a handful) */
    double unlabelled_tokens;  /* raw text of the domain or language */
    const lma_config *cfg;     /* the model (from --model), or NULL: a Llama-shaped model of `params` */
    double params;             /* parameters when cfg is NULL (0: 7B assumed) */
    const char *model;         /* the name the next command uses (NULL: "MODEL") */
    int gpus;
    double gpu_mem_gb;         /* per GPU, GiB; 0: no GPU */
    double gpu_hours;          /* budget; 0: not given */
    double latency_ms;         /* per query; 0: not given */
    double cost_per_1k;        /* price of 1000 prompt tokens; 0: not given */
    int seq;                   /* training sequence length (tokens) */
    int tokens_per_example;    /* mean tokens of a labelled example */
    int epochs;                /* passes over the labelled data */
    double mfu;                /* model FLOPs utilisation assumed for GPU hours */
    double gpu_tflops;         /* dense bf16 peak of one GPU (TFLOP/s) */
} lma_advise_in;

#define LMA_ADVICE_MAX 8
typedef struct {
    char method[32];
    char alternatives[LMA_ADVICE_MAX][32];
    int n_alt;
    char reasons[LMA_ADVICE_MAX][400];
    int n_reasons;
    double peak_gib;            /* of the recommended training run (lmadapt, per GPU, with context); -1: none */
    int grad_ckpt;              /* the peak assumes activation checkpointing */
    double gpu_hours;           /* of the recommended training; 0: no training */
    double train_tokens;        /* D of 6 N D */
    double prompt_tokens;       /* extra prompt tokens per query (icl shots, rag passages); 0: none */
    double cost_per_query;      /* prompt_tokens at cost_per_1k; 0: not given */
    double n_params;
    char next[600];
} lma_advice;

/* The defaults of lmadapt advise (seq 2048, 512 tokens an example, 3 epochs, MFU 0.4 of an
 * H100's 989 TFLOP/s, one GPU of 80 GiB, static knowledge, task format). */
lma_advise_in lma_advise_default_in(void);
/* Runs the flow. LMA_ERR_ARG for inputs out of range (negative counts, MFU not in (0, 1]). */
lma_status lma_advise(const lma_advise_in *in, lma_advice *out);
#endif
