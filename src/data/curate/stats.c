/* stats: counts, length histograms per role, distinct-1/2 (HyperLogLog estimates,
 * constant memory), duplicate rates (the dedup engine), script mix, instruction
 * verbs and their objects, response formats. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/curate/internal.h"
#include "data/curate/u64map.h"

void lma_stats_default_params(lma_stats_params *p) {
    memset(p, 0, sizeof *p);
    p->dup = 1;
    lma_dedup_default_params(&p->dedup);
    p->top_verbs = 20; p->top_objects = 4;
}

/* HyperLogLog, 2^14 registers: about 0.8% standard error. */
#define HLL_P 14
#define HLL_M (1u << HLL_P)
typedef struct { uint8_t r[HLL_M]; uint64_t total; } hll;
static void hll_add(hll *h, uint64_t x) {
    x = lma_mix64(x);
    uint32_t idx = (uint32_t)(x >> (64 - HLL_P));
    uint64_t w = (x << HLL_P) | ((uint64_t)1 << (HLL_P - 1));
    uint8_t rank = (uint8_t)(__builtin_clzll(w) + 1);
    if (rank > h->r[idx]) h->r[idx] = rank;
    h->total++;
}
static double hll_count(const hll *h) {
    double sum = 0; unsigned zeros = 0;
    for (unsigned i = 0; i < HLL_M; i++) { sum += ldexp(1.0, -h->r[i]); zeros += !h->r[i]; }
    double m = HLL_M, e = 0.7213 / (1 + 1.079 / m) * m * m / sum;
    if (e <= 2.5 * m && zeros) e = m * log(m / zeros); /* linear counting */
    return e;
}

#define NB 24 /* log2 buckets: [0], [1], [2,3], [4,7], ... */
static int bucket(size_t n) { int b = 0; while (n && b < NB - 1) { n >>= 1; b++; } return b; }

#define MAX_VERBS 20000
#define MAX_PAIRS 200000
typedef struct {
    lma_u64map vidx, pidx;
    char (*verb)[24]; int64_t *vcount; size_t nv;
    uint32_t *pverb; char (*obj)[24]; int64_t *pcount; size_t np;
    int64_t questions, truncated;
} verbs;

static int word_at(const char *s, size_t n, size_t *i, char *out, size_t cap) {
    while (*i < n && !((s[*i] | 32) >= 'a' && (s[*i] | 32) <= 'z')) {
        if (s[*i] == '\n' || s[*i] == '.' || s[*i] == ':' || s[*i] == '?') return 0;
        (*i)++;
    }
    size_t k = 0;
    while (*i < n && (((s[*i] | 32) >= 'a' && (s[*i] | 32) <= 'z') || s[*i] == '-')) {
        if (k + 1 < cap) out[k++] = (char)(s[*i] | 32);
        (*i)++;
    }
    out[k] = 0;
    return k > 0;
}

static int in_list(const char *w, const char *const *l) {
    for (int i = 0; l[i]; i++) if (!strcmp(w, l[i])) return 1;
    return 0;
}

