// SamplingRng: the one random generator of the samplers (SplitMix64), written out so that a seed
// gives the same draws on every platform and standard library (std::uniform_*_distribution do
// not). Small state, cheap to copy; a sampler derives one per proposal from SampleRequest::seed,
// so nothing random survives between calls. Not thread-safe (value type; use one per thread).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

namespace hpsearch::server {

class SamplingRng {
 public:
  explicit SamplingRng(uint64_t seed) : state_(seed) {}

  // The next 64 random bits.
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform01() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // Uniform in (0, 1): never 0, for inverse CDFs and logarithms.
  double UniformOpen01() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }

  // Uniform integer in [0, n] without modulo bias.
  uint64_t UniformIndex(uint64_t n) {
    if (n == UINT64_MAX) return Next();
    const uint64_t range = n + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t x;
    do {
      x = Next();
    } while (x >= limit);
    return x % range;
  }

  uint64_t* mutable_state() { return &state_; }

 private:
  uint64_t state_;
};

// FNV-1a of a name: a per-parameter stream key that is the same on every platform (std::hash is
// not).
inline uint64_t NameHash(const std::string& name) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) hash = (hash ^ c) * 0x100000001b3ULL;
  return hash;
}

}  // namespace hpsearch::server
