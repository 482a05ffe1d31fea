// Batched inference for the tools: logits of raw texts through a classifier, in input order, using
// the training path's own tokenisation, truncation and padding (core/batching.h). Eval mode, no
// gradients.
#pragma once

#include <string>
#include <vector>

#include "core/gpt2_sequence_classifier.h"
#include "core/tokenizer.h"

namespace hpsearch::core {

// Logits [texts.size(), num_labels] float32 on the CPU. Throws core::Error(kInvalidArgument) naming
// `source` (the texts' file) and the 1-based index of a text that tokenises to nothing, for a
// max_length below 1, and for a tokenizer with ids the model has no embedding for.
at::Tensor ClassifyTexts(Gpt2ForSequenceClassificationImpl& model, const Gpt2Tokenizer& tokenizer,
                         const std::vector<std::string>& texts, int64_t max_length,
                         int64_t batch_size, const std::string& source = "input");

}  // namespace hpsearch::core
