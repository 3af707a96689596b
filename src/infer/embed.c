/* Sentence embeddings (embed.h) of a sentence-transformers folder:
 *   modules.json  Transformer (the folder itself or its "path"), Pooling (its config.json:
 *                 cls, max, mean, mean_sqrt_len, concatenated in sentence-transformers'
 *                 order), Normalize; any other module (Dense, ...) is refused by name.
 *                 Without modules.json: a plain BertModel folder, mean pooling, no Normalize.
 *   sentence_bert_config.json  max_seq_length (else the model's max_position_embeddings).
 * Texts are tokenized in parallel, truncated as sentence-transformers does (the first
 * max_seq_length - 2 tokens between [CLS] and [SEP]), sorted by length (longest first),
 * cut into batches of `batch` rows padded to their longest, run through the encoder and
 * pooled over the valid tokens on the host.
 * A folder whose config.json is not a BERT model is a Llama-family decoder (model/llama.h,
 * the model definition the generator uses): each text runs alone (no padding) through
 * lma_model_hidden_cached, the final hidden states after the final norm (transformers'
 * AutoModel last_hidden_state), pooled by its last token (Pooling pooling_mode_lasttoken,
 * Qwen3-Embedding) or their mean; a query gets the query prompt in front. */
#include "infer/embed.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/io.h"
#include "core/json.h"
#include "core/model_path.h"
#include "model/encoder.h"
#include "model/llama.h"
#include "tok/tokenizer.h"

enum { POOL_CLS = 1, POOL_MAX = 2, POOL_MEAN = 4, POOL_MEAN_SQRT = 8, POOL_LAST = 16 };

struct lma_embedder {
    lma_encoder *enc;     /* BERT family, or */
    lma_model *dec;       /* a Llama-family decoder */
    char *query_prefix;   /* put before a query's text ("" or NULL: none) */
    lma_tokenizer *tok;
    int pool;        /* POOL_* bits */
    int normalize;   /* the Normalize module */
    int max_tokens;  /* max_seq_length */
    int dim;         /* C times the number of pooling modes */
    int batch;       /* rows per forward */
    int32_t pad_id;
};

int lma_embedder_dim(const lma_embedder *e) { return e->dim; }
int lma_embedder_max_tokens(const lma_embedder *e) { return e->max_tokens; }
void lma_embedder_set_batch(lma_embedder *e, int batch) { e->batch = batch > 0 ? batch : 32; }

static lma_status read_pooling(const char *dir, const char *sub, int C, int *pool) {
    char d[4096], path[4096];
    LMA_TRY(lma_path_join(d, sizeof d, dir, sub));
    LMA_TRY(lma_path_join(path, sizeof path, d, "config.json"));
    cJSON *j = NULL;
    LMA_TRY(lma_json_load(path, &j));
    static const struct { const char *key; int bit; } modes[] = {
        {"pooling_mode_cls_token", POOL_CLS}, {"pooling_mode_max_tokens", POOL_MAX},
        {"pooling_mode_mean_tokens", POOL_MEAN}, {"pooling_mode_mean_sqrt_len_tokens", POOL_MEAN_SQRT},
        {"pooling_mode_lasttoken", POOL_LAST}};
    static const char *const unsupported[] = {"pooling_mode_weightedmean_tokens"};
    lma_status st = LMA_OK;
    *pool = 0;
    for (size_t i = 0; i < 5 && st == LMA_OK; i++) {
        int on = 0;
        st = lma_json_bool(j, modes[i].key, 0, path, &on);
        if (on) *pool |= modes[i].bit;
    }
    for (size_t i = 0; i < 1 && st == LMA_OK; i++) {
        int on = 0;
        st = lma_json_bool(j, unsupported[i], 0, path, &on);
        if (st == LMA_OK && on) st = lma_error(LMA_ERR_UNSUPPORTED, "%s: %s is not supported", path, unsupported[i]);
    }
    int64_t wd = C;
    if (st == LMA_OK) st = lma_json_int(j, "word_embedding_dimension", 0, path, &wd);
    if (st == LMA_OK && wd != C)
        st = lma_error(LMA_ERR_FORMAT, "%s: word_embedding_dimension %lld, the model's hidden size is %d", path, (long long)wd, C);
    if (st == LMA_OK && !*pool) st = lma_error(LMA_ERR_FORMAT, "%s: no pooling mode is on", path);
    cJSON_Delete(j);
    return st;
}

/* modules.json: the transformer folder (into tdir) and the pooling folder (into psub, "" =
 * none), Normalize. Without modules.json: the folder itself, mean pooling. */
