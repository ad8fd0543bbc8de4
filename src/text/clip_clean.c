/* CLIP's text cleaning and pre-tokenisation, on arrays of code points.
 *
 * OpenAI's CLIP tokenizer cleans a caption with ftfy.fix_text (default settings), then
 * html.unescape twice, strips it, collapses every run of white space into one space, lower-cases
 * it (Python's str.lower) and splits it with a regular expression into pieces that are then
 * BPE-merged (bpe.c). This file reproduces that chain from its documented behaviour:
 *
 *   ftfy.fix_text   The text is cut into segments after each '\n' (and every 1,000,000 code
 *                   points); each segment is fixed until nothing changes. One round: HTML
 *                   entities ending in ';' (only while no segment so far held a '<'), C1 controls
 *                   read as Windows-1252, Latin ligatures split, halfwidth/fullwidth forms and
 *                   U+3000 to their usual forms, curly quotes straightened, line breaks to '\n',
 *                   ANSI terminal escapes removed, stray control characters removed, NFC.
 *                   Not done: ftfy's mojibake detection and repair (fix_encoding), a statistical
 *                   heuristic; text that it would repair is tokenized as it is.
 *   html.unescape   Python's rules: named references (HTML5 table, legacy names without ';' as
 *                   prefixes), decimal and hex references with the HTML5 replacements.
 *   white space     Python's str.strip (str.isspace) and the `regex` module's \s.
 *   lower           Python's full lower-case mapping: U+0130 becomes "i\u0307" and a capital
 *                   sigma at the end of a word becomes U+03C2 (Final_Sigma).
 *   pattern         <|startoftext|> | <|endoftext|> | 's 't 're 've 'm 'll 'd | letters+ | one
 *                   number character | a run of anything else but white space, matched
 *                   ignoring case as the `regex` module does: U+017F (long s) matches 's', and
 *                   U+0345 (which case-folds to a letter) matches no branch and is dropped.
 *
 * Unicode properties (categories, case mappings, NFC/NFKC) come from libutf8proc. */
#include "text/clip_clean.h"

#include "text/html_entities.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

void embr__cps_free(embr__cps *c) {
  free(c->v);
  c->v = NULL;
  c->n = c->cap = 0;
}

static int cps_reserve(embr__cps *c, size_t extra) {
  if (extra > SIZE_MAX / sizeof(int32_t) - c->n) return -1;
  size_t need = c->n + extra;
  if (need <= c->cap) return 0;
  size_t cap = c->cap ? c->cap : 64;
  while (cap < need) cap = cap > SIZE_MAX / 8 ? need : cap * 2;
  if (cap > SIZE_MAX / sizeof(int32_t)) return -1;
  int32_t *v = realloc(c->v, cap * sizeof(int32_t));
  if (!v) return -1;
  c->v = v;
  c->cap = cap;
  return 0;
}

static int cps_push(embr__cps *c, int32_t x) {
  if (c->n == c->cap && cps_reserve(c, 1)) return -1;
  c->v[c->n++] = x;
  return 0;
}

static int cps_push_n(embr__cps *c, const int32_t *x, size_t n) {
  if (cps_reserve(c, n)) return -1;
  if (n) memcpy(c->v + c->n, x, n * sizeof(int32_t));
  c->n += n;
  return 0;
}

