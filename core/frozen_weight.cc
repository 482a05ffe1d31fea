#include "core/frozen_weight.h"

#include <ATen/ATen.h>

#include <sstream>

#include "core/error.h"

namespace hpsearch::core {

DenseFrozenWeight::DenseFrozenWeight(const at::Tensor& weight_out_in) {
  if (!weight_out_in.defined() || weight_out_in.dim() != 2) {
    Fail(ErrorCode::kInvalidArgument,
         "DenseFrozenWeight needs a defined 2-D [out_features, in_features] tensor; got " +
             (weight_out_in.defined() ? std::to_string(weight_out_in.dim()) + "-D"
                                      : std::string("an undefined tensor")));
  }
  weight_ = weight_out_in.detach();
}

at::Tensor DenseFrozenWeight::Materialize(c10::ScalarType dtype) const {
  // detach() above already cut autograd history; to() returns weight_ itself when nothing changes.
  return weight_.to(dtype);
}

int64_t DenseFrozenWeight::in_features() const { return weight_.size(1); }

int64_t DenseFrozenWeight::out_features() const { return weight_.size(0); }

std::vector<std::pair<std::string, at::Tensor>> DenseFrozenWeight::Tensors() const {
  return {{"weight", weight_}};
}

std::string DenseFrozenWeight::Describe() const {
  std::ostringstream out;
  out << "dense " << c10::toString(weight_.scalar_type()) << " [" << weight_.size(0) << ", "
      << weight_.size(1) << "]";
  return out.str();
}

}  // namespace hpsearch::core
