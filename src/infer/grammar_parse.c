/* GBNF grammars, the compiler (see grammar.h): the parser (text into rules of alternatives
 * of elements; a group or a repetition becomes a rule of its own), errors with the file's
 * line:col, and the analysis lma_grammar_compile runs on the rules (undefined rules, the
 * root, nullable rules, left recursion, the fewest bytes each position needs to finish).
 * The automaton that runs the compiled rules is grammar.c; what both share is
 * grammar_internal.h. */
#include "infer/grammar.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "infer/grammar_internal.h"

/* ---- parsing ------------------------------------------------------------------------------ */

typedef struct {
    lma_grammar *g;
    const char *s; size_t len, pos;
    const char *name;
    size_t lc_pos; int lc_line, lc_col; /* line_col's cursor (positions are asked for mostly in order) */
} parser;

static void line_col(const parser *cp, size_t pos, int *line, int *col) {
    parser *p = (parser *)cp;
    if (pos < p->lc_pos || !p->lc_line) { p->lc_pos = 0; p->lc_line = 1; p->lc_col = 1; }
    for (size_t i = p->lc_pos; i < pos && i < p->len; i++) {
        if (p->s[i] == '\n') { p->lc_line++; p->lc_col = 1; }
        else if (((unsigned char)p->s[i] & 0xC0) != 0x80) p->lc_col++;
    }
    p->lc_pos = pos;
    *line = p->lc_line;
    *col = p->lc_col;
}

static lma_status perr_at(const char *name, int line, int col, const char *fmt, ...) LMA_PRINTF(4, 5);
static lma_status perr_at(const char *name, int line, int col, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lma_error(LMA_ERR_FORMAT, "%s:%d:%d: %s", name, line, col, msg);
}

static lma_status perr(const parser *p, size_t pos, const char *fmt, ...) LMA_PRINTF(3, 4);
static lma_status perr(const parser *p, size_t pos, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    line_col(p, pos, &line, &col);
    return perr_at(p->name, line, col, "%s", msg);
}

static int peek(const parser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }
static int name_char(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; }

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') p->pos++;
        else if (c == '#') while (p->pos < p->len && p->s[p->pos] != '\n') p->pos++;
        else break;
    }
}

/* a name then "::=" at pos (a rule's start) */
static int at_rule_start(const parser *p) {
    parser q = *p;
    size_t n = 0;
    while (name_char(peek(&q))) { q.pos++; n++; }
    if (!n) return 0;
    skip_ws(&q);
    return q.pos + 3 <= q.len && !memcmp(q.s + q.pos, "::=", 3);
}

static int add_rule(lma_grammar *g, const char *name, size_t n, const char *what, int line, int col) {
    if (lma_grow(&g->r, &g->cap_r, g->n_r + 1, sizeof *g->r, 16, "grammar") != LMA_OK) return -1;
    grule *r = &g->r[g->n_r];
    memset(r, 0, sizeof *r);
    if (name) {
        r->name = malloc(n + 1);
        if (!r->name) return -1;
        memcpy(r->name, name, n);
        r->name[n] = 0;
    }
    r->what = what;
    r->line = line;
    r->col = col;
    return (int)g->n_r++;
}

static int find_rule(const lma_grammar *g, const char *name, size_t n) {
    for (size_t i = 0; i < g->n_r; i++)
        if (g->r[i].name && strlen(g->r[i].name) == n && !memcmp(g->r[i].name, name, n)) return (int)i;
    return -1;
}

static lma_status push_el(lma_grammar *g, gel e) {
    LMA_TRY(lma_grow(&g->el, &g->cap_el, g->n_el + 1, sizeof *g->el, 64, "grammar"));
    g->el[g->n_el++] = e;
    return LMA_OK;
}

/* a sequence being parsed: its elements, appended to g->el as one alternative when done */
typedef struct { gel *e; size_t n, cap; } seq;

static lma_status seq_push(seq *q, gel e) {
    LMA_TRY(lma_grow(&q->e, &q->cap, q->n + 1, sizeof *q->e, 16, "grammar"));
    q->e[q->n++] = e;
    return LMA_OK;
}

