// Gpt2Mlp: GPT-2's position-wise feed-forward layer, c_fc [4C, C] → gelu_new → c_proj [C, 4C], as
// Hugging Face's GPT2MLP with n_inner unset (4 n_embd); its residual dropout (resid_pdrop) is
// applied by Gpt2Block together with the residual add (core/residual_layer_norm.h). Both
// projections are LoraLinear layers. Thread-safety: as any torch::nn::Module.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <string>

#include "core/fine_tuning.h"
#include "core/gpt2_config.h"
#include "core/lora_linear.h"

namespace hpsearch::core {

// GPT-2's "gelu_new": 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), the tanh approximation of
// GELU. Computed by at::gelu(x, "tanh"), which evaluates this formula in one fused kernel.
torch::Tensor GeluNew(const torch::Tensor& x);

class Gpt2MlpImpl : public torch::nn::Module {
 public:
  // `module_path` is this module's name in the classifier (e.g. "transformer.h.0.mlp").
  // REQUIRES: config validated (ValidateGpt2Config).
  Gpt2MlpImpl(const Gpt2Config& config, const FineTuningOptions& fine_tuning,
              const std::string& module_path, at::Generator generator);

  // hidden: [B, T, C] → [B, T, C] (the caller applies residual dropout and adds the residual).
  torch::Tensor forward(const torch::Tensor& hidden);

  LoraLinear c_fc{nullptr};
  LoraLinear c_proj{nullptr};
};

TORCH_MODULE(Gpt2Mlp);

}  // namespace hpsearch::core
