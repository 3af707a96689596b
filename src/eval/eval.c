#include "eval/eval.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/io.h"
#include "core/progress.h"
#include "data/example.h"
#include "eval/gencheck.h"
#include "eval/passkey.h"
#include "infer/generate.h"
#include "infer/grammar.h"
#include "infer/json_constraint.h"
#include "tok/chat_template.h"

static const char *const kind_names[] = {"ppl", "mmlu", "gen", "judge", "passkey"};
#define N_KINDS 5
static const char *const tag_names[] = {"", "general", "domain"};

const char *lma_eval_kind_name(lma_eval_kind k) { return (unsigned)k < N_KINDS ? kind_names[k] : "?"; }
const char *lma_eval_tag_name(lma_eval_tag t) { return (unsigned)t < 3 ? tag_names[t] : "?"; }

lma_eval_params lma_eval_default_params(void) {
    lma_eval_params p = {0};
    p.shots = 5;
    p.mode = LMA_EVAL_SCORE_KV;
    p.gen_max_tokens = 256;
    p.gen_check = -1;
    p.passkey_trials = 5;
    p.max_active = 8;
    return p;
}

lma_status lma_eval_task_parse(const char *spec, lma_eval_task *out) {
    memset(out, 0, sizeof *out);
    const char *s = spec;
    if (!strncmp(s, "general:", 8)) { out->tag = LMA_EVAL_GENERAL; s += 8; }
    else if (!strncmp(s, "domain:", 7)) { out->tag = LMA_EVAL_DOMAIN; s += 7; }
    if (!strcmp(s, "passkey")) { /* no file */
        out->kind = LMA_EVAL_PASSKEY;
        snprintf(out->name, sizeof out->name, "passkey");
        return LMA_OK;
    }
    const char *c = strchr(s, ':');
    int k = -1;
    for (int i = 0; c && i < N_KINDS; i++)
        if ((size_t)(c - s) == strlen(kind_names[i]) && !strncmp(s, kind_names[i], (size_t)(c - s))) k = i;
    if (k < 0)
        return lma_error(LMA_ERR_ARG, "task '%s': expected [general:|domain:]KIND:PATH with KIND ppl, mmlu, gen or judge, or passkey", spec);
    if (!c[1]) return lma_error(LMA_ERR_ARG, "task '%s': the PATH is empty", spec);
    if (strlen(c + 1) >= sizeof out->path) return lma_error(LMA_ERR_ARG, "task '%s': path too long", spec);
    out->kind = (lma_eval_kind)k;
    strcpy(out->path, c + 1);
    char tmp[4096];
    strcpy(tmp, out->path);
    size_t l = strlen(tmp);
    while (l > 1 && tmp[l - 1] == '/') tmp[--l] = 0;
    const char *base = strrchr(tmp, '/');
    base = base ? base + 1 : tmp;
    snprintf(out->name, sizeof out->name, "%s:%s", kind_names[k], base);
    return LMA_OK;
}

void lma_eval_result_free(lma_eval_result *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_groups; i++) {
        free(r->groups[i].name);
        free(r->groups[i].pred);
        free(r->groups[i].gold);
    }
    free(r->groups);
    lma_judge_stats_free(&r->judge);
    free(r->cells);
    memset(r, 0, sizeof *r);
}

static lma_status add_group(lma_eval_result *r, const char *name, size_t *idx) {
    for (size_t i = 0; i < r->n_groups; i++) if (!strcmp(r->groups[i].name, name)) { *idx = i; return LMA_OK; }
    lma_eval_group *g = realloc(r->groups, (r->n_groups + 1) * sizeof *g);
    if (!g) return lma_error(LMA_ERR_NOMEM, "out of memory");
    r->groups = g;
    g[r->n_groups].name = malloc(strlen(name) + 1);
    if (!g[r->n_groups].name) return lma_error(LMA_ERR_NOMEM, "out of memory");
    strcpy(g[r->n_groups].name, name);
    g[r->n_groups].n = g[r->n_groups].correct = 0;
    g[r->n_groups].pred = g[r->n_groups].gold = NULL;
    *idx = r->n_groups++;
    return LMA_OK;
}

void lma_eval_finish_acc(lma_eval_result *r) {
    long n = 0, c = 0;
    double macro = 0;
    size_t ng = 0;
    for (size_t i = 0; i < r->n_groups; i++) {
        n += r->groups[i].n; c += r->groups[i].correct;
        if (r->groups[i].n) { macro += (double)r->groups[i].correct / (double)r->groups[i].n; ng++; }
    }
    r->metric = "acc";
    r->higher_is_better = 1;
    r->n = n; r->correct = c;
    r->score = n ? (double)c / (double)n : 0;
    r->macro = ng ? macro / (double)ng : 0;
}

/* ---------------- MMLU ---------------- */