static lma_status verb_add(verbs *v, const char *s, size_t n) {
    static const char *const wh[] = {"what", "who", "whom", "whose", "which", "when", "where", "why", "how", "is", "are",
                                     "was", "were", "do", "does", "did", "can", "could", "would", "should", "will",
                                     "i", "you", "we", "the", "a", "an", "this", "in", "if", "my", "it", "there", NULL};
    static const char *const skip[] = {"a", "an", "the", "some", "this", "that", "these", "those", "me", "us", "my",
                                       "your", "our", "its", "their", "one", "two", "three", "five", "ten", "new",
                                       "following", "given", "short", "brief", "list", "few", "each", "all", "any",
                                       "of", "up", "out", "to", NULL};
    char w[24], o[24];
    size_t i = 0;
    if (!word_at(s, n, &i, w, sizeof w)) return LMA_OK;
    if (in_list(w, wh)) { v->questions++; return LMA_OK; }
    int have_obj = 0;
    for (int t = 0; t < 6 && word_at(s, n, &i, o, sizeof o); t++)
        if (!in_list(o, skip)) { have_obj = 1; break; }
    uint64_t hv = lma_hash64(w, strlen(w), 9);
    uint32_t vi = lma_u64map_get(&v->vidx, hv);
    if (vi == UINT32_MAX) {
        if (v->nv >= MAX_VERBS) { v->truncated++; return LMA_OK; }
        vi = (uint32_t)v->nv++;
        memcpy(v->verb[vi], w, sizeof w);
        v->vcount[vi] = 0;
        LMA_TRY(lma_u64map_insert(&v->vidx, hv, vi));
    }
    v->vcount[vi]++;
    if (!have_obj) return LMA_OK;
    uint64_t hp = lma_hash64(o, strlen(o), hv);
    uint32_t pi = lma_u64map_get(&v->pidx, hp);
    if (pi == UINT32_MAX) {
        if (v->np >= MAX_PAIRS) { v->truncated++; return LMA_OK; }
        pi = (uint32_t)v->np++;
        v->pverb[pi] = vi; memcpy(v->obj[pi], o, sizeof o); v->pcount[pi] = 0;
        LMA_TRY(lma_u64map_insert(&v->pidx, hp, pi));
    }
    v->pcount[pi]++;
    return LMA_OK;
}

typedef struct {
    int64_t msgs[LMA_ROLE_COUNT];
    int64_t chars_hist[LMA_ROLE_COUNT][NB], words_hist[LMA_ROLE_COUNT][NB];
    double chars_sum[LMA_ROLE_COUNT], words_sum[LMA_ROLE_COUNT];
    int64_t formats[LMA_EXF_COUNT], scripts[LMA_SCRIPT_COUNT], resp_fmt[LMA_TFMT_COUNT];
    hll uni[2], bi[2]; /* [0] prompts, [1] responses */
    int64_t turns_hist[NB];
} acc;

static size_t count_words(const char *s, size_t n) {
    size_t w = 0; int in = 0;
    for (size_t i = 0; i < n; i++) {
        int sp = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r';
        if (!sp && !in) w++;
        in = !sp;
    }
    return w;
}

static cJSON *hist_json(const int64_t *h) {
    cJSON *o = cJSON_CreateObject();
    for (int b = 0; o && b < NB; b++) {
        if (!h[b]) continue;
        char k[48];
        if (b == 0) snprintf(k, sizeof k, "0");
        else snprintf(k, sizeof k, "%llu-%llu", 1ull << (b - 1), (1ull << b) - 1);
        cJSON_AddNumberToObject(o, k, (double)h[b]);
    }
    return o;
}

/* Everything one pass over the input gathers, and the buffers the pass reuses. */
typedef struct {
    acc *a;
    verbs *v;
    lma_dedup *dd; /* NULL with --no-dup */
    lma_dedup_sig sig;
    lma_words w;
    lma_buf text;
    int64_t n_ex, n_exact, n_near;
    lma_curate_bad bad;
} stats_run;

/* ---- setup and teardown ------------------------------------------------------ */

static lma_status stats_run_init(stats_run *r, lma_stats_params *p) {
    memset(r, 0, sizeof *r);
    r->a = calloc(1, sizeof *r->a);
    r->v = calloc(1, sizeof *r->v);
    if (!r->a || !r->v) return lma_error(LMA_ERR_NOMEM, "stats: out of memory");
    verbs *v = r->v;
    v->verb = malloc(MAX_VERBS * sizeof *v->verb); v->vcount = malloc(MAX_VERBS * sizeof *v->vcount);
    v->pverb = malloc(MAX_PAIRS * sizeof *v->pverb); v->obj = malloc(MAX_PAIRS * sizeof *v->obj);
    v->pcount = malloc(MAX_PAIRS * sizeof *v->pcount);
    if (!v->verb || !v->vcount || !v->pverb || !v->obj || !v->pcount) return lma_error(LMA_ERR_NOMEM, "stats: out of memory");
    if (p->dup) LMA_TRY(lma_dedup_create(&p->dedup, &r->dd));
    return LMA_OK;
}

