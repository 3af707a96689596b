/* Model-backed curation, part 1: the curation model's interface (reply, free), prompts
 * from prompt files, JSONL object reading, `data generate` (drafts into a review
 * file, resumable, atomic) and `data accept` (reviewed file -> training data). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/io.h"
#include "core/progress.h"
#include "core/buf.h"
#include "data/curate/internal.h"
#include "data/curate/u64map.h"

/* ---- curation model (the interface; eval/curate_model.c loads a real one) ------ */

void lma_curate_llm_free(lma_curate_llm *l) {
    if (!l) return;
    if (l->ctx && l->free_ctx) l->free_ctx(l->ctx);
    memset(l, 0, sizeof *l);
}

lma_status lma_curate_llm_reply_batch(lma_curate_llm *l, lma_curate_call *calls, size_t n, const lma_gen_params *gp) {
    for (size_t i = 0; i < n; i++) { calls[i].text = NULL; calls[i].len = 0; }
    if (!l || !l->ctx || !l->complete) return lma_error(LMA_ERR_ARG, "curation model: not loaded");
    l->calls += (int64_t)n;
    return n ? l->complete(l, calls, n, gp) : LMA_OK;
}

lma_status lma_curate_llm_reply(lma_curate_llm *l, const lma_chat_msg *msgs, size_t n, const lma_gen_params *gp,
                                char **text, size_t *len) {
    lma_curate_call c = {msgs, n, NULL, 0};
    lma_status st = lma_curate_llm_reply_batch(l, &c, 1, gp);
    *text = c.text; *len = c.len;
    return st;
}

/* ---- prompts ------------------------------------------------------------------ */

static lma_status add_msg(lma_curate_prompt *p, size_t *cap, const char *role, const char *text, size_t len) {
    LMA_TRY(lma_grow(&p->msgs, cap, p->n + 1, sizeof *p->msgs, 4, "prompt"));
    char *c = malloc(len + 1);
    if (!c) return lma_error(LMA_ERR_NOMEM, "prompt: out of memory");
    memcpy(c, text, len); c[len] = 0;
    p->msgs[p->n].role = role;
    p->msgs[p->n].content = c;
    p->n++;
    return LMA_OK;
}

void lma_curate_prompt_free(lma_curate_prompt *p) {
    for (size_t i = 0; p && i < p->n; i++) free((char *)p->msgs[i].content);
    if (p) { free(p->msgs); free(p->id); free(p->store_); memset(p, 0, sizeof *p); }
}

static const char *chat_role(const char *name) {
    if (!name) return NULL;
    if (!strcmp(name, "system")) return "system";
    if (!strcmp(name, "user") || !strcmp(name, "human")) return "user";
    if (!strcmp(name, "assistant") || !strcmp(name, "gpt")) return "assistant";
    return NULL;
}

static lma_status from_msg_list(const cJSON *list, lma_curate_prompt *p, size_t *cap, const lma_example *ex) {
    const cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, list) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(it, "role"), *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        const char *role = cJSON_IsString(r) ? chat_role(r->valuestring) : NULL;
        if (!role || !cJSON_IsString(c))
            return lma_error(LMA_ERR_FORMAT, "%s:%lld: message %d needs a role (system, user, assistant) and a string content",
                             ex->file, (long long)ex->line, k);
        LMA_TRY(add_msg(p, cap, role, c->valuestring, strlen(c->valuestring)));
        k++;
    }
    return LMA_OK;
}

