/* Internal structures of the tokenizer (src/tok/ only). */
#ifndef LMA_TOK_INTERNAL_H
#define LMA_TOK_INTERNAL_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "core/status.h"
#include "tok/tokenizer.h"

/* ---- string -> int32 hash map (keys copied into a pool) ---- */
typedef struct {
    char *pool;
    size_t pool_len, pool_cap;
    size_t *off;       /* (n) key offsets in pool */
    uint32_t *len;     /* (n) key lengths */
    int32_t *val;      /* (n) */
    size_t n, cap;
    int32_t *slots;    /* (nslots) entry index or -1 */
    size_t nslots;     /* power of two */
} tok_strmap;

uint64_t lma_tok_hash(const void *p, size_t n);
/* Integer hash for merge pairs (a << 32 | b). */
static inline uint64_t tok_mix64(uint64_t k) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ULL; k ^= k >> 33;
    return k;
}
lma_status lma_tok_strmap_put(tok_strmap *m, const char *k, size_t n, int32_t v); /* overwrites */
int32_t lma_tok_strmap_get(const tok_strmap *m, const char *k, size_t n);           /* -1 if absent */
void lma_tok_strmap_free(tok_strmap *m);

/* ---- utf8 helpers ---- */
/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid there. */
int lma_tok_utf8_len(const unsigned char *s, size_t n);
/* Decodes one char of valid UTF-8 (as checked by lma_tok_utf8_len). */
uint32_t lma_tok_utf8_dec(const unsigned char *s, int len);
int lma_tok_utf8_enc(uint32_t c, char *out);
int lma_tok_is_whitespace(uint32_t c); /* Unicode White_Space (Rust char::is_whitespace) */
int lma_tok_is_alnum(uint32_t c);      /* Rust char::is_alphanumeric */
int lma_tok_is_punct(uint32_t c);      /* BERT punctuation: ASCII punctuation or Unicode P* */

/* ---- components ---- */
enum { NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_LOWER, NORM_PREPEND, NORM_REPLACE, NORM_BERT };
typedef struct {
    int type;
    char *a; size_t alen;  /* prepend text / replace literal */
    char *b; size_t blen;  /* replace content */
    pcre2_code *re;        /* replace regex (or NULL for a literal) */
    int clean_text, cjk, strip_accents, lowercase; /* BertNormalizer */
} tok_norm;

enum { PRE_BYTELEVEL, PRE_SPLIT, PRE_METASPACE, PRE_DIGITS, PRE_BERT };
enum { BEH_REMOVED, BEH_ISOLATED, BEH_MERGED_PREV, BEH_MERGED_NEXT, BEH_CONTIGUOUS };
enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };
typedef struct {
    int type;
    int add_prefix_space, use_regex;     /* ByteLevel */
    pcre2_code *re; char *lit; size_t litlen; int behavior, invert; /* Split */
    char *re_src;                        /* Split: the regex as written (NULL for a literal) */
    char repl[8]; int repl_len; int scheme, split; /* Metaspace */
    int individual;                      /* Digits */
} tok_pre;

enum { DEC_BYTELEVEL, DEC_METASPACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_REPLACE, DEC_WORDPIECE };
typedef struct {
    int type;
    char repl[8]; int repl_len; int scheme;   /* Metaspace */
    uint32_t strip_c; int start, stop;         /* Strip */
    char *a; size_t alen; char *b; size_t blen; /* Replace; WordPiece: a = the prefix */
    int cleanup;                               /* WordPiece */
} tok_dec;

typedef struct {
    char *content; size_t len;   /* as written */
    char *ncontent; size_t nlen; /* normalized form (normalized tokens) */
    int32_t id;
    int special, lstrip, rstrip, single_word, normalized;
} tok_added;

/* ---- word cache: word bytes -> (ids, byte lengths); sharded, each shard locked ---- */
#define TOK_CACHE_SHARDS 16
#define TOK_CACHE_SHARD_CAP 8192 /* entries per shard; full shards stop inserting */
#define TOK_CACHE_MAX_WORD 256   /* longer words are not cached (as HF) */
typedef struct {
    uint64_t hash;
    char *key; uint32_t klen;
    int32_t *ids; uint32_t *starts, *ends; uint32_t n; /* all in one allocation starting at key */
} tok_cache_entry;
typedef struct {
    pthread_mutex_t mu;
    tok_cache_entry *slots; /* (2*TOK_CACHE_SHARD_CAP) open addressing, key NULL = empty */
    size_t count;
} tok_cache_shard;

