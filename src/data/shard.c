/* Token shard writer, reader and shard set. Layout and rules: shard.h. */
#include "data/shard.h"
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/io.h"

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

int lma_shard_width_for_vocab(size_t vocab) { return vocab <= 65536 ? 2 : 4; }

/* ------------------------------------------------------------------ writer */
#define WBUF 65536

struct lma_shard_writer {
    lma_atomic_file af;
    int width;
    uint32_t eos;
    uint64_t ntok, ndocs;
    size_t used;
    unsigned char buf[WBUF];
};

static void make_header(unsigned char h[LMA_SHARD_HEADER_BYTES], uint32_t width, uint64_t ntok,
                        uint64_t ndocs, uint32_t eos) {
    memcpy(h, LMA_SHARD_MAGIC, 8);
    put_u32(h + 8, LMA_SHARD_VERSION);
    put_u32(h + 12, width);
    put_u64(h + 16, ntok);
    put_u64(h + 24, ndocs);
    put_u32(h + 32, eos);
    put_u32(h + 36, 0);
}

lma_status lma_shard_writer_open(const char *path, int width, int32_t eos_id, lma_shard_writer **out) {
    *out = NULL;
    if (width != 2 && width != 4)
        return lma_error(LMA_ERR_ARG, "%s: token width %d (must be 2 or 4)", path, width);
    if (eos_id < 0 || (width == 2 && eos_id > 65535))
        return lma_error(LMA_ERR_ARG, "%s: EOS id %d does not fit a %d-byte token", path, (int)eos_id, width);
    lma_shard_writer *w = lma_malloc(sizeof *w, "shard writer");
    if (!w) return LMA_ERR_NOMEM;
    memset(w, 0, offsetof(lma_shard_writer, buf));
    w->width = width;
    w->eos = (uint32_t)eos_id;
    lma_status st = lma_atomic_open(&w->af, path);
    if (st != LMA_OK) { free(w); return st; }
    unsigned char h[LMA_SHARD_HEADER_BYTES];
    make_header(h, (uint32_t)width, 0, 0, w->eos); /* counts patched at commit */
    st = lma_atomic_write(&w->af, h, sizeof h);
    if (st != LMA_OK) { free(w); return st; } /* lma_atomic_write aborted the file */
    *out = w;
    return LMA_OK;
}

static lma_status wflush(lma_shard_writer *w) {
    lma_status st = lma_atomic_write(&w->af, w->buf, w->used);
    w->used = 0;
    return st;
}

static lma_status wtoken(lma_shard_writer *w, uint32_t v) {
    if (w->used + 4 > WBUF) LMA_TRY(wflush(w));
    unsigned char *p = w->buf + w->used;
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    if (w->width == 4) { p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24); }
    w->used += (size_t)w->width;
    return LMA_OK;
}

lma_status lma_shard_writer_add(lma_shard_writer *w, const int32_t *ids, size_t n) {
    if (!w) return lma_error(LMA_ERR_ARG, "shard writer: NULL writer");
    if (n && !ids) { lma_status s = lma_error(LMA_ERR_ARG, "%s: NULL ids", w->af.path); lma_shard_writer_abort(w); return s; }
    int32_t lim = w->width == 2 ? 65535 : INT32_MAX;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] > lim || (uint32_t)ids[i] == w->eos) {
            lma_status s = lma_error(LMA_ERR_ARG,
                "%s: document %llu token %zu: id %d %s", w->af.path, (unsigned long long)w->ndocs, i, (int)ids[i],
                ids[i] < 0 ? "is negative"
                : (uint32_t)ids[i] == w->eos ? "is the EOS id (documents must not contain EOS)"
                                             : "out of range for 2-byte tokens [0, 65535]");
            lma_shard_writer_abort(w);
            return s;
        }
    }
    for (size_t i = 0; i < n; i++) {
        lma_status s = wtoken(w, (uint32_t)ids[i]);
        if (s != LMA_OK) { free(w); return s; } /* the atomic file is already removed */
    }
    lma_status s = wtoken(w, w->eos);
    if (s != LMA_OK) { free(w); return s; }
    w->ntok += n + 1;
    w->ndocs++;
    return LMA_OK;
}

uint64_t lma_shard_writer_tokens(const lma_shard_writer *w) { return w ? w->ntok : 0; }
uint64_t lma_shard_writer_docs(const lma_shard_writer *w) { return w ? w->ndocs : 0; }

