#include "kernels/residual_layer_norm_reference.h"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/nf4_reference.h"  // FloatToBf16, Bf16ToFloat: hpsearch's one bf16 rounding
#include "kernels/philox.h"

namespace hpsearch::kernels {
namespace {

// Mean of `count` floats produced by value(i), summed in double and rounded once.
template <typename Value>
float RowMean(int64_t count, Value value) {
  double total = 0.0;
  for (int64_t i = 0; i < count; ++i) total += static_cast<double>(value(i));
  return static_cast<float>(total / static_cast<double>(count));
}

}  // namespace

void ResidualLayerNormForwardReference(const ResidualLayerNormForwardArgs& a) {
  const std::string problem = ResidualLayerNormForwardArgsProblem(a);
  if (!problem.empty()) throw std::invalid_argument(problem);
  const float scale = 1.0f / (1.0f - a.dropout_p);
  for (int64_t row = 0; row < a.rows; ++row) {
    const int64_t base = row * a.width;
    const float* sum = a.residual + base;
    if (a.branch != nullptr) {
      for (int64_t col = 0; col < a.width; ++col) {
        const int64_t i = base + col;
        const bool keep =
            DropoutKeeps(DropoutUniform(a.seed, a.offset, static_cast<uint64_t>(i)), a.dropout_p);
        const float dropped = keep ? Bf16ToFloat(a.branch[i]) * scale : 0.0f;
        // Read residual before writing sum_out: they may alias.
        a.sum_out[i] = a.residual[i] + dropped;
        if (a.keep_out != nullptr) a.keep_out[i] = keep ? 1 : 0;
      }
      sum = a.sum_out + base;
    }
    if (a.gamma == nullptr) continue;
    const float mean = RowMean(a.width, [&](int64_t col) { return sum[col]; });
    const float var = RowMean(a.width, [&](int64_t col) {
      const double centred = static_cast<double>(sum[col]) - static_cast<double>(mean);
      return centred * centred;
    });
    const float rstd = 1.0f / std::sqrt(var + a.eps);
    for (int64_t col = 0; col < a.width; ++col) {
      const float xhat = (sum[col] - mean) * rstd;
      const float scaled = xhat * a.gamma[col];
      a.norm_out[base + col] = FloatToBf16(scaled + a.beta[col]);
    }
    if (a.mean_out != nullptr) {
      a.mean_out[row] = mean;
      a.rstd_out[row] = rstd;
    }
  }
}

void ResidualLayerNormBackwardReference(const ResidualLayerNormBackwardArgs& a) {
  const std::string problem = ResidualLayerNormBackwardArgsProblem(a);
  if (!problem.empty()) throw std::invalid_argument(problem);
  const float scale = 1.0f / (1.0f - a.dropout_p);
  for (int64_t row = 0; row < a.rows; ++row) {
    const int64_t base = row * a.width;
    float mean = 0.0f;
    float rstd = 0.0f;
    float c1 = 0.0f;
    float c2 = 0.0f;
    auto grad_gamma = [&](int64_t col) {
      return Bf16ToFloat(a.grad_norm[base + col]) * a.gamma[col];
    };
    auto xhat = [&](int64_t col) { return (a.sum[base + col] - mean) * rstd; };
    if (a.grad_norm != nullptr) {
      mean = a.mean[row];
      rstd = a.rstd[row];
      c1 = RowMean(a.width, grad_gamma);
      c2 = RowMean(a.width, [&](int64_t col) {
        return static_cast<double>(grad_gamma(col)) * static_cast<double>(xhat(col));
      });
    }
    for (int64_t col = 0; col < a.width; ++col) {
      const int64_t i = base + col;
      // Read grad_sum before writing grad_residual: they may alias.
      const float incoming = a.grad_sum != nullptr ? a.grad_sum[i] : 0.0f;
      float through_norm = 0.0f;
      if (a.grad_norm != nullptr) {
        const float centred = grad_gamma(col) - c1;
        const float projected = xhat(col) * c2;
        through_norm = rstd * (centred - projected);
      }
      const float grad = incoming + through_norm;
      a.grad_residual[i] = grad;
      if (a.grad_branch != nullptr) {
        const bool keep = a.keep == nullptr || a.keep[i] != 0;
        a.grad_branch[i] = FloatToBf16(keep ? grad * scale : 0.0f);
      }
    }
  }
}

}  // namespace hpsearch::kernels
