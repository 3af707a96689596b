/* Documents from plain text, directories and JSONL. Rules: text_source.h. */
#include "data/text_source.h"
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "core/buf.h"
#include "core/arena.h"
#include "core/io.h"
#include "core/progress.h"

struct lma_text_source {
    lma_text_source_params p;
    char **files;    /* (nfiles) owned paths, reading order */
    size_t nfiles, cap;
    uint64_t total, done, done_file_base;
    size_t next_file;
    FILE *f;         /* open file (NULL between files) */
    size_t cur;      /* index of the open file */
    int jsonl;
    uint64_t line, off; /* lines read, bytes read in the open file */
    char *lb; size_t lcap;          /* getline buffer */
    char *doc; size_t dlen, dcap;   /* document under construction */
    char *fix; size_t fcap;         /* repaired text */
    uint64_t para_line, para_off;
    cJSON *json;
    uint64_t index, skipped, replaced;
    lma_progress bar;
    int failed, finished;
};

lma_text_source_params lma_text_source_default_params(void) {
    lma_text_source_params p;
    memset(&p, 0, sizeof p);
    p.field = "text";
    p.progress_label = "reading text";
    return p;
}

/* ---- UTF-8 (strict: no overlongs, surrogates or > U+10FFFF) ---- */
/* Length of the valid sequence at s, or 0 and *bad = length of the maximal
 * invalid subpart (>= 1), as Unicode's "best practice" and Python define it. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t k;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) k = 1;
    else if (c >= 0xE0 && c <= 0xEF) { k = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else { *bad = 1; return 0; }
    size_t i = 1;
    for (; i <= k && i < n; i++) {
        unsigned b = s[i], l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) break;
    }
    if (i == k + 1) return k + 1;
    *bad = i;
    return 0;
}

static size_t utf8_first_bad(const unsigned char *s, size_t n) {
    size_t i = 0, bad;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        size_t k = utf8_seq(s + i, n - i, &bad);
        if (!k) return i;
        i += k;
    }
    return n;
}

/* Repairs (t, n) into s->fix; returns the new length or SIZE_MAX on no memory. */
static size_t utf8_repair(lma_text_source *s, const unsigned char *t, size_t n) {
    size_t need;
    if (!lma_mul_ok(n, 3, &need) || !lma_add_ok(need, 1, &need)) { lma_error(LMA_ERR_NOMEM, "text too large"); return SIZE_MAX; }
    if (need > s->fcap) {
        char *nb = realloc(s->fix, need);
        if (!nb) { lma_error(LMA_ERR_NOMEM, "out of memory repairing UTF-8 (%zu bytes)", need); return SIZE_MAX; }
        s->fix = nb; s->fcap = need;
    }
    size_t i = 0, o = 0, bad;
    while (i < n) {
        size_t k = utf8_seq(t + i, n - i, &bad);
        if (k) { memcpy(s->fix + o, t + i, k); o += k; i += k; continue; }
        memcpy(s->fix + o, "\xEF\xBF\xBD", 3); o += 3; i += bad;
        s->replaced++;
    }
    s->fix[o] = 0;
    return o;
}

/* Validates (or repairs) text in place (updates text and len). base_off: offset of text[0]
 * in the file; line0: line of text[0]. */
static lma_status check_utf8(lma_text_source *s, const char **text, size_t *len, uint64_t base_off, uint64_t line0) {
    size_t bad = utf8_first_bad((const unsigned char *)*text, *len);
    if (bad == *len) return LMA_OK;
    if (!s->p.replace_invalid_utf8) {
        uint64_t line = line0;
        for (size_t i = 0; i < bad; i++) line += (*text)[i] == '\n';
        return lma_error(LMA_ERR_FORMAT, "%s:%" PRIu64 ": invalid UTF-8 at byte offset %" PRIu64
                         " (byte 0x%02X); fix the file or set replace_invalid_utf8",
                         s->files[s->cur], line, base_off + bad, (unsigned)(unsigned char)(*text)[bad]);
    }
    size_t n = utf8_repair(s, (const unsigned char *)*text, *len);
    if (n == SIZE_MAX) return LMA_ERR_NOMEM;
    *text = s->fix; *len = n;
    return LMA_OK;
}

/* ---- file list ---- */
static lma_status add_file(lma_text_source *s, const char *path, uint64_t size) {
    LMA_TRY(lma_grow(&s->files, &s->cap, s->nfiles + 1, sizeof *s->files, 16, "the file list"));
    size_t L = strlen(path);
    char *c = lma_malloc(L + 1, "file path");
    if (!c) return LMA_ERR_NOMEM;
    memcpy(c, path, L + 1);
    s->files[s->nfiles++] = c;
    s->total += size;
    return LMA_OK;
}