lma_status lma_shard_writer_commit(lma_shard_writer *w) {
    if (!w) return lma_error(LMA_ERR_ARG, "shard writer: NULL writer");
    lma_status st = wflush(w);
    if (st != LMA_OK) { free(w); return st; }
    unsigned char h[LMA_SHARD_HEADER_BYTES];
    make_header(h, (uint32_t)w->width, w->ntok, w->ndocs, w->eos);
    if (fflush(w->af.f) != 0 || fseek(w->af.f, 0, SEEK_SET) != 0) {
        st = lma_error(LMA_ERR_IO, "%s: cannot rewind to patch the header", w->af.path);
        lma_shard_writer_abort(w);
        return st;
    }
    st = lma_atomic_write(&w->af, h, sizeof h);
    if (st == LMA_OK) st = lma_atomic_commit(&w->af);
    free(w);
    return st;
}

void lma_shard_writer_abort(lma_shard_writer *w) {
    if (!w) return;
    lma_atomic_abort(&w->af);
    free(w);
}

/* ------------------------------------------------------------------ reader */
struct lma_shard {
    lma_map map;    /* owned mapping (empty for open_mem) */
    const unsigned char *tok; /* token bytes, N*width */
    int width;
    uint64_t ntok, ndocs;
    int32_t eos, max_id;
    uint64_t *doc_start; /* (ndocs+1): token index of each document; last = ntok */
};

static lma_status shard_parse(lma_shard *s, const unsigned char *d, size_t len, const char *name) {
    if (len < LMA_SHARD_HEADER_BYTES)
        return lma_error(LMA_ERR_FORMAT, "%s: truncated header: %zu bytes, a shard header has %u",
                         name, len, LMA_SHARD_HEADER_BYTES);
    if (memcmp(d, LMA_SHARD_MAGIC, 8) != 0)
        return lma_error(LMA_ERR_FORMAT, "%s: bad magic (not an lmadapt token shard; expected \"%s\")",
                         name, LMA_SHARD_MAGIC);
    uint32_t version = get_u32(d + 8), width = get_u32(d + 12), eos = get_u32(d + 32), rsv = get_u32(d + 36);
    uint64_t ntok = get_u64(d + 16), ndocs = get_u64(d + 24);
    if (version != LMA_SHARD_VERSION)
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: unsupported shard version %u (this build reads version %u)",
                         name, version, LMA_SHARD_VERSION);
    if (width != 2 && width != 4)
        return lma_error(LMA_ERR_FORMAT, "%s: bad token width %u in header (must be 2 or 4)", name, width);
    if (rsv != 0)
        return lma_error(LMA_ERR_FORMAT, "%s: reserved header field at byte 36 is %u (must be 0)", name, rsv);
    if (eos > (width == 2 ? 65535u : (uint32_t)INT32_MAX))
        return lma_error(LMA_ERR_FORMAT, "%s: EOS id %u does not fit a %u-byte token", name, eos, width);
    size_t body, need;
    if (ntok > SIZE_MAX || !lma_mul_ok((size_t)ntok, width, &body) ||
        !lma_add_ok(body, LMA_SHARD_HEADER_BYTES, &need))
        return lma_error(LMA_ERR_FORMAT, "%s: token count %llu in header overflows the file size",
                         name, (unsigned long long)ntok);
    if (len < need)
        return lma_error(LMA_ERR_FORMAT, "%s: truncated: header says %llu tokens (%zu bytes), file has %zu bytes",
                         name, (unsigned long long)ntok, need, len);
    if (len > need)
        return lma_error(LMA_ERR_FORMAT,
                         "%s: token count mismatch: header says %llu tokens (%zu bytes), file has %zu bytes",
                         name, (unsigned long long)ntok, need, len);
    if (ndocs > ntok)
        return lma_error(LMA_ERR_FORMAT, "%s: document count mismatch: header says %llu documents but only %llu tokens",
                         name, (unsigned long long)ndocs, (unsigned long long)ntok);
    s->tok = d + LMA_SHARD_HEADER_BYTES;
    s->width = (int)width;
    s->ntok = ntok;
    s->ndocs = ndocs;
    s->eos = (int32_t)eos;
    s->max_id = -1;
    s->doc_start = lma_calloc((size_t)ndocs + 1, sizeof *s->doc_start, "shard document index");
    if (!s->doc_start) return LMA_ERR_NOMEM;
    uint64_t k = 0, start = 0;
    uint32_t maxv = 0;
    for (uint64_t i = 0; i < ntok; i++) {
        uint32_t v;
        if (width == 2) v = (uint32_t)s->tok[2 * i] | (uint32_t)s->tok[2 * i + 1] << 8;
        else v = get_u32(s->tok + 4 * i);
        if (v > (uint32_t)INT32_MAX)
            return lma_error(LMA_ERR_FORMAT, "%s: token %llu: id %u out of range (ids must be < 2^31)",
                             name, (unsigned long long)i, v);
        if (v > maxv) maxv = v;
        if (v == eos) {
            if (k == ndocs)
                return lma_error(LMA_ERR_FORMAT,
                                 "%s: document count mismatch: header says %llu documents, more EOS tokens found",
                                 name, (unsigned long long)ndocs);
            s->doc_start[k++] = start;
            start = i + 1;
        }
    }
    if (k != ndocs)
        return lma_error(LMA_ERR_FORMAT, "%s: document count mismatch: header says %llu documents, found %llu EOS tokens",
                         name, (unsigned long long)ndocs, (unsigned long long)k);
    if (start != ntok) /* tokens after the last EOS */
        return lma_error(LMA_ERR_FORMAT, "%s: last token is not EOS (%llu tokens after the last document)",
                         name, (unsigned long long)(ntok - start));
    /* doc_start[d] holds where document d starts; shift to (ndocs+1) form */
    s->doc_start[ndocs] = ntok;
    if (ntok) s->max_id = (int32_t)maxv;
    return LMA_OK;
}

