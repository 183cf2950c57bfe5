// The HTTP API end to end in one process: a real coordinator on a real SQLite file, the gRPC
// server and the HTTP server on 127.0.0.1:0, requests over real sockets. Each JSON answer is
// checked against the gRPC answer to the same call.
#include "server/http_api.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/sha256.h"
#include "base/temp_dir.h"
#include "server/http_server.h"
#include "server/service.h"
#include "server/test_coordinator.h"
#include "server/test_job_spec.h"
#include "tests/support/http_client.h"
#include "tests/support/jobs.h"

namespace peaknas::server {
namespace {

namespace pb = google::protobuf;
using peaknas::testing::Http;
using peaknas::testing::HttpExchange;
using peaknas::testing::HttpReply;
using peaknas::testing::RequestText;

// The gRPC answer as the HTTP API must print it.
std::string JsonOf(const pb::Message& m) {
  pb::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string out;
  EXPECT_TRUE(pb::util::MessageToJsonString(m, &out, options).ok());
  return out + "\n";
}

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::OpenSqliteCoordinator(
        (dir_.path() / "db.sqlite").string(), (dir_.path() / "art").string(), &coordinator_));
    auto grpc_server = GrpcServer::Start(*coordinator_, "127.0.0.1:0");
    ASSERT_TRUE(grpc_server.ok()) << grpc_server.status().ToString();
    grpc_ = std::move(grpc_server).value();
    api_ = std::make_unique<HttpApi>(*coordinator_, grpc_->jobs(), grpc_->parked(),
                                     &grpc_->rpc_metrics());
    auto http =
        HttpServer::Start("127.0.0.1:0", [this](const HttpRequest& r) { return api_->Handle(r); });
    ASSERT_TRUE(http.ok()) << http.status().ToString();
    http_ = std::move(http).value();
    jobs_.Connect(grpc::CreateChannel(grpc_->address(), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    http_.reset();
    grpc_.reset();
    coordinator_.reset();
  }

  HttpReply Get(const std::string& target) { return Http(http_->address(), "GET", target); }
  HttpReply Post(const std::string& target, const std::string& body = "") {
    return Http(http_->address(), "POST", target, body);
  }
  std::unique_ptr<v1::WorkerService::Stub> Workers() {
    return v1::WorkerService::NewStub(
        grpc::CreateChannel(grpc_->address(), grpc::InsecureChannelCredentials()));
  }
  // Registers a worker and leases one trial with it.
  void LeaseOne(v1::WorkerService::Stub& workers, v1::LeaseTrialResponse* leased) {
    v1::RegisterWorkerRequest reg;
    reg.set_name("w");
    v1::RegisterWorkerResponse worker;
    ASSERT_TRUE(workers.RegisterWorker(peaknas::testing::CallContext().get(), reg, &worker).ok());
    v1::LeaseTrialRequest lease;
    lease.set_worker_id(worker.worker_id());
    ASSERT_TRUE(workers.LeaseTrial(peaknas::testing::CallContext().get(), lease, leased).ok());
    ASSERT_TRUE(leased->has_assignment());
  }
  // Submits the shared test job over HTTP; its id.
  std::string SubmitOverHttp(int trials) {
    v1::SubmitJobRequest request;
    *request.mutable_spec() = testing::RandomJobSpec(trials, 2);
    const HttpReply reply = Post("/v1/jobs", JsonOf(request));
    EXPECT_EQ(reply.status, 200) << reply.body;
    v1::SubmitJobResponse response;
    EXPECT_TRUE(pb::util::JsonStringToMessage(reply.body, &response).ok()) << reply.body;
    return response.job().id();
  }

  base::TempDir dir_{"peaknas-http"};
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<GrpcServer> grpc_;
  std::unique_ptr<HttpApi> api_;
  std::unique_ptr<HttpServer> http_;
  peaknas::testing::JobClient jobs_;
};

TEST_F(HttpApiTest, ProbesAnswer) {
  const HttpReply live = Get("/livez");
  EXPECT_EQ(live.status, 200);
  EXPECT_EQ(live.body, "ok\n");
  EXPECT_EQ(live.headers.at("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(Get("/readyz").status, 200);
  EXPECT_EQ(Http(http_->address(), "HEAD", "/livez").status, 200);
}

TEST_F(HttpApiTest, JobsAreTheGrpcAnswersAsJson) {
  const std::string id = SubmitOverHttp(4);
  ASSERT_EQ(id, "j-1");
  v1::GetJobRequest get;
  get.set_job_id(id);
  v1::GetJobResponse job;
  ASSERT_TRUE(jobs_->GetJob(peaknas::testing::CallContext().get(), get, &job).ok());
  EXPECT_EQ(Get("/v1/jobs/" + id).body, JsonOf(job));

  v1::ListJobsResponse listed;
  ASSERT_TRUE(jobs_->ListJobs(peaknas::testing::CallContext().get(), {}, &listed).ok());
  const HttpReply list = Get("/v1/jobs");
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(list.headers.at("content-type"), "application/json");
  EXPECT_EQ(list.body, JsonOf(listed));

  v1::GetFrontierRequest fr;
  fr.set_job_id(id);
  v1::GetFrontierResponse frontier;
  ASSERT_TRUE(jobs_->GetFrontier(peaknas::testing::CallContext().get(), fr, &frontier).ok());
  EXPECT_EQ(Get("/v1/jobs/" + id + "/frontier").body, JsonOf(frontier));

  // Zero values are printed (grpc-gateway's default): an empty frontier still has its version.
  EXPECT_NE(Get("/v1/jobs/" + id + "/frontier").body.find("\"version\""), std::string::npos);
}

TEST_F(HttpApiTest, TrialsPageAndFilterByState) {
  const std::string id = SubmitOverHttp(6);
  const std::vector<v1::Trial> all = jobs_.Trials(id);
  ASSERT_GE(all.size(), 3u);  // 2 admitted (parallelism 2), and the rejected ones
  v1::ListTrialsResponse page;
  const HttpReply first = Get("/v1/jobs/" + id + "/trials?page_size=2");
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_TRUE(pb::util::JsonStringToMessage(first.body, &page).ok());
  ASSERT_EQ(page.trials_size(), 2);
  EXPECT_EQ(page.trials(0).id(), all[0].id());
  EXPECT_FALSE(page.next_page_token().empty());
  const HttpReply second =
      Get("/v1/jobs/" + id + "/trials?page_size=2&page_token=" + page.next_page_token());
  ASSERT_TRUE(pb::util::JsonStringToMessage(second.body, &page).ok());
  EXPECT_EQ(page.trials(0).id(), all[2].id());

  int rejected = 0;
  for (const v1::Trial& t : all) rejected += t.state() == v1::TRIAL_STATE_REJECTED ? 1 : 0;
  ASSERT_TRUE(pb::util::JsonStringToMessage(
                  Get("/v1/jobs/" + id + "/trials?states=rejected&page_size=1000").body, &page)
                  .ok());
  EXPECT_EQ(page.trials_size(), rejected);
  for (const v1::Trial& t : page.trials()) EXPECT_EQ(t.state(), v1::TRIAL_STATE_REJECTED);
  const HttpReply both = Get("/v1/jobs/" + id + "/trials?states=PENDING,TRIAL_STATE_REJECTED");
  ASSERT_TRUE(pb::util::JsonStringToMessage(both.body, &page).ok()) << both.body;
  EXPECT_EQ(page.trials_size(), static_cast<int>(all.size()));  // nothing leased yet
}

TEST_F(HttpApiTest, WorkersAndFrontierTrialsAreTheGrpcAnswersAsJson) {
  const std::string id = SubmitOverHttp(4);
  auto workers = Workers();
  v1::LeaseTrialResponse leased;
  ASSERT_NO_FATAL_FAILURE(LeaseOne(*workers, &leased));
  const std::string trial = leased.assignment().trial_id();
  auto stub = v1::JobService::NewStub(
      grpc::CreateChannel(grpc_->address(), grpc::InsecureChannelCredentials()));

  v1::ListWorkersRequest list;
  v1::ListWorkersResponse listed;
  ASSERT_TRUE(stub->ListWorkers(peaknas::testing::CallContext().get(), list, &listed).ok());
  const HttpReply online = Get("/v1/workers");
  ASSERT_EQ(online.status, 200) << online.body;
  EXPECT_EQ(online.body, JsonOf(listed));
  ASSERT_EQ(listed.workers_size(), 1);
  EXPECT_TRUE(listed.workers(0).online());
  ASSERT_EQ(listed.workers(0).trial_ids_size(), 1);
  EXPECT_EQ(listed.workers(0).trial_ids(0), trial);
  EXPECT_EQ(Get("/v1/workers?all=true").status, 200);
  EXPECT_EQ(Get("/v1/workers?all=maybe").status, 400);

  // The reported trial is the frontier's only point; on_frontier lists just it.
  v1::ReportResultRequest report;
  report.set_lease_id(leased.assignment().lease_id());
  report.set_fencing_token(leased.assignment().fencing_token());
  report.mutable_metrics()->set_psnr(30);
  report.mutable_metrics()->set_noisy_psnr(20);
  report.mutable_metrics()->set_device_profile("cpu");
  report.mutable_metrics()->set_framework("libtorch 1.13.0");
  report.mutable_metrics()->set_predicted_inference_peak_bytes(1 << 20);
  report.mutable_metrics()->set_process_inference_peak_bytes(200 << 20);
  v1::ReportResultResponse ack;
  ASSERT_TRUE(workers->ReportResult(peaknas::testing::CallContext().get(), report, &ack).ok());

  // The report's calibration sample, over HTTP as over gRPC; the framework filter is read
  // percent-decoded.
  v1::ListCalibrationsRequest calibrations_request;
  v1::ListCalibrationsResponse calibrations;
  ASSERT_TRUE(stub->ListCalibrations(peaknas::testing::CallContext().get(), calibrations_request,
                                     &calibrations)
                  .ok());
  ASSERT_EQ(calibrations.calibrations_size(), 1);
  EXPECT_EQ(calibrations.calibrations(0).inference().samples(), 1);
  const HttpReply calibrated = Get("/v1/calibrations?framework=libtorch%201.13.0");
  ASSERT_EQ(calibrated.status, 200) << calibrated.body;
  EXPECT_EQ(calibrated.body, JsonOf(calibrations));
  EXPECT_EQ(Get("/v1/calibrations?device_profile=h100").body, "{\"calibrations\":[]}\n");
  EXPECT_EQ(Post("/v1/calibrations").status, 405);
  v1::ListTrialsRequest on;
  on.set_job_id(id);
  on.set_on_frontier(true);
  v1::ListTrialsResponse frontier;
  ASSERT_TRUE(stub->ListTrials(peaknas::testing::CallContext().get(), on, &frontier).ok());
  ASSERT_EQ(frontier.trials_size(), 1);
  EXPECT_EQ(frontier.trials(0).id(), trial);
  const HttpReply on_frontier = Get("/v1/jobs/" + id + "/trials?on_frontier=true");
  ASSERT_EQ(on_frontier.status, 200) << on_frontier.body;
  EXPECT_EQ(on_frontier.body, JsonOf(frontier));
  v1::ListTrialsResponse all;
  ASSERT_TRUE(
      pb::util::JsonStringToMessage(Get("/v1/jobs/" + id + "/trials?on_frontier=0").body, &all)
          .ok());
  EXPECT_EQ(all.trials_size(), static_cast<int>(jobs_.Trials(id).size()));
  EXPECT_GT(all.trials_size(), 1);
}

// An error that quotes the request's path stays valid JSON whatever bytes the path holds:
// bytes that are not UTF-8 become U+FFFD, well-formed characters stay (found by
// fuzz/http_api_fuzzer.cc).
TEST_F(HttpApiTest, ErrorsQuotingARequestAreValidJsonForAnyBytes) {
  const HttpResponse r = api_->Handle({.method = "POST",
                                       .target = "/v1/jobs/j-1:c\x9f\x90\xed\xa0\x80\"\xc3\xa9",
                                       .body = "",
                                       .last_event_id = ""});
  EXPECT_EQ(r.status, 405) << r.body;
  EXPECT_NE(r.body.find("c\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\\"\xc3\xa9"), std::string::npos)
      << r.body;
  pb::Struct parsed;
  EXPECT_TRUE(pb::util::JsonStringToMessage(r.body, &parsed).ok()) << r.body;
}

TEST_F(HttpApiTest, CancelIsACustomVerb) {
  const std::string id = SubmitOverHttp(4);
  const HttpReply cancelled = Post("/v1/jobs/" + id + ":cancel");
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  v1::CancelJobResponse response;
  ASSERT_TRUE(pb::util::JsonStringToMessage(cancelled.body, &response).ok());
  EXPECT_EQ(response.job().state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(jobs_.GetJob(id).state(), v1::JOB_STATE_CANCELLED);
}

TEST_F(HttpApiTest, ErrorsCarryTheGrpcCodeAndTheMatchingHttpStatus) {
  const HttpReply unknown = Get("/v1/jobs/j-99");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body,
            "{\"code\": 5, \"message\": \"job_id: unknown job \\\"j-99\\\"\", \"status\": "
            "\"NOT_FOUND\"}\n");
  // A spec the validator refuses: 400 with the field named.
  const HttpReply bad = Post("/v1/jobs", R"({"spec": {"name": "x", "parallelism": 0}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("\"code\": 3"), std::string::npos) << bad.body;
  EXPECT_NE(bad.body.find("spec."), std::string::npos) << bad.body;
  // Not JSON at all.
  const HttpReply garbage = Post("/v1/jobs", "{not json");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_NE(garbage.body.find("body: not a SubmitJobRequest"), std::string::npos);
  EXPECT_EQ(Get("/v1/jobs?page_size=ten").status, 400);
  EXPECT_EQ(Get("/v1/jobs?page_size=-1").status, 400);
  EXPECT_EQ(Get("/v1/jobs/j-1/trials?states=sleeping").status, 400);
  EXPECT_EQ(Get("/nowhere").status, 404);
  EXPECT_EQ(Get("/v1/jobs/j-1/nowhere").status, 404);
  EXPECT_EQ(Post("/livez").status, 405);
  EXPECT_EQ(Http(http_->address(), "DELETE", "/v1/jobs").status, 405);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::FAILED_PRECONDITION), 400);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::ABORTED), 409);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::DATA_LOSS), 500);
}

