/* The RAG store on SQLite3 (one file, WAL journal): see store.h for the interface and
 * docs/rag.md for the schema. application_id "LMAR" + user_version identify the file, so a
 * foreign or newer database is refused with one line instead of being written into. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rag/store.h"

typedef struct {
    lma_rag_store base;
    sqlite3 *db;
} sq_store;

static sqlite3 *DB(lma_rag_store *s) { return ((sq_store *)s)->db; }

static lma_status sq_err(lma_rag_store *s, const char *what) {
    sqlite3 *db = DB(s);
    int code = sqlite3_errcode(db);
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
        return lma_error(LMA_ERR_FORMAT, "%s: corrupt database (%s: %s)", s->name, what, sqlite3_errmsg(db));
    if (code == SQLITE_NOMEM) return lma_error(LMA_ERR_NOMEM, "%s: out of memory (%s)", s->name, what);
    return lma_error(LMA_ERR_IO, "%s: %s: %s", s->name, what, sqlite3_errmsg(db));
}

static lma_status exec(lma_rag_store *s, const char *sql) {
    if (sqlite3_exec(DB(s), sql, NULL, NULL, NULL) != SQLITE_OK) return sq_err(s, sql);
    return LMA_OK;
}

static lma_status prep(lma_rag_store *s, const char *sql, sqlite3_stmt **st) {
    if (sqlite3_prepare_v2(DB(s), sql, -1, st, NULL) != SQLITE_OK) return sq_err(s, sql);
    return LMA_OK;
}

static char *dup_col(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *)t : "");
}

/* filter SQL: appended to a WHERE over chunks c JOIN documents d; binds start at `first` */
static void filter_sql(const lma_rag_filter *f, char *out, size_t cap) {
    out[0] = 0;
    if (!f) return;
    if (f->path_glob) snprintf(out + strlen(out), cap - strlen(out), " AND d.path GLOB ?");
    if (f->meta_key) snprintf(out + strlen(out), cap - strlen(out), " AND CAST(json_extract(d.meta, '$.' || json_quote(?)) AS TEXT) = ?");
}
static int filter_bind(const lma_rag_filter *f, sqlite3_stmt *st, int i) {
    if (!f) return i;
    if (f->path_glob) sqlite3_bind_text(st, i++, f->path_glob, -1, SQLITE_TRANSIENT);
    if (f->meta_key) {
        sqlite3_bind_text(st, i++, f->meta_key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, i++, f->meta_value ? f->meta_value : "", -1, SQLITE_TRANSIENT);
    }
    return i;
}

static lma_status sq_file_get(lma_rag_store *s, const char *path, lma_rag_file_row *out, int *found) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, "SELECT hash, mtime FROM files WHERE path = ?", &st));
    sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (*found) {
        out->path = strdup(path);
        out->hash = dup_col(st, 0);
        out->mtime = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? LMA_OK : sq_err(s, "files");
}

static lma_status sq_file_list(lma_rag_store *s, lma_rag_file_row **out, size_t *n) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, "SELECT path, hash, mtime FROM files ORDER BY path", &st));
    size_t cap = 0;
    *out = NULL, *n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            lma_rag_file_row *p = realloc(*out, cap * sizeof *p);
            if (!p) { sqlite3_finalize(st); return lma_error(LMA_ERR_NOMEM, "file list"); }
            *out = p;
        }
        (*out)[*n].path = dup_col(st, 0);
        (*out)[*n].hash = dup_col(st, 1);
        (*out)[*n].mtime = sqlite3_column_int64(st, 2);
        (*n)++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? LMA_OK : sq_err(s, "files");
}

static lma_status sq_file_put(lma_rag_store *s, const char *path, const char *hash, int64_t mtime) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, "INSERT OR REPLACE INTO files(path, hash, mtime) VALUES (?, ?, ?)", &st));
    sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, mtime);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? LMA_OK : sq_err(s, "files");
}

static lma_status run1(lma_rag_store *s, const char *sql, const char *text) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, sql, &st));
    sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? LMA_OK : sq_err(s, sql);
}

