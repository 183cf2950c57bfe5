// Device calibration end to end, between real processes: a `peaknas-server` on 127.0.0.1, one
// `peaknas-worker serve` running each trial in its own `once` process, and the `peaknas` CLI.
// A first job's trials are the samples the coordinator fits (ListCalibrations); a second job's
// trials, architectures the fit never saw, are held to
//     measured process peak <= calibrated prediction <= 1.15 x measured
// for inference and for the training step. The whole trial process (the "trial" pass packing
// reserves by) is held to what packing needs of it: measured within the limit a packed worker
// enforces for its reservation (ReservationLimitBytes), and calibrated <= 1.15 x measured beyond
// the scatter of whole-process peaks. That scatter is real and large: the kept heap of the
// training loop leaves holes of a block's size resident or not from one process to the next
// (docs/cost-model.md, "The whole process's peak scatters"), so the same network's trial peaks
// lie up to 13 % apart, and a reservation that covers the top of the scatter over-predicts its
// bottom by that much. The scatter is measured in the run itself: the largest over the smallest
// measured / line ratio of the trial pass, fitted and held-out samples together.
// `peaknas calibration --format json` then feeds `peaknas estimate --calibration`, which must
// predict the same device peak for a held-out trial; and a third job's budget, stated in process
// bytes, holds every trial it admits. Trials are sized so that the peaks range from a few MiB to
// about a hundred, beside a process overhead of about 170 MiB: the slope matters, not only the
// overhead.
#include "search/calibration.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "peaknas/v1/peaknas.grpc.pb.h"
#include "proto/convert.h"
#include "search/architecture.h"
#include "tests/support/jobs.h"
#include "tests/support/process.h"
#include "worker/lease_loop.h"

