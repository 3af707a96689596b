/* Status codes and the last-error message (thread-local). The first error set
 * since lma_clear_error() wins: deeper layers set the precise message, outer
 * layers return the code unchanged (SQLite's rule). */
#ifndef LMA_CORE_STATUS_H
#define LMA_CORE_STATUS_H
#include "lmadapt.h"

#if defined(__GNUC__)
#define LMA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LMA_PRINTF(a, b)
#endif

/* Records the message (if none is pending) and returns s, so callers write
 *   return lma_error(LMA_ERR_FORMAT, "%s: header too large", path); */
lma_status lma_error(lma_status s, const char *fmt, ...) LMA_PRINTF(2, 3);
/* Replaces any pending message (used when an outer layer knows better). */
lma_status lma_error_replace(lma_status s, const char *fmt, ...) LMA_PRINTF(2, 3);
int lma_error_pending(void);

#define LMA_TRY(expr) do { lma_status lma_try_s_ = (expr); if (lma_try_s_ != LMA_OK) return lma_try_s_; } while (0)

#endif
