// Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2, 3", SC
// 2011; the generator of Random123 and curand) and hpsearch's one mapping from a dropout draw's
// coordinates to its uniform value. A plain header for host and device code: CUDA kernels and their
// CPU references include it, so a kernel's dropout mask equals its reference's bit for bit. Pure
// functions of their arguments, thread-safe.
//
// THE DROPOUT DRAW CONTRACT. Value `index` (row * width + column for a row-major [rows, width]
// tensor) of the draw (seed, offset) is
//
//   block = Philox4x32-10(counter = {lo(offset / 4), hi(offset / 4), lo(index / 4), hi(index / 4)},
//                         key = {lo(seed), hi(seed)})
//   uniform = (block[index % 4] >> 8) * 2^-24          exactly representable, in [0, 1 - 2^-24]
//   kept    = uniform < 1.0f - p                        (1.0f - p rounded to float once)
//
// (curand's counter after curand_init(seed, index / 4, offset), the layout of PyTorch's own dropout
// kernels), so one Philox call serves 4 consecutive values, offsets 4 apart use disjoint counters
// (two calls that must draw independent masks need offsets at least 4 apart, as the generator's
// philox_engine_inputs(4) hands them out; offsets within one multiple of 4 draw the same values),
// and p = 0 keeps every value.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define HPSEARCH_HOST_DEVICE __host__ __device__
#else
#define HPSEARCH_HOST_DEVICE
#endif

namespace hpsearch::kernels {

struct PhiloxBlock {
  uint32_t v[4];
};

// The Philox4x32 bijection with 10 rounds: Random123's philox4x32_10(counter, key).
HPSEARCH_HOST_DEVICE inline PhiloxBlock Philox4x32_10(PhiloxBlock counter, uint32_t key0,
                                                      uint32_t key1) {
  constexpr uint32_t kMultiplier0 = 0xD2511F53u;
  constexpr uint32_t kMultiplier1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
  constexpr uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1
  for (int round = 0; round < 10; ++round) {
    // nvcc turns the 64-bit product's halves into mul.lo / mul.hi.
    const uint64_t product0 = static_cast<uint64_t>(kMultiplier0) * counter.v[0];
    const uint64_t product1 = static_cast<uint64_t>(kMultiplier1) * counter.v[2];
    const uint32_t hi0 = static_cast<uint32_t>(product0 >> 32);
    const uint32_t lo0 = static_cast<uint32_t>(product0);
    const uint32_t hi1 = static_cast<uint32_t>(product1 >> 32);
    const uint32_t lo1 = static_cast<uint32_t>(product1);
    counter = PhiloxBlock{{hi1 ^ counter.v[1] ^ key0, lo1, hi0 ^ counter.v[3] ^ key1, lo0}};
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return counter;
}

// The 4 raw draws for values 4 * group .. 4 * group + 3 of the draw (seed, offset). The counter is
// curand's after curand_init(seed, /*subsequence=*/group, offset), PyTorch's layout for its own
// dropout kernels: offset / 4 in the low 64 bits, the group (PyTorch: the thread) in the high 64
// bits. A launch therefore uses the counters of exactly the 4 offsets it reserved from the
// generator (philox_engine_inputs(4)) and never another consumer's. Offsets are multiples of 4, as
// the generator hands them out; offsets within one multiple of 4 draw the same values.
HPSEARCH_HOST_DEVICE inline PhiloxBlock DropoutDrawBlock(uint64_t seed, uint64_t offset,
                                                         uint64_t group) {
  const uint64_t block = offset / 4;
  const PhiloxBlock counter{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                             static_cast<uint32_t>(group), static_cast<uint32_t>(group >> 32)}};
  return Philox4x32_10(counter, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// A raw 32-bit draw as a float in [0, 1): its top 24 bits times 2^-24, exact.
HPSEARCH_HOST_DEVICE inline float UniformFromBits(uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

// The uniform of value `index` of the draw (seed, offset).
HPSEARCH_HOST_DEVICE inline float DropoutUniform(uint64_t seed, uint64_t offset, uint64_t index) {
  return UniformFromBits(DropoutDrawBlock(seed, offset, index / 4).v[index % 4]);
}

// Whether a value whose uniform is `uniform` survives dropout with drop probability p.
HPSEARCH_HOST_DEVICE inline bool DropoutKeeps(float uniform, float p) { return uniform < 1.0f - p; }

}  // namespace hpsearch::kernels
