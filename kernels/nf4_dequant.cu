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

// The public interface passes bfloat16 as its raw bits (uint16_t: same size and alignment).
struct StoreBf16 {
  uint16_t* out;
  __device__ void operator()(int64_t i, float value) const {
    reinterpret_cast<__nv_bfloat16*>(out)[i] = __float2bfloat16_rn(value);
  }
};

struct StoreFloat {
  float* out;
  __device__ void operator()(int64_t i, float value) const { out[i] = value; }
};

// Fills this thread block's shared copy of the NF4 table. The table lives in shared memory, not
// __constant__: constant memory serves one address per cycle, so a warp looking up 32
// data-dependent codes is serialised up to 16 ways. Shared memory has 32 banks and the 16 floats
// sit in 16 of them, so any pattern of codes is one conflict-free read (equal codes broadcast).
__device__ __forceinline__ void FillCodeTable(float* code_table) {
  if (threadIdx.x < 16) code_table[threadIdx.x] = Nf4Code(threadIdx.x);
  __syncthreads();
}

// Dequantises the packed bytes first_byte, first_byte + stride, ... of one tensor: one thread per
// packed byte (two values); a byte never straddles two 64-value blocks. The single and the batched
// kernel both run exactly this, which is what makes their outputs bit-identical.
template <typename Store>
__device__ __forceinline__ void DequantizeBytes(const Nf4DeviceTensor& tensor,
                                                const float* code_table, int64_t first_byte,
                                                int64_t stride, Store store) {
  const int64_t numel = tensor.numel;
  const int64_t num_bytes = (numel + 1) / 2;
  for (int64_t byte_index = first_byte; byte_index < num_bytes; byte_index += stride) {
    const int64_t first = 2 * byte_index;
    const int64_t block = first / kBlockSize;
    // _rn intrinsics are never contracted into an FMA: the reference rounds the product and the sum
    // apart.
    const float scaled =
        __fmul_rn(__ldg(&tensor.absmax_code_map[__ldg(&tensor.absmax_codes[block])]),
                  __ldg(&tensor.absmax_scales[block / kAbsmaxGroup]));
    const float absmax = __fadd_rn(scaled, tensor.absmax_offset);
    const uint8_t byte = __ldg(&tensor.packed[byte_index]);
    store(first, __fmul_rn(code_table[byte >> 4], absmax));
    if (first + 1 < numel) store(first + 1, __fmul_rn(code_table[byte & 0x0F], absmax));
  }
}

template <typename Store>
__global__ void DequantizeNf4Kernel(const Nf4DeviceTensor tensor, Store store) {
  __shared__ float code_table[16];
  FillCodeTable(code_table);
  DequantizeBytes(tensor, code_table, static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x,
                  static_cast<int64_t>(gridDim.x) * blockDim.x, store);
}

// Thread blocks of one grid for one tensor: enough for one byte per thread, capped (the threads
// then stride) so that kNf4MaxBatch tensors never exceed the grid's x limit.
int64_t GridFor(const Nf4DeviceTensor& tensor) {
  const int64_t num_bytes = (tensor.numel + 1) / 2;
  return std::min<int64_t>((num_bytes + kThreads - 1) / kThreads, kMaxGrid);
}

// The batched kernel's parameters, passed by value (a few hundred bytes, well inside the 4 KiB
// parameter space). Tensor i owns the thread blocks [block_begin[i], block_begin[i + 1]).
template <typename Out>
struct Nf4Batch {
  Nf4DeviceTensor tensors[kNf4MaxBatch];
  Out* outs[kNf4MaxBatch];
  int64_t block_begin[kNf4MaxBatch + 1];
  int count;
};

