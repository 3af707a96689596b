/* Dataset curation: validate, stats, dedup, filter, decontam, split, and the
 * model-backed generate/accept, judge and debug.
 *
 * Each command has an in-memory core (usable from training code and tests) and a
 * file driver lma_data_<cmd>() that streams an input file through lma_ex_reader
 * (data/example.h), writes its outputs atomically (never in place), writes a JSON
 * report (report_path, optional) and returns a small summary (cJSON, caller frees
 * with cJSON_Delete) that the CLI prints.
 *
 * Memory: validate, filter, decontam and split hold one record (or one batch of
 * LMA_CURATE_BATCH records) at a time: peak memory does not grow with the number of
 * examples (decontam's 13-gram index grows with the evaluation sets, split's
 * counters with the number of strata). dedup must remember what it kept: per kept
 * example a 64-bit exact hash, one LSH entry per band and its 32-bit shingle hashes
 * (for the exact Jaccard check), i.e. about 12*4*(bands+1) + 4*words bytes; stats
 * uses the same engine for its duplicate rates (turn it off with dup = 0).
 *
 * Records the reader cannot normalize (invalid JSON, unknown format, invalid
 * UTF-8) are reported with file:line and left out of every output; validate lists
 * them as findings. Failures return lma_status with the message set. */
#ifndef LMA_CURATE_H
#define LMA_CURATE_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>
#include "core/status.h"
#include "data/example.h"
#include "data/curate/text.h"
#include "core/gen_params.h"
#include "tok/chat_template.h"

#define LMA_CURATE_BATCH 2048

/* ---- streaming JSON report ------------------------------------------------
 * {"command": ..., "input": ..., "<list>": [item, ...], "summary": {...}}
 * Items are written as they come (memory does not grow with their number). */
typedef struct {
    lma_atomic_file af;
    int open;
    int64_t n_items;
} lma_report;
/* path NULL: items are discarded. */
lma_status lma_report_open(lma_report *r, const char *path, const char *command, const char *input,
                           const char *list_name);
/* Takes ownership of item. */
lma_status lma_report_item(lma_report *r, cJSON *item);
/* Writes summary (not freed) and commits the file. */
lma_status lma_report_close(lma_report *r, const cJSON *summary);
void lma_report_abort(lma_report *r);

/* ---- validate ------------------------------------------------------------ */
typedef struct {
    const char *report_path;
    /* The system prompt the inference side sends: NULL = not checked, "" = none
     * (then any system turn is drift), else examples whose system turn differs. */
    const char *inference_system;
    /* Top-level field that names an example's task; answer formats are compared
     * within a task (NULL: the whole file is one task). */
    const char *task_field;
    int format_check;       /* compare answer formats (on when task_field is set) */
    double format_minority; /* an answer format below this share of its task is drift (0.1) */
    int max_summary_findings; /* findings copied into the returned summary (20) */
    /* Over-length check (optional): examples longer than max_tokens tokens as the
     * tokenizer's chat template renders them (or, for text, the tokenized text). */
    const struct lma_tokenizer *tokenizer;
    const char *chat_template; /* format name or Jinja string; NULL = the tokenizer's own */
    int max_tokens;            /* 16385 (the OpenAI notebook's limit) */
} lma_validate_params;
/* Tokens of the example (the longer of chosen/rejected for preference data):
 * rendered with the chat template when it accepts the turns, else the turns'
 * text joined by newlines with BOS/EOS. *templated says which. */
lma_status lma_validate_count_tokens(const lma_example *ex, const struct lma_tokenizer *t, const char *chat_template,
                                     size_t *n_tokens, int *templated);
void lma_validate_default_params(lma_validate_params *p);

/* One finding about one example (also used by the in-memory check). */
typedef struct {
    const char *code;  /* stable key, e.g. "unrecognized_role" */
    int severity;      /* 2 error, 1 warning */
    char message[256];
} lma_finding;
/* Checks one example (structure, roles, empty turns, special tokens, system
 * prompt); writes at most cap findings, returns how many there were. */
