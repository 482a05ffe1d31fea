// Gpt2Block: one pre-LayerNorm GPT-2 transformer block, as Hugging Face's GPT2Block:
//   h = h + dropout(attn(ln_1(h)));  h = h + dropout(mlp(ln_2(h)))   (dropout: resid_pdrop).
// The residual stream (float32) and its elementwise work around the layers (LayerNorms, residual
// dropouts and adds, the norms' cast to the layers' compute dtype) run as three ResidualLayerNorm
// ops (core/residual_layer_norm.h): ln_1; h and ln_2; the block's output.
// Submodules: "ln_1", "attn" (Gpt2Attention), "ln_2", "mlp" (Gpt2Mlp). LayerNorms start at weight
// 1, bias 0 and are frozen unless fine-tuning is full. Forward materialises the four linear layers'
// frozen (NF4) bases in one go for its run (one dequantisation launch: MaterializedWeightsScope,
// core/materialized_weights.h), so they coexist in memory while the block runs.
// Thread-safety: as any torch::nn::Module.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

#include "core/fine_tuning.h"
#include "core/gpt2_attention.h"
#include "core/gpt2_config.h"
#include "core/gpt2_mlp.h"
#include "core/materialized_weights.h"

namespace hpsearch::core {

class Gpt2BlockImpl : public torch::nn::Module {
 public:
  // `module_path` is this block's name in the classifier (e.g. "transformer.h.0").
  // REQUIRES: config validated (ValidateGpt2Config).
  Gpt2BlockImpl(const Gpt2Config& config, const FineTuningOptions& fine_tuning,
                const std::string& module_path, at::Generator generator);

  // hidden: [B, T, C]; attn_bias: [B, 1, T, T] additive (Gpt2AttentionBias). Returns [B, T, C].
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& attn_bias);

  // The four linear layers' frozen bases and the dtypes their forwards will ask for, given the
  // block's input dtype (entries of dense bases have a null weight).
  std::vector<FrozenWeightUse> FrozenBaseUses(c10::ScalarType input_dtype) const;

  torch::nn::LayerNorm ln_1{nullptr};
  Gpt2Attention attn{nullptr};
  torch::nn::LayerNorm ln_2{nullptr};
  Gpt2Mlp mlp{nullptr};

 private:
  double resid_pdrop_;
};

TORCH_MODULE(Gpt2Block);

}  // namespace hpsearch::core
