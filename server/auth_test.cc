// Tokens, roles and tenants end to end in one process: a real coordinator on a real SQLite
// file, the gRPC server and the HTTP server on 127.0.0.1:0, clients that send their token as
// `peaknas` and `peaknas-worker` do (proto::CoordinatorChannel). Each rule is checked by a call
// it must refuse, and the store is checked unchanged after it.
#include "server/auth.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "base/temp_dir.h"
#include "proto/channel.h"
#include "server/http_api.h"
#include "server/http_server.h"
#include "server/service.h"
#include "server/test_job_spec.h"
#include "storage/sqlite_store.h"
#include "storage/token_store.h"
#include "tests/support/http_client.h"

namespace peaknas::server {
namespace {

using peaknas::testing::Http;
using peaknas::testing::HttpReply;

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return context;
}

// One caller: both services on a channel that sends its token.
struct Client {
  std::unique_ptr<v1::JobService::Stub> jobs;
  std::unique_ptr<v1::WorkerService::Stub> workers;

  grpc::Status Submit(int trials, std::string* job_id = nullptr) {
    v1::SubmitJobRequest request;
    *request.mutable_spec() = testing::RandomJobSpec(trials, 1);
    v1::SubmitJobResponse response;
    const grpc::Status status = jobs->SubmitJob(Context().get(), request, &response);
    if (job_id != nullptr) *job_id = response.job().id();
    return status;
  }
  grpc::Status GetJob(const std::string& id, v1::Job* job = nullptr) {
    v1::GetJobRequest request;
    request.set_job_id(id);
    v1::GetJobResponse response;
    const grpc::Status status = jobs->GetJob(Context().get(), request, &response);
    if (job != nullptr) *job = response.job();
    return status;
  }
  grpc::Status Cancel(const std::string& id) {
    v1::CancelJobRequest request;
    request.set_job_id(id);
    v1::CancelJobResponse response;
    return jobs->CancelJob(Context().get(), request, &response);
  }
  std::vector<std::string> JobIds(grpc::Status* status = nullptr) {
    v1::ListJobsResponse response;
    const grpc::Status s = jobs->ListJobs(Context().get(), v1::ListJobsRequest(), &response);
    if (status != nullptr) *status = s;
    std::vector<std::string> ids;
    for (const v1::Job& j : response.jobs()) ids.push_back(j.id());
    return ids;
  }
  grpc::Status Register(std::string* worker_id = nullptr) {
    v1::RegisterWorkerRequest request;
    request.set_name("w");
    request.set_device("cpu");
    v1::RegisterWorkerResponse response;
    const grpc::Status status = workers->RegisterWorker(Context().get(), request, &response);
    if (worker_id != nullptr) *worker_id = response.worker_id();
    return status;
  }
  grpc::Status Lease(const std::string& worker_id, v1::TrialAssignment* assignment) {
    v1::LeaseTrialRequest request;
    request.set_worker_id(worker_id);
    request.set_wait_seconds(5);
    v1::LeaseTrialResponse response;
    const grpc::Status status = workers->LeaseTrial(Context().get(), request, &response);
    *assignment = response.assignment();
    return status;
  }
  grpc::Status Heartbeat(const v1::TrialAssignment& a) {
    v1::HeartbeatRequest request;
    request.set_lease_id(a.lease_id());
    request.set_fencing_token(a.fencing_token());
    v1::HeartbeatResponse response;
    return workers->Heartbeat(Context().get(), request, &response);
  }
  grpc::Status ReportFailure(const v1::TrialAssignment& a) {
    v1::ReportResultRequest request;
    request.set_lease_id(a.lease_id());
    request.set_fencing_token(a.fencing_token());
    request.mutable_failure()->set_message("refused");
    v1::ReportResultResponse response;
    return workers->ReportResult(Context().get(), request, &response);
  }
};

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(CoordinatorOptions()); }

  void Start(CoordinatorOptions options) {
    http_.reset();
    api_.reset();
    server_.reset();
    coordinator_.reset();
    const std::string db = dir_.Sub("db.sqlite");
    auto store = storage::SqliteStore::Open(db);
    ASSERT_TRUE(store.ok()) << store.status().message();
    auto tokens = storage::TokenStore::Open(db);
    ASSERT_TRUE(tokens.ok()) << tokens.status().message();
    tokens_ = std::move(tokens).value();
    auth_ = std::make_unique<Authenticator>(tokens_.get());
    auto coordinator = Coordinator::Open(std::unique_ptr<storage::Store>(std::move(store).value()),
                                         dir_.Sub("art"), options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status().message();
    coordinator_ = std::move(coordinator).value();
    auto server = GrpcServer::Start(*coordinator_, "127.0.0.1:0", *auth_);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server).value();
    api_ = std::make_unique<HttpApi>(*coordinator_, server_->jobs(), server_->parked(), nullptr);
    auto http =
        HttpServer::Start("127.0.0.1:0", [this](const HttpRequest& r) { return api_->Handle(r); });
    ASSERT_TRUE(http.ok()) << http.status().message();
    http_ = std::move(http).value();
  }

  void TearDown() override {
    http_.reset();
    api_.reset();
    server_.reset();
    coordinator_.reset();
  }

  // A token of `role` (tenant: its name unless given); its secret.
  std::string Token(const std::string& name, const std::string& role,
                    const std::string& tenant = "") {
    auto secret = tokens_->Create(name, role, tenant.empty() ? name : tenant, 1);
    EXPECT_TRUE(secret.ok()) << secret.status().message();
    return secret.ok() ? *secret : std::string();
  }

  Client As(const std::string& secret) {
    auto channel = proto::CoordinatorChannel(server_->address(), secret);
    return {v1::JobService::NewStub(channel), v1::WorkerService::NewStub(channel)};
  }

  HttpReply Get(const std::string& target, const std::string& secret) {
    return Http(http_->address(), "GET", target, "", secret.empty() ? "" : "Bearer " + secret);
  }

  std::size_t JobCount() { return coordinator_->ListJobs()->size(); }

  base::TempDir dir_{"peaknas-auth"};
  std::unique_ptr<storage::TokenStore> tokens_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<HttpApi> api_;
  std::unique_ptr<HttpServer> http_;
};