struct lma_tokenizer {
    /* model */
    tok_strmap vocab;      /* model vocab, token strings as in tokenizer.json */
    tok_strmap raw;        /* byte-level: raw bytes -> id for tokens made of mapped chars */
    int byte_level;        /* the pre-tokenizer ends in ByteLevel: words are raw bytes */
    int32_t byte_id[256];  /* byte-level: id of the mapped char of each byte, -1 absent */
    int32_t bf_id[256];    /* <0xXX> tokens, -1 absent */
    int byte_fallback, fuse_unk, ignore_merges;
    int meta_split;        /* no token has "▁" after a non-"▁" char and "▁" is in the vocab */
    int32_t unk_id;        /* -1: none */
    /* WordPiece model (instead of BPE): greedy longest match, continuation pieces carry
     * wp_prefix ("##"); a word longer than wp_max_chars chars, or with no match, is unk_id */
    int wordpiece; char wp_prefix[16]; int wp_prefix_len; int wp_max_chars;
    /* merges: (a,b) -> rank, new id */
    uint64_t *mkeys; int32_t *mrank, *mnew; size_t mslots; size_t n_merges;
    /* ids */
    int32_t n_ids;         /* max id + 1 */
    char **id_str; uint32_t *id_len;     /* (n_ids) token string (NULL: no token) */
    char **id_raw; int32_t *id_rawlen;   /* (n_ids) byte-level decoded bytes, -1 = not mappable */
    unsigned char *id_special;           /* (n_ids) added token with special:true */
    unsigned char *id_added;             /* (n_ids) */
    /* added tokens */
    tok_added *added; size_t n_added;
    tok_strmap added_map;  /* content -> id */
    /* matching index: set 0 = raw text (normalized:false), set 1 = normalized text;
     * aidx[set] lists added-token indices sorted by first byte, astart[set][b] bounds */
    int32_t *aidx[2]; size_t astart[2][257];
    /* pipeline */
    tok_norm *norms; size_t n_norms;
    tok_pre *pres; size_t n_pres;
    tok_dec *decs; size_t n_decs; int has_decoder;
    int32_t *post_pre, *post_post; size_t n_post_pre, n_post_post;
    /* tokenizer_config.json */
    char *bos_token, *eos_token, *chat_template;
    /* cache */
    tok_cache_shard *cache; /* (TOK_CACHE_SHARDS) */
};

/* Byte-level map (GPT-2 bytes_to_unicode). */
extern const uint16_t lma_tok_byte_to_char[256];
int lma_tok_char_to_byte(uint32_t c); /* -1 when c is not a mapped char */

/* Applies the normalizer steps to s. *out malloc'd (len *olen); *al malloc'd (olen+1)
 * original offsets given the input's offsets in `in_al` (NULL: base+i). */
lma_status lma_tok_normalize(const lma_tokenizer *t, const char *s, size_t n, const int32_t *in_al, size_t base,
                         char **out, size_t *olen, int32_t **al);
/* Compiles a pattern with PCRE2 (UTF, UCP) and JIT. */
lma_status lma_tok_regex_compile(const char *pat, size_t len, const char *ctx, pcre2_code **out);

/* Builds aidx/astart (end of loading). */
lma_status lma_tok_build_added_index(lma_tokenizer *t);

/* tokenizer.json text + tokenizer_config.json text (NULL: none) -> tokenizer; ctx names the source. */
lma_status lma_tok_load_texts(const char *json, size_t len, const char *config_json, const char *ctx, lma_tokenizer **out);
/* lma_tok_load of a GGUF file (tok_gguf.c). */
lma_status lma_tok_load_gguf(const char *path, lma_tokenizer **out);

/* The decoder chain over token strings; returns malloc'd text. */
lma_status lma_tok_decode_tokens(const lma_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                             char **text, size_t *len);
/* GGUF: llama.cpp's tokenizer.ggml.pre name of a Split regex (NULL when none matches). */
const char *lma_tok_gguf_pre_name(const char *re);
#endif
