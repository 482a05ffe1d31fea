// HfGpt2Config: the architecture and head settings of a Hugging Face GPT-2-family checkpoint,
// parsed from its config.json. It covers both the Hugging Face layout (n_positions,
// activation_function, id2label, ...) and the older OpenAI / DialoGPT layout (n_ctx, no
// activation_function). A value type: copy freely; the parse functions are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/gpt2_limits.h"

namespace hpsearch::formats {

struct HfGpt2Config {
  // Architecture. Required in config.json (no silent defaults: a wrong width would only surface
  // later as a shape mismatch deep in the loader).
  int64_t n_layer = 0;
  int64_t n_embd = 0;
  int64_t n_head = 0;
  int64_t n_positions = 0;  // "n_positions", or the older "n_ctx" when n_positions is absent
  int64_t vocab_size = 0;
  // Width of the MLP's hidden layer; config.json's "n_inner" (null or absent means 4 * n_embd).
  int64_t n_inner = 0;

  // Numerics. Defaults are Hugging Face GPT2Config's.
  double layer_norm_epsilon = 1e-5;
  std::string activation_function = "gelu_new";  // one of KnownGpt2Activations()
  double initializer_range = 0.02;
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;
  bool reorder_and_upcast_attn = false;

  // Dropout probabilities, each in [0, 1).
  double resid_pdrop = 0.1;
  double embd_pdrop = 0.1;
  double attn_pdrop = 0.1;

  // Sequence-classification head. num_labels is the number of id2label entries when id2label is
  // present, else "num_labels", else 2 (Hugging Face's default). id2label is empty when config.json
  // has none; otherwise id2label[i] is the label of class i.
  int64_t num_labels = 2;
  std::vector<std::string> id2label;

  std::optional<int64_t> pad_token_id;
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> eos_token_id;

  int64_t head_dim() const { return n_embd / n_head; }
};

// The activation_function names Hugging Face's GPT-2 accepts.
const std::vector<std::string>& KnownGpt2Activations();

// Parses a config.json object. `source` names the file in error messages.
// Throws formats::Error (kInvalidArgument) naming `source` and the key when a required key is
// missing, a value has the wrong JSON type or is out of range (non-positive sizes, n_embd not
// divisible by n_head, dropout outside [0, 1), unknown activation, id2label not covering 0..n-1,
// num_labels disagreeing with id2label), and kUnsupported when "model_type" is present and is not
// "gpt2".
HfGpt2Config ParseHfGpt2Config(const nlohmann::json& json, const std::string& source);

// Reads and parses `path`. Throws formats::Error: kNotFound when the file is missing, kIo when it
// cannot be read, kInvalidArgument when it is not valid JSON (with the parser's position), then as
// ParseHfGpt2Config.
HfGpt2Config LoadHfGpt2Config(const std::filesystem::path& path);

}  // namespace hpsearch::formats
