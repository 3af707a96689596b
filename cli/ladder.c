/* The adaptation ladder on the user's own task (see ladder.h). */
#include "ladder.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli.h"
#include "core/io.h"
#include "core/json.h"
#include "core/model_path.h"
#include "core/progress.h"
#include "eval/eval.h"
#include "eval/gencheck.h"
#include "icl/icl.h"
#include "infer/embed.h"
#include "infer/generate.h"
#include "model/adapter.h"
#include "opts.h"
#include "rag/ask.h"
#include "rag/make_sft.h"
#include "report/report.h"
#include "tok/chat_template.h"
#include "rag/encoder.h"
#include "rag/search.h"
#include "rag/store.h"

void cli_ladder_defaults(cli_ladder *L) {
    memset(L, 0, sizeof *L);
    L->cmd = "advise --measure";
    L->embed = "all-minilm-l6-v2";
    L->task_name = "task";
    L->shots = 4, L->k = 3, L->budget = 640, L->max_tokens = 48;
    L->lora_steps = 16, L->lora_batch = 2, L->lora_seq = 640, L->lora_rank = 8, L->lora_lr = 2e-3;
    L->mmlu_limit = 1, L->general_tokens = 4096;
}

enum { R_ZERO, R_ICL, R_RAG, R_LORA, R_RAG_LORA, R_COUNT };
static const char *const rung_names[R_COUNT] = {"zero-shot", "icl", "rag", "lora", "rag+lora"};

typedef struct {
    int done;
    char skipped[300];      /* the reason, when not run */
    double score;           /* share of correct answers */
    double format_valid;    /* share of format-valid answers; -1: no JSON references */
    double prompt_tokens;   /* per query */
    double train_s;         /* -1: no training */
    double peak_gib;
    double seconds;
    int n;
} rung;

typedef struct {
    const cli_ladder *L;
    const lma_backend *be;
    lma_model *m;
    lma_tokenizer *tok;
    lma_icl_pool *task, *pool;
    lma_embedder *emb;
    lma_rag_store *store;
    lma_rag_encoder enc;
    lma_rag_searcher *searcher;
    int32_t stops[16];
    int n_stops;
    double t0;
    int retrained; /* the adapter was trained by this run: nothing measured on an older one is reused */
    char db[4200];
} ladder;

/* ---- scoring -------------------------------------------------------------------------- */

/* *correct, *valid (-1: the reference is not a JSON object) of one answer */
static void judge(const char *answer, const char *ref, int *correct, int *valid) {
    *correct = lma_gen_check_json_fields(answer, strlen(answer), ref, valid);
    if (*valid < 0) *correct = lma_icl_exact(answer, ref);
}

/* ---- answering ------------------------------------------------------------------------- */

/* The RAG user message of question (as `rag ask` writes it: numbered sources, then the
 * question) with the most retrieved sources, whole, for which render() stays within the
 * budget; *msg malloc'd. prior: the turns before it (shots), np of them. */
/* 1 when text holds the answer: every string value of a JSON-object answer (else the
 * answer itself), case-insensitively */
static int holds_answer(const char *text, const char *answer) {
    cJSON *a = cJSON_Parse(answer);
    int ok = 1, any = 0;
    for (const cJSON *v = cJSON_IsObject(a) ? a->child : NULL; v; v = v->next)
        if (cJSON_IsString(v)) any = 1, ok &= lma_rag_contains(text, v->valuestring);
    if (!any) ok = lma_rag_contains(text, answer);
    cJSON_Delete(a);
    return ok;
}

/* the first BM25 hit for the answer's words that holds the answer, into *row (0: none) */
static int oracle_chunk(ladder *c, const char *answer, lma_rag_chunk_row *row) {
    lma_rag_search_params sp = lma_rag_search_defaults();
    sp.k = 20, sp.mode = LMA_RAG_BM25;
    char q[512] = "";
    cJSON *a = cJSON_Parse(answer);
    for (const cJSON *v = cJSON_IsObject(a) ? a->child : NULL; v; v = v->next)
        if (cJSON_IsString(v)) snprintf(q + strlen(q), sizeof q - strlen(q), "%s ", v->valuestring);
    cJSON_Delete(a);
    if (!q[0]) snprintf(q, sizeof q, "%s", answer);
    lma_rag_hit hits[20];
    int nh = 0;
    if (lma_rag_search(c->searcher, q, &sp, hits, &nh) != LMA_OK) { lma_clear_error(); return 0; }
    for (int i = 0; i < nh; i++) {
        if (c->store->ops->chunk_get(c->store, hits[i].id, row) != LMA_OK) { lma_clear_error(); return 0; }
        if (holds_answer(row->text, answer)) return 1;
        lma_rag_chunk_row_free(row);
    }
    return 0;
}

/* answer (training only, NULL at inference): when no retrieved source holds it, a chunk
 * that does takes the first place and the last retrieved one goes (RAFT's oracle document:
 * the training set shows the answer read from a source, never one the sources lack) */
