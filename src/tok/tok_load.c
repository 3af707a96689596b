/* Loading tokenizer.json (+ tokenizer_config.json) into an lma_tokenizer.
 * Every component is checked; an unsupported one fails with its JSON path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/io.h"
#include "core/model_path.h"
#include "core/json.h"
#include "format/gguf.h"
#include "tok/tok_internal.h"

#define TOK_MAX_IDS (1 << 24)

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = 0; }
    return d;
}

static int utf8_ok(const char *s) {
    size_t n = strlen(s), i = 0;
    while (i < n) {
        int l = lma_tok_utf8_len((const unsigned char *)s + i, n - i);
        if (!l) return 0;
        i += (size_t)l;
    }
    return 1;
}

/* Strings that end up inside the text being tokenized must be valid UTF-8. */
static const char *jtext(const cJSON *o, const char *k, const char *ctx, lma_status *st) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v)) return NULL;
    if (!utf8_ok(v->valuestring)) { *st = lma_error(LMA_ERR_FORMAT, "%s: \"%s\" is not valid UTF-8", ctx, k); return NULL; }
    return v->valuestring;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jbool(const cJSON *o, const char *k, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

/* A pattern object {"String": s} or {"Regex": r}: literal into (lit,len) or regex. */
static lma_status parse_pattern(const cJSON *p, const char *ctx, char **lit, size_t *litlen, pcre2_code **re) {
    *lit = NULL; *litlen = 0; *re = NULL;
    if (!cJSON_IsObject(p)) return lma_error(LMA_ERR_FORMAT, "%s: \"pattern\" must be an object {\"String\"|\"Regex\": ...}", ctx);
    lma_status st = LMA_OK;
    const char *s = jtext(p, "String", ctx, &st);
    LMA_TRY(st);
    if (s) {
        *litlen = strlen(s);
        *lit = dupn(s, *litlen);
        return *lit ? LMA_OK : lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx);
    }
    const char *r = jstr(p, "Regex");
    if (r) return lma_tok_regex_compile(r, strlen(r), ctx, re);
    return lma_error(LMA_ERR_FORMAT, "%s: \"pattern\" needs \"String\" or \"Regex\"", ctx);
}

/* ---------------- normalizer ---------------- */
static lma_status add_norm(lma_tokenizer *t, const cJSON *n, const char *ctx) {
    if (cJSON_IsNull(n) || !n) return LMA_OK;
    const char *type = jstr(n, "type");
    if (!type) return lma_error(LMA_ERR_FORMAT, "%s: normalizer without \"type\"", ctx);
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(arr)) return lma_error(LMA_ERR_FORMAT, "%s: Sequence normalizer needs \"normalizers\"", ctx);
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) LMA_TRY(add_norm(t, it, ctx));
        return LMA_OK;
    }
    tok_norm nm = {0};
    if (!strcmp(type, "NFC")) nm.type = NORM_NFC;
    else if (!strcmp(type, "NFD")) nm.type = NORM_NFD;
    else if (!strcmp(type, "NFKC")) nm.type = NORM_NFKC;
    else if (!strcmp(type, "NFKD")) nm.type = NORM_NFKD;
    else if (!strcmp(type, "Lowercase")) nm.type = NORM_LOWER;
    else if (!strcmp(type, "BertNormalizer")) {
        nm.type = NORM_BERT;
        nm.clean_text = jbool(n, "clean_text", 1);
        nm.cjk = jbool(n, "handle_chinese_chars", 1);
        nm.lowercase = jbool(n, "lowercase", 1);
        nm.strip_accents = jbool(n, "strip_accents", nm.lowercase); /* null: follows lowercase */
    }
    else if (!strcmp(type, "Prepend")) {
        nm.type = NORM_PREPEND;
        lma_status st = LMA_OK;
        const char *p = jtext(n, "prepend", ctx, &st);
        LMA_TRY(st);
        if (!p) return lma_error(LMA_ERR_FORMAT, "%s: Prepend normalizer needs \"prepend\"", ctx);
        nm.alen = strlen(p); nm.a = dupn(p, nm.alen);
        if (!nm.a) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx);
    } else if (!strcmp(type, "Replace")) {
        nm.type = NORM_REPLACE;
        lma_status st = LMA_OK;
        const char *c = jtext(n, "content", ctx, &st);
        LMA_TRY(st);
        if (!c) return lma_error(LMA_ERR_FORMAT, "%s: Replace normalizer needs \"content\"", ctx);
        LMA_TRY(parse_pattern(cJSON_GetObjectItemCaseSensitive(n, "pattern"), ctx, &nm.a, &nm.alen, &nm.re));
        nm.blen = strlen(c); nm.b = dupn(c, nm.blen);
        if (!nm.b) { free(nm.a); if (nm.re) pcre2_code_free(nm.re); return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx); }
    } else
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported (supported: NFC, NFD, NFKC, NFKD, "
                         "Lowercase, Prepend, Replace, BertNormalizer, Sequence)", ctx, type);
    tok_norm *a = realloc(t->norms, (t->n_norms + 1) * sizeof *a);
    if (!a) { free(nm.a); free(nm.b); if (nm.re) pcre2_code_free(nm.re); return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx); }
    t->norms = a; t->norms[t->n_norms++] = nm;
    return LMA_OK;
}

