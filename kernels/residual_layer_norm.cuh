// The fused residual LayerNorm on the GPU: residual + dropout(branch), then LayerNorm to bf16, in
// one kernel, and its backward in one kernel. What they compute, the null-pointer options, the
// aliasing allowed and the numerics are the contract in kernels/residual_layer_norm_args.h (shared
// with the CPU reference, kernels/residual_layer_norm_reference.h, which the CUDA test compares
// against).
//
// Raw device pointers and a stream, no LibTorch (core/residual_layer_norm.cc holds the tensor
// glue). One thread block per row (a grid-stride loop over rows), float32 accumulation; any width
// >= 1. Launchers are asynchronous on `stream` and thread-safe; they do not synchronise. They
// return cudaErrorInvalidValue without launching when a precondition of residual_layer_norm_args.h
// fails (ResidualLayerNorm*ArgsProblem says which), cudaSuccess without launching when rows == 0,
// and otherwise cudaGetLastError() (errors raised while the kernel runs surface at the caller's
// next synchronisation).
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/residual_layer_norm_args.h"

namespace hpsearch::kernels {

cudaError_t ResidualLayerNormForward(const ResidualLayerNormForwardArgs& args, cudaStream_t stream);

cudaError_t ResidualLayerNormBackward(const ResidualLayerNormBackwardArgs& args,
                                      cudaStream_t stream);

}  // namespace hpsearch::kernels