static int cmp_path(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static lma_status walk(lma_text_source *s, const char *dir, int depth) {
    if (depth > 64) return lma_error(LMA_ERR_ARG, "%s: directories nested more than 64 deep", dir);
    DIR *d = opendir(dir);
    if (!d) return lma_error(LMA_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    lma_status st = LMA_OK;
    struct dirent *e;
    char path[4096];
    while (st == LMA_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if ((st = lma_path_join(path, sizeof path, dir, e->d_name)) != LMA_OK) break;
        struct stat sb;
        if (lstat(path, &sb) != 0) { st = lma_error(LMA_ERR_IO, "%s: cannot stat: %s", path, strerror(errno)); break; }
        if (S_ISDIR(sb.st_mode)) st = walk(s, path, depth + 1);
        else if (S_ISREG(sb.st_mode)) st = add_file(s, path, (uint64_t)sb.st_size);
    }
    closedir(d);
    return st;
}

lma_status lma_text_source_open(const char *const *paths, size_t n, const lma_text_source_params *p,
                                lma_text_source **out) {
    *out = NULL;
    if (!paths || n == 0) return lma_error(LMA_ERR_ARG, "text source: no input paths given");
    lma_text_source *s = lma_calloc(1, sizeof *s, "text source");
    if (!s) return LMA_ERR_NOMEM;
    s->p = p ? *p : lma_text_source_default_params();
    if (!s->p.field) s->p.field = "text";
    if (!s->p.progress_label) s->p.progress_label = "reading text";
    lma_status st = LMA_OK;
    for (size_t i = 0; i < n && st == LMA_OK; i++) {
        struct stat sb;
        if (!paths[i] || stat(paths[i], &sb) != 0) {
            st = lma_error(LMA_ERR_IO, "%s: cannot open: %s", paths[i] ? paths[i] : "(null)", strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            size_t first = s->nfiles;
            st = walk(s, paths[i], 0);
            if (st == LMA_OK && s->nfiles == first)
                st = lma_error(LMA_ERR_ARG, "%s: directory holds no regular files", paths[i]);
            if (st == LMA_OK) qsort(s->files + first, s->nfiles - first, sizeof *s->files, cmp_path);
        } else if (S_ISREG(sb.st_mode)) {
            st = add_file(s, paths[i], (uint64_t)sb.st_size);
        } else {
            st = lma_error(LMA_ERR_ARG, "%s: not a regular file or directory", paths[i]);
        }
    }
    if (st != LMA_OK) { lma_text_source_close(s); return st; }
    if (s->p.progress) lma_progress_start(&s->bar, s->p.progress_label, (int64_t)s->total);
    *out = s;
    return LMA_OK;
}

void lma_text_source_close(lma_text_source *s) {
    if (!s) return;
    if (s->f) fclose(s->f);
    for (size_t i = 0; i < s->nfiles; i++) free(s->files[i]);
    free(s->files); free(s->lb); free(s->doc); free(s->fix);
    cJSON_Delete(s->json);
    free(s);
}

size_t lma_text_source_nfiles(const lma_text_source *s) { return s->nfiles; }
const char *lma_text_source_file(const lma_text_source *s, size_t i) { return i < s->nfiles ? s->files[i] : NULL; }
uint64_t lma_text_source_bytes_total(const lma_text_source *s) { return s->total; }
uint64_t lma_text_source_bytes_done(const lma_text_source *s) { return s->done; }
uint64_t lma_text_source_skipped(const lma_text_source *s) { return s->skipped; }
uint64_t lma_text_source_replaced(const lma_text_source *s) { return s->replaced; }

static void report(lma_text_source *s) {
    s->done = s->done_file_base + s->off;
    if (s->p.on_progress) s->p.on_progress(s->p.progress_ctx, s->done, s->total);
    if (s->p.progress) lma_progress_update(&s->bar, (int64_t)s->done);
}

static lma_status doc_append(lma_text_source *s, const char *b, size_t n) {
    size_t need;
    if (!lma_add_ok(s->dlen, n, &need) || !lma_add_ok(need, 1, &need))
        return lma_error(LMA_ERR_NOMEM, "%s: document too large", s->files[s->cur]);
    LMA_TRY(lma_grow(&s->doc, &s->dcap, need, 1, 4096, "a document"));
    memcpy(s->doc + s->dlen, b, n);
    s->dlen += n;
    s->doc[s->dlen] = 0;
    return LMA_OK;
}

/* Reads one line into s->lb; returns its length, 0 at EOF, SIZE_MAX on error.
 * Drops a BOM at the start of the file (it still counts in the offsets). */
static size_t read_line(lma_text_source *s, size_t *skip) {
    errno = 0;
    ssize_t r = getline(&s->lb, &s->lcap, s->f);
    *skip = 0;
    if (r < 0) {
        /* getline fails with ENOMEM on a line that does not fit: that is not the end of the file */
        if (ferror(s->f) || !feof(s->f)) {
            lma_error(errno == ENOMEM ? LMA_ERR_NOMEM : LMA_ERR_IO, "%s:%lld: %s", s->files[s->cur],
                      (long long)s->line + 1, errno == ENOMEM ? "a line does not fit in memory" : strerror(errno));
            return SIZE_MAX;
        }
        return 0;
    }
    if (s->off == 0 && r >= 3 && memcmp(s->lb, "\xEF\xBB\xBF", 3) == 0) *skip = 3;
    s->line++;
    return (size_t)r;
}

static int blank(const char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (b[i] != ' ' && b[i] != '\t' && b[i] != '\r' && b[i] != '\n') return 0;
    return 1;
}

static void close_file(lma_text_source *s) {
    fclose(s->f);
    s->f = NULL;
    s->done_file_base += s->off;
    s->off = 0;
    report(s);
}

/* Hands out s->doc (or the repaired copy) as document; 0 when empty (skipped). */
static lma_status emit(lma_text_source *s, const char *text, size_t len, uint64_t off, uint64_t line,
                       lma_text_doc *doc, int *got) {
    *got = 0;
    if (len == 0) { s->skipped++; return LMA_OK; }
    LMA_TRY(check_utf8(s, &text, &len, off, line));
    doc->text = text; doc->len = len;
    doc->path = s->files[s->cur];
    doc->line = line;
    doc->index = s->index++;
    *got = 1;
    return LMA_OK;
}

static lma_status next_plain_whole(lma_text_source *s, lma_text_doc *doc, int *got) {
    s->dlen = 0;
    char buf[65536];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, s->f)) > 0) {
        LMA_TRY(doc_append(s, buf, r));
        s->off += r;
        report(s);
    }
    if (ferror(s->f)) return lma_error(LMA_ERR_IO, "%s: read error", s->files[s->cur]);
    size_t skip = s->dlen >= 3 && memcmp(s->doc, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    s->line = 1;
    close_file(s);
    return emit(s, s->doc ? s->doc + skip : "", s->dlen - skip, skip, 1, doc, got);
}

static lma_status next_paragraph(lma_text_source *s, lma_text_doc *doc, int *got) {
    s->dlen = 0;
    *got = 0;
    for (;;) {
        size_t skip, r = read_line(s, &skip);
        if (r == SIZE_MAX) return LMA_ERR_IO;
        if (r == 0) break;
        uint64_t line_off = s->off + skip;
        s->off += r;
        if (blank(s->lb + skip, r - skip)) {
            if (s->dlen) break;
            continue;
        }
        if (s->dlen == 0) { s->para_line = s->line; s->para_off = line_off; }
        LMA_TRY(doc_append(s, s->lb + skip, r - skip));
    }
    report(s);
    if (s->dlen == 0) { close_file(s); return LMA_OK; }
    size_t len = s->dlen;
    if (len && s->doc[len - 1] == '\n') len--;
    if (len && s->doc[len - 1] == '\r') len--;
    s->doc[len] = 0; /* the document is NUL-terminated at its length */
    return emit(s, s->doc, len, s->para_off, s->para_line, doc, got);
}

static lma_status next_jsonl(lma_text_source *s, lma_text_doc *doc, int *got) {
    *got = 0;
    const char *path = s->files[s->cur];
    for (;;) {
        size_t skip, r = read_line(s, &skip);
        if (r == SIZE_MAX) return LMA_ERR_IO;
        if (r == 0) { close_file(s); return LMA_OK; }
        uint64_t line_off = s->off + skip;
        s->off += r;
        const char *t = s->lb + skip;
        size_t n = r - skip;
        if (blank(t, n)) continue;
        LMA_TRY(check_utf8(s, &t, &n, line_off, s->line));
        cJSON_Delete(s->json);
        const char *end = NULL;
        s->json = cJSON_ParseWithLengthOpts(t, n, &end, 0);
        if (!s->json) {
            size_t at = end && end >= t && end <= t + n ? (size_t)(end - t) : 0;
            return lma_error(LMA_ERR_FORMAT, "%s:%" PRIu64 ": malformed JSON near column %zu", path, s->line, at + 1);
        }
        if (!cJSON_IsObject(s->json))
            return lma_error(LMA_ERR_FORMAT, "%s:%" PRIu64 ": a JSONL line must be an object with a \"%s\" field",
                             path, s->line, s->p.field);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->json, s->p.field);
        if (!v) return lma_error(LMA_ERR_FORMAT, "%s:%" PRIu64 ": no \"%s\" field", path, s->line, s->p.field);
        if (!cJSON_IsString(v) || !v->valuestring)
            return lma_error(LMA_ERR_FORMAT, "%s:%" PRIu64 ": field \"%s\" is not a string", path, s->line, s->p.field);
        size_t len = strlen(v->valuestring);
        if (utf8_first_bad((const unsigned char *)v->valuestring, len) != len)
            return lma_error(LMA_ERR_FORMAT, "%s:%" PRIu64 ": field \"%s\" decodes to invalid UTF-8 (bad \\u escape)",
                             path, s->line, s->p.field);
        report(s);
        if (len == 0) { s->skipped++; continue; }
        doc->text = v->valuestring; doc->len = len;
        doc->path = path; doc->line = s->line; doc->index = s->index++;
        *got = 1;
        return LMA_OK;
    }
}

