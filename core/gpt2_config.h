// Gpt2Config: the architecture and regularisation hyperparameters of a GPT-2 sequence classifier,
// named and defaulted as Hugging Face's GPT2Config (config.json keys n_layer, n_embd, n_head,
// n_positions, vocab_size, layer_norm_epsilon, activation_function, initializer_range, resid_pdrop,
// embd_pdrop, attn_pdrop, num_labels, pad_token_id). A plain value type: copy it freely; no state,
// thread-compatible.
//
// core/hf_config.h (the checkpoint loader's view of config.json) carries the same fields and maps
// them onto this struct in one function, ApplyHfGpt2Config(), so this struct stays free of JSON.
#pragma once

#include <cstdint>
#include <string>

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

// Limits on a model's shape, far above any GPT-2-family checkpoint (GPT-2 XL: 48 layers, 1600 wide,
// 25 heads, 1024 positions, 50257 tokens). A config beyond them is corrupt or hostile; it is
// refused before anything is allocated, rather than aborting the process on an allocation of
// petabytes.
inline constexpr int64_t kMaxGpt2Layers = 1024;
inline constexpr int64_t kMaxGpt2Width = 65536;
inline constexpr int64_t kMaxGpt2Heads = 1024;
inline constexpr int64_t kMaxGpt2Positions = int64_t{1} << 20;
inline constexpr int64_t kMaxGpt2Vocabulary = int64_t{1} << 24;
inline constexpr int64_t kMaxGpt2Labels = int64_t{1} << 20;
// 137 billion: twice the largest model a 141 GB GPU could hold in 4-bit.
inline constexpr int64_t kMaxGpt2Parameters = int64_t{1} << 37;

// Throws core::Error(kInvalidArgument) naming `source` and the field when a size is past the limits
// above or the whole model would have more than kMaxGpt2Parameters parameters. Sizes must already
// be positive.
void CheckGpt2ShapeLimits(const std::string& source, int64_t n_layer, int64_t n_embd,
                          int64_t n_head, int64_t n_positions, int64_t vocab_size,
                          int64_t num_labels);

// Throws core::Error naming the first field that is out of range: kInvalidArgument for non-positive
// sizes or sizes past the limits above, n_embd not divisible by n_head, a dropout rate outside [0,
// 1); kUnsupported for an activation other than "gelu_new".
void ValidateGpt2Config(const Gpt2Config& config);

}  // namespace hpsearch::core
