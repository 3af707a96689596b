/* lmadapt tokenizer encode|decode|train|render: Hugging Face tokenizers in C. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "core/json.h"
#include "core/outdir.h"
#include "opts.h"
#include "outputs.h"
#include "tok/bpe_train.h"
#include "tok/chat_template.h"
#include "tok/tokenizer.h"

static const char *usage_main =
    "Usage: lmadapt tokenizer <action> [options]\n\n"
    "Actions:\n"
    "  encode   the token ids of a text\n"
    "  decode   the text of token ids\n"
    "  render   a chat rendered with the tokenizer's chat template (byte for byte)\n"
    "  train    a byte-level BPE tokenizer trained on text files, as HF BpeTrainer does\n\n"
    "DIR is a Hugging Face model folder (tokenizer.json, tokenizer_config.json), a .gguf file\n"
    "(its tokenizer metadata) or a short model name (docs/models.md).\n"
    "Run 'lmadapt tokenizer <action> --help' for its options.\n"
    "Example: lmadapt tokenizer encode --tokenizer models/tiny --text \"Hello world\" --special\n";

#define TOK_DIR_HELP "HF model folder, .gguf file or short model name"

static int do_encode(int argc, char **argv) {
    const char *dir = NULL, *text = NULL, *file = NULL;
    int special = 0, json = 0;
    cli_opt own[] = {
        CLI_STR("tokenizer", 0, &dir, "DIR", TOK_DIR_HELP, .flags = CLI_REQUIRED),
        CLI_STR("text", 0, &text, "S", "the text"),
        CLI_STR("file", 0, &file, "F", "the text of a file", .flags = CLI_IN),
        CLI_BOOL("special", 0, &special, "apply the post-processor (BOS/EOS)"),
        CLI_OPT_JSON(&json, "print a JSON array"),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {.cmd = "tokenizer encode",
                     .usage = "lmadapt tokenizer encode --tokenizer DIR (--text S | --file F) [--special] [--json]",
                     .about = "Prints the token ids of the text, space-separated on one line (--json: a JSON array).\n",
                     .groups = groups};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (!!text == !!file) return cli_usage_error(spec.cmd, "give exactly one of --text or --file");
    lma_tokenizer *t = NULL;
    if (lma_tok_load(dir, &t) != LMA_OK) return cli_fail(spec.cmd, NULL);
    char *buf = NULL; size_t len = 0;
    if (file) {
        if (lma_read_file(file, &buf, &len) != LMA_OK) { lma_tok_free(t); return cli_fail(spec.cmd, NULL); }
    } else len = strlen(text);
    int32_t *ids = NULL; size_t n = 0;
    lma_status st = lma_tok_encode(t, file ? buf : text, len, special, &ids, &n);
    free(buf);
    lma_tok_free(t);
    if (st != LMA_OK) return cli_fail(spec.cmd, NULL);
    if (json) putchar('[');
    for (size_t i = 0; i < n; i++) printf(i ? (json ? ",%d" : " %d") : "%d", ids[i]);
    printf(json ? "]\n" : "\n");
    free(ids);
    return 0;
}

static int parse_ids(const char *s, int32_t **out, size_t *n) {
    size_t cap = 64; *n = 0;
    *out = malloc(cap * sizeof **out);
    if (!*out) return 0;
    const char *p = s;
    while (*p) {
        if (strchr(" \t\r\n,[]", *p)) { p++; continue; }
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p || v < 0 || v > INT32_MAX) return 0;
        if (*n == cap) { cap *= 2; int32_t *r = realloc(*out, cap * sizeof *r); if (!r) return 0; *out = r; }
        (*out)[(*n)++] = (int32_t)v;
        p = e;
    }
    return 1;
}

static int do_decode(int argc, char **argv) {
    const char *dir = NULL, *idstr = NULL, *file = NULL;
    int skip = 0;
    cli_opt own[] = {
        CLI_STR("tokenizer", 0, &dir, "DIR", TOK_DIR_HELP, .flags = CLI_REQUIRED),
        CLI_STR("ids", 0, &idstr, "\"1 2 3\"", "the ids, separated by spaces, commas or newlines (a JSON array works)"),
        CLI_STR("file", 0, &file, "F", "the ids from a file", .flags = CLI_IN),
        CLI_BOOL("skip-special", 0, &skip, "leave special tokens out of the text"),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {.cmd = "tokenizer decode",
                     .usage = "lmadapt tokenizer decode --tokenizer DIR (--ids \"1 2 3\" | --file F) [--skip-special]",
                     .about = "Prints the text of the ids.\n",
                     .groups = groups};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (!!idstr == !!file) return cli_usage_error(spec.cmd, "give exactly one of --ids or --file");
    char *buf = NULL; size_t len;
    if (file && lma_read_file(file, &buf, &len) != LMA_OK) return cli_fail(spec.cmd, NULL);
    int32_t *ids = NULL; size_t n = 0;
    int ok = parse_ids(file ? buf : idstr, &ids, &n);
    free(buf);
    if (!ok) { free(ids); return cli_usage_error(spec.cmd, "ids must be non-negative integers"); }
    lma_tokenizer *t = NULL;
    if (lma_tok_load(dir, &t) != LMA_OK) { free(ids); return cli_fail(spec.cmd, NULL); }
    char *text = NULL; size_t tl = 0;
    lma_status st = lma_tok_decode(t, ids, n, skip, &text, &tl);
    free(ids);
    lma_tok_free(t);
    if (st != LMA_OK) return cli_fail(spec.cmd, NULL);
    fwrite(text, 1, tl, stdout);
    putchar('\n');
    free(text);
    return 0;
}

static int do_render(int argc, char **argv) {
    const char *dir = NULL, *mfile = NULL, *format = NULL;
    int gen = 0, ids_out = 0;
    cli_opt own[] = {
        CLI_STR("tokenizer", 0, &dir, "DIR", TOK_DIR_HELP, .flags = CLI_REQUIRED),
        CLI_STR("messages", 0, &mfile, "FILE.json", "[{\"role\":..., \"content\":...}, ...] or {\"messages\": [...]}",
                .flags = CLI_REQUIRED),
        CLI_BOOL("generation-prompt", 0, &gen, "end with the assistant turn's opening"),
        CLI_STR("template", 0, &format, "NAME", "chat format: " LMA_CHAT_FORMAT_NAMES,
                .def_text = "the tokenizer's chat_template", .alias = "format"),
        CLI_BOOL("json", 0, &ids_out, "print a JSON object with the ids and the assistant token spans\n"
                 "instead of the text", .alias = "ids"),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {.cmd = "tokenizer render",
                     .usage = "lmadapt tokenizer render --tokenizer DIR --messages FILE.json [--generation-prompt]\n"
                              "       [--template NAME] [--json]",
                     .about = "Prints the chat rendered with the tokenizer's chat_template (or --template), byte for\n"
                              "byte (no newline is added).\n",
                     .groups = groups};
    cli_args a;
    int prc = cli_parse(&spec, argc, argv, &a);
    if (prc != CLI_CONTINUE) return prc;
    cJSON *root = NULL;
    if (lma_json_load(mfile, &root) != LMA_OK) return cli_fail(spec.cmd, NULL);
    const cJSON *arr = cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsArray(arr)) { cJSON_Delete(root); return cli_usage_error(spec.cmd, "%s: expected an array of messages or {\"messages\": [...]}", mfile); }
    size_t n = (size_t)cJSON_GetArraySize(arr), k = 0;
    lma_chat_msg *msgs = calloc(n ? n : 1, sizeof *msgs);
    const cJSON *m;
    cJSON_ArrayForEach(m, arr) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role"), *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(r) || !cJSON_IsString(c)) {
            free(msgs); cJSON_Delete(root);
            fprintf(stderr, "lmadapt tokenizer render: %s: message %zu needs string \"role\" and \"content\"\n", mfile, k);
            return 1;
        }
        msgs[k].role = r->valuestring; msgs[k].content = c->valuestring; k++;
    }
    lma_tokenizer *t = NULL;
    int rc = 0;
    if (lma_tok_load(dir, &t) != LMA_OK) rc = cli_fail(spec.cmd, NULL);
    else if (!ids_out) {
        char *text = NULL; size_t len;
        if (lma_chat_render(t, format, msgs, n, gen, &text, &len, NULL, NULL) != LMA_OK) rc = cli_fail(spec.cmd, NULL);
        else fwrite(text, 1, len, stdout); /* exactly the rendered text, nothing added */
        free(text);
    } else {
        int32_t *ids = NULL; size_t nid = 0, *sp = NULL, nsp = 0;
        if (lma_chat_encode(t, format, msgs, n, gen, &ids, &nid, &sp, &nsp) != LMA_OK) rc = cli_fail(spec.cmd, NULL);
        else {
            printf("{\"ids\":[");
            for (size_t i = 0; i < nid; i++) printf(i ? ",%d" : "%d", ids[i]);
            printf("],\"assistant_spans\":[");
            for (size_t i = 0; i < nsp; i++) printf(i ? ",[%zu,%zu]" : "[%zu,%zu]", sp[2 * i], sp[2 * i + 1]);
            printf("]}\n");
        }
        free(ids); free(sp);
    }
    lma_tok_free(t);
    free(msgs);
    cJSON_Delete(root);
    return rc;
}