lma_status lma_shard_open_mem(const void *data, size_t len, const char *name, lma_shard **out) {
    *out = NULL;
    lma_shard *s = lma_calloc(1, sizeof *s, "shard");
    if (!s) return LMA_ERR_NOMEM;
    lma_status st = shard_parse(s, data, len, name ? name : "<memory>");
    if (st != LMA_OK) { lma_shard_close(s); return st; }
    *out = s;
    return LMA_OK;
}

lma_status lma_shard_open(const char *path, lma_shard **out) {
    *out = NULL;
    lma_shard *s = lma_calloc(1, sizeof *s, "shard");
    if (!s) return LMA_ERR_NOMEM;
    lma_status st = lma_map_file(path, &s->map);
    if (st == LMA_OK) st = shard_parse(s, s->map.data, s->map.len, path);
    if (st != LMA_OK) { lma_shard_close(s); return st; }
    *out = s;
    return LMA_OK;
}

void lma_shard_close(lma_shard *s) {
    if (!s) return;
    lma_unmap_file(&s->map);
    free(s->doc_start);
    free(s);
}

uint64_t lma_shard_ntokens(const lma_shard *s) { return s->ntok; }
uint64_t lma_shard_ndocs(const lma_shard *s) { return s->ndocs; }
int lma_shard_width(const lma_shard *s) { return s->width; }
int32_t lma_shard_eos(const lma_shard *s) { return s->eos; }
int32_t lma_shard_max_id(const lma_shard *s) { return s->max_id; }

int32_t lma_shard_token(const lma_shard *s, uint64_t i) {
    if (s->width == 2) return (int32_t)((uint32_t)s->tok[2 * i] | (uint32_t)s->tok[2 * i + 1] << 8);
    return (int32_t)get_u32(s->tok + 4 * i);
}