/* appends a reference to rule r (written at line:col); *last: its index (what a repeat takes) */
static lma_status seq_push_ref(seq *q, int r, int line, int col, long *last) {
    gel e = {0};
    e.type = E_RULE;
    e.a = r;
    e.line = line;
    e.col = col;
    *last = (long)q->n;
    return seq_push(q, e);
}

/* appends elements + END as an alternative of rule r */
static lma_status add_alt(lma_grammar *g, int r, const gel *e, size_t n) {
    grule *ru = &g->r[r];
    LMA_TRY(lma_grow(&ru->alt, &ru->cap_alt, ru->n_alt + 1, sizeof *ru->alt, 4, "grammar"));
    ru->alt[ru->n_alt++] = (int)g->n_el;
    for (size_t i = 0; i < n; i++) LMA_TRY(push_el(g, e[i]));
    gel end = {0};
    end.type = E_END;
    return push_el(g, end);
}

static lma_status add_range(lma_grammar *g, uint32_t lo, uint32_t hi) {
    LMA_TRY(lma_grow(&g->rg, &g->cap_rg, g->n_rg + 2, sizeof *g->rg, 64, "grammar"));
    g->rg[g->n_rg++] = lo;
    g->rg[g->n_rg++] = hi;
    return LMA_OK;
}

/* one character of a literal or class at p->pos (escape or UTF-8) */
static lma_status read_char(parser *p, uint32_t *cp) {
    size_t at = p->pos;
    unsigned char c = (unsigned char)p->s[p->pos++];
    if (c == '\\') {
        if (p->pos >= p->len) return perr(p, at, "an escape at the end of the grammar");
        char e = p->s[p->pos++];
        int hex = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (hex) {
            uint32_t v = 0;
            for (int i = 0; i < hex; i++) {
                int h = peek(p), d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 :
                                 h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                if (d < 0) return perr(p, at, "\\%c needs %d hex digits", e, hex);
                v = v * 16 + (uint32_t)d;
                p->pos++;
            }
            if (v > 0x10FFFF) return perr(p, at, "\\%c%0*X is beyond U+10FFFF", e, hex, v);
            *cp = v;
            return LMA_OK;
        }
        const char *from = "nrt\\\"'[]-/", *to = "\n\r\t\\\"'[]-/";
        const char *k = e ? strchr(from, e) : NULL;
        if (!k) return perr(p, at, "unknown escape \\%c (known: \\n \\r \\t \\\\ \\\" \\' \\[ \\] \\- \\xHH \\uHHHH \\UHHHHHHHH)", e);
        *cp = (unsigned char)to[k - from];
        return LMA_OK;
    }
    if (c < 0x80) { *cp = c; return LMA_OK; }
    int n = (c >= 0xC2 && c <= 0xDF) ? 1 : (c >= 0xE0 && c <= 0xEF) ? 2 : (c >= 0xF0 && c <= 0xF4) ? 3 : -1;
    if (n < 0) return perr(p, at, "the grammar is not UTF-8 here");
    uint32_t v = c & (0x3F >> n);
    for (int i = 0; i < n; i++) {
        int d = peek(p);
        if (d < 0 || (d & 0xC0) != 0x80) return perr(p, at, "the grammar is not UTF-8 here");
        v = v << 6 | (uint32_t)(d & 0x3F);
        p->pos++;
    }
    *cp = v;
    return LMA_OK;
}

static lma_status parse_alternates(parser *p, int r, int nested);

static gel char_el(const parser *p, size_t at, uint32_t a, uint32_t n, int neg) {
    gel e = {0};
    e.type = E_CHAR;
    e.neg = (uint8_t)neg;
    e.a = (int32_t)a;
    e.n = (int32_t)n;
    line_col(p, at, &e.line, &e.col);
    return e;
}

