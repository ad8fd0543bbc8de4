/* embr: embeddings and retrieval in C. Include this header for the whole public API. */
#ifndef EMBR_EMBR_H
#define EMBR_EMBR_H

#include "embr/captions.h"
#include "embr/collection.h"
#include "embr/core.h"
#include "embr/evaluate.h"
#include "embr/image.h"
#include "embr/index.h"
#include "embr/lines.h"
#include "embr/matrix.h"
#include "embr/model.h"
#include "embr/plot.h"
#include "embr/synth.h"
#include "embr/text.h"
#include "embr/tsne.h"
#include "embr/vec.h"
#include "embr/w2v.h"

#endif
