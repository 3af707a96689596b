/* lmadapt tokenizer encode|decode|train|render: Hugging Face tokenizers in C. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "core/json.h"
#include "tok/bpe_train.h"
#include "tok/chat_template.h"
#include "tok/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f,
        "Usage: lmadapt tokenizer <action> [options]\n\n"
        "Actions:\n"
        "  encode --tokenizer DIR (--text S | --file F) [--special] [--json]\n"
        "      Print the token ids of the text, space-separated on one line (--json: a JSON\n"
        "      array). --special applies the post-processor (BOS/EOS).\n"
        "  decode --tokenizer DIR (--ids \"1 2 3\" | --file F) [--skip-special]\n"
        "      Print the text of the ids (separated by spaces, commas or newlines; a JSON array works).\n"
        "  render --tokenizer DIR --messages FILE.json [--generation-prompt] [--format NAME] [--ids]\n"
        "      Print the chat rendered with the tokenizer's chat_template (or --format: %s),\n"
        "      byte for byte (no newline is added).\n"
        "      FILE.json holds [{\"role\":..., \"content\":...}, ...] or {\"messages\": [...]}.\n"
        "      --ids prints a JSON object with the ids and the assistant token spans instead.\n"
        "  train --vocab-size N [--special TOKEN]... [--min-frequency N] --out DIR FILE...\n"
        "      Train a byte-level BPE tokenizer (Llama 3 pre-tokenizer) as HF BpeTrainer does and\n"
        "      write DIR/tokenizer.json + tokenizer_config.json. --special may be repeated; the\n"
        "      special tokens get ids 0, 1, ... in the order given.\n\n"
        "DIR is a Hugging Face model folder (tokenizer.json, tokenizer_config.json), a .gguf file\n"
           "(its tokenizer metadata) or a short model name (docs/models.md).\n"
        "Example: lmadapt tokenizer encode --tokenizer models/tiny --text \"Hello world\" --special\n",
        LMA_CHAT_FORMAT_NAMES);
}

static const char *need(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) return NULL;
    return argv[++*i];
}

static int do_encode(int argc, char **argv) {
    const char *dir = NULL, *text = NULL, *file = NULL;
    int special = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tokenizer")) { if (!(dir = need(argc, argv, &i))) return cli_usage_error("tokenizer", "--tokenizer needs a directory"); }
        else if (!strcmp(a, "--text")) { if (!(text = need(argc, argv, &i))) return cli_usage_error("tokenizer", "--text needs a string"); }
        else if (!strcmp(a, "--file")) { if (!(file = need(argc, argv, &i))) return cli_usage_error("tokenizer", "--file needs a path"); }
        else if (!strcmp(a, "--special")) special = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else return cli_usage_error("tokenizer", "encode: unknown option '%s'", a);
    }
    if (!dir) return cli_usage_error("tokenizer", "encode needs --tokenizer DIR");
    if (!!text == !!file) return cli_usage_error("tokenizer", "encode needs exactly one of --text or --file");
    lma_tokenizer *t = NULL;
    if (lma_tok_load(dir, &t) != LMA_OK) return cli_fail("tokenizer", NULL);
    char *buf = NULL; size_t len = 0;
    if (file) {
        if (lma_read_file(file, &buf, &len) != LMA_OK) { lma_tok_free(t); return cli_fail("tokenizer", NULL); }
    } else len = strlen(text);
    int32_t *ids = NULL; size_t n = 0;
    lma_status st = lma_tok_encode(t, file ? buf : text, len, special, &ids, &n);
    free(buf);
    lma_tok_free(t);
    if (st != LMA_OK) return cli_fail("tokenizer", NULL);
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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tokenizer")) { if (!(dir = need(argc, argv, &i))) return cli_usage_error("tokenizer", "--tokenizer needs a directory"); }
        else if (!strcmp(a, "--ids")) { if (!(idstr = need(argc, argv, &i))) return cli_usage_error("tokenizer", "--ids needs a list"); }
        else if (!strcmp(a, "--file")) { if (!(file = need(argc, argv, &i))) return cli_usage_error("tokenizer", "--file needs a path"); }
        else if (!strcmp(a, "--skip-special")) skip = 1;
        else return cli_usage_error("tokenizer", "decode: unknown option '%s'", a);
    }
    if (!dir) return cli_usage_error("tokenizer", "decode needs --tokenizer DIR");
    if (!!idstr == !!file) return cli_usage_error("tokenizer", "decode needs exactly one of --ids or --file");
    char *buf = NULL; size_t len;
    if (file && lma_read_file(file, &buf, &len) != LMA_OK) return cli_fail("tokenizer", NULL);
    int32_t *ids = NULL; size_t n = 0;
    int ok = parse_ids(file ? buf : idstr, &ids, &n);
    free(buf);
    if (!ok) { free(ids); return cli_usage_error("tokenizer", "decode: ids must be non-negative integers"); }
    lma_tokenizer *t = NULL;
    if (lma_tok_load(dir, &t) != LMA_OK) { free(ids); return cli_fail("tokenizer", NULL); }
    char *text = NULL; size_t tl = 0;
    lma_status st = lma_tok_decode(t, ids, n, skip, &text, &tl);
    free(ids);
    lma_tok_free(t);
    if (st != LMA_OK) return cli_fail("tokenizer", NULL);
    fwrite(text, 1, tl, stdout);
    putchar('\n');
    free(text);
    return 0;
}

static int do_render(int argc, char **argv) {
    const char *dir = NULL, *mfile = NULL, *format = NULL;
    int gen = 0, ids_out = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tokenizer")) { if (!(dir = need(argc, argv, &i))) return cli_usage_error("tokenizer", "--tokenizer needs a directory"); }
        else if (!strcmp(a, "--messages")) { if (!(mfile = need(argc, argv, &i))) return cli_usage_error("tokenizer", "--messages needs a file"); }
        else if (!strcmp(a, "--format")) { if (!(format = need(argc, argv, &i))) return cli_usage_error("tokenizer", "--format needs a name (%s)", LMA_CHAT_FORMAT_NAMES); }
        else if (!strcmp(a, "--generation-prompt")) gen = 1;
        else if (!strcmp(a, "--ids")) ids_out = 1;
        else return cli_usage_error("tokenizer", "render: unknown option '%s'", a);
    }
    if (!dir || !mfile) return cli_usage_error("tokenizer", "render needs --tokenizer DIR and --messages FILE.json");
    cJSON *root = NULL;
    if (lma_json_load(mfile, &root) != LMA_OK) return cli_fail("tokenizer", NULL);
    const cJSON *arr = cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsArray(arr)) { cJSON_Delete(root); return cli_usage_error("tokenizer", "%s: expected an array of messages or {\"messages\": [...]}", mfile); }
    size_t n = (size_t)cJSON_GetArraySize(arr), k = 0;
    lma_chat_msg *msgs = calloc(n ? n : 1, sizeof *msgs);
    const cJSON *m;
    cJSON_ArrayForEach(m, arr) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role"), *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(r) || !cJSON_IsString(c)) {
            free(msgs); cJSON_Delete(root);
            fprintf(stderr, "lmadapt tokenizer: %s: message %zu needs string \"role\" and \"content\"\n", mfile, k);
            return 1;
        }
        msgs[k].role = r->valuestring; msgs[k].content = c->valuestring; k++;
    }
    lma_tokenizer *t = NULL;
    int rc = 0;
    if (lma_tok_load(dir, &t) != LMA_OK) rc = cli_fail("tokenizer", NULL);
    else if (!ids_out) {
        char *text = NULL; size_t len;
        if (lma_chat_render(t, format, msgs, n, gen, &text, &len, NULL, NULL) != LMA_OK) rc = cli_fail("tokenizer", NULL);
        else fwrite(text, 1, len, stdout); /* exactly the rendered text, nothing added */
        free(text);
    } else {
        int32_t *ids = NULL; size_t nid = 0, *sp = NULL, nsp = 0;
        if (lma_chat_encode(t, format, msgs, n, gen, &ids, &nid, &sp, &nsp) != LMA_OK) rc = cli_fail("tokenizer", NULL);
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
    const char **special = calloc((size_t)argc, sizeof *special), **files = calloc((size_t)argc, sizeof *files);
    size_t ns = 0, nf = 0;
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--vocab-size")) {
            char *e;
            if (!(v = need(argc, argv, &i)) || (p.vocab_size = (int)strtol(v, &e, 10)) <= 0 || *e)
                rc = cli_usage_error("tokenizer", "--vocab-size needs a positive integer");
        } else if (!strcmp(a, "--min-frequency")) {
            char *e;
            if (!(v = need(argc, argv, &i)) || (p.min_frequency = strtoll(v, &e, 10)) < 0 || *e)
                rc = cli_usage_error("tokenizer", "--min-frequency needs a non-negative integer");
        } else if (!strcmp(a, "--special")) {
            if (!(v = need(argc, argv, &i)) || !*v) rc = cli_usage_error("tokenizer", "--special needs a token");
            else special[ns++] = v;
        } else if (!strcmp(a, "--out")) {
            if (!(out = need(argc, argv, &i))) rc = cli_usage_error("tokenizer", "--out needs a directory");
        } else if (!strcmp(a, "--quiet")) p.quiet = 1;
        else if (a[0] == '-' && a[1]) rc = cli_usage_error("tokenizer", "train: unknown option '%s'", a);
        else files[nf++] = a;
    }
    if (!rc && (!out || !nf)) rc = cli_usage_error("tokenizer", "train needs --out DIR and at least one text file");
    if (!rc) {
        p.special = special; p.n_special = ns;
        if (lma_bpe_train_files(files, nf, &p, out) != LMA_OK) rc = cli_fail("tokenizer", NULL);
        else fprintf(stderr, "wrote %s/tokenizer.json and tokenizer_config.json\n", out);
    }
    free(special); free(files);
    return rc;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) { usage(argc < 2 ? stderr : stdout); return argc < 2 ? 2 : 0; }
    if (cli_wants_help(argc, argv)) { usage(stdout); return 0; }
    const char *act = argv[1];
    if (!strcmp(act, "encode")) return do_encode(argc - 1, argv + 1);
    if (!strcmp(act, "decode")) return do_decode(argc - 1, argv + 1);
    if (!strcmp(act, "render")) return do_render(argc - 1, argv + 1);
    if (!strcmp(act, "train")) return do_train(argc - 1, argv + 1);
    return cli_usage_error("tokenizer", "unknown action '%s' (encode, decode, render, train)", act);
}