static lma_status sq_file_delete(lma_rag_store *s, const char *path) {
    /* the chunks' FTS rows go with them (triggers); graph nodes stay until the HNSW update
     * finds them without a chunk */
    LMA_TRY(run1(s, "DELETE FROM chunks WHERE doc IN (SELECT key FROM documents WHERE path = ?)", path));
    LMA_TRY(run1(s, "DELETE FROM documents WHERE path = ?", path));
    return run1(s, "DELETE FROM files WHERE path = ?", path);
}

static lma_status sq_doc_add(lma_rag_store *s, const char *path, const char *doc_id, const char *meta, int n_chunks,
                             int64_t *key) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, "INSERT INTO documents(path, doc_id, meta, n_chunks) VALUES (?, ?, ?, ?)", &st));
    sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, doc_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, meta ? meta : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, n_chunks);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sq_err(s, "documents");
    *key = sqlite3_last_insert_rowid(DB(s));
    return LMA_OK;
}

static lma_status sq_chunk_add(lma_rag_store *s, int64_t doc, int seq, int64_t start, int64_t end, const char *text,
                               const float *emb, int dim, int64_t *id) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, "INSERT INTO chunks(doc, seq, start, end, text, emb) VALUES (?, ?, ?, ?, ?, ?)", &st));
    sqlite3_bind_int64(st, 1, doc);
    sqlite3_bind_int(st, 2, seq);
    sqlite3_bind_int64(st, 3, start);
    sqlite3_bind_int64(st, 4, end);
    sqlite3_bind_text(st, 5, text, -1, SQLITE_TRANSIENT);
    if (emb && dim > 0) sqlite3_bind_blob(st, 6, emb, dim * (int)sizeof(float), SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, 6);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sq_err(s, "chunks");
    if (id) *id = sqlite3_last_insert_rowid(DB(s));
    return LMA_OK;
}

static lma_status sq_chunk_get(lma_rag_store *s, int64_t id, lma_rag_chunk_row *r) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, "SELECT d.doc_id, d.path, d.meta, c.seq, d.n_chunks, c.start, c.end, c.text "
                    "FROM chunks c JOIN documents d ON d.key = c.doc WHERE c.id = ?", &st));
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        r->id = id;
        r->doc_id = dup_col(st, 0);
        r->path = dup_col(st, 1);
        r->meta = dup_col(st, 2);
        r->seq = sqlite3_column_int(st, 3);
        r->n_chunks = sqlite3_column_int(st, 4);
        r->start = sqlite3_column_int64(st, 5);
        r->end = sqlite3_column_int64(st, 6);
        r->text = dup_col(st, 7);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) return lma_error(LMA_ERR_ARG, "%s: no chunk %lld", s->name, (long long)id);
    return rc == SQLITE_ROW ? LMA_OK : sq_err(s, "chunks");
}

static lma_status sq_chunk_count(lma_rag_store *s, int64_t *n) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, "SELECT count(*) FROM chunks", &st));
    int rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? LMA_OK : sq_err(s, "chunks");
}

/* Document frequency of an ASCII word in the full-text index (fts5vocab, in the temp
 * schema so the file's schema does not change); -1 when it cannot be told. */