lma_status lma_eval_mmlu(lma_eval_scorer *sc, const lma_tokenizer *tok, const lma_mmlu_set *set,
                         const lma_eval_params *p, lma_eval_result *res) {
    static const char *const conts[4] = {" A", " B", " C", " D"};
    size_t total = 0;
    for (size_t s = 0; s < set->n; s++) {
        size_t n = set->subj[s].n_items;
        total += p->limit && n > p->limit ? p->limit : n;
        if (p->shots > 0 && set->subj[s].n_shots < (size_t)p->shots + (set->subj[s].shots_are_items ? 1 : 0))
            return lma_error(LMA_ERR_ARG, "MMLU subject %s: %d shots asked but its dev split has %zu rows%s",
                             set->subj[s].name, p->shots, set->subj[s].n_shots,
                             set->subj[s].n_shots ? "" : " (no dev folder found)");
    }
    lma_progress pg;
    if (p->progress) lma_progress_start(&pg, "mmlu", (int64_t)total);
    size_t done = 0;
    lma_status st = LMA_OK;
    for (size_t s = 0; st == LMA_OK && s < set->n; s++) {
        const lma_mmlu_subject *u = &set->subj[s];
        size_t gi;
        if ((st = add_group(res, u->name, &gi)) != LMA_OK) break;
        size_t n = p->limit && u->n_items > p->limit ? p->limit : u->n_items;
        lma_eval_group *g = &res->groups[gi];
        char *pr = realloc(g->pred, (size_t)g->n + n + 1), *go = pr ? realloc(g->gold, (size_t)g->n + n + 1) : NULL;
        if (pr) g->pred = pr;
        if (go) g->gold = go;
        if (!pr || !go) st = lma_error(LMA_ERR_NOMEM, "out of memory");
        else pr[g->n] = go[g->n] = 0; /* a subject with no item: empty strings */
        for (size_t i = 0; st == LMA_OK && i < n; i++) {
            char *prompt = NULL;
            size_t plen = 0;
            int32_t *cids[4] = {0}, *ctx = NULL;
            size_t nc[4] = {0}, nctx = 0;
            int cloze = p->mmlu_form == LMA_MMLU_CLOZE;
            st = lma_mmlu_prompt_form((lma_mmlu_form)p->mmlu_form, u->name, u->shots, u->n_shots,
                                      u->shots_are_items, p->shots, &u->items[i], &prompt, &plen);
            char *cont[4] = {0};
            for (int k = 0; st == LMA_OK && k < 4; k++) {
                /* cloze: " {choice text}" (the harness's target delimiter, then the choice) */
                if (cloze && !(cont[k] = malloc(strlen(u->items[i].choices[k]) + 2))) {
                    st = lma_error(LMA_ERR_NOMEM, "out of memory");
                    break;
                }
                if (cloze) { cont[k][0] = ' '; strcpy(cont[k] + 1, u->items[i].choices[k]); }
                const char *ck = cloze ? cont[k] : conts[k];
                int32_t *c = NULL;
                size_t n_c = 0;
                st = lma_eval_encode_pair(tok, prompt, plen, ck, strlen(ck), k ? &c : &ctx, k ? &n_c : &nctx,
                                          &cids[k], &nc[k]);
                free(c);
                if (st == LMA_OK && nc[k] == 0)
                    st = lma_error(LMA_ERR_FORMAT, "MMLU %s item %zu: the continuation \"%s\" encodes to no tokens",
                                   u->name, i + 1, ck);
            }
            for (int k = 0; k < 4; k++) free(cont[k]);
            double ll[4];
            if (st == LMA_OK) st = sc->loglik(sc, ctx, nctx, (const int32_t *const *)cids, nc, 4, ll);
            if (st == LMA_OK && cloze) /* acc_norm: per character of the choice */
                for (int k = 0; k < 4; k++) {
                    size_t nch = lma_utf8_chars(u->items[i].choices[k]);
                    ll[k] /= (double)(nch ? nch : 1);
                }
            if (st == LMA_OK) {
                int best = 0;
                for (int k = 1; k < 4; k++) if (ll[k] > ll[best]) best = k; /* first max wins, as np.argmax */
                g->pred[g->n] = (char)('A' + best), g->pred[g->n + 1] = 0;
                g->gold[g->n] = (char)('A' + u->items[i].answer), g->gold[g->n + 1] = 0;
                g->n++;
                g->correct += best == u->items[i].answer;
            }
            free(prompt); free(ctx);
            for (int k = 0; k < 4; k++) free(cids[k]);
            if (p->progress) lma_progress_update(&pg, (int64_t)++done);
        }
    }
    if (p->progress) lma_progress_finish(&pg);
    if (st == LMA_OK) lma_eval_finish_acc(res);
    return st;
}

