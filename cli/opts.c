/* The table-driven option layer (opts.h): getopt_long underneath, every value
 * checked here, --help and --print-defaults generated from the table. */
#include "opts.h"
#include <cjson/cJSON.h>
#include "core/outdir.h"
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "outputs.h"

#define HELP_COL 26

static int n_options(const cli_spec *s) {
    int n = 0;
    for (const cli_group *g = s->groups; g && g->opts; g++)
        for (const cli_opt *o = g->opts; o->name; o++) n++;
    return n;
}

static const cli_opt *opt_at(const cli_spec *s, int idx) {
    int n = 0;
    for (const cli_group *g = s->groups; g && g->opts; g++)
        for (const cli_opt *o = g->opts; o->name; o++)
            if (n++ == idx) return o;
    return NULL;
}

static int opt_index(const cli_spec *s, const char *name) {
    int n = 0;
    for (const cli_group *g = s->groups; g && g->opts; g++)
        for (const cli_opt *o = g->opts; o->name; o++, n++)
            if (!strcmp(o->name, name)) return n;
    return -1;
}

static int takes_value(const cli_opt *o) { return o->kind != CLI_FLAG; }

void cli_opt_format(const cli_opt *o, char *buf, size_t cap) {
    buf[0] = 0;
    switch (o->kind) {
    case CLI_FLAG: /* the flag's state: 1 when its effect is on (CLI_FLAG_SET: the variable holds the set value) */
        snprintf(buf, cap, "%d", o->imax ? *(const int *)o->dest == (int)o->imin : *(const int *)o->dest != 0);
        break;
    case CLI_STRING: {
        const char *v = *(const char *const *)o->dest;
        snprintf(buf, cap, "%s", v ? v : "");
        break;
    }
    case CLI_INT: snprintf(buf, cap, "%d", *(const int *)o->dest); break;
    case CLI_INT64: snprintf(buf, cap, "%" PRId64, *(const int64_t *)o->dest); break;
    case CLI_UINT64: snprintf(buf, cap, "%" PRIu64, *(const uint64_t *)o->dest); break;
    case CLI_REAL: snprintf(buf, cap, "%g", *(const double *)o->dest); break;
    case CLI_FLOAT: snprintf(buf, cap, "%g", (double)*(const float *)o->dest); break;
    case CLI_CHOICE: {
        int v = *(const int *)o->dest;
        for (int i = 0; o->names[i]; i++)
            if ((o->values ? o->values[i] : i) == v) { snprintf(buf, cap, "%s", o->names[i]); return; }
        snprintf(buf, cap, "%d", v);
        break;
    }
    case CLI_LIST: {
        const cli_list *l = o->dest;
        size_t k = 0;
        for (int i = 0; i < l->n && k + 1 < cap; i++) {
            int w = snprintf(buf + k, cap - k, "%s%s", i ? "," : "", l->v[i]);
            if (w < 0) break;
            k += (size_t)w;
        }
        break;
    }
    }
}

static void range_text(const cli_opt *o, char *buf, size_t cap) {
    if (o->kind == CLI_INT || o->kind == CLI_INT64)
        snprintf(buf, cap, "an integer in [%lld, %lld]", o->imin, o->imax);
    else if (o->kind == CLI_UINT64)
        snprintf(buf, cap, "an integer in [0, %" PRIu64 "]", UINT64_MAX);
    else
        snprintf(buf, cap, "a number in %c%g, %g%c", o->flags & CLI_MIN_OPEN ? '(' : '[', o->rmin, o->rmax,
                 o->flags & CLI_MAX_OPEN ? ')' : ']');
}

/* 1: v holds the whole of s as a decimal integer (no space, no trailing text, no overflow). */
static int parse_ll(const char *s, long long *v) {
    if (!*s || isspace((unsigned char)*s)) return 0;
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return !errno && end != s && !*end;
}

