/* The collection filter language: a lexer, a recursive-descent parser building a small tree, and
 * an emitter writing SQL with numbered parameters. Grammar (keywords case-insensitive):
 *
 *   expr    := conj ( "or" conj )*
 *   conj    := unary ( "and" unary )*
 *   unary   := "not" unary | "(" expr ")" | field cmp
 *   cmp     := op value | "in" list | "not" "in" list
 *   op      := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
 *   list    := "[" [ value ( "," value )* ] "]"
 *   value   := string ('...' or "..." with JSON escapes) | number (JSON syntax) | true | false
 *   field   := name ( "." name )*      name := [A-Za-z0-9_]+, the first not starting with a digit
 *
 * Semantics (docs/collections.md): a comparison holds only when the field exists and has the
 * value's type (a number never equals a string); `!=` and `not in` are the exact negations of
 * `=` and `in`, so they also admit items without the field. Every emitted comparison is 0 or 1,
 * never NULL, so `not` is plain two-valued negation. */
#include "collection/filter.h"

#include "embr/core.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- tokens ------------------------------------------------------------------------------------ */

typedef enum tok_kind {
  T_END, T_FIELD, T_STRING, T_NUMBER, T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_COMMA, T_OP,
  T_AND, T_OR, T_NOT, T_IN, T_TRUE, T_FALSE
} tok_kind;

typedef enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } cmp_op;

typedef struct token {
  tok_kind kind;
  size_t pos, len;  /* byte offset and length in the text */
  cmp_op op;
  char *str;        /* T_STRING: decoded bytes (owned) */
  size_t slen;
  int is_int;       /* T_NUMBER */
  int64_t i;
  double d;
} token;

/* ---- the tree ---------------------------------------------------------------------------------- */

typedef enum node_kind { N_OR, N_AND, N_NOT, N_CMP, N_IN } node_kind;
typedef enum val_kind { V_STR, V_NUM, V_TRUE, V_FALSE } val_kind;

typedef struct fnode {
  node_kind kind;
  struct fnode **kids; /* OR/AND: nkids >= 2; NOT: 1 */
  int nkids;
  cmp_op op;           /* N_CMP */
  val_kind vk;         /* N_CMP */
  int path;            /* parameter number of the field's JSON path */
  int value;           /* N_CMP with V_STR / V_NUM: parameter number of the value */
  int *strs, nstrs;    /* N_IN: parameter numbers of the string values */
  int *nums, nnums;    /*       ... of the numbers */
  int has_true, has_false;
} fnode;

typedef struct parser {
  const char *text;
  size_t n, pos;
  token tok;  /* the current (lookahead) token */
  int depth;
  int failed;
  int oom;
  embr__fparam *params;
  int nparams, capparams;
  int nconds;
} parser;

static int fail_at(parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first error with its 1-based column; later ones are consequences of it. */
static int fail_at(parser *p, size_t pos, const char *fmt, ...) {
  if (p->failed) return EMBR_EINVAL;
  p->failed = 1;
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return embr_error(EMBR_EINVAL, "filter: column %zu: %s", pos + 1, what);
}

/* A short printable excerpt of the text at `pos` for messages. */
static const char *near(const parser *p, size_t pos, size_t len, char *buf, size_t cap) {
  if (pos >= p->n) return "the end of the filter";
  size_t m = len ? len : 1;
  if (m > 24) m = 24;
  size_t o = 0;
  buf[o++] = '\'';
  for (size_t i = 0; i < m && pos + i < p->n && o + 5 < cap; i++) {
    unsigned char ch = (unsigned char)p->text[pos + i];
    if (ch < 0x20 || ch == 0x7f) o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
    else buf[o++] = (char)ch;
  }
  buf[o++] = '\'';
  buf[o] = '\0';
  return buf;
}

/* Records an allocation failure (reported as ENOMEM, not as a syntax error). */
static int nomem(parser *p) {
  if (!p->failed) embr_error(EMBR_ENOMEM, "out of memory");
  p->failed = p->oom = 1;
  return EMBR_ENOMEM;
}

static int is_name_char(int ch) { return isalnum(ch) || ch == '_'; }

/* ---- lexer ------------------------------------------------------------------------------------- */

static void put_utf8(char *out, size_t *o, uint32_t cp) {
  if (cp < 0x80) {
    out[(*o)++] = (char)cp;
  } else if (cp < 0x800) {
    out[(*o)++] = (char)(0xC0 | (cp >> 6));
    out[(*o)++] = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out[(*o)++] = (char)(0xE0 | (cp >> 12));
    out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[(*o)++] = (char)(0x80 | (cp & 0x3F));
  } else {
    out[(*o)++] = (char)(0xF0 | (cp >> 18));
    out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[(*o)++] = (char)(0x80 | (cp & 0x3F));
  }
}

static int hex4(const char *s, size_t avail, uint32_t *out) {
  if (avail < 4) return -1;
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int ch = (unsigned char)s[i], d;
    if (ch >= '0' && ch <= '9') d = ch - '0';
    else if (ch >= 'a' && ch <= 'f') d = ch - 'a' + 10;
    else if (ch >= 'A' && ch <= 'F') d = ch - 'A' + 10;
    else return -1;
    v = v * 16 + (uint32_t)d;
  }
  *out = v;
  return 0;
}

