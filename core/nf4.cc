#include "core/nf4.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "core/kernel_count.h"
#include "core/shape_string.h"
#include "kernels/nf4_reference.h"

#if defined(HPSEARCH_TORCH_CUDA)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <map>
#include <mutex>

#include "kernels/nf4_dequant.cuh"
#endif

namespace hpsearch::core {
namespace {

template <typename T>
torch::Tensor ToTensor(const std::vector<T>& values, torch::ScalarType dtype) {
  torch::Tensor out = torch::empty({static_cast<int64_t>(values.size())}, torch::dtype(dtype));
  if (!values.empty()) std::memcpy(out.data_ptr(), values.data(), values.size() * sizeof(T));
  return out;
}

// Fails, naming the Nf4Weight field, unless tensor is a 1-D dtype tensor of length values.
void CheckField(const torch::Tensor& tensor, torch::ScalarType dtype, int64_t length,
                const char* field) {
  if (!tensor.defined() || tensor.scalar_type() != dtype || tensor.dim() != 1 ||
      tensor.numel() != length) {
    Fail(ErrorCode::kInvalidArgument,
         std::string("Nf4Weight.") + field + " must be a 1-D " + c10::toString(dtype) +
             " tensor of " + std::to_string(length) + " values for this shape, got " +
             (tensor.defined() ? std::string(c10::toString(tensor.scalar_type())) + " " +
                                     ShapeString(tensor.sizes())
                               : std::string("an undefined tensor")) +
             "; rebuild it with QuantizeWeight");
  }
}

// The field on the CPU, contiguous, after CheckField.
torch::Tensor CpuField(const torch::Tensor& tensor, torch::ScalarType dtype, int64_t length,
                       const char* field) {
  CheckField(tensor, dtype, length, field);
  return tensor.to(torch::kCPU).contiguous();
}

void CheckLayout(const Nf4Weight& weight) {
  int64_t numel = 1;
  for (int64_t size : weight.shape) numel *= size;
  if (weight.shape.size() != 2 || numel != weight.numel || weight.numel < 0) {
    Fail(ErrorCode::kInvalidArgument, "Nf4Weight: shape " + ShapeString(weight.shape) +
                                          " with numel " + std::to_string(weight.numel) +
                                          " is not a consistent 2-D weight; rebuild it with "
                                          "QuantizeWeight");
  }
  if (weight.block_size != kernels::kNf4BlockSize) {
    Fail(ErrorCode::kUnsupported, "Nf4Weight: block size " + std::to_string(weight.block_size) +
                                      " is not supported; hpsearch uses NF4 blocks of " +
                                      std::to_string(kernels::kNf4BlockSize));
  }
}

void CheckOutputDtype(torch::ScalarType dtype) {
  if (dtype != torch::kFloat && dtype != torch::kBFloat16 && dtype != torch::kHalf) {
    Fail(ErrorCode::kUnsupported, std::string("DequantizeWeight: output dtype ") +
                                      c10::toString(dtype) +
                                      " is not supported; ask for Float, BFloat16 or Half");
  }
}

// Dequantises straight into the output tensor; only the per-block absmaxes get a buffer of their
// own.
torch::Tensor DequantizeOnCpu(const Nf4Weight& weight, torch::ScalarType dtype) {
  CheckLayout(weight);
  const int64_t blocks = weight.num_blocks();
  const torch::Tensor packed =
      CpuField(weight.packed, torch::kUInt8, (weight.numel + 1) / 2, "packed");
  torch::Tensor absmax;
  if (weight.double_quant) {
    const torch::Tensor codes =
        CpuField(weight.absmax_codes, torch::kUInt8, blocks, "absmax_codes");
    const torch::Tensor scales = CpuField(
        weight.absmax_scales, torch::kFloat,
        (blocks + kernels::kAbsmaxBlockSize - 1) / kernels::kAbsmaxBlockSize, "absmax_scales");
    absmax = torch::empty({blocks}, torch::kFloat);
    kernels::DequantizeAbsmax(codes.data_ptr<uint8_t>(), scales.data_ptr<float>(),
                              weight.absmax_offset, blocks, kernels::DynamicSignedMap().data(),
                              absmax.data_ptr<float>());
  } else {
    absmax = CpuField(weight.absmax, torch::kFloat, blocks, "absmax");
  }
  if (dtype == torch::kBFloat16) {
    torch::Tensor out = torch::empty(weight.shape, torch::dtype(torch::kBFloat16));
    kernels::DequantizeNf4Bf16(packed.data_ptr<uint8_t>(), absmax.data_ptr<float>(), weight.numel,
                               weight.block_size, static_cast<uint16_t*>(out.data_ptr()));
    return out;
  }
  torch::Tensor out = torch::empty(weight.shape, torch::dtype(torch::kFloat));
  kernels::DequantizeNf4(packed.data_ptr<uint8_t>(), absmax.data_ptr<float>(), weight.numel,
                         weight.block_size, out.data_ptr<float>());
  return dtype == torch::kFloat ? out : out.to(dtype);
}

#if defined(HPSEARCH_TORCH_CUDA)
// The dynamic map on `device`, copied there once per device and process: a per-call copy from
// pageable host memory would make every dequantisation wait for the GPU.
const torch::Tensor& DeviceCodeMap(const torch::Device& device) {
  static std::mutex mutex;
  // Never destroyed: freeing a CUDA tensor during static destruction can outlive the allocator.
  static auto* maps = new std::map<int, torch::Tensor>();
  const std::lock_guard<std::mutex> lock(mutex);
  torch::Tensor& map = (*maps)[device.index()];
  if (!map.defined()) {
    map = ToTensor(std::vector<float>(kernels::DynamicSignedMap().begin(),
                                      kernels::DynamicSignedMap().end()),
                   torch::kFloat)
              .to(device);
  }
  return map;
}

// The kernel's view of `weight`, which must live on `device`; the tensors it points into are added
// to `keep`, which must outlive the launch call.
kernels::Nf4DeviceTensor DeviceArgs(const Nf4Weight& weight, const torch::Device& device,
                                    const torch::Tensor& map, std::vector<torch::Tensor>* keep) {
  CheckLayout(weight);
  if (!weight.double_quant) {
    Fail(ErrorCode::kUnsupported,
         "DequantizeWeight: the CUDA kernel reads double-quantised absmaxes only; quantise with "
         "Nf4Options.double_quant = true or dequantise on the CPU");
  }
  const int64_t blocks = weight.num_blocks();
  CheckField(weight.packed, torch::kUInt8, (weight.numel + 1) / 2, "packed");
  CheckField(weight.absmax_codes, torch::kUInt8, blocks, "absmax_codes");
  CheckField(weight.absmax_scales, torch::kFloat,
             (blocks + kernels::kAbsmaxBlockSize - 1) / kernels::kAbsmaxBlockSize, "absmax_scales");
  if (weight.packed.device() != device || weight.absmax_codes.device() != device ||
      weight.absmax_scales.device() != device) {
    Fail(ErrorCode::kInvalidArgument,
         "DequantizeWeight: Nf4Weight tensors on different devices; move the whole weight with "
         "MoveNf4Weight or Module::to");
  }
  keep->push_back(weight.packed.contiguous());
  kernels::Nf4DeviceTensor args;
  args.packed = keep->back().data_ptr<uint8_t>();
  keep->push_back(weight.absmax_codes.contiguous());
  args.absmax_codes = keep->back().data_ptr<uint8_t>();
  keep->push_back(weight.absmax_scales.contiguous());
  args.absmax_scales = keep->back().data_ptr<float>();
  args.absmax_code_map = map.data_ptr<float>();
  args.absmax_offset = weight.absmax_offset;
  args.numel = weight.numel;
  args.block_size = weight.block_size;
  return args;
}

void CheckLaunch(cudaError_t status, const torch::Device& device) {
  if (status != cudaSuccess) {
    Fail(ErrorCode::kInternal, std::string("DequantizeWeight: NF4 kernel launch failed on ") +
                                   device.str() + ": " + cudaGetErrorString(status));
  }
}

torch::Tensor DequantizeOnCuda(const Nf4Weight& weight, torch::ScalarType dtype) {
  const torch::Device device = weight.packed.device();
  const c10::cuda::CUDAGuard guard(device);
  std::vector<torch::Tensor> keep;
  const kernels::Nf4DeviceTensor args = DeviceArgs(weight, device, DeviceCodeMap(device), &keep);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device.index()).stream();
  const torch::ScalarType kernel_dtype = dtype == torch::kBFloat16 ? dtype : torch::kFloat;
  torch::Tensor out = torch::empty(weight.shape, torch::dtype(kernel_dtype).device(device));
  CheckLaunch(
      kernel_dtype == torch::kBFloat16
          ? kernels::DequantizeNf4ToBf16(args, static_cast<uint16_t*>(out.data_ptr()), stream)
          : kernels::DequantizeNf4ToFloat(args, out.data_ptr<float>(), stream),
      device);
  return dtype == kernel_dtype ? out : out.to(dtype);
}

// weights[0 .. count) (count <= kNf4MaxBatch, all on `device`) in dtype (bfloat16 or float32), one
// launch, appended to `out`.
void DequantizeBatchOnCuda(const Nf4Weight* const* weights, size_t count, torch::ScalarType dtype,
                           const torch::Device& device, std::vector<torch::Tensor>* out) {
  const c10::cuda::CUDAGuard guard(device);
  const torch::Tensor& map = DeviceCodeMap(device);
  std::vector<torch::Tensor> keep;
  std::vector<kernels::Nf4DeviceTensor> args;
  std::vector<torch::Tensor> results;
  std::vector<uint16_t*> bf16_outs;
  std::vector<float*> float_outs;
  for (size_t i = 0; i < count; ++i) {
    args.push_back(DeviceArgs(*weights[i], device, map, &keep));
    results.push_back(torch::empty(weights[i]->shape, torch::dtype(dtype).device(device)));
    if (dtype == torch::kBFloat16) {
      bf16_outs.push_back(static_cast<uint16_t*>(results.back().data_ptr()));
    } else {
      float_outs.push_back(results.back().data_ptr<float>());
    }
  }
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device.index()).stream();
  const int n = static_cast<int>(count);
  CheckLaunch(dtype == torch::kBFloat16
                  ? kernels::DequantizeNf4BatchToBf16(args.data(), bf16_outs.data(), n, stream)
                  : kernels::DequantizeNf4BatchToFloat(args.data(), float_outs.data(), n, stream),
              device);
  out->insert(out->end(), results.begin(), results.end());
}
#endif

}  // namespace

