#include "core/nf4_frozen_weight.h"

#include <sstream>

namespace hpsearch::core {

Nf4FrozenWeight::Nf4FrozenWeight(const at::Tensor& weight_out_in, const Nf4Options& options)
    : weight_(QuantizeWeight(weight_out_in.detach(), options)) {}

at::Tensor Nf4FrozenWeight::Materialize(c10::ScalarType dtype) const {
  // The tensors may have been moved by Module::to (set_data on the registered buffers): dequantise
  // where they live now.
  return DequantizeWeight(weight_, dtype);
}

int64_t Nf4FrozenWeight::in_features() const { return weight_.shape[1]; }
int64_t Nf4FrozenWeight::out_features() const { return weight_.shape[0]; }

std::vector<std::pair<std::string, at::Tensor>> Nf4FrozenWeight::Tensors() const {
  std::vector<std::pair<std::string, at::Tensor>> tensors = {{"packed", weight_.packed}};
  if (weight_.double_quant) {
    tensors.emplace_back("absmax_codes", weight_.absmax_codes);
    tensors.emplace_back("absmax_scales", weight_.absmax_scales);
  } else {
    tensors.emplace_back("absmax", weight_.absmax);
  }
  return tensors;
}

std::string Nf4FrozenWeight::Describe() const {
  std::ostringstream out;
  out << "nf4" << (weight_.double_quant ? "+dq" : "") << " [" << weight_.shape[0] << ", "
      << weight_.shape[1] << "] " << weight_.StorageBytes() << " bytes";
  return out.str();
}

FrozenWeightFactory Nf4FrozenWeightFactory(const Nf4Options& options) {
  return [options](const torch::Tensor& weight_out_in) -> std::shared_ptr<const FrozenWeight> {
    return std::make_shared<Nf4FrozenWeight>(weight_out_in, options);
  };
}

}  // namespace hpsearch::core
