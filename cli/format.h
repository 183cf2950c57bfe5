// What the client commands print and read, apart from the calls (cli/job_commands.h): state
// names, fixed-point numbers, canonical architecture JSON, CSV fields and aligned tables, a
// job's trial counts and a trial's lineage in words, and a JobSpec file read with errors that
// name the offending key. Library `peaknas_cli_format`, unit-tested in format_test.cc.
//
// Thread-safety: pure functions of their arguments (ReadJobSpec reads the file system).
#ifndef PEAKNAS_CLI_FORMAT_H_
#define PEAKNAS_CLI_FORMAT_H_

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "peaknas/v1/peaknas.pb.h"

namespace peaknas::cli {

using Json = nlohmann::json;

// `name` without `prefix` when it starts with it.
std::string StripPrefix(const std::string& name, std::string_view prefix);
// "RUNNING", "SUCCEEDED": the enum's name without its JOB_STATE_ / TRIAL_STATE_ prefix.
std::string StateName(v1::JobState state);
std::string StateName(v1::TrialState state);
// SUCCEEDED, FAILED or CANCELLED.
bool Ended(v1::JobState state);
// `value` with `digits` decimals.
std::string Fixed(double value, int digits);

// The canonical architecture JSON (search/architecture.h) of a message, "" if it is not valid;
// as a JSON value, null if not valid.
std::string ArchJson(const v1::Architecture& arch);
Json ArchJsonValue(const v1::Architecture& arch);

// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
std::string CsvField(const std::string& value);
void PrintCsv(std::ostream& out, const std::vector<std::vector<std::string>>& rows);
// Left-aligned columns two spaces apart; the last column is not padded.
void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows);

// "pending 1, running 2, succeeded 3, ..." (and the over-budget pruning ancestors among them).
std::string Counts(const v1::TrialCounts& c);
// Trials that ended: succeeded + failed.
int Done(const v1::TrialCounts& c);
// "t-3 level 1, step 2" for an inheriting trial; "-" for one trained from scratch.
std::string LineageText(bool has_lineage, const v1::Lineage& l);

// The noisy input's PSNR of a job (the largest its trials report: one dataset), what a model's
// gain is measured against; 0 before any report.
double NoisyPsnr(const std::vector<v1::Trial>& trials);

// The job's Pareto picture as a standalone SVG (for papers and reports): PSNR gain over the
// noisy input against the predicted peak (log scale), the frontier's points joined by its
// staircase, the other trained trials faded, the budget as a dashed line, and the candidates
// the cost model rejected (never trained) as crosses beyond it. `trials` are the job's
// (ListTrials); the gain is measured against the largest noisy-input PSNR they report.
std::string FrontierSvg(const v1::Job& job, const v1::Frontier& frontier,
                        const std::vector<v1::Trial>& trials);

// A JobSpec from a JSON file (protobuf's JSON mapping). Errors start with the quoted path:
// NOT_FOUND when it cannot be opened; INVALID_ARGUMENT for a directory, malformed JSON (with
// the byte offset), a value that is not an object, an unknown key ("spec.budget.bytez: unknown
// field; allowed: ..."), or a value of the wrong type.
StatusOr<v1::JobSpec> ReadJobSpec(const std::string& path);
// The same from the file's text; errors start with `where` (ReadJobSpec passes the quoted path).
StatusOr<v1::JobSpec> ParseJobSpec(const std::string& text, const std::string& where = "");

}  // namespace peaknas::cli

#endif  // PEAKNAS_CLI_FORMAT_H_