static int parse_ull(const char *s, unsigned long long *v) {
    if (!isdigit((unsigned char)*s) && !(*s == '+' && isdigit((unsigned char)s[1]))) return 0;
    char *end;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return !errno && !*end;
}

static int parse_real(const char *s, double *v) {
    if (!*s || isspace((unsigned char)*s)) return 0;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && !*end && isfinite(*v) && errno != ERANGE;
}

static int real_in(const cli_opt *o, double v) {
    if (o->flags & CLI_MIN_OPEN ? !(v > o->rmin) : !(v >= o->rmin)) return 0;
    if (o->flags & CLI_MAX_OPEN ? !(v < o->rmax) : !(v <= o->rmax)) return 0;
    return 1;
}

/* Stores arg into o's destination; 0 ok, 2 usage error (printed). */
static int set_value(const cli_spec *s, const cli_opt *o, const char *arg) {
    char r[128];
    switch (o->kind) {
    case CLI_FLAG: *(int *)o->dest = o->imax ? (int)o->imin : 1; return 0;
    case CLI_STRING: *(const char **)o->dest = arg; return 0;
    case CLI_INT: case CLI_INT64: {
        long long v;
        if (!parse_ll(arg, &v) || v < o->imin || v > o->imax) break;
        if (o->kind == CLI_INT) *(int *)o->dest = (int)v;
        else *(int64_t *)o->dest = (int64_t)v;
        return 0;
    }
    case CLI_UINT64: {
        unsigned long long v;
        if (!parse_ull(arg, &v)) break;
        *(uint64_t *)o->dest = (uint64_t)v;
        return 0;
    }
    case CLI_REAL: case CLI_FLOAT: {
        double v;
        if (!parse_real(arg, &v) || !real_in(o, v)) break;
        if (o->kind == CLI_REAL) *(double *)o->dest = v;
        else *(float *)o->dest = (float)v;
        return 0;
    }
    case CLI_CHOICE: {
        char list[256];
        size_t k = 0;
        list[0] = 0;
        for (int i = 0; o->names[i]; i++) {
            if (!strcmp(arg, o->names[i])) { *(int *)o->dest = o->values ? o->values[i] : i; return 0; }
            int w = snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", o->names[i]);
            if (w > 0 && (size_t)w < sizeof list - k) k += (size_t)w;
        }
        return cli_usage_error(s->cmd, "--%s %s: must be one of %s", o->name, arg, list);
    }
    case CLI_LIST: {
        cli_list *l = o->dest;
        if (l->n >= l->cap) return cli_usage_error(s->cmd, "--%s %s: at most %d values", o->name, arg, l->cap);
        l->v[l->n++] = arg;
        return 0;
    }
    }
    range_text(o, r, sizeof r);
    return cli_usage_error(s->cmd, "--%s %s: must be %s", o->name, arg, r);
}

static void print_label(FILE *f, const cli_opt *o) {
    char label[160];
    const char *meta = o->metavar;
    char choices[160];
    if (!meta && o->kind == CLI_CHOICE) {
        size_t k = 0;
        choices[0] = 0;
        for (int i = 0; o->names[i] && k + 1 < sizeof choices; i++) {
            int w = snprintf(choices + k, sizeof choices - k, "%s%s", i ? "|" : "", o->names[i]);
            if (w < 0) break;
            k += (size_t)w;
        }
        meta = choices;
    }
    if (!meta && takes_value(o)) meta = o->kind == CLI_STRING || o->kind == CLI_LIST ? "S" : "N";
    int n = snprintf(label, sizeof label, "  %s%c%s--%s%s%s", o->short_name ? "-" : "", o->short_name ? o->short_name : ' ',
                     o->short_name ? ", " : "", o->name, meta ? " " : "", meta ? meta : "");
    if (!o->short_name) n = snprintf(label, sizeof label, "  --%s%s%s", o->name, meta ? " " : "", meta ? meta : "");
    fputs(label, f);
    if (n >= HELP_COL - 1) fprintf(f, "\n%*s", HELP_COL, "");
    else fprintf(f, "%*s", HELP_COL - n, "");
}

