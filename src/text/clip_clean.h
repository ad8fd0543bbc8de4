/* The CLIP tokenizer's text side (private to src/text): from UTF-8 bytes to the lower-cased code
 * points CLIP runs its pre-tokenisation pattern on, and that pattern. See clip_clean.c. */
#ifndef EMBR_TEXT_CLIP_CLEAN_H
#define EMBR_TEXT_CLIP_CLEAN_H

#include <stddef.h>
#include <stdint.h>

/* A growing array of code points (free v with free()). */
typedef struct embr__cps {
  int32_t *v;
  size_t n, cap;
} embr__cps;

void embr__cps_free(embr__cps *c);

/* Decodes text (invalid UTF-8 becomes U+FFFD, one per maximal invalid subpart, as Python's
 * errors="replace"), then cleans it as CLIP does: ftfy.fix_text's default character fixes, HTML
 * unescaping twice, white space collapsed and stripped, lower case. *out (zeroed by the caller)
 * receives the code points. 0, or EMBR_ENOMEM. */
int embr__clip_clean(const char *text, size_t len, embr__cps *out);

/* CLIP's pre-tokenisation pattern from *pos: finds the next piece, sets [*start, *end) and moves
 * *pos past it. Returns 0 when no piece is left. */
int embr__clip_next_piece(const int32_t *cp, size_t n, size_t *pos, size_t *start, size_t *end);

/* Appends the code points of s to out; invalid UTF-8 becomes U+FFFD, one per maximal invalid
 * subpart. 0, or -1 when out of memory. */
int embr__utf8_decode(const unsigned char *s, size_t len, embr__cps *out);

/* UTF-8 encoding of one code point into out (at most 4 bytes); returns the byte count. */
int embr__utf8_put(int32_t c, unsigned char *out);

#endif
