// The JSON report of a local trial (`peaknas-worker once`): what the trial measured, exactly as
// `serve` reports it to the coordinator (proto::ToProto, the fields of peaknas.v1.TrialMetrics
// under their names), plus what only a local run knows: the spec it ran (seed, data, learning
// rate, shapes, precision), the architecture and its hash, the parent it inherited from, the
// PSNR gain and the ratios of predicted to measured peaks, and the exported file.
//
// Thread-safety: pure functions.
#ifndef PEAKNAS_WORKER_REPORT_H_
#define PEAKNAS_WORKER_REPORT_H_

#include <google/protobuf/message.h>

#include <nlohmann/json.hpp>

#include "worker/trial.h"

namespace peaknas::worker {

// The report's keys: TrialMetrics' fields, then arch, arch_hash, precision, dtype ("fp32"),
// threads, seed, data, lr, train_batch, patch, batch, tile, eval_batch, psnr_gain,
// inference_ratio and train_ratio (predicted / measured; 0 without a measurement), export
// (the file, or null), and parent, parent_arch and importance when the net inherited.
nlohmann::json TrialReport(const TrialSpec& spec, const TrialResult& result);

// Every string and number field of `message` under its proto name, numbers as JSON numbers
// (protobuf's JSON mapping writes 64-bit integers as strings); enums and messages left out.
nlohmann::json MessageNumbersJson(const google::protobuf::Message& message);

}  // namespace peaknas::worker

#endif  // PEAKNAS_WORKER_REPORT_H_
