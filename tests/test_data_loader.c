/* Loader: every training token exactly once per epoch and no validation token,
 * targets/seg consistent, determinism, cursor resume (struct and JSON),
 * validation pass, replay share within 1% for R in {0.1, 0.25, 0.5}.
 * Token ids encode their origin: id = 1 + 1000*doc + k (k-th token of doc), EOS 0;
 * replay ids add 10,000,000. */
#include <stdint.h>
#include "backend/backend.h"
#include "core/rng.h"
#include "data/loader.h"
#include "data/shard.h"
#include "lmadapt.h"
#include "test.h"

#define NDOC 120
#define NREP 60
#define REP_BASE 10000000

static char dir[256];
static size_t doclen[NDOC], replen[NREP];

static int32_t tok_id(int base, size_t doc, size_t k) { return (int32_t)(base + 1 + 1000 * doc + k); }

/* docs split over two shards (doc 0..49, 50..NDOC-1) */
static int write_set(const char *p0, const char *p1, int base, size_t n, size_t *len, uint64_t seed) {
    lma_rng r; lma_rng_seed(&r, seed);
    int32_t buf[1000];
    lma_shard_writer *w;
    for (size_t d = 0; d < n; d++) {
        if (d == 0 || d == 50) {
            if (d == 50 && lma_shard_writer_commit(w) != LMA_OK) return 0;
            if (lma_shard_writer_open(d == 0 ? p0 : p1, 4, 0, &w) != LMA_OK) return 0;
        }
        /* mostly short, some longer than a row (T = 64) and than a batch */
        len[d] = 1 + (size_t)lma_rng_below(&r, d % 7 == 0 ? 400 : 60);
        for (size_t k = 0; k < len[d]; k++) buf[k] = tok_id(base, d, k);
        if (lma_shard_writer_add(w, buf, len[d]) != LMA_OK) return 0;
    }
    return lma_shard_writer_commit(w) == LMA_OK;
}

typedef struct { int32_t *ids, *tgt, *seg; } batch;
static batch balloc(int B, int T) {
    batch b = { malloc(sizeof(int32_t) * B * T), malloc(sizeof(int32_t) * B * T), malloc(sizeof(int32_t) * B * T) };
    return b;
}
static void bfree(batch *b) { free(b->ids); free(b->tgt); free(b->seg); }

/* seg starts at 0 in every row, steps by one exactly after an EOS (or when a row
 * starts); targets follow ids within a segment and are -100 elsewhere. */
static int row_consistent(const int32_t *ids, const int32_t *tgt, const int32_t *seg, int T) {
    if (seg[0] != 0) return 0;
    for (int t = 0; t < T; t++) {
        if (t + 1 < T) {
            int step = seg[t + 1] - seg[t];
            if (step != (ids[t] == 0 ? 1 : 0)) return 0;
        }
        int32_t want = (t + 1 < T && ids[t] != 0) ? ids[t + 1] : LMA_IGNORE_INDEX;
        if (tgt[t] != want) return 0;
    }
    return 1;
}

/* Walks a flat token stream epoch by epoch: each epoch must be every training
 * document once (tokens in order then EOS), no validation document. Returns the
 * number of complete epochs checked; order[e][i] gets the document order. */