static lma_status read_modules(lma_embedder *e, const char *dir, char *tdir, size_t cap, char *psub, size_t pcap) {
    char path[4096];
    LMA_TRY(lma_path_join(path, sizeof path, dir, "modules.json"));
    snprintf(tdir, cap, "%s", dir);
    psub[0] = 0;
    if (!lma_file_exists(path)) { e->pool = POOL_MEAN; return LMA_OK; }
    cJSON *j = NULL;
    LMA_TRY(lma_json_load(path, &j));
    lma_status st = cJSON_IsArray(j) ? LMA_OK : lma_error(LMA_ERR_FORMAT, "%s: must be an array of modules", path);
    const cJSON *m;
    int k = 0, have_pool = 0;
    cJSON_ArrayForEach(m, j) {
        if (st != LMA_OK) break;
        const char *type = NULL, *sub = NULL;
        st = lma_json_str(m, "type", 1, path, &type);
        if (st == LMA_OK) st = lma_json_str(m, "path", 0, path, &sub);
        if (st != LMA_OK) break;
        const char *dot = strrchr(type, '.');
        const char *base = dot ? dot + 1 : type;
        if (!strcmp(base, "Transformer")) {
            if (k != 0) st = lma_error(LMA_ERR_UNSUPPORTED, "%s: the Transformer must be the first module", path);
            else if (sub && *sub) st = lma_path_join(tdir, cap, dir, sub);
        } else if (!strcmp(base, "Pooling")) {
            have_pool = 1;
            snprintf(psub, pcap, "%s", sub ? sub : "");
            if (!sub || !*sub) st = lma_error(LMA_ERR_FORMAT, "%s: the Pooling module has no \"path\"", path);
        } else if (!strcmp(base, "Normalize")) e->normalize = 1;
        else st = lma_error(LMA_ERR_UNSUPPORTED, "%s: module %d \"%s\" is not supported (Transformer, Pooling, Normalize)",
                            path, k, type);
        k++;
    }
    if (st == LMA_OK && k == 0) st = lma_error(LMA_ERR_FORMAT, "%s: no modules", path);
    if (st == LMA_OK && !have_pool) e->pool = POOL_MEAN;
    cJSON_Delete(j);
    return st;
}

/* sentence_bert_config.json max_seq_length, else max_pos */
static lma_status read_max_len(const char *tdir, int max_pos, int *out) {
    char path[4096];
    LMA_TRY(lma_path_join(path, sizeof path, tdir, "sentence_bert_config.json"));
    *out = max_pos;
    if (!lma_file_exists(path)) return LMA_OK;
    cJSON *j = NULL;
    LMA_TRY(lma_json_load(path, &j));
    int64_t v = max_pos;
    lma_status st = lma_json_int(j, "max_seq_length", 0, path, &v);
    if (st == LMA_OK && (v < 3 || v > max_pos))
        st = lma_error(LMA_ERR_FORMAT, "%s: max_seq_length %lld outside [3, %d] (max_position_embeddings)", path, (long long)v, max_pos);
    cJSON_Delete(j);
    *out = (int)v;
    return st;
}

/* config.json's model_type is a BERT encoder's (else: a Llama-family decoder) */
static lma_status is_bert(const char *tdir, int *bert) {
    char path[4096];
    LMA_TRY(lma_path_join(path, sizeof path, tdir, "config.json"));
    cJSON *j = NULL;
    LMA_TRY(lma_json_load(path, &j));
    const char *mt = NULL;
    lma_status st = lma_json_str(j, "model_type", 0, path, &mt);
    *bert = !mt || !strcmp(mt, "bert");
    cJSON_Delete(j);
    return st;
}

/* config_sentence_transformers.json prompts.query, or NULL */
static lma_status read_query_prompt(const char *dir, char **out) {
    char path[4096];
    *out = NULL;
    LMA_TRY(lma_path_join(path, sizeof path, dir, "config_sentence_transformers.json"));
    if (!lma_file_exists(path)) return LMA_OK;
    cJSON *j = NULL;
    LMA_TRY(lma_json_load(path, &j));
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(j, "prompts");
    const cJSON *q = cJSON_IsObject(pr) ? cJSON_GetObjectItemCaseSensitive(pr, "query") : NULL;
    lma_status st = LMA_OK;
    if (q && !cJSON_IsString(q)) st = lma_error(LMA_ERR_FORMAT, "%s: prompts.query must be a string", path);
    else if (q && !(*out = strdup(q->valuestring))) st = lma_error(LMA_ERR_NOMEM, "out of memory");
    cJSON_Delete(j);
    return st;
}

