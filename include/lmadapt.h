/* lmadapt — adapting large language models, in C.
 *
 * The public API: what a program outside the tree builds against after
 * `cmake --install` (docs/api.md):
 *
 *     cc use.c $(pkg-config --cflags --libs lmadapt)
 *
 * or, from CMake, find_package(lmadapt) and target_link_libraries(... lmadapt::lmadapt).
 *
 * Conventions
 * - Errors. Every function that can fail returns lma_status (LMA_OK = 0). On
 *   failure the library keeps a one-line message for the calling thread,
 *   lma_last_error() (the first error since the last lma_clear_error(): the deepest
 *   layer names the file, key or tensor at fault). Outputs are left NULL / 0 on
 *   failure. The library never prints to stdout and never exits; it logs to stderr
 *   (LMA_LOG=error|warn|info|debug, default info; LMA_QUIET=1: no progress bars).
 * - Ownership. A handle returned through `**out` by *_load is freed by the matching
 *   *_free; *_free(NULL) is a no-op. Arrays and strings returned through `**` out
 *   parameters are malloc'd and owned by the caller: free them with free() or
 *   lma_free(). Strings returned as `const char *` belong to the library (or the
 *   handle they came from) and must not be freed.
 * - Threads. lma_last_error() is per thread. A loaded tokenizer may be used from
 *   several threads at once. A model may not: calls on one lma_model must not
 *   overlap (scoring and generation use its scratch); different models are
 *   independent. Compute uses OpenMP threads (lma_set_threads, or LMA_THREADS;
 *   default all cores).
 * - Token ids are int32_t (int on every platform lmadapt builds on).
 * - Paths. A model is an HF folder (config.json + safetensors), a GGUF file, or the
 *   short name of a model fetched into the model cache
 *   (${LMA_HOME:-$HOME/.cache/lmadapt}/models/<name>, scripts/fetch-models.sh),
 *   such as "smollm2-135m-instruct".
 */
#ifndef LMADAPT_H
#define LMADAPT_H

#include <stddef.h>
#include <stdint.h>

#define LMA_VERSION_MAJOR 0
#define LMA_VERSION_MINOR 1
#define LMA_VERSION_PATCH 0
#define LMA_VERSION_STRING "0.1.0"

/* Exported from the shared library (built with -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define LMA_API __attribute__((visibility("default")))
#else
#define LMA_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LMA_OK = 0,
    LMA_ERR_IO,          /* file missing, unreadable, unwritable, disk full */
    LMA_ERR_FORMAT,      /* malformed input: JSON, safetensors, config, text */
    LMA_ERR_UNSUPPORTED, /* well-formed but outside what lmadapt supports */
    LMA_ERR_ARG,         /* bad argument from the caller */
    LMA_ERR_NOMEM,       /* allocation failed */
    LMA_ERR_SHAPE,       /* tensor shapes disagree */
    LMA_ERR_NUMERIC,     /* NaN/Inf where a finite number is required */
    LMA_ERR_INTERRUPTED, /* stopped on request (Ctrl-C, or a callback asked to stop) */
    LMA_ERR_INTERNAL     /* a bug: please report */
} lma_status;

/* ---- version, errors, settings ------------------------------------------------ */

/* The library's version string ("0.1.0"): compare with LMA_VERSION_STRING to detect
 * a header / library mismatch. */
LMA_API const char *lma_version(void);
/* A short name of a status ("ok", "i/o error", ...); never NULL. */
LMA_API const char *lma_status_name(lma_status s);
/* The message of the first error since the last lma_clear_error() on this thread
 * ("" when none). Valid until the next call into the library on this thread. */
LMA_API const char *lma_last_error(void);
LMA_API void lma_clear_error(void);
/* Frees memory the library handed over (ids, text, ...); same as free(). */
LMA_API void lma_free(void *p);
/* Compute threads (OpenMP) for every later call; n <= 0: all cores. Returns the count in force. */
LMA_API int lma_set_threads(int n);

/* ---- models ------------------------------------------------------------------- */

/* A Llama-family model (Llama 2/3, Mistral, Qwen2/3, TinyLlama, SmolLM) in memory. */
typedef struct lma_model lma_model;

