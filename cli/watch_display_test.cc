// WatchDisplay on hand-made events: the log lines, the live line, and counts that a replayed
// stream does not inflate.
#include "cli/watch_display.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace peaknas::cli {
namespace {

v1::Job Job(int trials, int succeeded, int rejected) {
  v1::Job job;
  job.set_id("j-1");
  job.set_state(v1::JOB_STATE_RUNNING);
  job.mutable_spec()->set_trials(trials);
  job.mutable_counts()->set_succeeded(succeeded);
  job.mutable_counts()->set_rejected(rejected);
  return job;
}

v1::JobEvent Started(std::int64_t seq, const std::string& trial) {
  v1::JobEvent e;
  e.set_sequence(seq);
  e.mutable_trial_started()->mutable_trial()->set_id(trial);
  e.mutable_trial_started()->set_worker_id("w-2");
  e.mutable_trial_started()->set_attempt(1);
  return e;
}

v1::JobEvent Finished(std::int64_t seq, const std::string& trial, double psnr) {
  v1::JobEvent e;
  e.set_sequence(seq);
  v1::Trial* t = e.mutable_trial_finished()->mutable_trial();
  t->set_id(trial);
  t->set_state(v1::TRIAL_STATE_SUCCEEDED);
  t->mutable_metrics()->set_psnr(psnr);
  t->set_predicted_inference_peak_bytes(std::int64_t{3} << 20);
  return e;
}

v1::JobEvent Progress(std::int64_t seq, const std::string& trial, int step, int steps) {
  v1::JobEvent e;
  e.set_sequence(seq);
  e.mutable_trial_progress()->set_trial_id(trial);
  e.mutable_trial_progress()->set_step(step);
  e.mutable_trial_progress()->set_steps(steps);
  e.mutable_trial_progress()->set_loss(0.125);
  return e;
}

TEST(WatchDisplay, LogsOneLinePerEventWithItsSequence) {
  std::ostringstream out;
  WatchDisplay display(out, /*live=*/false, Job(2, 0, 0));
  display.Show(Started(1, "t-1"));
  display.Show(Progress(2, "t-1", 5, 10));
  display.Show(Finished(3, "t-1", 31.5));
  v1::JobEvent rejected;
  rejected.set_sequence(4);
  rejected.mutable_trial_rejected()->mutable_trial()->set_id("t-2");
  rejected.mutable_trial_rejected()->mutable_trial()->set_reason("over budget\nby 3 MiB");
  display.Show(rejected);
  v1::JobEvent frontier;
  frontier.set_sequence(5);
  frontier.mutable_frontier_changed()->mutable_frontier()->set_version(2);
  frontier.mutable_frontier_changed()->mutable_frontier()->add_points()->set_psnr(31.5);
  frontier.mutable_frontier_changed()->mutable_frontier()->set_hypervolume(1.5);
  display.Show(frontier);
  v1::JobEvent end;
  end.set_sequence(6);
  v1::Job* job = end.mutable_job_finished()->mutable_job();
  job->set_id("j-1");
  job->set_state(v1::JOB_STATE_FAILED);
  job->set_error("no worker\nhas the dataset");
  job->mutable_counts()->set_succeeded(1);
  display.Show(end);

  EXPECT_EQ(out.str(),
            "#1 trial t-1 started on w-2 (attempt 1)\n"
            "#2 trial t-1 step 5/10, loss 0.1250\n"
            "#3 trial t-1 SUCCEEDED: PSNR 31.50 dB, predicted inference peak 3.00 MiB\n"
            "#4 trial t-2 rejected: over budget by 3 MiB\n"
            "#5 frontier v2: 1 points, hypervolume 1.5000\n"
            "#6 job j-1 FAILED (pending 0, running 0, succeeded 1, failed 0, rejected 0, "
            "cancelled 0): no worker has the dataset\n");
  EXPECT_TRUE(display.finished());
  EXPECT_EQ(display.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(display.error(), "no worker\nhas the dataset");
}

TEST(WatchDisplay, LiveLineShowsProgressBestPsnrAndTrainingSteps) {
  std::ostringstream out;
  WatchDisplay display(out, /*live=*/true, Job(4, 0, 1));
  display.Show(Started(1, "t-1"));
  display.Show(Progress(2, "t-1", 5, 10));
  std::string last = out.str().substr(out.str().rfind('\r'));
  EXPECT_EQ(last,
            "\r\033[Kj-1 RUNNING [........................] 0/4 trials, 1 rejected, "
            "best PSNR -; t-1 5/10");
  display.Show(Finished(3, "t-1", 30.25));
  display.Show(Finished(4, "t-2", 29.0));
  last = out.str().substr(out.str().rfind('\r'));
  // Half done: half the bar; the best PSNR so far; the finished trial no longer training.
  EXPECT_EQ(last,
            "\r\033[Kj-1 RUNNING [############............] 2/4 trials, 1 rejected, "
            "best PSNR 30.25 dB");
  display.End();
  EXPECT_EQ(out.str().back(), '\n');
  EXPECT_FALSE(display.finished());
}

TEST(WatchDisplay, AReplayedStreamDoesNotCountATrialTwice) {
  std::ostringstream out;
  // GetJob already counted both finished trials; the stream replays their events.
  WatchDisplay display(out, /*live=*/true, Job(3, 2, 0));
  display.Show(Finished(1, "t-1", 30));
  display.Show(Finished(2, "t-2", 31));
  display.Show(Finished(3, "t-1", 30));  // the same trial again: still 2
  const std::string last = out.str().substr(out.str().rfind('\r'));
  EXPECT_NE(last.find(" 2/3 trials"), std::string::npos) << last;
  display.Show(Finished(4, "t-3", 32));
  EXPECT_NE(out.str().substr(out.str().rfind('\r')).find(" 3/3 trials"), std::string::npos);
}

}  // namespace
}  // namespace peaknas::cli
