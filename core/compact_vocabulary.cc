#include "core/compact_vocabulary.h"

#include <ATen/ATen.h>

#include <string>

#include "core/error.h"

namespace hpsearch::core {

CompactVocabulary::CompactVocabulary(const TokenizedDataset& train,
                                     const std::vector<int32_t>& always, int64_t full_vocab_size)
    : to_compact_(static_cast<size_t>(full_vocab_size), kUnkId) {
  std::vector<bool> used(static_cast<size_t>(full_vocab_size), false);
  auto mark = [&](int32_t id, const std::string& where) {
    if (id < 0 || id >= full_vocab_size) {
      Fail(ErrorCode::kInvalidArgument, where + ": token id " + std::to_string(id) +
                                            " is outside the vocabulary of " +
                                            std::to_string(full_vocab_size));
    }
    used[static_cast<size_t>(id)] = true;
  };
  for (int32_t id : always) mark(id, "compact vocabulary");
  for (const TokenizedExample& example : train.examples) {
    for (int32_t id : example.ids) mark(id, train.source + " line " + std::to_string(example.line));
  }
  original_ids_.push_back(-1);  // kUnkId
  for (int64_t id = 0; id < full_vocab_size; ++id) {
    if (!used[static_cast<size_t>(id)]) continue;
    to_compact_[static_cast<size_t>(id)] = static_cast<int32_t>(original_ids_.size());
    original_ids_.push_back(static_cast<int32_t>(id));
  }
}

void CompactVocabulary::Apply(TokenizedDataset* dataset) const {
  for (TokenizedExample& example : dataset->examples) {
    for (int32_t& id : example.ids) id = ToCompact(id);
  }
  dataset->pad_token_id = ToCompact(static_cast<int32_t>(dataset->pad_token_id));
}

at::Tensor CompactVocabulary::ExpandEmbedding(const at::Tensor& compact) const {
  if (compact.dim() != 2 || compact.size(0) != size()) {
    Fail(ErrorCode::kInvalidArgument, "ExpandEmbedding: expected a [" + std::to_string(size()) +
                                          ", width] embedding over the compact vocabulary, got " +
                                          std::to_string(compact.dim() >= 1 ? compact.size(0) : 0) +
                                          " rows");
  }
  const at::Tensor rows = at::tensor(to_compact_, at::kInt).to(at::kLong).to(compact.device());
  return compact.index_select(0, rows);
}

}  // namespace hpsearch::core