/* ---------------- pre-tokenizer ---------------- */
static const char GPT2_RE[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static lma_status parse_repl(const cJSON *n, const char *ctx, char *repl, int *repl_len, int *scheme) {
    const char *r = jstr(n, "replacement");
    if (!r) r = "\xE2\x96\x81";
    size_t l = strlen(r);
    if (l == 0 || l > 4 || lma_tok_utf8_len((const unsigned char *)r, l) != (int)l)
        return lma_error(LMA_ERR_FORMAT, "%s: Metaspace \"replacement\" must be one character", ctx);
    memcpy(repl, r, l); repl[l] = 0; *repl_len = (int)l;
    const char *ps = jstr(n, "prepend_scheme");
    if (ps) {
        if (!strcmp(ps, "always")) *scheme = PREPEND_ALWAYS;
        else if (!strcmp(ps, "first")) *scheme = PREPEND_FIRST;
        else if (!strcmp(ps, "never")) *scheme = PREPEND_NEVER;
        else return lma_error(LMA_ERR_FORMAT, "%s: Metaspace prepend_scheme \"%s\" (expected always|first|never)", ctx, ps);
    } else
        *scheme = jbool(n, "add_prefix_space", 1) ? PREPEND_ALWAYS : PREPEND_NEVER;
    return LMA_OK;
}

static lma_status add_pre(lma_tokenizer *t, const cJSON *n, const char *ctx) {
    if (cJSON_IsNull(n) || !n) return LMA_OK;
    const char *type = jstr(n, "type");
    if (!type) return lma_error(LMA_ERR_FORMAT, "%s: pre_tokenizer without \"type\"", ctx);
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(n, "pretokenizers");
        if (!cJSON_IsArray(arr)) return lma_error(LMA_ERR_FORMAT, "%s: Sequence pre_tokenizer needs \"pretokenizers\"", ctx);
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) LMA_TRY(add_pre(t, it, ctx));
        return LMA_OK;
    }
    tok_pre p = {0};
    if (!strcmp(type, "ByteLevel")) {
        p.type = PRE_BYTELEVEL;
        p.add_prefix_space = jbool(n, "add_prefix_space", 1);
        p.use_regex = jbool(n, "use_regex", 1);
        if (p.use_regex) LMA_TRY(lma_tok_regex_compile(GPT2_RE, strlen(GPT2_RE), ctx, &p.re));
    } else if (!strcmp(type, "Split")) {
        p.type = PRE_SPLIT;
        const char *b = jstr(n, "behavior");
        if (!b) return lma_error(LMA_ERR_FORMAT, "%s: Split needs \"behavior\"", ctx);
        if (!strcmp(b, "Removed")) p.behavior = BEH_REMOVED;
        else if (!strcmp(b, "Isolated")) p.behavior = BEH_ISOLATED;
        else if (!strcmp(b, "MergedWithPrevious")) p.behavior = BEH_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) p.behavior = BEH_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) p.behavior = BEH_CONTIGUOUS;
        else return lma_error(LMA_ERR_FORMAT, "%s: Split behavior \"%s\" unknown", ctx, b);
        p.invert = jbool(n, "invert", 0);
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(n, "pattern");
        LMA_TRY(parse_pattern(pat, ctx, &p.lit, &p.litlen, &p.re));
        if (!p.re && p.litlen == 0) { free(p.lit); return lma_error(LMA_ERR_FORMAT, "%s: Split with an empty pattern", ctx); }
        if (p.re && !(p.re_src = dupn(jstr(pat, "Regex"), strlen(jstr(pat, "Regex"))))) {
            pcre2_code_free(p.re);
            return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx);
        }
    } else if (!strcmp(type, "Metaspace")) {
        p.type = PRE_METASPACE;
        LMA_TRY(parse_repl(n, ctx, p.repl, &p.repl_len, &p.scheme));
        p.split = jbool(n, "split", 1);
    } else if (!strcmp(type, "BertPreTokenizer")) {
        p.type = PRE_BERT;
    } else if (!strcmp(type, "Digits")) {
        p.type = PRE_DIGITS;
        p.individual = jbool(n, "individual_digits", 0);
    } else
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: pre_tokenizer \"%s\" is not supported (supported: ByteLevel, Split, "
                         "Metaspace, Digits, BertPreTokenizer, Sequence)", ctx, type);
    tok_pre *a = realloc(t->pres, (t->n_pres + 1) * sizeof *a);
    if (!a) { free(p.lit); free(p.re_src); if (p.re) pcre2_code_free(p.re); return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx); }
    t->pres = a; t->pres[t->n_pres++] = p;
    return LMA_OK;
}

