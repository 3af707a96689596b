/* RAG store, extraction, chunking, BM25, RRF, incremental indexing, crash safety and
 * refusal of foreign files (src/rag/). Vectors come from a test encoder (hashed bag of
 * words, 16-d): everything here runs without a real embedding model. */
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/buf.h"
#include "core/status.h"
#include "rag/chunk.h"
#include "rag/extract.h"
#include "rag/index.h"
#include "rag/search.h"
#include "rag/store.h"
#include "test.h"

/* test encoder: words + 2 "special tokens"; vector = counts of hashed lowercase words */
#define TDIM 16
static int is_word(unsigned char c) { return c >= 0x80 || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'); }
static lma_status t_count(void *ctx, const char *t, size_t len, size_t *n) {
    (void)ctx;
    size_t w = 0;
    for (size_t i = 0; i < len; i++)
        if (t[i] != ' ' && t[i] != '\n' && t[i] != '\t' && (i == 0 || t[i - 1] == ' ' || t[i - 1] == '\n' || t[i - 1] == '\t')) w++;
    *n = w + 2;
    return LMA_OK;
}
static lma_status t_embed(void *ctx, const char *const *texts, size_t n, int q, float *out) {
    (void)ctx, (void)q;
    for (size_t k = 0; k < n; k++) {
        float *v = out + k * TDIM;
        memset(v, 0, TDIM * sizeof *v);
        const char *s = texts[k];
        for (size_t i = 0; s[i];) {
            if (!is_word((unsigned char)s[i])) { i++; continue; }
            uint32_t h = 2166136261u;
            while (s[i] && is_word((unsigned char)s[i])) h = (h ^ (unsigned char)(s[i++] | 32)) * 16777619u;
            v[h % TDIM] += 1;
        }
        v[0] += 0.01f; /* never the zero vector */
    }
    return LMA_OK;
}
static lma_rag_encoder test_enc(void) {
    lma_rag_encoder e = {NULL, TDIM, 0, "test-bow16", t_count, t_embed};
    return e;
}

static char tmpdir[256];
static void put(const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = test_fopen(p, "w");
    fputs(text, f);
    fclose(f);
}
static const char *tp(const char *name) {
    static char b[64][512];
    static int i;
    char *p = b[i++ % 64];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

/* everything of a store that indexing decides, in a canonical order (not the row keys) */
static char *dump(const char *db) {
    sqlite3 *h;
    lma_buf b = {0};
    if (sqlite3_open(db, &h) != SQLITE_OK) return strdup("");
    sqlite3_stmt *st;
    sqlite3_prepare_v2(h, "SELECT f.path, f.hash, d.doc_id, d.meta, d.n_chunks, c.seq, c.start, c.end, c.text, hex(c.emb) "
                          "FROM files f JOIN documents d ON d.path = f.path JOIN chunks c ON c.doc = d.key "
                          "ORDER BY f.path, d.doc_id, c.seq", -1, &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW)
        for (int i = 0; i < 10; i++) lma_buf_printf(&b, "%s%c", sqlite3_column_text(st, i) ? (const char *)sqlite3_column_text(st, i) : "", i == 9 ? '\n' : '|');
    sqlite3_finalize(st);
    sqlite3_prepare_v2(h, "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'alpha OR beta OR gamma OR delta'", -1, &st, NULL);
    if (sqlite3_step(st) == SQLITE_ROW) lma_buf_printf(&b, "fts %d\n", sqlite3_column_int(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
    return b.p ? b.p : strdup("");
}

static int64_t query_int(const char *db, const char *sql) {
    sqlite3 *h;
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_open(db, &h) != SQLITE_OK) return -1;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* BM25 as FTS5 defines it (k1 1.2, b 0.75, idf floored at 1e-6), computed by hand here */
static const char *corpus[] = {
    "the quick brown fox jumps over the lazy dog",
    "a fox and a dog are friends",
    "quick quick quick thinking wins",
    "dogs and cats live together in the house",
    "the brown bear sleeps",
    "nothing about animals at all here",
};
#define NCORP 6
static int tokens(const char *s, char w[][32]) {
    int n = 0;
    for (size_t i = 0; s[i];) {
        if (!is_word((unsigned char)s[i])) { i++; continue; }
        int k = 0;
        while (s[i] && is_word((unsigned char)s[i])) w[n][k++] = (char)(s[i++] | 32);
        w[n++][k] = 0;
    }
    return n;
}
/* all_terms = 0: as the store queries: terms in at least half the documents are left out
 * (FTS5 floors their idf at 1e-6) unless that leaves none */
static int term_df(const char *t) {
    int hits = 0;
    for (int d = 0; d < NCORP; d++) {
        char w2[64][32];
        int n2 = tokens(corpus[d], w2), has = 0;
        for (int i = 0; i < n2; i++) has |= !strcmp(w2[i], t);
        hits += has;
    }
    return hits;
}
static double bm25_ref_ex(const char *query, int doc, int all_terms) {
    char qw[16][32], dw[64][32], keep[16][32];
    int nq = tokens(query, qw), nk = 0;
    for (int t = 0; t < nq; t++)
        if (all_terms || 2 * term_df(qw[t]) < NCORP) memcpy(keep[nk++], qw[t], 32);
    if (nk == 0) memcpy(keep, qw, sizeof qw), nk = nq;
    memcpy(qw, keep, sizeof keep);
    nq = nk;
    double avg = 0;
    for (int d = 0; d < NCORP; d++) avg += tokens(corpus[d], dw);
    avg /= NCORP;
    int dl = tokens(corpus[doc], dw);
    double score = 0;
    for (int t = 0; t < nq; t++) {
        int hits = 0, tf = 0;
        for (int d = 0; d < NCORP; d++) {
            char w2[64][32];
            int n2 = tokens(corpus[d], w2), has = 0;
            for (int i = 0; i < n2; i++) has |= !strcmp(w2[i], qw[t]);
            hits += has;
        }
        for (int i = 0; i < dl; i++) tf += !strcmp(dw[i], qw[t]);
        double idf = log((NCORP - hits + 0.5) / (hits + 0.5));
        if (idf <= 0) idf = 1e-6;
        score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / avg));
    }
    return score;
}
static double bm25_ref(const char *query, int doc) { return bm25_ref_ex(query, doc, 0); }

static void test_bm25(void) {
    const char *db = tp("bm25.sqlite");
    lma_rag_store *s = NULL;
    CHECK_OK(lma_rag_store_open_sqlite(db, 1, &s));
    if (!s) return;
    char line[8192] = "";
    for (int d = 0; d < NCORP; d++) {
        char name[32];
        snprintf(name, sizeof name, "d%d", d);
        snprintf(line + strlen(line), sizeof line - strlen(line), "{\"id\": \"%s\", \"text\": \"%s\", \"n\": %d}\n", name, corpus[d], d);
    }
    put("bm25.jsonl", line);
    lma_rag_encoder enc = lma_rag_encoder_words();
    lma_rag_index_params ip = lma_rag_index_defaults();
    lma_rag_index_stats st;
    const char *paths[] = {tp("bm25.jsonl")};
    CHECK_OK(lma_rag_index(s, &enc, paths, 1, &ip, &st));
    CHECK(st.docs == NCORP && st.chunks == NCORP, "docs %zu chunks %zu", st.docs, st.chunks);
    lma_rag_searcher *q;
    CHECK_OK(lma_rag_searcher_open(s, &enc, &q));
    const char *queries[] = {"quick fox", "brown dog", "the lazy bear", "animals house", "zebra", "the"};
    for (int qi = 0; qi < 6; qi++) {
        lma_rag_search_params p = lma_rag_search_defaults();
        p.mode = LMA_RAG_BM25, p.k = 10;
        lma_rag_hit hits[10];
        int n = 0;
        CHECK_OK(lma_rag_search(q, queries[qi], &p, hits, &n));
        /* expected: every doc with a positive reference score, by score */
        int exp = 0;
        for (int d = 0; d < NCORP; d++) exp += bm25_ref(queries[qi], d) > 0;
        CHECK(n == exp, "%s: %d hits, expected %d", queries[qi], n, exp);
        for (int i = 0; i < n; i++) {
            lma_rag_chunk_row row;
            CHECK_OK(s->ops->chunk_get(s, hits[i].id, &row));
            int d = atoi(row.doc_id + 1);
            double ref = bm25_ref(queries[qi], d);
            CHECK(fabs(hits[i].score - ref) <= 1e-9 * fabs(ref) + 1e-12, "%s: %s score %.12g, hand %.12g", queries[qi],
                  row.doc_id, hits[i].score, ref);
            /* FTS5's own score with every term differs by the floored terms only (idf 1e-6) */
            double all = bm25_ref_ex(queries[qi], d, 1);
            CHECK(fabs(hits[i].score - all) <= 1e-5, "%s: %s score %.12g, all terms %.12g", queries[qi], row.doc_id,
                  hits[i].score, all);
            if (i) CHECK(hits[i].score <= hits[i - 1].score, "%s: not sorted", queries[qi]);
            lma_rag_chunk_row_free(&row);
        }
    }
    /* a ranking written out by hand: "quick fox": d2 has quick x3 (idf ln(5/1.5)... ), d0 quick+fox, d1 fox */
    {
        lma_rag_search_params p = lma_rag_search_defaults();
        p.mode = LMA_RAG_BM25, p.k = 10;
        lma_rag_hit hits[10];
        int n = 0;
        CHECK_OK(lma_rag_search(q, "quick fox", &p, hits, &n));
        const char *order[] = {"d0", "d2", "d1"};
        CHECK(n == 3, "quick fox: %d hits", n);
        for (int i = 0; i < n && i < 3; i++) {
            lma_rag_chunk_row row;
            CHECK_OK(s->ops->chunk_get(s, hits[i].id, &row));
            CHECK(!strcmp(row.doc_id, order[i]), "quick fox rank %d: %s, expected %s", i + 1, row.doc_id, order[i]);
            lma_rag_chunk_row_free(&row);
        }
        /* d0: quick tf 1, fox tf 1, dl 9; d2: quick tf 3, dl 5; avgdl 39/6 (9+7+5+8+4+6 tokens); idf(quick) = idf(fox) = ln(4.5/2.5) */
        double idf = log(4.5 / 2.5), avg = 39.0 / 6;
        double d0 = 2 * idf * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 9 / avg));
        double d2 = idf * 3 * 2.2 / (3 + 1.2 * (0.25 + 0.75 * 5 / avg));
        CHECK(n >= 2 && fabs(hits[0].score - d0) < 1e-9 && fabs(hits[1].score - d2) < 1e-9, "quick fox: %.9g %.9g vs %.9g %.9g",
              n ? hits[0].score : 0, n > 1 ? hits[1].score : 0, d0, d2);
    }
    /* filters: metadata field and path glob */
    {
        lma_rag_filter f = {NULL, "n", "2"};
        lma_rag_search_params p = lma_rag_search_defaults();
        p.mode = LMA_RAG_BM25, p.k = 10, p.filter = &f;
        lma_rag_hit hits[10];
        int n = 0;
        CHECK_OK(lma_rag_search(q, "quick fox", &p, hits, &n));
        CHECK(n == 1, "meta filter: %d hits", n);
        lma_rag_filter g = {"*nomatch*", NULL, NULL};
        p.filter = &g;
        CHECK_OK(lma_rag_search(q, "quick fox", &p, hits, &n));
        CHECK(n == 0, "path filter: %d hits", n);
        /* operators and quotes in the query are words, not syntax */
        p.filter = NULL;
        CHECK_OK(lma_rag_search(q, "\"fox\" AND (NOT dog*) OR -", &p, hits, &n));
        CHECK(n >= 2, "query with FTS5 syntax characters: %d hits", n);
    }
    /* vector search needs vectors: a clear refusal */
    {
        lma_rag_search_params p = lma_rag_search_defaults();
        p.mode = LMA_RAG_VECTOR;
        lma_rag_hit hits[10];
        int n;
        CHECK(lma_rag_search(q, "fox", &p, hits, &n) == LMA_ERR_ARG, "vector search without vectors");
        lma_clear_error();
    }
    lma_rag_searcher_free(q);
    lma_rag_store_close(s);
}

