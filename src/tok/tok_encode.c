/* Encoding: added tokens -> normalizer -> pre-tokenizers -> BPE -> post-processor,
 * in the order and with the rules of HF tokenizers (tokenizer.rs, added_vocabulary.rs,
 * models/bpe/{model,word}.rs). Byte offsets into the (cleaned) input travel with
 * every piece so that callers (chat templates) can map tokens back to text. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "core/arena.h"
#include "core/buf.h"
#include "tok/tok_internal.h"

/* A view of bytes with their original offsets: orig(i) = al ? al[i] : base + i. */
typedef struct {
    const char *s;
    size_t n;
    const int32_t *al; /* (n+1) or NULL */
    size_t base;
} view;

static inline size_t v_orig(const view *v, size_t i) { return v->al ? (size_t)v->al[i] : v->base + i; }
static inline view v_sub(const view *v, size_t a, size_t b) {
    view r = *v;
    r.s = v->s + a; r.n = b - a;
    if (v->al) r.al = v->al + a; else r.base = v->base + a;
    return r;
}

typedef struct { int32_t rank; int32_t pos; int32_t new_id; } bpe_merge;

typedef struct {
    const lma_tokenizer *t;
    int32_t *ids; size_t *st, *en; size_t n, cap;
    void **bufs; size_t nbufs, capbufs;       /* transformed text buffers, freed at the end */
    pcre2_match_data *md;                     /* one match data big enough for our regexes */
    pcre2_match_context *mctx; pcre2_jit_stack *jst;
    /* BPE scratch */
    int32_t *sym_id, *sym_prev, *sym_next; uint32_t *sym_start, *sym_len; size_t sym_cap;
    bpe_merge *heap; size_t heap_cap;
} enc_ctx;

static lma_status emit(enc_ctx *c, int32_t id, size_t a, size_t b) {
    if (c->n == c->cap) { /* 3 arrays, one capacity */
        void *const arrs[] = {&c->ids, &c->st, &c->en};
        const size_t esz[] = {sizeof *c->ids, sizeof *c->st, sizeof *c->en};
        LMA_TRY(lma_grow_all(&c->cap, c->n + 1, 256, "encode", 3, arrs, esz));
    }
    c->ids[c->n] = id; c->st[c->n] = a; c->en[c->n] = b; c->n++;
    return LMA_OK;
}

static lma_status keep_buf(enc_ctx *c, void *p) {
    lma_status gs = lma_grow(&c->bufs, &c->capbufs, c->nbufs + 1, sizeof *c->bufs, 16, "encode");
    if (gs) { free(p); return gs; }
    c->bufs[c->nbufs++] = p;
    return LMA_OK;
}

/* ---------------- added tokens ---------------- */
static int cmp_first(const void *a, const void *b, void *ctx);
static const lma_tokenizer *sort_t; static int sort_set;
static int cmp_first_q(const void *a, const void *b) { return cmp_first(a, b, NULL); }
static const char *atok(const tok_added *a, int set, size_t *n) {
    if (set == 1 && a->ncontent) { *n = a->nlen; return a->ncontent; }
    *n = a->len; return a->content;
}
static int cmp_first(const void *a, const void *b, void *ctx) {
    (void)ctx;
    size_t na, nb;
    const char *sa = atok(&sort_t->added[*(const int32_t *)a], sort_set, &na);
    const char *sb = atok(&sort_t->added[*(const int32_t *)b], sort_set, &nb);
    int d = (unsigned char)sa[0] - (unsigned char)sb[0];
    return d ? d : (*(const int32_t *)a - *(const int32_t *)b);
}

lma_status lma_tok_build_added_index(lma_tokenizer *t) {
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    for (int set = 0; set < 2; set++) {
        t->aidx[set] = lma_malloc((t->n_added ? t->n_added : 1) * sizeof(int32_t), "added tokens");
        if (!t->aidx[set]) return LMA_ERR_NOMEM;
        size_t k = 0;
        for (size_t i = 0; i < t->n_added; i++)
            if (t->added[i].normalized == set) t->aidx[set][k++] = (int32_t)i;
        pthread_mutex_lock(&mu);
        sort_t = t; sort_set = set;
        qsort(t->aidx[set], k, sizeof(int32_t), cmp_first_q);
        pthread_mutex_unlock(&mu);
        size_t j = 0;
        for (int b = 0; b <= 256; b++) {
            while (j < k) {
                size_t n; const char *s = atok(&t->added[t->aidx[set][j]], set, &n);
                if ((unsigned char)s[0] >= b) break;
                j++;
            }
            t->astart[set][b] = j;
        }
        t->astart[set][256] = k;
    }
    return LMA_OK;
}

