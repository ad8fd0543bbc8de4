/* Shared pieces of the `embr` commands: exit codes, error reporting, progress bar, loading
 * inputs and writing outputs. */
#ifndef EMBR_CLI_COMMON_H
#define EMBR_CLI_COMMON_H

#include "args.h"
#include "embr/embr.h"

#include <stdio.h>

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

/* Prints "embr CMD: <embr_last_error() or strerror(status)>" and returns EXIT_ERR. */
int cli_fail(int status);

/* Progress display: a bar on a TTY, a plain line every few seconds otherwise, nothing when quiet. */
typedef struct cli_bar {
  const char *label;
  int tty;
  int quiet;
  double last_plain;    /* when the last plain line was printed (starts at init) */
  uint64_t last_done;   /* what it said */
  int printed;          /* plain lines printed so far */
  int drawn;
} cli_bar;

void cli_bar_init(cli_bar *b, const char *label, int quiet);
/* An embr_progress that draws on b. */
embr_progress cli_bar_progress(cli_bar *b);
/* Clears the bar line (call before printing anything else). */
void cli_bar_done(cli_bar *b);

/* Resolves a --format value (NULL = by extension) and reads the matrix; on failure prints the
 * message and returns EXIT_ERR (EXIT_USAGE for an unknown format name). */
int cli_read_matrix(const char *path, const char *format, embr_matrix *m);
/* The same, also accepting a matrix of 0 rows (a .npy of shape (0, d)): for info and convert.
 * cli_read_matrix refuses one with a message saying the command needs rows. */
int cli_read_matrix_any(const char *path, const char *format, embr_matrix *m);

/* Checks, before any long work, that `path` can be created: its directory exists and is
 * writable and the path is not a directory. Prints the problem and returns EXIT_ERR. */
int cli_check_output(const char *path);

/* 1 when the two names denote one file: the same device and inode when both exist, the same
 * resolved directory and name when neither does yet. "-" (a stream) is never the same file. */
int cli_same_file(const char *a, const char *b);

/* The files a command names: its flag (for messages), the path (NULL = not given) and whether it
 * is written. */
typedef struct cli_file {
  const char *flag;
  const char *path;
  int output;
} cli_file;
/* Before any long work: refuses (EXIT_USAGE, naming both flags) an output that is one of the
 * inputs or another output, then checks each output can be created (cli_check_output). */
int cli_check_files(const cli_file *files, int n);

/* Writes several outputs all-or-nothing: each to a temporary name first, renamed into place only
 * when every one was written. Messages name the real outputs, never the temporary names; two
 * outputs naming one file are refused (EXIT_USAGE). */
typedef struct cli_output {
  const char *path;
  int (*write)(const char *path, const void *ctx);
  const void *ctx;
} cli_output;
int cli_write_outputs(cli_output *outs, int n);

/* Search results (n x k distances and ids) as `search` and `index search` write them:
 * ids to .ivecs (refusing ids above 2^31-1), distances to .fvecs. ctx is a cli_search_out. */
typedef struct cli_search_out {
  int64_t nq;
  int k;
  const float *dist;
  const int64_t *ids;
} cli_search_out;
int cli_write_search_ids(const char *path, const void *ctx);
int cli_write_search_dist(const char *path, const void *ctx);

/* JSON string literal with escapes. */
void cli_json_string(FILE *f, const char *s);
/* A float as JSON (finite numbers with round-trip precision, null for NaN/Inf). */
void cli_json_float(FILE *f, float v);

#endif
