/* data judge: a model scores each example 1-5 against a rubric prompt (AlpaGasus
 * style), examples at or above the threshold are kept; scores are cached by a
 * content hash so that a rerun makes no model call. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/io.h"
#include "core/progress.h"
#include "data/curate/internal.h"
#include "data/curate/u64map.h"

/* data/curate/judge_rubric.txt (tests/test_data_judge.c checks they are equal) */
static const char default_rubric[] =
    "We would like to request your feedback on the performance of an AI assistant in response to the instruction displayed below.\n"
    "\n"
    "Instruction:\n"
    "{instruction}\n"
    "\n"
    "Response:\n"
    "{response}\n"
    "\n"
    "Please rate the accuracy and helpfulness of the response to the instruction on a scale of 1 to 5, where a higher score indicates a better response: 5 = correct, complete and well written; 4 = correct with minor flaws; 3 = partly correct or incomplete; 2 = mostly wrong or unhelpful; 1 = wrong, harmful or off-topic.\n"
    "Please first output a single line of the form \"Score: N\" where N is the score. In the subsequent line, please provide a short explanation of your evaluation, avoiding any potential bias.\n";

const char *lma_judge_default_rubric(void) { return default_rubric; }

/* the judge's reply: a score line the parser reads first, then anything (the explanation) */
static const char score_grammar[] = "root ::= \"Score: \" [1-5] (\"\\n\" .*)?\n";
const char *lma_judge_score_grammar(void) { return score_grammar; }

void lma_judge_default_params(lma_judge_params *p) {
    memset(p, 0, sizeof *p);
    p->threshold = 4;
    p->gen.max_tokens = 48;
    p->gen.sample = lma_sample_default_params();
    p->gen.grammar = score_grammar;
}

/* ---- score parsing ---------------------------------------------------------- */

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* The integer at t[i..] (digits only); -1 when it is a decimal other than N.0 or
 * too long. *end gets the first byte after it. */
static long number_at(const char *t, size_t n, size_t i, size_t *end) {
    long v = 0;
    size_t k = i;
    while (k < n && is_digit(t[k])) {
        if (k - i >= 6) return -1;
        v = v * 10 + (t[k] - '0');
        k++;
    }
    if (k + 1 < n && t[k] == '.' && is_digit(t[k + 1])) {
        size_t d = k + 1;
        while (d < n && t[d] == '0') d++;
        if (d < n && is_digit(t[d])) return -1; /* 4.5 */
        k = d;
    }
    *end = k;
    return v;
}

/* "N-M" or "N to M" at e (just after N): *last = the last digit of M. */
static int is_range(const char *t, size_t n, size_t e, size_t *last) {
    size_t k = e;
    if (k < n && t[k] == '-') k++;
    else if (k + 4 <= n && !memcmp(t + k, " to ", 4)) k += 4;
    else return 0;
    if (k >= n || !is_digit(t[k])) return 0;
    while (k + 1 < n && is_digit(t[k + 1])) k++;
    *last = k;
    return 1;
}

static int cue_at(const char *t, size_t n, size_t i, size_t *after) {
    static const char *cues[] = {"score", "rating", "rate", "grade"};
    if (i > 0 && is_alpha(t[i - 1])) return 0;
    for (size_t c = 0; c < sizeof cues / sizeof cues[0]; c++) {
        size_t L = strlen(cues[c]);
        if (i + L > n) continue;
        size_t k = 0;
        while (k < L && tolower((unsigned char)t[i + k]) == cues[c][k]) k++;
        if (k < L) continue;
        k = i + L;
        while (k < n && is_alpha(t[k])) k++; /* scores, rated, grading */
        *after = k;
        return 1;
    }
    return 0;
}