/* X{min,max} (max -1: unbounded) on the operand q->e[from .. q->n) */
static lma_status repeat(parser *p, seq *q, size_t from, int min, int max, size_t at) {
    lma_grammar *g = p->g;
    size_t xn = q->n - from;
    if (xn * (size_t)(min > max ? min : max) > MAX_COPIES) return perr(p, at, "this repetition makes more than %d copies", MAX_COPIES);
    gel *x = malloc(xn * sizeof *x);
    if (!x) return lma_error(LMA_ERR_NOMEM, "out of memory");
    memcpy(x, q->e + from, xn * sizeof *x);
    q->n = from;
    lma_status s = LMA_OK;
    int line, col;
    line_col(p, at, &line, &col);
    for (int i = 0; i < min && s == LMA_OK; i++)
        for (size_t k = 0; k < xn && s == LMA_OK; k++) s = seq_push(q, x[k]);
    gel ref = {0};
    ref.type = E_RULE;
    ref.line = line;
    ref.col = col;
    if (s == LMA_OK && max < 0) { /* S ::= X S | () */
        int r = add_rule(g, NULL, 0, "repetition", line, col);
        if (r < 0) s = lma_error(LMA_ERR_NOMEM, "out of memory");
        gel *alt = s == LMA_OK ? malloc((xn + 1) * sizeof *alt) : NULL;
        if (s == LMA_OK && !alt) s = lma_error(LMA_ERR_NOMEM, "out of memory");
        if (s == LMA_OK) {
            memcpy(alt, x, xn * sizeof *alt);
            ref.a = r;
            alt[xn] = ref;
            s = add_alt(g, r, alt, xn + 1);
            if (s == LMA_OK) s = add_alt(g, r, NULL, 0);
            if (s == LMA_OK) s = seq_push(q, ref);
        }
        free(alt);
    } else if (s == LMA_OK && max > min) { /* O1 ::= X | (); Ok ::= X O(k-1) | () */
        int inner = -1;
        gel *alt = malloc((xn + 1) * sizeof *alt);
        if (!alt) s = lma_error(LMA_ERR_NOMEM, "out of memory");
        for (int k = 0; k < max - min && s == LMA_OK; k++) {
            int r = add_rule(g, NULL, 0, "repetition", line, col);
            if (r < 0) { s = lma_error(LMA_ERR_NOMEM, "out of memory"); break; }
            memcpy(alt, x, xn * sizeof *alt);
            size_t an = xn;
            if (inner >= 0) { ref.a = inner; alt[an++] = ref; }
            s = add_alt(g, r, alt, an);
            if (s == LMA_OK) s = add_alt(g, r, NULL, 0);
            inner = r;
        }
        free(alt);
        if (s == LMA_OK) { ref.a = inner; s = seq_push(q, ref); }
    }
    free(x);
    return s;
}

