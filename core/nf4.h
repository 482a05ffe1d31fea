// NF4 weights for QLoRA: a frozen [out, in] linear weight stored as 4-bit NormalFloat codes with
// (optionally double-quantised) per-64-value absmaxes, in the bitsandbytes-compatible layout
// documented in kernels/nf4_reference.h. This is the LibTorch face of that reference (and, in a
// build against a CUDA LibTorch, of kernels/nf4_dequant.cuh).
//
// Nf4Weight owns its tensors (shared, as torch::Tensor is); it is a value: copying shares the
// buffers, and nothing here mutates them, so concurrent readers are safe. Functions are
// thread-safe. Errors throw core::Error: kInvalidArgument for a malformed weight or Nf4Weight,
// kUnsupported for a block size, dtype or device this build does not handle.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace hpsearch::core {

struct Nf4Options {
  // Quantise the absmaxes too (8-bit codes per block, one float per 256 blocks): 4.127 instead
  // of 4.5 bits per weight for a relative absmax error under 1%, as QLoRA does.
  bool double_quant = true;
  // Values per NF4 block. Only 64 is supported (bitsandbytes' QLoRA default); anything else is
  // refused.
  int block_size = 64;
};

// A quantised weight. Tensors live on one device (CPU after QuantizeWeight; see MoveNf4Weight).
struct Nf4Weight {
  std::vector<int64_t> shape;  // original shape, [out, in]
  int64_t numel = 0;           // out * in
  int block_size = 64;         // values per NF4 block
  bool double_quant = true;    // which absmax fields are defined
  torch::Tensor packed;  // uint8 [ceil(numel / 2)], two codes per byte, first in the high nibble
  torch::Tensor absmax;  // float32 [blocks]; defined only without double quantisation
  torch::Tensor absmax_codes;   // uint8 [blocks]; index into the dynamic map (double quantisation)
  torch::Tensor absmax_scales;  // float32 [ceil(blocks / 256)] (double quantisation)
  float absmax_offset = 0.0f;   // mean of the absmaxes (double quantisation)

  int64_t num_blocks() const { return (numel + block_size - 1) / block_size; }
  // Bytes held by packed codes and absmax storage (the dynamic map, a process-wide constant,
  // excluded).
  int64_t StorageBytes() const;
  // 8 * StorageBytes() / numel; 4.127 for large tensors with double quantisation, 4.5 without.
  double BitsPerWeight() const;
};

// Quantises a 2-D [out, in] weight (float32, bfloat16 or float16, any device; values are read as
// float32, which is exact for all three) on the CPU. Bit-identical to kernels::QuantizeNf4Tensor.
// REQUIRES: weight.dim() == 2; all values finite; options.block_size == 64.
Nf4Weight QuantizeWeight(const torch::Tensor& weight, const Nf4Options& options = {});

// The dequantised [out, in] weight in dtype (float32, bfloat16 or float16) on the weight's device.
// On the CPU through the reference; on CUDA through the kernel, available only when hpsearch was
// built against a CUDA LibTorch (HPSEARCH_TORCH_CUDA), otherwise kUnsupported. bfloat16 values are
// the reference's round-to-nearest-even bits; float16 rounds the same float values to nearest even.
torch::Tensor DequantizeWeight(const Nf4Weight& weight, torch::ScalarType dtype);

// Several weights at once, in dtype: element i holds the values and bits DequantizeWeight(
// *weights[i], dtype) returns. On CUDA one kernel launch per kernels::kNf4MaxBatch (8) weights
// instead of one per weight (a GPT-2 block's four frozen bases: one launch); on the CPU the
// reference per weight, counted as the one launch CUDA makes (core/kernel_count.h). The outputs
// are all alive on return: they coexist in memory.
// REQUIRES: every weight non-null, double-quantised (the batched kernel reads nothing else) and on
// the same device; dtype is bfloat16 or float32 (the kernel's outputs) — otherwise core::Error
// (kInvalidArgument, kUnsupported).
std::vector<torch::Tensor> DequantizeWeights(const std::vector<const Nf4Weight*>& weights,
                                             torch::ScalarType dtype);

// A copy of weight with every tensor on device (e.g. the training GPU). Codes are unchanged.
Nf4Weight MoveNf4Weight(const Nf4Weight& weight, const torch::Device& device);

}  // namespace hpsearch::core