static int is_word_char(uint32_t c) { /* Rust regex \w */
    if (c < 0x80) return c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
    if (c == 0x200C || c == 0x200D) return 1;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_PC:
        return 1;
    default: return 0;
    }
}

static uint32_t last_char(const char *s, size_t n) {
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0 && n == 0) return 0;
    if (i > 0) i--;
    if (((unsigned char)s[i] & 0xC0) == 0x80) return 0;
    int l = lma_tok_utf8_len((const unsigned char *)s + i, n - i);
    return l ? lma_tok_utf8_dec((const unsigned char *)s + i, l) : 0;
}

static int first_char(const char *s, size_t n, uint32_t *c) {
    if (!n) return 0;
    int l = lma_tok_utf8_len((const unsigned char *)s, n);
    if (!l) return 0;
    *c = lma_tok_utf8_dec((const unsigned char *)s, l);
    return l;
}

typedef lma_status (*piece_fn)(enc_ctx *c, view v);

/* Splits v on the added tokens of `set`, emitting tokens and passing the text between
 * them to `next`. */
static lma_status split_added(enc_ctx *c, view v, int set, piece_fn next) {
    const lma_tokenizer *t = c->t;
    if (t->astart[set][256] == 0 || v.n == 0) return next(c, v);
    size_t done = 0, i = 0;
    const unsigned char *s = (const unsigned char *)v.s;
    while (i < v.n) {
        size_t lo = t->astart[set][s[i]], hi = t->astart[set][s[i] + 1];
        const tok_added *best = NULL; size_t blen = 0;
        for (size_t k = lo; k < hi; k++) {
            const tok_added *a = &t->added[t->aidx[set][k]];
            size_t n; const char *p = atok(a, set, &n);
            if (n > blen && n <= v.n - i && !memcmp(p, v.s + i, n)) { best = a; blen = n; }
        }
        if (!best) { i++; continue; }
        size_t start = i, stop = i + blen;
        i = stop;
        if (best->single_word) {
            uint32_t pc = start ? last_char(v.s, start) : 0, nc = 0;
            int start_space = start == 0 || !is_word_char(pc);
            int stop_space = stop == v.n || !first_char(v.s + stop, v.n - stop, &nc) || !is_word_char(nc);
            if (!start_space || !stop_space) continue;
        }
        if (best->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t j = ns - 1;
                while (j > 0 && ((unsigned char)v.s[j] & 0xC0) == 0x80) j--;
                uint32_t ch; int l = first_char(v.s + j, ns - j, &ch);
                if (!l || !lma_tok_is_whitespace(ch)) break;
                ns = j;
            }
            start = ns > done ? ns : done;
        }
        if (best->rstrip) {
            uint32_t ch; int l;
            while (stop < v.n && (l = first_char(v.s + stop, v.n - stop, &ch)) && lma_tok_is_whitespace(ch)) stop += (size_t)l;
            i = stop;
        }
        if (done < start) LMA_TRY(next(c, v_sub(&v, done, start)));
        LMA_TRY(emit(c, best->id, v_orig(&v, start), v_orig(&v, stop)));
        done = stop;
    }
    if (done < v.n) LMA_TRY(next(c, v_sub(&v, done, v.n)));
    return LMA_OK;
}

/* ---------------- BPE ---------------- */
static inline int merge_get(const lma_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *nw) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = tok_mix64(k) & (t->mslots - 1);
    for (;;) {
        uint64_t kk = t->mkeys[i];
        if (kk == k) { *rank = t->mrank[i]; *nw = t->mnew[i]; return 1; }
        if (kk == UINT64_MAX) return 0;
        i = (i + 1) & (t->mslots - 1);
    }
}

static inline int merge_less(const bpe_merge *a, const bpe_merge *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}
static void heap_push(bpe_merge *h, size_t *n, bpe_merge m) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!merge_less(&m, &h[p])) break;
        h[i] = h[p]; i = p;
    }
    h[i] = m;
}
static bpe_merge heap_pop(bpe_merge *h, size_t *n) {
    bpe_merge top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= *n) break;
        if (l + 1 < *n && merge_less(&h[l + 1], &h[l])) l++;
        if (!merge_less(&h[l], &last)) break;
        h[i] = h[l]; i = l;
    }
    if (*n) h[i] = last;
    return top;
}