static lma_status parse_sequence(parser *p, seq *q, int nested) {
    long last = -1; /* where the last operand starts in q */
    for (;;) {
        skip_ws(p);
        int c = peek(p);
        if (c < 0 || c == '|' || c == ')') return LMA_OK;
        size_t at = p->pos;
        if (name_char(c) && at_rule_start(p)) {
            if (nested) return perr(p, at, "a rule begins inside a parenthesis (a ')' is missing)");
            return LMA_OK;
        }
        if (c == '"') {
            p->pos++;
            last = (long)q->n;
            for (;;) {
                int d = peek(p);
                if (d < 0 || d == '\n') return perr(p, at, "a string literal without its closing quote");
                if (d == '"') { p->pos++; break; }
                size_t cat = p->pos;
                uint32_t cp;
                LMA_TRY(read_char(p, &cp));
                LMA_TRY(seq_push(q, char_el(p, cat, (uint32_t)(p->g->n_rg / 2), 1, 0)));
                LMA_TRY(add_range(p->g, cp, cp));
            }
        } else if (c == '[') {
            p->pos++;
            int neg = peek(p) == '^';
            if (neg) p->pos++;
            size_t first = p->g->n_rg / 2;
            for (;;) {
                int d = peek(p);
                if (d < 0 || d == '\n') return perr(p, at, "a character class without its closing ']'");
                if (d == ']') { p->pos++; break; }
                size_t cat = p->pos;
                uint32_t lo, hi;
                LMA_TRY(read_char(p, &lo));
                hi = lo;
                if (peek(p) == '-' && p->pos + 1 < p->len && p->s[p->pos + 1] != ']' && p->s[p->pos + 1] != '\n') {
                    p->pos++;
                    LMA_TRY(read_char(p, &hi));
                    if (hi < lo) return perr(p, cat, "a range from U+%04X down to U+%04X", lo, hi);
                }
                LMA_TRY(add_range(p->g, lo, hi));
            }
            size_t n = p->g->n_rg / 2 - first;
            if (!n && !neg) return perr(p, at, "an empty character class");
            last = (long)q->n;
            LMA_TRY(seq_push(q, char_el(p, at, (uint32_t)first, (uint32_t)n, neg)));
        } else if (c == '.') {
            p->pos++;
            last = (long)q->n;
            LMA_TRY(seq_push(q, char_el(p, at, 0, 0, 1)));
        } else if (c == '(') {
            p->pos++;
            int line, col;
            line_col(p, at, &line, &col);
            int r = add_rule(p->g, NULL, 0, "group", line, col);
            if (r < 0) return lma_error(LMA_ERR_NOMEM, "out of memory");
            LMA_TRY(parse_alternates(p, r, 1));
            skip_ws(p);
            if (peek(p) != ')') return perr(p, at, "this '(' has no closing ')'");
            p->pos++;
            LMA_TRY(seq_push_ref(q, r, line, col, &last));
        } else if (name_char(c)) {
            size_t n = 0;
            while (name_char(peek(p))) { p->pos++; n++; }
            int r = find_rule(p->g, p->s + at, n);
            int line, col;
            line_col(p, at, &line, &col);
            if (r < 0 && (r = add_rule(p->g, p->s + at, n, NULL, line, col)) < 0) return lma_error(LMA_ERR_NOMEM, "out of memory");
            LMA_TRY(seq_push_ref(q, r, line, col, &last));
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (last < 0) return perr(p, at, "'%c' has nothing before it to repeat", c);
            p->pos++;
            int min = c == '+', max = c == '?' ? 1 : -1;
            if (c == '{') {
                skip_ws(p);
                if (peek(p) < '0' || peek(p) > '9') return perr(p, at, "'{' needs a count: {m}, {m,} or {m,n}");
                min = 0;
                while (peek(p) >= '0' && peek(p) <= '9') {
                    min = min * 10 + (p->s[p->pos++] - '0');
                    if (min > MAX_REPEAT) min = MAX_REPEAT + 1;
                }
                skip_ws(p);
                max = min;
                if (peek(p) == ',') {
                    p->pos++;
                    skip_ws(p);
                    max = -1;
                    if (peek(p) >= '0' && peek(p) <= '9') {
                        max = 0;
                        while (peek(p) >= '0' && peek(p) <= '9') {
                            max = max * 10 + (p->s[p->pos++] - '0');
                            if (max > MAX_REPEAT) max = MAX_REPEAT + 1;
                        }
                    }
                    skip_ws(p);
                }
                if (peek(p) != '}') return perr(p, at, "'{' needs a count: {m}, {m,} or {m,n}");
                p->pos++;
                if (min > MAX_REPEAT || max > MAX_REPEAT) return perr(p, at, "a count above %d", MAX_REPEAT);
                if (max >= 0 && max < min) return perr(p, at, "{%d,%d}: the maximum is below the minimum", min, max);
            }
            LMA_TRY(repeat(p, q, (size_t)last, min, max, at));
        } else {
            return perr(p, at, "unexpected '%c'", c);
        }
    }
}

static lma_status parse_alternates(parser *p, int r, int nested) {
    for (;;) {
        seq q = {0};
        lma_status s = parse_sequence(p, &q, nested);
        if (s == LMA_OK) s = add_alt(p->g, r, q.e, q.n);
        free(q.e);
        LMA_TRY(s);
        skip_ws(p);
        if (peek(p) != '|') return LMA_OK;
        p->pos++;
    }
}

