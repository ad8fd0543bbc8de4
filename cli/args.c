/* Flag parsing and help output from a command's option table. */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 1, 0))) static void report(const char *fmt, va_list ap) {
  fprintf(stderr, "embr %s: ", cli_name());
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

int cli_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(fmt, ap);
  va_end(ap);
  fprintf(stderr, "Try 'embr %s --help'.\n", cli_name());
  return CLI_USAGE;
}

int cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(fmt, ap);
  va_end(ap);
  return 1; /* EXIT_ERR */
}

static cli_opt *find_opt(cli_command *cmd, const char *name, size_t len) {
  for (int i = 0; i < cmd->nopts; i++) {
    cli_opt *o = &cmd->opts[i];
    if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
    if (o->alias) {
      /* aliases are '|'-separated: "-k|-n" */
      const char *a = o->alias;
      while (*a) {
        const char *bar = strchr(a, '|');
        size_t alen = bar ? (size_t)(bar - a) : strlen(a);
        if (alen == len && strncmp(a, name, len) == 0) return o;
        if (!bar) break;
        a = bar + 1;
      }
    }
  }
  return NULL;
}

static int set_value(cli_opt *o, const char *val) {
  char *end = NULL;
  errno = 0;
  switch (o->type) {
    case CLI_FLAG: *(int *)o->dest = 1; return CLI_OK;
    case CLI_STRING:
      if (!*val) return cli_usage_error("%s needs a non-empty value", o->name);
      *(const char **)o->dest = val;
      return CLI_OK;
    case CLI_STRINGS: {
      cli_strings *l = o->dest;
      if (!*val) return cli_usage_error("%s needs a non-empty value", o->name);
      if (l->n >= CLI_MAX_REPEAT) return cli_usage_error("%s given more than %d times", o->name, CLI_MAX_REPEAT);
      l->v[l->n++] = val;
      return CLI_OK;
    }
    case CLI_INT: {
      long long v = strtoll(val, &end, 10);
      if (!*val || *end || errno)
        return cli_usage_error("%s expects an integer, got '%s'", o->name, val);
      if ((o->min != 0 || o->max != 0) && (v < o->min || v > o->max))
        return cli_usage_error("%s must be between %.0f and %.0f, got %lld", o->name, o->min,
                               o->max, v);
      *(int64_t *)o->dest = v;
      return CLI_OK;
    }
    case CLI_DOUBLE: {
      double v = strtod(val, &end);
      if (!*val || *end || errno || !isfinite(v))
        return cli_usage_error("%s expects a number, got '%s'", o->name, val);
      if ((o->min != 0 || o->max != 0) && (v < o->min || v > o->max))
        return cli_usage_error("%s must be between %g and %g, got %g", o->name, o->min,
                               o->max, v);
      *(double *)o->dest = v;
      return CLI_OK;
    }
  }
  return CLI_USAGE;
}

int cli_parse(cli_command *cmd, int argc, char **argv) {
  cmd->npos = 0;
  int only_pos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
      cli_print_help(cmd);
      return CLI_HELP;
    }
    if (!only_pos && strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    /* "-" alone is a positional (stdin); "-5" is a value, not a flag, only after a flag. */
    if (only_pos || a[0] != '-' || a[1] == '\0') {
      if (cmd->npos >= cmd->max_pos)
        return cli_usage_error("unexpected argument '%s'", a);
      cmd->pos[cmd->npos++] = a;
      continue;
    }
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    cli_opt *o = find_opt(cmd, a, len);
    if (!o) return cli_usage_error("unknown option '%.*s'", (int)len, a);
    if (o->type == CLI_FLAG && o->alias_value && (strlen(o->name) != len || strncmp(o->name, a, len) != 0)) {
      /* word2vec-style "-hs 1": the alias carries the switch's value. */
      const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
      if (!v || (strcmp(v, "0") != 0 && strcmp(v, "1") != 0))
        return cli_usage_error("%.*s expects 0 or 1", (int)len, a);
      *(int *)o->dest = v[0] == '1';
      o->seen = 1;
      continue;
    }
    if (o->seen && o->type != CLI_FLAG && o->type != CLI_STRINGS)
      return cli_usage_error("%s given more than once", o->name);
    o->seen = 1;
    const char *val = NULL;
    if (o->type == CLI_FLAG) {
      if (eq) return cli_usage_error("%s takes no value", o->name);
    } else if (eq) {
      val = eq + 1;
    } else {
      if (i + 1 >= argc) return cli_usage_error("%s needs a value", o->name);
      val = argv[++i];
    }
    int rc = set_value(o, val);
    if (rc) return rc;
  }
  for (int i = 0; i < cmd->nopts; i++)
    if (cmd->opts[i].required && !cmd->opts[i].seen)
      return cli_usage_error("missing required option %s", cmd->opts[i].name);
  if (cmd->npos < cmd->min_pos) return cli_usage_error("missing arguments");
  return CLI_OK;
}

void cli_print_help(const cli_command *cmd) {
  printf("usage: %s\n\n%s\n", cmd->usage, cmd->summary);
  if (cmd->nopts) printf("\noptions:\n");
  for (int i = 0; i < cmd->nopts; i++) {
    const cli_opt *o = &cmd->opts[i];
    char left[96];
    int n = snprintf(left, sizeof left, "  %s%s%s%s%s", o->alias ? o->alias : "", o->alias ? ", " : "",
                     o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
    if (n < 0) n = 0;
    printf("%-34s %s", left, o->help);
    if (o->required)
      printf(" (required)");
    else if (o->def)
      printf(" [default: %s]", o->def);
    printf("\n");
  }
  printf("  %-32s %s\n", "-h, --help", "show this help and exit");
  if (cmd->details) printf("\n%s\n", cmd->details);
  cli_print_subcommands();
}
