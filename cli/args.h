/* Table-driven flag parsing for `embr <command>`: every command declares its flags once, with
 * type, default and help text; parsing, validation and --help all come from that table. The
 * options many commands share (--threads, --quiet, --json, --format, --seed) are defined here,
 * once, and so is the meaning of every short flag. */
#ifndef EMBR_CLI_ARGS_H
#define EMBR_CLI_ARGS_H

#include <stdint.h>

typedef enum cli_type {
  CLI_FLAG,   /* a switch: dest is int, set to 1 */
  CLI_INT,    /* dest is int64_t; min/max enforced */
  CLI_DOUBLE, /* dest is double; min/max enforced */
  CLI_STRING, /* dest is const char * */
  CLI_STRINGS /* repeatable: dest is a cli_strings, each use appends */
} cli_type;

/* The values of a repeatable string option, in command-line order. */
#define CLI_MAX_REPEAT 64
typedef struct cli_strings {
  const char *v[CLI_MAX_REPEAT];
  int n;
} cli_strings;

typedef struct cli_opt {
  const char *name;    /* "--base" */
  const char *alias;   /* "-b", or NULL; several as "-o|--output" */
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

/* What one command parses. Its name is the registry's (cli_name()), not repeated here. */
typedef struct cli_command {
  const char *summary;  /* the first line of --help */
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
/* Print "embr CMD: message" (CMD: cli_name()) to stderr. cli_usage_error adds a hint and returns
 * CLI_USAGE (exit code 2); cli_error returns 1 (bad input found by the command itself). */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses, or returns from the calling command: exit 0 after --help, 2 after a usage error. */
#define CLI_PARSE_OR_RETURN(cmd, argc, argv)                  \
  do {                                                        \
    int prc_ = cli_parse(&(cmd), (argc), (argv));             \
    if (prc_) return prc_ == CLI_HELP ? 0 : CLI_USAGE;        \
  } while (0)
#define CLI_NOPTS(opts) ((int)(sizeof(opts) / sizeof((opts)[0])))

/* ---- the command registry ------------------------------------------------------------------------
 * One table: each command has a name, a one-line summary, a run function (argv[0] is its name),
 * and sub-commands. cli_main finds the command, and for a group without a run function of its
 * own prints the group's help and the unknown/missing sub-command messages. A command with both
 * (tsne) runs itself unless its first argument names a sub-command. */
typedef struct cli_entry {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
  const struct cli_entry *children;
  int nchildren;
  const char *about; /* a group's help: paragraph under its usage line, or NULL */
} cli_entry;
#define CLI_CHILDREN(a) (a), ((int)(sizeof(a) / sizeof((a)[0])))

/* Runs `embr argv[1] ...` from the top-level commands; returns the exit code. */
int cli_main(const cli_entry *const *commands, int n, int argc, char **argv);
/* The full name of the command being run ("index build"), for messages. */
const char *cli_name(void);
/* Lists the running command's sub-commands, if it has any (the end of its --help). */
void cli_print_subcommands(void);

/* ---- convenience constructors for the option tables ---- */
#define OPT_FLAG(n, a, d, h) {n, a, CLI_FLAG, d, NULL, h, "off", 0, 0, 0, 0, 0}
/* A switch whose alias takes a value: "--hs" or "-hs 1" / "-hs 0". */
#define OPT_FLAG_V(n, a, d, h) {n, a, CLI_FLAG, d, NULL, h, "off", 0, 0, 0, 0, 1}
#define OPT_STR(n, a, d, mv, h, def) {n, a, CLI_STRING, d, mv, h, def, 0, 0, 0, 0, 0}
/* A string option that may be given several times (at most CLI_MAX_REPEAT); dest: cli_strings. */
#define OPT_STRS(n, a, d, mv, h, def) {n, a, CLI_STRINGS, d, mv, h, def, 0, 0, 0, 0, 0}
#define OPT_STR_REQ(n, a, d, mv, h) {n, a, CLI_STRING, d, mv, h, NULL, 1, 0, 0, 0, 0}
#define OPT_INT(n, a, d, mv, h, def, lo, hi) {n, a, CLI_INT, d, mv, h, def, 0, lo, hi, 0, 0}
#define OPT_DBL(n, a, d, mv, h, def, lo, hi) {n, a, CLI_DOUBLE, d, mv, h, def, 0, lo, hi, 0, 0}

/* ---- short flags: one meaning across the whole tool -----------------------------------------------
 * tests/test_cli_docs.sh runs every command's --help and fails when a short flag stands for two
 * long names. word2vec.c's single-dash long spellings (-train, -output, -size, -cbow, -hs, -iter,
 * -binary, ...) are long aliases, not short flags.
 *   -b --batch        -c --clusters     -d --dim          -e --epochs       -f --filter
 *   -H --height       -i --input        -k --k            -l --labels       -m --metric
 *   -n --rows         -o --output       -p --perplexity   -q --quiet        -s --spec
 *   -t --threads      -W --width        -h --help
 * A command whose long name differs for the same thing keeps it and takes the table's as a long
 * alias (train's --out also answers to --output, embed's --images to --input, collection
 * create's --index to --spec). */

/* ---- options shared by many commands: defined here only ---- */
#define CLI_THREADS_(d, a) OPT_INT("--threads", a, d, "N", "threads (0 = all cores)", "0", 0, 4096)
#define OPT_THREADS(d) CLI_THREADS_(d, "-t")
#define OPT_QUIET(d) OPT_FLAG("--quiet", "-q", d, "no progress or timing on stderr")
#define OPT_JSON(d) OPT_FLAG("--json", NULL, d, "print JSON on stdout")
#define OPT_METRIC(d) OPT_STR("--metric", "-m", d, "M", "l2 | ip | cosine | l1", "l2")
#define OPT_FORMAT(d) OPT_STR("--format", NULL, d, "FMT", "input file format (npy, fvecs, csv, w2v-bin, ...)", "by extension")
/* `what` is a string literal saying what the seed fixes, e.g. " (the fold split)". */
#define OPT_SEED(d, what) OPT_INT("--seed", NULL, d, "S", "random seed" what, "1", 0, 9e18)

#endif
