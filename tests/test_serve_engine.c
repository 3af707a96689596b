/* serve/engine.c, continuous batching without HTTP, on a fixture model: requests of
 * different prompt lengths, lengths and samplers submitted together (more than the
 * active slots, so some wait and join mid-way) give exactly what lma_generate gives each
 * alone (greedy, and sampled with a seed); a full queue refuses; a cancelled request ends
 * early and frees its slot for the next; draining cancels what is queued and refuses new
 * work. */
#include "serve/engine.h"
#include "test.h"

enum { NJ = 5 };

static void expected(lma_model *m, const int32_t *prompt, size_t n, const lma_gen_params *gp, lma_gen_result *r) {
    CHECK_OK(lma_generate(m, NULL, prompt, n, gp, r));
}

static int wait_end(lma_job *j, lma_job_info *info) {
    for (int i = 0; i < 100000; i++)
        if (lma_job_poll(j, 100, NULL, info)) return 1;
    return 0;
}

int main(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/ref/models/llama_gqa", LMA_SRC_DIR);
    lma_model *m = NULL;
    CHECK_OK(lma_model_load_ex(dir, lma_backend_cpu(), LMA_MODEL_FROZEN, &m));
    if (!m) TEST_END();
    int V = m->cfg.vocab_size;
    int32_t prompts[NJ][12];
    size_t lens[NJ] = {3, 12, 5, 8, 1};
    int max_tokens[NJ] = {9, 4, 15, 6, 11};
    int32_t stop_id = 7;
    lma_gen_params gp[NJ];
    for (int j = 0; j < NJ; j++) {
        for (size_t t = 0; t < lens[j]; t++) prompts[j][t] = (int32_t)((t * 13 + (size_t)j * 29 + 3) % (size_t)V);
        gp[j] = (lma_gen_params){.max_tokens = max_tokens[j], .sample = lma_sample_default_params(), .seed = 100 + j};
        if (j % 2) { gp[j].sample.temperature = 0.9f; gp[j].sample.top_p = 0.9f; }
        if (j == 3) { gp[j].stop_ids = &stop_id; gp[j].n_stop_ids = 1; }
    }
    lma_engine_params ep = {.max_active = 2, .max_queue = 3};
    lma_engine *e = NULL;
    CHECK_OK(lma_engine_start(m, NULL, &ep, &e));
    lma_job *jobs[NJ] = {0};
    for (int j = 0; j < NJ; j++) {
        int busy = 0;
        CHECK_OK(lma_engine_submit(e, prompts[j], lens[j], &gp[j], &jobs[j], &busy));
        CHECK(jobs[j] && !busy, "job %d accepted (2 slots + 3 queued)", j);
    }
    lma_job *extra = NULL;
    int busy = 0;
    for (int j = 0; j < NJ; j++) {
        if (!jobs[j]) continue;
        lma_job_info info;
        CHECK(wait_end(jobs[j], &info), "job %d ends", j);
        lma_gen_result want;
        expected(m, prompts[j], lens[j], &gp[j], &want);
        size_t n = 0;
        const int32_t *got = lma_job_ids(jobs[j], &n);
        CHECK(info.status == LMA_OK && !info.cancelled, "job %d finished normally", j);
        CHECK(got && n == want.n_ids && !memcmp(got, want.ids, n * sizeof *got),
              "job %d: batched engine == lma_generate alone (%zu vs %zu ids)", j, n, want.n_ids);
        CHECK(info.finish == want.finish && info.completion_tokens == (int)want.n_ids &&
              info.prompt_tokens == (int)lens[j], "job %d: finish reason and token counts", j);
        free(want.ids);
        lma_job_release(jobs[j]);
    }

    /* two long requests hold the slots; three wait; the sixth is refused. Then a cancelled
     * long request stops early and its slot serves the next one */
    lma_gen_params lg = {.max_tokens = 100000, .sample = lma_sample_default_params()};
    lma_job *lj = NULL, *lj2 = NULL, *after = NULL, *wait2[2] = {0};
    CHECK_OK(lma_engine_submit(e, prompts[0], lens[0], &lg, &lj, &busy));
    CHECK_OK(lma_engine_submit(e, prompts[1], lens[1], &lg, &lj2, &busy));
    CHECK_OK(lma_engine_submit(e, prompts[2], lens[2], &gp[2], &after, &busy));
    CHECK_OK(lma_engine_submit(e, prompts[3], lens[3], &lg, &wait2[0], &busy));
    CHECK_OK(lma_engine_submit(e, prompts[4], lens[4], &lg, &wait2[1], &busy));
    CHECK(lj && lj2 && after && wait2[0] && wait2[1], "five requests accepted (2 slots + 3 queued)");
    CHECK_OK(lma_engine_submit(e, prompts[0], lens[0], &gp[0], &extra, &busy));
    CHECK(!extra && busy == 1, "a sixth request is refused: the queue is full");
    lma_job_release(extra);
    lma_job_info info;
    if (lj && lj2 && after) {
        lma_job_poll(lj, 50, NULL, &info);
        lma_job_cancel(lj);
        lma_job_release(lj2); /* a submitter that goes away cancels too */
        CHECK(wait_end(lj, &info) && info.cancelled && info.completion_tokens < 4000,
              "a cancelled job ends early (%d tokens)", info.completion_tokens);
        CHECK(wait_end(after, &info) && !info.cancelled && info.status == LMA_OK,
              "the queued job gets a freed slot and finishes");
        size_t n = 0;
        CHECK(lma_job_ids(lj, &n) == NULL && n == 0, "a cancelled job has no ids");
        lma_job_release(lj);
        lma_job_release(after);
    }
    for (int i = 0; i < 2; i++) lma_job_release(wait2[i]); /* queued or running: cancelled */

    /* drain: queued work ends cancelled, new work is refused */
    lma_job *q[4] = {0};
    for (int i = 0; i < 4; i++) CHECK_OK(lma_engine_submit(e, prompts[i], lens[i], &lg, &q[i], &busy));
    lma_engine_drain(e, 0);
    for (int i = 0; i < 4; i++) {
        if (!q[i]) continue;
        CHECK(lma_job_poll(q[i], 0, NULL, &info) == 1 && info.cancelled, "job %d ended by the drain", i);
        lma_job_release(q[i]);
    }
    CHECK_OK(lma_engine_submit(e, prompts[0], lens[0], &gp[0], &extra, &busy));
    CHECK(!extra && busy == 2, "a drained engine refuses work (busy %d)", busy);
    lma_job_release(extra);
    lma_engine_stats st;
    lma_engine_get_stats(e, &st);
    CHECK(st.active == 0 && st.queued == 0 && st.steps > 0, "stats: nothing left, steps counted");
    lma_engine_free(e);
    lma_model_free(m);
    TEST_END();
}
