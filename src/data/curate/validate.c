/* validate: OpenAI fine-tuning checks (docs/formats.md "Datasets"), role order, empty turns,
 * invalid UTF-8, and training/inference format drift (system prompt, stray special
 * tokens and templates in content, answer formats inconsistent within a task). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/curate/internal.h"
#include "data/curate/text.h"
#include "data/curate/u64map.h"
#include "data/prefs.h"
#include "tok/chat_template.h"
#include "tok/tokenizer.h"

void lma_validate_default_params(lma_validate_params *p) {
    memset(p, 0, sizeof *p);
    p->format_minority = 0.1;
    p->max_summary_findings = 20;
    p->max_tokens = 16385;
}

typedef struct {
    lma_finding *out;
    size_t cap, n;
} sink;

static void add(sink *s, const char *code, int severity, const char *fmt, ...) LMA_PRINTF(4, 5);
static void add(sink *s, const char *code, int severity, const char *fmt, ...) {
    if (s->n < s->cap) {
        lma_finding *f = &s->out[s->n];
        f->code = code; f->severity = severity;
        va_list ap; va_start(ap, fmt);
        vsnprintf(f->message, sizeof f->message, fmt, ap);
        va_end(ap);
    }
    s->n++;
}

/* Tokens and template fragments that belong to chat templates, not to content. */
static const char *const special_tokens[] = {
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|user|>", "<|assistant|>", "<|system|>",
    "<|end|>", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "<s>", "</s>", "<|pad|>", "<unk>", NULL};
static const char *const template_fragments[] = {
    "### Instruction:", "### Response:", "### Input:", "\nHuman:", "\nAssistant:", "\n### Human:",
    "\n### Assistant:", "USER:", "ASSISTANT:", NULL};

static const char *find_any(const char *text, size_t n, const char *const *list) {
    for (int i = 0; list[i]; i++) {
        size_t k = strlen(list[i]);
        if (k > n) continue;
        for (size_t j = 0; j + k <= n; j++)
            if (text[j] == list[i][0] && !memcmp(text + j, list[i], k)) return list[i];
    }
    return NULL;
}

static int is_blank(const char *t, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r' || t[i] == '\f' || t[i] == '\v')) return 0;
    return 1;
}

static int openai_like(const lma_ex_msg *m) {
    return m->json && (cJSON_GetObjectItemCaseSensitive(m->json, "role") || cJSON_GetObjectItemCaseSensitive(m->json, "content") ||
                       !cJSON_GetObjectItemCaseSensitive(m->json, "from"));
}

/* Structure of one message from a list (OpenAI or ShareGPT keys). */
static void check_msg_keys(const lma_ex_msg *m, const char *field, size_t i, sink *s) {
    if (!m->json) return;
    int oa = openai_like(m);
    const char *rk = oa ? "role" : "from", *ck = oa ? "content" : "value";
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m->json, rk);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m->json, ck);
    if (!role || !content)
        add(s, "message_missing_key", 2, "%s[%zu] has no \"%s\"", field, i, !role ? rk : ck);
    static const char *const oa_keys[] = {"role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id", NULL};
    static const char *const sg_keys[] = {"from", "value", "weight", NULL};
    for (const cJSON *k = m->json->child; k; k = k->next) {
        const char *const *ok = oa ? oa_keys : sg_keys;
        int found = 0;
        for (int j = 0; ok[j]; j++) found |= k->string && !strcmp(k->string, ok[j]);
        if (!found) add(s, "message_unrecognized_key", 2, "%s[%zu] has unrecognized key \"%s\"", field, i, k->string ? k->string : "");
    }
    static const char *const oa_roles[] = {"system", "user", "assistant", "function", "tool", NULL};
    static const char *const sg_roles[] = {"system", "human", "gpt", "user", "assistant", "function_call", "observation", "tool", NULL};
    int role_ok = 0;
    for (int j = 0; cJSON_IsString(role) && (oa ? oa_roles : sg_roles)[j]; j++)
        role_ok |= !strcmp(role->valuestring, (oa ? oa_roles : sg_roles)[j]);
    if (role && !role_ok)
        add(s, "unrecognized_role", 2, "%s[%zu].%s \"%s\" is not one of %s", field, i, rk,
            cJSON_IsString(role) ? role->valuestring : "(not a string)",
            oa ? "system, user, assistant, function, tool" : "system, human, gpt, function_call, observation, tool");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(m->json, "weight");
    if (w && (!cJSON_IsNumber(w) || (w->valuedouble != 0 && w->valuedouble != 1)))
        add(s, "invalid_weight", 2, "%s[%zu].weight must be 0 or 1", field, i);
    if (w && m->role != LMA_ROLE_ASSISTANT)
        add(s, "invalid_weight", 2, "%s[%zu].weight is only allowed on assistant messages", field, i);
}