size_t lma_validate_example(const lma_example *ex, const lma_validate_params *p, lma_finding *out, size_t cap);
/* Streams path (read twice when the answer-format check needs its second pass). */
lma_status lma_data_validate(const char *path, const lma_validate_params *p, cJSON **summary);

/* ---- dedup ---------------------------------------------------------------- */
typedef struct {
    int bands, rows;       /* LSH: bands x rows MinHash values (14 x 8) */
    int shingle;           /* words per shingle (5) */
    double threshold;      /* Jaccard >= threshold is a near duplicate (0.8) */
    int near;              /* 0: exact duplicates only */
    uint64_t seed;         /* MinHash permutations */
} lma_dedup_params;
void lma_dedup_default_params(lma_dedup_params *p);

typedef struct lma_dedup lma_dedup;
/* A signature: computed from a text, thread-safe (no shared state written). */
typedef struct {
    uint64_t exact;      /* hash of the normalized text */
    uint64_t *minhash;   /* (bands*rows) */
    uint32_t *shingles;  /* (n_shingles) sorted, unique */
    size_t n_shingles, cap_shingles;
    lma_words words;
} lma_dedup_sig;
typedef enum { LMA_DUP_NONE = 0, LMA_DUP_EXACT, LMA_DUP_NEAR } lma_dup_kind;
typedef struct {
    lma_dup_kind kind;
    int64_t twin;   /* id of the kept example it duplicates (-1 when kept) */
    double jaccard; /* shingle-set Jaccard with the twin (1 for exact) */
} lma_dup_result;

lma_status lma_dedup_create(const lma_dedup_params *p, lma_dedup **out);
void lma_dedup_free(lma_dedup *d);
lma_status lma_dedup_sign(const lma_dedup *d, const char *text, size_t n, lma_dedup_sig *sig);
void lma_dedup_sig_free(lma_dedup_sig *sig);
/* Decides on one example (in order: keep-first) and remembers it when kept. */
lma_status lma_dedup_insert(lma_dedup *d, const lma_dedup_sig *sig, int64_t id, lma_dup_result *res);
/* Convenience: sign + insert. */
lma_status lma_dedup_add(lma_dedup *d, const char *text, size_t n, int64_t id, lma_dup_result *res);
size_t lma_dedup_memory(const lma_dedup *d); /* bytes of remembered state */
/* Exact shingle-set Jaccard of two sorted unique arrays. */
double lma_jaccard_sorted(const uint32_t *a, size_t na, const uint32_t *b, size_t nb);

typedef struct {
    lma_dedup_params dedup;
    lma_ex_part part;         /* text compared (LMA_EX_ALL) */
    const char *out_path;     /* kept examples (JSONL), required */
    const char *removed_path; /* removed examples with their twin (optional) */
    const char *report_path;
} lma_dedup_file_params;
lma_status lma_data_dedup(const char *in, const lma_dedup_file_params *p, cJSON **summary);

/* ---- filter --------------------------------------------------------------- */
typedef struct {
    lma_ex_part part;            /* text the rules see (LMA_EX_ALL) */
    /* Gopher quality rules */
    int min_words, max_words;    /* 3, 100000 */
    double min_mean_word_len, max_mean_word_len; /* 2, 10 */
    double max_symbol_ratio;     /* ('#' + "..." / "…") per word: 0.1 */
    double max_bullet_lines;     /* share of lines starting with a bullet: 0.9 */
    double max_ellipsis_lines;   /* share of lines ending in an ellipsis: 0.3 */
    double min_alpha_words;      /* share of words with a letter: 0.8 */
    int min_stop_words;          /* of the, be, to, of, and, that, have, with: 2 */
    /* Gopher repetition rules */
    double max_dup_line_frac, max_dup_para_frac;           /* 0.3, 0.3 (by count) */
    double max_dup_line_chars, max_dup_para_chars;         /* 0.2, 0.2 (by characters) */
    int ngram_min_words;         /* n-gram rules only on texts with >= this many words (50:
                                  * Gopher never applied them below its 50-word minimum) */
    double max_top_ngram[3];     /* top 2/3/4-gram character share: 0.2, 0.18, 0.16 */
    double max_dup_ngram[6];     /* duplicated 5..10-gram character share: 0.15 .. 0.10 */
    /* C4-style boilerplate: any of these phrases (lower-case) removes the example */
    const char *const *boilerplate; /* NULL-terminated; NULL = built-in list */
} lma_filter_params;
void lma_filter_default_params(lma_filter_params *p);

