/* Token shards: round trip (width 2 and 4), byte layout, atomic writer, every
 * corruption with its own error, shard sets. Text sources: tinyshakespeare as one
 * document and as paragraphs (then byte-tokenized into a shard and read back),
 * JSONL made here (escapes, errors with file and line), directories, UTF-8. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/io.h"
#include "core/rng.h"
#include "data/shard.h"
#include "data/text_source.h"
#include "lmadapt.h"
#include "test.h"

static char dir[256];

static void path_in(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static uint32_t rd32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* Random documents: ndocs docs, ids in [0, maxid] except eos; doc 0 is empty. */
typedef struct { int32_t *ids; size_t *len, *start; size_t ndocs, total; } docs_t;

static docs_t make_docs(uint64_t seed, size_t ndocs, int32_t maxid, int32_t eos) {
    lma_rng r; lma_rng_seed(&r, seed);
    docs_t d = { 0 };
    d.ndocs = ndocs;
    d.len = calloc(ndocs, sizeof *d.len); d.start = calloc(ndocs, sizeof *d.start);
    for (size_t i = 0; i < ndocs; i++) { d.len[i] = i == 0 ? 0 : 1 + lma_rng_below(&r, 300); d.start[i] = d.total; d.total += d.len[i]; }
    d.ids = malloc((d.total + 1) * sizeof *d.ids);
    for (size_t i = 0; i < d.total; i++) {
        int32_t v;
        do v = (int32_t)lma_rng_below(&r, (uint64_t)maxid + 1); while (v == eos);
        d.ids[i] = v;
    }
    if (d.total) d.ids[d.total - 1] = maxid; /* the max id is present */
    return d;
}
static void free_docs(docs_t *d) { free(d->ids); free(d->len); free(d->start); }

static int write_docs(const char *path, int width, int32_t eos, const docs_t *d) {
    lma_shard_writer *w;
    if (lma_shard_writer_open(path, width, eos, &w) != LMA_OK) return 0;
    for (size_t i = 0; i < d->ndocs; i++)
        if (lma_shard_writer_add(w, d->ids + d->start[i], d->len[i]) != LMA_OK) return 0;
    return lma_shard_writer_commit(w) == LMA_OK;
}

static void test_round_trip(int width) {
    char path[512]; path_in(path, sizeof path, width == 2 ? "w2.bin" : "w4.bin");
    int32_t maxid = width == 2 ? 65535 : INT32_MAX, eos = width == 2 ? 50256 : 128001;
    docs_t d = make_docs(7 + width, 40, maxid, eos);
    CHECK(write_docs(path, width, eos, &d), "write width %d: %s", width, lma_last_error());
    lma_clear_error();
    /* byte layout, read independently of the reader */
    char *raw; size_t rawlen;
    CHECK_OK(lma_read_file(path, &raw, &rawlen));
    uint64_t N = d.total + d.ndocs;
    const unsigned char *u = (const unsigned char *)raw;
    CHECK(rawlen == 40 + N * width, "file size %zu, expected %llu", rawlen, (unsigned long long)(40 + N * width));
    CHECK(memcmp(u, "LMASHARD", 8) == 0, "magic");
    CHECK(rd32(u + 8) == 1 && rd32(u + 12) == (uint32_t)width, "version/width %u %u", rd32(u + 8), rd32(u + 12));
    CHECK(rd64(u + 16) == N && rd64(u + 24) == d.ndocs, "counts %llu %llu", (unsigned long long)rd64(u + 16),
          (unsigned long long)rd64(u + 24));
    CHECK(rd32(u + 32) == (uint32_t)eos && rd32(u + 36) == 0, "eos/reserved");
    /* doc 0 is empty: the first token is EOS, then doc 1's first id, little-endian */
    uint32_t t0 = width == 2 ? (uint32_t)(u[40] | u[41] << 8) : rd32(u + 40);
    uint32_t t1 = width == 2 ? (uint32_t)(u[42] | u[43] << 8) : rd32(u + 44);
    CHECK(t0 == (uint32_t)eos && t1 == (uint32_t)d.ids[0], "first tokens %u %u", t0, t1);
    free(raw);

    lma_shard *s = NULL;
    CHECK_OK(lma_shard_open(path, &s));
    if (!s) { free_docs(&d); return; }
    CHECK(lma_shard_ntokens(s) == N && lma_shard_ndocs(s) == d.ndocs, "reader counts");
    CHECK(lma_shard_width(s) == width && lma_shard_eos(s) == eos, "reader width/eos");
    CHECK(lma_shard_max_id(s) == (maxid > eos ? maxid : eos), "max id %d", lma_shard_max_id(s));
    int ok = 1;
    int32_t *buf = malloc(400 * sizeof *buf);
    for (size_t i = 0; i < d.ndocs; i++) {
        uint64_t st, len;
        CHECK_OK(lma_shard_doc(s, i, &st, &len));
        if (len != d.len[i]) { ok = 0; break; }
        CHECK_OK(lma_shard_read(s, st, len + 1, buf));
        for (size_t k = 0; k < len; k++) ok &= buf[k] == d.ids[d.start[i] + k] && lma_shard_token(s, st + k) == buf[k];
        ok &= buf[len] == eos;
    }
    CHECK(ok, "width %d: documents read back differ", width);
    uint64_t st, len;
    CHECK(lma_shard_doc(s, d.ndocs, &st, &len) == LMA_ERR_ARG, "doc out of range");
    lma_clear_error();
    CHECK(lma_shard_read(s, N - 1, 2, buf) == LMA_ERR_ARG, "read past end");
    lma_clear_error();
    free(buf);
    lma_shard_close(s);
    free_docs(&d);
}

