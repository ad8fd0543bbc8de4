/* Natural text order: digit runs compared by value (see natural.h). */
#include "core/natural.h"

#include <stddef.h>
#include <string.h>

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Compares the digit runs at *a and *b by value (leading zeros aside) and moves past them. */
static int digit_run_cmp(const char **a, const char **b) {
  while (**a == '0') (*a)++;
  while (**b == '0') (*b)++;
  size_t la = 0, lb = 0;
  while (is_digit((*a)[la])) la++;
  while (is_digit((*b)[lb])) lb++;
  /* Without leading zeros, the longer run is the larger number; equal lengths compare as text. */
  int c = la != lb ? (la < lb ? -1 : 1) : memcmp(*a, *b, la);
  *a += la;
  *b += lb;
  return c;
}

int embr__natural_cmp(const char *a, const char *b) {
  while (*a && *b) {
    if (is_digit(*a) && is_digit(*b)) {
      int c = digit_run_cmp(&a, &b);
      if (c) return c;
    } else if (*a != *b) {
      return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
    } else {
      a++, b++;
    }
  }
  return *a ? 1 : *b ? -1 : 0;
}
