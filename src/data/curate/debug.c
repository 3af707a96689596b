/* data debug: examples that would teach unwanted behaviour. Pattern rules (action,
 * praise, refusal, flag; PCRE2) on each assistant reply, a per-task format check
 * (two passes), and optionally a model's yes/no opinion per flagged example. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include "core/io.h"
#include "core/buf.h"
#include "data/curate/internal.h"
#include "data/curate/u64map.h"

/* data/curate/debug_rules.txt (tests/test_data_debug.c checks they are equal) */
static const char default_rules[] =
    "# lmadapt data debug rules: one rule per line, KIND NAME REGEX.\n"
    "# REGEX is PCRE2 (UTF), matched case-insensitively against every assistant reply.\n"
    "# KIND  action  : the reply claims or promises an action the assistant cannot take\n"
    "#       praise  : praise of a trait of the user; flagged only when the trait word (the\n"
    "#                 group named \"trait\", else group 1) occurs in no earlier user/system turn\n"
    "#       refusal : a refusal phrase; flagged only when the same reply also answers\n"
    "#                 (enough words outside the sentence holding the phrase)\n"
    "#       flag    : any match is flagged\n"
    "action  promise_action  \\bI(?:'ll| will| shall|'m going to| am going to)\\s+(?:now\\s+|go ahead and\\s+|also\\s+|immediately\\s+|personally\\s+)?(?:schedule|book|send|e-?mail|call|phone|text|order|purchase|buy|remind|set up (?:a|the|your) (?:meeting|reminder|call|appointment)|set a reminder|add (?:it|this|that|the \\w+) to your (?:calendar|cart|list|schedule)|transfer|pay|cancel|reserve|notify|forward|submit|deliver|contact|reach out to|follow up with|place (?:an|the|your) order)\\b\n"
    "action  claimed_action  \\bI(?:'ve| have)\\s+(?:just\\s+|already\\s+|now\\s+|successfully\\s+|gone ahead and\\s+)?(?:scheduled|booked|sent|e-?mailed|called|texted|ordered|purchased|bought|set up (?:a|the|your)|set a reminder|added (?:it|this|that|the \\w+) to your|transferred|paid|cancell?ed|reserved|notified|forwarded|submitted|delivered|contacted|placed (?:an|the|your) order|updated your|saved (?:it|this|that|the \\w+) to your)\\b\n"
    "action  done_for_you    \\byour (?:meeting|appointment|reservation|order|booking|payment|email|message|reminder|flight|table) (?:has been|is now|was) (?:successfully\\s+)?(?:scheduled|booked|sent|placed|confirmed|made|set|created|cancell?ed|reserved)\\b\n"
    "praise  as_a_trait      \\bas an? (?:(?:very|truly|highly|clearly|obviously|incredibly|exceptionally)\\s+)?(?<trait>talented|brilliant|gifted|skilled|experienced|seasoned|accomplished|expert|smart|intelligent|savvy|successful|renowned|respected|creative|dedicated|passionate|thoughtful|insightful|knowledgeable|sophisticated|discerning)\\b[^.!?\\n]{0,60}?,\\s*you\\b\n"
    "praise  you_are_trait   \\byou(?:'re| are)\\s+(?:(?:clearly|obviously|certainly|such|so|very|truly|really|incredibly|an?)\\s+)*(?<trait>talented|brilliant|gifted|skilled|experienced|smart|intelligent|savvy|accomplished|creative|insightful|knowledgeable|thoughtful|wise|genius)\\b\n"
    "praise  your_trait      \\b(?:given|with)\\s+your\\s+(?:(?:impressive|remarkable|exceptional|extensive|deep|vast|considerable|obvious|clear|great)\\s+)?(?<trait>expertise|talent|brilliance|genius|intelligence|experience|skills?|knowledge|wisdom|creativity|insight)\\b\n"
    "refusal cannot_help     \\b(?:I(?:'m| am) sorry,? but I (?:can(?:no|')t|am unable to|won't|am not able to)|I (?:can(?:no|')t|am unable to|am not able to|won't) (?:help|assist|provide|answer|comply|do that|fulfill|write|create|give)|as an AI(?: language model)?,? I (?:can(?:no|')t|am unable to|do not|don't))\n";

const char *lma_debug_default_rules(void) { return default_rules; }

typedef enum { K_ACTION, K_PRAISE, K_REFUSAL, K_FLAG } rule_kind;
static const char *kind_names[] = {"action", "praise", "refusal", "flag"};