lma_status lma_curate_prompt_from(const lma_example *ex, lma_curate_prompt *p) {
    memset(p, 0, sizeof *p);
    size_t cap = 0;
    lma_status st = LMA_OK;
    const cJSON *o = ex->json;
    if (!o || !cJSON_IsObject(o) || (ex->error_code && !strcmp(ex->error_code, "invalid_utf8")))
        return lma_error(LMA_ERR_FORMAT, "%s", ex->error[0] ? ex->error : "record is not a JSON object");
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "prompt"), *ins = cJSON_GetObjectItemCaseSensitive(o, "instruction"),
                *q = cJSON_GetObjectItemCaseSensitive(o, "question");
    if (!ex->error_code && ex->format != LMA_EXF_TEXT) {
        for (size_t i = 0; i < ex->n_msgs && !st; i++) {
            const lma_ex_msg *m = &ex->msgs[i];
            const char *role = m->role == LMA_ROLE_SYSTEM ? "system" : m->role == LMA_ROLE_USER ? "user"
                             : m->role == LMA_ROLE_ASSISTANT ? "assistant" : NULL;
            if (!role)
                st = lma_error(LMA_ERR_FORMAT, "%s:%lld: turn %zu has role \"%s\"; prompts take system, user and assistant turns",
                               ex->file, (long long)ex->line, i, m->role_name ? m->role_name : "?");
            else st = add_msg(p, &cap, role, m->text, m->len);
        }
    } else if (ex->error_code && (!strcmp(ex->error_code, "missing_field") || !strcmp(ex->error_code, "missing_messages_list"))) {
        if (cJSON_IsString(pr)) st = add_msg(p, &cap, "user", pr->valuestring, strlen(pr->valuestring));
        else if (cJSON_IsArray(pr)) st = from_msg_list(pr, p, &cap, ex);
        else if (cJSON_IsString(ins)) {
            const cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "input");
            size_t a = strlen(ins->valuestring), b = cJSON_IsString(in) ? strlen(in->valuestring) : 0;
            char *u = malloc(a + b + 3);
            if (!u) return lma_error(LMA_ERR_NOMEM, "prompt: out of memory");
            memcpy(u, ins->valuestring, a);
            if (b) { memcpy(u + a, "\n\n", 2); memcpy(u + a + 2, in->valuestring, b); }
            st = add_msg(p, &cap, "user", u, b ? a + 2 + b : a);
            free(u);
        } else if (cJSON_IsString(q)) st = add_msg(p, &cap, "user", q->valuestring, strlen(q->valuestring));
        else st = lma_error(LMA_ERR_FORMAT, "%s:%lld: no prompt: expected \"prompt\", \"instruction\", \"question\" or \"messages\"",
                            ex->file, (long long)ex->line);
    } else {
        st = lma_error(LMA_ERR_FORMAT, "%s", ex->error[0] ? ex->error : "record holds no prompt");
    }
    while (!st && p->n && !strcmp(p->msgs[p->n - 1].role, "assistant")) free((char *)p->msgs[--p->n].content);
    if (!st && (!p->n || strcmp(p->msgs[p->n - 1].role, "user")))
        st = lma_error(LMA_ERR_FORMAT, "%s:%lld: the prompt must end with a user turn", ex->file, (long long)ex->line);
    if (!st) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        char b[64];
        if (cJSON_IsString(id) && id->valuestring[0]) p->id = strdup(id->valuestring);
        else if (cJSON_IsNumber(id) && id->valuedouble == (double)(long long)id->valuedouble) {
            snprintf(b, sizeof b, "%lld", (long long)id->valuedouble);
            p->id = strdup(b);
        } else {
            uint64_t h = 0x70726f6d7074ULL;
            for (size_t i = 0; i < p->n; i++) {
                h = lma_hash64(p->msgs[i].role, strlen(p->msgs[i].role), h);
                h = lma_hash64(p->msgs[i].content, strlen(p->msgs[i].content), h);
            }
            snprintf(b, sizeof b, "p%016llx", (unsigned long long)h);
            p->id = strdup(b);
        }
        if (!p->id) st = lma_error(LMA_ERR_NOMEM, "prompt: out of memory");
    }
    if (st) lma_curate_prompt_free(p);
    return st;
}

/* ---- JSONL objects --------------------------------------------------------------- */

lma_status lma_jsonl_open(lma_jsonl *j, const char *path, int lenient) {
    memset(j, 0, sizeof *j);
    snprintf(j->path, sizeof j->path, "%s", path);
    j->lenient = lenient;
    return lma_fopen_input(path, &j->f);
}

