// Gpt2Attention: GPT-2's causal multi-head self-attention as Hugging Face's GPT2Attention computes
// it in eager mode: c_attn projects to q, k, v; scores q k^T / sqrt(head_dim) plus an additive
// attention bias (0 where a query may attend, the dtype's lowest value where the causal or padding
// mask forbids it); softmax; dropout (attn_pdrop); weighted sum of v; c_proj. Its residual dropout
// (resid_pdrop) is applied by Gpt2Block together with the residual add
// (core/residual_layer_norm.h). With attn_implementation "sdpa" the middle (scores through weighted
// sum) is one at::scaled_dot_product_attention call with the same additive mask, as Hugging Face's
// sdpa path. Under mixed precision q, k, v come out of c_attn in the compute dtype; the eager
// softmax runs in float32. c_attn and c_proj are LoraLinear layers, so LoRA and frozen (NF4) bases
// apply here. Submodules: "c_attn" [3C, C], "c_proj" [C, C] ([out, in]). Thread-safety: as any
// torch::nn::Module.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <string>

#include "core/fine_tuning.h"
#include "core/gpt2_config.h"
#include "core/lora_linear.h"

namespace hpsearch::core {

class Gpt2AttentionImpl : public torch::nn::Module {
 public:
  // `module_path` is this module's name in the classifier (e.g. "transformer.h.0.attn"); it decides
  // which projections get adapters. Initialisation draws from `generator` (c_proj with GPT-2's
  // scaled-down std). REQUIRES: config validated (ValidateGpt2Config).
  Gpt2AttentionImpl(const Gpt2Config& config, const FineTuningOptions& fine_tuning,
                    const std::string& module_path, at::Generator generator);

  // hidden: [B, T, C]; attn_bias: [B, 1, T, T] additive (see Gpt2AttentionBias in
  // core/gpt2_model.h), in the residual stream's dtype for eager attention and in q's dtype for
  // sdpa. Returns [B, T, C] after c_proj (the caller applies residual dropout and adds the
  // residual).
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& attn_bias);

  LoraLinear c_attn{nullptr};
  LoraLinear c_proj{nullptr};

 private:
  int64_t n_head_;
  double attn_pdrop_;
  bool sdpa_;  // config.attn_implementation == "sdpa"
};

TORCH_MODULE(Gpt2Attention);

}  // namespace hpsearch::core