static void test_writer_errors(void) {
    char path[512]; path_in(path, sizeof path, "keep.bin");
    int32_t doc[3] = { 5, 6, 7 };
    lma_shard_writer *w;
    CHECK_OK(lma_shard_writer_open(path, 2, 0, &w));
    CHECK_OK(lma_shard_writer_add(w, doc, 3));
    CHECK(lma_shard_writer_tokens(w) == 4 && lma_shard_writer_docs(w) == 1, "writer counts");
    CHECK_OK(lma_shard_writer_commit(w));
    struct stat before; stat(path, &before);

    CHECK(lma_shard_writer_open(path, 3, 0, &w) == LMA_ERR_ARG && !w, "width 3 refused");
    lma_clear_error();
    CHECK(lma_shard_writer_open(path, 2, 70000, &w) == LMA_ERR_ARG, "eos beyond width refused");
    lma_clear_error();
    /* each bad add fails, removes the temp file and leaves the old shard in place */
    int32_t bad[4][2] = { { 1, 0 } /* EOS inside */, { 1, 65536 }, { 1, -3 }, { 2, 2 } };
    const char *why[3] = { "EOS", "out of range", "negative" };
    for (int k = 0; k < 3; k++) {
        CHECK_OK(lma_shard_writer_open(path, 2, 0, &w));
        CHECK_OK(lma_shard_writer_add(w, bad[3], 2));
        lma_status s = lma_shard_writer_add(w, bad[k], 2);
        CHECK(s == LMA_ERR_ARG && strstr(lma_last_error(), why[k]), "bad add %d: %s", k, lma_last_error());
        lma_clear_error();
    }
    /* abort */
    CHECK_OK(lma_shard_writer_open(path, 4, 0, &w));
    CHECK_OK(lma_shard_writer_add(w, doc, 3));
    lma_shard_writer_abort(w);
    struct stat after; stat(path, &after);
    CHECK(after.st_size == before.st_size && after.st_size == 40 + 4 * 2, "old shard untouched (%lld bytes)",
          (long long)after.st_size);
    lma_shard *s;
    CHECK_OK(lma_shard_open(path, &s));
    if (s) { CHECK(lma_shard_width(s) == 2 && lma_shard_token(s, 2) == 7, "old content"); lma_shard_close(s); }
    /* no temporary files left behind */
    char cmd[600]; snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", dir);
    FILE *p = popen(cmd, "r"); int n = -1;
    if (p) { if (fscanf(p, "%d", &n) != 1) n = -1; pclose(p); }
    CHECK(n == 0, "%d temporary files left", n);
}

