/* A tokenizer as GGUF metadata (tokenizer.ggml.*), the inverse of tok_gguf.c, as
 * llama.cpp's convert_hf_to_gguf.py writes it:
 *   - from a GGUF file: its tokenizer.* keys, copied unchanged;
 *   - byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM): model "gpt2", the tokens in id order,
 *     the merges in rank order ("a b"), token types (1 normal, 3 control = special added
 *     token, 4 user-defined = other added token, 5 unused = an id with no token) and
 *     tokenizer.ggml.pre named from the pre-tokenizer (gpt-2, smollm, llama-bpe, qwen2, ...;
 *     one llama.cpp has no name for is refused);
 *   - SentencePiece-style BPE with byte fallback (Llama 2, TinyLlama, Mistral v0.1): model
 *     "llama", scores = -(rank of the merge that makes the token), so that llama.cpp's
 *     highest-score-first merging follows the merge ranks; <0xXX> tokens typed 6 (byte).
 * Both write bos/eos/unk ids, add_bos_token/add_eos_token (from the post-processor) and
 * tokenizer.chat_template. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "format/gguf.h"
#include "tok/tok_internal.h"

static int skip_non_tokenizer(const char *key, size_t len) {
    return !(len > 10 && !memcmp(key, "tokenizer.", 10));
}

typedef struct { int32_t rank, a, b, made; } merge;

static int merge_cmp(const void *x, const void *y) {
    const merge *a = x, *b = y;
    return (a->rank > b->rank) - (a->rank < b->rank);
}

/* the pre-tokenizer's llama.cpp name, or NULL */
static const char *pre_name(const lma_tokenizer *t) {
    const tok_pre *p = t->pres;
    size_t n = t->n_pres;
    if (n == 1 && p[0].type == PRE_BYTELEVEL && p[0].use_regex) return "gpt-2";
    if (n == 2 && p[0].type == PRE_DIGITS && p[0].individual && p[1].type == PRE_BYTELEVEL && p[1].use_regex)
        return "smollm";
    if (n == 2 && p[0].type == PRE_SPLIT && p[0].re_src && p[0].behavior == BEH_ISOLATED && !p[0].invert &&
        p[1].type == PRE_BYTELEVEL && !p[1].use_regex)
        return lma_tok_gguf_pre_name(p[0].re_src);
    return NULL;
}

static int32_t id_of(const lma_tokenizer *t, const char *tok) { return tok ? lma_tok_token_to_id(t, tok) : -1; }