static lma_status rag_message(ladder *c, const char *question, const char *answer, const lma_chat_msg *prior,
                              size_t np, char **msg) {
    const cli_ladder *L = c->L;
    lma_rag_search_params sp = lma_rag_search_defaults();
    sp.k = L->k < 32 ? L->k : 32;
    sp.mode = c->enc.dim > 0 ? LMA_RAG_HYBRID : LMA_RAG_BM25;
    lma_rag_hit hits[32];
    lma_rag_chunk_row rows[32];
    lma_rag_source src[32];
    lma_chat_msg msgs[2 * 64 + 1];
    int nh = 0, nr = 0;
    *msg = NULL;
    lma_status s = lma_rag_search(c->searcher, question, &sp, hits, &nh);
    for (int i = 0; s == LMA_OK && i < nh; i++) {
        s = c->store->ops->chunk_get(c->store, hits[i].id, &rows[i]);
        if (s == LMA_OK) src[i] = (lma_rag_source){rows[i].doc_id, rows[i].text}, nr++;
    }
    int held = 0;
    for (int i = 0; answer && i < nr; i++) held |= holds_answer(src[i].text, answer);
    if (s == LMA_OK && answer && !held && nr > 0) {
        lma_rag_chunk_row o;
        if (oracle_chunk(c, answer, &o)) { /* first, so that the budget never drops it */
            lma_rag_chunk_row_free(&rows[nr - 1]);
            memmove(rows + 1, rows, (size_t)(nr - 1) * sizeof *rows);
            rows[0] = o;
            for (int i = 0; i < nr; i++) src[i] = (lma_rag_source){rows[i].doc_id, rows[i].text};
        }
    }
    if (np) memcpy(msgs, prior, np * sizeof *msgs);
    for (int ns = nr; s == LMA_OK && ns >= 0; ns--) {
        s = lma_rag_user_message(question, src, (size_t)ns, ns ? strlen(src[ns - 1].text) : 0, msg);
        int32_t *ids = NULL;
        size_t n = 0, *sp_ = NULL, nsp = 0;
        msgs[np] = (lma_chat_msg){"user", *msg};
        if (s == LMA_OK) s = lma_chat_encode(c->tok, NULL, msgs, np + 1, 1, &ids, &n, &sp_, &nsp);
        free(ids), free(sp_);
        if (s == LMA_OK && (n <= (size_t)L->budget || ns == 0)) break;
        free(*msg);
        *msg = NULL;
    }
    for (int i = 0; i < nr; i++) lma_rag_chunk_row_free(&rows[i]);
    return s;
}

/* The prompt of query q for the rung. zero-shot, lora: the input as the user turn; icl: the
 * shots (knn) as prior turns, then the input; rag: the shots, then the RAG message (sources
 * and the input); rag+lora: the RAG message alone (the adapter learnt the format). */
static lma_status prompt_for(ladder *c, int method, size_t q, int32_t **ids, size_t *n) {
    const char *input = lma_icl_pool_get(c->task, q)->input;
    lma_icl_params prm = lma_icl_default_params();
    prm.format = LMA_ICL_CHAT;
    prm.select = LMA_ICL_KNN;
    prm.shots = (method == R_ICL || method == R_RAG) && c->pool ? (c->L->shots < 64 ? c->L->shots : 64) : 0;
    size_t idx[64];
    int k = 0;
    lma_chat_msg msgs[2 * 64 + 1];
    LMA_TRY(lma_icl_select_shots(c->pool, input, q, &prm, idx, &k));
    for (int i = 0; i < k; i++) {
        msgs[2 * i] = (lma_chat_msg){"user", lma_icl_pool_get(c->pool, idx[i])->input};
        msgs[2 * i + 1] = (lma_chat_msg){"assistant", lma_icl_pool_get(c->pool, idx[i])->output};
    }
    char *rag = NULL;
    if (method == R_RAG || method == R_RAG_LORA) LMA_TRY(rag_message(c, input, NULL, msgs, (size_t)(2 * k), &rag));
    msgs[2 * k] = (lma_chat_msg){"user", rag ? rag : input};
    size_t *sp = NULL, nsp = 0;
    lma_status s = lma_chat_encode(c->tok, NULL, msgs, (size_t)(2 * k + 1), 1, ids, n, &sp, &nsp);
    free(sp), free(rag);
    return s;
}

static size_t n_questions(const ladder *c) {
    size_t n = lma_icl_pool_size(c->task);
    return c->L->limit > 0 && (size_t)c->L->limit < n ? (size_t)c->L->limit : n;
}

