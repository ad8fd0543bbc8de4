/* embr: the command-line tool. The commands, in the order `embr --help` lists them; each
 * cli/cmd_<command>.c exports its registry entry (name, summary, run function, sub-commands) and
 * parses its own flags from a table (cli/args.c), so --help always matches the behaviour. */
#include "commands.h"

static const cli_entry *const commands[] = {
    &cli_w2v, &cli_tsne, &cli_index, &cli_collection, &cli_train, &cli_embed, &cli_eval, &cli_clip, &cli_dino,
    &cli_search, &cli_convert, &cli_recall, &cli_info, &cli_synth, &cli_plot,
};

int main(int argc, char **argv) {
  return cli_main(commands, (int)(sizeof commands / sizeof commands[0]), argc, argv);
}
