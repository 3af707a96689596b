/* Constrained decoding: the output is a complete JSON value, valid against a schema when
 * one is given, even when max_tokens is reached (docs/generate.md, "Guaranteed JSON").
 *
 * The grammar is a byte-level pushdown automaton (a stack of frames: object, array,
 * string, number, literal, enum, key). Before each token is sampled, every token of the
 * vocabulary is tried on a copy of the state with the bytes it adds
 * (lma_tok_piece_bytes); a token is allowed when every byte is accepted and the output
 * can still be closed within the tokens left: the fewest bytes that complete the value
 * (closing strings and brackets, the required keys with their shortest values) never
 * exceed the tokens left, which holds because the vocabulary has a token for each byte
 * (checked at creation). Disallowed tokens get -inf logits; sampling then runs as usual.
 * The end-of-sequence token is allowed only once the value is complete, and generation
 * stops as soon as it is.
 *
 * Schema subset (draft 2020-12 keywords): type (object, array, string, number, integer,
 * boolean, null), properties, required, items, enum, additionalProperties (false; with
 * properties only those keys are produced, each at most once), and the annotations
 * title, description, $schema, $id, default, examples. Anything else (anyOf, $ref,
 * pattern, minLength, minItems, const, ...) is refused with the list of what is
 * supported. Whitespace between tokens is allowed (at most 16 bytes a gap).
 *
 * YAML (lma_yaml_constraint_new, --format yaml): the same mask and budget machinery over
 * a second automaton for a YAML subset, a block mapping of plain scalars and block
 * sequences of plain scalars:
 *     key: value\n          key = [A-Za-z_][A-Za-z0-9_-]* (at most 64 bytes)
 *     key:\n  - item\n  - item\n
 * a value or item is a plain scalar: it starts with a letter or digit, then letters,
 * digits, space and . , _ - ( ) / ' + % $ = ; ! ? (at most 256 bytes; no ':' or '#', so
 * nothing reads as a nested mapping or a comment). Indentation is exactly two spaces
 * before "- ". The document is complete after its first value or item; end-of-sequence is
 * allowed from then on at a line's end or start (there is no closing bracket: a YAML
 * output ends at EOS or max_tokens, always parsable). Keys are not checked for repeats.
 *
 * Ownership: lma_json_constraint_new copies what it needs from the schema; the caller
 * frees with lma_json_constraint_free. */
#ifndef LMA_INFER_JSON_CONSTRAINT_H
#define LMA_INFER_JSON_CONSTRAINT_H
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include "tok/tokenizer.h"

typedef struct lma_json_constraint lma_json_constraint;

/* schema NULL: any JSON object (the "json" format). */
lma_status lma_json_constraint_new(const lma_tokenizer *tok, const cJSON *schema, lma_json_constraint **out);
/* Validation by the same automaton: *valid = 1 when text (no surrounding whitespace beyond
 * 16 leading bytes) is one complete value the constraint for schema (NULL: any object)
 * could have produced. Fails only for an unsupported schema (message as _new). */
lma_status lma_json_schema_check(const cJSON *schema, const char *text, size_t len, int *valid);
/* The YAML subset above (no schema). */
lma_status lma_yaml_constraint_new(const lma_tokenizer *tok, lma_json_constraint **out);
/* A GBNF grammar (--grammar F; infer/grammar.h has the subset): the same mask, budget and
 * stop rules over the grammar's automaton; the output is complete once no stack can
 * continue (end-of-sequence is allowed wherever root may end). name prefixes messages
 * ("name:line:col: ..."). */
lma_status lma_grammar_constraint_new(const lma_tokenizer *tok, const char *text, size_t len, const char *name,
                                      lma_json_constraint **out);
/* Validation by the same automaton: *valid = 1 when text is a complete output of the grammar
 * (fails only when the grammar does not compile). */
lma_status lma_grammar_check(const char *grammar, size_t glen, const char *name, const char *text, size_t len, int *valid);
/* A second constraint of the same schema, format or grammar, at the start, with its own
 * state: one for each sequence decoded at once (lma_gen_seq_new clones the request's). It
 * shares c's tables (the token pieces, the compiled schema or grammar), so c must outlive it. */
lma_status lma_json_constraint_clone(const lma_json_constraint *c, lma_json_constraint **out);
void lma_json_constraint_free(lma_json_constraint *c);
/* Back to the start (a new output). */
void lma_json_constraint_reset(lma_json_constraint *c);
/* The fewest tokens any complete output takes (for a budget check before generating). */
int lma_json_constraint_min_tokens(const lma_json_constraint *c);
/* logits (V): disallowed tokens set to -inf; tokens_left: tokens that may still be
 * generated after this one. eos_ids: allowed only when the value is complete. Returns
 * LMA_ERR_ARG when nothing is allowed (cannot happen with a byte-complete vocabulary). */
lma_status lma_json_constraint_mask(lma_json_constraint *c, float *logits, int V, int tokens_left,
                                    const int32_t *eos_ids, int n_eos);
/* Feeds the chosen token; *complete = 1 once the JSON value is complete. */
lma_status lma_json_constraint_accept(lma_json_constraint *c, int32_t id, int *complete);
#endif
