/* CSV (RFC 4180 as Python's csv module reads it): fields separated by ',', quoted
 * fields with "" for a quote and any byte (CR and LF included) inside; outside
 * quotes a record ends at LF, CRLF or a lone CR. Text after a closing quote is kept
 * (as Python does); blank lines are skipped. Every record must have n_cols fields.
 *
 * Ownership: *cells is malloc'd, (n_rows, n_cols) row-major NUL-terminated strings;
 * free with lma_csv_free(cells, n_rows * n_cols). On failure nothing is returned
 * and the message names ctx and the line where the bad record starts. */
#ifndef LMA_EVAL_CSV_H
#define LMA_EVAL_CSV_H
#include <stddef.h>
#include "core/status.h"

lma_status lma_csv_parse(const char *buf, size_t len, const char *ctx, size_t n_cols, char ***cells,
                         size_t *n_rows);
void lma_csv_free(char **cells, size_t n_cells);
#endif