static void test_rrf(void) {
    int64_t a[] = {1, 2, 3}, b[] = {3, 1, 4};
    const int64_t *lists[] = {a, b};
    int lens[] = {3, 3}, n = 0;
    lma_rag_hit out[4];
    CHECK_OK(lma_rag_rrf(lists, lens, 2, 60, 4, out, &n));
    /* by hand: 1: 1/61 + 1/62 = .0325224; 3: 1/63 + 1/61 = .0322664; 2: 1/62; 4: 1/63 */
    int64_t order[] = {1, 3, 2, 4};
    double sc[] = {1.0 / 61 + 1.0 / 62, 1.0 / 63 + 1.0 / 61, 1.0 / 62, 1.0 / 63};
    CHECK(n == 4, "rrf n %d", n);
    for (int i = 0; i < 4 && i < n; i++)
        CHECK(out[i].id == order[i] && fabs(out[i].score - sc[i]) < 1e-15, "rrf rank %d: id %lld score %.9g", i + 1,
              (long long)out[i].id, out[i].score);
    /* ties: the same rank in two lists of equal length -> by id */
    int64_t c[] = {7}, d[] = {5};
    const int64_t *l2[] = {c, d};
    int len2[] = {1, 1};
    CHECK_OK(lma_rag_rrf(l2, len2, 2, 60, 2, out, &n));
    CHECK(n == 2 && out[0].id == 5 && out[1].id == 7, "rrf tie order");
    /* k cuts */
    CHECK_OK(lma_rag_rrf(lists, lens, 2, 60, 2, out, &n));
    CHECK(n == 2 && out[0].id == 1 && out[1].id == 3, "rrf k=2");
}