static int check_epochs(const int32_t *flat, size_t n, const lma_loader *L, int base, const size_t *len, size_t ndoc,
                        uint64_t per_epoch, int max_epochs, int (*order)[NDOC], const char *what) {
    int epochs = 0;
    size_t p = 0;
    while (epochs < max_epochs && p + per_epoch <= n) {
        int seen[NDOC] = { 0 }, ok = 1, nd = 0;
        size_t end = p + per_epoch;
        while (p < end && ok) {
            int32_t v = flat[p] - base - 1;
            size_t d = (size_t)v / 1000;
            if (flat[p] == 0 || v < 0 || d >= ndoc || v % 1000 != 0 || seen[d]) { ok = 0; break; }
            if (L && lma_loader_is_val(L, d)) { ok = 0; break; }
            seen[d] = 1;
            if (order) order[epochs][nd] = (int)d;
            nd++;
            for (size_t k = 0; k < len[d]; k++) ok &= p + k < end && flat[p + k] == tok_id(base, d, k);
            ok &= p + len[d] < end && flat[p + len[d]] == 0;
            p += len[d] + 1;
        }
        size_t want = L ? lma_loader_train_docs(L) : ndoc;
        CHECK(ok && (size_t)nd == want && p == end, "%s epoch %d: bad stream at %zu (%d of %zu docs)", what, epochs, p,
              nd, want);
        if (!ok) break;
        epochs++;
    }
    return epochs;
}

static lma_shardset *open_set(const char *a, const char *b) {
    const char *paths[2] = { a, b };
    lma_shardset *s = NULL;
    CHECK_OK(lma_shardset_open(paths, 2, &s));
    return s;
}

static void test_epochs_and_determinism(const lma_shardset *data) {
    lma_loader_params p = lma_loader_default_params();
    p.B = 4; p.T = 64; p.seed = 42; p.val_fraction = 0.1;
    lma_loader *L = NULL, *L2 = NULL, *L3 = NULL;
    CHECK_OK(lma_loader_create(data, &p, &L));
    CHECK_OK(lma_loader_create(data, &p, &L2));
    p.seed = 43;
    CHECK_OK(lma_loader_create(data, &p, &L3));
    if (!L || !L2 || !L3) return;
    CHECK(lma_loader_val_docs(L) == 12 && lma_loader_train_docs(L) == NDOC - 12, "val split %llu",
          (unsigned long long)lma_loader_val_docs(L));
    uint64_t S = lma_loader_train_tokens(L), want = 0;
    for (size_t d = 0; d < NDOC; d++) if (!lma_loader_is_val(L, d)) want += doclen[d] + 1;
    CHECK(S == want, "train tokens per epoch %llu vs %llu", (unsigned long long)S, (unsigned long long)want);
    size_t BT = 4 * 64, nb = (size_t)(3 * S / BT) + 2, n = nb * BT;
    int32_t *flat = malloc(n * sizeof *flat), *flat3 = malloc(n * sizeof *flat3);
    batch b = balloc(4, 64), b2 = balloc(4, 64);
    int consistent = 1, same = 1;
    lma_loader_cursor c;
    for (size_t i = 0; i < nb; i++) {
        CHECK_OK(lma_loader_next(L, b.ids, b.tgt, b.seg));
        CHECK_OK(lma_loader_next(L2, b2.ids, b2.tgt, b2.seg));
        same &= !memcmp(b.ids, b2.ids, BT * 4) && !memcmp(b.tgt, b2.tgt, BT * 4) && !memcmp(b.seg, b2.seg, BT * 4);
        for (int r = 0; r < 4; r++) consistent &= row_consistent(b.ids + r * 64, b.tgt + r * 64, b.seg + r * 64, 64);
        memcpy(flat + i * BT, b.ids, BT * 4);
        CHECK_OK(lma_loader_next(L3, b.ids, b.tgt, b.seg));
        memcpy(flat3 + i * BT, b.ids, BT * 4);
    }
    CHECK(consistent, "targets/seg inconsistent with ids");
    CHECK(same, "same seed gave different batches");
    static int ord[3][NDOC], ord3[3][NDOC];
    int e = check_epochs(flat, n, L, 0, doclen, NDOC, S, 3, ord, "seed 42");
    CHECK(e == 3, "%d complete epochs checked, expected 3", e);
    lma_loader_get_cursor(L, &c);
    CHECK(c.data.epoch == 3, "cursor epoch %llu", (unsigned long long)c.data.epoch);
    CHECK(memcmp(ord[0], ord[1], sizeof ord[0]) != 0 && memcmp(ord[1], ord[2], sizeof ord[0]) != 0,
          "document order does not change between epochs");
    /* another seed: another validation set and another order */
    int diffval = 0;
    for (size_t d = 0; d < NDOC; d++) diffval |= lma_loader_is_val(L, d) != lma_loader_is_val(L3, d);
    CHECK(diffval, "seed 43 chose the same validation documents");
    CHECK(check_epochs(flat3, n, L3, 0, doclen, NDOC, lma_loader_train_tokens(L3), 1, ord3, "seed 43") == 1, "seed 43 epoch");
    CHECK(memcmp(ord[0], ord3[0], sizeof ord[0]) != 0, "seed 43 gave the same order");
    /* shuffle off: file order */
    p.shuffle = 0; p.val_fraction = 0;
    lma_loader *L4 = NULL;
    CHECK_OK(lma_loader_create(data, &p, &L4));
    if (L4) {
        for (size_t i = 0; i < nb; i++) { CHECK_OK(lma_loader_next(L4, b.ids, b.tgt, b.seg)); memcpy(flat + i * BT, b.ids, BT * 4); }
        uint64_t S4 = lma_loader_train_tokens(L4);
        CHECK(check_epochs(flat, n, L4, 0, doclen, NDOC, S4, 2, ord, "no shuffle") == 2, "no-shuffle epochs");
        int inorder = 1;
        for (int i = 0; i < NDOC; i++) inorder &= ord[0][i] == i && ord[1][i] == i;
        CHECK(inorder, "shuffle=0 does not keep file order");
        lma_loader_free(L4);
    }
    free(flat); free(flat3);
    bfree(&b); bfree(&b2);
    lma_loader_free(L); lma_loader_free(L2); lma_loader_free(L3);
}

