/* The option layer every command uses: a command declares a table of options
 * (long name, short char, kind, destination, limits, help) and cli_parse does
 * the rest (getopt_long underneath):
 *   - every value is checked here, in one place: integers in [min, max] without
 *     overflow or trailing garbage, reals finite and in range, choices from a list;
 *     a bad value is a usage error naming the flag, e.g.
 *       lmadapt generate: --max-tokens 4294967296: must be an integer in [1, 1000000]
 *   - --help (-h) prints the help generated from the table; the default shown for
 *     each option is the value its destination holds before parsing, so the help
 *     cannot drift from the code;
 *   - the hidden --print-defaults prints name=value for every option after parsing
 *     (tests/test_cli_help.c compares it with the help);
 *   - bad usage returns 2 (message + "Try 'lmadapt CMD --help'.");
 *   - options flagged CLI_OUT are checked against CLI_IN ones and the bare arguments
 *     (outputs.h): an output is never an input, two outputs never share a path.
 * Relations between options are checked by the command after parsing with
 * cli_require(), which names both flags and their values.
 *
 *   int steps = 100; const char *out = NULL;
 *   cli_opt opts[] = {
 *       CLI_INT("steps", 0, &steps, 1, 1000000000, "N", "optimizer steps"),
 *       CLI_STR("out", 'o', &out, "DIR", "run directory", .flags = CLI_REQUIRED),
 *       CLI_END};
 *   cli_group groups[] = {{NULL, opts}, {0}};
 *   cli_spec spec = {.cmd = "demo", .usage = "lmadapt demo [options]", .groups = groups};
 *   cli_args a;
 *   int rc = cli_parse(&spec, argc, argv, &a);
 *   if (rc != CLI_CONTINUE) return rc;   // 0 after --help, 2 on bad usage
 */
#ifndef LMA_CLI_OPTS_H
#define LMA_CLI_OPTS_H
#include <stdint.h>
#include <stdio.h>

typedef enum {
    CLI_FLAG,   /* no value: *(int *)dest = 1 (or .imin when set: CLI_FLAG_SET) */
    CLI_STRING, /* *(const char **)dest = the value */
    CLI_INT,    /* *(int *)dest, in [imin, imax] */
    CLI_INT64,  /* *(int64_t *)dest, in [imin, imax] */
    CLI_UINT64, /* *(uint64_t *)dest, in [0, UINT64_MAX] (no sign accepted) */
    CLI_REAL,   /* *(double *)dest, finite, in [rmin, rmax] (open ends with CLI_MIN_OPEN / CLI_MAX_OPEN) */
    CLI_FLOAT,  /* *(float *)dest, as CLI_REAL */
    CLI_CHOICE, /* *(int *)dest = values[i] (or i without values) for the choice names[i] */
    CLI_LIST,   /* repeatable string: appended to the cli_list at dest */
} cli_opt_kind;

enum {
    CLI_REQUIRED = 1,   /* cli_parse refuses a run without it */
    CLI_HIDDEN = 2,     /* not in --help */
    CLI_NO_DEFAULT = 4, /* no "(default X)" in --help (the value is a sentinel: "off") */
    CLI_MIN_OPEN = 8,   /* REAL/FLOAT: the minimum itself is refused */
    CLI_MAX_OPEN = 16,  /* REAL/FLOAT: the maximum itself is refused */
    CLI_GREEDY = 32,    /* LIST: bare arguments after this option are appended too (--data a b c) */
    CLI_IN = 64,        /* a path the command reads (bare arguments are inputs too) */
    CLI_OUT = 128,      /* a path the command writes: cli_parse refuses, before any work, an output
                           equal to, inside or holding an input, and two outputs on one path
                           (cli/outputs.h; docs/reliability.md) */
};

/* A repeatable option's values: storage given by the command (no allocation). */
typedef struct {
    const char **v;
    int n, cap;
} cli_list;
#define CLI_LIST_OF(array) {(array), 0, (int)(sizeof(array) / sizeof((array)[0]))}