static lma_status parse(parser *p) {
    lma_grammar *g = p->g;
    skip_ws(p);
    while (p->pos < p->len) {
        size_t at = p->pos, n = 0;
        while (name_char(peek(p))) { p->pos++; n++; }
        if (!n) return perr(p, at, "expected a rule name, found '%c'", peek(p));
        skip_ws(p);
        if (p->pos + 3 > p->len || memcmp(p->s + p->pos, "::=", 3))
            return perr(p, p->pos, "expected '::=' after the rule name '%.*s'", (int)n, p->s + at);
        p->pos += 3;
        int line, col;
        line_col(p, at, &line, &col);
        int r = find_rule(g, p->s + at, n);
        if (r >= 0 && g->r[r].defined)
            return perr(p, at, "the rule '%.*s' is defined twice (first at %d:%d)", (int)n, p->s + at, g->r[r].line, g->r[r].col);
        if (r < 0 && (r = add_rule(g, p->s + at, n, NULL, line, col)) < 0) return lma_error(LMA_ERR_NOMEM, "out of memory");
        g->r[r].defined = 1;
        g->r[r].line = line;
        g->r[r].col = col;
        LMA_TRY(parse_alternates(p, r, 0));
        skip_ws(p);
        if (peek(p) == ')') return perr(p, p->pos, "a ')' without its '('");
    }
    return LMA_OK;
}

/* ---- analysis ----------------------------------------------------------------------------- */

static const char *rule_desc(const lma_grammar *g, int r, char *buf, size_t cap) {
    if (g->r[r].name) snprintf(buf, cap, "the rule '%s'", g->r[r].name);
    else snprintf(buf, cap, "the %s at %d:%d", g->r[r].what, g->r[r].line, g->r[r].col);
    return buf;
}

/* colour: 0 new, 1 on the path, 2 done; a rule reached again before any character: left recursion */
static lma_status left_rec(const lma_grammar *g, int r, unsigned char *colour) {
    if (colour[r] == 2) return LMA_OK;
    char d[128];
    if (colour[r] == 1) {
        if (!g->r[r].name && !strcmp(g->r[r].what, "repetition"))
            return perr_at(g->name, g->r[r].line, g->r[r].col, "this repetition repeats something that can be empty");
        return perr_at(g->name, g->r[r].line, g->r[r].col, "%s is left-recursive (it reaches itself before any character)",
                       rule_desc(g, r, d, sizeof d));
    }
    colour[r] = 1;
    for (size_t a = 0; a < g->r[r].n_alt; a++)
        for (int p = g->r[r].alt[a]; g->el[p].type == E_RULE; p++) {
            LMA_TRY(left_rec(g, g->el[p].a, colour));
            if (!g->r[g->el[p].a].nullable) break;
        }
    colour[r] = 2;
    return LMA_OK;
}

/* fewest bytes of a character e can produce one token a byte, or INF */
static int char_cost(const lma_grammar *g, const gel *e, const unsigned char *byte_tok) {
    for (uint32_t b = 0; b < 0x80; b++)
        if ((!byte_tok || byte_tok[b]) && lma_grammar_el_match(g, e, b)) return 1;
    for (uint32_t b = 0x80; b < 0xC0 && byte_tok; b++) /* continuation bytes */
        if (!byte_tok[b]) return INF;
    int best = INF;
    for (uint32_t b = 0xC2; b <= 0xF4; b++) { /* a lead byte with a token, and the characters it starts */
        if (byte_tok && !byte_tok[b]) continue;
        int l = b <= 0xDF ? 2 : b <= 0xEF ? 3 : 4;
        uint32_t lo = (b & (0x7Fu >> l)) << (6 * (l - 1)), hi = lo | ((1u << (6 * (l - 1))) - 1);
        if (lo < (l == 3 ? 0x800u : l == 4 ? 0x10000u : 0x80u)) lo = l == 3 ? 0x800u : l == 4 ? 0x10000u : 0x80u;
        if (hi > 0x10FFFF) hi = 0x10FFFF;
        if (lo <= hi && lma_grammar_el_meets(g, e, lo, hi) && l < best) best = l;
    }
    return best;
}