lma_status lma_jsonl_next(lma_jsonl *j, cJSON **obj, int64_t *line) {
    *obj = NULL;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&j->buf, &j->cap, j->f);
        if (n < 0) {
            if (ferror(j->f) || !feof(j->f)) /* ENOMEM on a line that does not fit is not the end */
                return lma_error(errno == ENOMEM ? LMA_ERR_NOMEM : LMA_ERR_IO, "%s:%lld: %s", j->path,
                                 (long long)j->line + 1, errno == ENOMEM ? "a line does not fit in memory" : "read error");
            return LMA_OK;
        }
        j->line++;
        if ((size_t)n > LMA_EX_MAX_RECORD) {
            if (j->lenient) { j->n_skipped++; continue; }
            return lma_error(LMA_ERR_FORMAT, "%s:%lld: line longer than %zu bytes", j->path, (long long)j->line, LMA_EX_MAX_RECORD);
        }
        size_t k = 0;
        while (k < (size_t)n && (j->buf[k] == ' ' || j->buf[k] == '\t' || j->buf[k] == '\r' || j->buf[k] == '\n')) k++;
        if (k == (size_t)n) continue;
        cJSON *o = cJSON_ParseWithLength(j->buf, (size_t)n);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            if (j->lenient) { j->n_skipped++; continue; }
            return lma_error(LMA_ERR_FORMAT, "%s:%lld: not a JSON object", j->path, (long long)j->line);
        }
        *obj = o;
        if (line) *line = j->line;
        return LMA_OK;
    }
}

void lma_jsonl_close(lma_jsonl *j) {
    if (j->f) fclose(j->f);
    free(j->buf);
    memset(j, 0, sizeof *j);
}

/* ---- generate ----------------------------------------------------------------------- */

void lma_data_generate_default_params(lma_data_generate_params *p) {
    memset(p, 0, sizeof *p);
    p->gen.max_tokens = 256;
    p->gen.sample = lma_sample_default_params();
    p->checkpoint_s = 60;
}

static uint64_t id_hash(const char *id) { return lma_hash64(id, strlen(id), 0x1d); }

/* Copies the committed file at path into af (adding a final newline if missing). */
static lma_status copy_into(lma_atomic_file *af, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return lma_error(LMA_ERR_IO, "%s: cannot reopen", path);
    char buf[65536];
    size_t n, total = 0;
    char last = '\n';
    lma_status st = LMA_OK;
    while (!st && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        st = lma_atomic_write(af, buf, n);
        last = buf[n - 1];
        total += n;
    }
    if (!st && ferror(f)) { lma_atomic_abort(af); st = lma_error(LMA_ERR_IO, "%s: read error", path); }
    fclose(f);
    if (!st && total && last != '\n') st = lma_atomic_write(af, "\n", 1);
    return st;
}

static cJSON *prompt_json(cJSON *o, const lma_curate_prompt *p) {
    if (p->n == 1 && !strcmp(p->msgs[0].role, "user")) {
        cJSON_AddStringToObject(o, "prompt", p->msgs[0].content);
        return o;
    }
    cJSON *arr = cJSON_AddArrayToObject(o, "messages");
    for (size_t i = 0; arr && i < p->n; i++) {
        cJSON *m = cJSON_CreateObject();
        if (!m) break;
        cJSON_AddStringToObject(m, "role", p->msgs[i].role);
        cJSON_AddStringToObject(m, "content", p->msgs[i].content);
        cJSON_AddItemToArray(arr, m);
    }
    return o;
}

static lma_status add_problem(cJSON *summary, int64_t line, const char *msg) {
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(summary, "problems");
    if (cJSON_GetArraySize(arr) >= 20) return LMA_OK;
    cJSON *o = cJSON_CreateObject();
    if (!o) return lma_error(LMA_ERR_NOMEM, "out of memory");
    cJSON_AddNumberToObject(o, "line", (double)line);
    cJSON_AddStringToObject(o, "error", msg);
    cJSON_AddItemToArray(arr, o);
    return LMA_OK;
}