static void check_content(const lma_ex_msg *m, const char *field, size_t i, sink *s) {
    int has_call = m->json && (cJSON_GetObjectItemCaseSensitive(m->json, "function_call") ||
                               cJSON_GetObjectItemCaseSensitive(m->json, "tool_calls"));
    if (!m->has_text || m->len == 0) {
        if (!has_call) add(s, "missing_content", 2, "%s[%zu] (%s) has no content string", field, i, lma_role_name(m->role));
        return;
    }
    if (is_blank(m->text, m->len))
        add(s, "empty_turn", 2, "%s[%zu] (%s) is whitespace only", field, i, lma_role_name(m->role));
    const char *tok = find_any(m->text, m->len, special_tokens);
    if (tok) add(s, "stray_special_token", 1, "%s[%zu] (%s) contains the template token \"%s\"", field, i, lma_role_name(m->role), tok);
    const char *frag = find_any(m->text, m->len, template_fragments);
    if (frag) {
        char shown[32]; size_t k = 0;
        for (const char *c = frag; *c && k < sizeof shown - 1; c++) if (*c != '\n') shown[k++] = *c;
        shown[k] = 0;
        add(s, "template_in_content", 1, "%s[%zu] (%s) contains the prompt-template text \"%s\"", field, i, lma_role_name(m->role), shown);
    }
}

static const char *list_field(const lma_example *ex, int which) {
    if (which == 1) return ex->format == LMA_EXF_PREFERENCE && cJSON_GetObjectItemCaseSensitive(ex->json, "preferred_output") ? "preferred_output" : "chosen";
    if (which == 2) return ex->format == LMA_EXF_PREFERENCE && cJSON_GetObjectItemCaseSensitive(ex->json, "non_preferred_output") ? "non_preferred_output" : "rejected";
    switch (ex->format) {
    case LMA_EXF_MESSAGES: return "messages";
    case LMA_EXF_SHAREGPT: return "conversations";
    case LMA_EXF_PREFERENCE: return "prompt";
    case LMA_EXF_ALPACA: return "alpaca";
    case LMA_EXF_QA: return "qa";
    case LMA_EXF_TEXT: return "text";
    default: return "turns";
    }
}

/* Role order: optional system first, then user/assistant alternating from a user
 * turn (tool turns only after an assistant or tool turn), ending on the assistant. */
static void check_order(const lma_ex_msg *m, size_t n, const char *field, int need_last_assistant, sink *s) {
    lma_role prev = LMA_ROLE_COUNT;
    int seen_turn = 0;
    for (size_t i = 0; i < n; i++) {
        lma_role r = m[i].role;
        if (r == LMA_ROLE_UNKNOWN || r == LMA_ROLE_TEXT) { prev = r; continue; }
        if (r == LMA_ROLE_SYSTEM) {
            if (i != 0) add(s, "role_order", 2, "%s[%zu]: a system message must come first", field, i);
            prev = r; continue;
        }
        if (!seen_turn && r != LMA_ROLE_USER) add(s, "role_order", 2, "%s[%zu]: the first turn is %s, expected user", field, i, lma_role_name(r));
        else if (seen_turn && r == prev && r != LMA_ROLE_TOOL)
            add(s, "role_order", 2, "%s[%zu]: two %s turns in a row (roles must alternate)", field, i, lma_role_name(r));
        else if (r == LMA_ROLE_TOOL && prev != LMA_ROLE_ASSISTANT && prev != LMA_ROLE_TOOL)
            add(s, "role_order", 2, "%s[%zu]: a tool turn must follow an assistant turn", field, i);
        seen_turn = 1; prev = r;
    }
    if (need_last_assistant && n && prev != LMA_ROLE_ASSISTANT && prev != LMA_ROLE_UNKNOWN)
        add(s, "last_turn_not_assistant", 1, "%s: the last turn is %s, so it teaches nothing", field, lma_role_name(prev));
}

