/* The command registry's dispatcher: finds `embr <command> [<sub-command>]` in the tables, keeps
 * the running command's full name for every message (cli_name), and prints the top-level and group
 * help and the unknown/missing (sub-)command messages, so that every command group behaves alike. */
#include "common.h"

#include <string.h>

static char current[64];         /* "index build": the running command */
static const cli_entry *running; /* its entry */

const char *cli_name(void) { return current; }

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

static void list_children(const cli_entry *e) {
  int w = 0;
  for (int i = 0; i < e->nchildren; i++)
    if ((int)strlen(e->children[i].name) > w) w = (int)strlen(e->children[i].name);
  printf("subcommands:\n");
  for (int i = 0; i < e->nchildren; i++) printf("  %-*s  %s\n", w, e->children[i].name, e->children[i].summary);
  printf("\n'embr %s <subcommand> --help' lists its flags and defaults.\n", current);
}

void cli_print_subcommands(void) {
  if (!running || !running->nchildren) return;
  printf("\n");
  list_children(running);
}

/* argv[0] is e's name, already at the end of `current`. */
static int dispatch(const cli_entry *e, int argc, char **argv) {
  running = e;
  for (int i = 0; argc >= 2 && i < e->nchildren; i++)
    if (!strcmp(e->children[i].name, argv[1])) {
      size_t len = strlen(current);
      snprintf(current + len, sizeof current - len, " %s", argv[1]);
      return dispatch(&e->children[i], argc - 1, argv + 1);
    }
  if (e->run) return e->run(argc, argv);
  if (argc >= 2 && is_help(argv[1])) {
    printf("usage: embr %s <subcommand> [options]\n\n", current);
    if (e->about) printf("%s\n\n", e->about);
    list_children(e);
    return EXIT_OK;
  }
  if (argc >= 2) {
    fprintf(stderr, "embr %s: unknown subcommand '%s'\n", current, argv[1]);
  } else {
    fprintf(stderr, "embr %s: missing subcommand (", current);
    for (int i = 0; i < e->nchildren; i++) fprintf(stderr, "%s%s", i ? ", " : "", e->children[i].name);
    fprintf(stderr, ")\n");
  }
  fprintf(stderr, "Try 'embr %s --help'.\n", current);
  return EXIT_USAGE;
}

static void usage(const cli_entry *const *commands, int n) {
  printf("usage: embr <command> [options]\n\nembr: embeddings and retrieval. Commands:\n");
  for (int i = 0; i < n; i++) printf("  %-10s %s\n", commands[i]->name, commands[i]->summary);
  printf("\n'embr <command> --help' lists a command's flags and their defaults.\n"
         "options:\n"
         "  -h, --help     show this help and exit\n"
         "  --version      print the version and exit\n"
         "environment:\n"
         "  EMBR_CPU=scalar  use the portable kernels instead of AVX2+FMA\n"
         "  OMP_NUM_THREADS  default thread count when a command's --threads is 0\n");
}

int cli_main(const cli_entry *const *commands, int n, int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: embr <command> [options]\nTry 'embr --help'.\n");
    return EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("embr %s (kernels: %s)\n", embr_version(), embr_cpu_name(embr_cpu_active()));
    return EXIT_OK;
  }
  int help = !strcmp(argv[1], "help"); /* "embr help CMD" is "embr CMD --help" */
  const char *name = help && argc > 2 ? argv[2] : argv[1];
  for (int i = 0; i < n; i++)
    if (!strcmp(commands[i]->name, name)) {
      char *args[] = {argv[2], "--help", NULL};
      snprintf(current, sizeof current, "%s", name);
      return help ? dispatch(commands[i], 2, args) : dispatch(commands[i], argc - 1, argv + 1);
    }
  if (help || is_help(name)) {
    usage(commands, n);
    return EXIT_OK;
  }
  fprintf(stderr, "embr: unknown command '%s'\nTry 'embr --help'.\n", name);
  return EXIT_USAGE;
}
