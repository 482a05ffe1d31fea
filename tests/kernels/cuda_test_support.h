// Helpers for the CUDA-vs-reference tests in tests/kernels: skipping without a device, checking a
// CUDA status, and owning a device buffer. Compiled by the host compiler (no kernels here).
#pragma once

#include <cuda_runtime_api.h>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "testing/testing.h"

namespace hpsearch::kernels::testing_cuda {

// Skips the current test case when no CUDA device can be used.
inline void SkipWithoutDevice() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    testing::Skip(std::string("no CUDA device: ") + cudaGetErrorString(status));
  }
  if (count == 0) testing::Skip("no CUDA device");
}

#define HPSEARCH_REQUIRE_CUDA(expr) REQUIRE(std::string(cudaGetErrorString(expr)) == "no error")

// Owns one device allocation of `count` T.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count_ > 0) {
      HPSEARCH_REQUIRE_CUDA(cudaMalloc(reinterpret_cast<void**>(&data_), count_ * sizeof(T)));
    }
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    if (count_ > 0) {
      HPSEARCH_REQUIRE_CUDA(
          cudaMemcpy(data_, host.data(), count_ * sizeof(T), cudaMemcpyHostToDevice));
    }
  }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return data_; }
  std::vector<T> ToHost() const {
    std::vector<T> host(count_);
    if (count_ > 0) {
      HPSEARCH_REQUIRE_CUDA(
          cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost));
    }
    return host;
  }

 private:
  size_t count_;
  T* data_ = nullptr;
};

}  // namespace hpsearch::kernels::testing_cuda
