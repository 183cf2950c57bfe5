// Fixed-step training of a U-Net: Adam, L1 loss, cosine learning-rate decay (Loshchilov and
// Hutter, "SGDR", ICLR 2017, without restarts), batches from the patch sampler.
//
// The step is what the cost model's training-step peak describes: gradients are zeroed (not
// freed) before the forward, so weights, gradients and Adam's two moments stay resident between
// steps; the forward's output and the loss's temporaries die before the optimizer step.
//
// Thread-safety: a Trainer is used by one thread at a time.
#ifndef PEAKNAS_WORKER_TRAINER_H_
#define PEAKNAS_WORKER_TRAINER_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>

#include "base/status.h"
#include "search/job_defaults.h"
#include "worker/data/patch_sampler.h"
#include "worker/precision.h"
#include "worker/unet.h"

namespace peaknas::worker {

struct TrainOptions {
  int steps = search::defaults::kSteps;  // optimizer steps (>= 1)
  double learning_rate =
      search::defaults::kLearningRate;  // initial; decays by a half cosine to min_learning_rate
  double min_learning_rate = 1e-5;      // at the last step
  search::DType precision = search::DType::kFp32;  // autocast dtype for the forward and the loss
  int progress_every = 10;  // steps between progress callbacks (>= 1); the last always
};

// Checks every field; INVALID_ARGUMENT names the first bad one and its range.
Status ValidateTrainOptions(const TrainOptions& options);

struct TrainProgress {
  int step = 0;                 // steps done
  int steps = 0;                // steps in all
  double loss = 0;              // mean L1 loss over the steps since the last report
  double learning_rate = 0;     // of the last step
  double steps_per_second = 0;  // since the last report
  double elapsed_seconds = 0;   // since training began
};
using ProgressCallback = std::function<void(const TrainProgress&)>;

struct TrainResult {
  int steps = 0;
  double final_loss = 0;  // mean over the last min(steps, 20) steps
  double seconds = 0;     // training wall time, data sampling included
  double steps_per_second = 0;
};

// The cosine schedule: learning rate for step k (0-based) of `steps`.
double CosineLearningRate(const TrainOptions& options, int k);

class Trainer {
 public:
  // `net` is moved to `device`. Precondition: ValidateTrainOptions(options).ok().
  Trainer(UNet net, const TrainOptions& options, torch::Device device);

  // One optimizer step on a batch already on the device ([B, 3, P, P] float, [0, 1]), with the
  // learning rate of step `k`. Returns the loss (synchronizes with the device).
  double Step(const torch::Tensor& noisy, const torch::Tensor& clean, int k);

  // Runs options.steps steps on batches from `sampler`, reporting progress. Errors: the
  // sampler's (a file that cannot be decoded), a non-finite loss (INTERNAL, naming the step),
  // and CANCELLED when `stop` is requested (checked before every step).
  StatusOr<TrainResult> Run(data::PatchSampler& sampler, const ProgressCallback& progress = {},
                            std::stop_token stop = {});

  UNet& net() { return net_; }
  torch::optim::Adam& optimizer() { return *optimizer_; }

 private:
  UNet net_;
  TrainOptions options_;
  torch::Device device_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
};

// A host batch as device tensors [B, 3, P, P].
torch::Tensor ToTensor(const std::vector<float>& chw, int batch, int size, torch::Device device);

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_TRAINER_H_
