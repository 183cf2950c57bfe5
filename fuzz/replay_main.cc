// Runs a fuzz target over files, without libFuzzer: each argument is a file (one input) or a
// directory (every regular file in it is one input). This is how the seed corpora are replayed
// on every test run, with any compiler; fuzzing proper uses libFuzzer (clang, PEAKNAS_FUZZ).
// Exit status 0 when every input ran (the target aborts on a failed check), 2 for a path that
// cannot be read.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

bool Run(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return false;
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int inputs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path path(argv[i]);
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    } else {
      files.push_back(path);
    }
    if (files.empty()) {
      std::fprintf(stderr, "replay: no input in %s\n", argv[i]);
      return 2;
    }
    for (const auto& file : files) {
      if (!Run(file)) {
        std::fprintf(stderr, "replay: cannot read %s\n", file.c_str());
        return 2;
      }
      ++inputs;
    }
  }
  std::printf("replay: %d inputs ran\n", inputs);
  return inputs > 0 ? 0 : 2;
}