static void stats_run_free(stats_run *r) {
    lma_dedup_free(r->dd);
    lma_dedup_sig_free(&r->sig);
    lma_words_free(&r->w);
    lma_buf_free(&r->text);
    if (r->v) {
        verbs *v = r->v;
        free(v->verb); free(v->vcount); free(v->pverb); free(v->obj); free(v->pcount);
        lma_u64map_free(&v->vidx); lma_u64map_free(&v->pidx);
        free(v);
    }
    free(r->a);
}

/* ---- per-record measurements -------------------------------------------------- */

/* Every message (chosen and rejected ones count as assistant): length histograms per
 * role, the verb of the first user message, distinct-1/2 of prompts and responses. */
static lma_status measure_messages(stats_run *r, const lma_example *ex) {
    acc *a = r->a;
    const lma_ex_msg *lists[3] = {ex->msgs, ex->chosen, ex->rejected};
    size_t ns[3] = {ex->n_msgs, ex->n_chosen, ex->n_rejected};
    int first_user = 1;
    lma_status st = LMA_OK;
    for (int l = 0; l < 3 && !st; l++)
        for (size_t i = 0; i < ns[l] && !st; i++) {
            const lma_ex_msg *m = &lists[l][i];
            lma_role role = l ? LMA_ROLE_ASSISTANT : m->role;
            size_t nw = count_words(m->text, m->len);
            a->msgs[role]++;
            a->chars_hist[role][bucket(m->len)]++; a->words_hist[role][bucket(nw)]++;
            a->chars_sum[role] += (double)m->len; a->words_sum[role] += (double)nw;
            if (role == LMA_ROLE_USER && first_user) { first_user = 0; st = verb_add(r->v, m->text, m->len); }
            if (st || (st = lma_words_norm(m->text, m->len, &r->w))) break;
            int side = role == LMA_ROLE_ASSISTANT || role == LMA_ROLE_TEXT;
            for (size_t k = 0; k < r->w.n; k++) {
                hll_add(&a->uni[side], r->w.hash[k]);
                if (k + 1 < r->w.n) hll_add(&a->bi[side], lma_ngram_hash(r->w.hash + k, 2));
            }
        }
    return st;
}

/* The script of the whole text and the format of the response (when there is one). */
static lma_status measure_script_and_format(stats_run *r, const lma_example *ex) {
    r->text.len = 0;
    LMA_TRY(lma_ex_text(ex, LMA_EX_ALL, &r->text));
    r->a->scripts[lma_script_of(r->text.p, r->text.len)]++;
    r->text.len = 0;
    LMA_TRY(lma_ex_text(ex, LMA_EX_RESPONSE, &r->text));
    if (r->text.len) r->a->resp_fmt[lma_text_format_of(r->text.p, r->text.len)]++;
    return LMA_OK;
}

/* Exact or near duplicate of an earlier record (the dedup engine), when counted. */
static lma_status measure_duplicate(stats_run *r, const lma_example *ex) {
    if (!r->dd) return LMA_OK;
    r->text.len = 0;
    lma_dup_result res;
    LMA_TRY(lma_ex_text(ex, LMA_EX_ALL, &r->text));
    LMA_TRY(lma_dedup_sign(r->dd, r->text.p, r->text.len, &r->sig));
    LMA_TRY(lma_dedup_insert(r->dd, &r->sig, ex->line, &res));
    r->n_exact += res.kind == LMA_DUP_EXACT;
    r->n_near += res.kind == LMA_DUP_NEAR;
    return LMA_OK;
}

