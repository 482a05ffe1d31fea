// ResidualLayerNorm: the residual stream's elementwise work around a GPT-2 block as one autograd op
// (issue 19: a step's kernel launches), the op of kernels/residual_layer_norm.cuh:
//
//   sum  = residual + dropout(branch)          (sum = residual when there is no branch)
//   norm = LayerNorm(sum).to(norm_dtype)       (when a LayerNorm is given)
//
// and in backward, with sum's and norm's incoming gradients,
//
//   grad_residual = grad_sum + LayerNormBackward(grad_norm)
//   grad_branch   = (grad_residual * keep / (1 - p)).to(branch's dtype)
//
// A Gpt2Block is three of them: ln_1 (no branch; its sum is the residual, returned so that the next
// op's residual gradient reaches it inside this op's backward instead of being summed by the
// autograd engine), h and ln_2 together, and the block's output (no LayerNorm). Hugging Face's
// semantics are kept: dropout on the branch (the attention's or the MLP's output), then the add.
//
// Where it runs:
// - On CUDA with a float32 residual, a bfloat16 branch (or none), float32 LayerNorm parameters and
//   a bfloat16 norm (or no LayerNorm): one kernel each way (kernels::ResidualLayerNormForward and
//   Backward; dropout draws from Philox keyed by the device's default generator, which a
//   checkpointed block's recomputation restores, so the mask repeats). Its bfloat16 results differ
//   from eager ATen's in rounding (the dropout scale applies in float32, each output rounds once;
//   kernels/residual_layer_norm.cuh states it) and its masks are its own draws.
// - Elsewhere (the CPU, other dtypes): the ATen calls eager PyTorch makes for the same expression
//   (dropout as at::dropout does it on that device, add, layer_norm, to, and their derivatives), so
//   float32 results and gradients are bit for bit those of the unfused expression and dropout draws
//   from the same generator in the same order.
// - For the dtype combinations the kernel handles, on any device, the op is one fused op for kernel
//   counting (core/kernel_count.h, kResidualLayerNormOp): 1 forward, 1 backward.
// - LayerNorm parameters that require grad (full fine-tuning): the plain unfused ATen expression,
//   not fused and not counted as one (the kernel produces no parameter gradients).
//
// Thread-safety: as the ATen ops it calls; dropout draws from the device's default generator.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>
#include <torch/nn/modules/normalization.h>

namespace hpsearch::core {

struct ResidualLayerNormOutput {
  at::Tensor sum;   // residual + dropout(branch), in residual's dtype
  at::Tensor norm;  // LayerNorm(sum) in norm_dtype; undefined without a LayerNorm
};

// residual: [..., C]; branch: residual's shape (any floating dtype; bfloat16 for the kernel), or
// undefined: sum = residual. Dropout with probability `dropout_p` applies to branch when
// `training`. layer_norm: a LayerNorm over the last dimension (normalized_shape {C}), or null: no
// norm. REQUIRES: residual is defined; 0 <= dropout_p < 1; branch and residual on one device.
ResidualLayerNormOutput ResidualLayerNorm(const at::Tensor& residual, const at::Tensor& branch,
                                          double dropout_p, bool training,
                                          const torch::nn::LayerNormImpl* layer_norm,
                                          c10::ScalarType norm_dtype);

}  // namespace hpsearch::core