lma_status lma_embedder_load(const char *path, const lma_backend *be, lma_embedder **out) {
    return lma_embedder_load_ex(path, be, NULL, out);
}

lma_status lma_embedder_load_ex(const char *path, const lma_backend *be, const lma_embed_options *o,
                                lma_embedder **out) {
    *out = NULL;
    char dir[4096], tdir[4096], psub[1024];
    LMA_TRY(lma_model_path_resolve(path, dir, sizeof dir));
    if (!lma_is_dir(dir))
        return lma_error(LMA_ERR_UNSUPPORTED, "%s is not a model folder (embedders are sentence-transformers "
                         "folders or Llama-family model folders)", dir);
    lma_embedder *e = lma_calloc(1, sizeof *e, "embedder");
    if (!e) return LMA_ERR_NOMEM;
    e->batch = 32;
    int bert = 1, C = 0, vocab = 0, max_pos = 0;
    lma_status st = read_modules(e, dir, tdir, sizeof tdir, psub, sizeof psub);
    if (st == LMA_OK) st = is_bert(tdir, &bert);
    if (st == LMA_OK && bert) {
        st = lma_encoder_load(tdir, be, &e->enc);
        const lma_encoder_config *c = st == LMA_OK ? lma_encoder_cfg(e->enc) : NULL;
        if (c) C = c->C, vocab = c->vocab, max_pos = c->max_pos;
    } else if (st == LMA_OK) {
        if (!psub[0] && !(o && o->pool))
            st = lma_error(LMA_ERR_ARG, "%s is a decoder model without a sentence-transformers Pooling config "
                           "(modules.json): choose the pooling (embed --pool last|mean)", dir);
        if (st == LMA_OK) st = lma_model_load_ex(tdir, be ? be : lma_backend_cpu(), LMA_MODEL_FROZEN, &e->dec);
        if (st == LMA_OK) C = e->dec->cfg.hidden_size, vocab = e->dec->cfg.vocab_size, max_pos = e->dec->cfg.max_position_embeddings;
    }
    if (st == LMA_OK && psub[0]) st = read_pooling(dir, psub, C, &e->pool);
    if (st == LMA_OK && o && o->pool) {
        static const struct { const char *name; int bit; } names[] = {{"last", POOL_LAST}, {"mean", POOL_MEAN}, {"cls", POOL_CLS}};
        e->pool = 0;
        for (size_t i = 0; i < 3; i++)
            if (!strcmp(o->pool, names[i].name)) e->pool = names[i].bit;
        if (!e->pool) st = lma_error(LMA_ERR_ARG, "pool '%s': expected last, mean or cls", o->pool);
    }
    if (st == LMA_OK && o && o->normalize >= 0) e->normalize = o->normalize;
    if (st == LMA_OK) st = read_max_len(tdir, max_pos, &e->max_tokens);
    if (st == LMA_OK) st = lma_tok_load(tdir, &e->tok);
    if (st == LMA_OK) {
        if (o && o->query_instruction) {
            size_t n = strlen(o->query_instruction) + 32;
            e->query_prefix = malloc(n);
            if (e->query_prefix) snprintf(e->query_prefix, n, "Instruct: %s\nQuery:", o->query_instruction);
            else st = lma_error(LMA_ERR_NOMEM, "out of memory");
        } else {
            st = read_query_prompt(dir, &e->query_prefix);
        }
    }
    if (st == LMA_OK) {
        int modes = !!(e->pool & POOL_CLS) + !!(e->pool & POOL_MAX) + !!(e->pool & POOL_MEAN) +
                    !!(e->pool & POOL_MEAN_SQRT) + !!(e->pool & POOL_LAST);
        e->dim = C * modes;
        int32_t pad = lma_tok_token_to_id(e->tok, "[PAD]");
        e->pad_id = pad >= 0 && pad < vocab ? pad : 0;
        if (lma_tok_vocab_size(e->tok) > vocab)
            st = lma_error(LMA_ERR_FORMAT, "%s: the tokenizer has %d ids, the model's vocab_size is %d", tdir,
                           lma_tok_vocab_size(e->tok), vocab);
    }
    if (st != LMA_OK) { lma_embedder_free(e); return st; }
    *out = e;
    return LMA_OK;
}

void lma_embedder_free(lma_embedder *e) {
    if (!e) return;
    lma_encoder_free(e->enc);
    lma_model_free(e->dec);
    lma_tok_free(e->tok);
    free(e->query_prefix);
    free(e);
}

lma_status lma_embedder_count_tokens(lma_embedder *e, const char *text, size_t len, size_t *n_tokens) {
    int32_t *ids = NULL;
    *n_tokens = 0;
    LMA_TRY(lma_tok_encode(e->tok, text, len, 1, &ids, n_tokens));
    free(ids);
    return LMA_OK;
}

