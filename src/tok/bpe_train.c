/* Byte-level BPE trainer (see bpe_train.h): the HF BpeTrainer algorithm step by step,
 * including its lazy max-heap whose entries carry the word positions to merge. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/io.h"
#include "core/json.h"
#include "core/progress.h"
#include "tok/bpe_train.h"
#include "tok/tok_internal.h"

static const char LLAMA3_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

void lma_bpe_train_default_params(lma_bpe_train_params *p) {
    memset(p, 0, sizeof *p);
    p->vocab_size = 30000;
}

/* ---- pair -> int64 count map ---- */
typedef struct { uint64_t *k; int64_t *v; size_t n, cap; } pmap;
static int64_t *pm_slot(pmap *m, uint64_t k, int create) {
    if (create && (m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1024;
        uint64_t *nk = malloc(nc * sizeof *nk); int64_t *nv = malloc(nc * sizeof *nv);
        if (!nk || !nv) { free(nk); free(nv); return NULL; }
        memset(nk, 0xFF, nc * sizeof *nk);
        for (size_t i = 0; i < m->cap; i++) if (m->k[i] != UINT64_MAX) {
            size_t j = lma_tok_hash(&m->k[i], 8) & (nc - 1);
            while (nk[j] != UINT64_MAX) j = (j + 1) & (nc - 1);
            nk[j] = m->k[i]; nv[j] = m->v[i];
        }
        free(m->k); free(m->v); m->k = nk; m->v = nv; m->cap = nc;
    }
    if (!m->cap) return NULL;
    size_t j = lma_tok_hash(&k, 8) & (m->cap - 1);
    while (m->k[j] != UINT64_MAX) { if (m->k[j] == k) return &m->v[j]; j = (j + 1) & (m->cap - 1); }
    if (!create) return NULL;
    m->k[j] = k; m->v[j] = 0; m->n++;
    return &m->v[j];
}

/* ---- heap of merges ---- */
typedef struct { int64_t count; uint64_t pair; int32_t *pos; size_t npos; } hentry;
typedef struct { hentry *v; size_t n, cap; } heap;
static int h_before(const hentry *a, const hentry *b) { /* a pops before b */
    return a->count != b->count ? a->count > b->count : a->pair < b->pair;
}
static int h_push(heap *h, hentry e) {
    if (lma_grow(&h->v, &h->cap, h->n + 1, sizeof *h->v, 1024, "bpe train heap")) return 0;
    size_t i = h->n++;
    while (i > 0) { size_t p = (i - 1) / 2; if (!h_before(&e, &h->v[p])) break; h->v[i] = h->v[p]; i = p; }
    h->v[i] = e;
    return 1;
}
static hentry h_pop(heap *h) {
    hentry top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= h->n) break;
        if (l + 1 < h->n && h_before(&h->v[l + 1], &h->v[l])) l++;
        if (!h_before(&h->v[l], &last)) break;
        h->v[i] = h->v[l]; i = l;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* ---- (pair, word) records: where_to_update ---- */
typedef struct { uint64_t pair; int32_t w; } upd;
typedef struct { upd *v; size_t n, cap; } updv;
static int upd_push(updv *u, uint64_t pair, int32_t w) {
    if (lma_grow(&u->v, &u->cap, u->n + 1, sizeof *u->v, 1024, "bpe train updates")) return 0;
    u->v[u->n++] = (upd){pair, w};
    return 1;
}
static int upd_cmp(const void *a, const void *b) {
    const upd *x = a, *y = b;
    if (x->pair != y->pair) return x->pair < y->pair ? -1 : 1;
    return (x->w > y->w) - (x->w < y->w);
}
/* Sorts, groups by pair (distinct words) and pushes heap entries with count > 0. */
static lma_status drain(updv *u, pmap *pc, heap *h) {
    qsort(u->v, u->n, sizeof *u->v, upd_cmp);
    size_t i = 0;
    while (i < u->n) {
        size_t j = i;
        while (j < u->n && u->v[j].pair == u->v[i].pair) j++;
        int64_t *c = pm_slot(pc, u->v[i].pair, 0);
        if (c && *c > 0) {
            int32_t *pos = malloc((j - i) * sizeof *pos);
            if (!pos) return lma_error(LMA_ERR_NOMEM, "bpe train: out of memory");
            size_t np = 0;
            for (size_t k = i; k < j; k++) if (!np || pos[np - 1] != u->v[k].w) pos[np++] = u->v[k].w;
            if (!h_push(h, (hentry){*c, u->v[i].pair, pos, np})) { free(pos); return lma_error(LMA_ERR_NOMEM, "bpe train: out of memory"); }
        }
        i = j;
    }
    u->n = 0;
    return LMA_OK;
}

#define PAIR(a, b) (((uint64_t)(uint32_t)(a) << 32) | (uint32_t)(b))

typedef struct {
    tok_strmap words;   /* raw word bytes -> index */
    uint64_t *counts; size_t ncounts;
    int32_t **sym; uint32_t *len; /* per word */
    tok_strmap w2id;    /* token string (mapped chars) -> id */
    char **id2w; size_t *id2wlen; size_t nid, capid;
    pmap pc;
    heap h;
    updv u;
    uint64_t *mpair; size_t nm, capm;
} trainer;

static lma_status add_token(trainer *tr, const char *s, size_t n, int32_t *id) {
    int32_t e = lma_tok_strmap_get(&tr->w2id, s, n);
    if (e >= 0) { *id = e; return LMA_OK; }
    if (tr->nid == tr->capid) { /* 2 arrays, one capacity */
        void *const arrs[] = {&tr->id2w, &tr->id2wlen};
        const size_t esz[] = {sizeof *tr->id2w, sizeof *tr->id2wlen};
        LMA_TRY(lma_grow_all(&tr->capid, tr->nid + 1, 1024, "bpe train vocabulary", 2, arrs, esz));
    }
    char *d = malloc(n + 1);
    if (!d) return lma_error(LMA_ERR_NOMEM, "bpe train: out of memory");
    memcpy(d, s, n); d[n] = 0;
    tr->id2w[tr->nid] = d; tr->id2wlen[tr->nid] = n;
    *id = (int32_t)tr->nid++;
    return lma_tok_strmap_put(&tr->w2id, s, n, *id);
}

/* Words longer than this many bytes are counted as pieces of at most this length (cut at
 * UTF-8 boundaries): merging inside a word is quadratic in its length (HF tokenizers' trainer
 * took 21 s on a 1 MB run of letters), and no useful token is that long. */
#define MAX_WORD 256

static lma_status count_word(trainer *tr, const char *s, size_t n) {
    while (n > MAX_WORD) {
        size_t cut = MAX_WORD;
        while (cut > 1 && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--; /* not inside a UTF-8 sequence */
        LMA_TRY(count_word(tr, s, cut));
        s += cut;
        n -= cut;
    }
    int32_t w = lma_tok_strmap_get(&tr->words, s, n);
    if (w >= 0) { tr->counts[w]++; return LMA_OK; }
    LMA_TRY(lma_grow(&tr->counts, &tr->ncounts, tr->words.n + 1, sizeof *tr->counts, 4096, "bpe train word counts"));
    tr->counts[tr->words.n] = 1;
    return lma_tok_strmap_put(&tr->words, s, n, (int32_t)tr->words.n);
}

static lma_status feed_line(trainer *tr, pcre2_code *re, pcre2_match_data *md, const char *s, size_t n) {
    size_t pos = 0, prev = 0;
    while (pos < n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return lma_error(LMA_ERR_INTERNAL, "bpe train: regex match failed (PCRE2 error %d)", rc);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (a == b) { int l = lma_tok_utf8_len((const unsigned char *)s + a, n - a); pos = a + (size_t)(l ? l : 1); continue; }
        if (prev != a) LMA_TRY(count_word(tr, s + prev, a - prev));
        LMA_TRY(count_word(tr, s + a, b - a));
        prev = pos = b;
    }
    if (prev < n) LMA_TRY(count_word(tr, s + prev, n - prev));
    return LMA_OK;
}

static lma_status feed_file(trainer *tr, pcre2_code *re, pcre2_match_data *md, const char *path) {
    FILE *f = NULL;
    LMA_TRY(lma_fopen_input(path, &f));
    char *line = NULL; size_t cap = 0;
    ssize_t got;
    lma_status st = LMA_OK;
    errno = 0;
    while (st == LMA_OK && (got = getline(&line, &cap, f)) > 0) {
        char *clean; size_t cl;
        st = lma_tok_utf8_sanitize(line, (size_t)got, &clean, &cl);
        if (st == LMA_OK) { st = feed_line(tr, re, md, clean, cl); free(clean); }
        errno = 0;
    }
    /* getline fails with ENOMEM on a line that does not fit: that is not the end of the file */
    if (st == LMA_OK && (ferror(f) || !feof(f)))
        st = lma_error(errno == ENOMEM ? LMA_ERR_NOMEM : LMA_ERR_IO, "%s: %s", path,
                       errno == ENOMEM ? "a line does not fit in memory" : "read error");
    free(line);
    fclose(f);
    return st;
}

/* Word::merge of HF's word.rs; records count changes and new pairs. */
static lma_status merge_word(trainer *tr, int32_t w, int32_t c1, int32_t c2, int32_t repl) {
    int32_t *s = tr->sym[w];
    uint32_t n = tr->len[w];
    int64_t cnt = (int64_t)tr->counts[w];
#define CHANGE(a, b, d) do { int64_t *p_ = pm_slot(&tr->pc, PAIR(a, b), 1); \
        if (!p_) { return lma_error(LMA_ERR_NOMEM, "bpe train: out of memory"); } *p_ += (d) * cnt; \
        if ((d) > 0 && !upd_push(&tr->u, PAIR(a, b), w)) return lma_error(LMA_ERR_NOMEM, "bpe train: out of memory"); } while (0)
    for (uint32_t i = 0; i < n; i++) {
        if (s[i] == c1 && i + 1 < n && s[i + 1] == c2) {
            int32_t first = s[i], second = s[i + 1];
            if (i > 0) { CHANGE(s[i - 1], first, -1); CHANGE(s[i - 1], repl, 1); }
            s[i] = repl;
            memmove(s + i + 1, s + i + 2, (n - i - 2) * sizeof *s);
            n--;
            if (i + 1 < n) { CHANGE(second, s[i + 1], -1); CHANGE(repl, s[i + 1], 1); }
        }
    }
#undef CHANGE
    tr->len[w] = n;
    return LMA_OK;
}

static lma_status write_out(trainer *tr, const lma_bpe_train_params *p, size_t n_special, const char *dir) {
    LMA_TRY(lma_mkdir_p(dir));
    /* merges: a pair merged twice keeps its last rank (HF stores them in a map) */
    pmap last = {0};
    for (size_t i = 0; i < tr->nm; i++) {
        int64_t *v = pm_slot(&last, tr->mpair[i], 1);
        if (!v) { free(last.k); free(last.v); return lma_error(LMA_ERR_NOMEM, "bpe train: out of memory"); }
        *v = (int64_t)i;
    }
    cJSON *root = cJSON_CreateObject(), *model = NULL, *vocab = NULL, *merges = NULL, *added = NULL;
    lma_status st = LMA_OK;
    if (!root) st = lma_error(LMA_ERR_NOMEM, "bpe train: out of memory");
    if (st == LMA_OK) {
        cJSON_AddStringToObject(root, "version", "1.0");
        cJSON_AddNullToObject(root, "truncation");
        cJSON_AddNullToObject(root, "padding");
        added = cJSON_AddArrayToObject(root, "added_tokens");
        for (size_t i = 0; i < n_special; i++) {
            cJSON *a = cJSON_CreateObject();
            int32_t id = lma_tok_strmap_get(&tr->w2id, p->special[i], strlen(p->special[i]));
            cJSON_AddNumberToObject(a, "id", id);
            cJSON_AddStringToObject(a, "content", p->special[i]);
            cJSON_AddBoolToObject(a, "single_word", 0);
            cJSON_AddBoolToObject(a, "lstrip", 0);
            cJSON_AddBoolToObject(a, "rstrip", 0);
            cJSON_AddBoolToObject(a, "normalized", 0);
            cJSON_AddBoolToObject(a, "special", 1);
            cJSON_AddItemToArray(added, a);
        }
        cJSON_AddNullToObject(root, "normalizer");
        cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
        cJSON_AddStringToObject(pre, "type", "Sequence");
        cJSON *pl = cJSON_AddArrayToObject(pre, "pretokenizers");
        cJSON *sp = cJSON_CreateObject();
        cJSON_AddStringToObject(sp, "type", "Split");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(sp, "pattern"), "Regex", LLAMA3_RE);
        cJSON_AddStringToObject(sp, "behavior", "Isolated");
        cJSON_AddBoolToObject(sp, "invert", 0);
        cJSON_AddItemToArray(pl, sp);
        cJSON *bl = cJSON_CreateObject();
        cJSON_AddStringToObject(bl, "type", "ByteLevel");
        cJSON_AddBoolToObject(bl, "add_prefix_space", 0);
        cJSON_AddBoolToObject(bl, "trim_offsets", 1);
        cJSON_AddBoolToObject(bl, "use_regex", 0);
        cJSON_AddItemToArray(pl, bl);
        cJSON_AddNullToObject(root, "post_processor");
        cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
        cJSON_AddStringToObject(dec, "type", "ByteLevel");
        cJSON_AddBoolToObject(dec, "add_prefix_space", 1);
        cJSON_AddBoolToObject(dec, "trim_offsets", 1);
        cJSON_AddBoolToObject(dec, "use_regex", 1);
        model = cJSON_AddObjectToObject(root, "model");
        cJSON_AddStringToObject(model, "type", "BPE");
        cJSON_AddNullToObject(model, "dropout");
        cJSON_AddNullToObject(model, "unk_token");
        cJSON_AddNullToObject(model, "continuing_subword_prefix");
        cJSON_AddNullToObject(model, "end_of_word_suffix");
        cJSON_AddBoolToObject(model, "fuse_unk", 0);
        cJSON_AddBoolToObject(model, "byte_fallback", 0);
        cJSON_AddBoolToObject(model, "ignore_merges", 0);
        vocab = cJSON_AddObjectToObject(model, "vocab");
        for (size_t i = 0; i < tr->nid; i++) cJSON_AddNumberToObject(vocab, tr->id2w[i], (double)i);
        merges = cJSON_AddArrayToObject(model, "merges");
        for (size_t i = 0; i < tr->nm; i++) {
            if (*pm_slot(&last, tr->mpair[i], 0) != (int64_t)i) continue;
            cJSON *pr = cJSON_CreateArray();
            cJSON_AddItemToArray(pr, cJSON_CreateString(tr->id2w[tr->mpair[i] >> 32]));
            cJSON_AddItemToArray(pr, cJSON_CreateString(tr->id2w[tr->mpair[i] & 0xFFFFFFFFu]));
            cJSON_AddItemToArray(merges, pr);
        }
        char path[4096];
        st = lma_path_join(path, sizeof path, dir, "tokenizer.json");
        if (st == LMA_OK) st = lma_json_save(path, root);
    }
    cJSON_Delete(root);
    free(last.k); free(last.v);
    if (st != LMA_OK) return st;
    cJSON *cfg = cJSON_CreateObject();
    if (!cfg) return lma_error(LMA_ERR_NOMEM, "bpe train: out of memory");
    cJSON_AddStringToObject(cfg, "tokenizer_class", "PreTrainedTokenizerFast");
    cJSON_AddBoolToObject(cfg, "clean_up_tokenization_spaces", 0);
    if (n_special) cJSON_AddStringToObject(cfg, "eos_token", p->special[0]);
    cJSON *atd = cJSON_AddObjectToObject(cfg, "added_tokens_decoder");
    for (size_t i = 0; i < n_special; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", lma_tok_strmap_get(&tr->w2id, p->special[i], strlen(p->special[i])));
        cJSON *a = cJSON_AddObjectToObject(atd, key);
        cJSON_AddStringToObject(a, "content", p->special[i]);
        cJSON_AddBoolToObject(a, "lstrip", 0);
        cJSON_AddBoolToObject(a, "normalized", 0);
        cJSON_AddBoolToObject(a, "rstrip", 0);
        cJSON_AddBoolToObject(a, "single_word", 0);
        cJSON_AddBoolToObject(a, "special", 1);
    }
    char path[4096];
    st = lma_path_join(path, sizeof path, dir, "tokenizer_config.json");
    if (st == LMA_OK) st = lma_json_save(path, cfg);
    cJSON_Delete(cfg);
    return st;
}

