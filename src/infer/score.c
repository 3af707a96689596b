#include "infer/score.h"
#include <math.h>
#include <stdlib.h>
#include "core/arena.h"
#include "core/log.h"

lma_status lma_score(lma_model *m, const int32_t *ids, size_t n_ids, lma_score_result *res) {
    res->n = 0; res->logprobs = NULL; res->nll = 0; res->ppl = 0;
    if (n_ids < 2) return lma_error(LMA_ERR_ARG, "scoring needs at least 2 tokens (got %zu)", n_ids);
    if (n_ids > (size_t)1 << 24) return lma_error(LMA_ERR_ARG, "%zu tokens is too many to score at once", n_ids);
    int T = (int)n_ids;
    if (m->cfg.max_position_embeddings > 0 && T > m->cfg.max_position_embeddings)
        lma_warn("%d tokens exceed the model's context of %d (max_position_embeddings): the scores past it are "
                 "not meaningful", T, m->cfg.max_position_embeddings);
    int32_t *tg = lma_malloc(n_ids * sizeof(int32_t), "score targets");
    float *lp = lma_malloc((n_ids - 1) * sizeof(float), "score logprobs");
    if (!tg || !lp) { free(tg); free(lp); return LMA_ERR_NOMEM; }
    for (int i = 0; i < T - 1; i++) tg[i] = ids[i + 1];
    tg[T - 1] = LMA_IGNORE_INDEX;
    lma_status s = lma_model_forward(m, ids, tg, NULL, 1, T, 0, 1.0f, NULL);
    free(tg);
    if (s != LMA_OK) { free(lp); return s; }
    const float *losses = lma_model_losses(m);
    double nll = 0;
    for (int i = 0; i < T - 1; i++) { lp[i] = -losses[i]; nll += losses[i]; }
    res->n = n_ids - 1;
    res->logprobs = lp;
    res->nll = nll;
    res->ppl = exp(nll / (double)(n_ids - 1));
    return LMA_OK;
}