/* ---------------- decoder ---------------- */
static lma_status add_dec(lma_tokenizer *t, const cJSON *n, const char *ctx) {
    if (cJSON_IsNull(n) || !n) return LMA_OK;
    const char *type = jstr(n, "type");
    if (!type) return lma_error(LMA_ERR_FORMAT, "%s: decoder without \"type\"", ctx);
    t->has_decoder = 1;
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(n, "decoders");
        if (!cJSON_IsArray(arr)) return lma_error(LMA_ERR_FORMAT, "%s: Sequence decoder needs \"decoders\"", ctx);
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) LMA_TRY(add_dec(t, it, ctx));
        return LMA_OK;
    }
    tok_dec d = {0};
    if (!strcmp(type, "ByteLevel")) d.type = DEC_BYTELEVEL;
    else if (!strcmp(type, "Metaspace")) { d.type = DEC_METASPACE; LMA_TRY(parse_repl(n, ctx, d.repl, &d.repl_len, &d.scheme)); }
    else if (!strcmp(type, "ByteFallback")) d.type = DEC_BYTEFALLBACK;
    else if (!strcmp(type, "Fuse")) d.type = DEC_FUSE;
    else if (!strcmp(type, "Strip")) {
        d.type = DEC_STRIP;
        const char *c = jstr(n, "content");
        size_t cl = c ? strlen(c) : 0;
        if (!c || !cl || lma_tok_utf8_len((const unsigned char *)c, cl) != (int)cl)
            return lma_error(LMA_ERR_FORMAT, "%s: Strip decoder \"content\" must be one character", ctx);
        d.strip_c = lma_tok_utf8_dec((const unsigned char *)c, (int)cl);
        int64_t a = 0, b = 0;
        LMA_TRY(lma_json_int(n, "start", 1, ctx, &a));
        LMA_TRY(lma_json_int(n, "stop", 1, ctx, &b));
        if (a < 0 || b < 0 || a > 1000000 || b > 1000000) return lma_error(LMA_ERR_FORMAT, "%s: Strip start/stop out of range", ctx);
        d.start = (int)a; d.stop = (int)b;
    } else if (!strcmp(type, "Replace")) {
        d.type = DEC_REPLACE;
        pcre2_code *re = NULL;
        LMA_TRY(parse_pattern(cJSON_GetObjectItemCaseSensitive(n, "pattern"), ctx, &d.a, &d.alen, &re));
        if (re) { pcre2_code_free(re); return lma_error(LMA_ERR_UNSUPPORTED, "%s: Replace decoder with a Regex pattern is not supported", ctx); }
        const char *c = jstr(n, "content");
        if (!c || !d.alen) { free(d.a); return lma_error(LMA_ERR_FORMAT, "%s: Replace decoder needs a non-empty pattern and \"content\"", ctx); }
        d.blen = strlen(c); d.b = dupn(c, d.blen);
    } else if (!strcmp(type, "WordPiece")) {
        d.type = DEC_WORDPIECE;
        const char *pf = jstr(n, "prefix");
        if (!pf) pf = "##";
        d.alen = strlen(pf); d.a = dupn(pf, d.alen);
        if (!d.a) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx);
        d.cleanup = jbool(n, "cleanup", 1);
    } else
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: decoder \"%s\" is not supported (supported: ByteLevel, Metaspace, "
                         "ByteFallback, Fuse, Strip, Replace, WordPiece, Sequence)", ctx, type);
    tok_dec *a = realloc(t->decs, (t->n_decs + 1) * sizeof *a);
    if (!a) { free(d.a); free(d.b); return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx); }
    t->decs = a; t->decs[t->n_decs++] = d;
    return LMA_OK;
}

/* ---------------- post-processor ---------------- */
static lma_status push_ids(int32_t **arr, size_t *n, const cJSON *ids, const char *ctx, int32_t n_ids) {
    const cJSON *it;
    cJSON_ArrayForEach(it, ids) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= n_ids)
            return lma_error(LMA_ERR_FORMAT, "%s: TemplateProcessing special token id out of the vocab", ctx);
        int32_t *a = realloc(*arr, (*n + 1) * sizeof *a);
        if (!a) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx);
        *arr = a; a[(*n)++] = (int32_t)it->valuedouble;
    }
    return LMA_OK;
}