/* Loads a model: path_or_name is an HF folder, a GGUF file (F32/F16/BF16/Q8_0/Q4_x/Q5_x/
 * Q2_K..Q6_K, dequantized to fp32) or a short name (see "Paths" above). device: "cpu",
 * "cpu-bf16" (the GEMMs' products in bf16), "cuda" (bf16 compute, fp32 master weights),
 * "cuda-fp32", or NULL for the default (cuda
 * when an NVIDIA GPU and the CUDA plugin are present, else cpu). The weights are kept in
 * fp32, so the model can be trained (lma_train) as well as run.
 * Failure: LMA_ERR_IO (missing path, unknown name), LMA_ERR_FORMAT, LMA_ERR_UNSUPPORTED
 * (architecture, tensor type, unknown device or no GPU), LMA_ERR_NOMEM; *out = NULL. */
LMA_API lma_status lma_model_load(const char *path_or_name, const char *device, lma_model **out);
LMA_API void lma_model_free(lma_model *m);
LMA_API int lma_model_n_vocab(const lma_model *m);     /* embedding rows */
LMA_API int lma_model_n_ctx(const lma_model *m);       /* max_position_embeddings */
LMA_API size_t lma_model_n_params(const lma_model *m); /* base model parameters (no adapter) */
LMA_API const char *lma_model_device(const lma_model *m); /* "cpu", "cpu-bf16", "cuda", "cuda-fp32" */
/* Writes the base weights as an HF folder (config.json + model.safetensors, sharded above
 * max_shard_bytes, 0 = one file; bf16 != 0 stores BF16). An attached adapter is not
 * included: merge it first (lma_adapter_merge) or save it (lma_adapter_save). */
LMA_API lma_status lma_model_save(const lma_model *m, const char *dir, int bf16, size_t max_shard_bytes);

/* Scores a token sequence: logprobs[i] = log p(ids[i+1] | ids[0..i]) for i in [0, n-1),
 * natural log, fp32. n >= 2 and every id < lma_model_n_vocab; logprobs has room for
 * n - 1 floats (caller-owned). The sum of -logprobs is the NLL, exp(NLL / (n-1)) the
 * perplexity. Failure: LMA_ERR_ARG (n < 2, id out of range), LMA_ERR_NOMEM. */
LMA_API lma_status lma_score_ids(lma_model *m, const int *ids, int n, float *logprobs);
/* exp(-mean(logprobs[0..n))): the perplexity of n scored tokens (NaN when n < 1). */
LMA_API double lma_perplexity(const float *logprobs, int n);

/* ---- adapters (PEFT LoRA folders: adapter_config.json + adapter_model.safetensors) ---- */

/* Attaches the adapter in dir to m (which must have none); scoring, generation and
 * training then go through it. Failure: LMA_ERR_UNSUPPORTED names the config key. */
LMA_API lma_status lma_adapter_load(lma_model *m, const char *dir);
/* Writes m's attached adapter to dir (PEFT layout, readable by peft and lmadapt);
 * base_name goes to base_model_name_or_path (may be NULL). */
LMA_API lma_status lma_adapter_save(const lma_model *m, const char *dir, const char *base_name);
/* W += scale * B A for every adapted projection, then detaches the adapter. */
LMA_API lma_status lma_adapter_merge(lma_model *m);

/* ---- tokenizers (Hugging Face tokenizer.json, bit-exact; GGUF tokenizer metadata) ---- */

typedef struct lma_tokenizer lma_tokenizer;

/* where: an HF folder (tokenizer.json, tokenizer_config.json), a GGUF file or a short name. */
LMA_API lma_status lma_tok_load(const char *where, lma_tokenizer **out);
LMA_API void lma_tok_free(lma_tokenizer *t);
/* Tokenizes len bytes of UTF-8 text (invalid UTF-8 is replaced as Python's
 * decode('utf-8', 'replace') does). add_special: apply the post-processor (BOS/EOS).
 * *ids malloc'd (caller frees), *n_ids tokens. */
LMA_API lma_status lma_tok_encode(const lma_tokenizer *t, const char *text, size_t len, int add_special,
                                  int32_t **ids, size_t *n_ids);
/* Decodes ids (skip_special: drop special tokens). *text malloc'd, NUL-terminated; *len
 * excludes the NUL. An id outside the vocabulary is LMA_ERR_ARG. */
LMA_API lma_status lma_tok_decode(const lma_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                                  char **text, size_t *len);
LMA_API int lma_tok_vocab_size(const lma_tokenizer *t); /* max id + 1 */
LMA_API int32_t lma_tok_token_to_id(const lma_tokenizer *t, const char *token); /* -1 when absent */
LMA_API const char *lma_tok_id_to_token(const lma_tokenizer *t, int32_t id);    /* NULL when absent */
LMA_API int lma_tok_is_special(const lma_tokenizer *t, int32_t id);
LMA_API int32_t lma_tok_bos_id(const lma_tokenizer *t); /* -1 when not set */
LMA_API int32_t lma_tok_eos_id(const lma_tokenizer *t); /* -1 when not set */
LMA_API const char *lma_tok_chat_template(const lma_tokenizer *t); /* Jinja text, or NULL */

