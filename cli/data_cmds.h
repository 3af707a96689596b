/* What the two halves of 'lmadapt data' share: cmd_data.c (text curation:
 * validate, stats, dedup, filter, decontam, split, accept; and the dispatcher) and
 * cmd_data_model.c (model-backed: generate, judge, debug). */
#ifndef LMA_CLI_DATA_CMDS_H
#define LMA_CLI_DATA_CMDS_H
#include "core/json.h"

int cli_data_generate(int argc, char **argv);
int cli_data_judge(int argc, char **argv);
int cli_data_debug(int argc, char **argv);

/* "label: key n key n ..." for an object of counts (nothing when empty) */
void cli_data_print_counts(const cJSON *o, const char *label);
/* When the summary counts unreadable records: one line on stderr naming the first line
 * numbers ("3 unreadable records skipped (lines 2, 5, 9); the errors are in the report",
 * or "run 'lmadapt data validate FILE'"). */
void cli_data_warn_unreadable(const char *cmd, const cJSON *summary);
/* o[k] as a number, 0 when absent */
double cli_data_getn(const cJSON *o, const char *k);
#endif
