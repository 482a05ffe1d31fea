// Torch headers first: glog's CHECK would otherwise replace Catch2's.
#include "core/batching.h"

#include "core/catch_torch.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

using Catch::Matchers::Contains;

// One token per byte: lengths are easy to reason about.
std::vector<int32_t> EncodeBytes(std::string_view text) {
  std::vector<int32_t> ids;
  for (char c : text) ids.push_back(static_cast<unsigned char>(c));
  return ids;
}

// One token per whitespace-separated word (the word's length): a text of spaces has no tokens.
std::vector<int32_t> EncodeWords(std::string_view text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    const size_t start = i;
    while (i < text.size() && text[i] != ' ') ++i;
    if (i > start) ids.push_back(static_cast<int32_t>(i - start));
  }
  return ids;
}

formats::LabelledDataset SmallDataset() {
  formats::LabelledDataset data;
  data.source = "small.csv";
  data.labels = formats::LabelSet({"a", "b", "c"});
  data.examples = {{"hi", 0, 2}, {"hello", 1, 3}, {"x", 2, 4}, {"abcdefghij", 1, 5}, {"abc", 0, 7}};
  return data;
}

std::vector<int64_t> ToVector(const at::Tensor& t) {
  const at::Tensor flat = t.contiguous().view({-1});
  return std::vector<int64_t>(flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel());
}

TEST_CASE("CollateBatch pads right to the longest row and marks real tokens", "[core][batching]") {
  formats::DataOptions options;
  const TokenizedDataset data = TokenizeDataset(SmallDataset(), EncodeBytes, options);
  const TokenBatch batch = CollateBatch(data, {0, 1, 2});
  REQUIRE(batch.input_ids.sizes() == at::IntArrayRef({3, 5}));
  REQUIRE(batch.attention_mask.sizes() == at::IntArrayRef({3, 5}));
  REQUIRE(batch.labels.sizes() == at::IntArrayRef({3}));
  REQUIRE(batch.last_token_index.sizes() == at::IntArrayRef({3}));
  for (const at::Tensor* t :
       {&batch.input_ids, &batch.attention_mask, &batch.labels, &batch.last_token_index}) {
    REQUIRE(t->scalar_type() == at::kLong);
    REQUIRE(t->device().is_cpu());
  }
  const int64_t pad = 50256;
  REQUIRE(ToVector(batch.input_ids) == std::vector<int64_t>{'h', 'i', pad, pad, pad,  //
                                                            'h', 'e', 'l', 'l', 'o',  //
                                                            'x', pad, pad, pad, pad});
  REQUIRE(ToVector(batch.attention_mask) ==
          std::vector<int64_t>{1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0});
  REQUIRE(ToVector(batch.labels) == std::vector<int64_t>{0, 1, 2});
  REQUIRE(ToVector(batch.last_token_index) == std::vector<int64_t>{1, 4, 0});
  REQUIRE(batch.num_tokens == 8);
  REQUIRE(batch.num_tokens == batch.attention_mask.sum().item<int64_t>());
  REQUIRE(batch.example_indices == std::vector<int64_t>{0, 1, 2});
}