static void trainer_free(trainer *tr) {
    lma_tok_strmap_free(&tr->words); lma_tok_strmap_free(&tr->w2id);
    free(tr->counts);
    free(tr->sym); free(tr->len);
    for (size_t i = 0; i < tr->nid; i++) free(tr->id2w[i]);
    free(tr->id2w); free(tr->id2wlen);
    free(tr->pc.k); free(tr->pc.v);
    for (size_t i = 0; i < tr->h.n; i++) free(tr->h.v[i].pos);
    free(tr->h.v); free(tr->u.v);
    free(tr->mpair);
}

lma_status lma_bpe_train_files(const char *const *files, size_t n_files, const lma_bpe_train_params *p,
                               const char *out_dir) {
    if (!p || p->vocab_size <= 0 || (!files && n_files) || !out_dir)
        return lma_error(LMA_ERR_ARG, "bpe train: bad arguments (vocab_size must be > 0)");
    trainer tr;
    memset(&tr, 0, sizeof tr);
    pcre2_code *re = NULL;
    LMA_TRY(lma_tok_regex_compile(LLAMA3_RE, strlen(LLAMA3_RE), "bpe train", &re));
    pcre2_match_data *md = pcre2_match_data_create(8, NULL);
    lma_status st = md ? LMA_OK : lma_error(LMA_ERR_NOMEM, "bpe train: out of memory");
    lma_progress pg;
    /* 1. count words */
    for (size_t i = 0; i < n_files && st == LMA_OK; i++) st = feed_file(&tr, re, md, files[i]);
    if (md) pcre2_match_data_free(md);
    pcre2_code_free(re);
    size_t nw = tr.words.n;
    /* 2. specials, then the 256 byte chars sorted by code point */
    size_t n_special = p->n_special;
    for (size_t i = 0; i < n_special && st == LMA_OK; i++) {
        int32_t id;
        if (!p->special[i] || !*p->special[i]) st = lma_error(LMA_ERR_ARG, "bpe train: empty special token");
        else st = add_token(&tr, p->special[i], strlen(p->special[i]), &id);
    }
    int32_t byte_tok[256];
    if (st == LMA_OK) {
        int order[256];
        for (int b = 0; b < 256; b++) order[b] = b;
        for (int i = 1; i < 256; i++) { /* insertion sort by mapped code point */
            int x = order[i], j = i;
            while (j > 0 && lma_tok_byte_to_char[order[j - 1]] > lma_tok_byte_to_char[x]) { order[j] = order[j - 1]; j--; }
            order[j] = x;
        }
        for (int k = 0; k < 256 && st == LMA_OK; k++) {
            char c[4]; int l = lma_tok_utf8_enc(lma_tok_byte_to_char[order[k]], c);
            st = add_token(&tr, c, (size_t)l, &byte_tok[order[k]]);
        }
    }
    /* 3. words as symbol ids; 4. pair counts */
    if (st == LMA_OK) {
        tr.sym = calloc(nw ? nw : 1, sizeof *tr.sym);
        tr.len = calloc(nw ? nw : 1, sizeof *tr.len);
        if (!tr.sym || !tr.len) st = lma_error(LMA_ERR_NOMEM, "bpe train: out of memory");
    }
    for (size_t w = 0; w < nw && st == LMA_OK; w++) {
        const unsigned char *s = (const unsigned char *)tr.words.pool + tr.words.off[w];
        uint32_t n = tr.words.len[w];
        int32_t wi = tr.words.val[w];
        tr.sym[wi] = malloc((n ? n : 1) * sizeof(int32_t));
        if (!tr.sym[wi]) { st = lma_error(LMA_ERR_NOMEM, "bpe train: out of memory"); break; }
        for (uint32_t i = 0; i < n; i++) tr.sym[wi][i] = byte_tok[s[i]];
        tr.len[wi] = n;
    }
    for (size_t w = 0; w < nw && st == LMA_OK; w++)
        for (uint32_t i = 0; i + 1 < tr.len[w] && st == LMA_OK; i++) {
            uint64_t pr = PAIR(tr.sym[w][i], tr.sym[w][i + 1]);
            int64_t *c = pm_slot(&tr.pc, pr, 1);
            if (!c || !upd_push(&tr.u, pr, (int32_t)w)) st = lma_error(LMA_ERR_NOMEM, "bpe train: out of memory");
            else *c += (int64_t)tr.counts[w];
        }
    if (st == LMA_OK) st = drain(&tr.u, &tr.pc, &tr.h);
    /* 5. merges */
    if (!p->quiet) lma_progress_start(&pg, "bpe merges", p->vocab_size > (int)tr.nid ? p->vocab_size - (int)tr.nid : 0);
    char *buf = NULL; size_t bufcap = 0;
    while (st == LMA_OK && tr.nid < (size_t)p->vocab_size && tr.h.n) {
        hentry top = h_pop(&tr.h);
        int64_t cur = *pm_slot(&tr.pc, top.pair, 0);
        if (top.count != cur) {
            top.count = cur;
            if (!h_push(&tr.h, top)) { free(top.pos); st = lma_error(LMA_ERR_NOMEM, "bpe train: out of memory"); }
            continue;
        }
        if (top.count < 1 || p->min_frequency > top.count) { free(top.pos); break; }
        int32_t a = (int32_t)(top.pair >> 32), b = (int32_t)(top.pair & 0xFFFFFFFFu);
        size_t la = tr.id2wlen[a], lb = tr.id2wlen[b];
        if (la + lb + 1 > bufcap) {
            bufcap = 2 * (la + lb + 1);
            char *nb = realloc(buf, bufcap);
            if (!nb) { free(top.pos); st = lma_error(LMA_ERR_NOMEM, "bpe train: out of memory"); break; }
            buf = nb;
        }
        memcpy(buf, tr.id2w[a], la); memcpy(buf + la, tr.id2w[b], lb);
        int32_t nid;
        st = add_token(&tr, buf, la + lb, &nid);
        if (st == LMA_OK) st = lma_grow(&tr.mpair, &tr.capm, tr.nm + 1, sizeof *tr.mpair, 1024, "bpe train merges");
        if (st == LMA_OK) tr.mpair[tr.nm++] = top.pair;
        for (size_t k = 0; k < top.npos && st == LMA_OK; k++) st = merge_word(&tr, top.pos[k], a, b, nid);
        free(top.pos);
        if (st == LMA_OK) st = drain(&tr.u, &tr.pc, &tr.h);
        if (!p->quiet) lma_progress_update(&pg, (int64_t)tr.nm);
    }
    free(buf);
    if (!p->quiet) lma_progress_finish(&pg);
    if (st == LMA_OK) st = write_out(&tr, p, n_special, out_dir);
    for (size_t w = 0; w < nw && tr.sym; w++) { free(tr.sym[w]); tr.sym[w] = NULL; }
    trainer_free(&tr);
    return st;
}
