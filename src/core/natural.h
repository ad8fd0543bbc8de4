/* Natural text order, shared by plot legends (viz) and dataset class folders (image): people
 * number things "s1, s2, ..., s10", and expect that order rather than the bytewise "s1, s10, s2". */
#ifndef EMBR_CORE_NATURAL_H
#define EMBR_CORE_NATURAL_H

/* Byte order, except that runs of ASCII digits compare as numbers ("s2" < "s10"; leading zeros
 * are ignored, so "s02" and "s2" compare equal here — callers break such ties with strcmp). */
int embr__natural_cmp(const char *a, const char *b);

#endif