/* One escape after a backslash at `at`; appends the decoded bytes and advances *i past it. */
static int lex_escape(parser *p, size_t at, size_t *i, char *out, size_t *o) {
  const char *s = p->text;
  char e = *i < p->n ? s[*i] : '\0';
  static const char from[] = "\"'\\/bfnrt", to[] = "\"'\\/\b\f\n\r\t";
  const char *hit = e ? strchr(from, e) : NULL;
  if (hit) {
    out[(*o)++] = to[hit - from];
    (*i)++;
    return 0;
  }
  uint32_t cp, lo;
  if (e != 'u' || hex4(s + *i + 1, p->n - *i - 1, &cp))
    return fail_at(p, at, "bad escape in a string (expected \\\" \\' \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)");
  *i += 5;
  if (cp >= 0xD800 && cp <= 0xDBFF) { /* a UTF-16 surrogate pair, as JSON writes it */
    if (*i + 1 >= p->n || s[*i] != '\\' || s[*i + 1] != 'u' || hex4(s + *i + 2, p->n - *i - 2, &lo) ||
        lo < 0xDC00 || lo > 0xDFFF)
      return fail_at(p, at, "unpaired UTF-16 surrogate \\u%04X in a string", (unsigned)cp);
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    *i += 6;
  } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
    return fail_at(p, at, "unpaired UTF-16 surrogate \\u%04X in a string", (unsigned)cp);
  }
  if (cp == 0) return fail_at(p, at, "\\u0000 is not allowed in a string");
  put_utf8(out, o, cp);
  return 0;
}

static int lex_string(parser *p, token *t) {
  char quote = p->text[p->pos];
  size_t i = p->pos + 1, o = 0;
  /* Decoded text is never longer than the source. */
  char *out = malloc(p->n - p->pos + 1);
  if (!out) return nomem(p);
  for (;;) {
    if (i >= p->n) {
      free(out);
      return fail_at(p, p->pos, "string is not closed (missing %c)", quote);
    }
    char ch = p->text[i];
    if (ch == quote) break;
    if (ch == '\\') {
      size_t at = i++;
      if (lex_escape(p, at, &i, out, &o)) {
        free(out);
        return EMBR_EINVAL;
      }
      continue;
    }
    out[o++] = ch;
    i++;
  }
  out[o] = '\0';
  /* The buffer was sized for the rest of the text; values keep theirs, so give the excess back
   * (else a long filter of many strings would hold quadratic memory). */
  char *fit = realloc(out, o + 1);
  if (fit) out = fit;
  t->kind = T_STRING;
  t->str = out;
  t->slen = o;
  t->len = i + 1 - p->pos;
  return 0;
}

