// SeededRng: the one pseudo-random source of the data layer (splits, shuffles, length grouping).
// The output for a given seed is the same on every platform and standard library: std::mt19937_64's
// sequence is fixed by the C++ standard, and the bounded integers and shuffles below are written
// here instead of using std::uniform_int_distribution / std::shuffle, whose algorithms differ
// between libstdc++, libc++ and MSVC.
//
// Ownership: a value type holding its engine state. Thread-safety: not thread-safe; give each
// thread its own.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace hpsearch::core {

// Combines a base seed with a stream index (an epoch, a purpose tag) into an unrelated-looking
// seed, so that epoch 0 and epoch 1 of one seed do not produce overlapping streams the way seed and
// seed+1 might.
uint64_t MixSeed(uint64_t seed, uint64_t stream);

class SeededRng {
 public:
  explicit SeededRng(uint64_t seed);

  // The next raw 64-bit output of the engine.
  uint64_t NextU64() { return engine_(); }

  // A uniformly distributed integer in [0, bound), without modulo bias (rejection sampling).
  // REQUIRES: bound > 0.
  uint64_t UniformBelow(uint64_t bound);

  // Permutes `items` uniformly at random (Fisher-Yates, from the back).
  template <typename T>
  void Shuffle(std::vector<T>& items) {
    for (size_t i = items.size(); i > 1; --i) {
      const size_t j = static_cast<size_t>(UniformBelow(i));
      std::swap(items[i - 1], items[j]);
    }
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace hpsearch::core