static void test_extract_chunk(void) {
    char *t;
    size_t n;
    const char *html = "<html><head><title>T</title><style>p{color:red}</style><script>var x=\"<p>\";</script></head>"
                       "<body><h1>Caf&eacute; &amp; bar</h1><p>One&nbsp;two &lt;3&gt; &#233;&#x41;<!-- no --></p>"
                       "<table><tr><td>a</td><td>b</td></tr></table></body></html>";
    CHECK_OK(lma_rag_html_text(html, strlen(html), &t, &n));
    const char *want = "T\n\nCaf\xc3\xa9 & bar\n\nOne\xc2\xa0two <3> \xc3\xa9" "A\n\na b";
    CHECK(t && !strcmp(t, want), "html text: [%s]", t ? t : "(null)");
    free(t);

    lma_rag_doc *docs;
    size_t nd;
    const char *jl = "{\"id\": \"x1\", \"text\": \"hello\", \"lang\": \"en\"}\n\n{\"id\": 7, \"text\": \"w\"}\n{\"text\": \"noid\"}\n";
    CHECK_OK(lma_rag_extract("f.jsonl", jl, strlen(jl), &docs, &nd));
    CHECK(nd == 3 && !strcmp(docs[0].doc_id, "x1") && !strcmp(docs[0].meta, "{\"lang\":\"en\"}") &&
              !strcmp(docs[1].doc_id, "7") && !strcmp(docs[2].doc_id, "f.jsonl#4") && !strcmp(docs[2].meta, "{}"),
          "jsonl documents");
    lma_rag_docs_free(docs, nd);
    const char *bad = "{\"id\": \"a\", \"text\": \"ok\"}\n{\"id\": \"b\", \"txt\": \"no\"}\n";
    CHECK(lma_rag_extract("g.jsonl", bad, strlen(bad), &docs, &nd) == LMA_ERR_FORMAT &&
              strstr(lma_last_error(), "g.jsonl:2") && strstr(lma_last_error(), "\"text\""),
          "bad jsonl line named: %s", lma_last_error());
    lma_clear_error();

    lma_rag_encoder enc = test_enc();
    lma_rag_span *sp;
    size_t ns;
    /* short: one span, whole (trimmed) */
    const char *shorttext = "  One sentence. Two.  \n";
    CHECK_OK(lma_rag_chunk(&enc, shorttext, strlen(shorttext), 20, 4, &sp, &ns));
    CHECK(ns == 1 && sp[0].start == 2 && sp[0].end == 20, "short text: %zu spans", ns);
    free(sp);
    /* long: 30 sentences of 5 words; chunks of 24 tokens (22 words) with overlap 6 */
    lma_buf b = {0};
    for (int i = 0; i < 30; i++) lma_buf_printf(&b, "Sentence %d has five words.%s", i, i % 7 == 6 ? "\n\n" : " ");
    CHECK_OK(lma_rag_chunk(&enc, b.p, b.len, 24, 6, &sp, &ns));
    int ok = ns > 5;
    for (size_t i = 0; i < ns; i++) {
        size_t tk;
        t_count(NULL, b.p + sp[i].start, sp[i].end - sp[i].start, &tk);
        ok &= tk <= 24;                                            /* within the budget */
        ok &= sp[i].start == 0 || !strncmp(b.p + sp[i].start, "Sentence", 8); /* starts at a sentence */
        ok &= b.p[sp[i].end - 1] == '.';                           /* ends at one */
        if (i) ok &= sp[i].start < sp[i - 1].end && sp[i].start > sp[i - 1].start; /* overlaps, advances */
        if (i) { /* the overlap is whole sentences of at most 6 tokens' words */
            size_t ov;
            t_count(NULL, b.p + sp[i].start, sp[i - 1].end - sp[i].start, &ov);
            ok &= ov - 2 <= 6;
        }
    }
    CHECK(ok && sp[ns - 1].end == b.len - 1, "long text chunks (%zu)", ns);
    free(sp);
    /* one sentence longer than a chunk: cut between words */
    lma_buf c = {0};
    for (int i = 0; i < 50; i++) lma_buf_printf(&c, "w%d ", i);
    CHECK_OK(lma_rag_chunk(&enc, c.p, c.len, 12, 2, &sp, &ns));
    ok = ns >= 5;
    for (size_t i = 0; i < ns; i++) {
        size_t tk;
        t_count(NULL, c.p + sp[i].start, sp[i].end - sp[i].start, &tk);
        ok &= tk <= 12 && c.p[sp[i].start] == 'w';
    }
    CHECK(ok, "long sentence cut between words (%zu chunks)", ns);
    free(sp);
    CHECK(lma_rag_chunk(&enc, c.p, c.len, 8, 8, &sp, &ns) == LMA_ERR_ARG, "overlap >= chunk refused");
    lma_clear_error();
    lma_buf_free(&b), lma_buf_free(&c);
}