typedef struct {
    const char *rule;   /* NULL when the text passes; else the first failing rule */
    double value, threshold;
    char detail[96];    /* e.g. the boilerplate phrase */
} lma_filter_verdict;
/* Thread-safe; scratch is caller-owned (zero-init, lma_words_free). */
lma_status lma_filter_check(const lma_filter_params *p, const char *text, size_t n, lma_filter_verdict *v);

typedef struct {
    lma_filter_params filter;
    const char *out_path, *removed_path, *report_path;
} lma_filter_file_params;
lma_status lma_data_filter(const char *in, const lma_filter_file_params *p, cJSON **summary);

/* ---- decontam ------------------------------------------------------------- */
typedef struct lma_decontam lma_decontam;
/* n: words per n-gram (13). */
lma_status lma_decontam_create(int n, lma_decontam **out);
void lma_decontam_free(lma_decontam *d);
/* Adds an evaluation set: .jsonl (every string value of a line is one document),
 * .csv (one document per row, RFC 4180 quoting), anything else plain text (one
 * document per non-blank line); a directory adds its files (not recursive). */
lma_status lma_decontam_add_eval(lma_decontam *d, const char *path);
/* Adds one evaluation document from memory (name, line: where it came from). */
lma_status lma_decontam_add_doc(lma_decontam *d, const char *text, size_t len, const char *name, int64_t line);
typedef struct {
    size_t overlaps;        /* n-grams of the text found in the evaluation sets */
    const char *eval_file;  /* first match: file and line */
    int64_t eval_line;
    char ngram[200];        /* first matching n-gram (normalized, truncated) */
} lma_decontam_hit;
/* scratch is caller-owned (zero-init; lma_words_free). Thread-safe. */
lma_status lma_decontam_check(const lma_decontam *d, const char *text, size_t n, lma_words *scratch,
                              lma_decontam_hit *hit);
size_t lma_decontam_ngrams(const lma_decontam *d);

typedef struct {
    int ngram;                /* 13 */
    int min_overlaps;         /* remove when overlaps >= this (1) */
    lma_ex_part part;         /* LMA_EX_ALL */
    const char *const *evals; /* (n_evals) paths */
    int n_evals;
    const char *out_path, *removed_path, *report_path;
} lma_decontam_file_params;
lma_status lma_data_decontam(const char *in, const lma_decontam_file_params *p, cJSON **summary);

/* ---- split ---------------------------------------------------------------- */
typedef struct {
    double ratio[3];          /* train, validation, test (0.8, 0.1, 0.1) */
    uint64_t seed;
    const char *stratify;     /* top-level field, NULL = none */
    const char *out_path[3];  /* train, validation, test (NULL: not written) */
    const char *report_path;
} lma_split_params;
void lma_split_default_params(lma_split_params *p);
/* Two passes: counts per stratum, then sequential selection sampling so that each
 * stratum's counts are exact (round(n*ratio)) and the assignment is uniformly
 * random given the seed; deterministic for a given seed and input. */
lma_status lma_data_split(const char *in, const lma_split_params *p, cJSON **summary);

