#include "kernels/nf4_dequant.cuh"

#include <cuda_bf16.h>

#include <algorithm>

namespace hpsearch::kernels {
namespace {

constexpr int kBlockSize = 64;
constexpr int kAbsmaxGroup = 256;
constexpr int kThreads = 256;
constexpr int64_t kMaxGrid = int64_t{1} << 20;

// Same float32 constants as Nf4CodeTable() in nf4_reference.cc; the CUDA test compares the two
// paths.
__constant__ float kNf4Code[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

struct StoreBf16 {
  __nv_bfloat16* out;
  __device__ void operator()(int64_t i, float value) const { out[i] = __float2bfloat16_rn(value); }
};

struct StoreFloat {
  float* out;
  __device__ void operator()(int64_t i, float value) const { out[i] = value; }
};

// One thread per packed byte (two values); a byte never straddles two 64-value blocks.
template <typename Store>
__global__ void DequantizeNf4Kernel(const uint8_t* __restrict__ packed,
                                    const uint8_t* __restrict__ absmax_codes,
                                    const float* __restrict__ absmax_scales,
                                    const float* __restrict__ absmax_code_map, float absmax_offset,
                                    int64_t numel, Store store) {
  const int64_t num_bytes = (numel + 1) / 2;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t byte_index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       byte_index < num_bytes; byte_index += stride) {
    const int64_t first = 2 * byte_index;
    const int64_t block = first / kBlockSize;
    // _rn intrinsics are never contracted into an FMA: the reference rounds the product and the sum
    // apart.
    const float scaled = __fmul_rn(__ldg(&absmax_code_map[__ldg(&absmax_codes[block])]),
                                   __ldg(&absmax_scales[block / kAbsmaxGroup]));
    const float absmax = __fadd_rn(scaled, absmax_offset);
    const uint8_t byte = __ldg(&packed[byte_index]);
    store(first, __fmul_rn(kNf4Code[byte >> 4], absmax));
    if (first + 1 < numel) store(first + 1, __fmul_rn(kNf4Code[byte & 0x0F], absmax));
  }
}

bool ValidTensor(const Nf4DeviceTensor& tensor, const void* out) {
  if (tensor.numel < 0 || tensor.block_size != kBlockSize) return false;
  if (tensor.numel == 0) return true;
  return tensor.packed != nullptr && tensor.absmax_codes != nullptr &&
         tensor.absmax_scales != nullptr && tensor.absmax_code_map != nullptr && out != nullptr;
}

template <typename Store>
cudaError_t Launch(const Nf4DeviceTensor& tensor, Store store, cudaStream_t stream) {
  const int64_t num_bytes = (tensor.numel + 1) / 2;
  const int64_t grid = std::min<int64_t>((num_bytes + kThreads - 1) / kThreads, kMaxGrid);
  DequantizeNf4Kernel<Store><<<static_cast<unsigned int>(grid), kThreads, 0, stream>>>(
      tensor.packed, tensor.absmax_codes, tensor.absmax_scales, tensor.absmax_code_map,
      tensor.absmax_offset, tensor.numel, store);
  return cudaGetLastError();
}

}  // namespace

cudaError_t DequantizeNf4ToBf16(const Nf4DeviceTensor& tensor, uint16_t* out, cudaStream_t stream) {
  if (!ValidTensor(tensor, out) || reinterpret_cast<uintptr_t>(out) % alignof(__nv_bfloat16) != 0) {
    return cudaErrorInvalidValue;
  }
  if (tensor.numel == 0) return cudaSuccess;
  return Launch(tensor, StoreBf16{reinterpret_cast<__nv_bfloat16*>(out)}, stream);
}

cudaError_t DequantizeNf4ToFloat(const Nf4DeviceTensor& tensor, float* out, cudaStream_t stream) {
  if (!ValidTensor(tensor, out) || reinterpret_cast<uintptr_t>(out) % alignof(float) != 0) {
    return cudaErrorInvalidValue;
  }
  if (tensor.numel == 0) return cudaSuccess;
  return Launch(tensor, StoreFloat{out}, stream);
}

}  // namespace hpsearch::kernels
