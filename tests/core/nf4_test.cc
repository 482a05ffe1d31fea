#include "core/nf4.h"

#include <torch/types.h>

#include "core/catch_torch.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/kernel_count.h"
#include "kernels/nf4_reference.h"

namespace hpsearch::core {
namespace {

torch::Tensor RandomWeight(int64_t out, int64_t in, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn({out, in}, torch::kFloat) * 0.02;
}

template <typename T>
std::vector<T> Bytes(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  std::vector<T> v(static_cast<size_t>(c.numel()));
  if (!v.empty()) std::memcpy(v.data(), c.data_ptr(), v.size() * sizeof(T));
  return v;
}

ErrorCode CodeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  FAIL("no core::Error thrown");
  return ErrorCode::kInternal;
}

TEST_CASE("QuantizeWeight stores exactly what the kernels reference produces", "[core][nf4]") {
  const torch::Tensor w = RandomWeight(48, 90, 1);  // 4320 values: 68 blocks, the last partial
  const Nf4Weight q = QuantizeWeight(w);
  const kernels::Nf4Tensor ref =
      kernels::QuantizeNf4Tensor(w.data_ptr<float>(), {48, 90}, /*double_quant=*/true);
  REQUIRE(q.shape == std::vector<int64_t>{48, 90});
  REQUIRE(q.numel == 4320);
  REQUIRE(q.double_quant);
  REQUIRE(q.num_blocks() == 68);
  REQUIRE(q.packed.scalar_type() == torch::kUInt8);
  REQUIRE(q.packed.sizes() == at::IntArrayRef{2160});
  REQUIRE(q.absmax_codes.sizes() == at::IntArrayRef{68});
  REQUIRE(q.absmax_scales.sizes() == at::IntArrayRef{1});
  REQUIRE_FALSE(q.absmax.defined());
  REQUIRE(Bytes<uint8_t>(q.packed) == ref.packed);
  REQUIRE(Bytes<uint8_t>(q.absmax_codes) == ref.absmax_dq.codes);
  REQUIRE(Bytes<float>(q.absmax_scales) == ref.absmax_dq.scales);
  REQUIRE(q.absmax_offset == ref.absmax_dq.offset);

  const Nf4Weight plain = QuantizeWeight(w, {/*double_quant=*/false});
  REQUIRE(plain.absmax.sizes() == at::IntArrayRef{68});
  REQUIRE_FALSE(plain.absmax_codes.defined());
  REQUIRE(Bytes<uint8_t>(plain.packed) == ref.packed);
}

TEST_CASE("DequantizeWeight returns the reference values in each dtype", "[core][nf4]") {
  const torch::Tensor w = RandomWeight(32, 70, 2);
  for (bool double_quant : {true, false}) {
    CAPTURE(double_quant);
    const Nf4Weight q = QuantizeWeight(w, {double_quant});
    const kernels::Nf4Tensor ref =
        kernels::QuantizeNf4Tensor(w.data_ptr<float>(), {32, 70}, double_quant);

    const torch::Tensor f = DequantizeWeight(q, torch::kFloat);
    REQUIRE(f.scalar_type() == torch::kFloat);
    REQUIRE(f.sizes() == w.sizes());
    REQUIRE(Bytes<float>(f) == kernels::DequantizeNf4TensorToFloat(ref));

    const torch::Tensor b = DequantizeWeight(q, torch::kBFloat16);
    REQUIRE(b.scalar_type() == torch::kBFloat16);
    REQUIRE(b.sizes() == w.sizes());
    REQUIRE(Bytes<uint16_t>(b) == kernels::DequantizeNf4TensorToBf16(ref));
    // LibTorch's own float -> bfloat16 rounding agrees away from NaN.
    REQUIRE(torch::equal(b, f.to(torch::kBFloat16)));

    const torch::Tensor h = DequantizeWeight(q, torch::kHalf);
    REQUIRE(h.scalar_type() == torch::kHalf);
    REQUIRE(torch::equal(h, f.to(torch::kHalf)));

    // NF4 error bound: within half the widest code gap (0.277 / 2) of each block's absmax, plus
    // absmax quantisation error.
    const torch::Tensor err = (f - w).abs().max();
    REQUIRE(err.item<float>() < 0.14f * w.abs().max().item<float>());
  }
}

TEST_CASE("QuantizeWeight reads bfloat16 and float16 weights as their float values",
          "[core][nf4]") {
  const torch::Tensor w = RandomWeight(8, 64, 3).to(torch::kBFloat16);
  const Nf4Weight from_bf16 = QuantizeWeight(w);
  const Nf4Weight from_float = QuantizeWeight(w.to(torch::kFloat));
  REQUIRE(torch::equal(from_bf16.packed, from_float.packed));
  REQUIRE(torch::equal(from_bf16.absmax_codes, from_float.absmax_codes));
  REQUIRE(from_bf16.absmax_offset == from_float.absmax_offset);
  const Nf4Weight from_half = QuantizeWeight(RandomWeight(8, 64, 3).to(torch::kHalf));
  REQUIRE(from_half.numel == 512);
}

TEST_CASE("NF4 weight memory: 4.127 bits per weight double-quantised, 4.5 without", "[core][nf4]") {
  const torch::Tensor w = RandomWeight(1024, 1024, 4);
  const Nf4Weight q = QuantizeWeight(w);
  // 524288 packed + 16384 codes + 64 scales * 4 + offset 4.
  REQUIRE(q.StorageBytes() == 524288 + 16384 + 256 + 4);
  REQUIRE(q.StorageBytes() == kernels::Nf4StorageBytes(1024 * 1024, true));
  REQUIRE(q.BitsPerWeight() == Approx(4.127).margin(0.0005));
  const Nf4Weight plain = QuantizeWeight(w, {false});
  REQUIRE(plain.StorageBytes() == 524288 + 16384 * 4);
  REQUIRE(plain.BitsPerWeight() == 4.5);
  // Against the float32 weight: 7.75x smaller.
  REQUIRE(static_cast<double>(w.numel() * 4) / q.StorageBytes() == Approx(7.754).margin(0.001));
}

TEST_CASE("NF4 glue refuses bad weights, options, dtypes and corrupt Nf4Weights", "[core][nf4]") {
  REQUIRE(CodeOf([] { QuantizeWeight(torch::zeros({64})); }) == ErrorCode::kInvalidArgument);
  REQUIRE(CodeOf([] {
            QuantizeWeight(torch::zeros({2, 64}, torch::kInt));
          }) == ErrorCode::kUnsupported);
  REQUIRE(CodeOf([] {
            QuantizeWeight(torch::zeros({2, 64}), {true, 128});
          }) == ErrorCode::kUnsupported);
  torch::Tensor bad = torch::zeros({2, 64});
  bad[1][5] = std::numeric_limits<float>::quiet_NaN();
  try {
    QuantizeWeight(bad);
    FAIL("NaN weight accepted");
  } catch (const Error& e) {
    REQUIRE(e.code() == ErrorCode::kInvalidArgument);
    REQUIRE_THAT(e.what(), Catch::Contains("weights[69]") && Catch::Contains("[2, 64]"));
  }

  const Nf4Weight q = QuantizeWeight(RandomWeight(4, 64, 5));
  REQUIRE(CodeOf([&] { DequantizeWeight(q, torch::kInt); }) == ErrorCode::kUnsupported);
  Nf4Weight corrupt = q;
  corrupt.packed = corrupt.packed.slice(0, 0, 100);
  try {
    DequantizeWeight(corrupt, torch::kFloat);
    FAIL("short packed tensor accepted");
  } catch (const Error& e) {
    REQUIRE(e.code() == ErrorCode::kInvalidArgument);
    REQUIRE_THAT(e.what(), Catch::Contains("Nf4Weight.packed"));
  }
  corrupt = q;
  corrupt.absmax_scales = torch::Tensor();
  REQUIRE(CodeOf([&] { DequantizeWeight(corrupt, torch::kFloat); }) == ErrorCode::kInvalidArgument);
}

TEST_CASE("MoveNf4Weight keeps the codes and DequantizeWeight still agrees", "[core][nf4]") {
  const Nf4Weight q = QuantizeWeight(RandomWeight(3, 64, 6));
  const Nf4Weight moved = MoveNf4Weight(q, torch::Device(torch::kCPU));
  REQUIRE(torch::equal(DequantizeWeight(moved, torch::kFloat), DequantizeWeight(q, torch::kFloat)));
}

TEST_CASE("DequantizeWeights equals DequantizeWeight per weight, one launch per batch",
          "[core][nf4][kernel_count]") {
  // More weights than one batched launch takes, of mixed shapes (partial NF4 blocks, several
  // absmax groups).
  std::vector<Nf4Weight> weights;
  for (int i = 0; i < kernels::kNf4MaxBatch + 2; ++i) {
    weights.push_back(QuantizeWeight(RandomWeight(3 + 37 * i, 19 + 64 * (i % 3), 20 + i)));
  }
  std::vector<const Nf4Weight*> pointers;
  for (const Nf4Weight& w : weights) pointers.push_back(&w);
  const torch::ScalarType dtype = GENERATE(torch::kBFloat16, torch::kFloat);
  CAPTURE(dtype);
  std::vector<torch::Tensor> batched;
  const KernelCount count =
      CountKernelLaunches([&] { batched = DequantizeWeights(pointers, dtype); });
  REQUIRE(count.launches == 2);  // 10 weights: a batch of 8 and one of 2
  REQUIRE(count.launches_by_name.at(kNf4DequantizeOp) == 2);
  REQUIRE(batched.size() == weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    CAPTURE(i);
    const torch::Tensor single = DequantizeWeight(weights[i], dtype);
    REQUIRE(batched[i].scalar_type() == dtype);
    REQUIRE(batched[i].sizes() == single.sizes());
    REQUIRE(Bytes<uint8_t>(batched[i]) == Bytes<uint8_t>(single));
  }
  REQUIRE(DequantizeWeights({}, dtype).empty());
}

TEST_CASE("DequantizeWeights refuses what the batched kernel does not read", "[core][nf4]") {
  const Nf4Weight q = QuantizeWeight(RandomWeight(4, 64, 7));
  const Nf4Weight single = QuantizeWeight(RandomWeight(4, 64, 7), {/*double_quant=*/false, 64});
  REQUIRE(CodeOf([&] { DequantizeWeights({&q}, torch::kHalf); }) == ErrorCode::kUnsupported);
  REQUIRE(CodeOf([&] {
            DequantizeWeights({&q, &single}, torch::kFloat);
          }) == ErrorCode::kUnsupported);
  REQUIRE(CodeOf([&] {
            DequantizeWeights({&q, nullptr}, torch::kFloat);
          }) == ErrorCode::kInvalidArgument);
  Nf4Weight corrupt = q;
  corrupt.packed = corrupt.packed.slice(0, 0, 100);
  REQUIRE(CodeOf([&] {
            DequantizeWeights({&q, &corrupt}, torch::kBFloat16);
          }) == ErrorCode::kInvalidArgument);
}

TEST_CASE("Dynamic map matches create_dynamic_map built with LibTorch ops within two ulps",
          "[core][nf4]") {
  // An independent derivation of create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)
  // with the LibTorch float32 operations Python runs: linspace, pairwise means, scaling by
  // 10^(i-6). LibTorch 1.13's vectorised linspace rounds some bounds one ulp away from the scalar
  // formula the reference follows, so a mean of two bounds may be up to two ulps away; never more,
  // and order and signs agree.
  std::vector<torch::Tensor> parts;
  for (int i = 0; i < 7; ++i) {
    const torch::Tensor bounds = torch::linspace(0.1, 1.0, (1 << i) + 1, torch::kFloat);
    const torch::Tensor means = (bounds.slice(0, 0, -1) + bounds.slice(0, 1)) / 2.0;
    const double scale = std::pow(10.0, i - 6);
    parts.push_back(means * scale);
    parts.push_back(means * -scale);
  }
  parts.push_back(torch::tensor({0.0f, 1.0f}));
  const torch::Tensor map = std::get<0>(torch::cat(parts).sort());
  REQUIRE(map.numel() == 256);
  const std::vector<float> want = Bytes<float>(map);
  const auto& got = kernels::DynamicSignedMap();
  int differences = 0;
  for (int k = 0; k < 256; ++k) {
    CAPTURE(k, want[k], got[k]);
    int32_t want_bits, got_bits;
    std::memcpy(&want_bits, &want[k], sizeof(want_bits));
    std::memcpy(&got_bits, &got[k], sizeof(got_bits));
    REQUIRE(std::signbit(want[k]) == std::signbit(got[k]));
    REQUIRE(std::abs(want_bits - got_bits) <= 2);
    differences += want_bits == got_bits ? 0 : 1;
  }
  // 44 with Debian's LibTorch 1.13 on x86-64.
  REQUIRE(differences < 64);
}

}  // namespace
}  // namespace hpsearch::core
