// search::LoadArchitectureArgument: the --arch argument of `peaknas estimate` and
// `peaknas-worker once`, inline JSON or a file, with errors that say where it came from.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "base/status.h"
#include "base/temp_dir.h"
#include "search/architecture.h"

namespace peaknas::search {
namespace {

constexpr char kUnet2[] =
    R"({"levels": 2, "widths": [16, 32], "enc_blocks": [1, 1], "dec_blocks": [1],
 "skip": "add", "upsample": "bilinear", "downsample": "maxpool", "activation": "lrelu"})";
constexpr char kUnet2Canonical[] =
    R"({"activation":"lrelu","dec_blocks":[1],"downsample":"maxpool","enc_blocks":[1,1],)"
    R"("levels":2,"skip":"add","upsample":"bilinear","widths":[16,32]})";

::testing::AssertionResult StartsWith(const std::string& text, const std::string& prefix) {
  if (text.rfind(prefix, 0) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\" does not start with \"" << prefix << "\"";
}

// Each test gets a fresh directory under testing::TempDir(), removed afterwards.
class LoadArchitectureArgumentTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(temp_.ok()); }

  // Writes `content` to `name` in the test's directory; returns its path.
  std::string WriteFile(const std::string& name, const std::string& content) const {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  base::TempDir temp_{"peaknas-arch-arg"};
  const std::filesystem::path& dir_ = temp_.path();
};

TEST_F(LoadArchitectureArgumentTest, ReadsInlineJson) {
  const StatusOr<Architecture> arch = LoadArchitectureArgument(kUnet2);
  ASSERT_TRUE(arch.ok()) << arch.status().ToString();
  EXPECT_EQ(ToCanonicalJson(*arch), kUnet2Canonical);
}

TEST_F(LoadArchitectureArgumentTest, InlineJsonMayStartWithWhitespace) {
  const StatusOr<Architecture> arch = LoadArchitectureArgument(std::string(" \n\t") + kUnet2);
  ASSERT_TRUE(arch.ok()) << arch.status().ToString();
  EXPECT_EQ(ToCanonicalJson(*arch), kUnet2Canonical);
}

TEST_F(LoadArchitectureArgumentTest, ReadsAFile) {
  const StatusOr<Architecture> arch = LoadArchitectureArgument(WriteFile("unet2.json", kUnet2));
  ASSERT_TRUE(arch.ok()) << arch.status().ToString();
  EXPECT_EQ(ToCanonicalJson(*arch), kUnet2Canonical);
}

TEST_F(LoadArchitectureArgumentTest, MissingFileIsNotFoundAndNamesThePath) {
  const std::string path = (dir_ / "absent.json").string();
  const StatusOr<Architecture> arch = LoadArchitectureArgument(path);
  ASSERT_FALSE(arch.ok());
  EXPECT_EQ(arch.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(arch.status().message(),
            "arch \"" + path +
                "\": cannot open: No such file or directory (--arch takes a file path or inline "
                "JSON starting with '{')");
}

TEST_F(LoadArchitectureArgumentTest, DirectoryIsRejected) {
  const StatusOr<Architecture> arch = LoadArchitectureArgument(dir_.string());
  ASSERT_FALSE(arch.ok());
  EXPECT_EQ(arch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(arch.status().message(),
            "arch \"" + dir_.string() + "\": is a directory; expected an architecture JSON file");
}

TEST_F(LoadArchitectureArgumentTest, EmptyOrBlankArgumentIsRejected) {
  for (const std::string arg : {"", "  \t\n"}) {
    const StatusOr<Architecture> arch = LoadArchitectureArgument(arg);
    ASSERT_FALSE(arch.ok()) << "\"" << arg << "\"";
    EXPECT_EQ(arch.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(arch.status().message(),
              "arch: empty; expected a path to an architecture JSON file or the JSON object "
              "itself");
  }
}

TEST_F(LoadArchitectureArgumentTest, InvalidFieldInAFileNamesTheFileThenTheField) {
  const std::string path =
      WriteFile("bad.json", R"({"levels": 2, "widths": [16, 12], "enc_blocks": [1, 1],
 "dec_blocks": [1], "skip": "add", "upsample": "bilinear", "downsample": "maxpool",
 "activation": "lrelu"})");
  const StatusOr<Architecture> arch = LoadArchitectureArgument(path);
  ASSERT_FALSE(arch.ok());
  EXPECT_EQ(arch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(StartsWith(arch.status().message(), "arch \"" + path + "\": widths[1]: "));
}

TEST_F(LoadArchitectureArgumentTest, MalformedInlineJsonSaysArchNotArchitecture) {
  const StatusOr<Architecture> arch = LoadArchitectureArgument("{bad");
  ASSERT_FALSE(arch.ok());
  EXPECT_EQ(arch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(StartsWith(arch.status().message(), "arch: malformed JSON"));
}

}  // namespace
}  // namespace peaknas::search
