/* In-context learning: pool, shot selection (random, fixed, BM25, kNN, MMR), prompt building
 * within a token budget (see icl.h). */
#include "icl/icl.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/io.h"
#include "core/json.h"
#include "core/rng.h"
#include "tok/chat_template.h"

/* the words of a text for BM25 and TF-IDF: lowercased runs of ASCII letters and digits and
 * of non-ASCII bytes (UTF-8 letters), as ids into the pool's vocabulary */
typedef struct {
    int *w;     /* word ids */
    int n;
} bag;

struct lma_icl_pool {
    lma_icl_example *ex;
    size_t n;
    char **vocab;  /* word strings */
    int n_vocab, cap_vocab;
    bag *docs;     /* (n) the inputs' words */
    int *df;       /* (n_vocab) inputs containing each word */
    double avgdl;
    lma_embedder *embedder; /* knn: not owned */
    float *emb;    /* (n, dim) the inputs' embeddings, unit length; NULL until lma_icl_pool_embed */
    int dim;
};

lma_icl_params lma_icl_default_params(void) {
    lma_icl_params p = {.shots = 4, .select = LMA_ICL_FIXED, .format = LMA_ICL_PLAIN, .seed = 1234, .budget = 0,
                        .mmr_lambda = 0.5};
    return p;
}

const char *lma_icl_select_name(lma_icl_select s) {
    static const char *n[] = {"random", "fixed", "bm25", "knn", "mmr"};
    return (unsigned)s < 5 ? n[s] : "?";
}

size_t lma_icl_pool_size(const lma_icl_pool *p) { return p->n; }
const lma_icl_example *lma_icl_pool_get(const lma_icl_pool *p, size_t i) { return i < p->n ? &p->ex[i] : NULL; }

void lma_icl_pool_free(lma_icl_pool *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->ex[i].input);
        free(p->ex[i].output);
        free(p->ex[i].reasoning);
        if (p->docs) free(p->docs[i].w);
    }
    for (int i = 0; i < p->n_vocab; i++) free(p->vocab[i]);
    free(p->vocab);
    free(p->docs);
    free(p->df);
    free(p->emb);
    free(p->ex);
    free(p);
}

/* the id of word w[0..n), or -1 when unknown (add: insert it) */
static int word_id(lma_icl_pool *p, const char *w, size_t n, int add) {
    for (int i = 0; i < p->n_vocab; i++)
        if (strlen(p->vocab[i]) == n && !memcmp(p->vocab[i], w, n)) return i;
    if (!add) return -1;
    size_t cap = (size_t)p->cap_vocab;
    if (lma_grow(&p->vocab, &cap, (size_t)p->n_vocab + 1, sizeof *p->vocab, 64, "ICL vocabulary") != LMA_OK) return -2;
    p->cap_vocab = (int)cap;
    char *s = malloc(n + 1);
    if (!s) return -2;
    memcpy(s, w, n);
    s[n] = 0;
    p->vocab[p->n_vocab] = s;
    return p->n_vocab++;
}

static int word_char(unsigned char c) { return isalnum(c) || c >= 0x80; }

/* words of text (lowercased) -> ids; unknown words get -1 unless add */
static lma_status words(lma_icl_pool *p, const char *text, int add, bag *b) {
    b->w = NULL;
    b->n = 0;
    size_t cap = 0, len = strlen(text);
    char buf[256];
    for (size_t i = 0; i < len;) {
        if (!word_char((unsigned char)text[i])) { i++; continue; }
        size_t j = i, k = 0;
        while (j < len && word_char((unsigned char)text[j])) {
            if (k < sizeof buf) buf[k++] = (char)tolower((unsigned char)text[j]);
            j++;
        }
        int id = word_id(p, buf, k, add);
        if (id == -2) return LMA_ERR_NOMEM;
        LMA_TRY(lma_grow(&b->w, &cap, (size_t)b->n + 1, sizeof *b->w, 16, "ICL words"));
        b->w[b->n++] = id;
        i = j;
    }
    return LMA_OK;
}

