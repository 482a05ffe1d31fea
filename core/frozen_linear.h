// FrozenLinear: y = x W^T + b for a frozen base weight W held by a FrozenWeight (QLoRA's NF4 base),
// as one autograd node that keeps nothing of W for backward. at::linear would save the
// materialised W (for the seed shape 604 MB of bf16 over 24 layers) to compute dL/dx; this node
// saves only the FrozenWeight handle and materialises W again in backward, as bitsandbytes'
// MatMul4Bit does. It trades one extra dequantisation per layer and step (a few microseconds of
// bandwidth on a GPU) for the memory, which is what keeps the seed shape's training under 1 GiB.
// Inside a checkpointed block's recomputation (InCheckpointRecompute, core/grad_checkpoint.h) it
// keeps the dense matrix instead: that graph lives for one block's backward only, and the step
// saves the dequantisation (a kernel launch per layer). Forward takes the dense matrix from an open
// MaterializedWeightsScope (core/materialized_weights.h) when one holds it for (weight, x's dtype),
// as a GPT-2 block's run does for its four bases, and materialises it otherwise.
//
// Forward is exactly at::linear(x, W, bias) (same kernels, same bits); backward returns
// dL/dx = dL/dy W and no gradient for W or the bias (both frozen).
//
// Ownership: the autograd graph holds a shared_ptr to the FrozenWeight until backward has run.
// Thread-safety: as the FrozenWeight's const methods (concurrent calls are fine).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/csrc/autograd/custom_function.h>

#include <memory>

#include "core/frozen_weight.h"

namespace hpsearch::core {

// x: [..., in] in any floating dtype; bias: [out] in x's dtype, frozen, or undefined. Returns
// [..., out] in x's dtype. REQUIRES: weight non-null; bias, when defined, does not require grad.
at::Tensor FrozenLinear(const at::Tensor& x, std::shared_ptr<const FrozenWeight> weight,
                        const at::Tensor& bias);

// The two halves of FrozenLinear's node, for an autograd node that computes more than the base
// product (QLoRA's adapter node in core/lora_linear.cc, which fuses the two input gradients):
// FrozenLinearForward materialises W as FrozenLinear does, records in ctx->saved_data (keys
// "frozen_linear/...") what the input gradient needs — the dense W inside a checkpoint
// recomputation, the handle otherwise — and returns x W^T + b; FrozenLinearInputGradient returns
// dL/dx = grad_y W from that record, a new tensor the caller may add to in place.
// REQUIRES: as FrozenLinear; FrozenLinearInputGradient after FrozenLinearForward on the same ctx.
at::Tensor FrozenLinearForward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                               std::shared_ptr<const FrozenWeight> weight, const at::Tensor& bias);
at::Tensor FrozenLinearInputGradient(torch::autograd::AutogradContext* ctx,
                                     const at::Tensor& grad_y);

}  // namespace hpsearch::core
