/* The LLM judge: rubric, score schema, prompt, parse, kappa, the constrained judge call
 * and the per-task statistics (see judge.h). */
#include "eval/judge.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/io.h"
#include "core/json.h"
#include "data/example.h"
#include "infer/generate.h"
#include "infer/json_constraint.h"
#include "tok/chat_template.h"

/* ---- rubric ------------------------------------------------------------------------- */

static int name_ok(const char *s) {
    size_t n = strlen(s);
    if (!n || n > 63) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *d = lma_malloc(n + 1, "rubric");
    if (d) memcpy(d, s, n + 1);
    return d;
}

lma_status lma_rubric_parse(const cJSON *j, const char *what, lma_rubric *r) {
    memset(r, 0, sizeof *r);
    if (!cJSON_IsObject(j)) return lma_error(LMA_ERR_FORMAT, "%s: a rubric is a JSON object with \"criteria\"", what);
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(j, "instructions");
    if (ins && !cJSON_IsString(ins)) return lma_error(LMA_ERR_FORMAT, "%s: field \"instructions\" must be a string", what);
    for (const cJSON *k = j->child; k; k = k->next)
        if (strcmp(k->string, "instructions") && strcmp(k->string, "criteria"))
            return lma_error(LMA_ERR_FORMAT, "%s: unknown field \"%s\" (a rubric has \"instructions\" and \"criteria\")",
                             what, k->string);
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(j, "criteria");
    if (!cJSON_IsArray(cr) || !cJSON_GetArraySize(cr) || cJSON_GetArraySize(cr) > LMA_RUBRIC_MAX)
        return lma_error(LMA_ERR_FORMAT, "%s: field \"criteria\" must be a list of 1 to %d criteria", what, LMA_RUBRIC_MAX);
    if (ins && !(r->instructions = dup_str(ins->valuestring))) return LMA_ERR_NOMEM;
    int i = 0;
    for (const cJSON *c = cr->child; c; c = c->next, i++) {
        char ctx[600];
        snprintf(ctx, sizeof ctx, "%s: criteria[%d]", what, i);
        const char *name = NULL, *desc = NULL;
        int64_t mn = 0, mx = 0;
        lma_status st = cJSON_IsObject(c) ? LMA_OK : lma_error(LMA_ERR_FORMAT, "%s: must be an object", ctx);
        if (st == LMA_OK) st = lma_json_str(c, "name", 1, ctx, &name);
        if (st == LMA_OK) st = lma_json_str(c, "description", 0, ctx, &desc);
        if (st == LMA_OK) st = lma_json_int(c, "min", 1, ctx, &mn);
        if (st == LMA_OK) st = lma_json_int(c, "max", 1, ctx, &mx);
        if (st == LMA_OK && !name_ok(name))
            st = lma_error(LMA_ERR_FORMAT, "%s: field \"name\" must be 1 to 63 of A-Z a-z 0-9 _ -", ctx);
        if (st == LMA_OK && (mn > mx || mx - mn >= 64 || mn < -1000000 || mx > 1000000))
            st = lma_error(LMA_ERR_FORMAT, "%s (%s): needs min <= max with at most 64 values (min %lld, max %lld)", ctx,
                           name, (long long)mn, (long long)mx);
        if (st == LMA_OK && lma_rubric_find(r, name) >= 0)
            st = lma_error(LMA_ERR_FORMAT, "%s: criterion \"%s\" appears twice", ctx, name);
        if (st != LMA_OK) { lma_rubric_free(r); return st; }
        lma_rubric_criterion *k = &r->crit[r->n++];
        snprintf(k->name, sizeof k->name, "%s", name);
        k->min = (int)mn;
        k->max = (int)mx;
        if (!(k->description = dup_str(desc ? desc : ""))) { lma_rubric_free(r); return LMA_ERR_NOMEM; }
    }
    return LMA_OK;
}

lma_status lma_rubric_load(const char *path, lma_rubric *r) {
    memset(r, 0, sizeof *r);
    cJSON *j = NULL;
    LMA_TRY(lma_json_load(path, &j));
    lma_status st = lma_rubric_parse(j, path, r);
    cJSON_Delete(j);
    return st;
}

void lma_rubric_free(lma_rubric *r) {
    if (!r) return;
    free(r->instructions);
    for (int i = 0; i < r->n; i++) free(r->crit[i].description);
    memset(r, 0, sizeof *r);
}

int lma_rubric_find(const lma_rubric *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->crit[i].name, name)) return i;
    return -1;
}

