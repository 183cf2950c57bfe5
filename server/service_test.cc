// The gRPC service end to end in one process: the real server on 127.0.0.1:0 over a real
// SQLite file, driven by generated client stubs as a worker and the CLI would.
#include "server/service.h"

#include <fcntl.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/sha256.h"
#include "base/subprocess.h"
#include "peaknas/v1/peaknas.grpc.pb.h"
#include "server/coordinator.h"
#include "server/test_coordinator.h"
#include "server/test_job_spec.h"

namespace peaknas::server {
namespace {

namespace fs = std::filesystem;

// The shared test job with the default fidelity (200 steps).
v1::JobSpec Spec(int trials, int parallelism) {
  v1::JobSpec spec = testing::RandomJobSpec(trials, parallelism);
  spec.clear_fidelity();
  return spec;
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "peaknas-service-XXXXXX").string();
    dir_ = mkdtemp(pattern.data());
    CoordinatorOptions options;
    options.registration_burst = 10'000;  // the parked-polls test registers 2 000 at once
    ASSERT_NO_FATAL_FAILURE(testing::OpenSqliteCoordinator(
        (dir_ / "db.sqlite").string(), (dir_ / "art").string(), &coordinator_, options));
    auto server = GrpcServer::Start(*coordinator_, "127.0.0.1:0");
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    ASSERT_GT(server_->port(), 0);
    auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel);
    workers_ = v1::WorkerService::NewStub(channel);
  }
  void TearDown() override {
    server_.reset();
    coordinator_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // SubmitJob, RegisterWorker and LeaseTrial as a client calls them, each under a fresh deadline.
  grpc::Status Submit(const v1::JobSpec& spec, v1::SubmitJobResponse* submitted, int seconds = 10) {
    v1::SubmitJobRequest submit;
    *submit.mutable_spec() = spec;
    return jobs_->SubmitJob(Context(seconds).get(), submit, submitted);
  }
  grpc::Status Register(const std::string& name, const std::string& device,
                        v1::RegisterWorkerResponse* worker) {
    v1::RegisterWorkerRequest reg;
    reg.set_name(name);
    reg.set_device(device);
    return workers_->RegisterWorker(Context().get(), reg, worker);
  }
  grpc::Status Lease(const std::string& worker_id, double wait_seconds,
                     v1::LeaseTrialResponse* leased) {
    v1::LeaseTrialRequest lease;
    lease.set_worker_id(worker_id);
    lease.set_wait_seconds(wait_seconds);
    return workers_->LeaseTrial(Context().get(), lease, leased);
  }

  // A leased trial of a fresh one-trial job, leased by a new worker `name` (its id to
  // `*worker_id` where given).
  v1::TrialAssignment LeaseOne(const std::string& name = "artifact-worker",
                               std::string* worker_id = nullptr) {
    v1::RegisterWorkerResponse worker;
    EXPECT_TRUE(Register(name, "cpu", &worker).ok());
    if (worker_id != nullptr) *worker_id = worker.worker_id();
    v1::SubmitJobResponse submitted;
    EXPECT_TRUE(Submit(Spec(1, 1), &submitted).ok());
    v1::LeaseTrialResponse leased;
    EXPECT_TRUE(Lease(worker.worker_id(), 5, &leased).ok());
    EXPECT_TRUE(leased.has_assignment());
    return leased.assignment();
  }

  // GetArtifact's stream, with the context it lives in.
  struct Download {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReader<v1::ArtifactChunk>> reader;
  };
  Download OpenArtifact(const std::string& job, const std::string& trial) {
    v1::GetArtifactRequest get;
    get.set_job_id(job);
    get.set_trial_id(trial);
    Download download{Context(), nullptr};
    download.reader = jobs_->GetArtifact(download.context.get(), get);
    return download;
  }
  // The status of a download that must send nothing.
  grpc::StatusCode DownloadStatus(const std::string& job, const std::string& trial) {
    Download download = OpenArtifact(job, trial);
    v1::ArtifactChunk chunk;
    EXPECT_FALSE(download.reader->Read(&chunk));
    return download.reader->Finish().error_code();
  }

  // Waits (up to a minute) until exactly `n` calls are parked at the server.
  bool ParkedReaches(std::size_t n) {
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (server_->parked_calls() != n) {
      if (std::chrono::steady_clock::now() > limit) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  static std::unique_ptr<grpc::ClientContext> Context(int seconds = 10) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
    return context;
  }

  fs::path dir_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
};

TEST_F(ServiceTest, WorkerLeasesReportsAndTheFrontierIsServed) {
  v1::RegisterWorkerResponse worker;
  ASSERT_TRUE(Register("test-worker", "cpu", &worker).ok());
  ASSERT_FALSE(worker.worker_id().empty());

  v1::SubmitJobResponse submitted;
  auto status = Submit(Spec(3, 1), &submitted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::string job_id = submitted.job().id();

  for (int i = 0; i < 3; ++i) {
    v1::LeaseTrialResponse leased;
    status = Lease(worker.worker_id(), 5, &leased);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_TRUE(leased.has_assignment());
    const auto& a = leased.assignment();
    EXPECT_EQ(a.job_id(), job_id);
    EXPECT_EQ(a.dataset(), "synthetic");
    EXPECT_EQ(a.fidelity().steps(), 200);

    v1::HeartbeatRequest beat;
    beat.set_lease_id(a.lease_id());
    beat.set_fencing_token(a.fencing_token());
    v1::HeartbeatResponse beat_answer;
    ASSERT_TRUE(workers_->Heartbeat(Context().get(), beat, &beat_answer).ok());
    EXPECT_EQ(beat_answer.action(), v1::HEARTBEAT_ACTION_KEEP_GOING);

    v1::ReportResultRequest report;
    report.set_lease_id(a.lease_id());
    report.set_fencing_token(a.fencing_token());
    report.mutable_metrics()->set_psnr(30 + i);
    report.mutable_metrics()->set_noisy_psnr(20);
    v1::ReportResultResponse ack;
    status = workers_->ReportResult(Context().get(), report, &ack);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(ack.accepted());

    // The same lease with a stale token: refused.
    report.set_fencing_token(a.fencing_token() - 1);
    status = workers_->ReportResult(Context().get(), report, &ack);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }

  v1::GetFrontierRequest get_frontier;
  get_frontier.set_job_id(job_id);
  v1::GetFrontierResponse frontier;
  ASSERT_TRUE(jobs_->GetFrontier(Context().get(), get_frontier, &frontier).ok());
  EXPECT_GT(frontier.frontier().version(), 0);
  ASSERT_GT(frontier.frontier().points_size(), 0);
  for (const auto& p : frontier.frontier().points()) {
    EXPECT_LE(p.peak_bytes(), std::int64_t{32} << 20);
  }

  v1::GetJobRequest get_job;
  get_job.set_job_id(job_id);
  v1::GetJobResponse job;
  ASSERT_TRUE(jobs_->GetJob(Context().get(), get_job, &job).ok());
  EXPECT_EQ(job.job().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job.job().counts().succeeded(), 3);

  v1::ListTrialsRequest list;
  list.set_job_id(job_id);
  v1::ListTrialsResponse trials;
  ASSERT_TRUE(jobs_->ListTrials(Context().get(), list, &trials).ok());
  EXPECT_EQ(trials.trials_size(), job.job().counts().succeeded() + job.job().counts().rejected());

  // WatchJob on a finished job: the events so far, then job_finished, then the stream ends.
  v1::WatchJobRequest watch;
  watch.set_job_id(job_id);
  auto context = Context();
  auto reader = jobs_->WatchJob(context.get(), watch);
  v1::JobEvent event;
  bool finished = false;
  std::int64_t last_sequence = 0;
  while (reader->Read(&event)) {
    EXPECT_EQ(event.sequence(), last_sequence + 1);
    last_sequence = event.sequence();
    finished = event.has_job_finished();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_TRUE(finished);

  v1::ListJobsRequest list_jobs;
  v1::ListJobsResponse all;
  ASSERT_TRUE(jobs_->ListJobs(Context().get(), list_jobs, &all).ok());
  ASSERT_EQ(all.jobs_size(), 1);
}

// A watcher connected before any work sees each trial start and finish as it commits, then
// job_finished; a second watcher resuming after a sequence gets exactly the rest.
TEST_F(ServiceTest, WatchJobFollowsLiveAndResumesAfterASequence) {
  v1::SubmitJobResponse submitted;
  ASSERT_TRUE(Submit(Spec(2, 1), &submitted).ok());
  const std::string job_id = submitted.job().id();

  v1::WatchJobRequest watch;
  watch.set_job_id(job_id);
  auto watch_context = Context(60);
  auto reader = jobs_->WatchJob(watch_context.get(), watch);
  std::vector<v1::JobEvent> seen;
  const auto next = [&]() -> const v1::JobEvent& {
    v1::JobEvent event;
    EXPECT_TRUE(reader->Read(&event)) << "the stream ended early";
    seen.push_back(event);
    return seen.back();
  };
  // First the rejections recorded at submit time: the log exists before any lease.
  for (int i = 0; i < submitted.job().counts().rejected(); ++i) {
    ASSERT_TRUE(next().has_trial_rejected()) << seen.back().DebugString();
  }

  v1::RegisterWorkerResponse worker;
  ASSERT_TRUE(Register("w", "", &worker).ok());
  for (int i = 0; i < 2; ++i) {
    v1::LeaseTrialResponse leased;
    ASSERT_TRUE(Lease(worker.worker_id(), 0, &leased).ok());
    ASSERT_TRUE(leased.has_assignment());
    // The stream shows the lease before the worker reports anything.
    // (After the previous result: its frontier change and the rejections of the refill.)
    const v1::JobEvent* event = &next();
    while (event->has_frontier_changed() || event->has_trial_rejected()) event = &next();
    ASSERT_TRUE(event->has_trial_started()) << event->DebugString();
    EXPECT_EQ(event->trial_started().trial().id(), leased.assignment().trial_id());
    v1::ReportResultRequest report;
    report.set_lease_id(leased.assignment().lease_id());
    report.set_fencing_token(leased.assignment().fencing_token());
    report.mutable_metrics()->set_psnr(30 - i);
    report.mutable_metrics()->set_noisy_psnr(20);
    v1::ReportResultResponse ack;
    ASSERT_TRUE(workers_->ReportResult(Context().get(), report, &ack).ok());
    ASSERT_TRUE(next().has_trial_finished());
  }
  while (!seen.back().has_job_finished()) next();
  v1::JobEvent extra;
  EXPECT_FALSE(reader->Read(&extra));
  EXPECT_TRUE(reader->Finish().ok());
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].sequence(), static_cast<std::int64_t>(i + 1));
  }

  const std::size_t half = seen.size() / 2;
  watch.set_after_sequence(seen[half - 1].sequence());
  auto resume_context = Context();
  auto resumed = jobs_->WatchJob(resume_context.get(), watch);
  v1::JobEvent event;
  std::size_t at = half;
  while (resumed->Read(&event)) {
    ASSERT_LT(at, seen.size());
    EXPECT_EQ(event.SerializeAsString(), seen[at].SerializeAsString());
    ++at;
  }
  EXPECT_TRUE(resumed->Finish().ok());
  EXPECT_EQ(at, seen.size());

  watch.set_after_sequence(-1);
  auto bad_context = Context();
  auto bad = jobs_->WatchJob(bad_context.get(), watch);
  while (bad->Read(&event)) {
  }
  EXPECT_EQ(bad->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServiceTest, LongPollReturnsEmptyWhenThereIsNoWork) {
  v1::RegisterWorkerResponse worker;
  ASSERT_TRUE(Register("idle", "", &worker).ok());
  v1::LeaseTrialResponse leased;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(Lease(worker.worker_id(), 0.3, &leased).ok());
  EXPECT_FALSE(leased.has_assignment());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(250));
}

