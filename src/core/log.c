#include "core/log.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int level = -1;

static lma_log_level env_level(void) {
    const char *e = getenv("LMA_LOG");
    if (!e) return LMA_LOG_INFO;
    if (!strcmp(e, "error")) return LMA_LOG_ERROR;
    if (!strcmp(e, "warn")) return LMA_LOG_WARN;
    if (!strcmp(e, "debug")) return LMA_LOG_DEBUG;
    return LMA_LOG_INFO;
}

lma_log_level lma_log_get_level(void) {
    if (level < 0) level = (int)env_level();
    return (lma_log_level)level;
}

void lma_log(lma_log_level lvl, const char *fmt, ...) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    if ((int)lvl > (int)lma_log_get_level()) return;
    char buf[2048];
    va_list ap; va_start(ap, fmt); vsnprintf(buf, sizeof buf, fmt, ap); va_end(ap);
    fprintf(stderr, "[lmadapt] %s: %s\n", names[lvl], buf);
}
