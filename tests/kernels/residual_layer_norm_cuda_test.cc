// The CUDA fused residual LayerNorm against its CPU reference. Built only with a CUDA compiler;
// skips at run time without a usable CUDA device.
//
// TOLERANCES. The contract (kernels/residual_layer_norm_args.h) fixes every elementwise rounding,
// so these are compared bit for bit: keep_out, sum_out, and the backward without a LayerNorm term.
// Only the row reductions differ: the reference sums in double and rounds once, the kernel sums in
// float32 (at most ~16 values per thread, then a warp and a block tree: under ~30 roundings deep,
// a relative error below 2e-6 of the summed magnitudes). Allowed, with 5x or more to spare:
//   mean: 1e-5 of the row's mean |sum|;  rstd: 1e-5 relative (var's error ~2e-6, halved by sqrt);
//   norm: one bf16 ulp (2^-7 of |reference|: two roundings of values that straddle a bf16
//         rounding point land one ulp apart) plus gamma times the xhat error the mean and rstd
//         bounds imply; at least 95 % of values (less 2) must be bit-identical (the float errors
//         are ~1e-6, a bf16 ulp ~4e-3 relative: about 1 value in 1,000 flips; a wrong rounding
//         mode flips about half);
//   grad_residual: 1e-5 of |grad_sum| + rstd (|gg| + mean|gg| + |xhat| mean|gg xhat|), the
//         magnitudes its terms and the two row sums carry;
//   grad_branch: as norm, with grad_residual's bound times 1/(1-p).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/nf4_reference.h"
#include "kernels/residual_layer_norm.cuh"
#include "kernels/residual_layer_norm_reference.h"
#include "tests/kernels/cuda_test_support.h"

namespace hpsearch::kernels {
namespace {

using testing_cuda::DeviceBuffer;
using testing_cuda::SkipWithoutDevice;

struct HostInputs {
  int64_t rows;
  int64_t width;
  std::vector<float> residual;
  std::vector<uint16_t> branch;
  std::vector<float> gamma;
  std::vector<float> beta;
  std::vector<float> grad_sum;
  std::vector<uint16_t> grad_norm;

  HostInputs(int64_t rows_in, int64_t width_in, uint32_t seed) : rows(rows_in), width(width_in) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int64_t i = 0; i < rows * width; ++i) {
      residual.push_back(2.0f + normal(rng));
      branch.push_back(FloatToBf16(normal(rng)));
      grad_sum.push_back(normal(rng));
      grad_norm.push_back(FloatToBf16(normal(rng)));
    }
    for (int64_t c = 0; c < width; ++c) {
      gamma.push_back(1.0f + 0.2f * normal(rng));
      beta.push_back(0.1f * normal(rng));
    }
  }
  size_t count() const { return static_cast<size_t>(rows * width); }
};

uint32_t BitsOf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

// Counts bf16 values off by more than `allowed(i)` beyond one bf16 ulp, and bit-identical ones.
template <typename Allowed>
void CompareBf16(const std::vector<uint16_t>& got, const std::vector<uint16_t>& want,
                 Allowed allowed) {
  int64_t beyond = 0;
  int64_t identical = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = Bf16ToFloat(got[i]);
    const double w = Bf16ToFloat(want[i]);
    identical += got[i] == want[i];
    beyond += !(std::fabs(g - w) <= std::ldexp(std::fabs(w), -7) + allowed(i));
  }
  CAPTURE(got.size(), identical);
  REQUIRE(beyond == 0);
  // Two flips are allowed in any sample, so a 37-value row does not fail on chance alone.
  REQUIRE(static_cast<double>(identical + 2) >= 0.95 * static_cast<double>(got.size()));
}