static lma_status run_rung(ladder *c, int method, rung *r) {
    size_t nq = n_questions(c);
    long correct = 0, valid = 0, json_refs = 0;
    double ptok = 0, t0 = lma_now();
    lma_progress pg;
    char label[64];
    snprintf(label, sizeof label, "%s: %s", c->L->cmd, rung_names[method]);
    lma_progress_start(&pg, label, (int64_t)nq);
    char apath[4300];
    snprintf(apath, sizeof apath, "%s/rungs/%s.answers.jsonl", c->L->out, rung_names[method]);
    lma_atomic_file af;
    lma_status s = lma_atomic_open(&af, apath);
    for (size_t q = 0; s == LMA_OK && q < nq; q++) {
        int32_t *ids = NULL;
        size_t n = 0;
        s = prompt_for(c, method, q, &ids, &n);
        lma_gen_params gp = {.max_tokens = c->L->max_tokens, .sample = lma_sample_default_params(), .seed = 1,
                             .stop_ids = c->stops, .n_stop_ids = c->n_stops};
        lma_gen_result res = {0};
        if (s == LMA_OK) s = lma_generate(c->m, c->tok, ids, n, &gp, &res);
        if (s == LMA_OK) {
            int ok = 0, v = 0;
            judge(res.text ? res.text : "", lma_icl_pool_get(c->task, q)->output, &ok, &v);
            correct += ok;
            if (v >= 0) json_refs++, valid += v;
            ptok += (double)n;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "input", lma_icl_pool_get(c->task, q)->input);
            cJSON_AddStringToObject(o, "output", lma_icl_pool_get(c->task, q)->output);
            cJSON_AddStringToObject(o, "answer", res.text ? res.text : "");
            cJSON_AddBoolToObject(o, "correct", ok);
            if (v >= 0) cJSON_AddBoolToObject(o, "format_valid", v);
            cJSON_AddNumberToObject(o, "prompt_tokens", (double)n);
            char *t = cJSON_PrintUnformatted(o);
            s = t ? lma_atomic_write(&af, t, strlen(t)) : lma_error(LMA_ERR_NOMEM, "out of memory");
            if (s == LMA_OK) s = lma_atomic_write(&af, "\n", 1);
            free(t);
            cJSON_Delete(o);
        }
        free(res.ids), free(res.text), free(ids);
        lma_progress_update(&pg, (int64_t)q + 1);
    }
    lma_progress_finish(&pg);
    if (s == LMA_OK) s = lma_atomic_commit(&af);
    else lma_atomic_abort(&af);
    if (s != LMA_OK) return s;
    r->done = 1;
    r->n = (int)nq;
    r->score = nq ? (double)correct / (double)nq : 0;
    r->format_valid = json_refs ? (double)valid / (double)json_refs : -1;
    r->prompt_tokens = nq ? ptok / (double)nq : 0;
    r->seconds = lma_now() - t0;
    r->peak_gib = lma_backend_peak_bytes(c->be) / 1073741824.0;
    if (r->train_s == 0) r->train_s = -1;
    return LMA_OK;
}

/* ---- rung files: OUT/rungs/<method>.json ---------------------------------------------------- */

static void rung_path(const ladder *c, int method, char *p, size_t cap) {
    snprintf(p, cap, "%s/rungs/%s.json", c->L->out, rung_names[method]);
}

/* What a rung's result depends on, as one string kept in its file: a later run reuses the
 * rung only when its own string is the same (a changed --shots, --k or LoRA setting measures
 * again). The adapter's part also keys OUT/lora (train_lora). */
static void adapter_settings(const cli_ladder *L, char *b, size_t cap) {
    snprintf(b, cap, "train=%s docs=%s k=%d budget=%d steps=%d batch=%d seq=%d rank=%d lr=%g device=%s",
             L->train ? L->train : "-", L->docs ? L->docs : "-", L->k, L->budget, L->lora_steps, L->lora_batch,
             L->lora_seq, L->lora_rank, L->lora_lr, L->device ? L->device : "cpu");
}

static void rung_settings(const ladder *c, int method, char *b, size_t cap) {
    const cli_ladder *L = c->L;
    size_t n = (size_t)snprintf(b, cap, "model=%s task=%s n=%zu max_tokens=%d dequantize=%d", L->model, L->task,
                                n_questions(c), L->max_tokens, L->dequantize);
    if ((method == R_ICL || method == R_RAG) && n < cap)
        n += (size_t)snprintf(b + n, cap - n, " pool=%s shots=%d embed=%s", L->pool ? L->pool : L->train, L->shots, L->embed);
    if ((method == R_RAG || method == R_RAG_LORA) && n < cap)
        n += (size_t)snprintf(b + n, cap - n, " docs=%s k=%d budget=%d embed=%s", L->docs, L->k, L->budget, L->embed);
    if ((method == R_LORA || method == R_RAG_LORA) && n + 1 < cap) {
        b[n++] = ' ';
        adapter_settings(L, b + n, cap - n);
    }
}

