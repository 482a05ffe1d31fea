// Gpt2Config: the architecture and regularisation hyperparameters of a GPT-2 sequence classifier,
// named and defaulted as Hugging Face's GPT2Config (config.json keys n_layer, n_embd, n_head,
// n_positions, vocab_size, layer_norm_epsilon, activation_function, initializer_range, resid_pdrop,
// embd_pdrop, attn_pdrop, num_labels, pad_token_id). A plain value type: copy it freely; no state,
// thread-compatible.
//
// formats/hf_config.h (the checkpoint loader's view of config.json) carries the same fields;
// ApplyHfGpt2Config() in core/hf_config.h maps them onto this struct in one function, so this
// struct stays free of JSON. The size limits are formats/gpt2_limits.h's, shared with that reader.
#pragma once

#include <cstdint>
#include <string>

#include "formats/gpt2_limits.h"

namespace hpsearch::core {

struct Gpt2Config {
  // Transformer blocks. GPT-2 small 12, DialoGPT-medium 24.
  int64_t n_layer = 12;
  // Hidden width; must be divisible by n_head.
  int64_t n_embd = 768;
  // Attention heads per block.
  int64_t n_head = 12;
  // Rows of the learned position table: the longest sequence the model accepts.
  int64_t n_positions = 1024;
  // Rows of the token embedding table.
  int64_t vocab_size = 50257;
  // Epsilon of every LayerNorm (ln_1, ln_2, ln_f).
  double layer_norm_epsilon = 1e-5;
  // MLP activation. Only "gelu_new" (GELU, tanh approximation) is implemented; anything else is
  // refused.
  std::string activation = "gelu_new";
  // Standard deviation of the normal init of weights and embeddings.
  double initializer_range = 0.02;
  // Dropout after the attention and MLP output projections.
  double resid_pdrop = 0.1;
  // Dropout on token + position embeddings.
  double embd_pdrop = 0.1;
  // Dropout on the attention probabilities.
  double attn_pdrop = 0.1;
  // Classes of the sequence-classification head (Banking77: 77).
  int64_t num_labels = 2;
  // Token id used for padding; GPT-2 has no pad token and reuses eos (50256).
  int64_t pad_token_id = 50256;
  // How attention is computed, named as Hugging Face's attn_implementation: "eager" (explicit
  // scores, softmax, weighted sum; bit-compatible with Hugging Face's eager path) or "sdpa"
  // (LibTorch's fused scaled_dot_product_attention with the same additive mask; needs LibTorch
  // 2.0 or later, refused with kUnsupported on older builds).
  std::string attn_implementation = "eager";
};

// Throws core::Error naming the first field that is out of range: kInvalidArgument for non-positive
// sizes or sizes past the limits above, n_embd not divisible by n_head, a dropout rate outside [0,
// 1); kUnsupported for an activation other than "gelu_new".
void ValidateGpt2Config(const Gpt2Config& config);

}  // namespace hpsearch::core
