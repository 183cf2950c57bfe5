// RunTrialProcess against small shell children that speak the --events-fd protocol (fakes of
// `peaknas-worker once`, for the protocol and the ways a child ends; serve_test.cc runs the
// real one and kills it).
#include "worker/trial_process.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <stop_token>
#include <string>
#include <vector>

#include "base/temp_dir.h"

namespace peaknas::worker {
namespace {

std::vector<std::string> Shell(const std::string& script) { return {"/bin/sh", "-c", script}; }

class TrialProcessTest : public ::testing::Test {
 protected:
  std::string Log() const { return (dir_.path() / "trial.log").string(); }
  base::TempDir dir_{"peaknas-trial-process"};
};

TEST_F(TrialProcessTest, FollowsStagesAndProgressAndReturnsTheMetrics) {
  std::vector<std::string> seen;
  TrialProcessEvents events;
  events.stage = [&](std::string_view stage, std::string_view detail) {
    seen.push_back(std::string(stage) + ":" + std::string(detail));
  };
  events.progress = [&](int step, int steps, double loss) {
    seen.push_back(std::to_string(step) + "/" + std::to_string(steps) + " " +
                   std::to_string(loss).substr(0, 4));
  };
  events.data_bytes = [&](std::int64_t bytes) { seen.push_back("data " + std::to_string(bytes)); };
  auto outcome =
      RunTrialProcess(Shell("echo progress lines >&2\n"
                            "printf '%s\\n' '{\"stage\":\"train\",\"detail\":\"200 steps\"}' "
                            "'{\"data_bytes\":4096}' "
                            "'{\"progress\":{\"step\":10,\"steps\":200,\"loss\":0.25}}' "
                            "'{\"metrics\":{\"psnr\":31.5,\"measuredInferencePeakBytes\":\"1234\"},"
                            "\"export\":\"/w/t-1.pt\"}' >&3"),
                      Log(), {}, events);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(outcome->metrics.psnr(), 31.5);
  EXPECT_EQ(outcome->metrics.measured_inference_peak_bytes(), 1234);
  EXPECT_EQ(outcome->export_path, "/w/t-1.pt");
  EXPECT_GT(outcome->peak_rss_bytes, 0);
  EXPECT_EQ(seen, (std::vector<std::string>{"train:200 steps", "data 4096", "10/200 0.25"}));
}

// awk doubling a string to 2^28 characters holds about 256 MiB, then spins.
constexpr const char* kGrowsTo256MiB =
    "exec awk 'BEGIN { s = \"x\"; while (length(s) < 268435456) s = s s; while (1) {} }'";

TEST_F(TrialProcessTest, AChildOverItsMemoryLimitIsStoppedAsResourceExhausted) {
  constexpr std::int64_t kLimit = std::int64_t{64} << 20;
  std::atomic<std::int64_t> largest{0};
  TrialProcessWatch watch;
  watch.limit = [] { return kLimit; };
  watch.resident = [&](std::int64_t bytes) {
    if (bytes > largest.load()) largest = bytes;
  };
  auto outcome = RunTrialProcess(Shell(kGrowsTo256MiB), Log(), {}, {}, watch);
  EXPECT_EQ(outcome.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(outcome.status().message().find("over its memory reservation"), std::string::npos)
      << outcome.status().message();
  EXPECT_GT(largest.load(), kLimit);
  // Stopped near the limit, long before the child's 256 MiB.
  EXPECT_LT(largest.load(), std::int64_t{200} << 20);
}

TEST_F(TrialProcessTest, TheWatchFollowsAChildUnderItsLimit) {
  std::atomic<int> readings{0};
  std::atomic<std::int64_t> largest{0};
  TrialProcessWatch watch;
  watch.limit = [] { return std::int64_t{1} << 40; };
  watch.resident = [&](std::int64_t bytes) {
    if (bytes > 0) ++readings;
    if (bytes > largest.load()) largest = bytes;
  };
  auto outcome = RunTrialProcess(
      Shell("awk 'BEGIN { s = \"x\"; while (length(s) < 33554432) s = s s }'; sleep 0.2; "
            "printf '%s\\n' '{\"metrics\":{\"psnr\":30}}' >&3"),
      Log(), {}, {}, watch);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_GT(readings.load(), 0);
  EXPECT_GE(outcome->peak_rss_bytes, largest.load());
}

TEST_F(TrialProcessTest, ThePeakIsTheOneBeforeTheHundredMegapixelPass) {
  // The child says its high-water mark (3 MiB), then grows to about 64 MiB (the 100-MP pass's
  // windows): the trial's peak is the one before.
  auto outcome =
      RunTrialProcess(Shell("printf '%s\\n' '{\"resident_peak\":3145728}' >&3; "
                            "awk 'BEGIN { s = \"x\"; while (length(s) < 67108864) s = s s }'; "
                            "printf '%s\\n' '{\"metrics\":{\"psnr\":30}}' >&3"),
                      Log(), {});
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_GE(outcome->peak_rss_bytes, 3145728);
  EXPECT_LT(outcome->peak_rss_bytes, std::int64_t{32} << 20);
  // Without the line, the whole life counts.
  outcome =
      RunTrialProcess(Shell("awk 'BEGIN { s = \"x\"; while (length(s) < 67108864) s = s s }'; "
                            "printf '%s\\n' '{\"metrics\":{\"psnr\":30}}' >&3"),
                      Log(), {});
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_GT(outcome->peak_rss_bytes, std::int64_t{64} << 20);
}

TEST_F(TrialProcessTest, TheChildsOwnErrorKeepsItsCode) {
  auto outcome = RunTrialProcess(
      Shell("printf '%s\\n' '{\"error\":{\"code\":8,\"message\":\"out of memory: 3 GiB\"}}' >&3; "
            "exit 1"),
      Log(), {});
  EXPECT_EQ(outcome.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(outcome.status().message(), "out of memory: 3 GiB");
}

TEST_F(TrialProcessTest, AChildKilledBeforeItsOutcomeIsWorthAnotherTry) {
  auto outcome = RunTrialProcess(
      Shell("printf '%s\\n' '{\"stage\":\"train\",\"detail\":\"\"}' >&3; kill -KILL $$"), Log(),
      {});
  ASSERT_EQ(outcome.status().code(), StatusCode::kUnavailable) << outcome.status().ToString();
  EXPECT_NE(outcome.status().message().find("signal"), std::string::npos);
  EXPECT_NE(outcome.status().message().find("out-of-memory killer"), std::string::npos);
  EXPECT_NE(outcome.status().message().find(Log()), std::string::npos);

  TrialProcessEvents events;
  int stages = 0;
  events.stage = [&](std::string_view, std::string_view) { ++stages; };
  auto early = RunTrialProcess(Shell("echo '{\"stage\": 5}' >&3; echo not json >&3; exit 3"), Log(),
                               {}, events);
  EXPECT_EQ(stages, 0);
  ASSERT_EQ(early.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(early.status().message().find("status 3"), std::string::npos)
      << early.status().message();
  // The first line that is not the protocol's (a stage that is not a string) is named.
  EXPECT_NE(early.status().message().find("{\"stage\": 5}"), std::string::npos)
      << early.status().message();
}

TEST_F(TrialProcessTest, AStopKillsTheChildAtOnce) {
  std::stop_source stop;
  TrialProcessEvents events;
  events.stage = [&](std::string_view, std::string_view) { stop.request_stop(); };
  // It would train for a minute; the first stage asks for the stop.
  auto outcome = RunTrialProcess(
      Shell("printf '%s\\n' '{\"stage\":\"train\",\"detail\":\"\"}' >&3; exec sleep 60"), Log(),
      stop.get_token(), events);
  EXPECT_EQ(outcome.status().code(), StatusCode::kCancelled) << outcome.status().ToString();
}

TEST_F(TrialProcessTest, AProgramThatCannotRunIsNamed) {
  auto outcome = RunTrialProcess({"/nonexistent/peaknas-worker", "once"}, Log(), {});
  EXPECT_EQ(outcome.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(outcome.status().message().find("/nonexistent/peaknas-worker"), std::string::npos);
}

}  // namespace
}  // namespace peaknas::worker
