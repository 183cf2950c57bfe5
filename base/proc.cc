#include "base/proc.h"

#include <cstdlib>
#include <fstream>

namespace peaknas::base {

std::int64_t ProcKibField(const std::string& path, std::string_view key) {
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) {
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
        line[key.size()] == ':') {
      return std::atoll(line.c_str() + key.size() + 1) * 1024;
    }
  }
  return -1;
}

}  // namespace peaknas::base
