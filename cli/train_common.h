/* What the text-training commands (pretrain, cpt) share: the data options and
 * the run itself (tokenizer, shards, model, loader, trainer, final model dir). */
#ifndef LMA_CLI_TRAIN_COMMON_H
#define LMA_CLI_TRAIN_COMMON_H
#include "data/text_source.h"
#include "train_flags.h"

#define CLI_MAX_PATHS 256
typedef struct {
    const char *paths[CLI_MAX_PATHS];
    cli_list list;            /* --data PATH...: into paths (list.n of them) */
    lma_text_source_params tp;
} cli_data_opts;

void cli_data_opts_init(cli_data_opts *d);
/* --format and --docs, shared by pretrain and cpt: choices into *format (lma_text_format)
 * and *docs (1 paragraphs, 0 files); cli_data_apply copies them into d. */
extern const char *const cli_format_names[];
extern const int cli_format_values[];
extern const char *const cli_docs_names[];
extern const int cli_docs_values[];
void cli_data_apply(cli_data_opts *d, int format, int docs);

typedef struct {
    const char *base_model;   /* cpt: HF model dir to continue from; NULL: from scratch */
    const char *tok_dir;      /* tokenizer dir (pretrain); NULL: base_model's or trained */
    int vocab_size;           /* for a trained tokenizer */
    const char *preset, *config;
    const cli_data_opts *replay; /* cpt: general data replayed against forgetting */
    double replay_ratio;
} cli_run_spec;

/* Writes the tokenizer of src into dst: from an HF folder, tokenizer.json,
 * tokenizer_config.json (and special_tokens_map.json, chat_template.jinja,
 * generation_config.json when present) copied; from a GGUF file, tokenizer.json and
 * tokenizer_config.json synthesized from its metadata (lma_tok_save_files). */
/* "validation loss X", or "no validation set" for NaN (none was run) */
void cli_val_loss_text(float v, char *out, size_t cap);
lma_status cli_copy_tokenizer(const char *src, const char *dst);
/* lma_trainer_params.final_files for a run whose tokenizer comes from ctx (a folder or GGUF path) */
lma_status cli_final_tokenizer(void *ctx, const char *dir);

/* Runs the whole job; returns the exit status (0, 1, 2). */
int cli_run_text_training(const char *cmd, cli_train_opts *to, const cli_data_opts *data, const cli_run_spec *spec);
#endif
