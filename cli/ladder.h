/* The adaptation ladder, measured on the user's own task (`lmadapt advise --measure`, and
 * `lmadapt demo` on its embedded task): zero-shot -> k-shot ICL -> RAG over documents ->
 * a short LoRA run -> RAG + LoRA, each rung scored on the same eval set, then what the
 * LoRA model forgot against the base (perplexity on held-out general text, MMLU in cloze
 * form), one table, summary.json, and a recommendation taken from the measurements.
 *
 * Every rung asks the question through the model's chat template: zero-shot and lora as the
 * user turn; icl with k shots (knn) as prior turns; rag with the shots and, as the last
 * turn, `rag ask`'s user message (numbered sources, then the question) within the token
 * budget; rag+lora that message alone. The LoRA training set holds each training example
 * both ways (plain, and with the sources retrieved for it: retrieval-aware, as `rag
 * make-sft`), so the adapter sees at training the prompts it is asked at inference.
 * Greedy decoding to the end of the turn (or max_tokens).
 * Scoring (eval/gencheck.h lma_gen_check_json_fields): when a reference output is a JSON
 * object, the answer is format-valid when it is (whole, trimmed, a ``` fence aside) an
 * object holding every key of the reference, and correct when the first JSON object in it
 * has the reference's value at every key (a right answer with a citation after it is
 * correct but not format-valid); other references: exact match after trimming.
 *
 * A rung without its input (no pool, docs or training set) is skipped with the reason.
 * Finished rungs are kept in OUT/rungs/<method>.json and reused by a later run unless
 * fresh; LoRA trains with `lmadapt sft` into OUT/lora (reused when OUT/lora/final exists).
 * Lives in cli/ because it composes commands (sft, rag index) as they run from the shell. */
#ifndef LMA_CLI_LADDER_H
#define LMA_CLI_LADDER_H

typedef struct {
    const char *cmd;      /* "advise --measure" | "demo": message prefix */
    const char *model;    /* chat model (HF folder, .gguf or short name), resolved */
    const char *model_name; /* as the user named it (summary.json); NULL: model */
    const char *task;     /* eval set: JSONL {"input", "output"} */
    const char *pool;     /* ICL shots (NULL: the training set, if any) */
    const char *docs;     /* RAG: a file or folder to index (NULL: no RAG rung) */
    const char *embed;    /* embedding model of RAG and knn shots */
    const char *train;    /* LoRA: JSONL {"input", "output"} (NULL: no LoRA rung) */
    const char *general;  /* held-out general text: perplexity before/after LoRA (NULL: none) */
    const char *mmlu;     /* MMLU folder (val/ and dev/ CSVs): cloze accuracy before/after (NULL: none) */
    const char *out;      /* run folder */
    const char *device;
    const char *task_name;
    int limit;            /* questions of the eval set used (0: all) */
    int shots;            /* ICL k (4) */
    int k;                /* RAG sources (3) */
    int budget;           /* RAG prompt tokens, shots included (640) */
    int max_tokens;       /* per answer (48) */
    int lora_steps, lora_batch, lora_seq, lora_rank; /* 16 steps of 2 x 640 tokens, rank 8 */
    double lora_lr;
    int mmlu_limit;       /* items per subject (1) */
    int general_tokens;   /* tokens of general text scored (4096) */
    int fresh;            /* recompute every rung */
    int dequantize;       /* GGUF on the CPU: fp32 weights instead of the quantized blocks */
    int json;             /* print summary.json instead of the table */
    double budget_minutes; /* rungs not started once the run is past it (0: none) */
} cli_ladder;

void cli_ladder_defaults(cli_ladder *L);
/* Runs the ladder; returns the exit status (0 ok, 1 failed). */
int cli_ladder_run(const cli_ladder *L);
#endif
