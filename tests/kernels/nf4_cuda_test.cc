// The CUDA NF4 dequantisation kernel against the CPU reference, bit for bit. Built only with a CUDA
// compiler; skips at run time on machines without a usable CUDA device.
#include <cuda_runtime_api.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/nf4_dequant.cuh"
#include "kernels/nf4_reference.h"
#include "testing/testing.h"
#include "tests/kernels/cuda_test_support.h"

namespace hpsearch::kernels {
namespace {

using testing_cuda::DeviceBuffer;
using testing_cuda::SkipWithoutDevice;

std::vector<float> RandomNormal(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& v : values) v = normal(rng);
  return values;
}

// One quantised tensor's device buffers and the descriptor the launchers read.
struct DeviceNf4 {
  DeviceNf4(Nf4Tensor quantised, const DeviceBuffer<float>& map)
      : tensor(std::move(quantised)),
        packed(tensor.packed),
        codes(tensor.absmax_dq.codes),
        scales(tensor.absmax_dq.scales) {
    device.packed = packed.get();
    device.absmax_codes = codes.get();
    device.absmax_scales = scales.get();
    device.absmax_code_map = map.get();
    device.absmax_offset = tensor.absmax_dq.offset;
    device.numel = tensor.numel;
    device.block_size = tensor.block_size;
  }

