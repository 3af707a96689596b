/* TEMPORARY: link stubs for infer/embed.h until the embed branch (the real embedder) is
 * merged; that merge deletes this file. Every call fails with a clear message. */
#include "core/status.h"
#include "infer/embed.h"

lma_status lma_embedder_load(const char *path, const lma_backend *be, lma_embedder **out) {
    (void)be;
    *out = NULL;
    return lma_error(LMA_ERR_UNSUPPORTED, "%s: the embedder is not built into this lmadapt yet", path);
}
void lma_embedder_free(lma_embedder *e) { (void)e; }
int lma_embedder_dim(const lma_embedder *e) { (void)e; return 0; }
int lma_embedder_max_tokens(const lma_embedder *e) { (void)e; return 0; }
lma_status lma_embedder_count_tokens(lma_embedder *e, const char *t, size_t len, size_t *n) {
    (void)e, (void)t, (void)len, (void)n;
    return lma_error(LMA_ERR_UNSUPPORTED, "the embedder is not built into this lmadapt yet");
}
lma_status lma_embed(lma_embedder *e, const char *const *texts, size_t n, int q, float *out) {
    (void)e, (void)texts, (void)n, (void)q, (void)out;
    return lma_error(LMA_ERR_UNSUPPORTED, "the embedder is not built into this lmadapt yet");
}