static lma_status add_post(lma_tokenizer *t, const cJSON *n, const char *ctx) {
    if (cJSON_IsNull(n) || !n) return LMA_OK;
    const char *type = jstr(n, "type");
    if (!type) return lma_error(LMA_ERR_FORMAT, "%s: post_processor without \"type\"", ctx);
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(n, "processors");
        if (!cJSON_IsArray(arr)) return lma_error(LMA_ERR_FORMAT, "%s: Sequence post_processor needs \"processors\"", ctx);
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) LMA_TRY(add_post(t, it, ctx));
        return LMA_OK;
    }
    if (!strcmp(type, "ByteLevel")) return LMA_OK; /* only trims offsets */
    if (strcmp(type, "TemplateProcessing"))
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: post_processor \"%s\" is not supported (supported: TemplateProcessing, "
                         "ByteLevel, Sequence)", ctx, type);
    if (t->n_post_pre || t->n_post_post)
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: more than one TemplateProcessing", ctx);
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(n, "single");
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(n, "special_tokens");
    if (!cJSON_IsArray(single)) return lma_error(LMA_ERR_FORMAT, "%s: TemplateProcessing needs a \"single\" array", ctx);
    int seen_a = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, single) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        const cJSON *sq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
        if (sq) {
            const char *id = jstr(sq, "id");
            if (!id || strcmp(id, "A") || seen_a)
                return lma_error(LMA_ERR_FORMAT, "%s: TemplateProcessing \"single\" must hold the sequence A once", ctx);
            seen_a = 1;
        } else if (st) {
            const char *id = jstr(st, "id");
            const cJSON *def = id ? cJSON_GetObjectItemCaseSensitive(sp, id) : NULL;
            const cJSON *ids = def ? cJSON_GetObjectItemCaseSensitive(def, "ids") : NULL;
            if (!cJSON_IsArray(ids))
                return lma_error(LMA_ERR_FORMAT, "%s: TemplateProcessing special token \"%s\" missing from \"special_tokens\"",
                                 ctx, id ? id : "?");
            if (seen_a) LMA_TRY(push_ids(&t->post_post, &t->n_post_post, ids, ctx, t->n_ids));
            else LMA_TRY(push_ids(&t->post_pre, &t->n_post_pre, ids, ctx, t->n_ids));
        } else
            return lma_error(LMA_ERR_FORMAT, "%s: TemplateProcessing item is neither SpecialToken nor Sequence", ctx);
    }
    if (!seen_a) return lma_error(LMA_ERR_FORMAT, "%s: TemplateProcessing \"single\" lacks the sequence A", ctx);
    return LMA_OK;
}

/* ---------------- model ---------------- */
static lma_status merges_put(lma_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t nw) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = tok_mix64(k) & (t->mslots - 1);
    while (t->mkeys[i] != UINT64_MAX && t->mkeys[i] != k) i = (i + 1) & (t->mslots - 1);
    t->mkeys[i] = k; t->mrank[i] = rank; t->mnew[i] = nw; /* a repeated merge keeps the later rank, as HF's map */
    return LMA_OK;
}

static lma_status set_id(lma_tokenizer *t, int32_t id, const char *s, size_t n, const char *ctx) {
    if (t->id_str[id]) {
        if (t->id_len[id] == n && !memcmp(t->id_str[id], s, n)) return LMA_OK;
        if (t->id_added[id]) return LMA_OK; /* the added token wins for decoding */
    }
    char *d = dupn(s, n);
    if (!d) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx);
    free(t->id_str[id]);
    t->id_str[id] = d; t->id_len[id] = (uint32_t)n;
    return LMA_OK;
}

