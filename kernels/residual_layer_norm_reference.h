// The CPU reference of the fused residual LayerNorm (kernels/residual_layer_norm.cuh), exactly per
// the contract in kernels/residual_layer_norm_args.h, which the CUDA kernels are tested against.
// Plain C++17: no LibTorch, no CUDA. Pure functions of their arguments (the dropout mask comes from
// kernels/philox.h), thread-safe. Every pointer in the args is host memory.
//
// Where the contract leaves the kernel freedom (the order of the row reductions), the reference
// accumulates in double and rounds each mean once to float: its mean, rstd and backward
// coefficients are the correctly rounded float values of the contract's formulas over the float
// inputs, so the kernel's distance from it is the kernel's own float32 accumulation error.
//
// Errors: arguments that break a precondition of residual_layer_norm_args.h throw
// std::invalid_argument with ResidualLayerNorm*ArgsProblem's message; nothing is written then.
#pragma once

#include "kernels/residual_layer_norm_args.h"

namespace hpsearch::kernels {

void ResidualLayerNormForwardReference(const ResidualLayerNormForwardArgs& args);

void ResidualLayerNormBackwardReference(const ResidualLayerNormBackwardArgs& args);

}  // namespace hpsearch::kernels
