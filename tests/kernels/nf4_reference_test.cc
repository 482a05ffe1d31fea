#include "kernels/nf4_reference.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

namespace hpsearch::kernels {
namespace {

uint8_t NibbleAt(const std::vector<uint8_t>& packed, int64_t i) {
  const uint8_t byte = packed[i / 2];
  return i % 2 == 0 ? byte >> 4 : byte & 0x0F;
}

uint32_t BitsOf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

std::vector<float> RandomNormal(int64_t count, float stddev, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& v : values) v = normal(rng);
  return values;
}

float LargestNf4Gap() {
  const auto& code = Nf4CodeTable();
  float gap = 0.0f;
  for (size_t k = 0; k + 1 < code.size(); ++k) gap = std::max(gap, code[k + 1] - code[k]);
  return gap;
}

TEST_CASE("NF4 code table and thresholds are ascending, symmetric in range and bracket 0",
          "[kernels][nf4]") {
  const auto& code = Nf4CodeTable();
  const auto& thresholds = Nf4Thresholds();
  REQUIRE(code.front() == -1.0f);
  REQUIRE(code[7] == 0.0f);
  REQUIRE(code.back() == 1.0f);
  for (size_t k = 0; k + 1 < code.size(); ++k) {
    REQUIRE(code[k] < thresholds[k]);
    REQUIRE(thresholds[k] < code[k + 1]);
  }
  // The float literals of bitsandbytes' CUDA decision tree (dQuantizeNF4), read as floats. Index 14
  // is a case where the double midpoint is a float tie that the literal resolves downwards.
  const float published[15] = {-0.8480964004993439f,   -0.6106329262256622f,  -0.4599952697753906f,
                               -0.33967943489551544f,  -0.23460740596055984f, -0.13791173323988914f,
                               -0.045525018125772476f, 0.03979014977812767f,  0.1202552504837513f,
                               0.2035212516784668f,    0.2920137718319893f,   0.3893125355243683f,
                               0.5016634166240692f,    0.6427869200706482f,   0.8614784181118011f};
  for (size_t k = 0; k < thresholds.size(); ++k) {
    CAPTURE(k);
    REQUIRE(BitsOf(thresholds[k]) == BitsOf(published[k]));
  }
}

TEST_CASE("NF4 maps every code point times absmax to that code", "[kernels][nf4]") {
  const auto& code = Nf4CodeTable();
  for (float absmax : {2.0f, 0.37f, 0.0123f}) {
    CAPTURE(absmax);
    std::vector<float> w(kNf4BlockSize);
    for (int i = 0; i < kNf4BlockSize; ++i) w[i] = code[i % 16] * absmax;
    const Nf4Blocks q = QuantizeNf4(w.data(), kNf4BlockSize, kNf4BlockSize);
    REQUIRE(q.absmax.size() == 1);
    REQUIRE(q.absmax[0] == absmax);
    for (int i = 0; i < kNf4BlockSize; ++i) {
      CAPTURE(i);
      REQUIRE(NibbleAt(q.packed, i) == i % 16);
    }
  }
}

TEST_CASE("NF4 rounds a value on a threshold down and the next float above it up",
          "[kernels][nf4]") {
  const auto& thresholds = Nf4Thresholds();
  for (size_t k = 0; k < thresholds.size(); ++k) {
    CAPTURE(k);
    REQUIRE(Nf4CodeOf(thresholds[k]) == k);
    REQUIRE(Nf4CodeOf(std::nextafter(thresholds[k], 2.0f)) == k + 1);
    REQUIRE(Nf4CodeOf(std::nextafter(thresholds[k], -2.0f)) == k);
  }
  REQUIRE(Nf4CodeOf(std::numeric_limits<float>::quiet_NaN()) == 0);
  REQUIRE(Nf4CodeOf(-1.5f) == 0);
  REQUIRE(Nf4CodeOf(1.5f) == 15);

  // Through the quantiser: absmax 1 (reciprocal and product exact), midpoints take the lower code.
  std::vector<float> w(kNf4BlockSize, 0.0f);
  w[0] = 1.0f;
  for (size_t k = 0; k < thresholds.size(); ++k) w[1 + k] = thresholds[k];
  const Nf4Blocks q = QuantizeNf4(w.data(), kNf4BlockSize, kNf4BlockSize);
  for (size_t k = 0; k < thresholds.size(); ++k) REQUIRE(NibbleAt(q.packed, 1 + k) == k);
}

TEST_CASE("NF4 packs the first value of each pair into the high nibble", "[kernels][nf4]") {
  const auto& code = Nf4CodeTable();
  std::vector<float> w(kNf4BlockSize);
  // Codes 15, 0, 3, 12, 7, 9, ... chosen so that swapped nibbles would give different bytes.
  std::vector<uint8_t> wanted(kNf4BlockSize);
  for (int i = 0; i < kNf4BlockSize; ++i) wanted[i] = static_cast<uint8_t>((i * 11 + 15) % 16);
  wanted[0] = 15;  // keeps absmax at exactly 1
  for (int i = 0; i < kNf4BlockSize; ++i) w[i] = code[wanted[i]];
  const Nf4Blocks q = QuantizeNf4(w.data(), kNf4BlockSize, kNf4BlockSize);
  REQUIRE(q.packed.size() == kNf4BlockSize / 2);
  for (int j = 0; j < kNf4BlockSize / 2; ++j) {
    CAPTURE(j);
    REQUIRE(q.packed[j] == ((wanted[2 * j] << 4) | wanted[2 * j + 1]));
  }
  REQUIRE(q.packed[0] == 0xFA);  // codes 15 then 10
}

TEST_CASE(
    "NF4 quantises a partial last block on its own absmax and pads the odd nibble with zero's code",
    "[kernels][nf4]") {
  const int64_t numel = kNf4BlockSize + 37;
  std::vector<float> w = RandomNormal(numel, 0.02f, 7);
  w[10] = 0.5f;          // first block's absmax
  w[numel - 1] = -0.1f;  // last block's absmax, at its last (odd, unpaired) position
  const Nf4Blocks q = QuantizeNf4(w.data(), numel, kNf4BlockSize);
  REQUIRE(q.packed.size() == static_cast<size_t>((numel + 1) / 2));
  REQUIRE(q.absmax.size() == 2);
  REQUIRE(q.absmax[0] == 0.5f);
  REQUIRE(q.absmax[1] == 0.1f);
  REQUIRE(q.packed.back() == ((0u << 4) | 7u));  // -0.1 / 0.1 = -1 -> code 0; padding 0.0 -> code 7

  std::vector<float> back(numel);
  DequantizeNf4(q.packed.data(), q.absmax.data(), numel, kNf4BlockSize, back.data());
  REQUIRE(back[numel - 1] == -0.1f);
  REQUIRE(back[10] == 0.5f);
}

TEST_CASE("NF4 stores an all-zero block as absmax 0 and dequantises it to zeros",
          "[kernels][nf4]") {
  std::vector<float> w = RandomNormal(3 * kNf4BlockSize, 1.0f, 3);
  std::fill(w.begin() + kNf4BlockSize, w.begin() + 2 * kNf4BlockSize, 0.0f);
  const Nf4Blocks q = QuantizeNf4(w.data(), static_cast<int64_t>(w.size()), kNf4BlockSize);
  REQUIRE(q.absmax[1] == 0.0f);
  // 0 * (1 / 0) is NaN, which no threshold is below: bitsandbytes' tree lands on code 0 there.
  for (int i = kNf4BlockSize; i < 2 * kNf4BlockSize; ++i) REQUIRE(NibbleAt(q.packed, i) == 0);
  std::vector<float> back(w.size());
  DequantizeNf4(q.packed.data(), q.absmax.data(), static_cast<int64_t>(w.size()), kNf4BlockSize,
                back.data());
  for (int i = kNf4BlockSize; i < 2 * kNf4BlockSize; ++i) REQUIRE(back[i] == 0.0f);
  REQUIRE(back[0] != 0.0f);
}

TEST_CASE("NF4 round trip stays within half the largest code gap times absmax", "[kernels][nf4]") {
  const int64_t numel = 48 * 40 + 5;
  const std::vector<float> w = RandomNormal(numel, 0.02f, 11);
  const Nf4Blocks q = QuantizeNf4(w.data(), numel, kNf4BlockSize);
  std::vector<float> back(numel);
  DequantizeNf4(q.packed.data(), q.absmax.data(), numel, kNf4BlockSize, back.data());
  const float half_gap = LargestNf4Gap() / 2.0f;
  const auto& code = Nf4CodeTable();
  double squared_error = 0.0;
  for (int64_t i = 0; i < numel; ++i) {
    CAPTURE(i);
    const float absmax = q.absmax[i / kNf4BlockSize];
    const float error = std::fabs(w[i] - back[i]);
    REQUIRE(error <= half_gap * absmax * (1.0f + 1e-6f));
    // Stronger: the chosen code is the nearest one, up to the float rounding of the thresholds.
    const float scaled = w[i] / absmax;
    const float chosen = std::fabs(scaled - code[NibbleAt(q.packed, i)]);
    for (float c : code) REQUIRE(chosen <= std::fabs(scaled - c) + 1e-6f);
    squared_error += static_cast<double>(error) * error;
  }
  // NF4 on normal data: RMS error about 10% of the standard deviation (0.02).
  REQUIRE(std::sqrt(squared_error / numel) < 0.004);
}

TEST_CASE("Dynamic signed map has bitsandbytes' shape", "[kernels][nf4]") {
  const auto& map = DynamicSignedMap();
  for (size_t k = 0; k + 1 < map.size(); ++k) REQUIRE(map[k] < map[k + 1]);
  REQUIRE(map[127] == 0.0f);
  REQUIRE(map[255] == 1.0f);
  for (int k = 0; k < 127; ++k) REQUIRE(map[k] == -map[254 - k]);
  // Level 0: one interval [0.1, 1], midpoint 0.55, scaled by 1e-6: the smallest magnitude.
  REQUIRE(map[128] == 1e-6f * ((0.1f + 1.0f) / 2.0f));
  // Level 6: 64 intervals of [0.1, 1]; the largest midpoint sits just below 1.
  REQUIRE(map[254] > 0.99f);
  REQUIRE(map[254] < 1.0f);
}

TEST_CASE("DynamicMapIndex finds the nearest map entry as bitsandbytes' descent does",
          "[kernels][nf4]") {
  const auto& map = DynamicSignedMap();
  for (int k = 0; k < 256; ++k) {
    CAPTURE(k);
    REQUIRE(DynamicMapIndex(map, map[k]) == k);
  }
  REQUIRE(DynamicMapIndex(map, 1.0f) == 255);
  REQUIRE(DynamicMapIndex(map, 1.5f) == 255);
  REQUIRE(DynamicMapIndex(map, -1.0f) == 0);
  REQUIRE(DynamicMapIndex(map, std::numeric_limits<float>::quiet_NaN()) == 0);
  // Index 128 is the descent's final pivot for values just above 0 (127 -> 191 ... is for larger
  // ones): at the float midpoint between map[127] = 0 and map[128] the pivot keeps it.
  const float mid = (map[127] + map[128]) * 0.5f;
  REQUIRE(DynamicMapIndex(map, mid) == 128);
  REQUIRE(DynamicMapIndex(map, std::nextafter(mid, -1.0f)) == 127);
  // Brute-force nearest agrees everywhere else.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int trial = 0; trial < 5000; ++trial) {
    const float x = trial % 2 == 0 ? uniform(rng) : uniform(rng) * 1e-4f;
    int nearest = 0;
    for (int k = 1; k < 256; ++k) {
      if (std::fabs(x - map[k]) < std::fabs(x - map[nearest])) nearest = k;
    }
    CAPTURE(x);
    REQUIRE(std::fabs(x - map[DynamicMapIndex(map, x)]) == std::fabs(x - map[nearest]));
  }
}

