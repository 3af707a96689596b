/* The serving engine: one thread that owns the model and decodes every active request
 * together (continuous batching). Requests wait in a bounded queue; each step the engine
 * admits queued requests into free slots (up to max_active: a prefill of the prompt into
 * the request's own KV cache), then runs one lma_model_decode_batch over all active
 * sequences and advances each one's lma_gen_seq (infer/generate.h: the same sampler,
 * stops and text as lma_generate). A finished, cancelled or failed request leaves its slot
 * at once, and the next queued one takes it at the following step.
 *
 * Threads: lma_engine_submit / lma_job_* are called from the HTTP threads; the engine
 * thread is the only one to touch the model. A job is shared (reference counted) by the
 * engine and its submitter: lma_job_release drops the submitter's reference (cancelling the
 * job when it has not finished: a client that went away frees its slot).
 * Ownership: lma_engine_start keeps pointers to m and tok (they must outlive the engine);
 * lma_engine_stop joins the thread and frees the engine (jobs still held by their
 * submitters stay valid until released). */
#ifndef LMA_SERVE_ENGINE_H
#define LMA_SERVE_ENGINE_H
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "infer/generate.h"

typedef struct lma_engine lma_engine;
typedef struct lma_job lma_job;

typedef struct {
    int max_active; /* sequences decoded together (KV caches alive at once) */
    int max_queue;  /* requests waiting for a slot; beyond it lma_engine_submit refuses */
} lma_engine_params;

typedef enum { LMA_JOB_QUEUED, LMA_JOB_ACTIVE, LMA_JOB_DONE } lma_job_state;

/* What a submitter sees of its job (lma_job_poll). */
typedef struct {
    lma_job_state state;
    int cancelled;              /* ended by lma_job_cancel / release / shutdown before its end */
    lma_status status;          /* LMA_OK, or the failure (message in error) */
    char error[256];
    lma_finish_reason finish;
    int prompt_tokens, completion_tokens;
    double queue_s, prefill_s, decode_s;
} lma_job_info;

lma_status lma_engine_start(lma_model *m, const lma_tokenizer *tok, const lma_engine_params *p, lma_engine **out);
/* Shutdown, first half: stops admitting (queued jobs end cancelled, new submissions are
 * refused), lets the active ones run for at most grace_s seconds, cancels what is left and
 * joins the engine thread. Jobs stay valid for their submitters. */
void lma_engine_drain(lma_engine *e, double grace_s);
/* Second half, once no submitter holds a job: frees the engine (drains first if needed). */
void lma_engine_free(lma_engine *e);

/* Queues a request: prompt (copied) and gp (copied, stop ids and strings included;
 * on_text / on_token / ctx are ignored: the text is collected for lma_job_poll). The job
 * takes gp->constraint (response_format) and frees it, also when refused.
 * Returns LMA_OK with *out the job, or LMA_OK with *out NULL and *busy = 1 when the queue
 * is full, 2 when the engine is stopping; another status on failure (out of memory). */
lma_status lma_engine_submit(lma_engine *e, const int32_t *prompt, size_t n_prompt, const lma_gen_params *gp,
                             lma_job **out, int *busy);
/* Waits up to timeout_ms for new text or the end of the job; appends the text made since
 * the last poll to out (may be NULL to discard), fills info. Returns 1 when the job has
 * ended (state DONE), else 0. */
int lma_job_poll(lma_job *j, int timeout_ms, lma_buf *out, lma_job_info *info);
/* The generated ids (a stop token included) of a job that finished normally; NULL (n 0)
 * before its end or when it was cancelled or failed. Valid until lma_job_release. */
const int32_t *lma_job_ids(lma_job *j, size_t *n);
/* Ends the job at the next step (its slot is freed); harmless after the end. */
void lma_job_cancel(lma_job *j);
/* The submitter is done with j (cancels it first when it has not ended). */
void lma_job_release(lma_job *j);

/* Counters for /health and the logs. */
typedef struct {
    int active, queued;
    uint64_t steps, tokens, finished;
} lma_engine_stats;
void lma_engine_get_stats(lma_engine *e, lma_engine_stats *s);
#endif
