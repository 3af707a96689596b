/* The CLI's option layer (cli/opts.c) seen from outside, for every command and action:
 *  - --help lists the real defaults: each "(default X)" printed for an option equals the
 *    value the command holds when no flag is given (the hidden --print-defaults prints
 *    name=value for every option after parsing an empty argv), and every option of the
 *    table is in the help;
 *  - the defaults that differ per command are the ones the code ran with before
 *    (sft and cpt do not show pretrain's lr and seq);
 *  - numbers are checked in one place: overflow, trailing text, NaN/Inf and ranges are
 *    usage errors (exit 2) naming the flag; so are unknown flags and missing values;
 *  - old flag names kept as aliases land in the new option. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "test.h"

#define OUT_CAP (1 << 17)

/* Runs "LMA_CLI args" through the shell; the output (stdout, plus stderr with
 * merge) into out. Returns the exit status, -1 when it did not exit normally. */
static int run(const char *args, int merge, char *out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s %s", LMA_CLI, args, merge ? "2>&1" : "2>/dev/null");
    out[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, OUT_CAP - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The value of "name=" in a --print-defaults listing, or NULL. */
static const char *lookup(const char *defaults, const char *name, char *val, size_t cap) {
    size_t n = strlen(name);
    for (const char *l = defaults; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (!strncmp(l, name, n) && l[n] == '=') {
            const char *e = strchr(l + n + 1, '\n');
            size_t k = e ? (size_t)(e - (l + n + 1)) : strlen(l + n + 1);
            if (k >= cap) k = cap - 1;
            memcpy(val, l + n + 1, k);
            val[k] = 0;
            return val;
        }
    }
    return NULL;
}

/* Checks one command's help against its defaults; returns the number of defaults compared. */
static int check_help(const char *cmd) {
    static char help[OUT_CAP], defs[OUT_CAP];
    char args[256];
    snprintf(args, sizeof args, "%s --help", cmd);
    int rc = run(args, 0, help);
    CHECK(rc == 0 && strstr(help, "Usage: lmadapt"), "%s --help exits 0 with a usage line (%d)", cmd, rc);
    snprintf(args, sizeof args, "%s --print-defaults", cmd);
    rc = run(args, 0, defs);
    CHECK(rc == 0 && strchr(defs, '='), "%s --print-defaults exits 0 and lists options (%d)", cmd, rc);
    int compared = 0;
    /* every option line of the help: "  --name ..." or "  -o, --name ..."; its text runs
     * on over the following lines indented past the option column */
    const char *line = help;
    while (line && *line) {
        const char *next = strchr(line, '\n');
        next = next ? next + 1 : NULL;
        if (!strncmp(line, "  -", 3)) {
            const char *dd = strstr(line, "--");
            char name[64] = "";
            if (dd && (!next || dd < next)) {
                int k = 0;
                for (const char *c = dd + 2; *c && *c != ' ' && *c != ',' && *c != '\n' && k < 63; c++) name[k++] = *c;
                name[k] = 0;
            }
            const char *end = next;
            while (end && !strncmp(end, "                ", 16)) end = strchr(end, '\n') ? strchr(end, '\n') + 1 : NULL;
            size_t blen = end ? (size_t)(end - line) : strlen(line);
            char block[4096];
            if (blen >= sizeof block) blen = sizeof block - 1;
            memcpy(block, line, blen);
            block[blen] = 0;
            char val[1024];
            if (strcmp(name, "help")) {
                CHECK(lookup(defs, name, val, sizeof val) != NULL, "%s: --%s is in --help but not in --print-defaults",
                      cmd, name);
            }
            for (const char *d = strstr(block, "(default "); d; d = strstr(d + 1, "(default ")) {
                const char *x = d + 9, *close = strchr(x, ')');
                char shown[256] = "";
                if (close && (size_t)(close - x) < sizeof shown) memcpy(shown, x, (size_t)(close - x));
                const char *real = lookup(defs, name, val, sizeof val);
                CHECK(real && !strcmp(real, shown), "%s --%s: help says (default %s), the parsed default is %s", cmd,
                      name, shown, real ? real : "(no such option)");
                compared++;
            }
            line = end;
            continue;
        }
        line = next;
    }
    /* and every option of the table is in the help */
    for (const char *l = defs; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *eq = strchr(l, '=');
        if (!eq) break;
        char pat[80];
        snprintf(pat, sizeof pat, "--%.*s", (int)(eq - l), l);
        char pat_sp[84], pat_nl[84];
        snprintf(pat_sp, sizeof pat_sp, "%s ", pat);
        snprintf(pat_nl, sizeof pat_nl, "%s\n", pat);
        CHECK(strstr(help, pat_sp) || strstr(help, pat_nl), "%s: option %s of the table is missing from --help", cmd, pat);
    }
    return compared;
}

/* args must be refused with exit 2 and a message holding want (and want2 when given). */
static void refused(const char *args, const char *want, const char *want2) {
    static char out[OUT_CAP];
    int rc = run(args, 1, out);
    CHECK(rc == 2 && strstr(out, want) && (!want2 || strstr(out, want2)),
          "'lmadapt %s' is a usage error (exit 2, got %d) saying '%s'%s%s: %s", args, rc, want, want2 ? " and " : "",
          want2 ? want2 : "", out);
}

/* "args --print-defaults" shows name=value (an alias or a value that must land). */
static void lands(const char *args, const char *name, const char *value) {
    static char out[OUT_CAP];
    char a[512], val[1024];
    snprintf(a, sizeof a, "%s --print-defaults", args);
    int rc = run(a, 0, out);
    const char *v = lookup(out, name, val, sizeof val);
    CHECK(rc == 0 && v && !strcmp(v, value), "'lmadapt %s': %s=%s expected, got %s (exit %d)", args, name, value,
          v ? v : "nothing", rc);
}

int main(void) {
    static const char *cmds[] = {
        "score", "generate", "chat", "eval", "sft", "cpt", "pretrain", "merge", "export", "demo",
        "tokenizer encode", "tokenizer decode", "tokenizer render", "tokenizer train",
        "data validate", "data stats", "data dedup", "data filter", "data decontam", "data split",
        "data generate", "data accept", "data judge", "data debug",
        "rag index", "rag search", "rag ask", "rag eval", "rag make-sft", "mem", "advise", "icl build", "icl eval",
        "report", "launch"};
    int total = 0;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        int n = check_help(cmds[i]);
        printf("%-18s %d defaults in --help match the parsed ones\n", cmds[i], n);
        total += n;
    }
    CHECK(total > 100, "defaults compared: %d", total);
    static char out[OUT_CAP];
    CHECK(run("data --help", 0, out) == 0 && strstr(out, "decontam"), "data --help");
    CHECK(run("tokenizer --help", 0, out) == 0 && strstr(out, "render"), "tokenizer --help");
    CHECK(run("data", 1, out) == 2, "data without an action is a usage error");
    CHECK(run("data nosuch", 1, out) == 2, "an unknown data action is a usage error");
    CHECK(run("tokenizer nosuch", 1, out) == 2, "an unknown tokenizer action is a usage error");
    CHECK(run("rag --help", 0, out) == 0 && strstr(out, "search"), "rag --help");
    CHECK(run("rag nosuch", 1, out) == 2, "an unknown rag action is a usage error");

    /* each command's own defaults (the values of the code before the option layer) */
    lands("sft", "lr", "2e-05");
    lands("sft", "min-lr", "2e-06");
    lands("sft", "seq", "512");
    lands("sft", "batch", "4");
    lands("sft", "eval-batches", "0");
    lands("cpt", "lr", "5e-05");
    lands("cpt", "seq", "256");
    lands("pretrain", "lr", "0.0003");
    lands("pretrain", "min-lr", "3e-05");
    lands("pretrain", "vocab-size", "4096");
    lands("generate", "max-tokens", "128");
    lands("generate", "temperature", "0.7");
    lands("chat", "max-tokens", "256");
    lands("data generate", "max-tokens", "256");
    lands("data generate", "temperature", "0");
    lands("data judge", "max-tokens", "48");
    lands("data judge", "threshold", "4");
    lands("eval", "shots", "5");
    lands("eval", "max-tokens", "256");
    lands("export", "type", "f16");
    lands("demo", "lora-steps", "16");
    lands("demo", "shots", "4");
    lands("data dedup", "bands", "14");
    lands("data split", "ratios", "0.8,0.1,0.1");
    lands("data validate", "max-tokens", "16385");
    /* --min-lr follows --lr when not given: a small --lr alone is no usage error (the run
     * goes on to fail on the missing model: exit 1) */
    CHECK(run("sft --model /nonexistent/m --data d --out /nonexistent/o --lr 1e-7", 1, out) == 1,
          "sft --lr below the default --min-lr alone is accepted: %s", out);

    /* numbers: overflow, trailing text, NaN/Inf, ranges; the message names the flag */
    refused("generate --model m --prompt x --max-tokens 4294967296",
            "lmadapt generate: --max-tokens 4294967296: must be an integer in [1, 1000000]", NULL);
    refused("generate --model m --max-tokens 0", "--max-tokens 0: must be an integer in [1, 1000000]", NULL);
    refused("generate --model m --seed -1", "--seed -1: must be an integer", NULL);
    refused("generate --model m --top-p 0", "--top-p 0: must be a number in (0, 1]", NULL);
    refused("chat --model m --temperature nan", "lmadapt chat: --temperature nan: must be", NULL);
    refused("chat --model m --max-tokens 99999999999999999999999", "--max-tokens 99999999999999999999999: must be", NULL);
    refused("sft --model m --data d --out o --lr nan", "lmadapt sft: --lr nan: must be a number in [0, 10]", NULL);
    refused("sft --model m --data d --out o --lr inf", "--lr inf: must be", NULL);
    refused("sft --model m --data d --out o --lr 1e-4 --min-lr 1e-3", "--min-lr 0.001 must be <= --lr 0.0001", NULL);
    refused("sft --model m --data d --out o --steps 1e3", "--steps 1e3: must be an integer", NULL);
    refused("sft --model m --data d --out o --steps 10 --epochs 2", "--steps or --epochs", NULL);
    refused("cpt --model m --data d --out o --replay-ratio 1", "--replay-ratio 1: must be a number in [0, 1)", NULL);
    refused("pretrain --data d --out o --batch 2147483648", "--batch 2147483648: must be an integer", NULL);
    refused("pretrain --data d --out o --schedule cubic", "--schedule cubic: must be one of cosine, linear, constant", NULL);
    refused("eval --model m --task ppl:x --shots 65", "lmadapt eval: --shots 65: must be an integer in [0, 64]", NULL);
    refused("eval --model m --task ppl:x --ppl-window 1x", "--ppl-window 1x: must be an integer", NULL);
    refused("score --model m --ids 1,2 --threads -3", "lmadapt score: --threads -3: must be an integer in [0, 4096]", NULL);
    refused("score --model m --ids 1,2 --dtype f8", "--dtype f8: must be one of f32, bf16", NULL);
    refused("demo --lora-steps 0", "lmadapt demo: --lora-steps 0: must be an integer", NULL);
    refused("export --model m --out x.gguf --type q9", "--type q9: must be one of", NULL);
    refused("tokenizer train --vocab-size 99999999999 --out o f", "lmadapt tokenizer train: --vocab-size 99999999999", NULL);
    refused("data dedup in.jsonl -o out --bands -1", "lmadapt data dedup: --bands -1: must be an integer", NULL);
    refused("data dedup in.jsonl -o out --threshold 1.5", "--threshold 1.5: must be a number in [0, 1]", NULL);
    refused("data filter in.jsonl -o out --min-words 10 --max-words 5", "--min-words 10 must be <= --max-words 5", NULL);
    refused("data split in.jsonl --train t --seed 12x", "--seed 12x: must be", NULL);
    refused("data split in.jsonl --train t --ratios 0.8,nan,0.1", "--ratios 0.8,nan,0.1", NULL);
    refused("data generate --model m --prompts p -o r --top-p 1.5", "lmadapt data generate: --top-p 1.5", NULL);
    refused("data judge --model m --data d -o k --temperature -1", "lmadapt data judge: --temperature -1", NULL);
    refused("data debug --data d --show 1e9", "--show 1e9: must be an integer", NULL);
    refused("data validate in.jsonl --max-tokens 0", "--max-tokens 0: must be", NULL);
    /* unknown flags, missing values, extra arguments, missing required options */
    refused("generate --model m --prompt x --bogus", "unknown", "--bogus");
    refused("data validate in.jsonl --bogus", "unknown", "--bogus");
    refused("tokenizer encode --tokenizer t --text x --bogus", "unknown", "--bogus");
    refused("sft --bogus 3", "unknown", "--bogus");
    refused("generate --model", "--model needs a value", NULL);
    refused("data stats in.jsonl --top-verbs", "--top-verbs needs a value", NULL);
    refused("eval --model m --task", "--task needs a value", NULL);
    refused("score --model m --ids 1,2 extra", "unexpected argument 'extra'", NULL);
    refused("data stats a.jsonl b.jsonl", "one input file only", NULL);
    refused("merge --model m --out o", "--adapter", "required");
    refused("chat", "--model", "required");
    /* one flag, one meaning: --rubric is eval's JSON rubric; data judge's prompt is --judge-prompt */
    refused("data judge --model m --data d -o k --rubric r.txt", "unknown", "--rubric");
    lands("data judge --judge-prompt p.txt", "judge-prompt", "p.txt");
    lands("eval --rubric r.json", "rubric", "r.json");

    /* old names kept as aliases */
    lands("data validate in.jsonl --chat-template chatml", "template", "chatml");
    lands("data generate --chat-template llama3", "template", "llama3");
    lands("data judge --chat-template zephyr", "template", "zephyr");
    lands("sft --chat-template mistral", "template", "mistral");
    lands("data dedup in.jsonl --output kept.jsonl", "out", "kept.jsonl");
    lands("data filter in.jsonl --output kept.jsonl", "out", "kept.jsonl");
    lands("data decontam in.jsonl -o kept.jsonl", "out", "kept.jsonl");
    lands("data debug --output clean.jsonl", "out", "clean.jsonl");
    lands("data debug --judge judge-model", "model", "judge-model");
    lands("tokenizer render --format chatml", "template", "chatml");
    lands("tokenizer render --ids", "json", "1");
    lands("pretrain -o runs/x", "out", "runs/x");
    lands("data decontam in.jsonl --eval a --eval b", "eval", "a,b");
    TEST_END();
}