static lma_status parse_model(lma_tokenizer *t, const cJSON *model, const cJSON *added, const char *ctx) {
    if (!cJSON_IsObject(model)) return lma_error(LMA_ERR_FORMAT, "%s: \"model\" missing", ctx);
    const char *type = jstr(model, "type");
    if (type && strcmp(type, "BPE") && strcmp(type, "WordPiece"))
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: model \"%s\" is not supported (BPE, WordPiece)", ctx, type);
    const char *csp = jstr(model, "continuing_subword_prefix"), *ews = jstr(model, "end_of_word_suffix");
    if (type && !strcmp(type, "WordPiece")) {
        t->wordpiece = 1;
        if (!csp) csp = "##";
        if (strlen(csp) >= sizeof t->wp_prefix) return lma_error(LMA_ERR_FORMAT, "%s: model.continuing_subword_prefix is too long", ctx);
        t->wp_prefix_len = (int)strlen(csp);
        memcpy(t->wp_prefix, csp, (size_t)t->wp_prefix_len + 1);
        int64_t mx = 100;
        LMA_TRY(lma_json_int(model, "max_input_chars_per_word", 0, ctx, &mx));
        if (mx < 1 || mx > 1000000) return lma_error(LMA_ERR_FORMAT, "%s: model.max_input_chars_per_word out of range", ctx);
        t->wp_max_chars = (int)mx;
        if (!jstr(model, "unk_token")) return lma_error(LMA_ERR_FORMAT, "%s: WordPiece model needs \"unk_token\"", ctx);
        csp = ews = NULL;
    }
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (drop && !cJSON_IsNull(drop) && !(cJSON_IsNumber(drop) && drop->valuedouble == 0.0))
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: model.dropout is not supported", ctx);
    if ((csp && *csp) || (ews && *ews))
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: model.continuing_subword_prefix/end_of_word_suffix are not supported", ctx);
    t->byte_fallback = jbool(model, "byte_fallback", 0);
    t->fuse_unk = jbool(model, "fuse_unk", 0);
    t->ignore_merges = jbool(model, "ignore_merges", 0);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab)) return lma_error(LMA_ERR_FORMAT, "%s: model.vocab must be an object", ctx);
    int32_t max_id = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= TOK_MAX_IDS || it->valuedouble != (int32_t)it->valuedouble)
            return lma_error(LMA_ERR_FORMAT, "%s: model.vocab[\"%.40s\"]: id must be an integer in [0, %d)", ctx,
                             it->string ? it->string : "", TOK_MAX_IDS);
        int32_t id = (int32_t)it->valuedouble;
        LMA_TRY(lma_tok_strmap_put(&t->vocab, it->string, strlen(it->string), id));
        if (id > max_id) max_id = id;
    }
    if (cJSON_IsArray(added)) {
        cJSON_ArrayForEach(it, added) {
            int64_t id = -1;
            const char *c = jstr(it, "content");
            LMA_TRY(lma_json_int(it, "id", 1, ctx, &id));
            if (!c || id < 0 || id >= TOK_MAX_IDS)
                return lma_error(LMA_ERR_FORMAT, "%s: added_tokens entry needs \"content\" and an id in [0, %d)", ctx, TOK_MAX_IDS);
            if (!*c) return lma_error(LMA_ERR_FORMAT, "%s: added token %lld has empty content", ctx, (long long)id);
            if (id > max_id) max_id = (int32_t)id;
        }
    } else if (added && !cJSON_IsNull(added))
        return lma_error(LMA_ERR_FORMAT, "%s: \"added_tokens\" must be an array", ctx);
    t->n_ids = max_id + 1;
    size_t nid = (size_t)(t->n_ids > 0 ? t->n_ids : 1);
    t->id_str = lma_calloc(nid, sizeof *t->id_str, "vocab");
    t->id_len = lma_calloc(nid, sizeof *t->id_len, "vocab");
    t->id_special = lma_calloc(nid, 1, "vocab");
    t->id_added = lma_calloc(nid, 1, "vocab");
    if (!t->id_str || !t->id_len || !t->id_special || !t->id_added) return LMA_ERR_NOMEM;
    /* added tokens */
    if (cJSON_IsArray(added)) {
        size_t na = (size_t)cJSON_GetArraySize(added);
        t->added = lma_calloc(na ? na : 1, sizeof *t->added, "added tokens");
        if (!t->added) return LMA_ERR_NOMEM;
        cJSON_ArrayForEach(it, added) {
            tok_added *a = &t->added[t->n_added];
            int64_t id = 0;
            LMA_TRY(lma_json_int(it, "id", 1, ctx, &id));
            const char *c = jstr(it, "content");
            a->len = strlen(c); a->content = dupn(c, a->len);
            if (!a->content) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx);
            a->id = (int32_t)id;
            a->special = jbool(it, "special", 0);
            a->lstrip = jbool(it, "lstrip", 0);
            a->rstrip = jbool(it, "rstrip", 0);
            a->single_word = jbool(it, "single_word", 0);
            a->normalized = jbool(it, "normalized", !a->special);
            t->n_added++;
            t->id_added[a->id] = 1;
            if (a->special) t->id_special[a->id] = 1;
            LMA_TRY(set_id(t, a->id, a->content, a->len, ctx));
            LMA_TRY(lma_tok_strmap_put(&t->added_map, a->content, a->len, a->id));
        }
    }
    for (size_t e = 0; e < t->vocab.n; e++)
        LMA_TRY(set_id(t, t->vocab.val[e], t->vocab.pool + t->vocab.off[e], t->vocab.len[e], ctx));
    /* merges */
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (merges && !cJSON_IsArray(merges)) return lma_error(LMA_ERR_FORMAT, "%s: model.merges must be an array", ctx);
    size_t nm = merges ? (size_t)cJSON_GetArraySize(merges) : 0;
    t->mslots = 16;
    while (t->mslots < nm * 2 + 2) t->mslots *= 2;
    t->mkeys = lma_malloc(t->mslots * sizeof *t->mkeys, "merges");
    t->mrank = lma_malloc(t->mslots * sizeof *t->mrank, "merges");
    t->mnew = lma_malloc(t->mslots * sizeof *t->mnew, "merges");
    if (!t->mkeys || !t->mrank || !t->mnew) return LMA_ERR_NOMEM;
    memset(t->mkeys, 0xFF, t->mslots * sizeof *t->mkeys);
    char *buf = NULL; size_t bufcap = 0;
    int32_t rank = 0;
    lma_status st = LMA_OK;
    if (merges) cJSON_ArrayForEach(it, merges) {
        const char *a, *b; size_t al, bl;
        if (cJSON_IsString(it)) {
            const char *sp = strchr(it->valuestring, ' ');
            if (!sp) { st = lma_error(LMA_ERR_FORMAT, "%s: model.merges[%d] \"%.40s\" has no space", ctx, rank, it->valuestring); break; }
            a = it->valuestring; al = (size_t)(sp - a); b = sp + 1; bl = strlen(b);
            if (strchr(b, ' ')) { st = lma_error(LMA_ERR_FORMAT, "%s: model.merges[%d] has more than one space", ctx, rank); break; }
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            a = cJSON_GetArrayItem(it, 0)->valuestring; al = strlen(a);
            b = cJSON_GetArrayItem(it, 1)->valuestring; bl = strlen(b);
        } else { st = lma_error(LMA_ERR_FORMAT, "%s: model.merges[%d] must be \"a b\" or [\"a\",\"b\"]", ctx, rank); break; }
        int32_t ia = lma_tok_strmap_get(&t->vocab, a, al), ib = lma_tok_strmap_get(&t->vocab, b, bl);
        if (ia < 0 || ib < 0) { st = lma_error(LMA_ERR_FORMAT, "%s: model.merges[%d]: token \"%.*s\" is not in the vocab", ctx, rank,
                                               (int)(ia < 0 ? al : bl), ia < 0 ? a : b); break; }
        if (al + bl > bufcap) { bufcap = (al + bl) * 2 + 16; char *nb = realloc(buf, bufcap); if (!nb) { st = lma_error(LMA_ERR_NOMEM, "merges"); break; } buf = nb; }
        memcpy(buf, a, al); memcpy(buf + al, b, bl);
        int32_t in = lma_tok_strmap_get(&t->vocab, buf, al + bl);
        if (in < 0) { st = lma_error(LMA_ERR_FORMAT, "%s: model.merges[%d]: merged token \"%.*s\" is not in the vocab", ctx, rank,
                                     (int)(al + bl), buf); break; }
        merges_put(t, ia, ib, rank, in);
        rank++;
    }
    free(buf);
    t->n_merges = (size_t)rank;
    if (st != LMA_OK) return st;
    t->unk_id = -1;
    const char *unk = jstr(model, "unk_token");
    if (unk) {
        t->unk_id = lma_tok_strmap_get(&t->vocab, unk, strlen(unk));
        if (t->unk_id < 0) return lma_error(LMA_ERR_FORMAT, "%s: model.unk_token \"%.40s\" is not in the vocab", ctx, unk);
    }
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        t->bf_id[b] = lma_tok_strmap_get(&t->vocab, s, strlen(s));
    }
    return LMA_OK;
}

