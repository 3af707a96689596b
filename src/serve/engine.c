#include "serve/engine.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/arena.h"
#include "core/progress.h" /* lma_now */
#include "infer/json_constraint.h"

struct lma_job {
    lma_engine *e;
    int refs;                 /* engine + submitter, under e->mu */
    pthread_cond_t cv;        /* new text or the end, under e->mu */
    lma_job_state state;
    int cancel;               /* asked to stop (submitter gone, shutdown) */
    lma_buf text;             /* text made so far (under e->mu) */
    size_t polled;            /* of which handed to the submitter */
    lma_job_info info;
    double t_submit, t_start, t_first;
    lma_job *next;            /* queue link */
    /* the request (owned copies) */
    int32_t *prompt; size_t n_prompt;
    lma_gen_params gp;
    int32_t *stop_ids;
    char **stops;
    /* engine thread only */
    lma_gen_seq *seq;
    lma_kv_cache *kv;
    int32_t next_tok;
    lma_buf pending;          /* text the sequence released this step (on_text) */
    int closed_cancelled;     /* job_close saw it cancelled */
    int32_t *ids; size_t n_ids; /* the generated ids, once finished */
};

struct lma_engine {
    lma_model *m;
    const lma_tokenizer *tok;
    lma_engine_params p;
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* the engine thread waits here for work */
    pthread_t th;
    int started, joined;
    lma_job *qhead, *qtail;
    int n_queued;
    lma_job **active;         /* (max_active) */
    int n_active;
    int admitting;            /* popped from the queue, in its prefill: holds a slot */
    int stopping;
    double deadline;          /* of the grace period, once stopping */
    float *logits;            /* (max_active, V) */
    lma_engine_stats st;
};

static void job_free(lma_job *j) {
    pthread_cond_destroy(&j->cv);
    free(j->text.p);
    free(j->pending.p);
    free(j->ids);
    free(j->prompt);
    free(j->stop_ids);
    for (int i = 0; j->stops && i < j->gp.n_stop_strings; i++) free(j->stops[i]);
    free(j->stops);
    lma_json_constraint_free(j->gp.constraint);
    free(j);
}

/* under e->mu */
static void job_unref(lma_job *j) {
    if (--j->refs == 0) job_free(j);
}

/* on_text of the job's sequence: engine thread, without the lock */
static void on_text(void *ctx, const char *t, size_t n) {
    lma_job *j = ctx;
    (void)lma_buf_append(&j->pending, t, n);
}

/* under e->mu: moves the step's text to where the submitter reads it */
static void publish(lma_job *j) {
    if (j->pending.len) {
        (void)lma_buf_append(&j->text, j->pending.p, j->pending.len);
        j->pending.len = 0;
        pthread_cond_broadcast(&j->cv);
    }
}

static void record_error(lma_job *j, lma_status s) {
    j->info.status = s;
    snprintf(j->info.error, sizeof j->info.error, "%s", lma_last_error()[0] ? lma_last_error() : "generation failed");
    lma_clear_error();
}

/* engine thread, without the lock: the end of a sequence (finished, cancelled or failed) */
static void job_close(lma_engine *e, lma_job *j, int cancelled) {
    j->closed_cancelled = cancelled;
    if (j->seq && !cancelled && j->info.status == LMA_OK) {
        lma_gen_result r;
        lma_status s = lma_gen_seq_finish(j->seq, &r);
        if (s == LMA_OK) {
            j->info.finish = r.finish;
            j->info.completion_tokens = (int)r.n_ids;
            j->ids = r.ids;
            j->n_ids = r.n_ids;
            r.ids = NULL;
        } else {
            record_error(j, s);
        }
        free(r.ids);
        free(r.text);
    } else if (j->seq) {
        j->info.completion_tokens = lma_gen_seq_n_generated(j->seq);
    }
    lma_gen_seq_free(j->seq);
    j->seq = NULL;
    lma_kv_free(e->m, j->kv);
    j->kv = NULL;
    double now = lma_now();
    if (j->t_first > 0) j->info.decode_s = now - j->t_first;
}

