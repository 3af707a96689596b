/* Chat template rendering for the named formats (see chat_template.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include <cjson/cJSON.h>
#include "core/buf.h"
#include "core/io.h"
#include "core/json.h"
#include "tok/chat_template.h"
#include "tok/tok_internal.h"

static const char *NAMES[] = {"llama2", "llama3", "chatml", "zephyr", "mistral"};

static const char *const JINJA[] = {
    /* llama2: meta-llama/Llama-2-7b-chat-hf */
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
    /* llama3: meta-llama/Meta-Llama-3-8B-Instruct */
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
    /* chatml: the transformers chat-templating docs / OpenHermes */
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    /* zephyr: TinyLlama/TinyLlama-1.1B-Chat-v1.0 */
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
    /* mistral: mistralai/Mistral-7B-Instruct-v0.2 */
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
};

const char *lma_chat_jinja(lma_chat_format f) { return (f >= 0 && f <= LMA_CHAT_MISTRAL) ? JINJA[f] : NULL; }

lma_status lma_chat_template_store(const char *dir, const char *spec) {
    if (!spec) return LMA_OK;
    const char *jinja = spec;
    int named = -1;
    for (int i = 0; i <= LMA_CHAT_MISTRAL; i++)
        if (!strcmp(spec, NAMES[i])) { named = i; jinja = JINJA[i]; }
    char path[4200];
    LMA_TRY(lma_path_join(path, sizeof path, dir, "tokenizer_config.json"));
    cJSON *cfg = NULL;
    if (lma_file_exists(path)) LMA_TRY(lma_json_load(path, &cfg));
    else if (!(cfg = cJSON_CreateObject())) return lma_error(LMA_ERR_NOMEM, "out of memory");
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    lma_chat_format f;
    if (named >= 0 && cJSON_IsString(old) && lma_chat_detect(old->valuestring, &f, NULL) == LMA_OK && (int)f == named) {
        cJSON_Delete(cfg); /* the model's own template is already this format (and may hold a default system) */
        return LMA_OK;
    }
    lma_clear_error();
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "chat_template");
    cJSON_AddStringToObject(cfg, "chat_template", jinja);
    lma_status s = lma_json_save(path, cfg);
    cJSON_Delete(cfg);
    return s;
}

const char *lma_chat_format_name(lma_chat_format f) {
    return (f >= 0 && f <= LMA_CHAT_MISTRAL) ? NAMES[f] : "?";
}