int lma_judge_parse_score(const char *t, size_t n) {
    if (!t) return 0;
    /* 1. a number shortly after a cue, on the same line */
    for (size_t i = 0; i < n; i++) {
        size_t a;
        if (!cue_at(t, n, i, &a)) continue;
        for (size_t k = a; k < n && k < a + 32 && t[k] != '\n'; k++) {
            if (!is_digit(t[k])) continue;
            size_t e;
            long v = number_at(t, n, k, &e);
            if (v < 0 || (e < n && is_alpha(t[e]))) return 0;
            if (is_range(t, n, e, &k)) continue; /* "(1-5)": the scale, not the score */
            return v >= 1 && v <= 5 ? (int)v : 0;
        }
    }
    /* 2. the first standalone integer 1..5 anywhere */
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(t[i]) || (i > 0 && (is_digit(t[i - 1]) || is_alpha(t[i - 1]) || t[i - 1] == '.'))) continue;
        size_t e;
        long v = number_at(t, n, i, &e);
        size_t j = i;
        while (j < n && is_digit(t[j])) j++;
        if (v < 0 || (e < n && (is_alpha(t[e]) || is_digit(t[e])))) { i = j; continue; }
        if (is_range(t, n, e, &i)) continue;
        if (v >= 1 && v <= 5) return (int)v;
        i = j;
    }
    return 0;
}

/* ---- the judge prompt -------------------------------------------------------- */

/* instruction: the turns before the judged reply; response: the last assistant turn
 * (or the chosen reply; for text records the text). */
static lma_status split_example(const lma_example *ex, lma_buf *ins, lma_buf *resp) {
    ins->len = resp->len = 0;
    LMA_TRY(lma_buf_append(ins, "", 0));
    LMA_TRY(lma_buf_append(resp, "", 0));
    size_t last = SIZE_MAX;
    const lma_ex_msg *r = NULL;
    if (ex->n_chosen) r = &ex->chosen[ex->n_chosen - 1];
    else
        for (size_t i = 0; i < ex->n_msgs; i++)
            if (ex->msgs[i].role == LMA_ROLE_ASSISTANT || ex->msgs[i].role == LMA_ROLE_TEXT) last = i, r = &ex->msgs[i];
    size_t end = ex->n_chosen ? ex->n_msgs : (last == SIZE_MAX ? ex->n_msgs : last);
    int single = end == 1 && ex->msgs[0].role == LMA_ROLE_USER;
    for (size_t i = 0; i < end; i++) {
        const lma_ex_msg *m = &ex->msgs[i];
        if (!single) {
            if (i) LMA_TRY(lma_buf_append(ins, "\n", 1));
            const char *rn = lma_role_name(m->role);
            LMA_TRY(lma_buf_append(ins, rn, strlen(rn)));
            LMA_TRY(lma_buf_append(ins, ": ", 2));
        }
        LMA_TRY(lma_buf_append(ins, m->text, m->len));
    }
    if (r) LMA_TRY(lma_buf_append(resp, r->text, r->len));
    return LMA_OK;
}

static lma_status fill_rubric(const char *rubric, const lma_buf *ins, const lma_buf *resp, lma_buf *out) {
    out->len = 0;
    LMA_TRY(lma_buf_append(out, "", 0));
    const char *s = rubric;
    for (;;) {
        const char *a = strstr(s, "{instruction}"), *b = strstr(s, "{response}");
        const char *hit = a && (!b || a < b) ? a : b;
        if (!hit) return lma_buf_append(out, s, strlen(s));
        LMA_TRY(lma_buf_append(out, s, (size_t)(hit - s)));
        if (hit == a) { LMA_TRY(lma_buf_append(out, ins->p, ins->len)); s = hit + 13; }
        else { LMA_TRY(lma_buf_append(out, resp->p, resp->len)); s = hit + 10; }
    }
}

/* ---- the cache ------------------------------------------------------------------ */

typedef struct {
    lma_u64map index;   /* key[0] -> entry */
    uint64_t *k1;       /* (n) second half of the key */
    int *score;         /* (n) 0 = unparsed */
    char **text;        /* (n) the judge's text */
    size_t n, cap;
    FILE *append;
    char path[4200];
} cache;