/* JSON number syntax: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int lex_number(parser *p, token *t) {
  const char *s = p->text;
  size_t i = p->pos, start = p->pos;
  int is_int = 1;
  if (s[i] == '-') i++;
  if (i >= p->n || !isdigit((unsigned char)s[i])) return fail_at(p, start, "a number needs digits after '-'");
  if (s[i] == '0' && i + 1 < p->n && isdigit((unsigned char)s[i + 1]))
    return fail_at(p, start, "numbers must not have leading zeros");
  while (i < p->n && isdigit((unsigned char)s[i])) i++;
  if (i < p->n && s[i] == '.') {
    is_int = 0;
    if (++i >= p->n || !isdigit((unsigned char)s[i])) return fail_at(p, start, "a number needs digits after '.'");
    while (i < p->n && isdigit((unsigned char)s[i])) i++;
  }
  if (i < p->n && (s[i] == 'e' || s[i] == 'E')) {
    is_int = 0;
    if (++i < p->n && (s[i] == '+' || s[i] == '-')) i++;
    if (i >= p->n || !isdigit((unsigned char)s[i])) return fail_at(p, start, "a number needs digits in its exponent");
    while (i < p->n && isdigit((unsigned char)s[i])) i++;
  }
  if (i < p->n && (is_name_char((unsigned char)s[i]) || s[i] == '.'))
    return fail_at(p, start, "malformed number");
  char buf[128];
  size_t len = i - start;
  if (len >= sizeof buf) return fail_at(p, start, "number too long");
  memcpy(buf, s + start, len);
  buf[len] = '\0';
  errno = 0;
  if (is_int) {
    long long v = strtoll(buf, NULL, 10);
    if (errno) is_int = 0; /* beyond int64: compare as a double, as SQLite's JSON reader does */
    else t->i = v;
  }
  if (!is_int) {
    errno = 0;
    t->d = strtod(buf, NULL);
    if (!isfinite(t->d)) return fail_at(p, start, "number out of range");
  }
  t->kind = T_NUMBER;
  t->is_int = is_int;
  t->len = len;
  return 0;
}

static int lex_word(parser *p, token *t) {
  const char *s = p->text;
  size_t i = p->pos;
  while (i < p->n && (is_name_char((unsigned char)s[i]) || s[i] == '.')) i++;
  t->len = i - p->pos;
  static const struct { const char *w; tok_kind k; } kw[] = {
      {"and", T_AND}, {"or", T_OR}, {"not", T_NOT}, {"in", T_IN}, {"true", T_TRUE}, {"false", T_FALSE}};
  for (size_t k = 0; k < sizeof kw / sizeof kw[0]; k++)
    if (strlen(kw[k].w) == t->len && strncasecmp(s + p->pos, kw[k].w, t->len) == 0) {
      t->kind = kw[k].k;
      return 0;
    }
  t->kind = T_FIELD;
  return 0;
}

static int lex_op(parser *p, token *t) {
  static const struct { const char *s; cmp_op op; } ops[] = {
      {"==", OP_EQ}, {"!=", OP_NE}, {"<>", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
      {"=", OP_EQ},  {"<", OP_LT},  {">", OP_GT}};
  for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
    size_t l = strlen(ops[k].s);
    if (p->n - p->pos >= l && memcmp(p->text + p->pos, ops[k].s, l) == 0) {
      t->kind = T_OP;
      t->op = ops[k].op;
      t->len = l;
      return 0;
    }
  }
  char b[64];
  return fail_at(p, p->pos, "unexpected character %s", near(p, p->pos, 1, b, sizeof b));
}

