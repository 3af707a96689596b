/* The indexer (index.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/buf.h"
#include "core/io.h"
#include "rag/chunk.h"
#include "rag/extract.h"
#include "rag/index.h"

lma_rag_index_params lma_rag_index_defaults(void) {
    lma_rag_index_params p = {200, 32, 32, 1, lma_hnsw_defaults(), NULL, NULL, NULL};
    return p;
}

typedef struct {
    char **v;
    size_t n, cap;
} strs;

static lma_status strs_add(strs *s, const char *p) {
    LMA_TRY(lma_grow(&s->v, &s->cap, s->n + 1, sizeof *s->v, 64, "file list"));
    if (!(s->v[s->n] = strdup(p))) return lma_error(LMA_ERR_NOMEM, "file list");
    s->n++;
    return LMA_OK;
}
static void strs_free(strs *s) {
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static lma_status walk(const char *dir, strs *out) {
    DIR *d = opendir(dir);
    if (!d) return lma_error(LMA_ERR_IO, "%s: cannot read folder", dir);
    strs names = {0};
    struct dirent *e;
    lma_status r = LMA_OK;
    while (!r && (e = readdir(d)))
        if (e->d_name[0] != '.') r = strs_add(&names, e->d_name);
    closedir(d);
    if (names.n) qsort(names.v, names.n, sizeof *names.v, cmp_str);
    for (size_t i = 0; !r && i < names.n; i++) {
        char p[4096];
        if (snprintf(p, sizeof p, "%s/%s", dir, names.v[i]) >= (int)sizeof p) { r = lma_error(LMA_ERR_ARG, "%s: path too long", dir); break; }
        struct stat st;
        if (stat(p, &st) != 0) continue; /* a dangling link */
        if (S_ISDIR(st.st_mode)) r = walk(p, out);
        else if (S_ISREG(st.st_mode) && lma_rag_indexable(p)) r = strs_add(out, p);
    }
    strs_free(&names);
    return r;
}

/* "./a//b/" -> "a/b" (in place) */
static void normalize(char *p) {
    char *w = p;
    for (const char *r = p; *r;) {
        if (r[0] == '.' && r[1] == '/' && (r == p || r[-1] == '/')) { r += 2; continue; }
        if (*r == '/' && w > p && w[-1] == '/') { r++; continue; }
        *w++ = *r++;
    }
    while (w > p + 1 && w[-1] == '/') w--;
    *w = 0;
}

lma_status lma_rag_check_encoder(lma_rag_store *s, const lma_rag_encoder *enc, int record) {
    char *name = NULL, *dim = NULL;
    lma_status r = s->ops->meta_get(s, "embed_model", &name);
    if (!r) r = s->ops->meta_get(s, "dim", &dim);
    if (!r && !name && record) {
        char v[32];
        snprintf(v, sizeof v, "%d", enc->dim);
        r = s->ops->meta_set(s, "embed_model", enc->name ? enc->name : "");
        if (!r) r = s->ops->meta_set(s, "dim", v);
    } else if (!r && name && (atoi(dim ? dim : "0") != enc->dim || strcmp(name, enc->name ? enc->name : ""))) {
        r = lma_error(LMA_ERR_ARG, "%s: indexed with %s (dim %s), not %s (dim %d): use the same model or a new store",
                      s->name, *name ? name : "no embedding model", dim ? dim : "0", enc->name ? enc->name : "?", enc->dim);
    }
    free(name), free(dim);
    return r;
}

