// FrozenWeight: the frozen base weight of a LoraLinear once it no longer lives as a dense trainable
// parameter — the storage-agnostic seam through which QLoRA plugs in NF4-quantised weights. A
// FrozenWeight yields the dense [out_features, in_features] matrix (torch::nn::Linear orientation,
// see core/lora_linear.h) to multiply with, in the dtype the activations have; how it is stored
// (dense here, NF4 blocks + absmax scales later) is its own business. Materialize never records
// autograd history: the base is frozen by definition.
//
// Ownership: a LoraLinear holds its FrozenWeight through a shared_ptr<const FrozenWeight> and
// registers the tensors listed by Tensors() as its buffers, so Module::to(device) moves them in
// place (set_data keeps the handles the FrozenWeight holds valid). Thread-safety: const methods may
// be called concurrently.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hpsearch::core {

class FrozenWeight {
 public:
  virtual ~FrozenWeight() = default;

  // The [out_features, in_features] weight in `dtype`, on the device of the backing tensors, with
  // requires_grad false. May allocate (dequantise) on every call.
  virtual at::Tensor Materialize(c10::ScalarType dtype) const = 0;

  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;

  // The tensors that back the weight, by a short name unique within this weight ("weight"; for NF4
  // e.g. "packed", "absmax"). LoraLinear registers each as the buffer "base_<name>".
  virtual std::vector<std::pair<std::string, at::Tensor>> Tensors() const = 0;

  // A short description for logs and error messages, e.g. "dense float32 [2304, 768]".
  virtual std::string Describe() const = 0;
};

// The plain implementation: a dense [out, in] tensor, cast on demand. Used for LoRA on a dense
// frozen base when the base must leave the parameter list, and as the reference the NF4 weight is
// checked against.
class DenseFrozenWeight final : public FrozenWeight {
 public:
  // Takes a detached view of `weight_out_in`; later in-place changes to the caller's tensor are
  // visible. REQUIRES: weight_out_in is defined and 2-D [out_features, in_features].
  explicit DenseFrozenWeight(const at::Tensor& weight_out_in);

  at::Tensor Materialize(c10::ScalarType dtype) const override;
  int64_t in_features() const override;
  int64_t out_features() const override;
  std::vector<std::pair<std::string, at::Tensor>> Tensors() const override;
  std::string Describe() const override;

 private:
  at::Tensor weight_;
};

}  // namespace hpsearch::core