void CheckForward(int64_t rows, int64_t width, float p) {
  CAPTURE(rows, width, p);
  HostInputs in(rows, width, static_cast<uint32_t>(rows * 7919 + width));
  const size_t n = in.count();
  std::vector<uint8_t> keep(n);
  std::vector<float> sum(n);
  std::vector<uint16_t> norm(n);
  std::vector<float> mean(static_cast<size_t>(rows));
  std::vector<float> rstd(static_cast<size_t>(rows));
  ResidualLayerNormForwardArgs a;
  a.rows = rows;
  a.width = width;
  a.residual = in.residual.data();
  a.branch = in.branch.data();
  a.dropout_p = p;
  a.seed = 0x5EED0000u + static_cast<uint64_t>(width);
  a.offset = 3 + static_cast<uint64_t>(rows);
  a.keep_out = keep.data();
  a.sum_out = sum.data();
  a.gamma = in.gamma.data();
  a.beta = in.beta.data();
  a.norm_out = norm.data();
  a.mean_out = mean.data();
  a.rstd_out = rstd.data();
  ResidualLayerNormForwardReference(a);

  DeviceBuffer<float> d_residual(in.residual), d_gamma(in.gamma), d_beta(in.beta);
  DeviceBuffer<uint16_t> d_branch(in.branch);
  DeviceBuffer<uint8_t> d_keep(n);
  DeviceBuffer<float> d_sum(n), d_mean(mean.size()), d_rstd(rstd.size());
  DeviceBuffer<uint16_t> d_norm(n);
  ResidualLayerNormForwardArgs d = a;
  d.residual = d_residual.get();
  d.branch = d_branch.get();
  d.keep_out = d_keep.get();
  d.sum_out = d_sum.get();
  d.gamma = d_gamma.get();
  d.beta = d_beta.get();
  d.norm_out = d_norm.get();
  d.mean_out = d_mean.get();
  d.rstd_out = d_rstd.get();
  HPSEARCH_REQUIRE_CUDA(ResidualLayerNormForward(d, nullptr));
  HPSEARCH_REQUIRE_CUDA(cudaDeviceSynchronize());

  REQUIRE(d_keep.ToHost() == keep);
  const std::vector<float> got_sum = d_sum.ToHost();
  int64_t sum_mismatches = 0;
  for (size_t i = 0; i < n; ++i) sum_mismatches += BitsOf(got_sum[i]) != BitsOf(sum[i]);
  REQUIRE(sum_mismatches == 0);

  const std::vector<float> got_mean = d_mean.ToHost();
  const std::vector<float> got_rstd = d_rstd.ToHost();
  std::vector<double> mean_abs(static_cast<size_t>(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < width; ++c) mean_abs[r] += std::fabs(sum[r * width + c]);
    mean_abs[r] /= static_cast<double>(width);
    CAPTURE(r, got_mean[r], mean[r], got_rstd[r], rstd[r]);
    REQUIRE(std::fabs(got_mean[r] - mean[r]) <= 1e-5 * mean_abs[r]);
    REQUIRE(std::fabs(got_rstd[r] - rstd[r]) <= 1e-5 * rstd[r]);
  }
  CompareBf16(d_norm.ToHost(), norm, [&](size_t i) {
    const int64_t r = static_cast<int64_t>(i) / width;
    const double xhat = (sum[i] - mean[r]) * static_cast<double>(rstd[r]);
    return std::fabs(in.gamma[i % width]) * 1e-5 * (std::fabs(xhat) + mean_abs[r] * rstd[r]);
  });
}

TEST_CASE("CUDA residual LayerNorm forward equals the reference: masks and sums exactly",
          "[kernels][residual_layer_norm][cuda]") {
  SkipWithoutDevice();
  const int64_t width = GENERATE(64, 1000, 1024, 37, 4096);
  const int64_t rows = GENERATE(1, 7, 200);
  const float p = GENERATE(0.0f, 0.1f);
  if (width == 4096 && rows == 200) return;  // covered by 1024; keeps the test fast
  CheckForward(rows, width, p);
}