int embr__utf8_put(int32_t c, unsigned char *o) {
  uint32_t u = (uint32_t)c;
  if (u < 0x80) {
    o[0] = (unsigned char)u;
    return 1;
  }
  if (u < 0x800) {
    o[0] = (unsigned char)(0xC0 | (u >> 6));
    o[1] = (unsigned char)(0x80 | (u & 0x3F));
    return 2;
  }
  if (u < 0x10000) {
    o[0] = (unsigned char)(0xE0 | (u >> 12));
    o[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (u & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | (u >> 18));
  o[1] = (unsigned char)(0x80 | ((u >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((u >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (u & 0x3F));
  return 4;
}

/* Appends the code points of a UTF-8 string known to be valid (tables, utf8proc output). */
static int push_utf8(embr__cps *out, const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &c);
    if (k <= 0) {
      c = 0xFFFD;
      k = 1;
    }
    if (cps_push(out, c)) return -1;
    i += (size_t)k;
  }
  return 0;
}

/* UTF-8 decoding with one U+FFFD per maximal invalid subpart (Unicode's recommended practice, which
 * Python's decoder follows). */
int embr__utf8_decode(const unsigned char *s, size_t len, embr__cps *out) {
  if (cps_reserve(out, len)) return -1;
  size_t i = 0;
  while (i < len) {
    unsigned b = s[i];
    if (b < 0x80) {
      out->v[out->n++] = (int32_t)b;
      i++;
      continue;
    }
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    int32_t c;
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
      c = (int32_t)(b & 0x1F);
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      c = (int32_t)(b & 0x0F);
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      c = (int32_t)(b & 0x07);
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      out->v[out->n++] = 0xFFFD;
      i++;
      continue;
    }
    size_t j = i + 1;
    int ok = 1;
    for (int k = 0; k < need; k++, j++) {
      if (j >= len) {
        ok = 0;
        break;
      }
      unsigned t = s[j];
      if (t < lo || t > hi) {
        ok = 0;
        break;
      }
      lo = 0x80;
      hi = 0xBF;
      c = (c << 6) | (int32_t)(t & 0x3F);
    }
    out->v[out->n++] = ok ? c : 0xFFFD;
    i = j;
  }
  return 0;
}

/* ---- character classes ------------------------------------------------------------------------ */

/* The `regex` module's \s (Unicode White_Space). */
static int re_space(int32_t c) {
  return (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

/* Python's str.isspace: the above and U+001C..U+001F. */
static int py_space(int32_t c) { return re_space(c) || (c >= 0x1C && c <= 0x1F); }

static int category(int32_t c) { return (int)utf8proc_category(c); }

static int is_letter(int32_t c) {
  int k = category(c);
  return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

static int is_number(int32_t c) {
  int k = category(c);
  return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

/* ---- HTML character references ---------------------------------------------------------------- */

/* Looks name[0..n) up in a sorted table; NULL when absent. */
static const char *entity_find(const embr__entity *t, size_t count, const int32_t *name, size_t n) {
  char key[40];
  if (n == 0 || n >= sizeof key) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (name[i] <= 0 || name[i] >= 0x80) return NULL; /* every name is ASCII */
    key[i] = (char)name[i];
  }
  key[n] = '\0';
  size_t lo = 0, hi = count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp(t[mid].name, key);
    if (r == 0) return t[mid].value;
    if (r < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

#define N_HTML5 (sizeof embr__html5 / sizeof embr__html5[0])
#define N_UPPER (sizeof embr__html_upper / sizeof embr__html_upper[0])

/* Windows-1252 for 0x80..0x9F (undefined bytes stay themselves), as both Python's html module
 * and ftfy's C1 fix use it. */
static const int32_t cp1252_c1[32] = {
    0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};

static int is_digit(int32_t c) { return c >= '0' && c <= '9'; }
static int is_hex(int32_t c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static int hex_val(int32_t c) {
  return is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
}

/* Python's html.unescape of a numeric reference: s[0] == '#'. On a match, *used is its length
 * (from '#', with the ';' when present) and *cp the character, -1 for none (an invalid code
 * point is removed). Returns 0 when the text after '#' is not a reference. */
static int numeric_ref(const int32_t *s, size_t n, size_t *used, int32_t *cp) {
  size_t i = 1;
  uint32_t num = 0;
  if (i < n && is_digit(s[i])) {
    while (i < n && is_digit(s[i])) {
      num = num > 0x110000 ? 0x110001 : num * 10 + (uint32_t)(s[i] - '0');
      i++;
    }
  } else if (i + 1 < n && (s[i] == 'x' || s[i] == 'X') && is_hex(s[i + 1])) {
    i++;
    while (i < n && is_hex(s[i])) {
      num = num > 0x110000 ? 0x110001 : num * 16 + (uint32_t)hex_val(s[i]);
      i++;
    }
  } else {
    return 0;
  }
  if (i < n && s[i] == ';') i++;
  *used = i;
  if (num == 0)
    *cp = 0xFFFD;
  else if (num == 0x0D)
    *cp = 0x0D;
  else if (num >= 0x80 && num <= 0x9F)
    *cp = cp1252_c1[num - 0x80];
  else if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF)
    *cp = 0xFFFD;
  else if ((num >= 1 && num <= 8) || num == 0x0B || (num >= 0x0E && num <= 0x1F) || num == 0x7F ||
           (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE)
    *cp = -1;
  else
    *cp = (int32_t)num;
  return 1;
}

static int named_char(int32_t c) {
  return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' && c != '#' &&
         c != ';';
}

/* Python's html.unescape over the whole array. */
static int html_unescape(const embr__cps *in, embr__cps *out) {
  const int32_t *s = in->v;
  size_t n = in->n, i = 0;
  out->n = 0;
  while (i < n) {
    if (s[i] != '&' || i + 1 >= n) {
      if (cps_push(out, s[i])) return -1;
      i++;
      continue;
    }
    const int32_t *r = s + i + 1;
    size_t rn = n - i - 1;
    if (r[0] == '#') {
      size_t used;
      int32_t cp;
      if (numeric_ref(r, rn, &used, &cp)) {
        if (cp >= 0 && cps_push(out, cp)) return -1;
        i += 1 + used;
      } else {
        if (cps_push(out, '&')) return -1;
        i++;
      }
      continue;
    }
    size_t len = 0;
    while (len < rn && len < 32 && named_char(r[len])) len++;
    if (len == 0) {
      if (cps_push(out, '&')) return -1;
      i++;
      continue;
    }
    if (len < rn && r[len] == ';') len++;
    const char *v = entity_find(embr__html5, N_HTML5, r, len);
    size_t keep = 0; /* characters of the name consumed by the reference */
    if (v) {
      keep = len;
    } else {
      for (size_t x = len - 1; x >= 2; x--) {
        if ((v = entity_find(embr__html5, N_HTML5, r, x)) != NULL) {
          keep = x;
          break;
        }
      }
    }
    if (v) {
      if (push_utf8(out, (const unsigned char *)v, strlen(v))) return -1;
      if (cps_push_n(out, r + keep, len - keep)) return -1;
    } else {
      if (cps_push(out, '&') || cps_push_n(out, r, len)) return -1;
    }
    i += 1 + len;
  }
  return 0;
}

static int ascii_alnum(int32_t c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ftfy's unescape_html: only "&name;" and "&#...;" with 1..24 ASCII letters or digits; a name from
 * the HTML5 table (ending in ';') or one of the upper-case spellings; a numeric reference only when
 * Python's unescape consumes it whole and leaves no ';'. */
static int ftfy_unescape(const embr__cps *in, embr__cps *out) {
  const int32_t *s = in->v;
  size_t n = in->n, i = 0;
  out->n = 0;
  while (i < n) {
    if (s[i] == '&') {
      size_t j = i + 1;
      int hash = j < n && s[j] == '#';
      if (hash) j++;
      size_t a = j;
      while (j < n && j - a < 25 && ascii_alnum(s[j])) j++;
      if (j > a && j - a <= 24 && j < n && s[j] == ';') {
        size_t end = j + 1; /* past ';' */
        const int32_t *name = s + i + 1;
        size_t nlen = end - i - 1;
        const char *v = hash ? NULL : entity_find(embr__html5, N_HTML5, name, nlen);
        if (!v && !hash) v = entity_find(embr__html_upper, N_UPPER, name, nlen);
        if (v) {
          if (push_utf8(out, (const unsigned char *)v, strlen(v))) return -1;
          i = end;
          continue;
        }
        if (hash) {
          size_t used;
          int32_t cp;
          /* Python's unescape of "&#...;": whole when it consumed the ';' and made no ';'. */
          if (numeric_ref(name, nlen, &used, &cp) && used == nlen && cp != ';') {
            if (cp >= 0 && cps_push(out, cp)) return -1;
            i = end;
            continue;
          }
        }
        if (cps_push_n(out, s + i, end - i)) return -1;
        i = end;
        continue;
      }
    }
    if (cps_push(out, s[i])) return -1;
    i++;
  }
  return 0;
}

/* ---- ftfy's character fixes ------------------------------------------------------------------- */

/* Latin ligatures and legacy digraphs ftfy splits (a code point -> up to 3). */
static int ligature(int32_t c, int32_t out[3]) {
  static const struct {
    int32_t from, to[3];
  } t[] = {
      {0x0132, {'I', 'J', 0}},      {0x0133, {'i', 'j', 0}},      {0x0149, {0x02BC, 'n', 0}},
      {0x01F1, {'D', 'Z', 0}},      {0x01F2, {'D', 'z', 0}},      {0x01F3, {'d', 'z', 0}},
      {0x01C4, {'D', 0x017D, 0}},   {0x01C5, {'D', 0x017E, 0}},   {0x01C6, {'d', 0x017E, 0}},
      {0x01C7, {'L', 'J', 0}},      {0x01C8, {'L', 'j', 0}},      {0x01C9, {'l', 'j', 0}},
      {0x01CA, {'N', 'J', 0}},      {0x01CB, {'N', 'j', 0}},      {0x01CC, {'n', 'j', 0}},
      {0xFB00, {'f', 'f', 0}},      {0xFB01, {'f', 'i', 0}},      {0xFB02, {'f', 'l', 0}},
      {0xFB03, {'f', 'f', 'i'}},    {0xFB04, {'f', 'f', 'l'}},    {0xFB05, {0x017F, 't', 0}},
      {0xFB06, {'s', 't', 0}},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    if (t[i].from == c) {
      int k = 0;
      while (k < 3 && t[i].to[k]) {
        out[k] = t[i].to[k];
        k++;
      }
      return k;
    }
  }
  return 0;
}

/* NFKC of one code point through utf8proc; returns the count written to out (<= cap), 0 on
 * failure or when it does not fit. */
static int nfkc_char(int32_t c, int32_t *out, int cap) {
  unsigned char buf[8];
  int len = embr__utf8_put(c, buf);
  utf8proc_uint8_t *r = NULL;
  utf8proc_ssize_t rl = utf8proc_map(buf, len, &r, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  int k = 0;
  if (rl > 0) {
    utf8proc_ssize_t i = 0;
    while (i < rl && k < cap) {
      int32_t x;
      utf8proc_ssize_t step = utf8proc_iterate(r + i, rl - i, &x);
      if (step <= 0) {
        k = 0;
        break;
      }
      out[k++] = x;
      i += step;
    }
    if (i < rl) k = 0;
  }
  free(r);
  return k;
}

/* One pass of ftfy's per-character fixes after unescaping: C1 controls, ligatures, widths,
 * quotes, line breaks, terminal escapes, control characters. */
static int char_fixes(const embr__cps *in, embr__cps *out, embr__cps *tmp) {
  /* C1 as Windows-1252, ligatures, width, quotes (each a per-character map, applied in order) */
  tmp->n = 0;
  for (size_t i = 0; i < in->n; i++) {
    int32_t c = in->v[i];
    if (c >= 0x80 && c <= 0x9F) c = cp1252_c1[c - 0x80];
    int32_t lig[3];
    int k = ligature(c, lig);
    if (!k) {
      lig[0] = c;
      k = 1;
    }
    for (int j = 0; j < k; j++) {
      int32_t w[8];
      int nw = 1;
      w[0] = lig[j];
      if (w[0] == 0x3000) {
        w[0] = ' ';
      } else if (w[0] >= 0xFF01 && w[0] < 0xFFF0) {
        int m = nfkc_char(w[0], w, 8);
        nw = m ? m : 1;
        if (!m) w[0] = lig[j];
      }
      for (int q = 0; q < nw; q++) {
        int32_t x = w[q];
        if (x == 0x02BC || (x >= 0x2018 && x <= 0x201B)) x = '\'';
        else if (x >= 0x201C && x <= 0x201F) x = '"';
        if (cps_push(tmp, x)) return -1;
      }
    }
  }
  /* line breaks */
  out->n = 0;
  for (size_t i = 0; i < tmp->n; i++) {
    int32_t c = tmp->v[i];
    if (c == '\r') {
      if (i + 1 < tmp->n && tmp->v[i + 1] == '\n') i++;
      c = '\n';
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
      c = '\n';
    }
    if (cps_push(out, c)) return -1;
  }
  /* ANSI escapes: ESC '[' (digits | ';')* ASCII letter */
  tmp->n = 0;
  for (size_t i = 0; i < out->n; i++) {
    if (out->v[i] == 0x1B && i + 1 < out->n && out->v[i + 1] == '[') {
      size_t j = i + 2;
      while (j < out->n && (out->v[j] == ';' || category(out->v[j]) == UTF8PROC_CATEGORY_ND)) j++;
      int32_t e = j < out->n ? out->v[j] : 0;
      if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
        i = j;
        continue;
      }
    }
    if (cps_push(tmp, out->v[i])) return -1;
  }
  /* control characters */
  out->n = 0;
  for (size_t i = 0; i < tmp->n; i++) {
    int32_t c = tmp->v[i];
    if ((c >= 0 && c <= 8) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
        (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC))
      continue;
    if (cps_push(out, c)) return -1;
  }
  return 0;
}

/* NFC through utf8proc (in -> out). */
static int nfc(const embr__cps *in, embr__cps *out) {
  out->n = 0;
  if (in->n == 0) return 0;
  if (in->n > SIZE_MAX / 4 - 1) return -1;
  unsigned char *u = malloc(in->n * 4 + 1);
  if (!u) return -1;
  size_t len = 0;
  for (size_t i = 0; i < in->n; i++) len += (size_t)embr__utf8_put(in->v[i], u + len);
  utf8proc_uint8_t *r = NULL;
  utf8proc_ssize_t rl = utf8proc_map(u, (utf8proc_ssize_t)len, &r, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  free(u);
  if (rl < 0) {
    free(r);
    return -1;
  }
  int rc = push_utf8(out, r, (size_t)rl);
  free(r);
  return rc;
}

static int cps_equal(const embr__cps *a, const embr__cps *b) {
  return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(int32_t)) == 0);
}

static void cps_swap(embr__cps *a, embr__cps *b) {
  embr__cps t = *a;
  *a = *b;
  *b = t;
}

/* ftfy.fix_and_explain on one segment (seg holds it and receives the result). */
static int fix_segment(embr__cps *seg, int unescape, embr__cps w[3]) {
  for (int round = 0; round < 64; round++) { /* a fixed point comes in two or three rounds */
    embr__cps *cur = &w[0];
    cur->n = 0;
    if (cps_push_n(cur, seg->v, seg->n)) return -1;
    if (unescape) {
      if (ftfy_unescape(cur, &w[1])) return -1;
      cps_swap(&w[0], &w[1]);
    }
    if (char_fixes(&w[0], &w[1], &w[2])) return -1;
    if (nfc(&w[1], &w[2])) return -1;
    if (cps_equal(&w[2], seg)) return 0;
    seg->n = 0;
    if (cps_push_n(seg, w[2].v, w[2].n)) return -1;
  }
  return 0;
}

enum { FTFY_MAX_SEGMENT = 1000000 };

/* ftfy.fix_text: in -> out, segment by segment. Once a segment holds '<', HTML unescaping stays
 * off for it and every later segment (ftfy keeps the changed setting). */
static int fix_text(const embr__cps *in, embr__cps *out) {
  embr__cps seg = {0}, w[3] = {{0}, {0}, {0}};
  int rc = 0, unescape = 1;
  size_t pos = 0;
  out->n = 0;
  while (pos < in->n && rc == 0) {
    size_t end = pos;
    while (end < in->n && in->v[end] != '\n') end++;
    end = end < in->n ? end + 1 : end;
    if (end - pos > FTFY_MAX_SEGMENT) end = pos + FTFY_MAX_SEGMENT;
    seg.n = 0;
    if (cps_push_n(&seg, in->v + pos, end - pos)) {
      rc = -1;
      break;
    }
    for (size_t i = 0; i < seg.n; i++)
      if (seg.v[i] == '<') unescape = 0;
    if (fix_segment(&seg, unescape, w) || cps_push_n(out, seg.v, seg.n)) rc = -1;
    pos = end;
  }
  embr__cps_free(&seg);
  for (int i = 0; i < 3; i++) embr__cps_free(&w[i]);
  return rc;
}

/* ---- case -------------------------------------------------------------------------------------- */

static int cased(int32_t c) {
  int k = category(c);
  return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT ||
         utf8proc_tolower(c) != c || utf8proc_toupper(c) != c;
}

static int case_ignorable(int32_t c) {
  int k = category(c);
  if (k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
      k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK)
    return 1;
  switch (c) { /* Word_Break MidLetter, MidNumLet, Single_Quote */
  case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4: case 0x2018:
  case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07:
  case 0xFF0E: case 0xFF1A:
    return 1;
  default:
    return 0;
  }
}

/* Python's str.lower. */
static int lower(const embr__cps *in, embr__cps *out) {
  out->n = 0;
  for (size_t i = 0; i < in->n; i++) {
    int32_t c = in->v[i];
    if (c == 0x130) {
      if (cps_push(out, 'i') || cps_push(out, 0x307)) return -1;
      continue;
    }
    if (c == 0x3A3) {
      size_t j = i;
      while (j > 0 && case_ignorable(in->v[j - 1])) j--;
      int final = j > 0 && cased(in->v[j - 1]);
      if (final) {
        j = i + 1;
        while (j < in->n && case_ignorable(in->v[j])) j++;
        final = j == in->n || !cased(in->v[j]);
      }
      if (cps_push(out, final ? 0x3C2 : 0x3C3)) return -1;
      continue;
    }
    if (cps_push(out, utf8proc_tolower(c))) return -1;
  }
  return 0;
}

/* ---- the whole chain --------------------------------------------------------------------------- */

int embr__clip_clean(const char *text, size_t len, embr__cps *out) {
  embr__cps a = {0}, b = {0};
  int rc = -1;
  if (embr__utf8_decode((const unsigned char *)text, len, &a)) goto done;
  if (fix_text(&a, &b)) goto done;
  if (html_unescape(&b, &a) || html_unescape(&a, &b)) goto done;
  /* strip, then runs of \s -> ' ', then strip */
  size_t s = 0, e = b.n;
  while (s < e && py_space(b.v[s])) s++;
  while (e > s && py_space(b.v[e - 1])) e--;
  a.n = 0;
  for (size_t i = s; i < e;) {
    if (re_space(b.v[i])) {
      if (cps_push(&a, ' ')) goto done;
      while (i < e && re_space(b.v[i])) i++;
    } else {
      if (cps_push(&a, b.v[i])) goto done;
      i++;
    }
  }
  s = 0;
  e = a.n;
  while (s < e && py_space(a.v[s])) s++;
  while (e > s && py_space(a.v[e - 1])) e--;
  b.n = 0;
  if (e > s && cps_push_n(&b, a.v + s, e - s)) goto done;
  if (lower(&b, out)) goto done;
  rc = 0;
done:
  embr__cps_free(&a);
  embr__cps_free(&b);
  return rc;
}

/* ---- pre-tokenisation --------------------------------------------------------------------------- */

/* c matches the pattern's literal ASCII letter l ignoring case (simple case folding). */
static int fold_eq(int32_t c, char l) {
  if (c == l) return 1;
  if (l >= 'a' && l <= 'z' && c == l - 'a' + 'A') return 1;
  return l == 's' && c == 0x17F; /* LATIN SMALL LETTER LONG S folds to 's' */
}

static size_t match_lit(const int32_t *cp, size_t n, size_t i, const char *lit) {
  size_t k = 0;
  for (; lit[k]; k++)
    if (i + k >= n || !fold_eq(cp[i + k], lit[k])) return 0;
  return k;
}

/* The branch "everything else": not \s, letter or number, and not U+0345, which the `regex`
 * module's case-insensitive class test counts as a letter through its case folding. */
static int other_char(int32_t c) { return !re_space(c) && !is_letter(c) && !is_number(c) && c != 0x345; }

int embr__clip_next_piece(const int32_t *cp, size_t n, size_t *pos, size_t *start, size_t *end) {
  static const char *const lits[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re",
                                     "'ve", "'m", "'ll", "'d"};
  size_t i = *pos;
  while (i < n) {
    size_t m = 0;
    for (size_t k = 0; k < sizeof lits / sizeof lits[0] && !m; k++) m = match_lit(cp, n, i, lits[k]);
    if (!m) {
      if (is_letter(cp[i])) {
        m = 1;
        while (i + m < n && is_letter(cp[i + m])) m++;
      } else if (is_number(cp[i])) {
        m = 1;
      } else if (other_char(cp[i])) {
        m = 1;
        while (i + m < n && other_char(cp[i + m])) m++;
      }
    }
    if (m) {
      *start = i;
      *end = i + m;
      *pos = i + m;
      return 1;
    }
    i++; /* white space, or U+0345: no branch matches here */
  }
  *pos = n;
  return 0;
}
