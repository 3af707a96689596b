/* Multiple choice in MMLU form (Hendrycks et al., arXiv 2009.03300) with the prompt of
 * lm-evaluation-harness (tasks/mmlu/default):
 *
 *   "The following are multiple choice questions (with answers) about {subject}.\n\n"
 *   k times:  "{question.strip()}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\nAnswer: {gold}\n\n"
 *   then:     "{question.strip()}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\nAnswer:"
 *
 * ({subject} with '_' as ' '; strip() is Python's, Unicode whitespace included), the
 * shots being the first k rows of the dev split (sampler first_n; when the evaluated
 * split is dev itself, the item is left out of its own shots, as the harness does).
 * The continuations are " A", " B", " C", " D".
 *
 * Data: the original CSV layout, one file per subject, no header, columns
 * question,A,B,C,D,answer (answer a letter): PATH/{dev,val,test}/{subject}_{split}.csv,
 * or PATH naming one split folder.
 *
 * Ownership: lma_mmlu_set owns all its strings; free with lma_mmlu_free. Prompts are
 * malloc'd for the caller. Errors name the file and line. */
#ifndef LMA_EVAL_MMLU_H
#define LMA_EVAL_MMLU_H
#include <stddef.h>
#include "core/status.h"

typedef struct {
    char *question;
    char *choices[4];
    int answer; /* 0..3 */
} lma_mmlu_item;

typedef struct {
    char *name;                              /* e.g. "college_mathematics" */
    lma_mmlu_item *items; size_t n_items;    /* the evaluated split, file order */
    lma_mmlu_item *shots; size_t n_shots;    /* the dev split (few-shot pool); may be empty */
    int shots_are_items;                     /* the evaluated split is dev: shots == items */
} lma_mmlu_subject;

typedef struct {
    lma_mmlu_subject *subj; size_t n;        /* sorted by name */
    char split[16];                          /* the evaluated split: "test", "val", "dev", ... */
} lma_mmlu_set;

/* One Hendrycks CSV file (6 columns, answer A-D). *items malloc'd; free with lma_mmlu_items_free. */
lma_status lma_mmlu_read_csv(const char *path, lma_mmlu_item **items, size_t *n);
void lma_mmlu_items_free(lma_mmlu_item *items, size_t n);

/* path: a folder with dev/ and val/ and/or test/ subfolders, or one split folder.
 * split: which split to evaluate when path has subfolders (NULL: test if present,
 * else val, else dev). Shots come from the dev folder (path/dev, or a dev folder
 * beside the split folder). */
lma_status lma_mmlu_load(const char *path, const char *split, lma_mmlu_set *out);
void lma_mmlu_free(lma_mmlu_set *s);

/* The harness prompt for `item` of `subject` with k shots (k <= available shots).
 * shots_are_items: the pool is the evaluated split (the item is skipped among the shots). */
lma_status lma_mmlu_prompt(const char *subject, const lma_mmlu_item *shots, size_t n_shots, int shots_are_items,
                           int k, const lma_mmlu_item *item, char **out, size_t *len);

/* The two forms of the question (eval --mmlu-form):
 *   letter  the prompt above, continuations " A" .. " D", the highest log-likelihood wins;
 *   cloze   lm-evaluation-harness's continuation variant (tasks/mmlu/continuation, as SmolLM's
 *           own evaluation): "The following are questions (with answers) about {subject}.\n\n",
 *           k times "Question: {question.strip()}\nAnswer: {gold choice text}\n\n", then
 *           "Question: {question.strip()}\nAnswer:"; the continuations are " {choice text}" and
 *           the answer is the highest log-likelihood divided by the choice's length in
 *           characters (the harness's acc_norm): small models that answer letters at chance
 *           still rank answer texts. */
typedef enum { LMA_MMLU_LETTER = 0, LMA_MMLU_CLOZE } lma_mmlu_form;
lma_status lma_mmlu_prompt_form(lma_mmlu_form form, const char *subject, const lma_mmlu_item *shots, size_t n_shots,
                                int shots_are_items, int k, const lma_mmlu_item *item, char **out, size_t *len);
/* Code points of a UTF-8 string (Python's len(); the cloze normalization). */
size_t lma_utf8_chars(const char *s);

/* Python's str.isspace() for one code point. */
int lma_py_isspace(unsigned cp);
/* [*b, *e) shrunk like Python's str.strip() on UTF-8 text. */
void lma_py_strip(const char *s, size_t len, size_t *b, size_t *e);
#endif
