/* The curation model: data/curate's lma_curate_llm (a model that completes chat
 * prompts) backed by a model lmadapt loads. Curation (src/data/) sees only the
 * interface; this file, above it, joins it to model/, tok/ and infer/. */
#ifndef LMA_EVAL_CURATE_MODEL_H
#define LMA_EVAL_CURATE_MODEL_H
#include "backend/backend.h"
#include "data/curate/curate.h"

/* Loads model + tokenizer from dir (an HF folder or a GGUF file) on backend be (NULL:
 * cpu), with the PEFT LoRA adapter in adapter_dir applied when not NULL (it is part of
 * the model identity that keys the judge cache). Prompts are rendered with the
 * tokenizer's chat template (or l->chat_template, set after loading) and a generation
 * prompt, then continued by lma_generate_batch (l->max_active at a time, 8 unless set) with
 * the model's eos ids as stop ids. On
 * failure *l is left empty. Free with lma_curate_llm_free. */
lma_status lma_curate_llm_load(const char *dir, const char *adapter_dir, const struct lma_backend *be,
                               lma_curate_llm *l);
#endif