static void write_corpus(void) {
    mkdir(tp("src"), 0755);
    mkdir(tp("src/sub"), 0755);
    lma_buf b = {0};
    for (int i = 0; i < 40; i++) lma_buf_printf(&b, "Alpha paragraph %d talks about rivers and lakes. ", i);
    put("src/a.txt", b.p);
    lma_buf_free(&b);
    put("src/b.md", "# Beta\n\nBeta is about mountains.\n\nThe beta text is short.\n");
    put("src/sub/c.html", "<html><body><h1>Gamma</h1><p>Gamma &amp; the sea.</p></body></html>");
    put("src/sub/d.jsonl", "{\"id\": \"d1\", \"text\": \"delta one is about deserts\", \"tag\": \"x\"}\n"
                           "{\"id\": \"d2\", \"text\": \"delta two is about forests\", \"tag\": \"y\"}\n");
    put("src/ignored.bin", "binary");
}

static lma_status index_into(const char *db, const char *root, lma_rag_index_stats *st, int (*on_chunk)(void *, size_t)) {
    lma_rag_store *s = NULL;
    LMA_TRY(lma_rag_store_open_sqlite(db, 1, &s));
    lma_rag_encoder enc = test_enc();
    lma_rag_index_params ip = lma_rag_index_defaults();
    ip.chunk_tokens = 24, ip.overlap_tokens = 6, ip.on_chunk = on_chunk;
    const char *paths[] = {root};
    lma_status r = lma_rag_index(s, &enc, paths, 1, &ip, st);
    lma_rag_store_close(s);
    return r;
}