TEST_CASE("CUDA residual LayerNorm forward options: no branch, no LayerNorm, in-place sum",
          "[kernels][residual_layer_norm][cuda]") {
  SkipWithoutDevice();
  const int64_t rows = 9;
  const int64_t width = 1000;
  HostInputs in(rows, width, 77);
  const size_t n = in.count();
  DeviceBuffer<float> d_residual(in.residual), d_gamma(in.gamma), d_beta(in.beta);
  DeviceBuffer<uint16_t> d_branch(in.branch), d_norm(n);
  DeviceBuffer<float> d_sum(n);
  DeviceBuffer<uint8_t> d_keep(n);

  SECTION("LayerNorm only: sum = residual") {
    std::vector<uint16_t> norm(n);
    ResidualLayerNormForwardArgs a;
    a.rows = rows;
    a.width = width;
    a.residual = in.residual.data();
    a.gamma = in.gamma.data();
    a.beta = in.beta.data();
    a.norm_out = norm.data();
    ResidualLayerNormForwardReference(a);
    a.residual = d_residual.get();
    a.gamma = d_gamma.get();
    a.beta = d_beta.get();
    a.norm_out = d_norm.get();
    HPSEARCH_REQUIRE_CUDA(ResidualLayerNormForward(a, nullptr));
    HPSEARCH_REQUIRE_CUDA(cudaDeviceSynchronize());
    CompareBf16(d_norm.ToHost(), norm, [&](size_t i) {
      return std::fabs(in.gamma[i % width]) * 1e-4;  // |xhat| + mean|x| rstd < 10 here
    });
  }
  SECTION("no LayerNorm, no keep_out, sum_out aliasing residual: the reference's bits") {
    std::vector<float> sum = in.residual;
    ResidualLayerNormForwardArgs a;
    a.rows = rows;
    a.width = width;
    a.residual = sum.data();
    a.branch = in.branch.data();
    a.dropout_p = 0.2f;
    a.seed = 99;
    a.offset = 1;
    a.sum_out = sum.data();
    ResidualLayerNormForwardReference(a);
    a.residual = d_residual.get();
    a.branch = d_branch.get();
    a.sum_out = d_residual.get();
    HPSEARCH_REQUIRE_CUDA(ResidualLayerNormForward(a, nullptr));
    HPSEARCH_REQUIRE_CUDA(cudaDeviceSynchronize());
    const std::vector<float> got = d_residual.ToHost();
    int64_t mismatches = 0;
    for (size_t i = 0; i < n; ++i) mismatches += BitsOf(got[i]) != BitsOf(sum[i]);
    REQUIRE(mismatches == 0);
  }
}

void CheckBackward(int64_t rows, int64_t width, float p, bool layer_norm, bool alias) {
  CAPTURE(rows, width, p, layer_norm, alias);
  HostInputs in(rows, width, static_cast<uint32_t>(rows * 104729 + width));
  const size_t n = in.count();
  // The forward on the host supplies the backward's sum, mean, rstd and keep to both sides.
  std::vector<uint8_t> keep(n);
  std::vector<float> sum(n);
  std::vector<uint16_t> norm(n);
  std::vector<float> mean(static_cast<size_t>(rows));
  std::vector<float> rstd(static_cast<size_t>(rows));
  ResidualLayerNormForwardArgs f;
  f.rows = rows;
  f.width = width;
  f.residual = in.residual.data();
  f.branch = in.branch.data();
  f.dropout_p = p;
  f.seed = 17;
  f.offset = 2;
  f.keep_out = keep.data();
  f.sum_out = sum.data();
  f.gamma = in.gamma.data();
  f.beta = in.beta.data();
  f.norm_out = norm.data();
  f.mean_out = mean.data();
  f.rstd_out = rstd.data();
  ResidualLayerNormForwardReference(f);

  std::vector<float> grad_residual(n);
  std::vector<uint16_t> grad_branch(n);
  ResidualLayerNormBackwardArgs a;
  a.rows = rows;
  a.width = width;
  a.grad_sum = in.grad_sum.data();
  a.grad_norm = layer_norm ? in.grad_norm.data() : nullptr;
  a.sum = sum.data();
  a.mean = mean.data();
  a.rstd = rstd.data();
  a.gamma = in.gamma.data();
  a.keep = keep.data();
  a.dropout_p = p;
  a.grad_residual = grad_residual.data();
  a.grad_branch = grad_branch.data();
  ResidualLayerNormBackwardReference(a);

  DeviceBuffer<float> d_grad_sum(in.grad_sum), d_sum(sum), d_mean(mean), d_rstd(rstd),
      d_gamma(in.gamma), d_grad_residual(n);
  DeviceBuffer<uint16_t> d_grad_norm(in.grad_norm), d_grad_branch(n);
  DeviceBuffer<uint8_t> d_keep(keep);
  ResidualLayerNormBackwardArgs d = a;
  d.grad_sum = d_grad_sum.get();
  d.grad_norm = layer_norm ? d_grad_norm.get() : nullptr;
  d.sum = d_sum.get();
  d.mean = d_mean.get();
  d.rstd = d_rstd.get();
  d.gamma = d_gamma.get();
  d.keep = d_keep.get();
  d.grad_residual = alias ? d_grad_sum.get() : d_grad_residual.get();
  d.grad_branch = d_grad_branch.get();
  HPSEARCH_REQUIRE_CUDA(ResidualLayerNormBackward(d, nullptr));
  HPSEARCH_REQUIRE_CUDA(cudaDeviceSynchronize());
  const std::vector<float> got = alias ? d_grad_sum.ToHost() : d_grad_residual.ToHost();
  const std::vector<uint16_t> got_branch = d_grad_branch.ToHost();

  if (!layer_norm) {  // elementwise only: the reference's bits
    int64_t mismatches = 0;
    for (size_t i = 0; i < n; ++i) mismatches += BitsOf(got[i]) != BitsOf(grad_residual[i]);
    REQUIRE(mismatches == 0);
    REQUIRE(got_branch == grad_branch);
    return;
  }
  // The magnitudes each value's terms and its row's two sums carry.
  std::vector<double> bound(n);
  for (int64_t r = 0; r < rows; ++r) {
    double mean_gg = 0.0;
    double mean_gg_xhat = 0.0;
    for (int64_t c = 0; c < width; ++c) {
      const size_t i = static_cast<size_t>(r * width + c);
      const double gg = std::fabs(Bf16ToFloat(in.grad_norm[i]) * in.gamma[c]);
      mean_gg += gg;
      mean_gg_xhat += gg * std::fabs((sum[i] - mean[r]) * static_cast<double>(rstd[r]));
    }
    mean_gg /= static_cast<double>(width);
    mean_gg_xhat /= static_cast<double>(width);
    for (int64_t c = 0; c < width; ++c) {
      const size_t i = static_cast<size_t>(r * width + c);
      const double gg = std::fabs(Bf16ToFloat(in.grad_norm[i]) * in.gamma[c]);
      const double xhat = std::fabs((sum[i] - mean[r]) * static_cast<double>(rstd[r]));
      bound[i] =
          1e-5 * (std::fabs(in.grad_sum[i]) + rstd[r] * (gg + mean_gg + xhat * mean_gg_xhat));
    }
  }
  int64_t beyond = 0;
  for (size_t i = 0; i < n; ++i) beyond += !(std::fabs(got[i] - grad_residual[i]) <= bound[i]);
  REQUIRE(beyond == 0);
  const double scale = 1.0 / (1.0 - static_cast<double>(p));
  CompareBf16(got_branch, grad_branch, [&](size_t i) { return bound[i] * scale; });
}

