#include "kernels/residual_layer_norm_reference.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <vector>

#include "kernels/nf4_reference.h"
#include "kernels/philox.h"

namespace hpsearch::kernels {
namespace {

// Host buffers of one forward call with every option on, and the args pointing at them.
struct ForwardCase {
  int64_t rows;
  int64_t width;
  std::vector<float> residual;
  std::vector<uint16_t> branch;
  std::vector<float> gamma;
  std::vector<float> beta;
  std::vector<uint8_t> keep;
  std::vector<float> sum;
  std::vector<uint16_t> norm;
  std::vector<float> mean;
  std::vector<float> rstd;

  ForwardCase(int64_t rows_in, int64_t width_in, uint32_t seed) : rows(rows_in), width(width_in) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const size_t n = static_cast<size_t>(rows * width);
    for (size_t i = 0; i < n; ++i) {
      residual.push_back(3.0f + normal(rng));  // a row mean far from 0 exercises the centring
      branch.push_back(FloatToBf16(normal(rng)));
    }
    for (int64_t c = 0; c < width; ++c) {
      gamma.push_back(1.0f + 0.2f * normal(rng));
      beta.push_back(0.1f * normal(rng));
    }
    keep.assign(n, 7);  // neither 0 nor 1: a value never written shows
    sum.assign(n, -1.0f);
    norm.assign(n, 0xABCD);
    mean.assign(static_cast<size_t>(rows), -1.0f);
    rstd.assign(static_cast<size_t>(rows), -1.0f);
  }

