// nf4_bench: NF4 quantisation and dequantisation throughput on GPT-2-medium-shaped weights. Prints
// one row per (operation, shape): the CPU reference always, the CUDA kernel when built with CUDA
// and a device is present, then a GPT-2-medium block's four bases by four launches and by one
// batched launch (shape column: 1 x their total values). Usage: nf4_bench [repeats, default 5]; the
// median run is reported.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/nf4_reference.h"

#if defined(HPSEARCH_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include "kernels/nf4_dequant.cuh"
#endif

namespace {

using hpsearch::kernels::Nf4Tensor;

double MedianMs(int repeats, const std::function<void()>& run) {
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    run();
    const auto end = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void PrintRow(const char* op, int64_t rows, int64_t cols, double ms, double bytes_moved) {
  const double values = static_cast<double>(rows * cols);
  std::printf("%-28s %5lldx%-5lld %10.3f %12.1f %10.2f\n", op, static_cast<long long>(rows),
              static_cast<long long>(cols), ms, values / ms / 1e3, bytes_moved / ms / 1e6);
}

#if defined(HPSEARCH_HAVE_CUDA)
bool HaveDevice() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

// Times the bf16 kernel with CUDA events; returns false when a CUDA call fails.
bool BenchCuda(const Nf4Tensor& tensor, int repeats, int64_t rows, int64_t cols) {
  const auto& map = hpsearch::kernels::DynamicSignedMap();
  uint8_t* packed = nullptr;
  uint8_t* codes = nullptr;
  float* scales = nullptr;
  float* code_map = nullptr;
  uint16_t* out = nullptr;
  bool ok =
      cudaMalloc(reinterpret_cast<void**>(&packed), tensor.packed.size()) == cudaSuccess &&
      cudaMalloc(reinterpret_cast<void**>(&codes), tensor.absmax_dq.codes.size()) == cudaSuccess &&
      cudaMalloc(reinterpret_cast<void**>(&scales),
                 tensor.absmax_dq.scales.size() * sizeof(float)) == cudaSuccess &&
      cudaMalloc(reinterpret_cast<void**>(&code_map), 256 * sizeof(float)) == cudaSuccess &&
      cudaMalloc(reinterpret_cast<void**>(&out), tensor.numel * sizeof(uint16_t)) == cudaSuccess;
  ok = ok &&
       cudaMemcpy(packed, tensor.packed.data(), tensor.packed.size(), cudaMemcpyHostToDevice) ==
           cudaSuccess &&
       cudaMemcpy(codes, tensor.absmax_dq.codes.data(), tensor.absmax_dq.codes.size(),
                  cudaMemcpyHostToDevice) == cudaSuccess &&
       cudaMemcpy(scales, tensor.absmax_dq.scales.data(),
                  tensor.absmax_dq.scales.size() * sizeof(float),
                  cudaMemcpyHostToDevice) == cudaSuccess &&
       cudaMemcpy(code_map, map.data(), 256 * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess;
  hpsearch::kernels::Nf4DeviceTensor args;
  args.packed = packed;
  args.absmax_codes = codes;
  args.absmax_scales = scales;
  args.absmax_code_map = code_map;
  args.absmax_offset = tensor.absmax_dq.offset;
  args.numel = tensor.numel;
  cudaEvent_t start, stop;
  ok = ok && cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess;
  ok = ok && hpsearch::kernels::DequantizeNf4ToBf16(args, out, nullptr) == cudaSuccess;  // warm-up
  std::vector<float> ms;
  for (int r = 0; ok && r < repeats; ++r) {
    float elapsed = 0.0f;
    ok = cudaEventRecord(start) == cudaSuccess &&
         hpsearch::kernels::DequantizeNf4ToBf16(args, out, nullptr) == cudaSuccess &&
         cudaEventRecord(stop) == cudaSuccess && cudaEventSynchronize(stop) == cudaSuccess &&
         cudaEventElapsedTime(&elapsed, start, stop) == cudaSuccess;
    ms.push_back(elapsed);
  }
  if (ok) {
    std::sort(ms.begin(), ms.end());
    const double bytes = static_cast<double>(tensor.StorageBytes() + tensor.numel * 2);
    PrintRow("dequantize bf16 (cuda)", rows, cols, ms[ms.size() / 2], bytes);
  }
  cudaFree(packed);
  cudaFree(codes);
  cudaFree(scales);
  cudaFree(code_map);
  cudaFree(out);
  return ok;
}

// A GPT-2-medium block's four bases ([3C, C], [C, C], [4C, C], [C, 4C] at C = 1,024) dequantised to
// bf16 by four single-tensor launches, then by one batched launch (what a block run does since
// issue 19); both timed with CUDA events over the whole sequence. Returns false when a CUDA call
// fails.
bool BenchCudaBlock(const std::vector<Nf4Tensor>& tensors, int repeats) {
  using hpsearch::kernels::Nf4DeviceTensor;
  const auto& map = hpsearch::kernels::DynamicSignedMap();
  std::vector<void*> allocations;
  auto upload = [&](const void* host, size_t bytes) -> void* {
    void* device = nullptr;
    if (cudaMalloc(&device, bytes) != cudaSuccess) return nullptr;
    allocations.push_back(device);
    if (host != nullptr && cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice) != cudaSuccess) {
      return nullptr;
    }
    return device;
  };
  bool ok = true;
  const auto* code_map = static_cast<const float*>(upload(map.data(), 256 * sizeof(float)));
  ok = code_map != nullptr;
  std::vector<Nf4DeviceTensor> args;
  std::vector<uint16_t*> outs;
  int64_t values = 0;
  double bytes = 0.0;
  for (const Nf4Tensor& tensor : tensors) {
    Nf4DeviceTensor a;
    a.packed = static_cast<const uint8_t*>(upload(tensor.packed.data(), tensor.packed.size()));
    a.absmax_codes = static_cast<const uint8_t*>(
        upload(tensor.absmax_dq.codes.data(), tensor.absmax_dq.codes.size()));
    a.absmax_scales = static_cast<const float*>(
        upload(tensor.absmax_dq.scales.data(), tensor.absmax_dq.scales.size() * sizeof(float)));
    a.absmax_code_map = code_map;
    a.absmax_offset = tensor.absmax_dq.offset;
    a.numel = tensor.numel;
    outs.push_back(static_cast<uint16_t*>(upload(nullptr, tensor.numel * sizeof(uint16_t))));
    ok = ok && a.packed != nullptr && a.absmax_codes != nullptr && a.absmax_scales != nullptr &&
         outs.back() != nullptr;
    args.push_back(a);
    values += tensor.numel;
    bytes += static_cast<double>(tensor.StorageBytes() + tensor.numel * 2);
  }
  const int count = static_cast<int>(args.size());
  auto singles = [&] {
    bool launched = true;
    for (int i = 0; i < count; ++i) {
      launched = launched &&
                 hpsearch::kernels::DequantizeNf4ToBf16(args[i], outs[i], nullptr) == cudaSuccess;
    }
    return launched;
  };
  auto batched = [&] {
    return hpsearch::kernels::DequantizeNf4BatchToBf16(args.data(), outs.data(), count, nullptr) ==
           cudaSuccess;
  };
  cudaEvent_t start = nullptr, stop = nullptr;
  ok = ok && cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess;
  const std::vector<std::pair<const char*, std::function<bool()>>> runs = {
      {"dequantize block, 4 launches", singles}, {"dequantize block, batched", batched}};
  for (const auto& [name, run] : runs) {
    ok = ok && run() && cudaDeviceSynchronize() == cudaSuccess;  // warm-up
    std::vector<float> ms;
    for (int r = 0; ok && r < repeats; ++r) {
      float elapsed = 0.0f;
      ok = cudaEventRecord(start) == cudaSuccess && run() && cudaEventRecord(stop) == cudaSuccess &&
           cudaEventSynchronize(stop) == cudaSuccess &&
           cudaEventElapsedTime(&elapsed, start, stop) == cudaSuccess;
      ms.push_back(elapsed);
    }
    if (ok) {
      std::sort(ms.begin(), ms.end());
      PrintRow(name, 1, values, ms[ms.size() / 2], bytes);
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  for (void* allocation : allocations) cudaFree(allocation);
  return ok;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {1024, 1024}, {1024, 3072}, {4096, 1024}};
#if defined(HPSEARCH_HAVE_CUDA)
  const bool cuda = HaveDevice();
#endif
  std::printf("%-28s %11s %10s %12s %10s\n", "operation", "shape", "ms", "Mvalues/s", "GB/s");
  for (const auto& [rows, cols] : shapes) {
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::vector<float> weights(static_cast<size_t>(rows * cols));
    for (float& w : weights) w = normal(rng);
    Nf4Tensor tensor;
    const double quantize_ms = MedianMs(repeats, [&] {
      tensor = hpsearch::kernels::QuantizeNf4Tensor(weights.data(), {rows, cols}, true);
    });
    PrintRow("quantize double-quant (cpu)", rows, cols, quantize_ms,
             static_cast<double>(weights.size() * 4 + tensor.StorageBytes()));
    std::vector<uint16_t> bf16;
    const double dequantize_ms =
        MedianMs(repeats, [&] { bf16 = hpsearch::kernels::DequantizeNf4TensorToBf16(tensor); });
    PrintRow("dequantize bf16 (cpu)", rows, cols, dequantize_ms,
             static_cast<double>(tensor.StorageBytes() + bf16.size() * 2));
#if defined(HPSEARCH_HAVE_CUDA)
    if (cuda && !BenchCuda(tensor, repeats, rows, cols)) {
      std::fprintf(stderr, "nf4_bench: a CUDA call failed\n");
      return 1;
    }
#endif
  }
#if defined(HPSEARCH_HAVE_CUDA)
  if (cuda) {
    std::vector<Nf4Tensor> block;
    for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{
             {3072, 1024}, {1024, 1024}, {4096, 1024}, {1024, 4096}}) {
      std::mt19937 rng(2);
      std::normal_distribution<float> normal(0.0f, 0.02f);
      std::vector<float> weights(static_cast<size_t>(rows * cols));
      for (float& w : weights) w = normal(rng);
      block.push_back(hpsearch::kernels::QuantizeNf4Tensor(weights.data(), {rows, cols}, true));
    }
    if (!BenchCudaBlock(block, repeats)) {
      std::fprintf(stderr, "nf4_bench: a CUDA call failed\n");
      return 1;
    }
  }
  if (!cuda) std::printf("(no CUDA device: CUDA rows skipped)\n");
#else
  std::printf("(built without CUDA: CUDA rows skipped)\n");
#endif
  return 0;
}
