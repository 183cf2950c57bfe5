// A job's defaults, named once: what a JobSpec field left at 0 (or unset) means. The job-spec
// validator and proto::ResolveJobSpec (proto/convert.h), the strategies' configs
// (server/strategy.h) and the worker's trial and trainer options (worker/trial.h, trainer.h)
// read them from here.
#ifndef PEAKNAS_SEARCH_JOB_DEFAULTS_H_
#define PEAKNAS_SEARCH_JOB_DEFAULTS_H_

namespace peaknas::search::defaults {

// Budget shapes.
inline constexpr int kTileBatch = 1;
inline constexpr int kTile = 256;
inline constexpr int kTrainBatch = 8;
inline constexpr int kPatch = 64;

// Fidelity: each trial's training.
inline constexpr int kSteps = 200;
inline constexpr double kLearningRate = 1e-3;

// Strategies.
inline constexpr int kPopulation = 16;                // evolution: parents kept for selection
inline constexpr double kScalingAlpha = 0.8;          // scaling: dWr width weight
inline constexpr double kPruningStartMultiple = 4.0;  // the start's peak, x the budget
inline constexpr int kPruningIterations = 4;          // most shrinks from the start to the budget
inline constexpr int kPruningBelowIterations = 3;     // shrinks below the budget
inline constexpr int kPruningFinetuneDivisor = 4;     // a proposal fine-tunes steps / 4

}  // namespace peaknas::search::defaults

#endif  // PEAKNAS_SEARCH_JOB_DEFAULTS_H_
