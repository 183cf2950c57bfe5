// The file the dataset fuzz targets hand to the readers: the readers take paths (the SIDD
// layout is a folder of files), so each input is written to one scratch file per process first.
#ifndef PEAKNAS_FUZZ_DATASET_FILES_H_
#define PEAKNAS_FUZZ_DATASET_FILES_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace peaknas::fuzz {

// Writes `data` to this process's scratch file (created on first use with the suffix, removed
// at exit) and returns its path; aborts when the file cannot be written.
inline const std::string& WriteScratchFile(const std::uint8_t* data, std::size_t size,
                                           const char* suffix) {
  static const std::string path = "/tmp/peaknas-fuzz-" + std::to_string(getpid()) + suffix;
  static const bool removed_at_exit = std::atexit([] { std::remove(path.c_str()); }) == 0;
  (void)removed_at_exit;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

}  // namespace peaknas::fuzz

#endif  // PEAKNAS_FUZZ_DATASET_FILES_H_