static cJSON *num_or_null(double v, int is_null) { return is_null ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

static cJSON *rung_json(const ladder *c, int method, const rung *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", rung_names[method]);
    int none = !r->done;
    cJSON_AddItemToObject(o, "score", num_or_null(r->score, none));
    cJSON_AddItemToObject(o, "format_valid", num_or_null(r->format_valid, none || r->format_valid < 0));
    cJSON_AddItemToObject(o, "prompt_tokens_per_query", num_or_null(r->prompt_tokens, none));
    cJSON_AddItemToObject(o, "train_seconds", num_or_null(r->train_s, none || r->train_s < 0));
    cJSON_AddItemToObject(o, "peak_gib", num_or_null(r->peak_gib, none));
    if (r->done) cJSON_AddNumberToObject(o, "n", r->n), cJSON_AddNumberToObject(o, "seconds", r->seconds);
    if (!r->done) cJSON_AddStringToObject(o, "skipped", r->skipped);
    cJSON_AddStringToObject(o, "model", c->L->model);
    cJSON_AddStringToObject(o, "task", c->L->task);
    char set[8192];
    rung_settings(c, method, set, sizeof set);
    cJSON_AddStringToObject(o, "settings", set);
    return o;
}

static double get_num(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* 1 when an earlier run measured this rung with the same settings */
static int rung_reuse(const ladder *c, int method, rung *r) {
    char p[4300];
    rung_path(c, method, p, sizeof p);
    cJSON *o = NULL;
    if (c->L->fresh || !lma_file_exists(p) || lma_json_load(p, &o) != LMA_OK) { lma_clear_error(); return 0; }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "settings");
    char set[8192];
    rung_settings(c, method, set, sizeof set);
    int same = cJSON_IsString(st) && !strcmp(st->valuestring, set) &&
               cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "score"));
    if (same) {
        r->done = 1;
        r->score = get_num(o, "score", 0);
        r->format_valid = get_num(o, "format_valid", -1);
        r->prompt_tokens = get_num(o, "prompt_tokens_per_query", 0);
        r->train_s = get_num(o, "train_seconds", -1);
        r->peak_gib = get_num(o, "peak_gib", 0);
        r->seconds = get_num(o, "seconds", 0);
        r->n = (int)get_num(o, "n", 0);
        fprintf(stderr, "%s: %s measured before (%s; --fresh to redo)\n", c->L->cmd, rung_names[method], p);
    }
    cJSON_Delete(o);
    return same;
}

static lma_status rung_save(const ladder *c, int method, const rung *r) {
    char p[4300];
    rung_path(c, method, p, sizeof p);
    cJSON *o = rung_json(c, method, r);
    lma_status s = o ? lma_json_save(p, o) : lma_error(LMA_ERR_NOMEM, "out of memory");
    cJSON_Delete(o);
    return s;
}

/* ---- the stages ------------------------------------------------------------------------------ */

static int over_budget(const ladder *c, rung *r) {
    double min = (lma_now() - c->t0) / 60;
    if (c->L->budget_minutes <= 0 || min < c->L->budget_minutes) return 0;
    snprintf(r->skipped, sizeof r->skipped, "over --budget-minutes %.0f (%.1f minutes spent)", c->L->budget_minutes, min);
    return 1;
}

/* indexes the docs into OUT/docs.sqlite (incremental: `lmadapt rag index`) and opens a searcher */
static int open_rag(ladder *c) {
    const cli_ladder *L = c->L;
    snprintf(c->db, sizeof c->db, "%s/docs.sqlite", L->out);
    char *argv[16];
    int argc = 0;
    argv[argc++] = "rag", argv[argc++] = "index", argv[argc++] = "--db", argv[argc++] = c->db;
    argv[argc++] = "--embed", argv[argc++] = (char *)L->embed, argv[argc++] = "--quiet";
    if (L->device) argv[argc++] = "--device", argv[argc++] = (char *)L->device;
    argv[argc++] = (char *)L->docs;
    argv[argc] = NULL;
    fprintf(stderr, "%s: indexing %s into %s\n", L->cmd, L->docs, c->db);
    if (cmd_rag(argc, argv) != 0) return 1;
    if (lma_rag_store_open_sqlite(c->db, 0, &c->store) != LMA_OK) return cli_fail(L->cmd, NULL);
    c->enc = lma_rag_encoder_embedder(c->emb, L->embed);
    if (lma_rag_searcher_open(c->store, &c->enc, &c->searcher) != LMA_OK) return cli_fail(L->cmd, NULL);
    return 0;
}

/* one {"messages": [user, assistant]} line */
static lma_status sft_line(lma_atomic_file *af, const char *user, const char *assistant) {
    cJSON *o = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(o, "messages");
    cJSON *u = cJSON_CreateObject(), *a = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "role", "user"), cJSON_AddStringToObject(u, "content", user);
    cJSON_AddStringToObject(a, "role", "assistant"), cJSON_AddStringToObject(a, "content", assistant);
    cJSON_AddItemToArray(msgs, u), cJSON_AddItemToArray(msgs, a);
    char *t = cJSON_PrintUnformatted(o);
    lma_status s = t ? lma_atomic_write(af, t, strlen(t)) : lma_error(LMA_ERR_NOMEM, "out of memory");
    if (s == LMA_OK) s = lma_atomic_write(af, "\n", 1);
    free(t);
    cJSON_Delete(o);
    return s;
}

/* The LoRA training set in the prompts the LoRA rungs ask: each {"input", "output"} as the
 * plain chat turn and, with documents, also as the RAG message with the sources retrieved
 * for it (retrieval-aware training, as `rag make-sft`: the same format at training and at
 * inference). */
static lma_status write_sft(ladder *c, const lma_icl_pool *p, const char *path) {
    lma_atomic_file af;
    LMA_TRY(lma_atomic_open(&af, path));
    lma_status s = LMA_OK;
    for (size_t i = 0; s == LMA_OK && i < lma_icl_pool_size(p); i++) {
        const lma_icl_example *x = lma_icl_pool_get(p, i);
        s = sft_line(&af, x->input, x->output);
        char *rag = NULL;
        if (s == LMA_OK && c->searcher) s = rag_message(c, x->input, x->output, NULL, 0, &rag);
        if (s == LMA_OK && rag) s = sft_line(&af, rag, x->output);
        free(rag);
    }
    if (s == LMA_OK) return lma_atomic_commit(&af);
    lma_atomic_abort(&af);
    return s;
}