TEST_CASE("CUDA residual LayerNorm backward equals the reference within the stated tolerance",
          "[kernels][residual_layer_norm][cuda]") {
  SkipWithoutDevice();
  const int64_t width = GENERATE(64, 1000, 1024, 37);
  const int64_t rows = GENERATE(1, 7, 200);
  const float p = GENERATE(0.0f, 0.1f);
  CheckBackward(rows, width, p, /*layer_norm=*/true, /*alias=*/false);
}

TEST_CASE("CUDA residual LayerNorm backward options: no LayerNorm term, grad_residual in place",
          "[kernels][residual_layer_norm][cuda]") {
  SkipWithoutDevice();
  CheckBackward(50, 1000, 0.1f, /*layer_norm=*/false, /*alias=*/false);
  CheckBackward(50, 1000, 0.1f, /*layer_norm=*/false, /*alias=*/true);
  CheckBackward(50, 1000, 0.1f, /*layer_norm=*/true, /*alias=*/true);
}

TEST_CASE("CUDA residual LayerNorm refuses bad arguments without launching",
          "[kernels][residual_layer_norm][cuda]") {
  SkipWithoutDevice();
  ResidualLayerNormForwardArgs forward;
  forward.rows = 4;
  forward.width = 8;
  REQUIRE(ResidualLayerNormForward(forward, nullptr) == cudaErrorInvalidValue);  // no residual
  forward.rows = 0;
  REQUIRE(ResidualLayerNormForward(forward, nullptr) == cudaSuccess);  // nothing to do
  forward.dropout_p = 1.0f;
  REQUIRE(ResidualLayerNormForward(forward, nullptr) == cudaErrorInvalidValue);
  ResidualLayerNormBackwardArgs backward;
  backward.rows = 4;
  backward.width = 8;
  REQUIRE(ResidualLayerNormBackward(backward, nullptr) == cudaErrorInvalidValue);
  backward.rows = 0;
  REQUIRE(ResidualLayerNormBackward(backward, nullptr) == cudaSuccess);
  REQUIRE(cudaGetLastError() == cudaSuccess);
}

}  // namespace
}  // namespace hpsearch::kernels
