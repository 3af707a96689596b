/* Helpers shared by the curation drivers (not part of the API). */
#ifndef LMA_CURATE_INTERNAL_H
#define LMA_CURATE_INTERNAL_H
#include "data/curate/curate.h"

/* Error when out names the same file as in (outputs never replace the input). */
lma_status lma_curate_check_output(const char *in, const char *out);
/* Format (lma_text_format) of the example's last assistant reply, or of its chosen
 * reply for preference data; -1 when there is none. */
int lma_curate_reply_format(const lma_example *ex);
/* Adds "key": count to a JSON object of counters. */
void lma_curate_count(cJSON *obj, const char *key, double by);
/* A batch of records copied out of the reader: text for the rules, the JSONL line
 * for the outputs, file line and index. Bounded by LMA_CURATE_BATCH records. */
typedef struct {
    size_t n;
    lma_buf text[LMA_CURATE_BATCH];
    lma_buf line[LMA_CURATE_BATCH];
    int64_t lineno[LMA_CURATE_BATCH];
} lma_curate_batch;
/* Reads up to LMA_CURATE_BATCH usable records; unusable ones go to on_bad (which
 * may write them to a report). n == 0 at the end. */
lma_status lma_curate_batch_read(lma_ex_reader *r, lma_ex_part part, lma_curate_batch *b,
                                 lma_status (*on_bad)(const lma_example *ex, void *ctx), void *ctx);
void lma_curate_batch_free(lma_curate_batch *b);
/* Invalid records, handled the same way by every command: skipped, counted, the first
 * few line numbers kept, each reported as {"line", "reason": "unreadable", "error"}
 * (rep may be NULL). lma_curate_on_bad is also on_bad for lma_curate_batch_read (ctx
 * is an lma_curate_bad); lma_curate_bad_summary adds "unreadable" and
 * "unreadable_lines" (the first LMA_CURATE_FIRST_BAD) to a summary. */
#define LMA_CURATE_FIRST_BAD 5
typedef struct {
    lma_report *rep;
    int64_t unreadable;
    int64_t first[LMA_CURATE_FIRST_BAD];
} lma_curate_bad;
lma_status lma_curate_on_bad(const lma_example *ex, void *ctx);
void lma_curate_bad_summary(const lma_curate_bad *c, cJSON *summary);
/* The outputs of a command that keeps some examples and removes others (dedup,
 * filter, decontam): the kept file, the removed file ({...info, "example": record}
 * per line, optional) and the report (info per removed or unreadable record).
 * Paths are checked against the input. close() adds examples/kept/removed/unreadable
 * to the summary and commits everything; abort() removes the temporary files. */
typedef struct {
    lma_atomic_file fo, fr;
    int fo_open, fr_open;
    lma_report rep;
    lma_curate_bad bad;
    lma_buf tmp;
    int64_t n_ex, n_kept, n_removed;
} lma_curate_sieve;
lma_status lma_curate_sieve_open(lma_curate_sieve *s, const char *cmd, const char *in, const char *out,
                                 const char *removed, const char *report);
lma_status lma_curate_sieve_keep(lma_curate_sieve *s, const lma_buf *line);
/* Takes ownership of info (a JSON object describing why). */
lma_status lma_curate_sieve_drop(lma_curate_sieve *s, cJSON *info, const lma_buf *line);
lma_status lma_curate_sieve_close(lma_curate_sieve *s, cJSON *summary);
void lma_curate_sieve_abort(lma_curate_sieve *s);
#endif
