/* Checks for generation tasks: a model's output against a reference.
 *
 *   exact   output and answer equal after Python-style strip()
 *   number  the numbers equal: from the text after the last "####" when there is one
 *           (GSM8K's "#### 72"), else the last number in the text; commas and a
 *           leading '$' are ignored ("1,234.5" = 1234.5); equal within 1e-9 relative
 *   json    the output (strip()ped, a ``` or ```json fence removed) is valid JSON and,
 *           when keys are given, an object holding all of them
 *   yaml    the output is a YAML block mapping in the subset lmadapt reads (see
 *           lma_gen_check_yaml) holding all the keys at its top level
 *
 * All functions are pure: no allocation survives them; they never fail. */
#ifndef LMA_EVAL_GENCHECK_H
#define LMA_EVAL_GENCHECK_H
#include <stddef.h>

typedef enum { LMA_CHECK_EXACT = 0, LMA_CHECK_NUMBER, LMA_CHECK_JSON, LMA_CHECK_YAML, LMA_CHECK_COUNT } lma_gen_check;

const char *lma_gen_check_name(lma_gen_check c);
/* -1 when the name is unknown */
int lma_gen_check_from_name(const char *name);

/* 1 and *out when a number is found as described above, else 0. */
int lma_extract_number(const char *text, size_t len, double *out);
int lma_gen_check_exact(const char *out, size_t len, const char *answer);
int lma_gen_check_number(const char *out, size_t len, const char *answer);
/* [*b, *e) of text: Python-style strip(), then a ``` or ```json fence removed */
void lma_gen_unfence(const char *text, size_t len, size_t *b, size_t *e);
/* *valid: parses at all; returns 1 when valid and every key is present. */
int lma_gen_check_json(const char *out, size_t len, const char *const *keys, size_t n_keys, int *valid);
/* want: a JSON object. 1 when the first JSON object of the output (parsed from its first
 * '{', text around it allowed) has want's value at every key of want (cJSON_Compare, exact);
 * *valid: lma_gen_check_json of the output with want's keys (the whole output is the object,
 * a fence aside). want not an object: returns 0 and *valid = -1. */
int lma_gen_check_json_fields(const char *out, size_t len, const char *want, int *valid);
/* YAML subset: a block mapping "key: value" at indent 0 (plain, 'single' or "double"
 * quoted keys), nested lines indented deeper (their content not checked beyond tabs
 * used for indentation, which YAML forbids), comments and a leading "---"; a value
 * opening a flow collection ([ or {) must close its brackets on that line. */
int lma_gen_check_yaml(const char *out, size_t len, const char *const *keys, size_t n_keys, int *valid);
#endif
