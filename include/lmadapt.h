/* lmadapt — adapting large language models, in C.
 *
 * Public API. Every function that can fail returns lma_status; on failure the
 * library keeps a one-line message (lma_last_error()) for the caller. The
 * library never prints to stdout and never exits: only cli/ does.
 * Ownership: a handle returned by *_load / *_create is freed by the matching
 * *_free; *_free(NULL) is a no-op. */
#ifndef LMADAPT_H
#define LMADAPT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LMA_OK = 0,
    LMA_ERR_IO,          /* file missing, unreadable, unwritable, disk full */
    LMA_ERR_FORMAT,      /* malformed input: JSON, safetensors, config, text */
    LMA_ERR_UNSUPPORTED, /* well-formed but outside what lmadapt supports */
    LMA_ERR_ARG,         /* bad argument from the caller */
    LMA_ERR_NOMEM,       /* allocation failed */
    LMA_ERR_SHAPE,       /* tensor shapes disagree */
    LMA_ERR_NUMERIC,     /* NaN/Inf where a finite number is required */
    LMA_ERR_INTERRUPTED, /* stopped on request (Ctrl-C) */
    LMA_ERR_INTERNAL     /* a bug: please report */
} lma_status;

const char *lma_version(void);
const char *lma_status_name(lma_status s);
/* The message of the first error since the last lma_clear_error() on this thread. */
const char *lma_last_error(void);
void lma_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
