/* The tokenizer of a GGUF file: its tokenizer.ggml.* metadata turned into the
 * tokenizer.json and tokenizer_config.json texts that transformers' GGUF loader
 * builds (transformers 5.25, integrations/gguf/gguf_tokenizer_mapping.py), then loaded
 * by the one tokenizer.json loader (tok_load.c). No second engine.
 *
 * What transformers builds (and so what is written here):
 *   tokenizer.ggml.model "gpt2" -> GPT2Tokenizer: byte-level BPE; a token with a char
 *     outside the byte alphabet is respelled as the alphabet chars of its UTF-8 bytes;
 *     pre-tokenizer ByteLevel(GPT-2 regex), or, when tokenizer.ggml.pre names a known
 *     split (llama-bpe/llama3, qwen2, tekken, gpt-4o, ...), Split(regex, Isolated) +
 *     ByteLevel(use_regex=false); decoder ByteLevel; no unk, no byte fallback.
 *   "llama" -> LlamaTokenizer: SentencePiece BPE, byte_fallback, fuse_unk, model unk
 *     null; Metaspace(prepend_scheme "first", split false) whatever
 *     tokenizer.ggml.add_space_prefix says; decoder Replace+ByteFallback+Fuse+Strip.
 *     Merges from the file or, when absent (the usual case), derived from the vocab and
 *     the scores (generate_merges). Architecture phi3: Prepend+Replace normalizer and
 *     no pre-tokenizer. Gemma files need more (respelled spaces, merges by position)
 *     and are refused.
 *   Added tokens, in transformers' order: the builder class's default specials
 *     ("<|endoftext|>" for gpt2; "<s>", "</s>", "<unk>" for llama) where the vocab has
 *     them (transformers appends a missing one with a new id past the vocab, e.g. a
 *     Llama 3 GGUF gains "<|endoftext|>" at id 128256, a row no embedding has: lmadapt
 *     does not); then the control tokens (type 3,
 *     special; for gpt2 only those spelled in the byte alphabet); then the user-defined
 *     ones (type 4, not special) present in the vocab; then bos/eos/unk/pad by id.
 *   Post-processor: TemplateProcessing with BOS when tokenizer.ggml.add_bos_token
 *     (default true for "llama", false for "gpt2"), EOS when add_eos_token.
 *
 * Where llama.cpp (src/llama-vocab.cpp) differs -- we follow transformers:
 *   - smollm: llama.cpp splits every digit (\p{N}) before the GPT-2 regex; transformers
 *     has no split for "smollm" and uses plain ByteLevel. The SmolLM vocab has no
 *     multi-digit token, so the ids agree on digits.
 *   - default / missing pre for gpt2: llama.cpp uses its own "default" regexes
 *     ([\p{P}$+<=>^~|]+, GPT-2, \p{N}+, [0-9][0-9][0-9]); transformers plain GPT-2.
 *   - llama3 / llama-bpe / tekken: llama.cpp sets ignore_merges (and forces add_bos);
 *     transformers keeps ignore_merges false and add_bos from the file.
 *   - "mistral" is not a llama.cpp pre name (it refuses the file); transformers falls
 *     back to GPT-2 ByteLevel. Mistral's byte-level vocab is "tekken".
 *   - qwen2: same regex, but transformers' (?i:'s|...) also folds non-ASCII case
 *     variants (U+017F, U+212A) where llama.cpp has '[sS]...
 *   - SentencePiece: llama.cpp honours add_space_prefix and prepends a space after
 *     every special token too; transformers always prepends "▁" once, at the start.
 *     llama.cpp maps unknown chars to unk; transformers' model has no unk token.
 *   - llama.cpp matches control tokens in text only when asked (parse_special);
 *     transformers always does. A gpt2 control token outside the byte alphabet is
 *     matched by llama.cpp, skipped by transformers.
 *   - the phantom default specials above exist neither in llama.cpp nor here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/io.h"
#include "core/json.h"
#include "format/gguf.h"
#include "tok/tok_internal.h"

#define GG_MAX_IDS (1 << 24)
#define META "\xE2\x96\x81"

/* transformers' GGUF_PRE_TOKENIZER_SPLITS */
static const char LLAMA3_SPLIT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char TEKKEN_SPLIT[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char GPT4O_SPLIT[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_SPLIT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN35_SPLIT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const struct { const char *name, *re; } SPLITS[] = {
    {"llama3", LLAMA3_SPLIT}, {"llama-v3", LLAMA3_SPLIT}, {"llama-bpe", LLAMA3_SPLIT}, {"falcon3", LLAMA3_SPLIT},
    {"falcon-h1", LLAMA3_SPLIT}, {"pixtral", LLAMA3_SPLIT}, {"midm-2.0", LLAMA3_SPLIT}, {"lfm2", LLAMA3_SPLIT},
    {"jina-v5-nano", LLAMA3_SPLIT}, {"dbrx", LLAMA3_SPLIT}, {"smaug-bpe", LLAMA3_SPLIT},
    {"tekken", TEKKEN_SPLIT},
    {"qwen2", QWEN2_SPLIT}, {"deepseek-r1-qwen", QWEN2_SPLIT}, {"kormo", QWEN2_SPLIT}, {"f2llmv2", QWEN2_SPLIT},
    {"megrez", QWEN2_SPLIT},
    {"qwen35", QWEN35_SPLIT},
    {"gpt-4o", GPT4O_SPLIT}, {"llama4", GPT4O_SPLIT}, {"kanana2", GPT4O_SPLIT}, {"talkie", GPT4O_SPLIT},
    {"minimax-m2", GPT4O_SPLIT},
};

/* the name llama.cpp knows for each split (the first of SPLITS is transformers' spelling) */
const char *lma_tok_gguf_pre_name(const char *re) {
    static const struct { const char *re, *name; } names[] = {
        {LLAMA3_SPLIT, "llama-bpe"}, {QWEN2_SPLIT, "qwen2"}, {TEKKEN_SPLIT, "tekken"}, {GPT4O_SPLIT, "gpt-4o"},
        {QWEN35_SPLIT, "qwen35"},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(re, names[i].re)) return names[i].name;
    return NULL;
}

typedef struct {
    const char *content; size_t len; /* points into gg strings or a literal */
    int32_t id;
    int special;
} gg_added;

typedef struct {
    const lma_gguf *g;
    const char *path;
    int bl, phi3;                /* byte-level (gpt2); phi3 layout */
    uint64_t n;
    const lma_gguf_str *tok;     /* (n) as stored */
    char **vs; size_t *vl;       /* (n) vocab spelling, NUL-terminated (respelled for gpt2) */
    tok_strmap vocab;            /* spelling -> last id */
    tok_strmap orig;             /* stored token -> last id (generate_merges) */
    const lma_gguf_kv *scores, *types, *merges;
    int64_t sid[4];              /* bos, eos, unk, pad ids or -1 */
    int add_bos, add_eos;
    char *model, *pre, *arch, *chat_template;
    gg_added *added; size_t n_added;
    tok_strmap added_map;        /* content -> index into added */
} gg;

static void gg_free(gg *s) {
    if (s->vs) for (uint64_t i = 0; i < s->n; i++) free(s->vs[i]);
    free(s->vs); free(s->vl);
    lma_tok_strmap_free(&s->vocab); lma_tok_strmap_free(&s->orig); lma_tok_strmap_free(&s->added_map);
    free(s->added);
    free(s->model); free(s->pre); free(s->arch); free(s->chat_template);
}

static int utf8_valid(const char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        int l = lma_tok_utf8_len((const unsigned char *)p + i, n - i);
        if (!l) return 0;
        i += (size_t)l;
    }
    return 1;
}

static size_t cp_len(const char *p, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)p[i] & 0xC0) != 0x80;
    return c;
}