namespace peaknas::worker {
namespace {

namespace fs = std::filesystem;
namespace v1 = peaknas::v1;
using Json = nlohmann::json;
using testing::ReadFile;
using testing::Spawn;
using testing::Wait;

constexpr double kBound = 1.15;

v1::JobSpec CalibrationJob(const std::string& name, int trials, std::uint64_t seed) {
  return testing::PatchJob(name, trials, /*steps=*/1, seed);
}

class DeviceCalibration : public testing::CoordinatorTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartCoordinator("peaknas-calibration", testing::TestData::kPatches,
                                             PEAKNAS_SERVER_BINARY, PEAKNAS_WORKER_BINARY));
    worker_ = Spawn({PEAKNAS_WORKER_BINARY, "serve", "--coordinator", address_, "--data",
                     "synthetic=" + data_.string(), "--threads", "1", "--name", "calibration-test",
                     "--lease-wait", "5", "--latency-runs", "1",
                     "--no-latency-100mp"},  // its windows fill the 8 GiB budget
                    -1, (dir_ / "worker.log").string());
    ASSERT_GT(worker_, 0);
  }

  // Runs a job to its end; its succeeded trials.
  std::vector<v1::Trial> RunJob(const v1::JobSpec& spec) {
    const std::string job = jobs_.Submit(spec);
    EXPECT_FALSE(job.empty());
    EXPECT_TRUE(WaitForEnd(job, 600)) << ReadFile(dir_ / "worker.log");
    std::vector<v1::Trial> done;
    for (const v1::Trial& t : jobs_.Trials(job)) {
      if (t.state() == v1::TRIAL_STATE_SUCCEEDED) done.push_back(t);
    }
    return done;
  }

  v1::ListCalibrationsResponse Calibrations() {
    v1::ListCalibrationsResponse response;
    auto context = testing::CallContext();
    const grpc::Status status =
        jobs_->ListCalibrations(context.get(), v1::ListCalibrationsRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // Runs the CLI with stdout to `out`; its exit status.
  int Cli(std::vector<std::string> args, const fs::path& out) {
    args.insert(args.begin(), PEAKNAS_CLI_BINARY);
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const pid_t pid = Spawn(args, fd, (dir_ / "cli.err").string());
    ::close(fd);
    const int status = Wait(pid);
    if (status != 0) ADD_FAILURE() << ReadFile(dir_ / "cli.err");
    return status;
  }
};

TEST_F(DeviceCalibration, AFitOnSomeTrialsBoundsTheProcessPeaksOfOthers) {
  const std::vector<v1::Trial> fitted = RunJob(CalibrationJob("fit", 8, 101));
  ASSERT_GE(fitted.size(), 6u);

  const v1::ListCalibrationsResponse listed = Calibrations();
  ASSERT_EQ(listed.calibrations_size(), 1);
  const v1::Calibration& c = listed.calibrations(0);
  EXPECT_EQ(c.device_profile(), "cpu");
  EXPECT_EQ(c.framework().rfind("libtorch ", 0), 0u) << c.framework();
  ASSERT_EQ(c.inference().unfitted(), "");
  ASSERT_EQ(c.training().unfitted(), "");
  EXPECT_EQ(c.inference().samples(), static_cast<int>(fitted.size()));
  EXPECT_EQ(c.training().samples(), static_cast<int>(fitted.size()));
  // Every trial also reports its whole process (the "trial" pass packing reserves by).
  ASSERT_EQ(c.trial().unfitted(), "");
  EXPECT_EQ(c.trial().samples(), static_cast<int>(fitted.size()));
  const search::CalibrationFit inference = proto::FromProto(c.inference());
  const search::CalibrationFit training = proto::FromProto(c.training());
  const search::CalibrationFit trial = proto::FromProto(c.trial());
  std::printf(
      "fit on %zu trials: inference %.1f MiB + %.3f x predicted, margin %.4f; training "
      "%.1f MiB + %.3f x predicted, margin %.4f; trial %.1f MiB + %.3f x predicted, margin "
      "%.4f\n",
      fitted.size(), inference.overhead_bytes / (1 << 20), inference.slope, inference.margin,
      training.overhead_bytes / (1 << 20), training.slope, training.margin,
      trial.overhead_bytes / (1 << 20), trial.slope, trial.margin);

  // The same calibration through the CLI, before the held-out job adds samples: as a table,
  // and as the JSON `estimate --calibration` reads.
  const fs::path table = dir_ / "calibration.txt";
  ASSERT_EQ(Cli({"calibration", "--coordinator", address_}, table), 0);
  const std::string rows = ReadFile(table);
  EXPECT_EQ(rows.rfind("DEVICE", 0), 0u) << rows;
  int pass_rows = 0;
  std::istringstream lines(rows);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("cpu ", 0) == 0 && line.find(" " + c.framework() + " ") != std::string::npos &&
        line.find(" x predicted + ") != std::string::npos) {
      ++pass_rows;
    }
  }
  EXPECT_EQ(pass_rows, 3) << rows;  // inference, training and the whole trial
  const fs::path saved = dir_ / "calibration.json";
  ASSERT_EQ(Cli({"calibration", "--coordinator", address_, "--format", "json"}, saved), 0);

  const std::vector<v1::Trial> held_out = RunJob(CalibrationJob("held-out", 6, 202));
  ASSERT_GE(held_out.size(), 5u);
  double scatter_low = trial.min_ratio, scatter_high = trial.max_ratio;
  for (const v1::Trial& t : held_out) {
    const v1::TrialMetrics& m = t.metrics();
    const double line = trial.overhead_bytes + trial.slope * static_cast<double>(std::max(
                                                                 m.predicted_inference_peak_bytes(),
                                                                 m.predicted_train_peak_bytes()));
    const double ratio = static_cast<double>(m.process_peak_bytes()) / line;
    scatter_low = std::min(scatter_low, ratio);
    scatter_high = std::max(scatter_high, ratio);
  }
  const double scatter = scatter_high / scatter_low;
  // Nine runs of this test on one machine saw 1.06 to 1.22.
  EXPECT_LT(scatter, 1.3) << "the whole trial process's peak scatters more than it should";
  std::printf("trial pass: measured / line in [%.3f, %.3f], scatter %.3f\n", scatter_low,
              scatter_high, scatter);
  double lowest = 10, highest = 0;
  std::int64_t largest_peak = 0;
  for (const v1::Trial& t : held_out) {
    const v1::TrialMetrics& m = t.metrics();
    largest_peak = std::max(largest_peak, m.predicted_inference_peak_bytes());
    for (const auto& [pass, fit, predicted, measured] :
         {std::tuple<const char*, const search::CalibrationFit*, std::int64_t, std::int64_t>{
              "inference", &inference, m.predicted_inference_peak_bytes(),
              m.process_inference_peak_bytes()},
          {"training", &training, m.predicted_train_peak_bytes(), m.process_train_peak_bytes()},
          {"trial", &trial,
           std::max(m.predicted_inference_peak_bytes(), m.predicted_train_peak_bytes()),
           m.process_peak_bytes()}}) {
      ASSERT_GT(measured, 0) << t.id() << " " << pass;
      const double ratio =
          static_cast<double>(fit->Predict(predicted)) / static_cast<double>(measured);
      lowest = std::min(lowest, ratio);
      highest = std::max(highest, ratio);
      std::printf("  %s %-9s allocator %6.1f MiB, calibrated %6.1f MiB, measured %6.1f MiB, %.3f\n",
                  t.id().c_str(), pass, predicted / double{1 << 20},
                  fit->Predict(predicted) / double{1 << 20}, measured / double{1 << 20}, ratio);
      if (fit == &trial) {
        EXPECT_LE(measured, ReservationLimitBytes(fit->Predict(predicted)))
            << t.id() << " trial: measured " << measured << " would be stopped under reservation "
            << fit->Predict(predicted) << " (allocator peak " << predicted << ")";
      } else {
        EXPECT_GE(ratio, 1.0) << t.id() << " " << pass << ": predicted " << fit->Predict(predicted)
                              << " < measured " << measured << " (allocator peak " << predicted
                              << ")";
      }
      const double bound = fit == &trial ? kBound * scatter : kBound;
      EXPECT_LE(ratio, bound) << t.id() << " " << pass << ": predicted " << fit->Predict(predicted)
                              << " > " << bound << " x measured " << measured;
    }
  }
  std::printf(
      "held out: %zu trials x 3 passes, calibrated / measured process peak in [%.3f, %.3f]\n",
      held_out.size(), lowest, highest);
  EXPECT_GT(largest_peak, std::int64_t{40} << 20)
      << "the held-out peaks are too small to test the slope";

  // `peaknas estimate --calibration` predicts the same device peaks for a held-out trial.
  const v1::Trial& t = held_out.front();
  const StatusOr<search::Architecture> arch = proto::FromProto(t.architecture(), "architecture");
  ASSERT_TRUE(arch.ok()) << arch.status().message();
  const fs::path estimate = dir_ / "estimate.json";
  ASSERT_EQ(
      Cli({"estimate", "--json", "--arch", search::ToCanonicalJson(*arch), "--batch", "1", "--tile",
           "256", "--train-batch", "8", "--patch", "64", "--calibration", saved.string()},
          estimate),
      0);
  const Json e = Json::parse(ReadFile(estimate));
  EXPECT_EQ(e.at("inference_peak_bytes").get<std::int64_t>(),
            t.metrics().predicted_inference_peak_bytes());
  EXPECT_EQ(e.at("device_peak_bytes").get<std::int64_t>(),
            inference.Predict(t.metrics().predicted_inference_peak_bytes()));
  EXPECT_EQ(e.at("device_train_peak_bytes").get<std::int64_t>(),
            training.Predict(t.metrics().predicted_train_peak_bytes()));
  EXPECT_EQ(e.at("calibration").at("samples").get<int>(), 2 * static_cast<int>(fitted.size()));

  // A budget stated in process bytes: every trial admitted under it runs within it.
  constexpr std::int64_t kDeviceBudget = std::int64_t{210} << 20;
  v1::JobSpec device_job = CalibrationJob("device-budget", 4, 303);
  device_job.mutable_budget()->clear_bytes();
  device_job.mutable_budget()->set_device_bytes(kDeviceBudget);
  const std::vector<v1::Trial> admitted = RunJob(device_job);
  ASSERT_GE(admitted.size(), 2u);
  for (const v1::Trial& t : admitted) {
    EXPECT_LE(t.metrics().process_inference_peak_bytes(), kDeviceBudget) << t.id();
    EXPECT_GT(t.metrics().process_inference_peak_bytes(), 0) << t.id();
  }
  const fs::path status = dir_ / "status.txt";
  ASSERT_EQ(Cli({"status", "--coordinator", address_, admitted.front().job_id()}, status), 0);
  EXPECT_NE(ReadFile(status).find("210.00 MiB INFERENCE on the device ("), std::string::npos)
      << ReadFile(status);
}

}  // namespace
}  // namespace peaknas::worker