/* A valid width-2 shard as bytes: docs {1,2,3} {4} {} with EOS 9. */
static size_t valid_bytes(unsigned char *b) {
    uint16_t toks[] = { 1, 2, 3, 9, 4, 9, 9 };
    memcpy(b, "LMASHARD", 8);
    uint32_t v[2] = { 1, 2 };
    for (int i = 0; i < 2; i++) for (int k = 0; k < 4; k++) b[8 + 4 * i + k] = (unsigned char)(v[i] >> (8 * k));
    memset(b + 16, 0, 24);
    b[16] = 7; b[24] = 3; b[32] = 9;
    for (int i = 0; i < 7; i++) { b[40 + 2 * i] = (unsigned char)toks[i]; b[41 + 2 * i] = (unsigned char)(toks[i] >> 8); }
    return 40 + 14;
}

static void test_corruptions(void) {
    unsigned char b[128];
    size_t n = valid_bytes(b);
    lma_shard *s = NULL;
    CHECK_OK(lma_shard_open_mem(b, n, "valid", &s));
    if (s) {
        uint64_t st, len;
        CHECK(lma_shard_ndocs(s) == 3 && lma_shard_doc(s, 2, &st, &len) == LMA_OK && st == 6 && len == 0, "valid parse");
        lma_shard_close(s);
    }
    struct { const char *name, *expect; lma_status code; } cases[] = {
        { "magic", "bad magic", LMA_ERR_FORMAT },
        { "version", "unsupported shard version 2", LMA_ERR_UNSUPPORTED },
        { "width", "bad token width 3", LMA_ERR_FORMAT },
        { "truncated", "truncated: header says 7 tokens", LMA_ERR_FORMAT },
        { "header", "truncated header", LMA_ERR_FORMAT },
        { "count", "token count mismatch", LMA_ERR_FORMAT },
        { "overflow", "overflows", LMA_ERR_FORMAT },
        { "docs", "document count mismatch: header says 2 documents, more EOS", LMA_ERR_FORMAT },
        { "docs_few", "document count mismatch: header says 3 documents, found 2", LMA_ERR_FORMAT },
        { "tail", "last token is not EOS", LMA_ERR_FORMAT },
        { "reserved", "reserved header field", LMA_ERR_FORMAT },
    };
    char msgs[11][1024];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        unsigned char m[128]; size_t len = valid_bytes(m);
        const char *nm = cases[c].name;
        if (!strcmp(nm, "magic")) m[3] = 'X';
        else if (!strcmp(nm, "version")) m[8] = 2;
        else if (!strcmp(nm, "width")) m[12] = 3;
        else if (!strcmp(nm, "truncated")) len -= 1;
        else if (!strcmp(nm, "header")) len = 20;
        else if (!strcmp(nm, "count")) m[16] = 6;
        else if (!strcmp(nm, "overflow")) memset(m + 16, 0xff, 8);
        else if (!strcmp(nm, "docs")) m[24] = 2;
        else if (!strcmp(nm, "docs_few")) { m[24] = 3; m[46] = 5; } /* the 1st EOS becomes an id */
        else if (!strcmp(nm, "tail")) { m[24] = 2; m[52] = 5; }     /* the last EOS becomes an id */
        else if (!strcmp(nm, "reserved")) m[36] = 1;
        /* through a real file, as a user would hit it */
        char path[512]; path_in(path, sizeof path, "bad.bin");
        CHECK_OK(lma_write_file_atomic(path, m, len));
        lma_status st = lma_shard_open(path, &s);
        snprintf(msgs[c], sizeof msgs[c], "%s", lma_last_error());
        CHECK(st == cases[c].code && !s, "%s: status %s", nm, lma_status_name(st));
        CHECK(strstr(msgs[c], cases[c].expect) && strstr(msgs[c], path) && !strchr(msgs[c], '\n'),
              "%s: message '%s' lacks '%s' or the path", nm, msgs[c], cases[c].expect);
        lma_clear_error();
    }
    for (size_t a = 0; a < 11; a++)
        for (size_t c = a + 1; c < 11; c++) CHECK(strcmp(msgs[a], msgs[c]) != 0, "cases %zu and %zu share a message", a, c);
    /* width-4 id beyond 2^31 */
    unsigned char w4[40 + 8];
    memcpy(w4, "LMASHARD", 8); memset(w4 + 8, 0, 40);
    w4[8] = 1; w4[12] = 4; w4[16] = 2; w4[24] = 1; w4[32] = 0;
    w4[40] = 0xff; w4[41] = 0xff; w4[42] = 0xff; w4[43] = 0xff; /* token 0 = 2^32-1, token 1 = EOS 0 */
    CHECK(lma_shard_open_mem(w4, sizeof w4, "w4", &s) == LMA_ERR_FORMAT && strstr(lma_last_error(), "out of range"),
          "id >= 2^31: %s", lma_last_error());
    lma_clear_error();
    char path[512]; path_in(path, sizeof path, "missing.bin");
    CHECK(lma_shard_open(path, &s) == LMA_ERR_IO, "missing file is an i/o error");
    lma_clear_error();
}

