// The dashboard in a real browser: a coordinator with a finished job (trials leased and reported
// over gRPC, some rejected by the cost model), served over HTTP on 127.0.0.1, opened by headless
// Chromium. The rendered page must show the frontier points and counts the API gives; the test
// saves a screenshot beside its log (dashboard.png in the build folder).
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "base/subprocess.h"
#include "base/temp_dir.h"
#include "proto/channel.h"
#include "server/http_api.h"
#include "server/http_server.h"
#include "server/service.h"
#include "server/test_job_spec.h"
#include "storage/sqlite_store.h"
#include "storage/token_store.h"
#include "tests/support/http_client.h"
#include "tests/support/jobs.h"
#include "tests/support/process.h"

namespace peaknas::server {
namespace {

namespace fs = std::filesystem;

// Debian's chromium, or $CHROMIUM.
std::string Chromium() {
  const char* env = std::getenv("CHROMIUM");
  return env != nullptr ? env : "/usr/bin/chromium";
}

// Runs headless Chromium on `url` with `extra` flags; its stdout.
std::string RunChromium(const std::vector<std::string>& extra, const std::string& url,
                        const fs::path& dir) {
  std::vector<std::string> args = {Chromium(),
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--no-first-run",
                                   "--user-data-dir=" + (dir / "profile").string(),
                                   "--virtual-time-budget=10000",
                                   "--window-size=1200,1400"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(url);
  const fs::path out = dir / "chromium.out";
  int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const pid_t pid = peaknas::testing::Spawn(args, fd, (dir / "chromium.err").string());
  close(fd);
  EXPECT_GT(pid, 0);
  EXPECT_EQ(peaknas::testing::Wait(pid), 0) << peaknas::testing::ReadFile(dir / "chromium.err");
  return peaknas::testing::ReadFile(out);
}

TEST(Dashboard, TheRenderedJobPageShowsTheApisFrontier) {
  ASSERT_TRUE(fs::exists(Chromium()))
      << "no Chromium at " << Chromium() << " (scripts/bootstrap installs it)";
  base::TempDir dir("peaknas-dashboard");
  auto store = storage::SqliteStore::Open((dir.path() / "db.sqlite").string(), {});
  ASSERT_TRUE(store.ok());
  auto coordinator = Coordinator::Open(std::unique_ptr<storage::Store>(std::move(store).value()),
                                       (dir.path() / "art").string());
  ASSERT_TRUE(coordinator.ok());
  auto grpc_server = GrpcServer::Start(**coordinator, "127.0.0.1:0");
  ASSERT_TRUE(grpc_server.ok());
  HttpApi api(**coordinator, (*grpc_server)->jobs(), (*grpc_server)->parked(),
              &(*grpc_server)->rpc_metrics());
  auto http =
      HttpServer::Start("127.0.0.1:0", [&api](const HttpRequest& r) { return api.Handle(r); });
  ASSERT_TRUE(http.ok());

  // A job of 8 trials, each reported with a PSNR that grows with its size: a front of several.
  auto channel = grpc::CreateChannel((*grpc_server)->address(), grpc::InsecureChannelCredentials());
  auto workers = v1::WorkerService::NewStub(channel);
  peaknas::testing::JobClient jobs;
  jobs.Connect(channel);
  const std::string id = jobs.Submit(testing::RandomJobSpec(8, 8));
  v1::RegisterWorkerRequest reg;
  reg.set_name("w");
  v1::RegisterWorkerResponse worker;
  ASSERT_TRUE(workers->RegisterWorker(peaknas::testing::CallContext().get(), reg, &worker).ok());
  for (int i = 0; i < 8; ++i) {
    v1::LeaseTrialRequest lease;
    lease.set_worker_id(worker.worker_id());
    v1::LeaseTrialResponse leased;
    ASSERT_TRUE(workers->LeaseTrial(peaknas::testing::CallContext().get(), lease, &leased).ok());
    ASSERT_TRUE(leased.has_assignment());
    const auto& widths = leased.assignment().architecture().widths();
    double size = 0;
    for (int w : widths) size += w;
    v1::ReportResultRequest report;
    report.set_lease_id(leased.assignment().lease_id());
    report.set_fencing_token(leased.assignment().fencing_token());
    report.mutable_metrics()->set_psnr(24 + std::log2(size));
    report.mutable_metrics()->set_noisy_psnr(20);
    report.mutable_metrics()->set_latency_100mp_s(size / 50);
    v1::ReportResultResponse ack;
    ASSERT_TRUE(workers->ReportResult(peaknas::testing::CallContext().get(), report, &ack).ok());
  }
  const v1::Job job = jobs.GetJob(id);
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);

  // The page, rendered without the live stream (an open stream keeps virtual time from ending).
  const std::string url = "http://" + (*http)->address() + "/?live=0#/jobs/" + id;
  const std::string dom = RunChromium({"--dump-dom"}, url, dir.path());
  ASSERT_NE(dom.find("data-ready=\"1\""), std::string::npos) << dom.substr(0, 3000);
  // Every trial has a row; the rows marked on the front are the page's Pareto front, which
  // must hold exactly the API frontier's trials.
  std::set<std::string> rows, front_rows;
  const std::regex row(R"re(<tr (data-front="1" )?data-trial="(t-[0-9]+)")re");
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), row); it != std::sregex_iterator();
       ++it) {
    rows.insert((*it)[2]);
    if ((*it)[1].matched) front_rows.insert((*it)[2]);
  }
  const std::vector<v1::Trial> trials = jobs.Trials(id);
  EXPECT_EQ(rows.size(), trials.size());
  v1::GetFrontierRequest fr;
  fr.set_job_id(id);
  v1::GetFrontierResponse frontier;
  ASSERT_TRUE(jobs->GetFrontier(peaknas::testing::CallContext().get(), fr, &frontier).ok());
  std::set<std::string> api_front;
  for (const auto& p : frontier.frontier().points()) api_front.insert(p.trial_id());
  EXPECT_FALSE(api_front.empty());
  EXPECT_EQ(front_rows, api_front) << dom.substr(0, 3000);
  EXPECT_NE(dom.find(">" + std::to_string(job.counts().succeeded()) + "</div>"),
            std::string::npos);  // the "trained" card
  EXPECT_NE(dom.find("id=\"count-rejected\">" + std::to_string(job.counts().rejected()) + "<"),
            std::string::npos);

  // The hypervolume chart has one point per frontier version.
  EXPECT_NE(dom.find("hypervolume of " + id + " at " +
                     std::to_string(frontier.frontier().version()) + " frontier versions"),
            std::string::npos);

  // A screenshot for people (and the README), kept in the build folder.
  RunChromium({"--screenshot=" + (fs::current_path() / "dashboard.png").string()}, url, dir.path());
  EXPECT_TRUE(fs::exists(fs::current_path() / "dashboard.png"));

  // A frontier trial's detail: its U-Net drawn level by level, predicted beside measured, its
  // model to download.
  const v1::FrontierPoint& shown = frontier.frontier().points(0);
  const std::string detail_url = url + "/trials/" + shown.trial_id();
  const std::string detail = RunChromium({"--dump-dom"}, detail_url, dir.path());
  ASSERT_NE(detail.find("data-detail=\"" + shown.trial_id() + "\""), std::string::npos)
      << detail.substr(0, 3000);
  const int levels = shown.architecture().levels();
  std::size_t encoders = 0;
  for (std::size_t at = detail.find("<g class=\"enc"); at != std::string::npos;
       at = detail.find("<g class=\"enc", at + 1)) {
    ++encoders;
  }
  EXPECT_EQ(encoders, static_cast<std::size_t>(levels));
  for (int w : shown.architecture().widths()) {
    EXPECT_NE(detail.find(">" + std::to_string(w) + " ch<"), std::string::npos) << w;
  }
  EXPECT_NE(detail.find("predicted"), std::string::npos);
  EXPECT_NE(detail.find("href=\"#/jobs/" + id + "\""), std::string::npos);  // close
  RunChromium({"--screenshot=" + (fs::current_path() / "dashboard-trial.png").string()}, detail_url,
              dir.path());

  // The job list: the frontier's size, hypervolume and best PSNR, as GetJob gives them.
  const std::string list =
      RunChromium({"--dump-dom"}, "http://" + (*http)->address() + "/?live=0", dir.path());
  ASSERT_NE(list.find("data-job=\"" + id + "\""), std::string::npos) << list.substr(0, 3000);
  EXPECT_EQ(job.frontier_size(), frontier.frontier().points_size());
  const std::regex list_row("data-job=\"" + id + "\".*?</tr>");
  std::smatch row_match;
  ASSERT_TRUE(std::regex_search(list, row_match, list_row));
  const std::string row_text = row_match.str();
  EXPECT_NE(row_text.find("<td class=\"num\">" + std::to_string(job.frontier_size()) + "</td>"),
            std::string::npos)
      << row_text;
  char best[32];
  std::snprintf(best, sizeof best, "%.2f dB", job.best_psnr());
  EXPECT_NE(row_text.find(best), std::string::npos) << row_text;
}

