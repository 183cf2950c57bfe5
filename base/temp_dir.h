// A fresh directory for a test, a benchmark or a file a command needs for its run: made with
// mkdtemp under std::filesystem::temp_directory_path() ($TMPDIR, else /tmp), removed with its
// contents when the object goes.
//
// Thread-safety: one owner; distinct objects are independent.
#ifndef PEAKNAS_BASE_TEMP_DIR_H_
#define PEAKNAS_BASE_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace peaknas::base {

class TempDir {
 public:
  // "<tmp>/<prefix>-XXXXXX". ok() is false (and path() empty) when it cannot be made.
  explicit TempDir(std::string_view prefix = "peaknas") {
    std::string pattern =
        (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::filesystem::path& path() const { return path_; }
  // A path inside it.
  std::string Sub(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace peaknas::base

#endif  // PEAKNAS_BASE_TEMP_DIR_H_