static int64_t doc_freq(lma_rag_store *s, const char *w, size_t n) {
    sqlite3_stmt *st;
    if (sqlite3_exec(DB(s), "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab USING fts5vocab(main, chunks_fts, row)",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(DB(s), "SELECT doc FROM temp.chunks_vocab WHERE term = ?", -1, &st, NULL) != SQLITE_OK)
        return -1;
    char low[256];
    if (n >= sizeof low) { sqlite3_finalize(st); return -1; }
    for (size_t i = 0; i < n; i++) low[i] = (char)((w[i] >= 'A' && w[i] <= 'Z') ? w[i] | 32 : w[i]);
    sqlite3_bind_text(st, 1, low, (int)n, SQLITE_TRANSIENT);
    int64_t df = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return df;
}

/* The query as FTS5 syntax: every word (letters, digits, bytes >= 0x80) as a quoted term,
 * joined with OR, so any text is a valid query and no word is an operator.
 * n_rows > 0: ASCII words in at least half of the n_rows chunks are left out: FTS5 gives
 * them idf 1e-6 (at most 2.2e-6 of a score) while they would make every chunk a match
 * and the query as slow as a full scan. When that leaves nothing, all words stay. */
static char *fts_query_ex(lma_rag_store *s, const char *q, int64_t n_rows);
static char *fts_query(const char *q) { return fts_query_ex(NULL, q, 0); }
static char *fts_query_ex(lma_rag_store *s, const char *q, int64_t n_rows) {
    size_t n = strlen(q);
    char *out = malloc(4 * n + 8), *o = out;
    if (!out) return NULL;
    *o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)q[i];
        if (!(c >= 0x80 || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'))) { i++; continue; }
        size_t j = i;
        while (j < n) {
            unsigned char d = (unsigned char)q[j];
            if (!(d >= 0x80 || (d >= '0' && d <= '9') || ((d | 32) >= 'a' && (d | 32) <= 'z'))) break;
            j++;
        }
        int ascii = 1;
        for (size_t k = i; k < j; k++) ascii &= (unsigned char)q[k] < 0x80;
        if (s && n_rows > 0 && ascii) {
            int64_t df = doc_freq(s, q + i, j - i);
            if (df >= 0 && 2 * df >= n_rows) { i = j; continue; }
        }
        if (o != out) o += sprintf(o, " OR ");
        *o++ = '"';
        memcpy(o, q + i, j - i);
        o += j - i;
        *o++ = '"';
        *o = 0;
        i = j;
    }
    return out;
}

static lma_status sq_bm25(lma_rag_store *s, const char *query, const lma_rag_filter *f, int k, int64_t *ids,
                          double *scores, int *n) {
    *n = 0;
    int64_t rows = 0;
    LMA_TRY(sq_chunk_count(s, &rows));
    char *q = fts_query_ex(s, query, rows);
    if (q && !*q) { free(q); q = fts_query(query); } /* only very common words: keep them all */
    if (!q) return lma_error(LMA_ERR_NOMEM, "query");
    if (!*q) { free(q); return LMA_OK; } /* no words: no hits */
    char fs[256], sql[1024];
    filter_sql(f, fs, sizeof fs);
    /* FTS5's bm25() is -(Okapi BM25) with k1 1.2, b 0.75: smaller is better */
    /* "ORDER BY rank" (rank = bm25() by default) is the form FTS5 sorts inside the index
     * scan; the join to documents is made only for a filter */
    if (!*fs)
        snprintf(sql, sizeof sql, "SELECT rowid, -rank FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?");
    else
        snprintf(sql, sizeof sql,
                 "SELECT c.id, -bm25(chunks_fts) AS sc FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
                 "JOIN documents d ON d.key = c.doc WHERE chunks_fts MATCH ?%s ORDER BY sc DESC, c.id LIMIT ?", fs);
    sqlite3_stmt *st;
    lma_status r = prep(s, sql, &st);
    if (r) { free(q); return r; }
    sqlite3_bind_text(st, 1, q, -1, SQLITE_TRANSIENT);
    int i = filter_bind(f, st, 2);
    sqlite3_bind_int(st, i, k);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < k) {
        ids[*n] = sqlite3_column_int64(st, 0);
        scores[*n] = sqlite3_column_double(st, 1);
        (*n)++;
    }
    sqlite3_finalize(st);
    free(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? LMA_OK : sq_err(s, "bm25");
}

static lma_status sq_vectors(lma_rag_store *s, const lma_rag_filter *f, int64_t **ids, float **vecs, size_t *n) {
    char *dv = NULL;
    LMA_TRY(s->ops->meta_get(s, "dim", &dv));
    int dim = dv ? atoi(dv) : 0;
    free(dv);
    *ids = NULL, *vecs = NULL, *n = 0;
    if (dim <= 0) return LMA_OK;
    char fs[256], sql[512];
    filter_sql(f, fs, sizeof fs);
    snprintf(sql, sizeof sql, "SELECT c.id, c.emb FROM chunks c JOIN documents d ON d.key = c.doc "
                              "WHERE c.emb IS NOT NULL%s ORDER BY c.id", fs);
    sqlite3_stmt *st;
    LMA_TRY(prep(s, sql, &st));
    filter_bind(f, st, 1);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 1) != dim * (int)sizeof(float)) {
            sqlite3_finalize(st);
            return lma_error(LMA_ERR_FORMAT, "%s: chunk %lld: embedding of %d bytes, expected %d", s->name,
                             (long long)sqlite3_column_int64(st, 0), sqlite3_column_bytes(st, 1), dim * 4);
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            int64_t *pi = realloc(*ids, cap * sizeof *pi);
            if (pi) *ids = pi;
            float *pv = pi ? realloc(*vecs, cap * dim * sizeof *pv) : NULL;
            if (!pv) { sqlite3_finalize(st); return lma_error(LMA_ERR_NOMEM, "vectors"); }
            *vecs = pv;
        }
        (*ids)[*n] = sqlite3_column_int64(st, 0);
        memcpy(*vecs + *n * dim, sqlite3_column_blob(st, 1), dim * sizeof(float));
        (*n)++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? LMA_OK : sq_err(s, "vectors");
}