static lma_status index_pool(lma_icl_pool *p) {
    p->docs = lma_calloc(p->n ? p->n : 1, sizeof *p->docs, "ICL index");
    if (!p->docs) return LMA_ERR_NOMEM;
    double total = 0;
    for (size_t i = 0; i < p->n; i++) {
        LMA_TRY(words(p, p->ex[i].input, 1, &p->docs[i]));
        total += p->docs[i].n;
    }
    p->avgdl = p->n ? total / (double)p->n : 0;
    p->df = lma_calloc((size_t)(p->n_vocab ? p->n_vocab : 1), sizeof *p->df, "ICL index");
    if (!p->df) return LMA_ERR_NOMEM;
    char *seen = lma_calloc((size_t)(p->n_vocab ? p->n_vocab : 1), 1, "ICL index");
    if (!seen) return LMA_ERR_NOMEM;
    for (size_t i = 0; i < p->n; i++) {
        for (int k = 0; k < p->docs[i].n; k++)
            if (!seen[p->docs[i].w[k]]) { seen[p->docs[i].w[k]] = 1; p->df[p->docs[i].w[k]]++; }
        for (int k = 0; k < p->docs[i].n; k++) seen[p->docs[i].w[k]] = 0;
    }
    free(seen);
    return LMA_OK;
}

static char *dup_str(const char *s) {
    char *d = s ? strdup(s) : NULL;
    return d;
}

lma_status lma_icl_pool_load(const char *path, lma_icl_pool **out) {
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    LMA_TRY(lma_read_file(path, &data, &len));
    lma_icl_pool *p = lma_calloc(1, sizeof *p, "ICL pool");
    if (!p) { free(data); return LMA_ERR_NOMEM; }
    size_t cap = 0;
    lma_status s = LMA_OK;
    long line = 0;
    for (char *l = data; s == LMA_OK && l < data + len;) {
        char *e = memchr(l, '\n', (size_t)(data + len - l));
        size_t n = e ? (size_t)(e - l) : (size_t)(data + len - l);
        line++;
        size_t k = 0;
        while (k < n && isspace((unsigned char)l[k])) k++;
        if (k < n) {
            char ctx[4200];
            snprintf(ctx, sizeof ctx, "%s:%ld", path, line);
            cJSON *j = NULL;
            const char *in = NULL, *o = NULL, *r = NULL;
            s = lma_json_parse(l, n, ctx, &j);
            if (s == LMA_OK && !cJSON_IsObject(j)) s = lma_error(LMA_ERR_FORMAT, "%s: expected a JSON object", ctx);
            if (s == LMA_OK) s = lma_json_str(j, "input", 1, ctx, &in);
            if (s == LMA_OK) s = lma_json_str(j, "output", 1, ctx, &o);
            if (s == LMA_OK) s = lma_json_str(j, "reasoning", 0, ctx, &r);
            if (s == LMA_OK && (!in || !o)) s = lma_error(LMA_ERR_FORMAT, "%s: \"input\" and \"output\" must be strings", ctx);
            if (s == LMA_OK) s = lma_grow(&p->ex, &cap, p->n + 1, sizeof *p->ex, 64, "ICL pool");
            if (s == LMA_OK) {
                lma_icl_example *x = &p->ex[p->n++];
                x->input = dup_str(in);
                x->output = dup_str(o);
                x->reasoning = dup_str(r);
                if (!x->input || !x->output || (r && !x->reasoning)) s = lma_error(LMA_ERR_NOMEM, "out of memory");
            }
            cJSON_Delete(j);
        }
        l += n + 1;
    }
    free(data);
    if (s == LMA_OK && p->n == 0) s = lma_error(LMA_ERR_FORMAT, "%s: no examples", path);
    if (s == LMA_OK) s = index_pool(p);
    if (s != LMA_OK) { lma_icl_pool_free(p); return s; }
    *out = p;
    return LMA_OK;
}

/* ---- selection ------------------------------------------------------------------ */

static void unit(float *v, int dim) {
    double nn = 0;
    for (int i = 0; i < dim; i++) nn += (double)v[i] * v[i];
    if (nn > 0)
        for (int i = 0; i < dim; i++) v[i] = (float)(v[i] / sqrt(nn));
}

