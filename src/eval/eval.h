/* Evaluation suites: perplexity on text, multiple choice in MMLU form and generation
 * tasks from JSONL, run on one model; and the comparison of two models on the same
 * suite (the forgetting report: the change on general sets beside the gain on
 * domain sets).
 *
 * Task spec (command line):  [general:|domain:]KIND:PATH   KIND = ppl | mmlu | gen
 *   ppl   PATH = a text file or a folder of them. Each file is tokenized (with BOS when
 *         the tokenizer adds one) and scored in windows of W tokens (default: the
 *         model context) advanced by S tokens (default W/2): every token but the first
 *         is scored exactly once, with at least W-S tokens of context once past the
 *         first window (the "sliding window" of HF's perplexity guide). Reports
 *         token-level perplexity exp(NLL/tokens) and bits per byte.
 *   mmlu  see eval/mmlu.h; k shots; log-likelihood of " A".." D" (eval/scorer.h),
 *         argmax; per-subject, macro (mean over subjects) and micro (over items)
 *         accuracy. The main score is micro accuracy.
 *   gen   JSONL, one object per line: "prompt" (used as is) or "question" (rendered as
 *         "Question: {question}\nAnswer:", GSM8K-style, with "Question:" as a stop
 *         string); "answer" (string or number); optional "check" (exact | number |
 *         json | yaml, see eval/gencheck.h), "required_keys" (list), "stop" (list) and
 *         "schema" (json: a JSON schema the output is also validated against, by the
 *         constraint's own automaton, lma_json_schema_check).
 *         Default check: number when the answer has "####", else exact. Greedy
 *         decoding with the KV cache until EOS, a stop string or max tokens.
 *         With a judge (params.judge) each output is also scored on the rubric
 *         (eval/judge.h): "sources" (optional) go to the judge, "label" (optional)
 *         {criterion: score} gives agreement; result.judge holds the scores.
 *   passkey  no file: eval/passkey.h prompts at each context length x depth
 *         (params.passkey_*), trials keys a cell, greedy, 8 new tokens; accuracy per
 *         cell (result.cells) and over all; the score is the overall accuracy.
 *   judge JSONL of judged items: "question" (or "prompt"), "response" (or "answer"),
 *         optional "sources" and "label"; the MODEL is the judge (params.rubric); no
 *         reference answer. Metric "agree" (mean over criteria of exact agreement with
 *         the labels) when any item has labels, else "score" (mean over criteria of
 *         the mean score scaled to [0, 1] by the criterion's range).
 *
 * Ownership: results own their strings and arrays (lma_eval_result_free). JSON from
 * the *_json functions is a new cJSON tree for the caller (cJSON_Delete). The library
 * prints nothing; progress bars go to stderr through core/progress when asked. */
#ifndef LMA_EVAL_EVAL_H
#define LMA_EVAL_EVAL_H
#include <cjson/cJSON.h>
#include "eval/judge.h"
#include "eval/mmlu.h"
#include "eval/scorer.h"
#include "model/llama.h"
#include "tok/tokenizer.h"

typedef enum { LMA_EVAL_PPL = 0, LMA_EVAL_MMLU, LMA_EVAL_GEN, LMA_EVAL_JUDGE, LMA_EVAL_PASSKEY } lma_eval_kind;
typedef enum { LMA_EVAL_UNTAGGED = 0, LMA_EVAL_GENERAL, LMA_EVAL_DOMAIN } lma_eval_tag;

typedef struct {
    lma_eval_kind kind;
    lma_eval_tag tag;
    char path[4096];
    char name[256];      /* "mmlu:<folder name>", "ppl:<file name>", ... (unique in a suite) */
} lma_eval_task;

/* "[general:|domain:]KIND:PATH", or "[TAG:]passkey" (no path) */
lma_status lma_eval_task_parse(const char *spec, lma_eval_task *out);
const char *lma_eval_kind_name(lma_eval_kind k);
const char *lma_eval_tag_name(lma_eval_tag t);

