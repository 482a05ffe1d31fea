// Shared fixtures of the GPT-2 model tests: a tiny configuration and a seeded batch. Header-only.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdint>

#include "core/gpt2_config.h"
#include "core/gpt2_sequence_classifier.h"

namespace hpsearch::testing {

// 2 layers x 32 wide, 4 heads, vocabulary 128, 3 labels; token 127 pads. Dropout at GPT-2's 0.1.
inline core::Gpt2Config TinyConfig() {
  core::Gpt2Config config;
  config.n_layer = 2;
  config.n_embd = 32;
  config.n_head = 4;
  config.n_positions = 16;
  config.vocab_size = 128;
  config.num_labels = 3;
  config.pad_token_id = 127;
  return config;
}

inline core::Gpt2ForSequenceClassificationOptions TinyOptions(core::FineTuningMethod method,
                                                              uint64_t seed = 1) {
  core::Gpt2ForSequenceClassificationOptions options;
  options.config = TinyConfig();
  options.fine_tuning.method = method;
  options.seed = seed;
  return options;
}

// [batch, seq] token ids in [0, 127) (never the pad id), from a fixed seed.
inline at::Tensor RandomIds(int64_t batch, int64_t seq, uint64_t seed) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  return at::randint(0, 127, {batch, seq}, generator, at::kLong);
}

}  // namespace hpsearch::testing