/* The array under key: present, an array of elem_ok element type, and of length n (n 0: any). */
static lma_status get_array(const gg *s, const char *key, int want_str, uint64_t n, const lma_gguf_kv **out) {
    const lma_gguf_kv *kv = lma_gguf_find(s->g, key);
    *out = NULL;
    if (!kv) return LMA_OK;
    if (kv->type != LMA_GGUF_ARRAY)
        return lma_error(LMA_ERR_FORMAT, "%s: %s must be an array", s->path, key);
    int t = kv->arr_type;
    int ok = want_str ? t == LMA_GGUF_STRING
                      : (t != LMA_GGUF_STRING && t != LMA_GGUF_ARRAY && t != LMA_GGUF_BOOL && t < LMA_GGUF_NTYPES);
    if (!ok) return lma_error(LMA_ERR_FORMAT, "%s: %s must be an array of %s", s->path, key, want_str ? "strings" : "numbers");
    if (n && kv->arr_n != n)
        return lma_error(LMA_ERR_FORMAT, "%s: %s has %llu entries but tokenizer.ggml.tokens has %llu", s->path, key,
                         (unsigned long long)kv->arr_n, (unsigned long long)n);
    *out = kv;
    return LMA_OK;
}

static lma_status read_meta(gg *s) {
    int found = 0;
    LMA_TRY(lma_gguf_get_str(s->g, "tokenizer.ggml.model", &s->model, &found));
    if (!found) return lma_error(LMA_ERR_FORMAT, "%s: tokenizer.ggml.model is missing (the file carries no tokenizer)", s->path);
    LMA_TRY(lma_gguf_get_str(s->g, "general.architecture", &s->arch, NULL));
    LMA_TRY(lma_gguf_get_str(s->g, "tokenizer.ggml.pre", &s->pre, NULL));
    LMA_TRY(lma_gguf_get_str(s->g, "tokenizer.chat_template", &s->chat_template, NULL));
    if (!strcmp(s->model, "gpt2")) s->bl = 1;
    else if (!strcmp(s->model, "llama")) {
        if (s->arch && !strncmp(s->arch, "gemma", 5))
            return lma_error(LMA_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model \"llama\" with general.architecture \"%s\" "
                             "(Gemma's GGUF tokenizer) is not supported", s->path, s->arch);
        s->phi3 = s->arch && !strcmp(s->arch, "phi3");
    } else
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model \"%s\" is not supported (supported: gpt2, llama)",
                         s->path, s->model);
    const lma_gguf_kv *tk = NULL;
    LMA_TRY(get_array(s, "tokenizer.ggml.tokens", 1, 0, &tk));
    if (!tk) return lma_error(LMA_ERR_FORMAT, "%s: tokenizer.ggml.tokens is missing", s->path);
    if (tk->arr_n == 0 || tk->arr_n > GG_MAX_IDS)
        return lma_error(LMA_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries (expected 1..%d)", s->path,
                         (unsigned long long)tk->arr_n, GG_MAX_IDS);
    s->n = tk->arr_n; s->tok = tk->arr_str;
    LMA_TRY(get_array(s, "tokenizer.ggml.scores", 0, s->n, &s->scores));
    LMA_TRY(get_array(s, "tokenizer.ggml.token_type", 0, s->n, &s->types));
    LMA_TRY(get_array(s, "tokenizer.ggml.merges", 1, 0, &s->merges));
    static const char *idk[4] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                 "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"};
    for (int i = 0; i < 4; i++) {
        s->sid[i] = -1;
        LMA_TRY(lma_gguf_get_i64(s->g, idk[i], &s->sid[i], &found));
        if (found && (s->sid[i] < 0 || (uint64_t)s->sid[i] >= s->n))
            return lma_error(LMA_ERR_FORMAT, "%s: %s = %lld is outside the %llu tokens", s->path, idk[i],
                             (long long)s->sid[i], (unsigned long long)s->n);
        if (!found) s->sid[i] = -1;
    }
    s->add_bos = !s->bl; /* llama.cpp adds BOS to a SentencePiece vocab that does not say otherwise; so does transformers */
    s->add_eos = 0;
    LMA_TRY(lma_gguf_get_bool(s->g, "tokenizer.ggml.add_bos_token", &s->add_bos, NULL));
    LMA_TRY(lma_gguf_get_bool(s->g, "tokenizer.ggml.add_eos_token", &s->add_eos, NULL));
    return LMA_OK;
}

