/* GBNF grammars, the automaton (see grammar.h): the stack-set automaton over code points
 * that runs the compiled rules (expansion, bytes fed as UTF-8, the closing cost, reset,
 * clone, can_end/done, lma_grammar_matches) and the token mask with its naive oracle
 * lma_grammar_mask_ref. The parser and lma_grammar_compile are grammar_parse.c; what both
 * share is grammar_internal.h. */
#include "infer/grammar.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "infer/grammar_internal.h"

/* ---- the automaton ------------------------------------------------------------------------ */

int lma_grammar_el_match(const lma_grammar *g, const gel *e, uint32_t cp) {
    int in = 0;
    for (int32_t i = 0; i < e->n && !in; i++) in = cp >= g->rg[2 * (e->a + i)] && cp <= g->rg[2 * (e->a + i) + 1];
    return in != e->neg;
}

/* some code point in [lo, hi] matches e */
int lma_grammar_el_meets(const lma_grammar *g, const gel *e, uint32_t lo, uint32_t hi) {
    if (!e->neg) {
        for (int32_t i = 0; i < e->n; i++)
            if (g->rg[2 * (e->a + i)] <= hi && g->rg[2 * (e->a + i) + 1] >= lo) return 1;
        return 0;
    }
    uint32_t x = lo; /* is [lo, hi] covered by the excluded ranges? */
    for (;;) {
        int moved = 0;
        for (int32_t i = 0; i < e->n; i++)
            if (g->rg[2 * (e->a + i)] <= x && g->rg[2 * (e->a + i) + 1] >= x) {
                if (g->rg[2 * (e->a + i) + 1] >= hi) return 0;
                x = g->rg[2 * (e->a + i) + 1] + 1;
                moved = 1;
            }
        if (!moved) return 1;
    }
}

/* every code point in [lo, hi] matches e */
static int el_covers(const lma_grammar *g, const gel *e, uint32_t lo, uint32_t hi) {
    if (e->neg) {
        for (int32_t i = 0; i < e->n; i++)
            if (g->rg[2 * (e->a + i)] <= hi && g->rg[2 * (e->a + i) + 1] >= lo) return 0;
        return 1;
    }
    uint32_t x = lo;
    for (;;) {
        int moved = 0;
        for (int32_t i = 0; i < e->n; i++)
            if (g->rg[2 * (e->a + i)] <= x && g->rg[2 * (e->a + i) + 1] >= x) {
                if (g->rg[2 * (e->a + i) + 1] >= hi) return 1;
                x = g->rg[2 * (e->a + i) + 1] + 1;
                moved = 1;
            }
        if (!moved) return 0;
    }
}

static int state_copy(gstate *d, const gstate *s) {
    if (lma_grow(&d->d, &d->cap, s->len + 1, sizeof *d->d, 256, "grammar state") != LMA_OK) return 0;
    memcpy(d->d, s->d, s->len * sizeof *d->d);
    d->len = s->len; d->n = s->n; d->cp = s->cp; d->need = s->need; d->ulen = s->ulen; d->lo = s->lo; d->hi = s->hi;
    return 1;
}

static int state_equal(const gstate *x, const gstate *y) {
    return x->n == y->n && x->len == y->len && x->need == y->need && (!x->need || (x->cp == y->cp && x->ulen == y->ulen)) &&
           !memcmp(x->d, y->d, x->len * sizeof *x->d);
}

/* adds stack stk[0..depth) to d unless it is there */
static void emit(gstate *d, const int32_t *stk, int depth) {
    for (size_t o = 0; o < d->len; o += (size_t)d->d[o] + 1)
        if (d->d[o] == depth && !memcmp(d->d + o + 1, stk, (size_t)depth * sizeof *stk)) return;
    if (d->n >= MAX_STACKS) return;
    if (lma_grow(&d->d, &d->cap, d->len + (size_t)depth + 1, sizeof *d->d, 256, "grammar state") != LMA_OK) return;
    d->d[d->len++] = depth;
    memcpy(d->d + d->len, stk, (size_t)depth * sizeof *stk);
    d->len += (size_t)depth;
    d->n++;
}

/* expands the stack until its top is a character (or it is empty) into d */
static void expand(lma_grammar *g, gstate *d, int32_t *stk, int depth) {
    if (g->budget-- <= 0) return;
    if (depth == 0) { emit(d, stk, 0); return; }
    int32_t p = stk[depth - 1];
    const gel *e = &g->el[p];
    if (e->type == E_CHAR) { emit(d, stk, depth); return; }
    int base = depth - 1;
    if (g->el[p + 1].type != E_END) stk[base++] = p + 1; /* the continuation; a last reference is a tail call */
    const grule *r = &g->r[e->a];
    for (size_t a = 0; a < r->n_alt; a++) {
        int32_t s = r->alt[a];
        if (g->el[s].type == E_END) expand(g, d, stk, base);
        else if (base < MAX_DEPTH) { stk[base] = s; expand(g, d, stk, base + 1); }
    }
    stk[depth - 1] = p;
}