TEST_CASE("CollateBatch with static shapes pads to a bucket and fills rows with zero-weight rows",
          "[core][batching][static_shapes]") {
  formats::DataOptions options;
  options.max_length = 8;
  const TokenizedDataset data = TokenizeDataset(SmallDataset(), EncodeBytes, options);
  PaddingOptions padding;
  padding.length_buckets = {4, 16};
  padding.rows = 4;
  // Longest 5 ("hello"): bucket 16, capped at max_length 8; two padding rows.
  const TokenBatch batch = CollateBatch(data, {0, 1}, padding);
  REQUIRE(batch.input_ids.sizes() == at::IntArrayRef({4, 8}));
  const int64_t pad = 50256;
  REQUIRE(ToVector(batch.input_ids) ==
          std::vector<int64_t>{'h', 'i', pad, pad, pad, pad, pad, pad,                    //
                               'h', 'e', 'l', 'l', 'o', pad, pad, pad,                    //
                               pad, pad, pad, pad, pad, pad, pad, pad,                    //
                               pad, pad, pad, pad, pad, pad, pad, pad});                  //
  REQUIRE(ToVector(batch.attention_mask) == std::vector<int64_t>{1, 1, 0, 0, 0, 0, 0, 0,  //
                                                                 1, 1, 1, 1, 1, 0, 0, 0,  //
                                                                 1, 0, 0, 0, 0, 0, 0, 0,  //
                                                                 1, 0, 0, 0, 0, 0, 0, 0});
  REQUIRE(ToVector(batch.labels) == std::vector<int64_t>{0, 1, kIgnoredLabel, kIgnoredLabel});
  REQUIRE(ToVector(batch.last_token_index) == std::vector<int64_t>{1, 4, 0, 0});
  REQUIRE(batch.num_tokens == 7);
  REQUIRE(batch.example_indices == std::vector<int64_t>{0, 1});

  // Longest 3 fits the first bucket; a full batch gets no padding rows.
  padding.rows = 2;
  REQUIRE(CollateBatch(data, {2, 4}, padding).input_ids.sizes() == at::IntArrayRef({2, 4}));
  // Longer than every bucket: the batch keeps its own width.
  padding.length_buckets = {2};
  REQUIRE(CollateBatch(data, {0, 1}, padding).input_ids.sizes() == at::IntArrayRef({2, 5}));
  REQUIRE(PaddedWidth(data, 1, padding) == 2);
  REQUIRE(PaddedWidth(data, 3, {}) == 3);

  padding.rows = 1;
  REQUIRE_THROWS_AS(CollateBatch(data, {0, 1}, padding), Error);
  padding.rows = 0;
  padding.length_buckets = {8, 4};
  REQUIRE_THROWS_AS(CollateBatch(data, {0, 1}, padding), Error);
  padding.length_buckets = {0};
  REQUIRE_THROWS_AS(CollateBatch(data, {0, 1}, padding), Error);
}

TEST_CASE("TokenizeDataset truncates to max_length and honours the pad id", "[core][batching]") {
  formats::DataOptions options;
  options.max_length = 4;
  options.pad_token_id = 0;
  const TokenizedDataset data = TokenizeDataset(SmallDataset(), EncodeBytes, options);
  REQUIRE(data.examples[3].ids == std::vector<int32_t>{'a', 'b', 'c', 'd'});
  REQUIRE(data.examples[3].untruncated_length == 10);
  REQUIRE(data.NumTruncated() == 2);
  REQUIRE(data.TotalTokens() == 2 + 4 + 1 + 4 + 3);
  REQUIRE(data.num_classes == 3);
  const TokenBatch batch = CollateBatch(data, {2, 3});
  REQUIRE(batch.input_ids.size(1) == 4);
  REQUIRE(ToVector(batch.input_ids) == std::vector<int64_t>{'x', 0, 0, 0, 'a', 'b', 'c', 'd'});
  REQUIRE(ToVector(batch.last_token_index) == std::vector<int64_t>{0, 3});
  options.max_length = 0;
  REQUIRE_THROWS_AS(TokenizeDataset(SmallDataset(), EncodeBytes, options), Error);
}

TEST_CASE("TokenizeDataset names file and line of a text with no tokens", "[core][batching]") {
  formats::LabelledDataset data = SmallDataset();
  data.examples[4].text = "   ";
  try {
    TokenizeDataset(data, EncodeWords, formats::DataOptions());
    FAIL("no error");
  } catch (const Error& e) {
    REQUIRE(e.code() == ErrorCode::kDataLoss);
    REQUIRE_THAT(std::string(e.what()), Contains("small.csv:7: text encodes to no tokens"));
  }
}

TEST_CASE("PlanBatches keeps file order for evaluation", "[core][batching]") {
  const TokenizedDataset data =
      TokenizeDataset(SmallDataset(), EncodeBytes, formats::DataOptions());
  BatchOptions options;
  options.batch_size = 2;
  options.shuffle = false;
  const auto batches = PlanBatches(data, options, 3);
  REQUIRE(batches == std::vector<std::vector<int64_t>>{{0, 1}, {2, 3}, {4}});
  options.group_by_length = true;
  REQUIRE(PlanBatches(data, options, 0) == std::vector<std::vector<int64_t>>{{3, 1}, {4, 0}, {2}});
}

// Builds `n` examples with lengths 1..40 in a scrambled pattern.
TokenizedDataset VariedLengths(int64_t n) {
  formats::LabelledDataset data;
  data.source = "varied.csv";
  data.labels = formats::LabelSet({"a", "b"});
  for (int64_t i = 0; i < n; ++i) {
    data.examples.push_back(
        {std::string(static_cast<size_t>(1 + (i * 17) % 40), 'x'), i % 2, i + 2});
  }
  return TokenizeDataset(data, EncodeBytes, formats::DataOptions());
}

