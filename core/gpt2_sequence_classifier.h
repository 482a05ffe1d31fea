// Gpt2ForSequenceClassification: Hugging Face's GPT2ForSequenceClassification — the GPT-2
// transformer
// ("transformer", a Gpt2Model) and a bias-free linear head ("score", [num_labels, n_embd]) applied
// to the final hidden state of each row's last real token. No dropout on the head, as in Hugging
// Face.
//
// Which token is "last": Hugging Face derives it from input_ids — the first position equal to
// pad_token_id, minus one, wrapping to T - 1 when a row has no pad — which goes wrong when a text
// itself contains the pad id (GPT-2 reuses eos as pad). Here the caller passes the index
// explicitly; LastTokenIndexFromAttentionMask computes it from the attention mask of right-padded
// rows (the usual case), LastTokenIndexFromInputIds reproduces Hugging Face's rule for
// cross-checks.
//
// Parameter names ("transformer.h.0.attn.c_attn.weight", "score.weight", ".lora_A", ".lora_B") are
// what core/peft_state.h maps to PEFT's names. Everything is registered and initialised in the
// constructor from options.seed. Thread-safety: as any torch::nn::Module.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <map>
#include <string>

#include "core/fine_tuning.h"
#include "core/gpt2_config.h"
#include "core/gpt2_model.h"
#include "core/lora_linear.h"

namespace hpsearch::core {

struct Gpt2ForSequenceClassificationOptions {
  // Architecture and dropout rates.
  Gpt2Config config;
  // Which weights train and where adapters sit (default: LoRA r 8 on c_attn, PEFT's GPT-2 default).
  FineTuningOptions fine_tuning;
  // Seed of the CPU generator every initial weight is drawn from; the same seed gives the same
  // model.
  uint64_t seed = 0;
  // Recompute each block in backward instead of keeping its activations (less memory, ~1/3 more
  // compute).
  bool gradient_checkpointing = false;
  // Mixed precision. Undefined or float32: everything in float32 (the default; bit-compatible with
  // Hugging Face's float32 model). bfloat16 (float16 likewise): the transformer's linear layers
  // compute in it with float32 master weights (LoRA, score) and float32 LayerNorms, embeddings and
  // residual stream; the head reads the float32 ln_f output and returns float32 logits. This is
  // QLoRA's bnb_4bit_compute_dtype=bfloat16 with PEFT's float32 adapters.
  c10::ScalarType compute_dtype = c10::ScalarType::Undefined;
};

class Gpt2ForSequenceClassificationImpl : public torch::nn::Module {
 public:
  // Throws core::Error(kInvalidArgument) for invalid options, including a target module that names
  // no layer.
  explicit Gpt2ForSequenceClassificationImpl(const Gpt2ForSequenceClassificationOptions& options);

  // input_ids [B, T] int64; attention_mask [B, T] (nonzero = token) or undefined; last_token_index
  // [B] int64, each in [0, T). Returns logits [B, num_labels].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const torch::Tensor& last_token_index);

  // Loads pretrained weights by Hugging Face name without "transformer." (see
  // Gpt2ModelImpl::LoadHfWeights), plus "score.weight" [num_labels, n_embd] when present (a
  // classifier checkpoint); without it the head keeps its fresh initialisation, as Hugging Face
  // does for a language-model checkpoint.
  void LoadHfWeights(const std::map<std::string, torch::Tensor>& weights);

  // Gpt2ModelImpl::HfWeights plus "score.weight".
  std::map<std::string, torch::Tensor> HfWeights() const;

  const Gpt2ForSequenceClassificationOptions& options() const { return options_; }

  Gpt2Model transformer{nullptr};
  LoraLinear score{nullptr};

 private:
  Gpt2ForSequenceClassificationOptions options_;
};

TORCH_MODULE(Gpt2ForSequenceClassification);

// attention_mask [B, T] of right-padded rows → [B] int64 index of each row's last token (number of
// tokens - 1). REQUIRES: every row has at least one token and its tokens come first (throws
// kInvalidArgument for an empty row; left padding is not detected).
torch::Tensor LastTokenIndexFromAttentionMask(const torch::Tensor& attention_mask);

// Hugging Face's rule: (index of the first pad_token_id in the row) - 1, modulo T.
torch::Tensor LastTokenIndexFromInputIds(const torch::Tensor& input_ids, int64_t pad_token_id);

// Mean cross-entropy of logits [B, num_labels] against labels [B] int64 (Hugging Face's
// single-label loss). Rows labelled -100 (kIgnoredLabel, static-shape padding) are left out of the
// mean and get no gradient, as in Hugging Face.
torch::Tensor SequenceClassificationLoss(const torch::Tensor& logits, const torch::Tensor& labels);

}  // namespace hpsearch::core
