#include "core/device_stats.h"

#include "core/error.h"

#if defined(HPSEARCH_TORCH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>
#endif

namespace hpsearch::core {
namespace {

#if defined(HPSEARCH_TORCH_CUDA)
c10::DeviceIndex IndexOf(const c10::Device& device) {
  return device.has_index() ? device.index() : c10::cuda::current_device();
}
#endif

void RequireSupported(const c10::Device& device) {
  if (device.is_cpu()) return;
#if defined(HPSEARCH_TORCH_CUDA)
  if (device.is_cuda()) return;
#endif
  Fail(ErrorCode::kUnsupported,
       "device statistics for " + device.str() + " need hpsearch built against a CUDA LibTorch");
}

}  // namespace

bool BuiltWithTorchCuda() {
#if defined(HPSEARCH_TORCH_CUDA)
  return true;
#else
  return false;
#endif
}

std::string DeviceName(const c10::Device& device) {
  RequireSupported(device);
  if (device.is_cpu()) return "cpu";
#if defined(HPSEARCH_TORCH_CUDA)
  cudaDeviceProp properties{};
  if (cudaGetDeviceProperties(&properties, IndexOf(device)) != cudaSuccess) return "cuda (unknown)";
  return properties.name;
#else
  return "";
#endif
}

void SynchronizeDevice(const c10::Device& device) {
  RequireSupported(device);
#if defined(HPSEARCH_TORCH_CUDA)
  if (device.is_cuda()) {
    const cudaError_t status = cudaDeviceSynchronize();
    if (status != cudaSuccess) {
      Fail(ErrorCode::kInternal,
           std::string("cudaDeviceSynchronize failed: ") + cudaGetErrorString(status));
    }
  }
#endif
}

DeviceMemoryStats GetDeviceMemoryStats(const c10::Device& device) {
  RequireSupported(device);
  DeviceMemoryStats out;
#if defined(HPSEARCH_TORCH_CUDA)
  if (device.is_cuda()) {
    // Index 0 of each stat array is the aggregate over pool kinds (StatType::AGGREGATE).
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(IndexOf(device));
    out.has_memory_stats = true;
    out.allocated_bytes = stats.allocated_bytes[0].current;
    out.peak_allocated_bytes = stats.allocated_bytes[0].peak;
    out.reserved_bytes = stats.reserved_bytes[0].current;
    out.peak_reserved_bytes = stats.reserved_bytes[0].peak;
  }
#endif
  return out;
}

void ResetPeakMemoryStats(const c10::Device& device) {
  RequireSupported(device);
#if defined(HPSEARCH_TORCH_CUDA)
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(IndexOf(device));
#endif
}

}  // namespace hpsearch::core
