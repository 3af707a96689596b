/* DPO objective and batch source (see dpo.h). */
#include "train/dpo.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/io.h"

/* log sigmoid(x), stable for large |x| */
static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

void lma_dpo_pair(const lma_dpo_params *p, double pc, double pr, double rc, double rr, double nc, double nr,
                  double *loss, double *dpc, double *dpr) {
    double b = p->beta, e = p->label_smoothing;
    if (p->loss == LMA_DPO_IPO) {
        double d = (pc - rc) / (nc > 1 ? nc : 1) - (pr - rr) / (nr > 1 ? nr : 1), u = d - 1.0 / (2.0 * b);
        *loss = u * u;
        *dpc = 2.0 * u / (nc > 1 ? nc : 1);
        *dpr = -2.0 * u / (nr > 1 ? nr : 1);
        return;
    }
    double d = (pc - rc) - (pr - rr), dd;
    if (p->loss == LMA_DPO_HINGE) {
        double h = 1.0 - b * d;
        *loss = h > 0 ? h : 0;
        dd = h > 0 ? -b : 0; /* torch: relu'(0) = 0 */
    } else {
        *loss = -(1.0 - e) * log_sigmoid(b * d) - e * log_sigmoid(-b * d);
        dd = -(1.0 - e) * b * sigmoid(-b * d) + e * b * sigmoid(b * d);
    }
    *dpc = dd;
    *dpr = -dd;
}

/* ---- the batch of the current step: trimmed copy, per-row log-probs --------------- */

typedef struct {
    int32_t *ids, *tg; /* (2B, W) trimmed copies */
    double *logp, *ntok; /* (2B) */
} rows_buf;

/* Copies the first `rows` rows of (rows, T) ids/targets into (rows, W). */
static void trim(rows_buf *r, const int32_t *ids, const int32_t *tg, int rows, int T, int W) {
    for (int i = 0; i < rows; i++) {
        memcpy(r->ids + (size_t)i * W, ids + (size_t)i * T, (size_t)W * sizeof(int32_t));
        memcpy(r->tg + (size_t)i * W, tg + (size_t)i * T, (size_t)W * sizeof(int32_t));
    }
}

/* logp[i] = -sum of row i's per-token losses over its targets; ntok[i] = their count */
static void row_logps(const lma_model *m, rows_buf *r, int rows, int W) {
    const float *l = lma_model_losses(m);
    for (int i = 0; i < rows; i++) {
        double s = 0, n = 0;
        for (int t = 0; t < W; t++)
            if (r->tg[(size_t)i * W + t] != -100) { s += l[(size_t)i * W + t]; n++; }
        r->logp[i] = -s;
        r->ntok[i] = n;
    }
}

static lma_status rows_alloc(rows_buf *r, int B, int T) {
    size_t n = (size_t)2 * B * T;
    r->ids = lma_malloc(n * sizeof(int32_t), "DPO rows");
    r->tg = lma_malloc(n * sizeof(int32_t), "DPO rows");
    r->logp = lma_calloc((size_t)2 * B, sizeof(double), "DPO log-probs");
    r->ntok = lma_calloc((size_t)2 * B, sizeof(double), "DPO token counts");
    return r->ids && r->tg && r->logp && r->ntok ? LMA_OK : LMA_ERR_NOMEM;
}

static void rows_free(rows_buf *r) { free(r->ids); free(r->tg); free(r->logp); free(r->ntok); }