typedef struct {
    const char *name;          /* long name without "--"; NULL ends the table */
    int short_name;            /* 'o' for -o, or 0 */
    cli_opt_kind kind;
    void *dest;
    long long imin, imax;      /* INT, INT64; FLAG: the value stored when imax != 0 (CLI_FLAG_SET) */
    double rmin, rmax;         /* REAL, FLOAT */
    const char *const *names;  /* CHOICE: NULL-terminated */
    const int *values;         /* CHOICE: values[i] for names[i] (NULL: the index) */
    const char *metavar;       /* "N", "DIR"; NULL: from the kind */
    const char *help;          /* may hold '\n' for continuation lines */
    const char *def_text;      /* shown as "(default: TEXT)" instead of the value (derived defaults) */
    const char *alias;         /* another long name for the same option (an old name) */
    int flags;
} cli_opt;

#define CLI_END {0}
#define CLI_STRINGIFY_(x) #x
#define CLI_STRINGIFY(x) CLI_STRINGIFY_(x)
#define CLI_BOOL(n, s, d, help_, ...) {.name = n, .short_name = s, .kind = CLI_FLAG, .dest = d, .help = help_, __VA_ARGS__}
/* a flag that stores v (e.g. --no-pack stores 0 into pack) */
#define CLI_FLAG_SET(n, s, d, v, help_, ...) \
    {.name = n, .short_name = s, .kind = CLI_FLAG, .dest = d, .imin = (v), .imax = 1, .help = help_, __VA_ARGS__}
#define CLI_STR(n, s, d, meta, help_, ...) \
    {.name = n, .short_name = s, .kind = CLI_STRING, .dest = d, .metavar = meta, .help = help_, __VA_ARGS__}
#define CLI_INT(n, s, d, lo, hi, meta, help_, ...) \
    {.name = n, .short_name = s, .kind = CLI_INT, .dest = d, .imin = (lo), .imax = (hi), .metavar = meta, .help = help_, __VA_ARGS__}
#define CLI_I64(n, s, d, lo, hi, meta, help_, ...) \
    {.name = n, .short_name = s, .kind = CLI_INT64, .dest = d, .imin = (lo), .imax = (hi), .metavar = meta, .help = help_, __VA_ARGS__}
#define CLI_U64(n, s, d, meta, help_, ...) \
    {.name = n, .short_name = s, .kind = CLI_UINT64, .dest = d, .metavar = meta, .help = help_, __VA_ARGS__}
#define CLI_REALV(n, s, d, lo, hi, meta, help_, ...) \
    {.name = n, .short_name = s, .kind = CLI_REAL, .dest = d, .rmin = (lo), .rmax = (hi), .metavar = meta, .help = help_, __VA_ARGS__}
#define CLI_FLT(n, s, d, lo, hi, meta, help_, ...) \
    {.name = n, .short_name = s, .kind = CLI_FLOAT, .dest = d, .rmin = (lo), .rmax = (hi), .metavar = meta, .help = help_, __VA_ARGS__}
#define CLI_CHOOSE(n, s, d, names_, values_, meta, help_, ...) \
    {.name = n, .short_name = s, .kind = CLI_CHOICE, .dest = d, .names = names_, .values = values_, .metavar = meta, .help = help_, __VA_ARGS__}
#define CLI_MULTI(n, s, d, meta, help_, ...) \
    {.name = n, .short_name = s, .kind = CLI_LIST, .dest = d, .metavar = meta, .help = help_, __VA_ARGS__}

/* The options every model-using command spells the same way. */
#define CLI_OPT_MODEL(d, help_) CLI_STR("model", 0, d, "M", help_, .flags = CLI_REQUIRED | CLI_IN)
#define CLI_OPT_ADAPTER(d) CLI_STR("adapter", 0, d, "DIR", "apply a PEFT LoRA adapter dir to the model", .flags = CLI_IN)
#define CLI_OPT_DEVICE(d) \
    CLI_STR("device", 0, d, "D", "cpu | cpu-bf16 | cuda | cuda-fp32", .def_text = "cuda when a GPU is present, else cpu")
/* inference commands: a GGUF model's Q8_0/Q4_0/Q4_1/Q4_K blocks are computed on as they are
 * on the CPU (docs/gguf.md); --dequantize loads them as fp32 instead. CLI_INFER_FLAGS gives
 * lma_model_load_ex's flags (model/llama.h). */