/* Replaces the lookahead with the next token. */
static int next(parser *p) {
  free(p->tok.str);
  memset(&p->tok, 0, sizeof p->tok);
  while (p->pos < p->n && isspace((unsigned char)p->text[p->pos])) p->pos++;
  token *t = &p->tok;
  t->pos = p->pos;
  if (p->pos >= p->n) {
    t->kind = T_END;
    return 0;
  }
  unsigned char ch = (unsigned char)p->text[p->pos];
  static const char punct[] = "()[],";
  static const tok_kind pk[] = {T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_COMMA};
  int rc;
  if (ch && strchr(punct, ch)) {
    t->kind = pk[strchr(punct, ch) - punct];
    t->len = 1;
    rc = 0;
  } else if (ch == '"' || ch == '\'') {
    rc = lex_string(p, t);
  } else if (ch == '-' || isdigit(ch)) {
    rc = lex_number(p, t);
  } else if (is_name_char(ch) || ch == '.') {
    rc = lex_word(p, t);
  } else {
    rc = lex_op(p, t);
  }
  if (!rc) p->pos = t->pos + t->len;
  return rc;
}

/* ---- parameters -------------------------------------------------------------------------------- */

/* Appends a parameter; returns its 1-based number, or 0 on failure (error recorded). */
static int add_param(parser *p, embr__fparam v, size_t pos) {
  if (p->nparams >= EMBR__FILTER_MAX_PARAMS) {
    free(v.text);
    fail_at(p, pos, "filter too long (more than %d fields and values)", EMBR__FILTER_MAX_PARAMS);
    return 0;
  }
  if (p->nparams == p->capparams) {
    int nc = p->capparams ? p->capparams * 2 : 16;
    embr__fparam *np = realloc(p->params, sizeof *np * (size_t)nc);
    if (!np) {
      free(v.text);
      nomem(p);
      return 0;
    }
    p->params = np;
    p->capparams = nc;
  }
  p->params[p->nparams++] = v;
  return p->nparams;
}

/* The current T_STRING / T_NUMBER token as a parameter (takes the string). */
static int value_param(parser *p) {
  embr__fparam v = {0};
  token *t = &p->tok;
  if (t->kind == T_STRING) {
    v.type = EMBR__FP_TEXT;
    v.text = t->str;
    v.len = t->slen;
    t->str = NULL;
  } else if (t->is_int) {
    v.type = EMBR__FP_INT;
    v.i = t->i;
  } else {
    v.type = EMBR__FP_REAL;
    v.d = t->d;
  }
  return add_param(p, v, t->pos);
}

/* Checks the field name and binds "$.name" as its JSON path. */
static int field_param(parser *p) {
  const token *t = &p->tok;
  const char *s = p->text + t->pos;
  char b[64];
  int bad = t->len == 0 || t->len > 256 || isdigit((unsigned char)s[0]) || s[0] == '.' || s[t->len - 1] == '.';
  for (size_t i = 1; i < t->len && !bad; i++) bad = s[i] == '.' && s[i - 1] == '.';
  if (bad) {
    fail_at(p, t->pos, "bad field name %s (names of letters, digits and _, not starting with a digit, "
            "joined by single dots)", near(p, t->pos, t->len, b, sizeof b));
    return 0;
  }
  embr__fparam v = {0};
  v.type = EMBR__FP_TEXT;
  v.len = t->len + 2;
  v.text = malloc(v.len + 1);
  if (!v.text) {
    nomem(p);
    return 0;
  }
  memcpy(v.text, "$.", 2);
  memcpy(v.text + 2, s, t->len);
  v.text[v.len] = '\0';
  return add_param(p, v, t->pos);
}

/* ---- parser ------------------------------------------------------------------------------------ */

static void node_free(fnode *n) {
  if (!n) return;
  for (int i = 0; i < n->nkids; i++) node_free(n->kids[i]);
  free(n->kids);
  free(n->strs);
  free(n->nums);
  free(n);
}

static fnode *node_new(parser *p, node_kind k) {
  fnode *n = calloc(1, sizeof *n);
  if (!n) {
    nomem(p);
    return NULL;
  }
  n->kind = k;
  return n;
}

static int push_int(parser *p, int **arr, int *n, int v) {
  int *na = realloc(*arr, sizeof(int) * (size_t)(*n + 1));
  if (!na) return nomem(p);
  *arr = na;
  (*arr)[(*n)++] = v;
  return 0;
}

static const char *VALUE_EXPECTED = "a value (a string in quotes, a number, true or false)";