static lma_status sq_vector_get(lma_rag_store *s, int64_t id, float *vec) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, "SELECT emb FROM chunks WHERE id = ?", &st));
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    lma_status r = LMA_OK;
    if (rc == SQLITE_ROW && sqlite3_column_blob(st, 0))
        memcpy(vec, sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0));
    else if (rc == SQLITE_ROW || rc == SQLITE_DONE) r = lma_error(LMA_ERR_ARG, "%s: no embedding for chunk %lld", s->name, (long long)id);
    else r = sq_err(s, "vector");
    sqlite3_finalize(st);
    return r;
}

static lma_status sq_filter_match(lma_rag_store *s, const lma_rag_filter *f, int64_t id, int *ok) {
    char fs[256], sql[512];
    filter_sql(f, fs, sizeof fs);
    snprintf(sql, sizeof sql, "SELECT 1 FROM chunks c JOIN documents d ON d.key = c.doc WHERE c.id = ?%s", fs);
    sqlite3_stmt *st;
    LMA_TRY(prep(s, sql, &st));
    sqlite3_bind_int64(st, 1, id);
    filter_bind(f, st, 2);
    int rc = sqlite3_step(st);
    *ok = rc == SQLITE_ROW;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? LMA_OK : sq_err(s, "filter");
}

static lma_status sq_meta_get(lma_rag_store *s, const char *key, char **value) {
    sqlite3_stmt *st;
    *value = NULL;
    LMA_TRY(prep(s, "SELECT value FROM meta WHERE key = ?", &st));
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *value = dup_col(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? LMA_OK : sq_err(s, "meta");
}

static lma_status sq_meta_set(lma_rag_store *s, const char *key, const char *value) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", &st));
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? LMA_OK : sq_err(s, "meta");
}

static lma_status sq_graph_get(lma_rag_store *s, int64_t id, int *level, void **blob, size_t *len, int *found) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, "SELECT level, links FROM graph WHERE id = ?", &st));
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    *blob = NULL, *len = 0;
    if (*found) {
        *level = sqlite3_column_int(st, 0);
        *len = (size_t)sqlite3_column_bytes(st, 1);
        *blob = malloc(*len ? *len : 1);
        if (*blob && *len) memcpy(*blob, sqlite3_column_blob(st, 1), *len);
    }
    sqlite3_finalize(st);
    if (*found && !*blob) return lma_error(LMA_ERR_NOMEM, "graph node");
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? LMA_OK : sq_err(s, "graph");
}

