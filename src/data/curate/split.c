/* split: deterministic train/validation/test split by seed, optionally stratified.
 * Pass 1 counts each stratum; pass 2 assigns each record by sequential selection
 * sampling (each remaining slot equally likely), so counts are exact per stratum
 * and memory holds only the per-stratum counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/rng.h"
#include "core/buf.h"
#include "data/curate/internal.h"
#include "data/curate/u64map.h"

#define MAX_STRATA 100000

void lma_split_default_params(lma_split_params *p) {
    memset(p, 0, sizeof *p);
    p->ratio[0] = 0.8; p->ratio[1] = 0.1; p->ratio[2] = 0.1;
    p->seed = 42;
}

typedef struct {
    lma_u64map index;
    size_t n, cap;
    char **name;       /* (n) */
    uint64_t *key;     /* (n) */
    int64_t (*count)[3]; /* (n, 3): pass 1 total in [0]; then targets */
    int64_t (*rem)[3];
    lma_rng *rng;
} strata;

static uint64_t stratum_of(const lma_example *ex, const char *field, char *name, size_t cap) {
    if (!field) { snprintf(name, cap, "(all)"); return 1; }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ex->json, field);
    if (!v || cJSON_IsNull(v)) { snprintf(name, cap, "(none)"); return 2; }
    if (cJSON_IsString(v)) snprintf(name, cap, "%s", v->valuestring);
    else if (cJSON_IsNumber(v)) snprintf(name, cap, "%.17g", v->valuedouble);
    else if (cJSON_IsBool(v)) snprintf(name, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else snprintf(name, cap, "(other)");
    return lma_hash64(name, strlen(name), 0x5e1) | 4;
}

static lma_status stratum_slot(strata *s, uint64_t key, const char *name, int create, size_t *slot) {
    uint32_t v = lma_u64map_get(&s->index, key);
    if (v != UINT32_MAX) { *slot = v; return LMA_OK; }
    if (!create) return lma_error(LMA_ERR_INTERNAL, "split: stratum \"%s\" appeared in pass 2 only (input changed?)", name);
    if (s->n >= MAX_STRATA) return lma_error(LMA_ERR_UNSUPPORTED, "split: more than %d distinct values of the stratify field", MAX_STRATA);
    if (s->n == s->cap) { /* 5 arrays, one capacity */
        void *const arrs[] = {&s->name, &s->key, &s->count, &s->rem, &s->rng};
        const size_t esz[] = {sizeof *s->name, sizeof *s->key, sizeof *s->count, sizeof *s->rem, sizeof *s->rng};
        LMA_TRY(lma_grow_all(&s->cap, s->n + 1, 16, "split strata", 5, arrs, esz));
    }
    size_t i = s->n;
    if (!(s->name[i] = strdup(name))) return lma_error(LMA_ERR_NOMEM, "split: out of memory");
    s->key[i] = key;
    memset(s->count[i], 0, sizeof s->count[i]);
    s->n++;
    LMA_TRY(lma_u64map_insert(&s->index, key, (uint32_t)i));
    *slot = i;
    return LMA_OK;
}

