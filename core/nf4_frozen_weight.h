// Nf4FrozenWeight: a frozen base weight stored as NF4 the way bitsandbytes stores it (core/nf4.h),
// and dequantised to the activations' dtype on every Materialize. This is what makes `qlora` differ
// from `lora`: ReplaceFrozenBaseWeights(model, Nf4FrozenWeightFactory(options)) swaps every linear
// base weight of the transformer for one of these after the pretrained weights are loaded.
//
// Ownership: holds its Nf4Weight tensors; LoraLinear registers them as buffers so Module::to moves
// them. Thread-safety: const methods may be called concurrently.
#pragma once

#include <memory>

#include "core/frozen_weight.h"
#include "core/nf4.h"
#include "core/peft_state.h"

namespace hpsearch::core {

class Nf4FrozenWeight final : public FrozenWeight {
 public:
  // Quantises `weight_out_in` ([out, in], any float dtype) on the CPU.
  Nf4FrozenWeight(const at::Tensor& weight_out_in, const Nf4Options& options);

  at::Tensor Materialize(c10::ScalarType dtype) const override;
  int64_t in_features() const override;
  int64_t out_features() const override;
  std::vector<std::pair<std::string, at::Tensor>> Tensors() const override;
  std::string Describe() const override;

  const Nf4Weight& weight() const { return weight_; }

 private:
  Nf4Weight weight_;
};

// A factory for ReplaceFrozenBaseWeights that stores every base weight as NF4.
FrozenWeightFactory Nf4FrozenWeightFactory(const Nf4Options& options);

}  // namespace hpsearch::core