/* Byte-level tables: raw-byte vocab and per-id decoded bytes. */
static lma_status build_byte_level(lma_tokenizer *t) {
    size_t nid = (size_t)t->n_ids;
    t->id_raw = lma_calloc(nid ? nid : 1, sizeof *t->id_raw, "vocab");
    t->id_rawlen = lma_malloc((nid ? nid : 1) * sizeof *t->id_rawlen, "vocab");
    if (!t->id_raw || !t->id_rawlen) return LMA_ERR_NOMEM;
    for (size_t id = 0; id < nid; id++) {
        t->id_rawlen[id] = -1;
        const unsigned char *s = (const unsigned char *)t->id_str[id];
        if (!s) continue;
        size_t n = t->id_len[id], i = 0, o = 0;
        char *raw = malloc(n + 1);
        if (!raw) return lma_error(LMA_ERR_NOMEM, "vocab: out of memory");
        int ok = 1;
        while (i < n) {
            int l = lma_tok_utf8_len(s + i, n - i);
            int b = l ? lma_tok_char_to_byte(lma_tok_utf8_dec(s + i, l)) : -1;
            if (b < 0) { ok = 0; break; }
            raw[o++] = (char)b; i += (size_t)l;
        }
        if (!ok) { free(raw); continue; }
        t->id_raw[id] = raw; t->id_rawlen[id] = (int32_t)o;
    }
    /* the model vocab keyed by raw bytes (what BPE sees for byte-level words) */
    for (size_t e = 0; e < t->vocab.n; e++) {
        const unsigned char *s = (const unsigned char *)t->vocab.pool + t->vocab.off[e];
        size_t n = t->vocab.len[e], i = 0, o = 0;
        char tmp[1024];
        int ok = n <= sizeof tmp;
        while (ok && i < n) {
            int l = lma_tok_utf8_len(s + i, n - i);
            int b = l ? lma_tok_char_to_byte(lma_tok_utf8_dec(s + i, l)) : -1;
            if (b < 0) ok = 0;
            else { tmp[o++] = (char)b; i += (size_t)l; }
        }
        if (ok) LMA_TRY(lma_tok_strmap_put(&t->raw, tmp, o, t->vocab.val[e]));
    }
    for (int b = 0; b < 256; b++) {
        char c[4];
        int l = lma_tok_utf8_enc(lma_tok_byte_to_char[b], c);
        t->byte_id[b] = lma_tok_strmap_get(&t->vocab, c, (size_t)l);
    }
    return LMA_OK;
}

static lma_status init_cache(lma_tokenizer *t) {
    t->cache = lma_calloc(TOK_CACHE_SHARDS, sizeof *t->cache, "token cache");
    if (!t->cache) return LMA_ERR_NOMEM;
    for (int i = 0; i < TOK_CACHE_SHARDS; i++) pthread_mutex_init(&t->cache[i].mu, NULL);
    return LMA_OK;
}