static lma_status ensure_sym(enc_ctx *c, size_t n) {
    if (n <= c->sym_cap) return LMA_OK;
    size_t cap = c->sym_cap; /* 5 arrays of sym_cap, the heap of twice that */
    void *const arrs[] = {&c->sym_id, &c->sym_prev, &c->sym_next, &c->sym_start, &c->sym_len};
    const size_t esz[] = {sizeof *c->sym_id, sizeof *c->sym_prev, sizeof *c->sym_next, sizeof *c->sym_start,
                          sizeof *c->sym_len};
    LMA_TRY(lma_grow_all(&cap, n, 64, "encode", 5, arrs, esz));
    LMA_TRY(lma_grow(&c->heap, &c->heap_cap, 2 * cap, sizeof *c->heap, 128, "encode"));
    c->sym_cap = cap;
    return LMA_OK;
}

/* Initial symbols of a word (merge_word in HF's model.rs). Returns the count. */
static lma_status word_symbols(enc_ctx *c, const char *w, size_t n, size_t *nsym) {
    const lma_tokenizer *t = c->t;
    LMA_TRY(ensure_sym(c, n + 2));
    size_t k = 0;
    int32_t unk_id = -1; uint32_t unk_start = 0, unk_len = 0; int have_unk = 0;
#define ADD(id_, st_, ln_) do { c->sym_id[k] = (id_); c->sym_start[k] = (uint32_t)(st_); c->sym_len[k] = (uint32_t)(ln_); k++; } while (0)
#define FLUSH_UNK() do { if (have_unk) { LMA_TRY(ensure_sym(c, k + n + 2)); ADD(unk_id, unk_start, unk_len); have_unk = 0; } } while (0)
    size_t i = 0;
    while (i < n) {
        int32_t id;
        size_t cl;
        char mapped[4]; const char *cs; size_t csl;
        if (t->byte_level) {
            cl = 1;
            id = t->byte_id[(unsigned char)w[i]];
            csl = (size_t)lma_tok_utf8_enc(lma_tok_byte_to_char[(unsigned char)w[i]], mapped); cs = mapped;
        } else {
            cl = (size_t)lma_tok_utf8_len((const unsigned char *)w + i, n - i);
            if (!cl) cl = 1; /* cannot happen on cleaned text */
            id = lma_tok_strmap_get(&t->vocab, w + i, cl);
            cs = w + i; csl = cl;
        }
        if (id >= 0) {
            FLUSH_UNK();
            ADD(id, i, cl);
            i += cl;
            continue;
        }
        if (t->byte_fallback) {
            int ok = 1;
            for (size_t b = 0; b < csl; b++) if (t->bf_id[(unsigned char)cs[b]] < 0) ok = 0;
            if (ok) {
                LMA_TRY(ensure_sym(c, k + csl + n + 2));
                /* HF gives each fallback byte length 1: offsets are spread over the char */
                for (size_t b = 0; b < csl; b++) {
                    size_t bs = i + (b < cl ? b : cl - 1);
                    ADD(t->bf_id[(unsigned char)cs[b]], bs, (b < cl ? 1 : 0));
                }
                i += cl;
                continue;
            }
        }
        if (t->unk_id >= 0) {
            if (have_unk && t->fuse_unk) unk_len += (uint32_t)cl;
            else {
                FLUSH_UNK();
                have_unk = 1; unk_id = t->unk_id; unk_start = (uint32_t)i; unk_len = (uint32_t)cl;
            }
        }
        i += cl;
    }
    FLUSH_UNK();
#undef ADD
#undef FLUSH_UNK
    *nsym = k;
    return LMA_OK;
}

/* merge_all of HF's word.rs: a min-heap on (rank, position) with stale-entry checks. */
static void word_merge(enc_ctx *c, size_t nsym) {
    const lma_tokenizer *t = c->t;
    int32_t *id = c->sym_id, *prev = c->sym_prev, *next = c->sym_next;
    uint32_t *len = c->sym_len;
    size_t hn = 0;
    for (size_t i = 0; i < nsym; i++) { prev[i] = (int32_t)i - 1; next[i] = i + 1 < nsym ? (int32_t)i + 1 : -1; }
    for (size_t i = 0; i + 1 < nsym; i++) {
        int32_t r, nw;
        if (merge_get(t, id[i], id[i + 1], &r, &nw)) heap_push(c->heap, &hn, (bpe_merge){r, (int32_t)i, nw});
    }
    while (hn) {
        bpe_merge top = heap_pop(c->heap, &hn);
        int32_t p = top.pos;
        if (len[p] == 0 || next[p] < 0) continue;
        int32_t q = next[p];
        int32_t r, nw;
        if (!merge_get(t, id[p], id[q], &r, &nw) || nw != top.new_id) continue;
        id[p] = top.new_id;
        len[p] += len[q];
        next[p] = next[q];
        len[q] = 0;
        if (next[q] >= 0) prev[next[q]] = p;
        if (prev[p] >= 0 && merge_get(t, id[prev[p]], id[p], &r, &nw))
            heap_push(c->heap, &hn, (bpe_merge){r, prev[p], nw});
        if (next[p] >= 0 && merge_get(t, id[p], id[next[p]], &r, &nw))
            heap_push(c->heap, &hn, (bpe_merge){r, p, nw});
    }
}

