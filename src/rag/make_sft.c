/* rag make-sft's examples (make_sft.h). */
#include "rag/make_sft.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/rng.h"
#include "rag/ask.h"

int lma_rag_contains(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    if (!n) return 0;
    for (const char *p = hay; *p; p++)
        if (!strncasecmp(p, needle, n)) return 1;
    return 0;
}

static int has_answer(const char *text, const char *const *answers, size_t na) {
    for (size_t i = 0; i < na; i++)
        if (lma_rag_contains(text, answers[i])) return 1;
    return 0;
}

/* contains an answer and (with doc ids) belongs to a labelled document */
static int is_oracle(const lma_rag_chunk_row *r, const char *const *answers, size_t na, const char *const *docs,
                     size_t nd) {
    if (!has_answer(r->text, answers, na)) return 0;
    if (!nd) return 1;
    for (size_t i = 0; i < nd; i++)
        if (!strcmp(r->doc_id, docs[i])) return 1;
    return 0;
}

typedef struct {
    int64_t id;
    int distractor;
    lma_rag_chunk_row row;
} source;

void lma_rag_sft_example_free(lma_rag_sft_example *e) {
    if (!e) return;
    free(e->user), free(e->answer), free(e->chunk_ids), free(e->distractor);
    memset(e, 0, sizeof *e);
}

static int listed(const source *v, size_t n, int64_t id) {
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id) return 1;
    return 0;
}

lma_status lma_rag_sft_example_make(lma_rag_store *s, lma_rag_searcher *sr, const lma_rag_sft_params *p,
                                    const int64_t *all_ids, size_t n_all, uint64_t index, const char *question,
                                    const char *const *answers, size_t na, const char *const *doc_ids, size_t nd,
                                    lma_rag_sft_example *out, int *skipped) {
    memset(out, 0, sizeof *out);
    *skipped = 0;
    if (!na) return lma_error(LMA_ERR_ARG, "rag make-sft: a question without answers");
    int k = p->search.k, nk = 0;
    size_t cap = (size_t)k + (size_t)(p->distractors > 0 ? p->distractors : 0) + 1, n = 0;
    source *v = calloc(cap, sizeof *v);
    lma_rag_hit *hits = calloc((size_t)k, sizeof *hits);
    lma_rag_source *src = calloc(cap, sizeof *src);
    lma_status r = v && hits && src ? LMA_OK : lma_error(LMA_ERR_NOMEM, "rag make-sft: out of memory");
    lma_rng root, rng;
    lma_rng_seed(&root, p->seed);
    rng = lma_rng_split(&root, index);
    int keep = lma_rng_uniform(&rng) < p->oracle_share;
    /* 1. retrieve */
    if (!r) r = lma_rag_search(sr, question, &p->search, hits, &nk);
    int gold = -1;
    for (int i = 0; !r && i < nk; i++) {
        r = s->ops->chunk_get(s, hits[i].id, &v[n].row);
        if (r) break;
        v[n].id = hits[i].id;
        if (gold < 0 && is_oracle(&v[n].row, answers, na, doc_ids, nd)) gold = (int)n;
        n++;
    }
    /* 2. the oracle chunk, when retrieval missed it: BM25 on the answer text */
    source found = {0};
    int have_found = 0;
    if (!r && gold < 0) {
        int64_t ids[64];
        double sc[64];
        int nb = 0;
        for (size_t a = 0; !r && a < na && !have_found; a++) {
            r = s->ops->bm25(s, answers[a], NULL, 64, ids, sc, &nb);
            for (int i = 0; !r && i < nb && !have_found; i++) {
                lma_rag_chunk_row row;
                r = s->ops->chunk_get(s, ids[i], &row);
                if (r) break;
                if (is_oracle(&row, answers, na, doc_ids, nd)) found = (source){ids[i], 0, row}, have_found = 1;
                else lma_rag_chunk_row_free(&row);
            }
        }
        if (!r && !have_found) *skipped = 1;
    }
    if (r || *skipped) goto done;
    /* 3. keep the oracle chunk, or remove every chunk with the answer */
    if (keep) {
        if (gold < 0) {
            if (n == (size_t)k && n) lma_rag_chunk_row_free(&v[--n].row);
            v[n++] = found, have_found = 0;
        }
    } else {
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            if (has_answer(v[i].row.text, answers, na)) lma_rag_chunk_row_free(&v[i].row);
            else v[w++] = v[i];
        }
        n = w;
    }
    /* 4. distractors: random chunks without an answer, not already there */
    for (int d = 0, tries = 0; !r && d < p->distractors && n_all && tries < 20 * p->distractors + 20; tries++) {
        int64_t id = all_ids[lma_rng_below(&rng, n_all)];
        if (listed(v, n, id)) continue;
        lma_rag_chunk_row row;
        r = s->ops->chunk_get(s, id, &row);
        if (r) break;
        if (has_answer(row.text, answers, na)) { lma_rag_chunk_row_free(&row); continue; }
        v[n++] = (source){id, 1, row};
        d++;
    }
    if (r) goto done;
    /* 5. shuffle (Fisher-Yates), number, render */
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)lma_rng_below(&rng, i);
        source t = v[i - 1];
        v[i - 1] = v[j], v[j] = t;
    }
    out->chunk_ids = malloc((n ? n : 1) * sizeof *out->chunk_ids);
    out->distractor = malloc((n ? n : 1) * sizeof *out->distractor);
    if (!out->chunk_ids || !out->distractor) { r = lma_error(LMA_ERR_NOMEM, "rag make-sft: out of memory"); goto done; }
    const char *said = answers[0]; /* the answer as the cited source has it */
    for (size_t i = 0; i < n; i++) {
        src[i] = (lma_rag_source){v[i].row.doc_id, v[i].row.text};
        out->chunk_ids[i] = v[i].id, out->distractor[i] = v[i].distractor;
        if (keep && !out->gold && is_oracle(&v[i].row, answers, na, doc_ids, nd)) {
            out->gold = (int)i + 1;
            for (size_t a = na; a-- > 0;)
                if (lma_rag_contains(v[i].row.text, answers[a])) said = answers[a];
        }
    }
    out->n_sources = n;
    out->oracle = keep;
    size_t last = n ? strlen(src[n - 1].text) : 0;
    r = lma_rag_user_message(question, src, n, last, &out->user);
    if (!r) {
        size_t len = strlen(said) + sizeof LMA_RAG_REFUSAL + 32;
        out->answer = malloc(len);
        if (!out->answer) r = lma_error(LMA_ERR_NOMEM, "rag make-sft: out of memory");
        else if (keep) snprintf(out->answer, len, "%s [%d]", said, out->gold);
        else snprintf(out->answer, len, "%s", LMA_RAG_REFUSAL);
    }
done:
    for (size_t i = 0; v && i < n; i++) lma_rag_chunk_row_free(&v[i].row);
    if (have_found) lma_rag_chunk_row_free(&found.row);
    free(v), free(hits), free(src);
    if (r || *skipped) lma_rag_sft_example_free(out);
    return r;
}