typedef struct {
    rule_kind kind;
    char *name;
    pcre2_code *re;
    int trait_group; /* praise: the group holding the trait word (0: none) */
} rule;

struct lma_debug_rules {
    rule *r;
    size_t n, cap;
};

void lma_debug_rules_free(lma_debug_rules *rs) {
    if (!rs) return;
    for (size_t i = 0; i < rs->n; i++) { free(rs->r[i].name); pcre2_code_free(rs->r[i].re); }
    free(rs->r);
    free(rs);
}

size_t lma_debug_rules_count(const lma_debug_rules *rs) { return rs ? rs->n : 0; }

static int is_space(char c) { return c == ' ' || c == '\t'; }

static lma_status parse_line(lma_debug_rules *rs, const char *s, size_t n, const char *ctx, int lineno) {
    while (n && (s[n - 1] == '\r' || s[n - 1] == '\n')) n--;
    size_t i = 0;
    while (i < n && is_space(s[i])) i++;
    if (i == n || s[i] == '#') return LMA_OK;
    size_t k0 = i;
    while (i < n && !is_space(s[i])) i++;
    size_t k1 = i;
    while (i < n && is_space(s[i])) i++;
    size_t n0 = i;
    while (i < n && !is_space(s[i])) i++;
    size_t n1 = i;
    while (i < n && is_space(s[i])) i++;
    if (n1 == n0 || i == n)
        return lma_error(LMA_ERR_FORMAT, "%s:%d: a rule is \"KIND NAME REGEX\" (KIND: action, praise, refusal, flag)", ctx, lineno);
    int kind = -1;
    for (int k = 0; k < 4; k++)
        if (strlen(kind_names[k]) == k1 - k0 && !memcmp(s + k0, kind_names[k], k1 - k0)) kind = k;
    if (kind < 0)
        return lma_error(LMA_ERR_FORMAT, "%s:%d: unknown rule kind \"%.*s\" (action, praise, refusal, flag)", ctx, lineno,
                         (int)(k1 - k0 > 40 ? 40 : k1 - k0), s + k0);
    int err; PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(s + i), n - i, PCRE2_UTF | PCRE2_CASELESS, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return lma_error(LMA_ERR_FORMAT, "%s:%d: rule %.*s: regex error at offset %zu: %s", ctx, lineno, (int)(n1 - n0), s + n0,
                         (size_t)off, (char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
    lma_status gs = lma_grow(&rs->r, &rs->cap, rs->n + 1, sizeof *rs->r, 16, "debug rules");
    if (gs) { pcre2_code_free(re); return gs; }
    rule *r = &rs->r[rs->n];
    memset(r, 0, sizeof *r);
    r->kind = (rule_kind)kind;
    r->re = re;
    r->name = malloc(n1 - n0 + 1);
    if (!r->name) { pcre2_code_free(re); return lma_error(LMA_ERR_NOMEM, "debug rules: out of memory"); }
    memcpy(r->name, s + n0, n1 - n0);
    r->name[n1 - n0] = 0;
    if (kind == K_PRAISE) {
        int g = pcre2_substring_number_from_name(re, (PCRE2_SPTR) "trait");
        uint32_t cap = 0;
        pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &cap);
        r->trait_group = g > 0 ? g : cap >= 1 ? 1 : 0;
    }
    rs->n++;
    return LMA_OK;
}

lma_status lma_debug_rules_parse(lma_debug_rules **out, const char *text, size_t len, const char *ctx) {
    lma_debug_rules *rs = *out;
    int fresh = !rs;
    if (fresh && !(rs = calloc(1, sizeof *rs))) return lma_error(LMA_ERR_NOMEM, "debug rules: out of memory");
    size_t i = 0;
    int lineno = 0;
    lma_status st = LMA_OK;
    while (!st && i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        st = parse_line(rs, text + i, e - i, ctx ? ctx : "rules", ++lineno);
        i = e + 1;
    }
    if (st) { if (fresh) lma_debug_rules_free(rs); return st; }
    *out = rs;
    return LMA_OK;
}

/* ---- matching ---------------------------------------------------------------- */

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* case-insensitive (ASCII) search of w[0..wn) in s[0..n) */
static int contains_ci(const char *s, size_t n, const char *w, size_t wn) {
    if (!wn || wn > n) return 0;
    for (size_t i = 0; i + wn <= n; i++) {
        size_t k = 0;
        while (k < wn && lower((unsigned char)s[i + k]) == lower((unsigned char)w[k])) k++;
        if (k == wn) return 1;
    }
    return 0;
}

static int is_word_byte(unsigned char c) { return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z') || c >= 0x80; }

/* words of s[a..b) (maximal runs holding a letter/digit) */
static size_t count_words(const char *s, size_t a, size_t b) {
    size_t n = 0;
    int in = 0;
    for (size_t i = a; i < b; i++) {
        int w = is_word_byte((unsigned char)s[i]);
        if (w && !in) n++;
        in = w;
    }
    return n;
}

static void make_excerpt(const char *s, size_t n, size_t a, size_t b, char *out, size_t cap) {
    size_t from = a > 40 ? a - 40 : 0, to = b + 40 < n ? b + 40 : n;
    if (to - from > cap - 8) to = from + cap - 8;
    while (from > 0 && ((unsigned char)s[from] & 0xC0) == 0x80) from++;          /* not inside a character */
    while (to < n && to > from && ((unsigned char)s[to] & 0xC0) == 0x80) to--;
    size_t k = 0;
    if (from > 0) { memcpy(out, "...", 3); k = 3; }
    for (size_t i = from; i < to && k + 4 < cap; i++) out[k++] = (s[i] == '\n' || s[i] == '\r' || s[i] == '\t') ? ' ' : s[i];
    if (to < n && k + 4 < cap) { memcpy(out + k, "...", 3); k += 3; }
    out[k] = 0;
}

/* Decides one match of rule r in reply m (index mi of ex->msgs, or a chosen reply). */
static int rule_fires(const rule *r, int refusal_words, const lma_example *ex, size_t mi, const lma_ex_msg *m,
                      const PCRE2_SIZE *ov) {
    if (r->kind == K_ACTION || r->kind == K_FLAG) return 1;
    if (r->kind == K_PRAISE) {
        if (!r->trait_group || ov[2 * r->trait_group] == PCRE2_UNSET) return 1;
        const char *w = m->text + ov[2 * r->trait_group];
        size_t wn = ov[2 * r->trait_group + 1] - ov[2 * r->trait_group];
        for (size_t i = 0; i < mi && i < ex->n_msgs; i++)
            if ((ex->msgs[i].role == LMA_ROLE_USER || ex->msgs[i].role == LMA_ROLE_SYSTEM) &&
                contains_ci(ex->msgs[i].text, ex->msgs[i].len, w, wn))
                return 0;
        return 1;
    }
    /* refusal: the rest of the reply, outside the sentence with the phrase, answers */
    size_t a = ov[0], b = ov[1];
    while (a > 0 && !strchr(".!?\n", m->text[a - 1])) a--;
    while (b < m->len && !strchr(".!?\n", m->text[b])) b++;
    if (b < m->len) b++;
    size_t rest = count_words(m->text, 0, a) + count_words(m->text, b, m->len);
    return rest >= (size_t)refusal_words;
}

size_t lma_debug_example(const lma_debug_rules *rs, int refusal_words, const lma_example *ex, lma_debug_flag *out,
                         size_t cap) {
    if (!rs || ex->error_code) return 0;
    size_t nf = 0;
    size_t n_rep = ex->n_msgs + ex->n_chosen;
    for (size_t ri = 0; ri < n_rep; ri++) {
        const lma_ex_msg *m = ri < ex->n_msgs ? &ex->msgs[ri] : &ex->chosen[ri - ex->n_msgs];
        if (m->role != LMA_ROLE_ASSISTANT || !m->len) continue;
        size_t mi = ri < ex->n_msgs ? ri : ex->n_msgs; /* chosen replies follow the whole prompt */
        for (size_t k = 0; k < rs->n; k++) {
            const rule *r = &rs->r[k];
            pcre2_match_data *d = pcre2_match_data_create_from_pattern(r->re, NULL);
            if (!d) return nf;
            PCRE2_SIZE start = 0;
            int fired = 0;
            while (start <= m->len && !fired) {
                int rc = pcre2_match(r->re, (PCRE2_SPTR)m->text, m->len, start, 0, d, NULL);
                if (rc <= 0) break;
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(d);
                if (rule_fires(r, refusal_words, ex, mi, m, ov)) {
                    fired = 1;
                    if (nf < cap) {
                        lma_debug_flag *f = &out[nf];
                        f->rule = r->name;
                        f->kind = kind_names[r->kind];
                        f->msg = ri;
                        make_excerpt(m->text, m->len, ov[0], ov[1], f->excerpt, sizeof f->excerpt);
                    }
                    nf++;
                }
                start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
            }
            pcre2_match_data_free(d);
        }
    }
    return nf;
}

/* ---- formats per task (as validate's answer_format_drift) ---------------------- */

#define MAX_TASKS 4096
typedef struct {
    lma_u64map index;
    size_t n;
    char *name[MAX_TASKS];
    int64_t count[MAX_TASKS][LMA_TFMT_COUNT];
} task_table;

static void task_tables_free(task_table *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) free(t->name[i]);
    lma_u64map_free(&t->index);
    free(t);
}

static lma_status task_of(task_table *t, const lma_example *ex, const lma_debug_params *p, int create, size_t *slot) {
    *slot = SIZE_MAX;
    const char *name = "(all)";
    uint64_t h = 1;
    if (p->task_field) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(ex->json, p->task_field);
        if (!cJSON_IsString(it)) return LMA_OK;
        name = it->valuestring;
        h = lma_hash64(name, strlen(name), 7);
    }
    uint32_t v = lma_u64map_get(&t->index, h);
    if (v != UINT32_MAX) { *slot = v; return LMA_OK; }
    if (!create || t->n >= MAX_TASKS) return LMA_OK;
    if (!(t->name[t->n] = strdup(name))) return lma_error(LMA_ERR_NOMEM, "debug: out of memory");
    LMA_TRY(lma_u64map_insert(&t->index, h, (uint32_t)t->n));
    *slot = t->n++;
    return LMA_OK;
}

