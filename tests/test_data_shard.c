/* Token shards: round trip (width 2 and 4), byte layout, atomic writer, every
 * corruption with its own error, shard sets. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/io.h"
#include "core/rng.h"
#include "data/shard.h"
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

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/lma_test_shard_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_round_trip(2);
    test_round_trip(4);
    test_writer_errors();
    test_corruptions();
    test_shardset();
    char cmd[300]; snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_END();
}