  ResidualLayerNormForwardArgs Args(float p) {
    ResidualLayerNormForwardArgs a;
    a.rows = rows;
    a.width = width;
    a.residual = residual.data();
    a.branch = branch.data();
    a.dropout_p = p;
    a.seed = 1234;
    a.offset = 5;
    a.keep_out = keep.data();
    a.sum_out = sum.data();
    a.gamma = gamma.data();
    a.beta = beta.data();
    a.eps = 1e-5f;
    a.norm_out = norm.data();
    a.mean_out = mean.data();
    a.rstd_out = rstd.data();
    return a;
  }
};

// LayerNorm of one row in double from the float inputs: the independent computation.
std::vector<double> LayerNormDouble(const float* x, const float* gamma, const float* beta,
                                    int64_t width, double eps) {
  double mean = 0.0;
  for (int64_t c = 0; c < width; ++c) mean += x[c];
  mean /= static_cast<double>(width);
  double var = 0.0;
  for (int64_t c = 0; c < width; ++c) var += (x[c] - mean) * (x[c] - mean);
  var /= static_cast<double>(width);
  std::vector<double> y(static_cast<size_t>(width));
  for (int64_t c = 0; c < width; ++c) {
    y[c] = (x[c] - mean) / std::sqrt(var + eps) * gamma[c] + beta[c];
  }
  return y;
}

// bf16 keeps 8 significant bits: rounding the float result costs at most half an ulp (2^-9
// relative); the float arithmetic before it adds about 1e-6 relative. Near zero the absolute part
// of that error dominates.
bool WithinBf16(uint16_t got, double want, double absolute) {
  return std::fabs(Bf16ToFloat(got) - want) <= std::ldexp(std::fabs(want), -8) + absolute;
}

TEST_CASE("Residual LayerNorm forward reference matches a double-precision computation",
          "[kernels][residual_layer_norm]") {
  const auto shape = GENERATE(std::make_pair(1, 1), std::make_pair(3, 7), std::make_pair(5, 64),
                              std::make_pair(2, 1000));
  const float p = GENERATE(0.0f, 0.1f);
  CAPTURE(shape.first, shape.second, p);
  ForwardCase f(shape.first, shape.second, 11);
  ResidualLayerNormForwardReference(f.Args(p));
  const double scale = 1.0 / (1.0 - static_cast<double>(p));
  for (int64_t r = 0; r < f.rows; ++r) {
    std::vector<float> sum_exact(static_cast<size_t>(f.width));
    for (int64_t c = 0; c < f.width; ++c) {
      const int64_t i = r * f.width + c;
      REQUIRE((f.keep[i] == 0 || f.keep[i] == 1));
      const double want = f.residual[i] + (f.keep[i] ? Bf16ToFloat(f.branch[i]) * scale : 0.0);
      REQUIRE(f.sum[i] == Approx(want).epsilon(1e-6).margin(1e-6));
      sum_exact[c] = f.sum[i];
    }
    const std::vector<double> y =
        LayerNormDouble(sum_exact.data(), f.gamma.data(), f.beta.data(), f.width, 1e-5);
    for (int64_t c = 0; c < f.width; ++c) {
      CAPTURE(r, c, y[c], Bf16ToFloat(f.norm[r * f.width + c]));
      REQUIRE(WithinBf16(f.norm[r * f.width + c], y[c], 1e-5));
    }
    double mean = 0.0;
    for (float v : sum_exact) mean += v;
    mean /= static_cast<double>(f.width);
    REQUIRE(f.mean[r] == Approx(mean).epsilon(1e-6));
    REQUIRE(f.rstd[r] > 0.0f);
  }
}

TEST_CASE("Residual LayerNorm with dropout 0 is residual + branch, then a plain LayerNorm",
          "[kernels][residual_layer_norm]") {
  ForwardCase f(4, 96, 12);
  ResidualLayerNormForwardReference(f.Args(0.0f));
  std::vector<float> added(f.residual.size());
  for (size_t i = 0; i < added.size(); ++i) {
    REQUIRE(f.keep[i] == 1);
    added[i] = f.residual[i] + Bf16ToFloat(f.branch[i]);
    REQUIRE(f.sum[i] == added[i]);
  }
  // The LayerNorm-only call (no branch) on the sum gives the same bits.
  ForwardCase plain(4, 96, 12);
  plain.residual = added;
  ResidualLayerNormForwardArgs a = plain.Args(0.0f);
  a.branch = nullptr;
  a.sum_out = nullptr;
  a.keep_out = nullptr;
  ResidualLayerNormForwardReference(a);
  REQUIRE(plain.norm == f.norm);
  REQUIRE(plain.mean == f.mean);
  REQUIRE(plain.rstd == f.rstd);
  REQUIRE(plain.sum == std::vector<float>(plain.sum.size(), -1.0f));  // untouched
}

TEST_CASE("Residual LayerNorm dropout keeps about 1 - p, as philox.h draws it, scaled by 1/(1-p)",
          "[kernels][residual_layer_norm]") {
  for (float p : {0.1f, 0.5f}) {
    CAPTURE(p);
    ForwardCase f(200, 1000, 13);
    ResidualLayerNormForwardArgs a = f.Args(p);
    ResidualLayerNormForwardReference(a);
    const float scale = 1.0f / (1.0f - p);
    int64_t kept = 0;
    for (size_t i = 0; i < f.keep.size(); ++i) {
      const bool want = DropoutKeeps(DropoutUniform(a.seed, a.offset, i), p);
      REQUIRE(f.keep[i] == (want ? 1 : 0));
      REQUIRE(f.sum[i] ==
              (want ? f.residual[i] + Bf16ToFloat(f.branch[i]) * scale : f.residual[i]));
      kept += f.keep[i];
    }
    // 200,000 draws: the binomial standard deviation is <= 0.0012; allow 5 of them.
    REQUIRE(static_cast<double>(kept) / f.keep.size() == Approx(1.0 - p).margin(0.006));
    // The same (seed, offset) gives the same mask; another offset a different one.
    std::vector<uint8_t> first = f.keep;
    ResidualLayerNormForwardReference(a);
    REQUIRE(f.keep == first);
    a.offset += 4;
    ResidualLayerNormForwardReference(a);
    REQUIRE(f.keep != first);
  }
}

// Backward inputs for the forward of `f`, and the args pointing at them.
struct BackwardCase {
  std::vector<float> grad_sum;
  std::vector<uint16_t> grad_norm;
  std::vector<float> grad_residual;
  std::vector<uint16_t> grad_branch;

  BackwardCase(const ForwardCase& f, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (size_t i = 0; i < f.sum.size(); ++i) {
      grad_sum.push_back(normal(rng));
      grad_norm.push_back(FloatToBf16(normal(rng)));
    }
    grad_residual.assign(f.sum.size(), -7.0f);
    grad_branch.assign(f.sum.size(), 0xABCD);
  }