size_t lma_validate_example(const lma_example *ex, const lma_validate_params *p, lma_finding *out, size_t cap) {
    sink s = {out, cap, 0};
    if (ex->error_code) {
        const char *msg = ex->error;
        const char *c = strstr(msg, ": "); /* drop the "file:line: " prefix: the report has the line */
        add(&s, ex->error_code, 2, "%s", c ? c + 2 : msg);
        return s.n;
    }
    const lma_ex_msg *lists[3] = {ex->msgs, ex->chosen, ex->rejected};
    size_t ns[3] = {ex->n_msgs, ex->n_chosen, ex->n_rejected};
    int n_assist = 0, n_user = 0, n_system = 0;
    for (int l = 0; l < 3; l++) {
        const char *field = list_field(ex, l);
        for (size_t i = 0; i < ns[l]; i++) {
            const lma_ex_msg *m = &lists[l][i];
            check_msg_keys(m, field, i, &s);
            check_content(m, field, i, &s);
            n_assist += m->role == LMA_ROLE_ASSISTANT;
            n_user += m->role == LMA_ROLE_USER;
            if (m->role == LMA_ROLE_SYSTEM) {
                n_system++;
                if (p && p->inference_system) {
                    if (!p->inference_system[0])
                        add(&s, "system_prompt_drift", 1, "%s[%zu]: a system prompt the inference side never sends", field, i);
                    else if (strlen(p->inference_system) != m->len || memcmp(p->inference_system, m->text, m->len))
                        add(&s, "system_prompt_drift", 1, "%s[%zu]: system prompt differs from the one sent at inference", field, i);
                }
            }
        }
    }
    if (p && p->inference_system && p->inference_system[0] && !n_system && ex->format != LMA_EXF_TEXT)
        add(&s, "system_prompt_drift", 1, "no system prompt, but the inference side sends one");
    if (ex->format == LMA_EXF_PREFERENCE) {
        if (!ex->n_chosen || !ex->n_rejected) add(&s, "example_missing_assistant_message", 2, "preference example without a chosen or rejected reply");
        check_order(ex->msgs, ex->n_msgs, "prompt", 0, &s);
        int implicit = 0;
        lma_pref_kind kind = lma_pref_classify(ex, &implicit);
        if (kind != LMA_PREF_PLAIN && !implicit)
            for (int w = 0; w < 2; w++) { /* TRL and OpenAI: the replies are assistant turns */
                const lma_ex_msg *r = w ? ex->rejected : ex->chosen;
                size_t nr = w ? ex->n_rejected : ex->n_chosen;
                for (size_t i = 0; i < nr; i++)
                    if (r[i].role != LMA_ROLE_ASSISTANT) {
                        add(&s, "preference_reply_role", 2, "%s[%zu] has role %s; a reply holds assistant turns",
                            list_field(ex, 1 + w), i, lma_role_name(r[i].role));
                        break;
                    }
            }
        if (implicit && ex->n_msgs > 0)
            add(&s, "preference_prompt_kind", 1, "the prompt is %s but the replies are %s: the prompt is ignored and "
                "taken from the replies' common start (TRL maybe_extract_prompt)",
                kind == LMA_PREF_PLAIN ? "a message list" : "a string", kind == LMA_PREF_PLAIN ? "strings" : "message lists");
        if (ex->n_chosen == 1 && ex->n_rejected == 1 && ex->chosen[0].len == ex->rejected[0].len &&
            !memcmp(ex->chosen[0].text, ex->rejected[0].text, ex->chosen[0].len))
            add(&s, "chosen_equals_rejected", 2, "chosen and rejected replies are identical");
    } else if (ex->format != LMA_EXF_TEXT) {
        if (!n_assist) add(&s, "example_missing_assistant_message", 2, "no assistant message");
        if (!n_user) add(&s, "missing_user_message", 1, "no user message");
        check_order(ex->msgs, ex->n_msgs, list_field(ex, 0), 1, &s);
    }
    return s.n;
}

