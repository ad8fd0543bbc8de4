/* Keeping the ANN index in step with the database.
 *
 * The database is the truth; index.embr is a checkpoint of the in-memory index and index.state
 * says which database state it reflects: (max_id, del_seq) — every live row with id <= max_id,
 * minus the delete log up to del_seq — plus the size and CRC-32 of the index.embr it describes.
 * The two files are renamed into place one after the other (index first), so a crash between
 * the renames leaves a state naming the old file; the checksum then disagrees and the index is
 * rebuilt. A usable checkpoint is caught up: rows with id > max_id are added (ids only grow),
 * log entries after del_seq are removed. Anything doubtful — missing, damaged, from another
 * collection, ahead of the database, older than a compact — means a rebuild from the rows. */
#include "collection/collection_internal.h"

#include "core/fileio.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ---- index.state: 64 bytes, little-endian ------------------------------------------------------ */

enum { STATE_BYTES = 64, STATE_VERSION = 1 };
static const char STATE_MAGIC[8] = {'E', 'M', 'B', 'R', 'C', 'S', 'T', '1'};

typedef struct ckpt {
  int64_t epoch, max_id, del_seq;
  uint64_t file_size;
  uint32_t file_crc;
} ckpt;

static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static void state_encode(const ckpt *s, unsigned char *b) {
  memset(b, 0, STATE_BYTES);
  memcpy(b, STATE_MAGIC, 8);
  put64(b + 8, STATE_VERSION);
  put64(b + 16, (uint64_t)s->epoch);
  put64(b + 24, (uint64_t)s->max_id);
  put64(b + 32, (uint64_t)s->del_seq);
  put64(b + 40, s->file_size);
  put64(b + 48, s->file_crc);
  put64(b + 56, (uint32_t)crc32(0L, b, 56));
}

static int state_decode(const unsigned char *b, size_t len, ckpt *s) {
  if (len != STATE_BYTES || memcmp(b, STATE_MAGIC, 8) || get64(b + 8) != STATE_VERSION ||
      get64(b + 56) != (uint32_t)crc32(0L, b, 56))
    return -1;
  s->epoch = (int64_t)get64(b + 16);
  s->max_id = (int64_t)get64(b + 24);
  s->del_seq = (int64_t)get64(b + 32);
  s->file_size = get64(b + 40);
  s->file_crc = (uint32_t)get64(b + 48);
  return 0;
}

static uint32_t crc_of(const unsigned char *p, size_t len) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t o = 0; o < len; o += 1u << 30) {
    size_t n = len - o < (1u << 30) ? len - o : (1u << 30);
    crc = crc32(crc, p + o, (uInt)n);
  }
  return (uint32_t)crc;
}

/* ---- loading a checkpoint ---------------------------------------------------------------------- */

/* Records why a checkpoint is not usable; not an error (the index is rebuilt instead). */
static int reject(char *why, size_t cap, const char *reason) {
  snprintf(why, cap, "%s", reason);
  return 0;
}

/* Loads index.embr if index.state vouches for it and both fit the database; otherwise leaves
 * c->ix NULL and writes the reason to `why`. Only ENOMEM is an error. */