TEST_F(HttpApiTest, MetricsCountWhatTheCoordinatorHolds) {
  SubmitOverHttp(4);
  const HttpReply metrics = Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(metrics.body.find("peaknas_jobs{state=\"pending\"} 1\n"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("peaknas_trials{state=\"pending\"} 2\n"), std::string::npos)
      << metrics.body;  // parallelism 2
  EXPECT_NE(metrics.body.find("peaknas_group_commits_total "), std::string::npos);

  // The counters follow what happens: the rejections at submit, a lease, a report whose
  // measured peak is half the prediction.
  const v1::Job job = jobs_.GetJob("j-1");
  EXPECT_NE(metrics.body.find("peaknas_candidates_rejected_total " +
                              std::to_string(job.counts().rejected()) + "\n"),
            std::string::npos)
      << metrics.body;
  auto workers = Workers();
  v1::LeaseTrialResponse leased;
  ASSERT_NO_FATAL_FAILURE(LeaseOne(*workers, &leased));
  const std::vector<v1::Trial> trials = jobs_.Trials("j-1");
  std::int64_t predicted = 0;
  for (const v1::Trial& t : trials) {
    if (t.id() == leased.assignment().trial_id()) predicted = t.predicted_inference_peak_bytes();
  }
  ASSERT_GT(predicted, 0);
  v1::ReportResultRequest report;
  report.set_lease_id(leased.assignment().lease_id());
  report.set_fencing_token(leased.assignment().fencing_token());
  report.mutable_metrics()->set_psnr(30);
  report.mutable_metrics()->set_noisy_psnr(20);
  report.mutable_metrics()->set_measured_inference_peak_bytes(predicted / 2);
  const std::string leased_now = Get("/metrics").body;
  EXPECT_NE(leased_now.find("peaknas_workers_busy 1\n"), std::string::npos) << leased_now;
  EXPECT_NE(leased_now.find("peaknas_workers_online 1\n"), std::string::npos);
  EXPECT_NE(leased_now.find("peaknas_queue_wait_seconds_count 1\n"), std::string::npos);
  EXPECT_NE(leased_now.find("peaknas_trial_duration_seconds_count 0\n"), std::string::npos);
  v1::ReportResultResponse ack;
  ASSERT_TRUE(workers->ReportResult(peaknas::testing::CallContext().get(), report, &ack).ok());
  const std::string after = Get("/metrics").body;
  EXPECT_NE(after.find("peaknas_workers_busy 0\n"), std::string::npos) << after;
  EXPECT_NE(after.find("peaknas_trial_duration_seconds_count 1\n"), std::string::npos);
  EXPECT_NE(after.find("peaknas_group_commit_duration_seconds_count "), std::string::npos);
  EXPECT_NE(after.find("peaknas_leases_granted_total 1\n"), std::string::npos) << after;
  EXPECT_NE(after.find("peaknas_trials_finished_total{outcome=\"succeeded\"} 1\n"),
            std::string::npos);
  EXPECT_NE(after.find("peaknas_peak_measured_over_predicted_bucket{le=\"0.5\"} 1\n"),
            std::string::npos)
      << after;
  EXPECT_NE(after.find("peaknas_peak_measured_over_predicted_count 1\n"), std::string::npos);

  // Per-RPC series under go-grpc-prometheus's names: the calls above, a refused one, and the
  // long poll (a callback reactor) alike.
  jobs_.GetJob("j-99", /*may_fail=*/true);
  const std::string rpc = Get("/metrics").body;
  const std::string worker_service =
      "grpc_service=\"peaknas.v1.WorkerService\",grpc_type=\"unary\"";
  EXPECT_NE(rpc.find("grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"RegisterWorker\"," +
                     worker_service + "} 1\n"),
            std::string::npos)
      << rpc;
  EXPECT_NE(rpc.find("grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"LeaseTrial\"," +
                     worker_service + "} 1\n"),
            std::string::npos);
  EXPECT_NE(rpc.find("grpc_server_handled_total{grpc_code=\"NotFound\",grpc_method=\"GetJob\","
                     "grpc_service=\"peaknas.v1.JobService\",grpc_type=\"unary\"} 1\n"),
            std::string::npos)
      << rpc;
  EXPECT_NE(rpc.find("grpc_server_handling_seconds_count{grpc_method=\"ReportResult\"," +
                     worker_service + "} 1\n"),
            std::string::npos);
  EXPECT_NE(rpc.find("# TYPE grpc_server_handling_seconds histogram\n"), std::string::npos);
}

TEST_F(HttpApiTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  const auto replies = HttpExchange(http_->address(), {RequestText("GET", "/livez", "", true),
                                                       RequestText("GET", "/readyz", "", true),
                                                       RequestText("GET", "/v1/jobs", "", false)});
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].body, "ok\n");
  EXPECT_EQ(replies[1].body, "ready\n");
  EXPECT_EQ(replies[2].status, 200);
}