static lma_status check_sizes(lma_rag_store *s, const lma_rag_index_params *p) {
    char *c = NULL, *o = NULL, v[32];
    lma_status r = s->ops->meta_get(s, "chunk_tokens", &c);
    if (!r) r = s->ops->meta_get(s, "overlap_tokens", &o);
    if (!r && !c) {
        snprintf(v, sizeof v, "%d", p->chunk_tokens);
        r = s->ops->meta_set(s, "chunk_tokens", v);
        snprintf(v, sizeof v, "%d", p->overlap_tokens);
        if (!r) r = s->ops->meta_set(s, "overlap_tokens", v);
    } else if (!r && (atoi(c) != p->chunk_tokens || atoi(o ? o : "0") != p->overlap_tokens)) {
        r = lma_error(LMA_ERR_ARG, "%s: chunked with --chunk-tokens %s --overlap-tokens %s; this run asks %d and %d "
                      "(use the same, or a new store)", s->name, c, o ? o : "0", p->chunk_tokens, p->overlap_tokens);
    }
    free(c), free(o);
    return r;
}

/* Writes one document's chunks (the transaction is the caller's). */
static lma_status index_doc(lma_rag_store *s, const lma_rag_encoder *enc, const char *path, const lma_rag_doc *d,
                            const lma_rag_index_params *p, lma_rag_index_stats *st) {
    lma_rag_span *sp = NULL;
    size_t ns = 0;
    LMA_TRY(lma_rag_chunk(enc, d->text, d->len, p->chunk_tokens, p->overlap_tokens, &sp, &ns));
    int64_t key;
    char **texts = calloc(ns ? ns : 1, sizeof *texts);
    float *emb = enc->dim > 0 ? malloc((size_t)(p->batch > 0 ? p->batch : 32) * enc->dim * sizeof *emb) : NULL;
    lma_status r = texts && (emb || enc->dim <= 0) ? LMA_OK : lma_error(LMA_ERR_NOMEM, "chunks");
    for (size_t i = 0; !r && i < ns; i++) {
        size_t n = sp[i].end - sp[i].start;
        if (!(texts[i] = malloc(n + 1))) r = lma_error(LMA_ERR_NOMEM, "chunk text");
        else memcpy(texts[i], d->text + sp[i].start, n), texts[i][n] = 0;
    }
    if (!r) r = s->ops->doc_add(s, path, d->doc_id, d->meta, (int)ns, &key);
    size_t batch = p->batch > 0 ? (size_t)p->batch : 32;
    for (size_t b0 = 0; !r && b0 < ns; b0 += batch) {
        size_t m = ns - b0 < batch ? ns - b0 : batch;
        if (enc->dim > 0) r = enc->embed(enc->ctx, (const char *const *)texts + b0, m, 0, emb);
        for (size_t i = 0; !r && i < m; i++) {
            r = s->ops->chunk_add(s, key, (int)(b0 + i), (int64_t)sp[b0 + i].start, (int64_t)sp[b0 + i].end,
                                  texts[b0 + i], enc->dim > 0 ? emb + i * enc->dim : NULL, enc->dim, NULL);
            st->chunks++;
            if (!r && p->on_chunk && p->on_chunk(p->ctx, st->chunks))
                r = lma_error(LMA_ERR_INTERRUPTED, "indexing stopped");
        }
    }
    st->docs += !r;
    for (size_t i = 0; texts && i < ns; i++) free(texts[i]);
    free(texts), free(emb), free(sp);
    return r;
}

static lma_status index_file(lma_rag_store *s, const lma_rag_encoder *enc, const char *path,
                             const lma_rag_index_params *p, lma_rag_index_stats *st) {
    char *data = NULL, hash[64];
    size_t len = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) return lma_error(LMA_ERR_IO, "%s: no such file", path);
    LMA_TRY(lma_read_file(path, &data, &len));
    lma_rag_hash(data, len, hash);
    lma_rag_file_row old = {0};
    int found = 0;
    lma_status r = s->ops->file_get(s, path, &old, &found);
    if (!r && found && !strcmp(old.hash, hash)) {
        if (old.mtime != (int64_t)sb.st_mtime) r = s->ops->file_put(s, path, hash, (int64_t)sb.st_mtime);
        st->unchanged++;
        if (!r && p->on_file) p->on_file(p->ctx, path, "unchanged", 0);
    } else if (!r) {
        lma_rag_doc *docs = NULL;
        size_t nd = 0, before = st->chunks;
        r = lma_rag_extract(path, data, len, &docs, &nd);
        if (!r) r = s->ops->begin(s);
        if (!r) {
            r = s->ops->file_delete(s, path);
            if (!r) r = s->ops->file_put(s, path, hash, (int64_t)sb.st_mtime);
            for (size_t i = 0; !r && i < nd; i++) r = index_doc(s, enc, path, &docs[i], p, st);
            if (!r) r = s->ops->commit(s);
            else s->ops->rollback(s);
        }
        lma_rag_docs_free(docs, nd);
        if (!r) {
            if (found) st->changed++;
            else st->added++;
            if (p->on_file) p->on_file(p->ctx, path, found ? "changed" : "added", st->chunks - before);
        }
    }
    free(old.path), free(old.hash), free(data);
    return r;
}

