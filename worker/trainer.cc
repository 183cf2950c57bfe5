#include "worker/trainer.h"

#include <chrono>
#include <cmath>
#include <numbers>
#include <string>
#include <utility>

namespace peaknas::worker {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

Status ValidateTrainOptions(const TrainOptions& o) {
  PEAKNAS_RETURN_IF_ERROR(CheckInRange("steps", o.steps, 1, 10'000'000));
  if (!(o.learning_rate > 0 && o.learning_rate <= 1)) {
    return Status::InvalidArgument("learning_rate: " + std::to_string(o.learning_rate) +
                                   " is not in (0, 1]");
  }
  if (!(o.min_learning_rate >= 0 && o.min_learning_rate <= o.learning_rate)) {
    return Status::InvalidArgument("min_learning_rate: " + std::to_string(o.min_learning_rate) +
                                   " is not in [0, learning_rate]");
  }
  PEAKNAS_RETURN_IF_ERROR(CheckAtLeast("progress_every", o.progress_every, 1));
  return Status::Ok();
}

double CosineLearningRate(const TrainOptions& o, int k) {
  if (o.steps <= 1) return o.learning_rate;
  const double t = static_cast<double>(k) / (o.steps - 1);
  return o.min_learning_rate +
         0.5 * (o.learning_rate - o.min_learning_rate) * (1 + std::cos(std::numbers::pi * t));
}

torch::Tensor ToTensor(const std::vector<float>& chw, int batch, int size, torch::Device device) {
  // from_blob does not own the buffer: clone (or copy to the device) before the buffer is reused.
  torch::Tensor t =
      torch::from_blob(const_cast<float*>(chw.data()), {batch, 3, size, size}, torch::kFloat32);
  return device.is_cpu() ? t.clone() : t.to(device);
}

Trainer::Trainer(UNet net, const TrainOptions& options, torch::Device device)
    : net_(std::move(net)), options_(options), device_(device) {
  net_->to(device_);
  optimizer_ = std::make_unique<torch::optim::Adam>(
      net_->parameters(), torch::optim::AdamOptions(options_.learning_rate));
}

double Trainer::Step(const torch::Tensor& noisy, const torch::Tensor& clean, int k) {
  const double lr = CosineLearningRate(options_, k);
  for (auto& group : optimizer_->param_groups()) {
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
  }
  net_->train();
  optimizer_->zero_grad();  // zeroes in place: gradients stay resident, as the model assumes
  torch::Tensor loss;
  {
    AutocastGuard autocast(options_.precision, device_);
    torch::Tensor y = net_->forward(noisy);
    loss = torch::l1_loss(y.to(torch::kFloat32), clean);
  }
  loss.backward();
  const double value = loss.item<double>();
  loss.reset();
  optimizer_->step();
  return value;
}

StatusOr<TrainResult> Trainer::Run(data::PatchSampler& sampler, const ProgressCallback& progress,
                                   std::stop_token stop) {
  data::PatchBatch batch;
  TrainResult result;
  const auto start = Clock::now();
  auto last_report = start;
  double loss_since_report = 0;
  int steps_since_report = 0;
  const int tail = std::min(options_.steps, 20);
  double tail_sum = 0;
  for (int k = 0; k < options_.steps; ++k) {
    if (stop.stop_requested()) {
      return Status(StatusCode::kCancelled, "training stopped after " + std::to_string(k) + " of " +
                                                std::to_string(options_.steps) + " steps");
    }
    if (Status s = sampler.Next(&batch); !s.ok()) return s;
    const torch::Tensor noisy = ToTensor(batch.noisy, batch.batch, batch.patch, device_);
    const torch::Tensor clean = ToTensor(batch.clean, batch.batch, batch.patch, device_);
    const double loss = Step(noisy, clean, k);
    if (!std::isfinite(loss)) {
      return Status::Internal("training diverged: loss is " + std::to_string(loss) + " at step " +
                              std::to_string(k + 1));
    }
    loss_since_report += loss;
    ++steps_since_report;
    if (k >= options_.steps - tail) tail_sum += loss;
    const bool last = k + 1 == options_.steps;
    if (progress && ((k + 1) % options_.progress_every == 0 || last)) {
      const auto now = Clock::now();
      TrainProgress p;
      p.step = k + 1;
      p.steps = options_.steps;
      p.loss = loss_since_report / steps_since_report;
      p.learning_rate = CosineLearningRate(options_, k);
      p.steps_per_second = steps_since_report / std::max(Seconds(last_report, now), 1e-9);
      p.elapsed_seconds = Seconds(start, now);
      progress(p);
      last_report = now;
      loss_since_report = 0;
      steps_since_report = 0;
    }
  }
  result.steps = options_.steps;
  result.final_loss = tail_sum / tail;
  result.seconds = Seconds(start, Clock::now());
  result.steps_per_second = result.steps / std::max(result.seconds, 1e-9);
  return result;
}

}  // namespace peaknas::worker