/* Returns 1 when found (tokens emitted), 0 when absent, -1 on error. */
static int cache_get(const lma_tokenizer *t, uint64_t h, const char *w, size_t n, enc_ctx *c, view *v) {
    tok_cache_shard *sh = &t->cache[h % TOK_CACHE_SHARDS];
    int r = 0;
    pthread_mutex_lock(&sh->mu);
    if (sh->slots) {
        size_t mask = 2 * TOK_CACHE_SHARD_CAP - 1, i = (h >> 8) & mask;
        while (sh->slots[i].key) {
            tok_cache_entry *e = &sh->slots[i];
            if (e->hash == h && e->klen == n && !memcmp(e->key, w, n)) {
                r = 1;
                for (uint32_t k = 0; k < e->n && r == 1; k++)
                    if (emit(c, e->ids[k], v_orig(v, e->starts[k]), v_orig(v, e->ends[k])) != LMA_OK) r = -1;
                break;
            }
            i = (i + 1) & mask;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return r;
}

static void cache_put(const lma_tokenizer *t, uint64_t h, const char *w, size_t n, const int32_t *ids,
                      const uint32_t *starts, const uint32_t *ends, size_t k) {
    tok_cache_shard *sh = &t->cache[h % TOK_CACHE_SHARDS];
    pthread_mutex_lock(&sh->mu);
    if (!sh->slots) sh->slots = calloc(2 * TOK_CACHE_SHARD_CAP, sizeof *sh->slots);
    if (sh->slots && sh->count < TOK_CACHE_SHARD_CAP) {
        size_t mask = 2 * TOK_CACHE_SHARD_CAP - 1, i = (h >> 8) & mask;
        int found = 0;
        while (sh->slots[i].key) {
            if (sh->slots[i].hash == h && sh->slots[i].klen == n && !memcmp(sh->slots[i].key, w, n)) { found = 1; break; }
            i = (i + 1) & mask;
        }
        /* one allocation, freed through key: key (padded to 8), ids, starts, ends */
        size_t kpad = (n + 8) & ~(size_t)7;
        char *blk = found ? NULL : malloc(kpad + k * 3 * sizeof(int32_t) + 1);
        if (blk) {
            tok_cache_entry *e = &sh->slots[i];
            memcpy(blk, w, n); blk[n] = 0;
            e->key = blk;
            e->ids = (int32_t *)(blk + kpad);
            e->starts = (uint32_t *)(e->ids + k);
            e->ends = e->starts + k;
            memcpy(e->ids, ids, k * sizeof(int32_t));
            memcpy(e->starts, starts, k * sizeof(uint32_t));
            memcpy(e->ends, ends, k * sizeof(uint32_t));
            e->n = (uint32_t)k; e->hash = h; e->klen = (uint32_t)n;
            sh->count++;
        }
    }
    pthread_mutex_unlock(&sh->mu);
}

/* BPE merges on (part of) a word. */
static lma_status model_piece(enc_ctx *c, view v) {
    const lma_tokenizer *t = c->t;
    if (v.n == 0) return LMA_OK;
    uint64_t h = 0;
    int cacheable = v.n <= TOK_CACHE_MAX_WORD;
    if (cacheable) {
        h = lma_tok_hash(v.s, v.n);
        int r = cache_get(t, h, v.s, v.n, c, &v);
        if (r < 0) return LMA_ERR_NOMEM;
        if (r > 0) return LMA_OK;
    }
    size_t nsym;
    LMA_TRY(word_symbols(c, v.s, v.n, &nsym));
    word_merge(c, nsym);
    /* walk the list from symbol 0 (never merged away); compact into the scratch front:
     * ids -> sym_prev, starts -> sym_start, ends -> sym_next (each index k <= i) */
    size_t k = 0;
    for (int32_t i = nsym ? 0 : -1; i >= 0;) {
        int32_t nx = c->sym_next[i];
        int32_t id = c->sym_id[i];
        uint32_t s0 = c->sym_start[i], e0 = s0 + c->sym_len[i];
        if (e0 > v.n) e0 = (uint32_t)v.n;
        LMA_TRY(emit(c, id, v_orig(&v, s0), v_orig(&v, e0)));
        c->sym_prev[k] = id; c->sym_start[k] = s0; c->sym_next[k] = (int32_t)e0;
        k++;
        i = nx;
    }
    if (cacheable) cache_put(t, h, v.s, v.n, c->sym_prev, c->sym_start, (const uint32_t *)c->sym_next, k);
    return LMA_OK;
}

/* WordPiece (HF models/wordpiece): greedy longest-match-first from the left, pieces after
 * the first carry the prefix; a word longer than wp_max_chars chars or with a part that
 * matches nothing becomes one unk token over the whole word. */
static lma_status wordpiece_word(enc_ctx *c, view v) {
    const lma_tokenizer *t = c->t;
    size_t nchars = 0;
    for (size_t i = 0; i < v.n; i++) nchars += ((unsigned char)v.s[i] & 0xC0) != 0x80;
    size_t n0 = c->n;
    if (nchars <= (size_t)t->wp_max_chars) {
        char stackbuf[256];
        size_t cap = (size_t)t->wp_prefix_len + v.n;
        char *buf = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
        if (!buf) return lma_error(LMA_ERR_NOMEM, "encode: out of memory");
        memcpy(buf, t->wp_prefix, (size_t)t->wp_prefix_len);
        size_t start = 0;
        int bad = 0;
        lma_status st = LMA_OK;
        while (start < v.n && st == LMA_OK) {
            size_t end = v.n;
            int32_t id = -1;
            while (end > start) {
                if (start == 0) id = lma_tok_strmap_get(&t->vocab, v.s, end);
                else {
                    memcpy(buf + t->wp_prefix_len, v.s + start, end - start);
                    id = lma_tok_strmap_get(&t->vocab, buf, (size_t)t->wp_prefix_len + end - start);
                }
                if (id >= 0) break;
                do end--; while (end > start && ((unsigned char)v.s[end] & 0xC0) == 0x80);
            }
            if (id < 0) { bad = 1; break; }
            st = emit(c, id, v_orig(&v, start), v_orig(&v, end));
            start = end;
        }
        if (buf != stackbuf) free(buf);
        LMA_TRY(st);
        if (!bad) return LMA_OK;
    }
    c->n = n0; /* drop the pieces of a bad word */
    if (t->unk_id < 0) return lma_error(LMA_ERR_FORMAT, "encode: WordPiece without an unk token");
    return emit(c, t->unk_id, v_orig(&v, 0), v_orig(&v, v.n));
}

#define META "\xE2\x96\x81"
/* The BPE model on one pre-tokenized word. When no vocab token holds "▁" after another
 * char than "▁" (meta_split, SentencePiece vocabularies), no merge can cross the start of
 * a "▁" run, so a long word (a whole text without pre-tokenizer) is merged piece by
 * piece: the same result as HF's one-heap merge, with cacheable pieces. */
static lma_status model_word(enc_ctx *c, view v) {
    const lma_tokenizer *t = c->t;
    if (v.n == 0) return LMA_OK;
    if (t->wordpiece) return wordpiece_word(c, v);
    if (t->ignore_merges) {
        int32_t id = t->byte_level ? lma_tok_strmap_get(&t->raw, v.s, v.n) : lma_tok_strmap_get(&t->vocab, v.s, v.n);
        if (id >= 0) return emit(c, id, v_orig(&v, 0), v_orig(&v, v.n));
    }
    if (!t->meta_split || v.n <= TOK_CACHE_MAX_WORD) return model_piece(c, v);
    size_t start = 0;
    for (size_t i = 3; i + 3 <= v.n; i++) {
        if (memcmp(v.s + i, META, 3) || !memcmp(v.s + i - 3, META, 3)) continue;
        LMA_TRY(model_piece(c, v_sub(&v, start, i)));
        start = i;
    }
    return model_piece(c, v_sub(&v, start, v.n));
}

/* ---------------- pre-tokenizers ---------------- */
static lma_status pretok(enc_ctx *c, view v, size_t step);

typedef struct { size_t a, b; int m; } span;

static lma_status find_regex(enc_ctx *c, pcre2_code *re, view v, span **out, size_t *nout) {
    size_t cap = 16, n = 0, prev = 0, pos = 0;
    span *sp = malloc(cap * sizeof *sp);
    if (!sp) return lma_error(LMA_ERR_NOMEM, "encode: out of memory");
    if (!c->md) {
        c->md = pcre2_match_data_create(32, NULL);
        if (!c->md) { free(sp); return lma_error(LMA_ERR_NOMEM, "encode: out of memory"); }
    }
#define PUSH(a_, b_, m_) do { lma_status gs_ = lma_grow(&sp, &cap, n + 2, sizeof *sp, 16, "encode"); if (gs_) { free(sp); return gs_; } sp[n++] = (span){(a_), (b_), (m_)}; } while (0)
    while (pos <= v.n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)v.s, v.n, pos, PCRE2_NO_UTF_CHECK, c->md, c->mctx);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !c->jst) {
            c->mctx = pcre2_match_context_create(NULL);
            c->jst = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
            if (!c->mctx || !c->jst) { free(sp); return lma_error(LMA_ERR_NOMEM, "encode: out of memory"); }
            pcre2_jit_stack_assign(c->mctx, NULL, c->jst);
            continue;
        }
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) { free(sp); return lma_error(LMA_ERR_INTERNAL, "encode: regex match failed (PCRE2 error %d)", rc); }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t a = ov[0], b = ov[1];
        if (b == a) { /* empty match: step over one char */
            if (a >= v.n) break;
            int l = lma_tok_utf8_len((const unsigned char *)v.s + a, v.n - a);
            pos = a + (size_t)(l ? l : 1);
            continue;
        }
        if (prev != a) PUSH(prev, a, 0);
        PUSH(a, b, 1);
        prev = pos = b;
    }
    if (prev != v.n) PUSH(prev, v.n, 0);
