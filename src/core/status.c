#include "core/status.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_msg[1024];
static _Thread_local int err_set;

const char *lma_version(void) { return LMA_VERSION_STRING; }

const char *lma_status_name(lma_status s) {
    switch (s) {
    case LMA_OK: return "ok";
    case LMA_ERR_IO: return "i/o error";
    case LMA_ERR_FORMAT: return "format error";
    case LMA_ERR_UNSUPPORTED: return "unsupported";
    case LMA_ERR_ARG: return "bad argument";
    case LMA_ERR_NOMEM: return "out of memory";
    case LMA_ERR_SHAPE: return "shape mismatch";
    case LMA_ERR_NUMERIC: return "numeric error";
    case LMA_ERR_INTERRUPTED: return "interrupted";
    case LMA_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *lma_last_error(void) { return err_set ? err_msg : ""; }
void lma_clear_error(void) { err_set = 0; err_msg[0] = 0; }
int lma_error_pending(void) { return err_set; }

/* Formats into a local buffer first: an argument may be lma_last_error() itself
 * ("%s: %s", path, lma_last_error()), which vsnprintf must not read while writing it. */
static void set_msg(const char *fmt, va_list ap) {
    char buf[sizeof err_msg];
    vsnprintf(buf, sizeof buf, fmt, ap);
    memcpy(err_msg, buf, sizeof buf);
    err_set = 1;
}

lma_status lma_error(lma_status s, const char *fmt, ...) {
    if (!err_set) { va_list ap; va_start(ap, fmt); set_msg(fmt, ap); va_end(ap); }
    return s;
}

lma_status lma_error_replace(lma_status s, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); set_msg(fmt, ap); va_end(ap);
    return s;
}