static lma_status measure_example(stats_run *r, const lma_example *ex) {
    r->n_ex++;
    r->a->formats[ex->format]++;
    r->a->turns_hist[bucket(ex->n_msgs + ex->n_chosen)]++;
    LMA_TRY(measure_messages(r, ex));
    LMA_TRY(measure_script_and_format(r, ex));
    return measure_duplicate(r, ex);
}

/* Reads every record of `in`; unreadable ones are counted and skipped. */
static lma_status read_examples(stats_run *r, const char *in) {
    lma_ex_reader *rd = NULL;
    lma_status st = lma_ex_open(in, &rd);
    while (!st) {
        lma_example *ex;
        if ((st = lma_ex_next(rd, &ex)) || !ex) break;
        if (ex->error_code) { lma_curate_on_bad(ex, &r->bad); continue; }
        st = measure_example(r, ex);
    }
    lma_ex_close(rd);
    return st;
}

/* ---- the JSON summary, one part at a time (in the order the keys appear) ------- */

static void add_counts(cJSON *s, const stats_run *r) {
    cJSON_AddNumberToObject(s, "examples", (double)r->n_ex);
    lma_curate_bad_summary(&r->bad, s);
    cJSON *f = cJSON_AddObjectToObject(s, "formats");
    for (int k = 0; f && k < LMA_EXF_COUNT; k++)
        if (r->a->formats[k]) cJSON_AddNumberToObject(f, lma_ex_format_name((lma_ex_format)k), (double)r->a->formats[k]);
}

static void add_roles(cJSON *s, const acc *a) {
    cJSON *roles = cJSON_AddObjectToObject(s, "roles");
    for (int k = 0; roles && k < LMA_ROLE_COUNT; k++) {
        if (!a->msgs[k]) continue;
        cJSON *o = cJSON_AddObjectToObject(roles, lma_role_name((lma_role)k));
        if (!o) continue;
        cJSON_AddNumberToObject(o, "messages", (double)a->msgs[k]);
        cJSON_AddNumberToObject(o, "mean_chars", a->chars_sum[k] / (double)a->msgs[k]);
        cJSON_AddNumberToObject(o, "mean_words", a->words_sum[k] / (double)a->msgs[k]);
        cJSON_AddItemToObject(o, "chars_histogram", hist_json(a->chars_hist[k]));
        cJSON_AddItemToObject(o, "words_histogram", hist_json(a->words_hist[k]));
    }
    cJSON_AddItemToObject(s, "turns_histogram", hist_json(a->turns_hist));
}

static void add_distinct(cJSON *s, const acc *a) {
    static const char *side[2] = {"prompts", "responses"};
    cJSON *dv = cJSON_AddObjectToObject(s, "distinct");
    for (int k = 0; dv && k < 2; k++) {
        cJSON *o = cJSON_AddObjectToObject(dv, side[k]);
        if (!o) continue;
        cJSON_AddNumberToObject(o, "distinct_1", a->uni[k].total ? hll_count(&a->uni[k]) / (double)a->uni[k].total : 0);
        cJSON_AddNumberToObject(o, "distinct_2", a->bi[k].total ? hll_count(&a->bi[k]) / (double)a->bi[k].total : 0);
        cJSON_AddNumberToObject(o, "words", (double)a->uni[k].total);
    }
}

static void add_duplicates(cJSON *s, const stats_run *r) {
    if (!r->dd) return;
    cJSON *d = cJSON_AddObjectToObject(s, "duplicates");
    if (!d) return;
    int64_t n_ex = r->n_ex;
    cJSON_AddNumberToObject(d, "exact_rate", n_ex ? (double)r->n_exact / (double)n_ex : 0);
    cJSON_AddNumberToObject(d, "near_rate", n_ex ? (double)r->n_near / (double)n_ex : 0);
    cJSON_AddNumberToObject(d, "exact", (double)r->n_exact);
    cJSON_AddNumberToObject(d, "near", (double)r->n_near);
}

