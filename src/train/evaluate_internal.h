/* Shared by the evaluation protocols of src/train (evaluate.c, retrieval.c, zeroshot.c): the one
 * check of an embeddings argument, so every protocol refuses the same inputs the same way. */
#ifndef EMBR_TRAIN_EVALUATE_INTERNAL_H
#define EMBR_TRAIN_EVALUATE_INTERNAL_H

#include <stdint.h>

/* n x dim rows at emb (row i at emb + i*ld): non-NULL, n >= 1, dim >= 1, ld >= dim, every value
 * finite. Errors name `fn` (the public function): EMBR_EINVAL, EMBR_EVALUE, EMBR_ENOMEM. */
int embr__eval_check_matrix(const char *fn, const float *emb, int64_t n, int64_t dim, int64_t ld);

#endif