/* under e->mu: the job is over for the engine */
static void job_end(lma_engine *e, lma_job *j) {
    publish(j);
    j->info.cancelled = (j->closed_cancelled || j->state == LMA_JOB_QUEUED) && j->info.status == LMA_OK;
    j->state = LMA_JOB_DONE;
    j->info.state = LMA_JOB_DONE;
    e->st.finished++;
    pthread_cond_broadcast(&j->cv);
    job_unref(j);
}

/* engine thread, without the lock: KV cache, prefill, first token. Returns 1 when the job
 * goes on decoding, 0 when it has already ended (max_tokens 0, a stop at once, failure). */
static int job_prefill(lma_engine *e, lma_job *j, float *logits) {
    lma_status s = lma_kv_create(e->m, (int)j->n_prompt + j->gp.max_tokens, &j->kv);
    if (s == LMA_OK) s = lma_gen_seq_new(e->tok, j->prompt, j->n_prompt, e->m->cfg.vocab_size, &j->gp, &j->seq);
    double t0 = lma_now();
    if (s == LMA_OK) s = lma_model_forward_cached(e->m, j->kv, j->prompt, (int)j->n_prompt, logits, 0);
    j->info.prefill_s = lma_now() - t0;
    j->t_first = lma_now();
    int done = 1;
    if (s == LMA_OK && !lma_gen_seq_done(j->seq)) s = lma_gen_seq_step(j->seq, logits, &j->next_tok, &done);
    if (s != LMA_OK) { record_error(j, s); return 0; }
    return !done;
}

static void *engine_main(void *arg) {
    lma_engine *e = arg;
    int V = e->m->cfg.vocab_size;
    lma_kv_cache **kvs = calloc((size_t)e->p.max_active, sizeof *kvs);
    int32_t *toks = calloc((size_t)e->p.max_active, sizeof *toks);
    char *done = calloc((size_t)e->p.max_active, 1);
    pthread_mutex_lock(&e->mu);
    for (;;) {
        /* queued jobs: cancelled ones leave; all of them when stopping */
        for (lma_job **pp = &e->qhead; *pp;) {
            lma_job *j = *pp;
            if (j->cancel || e->stopping) {
                j->cancel = 1;
                *pp = j->next;
                e->n_queued--;
                job_end(e, j);
            } else {
                pp = &j->next;
            }
        }
        e->qtail = NULL;
        for (lma_job *j = e->qhead; j; j = j->next) e->qtail = j;
        if (e->stopping && lma_now() > e->deadline)
            for (int i = 0; i < e->n_active; i++) e->active[i]->cancel = 1;
        /* active jobs that were cancelled leave their slots */
        int k = 0;
        for (int i = 0; i < e->n_active; i++) {
            lma_job *j = e->active[i];
            if (!j->cancel) { e->active[k++] = j; continue; }
            pthread_mutex_unlock(&e->mu);
            job_close(e, j, 1);
            pthread_mutex_lock(&e->mu);
            job_end(e, j);
        }
        e->n_active = k;
        if (e->stopping && e->n_active == 0) break;
        /* admit queued jobs into free slots */
        while (!e->stopping && e->n_active < e->p.max_active && e->qhead) {
            lma_job *j = e->qhead;
            e->qhead = j->next;
            if (!e->qhead) e->qtail = NULL;
            e->n_queued--;
            j->state = LMA_JOB_ACTIVE;
            j->t_start = lma_now();
            j->info.queue_s = j->t_start - j->t_submit;
            e->admitting = 1;
            pthread_mutex_unlock(&e->mu);
            int going = job_prefill(e, j, e->logits);
            if (!going) job_close(e, j, 0);
            pthread_mutex_lock(&e->mu);
            e->admitting = 0;
            j->info.state = j->state;
            if (going) {
                publish(j);
                e->active[e->n_active++] = j;
            } else {
                job_end(e, j);
            }
        }
        e->st.active = e->n_active;
        e->st.queued = e->n_queued;
        if (e->n_active == 0) {
            if (!e->stopping) pthread_cond_wait(&e->cv, &e->mu);
            continue; /* (stopping: the top of the loop ends what is queued, then leaves) */
        }
        /* one decode step over every active sequence */
        int n = e->n_active;
        for (int i = 0; i < n; i++) {
            kvs[i] = e->active[i]->kv;
            toks[i] = e->active[i]->next_tok;
        }
        pthread_mutex_unlock(&e->mu);
        lma_status s = lma_model_decode_batch(e->m, kvs, toks, n, e->logits);
        for (int i = 0; i < n; i++) {
            lma_job *j = e->active[i];
            done[i] = 1;
            if (s != LMA_OK) { if (j->info.status == LMA_OK) record_error(j, s); }
            else {
                int fin = 0;
                lma_status si = lma_gen_seq_step(j->seq, e->logits + (size_t)i * V, &j->next_tok, &fin);
                if (si != LMA_OK) record_error(j, si);
                done[i] = si != LMA_OK || fin;
            }
            if (done[i]) job_close(e, j, 0);
        }
        pthread_mutex_lock(&e->mu);
        e->st.steps++;
        e->st.tokens += (uint64_t)n;
        k = 0;
        for (int i = 0; i < n; i++) {
            lma_job *j = e->active[i];
            if (done[i]) job_end(e, j);
            else { publish(j); e->active[k++] = j; }
        }
        /* the slots past n were not touched (admission happens with the lock held above) */
        e->n_active = k;
    }
    e->st.active = e->n_active;
    e->st.queued = e->n_queued;
    pthread_mutex_unlock(&e->mu);
    free(kvs);
    free(toks);
    free(done);
    return NULL;
}

