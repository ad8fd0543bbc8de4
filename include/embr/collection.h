/* embr collection: a durable vector store. Vectors with the user's string ids and optional JSON
 * metadata live in an embedded SQLite database (the record of truth); an ANN index (any
 * embr_index spec) is kept in step in memory and checkpointed beside it. See docs/collections.md.
 *
 *   DIR/collection.db     SQLite (WAL, synchronous=FULL): parameters, items, delete log
 *   DIR/index.embr        the index, as embr_index_save writes it (a checkpoint, never the truth)
 *   DIR/index.state       which database state index.embr reflects (+ a checksum of it)
 *
 * Durability: embr_collection_add and embr_collection_delete return success only after the
 * SQLite COMMIT, which fsyncs the write-ahead log: an acknowledged change survives a crash of the
 * process or the machine. A batch is one transaction (all of it or none of it, for every reader).
 * The index file may lag behind, be missing or be damaged: opening compares it with the database
 * and catches it up (adds newer rows, removes deleted ones) or rebuilds it.
 *
 * Concurrency: one writer process at a time (a read-write open takes an exclusive lock on
 * DIR/collection.lock; a second one fails), any number of readers. Each process holds its own
 * in-memory index: a reader sees the database as it was at open, or at its last
 * embr_collection_refresh. A handle must not be used by two threads at once.
 *
 * External ids are non-empty strings of at most 1024 bytes without control characters; internal
 * ids (the SQLite rowid, what the index stores) are never reused, even after deletes.
 *
 * Errors common to every call: EMBR_EIO when SQLite or the file system fails (the message has
 * SQLite's), EMBR_ENOMEM; writes on a read-only handle are EMBR_EUNSUPPORTED. Inputs are only
 * read and never kept. */
#ifndef EMBR_COLLECTION_H
#define EMBR_COLLECTION_H

#include "embr/index.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct embr_collection embr_collection;

enum {
  EMBR_COLLECTION_RDONLY = 0, /* search, get, info, refresh; never writes a file */
  EMBR_COLLECTION_RDWR = 1    /* also add, delete, save, compact (one such process at a time) */
};

/* Creates DIR (its parent must exist) holding an empty collection of `dim`-dimensional vectors.
 * `index_spec` is an embr_index factory string ("flat", "hnsw:M=16,efc=200", ...; NULL =
 * "hnsw"), checked here. Refuses a DIR that already holds a collection. The database appears
 * atomically (built under a temporary name, then renamed). With `out` != NULL the collection is
 * also opened read-write (*out, close with embr_collection_close). Errors: EMBR_EINVAL (dim < 1,
 * a bad spec, DIR already a collection), EMBR_EIO. */
EMBR_API embr_status embr_collection_create(embr_collection **out, const char *dir, int64_t dim,
                                            embr_metric metric, const char *index_spec);

/* Opens a collection. A DIR without collection.db is EMBR_ENOTFOUND; a database of another
 * program EMBR_EFORMAT; one written by a newer embr EMBR_EUNSUPPORTED. May rebuild the in-memory
 * index from the database (see embr_collection_info's index_origin for what happened). flags:
 * EMBR_COLLECTION_RDONLY or EMBR_COLLECTION_RDWR (EMBR_EIO when another process holds the write
 * lock). *out is closed with embr_collection_close; NULL on failure. */
EMBR_API embr_status embr_collection_open(embr_collection **out, const char *dir, int flags);

/* Saves the index checkpoint when it changed (read-write handles) and frees the handle.
 * Returns the status of that save; the handle is freed whatever it says, and no acknowledged
 * data depends on it: a checkpoint that cannot be written (full disk, read-only file) is
 * EMBR_ECHECKPOINT -- everything is committed, the next open rebuilds or catches up the index.
 * NULL is a no-op. */
EMBR_API embr_status embr_collection_close(embr_collection *c);

/* Adds n items in one transaction. vectors: n rows of `dim` floats (must equal the collection's
 * dimension), row i at vectors + i*ld. ext_ids: n strings. metadata_json: NULL, or n entries
 * each NULL or a JSON object's text (stored as given). Everything is checked before anything is
 * written: the dimension, finite values, ids (format, unique in the batch, absent from the
 * collection) and metadata (valid JSON objects); any failure refuses the whole batch with a
 * message naming the item. Returns after the COMMIT is durable. Should updating the in-memory
 * index fail after that (memory), the batch stays stored and acknowledged, and the index is
 * rebuilt from the database before its next use. */
EMBR_API embr_status embr_collection_add(embr_collection *c, const float *vectors, int64_t n, int64_t dim,
                                         int64_t ld, const char *const *ext_ids,
                                         const char *const *metadata_json);

/* Deletes the n items with these ids (one transaction, durable on return); ids not present are
 * skipped. *deleted (optional) receives the number removed. */
EMBR_API embr_status embr_collection_delete(embr_collection *c, const char *const *ext_ids, int64_t n,
                                            int64_t *deleted);

