/* embr matrix: an owned float32 row-major matrix with optional row labels (words), and the file
 * formats users already have: .npy, .fvecs/.ivecs/.bvecs, word2vec text and binary, GloVe text,
 * CSV/TSV. Byte layouts are described in docs/formats.md.
 *
 * Every reader treats its input as hostile: sizes are checked against the file length before any
 * allocation, size arithmetic is overflow-checked, and values must be finite. A failure returns a
 * status and leaves a one-line message naming the file and the problem in embr_last_error().
 * Writers write to a temporary file beside the target, fsync it and rename it into place, so a
 * failed or interrupted write never leaves a partial file under the target name.
 *
 * Thread-safety: functions on different matrices and paths may run concurrently; a matrix being
 * written or freed must not be used by another thread. */
#ifndef EMBR_MATRIX_H
#define EMBR_MATRIX_H

#include "embr/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct embr_matrix {
  int64_t n;      /* rows */
  int64_t dim;    /* columns */
  int64_t ld;     /* leading dimension (floats between row starts), >= dim */
  float *data;    /* row i at data + i*ld; 64-byte aligned when allocated by embr */
  char **labels;  /* NULL, or n NUL-terminated strings (words of a word2vec/GloVe file); the
                     array and each string come from embr_alloc (embr_strdup) */
} embr_matrix;

/* An empty matrix: all zero. Safe to free. */
#define EMBR_MATRIX_INIT {0, 0, 0, NULL, NULL}

/* Allocates an n x dim matrix (ld = dim), zero-filled, without labels, into *m (overwritten, not
 * freed first; free with embr_matrix_free). n >= 0, dim >= 1, else EMBR_EINVAL; EMBR_ENOMEM. */
EMBR_API embr_status embr_matrix_alloc(embr_matrix *m, int64_t n, int64_t dim);
/* Allocates the label array (n NULL entries) of an allocated matrix; a no-op when it has one.
 * The caller fills entries with embr_strdup. EMBR_ENOMEM. */
EMBR_API embr_status embr_matrix_alloc_labels(embr_matrix *m);
/* Frees what embr allocated for m and zeroes it. NULL or an empty matrix is a no-op. */
EMBR_API void embr_matrix_free(embr_matrix *m);
/* Index of the first row whose label equals `label`, or -1 (also without labels). Linear scan. */
EMBR_API int64_t embr_matrix_find_label(const embr_matrix *m, const char *label);
/* First non-finite value in row order: returns 0 and sets *row and *col, or returns -1 when all
 * are finite (not a status). */
EMBR_API int embr_matrix_find_nonfinite(const embr_matrix *m, int64_t *row, int64_t *col);

/* ---- formats --------------------------------------------------------------------------------- */
typedef enum embr_format {
  EMBR_FORMAT_AUTO = 0, /* by extension (and, for .txt/.vec, by content) */
  EMBR_FORMAT_NPY,      /* NumPy .npy v1/v2/v3: float32 C order; float64, float16 converted on read */
  EMBR_FORMAT_FVECS,    /* per row: int32 dim, dim float32 */
  EMBR_FORMAT_IVECS,    /* per row: int32 dim, dim int32 (read as float when exactly representable) */
  EMBR_FORMAT_BVECS,    /* per row: int32 dim, dim uint8 */
  EMBR_FORMAT_W2V_TEXT, /* "n dim\n" then "word v1 ... vdim\n" */
  EMBR_FORMAT_W2V_BIN,  /* "n dim\n" then "word " + dim little-endian float32 (+ optional "\n") */
  EMBR_FORMAT_GLOVE,    /* "word v1 ... vdim\n", no header */
  EMBR_FORMAT_CSV,      /* comma-separated numbers, optional non-numeric header line */
  EMBR_FORMAT_TSV       /* tab-separated numbers, optional non-numeric header line */
} embr_format;

/* "auto", "npy", "fvecs", "ivecs", "bvecs", "w2v-text", "w2v-bin", "glove", "csv", "tsv". */
EMBR_API const char *embr_format_name(embr_format f);
/* Accepts (case-insensitively) auto, npy, fvecs, ivecs, bvecs, w2v-text|word2vec-text|text,
 * w2v-bin|word2vec|bin, glove, csv, tsv; anything else is EMBR_EINVAL. */
EMBR_API embr_status embr_format_parse(const char *name, embr_format *out);
/* The format for a path by its extension: .npy .fvecs .ivecs .bvecs .bin (w2v binary) .txt/.vec
 * (word2vec text) .glove .csv .tsv. EMBR_FORMAT_AUTO when the extension says nothing. */
EMBR_API embr_format embr_format_from_extension(const char *path);
/* The format EMBR_FORMAT_AUTO reads a file as, from its first bytes (head[0..len): 256 are plenty)
 * and its name: the .npy magic first, then the extension, .txt/.vec split into word2vec text and
 * GloVe by the first line. EMBR_FORMAT_AUTO when it cannot tell (or the file is a zip/.npz or
 * safetensors file, which readers refuse). */
EMBR_API embr_format embr_format_detect(const void *head, size_t len, const char *name);