#undef PUSH
    *out = sp; *nout = n;
    return LMA_OK;
}

/* Matches for a literal pattern or a char predicate (digits). */
static lma_status find_other(const tok_pre *p, view v, span **out, size_t *nout) {
    span *sp = malloc((2 * v.n + 2) * sizeof *sp);
    if (!sp) return lma_error(LMA_ERR_NOMEM, "encode: out of memory");
    size_t n = 0, prev = 0, i = 0;
    while (i < v.n) {
        size_t ml = 0;
        if (p->type == PRE_DIGITS) { /* Rust char::is_numeric: Nd, Nl, No */
            if ((unsigned char)v.s[i] < 0x80) ml = (v.s[i] >= '0' && v.s[i] <= '9') ? 1 : 0;
            else {
                int l = lma_tok_utf8_len((const unsigned char *)v.s + i, v.n - i);
                uint32_t ch = l ? lma_tok_utf8_dec((const unsigned char *)v.s + i, l) : 0;
                utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)ch);
                if (k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO) ml = (size_t)l;
                else { i += l ? (size_t)l : 1; continue; }
            }
        }
        else if (p->litlen <= v.n - i && !memcmp(v.s + i, p->lit, p->litlen)) ml = p->litlen;
        if (!ml) { i++; continue; }
        if (prev != i) sp[n++] = (span){prev, i, 0};
        sp[n++] = (span){i, i + ml, 1};
        i += ml; prev = i;
    }
    if (prev != v.n) sp[n++] = (span){prev, v.n, 0};
    *out = sp; *nout = n;
    return LMA_OK;
}