static int load_checkpoint(embr_collection *c, const embr__marks *m, char *why, size_t cap) {
  embr__filemap xf;
  ckpt s;
  unsigned char sb[STATE_BYTES];
  size_t slen = 0;
  /* A tiny read that never blocks: a FIFO or device put in its place is refused, not waited on. */
  int src = embr__file_read_small(c->state_path, sb, sizeof sb, &slen);
  if (src == EMBR_ENOTFOUND) return reject(why, cap, "no index checkpoint");
  if (src || state_decode(sb, slen, &s)) return reject(why, cap, "index.state is damaged");
  if (s.epoch != c->epoch) return reject(why, cap, "index.state belongs to another collection");
  if (s.max_id > m->seq_items || s.del_seq > m->seq_del)
    return reject(why, cap, "the index checkpoint is ahead of the database");
  if (s.del_seq < m->del_floor)
    return reject(why, cap, "the index checkpoint predates the last compact");
  int xrc = embr__filemap_open_regular(&xf, c->index_path, EMBR__READ_ANY);
  if (xrc == EMBR_ENOMEM) return xrc;
  if (xrc == EMBR_ENOTFOUND) return reject(why, cap, "index.embr is missing");
  if (xrc) return reject(why, cap, "index.embr cannot be read (not a regular file, or unreadable)");
  if (xf.len != s.file_size || crc_of(xf.data, xf.len) != s.file_crc) {
    embr__filemap_close(&xf);
    return reject(why, cap, "index.embr does not match index.state (damaged, or replaced)");
  }
  embr_index *ix = NULL;
  int rc = embr_index_load_mem(&ix, xf.data, xf.len, c->index_path, 0);
  embr__filemap_close(&xf);
  if (rc == EMBR_ENOMEM) return rc;
  if (rc) {
    snprintf(why, cap, "index.embr cannot be loaded: %s", embr_last_error());
    return 0;
  }
  if (embr_index_dim(ix) != c->dim || embr_index_metric(ix) != c->metric || strcmp(embr_index_spec(ix), c->spec)) {
    embr_index_free(ix);
    return reject(why, cap, "index.embr has other parameters than the collection");
  }
  c->ix = ix;
  c->max_id = embr_index_is_trained(ix) ? s.max_id : 0;
  c->del_seq = s.del_seq;
  return 0;
}

/* ---- catching up ------------------------------------------------------------------------------- */

typedef struct add_ctx {
  embr_collection *c;
  embr_index *ix;
  int64_t added;
} add_ctx;

static int add_rows(void *vctx, const int64_t *ids, const float *x, int64_t n) {
  add_ctx *a = vctx;
  int rc = embr_index_add(a->ix, x, n, a->c->dim, ids, NULL);
  if (!rc) a->added += n;
  return rc;
}

typedef struct sample_ctx {
  float *x;
  int64_t n, cap, dim;
} sample_ctx;

static int keep_rows(void *vctx, const int64_t *ids, const float *x, int64_t n) {
  sample_ctx *s = vctx;
  (void)ids;
  if (n > s->cap - s->n) n = s->cap - s->n;
  memcpy(s->x + s->n * s->dim, x, sizeof(float) * (size_t)(n * s->dim));
  s->n += n;
  return 0;
}

/* An IVF index learns its cells from the data: train on an even sample of at most 256 MB of
 * rows once the collection is big enough. Too few rows is not an error: the index stays empty
 * and searches are exact until a later attempt (at twice the size) succeeds. */
static int try_train(embr_collection *c, embr_index *ix) {
  int64_t count;
  int rc = embr__db_int(c, "SELECT count(*) FROM items", &count);
  if (rc || count == 0 || count < c->train_retry_at) return rc;
  sample_ctx s = {NULL, 0, (int64_t)(256u << 20) / (c->dim * 4), c->dim};
  if (s.cap > count) s.cap = count;
  if (s.cap < 1) s.cap = 1;
  int64_t step = (count + s.cap - 1) / s.cap;
  s.x = embr_alloc(sizeof(float) * (size_t)s.cap * (size_t)c->dim);
  if (!s.x) return embr_error(EMBR_ENOMEM, "out of memory for a training sample");
  rc = embr__db_rows(c, 0, step, keep_rows, &s);
  if (!rc) {
    rc = embr_index_train(ix, s.x, s.n, c->dim, NULL);
    if (rc && rc != EMBR_ENOMEM) {
      c->train_retry_at = count * 2;
      embr_clear_error();
      rc = 0;
    }
  }
  embr_free(s.x);
  return rc;
}

/* Removes what the delete log recorded after c->del_seq; returns how many were in the index. */
static int apply_deletes(embr_collection *c, int64_t *removed) {
  sqlite3_stmt *st;
  int rc = embr__db_prepare(c, "SELECT id FROM deleted WHERE seq > ?1", &st);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, c->del_seq);
  int64_t *ids = NULL, n = 0, cap = 0;
  int s = SQLITE_DONE;
  while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == cap) {
      int64_t *ni = realloc(ids, sizeof(int64_t) * (size_t)(cap = cap ? cap * 2 : 256));
      if (!ni) rc = embr_error(EMBR_ENOMEM, "out of memory");
      else ids = ni;
    }
    if (!rc) ids[n++] = sqlite3_column_int64(st, 0);
  }
  if (!rc && s != SQLITE_DONE) rc = embr__db_fail(c, s, "reading the delete log");
  sqlite3_finalize(st);
  *removed = 0;
  if (!rc && n) rc = embr_index_remove(c->ix, ids, n, removed);
  free(ids);
  return rc;
}

