#include "cli/watch_display.h"

#include <algorithm>
#include <string>

#include "base/app.h"
#include "cli/format.h"
#include "search/units.h"

namespace peaknas::cli {

WatchDisplay::WatchDisplay(std::ostream& out, bool live, const v1::Job& job)
    : out_(out),
      live_(live),
      job_(job.id()),
      total_(job.spec().trials()),
      done_(Done(job.counts())),
      rejected_(job.counts().rejected()),
      state_(job.state()) {}

void WatchDisplay::Show(const v1::JobEvent& event) {
  std::string line;
  switch (event.event_case()) {
    case v1::JobEvent::kTrialStarted: {
      const auto& e = event.trial_started();
      line = "trial " + e.trial().id() + " started on " + e.worker_id() + " (attempt " +
             std::to_string(e.attempt()) + ")";
      if (state_ == v1::JOB_STATE_PENDING) state_ = v1::JOB_STATE_RUNNING;
      break;
    }
    case v1::JobEvent::kTrialFinished: {
      const v1::Trial& t = event.trial_finished().trial();
      finished_.insert(t.id());
      training_.erase(t.id());
      done_ = std::max(done_, static_cast<int>(finished_.size()));
      line = "trial " + t.id() + " " + StateName(t.state());
      if (t.state() == v1::TRIAL_STATE_SUCCEEDED) {
        line += ": PSNR " + Fixed(t.metrics().psnr(), 2) + " dB, predicted inference peak " +
                search::FormatBytes(t.predicted_inference_peak_bytes());
        if (!has_best_ || t.metrics().psnr() > best_psnr_) best_psnr_ = t.metrics().psnr();
        has_best_ = true;
      } else if (!t.reason().empty()) {
        line += ": " + base::OneLine(t.reason());
      }
      break;
    }
    case v1::JobEvent::kTrialRejected: {
      const v1::Trial& t = event.trial_rejected().trial();
      rejected_ids_.insert(t.id());
      rejected_ = std::max(rejected_, static_cast<int>(rejected_ids_.size()));
      line = "trial " + t.id() + " rejected: " + base::OneLine(t.reason());
      break;
    }
    case v1::JobEvent::kFrontierChanged: {
      const v1::Frontier& f = event.frontier_changed().frontier();
      for (const auto& p : f.points()) {
        if (!has_best_ || p.psnr() > best_psnr_) best_psnr_ = p.psnr();
        has_best_ = true;
      }
      line = "frontier v" + std::to_string(f.version()) + ": " + std::to_string(f.points_size()) +
             " points, hypervolume " + Fixed(f.hypervolume(), 4);
      break;
    }
    case v1::JobEvent::kJobFinished: {
      const v1::Job& j = event.job_finished().job();
      state_ = j.state();
      done_ = Done(j.counts());
      rejected_ = j.counts().rejected();
      error_ = j.error();
      line = "job " + j.id() + " " + StateName(j.state()) + " (" + Counts(j.counts()) + ")";
      if (!j.error().empty()) line += ": " + base::OneLine(j.error());
      break;
    }
    case v1::JobEvent::kTrialProgress: {
      const auto& p = event.trial_progress();
      line = "trial " + p.trial_id() + " step " + std::to_string(p.step()) + "/" +
             std::to_string(p.steps()) + ", loss " + Fixed(p.loss(), 4);
      if (!finished_.contains(p.trial_id())) {
        training_[p.trial_id()] = std::to_string(p.step()) + "/" + std::to_string(p.steps());
      }
      break;
    }
    default:
      return;
  }
  if (live_) {
    Redraw();
  } else {
    out_ << "#" << event.sequence() << " " << line << std::endl;
  }
}

void WatchDisplay::Redraw() {
  constexpr int kBar = 24;
  const int filled = total_ > 0 ? std::min(kBar, done_ * kBar / total_) : 0;
  out_ << "\r\033[K" << job_ << " " << StateName(state_) << " [" << std::string(filled, '#')
       << std::string(kBar - filled, '.') << "] " << done_ << "/" << total_ << " trials, "
       << rejected_ << " rejected, best PSNR "
       << (has_best_ ? Fixed(best_psnr_, 2) + " dB" : std::string("-"));
  // The training trials' steps, as their workers last heartbeated them (at most three).
  int shown = 0;
  for (const auto& [trial, steps] : training_) {
    if (shown++ == 3) break;
    out_ << (shown == 1 ? "; " : ", ") << trial << " " << steps;
  }
  out_ << std::flush;
}

void WatchDisplay::End() {
  if (live_) out_ << "\n" << std::flush;
}

bool WatchDisplay::finished() const { return Ended(state_); }

}  // namespace peaknas::cli