cJSON *lma_rubric_schema(const lma_rubric *r) {
    cJSON *s = cJSON_CreateObject(), *props = NULL, *req = NULL;
    if (!s || !cJSON_AddStringToObject(s, "type", "object") || !(props = cJSON_AddObjectToObject(s, "properties")) ||
        !(req = cJSON_AddArrayToObject(s, "required")) || !cJSON_AddFalseToObject(s, "additionalProperties")) {
        cJSON_Delete(s);
        return NULL;
    }
    for (int i = 0; i < r->n; i++) {
        cJSON *p = cJSON_AddObjectToObject(props, r->crit[i].name), *en = p ? cJSON_AddArrayToObject(p, "enum") : NULL;
        cJSON *nm = cJSON_CreateString(r->crit[i].name);
        if (!en || !nm) { cJSON_Delete(nm); cJSON_Delete(s); return NULL; }
        cJSON_AddItemToArray(req, nm);
        for (int v = r->crit[i].min; v <= r->crit[i].max; v++) {
            cJSON *x = cJSON_CreateNumber(v);
            if (!x) { cJSON_Delete(s); return NULL; }
            cJSON_AddItemToArray(en, x);
        }
    }
    return s;
}

/* ---- prompt and parse ----------------------------------------------------------------- */

char *lma_judge_prompt(const lma_rubric *r, const char *question, const char *const *sources, int n_sources,
                       const char *answer) {
    lma_buf b = {0};
    lma_buf_str(&b, r->instructions ? r->instructions
                                    : "You are a strict grader. Score the answer below on each criterion with an "
                                      "integer in the criterion's range.");
    lma_buf_str(&b, "\n\nCriteria:\n");
    for (int i = 0; i < r->n; i++)
        lma_buf_printf(&b, "- %s (%d to %d): %s\n", r->crit[i].name, r->crit[i].min, r->crit[i].max,
                       r->crit[i].description);
    lma_buf_printf(&b, "\nQuestion:\n%s\n", question ? question : "");
    if (n_sources > 0) {
        lma_buf_str(&b, "\nSources:\n");
        for (int i = 0; i < n_sources; i++) lma_buf_printf(&b, "[%d] %s\n", i + 1, sources[i]);
    }
    lma_buf_printf(&b, "\nAnswer:\n%s\n\nReply with one JSON object and nothing else: {", answer ? answer : "");
    for (int i = 0; i < r->n; i++)
        lma_buf_printf(&b, "%s\"%s\": <%d to %d>", i ? ", " : "", r->crit[i].name, r->crit[i].min, r->crit[i].max);
    lma_buf_str(&b, "}");
    if (b.st != LMA_OK) { lma_buf_free(&b); return NULL; }
    return b.p;
}

int lma_judge_parse(const lma_rubric *r, const char *text, size_t len, int *scores) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    int ok = cJSON_IsObject(j);
    while (ok && end < text + len && (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r')) end++;
    ok = ok && end == text + len;
    for (int i = 0; ok && i < r->n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, r->crit[i].name);
        ok = cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= r->crit[i].min &&
             v->valuedouble <= r->crit[i].max;
        if (ok) scores[i] = (int)v->valuedouble;
    }
    cJSON_Delete(j);
    return ok;
}

/* ---- agreement -------------------------------------------------------------------------- */

double lma_cohen_kappa(const int *a, const int *b, size_t n, int min, int max) {
    if (!n || max < min || max - min >= 64) return NAN;
    double pa[64] = {0}, pb[64] = {0}, po = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i] < min || a[i] > max || b[i] < min || b[i] > max) return NAN;
        pa[a[i] - min] += 1.0 / (double)n;
        pb[b[i] - min] += 1.0 / (double)n;
        po += a[i] == b[i];
    }
    po /= (double)n;
    double pe = 0;
    for (int k = 0; k <= max - min; k++) pe += pa[k] * pb[k];
    if (fabs(1 - pe) < 1e-12) return NAN;
    return (po - pe) / (1 - pe);
}

/* ---- the judge call ------------------------------------------------------------------------ */

struct lma_eval_judge {
    lma_model *m;
    const lma_tokenizer *tok;
    const lma_rubric *r;
    lma_json_constraint *jc;
    int32_t stop[16];
    int n_stop, max_tokens;
};