/* ---- token length ------------------------------------------------------------ */

static lma_status count_list(const lma_example *ex, const lma_ex_msg *extra, size_t n_extra, const lma_tokenizer *t,
                             const char *tmpl, size_t *n, int *templated) {
    size_t total = ex->n_msgs + n_extra, k = 0;
    lma_chat_msg *cm = total ? malloc(total * sizeof *cm) : NULL;
    int ok = total > 0 && cm != NULL;
    for (size_t i = 0; ok && i < total; i++) {
        const lma_ex_msg *m = i < ex->n_msgs ? &ex->msgs[i] : &extra[i - ex->n_msgs];
        if (m->role > LMA_ROLE_ASSISTANT) { ok = 0; break; }
        cm[k].role = lma_role_name(m->role);
        cm[k++].content = m->text;
    }
    if (ok) {
        int32_t *ids = NULL; size_t n_ids = 0, *spans = NULL, n_spans = 0;
        lma_status st = lma_chat_encode(t, tmpl, cm, k, 0, &ids, &n_ids, &spans, &n_spans);
        free(ids); free(spans);
        if (st == LMA_OK) { free(cm); *n = n_ids; *templated = 1; return LMA_OK; }
        if (st == LMA_ERR_NOMEM) { free(cm); return st; }
        lma_clear_error(); /* the template refused these turns: count the plain text */
    }
    free(cm);
    lma_buf b = {0};
    lma_status st = LMA_OK;
    for (size_t i = 0; i < total && !st; i++) {
        const lma_ex_msg *m = i < ex->n_msgs ? &ex->msgs[i] : &extra[i - ex->n_msgs];
        if (i) st = lma_buf_append(&b, "\n", 1);
        if (!st) st = lma_buf_append(&b, m->text, m->len);
    }
    int32_t *ids = NULL; size_t n_ids = 0;
    if (!st) st = lma_tok_encode(t, b.p ? b.p : "", b.len, 1, &ids, &n_ids);
    free(ids);
    lma_buf_free(&b);
    if (!st) { *n = n_ids; *templated = 0; }
    return st;
}

lma_status lma_validate_count_tokens(const lma_example *ex, const lma_tokenizer *t, const char *tmpl, size_t *n, int *templated) {
    *n = 0; *templated = 0;
    if (ex->error_code) return LMA_OK;
    if (ex->format != LMA_EXF_PREFERENCE) return count_list(ex, NULL, 0, t, tmpl, n, templated);
    size_t a = 0, b = 0; int ta = 0, tb = 0;
    LMA_TRY(count_list(ex, ex->chosen, ex->n_chosen, t, tmpl, &a, &ta));
    LMA_TRY(count_list(ex, ex->rejected, ex->n_rejected, t, tmpl, &b, &tb));
    *n = a > b ? a : b; *templated = a > b ? ta : tb;
    return LMA_OK;
}

/* ---- answer formats per task (two-pass drift check) ------------------------ */

#define MAX_TASKS 4096
typedef struct {
    lma_u64map index;                   /* task hash -> slot */
    size_t n;
    char *name[MAX_TASKS];
    int64_t count[MAX_TASKS][LMA_TFMT_COUNT];
} task_table;

static uint64_t task_hash(const lma_example *ex, const char *field, const char **name) {
    *name = "(all)";
    if (!field) return 1;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(ex->json, field);
    if (cJSON_IsString(t)) { *name = t->valuestring; return lma_hash64(t->valuestring, strlen(t->valuestring), 7); }
    *name = "(none)";
    return 2;
}

