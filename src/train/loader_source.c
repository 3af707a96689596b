#include "train/loader_source.h"

static lma_status next(void *ctx, int32_t *ids, int32_t *targets, int32_t *seg) {
    return lma_loader_next(ctx, ids, targets, seg);
}
static lma_status val_next(void *ctx, int32_t *ids, int32_t *targets, int32_t *seg, int *rows) {
    return lma_loader_val_next(ctx, ids, targets, seg, rows);
}
static void val_reset(void *ctx) { lma_loader_val_reset(ctx); }
static lma_status save(void *ctx, cJSON **state) {
    lma_loader_cursor c;
    lma_loader_get_cursor(ctx, &c);
    return lma_loader_cursor_to_json(&c, state);
}
static lma_status restore(void *ctx, const cJSON *state) {
    lma_loader_cursor c;
    LMA_TRY(lma_loader_cursor_from_json(state, "trainer_state.json data", &c));
    return lma_loader_set_cursor(ctx, &c);
}

lma_batch_source lma_loader_batch_source(lma_loader *L) {
    lma_batch_source s = {L, next, lma_loader_val_docs(L) > 0 ? val_next : NULL, val_reset, save, restore, NULL, NULL};
    return s;
}

static lma_status sft_next(void *ctx, int32_t *ids, int32_t *tg, int32_t *seg) {
    int rows;
    return lma_sft_batcher_next(((lma_sft_pair *)ctx)->train, ids, tg, seg, &rows);
}
static lma_status sft_val_next(void *ctx, int32_t *ids, int32_t *tg, int32_t *seg, int *rows) {
    return lma_sft_batcher_next(((lma_sft_pair *)ctx)->val, ids, tg, seg, rows);
}
static void sft_val_reset(void *ctx) { lma_sft_batcher_rewind(((lma_sft_pair *)ctx)->val); }
static lma_status sft_save(void *ctx, cJSON **out) { return lma_sft_batcher_save(((lma_sft_pair *)ctx)->train, out); }
static lma_status sft_restore(void *ctx, const cJSON *j) {
    return lma_sft_batcher_restore(((lma_sft_pair *)ctx)->train, j);
}

lma_batch_source lma_sft_batch_source(lma_sft_pair *pair) {
    lma_batch_source s = {pair, sft_next, pair->val ? sft_val_next : NULL, sft_val_reset, sft_save, sft_restore, NULL, NULL};
    return s;
}
