/* Token shards: tokenized text on disk, one binary file per shard, and shard
 * sets (several shards read as one document stream).
 *
 * Byte layout (version 1, every integer little-endian):
 *   offset  size  field
 *        0     8  magic "LMASHARD"
 *        8     4  u32 version = 1
 *       12     4  u32 token width in bytes: 2 (ids < 65536) or 4 (ids < 2^31)
 *       16     8  u64 token count N (EOS tokens included)
 *       24     8  u64 document count D
 *       32     4  u32 EOS id (the separator given at write time)
 *       36     4  u32 reserved, 0
 *       40  N*w   the tokens, u16 or u32 each
 * Every document is its tokens followed by one EOS, so the file holds exactly D
 * EOS tokens, the last token is EOS (N > 0) and N = 0 iff D = 0. A document never
 * contains the EOS id itself (the writer refuses it), so the boundaries are
 * recoverable from the tokens alone. File size = 40 + N*w exactly.
 *
 * Writer: streams documents to "<path>.tmp.<pid>"; commit patches the counts in
 * the header, fsyncs and renames over <path>; abort (or any failed call) removes
 * the temporary file and leaves <path> untouched. A failed add/commit frees the
 * writer (do not call abort after it); the writer pointer is then invalid.
 *
 * Reader: maps the file read-only and validates everything before returning
 * (magic, version, width, reserved, size vs count with overflow-checked
 * arithmetic, EOS count vs document count, last token, ids < 2^31). Each failure
 * has its own one-line message naming the file and the field. The reader keeps
 * one u64 offset per document (8 bytes per document of memory).
 *
 * Ownership: lma_shard_open / lma_shardset_open return handles freed by
 * lma_shard_close / lma_shardset_close (NULL is a no-op). lma_shard_open_mem does
 * not copy: the caller's buffer must outlive the shard. */
#ifndef LMA_DATA_SHARD_H
#define LMA_DATA_SHARD_H
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

#define LMA_SHARD_MAGIC "LMASHARD"
#define LMA_SHARD_VERSION 1u
#define LMA_SHARD_HEADER_BYTES 40u

/* 2 when every id < vocab fits in 16 bits (vocab <= 65536), else 4. */
int lma_shard_width_for_vocab(size_t vocab);

/* ---- writer ---- */
typedef struct lma_shard_writer lma_shard_writer;

/* width: 2 or 4; eos_id must fit the width. */
lma_status lma_shard_writer_open(const char *path, int width, int32_t eos_id, lma_shard_writer **w);
/* Appends one document: ids (n), then EOS. Ids must be in [0, 2^(8*width)) and
 * differ from EOS. n may be 0 (the document is just an EOS). */
lma_status lma_shard_writer_add(lma_shard_writer *w, const int32_t *ids, size_t n);
uint64_t lma_shard_writer_tokens(const lma_shard_writer *w); /* EOS included */
uint64_t lma_shard_writer_docs(const lma_shard_writer *w);
/* Patches the header, fsync, rename. Frees w whatever the outcome. */
lma_status lma_shard_writer_commit(lma_shard_writer *w);
/* Removes the temporary file and frees w. NULL is a no-op. */
void lma_shard_writer_abort(lma_shard_writer *w);

/* ---- reader ---- */
typedef struct lma_shard lma_shard;

lma_status lma_shard_open(const char *path, lma_shard **s);
/* Same validation on a caller-owned buffer; name is used in messages. */
lma_status lma_shard_open_mem(const void *data, size_t len, const char *name, lma_shard **s);
void lma_shard_close(lma_shard *s);

uint64_t lma_shard_ntokens(const lma_shard *s); /* EOS included */
uint64_t lma_shard_ndocs(const lma_shard *s);
int lma_shard_width(const lma_shard *s);
int32_t lma_shard_eos(const lma_shard *s);
int32_t lma_shard_max_id(const lma_shard *s); /* largest id in the file (-1 if empty) */
/* Token i of the whole shard; i < ntokens (unchecked: the caller bounds it). */
int32_t lma_shard_token(const lma_shard *s, uint64_t i);
/* Tokens [start, start+n) into out (n); error if the range is out of bounds. */
lma_status lma_shard_read(const lma_shard *s, uint64_t start, size_t n, int32_t *out);
/* Document d: first token index and length (EOS excluded). */
lma_status lma_shard_doc(const lma_shard *s, uint64_t d, uint64_t *start, uint64_t *len);

/* ---- shard set: shards concatenated in the order given ---- */
typedef struct lma_shardset lma_shardset;

/* Opens every path; all shards must share the EOS id (else LMA_ERR_FORMAT naming
 * both files). n >= 1. */
lma_status lma_shardset_open(const char *const *paths, size_t n, lma_shardset **s);
void lma_shardset_close(lma_shardset *s);

size_t lma_shardset_nshards(const lma_shardset *s);
uint64_t lma_shardset_ntokens(const lma_shardset *s); /* EOS included */
uint64_t lma_shardset_ndocs(const lma_shardset *s);
int32_t lma_shardset_eos(const lma_shardset *s);
int32_t lma_shardset_max_id(const lma_shardset *s);
/* Global document d (0-based over all shards): its length without EOS. */
lma_status lma_shardset_doc_len(const lma_shardset *s, uint64_t d, uint64_t *len);
/* Tokens [off, off+n) of global document d into out (n); off+n <= len. */
lma_status lma_shardset_doc_read(const lma_shardset *s, uint64_t d, uint64_t off, size_t n, int32_t *out);
#endif