static int do_train(int argc, char **argv) {
    lma_bpe_train_params p;
    lma_bpe_train_default_params(&p);
    const char *out = NULL;
    int overwrite = 0;
    int64_t min_freq = p.min_frequency;
    const char **special = calloc((size_t)argc + 1, sizeof *special), **files = calloc((size_t)argc + 1, sizeof *files);
    if (!special || !files) { free(special); free(files); return cli_fail("tokenizer train", "out of memory"); }
    cli_list sl = {special, 0, argc}, fl = {files, 0, argc};
    cli_opt own[] = {
        CLI_INT("vocab-size", 0, &p.vocab_size, 1, 1 << 24, "N", "final vocabulary, special tokens included"),
        CLI_MULTI("special", 0, &sl, "TOKEN", "a special token; they get ids 0, 1, ... in the order given"),
        CLI_I64("min-frequency", 0, &min_freq, 0, INT64_MAX, "N", "merges of pairs seen fewer times are not made"),
        CLI_STR("out", 'o', &out, "DIR", "output folder", .flags = CLI_REQUIRED | CLI_OUT),
        CLI_BOOL("quiet", 0, &p.quiet, "no progress bar"),
        CLI_BOOL("overwrite", 0, &overwrite, "replace --out when it is not empty (written whole, then swapped in)"),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {.cmd = "tokenizer train",
                     .usage = "lmadapt tokenizer train --vocab-size N [--special TOKEN]... [--min-frequency N] --out DIR FILE...",
                     .about = "Trains a byte-level BPE tokenizer (Llama 3 pre-tokenizer) as HF BpeTrainer does and writes\n"
                              "DIR/tokenizer.json + tokenizer_config.json.\n",
                     .groups = groups, .pos_name = "text files", .pos_list = &fl};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) { free(special); free(files); return rc; }
    rc = 0;
    {
        for (int i = 0; i < sl.n; i++)
            if (!*special[i]) rc = cli_usage_error(spec.cmd, "--special needs a token");
        if (!rc && !fl.n) rc = cli_usage_error(spec.cmd, "give at least one text file");
        if (!rc) rc = cli_check_out_dir(spec.cmd, "--out", out, overwrite);
    }
    if (!rc) {
        p.special = special; p.n_special = (size_t)sl.n;
        p.min_frequency = min_freq;
        lma_outdir od;
        lma_status s = lma_outdir_begin(&od, out);
        if (s == LMA_OK) s = lma_bpe_train_files(files, (size_t)fl.n, &p, od.tmp);
        if (s == LMA_OK) s = lma_outdir_commit(&od);
        else lma_outdir_abort(&od);
        if (s != LMA_OK) rc = cli_fail(spec.cmd, NULL);
        else fprintf(stderr, "wrote %s/tokenizer.json and tokenizer_config.json\n", out);
    }
    free(special); free(files);
    return rc;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *act = argv[1];
    if (!strcmp(act, "encode")) return do_encode(argc - 1, argv + 1);
    if (!strcmp(act, "decode")) return do_decode(argc - 1, argv + 1);
    if (!strcmp(act, "render")) return do_render(argc - 1, argv + 1);
    if (!strcmp(act, "train")) return do_train(argc - 1, argv + 1);
    return cli_usage_error("tokenizer", "unknown action '%s' (encode, decode, render, train)", act);
}