static lma_status sq_graph_put(lma_rag_store *s, int64_t id, int level, const void *blob, size_t len) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, "INSERT OR REPLACE INTO graph(id, level, links) VALUES (?, ?, ?)", &st));
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, level);
    sqlite3_bind_blob(st, 3, blob, (int)len, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? LMA_OK : sq_err(s, "graph");
}

static lma_status sq_graph_delete(lma_rag_store *s, int64_t id) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, "DELETE FROM graph WHERE id = ?", &st));
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? LMA_OK : sq_err(s, "graph");
}

/* the ids one query selects, in its order */
static lma_status ids_of(lma_rag_store *s, const char *sql, const char *what, int64_t **ids, size_t *n) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, sql, &st));
    size_t cap = 0;
    *ids = NULL, *n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            int64_t *p = realloc(*ids, cap * sizeof *p);
            if (!p) { sqlite3_finalize(st); free(*ids), *ids = NULL, *n = 0; return lma_error(LMA_ERR_NOMEM, "%s ids", what); }
            *ids = p;
        }
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) { free(*ids), *ids = NULL, *n = 0; return sq_err(s, what); }
    return LMA_OK;
}

static lma_status sq_graph_ids(lma_rag_store *s, int64_t **ids, size_t *n) {
    return ids_of(s, "SELECT id FROM graph ORDER BY id", "graph", ids, n);
}

static lma_status sq_chunk_ids(lma_rag_store *s, int64_t **ids, size_t *n) {
    return ids_of(s, "SELECT id FROM chunks ORDER BY id", "chunks", ids, n);
}

static lma_status sq_begin(lma_rag_store *s) { return exec(s, "BEGIN IMMEDIATE"); }
static lma_status sq_commit(lma_rag_store *s) { return exec(s, "COMMIT"); }
static lma_status sq_rollback(lma_rag_store *s) { return exec(s, "ROLLBACK"); }

static void sq_close(lma_rag_store *s) {
    if (!s) return;
    sqlite3_close(DB(s));
    free(s);
}

static const lma_rag_store_ops sq_ops = {
    sq_file_get, sq_file_list, sq_file_put, sq_file_delete, sq_doc_add, sq_chunk_add, sq_chunk_get,
    sq_chunk_count, sq_chunk_ids, sq_bm25, sq_vectors, sq_vector_get, sq_filter_match, sq_meta_get, sq_meta_set,
    sq_graph_get, sq_graph_put, sq_graph_delete, sq_graph_ids, sq_begin, sq_commit, sq_rollback, sq_close,
};

static const char *schema =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE files(path TEXT PRIMARY KEY, hash TEXT NOT NULL, mtime INTEGER NOT NULL);"
    "CREATE TABLE documents(key INTEGER PRIMARY KEY, path TEXT NOT NULL, doc_id TEXT NOT NULL,"
    " meta TEXT NOT NULL DEFAULT '{}', n_chunks INTEGER NOT NULL);"
    "CREATE INDEX documents_path ON documents(path);"
    "CREATE INDEX documents_doc_id ON documents(doc_id);"
    "CREATE TABLE chunks(id INTEGER PRIMARY KEY, doc INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL, emb BLOB);"
    "CREATE INDEX chunks_doc ON chunks(doc);"
    "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks', content_rowid='id');"
    "CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN"
    " INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END;"
    "CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN"
    " INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END;"
    "CREATE TABLE graph(id INTEGER PRIMARY KEY, level INTEGER NOT NULL, links BLOB NOT NULL);";

static lma_status pragma_int(lma_rag_store *s, const char *sql, int64_t *v) {
    sqlite3_stmt *st;
    LMA_TRY(prep(s, sql, &st));
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? LMA_OK : sq_err(s, sql);
}