/* ids of one text, truncated to max_tokens the way sentence-transformers does */
static lma_status tokenize(const lma_embedder *e, const char *text, int is_query, int32_t **ids, int *n) {
    const int32_t *pre, *post;
    size_t npre, npost, nb = 0;
    lma_tok_template(e->tok, &pre, &npre, &post, &npost);
    int32_t *body = NULL;
    char *joined = NULL;
    if (is_query && e->query_prefix && *e->query_prefix) { /* "Instruct: ...\nQuery:" + text */
        size_t a = strlen(e->query_prefix), b = strlen(text);
        joined = lma_malloc(a + b + 1, "embed query");
        if (!joined) return LMA_ERR_NOMEM;
        memcpy(joined, e->query_prefix, a);
        memcpy(joined + a, text, b + 1);
        text = joined;
    }
    lma_status tst = lma_tok_encode(e->tok, text, strlen(text), 0, &body, &nb);
    free(joined);
    LMA_TRY(tst);
    size_t room = (size_t)e->max_tokens > npre + npost ? (size_t)e->max_tokens - npre - npost : 0;
    if (nb > room) nb = room;
    size_t tot = npre + nb + npost;
    int32_t *r = lma_malloc((tot ? tot : 1) * sizeof *r, "embed ids");
    if (!r) { free(body); return LMA_ERR_NOMEM; }
    if (npre) memcpy(r, pre, npre * sizeof *r); /* a template may add nothing (pre/post NULL) */
    if (nb) memcpy(r + npre, body, nb * sizeof *r);
    if (npost) memcpy(r + npre + nb, post, npost * sizeof *r);
    free(body);
    if (tot == 0) { free(r); return lma_error(LMA_ERR_ARG, "embed: a text gives no tokens and the model adds none"); }
    *ids = r;
    *n = (int)tot;
    return LMA_OK;
}