static int under(const char *path, const char *root) {
    size_t n = strlen(root);
    return !strcmp(path, root) || !strcmp(root, ".") || (!strncmp(path, root, n) && path[n] == '/');
}

lma_status lma_rag_index(lma_rag_store *s, const lma_rag_encoder *enc, const char *const *paths, int n_paths,
                         const lma_rag_index_params *p, lma_rag_index_stats *st) {
    memset(st, 0, sizeof *st);
    LMA_TRY(lma_rag_check_encoder(s, enc, 1));
    LMA_TRY(check_sizes(s, p));
    strs files = {0}, roots = {0};
    lma_status r = LMA_OK;
    for (int i = 0; !r && i < n_paths; i++) {
        char p0[4096];
        snprintf(p0, sizeof p0, "%s", paths[i]);
        normalize(p0);
        struct stat sb;
        if (stat(p0, &sb) != 0) r = lma_error(LMA_ERR_IO, "%s: no such file or folder", paths[i]);
        else if (S_ISDIR(sb.st_mode)) r = walk(p0, &files);
        else if (!lma_rag_indexable(p0))
            r = lma_error(LMA_ERR_ARG, "%s: not a file type the indexer reads (.txt .md .html .jsonl)", paths[i]);
        else r = strs_add(&files, p0);
        if (!r) r = strs_add(&roots, p0);
    }
    if (!r && files.n) { /* once each */
        qsort(files.v, files.n, sizeof *files.v, cmp_str);
        size_t w = 0;
        for (size_t i = 0; i < files.n; i++)
            if (w && !strcmp(files.v[w - 1], files.v[i])) free(files.v[i]);
            else files.v[w++] = files.v[i];
        files.n = w;
    }
    for (size_t i = 0; !r && i < files.n; i++) r = index_file(s, enc, files.v[i], p, st);
    /* stored files that are gone, or under a given root and not seen */
    lma_rag_file_row *rows = NULL;
    size_t nr = 0;
    if (!r) r = s->ops->file_list(s, &rows, &nr);
    for (size_t i = 0; !r && i < nr; i++) {
        int seen = bsearch(&rows[i].path, files.v, files.n, sizeof *files.v, cmp_str) != NULL, in_root = 0;
        for (size_t k = 0; k < roots.n; k++) in_root |= under(rows[i].path, roots.v[k]);
        if (seen || (!in_root && lma_file_exists(rows[i].path))) continue;
        r = s->ops->begin(s);
        if (!r) r = s->ops->file_delete(s, rows[i].path);
        if (!r) r = s->ops->commit(s);
        else s->ops->rollback(s);
        if (!r) {
            st->removed++;
            if (p->on_file) p->on_file(p->ctx, rows[i].path, "removed", 0);
        }
    }
    lma_rag_file_rows_free(rows, nr);
    if (!r && enc->dim > 0 && p->graph) r = lma_hnsw_update(s, enc->dim, p->hnsw, &st->graph_added, &st->graph_removed);
    strs_free(&files), strs_free(&roots);
    return r;
}