  ResidualLayerNormBackwardArgs Args(const ForwardCase& f, float p) {
    ResidualLayerNormBackwardArgs a;
    a.rows = f.rows;
    a.width = f.width;
    a.grad_sum = grad_sum.data();
    a.grad_norm = grad_norm.data();
    a.sum = f.sum.data();
    a.mean = f.mean.data();
    a.rstd = f.rstd.data();
    a.gamma = f.gamma.data();
    a.keep = f.keep.data();
    a.dropout_p = p;
    a.grad_residual = grad_residual.data();
    a.grad_branch = grad_branch.data();
    return a;
  }
};

TEST_CASE("Residual LayerNorm backward reference matches finite differences of the double forward",
          "[kernels][residual_layer_norm]") {
  const int64_t width = GENERATE(1, 5, 64, 300);
  CAPTURE(width);
  const float p = 0.25f;
  ForwardCase f(3, width, 21);
  ResidualLayerNormForwardReference(f.Args(p));
  BackwardCase b(f, 22);
  ResidualLayerNormBackwardReference(b.Args(f, p));
  const double scale = 1.0 / (1.0 - static_cast<double>(p));
  for (int64_t r = 0; r < f.rows; ++r) {
    const int64_t base = r * width;
    // L(x) = sum_c grad_sum[c] x[c] + grad_norm[c] LayerNorm(x)[c] over one row, in double.
    std::vector<double> x(f.sum.begin() + base, f.sum.begin() + base + width);
    auto loss = [&](const std::vector<double>& at) {
      // LayerNormDouble reads floats; the perturbed points need doubles.
      double mean = 0.0;
      for (double v : at) mean += v;
      mean /= static_cast<double>(width);
      double var = 0.0;
      for (double v : at) var += (v - mean) * (v - mean);
      var /= static_cast<double>(width);
      double total = 0.0;
      for (int64_t c = 0; c < width; ++c) {
        const double y = (at[c] - mean) / std::sqrt(var + 1e-5) * f.gamma[c] + f.beta[c];
        total += b.grad_sum[base + c] * at[c] + Bf16ToFloat(b.grad_norm[base + c]) * y;
      }
      return total;
    };
    double largest = 0.0;
    std::vector<double> numeric(static_cast<size_t>(width));
    for (int64_t c = 0; c < width; ++c) {
      const double h = 1e-4;
      std::vector<double> up = x;
      std::vector<double> down = x;
      up[c] += h;
      down[c] -= h;
      numeric[c] = (loss(up) - loss(down)) / (2 * h);
      largest = std::max(largest, std::fabs(numeric[c]));
    }
    for (int64_t c = 0; c < width; ++c) {
      const int64_t i = base + c;
      CAPTURE(r, c, numeric[c], b.grad_residual[i]);
      // Central differences with h = 1e-4 on a smooth function of scale ~1: error ~1e-8; the
      // float reference ~1e-6 of the row's largest gradient.
      REQUIRE(std::fabs(b.grad_residual[i] - numeric[c]) <= 1e-5 * (1.0 + largest));
      const double branch_grad = f.keep[i] ? b.grad_residual[i] * scale : 0.0;
      REQUIRE(WithinBf16(b.grad_branch[i], branch_grad, 0.0));
    }
  }
}

TEST_CASE("Residual LayerNorm backward: the LayerNorm term is blind to shifting and scaling a row",
          "[kernels][residual_layer_norm]") {
  // y depends on x only through xhat, so its input gradient d satisfies sum_c d[c] = 0 and
  // sum_c d[c] xhat[c] = 0.
  ForwardCase f(4, 512, 31);
  ResidualLayerNormForwardReference(f.Args(0.0f));
  BackwardCase b(f, 32);
  ResidualLayerNormBackwardArgs a = b.Args(f, 0.0f);
  a.grad_sum = nullptr;
  ResidualLayerNormBackwardReference(a);
  for (int64_t r = 0; r < f.rows; ++r) {
    double total = 0.0;
    double along_xhat = 0.0;
    double magnitude = 0.0;
    for (int64_t c = 0; c < f.width; ++c) {
      const int64_t i = r * f.width + c;
      const double xhat = (f.sum[i] - f.mean[r]) * static_cast<double>(f.rstd[r]);
      total += b.grad_residual[i];
      along_xhat += b.grad_residual[i] * xhat;
      magnitude += std::fabs(b.grad_residual[i]);
    }
    CAPTURE(r, total, along_xhat, magnitude);
    REQUIRE(magnitude > 1.0);
    REQUIRE(std::fabs(total) <= 1e-5 * magnitude);
    REQUIRE(std::fabs(along_xhat) <= 1e-5 * magnitude);
  }
}

TEST_CASE("Residual LayerNorm null options: each absent output or input behaves as documented",
          "[kernels][residual_layer_norm]") {
  const float p = 0.3f;
  ForwardCase full(6, 40, 41);
  ResidualLayerNormForwardReference(full.Args(p));

  SECTION("no keep_out, no mean_out/rstd_out: the same sum and norm") {
    ForwardCase f(6, 40, 41);
    ResidualLayerNormForwardArgs a = f.Args(p);
    a.keep_out = nullptr;
    a.mean_out = nullptr;
    a.rstd_out = nullptr;
    ResidualLayerNormForwardReference(a);
    REQUIRE(f.sum == full.sum);
    REQUIRE(f.norm == full.norm);
    REQUIRE(f.keep == std::vector<uint8_t>(f.keep.size(), 7));
    REQUIRE(f.mean == std::vector<float>(f.mean.size(), -1.0f));
  }
  SECTION("no LayerNorm: the same sum and mask, norm untouched") {
    ForwardCase f(6, 40, 41);
    ResidualLayerNormForwardArgs a = f.Args(p);
    a.gamma = nullptr;
    a.beta = nullptr;
    a.norm_out = nullptr;
    a.mean_out = nullptr;
    a.rstd_out = nullptr;
    ResidualLayerNormForwardReference(a);
    REQUIRE(f.sum == full.sum);
    REQUIRE(f.keep == full.keep);
    REQUIRE(f.norm == std::vector<uint16_t>(f.norm.size(), 0xABCD));
  }
  SECTION("sum_out may be residual: the residual add in place") {
    ForwardCase f(6, 40, 41);
    ResidualLayerNormForwardArgs a = f.Args(p);
    a.sum_out = f.residual.data();
    ResidualLayerNormForwardReference(a);
    REQUIRE(f.residual == full.sum);
    REQUIRE(f.norm == full.norm);
  }
  SECTION("backward without grad_sum equals a zero grad_sum") {
    BackwardCase zero(full, 42);
    std::fill(zero.grad_sum.begin(), zero.grad_sum.end(), 0.0f);
    ResidualLayerNormBackwardReference(zero.Args(full, p));
    BackwardCase none(full, 42);
    ResidualLayerNormBackwardArgs a = none.Args(full, p);
    a.grad_sum = nullptr;
    ResidualLayerNormBackwardReference(a);
    REQUIRE(none.grad_residual == zero.grad_residual);
    REQUIRE(none.grad_branch == zero.grad_branch);
  }
  SECTION("backward with grad_residual aliasing grad_sum equals separate buffers") {
    BackwardCase separate(full, 43);
    ResidualLayerNormBackwardReference(separate.Args(full, p));
    BackwardCase aliased(full, 43);
    ResidualLayerNormBackwardArgs a = aliased.Args(full, p);
    a.grad_residual = aliased.grad_sum.data();
    ResidualLayerNormBackwardReference(a);
    REQUIRE(aliased.grad_sum == separate.grad_residual);
    REQUIRE(aliased.grad_branch == separate.grad_branch);
  }
  SECTION("backward without grad_norm passes grad_sum through; no grad_branch writes none") {
    BackwardCase b(full, 44);
    ResidualLayerNormBackwardArgs a = b.Args(full, p);
    a.grad_norm = nullptr;
    a.mean = nullptr;
    a.rstd = nullptr;
    a.gamma = nullptr;
    ResidualLayerNormBackwardReference(a);
    const float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < b.grad_sum.size(); ++i) {
      REQUIRE(b.grad_residual[i] == b.grad_sum[i]);
      REQUIRE(b.grad_branch[i] == FloatToBf16(full.keep[i] ? b.grad_sum[i] * scale : 0.0f));
    }
    BackwardCase c(full, 44);
    a = c.Args(full, p);
    a.grad_branch = nullptr;
    ResidualLayerNormBackwardReference(a);
    REQUIRE(c.grad_branch == std::vector<uint16_t>(c.grad_branch.size(), 0xABCD));
  }
}

