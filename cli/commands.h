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
int cmd_tsne(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_collection(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_eval(int argc, char **argv);

/* Draws a map with the default plot settings (cmd_plot.c; used by `embr tsne --plot`). labels and
 * texts: NULL or n strings. Returns an exit code, the message printed as "embr CMD: ...". */
/* The same without printing: returns an embr status (for cli_write_outputs). */
int cli_plot_write(const char *path, const float *xy, int64_t n, int ld, char *const *labels, char *const *texts,
                   const char *title);
int cli_plot_map(const char *cmd, const char *path, const float *xy, int64_t n, int ld,
                 char *const *labels, char *const *texts, const char *title);

/* One string per line, exactly npoints of them (message names the file and both counts);
 * free with cli_lines_free. Returns an exit code. */
int cli_read_lines(const char *cmd, const char *path, const char *what, int64_t npoints, char ***out);
void cli_lines_free(char **v, int64_t n);
/* Coordinates: any matrix file, or a TSV map whose last column holds labels (*labels set then). */
int cli_read_map(const char *cmd, const char *path, const char *in_format, embr_matrix *m, char ***labels);

#endif