static lma_status build_vocab(gg *s) {
    s->vs = lma_calloc(s->n, sizeof *s->vs, "gguf vocab");
    s->vl = lma_calloc(s->n, sizeof *s->vl, "gguf vocab");
    if (!s->vs || !s->vl) return LMA_ERR_NOMEM;
    for (uint64_t i = 0; i < s->n; i++) {
        const char *p = s->tok[i].s;
        size_t n = (size_t)s->tok[i].len;
        if (memchr(p, 0, n) || !utf8_valid(p, n))
            return lma_error(LMA_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%llu] is not valid UTF-8 text (or holds a NUL)",
                             s->path, (unsigned long long)i);
        int respell = 0;
        if (s->bl)
            for (size_t j = 0; j < n && !respell;) {
                int l = lma_tok_utf8_len((const unsigned char *)p + j, n - j);
                if (lma_tok_char_to_byte(lma_tok_utf8_dec((const unsigned char *)p + j, l)) < 0) respell = 1;
                j += (size_t)l;
            }
        char *d;
        size_t dl = 0;
        if (respell) { /* transformers: "".join(byte_encoder[b] for b in token.encode()) */
            d = malloc(n * 2 + 1);
            if (!d) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", s->path);
            for (size_t j = 0; j < n; j++) dl += (size_t)lma_tok_utf8_enc(lma_tok_byte_to_char[(unsigned char)p[j]], d + dl);
        } else {
            d = malloc(n + 1);
            if (!d) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", s->path);
            memcpy(d, p, n); dl = n;
        }
        d[dl] = 0;
        s->vs[i] = d; s->vl[i] = dl;
        LMA_TRY(lma_tok_strmap_put(&s->vocab, d, dl, (int32_t)i)); /* a repeated token keeps its last id (a dict) */
        LMA_TRY(lma_tok_strmap_put(&s->orig, p, n, (int32_t)i));
    }
    return LMA_OK;
}

/* ---- added tokens, simulating tokenizers' AddedVocabulary ---- */
static lma_status add_token(gg *s, const char *c, size_t n, int special) {
    if (!n || lma_tok_strmap_get(&s->added_map, c, n) >= 0) return LMA_OK;
    int32_t id = lma_tok_strmap_get(&s->vocab, c, n);
    if (id < 0) { /* a new id: the model's vocab size, or past the largest added id */
        int32_t vsz = (int32_t)s->vocab.n, mx = -1;
        for (size_t i = 0; i < s->n_added; i++) if (s->added[i].id > mx) mx = s->added[i].id;
        id = mx < 0 ? vsz : (mx >= vsz ? mx + 1 : vsz);
    }
    gg_added *a = realloc(s->added, (s->n_added + 1) * sizeof *a);
    if (!a) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", s->path);
    s->added = a;
    a[s->n_added] = (gg_added){c, n, id, special};
    LMA_TRY(lma_tok_strmap_put(&s->added_map, c, n, (int32_t)s->n_added));
    s->n_added++;
    return LMA_OK;
}

