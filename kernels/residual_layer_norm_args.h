// The fused residual LayerNorm (issue 19: a step's kernel launches): what it computes, as the
// argument structs of both its CUDA launchers (kernels/residual_layer_norm.cuh, device pointers)
// and its CPU reference (kernels/residual_layer_norm_reference.h, host pointers). No CUDA header
// here, so the reference builds without a CUDA toolkit.
//
// A GPT-2 block, with the residual stream in float32 and the layers in bfloat16, computes
//
//   a   = LayerNorm_1(x)                        -> bf16, input of attention's c_attn
//   h   = x + dropout(attn_out)                 attn_out bf16, h float32
//   m   = LayerNorm_2(h)                        -> bf16, input of the MLP's c_fc
//   out = h + dropout(mlp_out)                  mlp_out bf16, out float32
//
// which eager ATen runs as 8 kernels forward (LayerNorm, cast, dropout, add, ...) and about 9
// backward. One forward call computes, per row of `width` values:
//
//   sum  = residual + keep * branch / (1 - p)   (sum = residual when there is no branch)
//   norm = bf16((sum - mean) * rstd * gamma + beta)   (when gamma is given)
//
// so a block is three launches: LayerNorm_1 (no branch), h and m together, out (no LayerNorm). The
// backward call computes
//
//   grad_residual = grad_sum + LayerNormBackward(grad_norm)      (dL/dx of the LayerNorm input)
//   grad_branch   = bf16(grad_residual * keep / (1 - p))
//
// gamma and beta are frozen (QLoRA, LoRA): no gradient is produced for them.
//
// Dropout: keep is drawn by DropoutUniform(seed, offset, row * width + column) and DropoutKeeps of
// kernels/philox.h (Philox4x32-10; the contract is written there): a pure function of (seed,
// offset, row, column), so the same arguments give the same mask (a checkpointed block's
// recomputation) and the CPU reference gives the same bits. Two launches that need independent
// masks need offsets at least 4 apart (or different seeds): the generator's
// philox_engine_inputs(4). The mask is written (one byte per value, 0 or 1) for backward when
// keep_out is non-null. p = 0 keeps every value.
//
// NUMERICS, operation by operation (float32 unless said; every product and sum rounded on its own,
// never fused into an FMA, so the CUDA kernel's sum_out and keep_out equal the reference's bits):
//   scale  = 1.0f / (1.0f - p)
//   sum    = keep ? residual + bf16_to_float(branch) * scale : residual + 0.0f
//   mean   = (sum over the row of sum) / width         biased variance, as torch's LayerNorm:
//   var    = (sum over the row of (sum - mean)^2) / width     (two passes)
//   rstd   = 1.0f / sqrtf(var + eps)                   (IEEE sqrt and division)
//   xhat   = (sum - mean) * rstd
//   norm   = bf16_rne(xhat * gamma + beta)
// backward, with g = bf16_to_float(grad_norm), mean and rstd as the forward wrote them:
//   gg     = g * gamma;  xhat as above
//   c1     = (sum over the row of gg) / width;  c2 = (sum over the row of gg * xhat) / width
//   grad_residual = grad_sum + rstd * ((gg - c1) - xhat * c2)      (grad_sum + 0.0f without LN)
//   grad_branch   = bf16_rne(keep ? grad_residual * scale : 0.0f)
// The row reductions are the only place the kernel and the reference may differ: the reference
// accumulates in double and rounds the quotient to float once (the best float answer), the kernel
// accumulates in float32 in its own order (a tree), so mean/rstd and the backward's c1/c2 differ in
// the last bits and norm / grad_branch by at most about one bf16 ulp. The CUDA test states the
// tolerance. NaN and infinity propagate as the formulas say; nothing is checked per value.
//
// Aliasing: sum_out may be residual (an in-place residual add), grad_residual may be grad_sum;
// every other output must not overlap any input or output.
#pragma once

#include <cstdint>
#include <string>

namespace hpsearch::kernels {

// One forward call. Pointers are device memory for the launcher, host memory for the reference;
// the caller owns them. Null means "absent" as each field says.
struct ResidualLayerNormForwardArgs {
  int64_t rows = 0;
  int64_t width = 0;
  const float* residual = nullptr;   // [rows, width], required
  const uint16_t* branch = nullptr;  // [rows, width] bf16 bits, or null: sum = residual
  float dropout_p = 0.0f;            // on branch, in [0, 1)
  uint64_t seed = 0;                 // Philox key and counter offset of the dropout draws
  uint64_t offset = 0;
  uint8_t* keep_out = nullptr;   // [rows, width] keep mask, or null (not needed: no grad)
  float* sum_out = nullptr;      // [rows, width]; required when branch is given, else null
  const float* gamma = nullptr;  // [width], or null: no LayerNorm (beta, norm_out... unused)
  const float* beta = nullptr;   // [width], required with gamma
  float eps = 1e-5f;
  uint16_t* norm_out = nullptr;  // [rows, width] bf16 bits; required with gamma
  float* mean_out = nullptr;     // [rows], or null (not needed: no grad)
  float* rstd_out = nullptr;     // [rows], with mean_out
};

// One backward call, for the forward call that had the same rows, width, dropout_p, gamma.
struct ResidualLayerNormBackwardArgs {
  int64_t rows = 0;
  int64_t width = 0;
  const float* grad_sum = nullptr;      // [rows, width], or null: zero
  const uint16_t* grad_norm = nullptr;  // [rows, width] bf16 bits, or null: no LayerNorm term
  const float* sum = nullptr;           // the forward's sum (its residual when it had no branch)
  const float* mean = nullptr;          // [rows] as written by forward; required with grad_norm
  const float* rstd = nullptr;          // [rows] as written by forward; required with grad_norm
  const float* gamma = nullptr;         // [width]; required with grad_norm
  const uint8_t* keep = nullptr;  // forward's keep mask, or null: every value kept (dropout_p 0)
  float dropout_p = 0.0f;
  float* grad_residual = nullptr;   // [rows, width], required; may alias grad_sum
  uint16_t* grad_branch = nullptr;  // [rows, width] bf16 bits, or null: the forward had no branch
};

// "" when the arguments meet the preconditions below, else what is wrong and how to fix it. The
// launchers and the reference both check with these.
// REQUIRES (forward): rows >= 0; width >= 1 (>= 0 when rows == 0); 0 <= dropout_p < 1; eps >= 0 and
// finite; at least one of branch and gamma given; residual given; branch and sum_out both given or
// both null; keep_out only with branch; gamma, beta and norm_out all given or all null; mean_out
// and rstd_out both given or both null, and only with gamma; every pointer aligned to its type.
// Pointers may be null when rows == 0.
std::string ResidualLayerNormForwardArgsProblem(const ResidualLayerNormForwardArgs& args);

// REQUIRES (backward): rows >= 0; width >= 1 (>= 0 when rows == 0); 0 <= dropout_p < 1;
// grad_residual given; with grad_norm, also sum, mean, rstd and gamma; with grad_branch and
// dropout_p > 0, also keep (a mask cannot be redrawn here); every pointer aligned to its type.
// Pointers may be null when rows == 0.
std::string ResidualLayerNormBackwardArgsProblem(const ResidualLayerNormBackwardArgs& args);

}  // namespace hpsearch::kernels