lma_status lma_data_generate(lma_curate_llm *l, const char *prompts, const char *review, const lma_data_generate_params *pin,
                             cJSON **out) {
    lma_data_generate_params p;
    if (pin) p = *pin; else lma_data_generate_default_params(&p);
    *out = NULL;
    if (!review) return lma_error(LMA_ERR_ARG, "generate: a review file path is required");
    LMA_TRY(lma_curate_check_output(prompts, review));
    lma_u64map done; memset(&done, 0, sizeof done);
    cJSON *summary = cJSON_CreateObject();
    if (!summary) return lma_error(LMA_ERR_NOMEM, "generate: out of memory");
    cJSON_AddItemToObject(summary, "problems", cJSON_CreateArray());
    int64_t existing = 0, n_prompts = 0, drafted = 0, skipped = 0, dups = 0, bad = 0, calls0 = l ? l->calls : 0;
    lma_status st = LMA_OK;
    /* 1. ids already in the review file: kept as they are */
    int have_review = lma_file_exists(review);
    if (have_review) {
        lma_jsonl j;
        st = lma_jsonl_open(&j, review, 0);
        while (!st) {
            cJSON *o; int64_t line;
            if ((st = lma_jsonl_next(&j, &o, &line)) || !o) break;
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
            if (!cJSON_IsString(id))
                st = lma_error(LMA_ERR_FORMAT, "%s:%lld: review line has no string \"id\" (fix or remove it before resuming)",
                               review, (long long)line);
            else st = lma_u64map_insert(&done, id_hash(id->valuestring), 1);
            existing++;
            cJSON_Delete(o);
        }
        lma_jsonl_close(&j);
    }
    /* 2. count prompts for the progress bar */
    lma_ex_reader *r = NULL;
    int64_t total = 0;
    if (!st && p.progress && strcmp(prompts, "-")) {
        st = lma_ex_open(prompts, &r);
        lma_example *ex;
        while (!st && !(st = lma_ex_next(r, &ex)) && ex) total++;
        lma_ex_close(r); r = NULL;
    }
    lma_atomic_file af;
    int af_open = 0;
    if (!st && !(st = lma_atomic_open(&af, review))) af_open = 1;
    if (!st && have_review && (st = copy_into(&af, review))) af_open = 0;
    if (!st) st = lma_ex_open(prompts, &r);
    lma_progress bar;
    if (p.progress) lma_progress_start(&bar, "drafts", total);
    double last_commit = lma_now();
    /* prompts are drafted a chunk at a time (the model continues up to l->max_active of them
     * together), then written in order */
    enum { CHUNK = 32 };
    lma_curate_prompt pr[CHUNK];
    lma_chat_msg *tmp[CHUNK];
    lma_curate_call calls[CHUNK];
    int end = 0;
    while (!st && !end) {
        size_t n = 0;
        while (!st && n < CHUNK && !(p.limit > 0 && drafted + (int64_t)n >= p.limit)) {
            lma_example *ex;
            if ((st = lma_ex_next(r, &ex)) || !ex) { end = 1; break; }
            n_prompts++;
            if (lma_curate_prompt_from(ex, &pr[n])) {
                bad++;
                st = add_problem(summary, ex->line, lma_last_error());
                lma_clear_error();
                continue;
            }
            uint64_t h = id_hash(pr[n].id);
            uint32_t v = lma_u64map_get(&done, h);
            if (v != UINT32_MAX) {
                if (v == 1) skipped++; else dups++;
                lma_curate_prompt_free(&pr[n]);
                if (p.progress) lma_progress_update(&bar, n_prompts);
                continue;
            }
            if ((st = lma_u64map_insert(&done, h, 2))) { lma_curate_prompt_free(&pr[n]); break; }
            /* the system turn, when asked for and absent */
            calls[n] = (lma_curate_call){pr[n].msgs, pr[n].n, NULL, 0};
            tmp[n] = NULL;
            if (p.system && strcmp(pr[n].msgs[0].role, "system")) {
                tmp[n] = malloc((pr[n].n + 1) * sizeof *tmp[n]);
                if (!tmp[n]) { lma_curate_prompt_free(&pr[n]); st = lma_error(LMA_ERR_NOMEM, "generate: out of memory"); break; }
                tmp[n][0].role = "system"; tmp[n][0].content = p.system;
                memcpy(tmp[n] + 1, pr[n].msgs, pr[n].n * sizeof *tmp[n]);
                calls[n].msgs = tmp[n]; calls[n].n = pr[n].n + 1;
            }
            n++;
        }
        if (p.limit > 0 && drafted + (int64_t)n >= p.limit) end = 1;
        if (!st && n) st = lma_curate_llm_reply_batch(l, calls, n, &p.gen);
        for (size_t i = 0; i < n; i++) {
            cJSON *o = st ? NULL : cJSON_CreateObject();
            if (o) {
                cJSON_AddStringToObject(o, "id", pr[i].id);
                if (tmp[i]) {
                    lma_curate_prompt shown = pr[i];
                    shown.msgs = tmp[i]; shown.n = calls[i].n;
                    prompt_json(o, &shown);
                } else prompt_json(o, &pr[i]);
                cJSON_AddStringToObject(o, "draft", calls[i].text);
                cJSON_AddStringToObject(o, "status", "pending");
                cJSON_AddStringToObject(o, "reviewer_note", "");
                char *js = cJSON_PrintUnformatted(o);
                if (!js) st = lma_error(LMA_ERR_NOMEM, "generate: out of memory");
                if (!st && (st = lma_atomic_write(&af, js, strlen(js)))) af_open = 0;
                if (!st && (st = lma_atomic_write(&af, "\n", 1))) af_open = 0;
                free(js);
                cJSON_Delete(o);
            } else if (!st) st = lma_error(LMA_ERR_NOMEM, "generate: out of memory");
            free(calls[i].text); free(tmp[i]);
            lma_curate_prompt_free(&pr[i]);
            if (!st) drafted++;
        }
        if (st) break;
        if (p.progress) lma_progress_update(&bar, n_prompts);
        if (n && lma_now() - last_commit >= p.checkpoint_s) {
            /* checkpoint: commit what we have, then continue in a fresh temporary copy */
            af_open = 0;
            if ((st = lma_atomic_commit(&af))) break;
            if ((st = lma_atomic_open(&af, review))) break;
            af_open = 1;
            if ((st = copy_into(&af, review))) { af_open = 0; break; }
            last_commit = lma_now();
        }
    }
    lma_ex_close(r);
    if (p.progress) lma_progress_finish(&bar);
    if (!st && af_open) { af_open = 0; st = lma_atomic_commit(&af); }
    if (af_open) lma_atomic_abort(&af);
    lma_u64map_free(&done);
    if (st) { cJSON_Delete(summary); return st; }
    cJSON_AddNumberToObject(summary, "prompts", (double)n_prompts);
    cJSON_AddNumberToObject(summary, "drafted", (double)drafted);
    cJSON_AddNumberToObject(summary, "skipped", (double)skipped);
    cJSON_AddNumberToObject(summary, "duplicates", (double)dups);
    cJSON_AddNumberToObject(summary, "unreadable", (double)bad);
    cJSON_AddNumberToObject(summary, "review_lines", (double)(existing + drafted));
    cJSON_AddNumberToObject(summary, "model_calls", (double)((l ? l->calls : 0) - calls0));
    *out = summary;
    return LMA_OK;
}