static void test_shardset(void) {
    char p[3][512];
    path_in(p[0], sizeof p[0], "set0.bin"); path_in(p[1], sizeof p[1], "set1.bin"); path_in(p[2], sizeof p[2], "set2.bin");
    docs_t d0 = make_docs(1, 5, 1000, 3), d2 = make_docs(2, 7, 1000, 3);
    docs_t empty = { 0 };
    CHECK(write_docs(p[0], 2, 3, &d0) && write_docs(p[1], 4, 3, &empty) && write_docs(p[2], 2, 3, &d2),
          "write set: %s", lma_last_error());
    const char *paths[3] = { p[0], p[1], p[2] };
    lma_shardset *s = NULL;
    CHECK_OK(lma_shardset_open(paths, 3, &s));
    if (!s) return;
    CHECK(lma_shardset_nshards(s) == 3 && lma_shardset_ndocs(s) == 12, "set docs %llu",
          (unsigned long long)lma_shardset_ndocs(s));
    CHECK(lma_shardset_ntokens(s) == d0.total + 5 + d2.total + 7, "set tokens");
    CHECK(lma_shardset_eos(s) == 3 && lma_shardset_max_id(s) == 1000, "set eos/max");
    int ok = 1;
    int32_t buf[400];
    for (uint64_t g = 0; g < 12; g++) {
        const docs_t *d = g < 5 ? &d0 : &d2;
        size_t i = g < 5 ? g : g - 5;
        uint64_t len;
        CHECK_OK(lma_shardset_doc_len(s, g, &len));
        ok &= len == d->len[i];
        if (len > 1) {
            CHECK_OK(lma_shardset_doc_read(s, g, 1, len - 1, buf));
            ok &= memcmp(buf, d->ids + d->start[i] + 1, (len - 1) * sizeof *buf) == 0;
        }
    }
    CHECK(ok, "shard set documents differ from what was written");
    uint64_t len;
    CHECK(lma_shardset_doc_len(s, 12, &len) == LMA_ERR_ARG, "set doc out of range");
    lma_clear_error();
    CHECK(lma_shardset_doc_read(s, 1, 0, d0.len[1] + 1, buf) == LMA_ERR_ARG, "read past document end");
    lma_clear_error();
    lma_shardset_close(s);
    /* EOS must agree */
    path_in(p[1], sizeof p[1], "set_eos.bin");
    CHECK(write_docs(p[1], 2, 1001, &d0), "write eos1001");
    CHECK(lma_shardset_open(paths, 3, &s) == LMA_ERR_FORMAT && strstr(lma_last_error(), "EOS id 1001 differs"),
          "EOS mismatch: %s", lma_last_error());
    lma_clear_error();
    free_docs(&d0); free_docs(&d2);
}

static void put(const char *name, const char *content) {
    char path[512]; path_in(path, sizeof path, name);
    CHECK_OK(lma_write_file_atomic(path, content, strlen(content)));
}

typedef struct { uint64_t last, total; int calls, monotonic; } prog_t;
static void on_prog(void *ctx, uint64_t done, uint64_t total) {
    prog_t *p = ctx;
    if (done < p->last) p->monotonic = 0;
    p->last = done; p->total = total; p->calls++;
}