lma_status lma_icl_pool_embed(lma_icl_pool *p, lma_embedder *e) {
    int dim = lma_embedder_dim(e);
    const char **texts = lma_calloc(p->n, sizeof *texts, "ICL embeddings");
    float *emb = lma_malloc(p->n * (size_t)dim * sizeof *emb, "ICL embeddings");
    lma_status s = texts && emb ? LMA_OK : LMA_ERR_NOMEM;
    for (size_t i = 0; s == LMA_OK && i < p->n; i++) texts[i] = p->ex[i].input;
    if (s == LMA_OK) s = lma_embed(e, texts, p->n, 0, emb);
    for (size_t i = 0; s == LMA_OK && i < p->n; i++) unit(emb + i * (size_t)dim, dim);
    free(texts);
    if (s != LMA_OK) { free(emb); return s; }
    free(p->emb);
    p->emb = emb, p->dim = dim, p->embedder = e;
    return LMA_OK;
}

lma_status lma_icl_knn_scores(const lma_icl_pool *p, const char *query, double *scores) {
    if (!p->emb) return lma_error(LMA_ERR_ARG, "--select knn needs an embedding model (--embed M)");
    float *q = malloc((size_t)p->dim * sizeof *q);
    if (!q) return lma_error(LMA_ERR_NOMEM, "out of memory");
    lma_status s = lma_embed(p->embedder, &query, 1, 1, q);
    if (s == LMA_OK) {
        unit(q, p->dim);
        for (size_t d = 0; d < p->n; d++) {
            double dot = 0;
            const float *x = p->emb + d * (size_t)p->dim;
            for (int i = 0; i < p->dim; i++) dot += (double)q[i] * x[i];
            scores[d] = dot;
        }
    }
    free(q);
    return s;
}

lma_status lma_icl_bm25_scores(const lma_icl_pool *p, const char *query, double *scores) {
    const double k1 = 1.5, b = 0.75, eps = 0.25;
    bag q;
    LMA_TRY(words((lma_icl_pool *)p, query, 0, &q));
    /* rank_bm25's BM25Okapi: idf = log((N - df + 0.5) / (df + 0.5)); a negative idf becomes
     * eps x the mean idf over the vocabulary */
    double N = (double)p->n, sum = 0;
    int neg = 0;
    for (int i = 0; i < p->n_vocab; i++) {
        double idf = log((N - p->df[i] + 0.5) / (p->df[i] + 0.5));
        sum += idf;
        if (idf < 0) neg = 1;
    }
    double floor_idf = eps * (p->n_vocab ? sum / p->n_vocab : 0);
    (void)neg;
    for (size_t d = 0; d < p->n; d++) {
        double s = 0, dl = p->docs[d].n;
        for (int k = 0; k < q.n; k++) {
            int w = q.w[k];
            if (w < 0) continue;
            double tf = 0;
            for (int t = 0; t < p->docs[d].n; t++) tf += p->docs[d].w[t] == w;
            double idf = log((N - p->df[w] + 0.5) / (p->df[w] + 0.5));
            if (idf < 0) idf = floor_idf;
            s += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / (p->avgdl > 0 ? p->avgdl : 1)));
        }
        scores[d] = s;
    }
    free(q.w);
    return LMA_OK;
}

/* TF-IDF vector of a bag as dense weights over the vocabulary (normalized) */
static void tfidf(const lma_icl_pool *p, const bag *b, double *v) {
    memset(v, 0, (size_t)p->n_vocab * sizeof *v);
    for (int k = 0; k < b->n; k++)
        if (b->w[k] >= 0) v[b->w[k]] += 1;
    double nn = 0;
    for (int i = 0; i < p->n_vocab; i++) {
        if (v[i] == 0) continue;
        v[i] *= log(((double)p->n + 1) / (p->df[i] + 1)) + 1; /* smoothed idf */
        nn += v[i] * v[i];
    }
    nn = sqrt(nn);
    if (nn > 0)
        for (int i = 0; i < p->n_vocab; i++) v[i] /= nn;
}

