// The compact vocabulary of a random-init model: ids renumbered densely and mapped back, and a
// model trained over it saved as an ordinary GPT-2 over the whole vocabulary that predicts exactly
// what the compact model did, texts with tokens no training text used included.
#include <ATen/ATen.h>
#include "core/catch_torch.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/compact_vocabulary.h"
#include "core/error.h"
#include "core/inference.h"
#include "core/peft_adapter.h"
#include "core/tokenizer.h"
#include "gpt2_test_util.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

TokenizedDataset Dataset(const std::vector<std::vector<int32_t>>& rows, int64_t pad) {
  TokenizedDataset dataset;
  dataset.source = "train.csv";
  dataset.pad_token_id = pad;
  for (size_t i = 0; i < rows.size(); ++i) {
    TokenizedExample example;
    example.ids = rows[i];
    example.line = static_cast<int64_t>(i + 2);
    dataset.examples.push_back(example);
  }
  return dataset;
}

TEST_CASE("CompactVocabulary numbers the used ids densely and maps the rest to UNK",
          "[core][compact_vocab]") {
  TokenizedDataset train = Dataset({{40, 7, 40}, {99, 7}}, /*pad=*/127);
  const CompactVocabulary vocab(train, {127}, 128);
  REQUIRE(vocab.size() == 5);  // UNK, 7, 40, 99, 127
  REQUIRE(vocab.full_vocab_size() == 128);
  const std::vector<int32_t> used = {7, 40, 99, 127};
  for (size_t k = 0; k < used.size(); ++k) {
    REQUIRE(vocab.ToCompact(used[k]) == static_cast<int32_t>(k + 1));
    REQUIRE(vocab.ToOriginal(vocab.ToCompact(used[k])) == used[k]);  // the round trip
  }
  REQUIRE(vocab.ToOriginal(CompactVocabulary::kUnkId) == -1);
  for (int32_t unseen : {0, 8, 126, 128, -1}) REQUIRE(vocab.ToCompact(unseen) == 0);

  vocab.Apply(&train);
  REQUIRE(train.examples[0].ids == std::vector<int32_t>{2, 1, 2});
  REQUIRE(train.examples[1].ids == std::vector<int32_t>{3, 1});
  REQUIRE(train.pad_token_id == 4);
  TokenizedDataset test = Dataset({{7, 5, 127}}, 127);
  vocab.Apply(&test);
  REQUIRE(test.examples[0].ids == std::vector<int32_t>{1, 0, 4});

  // Expanded, row t of the whole table is the compact row of t: the UNK row for unused ids.
  const at::Tensor compact = at::arange(5 * 2, at::kFloat).view({5, 2});
  const at::Tensor full = vocab.ExpandEmbedding(compact);
  REQUIRE(full.sizes() == at::IntArrayRef({128, 2}));
  REQUIRE(at::equal(full[40], compact[2]));
  REQUIRE(at::equal(full[127], compact[4]));
  REQUIRE(at::equal(full[0], compact[0]));
  REQUIRE(at::equal(full[100], compact[0]));
  REQUIRE_THROWS_AS(vocab.ExpandEmbedding(at::zeros({6, 2})), Error);
}

TEST_CASE("CompactVocabulary refuses an id outside the vocabulary, naming file and line",
          "[core][compact_vocab]") {
  const TokenizedDataset train = Dataset({{1, 2}, {3, 200}}, 127);
  REQUIRE_THROWS_WITH(CompactVocabulary(train, {127}, 128),
                      Catch::Contains("train.csv line 3: token id 200 is outside the vocabulary"));
}

