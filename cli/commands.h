/* The commands of the `embr` tool; each returns the process exit code. */
#ifndef EMBR_CLI_COMMANDS_H
#define EMBR_CLI_COMMANDS_H

#include "common.h"

int cmd_search(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_recall(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_w2v(int argc, char **argv);

#endif
