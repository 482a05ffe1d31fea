#include "kernels/nf4_dequant.cuh"

#include <cuda_bf16.h>

#include <algorithm>

namespace hpsearch::kernels {
namespace {

constexpr int kBlockSize = 64;
constexpr int kAbsmaxGroup = 256;
constexpr int kThreads = 256;
static_assert(kThreads >= 16, "the first 16 threads of a block fill its NF4 table");
constexpr int64_t kMaxGrid = int64_t{1} << 20;

// Entry `code` (0..15) of the NF4 table: the same float32 constants as Nf4CodeTable() in
// nf4_reference.cc (the CUDA test compares the two paths). A select chain on a register, so the
// table lives in no memory at all; each block calls it once per entry to fill its shared copy.
__device__ __forceinline__ float Nf4Code(unsigned code) {
  switch (code) {
    case 0:
      return -1.0f;
    case 1:
      return -0.6961928009986877f;
    case 2:
      return -0.5250730514526367f;
    case 3:
      return -0.39491748809814453f;
    case 4:
      return -0.28444138169288635f;
    case 5:
      return -0.18477343022823334f;
    case 6:
      return -0.09105003625154495f;
    case 7:
      return 0.0f;
    case 8:
      return 0.07958029955625534f;
    case 9:
      return 0.16093020141124725f;
    case 10:
      return 0.24611230194568634f;
    case 11:
      return 0.33791524171829224f;
    case 12:
      return 0.44070982933044434f;
    case 13:
      return 0.5626170039176941f;
    case 14:
      return 0.7229568362236023f;
    default:
      return 1.0f;
  }
}

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
  // The table in shared memory, not __constant__: constant memory serves one address per cycle, so
  // a warp looking up 32 data-dependent codes is serialised up to 16 ways. Shared memory has 32
  // banks and the 16 floats sit in 16 of them, so any pattern of codes is one conflict-free read
  // (equal codes broadcast).
  __shared__ float code_table[16];
  if (threadIdx.x < 16) code_table[threadIdx.x] = Nf4Code(threadIdx.x);
  __syncthreads();
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
    store(first, __fmul_rn(code_table[byte >> 4], absmax));
    if (first + 1 < numel) store(first + 1, __fmul_rn(code_table[byte & 0x0F], absmax));
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
