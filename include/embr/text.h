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
 * Errors: a missing file is EMBR_ENOTFOUND, an unreadable one or a directory EMBR_EIO.
 *
 * The second half is CLIP's tokenizer (byte-level BPE), see "CLIP tokenizer" below. */
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

/* ---- CLIP tokenizer (byte-level BPE) -------------------------------------------------------------
 * OpenAI CLIP's text tokenizer, id for id: `embr_bpe_encode(b, text, 77, ids, &n)` gives what
 * `clip.tokenize(text, context_length=77, truncate=True)` gives.
 *
 *     embr_bpe *b;
 *     if (embr_bpe_load("bpe_simple_vocab_16e6.txt.gz", 0, &b)) die(embr_last_error());
 *     int32_t ids[EMBR_BPE_CLIP_CONTEXT];
 *     int n;
 *     embr_bpe_encode(b, "a photo of a cat", EMBR_BPE_CLIP_CONTEXT, ids, &n);
 *     // ids = 49406 320 1125 539 320 2368 49407 0 0 ...; n = 7 (above 77 would mean cut)
 *     embr_bpe_free(b);
 *
 * The merges file is CLIP's bpe_simple_vocab_16e6.txt.gz (gzip, or the same text uncompressed):
 * a header line (it must contain "#version"), then one merge a line, two symbols separated by a
 * space. CLIP uses the first 48,894 merges (EMBR_BPE_CLIP_MERGES); the vocabulary is the 256 byte
 * characters, the same 256 with "</w>" (end of word) appended, one token per merge (the two
 * symbols joined), then <|startoftext|> and <|endoftext|>: 49,408 tokens, sot 49406, eot 49407.
 * With n merges the vocabulary has 512 + n + 2 tokens, sot = 512 + n, eot = 513 + n.
 *
 * Text goes through CLIP's cleaning (ftfy.fix_text's character fixes: NFC, curly quotes, Latin
 * ligatures, fullwidth forms, control characters, HTML entities; html.unescape twice; white space
 * collapsed and stripped; Python's lower case), its pre-tokenisation pattern (special tokens,
 * 's 't 're 've 'm 'll 'd, runs of letters, single number characters, runs of other characters),
 * then each piece, as UTF-8 bytes, is merged by rank. The literal text "<|startoftext|>" or
 * "<|endoftext|>" becomes the special id, as in CLIP. Not reproduced: ftfy's detection and repair
 * of mojibake (UTF-8 read as Latin-1 and the like), which is a statistical heuristic; such text
 * is tokenized as it stands. Invalid UTF-8 in `text` is read as U+FFFD, one per maximal invalid
 * subpart (Python's errors="replace"). Unicode data come from libutf8proc.
 *
 * Thread-safety: a loaded tokenizer is read-only: any number of threads may encode, tokenize and
 * decode with one tokenizer at once (no cache; each call allocates its own scratch).
 * Errors: EMBR_EINVAL (a NULL argument, n_merges out of range, context < 1, text longer than
 * EMBR_BPE_MAX_TEXT), EMBR_ENOMEM, the file errors of core (EMBR_ENOTFOUND, EMBR_EIO), and
 * EMBR_EFORMAT for a merges file that is not one: a corrupt or truncated gzip stream, more than
 * EMBR_BPE_MAX_BYTES compressed or inflated, not UTF-8, no header, a line that is not two symbols,
 * fewer than EMBR_BPE_CLIP_MERGES merges when the default is asked for. Messages name the file
 * (or the name given to _load_mem) and the line. */
typedef struct embr_bpe embr_bpe;

#define EMBR_BPE_CLIP_MERGES 48894      /* merges CLIP uses: 49152 - 256 - 2 */
#define EMBR_BPE_CLIP_VOCAB 49408       /* CLIP's vocabulary size */
#define EMBR_BPE_CLIP_CONTEXT 77        /* CLIP's context length */
#define EMBR_BPE_MAX_BYTES (16 << 20)   /* a merges file, compressed and inflated */
#define EMBR_BPE_MAX_TEXT (1 << 26)     /* bytes of text one call takes */

/* Reads a merges file (gzip or plain) and keeps its first n_merges merges (0: CLIP's 48,894;
 * otherwise 1 .. the number the file holds). *out is freed with embr_bpe_free (NULL is a no-op). */
EMBR_API embr_status embr_bpe_load(const char *path, int n_merges, embr_bpe **out);
/* The same from len bytes at buf (gzip or plain; the caller keeps buf), e.g. merges carried
 * inside a model file; `name` labels error messages (NULL: "merges"). */
EMBR_API embr_status embr_bpe_load_mem(const void *buf, size_t len, const char *name, int n_merges,
                                       embr_bpe **out);
/* A tokenizer with no merges: every byte is a token (vocabulary 514, sot 512, eot 513). For tests
 * and demos without CLIP's file. */
EMBR_API embr_status embr_bpe_create_bytes(embr_bpe **out);
EMBR_API void embr_bpe_free(embr_bpe *b);

EMBR_API int32_t embr_bpe_vocab_size(const embr_bpe *b);
EMBR_API int embr_bpe_n_merges(const embr_bpe *b);
EMBR_API int32_t embr_bpe_sot(const embr_bpe *b); /* <|startoftext|> */
EMBR_API int32_t embr_bpe_eot(const embr_bpe *b); /* <|endoftext|> */
/* Token `id` as CLIP's vocabulary spells it (byte characters, "</w>" at a word's end), owned by
 * the tokenizer; NULL when id is outside the vocabulary. */
EMBR_API const char *embr_bpe_token(const embr_bpe *b, int32_t id);

/* clip.tokenize(text, context, truncate=True) for one text: writes `context` ids: sot, the
 * text's tokens, eot, then zeros; when that is longer than `context`, the first `context` ids with
 * the last one set to eot. *n_tokens (may be NULL) receives the length before cutting (tokens + 2,
 * at most INT_MAX), so `*n_tokens > context` tells the text was cut. */
EMBR_API embr_status embr_bpe_encode(const embr_bpe *b, const char *text, int context, int32_t *ids,
                                     int *n_tokens);
/* The text's tokens alone (no sot/eot, no limit): *ids (allocated, free with embr_free; never NULL
 * on success) receives *n ids. */
EMBR_API embr_status embr_bpe_tokenize(const embr_bpe *b, const char *text, int32_t **ids, size_t *n);
/* Text of n ids as CLIP's decode gives it ("</w>" becomes a space, so words come back followed by
 * one; invalid UTF-8 becomes U+FFFD): *text is allocated, NUL-terminated, freed with embr_free.
 * EMBR_EINVAL for an id outside the vocabulary. */
EMBR_API embr_status embr_bpe_decode(const embr_bpe *b, const int32_t *ids, size_t n, char **text);

#ifdef __cplusplus
}
#endif
#endif
