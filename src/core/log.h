/* Log lines on stderr: "[lmadapt] level: message". The level comes from the
 * LMA_LOG environment variable (error|warn|info|debug; info when unset). */
#ifndef LMA_CORE_LOG_H
#define LMA_CORE_LOG_H
#include "core/status.h"

typedef enum { LMA_LOG_ERROR = 0, LMA_LOG_WARN, LMA_LOG_INFO, LMA_LOG_DEBUG } lma_log_level;

lma_log_level lma_log_get_level(void);
void lma_log(lma_log_level lvl, const char *fmt, ...) LMA_PRINTF(2, 3);
#define lma_warn(...)  lma_log(LMA_LOG_WARN, __VA_ARGS__)
#define lma_info(...)  lma_log(LMA_LOG_INFO, __VA_ARGS__)
#define lma_debug(...) lma_log(LMA_LOG_DEBUG, __VA_ARGS__)
#endif
