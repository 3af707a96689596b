/* Chat templates: the named formats of the models lmadapt supports, rendered in C
 * exactly as transformers' apply_chat_template renders their Jinja templates (not a
 * Jinja engine). The format is recognized from the tokenizer's chat_template string
 * (distinctive substrings) or named by the caller.
 *
 *   llama2   Llama 2 chat: <s>[INST] <<SYS>>\n{sys}\n<</SYS>>\n\n{user} [/INST] {asst} </s>...
 *   llama3   Llama 3 Instruct: <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{c}<|eot_id|>
 *   chatml   ChatML (Qwen2, SmolLM2): <|im_start|>{role}\n{c}<|im_end|>\n; a default system prompt
 *            written in the template (Qwen2, SmolLM2) is used when the first message is not system
 *   zephyr   Zephyr / TinyLlama-Chat: <|user|>\n{c}</s>\n<|assistant|>\n{c}</s>\n
 *   mistral  Mistral Instruct: <s>[INST] {user} [/INST]{asst}</s>
 *
 * Assistant spans: for each assistant message, the byte range of its content as
 * rendered plus the end-of-turn marker that follows (" </s>", "<|eot_id|>",
 * "<|im_end|>", "</s>"), i.e. what a model must learn to produce; in token space the
 * tokens overlapping that range. The rendered text already holds BOS where the
 * template writes it, so lma_chat_encode tokenizes with add_special = 0 (no double BOS).
 * Ownership: outputs are malloc'd, caller frees. Errors: LMA_ERR_UNSUPPORTED for an
 * unrecognized template (the message lists the names), LMA_ERR_ARG for messages the
 * template rejects (roles not alternating, unsupported role). */
#ifndef LMA_TOK_CHAT_TEMPLATE_H
#define LMA_TOK_CHAT_TEMPLATE_H
#include <stddef.h>
#include <stdint.h>
#include "tok/tokenizer.h"

typedef enum { LMA_CHAT_LLAMA2, LMA_CHAT_LLAMA3, LMA_CHAT_CHATML, LMA_CHAT_ZEPHYR, LMA_CHAT_MISTRAL } lma_chat_format;

/* lma_chat_msg ({role, content}) and lma_chat_render are public: include/lmadapt.h. */

#define LMA_CHAT_FORMAT_NAMES "llama2, llama3, chatml, zephyr, mistral"

const char *lma_chat_format_name(lma_chat_format f);
/* Recognizes a Jinja chat_template string; *default_system (malloc'd or NULL) is the
 * default system prompt a ChatML template writes when none is given. */
lma_status lma_chat_detect(const char *tmpl, lma_chat_format *out, char **default_system);

/* The Jinja chat_template of a named format, verbatim from the model it comes from
 * (Llama-2-7b-chat, Meta-Llama-3-8B-Instruct, ChatML, TinyLlama-1.1B-Chat, Mistral-7B-
 * Instruct-v0.2): transformers renders it exactly as lma_chat_render renders the name
 * (tests/ref/tok/chat.json holds these strings and transformers' renders). */
const char *lma_chat_jinja(lma_chat_format f);
/* Stores the template a model was trained with in dir/tokenizer_config.json
 * ("chat_template"), so that the model keeps it: spec is a format name (its Jinja is
 * written unless the file's template already is that format) or a Jinja string (written
 * as given). NULL spec: nothing to do. The file is rewritten atomically. */
lma_status lma_chat_template_store(const char *dir, const char *spec);

/* `spec` is a format name (LMA_CHAT_FORMAT_NAMES), a Jinja chat_template string to
 * recognize, or NULL for the tokenizer's own chat_template. t may be NULL with a name
 * (bos/eos then default to the format's usual strings).
 * spans: (n_spans, 2) byte ranges [start, end) of assistant content + end of turn. */
lma_status lma_chat_render(const lma_tokenizer *t, const char *spec, const lma_chat_msg *msgs, size_t n,
                           int add_generation_prompt, char **text, size_t *len, size_t **spans, size_t *n_spans);
/* Renders and tokenizes; tok_spans: (n_spans, 2) token index ranges [start, end). */
lma_status lma_chat_encode(const lma_tokenizer *t, const char *spec, const lma_chat_msg *msgs, size_t n,
                           int add_generation_prompt, int32_t **ids, size_t *n_ids, size_t **tok_spans, size_t *n_spans);
#endif
