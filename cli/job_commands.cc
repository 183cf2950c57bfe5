#include "cli/job_commands.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "base/app.h"
#include "base/status.h"
#include "cli/client.h"
#include "cli/format.h"
#include "cli/watch_display.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "peaknas/v1/peaknas.pb.h"
#include "proto/artifact.h"
#include "proto/channel.h"
#include "proto/convert.h"
#include "proto/json.h"
#include "search/architecture.h"
#include "search/units.h"

namespace peaknas::cli {
namespace {

namespace pb = google::protobuf;

// ---------------------------------------------------------------------------------------------
// Declaring the subcommands

CLI::App* AddJobArgument(CLI::App* command, JobCommandOptions& options) {
  command->add_option("JOB", options.job, "Job id, as printed by submit (e.g. j-1)")->required();
  return command;
}

void AddFormatOption(CLI::App* command, JobCommandOptions& options, bool svg = false) {
  std::vector<std::string> formats = {"table", "csv", "json"};
  if (svg) formats.push_back("svg");
  command->add_option("--format", options.format, "Output format")
      ->check(CLI::IsMember(formats))
      ->type_name(svg ? "table|csv|json|svg" : "table|csv|json")
      ->capture_default_str();
}

// ---------------------------------------------------------------------------------------------
// Calls

struct Call {
  std::unique_ptr<v1::JobService::Stub> stub;
  std::string address;