lma_status lma_eval_judge_new(lma_model *m, const lma_tokenizer *tok, const lma_rubric *r, const int32_t *stop_ids,
                              int n_stop_ids, lma_eval_judge **out) {
    *out = NULL;
    lma_eval_judge *j = lma_calloc(1, sizeof *j, "judge");
    if (!j) return LMA_ERR_NOMEM;
    j->m = m; j->tok = tok; j->r = r;
    for (int i = 0; i < n_stop_ids && i < 16; i++) j->stop[j->n_stop++] = stop_ids[i];
    if (!j->n_stop && lma_tok_eos_id(tok) >= 0) j->stop[j->n_stop++] = lma_tok_eos_id(tok);
    cJSON *schema = lma_rubric_schema(r);
    lma_status st = schema ? lma_json_constraint_new(tok, schema, &j->jc) : lma_error(LMA_ERR_NOMEM, "out of memory");
    cJSON_Delete(schema);
    if (st != LMA_OK) { free(j); return st; }
    /* the shortest output plus room for whitespace and the longer values: the constraint
     * closes the object within whatever budget is left, so this only bounds the cost */
    j->max_tokens = lma_json_constraint_min_tokens(j->jc) + 8 * r->n + 16;
    *out = j;
    return LMA_OK;
}

void lma_eval_judge_free(lma_eval_judge *j) {
    if (!j) return;
    lma_json_constraint_free(j->jc);
    free(j);
}

lma_status lma_eval_judge_score(lma_eval_judge *j, lma_judge_call *calls, size_t n, int max_active, long *tokens_run) {
    for (size_t i = 0; i < n; i++) calls[i].text = NULL;
    if (!n) return LMA_OK;
    lma_gen_params gp = {.max_tokens = j->max_tokens, .sample = lma_sample_default_params()}; /* greedy */
    gp.stop_ids = j->stop;
    gp.n_stop_ids = j->n_stop;
    gp.constraint = j->jc;
    int32_t **ids = lma_calloc(n, sizeof *ids, "judge prompts");
    lma_gen_request *rq = lma_calloc(n, sizeof *rq, "judge prompts");
    lma_gen_result *gr = lma_calloc(n, sizeof *gr, "judge prompts");
    lma_status st = ids && rq && gr ? LMA_OK : LMA_ERR_NOMEM;
    for (size_t i = 0; st == LMA_OK && i < n; i++) {
        const lma_judge_call *c = &calls[i];
        char *prompt = lma_judge_prompt(j->r, c->question, c->sources, c->n_sources, c->answer);
        if (!prompt) { st = lma_error(LMA_ERR_NOMEM, "out of memory"); break; }
        lma_chat_msg msg = {"user", prompt};
        size_t *sp = NULL, nsp = 0;
        st = lma_chat_encode(j->tok, NULL, &msg, 1, 1, &ids[i], &rq[i].n_prompt, &sp, &nsp);
        free(sp);
        free(prompt);
        rq[i].prompt = ids[i];
        rq[i].p = &gp;
    }
    if (st == LMA_OK) st = lma_generate_batch(j->m, j->tok, rq, n, max_active, gr);
    for (size_t i = 0; st == LMA_OK && i < n; i++) {
        if (tokens_run) *tokens_run += gr[i].prompt_tokens + (long)gr[i].n_ids;
        if (!gr[i].text || !lma_judge_parse(j->r, gr[i].text, gr[i].len, calls[i].scores))
            st = lma_error(LMA_ERR_INTERNAL, "judge: the constrained output does not hold the rubric's scores: %.*s",
                           gr[i].text ? (int)(gr[i].len > 200 ? 200 : gr[i].len) : 0, gr[i].text ? gr[i].text : "");
    }
    for (size_t i = 0; i < n; i++) {
        if (ids) free(ids[i]);
        if (!gr) continue;
        free(gr[i].ids);
        if (st == LMA_OK) calls[i].text = gr[i].text;
        else free(gr[i].text);
    }
    free(ids); free(rq); free(gr);
    return st;
}

/* ---- statistics ------------------------------------------------------------------------------ */

lma_status lma_judge_stats_add(lma_judge_stats *s, const int *scores, const int *labels) {
    int nc = s->rubric->n;
    void *const arrs[2] = {&s->scores, &s->labels};
    const size_t esz[2] = {sizeof *s->scores, sizeof *s->labels};
    LMA_TRY(lma_grow_all(&s->cap, (s->n + 1) * (size_t)nc, 64, "judge scores", 2, arrs, esz));
    memcpy(s->scores + s->n * (size_t)nc, scores, (size_t)nc * sizeof *scores);
    memcpy(s->labels + s->n * (size_t)nc, labels, (size_t)nc * sizeof *labels);
    s->n++;
    return LMA_OK;
}