static void test_validation(const lma_shardset *data) {
    lma_loader_params p = lma_loader_default_params();
    p.B = 3; p.T = 50; p.seed = 9; p.val_fraction = 0.25;
    lma_loader *L = NULL;
    CHECK_OK(lma_loader_create(data, &p, &L));
    if (!L) return;
    batch b = balloc(3, 50);
    int32_t *flat = malloc(sizeof(int32_t) * 150 * 1000);
    size_t n = 0;
    uint64_t full = 0;
    int rows, pad_ok = 1, consistent = 1, pass1 = 1;
    for (int it = 0; it < 1000; it++) {
        CHECK_OK(lma_loader_val_next(L, b.ids, b.tgt, b.seg, &rows));
        if (rows == 0) break;
        full++;
        for (int r = 0; r < 3; r++) {
            const int32_t *id = b.ids + r * 50, *tg = b.tgt + r * 50, *sg = b.seg + r * 50;
            int t = 0;
            while (t < 50 && sg[t] >= 0) flat[n++] = id[t++];
            if (r >= rows && t != 0) pad_ok = 0;
            int tused = t;
            for (; t < 50; t++) pad_ok &= sg[t] == -1 && tg[t] == LMA_IGNORE_INDEX;
            if (tused == 50) consistent &= row_consistent(id, tg, sg, 50);
            else if (tused > 0) {
                /* a partial last row: the used part is consistent, its last target ignored */
                for (int k = 0; k + 1 < tused; k++) consistent &= tg[k] == (id[k] != 0 ? id[k + 1] : LMA_IGNORE_INDEX);
                consistent &= tg[tused - 1] == LMA_IGNORE_INDEX;
            }
        }
    }
    CHECK(full == lma_loader_val_batches(L), "val batches %llu vs %llu", (unsigned long long)full,
          (unsigned long long)lma_loader_val_batches(L));
    CHECK(pad_ok && consistent, "validation padding/targets wrong (pad %d, consistent %d)", pad_ok, consistent);
    /* the stream is the validation documents in ascending order, each complete */
    size_t p0 = 0, nv = 0;
    for (size_t d = 0; d < NDOC; d++) {
        if (!lma_loader_is_val(L, d)) continue;
        nv++;
        for (size_t k = 0; k < doclen[d]; k++) pass1 &= p0 + k < n && flat[p0 + k] == tok_id(0, d, k);
        pass1 &= p0 + doclen[d] < n && flat[p0 + doclen[d]] == 0;
        p0 += doclen[d] + 1;
    }
    CHECK(pass1 && p0 == n && nv == 30, "validation stream is not the validation documents (%zu of %zu tokens)", p0, n);
    /* a second pass is identical */
    CHECK_OK(lma_loader_val_next(L, b.ids, b.tgt, b.seg, &rows));
    CHECK(rows > 0 && b.ids[0] == flat[0], "second pass restarts");
    /* errors */
    lma_loader *bad = NULL;
    p.val_fraction = 0.999;
    CHECK(lma_loader_create(data, &p, &bad) == LMA_ERR_ARG && !bad && strstr(lma_last_error(), "leaves none"),
          "val_fraction too large: %s", lma_last_error());
    lma_clear_error();
    p.val_fraction = 0; p.B = 0;
    CHECK(lma_loader_create(data, &p, &bad) == LMA_ERR_ARG, "B = 0 refused");
    lma_clear_error();
    free(flat); bfree(&b);
    lma_loader_free(L);
}

