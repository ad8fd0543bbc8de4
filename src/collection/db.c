/* The SQLite side of a collection: opening with the durability settings, the schema, the
 * parameters in `meta`, transactions and row streaming. Every statement is a constant string;
 * values (including anything the user wrote) are bound parameters. */
#include "collection/collection_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int embr__db_fail(embr_collection *c, int rc, const char *what) {
  const char *msg = c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);
  int status;
  switch (rc & 0xff) {
    case SQLITE_NOMEM: status = EMBR_ENOMEM; break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: status = EMBR_EFORMAT; break;
    case SQLITE_CONSTRAINT: status = EMBR_EINVAL; break;
    default: status = EMBR_EIO; break;
  }
  return embr_error(status, "%s: %s: %s", c->db_path, what, msg);
}

int embr__db_exec(embr_collection *c, const char *sql) {
  int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : embr__db_fail(c, rc, sql);
}

int embr__db_prepare(embr_collection *c, const char *sql, sqlite3_stmt **st) {
  int rc = sqlite3_prepare_v2(c->db, sql, -1, st, NULL);
  return rc == SQLITE_OK ? 0 : embr__db_fail(c, rc, "preparing a query");
}

int embr__db_int(embr_collection *c, const char *sql, int64_t *out) {
  sqlite3_stmt *st;
  int rc = embr__db_prepare(c, sql, &st);
  if (rc) return rc;
  *out = 0;
  int s = sqlite3_step(st);
  if (s == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
  rc = s == SQLITE_ROW || s == SQLITE_DONE ? 0 : embr__db_fail(c, s, "reading");
  sqlite3_finalize(st);
  return rc;
}

int embr__db_begin(embr_collection *c, int write) {
  /* IMMEDIATE takes the write lock up front, so the snapshot read inside the transaction (to
   * catch the index up) is the one the writes apply to. */
  return embr__db_exec(c, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

int embr__db_commit(embr_collection *c) {
  int rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
  if (rc == SQLITE_OK) return 0;
  int status = embr__db_fail(c, rc, "commit");
  embr__db_rollback(c);
  return status;
}

void embr__db_rollback(embr_collection *c) {
  if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

int embr__db_marks(embr_collection *c, embr__marks *m) {
  int rc = embr__db_int(c, "SELECT seq FROM sqlite_sequence WHERE name = 'items'", &m->seq_items);
  if (!rc) rc = embr__db_int(c, "SELECT seq FROM sqlite_sequence WHERE name = 'deleted'", &m->seq_del);
  if (!rc) rc = embr__db_int(c, "SELECT value FROM meta WHERE key = 'del_floor'", &m->del_floor);
  return rc;
}

int embr__db_open(embr_collection *c, const char *path, int writable, int create) {
  int flags = (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | (create ? SQLITE_OPEN_CREATE : 0) |
              SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
  if (rc != SQLITE_OK) {
    int status = embr__db_fail(c, rc, "cannot open");
    sqlite3_close(c->db);
    c->db = NULL;
    return status;
  }
  sqlite3_extended_result_codes(c->db, 1);
  /* A reader may meet a checkpoint or a writer's commit in progress: wait rather than fail. */
  sqlite3_busy_timeout(c->db, 10000);
  /* FULL: in WAL mode the log is fsynced at every COMMIT, which is what makes an acknowledged
   * add durable (NORMAL would only sync at checkpoints). It is a per-connection setting. */
  return embr__db_exec(c, "PRAGMA synchronous = FULL");
}

void embr__db_close(embr_collection *c) {
  sqlite3_stmt **sts[] = {&c->st_insert, &c->st_by_ext, &c->st_by_id, &c->st_delete, &c->st_log};
  for (size_t i = 0; i < sizeof sts / sizeof sts[0]; i++) {
    sqlite3_finalize(*sts[i]);
    *sts[i] = NULL;
  }
  if (c->db) sqlite3_close(c->db);
  c->db = NULL;
}

static const char *const SCHEMA =
    "CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value NOT NULL) WITHOUT ROWID;"
    /* AUTOINCREMENT: internal ids are never reused, so "every id above the index's mark is new"
     * holds even after the newest rows were deleted. The CHECK makes the database itself refuse
     * metadata its JSON functions could not read. */
    "CREATE TABLE items("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ext_id TEXT NOT NULL UNIQUE,"
    "  vector BLOB NOT NULL,"
    "  metadata TEXT CHECK (metadata IS NULL OR (json_valid(metadata) AND json_type(metadata) = 'object')));"
    /* The delete log lets an index checkpoint catch up with deletes made after it was saved. */
    "CREATE TABLE deleted(seq INTEGER PRIMARY KEY AUTOINCREMENT, id INTEGER NOT NULL);";

static int put_meta(embr_collection *c, const char *key, const char *text, int64_t num) {
  sqlite3_stmt *st;
  int rc = embr__db_prepare(c, "INSERT INTO meta(key, value) VALUES (?1, ?2)", &st);
  if (rc) return rc;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  if (text) sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_int64(st, 2, num);
  int s = sqlite3_step(st);
  sqlite3_finalize(st);
  return s == SQLITE_DONE ? 0 : embr__db_fail(c, s, "writing the parameters");
}

int embr__db_create_schema(embr_collection *c, int64_t dim, embr_metric metric, const char *spec) {
  char pragmas[128];
  snprintf(pragmas, sizeof pragmas, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
           EMBR__COLLECTION_APP_ID, EMBR__COLLECTION_FORMAT);
  int rc = embr__db_exec(c, "BEGIN");
  if (!rc) rc = embr__db_exec(c, SCHEMA);
  if (!rc) rc = embr__db_exec(c, pragmas);
  if (!rc) rc = put_meta(c, "dim", NULL, dim);
  if (!rc) rc = put_meta(c, "metric", embr_metric_name(metric), 0);
  if (!rc) rc = put_meta(c, "index_spec", spec, 0);
  if (!rc) rc = put_meta(c, "epoch", NULL, c->epoch);
  if (!rc) rc = put_meta(c, "del_floor", NULL, 0);
  if (!rc) rc = embr__db_commit(c);
  if (rc) embr__db_rollback(c);
  /* WAL: readers do not block the writer nor see half a transaction; it is a property of the
   * file, so it is set once here. */
  if (!rc) rc = embr__db_exec(c, "PRAGMA journal_mode = WAL");
  return rc;
}

static int get_meta_text(embr_collection *c, const char *key, char *buf, size_t cap) {
  sqlite3_stmt *st;
  int rc = embr__db_prepare(c, "SELECT value FROM meta WHERE key = ?1", &st);
  if (rc) return rc;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  int s = sqlite3_step(st);
  const unsigned char *v = s == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
  if (s != SQLITE_ROW && s != SQLITE_DONE) rc = embr__db_fail(c, s, "reading the parameters");
  else if (!v || strlen((const char *)v) >= cap)
    rc = embr_error(EMBR_EFORMAT, "%s: parameter '%s' is missing or malformed", c->db_path, key);
  else
    memcpy(buf, v, strlen((const char *)v) + 1);
  sqlite3_finalize(st);
  return rc;
}

/* application_id says whose file it is; user_version which layout it has. */
static int check_identity(embr_collection *c) {
  int64_t app, ver, tables;
  int rc = embr__db_int(c, "PRAGMA application_id", &app);
  if (!rc) rc = embr__db_int(c, "PRAGMA user_version", &ver);
  if (!rc) rc = embr__db_int(c, "SELECT count(*) FROM sqlite_master", &tables);
  if (rc) return rc;
  if (app != EMBR__COLLECTION_APP_ID)
    return embr_error(EMBR_EFORMAT, "%s: not an embr collection database (%s)", c->db_path,
                      tables ? "it belongs to another program" : "it is empty");
  if (ver > EMBR__COLLECTION_FORMAT)
    return embr_error(EMBR_EUNSUPPORTED, "%s: collection format version %lld is newer than this embr reads (%d)",
                      c->db_path, (long long)ver, EMBR__COLLECTION_FORMAT);
  if (ver < 1) return embr_error(EMBR_EFORMAT, "%s: bad collection format version %lld", c->db_path, (long long)ver);
  return 0;
}

int embr__db_read_meta(embr_collection *c) {
  int rc = check_identity(c);
  char metric[32];
  if (!rc) rc = embr__db_int(c, "SELECT value FROM meta WHERE key = 'dim'", &c->dim);
  if (!rc) rc = embr__db_int(c, "SELECT value FROM meta WHERE key = 'epoch'", &c->epoch);
  if (!rc) rc = get_meta_text(c, "metric", metric, sizeof metric);
  if (!rc) rc = get_meta_text(c, "index_spec", c->spec, sizeof c->spec);
  if (rc) return rc;
  if (c->dim < 1 || c->dim > (1 << 20)) return embr_error(EMBR_EFORMAT, "%s: bad dimension %lld", c->db_path, (long long)c->dim);
  if (embr_metric_parse(metric, &c->metric)) return embr_error(EMBR_EFORMAT, "%s: unknown metric '%s'", c->db_path, metric);
  return 0;
}

int embr__db_bind_filter(embr_collection *c, sqlite3_stmt *st, const embr__filter *f) {
  /* A parameter the SQL never mentions (the field of an empty "in []") has no slot past the
   * highest one used; it is skipped. */
  int top = sqlite3_bind_parameter_count(st);
  for (int i = 0; i < f->nparams && i < top; i++) {
    const embr__fparam *p = &f->params[i];
    int rc;
    if (p->type == EMBR__FP_TEXT) rc = sqlite3_bind_text(st, i + 1, p->text, (int)p->len, SQLITE_STATIC);
    else if (p->type == EMBR__FP_INT) rc = sqlite3_bind_int64(st, i + 1, p->i);
    else rc = sqlite3_bind_double(st, i + 1, p->d);
    if (rc != SQLITE_OK) return embr__db_fail(c, rc, "binding the filter");
  }
  return 0;
}

/* ---- vectors ----------------------------------------------------------------------------------- */

static int host_is_le(void) {
  const uint32_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

static void swap32(float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &x[i], 4);
    u = (u >> 24) | ((u >> 8) & 0xff00u) | ((u << 8) & 0xff0000u) | (u << 24);
    memcpy(&x[i], &u, 4);
  }
}

int embr__vec_decode(embr_collection *c, const void *blob, int bytes, int64_t id, float *out) {
  if (!blob || bytes != (int)(c->dim * 4))
    return embr_error(EMBR_EFORMAT, "%s: item %lld has a vector of %d bytes, expected %lld (damaged database)",
                      c->db_path, (long long)id, bytes, (long long)(c->dim * 4));
  memcpy(out, blob, (size_t)bytes);
  if (!host_is_le()) swap32(out, c->dim);
  return 0;
}

const void *embr__vec_encode(const embr_collection *c, const float *row, float *tmp) {
  if (host_is_le()) return row;
  memcpy(tmp, row, sizeof(float) * (size_t)c->dim);
  swap32(tmp, c->dim);
  return tmp;
}

/* ---- streaming rows ---------------------------------------------------------------------------- */

int embr__db_rows(embr_collection *c, int64_t after, int64_t step, embr__rows_fn fn, void *ctx) {
  /* Chunks of about 16 MB of vectors: large enough for parallel index inserts to pay off. */
  int64_t chunk = (int64_t)(16u << 20) / (c->dim * 4);
  if (chunk < 64) chunk = 64;
  if (chunk > 16384) chunk = 16384;
  int64_t *ids = malloc(sizeof(int64_t) * (size_t)chunk);
  float *x = embr_alloc(sizeof(float) * (size_t)chunk * (size_t)c->dim);
  sqlite3_stmt *st = NULL;
  int rc = ids && x ? 0 : embr_error(EMBR_ENOMEM, "out of memory");
  if (!rc) rc = embr__db_prepare(c, "SELECT id, vector FROM items WHERE id > ?1 ORDER BY id", &st);
  if (!rc) sqlite3_bind_int64(st, 1, after);
  int64_t n = 0, seen = 0;
  while (!rc) {
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) break;
    if (s != SQLITE_ROW) {
      rc = embr__db_fail(c, s, "reading vectors");
      break;
    }
    if (seen++ % step) continue;
    ids[n] = sqlite3_column_int64(st, 0);
    rc = embr__vec_decode(c, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1), ids[n], x + n * c->dim);
    if (!rc && ++n == chunk) {
      rc = fn(ctx, ids, x, n);
      n = 0;
    }
  }
  if (!rc && n) rc = fn(ctx, ids, x, n);
  sqlite3_finalize(st);
  free(ids);
  embr_free(x);
  return rc;
}