static lma_status analyse(lma_grammar *g, const unsigned char *byte_tok) {
    char d[128];
    for (size_t i = 0; i < g->n_el; i++)
        if (g->el[i].type == E_RULE && !g->r[g->el[i].a].defined && g->r[g->el[i].a].name)
            return perr_at(g->name, g->el[i].line, g->el[i].col, "the rule '%s' is not defined", g->r[g->el[i].a].name);
    for (size_t r = 0; r < g->n_r; r++) g->r[r].defined |= !g->r[r].name; /* groups and repetitions */
    int root = find_rule(g, "root", 4);
    if (root < 0) return lma_error(LMA_ERR_FORMAT, "%s:1:1: the grammar has no 'root' rule (the start)", g->name);
    for (int changed = 1; changed;) { /* nullable */
        changed = 0;
        for (size_t r = 0; r < g->n_r; r++) {
            if (g->r[r].nullable) continue;
            for (size_t a = 0; a < g->r[r].n_alt && !g->r[r].nullable; a++) {
                int p = g->r[r].alt[a];
                while (g->el[p].type == E_RULE && g->r[g->el[p].a].nullable) p++;
                if (g->el[p].type == E_END) g->r[r].nullable = changed = 1;
            }
        }
    }
    unsigned char *colour = calloc(g->n_r, 1);
    if (!colour) return lma_error(LMA_ERR_NOMEM, "out of memory");
    lma_status s = LMA_OK;
    for (size_t r = 0; r < g->n_r && s == LMA_OK; r++) s = left_rec(g, (int)r, colour);
    free(colour);
    LMA_TRY(s);
    /* the start: root, then END */
    gel st = {0};
    st.type = E_RULE;
    st.a = root;
    g->start = (int)g->n_el;
    LMA_TRY(push_el(g, st));
    gel end = {0};
    LMA_TRY(push_el(g, end));
    g->rest = malloc(g->n_el * sizeof *g->rest);
    int *cc = malloc(g->n_el * sizeof *cc);
    if (!g->rest || !cc) { free(cc); return lma_error(LMA_ERR_NOMEM, "out of memory"); }
    for (size_t i = 0; i < g->n_el; i++) {
        cc[i] = g->el[i].type == E_CHAR ? char_cost(g, &g->el[i], byte_tok) : 0;
        if (cc[i] >= INF) {
            free(cc);
            return perr_at(g->name, g->el[i].line, g->el[i].col, "no character of this class can be produced (the "
                           "tokenizer has no single-byte token for any of its characters)");
        }
    }
    for (size_t r = 0; r < g->n_r; r++) g->r[r].minlen = INF;
    for (int changed = 1; changed;) { /* fewest bytes of each rule: a fixed point */
        changed = 0;
        for (size_t r = 0; r < g->n_r; r++)
            for (size_t a = 0; a < g->r[r].n_alt; a++) {
                long sum = 0;
                for (int p = g->r[r].alt[a]; g->el[p].type != E_END && sum < INF; p++)
                    sum += g->el[p].type == E_CHAR ? cc[p] : g->r[g->el[p].a].minlen;
                if (sum < g->r[r].minlen) { g->r[r].minlen = (int)sum; changed = 1; }
            }
    }
    for (size_t i = g->n_el; i-- > 0;) {
        const gel *e = &g->el[i];
        long v = e->type == E_END ? 0 : (long)(e->type == E_CHAR ? cc[i] : g->r[e->a].minlen) + g->rest[i + 1];
        g->rest[i] = v > INF ? INF : (int)v;
    }
    free(cc);
    for (size_t r = g->n_r; r-- > 0;) /* the last made first: a referenced rule before its referrer */
        if (g->r[r].minlen >= INF)
            return perr_at(g->name, g->r[r].line, g->r[r].col, "%s can never end (every alternative recurses)",
                           rule_desc(g, (int)r, d, sizeof d));
    return LMA_OK;
}

/* ---- the public side ---------------------------------------------------------------------- */

lma_status lma_grammar_compile(const char *text, size_t len, const char *name, const unsigned char *byte_tok,
                               lma_grammar **out) {
    *out = NULL;
    lma_grammar *g = lma_calloc(1, sizeof *g, "grammar");
    if (!g) return LMA_ERR_NOMEM;
    g->name = name ? name : "grammar";
    parser p = {g, text, len, 0, g->name, 0, 0, 0};
    lma_status s = parse(&p);
    if (s == LMA_OK) s = analyse(g, byte_tok);
    if (s == LMA_OK) {
        lma_grammar_reset(g);
        if (!g->st.n) s = lma_error(LMA_ERR_NOMEM, "out of memory");
    }
    if (s != LMA_OK) { lma_grammar_free(g); return s; }
    *out = g;
    return LMA_OK;
}