static void test_incremental(void) {
    write_corpus();
    const char *db = tp("inc.sqlite");
    lma_rag_index_stats st;
    CHECK_OK(index_into(db, tp("src"), &st, NULL));
    CHECK(st.added == 4 && st.changed == 0 && st.removed == 0 && st.docs == 5, "first run: added %zu docs %zu", st.added, st.docs);
    size_t first_chunks = st.chunks;
    CHECK(first_chunks > 6, "a.txt is cut into chunks (%zu in all)", first_chunks);
    CHECK(query_int(db, "SELECT count(*) FROM graph") == (int64_t)first_chunks, "graph has every chunk");
    /* again: nothing changes */
    CHECK_OK(index_into(db, tp("src"), &st, NULL));
    CHECK(st.unchanged == 4 && st.added + st.changed + st.removed == 0 && st.chunks == 0, "second run: unchanged %zu", st.unchanged);
    /* change b, remove c, touch nothing else */
    put("src/b.md", "# Beta\n\nBeta is now about valleys.\n");
    char p[512];
    snprintf(p, sizeof p, "%s", tp("src/sub/c.html"));
    unlink(p);
    CHECK_OK(index_into(db, tp("src"), &st, NULL));
    CHECK(st.changed == 1 && st.removed == 1 && st.unchanged == 2 && st.added == 0, "third run: changed %zu removed %zu unchanged %zu",
          st.changed, st.removed, st.unchanged);
    CHECK(st.graph_removed >= 2 && st.graph_added == 1, "graph: +%zu -%zu", st.graph_added, st.graph_removed);
    CHECK(query_int(db, "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'mountains'") == 0 &&
              query_int(db, "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'valleys'") == 1 &&
              query_int(db, "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'gamma'") == 0,
          "full-text index follows the changes");
    CHECK(query_int(db, "SELECT count(*) FROM graph") == query_int(db, "SELECT count(*) FROM chunks"), "graph follows");
    /* the same as indexing the final state from scratch */
    const char *fresh = tp("fresh.sqlite");
    CHECK_OK(index_into(fresh, tp("src"), &st, NULL));
    char *d1 = dump(db), *d2 = dump(fresh);
    CHECK(!strcmp(d1, d2), "incremental store equals a fresh one:\n%s\n---\n%s", d1, d2);
    free(d1), free(d2);
    /* a store is tied to its encoder and chunk sizes */
    lma_rag_store *s;
    CHECK_OK(lma_rag_store_open_sqlite(db, 0, &s));
    lma_rag_encoder w = lma_rag_encoder_words();
    lma_rag_index_params ip = lma_rag_index_defaults();
    const char *paths[] = {tp("src")};
    CHECK(lma_rag_index(s, &w, paths, 1, &ip, &st) == LMA_ERR_ARG && strstr(lma_last_error(), "test-bow16"),
          "other encoder refused: %s", lma_last_error());
    lma_clear_error();
    /* vector and hybrid search on the test vectors; exact = HNSW on this small store */
    lma_rag_encoder enc = test_enc();
    lma_rag_searcher *q;
    CHECK_OK(lma_rag_searcher_open(s, &enc, &q));
    lma_rag_search_params sp = lma_rag_search_defaults();
    sp.mode = LMA_RAG_VECTOR, sp.k = 3, sp.hnsw_min = 0;
    lma_rag_hit h[3], g[3];
    int n = 0, m = 0;
    CHECK_OK(lma_rag_search(q, "delta two is about forests", &sp, h, &n));
    lma_rag_chunk_row row = {0};
    if (n) CHECK_OK(s->ops->chunk_get(s, h[0].id, &row));
    CHECK(n == 3 && row.doc_id && !strcmp(row.doc_id, "d2") && fabs(h[0].score - 1) < 1e-5, "vector top hit %s %.6f",
          row.doc_id ? row.doc_id : "-", n ? h[0].score : 0);
    lma_rag_chunk_row_free(&row);
    CHECK(!lma_rag_searcher_used_hnsw(q), "exact scan below the threshold");
    lma_rag_searcher *q2;
    CHECK_OK(lma_rag_searcher_open(s, &enc, &q2));
    sp.hnsw_min = 1;
    CHECK_OK(lma_rag_search(q2, "delta two is about forests", &sp, g, &m));
    CHECK(lma_rag_searcher_used_hnsw(q2) && m == n && g[0].id == h[0].id, "hnsw from the store agrees on the top hit");
    sp.mode = LMA_RAG_HYBRID, sp.hnsw_min = 0;
    lma_rag_filter f = {NULL, "tag", "x"};
    sp.filter = &f;
    CHECK_OK(lma_rag_search(q, "delta forests", &sp, h, &n));
    if (n) CHECK_OK(s->ops->chunk_get(s, h[0].id, &row));
    CHECK(n == 1 && row.doc_id && !strcmp(row.doc_id, "d1"), "hybrid with a metadata filter: %d hits", n);
    lma_rag_chunk_row_free(&row);
    lma_rag_searcher_free(q), lma_rag_searcher_free(q2);
    lma_rag_store_close(s);
}