// Threads of this process now (server and client share it).
int ThreadCount() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// Counts callback-API client calls as they complete.
struct Completions {
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  std::vector<grpc::Status> failures;
  void Add(const grpc::Status& status) {
    std::lock_guard lock(mu);
    ++done;
    if (!status.ok()) failures.push_back(status);
    cv.notify_all();
  }
  bool WaitFor(int n, std::chrono::seconds limit) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, limit, [&] { return done >= n; });
  }
};

// A parked long poll holds no thread: with a few thousand waiting the process runs tens of
// threads, a unary call is still answered, and when work arrives every poll gets a trial.
TEST_F(ServiceTest, ThousandsOfParkedLongPollsHoldNoThreadsAndAreAllAnswered) {
  constexpr int kWorkers = 2000;
  std::vector<v1::RegisterWorkerRequest> registrations(kWorkers);
  std::vector<v1::RegisterWorkerResponse> registered(kWorkers);
  std::vector<grpc::ClientContext> register_contexts(kWorkers);
  Completions registering;
  for (int i = 0; i < kWorkers; ++i) {
    registrations[i].set_name("idle-" + std::to_string(i));
    workers_->async()->RegisterWorker(&register_contexts[i], &registrations[i], &registered[i],
                                      [&](grpc::Status s) { registering.Add(s); });
  }
  ASSERT_TRUE(registering.WaitFor(kWorkers, std::chrono::seconds(120)));
  ASSERT_TRUE(registering.failures.empty()) << registering.failures[0].error_message();

  const int threads_before = ThreadCount();
  std::vector<v1::LeaseTrialRequest> polls(kWorkers);
  std::vector<v1::LeaseTrialResponse> answers(kWorkers);
  std::vector<grpc::ClientContext> poll_contexts(kWorkers);
  Completions polling;
  for (int i = 0; i < kWorkers; ++i) {
    polls[i].set_worker_id(registered[i].worker_id());
    polls[i].set_wait_seconds(120);
    poll_contexts[i].set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(180));
    workers_->async()->LeaseTrial(&poll_contexts[i], &polls[i], &answers[i],
                                  [&](grpc::Status s) { polling.Add(s); });
  }
  ASSERT_TRUE(ParkedReaches(kWorkers)) << server_->parked_calls();
  const int threads_parked = ThreadCount();
  EXPECT_LT(threads_parked, 100) << "before the polls: " << threads_before;
  EXPECT_EQ(polling.done, 0);

  v1::ListJobsResponse listed;
  ASSERT_TRUE(jobs_->ListJobs(Context().get(), {}, &listed).ok());

  // Two jobs (parallelism is at most 1024), each queueing half the trials at once.
  for (int job = 0; job < 2; ++job) {
    v1::SubmitJobResponse submitted;
    const grpc::Status status = Submit(Spec(kWorkers / 2, kWorkers / 2), &submitted, 60);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  ASSERT_TRUE(polling.WaitFor(kWorkers, std::chrono::seconds(120)));
  ASSERT_TRUE(polling.failures.empty()) << polling.failures[0].error_message();
  std::set<std::string> trials;
  for (const auto& answer : answers) {
    ASSERT_TRUE(answer.has_assignment());
    trials.insert(answer.assignment().trial_id());
  }
  EXPECT_EQ(trials.size(), static_cast<std::size_t>(kWorkers));
  EXPECT_EQ(server_->parked_calls(), 0u);
  std::printf("threads: %d before %d parked long polls, %d with them\n", threads_before, kWorkers,
              threads_parked);
}