static int expect_msg(parser *p, const char *what) {
  char b[64];
  return fail_at(p, p->tok.pos, "expected %s, found %s", what, near(p, p->tok.pos, p->tok.len, b, sizeof b));
}

/* "[" values "]" after `in`: values are grouped by type for the emitter. */
static int parse_list(parser *p, fnode *n) {
  if (p->tok.kind != T_LBRACK) return expect_msg(p, "'[' starting the list after 'in'");
  if (next(p)) return EMBR_EINVAL;
  if (p->tok.kind == T_RBRACK) return next(p);
  for (;;) {
    tok_kind k = p->tok.kind;
    if (k == T_STRING || k == T_NUMBER) {
      int v = value_param(p);
      if (!v || push_int(p, k == T_STRING ? &n->strs : &n->nums, k == T_STRING ? &n->nstrs : &n->nnums, v)) return EMBR_EINVAL;
    } else if (k == T_TRUE || k == T_FALSE) {
      *(k == T_TRUE ? &n->has_true : &n->has_false) = 1;
    } else {
      return expect_msg(p, VALUE_EXPECTED);
    }
    if (next(p)) return EMBR_EINVAL;
    if (p->tok.kind == T_RBRACK) return next(p);
    if (p->tok.kind != T_COMMA) return expect_msg(p, "',' or ']' in the list");
    if (next(p)) return EMBR_EINVAL;
  }
}

/* field op value | field [not] in list; the lookahead is the field. */
static fnode *parse_cond(parser *p) {
  if (p->tok.kind != T_FIELD) {
    expect_msg(p, p->tok.kind == T_END ? "a condition" : "a field name (or '(' or 'not')");
    return NULL;
  }
  p->nconds++;
  int path = field_param(p);
  if (!path || next(p)) return NULL;
  int negate = 0;
  if (p->tok.kind == T_NOT) {
    negate = 1;
    if (next(p)) return NULL;
    if (p->tok.kind != T_IN) return expect_msg(p, "'in' after 'not'"), NULL;
  }
  fnode *n = NULL;
  if (p->tok.kind == T_IN) {
    if (next(p) || !(n = node_new(p, N_IN))) return NULL;
    n->path = path;
    if (parse_list(p, n)) return node_free(n), NULL;
  } else if (p->tok.kind == T_OP) {
    cmp_op op = p->tok.op;
    size_t oppos = p->tok.pos;
    if (next(p) || !(n = node_new(p, N_CMP))) return NULL;
    n->path = path;
    n->op = op;
    tok_kind k = p->tok.kind;
    if (k == T_TRUE || k == T_FALSE) {
      if (op != OP_EQ && op != OP_NE) {
        fail_at(p, oppos, "true and false can only be compared with = and !=");
        return node_free(n), NULL;
      }
      n->vk = k == T_TRUE ? V_TRUE : V_FALSE;
    } else if (k == T_STRING || k == T_NUMBER) {
      n->vk = k == T_STRING ? V_STR : V_NUM;
      if (!(n->value = value_param(p))) return node_free(n), NULL;
    } else {
      expect_msg(p, VALUE_EXPECTED);
      return node_free(n), NULL;
    }
    if (next(p)) return node_free(n), NULL;
  } else {
    return expect_msg(p, "a comparison (=, !=, <, <=, >, >=) or 'in' after the field name"), NULL;
  }
  if (negate) {
    fnode *x = node_new(p, N_NOT);
    if (!x || !(x->kids = malloc(sizeof *x->kids))) {
      if (x) nomem(p);
      free(x);
      return node_free(n), NULL;
    }
    x->kids[0] = n;
    x->nkids = 1;
    n = x;
  }
  return n;
}

static fnode *parse_or(parser *p);

