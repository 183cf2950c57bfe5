#include "worker/streamed.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "search/tiling.h"

namespace peaknas::worker {
namespace {

using Clock = std::chrono::steady_clock;
// A row of width x 3 samples in a RowPool's arena.
using Row = std::uint16_t*;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A queue of rows between two stages. Push blocks while `capacity` rows wait; Pop blocks while
// none does. Close ends it: Push then fails, and Pop drains what is left and then returns none.
class RowQueue {
 public:
  explicit RowQueue(std::size_t capacity) : capacity_(capacity) {}

  bool Push(Row row) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_ || rows_.size() < capacity_; });
    if (closed_) return false;
    rows_.push_back(row);
    cv_.notify_all();
    return true;
  }

  std::optional<Row> Pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !rows_.empty(); });
    if (rows_.empty()) return std::nullopt;
    Row row = rows_.front();
    rows_.pop_front();
    cv_.notify_all();
    return row;
  }

  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  const std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Row> rows_;
  bool closed_ = false;
};

// The rows a stage hands out and takes back, in one arena sized for the most that are ever in
// flight (StreamBufferBytes): they never touch the heap, so the process holds exactly the
// rows it has used, whatever the heap's fragmentation, and no row is allocated per image row.
// Pages of the arena are resident once first written. Should more be asked for than the arena
// holds, rows are allocated on their own and counted (extra_rows).
class RowPool {
 public:
  RowPool(std::size_t samples, std::size_t capacity)
      : samples_(samples), arena_(new std::uint16_t[samples * capacity]) {
    free_.reserve(capacity);
    for (std::size_t i = capacity; i-- > 0;) free_.push_back(arena_.get() + i * samples);
  }
  Row Get() {
    std::lock_guard lock(mu_);
    if (!free_.empty()) {
      Row row = free_.back();
      free_.pop_back();
      return row;
    }
    extra_.emplace_back(new std::uint16_t[samples_]);
    return extra_.back().get();
  }
  void Put(Row row) {
    std::lock_guard lock(mu_);
    free_.push_back(row);
  }
  int extra_rows() {
    std::lock_guard lock(mu_);
    return static_cast<int>(extra_.size());
  }

 private:
  const std::size_t samples_;
  const std::unique_ptr<std::uint16_t[]> arena_;  // not initialized: untouched until written
  std::mutex mu_;
  std::vector<Row> free_;                                // guarded by mu_
  std::vector<std::unique_ptr<std::uint16_t[]>> extra_;  // guarded by mu_
};

// A stage's first error, read once its thread has ended.
struct StageStatus {
  std::mutex mu;
  Status status;
  void Set(Status s) {
    std::lock_guard lock(mu);
    if (status.ok()) status = std::move(s);
  }
  Status Get() {
    std::lock_guard lock(mu);
    return status;
  }
};

std::uint16_t Quantize(float x, float max_value) {
  const float v = x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f;  // NaN -> 0
  return static_cast<std::uint16_t>(std::nearbyint(v * max_value));
}

// Input: one window's rows, the reader's queue (a tile row) and the row it decodes. Output: one
// tile row being filled, the writer's queue and the row it encodes.
std::int64_t InputRows(const TiledOptions& o) { return (o.tile + 2 * o.overlap) + o.tile + 1; }
std::int64_t OutputRows(const TiledOptions& o) { return 2 * std::int64_t{o.tile} + 1; }

}  // namespace

std::int64_t StreamBufferBytes(int width, const TiledOptions& options, bool device_is_cpu) {
  const std::int64_t row_bytes = std::int64_t{width} * 3 * 2;
  const std::int64_t tile = options.tile, overlap = options.overlap;
  const std::int64_t input_rows = InputRows(options);
  const std::int64_t output_rows = OutputRows(options);
  const std::int64_t window = tile + 2 * overlap;
  const std::int64_t host_copy = device_is_cpu ? 0 : 3 * window * window * 4;
  return (input_rows + output_rows) * row_bytes + host_copy;
}

