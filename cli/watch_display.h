// WatchDisplay: what `peaknas watch` (and `peaknas run`) show of a job's event stream (WatchJob).
//
// Two forms. A log: one line per event, "#SEQ what happened" (a trial started on a worker,
// finished with its PSNR and predicted peak or its failure, rejected with the reason, the
// frontier's new version, progress steps, the job's end). Live, on a terminal: one line
// redrawn in place, "j-1 RUNNING [#####...] 5/24 trials, 3 rejected, best PSNR 31.20 dB; t-7
// 40/200, ...", with the steps of at most three training trials as their workers last
// reported them.
//
// The stream replays the job's log from its start, and the display starts from GetJob's
// counts: a trial is counted once whichever of the two told of it first (counts are the larger
// of the two, never their sum).
//
// Thread-safety: none; one display per stream.
#ifndef PEAKNAS_CLI_WATCH_DISPLAY_H_
#define PEAKNAS_CLI_WATCH_DISPLAY_H_

#include <map>
#include <ostream>
#include <set>
#include <string>

#include "peaknas/v1/peaknas.pb.h"

namespace peaknas::cli {

class WatchDisplay {
 public:
  // `job` as GetJob gave it before the stream began. `live`: redraw one line (a terminal).
  WatchDisplay(std::ostream& out, bool live, const v1::Job& job);

  // Takes one event: a log line, or the live line redrawn. Unknown events are ignored.
  void Show(const v1::JobEvent& event);
  // Draws the live line (the first time, before any event).
  void Redraw();
  // Ends the live line.
  void End();

  v1::JobState state() const { return state_; }
  const std::string& error() const { return error_; }
  bool finished() const;

 private:
  std::ostream& out_;
  bool live_;
  std::string job_;
  int total_;
  int done_;
  int rejected_;
  v1::JobState state_;
  std::string error_;
  std::set<std::string> finished_;  // trials seen finished
  std::set<std::string> rejected_ids_;
  std::map<std::string, std::string> training_;  // trial -> "step/steps", until it finishes
  bool has_best_ = false;
  double best_psnr_ = 0;
};

}  // namespace peaknas::cli

#endif  // PEAKNAS_CLI_WATCH_DISPLAY_H_
