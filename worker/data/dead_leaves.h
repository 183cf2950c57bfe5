// Procedural clean images from the dead-leaves model (Matheron 1968; Lee, Mumford and Huang,
// "Occlusion models for natural images", IJCV 2001): opaque discs with radii following a
// power law p(r) ∝ r^-3 between r_min and r_max, centred uniformly (also slightly outside
// the frame), stacked so that earlier discs occlude later ones, until the frame is covered.
// Their statistics (scale invariance, occlusion edges, flat regions) resemble natural
// images', which is why dead-leaves charts are used to measure texture loss in denoisers.
//
// To make denoising non-trivial beyond flat discs, each disc carries a colour correlated
// across channels (a random grey plus a smaller random tint), and a fraction of discs get a
// linear shading gradient or sinusoidal stripes; disc edges are anti-aliased over one pixel,
// and the whole image gets a mild illumination gradient.
//
// Thread-safety: a pure function of its arguments.
#ifndef PEAKNAS_WORKER_DATA_DEAD_LEAVES_H_
#define PEAKNAS_WORKER_DATA_DEAD_LEAVES_H_

#include <cstdint>

#include "worker/data/image.h"

namespace peaknas::data {

struct DeadLeavesOptions {
  double min_radius = 2.0;            // pixels
  double max_radius_fraction = 0.35;  // r_max = this × min(width, height)
  // Stop after this many discs even if the frame is not fully covered (the rest shows a
  // grey background); 0: max(50000, width · height), enough for any size.
  int max_discs = 0;
  double textured_fraction = 0.35;  // share of discs with a gradient or stripes
  double illumination = 0.15;       // amplitude of the global illumination gradient
};

// A width × height sRGB image (width, height >= 1), a function of (seed, options) only.
Image DeadLeavesImage(int width, int height, std::uint64_t seed,
                      const DeadLeavesOptions& options = {});

}  // namespace peaknas::data

#endif  // PEAKNAS_WORKER_DATA_DEAD_LEAVES_H_
