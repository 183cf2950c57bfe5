#include "worker/data/dead_leaves.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "worker/data/random.h"

namespace peaknas::data {
namespace {

// Radius with density ∝ r^-3 on [r_min, r_max], by inverting the CDF:
// F(r) = (r_min^-2 - r^-2) / (r_min^-2 - r_max^-2).
double PowerLawRadius(Rng& rng, double r_min, double r_max) {
  const double a = 1.0 / (r_min * r_min), b = 1.0 / (r_max * r_max);
  return 1.0 / std::sqrt(a - rng.Uniform() * (a - b));
}

struct Disc {
  double cx, cy, radius;
  double color[3];
  int texture;  // 0 flat, 1 gradient, 2 stripes
  double dir_x, dir_y, amplitude, frequency, phase;
};

Disc RandomDisc(Rng& rng, int width, int height, double r_min, double r_max,
                double textured_fraction) {
  Disc d{};
  d.radius = PowerLawRadius(rng, r_min, r_max);
  const double margin = 0.1 * std::min(width, height);
  d.cx = rng.Uniform(-margin, width + margin);
  d.cy = rng.Uniform(-margin, height + margin);
  // Grey level with a bias towards mid-tones, plus a tint; natural colours are correlated.
  const double grey = 0.5 * (rng.Uniform() + rng.Uniform());
  const double tint = rng.Uniform(0.05, 0.3);
  for (double& c : d.color) c = std::clamp(grey + tint * rng.Uniform(-1.0, 1.0), 0.0, 1.0);
  d.texture = 0;
  if (rng.Uniform() < textured_fraction) d.texture = rng.Bernoulli() ? 1 : 2;
  const double angle = rng.Uniform(0.0, 2.0 * std::numbers::pi);
  d.dir_x = std::cos(angle);
  d.dir_y = std::sin(angle);
  d.amplitude = rng.Uniform(0.05, 0.25);
  d.frequency = 2.0 * std::numbers::pi / rng.Uniform(3.0, 16.0);  // period 3–16 px
  d.phase = rng.Uniform(0.0, 2.0 * std::numbers::pi);
  return d;
}

double TextureAt(const Disc& d, double x, double y) {
  const double along = (x - d.cx) * d.dir_x + (y - d.cy) * d.dir_y;
  switch (d.texture) {
    case 1:
      return d.amplitude * along / d.radius;  // in [-amplitude, amplitude]
    case 2:
      return d.amplitude * std::sin(d.frequency * along + d.phase);
    default:
      return 0.0;
  }
}

}  // namespace

Image DeadLeavesImage(int width, int height, std::uint64_t seed, const DeadLeavesOptions& options) {
  Rng rng(seed);
  const std::size_t n = static_cast<std::size_t>(width) * height;
  std::vector<float> color(n * 3, 0.0f);
  std::vector<float> alpha(n, 0.0f);  // accumulated coverage, front to back
  constexpr float kCovered = 0.999f;
  std::size_t uncovered = n;
  const double r_min = std::max(0.5, options.min_radius);
  const double r_max = std::max(r_min, options.max_radius_fraction * std::min(width, height));

  // Front to back: disc k lies behind discs 0..k-1, so it only paints what they left open.
  const std::size_t max_discs = options.max_discs > 0 ? static_cast<std::size_t>(options.max_discs)
                                                      : std::max<std::size_t>(50000, n);
  for (std::size_t k = 0; k < max_discs && uncovered > 0; ++k) {
    const Disc d = RandomDisc(rng, width, height, r_min, r_max, options.textured_fraction);
    const int x0 = std::max(0, static_cast<int>(std::floor(d.cx - d.radius - 1)));
    const int x1 = std::min(width - 1, static_cast<int>(std::ceil(d.cx + d.radius + 1)));
    const int y0 = std::max(0, static_cast<int>(std::floor(d.cy - d.radius - 1)));
    const int y1 = std::min(height - 1, static_cast<int>(std::ceil(d.cy + d.radius + 1)));
    for (int y = y0; y <= y1; ++y) {
      for (int x = x0; x <= x1; ++x) {
        const std::size_t p = static_cast<std::size_t>(y) * width + x;
        if (alpha[p] >= kCovered) continue;
        const double px = x + 0.5, py = y + 0.5;
        const double dist = std::hypot(px - d.cx, py - d.cy);
        // Anti-aliased edge: coverage falls from 1 to 0 over one pixel around the radius.
        const double a = std::clamp(d.radius - dist + 0.5, 0.0, 1.0);
        if (a <= 0.0) continue;
        const double weight = (1.0 - alpha[p]) * a;
        const double shade = TextureAt(d, px, py);
        for (int c = 0; c < 3; ++c) {
          color[p * 3 + c] += static_cast<float>(weight * std::clamp(d.color[c] + shade, 0.0, 1.0));
        }
        alpha[p] += static_cast<float>(weight);
        if (alpha[p] >= kCovered) --uncovered;
      }
    }
  }

  // Whatever is still open shows a grey background; then a mild illumination gradient.
  const double angle = rng.Uniform(0.0, 2.0 * std::numbers::pi);
  const double gx = std::cos(angle) * options.illumination / std::max(width, 1);
  const double gy = std::sin(angle) * options.illumination / std::max(height, 1);
  const double background = rng.Uniform(0.2, 0.8);
  Image image(width, height);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const std::size_t p = static_cast<std::size_t>(y) * width + x;
      const double light = 1.0 + gx * (x - width / 2.0) + gy * (y - height / 2.0);
      for (int c = 0; c < 3; ++c) {
        const double v = (color[p * 3 + c] + (1.0 - alpha[p]) * background) * light;
        image.rgb[p * 3 + c] =
            static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
      }
    }
  }
  return image;
}

}  // namespace peaknas::data
