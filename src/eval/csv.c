#include "eval/csv.h"
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"

void lma_csv_free(char **cells, size_t n_cells) {
    if (!cells) return;
    for (size_t i = 0; i < n_cells; i++) free(cells[i]);
    free(cells);
}

lma_status lma_csv_parse(const char *buf, size_t len, const char *ctx, size_t n_cols, char ***cells,
                         size_t *n_rows) {
    *cells = NULL; *n_rows = 0;
    if (n_cols == 0 || n_cols > 4096) return lma_error(LMA_ERR_ARG, "%s: bad column count %zu", ctx, n_cols);
    size_t cap = 0, n = 0, line = 1, rec_line = 1, nf = 0;
    char **out = NULL;
    lma_buf f = {0};
    lma_status st = LMA_OK;
    size_t i = 0;
    while (i < len) {
        /* at the start of a record: skip blank lines */
        if (nf == 0 && f.len == 0 && (buf[i] == '\n' || buf[i] == '\r')) {
            if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n') i++;
            i++; line++;
            continue;
        }
        rec_line = line;
        /* one record */
        for (;;) {
            /* one field */
            f.len = 0;
            int quoted = 0, end_rec = 0;
            if (i < len && buf[i] == '"') { quoted = 1; i++; }
            while (i < len) {
                char c = buf[i];
                if (quoted) {
                    if (c == '"') {
                        if (i + 1 < len && buf[i + 1] == '"') { if (lma_buf_push(&f, '"')) goto nomem; i += 2; continue; }
                        quoted = 0; i++;
                        continue;
                    }
                    if (c == '\n') line++;
                    else if (c == '\r' && !(i + 1 < len && buf[i + 1] == '\n')) line++;
                    if (lma_buf_push(&f, c)) goto nomem;
                    i++;
                    continue;
                }
                if (c == ',') { i++; break; }
                if (c == '\n' || c == '\r') {
                    if (c == '\r' && i + 1 < len && buf[i + 1] == '\n') i++;
                    i++; line++;
                    end_rec = 1;
                    break;
                }
                if (lma_buf_push(&f, c)) goto nomem;
                i++;
            }
            if (quoted) { st = lma_error(LMA_ERR_FORMAT, "%s:%zu: quoted field not closed before the end of the file", ctx, rec_line); goto fail; }
            if (i >= len) end_rec = 1;
            if (nf >= n_cols) {
                st = lma_error(LMA_ERR_FORMAT, "%s:%zu: more than %zu fields in the record", ctx, rec_line, n_cols);
                goto fail;
            }
            if (lma_grow(&out, &cap, n * n_cols + nf + 1, sizeof *out, n_cols * 64, "CSV cells")) goto nomem;
            char *s = malloc(f.len + 1);
            if (!s) goto nomem;
            if (f.len) memcpy(s, f.p, f.len);
            s[f.len] = 0;
            out[n * n_cols + nf++] = s;
            if (end_rec) break;
        }
        if (nf != n_cols) {
            st = lma_error(LMA_ERR_FORMAT, "%s:%zu: %zu fields in the record, expected %zu", ctx, rec_line, nf, n_cols);
            goto fail;
        }
        n++; nf = 0; f.len = 0;
    }
    free(f.p);
    *cells = out; *n_rows = n;
    return LMA_OK;
nomem:
    st = lma_error(LMA_ERR_NOMEM, "%s: out of memory reading CSV", ctx);
fail:
    free(f.p);
    lma_csv_free(out, n * n_cols + nf);
    return st;
}