/* Appends a note to the help line, wrapping before column 100. */
static void note(FILE *f, int *col, const char *text) {
    int n = (int)strlen(text);
    if (*col + 1 + n > 100) { fprintf(f, "\n%*s", HELP_COL, ""); *col = HELP_COL; }
    else { fputc(' ', f); (*col)++; }
    fputs(text, f);
    *col += n;
}

static void print_option(FILE *f, const cli_opt *o) {
    print_label(f, o);
    int col = HELP_COL;
    for (const char *p = o->help ? o->help : ""; *p; p++) {
        fputc(*p, f);
        col++;
        if (*p == '\n') { fprintf(f, "%*s", HELP_COL, ""); col = HELP_COL; }
    }
    char v[512], t[640];
    if (o->flags & CLI_REQUIRED) note(f, &col, "(required)");
    else if (o->def_text) { snprintf(t, sizeof t, "(default: %s)", o->def_text); note(f, &col, t); }
    else if (!(o->flags & CLI_NO_DEFAULT) && o->kind != CLI_FLAG) {
        cli_opt_format(o, v, sizeof v);
        int empty_list = o->kind == CLI_LIST && ((const cli_list *)o->dest)->n == 0;
        int null_str = o->kind == CLI_STRING && !*(const char *const *)o->dest;
        if (!empty_list && !null_str) { snprintf(t, sizeof t, "(default %s)", v); note(f, &col, t); }
    }
    if (o->alias) { snprintf(t, sizeof t, "(also --%s)", o->alias); note(f, &col, t); }
    if (o->kind == CLI_LIST) note(f, &col, "(repeatable)");
    fputc('\n', f);
}

void cli_help(const cli_spec *s, FILE *f) {
    fprintf(f, "Usage: %s\n", s->usage);
    if (s->about) fprintf(f, "\n%s", s->about);
    for (const cli_group *g = s->groups; g && g->opts; g++) {
        fprintf(f, "\n%s\n", g->title ? g->title : "Options:");
        for (const cli_opt *o = g->opts; o->name; o++)
            if (!(o->flags & CLI_HIDDEN)) print_option(f, o);
        if (g == s->groups) fprintf(f, "  -h, --help%*sthis help\n", HELP_COL - 12, "");
    }
    if (s->epilog) fprintf(f, "\n%s", s->epilog);
}

static void print_defaults(const cli_spec *s) {
    char v[1024];
    for (const cli_group *g = s->groups; g && g->opts; g++)
        for (const cli_opt *o = g->opts; o->name; o++) {
            cli_opt_format(o, v, sizeof v);
            printf("%s=%s\n", o->name, v);
        }
}

static int add_positional(const cli_spec *s, cli_list *greedy, const char *arg) {
    cli_list *l = greedy ? greedy : s->pos_list;
    if (l) {
        if (l->n >= l->cap) return cli_usage_error(s->cmd, "at most %d %s", l->cap, s->pos_name ? s->pos_name : "paths");
        l->v[l->n++] = arg;
        return 0;
    }
    if (s->pos_one) {
        if (*s->pos_one)
            return cli_usage_error(s->cmd, "one %s only (got %s and %s)", s->pos_name ? s->pos_name : "argument",
                                   *s->pos_one, arg);
        *s->pos_one = arg;
        return 0;
    }
    return cli_usage_error(s->cmd, "unexpected argument '%s'", arg);
}

enum { CODE_HELP = 'h', CODE_PRINT_DEFAULTS = 0x7000, CODE_BASE = 0x8000 };