void RequireEachExampleOnce(const std::vector<std::vector<int64_t>>& batches, int64_t n,
                            int64_t batch_size) {
  std::vector<int64_t> seen;
  int64_t short_batches = 0;
  for (const auto& batch : batches) {
    REQUIRE(!batch.empty());
    REQUIRE(static_cast<int64_t>(batch.size()) <= batch_size);
    if (static_cast<int64_t>(batch.size()) < batch_size) ++short_batches;
    seen.insert(seen.end(), batch.begin(), batch.end());
  }
  REQUIRE(short_batches <= 1);
  std::sort(seen.begin(), seen.end());
  REQUIRE(static_cast<int64_t>(seen.size()) == n);
  for (int64_t i = 0; i < n; ++i) REQUIRE(seen[static_cast<size_t>(i)] == i);
}

TEST_CASE("PlanBatches shuffles per epoch, reproducibly", "[core][batching]") {
  const TokenizedDataset data = VariedLengths(103);
  BatchOptions options;
  options.batch_size = 8;
  const auto epoch0 = PlanBatches(data, options, 0);
  RequireEachExampleOnce(epoch0, 103, 8);
  REQUIRE(epoch0.size() == 13);
  REQUIRE(PlanBatches(data, options, 0) == epoch0);
  REQUIRE(PlanBatches(data, options, 1) != epoch0);
  options.seed = 43;
  REQUIRE(PlanBatches(data, options, 0) != epoch0);
}

int64_t PaddedTokens(const TokenizedDataset& data,
                     const std::vector<std::vector<int64_t>>& batches) {
  int64_t total = 0;
  for (const auto& batch : batches) {
    const TokenBatch collated = CollateBatch(data, batch);
    total += collated.input_ids.numel();
  }
  return total;
}

TEST_CASE("PlanBatches with length grouping keeps every example once and pads less",
          "[core][batching]") {
  const TokenizedDataset data = VariedLengths(203);
  BatchOptions options;
  options.batch_size = 4;
  options.group_by_length = true;
  options.length_group_batches = 10;
  for (int64_t epoch : {0, 1, 2}) {
    const auto batches = PlanBatches(data, options, epoch);
    RequireEachExampleOnce(batches, 203, 4);
    for (const auto& batch : batches) {
      for (size_t i = 1; i < batch.size(); ++i) {
        REQUIRE(data.examples[batch[i - 1]].ids.size() >= data.examples[batch[i]].ids.size());
      }
    }
  }
  const auto grouped = PlanBatches(data, options, 0);
  REQUIRE(PlanBatches(data, options, 0) == grouped);
  REQUIRE(PlanBatches(data, options, 1) != grouped);
  options.group_by_length = false;
  REQUIRE(PaddedTokens(data, grouped) < PaddedTokens(data, PlanBatches(data, options, 0)));
}

TEST_CASE("Batches of an epoch feed exactly the dataset's tokens", "[core][batching]") {
  formats::DataOptions data_options;
  data_options.label_column = "category";
  data_options.max_length = 64;
  const formats::LabelledDataset test = formats::LoadLabelledDataset(
      testing::SourceDir() / "data" / "banking77" / "test.csv", data_options);
  const TokenizedDataset data = TokenizeDataset(test, EncodeBytes, data_options);
  BatchOptions options;
  options.batch_size = 32;
  options.group_by_length = true;
  int64_t fed = 0;
  int64_t rows = 0;
  for (const auto& indices : PlanBatches(data, options, 0)) {
    const TokenBatch batch = CollateBatch(data, indices);
    REQUIRE(batch.input_ids.size(1) <= 64);
    fed += batch.num_tokens;
    rows += batch.input_ids.size(0);
  }
  REQUIRE(rows == 3080);
  REQUIRE(fed == data.TotalTokens());
  REQUIRE(data.NumTruncated() > 0);  // some Banking77 texts are longer than 64 bytes
}

TEST_CASE("PlanBatches and CollateBatch refuse bad arguments", "[core][batching]") {
  const TokenizedDataset data =
      TokenizeDataset(SmallDataset(), EncodeBytes, formats::DataOptions());
  BatchOptions options;
  options.batch_size = 0;
  REQUIRE_THROWS_AS(PlanBatches(data, options, 0), Error);
  options.batch_size = 2;
  REQUIRE_THROWS_AS(PlanBatches(data, options, -1), Error);
  REQUIRE_THROWS_AS(CollateBatch(data, {}), Error);
  REQUIRE_THROWS_AS(CollateBatch(data, {5}), Error);
}

}  // namespace
}  // namespace hpsearch::core