/* ---- chat templates ----------------------------------------------------------- */

typedef struct {
    const char *role;    /* "system" | "user" | "assistant" */
    const char *content; /* UTF-8, NUL-terminated */
} lma_chat_msg;

/* Renders msgs as transformers' apply_chat_template does for the supported formats
 * (llama2, llama3, chatml, zephyr, mistral). spec: a format name, a Jinja chat_template
 * to recognize, or NULL for the tokenizer's own template (t may be NULL with a name).
 * add_generation_prompt: end with the assistant header. *text malloc'd. spans (may be
 * NULL): (n_spans, 2) malloc'd byte ranges [start, end) of each assistant message's
 * content plus its end-of-turn marker. The text already holds BOS where the template
 * writes it: tokenize it with lma_tok_encode(..., add_special = 0, ...).
 * Failure: LMA_ERR_UNSUPPORTED (a template it does not recognize, or none), LMA_ERR_ARG
 * (an unknown format name, roles the template refuses). */
LMA_API lma_status lma_chat_render(const lma_tokenizer *t, const char *spec, const lma_chat_msg *msgs, size_t n,
                                   int add_generation_prompt, char **text, size_t *len, size_t **spans,
                                   size_t *n_spans);

/* ---- generation (KV cache, transformers' sampling semantics) -------------------- */

/* Called once per generated token, in order: id is the token, text / len the decoded text
 * that became final with it (len may be 0: an incomplete UTF-8 sequence, or bytes held
 * back while they could still start a stop string). After the last token, held-back
 * text comes in one more call with id = -1. The concatenated texts equal the returned
 * text. Not called for a stop token. Return 0 to go on, non-zero to stop after this
 * token (the call then returns LMA_OK). */
typedef int (*lma_token_callback)(void *user_data, int32_t id, const char *text, size_t len);

typedef struct {
    int max_tokens;           /* tokens to generate at most (default 256) */
    float temperature;        /* 0: greedy (default 0) */
    int top_k;                /* 0: off (default) */
    float top_p;              /* 1: off (default) */
    float min_p;              /* 0: off (default) */
    float repetition_penalty; /* 1: off (default) */
    uint64_t seed;            /* sampling RNG seed (default 0) */
    /* Stop tokens. NULL (default): the model's eos ids (generation_config.json, else
     * config.json), the tokenizer's eos and the templates' end-of-turn tokens
     * (<|eot_id|>, <|im_end|>, </s>, <|end_of_text|>) where the vocabulary has them.
     * Non-NULL with n_stop_ids = 0: no stop token. */
    const int32_t *stop_ids;
    int n_stop_ids;
    const char *const *stop_strings; /* the text is cut before the first match; may be NULL */
    int n_stop_strings;
    lma_token_callback on_token;     /* may be NULL */
    void *user_data;
} lma_generate_params;

LMA_API lma_generate_params lma_generate_default_params(void);
/* Generates a continuation of prompt (n_prompt >= 1 ids). tok may be NULL (then no text,
 * no stop strings, no default stop tokens but the model's eos; the callback gets text
 * NULL / 0). Outputs, each optional (NULL): *text (malloc'd, NUL-terminated, cut before
 * a stop string) and *len; *ids (malloc'd: the generated ids, a final stop token
 * included, as transformers returns them) and *n_ids. */
LMA_API lma_status lma_generate_text(lma_model *m, const lma_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                                     const lma_generate_params *p, char **text, size_t *len, int32_t **ids,
                                     size_t *n_ids);
/* Continuations of n prompts generated together: up to max_active sequences share each
 * decode step (continuous batching: a finished one's place goes to the next prompt), each
 * with its own KV cache, the same p for all (on_token is not called). The outputs are arrays
 * of n, each optional (NULL): texts[i] / lens[i], ids[i] / n_ids[i] (malloc'd, the caller
 * frees each) are what lma_generate_text gives for prompt i alone, up to the float rounding
 * of the batched matmuls. On failure nothing is left to free. */