/* the training peak of a run folder: the last metrics line's mem_peak_gib (else rss_mb) */
static double run_peak_gib(const char *run) {
    char p[4300], *data = NULL;
    size_t len = 0;
    snprintf(p, sizeof p, "%s/metrics.jsonl", run);
    if (lma_read_file(p, &data, &len) != LMA_OK) { lma_clear_error(); return 0; }
    double peak = 0;
    for (char *l = data; l && *l;) {
        char *e = strchr(l, '\n');
        if (e) *e = 0;
        cJSON *o = cJSON_Parse(l);
        double g = get_num(o, "mem_peak_gib", -1), r = get_num(o, "rss_mb", -1);
        if (g > peak) peak = g;
        if (g < 0 && r / 1024 > peak) peak = r / 1024;
        cJSON_Delete(o);
        l = e ? e + 1 : NULL;
    }
    free(data);
    return peak;
}

/* trains the LoRA adapter with `lmadapt sft` into OUT/lora (kept when its final/ exists) */
static int train_lora(ladder *c, rung *lr) {
    const cli_ladder *L = c->L;
    char run[4200], fin[4300], data[4300], steps[32], batch[32], seq[32], rank[32], lrs[32], warm[32];
    snprintf(run, sizeof run, "%s/lora", L->out);
    snprintf(fin, sizeof fin, "%s/final/adapter_config.json", run);
    snprintf(data, sizeof data, "%s/train_sft.jsonl", L->out);
    char tpath[4300];
    snprintf(tpath, sizeof tpath, "%s/train_seconds", run);
    char set[8192], spath[4300], *had = NULL;
    size_t hn = 0;
    adapter_settings(L, set, sizeof set);
    snprintf(spath, sizeof spath, "%s/settings", run);
    int same = lma_file_exists(spath) && lma_read_file(spath, &had, &hn) == LMA_OK && hn == strlen(set) &&
               !memcmp(had, set, hn);
    lma_clear_error();
    free(had);
    if (!L->fresh && lma_file_exists(fin) && !same)
        fprintf(stderr, "%s: LoRA adapter in %s/final was trained with other settings: training again\n", L->cmd, run);
    if (!L->fresh && lma_file_exists(fin) && same) {
        char *t = NULL;
        size_t n = 0;
        lr->train_s = lma_read_file(tpath, &t, &n) == LMA_OK ? atof(t) : -1;
        lma_clear_error();
        free(t);
        lr->peak_gib = run_peak_gib(run);
        fprintf(stderr, "%s: LoRA adapter trained before (%s/final; --fresh to redo)\n", L->cmd, run);
        return 0;
    }
    lma_icl_pool *train = NULL;
    if (lma_icl_pool_load(L->train, &train) != LMA_OK || write_sft(c, train, data) != LMA_OK) {
        lma_icl_pool_free(train);
        return cli_fail(L->cmd, NULL);
    }
    lma_icl_pool_free(train);
    snprintf(steps, sizeof steps, "%d", L->lora_steps);
    snprintf(batch, sizeof batch, "%d", L->lora_batch);
    snprintf(seq, sizeof seq, "%d", L->lora_seq);
    snprintf(rank, sizeof rank, "%d", L->lora_rank);
    snprintf(lrs, sizeof lrs, "%g", L->lora_lr);
    snprintf(warm, sizeof warm, "%d", L->lora_steps / 10);
    char *argv[48];
    int argc = 0;
    argv[argc++] = "sft", argv[argc++] = "--model", argv[argc++] = (char *)L->model, argv[argc++] = "--data";
    argv[argc++] = data, argv[argc++] = "--out", argv[argc++] = run, argv[argc++] = "--overwrite";
    argv[argc++] = "--method", argv[argc++] = "lora", argv[argc++] = "--lora-r", argv[argc++] = rank;
    argv[argc++] = "--steps", argv[argc++] = steps, argv[argc++] = "--batch", argv[argc++] = batch;
    argv[argc++] = "--seq", argv[argc++] = seq, argv[argc++] = "--lr", argv[argc++] = lrs;
    argv[argc++] = "--warmup", argv[argc++] = warm, argv[argc++] = "--save-every", argv[argc++] = steps;
    argv[argc++] = "--eval-every", argv[argc++] = steps, argv[argc++] = "--seed", argv[argc++] = "1";
    if (L->device) argv[argc++] = "--device", argv[argc++] = (char *)L->device;
    argv[argc] = NULL;
    fprintf(stderr, "%s: LoRA: lmadapt sft --method lora --steps %s --batch %s --seq %s into %s\n", L->cmd, steps, batch,
            seq, run);
    double t0 = lma_now();
    if (cmd_sft(argc, argv) != 0) return 1;
    c->retrained = 1;
    lr->train_s = lma_now() - t0;
    lr->peak_gib = run_peak_gib(run);
    char t[64];
    int n = snprintf(t, sizeof t, "%.1f\n", lr->train_s);
    if (lma_write_file_atomic(tpath, t, (size_t)n) != LMA_OK || lma_write_file_atomic(spath, set, strlen(set)) != LMA_OK)
        return cli_fail(L->cmd, NULL);
    return 0;
}