TEST_CASE("Double quantisation keeps absmaxes within half a map gap times their group scale",
          "[kernels][nf4]") {
  // 600 absmaxes: two full groups of 256 and a partial one of 88.
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> uniform(0.02f, 0.09f);
  std::vector<float> absmax(600);
  for (float& a : absmax) a = uniform(rng);
  const DoubleQuantizedAbsmax dq =
      DoubleQuantize(absmax.data(), static_cast<int64_t>(absmax.size()));
  REQUIRE(dq.codes.size() == 600);
  REQUIRE(dq.scales.size() == 3);
  double mean = 0.0;
  for (float a : absmax) mean += a;
  mean /= absmax.size();
  REQUIRE(dq.offset == static_cast<float>(mean));

  const auto& map = DynamicSignedMap();
  float largest_gap = 0.0f;
  for (int k = 0; k < 255; ++k) largest_gap = std::max(largest_gap, map[k + 1] - map[k]);
  const float worst = largest_gap / 2.0f;
  std::vector<float> back(absmax.size());
  DequantizeAbsmax(dq.codes.data(), dq.scales.data(), dq.offset,
                   static_cast<int64_t>(absmax.size()), map.data(), back.data());
  double relative = 0.0;
  for (size_t i = 0; i < absmax.size(); ++i) {
    CAPTURE(i);
    const float scale = dq.scales[i / kAbsmaxBlockSize];
    REQUIRE(std::fabs(back[i] - absmax[i]) <= worst * scale * 1.0001f + 1e-7f);
    relative += std::fabs(back[i] - absmax[i]) / absmax[i];
  }
  REQUIRE(relative / absmax.size() < 0.01);
}