// A coordinator with tokens: the page asks for one, and with a token handed in the address's
// fragment it lists that tenant's jobs only.
TEST(Dashboard, WithTokensThePageAsksForOneAndShowsItsTenantsJobs) {
  ASSERT_TRUE(fs::exists(Chromium()))
      << "no Chromium at " << Chromium() << " (scripts/bootstrap installs it)";
  base::TempDir dir("peaknas-dashboard");
  const std::string db = (dir.path() / "db.sqlite").string();
  auto store = storage::SqliteStore::Open(db, {});
  ASSERT_TRUE(store.ok());
  auto tokens = storage::TokenStore::Open(db);
  ASSERT_TRUE(tokens.ok());
  const auto alice = (*tokens)->Create("alice", "submitter", "lab-a", 1);
  const auto bob = (*tokens)->Create("bob", "submitter", "lab-b", 1);
  ASSERT_TRUE(alice.ok() && bob.ok());
  const Authenticator auth(tokens->get());
  auto coordinator = Coordinator::Open(std::unique_ptr<storage::Store>(std::move(store).value()),
                                       (dir.path() / "art").string());
  ASSERT_TRUE(coordinator.ok());
  auto grpc_server = GrpcServer::Start(**coordinator, "127.0.0.1:0", auth);
  ASSERT_TRUE(grpc_server.ok());
  HttpApi api(**coordinator, (*grpc_server)->jobs(), (*grpc_server)->parked(), nullptr);
  auto http =
      HttpServer::Start("127.0.0.1:0", [&api](const HttpRequest& r) { return api.Handle(r); });
  ASSERT_TRUE(http.ok());
  peaknas::testing::JobClient as_alice, as_bob;
  as_alice.Connect(proto::CoordinatorChannel((*grpc_server)->address(), *alice));
  as_bob.Connect(proto::CoordinatorChannel((*grpc_server)->address(), *bob));
  const std::string alices = as_alice.Submit(testing::RandomJobSpec(2, 1));
  const std::string bobs = as_bob.Submit(testing::RandomJobSpec(2, 1));
  ASSERT_FALSE(alices.empty());
  ASSERT_FALSE(bobs.empty());

  const std::string base = "http://" + (*http)->address() + "/?live=0";
  const std::string asked = RunChromium({"--dump-dom"}, base, dir.path());
  EXPECT_NE(asked.find("id=\"sign-in\""), std::string::npos) << asked.substr(0, 3000);
  EXPECT_EQ(asked.find("data-job="), std::string::npos);

  const std::string listed = RunChromium({"--dump-dom"}, base + "#token=" + *alice, dir.path());
  EXPECT_EQ(listed.find("id=\"sign-in\""), std::string::npos) << listed.substr(0, 3000);
  EXPECT_NE(listed.find("data-job=\"" + alices + "\""), std::string::npos)
      << listed.substr(0, 3000);
  EXPECT_EQ(listed.find("data-job=\"" + bobs + "\""), std::string::npos);
  EXPECT_EQ(listed.find(*alice), std::string::npos);  // the token left the address
}

}  // namespace
}  // namespace peaknas::server