/* Applies a split behavior (HF normalizer.rs NormalizedString::split) and recurses. */
static lma_status apply_split(enc_ctx *c, view v, span *sp, size_t n, int behavior, int invert, size_t step) {
    if (invert) for (size_t i = 0; i < n; i++) sp[i].m = !sp[i].m;
    size_t k = 0;
    switch (behavior) {
    case BEH_ISOLATED:
        for (size_t i = 0; i < n; i++) sp[i].m = 0;
        k = n; break;
    case BEH_REMOVED: k = n; break;
    case BEH_CONTIGUOUS: {
        int pm = 0;
        for (size_t i = 0; i < n; i++) {
            if (sp[i].m == pm && k) sp[k - 1].b = sp[i].b;
            else sp[k++] = (span){sp[i].a, sp[i].b, 0};
            pm = sp[i].m;
        }
        break;
    }
    case BEH_MERGED_PREV: {
        int pm = 0;
        for (size_t i = 0; i < n; i++) {
            if (sp[i].m && !pm && k) sp[k - 1].b = sp[i].b;
            else sp[k++] = (span){sp[i].a, sp[i].b, 0};
            pm = sp[i].m;
        }
        break;
    }
    case BEH_MERGED_NEXT: {
        int pm = 0;
        size_t w = n; /* build from the end into the tail, then shift */
        for (size_t ii = n; ii-- > 0;) {
            int m = sp[ii].m;
            if (m && !pm && w < n) sp[w].a = sp[ii].a;
            else sp[--w] = (span){sp[ii].a, sp[ii].b, 0};
            pm = m;
        }
        memmove(sp, sp + w, (n - w) * sizeof *sp);
        k = n - w;
        break;
    }
    }
    for (size_t i = 0; i < k; i++) {
        if (sp[i].m || sp[i].b == sp[i].a) continue; /* removed, or empty */
        LMA_TRY(pretok(c, v_sub(&v, sp[i].a, sp[i].b), step + 1));
    }
    return LMA_OK;
}

