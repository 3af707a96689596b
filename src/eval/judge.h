/* LLM judge: a model scores an answer on a rubric's criteria, each an integer scale,
 * with its output constrained to the rubric's score schema (infer/json_constraint.h:
 * the one constraint mechanism), so every judgement parses and every score is in range.
 *
 * Rubric file (JSON):
 *   {"instructions": "optional opening line of the judge prompt",
 *    "criteria": [{"name": "groundedness", "description": "every claim is supported by
 *                  the sources", "min": 1, "max": 5}, ...]}
 *   name: 1..63 bytes of [A-Za-z0-9_-]; unique; description: a string (may be empty);
 *   min <= max integers with max - min < 64 (an enum of at most 64 values); 1..16 criteria.
 *
 * Score schema (what the judge's output is held to):
 *   {"type":"object","properties":{"<name>":{"enum":[min,...,max]},...},
 *    "required":[every name],"additionalProperties":false}
 *
 * Judge prompt (one user turn through the judge model's chat template, with the
 * generation prompt): the instructions, the criteria with their scales, "Question:",
 * "Sources:" (numbered "[1] ...", only when the item has sources), "Answer:", and the
 * reply format (lma_judge_prompt writes it; docs/eval.md shows it whole).
 *
 * Agreement with human labels: per criterion over the items that carry a label for it:
 * accuracy (exact match) and Cohen's kappa (unweighted) over the categories min..max:
 *   kappa = (p_o - p_e) / (1 - p_e), p_o = observed agreement,
 *   p_e = sum_k (judge share of k) (human share of k); undefined (NaN) when p_e = 1.
 *
 * Ownership: lma_rubric owns its strings (lma_rubric_free). A lma_eval_judge borrows its
 * model, tokenizer and rubric (they outlive it) and owns its constraint. */
#ifndef LMA_EVAL_JUDGE_H
#define LMA_EVAL_JUDGE_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include "model/llama.h"
#include "tok/tokenizer.h"

#define LMA_RUBRIC_MAX 16

typedef struct {
    char name[64];
    char *description;
    int min, max;
} lma_rubric_criterion;

typedef struct {
    char *instructions; /* NULL: the default opening line */
    lma_rubric_criterion crit[LMA_RUBRIC_MAX];
    int n;
} lma_rubric;

/* what names the source in messages ("rubric.json") */
lma_status lma_rubric_parse(const cJSON *j, const char *what, lma_rubric *r);
lma_status lma_rubric_load(const char *path, lma_rubric *r);
void lma_rubric_free(lma_rubric *r);
/* The score schema above (new tree; NULL when out of memory). */
cJSON *lma_rubric_schema(const lma_rubric *r);
/* -1 when name is not a criterion */
int lma_rubric_find(const lma_rubric *r, const char *name);

/* The judge prompt (malloc'd; NULL when out of memory). sources may be NULL. */
char *lma_judge_prompt(const lma_rubric *r, const char *question, const char *const *sources, int n_sources,
                       const char *answer);
/* 1 when text is a JSON object holding every criterion as an integer within its scale
 * (scores[i] set, rubric order); else 0. */
int lma_judge_parse(const lma_rubric *r, const char *text, size_t len, int *scores);

/* Cohen's kappa of two raters over n items with categories min..max (values outside
 * count as their own category min-1 ... never: the caller passes in-range scores). */
double lma_cohen_kappa(const int *a, const int *b, size_t n, int min, int max);

/* The judge: model + tokenizer + rubric + the compiled score constraint. */
typedef struct lma_eval_judge lma_eval_judge;
lma_status lma_eval_judge_new(lma_model *m, const lma_tokenizer *tok, const lma_rubric *r, const int32_t *stop_ids,
                              int n_stop_ids, lma_eval_judge **out);
void lma_eval_judge_free(lma_eval_judge *j);
/* One answer to score: what the judge reads, and what it said. */
typedef struct {
    const char *question; const char *const *sources; int n_sources; const char *answer;
    int scores[LMA_RUBRIC_MAX]; /* out: rubric order */
    char *text;                 /* out: the judge's raw output, malloc'd (the caller frees) */
} lma_judge_call;
/* Scores n answers (greedy, constrained), up to max_active of them generated together
 * (infer/generate.h, lma_generate_batch). *tokens_run: prompt + generated tokens (added to).
 * On failure no text is left to free. */
lma_status lma_eval_judge_score(lma_eval_judge *j, lma_judge_call *calls, size_t n, int max_active, long *tokens_run);

/* Scores collected over a task: n items x r->n criteria; labels LMA_JUDGE_NO_LABEL where
 * an item has none. The rubric is borrowed (outlives the stats). */
#define LMA_JUDGE_NO_LABEL (-2147483647 - 1)
typedef struct {
    const lma_rubric *rubric;
    int *scores, *labels; /* (n, rubric->n) */
    size_t n, cap;
} lma_judge_stats;
lma_status lma_judge_stats_add(lma_judge_stats *s, const int *scores, const int *labels);
void lma_judge_stats_free(lma_judge_stats *s);
/* Per criterion: mean score, labelled count, accuracy and kappa (NaN when undefined or
 * no labels). */
typedef struct { double mean; long n_labelled; double accuracy, kappa; } lma_judge_summary;
void lma_judge_summarize(const lma_judge_stats *s, int criterion, lma_judge_summary *out);
/* {"rubric": [{name,min,max}], "n": items, "criteria": {name: {"mean", "n_labelled"?,
 * "accuracy"?, "kappa"?}}} (kappa null when undefined) */
cJSON *lma_judge_stats_json(const lma_judge_stats *s);

/* An item's human labels: j's "label" object {criterion: integer}; labels (r->n) set to
 * LMA_JUDGE_NO_LABEL where absent. A label outside its scale, not an integer, or for an
 * unknown criterion is an error naming file:line and the field. *any = 1 when one was read. */
lma_status lma_judge_read_labels(const lma_rubric *r, const cJSON *j, const char *file, long long line, int *labels,
                                 int *any);
/* An item's sources: "sources" (a list of strings, or one string); at most cap; error
 * naming file:line when not strings. */
lma_status lma_judge_read_sources(const cJSON *j, const char *file, long long line, const char **sources, int cap,
                                  int *n);

/* A judged item's texts: "question" (or "prompt") and "response" (or "answer"); an error
 * naming file:line when either is missing. */
lma_status lma_judge_read_item(const cJSON *j, const char *file, long long line, const char **question,
                               const char **response);

/* The training set for a judge in the exact prompt it is evaluated with: each record of
 * the judge JSONL at in (question, response, sources?, label) labelled on every
 * criterion becomes {"messages": [{"role":"user","content": the judge prompt},
 * {"role":"assistant","content": {"<criterion>": label, ...} as compact JSON}]}, written
 * to out atomically. Records without a full label are skipped (*skipped). */
lma_status lma_judge_sft_write(const lma_rubric *r, const char *in, const char *out, long *written, long *skipped);
#endif