  Nf4Tensor tensor;
  DeviceBuffer<uint8_t> packed;
  DeviceBuffer<uint8_t> codes;
  DeviceBuffer<float> scales;
  Nf4DeviceTensor device;
};

// The double-quantised NF4 tensor of seeded normal weights of `shape`.
Nf4Tensor QuantizedNormal(const std::vector<int64_t>& shape, uint32_t seed) {
  return QuantizeNf4Tensor(RandomNormal(shape[0] * shape[1], seed).data(), shape,
                           /*double_quant=*/true);
}

TEST_CASE("CUDA NF4 dequantisation equals the CPU reference bit for bit", "[kernels][nf4][cuda]") {
  SkipWithoutDevice();
  // Shapes: a GPT-2 medium projection slice, a partial last block with an odd numel, more than one
  // group of 256 absmaxes, a tensor with an all-zero block, and a single block (its centred absmax
  // is 0, so its group scale is 0).
  const std::vector<std::vector<int64_t>> shapes = {
      {1024, 96}, {7, 19}, {300, 129}, {3, 64}, {1, 64}};
  const DeviceBuffer<float> map(
      std::vector<float>(DynamicSignedMap().begin(), DynamicSignedMap().end()));
  for (size_t s = 0; s < shapes.size(); ++s) {
    const std::vector<int64_t>& shape = shapes[s];
    CAPTURE(shape[0], shape[1]);
    std::vector<float> weights = RandomNormal(shape[0] * shape[1], static_cast<uint32_t>(s + 1));
    if (s == 3) std::fill(weights.begin() + 64, weights.begin() + 128, 0.0f);
    const DeviceNf4 quantised(QuantizeNf4Tensor(weights.data(), shape, /*double_quant=*/true), map);
    const Nf4Tensor& tensor = quantised.tensor;
    const Nf4DeviceTensor& device = quantised.device;
    DeviceBuffer<uint16_t> out_bf16(static_cast<size_t>(tensor.numel));
    DeviceBuffer<float> out_float(static_cast<size_t>(tensor.numel));

    HPSEARCH_REQUIRE_CUDA(DequantizeNf4ToBf16(device, out_bf16.get(), nullptr));
    HPSEARCH_REQUIRE_CUDA(DequantizeNf4ToFloat(device, out_float.get(), nullptr));
    HPSEARCH_REQUIRE_CUDA(cudaDeviceSynchronize());

    const std::vector<uint16_t> want_bf16 = DequantizeNf4TensorToBf16(tensor);
    const std::vector<float> want_float = DequantizeNf4TensorToFloat(tensor);
    const std::vector<uint16_t> got_bf16 = out_bf16.ToHost();
    const std::vector<float> got_float = out_float.ToHost();
    int64_t bf16_mismatches = 0;
    int64_t float_mismatches = 0;
    for (int64_t i = 0; i < tensor.numel; ++i) {
      bf16_mismatches += got_bf16[i] != want_bf16[i];
      float_mismatches += std::memcmp(&got_float[i], &want_float[i], sizeof(float)) != 0;
    }
    REQUIRE(bf16_mismatches == 0);
    REQUIRE(float_mismatches == 0);
  }
}

TEST_CASE("Batched CUDA NF4 dequantisation equals one launch per tensor bit for bit",
          "[kernels][nf4][cuda]") {
  SkipWithoutDevice();
  // Mixed sizes in one launch: a GPT-2 block's four projections at width 64 ([3C, C], [C, C],
  // [4C, C], [C, 4C]; 192, 64, 256 and 256 NF4 blocks), an odd numel with a partial last block, an
  // empty tensor (it owns no thread block), 605 NF4 blocks (three absmax groups, the last partial)
  // and a single value.
  const std::vector<std::vector<int64_t>> shapes = {{192, 64}, {64, 64}, {256, 64},  {64, 256},
                                                    {7, 19},   {0, 64},  {300, 129}, {1, 1}};
  REQUIRE(shapes.size() == static_cast<size_t>(kNf4MaxBatch));
  const DeviceBuffer<float> map(
      std::vector<float>(DynamicSignedMap().begin(), DynamicSignedMap().end()));
  std::vector<std::unique_ptr<DeviceNf4>> tensors;
  for (size_t s = 0; s < shapes.size(); ++s) {
    tensors.push_back(std::make_unique<DeviceNf4>(
        QuantizedNormal(shapes[s], static_cast<uint32_t>(s + 11)), map));
  }
  // Prefixes of several lengths, so that counts below the maximum are covered as well.
  const int count = GENERATE(1, 2, 4, 5, kNf4MaxBatch);
  CAPTURE(count);
  std::vector<Nf4DeviceTensor> descriptors;
  std::vector<std::unique_ptr<DeviceBuffer<uint16_t>>> batch_bf16;
  std::vector<std::unique_ptr<DeviceBuffer<float>>> batch_float;
  std::vector<uint16_t*> bf16_outs;
  std::vector<float*> float_outs;
  for (int i = 0; i < count; ++i) {
    descriptors.push_back(tensors[i]->device);
    const auto numel = static_cast<size_t>(tensors[i]->tensor.numel);
    batch_bf16.push_back(std::make_unique<DeviceBuffer<uint16_t>>(numel));
    batch_float.push_back(std::make_unique<DeviceBuffer<float>>(numel));
    // An empty tensor's buffer is null, which the launcher accepts for 0 values.
    bf16_outs.push_back(batch_bf16.back()->get());
    float_outs.push_back(batch_float.back()->get());
  }
  HPSEARCH_REQUIRE_CUDA(
      DequantizeNf4BatchToBf16(descriptors.data(), bf16_outs.data(), count, nullptr));
  HPSEARCH_REQUIRE_CUDA(
      DequantizeNf4BatchToFloat(descriptors.data(), float_outs.data(), count, nullptr));
  // The host descriptors may change once the call returned: the launch copied them.
  std::fill(descriptors.begin(), descriptors.end(), Nf4DeviceTensor{});
  HPSEARCH_REQUIRE_CUDA(cudaDeviceSynchronize());

  for (int i = 0; i < count; ++i) {
    const Nf4Tensor& tensor = tensors[i]->tensor;
    CAPTURE(i, tensor.numel);
    const auto numel = static_cast<size_t>(tensor.numel);
    DeviceBuffer<uint16_t> single_bf16(numel);
    DeviceBuffer<float> single_float(numel);
    if (numel > 0) {
      HPSEARCH_REQUIRE_CUDA(DequantizeNf4ToBf16(tensors[i]->device, single_bf16.get(), nullptr));
      HPSEARCH_REQUIRE_CUDA(DequantizeNf4ToFloat(tensors[i]->device, single_float.get(), nullptr));
    }
    HPSEARCH_REQUIRE_CUDA(cudaDeviceSynchronize());
    const std::vector<uint16_t> got_bf16 = batch_bf16[i]->ToHost();
    const std::vector<float> got_float = batch_float[i]->ToHost();
    // Batched == single, and both == the CPU reference.
    REQUIRE(got_bf16 == single_bf16.ToHost());
    REQUIRE(got_bf16 == DequantizeNf4TensorToBf16(tensor));
    const std::vector<float> want_float = DequantizeNf4TensorToFloat(tensor);
    const std::vector<float> single = single_float.ToHost();
    REQUIRE(got_float.size() == want_float.size());
    for (size_t k = 0; k < numel; ++k) {
      REQUIRE(std::memcmp(&got_float[k], &single[k], sizeof(float)) == 0);
      REQUIRE(std::memcmp(&got_float[k], &want_float[k], sizeof(float)) == 0);
    }
  }
}

TEST_CASE("Batched CUDA NF4 dequantisation refuses bad arguments without launching",
          "[kernels][nf4][cuda]") {
  SkipWithoutDevice();
  DeviceBuffer<float> out(16);
  float* outs[kNf4MaxBatch + 1] = {};
  Nf4DeviceTensor tensors[kNf4MaxBatch + 1] = {};
  for (int i = 0; i <= kNf4MaxBatch; ++i) outs[i] = out.get();  // numel 0: nothing is written
  REQUIRE(DequantizeNf4BatchToFloat(tensors, outs, 0, nullptr) == cudaSuccess);
  REQUIRE(DequantizeNf4BatchToFloat(tensors, outs, kNf4MaxBatch, nullptr) == cudaSuccess);
  REQUIRE(DequantizeNf4BatchToFloat(tensors, outs, kNf4MaxBatch + 1, nullptr) ==
          cudaErrorInvalidValue);
  REQUIRE(DequantizeNf4BatchToFloat(tensors, outs, -1, nullptr) == cudaErrorInvalidValue);
  REQUIRE(DequantizeNf4BatchToFloat(nullptr, outs, 1, nullptr) == cudaErrorInvalidValue);
  tensors[1].numel = 10;  // null inputs
  REQUIRE(DequantizeNf4BatchToFloat(tensors, outs, 2, nullptr) == cudaErrorInvalidValue);
  tensors[1].numel = 0;
  tensors[1].block_size = 128;
  REQUIRE(DequantizeNf4BatchToBf16(tensors, reinterpret_cast<uint16_t* const*>(outs), 2, nullptr) ==
          cudaErrorInvalidValue);
}

TEST_CASE("CUDA NF4 dequantisation refuses bad arguments without launching",
          "[kernels][nf4][cuda]") {
  SkipWithoutDevice();
  Nf4DeviceTensor device;
  device.numel = 10;
  float* out = nullptr;
  REQUIRE(cudaMalloc(reinterpret_cast<void**>(&out), 10 * sizeof(float)) == cudaSuccess);
  REQUIRE(DequantizeNf4ToFloat(device, out, nullptr) == cudaErrorInvalidValue);  // null inputs
  device.numel = 0;
  REQUIRE(DequantizeNf4ToFloat(device, out, nullptr) == cudaSuccess);  // nothing to do
  device.block_size = 128;
  REQUIRE(DequantizeNf4ToFloat(device, out, nullptr) == cudaErrorInvalidValue);
  REQUIRE(DequantizeNf4ToBf16(device, reinterpret_cast<uint16_t*>(out), nullptr) ==
          cudaErrorInvalidValue);
  cudaFree(out);
}

}  // namespace
}  // namespace hpsearch::kernels
