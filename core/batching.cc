#include "core/batching.h"

#include <algorithm>

#include <ATen/ops/empty.h>

#include "core/error.h"
#include "core/seeded_rng.h"

namespace hpsearch::core {
namespace {

std::vector<std::vector<int64_t>> Chunk(const std::vector<int64_t>& order, int64_t batch_size) {
  std::vector<std::vector<int64_t>> batches;
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(order.size(), start + static_cast<size_t>(batch_size));
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(start),
                         order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return batches;
}

// Longest first; stable so equal lengths keep their (random or file) order.
void SortByLengthDescending(const TokenizedDataset& dataset, std::vector<int64_t>::iterator begin,
                            std::vector<int64_t>::iterator end) {
  std::stable_sort(begin, end, [&](int64_t a, int64_t b) {
    return dataset.examples[static_cast<size_t>(a)].ids.size() >
           dataset.examples[static_cast<size_t>(b)].ids.size();
  });
}

}  // namespace

int64_t TokenizedDataset::TotalTokens() const {
  int64_t total = 0;
  for (const TokenizedExample& example : examples)
    total += static_cast<int64_t>(example.ids.size());
  return total;
}

int64_t TokenizedDataset::NumTruncated() const {
  return std::count_if(examples.begin(), examples.end(), [&](const TokenizedExample& example) {
    return example.untruncated_length > max_length;
  });
}

TokenizedDataset TokenizeDataset(const formats::LabelledDataset& dataset, const EncodeFn& encode,
                                 const formats::DataOptions& options) {
  if (options.max_length < 1) {
    Fail(ErrorCode::kInvalidArgument,
         "max_length must be at least 1, got " + std::to_string(options.max_length));
  }
  TokenizedDataset tokenized;
  tokenized.source = dataset.source;
  tokenized.num_classes = dataset.labels.size();
  tokenized.max_length = options.max_length;
  tokenized.pad_token_id = options.pad_token_id;
  tokenized.examples.reserve(dataset.examples.size());
  for (const formats::LabelledExample& example : dataset.examples) {
    TokenizedExample out;
    out.ids = encode(example.text);
    out.label = example.label;
    out.line = example.line;
    out.untruncated_length = static_cast<int64_t>(out.ids.size());
    const std::string where = dataset.source + ":" + std::to_string(example.line) + ": ";
    if (out.ids.empty()) {
      Fail(ErrorCode::kDataLoss,
           where + "text encodes to no tokens; remove the record or give it a non-empty text");
    }
    for (int32_t id : out.ids) {
      if (id < 0) {
        Fail(ErrorCode::kInvalidArgument,
             where + "the encoder returned negative token id " + std::to_string(id));
      }
    }
    if (out.untruncated_length > options.max_length) {
      out.ids.resize(static_cast<size_t>(options.max_length));
    }
    tokenized.examples.push_back(std::move(out));
  }
  return tokenized;
}

std::vector<std::vector<int64_t>> PlanBatches(const TokenizedDataset& dataset,
                                              const BatchOptions& options, int64_t epoch) {
  if (options.batch_size < 1 || options.length_group_batches < 1) {
    Fail(ErrorCode::kInvalidArgument,
         "batch_size and length_group_batches must be at least 1, got " +
             std::to_string(options.batch_size) + " and " +
             std::to_string(options.length_group_batches));
  }
  if (dataset.size() == 0)
    Fail(ErrorCode::kInvalidArgument, dataset.source + ": no examples to batch");
  if (epoch < 0)
    Fail(ErrorCode::kInvalidArgument, "epoch must be >= 0, got " + std::to_string(epoch));
  std::vector<int64_t> order(static_cast<size_t>(dataset.size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  if (!options.shuffle) {
    if (options.group_by_length) SortByLengthDescending(dataset, order.begin(), order.end());
    return Chunk(order, options.batch_size);
  }
  SeededRng rng(MixSeed(options.seed, static_cast<uint64_t>(epoch)));
  rng.Shuffle(order);
  if (!options.group_by_length) return Chunk(order, options.batch_size);
  const size_t group = static_cast<size_t>(options.batch_size * options.length_group_batches);
  for (size_t start = 0; start < order.size(); start += group) {
    const size_t end = std::min(order.size(), start + group);
    SortByLengthDescending(dataset, order.begin() + static_cast<std::ptrdiff_t>(start),
                           order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  std::vector<std::vector<int64_t>> batches = Chunk(order, options.batch_size);
  rng.Shuffle(batches);
  return batches;
}

int64_t PaddedWidth(const TokenizedDataset& dataset, int64_t longest,
                    const PaddingOptions& padding) {
  for (int64_t bucket : padding.length_buckets) {
    if (bucket < longest) continue;
    return dataset.max_length > 0 ? std::max(longest, std::min(bucket, dataset.max_length))
                                  : bucket;
  }
  return longest;
}

TokenBatch CollateBatch(const TokenizedDataset& dataset,
                        const std::vector<int64_t>& example_indices,
                        const PaddingOptions& padding) {
  if (example_indices.empty()) {
    Fail(ErrorCode::kInvalidArgument, dataset.source + ": cannot collate an empty batch");
  }
  for (size_t i = 0; i < padding.length_buckets.size(); ++i) {
    if (padding.length_buckets[i] < 1 ||
        (i > 0 && padding.length_buckets[i] <= padding.length_buckets[i - 1])) {
      Fail(ErrorCode::kInvalidArgument, "length buckets must be ascending and at least 1; bucket " +
                                            std::to_string(i) + " is " +
                                            std::to_string(padding.length_buckets[i]));
    }
  }
  const int64_t examples = static_cast<int64_t>(example_indices.size());
  if (padding.rows != 0 && padding.rows < examples) {
    Fail(ErrorCode::kInvalidArgument, "cannot pad a batch of " + std::to_string(examples) +
                                          " examples to " + std::to_string(padding.rows) + " rows");
  }
  size_t longest = 0;
  for (int64_t index : example_indices) {
    if (index < 0 || index >= dataset.size()) {
      Fail(ErrorCode::kInvalidArgument, dataset.source + ": example index " +
                                            std::to_string(index) + " is out of range [0, " +
                                            std::to_string(dataset.size()) + ")");
    }
    longest = std::max(longest, dataset.examples[static_cast<size_t>(index)].ids.size());
  }
  const int64_t rows = std::max(examples, padding.rows);
  const int64_t width = PaddedWidth(dataset, static_cast<int64_t>(longest), padding);
  TokenBatch batch;
  batch.input_ids = at::empty({rows, width}, at::kLong);
  batch.attention_mask = at::empty({rows, width}, at::kLong);
  batch.labels = at::empty({rows}, at::kLong);
  batch.last_token_index = at::empty({rows}, at::kLong);
  batch.example_indices = example_indices;
  int64_t* ids = batch.input_ids.data_ptr<int64_t>();
  int64_t* mask = batch.attention_mask.data_ptr<int64_t>();
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  int64_t* last = batch.last_token_index.data_ptr<int64_t>();
  for (int64_t row = 0; row < rows; ++row) {
    // A padding row is one attended pad token: no attention row is fully masked.
    const bool real_row = row < examples;
    const TokenizedExample* example =
        real_row ? &dataset.examples[static_cast<size_t>(example_indices[row])] : nullptr;
    const int64_t length = real_row ? static_cast<int64_t>(example->ids.size()) : 1;
    for (int64_t t = 0; t < width; ++t) {
      const bool token = t < length;
      ids[row * width + t] =
          token && real_row ? example->ids[static_cast<size_t>(t)] : dataset.pad_token_id;
      mask[row * width + t] = token ? 1 : 0;
    }
    labels[row] = real_row ? example->label : kIgnoredLabel;
    last[row] = length - 1;
    if (real_row) batch.num_tokens += length;
  }
  return batch;
}

}  // namespace hpsearch::core