static int kill_at;
static int killer(void *ctx, size_t n) {
    (void)ctx;
    if ((int)n == kill_at) raise(SIGKILL);
    return 0;
}

static void test_kill(void) {
    /* a corpus of several files; the child dies in the middle of the third file's transaction */
    mkdir(tp("kill"), 0755);
    for (int f = 0; f < 5; f++) {
        lma_buf b = {0};
        for (int i = 0; i < 12; i++) lma_buf_printf(&b, "File %d sentence %d about alpha beta gamma. ", f, i);
        char name[64];
        snprintf(name, sizeof name, "kill/f%d.txt", f);
        put(name, b.p);
        lma_buf_free(&b);
    }
    const char *db = tp("kill.sqlite"), *ref = tp("kill_ref.sqlite");
    lma_rag_index_stats st;
    CHECK_OK(index_into(ref, tp("kill"), &st, NULL));
    size_t per_file = st.chunks / 5;
    CHECK(per_file >= 3, "several chunks per file (%zu)", per_file);
    kill_at = (int)(2 * per_file + 2); /* inside f2 */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        index_into(db, tp("kill"), &st, killer);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child killed (status %d)", status);
    /* what survived: whole files only */
    CHECK(query_int(db, "SELECT count(*) FROM files") == 2, "two files committed before the kill (%lld)",
          (long long)query_int(db, "SELECT count(*) FROM files"));
    CHECK(query_int(db, "SELECT count(*) FROM documents d WHERE n_chunks != (SELECT count(*) FROM chunks c WHERE c.doc = d.key)") == 0,
          "no half-written document");
    CHECK(query_int(db, "SELECT count(*) FROM chunks") == (int64_t)(2 * per_file), "chunks of the committed files only");
    CHECK_OK(index_into(db, tp("kill"), &st, NULL));
    CHECK(st.unchanged == 2 && st.added == 3, "re-index: unchanged %zu added %zu", st.unchanged, st.added);
    char *d1 = dump(db), *d2 = dump(ref);
    CHECK(!strcmp(d1, d2), "store after kill + re-index equals an uninterrupted run");
    free(d1), free(d2);
    CHECK(query_int(db, "SELECT count(*) FROM graph") == query_int(db, "SELECT count(*) FROM chunks"), "graph complete");
}