static void test_text_shakespeare(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/tinyshakespeare.txt", LMA_SRC_DIR);
    char *raw; size_t rawlen;
    CHECK_OK(lma_read_file(path, &raw, &rawlen));
    if (!raw) return;
    const char *paths[1] = { path };
    /* default: the whole file is one document, byte for byte */
    lma_text_source *ts = NULL;
    prog_t pr = { 0, 0, 0, 1 };
    lma_text_source_params p = lma_text_source_default_params();
    p.on_progress = on_prog; p.progress_ctx = &pr;
    CHECK_OK(lma_text_source_open(paths, 1, &p, &ts));
    if (!ts) { free(raw); return; }
    lma_text_doc d; int done = 0, ndoc = 0;
    CHECK_OK(lma_text_source_next(ts, &d, &done));
    CHECK(!done && d.len == rawlen && memcmp(d.text, raw, rawlen) == 0 && d.line == 1 && d.index == 0,
          "whole-file document differs (%zu bytes)", d.len);
    CHECK_OK(lma_text_source_next(ts, &d, &done));
    CHECK(done, "one document only");
    CHECK(pr.calls > 0 && pr.monotonic && pr.last == rawlen && pr.total == rawlen &&
          lma_text_source_bytes_done(ts) == rawlen, "progress %llu/%llu over %d calls", (unsigned long long)pr.last,
          (unsigned long long)pr.total, pr.calls);
    lma_text_source_close(ts);

    /* paragraphs: they appear in order, separated only by runs of >= 2 newlines,
     * hold no blank line, and together with the separators rebuild the file;
     * byte-tokenized (id = byte + 1, EOS 0) they survive a shard round trip */
    p.split_blank_lines = 1;
    CHECK_OK(lma_text_source_open(paths, 1, &p, &ts));
    if (!ts) { free(raw); return; }
    char shard[512]; path_in(shard, sizeof shard, "shakespeare.bin");
    lma_shard_writer *w = NULL;
    CHECK_OK(lma_shard_writer_open(shard, 2, 0, &w));
    int32_t *ids = malloc(rawlen * sizeof *ids);
    size_t pos = 0, *starts = malloc(rawlen / 2 * sizeof *starts), *lens = malloc(rawlen / 2 * sizeof *lens);
    int ok = 1, lines_ok = 1;
    uint64_t line = 1;
    for (;;) {
        CHECK_OK(lma_text_source_next(ts, &d, &done));
        if (done) break;
        size_t gap = 0;
        while (pos + gap < rawlen && raw[pos + gap] == '\n') gap++;
        if ((ndoc == 0 && gap != 0) || (ndoc > 0 && gap < 2)) ok = 0;
        for (size_t i = pos; i < pos + gap; i++) line += raw[i] == '\n';
        pos += gap;
        lines_ok &= d.line == line;
        if (pos + d.len > rawlen || memcmp(raw + pos, d.text, d.len) != 0 || strstr(d.text, "\n\n")) { ok = 0; break; }
        for (size_t i = 0; i < d.len; i++) { ids[i] = (unsigned char)d.text[i] + 1; line += d.text[i] == '\n'; }
        CHECK_OK(lma_shard_writer_add(w, ids, d.len));
        starts[ndoc] = pos; lens[ndoc] = d.len;
        pos += d.len;
        ndoc++;
    }
    CHECK(ok && pos + 1 == rawlen && raw[pos] == '\n', "paragraphs do not rebuild the file (at %zu of %zu)", pos, rawlen);
    CHECK(lines_ok, "paragraph start lines wrong");
    CHECK(ndoc == 3303 && lma_text_source_skipped(ts) == 0, "%d paragraphs", ndoc);
    CHECK_OK(lma_shard_writer_commit(w));
    lma_text_source_close(ts);
    lma_shard *sh = NULL;
    CHECK_OK(lma_shard_open(shard, &sh));
    if (sh) {
        int same = lma_shard_ndocs(sh) == (uint64_t)ndoc && lma_shard_max_id(sh) <= 256;
        for (int k = 0; same && k < ndoc; k++) {
            uint64_t st, len;
            same &= lma_shard_doc(sh, k, &st, &len) == LMA_OK && len == lens[k];
            for (uint64_t i = 0; same && i < len; i++) same &= lma_shard_token(sh, st + i) == (unsigned char)raw[starts[k] + i] + 1;
        }
        CHECK(same, "byte-tokenized Shakespeare shard does not read back");
        lma_shard_close(sh);
    }
    free(ids); free(starts); free(lens); free(raw);
}

