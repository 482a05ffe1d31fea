// Measures LoadCheckpoint on checkpoint directories given on the command line (default: the tiny
// fixtures under tests/data/checkpoints). Prints one row per directory: the weight file, its size,
// the best of --repeats wall times and the throughput. The page cache is warm after the first
// repeat, so the figure is parsing + copying cost, not disk speed.
//
//   checkpoint_load_bench [--repeats N] DIR...
//   /usr/bin/python3 scripts/make_bench_checkpoint.py --out /tmp/ckpt   # GPT-2-medium-sized inputs
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/error.h"

namespace {

namespace fs = std::filesystem;

int Run(int argc, char** argv) {
  int repeats = 3;
  std::vector<fs::path> dirs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--repeats" && i + 1 < argc) {
      repeats = std::max(1, std::atoi(argv[++i]));
    } else {
      dirs.emplace_back(arg);
    }
  }
  if (dirs.empty()) {
    const fs::path fixtures = fs::path(HPSEARCH_SOURCE_DIR) / "tests/data/checkpoints";
    for (const char* name : {"tiny-gpt2-safetensors", "tiny-gpt2-zip", "tiny-gpt2-legacy"}) {
      dirs.push_back(fixtures / name);
    }
  }
  std::printf("%-48s %-20s %10s %10s %10s %8s\n", "directory", "weights", "MB", "best s", "MB/s",
              "tensors");
  for (const fs::path& dir : dirs) {
    double best = 1e300;
    hpsearch::core::Checkpoint checkpoint;
    for (int r = 0; r < repeats; ++r) {
      const auto start = std::chrono::steady_clock::now();
      checkpoint = hpsearch::core::LoadCheckpoint(dir);
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      best = std::min(best, took.count());
    }
    const double mb = static_cast<double>(fs::file_size(checkpoint.weights_path)) / 1e6;
    std::printf("%-48s %-20s %10.1f %10.3f %10.1f %8zu\n", dir.filename().c_str(),
                checkpoint.weights_path.filename().c_str(), mb, best, mb / best,
                checkpoint.tensors.size());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const hpsearch::core::Error& e) {
    std::fprintf(stderr, "checkpoint_load_bench: %s\n", e.what());
    return 1;
  }
}