#define CLI_OPT_DEQUANTIZE(d) \
    CLI_BOOL("dequantize", 0, d, "GGUF on the CPU: dequantize the weights to fp32 instead of computing on\n" \
             "their quantized blocks (Q8_0, Q4_0, Q4_1, Q4_K)")
#define CLI_INFER_FLAGS(dequantize) (LMA_MODEL_FROZEN | ((dequantize) ? 0u : LMA_MODEL_GGUF_QUANT))
/* serve, eval, data generation: one meaning for every command */
#define CLI_OPT_MAX_ACTIVE(d) \
    CLI_INT("max-active", 0, d, 1, 4096, "N", "sequences decoded together (continuous batching, each with its KV cache)")
#define CLI_OPT_THREADS(d) CLI_INT("threads", 0, d, 0, 4096, "N", "CPU threads", .def_text = "all cores, or LMA_THREADS")
#define CLI_OPT_TEMPLATE(d) \
    CLI_STR("template", 0, d, "NAME", "chat format: llama2 | llama3 | chatml | zephyr | mistral", \
            .def_text = "the tokenizer's chat_template", .alias = "chat-template")
#define CLI_OPT_JSON(d, help_) CLI_BOOL("json", 0, d, help_)

/* A titled section of options; a command lists its own and shared ones
 * (training, sampling). The array ends with {0}. */
typedef struct {
    const char *title; /* NULL: "Options:" */
    const cli_opt *opts;
} cli_group;

typedef struct {
    const char *cmd;         /* "generate", "data judge": in messages */
    const char *usage;       /* "lmadapt generate --model M ... [options]" (one or more lines) */
    const char *about;       /* paragraphs between the usage and the options (may be NULL) */
    const cli_group *groups;
    const char *epilog;      /* after the options: notes, examples (may be NULL) */
    /* bare arguments: into pos_list, else into *pos_one (one at most), else refused */
    const char *pos_name;    /* "INPUT" for messages */
    const char **pos_one;
    cli_list *pos_list;
} cli_spec;

#define CLI_MAX_OPTS 128
typedef struct {
    const cli_spec *spec;
    unsigned char given[CLI_MAX_OPTS]; /* by option index over the groups in order */
} cli_args;

#define CLI_CONTINUE (-1)
/* Parses argv (argv[0] is the command or action name). Returns CLI_CONTINUE when the
 * command should run, 0 after --help or --print-defaults, 2 on bad usage (printed). */
int cli_parse(const cli_spec *spec, int argc, char **argv, cli_args *a);
/* True when the option (long name) was given on the command line. */
int cli_given(const cli_args *a, const char *name);
/* When !ok: prints "lmadapt CMD: --x VX must be REL --y VY" and returns 2; else 0. */
int cli_require(const cli_args *a, int ok, const char *x, const char *rel, const char *y);
/* Stored settings (a run's run.json, docs/training.md "Resume"): every option of the
 * command except those named in skip (NULL-terminated), as {"name": "value"} with values
 * as the command line spells them (reals exactly, lists as arrays). */
struct cJSON *cli_settings_json(const cli_args *a, const char *const *skip);
/* Applies stored settings to a parse: an option not given takes the stored value (parsed
 * and range-checked as on the command line; the strings stay owned by stored, which must
 * outlive the options); a given option that differs is refused with the stored value
 * named ("--lr 0.001 conflicts with the run's lr 0.0003 (RUN/run.json)"), unless grow
 * names it and the new value is larger. Paths that differ in spelling but resolve to the
 * same file are equal. A flag is stored as its state ("1": given); legacy_flags: as the
 * value of its variable (run.json version 1, where "no-pack": "1" meant packed). Returns 0
 * or 2 (printed). */
int cli_settings_apply(cli_args *a, const struct cJSON *stored, const char *const *skip, const char *const *grow,
                       const char *where, int legacy_flags);
/* Prints the generated help to f. */
void cli_help(const cli_spec *spec, FILE *f);
/* The value of an option formatted as --help and --print-defaults show it. */
void cli_opt_format(const cli_opt *o, char *buf, size_t cap);
#endif