static double dot(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static lma_status select_mmr(const lma_icl_pool *p, const char *query, const char *skip, const lma_icl_params *prm,
                             size_t *idx, int *k) {
    int V = p->n_vocab > 0 ? p->n_vocab : 1;
    double *vec = malloc(((size_t)p->n + 1) * (size_t)V * sizeof *vec), *rel = malloc(p->n * sizeof *rel);
    char *used = calloc(p->n, 1);
    bag q = {0};
    lma_status s = (!vec || !rel || !used) ? lma_error(LMA_ERR_NOMEM, "out of memory") : LMA_OK;
    if (s == LMA_OK) s = words((lma_icl_pool *)p, query, 0, &q);
    if (s == LMA_OK) {
        double *qv = vec + p->n * (size_t)V;
        tfidf(p, &q, qv);
        for (size_t d = 0; d < p->n; d++) {
            tfidf(p, &p->docs[d], vec + d * (size_t)V);
            rel[d] = dot(qv, vec + d * (size_t)V, V);
            if (!strcmp(p->ex[d].input, skip)) used[d] = 1;
        }
        *k = 0;
        while (*k < prm->shots) {
            double best = -INFINITY;
            size_t bi = p->n;
            for (size_t d = 0; d < p->n; d++) {
                if (used[d]) continue;
                double red = 0;
                for (int j = 0; j < *k; j++) {
                    double sim = dot(vec + d * (size_t)V, vec + idx[j] * (size_t)V, V);
                    if (sim > red) red = sim;
                }
                double sc = prm->mmr_lambda * rel[d] - (1 - prm->mmr_lambda) * red;
                if (sc > best) { best = sc; bi = d; }
            }
            if (bi == p->n) break;
            used[bi] = 1;
            idx[(*k)++] = bi;
        }
    }
    free(q.w);
    free(vec);
    free(rel);
    free(used);
    return s;
}

lma_status lma_icl_select_shots(const lma_icl_pool *p, const char *query, size_t qi, const lma_icl_params *prm,
                                size_t *idx, int *k) {
    *k = 0;
    if (prm->shots <= 0) return LMA_OK;
    switch (prm->select) {
    case LMA_ICL_MMR: return select_mmr(p, query, query, prm, idx, k);
    case LMA_ICL_FIXED:
        for (size_t d = 0; d < p->n && *k < prm->shots; d++)
            if (strcmp(p->ex[d].input, query)) idx[(*k)++] = d;
        return LMA_OK;
    case LMA_ICL_RANDOM: {
        /* a partial Fisher-Yates shuffle of the eligible examples, seeded per query */
        size_t *perm = malloc(p->n * sizeof *perm), m = 0;
        if (!perm) return lma_error(LMA_ERR_NOMEM, "out of memory");
        for (size_t d = 0; d < p->n; d++)
            if (strcmp(p->ex[d].input, query)) perm[m++] = d;
        lma_rng r;
        lma_rng_seed(&r, prm->seed);
        r = lma_rng_split(&r, (uint64_t)qi);
        for (size_t i = 0; i < m && *k < prm->shots; i++) {
            size_t j = i + (size_t)lma_rng_below(&r, m - i), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
            idx[(*k)++] = perm[i];
        }
        free(perm);
        return LMA_OK;
    }
    case LMA_ICL_BM25:
    case LMA_ICL_KNN: {
        /* the k best by score, most relevant first; ties: pool order */
        double *sc = malloc(p->n * sizeof *sc);
        char *used = calloc(p->n, 1);
        if (!sc || !used) { free(sc); free(used); return lma_error(LMA_ERR_NOMEM, "out of memory"); }
        lma_status s = prm->select == LMA_ICL_BM25 ? lma_icl_bm25_scores(p, query, sc) : lma_icl_knn_scores(p, query, sc);
        for (size_t d = 0; d < p->n; d++)
            if (!strcmp(p->ex[d].input, query)) used[d] = 1;
        while (s == LMA_OK && *k < prm->shots) {
            size_t bi = p->n;
            for (size_t d = 0; d < p->n; d++)
                if (!used[d] && (bi == p->n || sc[d] > sc[bi])) bi = d;
            if (bi == p->n) break;
            used[bi] = 1;
            idx[(*k)++] = bi;
        }
        free(sc);
        free(used);
        return s;
    }
    }
    return lma_error(LMA_ERR_ARG, "unknown selection");
}

/* ---- prompts -------------------------------------------------------------------- */

static lma_status render(const lma_icl_pool *p, const lma_tokenizer *tok, const char *query, const size_t *idx, int k,
                         const lma_icl_params *prm, int32_t **ids, size_t *n_ids, char **text) {
    *ids = NULL;
    *n_ids = 0;
    if (prm->format == LMA_ICL_CHAT) {
        lma_chat_msg *msgs = malloc(((size_t)k * 2 + 1) * sizeof *msgs);
        if (!msgs) return lma_error(LMA_ERR_NOMEM, "out of memory");
        size_t n = 0;
        for (int i = 0; i < k; i++) {
            msgs[n++] = (lma_chat_msg){"user", p->ex[idx[i]].input};
            msgs[n++] = (lma_chat_msg){"assistant", p->ex[idx[i]].output};
        }
        msgs[n++] = (lma_chat_msg){"user", query};
        size_t len = 0, *sp = NULL, ns = 0;
        char *t = NULL;
        lma_status s = lma_chat_render(tok, prm->template_spec, msgs, n, 1, &t, &len, &sp, &ns);
        free(sp);
        free(msgs);
        if (s == LMA_OK) s = lma_tok_encode(tok, t, len, 0, ids, n_ids);
        if (text) *text = t;
        else free(t);
        return s;
    }
    lma_buf b = {0};
    lma_status s = LMA_OK;
    int cot = prm->format == LMA_ICL_COT;
    for (int i = 0; i < k && s == LMA_OK; i++) {
        const lma_icl_example *x = &p->ex[idx[i]];
        if (cot) s = lma_buf_printf(&b, "Input: %s\nReasoning: %s\nOutput: %s\n\n", x->input, x->reasoning ? x->reasoning : "",
                                    x->output);
        else s = lma_buf_printf(&b, "Input: %s\nOutput: %s\n\n", x->input, x->output);
    }
    if (s == LMA_OK) s = lma_buf_printf(&b, cot ? "Input: %s\nReasoning:" : "Input: %s\nOutput:", query);
    if (s == LMA_OK) s = lma_tok_encode(tok, b.p ? b.p : "", b.len, 1, ids, n_ids);
    if (text && s == LMA_OK) { *text = b.p; b.p = NULL; }
    lma_buf_free(&b);
    return s;
}

lma_status lma_icl_build(const lma_icl_pool *p, const lma_tokenizer *tok, const char *query, size_t qi,
                         const lma_icl_params *prm, int32_t **ids, size_t *n_ids, char **text, int *shots) {
    *ids = NULL;
    *n_ids = 0;
    if (text) *text = NULL;
    size_t *idx = malloc(((size_t)(prm->shots > 0 ? prm->shots : 1)) * sizeof *idx);
    if (!idx) return lma_error(LMA_ERR_NOMEM, "out of memory");
    int k = 0;
    lma_status s = lma_icl_select_shots(p, query, qi, prm, idx, &k);
    /* drop the least relevant shot (the last chosen) until the prompt fits the budget */
    for (; s == LMA_OK; k--) {
        free(*ids);
        if (text) { free(*text); *text = NULL; }
        s = render(p, tok, query, idx, k, prm, ids, n_ids, text);
        if (s != LMA_OK || prm->budget <= 0 || *n_ids <= (size_t)prm->budget) break;
        if (k == 0) {
            s = lma_error(LMA_ERR_ARG, "query %zu alone takes %zu prompt tokens, over the budget of %d", qi, *n_ids,
                          prm->budget);
            break;
        }
    }
    free(idx);
    if (s != LMA_OK) {
        free(*ids);
        *ids = NULL;
        *n_ids = 0;
        if (text) { free(*text); *text = NULL; }
        return s;
    }
    if (shots) *shots = k;
    return LMA_OK;
}

int lma_icl_exact(const char *a, const char *b) {
    while (isspace((unsigned char)*a)) a++;
    while (isspace((unsigned char)*b)) b++;
    size_t na = strlen(a), nb = strlen(b);
    while (na && isspace((unsigned char)a[na - 1])) na--;
    while (nb && isspace((unsigned char)b[nb - 1])) nb--;
    return na == nb && !memcmp(a, b, na);
}