static int64_t type_of(const gg *s, uint64_t i) { return s->types ? lma_gguf_arr_i64(s->types, i) : 1; }

/* a default special of transformers' builder class, only where the vocab has it: one it
 * lacks would get an id past the model's embedding rows (a Llama 3 GGUF would report
 * 128257 tokens for 128256 rows), so lmadapt leaves it out -- the one place where ids can
 * differ from transformers, and only for text that spells that token */
static lma_status add_default(gg *s, const char *c) {
    size_t n = strlen(c);
    return lma_tok_strmap_get(&s->vocab, c, n) >= 0 ? add_token(s, c, n, 1) : LMA_OK;
}

static lma_status build_added(gg *s) {
    if (s->bl) LMA_TRY(add_default(s, "<|endoftext|>")); /* GPT2Tokenizer's default unk/bos/eos */
    else {                                                /* LlamaTokenizer's default bos, eos, unk */
        LMA_TRY(add_default(s, "<s>"));
        LMA_TRY(add_default(s, "</s>"));
        LMA_TRY(add_default(s, "<unk>"));
    }
    for (uint64_t i = 0; i < s->n; i++) { /* 3 = control: special */
        if (type_of(s, i) != 3) continue;
        if (s->bl && s->vs[i] && (s->vl[i] != s->tok[i].len || memcmp(s->vs[i], s->tok[i].s, s->vl[i]))) continue;
        LMA_TRY(add_token(s, s->tok[i].s, (size_t)s->tok[i].len, 1));
    }
    for (uint64_t i = 0; i < s->n; i++) { /* 4 = user-defined: added, not special, when the vocab has it */
        if (type_of(s, i) != 4) continue;
        if (lma_tok_strmap_get(&s->vocab, s->tok[i].s, (size_t)s->tok[i].len) < 0) continue;
        LMA_TRY(add_token(s, s->tok[i].s, (size_t)s->tok[i].len, 0));
    }
    for (int k = 0; k < 4; k++) /* bos, eos, unk, pad of the file */
        if (s->sid[k] >= 0) LMA_TRY(add_token(s, s->tok[s->sid[k]].s, (size_t)s->tok[s->sid[k]].len, 1));
    return LMA_OK;
}

/* ---- merges ---- */
typedef struct {
    double score;
    uint32_t ll, lr;   /* code points */
    uint64_t seq;
    uint32_t tok, cut; /* token index, byte offset of the cut */
} gg_cand;

static int cand_cmp(const void *x, const void *y) {
    const gg_cand *a = x, *b = y;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->ll != b->ll) return a->ll > b->ll ? -1 : 1;
    if (a->lr != b->lr) return a->lr > b->lr ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

typedef struct { int32_t l, r; uint32_t cut; } gg_local;
static int local_cmp(const void *x, const void *y) {
    const gg_local *a = x, *b = y;
    if (a->l != b->l) return a->l < b->l ? -1 : 1;
    return (a->r > b->r) - (a->r < b->r);
}

static lma_status push_merge(cJSON *arr, const char *a, size_t al, const char *b, size_t bl, const char *ctx) {
    char *x = malloc(al + 1), *y = malloc(bl + 1);
    cJSON *pair = cJSON_CreateArray();
    if (!x || !y || !pair) { free(x); free(y); cJSON_Delete(pair); return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx); }
    memcpy(x, a, al); x[al] = 0; memcpy(y, b, bl); y[bl] = 0;
    cJSON *sx = cJSON_CreateString(x), *sy = cJSON_CreateString(y);
    free(x); free(y);
    if (!sx || !sy) { cJSON_Delete(sx); cJSON_Delete(sy); cJSON_Delete(pair); return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx); }
    cJSON_AddItemToArray(pair, sx); cJSON_AddItemToArray(pair, sy);
    cJSON_AddItemToArray(arr, pair);
    return LMA_OK;
}

/* transformers' generate_merges(vocab, vocab_scores): every cut of every token into two
 * tokens, per token ordered by (id left, id right), all stably sorted by (score, code
 * points left, code points right) descending. */