int64_t Nf4Weight::StorageBytes() const {
  auto bytes = [](const torch::Tensor& t) {
    return t.defined() ? t.numel() * t.element_size() : 0;
  };
  if (double_quant) {
    return bytes(packed) + bytes(absmax_codes) + bytes(absmax_scales) +
           static_cast<int64_t>(sizeof(absmax_offset));
  }
  return bytes(packed) + bytes(absmax);
}

double Nf4Weight::BitsPerWeight() const {
  return numel == 0 ? 0.0 : 8.0 * static_cast<double>(StorageBytes()) / static_cast<double>(numel);
}

Nf4Weight QuantizeWeight(const torch::Tensor& weight, const Nf4Options& options) {
  if (!weight.defined() || weight.dim() != 2) {
    Fail(ErrorCode::kInvalidArgument,
         "QuantizeWeight: expected a 2-D [out, in] weight, got " +
             (weight.defined() ? ShapeString(weight.sizes()) : std::string("an undefined tensor")));
  }
  const torch::ScalarType dtype = weight.scalar_type();
  if (dtype != torch::kFloat && dtype != torch::kBFloat16 && dtype != torch::kHalf) {
    Fail(ErrorCode::kUnsupported, std::string("QuantizeWeight: weight dtype ") +
                                      c10::toString(dtype) +
                                      " cannot be quantised; pass Float, BFloat16 or Half");
  }
  if (options.block_size != kernels::kNf4BlockSize) {
    Fail(ErrorCode::kUnsupported,
         "QuantizeWeight: Nf4Options.block_size " + std::to_string(options.block_size) +
             " is not supported; use " + std::to_string(kernels::kNf4BlockSize));
  }
  const torch::Tensor host = weight.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const std::vector<int64_t> shape(weight.sizes().begin(), weight.sizes().end());
  kernels::Nf4Tensor tensor;
  try {
    tensor = kernels::QuantizeNf4Tensor(host.data_ptr<float>(), shape, options.double_quant);
  } catch (const std::invalid_argument& e) {
    Fail(ErrorCode::kInvalidArgument,
         std::string("QuantizeWeight ") + ShapeString(weight.sizes()) + ": " + e.what());
  }
  Nf4Weight out;
  out.shape = shape;
  out.numel = tensor.numel;
  out.block_size = tensor.block_size;
  out.double_quant = tensor.double_quant;
  out.packed = ToTensor(tensor.packed, torch::kUInt8);
  if (tensor.double_quant) {
    out.absmax_codes = ToTensor(tensor.absmax_dq.codes, torch::kUInt8);
    out.absmax_scales = ToTensor(tensor.absmax_dq.scales, torch::kFloat);
    out.absmax_offset = tensor.absmax_dq.offset;
  } else {
    out.absmax = ToTensor(tensor.absmax, torch::kFloat);
  }
  return out;
}