static int catch_up(embr_collection *c, const embr__marks *m, int64_t *changes) {
  int rc = 0;
  *changes = 0;
  if (!embr_index_is_trained(c->ix) && (rc = try_train(c, c->ix))) return rc;
  int64_t removed = 0;
  if (embr_index_is_trained(c->ix)) {
    add_ctx a = {c, c->ix, 0};
    /* Deletes first: a row both added and deleted since the checkpoint is simply not read. */
    rc = apply_deletes(c, &removed);
    if (!rc) rc = embr__db_rows(c, c->max_id, 1, add_rows, &a);
    if (rc) return rc;
    *changes = a.added + removed;
    c->max_id = m->seq_items;
  }
  c->del_seq = m->seq_del;
  return 0;
}

/* ---- rebuilding ------------------------------------------------------------------------------ */

static void set_note(embr_collection *c, embr_index_origin origin, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_note(embr_collection *c, embr_index_origin origin, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->note, sizeof c->note, fmt, ap);
  va_end(ap);
  c->origin = origin;
}

int embr__rebuild(embr_collection *c, const embr__marks *m, const char *why) {
  /* The old index goes first: peak memory is one index, not two. */
  embr_index_free(c->ix);
  c->ix = NULL;
  c->need_rebuild = 1;
  c->max_id = 0;
  c->del_seq = m->seq_del;
  c->train_retry_at = 0;
  embr_index *ix;
  int rc = embr_index_create(&ix, c->spec, c->dim, c->metric);
  if (rc) return rc;
  if (!embr_index_is_trained(ix)) rc = try_train(c, ix);
  add_ctx a = {c, ix, 0};
  if (!rc && embr_index_is_trained(ix)) rc = embr__db_rows(c, 0, 1, add_rows, &a);
  if (rc) {
    embr_index_free(ix);
    return rc;
  }
  c->ix = ix;
  c->need_rebuild = 0;
  if (embr_index_is_trained(ix)) c->max_id = m->seq_items;
  set_note(c, EMBR_INDEX_REBUILT, "%s", why);
  c->unsaved += a.added ? a.added : 1; /* a read-write handle saves the new index at close */
  return 0;
}

int embr__build_flat(embr_collection *c, embr_index **out) {
  int rc = embr_index_create(out, "flat", c->dim, c->metric);
  add_ctx a = {c, *out, 0};
  if (!rc) rc = embr__db_rows(c, 0, 1, add_rows, &a);
  if (rc) {
    embr_index_free(*out);
    *out = NULL;
  }
  return rc;
}

int embr__sync(embr_collection *c) {
  embr__marks m;
  int rc = embr__db_marks(c, &m);
  if (rc) return rc;
  const char *why = NULL;
  if (c->need_rebuild || !c->ix) why = "an earlier in-memory update failed";
  else if (c->del_seq < m.del_floor) why = "the collection was compacted since";
  else if (c->max_id > m.seq_items || c->del_seq > m.seq_del) why = "the index was ahead of the database";
  if (why) return embr__rebuild(c, &m, why);
  int64_t changes;
  rc = catch_up(c, &m, &changes);
  if (rc) {
    c->need_rebuild = 1;
    return rc;
  }
  c->unsaved += changes;
  return 0;
}

/* Defensive: a checkpoint that passed every check but disagrees on the count is not trusted. */
static int check_count(embr_collection *c, const embr__marks *m) {
  int64_t count;
  int rc = embr__db_int(c, "SELECT count(*) FROM items", &count);
  if (rc || !embr_index_is_trained(c->ix) || embr_index_size(c->ix) == count) return rc;
  char why[160];
  snprintf(why, sizeof why, "the index held %lld items, the database %lld", (long long)embr_index_size(c->ix),
           (long long)count);
  return embr__rebuild(c, m, why);
}

