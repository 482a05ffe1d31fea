// ApplyHfGpt2Config: the one mapping of a checkpoint's config.json (read by formats/hf_config.h,
// below core/ so that the study validator reads it the same way without LibTorch) onto the model's
// Gpt2Config. Thread-safe (a pure function).
#pragma once

#include <string>

#include "core/gpt2_config.h"
#include "formats/hf_config.h"

namespace hpsearch::core {

// The one mapping of a checkpoint's config.json onto the model's Gpt2Config: sets the architecture
// and numerics (n_layer, n_embd, n_head, n_positions, vocab_size, layer_norm_epsilon, activation,
// initializer_range and the three dropout rates) and leaves the head and run settings (num_labels,
// pad_token_id, attn_implementation) as the caller set them. Throws core::Error(kUnsupported)
// naming `source` for what the model cannot run (n_inner other than 4 x n_embd, an activation other
// than gelu_new).
void ApplyHfGpt2Config(const formats::HfGpt2Config& hf, const std::string& source,
                       Gpt2Config* config);

}  // namespace hpsearch::core
