/* The output rules (outputs.h). */
#include "outputs.h"
#include <dirent.h>
#include <string.h>
#include "cli.h"
#include "core/io.h"
#include "core/outdir.h"

int cli_check_paths(const char *cmd, const cli_path *outs, int n_out, const cli_path *ins, int n_in) {
    for (int i = 0; i < n_out; i++) {
        if (!outs[i].path) continue;
        for (int j = 0; j < n_in; j++) {
            if (!ins[j].path) continue;
            lma_path_rel r = lma_path_relate(outs[i].path, ins[j].path);
            if (r == LMA_PATH_SAME)
                return cli_usage_error(cmd, "%s %s is the input %s %s: lmadapt never writes over an input", outs[i].flag,
                                       outs[i].path, ins[j].flag, ins[j].path);
            if (r == LMA_PATH_INSIDE)
                return cli_usage_error(cmd, "%s %s is inside the input %s %s: write outputs outside input folders",
                                       outs[i].flag, outs[i].path, ins[j].flag, ins[j].path);
            if (r == LMA_PATH_CONTAINS)
                return cli_usage_error(cmd, "%s %s holds the input %s %s: choose an output folder apart from the inputs",
                                       outs[i].flag, outs[i].path, ins[j].flag, ins[j].path);
        }
        for (int j = 0; j < i; j++) {
            if (!outs[j].path) continue;
            lma_path_rel r = lma_path_relate(outs[i].path, outs[j].path);
            if (r != LMA_PATH_APART)
                return cli_usage_error(cmd, "%s %s and %s %s %s: give each output its own path", outs[j].flag,
                                       outs[j].path, outs[i].flag, outs[i].path,
                                       r == LMA_PATH_SAME ? "are the same file" : "overlap");
        }
    }
    return 0;
}

int cli_check_out_dir(const char *cmd, const char *flag, const char *dir, int overwrite) {
    if (lma_dir_is_empty(dir) || overwrite) return 0;
    if (!lma_is_dir(dir))
        return cli_usage_error(cmd, "%s %s exists and is not a folder; give a new folder, or --overwrite to replace it",
                               flag, dir);
    return cli_usage_error(cmd, "%s %s is not empty; give a new or empty folder, or --overwrite to replace it whole",
                           flag, dir);
}