/* ---------------- perplexity ---------------- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static lma_status list_files(const char *path, char ***files, size_t *n) {
    *files = NULL; *n = 0;
    char **v = NULL;
    size_t k = 0;
    if (!lma_is_dir(path)) {
        v = malloc(sizeof *v);
        if (!v || !(v[0] = strdup(path))) { free(v); return lma_error(LMA_ERR_NOMEM, "out of memory"); }
        *files = v; *n = 1;
        return LMA_OK;
    }
    DIR *d = opendir(path);
    if (!d) return lma_error(LMA_ERR_IO, "%s: cannot open the folder", path);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char f[8192];
        snprintf(f, sizeof f, "%s/%s", path, de->d_name);
        if (lma_is_dir(f)) continue;
        char **nv = realloc(v, (k + 1) * sizeof *v);
        if (!nv || !(nv[k] = strdup(f))) {
            v = nv ? nv : v;
            for (size_t i = 0; i < k; i++) free(v[i]);
            free(v); closedir(d);
            return lma_error(LMA_ERR_NOMEM, "out of memory");
        }
        v = nv; k++;
    }
    closedir(d);
    if (!k) { free(v); return lma_error(LMA_ERR_IO, "%s: no files to score", path); }
    qsort(v, k, sizeof *v, cmp_str);
    *files = v; *n = k;
    return LMA_OK;
}

static lma_status ppl_file(lma_model *m, const lma_tokenizer *tok, const char *file, const lma_eval_params *p,
                           lma_eval_result *res, lma_progress *pg) {
    char *text = NULL;
    size_t len = 0, n = 0;
    int32_t *ids = NULL;
    LMA_TRY(lma_read_file(file, &text, &len));
    size_t *starts = NULL, *ends = NULL;
    lma_status st = lma_tok_encode_offsets(tok, text, len, 1, &ids, &starts, &ends, &n);
    free(text);
    if (st == LMA_OK && p->limit && n > p->limit + 1) {
        n = p->limit + 1;
        len = ends[n - 1]; /* the bytes of the scored tokens */
    }
    free(starts); free(ends);
    if (st != LMA_OK) { free(ids); return st; }
    int maxc = m->cfg.max_position_embeddings > 0 ? m->cfg.max_position_embeddings : 2048;
    size_t W = p->ppl_window > 0 && p->ppl_window < maxc ? (size_t)p->ppl_window : (size_t)maxc;
    size_t S = p->ppl_stride > 0 ? (size_t)p->ppl_stride : W / 2;
    if (W < 2) { free(ids); return lma_error(LMA_ERR_ARG, "perplexity window must be at least 2 tokens"); }
    if (S < 1) S = 1;
    if (S > W - 1) S = W - 1;
    int32_t *tg = lma_malloc(W * sizeof(int32_t), "ppl targets");
    if (!tg) { free(ids); return LMA_ERR_NOMEM; }
    size_t prev_end = 0;
    for (size_t begin = 0; st == LMA_OK && n >= 2; begin += S) {
        size_t end = begin + W < n ? begin + W : n, T = end - begin, from = prev_end > 1 ? prev_end : 1;
        for (size_t t = 0; t < T; t++) {
            size_t j = begin + t + 1; /* token predicted at position t */
            tg[t] = j < end && j >= from ? ids[j] : LMA_IGNORE_INDEX;
        }
        st = lma_model_forward(m, ids + begin, tg, NULL, 1, (int)T, 0, 1.0f, NULL);
        if (st != LMA_OK) break;
        const float *losses = lma_model_losses(m);
        for (size_t t = 0; t < T; t++)
            if (tg[t] != LMA_IGNORE_INDEX) { res->nll += losses[t]; res->tokens++; }
        res->tokens_run += (long)T;
        prev_end = end;
        if (pg) lma_progress_update(pg, pg->done + 1);
        if (end == n) break;
    }
    res->bytes += (long)len;
    free(tg); free(ids);
    return st;
}

static lma_status run_ppl(lma_model *m, const lma_tokenizer *tok, const lma_eval_task *t, const lma_eval_params *p,
                          lma_eval_result *res) {
    char **files = NULL;
    size_t nf = 0;
    LMA_TRY(list_files(t->path, &files, &nf));
    lma_progress pg;
    if (p->progress) lma_progress_start(&pg, "ppl", 0);
    lma_status st = LMA_OK;
    for (size_t i = 0; st == LMA_OK && i < nf; i++) st = ppl_file(m, tok, files[i], p, res, p->progress ? &pg : NULL);
    if (p->progress) lma_progress_finish(&pg);
    for (size_t i = 0; i < nf; i++) free(files[i]);
    free(files);
    if (st != LMA_OK) return st;
    if (res->tokens == 0) return lma_error(LMA_ERR_ARG, "%s: no tokens to score (each file needs at least 2)", t->path);
    res->metric = "ppl";
    res->higher_is_better = 0;
    res->score = exp(res->nll / (double)res->tokens);
    return LMA_OK;
}

/* ---------------- generation tasks ---------------- */

static int json_text(const cJSON *j, const char *key, char *buf, size_t cap, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsString(v)) { *out = v->valuestring; return 1; }
    if (cJSON_IsNumber(v)) { snprintf(buf, cap, "%.17g", v->valuedouble); *out = buf; return 1; }
    return 0;
}

enum { GEN_CHUNK = 64 }; /* records read, generated together (max_active at a time) and scored, a chunk at a time */

/* Reads the next chunk of records, at most room (<= GEN_CHUNK) of them, each a JSON object,
 * duplicated into js[] (the caller deletes them) with its line; *n = 0 at the end. */
static lma_status read_chunk(lma_ex_reader *r, const char *path, size_t room, cJSON **js, int64_t *lines, size_t *n) {
    lma_example *ex = NULL;
    for (*n = 0; *n < room;) {
        LMA_TRY(lma_ex_next(r, &ex));
        if (!ex) break;
        if (!ex->json || !cJSON_IsObject(ex->json))
            return lma_error(LMA_ERR_FORMAT, "%s:%lld: not a JSON object", path, (long long)ex->line);
        if (!(js[*n] = cJSON_Duplicate(ex->json, 1))) return lma_error(LMA_ERR_NOMEM, "out of memory");
        lines[(*n)++] = ex->line;
    }
    return LMA_OK;
}

static size_t chunk_room(const lma_eval_params *p, size_t done) {
    return p->limit && p->limit - done < GEN_CHUNK ? p->limit - done : GEN_CHUNK;
}

/* One gen record between its parsing and its scoring: the prompt's ids and the request
 * (its stop strings point into stops[], its texts into json, which the item owns). */
typedef struct {
    cJSON *json;
    const char *file; int64_t line;
    const char *answer, *judge_q;
    const cJSON *answer_obj;
    char pnum[64], anum[64]; /* a number prompt or answer, as text */
    int check, ns;
    const char *keys[64], *stops[16];
    size_t nk;
    int32_t *ids; size_t n;
    lma_gen_params gp;
} gen_item;

static void gen_item_free(gen_item *it) {
    cJSON_Delete(it->json);
    free(it->ids);
    memset(it, 0, sizeof *it);
}

