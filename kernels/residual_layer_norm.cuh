// The residual stream's elementwise work around a GPT-2 block as one kernel each way (issue 19: a
// step's kernel launches). A block computes, with the residual stream in float32 and the layers in
// bfloat16:
//
//   a   = LayerNorm_1(x)                        -> bf16, input of attention's c_attn
//   h   = x + dropout(attn_out)                 attn_out bf16, h float32
//   m   = LayerNorm_2(h)                        -> bf16, input of the MLP's c_fc
//   out = h + dropout(mlp_out)                  mlp_out bf16, out float32
//
// which eager ATen runs as 8 kernels forward (LayerNorm, cast, dropout, add, ...) and about 9
// backward. One ResidualLayerNorm launch computes, per row of `width` values:
//
//   sum  = residual + keep * branch / (1 - p)   (sum = residual when there is no branch)
//   norm = bf16((sum - mean) * rstd * gamma + beta)   (when gamma is given)
//
// so a block is three launches: LayerNorm_1 (no branch), h and m together, out (no LayerNorm). The
// backward launch computes
//
//   grad_residual = grad_sum + LayerNormBackward(grad_norm)      (dL/dx of the LayerNorm input)
//   grad_branch   = bf16(grad_residual * keep / (1 - p))
//
// gamma and beta are frozen (QLoRA, LoRA): no gradient is produced for them.
//
// Dropout: keep is drawn from Philox4x32-10 keyed by `seed` at counter `offset` (kernels/philox.h,
// shared with the CPU reference): a pure function of (seed, offset, row, column), so the same
// arguments give the same mask (a checkpointed block's recomputation) and the CPU reference gives
// the same bits. A value is kept when its uniform draw is < 1 - p. The mask is written (one byte per
// value, 0 or 1) for backward when keep_out is non-null.
//
// Numerics: mean and variance in float32 over the row (biased variance, as torch's LayerNorm),
// rstd = 1 / sqrt(var + eps); the reference in kernels/residual_layer_norm_reference.h does the same
// in float32 and the CUDA test allows a reduction-order tolerance (documented there).
//
// Raw device pointers and a stream, no LibTorch (core/residual_layer_norm.cc holds the tensor glue).
// Launchers are asynchronous on `stream`; they return cudaErrorInvalidValue without launching when a
// precondition fails, otherwise cudaGetLastError().
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace hpsearch::kernels {

struct ResidualLayerNormForwardArgs {
  int64_t rows = 0;
  int64_t width = 0;
  const float* residual = nullptr;  // [rows, width], required
  const uint16_t* branch = nullptr;  // [rows, width] bf16 bits, or null: sum = residual
  float dropout_p = 0.0f;            // on branch, in [0, 1)
  uint64_t seed = 0;                 // Philox key and counter offset of the dropout draws
  uint64_t offset = 0;
  uint8_t* keep_out = nullptr;       // [rows, width] keep mask, or null (not needed: no grad)
  float* sum_out = nullptr;          // [rows, width]; required when branch is given, else null
  const float* gamma = nullptr;      // [width], or null: no LayerNorm (beta, norm_out... unused)
  const float* beta = nullptr;       // [width], required with gamma
  float eps = 1e-5f;
  uint16_t* norm_out = nullptr;      // [rows, width] bf16 bits; required with gamma
  float* mean_out = nullptr;         // [rows], or null (not needed: no grad)
  float* rstd_out = nullptr;         // [rows], with mean_out
};

cudaError_t ResidualLayerNormForward(const ResidualLayerNormForwardArgs& args,
                                     cudaStream_t stream);

struct ResidualLayerNormBackwardArgs {
  int64_t rows = 0;
  int64_t width = 0;
  const float* grad_sum = nullptr;    // [rows, width], or null: zero
  const uint16_t* grad_norm = nullptr;  // [rows, width] bf16 bits, or null: no LayerNorm term
  const float* sum = nullptr;         // the forward's sum (its residual when it had no branch)
  const float* mean = nullptr;        // [rows] as written by forward; required with grad_norm
  const float* rstd = nullptr;
  const float* gamma = nullptr;       // [width]; required with grad_norm
  const uint8_t* keep = nullptr;      // forward's keep mask, or null: every value kept
  float dropout_p = 0.0f;
  float* grad_residual = nullptr;     // [rows, width], required; may alias grad_sum
  uint16_t* grad_branch = nullptr;    // [rows, width] bf16 bits, or null: the forward had no branch
};

cudaError_t ResidualLayerNormBackward(const ResidualLayerNormBackwardArgs& args,
                                      cudaStream_t stream);

}  // namespace hpsearch::kernels
