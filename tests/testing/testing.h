// Helpers shared by every hpsearch test binary: where the source tree and ../shared are, temporary
// directories, and skipping a test that cannot run on this machine. Header-only and free of service
// libraries so core-only builds use it too.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

namespace hpsearch::testing {

// Exit code ctest maps to "skipped" (SKIP_RETURN_CODE in cmake/HpsearchWarnings.cmake).
inline constexpr int kSkipCode = 77;

// Ends the current test process as skipped. ctest runs each Catch2 test case in its own process
// (catch_discover_tests), so exiting here skips exactly one test case.
[[noreturn]] inline void Skip(const std::string& why) {
  std::fprintf(stderr, "SKIPPED: %s\n", why.c_str());
  std::fflush(stderr);
  std::_Exit(kSkipCode);
}

// The repository root: HPSEARCH_SOURCE_DIR (set by ctest) or the compile-time source dir.
inline std::filesystem::path SourceDir() {
  if (const char* dir = std::getenv("HPSEARCH_SOURCE_DIR")) return dir;
  return HPSEARCH_TEST_SOURCE_DIR;
}

// Where hpsearch's programs were built: HPSEARCH_BIN_DIR (set by ctest) or the compile-time bin
// dir.
inline std::filesystem::path BinDir() {
  if (const char* dir = std::getenv("HPSEARCH_BIN_DIR")) return dir;
  return HPSEARCH_TEST_BIN_DIR;
}

// The developers' ../shared folder beside the checkout. Users and some machines lack it: tests that
// read it call SharedDirOrSkip().
inline std::filesystem::path SharedDir() { return SourceDir().parent_path() / "shared"; }
inline std::filesystem::path SharedDirOrSkip() {
  std::filesystem::path dir = SharedDir();
  if (!std::filesystem::is_directory(dir))
    Skip("../shared is not beside the checkout: " + dir.string());
  return dir;
}

// The whole file as bytes ("" when it cannot be read).
inline std::string ReadFileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Writes `bytes` as the whole file and returns its path.
inline std::filesystem::path WriteFileBytes(const std::filesystem::path& path,
                                            const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("hpsearch-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace hpsearch::testing
