// The design card's arrows, checked on the real tree and the real build: core/ and kernels/ never
// reach service libraries, server/, db/, transfer/ and cli/ never reach LibTorch, each lower
// library reaches nothing above it (kernels/ no core/, db/ no server/, transfer/ neither server/
// nor db/, server/sampling/ only proto and Abseil), and the core-only configuration links LibTorch
// and header-only libraries alone. formats/ (the LibTorch-free readers) sits below core/ and the
// study validator and reaches nothing of ours. (The `hpsearch` program, cli/, starts workers and
// never trains in-process.)
#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

#include "testing/subprocess.h"
#include "testing/testing.h"

namespace hpsearch {
namespace {

namespace fs = std::filesystem;

// Every `#include` line under the given folders matching `forbidden`, as "file:line: text".
std::vector<std::string> ForbiddenIncludes(const std::vector<std::string>& folders,
                                           const std::regex& forbidden) {
  std::vector<std::string> hits;
  for (const std::string& folder : folders) {
    const fs::path root = testing::SourceDir() / folder;
    if (!fs::exists(root)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
      const std::string ext = entry.path().extension().string();
      if (ext != ".h" && ext != ".cc" && ext != ".cu" && ext != ".cuh" && ext != ".inc") continue;
      std::ifstream in(entry.path());
      std::string line;
      for (int n = 1; std::getline(in, line); ++n) {
        if (line.rfind("#include", 0) == 0 && std::regex_search(line, forbidden)) {
          hits.push_back(entry.path().string() + ":" + std::to_string(n) + ": " + line);
        }
      }
    }
  }
  return hits;
}

// Every quoted `#include "..."` under the given folders whose path does not start with one of the
// `allowed` prefixes (system headers in <...> are not checked).
std::vector<std::string> IncludesOutside(const std::vector<std::string>& folders,
                                         const std::vector<std::string>& allowed) {
  std::string alternatives;
  for (const std::string& prefix : allowed) {
    alternatives += (alternatives.empty() ? "" : "|") +
                    std::regex_replace(prefix, std::regex(R"([.])"), R"(\.)");
  }
  return ForbiddenIncludes(folders, std::regex("^#include\\s+\"(?!(" + alternatives + "))"));
}

std::string Join(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  return text;
}

TEST_CASE("core/ and kernels/ include no service library", "[build][architecture]") {
  // Of base/, only the library-free training defaults.
  const std::regex service(
      R"([<"](grpc|grpcpp|google/protobuf|sqlite3|absl/|spdlog/|yaml-cpp/|CLI/|hpsearch/v1/|db/|server/|worker/|cli/|proto/|rpc/|base/(?!training_defaults\.h)))");
  auto hits = ForbiddenIncludes({"core", "kernels"}, service);
  INFO(Join(hits));
  REQUIRE(hits.empty());
}

TEST_CASE("server/, db/, proto/, transfer/ and cli/ include neither LibTorch nor core/",
          "[build][architecture]") {
  const std::regex torch(R"([<"](torch/|ATen/|c10/|core/|kernels/|worker/))");
  auto hits = ForbiddenIncludes({"server", "db", "proto", "transfer", "cli"}, torch);
  INFO(Join(hits));
  REQUIRE(hits.empty());
}

TEST_CASE("rpc/ sits at the bottom beside proto/ and worker/ reaches neither server/ nor db/",
          "[build][architecture]") {
  const std::regex upward(R"([<"](db/|server/|worker/|cli/|core/|kernels/|torch/|ATen/|c10/))");
  auto rpc_hits = ForbiddenIncludes({"rpc"}, upward);
  INFO(Join(rpc_hits));
  CHECK(rpc_hits.empty());
  const std::regex coordinator_side(R"([<"](db/|server/|cli/|sqlite3))");
  auto worker_hits = ForbiddenIncludes({"worker"}, coordinator_side);
  INFO(Join(worker_hits));
  CHECK(worker_hits.empty());
}

TEST_CASE("Each lower library reaches nothing above it", "[build][architecture]") {
  const std::regex above_kernels(R"([<"](core/|db/|server/|worker/|cli/|torch/|ATen/))");
  auto kernels_hits = ForbiddenIncludes({"kernels"}, above_kernels);
  INFO(Join(kernels_hits));
  CHECK(kernels_hits.empty());
  const std::regex above_db(R"([<"](server/|worker/|cli/|rpc/|transfer/))");
  auto db_hits = ForbiddenIncludes({"db"}, above_db);
  INFO(Join(db_hits));
  CHECK(db_hits.empty());
  const std::regex above_transfer(R"([<"](server/|db/|worker/|cli/|sqlite3))");
  auto transfer_hits = ForbiddenIncludes({"transfer"}, above_transfer);
  INFO(Join(transfer_hits));
  CHECK(transfer_hits.empty());
}