TEST_CASE("Residual LayerNorm reference refuses invalid arguments and writes nothing",
          "[kernels][residual_layer_norm]") {
  using Forward = ResidualLayerNormForwardArgs;
  const std::vector<std::pair<const char*, std::function<void(Forward&)>>> forward_breaks = {
      {"negative rows", [](Forward& a) { a.rows = -1; }},
      {"zero width", [](Forward& a) { a.width = 0; }},
      {"p = 1", [](Forward& a) { a.dropout_p = 1.0f; }},
      {"negative p", [](Forward& a) { a.dropout_p = -0.1f; }},
      {"NaN p", [](Forward& a) { a.dropout_p = std::nanf(""); }},
      {"negative eps", [](Forward& a) { a.eps = -1e-5f; }},
      {"no residual", [](Forward& a) { a.residual = nullptr; }},
      {"branch without sum_out", [](Forward& a) { a.sum_out = nullptr; }},
      {"sum_out without branch",
       [](Forward& a) {
         a.branch = nullptr;
         a.keep_out = nullptr;
       }},
      {"keep_out without branch",
       [](Forward& a) {
         a.branch = nullptr;
         a.sum_out = nullptr;
       }},
      {"gamma without beta", [](Forward& a) { a.beta = nullptr; }},
      {"gamma without norm_out", [](Forward& a) { a.norm_out = nullptr; }},
      {"mean_out without rstd_out", [](Forward& a) { a.rstd_out = nullptr; }},
      {"nothing to compute",
       [](Forward& a) {
         a.branch = nullptr;
         a.sum_out = nullptr;
         a.keep_out = nullptr;
         a.gamma = nullptr;
         a.beta = nullptr;
         a.norm_out = nullptr;
         a.mean_out = nullptr;
         a.rstd_out = nullptr;
       }},
      {"misaligned residual",
       [](Forward& a) {
         a.residual = reinterpret_cast<const float*>(reinterpret_cast<const char*>(a.residual) + 1);
       }},
  };
  for (const auto& [what, brk] : forward_breaks) {
    CAPTURE(what);
    ForwardCase f(2, 8, 51);
    Forward a = f.Args(0.1f);
    brk(a);
    REQUIRE_FALSE(ResidualLayerNormForwardArgsProblem(a).empty());
    REQUIRE_THROWS_AS(ResidualLayerNormForwardReference(a), std::invalid_argument);
    REQUIRE(f.sum == std::vector<float>(f.sum.size(), -1.0f));
    REQUIRE(f.norm == std::vector<uint16_t>(f.norm.size(), 0xABCD));
  }

  ForwardCase f(2, 8, 52);
  ResidualLayerNormForwardReference(f.Args(0.1f));
  using Backward = ResidualLayerNormBackwardArgs;
  const std::vector<std::pair<const char*, std::function<void(Backward&)>>> backward_breaks = {
      {"zero width", [](Backward& a) { a.width = 0; }},
      {"p = 1", [](Backward& a) { a.dropout_p = 1.0f; }},
      {"no grad_residual", [](Backward& a) { a.grad_residual = nullptr; }},
      {"grad_norm without sum", [](Backward& a) { a.sum = nullptr; }},
      {"grad_norm without mean", [](Backward& a) { a.mean = nullptr; }},
      {"grad_norm without rstd", [](Backward& a) { a.rstd = nullptr; }},
      {"grad_norm without gamma", [](Backward& a) { a.gamma = nullptr; }},
      {"grad_branch with dropout but no mask", [](Backward& a) { a.keep = nullptr; }},
  };
  for (const auto& [what, brk] : backward_breaks) {
    CAPTURE(what);
    BackwardCase b(f, 53);
    Backward a = b.Args(f, 0.1f);
    brk(a);
    REQUIRE_FALSE(ResidualLayerNormBackwardArgsProblem(a).empty());
    REQUIRE_THROWS_AS(ResidualLayerNormBackwardReference(a), std::invalid_argument);
    REQUIRE(b.grad_residual == std::vector<float>(b.grad_residual.size(), -7.0f));
  }

  // Zero rows is valid and does nothing, even with null buffers.
  Forward empty;
  empty.width = 16;
  REQUIRE(ResidualLayerNormForwardArgsProblem(empty).empty());
  REQUIRE_NOTHROW(ResidualLayerNormForwardReference(empty));
  empty.width = 0;  // an empty [0, 0] tensor
  REQUIRE_NOTHROW(ResidualLayerNormForwardReference(empty));
  Backward empty_backward;
  empty_backward.width = 16;
  REQUIRE_NOTHROW(ResidualLayerNormBackwardReference(empty_backward));
}

}  // namespace
}  // namespace hpsearch::kernels
