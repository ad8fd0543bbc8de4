/* The commands of the `embr` tool: their registry entries (cli_entry, args.h), and helpers some
 * of them share. */
#ifndef EMBR_CLI_COMMANDS_H
#define EMBR_CLI_COMMANDS_H

#include "common.h"

extern const cli_entry cli_search, cli_convert, cli_recall, cli_info, cli_synth, cli_w2v, cli_tsne, cli_index,
    cli_collection, cli_plot, cli_train, cli_embed, cli_eval, cli_clip, cli_dino;

/* Draws a map with the default plot settings (cmd_plot.c; for `embr tsne --plot` and `w2v map`,
 * through cli_write_outputs). labels and texts: NULL or n strings. Returns an embr status. */
int cli_plot_write(const char *path, const float *xy, int64_t n, int ld, char *const *labels, char *const *texts,
                   const char *title);

/* One string per line, exactly npoints of them (message names the file and both counts);
 * free with embr_lines_free. Returns an exit code. */
int cli_read_lines(const char *path, const char *what, int64_t npoints, embr_lines *out);
/* Coordinates: any matrix file, or a TSV map whose last column holds labels (then in m->labels).
 * Returns an exit code. */
int cli_read_map(const char *path, const char *in_format, embr_matrix *m);
/* Search results as JSON on stdout (cmd_search.c; also `index search --json`); labels: NULL or the
 * base's row labels. */
void cli_print_results_json(int64_t nq, int k, const float *dist, const int64_t *ids, char *const *labels,
                            embr_metric metric);

#endif
