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
  EXPECT_EQ(ReadJobSpec(dir.Sub("missing.json")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadJobSpec(dir.path().string()).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace peaknas::cli
