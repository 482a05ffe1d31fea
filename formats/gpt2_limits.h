// The size limits of a GPT-2-family model, checked wherever a shape is read from a file (a
// checkpoint's config.json, formats/hf_config.h) or set in code (core/gpt2_config.h), before
// anything is allocated. Thread-safety: constants and a pure function.
#pragma once

#include <cstdint>
#include <string>

namespace hpsearch::formats {

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

// Throws formats::Error(kInvalidArgument) naming `source` and the field when a size is past the
// limits above or the whole model would have more than kMaxGpt2Parameters parameters. Sizes must
// already be positive.
void CheckGpt2ShapeLimits(const std::string& source, int64_t n_layer, int64_t n_embd,
                          int64_t n_head, int64_t n_positions, int64_t vocab_size,
                          int64_t num_labels);

}  // namespace hpsearch::formats
