// Gpt2Model: the GPT-2 transformer as Hugging Face's GPT2Model computes it (eager attention, no KV
// cache): token embedding (wte) + learned position embedding (wpe, positions 0..T-1) → dropout
// (embd_pdrop) → n_layer pre-LayerNorm blocks under a causal mask combined with the padding mask →
// final LayerNorm (ln_f).
//
// Submodules and parameter names match Hugging Face's without the "transformer." prefix: "wte",
// "wpe", "h.<i>.{ln_1,attn.c_attn,attn.c_proj,ln_2,mlp.c_fc,mlp.c_proj}", "ln_f". The linear layers
// are LoraLinear with dense [out, in] weights; Hugging Face's Conv1D checkpoints store [in, out]
// and LoadHfWeights / HfWeights transpose at that boundary.
//
// Initialisation follows GPT-2's: normal(0, initializer_range) for embeddings and linear weights,
// the output projections (c_proj) with initializer_range / sqrt(2 n_layer), zero biases, LayerNorm
// weight 1 / bias 0 — drawn from the generator the constructor is given, never from the global one.
//
// Gradient checkpointing (off by default) recomputes each block in backward
// (core/grad_checkpoint.h); it only takes effect in training mode with grad enabled, as in Hugging
// Face.
//
// Thread-safety: as any torch::nn::Module.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <map>
#include <string>
#include <vector>

#include "core/fine_tuning.h"
#include "core/gpt2_block.h"
#include "core/gpt2_config.h"

namespace hpsearch::core {

class Gpt2ModelImpl : public torch::nn::Module {
 public:
  // Builds and initialises the transformer; parameters train as `fine_tuning` says (full: all;
  // lora/qlora: adapters only). Throws core::Error(kInvalidArgument) for an invalid config or
  // fine-tuning options.
  Gpt2ModelImpl(const Gpt2Config& config, const FineTuningOptions& fine_tuning,
                at::Generator generator);

  // input_ids: [B, T] int64 token ids, T <= n_positions. attention_mask: [B, T], nonzero = token, 0
  // = padding (any dtype), or undefined for no padding. Padding positions are masked as keys; their
  // own outputs are computed but meaningless. Returns the final hidden states [B, T, n_embd] after
  // ln_f.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);

  // Copies pretrained weights named as Hugging Face's GPT2Model state dict without "transformer."
  // (e.g. "h.0.attn.c_attn.weight", Conv1D weights [in, out]); any dtype, converted to the
  // parameters' dtype and device. Strict: throws core::Error listing every missing tensor
  // (kNotFound), every unexpected name or wrong shape (kInvalidArgument). Ignored, as Hugging Face
  // ignores them: the causal-mask buffers "h.<i>.attn.bias" and "h.<i>.attn.masked_bias" older
  // checkpoints carry, and "lm_head.weight" (tied to wte in the LM model). REQUIRES: the base
  // weights are still dense (load before ReplaceFrozenBaseWeights).
  void LoadHfWeights(const std::map<std::string, torch::Tensor>& weights);

  // The inverse of LoadHfWeights: every base tensor under its Hugging Face name and orientation, as
  // detached float tensors on the model's device that may share storage with the parameters (clone
  // before writing to them); frozen quantised bases are materialised. Adapters are not included.
  std::map<std::string, torch::Tensor> HfWeights() const;

  void set_gradient_checkpointing(bool enabled) { gradient_checkpointing_ = enabled; }
  // Mixed precision: every linear layer of the blocks computes in `dtype` (core/lora_linear.h);
  // the residual stream, wpe and the LayerNorms stay in the parameters' dtype (float32). A frozen
  // wte (lora, qlora) is stored in `dtype` when that is bfloat16 or float16 (the rows it gives are
  // added to the float32 stream) and in float32 otherwise; going back to float32 does not restore
  // the precision given up. Undefined restores the default (compute in the input's dtype).
  // REQUIRES: called before pretrained weights are loaded (the constructor's caller does), so that
  // the checkpoint's values are rounded once.
  void set_compute_dtype(c10::ScalarType dtype);
  c10::ScalarType compute_dtype() const { return compute_dtype_; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }
  const Gpt2Config& config() const { return config_; }
  const std::vector<Gpt2Block>& blocks() const { return blocks_; }

  torch::nn::Embedding wte{nullptr};
  torch::nn::Embedding wpe{nullptr};
  torch::nn::ModuleList h{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};

 private:
  Gpt2Config config_;
  std::vector<Gpt2Block> blocks_;
  bool gradient_checkpointing_ = false;
  c10::ScalarType compute_dtype_ = c10::ScalarType::Undefined;
};

TORCH_MODULE(Gpt2Model);

// The additive attention bias [B, 1, T, T] in `dtype` on `device`: 0 where query i may attend to
// key j (j <= i and key j is not padding), the dtype's lowest finite value elsewhere — Hugging
// Face's finfo.min convention, applied once rather than summed, so it never overflows to -inf and a
// fully masked row stays finite. attention_mask: [B, T] (nonzero = token) or undefined for no
// padding. REQUIRES: dtype is a floating type (float, double, half, bfloat16).
torch::Tensor Gpt2AttentionBias(const torch::Tensor& attention_mask, int64_t batch, int64_t seq,
                                c10::ScalarType dtype, c10::Device device);

}  // namespace hpsearch::core