/* s advanced by code point cp into d */
static int advance(lma_grammar *g, const gstate *s, gstate *d, uint32_t cp) {
    d->len = 0; d->n = 0; d->need = 0;
    g->budget = MAX_EXPAND;
    for (size_t o = 0; o < s->len; o += (size_t)s->d[o] + 1) {
        int k = s->d[o];
        if (!k) continue;
        int32_t top = s->d[o + k];
        if (!lma_grammar_el_match(g, &g->el[top], cp)) continue;
        memcpy(g->stk, s->d + o + 1, (size_t)k * sizeof *g->stk);
        if (g->el[top + 1].type == E_END) k--;
        else g->stk[k - 1] = top + 1;
        expand(g, d, g->stk, k);
    }
    return d->n > 0;
}

/* some stack's top can take a code point in [lo, hi] */
static int viable(const lma_grammar *g, const gstate *s) {
    for (size_t o = 0; o < s->len; o += (size_t)s->d[o] + 1)
        if (s->d[o] && lma_grammar_el_meets(g, &g->el[s->d[o + s->d[o]]], s->lo, s->hi)) return 1;
    return 0;
}

static void set_span(gstate *s) { /* the code points the sequence begun can still become */
    static const uint32_t vlo[] = {0, 0, 0x80, 0x800, 0x10000}, vhi[] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
    uint32_t lo = s->cp << (6 * s->need), hi = lo | ((1u << (6 * s->need)) - 1);
    s->lo = lo > vlo[s->ulen] ? lo : vlo[s->ulen];
    s->hi = hi < vhi[s->ulen] ? hi : vhi[s->ulen];
    if (s->lo >= 0xD800 && s->hi <= 0xDFFF) s->hi = 0, s->lo = 1; /* surrogates only: empty */
}

/* feeds byte b to *s (tmp: scratch, swapped with *s) */
static int feed_byte(lma_grammar *g, gstate *s, gstate *tmp, unsigned char b) {
    if (s->need) {
        if ((b & 0xC0) != 0x80) return 0;
        s->cp = s->cp << 6 | (b & 0x3F);
        s->need--;
        if (s->need) { set_span(s); return s->lo <= s->hi && viable(g, s); }
        if (s->cp < s->lo || s->cp > s->hi || (s->cp >= 0xD800 && s->cp <= 0xDFFF)) return 0;
    } else if (b < 0x80) {
        s->cp = b;
    } else {
        int n = (b >= 0xC2 && b <= 0xDF) ? 1 : (b >= 0xE0 && b <= 0xEF) ? 2 : (b >= 0xF0 && b <= 0xF4) ? 3 : 0;
        if (!n) return 0;
        s->cp = b & (0x3F >> n);
        s->need = n;
        s->ulen = n + 1;
        set_span(s);
        return s->lo <= s->hi && viable(g, s);
    }
    if (!advance(g, s, tmp, s->cp)) return 0;
    gstate x = *s;
    *s = *tmp;
    *tmp = x;
    return 1;
}

/* fewest bytes that complete s */
static int close_cost(const lma_grammar *g, const gstate *s) {
    int best = INF;
    for (size_t o = 0; o < s->len; o += (size_t)s->d[o] + 1) {
        int k = s->d[o];
        long c = 0;
        if (k && s->need) {
            int32_t top = s->d[o + k];
            if (!lma_grammar_el_meets(g, &g->el[top], s->lo, s->hi)) continue;
            c = s->need + g->rest[top + 1];
            k--;
        }
        for (int i = 0; i < k; i++) c += g->rest[s->d[o + 1 + i]];
        if (c < best) best = (int)c;
    }
    return best;
}

static int can_end(const gstate *s) {
    if (s->need) return 0;
    for (size_t o = 0; o < s->len; o += (size_t)s->d[o] + 1)
        if (!s->d[o]) return 1;
    return 0;
}

/* ---- the public side ---------------------------------------------------------------------- */