static lma_status from_tokenizer(const lma_tokenizer *t, const char *src, lma_gguf_writer *w) {
    int spm = !t->byte_level;
    if (spm && !t->byte_fallback)
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: a tokenizer that is neither byte-level BPE nor BPE with byte fallback "
                         "has no GGUF form lmadapt writes", src);
    const char *pre = spm ? NULL : pre_name(t);
    if (!spm && !pre)
        return lma_error(LMA_ERR_UNSUPPORTED, "%s: llama.cpp has no tokenizer.ggml.pre name for this pre-tokenizer "
                         "(known: gpt-2, smollm, llama-bpe, qwen2, tekken, gpt-4o, qwen35)", src);
    int32_t n = t->n_ids;
    const char **toks = calloc((size_t)n, sizeof *toks);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    int32_t *types = calloc((size_t)n, sizeof *types);
    float *scores = calloc((size_t)n, sizeof *scores);
    char (*pads)[24] = calloc((size_t)n, sizeof *pads);
    merge *mg = calloc(t->n_merges ? t->n_merges : 1, sizeof *mg);
    char **mstr = calloc(t->n_merges ? t->n_merges : 1, sizeof *mstr);
    lma_status s = LMA_OK;
    if (!toks || !lens || !types || !scores || !pads || !mg || !mstr) {
        s = lma_error(LMA_ERR_NOMEM, "%s: out of memory", src);
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        if (t->id_str[i]) { toks[i] = t->id_str[i]; lens[i] = t->id_len[i]; types[i] = 1; }
        else { lens[i] = (size_t)snprintf(pads[i], sizeof pads[i], "[PAD%d]", i); toks[i] = pads[i]; types[i] = 5; }
        if (t->id_added[i]) types[i] = t->id_special[i] ? 3 : 4;
    }
    size_t nm = 0;
    for (size_t i = 0; i < t->mslots; i++)
        if (t->mkeys[i] != UINT64_MAX)
            mg[nm++] = (merge){t->mrank[i], (int32_t)(t->mkeys[i] >> 32), (int32_t)(t->mkeys[i] & 0xFFFFFFFFu), t->mnew[i]};
    qsort(mg, nm, sizeof *mg, merge_cmp);
    if (spm) {
        for (int b = 0; b < 256; b++) if (t->bf_id[b] >= 0 && !t->id_added[t->bf_id[b]]) types[t->bf_id[b]] = 6;
        if (t->unk_id >= 0 && t->unk_id < n) types[t->unk_id] = 2;
        for (size_t i = nm; i-- > 0;) /* the first merge making a token sets its score */
            if (mg[i].made >= 0 && mg[i].made < n) scores[mg[i].made] = -(float)mg[i].rank;
    }
    s = lma_gguf_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
    if (s == LMA_OK && pre) s = lma_gguf_set_str(w, "tokenizer.ggml.pre", pre);
    if (s == LMA_OK) s = lma_gguf_set_str_array(w, "tokenizer.ggml.tokens", toks, lens, (uint64_t)n);
    if (s == LMA_OK && spm) s = lma_gguf_set_array(w, "tokenizer.ggml.scores", LMA_GGUF_F32, scores, (uint64_t)n);
    if (s == LMA_OK) s = lma_gguf_set_array(w, "tokenizer.ggml.token_type", LMA_GGUF_I32, types, (uint64_t)n);
    if (s == LMA_OK && !spm) {
        for (size_t i = 0; i < nm && s == LMA_OK; i++) {
            size_t la = t->id_len[mg[i].a], lb = t->id_len[mg[i].b];
            if (!(mstr[i] = malloc(la + lb + 2))) { s = lma_error(LMA_ERR_NOMEM, "%s: out of memory", src); break; }
            memcpy(mstr[i], t->id_str[mg[i].a], la);
            mstr[i][la] = ' ';
            memcpy(mstr[i] + la + 1, t->id_str[mg[i].b], lb);
            mstr[i][la + 1 + lb] = 0;
        }
        if (s == LMA_OK) s = lma_gguf_set_str_array(w, "tokenizer.ggml.merges", (const char *const *)mstr, NULL, nm);
    }
    int32_t bos = id_of(t, t->bos_token), eos = id_of(t, t->eos_token);
    if (s == LMA_OK && bos >= 0) s = lma_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (s == LMA_OK && eos >= 0) s = lma_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (s == LMA_OK && t->unk_id >= 0) s = lma_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk_id);
    if (s == LMA_OK) s = lma_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", t->n_post_pre > 0);
    if (s == LMA_OK) s = lma_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", t->n_post_post > 0);
    if (s == LMA_OK && spm) s = lma_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", 1);
    if (s == LMA_OK && t->chat_template) s = lma_gguf_set_str(w, "tokenizer.chat_template", t->chat_template);
done:
    if (mstr) for (size_t i = 0; i < t->n_merges; i++) free(mstr[i]);
    free(mstr); free(mg); free(toks); free(lens); free(types); free(scores); free(pads);
    return s;
}

lma_status lma_tok_gguf_meta(const char *src, lma_gguf_writer *w) {
    if (lma_gguf_is_file(src)) {
        lma_gguf *g = NULL;
        LMA_TRY(lma_gguf_open(src, &g));
        lma_status s = lma_gguf_copy_kv(w, g, skip_non_tokenizer);
        lma_gguf_close(g);
        return s;
    }
    lma_tokenizer *t = NULL;
    LMA_TRY(lma_tok_load(src, &t));
    lma_status s = from_tokenizer(t, src, w);
    lma_tok_free(t);
    return s;
}