static lma_status cache_put_mem(cache *c, const uint64_t key[2], int score, const char *text) {
    if (c->n == c->cap) { /* 3 arrays, one capacity */
        void *const arrs[] = {&c->k1, &c->score, &c->text};
        const size_t esz[] = {sizeof *c->k1, sizeof *c->score, sizeof *c->text};
        LMA_TRY(lma_grow_all(&c->cap, c->n + 1, 256, "judge cache", 3, arrs, esz));
    }
    if (c->n >= UINT32_MAX - 1) return lma_error(LMA_ERR_NOMEM, "judge cache: too many entries");
    c->text[c->n] = strdup(text);
    if (!c->text[c->n]) return lma_error(LMA_ERR_NOMEM, "judge cache: out of memory");
    c->k1[c->n] = key[1];
    c->score[c->n] = score;
    LMA_TRY(lma_u64map_insert(&c->index, key[0], (uint32_t)c->n));
    c->n++;
    return LMA_OK;
}

typedef struct { const cache *c; uint64_t k1; uint32_t found; } find_ctx;
static int find_fn(uint32_t v, void *vctx) {
    find_ctx *f = vctx;
    if (f->c->k1[v] != f->k1) return 0;
    f->found = v;
    return 1;
}

static uint32_t cache_get(const cache *c, const uint64_t key[2]) {
    find_ctx f = {c, key[1], UINT32_MAX};
    lma_u64map_find(&c->index, key[0], find_fn, &f);
    return f.found;
}

static int parse_key(const char *s, uint64_t key[2]) {
    if (!s || strlen(s) != 32) return 0;
    for (int h = 0; h < 2; h++) {
        uint64_t v = 0;
        for (int i = 0; i < 16; i++) {
            char ch = s[h * 16 + i];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (d < 0) return 0;
            v = v << 4 | (uint64_t)d;
        }
        key[h] = v;
    }
    return 1;
}

static lma_status cache_open(cache *c, const char *spec, int64_t *skipped) {
    memset(c, 0, sizeof *c);
    *skipped = 0;
    if (!spec) return LMA_OK;
    size_t L = strlen(spec);
    if (lma_is_dir(spec) || (L && spec[L - 1] == '/')) {
        LMA_TRY(lma_mkdir_p(spec));
        LMA_TRY(lma_path_join(c->path, sizeof c->path, spec, "judge_cache.jsonl"));
    } else {
        if (L >= sizeof c->path) return lma_error(LMA_ERR_ARG, "%s: path too long", spec);
        memcpy(c->path, spec, L + 1);
    }
    if (lma_file_exists(c->path)) {
        lma_jsonl j;
        LMA_TRY(lma_jsonl_open(&j, c->path, 1));
        lma_status st = LMA_OK;
        while (!st) {
            cJSON *o;
            if ((st = lma_jsonl_next(&j, &o, NULL)) || !o) break;
            const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "key"), *s = cJSON_GetObjectItemCaseSensitive(o, "score"),
                        *t = cJSON_GetObjectItemCaseSensitive(o, "judgement");
            uint64_t key[2];
            if (cJSON_IsString(k) && parse_key(k->valuestring, key) && cJSON_IsString(t) && (cJSON_IsNumber(s) || cJSON_IsNull(s))) {
                int sc = cJSON_IsNumber(s) ? s->valueint : 0;
                if (sc < 0 || sc > 5) j.n_skipped++;
                else if (cache_get(c, key) == UINT32_MAX) st = cache_put_mem(c, key, sc, t->valuestring);
            } else j.n_skipped++;
            cJSON_Delete(o);
        }
        *skipped = j.n_skipped;
        lma_jsonl_close(&j);
        if (st) return st;
    }
    c->append = fopen(c->path, "ab+");
    if (!c->append) return lma_error(LMA_ERR_IO, "%s: cannot open the judge cache for appending", c->path);
    /* a torn last line (crash while appending) must not swallow the next entry */
    if (fseek(c->append, 0, SEEK_END) == 0 && ftell(c->append) > 0) {
        if (fseek(c->append, -1, SEEK_END) == 0) {
            int last = fgetc(c->append);
            fseek(c->append, 0, SEEK_END);
            if (last != '\n') fputc('\n', c->append);
        }
    }
    return LMA_OK;
}