TEST_CASE("Double quantisation of equal absmaxes reproduces them exactly", "[kernels][nf4]") {
  const std::vector<float> absmax(5, 0.25f);
  const DoubleQuantizedAbsmax dq = DoubleQuantize(absmax.data(), 5);
  REQUIRE(dq.offset == 0.25f);
  REQUIRE(dq.scales == std::vector<float>{0.0f});
  std::vector<float> back(5);
  DequantizeAbsmax(dq.codes.data(), dq.scales.data(), dq.offset, 5, DynamicSignedMap().data(),
                   back.data());
  REQUIRE(back == absmax);
}

TEST_CASE("Nf4Tensor memory is 4.127 bits per weight with double quantisation", "[kernels][nf4]") {
  const std::vector<int64_t> shape = {64, 1024};
  const std::vector<float> w = RandomNormal(64 * 1024, 0.02f, 1);
  const Nf4Tensor dq = QuantizeNf4Tensor(w.data(), shape, /*double_quant=*/true);
  const Nf4Tensor plain = QuantizeNf4Tensor(w.data(), shape, /*double_quant=*/false);
  REQUIRE(dq.numel == 65536);
  REQUIRE(dq.num_blocks() == 1024);
  // 32768 packed + 1024 codes + 4 scales * 4 + offset 4.
  REQUIRE(dq.StorageBytes() == 32768 + 1024 + 16 + 4);
  REQUIRE(dq.StorageBytes() == Nf4StorageBytes(65536, true));
  REQUIRE(plain.StorageBytes() == 32768 + 1024 * 4);
  REQUIRE(plain.StorageBytes() == Nf4StorageBytes(65536, false));
  const double bits = 8.0 * dq.StorageBytes() / dq.numel;
  REQUIRE(bits == Approx(4.127).margin(0.001));
  REQUIRE(8.0 * plain.StorageBytes() / plain.numel == 4.5);
  REQUIRE(Nf4StorageBytes(101, true) == 51 + 2 + 4 + 4);
  REQUIRE(Nf4StorageBytes(0, false) == 0);
}