lma_status lma_engine_start(lma_model *m, const lma_tokenizer *tok, const lma_engine_params *p, lma_engine **out) {
    *out = NULL;
    if (p->max_active < 1 || p->max_queue < 0)
        return lma_error(LMA_ERR_ARG, "engine: max_active %d must be >= 1, max_queue %d >= 0", p->max_active, p->max_queue);
    lma_engine *e = lma_calloc(1, sizeof *e, "engine");
    if (!e) return LMA_ERR_NOMEM;
    e->m = m;
    e->tok = tok;
    e->p = *p;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    e->active = lma_calloc((size_t)p->max_active, sizeof *e->active, "active sequences");
    e->logits = lma_malloc((size_t)p->max_active * m->cfg.vocab_size * sizeof(float), "batch logits");
    if (!e->active || !e->logits) { lma_engine_free(e); return LMA_ERR_NOMEM; }
    if (pthread_create(&e->th, NULL, engine_main, e)) {
        lma_engine_free(e);
        return lma_error(LMA_ERR_IO, "engine: cannot start its thread");
    }
    e->started = 1;
    *out = e;
    return LMA_OK;
}

void lma_engine_drain(lma_engine *e, double grace_s) {
    if (!e || !e->started || e->joined) return;
    pthread_mutex_lock(&e->mu);
    e->stopping = 1;
    e->deadline = lma_now() + grace_s;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    /* the engine thread only checks the deadline between steps: wake it up while it
     * would otherwise sleep (it never sleeps with active sequences) */
    pthread_join(e->th, NULL);
    e->joined = 1;
}

void lma_engine_free(lma_engine *e) {
    if (!e) return;
    lma_engine_drain(e, 0);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e->active);
    free(e->logits);
    free(e);
}

