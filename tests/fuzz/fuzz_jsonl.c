/* libFuzzer: the JSONL / JSON-array example readers (all formats) on arbitrary
 * bytes, both as one record (lma_ex_parse) and as a streamed file (lma_ex_open /
 * lma_ex_next), plus the curation checks on every usable example. Invariants:
 * usable examples have a known format and NUL-terminated texts of the stated
 * length; unusable ones carry an error code and a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "data/curate/curate.h"

static void check(const lma_example *ex) {
    if (ex->error_code) {
        if (!ex->error[0]) abort();
        return;
    }
    if (ex->format == LMA_EXF_UNKNOWN || !ex->json) abort();
    const lma_ex_msg *l[3] = {ex->msgs, ex->chosen, ex->rejected};
    size_t n[3] = {ex->n_msgs, ex->n_chosen, ex->n_rejected};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < n[k]; i++)
            if (!l[k][i].text || l[k][i].text[l[k][i].len] != 0 || strlen(l[k][i].text) != l[k][i].len) abort();
    lma_buf b = {0};
    if (lma_ex_text(ex, LMA_EX_ALL, &b) == LMA_OK && b.p) {
        lma_filter_params fp; lma_filter_default_params(&fp);
        fp.ngram_min_words = 0;
        lma_filter_verdict v;
        lma_filter_check(&fp, b.p, b.len, &v);
        lma_text_format_of(b.p, b.len);
        lma_script_of(b.p, b.len);
    }
    b.len = 0;
    if (lma_ex_line(ex, &b) == LMA_OK && memchr(b.p, '\n', b.len)) abort(); /* one line */
    lma_buf_free(&b);
    lma_validate_params vp; lma_validate_default_params(&vp);
    vp.inference_system = "sys";
    lma_finding f[8];
    lma_validate_example(ex, &vp, f, 8);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    static lma_example ex;
    lma_ex_parse((const char *)data, size, "fuzz", 1, &ex);
    check(&ex);
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_jsonl.%ld", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, size, f);
        fclose(f);
        lma_ex_reader *r = NULL;
        if (lma_ex_open(path, &r) == LMA_OK) {
            lma_example *e;
            int64_t last = 0;
            while (lma_ex_next(r, &e) == LMA_OK && e) {
                if (e->line < 1 || e->line < last) abort(); /* lines increase */
                last = e->line;
                check(e);
            }
        }
        lma_ex_close(r);
        remove(path);
    }
    lma_clear_error();
    return 0;
}
