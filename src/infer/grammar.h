/* GBNF grammars for constrained decoding (--grammar F): llama.cpp's grammar format, compiled
 * into a pushdown automaton over code points that json_constraint.c's token mask drives
 * (lma_grammar_constraint_new in infer/json_constraint.h is the way in; this header is
 * what that file calls). docs/generate.md, "Any grammar: --grammar F", has the subset.
 *
 * Syntax: rules `name ::= alternatives`; `|` alternation; `( )` groups; postfix `*`, `+`, `?`,
 * `{m}`, `{m,}`, `{m,n}`; string literals "..." and character classes [a-z0-9_], [^"\\],
 * with the escapes \n \r \t \\ \" \' \[ \] \- \xHH \uHHHH \UHHHHHHHH; `.` any character;
 * rule references; `#` comments to the end of the line. Whitespace and newlines separate
 * elements anywhere; a rule ends where the next `name ::=` begins. The start rule is `root`.
 * Characters are Unicode code points: the bytes a token adds are decoded as UTF-8 and a
 * class matches a whole code point (text that is not UTF-8 is never produced). Refused at
 * compile time, with the file's line:column: syntax errors, an undefined or twice-defined
 * rule, no `root`, left recursion (also a repetition of something that can be empty), a
 * rule that can never end, a class nothing can be produced for, a count above 256, a
 * repetition that copies more than 65,536 elements. Limits while decoding: 256 positions a
 * stack, 512 stacks a state, 131,072 rule expansions a character (what lies beyond is
 * dropped: text only it would allow is never produced; what is produced stays valid).
 *
 * State: the set of stacks of a nondeterministic pushdown automaton (llama.cpp's), each a
 * list of positions in the rules, top = the next character element to match; an empty
 * stack means the output may end here. Generation stops once no stack can continue. The
 * budget: each position's fewest bytes to the end of its alternative are precomputed, so
 * the fewest bytes that complete a state is a sum per stack (a minimum over stacks), and a
 * token is allowed only when that fits the tokens left (one token a byte, checked at
 * creation as for JSON).
 *
 * Ownership: the grammar owns its compiled rules and scratch states; the caller (the
 * constraint) owns the token pieces it passes in. */
#ifndef LMA_INFER_GRAMMAR_H
#define LMA_INFER_GRAMMAR_H
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

typedef struct lma_grammar lma_grammar;

/* Compiles text (len bytes; name prefixes error messages: "name:line:col: ..."). byte_tok[b]:
 * 1 when the vocabulary has a token of the single byte b (NULL: a validator, every byte). */
lma_status lma_grammar_compile(const char *text, size_t len, const char *name, const unsigned char *byte_tok,
                               lma_grammar **out);
/* A second automaton of the same grammar, at the start, with its own state and scratch; it
 * shares g's compiled rules, so g must outlive it. */
lma_status lma_grammar_clone(const lma_grammar *g, lma_grammar **out);
void lma_grammar_free(lma_grammar *g);
void lma_grammar_reset(lma_grammar *g);
/* fewest bytes of any complete output */
int lma_grammar_min_bytes(const lma_grammar *g);
/* as lma_json_constraint_mask; piece/plen: (n_pieces) the bytes each token adds (plen <= 0:
 * never allowed) */
lma_status lma_grammar_mask(lma_grammar *g, unsigned char *const *piece, const int *plen, int n_pieces, float *logits,
                            int V, int tokens_left, const int32_t *eos_ids, int n_eos);
/* the naive mask, the oracle of the one above: every token fed byte by byte on a copy */
lma_status lma_grammar_mask_ref(lma_grammar *g, unsigned char *const *piece, const int *plen, int n_pieces, float *logits,
                                int V, int tokens_left, const int32_t *eos_ids, int n_eos);
/* feeds bytes; 0 when rejected (the state is then undefined: reset) */
int lma_grammar_feed(lma_grammar *g, const unsigned char *b, size_t n);
/* the output may end here / nothing can follow */
int lma_grammar_can_end(const lma_grammar *g);
int lma_grammar_done(const lma_grammar *g);
/* 1 when text is a complete output of the grammar (a recognizer by the same automaton) */
int lma_grammar_matches(lma_grammar *g, const char *text, size_t len);
#endif
