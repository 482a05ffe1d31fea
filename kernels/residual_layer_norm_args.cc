#include "kernels/residual_layer_norm_args.h"

#include <cmath>
#include <cstdint>
#include <string>

namespace hpsearch::kernels {
namespace {

// A pointer not aligned to its element type comes from a reinterpreted byte offset; the kernels
// load whole elements, so the caller must pass tensors of the stated dtype.
template <typename T>
bool Misaligned(const T* pointer) {
  return reinterpret_cast<uintptr_t>(pointer) % alignof(T) != 0;
}

std::string CheckShapeAndDropout(const char* function, int64_t rows, int64_t width, float p) {
  if (rows < 0) return std::string(function) + ": rows is " + std::to_string(rows) + "; need >= 0";
  if (width < 0 || (rows > 0 && width < 1)) {
    return std::string(function) + ": width is " + std::to_string(width) +
           "; a LayerNorm row needs at least one value";
  }
  if (!(p >= 0.0f && p < 1.0f)) {
    return std::string(function) + ": dropout_p is " + std::to_string(p) +
           "; need 0 <= p < 1 (p = 1 drops everything: pass no branch instead)";
  }
  return "";
}

}  // namespace

std::string ResidualLayerNormForwardArgsProblem(const ResidualLayerNormForwardArgs& a) {
  constexpr char kFn[] = "ResidualLayerNormForward";
  std::string problem = CheckShapeAndDropout(kFn, a.rows, a.width, a.dropout_p);
  if (!problem.empty()) return problem;
  if (!(a.eps >= 0.0f && std::isfinite(a.eps))) {
    return std::string(kFn) + ": eps is " + std::to_string(a.eps) + "; need a finite eps >= 0";
  }
  const bool has_branch = a.branch != nullptr || a.sum_out != nullptr;
  const bool has_norm = a.gamma != nullptr || a.beta != nullptr || a.norm_out != nullptr;
  const std::string prefix = std::string(kFn) + ": ";
  if (a.rows > 0) {
    if (a.residual == nullptr) return prefix + "residual is null; it is required";
    if (has_branch && (a.branch == nullptr || a.sum_out == nullptr)) {
      return prefix + "branch and sum_out must be given together (sum_out holds residual + branch)";
    }
    if (has_norm && (a.gamma == nullptr || a.beta == nullptr || a.norm_out == nullptr)) {
      return prefix +
             "gamma, beta and norm_out must be given together (a LayerNorm needs all three)";
    }
  }
  if (a.rows > 0 && !has_branch && !has_norm) {
    return prefix + "neither branch nor gamma is given: there is nothing to compute";
  }
  if (a.keep_out != nullptr && a.branch == nullptr) {
    return prefix + "keep_out is given without a branch: there is no dropout to record";
  }
  if ((a.mean_out == nullptr) != (a.rstd_out == nullptr)) {
    return prefix + "mean_out and rstd_out must be given together (the backward needs both)";
  }
  if (a.mean_out != nullptr && a.gamma == nullptr) {
    return prefix + "mean_out/rstd_out are given without gamma: there is no LayerNorm";
  }
  if (Misaligned(a.residual) || Misaligned(a.branch) || Misaligned(a.sum_out) ||
      Misaligned(a.gamma) || Misaligned(a.beta) || Misaligned(a.norm_out) ||
      Misaligned(a.mean_out) || Misaligned(a.rstd_out)) {
    return prefix + "a pointer is not aligned to its element type; pass contiguous tensors";
  }
  return "";
}

std::string ResidualLayerNormBackwardArgsProblem(const ResidualLayerNormBackwardArgs& a) {
  constexpr char kFn[] = "ResidualLayerNormBackward";
  std::string problem = CheckShapeAndDropout(kFn, a.rows, a.width, a.dropout_p);
  if (!problem.empty()) return problem;
  const std::string prefix = std::string(kFn) + ": ";
  if (a.rows > 0) {
    if (a.grad_residual == nullptr) return prefix + "grad_residual is null; it is required";
    if (a.grad_norm != nullptr &&
        (a.sum == nullptr || a.mean == nullptr || a.rstd == nullptr || a.gamma == nullptr)) {
      return prefix +
             "grad_norm is given without sum, mean, rstd or gamma; the LayerNorm backward needs "
             "the forward's sum, mean and rstd and the gamma it used";
    }
    if (a.grad_branch != nullptr && a.dropout_p > 0.0f && a.keep == nullptr) {
      return prefix + "grad_branch with dropout_p > 0 needs the forward's keep mask";
    }
  }
  if (Misaligned(a.grad_sum) || Misaligned(a.grad_norm) || Misaligned(a.sum) ||
      Misaligned(a.mean) || Misaligned(a.rstd) || Misaligned(a.gamma) ||
      Misaligned(a.grad_residual) || Misaligned(a.grad_branch)) {
    return prefix + "a pointer is not aligned to its element type; pass contiguous tensors";
  }
  return "";
}

}  // namespace hpsearch::kernels
