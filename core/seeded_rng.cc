#include "core/seeded_rng.h"

#include "core/error.h"

namespace hpsearch::core {
namespace {

// SplitMix64's finaliser: a bijection on 64-bit words with good avalanche, so nearby inputs map far
// apart.
uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t MixSeed(uint64_t seed, uint64_t stream) { return SplitMix64(SplitMix64(seed) ^ stream); }

SeededRng::SeededRng(uint64_t seed) : engine_(seed) {}

uint64_t SeededRng::UniformBelow(uint64_t bound) {
  if (bound == 0) Fail(ErrorCode::kInternal, "SeededRng::UniformBelow: bound must be positive");
  // 2^64 mod bound raw values at the bottom of the range would make small results more likely;
  // reject them.
  const uint64_t threshold = (0 - bound) % bound;
  while (true) {
    const uint64_t r = engine_();
    if (r >= threshold) return r % bound;
  }
}

}  // namespace hpsearch::core