static lma_status pre_metaspace(enc_ctx *c, const tok_pre *p, view v, size_t step) {
    size_t spaces = 0;
    for (size_t i = 0; i < v.n; i++) spaces += v.s[i] == ' ';
    int prepend = 0;
    int starts = v.n >= (size_t)p->repl_len && !memcmp(v.s, p->repl, (size_t)p->repl_len);
    int starts_space = v.n && v.s[0] == ' ';
    if (p->scheme == PREPEND_ALWAYS) prepend = !(starts || starts_space);
    else if (p->scheme == PREPEND_FIRST) prepend = !(starts || starts_space) && v_orig(&v, 0) == 0;
    size_t nn = v.n + spaces * (size_t)(p->repl_len - 1) + (prepend ? (size_t)p->repl_len : 0);
    char *s = malloc(nn + 1);
    int32_t *al = malloc((nn + 1) * sizeof *al);
    if (!s || !al) { free(s); free(al); return lma_error(LMA_ERR_NOMEM, "encode: out of memory"); }
    size_t o = 0;
    if (prepend) for (int k = 0; k < p->repl_len; k++) { s[o] = p->repl[k]; al[o++] = (int32_t)v_orig(&v, 0); }
    for (size_t i = 0; i < v.n; i++) {
        if (v.s[i] == ' ') for (int k = 0; k < p->repl_len; k++) { s[o] = p->repl[k]; al[o++] = (int32_t)v_orig(&v, i); }
        else { s[o] = v.s[i]; al[o++] = (int32_t)v_orig(&v, i); }
    }
    al[o] = (int32_t)v_orig(&v, v.n); s[o] = 0;
    LMA_TRY(keep_buf(c, s)); LMA_TRY(keep_buf(c, al));
    view nv = {s, o, al, 0};
    if (!p->split) return pretok(c, nv, step + 1);
    tok_pre lit = {0};
    lit.lit = (char *)p->repl; lit.litlen = (size_t)p->repl_len;
    span *sp; size_t n;
    LMA_TRY(find_other(&lit, nv, &sp, &n));
    lma_status st = apply_split(c, nv, sp, n, BEH_MERGED_NEXT, 0, step);
    free(sp);
    return st;
}

/* BertPreTokenizer: split on whitespace (removed), then punctuation chars each alone. */
static lma_status pre_bert(enc_ctx *c, view v, size_t step) {
    size_t i = 0, word = 0;
    while (i < v.n) {
        int l = lma_tok_utf8_len((const unsigned char *)v.s + i, v.n - i);
        if (!l) l = 1;
        uint32_t ch = lma_tok_utf8_dec((const unsigned char *)v.s + i, l);
        int ws = lma_tok_is_whitespace(ch), pu = !ws && lma_tok_is_punct(ch);
        if (ws || pu) {
            if (word < i) LMA_TRY(pretok(c, v_sub(&v, word, i), step + 1));
            if (pu) LMA_TRY(pretok(c, v_sub(&v, i, i + (size_t)l), step + 1));
            word = i + (size_t)l;
        }
        i += (size_t)l;
    }
    if (word < v.n) LMA_TRY(pretok(c, v_sub(&v, word, v.n), step + 1));
    return LMA_OK;
}

static lma_status pretok(enc_ctx *c, view v, size_t step) {
    const lma_tokenizer *t = c->t;
    if (v.n == 0) return LMA_OK;
    if (step == t->n_pres) return model_word(c, v);
    const tok_pre *p = &t->pres[step];
    span *sp = NULL; size_t n = 0;
    lma_status st;
    switch (p->type) {
    case PRE_BYTELEVEL:
        if (p->add_prefix_space && v.s[0] != ' ') {
            char *s = malloc(v.n + 2);
            int32_t *al = malloc((v.n + 2) * sizeof *al);
            if (!s || !al) { free(s); free(al); return lma_error(LMA_ERR_NOMEM, "encode: out of memory"); }
            s[0] = ' '; al[0] = (int32_t)v_orig(&v, 0);
            memcpy(s + 1, v.s, v.n);
            for (size_t i = 0; i <= v.n; i++) al[i + 1] = (int32_t)v_orig(&v, i);
            s[v.n + 1] = 0;
            LMA_TRY(keep_buf(c, s)); LMA_TRY(keep_buf(c, al));
            v = (view){s, v.n + 1, al, 0};
        }
        if (!p->use_regex) return pretok(c, v, step + 1);
        LMA_TRY(find_regex(c, p->re, v, &sp, &n));
        st = apply_split(c, v, sp, n, BEH_ISOLATED, 0, step);
        break;
    case PRE_SPLIT:
        if (p->re) LMA_TRY(find_regex(c, p->re, v, &sp, &n));
        else LMA_TRY(find_other(p, v, &sp, &n));
        st = apply_split(c, v, sp, n, p->behavior, p->invert, step);
        break;
    case PRE_DIGITS:
        LMA_TRY(find_other(p, v, &sp, &n));
        st = apply_split(c, v, sp, n, p->individual ? BEH_ISOLATED : BEH_CONTIGUOUS, 0, step);
        break;
    case PRE_METASPACE: return pre_metaspace(c, p, v, step);
    case PRE_BERT: return pre_bert(c, v, step);
    default: return lma_error(LMA_ERR_INTERNAL, "pre-tokenizer type %d", p->type);
    }
    free(sp);
    return st;
}