lma_status lma_rag_store_open_sqlite(const char *path, int create, lma_rag_store **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f) { /* SQLite's own message for a foreign file comes late and says little */
        char head[16] = {0};
        size_t got = fread(head, 1, 16, f);
        fclose(f);
        if (got > 0 && (got < 16 || memcmp(head, "SQLite format 3", 16) != 0))
            return lma_error(LMA_ERR_FORMAT, "%s: not an SQLite database (an lmadapt RAG store is one)", path);
    } else if (!create) {
        return lma_error(LMA_ERR_IO, "%s: no such RAG database (create it with lmadapt rag index)", path);
    }
    sq_store *q = calloc(1, sizeof *q);
    if (!q) return lma_error(LMA_ERR_NOMEM, "store");
    q->base.ops = &sq_ops;
    snprintf(q->base.name, sizeof q->base.name, "%s", path);
    lma_rag_store *s = &q->base;
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &q->db, flags, NULL) != SQLITE_OK) {
        lma_status r = lma_error(LMA_ERR_IO, "%s: %s", path, q->db ? sqlite3_errmsg(q->db) : "cannot open");
        sq_close(s);
        return r;
    }
    sqlite3_busy_timeout(q->db, 10000);
    int64_t app = 0, ver = 0, ntab = 0;
    lma_status r = pragma_int(s, "PRAGMA application_id", &app);
    if (!r) r = pragma_int(s, "PRAGMA user_version", &ver);
    if (!r) r = pragma_int(s, "SELECT count(*) FROM sqlite_master", &ntab);
    if (r) {
        lma_error_replace(LMA_ERR_FORMAT, "%s: not a readable SQLite database (%s)", path, sqlite3_errmsg(q->db));
        sq_close(s);
        return LMA_ERR_FORMAT;
    }
    if (app == 0 && ntab == 0) {
        if (!create) {
            sq_close(s);
            return lma_error(LMA_ERR_FORMAT, "%s: an empty SQLite database, not an lmadapt RAG store", path);
        }
        char sql[128];
        r = exec(s, "PRAGMA journal_mode=WAL");
        if (!r) r = exec(s, "BEGIN");
        if (!r) r = exec(s, schema);
        snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d", LMA_RAG_APPLICATION_ID,
                 LMA_RAG_SCHEMA_VERSION);
        if (!r) r = exec(s, sql);
        if (!r) r = exec(s, "COMMIT");
        if (r) { sq_close(s); return r; }
    } else if (app != LMA_RAG_APPLICATION_ID) {
        sq_close(s);
        return lma_error(LMA_ERR_FORMAT, "%s: an SQLite database of another application (application_id 0x%llx), "
                         "not an lmadapt RAG store", path, (unsigned long long)app);
    } else if (ver > LMA_RAG_SCHEMA_VERSION) {
        sq_close(s);
        return lma_error(LMA_ERR_FORMAT, "%s: RAG store schema %lld is newer than this lmadapt's (%d)", path,
                         (long long)ver, LMA_RAG_SCHEMA_VERSION);
    } else if (ver < 1) {
        sq_close(s);
        return lma_error(LMA_ERR_FORMAT, "%s: lmadapt RAG store without a schema version", path);
    }
    r = exec(s, "PRAGMA journal_mode=WAL");
    if (!r) r = exec(s, "PRAGMA synchronous=NORMAL");
    if (!r) { /* a damaged file may pass the header: touch every table once */
        int64_t n;
        r = pragma_int(s, "SELECT (SELECT count(*) FROM files) + (SELECT count(*) FROM documents) + "
                          "(SELECT count(*) FROM meta)", &n);
        if (r) lma_error_replace(LMA_ERR_FORMAT, "%s: damaged lmadapt RAG store (%s)", path, sqlite3_errmsg(q->db));
    }
    if (r) { sq_close(s); return LMA_ERR_FORMAT; }
    *out = s;
    return LMA_OK;
}

void lma_rag_store_close(lma_rag_store *s) {
    if (s) s->ops->close(s);
}

void lma_rag_chunk_row_free(lma_rag_chunk_row *r) {
    if (!r) return;
    free(r->doc_id), free(r->path), free(r->meta), free(r->text);
    memset(r, 0, sizeof *r);
}

void lma_rag_file_rows_free(lma_rag_file_row *rows, size_t n) {
    for (size_t i = 0; i < n; i++) free(rows[i].path), free(rows[i].hash);
    free(rows);
}
