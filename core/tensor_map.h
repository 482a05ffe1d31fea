// TensorMap: named tensors as checkpoint files hold them, keyed by their state-dict name
// ("transformer.h.0. attn.c_attn.weight"). Sorted by name, so iteration order (and what the writers
// emit) is deterministic. Tensors share storage with whatever the reader allocated; copying the map
// copies handles, not data.
#pragma once

#include <map>
#include <string>

#include <ATen/core/Tensor.h>

namespace hpsearch::core {

using TensorMap = std::map<std::string, at::Tensor>;

}  // namespace hpsearch::core