lma_status lma_grammar_clone(const lma_grammar *g, lma_grammar **out) {
    *out = NULL;
    lma_grammar *c = lma_malloc(sizeof *c, "grammar");
    if (!c) return LMA_ERR_NOMEM;
    memcpy(c, g, sizeof *c);
    c->shared = 1;
    memset(&c->st, 0, sizeof c->st); memset(&c->a, 0, sizeof c->a); memset(&c->b, 0, sizeof c->b);
    memset(&c->t, 0, sizeof c->t); memset(c->after, 0, sizeof c->after);
    c->whole = NULL; c->ascii = NULL; c->n_whole = 0;
    lma_grammar_reset(c);
    if (!c->st.n) { lma_grammar_free(c); return lma_error(LMA_ERR_NOMEM, "out of memory"); }
    *out = c;
    return LMA_OK;
}

void lma_grammar_free(lma_grammar *g) {
    if (!g) return;
    if (!g->shared) {
        for (size_t r = 0; r < g->n_r; r++) { free(g->r[r].name); free(g->r[r].alt); }
        free(g->r);
        free(g->el);
        free(g->rg);
        free(g->rest);
    }
    free(g->st.d); free(g->a.d); free(g->b.d); free(g->t.d);
    for (int i = 0; i < 256; i++) free(g->after[i].d);
    free(g->whole);
    free(g->ascii);
    free(g);
}

void lma_grammar_reset(lma_grammar *g) {
    g->st.len = 0; g->st.n = 0; g->st.need = 0;
    g->stk[0] = g->start;
    g->budget = MAX_EXPAND;
    expand(g, &g->st, g->stk, 1);
}

int lma_grammar_min_bytes(const lma_grammar *g) { return g->rest[g->start]; }

int lma_grammar_feed(lma_grammar *g, const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!feed_byte(g, &g->st, &g->t, b[i])) return 0;
    return 1;
}

int lma_grammar_can_end(const lma_grammar *g) { return can_end(&g->st); }
int lma_grammar_done(const lma_grammar *g) { return !g->st.need && g->st.n == 1 && g->st.d[0] == 0; }

int lma_grammar_matches(lma_grammar *g, const char *text, size_t len) {
    lma_grammar_reset(g);
    int ok = lma_grammar_feed(g, (const unsigned char *)text, len) && can_end(&g->st);
    lma_grammar_reset(g);
    return ok;
}

/* the memo's entry for byte b2 after first byte b */
static int second_slow(lma_grammar *g, int b, int b2) {
    unsigned char *m = &g->memo[b][b2];
    {
        if (!state_copy(&g->a, &g->after[b])) return 0;
        int ok = feed_byte(g, &g->a, &g->b, (unsigned char)b2);
        *m = (unsigned char)(!ok ? 0 : state_equal(&g->a, &g->after[b]) ? 3 : 1);
    }
    return *m;
}
static inline int second(lma_grammar *g, int b, int b2) {
    int m = g->memo[b][b2];
    return m != 255 ? m : second_slow(g, b, b2);
}

/* The end of a mask (the fast one and its oracle): the end-of-sequence tokens allowed once
 * the grammar can end; an error when no token is left. */
static lma_status mask_end(const lma_grammar *g, float *logits, int V, int allowed, const int32_t *eos_ids, int n_eos) {
    if (can_end(&g->st))
        for (int i = 0; i < n_eos; i++)
            if (eos_ids[i] >= 0 && eos_ids[i] < V && logits[eos_ids[i]] == -INFINITY) { logits[eos_ids[i]] = 0; allowed++; }
    if (!allowed) return lma_error(LMA_ERR_ARG, "constrained decoding: no token can continue the grammar's output");
    return LMA_OK;
}