static lma_status cache_add(cache *c, const uint64_t key[2], int score, const char *text) {
    LMA_TRY(cache_put_mem(c, key, score, text));
    if (!c->append) return LMA_OK;
    cJSON *o = cJSON_CreateObject();
    char k[40];
    snprintf(k, sizeof k, "%016llx%016llx", (unsigned long long)key[0], (unsigned long long)key[1]);
    if (!o) return lma_error(LMA_ERR_NOMEM, "judge cache: out of memory");
    cJSON_AddStringToObject(o, "key", k);
    if (score) cJSON_AddNumberToObject(o, "score", score); else cJSON_AddNullToObject(o, "score");
    cJSON_AddStringToObject(o, "judgement", text);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return lma_error(LMA_ERR_NOMEM, "judge cache: out of memory");
    int ok = fputs(s, c->append) >= 0 && fputc('\n', c->append) != EOF && fflush(c->append) == 0;
    free(s);
    if (!ok) return lma_error(LMA_ERR_IO, "%s: cannot append to the judge cache", c->path);
    return LMA_OK;
}

static lma_status cache_close(cache *c) {
    lma_status st = LMA_OK;
    if (c->append) {
        if (fflush(c->append) || fsync(fileno(c->append))) st = lma_error(LMA_ERR_IO, "%s: cannot write the judge cache", c->path);
        fclose(c->append);
    }
    for (size_t i = 0; i < c->n; i++) free(c->text[i]);
    free(c->text); free(c->k1); free(c->score);
    lma_u64map_free(&c->index);
    memset(c, 0, sizeof *c);
    return st;
}

/* key = two 64-bit hashes of (version, model id, rubric, instruction, response,
 * chat template, generation settings) */
static void judge_key(const lma_curate_llm *l, const lma_judge_params *p, const char *rubric, const lma_buf *ins,
                      const lma_buf *resp, uint64_t key[2]) {
    char settings[512];
    const lma_gen_params *g = &p->gen;
    int n = snprintf(settings, sizeof settings, "v1|max=%d|t=%.9g|k=%d|p=%.9g|minp=%.9g|rep=%.9g|seed=%llu|tmpl=%s|nstop=%d",
                     g->max_tokens, (double)g->sample.temperature, g->sample.top_k, (double)g->sample.top_p,
                     (double)g->sample.min_p, (double)g->sample.repetition_penalty, (unsigned long long)g->seed,
                     l && l->chat_template ? l->chat_template : "", g->n_stop_strings);
    char mid[40];
    const char *model_id = p->model_id;
    if (!model_id) {
        snprintf(mid, sizeof mid, "%016llx%016llx", (unsigned long long)(l ? l->identity[0] : 0),
                 (unsigned long long)(l ? l->identity[1] : 0));
        model_id = mid;
    }
    for (int h = 0; h < 2; h++) {
        uint64_t s = 0x6a75646765ULL + (uint64_t)h * 0x9E3779B97F4A7C15ULL;
        s = lma_hash64(settings, (size_t)n < sizeof settings ? (size_t)n : sizeof settings - 1, s);
        s = lma_hash64(model_id, strlen(model_id) + 1, s);
        s = lma_hash64(rubric, strlen(rubric) + 1, s);
        s = lma_hash64(ins->p, ins->len + 1, s);
        s = lma_hash64(resp->p, resp->len + 1, s);
        for (int i = 0; i < g->n_stop_strings; i++) s = lma_hash64(g->stop_strings[i], strlen(g->stop_strings[i]) + 1, s);
        if (g->grammar) s = lma_hash64(g->grammar, strlen(g->grammar) + 1, s ^ 0x6772616d6d6172ULL); /* unconstrained: v1 keys */
        key[h] = s;
    }
}

/* ---- the driver ---------------------------------------------------------------------- */

/* One record of a chunk: its judged parts, its JSONL line, its cache key. */
typedef struct {
    lma_buf ins, resp, prompt, line;
    lma_chat_msg msg;
    int64_t lineno, index;
    uint64_t key[2];
    int cached; /* in the cache before the chunk, or a repeat of an earlier record of it */
} jrec;