TEST_F(HttpApiTest, ModelsDownloadWithTheirNameAndChecksum) {
  const std::string id = SubmitOverHttp(1);
  auto workers = Workers();
  v1::LeaseTrialResponse leased;
  ASSERT_NO_FATAL_FAILURE(LeaseOne(*workers, &leased));
  const v1::TrialAssignment& a = leased.assignment();
  EXPECT_EQ(Get("/v1/jobs/" + id + "/trials/" + a.trial_id() + "/model").status, 404);

  std::string bytes(70000, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + 3);
  auto upload = coordinator_->BeginArtifactUpload(a.lease_id(), a.fencing_token());
  ASSERT_TRUE(upload.ok()) << upload.status().ToString();
  {
    std::ofstream out(upload->partial_path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const std::string sha = base::Sha256Hex(bytes);
  ASSERT_TRUE(
      coordinator_->CommitArtifactUpload(*upload, static_cast<std::int64_t>(bytes.size()), sha, sha)
          .ok());

  const HttpReply model = Get("/v1/jobs/" + id + "/trials/" + a.trial_id() + "/model");
  ASSERT_EQ(model.status, 200) << model.body;
  EXPECT_EQ(model.body, bytes);
  EXPECT_EQ(model.headers.at("content-type"), "application/octet-stream");
  EXPECT_EQ(model.headers.at("content-disposition"),
            "attachment; filename=\"" + a.trial_id() + ".pt\"");
  EXPECT_EQ(model.headers.at("x-checksum-sha256"), sha);
  EXPECT_EQ(Get("/v1/jobs/" + id + "/trials/t-999/model").status, 404);
}

// Reads from `fd` until `done(text so far)` holds, the peer closes, or 30 s pass.
std::string ReadUntil(int fd, const std::function<bool(const std::string&)>& done) {
  std::string text;
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done(text) && std::chrono::steady_clock::now() < limit) {
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buffer[4096];
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  return text;
}

// The "id: N" lines of an event stream's text, in order.
std::vector<std::int64_t> EventIds(const std::string& text) {
  std::vector<std::int64_t> ids;
  for (std::size_t at = text.find("\nid: "); at != std::string::npos;
       at = text.find("\nid: ", at + 1)) {
    ids.push_back(std::stoll(text.substr(at + 5)));
  }
  return ids;
}

TEST_F(HttpApiTest, EventsStreamLiveThenResumeAfterLastEventId) {
  auto workers = Workers();
  const std::string id = SubmitOverHttp(1);

  // Live: the stream is open before the trial starts.
  const int fd = peaknas::testing::ConnectTo(http_->address());
  ASSERT_GE(fd, 0);
  const std::string request = RequestText("GET", "/v1/jobs/" + id + "/events", "", true);
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string seen =
      ReadUntil(fd, [](const std::string& t) { return t.find("\r\n\r\n") != t.npos; });
  ASSERT_NE(seen.find("HTTP/1.1 200"), std::string::npos) << seen;
  ASSERT_NE(seen.find("text/event-stream"), std::string::npos) << seen;

  v1::LeaseTrialResponse leased;
  ASSERT_NO_FATAL_FAILURE(LeaseOne(*workers, &leased));
  seen += ReadUntil(fd, [](const std::string& t) { return t.find("trialStarted") != t.npos; });
  ASSERT_NE(seen.find("trialStarted"), std::string::npos) << seen;

  v1::ReportResultRequest report;
  report.set_lease_id(leased.assignment().lease_id());
  report.set_fencing_token(leased.assignment().fencing_token());
  report.mutable_metrics()->set_psnr(31);
  report.mutable_metrics()->set_noisy_psnr(20);
  v1::ReportResultResponse ack;
  ASSERT_TRUE(workers->ReportResult(peaknas::testing::CallContext().get(), report, &ack).ok());
  // The stream ends after jobFinished: the server closes the connection.
  seen += ReadUntil(fd, [](const std::string&) { return false; });
  close(fd);
  ASSERT_NE(seen.find("jobFinished"), std::string::npos) << seen;
  const std::vector<std::int64_t> ids = EventIds(seen);
  ASSERT_GE(ids.size(), 3u) << seen;  // started, finished, frontier, job finished
  for (std::size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], ids[0] + static_cast<int>(i));

  // Resumed after the second event: exactly the rest, the same text.
  const int again = peaknas::testing::ConnectTo(http_->address());
  ASSERT_GE(again, 0);
  const std::string resume =
      "GET /v1/jobs/" + id +
      "/events HTTP/1.1\r\nHost: test\r\nLast-Event-ID: " + std::to_string(ids[1]) + "\r\n\r\n";
  ASSERT_EQ(write(again, resume.data(), resume.size()), static_cast<ssize_t>(resume.size()));
  const std::string rest = ReadUntil(again, [](const std::string&) { return false; });
  close(again);
  EXPECT_EQ(EventIds(rest), std::vector<std::int64_t>(ids.begin() + 2, ids.end())) << rest;
  const std::string tail = seen.substr(seen.find("id: " + std::to_string(ids[2]) + "\n"));
  EXPECT_EQ(rest.substr(rest.find("\r\n\r\n") + 4), tail);

  // The hypervolume's history: one point per frontier version, with the trials finished then.
  const HttpReply history = Get("/v1/jobs/" + id + "/hypervolume");
  ASSERT_EQ(history.status, 200) << history.body;
  EXPECT_EQ(history.body.rfind("{\"jobId\": \"" + id + "\", \"lastSequence\": " +
                                   std::to_string(ids.back()) + ", \"points\": [{\"version\": 1, ",
                               0),
            0u)
      << history.body;
  EXPECT_NE(history.body.find("\"trialsFinished\": 1, \"frontierSize\": 1"), std::string::npos)
      << history.body;
  EXPECT_EQ(Get("/v1/jobs/j-404/hypervolume").status, 404);
  EXPECT_EQ(Get("/v1/jobs/j-404/events").status, 404);
  EXPECT_EQ(Get("/v1/jobs/" + id + "/events?after=minus").status, 400);
}

// A client that closes an idle event stream frees its parked call at once.
TEST_F(HttpApiTest, AnEventStreamWhoseClientLeavesIsReleased) {
  const std::string id = SubmitOverHttp(2);
  const std::size_t before = grpc_->parked_calls();
  const int fd = peaknas::testing::ConnectTo(http_->address());
  ASSERT_GE(fd, 0);
  const std::string request =
      RequestText("GET", "/v1/jobs/" + id + "/events?after=100000", "", true);
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  ReadUntil(fd, [](const std::string& t) { return t.find("\r\n\r\n") != t.npos; });
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (grpc_->parked_calls() != before + 1 && std::chrono::steady_clock::now() < limit) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(grpc_->parked_calls(), before + 1);
  close(fd);
  while (grpc_->parked_calls() != before && std::chrono::steady_clock::now() < limit) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(grpc_->parked_calls(), before);
}

TEST(HttpServer, RefusesAMalformedAddressAndABusyPort) {
  const auto handler = [](const HttpRequest&) { return HttpResponse{}; };
  EXPECT_EQ(HttpServer::Start("nonsense", handler).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpServer::Start("127.0.0.1:99999", handler).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpServer::Start("not-an-ip:0", handler).status().code(),
            StatusCode::kInvalidArgument);
  auto first = HttpServer::Start("127.0.0.1:0", handler);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(HttpServer::Start((*first)->address(), handler).status().code(),
            StatusCode::kUnavailable);
}

}  // namespace
}  // namespace peaknas::server
