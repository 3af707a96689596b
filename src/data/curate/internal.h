/* Helpers shared by the curation drivers (not part of the API). */
#ifndef LMA_CURATE_INTERNAL_H
#define LMA_CURATE_INTERNAL_H
#include "data/curate/curate.h"

/* Error when out names the same file as in (outputs never replace the input). */
lma_status lma_curate_check_output(const char *in, const char *out);
/* Adds "key": count to a JSON object of counters. */
void lma_curate_count(cJSON *obj, const char *key, double by);
/* A batch of records copied out of the reader: text for the rules, the JSONL line
 * for the outputs, file line and index. Bounded by LMA_CURATE_BATCH records. */
typedef struct {
    size_t n;
    lma_ex_buf text[LMA_CURATE_BATCH];
    lma_ex_buf line[LMA_CURATE_BATCH];
    int64_t lineno[LMA_CURATE_BATCH];
} lma_curate_batch;
/* Reads up to LMA_CURATE_BATCH usable records; unusable ones go to on_bad (which
 * may write them to a report). n == 0 at the end. */
lma_status lma_curate_batch_read(lma_ex_reader *r, lma_ex_part part, lma_curate_batch *b,
                                 lma_status (*on_bad)(const lma_example *ex, void *ctx), void *ctx);
void lma_curate_batch_free(lma_curate_batch *b);
/* on_bad for lma_curate_batch_read: counts the record and reports it as
 * {"line", "reason": "unreadable", "error"}. ctx is an lma_curate_bad. */
typedef struct { lma_report *rep; int64_t unreadable; } lma_curate_bad;
lma_status lma_curate_on_bad(const lma_example *ex, void *ctx);
#endif
