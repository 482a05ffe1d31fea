// NF4 dequantisation on the GPU: packed 4-bit codes with double-quantised absmaxes (the layout
// documented in kernels/nf4_reference.h) to bfloat16 or float32. Raw device pointers and a stream
// in, no LibTorch, so this header compiles against any LibTorch (core/nf4.cc holds the tensor
// glue). Results are bit-identical to DequantizeNf4TensorToBf16 / DequantizeNf4TensorToFloat of the
// CPU reference: the absmax is rebuilt as map[q] * scale + offset and the value as code * absmax
// with separately rounded float operations, and bf16 is rounded to nearest even.
//
// Launchers are asynchronous on `stream` and thread-safe; they do not synchronise. They return
// cudaErrorInvalidValue, without launching, when a precondition fails, and otherwise the launch
// status from cudaGetLastError() (errors raised while the kernel runs surface at the caller's next
// synchronisation).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/nf4_reference.h"  // kNf4MaxBatch

namespace hpsearch::kernels {

// Device buffers of one double-quantised NF4 tensor. All pointers are device memory the caller owns
// and keeps alive until the work on the stream has finished.
struct Nf4DeviceTensor {
  const uint8_t* packed = nullptr;         // ceil(numel / 2) bytes, high nibble first
  const uint8_t* absmax_codes = nullptr;   // one 8-bit code per 64-value block
  const float* absmax_scales = nullptr;    // one float per 256 blocks
  const float* absmax_code_map = nullptr;  // 256 floats, normally DynamicSignedMap()
  float absmax_offset = 0.0f;              // mean of the absmaxes, added after scaling
  int64_t numel = 0;                       // values to produce
  int block_size = 64;                     // must be kNf4BlockSize (64)
};

// Writes numel bfloat16 values (raw bits, as __nv_bfloat16 stores them) to out.
// REQUIRES: numel >= 0; block_size == 64; every pointer non-null when numel > 0; out is 2-byte
// aligned.
cudaError_t DequantizeNf4ToBf16(const Nf4DeviceTensor& tensor, uint16_t* out, cudaStream_t stream);

// Writes numel float32 values to out. REQUIRES: as DequantizeNf4ToBf16, out 4-byte aligned.
cudaError_t DequantizeNf4ToFloat(const Nf4DeviceTensor& tensor, float* out, cudaStream_t stream);

// Batched: dequantises tensors[i] into outs[i] for i < count in ONE kernel launch (a GPT-2 block's
// four frozen base weights: one launch instead of four). One grid covers every tensor's thread
// blocks; each tensor keeps its own sizes and absmax metadata, so any mix of sizes works, and each
// output is bit-identical to what DequantizeNf4ToBf16 / DequantizeNf4ToFloat writes for that tensor
// alone. The descriptors are copied into the kernel's parameters: the host arrays may be reused as
// soon as the call returns (the device buffers they point to may not). Tensors with numel 0 are
// skipped; when all are empty nothing is launched.
// REQUIRES: 0 <= count <= kNf4MaxBatch (kernels/nf4_reference.h); tensors and outs non-null when
// count > 0; every tensor and its out as the single-tensor launcher requires; outputs do not
// overlap.
cudaError_t DequantizeNf4BatchToBf16(const Nf4DeviceTensor* tensors, uint16_t* const* outs,
                                     int count, cudaStream_t stream);
cudaError_t DequantizeNf4BatchToFloat(const Nf4DeviceTensor* tensors, float* const* outs, int count,
                                      cudaStream_t stream);

}  // namespace hpsearch::kernels