/* Parses a record (it->json, owned) into its request. */
static lma_status gen_prepare(const lma_tokenizer *tok, const lma_eval_params *p, gen_item *it) {
    const cJSON *j = it->json;
    const char *file = it->file;
    long long line = (long long)it->line;
    const char *prompt = NULL, *question = NULL, *answer = NULL;
    json_text(j, "prompt", it->pnum, sizeof it->pnum, &prompt);
    if (!prompt && !(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "question"))))
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: the record has no \"prompt\" (or \"question\") string", file, line);
    if (!prompt) question = cJSON_GetObjectItemCaseSensitive(j, "question")->valuestring;
    const cJSON *answer_obj = cJSON_GetObjectItemCaseSensitive(j, "answer");
    if (cJSON_IsObject(answer_obj)) answer = ""; /* json check: the values the output must hold */
    else if (!json_text(j, "answer", it->anum, sizeof it->anum, &answer))
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: the record has no \"answer\" (string, number, or an object for "
                         "check json)", file, line);
    else answer_obj = NULL;
    int check = p->gen_check;
    const cJSON *cj = cJSON_GetObjectItemCaseSensitive(j, "check");
    if (check < 0 && cJSON_IsString(cj)) {
        check = lma_gen_check_from_name(cj->valuestring);
        if (check < 0)
            return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"check\": unknown check '%s' (exact, number, json, yaml)",
                             file, line, cj->valuestring);
    }
    if (check < 0) check = answer_obj ? LMA_CHECK_JSON : strstr(answer, "####") ? LMA_CHECK_NUMBER : LMA_CHECK_EXACT;
    if (answer_obj && check != LMA_CHECK_JSON)
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"answer\": an object answer needs the json check", file, line);
    const cJSON *e, *ka = cJSON_GetObjectItemCaseSensitive(j, "required_keys"),
                    *sa = cJSON_GetObjectItemCaseSensitive(j, "stop");
    if (ka && !cJSON_IsArray(ka))
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"required_keys\" must be a list of strings", file, line);
    cJSON_ArrayForEach(e, ka) {
        if (!cJSON_IsString(e))
            return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"required_keys\": element %zu is not a string", file, line,
                             it->nk + 1);
        if (it->nk == 64) return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"required_keys\": at most 64 strings", file, line);
        it->keys[it->nk++] = e->valuestring;
    }
    if (sa && !cJSON_IsArray(sa))
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"stop\" must be a list of strings", file, line);
    cJSON_ArrayForEach(e, sa) {
        if (!cJSON_IsString(e))
            return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"stop\": element %d is not a string", file, line, it->ns + 1);
        if (it->ns == 15) return lma_error(LMA_ERR_FORMAT, "%s:%lld: field \"stop\": at most 15 strings", file, line);
        it->stops[it->ns++] = e->valuestring;
    }
    it->answer = answer;
    it->answer_obj = answer_obj;
    it->check = check;
    it->judge_q = question ? question : prompt;
    char *qbuf = NULL;
    if (question) {
        size_t ql = strlen(question);
        qbuf = lma_malloc(ql + 32, "prompt");
        if (!qbuf) return LMA_ERR_NOMEM;
        snprintf(qbuf, ql + 32, "Question: %s\nAnswer:", question);
        prompt = qbuf;
        if (!sa) it->stops[it->ns++] = "Question:";
    }
    lma_status st;
    if (p->chat) {
        lma_chat_msg msg = {"user", prompt};
        size_t *sp = NULL, nsp = 0;
        st = lma_chat_encode(tok, NULL, &msg, 1, 1, &it->ids, &it->n, &sp, &nsp);
        free(sp);
    } else {
        st = lma_tok_encode(tok, prompt, strlen(prompt), 1, &it->ids, &it->n);
    }
    free(qbuf);
    if (st == LMA_OK && it->n == 0) st = lma_error(LMA_ERR_FORMAT, "%s:%lld: the prompt is empty", file, line);
    if (st != LMA_OK) return st;
    it->gp = (lma_gen_params){.max_tokens = p->gen_max_tokens, .sample = lma_sample_default_params()};
    it->gp.stop_ids = p->stop_ids; it->gp.n_stop_ids = p->n_stop_ids;
    it->gp.stop_strings = it->stops; it->gp.n_stop_strings = it->ns;
    it->gp.constraint = p->gen_constraint;
    return LMA_OK;
}

/* Scores one output: the check, the format validity, the grammar. */
static lma_status gen_score(const gen_item *it, const lma_gen_result *gr, const lma_eval_params *p, lma_eval_result *res) {
    const char *out = gr->text ? gr->text : "";
    size_t olen = gr->text ? gr->len : 0;
    int ok = 0, valid = 0, check = it->check;
    res->tokens_run += gr->prompt_tokens + (long)gr->n_ids;
    switch (check) {
    case LMA_CHECK_EXACT: ok = lma_gen_check_exact(out, olen, it->answer); break;
    case LMA_CHECK_NUMBER: ok = lma_gen_check_number(out, olen, it->answer); break;
    case LMA_CHECK_JSON: ok = lma_gen_check_json(out, olen, it->keys, it->nk, &valid); break;
    default: ok = lma_gen_check_yaml(out, olen, it->keys, it->nk, &valid); break;
    }
    if (check == LMA_CHECK_JSON || check == LMA_CHECK_YAML) { /* format validity, beside the accuracy */
        res->format_n++;
        res->keys_ok += ok;
        if (ok && it->answer_obj) { /* the task itself: each of the answer's values, equal after strip() */
            size_t b, e;
            lma_gen_unfence(out, olen, &b, &e);
            cJSON *got = cJSON_ParseWithLength(out + b, e - b);
            for (const cJSON *want = it->answer_obj->child; ok && want; want = want->next) {
                const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, want->string);
                if (cJSON_IsString(want) && cJSON_IsString(g)) ok = lma_gen_check_exact(g->valuestring, strlen(g->valuestring), want->valuestring);
                else ok = g && cJSON_Compare(g, want, 1);
            }
            cJSON_Delete(got);
        }
        const cJSON *sch = cJSON_GetObjectItemCaseSensitive(it->json, "schema");
        if (!sch) sch = p->gen_schema;
        if (check == LMA_CHECK_JSON && sch) {
            size_t b, e;
            int sv = 0;
            lma_gen_unfence(out, olen, &b, &e);
            lma_status st = lma_json_schema_check(sch, out + b, e - b, &sv);
            if (st != LMA_OK)
                return lma_error_replace(st, "%s:%lld: field \"schema\": %s", it->file, (long long)it->line, lma_last_error());
            res->schema_n++;
            res->schema_valid += sv;
        }
    }
    if (p->gen_grammar) { /* the whole output, as generated, a complete sentence of the grammar */
        res->grammar_n++;
        res->grammar_valid += lma_grammar_matches(p->gen_grammar, out, olen);
    }
    size_t gi;
    LMA_TRY(add_group(res, lma_gen_check_name((lma_gen_check)check), &gi));
    res->groups[gi].n++;
    res->groups[gi].correct += ok;
    res->valid += valid;
    return LMA_OK;
}