static void expect_error(const char *name, lma_text_source_params *p, const char *want1, const char *want2) {
    char path[512]; path_in(path, sizeof path, name);
    const char *paths[1] = { path };
    lma_text_source *ts = NULL;
    CHECK_OK(lma_text_source_open(paths, 1, p, &ts));
    if (!ts) return;
    lma_text_doc d; int done = 0;
    lma_status st = LMA_OK;
    for (int i = 0; i < 100 && st == LMA_OK && !done; i++) st = lma_text_source_next(ts, &d, &done);
    const char *m = lma_last_error();
    CHECK(st == LMA_ERR_FORMAT && strstr(m, path) && strstr(m, want1) && (!want2 || strstr(m, want2)),
          "%s: status %s, message '%s' (want '%s')", name, lma_status_name(st), m, want1);
    lma_clear_error();
    lma_text_source_close(ts);
}

static int read_all(const char *const *paths, size_t n, lma_text_source_params *p, lma_text_doc *out, char **texts, int max) {
    lma_text_source *ts = NULL;
    if (lma_text_source_open(paths, n, p, &ts) != LMA_OK) return -1;
    int k = 0, done = 0;
    lma_text_doc d;
    while (k < max) {
        if (lma_text_source_next(ts, &d, &done) != LMA_OK) { k = -1; break; }
        if (done) break;
        out[k] = d;
        texts[k] = malloc(d.len + 1); memcpy(texts[k], d.text, d.len + 1);
        out[k].text = texts[k];
        out[k].path = NULL;
        k++;
    }
    lma_text_source_close(ts);
    return k;
}