static void test_cursor(const lma_shardset *data, const lma_shardset *rep) {
    lma_loader_params p = lma_loader_default_params();
    p.B = 2; p.T = 64; p.seed = 5; p.val_fraction = 0.05; p.replay = rep; p.replay_ratio = 0.25;
    batch a = balloc(2, 64), b = balloc(2, 64);
    lma_loader_cursor c, c2;
    /* stop mid-document in epoch 0, and later in epoch >= 1 (where a fresh loader's
     * order differs from the running one's), then resume a fresh loader */
    const int stops[2] = { 37, 131 };
    for (int si = 0; si < 2; si++) {
        lma_loader *A = NULL, *Bl = NULL;
        CHECK_OK(lma_loader_create(data, &p, &A));
        CHECK_OK(lma_loader_create(data, &p, &Bl));
        if (!A || !Bl) { lma_loader_free(A); lma_loader_free(Bl); break; }
        for (int i = 0; i < stops[si]; i++) CHECK_OK(lma_loader_next(A, a.ids, a.tgt, a.seg));
        lma_loader_get_cursor(A, &c);
        CHECK(c.data.epoch == (uint64_t)si && c.data.offset > 0, "stop %d: cursor epoch %llu offset %llu", si,
              (unsigned long long)c.data.epoch, (unsigned long long)c.data.offset);
        cJSON *j = NULL;
        CHECK_OK(lma_loader_cursor_to_json(&c, &j));
        char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
        cJSON_Delete(j);
        cJSON *j2 = txt ? cJSON_Parse(txt) : NULL;
        CHECK_OK(lma_loader_cursor_from_json(j2, "cursor.json", &c2));
        cJSON_Delete(j2); free(txt);
        CHECK(memcmp(&c, &c2, sizeof c) == 0, "cursor JSON round trip differs");
        CHECK_OK(lma_loader_set_cursor(Bl, &c2));
        /* the next batches, across epoch boundaries of both sources, are identical */
        int same = 1, ok_rows = 1;
        for (int i = 0; i < 400; i++) {
            CHECK_OK(lma_loader_next(A, a.ids, a.tgt, a.seg));
            CHECK_OK(lma_loader_next(Bl, b.ids, b.tgt, b.seg));
            same &= !memcmp(a.ids, b.ids, 2 * 64 * 4) && !memcmp(a.tgt, b.tgt, 2 * 64 * 4) && !memcmp(a.seg, b.seg, 2 * 64 * 4);
            for (int r = 0; r < 2; r++) ok_rows &= row_consistent(a.ids + r * 64, a.tgt + r * 64, a.seg + r * 64, 64);
        }
        lma_loader_get_cursor(A, &c);
        lma_loader_get_cursor(Bl, &c2);
        CHECK(same && memcmp(&c, &c2, sizeof c) == 0, "stop %d: restored loader diverges", si);
        CHECK(c.data.epoch >= 1 && c.replay.epoch >= 1, "run crossed epochs (data %llu, replay %llu)",
              (unsigned long long)c.data.epoch, (unsigned long long)c.replay.epoch);
        CHECK(ok_rows, "mixed rows inconsistent");
        lma_loader_free(Bl);
        if (si == 0) { lma_loader_free(A); continue; }
        c2 = c; c2.data.pos = 1u << 30;
        CHECK(lma_loader_set_cursor(A, &c2) == LMA_ERR_ARG, "out-of-range cursor refused");
        lma_clear_error();
        /* a bad replay part is refused after the data part was applied: the loader
         * must be left as it was (same cursor, same next batch as a clean restore) */
        lma_loader_cursor before, after;
        lma_loader_get_cursor(A, &before);
        c2 = c; c2.data.epoch = 0; c2.data.pos = 3; c2.data.offset = 0; c2.replay.offset = 1u << 30;
        CHECK(lma_loader_set_cursor(A, &c2) == LMA_ERR_ARG && strstr(lma_last_error(), "replay offset"),
              "bad replay offset refused: %s", lma_last_error());
        lma_clear_error();
        lma_loader_get_cursor(A, &after);
        lma_loader *D = NULL;
        CHECK_OK(lma_loader_create(data, &p, &D));
        if (D) {
            CHECK_OK(lma_loader_set_cursor(D, &before));
            CHECK_OK(lma_loader_next(A, a.ids, a.tgt, a.seg));
            CHECK_OK(lma_loader_next(D, b.ids, b.tgt, b.seg));
            CHECK(!memcmp(&before, &after, sizeof before) && !memcmp(a.ids, b.ids, 2 * 64 * 4),
                  "failed restore changed the loader");
            lma_loader_free(D);
        }
        lma_loader_free(A);
    }
    /* a cursor from other params is refused */
    lma_loader *C = NULL;
    p.seed = 6;
    CHECK_OK(lma_loader_create(data, &p, &C));
    if (C) {
        CHECK(lma_loader_set_cursor(C, &c) == LMA_ERR_ARG && strstr(lma_last_error(), "fingerprint"), "foreign cursor: %s",
              lma_last_error());
        lma_clear_error();
        lma_loader_free(C);
    }
    cJSON *bad = cJSON_Parse("{\"fingerprint\":12}");
    CHECK(lma_loader_cursor_from_json(bad, "state.json", &c2) == LMA_ERR_FORMAT &&
          strstr(lma_last_error(), "state.json") && strstr(lma_last_error(), "fingerprint"), "bad cursor JSON: %s",
          lma_last_error());
    lma_clear_error();
    cJSON_Delete(bad);
    bfree(&a); bfree(&b);
}

