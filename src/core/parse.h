/* Strict parsing of values read from files (metadata, headers; UTF-8 text): a file is hostile, so a
 * number is accepted only when it is exactly a decimal integer in the range the caller allows —
 * no leading space or '+', no overflow, nothing but the terminator the caller checks after it. */
#ifndef EMBR_CORE_PARSE_H
#define EMBR_CORE_PARSE_H

#include <stdint.h>

/* Parses an optional '-' and decimal digits at s into *out when the value lies in [lo, hi];
 * *end (if not NULL) gets the first byte after the digits. Returns 0, or -1 (nothing set in *out)
 * for no digits, overflow or a value out of range. Sets no error: the caller names the field. */
int embr__parse_int(const char *s, char **end, int64_t lo, int64_t hi, int64_t *out);
/* The same for a whole string: trailing bytes are refused too. */
int embr__parse_int_full(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes there are not one
 * (overlong forms, surrogates and code points above U+10FFFF count as invalid). Reads at most up
 * to the first byte that is not a continuation byte, so a NUL-terminated string is never overrun. */
int embr__utf8_len(const unsigned char *s);

#endif
