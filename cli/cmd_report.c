/* lmadapt report RUN_DIR...: the runs as one self-contained HTML page (report/report.h). */
#include <stdio.h>
#include "cli.h"
#include "core/io.h"
#include "opts.h"
#include "outputs.h"
#include "report/report.h"

#define MAX_RUNS 64

int cmd_report(int argc, char **argv) {
    const char *out = NULL, *runs_v[MAX_RUNS];
    cli_list runs = CLI_LIST_OF(runs_v);
    /* --out is checked below against the files read, not by cli_parse against the run folders:
     * the default, RUN_DIR/report.html, sits inside an input folder, and so may --out. */
    cli_opt own[] = {
        CLI_STR("out", 'o', &out, "F.html", "the page to write", .def_text = "report.html in the first RUN_DIR"),
        CLI_END};
    cli_group groups[] = {{NULL, own}, {0}};
    cli_spec spec = {
        .cmd = "report",
        .usage = "lmadapt report RUN_DIR... [--out F.html]",
        .about = "Writes one self-contained HTML page (inline CSS and SVG, no JavaScript, no network) for\n"
                 "one or more run folders: curves of loss, validation loss, learning rate, gradient norm,\n"
                 "tokens/s and memory from each metrics.jsonl (the runs overlaid, one colour each), the\n"
                 "adaptation ladder and forgetting tables of a summary.json (lmadapt demo), and the\n"
                 "settings of each run.json. Every training command writes RUN/report.html at its end.\n",
        .groups = groups,
        .epilog = "Example: lmadapt report runs/sft-a runs/sft-b --out compare.html   (docs/report.md)\n",
        .pos_name = "RUN_DIR",
        .pos_list = &runs};
    cli_args a;
    int rc = cli_parse(&spec, argc, argv, &a);
    if (rc != CLI_CONTINUE) return rc;
    if (runs.n < 1) return cli_usage_error("report", "give at least one RUN_DIR");
    char def[4200];
    if (!out) {
        if (lma_path_join(def, sizeof def, runs.v[0], "report.html") != LMA_OK) return cli_fail("report", NULL);
        out = def;
    }
    /* the output is never one of the files read (nor a folder holding one) */
    static const char *const read_names[] = {"metrics.jsonl", "run.json", "summary.json"};
    static char in_paths[MAX_RUNS * 3][4200];
    cli_path ins[MAX_RUNS * 3], outs[1] = {{"--out", out}};
    int ni = 0;
    for (int i = 0; i < runs.n; i++)
        for (int k = 0; k < 3; k++) {
            if (lma_path_join(in_paths[ni], sizeof in_paths[ni], runs.v[i], read_names[k]) != LMA_OK)
                return cli_fail("report", NULL);
            ins[ni] = (cli_path){"input", in_paths[ni]};
            ni++;
        }
    if ((rc = cli_check_paths("report", outs, 1, ins, ni)) != 0) return rc;
    if (lma_report_write(runs.v, runs.n, out) != LMA_OK) return cli_fail("report", NULL);
    printf("report: %s (%d run%s)\n", out, runs.n, runs.n == 1 ? "" : "s");
    return 0;
}
