// ArtifactStore and ArtifactWriter on a real directory: what a committed, a refused and an
// abandoned upload leave on disk, chunk order and size limits, and downloads that notice a file
// changed behind the store's back.
#include "server/artifact_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/sha256.h"
#include "base/temp_dir.h"

namespace peaknas::server {
namespace {

namespace fs = std::filesystem;

class ArtifactStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.ok()); }

  // An upload of trial t-7 of job j-2 under lease token 3, placed in a fresh store.
  ArtifactUpload Placed(const ArtifactStore& store) {
    ArtifactUpload upload;
    upload.lease_id = "7.3";
    upload.fencing_token = 3;
    upload.trial_row = 7;
    upload.job_id = "j-2";
    upload.trial_id = "t-7";
    EXPECT_TRUE(store.Create().ok());
    EXPECT_TRUE(store.Place(upload).ok());
    return upload;
  }

  // Writes `bytes` through an ArtifactWriter in chunks of `chunk`; returns its hex digest.
  static std::string Write(const ArtifactUpload& upload, const std::string& bytes,
                           std::size_t chunk) {
    ArtifactWriter out(upload, 1 << 20);
    for (std::size_t at = 0; at < bytes.size(); at += chunk) {
      EXPECT_TRUE(
          out.Append(std::string_view(bytes).substr(at, chunk), static_cast<std::int64_t>(at))
              .ok());
    }
    EXPECT_TRUE(out.Close().ok());
    EXPECT_EQ(out.size(), static_cast<std::int64_t>(bytes.size()));
    return out.HexDigest();
  }

  base::TempDir dir_{"peaknas-artifacts"};
  const fs::path& root_ = dir_.path();
};

TEST_F(ArtifactStoreTest, ACommittedUploadBecomesTheFinalFileAndStreamsBack) {
  const ArtifactStore store((root_ / "artifacts").string());
  const ArtifactUpload upload = Placed(store);
  EXPECT_EQ(upload.final_path, (root_ / "artifacts" / "j-2" / "t-7.pt").string());
  EXPECT_EQ(upload.partial_path, (root_ / "artifacts" / "j-2" / "t-7.pt.3.partial").string());
  const std::string bytes(2500, 'm');
  const std::string sha = Write(upload, bytes, 1000);
  EXPECT_EQ(sha, base::Sha256Hex(bytes));
  ASSERT_TRUE(store.Commit(upload, 2500, sha, sha).ok());
  EXPECT_FALSE(fs::exists(upload.partial_path));
  ASSERT_TRUE(fs::exists(upload.final_path));

  // Streamed back in chunks, the last one marked.
  const ArtifactFile file{
      .path = upload.final_path, .filename = "t-7.pt", .size_bytes = 2500, .sha256 = sha};
  std::string received;
  std::vector<bool> lasts;
  ASSERT_TRUE(
      ArtifactStore::Stream(file, 1024, [&](std::string_view data, std::int64_t offset, bool last) {
        EXPECT_EQ(offset, static_cast<std::int64_t>(received.size()));
        received.append(data);
        lasts.push_back(last);
        return true;
      }).ok());
  EXPECT_EQ(received, bytes);
  EXPECT_EQ(lasts, (std::vector<bool>{false, false, true}));

  // A reader that leaves stops the stream without an error.
  int calls = 0;
  EXPECT_TRUE(ArtifactStore::Stream(file, 1024, [&](std::string_view, std::int64_t, bool) {
                ++calls;
                return false;
              }).ok());
  EXPECT_EQ(calls, 1);

  // Changed on disk: DATA_LOSS, and the changed bytes never reach the reader as the last chunk.
  { std::ofstream(upload.final_path, std::ios::binary) << std::string(2500, 'x'); }
  const Status changed =
      ArtifactStore::Stream(file, 4096, [](std::string_view, std::int64_t, bool) {
        ADD_FAILURE() << "a changed file's last chunk was sent";
        return true;
      });
  EXPECT_EQ(changed.code(), StatusCode::kDataLoss);
  EXPECT_NE(changed.message().find("no longer matches"), std::string::npos);
}

TEST_F(ArtifactStoreTest, ARefusedCommitLeavesNoFile) {
  const ArtifactStore store((root_ / "artifacts").string());
  const ArtifactUpload upload = Placed(store);
  const std::string sha = Write(upload, "model", 2);
  const std::string other(64, 'a');
  struct Case {
    std::int64_t size;
    std::string claimed;
    StatusCode code;
  };
  for (const Case& c :
       {Case{5, "ABC", StatusCode::kInvalidArgument}, Case{6, sha, StatusCode::kDataLoss},
        Case{5, other, StatusCode::kDataLoss}}) {
    SCOPED_TRACE(c.claimed);
    Write(upload, "model", 5);
    EXPECT_EQ(store.Commit(upload, c.size, sha, c.claimed).code(), c.code);
    EXPECT_FALSE(fs::exists(upload.partial_path));
    EXPECT_FALSE(fs::exists(upload.final_path));
  }
  Write(upload, "model", 5);
  ArtifactStore::Discard(upload);
  EXPECT_FALSE(fs::exists(upload.partial_path));
}

TEST_F(ArtifactStoreTest, TheWriterTakesChunksInOrderWithinItsLimit) {
  const ArtifactStore store((root_ / "artifacts").string());
  const ArtifactUpload upload = Placed(store);
  ArtifactWriter out(upload, 8);
  ASSERT_TRUE(out.Append("abcde", 0).ok());
  const Status gap = out.Append("fg", 7);
  EXPECT_EQ(gap.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gap.message(), "chunk.offset: 7, expected 5");
  ArtifactWriter small(upload, 8);
  ASSERT_TRUE(small.Append("abcde", 0).ok());
  EXPECT_EQ(small.Append("fghij", 5).code(), StatusCode::kResourceExhausted);

  const ArtifactStore unusable((root_ / "file").string());
  { std::ofstream(root_ / "file") << "not a directory"; }
  EXPECT_EQ(unusable.Create().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace peaknas::server
