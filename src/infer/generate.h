/* Text generation with a KV cache: prefill the prompt, then decode one token
 * at a time with the sampler until a stop token, a stop string, or max_tokens.
 * Streaming: on_text receives each piece of decoded text as soon as it forms
 * complete UTF-8 (never a broken sequence), with stop strings held back until
 * they can no longer match. */
#ifndef LMA_INFER_GENERATE_H
#define LMA_INFER_GENERATE_H
#include "infer/sample.h"
#include "model/llama.h"
#include "tok/tokenizer.h"

typedef enum { LMA_FINISH_LENGTH = 0, LMA_FINISH_STOP } lma_finish_reason;

/* lma_gen_params (the request): core/gen_params.h */

typedef struct {
    int32_t *ids;  size_t n_ids; /* generated ids (a stop token included, as transformers does) */
    char *text;    size_t len;   /* decoded text, cut before a stop string; NULL without tokenizer */
    lma_finish_reason finish;
    int prompt_tokens;
    double prefill_s, decode_s;
} lma_gen_result;

/* tok may be NULL (no text, no stop strings). The caller frees res->ids and res->text. */
lma_status lma_generate(lma_model *m, const lma_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                        const lma_gen_params *p, lma_gen_result *res);
/* eos ids of a model dir: generation_config.json eos_token_id (int or list), else config.json's. */
int lma_generation_eos(const char *model_dir, const lma_config *c, int32_t *ids, int cap);
#endif
