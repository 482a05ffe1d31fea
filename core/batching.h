// Tokenised examples and the batches fed to the model.
//
// TokenizeDataset turns a LabelledDataset into token ids with a caller-supplied encoder (the GPT-2
// BPE tokenizer in production, anything in tests), cutting each text to its first
// DataOptions::max_length tokens. PlanBatches decides which examples form each batch of an epoch;
// CollateBatch builds the tensors of one batch with dynamic padding: T is the longest (truncated)
// text of that batch, rows are right-padded with pad_token_id, attention_mask is 1 on real tokens
// and 0 on padding, and last_token_index is the position of each row's last real token (where GPT-2
// sequence classification reads its logits). With PaddingOptions, CollateBatch pads to static
// shapes instead: T rounded up to a length bucket and the rows filled up to a fixed count with
// zero-weight rows (see PaddingOptions), so that a training step has one of a few shapes (what a
// CUDA graph needs) and computes the same loss and gradients as the dynamically padded batch.
//
// Order: training (BatchOptions::shuffle) draws a fresh permutation each epoch from MixSeed(seed,
// epoch), so epochs differ and a resumed run replays the same order; evaluation keeps file order.
// With group_by_length, the shuffled order is cut into mega-batches of length_group_batches *
// batch_size examples, each sorted longest first and cut into batches, and the batches are then
// shuffled, so batches hold texts of similar length (less padding) and still come in random order;
// in evaluation, all examples are sorted longest first. Every example appears in exactly one batch
// per epoch; at most one batch is short (the last, unless length grouping shuffled it elsewhere).
//
// Ownership: plain values; tensors are freshly allocated CPU tensors owned by the batch.
// Thread-safety: free functions; safe to call concurrently on the same const TokenizedDataset.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <ATen/core/Tensor.h>

#include "formats/data_options.h"
#include "formats/dataset.h"

namespace hpsearch::core {

// Text -> token ids, without special tokens. Must be deterministic.
using EncodeFn = std::function<std::vector<int32_t>(std::string_view)>;

struct TokenizedExample {
  std::vector<int32_t> ids;        // at most max_length ids, never empty
  int64_t label = 0;               // class id
  int64_t line = 0;                // 1-based line of the source file (for messages)
  int64_t untruncated_length = 0;  // tokens before truncation
};

struct TokenizedDataset {
  std::string source;        // file path, for messages
  int64_t num_classes = 0;   // size of the label set
  int64_t max_length = 0;    // formats::DataOptions::max_length the ids were cut to
  int64_t pad_token_id = 0;  // formats::DataOptions::pad_token_id written into padding
  std::vector<TokenizedExample> examples;

  int64_t size() const { return static_cast<int64_t>(examples.size()); }

  // Tokens one pass over the data feeds to the model (sum of truncated lengths; padding excluded).
  int64_t TotalTokens() const;

  // Examples whose text had more than max_length tokens.
  int64_t NumTruncated() const;
};

// Encodes every example of `dataset`. Throws kDataLoss naming file and line for a text that encodes
// to no tokens, kInvalidArgument for a negative token id or options.max_length < 1.
TokenizedDataset TokenizeDataset(const formats::LabelledDataset& dataset, const EncodeFn& encode,
                                 const formats::DataOptions& options);

struct BatchOptions {
  // Examples per batch (the last batch of an epoch may hold fewer). Must be >= 1.
  int64_t batch_size = 8;

  // true for training (new seeded order every epoch), false for evaluation (file order).
  bool shuffle = true;

  // Seed of the training order; combined with the epoch index by MixSeed.
  uint64_t seed = 42;

  // Group texts of similar length into batches to cut padding (see the header comment). Off by
  // default: the reference runs batch in plain random order.
  bool group_by_length = false;

  // Mega-batch size, in batches, within which group_by_length sorts by length: larger groups pad
  // less but make batches less random. 50 is Hugging Face's LengthGroupedSampler default. Must be
  // >= 1.
  int64_t length_group_batches = 50;
};

// The example indices of each batch of epoch `epoch` (0-based), in the order they are fed.
// REQUIRES: dataset.size() > 0, epoch >= 0.
std::vector<std::vector<int64_t>> PlanBatches(const TokenizedDataset& dataset,
                                              const BatchOptions& options, int64_t epoch);

// The label of a zero-weight padding row: cross-entropy's default ignore_index, so a mean-reduced
// loss (SequenceClassificationLoss) averages over the real rows only and gives padding rows no
// gradient.
inline constexpr int64_t kIgnoredLabel = -100;

// How CollateBatch pads. The default is dynamic padding: T = the batch's longest text, one row per
// example.
struct PaddingOptions {
  // Widths a batch may take, ascending, each >= 1: T is the smallest bucket that holds the batch's
  // longest text, capped at the dataset's max_length (no text is longer, so a bucket beyond it
  // would only add padding). A batch longer than every bucket keeps its own width. Empty: dynamic
  // padding.
  std::vector<int64_t> length_buckets;

  // Rows every batch is filled up to (0: one row per example). The added rows are zero-weight:
  // input pad_token_id, attention_mask 1 on position 0 only (one attended token keeps every
  // attention implementation finite on them), last_token_index 0 and label kIgnoredLabel. GPT-2
  // computes each row independently, so they change nothing in the real rows. Must be 0 or >= the
  // batch's examples.
  int64_t rows = 0;
};

// The static-shape length buckets for Banking77 under GPT-2's tokenizer, chosen from its length
// distribution (docs/gpu-kernels.md, "Static shapes"): six widths, multiples of 8; random batches
// of 8 then hold 1.21 times the token slots of dynamic padding (128 alone: 4.35 times).
inline const std::vector<int64_t>& Banking77LengthBuckets() {
  static const std::vector<int64_t> kBuckets = {16, 24, 32, 48, 64, 128};
  return kBuckets;
}

// One batch, all tensors int64 on the CPU. B = example_indices.size() (or PaddingOptions::rows),
// T = longest row of the batch (or its length bucket).
struct TokenBatch {
  at::Tensor input_ids;                  // [B, T]; pad_token_id after each row's tokens
  at::Tensor attention_mask;             // [B, T]; 1 on tokens, 0 on padding
  at::Tensor labels;                     // [B]; class ids (kIgnoredLabel on padding rows)
  at::Tensor last_token_index;           // [B]; index of each row's last real token (length - 1)
  std::vector<int64_t> example_indices;  // which dataset examples the rows are, row order; the
                                         // padding rows, last, are not listed
  int64_t num_tokens = 0;                // real tokens in the batch (padding rows excluded)
};

// Builds the tensors for the examples at `example_indices`, padded as `padding` says.
// REQUIRES: example_indices non-empty, each in [0, dataset.size()); padding as documented there.
TokenBatch CollateBatch(const TokenizedDataset& dataset,
                        const std::vector<int64_t>& example_indices,
                        const PaddingOptions& padding = {});

// The width CollateBatch gives a batch whose longest text has `longest` tokens.
int64_t PaddedWidth(const TokenizedDataset& dataset, int64_t longest,
                    const PaddingOptions& padding);

}  // namespace hpsearch::core
