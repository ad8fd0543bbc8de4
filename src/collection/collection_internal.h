/* Internal: the collection handle, the SQLite layer (db.c), keeping the index in step with the
 * database (sync.c), shared by collection.c and search.c. */
#ifndef EMBR_COLLECTION_INTERNAL_H
#define EMBR_COLLECTION_INTERNAL_H

#include "collection/filter.h"
#include "embr/collection.h"

#include <sqlite3.h>

/* PRAGMA application_id ("EMBC") marks the database as ours; PRAGMA user_version is the format. */
#define EMBR__COLLECTION_APP_ID 0x454D4243
enum { EMBR__COLLECTION_FORMAT = 1 };

struct embr_collection {
  char *dir, *db_path, *index_path, *state_path, *lock_path;
  sqlite3 *db;
  int writable;
  int lock_fd;             /* -1 for read-only handles */
  int64_t dim;
  embr_metric metric;
  char spec[256];
  int64_t epoch;           /* random, from create: ties index.state to this database */

  /* The in-memory index holds exactly the rows with id <= max_id that the delete log up to
   * del_seq has not removed (with an untrained IVF index: nothing, and max_id = 0). Internal ids
   * come from AUTOINCREMENT, so they only grow and are never reused. */
  embr_index *ix;
  int64_t max_id, del_seq;
  int need_rebuild;        /* an in-memory update failed after a commit: rebuild before use */
  int64_t train_retry_at;  /* untrained IVF: try training again at this many items */

  int64_t unsaved;         /* changes since index.embr was written */
  int64_t autosave_min;
  double autosave_frac;
  embr_index_origin origin;
  char note[256];

  sqlite3_stmt *st_insert, *st_by_ext, *st_by_id, *st_delete, *st_log;
};

/* Database state read in one transaction. */
typedef struct embr__marks {
  int64_t seq_items;  /* largest internal id ever assigned */
  int64_t seq_del;    /* last entry of the delete log */
  int64_t del_floor;  /* entries up to here were dropped by compact */
} embr__marks;

/* ---- db.c -------------------------------------------------------------------------------------- */
/* Maps a SQLite result code to an embr status with "DB: what: sqlite's message". */
int embr__db_fail(embr_collection *c, int sqlite_rc, const char *what);
int embr__db_exec(embr_collection *c, const char *sql);
int embr__db_prepare(embr_collection *c, const char *sql, sqlite3_stmt **st);
/* A single integer (0 when the query returns no row). */
int embr__db_int(embr_collection *c, const char *sql, int64_t *out);
int embr__db_begin(embr_collection *c, int write); /* write: BEGIN IMMEDIATE */
int embr__db_commit(embr_collection *c);
void embr__db_rollback(embr_collection *c);
int embr__db_marks(embr_collection *c, embr__marks *m);
int embr__db_open(embr_collection *c, const char *path, int writable, int create);
/* Reads and checks application id, format version and the parameters in meta. */
int embr__db_read_meta(embr_collection *c);
int embr__db_create_schema(embr_collection *c, int64_t dim, embr_metric metric, const char *spec);
void embr__db_close(embr_collection *c);
int embr__db_bind_filter(embr_collection *c, sqlite3_stmt *st, const embr__filter *f);

/* Vectors are stored as dim little-endian float32. */
int embr__vec_decode(embr_collection *c, const void *blob, int bytes, int64_t id, float *out);
/* Row as a blob: the row itself on little-endian hosts, else a swapped copy in `tmp`. */
const void *embr__vec_encode(const embr_collection *c, const float *row, float *tmp);

/* Calls fn for chunks of (ids, vectors) of the rows with id > after, in id order, keeping only
 * every `step`-th row (step 1: all). */
typedef int (*embr__rows_fn)(void *ctx, const int64_t *ids, const float *x, int64_t n);
int embr__db_rows(embr_collection *c, int64_t after, int64_t step, embr__rows_fn fn, void *ctx);

/* ---- sync.c ------------------------------------------------------------------------------------ */
/* Inside a transaction: makes the index reflect the database (catch up, or rebuild). */
int embr__sync(embr_collection *c);
/* At open, inside a read transaction: loads index.embr when index.state vouches for it, then
 * syncs and checks the item count. */
int embr__load_index(embr_collection *c);
/* Builds the index from every row (inside a transaction); `why` is recorded as the note. */
int embr__rebuild(embr_collection *c, const embr__marks *m, const char *why);
/* A flat index of every row (exact search while an IVF index is untrained). */
int embr__build_flat(embr_collection *c, embr_index **out);
int embr__save_index(embr_collection *c);
void embr__maybe_autosave(embr_collection *c);
/* Deletes temporary files a killed save left behind (read-write opens, under the lock). */
void embr__remove_stale_temps(embr_collection *c);

#endif