// A client that leaves ends its parked poll and its parked watch at once.
TEST_F(ServiceTest, ParkedCallsEndWhenTheClientLeaves) {
  // The job's one trial is leased, so a second poll waits.
  std::string worker_id;
  const v1::TrialAssignment a = LeaseOne("leaving", &worker_id);
  ASSERT_FALSE(HasFailure()) << "registering, submitting or leasing failed";

  v1::LeaseTrialRequest lease;
  lease.set_worker_id(worker_id);
  lease.set_wait_seconds(60);
  v1::LeaseTrialResponse leased;
  grpc::ClientContext poll_context;
  Completions polling;
  workers_->async()->LeaseTrial(&poll_context, &lease, &leased,
                                [&](grpc::Status s) { polling.Add(s); });
  v1::WatchJobRequest watch;
  watch.set_job_id(a.job_id());
  watch.set_after_sequence(1000);  // past the end: the watch parks
  grpc::ClientContext watch_context;
  auto reader = jobs_->WatchJob(&watch_context, watch);
  ASSERT_TRUE(ParkedReaches(2)) << server_->parked_calls();
  poll_context.TryCancel();
  watch_context.TryCancel();
  ASSERT_TRUE(polling.WaitFor(1, std::chrono::seconds(30)));
  ASSERT_EQ(polling.failures.size(), 1u);
  EXPECT_EQ(polling.failures[0].error_code(), grpc::StatusCode::CANCELLED);
  v1::JobEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(ParkedReaches(0)) << server_->parked_calls();
}

