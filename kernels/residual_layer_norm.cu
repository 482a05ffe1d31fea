#include "kernels/residual_layer_norm.cuh"

#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "kernels/philox.h"

namespace hpsearch::kernels {
namespace {

constexpr int kWarp = 32;
constexpr int kMaxThreads = 1024;
constexpr int64_t kMaxGrid = int64_t{1} << 20;

// About 8 values per thread in whole warps: a 64-wide row gets one warp, 1024 gets 128 threads,
// 4096 gets 512. The row is re-read from L1/L2 between passes rather than held in registers, so any
// width works with the same code.
int ThreadsFor(int64_t width) {
  const int64_t warps = (width + 8 * kWarp - 1) / (8 * kWarp);
  return static_cast<int>(std::min<int64_t>(warps * kWarp, kMaxThreads));
}

__device__ __forceinline__ float Bf16BitsToFloat(uint16_t bits) {
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}

__device__ __forceinline__ uint16_t FloatToBf16Bits(float value) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(value));
}

// The block-wide float sum of every thread's `value`, returned to every thread. blockDim.x is a
// multiple of 32; `scratch` holds 32 floats. Call it from every thread of the block.
__device__ float BlockSum(float value, float* scratch) {
  for (int delta = kWarp / 2; delta > 0; delta >>= 1) {
    value += __shfl_xor_sync(0xFFFFFFFFu, value, delta);
  }
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  __syncthreads();  // the previous call's readers are done with scratch
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  value = lane < static_cast<int>(blockDim.x / kWarp) ? scratch[lane] : 0.0f;
  for (int delta = kWarp / 2; delta > 0; delta >>= 1) {
    value += __shfl_xor_sync(0xFFFFFFFFu, value, delta);
  }
  return value;
}

// One block per row (grid-stride over rows). Products and sums that the contract rounds apart use
// the _rn intrinsics, which nvcc never contracts into an FMA, so sum_out and keep_out equal the
// reference's bits and norm differs only through mean and rstd.
__global__ void ResidualLayerNormForwardKernel(ResidualLayerNormForwardArgs a) {
  __shared__ float scratch[kWarp];
  const float scale = __fdiv_rn(1.0f, __fsub_rn(1.0f, a.dropout_p));
  const bool draws = a.dropout_p > 0.0f;  // p = 0 keeps every uniform in [0, 1): skip Philox
  const float width = static_cast<float>(a.width);
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const int64_t begin = row * a.width;
    const int64_t end = begin + a.width;
    float local = 0.0f;
    // sum_out is written here and re-read by other threads below (after BlockSum's barrier), so it
    // is read with plain loads, never through the read-only cache.
    const float* sum = a.residual;
    if (a.branch != nullptr) {
      sum = a.sum_out;
      // Thread by thread over groups of 4 consecutive global indices: one Philox call per group.
      for (int64_t group = begin / 4 + threadIdx.x; group * 4 < end; group += blockDim.x) {
        PhiloxBlock bits{};
        if (draws) bits = DropoutDrawBlock(a.seed, a.offset, static_cast<uint64_t>(group));
#pragma unroll
        for (int lane = 0; lane < 4; ++lane) {
          const int64_t i = group * 4 + lane;
          if (i < begin || i >= end) continue;
          const bool keep = !draws || DropoutKeeps(UniformFromBits(bits.v[lane]), a.dropout_p);
          const float dropped = keep ? __fmul_rn(Bf16BitsToFloat(a.branch[i]), scale) : 0.0f;
          const float value = __fadd_rn(a.residual[i], dropped);
          a.sum_out[i] = value;
          if (a.keep_out != nullptr) a.keep_out[i] = keep ? 1 : 0;
          local += value;
        }
      }
    } else if (a.gamma != nullptr) {
      for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) local += a.residual[i];
    }
    if (a.gamma == nullptr) continue;  // uniform across the block: no barrier is skipped by some
    const float mean = __fdiv_rn(BlockSum(local, scratch), width);
    local = 0.0f;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const float centred = __fsub_rn(sum[i], mean);
      local = __fmaf_rn(centred, centred, local);
    }
    const float var = __fdiv_rn(BlockSum(local, scratch), width);
    const float rstd = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(var, a.eps)));
    for (int64_t col = threadIdx.x; col < a.width; col += blockDim.x) {
      const int64_t i = begin + col;
      const float xhat = __fmul_rn(__fsub_rn(sum[i], mean), rstd);
      a.norm_out[i] = FloatToBf16Bits(__fadd_rn(__fmul_rn(xhat, a.gamma[col]), a.beta[col]));
    }
    if (a.mean_out != nullptr && threadIdx.x == 0) {
      a.mean_out[row] = mean;
      a.rstd_out[row] = rstd;
    }
  }
}

