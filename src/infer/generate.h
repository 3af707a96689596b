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

/* One sequence being generated, apart from the model: given the logits of its last
 * position, it samples the next token (the sampler, its RNG, the history), applies the
 * stop ids, the stop strings and max_tokens, decodes and streams the text. lma_generate
 * is this machine driven by lma_model_forward_cached; a server drives many of them with
 * one batched decode step (lma_model_decode_batch). Same logits in, same tokens out.
 * Ownership: lma_gen_seq_new copies the prompt; p (and what it points to: stop ids and
 * strings, callbacks' ctx) must outlive the sequence. */
typedef struct lma_gen_seq lma_gen_seq;
lma_status lma_gen_seq_new(const lma_tokenizer *tok, const int32_t *prompt, size_t n_prompt, int vocab_size,
                           const lma_gen_params *p, lma_gen_seq **out);
/* logits (V) of the last position (modified: the sampler works in place). *done = 1 when
 * the sequence has ended (stop id, stop string, max_tokens, or on_token asked to stop);
 * else *next is the token to feed to the model next. With max_tokens 0 the sequence is
 * done before any step: check lma_gen_seq_done first. */
lma_status lma_gen_seq_step(lma_gen_seq *g, float *logits, int32_t *next, int *done);
int lma_gen_seq_done(const lma_gen_seq *g);
/* Ends the sequence (flushes held-back text to the callbacks) and moves its ids and text
 * into res (prompt_tokens set; timings left to the caller). The caller frees res->ids,
 * res->text. */
lma_status lma_gen_seq_finish(lma_gen_seq *g, lma_gen_result *res);
int lma_gen_seq_n_generated(const lma_gen_seq *g);
void lma_gen_seq_free(lma_gen_seq *g);

/* tok may be NULL (no text, no stop strings). The caller frees res->ids and res->text. */
typedef struct {
    const int32_t *prompt; size_t n_prompt;
    const lma_gen_params *p; /* must outlive the call; p->constraint is a template (never modified) */
} lma_gen_request;
/* Generates n requests together (eval's gen tasks and judge, data generation): up to
 * max_batch sequences at once, each prompt prefilled into its own KV cache, then one
 * lma_model_decode_batch step a token over every sequence still running; a finished one's
 * slot takes the next request at once (continuous batching, as the server's engine). res[i]
 * is request i's (prefill_s its prefill, decode_s from then to its end, steps shared).
 * Each sequence's tokens are lma_generate's on it alone, up to the float rounding of the
 * batched matmuls (a greedy tie may break the other way). On failure every res[i] is freed
 * and zeroed. The caller frees each res[i]'s ids and text. */
lma_status lma_generate_batch(lma_model *m, const lma_tokenizer *tok, const lma_gen_request *rq, size_t n,
                              int max_batch, lma_gen_result *res);
/* One request: lma_generate_batch of 1. */
lma_status lma_generate(lma_model *m, const lma_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                        const lma_gen_params *p, lma_gen_result *res);
/* eos ids of a model dir: generation_config.json eos_token_id (int or list), else config.json's. */
int lma_generation_eos(const char *model_dir, const lma_config *c, int32_t *ids, int cap);
/* The ids a chat reply stops at: lma_generation_eos, the tokenizer's eos and the end-of-turn
 * markers the chat templates use (<|eot_id|>, <|im_end|>, </s>, <|end_of_text|>) that the
 * vocabulary has, each once. */
int lma_chat_stop_ids(const char *model_dir, const lma_config *c, const lma_tokenizer *tok, int32_t *ids, int cap);
#endif
