/* Collections: create/open/close, add, delete, get, info, save, refresh, compact. The database
 * is written first and the in-memory index follows after the COMMIT, so the index never holds
 * anything the database might still lose. See include/embr/collection.h and docs/collections.md. */
#include "collection/collection_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { MAX_EXT_ID = 1024 };

/* ---- handles and paths ------------------------------------------------------------------------- */

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = embr_alloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static void handle_free(embr_collection *c) {
  if (!c) return;
  embr__db_close(c);
  embr_index_free(c->ix);
  if (c->lock_fd >= 0) close(c->lock_fd); /* releases the writer lock */
  embr_free(c->dir);
  embr_free(c->db_path);
  embr_free(c->index_path);
  embr_free(c->state_path);
  embr_free(c->lock_path);
  embr_free(c);
}

static int handle_new(const char *dir, embr_collection **out) {
  *out = NULL;
  if (!dir || !*dir) return embr_error(EMBR_EINVAL, "empty collection directory name");
  embr_collection *c = embr_calloc(1, sizeof *c);
  if (!c) return embr_error(EMBR_ENOMEM, "out of memory");
  c->lock_fd = -1;
  c->autosave_min = 10000;
  c->autosave_frac = 0.1;
  c->dir = embr_strdup(dir);
  c->db_path = join(dir, "collection.db");
  c->index_path = join(dir, "index.embr");
  c->state_path = join(dir, "index.state");
  c->lock_path = join(dir, "collection.lock");
  if (!c->dir || !c->db_path || !c->index_path || !c->state_path || !c->lock_path) {
    handle_free(c);
    return embr_error(EMBR_ENOMEM, "out of memory");
  }
  *out = c;
  return 0;
}