/* A chunk of judge calls with their sources and human labels (the calls point into the
 * records' JSON, kept meanwhile): gen tasks with --judge and judge tasks share it. */
enum { JUDGE_SOURCES = 64 };
typedef struct {
    const char **src;
    lma_judge_call *calls;
    int (*labels)[LMA_RUBRIC_MAX];
} judge_chunk;
static lma_status judge_chunk_new(judge_chunk *c, size_t n) {
    c->src = lma_calloc(n * JUDGE_SOURCES, sizeof *c->src, "judge sources");
    c->calls = lma_calloc(n, sizeof *c->calls, "judge calls");
    c->labels = lma_calloc(n, sizeof *c->labels, "judge labels");
    return c->src && c->calls && c->labels ? LMA_OK : LMA_ERR_NOMEM;
}
static void judge_chunk_free(judge_chunk *c) { free(c->src); free(c->calls); free(c->labels); }
/* call i (question and answer set by the caller) gets its record's sources and labels */
static lma_status judge_chunk_read(judge_chunk *c, size_t i, const cJSON *js, const char *file, int64_t line,
                                   const lma_rubric *rb, int *any) {
    lma_judge_call *call = &c->calls[i];
    call->sources = c->src + JUDGE_SOURCES * i;
    LMA_TRY(lma_judge_read_sources(js, file, (long long)line, c->src + JUDGE_SOURCES * i, JUDGE_SOURCES,
                                   &call->n_sources));
    return lma_judge_read_labels(rb, js, file, (long long)line, c->labels[i], any);
}
/* the n calls scored in one batch, counted into stats; their texts freed */
static lma_status judge_chunk_score(judge_chunk *c, size_t n, lma_eval_judge *jd, int max_active, long *tokens,
                                   lma_judge_stats *stats) {
    lma_status st = lma_eval_judge_score(jd, c->calls, n, max_active, tokens);
    for (size_t i = 0; i < n; i++) {
        if (st == LMA_OK) st = lma_judge_stats_add(stats, c->calls[i].scores, c->labels[i]);
        free(c->calls[i].text);
        c->calls[i].text = NULL;
    }
    return st;
}

/* The judge scores a chunk's outputs, all in one batch. */
static lma_status gen_judge(const gen_item *it, const lma_gen_result *gr, size_t n, const lma_eval_params *p,
                            lma_eval_result *res) {
    judge_chunk c;
    lma_status st = judge_chunk_new(&c, n);
    for (size_t i = 0; st == LMA_OK && i < n; i++) {
        int any;
        c.calls[i].question = it[i].judge_q;
        c.calls[i].answer = gr[i].text ? gr[i].text : "";
        st = judge_chunk_read(&c, i, it[i].json, it[i].file, it[i].line, p->rubric, &any);
    }
    res->judge.rubric = p->rubric;
    if (st == LMA_OK) st = judge_chunk_score(&c, n, p->judge, p->max_active, &res->judge_tokens_run, &res->judge);
    judge_chunk_free(&c);
    return st;
}

static lma_status run_gen(lma_model *m, const lma_tokenizer *tok, const lma_eval_task *t, const lma_eval_params *p,
                          lma_eval_result *res) {
    lma_ex_reader *r = NULL;
    LMA_TRY(lma_ex_open(t->path, &r));
    lma_progress pg;
    if (p->progress) lma_progress_start(&pg, "gen", 0);
    gen_item *it = lma_calloc(GEN_CHUNK, sizeof *it, "gen records");
    cJSON *js[GEN_CHUNK];
    int64_t lines[GEN_CHUNK];
    lma_gen_request rq[GEN_CHUNK];
    lma_gen_result gr[GEN_CHUNK];
    lma_status st = it ? LMA_OK : LMA_ERR_NOMEM;
    size_t done = 0, n = 1;
    while (st == LMA_OK && n && (n = chunk_room(p, done))) {
        st = read_chunk(r, t->path, n, js, lines, &n);
        for (size_t i = 0; i < n; i++) {
            it[i] = (gen_item){.json = js[i], .file = t->path, .line = lines[i]};
            if (st == LMA_OK) st = gen_prepare(tok, p, &it[i]);
            rq[i] = (lma_gen_request){it[i].ids, it[i].n, &it[i].gp};
        }
        if (st == LMA_OK && n) st = lma_generate_batch(m, tok, rq, n, p->max_active, gr);
        if (st == LMA_OK && n) {
            for (size_t i = 0; st == LMA_OK && i < n; i++) st = gen_score(&it[i], &gr[i], p, res);
            if (st == LMA_OK && p->judge) st = gen_judge(it, gr, n, p, res);
            for (size_t i = 0; i < n; i++) { free(gr[i].ids); free(gr[i].text); }
            done += n;
            if (p->progress) lma_progress_update(&pg, (int64_t)done);
        }
        for (size_t i = 0; i < n; i++) gen_item_free(&it[i]);
    }
    if (p->progress) lma_progress_finish(&pg);
    free(it);
    lma_ex_close(r);
    if (st != LMA_OK) return st;
    if (done == 0) return lma_error(LMA_ERR_FORMAT, "%s: no records", t->path);
    lma_eval_finish_acc(res);
    return LMA_OK;
}