static lma_status generate_merges(gg *s, cJSON *arr) {
    if (!s->scores)
        return lma_error(LMA_ERR_FORMAT, "%s: tokenizer.ggml.merges is missing and there is no tokenizer.ggml.scores to "
                         "derive the merges from", s->path);
    tok_strmap first = {0};
    lma_status st = LMA_OK;
    for (uint64_t i = s->n; i-- > 0 && st == LMA_OK;) st = lma_tok_strmap_put(&first, s->tok[i].s, (size_t)s->tok[i].len, (int32_t)i);
    gg_cand *c = NULL; size_t nc = 0, cap = 0;
    gg_local *loc = NULL; size_t loccap = 0;
    for (uint64_t i = 0; i < s->n && st == LMA_OK; i++) {
        const char *p = s->tok[i].s;
        size_t n = (size_t)s->tok[i].len;
        if (lma_tok_strmap_get(&first, p, n) != (int32_t)i) continue; /* dict order: first occurrence, last score */
        double score = lma_gguf_arr_f64(s->scores, (uint64_t)lma_tok_strmap_get(&s->orig, p, n));
        size_t nl = 0;
        for (size_t cut = 1; cut < n; cut++) {
            if (((unsigned char)p[cut] & 0xC0) == 0x80) continue;
            int32_t l = lma_tok_strmap_get(&s->orig, p, cut), r = lma_tok_strmap_get(&s->orig, p + cut, n - cut);
            if (l < 0 || r < 0) continue;
            if ((st = lma_grow(&loc, &loccap, nl + 1, sizeof *loc, 64, s->path))) break;
            loc[nl++] = (gg_local){l, r, (uint32_t)cut};
        }
        if (st != LMA_OK) break;
        if (nl > 1) qsort(loc, nl, sizeof *loc, local_cmp);
        for (size_t k = 0; k < nl; k++) {
            if ((st = lma_grow(&c, &cap, nc + 1, sizeof *c, 1024, s->path))) break;
            uint32_t cut = loc[k].cut;
            c[nc] = (gg_cand){score, (uint32_t)cp_len(p, cut), (uint32_t)cp_len(p + cut, n - cut), nc, (uint32_t)i, cut};
            nc++;
        }
    }
    if (st == LMA_OK && nc > 1) qsort(c, nc, sizeof *c, cand_cmp);
    for (size_t k = 0; k < nc && st == LMA_OK; k++) {
        const lma_gguf_str *t = &s->tok[c[k].tok];
        st = push_merge(arr, t->s, c[k].cut, t->s + c[k].cut, (size_t)t->len - c[k].cut, s->path);
    }
    free(c); free(loc);
    lma_tok_strmap_free(&first);
    return st;
}

static lma_status file_merges(gg *s, cJSON *arr) {
    for (uint64_t i = 0; i < s->merges->arr_n; i++) {
        const char *p = s->merges->arr_str[i].s;
        size_t n = (size_t)s->merges->arr_str[i].len;
        const char *sp = memchr(p, ' ', n);
        if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - p)) || memchr(p, 0, n))
            return lma_error(LMA_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] \"%.*s\" is not two tokens split by one space",
                             s->path, (unsigned long long)i, (int)(n > 60 ? 60 : n), p);
        size_t al = (size_t)(sp - p), bl = n - al - 1;
        const char *bad = NULL; size_t badl = 0;
        if (lma_tok_strmap_get(&s->vocab, p, al) < 0) { bad = p; badl = al; }
        else if (lma_tok_strmap_get(&s->vocab, sp + 1, bl) < 0) { bad = sp + 1; badl = bl; }
        if (bad)
            return lma_error(LMA_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] \"%.*s\": \"%.*s\" is not a token", s->path,
                             (unsigned long long)i, (int)(n > 60 ? 60 : n), p, (int)(badl > 60 ? 60 : badl), bad);
        char *cat = malloc(n);
        if (!cat) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", s->path);
        memcpy(cat, p, al); memcpy(cat + al, sp + 1, bl);
        int ok = lma_tok_strmap_get(&s->vocab, cat, al + bl) >= 0;
        free(cat);
        if (!ok)
            return lma_error(LMA_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] \"%.*s\": the merged token is not in the vocab",
                             s->path, (unsigned long long)i, (int)(n > 60 ? 60 : n), p);
        LMA_TRY(push_merge(arr, p, al, sp + 1, bl, s->path));
    }
    return LMA_OK;
}

/* ---- JSON assembly ---- */
static cJSON *str_n(const char *p, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, p, n); d[n] = 0;
    cJSON *o = cJSON_CreateString(d);
    free(d);
    return o;
}

#define ADD(obj, k, v) do { cJSON *v_ = (v); if (!v_) goto nomem; cJSON_AddItemToObject((obj), (k), v_); } while (0)
#define PUSH(arr, v) do { cJSON *v_ = (v); if (!v_) goto nomem; cJSON_AddItemToArray((arr), v_); } while (0)

static cJSON *obj_type(const char *type) {
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "type", type)) { cJSON_Delete(o); return NULL; }
    return o;
}

static cJSON *pattern(const char *kind, const char *v) {
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, kind, v)) { cJSON_Delete(o); return NULL; }
    return o;
}

/* "<tok>:0"-style TemplateProcessing pieces */
static cJSON *tp_special(const char *id, int type_id) {
    cJSON *o = cJSON_CreateObject(), *in = cJSON_CreateObject();
    if (!o || !in || !cJSON_AddStringToObject(in, "id", id) || !cJSON_AddNumberToObject(in, "type_id", type_id)) {
        cJSON_Delete(o); cJSON_Delete(in); return NULL;
    }
    cJSON_AddItemToObject(o, "SpecialToken", in);
    return o;
}
static cJSON *tp_seq(const char *id, int type_id) {
    cJSON *o = cJSON_CreateObject(), *in = cJSON_CreateObject();
    if (!o || !in || !cJSON_AddStringToObject(in, "id", id) || !cJSON_AddNumberToObject(in, "type_id", type_id)) {
        cJSON_Delete(o); cJSON_Delete(in); return NULL;
    }
    cJSON_AddItemToObject(o, "Sequence", in);
    return o;
}

