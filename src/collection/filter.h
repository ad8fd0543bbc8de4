/* Internal: the metadata filter language of collections, compiled to a SQLite WHERE fragment.
 *
 *   genre = "jazz" and (year >= 1990 or tags.live = true) and not label in ["x", 'y', 3]
 *
 * The fragment only ever contains text written by this compiler: field paths and values are
 * bound parameters (?1, ?2, ...), so no byte of the user's expression reaches the SQL text.
 * This file knows nothing of SQLite itself (the fuzz target compiles it without a database); the
 * collection code binds `params` to the statement. See docs/collections.md for the semantics. */
#ifndef EMBR_COLLECTION_FILTER_H
#define EMBR_COLLECTION_FILTER_H

#include <stddef.h>
#include <stdint.h>

enum { EMBR__FP_TEXT = 0, EMBR__FP_INT = 1, EMBR__FP_REAL = 2 };

/* Limits that keep the SQL inside SQLite's own (1000 expression levels, 32766 parameters) and
 * the recursive parser's stack small whatever the input. */
enum {
  EMBR__FILTER_MAX_TEXT = 65536, /* bytes of filter text */
  EMBR__FILTER_MAX_DEPTH = 24,   /* nested parentheses / not */
  EMBR__FILTER_MAX_PARAMS = 30000
};

typedef struct embr__fparam {
  int type;       /* EMBR__FP_* */
  char *text;     /* TEXT: decoded string (a JSON path "$.a.b" for fields), NUL-terminated */
  size_t len;     /* TEXT: bytes, without the NUL */
  int64_t i;      /* INT */
  double d;       /* REAL */
} embr__fparam;

typedef struct embr__filter {
  char *sql;             /* boolean SQL expression over the column `metadata`; never NULL */
  embr__fparam *params;  /* params[i] binds to ?(i+1) */
  int nparams;
  int nconds;            /* comparisons in the expression (for tests and the fuzz target) */
} embr__filter;

/* Parses and compiles `text`. On failure returns EMBR_EINVAL with a one-line message naming the
 * column (1-based byte position) of the problem, and leaves *out empty. */
int embr__filter_compile(const char *text, embr__filter *out);
void embr__filter_free(embr__filter *f);

#endif