typedef struct {
    int done;
    double ppl[2], mmlu[2]; /* base, adapted; NAN: not measured */
} forgetting;

static lma_status measure_general(ladder *c, double *ppl, double *mmlu) {
    const cli_ladder *L = c->L;
    *ppl = *mmlu = NAN;
    lma_eval_params p = lma_eval_default_params();
    lma_eval_task t;
    lma_eval_result r;
    char spec[4200];
    if (L->general) {
        snprintf(spec, sizeof spec, "general:ppl:%s", L->general);
        LMA_TRY(lma_eval_task_parse(spec, &t));
        p.limit = (size_t)L->general_tokens;
        p.ppl_window = 512;
        p.ppl_stride = 512; /* windows side by side: every token scored once (the same for base and LoRA) */
        LMA_TRY(lma_eval_run(c->m, c->tok, &t, &p, &r));
        *ppl = r.score;
        lma_eval_result_free(&r);
    }
    if (L->mmlu) {
        snprintf(spec, sizeof spec, "general:mmlu:%s", L->mmlu);
        LMA_TRY(lma_eval_task_parse(spec, &t));
        p = lma_eval_default_params();
        p.limit = (size_t)L->mmlu_limit;
        p.mmlu_form = LMA_MMLU_CLOZE;
        p.mmlu_split = "val";
        p.shots = 0;
        p.progress = 1;
        LMA_TRY(lma_eval_run(c->m, c->tok, &t, &p, &r));
        *mmlu = r.score;
        lma_eval_result_free(&r);
    }
    return LMA_OK;
}

/* OUT/rungs/forgetting.json: the base's measures once taken, the LoRA model's after; what
 * it holds is reused like the rungs. 1 when it held the base's. */
static int forgetting_reuse(const ladder *c, forgetting *fg) {
    char p[4300];
    snprintf(p, sizeof p, "%s/rungs/forgetting.json", c->L->out);
    cJSON *o = NULL;
    if (c->L->fresh || !lma_file_exists(p) || lma_json_load(p, &o) != LMA_OK) { lma_clear_error(); return 0; }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model");
    int same = cJSON_IsString(m) && !strcmp(m->valuestring, c->L->model) &&
               get_num(o, "general_tokens", -1) == c->L->general_tokens && get_num(o, "mmlu_limit", -1) == c->L->mmlu_limit;
    if (same) {
        fg->ppl[0] = get_num(o, "ppl_base", NAN), fg->ppl[1] = get_num(o, "ppl_lora", NAN);
        fg->mmlu[0] = get_num(o, "mmlu_base", NAN), fg->mmlu[1] = get_num(o, "mmlu_lora", NAN);
        same = !isnan(fg->ppl[0]) || !isnan(fg->mmlu[0]);
        fg->done = !isnan(fg->ppl[1]) || !isnan(fg->mmlu[1]);
        if (same)
            fprintf(stderr, "%s: forgetting measured before (%s: %s; --fresh to redo)\n", c->L->cmd, p,
                    fg->done ? "base and LoRA" : "the base");
    }
    cJSON_Delete(o);
    return same;
}

static lma_status forgetting_save(const ladder *c, const forgetting *fg) {
    char p[4300];
    snprintf(p, sizeof p, "%s/rungs/forgetting.json", c->L->out);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", c->L->model);
    cJSON_AddNumberToObject(o, "general_tokens", c->L->general_tokens);
    cJSON_AddNumberToObject(o, "mmlu_limit", c->L->mmlu_limit);
    const char *k[4] = {"ppl_base", "ppl_lora", "mmlu_base", "mmlu_lora"};
    double v[4] = {fg->ppl[0], fg->ppl[1], fg->mmlu[0], fg->mmlu[1]};
    for (int i = 0; i < 4; i++) cJSON_AddItemToObject(o, k[i], num_or_null(v[i], isnan(v[i])));
    lma_status s = lma_json_save(p, o);
    cJSON_Delete(o);
    return s;
}

/* ---- the table, the recommendation, summary.json ---------------------------------------------- */

static void fmt(char *b, size_t cap, double v, int none, const char *f) {
    if (none) snprintf(b, cap, "-");
    else snprintf(b, cap, f, v);
}

static int recommend(const rung *r, const forgetting *fg, char *out, size_t cap) {
    int best = -1;
    for (int i = 0; i < R_COUNT; i++) /* ties: the cheaper rung, lower on the ladder */
        if (r[i].done && (best < 0 || r[i].score > r[best].score + 1e-9)) best = i;
    if (best < 0) { snprintf(out, cap, "nothing was measured"); return -1; }
    double z = r[R_ZERO].done ? r[R_ZERO].score : 0;
    int n = snprintf(out, cap, "%s: score %.2f against %.2f zero-shot", best == R_ZERO ? "no adaptation (zero-shot)" :
                     rung_names[best], r[best].score, z);
    if (best == R_ZERO) n += snprintf(out + n, cap - (size_t)n, "; no rung above it helped on this task");
    if ((best == R_LORA || best == R_RAG_LORA) && fg->done) {
        if (!isnan(fg->mmlu[0]))
            n += snprintf(out + n, cap - (size_t)n, "; MMLU cloze %+.1f points", 100 * (fg->mmlu[1] - fg->mmlu[0]));
        if (!isnan(fg->ppl[0]))
            n += snprintf(out + n, cap - (size_t)n, "; general perplexity %+.1f%%", 100 * (fg->ppl[1] / fg->ppl[0] - 1));
    }
    return best;
}