template <typename Out, typename Store>
__global__ void DequantizeNf4BatchKernel(const Nf4Batch<Out> batch) {
  __shared__ float code_table[16];
  FillCodeTable(code_table);
  // Which tensor this thread block serves: a scan over at most kNf4MaxBatch offsets, the same for
  // every thread of the block (no divergence).
  const int64_t block = blockIdx.x;
  int i = 0;
  while (i + 1 < batch.count && block >= batch.block_begin[i + 1]) ++i;
  const int64_t local_block = block - batch.block_begin[i];
  const int64_t blocks = batch.block_begin[i + 1] - batch.block_begin[i];
  DequantizeBytes(batch.tensors[i], code_table, local_block * blockDim.x + threadIdx.x,
                  blocks * blockDim.x, Store{batch.outs[i]});
}

bool ValidTensor(const Nf4DeviceTensor& tensor, const void* out) {
  if (tensor.numel < 0 || tensor.block_size != kBlockSize) return false;
  if (tensor.numel == 0) return true;
  return tensor.packed != nullptr && tensor.absmax_codes != nullptr &&
         tensor.absmax_scales != nullptr && tensor.absmax_code_map != nullptr && out != nullptr;
}

template <typename Store>
cudaError_t Launch(const Nf4DeviceTensor& tensor, Store store, cudaStream_t stream) {
  DequantizeNf4Kernel<Store>
      <<<static_cast<unsigned int>(GridFor(tensor)), kThreads, 0, stream>>>(tensor, store);
  return cudaGetLastError();
}

template <typename Out, typename Store>
cudaError_t LaunchBatch(const Nf4DeviceTensor* tensors, Out* const* outs, int count,
                        cudaStream_t stream) {
  if (count < 0 || count > kNf4MaxBatch || (count > 0 && (tensors == nullptr || outs == nullptr))) {
    return cudaErrorInvalidValue;
  }
  Nf4Batch<Out> batch{};
  batch.block_begin[0] = 0;
  for (int i = 0; i < count; ++i) {
    if (!ValidTensor(tensors[i], outs[i]) ||
        reinterpret_cast<uintptr_t>(outs[i]) % alignof(Out) != 0) {
      return cudaErrorInvalidValue;
    }
    // Empty tensors are left out of the grid (they own no thread block).
    if (tensors[i].numel == 0) continue;
    batch.tensors[batch.count] = tensors[i];
    batch.outs[batch.count] = outs[i];
    batch.block_begin[batch.count + 1] = batch.block_begin[batch.count] + GridFor(tensors[i]);
    ++batch.count;
  }
  if (batch.count == 0) return cudaSuccess;
  DequantizeNf4BatchKernel<Out, Store>
      <<<static_cast<unsigned int>(batch.block_begin[batch.count]), kThreads, 0, stream>>>(batch);
  return cudaGetLastError();
}

}  // namespace

cudaError_t DequantizeNf4ToBf16(const Nf4DeviceTensor& tensor, uint16_t* out, cudaStream_t stream) {
  if (!ValidTensor(tensor, out) || reinterpret_cast<uintptr_t>(out) % alignof(__nv_bfloat16) != 0) {
    return cudaErrorInvalidValue;
  }
  if (tensor.numel == 0) return cudaSuccess;
  return Launch(tensor, StoreBf16{out}, stream);
}

cudaError_t DequantizeNf4ToFloat(const Nf4DeviceTensor& tensor, float* out, cudaStream_t stream) {
  if (!ValidTensor(tensor, out) || reinterpret_cast<uintptr_t>(out) % alignof(float) != 0) {
    return cudaErrorInvalidValue;
  }
  if (tensor.numel == 0) return cudaSuccess;
  return Launch(tensor, StoreFloat{out}, stream);
}

cudaError_t DequantizeNf4BatchToBf16(const Nf4DeviceTensor* tensors, uint16_t* const* outs,
                                     int count, cudaStream_t stream) {
  return LaunchBatch<uint16_t, StoreBf16>(tensors, outs, count, stream);
}

cudaError_t DequantizeNf4BatchToFloat(const Nf4DeviceTensor* tensors, float* const* outs, int count,
                                      cudaStream_t stream) {
  return LaunchBatch<float, StoreFloat>(tensors, outs, count, stream);
}

}  // namespace hpsearch::kernels
