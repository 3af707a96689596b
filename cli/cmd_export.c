/* lmadapt export: a model (HF folder or GGUF) or a LoRA adapter as GGUF for llama.cpp and
 * Ollama, with an Ollama Modelfile beside a model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "format/gguf.h"
#include "model/adapter.h"
#include "model/gguf_model.h"
#include "opts.h"
#include "quant/ggml_quant.h"
#include "tok/chat_template.h"
#include "tok/tokenizer.h"

#define DEFAULT_TYPE "f16"

static const struct { const char *name; uint32_t type; } types[] = {
    {"f32", LMA_GGML_F32}, {"f16", LMA_GGML_F16}, {"bf16", LMA_GGML_BF16}, {"q8_0", LMA_GGML_Q8_0},
    {"q4_0", LMA_GGML_Q4_0}, {"q4_1", LMA_GGML_Q4_1}, {"q5_0", LMA_GGML_Q5_0}, {"q5_1", LMA_GGML_Q5_1},
};

/* The Ollama TEMPLATE (Go template) and stop strings of each chat format. */
static const struct { lma_chat_format f; const char *tmpl; const char *stops[3]; } ollama[] = {
    {LMA_CHAT_CHATML,
     "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}<|im_start|>user\n"
     "{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ .Response }}<|im_end|>\n",
     {"<|im_start|>", "<|im_end|>", NULL}},
    {LMA_CHAT_LLAMA3,
     "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
     "{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}"
     "<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>",
     {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}},
    {LMA_CHAT_LLAMA2,
     "[INST] {{ if .System }}<<SYS>>\n{{ .System }}\n<</SYS>>\n\n{{ end }}{{ .Prompt }} [/INST] {{ .Response }}",
     {"[INST]", "[/INST]", "</s>"}},
    {LMA_CHAT_ZEPHYR,
     "{{ if .System }}<|system|>\n{{ .System }}</s>\n{{ end }}{{ if .Prompt }}<|user|>\n{{ .Prompt }}</s>\n{{ end }}"
     "<|assistant|>\n{{ .Response }}</s>\n",
     {"<|system|>", "<|user|>", "</s>"}},
    {LMA_CHAT_MISTRAL, "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }} [/INST]{{ .Response }}",
     {"[INST]", "[/INST]", "</s>"}},
};

/* appends s to a growing string; 0 on failure */
static int cat(char **buf, size_t *len, size_t *cap, const char *s) {
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *len + n + 1) c *= 2;
        char *b = realloc(*buf, c);
        if (!b) return 0;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
    return 1;
}

/* F.gguf -> F.Modelfile (returns snprintf's count) */
static int modelfile_path(const char *out, char *mf_path, size_t cap) {
    size_t n = strlen(out);
    return snprintf(mf_path, cap, "%.*s.Modelfile", (int)(n > 5 && !strcmp(out + n - 5, ".gguf") ? n - 5 : n), out);
}

/* Ollama Modelfile beside out: FROM ./file, TEMPLATE, SYSTEM (a template's default), stops. */
static lma_status write_modelfile(const char *model, const char *out, char *mf_path, size_t cap) {
    lma_tokenizer *t = NULL;
    LMA_TRY(lma_tok_load(model, &t));
    const char *ct = lma_tok_chat_template(t);
    lma_chat_format f = LMA_CHAT_CHATML;
    char *sys = NULL;
    lma_status s = LMA_OK;
    int have = ct && lma_chat_detect(ct, &f, &sys) == LMA_OK;
    lma_clear_error();
    const char *base = strrchr(out, '/');
    base = base ? base + 1 : out;
    int k = modelfile_path(out, mf_path, cap);
    if (k < 0 || (size_t)k >= cap) { lma_tok_free(t); free(sys); return lma_error(LMA_ERR_ARG, "%s: path too long", out); }
    char *b = NULL;
    size_t len = 0, bcap = 0;
    int ok = cat(&b, &len, &bcap, "# Ollama Modelfile written by lmadapt export: ollama create NAME -f THIS_FILE\nFROM ./") &&
             cat(&b, &len, &bcap, base) && cat(&b, &len, &bcap, "\n");
    for (size_t i = 0; have && ok && i < sizeof ollama / sizeof *ollama; i++) {
        if (ollama[i].f != f) continue;
        ok = cat(&b, &len, &bcap, "TEMPLATE \"\"\"") && cat(&b, &len, &bcap, ollama[i].tmpl) &&
             cat(&b, &len, &bcap, "\"\"\"\n");
        if (ok && sys) ok = cat(&b, &len, &bcap, "SYSTEM \"\"\"") && cat(&b, &len, &bcap, sys) &&
                           cat(&b, &len, &bcap, "\"\"\"\n");
        for (int j = 0; ok && j < 3 && ollama[i].stops[j]; j++)
            ok = cat(&b, &len, &bcap, "PARAMETER stop \"") && cat(&b, &len, &bcap, ollama[i].stops[j]) &&
                 cat(&b, &len, &bcap, "\"\n");
    }
    if (!have && ok) ok = cat(&b, &len, &bcap, "# no chat template recognized: raw completion only\n");
    s = ok ? lma_write_file_atomic(mf_path, b, len) : lma_error(LMA_ERR_NOMEM, "out of memory");
    free(b);
    free(sys);
    lma_tok_free(t);
    return s;
}