/* ---- accept --------------------------------------------------------------------------- */

static const char *str_field(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* The training record for one accepted review line (caller deletes). */
static lma_status accept_record(const cJSON *o, const char *text, lma_accept_format fmt, const char *path, int64_t line,
                                cJSON **rec) {
    *rec = NULL;
    const char *prompt = str_field(o, "prompt");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(o, "messages");
    if (!prompt && !cJSON_IsArray(msgs))
        return lma_error(LMA_ERR_FORMAT, "%s:%lld: review line has neither \"prompt\" (string) nor \"messages\" (list)", path,
                         (long long)line);
    cJSON *r = cJSON_CreateObject();
    if (!r) return lma_error(LMA_ERR_NOMEM, "accept: out of memory");
    if (fmt == LMA_ACCEPT_ALPACA) {
        const char *user = prompt;
        if (!user) {
            const cJSON *m0 = cJSON_GetArrayItem(msgs, 0);
            if (cJSON_GetArraySize(msgs) == 1 && str_field(m0, "role") && !strcmp(str_field(m0, "role"), "user"))
                user = str_field(m0, "content");
        }
        if (!user) {
            cJSON_Delete(r);
            return lma_error(LMA_ERR_FORMAT, "%s:%lld: --format alpaca needs a single user turn; this prompt has %d messages "
                             "(use --format messages)", path, (long long)line, cJSON_GetArraySize(msgs));
        }
        cJSON_AddStringToObject(r, "instruction", user);
        cJSON_AddStringToObject(r, "input", "");
        cJSON_AddStringToObject(r, "output", text);
    } else {
        cJSON *arr = cJSON_AddArrayToObject(r, "messages");
        if (prompt) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "user");
            cJSON_AddStringToObject(m, "content", prompt);
            cJSON_AddItemToArray(arr, m);
        } else {
            const cJSON *it;
            int k = 0;
            cJSON_ArrayForEach(it, msgs) {
                const char *role = str_field(it, "role"), *content = str_field(it, "content");
                if (!role || !content) {
                    cJSON_Delete(r);
                    return lma_error(LMA_ERR_FORMAT, "%s:%lld: messages[%d] needs string \"role\" and \"content\"", path,
                                     (long long)line, k);
                }
                cJSON_AddItemToArray(arr, cJSON_Duplicate(it, 1));
                k++;
            }
        }
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", text);
        cJSON_AddItemToArray(arr, m);
    }
    *rec = r;
    return LMA_OK;
}