static lma_status task_slot(task_table *t, const lma_example *ex, const char *field, int create, size_t *slot) {
    const char *name;
    uint64_t h = task_hash(ex, field, &name);
    uint32_t v = lma_u64map_get(&t->index, h);
    if (v != UINT32_MAX) { *slot = v; return LMA_OK; }
    if (!create || t->n >= MAX_TASKS) { *slot = SIZE_MAX; return LMA_OK; }
    t->name[t->n] = strdup(name);
    if (!t->name[t->n]) return lma_error(LMA_ERR_NOMEM, "validate: out of memory");
    LMA_TRY(lma_u64map_insert(&t->index, h, (uint32_t)t->n));
    *slot = t->n++;
    return LMA_OK;
}

static cJSON *finding_json(const lma_example *ex, const lma_finding *f) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "line", (double)ex->line);
    cJSON_AddStringToObject(o, "code", f->code);
    cJSON_AddStringToObject(o, "severity", f->severity == 2 ? "error" : "warning");
    cJSON_AddStringToObject(o, "message", f->message);
    return o;
}

static lma_status emit(lma_report *rep, cJSON *summary, const lma_example *ex, const lma_finding *f, int max_shown) {
    cJSON *counts = cJSON_GetObjectItemCaseSensitive(summary, "counts");
    lma_curate_count(counts, f->code, 1);
    lma_curate_count(summary, f->severity == 2 ? "errors" : "warnings", 1);
    cJSON *shown = cJSON_GetObjectItemCaseSensitive(summary, "findings");
    if (cJSON_GetArraySize(shown) < max_shown) {
        cJSON *j = finding_json(ex, f);
        if (j) cJSON_AddItemToArray(shown, j);
    }
    return lma_report_item(rep, finding_json(ex, f));
}

