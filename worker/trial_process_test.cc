// RunTrialProcess against small shell children that speak the --events-fd protocol (fakes of
// `peaknas-worker once`, for the protocol and the ways a child ends; serve_test.cc runs the
// real one and kills it).
#include "worker/trial_process.h"

#include <gtest/gtest.h>

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
  auto outcome =
      RunTrialProcess(Shell("echo progress lines >&2\n"
                            "printf '%s\\n' '{\"stage\":\"train\",\"detail\":\"200 steps\"}' "
                            "'{\"progress\":{\"step\":10,\"steps\":200,\"loss\":0.25}}' "
                            "'{\"metrics\":{\"psnr\":31.5,\"measuredInferencePeakBytes\":\"1234\"},"
                            "\"export\":\"/w/t-1.pt\"}' >&3"),
                      Log(), {}, events);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(outcome->metrics.psnr(), 31.5);
  EXPECT_EQ(outcome->metrics.measured_inference_peak_bytes(), 1234);
  EXPECT_EQ(outcome->export_path, "/w/t-1.pt");
  EXPECT_GT(outcome->peak_rss_bytes, 0);
  EXPECT_EQ(seen, (std::vector<std::string>{"train:200 steps", "10/200 0.25"}));
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
