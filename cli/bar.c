/* The progress display of long commands. */
#include "common.h"

#include <string.h>
#include <unistd.h>

void cli_bar_init(cli_bar *b, const char *label, int quiet) {
  memset(b, 0, sizeof *b);
  b->label = label;
  b->quiet = quiet;
  b->tty = isatty(STDERR_FILENO);
  b->last_plain = embr_now();
}

static void fmt_duration(char *out, size_t n, double s) {
  if (s < 0 || s > 1e7) {
    snprintf(out, n, "?");
  } else if (s < 60) {
    snprintf(out, n, "%.0fs", s);
  } else if (s < 3600) {
    snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
  } else {
    snprintf(out, n, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
  }
}

static int draw(void *user, uint64_t done, uint64_t total, double rate, const char *detail) {
  cli_bar *b = user;
  if (b->quiet) return 0;
  char eta[32] = "?";
  if (total && rate > 0) fmt_duration(eta, sizeof eta, (double)(total - (done < total ? done : total)) / rate);
  if (b->tty) {
    int width = 30, fill = total ? (int)((double)done / (double)total * width) : 0;
    if (fill > width) fill = width;
    char bar[64];
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(width - fill));
    bar[width] = '\0';
    fprintf(stderr, "\r\033[K%s [%s] %5.1f%% %llu/%llu %.4g/s ETA %s%s%s", b->label, bar,
            total ? 100.0 * (double)done / (double)total : 0.0, (unsigned long long)done,
            (unsigned long long)total, rate, eta, detail ? " " : "", detail ? detail : "");
    b->drawn = 1;
  } else {
    /* Logs get a line every 5 s, and a closing line only when earlier ones were printed: a
     * short job stays silent. */
    double now = embr_now();
    int finished = total && done >= total;
    if (finished ? (!b->printed || done == b->last_done) : now - b->last_plain < 5.0) return 0;
    b->last_plain = now;
    b->last_done = done;
    b->printed++;
    fprintf(stderr, "%s: %llu/%llu (%.1f%%) %.4g/s ETA %s%s%s\n", b->label,
            (unsigned long long)done, (unsigned long long)total,
            total ? 100.0 * (double)done / (double)total : 0.0, rate, eta, detail ? " " : "",
            detail ? detail : "");
  }
  fflush(stderr);
  return 0;
}

embr_progress cli_bar_progress(cli_bar *b) {
  embr_progress p = {draw, b, 0.1};
  if (b->quiet) p.fn = NULL;
  return p;
}

void cli_bar_done(cli_bar *b) {
  if (b->drawn && b->tty) fprintf(stderr, "\r\033[K");
  b->drawn = 0;
}