static int32_t added_id(const gg *s, int64_t tok) {
    int32_t k = lma_tok_strmap_get(&s->added_map, s->tok[tok].s, (size_t)s->tok[tok].len);
    return k >= 0 ? s->added[k].id : -1;
}

static char *tok_cstr(const gg *s, int64_t i) {
    if (i < 0) return NULL;
    char *d = malloc((size_t)s->tok[i].len + 1);
    if (d) { memcpy(d, s->tok[i].s, (size_t)s->tok[i].len); d[s->tok[i].len] = 0; }
    return d;
}

static lma_status build_post(const gg *s, cJSON *root) {
    char *bos = tok_cstr(s, s->sid[0]), *eos = tok_cstr(s, s->sid[1]);
    if ((s->sid[0] >= 0 && !bos) || (s->sid[1] >= 0 && !eos)) { free(bos); free(eos); return lma_error(LMA_ERR_NOMEM, "%s: out of memory", s->path); }
    int ab = s->add_bos && bos, ae = s->add_eos && eos;
    cJSON *pp = obj_type("TemplateProcessing"), *single = NULL, *pair = NULL, *sp = NULL;
    if (!pp) goto nomem;
    cJSON_AddItemToObject(root, "post_processor", pp);
    single = cJSON_CreateArray(); pair = cJSON_CreateArray(); sp = cJSON_CreateObject();
    if (!single || !pair || !sp) { cJSON_Delete(single); cJSON_Delete(pair); cJSON_Delete(sp); goto nomem; }
    cJSON_AddItemToObject(pp, "single", single);
    cJSON_AddItemToObject(pp, "pair", pair);
    cJSON_AddItemToObject(pp, "special_tokens", sp);
    if (ab) PUSH(single, tp_special(bos, 0));
    PUSH(single, tp_seq("A", 0));
    if (ae) PUSH(single, tp_special(eos, 0));
    if (ab) PUSH(pair, tp_special(bos, 0));
    PUSH(pair, tp_seq("A", 0));
    if (ae) PUSH(pair, tp_special(eos, 0));
    if (ab) PUSH(pair, tp_special(bos, 1));
    PUSH(pair, tp_seq("B", 1));
    if (ae) PUSH(pair, tp_special(eos, 1));
    for (int k = 0; k < 2; k++) {
        const char *t = k ? eos : bos;
        if (!(k ? ae : ab) || cJSON_GetObjectItemCaseSensitive(sp, t)) continue;
        cJSON *d = cJSON_CreateObject(), *ids = cJSON_CreateArray(), *toks = cJSON_CreateArray();
        if (!d || !ids || !toks) { cJSON_Delete(d); cJSON_Delete(ids); cJSON_Delete(toks); goto nomem; }
        cJSON_AddItemToObject(sp, t, d);
        cJSON_AddItemToObject(d, "ids", ids);
        cJSON_AddItemToObject(d, "tokens", toks);
        ADD(d, "id", cJSON_CreateString(t));
        PUSH(ids, cJSON_CreateNumber(added_id(s, s->sid[k])));
        PUSH(toks, cJSON_CreateString(t));
    }
    free(bos); free(eos);
    return LMA_OK;
nomem:
    free(bos); free(eos);
    return lma_error(LMA_ERR_NOMEM, "%s: out of memory", s->path);
}

