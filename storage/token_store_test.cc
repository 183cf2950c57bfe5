// TokenStore on a real SQLite file, opened (and migrated) by SqliteStore first.
#include "storage/token_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>

#include "base/temp_dir.h"
#include "storage/sqlite_store.h"

namespace peaknas::storage {
namespace {

class TokenStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (dir_.path() / "db.sqlite").string();
    auto store = SqliteStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(store).value();
    auto tokens = TokenStore::Open(path_);
    ASSERT_TRUE(tokens.ok()) << tokens.status().message();
    tokens_ = std::move(tokens).value();
  }

  base::TempDir dir_{"peaknas-tokens"};
  std::string path_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<TokenStore> tokens_;
};

TEST_F(TokenStoreTest, FindsATokenBySecretAndKeepsOnlyItsHash) {
  ASSERT_FALSE(*tokens_->Configured());
  const StatusOr<std::string> secret = tokens_->Create("alice", "submitter", "lab-a", 1000);
  ASSERT_TRUE(secret.ok()) << secret.status().message();
  EXPECT_EQ(secret->rfind("pnk_", 0), 0u);
  EXPECT_EQ(secret->size(), 4u + 43u);
  EXPECT_TRUE(*tokens_->Configured());

  const auto found = tokens_->Find(*secret);
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->name, "alice");
  EXPECT_EQ((*found)->role, "submitter");
  EXPECT_EQ((*found)->tenant, "lab-a");
  // One character off, or no prefix: not a token.
  std::string wrong = *secret;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(tokens_->Find(wrong)->has_value());
  EXPECT_FALSE(tokens_->Find(secret->substr(4))->has_value());

  // The file holds the hash, never the secret.
  std::string bytes;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    std::FILE* f = std::fopen(entry.path().c_str(), "rb");
    ASSERT_NE(f, nullptr);
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) bytes.append(buf, n);
    std::fclose(f);
  }
  EXPECT_EQ(bytes.find(secret->substr(4)), std::string::npos);
}

TEST_F(TokenStoreTest, TwoSecretsDiffer) {
  const auto a = tokens_->Create("a", "reader", "*", 1);
  const auto b = tokens_->Create("b", "reader", "*", 1);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST_F(TokenStoreTest, RevokedTokensAreNotFoundButStillConfigure) {
  const auto secret = tokens_->Create("w1", "worker", "w1", 1);
  ASSERT_TRUE(secret.ok());
  // Another connection (another process, in the server's case) revokes it.
  auto other = TokenStore::Open(path_);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Revoke("w1", 2).ok());
  EXPECT_FALSE(tokens_->Find(*secret)->has_value());
  EXPECT_TRUE(*tokens_->Configured());
  const auto listed = tokens_->List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].revoked_ms, 2);
  EXPECT_TRUE(tokens_->Revoke("w1", 3).ok());  // again: unchanged
  EXPECT_EQ((*tokens_->List())[0].revoked_ms, 2);
  EXPECT_EQ(tokens_->Revoke("nobody", 3).code(), StatusCode::kNotFound);
}

TEST_F(TokenStoreTest, RefusesBadNamesRolesTenantsAndDuplicates) {
  EXPECT_EQ(tokens_->Create("", "reader", "t", 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tokens_->Create("a b", "reader", "t", 1).status().message().rfind("name: ", 0), 0u);
  EXPECT_EQ(tokens_->Create(std::string(65, 'a'), "reader", "t", 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(tokens_->Create("a", "root", "t", 1).status().message().rfind("role: ", 0), 0u);
  EXPECT_EQ(tokens_->Create("a", "submitter", "*", 1).status().message().rfind("tenant: ", 0), 0u);
  EXPECT_EQ(tokens_->Create("a", "reader", "x/y", 1).status().message().rfind("tenant: ", 0), 0u);
  ASSERT_TRUE(tokens_->Create("a", "reader", "t", 1).ok());
  EXPECT_EQ(tokens_->Create("a", "admin", "t", 1).status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(*tokens_->Configured());
}

TEST(TokenStoreOpen, RefusesAFileWithoutTheTable) {
  base::TempDir dir("peaknas-tokens");
  const std::string path = dir.Sub("old.sqlite");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "CREATE TABLE jobs (id INTEGER PRIMARY KEY)", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  const auto opened = TokenStore::Open(path);
  EXPECT_EQ(opened.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(TokenStore::Open(dir.Sub("absent.sqlite")).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace peaknas::storage