int embr__load_index(embr_collection *c) {
  embr__marks m;
  char why[200] = "";
  int rc = embr__db_marks(c, &m);
  if (!rc) rc = load_checkpoint(c, &m, why, sizeof why);
  if (rc) return rc;
  if (!c->ix) return embr__rebuild(c, &m, why);
  int64_t from_id = c->max_id, from_del = c->del_seq, changes = 0;
  rc = catch_up(c, &m, &changes);
  if (rc == EMBR_ENOMEM) return rc;
  if (rc) return embr__rebuild(c, &m, "catching the index checkpoint up failed");
  c->unsaved += changes;
  if (!embr_index_is_trained(c->ix))
    set_note(c, EMBR_INDEX_LOADED, "%s", "untrained until the collection is large enough; searches are exact");
  else if (from_id == m.seq_items && from_del == m.seq_del) set_note(c, EMBR_INDEX_LOADED, "%s", "");
  else
    set_note(c, EMBR_INDEX_CAUGHT_UP, "checkpoint at item %lld / delete %lld, database at %lld / %lld",
             (long long)from_id, (long long)from_del, (long long)m.seq_items, (long long)m.seq_del);
  return check_count(c, &m);
}

/* ---- saving ---------------------------------------------------------------------------------- */

static int write_state(embr_collection *c, const ckpt *s) {
  unsigned char b[STATE_BYTES];
  state_encode(s, b);
  embr__wfile w;
  int rc = embr__wfile_open(&w, c->state_path);
  if (rc) return rc;
  if ((rc = embr__wfile_write(&w, b, sizeof b))) {
    embr__wfile_abort(&w);
    return rc;
  }
  return embr__wfile_commit(&w);
}

/* Every change is committed to the database before the checkpoint is attempted, so a failure
 * here (full disk, a read-only file) loses nothing: it gets its own status, which front ends
 * report as a warning, not as a failed change (a retry of an add would then find its ids taken). */
static int checkpoint_failed(embr_collection *c) {
  return embr_error(EMBR_ECHECKPOINT,
                    "%s: the index checkpoint was not saved (%s); the data is committed, and the index "
                    "will be rebuilt from it at the next open",
                    c->dir, embr_last_error());
}

int embr__save_index(embr_collection *c) {
  if (!c->writable) return embr_error(EMBR_EUNSUPPORTED, "%s: opened read-only", c->dir);
  if (!c->ix || c->need_rebuild) return embr_error(EMBR_EINVAL, "%s: the index is not in step with the database", c->dir);
  /* index.embr first, then the state naming it: see the comment at the top. */
  int rc = embr_index_save(c->ix, c->index_path);
  embr__filemap fm;
  if (!rc) rc = embr__filemap_open_regular(&fm, c->index_path, EMBR__READ_ANY);
  if (rc) return checkpoint_failed(c);
  ckpt s = {c->epoch, c->max_id, c->del_seq, fm.len, crc_of(fm.data, fm.len)};
  embr__filemap_close(&fm);
  rc = write_state(c, &s);
  if (rc) return checkpoint_failed(c);
  c->unsaved = 0;
  return 0;
}

void embr__maybe_autosave(embr_collection *c) {
  if (!c->writable || c->autosave_min <= 0 || !c->ix || c->need_rebuild) return;
  double bound = c->autosave_frac * (double)embr_index_size(c->ix);
  if (c->unsaved < c->autosave_min || (double)c->unsaved < bound) return;
  /* The data is committed already; a failed checkpoint only means more catching up at the next
   * open, and close reports it if it keeps failing. */
  if (embr__save_index(c)) embr_clear_error();
}

void embr__remove_stale_temps(embr_collection *c) {
  DIR *d = opendir(c->dir);
  if (!d) return;
  struct dirent *e;
  size_t dl = strlen(c->dir);
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "index.embr.tmp.", 15) && strncmp(e->d_name, "index.state.tmp.", 16)) continue;
    size_t n = dl + strlen(e->d_name) + 2;
    char *p = malloc(n);
    if (!p) break;
    snprintf(p, n, "%s/%s", c->dir, e->d_name);
    unlink(p);
    free(p);
  }
  closedir(d);
}
