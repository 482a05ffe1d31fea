#include "core/gpt2_block.h"

#include "core/residual_layer_norm.h"

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

// The dtype `layer` computes in for an input like `hidden` (LoraLinearImpl::forward's rule).
c10::ScalarType LayerDtype(const LoraLinear& layer, const torch::Tensor& hidden) {
  const c10::ScalarType dtype = layer->options().compute_dtype();
  return dtype == c10::ScalarType::Undefined ? hidden.scalar_type() : dtype;
}

}  // namespace

Gpt2BlockImpl::Gpt2BlockImpl(const Gpt2Config& config, const FineTuningOptions& fine_tuning,
                             const std::string& module_path, at::Generator generator)
    : resid_pdrop_(config.resid_pdrop) {
  ln_1 = register_module("ln_1", MakeLayerNorm(config, fine_tuning));
  attn =
      register_module("attn", Gpt2Attention(config, fine_tuning, module_path + ".attn", generator));
  ln_2 = register_module("ln_2", MakeLayerNorm(config, fine_tuning));
  mlp = register_module("mlp", Gpt2Mlp(config, fine_tuning, module_path + ".mlp", generator));
}

torch::Tensor Gpt2BlockImpl::forward(const torch::Tensor& hidden, const torch::Tensor& attn_bias) {
  const MaterializedWeightsScope bases(FrozenBaseUses(hidden.scalar_type()));
  // The norms come out in the layers' compute dtype, so their input casts are no-ops. ln_1 passes
  // the residual through (x) so that its gradient is summed inside the ops' backward.
  const bool training = is_training();
  const ResidualLayerNormOutput x =
      ResidualLayerNorm(hidden, {}, 0.0, training, ln_1.get(), LayerDtype(attn->c_attn, hidden));
  const ResidualLayerNormOutput h =
      ResidualLayerNorm(x.sum, attn(x.norm, attn_bias), resid_pdrop_, training, ln_2.get(),
                        LayerDtype(mlp->c_fc, hidden));
  return ResidualLayerNorm(h.sum, mlp(h.norm), resid_pdrop_, training, nullptr,
                           hidden.scalar_type())
      .sum;
}

std::vector<FrozenWeightUse> Gpt2BlockImpl::FrozenBaseUses(c10::ScalarType input_dtype) const {
  // The residual stream's dtype reaches every layer when no compute dtype is set.
  return {attn->c_attn->FrozenBaseUse(input_dtype), attn->c_proj->FrozenBaseUse(input_dtype),
          mlp->c_fc->FrozenBaseUse(input_dtype), mlp->c_proj->FrozenBaseUse(input_dtype)};
}

}  // namespace hpsearch::core