lma_status lma_tok_load_json(const char *json, size_t len, const char *ctx, lma_tokenizer **out) {
    *out = NULL;
    if (!ctx) ctx = "tokenizer.json";
    cJSON *root = NULL;
    LMA_TRY(lma_json_parse(json, len, ctx, &root));
    lma_tokenizer *t = lma_calloc(1, sizeof *t, "tokenizer");
    if (!t) { cJSON_Delete(root); return LMA_ERR_NOMEM; }
    lma_status st = LMA_OK;
    char c2[512];
    if (!cJSON_IsObject(root)) st = lma_error(LMA_ERR_FORMAT, "%s: top level must be an object", ctx);
    if (st == LMA_OK) st = init_cache(t);
    if (st == LMA_OK)
        st = parse_model(t, cJSON_GetObjectItemCaseSensitive(root, "model"), cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), ctx);
    if (st == LMA_OK) { snprintf(c2, sizeof c2, "%s: normalizer", ctx); st = add_norm(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), c2); }
    if (st == LMA_OK) { snprintf(c2, sizeof c2, "%s: pre_tokenizer", ctx); st = add_pre(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), c2); }
    if (st == LMA_OK) { snprintf(c2, sizeof c2, "%s: post_processor", ctx); st = add_post(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), c2); }
    if (st == LMA_OK) { snprintf(c2, sizeof c2, "%s: decoder", ctx); st = add_dec(t, cJSON_GetObjectItemCaseSensitive(root, "decoder"), c2); }
    if (st == LMA_OK) {
        for (size_t i = 0; i < t->n_pres; i++)
            if (t->pres[i].type == PRE_BYTELEVEL && i + 1 != t->n_pres) {
                st = lma_error(LMA_ERR_UNSUPPORTED, "%s: pre_tokenizer: ByteLevel must be the last step", ctx);
                break;
            }
        t->byte_level = t->n_pres && t->pres[t->n_pres - 1].type == PRE_BYTELEVEL;
    }
    if (st == LMA_OK) st = build_byte_level(t); /* id_raw also serves the ByteLevel decoder */
    if (st == LMA_OK && !t->byte_level && lma_tok_strmap_get(&t->vocab, "\xE2\x96\x81", 3) >= 0) {
        t->meta_split = 1;
        for (size_t e = 0; e < t->vocab.n && t->meta_split; e++) {
            const char *s = t->vocab.pool + t->vocab.off[e];
            size_t n = t->vocab.len[e];
            for (size_t i = 1; i + 3 <= n; i++)
                if (!memcmp(s + i, "\xE2\x96\x81", 3) && (i < 3 || memcmp(s + i - 3, "\xE2\x96\x81", 3))) { t->meta_split = 0; break; }
        }
    }
    /* normalized added tokens are matched in their normalized form */
    for (size_t i = 0; st == LMA_OK && i < t->n_added; i++) {
        tok_added *a = &t->added[i];
        if (!a->normalized || !t->n_norms) continue;
        int32_t *al = NULL;
        st = lma_tok_normalize(t, a->content, a->len, NULL, 0, &a->ncontent, &a->nlen, &al);
        free(al);
        if (st == LMA_OK && a->nlen == 0) st = lma_error(LMA_ERR_FORMAT, "%s: added token \"%s\" normalizes to nothing", ctx, a->content);
    }
    if (st == LMA_OK) st = lma_tok_build_added_index(t);
    cJSON_Delete(root);
    if (st != LMA_OK) { lma_tok_free(t); return st; }
    *out = t;
    return LMA_OK;
}

static lma_status token_field(const cJSON *cfg, const char *k, const char *ctx, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, k);
    const char *s = NULL;
    if (cJSON_IsString(v)) s = v->valuestring;
    else if (cJSON_IsObject(v)) s = jstr(v, "content");
    else if (v && !cJSON_IsNull(v)) return lma_error(LMA_ERR_FORMAT, "%s: \"%s\" must be a string or an AddedToken object", ctx, k);
    if (s) { *out = dupn(s, strlen(s)); if (!*out) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", ctx); }
    return LMA_OK;
}

/* tokenizer_config.json: bos/eos tokens and the chat template */
static lma_status apply_config(lma_tokenizer *t, const cJSON *cfg, const char *path) {
    if (!cJSON_IsObject(cfg)) return lma_error(LMA_ERR_FORMAT, "%s: top level must be an object", path);
    LMA_TRY(token_field(cfg, "bos_token", path, &t->bos_token));
    LMA_TRY(token_field(cfg, "eos_token", path, &t->eos_token));
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    const char *s = NULL;
    if (cJSON_IsString(ct)) s = ct->valuestring;
    else if (cJSON_IsArray(ct)) { /* [{"name":..., "template":...}]: the "default" one */
        const cJSON *it;
        cJSON_ArrayForEach(it, ct) {
            const char *nm = jstr(it, "name");
            if (nm && !strcmp(nm, "default")) s = jstr(it, "template");
        }
    }
    if (s && !(t->chat_template = dupn(s, strlen(s)))) return lma_error(LMA_ERR_NOMEM, "%s: out of memory", path);
    return LMA_OK;
}

lma_status lma_tok_load_texts(const char *json, size_t len, const char *config_json, const char *ctx, lma_tokenizer **out) {
    *out = NULL;
    lma_tokenizer *t = NULL;
    LMA_TRY(lma_tok_load_json(json, len, ctx, &t));
    lma_status st = LMA_OK;
    if (config_json) {
        cJSON *cfg = NULL;
        st = lma_json_parse(config_json, strlen(config_json), ctx, &cfg);
        if (st == LMA_OK) st = apply_config(t, cfg, ctx);
        cJSON_Delete(cfg);
    }
    if (st != LMA_OK) { lma_tok_free(t); return st; }
    *out = t;
    return LMA_OK;
}