torch::Tensor DequantizeWeight(const Nf4Weight& weight, torch::ScalarType dtype) {
  // One kernel on CUDA (not an ATen op): marked for kernel counting (core/kernel_count.h).
  const FusedOpScope dequantize(kNf4DequantizeOp);
  CheckOutputDtype(dtype);
  if (!weight.packed.defined()) {
    Fail(ErrorCode::kInvalidArgument,
         "DequantizeWeight: Nf4Weight.packed is undefined; build the "
         "weight with QuantizeWeight");
  }
  const torch::Device device = weight.packed.device();
  if (device.is_cpu()) {
    try {
      return DequantizeOnCpu(weight, dtype);
    } catch (const std::invalid_argument& e) {
      Fail(ErrorCode::kInvalidArgument, std::string("DequantizeWeight: ") + e.what());
    }
  }
#if defined(HPSEARCH_TORCH_CUDA)
  if (device.is_cuda()) return DequantizeOnCuda(weight, dtype);
#endif
  Fail(ErrorCode::kUnsupported, "DequantizeWeight: NF4 weights on " + device.str() +
                                    " are not supported by this build (the CUDA kernel needs "
                                    "hpsearch built against a CUDA LibTorch); move it to the CPU");
}

std::vector<torch::Tensor> DequantizeWeights(const std::vector<const Nf4Weight*>& weights,
                                             torch::ScalarType dtype) {
  if (dtype != torch::kBFloat16 && dtype != torch::kFloat) {
    Fail(ErrorCode::kUnsupported, std::string("DequantizeWeights: output dtype ") +
                                      c10::toString(dtype) +
                                      " is not batched; ask for BFloat16 or Float, or dequantise "
                                      "one by one with DequantizeWeight");
  }
  std::vector<torch::Tensor> out;
  if (weights.empty()) return out;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] == nullptr || !weights[i]->packed.defined()) {
      Fail(ErrorCode::kInvalidArgument,
           "DequantizeWeights: weight " + std::to_string(i) +
               " is null or has no packed codes; build the weight with QuantizeWeight");
    }
    if (!weights[i]->double_quant) {
      Fail(ErrorCode::kUnsupported,
           "DequantizeWeights: weight " + std::to_string(i) +
               " is not double-quantised, which the batched kernel reads only; use "
               "DequantizeWeight");
    }
  }
  const torch::Device device = weights[0]->packed.device();
  for (size_t i = 1; i < weights.size(); ++i) {
    if (weights[i]->packed.device() != device) {
      Fail(ErrorCode::kInvalidArgument, "DequantizeWeights: weight " + std::to_string(i) +
                                            " lives on " + weights[i]->packed.device().str() +
                                            ", weight 0 on " + device.str() +
                                            "; a batch is dequantised on one device");
    }
  }
  out.reserve(weights.size());
  for (size_t begin = 0; begin < weights.size(); begin += kernels::kNf4MaxBatch) {
    const size_t count =
        std::min(weights.size() - begin, static_cast<size_t>(kernels::kNf4MaxBatch));
    // One kernel on CUDA per kNf4MaxBatch weights (not an ATen op): marked for kernel counting
    // (core/kernel_count.h). The CPU runs the reference per weight inside the same mark.
    const FusedOpScope dequantize(kNf4DequantizeOp);
    if (device.is_cpu()) {
      for (size_t i = begin; i < begin + count; ++i) {
        try {
          out.push_back(DequantizeOnCpu(*weights[i], dtype));
        } catch (const std::invalid_argument& e) {
          Fail(ErrorCode::kInvalidArgument, std::string("DequantizeWeights: ") + e.what());
        }
      }
      continue;
    }
#if defined(HPSEARCH_TORCH_CUDA)
    if (device.is_cuda()) {
      DequantizeBatchOnCuda(weights.data() + begin, count, dtype, device, &out);
      continue;
    }
#endif
    Fail(ErrorCode::kUnsupported, "DequantizeWeights: NF4 weights on " + device.str() +
                                      " are not supported by this build (the CUDA kernel needs "
                                      "hpsearch built against a CUDA LibTorch); move them to the "
                                      "CPU");
  }
  return out;
}

Nf4Weight MoveNf4Weight(const Nf4Weight& weight, const torch::Device& device) {
  Nf4Weight out = weight;
  for (torch::Tensor* t : {&out.packed, &out.absmax, &out.absmax_codes, &out.absmax_scales}) {
    if (t->defined()) *t = t->to(device);
  }
  return out;
}

}  // namespace hpsearch::core