static int is_jsonl(const lma_text_source *s, const char *path) {
    if (s->p.format == LMA_TEXT_JSONL) return 1;
    if (s->p.format == LMA_TEXT_PLAIN) return 0;
    size_t n = strlen(path);
    return n >= 6 && strcmp(path + n - 6, ".jsonl") == 0;
}

lma_status lma_text_source_next(lma_text_source *s, lma_text_doc *doc, int *done) {
    *done = 0;
    if (!s) return lma_error(LMA_ERR_ARG, "text source: NULL source");
    if (s->failed) return lma_error(LMA_ERR_ARG, "text source: used after an error");
    for (;;) {
        if (!s->f) {
            if (s->next_file == s->nfiles) {
                if (!s->finished && s->p.progress) lma_progress_finish(&s->bar);
                s->finished = 1;
                *done = 1;
                return LMA_OK;
            }
            s->cur = s->next_file++;
            if (lma_fopen_input(s->files[s->cur], &s->f) != LMA_OK) {
                s->failed = 1;
                return LMA_ERR_IO;
            }
            s->jsonl = is_jsonl(s, s->files[s->cur]);
            s->line = 0; s->off = 0;
        }
        int got = 0;
        lma_status st = s->jsonl ? next_jsonl(s, doc, &got)
                      : s->p.split_blank_lines ? next_paragraph(s, doc, &got) : next_plain_whole(s, doc, &got);
        if (st != LMA_OK) { s->failed = 1; return st; }
        if (got) return LMA_OK;
    }
}

