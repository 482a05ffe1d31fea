#include "kernels/philox.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

namespace hpsearch::kernels {
namespace {

// Random123's published known-answer vectors for philox4x32_10 (its tests/kat_vectors; also in
// TensorFlow's and curand's Philox tests): counter, key, result.
struct KnownAnswer {
  PhiloxBlock counter;
  uint32_t key0;
  uint32_t key1;
  PhiloxBlock result;
};

TEST_CASE("Philox4x32-10 reproduces Random123's known-answer vectors", "[kernels][philox]") {
  const std::vector<KnownAnswer> answers = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       0xffffffffu,
       0xffffffffu,
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       0xa4093822u,
       0x299f31d0u,
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (size_t k = 0; k < answers.size(); ++k) {
    CAPTURE(k);
    const PhiloxBlock got = Philox4x32_10(answers[k].counter, answers[k].key0, answers[k].key1);
    for (int lane = 0; lane < 4; ++lane) {
      CAPTURE(lane);
      REQUIRE(got.v[lane] == answers[k].result.v[lane]);
    }
  }
}

TEST_CASE("Dropout draws place index, offset and seed in the documented Philox words",
          "[kernels][philox]") {
  const uint64_t seed = 0x0123456789ABCDEFull;
  const uint64_t offset = 0xFEDCBA9876543210ull;
  const uint64_t index = (uint64_t{5} << 34) + 4 * 7 + 2;  // group 5 * 2^32 + 7, lane 2
  const uint64_t group = index / 4;
  // curand's counter after curand_init(seed, group, offset): offset / 4 low, the group high.
  const uint64_t block = offset / 4;  // 0x3FB72EA61D950C84
  const PhiloxBlock direct =
      Philox4x32_10(PhiloxBlock{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                                 static_cast<uint32_t>(group), static_cast<uint32_t>(group >> 32)}},
                    0x89ABCDEFu, 0x01234567u);
  REQUIRE(static_cast<uint32_t>(block) == 0x1D950C84u);
  REQUIRE(static_cast<uint32_t>(block >> 32) == 0x3FB72EA6u);
  REQUIRE(DropoutUniform(seed, offset, index) ==
          static_cast<float>(direct.v[2] >> 8) / 16777216.0f);
  // Offsets within one multiple of 4 share their draws (a launch reserves 4 from the generator);
  // the next reservation, other seeds and other groups give different draws.
  REQUIRE(DropoutUniform(seed, offset + 1, index) == DropoutUniform(seed, offset, index));
  REQUIRE(DropoutUniform(seed, offset + 4, index) != DropoutUniform(seed, offset, index));
  REQUIRE(DropoutUniform(seed + 1, offset, index) != DropoutUniform(seed, offset, index));
  REQUIRE(DropoutUniform(seed, offset, index + 4) != DropoutUniform(seed, offset, index));
}

TEST_CASE("Dropout uniforms lie in 0 to 1 (1 excluded) and keep about 1 - p of the values",
          "[kernels][philox]") {
  REQUIRE(UniformFromBits(0) == 0.0f);
  REQUIRE(UniformFromBits(0xFFFFFFFFu) < 1.0f);
  REQUIRE(DropoutKeeps(UniformFromBits(0xFFFFFFFFu), 0.0f));  // p = 0 keeps everything
  constexpr int kCount = 200000;
  for (float p : {0.1f, 0.5f, 0.9f}) {
    CAPTURE(p);
    int kept = 0;
    double total = 0.0;
    for (int i = 0; i < kCount; ++i) {
      const float u = DropoutUniform(42, 3, static_cast<uint64_t>(i));
      REQUIRE(u >= 0.0f);
      REQUIRE(u < 1.0f);
      total += u;
      kept += DropoutKeeps(u, p) ? 1 : 0;
    }
    // Binomial standard deviation sqrt(p (1 - p) / n) <= 0.0012: 5 of them.
    REQUIRE(static_cast<double>(kept) / kCount == Approx(1.0 - p).margin(0.006));
    REQUIRE(total / kCount == Approx(0.5).margin(0.005));
  }
}

}  // namespace
}  // namespace hpsearch::kernels