LMA_API lma_status lma_generate_batch_text(lma_model *m, const lma_tokenizer *tok, const int32_t *const *prompts,
                                           const size_t *n_prompts, size_t n, int max_active,
                                           const lma_generate_params *p, char **texts, size_t *lens, int32_t **ids,
                                           size_t *n_ids);

/* ---- training ------------------------------------------------------------------ */

typedef enum {
    LMA_TRAIN_TEXT = 0, /* causal LM on plain text (continued pretraining): data is a text
                           file, a folder of them, or JSONL with a "text" field; documents
                           are split at blank lines, tokenized with EOS between them, packed */
    LMA_TRAIN_CHAT      /* supervised fine-tuning: data is JSONL chat records (OpenAI
                           {"messages"}, Alpaca, ShareGPT, {"prompt","completion"}) rendered
                           with the chat template; loss on the assistant turns */
} lma_train_kind;

/* What the progress callback sees after each optimizer step. */
typedef struct {
    int step, steps;     /* this step (1-based) of steps */
    float loss;          /* mean training loss of the step */
    float val_loss;      /* validation loss on evaluation steps, else NaN */
    float grad_norm;     /* global gradient norm before clipping (NaN for a skipped step) */
    double lr;           /* learning rate of the step */
    double tokens_per_s; /* throughput of the step */
    int skipped;         /* 1: the update was skipped (non-finite loss/gradient, loss spike) */
} lma_train_progress;

/* Return 0 to go on, non-zero to stop: a checkpoint is saved and lma_train returns
 * LMA_ERR_INTERRUPTED. */
typedef int (*lma_train_callback)(void *user_data, const lma_train_progress *p);

typedef struct {
    lma_train_kind kind;      /* default LMA_TRAIN_TEXT */
    const char *data;         /* training data (see lma_train_kind); required */
    const char *val_data;     /* CHAT: validation JSONL (optional); TEXT: unused (see val_fraction) */
    double val_fraction;      /* TEXT: share of documents held out for validation (default 0) */
    const char *out_dir;      /* run folder, required: metrics.jsonl, ckpt-<step>/, final/ */
    const char *chat_template;/* CHAT: format name or Jinja text; NULL: the tokenizer's */
    int all_tokens;           /* CHAT: loss on every token, not only assistant turns */
    int steps;                /* optimizer steps (default 100) */
    int batch, seq, accum;    /* micro-batch (batch x seq tokens) and micro-batches per step
                                 (defaults 8, 256, 1) */
    float lr, min_lr;         /* peak and final learning rate, cosine decay (3e-4, 3e-5) */
    int warmup_steps;         /* linear warmup (default 10, capped at steps / 10) */
    float weight_decay;       /* AdamW decoupled weight decay on matrices (default 0.1) */
    float clip;               /* max global gradient norm, 0 = off (default 1.0) */
    uint64_t seed;            /* data order, LoRA init and dropout (default 1234) */
    /* LoRA: lora_r > 0 attaches a fresh adapter (PEFT init) and trains it alone, the base
     * frozen; 0 (default) trains all weights, or the adapter already attached
     * (lma_adapter_load). */
    int lora_r;
    float lora_alpha;         /* default 16 */
    float lora_dropout;       /* default 0 */
    const char *lora_targets; /* "all" (default), "attn", "mlp" or a list "q,k,v,o,gate,up,down" */
    int save_every;           /* checkpoint every N steps (0: at the end only) */
    int eval_every;           /* validation every N steps (0: at the end only) */
    int resume;               /* continue out_dir's run from its newest good checkpoint */
    int quiet;                /* no progress bar on stderr (default 1) */
    lma_train_callback on_step; /* may be NULL */
    void *user_data;
} lma_train_params;

LMA_API lma_train_params lma_train_default_params(void);
/* Trains m in place on p->data, tokenized with tok (its vocabulary must fit the model),
 * writing the run folder as `lmadapt sft` / `lmadapt cpt` do: out_dir/final holds the
 * trained model (HF layout) or adapter (PEFT layout) with the tokenizer files beside.
 * After it returns, m is the trained model (with its adapter attached when trained with
 * LoRA) and can be scored or generated from at once. SIGINT/SIGTERM during the run end it
 * like the callback (checkpoint saved, LMA_ERR_INTERRUPTED); the previous handlers are
 * restored on return. final_loss (may be NULL) gets the loss of the last step. */
LMA_API lma_status lma_train(lma_model *m, const lma_tokenizer *tok, const lma_train_params *p, float *final_loss);

#ifdef __cplusplus
}
#endif
#endif