  // One unary call with the CLI's deadline; a failed RPC as ToStatus words it, naming `method`.
  template <typename Request, typename Response>
  StatusOr<Response> Unary(grpc::Status (v1::JobService::Stub::*rpc)(grpc::ClientContext*,
                                                                     const Request&, Response*),
                           const Request& request, std::string_view method) const {
    grpc::ClientContext context;
    SetUnaryDeadline(context);
    Response response;
    PEAKNAS_RETURN_IF_ERROR(
        ToStatus((stub.get()->*rpc)(&context, request, &response), address, method));
    return response;
  }
};
StatusOr<Call> Connect(const JobCommandOptions& options) {
  PEAKNAS_ASSIGN_OR_RETURN(const proto::ClientSecurity security,
                           proto::ReadClientSecurity(options.security));
  return Call{NewJobServiceStub(options.coordinator, security), options.coordinator};
}

StatusOr<v1::Job> GetJob(const Call& call, const std::string& id) {
  v1::GetJobRequest request;
  request.set_job_id(id);
  PEAKNAS_ASSIGN_OR_RETURN(const v1::GetJobResponse response,
                           call.Unary(&v1::JobService::Stub::GetJob, request, "GetJob"));
  return response.job();
}

StatusOr<v1::Frontier> GetFrontier(const Call& call, const std::string& id) {
  v1::GetFrontierRequest request;
  request.set_job_id(id);
  PEAKNAS_ASSIGN_OR_RETURN(const v1::GetFrontierResponse response,
                           call.Unary(&v1::JobService::Stub::GetFrontier, request, "GetFrontier"));
  return response.frontier();
}

StatusOr<std::vector<v1::Trial>> ListTrials(const Call& call, const std::string& id) {
  std::vector<v1::Trial> trials;
  std::string token;
  do {
    v1::ListTrialsRequest request;
    request.set_job_id(id);
    request.set_page_token(token);
    PEAKNAS_ASSIGN_OR_RETURN(const v1::ListTrialsResponse response,
                             call.Unary(&v1::JobService::Stub::ListTrials, request, "ListTrials"));
    trials.insert(trials.end(), response.trials().begin(), response.trials().end());
    token = response.next_page_token();
  } while (!token.empty());
  return trials;
}

// ---------------------------------------------------------------------------------------------
// export

Status ExportArtifact(const Call& call, const JobCommandOptions& options, std::ostream& out) {
  grpc::ClientContext context;
  const proto::ArtifactDownload d =
      proto::DownloadArtifact(*call.stub, context, options.job, options.trial, options.output);
  PEAKNAS_RETURN_IF_ERROR(ToStatus(d.rpc, call.address, "model downloads (GetArtifact)"));
  if (!d.status.ok() && d.status.code() == StatusCode::kInvalidArgument) {
    return Status::InvalidArgument("-o \"" + options.output + "\": " + d.status.message());
  }
  PEAKNAS_RETURN_IF_ERROR(d.status);
  out << "wrote " << options.output << " (" << search::FormatBytes(d.bytes) << ")\n";
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Add...Command

CLI::App* AddSubmitCommand(CLI::App& root, JobCommandOptions& options) {
  CLI::App* c = root.add_subcommand(
      "submit",
      "Submit a search job: JOB.json is a JobSpec in protobuf's JSON mapping (see "
      "examples/job-small.json). Prints the new job's id.");
  c->add_option("JOB.json", options.spec_file, "The job spec file")->required();
  AddCoordinatorOption(*c, options.coordinator, options.security);
  return c;
}

CLI::App* AddJobsCommand(CLI::App& root, JobCommandOptions& options) {
  CLI::App* c = root.add_subcommand("jobs", "List the coordinator's jobs, newest first.");
  AddCoordinatorOption(*c, options.coordinator, options.security);
  return c;
}

CLI::App* AddStatusCommand(CLI::App& root, JobCommandOptions& options) {
  CLI::App* c = root.add_subcommand(
      "status", "Show a job: state, trial counts, frontier size, version and hypervolume, error.");
  AddJobArgument(c, options);
  AddCoordinatorOption(*c, options.coordinator, options.security);
  return c;
}

CLI::App* AddWatchCommand(CLI::App& root, JobCommandOptions& options) {
  CLI::App* c = root.add_subcommand(
      "watch",
      "Follow a job until it ends: a live progress line on a terminal, one line per event "
      "otherwise. Exit status 0 when it succeeds, 1 when it failed or was cancelled.");
  AddJobArgument(c, options);
  AddCoordinatorOption(*c, options.coordinator, options.security);
  return c;
}

CLI::App* AddFrontierCommand(CLI::App& root, JobCommandOptions& options) {
  CLI::App* c = root.add_subcommand(
      "frontier",
      "Print a job's Pareto frontier (PSNR up, predicted peak down, predicted 100-MP latency "
      "down), sorted by peak bytes; the table shows each model's PSNR gain over the noisy input "
      "and, beside the predicted latency (the roofline of a 10000x10000 image denoised seam-free "
      "at the largest tile that fits the budget), the same pass as its worker measured it, on "
      "the device named. json: a list of {trial, arch, arch_hash, psnr, peak_bytes, "
      "latency_100mp_s, measured_latency_100mp_s (null: not measured), measured_on, parent, "
      "role}. svg: the Pareto picture as a standalone SVG (gain against peak, the budget line, "
      "the rejected candidates).");
  AddJobArgument(c, options);
  AddFormatOption(c, options, /*svg=*/true);
  AddCoordinatorOption(*c, options.coordinator, options.security);
  return c;
}

CLI::App* AddTrialsCommand(CLI::App& root, JobCommandOptions& options) {
  CLI::App* c = root.add_subcommand(
      "trials", "Print every trial of a job, rejected ones included with their reason.");
  AddJobArgument(c, options);
  AddFormatOption(c, options);
  AddCoordinatorOption(*c, options.coordinator, options.security);
  return c;
}

CLI::App* AddCancelCommand(CLI::App& root, JobCommandOptions& options) {
  CLI::App* c = root.add_subcommand("cancel", "Cancel a job (idempotent); prints its state.");
  AddJobArgument(c, options);
  AddCoordinatorOption(*c, options.coordinator, options.security);
  return c;
}

CLI::App* AddExportCommand(CLI::App& root, JobCommandOptions& options) {
  CLI::App* c = root.add_subcommand(
      "export",
      "Download a trial's trained model to FILE (written to FILE.partial, then renamed).");
  AddJobArgument(c, options);
  c->add_option("TRIAL", options.trial, "Trial id (e.g. t-3)")->required();
  c->add_option("-o,--output", options.output, "Where to write the model")
      ->required()
      ->type_name("FILE");
  AddCoordinatorOption(*c, options.coordinator, options.security);
  return c;
}

CLI::App* AddWorkersCommand(CLI::App& root, JobCommandOptions& options) {
  CLI::App* c = root.add_subcommand(
      "workers",
      "List the workers online (seen within one lease duration, or running a trial): device, "
      "memory, datasets, last sighting and the trials each runs.");
  c->add_flag("--all", options.all, "Every registered worker, offline ones too");
  AddCoordinatorOption(*c, options.coordinator, options.security);
  return c;
}

CLI::App* AddHealthCommand(CLI::App& root, JobCommandOptions& options) {
  CLI::App* c = root.add_subcommand(
      "health",
      "Ask a coordinator whether it serves (gRPC's standard health check, grpc.health.v1): "
      "prints SERVING and exits 0; exits 1 saying what it answered, or why it cannot be "
      "reached. For container health checks and readiness probes.");
  c->add_option("--service", options.service,
                "The service to ask about, e.g. peaknas.v1.JobService. Default: the whole "
                "server.")
      ->type_name("NAME");
  AddCoordinatorOption(*c, options.coordinator, options.security);
  return c;
}

CLI::App* AddCalibrationCommand(CLI::App& root, JobCommandOptions& options) {
  CLI::App* c = root.add_subcommand(
      "calibration",
      "Show the device calibrations the coordinator has fitted from what workers measured: per "
      "device profile, framework and pass, the line from the cost model's allocator peak to the "
      "peak the process (CPU) or device (CUDA) reached.");
  c->footer(
      "A calibration predicts\n"
      "  device peak = margin x (overhead + slope x predicted allocator peak)\n"
      "fitted on the newest 1000 trials of each device profile and framework. The margin makes\n"
      "it an upper bound for networks the fit has not seen, at 99 % coverage: the normal\n"
      "prediction bound of the samples' measured/line ratios below 100 samples (wide while they\n"
      "are few), their 0.99 quantile from then on. RATIOS is the spread of measured/line. A pass\n"
      "needs 4 samples of different sizes before it has a fit.\n"
      "\n"
      "Examples:\n"
      "  peaknas calibration\n"
      "  peaknas calibration --device-profile cpu --format json > cpu.json\n"
      "  peaknas estimate --arch examples/unet4.json --calibration cpu.json");
  c->add_option("--device-profile", options.device_profile,
                "Only this device profile (cpu, h100, ...)")
      ->type_name("NAME");
  c->add_option("--framework", options.framework, "Only this framework (\"libtorch 1.13.0\")")
      ->type_name("NAME");
  c->add_option("--format", options.format, "Output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->type_name("table|json")
      ->capture_default_str();
  AddCoordinatorOption(*c, options.coordinator, options.security);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Run...

Status RunSubmit(const JobCommandOptions& options, std::ostream& out) {
  PEAKNAS_ASSIGN_OR_RETURN(v1::JobSpec spec, ReadJobSpec(options.spec_file));
  PEAKNAS_ASSIGN_OR_RETURN(const Call call, Connect(options));
  v1::SubmitJobRequest request;
  *request.mutable_spec() = std::move(spec);
  PEAKNAS_ASSIGN_OR_RETURN(const v1::SubmitJobResponse response,
                           call.Unary(&v1::JobService::Stub::SubmitJob, request, "SubmitJob"));
  out << response.job().id() << "\n";
  return Status::Ok();
}

Status RunJobs(const JobCommandOptions& options, std::ostream& out) {
  PEAKNAS_ASSIGN_OR_RETURN(const Call call, Connect(options));
  std::vector<std::vector<std::string>> rows = {
      {"ID", "NAME", "STATE", "DONE", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "REJECTED"}};
  std::string token;
  do {
    v1::ListJobsRequest request;
    request.set_page_token(token);
    PEAKNAS_ASSIGN_OR_RETURN(const v1::ListJobsResponse response,
                             call.Unary(&v1::JobService::Stub::ListJobs, request, "ListJobs"));
    for (const v1::Job& job : response.jobs()) {
      const v1::TrialCounts& c = job.counts();
      rows.push_back({job.id(), job.spec().name().empty() ? "-" : base::OneLine(job.spec().name()),
                      StateName(job.state()),
                      std::to_string(Done(c)) + "/" + std::to_string(job.spec().trials()),
                      std::to_string(c.pending()), std::to_string(c.running()),
                      std::to_string(c.succeeded()), std::to_string(c.failed()),
                      std::to_string(c.rejected())});
    }
    token = response.next_page_token();
  } while (!token.empty());
  PrintTable(out, rows);
  return Status::Ok();
}

Status RunWorkers(const JobCommandOptions& options, std::ostream& out) {
  PEAKNAS_ASSIGN_OR_RETURN(const Call call, Connect(options));
  v1::ListWorkersRequest request;
  request.set_all(options.all);
  PEAKNAS_ASSIGN_OR_RETURN(const v1::ListWorkersResponse response,
                           call.Unary(&v1::JobService::Stub::ListWorkers, request, "ListWorkers"));
  const auto now = google::protobuf::util::TimeUtil::GetCurrentTime();
  std::vector<std::vector<std::string>> rows = {
      {"ID", "NAME", "DEVICE", "MEMORY", "DATASETS", "STATE", "LAST SEEN", "TRIALS"}};
  for (const v1::Worker& w : response.workers()) {
    std::string datasets, trials;
    for (const std::string& d : w.datasets()) datasets += (datasets.empty() ? "" : ",") + d;
    for (const std::string& t : w.trial_ids()) trials += (trials.empty() ? "" : ",") + t;
    const std::int64_t ago =
        google::protobuf::util::TimeUtil::DurationToSeconds(now - w.last_seen());
    rows.push_back({w.id(), base::OneLine(w.name()), w.device(),
                    w.memory_bytes() > 0 ? search::FormatBytes(w.memory_bytes()) : "-",
                    datasets.empty() ? "any" : datasets,
                    !w.online()              ? "offline"
                    : w.trial_ids_size() > 0 ? "busy"
                                             : "idle",
                    std::to_string(std::max<std::int64_t>(0, ago)) + " s ago",
                    trials.empty() ? "-" : trials});
  }
  if (rows.size() == 1) {
    out << (options.all ? "no worker has registered\n"
                        : "no worker online (--all lists every one)\n");
    return Status::Ok();
  }
  PrintTable(out, rows);
  return Status::Ok();
}

namespace {

// "1.080 x (183.2 MiB + 1.602 x predicted)", or why there is no fit.
std::string DescribeFit(const v1::CalibrationFit& fit) {
  if (!fit.unfitted().empty()) return "no fit: " + base::OneLine(fit.unfitted());
  const std::string overhead =
      fit.overhead_bytes() < 0
          ? "- " + search::FormatBytes(static_cast<std::int64_t>(-fit.overhead_bytes()))
          : search::FormatBytes(static_cast<std::int64_t>(fit.overhead_bytes()));
  return Fixed(fit.margin(), 3) + " x (" + Fixed(fit.slope(), 3) + " x predicted " +
         (fit.overhead_bytes() < 0 ? "" : "+ ") + overhead + ")";
}

}  // namespace

Status RunHealth(const JobCommandOptions& options, std::ostream& out) {
  namespace health = grpc::health::v1;
  PEAKNAS_ASSIGN_OR_RETURN(const proto::ClientSecurity security,
                           proto::ReadClientSecurity(options.security));
  const auto stub =
      health::Health::NewStub(proto::CoordinatorChannel(options.coordinator, security));
  grpc::ClientContext context;
  SetUnaryDeadline(context);
  health::HealthCheckRequest request;
  request.set_service(options.service);
  health::HealthCheckResponse response;
  const grpc::Status checked = stub->Check(&context, request, &response);
  if (checked.error_code() == grpc::StatusCode::NOT_FOUND) {
    return Status::NotFound("the coordinator at " + options.coordinator +
                            " does not know the service \"" + options.service + "\"");
  }
  PEAKNAS_RETURN_IF_ERROR(ToStatus(checked, options.coordinator, "health checking"));
  const std::string& answer = health::HealthCheckResponse::ServingStatus_Name(response.status());
  if (response.status() != health::HealthCheckResponse::SERVING) {
    return Status::Unavailable("the coordinator at " + options.coordinator + " answers " + answer +
                               (options.service.empty() ? "" : " for " + options.service));
  }
  out << answer << "\n";
  return Status::Ok();
}

Status RunCalibration(const JobCommandOptions& options, std::ostream& out) {
  PEAKNAS_ASSIGN_OR_RETURN(const Call call, Connect(options));
  v1::ListCalibrationsRequest request;
  request.set_device_profile(options.device_profile);
  request.set_framework(options.framework);
  PEAKNAS_ASSIGN_OR_RETURN(
      const v1::ListCalibrationsResponse response,
      call.Unary(&v1::JobService::Stub::ListCalibrations, request, "ListCalibrations"));
  if (options.format == "json") {
    out << proto::ToJson(response, {.always_print_primitive_fields = true}) << "\n";
    return Status::Ok();
  }
  if (response.calibrations_size() == 0) {
    out << "no calibration yet: workers report one sample per pass with every trial\n";
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows = {
      {"DEVICE", "FRAMEWORK", "PASS", "SAMPLES", "DEVICE PEAK", "RATIOS", "UPDATED"}};
  for (const v1::Calibration& c : response.calibrations()) {
    for (const auto& [pass, fit] :
         {std::pair<const char*, const v1::CalibrationFit*>{"inference", &c.inference()},
          {"training", &c.training()},
          {"trial", &c.trial()}}) {
      if (fit->samples() == 0) continue;
      rows.push_back({c.device_profile(), c.framework(), pass, std::to_string(fit->samples()),
                      DescribeFit(*fit),
                      fit->unfitted().empty()
                          ? Fixed(fit->min_ratio(), 3) + "-" + Fixed(fit->max_ratio(), 3)
                          : "-",
                      google::protobuf::util::TimeUtil::ToString(c.updated()).substr(0, 19)});
    }
  }
  PrintTable(out, rows);
  return Status::Ok();
}

namespace {

// "1.00 GiB INFERENCE", or for a budget in device bytes "300.00 MiB INFERENCE on the device
// (104.00 MiB allocator, libtorch 1.13.0 calibration of cpu)".
std::string Budget(const v1::Budget& b) {
  const std::string mode = StripPrefix(v1::BudgetMode_Name(b.mode()), "BUDGET_MODE_");
  if (b.device_bytes() == 0) return search::FormatBytes(b.bytes()) + " " + mode;
  return search::FormatBytes(b.device_bytes()) + " " + mode + " on the device (" +
         search::FormatBytes(b.bytes()) + " allocator, " + b.device_calibration().framework() +
         " calibration of " + b.device_calibration().device_profile() + ")";
}

}  // namespace

Status RunStatus(const JobCommandOptions& options, std::ostream& out) {
  PEAKNAS_ASSIGN_OR_RETURN(const Call call, Connect(options));
  PEAKNAS_ASSIGN_OR_RETURN(const v1::Job job, GetJob(call, options.job));
  PEAKNAS_ASSIGN_OR_RETURN(const v1::Frontier frontier, GetFrontier(call, options.job));
  const v1::JobSpec& spec = job.spec();
  std::vector<std::vector<std::string>> rows = {
      {"job", job.id()},
      {"name", spec.name().empty() ? "-" : base::OneLine(spec.name())},
      {"state", StateName(job.state())},
      {"strategy", StripPrefix(v1::Strategy_Name(spec.strategy()), "STRATEGY_")},
      {"budget", Budget(spec.budget())},
      {"trials", std::to_string(Done(job.counts())) + "/" + std::to_string(spec.trials()) +
                     " done (" + Counts(job.counts()) + ")"},
      {"frontier", std::to_string(frontier.points_size()) + " points, version " +
                       std::to_string(frontier.version()) + ", hypervolume " +
                       Fixed(frontier.hypervolume(), 4)},
  };
  if (!job.error().empty()) rows.push_back({"error", base::OneLine(job.error())});
  PrintTable(out, rows);
  return Status::Ok();
}

Status RunWatch(const JobCommandOptions& options, std::ostream& out, bool live) {
  PEAKNAS_ASSIGN_OR_RETURN(const Call call, Connect(options));
  PEAKNAS_ASSIGN_OR_RETURN(const v1::Job job, GetJob(call, options.job));
  WatchDisplay display(out, live, job);
  if (live) display.Redraw();

  grpc::ClientContext context;
  v1::WatchJobRequest request;
  request.set_job_id(options.job);
  std::unique_ptr<grpc::ClientReader<v1::JobEvent>> reader = call.stub->WatchJob(&context, request);
  v1::JobEvent event;
  while (reader->Read(&event)) {
    display.Show(event);
    if (event.has_job_finished()) break;
  }
  if (display.finished()) context.TryCancel();
  const grpc::Status finish = reader->Finish();
  display.End();
  if (!display.finished()) {
    PEAKNAS_RETURN_IF_ERROR(ToStatus(finish, call.address, "WatchJob"));
    // The stream closed without a job_finished event: ask for the state.
    PEAKNAS_ASSIGN_OR_RETURN(const v1::Job now, GetJob(call, options.job));
    if (!Ended(now.state())) {
      return Status(StatusCode::kAborted, "the event stream of job " + options.job +
                                              " closed while it is " + StateName(now.state()));
    }
    if (now.state() == v1::JOB_STATE_SUCCEEDED) return Status::Ok();
    return Status(StatusCode::kAborted,
                  "job " + now.id() + " ended " + StateName(now.state()) +
                      (now.error().empty() ? "" : ": " + base::OneLine(now.error())));
  }
  if (display.state() == v1::JOB_STATE_SUCCEEDED) return Status::Ok();
  return Status(StatusCode::kAborted,
                "job " + options.job + " ended " + StateName(display.state()) +
                    (display.error().empty() ? "" : ": " + base::OneLine(display.error())));
}

Status RunFrontier(const JobCommandOptions& options, std::ostream& out) {
  PEAKNAS_ASSIGN_OR_RETURN(const Call call, Connect(options));
  PEAKNAS_ASSIGN_OR_RETURN(const v1::Frontier frontier, GetFrontier(call, options.job));
  std::vector<v1::FrontierPoint> points(frontier.points().begin(), frontier.points().end());
  std::stable_sort(points.begin(), points.end(),
                   [](const auto& a, const auto& b) { return a.peak_bytes() < b.peak_bytes(); });
  if (options.format == "json") {
    Json list = Json::array();
    for (const auto& p : points) {
      list.push_back(
          {{"trial", p.trial_id()},
           {"arch", ArchJsonValue(p.architecture())},
           {"arch_hash", p.arch_hash()},
           {"psnr", p.psnr()},
           {"peak_bytes", p.peak_bytes()},
           {"latency_100mp_s", p.latency_100mp_s()},
           {"measured_latency_100mp_s",
            p.measured_latency_100mp_s() > 0 ? Json(p.measured_latency_100mp_s()) : Json()},
           {"measured_on", p.measured_on()},
           {"parent", p.lineage().parent_trial_id()},
           {"role", p.lineage().role()}});
    }
    out << list.dump(2) << "\n";
    return Status::Ok();
  }
  if (options.format == "csv") {
    std::vector<std::vector<std::string>> rows = {{"trial", "psnr", "peak_bytes", "latency_100mp_s",
                                                   "arch_hash", "arch", "parent", "role",
                                                   "measured_latency_100mp_s", "measured_on"}};
    for (const auto& p : points) {
      rows.push_back({p.trial_id(), Fixed(p.psnr(), 4), std::to_string(p.peak_bytes()),
                      Fixed(p.latency_100mp_s(), 6), p.arch_hash(), ArchJson(p.architecture()),
                      p.lineage().parent_trial_id(), p.lineage().role(),
                      p.measured_latency_100mp_s() > 0 ? Fixed(p.measured_latency_100mp_s(), 6)
                                                       : std::string(),
                      p.measured_on()});
    }
    PrintCsv(out, rows);
    return Status::Ok();
  }
  PEAKNAS_ASSIGN_OR_RETURN(const std::vector<v1::Trial> trials, ListTrials(call, options.job));
  if (options.format == "svg") {
    PEAKNAS_ASSIGN_OR_RETURN(const v1::Job job, GetJob(call, options.job));
    out << FrontierSvg(job, frontier, trials);
    return Status::Ok();
  }
  const double noisy = NoisyPsnr(trials);
  out << "job " << frontier.job_id() << ": " << points.size() << " points, version "
      << frontier.version() << ", hypervolume " << Fixed(frontier.hypervolume(), 4) << "\n";
  std::vector<std::vector<std::string>> rows = {{"TRIAL", "PSNR", "GAIN", "PEAK", "LATENCY_100MP",
                                                 "MEASURED", "ARCH_HASH", "LINEAGE", "ARCH"}};
  for (const auto& p : points) {
    rows.push_back({p.trial_id(), Fixed(p.psnr(), 2) + " dB",
                    (p.psnr() >= noisy ? "+" : "") + Fixed(p.psnr() - noisy, 2) + " dB",
                    search::FormatBytes(p.peak_bytes()), Fixed(p.latency_100mp_s(), 2) + " s",
                    p.measured_latency_100mp_s() > 0
                        ? Fixed(p.measured_latency_100mp_s(), 2) + " s " + p.measured_on()
                        : "-",
                    p.arch_hash(), LineageText(p.has_lineage(), p.lineage()),
                    ArchJson(p.architecture())});
  }
  PrintTable(out, rows);
  return Status::Ok();
}

Status RunTrials(const JobCommandOptions& options, std::ostream& out) {
  PEAKNAS_ASSIGN_OR_RETURN(const Call call, Connect(options));
  PEAKNAS_ASSIGN_OR_RETURN(const std::vector<v1::Trial> trials, ListTrials(call, options.job));
  auto psnr = [](const v1::Trial& t) {
    return t.state() == v1::TRIAL_STATE_SUCCEEDED ? Fixed(t.metrics().psnr(), 4) : std::string();
  };
  if (options.format == "json") {
    Json list = Json::array();
    for (const auto& t : trials) {
      list.push_back(
          {{"trial", t.id()},
           {"state", StateName(t.state())},
           {"arch", ArchJsonValue(t.architecture())},
           {"arch_hash", t.arch_hash()},
           {"reason", t.reason()},
           {"predicted_inference_peak_bytes", t.predicted_inference_peak_bytes()},
           {"predicted_train_peak_bytes", t.predicted_train_peak_bytes()},
           {"predicted_latency_100mp_s", t.predicted_latency_100mp_s()},
           {"psnr", t.state() == v1::TRIAL_STATE_SUCCEEDED ? Json(t.metrics().psnr()) : Json()},
           {"attempts", t.attempts()},
           {"worker", t.worker_id()},
           {"lineage", t.has_lineage() ? Json{{"parent", t.lineage().parent_trial_id()},
                                              {"role", t.lineage().role()},
                                              {"iteration", t.lineage().iteration()},
                                              {"level", t.lineage().level()},
                                              {"over_budget", t.lineage().over_budget()},
                                              {"steps", t.lineage().steps()},
                                              {"total_steps", t.lineage().total_steps()},
                                              {"parent_peak", t.lineage().parent_peak()}}
                                       : Json()}});
    }
    out << list.dump(2) << "\n";
    return Status::Ok();
  }
  if (options.format == "csv") {
    std::vector<std::vector<std::string>> rows = {
        {"trial", "state", "predicted_inference_peak_bytes", "predicted_train_peak_bytes",
         "predicted_latency_100mp_s", "psnr", "attempts", "arch_hash", "reason", "arch", "parent",
         "role", "iteration", "over_budget", "total_steps"}};
    for (const auto& t : trials) {
      const v1::Lineage& l = t.lineage();
      rows.push_back(
          {t.id(), StateName(t.state()), std::to_string(t.predicted_inference_peak_bytes()),
           std::to_string(t.predicted_train_peak_bytes()), Fixed(t.predicted_latency_100mp_s(), 6),
           psnr(t), std::to_string(t.attempts()), t.arch_hash(), base::OneLine(t.reason()),
           ArchJson(t.architecture()), l.parent_trial_id(), l.role(),
           t.has_lineage() ? std::to_string(l.iteration()) : "",
           t.has_lineage() ? (l.over_budget() ? "true" : "false") : "",
           t.has_lineage() ? std::to_string(l.total_steps()) : ""});
    }
    PrintCsv(out, rows);
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows = {{"TRIAL", "STATE", "INFER_PEAK", "TRAIN_PEAK",
                                                 "PSNR", "ATTEMPTS", "ARCH_HASH", "LINEAGE",
                                                 "REASON"}};
  for (const auto& t : trials) {
    const std::string p = psnr(t);
    rows.push_back(
        {t.id(), StateName(t.state()), search::FormatBytes(t.predicted_inference_peak_bytes()),
         search::FormatBytes(t.predicted_train_peak_bytes()),
         p.empty() ? "-" : Fixed(t.metrics().psnr(), 2) + " dB", std::to_string(t.attempts()),
         t.arch_hash(), LineageText(t.has_lineage(), t.lineage()),
         t.reason().empty() ? "-" : base::OneLine(t.reason())});
  }
  PrintTable(out, rows);
  return Status::Ok();
}

Status RunCancel(const JobCommandOptions& options, std::ostream& out) {
  PEAKNAS_ASSIGN_OR_RETURN(const Call call, Connect(options));
  v1::CancelJobRequest request;
  request.set_job_id(options.job);
  PEAKNAS_ASSIGN_OR_RETURN(const v1::CancelJobResponse response,
                           call.Unary(&v1::JobService::Stub::CancelJob, request, "CancelJob"));
  out << response.job().id() << " " << StateName(response.job().state()) << "\n";
  return Status::Ok();
}

Status RunExport(const JobCommandOptions& options, std::ostream& out) {
  PEAKNAS_ASSIGN_OR_RETURN(const Call call, Connect(options));
  return ExportArtifact(call, options, out);
}

}  // namespace peaknas::cli
