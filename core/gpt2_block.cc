#include "core/gpt2_block.h"

namespace hpsearch::core {
namespace {

torch::nn::LayerNorm MakeLayerNorm(const Gpt2Config& config, const FineTuningOptions& fine_tuning) {
  torch::nn::LayerNorm norm(
      torch::nn::LayerNormOptions({config.n_embd}).eps(config.layer_norm_epsilon));
  // LayerNormImpl's reset already sets weight 1 and bias 0, as GPT-2's init does.
  for (auto& parameter : norm->parameters()) {
    parameter.set_requires_grad(fine_tuning.method == FineTuningMethod::kFull);
  }
  return norm;
}

}  // namespace

Gpt2BlockImpl::Gpt2BlockImpl(const Gpt2Config& config, const FineTuningOptions& fine_tuning,
                             const std::string& module_path, at::Generator generator) {
  ln_1 = register_module("ln_1", MakeLayerNorm(config, fine_tuning));
  attn =
      register_module("attn", Gpt2Attention(config, fine_tuning, module_path + ".attn", generator));
  ln_2 = register_module("ln_2", MakeLayerNorm(config, fine_tuning));
  mlp = register_module("mlp", Gpt2Mlp(config, fine_tuning, module_path + ".mlp", generator));
}

torch::Tensor Gpt2BlockImpl::forward(const torch::Tensor& hidden, const torch::Tensor& attn_bias) {
  const MaterializedWeightsScope bases(FrozenBaseUses(hidden.scalar_type()));
  torch::Tensor h = hidden + attn(ln_1(hidden), attn_bias);
  return h + mlp(ln_2(h));
}

std::vector<FrozenWeightUse> Gpt2BlockImpl::FrozenBaseUses(c10::ScalarType input_dtype) const {
  // The residual stream's dtype reaches every layer when no compute dtype is set.
  return {attn->c_attn->FrozenBaseUse(input_dtype), attn->c_proj->FrozenBaseUse(input_dtype),
          mlp->c_fc->FrozenBaseUse(input_dtype), mlp->c_proj->FrozenBaseUse(input_dtype)};
}

}  // namespace hpsearch::core