/* ---- model opinion ------------------------------------------------------------------ */

static const char *kind_meaning(const char *kind) {
    if (!strcmp(kind, "action")) return "the assistant claims or promises an action it cannot take";
    if (!strcmp(kind, "praise")) return "the assistant praises a trait of the user that the user never mentioned";
    if (!strcmp(kind, "refusal")) return "the assistant refuses and answers in the same reply";
    if (!strcmp(kind, "format")) return "the reply's format differs from the other replies of its task";
    return "a pattern of unwanted behaviour";
}

/* "yes" / "no" / "unclear": the first of the words yes/no in the text */
static const char *yes_no(const char *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (i && is_word_byte((unsigned char)t[i - 1])) continue;
        if (i + 3 <= n && lower(t[i]) == 'y' && lower(t[i + 1]) == 'e' && lower(t[i + 2]) == 's' &&
            (i + 3 == n || !is_word_byte((unsigned char)t[i + 3])))
            return "yes";
        if (i + 2 <= n && lower(t[i]) == 'n' && lower(t[i + 1]) == 'o' && (i + 2 == n || !is_word_byte((unsigned char)t[i + 2])))
            return "no";
    }
    return "unclear";
}

static lma_status ask_judge(const lma_debug_params *p, const lma_example *ex, const lma_debug_flag *f, size_t nf,
                            lma_buf *q, const char **verdict, char **text) {
    q->len = 0;
    static const char head[] = "You are reviewing one training example for an AI assistant that has no tools: it cannot "
                               "send messages, schedule, buy or contact anyone.\n\nConversation:\n";
    static const char flagged[] = "\nAn automatic check flagged it:\n";
    LMA_TRY(lma_buf_append(q, head, sizeof head - 1));
    size_t n_rep = ex->n_msgs + ex->n_chosen;
    for (size_t i = 0; i < n_rep; i++) {
        const lma_ex_msg *m = i < ex->n_msgs ? &ex->msgs[i] : &ex->chosen[i - ex->n_msgs];
        const char *rn = lma_role_name(m->role);
        LMA_TRY(lma_buf_append(q, rn, strlen(rn)));
        LMA_TRY(lma_buf_append(q, ": ", 2));
        LMA_TRY(lma_buf_append(q, m->text, m->len));
        LMA_TRY(lma_buf_append(q, "\n", 1));
    }
    LMA_TRY(lma_buf_append(q, flagged, sizeof flagged - 1));
    for (size_t i = 0; i < nf; i++) {
        const char *mean = kind_meaning(f[i].kind);
        LMA_TRY(lma_buf_append(q, "- ", 2));
        LMA_TRY(lma_buf_append(q, mean, strlen(mean)));
        LMA_TRY(lma_buf_append(q, ": \"", 3));
        LMA_TRY(lma_buf_append(q, f[i].excerpt, strlen(f[i].excerpt)));
        LMA_TRY(lma_buf_append(q, "\"\n", 2));
    }
    static const char tail[] = "\nWould training on this example teach the assistant this unwanted behaviour? Answer yes or no.";
    LMA_TRY(lma_buf_append(q, tail, sizeof tail - 1));
    lma_chat_msg m = {"user", q->p};
    size_t len;
    LMA_TRY(lma_curate_llm_reply(p->judge, &m, 1, &p->judge_gen, text, &len));
    *verdict = yes_no(*text, len);
    return LMA_OK;
}

