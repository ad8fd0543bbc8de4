/* DINO's projection head: see dino.h. */
#include <stdio.h>
#include <string.h>

#include "models/dino.h"

int embr__dino_head_make(nn_params *P, dino_head *h, const char *prefix, int in, int hidden, int bottleneck, int out) {
  if (in < 1 || hidden < 1 || bottleneck < 1 || out < 1)
    return embr_error(EMBR_EINVAL, "DINO head sizes must be positive (in %d, hidden %d, bottleneck %d, out %d)", in,
                      hidden, bottleneck, out);
  *h = (dino_head){.in = in, .hidden = hidden, .bottleneck = bottleneck, .out = out};
  int dims[4] = {in, hidden, hidden, bottleneck}, rc = 0;
  for (int i = 0; i < 3 && !rc; i++) {
    char w[128], b[128];
    snprintf(w, sizeof w, "%s.mlp.%d.weight", prefix, 2 * i); /* nn.Sequential: GELUs at 1 and 3 */
    snprintf(b, sizeof b, "%s.mlp.%d.bias", prefix, 2 * i);
    rc = embr__nn_dense_make(P, &h->mlp[i], w, b, dims[i], dims[i + 1], 0, 0.02f);
  }
  char l[128];
  snprintf(l, sizeof l, "%s.last_layer", prefix);
  return rc ? rc : embr__nn_wnlin_make(P, &h->last, l, bottleneck, out);
}

nn_t *embr__dino_head_forward(nn_ctx *ctx, const dino_head *h, nn_t *x) {
  for (int i = 0; i < 3; i++) {
    x = embr__nn_dense_f(ctx, x, &h->mlp[i]);
    if (i < 2) x = embr__nn_gelu(ctx, x);
  }
  return embr__nn_wnlin_f(ctx, embr__nn_l2norm(ctx, x), &h->last);
}

int embr__dino_is_last_layer(const char *name) { return strstr(name, "last_layer") != NULL; }
