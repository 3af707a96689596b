/* chat: a chat loop on stdin with the model's own chat template, the reply streamed
 * token by token through the generation callback. Uses only the public API (<lmadapt.h>).
 *
 *   chat MODEL [SYSTEM PROMPT]
 *
 * MODEL: an HF folder, a .gguf file or a short name (smollm2-135m-instruct) with a
 * tokenizer and a chat template. One user turn per line; an empty line or EOF ends.
 * LMA_DEVICE picks the device; sampling: temperature 0.7, top-p 0.9, at most 256 tokens. */
#include <lmadapt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int on_token(void *user_data, int32_t id, const char *text, size_t len) {
    (void)user_data; (void)id;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0; /* non-zero would stop the reply here */
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) { fprintf(stderr, "usage: chat MODEL [SYSTEM PROMPT]\n"); return 2; }
    lma_model *model = NULL;
    lma_tokenizer *tok = NULL;
    if (lma_model_load(argv[1], getenv("LMA_DEVICE"), &model) != LMA_OK || lma_tok_load(argv[1], &tok) != LMA_OK) {
        fprintf(stderr, "chat: %s\n", lma_last_error());
        lma_model_free(model);
        return 1;
    }
    lma_generate_params gp = lma_generate_default_params();
    gp.temperature = 0.7f;
    gp.top_p = 0.9f;
    gp.on_token = on_token; /* stop tokens: the model's defaults (stop_ids NULL) */

    lma_chat_msg *msgs = NULL; /* the conversation; contents are malloc'd copies */
    size_t n = 0;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    if (argc == 3) {
        msgs = malloc(sizeof *msgs);
        msgs[n++] = (lma_chat_msg){"system", strdup(argv[2])};
    }
    for (;;) {
        ssize_t k = getline(&line, &cap, stdin);
        if (k <= 0) break;
        while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r')) line[--k] = 0;
        if (k == 0) break;
        lma_chat_msg *grown = realloc(msgs, (n + 2) * sizeof *msgs);
        if (!grown) { rc = 1; break; }
        msgs = grown;
        msgs[n++] = (lma_chat_msg){"user", strdup(line)};
        char *prompt = NULL, *reply = NULL;
        size_t plen = 0, rlen = 0, n_ids = 0;
        int32_t *ids = NULL;
        if (lma_chat_render(tok, NULL, msgs, n, 1, &prompt, &plen, NULL, NULL) != LMA_OK ||
            lma_tok_encode(tok, prompt, plen, 0, &ids, &n_ids) != LMA_OK ||
            lma_generate_text(model, tok, ids, n_ids, &gp, &reply, &rlen, NULL, NULL) != LMA_OK) {
            fprintf(stderr, "chat: %s\n", lma_last_error());
            lma_free(prompt);
            lma_free(ids);
            rc = 1;
            break;
        }
        printf("\n");
        msgs[n++] = (lma_chat_msg){"assistant", reply}; /* the history owns the reply now */
        lma_free(prompt);
        lma_free(ids);
    }
    for (size_t i = 0; i < n; i++) free((char *)msgs[i].content);
    free(msgs);
    free(line);
    lma_tok_free(tok);
    lma_model_free(model);
    return rc;
}
