/* The command registry's dispatcher: finds `embr <command> [<sub-command>]` in the table, keeps
 * the running command's full name for messages (cli_name), and prints the top-level and group
 * help and the unknown/missing (sub-)command messages, so that every command group behaves the
 * same. */
#include "common.h"

#include <stdio.h>
#include <string.h>

static char current[64];
static const cli_entry *running; /* the entry `current` names */

const char *cli_name(void) { return current; }

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

static const cli_entry *find_child(const cli_entry *e, const char *name) {
  for (int i = 0; i < e->nchildren; i++)
    if (!strcmp(e->children[i].name, name)) return &e->children[i];
  return NULL;
}

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

static void group_help(const cli_entry *e) {
  printf("usage: embr %s <subcommand> [options]\n\n", current);
  if (e->about) printf("%s\n\n", e->about);
  list_children(e);
}

/* argv[0] is e's name, already in `current`. */
static int dispatch(const cli_entry *e, int argc, char **argv) {
  running = e;
  const cli_entry *c = argc >= 2 ? find_child(e, argv[1]) : NULL;
  if (c) {
    size_t len = strlen(current);
    snprintf(current + len, sizeof current - len, " %s", c->name);
    return dispatch(c, argc - 1, argv + 1);
  }
  if (e->run) return e->run(argc, argv);
  if (argc >= 2 && is_help(argv[1])) {
    group_help(e);
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
  printf("usage: embr <command> [options]\n\n"
         "embr: embeddings and retrieval. Commands:\n");
  for (int i = 0; i < n; i++) printf("  %-10s %s\n", commands[i]->name, commands[i]->summary);
  printf("\n'embr <command> --help' lists a command's flags and their defaults.\n"
         "options:\n"
         "  -h, --help     show this help and exit\n"
         "  --version      print the version and exit\n"
         "environment:\n"
         "  EMBR_CPU=scalar  use the portable kernels instead of AVX2+FMA\n"
         "  OMP_NUM_THREADS  default thread count when a command's --threads is 0\n");
}

static const cli_entry *find_command(const cli_entry *const *commands, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(commands[i]->name, name)) return commands[i];
  return NULL;
}

int cli_main(const cli_entry *const *commands, int n, int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: embr <command> [options]\nTry 'embr --help'.\n");
    return EXIT_USAGE;
  }
  const char *name = argv[1];
  if (!strcmp(name, "--version")) {
    printf("embr %s (kernels: %s)\n", embr_version(), embr_cpu_name(embr_cpu_active()));
    return EXIT_OK;
  }
  /* "embr help CMD" is "embr CMD --help" */
  const cli_entry *e = !strcmp(name, "help") && argc > 2 ? find_command(commands, n, argv[2]) : NULL;
  if (e) {
    char *args[] = {argv[2], "--help", NULL};
    snprintf(current, sizeof current, "%s", e->name);
    return dispatch(e, 2, args);
  }
  if (is_help(name) || !strcmp(name, "help")) {
    usage(commands, n);
    return EXIT_OK;
  }
  if (!(e = find_command(commands, n, name))) {
    fprintf(stderr, "embr: unknown command '%s'\nTry 'embr --help'.\n", name);
    return EXIT_USAGE;
  }
  snprintf(current, sizeof current, "%s", e->name);
  return dispatch(e, argc - 1, argv + 1);
}