static void test_replay(const lma_shardset *data, const lma_shardset *rep) {
    const double Rs[3] = { 0.1, 0.25, 0.5 };
    for (int k = 0; k < 3; k++) {
        lma_loader_params p = lma_loader_default_params();
        p.B = 4; p.T = 64; p.seed = 11 + k; p.replay = rep; p.replay_ratio = Rs[k]; p.val_fraction = 0.1;
        lma_loader *L = NULL;
        CHECK_OK(lma_loader_create(data, &p, &L));
        if (!L) continue;
        batch b = balloc(4, 64);
        uint64_t nrep = 0, ntot = 0, nb = 150; /* 600 rows */
        int bound = 1, pure = 1;
        for (uint64_t i = 0; i < nb; i++) {
            CHECK_OK(lma_loader_next(L, b.ids, b.tgt, b.seg));
            for (int r = 0; r < 4; r++) {
                int nr = 0, nd = 0;
                for (int t = 0; t < 64; t++) {
                    int32_t v = b.ids[r * 64 + t];
                    if (v >= REP_BASE) nr++;
                    else if (v > 0) { nd++; if (lma_loader_is_val(L, (size_t)(v - 1) / 1000)) pure = 0; }
                }
                if (nr && nd) pure = 0;
                nrep += nr ? 64 : 0;
                ntot += 64;
                if (fabs((double)nrep - Rs[k] * (double)ntot) > 32.0 + 1e-9) bound = 0;
            }
        }
        lma_loader_cursor c;
        lma_loader_get_cursor(L, &c);
        double share = (double)nrep / (double)ntot;
        CHECK(fabs(share - Rs[k]) < 0.01, "R=%g: replay share %.4f", Rs[k], share);
        CHECK(bound, "R=%g: |replay - R*total| exceeded T/2 during the run", Rs[k]);
        CHECK(pure, "R=%g: a row mixes sources or holds a validation document", Rs[k]);
        CHECK(c.replay_tokens == nrep && c.data_tokens == ntot - nrep, "R=%g: exposed counts %llu/%llu vs %llu/%llu",
              Rs[k], (unsigned long long)c.replay_tokens, (unsigned long long)c.data_tokens, (unsigned long long)nrep,
              (unsigned long long)(ntot - nrep));
        bfree(&b);
        lma_loader_free(L);
    }
    /* R = 0.5: the replay rows, in order, are every replay document once per epoch */
    lma_loader_params p = lma_loader_default_params();
    p.B = 4; p.T = 64; p.seed = 3; p.replay = rep; p.replay_ratio = 0.5;
    lma_loader *L = NULL;
    CHECK_OK(lma_loader_create(data, &p, &L));
    if (!L) return;
    uint64_t S = lma_shardset_ntokens(rep);
    size_t cap = (size_t)(2 * S + 8 * 64 * 4), n = 0;
    int32_t *flat = malloc(cap * sizeof *flat);
    batch b = balloc(4, 64);
    while (n + 64 <= cap && n < 2 * S + 64) {
        CHECK_OK(lma_loader_next(L, b.ids, b.tgt, b.seg));
        for (int r = 0; r < 4; r++) {
            int is_rep = 0;
            for (int t = 0; t < 64; t++) is_rep |= b.ids[r * 64 + t] >= REP_BASE;
            if (is_rep && n + 64 <= cap) { memcpy(flat + n, b.ids + r * 64, 64 * 4); n += 64; }
        }
    }
    CHECK(check_epochs(flat, n, NULL, REP_BASE, replen, NREP, S, 2, NULL, "replay") == 2, "replay epochs");
    free(flat); bfree(&b);
    lma_loader_free(L);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/lma_test_loader_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char a[512], b2[512], r0[512], r1[512];
    snprintf(a, sizeof a, "%s/d0.bin", dir); snprintf(b2, sizeof b2, "%s/d1.bin", dir);
    snprintf(r0, sizeof r0, "%s/r0.bin", dir); snprintf(r1, sizeof r1, "%s/r1.bin", dir);
    CHECK(write_set(a, b2, 0, NDOC, doclen, 100), "write data: %s", lma_last_error());
    CHECK(write_set(r0, r1, REP_BASE, NREP, replen, 200), "write replay: %s", lma_last_error());
    lma_shardset *data = open_set(a, b2), *rep = open_set(r0, r1);
    if (data && rep) {
        test_epochs_and_determinism(data);
        test_validation(data);
        test_cursor(data, rep);
        test_replay(data, rep);
    }
    lma_shardset_close(data); lma_shardset_close(rep);
    char cmd[300]; snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_END();
}