// The LayerNorm input gradient rstd * ((gg - c1) - xhat * c2), with c1 and c2 the row means of gg
// and gg * xhat: two block sums, then one elementwise pass that also writes grad_branch.
__global__ void ResidualLayerNormBackwardKernel(ResidualLayerNormBackwardArgs a) {
  __shared__ float scratch[kWarp];
  const float scale = __fdiv_rn(1.0f, __fsub_rn(1.0f, a.dropout_p));
  const float width = static_cast<float>(a.width);
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const int64_t begin = row * a.width;
    float mean = 0.0f;
    float rstd = 0.0f;
    float c1 = 0.0f;
    float c2 = 0.0f;
    if (a.grad_norm != nullptr) {  // uniform across the block
      mean = a.mean[row];
      rstd = a.rstd[row];
      float sum_gg = 0.0f;
      float sum_gg_xhat = 0.0f;
      for (int64_t col = threadIdx.x; col < a.width; col += blockDim.x) {
        const int64_t i = begin + col;
        const float gg = __fmul_rn(Bf16BitsToFloat(a.grad_norm[i]), a.gamma[col]);
        const float xhat = __fmul_rn(__fsub_rn(a.sum[i], mean), rstd);
        sum_gg += gg;
        sum_gg_xhat = __fmaf_rn(gg, xhat, sum_gg_xhat);
      }
      c1 = __fdiv_rn(BlockSum(sum_gg, scratch), width);
      c2 = __fdiv_rn(BlockSum(sum_gg_xhat, scratch), width);
    }
    for (int64_t col = threadIdx.x; col < a.width; col += blockDim.x) {
      const int64_t i = begin + col;
      // grad_sum may alias grad_residual: each index is read before the same thread writes it.
      const float incoming = a.grad_sum != nullptr ? a.grad_sum[i] : 0.0f;
      float through_norm = 0.0f;
      if (a.grad_norm != nullptr) {
        const float gg = __fmul_rn(Bf16BitsToFloat(a.grad_norm[i]), a.gamma[col]);
        const float xhat = __fmul_rn(__fsub_rn(a.sum[i], mean), rstd);
        through_norm = __fmul_rn(rstd, __fsub_rn(__fsub_rn(gg, c1), __fmul_rn(xhat, c2)));
      }
      const float grad = __fadd_rn(incoming, through_norm);
      a.grad_residual[i] = grad;
      if (a.grad_branch != nullptr) {
        const bool keep = a.keep == nullptr || a.keep[i] != 0;
        a.grad_branch[i] = FloatToBf16Bits(keep ? __fmul_rn(grad, scale) : 0.0f);
      }
    }
  }
}

unsigned int GridFor(int64_t rows) { return static_cast<unsigned int>(std::min(rows, kMaxGrid)); }

}  // namespace

cudaError_t ResidualLayerNormForward(const ResidualLayerNormForwardArgs& args,
                                     cudaStream_t stream) {
  if (!ResidualLayerNormForwardArgsProblem(args).empty()) return cudaErrorInvalidValue;
  if (args.rows == 0) return cudaSuccess;
  ResidualLayerNormForwardKernel<<<GridFor(args.rows), ThreadsFor(args.width), 0, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t ResidualLayerNormBackward(const ResidualLayerNormBackwardArgs& args,
                                      cudaStream_t stream) {
  if (!ResidualLayerNormBackwardArgsProblem(args).empty()) return cudaErrorInvalidValue;
  if (args.rows == 0) return cudaSuccess;
  ResidualLayerNormBackwardKernel<<<GridFor(args.rows), ThreadsFor(args.width), 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace hpsearch::kernels