lma_status lma_dpo_reference(lma_model *m, const lma_pref_set *s, int B, int T, int base_only, double *out) {
    lma_pref_batcher *bt = NULL;
    rows_buf r = {0};
    size_t N = (size_t)2 * B * T;
    int32_t *ids = lma_malloc(N * sizeof(int32_t), "DPO batch"), *tg = lma_malloc(N * sizeof(int32_t), "DPO batch");
    int64_t *pair = lma_malloc((size_t)B * sizeof(int64_t), "DPO batch");
    lma_status st = ids && tg && pair ? rows_alloc(&r, B, T) : LMA_ERR_NOMEM;
    if (st == LMA_OK) st = lma_pref_batcher_create(s, B, T, 0, 0, 0, 1, &bt);
    while (st == LMA_OK) {
        int np = 0, W = 0;
        st = lma_pref_batcher_next(bt, ids, tg, NULL, pair, &np, &W);
        if (st != LMA_OK || np == 0) break;
        trim(&r, ids, tg, 2 * np, T, W);
        st = base_only ? lma_model_forward_base(m, r.ids, r.tg, NULL, 2 * np, W)
                       : lma_model_forward(m, r.ids, r.tg, NULL, 2 * np, W, 0, 1.0f, NULL);
        if (st == LMA_ERR_NUMERIC) { lma_clear_error(); st = LMA_OK; }
        if (st != LMA_OK) break;
        row_logps(m, &r, 2 * np, W);
        for (int i = 0; i < np; i++) {
            out[2 * pair[i]] = r.logp[2 * i];
            out[2 * pair[i] + 1] = r.logp[2 * i + 1];
        }
    }
    lma_pref_batcher_free(bt);
    rows_free(&r);
    free(ids); free(tg); free(pair);
    return st;
}

/* ---- reference cache -------------------------------------------------------------- */

static void fp_text(const lma_pref_set *s, char *buf, size_t cap) {
    snprintf(buf, cap, "%016llx", s ? (unsigned long long)lma_pref_fingerprint(s) : 0ULL);
}

/* "key": [x, ...] with %.17g (exact round trip; cJSON's printer is not: it keeps 15 digits
 * when they read back within a relative epsilon) */
static lma_status put_logps(lma_buf *b, const char *key, const lma_pref_set *s, const double *x) {
    char num[40];
    int k = snprintf(num, sizeof num, ", \"%s\": [", key);
    LMA_TRY(lma_buf_append(b, num, (size_t)k));
    for (size_t i = 0; s && i < 2 * lma_pref_count(s); i++) {
        k = snprintf(num, sizeof num, "%s%.17g", i ? ", " : "", x[i]);
        LMA_TRY(lma_buf_append(b, num, (size_t)k));
    }
    return lma_buf_append(b, "]", 1);
}

lma_status lma_dpo_cache_save(const char *path, const lma_pref_set *train, const lma_pref_set *val,
                              const double *ref_train, const double *ref_val, const char *reference) {
    char a[32], c[32];
    fp_text(train, a, sizeof a);
    fp_text(val, c, sizeof c);
    cJSON *ref = cJSON_CreateString(reference);
    char *rs = ref ? cJSON_PrintUnformatted(ref) : NULL; /* the name, escaped */
    cJSON_Delete(ref);
    if (!rs) return lma_error(LMA_ERR_NOMEM, "out of memory");
    lma_buf b = {0};
    char head[160];
    snprintf(head, sizeof head, "\"train_fingerprint\": \"%s\", \"val_fingerprint\": \"%s\"", a, c);
    lma_status s = lma_buf_append(&b, "{\"reference\": ", 14);
    if (s == LMA_OK) s = lma_buf_append(&b, rs, strlen(rs));
    if (s == LMA_OK) s = lma_buf_append(&b, ", ", 2);
    if (s == LMA_OK) s = lma_buf_append(&b, head, strlen(head));
    if (s == LMA_OK) s = put_logps(&b, "train", train, ref_train);
    if (s == LMA_OK) s = put_logps(&b, "val", val, ref_val);
    if (s == LMA_OK) s = lma_buf_append(&b, "}\n", 2);
    if (s == LMA_OK) s = lma_write_file_atomic(path, b.p, b.len);
    free(rs);
    lma_buf_free(&b);
    return s;
}