static int finish(ladder *c, const rung *r, const forgetting *fg) {
    const cli_ladder *L = c->L;
    char rec[600];
    recommend(r, fg, rec, sizeof rec);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", L->model_name ? L->model_name : L->model);
    cJSON_AddStringToObject(o, "task", L->task_name);
    cJSON *arr = cJSON_AddArrayToObject(o, "rungs");
    for (int i = 0; i < R_COUNT; i++) {
        cJSON *j = rung_json(c, i, &r[i]);
        cJSON_DeleteItemFromObject(j, "model"), cJSON_DeleteItemFromObject(j, "task");
        cJSON_AddItemToArray(arr, j);
    }
    cJSON *fa = cJSON_AddArrayToObject(o, "forgetting");
    for (int b = 0; fg->done && b < 2; b++) {
        double base = b ? fg->mmlu[0] : fg->ppl[0], ad = b ? fg->mmlu[1] : fg->ppl[1];
        if (isnan(base) || isnan(ad)) continue;
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "benchmark", b ? "mmlu-cloze accuracy" : "general-text perplexity");
        cJSON_AddNumberToObject(f, "base", base);
        cJSON_AddNumberToObject(f, "adapted", ad);
        cJSON_AddNumberToObject(f, "delta", ad - base);
        cJSON_AddItemToArray(fa, f);
    }
    cJSON_AddStringToObject(o, "recommendation", rec);
    char path[4300];
    snprintf(path, sizeof path, "%s/summary.json", L->out);
    lma_status s = lma_json_save(path, o);
    if (L->json && s == LMA_OK) {
        char *t = cJSON_PrintUnformatted(o);
        if (t) puts(t);
        free(t);
    }
    cJSON_Delete(o);
    if (s != LMA_OK) return cli_fail(L->cmd, NULL);
    /* the report: the ladder (OUT) and the LoRA run's curves (OUT/lora) */
    char lora[4300], html[4300];
    snprintf(lora, sizeof lora, "%s/lora", L->out);
    snprintf(html, sizeof html, "%s/report.html", L->out);
    const char *runs[2] = {L->out, lora};
    snprintf(path, sizeof path, "%s/lora/metrics.jsonl", L->out);
    if (lma_report_write(runs, lma_file_exists(path) ? 2 : 1, html) != LMA_OK) {
        fprintf(stderr, "lmadapt %s: warning: no report: %s\n", L->cmd, lma_last_error());
        lma_clear_error();
        html[0] = 0;
    }
    snprintf(path, sizeof path, "%s/summary.json", L->out);
    if (L->json) return 0;
    double z = r[R_ZERO].done ? r[R_ZERO].score : NAN;
    printf("\n%-10s %6s %7s %7s %12s %9s %9s\n", "rung", "score", "format", "gain", "prompt tok/q", "train s", "peak GiB");
    for (int i = 0; i < R_COUNT; i++) {
        const rung *x = &r[i];
        if (!x->done) { printf("%-10s skipped: %s\n", rung_names[i], x->skipped); continue; }
        char sc[16], fv[16], g[16], pt[16], ts[16], pk[16];
        fmt(sc, sizeof sc, x->score, 0, "%.2f");
        fmt(fv, sizeof fv, x->format_valid, x->format_valid < 0, "%.2f");
        fmt(g, sizeof g, x->score - z, isnan(z), "%+.2f");
        fmt(pt, sizeof pt, x->prompt_tokens, 0, "%.0f");
        fmt(ts, sizeof ts, x->train_s, x->train_s < 0, "%.0f");
        fmt(pk, sizeof pk, x->peak_gib, 0, "%.2f");
        printf("%-10s %6s %7s %7s %12s %9s %9s\n", rung_names[i], sc, fv, g, pt, ts, pk);
    }
    if (fg->done) {
        printf("\nforgetting (base -> LoRA):");
        if (!isnan(fg->ppl[0])) printf("  general-text perplexity %.2f -> %.2f", fg->ppl[0], fg->ppl[1]);
        if (!isnan(fg->mmlu[0])) printf("  MMLU cloze %.1f%% -> %.1f%%", 100 * fg->mmlu[0], 100 * fg->mmlu[1]);
        printf("\n");
    }
    printf("\nrecommendation: %s\nsummary: %s\n", rec, path);
    if (html[0]) printf("report:  %s\n", html);
    return 0;
}

/* ---- the run ------------------------------------------------------------------------------------ */

static int measure(ladder *c, int method, rung *r) {
    if (r->skipped[0]) return 0;
    if (!(c->retrained && method >= R_LORA) && rung_reuse(c, method, r)) return 0;
    if (over_budget(c, r)) return 0;
    double ts = r->train_s, pk = r->peak_gib;
    if (run_rung(c, method, r) != LMA_OK) return cli_fail(c->L->cmd, NULL);
    if (method == R_LORA || method == R_RAG_LORA) r->train_s = ts, r->peak_gib = pk > r->peak_gib ? pk : r->peak_gib;
    if (rung_save(c, method, r) != LMA_OK) return cli_fail(c->L->cmd, NULL);
    return 0;
}