TEST_F(AuthTest, WithoutTokensEveryCallerMayDoEverything) {
  Client anyone = As("");
  std::string job, worker;
  ASSERT_TRUE(anyone.Submit(2, &job).ok());
  v1::Job got;
  ASSERT_TRUE(anyone.GetJob(job, &got).ok());
  EXPECT_EQ(got.owner(), "");
  EXPECT_TRUE(anyone.Register(&worker).ok());
  EXPECT_TRUE(anyone.Cancel(job).ok());
  EXPECT_EQ(Get("/v1/jobs", "").status, 200);
}

TEST_F(AuthTest, OnceATokenExistsACallWithoutAValidOneIsRefusedAndChangesNothing) {
  const std::string admin = Token("root", "admin");
  for (const std::string& secret : {std::string(), std::string("pnk_not-a-token"), admin + "x"}) {
    Client c = As(secret);
    EXPECT_EQ(c.Submit(2).error_code(), grpc::StatusCode::UNAUTHENTICATED) << secret;
    grpc::Status listed;
    c.JobIds(&listed);
    EXPECT_EQ(listed.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(c.Register().error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Get("/v1/jobs", secret).status, 401);
    EXPECT_EQ(Get("/metrics", secret).status, 401);
  }
  EXPECT_EQ(JobCount(), 0u);
  EXPECT_TRUE(coordinator_->ListWorkers(true)->empty());
  // The probes and the dashboard's page stay open.
  EXPECT_EQ(Get("/livez", "").status, 200);
  EXPECT_EQ(Get("/", "").status, 200);
  // The secret is never echoed in a refusal.
  const grpc::Status refused = As(admin + "x").Submit(1);
  EXPECT_EQ(refused.error_message().find(admin), std::string::npos);
}

TEST_F(AuthTest, EachRoleMayMakeOnlyItsCalls) {
  Client reader = As(Token("ann", "reader", "*"));
  Client submitter = As(Token("sam", "submitter"));
  Client worker = As(Token("wes", "worker"));
  Client admin = As(Token("root", "admin"));

  std::string job;
  ASSERT_TRUE(submitter.Submit(2, &job).ok());
  EXPECT_EQ(reader.Submit(2).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(worker.Submit(2).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(JobCount(), 1u);

  EXPECT_TRUE(reader.GetJob(job).ok());
  EXPECT_EQ(reader.Cancel(job).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(worker.GetJob(job).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(worker.Cancel(job).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(coordinator_->IsRunning(job));

  EXPECT_EQ(reader.Register().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(submitter.Register().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(coordinator_->ListWorkers(true)->empty());
  EXPECT_TRUE(worker.Register().ok());
  EXPECT_TRUE(admin.Register().ok());
  EXPECT_TRUE(admin.Submit(1).ok());
  EXPECT_TRUE(submitter.Cancel(job).ok());
  EXPECT_FALSE(coordinator_->IsRunning(job));

  // The same over HTTP.
  const std::string sam = Token("sam2", "submitter", "sam");
  EXPECT_EQ(Get("/v1/jobs/" + job, sam).status, 200);
  EXPECT_EQ(Http(http_->address(), "POST", "/v1/jobs", "{}", "").status, 401);
  const std::string wes = Token("wes2", "worker");
  EXPECT_EQ(Get("/v1/jobs", wes).status, 403);
  EXPECT_EQ(
      Http(http_->address(), "POST", "/v1/jobs/" + job + ":cancel", "", "Bearer " + wes).status,
      403);
}

TEST_F(AuthTest, ATenantsJobsAreInvisibleToOtherTenantsAsIfTheyDidNotExist) {
  Client alice = As(Token("alice", "submitter", "lab-a"));
  Client alice2 = As(Token("alice-ci", "submitter", "lab-a"));
  Client bob = As(Token("bob", "submitter", "lab-b"));
  Client lab_a_reader = As(Token("dash-a", "reader", "lab-a"));
  Client every_reader = As(Token("dash", "reader", "*"));
  Client admin = As(Token("root", "admin"));

  std::string job;
  ASSERT_TRUE(alice.Submit(3, &job).ok());
  v1::Job got;
  ASSERT_TRUE(alice.GetJob(job, &got).ok());
  EXPECT_EQ(got.owner(), "lab-a");

  // Bob gets what an id that was never used gets.
  const grpc::Status unknown = bob.GetJob("j-999");
  ASSERT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  const grpc::Status hidden = bob.GetJob(job);
  EXPECT_EQ(hidden.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(hidden.error_message(), "job_id: unknown job \"" + job + "\"");
  EXPECT_EQ(bob.Cancel(job).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(coordinator_->IsRunning(job));
  EXPECT_TRUE(bob.JobIds().empty());
  {
    v1::GetFrontierRequest request;
    request.set_job_id(job);
    v1::GetFrontierResponse response;
    EXPECT_EQ(bob.jobs->GetFrontier(Context().get(), request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
    v1::ListTrialsRequest trials;
    trials.set_job_id(job);
    v1::ListTrialsResponse listed;
    EXPECT_EQ(bob.jobs->ListTrials(Context().get(), trials, &listed).error_code(),
              grpc::StatusCode::NOT_FOUND);
    v1::WatchJobRequest watch;
    watch.set_job_id(job);
    auto context = Context();
    auto reader = bob.jobs->WatchJob(context.get(), watch);
    v1::JobEvent event;
    EXPECT_FALSE(reader->Read(&event));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
    v1::GetArtifactRequest artifact;
    artifact.set_job_id(job);
    artifact.set_trial_id("t-1");
    auto download_context = Context();
    auto download = bob.jobs->GetArtifact(download_context.get(), artifact);
    v1::ArtifactChunk chunk;
    EXPECT_FALSE(download->Read(&chunk));
    EXPECT_EQ(download->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  const std::string bob_http = Token("bob-http", "submitter", "lab-b");
  EXPECT_EQ(Get("/v1/jobs/" + job, bob_http).status, 404);
  EXPECT_EQ(Get("/v1/jobs/" + job + "/trials", bob_http).status, 404);
  EXPECT_EQ(Get("/v1/jobs/" + job + "/events", bob_http).status, 404);
  EXPECT_EQ(Get("/v1/jobs/" + job + "/hypervolume", bob_http).status, 404);
  EXPECT_EQ(Get("/v1/jobs", bob_http).body.find(job), std::string::npos);

  // Its tenant's tokens, a reader of every tenant and an admin see it.
  EXPECT_EQ(alice2.JobIds(), std::vector<std::string>{job});
  EXPECT_TRUE(lab_a_reader.GetJob(job).ok());
  EXPECT_EQ(every_reader.JobIds(), std::vector<std::string>{job});
  EXPECT_TRUE(admin.GetJob(job).ok());
  EXPECT_NE(Get("/v1/jobs", Token("alice-http", "reader", "lab-a")).body.find(job),
            std::string::npos);
  // Another token of the tenant may cancel it.
  EXPECT_TRUE(alice2.Cancel(job).ok());
  EXPECT_FALSE(coordinator_->IsRunning(job));
}

TEST_F(AuthTest, ARevokedTokenIsRefusedOnItsNextCall) {
  const std::string secret = Token("carol", "submitter");
  Client carol = As(secret);
  ASSERT_TRUE(carol.Submit(1).ok());
  // Revoked through another connection to the file, as `peaknas-server token revoke` does.
  auto other = storage::TokenStore::Open(dir_.Sub("db.sqlite"));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Revoke("carol", 2).ok());
  EXPECT_EQ(carol.Submit(1).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(carol.JobIds().size(), 0u);
  EXPECT_EQ(Get("/v1/jobs", secret).status, 401);
  EXPECT_EQ(JobCount(), 1u);
  // Revoking every token does not open the server again.
  EXPECT_EQ(As("").Submit(1).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AuthTest, AWorkerActsOnlyOnItsOwnRegistrationsAndLeases) {
  Client owner = As(Token("rack-1", "worker"));
  Client intruder = As(Token("rack-2", "worker"));
  Client admin = As(Token("root", "admin"));
  std::string job;
  ASSERT_TRUE(admin.Submit(2, &job).ok());

  std::string mine, theirs;
  ASSERT_TRUE(owner.Register(&mine).ok());
  ASSERT_TRUE(intruder.Register(&theirs).ok());
  EXPECT_EQ(*coordinator_->WorkerPrincipal(mine), "rack-1");

  v1::TrialAssignment stolen;
  EXPECT_EQ(intruder.Lease(mine, &stolen).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::TrialAssignment a;
  ASSERT_TRUE(owner.Lease(mine, &a).ok());
  ASSERT_FALSE(a.lease_id().empty());

  EXPECT_EQ(intruder.Heartbeat(a).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(intruder.ReportFailure(a).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  {
    v1::UploadArtifactRequest first;
    first.set_lease_id(a.lease_id());
    first.set_fencing_token(a.fencing_token());
    first.mutable_chunk()->set_data("x");
    v1::UploadArtifactResponse response;
    auto context = Context();
    auto writer = intruder.workers->UploadArtifact(context.get(), &response);
    writer->Write(first);
    writer->WritesDone();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  // Still leased to its owner, who goes on.
  const auto trials = coordinator_->ListTrials(job, {v1::TRIAL_STATE_RUNNING});
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 1u);
  EXPECT_EQ((*trials)[0].id(), a.trial_id());
  EXPECT_TRUE(owner.Heartbeat(a).ok());
  // A worker may fetch models of the job whose trial it runs (a parent's), no other job's.
  std::string other;
  ASSERT_TRUE(admin.Submit(1, &other).ok());
  for (const auto& [job_id, code] : {std::pair{job, grpc::StatusCode::NOT_FOUND},
                                     std::pair{other, grpc::StatusCode::NOT_FOUND}}) {
    v1::GetArtifactRequest request;
    request.set_job_id(job_id);
    request.set_trial_id("t-999");
    auto context = Context();
    auto download = (job_id == job ? owner : intruder).jobs->GetArtifact(context.get(), request);
    v1::ArtifactChunk chunk;
    EXPECT_FALSE(download->Read(&chunk));
    const grpc::Status status = download->Finish();
    EXPECT_EQ(status.error_code(), code);
    // The owner gets as far as the (missing) model; the intruder not even to the job.
    if (job_id == job) {
      EXPECT_EQ(status.error_message().find("unknown job"), std::string::npos)
          << status.error_message();
    } else {
      EXPECT_NE(status.error_message().find("unknown job"), std::string::npos)
          << status.error_message();
    }
  }
  EXPECT_TRUE(owner.ReportFailure(a).ok());
}

TEST_F(AuthTest, ATenantIsHeldToItsLimits) {
  CoordinatorOptions options;
  options.tenant_max_jobs = 2;
  options.tenant_max_trials = 5;
  Start(options);
  Client alice = As(Token("alice", "submitter"));
  Client bob = As(Token("bob", "submitter"));
  std::string first;
  ASSERT_TRUE(alice.Submit(2, &first).ok());
  const grpc::Status too_many_trials = alice.Submit(4);
  EXPECT_EQ(too_many_trials.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(too_many_trials.error_message().find("--tenant-max-trials 5"), std::string::npos)
      << too_many_trials.error_message();
  ASSERT_TRUE(alice.Submit(3).ok());
  const grpc::Status too_many_jobs = alice.Submit(1);
  EXPECT_EQ(too_many_jobs.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(too_many_jobs.error_message().find("--tenant-max-jobs 2"), std::string::npos)
      << too_many_jobs.error_message();
  EXPECT_EQ(JobCount(), 2u);
  // Another tenant has its own allowance; a finished job frees its share.
  EXPECT_TRUE(bob.Submit(5).ok());
  ASSERT_TRUE(alice.Cancel(first).ok());
  EXPECT_TRUE(alice.Submit(2).ok());
}

}  // namespace
}  // namespace peaknas::server