/* Reads a matrix into *out, which is overwritten (not freed first) and left empty on failure; free
 * it with embr_matrix_free. With EMBR_FORMAT_AUTO the content decides first (the .npy magic makes
 * a file .npy whatever its name; a zip/.npz or safetensors file is EMBR_EUNSUPPORTED with advice),
 * then the extension; for .txt/.vec a first line of two integers means word2vec text, anything
 * else GloVe. NaN and Inf are refused (EMBR_EVALUE naming row and column). An empty file or a file
 * with no rows is EMBR_EFORMAT, except a .npy of shape (0, d): n = 0, dim = d, data = NULL. A
 * gzip-compressed text or .npy file is EMBR_EUNSUPPORTED. .npy in Fortran order or big-endian is
 * converted; a CSV/TSV index column as pandas' to_csv() writes it (empty first header cell, values
 * 0..n-1) is dropped. Word formats fill out->labels; the others leave it NULL.
 * In messages, rows and columns count from 0 (as in NumPy), lines of text files from 1. */
EMBR_API embr_status embr_matrix_read(const char *path, embr_format fmt, embr_matrix *out);

/* Reads from a memory buffer (fuzzing, tests); `name` is used in messages and, with
 * EMBR_FORMAT_AUTO, for its extension. The buffer need not be NUL-terminated. */
EMBR_API embr_status embr_matrix_read_mem(const void *buf, size_t len, const char *name, embr_format fmt,
                                          embr_matrix *out);

/* Writes a matrix atomically (temporary file, fsync, rename). With EMBR_FORMAT_AUTO the format
 * comes from the extension (.txt/.vec: word2vec text). Everything that can be refused is checked
 * before the file is created: at least one row (.npy alone may hold 0), finite values (readers refuse NaN/Inf), a label
 * per row without whitespace for the word formats (other formats ignore labels), integers in
 * 0..255 for bvecs and integers representable as int32 for ivecs. Text formats write values with
 * "%.9g", which reads back to the identical float32. */
EMBR_API embr_status embr_matrix_write(const char *path, embr_format fmt, const embr_matrix *m);

/* Reads a map (2-D/3-D coordinates, one row per point), as `embr tsne` writes them: with
 * EMBR_FORMAT_AUTO and a .tsv name, a last column of labels is recognised and its strings go to
 * out->labels (x <TAB> y [<TAB> z] <TAB> label; the header, if any, is a first line whose first
 * field is not a number). The last column is a label column when the header names it "label",
 * when the first data row's last field is not a number (words), or when it is an integer after a
 * decimal first field (class ids after coordinates: "12.5<TAB>-3.25<TAB>7"); rows need at least 3
 * fields. Anything else is read as embr_matrix_read reads it (labels NULL for numeric formats).
 * Same ownership and errors as embr_matrix_read. (embr_matrix_read also reads word labels of a TSV,
 * but never takes an integer column for labels.) */
EMBR_API embr_status embr_map_read(const char *path, embr_format fmt, embr_matrix *out);
/* The same from memory; `name` stands for the file (messages, extension). */
EMBR_API embr_status embr_map_read_mem(const void *buf, size_t len, const char *name, embr_format fmt,
                                       embr_matrix *out);

/* Reads sparse "i j value" rows (t-SNE's precomputed sparse distances) into an n x 3 matrix. A
 * .npy/.fvecs/.ivecs/.bvecs/.csv input (by fmt, or by extension with EMBR_FORMAT_AUTO) is read as
 * a matrix and must have 3 columns. Anything else is text: one row per line, three fields
 * separated by any run of spaces or tabs, i and j non-negative integers up to 2^24 - 1 (exact in
 * float32), the value a finite number; blank lines are skipped and a first line whose first field
 * is not a number is a header. Errors name the file, the line and the column (EMBR_EFORMAT,
 * EMBR_EVALUE, EMBR_EDIM, EMBR_ENOMEM, EMBR_EIO); ownership as embr_matrix_read. */
EMBR_API embr_status embr_triplets_read(const char *path, embr_format fmt, embr_matrix *out);
EMBR_API embr_status embr_triplets_read_mem(const void *buf, size_t len, const char *name, embr_format fmt,
                                            embr_matrix *out);

/* int32 matrices (.ivecs ground truth and result ids): n rows of dim values, row-major, no ld.
 * read: *data is allocated with embr_alloc and freed with embr_free; errors as embr_matrix_read.
 * write: atomic, EMBR_EINVAL for n < 1 or dim < 1, EMBR_EIO. */
EMBR_API embr_status embr_ivecs_read(const char *path, int32_t **data, int64_t *n, int64_t *dim);
EMBR_API embr_status embr_ivecs_write(const char *path, const int32_t *data, int64_t n, int64_t dim);
/* Writes search results (n rows of k int64 ids, -1 padding) as .ivecs. An id that int32 cannot
 * hold (above 2^31-1, or below -1) is refused with EMBR_EUNSUPPORTED naming the file, the row
 * (from 0) and the id, before anything is written: ids are never wrapped or replaced. Other
 * errors: EMBR_EINVAL (bad sizes), EMBR_ENOMEM, EMBR_EIO. Thread-safe. */
EMBR_API embr_status embr_ids_write_ivecs(const char *path, const int64_t *ids, int64_t n, int64_t k);

#ifdef __cplusplus
}
#endif
#endif