lma_status lma_data_split(const char *in, const lma_split_params *p, cJSON **out) {
    *out = NULL;
    double tot = p->ratio[0] + p->ratio[1] + p->ratio[2];
    for (int k = 0; k < 3; k++)
        if (!(p->ratio[k] >= 0) || !(tot > 0.999 && tot < 1.001))
            return lma_error(LMA_ERR_ARG, "split: ratios must be >= 0 and sum to 1 (got %g, %g, %g)", p->ratio[0], p->ratio[1], p->ratio[2]);
    if (!strcmp(in, "-")) return lma_error(LMA_ERR_ARG, "split: reads its input twice, so it needs a file, not stdin");
    for (int k = 0; k < 3; k++) LMA_TRY(lma_curate_check_output(in, p->out_path[k]));
    LMA_TRY(lma_curate_check_output(in, p->report_path));
    strata s; memset(&s, 0, sizeof s);
    lma_ex_reader *r = NULL;
    lma_atomic_file fo[3];
    int open[3] = {0, 0, 0};
    lma_report rep; memset(&rep, 0, sizeof rep);
    lma_buf line = {0};
    char name[256];
    lma_curate_bad bad = {0};
    int64_t n_ex = 0, written[3] = {0, 0, 0};
    lma_status st = lma_ex_open(in, &r);
    while (!st) {
        lma_example *ex;
        if ((st = lma_ex_next(r, &ex)) || !ex) break;
        if (ex->error_code) { lma_curate_on_bad(ex, &bad); continue; }
        size_t slot = 0;
        uint64_t key = stratum_of(ex, p->stratify, name, sizeof name);
        if (!(st = stratum_slot(&s, key, name, 1, &slot))) { s.count[slot][0]++; n_ex++; }
    }
    lma_ex_close(r); r = NULL;
    lma_rng base; lma_rng_seed(&base, p->seed);
    for (size_t i = 0; i < s.n && !st; i++) {
        int64_t n = s.count[i][0];
        int64_t nv = (int64_t)(n * p->ratio[1] + 0.5), nt = (int64_t)(n * p->ratio[2] + 0.5);
        if (nv + nt > n) nt = n - nv;
        s.rem[i][0] = n - nv - nt; s.rem[i][1] = nv; s.rem[i][2] = nt;
        memcpy(s.count[i], s.rem[i], sizeof s.rem[i]);
        lma_rng tmp = base;
        s.rng[i] = lma_rng_split(&tmp, s.key[i]);
    }
    for (int k = 0; k < 3 && !st; k++)
        if (p->out_path[k] && !(st = lma_atomic_open(&fo[k], p->out_path[k]))) open[k] = 1;
    if (!st) st = lma_report_open(&rep, p->report_path, "split", in, "unreadable");
    lma_curate_bad reported = {&rep, 0, {0}}; /* the same records again, now into the report */
    if (!st) st = lma_ex_open(in, &r);
    while (!st) {
        lma_example *ex;
        if ((st = lma_ex_next(r, &ex)) || !ex) break;
        if (ex->error_code) { st = lma_curate_on_bad(ex, &reported); continue; }
        size_t slot = 0;
        uint64_t key = stratum_of(ex, p->stratify, name, sizeof name);
        if ((st = stratum_slot(&s, key, name, 0, &slot))) break;
        int64_t left = s.rem[slot][0] + s.rem[slot][1] + s.rem[slot][2];
        if (left <= 0) { st = lma_error(LMA_ERR_INTERNAL, "split: %s changed between passes", in); break; }
        int64_t u = (int64_t)lma_rng_below(&s.rng[slot], (uint64_t)left);
        int b = u < s.rem[slot][0] ? 0 : u < s.rem[slot][0] + s.rem[slot][1] ? 1 : 2;
        s.rem[slot][b]--;
        written[b]++;
        if (!open[b]) continue;
        line.len = 0;
        if (!(st = lma_ex_line(ex, &line)) && !(st = lma_buf_append(&line, "\n", 1)) &&
            (st = lma_atomic_write(&fo[b], line.p, line.len)))
            open[b] = 0;
    }
    cJSON *summary = NULL;
    if (!st && !(summary = cJSON_CreateObject())) st = lma_error(LMA_ERR_NOMEM, "split: out of memory");
    if (!st) {
        static const char *names[3] = {"train", "validation", "test"};
        cJSON_AddNumberToObject(summary, "examples", (double)n_ex);
        lma_curate_bad_summary(&bad, summary);
        cJSON_AddNumberToObject(summary, "seed", (double)p->seed);
        for (int k = 0; k < 3; k++) cJSON_AddNumberToObject(summary, names[k], (double)written[k]);
        if (p->stratify) {
            cJSON *so = cJSON_AddObjectToObject(summary, "strata");
            for (size_t i = 0; so && i < s.n && i < 1000; i++) {
                cJSON *a = cJSON_CreateIntArray((int[]){(int)s.count[i][0], (int)s.count[i][1], (int)s.count[i][2]}, 3);
                if (a) cJSON_AddItemToObject(so, s.name[i], a);
            }
        }
        for (int k = 0; k < 3 && !st; k++)
            if (open[k]) { st = lma_atomic_commit(&fo[k]); open[k] = 0; }
        if (!st) st = lma_report_close(&rep, summary);
    }
    for (int k = 0; k < 3; k++) if (open[k]) lma_atomic_abort(&fo[k]);
    lma_report_abort(&rep);
    lma_ex_close(r);
    lma_buf_free(&line);
    for (size_t i = 0; i < s.n; i++) free(s.name[i]);
    free(s.name); free(s.key); free(s.count); free(s.rem); free(s.rng);
    lma_u64map_free(&s.index);
    if (st) { cJSON_Delete(summary); return st; }
    *out = summary;
    return LMA_OK;
}
