/* The RAG store: source files, documents, chunks (text + byte offsets + embedding), a
 * full-text index and the HNSW graph, behind one interface (a table of functions) so that
 * the SQLite backend here and a server backend later (PostgreSQL + pgvector, docs/rag.md)
 * are interchangeable. Callers use only lma_rag_store_* below; a backend fills the ops.
 *
 * Units: a *file* is what the indexer reads (path, content hash, mtime); it yields one or
 * more *documents* (a .jsonl line is one; any other file is one) with a doc_id (the
 * .jsonl "id", else the path) and metadata JSON; a document is cut into *chunks*.
 * Chunk ids: the store's integer key (stable until the chunk's file changes).
 * Transactions: begin/commit/rollback bracket everything the indexer writes for one file.
 * Ownership: strings returned in lma_rag_chunk_row / lma_rag_file_row are malloc'd and
 * freed with lma_rag_chunk_row_free / free(); the store handle by lma_rag_store_close. */
#ifndef LMA_RAG_STORE_H
#define LMA_RAG_STORE_H
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

typedef struct lma_rag_store lma_rag_store;

/* A filter on the documents a search may return (NULL fields: no condition). */
typedef struct {
    const char *path_glob;  /* SQLite GLOB on the file path, e.g. "docs/[*]" */
    const char *meta_key;   /* metadata field equal to meta_value (string comparison) */
    const char *meta_value;
} lma_rag_filter;

typedef struct {
    int64_t id;         /* chunk key */
    char *doc_id;       /* document id */
    char *path;         /* source file */
    char *meta;         /* document metadata JSON ("{}" when none) */
    int seq, n_chunks;  /* chunk index within the document, and how many it has */
    int64_t start, end; /* byte offsets in the document's extracted text */
    char *text;
} lma_rag_chunk_row;

typedef struct {
    char *path, *hash;
    int64_t mtime;
} lma_rag_file_row;

typedef struct {
    /* files */
    lma_status (*file_get)(lma_rag_store *s, const char *path, lma_rag_file_row *out, int *found);
    lma_status (*file_list)(lma_rag_store *s, lma_rag_file_row **out, size_t *n);
    lma_status (*file_put)(lma_rag_store *s, const char *path, const char *hash, int64_t mtime);
    lma_status (*file_delete)(lma_rag_store *s, const char *path); /* its documents, chunks, graph nodes */
    /* documents and chunks */
    lma_status (*doc_add)(lma_rag_store *s, const char *path, const char *doc_id, const char *meta_json,
                          int n_chunks, int64_t *doc_key);
    lma_status (*chunk_add)(lma_rag_store *s, int64_t doc_key, int seq, int64_t start, int64_t end,
                            const char *text, const float *emb, int dim, int64_t *chunk_id);
    lma_status (*chunk_get)(lma_rag_store *s, int64_t id, lma_rag_chunk_row *out);
    lma_status (*chunk_count)(lma_rag_store *s, int64_t *n);
    lma_status (*chunk_ids)(lma_rag_store *s, int64_t **ids, size_t *n); /* every chunk, ascending; caller frees */
    /* search: BM25 (k1 1.2, b 0.75) over the full-text index, best first, score higher = better */
    lma_status (*bm25)(lma_rag_store *s, const char *query, const lma_rag_filter *f, int k, int64_t *ids,
                       double *scores, int *n);
    /* every embedding passing the filter: ids (n), vecs (n, dim) row-major; caller frees */
    lma_status (*vectors)(lma_rag_store *s, const lma_rag_filter *f, int64_t **ids, float **vecs, size_t *n);
    lma_status (*vector_get)(lma_rag_store *s, int64_t id, float *vec); /* dim floats */
    lma_status (*filter_match)(lma_rag_store *s, const lma_rag_filter *f, int64_t id, int *ok);
    /* key/value settings: embed model, dim, chunk sizes, HNSW parameters */
    lma_status (*meta_get)(lma_rag_store *s, const char *key, char **value); /* NULL when unset */
    lma_status (*meta_set)(lma_rag_store *s, const char *key, const char *value);
    /* the HNSW graph, node by node: level and links (per level: count, then ids) as a blob */
    lma_status (*graph_get)(lma_rag_store *s, int64_t id, int *level, void **blob, size_t *len, int *found);
    lma_status (*graph_put)(lma_rag_store *s, int64_t id, int level, const void *blob, size_t len);
    lma_status (*graph_delete)(lma_rag_store *s, int64_t id);
    lma_status (*graph_ids)(lma_rag_store *s, int64_t **ids, size_t *n);
    lma_status (*begin)(lma_rag_store *s);
    lma_status (*commit)(lma_rag_store *s);
    lma_status (*rollback)(lma_rag_store *s);
    void (*close)(lma_rag_store *s);
} lma_rag_store_ops;

struct lma_rag_store {
    const lma_rag_store_ops *ops;
    char name[1024]; /* for messages: the file or connection */
};

/* Opens (create = 1: creates when missing) an lmadapt RAG database. A file that is not
 * SQLite, is another application's SQLite database, or has a newer schema gets
 * LMA_ERR_FORMAT with one line naming the file. */
lma_status lma_rag_store_open_sqlite(const char *path, int create, lma_rag_store **out);
void lma_rag_store_close(lma_rag_store *s);
void lma_rag_chunk_row_free(lma_rag_chunk_row *r);
void lma_rag_file_rows_free(lma_rag_file_row *rows, size_t n);

#define LMA_RAG_APPLICATION_ID 0x4C4D4152 /* "LMAR" */
#define LMA_RAG_SCHEMA_VERSION 1
#endif