void lma_judge_stats_free(lma_judge_stats *s) {
    if (!s) return;
    free(s->scores);
    free(s->labels);
    s->scores = s->labels = NULL;
    s->n = s->cap = 0;
}

void lma_judge_summarize(const lma_judge_stats *s, int c, lma_judge_summary *o) {
    int nc = s->rubric->n;
    memset(o, 0, sizeof *o);
    o->accuracy = o->kappa = NAN;
    double sum = 0;
    int *a = s->n ? malloc(s->n * sizeof *a) : NULL, *b = s->n ? malloc(s->n * sizeof *b) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        int sc = s->scores[i * (size_t)nc + (size_t)c], lb = s->labels[i * (size_t)nc + (size_t)c];
        sum += sc;
        if (lb != LMA_JUDGE_NO_LABEL && a && b) { a[k] = sc; b[k] = lb; k++; }
    }
    o->mean = s->n ? sum / (double)s->n : NAN;
    o->n_labelled = (long)k;
    if (k) {
        long agree = 0;
        for (size_t i = 0; i < k; i++) agree += a[i] == b[i];
        o->accuracy = (double)agree / (double)k;
        o->kappa = lma_cohen_kappa(a, b, k, s->rubric->crit[c].min, s->rubric->crit[c].max);
    }
    free(a);
    free(b);
}

static void add_num_or_null(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

cJSON *lma_judge_stats_json(const lma_judge_stats *s) {
    cJSON *o = cJSON_CreateObject(), *rub = o ? cJSON_AddArrayToObject(o, "rubric") : NULL,
          *cr = rub ? cJSON_AddObjectToObject(o, "criteria") : NULL;
    if (!cr) { cJSON_Delete(o); return NULL; }
    cJSON_AddNumberToObject(o, "n", (double)s->n);
    for (int c = 0; c < s->rubric->n; c++) {
        const lma_rubric_criterion *k = &s->rubric->crit[c];
        cJSON *e = cJSON_CreateObject();
        if (!e) break;
        cJSON_AddStringToObject(e, "name", k->name);
        cJSON_AddNumberToObject(e, "min", k->min);
        cJSON_AddNumberToObject(e, "max", k->max);
        cJSON_AddItemToArray(rub, e);
        lma_judge_summary sm;
        lma_judge_summarize(s, c, &sm);
        cJSON *x = cJSON_AddObjectToObject(cr, k->name);
        if (!x) break;
        add_num_or_null(x, "mean", sm.mean);
        cJSON_AddNumberToObject(x, "n_labelled", (double)sm.n_labelled);
        if (sm.n_labelled) {
            add_num_or_null(x, "accuracy", sm.accuracy);
            add_num_or_null(x, "kappa", sm.kappa);
        }
    }
    return o;
}

/* ---- item fields ---------------------------------------------------------------------------- */

lma_status lma_judge_read_labels(const lma_rubric *r, const cJSON *j, const char *file, long long line, int *labels,
                                 int *any) {
    for (int i = 0; i < r->n; i++) labels[i] = LMA_JUDGE_NO_LABEL;
    *any = 0;
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "label");
    if (!l || cJSON_IsNull(l)) return LMA_OK;
    if (!cJSON_IsObject(l))
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"label\" must be an object {criterion: integer score}", file, line);
    for (const cJSON *v = l->child; v; v = v->next) {
        int c = lma_rubric_find(r, v->string);
        if (c < 0)
            return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"label\": \"%s\" is not a criterion of the rubric", file, line,
                             v->string);
        const lma_rubric_criterion *k = &r->crit[c];
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < k->min ||
            v->valuedouble > k->max)
            return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"label\".\"%s\" must be an integer from %d to %d", file, line,
                             k->name, k->min, k->max);
        labels[c] = (int)v->valuedouble;
        *any = 1;
    }
    return LMA_OK;
}

lma_status lma_judge_read_sources(const cJSON *j, const char *file, long long line, const char **sources, int cap,
                                  int *n) {
    *n = 0;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "sources");
    if (!s || cJSON_IsNull(s)) return LMA_OK;
    if (cJSON_IsString(s)) { sources[(*n)++] = s->valuestring; return LMA_OK; }
    if (!cJSON_IsArray(s)) return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"sources\" must be a string or a list of strings", file, line);
    for (const cJSON *e = s->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"sources\": element %d is not a string", file, line, *n + 1);
        if (*n == cap) return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"sources\": at most %d", file, line, cap);
        sources[(*n)++] = e->valuestring;
    }
    return LMA_OK;
}