lma_status lma_tok_load(const char *where, lma_tokenizer **out) {
    *out = NULL;
    char dir[4096];
    LMA_TRY(lma_model_path_resolve(where, dir, sizeof dir)); /* a short name, a folder holding one .gguf */
    if (lma_gguf_is_file(dir)) return lma_tok_load_gguf(dir, out);
    char path[4096];
    LMA_TRY(lma_path_join(path, sizeof path, dir, "tokenizer.json"));
    char *txt = NULL; size_t n = 0;
    LMA_TRY(lma_read_file_max(path, LMA_LIMIT_TOKENIZER, &txt, &n));
    lma_tokenizer *t = NULL;
    lma_status st = lma_tok_load_json(txt, n, path, &t);
    free(txt);
    if (st != LMA_OK) return st;
    LMA_TRY(lma_path_join(path, sizeof path, dir, "tokenizer_config.json"));
    if (lma_file_exists(path)) {
        cJSON *cfg = NULL;
        st = lma_json_load(path, &cfg);
        if (st == LMA_OK) st = apply_config(t, cfg, path);
        cJSON_Delete(cfg);
    }
    if (st == LMA_OK && !t->chat_template) {
        st = lma_path_join(path, sizeof path, dir, "chat_template.jinja");
        if (st == LMA_OK && lma_file_exists(path)) st = lma_read_file_max(path, LMA_LIMIT_JSON, &t->chat_template, &n);
    }
    if (st != LMA_OK) { lma_tok_free(t); return st; }
    *out = t;
    return LMA_OK;
}

void lma_tok_free(lma_tokenizer *t) {
    if (!t) return;
    lma_tok_strmap_free(&t->vocab); lma_tok_strmap_free(&t->raw); lma_tok_strmap_free(&t->added_map);
    free(t->mkeys); free(t->mrank); free(t->mnew);
    for (int32_t i = 0; i < t->n_ids; i++) {
        if (t->id_str) free(t->id_str[i]);
        if (t->id_raw) free(t->id_raw[i]);
    }
    free(t->id_str); free(t->id_len); free(t->id_raw); free(t->id_rawlen); free(t->id_special); free(t->id_added);
    for (size_t i = 0; i < t->n_added; i++) { free(t->added[i].content); free(t->added[i].ncontent); }
    free(t->added); free(t->aidx[0]); free(t->aidx[1]);
    for (size_t i = 0; i < t->n_norms; i++) { free(t->norms[i].a); free(t->norms[i].b); if (t->norms[i].re) pcre2_code_free(t->norms[i].re); }
    free(t->norms);
    for (size_t i = 0; i < t->n_pres; i++) {
        free(t->pres[i].lit); free(t->pres[i].re_src);
        if (t->pres[i].re) pcre2_code_free(t->pres[i].re);
    }
    free(t->pres);
    for (size_t i = 0; i < t->n_decs; i++) { free(t->decs[i].a); free(t->decs[i].b); }
    free(t->decs);
    free(t->post_pre); free(t->post_post);
    free(t->bos_token); free(t->eos_token); free(t->chat_template);
    if (t->cache) {
        for (int s = 0; s < TOK_CACHE_SHARDS; s++) {
            tok_cache_shard *sh = &t->cache[s];
            if (sh->slots)
                for (size_t i = 0; i < 2 * TOK_CACHE_SHARD_CAP; i++) free(sh->slots[i].key);
            free(sh->slots);
            pthread_mutex_destroy(&sh->mu);
        }
        free(t->cache);
    }
    free(t);
}

/* ---------------- lookups ---------------- */
int lma_tok_vocab_size(const lma_tokenizer *t) { return t ? t->n_ids : 0; }
void lma_tok_template(const lma_tokenizer *t, const int32_t **pre, size_t *n_pre, const int32_t **post,
                      size_t *n_post) {
    *pre = t->post_pre; *n_pre = t->n_post_pre;
    *post = t->post_post; *n_post = t->n_post_post;
}
const char *lma_tok_id_to_token(const lma_tokenizer *t, int32_t id) {
    return (id >= 0 && id < t->n_ids) ? t->id_str[id] : NULL;
}

int32_t lma_tok_token_to_id(const lma_tokenizer *t, const char *tok) {
    size_t n = strlen(tok);
    int32_t id = lma_tok_strmap_get(&t->added_map, tok, n);
    return id >= 0 ? id : lma_tok_strmap_get(&t->vocab, tok, n);
}
int lma_tok_is_special(const lma_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_ids && t->id_special[id]; }
int32_t lma_tok_bos_id(const lma_tokenizer *t) { return t->bos_token ? lma_tok_token_to_id(t, t->bos_token) : -1; }
int32_t lma_tok_eos_id(const lma_tokenizer *t) { return t->eos_token ? lma_tok_token_to_id(t, t->eos_token) : -1; }
const char *lma_tok_bos_token(const lma_tokenizer *t) { return t->bos_token; }
const char *lma_tok_eos_token(const lma_tokenizer *t) { return t->eos_token; }
const char *lma_tok_chat_template(const lma_tokenizer *t) { return t->chat_template; }
