/* The commands of the `embr` tool: their registry entries (cli_entry, args.h), and helpers some
 * of them share. */
#ifndef EMBR_CLI_COMMANDS_H
#define EMBR_CLI_COMMANDS_H

#include "common.h"

extern const cli_entry cli_search, cli_convert, cli_recall, cli_info, cli_synth, cli_w2v, cli_tsne, cli_index,
    cli_collection, cli_plot, cli_train, cli_embed, cli_eval;

/* Draws a map with the default plot settings (cmd_plot.c; for `embr tsne --plot` and `w2v map`,
 * through cli_write_outputs). labels and texts: NULL or n strings. Returns an embr status. */
int cli_plot_write(const char *path, const float *xy, int64_t n, int ld, char *const *labels, char *const *texts,
                   const char *title);

/* One string per line, exactly npoints of them (message names the file and both counts);
 * free with cli_lines_free. Returns an exit code. */
int cli_read_lines(const char *path, const char *what, int64_t npoints, char ***out);
void cli_lines_free(char **v, int64_t n);
/* Coordinates: any matrix file, or a TSV map whose last column holds labels (*labels set then). */
int cli_read_map(const char *path, const char *in_format, embr_matrix *m, char ***labels);

#endif