static lma_status build_json(gg *s, char **out) {
    cJSON *root = cJSON_CreateObject(), *x, *y;
    lma_status st = LMA_OK;
    if (!root) goto nomem;
    ADD(root, "version", cJSON_CreateString("1.0"));
    ADD(root, "truncation", cJSON_CreateNull());
    ADD(root, "padding", cJSON_CreateNull());
    cJSON *at = cJSON_CreateArray();
    if (!at) goto nomem;
    cJSON_AddItemToObject(root, "added_tokens", at);
    for (size_t i = 0; i < s->n_added; i++) {
        const gg_added *a = &s->added[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) goto nomem;
        cJSON_AddItemToArray(at, o);
        ADD(o, "id", cJSON_CreateNumber(a->id));
        ADD(o, "content", str_n(a->content, a->len));
        ADD(o, "single_word", cJSON_CreateFalse());
        ADD(o, "lstrip", cJSON_CreateFalse());
        ADD(o, "rstrip", cJSON_CreateFalse());
        ADD(o, "normalized", cJSON_CreateFalse());
        ADD(o, "special", cJSON_CreateBool(a->special));
    }
    /* normalizer */
    if (s->phi3) {
        x = obj_type("Sequence");
        if (!x) goto nomem;
        cJSON_AddItemToObject(root, "normalizer", x);
        cJSON *arr = cJSON_CreateArray();
        if (!arr) goto nomem;
        cJSON_AddItemToObject(x, "normalizers", arr);
        y = obj_type("Prepend");
        if (!y) goto nomem;
        cJSON_AddItemToArray(arr, y);
        ADD(y, "prepend", cJSON_CreateString(META));
        y = obj_type("Replace");
        if (!y) goto nomem;
        cJSON_AddItemToArray(arr, y);
        ADD(y, "pattern", pattern("String", " "));
        ADD(y, "content", cJSON_CreateString(META));
    } else
        ADD(root, "normalizer", cJSON_CreateNull());
    /* pre-tokenizer */
    if (s->bl) {
        const char *split = NULL;
        for (size_t i = 0; s->pre && i < sizeof SPLITS / sizeof SPLITS[0]; i++)
            if (!strcmp(s->pre, SPLITS[i].name)) split = SPLITS[i].re;
        cJSON *bl = obj_type("ByteLevel");
        if (!bl) goto nomem;
        if (!cJSON_AddFalseToObject(bl, "add_prefix_space") || !cJSON_AddTrueToObject(bl, "trim_offsets") ||
            !cJSON_AddBoolToObject(bl, "use_regex", !split)) { cJSON_Delete(bl); goto nomem; }
        if (split) {
            x = obj_type("Sequence");
            if (!x) { cJSON_Delete(bl); goto nomem; }
            cJSON_AddItemToObject(root, "pre_tokenizer", x);
            cJSON *arr = cJSON_CreateArray();
            if (!arr) { cJSON_Delete(bl); goto nomem; }
            cJSON_AddItemToObject(x, "pretokenizers", arr);
            y = obj_type("Split");
            if (!y) { cJSON_Delete(bl); goto nomem; }
            cJSON_AddItemToArray(arr, y);
            cJSON_AddItemToArray(arr, bl);
            ADD(y, "pattern", pattern("Regex", split));
            ADD(y, "behavior", cJSON_CreateString("Isolated"));
            ADD(y, "invert", cJSON_CreateFalse());
        } else
            cJSON_AddItemToObject(root, "pre_tokenizer", bl);
    } else if (s->phi3)
        ADD(root, "pre_tokenizer", cJSON_CreateNull());
    else {
        x = obj_type("Metaspace");
        if (!x) goto nomem;
        cJSON_AddItemToObject(root, "pre_tokenizer", x);
        ADD(x, "replacement", cJSON_CreateString(META));
        ADD(x, "prepend_scheme", cJSON_CreateString("first"));
        ADD(x, "split", cJSON_CreateFalse());
    }
    st = build_post(s, root);
    if (st != LMA_OK) goto fail;
    /* decoder */
    if (s->bl) {
        x = obj_type("ByteLevel");
        if (!x) goto nomem;
        cJSON_AddItemToObject(root, "decoder", x);
        ADD(x, "add_prefix_space", cJSON_CreateTrue());
        ADD(x, "trim_offsets", cJSON_CreateTrue());
        ADD(x, "use_regex", cJSON_CreateTrue());
    } else {
        x = obj_type("Sequence");
        if (!x) goto nomem;
        cJSON_AddItemToObject(root, "decoder", x);
        cJSON *arr = cJSON_CreateArray();
        if (!arr) goto nomem;
        cJSON_AddItemToObject(x, "decoders", arr);
        y = obj_type("Replace");
        if (!y) goto nomem;
        cJSON_AddItemToArray(arr, y);
        ADD(y, "pattern", pattern("String", META));
        ADD(y, "content", cJSON_CreateString(" "));
        PUSH(arr, obj_type("ByteFallback"));
        PUSH(arr, obj_type("Fuse"));
        y = obj_type("Strip");
        if (!y) goto nomem;
        cJSON_AddItemToArray(arr, y);
        ADD(y, "content", cJSON_CreateString(" "));
        ADD(y, "start", cJSON_CreateNumber(1));
        ADD(y, "stop", cJSON_CreateNumber(0));
    }
    /* model */
    x = obj_type("BPE");
    if (!x) goto nomem;
    cJSON_AddItemToObject(root, "model", x);
    ADD(x, "dropout", cJSON_CreateNull());
    ADD(x, "unk_token", cJSON_CreateNull());
    ADD(x, "continuing_subword_prefix", s->bl ? cJSON_CreateString("") : cJSON_CreateNull());
    ADD(x, "end_of_word_suffix", s->bl ? cJSON_CreateString("") : cJSON_CreateNull());
    ADD(x, "fuse_unk", cJSON_CreateBool(!s->bl));
    ADD(x, "byte_fallback", cJSON_CreateBool(!s->bl));
    ADD(x, "ignore_merges", cJSON_CreateFalse());
    cJSON *vocab = cJSON_CreateObject();
    if (!vocab) goto nomem;
    cJSON_AddItemToObject(x, "vocab", vocab);
    for (uint64_t i = 0; i < s->n; i++) {
        if (lma_tok_strmap_get(&s->vocab, s->vs[i], s->vl[i]) != (int32_t)i) continue; /* a later duplicate owns it */
        cJSON *num = cJSON_CreateNumber((double)i);
        if (!num) goto nomem;
        cJSON_AddItemToObject(vocab, s->vs[i], num);
    }
    cJSON *merges = cJSON_CreateArray();
    if (!merges) goto nomem;
    cJSON_AddItemToObject(x, "merges", merges);
    st = s->merges ? file_merges(s, merges) : generate_merges(s, merges);
    if (st != LMA_OK) goto fail;
    *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return *out ? LMA_OK : lma_error(LMA_ERR_NOMEM, "%s: out of memory", s->path);
nomem:
    st = lma_error(LMA_ERR_NOMEM, "%s: out of memory", s->path);
fail:
    cJSON_Delete(root);
    return st;
}