/* ---------------- judge tasks: the model is the judge ---------------- */

static lma_status run_judge(lma_model *m, const lma_tokenizer *tok, const lma_eval_task *t, const lma_eval_params *p,
                            lma_eval_result *res) {
    if (!p->rubric) return lma_error(LMA_ERR_ARG, "task %s needs a rubric (--rubric F.json)", t->name);
    lma_eval_judge *jd = NULL;
    LMA_TRY(lma_eval_judge_new(m, tok, p->rubric, p->stop_ids, p->n_stop_ids, &jd));
    res->judge.rubric = p->rubric;
    lma_ex_reader *r = NULL;
    lma_status st = lma_ex_open(t->path, &r);
    if (st != LMA_OK) { lma_eval_judge_free(jd); return st; }
    lma_progress pg;
    if (p->progress) lma_progress_start(&pg, "judge", 0);
    /* a chunk of records (their JSON kept: the calls point into it) scored in one batch */
    cJSON *js[GEN_CHUNK];
    int64_t lines[GEN_CHUNK];
    judge_chunk jc;
    if (judge_chunk_new(&jc, GEN_CHUNK) != LMA_OK) st = LMA_ERR_NOMEM;
    size_t done = 0, n = 1;
    int labelled = 0;
    while (st == LMA_OK && n && (n = chunk_room(p, done))) {
        st = read_chunk(r, t->path, n, js, lines, &n);
        for (size_t i = 0; st == LMA_OK && i < n; i++) {
            int any = 0;
            memset(&jc.calls[i], 0, sizeof jc.calls[i]);
            st = lma_judge_read_item(js[i], t->path, (long long)lines[i], &jc.calls[i].question, &jc.calls[i].answer);
            if (st == LMA_OK) st = judge_chunk_read(&jc, i, js[i], t->path, lines[i], p->rubric, &any);
            labelled |= any;
        }
        if (st == LMA_OK && n) st = judge_chunk_score(&jc, n, jd, p->max_active, &res->tokens_run, &res->judge);
        for (size_t i = 0; i < n; i++) cJSON_Delete(js[i]);
        done += n;
        if (p->progress && n) lma_progress_update(&pg, (int64_t)done);
    }
    judge_chunk_free(&jc);
    if (p->progress) lma_progress_finish(&pg);
    lma_ex_close(r);
    lma_eval_judge_free(jd);
    if (st != LMA_OK) return st;
    if (done == 0) return lma_error(LMA_ERR_FORMAT, "%s: no records", t->path);
    res->n = (long)done;
    res->higher_is_better = 1;
    double sum = 0;
    int k = 0;
    for (int c = 0; c < p->rubric->n; c++) {
        lma_judge_summary sm;
        lma_judge_summarize(&res->judge, c, &sm);
        const lma_rubric_criterion *cr = &p->rubric->crit[c];
        if (labelled && sm.n_labelled) { sum += sm.accuracy; k++; }
        else if (!labelled) { sum += cr->max > cr->min ? (sm.mean - cr->min) / (cr->max - cr->min) : 1.0; k++; }
    }
    res->metric = labelled ? "agree" : "score";
    res->score = k ? sum / k : 0;
    return LMA_OK;
}

/* ---------------- passkey ---------------- */

static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static lma_status run_passkey(lma_model *m, const lma_tokenizer *tok, const lma_eval_params *p, lma_eval_result *res) {
    if (p->n_passkey_ctx <= 0) return lma_error(LMA_ERR_ARG, "passkey: give the context lengths (--context N[,N...])");
    static const double def_depths[5] = {0, 0.25, 0.5, 0.75, 1};
    const double *depths = p->n_passkey_depths > 0 ? p->passkey_depths : def_depths;
    int nd = p->n_passkey_depths > 0 ? p->n_passkey_depths : 5, trials = p->passkey_trials > 0 ? p->passkey_trials : 5;
    res->n_cells = (size_t)p->n_passkey_ctx * (size_t)nd;
    res->cells = lma_calloc(res->n_cells, sizeof *res->cells, "passkey cells");
    if (!res->cells) return LMA_ERR_NOMEM;
    lma_progress pg;
    if (p->progress) lma_progress_start(&pg, "passkey", (int64_t)res->n_cells * trials);
    lma_status st = LMA_OK;
    long done = 0;
    for (int ci = 0; st == LMA_OK && ci < p->n_passkey_ctx; ci++)
        for (int di = 0; st == LMA_OK && di < nd; di++) {
            lma_passkey_cell *cell = &res->cells[(size_t)ci * (size_t)nd + (size_t)di];
            cell->context = p->passkey_ctx[ci];
            cell->depth = depths[di];
            for (int t = 0; st == LMA_OK && t < trials; t++) {
                uint64_t h = mix64(p->passkey_seed ^ mix64((uint64_t)cell->context * 1000003u + (uint64_t)di * 101u + (uint64_t)t));
                int key = 10000 + (int)(h % 90000);
                lma_passkey_prompt pk;
                st = lma_passkey_build(tok, cell->context, cell->depth, key, 8, &pk);
                if (st != LMA_OK) break;
                lma_gen_params gp = {.max_tokens = 8, .sample = lma_sample_default_params()};
                gp.sample.temperature = 0;
                gp.stop_ids = p->stop_ids; gp.n_stop_ids = p->n_stop_ids;
                lma_gen_result gr;
                st = lma_generate(m, tok, pk.ids, pk.n, &gp, &gr);
                free(pk.ids);
                if (st != LMA_OK) break;
                res->tokens_run += gr.prompt_tokens + (long)gr.n_ids;
                int ok = gr.text && lma_passkey_check(gr.text, gr.len, key);
                free(gr.ids); free(gr.text);
                cell->prompt_tokens += ((double)pk.n - cell->prompt_tokens) / (double)(cell->n + 1);
                cell->n++;
                cell->correct += ok;
                res->n++;
                res->correct += ok;
                if (p->progress) lma_progress_update(&pg, (int64_t)++done);
            }
        }
    if (p->progress) lma_progress_finish(&pg);
    if (st != LMA_OK) return st;
    res->metric = "acc";
    res->higher_is_better = 1;
    res->score = res->n ? (double)res->correct / (double)res->n : 0;
    return LMA_OK;
}