lma_status lma_grammar_mask(lma_grammar *g, unsigned char *const *piece, const int *plen, int n_pieces, float *logits,
                            int V, int tokens_left, const int32_t *eos_ids, int n_eos) {
    /* Exact shortcuts. Each first byte is fed once and the state after it kept; a second byte
     * after it is fed once (memo); a token is refused at its first refused byte of those two.
     * A token whose later bytes each leave the state after its first byte as it was (inside
     * [^"]* and the like) needs no copy: it is allowed when that state's closing cost fits.
     * Only the other tokens are fed byte by byte from the state after their first byte. */
    unsigned char first_ok[256], stay[256];
    int cost[256];
    for (int b = 0; b < 256; b++) {
        if (!state_copy(&g->after[b], &g->st)) return lma_error(LMA_ERR_NOMEM, "out of memory");
        first_ok[b] = (unsigned char)feed_byte(g, &g->after[b], &g->b, (unsigned char)b);
        cost[b] = first_ok[b] ? close_cost(g, &g->after[b]) : INF;
        stay[b] = (unsigned char)(b < 0x80 && first_ok[b] && state_equal(&g->after[b], &g->st));
    }
    memset(g->memo, 255, sizeof g->memo);
    if (!g->whole) { /* tokens made of ASCII bytes and whole UTF-8 characters */
        g->whole = lma_calloc((size_t)n_pieces + 1, 1, "grammar");
        g->ascii = lma_calloc(2 * (size_t)n_pieces + 2, sizeof *g->ascii, "grammar");
        if (!g->whole || !g->ascii) return LMA_ERR_NOMEM;
        g->n_whole = n_pieces;
        for (int id = 0; id < n_pieces; id++) {
            int ok = plen[id] > 0;
            for (int k = 0; ok && k < plen[id];) {
                unsigned char b = piece[id][k];
                int l = b < 0x80 ? 1 : (b >= 0xC2 && b <= 0xDF) ? 2 : (b >= 0xE0 && b <= 0xEF) ? 3 : (b >= 0xF0 && b <= 0xF4) ? 4 : 0;
                ok = l && k + l <= plen[id];
                uint32_t cp = l == 1 ? b : (uint32_t)(b & (0x7F >> l));
                for (int j = 1; ok && j < l; j++) {
                    ok = (piece[id][k + j] & 0xC0) == 0x80;
                    cp = cp << 6 | (piece[id][k + j] & 0x3F);
                }
                static const uint32_t minv[] = {0, 0, 0x80, 0x800, 0x10000};
                if (ok) ok = cp >= minv[l] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
                if (l == 1) g->ascii[2 * id + (b >> 6)] |= 1ULL << (b & 63);
                k += l ? l : 1;
            }
            g->whole[id] = (unsigned char)ok;
        }
    }
    /* every non-ASCII character leaves the state as it is: each stack's top takes all of them or
     * none, and one of them (U+00E9) gives the state back (inside [^"]* and the like) */
    int uni_stay = !g->st.need;
    for (size_t o = 0; uni_stay && o < g->st.len; o += (size_t)g->st.d[o] + 1) {
        const gel *e = g->st.d[o] ? &g->el[g->st.d[o + g->st.d[o]]] : NULL;
        uni_stay = !e || el_covers(g, e, 0x80, 0x10FFFF) || !lma_grammar_el_meets(g, e, 0x80, 0x10FFFF);
    }
    if (uni_stay) uni_stay = advance(g, &g->st, &g->a, 0xE9) && state_equal(&g->a, &g->st);
    int here_ok = close_cost(g, &g->st) <= tokens_left;
    uint64_t moves[2] = {0, 0}; /* ASCII bytes that do not stay */
    for (int b = 0; b < 128; b++)
        if (!stay[b]) moves[b >> 6] |= 1ULL << (b & 63);
    int allowed = 0;
    for (int id = 0; id < V; id++) {
        int ok = 0, n = id < n_pieces ? plen[id] : 0;
        const unsigned char *pc = n > 0 ? piece[id] : NULL;
        if (uni_stay && n > 0 && g->whole[id]) { /* ASCII stays and non-ASCII characters: the state stays */
            if (!(g->ascii[2 * id] & moves[0]) && !(g->ascii[2 * id + 1] & moves[1])) {
                if (here_ok) allowed++;
                else logits[id] = -INFINITY;
                continue;
            }
        }
        if (n > 0 && first_ok[pc[0]]) {
            int b = pc[0];
            if (n == 1) ok = cost[b] <= tokens_left;
            else if (second(g, b, pc[1])) {
                int k = 1;
                while (k < n && second(g, b, pc[k]) == 3) k++;
                if (k == n) ok = cost[b] <= tokens_left;
                else {
                    ok = state_copy(&g->a, &g->after[b]);
                    for (k = 1; ok && k < n; k++) ok = feed_byte(g, &g->a, &g->b, pc[k]);
                    if (ok) ok = close_cost(g, &g->a) <= tokens_left;
                }
            }
        }
        if (!ok) logits[id] = -INFINITY;
        allowed += ok;
    }
    return mask_end(g, logits, V, allowed, eos_ids, n_eos);
}

lma_status lma_grammar_mask_ref(lma_grammar *g, unsigned char *const *piece, const int *plen, int n_pieces, float *logits,
                                int V, int tokens_left, const int32_t *eos_ids, int n_eos) {
    int allowed = 0;
    for (int id = 0; id < V; id++) {
        int ok = id < n_pieces && plen[id] > 0 && state_copy(&g->a, &g->st);
        for (int k = 0; ok && k < plen[id]; k++) ok = feed_byte(g, &g->a, &g->b, piece[id][k]);
        if (ok) ok = close_cost(g, &g->a) <= tokens_left;
        if (!ok) logits[id] = -INFINITY;
        allowed += ok;
    }
    return mask_end(g, logits, V, allowed, eos_ids, n_eos);
}