static void add_scripts_and_formats(cJSON *s, const acc *a) {
    cJSON *sc = cJSON_AddObjectToObject(s, "scripts");
    for (int k = 0; sc && k < LMA_SCRIPT_COUNT; k++)
        if (a->scripts[k]) cJSON_AddNumberToObject(sc, lma_script_name((lma_script)k), (double)a->scripts[k]);
    cJSON *rf = cJSON_AddObjectToObject(s, "response_formats");
    for (int k = 0; rf && k < LMA_TFMT_COUNT; k++)
        if (a->resp_fmt[k]) cJSON_AddNumberToObject(rf, lma_text_format_name((lma_text_format)k), (double)a->resp_fmt[k]);
}

/* The top verbs with their top objects (selection by repeated max: top_verbs is small),
 * then question_prompts. */
static void add_verbs(cJSON *s, const verbs *v, const lma_stats_params *p) {
    cJSON *va = cJSON_AddArrayToObject(s, "verbs");
    cJSON_AddNumberToObject(s, "question_prompts", (double)v->questions);
    int64_t *used = calloc(v->nv + 1, sizeof *used);
    int64_t *pused = calloc(v->np + 1, sizeof *pused);
    for (int t = 0; va && used && pused && t < p->top_verbs; t++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < v->nv; i++)
            if (!used[i] && (best == SIZE_MAX || v->vcount[i] > v->vcount[best])) best = i;
        if (best == SIZE_MAX) break;
        used[best] = 1;
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "verb", v->verb[best]);
        cJSON_AddNumberToObject(o, "count", (double)v->vcount[best]);
        cJSON *oa = cJSON_AddArrayToObject(o, "objects");
        for (int q = 0; oa && q < p->top_objects; q++) {
            size_t bp = SIZE_MAX;
            for (size_t i = 0; i < v->np; i++)
                if (v->pverb[i] == best && !pused[i] && (bp == SIZE_MAX || v->pcount[i] > v->pcount[bp])) bp = i;
            if (bp == SIZE_MAX) break;
            pused[bp] = 1;
            cJSON *po = cJSON_CreateObject();
            if (po) {
                cJSON_AddStringToObject(po, "object", v->obj[bp]);
                cJSON_AddNumberToObject(po, "count", (double)v->pcount[bp]);
                cJSON_AddItemToArray(oa, po);
            }
        }
        cJSON_AddItemToArray(va, o);
    }
    free(used); free(pused);
}

static lma_status stats_summary(const stats_run *r, const lma_stats_params *p, cJSON **out) {
    cJSON *s = cJSON_CreateObject();
    if (!s) return lma_error(LMA_ERR_NOMEM, "stats: out of memory");
    add_counts(s, r);
    add_roles(s, r->a);
    add_distinct(s, r->a);
    add_duplicates(s, r);
    add_scripts_and_formats(s, r->a);
    add_verbs(s, r->v, p);
    *out = s;
    return LMA_OK;
}

static lma_status write_report(const char *path, const char *in, cJSON *s) {
    lma_report rep; memset(&rep, 0, sizeof rep);
    lma_status st = lma_report_open(&rep, path, "stats", in, "notes");
    if (!st) st = lma_report_close(&rep, s);
    lma_report_abort(&rep);
    return st;
}

lma_status lma_data_stats(const char *in, const lma_stats_params *pin, cJSON **out) {
    *out = NULL;
    lma_stats_params p;
    if (pin) p = *pin; else lma_stats_default_params(&p);
    LMA_TRY(lma_curate_check_output(in, p.report_path));
    stats_run r;
    cJSON *s = NULL;
    lma_status st = stats_run_init(&r, &p);
    if (!st) st = read_examples(&r, in);
    if (!st) st = stats_summary(&r, &p, &s);
    if (!st) st = write_report(p.report_path, in, s);
    stats_run_free(&r);
    if (st) { cJSON_Delete(s); return st; }
    *out = s;
    return LMA_OK;
}