static lma_status build_config(const gg *s, char **out) {
    cJSON *root = cJSON_CreateObject();
    if (!root) goto nomem;
    ADD(root, "add_bos_token", cJSON_CreateBool(s->add_bos && s->sid[0] >= 0));
    ADD(root, "add_eos_token", cJSON_CreateBool(s->add_eos && s->sid[1] >= 0));
    static const char *names[4] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    for (int k = 0; k < 4; k++)
        ADD(root, names[k], s->sid[k] >= 0 ? str_n(s->tok[s->sid[k]].s, (size_t)s->tok[s->sid[k]].len) : cJSON_CreateNull());
    if (s->chat_template) ADD(root, "chat_template", cJSON_CreateString(s->chat_template));
    ADD(root, "clean_up_tokenization_spaces", cJSON_CreateFalse());
    ADD(root, "model_max_length", cJSON_CreateNumber(1e30));
    ADD(root, "tokenizer_class", cJSON_CreateString("PreTrainedTokenizerFast"));
    *out = cJSON_Print(root);
    cJSON_Delete(root);
    return *out ? LMA_OK : lma_error(LMA_ERR_NOMEM, "%s: out of memory", s->path);
nomem:
    cJSON_Delete(root);
    return lma_error(LMA_ERR_NOMEM, "%s: out of memory", s->path);
}

lma_status lma_tok_gguf_json(const lma_gguf *g, char **tokenizer_json, char **tokenizer_config_json) {
    *tokenizer_json = NULL;
    if (tokenizer_config_json) *tokenizer_config_json = NULL;
    gg s = {0};
    s.g = g;
    s.path = lma_gguf_path(g) ? lma_gguf_path(g) : "GGUF";
    lma_status st = read_meta(&s);
    if (st == LMA_OK) st = build_vocab(&s);
    if (st == LMA_OK) st = build_added(&s);
    if (st == LMA_OK) st = build_json(&s, tokenizer_json);
    if (st == LMA_OK && tokenizer_config_json) st = build_config(&s, tokenizer_config_json);
    gg_free(&s);
    if (st != LMA_OK) {
        free(*tokenizer_json); *tokenizer_json = NULL;
        if (tokenizer_config_json) { free(*tokenizer_config_json); *tokenizer_config_json = NULL; }
    }
    return st;
}

lma_status lma_tok_load_gguf(const char *path, lma_tokenizer **out) {
    *out = NULL;
    lma_gguf *g = NULL;
    LMA_TRY(lma_gguf_open(path, &g));
    char *tj = NULL, *tc = NULL;
    lma_status st = lma_tok_gguf_json(g, &tj, &tc);
    lma_gguf_close(g);
    if (st == LMA_OK) {
        char ctx[4400];
        snprintf(ctx, sizeof ctx, "%s (its tokenizer.ggml.* metadata as tokenizer.json)", path);
        st = lma_tok_load_texts(tj, strlen(tj), tc, ctx, out);
    }
    free(tj); free(tc);
    return st;
}

lma_status lma_tok_save_files(const char *src, const char *dir) {
    char a[4200], b[4200];
    LMA_TRY(lma_mkdir_p(dir));
    if (lma_gguf_is_file(src)) {
        lma_gguf *g = NULL;
        LMA_TRY(lma_gguf_open(src, &g));
        char *tj = NULL, *tc = NULL;
        lma_status st = lma_tok_gguf_json(g, &tj, &tc);
        lma_gguf_close(g);
        if (st == LMA_OK) st = lma_path_join(b, sizeof b, dir, "tokenizer_config.json");
        if (st == LMA_OK) st = lma_write_file_atomic(b, tc, strlen(tc));
        if (st == LMA_OK) st = lma_path_join(b, sizeof b, dir, "tokenizer.json");
        if (st == LMA_OK) st = lma_write_file_atomic(b, tj, strlen(tj)); /* last: marks a complete copy */
        free(tj); free(tc);
        return st;
    }
    /* an HF folder: tokenizer.json last, its presence marks a complete copy */
    static const char *files[] = {"tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "tokenizer.json"};
    LMA_TRY(lma_path_join(a, sizeof a, src, "tokenizer.json"));
    if (!lma_file_exists(a)) return lma_error(LMA_ERR_IO, "%s: no tokenizer.json there (nor a GGUF file)", src);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        LMA_TRY(lma_path_join(a, sizeof a, src, files[i]));
        LMA_TRY(lma_path_join(b, sizeof b, dir, files[i]));
        if (lma_file_exists(a)) LMA_TRY(lma_copy_file(a, b));
    }
    return LMA_OK;
}