static fnode *parse_unary(parser *p) {
  if (p->tok.kind == T_NOT || p->tok.kind == T_LPAREN) {
    if (++p->depth > EMBR__FILTER_MAX_DEPTH) {
      fail_at(p, p->tok.pos, "nested too deeply (more than %d levels of parentheses and 'not')", EMBR__FILTER_MAX_DEPTH);
      return NULL;
    }
    size_t open = p->tok.pos;
    int is_not = p->tok.kind == T_NOT;
    if (next(p)) return NULL;
    fnode *inner = is_not ? parse_unary(p) : parse_or(p);
    if (!inner) return NULL;
    p->depth--;
    if (!is_not) {
      if (p->tok.kind != T_RPAREN) {
        char b[64];
        fail_at(p, p->tok.pos, "expected ')' closing the '(' at column %zu, found %s", open + 1,
                near(p, p->tok.pos, p->tok.len, b, sizeof b));
        return node_free(inner), NULL;
      }
      if (next(p)) return node_free(inner), NULL;
      return inner;
    }
    fnode *n = node_new(p, N_NOT);
    if (!n || !(n->kids = malloc(sizeof *n->kids))) {
      if (n) nomem(p);
      free(n);
      return node_free(inner), NULL;
    }
    n->kids[0] = inner;
    n->nkids = 1;
    return n;
  }
  return parse_cond(p);
}

/* A chain "a OP b OP c" of one operator, kept flat (the emitter balances it). */
static fnode *parse_chain(parser *p, tok_kind sep, node_kind kind, fnode *(*sub)(parser *)) {
  fnode *first = sub(p);
  if (!first || p->tok.kind != sep) return first;
  fnode *n = node_new(p, kind);
  if (!n) return node_free(first), NULL;
  fnode *kid = first;
  for (;;) {
    fnode **nk = realloc(n->kids, sizeof *nk * (size_t)(n->nkids + 1));
    if (!nk) {
      nomem(p);
      node_free(kid);
      return node_free(n), NULL;
    }
    n->kids = nk;
    n->kids[n->nkids++] = kid;
    if (p->tok.kind != sep) return n;
    if (next(p) || !(kid = sub(p))) return node_free(n), NULL;
  }
}

static fnode *parse_and(parser *p) { return parse_chain(p, T_AND, N_AND, parse_unary); }
static fnode *parse_or(parser *p) { return parse_chain(p, T_OR, N_OR, parse_and); }

/* ---- SQL emission ------------------------------------------------------------------------------ */

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

static void emit(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(sbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (w < 0) {
      b->oom = 1;
      return;
    }
    if (b->p && (size_t)w < b->cap - b->len) {
      b->len += (size_t)w;
      return;
    }
    size_t nc = b->cap ? b->cap * 2 : 256;
    while (nc < b->len + (size_t)w + 1) nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = nc;
  }
}

/* A guard "the field exists and has this JSON type" that is 0 or 1, never NULL. */
static void emit_type_guard(sbuf *b, int path, const char *types) {
  emit(b, "ifnull(json_type(metadata, ?%d), '') IN (%s)", path, types);
}

static const char *NUM_TYPES = "'integer', 'real'";
static const char *STR_TYPES = "'text'";

static void emit_list(sbuf *b, const int *v, int n) {
  for (int i = 0; i < n; i++) emit(b, "%s?%d", i ? ", " : "", v[i]);
}

static void emit_in(sbuf *b, const fnode *n) {
  int parts = 0;
  emit(b, "(");
  if (n->nnums) {
    emit_type_guard(b, n->path, NUM_TYPES);
    emit(b, " AND json_extract(metadata, ?%d) IN (", n->path);
    emit_list(b, n->nums, n->nnums);
    emit(b, ")");
    parts++;
  }
  if (n->nstrs) {
    emit(b, "%s", parts++ ? " OR " : "");
    emit_type_guard(b, n->path, STR_TYPES);
    emit(b, " AND json_extract(metadata, ?%d) IN (", n->path);
    emit_list(b, n->strs, n->nstrs);
    emit(b, ")");
  }
  if (n->has_true || n->has_false) {
    emit(b, "%s", parts++ ? " OR " : "");
    emit_type_guard(b, n->path, n->has_true && n->has_false ? "'true', 'false'" : n->has_true ? "'true'" : "'false'");
  }
  emit(b, "%s)", parts ? "" : "0");
}

