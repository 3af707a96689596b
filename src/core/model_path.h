/* Where models are: a path, or a short name for a model that scripts/fetch-models.sh
 * put in the model cache ${LMA_HOME:-$HOME/.cache/lmadapt}/models/<name>/.
 *
 * lma_model_path_resolve(in): every command's --model (and --tokenizer) goes through it.
 *   - an existing file (a .gguf, ...) or folder: itself, except a folder with no
 *     config.json and no tokenizer.json that holds exactly one .gguf file, which
 *     resolves to that file (the cache's smollm2-135m-instruct/ is such a folder);
 *   - else a bare name ([A-Za-z0-9._-], no '/'): <cache>/models/<name>, resolved again;
 *     a name lmadapt knows but that is not fetched yet fails with a line naming the
 *     command that fetches it.
 * out gets the resolved path (cap bytes); LMA_ERR_IO with a one-line message otherwise. */
#ifndef LMA_CORE_MODEL_PATH_H
#define LMA_CORE_MODEL_PATH_H
#include <stddef.h>
#include "core/status.h"

lma_status lma_model_path_resolve(const char *in, char *out, size_t cap);
/* The model cache folder (${LMA_HOME:-$HOME/.cache/lmadapt}/models) into out. */
lma_status lma_model_cache_dir(char *out, size_t cap);
#endif
