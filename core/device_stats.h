// What a benchmark or a worker needs to know about the device it computes on, behind one CPU-safe
// interface: its name, a synchronisation point for timing, and the CUDA caching allocator's peak
// memory. The CUDA side needs LibTorch's CUDA headers, so it is compiled only in a build against a
// CUDA LibTorch (HPSEARCH_TORCH_CUDA); elsewhere a CUDA device is refused with kUnsupported and the
// CPU answers "no figures" (has_memory_stats false).
//
// Thread-safety: as the LibTorch calls underneath (all safe to call concurrently).
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>

namespace hpsearch::core {

struct DeviceMemoryStats {
  bool has_memory_stats = false;     // false on the CPU: the figures below are then 0
  int64_t allocated_bytes = 0;       // tensors alive now
  int64_t peak_allocated_bytes = 0;  // most ever alive at once since the last reset
  int64_t reserved_bytes = 0;        // held by the caching allocator now
  int64_t peak_reserved_bytes = 0;
};

// "cpu", or the GPU's name as the driver reports it, e.g. "NVIDIA H200".
std::string DeviceName(const c10::Device& device);

// Waits until all work queued on the device has finished (no-op on the CPU).
void SynchronizeDevice(const c10::Device& device);

// The caching allocator's figures for the device (all 0 on the CPU).
DeviceMemoryStats GetDeviceMemoryStats(const c10::Device& device);

// Starts a new peak-measurement window (no-op on the CPU).
void ResetPeakMemoryStats(const c10::Device& device);

// Whether this build can launch hpsearch's CUDA kernels from LibTorch (HPSEARCH_TORCH_CUDA).
bool BuiltWithTorchCuda();

}  // namespace hpsearch::core