TEST_CASE("Nf4Tensor round trip: double quantisation adds only the absmax error",
          "[kernels][nf4]") {
  const std::vector<int64_t> shape = {24, 100};
  const std::vector<float> w = RandomNormal(2400, 0.02f, 21);
  const Nf4Tensor dq = QuantizeNf4Tensor(w.data(), shape, true);
  const Nf4Tensor plain = QuantizeNf4Tensor(w.data(), shape, false);
  REQUIRE(dq.packed == plain.packed);  // codes do not depend on how absmax is stored
  const std::vector<float> absmax = EffectiveAbsmax(dq);
  const std::vector<float> back = DequantizeNf4TensorToFloat(dq);
  const std::vector<uint16_t> back_bf16 = DequantizeNf4TensorToBf16(dq);
  REQUIRE(back.size() == 2400);
  const float half_gap = LargestNf4Gap() / 2.0f;
  for (size_t i = 0; i < back.size(); ++i) {
    CAPTURE(i);
    const int64_t block = static_cast<int64_t>(i) / kNf4BlockSize;
    const float true_absmax = plain.absmax[block];
    const float bound =
        half_gap * true_absmax + std::fabs(absmax[block] - true_absmax) + 1e-6f * true_absmax;
    REQUIRE(std::fabs(w[i] - back[i]) <= bound);
    REQUIRE(back_bf16[i] == FloatToBf16(back[i]));
  }
}

