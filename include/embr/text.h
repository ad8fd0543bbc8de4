/* embr text: reading a training corpus as a stream of words, and the word vocabulary.
 *
 * A corpus is a text file of words separated by white space (space, tab, CR, LF, VT, FF); a line
 * break ends a sentence. Words are byte strings (UTF-8 passes through untouched); a word longer
 * than EMBR_MAX_WORD_BYTES bytes is cut there, as word2vec does. The file is read in pieces, so a
 * corpus larger than memory works and a line may be of any length, with or without a final
 * newline.
 *
 * Thread-safety: a corpus reader, and a vocabulary being built, belong to one thread at a time;
 * a finalized vocabulary may be read (find, word, count) from any number of threads at once.
 * Errors: a missing file is EMBR_ENOTFOUND, an unreadable one or a directory EMBR_EIO. */
#ifndef EMBR_TEXT_H
#define EMBR_TEXT_H

#include "embr/core.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMBR_MAX_WORD_BYTES 100

/* ---- corpus reader ----------------------------------------------------------------------------- */
typedef struct embr_corpus embr_corpus;

/* Opens `path` for reading words from byte offset `start` up to `end` (end = -1: the end of the
 * file). When start > 0 the reader skips to the first word boundary at or after start, and it
 * stops after the word that straddles `end`, so consecutive ranges cover every word once. A file
 * that looks binary (NUL bytes, or mostly non-text bytes in its first 64 KiB) is refused with
 * EMBR_EFORMAT. *out is closed with embr_corpus_close (NULL is a no-op). */
EMBR_API embr_status embr_corpus_open(embr_corpus **out, const char *path, int64_t start, int64_t end);
EMBR_API void embr_corpus_close(embr_corpus *c);
/* Moves an open reader to another byte range, with the same boundary rules as open. */
EMBR_API embr_status embr_corpus_range(embr_corpus *c, int64_t start, int64_t end);

/* Reads the next word into buf (NUL-terminated, at most EMBR_MAX_WORD_BYTES bytes). Returns 1 for
 * a word, 0 at the end of the range, or a negative status on a read error. *newline is set to 1
 * when a line break came between the previous word and this one (a sentence boundary). */
EMBR_API int embr_corpus_next(embr_corpus *c, char buf[EMBR_MAX_WORD_BYTES + 1], int *newline);

/* File offset just past the last byte consumed (not a status). */
EMBR_API int64_t embr_corpus_tell(const embr_corpus *c);

/* Size of a file in bytes, or a negative status. */
EMBR_API int64_t embr_file_size(const char *path);

/* ---- vocabulary -------------------------------------------------------------------------------- */
typedef struct embr_vocab embr_vocab;

/* An empty vocabulary in *out (free with embr_vocab_free; NULL is a no-op). EMBR_ENOMEM. */
EMBR_API embr_status embr_vocab_create(embr_vocab **out);
EMBR_API void embr_vocab_free(embr_vocab *v);
/* Number of words. */
EMBR_API int64_t embr_vocab_size(const embr_vocab *v);
/* Index of a word, or -1. */
EMBR_API int64_t embr_vocab_find(const embr_vocab *v, const char *word);
/* Word i and its count, for 0 <= i < size (not checked). The string belongs to the vocabulary and
 * stays valid until the next add, finalize or free. */
EMBR_API const char *embr_vocab_word(const embr_vocab *v, int64_t i);
EMBR_API int64_t embr_vocab_count(const embr_vocab *v, int64_t i);
/* Sum of all counts. */
EMBR_API int64_t embr_vocab_total(const embr_vocab *v);

/* Adds `count` occurrences of a word (copied; inserted when new). An empty word is EMBR_EINVAL;
 * EMBR_ENOMEM. */
EMBR_API embr_status embr_vocab_add(embr_vocab *v, const char *word, int64_t count);

/* Drops words seen fewer than min_count times, sorts by count (descending, ties by byte order, so
 * the result does not depend on the input order) and keeps the first max_size (0 = all). */
EMBR_API embr_status embr_vocab_finalize(embr_vocab *v, int64_t min_count, int64_t max_size);

/* Counts every word of a corpus file, then finalizes, into *out (free with embr_vocab_free).
 * Reports progress in bytes read. Errors: those of the corpus reader, EMBR_EFORMAT (no words),
 * EMBR_EINVAL (no word reaches min_count), EMBR_ECANCELED, EMBR_ENOMEM. */
EMBR_API embr_status embr_vocab_build(embr_vocab **out, const char *corpus_path, int64_t min_count,
                                      int64_t max_size, const embr_progress *progress);

/* word2vec's vocabulary file: one "word count" per line. Save writes the finalized order; read
 * accepts any order, then finalizes with (min_count, max_size) into *out (free with
 * embr_vocab_free). read errors name the file and line: EMBR_EFORMAT (not "word count", a count
 * that is not a positive integer, an empty file), EMBR_EINVAL (no word reaches min_count). Save
 * is atomic (EMBR_EIO). */
EMBR_API embr_status embr_vocab_save(const embr_vocab *v, const char *path);
EMBR_API embr_status embr_vocab_read(embr_vocab **out, const char *path, int64_t min_count,
                                     int64_t max_size);

#ifdef __cplusplus
}
#endif
#endif
