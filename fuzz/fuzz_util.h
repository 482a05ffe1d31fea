// Helpers shared by the fuzz targets in fuzz/ (each file defines LLVMFuzzerTestOneInput once).
//
// The same target sources build two ways (fuzz/CMakeLists.txt): with clang and -fsanitize=fuzzer
// (scripts/fuzz.sh build), or with the default compiler and fuzz/replay_main.cc as main(), which
// replays the committed corpus under ctest. Nothing here depends on which.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace hpsearch::fuzz {

// The input as text.
inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A file of this process that holds the latest input, for readers whose only entry point is a path
// (ZipArchive, ReadSafetensors, LoadHfGpt2Config). One path per process and `name`, rewritten each
// run; removed at exit.
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& name) {
    const char* tmp = std::getenv("TMPDIR");
    std::filesystem::path dir = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
    path_ = (dir / ("hpsearch-fuzz-" + std::to_string(getpid()) + "-" + name)).string();
  }
  ~ScratchFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Writes `data` to the file and returns its path. Aborts when the write fails: a fuzzer that
  // silently reads a stale file would report nothing useful.
  const std::string& Write(const uint8_t* data, size_t size) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) {
      std::fprintf(stderr, "fuzz: cannot write %s\n", path_.c_str());
      std::abort();
    }
    return path_;
  }

 private:
  std::string path_;
};

}  // namespace hpsearch::fuzz