static void emit_cmp(sbuf *b, const fnode *n) {
  static const char *sqlop[] = {"=", "=", "<", "<=", ">", ">="};
  emit(b, "%s", n->op == OP_NE ? "(NOT " : "");
  if (n->vk == V_TRUE || n->vk == V_FALSE) {
    emit(b, "(");
    emit_type_guard(b, n->path, n->vk == V_TRUE ? "'true'" : "'false'");
    emit(b, ")");
  } else {
    emit(b, "(");
    emit_type_guard(b, n->path, n->vk == V_NUM ? NUM_TYPES : STR_TYPES);
    emit(b, " AND json_extract(metadata, ?%d) %s ?%d)", n->path, sqlop[n->op], n->value);
  }
  emit(b, "%s", n->op == OP_NE ? ")" : "");
}

static void emit_node(sbuf *b, const fnode *n);

/* Kids [lo, hi) joined by `op` as a balanced tree: SQLite counts the depth of its expression
 * tree (1000 levels at most), and a flat "a OR b OR c ..." nests one level per term. */
static void emit_balanced(sbuf *b, const fnode *n, int lo, int hi, const char *op) {
  if (hi - lo == 1) {
    emit_node(b, n->kids[lo]);
    return;
  }
  int mid = lo + (hi - lo) / 2;
  emit(b, "(");
  emit_balanced(b, n, lo, mid, op);
  emit(b, " %s ", op);
  emit_balanced(b, n, mid, hi, op);
  emit(b, ")");
}

static void emit_node(sbuf *b, const fnode *n) {
  switch (n->kind) {
    case N_OR: emit_balanced(b, n, 0, n->nkids, "OR"); break;
    case N_AND: emit_balanced(b, n, 0, n->nkids, "AND"); break;
    case N_NOT:
      emit(b, "(NOT ");
      emit_node(b, n->kids[0]);
      emit(b, ")");
      break;
    case N_CMP: emit_cmp(b, n); break;
    case N_IN: emit_in(b, n); break;
  }
}

/* ---- entry points ------------------------------------------------------------------------------ */

void embr__filter_free(embr__filter *f) {
  if (!f) return;
  for (int i = 0; i < f->nparams; i++) free(f->params[i].text);
  free(f->params);
  free(f->sql);
  memset(f, 0, sizeof *f);
}

static void parser_release(parser *p) {
  free(p->tok.str);
  for (int i = 0; i < p->nparams; i++) free(p->params[i].text);
  free(p->params);
}

int embr__filter_compile(const char *text, embr__filter *out) {
  memset(out, 0, sizeof *out);
  if (!text) return embr_error(EMBR_EINVAL, "filter: NULL expression");
  parser p;
  memset(&p, 0, sizeof p);
  p.text = text;
  p.n = strlen(text);
  if (p.n > EMBR__FILTER_MAX_TEXT)
    return embr_error(EMBR_EINVAL, "filter: %zu bytes long, at most %d allowed", p.n, EMBR__FILTER_MAX_TEXT);
  fnode *root = NULL;
  int rc = next(&p);
  if (!rc && p.tok.kind == T_END) rc = fail_at(&p, 0, "empty filter (expected a condition such as genre = \"jazz\")");
  if (!rc) root = parse_or(&p);
  if (!rc && root && p.tok.kind != T_END) {
    char b[64];
    rc = fail_at(&p, p.tok.pos, "expected 'and', 'or' or the end of the filter, found %s",
                 near(&p, p.tok.pos, p.tok.len, b, sizeof b));
  }
  if (rc || !root || p.failed) {
    node_free(root);
    parser_release(&p);
    return p.oom ? EMBR_ENOMEM : EMBR_EINVAL;
  }
  sbuf b = {0};
  emit_node(&b, root);
  node_free(root);
  if (b.oom || !b.p) {
    free(b.p);
    parser_release(&p);
    return embr_error(EMBR_ENOMEM, "out of memory");
  }
  free(p.tok.str);
  out->sql = b.p;
  out->params = p.params;
  out->nparams = p.nparams;
  out->nconds = p.nconds;
  return 0;
}