static const char *const type_names[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", NULL};
static const char *const format_names[] = {"gguf", NULL};

int cmd_export(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *out = NULL, *name = NULL;
    int type_i = 0, format = 0;
    for (int i = 0; type_names[i]; i++) if (!strcmp(type_names[i], DEFAULT_TYPE)) type_i = i;
    cli_opt own[] = {
        CLI_OPT_MODEL(&model, "HF model folder, .gguf file or short name (e.g. smollm2-135m-instruct)"),
        CLI_STR("adapter", 0, &adapter, "DIR", "PEFT LoRA adapter folder (trained on --model): export the adapter",
                .flags = CLI_IN),
        CLI_STR("out", 'o', &out, "F.gguf", "output file", .flags = CLI_REQUIRED | CLI_OUT),
        CLI_CHOOSE("type", 0, &type_i, type_names, NULL, "T", "f32 | f16 | bf16 | q8_0 | q4_0 (also q4_1, q5_0, q5_1) for the\n"
                   "matrices; norms and biases stay f32 (f16 as llama.cpp's converter)"),
        CLI_CHOOSE("format", 0, &format, format_names, NULL, NULL, "the output format (gguf, the only one)"),
        CLI_STR("name", 0, &name, "S", "general.name", .def_text = "the model's file or folder name"),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "export",
        .usage = "lmadapt export --model M --out F.gguf [--type T] [--name S]\n"
                 "       lmadapt export --model BASE --adapter DIR --out A.gguf",
        .about = "Writes a GGUF file that llama.cpp, Ollama and LM Studio run (and lmadapt reads back):\n"
                 "llama.cpp's metadata keys and tensor names, Q/K rows in llama.cpp's order, the tokenizer\n"
                 "(tokens, merges or scores, token types, BOS/EOS) and the chat template. Beside a model it\n"
                 "writes F.Modelfile for `ollama create NAME -f F.Modelfile` (FROM, TEMPLATE, stop strings).\n"
                 "With --adapter it writes the LoRA adapter alone, as `llama-cli -m BASE.gguf --lora A.gguf`\n"
                 "reads it (BASE.gguf: this model exported). Every file is written atomically.\n",
        .groups = groups,
        .epilog = "Error of the types on SmolLM2-135M (docs/models.md): f32 exact, bf16/f16 and q8_0 small,\n"
                  "q4_0 the largest.\n\n"
                  "Examples:\n"
                  "  lmadapt export --model smollm2-135m-instruct --type q8_0 --out smollm2-q8.gguf\n"
                  "  lmadapt export --model runs/sft/final --out tuned.gguf\n"
                  "  lmadapt export --model smollm2-135m-instruct --adapter runs/lora/final --out lora.gguf\n"};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    const char *type_s = type_names[type_i];
    uint32_t type = types[type_i].type;
    if (adapter && type != LMA_GGML_F32 && cli_given(&a, "type"))
        return cli_usage_error("export", "--type: an adapter is written in f32");
    if (cli_resolve_model("export", &model)) return 1;
    if (lma_is_dir(out)) return cli_usage_error("export", "--out %s is a folder: give a file name (F.gguf)", out);
    lma_model *m = NULL;
    lma_gguf_writer *w = NULL;
    rc = 1;
    if (lma_model_load_ex(model, lma_backend_cpu(), 0, &m) != LMA_OK || lma_gguf_writer_new(&w) != LMA_OK) goto done;
    if (adapter) {
        if (lma_adapter_load(m, adapter) != LMA_OK || lma_adapter_save_gguf(m, w, out) != LMA_OK) goto done;
        printf("export: adapter %s (r %d) -> %s\n", adapter, m->lora->p.r, out);
        rc = 0;
        goto done;
    }
    if (!name) {
        const char *b = strrchr(model, '/');
        name = b && b[1] ? b + 1 : model;
    }
    if (lma_gguf_set_str(w, "general.type", "model") != LMA_OK || lma_gguf_set_str(w, "general.name", name) != LMA_OK)
        goto done;
    if (lma_tok_gguf_meta(model, w) != LMA_OK || lma_model_save_gguf(m, w, out, type) != LMA_OK) goto done;
    char mf[4200];
    if (write_modelfile(model, out, mf, sizeof mf) != LMA_OK) goto done;
    printf("export: %s (%s) -> %s, %s\n", model, type_s, out, mf);
    rc = 0;
done:
    if (rc) cli_fail("export", NULL);
    lma_gguf_writer_free(w);
    lma_model_free(m);
    return rc;
}