TEST_CASE("A compact model saves as the whole vocabulary and predicts texts with unseen tokens",
          "[core][compact_vocab]") {
  hpsearch::testing::TempDir dir;
  const Gpt2Tokenizer tokenizer =
      Gpt2Tokenizer::FromDirectory((hpsearch::testing::SourceDir() / "data/gpt2").string());
  const int32_t eos = tokenizer.eos_token_id();
  TokenizedDataset train = Dataset({tokenizer.Encode("I still have not received my new card"),
                                    tokenizer.Encode("How do I change my PIN?")},
                                   eos);
  const CompactVocabulary vocab(train, {eos}, tokenizer.vocab_size());
  REQUIRE(vocab.size() < 20);

  Gpt2ForSequenceClassificationOptions options =
      hpsearch::testing::TinyOptions(FineTuningMethod::kFull, 5);
  options.config.vocab_size = vocab.size();
  options.config.pad_token_id = vocab.ToCompact(eos);
  Gpt2ForSequenceClassification compact_model(options);
  {
    // Trained-looking weights, the UNK row included, so a wrong row would change the logits.
    torch::NoGradGuard no_grad;
    at::Generator generator = at::detail::createCPUGenerator(77);
    for (auto& item : compact_model->named_parameters())
      item.value().add_(at::randn(item.value().sizes(), generator) * 0.1);
  }
  SaveTrainedModel(dir.path().string(), *compact_model,
                   {"random_init", {"a", "b", "c"}, 5, &vocab});

  SavedModelInfo info;
  const Gpt2ForSequenceClassificationOptions saved =
      ReadSavedModelOptions(dir.path().string(), &info);
  REQUIRE(saved.config.vocab_size == tokenizer.vocab_size());
  REQUIRE(saved.config.pad_token_id == eos);
  const nlohmann::json config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  REQUIRE(config["vocab_size"] == tokenizer.vocab_size());
  REQUIRE(config["pad_token_id"] == eos);
  const nlohmann::json model_info =
      nlohmann::json::parse(std::ifstream(dir / "hpsearch_model.json"));
  REQUIRE(model_info["compact_vocab"]["trained_rows"] == vocab.size());

  Gpt2ForSequenceClassification loaded(saved);
  LoadTrainedModel(dir.path().string(), *loaded);
  // "fee" and "topping" appear in no training text: they take the UNK row in both models.
  const std::vector<std::string> texts = {"my new card", "Why was I charged a fee for topping up?",
                                          "change PIN"};
  const at::Tensor got = ClassifyTexts(*loaded, tokenizer, texts, 16, 2);
  compact_model->eval();
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int64_t> ids;
    for (int32_t id : tokenizer.Encode(texts[i])) ids.push_back(vocab.ToCompact(id));
    const int64_t n = static_cast<int64_t>(ids.size());
    const at::Tensor expected =
        compact_model->forward(at::tensor(ids, at::kLong).view({1, n}), at::ones({1, n}, at::kLong),
                               at::full({1}, n - 1, at::kLong));
    REQUIRE(at::allclose(got[static_cast<int64_t>(i)], expected[0], 1e-5, 1e-6));
  }
  // The unseen-token text really went through UNK.
  bool has_unseen = false;
  for (int32_t id : tokenizer.Encode(texts[1])) has_unseen |= vocab.ToCompact(id) == 0;
  REQUIRE(has_unseen);
}

TEST_CASE("An adapter cannot be saved over a compact vocabulary", "[core][compact_vocab]") {
  hpsearch::testing::TempDir dir;
  const TokenizedDataset train = Dataset({{1, 2}}, 127);
  const CompactVocabulary vocab(train, {127}, 128);
  Gpt2ForSequenceClassificationOptions options =
      hpsearch::testing::TinyOptions(FineTuningMethod::kLora, 2);
  options.config.vocab_size = vocab.size();
  options.config.pad_token_id = vocab.ToCompact(127);
  Gpt2ForSequenceClassification model(options);
  REQUIRE_THROWS_WITH(
      SaveTrainedModel(dir.path().string(), *model, {"random_init", {"a", "b", "c"}, 2, &vocab}),
      Catch::Contains("compact vocabulary needs fine_tune.method full"));
}

}  // namespace
}  // namespace hpsearch::core