lma_status lma_data_judge(lma_curate_llm *l, const char *in, const lma_judge_params *pin, cJSON **out) {
    lma_judge_params p;
    if (pin) p = *pin; else lma_judge_default_params(&p);
    *out = NULL;
    const char *rubric = p.rubric ? p.rubric : default_rubric;
    if (!strstr(rubric, "{response}"))
        return lma_error(LMA_ERR_ARG, "judge: the rubric has no {response} placeholder (the reply to score goes there)");
    if (!l || !l->ctx) return lma_error(LMA_ERR_ARG, "judge: no model");
    LMA_TRY(lma_curate_check_output(in, p.scores_path));
    cJSON *summary = cJSON_CreateObject();
    if (!summary) return lma_error(LMA_ERR_NOMEM, "judge: out of memory");
    cache c;
    int64_t cache_skipped = 0;
    lma_curate_sieve sv;
    lma_atomic_file fs;
    int fs_open = 0, sv_open = 0;
    lma_ex_reader *r = NULL;
    /* records are judged a chunk at a time: what the cache lacks is generated in one batch
     * (l->max_active together), then every record is scored from the cache in its order */
    enum { CHUNK = 32 };
    jrec *rec = lma_calloc(CHUNK, sizeof *rec, "judge records");
    lma_curate_call calls[CHUNK];
    int64_t hist[6] = {0}, hits = 0, scored = 0, total = 0, calls0 = l->calls;
    double sum = 0;
    memset(&c, 0, sizeof c);
    lma_status st = rec ? cache_open(&c, p.cache_path, &cache_skipped) : LMA_ERR_NOMEM;
    if (!st && p.progress && strcmp(in, "-")) {
        st = lma_ex_open(in, &r);
        lma_example *ex;
        while (!st && !(st = lma_ex_next(r, &ex)) && ex) total++;
        lma_ex_close(r); r = NULL;
    }
    if (!st && !(st = lma_curate_sieve_open(&sv, "judge", in, p.out_path, p.removed_path, p.report_path))) sv_open = 1;
    if (!st && p.scores_path && !(st = lma_atomic_open(&fs, p.scores_path))) fs_open = 1;
    if (!st) st = lma_ex_open(in, &r);
    lma_progress bar;
    if (p.progress) lma_progress_start(&bar, "judge", total);
    int64_t seen = 0;
    int end = 0;
    while (!st && !end) {
        size_t n = 0, nc = 0;
        while (!st && n < CHUNK) { /* 1. read: the judged parts, the line, the key, a cache hit */
            lma_example *ex;
            if ((st = lma_ex_next(r, &ex)) || !ex) { end = 1; break; }
            seen++;
            if (ex->error_code) { st = lma_curate_on_bad(ex, &sv.bad); continue; }
            jrec *x = &rec[n];
            x->lineno = ex->line; x->index = ex->index; x->line.len = 0;
            if ((st = split_example(ex, &x->ins, &x->resp)) || (st = lma_ex_line(ex, &x->line))) break;
            judge_key(l, &p, rubric, &x->ins, &x->resp, x->key);
            x->cached = cache_get(&c, x->key) != UINT32_MAX;
            for (size_t k = 0; !x->cached && k < n; k++) /* judged once a chunk: the repeat is a cache hit */
                x->cached = !memcmp(rec[k].key, x->key, sizeof x->key);
            n++;
        }
        for (size_t i = 0; !st && i < n; i++) /* 2. the prompts of what the cache lacks */
            if (!rec[i].cached && !(st = fill_rubric(rubric, &rec[i].ins, &rec[i].resp, &rec[i].prompt))) {
                rec[i].msg = (lma_chat_msg){"user", rec[i].prompt.p};
                calls[nc++] = (lma_curate_call){&rec[i].msg, 1, NULL, 0};
            }
        if (!st && nc) st = lma_curate_llm_reply_batch(l, calls, nc, &p.gen);
        for (size_t i = 0, k = 0; i < n && k < nc; i++) /* 3. into the cache (kept even when a later step fails) */
            if (!rec[i].cached) {
                if (!st) st = cache_add(&c, rec[i].key, lma_judge_parse_score(calls[k].text, calls[k].len), calls[k].text);
                free(calls[k++].text);
            }
        for (size_t i = 0; !st && i < n; i++) { /* 4. each record in its order, from the cache */
            const jrec *x = &rec[i];
            uint32_t at = cache_get(&c, x->key);
            int score = c.score[at];
            hits += x->cached;
            scored++;
            hist[score]++;
            sum += score;
            if (fs_open) {
                cJSON *o = cJSON_CreateObject();
                if (o) {
                    cJSON_AddNumberToObject(o, "line", (double)x->lineno);
                    cJSON_AddNumberToObject(o, "index", (double)x->index);
                    if (score) cJSON_AddNumberToObject(o, "score", score); else cJSON_AddNullToObject(o, "score");
                    cJSON_AddBoolToObject(o, "cached", x->cached);
                    cJSON_AddStringToObject(o, "judgement", c.text[at]);
                }
                char *js = o ? cJSON_PrintUnformatted(o) : NULL;
                cJSON_Delete(o);
                if (!js) st = lma_error(LMA_ERR_NOMEM, "judge: out of memory");
                if (!st && (st = lma_atomic_write(&fs, js, strlen(js)))) fs_open = 0;
                if (!st && (st = lma_atomic_write(&fs, "\n", 1))) fs_open = 0;
                free(js);
            }
            if (st) break;
            if (score ? score >= p.threshold : p.keep_unparsed) st = lma_curate_sieve_keep(&sv, &x->line);
            else {
                cJSON *info = cJSON_CreateObject();
                if (info) {
                    cJSON_AddNumberToObject(info, "line", (double)x->lineno);
                    cJSON_AddStringToObject(info, "reason", score ? "below_threshold" : "unparsed");
                    if (score) cJSON_AddNumberToObject(info, "score", score); else cJSON_AddNullToObject(info, "score");
                }
                st = lma_curate_sieve_drop(&sv, info, &x->line);
            }
        }
        if (p.progress) lma_progress_update(&bar, seen);
    }
    lma_ex_close(r);
    if (p.progress) lma_progress_finish(&bar);
    lma_status cst = cache_close(&c); /* keep what was generated, even after an error */
    if (!st) st = cst;
    if (!st) {
        cJSON_AddNumberToObject(summary, "scored", (double)scored);
        cJSON_AddNumberToObject(summary, "cache_hits", (double)hits);
        cJSON_AddNumberToObject(summary, "model_calls", (double)(l->calls - calls0));
        cJSON_AddNumberToObject(summary, "cache_lines_skipped", (double)cache_skipped);
        cJSON_AddNumberToObject(summary, "unparsed", (double)hist[0]);
        cJSON_AddNumberToObject(summary, "threshold", p.threshold);
        int64_t parsed = scored - hist[0];
        cJSON_AddNumberToObject(summary, "mean_score", parsed ? sum / (double)parsed : 0.0);
        cJSON *h = cJSON_AddObjectToObject(summary, "histogram");
        for (int k = 1; h && k <= 5; k++) {
            char name[4] = {(char)('0' + k), 0};
            cJSON_AddNumberToObject(h, name, (double)hist[k]);
        }
        if (fs_open) { fs_open = 0; st = lma_atomic_commit(&fs); }
        if (!st) { sv_open = 0; st = lma_curate_sieve_close(&sv, summary); }
    }
    if (fs_open) lma_atomic_abort(&fs);
    if (sv_open) lma_curate_sieve_abort(&sv);
    for (size_t i = 0; rec && i < CHUNK; i++) {
        lma_buf_free(&rec[i].ins); lma_buf_free(&rec[i].resp); lma_buf_free(&rec[i].prompt); lma_buf_free(&rec[i].line);
    }
    free(rec);
    if (st) { cJSON_Delete(summary); return st; }
    *out = summary;
    return LMA_OK;
}