static int32_t *g_sort_len; /* qsort has no context argument: guarded by the caller's lock */
static int by_len_desc(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (g_sort_len[i] != g_sort_len[j]) return g_sort_len[i] > g_sort_len[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* pools row h (len L, C channels) into o (dim) */
static void pool_row(const lma_embedder *e, const float *h, int L, int C, float *o) {
    int k = 0;
    if (e->pool & POOL_CLS) { memcpy(o, h, (size_t)C * sizeof(float)); k += C; }
    if (e->pool & POOL_LAST) { memcpy(o + k, h + (size_t)(L - 1) * C, (size_t)C * sizeof(float)); k += C; }
    if (e->pool & POOL_MAX) {
        for (int c = 0; c < C; c++) {
            float m = h[c];
            for (int t = 1; t < L; t++) m = h[(size_t)t * C + c] > m ? h[(size_t)t * C + c] : m;
            o[k + c] = m;
        }
        k += C;
    }
    if (e->pool & (POOL_MEAN | POOL_MEAN_SQRT)) {
        double *acc = calloc((size_t)C, sizeof *acc);
        float *sum = o + k; /* fallback: float accumulation when calloc fails */
        if (acc) {
            for (int t = 0; t < L; t++)
                for (int c = 0; c < C; c++) acc[c] += h[(size_t)t * C + c];
        } else {
            for (int c = 0; c < C; c++) sum[c] = 0;
            for (int t = 0; t < L; t++)
                for (int c = 0; c < C; c++) sum[c] += h[(size_t)t * C + c];
        }
        if (e->pool & POOL_MEAN) {
            for (int c = 0; c < C; c++) o[k + c] = (float)((acc ? acc[c] : sum[c]) / L);
            k += C;
        }
        if (e->pool & POOL_MEAN_SQRT) {
            for (int c = 0; c < C; c++) o[k + c] = (float)((acc ? acc[c] : sum[c]) / sqrt((double)L));
            k += C;
        }
        free(acc);
    }
    if (e->normalize) { /* torch.nn.functional.normalize: x / max(||x||, 1e-12) */
        double ss = 0;
        for (int i = 0; i < k; i++) ss += (double)o[i] * o[i];
        double nrm = sqrt(ss);
        if (nrm < 1e-12) nrm = 1e-12;
        for (int i = 0; i < k; i++) o[i] = (float)(o[i] / nrm);
    }
}

/* Decoder: each text alone through the model (causal attention, no padding), one KV cache
 * of the longest text reused. ids/len of the n texts. */
static lma_status embed_decoder(lma_embedder *e, int32_t *const *ids, const int32_t *len, size_t n, float *out) {
    int C = e->dec->cfg.hidden_size, T = 1;
    for (size_t i = 0; i < n; i++) T = len[i] > T ? len[i] : T;
    lma_kv_cache *kv = NULL;
    float *h = lma_malloc((size_t)T * C * sizeof *h, "embed hidden states");
    lma_status st = h ? lma_kv_create(e->dec, T, &kv) : LMA_ERR_NOMEM;
    for (size_t i = 0; i < n && st == LMA_OK; i++) {
        kv->len = 0;
        st = lma_model_hidden_cached(e->dec, kv, ids[i], len[i], h);
        if (st == LMA_OK) pool_row(e, h, len[i], C, out + i * (size_t)e->dim);
    }
    lma_kv_free(e->dec, kv);
    free(h);
    return st;
}

lma_status lma_embed(lma_embedder *e, const char *const *texts, size_t n, int is_query, float *out) {
    if (n == 0) return LMA_OK;
    if (!texts || !out) return lma_error(LMA_ERR_ARG, "lma_embed: NULL texts or output");
    for (size_t i = 0; i < n; i++)
        if (!texts[i]) return lma_error(LMA_ERR_ARG, "lma_embed: text %zu is NULL", i);
    int32_t **ids = lma_calloc(n, sizeof *ids, "embed ids");
    int32_t *len = lma_calloc(n, sizeof *len, "embed ids");
    size_t *order = lma_malloc(n * sizeof *order, "embed order");
    lma_status st = ids && len && order ? LMA_OK : LMA_ERR_NOMEM;
    size_t bad = n; /* the first text whose tokenization failed */
    if (st == LMA_OK) {
#pragma omp parallel for schedule(dynamic, 8)
        for (size_t i = 0; i < n; i++) {
            int l = 0;
            if (tokenize(e, texts[i], is_query, &ids[i], &l) != LMA_OK) {
#pragma omp critical(lma_embed_bad)
                if (i < bad) bad = i;
            }
            len[i] = l;
        }
        if (bad < n) { /* again on this thread: error messages are per thread */
            int l;
            int32_t *tmp = NULL;
            st = tokenize(e, texts[bad], is_query, &tmp, &l);
            free(tmp);
            if (st == LMA_OK) st = lma_error(LMA_ERR_INTERNAL, "embed: tokenizing text %zu failed on a worker thread", bad);
        }
    }
    if (e->dec) {
        if (st == LMA_OK) st = embed_decoder(e, ids, len, n, out);
        if (ids) for (size_t i = 0; i < n; i++) free(ids[i]);
        free(ids); free(len); free(order);
        return st;
    }
    if (st == LMA_OK) {
        static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
        for (size_t i = 0; i < n; i++) order[i] = i;
        pthread_mutex_lock(&mu);
        g_sort_len = len;
        qsort(order, n, sizeof *order, by_len_desc);
        pthread_mutex_unlock(&mu);
    }
    const lma_encoder_config *c = lma_encoder_cfg(e->enc);
    int C = c->C, B = e->batch;
    int T0 = st == LMA_OK ? len[order[0]] : 1; /* the longest row: the largest batch */
    size_t cap = (size_t)B * T0;
    int32_t *bids = st == LMA_OK ? lma_malloc(cap * sizeof *bids, "embed batch") : NULL;
    int32_t *blen = st == LMA_OK ? lma_malloc((size_t)B * sizeof *blen, "embed batch") : NULL;
    float *hidden = st == LMA_OK ? lma_malloc(cap * (size_t)C * sizeof *hidden, "embed hidden states") : NULL;
    if (st == LMA_OK && (!bids || !blen || !hidden)) st = LMA_ERR_NOMEM;
    for (size_t s = 0; s < n && st == LMA_OK; s += (size_t)B) {
        int nb = n - s < (size_t)B ? (int)(n - s) : B, T = len[order[s]];
        for (int b = 0; b < nb; b++) {
            size_t i = order[s + (size_t)b];
            blen[b] = len[i];
            memcpy(bids + (size_t)b * T, ids[i], (size_t)len[i] * sizeof *bids);
            for (int t = len[i]; t < T; t++) bids[(size_t)b * T + t] = e->pad_id;
        }
        st = lma_encoder_forward(e->enc, bids, blen, nb, T, hidden);
        for (int b = 0; b < nb && st == LMA_OK; b++)
            pool_row(e, hidden + (size_t)b * T * C, blen[b], C, out + order[s + (size_t)b] * (size_t)e->dim);
    }
    if (ids) for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids); free(len); free(order); free(bids); free(blen); free(hidden);
    return st;
}