StatusOr<StreamStats> DenoiseStream(
    const std::function<torch::Tensor(const torch::Tensor&)>& forward, data::RasterReader& reader,
    data::RasterWriter& writer, const TiledOptions& options, const torch::Device& device,
    const TileProgress& progress) {
  PEAKNAS_RETURN_IF_ERROR(CheckTiledOptions(options));
  const int m = options.multiple;
  const int width = reader.info().width, height = reader.info().height;
  if (writer.info().width != width || writer.info().height != height) {
    return Status::InvalidArgument("out: the writer's size differs from the image's");
  }
  const int tile = options.tile;
  const int padded_w = (width + m - 1) / m * m, padded_h = (height + m - 1) / m * m;
  const std::vector<search::TileSpan> tile_rows =
      search::TileSpans(padded_h, tile, options.overlap);
  const std::vector<search::TileSpan> tile_cols =
      search::TileSpans(padded_w, tile, options.overlap);
  const int tiles = static_cast<int>(tile_rows.size() * tile_cols.size());
  const float in_scale = 1.0f / static_cast<float>(reader.info().max_value());
  const float out_max = static_cast<float>(writer.info().max_value());
  const std::size_t samples = static_cast<std::size_t>(width) * 3;

  StreamStats stats;
  const auto start = Clock::now();
  RowQueue decoded(static_cast<std::size_t>(tile));
  RowQueue encoded(static_cast<std::size_t>(tile));
  StageStatus read_status, write_status;
  RowPool input_rows(samples, static_cast<std::size_t>(InputRows(options)));
  RowPool output_rows(samples, static_cast<std::size_t>(OutputRows(options)));
  std::thread read_thread([&] {
    for (int y = 0; y < height; ++y) {
      Row row = input_rows.Get();
      Status s = reader.ReadRows(1, row);
      if (!s.ok()) {
        read_status.Set(std::move(s));
        break;
      }
      if (!decoded.Push(std::move(row))) break;
    }
    decoded.Close();
  });
  std::thread write_thread([&] {
    while (std::optional<Row> row = encoded.Pop()) {
      Status s = writer.WriteRows(1, *row);
      if (!s.ok()) {
        write_status.Set(std::move(s));
        encoded.Close();
        return;
      }
      output_rows.Put(*row);
    }
  });

  // The compute stage. Rows [first_row, first_row + rows.size()) of the image are held.
  Status status;
  std::deque<Row> rows;
  int first_row = 0;
  try {
    torch::NoGradGuard no_grad;
    for (const search::TileSpan& r : tile_rows) {
      if (!status.ok()) break;
      const int y0 = r.begin, y1 = r.end, wy0 = r.window_begin, wy1 = r.window_end;
      // Rows past the image repeat its last row; y0 < height since padding is < m <= tile.
      const int needed_end = std::min(wy1, height);
      // The rows above this window are done with: back to the reader before it needs them.
      while (first_row < wy0 && !rows.empty()) {
        input_rows.Put(rows.front());
        rows.pop_front();
        ++first_row;
      }
      auto wait_start = Clock::now();
      while (first_row + static_cast<int>(rows.size()) < needed_end) {
        std::optional<Row> row = decoded.Pop();
        if (!row) {
          status = read_status.Get();
          if (status.ok()) status = Status::Internal("the reader stopped early");
          break;
        }
        rows.push_back(*row);
      }
      stats.read_wait_seconds += Since(wait_start);
      if (!status.ok()) break;
      const int out_rows = std::min(y1, height) - y0;
      std::vector<Row> band;
      for (int y = 0; y < out_rows; ++y) band.push_back(output_rows.Get());
      for (const search::TileSpan& c : tile_cols) {
        const int x0 = c.begin, x1 = c.end, wx0 = c.window_begin, wx1 = c.window_end;
        const int wh = wy1 - wy0, ww = wx1 - wx0;
        // Channel c of pixel (y, x) is at y * row + x * pixel + c * plane: planes for the
        // contiguous layout, interleaved samples (as the rows hold them) for channels-last.
        const bool interleaved = options.layout == torch::MemoryFormat::ChannelsLast;
        torch::Tensor window = torch::empty(
            {1, 3, wh, ww}, torch::TensorOptions(torch::kFloat32).memory_format(options.layout));
        float* w_data = window.data_ptr<float>();
        const std::size_t plane = static_cast<std::size_t>(wh) * ww;
        const std::size_t w_pixel = interleaved ? 3 : 1, w_plane = interleaved ? 1 : plane;
        for (int y = 0; y < wh; ++y) {
          const std::uint16_t* src =
              rows[static_cast<std::size_t>(std::min(wy0 + y, height - 1) - first_row)];
          float* dst = w_data + static_cast<std::size_t>(y) * ww * w_pixel;
          for (int x = 0; x < ww; ++x) {
            const std::uint16_t* p =
                src + static_cast<std::size_t>(std::min(wx0 + x, width - 1)) * 3;
            float* d = dst + x * w_pixel;
            d[0] = p[0] * in_scale;
            d[w_plane] = p[1] * in_scale;
            d[2 * w_plane] = p[2] * in_scale;
          }
        }
        const auto network_start = Clock::now();
        torch::Tensor out = forward(device.is_cpu() ? window : window.to(device));
        window = torch::Tensor();
        if (out.dim() != 4 || out.size(0) != 1 || out.size(1) != 3 || out.size(2) != wh ||
            out.size(3) != ww) {
          throw std::runtime_error("the network gave " + c10::str(out.sizes()) +
                                   " for a window of " + c10::str(c10::IntArrayRef{1, 3, wh, ww}));
        }
        // Read in the layout the network answered in when it is one of the two dense ones.
        out = out.to(torch::kCPU, torch::kFloat32);
        const bool out_interleaved =
            !out.is_contiguous() && out.is_contiguous(torch::MemoryFormat::ChannelsLast);
        if (!out_interleaved) out = out.contiguous();
        stats.network_seconds += Since(network_start);
        const std::size_t o_pixel = out_interleaved ? 3 : 1, o_plane = out_interleaved ? 1 : plane;
        const float* o = out.data_ptr<float>();
        const int keep_w = std::min(x1, width) - x0;
        for (int y = 0; y < out_rows; ++y) {
          std::uint16_t* dst = band[static_cast<std::size_t>(y)] + std::size_t{3} * x0;
          const float* src =
              o + (static_cast<std::size_t>(y0 - wy0 + y) * ww + (x0 - wx0)) * o_pixel;
          for (int x = 0; x < keep_w; ++x) {
            const float* px = src + x * o_pixel;
            dst[3 * x] = Quantize(px[0], out_max);
            dst[3 * x + 1] = Quantize(px[o_plane], out_max);
            dst[3 * x + 2] = Quantize(px[2 * o_plane], out_max);
          }
        }
        ++stats.tiles;
        if (progress) progress(stats.tiles, tiles);
      }
      wait_start = Clock::now();
      for (Row row : band) {
        if (!encoded.Push(row)) {
          status = write_status.Get();
          if (status.ok()) status = Status::Internal("the writer stopped early");
          break;
        }
      }
      stats.write_wait_seconds += Since(wait_start);
    }
  } catch (const std::exception& e) {
    status = Status::Internal(std::string("inference failed: ") + e.what());
  }
  decoded.Close();
  encoded.Close();
  read_thread.join();
  write_thread.join();
  if (!status.ok()) return status;
  PEAKNAS_RETURN_IF_ERROR(read_status.Get());
  PEAKNAS_RETURN_IF_ERROR(write_status.Get());
  PEAKNAS_RETURN_IF_ERROR(writer.Finish());
  stats.seconds = Since(start);
  stats.extra_rows = input_rows.extra_rows() + output_rows.extra_rows();
  return stats;
}

}  // namespace peaknas::worker
