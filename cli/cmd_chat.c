/* lmadapt chat: an interactive conversation with a model, rendered with its
 * chat template. Reads one user turn per line from stdin (a terminal or a pipe). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "core/threads.h"
#include "infer/generate.h"
#include "opts.h"
#include "sampling.h"
#include "model/adapter.h"
#include "tok/chat_template.h"

typedef struct { lma_chat_msg *m; char **own; size_t n, cap; } history;

static int hist_add(history *h, const char *role, const char *text, size_t len) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 16;
        lma_chat_msg *m = realloc(h->m, nc * sizeof *m);
        char **o = realloc(h->own, nc * sizeof *o);
        if (m) h->m = m;
        if (o) h->own = o;
        if (!m || !o) return 0;
        h->cap = nc;
    }
    char *c = malloc(len + 1);
    if (!c) return 0;
    memcpy(c, text, len);
    c[len] = 0;
    h->own[h->n] = c;
    h->m[h->n].role = role;
    h->m[h->n].content = c;
    h->n++;
    return 1;
}

static void hist_reset(history *h, const char *system) {
    for (size_t i = 0; i < h->n; i++) free(h->own[i]);
    h->n = 0;
    if (system && *system) hist_add(h, "system", system, strlen(system));
}

static void out_text(void *ctx, const char *t, size_t n) {
    (void)ctx;
    fwrite(t, 1, n, stdout);
    fflush(stdout);
}

int cmd_chat(int argc, char **argv) {
    const char *model = NULL, *system = NULL, *tmpl = NULL, *device = NULL, *adapter = NULL;
    int threads = 0, dequantize = 0;
    cli_sampling smp;
    cli_sampling_init(&smp, 256, 0.7f);
    cli_opt own[] = {
        CLI_OPT_MODEL(&model, "HF model folder, .gguf file or short name (docs/models.md),\n"
                      "with a chat template"),
        CLI_OPT_ADAPTER(&adapter),
        CLI_STR("system", 0, &system, "S", "system prompt"),
        CLI_OPT_TEMPLATE(&tmpl),
        CLI_OPT_THREADS(&threads),
        CLI_OPT_DEVICE(&device),
        CLI_OPT_DEQUANTIZE(&dequantize),
        CLI_END};
    cli_opt samp[CLI_SAMPLING_NOPTS];
    cli_sampling_table(&smp, CLI_SAMPLING_STOP | CLI_SAMPLING_FORMAT, samp);
    cli_group groups[] = {{NULL, own}, {"Sampling (per reply):", samp}, {0}};
    cli_spec spec = {
        .cmd = "chat",
        .usage = "lmadapt chat --model M [--system S] [--template NAME] [sampling options]",
        .about = "Talks with a chat model: each line you type is a user turn; the reply streams back.\n"
                 "The conversation is rendered with the model's chat template (or --template: llama2,\n"
                 "llama3, chatml, zephyr, mistral) exactly as transformers' apply_chat_template does.\n"
                 "Replies stop at the end-of-turn token of the template, an EOS id or a --stop string.\n\n"
                 "Commands: /reset (forget the conversation), /system TEXT (set the system prompt and\n"
                 "reset), /exit (or end of input).\n",
        .groups = groups};
    cli_args a;
    int prc = cli_parse(&spec, argc, argv, &a);
    if (prc != CLI_CONTINUE) return prc;
    if (cli_resolve_model("chat", &model)) return 1;
    cli_sampling_finish(&smp);
    lma_gen_params gp = smp.gp;
    lma_threads_set(threads);
    const lma_backend *be = cli_backend("chat", device);
    if (!be) return 1;
    lma_tokenizer *tok = NULL;
    lma_model *m = NULL;
    if (lma_tok_load(model, &tok) != LMA_OK || lma_model_load_ex(model, be, CLI_INFER_FLAGS(dequantize), &m) != LMA_OK ||
        (adapter && lma_adapter_load(m, adapter) != LMA_OK)) {
        cli_fail("chat", NULL);
        lma_model_free(m);
        lma_tok_free(tok);
        return 1;
    }
    { /* a model without a usable template stops here, not at every turn */
        lma_chat_msg probe = {"user", "hello"};
        char *text = NULL;
        size_t len = 0, *spans = NULL, nsp = 0;
        lma_status ts = lma_chat_render(tok, tmpl, &probe, 1, 1, &text, &len, &spans, &nsp);
        free(text);
        free(spans);
        if (ts != LMA_OK) {
            cli_fail("chat", NULL);
            lma_model_free(m);
            lma_tok_free(tok);
            return 1;
        }
    }
    /* stop at EOS ids and at the end-of-turn markers the templates use */
    int32_t stops[16];
    int ns = lma_chat_stop_ids(model, &m->cfg, tok, stops, 16);
    gp.stop_ids = stops;
    gp.n_stop_ids = ns;
    if (cli_sampling_constraint(&smp, tok) != LMA_OK) {
        cli_fail("chat", NULL);
        lma_model_free(m);
        lma_tok_free(tok);
        return 1;
    }
    gp.constraint = smp.gp.constraint;
    gp.on_text = out_text;
    int tty = isatty(0);
    history h = {0};
    hist_reset(&h, system);
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    if (tty) printf("lmadapt chat: %s (/reset, /system TEXT, /exit)\n", model);
    for (;;) {
        if (tty) { printf("> "); fflush(stdout); }
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) { hist_reset(&h, system); printf("[conversation reset]\n"); continue; }
        if (!strncmp(line, "/system ", 8)) {
            static char sys_buf[4096];
            snprintf(sys_buf, sizeof sys_buf, "%s", line + 8);
            system = sys_buf;
            hist_reset(&h, system);
            printf("[system prompt set; conversation reset]\n");
            continue;
        }
        if (!hist_add(&h, "user", line, (size_t)n)) { rc = cli_fail("chat", "out of memory"); break; }
        int32_t *ids = NULL;
        size_t nids = 0, *spans = NULL, nsp = 0;
        if (lma_chat_encode(tok, tmpl, h.m, h.n, 1, &ids, &nids, &spans, &nsp) != LMA_OK) {
            rc = cli_fail("chat", NULL); /* the turn is dropped; the exit status says one failed */
            lma_clear_error();
            free(h.own[--h.n]); /* drop the turn the template refused */
            continue;
        }
        free(spans);
        lma_gen_result r;
        lma_status s = lma_generate(m, tok, ids, nids, &gp, &r);
        free(ids);
        if (s != LMA_OK) { rc = cli_fail("chat", NULL); break; }
        printf("\n");
        fflush(stdout);
        int ok = hist_add(&h, "assistant", r.text ? r.text : "", r.text ? r.len : 0);
        free(r.ids);
        free(r.text);
        if (!ok) { rc = cli_fail("chat", "out of memory"); break; }
    }
    free(line);
    hist_reset(&h, NULL);
    free(h.m);
    free(h.own);
    lma_model_free(m);
    lma_tok_free(tok);
    cli_sampling_free(&smp);
    return rc;
}
