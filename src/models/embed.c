/* Embedding a dataset with a model: the loader's batches (inference geometry, no augmentation, in
 * order) through embr_model_embed, optionally L2-normalised. The CLI's embed, eval and plot
 * commands, the server and the Python package all need exactly this loop. */
#include "embr/model.h"

#include <math.h>
#include <string.h>

static void normalise_rows(float *x, int64_t n, int dim) {
  for (int64_t i = 0; i < n; i++) {
    double s = 0;
    for (int j = 0; j < dim; j++) s += (double)x[i * dim + j] * x[i * dim + j];
    float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    for (int j = 0; j < dim; j++) x[i * dim + j] *= inv;
  }
}

/* Runs the loader to the end, embedding each batch into out (and its classes into labels). */
static int embed_batches(embr_model *m, embr_loader *ld, int64_t n, int batch, embr_progress_state *ps, float *out,
                         int32_t *labels, int64_t *done) {
  int dim = embr_model_dim(m), rc = 0;
  while (!rc) {
    const float *x;
    const int32_t *lab;
    const int64_t *items;
    int count;
    if ((rc = embr_loader_next(ld, &x, &lab, &items, &count)) || count == 0) break;
    if (*done + count > n) return embr_error(EMBR_EINVAL, "embed: the loader gave more than the %lld images asked for", (long long)n);
    rc = embr_model_embed(m, x, count, batch, out + *done * dim);
    for (int i = 0; i < count && labels; i++) labels[*done + i] = lab[i];
    *done += count;
    if (!rc && embr_progress_update(ps, (uint64_t)*done, NULL, 0)) rc = embr_error(EMBR_ECANCELED, "embed: canceled");
  }
  return rc;
}

embr_status embr_model_embed_dataset(embr_model *m, const embr_dataset *ds, const int64_t *subset, int64_t n, int batch,
                                     int normalize, const embr_progress *progress, float *out, int32_t *labels) {
  if (!m || !ds || !out || batch < 1 || n < 0 || (!subset && n != embr_dataset_size(ds)))
    return embr_error(EMBR_EINVAL, "embed: need a model, a dataset, an output, batch >= 1 and n = the dataset's size "
                                   "when no subset is given");
  embr_loader_params lp = embr_loader_params_default();
  lp.spec = embr_model_input(m), lp.batch = batch, lp.shuffle = 0, lp.drop_last = 0;
  lp.subset = subset, lp.n_subset = subset ? n : 0;
  embr_loader *ld = NULL;
  int rc = embr_loader_create(ds, &lp, &ld);
  embr_progress_state ps;
  embr_progress_begin(&ps, progress, (uint64_t)n);
  int64_t done = 0;
  if (!rc) rc = embed_batches(m, ld, n, batch, &ps, out, labels, &done);
  if (!rc) embr_progress_update(&ps, (uint64_t)done, NULL, 1);
  embr_loader_free(ld);
  if (!rc && done != n) rc = embr_error(EMBR_EIO, "embed: the loader gave %lld of %lld images", (long long)done, (long long)n);
  if (!rc && normalize) normalise_rows(out, n, embr_model_dim(m));
  return rc;
}
