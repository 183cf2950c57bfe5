// Test helpers for peaknas_worker_data: a fresh temporary directory per test.
//
// Thread-safety: a ScopedTempDir is owned by one test.
#ifndef PEAKNAS_WORKER_DATA_TEST_UTIL_H_
#define PEAKNAS_WORKER_DATA_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "base/temp_dir.h"

namespace peaknas::data::testing {

// A fresh directory per test, removed with its contents (base::TempDir).
class ScopedTempDir : public base::TempDir {
 public:
  ScopedTempDir() : base::TempDir("peaknas-data") { EXPECT_TRUE(ok()) << "mkdtemp failed"; }
};

inline std::vector<char> ReadFileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteFileBytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

}  // namespace peaknas::data::testing

#endif  // PEAKNAS_WORKER_DATA_TEST_UTIL_H_
