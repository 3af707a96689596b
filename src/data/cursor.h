/* Where an epoch-shuffled batcher stands (data/sft.h, data/prefs.h), as JSON for resume:
 * {"epoch", "pos", <count_key>: the set's size, "rng": four "0x..." words}. Restoring
 * checks the set still has that size, so a changed data file is refused, not misread. */
#ifndef LMA_DATA_CURSOR_H
#define LMA_DATA_CURSOR_H
#include <stddef.h>
#include <cjson/cJSON.h>
#include "core/rng.h"
#include "core/status.h"

/* *out: a new cJSON object (the caller deletes it) */
lma_status lma_epoch_cursor_save(size_t epoch, size_t pos, const char *count_key, size_t n, const lma_rng *rng,
                                 cJSON **out);
/* what names the data in messages ("SFT data"), unit the items ("examples"); n the size
 * of the set now. The outputs are written only when the cursor is valid. */
lma_status lma_epoch_cursor_restore(const cJSON *j, const char *what, const char *count_key, const char *unit, size_t n,
                                    size_t *epoch, size_t *pos, lma_rng *rng);
#endif