int cli_ladder_run(const cli_ladder *L) {
    ladder c = {.L = L, .t0 = lma_now()};
    rung r[R_COUNT];
    forgetting fg = {0};
    memset(r, 0, sizeof r);
    int rc = 1;
    char rungs[4300];
    snprintf(rungs, sizeof rungs, "%s/rungs", L->out);
    if (lma_mkdir_p(rungs) != LMA_OK || lma_backend_select(L->device, &c.be) != LMA_OK ||
        lma_icl_pool_load(L->task, &c.task) != LMA_OK) {
        cli_fail(L->cmd, NULL);
        goto out;
    }
    const char *pool = L->pool ? L->pool : L->train;
    if (!pool) snprintf(r[R_ICL].skipped, sizeof r[R_ICL].skipped, "no pool of examples (--pool or --train)");
    if (!L->docs) snprintf(r[R_RAG].skipped, sizeof r[R_RAG].skipped, "no documents (--docs)");
    if (!L->train) snprintf(r[R_LORA].skipped, sizeof r[R_LORA].skipped, "no training set (--train)");
    if (!L->docs || !L->train)
        snprintf(r[R_RAG_LORA].skipped, sizeof r[R_RAG_LORA].skipped, "needs both --docs and --train");
    char epath[4096];
    fprintf(stderr, "%s: %s on %s (%zu questions)\n", L->cmd, L->model, L->task, n_questions(&c));
    if (lma_tok_load(L->model, &c.tok) != LMA_OK || lma_model_load_ex(L->model, c.be, CLI_INFER_FLAGS(L->dequantize), &c.m) != LMA_OK) {
        cli_fail(L->cmd, NULL);
        goto out;
    }
    c.n_stops = lma_chat_stop_ids(L->model, &c.m->cfg, c.tok, c.stops, 16);
    if ((pool || L->docs) && (lma_model_path_resolve(L->embed, epath, sizeof epath) != LMA_OK ||
                              lma_embedder_load(epath, c.be, &c.emb) != LMA_OK)) {
        cli_fail(L->cmd, NULL);
        goto out;
    }
    if (pool && (lma_icl_pool_load(pool, &c.pool) != LMA_OK || lma_icl_pool_embed(c.pool, c.emb) != LMA_OK)) {
        cli_fail(L->cmd, NULL);
        goto out;
    }
    if (L->docs && open_rag(&c)) goto out;
    if (measure(&c, R_ZERO, &r[R_ZERO]) || measure(&c, R_ICL, &r[R_ICL]) || measure(&c, R_RAG, &r[R_RAG])) goto out;
    int fg_on = L->train && (L->general || L->mmlu);
    fg.ppl[0] = fg.ppl[1] = fg.mmlu[0] = fg.mmlu[1] = NAN;
    if (fg_on && !forgetting_reuse(&c, &fg)) {
        fprintf(stderr, "%s: forgetting: the base on general text and MMLU (cloze)\n", L->cmd);
        if (measure_general(&c, &fg.ppl[0], &fg.mmlu[0]) != LMA_OK || forgetting_save(&c, &fg) != LMA_OK) {
            cli_fail(L->cmd, NULL);
            goto out;
        }
    }
    if (L->train && !over_budget(&c, &r[R_LORA])) {
        if (train_lora(&c, &r[R_LORA])) goto out;
        char fin[4300];
        snprintf(fin, sizeof fin, "%s/lora/final", L->out);
        if (lma_adapter_load(c.m, fin) != LMA_OK) { cli_fail(L->cmd, NULL); goto out; }
        r[R_RAG_LORA].train_s = r[R_LORA].train_s, r[R_RAG_LORA].peak_gib = r[R_LORA].peak_gib;
        if (measure(&c, R_LORA, &r[R_LORA])) goto out;
        if (L->docs && measure(&c, R_RAG_LORA, &r[R_RAG_LORA])) goto out;
        if (c.retrained) fg.done = 0, fg.ppl[1] = fg.mmlu[1] = NAN;
        if (fg_on && !fg.done) {
            fprintf(stderr, "%s: forgetting: the LoRA model on general text and MMLU (cloze)\n", L->cmd);
            if (measure_general(&c, &fg.ppl[1], &fg.mmlu[1]) != LMA_OK) { cli_fail(L->cmd, NULL); goto out; }
            fg.done = 1;
            if (forgetting_save(&c, &fg) != LMA_OK) { cli_fail(L->cmd, NULL); goto out; }
        }
    } else if (L->train) {
        snprintf(r[R_RAG_LORA].skipped, sizeof r[R_RAG_LORA].skipped, "%s", r[R_LORA].skipped);
    }
    rc = finish(&c, r, &fg);
out:
    lma_rag_searcher_free(c.searcher);
    lma_rag_store_close(c.store);
    lma_embedder_free(c.emb);
    lma_icl_pool_free(c.task);
    lma_icl_pool_free(c.pool);
    lma_model_free(c.m);
    lma_tok_free(c.tok);
    return rc;
}