/* ---------------- dispatch, JSON, compare ---------------- */

lma_status lma_eval_run(lma_model *m, const lma_tokenizer *tok, const lma_eval_task *t, const lma_eval_params *p,
                        lma_eval_result *res) {
    memset(res, 0, sizeof *res);
    res->task = *t;
    if (!tok) return lma_error(LMA_ERR_ARG, "task %s needs the model's tokenizer", t->name);
    double t0 = lma_now();
    lma_status st;
    if (t->kind == LMA_EVAL_MMLU) {
        lma_mmlu_set set;
        LMA_TRY(lma_mmlu_load(t->path, p->mmlu_split, &set));
        lma_eval_scorer *sc = NULL;
        st = lma_eval_scorer_model(m, p->mode, &sc);
        if (st == LMA_OK) st = lma_eval_mmlu(sc, tok, &set, p, res);
        if (sc) res->tokens_run = sc->tokens_run;
        lma_eval_scorer_free(sc);
        lma_mmlu_free(&set);
    } else if (t->kind == LMA_EVAL_PPL) {
        st = run_ppl(m, tok, t, p, res);
    } else if (t->kind == LMA_EVAL_JUDGE) {
        st = run_judge(m, tok, t, p, res);
    } else if (t->kind == LMA_EVAL_PASSKEY) {
        st = run_passkey(m, tok, p, res);
    } else {
        st = run_gen(m, tok, t, p, res);
    }
    res->seconds = lma_now() - t0;
    if (st != LMA_OK) { lma_eval_task keep = res->task; lma_eval_result_free(res); res->task = keep; }
    return st;
}

cJSON *lma_eval_result_json(const lma_eval_result *r) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "task", r->task.name);
    cJSON_AddStringToObject(o, "kind", lma_eval_kind_name(r->task.kind));
    if (r->task.tag) cJSON_AddStringToObject(o, "tag", lma_eval_tag_name(r->task.tag));
    cJSON_AddStringToObject(o, "path", r->task.path);
    cJSON_AddStringToObject(o, "metric", r->metric ? r->metric : "");
    cJSON_AddNumberToObject(o, "score", r->score);
    if (r->task.kind == LMA_EVAL_PPL) {
        cJSON_AddNumberToObject(o, "ppl", r->score);
        cJSON_AddNumberToObject(o, "nll", r->nll);
        cJSON_AddNumberToObject(o, "tokens", (double)r->tokens);
        cJSON_AddNumberToObject(o, "bytes", (double)r->bytes);
        cJSON_AddNumberToObject(o, "bits_per_byte", r->bytes ? r->nll / log(2.0) / (double)r->bytes : 0);
    } else if (r->task.kind == LMA_EVAL_JUDGE) {
        cJSON_AddNumberToObject(o, "n", (double)r->n);
    } else if (r->task.kind == LMA_EVAL_PASSKEY) {
        cJSON_AddNumberToObject(o, "n", (double)r->n);
        cJSON_AddNumberToObject(o, "correct", (double)r->correct);
        cJSON *cells = cJSON_AddArrayToObject(o, "cells");
        for (size_t i = 0; cells && i < r->n_cells; i++) {
            cJSON *e = cJSON_CreateObject();
            if (!e) break;
            cJSON_AddNumberToObject(e, "context", r->cells[i].context);
            cJSON_AddNumberToObject(e, "depth", r->cells[i].depth);
            cJSON_AddNumberToObject(e, "n", (double)r->cells[i].n);
            cJSON_AddNumberToObject(e, "correct", (double)r->cells[i].correct);
            cJSON_AddNumberToObject(e, "acc", r->cells[i].n ? (double)r->cells[i].correct / (double)r->cells[i].n : 0);
            cJSON_AddNumberToObject(e, "prompt_tokens", r->cells[i].prompt_tokens);
            cJSON_AddItemToArray(cells, e);
        }
    } else {
        cJSON_AddNumberToObject(o, "n", (double)r->n);
        cJSON_AddNumberToObject(o, "correct", (double)r->correct);
        if (r->task.kind == LMA_EVAL_MMLU) {
            cJSON_AddNumberToObject(o, "micro_acc", r->score);
            cJSON_AddNumberToObject(o, "macro_acc", r->macro);
        } else {
            cJSON_AddNumberToObject(o, "valid", (double)r->valid);
            if (r->grammar_n) {
                cJSON *gm = cJSON_AddObjectToObject(o, "grammar");
                if (gm) {
                    cJSON_AddNumberToObject(gm, "n", (double)r->grammar_n);
                    cJSON_AddNumberToObject(gm, "valid", (double)r->grammar_valid);
                }
            }
            if (r->format_n) {
                cJSON *f = cJSON_AddObjectToObject(o, "format");
                if (f) {
                    cJSON_AddNumberToObject(f, "n", (double)r->format_n);
                    cJSON_AddNumberToObject(f, "parsed", (double)r->valid);
                    cJSON_AddNumberToObject(f, "required_keys", (double)r->keys_ok);
                    cJSON_AddNumberToObject(f, "schema_checked", (double)r->schema_n);
                    cJSON_AddNumberToObject(f, "schema_valid", (double)r->schema_valid);
                }
            }
        }
        cJSON *g = cJSON_AddArrayToObject(o, r->task.kind == LMA_EVAL_MMLU ? "subjects" : "checks");
        for (size_t i = 0; g && i < r->n_groups; i++) {
            cJSON *e = cJSON_CreateObject();
            if (!e) break;
            cJSON_AddStringToObject(e, "name", r->groups[i].name);
            cJSON_AddNumberToObject(e, "n", (double)r->groups[i].n);
            cJSON_AddNumberToObject(e, "correct", (double)r->groups[i].correct);
            cJSON_AddNumberToObject(e, "acc", r->groups[i].n ? (double)r->groups[i].correct / (double)r->groups[i].n : 0);
            if (r->groups[i].pred) { /* MMLU: item by item, in file order */
                cJSON_AddStringToObject(e, "pred", r->groups[i].pred);
                cJSON_AddStringToObject(e, "gold", r->groups[i].gold);
            }
            cJSON_AddItemToArray(g, e);
        }
    }
    if (r->judge.rubric) {
        cJSON_AddItemToObject(o, "judge", lma_judge_stats_json(&r->judge));
        if (r->task.kind == LMA_EVAL_GEN) cJSON_AddNumberToObject(o, "judge_tokens_run", (double)r->judge_tokens_run);
    }
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    cJSON_AddNumberToObject(o, "tokens_run", (double)r->tokens_run);
    return o;
}