static lma_status after_norm_piece(enc_ctx *c, view v) { return pretok(c, v, 0); }

static lma_status raw_piece(enc_ctx *c, view v) {
    const lma_tokenizer *t = c->t;
    if (!t->n_norms) return split_added(c, v, 1, after_norm_piece);
    char *s; size_t n; int32_t *al;
    LMA_TRY(lma_tok_normalize(t, v.s, v.n, v.al, v.base, &s, &n, &al));
    lma_status st = keep_buf(c, s);
    if (st != LMA_OK) { free(al); return st; }
    LMA_TRY(keep_buf(c, al));
    return split_added(c, (view){s, n, al, 0}, 1, after_norm_piece);
}

static void ctx_free(enc_ctx *c) {
    for (size_t i = 0; i < c->nbufs; i++) free(c->bufs[i]);
    free(c->bufs);
    if (c->md) pcre2_match_data_free(c->md);
    if (c->mctx) pcre2_match_context_free(c->mctx);
    if (c->jst) pcre2_jit_stack_free(c->jst);
    free(c->sym_id); free(c->sym_prev); free(c->sym_next); free(c->sym_start); free(c->sym_len); free(c->heap);
}

static int utf8_valid(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) { i++; continue; }
        int l = lma_tok_utf8_len((const unsigned char *)s + i, n - i);
        if (!l) return 0;
        i += (size_t)l;
    }
    return 1;
}

static lma_status encode_impl(const lma_tokenizer *t, const char *text, size_t len, int add_special, enc_ctx *c) {
    if (!t || (!text && len)) return lma_error(LMA_ERR_ARG, "lma_tok_encode: NULL tokenizer or text");
    if (len > (size_t)INT32_MAX / 4) return lma_error(LMA_ERR_ARG, "lma_tok_encode: text of %zu bytes is too long", len);
    memset(c, 0, sizeof *c);
    c->t = t;
    const char *s = text ? text : "";
    size_t n = len;
    if (!utf8_valid(s, n)) {
        char *clean;
        LMA_TRY(lma_tok_utf8_sanitize(s, n, &clean, &n));
        LMA_TRY(keep_buf(c, clean));
        s = clean;
    }
    lma_status st = LMA_OK;
    if (add_special) for (size_t i = 0; i < t->n_post_pre && st == LMA_OK; i++) st = emit(c, t->post_pre[i], 0, 0);
    if (st == LMA_OK) st = split_added(c, (view){s, n, NULL, 0}, 0, raw_piece);
    if (add_special) for (size_t i = 0; i < t->n_post_post && st == LMA_OK; i++) st = emit(c, t->post_post[i], n, n);
    return st;
}

lma_status lma_tok_encode_offsets(const lma_tokenizer *t, const char *text, size_t len, int add_special,
                                  int32_t **ids, size_t **starts, size_t **ends, size_t *n_ids) {
    *ids = NULL; *n_ids = 0;
    if (starts) *starts = NULL;
    if (ends) *ends = NULL;
    enc_ctx c;
    lma_status st = encode_impl(t, text, len, add_special, &c);
    ctx_free(&c);
    if (st != LMA_OK) { free(c.ids); free(c.st); free(c.en); return st; }
    if (!c.ids) { c.ids = malloc(sizeof(int32_t)); c.st = malloc(sizeof(size_t)); c.en = malloc(sizeof(size_t)); }
    if (!c.ids || !c.st || !c.en) { free(c.ids); free(c.st); free(c.en); return lma_error(LMA_ERR_NOMEM, "encode: out of memory"); }
    *ids = c.ids; *n_ids = c.n;
    if (starts) *starts = c.st; else free(c.st);
    if (ends) *ends = c.en; else free(c.en);
    return LMA_OK;
}

lma_status lma_tok_encode(const lma_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids,
                          size_t *n_ids) {
    return lma_tok_encode_offsets(t, text, len, add_special, ids, NULL, NULL, n_ids);
}
