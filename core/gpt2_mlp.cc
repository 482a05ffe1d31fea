#include "core/gpt2_mlp.h"

#include <ATen/ATen.h>

#include <cmath>

namespace hpsearch::core {

torch::Tensor GeluNew(const torch::Tensor& x) { return at::gelu(x, "tanh"); }

Gpt2MlpImpl::Gpt2MlpImpl(const Gpt2Config& config, const FineTuningOptions& fine_tuning,
                         const std::string& module_path, at::Generator generator) {
  const int64_t width = config.n_embd;
  const int64_t inner = 4 * width;
  // Same depth scaling of "c_proj.weight" as in Gpt2Attention.
  const double proj_std =
      config.initializer_range / std::sqrt(2.0 * static_cast<double>(config.n_layer));
  c_fc =
      register_module("c_fc", LoraLinear(LinearLayerOptions(fine_tuning, module_path + ".c_fc",
                                                            width, inner, config.initializer_range),
                                         generator));
  c_proj = register_module(
      "c_proj",
      LoraLinear(LinearLayerOptions(fine_tuning, module_path + ".c_proj", inner, width, proj_std),
                 generator));
}

torch::Tensor Gpt2MlpImpl::forward(const torch::Tensor& hidden) {
  return c_proj(GeluNew(c_fc(hidden)));
}

}  // namespace hpsearch::core