lma_status lma_shard_read(const lma_shard *s, uint64_t start, size_t n, int32_t *out) {
    if (start > s->ntok || n > s->ntok - start)
        return lma_error(LMA_ERR_ARG, "shard read of %zu tokens at %llu is outside the %llu tokens",
                         n, (unsigned long long)start, (unsigned long long)s->ntok);
    if (s->width == 2) {
        const unsigned char *p = s->tok + 2 * start;
        for (size_t i = 0; i < n; i++) out[i] = (int32_t)((uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8);
    } else {
        const unsigned char *p = s->tok + 4 * start;
        for (size_t i = 0; i < n; i++) out[i] = (int32_t)get_u32(p + 4 * i);
    }
    return LMA_OK;
}

lma_status lma_shard_doc(const lma_shard *s, uint64_t d, uint64_t *start, uint64_t *len) {
    if (d >= s->ndocs)
        return lma_error(LMA_ERR_ARG, "document %llu out of range (shard has %llu)",
                         (unsigned long long)d, (unsigned long long)s->ndocs);
    *start = s->doc_start[d];
    *len = s->doc_start[d + 1] - s->doc_start[d] - 1;
    return LMA_OK;
}

/* ------------------------------------------------------------------ shard set */
struct lma_shardset {
    size_t n;
    lma_shard **shards; /* (n) */
    uint64_t *cum;      /* (n+1): documents before shard i */
    uint64_t ntok;
    int32_t eos, max_id;
};

lma_status lma_shardset_open(const char *const *paths, size_t n, lma_shardset **out) {
    *out = NULL;
    if (n == 0 || !paths) return lma_error(LMA_ERR_ARG, "shard set: no shard files given");
    lma_shardset *s = lma_calloc(1, sizeof *s, "shard set");
    if (!s) return LMA_ERR_NOMEM;
    lma_status st = LMA_OK;
    s->shards = lma_calloc(n, sizeof *s->shards, "shard set");
    s->cum = lma_calloc(n + 1, sizeof *s->cum, "shard set");
    if (!s->shards || !s->cum) { st = LMA_ERR_NOMEM; goto fail; }
    s->max_id = -1;
    for (size_t i = 0; i < n; i++) {
        st = lma_shard_open(paths[i], &s->shards[i]);
        s->n = i + 1;
        if (st != LMA_OK) goto fail;
        const lma_shard *sh = s->shards[i];
        if (i > 0 && sh->eos != s->eos) {
            st = lma_error(LMA_ERR_FORMAT, "%s: EOS id %d differs from %s (EOS id %d); shards of one set must share it",
                           paths[i], (int)sh->eos, paths[0], (int)s->eos);
            goto fail;
        }
        s->eos = sh->eos;
        if (sh->max_id > s->max_id) s->max_id = sh->max_id;
        s->cum[i + 1] = s->cum[i] + sh->ndocs;
        s->ntok += sh->ntok;
    }
    *out = s;
    return LMA_OK;
fail:
    lma_shardset_close(s);
    return st;
}

void lma_shardset_close(lma_shardset *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) lma_shard_close(s->shards[i]);
    free(s->shards);
    free(s->cum);
    free(s);
}

size_t lma_shardset_nshards(const lma_shardset *s) { return s->n; }
uint64_t lma_shardset_ntokens(const lma_shardset *s) { return s->ntok; }
uint64_t lma_shardset_ndocs(const lma_shardset *s) { return s->cum[s->n]; }
int32_t lma_shardset_eos(const lma_shardset *s) { return s->eos; }
int32_t lma_shardset_max_id(const lma_shardset *s) { return s->max_id; }

/* Shard holding global document d (d < ndocs) and the local index. */
static const lma_shard *locate(const lma_shardset *s, uint64_t d, uint64_t *local) {
    size_t lo = 0, hi = s->n; /* find the last i with cum[i] <= d and d < cum[i+1] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->cum[mid] <= d) lo = mid; else hi = mid;
    }
    while (s->cum[lo + 1] <= d) lo++; /* skip empty shards */
    *local = d - s->cum[lo];
    return s->shards[lo];
}

lma_status lma_shardset_doc_len(const lma_shardset *s, uint64_t d, uint64_t *len) {
    if (d >= lma_shardset_ndocs(s))
        return lma_error(LMA_ERR_ARG, "document %llu out of range (shard set has %llu)",
                         (unsigned long long)d, (unsigned long long)lma_shardset_ndocs(s));
    uint64_t local = 0, start = 0;
    const lma_shard *sh = locate(s, d, &local);
    return lma_shard_doc(sh, local, &start, len);
}

lma_status lma_shardset_doc_read(const lma_shardset *s, uint64_t d, uint64_t off, size_t n, int32_t *out) {
    if (d >= lma_shardset_ndocs(s))
        return lma_error(LMA_ERR_ARG, "document %llu out of range (shard set has %llu)",
                         (unsigned long long)d, (unsigned long long)lma_shardset_ndocs(s));
    uint64_t local = 0, start = 0, len = 0;
    const lma_shard *sh = locate(s, d, &local);
    LMA_TRY(lma_shard_doc(sh, local, &start, &len));
    if (off > len || n > len - off)
        return lma_error(LMA_ERR_ARG, "read of %zu tokens at %llu is outside document %llu (%llu tokens)",
                         n, (unsigned long long)off, (unsigned long long)d, (unsigned long long)len);
    return lma_shard_read(sh, start + off, n, out);
}