typedef struct {
    int shots;                /* MMLU k (default 5) */
    const char *mmlu_split;   /* NULL: test, else val, else dev */
    size_t limit;             /* 0 = all; else at most this many items per MMLU subject and
                                 per gen file, tokens per ppl file */
    lma_eval_score_mode mode; /* MMLU scoring path */
    int mmlu_form;            /* lma_mmlu_form: letter (default) or cloze */
    int ppl_window, ppl_stride; /* 0 = model context / window/2 */
    int gen_max_tokens;       /* default 256 */
    int gen_check;            /* -1 = per record / automatic, else an lma_gen_check */
    int chat;                 /* gen: render prompts as one user turn of the chat template */
    const int32_t *stop_ids; int n_stop_ids; /* gen: EOS ids */
    struct lma_json_constraint *gen_constraint; /* gen: constrained decoding (infer/json_constraint.h), or NULL */
    const cJSON *gen_schema;  /* gen: json outputs are also validated against it (a record's own
                                 "schema" wins), or NULL */
    struct lma_grammar *gen_grammar; /* gen: every output is also checked against this GBNF grammar
                                        (infer/grammar.h, compiled as a validator), or NULL */
    const lma_rubric *rubric; /* judge tasks (the model is the judge) and `judge` below */
    lma_eval_judge *judge;    /* gen: each output is also scored by this judge, or NULL */
    const int *passkey_ctx; int n_passkey_ctx;         /* passkey: context lengths (tokens) */
    const double *passkey_depths; int n_passkey_depths; /* passkey: key depths in [0, 1] */
    int passkey_trials;       /* passkey: keys per (length, depth) cell (default 5) */
    uint64_t passkey_seed;    /* passkey: the keys' seed */
    int max_active;           /* gen, judge, passkey: sequences generated together (default 8;
                                 infer/generate.h, lma_generate_batch) */
    int progress;             /* draw a progress bar on stderr */
} lma_eval_params;
lma_eval_params lma_eval_default_params(void);

typedef struct {
    char *name;
    long n, correct;
    char *pred, *gold; /* MMLU: per item, the letter chosen and the answer ('A'..'D', n chars); else NULL */
} lma_eval_group;
typedef struct { int context; double depth; long n, correct; double prompt_tokens; } lma_passkey_cell;

typedef struct {
    lma_eval_task task;
    const char *metric;      /* "acc" or "ppl" */
    double score;            /* acc (MMLU: micro) or perplexity */
    int higher_is_better;
    long n, correct;         /* acc tasks: items and right answers */
    double macro;            /* MMLU: mean per-subject accuracy */
    lma_eval_group *groups; size_t n_groups; /* MMLU subjects / gen checks */
    long valid;              /* gen: json/yaml outputs that parse */
    long format_n, keys_ok;  /* gen: json/yaml records; outputs that parse with every required key */
    long schema_n, schema_valid; /* gen: json records with a schema; outputs valid against it */
    long grammar_n, grammar_valid; /* gen with gen_grammar: outputs checked, and complete sentences of it */
    double nll; long tokens, bytes; /* ppl */
    double seconds;
    long tokens_run;         /* tokens through the model */
    lma_judge_stats judge;   /* judge tasks, and gen tasks with a judge (judge.rubric set) */
    long judge_tokens_run;   /* gen with a judge: tokens through the judge model */
    lma_passkey_cell *cells; size_t n_cells; /* passkey: length-major (context, depth) cells;
                                                prompt_tokens = mean prompt length */
} lma_eval_result;
void lma_eval_result_free(lma_eval_result *r);

/* One task on one model. tok is required for every kind. */
lma_status lma_eval_run(lma_model *m, const lma_tokenizer *tok, const lma_eval_task *t, const lma_eval_params *p,
                        lma_eval_result *res);

/* MMLU on any scorer (a model's or a test's), for a loaded set. */
lma_status lma_eval_mmlu(lma_eval_scorer *sc, const lma_tokenizer *tok, const lma_mmlu_set *set,
                         const lma_eval_params *p, lma_eval_result *res);

/* Fills res->score/n/correct/macro from res->groups (accuracy tasks). */
void lma_eval_finish_acc(lma_eval_result *res);

cJSON *lma_eval_result_json(const lma_eval_result *r);

/* Two models, the same suite: per task delta = b - a (accuracy points or perplexity),
 * `better` when b improves on a; per tag the mean accuracy change and the mean relative
 * perplexity change; "forgetting" = -(mean accuracy change on general tasks). */
typedef struct {
    double delta, rel; /* b - a; b / a - 1 */
    int better;
} lma_eval_delta;
lma_eval_delta lma_eval_compare_one(const lma_eval_result *a, const lma_eval_result *b);
typedef struct {
    int n_acc, n_ppl;
    double mean_dacc;      /* mean of b - a over accuracy tasks with this tag */
    double mean_rel_ppl;   /* mean of b/a - 1 over ppl tasks with this tag */
} lma_eval_tag_summary;
/* sums[3] indexed by lma_eval_tag */
void lma_eval_compare(const lma_eval_result *a, const lma_eval_result *b, size_t n, lma_eval_tag_summary sums[3]);
cJSON *lma_eval_compare_json(const lma_eval_result *a, const lma_eval_result *b, size_t n);
#endif
