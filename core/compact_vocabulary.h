// CompactVocabulary: the token ids a training set uses, renumbered densely, so a randomly
// initialised model keeps embedding rows only for them. Banking77's 8,002 training texts use 2,836
// of GPT-2's 50,257 tokens; with the whole table every step would zero, clip and AdamW-update some
// 47,000 rows no text ever touches.
//
// Compact id 0 is the UNK id: every token outside the set (a validation, test or prediction text
// using a token no training text used) maps to it. Compact ids 1..size()-1 are, in ascending order
// of their original id, each id the training texts use and each id passed as `always` (the pad /
// end-of-text id). A model trained over compact ids is saved expanded back to the tokenizer's ids
// (ExpandEmbedding: every original id outside the set gets the UNK row), so the saved model,
// `hpsearch-core predict` and `hpsearch export` see an ordinary GPT-2 over the whole vocabulary
// that computes exactly what the compact model computed.
//
// Ownership: plain values. Thread-safety: const methods may be called concurrently.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "core/batching.h"

namespace hpsearch::core {

class CompactVocabulary {
 public:
  static constexpr int32_t kUnkId = 0;

  // The ids used by `train`'s (already truncated) examples, plus `always`. Throws
  // core::Error(kInvalidArgument) naming the id for an id outside [0, full_vocab_size).
  CompactVocabulary(const TokenizedDataset& train, const std::vector<int32_t>& always,
                    int64_t full_vocab_size);

  // Compact ids, UNK included: the embedding rows the model needs.
  int64_t size() const { return static_cast<int64_t>(original_ids_.size()); }
  // The tokenizer's vocabulary size the saved model is expanded to.
  int64_t full_vocab_size() const { return static_cast<int64_t>(to_compact_.size()); }

  // The compact id of original id `id`; kUnkId for an id outside the set (or outside the
  // vocabulary).
  int32_t ToCompact(int32_t id) const {
    return id >= 0 && id < static_cast<int32_t>(to_compact_.size()) ? to_compact_[id] : kUnkId;
  }
  // The original id of compact id `id`; -1 for kUnkId. REQUIRES: 0 <= id < size().
  int32_t ToOriginal(int32_t id) const { return original_ids_[static_cast<size_t>(id)]; }

  // Rewrites every example's ids and the dataset's pad_token_id to compact ids.
  void Apply(TokenizedDataset* dataset) const;

  // A compact embedding [size(), d] as the full table [full_vocab_size(), d]: row t is compact row
  // ToCompact(t). Same dtype and device. Throws core::Error(kInvalidArgument) for another row
  // count.
  at::Tensor ExpandEmbedding(const at::Tensor& compact) const;

 private:
  std::vector<int32_t> original_ids_;  // compact id -> original id; [kUnkId] = -1
  std::vector<int32_t> to_compact_;    // original id -> compact id (kUnkId outside the set)
};

}  // namespace hpsearch::core
