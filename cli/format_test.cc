#include "cli/format.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/temp_dir.h"

namespace peaknas::cli {
namespace {

TEST(Format, NamesAndNumbers) {
  EXPECT_EQ(StateName(v1::JOB_STATE_RUNNING), "RUNNING");
  EXPECT_EQ(StateName(v1::TRIAL_STATE_SUCCEEDED), "SUCCEEDED");
  EXPECT_TRUE(Ended(v1::JOB_STATE_CANCELLED));
  EXPECT_FALSE(Ended(v1::JOB_STATE_PENDING));
  EXPECT_EQ(Fixed(27.04567, 2), "27.05");
  EXPECT_EQ(StripPrefix("JOB_STATE_FAILED", "JOB_STATE_"), "FAILED");
  EXPECT_EQ(StripPrefix("FAILED", "JOB_STATE_"), "FAILED");
}

TEST(Format, CsvQuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  std::ostringstream out;
  PrintCsv(out, {{"id", "note"}, {"t-1", "x,y"}});
  EXPECT_EQ(out.str(), "id,note\nt-1,\"x,y\"\n");
}

TEST(Format, TableColumnsAlignAndTheLastIsNotPadded) {
  std::ostringstream out;
  PrintTable(out, {{"ID", "STATE", "NOTE"}, {"t-10", "OK", "x"}, {"t-2", "FAILED", ""}});
  EXPECT_EQ(out.str(),
            "ID    STATE   NOTE\n"
            "t-10  OK      x\n"
            "t-2   FAILED  \n");
}

TEST(Format, CountsAndLineageInWords) {
  v1::TrialCounts c;
  c.set_pending(1);
  c.set_running(2);
  c.set_succeeded(3);
  c.set_failed(4);
  EXPECT_EQ(Counts(c), "pending 1, running 2, succeeded 3, failed 4, rejected 0, cancelled 0");
  EXPECT_EQ(Done(c), 7);
  c.set_over_budget_ancestors(2);
  EXPECT_NE(Counts(c).find("(2 of them over-budget pruning ancestors"), std::string::npos);

  EXPECT_EQ(LineageText(false, v1::Lineage()), "-");
  v1::Lineage l;
  l.set_parent_trial_id("t-3");
  l.set_role("level");
  l.set_level(1);
  l.set_iteration(2);
  EXPECT_EQ(LineageText(true, l), "t-3 level 1, step 2");
  l.set_role("start");
  l.clear_parent_trial_id();
  l.set_iteration(0);
  l.set_over_budget(true);
  EXPECT_EQ(LineageText(true, l), "start, over budget");
}

TEST(Format, ArchitectureJsonIsCanonicalOrEmpty) {
  v1::Architecture a;
  EXPECT_EQ(ArchJson(a), "") << "an invalid message";
  EXPECT_TRUE(ArchJsonValue(a).is_null());
}

TEST(ReadJobSpec, ReadsAFileAndNamesWhatIsWrong) {
  base::TempDir dir("peaknas-format");
  ASSERT_TRUE(dir.ok());
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.Sub(name)) << text;
    return dir.Sub(name);
  };
  auto good = ReadJobSpec(write("good.json", R"({"name": "x", "trials": 4,
      "budget": {"bytes": "1048576"}})"));
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->name(), "x");
  EXPECT_EQ(good->trials(), 4);
  EXPECT_EQ(good->budget().bytes(), 1048576);

  const auto message = [](const StatusOr<v1::JobSpec>& s) { return s.status().message(); };
  const std::string unknown = write("unknown.json", R"({"budget": {"bytez": 1}})");
  EXPECT_EQ(message(ReadJobSpec(unknown))
                .rfind("\"" + unknown +
                           "\": spec.budget.bytez: unknown "
                           "field; allowed: ",
                       0),
            0u)
      << message(ReadJobSpec(unknown));
  EXPECT_NE(message(ReadJobSpec(write("bad.json", "{\"name\": "))).find("malformed JSON at byte"),
            std::string::npos);
  EXPECT_NE(message(ReadJobSpec(write("list.json", "[1]"))).find("expected a JSON object"),
            std::string::npos);
  EXPECT_NE(message(ReadJobSpec(write("type.json", R"({"trials": "many"})"))).find("spec: "),
            std::string::npos);
  // A number no double holds is bad input, not an internal error.
  const auto huge = ReadJobSpec(write("huge.json", R"({"trials": 1e400})"));
  EXPECT_EQ(huge.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(message(huge).find("malformed JSON"), std::string::npos) << message(huge);
  EXPECT_EQ(ReadJobSpec(dir.Sub("missing.json")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadJobSpec(dir.path().string()).status().code(), StatusCode::kInvalidArgument);
}

TEST(FrontierSvg, DrawsTheFrontTheBudgetAndTheRejected) {
  v1::Job job;
  job.set_id("j-7");
  job.mutable_spec()->set_name("a <small> & quick job");
  job.mutable_spec()->mutable_budget()->set_bytes(std::int64_t{32} << 20);
  v1::Frontier frontier;
  frontier.set_hypervolume(1.25);
  std::vector<v1::Trial> trials;
  const auto trial = [&](const std::string& id, v1::TrialState state, std::int64_t peak,
                         double psnr) {
    v1::Trial t;
    t.set_id(id);
    t.set_state(state);
    t.set_predicted_inference_peak_bytes(peak);
    if (state == v1::TRIAL_STATE_SUCCEEDED) {
      t.mutable_metrics()->set_psnr(psnr);
      t.mutable_metrics()->set_noisy_psnr(20);
    }
    trials.push_back(t);
  };
  trial("t-1", v1::TRIAL_STATE_SUCCEEDED, 4 << 20, 26);
  trial("t-2", v1::TRIAL_STATE_SUCCEEDED, 16 << 20, 28);
  trial("t-3", v1::TRIAL_STATE_SUCCEEDED, 20 << 20, 27);  // dominated by t-2
  trial("t-4", v1::TRIAL_STATE_REJECTED, std::int64_t{300} << 20, 0);
  trial("t-5", v1::TRIAL_STATE_PENDING, 8 << 20, 0);
  for (const char* id : {"t-1", "t-2"}) {
    auto* p = frontier.add_points();
    p->set_trial_id(id);
    p->set_peak_bytes(std::string(id) == "t-1" ? 4 << 20 : 16 << 20);
    p->set_psnr(std::string(id) == "t-1" ? 26 : 28);
  }
  const std::string svg = FrontierSvg(job, frontier, trials);
  const auto count = [&](const std::string& needle) {
    int n = 0;
    for (auto at = svg.find(needle); at != std::string::npos; at = svg.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_EQ(count("class=\"front\""), 2);
  EXPECT_EQ(count("class=\"dominated\""), 1);
  EXPECT_EQ(count("class=\"rejected\""), 1);
  EXPECT_EQ(count("class=\"budget\""), 1);
  EXPECT_NE(svg.find("t-2: 8.00 dB at 16.00 MiB"), std::string::npos) << svg;  // gain, not PSNR
  EXPECT_NE(svg.find("a &lt;small&gt; &amp; quick job"), std::string::npos);
  EXPECT_EQ(svg.find("<small>"), std::string::npos);
  EXPECT_EQ(count("<"), count(">"));
}

}  // namespace
}  // namespace peaknas::cli