static void test_refuse(void) {
    lma_rag_store *s = NULL;
    put("text.sqlite", "hello, I am not a database\n");
    CHECK(lma_rag_store_open_sqlite(tp("text.sqlite"), 1, &s) == LMA_ERR_FORMAT && strstr(lma_last_error(), "text.sqlite") &&
              strstr(lma_last_error(), "not an SQLite database") && !strchr(lma_last_error(), '\n'),
          "text file: %s", lma_last_error());
    lma_clear_error();
    sqlite3 *h;
    sqlite3_open(tp("foreign.sqlite"), &h);
    sqlite3_exec(h, "PRAGMA application_id=1234; CREATE TABLE t(x); INSERT INTO t VALUES (1);", NULL, NULL, NULL);
    sqlite3_close(h);
    CHECK(lma_rag_store_open_sqlite(tp("foreign.sqlite"), 1, &s) == LMA_ERR_FORMAT && strstr(lma_last_error(), "another application"),
          "foreign: %s", lma_last_error());
    lma_clear_error();
    sqlite3_open(tp("plain.sqlite"), &h);
    sqlite3_exec(h, "CREATE TABLE t(x);", NULL, NULL, NULL);
    sqlite3_close(h);
    CHECK(lma_rag_store_open_sqlite(tp("plain.sqlite"), 1, &s) == LMA_ERR_FORMAT && strstr(lma_last_error(), "another application"),
          "sqlite without our id: %s", lma_last_error());
    lma_clear_error();
    CHECK(lma_rag_store_open_sqlite(tp("missing.sqlite"), 0, &s) == LMA_ERR_IO, "missing store without create");
    lma_clear_error();
    /* newer schema */
    CHECK_OK(lma_rag_store_open_sqlite(tp("newer.sqlite"), 1, &s));
    lma_rag_store_close(s);
    sqlite3_open(tp("newer.sqlite"), &h);
    sqlite3_exec(h, "PRAGMA user_version=99;", NULL, NULL, NULL);
    sqlite3_close(h);
    CHECK(lma_rag_store_open_sqlite(tp("newer.sqlite"), 1, &s) == LMA_ERR_FORMAT && strstr(lma_last_error(), "newer"),
          "newer schema: %s", lma_last_error());
    lma_clear_error();
    /* a real store with its pages overwritten: refused (or its first read fails) with FORMAT */
    const char *db = tp("inc.sqlite"); /* from test_incremental */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp %s %s", db, tp("corrupt.sqlite"));
    CHECK(system(cmd) == 0, "copy");
    FILE *f = test_fopen(tp("corrupt.sqlite"), "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 100, SEEK_SET); /* keep the 100-byte header: the damage is in the pages */
    for (long i = 100; i < size; i++) fputc((int)((i * 7919) & 0xff), f);
    fclose(f);
    lma_status r = lma_rag_store_open_sqlite(tp("corrupt.sqlite"), 1, &s);
    if (r == LMA_OK) { /* the schema read may survive: the first search must not */
        int64_t n;
        r = s->ops->chunk_count(s, &n);
        lma_rag_store_close(s);
    }
    CHECK(r == LMA_ERR_FORMAT && strstr(lma_last_error(), "corrupt.sqlite") && !strchr(lma_last_error(), '\n'),
          "corrupt store: %s (%s)", lma_status_name(r), lma_last_error());
    lma_clear_error();
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lma_test_rag_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_rrf();
    test_bm25();
    test_extract_chunk();
    test_incremental();
    test_kill();
    test_refuse();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (!test_failed_ && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_END();
}