/* ---- driver ------------------------------------------------------------------------------ */

void lma_debug_default_params(lma_debug_params *p) {
    memset(p, 0, sizeof *p);
    p->refusal_answer_words = 25;
    p->format_minority = 0.1;
    p->judge_gen.max_tokens = 8;
    p->judge_gen.sample = lma_sample_default_params();
    p->max_summary_flags = 50;
}

static lma_status write_line(lma_atomic_file *af, int *open, const lma_buf *line) {
    if (!*open) return LMA_OK;
    lma_status st = lma_atomic_write(af, line->p, line->len);
    if (!st) st = lma_atomic_write(af, "\n", 1);
    if (st) *open = 0;
    return st;
}

#define MAX_FLAGS 64

lma_status lma_data_debug(const char *in, const lma_debug_params *pin, cJSON **out) {
    lma_debug_params p;
    if (pin) p = *pin; else lma_debug_default_params(&p);
    *out = NULL;
    LMA_TRY(lma_curate_check_output(in, p.report_path));
    LMA_TRY(lma_curate_check_output(in, p.out_path));
    LMA_TRY(lma_curate_check_output(in, p.removed_path));
    lma_debug_rules *rs = NULL;
    lma_status st = LMA_OK;
    if (!p.rules_text) st = lma_debug_rules_parse(&rs, default_rules, strlen(default_rules), "built-in rules");
    for (int i = 0; !st && p.rules_text && i < p.n_rules; i++)
        st = lma_debug_rules_parse(&rs, p.rules_text[i], strlen(p.rules_text[i]), p.rules_name ? p.rules_name[i] : "rules");
    if (st) return st;
    int fmt_check = p.task_field || p.single_task;
    task_table *tasks = fmt_check ? calloc(1, sizeof *tasks) : NULL;
    cJSON *summary = cJSON_CreateObject(), *per_rule = NULL, *shown = NULL, *judge = NULL;
    if (!summary || (fmt_check && !tasks)) st = lma_error(LMA_ERR_NOMEM, "debug: out of memory");
    if (!st) {
        per_rule = cJSON_AddObjectToObject(summary, "per_rule");
        shown = cJSON_AddArrayToObject(summary, "shown");
        if (p.judge) judge = cJSON_AddObjectToObject(summary, "judge");
    }
    lma_ex_reader *r = NULL;
    /* pass 1: reply formats per task */
    if (!st && fmt_check) {
        if (!strcmp(in, "-")) st = lma_error(LMA_ERR_ARG, "debug: the format check reads the input twice; give a file, not stdin");
        if (!st) st = lma_ex_open(in, &r);
        while (!st) {
            lma_example *ex;
            if ((st = lma_ex_next(r, &ex)) || !ex) break;
            if (ex->error_code) continue;
            int f = lma_curate_reply_format(ex);
            size_t slot;
            if (f >= 0 && !(st = task_of(tasks, ex, &p, 1, &slot)) && slot != SIZE_MAX) tasks->count[slot][f]++;
        }
        lma_ex_close(r); r = NULL;
    }
    lma_report rep; memset(&rep, 0, sizeof rep);
    lma_atomic_file fo, fr;
    int fo_open = 0, fr_open = 0;
    if (!st) st = lma_report_open(&rep, p.report_path, "debug", in, "flags");
    if (!st && p.out_path && !(st = lma_atomic_open(&fo, p.out_path))) fo_open = 1;
    if (!st && p.removed_path && !(st = lma_atomic_open(&fr, p.removed_path))) fr_open = 1;
    if (!st) st = lma_ex_open(in, &r);
    lma_curate_bad bad = {&rep, 0, {0}};
    lma_debug_flag *flags = malloc(MAX_FLAGS * sizeof *flags);
    if (!flags && !st) st = lma_error(LMA_ERR_NOMEM, "debug: out of memory");
    lma_buf line = {0};
    lma_buf q = {0};
    int64_t n_ex = 0, n_flagged = 0, n_flags = 0, calls0 = p.judge ? p.judge->calls : 0;
    while (!st) {
        lma_example *ex;
        if ((st = lma_ex_next(r, &ex)) || !ex) break;
        if (ex->error_code) { st = lma_curate_on_bad(ex, &bad); continue; }
        n_ex++;
        size_t nf = lma_debug_example(rs, p.refusal_answer_words, ex, flags, MAX_FLAGS - 1);
        if (nf > MAX_FLAGS - 1) nf = MAX_FLAGS - 1;
        if (fmt_check) {
            int f = lma_curate_reply_format(ex);
            size_t slot = SIZE_MAX;
            if (f >= 0 && !(st = task_of(tasks, ex, &p, 0, &slot)) && slot != SIZE_MAX) {
                int64_t tot = 0, best = 0; int bf = 0;
                for (int k = 0; k < LMA_TFMT_COUNT; k++) {
                    tot += tasks->count[slot][k];
                    if (tasks->count[slot][k] > best) best = tasks->count[slot][k], bf = k;
                }
                if (tot >= 10 && (double)tasks->count[slot][f] < p.format_minority * (double)tot) {
                    lma_debug_flag *fl = &flags[nf++];
                    fl->rule = "format_drift";
                    fl->kind = "format";
                    fl->msg = 0;
                    snprintf(fl->excerpt, sizeof fl->excerpt, "reply is %s; %.0f%% of task \"%.40s\" replies are %s",
                             lma_text_format_name((lma_text_format)f), 100.0 * (double)best / (double)tot, tasks->name[slot],
                             lma_text_format_name((lma_text_format)bf));
                }
            }
            if (st) break;
        }
        line.len = 0;
        if ((fo_open || fr_open) && (st = lma_ex_line(ex, &line))) break;
        if (!nf) { st = write_line(&fo, &fo_open, &line); continue; }
        n_flagged++;
        n_flags += (int64_t)nf;
        const char *verdict = NULL;
        char *jtext = NULL;
        if (p.judge) {
            if ((st = ask_judge(&p, ex, flags, nf, &q, &verdict, &jtext))) break;
            lma_curate_count(judge, verdict, 1);
        }
        for (size_t i = 0; i < nf && !st; i++) {
            lma_curate_count(per_rule, flags[i].rule, 1);
            for (int copy = 0; copy < 2 && !st; copy++) {
                if (copy == 1 && cJSON_GetArraySize(shown) >= p.max_summary_flags) break;
                cJSON *o = cJSON_CreateObject();
                if (!o) { st = lma_error(LMA_ERR_NOMEM, "debug: out of memory"); break; }
                cJSON_AddStringToObject(o, "file", in);
                cJSON_AddNumberToObject(o, "line", (double)ex->line);
                cJSON_AddNumberToObject(o, "index", (double)ex->index);
                cJSON_AddStringToObject(o, "rule", flags[i].rule);
                cJSON_AddStringToObject(o, "kind", flags[i].kind);
                cJSON_AddStringToObject(o, "excerpt", flags[i].excerpt);
                if (verdict) { cJSON_AddStringToObject(o, "judge", verdict); cJSON_AddStringToObject(o, "judge_text", jtext); }
                if (copy == 0) st = lma_report_item(&rep, o);
                else cJSON_AddItemToArray(shown, o);
            }
        }
        free(jtext);
        if (!st) st = write_line(&fr, &fr_open, &line);
    }
    lma_ex_close(r);
    if (!st) {
        cJSON_AddNumberToObject(summary, "examples", (double)n_ex);
        cJSON_AddNumberToObject(summary, "flagged_examples", (double)n_flagged);
        cJSON_AddNumberToObject(summary, "flags", (double)n_flags);
        lma_curate_bad_summary(&bad, summary);
        cJSON_AddNumberToObject(summary, "rules", (double)lma_debug_rules_count(rs));
        if (judge) cJSON_AddNumberToObject(judge, "model_calls", (double)(p.judge->calls - calls0));
        if (fo_open) { fo_open = 0; st = lma_atomic_commit(&fo); }
        if (!st && fr_open) { fr_open = 0; st = lma_atomic_commit(&fr); }
        if (!st) st = lma_report_close(&rep, summary);
    }
    if (fo_open) lma_atomic_abort(&fo);
    if (fr_open) lma_atomic_abort(&fr);
    lma_report_abort(&rep);
    lma_buf_free(&line);
    free(q.p);
    free(flags);
    task_tables_free(tasks);
    lma_debug_rules_free(rs);
    if (st) { cJSON_Delete(summary); return st; }
    *out = summary;
    return LMA_OK;
}
