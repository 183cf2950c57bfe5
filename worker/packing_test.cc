// Packing trials on one device, end to end between real processes: a `peaknas-server` on
// 127.0.0.1 and `peaknas-worker serve` processes running each trial in its own `once` child.
//
// A first worker, one trial at a time, runs a job whose trials calibrate the coordinator (the
// first trials of a device profile run alone). A second worker then packs a second job's trials
// into a memory limit of kLimit with --max-concurrent far above what fits, and one of those
// trials is made to go over its reservation (PEAKNAS_FAULT_HOLD_BYTES). Held to:
//   * several trials ran at once, but never as many as --max-concurrent: the ones that did not
//     fit waited (the limit cannot hold five of the smallest trial processes measured);
//   * at every instant, the whole-process peaks of the trials running sum to at most kLimit;
//   * the trial forced over its reservation was stopped and leased again with more headroom,
//     and succeeded; every other trial succeeded at its first attempt.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "peaknas/v1/peaknas.grpc.pb.h"
#include "tests/support/jobs.h"
#include "tests/support/process.h"

namespace peaknas::worker {
namespace {

namespace v1 = peaknas::v1;
using testing::ReadFile;
using testing::Spawn;

constexpr std::int64_t kMiB = std::int64_t{1} << 20;
constexpr std::int64_t kLimit = 1024 * kMiB;
constexpr int kMaxConcurrent = 8;
constexpr std::int64_t kFaultBytes = 96 * kMiB;

// testing::PatchJob, every trial queued at once.
v1::JobSpec Job(const std::string& name, int trials, int steps, std::uint64_t seed) {
  v1::JobSpec spec = testing::PatchJob(name, trials, steps, seed);
  spec.set_parallelism(trials);
  return spec;
}

double Seconds(const google::protobuf::Timestamp& t) {
  return static_cast<double>(t.seconds()) + t.nanos() * 1e-9;
}

class Packing : public testing::CoordinatorTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartCoordinator("peaknas-packing", testing::TestData::kPatches,
                                             PEAKNAS_SERVER_BINARY, PEAKNAS_WORKER_BINARY));
  }

  pid_t StartWorker(std::vector<std::string> extra) {
    std::vector<std::string> args = {PEAKNAS_WORKER_BINARY,
                                     "serve",
                                     "--coordinator",
                                     address_,
                                     "--data",
                                     "synthetic=" + data_.string(),
                                     "--threads",
                                     "1",
                                     "--lease-wait",
                                     "5",
                                     "--latency-runs",
                                     "1",
                                     "--no-latency-100mp"};  // its windows fill the 8 GiB budget
    args.insert(args.end(), extra.begin(), extra.end());
    return Spawn(args, -1, (dir_ / "worker.log").string(), /*append_stderr=*/true);
  }

  // The job's whole event log (it has ended, so the watch ends).
  std::vector<v1::JobEvent> Events(const std::string& job) {
    grpc::ClientContext context;
    v1::WatchJobRequest request;
    request.set_job_id(job);
    auto reader = jobs_->WatchJob(&context, request);
    std::vector<v1::JobEvent> out;
    for (v1::JobEvent e; reader->Read(&e);) out.push_back(e);
    EXPECT_TRUE(reader->Finish().ok());
    return out;
  }
};

TEST_F(Packing, TrialsShareALimitedMemoryByTheirCalibratedPeaks) {
  // 1. Calibration: one trial at a time.
  worker_ = StartWorker({});
  ASSERT_GT(worker_, 0);
  const std::string calibrate = jobs_.Submit(Job("calibrate", 6, 1, 301));
  ASSERT_TRUE(WaitForEnd(calibrate, 900)) << ReadFile(dir_ / "worker.log");
  ASSERT_EQ(jobs_.GetJob(calibrate).state(), v1::JOB_STATE_SUCCEEDED);
  testing::StopAndReap(worker_, SIGTERM);

  // 2. Packed: a worker with room for kMaxConcurrent trials by count, kLimit by memory; the
  // third trial of the job is forced over its reservation.
  const std::string job = jobs_.Submit(Job("packed", 6, 20, 302));
  ASSERT_FALSE(job.empty());
  std::vector<v1::Trial> trials = jobs_.Trials(job);
  ASSERT_EQ(trials.size(), 6u);
  const std::string target = trials[2].id();
  ASSERT_EQ(
      setenv("PEAKNAS_FAULT_HOLD_BYTES", (target + ":" + std::to_string(kFaultBytes)).c_str(), 1),
      0);
  worker_ = StartWorker({"--max-concurrent", std::to_string(kMaxConcurrent), "--memory",
                         std::to_string(kLimit), "--memory-reserve", "0"});
  unsetenv("PEAKNAS_FAULT_HOLD_BYTES");
  ASSERT_GT(worker_, 0);
  ASSERT_TRUE(WaitForEnd(job, 900)) << ReadFile(dir_ / "worker.log");

  trials = jobs_.Trials(job);
  std::map<std::string, std::int64_t> peak;  // whole-process peak per trial
  for (const v1::Trial& t : trials) {
    ASSERT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED) << t.id() << ": " << t.reason();
    EXPECT_EQ(t.attempts(), t.id() == target ? 2 : 1) << t.id();
    ASSERT_GT(t.metrics().process_peak_bytes(), 0) << t.id();
    peak[t.id()] = t.metrics().process_peak_bytes();
  }
  const std::string log = ReadFile(dir_ / "worker.log");
  EXPECT_NE(log.find("went over its memory reservation"), std::string::npos) << log;

  // Each trial's last run, from its last lease to its result.
  std::map<std::string, std::pair<double, double>> runs;
  for (const v1::JobEvent& e : Events(job)) {
    if (e.has_trial_started()) runs[e.trial_started().trial().id()].first = Seconds(e.time());
    if (e.has_trial_finished()) runs[e.trial_finished().trial().id()].second = Seconds(e.time());
  }
  ASSERT_EQ(runs.size(), 6u);
  int most = 0;
  for (const auto& [id, run] : runs) {
    ASSERT_LT(run.first, run.second) << id;
    // Who runs at this trial's start (the sum is largest at some start).
    int running = 0;
    std::int64_t held = 0;
    std::string who;
    for (const auto& [other, span] : runs) {
      if (span.first <= run.first && run.first < span.second) {
        ++running;
        held += peak[other];
        who += " " + other + " (" + std::to_string(peak[other] / kMiB) + " MiB)";
      }
    }
    most = std::max(most, running);
    EXPECT_LE(held, kLimit) << "at the start of " << id << ":" << who;
  }
  std::vector<std::int64_t> sizes;
  for (const auto& [id, bytes] : peak) sizes.push_back(bytes);
  std::sort(sizes.begin(), sizes.end());
  // The limit cannot hold five trials: a count of kMaxConcurrent never was the bound.
  ASSERT_GT(sizes[0] + sizes[1] + sizes[2] + sizes[3] + sizes[4], kLimit);
  EXPECT_GE(most, 2) << "no two trials ever ran at once";
  EXPECT_LE(most, 4);
  std::printf("packed: at most %d trials at once in %lld MiB; process peaks %lld-%lld MiB\n", most,
              static_cast<long long>(kLimit / kMiB), static_cast<long long>(sizes.front() / kMiB),
              static_cast<long long>(sizes.back() / kMiB));
}

}  // namespace
}  // namespace peaknas::worker