/* One writer per collection: an exclusive flock, dropped by the kernel if the process dies. */
static int take_writer_lock(embr_collection *c) {
  c->lock_fd = open(c->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (c->lock_fd < 0) return embr_error(EMBR_EIO, "%s: cannot open: %s", c->lock_path, strerror(errno));
  if (flock(c->lock_fd, LOCK_EX | LOCK_NB) == 0) return 0;
  int e = errno;
  close(c->lock_fd);
  c->lock_fd = -1;
  if (e == EWOULDBLOCK) return embr_error(EMBR_EIO, "%s: the collection is open for writing elsewhere (one writer at a time)", c->dir);
  return embr_error(EMBR_EIO, "%s: cannot lock: %s", c->lock_path, strerror(e));
}

static int check_dir(const char *dir, const char *db_path) {
  struct stat st;
  if (stat(dir, &st) != 0)
    return embr_error(errno == ENOENT ? EMBR_ENOTFOUND : EMBR_EIO, "%s: %s", dir, strerror(errno));
  if (!S_ISDIR(st.st_mode)) return embr_error(EMBR_EINVAL, "%s: not a directory", dir);
  if (stat(db_path, &st) != 0)
    return embr_error(EMBR_ENOTFOUND, "%s: not an embr collection (no collection.db)", dir);
  return 0;
}

embr_status embr_collection_open(embr_collection **out, const char *dir, int flags) {
  *out = NULL;
  embr_collection *c;
  int rc = handle_new(dir, &c);
  if (rc) return rc;
  c->writable = (flags & EMBR_COLLECTION_RDWR) != 0;
  rc = check_dir(dir, c->db_path);
  if (!rc && c->writable) rc = take_writer_lock(c);
  if (!rc) rc = embr__db_open(c, c->db_path, c->writable, 0);
  if (!rc) rc = embr__db_read_meta(c);
  if (!rc && c->writable) embr__remove_stale_temps(c);
  if (!rc) rc = embr__db_begin(c, 0);
  if (!rc) {
    rc = embr__load_index(c);
    if (rc) embr__db_rollback(c);
    else rc = embr__db_commit(c);
  }
  if (rc) {
    handle_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

/* A writer whose index fell out of step brings it back before saving or changing anything. */
static int resync(embr_collection *c) {
  int rc = embr__db_begin(c, 0);
  if (rc) return rc;
  rc = embr__sync(c);
  if (rc) {
    embr__db_rollback(c);
    return rc;
  }
  return embr__db_commit(c);
}

embr_status embr_collection_save(embr_collection *c) {
  if (!c->writable) return embr_error(EMBR_EUNSUPPORTED, "%s: opened read-only", c->dir);
  int rc = c->need_rebuild || !c->ix ? resync(c) : 0;
  return rc ? rc : embr__save_index(c);
}

embr_status embr_collection_close(embr_collection *c) {
  if (!c) return 0;
  int rc = 0;
  if (c->writable && c->db && (c->unsaved > 0 || c->need_rebuild || !c->ix)) rc = embr_collection_save(c);
  handle_free(c);
  return rc;
}

void embr_collection_set_autosave(embr_collection *c, int64_t min_changes, double fraction) {
  c->autosave_min = min_changes > 0 ? min_changes : 0;
  c->autosave_frac = fraction > 0 && isfinite(fraction) ? fraction : 0;
}

embr_status embr_collection_refresh(embr_collection *c) { return resync(c); }

/* ---- create ------------------------------------------------------------------------------------ */

static int64_t random_epoch(void) {
  uint64_t v = 0;
  if (getentropy(&v, sizeof v) != 0) v = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
  return (int64_t)(v >> 1); /* positive: it is stored as a SQLite integer */
}

static void fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

/* Puts the finished database in place without replacing one a concurrent create made. */
static int publish_db(const char *tmp, const char *path, const char *dir) {
  int e = 0;
  if (link(tmp, path) != 0) {
    e = errno;
    /* Filesystems without hard links: a plain rename (which could replace a concurrent one). */
    if (e != EEXIST) e = rename(tmp, path) == 0 ? 0 : errno;
  }
  unlink(tmp); /* the link made it redundant; after a rename it is already gone */
  if (e == EEXIST) return embr_error(EMBR_EINVAL, "%s: already holds a collection", dir);
  if (e) return embr_error(EMBR_EIO, "%s: cannot create collection.db: %s", dir, strerror(e));
  fsync_dir(dir);
  return 0;
}

static int make_dir(const char *dir) {
  struct stat st;
  if (mkdir(dir, 0755) == 0) {
    char *copy = embr_strdup(dir), *slash = copy ? strrchr(copy, '/') : NULL;
    if (slash) *slash = '\0';
    fsync_dir(slash ? (slash == copy ? "/" : copy) : ".");
    embr_free(copy);
    return 0;
  }
  if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
  return embr_error(EMBR_EIO, "%s: cannot create the directory: %s", dir, strerror(errno));
}

/* Writes the schema into a fresh database file under a temporary name. */
static int write_new_db(embr_collection *c, const char *tmp, int64_t dim, embr_metric metric) {
  char *db_path = c->db_path;
  c->db_path = (char *)tmp; /* messages name the file being written */
  unlink(tmp);
  int rc = embr__db_open(c, tmp, 1, 1);
  if (!rc) rc = embr__db_create_schema(c, dim, metric, c->spec);
  embr__db_close(c); /* checkpoints the WAL into the file and removes it */
  c->db_path = db_path;
  return rc;
}

embr_status embr_collection_create(embr_collection **out, const char *dir, int64_t dim, embr_metric metric,
                                   const char *index_spec) {
  if (out) *out = NULL;
  embr_index *probe;
  int rc = embr_index_create(&probe, index_spec ? index_spec : "hnsw", dim, metric);
  if (rc) return rc;
  embr_collection *c;
  if ((rc = handle_new(dir, &c))) {
    embr_index_free(probe);
    return rc;
  }
  snprintf(c->spec, sizeof c->spec, "%s", embr_index_spec(probe));
  embr_index_free(probe);
  c->epoch = random_epoch();
  struct stat st;
  char tmp_name[64];
  snprintf(tmp_name, sizeof tmp_name, "collection.db.creating-%ld", (long)getpid());
  char *tmp = join(dir, tmp_name);
  rc = tmp ? make_dir(dir) : embr_error(EMBR_ENOMEM, "out of memory");
  if (!rc && stat(c->db_path, &st) == 0) rc = embr_error(EMBR_EINVAL, "%s: already holds a collection", dir);
  if (!rc) rc = write_new_db(c, tmp, dim, metric);
  if (!rc) rc = publish_db(tmp, c->db_path, dir);
  if (rc && tmp) unlink(tmp);
  embr_free(tmp);
  handle_free(c);
  if (!rc && out) rc = embr_collection_open(out, dir, EMBR_COLLECTION_RDWR);
  return rc;
}

/* ---- add --------------------------------------------------------------------------------------- */

static int check_ext_id(const char *id, int64_t i) {
  if (!id) return embr_error(EMBR_EINVAL, "item %lld has no id (NULL)", (long long)i);
  size_t n = strlen(id);
  if (n == 0) return embr_error(EMBR_EINVAL, "item %lld has an empty id", (long long)i);
  if (n > MAX_EXT_ID) return embr_error(EMBR_EINVAL, "item %lld: id of %zu bytes, at most %d allowed", (long long)i, n, MAX_EXT_ID);
  for (size_t j = 0; j < n; j++)
    if ((unsigned char)id[j] < 0x20 || id[j] == 0x7f)
      return embr_error(EMBR_EINVAL, "item %lld: id '%.64s' contains a control character (byte %zu)", (long long)i, id, j);
  return 0;
}

typedef struct id_ref {
  const char *s;
  int64_t i;
} id_ref;

static int cmp_id_ref(const void *a, const void *b) {
  const id_ref *x = a, *y = b;
  int c = strcmp(x->s, y->s);
  return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* Ids unique within the batch (ids already stored are refused by the UNIQUE constraint). */
static int check_batch_unique(const char *const *ids, int64_t n) {
  id_ref *r = embr_alloc(sizeof *r * (size_t)n);
  if (!r) return embr_error(EMBR_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n; i++) r[i] = (id_ref){ids[i], i};
  qsort(r, (size_t)n, sizeof *r, cmp_id_ref);
  int rc = 0;
  for (int64_t i = 1; i < n && !rc; i++)
    if (!strcmp(r[i].s, r[i - 1].s))
      rc = embr_error(EMBR_EINVAL, "id '%.64s' appears twice in the batch (items %lld and %lld)", r[i].s,
                      (long long)r[i - 1].i, (long long)r[i].i);
  embr_free(r);
  return rc;
}

static const char *json_kind(const cJSON *j) {
  if (cJSON_IsArray(j)) return "an array";
  if (cJSON_IsString(j)) return "a string";
  if (cJSON_IsNumber(j)) return "a number";
  if (cJSON_IsBool(j)) return "a boolean";
  return "null";
}

static int check_metadata(const char *text, int64_t i, const char *id) {
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
  if (!j)
    return embr_error(EMBR_EINVAL, "item %lld ('%.64s'): metadata is not valid JSON (error at byte %lld)", (long long)i, id,
                      (long long)(end && end >= text ? end - text : 0));
  int ok = cJSON_IsObject(j);
  const char *kind = json_kind(j);
  cJSON_Delete(j);
  if (!ok) return embr_error(EMBR_EINVAL, "item %lld ('%.64s'): metadata must be a JSON object, got %s", (long long)i, id, kind);
  return 0;
}

static int check_batch(const embr_collection *c, int64_t n, const float *x, int64_t dim, int64_t ld,
                       const char *const *ids, const char *const *meta) {
  if (dim != c->dim) return embr_error(EMBR_EDIM, "vectors have dimension %lld, the collection %lld", (long long)dim, (long long)c->dim);
  if (n < 0 || !x || !ids || ld < dim) return embr_error(EMBR_EINVAL, "add: bad arguments (n %lld, ld %lld)", (long long)n, (long long)ld);
  for (int64_t i = 0; i < n; i++) {
    int rc = check_ext_id(ids[i], i);
    if (rc) return rc;
    for (int64_t j = 0; j < dim; j++)
      if (!isfinite(x[i * ld + j]))
        return embr_error(EMBR_EVALUE, "item %lld ('%.64s'): value %lld is %s", (long long)i, ids[i], (long long)j,
                          isnan(x[i * ld + j]) ? "NaN" : "infinite");
    if (meta && meta[i] && (rc = check_metadata(meta[i], i, ids[i]))) return rc;
  }
  return check_batch_unique(ids, n);
}

static int prepare_cached(embr_collection *c, sqlite3_stmt **st, const char *sql) {
  if (*st) {
    sqlite3_reset(*st);
    sqlite3_clear_bindings(*st);
    return 0;
  }
  int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
  return rc == SQLITE_OK ? 0 : embr__db_fail(c, rc, "preparing a query");
}

static int insert_one(embr_collection *c, int64_t i, const float *row, const char *id, const char *meta, float *tmp) {
  int rc = prepare_cached(c, &c->st_insert, "INSERT INTO items(ext_id, vector, metadata) VALUES (?1, ?2, ?3)");
  if (rc) return rc;
  sqlite3_bind_text(c->st_insert, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_blob(c->st_insert, 2, embr__vec_encode(c, row, tmp), (int)(c->dim * 4), SQLITE_STATIC);
  if (meta) sqlite3_bind_text(c->st_insert, 3, meta, -1, SQLITE_STATIC);
  int s = sqlite3_step(c->st_insert);
  sqlite3_reset(c->st_insert);
  if (s == SQLITE_DONE) return 0;
  if (s == SQLITE_CONSTRAINT_UNIQUE) return embr_error(EMBR_EINVAL, "id '%.64s' is already in the collection", id);
  if (s == SQLITE_CONSTRAINT_CHECK)
    return embr_error(EMBR_EINVAL, "item %lld ('%.64s'): metadata is not a JSON object SQLite accepts", (long long)i, id);
  return embr__db_fail(c, s, "inserting");
}

/* Inside BEGIN IMMEDIATE: brings the index up to date with other writers' commits (none, with
 * the writer lock, but it costs one query), then inserts. */
static int insert_batch(embr_collection *c, int64_t n, const float *x, int64_t ld, const char *const *ids,
                        const char *const *meta, int64_t *new_ids) {
  float *tmp = embr_alloc(sizeof(float) * (size_t)c->dim);
  int rc = tmp ? embr__sync(c) : embr_error(EMBR_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n && !rc; i++) {
    rc = insert_one(c, i, x + i * ld, ids[i], meta ? meta[i] : NULL, tmp);
    new_ids[i] = sqlite3_last_insert_rowid(c->db);
  }
  embr_free(tmp);
  return rc;
}

embr_status embr_collection_add(embr_collection *c, const float *vectors, int64_t n, int64_t dim, int64_t ld,
                                const char *const *ext_ids, const char *const *metadata_json) {
  if (!c->writable) return embr_error(EMBR_EUNSUPPORTED, "%s: opened read-only", c->dir);
  if (n == 0) return 0;
  int rc = check_batch(c, n, vectors, dim, ld, ext_ids, metadata_json);
  int64_t *new_ids = rc ? NULL : embr_alloc(sizeof(int64_t) * (size_t)n);
  if (!rc && !new_ids) rc = embr_error(EMBR_ENOMEM, "out of memory");
  if (!rc) rc = embr__db_begin(c, 1);
  if (rc) {
    embr_free(new_ids);
    return rc;
  }
  rc = insert_batch(c, n, vectors, ld, ext_ids, metadata_json, new_ids);
  if (rc) embr__db_rollback(c);
  else rc = embr__db_commit(c);
  if (rc) {
    embr_free(new_ids);
    return rc;
  }
  /* Durable from here on. The index follows; should that fail (memory), the batch stays
   * acknowledged and the index is rebuilt from the database before its next use. */
  if (embr_index_is_trained(c->ix)) {
    if (embr_index_add(c->ix, vectors, n, ld, new_ids, NULL)) c->need_rebuild = 1;
    else c->max_id = new_ids[n - 1];
  }
  embr_clear_error();
  embr_free(new_ids);
  c->unsaved += n;
  embr__maybe_autosave(c);
  return 0;
}

/* ---- delete ------------------------------------------------------------------------------------ */

static int delete_one(embr_collection *c, const char *id, int64_t *internal) {
  *internal = -1;
  int rc = prepare_cached(c, &c->st_delete, "DELETE FROM items WHERE ext_id = ?1 RETURNING id");
  if (rc) return rc;
  sqlite3_bind_text(c->st_delete, 1, id, -1, SQLITE_STATIC);
  int s;
  while ((s = sqlite3_step(c->st_delete)) == SQLITE_ROW) *internal = sqlite3_column_int64(c->st_delete, 0);
  sqlite3_reset(c->st_delete);
  if (s != SQLITE_DONE) return embr__db_fail(c, s, "deleting");
  if (*internal < 0) return 0;
  if ((rc = prepare_cached(c, &c->st_log, "INSERT INTO deleted(id) VALUES (?1)"))) return rc;
  sqlite3_bind_int64(c->st_log, 1, *internal);
  s = sqlite3_step(c->st_log);
  sqlite3_reset(c->st_log);
  return s == SQLITE_DONE ? 0 : embr__db_fail(c, s, "logging a delete");
}

embr_status embr_collection_delete(embr_collection *c, const char *const *ext_ids, int64_t n, int64_t *deleted) {
  if (deleted) *deleted = 0;
  if (!c->writable) return embr_error(EMBR_EUNSUPPORTED, "%s: opened read-only", c->dir);
  if (n < 0 || (n > 0 && !ext_ids)) return embr_error(EMBR_EINVAL, "delete: bad arguments");
  if (n == 0) return 0;
  int64_t *gone = embr_alloc(sizeof(int64_t) * (size_t)n), ngone = 0;
  int rc = gone ? embr__db_begin(c, 1) : embr_error(EMBR_ENOMEM, "out of memory");
  if (!rc) rc = embr__sync(c);
  for (int64_t i = 0; i < n && !rc; i++) {
    if (!ext_ids[i]) continue;
    rc = delete_one(c, ext_ids[i], &gone[ngone]);
    if (!rc && gone[ngone] >= 0) ngone++;
  }
  int64_t seq = sqlite3_last_insert_rowid(c->db);
  if (gone && rc) embr__db_rollback(c);
  else if (gone) rc = embr__db_commit(c);
  if (!rc && ngone) {
    int64_t removed;
    if (embr_index_remove(c->ix, gone, ngone, &removed)) c->need_rebuild = 1;
    c->del_seq = seq;
    embr_clear_error();
    c->unsaved += ngone;
    embr__maybe_autosave(c);
  }
  if (!rc && deleted) *deleted = ngone;
  embr_free(gone);
  return rc;
}

/* ---- get and info ------------------------------------------------------------------------------ */

static char *dup_text(const unsigned char *s, int n) {
  char *p = embr_alloc((size_t)n + 1);
  if (p) {
    memcpy(p, s, (size_t)n);
    p[n] = '\0';
  }
  return p;
}

embr_status embr_collection_get(embr_collection *c, const char *ext_id, float *vec_out, char **metadata_out) {
  if (metadata_out) *metadata_out = NULL;
  if (!ext_id) return embr_error(EMBR_EINVAL, "get: NULL id");
  int rc = prepare_cached(c, &c->st_by_ext, "SELECT id, vector, metadata FROM items WHERE ext_id = ?1");
  if (rc) return rc;
  sqlite3_stmt *st = c->st_by_ext;
  sqlite3_bind_text(st, 1, ext_id, -1, SQLITE_STATIC);
  int s = sqlite3_step(st);
  if (s == SQLITE_DONE) rc = embr_error(EMBR_ENOTFOUND, "no item with id '%.64s' in %s", ext_id, c->dir);
  else if (s != SQLITE_ROW) rc = embr__db_fail(c, s, "reading an item");
  if (!rc && vec_out)
    rc = embr__vec_decode(c, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1), sqlite3_column_int64(st, 0), vec_out);
  if (!rc && metadata_out && sqlite3_column_type(st, 2) != SQLITE_NULL) {
    *metadata_out = dup_text(sqlite3_column_text(st, 2), sqlite3_column_bytes(st, 2));
    if (!*metadata_out) rc = embr_error(EMBR_ENOMEM, "out of memory");
  }
  sqlite3_reset(st);
  return rc;
}

static int64_t file_bytes(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

embr_status embr_collection_info(embr_collection *c, embr_collection_stats *out) {
  memset(out, 0, sizeof *out);
  embr__marks m;
  int rc = embr__db_begin(c, 0);
  if (!rc) rc = embr__db_int(c, "SELECT count(*) FROM items", &out->count);
  if (!rc) rc = embr__db_int(c, "SELECT count(*) FROM deleted", &out->deletes_logged);
  if (!rc) rc = embr__db_marks(c, &m);
  if (rc) {
    embr__db_rollback(c);
    return rc;
  }
  if ((rc = embr__db_commit(c))) return rc;
  out->dim = c->dim;
  out->metric = c->metric;
  snprintf(out->index_spec, sizeof out->index_spec, "%s", c->spec);
  out->format_version = EMBR__COLLECTION_FORMAT;
  out->read_only = !c->writable;
  out->max_internal_id = m.seq_items;
  out->index_items = c->ix ? embr_index_size(c->ix) : 0;
  out->index_memory = c->ix ? embr_index_memory(c->ix) : 0;
  out->index_trained = c->ix ? embr_index_is_trained(c->ix) : 0;
  out->unsaved_changes = c->writable ? c->unsaved : 0;
  out->index_origin = c->origin;
  snprintf(out->index_note, sizeof out->index_note, "%s", c->note);
  size_t n = strlen(c->db_path) + 8;
  char *wal = embr_alloc(n);
  if (wal) snprintf(wal, n, "%s-wal", c->db_path);
  out->db_bytes = file_bytes(c->db_path) + (wal ? file_bytes(wal) : 0);
  embr_free(wal);
  out->index_file_bytes = file_bytes(c->index_path);
  return 0;
}

/* ---- compact ----------------------------------------------------------------------------------- */

/* Drops the delete log up to the saved index's mark: the checkpoint no longer needs it, and an
 * older checkpoint (del_seq below the floor) is then known to be unusable. */
static int forget_deletes(embr_collection *c) {
  int rc = embr__db_begin(c, 1);
  sqlite3_stmt *st = NULL;
  if (!rc) rc = embr__db_exec(c, "DELETE FROM deleted");
  if (!rc) rc = embr__db_prepare(c, "UPDATE meta SET value = ?1 WHERE key = 'del_floor'", &st);
  if (!rc) {
    sqlite3_bind_int64(st, 1, c->del_seq);
    int s = sqlite3_step(st);
    if (s != SQLITE_DONE) rc = embr__db_fail(c, s, "updating the parameters");
  }
  sqlite3_finalize(st);
  if (rc) embr__db_rollback(c);
  else rc = embr__db_commit(c);
  return rc;
}

embr_status embr_collection_compact(embr_collection *c) {
  if (!c->writable) return embr_error(EMBR_EUNSUPPORTED, "%s: opened read-only", c->dir);
  embr__marks m;
  int rc = embr__db_begin(c, 0);
  if (!rc) rc = embr__db_marks(c, &m);
  if (!rc) rc = embr__rebuild(c, &m, "rebuilt by compact");
  if (rc) embr__db_rollback(c);
  else rc = embr__db_commit(c);
  if (!rc) rc = embr__save_index(c);
  /* Without a new checkpoint the old one may still need the delete log: stop here. */
  if (rc == EMBR_ECHECKPOINT)
    return embr_error(rc, "%s; compact stopped before dropping the delete log and vacuuming", embr_last_error());
  if (!rc) rc = forget_deletes(c);
  /* VACUUM rewrites the file without the free pages; the checkpoint then empties the log. */
  if (!rc) rc = embr__db_exec(c, "VACUUM");
  if (!rc) rc = embr__db_exec(c, "PRAGMA wal_checkpoint(TRUNCATE)");
  return rc;
}