static void test_text_jsonl_and_dirs(void) {
    const char *jl = "{\"text\": \"first\"}\n"
                     "\n"
                     "{\"id\": 2, \"text\": \"caf\\u00e9 \\ud83d\\ude00\\nline\"}\r\n"
                     "{\"text\": \"\"}\n"
                     "   \n"
                     "{\"text\": \"last\", \"meta\": {\"a\": [1, 2]}}";
    put("good.jsonl", jl);
    char path[512]; path_in(path, sizeof path, "good.jsonl");
    const char *paths[1] = { path };
    lma_text_source_params p = lma_text_source_default_params();
    lma_text_doc d[8]; char *t[8];
    int n = read_all(paths, 1, &p, d, t, 8);
    CHECK(n == 3, "JSONL documents %d: %s", n, lma_last_error());
    lma_clear_error();
    if (n == 3) {
        CHECK(!strcmp(t[0], "first") && d[0].line == 1 && d[0].index == 0, "jsonl doc 0");
        CHECK(!strcmp(t[1], "caf\xC3\xA9 \xF0\x9F\x98\x80\nline") && d[1].line == 3 && d[1].len == 15, "jsonl doc 1 '%s'", t[1]);
        CHECK(!strcmp(t[2], "last") && d[2].line == 6 && d[2].index == 2, "jsonl doc 2");
    }
    for (int i = 0; i < n; i++) free(t[i]);

    put("nofield.jsonl", "{\"text\":\"a\"}\n{\"text\":\"b\"}\n{\"txt\":\"c\"}\n");
    expect_error("nofield.jsonl", &p, ":3: no \"text\" field", NULL);
    put("badjson.jsonl", "{\"text\":\"a\"}\n{\"text\": \"b\",}\n");
    expect_error("badjson.jsonl", &p, ":2: malformed JSON", NULL);
    put("notstr.jsonl", "{\"text\": 5}\n");
    expect_error("notstr.jsonl", &p, ":1: field \"text\" is not a string", NULL);
    put("array.jsonl", "[\"text\"]\n");
    expect_error("array.jsonl", &p, ":1: a JSONL line must be an object", NULL);
    put("badutf.jsonl", "{\"text\":\"ok\"}\n{\"text\":\"b\xff\"}\n");
    expect_error("badutf.jsonl", &p, ":2: invalid UTF-8 at byte offset 24", "0xFF");
    put("lone.jsonl", "{\"text\":\"\\udc00\"}\n");
    expect_error("lone.jsonl", &p, ":1: malformed JSON", NULL); /* cJSON rejects lone surrogates */
    p.field = "body";
    put("field.jsonl", "{\"body\":\"x\"}\n");
    path_in(path, sizeof path, "field.jsonl");
    n = read_all(paths, 1, &p, d, t, 8);
    CHECK(n == 1 && !strcmp(t[0], "x"), "custom field");
    for (int i = 0; i < n; i++) free(t[i]);
    p = lma_text_source_default_params();

    /* plain text: invalid UTF-8 errors name the line and the byte offset in the file */
    put("bad.txt", "\xEF\xBB\xBFline one\n\nline \xE2\x82x three\n");
    expect_error("bad.txt", &p, ":3: invalid UTF-8 at byte offset 18", "0xE2");
    p.split_blank_lines = 1;
    expect_error("bad.txt", &p, ":3: invalid UTF-8 at byte offset 18", NULL);
    /* replacement: each maximal invalid subpart -> U+FFFD, as Python's
     * bytes.decode('utf-8', 'replace') gives for these inputs */
    p.replace_invalid_utf8 = 1;
    put("repl.txt", "a\xFF" "b \xE2\x82x \xED\xA0\x80 \xF0\x9F\x98 \xC0\xAF\n\nok\n");
    path_in(path, sizeof path, "repl.txt");
    n = read_all(paths, 1, &p, d, t, 8);
    const char *want = "a\xEF\xBF\xBD" "b \xEF\xBF\xBDx \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD";
    CHECK(n == 2 && !strcmp(t[0], want) && !strcmp(t[1], "ok"), "replacement: %d docs, gave %zu bytes, want %zu", n, n > 0 ? strlen(t[0]) : 0, strlen(want));
    for (int i = 0; i < n; i++) free(t[i]);
    path_in(path, sizeof path, "bad.txt");
    p.split_blank_lines = 0;
    n = read_all(paths, 1, &p, d, t, 8);
    CHECK(n == 1 && !strcmp(t[0], "line one\n\nline \xEF\xBF\xBDx three\n"), "BOM dropped, one replacement");
    for (int i = 0; i < n; i++) free(t[i]);
    p = lma_text_source_default_params();

    /* directories: recursive, sorted by path, regular files only, dot-files skipped */
    char sub[512], cmd[1400];
    path_in(sub, sizeof sub, "tree/sub");
    CHECK_OK(lma_mkdir_p(sub));
    put("tree/b.txt", "bee");
    put("tree/a.jsonl", "{\"text\":\"aa\"}\n{\"text\":\"ab\"}\n");
    put("tree/sub/c.txt", "sea\n\nsecond");
    put("tree/.hidden", "no");
    put("tree/empty.txt", "");
    snprintf(cmd, sizeof cmd, "ln -s %s/tree/b.txt %s/tree/sub/link.txt", dir, dir);
    CHECK(system(cmd) == 0, "symlink");
    char tree[512]; path_in(tree, sizeof tree, "tree");
    const char *tp[2] = { tree, tree };
    lma_text_source *ts = NULL;
    CHECK_OK(lma_text_source_open(tp, 1, &p, &ts));
    if (ts) {
        CHECK(lma_text_source_nfiles(ts) == 4 && strstr(lma_text_source_file(ts, 0), "tree/a.jsonl") &&
              strstr(lma_text_source_file(ts, 1), "tree/b.txt") && strstr(lma_text_source_file(ts, 2), "tree/empty.txt") &&
              strstr(lma_text_source_file(ts, 3), "tree/sub/c.txt"), "directory listing (%zu files)",
              lma_text_source_nfiles(ts));
        CHECK(lma_text_source_bytes_total(ts) == 28 + 3 + 0 + 11, "total bytes %llu",
              (unsigned long long)lma_text_source_bytes_total(ts));
        lma_text_source_close(ts);
    }
    n = read_all(tp, 2, &p, d, t, 8);
    CHECK(n == 8 && !strcmp(t[0], "aa") && !strcmp(t[1], "ab") && !strcmp(t[2], "bee") && !strcmp(t[3], "sea\n\nsecond") &&
          !strcmp(t[4], "aa") && d[7].index == 7, "directory documents (%d)", n);
    for (int i = 0; i < n; i++) free(t[i]);
    path_in(sub, sizeof sub, "emptydir");
    CHECK_OK(lma_mkdir_p(sub));
    const char *ep[1] = { sub };
    CHECK(lma_text_source_open(ep, 1, &p, &ts) == LMA_ERR_ARG && strstr(lma_last_error(), "no regular files"),
          "empty directory: %s", lma_last_error());
    lma_clear_error();
    path_in(sub, sizeof sub, "nope.txt");
    CHECK(lma_text_source_open(ep, 1, &p, &ts) == LMA_ERR_IO && strstr(lma_last_error(), "nope.txt"), "missing file");
    lma_clear_error();
}