lma_status lma_engine_submit(lma_engine *e, const int32_t *prompt, size_t n_prompt, const lma_gen_params *gp,
                             lma_job **out, int *busy) {
    *out = NULL;
    *busy = 0;
    if (n_prompt < 1) { lma_json_constraint_free(gp->constraint); return lma_error(LMA_ERR_ARG, "the prompt is empty"); }
    lma_job *j = lma_calloc(1, sizeof *j, "job");
    if (!j) { lma_json_constraint_free(gp->constraint); return LMA_ERR_NOMEM; }
    pthread_cond_init(&j->cv, NULL);
    j->e = e;
    j->gp = *gp;
    j->gp.on_text = on_text;
    j->gp.on_token = NULL;
    j->gp.ctx = j;
    j->prompt = lma_malloc(n_prompt * sizeof *j->prompt, "prompt");
    j->stop_ids = lma_malloc((size_t)(gp->n_stop_ids + 1) * sizeof *j->stop_ids, "stop ids");
    j->stops = lma_calloc((size_t)gp->n_stop_strings + 1, sizeof *j->stops, "stop strings");
    int ok = j->prompt && j->stop_ids && j->stops;
    for (int i = 0; ok && i < gp->n_stop_strings; i++) ok = (j->stops[i] = strdup(gp->stop_strings[i])) != NULL;
    if (!ok) { job_free(j); return lma_error(LMA_ERR_NOMEM, "out of memory for a request"); }
    memcpy(j->prompt, prompt, n_prompt * sizeof *j->prompt);
    j->n_prompt = n_prompt;
    if (gp->n_stop_ids) memcpy(j->stop_ids, gp->stop_ids, (size_t)gp->n_stop_ids * sizeof *j->stop_ids);
    j->gp.stop_ids = j->stop_ids;
    j->gp.stop_strings = (const char *const *)j->stops;
    j->info.prompt_tokens = (int)n_prompt;
    j->info.state = LMA_JOB_QUEUED;
    j->t_submit = lma_now();
    pthread_mutex_lock(&e->mu);
    if (e->stopping || e->n_queued >= e->p.max_queue + (e->p.max_active - e->n_active - e->admitting)) {
        /* a free slot counts as room: the engine takes the job at its next step */
        *busy = e->stopping ? 2 : 1;
        pthread_mutex_unlock(&e->mu);
        job_free(j);
        return LMA_OK;
    }
    j->refs = 2;
    if (e->qtail) e->qtail->next = j; else e->qhead = j;
    e->qtail = j;
    e->n_queued++;
    e->st.queued = e->n_queued;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    *out = j;
    return LMA_OK;
}

int lma_job_poll(lma_job *j, int timeout_ms, lma_buf *out, lma_job_info *info) {
    lma_engine *e = j->e;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&e->mu);
    while (j->state != LMA_JOB_DONE && j->text.len == j->polled)
        if (pthread_cond_timedwait(&j->cv, &e->mu, &until) == ETIMEDOUT) break;
    if (out && j->text.len > j->polled) (void)lma_buf_append(out, j->text.p + j->polled, j->text.len - j->polled);
    j->polled = j->text.len;
    if (info) {
        *info = j->info;
        info->state = j->state;
    }
    int ended = j->state == LMA_JOB_DONE;
    pthread_mutex_unlock(&e->mu);
    return ended;
}

const int32_t *lma_job_ids(lma_job *j, size_t *n) {
    pthread_mutex_lock(&j->e->mu);
    int done = j->state == LMA_JOB_DONE;
    pthread_mutex_unlock(&j->e->mu);
    *n = done ? j->n_ids : 0;
    return done ? j->ids : NULL;
}

void lma_job_cancel(lma_job *j) {
    lma_engine *e = j->e;
    pthread_mutex_lock(&e->mu);
    if (j->state != LMA_JOB_DONE) {
        j->cancel = 1;
        pthread_cond_signal(&e->cv);
    }
    pthread_mutex_unlock(&e->mu);
}

void lma_job_release(lma_job *j) {
    if (!j) return;
    lma_engine *e = j->e;
    pthread_mutex_lock(&e->mu);
    if (j->state != LMA_JOB_DONE) {
        j->cancel = 1;
        pthread_cond_signal(&e->cv);
    }
    job_unref(j);
    pthread_mutex_unlock(&e->mu);
}

void lma_engine_get_stats(lma_engine *e, lma_engine_stats *s) {
    pthread_mutex_lock(&e->mu);
    *s = e->st;
    s->active = e->n_active;
    s->queued = e->n_queued;
    pthread_mutex_unlock(&e->mu);
}