/* Looks an item up: vec_out (optional) receives its dim floats exactly as added; *metadata_out
 * (optional) a copy of its metadata text or NULL when it has none (free with embr_free). An
 * unknown id is EMBR_ENOTFOUND. */
EMBR_API embr_status embr_collection_get(embr_collection *c, const char *ext_id, float *vec_out,
                                         char **metadata_out);

typedef struct embr_collection_search_params {
  int ef;            /* HNSW candidate list (0 = the index's default) */
  int nprobe;        /* IVF cells visited (0 = the index's default) */
  int n_threads;     /* 0 = all cores */
  int with_metadata; /* also return each hit's metadata */
} embr_collection_search_params;

EMBR_API embr_collection_search_params embr_collection_search_params_default(void); /* all 0 */

/* Search results: nq x k, best first, padded with (worst distance, NULL id) when fewer match. */
typedef struct embr_collection_hits {
  int64_t nq;
  int k;
  float *dist;     /* nq*k distances (metric semantics of embr/vec.h) */
  int64_t *ids;    /* nq*k internal ids, -1 for padding */
  char **ext_ids;  /* nq*k external ids, NULL for padding */
  char **metadata; /* nq*k metadata texts (NULL entries: none) when asked for, else NULL */
} embr_collection_hits;

/* Frees what a search stored in *h and zeroes it; an all-zero struct is a no-op. */
EMBR_API void embr_collection_hits_free(embr_collection_hits *h);

/* The k nearest items of each of nq queries (dim floats each, leading dimension ldq) among those
 * the filter admits. filter: NULL or an expression of the filter language, e.g.
 *   genre = "jazz" and (year >= 1990 or live = true) and label not in ["x", "y"]
 * (see docs/collections.md); a malformed one is EMBR_EINVAL with the column of the problem. A
 * query dimension other than the collection's is EMBR_EDIM; k < 1 or bad sizes EMBR_EINVAL.
 * *out is overwritten (free with embr_collection_hits_free; left empty on failure). p may be
 * NULL (defaults). */
EMBR_API embr_status embr_collection_search(embr_collection *c, const float *q, int64_t nq, int64_t dim,
                                            int64_t ldq, int k, const char *filter,
                                            const embr_collection_search_params *p,
                                            embr_collection_hits *out);

/* Checks a filter expression without a collection (EMBR_EINVAL with the column of the problem). */
EMBR_API embr_status embr_collection_filter_check(const char *filter);

/* How the in-memory index came to be when the handle was opened (or last refreshed). */
typedef enum embr_index_origin {
  EMBR_INDEX_LOADED = 0,    /* index.embr matched the database exactly */
  EMBR_INDEX_CAUGHT_UP = 1, /* loaded, then the newer rows and deletes applied */
  EMBR_INDEX_REBUILT = 2    /* built from the database (index_note says why) */
} embr_index_origin;

typedef struct embr_collection_stats {
  int64_t dim;
  embr_metric metric;
  char index_spec[256];  /* canonical spec of the index */
  int format_version;
  int read_only;
  int64_t count;             /* live items */
  int64_t max_internal_id;   /* largest internal id ever assigned (0 when none) */
  int64_t deletes_logged;    /* deletes since the last compact */
  int64_t index_items;       /* items in the in-memory index */
  int64_t index_memory;      /* bytes it holds */
  int index_trained;         /* 0 while an IVF index waits for enough vectors (search is exact) */
  int64_t unsaved_changes;   /* changes not yet in index.embr (read-write handles) */
  embr_index_origin index_origin;
  char index_note[256];      /* why it was rebuilt or caught up; empty when loaded */
  int64_t db_bytes;          /* collection.db + its write-ahead log */
  int64_t index_file_bytes;  /* index.embr, 0 when missing */
} embr_collection_stats;

/* Fills *out (caller-owned) with the handle's view of the collection. */
EMBR_API embr_status embr_collection_info(embr_collection *c, embr_collection_stats *out);

/* Writes the index checkpoint (index.embr, then index.state) now. Read-write handles only.
 * EMBR_ECHECKPOINT when the files cannot be written (the data stays committed). */
EMBR_API embr_status embr_collection_save(embr_collection *c);

/* The handle saves its index by itself once the changes since the last save reach
 * max(min_changes, fraction * items): the bound on what the next open has to catch up from the
 * database. Defaults 10000 and 0.1; min_changes 0 turns automatic saving off (close still saves). */
EMBR_API void embr_collection_set_autosave(embr_collection *c, int64_t min_changes, double fraction);

/* Brings the in-memory index of a long-lived handle up to date with the database: applies rows
 * added and deleted (by another process) since it was opened or last refreshed. */
EMBR_API embr_status embr_collection_refresh(embr_collection *c);

/* Rebuilds the index from the database (dropping the slots deleted items still hold in HNSW),
 * saves it, forgets the delete log and VACUUMs the database. Read-write handles only.
 * EMBR_ECHECKPOINT when the checkpoint cannot be written: the data is intact, the delete log
 * kept and the database not vacuumed (run it again when there is room). */
EMBR_API embr_status embr_collection_compact(embr_collection *c);

#ifdef __cplusplus
}
#endif
#endif
