/* Private to the GBNF grammar (src/infer/grammar_parse.c and src/infer/grammar.c only; no
 * other file includes it): the compiled form the parser builds and the automaton runs on
 * (elements, rules, the stacks of a state, struct lma_grammar), the limits, and the two
 * character-class tests both sides use. The public interface is infer/grammar.h. */
#ifndef LMA_INFER_GRAMMAR_INTERNAL_H
#define LMA_INFER_GRAMMAR_INTERNAL_H
#include "infer/grammar.h"

enum { E_END, E_CHAR, E_RULE };
#define INF (1 << 28)
#define MAX_DEPTH 256  /* positions in one stack */
#define MAX_STACKS 512 /* stacks in one state (more are dropped: text they alone allow is refused) */
#define MAX_REPEAT 256 /* n of {m,n} */
#define MAX_COPIES 65536 /* elements one repetition may copy */
#define MAX_EXPAND 131072 /* rule expansions one character may cause (more are dropped, as stacks) */

typedef struct {
    uint8_t type, neg;
    int32_t a, n; /* CHAR: ranges rg[2a .. 2(a+n)); RULE: a = the rule */
    int line, col;
} gel;

typedef struct {
    char *name; /* NULL for a group or repetition (what says which) */
    const char *what;
    int line, col, defined, nullable, minlen;
    int *alt; size_t n_alt, cap_alt; /* element index where each alternative starts */
} grule;

typedef struct {
    int32_t *d; size_t len, cap; /* stacks, each [depth, bottom .. top] */
    int n;                        /* stacks */
    uint32_t cp; int need, ulen;  /* a UTF-8 sequence begun: its bits so far, bytes still due, its length */
    uint32_t lo, hi;              /* the code points it can still become */
} gstate;

struct lma_grammar {
    gel *el; size_t n_el, cap_el;
    uint32_t *rg; size_t n_rg, cap_rg; /* range bounds, two a range */
    grule *r; size_t n_r, cap_r;
    int *rest;                         /* (n_el) fewest bytes from this position to the end of its alternative */
    int start;                         /* the element: a reference to root, then END */
    gstate st, a, b, t;
    gstate after[256];                 /* the mask's: the state after each first byte */
    unsigned char *whole;              /* (n_whole) per token: 1 when its non-ASCII bytes are whole UTF-8
                                          characters (made at the first mask) */
    int n_whole;
    uint64_t *ascii;                   /* (2 n_whole) per token: the ASCII bytes it holds, as a 128-bit set */
    unsigned char memo[256][256];      /* the mask's: second byte after each first byte: 0 refused,
                                          1 taken, 3 taken and the state stays, 255 not yet tried */
    int32_t stk[MAX_DEPTH + 1];
    long budget;                       /* expansions left for the current character */
    const char *name;
    const char *src; size_t len;
    int shared;                        /* a clone: el, rg, r and rest are its original's */
};

/* code point cp matches e */
int lma_grammar_el_match(const lma_grammar *g, const gel *e, uint32_t cp);
/* some code point in [lo, hi] matches e */
int lma_grammar_el_meets(const lma_grammar *g, const gel *e, uint32_t lo, uint32_t hi);
#endif