/* byte-level encoder: id = byte + 1 (EOS is 0); ctx counts calls */
static lma_status enc_bytes(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n) {
    (*(int *)ctx)++;
    *ids = malloc((len + 1) * sizeof **ids);
    if (!*ids) return LMA_ERR_NOMEM;
    for (size_t i = 0; i < len; i++) (*ids)[i] = (unsigned char)text[i] + 1;
    *n = len;
    return LMA_OK;
}
/* adds an EOS like a post-processor would */
static lma_status enc_with_eos(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n) {
    lma_status st = enc_bytes(ctx, text, len, ids, n);
    if (st == LMA_OK) (*ids)[(*n)++] = 0;
    return st;
}

static void test_text_to_shard(void) {
    char path[512], out[512];
    snprintf(path, sizeof path, "%s/tests/data/tinyshakespeare.txt", LMA_SRC_DIR);
    path_in(out, sizeof out, "conv.bin");
    const char *paths[1] = { path };
    lma_text_source_params p = lma_text_source_default_params();
    p.split_blank_lines = 1;
    int calls = 0;
    lma_text_shard_stats st;
    CHECK_OK(lma_text_to_shard(paths, 1, &p, enc_bytes, &calls, out, 2, 0, &st));
    /* the shard's documents are the source's documents, byte for byte */
    lma_text_source *ts = NULL;
    lma_shard *sh = NULL;
    CHECK_OK(lma_text_source_open(paths, 1, &p, &ts));
    CHECK_OK(lma_shard_open(out, &sh));
    if (ts && sh) {
        uint64_t k = 0, bytes = 0;
        int same = 1, done = 0;
        lma_text_doc d;
        while (same && lma_text_source_next(ts, &d, &done) == LMA_OK && !done) {
            uint64_t s0, len;
            same &= lma_shard_doc(sh, k++, &s0, &len) == LMA_OK && len == d.len;
            for (uint64_t i = 0; same && i < len; i++) same &= lma_shard_token(sh, s0 + i) == (unsigned char)d.text[i] + 1;
            bytes += d.len;
        }
        CHECK(same && k == lma_shard_ndocs(sh) && st.docs == k && (uint64_t)calls == k, "converted shard differs");
        CHECK(st.tokens == bytes + k && st.tokens == lma_shard_ntokens(sh) && st.bytes == 524052, "stats %llu tokens",
              (unsigned long long)st.tokens);
    }
    lma_text_source_close(ts);
    lma_shard_close(sh);
    /* an encoder that appends EOS: error naming the file and line; no output */
    path_in(out, sizeof out, "conv_eos.bin");
    lma_status s = lma_text_to_shard(paths, 1, &p, enc_with_eos, &calls, out, 2, 0, NULL);
    CHECK(s == LMA_ERR_ARG && strstr(lma_last_error(), "tinyshakespeare.txt:1: the encoded document contains the EOS id"),
          "EOS from encoder: %s", lma_last_error());
    lma_clear_error();
    CHECK(!lma_file_exists(out), "failed conversion left %s", out);
    /* an EOS id beyond the 2-byte width: the writer's error, no output */
    s = lma_text_to_shard(paths, 1, &p, enc_bytes, &calls, out, 2, 70000, NULL);
    CHECK(s == LMA_ERR_ARG && strstr(lma_last_error(), "does not fit") && !lma_file_exists(out),
          "EOS 70000 at width 2 refused: %s", lma_last_error());
    lma_clear_error();
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/lma_test_shard_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_round_trip(2);
    test_round_trip(4);
    test_writer_errors();
    test_corruptions();
    test_shardset();
    test_text_shakespeare();
    test_text_jsonl_and_dirs();
    test_text_to_shard();
    char cmd[300]; snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_END();
}