/* adds the path values of o (a string or a list) to v */
static void add_paths(const cli_opt *o, int idx, cli_path *v, int *n, int cap) {
    static char flags[CLI_MAX_OPTS][64]; /* "--name" of option idx */
    snprintf(flags[idx], sizeof flags[0], "--%s", o->name);
    if (o->kind == CLI_STRING) {
        const char *p = *(const char *const *)o->dest;
        if (p && *n < cap) v[(*n)++] = (cli_path){flags[idx], p};
    } else if (o->kind == CLI_LIST) {
        const cli_list *l = o->dest;
        for (int i = 0; i < l->n && *n < cap; i++) v[(*n)++] = (cli_path){flags[idx], l->v[i]};
    }
}

/* outputs vs inputs and vs each other (outputs.h) */
static int check_paths(const cli_spec *s) {
    enum { CAP = 1024 };
    static cli_path ins[CAP], outs[CAP];
    int ni = 0, no = 0, n = n_options(s);
    for (int i = 0; i < n; i++) {
        const cli_opt *o = opt_at(s, i);
        if (o->flags & CLI_IN) add_paths(o, i, ins, &ni, CAP);
        if (o->flags & CLI_OUT) add_paths(o, i, outs, &no, CAP);
    }
    if (!no) return 0;
    if (s->pos_one && *s->pos_one && ni < CAP) ins[ni++] = (cli_path){s->pos_name ? s->pos_name : "input", *s->pos_one};
    for (int i = 0; s->pos_list && i < s->pos_list->n && ni < CAP; i++) {
        int dup = 0; /* a greedy list holds the bare arguments already */
        for (int j = 0; j < ni && !dup; j++) dup = ins[j].path == s->pos_list->v[i];
        if (!dup) ins[ni++] = (cli_path){s->pos_name ? s->pos_name : "input", s->pos_list->v[i]};
    }
    return cli_check_paths(s->cmd, outs, no, ins, ni);
}

int cli_parse_only;

int cli_parse(const cli_spec *s, int argc, char **argv, cli_args *a) {
    memset(a, 0, sizeof *a);
    a->spec = s;
    int n = n_options(s);
    if (n > CLI_MAX_OPTS) return cli_usage_error(s->cmd, "internal: more than %d options", CLI_MAX_OPTS);
    struct option lo[2 * CLI_MAX_OPTS + 3];
    char shorts[3 * CLI_MAX_OPTS + 8] = "-:h";
    int nl = 0, ns = 3;
    for (int i = 0; i < n; i++) {
        const cli_opt *o = opt_at(s, i);
        int has = takes_value(o) ? required_argument : no_argument;
        lo[nl++] = (struct option){o->name, has, NULL, CODE_BASE + i};
        if (o->alias) lo[nl++] = (struct option){o->alias, has, NULL, CODE_BASE + i};
        if (o->short_name) {
            shorts[ns++] = (char)o->short_name;
            if (has) shorts[ns++] = ':';
        }
    }
    lo[nl++] = (struct option){"help", no_argument, NULL, CODE_HELP};
    lo[nl++] = (struct option){"print-defaults", no_argument, NULL, CODE_PRINT_DEFAULTS};
    lo[nl] = (struct option){0, 0, 0, 0};
    shorts[ns] = 0;

    int pd = 0, c;
    cli_list *greedy = NULL;
    optind = 0; /* glibc: full re-initialisation (commands parse argv + 1 of an earlier parse) */
    opterr = 0;
    while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        if (c == 1) {
            if (add_positional(s, greedy, optarg)) return 2;
            continue;
        }
        if (c == CODE_HELP) { cli_help(s, stdout); return 0; }
        if (c == CODE_PRINT_DEFAULTS) { pd = 1; continue; }
        if (c == '?') {
            if (optopt >= CODE_BASE) return cli_usage_error(s->cmd, "--%s takes no value", opt_at(s, optopt - CODE_BASE)->name);
            if (optopt && optopt < CODE_BASE) return cli_usage_error(s->cmd, "unknown option '-%c'", optopt);
            return cli_usage_error(s->cmd, "unknown or ambiguous option '%s'", argv[optind - 1]);
        }
        int idx = -1;
        if (c == ':') {
            if (optopt >= CODE_BASE) idx = optopt - CODE_BASE;
            else for (int i = 0; i < n; i++) if (opt_at(s, i)->short_name == optopt) idx = i;
            if (idx < 0) return cli_usage_error(s->cmd, "option '%s' needs a value", argv[optind - 1]);
            return cli_usage_error(s->cmd, "--%s needs a value (%s)", opt_at(s, idx)->name,
                                   opt_at(s, idx)->metavar ? opt_at(s, idx)->metavar : "see --help");
        }
        if (c >= CODE_BASE) idx = c - CODE_BASE;
        else for (int i = 0; i < n; i++) if (opt_at(s, i)->short_name == c) idx = i;
        if (idx < 0) return cli_usage_error(s->cmd, "unknown option '%s'", argv[optind - 1]);
        const cli_opt *o = opt_at(s, idx);
        if (set_value(s, o, optarg)) return 2;
        a->given[idx] = 1;
        if (o->kind == CLI_LIST && (o->flags & CLI_GREEDY)) greedy = o->dest;
    }
    for (int i = optind; i < argc; i++) /* after "--" */
        if (add_positional(s, greedy, argv[i])) return 2;
    if (pd) { print_defaults(s); return 0; }
    for (int i = 0; i < n; i++) {
        const cli_opt *o = opt_at(s, i);
        if ((o->flags & CLI_REQUIRED) && !a->given[i])
            return cli_usage_error(s->cmd, "--%s %s is required", o->name, o->metavar ? o->metavar : "");
    }
    if (check_paths(s)) return 2;
    return cli_parse_only ? 0 : CLI_CONTINUE;
}