TEST_CASE("server/'s sub-systems reach only what their libraries link", "[build][architecture]") {
  // Samplers and pruners: the proto messages and Abseil, nothing else of ours.
  auto sampling =
      IncludesOutside({"server/sampling"}, {"server/sampling/", "hpsearch/v1/", "absl/"});
  INFO(Join(sampling));
  CHECK(sampling.empty());
  // The study file: samplers (for their option checks), the data and config.json readers, proto,
  // Abseil, yaml-cpp and JSON.
  auto study_file =
      IncludesOutside({"server/study_file"},
                      {"server/study_file/", "server/sampling/", "formats/", "proto/", "base/",
                       "hpsearch/v1/", "absl/", "google/protobuf/", "yaml-cpp/", "nlohmann/"});
  INFO(Join(study_file));
  CHECK(study_file.empty());
  // The report reads the database and the study file, never the coordinator.
  auto report = IncludesOutside(
      {"server/report"}, {"server/report/", "server/study_file/", "server/sampling/", "proto/",
                          "db/", "transfer/", "hpsearch/v1/", "absl/", "google/protobuf/"});
  INFO(Join(report));
  CHECK(report.empty());
  // The dashboard reads the database and draws with the report; it never reaches the coordinator.
  auto dashboard = IncludesOutside(
      {"server/dashboard"},
      {"server/dashboard/", "server/report/", "server/study_file/", "db/", "rpc/", "proto/",
       "hpsearch/v1/", "absl/", "nlohmann/", "httplib.h", "google/protobuf/", "zlib.h"});
  INFO(Join(dashboard));
  CHECK(dashboard.empty());
  // base/ is the bottom: Abseil only.
  auto base = IncludesOutside({"base"}, {"base/", "absl/"});
  INFO(Join(base));
  CHECK(base.empty());
}

TEST_CASE("formats/ reaches nothing of ours and no library but nlohmann-json",
          "[build][architecture]") {
  // core/ and the study validator both build on it, so it may use neither's libraries.
  auto ours = IncludesOutside({"formats"}, {"formats/"});
  INFO(Join(ours));
  CHECK(ours.empty());
  const std::regex libraries(
      R"([<"](torch/|ATen/|c10/|absl/|grpc|google/protobuf|sqlite3|spdlog/|yaml-cpp/|CLI/))");
  auto library_hits = ForbiddenIncludes({"formats"}, libraries);
  INFO(Join(library_hits));
  CHECK(library_hits.empty());
}

TEST_CASE("Programs are started only through base/subprocess.h", "[build][architecture]") {
  // One process-spawning class for the worker, the CLI and the tests, so that every child is set
  // up, signalled and reaped one way. worker/trial_reaper.cc is a program of its own on libc alone.
  const std::regex spawn(R"(\b(fork|vfork|execv|execve|execvp|execl|execlp|posix_spawn)\s*\()");
  std::vector<std::string> hits;
  for (const char* folder :
       {"base", "cli", "core", "db", "formats", "rpc", "server", "tests", "transfer", "worker"}) {
    for (const auto& entry : fs::recursive_directory_iterator(testing::SourceDir() / folder)) {
      const std::string ext = entry.path().extension().string();
      if (ext != ".h" && ext != ".cc") continue;
      const std::string relative = fs::relative(entry.path(), testing::SourceDir()).string();
      if (relative == "base/subprocess.h" || relative == "worker/trial_reaper.cc") continue;
      std::ifstream in(entry.path());
      std::string line;
      for (int n = 1; std::getline(in, line); ++n) {
        const size_t code = line.find_first_not_of(" \t");
        if (code != std::string::npos && line.compare(code, 2, "//") == 0) continue;
        if (std::regex_search(line, spawn)) hits.push_back(relative + ":" + std::to_string(n));
      }
    }
  }
  INFO(Join(hits));
  CHECK(hits.empty());
}

TEST_CASE("No test name holds a semicolon or an opening bracket", "[build][tests]") {
  // ctest's test list is semicolon-separated: catch_discover_tests registers such a test under the
  // name cut at the ';', which matches no Catch2 test, so it "passes" without running anything. A
  // '[' starts a tag in the Catch2 test spec ctest passes back, so the name selects other tests or
  // none.
  const std::regex semicolon_name(R"re(TEST_CASE\(\s*"[^"]*[;\[])re");
  std::vector<std::string> hits;
  for (const auto& entry : fs::recursive_directory_iterator(testing::SourceDir() / "tests")) {
    if (entry.path().extension() != ".cc") continue;
    std::ifstream in(entry.path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (auto it = std::sregex_iterator(text.begin(), text.end(), semicolon_name);
         it != std::sregex_iterator(); ++it) {
      hits.push_back(entry.path().string() + ": " + it->str());
    }
  }
  INFO(Join(hits));
  CHECK(hits.empty());
}

TEST_CASE("The core-only configuration names no service library on its compile or link lines",
          "[build][architecture]") {
  testing::TempDir build;
  const std::string source = testing::SourceDir().string();
  testing::ProcessResult configure =
      testing::RunProcess({"/usr/bin/cmake", "-S", source, "-B", build.path().string(), "-G",
                           "Ninja", "-DHPSEARCH_CORE_ONLY=ON"});
  INFO(configure.out << configure.err);
  REQUIRE(configure.exit_code == 0);
  testing::ProcessResult commands =
      testing::RunProcess({"/usr/bin/ninja", "-C", build.path().string(), "-t", "commands"});
  REQUIRE(commands.exit_code == 0);
  REQUIRE(commands.out.find("hpsearch-core") != std::string::npos);
  REQUIRE(commands.out.find("libtorch") != std::string::npos);
  for (const char* library : {"grpc", "protobuf", "sqlite", "absl", "spdlog", "yaml-cpp"}) {
    INFO("core-only build lines mention " << library);
    REQUIRE(commands.out.find(library) == std::string::npos);
  }
}

}  // namespace
}  // namespace hpsearch