/* ---- stats ---------------------------------------------------------------- */
typedef struct {
    int dup;                  /* exact/near duplicate rates (1) */
    lma_dedup_params dedup;
    int top_verbs;            /* verbs listed (20), objects per verb (4) */
    int top_objects;
    const char *report_path;
} lma_stats_params;
void lma_stats_default_params(lma_stats_params *p);
lma_status lma_data_stats(const char *in, const lma_stats_params *p, cJSON **summary);
/* ---- model-backed curation: generate + accept, judge, debug --judge ----------
 * generate.c, judge.c, debug.c. Curation sees a model only as something that
 * completes chat prompts: an lma_curate_llm, filled by whoever owns a model (the
 * one above data/ is eval/curate_model.h: an HF folder or GGUF file rendered with
 * its chat template and continued by lma_generate_batch with its eos ids as stop ids). */
typedef struct lma_curate_llm lma_curate_llm;
/* One conversation to continue: msgs in, text out (malloc'd, NUL-terminated, caller frees). */
typedef struct {
    const lma_chat_msg *msgs; size_t n;
    char *text; size_t len;
} lma_curate_call;
struct lma_curate_llm {
    void *ctx;                 /* the model behind it; NULL: none loaded */
    /* Renders each call's msgs (roles system/user/assistant) with the generation prompt
     * (chat_template below, NULL: the model's own) and continues them with gp (gp->stop_ids
     * NULL: the model's eos ids), up to max_active of them generated together. On failure
     * no text is left to free. */
    lma_status (*complete)(const lma_curate_llm *l, lma_curate_call *calls, size_t n, const lma_gen_params *gp);
    void (*free_ctx)(void *ctx);
    const char *chat_template; /* NULL: the model's own (see tok/chat_template.h) */
    int max_active;            /* conversations continued together (<= 1: one at a time) */
    uint64_t identity[2];      /* names the model (keys the judge cache) */
    int64_t calls;             /* completions made through lma_curate_llm_reply(_batch) */
};
/* Frees the model behind l (free_ctx) and empties l. */
void lma_curate_llm_free(lma_curate_llm *l);
/* l->complete of one conversation, counted as one call. */
lma_status lma_curate_llm_reply(lma_curate_llm *l, const lma_chat_msg *msgs, size_t n, const lma_gen_params *gp,
                                char **text, size_t *len);
/* l->complete of n conversations, counted as n calls. */
lma_status lma_curate_llm_reply_batch(lma_curate_llm *l, lma_curate_call *calls, size_t n, const lma_gen_params *gp);

/* A prompt read from a prompt file record (any example format; prompt-only records
 * {"prompt"}, {"instruction","input"?}, {"question"} and {"messages"} ending in a user
 * turn are accepted; trailing assistant turns are dropped). msgs point into the
 * record or into storage owned by the struct; free with lma_curate_prompt_free. */
typedef struct {
    lma_chat_msg *msgs; size_t n;
    char *id;         /* the record's "id" (string or integer), else "p" + 16 hex of the prompt's hash */
    char *store_;     /* private */
} lma_curate_prompt;
/* Returns LMA_ERR_FORMAT naming file:line when the record holds no usable prompt. */
lma_status lma_curate_prompt_from(const lma_example *ex, lma_curate_prompt *p);
void lma_curate_prompt_free(lma_curate_prompt *p);

/* JSONL objects one at a time (review files, caches). Lines over LMA_EX_MAX_RECORD
 * bytes, invalid JSON and non-objects are errors naming path:line, unless lenient
 * (then they are skipped and counted in n_skipped). Blank lines are skipped. */
typedef struct {
    FILE *f;
    char path[1024];
    int64_t line, n_skipped;
    int lenient;
    char *buf; size_t cap;
} lma_jsonl;
lma_status lma_jsonl_open(lma_jsonl *j, const char *path, int lenient);
/* *obj: the next object (caller frees with cJSON_Delete), NULL at the end; *line its line. */
lma_status lma_jsonl_next(lma_jsonl *j, cJSON **obj, int64_t *line);
void lma_jsonl_close(lma_jsonl *j);