lma_status lma_judge_read_item(const cJSON *j, const char *file, long long line, const char **question,
                               const char **response) {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "question"), *a = cJSON_GetObjectItemCaseSensitive(j, "response");
    if (!cJSON_IsString(q)) q = cJSON_GetObjectItemCaseSensitive(j, "prompt");
    if (!cJSON_IsString(a)) a = cJSON_GetObjectItemCaseSensitive(j, "answer");
    if (!cJSON_IsString(q))
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: the record has no \"question\" (or \"prompt\") string", file, line);
    if (!cJSON_IsString(a))
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: the record has no \"response\" (or \"answer\") string to judge", file,
                         line);
    *question = q->valuestring;
    *response = a->valuestring;
    return LMA_OK;
}

static lma_status sft_record(const lma_rubric *r, const cJSON *j, const char *in, long long line, lma_atomic_file *af,
                             long *written, long *skipped) {
    const char *q, *a, *src[64];
    int nsrc, labels[LMA_RUBRIC_MAX], any, full = 1;
    LMA_TRY(lma_judge_read_item(j, in, line, &q, &a));
    LMA_TRY(lma_judge_read_sources(j, in, line, src, 64, &nsrc));
    LMA_TRY(lma_judge_read_labels(r, j, in, line, labels, &any));
    for (int i = 0; i < r->n; i++) full &= labels[i] != LMA_JUDGE_NO_LABEL;
    if (!full) { (*skipped)++; return LMA_OK; }
    lma_buf reply = {0};
    lma_buf_push(&reply, '{');
    for (int i = 0; i < r->n; i++) lma_buf_printf(&reply, "%s\"%s\": %d", i ? ", " : "", r->crit[i].name, labels[i]);
    lma_buf_push(&reply, '}');
    char *prompt = lma_judge_prompt(r, q, src, nsrc, a), *line_text = NULL;
    cJSON *o = cJSON_CreateObject(), *msgs = o ? cJSON_AddArrayToObject(o, "messages") : NULL;
    cJSON *u = cJSON_CreateObject(), *as = cJSON_CreateObject();
    lma_status st = LMA_ERR_NOMEM;
    if (reply.st == LMA_OK && prompt && msgs && u && as) {
        cJSON_AddStringToObject(u, "role", "user");
        cJSON_AddStringToObject(u, "content", prompt);
        cJSON_AddStringToObject(as, "role", "assistant");
        cJSON_AddStringToObject(as, "content", reply.p);
        cJSON_AddItemToArray(msgs, u);
        cJSON_AddItemToArray(msgs, as);
        u = as = NULL;
        line_text = cJSON_PrintUnformatted(o);
        if (line_text) {
            st = lma_atomic_write(af, line_text, strlen(line_text));
            if (st == LMA_OK) st = lma_atomic_write(af, "\n", 1);
            if (st == LMA_OK) (*written)++;
        }
    }
    if (st == LMA_ERR_NOMEM && !line_text) lma_error(LMA_ERR_NOMEM, "out of memory");
    free(line_text);
    cJSON_Delete(u);
    cJSON_Delete(as);
    cJSON_Delete(o);
    free(prompt);
    lma_buf_free(&reply);
    return st;
}

lma_status lma_judge_sft_write(const lma_rubric *r, const char *in, const char *out, long *written, long *skipped) {
    *written = *skipped = 0;
    lma_ex_reader *rd = NULL;
    LMA_TRY(lma_ex_open(in, &rd));
    lma_atomic_file af;
    lma_status st = lma_atomic_open(&af, out);
    if (st != LMA_OK) { lma_ex_close(rd); return st; }
    lma_example *ex = NULL;
    while (st == LMA_OK) {
        if ((st = lma_ex_next(rd, &ex)) != LMA_OK || !ex) break;
        if (!ex->json || !cJSON_IsObject(ex->json))
            st = lma_error(LMA_ERR_FORMAT, "%s:%lld: not a JSON object", in, (long long)ex->line);
        else
            st = sft_record(r, ex->json, in, (long long)ex->line, &af, written, skipped);
    }
    lma_ex_close(rd);
    if (st == LMA_OK && !*written) st = lma_error(LMA_ERR_FORMAT, "%s: no record is labelled on every criterion", in);
    if (st != LMA_OK) { lma_atomic_abort(&af); return st; }
    return lma_atomic_commit(&af);
}
