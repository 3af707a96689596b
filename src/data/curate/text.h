/* Text utilities shared by the curation commands: a fast 64-bit hash, the word
 * normalization of lm-evaluation-harness (lower-case ASCII letters, delete ASCII
 * punctuation, split on whitespace) used by dedup and decontam, and a classifier of
 * response formats (JSON, YAML, Markdown, code, plain).
 * Ownership: lma_words is caller-owned (zero-init; lma_words_free); nothing here
 * allocates except through it. */
#ifndef LMA_CURATE_TEXT_H
#define LMA_CURATE_TEXT_H
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

uint64_t lma_hash64(const void *data, size_t n, uint64_t seed);
static inline uint64_t lma_mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Normalized words of a text: text (NUL-terminated) holds the words separated by
 * one space; hash[i] is the hash of word i. */
typedef struct {
    char *text; size_t text_len, text_cap;
    uint64_t *hash;   /* (n) */
    size_t n, cap;
} lma_words;

/* Replaces w's content with the normalized words of s[0..n). */
lma_status lma_words_norm(const char *s, size_t n, lma_words *w);
void lma_words_free(lma_words *w);

/* Hash of the n-gram of words hash[i..i+k) (order-sensitive). */
static inline uint64_t lma_ngram_hash(const uint64_t *hash, size_t k) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ k;
    for (size_t j = 0; j < k; j++) h = lma_mix64(h ^ hash[j]) + j;
    return h;
}

typedef enum {
    LMA_TFMT_PLAIN = 0,
    LMA_TFMT_JSON,
    LMA_TFMT_YAML,
    LMA_TFMT_MARKDOWN,
    LMA_TFMT_CODE,
    LMA_TFMT_COUNT
} lma_text_format;
/* JSON: the trimmed text parses as a JSON object or array. Code: a ``` fence or
 * mostly code-like lines. YAML: >= 2 lines, all "key: value" or "- item" with at
 * least one key. Markdown: headings, lists, tables, bold or links. Else plain. */
lma_text_format lma_text_format_of(const char *s, size_t n);
const char *lma_text_format_name(lma_text_format f);

/* Unicode scripts for the language mix (dominant script of the letters). */
typedef enum {
    LMA_SCRIPT_NONE = 0, LMA_SCRIPT_LATIN, LMA_SCRIPT_CYRILLIC, LMA_SCRIPT_GREEK,
    LMA_SCRIPT_ARABIC, LMA_SCRIPT_HEBREW, LMA_SCRIPT_DEVANAGARI, LMA_SCRIPT_THAI,
    LMA_SCRIPT_HAN, LMA_SCRIPT_KANA, LMA_SCRIPT_HANGUL, LMA_SCRIPT_OTHER, LMA_SCRIPT_COUNT
} lma_script;
lma_script lma_script_of(const char *s, size_t n);
const char *lma_script_name(lma_script s);
#endif
