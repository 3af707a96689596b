/* Text sources: documents, one at a time, from files, directories and JSONL.
 *
 * Inputs (lma_text_source_open takes a list of paths, read in the order given):
 *   a directory  every regular file below it, recursively, in byte order of the
 *                full path (strcmp); entries whose name starts with '.' and
 *                symbolic links found inside the directory are skipped
 *   a file       format from params.format; LMA_TEXT_AUTO (default) reads files
 *                ending in ".jsonl" as JSONL and every other file as plain text
 * Plain text: by default a file is one document (its bytes, unchanged). With
 *   split_blank_lines = 1 a file is split into paragraphs: maximal runs of
 *   non-blank lines (a blank line has only spaces, tabs, '\r'); a paragraph is
 *   its lines joined by their own line ends, without the last line end. Default
 *   0 (one document per file) because it keeps every byte and every cross-
 *   paragraph context; single-file corpora (a book) want split_blank_lines = 1 so
 *   that a validation split by document has documents to choose from.
 * JSONL: one JSON object per line with a string field params.field (default
 *   "text"); lines holding only whitespace are skipped. A line that is not JSON,
 *   not an object, lacks the field or has a non-string field is an error naming
 *   the file and line.
 * Both: a UTF-8 byte-order mark at the start of a file is dropped; empty
 *   documents are skipped (counted by lma_text_source_skipped). Invalid UTF-8
 *   (overlong forms, surrogates, > U+10FFFF, truncated sequences) is an error
 *   naming the file, line and byte offset in the file, or, with
 *   replace_invalid_utf8 = 1, each maximal invalid subpart becomes U+FFFD (the
 *   rule of Python's bytes.decode("utf-8", "replace")).
 *
 * Streaming: one document is held at a time; memory is bounded by the largest
 * document (plain text without splitting: the largest file; JSONL: the longest
 * line). Progress counts bytes read over the total size of all files (known at
 * open): through the callback and/or, with progress = 1, an lma_progress bar on
 * stderr (plain log lines when stderr is not a terminal).
 *
 * Ownership: the source owns the document it returns; its text stays valid until
 * the next lma_text_source_next or lma_text_source_close. Errors leave the source
 * unusable except for close. lma_text_source_close(NULL) is a no-op. */
#ifndef LMA_DATA_TEXT_SOURCE_H
#define LMA_DATA_TEXT_SOURCE_H
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"
#include "data/shard.h"

typedef enum { LMA_TEXT_AUTO = 0, LMA_TEXT_PLAIN, LMA_TEXT_JSONL } lma_text_format;

typedef struct {
    lma_text_format format;
    int split_blank_lines;    /* plain text: one document per paragraph (default 0) */
    int replace_invalid_utf8; /* 1: U+FFFD instead of an error (default 0) */
    const char *field;        /* JSONL field holding the text (default "text") */
    int progress;             /* 1: progress bar on stderr (default 0) */
    const char *progress_label; /* default "reading text" */
    void (*on_progress)(void *ctx, uint64_t bytes_done, uint64_t bytes_total);
    void *progress_ctx;
} lma_text_source_params;

lma_text_source_params lma_text_source_default_params(void);

typedef struct {
    const char *text; /* (len) bytes of valid UTF-8, NUL-terminated */
    size_t len;
    const char *path; /* the file it came from */
    uint64_t line;    /* 1-based line where it starts (1 for a whole file) */
    uint64_t index;   /* 0-based number over the whole source */
} lma_text_doc;

typedef struct lma_text_source lma_text_source;

/* Expands directories and checks that every path exists (error names it). */
lma_status lma_text_source_open(const char *const *paths, size_t n, const lma_text_source_params *p,
                                lma_text_source **out);
/* Next document into *doc; *done = 1 (and doc untouched) after the last one. */
lma_status lma_text_source_next(lma_text_source *s, lma_text_doc *doc, int *done);
void lma_text_source_close(lma_text_source *s);

size_t lma_text_source_nfiles(const lma_text_source *s);
const char *lma_text_source_file(const lma_text_source *s, size_t i); /* in reading order */
uint64_t lma_text_source_bytes_total(const lma_text_source *s);
uint64_t lma_text_source_bytes_done(const lma_text_source *s);
uint64_t lma_text_source_skipped(const lma_text_source *s); /* empty documents */
uint64_t lma_text_source_replaced(const lma_text_source *s); /* invalid subparts replaced by U+FFFD */

/* ---- text -> shard ----
 * Encodes one document into *ids (malloc'd; lma_text_to_shard frees it) and *n.
 * It must not add special tokens: a document whose ids contain the EOS id is an
 * error naming the file and line. ctx is the caller's (e.g. an lma_tokenizer). */
typedef lma_status (*lma_text_encode_fn)(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n);

typedef struct {
    uint64_t docs, tokens; /* written; tokens include one EOS per document */
    uint64_t bytes, skipped, replaced;
} lma_text_shard_stats;

/* Reads every document of paths (params p, NULL for defaults), encodes it and
 * writes one shard at out_path (atomically: on any error out_path is untouched).
 * stats may be NULL. */
lma_status lma_text_to_shard(const char *const *paths, size_t n, const lma_text_source_params *p,
                             lma_text_encode_fn encode, void *ctx, const char *out_path, int width,
                             int32_t eos_id, lma_text_shard_stats *stats);
#endif