lma_status lma_data_accept(const char *review, const char *out, lma_accept_format fmt, cJSON **summary) {
    *summary = NULL;
    if (!out) return lma_error(LMA_ERR_ARG, "accept: an output path is required");
    LMA_TRY(lma_curate_check_output(review, out));
    lma_jsonl j;
    LMA_TRY(lma_jsonl_open(&j, review, 0));
    lma_atomic_file af;
    lma_status st = lma_atomic_open(&af, out);
    int af_open = !st;
    int64_t n[4] = {0, 0, 0, 0}, lines = 0;
    static const char *names[4] = {"pending", "accepted", "edited", "rejected"};
    while (!st) {
        cJSON *o; int64_t line;
        if ((st = lma_jsonl_next(&j, &o, &line)) || !o) break;
        lines++;
        const char *status = str_field(o, "status");
        int k = -1;
        for (int i = 0; status && i < 4; i++) if (!strcmp(status, names[i])) k = i;
        const char *text = NULL;
        if (!status) st = lma_error(LMA_ERR_FORMAT, "%s:%lld: review line has no string \"status\"", review, (long long)line);
        else if (k < 0)
            st = lma_error(LMA_ERR_FORMAT, "%s:%lld: status \"%.40s\" is not one of pending, accepted, edited, rejected", review,
                           (long long)line, status);
        else if (k == 1) {
            const char *resp = str_field(o, "response");
            text = resp && resp[0] ? resp : str_field(o, "draft");
            if (!text) st = lma_error(LMA_ERR_FORMAT, "%s:%lld: accepted line has no string \"draft\"", review, (long long)line);
        } else if (k == 2) {
            text = str_field(o, "response");
            if (!text || !text[strspn(text, " \t\r\n")])
                st = lma_error(LMA_ERR_FORMAT, "%s:%lld: edited line needs the reviewer's text in \"response\"", review,
                               (long long)line);
        }
        if (!st) n[k]++;
        if (!st && text) {
            cJSON *rec = NULL;
            st = accept_record(o, text, fmt, review, line, &rec);
            char *s = st ? NULL : cJSON_PrintUnformatted(rec);
            if (!st && !s) st = lma_error(LMA_ERR_NOMEM, "accept: out of memory");
            if (!st && (st = lma_atomic_write(&af, s, strlen(s)))) af_open = 0;
            if (!st && (st = lma_atomic_write(&af, "\n", 1))) af_open = 0;
            free(s);
            cJSON_Delete(rec);
        }
        cJSON_Delete(o);
    }
    lma_jsonl_close(&j);
    if (!st) { af_open = 0; st = lma_atomic_commit(&af); }
    if (af_open) lma_atomic_abort(&af);
    if (st) return st;
    cJSON *s = cJSON_CreateObject();
    if (!s) return lma_error(LMA_ERR_NOMEM, "accept: out of memory");
    cJSON_AddNumberToObject(s, "lines", (double)lines);
    for (int i = 0; i < 4; i++) cJSON_AddNumberToObject(s, names[i], (double)n[i]);
    cJSON_AddNumberToObject(s, "written", (double)(n[1] + n[2]));
    *summary = s;
    return LMA_OK;
}