/* ---- generate: draft responses into a review file ----------------------------
 * Review file (JSONL), one line per prompt:
 *   {"id", "prompt": "..." (a single user turn) | "messages": [...], "draft": "...",
 *    "status": "pending", "reviewer_note": ""}
 * status is one of pending | accepted | edited | rejected; an edited line carries
 * the reviewer's text in "response". Resumable: ids already in the review file are
 * skipped and its lines are kept byte for byte (reviewers may have edited them).
 * Output is atomic: the file is rewritten through a temporary file and renamed,
 * at most every checkpoint_s seconds and at the end, so a crash loses at most that
 * much work and never leaves a torn file. Every draft uses gen.seed, so a draft can
 * be reproduced with `lmadapt generate --seed` alone. */
typedef struct {
    lma_gen_params gen;       /* max_tokens 256, greedy, seed 0 */
    const char *system;       /* system turn added to prompts without one (NULL: none) */
    double checkpoint_s;      /* 60; 0 = after every chunk of drafts (32 prompts, drafted together) */
    int progress;             /* progress bar on stderr (0) */
    int64_t limit;            /* draft at most this many new prompts (0: all) */
} lma_data_generate_params;
void lma_data_generate_default_params(lma_data_generate_params *p);
/* summary: prompts, drafted, skipped (already in the review file), duplicates
 * (same id twice in the prompt file), unreadable, model_calls. */
lma_status lma_data_generate(lma_curate_llm *l, const char *prompts, const char *review, const lma_data_generate_params *p,
                             cJSON **summary);

/* ---- accept: reviewed file -> training data ---------------------------------- */
typedef enum { LMA_ACCEPT_MESSAGES = 0, LMA_ACCEPT_ALPACA } lma_accept_format;
/* Keeps accepted lines (the draft, or "response" when the reviewer filled it) and
 * edited lines ("response" required: the reviewer's text wins). An unknown status, a
 * missing field or (alpaca) a prompt that is not a single user turn is an error with
 * file:line. summary: {"lines", "pending", "accepted", "edited", "rejected", "written"}. */
lma_status lma_data_accept(const char *review, const char *out, lma_accept_format fmt, cJSON **summary);

/* ---- judge: score examples 1-5 against a rubric (AlpaGasus style) -------------
 * The rubric is a prompt with the placeholders {instruction} (the prompt turns;
 * several turns are written "role: text" per turn) and {response} (the last
 * assistant reply, or the chosen reply). It is sent as one user turn. */
const char *lma_judge_default_rubric(void);
/* The score in a judge's text: the first integer after a cue (score, rating, rated,
 * grade, "rate it", case-insensitive, then up to a few of ' :=*"#-' or "is"/"of"),
 * else the first standalone integer anywhere; "4/5", "4 out of 5", "4.0" give 4;
 * accepted only in 1..5 (a cued number outside it, e.g. "Score: 8/10", makes the text
 * unparseable rather than falling back). Returns the score, or 0 when none. */