static int read_logps(const cJSON *j, const char *key, const char *fpkey, const lma_pref_set *s, double *out) {
    char fp[32];
    fp_text(s, fp, sizeof fp);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, fpkey), *a = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsString(f) || strcmp(f->valuestring, fp) || !cJSON_IsArray(a)) return 0;
    size_t n = s ? 2 * lma_pref_count(s) : 0;
    if ((size_t)cJSON_GetArraySize(a) != n) return 0;
    size_t i = 0;
    for (const cJSON *x = a->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x)) return 0;
        out[i] = x->valuedouble;
    }
    return 1;
}

lma_status lma_dpo_cache_load(const char *path, const lma_pref_set *train, const lma_pref_set *val, double *ref_train,
                              double *ref_val, int *found) {
    *found = 0;
    if (!lma_file_exists(path)) return LMA_OK;
    char *text = NULL;
    size_t len = 0;
    LMA_TRY(lma_read_file(path, &text, &len));
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) return LMA_OK; /* unreadable: recomputed */
    *found = read_logps(j, "train", "train_fingerprint", train, ref_train) &&
             read_logps(j, "val", "val_fingerprint", val, ref_val);
    cJSON_Delete(j);
    return LMA_OK;
}

/* ---- the batch source ------------------------------------------------------------- */

struct lma_dpo {
    lma_dpo_params p;
    int B, T;
    lma_pref_batcher *train, *val;
    const double *ref_train, *ref_val;
    int64_t *pair; /* (B) pairs of the batch next()/val_next() wrote */
    int npairs, width, is_val;
    rows_buf r;
    float *row_scale; /* (2B) */
    /* sums over the pairs of the current optimizer step */
    double n, rc, rr, acc, lc, lr;
};

static lma_status d_next(void *ctx, int32_t *ids, int32_t *tg, int32_t *seg) {
    lma_dpo *d = ctx;
    d->is_val = 0;
    return lma_pref_batcher_next(d->train, ids, tg, seg, d->pair, &d->npairs, &d->width);
}

static lma_status d_val_next(void *ctx, int32_t *ids, int32_t *tg, int32_t *seg, int *rows) {
    lma_dpo *d = ctx;
    d->is_val = 1;
    LMA_TRY(lma_pref_batcher_next(d->val, ids, tg, seg, d->pair, &d->npairs, &d->width));
    *rows = 2 * d->npairs;
    return LMA_OK;
}

static void d_val_reset(void *ctx) { lma_pref_batcher_rewind(((lma_dpo *)ctx)->val); }
static lma_status d_save(void *ctx, cJSON **out) { return lma_pref_batcher_save(((lma_dpo *)ctx)->train, out); }
static lma_status d_restore(void *ctx, const cJSON *j) { return lma_pref_batcher_restore(((lma_dpo *)ctx)->train, j); }

static lma_status d_objective(void *ctx, lma_model *m, const int32_t *ids, const int32_t *tg, const int32_t *seg,
                              int B2, int T, int want_grad, float grad_scale, float *loss, double *weight) {
    (void)seg; (void)B2;
    lma_dpo *d = ctx;
    int np = d->npairs, W = d->width < 2 ? 2 : d->width, rows = 2 * np;
    *loss = 0;
    *weight = np;
    if (np == 0) return LMA_OK;
    trim(&d->r, ids, tg, rows, T, W);
    lma_status s = want_grad ? lma_model_forward_seq(m, d->r.ids, d->r.tg, NULL, rows, W)
                             : lma_model_forward(m, d->r.ids, d->r.tg, NULL, rows, W, 0, 1.0f, NULL);
    if (s == LMA_ERR_NUMERIC) { lma_clear_error(); s = LMA_OK; }
    LMA_TRY(s);
    row_logps(m, &d->r, rows, W);
    const double *ref = d->is_val ? d->ref_val : d->ref_train;
    double total = 0;
    for (int i = 0; i < np; i++) {
        double pc = d->r.logp[2 * i], pr = d->r.logp[2 * i + 1];
        double rc = ref[2 * d->pair[i]], rr = ref[2 * d->pair[i] + 1], l, gc, gr;
        lma_dpo_pair(&d->p, pc, pr, rc, rr, d->r.ntok[2 * i], d->r.ntok[2 * i + 1], &l, &gc, &gr);
        total += l;
        /* d loss / d logits = (d loss / d log pi) * (-d CE / d logits), the mean over pairs */
        d->row_scale[2 * i] = (float)(-gc * grad_scale / np);
        d->row_scale[2 * i + 1] = (float)(-gr * grad_scale / np);
        if (want_grad) {
            double wc = d->p.beta * (pc - rc), wr = d->p.beta * (pr - rr);
            d->n++; d->rc += wc; d->rr += wr; d->acc += wc > wr; d->lc += pc; d->lr += pr;
        }
    }
    *loss = (float)(total / np);
    if (want_grad) LMA_TRY(lma_model_head_backward(m, d->row_scale));
    return LMA_OK;
}