lma_eval_delta lma_eval_compare_one(const lma_eval_result *a, const lma_eval_result *b) {
    lma_eval_delta d;
    d.delta = b->score - a->score;
    d.rel = a->score != 0 ? b->score / a->score - 1 : 0;
    d.better = a->higher_is_better ? d.delta > 0 : d.delta < 0;
    return d;
}

void lma_eval_compare(const lma_eval_result *a, const lma_eval_result *b, size_t n, lma_eval_tag_summary sums[3]) {
    memset(sums, 0, 3 * sizeof *sums);
    for (size_t i = 0; i < n; i++) {
        lma_eval_delta d = lma_eval_compare_one(&a[i], &b[i]);
        lma_eval_tag_summary *s = &sums[a[i].task.tag];
        if (a[i].task.kind == LMA_EVAL_PPL) { s->mean_rel_ppl += d.rel; s->n_ppl++; }
        else { s->mean_dacc += d.delta; s->n_acc++; }
    }
    for (int t = 0; t < 3; t++) {
        if (sums[t].n_acc) sums[t].mean_dacc /= sums[t].n_acc;
        if (sums[t].n_ppl) sums[t].mean_rel_ppl /= sums[t].n_ppl;
    }
}

cJSON *lma_eval_compare_json(const lma_eval_result *a, const lma_eval_result *b, size_t n) {
    cJSON *o = cJSON_CreateObject(), *arr = o ? cJSON_AddArrayToObject(o, "tasks") : NULL;
    if (!arr) { cJSON_Delete(o); return NULL; }
    for (size_t i = 0; i < n; i++) {
        lma_eval_delta d = lma_eval_compare_one(&a[i], &b[i]);
        cJSON *e = cJSON_CreateObject();
        if (!e) break;
        cJSON_AddStringToObject(e, "task", a[i].task.name);
        cJSON_AddStringToObject(e, "tag", a[i].task.tag ? lma_eval_tag_name(a[i].task.tag) : "untagged");
        cJSON_AddStringToObject(e, "metric", a[i].metric ? a[i].metric : "");
        cJSON_AddNumberToObject(e, "a", a[i].score);
        cJSON_AddNumberToObject(e, "b", b[i].score);
        cJSON_AddNumberToObject(e, "delta", d.delta);
        cJSON_AddNumberToObject(e, "rel", d.rel);
        cJSON_AddBoolToObject(e, "better", d.better);
        cJSON_AddItemToArray(arr, e);
    }
    lma_eval_tag_summary s[3];
    lma_eval_compare(a, b, n, s);
    static const char *const keys[3] = {"untagged", "general", "domain"};
    for (int t = 0; t < 3; t++) {
        if (!s[t].n_acc && !s[t].n_ppl) continue;
        cJSON *e = cJSON_AddObjectToObject(o, keys[t]);
        if (!e) break;
        cJSON_AddNumberToObject(e, "acc_tasks", s[t].n_acc);
        cJSON_AddNumberToObject(e, "mean_delta_acc", s[t].mean_dacc);
        cJSON_AddNumberToObject(e, "ppl_tasks", s[t].n_ppl);
        cJSON_AddNumberToObject(e, "mean_rel_ppl_change", s[t].mean_rel_ppl);
    }
    if (s[LMA_EVAL_GENERAL].n_acc) cJSON_AddNumberToObject(o, "forgetting", -s[LMA_EVAL_GENERAL].mean_dacc);
    if (s[LMA_EVAL_DOMAIN].n_acc) cJSON_AddNumberToObject(o, "domain_gain", s[LMA_EVAL_DOMAIN].mean_dacc);
    return o;
}