lma_status lma_data_validate(const char *path, const lma_validate_params *pin, cJSON **out) {
    lma_validate_params p;
    if (pin) p = *pin; else lma_validate_default_params(&p);
    *out = NULL;
    LMA_TRY(lma_curate_check_output(path, p.report_path));
    cJSON *summary = cJSON_CreateObject();
    task_table *tasks = calloc(1, sizeof *tasks);
    lma_ex_reader *r = NULL;
    lma_report rep; memset(&rep, 0, sizeof rep);
    lma_status st = (summary && tasks) ? LMA_OK : lma_error(LMA_ERR_NOMEM, "validate: out of memory");
    if (!st) {
        cJSON_AddNumberToObject(summary, "examples", 0);
        cJSON_AddNumberToObject(summary, "errors", 0);
        cJSON_AddNumberToObject(summary, "warnings", 0);
        cJSON_AddNumberToObject(summary, "examples_with_errors", 0);
        cJSON_AddItemToObject(summary, "counts", cJSON_CreateObject());
        cJSON_AddItemToObject(summary, "formats", cJSON_CreateObject());
        cJSON_AddItemToObject(summary, "findings", cJSON_CreateArray());
        st = lma_report_open(&rep, p.report_path, "validate", path, "findings");
    }
    if (!st) st = lma_ex_open(path, &r);
    lma_finding fs[32];
    int64_t n_ex = 0, n_bad = 0;
    while (!st) {
        lma_example *ex;
        if ((st = lma_ex_next(r, &ex)) || !ex) break;
        n_ex++;
        lma_curate_count(cJSON_GetObjectItemCaseSensitive(summary, "formats"), lma_ex_format_name(ex->format), 1);
        if (ex->format == LMA_EXF_PREFERENCE && !ex->error_code) { /* which preference layout (lmadapt dpo reads all) */
            int implicit = 0;
            char key[64];
            lma_pref_kind k = lma_pref_classify(ex, &implicit);
            snprintf(key, sizeof key, "%s%s", lma_pref_kind_name(k), implicit ? " (implicit prompt)" : "");
            cJSON *pf = cJSON_GetObjectItemCaseSensitive(summary, "preference_formats");
            if (!pf) pf = cJSON_AddObjectToObject(summary, "preference_formats");
            lma_curate_count(pf, key, 1);
        }
        size_t n = lma_validate_example(ex, &p, fs, 32), err = 0;
        for (size_t i = 0; i < n && i < 32 && !st; i++) {
            err |= fs[i].severity == 2;
            st = emit(&rep, summary, ex, &fs[i], p.max_summary_findings);
        }
        if (!st && p.tokenizer && !ex->error_code) {
            size_t nt; int templated;
            st = lma_validate_count_tokens(ex, p.tokenizer, p.chat_template, &nt, &templated);
            if (!st && p.max_tokens > 0 && nt > (size_t)p.max_tokens) {
                lma_finding fd = {"too_long", 2, {0}};
                snprintf(fd.message, sizeof fd.message, "%zu tokens%s, over the limit of %d (it would be truncated)", nt,
                         templated ? " with the chat template" : "", p.max_tokens);
                err = 1;
                st = emit(&rep, summary, ex, &fd, p.max_summary_findings);
            }
        }
        n_bad += err != 0;
        if (!ex->error_code && (p.format_check || p.task_field)) {
            int f = lma_curate_reply_format(ex);
            size_t slot = SIZE_MAX;
            if (f >= 0 && !st && !(st = task_slot(tasks, ex, p.task_field, 1, &slot)) && slot != SIZE_MAX)
                tasks->count[slot][f]++;
        }
    }
    lma_ex_close(r); r = NULL;
    /* Pass 2 only when some task has a minority answer format. */
    int drift = 0;
    for (size_t t = 0; tasks && t < tasks->n; t++) {
        int64_t tot = 0;
        for (int f = 0; f < LMA_TFMT_COUNT; f++) tot += tasks->count[t][f];
        for (int f = 0; f < LMA_TFMT_COUNT; f++)
            if (tot >= 10 && tasks->count[t][f] && (double)tasks->count[t][f] < p.format_minority * (double)tot) drift = 1;
    }
    if (!st && drift && strcmp(path, "-")) {
        st = lma_ex_open(path, &r);
        while (!st) {
            lma_example *ex;
            if ((st = lma_ex_next(r, &ex)) || !ex) break;
            if (ex->error_code) continue;
            int f = lma_curate_reply_format(ex);
            size_t slot = SIZE_MAX;
            if (f < 0 || (st = task_slot(tasks, ex, p.task_field, 0, &slot)) || slot == SIZE_MAX) continue;
            int64_t tot = 0, best = 0; int bf = 0;
            for (int k = 0; k < LMA_TFMT_COUNT; k++) {
                tot += tasks->count[slot][k];
                if (tasks->count[slot][k] > best) best = tasks->count[slot][k], bf = k;
            }
            if (tot >= 10 && (double)tasks->count[slot][f] < p.format_minority * (double)tot) {
                lma_finding fd = {"answer_format_drift", 1, {0}};
                snprintf(fd.message, sizeof fd.message, "the response is %s while %.0f%% of task \"%.40s\" responses are %s",
                         lma_text_format_name((lma_text_format)f), 100.0 * (double)best / (double)tot, tasks->name[slot],
                         lma_text_format_name((lma_text_format)bf));
                st = emit(&rep, summary, ex, &fd, p.max_summary_findings);
            }
        }
        lma_ex_close(r); r = NULL;
    }
    if (!st) {
        cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(summary, "examples"), (double)n_ex);
        cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(summary, "examples_with_errors"), (double)n_bad);
        cJSON *tf = cJSON_AddObjectToObject(summary, "answer_formats");
        for (size_t t = 0; tf && t < tasks->n; t++) {
            cJSON *o = cJSON_AddObjectToObject(tf, tasks->name[t]);
            for (int f = 0; o && f < LMA_TFMT_COUNT; f++)
                if (tasks->count[t][f]) cJSON_AddNumberToObject(o, lma_text_format_name((lma_text_format)f), (double)tasks->count[t][f]);
        }
        st = lma_report_close(&rep, summary);
    }
    if (st) lma_report_abort(&rep);
    if (tasks) {
        for (size_t t = 0; t < tasks->n; t++) free(tasks->name[t]);
        lma_u64map_free(&tasks->index);
        free(tasks);
    }
    if (st) { cJSON_Delete(summary); return st; }
    *out = summary;
    return LMA_OK;
}
