/* Deterministic, resumable training data loader over token shard sets.
 *
 * Packing: every document of the training stream is one segment of (its tokens,
 * then EOS). Rows of T tokens are filled back to back with segments in the
 * epoch's document order; a segment that does not fit the space left in a row is
 * cut there and its remainder continues at the start of the next row (the next
 * row of the same batch, or the first row of the next batch) as a new segment.
 * No token is dropped and training rows are never padded: the last document of
 * an epoch is followed directly by the first document of the next epoch.
 *   ids[b][t]     token
 *   seg[b][t]     segment id, numbered 0,1,2,... from the start of each row; a
 *                 token may attend only to earlier tokens of the same segment id
 *   targets[b][t] ids[b][t+1] when t+1 < T and seg[b][t+1] == seg[b][t], else
 *                 LMA_IGNORE_INDEX (-100): no target crosses a document or a row
 *                 (so an EOS never predicts the next document, and the token
 *                 before EOS learns to predict EOS).
 *
 * Order: the training documents are shuffled at the start of every epoch
 * (Fisher-Yates on the lma_rng stream derived from the seed; the state after one
 * epoch's shuffle seeds the next). Same seed -> same batches; shuffle = 0 keeps
 * file order.
 *
 * Validation: round(val_fraction * D) documents of the data set (at least 1 when
 * val_fraction > 0, and at least one must remain for training) are chosen by a
 * seeded partial Fisher-Yates and never appear in training batches. They are read
 * by lma_loader_val_next in document order with the same packing; the rows after
 * the last validation token are padding (ids = EOS, targets = -100, seg = -1).
 *
 * Mixing (optional replay source, not split for validation): each row comes
 * whole from one source. Before each row the loader picks the source that leaves
 * the replay token count closest to R * (all tokens so far + T) (ties go to the
 * data source), so |replay tokens - R * total| <= T/2 at every row boundary and
 * the replay share of tokens is within T / (2 * total tokens) of R. Each source
 * keeps its own order, epoch and cursor.
 *
 * Cursor: (epoch, position in the epoch's order, tokens already taken from the
 * document at that position, rng state that shuffled this epoch) per source,
 * plus the token counters. Saving it and restoring it into a loader made with
 * the same data and params yields bitwise-identical batches from then on. A
 * fingerprint of the data (documents, tokens) and params (seed, val_fraction,
 * replay ratio, shuffle) is kept in the cursor and checked at restore; B and T
 * may change across a restore.
 *
 * Ownership: the loader borrows the shard sets (they must outlive it) and owns
 * its index arrays (8 bytes per document of each source, plus 1 byte per data
 * document). lma_loader_free(NULL) is a no-op. */
#ifndef LMA_DATA_LOADER_H
#define LMA_DATA_LOADER_H
#include <stdint.h>
#include <cjson/cJSON.h>
#include "core/rng.h"
#include "core/status.h"
#include "data/shard.h"

typedef struct {
    int B, T;                   /* rows per batch, tokens per row (both >= 1) */
    uint64_t seed;
    double val_fraction;        /* share of data documents held out, [0, 1) */
    int shuffle;                /* 1: shuffle document order every epoch (default) */
    const lma_shardset *replay; /* optional second source, NULL for none */
    double replay_ratio;        /* R: share of tokens taken from replay, [0, 1] */
} lma_loader_params;

lma_loader_params lma_loader_default_params(void); /* B=8, T=256, seed 1234, shuffle */

typedef struct {
    uint64_t epoch;  /* epochs completed by this source */
    uint64_t pos;    /* index in this epoch's document order */
    uint64_t offset; /* tokens of that document already emitted (EOS counts) */
    lma_rng rng;     /* state that produced this epoch's order */
} lma_loader_stream_cursor;

typedef struct {
    uint64_t fingerprint;
    lma_loader_stream_cursor data, replay;
    uint64_t data_tokens, replay_tokens; /* training tokens emitted per source */
    uint64_t rows;                       /* training rows emitted */
} lma_loader_cursor;

typedef struct lma_loader lma_loader;

lma_status lma_loader_create(const lma_shardset *data, const lma_loader_params *p, lma_loader **out);
void lma_loader_free(lma_loader *L);

/* Next training batch. ids, targets, seg: (B, T) each, caller-allocated. */
lma_status lma_loader_next(lma_loader *L, int32_t *ids, int32_t *targets, int32_t *seg);

/* Next validation batch (B, T). *rows = rows holding at least one validation
 * token; 0 means the pass is over (the arrays are all padding) and the next call
 * starts a new pass. */
lma_status lma_loader_val_next(lma_loader *L, int32_t *ids, int32_t *targets, int32_t *seg, int *rows);
void lma_loader_val_reset(lma_loader *L);
uint64_t lma_loader_val_batches(const lma_loader *L); /* batches with rows > 0 in one pass */

uint64_t lma_loader_train_docs(const lma_loader *L);
uint64_t lma_loader_val_docs(const lma_loader *L);
uint64_t lma_loader_train_tokens(const lma_loader *L); /* per epoch, EOS included */
int lma_loader_is_val(const lma_loader *L, uint64_t doc); /* doc: global index in the data set */

void lma_loader_get_cursor(const lma_loader *L, lma_loader_cursor *c);
/* LMA_ERR_ARG when the cursor does not belong to this data/params or is out of
 * range; the loader is then left exactly as it was. */
lma_status lma_loader_set_cursor(lma_loader *L, const lma_loader_cursor *c);
/* JSON object with every field (64-bit values as "0x..." hex strings). */
lma_status lma_loader_cursor_to_json(const lma_loader_cursor *c, cJSON **out);
lma_status lma_loader_cursor_from_json(const cJSON *j, const char *ctx, lma_loader_cursor *c);
#endif