/* ", \"key\": x" or null for a non-finite x */
static size_t put(char *o, size_t cap, const char *key, double x) {
    int k = isfinite(x) ? snprintf(o, cap, ", \"%s\": %.9g", key, x) : snprintf(o, cap, ", \"%s\": null", key);
    return k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap - 1;
}

static void d_step_metrics(void *ctx, char *json, size_t jcap, char *line, size_t lcap) {
    lma_dpo *d = ctx;
    double n = d->n > 0 ? d->n : NAN;
    double rc = d->rc / n, rr = d->rr / n;
    size_t k = 0;
    json[0] = 0;
    k += put(json + k, jcap - k, "reward_chosen", rc);
    k += put(json + k, jcap - k, "reward_rejected", rr);
    k += put(json + k, jcap - k, "reward_margin", rc - rr);
    k += put(json + k, jcap - k, "reward_accuracy", d->acc / n);
    k += put(json + k, jcap - k, "logps_chosen", d->lc / n);
    put(json + k, jcap - k, "logps_rejected", d->lr / n);
    snprintf(line, lcap, " acc %.2f margin %.3f", d->acc / n, rc - rr);
    d->n = d->rc = d->rr = d->acc = d->lc = d->lr = 0;
}

lma_status lma_dpo_create(const lma_dpo_params *p, int B, int T, lma_pref_batcher *train, const double *ref_train,
                          lma_pref_batcher *val, const double *ref_val, lma_dpo **out) {
    *out = NULL;
    if (!(p->beta > 0)) return lma_error(LMA_ERR_ARG, "DPO beta must be > 0");
    if (!(p->label_smoothing >= 0 && p->label_smoothing < 0.5))
        return lma_error(LMA_ERR_ARG, "DPO label smoothing must be in [0, 0.5)");
    lma_dpo *d = lma_calloc(1, sizeof *d, "DPO");
    if (!d) return LMA_ERR_NOMEM;
    d->p = *p; d->B = B; d->T = T;
    d->train = train; d->val = val; d->ref_train = ref_train; d->ref_val = ref_val;
    d->pair = lma_calloc((size_t)B, sizeof *d->pair, "DPO batch");
    d->row_scale = lma_calloc((size_t)2 * B, sizeof *d->row_scale, "DPO batch");
    if (!d->pair || !d->row_scale || rows_alloc(&d->r, B, T) != LMA_OK) { lma_dpo_free(d); return LMA_ERR_NOMEM; }
    *out = d;
    return LMA_OK;
}

void lma_dpo_free(lma_dpo *d) {
    if (!d) return;
    rows_free(&d->r);
    free(d->pair); free(d->row_scale); free(d);
}

lma_batch_source lma_dpo_batch_source(lma_dpo *d) {
    lma_batch_source s = {d, d_next, d->val ? d_val_next : NULL, d_val_reset, d_save, d_restore, d_objective,
                          d_step_metrics};
    return s;
}