TEST_F(ServiceTest, BadInputGetsTheRightCodes) {
  v1::GetJobRequest get_job;
  get_job.set_job_id("j-12345");
  v1::GetJobResponse job;
  auto status = jobs_->GetJob(Context().get(), get_job, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  v1::JobSpec no_parallelism = Spec(3, 1);
  no_parallelism.set_parallelism(0);
  v1::SubmitJobResponse submitted;
  status = Submit(no_parallelism, &submitted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("spec.parallelism"), std::string::npos)
      << status.error_message();

  v1::LeaseTrialResponse leased;
  status = Lease("w-777", 0, &leased);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  v1::ReportResultRequest report;
  report.set_lease_id("999.1");
  report.set_fencing_token(1);
  report.mutable_metrics()->set_psnr(30);
  v1::ReportResultResponse ack;
  status = workers_->ReportResult(Context().get(), report, &ack);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  v1::GetArtifactRequest artifact;
  auto context = Context();
  auto reader = jobs_->GetArtifact(context.get(), artifact);
  v1::ArtifactChunk chunk;
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

// A worker's hostile or broken input is refused, naming the field, and changes nothing: the
// trial stays leased, nothing is stored, nothing enters the frontier; the honest report that
// follows on the same lease is taken.
TEST_F(ServiceTest, HostileReportsAndRegistrationsAreRefusedAndChangeNothing) {
  v1::SubmitJobResponse submitted;
  ASSERT_TRUE(Submit(Spec(3, 1), &submitted).ok());
  const std::string job = submitted.job().id();
  v1::RegisterWorkerResponse worker;
  ASSERT_TRUE(Register("w", "", &worker).ok());
  v1::LeaseTrialResponse leased;
  ASSERT_TRUE(Lease(worker.worker_id(), 0, &leased).ok());
  ASSERT_TRUE(leased.has_assignment());

  const auto report = [&](const std::function<void(v1::ReportResultRequest&)>& edit) {
    v1::ReportResultRequest r;
    r.set_lease_id(leased.assignment().lease_id());
    r.set_fencing_token(leased.assignment().fencing_token());
    r.mutable_metrics()->set_psnr(30);
    r.mutable_metrics()->set_noisy_psnr(20);
    r.mutable_metrics()->set_ssim(0.9);
    edit(r);
    v1::ReportResultResponse ack;
    return workers_->ReportResult(Context().get(), r, &ack);
  };
  const double inf = std::numeric_limits<double>::infinity();
  const struct {
    const char* field;
    std::function<void(v1::ReportResultRequest&)> edit;
  } hostile[] = {
      {"metrics.psnr", [](auto& r) { r.mutable_metrics()->set_psnr(1000); }},
      {"metrics.psnr", [&](auto& r) { r.mutable_metrics()->set_psnr(-inf); }},
      {"metrics.psnr", [](auto& r) { r.mutable_metrics()->set_psnr(std::nan("")); }},
      {"metrics.noisy_psnr", [&](auto& r) { r.mutable_metrics()->set_noisy_psnr(inf); }},
      {"metrics.ssim", [](auto& r) { r.mutable_metrics()->set_ssim(2); }},
      {"metrics.measured_inference_peak_bytes",
       [](auto& r) { r.mutable_metrics()->set_measured_inference_peak_bytes(-1); }},
      {"metrics.latency_100mp_s",
       [](auto& r) { r.mutable_metrics()->set_latency_100mp_s(std::nan("")); }},
      {"metrics.device", [](auto& r) { r.mutable_metrics()->set_device(std::string(300, 'x')); }},
      {"failure.message",
       [](auto& r) {
         r.mutable_failure()->set_code(13);
         r.mutable_failure()->set_message(std::string(5000, 'x'));
       }},
  };
  for (const auto& h : hostile) {
    const grpc::Status status = report(h.edit);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << h.field;
    EXPECT_EQ(status.error_message().rfind(std::string(h.field) + ": ", 0), 0u)
        << h.field << ": " << status.error_message();
    EXPECT_EQ(status.error_message().find("INSERT"), std::string::npos);  // no SQL leaks out
  }
  // Nothing changed: the trial is still running, no frontier, no finished trial.
  v1::GetJobRequest get;
  get.set_job_id(job);
  v1::GetJobResponse got;
  ASSERT_TRUE(jobs_->GetJob(Context().get(), get, &got).ok());
  EXPECT_EQ(got.job().counts().running(), 1);
  EXPECT_EQ(got.job().counts().succeeded() + got.job().counts().failed(), 0);
  EXPECT_EQ(got.job().frontier_version(), 0);
  // The honest report on the same lease is taken.
  EXPECT_TRUE(report([](auto&) {}).ok());

  // Registrations beyond the limits: refused, and no worker is added.
  const auto refused = [&](const std::function<void(v1::RegisterWorkerRequest&)>& edit,
                           const std::string& field) {
    v1::RegisterWorkerRequest r;
    r.set_name("bad");
    edit(r);
    v1::RegisterWorkerResponse response;
    const grpc::Status status = workers_->RegisterWorker(Context().get(), r, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
    EXPECT_EQ(status.error_message().rfind(field, 0), 0u) << status.error_message();
  };
  refused([](auto& r) { r.set_name(std::string(201, 'n')); }, "name");
  refused([](auto& r) { r.set_device(std::string(201, 'd')); }, "device");
  refused(
      [](auto& r) {
        for (int i = 0; i < 65; ++i) r.add_datasets(std::to_string(i));
      },
      "datasets");
  refused([](auto& r) { r.add_datasets(std::string(201, 's')); }, "datasets[0]");
  refused(
      [](auto& r) {
        for (int i = 0; i < 9; ++i) r.add_dtypes(v1::DTYPE_FP16);
      },
      "dtypes");
  refused([](auto& r) { r.set_memory_bytes(-5); }, "memory_bytes");
  v1::ListWorkersRequest all;
  all.set_all(true);
  v1::ListWorkersResponse listed;
  ASSERT_TRUE(jobs_->ListWorkers(Context().get(), all, &listed).ok());
  EXPECT_EQ(listed.workers_size(), 1);  // the honest one

  // A message over the server's bound is refused before any handler sees it.
  v1::JobSpec huge = Spec(3, 1);
  huge.set_name(std::string(kMaxMessageBytes + 1, 'n'));
  EXPECT_EQ(Submit(huge, &submitted).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  v1::ListJobsRequest list;
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(jobs_->ListJobs(Context().get(), list, &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 1);
}

// The executable: port 0 is announced on stdout's first line, health checking answers SERVING,
// and SIGTERM stops it with exit status 0.
TEST(ServerProcess, AnnouncesItsPortServesHealthAndStopsOnSigterm) {
  std::string pattern = (fs::temp_directory_path() / "peaknas-server-XXXXXX").string();
  const fs::path dir = mkdtemp(pattern.data());
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  const std::string db = (dir / "db.sqlite").string();
  const std::string art = (dir / "art").string();
  base::SpawnOptions options;
  options.stdout_fd = out[1];
  const StatusOr<pid_t> spawned =
      base::Spawn({PEAKNAS_SERVER_BINARY, "--listen", "127.0.0.1:0", "--db", db, "--artifacts", art,
                   "--log-level", "warn", "--shutdown-grace-seconds", "0.5"},
                  options);
  close(out[1]);
  ASSERT_TRUE(spawned.ok()) << spawned.status().ToString();
  const pid_t pid = *spawned;
  const StatusOr<std::string> listening =
      base::ReadListenAddress(out[0], std::chrono::seconds(60), "peaknas-server");
  ASSERT_TRUE(listening.ok()) << listening.status().ToString();
  const std::string address = *listening;
  ASSERT_EQ(address.rfind("127.0.0.1:", 0), 0u) << address;
  EXPECT_NE(address, "127.0.0.1:0");

  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer request_buffer, response_buffer;
  // grpc.health.v1.Health/Check with an empty HealthCheckRequest: an empty message.
  grpc::GenericStub generic(channel);
  grpc::CompletionQueue cq;
  grpc::Slice empty("", 0);
  request_buffer = grpc::ByteBuffer(&empty, 1);
  auto call =
      generic.PrepareUnaryCall(&context, "/grpc.health.v1.Health/Check", request_buffer, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response_buffer, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response_buffer.Dump(&slices).ok());
  std::string body;
  for (const auto& s : slices) body.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(body, std::string("\x08\x01", 2));  // status: SERVING
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  EXPECT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
  close(out[0]);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// --- Artifacts ---

namespace artifacts {

// Uploads `bytes` in `chunk`-byte pieces claiming `sha256`.
grpc::Status Upload(v1::WorkerService::Stub& workers, const v1::TrialAssignment& a,
                    std::int64_t token, const std::string& bytes, const std::string& sha256,
                    std::size_t chunk, v1::UploadArtifactResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto writer = workers.UploadArtifact(&context, response);
  std::size_t offset = 0;
  do {
    v1::UploadArtifactRequest message;
    if (offset == 0) {
      message.set_lease_id(a.lease_id());
      message.set_fencing_token(token);
      message.set_sha256(sha256);
    }
    const std::size_t n = std::min(chunk, bytes.size() - offset);
    message.mutable_chunk()->set_data(bytes.substr(offset, n));
    message.mutable_chunk()->set_offset(static_cast<std::int64_t>(offset));
    offset += n;
    message.mutable_chunk()->set_last(offset == bytes.size());
    if (!writer->Write(message)) break;
  } while (offset < bytes.size());
  writer->WritesDone();
  return writer->Finish();
}

// Every regular file under `dir`.
std::vector<std::string> FilesUnder(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) out.push_back(entry.path().string());
  }
  return out;
}

std::string Bytes(std::size_t n) {
  std::string s(n, '\0');
  std::uint32_t x = 12345;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

}  // namespace artifacts

TEST_F(ServiceTest, ArtifactUploadThenDownloadIsByteIdentical) {
  const v1::TrialAssignment a = LeaseOne();
  ASSERT_TRUE(a.export_model());
  const std::string bytes = artifacts::Bytes((2 << 20) + 12345);  // three 1 MiB-ish chunks
  const std::string sha = base::Sha256Hex(bytes);
  v1::UploadArtifactResponse stored;
  auto status = artifacts::Upload(*workers_, a, a.fencing_token(), bytes, sha, 1 << 20, &stored);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(stored.size(), static_cast<std::int64_t>(bytes.size()));
  EXPECT_EQ(stored.sha256(), sha);
  EXPECT_EQ(
      artifacts::FilesUnder(dir_ / "art"),
      std::vector<std::string>{(dir_ / "art" / a.job_id() / (a.trial_id() + ".pt")).string()});

  Download download = OpenArtifact(a.job_id(), a.trial_id());
  auto& reader = download.reader;
  v1::ArtifactChunk chunk;
  std::string received;
  int chunks = 0;
  bool last = false;
  while (reader->Read(&chunk)) {
    if (chunks == 0) {
      EXPECT_EQ(chunk.total_size(), static_cast<std::int64_t>(bytes.size()));
      EXPECT_EQ(chunk.sha256(), sha);
      EXPECT_EQ(chunk.filename(), a.trial_id() + ".pt");
    }
    EXPECT_EQ(chunk.offset(), static_cast<std::int64_t>(received.size()));
    EXPECT_LE(chunk.data().size(), std::size_t{1} << 20);
    received += chunk.data();
    last = chunk.last();
    ++chunks;
  }
  status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(last);
  EXPECT_EQ(chunks, 3);
  EXPECT_TRUE(received == bytes);

  // The result reported after the upload shows the artifact.
  v1::ReportResultRequest report;
  report.set_lease_id(a.lease_id());
  report.set_fencing_token(a.fencing_token());
  report.mutable_metrics()->set_psnr(30);
  report.mutable_metrics()->set_noisy_psnr(20);
  report.mutable_metrics()->set_latency_100mp_s(1);
  v1::ReportResultResponse reported;
  status = workers_->ReportResult(Context().get(), report, &reported);
  ASSERT_TRUE(status.ok()) << status.error_message();
  v1::ListTrialsRequest list;
  list.set_job_id(a.job_id());
  v1::ListTrialsResponse trials;
  ASSERT_TRUE(jobs_->ListTrials(Context().get(), list, &trials).ok());
  bool found = false;
  for (const auto& t : trials.trials()) {
    if (t.id() == a.trial_id()) {
      found = true;
      EXPECT_TRUE(t.has_artifact());
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(ServiceTest, ArtifactUploadWithStaleTokenIsRefusedAndLeavesNoFile) {
  const v1::TrialAssignment a = LeaseOne();
  const std::string bytes = artifacts::Bytes(5000);
  v1::UploadArtifactResponse stored;
  auto status = artifacts::Upload(*workers_, a, a.fencing_token() - 1, bytes,
                                  base::Sha256Hex(bytes), 1024, &stored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_TRUE(artifacts::FilesUnder(dir_ / "art").empty());
  EXPECT_EQ(DownloadStatus(a.job_id(), a.trial_id()), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServiceTest, ArtifactUploadWithWrongHashIsRefusedAndLeavesNoFile) {
  const v1::TrialAssignment a = LeaseOne();
  const std::string bytes = artifacts::Bytes(5000);
  v1::UploadArtifactResponse stored;
  auto status = artifacts::Upload(*workers_, a, a.fencing_token(), bytes,
                                  base::Sha256Hex("something else"), 1024, &stored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS) << status.error_message();
  EXPECT_TRUE(artifacts::FilesUnder(dir_ / "art").empty());
  // Not hex at all: INVALID_ARGUMENT, still no file.
  status = artifacts::Upload(*workers_, a, a.fencing_token(), bytes, "nope", 1024, &stored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_TRUE(artifacts::FilesUnder(dir_ / "art").empty());
}

TEST_F(ServiceTest, GetArtifactOfUnknownJobOrTrialIsNotFound) {
  const v1::TrialAssignment a = LeaseOne();
  for (auto [job, trial] : std::vector<std::pair<std::string, std::string>>{
           {"j-999", "t-1"},
           {"bogus", "t-1"},
           {a.job_id(), "t-999"},
           {a.job_id(), "x"},
           {a.job_id(), a.trial_id()} /* leased, no artifact yet */}) {
    EXPECT_EQ(DownloadStatus(job, trial), grpc::StatusCode::NOT_FOUND) << job << " " << trial;
  }
}

}  // namespace
}  // namespace peaknas::server