/* The text of a Jinja string literal after `key` up to `end`, with \n escapes undone. */
static char *extract_default_system(const char *tmpl) {
    const char *key = "<|im_start|>system";
    const char *p = strstr(tmpl, key);
    if (!p) return NULL;
    p += strlen(key);
    if (*p == '\n') p++;
    else if (p[0] == '\\' && p[1] == 'n') p += 2;
    else return NULL;
    const char *e = strstr(p, "<|im_end|>");
    if (!e) return NULL;
    /* only a literal: no Jinja expression inside */
    for (const char *q = p; q < e; q++) if (*q == '\'' || *q == '{' || *q == '}') return NULL;
    char *o = malloc((size_t)(e - p) + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (const char *q = p; q < e; q++) {
        if (q[0] == '\\' && q + 1 < e && q[1] == 'n') { o[k++] = '\n'; q++; }
        else o[k++] = *q;
    }
    o[k] = 0;
    return o;
}

lma_status lma_chat_detect(const char *tmpl, lma_chat_format *out, char **default_system) {
    if (default_system) *default_system = NULL;
    if (!tmpl) return lma_error(LMA_ERR_UNSUPPORTED, "no chat_template in tokenizer_config.json; name a format (supported: "
                                LMA_CHAT_FORMAT_NAMES ")");
    if (strstr(tmpl, "<|start_header_id|>") && strstr(tmpl, "<|eot_id|>")) {
        if (strstr(tmpl, "Cutting Knowledge Date"))
            return lma_error(LMA_ERR_UNSUPPORTED, "chat_template is Llama 3.1+ (date/tools header), which is not rendered; "
                             "name a format to override (supported: " LMA_CHAT_FORMAT_NAMES ")");
        *out = LMA_CHAT_LLAMA3;
    } else if (strstr(tmpl, "<|im_start|>")) {
        *out = LMA_CHAT_CHATML;
        if (strstr(tmpl, "tools") || strstr(tmpl, "enable_thinking"))
            return lma_error(LMA_ERR_UNSUPPORTED, "chat_template is a ChatML variant with tools/thinking (Qwen2.5/Qwen3), "
                             "which is not rendered; name a format to override (supported: " LMA_CHAT_FORMAT_NAMES ")");
        if (default_system && strstr(tmpl, "!= 'system'")) *default_system = extract_default_system(tmpl);
    } else if (strstr(tmpl, "<<SYS>>") && strstr(tmpl, "[INST]")) *out = LMA_CHAT_LLAMA2;
    else if (strstr(tmpl, "[INST]")) *out = LMA_CHAT_MISTRAL;
    else if (strstr(tmpl, "<|user|>") && strstr(tmpl, "<|assistant|>")) *out = LMA_CHAT_ZEPHYR;
    else
        return lma_error(LMA_ERR_UNSUPPORTED, "chat_template not recognized; name a format (supported: " LMA_CHAT_FORMAT_NAMES ")");
    return LMA_OK;
}

/* ---- builder ---- */
typedef struct { char *s; size_t n, cap; size_t *sp; size_t nsp, capsp; } rb;

static lma_status put(rb *b, const char *s, size_t n) {
    LMA_TRY(lma_grow(&b->s, &b->cap, b->n + n + 1, 1, 256, "chat render"));
    memcpy(b->s + b->n, s, n); b->n += n; b->s[b->n] = 0;
    return LMA_OK;
}
static lma_status puts_(rb *b, const char *s) { return put(b, s, strlen(s)); }
static lma_status span(rb *b, size_t a, size_t e) {
    LMA_TRY(lma_grow(&b->sp, &b->capsp, b->nsp + 2, sizeof *b->sp, 16, "chat render spans"));
    b->sp[b->nsp++] = a; b->sp[b->nsp++] = e;
    return LMA_OK;
}

/* Python str.strip(): Unicode whitespace at both ends. */
static void strip(const char *s, size_t *a, size_t *e) {
    *a = 0; *e = strlen(s);
    while (*a < *e) {
        int l = lma_tok_utf8_len((const unsigned char *)s + *a, *e - *a);
        if (!l || !lma_tok_is_whitespace(lma_tok_utf8_dec((const unsigned char *)s + *a, l))) break;
        *a += (size_t)l;
    }
    while (*e > *a) {
        size_t j = *e - 1;
        while (j > *a && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
        int l = lma_tok_utf8_len((const unsigned char *)s + j, *e - j);
        if (!l || !lma_tok_is_whitespace(lma_tok_utf8_dec((const unsigned char *)s + j, l))) break;
        *e = j;
    }
}

static int is_role(const lma_chat_msg *m, const char *r) { return m->role && !strcmp(m->role, r); }

static lma_status render(const lma_tokenizer *t, lma_chat_format f, const char *defsys, const lma_chat_msg *m, size_t n,
                         int gen, rb *b) {
    const char *bos = t ? lma_tok_bos_token(t) : NULL, *eos = t ? lma_tok_eos_token(t) : NULL;
    if (!bos) bos = f == LMA_CHAT_LLAMA3 ? "<|begin_of_text|>" : "<s>";
    if (!eos) eos = "</s>";
    for (size_t i = 0; i < n; i++)
        if (!m[i].role || !m[i].content) return lma_error(LMA_ERR_ARG, "chat message %zu lacks role or content", i);
    switch (f) {
    case LMA_CHAT_LLAMA2: {
        size_t k0 = 0;
        const char *sys = NULL;
        if (n && is_role(&m[0], "system")) { sys = m[0].content; k0 = 1; }
        for (size_t i = k0; i < n; i++) {
            size_t li = i - k0;
            if (is_role(&m[i], "user") != (li % 2 == 0))
                return lma_error(LMA_ERR_ARG, "llama2 chat: conversation roles must alternate user/assistant/user/... (message %zu)", i);
            const char *c = m[i].content;
            char *tmp = NULL;
            if (li == 0 && sys) {
                size_t l = strlen(sys) + strlen(c) + 32;
                tmp = malloc(l);
                if (!tmp) return lma_error(LMA_ERR_NOMEM, "chat render: out of memory");
                snprintf(tmp, l, "<<SYS>>\n%s\n<</SYS>>\n\n%s", sys, c);
                c = tmp;
            }
            size_t a, e;
            strip(c, &a, &e);
            lma_status st = LMA_OK;
            if (is_role(&m[i], "user")) {
                st = puts_(b, bos);
                if (!st) st = puts_(b, "[INST] ");
                if (!st) st = put(b, c + a, e - a);
                if (!st) st = puts_(b, " [/INST]");
            } else if (is_role(&m[i], "assistant")) {
                st = puts_(b, " ");
                size_t s0 = b->n;
                if (!st) st = put(b, c + a, e - a);
                if (!st) st = puts_(b, " ");
                if (!st) st = puts_(b, eos);
                if (!st) st = span(b, s0, b->n);
            }
            free(tmp);
            LMA_TRY(st);
        }
        return LMA_OK; /* the Llama 2 template has no generation prompt */
    }
    case LMA_CHAT_LLAMA3:
        for (size_t i = 0; i < n; i++) {
            if (i == 0) LMA_TRY(puts_(b, bos));
            LMA_TRY(puts_(b, "<|start_header_id|>"));
            LMA_TRY(puts_(b, m[i].role));
            LMA_TRY(puts_(b, "<|end_header_id|>\n\n"));
            size_t a, e;
            strip(m[i].content, &a, &e);
            size_t s0 = b->n;
            LMA_TRY(put(b, m[i].content + a, e - a));
            LMA_TRY(puts_(b, "<|eot_id|>"));
            if (is_role(&m[i], "assistant")) LMA_TRY(span(b, s0, b->n));
        }
        if (gen) LMA_TRY(puts_(b, "<|start_header_id|>assistant<|end_header_id|>\n\n"));
        return LMA_OK;
    case LMA_CHAT_CHATML:
        for (size_t i = 0; i < n; i++) {
            if (i == 0 && defsys && !is_role(&m[0], "system")) {
                LMA_TRY(puts_(b, "<|im_start|>system\n"));
                LMA_TRY(puts_(b, defsys));
                LMA_TRY(puts_(b, "<|im_end|>\n"));
            }
            LMA_TRY(puts_(b, "<|im_start|>"));
            LMA_TRY(puts_(b, m[i].role));
            LMA_TRY(puts_(b, "\n"));
            size_t s0 = b->n;
            LMA_TRY(puts_(b, m[i].content));
            LMA_TRY(puts_(b, "<|im_end|>"));
            if (is_role(&m[i], "assistant")) LMA_TRY(span(b, s0, b->n));
            LMA_TRY(puts_(b, "\n"));
        }
        if (gen) LMA_TRY(puts_(b, "<|im_start|>assistant\n"));
        return LMA_OK;
    case LMA_CHAT_ZEPHYR:
        for (size_t i = 0; i < n; i++) {
            const char *tag = is_role(&m[i], "user") ? "<|user|>\n" : is_role(&m[i], "system") ? "<|system|>\n"
                            : is_role(&m[i], "assistant") ? "<|assistant|>\n" : NULL;
            if (tag) {
                LMA_TRY(puts_(b, tag));
                size_t s0 = b->n;
                LMA_TRY(puts_(b, m[i].content));
                LMA_TRY(puts_(b, eos));
                if (is_role(&m[i], "assistant")) LMA_TRY(span(b, s0, b->n));
                LMA_TRY(puts_(b, "\n"));
            }
            if (i + 1 == n && gen) LMA_TRY(puts_(b, "<|assistant|>\n"));
        }
        return LMA_OK;
    case LMA_CHAT_MISTRAL:
        LMA_TRY(puts_(b, bos));
        for (size_t i = 0; i < n; i++) {
            if (is_role(&m[i], "user") != (i % 2 == 0))
                return lma_error(LMA_ERR_ARG, "mistral chat: conversation roles must alternate user/assistant/user/... (message %zu)", i);
            if (is_role(&m[i], "user")) {
                LMA_TRY(puts_(b, "[INST] "));
                LMA_TRY(puts_(b, m[i].content));
                LMA_TRY(puts_(b, " [/INST]"));
            } else if (is_role(&m[i], "assistant")) {
                size_t s0 = b->n;
                LMA_TRY(puts_(b, m[i].content));
                LMA_TRY(puts_(b, eos));
                LMA_TRY(span(b, s0, b->n));
            } else
                return lma_error(LMA_ERR_ARG, "mistral chat: only user and assistant roles are supported (message %zu is \"%s\")",
                                 i, m[i].role);
        }
        return LMA_OK;
    }
    return lma_error(LMA_ERR_ARG, "chat format %d unknown", (int)f);
}

lma_status lma_chat_render(const lma_tokenizer *t, const char *name, const lma_chat_msg *msgs, size_t n,
                           int add_generation_prompt, char **text, size_t *len, size_t **spans, size_t *n_spans) {
    *text = NULL; *len = 0;
    if (spans) *spans = NULL;
    if (n_spans) *n_spans = 0;
    lma_chat_format f;
    char *defsys = NULL;
    int by_name = 0;
    if (name) for (int i = 0; i <= LMA_CHAT_MISTRAL; i++) if (!strcmp(name, NAMES[i])) { f = (lma_chat_format)i; by_name = 1; }
    if (!by_name) {
        if (name && !strstr(name, "{%") && !strstr(name, "{{"))
            return lma_error(LMA_ERR_ARG, "unknown chat format \"%s\" (supported: " LMA_CHAT_FORMAT_NAMES ")", name);
        LMA_TRY(lma_chat_detect(name ? name : (t ? lma_tok_chat_template(t) : NULL), &f, &defsys));
    } else if (t && lma_tok_chat_template(t) && f == LMA_CHAT_CHATML) {
        /* a named ChatML keeps the default system prompt of the tokenizer's own ChatML template */
        lma_chat_format g;
        if (lma_chat_detect(lma_tok_chat_template(t), &g, &defsys) != LMA_OK) lma_clear_error();
        else if (g != LMA_CHAT_CHATML) { free(defsys); defsys = NULL; }
    }
    rb b = {0};
    lma_status st = render(t, f, defsys, msgs, n, add_generation_prompt, &b);
    free(defsys);
    if (st == LMA_OK && !b.s) st = put(&b, "", 0);
    if (st != LMA_OK) { free(b.s); free(b.sp); return st; }
    *text = b.s; *len = b.n;
    if (spans) *spans = b.sp; else free(b.sp);
    if (n_spans) *n_spans = b.nsp / 2;
    return LMA_OK;
}

lma_status lma_chat_encode(const lma_tokenizer *t, const char *name, const lma_chat_msg *msgs, size_t n,
                           int add_generation_prompt, int32_t **ids, size_t *n_ids, size_t **tok_spans, size_t *n_spans) {
    *ids = NULL; *n_ids = 0; *tok_spans = NULL; *n_spans = 0;
    char *text; size_t len, *sp, nsp;
    LMA_TRY(lma_chat_render(t, name, msgs, n, add_generation_prompt, &text, &len, &sp, &nsp));
    size_t *st = NULL, *en = NULL;
    lma_status s = lma_tok_encode_offsets(t, text, len, 0, ids, &st, &en, n_ids);
    free(text);
    size_t *ts = NULL;
    if (s == LMA_OK) {
        ts = malloc((nsp ? nsp : 1) * 2 * sizeof *ts);
        if (!ts) s = lma_error(LMA_ERR_NOMEM, "chat encode: out of memory");
    }
    for (size_t k = 0; s == LMA_OK && k < nsp; k++) {
        size_t a = sp[2 * k], e = sp[2 * k + 1], first = *n_ids, last = 0;
        for (size_t i = 0; i < *n_ids; i++)
            if (st[i] < e && en[i] > a) { if (first == *n_ids) first = i; last = i + 1; }
        if (first == *n_ids) first = last = 0;
        ts[2 * k] = first; ts[2 * k + 1] = last;
    }
    free(sp); free(st); free(en);
    if (s != LMA_OK) { free(*ids); *ids = NULL; *n_ids = 0; free(ts); return s; }
    *tok_spans = ts; *n_spans = nsp;
    return LMA_OK;
}