TEST_CASE("NF4 rejects other block sizes, non-finite weights and corrupt tensors",
          "[kernels][nf4]") {
  const std::vector<float> w(128, 0.5f);
  REQUIRE_THROWS_AS(QuantizeNf4(w.data(), 128, 128), std::invalid_argument);
  REQUIRE_THROWS_WITH(QuantizeNf4(w.data(), 128, 32), Catch::Contains("block size 32"));
  std::vector<float> bad = w;
  bad[77] = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_WITH(QuantizeNf4(bad.data(), 128, 64), Catch::Contains("weights[77]"));
  bad[77] = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_AS(QuantizeNf4(bad.data(), 128, 64), std::invalid_argument);
  REQUIRE_THROWS_AS(QuantizeNf4Tensor(w.data(), {-1, 4}, true), std::invalid_argument);
  Nf4Tensor t = QuantizeNf4Tensor(w.data(), {2, 64}, true);
  t.absmax_dq.codes.pop_back();
  REQUIRE_THROWS_WITH(DequantizeNf4TensorToFloat(t), Catch::Contains("absmax_dq.codes"));
  REQUIRE(QuantizeNf4(nullptr, 0, 64).packed.empty());
}

TEST_CASE("FloatToBf16 rounds to nearest even and Bf16ToFloat is exact", "[kernels][nf4][bf16]") {
  REQUIRE(FloatToBf16(1.0f) == 0x3F80);
  REQUIRE(FloatToBf16(-2.0f) == 0xC000);
  REQUIRE(FloatToBf16(0.0f) == 0x0000);
  REQUIRE(FloatToBf16(-0.0f) == 0x8000);
  // 1 + 2^-8 lies halfway between 0x3F80 and 0x3F81: ties go to the even 0x3F80.
  REQUIRE(FloatToBf16(1.00390625f) == 0x3F80);
  // 1 + 3 * 2^-8 lies halfway between 0x3F81 and 0x3F82: the even one is 0x3F82.
  REQUIRE(FloatToBf16(1.01171875f) == 0x3F82);
  REQUIRE(FloatToBf16(std::nextafter(1.00390625f, 2.0f)) == 0x3F81);
  REQUIRE(FloatToBf16(std::nextafter(1.01171875f, 0.0f)) == 0x3F81);
  // 0.1f = 0x3DCCCCCD: dropped half 0xCCCD is above the midpoint, rounds up.
  REQUIRE(FloatToBf16(0.1f) == 0x3DCD);
  REQUIRE(FloatToBf16(std::numeric_limits<float>::infinity()) == 0x7F80);
  REQUIRE(FloatToBf16(-std::numeric_limits<float>::infinity()) == 0xFF80);
  REQUIRE(FloatToBf16(std::numeric_limits<float>::max()) == 0x7F80);  // overflows to inf
  REQUIRE(FloatToBf16(std::numeric_limits<float>::quiet_NaN()) == 0x7FFF);
  REQUIRE(FloatToBf16(std::numeric_limits<float>::denorm_min()) == 0x0000);
  REQUIRE(Bf16ToFloat(0x3F80) == 1.0f);
  REQUIRE(Bf16ToFloat(0x3DCD) == 0.10009765625f);
  REQUIRE(BitsOf(Bf16ToFloat(0xFF80)) == 0xFF800000u);
  for (uint32_t bits = 0; bits < 0x10000; bits += 7) {
    const uint16_t b = static_cast<uint16_t>(bits);
    const float f = Bf16ToFloat(b);
    if (!std::isnan(f)) REQUIRE(FloatToBf16(f) == b);
  }
}

}  // namespace
}  // namespace hpsearch::kernels