int cli_given(const cli_args *a, const char *name) {
    int i = opt_index(a->spec, name);
    return i >= 0 && a->given[i];
}

int cli_require(const cli_args *a, int ok, const char *x, const char *rel, const char *y) {
    if (ok) return 0;
    const cli_opt *ox = opt_at(a->spec, opt_index(a->spec, x)), *oy = opt_at(a->spec, opt_index(a->spec, y));
    char vx[256] = "", vy[256] = "";
    if (ox) cli_opt_format(ox, vx, sizeof vx);
    if (oy) cli_opt_format(oy, vy, sizeof vy);
    return cli_usage_error(a->spec->cmd, "--%s %s must be %s --%s %s", x, vx, rel, y, vy);
}

/* ---- stored settings ---------------------------------------------------------------- */

static int in_names(const char *name, const char *const *names) {
    for (int i = 0; names && names[i]; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

/* as cli_opt_format, with reals to full precision (a stored value parses back exactly);
 * legacy: a flag as its variable's value (run.json version 1) */
static void format_exact(const cli_opt *o, char *buf, size_t cap, int legacy) {
    if (o->kind == CLI_FLAG && legacy) { snprintf(buf, cap, "%d", *(const int *)o->dest); return; }
    if (o->kind != CLI_REAL && o->kind != CLI_FLOAT) { cli_opt_format(o, buf, cap); return; }
    double v = o->kind == CLI_REAL ? *(const double *)o->dest : (double)*(const float *)o->dest;
    for (int prec = 6; prec <= 17; prec++) { /* the shortest spelling that parses back to v */
        snprintf(buf, cap, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (o->kind == CLI_REAL ? back == v : (float)back == (float)v) return;
    }
}

cJSON *cli_settings_json(const cli_args *a, const char *const *skip) {
    cJSON *j = cJSON_CreateObject();
    int n = n_options(a->spec);
    for (int i = 0; j && i < n; i++) {
        const cli_opt *o = opt_at(a->spec, i);
        if (in_names(o->name, skip)) continue;
        if (o->kind == CLI_LIST) {
            const cli_list *l = o->dest;
            cJSON *arr = cJSON_AddArrayToObject(j, o->name);
            for (int k = 0; arr && k < l->n; k++) cJSON_AddItemToArray(arr, cJSON_CreateString(l->v[k]));
            continue;
        }
        if (o->kind == CLI_STRING && !*(const char *const *)o->dest) continue; /* unset */
        char v[4200];
        format_exact(o, v, sizeof v, 0);
        cJSON_AddStringToObject(j, o->name, v);
    }
    return j;
}

static int same_value(const cli_opt *o, const char *now, const char *stored) {
    if (!strcmp(now, stored)) return 1;
    if (o->kind == CLI_REAL || o->kind == CLI_FLOAT) {
        double x, y;
        return parse_real(now, &x) && parse_real(stored, &y) && (o->kind == CLI_REAL ? x == y : (float)x == (float)y);
    }
    return o->kind == CLI_STRING && lma_path_relate(now, stored) == LMA_PATH_SAME;
}

static int list_equal(const cli_list *l, const cJSON *arr) {
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != l->n) return 0;
    int k = 0;
    for (const cJSON *e = arr->child; e; e = e->next, k++)
        if (!cJSON_IsString(e) || (strcmp(e->valuestring, l->v[k]) && lma_path_relate(e->valuestring, l->v[k]) != LMA_PATH_SAME))
            return 0;
    return 1;
}

int cli_settings_apply(cli_args *a, const cJSON *stored, const char *const *skip, const char *const *grow,
                       const char *where, int legacy_flags) {
    const cli_spec *s = a->spec;
    int n = n_options(s);
    for (int i = 0; i < n; i++) {
        const cli_opt *o = opt_at(s, i);
        if (in_names(o->name, skip)) continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(stored, o->name);
        if (!v) {
            if (a->given[i] && o->kind != CLI_LIST)
                return cli_usage_error(s->cmd, "--%s was not set when the run started (%s); resume takes the stored settings",
                                       o->name, where);
            continue;
        }
        if (o->kind == CLI_LIST) {
            cli_list *l = o->dest;
            if (a->given[i] || l->n) {
                if (!list_equal(l, v))
                    return cli_usage_error(s->cmd, "--%s differs from the run's (%s); resume takes the stored settings",
                                           o->name, where);
                continue;
            }
            for (const cJSON *e = cJSON_IsArray(v) ? v->child : NULL; e; e = e->next)
                if (!cJSON_IsString(e) || set_value(s, o, e->valuestring)) return 2;
            continue;
        }
        if (!cJSON_IsString(v)) return cli_usage_error(s->cmd, "%s: \"%s\" must be a string", where, o->name);
        char now[4200];
        format_exact(o, now, sizeof now, legacy_flags);
        if (same_value(o, now, v->valuestring)) continue;
        if (a->given[i]) {
            if (in_names(o->name, grow)) {
                double x, y;
                if (parse_real(now, &x) && parse_real(v->valuestring, &y) && x > y) continue;
                return cli_usage_error(s->cmd, "--%s %s: the run has --%s %s (%s); resume may only raise it", o->name,
                                       now, o->name, v->valuestring, where);
            }
            return cli_usage_error(s->cmd, "--%s %s conflicts with the run's --%s %s (%s); resume takes the stored "
                                   "settings: drop the flag, or start a new run", o->name, now, o->name,
                                   v->valuestring, where);
        }
        if (o->kind == CLI_FLAG) { /* not given here: the stored state (0: the default, already there) */
            if (legacy_flags) *(int *)o->dest = atoi(v->valuestring);
            else if (atoi(v->valuestring)) *(int *)o->dest = o->imax ? (int)o->imin : 1;
            continue;
        }
        if (set_value(s, o, v->valuestring)) return 2;
    }
    return 0;
}