int lma_judge_parse_score(const char *text, size_t len);
/* The GBNF grammar of a judge's reply (the default gen.grammar): root ::= "Score: " [1-5] ("\n" .*)? */
const char *lma_judge_score_grammar(void);
typedef struct {
    const char *rubric;       /* NULL: lma_judge_default_rubric() */
    double threshold;         /* keep score >= threshold (4) */
    int keep_unparsed;        /* keep examples whose score could not be parsed (0) */
    lma_gen_params gen;       /* max_tokens 48, greedy, grammar lma_judge_score_grammar(): the reply is
                                 constrained to "Score: N" (N in 1..5), then an optional explanation
                                 line(s) (gen.grammar NULL: free text) */
    const char *model_id;     /* NULL: the model's identity hash */
    const char *cache_path;   /* JSONL cache (a directory: <dir>/judge_cache.jsonl); NULL: none */
    const char *out_path;     /* kept examples (required) */
    const char *scores_path;  /* {"line","index","score" (null when unparsed),"cached","judgement"} per example */
    const char *removed_path, *report_path;
    int progress;
} lma_judge_params;
void lma_judge_default_params(lma_judge_params *p);
/* Cache key: 128-bit hash of (model id, rubric, the example's prompt and response
 * texts, max_tokens and every sampling setting incl. seed, the grammar when one is set). New entries are appended
 * to the cache (a torn last line from a crash is skipped on the next load).
 * summary adds: scored, cache_hits, model_calls, unparsed, histogram {"1".."5"}. */
lma_status lma_data_judge(lma_curate_llm *l, const char *in, const lma_judge_params *p, cJSON **summary);

/* ---- debug: examples that would teach unwanted behaviour ----------------------
 * Rules file: one rule per line "KIND NAME REGEX" (PCRE2, UTF; '#' lines and blank
 * lines ignored), applied to every assistant reply:
 *   action   the reply claims or promises an action the assistant cannot take
 *   praise   the reply praises a trait of the user; flagged only when the trait word
 *            (named group "trait", else group 1) occurs in no earlier user/system turn
 *   refusal  a refusal phrase; flagged only when the rest of the reply (outside the
 *            sentence holding the phrase) has >= refusal_answer_words words
 *   flag     any match is flagged
 * plus, when a task field is given or single_task is set, "format_drift": a reply
 * whose format (lma_text_format_of) is below format_minority of its task's replies
 * (tasks with >= 10 replies; examples without the task field are not compared). */
const char *lma_debug_default_rules(void);
typedef struct lma_debug_rules lma_debug_rules;
/* text: rules in the format above; ctx names the source in errors (file:line). */
lma_status lma_debug_rules_parse(lma_debug_rules **rules, const char *text, size_t len, const char *ctx);
void lma_debug_rules_free(lma_debug_rules *r);
size_t lma_debug_rules_count(const lma_debug_rules *r);
typedef struct {
    const char *rule;   /* rule name (points into the rules) or "format_drift" */
    const char *kind;   /* action | praise | refusal | flag | format */
    size_t msg;         /* index of the reply in ex->msgs (or n_msgs + i for chosen/rejected) */
    char excerpt[160];  /* the match with a little context, UTF-8 safe */
} lma_debug_flag;
/* Pattern rules on one example; writes at most cap flags, returns how many there were. */
size_t lma_debug_example(const lma_debug_rules *r, int refusal_answer_words, const lma_example *ex,
                         lma_debug_flag *out, size_t cap);
typedef struct {
    const char *const *rules_text; /* (n_rules) rule texts; NULL: the built-in rules */
    const char *const *rules_name; /* (n_rules) their sources for messages */
    int n_rules;
    int refusal_answer_words;      /* 25 */
    const char *task_field;        /* format check per task (NULL: off unless single_task) */
    int single_task;
    double format_minority;        /* 0.1 */
    lma_curate_llm *judge;         /* NULL: no model opinion */
    lma_gen_params judge_gen;      /* max_tokens 8, greedy */
    const char *report_path;
    const char *out_path, *removed_path; /* optional: unflagged / flagged examples */
    int max_summary_flags;         /* flags copied into the summary (50) */
} lma_debug_params;
void lma_debug_default_params(lma_debug_params *p);
/* summary: examples, flagged_examples, flags, per_rule {name: n}, unreadable,
 * judge {"yes","no","unclear","model_calls"}, "shown": the first max_summary_flags flags
 * [{file, line, index, rule, kind, excerpt, judge?, judge_text?}] (the report has them all). */
lma_status lma_data_debug(const char *in, const lma_debug_params *p, cJSON **summary);
#endif