lma_status lma_text_to_shard(const char *const *paths, size_t n, const lma_text_source_params *p,
                             lma_text_encode_fn encode, void *ctx, const char *out_path, int width,
                             int32_t eos_id, lma_text_shard_stats *stats) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (!encode || !out_path) return lma_error(LMA_ERR_ARG, "text to shard: NULL encoder or output path");
    lma_text_source *ts = NULL;
    LMA_TRY(lma_text_source_open(paths, n, p, &ts));
    lma_shard_writer *w = NULL;
    lma_status st = lma_shard_writer_open(out_path, width, eos_id, &w);
    while (st == LMA_OK) {
        lma_text_doc d;
        int done = 0;
        if ((st = lma_text_source_next(ts, &d, &done)) != LMA_OK || done) break;
        int32_t *ids = NULL;
        size_t nid = 0;
        st = encode(ctx, d.text, d.len, &ids, &nid);
        if (st != LMA_OK) {
            free(ids);
            lma_error(st, "%s:%" PRIu64 ": could not encode the document", d.path, d.line);
            break;
        }
        for (size_t i = 0; i < nid; i++)
            if (ids[i] == eos_id) {
                st = lma_error(LMA_ERR_ARG, "%s:%" PRIu64 ": the encoded document contains the EOS id %d at token %zu"
                               " (encode without special tokens)", d.path, d.line, (int)eos_id, i);
                break;
            }
        if (st == LMA_OK) {
            st = lma_shard_writer_add(w, ids, nid);
            if (st != LMA_OK) w = NULL; /* a failed add frees the writer */
        }
        free(ids);
    }
    if (st == LMA_OK) {
        if (stats) {
            stats->docs = lma_shard_writer_docs(w);
            stats->tokens = lma_shard_writer_tokens(w);
            stats->bytes = lma_text_source_bytes_done(ts);
            stats->skipped = lma_text_source_skipped(ts);
            stats->replaced = lma_text_source_replaced(ts);
        }
        st = lma_shard_writer_commit(w);
    } else {
        lma_shard_writer_abort(w);
    }
    lma_text_source_close(ts);
    return st;
}
