/* From a file's bytes to documents: .txt and .md as they are, .html with tags stripped
 * (script/style dropped, block tags as paragraph breaks) and entities decoded, .jsonl one
 * document per line ({"id", "text"}; other fields kept as the metadata JSON). The text of
 * a document is what chunk offsets index. Ownership: *docs is malloc'd (free with
 * lma_rag_docs_free). Bad input: LMA_ERR_FORMAT naming file:line:field. */
#ifndef LMA_RAG_EXTRACT_H
#define LMA_RAG_EXTRACT_H
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

typedef struct {
    char *doc_id; /* the .jsonl "id" (string or number), else the path */
    char *meta;   /* JSON object text, "{}" when none */
    char *text;
    size_t len;
} lma_rag_doc;

/* 1 when the indexer reads files with this name (.txt .md .markdown .html .htm .jsonl) */
int lma_rag_indexable(const char *path);
lma_status lma_rag_extract(const char *path, const char *data, size_t len, lma_rag_doc **docs, size_t *n);
void lma_rag_docs_free(lma_rag_doc *docs, size_t n);
/* HTML -> text (exposed for tests): caller frees *out */
lma_status lma_rag_html_text(const char *html, size_t len, char **out, size_t *out_len);
/* content hash of a file's bytes, as stored in the files table: "fnv1a64:<16 hex>:<size>" */
void lma_rag_hash(const void *data, size_t len, char out[64]);
#endif
