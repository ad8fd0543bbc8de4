/* Table-driven flag parsing for `embr <command>`: every command declares its flags once, with
 * type, default and help text; parsing, validation and --help all come from that table. */
#ifndef EMBR_CLI_ARGS_H
#define EMBR_CLI_ARGS_H

#include <stdint.h>

typedef enum cli_type {
  CLI_FLAG,   /* a switch: dest is int, set to 1 */
  CLI_INT,    /* dest is int64_t; min/max enforced */
  CLI_DOUBLE, /* dest is double; min/max enforced */
  CLI_STRING  /* dest is const char * */
} cli_type;

typedef struct cli_opt {
  const char *name;    /* "--base" */
  const char *alias;   /* "-b", or NULL */
  cli_type type;
  void *dest;
  const char *metavar; /* "FILE" */
  const char *help;
  const char *def;     /* shown as [default: ...]; NULL shows nothing */
  int required;
  double min, max;     /* numeric range (both 0: unchecked) */
  int seen;            /* set by the parser */
  int alias_value;     /* CLI_FLAG: the alias takes a 0/1 value (word2vec's "-hs 1") */
} cli_opt;

typedef struct cli_command {
  const char *name;     /* "search" */
  const char *summary;  /* one line for `embr --help` */
  const char *usage;    /* "embr search --base FILE --query FILE [options]" */
  const char *details;  /* paragraph after the flags, or NULL */
  cli_opt *opts;
  int nopts;
  int min_pos, max_pos; /* positional arguments allowed */
  const char **pos;     /* filled with the positionals (array of max_pos) */
  int npos;
} cli_command;

enum { CLI_OK = 0, CLI_HELP = 1, CLI_USAGE = 2 };

/* Parses argv (argv[0] is the command name). Returns CLI_OK, CLI_HELP (help printed to stdout)
 * or CLI_USAGE (message printed to stderr). */
int cli_parse(cli_command *cmd, int argc, char **argv);
void cli_print_help(const cli_command *cmd);
/* Prints "embr CMD: message" and a hint to stderr; returns CLI_USAGE (exit code 2). */
int cli_usage_error(const cli_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Convenience constructors for the option tables. */
#define OPT_FLAG(n, a, d, h) {n, a, CLI_FLAG, d, NULL, h, "off", 0, 0, 0, 0, 0}
/* A switch whose alias takes a value: "--hs" or "-hs 1" / "-hs 0". */
#define OPT_FLAG_V(n, a, d, h) {n, a, CLI_FLAG, d, NULL, h, "off", 0, 0, 0, 0, 1}
#define OPT_STR(n, a, d, mv, h, def) {n, a, CLI_STRING, d, mv, h, def, 0, 0, 0, 0, 0}
#define OPT_STR_REQ(n, a, d, mv, h) {n, a, CLI_STRING, d, mv, h, NULL, 1, 0, 0, 0, 0}
#define OPT_INT(n, a, d, mv, h, def, lo, hi) {n, a, CLI_INT, d, mv, h, def, 0, lo, hi, 0, 0}
#define OPT_DBL(n, a, d, mv, h, def, lo, hi) {n, a, CLI_DOUBLE, d, mv, h, def, 0, lo, hi, 0, 0}

#endif
