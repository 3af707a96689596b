#include "cli.h"
int cmd_score(int argc, char **argv) { (void)argc; (void)argv; return cli_fail("score", "not built yet"); }
