/* DINO's multi-crop augmentation (DataAugmentationDINO). Placeholder: the parameters are real, the
 * augmentation itself lands with "daug: multicrop ready". */
#include "image/image_internal.h"

#include <string.h>

embr_multicrop_params embr_multicrop_params_dino(int global_size, int local_size, int n_local) {
  embr_multicrop_params p;
  memset(&p, 0, sizeof p);
  p.n_global = 2;
  p.n_local = n_local;
  p.global_size = global_size;
  p.local_size = local_size;
  p.global_scale[0] = 0.4f, p.global_scale[1] = 1.0f;
  p.local_scale[0] = 0.05f, p.local_scale[1] = 0.4f;
  p.channels = 3;
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  memcpy(p.mean, mean, sizeof mean);
  memcpy(p.std, std, sizeof std);
  p.ratio[0] = 3.0f / 4.0f, p.ratio[1] = 4.0f / 3.0f;
  p.resize = EMBR_RESIZE_BICUBIC;
  p.alpha = EMBR_ALPHA_WHITE;
  p.flip_p = 0.5f;
  p.jitter_p = 0.8f;
  p.brightness = 0.4f, p.contrast = 0.4f, p.saturation = 0.2f, p.hue = 0.1f;
  p.grayscale_p = 0.2f;
  p.blur_p[0] = 1.0f, p.blur_p[1] = 0.1f, p.blur_p[2] = 0.5f;
  p.blur_sigma[0] = 0.1f, p.blur_sigma[1] = 2.0f;
  p.solarize_p[0] = 0.0f, p.solarize_p[1] = 0.2f, p.solarize_p[2] = 0.0f;
  p.solarize_threshold = 128;
  return p;
}

embr_status embr_multicrop_params_check(const embr_multicrop_params *p) {
  (void)p;
  return embr_error(EMBR_EUNSUPPORTED, "multicrop: not implemented yet");
}

embr_status embr_multicrop(const embr_image *im, const embr_multicrop_params *p, embr_rng *rng, float *global,
                           float *local) {
  (void)im, (void)p, (void)rng, (void)global, (void)local;
  return embr_error(EMBR_EUNSUPPORTED, "multicrop: not implemented yet");
}

embr_status embr_loader_next_multicrop(embr_loader *ld, const float **global, const float **local,
                                       const int32_t **labels, const int64_t **items, int *count) {
  (void)ld, (void)global, (void)local, (void)labels, (void)items, (void)count;
  return embr_error(EMBR_EUNSUPPORTED, "multicrop loader: not implemented yet");
}
