#include <ATen/ATen.h>
#include <torch/optim/adamw.h>
#include <torch/utils.h>

#include "core/catch_torch.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/gpt2_mlp.h"
#include "core/gpt2_model.h"
#include "core/gpt2_sequence_classifier.h"
#include "core/peft_state.h"
#include "testing/testing.h"
#include "tests/core/gpt2_test_util.h"

namespace hpsearch::core {
namespace {

using testing::RandomIds;
using testing::TinyConfig;
using testing::TinyOptions;

TEST_CASE("Gpt2ForSequenceClassification returns one logit row per sequence",
          "[core][gpt2_model]") {
  Gpt2ForSequenceClassification model(TinyOptions(FineTuningMethod::kFull));
  model->eval();
  const at::Tensor ids = RandomIds(3, 7, 11);
  const at::Tensor mask = at::ones({3, 7}, at::kLong);
  const at::Tensor hidden = model->transformer(ids, mask);
  REQUIRE(hidden.sizes() == at::IntArrayRef({3, 7, 32}));
  const at::Tensor logits = model(ids, mask, LastTokenIndexFromAttentionMask(mask));
  REQUIRE(logits.sizes() == at::IntArrayRef({3, 3}));
  REQUIRE(logits.scalar_type() == at::kFloat);
  REQUIRE(at::isfinite(logits).all().item<bool>());
}

TEST_CASE("Gpt2Model is causal: a later token never changes earlier hidden states",
          "[core][gpt2_model]") {
  Gpt2ForSequenceClassification model(TinyOptions(FineTuningMethod::kFull));
  model->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor ids = RandomIds(2, 10, 3);
  at::Tensor changed = ids.clone();
  changed.index_put_({0, 6}, (ids[0][6].item<int64_t>() + 1) % 127);
  changed.index_put_({1, 6}, (ids[1][6].item<int64_t>() + 5) % 127);
  const at::Tensor before = model->transformer(ids, at::Tensor());
  const at::Tensor after = model->transformer(changed, at::Tensor());
  using at::indexing::Slice;
  REQUIRE(at::allclose(before.index({Slice(), Slice(0, 6)}), after.index({Slice(), Slice(0, 6)}),
                       0.0, 1e-6));
  // The change itself must be visible from position 6 on, or the comparison above proves nothing.
  REQUIRE_FALSE(at::allclose(before.index({Slice(), Slice(6, 10)}),
                             after.index({Slice(), Slice(6, 10)}), 1e-3, 1e-3));
}

TEST_CASE("A right-padded row gives the same logits as the row alone", "[core][gpt2_model]") {
  Gpt2ForSequenceClassification model(TinyOptions(FineTuningMethod::kFull));
  model->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor short_row = RandomIds(1, 5, 21);
  const at::Tensor long_row = RandomIds(1, 9, 22);
  at::Tensor ids = at::full({2, 9}, 127, at::kLong);
  using at::indexing::Slice;
  ids.index_put_({0, Slice(0, 5)}, short_row[0]);
  ids.index_put_({1}, long_row[0]);
  at::Tensor mask = at::ones({2, 9}, at::kLong);
  mask.index_put_({0, Slice(5, 9)}, 0);

  const at::Tensor last = LastTokenIndexFromAttentionMask(mask);
  REQUIRE(last[0].item<int64_t>() == 4);
  REQUIRE(last[1].item<int64_t>() == 8);
  // Hugging Face's pad-token rule agrees when no text contains the pad id.
  REQUIRE(at::equal(LastTokenIndexFromInputIds(ids, 127), last));

  const at::Tensor batched = model(ids, mask, last);
  const at::Tensor alone_short = model(short_row, at::Tensor(), at::full({1}, 4, at::kLong));
  const at::Tensor alone_long = model(long_row, at::Tensor(), at::full({1}, 8, at::kLong));
  REQUIRE(at::allclose(batched[0], alone_short[0], 1e-5, 1e-6));
  REQUIRE(at::allclose(batched[1], alone_long[0], 1e-5, 1e-6));

  // Without the mask the padded keys would leak into the short row: the mask is what keeps them
  // out.
  const at::Tensor unmasked = model(ids, at::Tensor(), last);
  REQUIRE(
      at::allclose(unmasked[0], alone_short[0], 1e-5, 1e-6));  // causal: pads come after token 4
}

TEST_CASE("Gpt2AttentionBias masks future and padded keys with the lowest float",
          "[core][gpt2_model]") {
  const at::Tensor mask = at::tensor({1, 1, 0}, at::kLong).view({1, 3});
  const at::Tensor bias = Gpt2AttentionBias(mask, 1, 3, at::kFloat, at::kCPU);
  REQUIRE(bias.sizes() == at::IntArrayRef({1, 1, 3, 3}));
  const float lowest = std::numeric_limits<float>::lowest();
  const float expected[3][3] = {{0, lowest, lowest}, {0, 0, lowest}, {0, 0, lowest}};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) REQUIRE(bias[0][0][i][j].item<float>() == expected[i][j]);
  }
}

// Reads tests/data/gpt2_tiny (see its README): weights by Hugging Face name, a padded batch and the
// reference logits of an independent Python re-implementation.
struct Fixture {
  Gpt2Config config;
  std::map<std::string, at::Tensor> weights;
  at::Tensor input_ids;
  at::Tensor attention_mask;
  at::Tensor last_token_index;
  at::Tensor logits;
  at::Tensor hidden_at_last;
};

at::Tensor FromJson(const nlohmann::json& rows, at::ScalarType dtype) {
  std::vector<at::Tensor> out;
  for (const auto& row : rows) {
    if (dtype == at::kLong) {
      out.push_back(at::tensor(row.get<std::vector<int64_t>>(), at::kLong));
    } else {
      out.push_back(at::tensor(row.get<std::vector<double>>(), at::kDouble).to(dtype));
    }
  }
  return at::stack(out);
}

Fixture ReadFixture() {
  const auto dir = hpsearch::testing::SourceDir() / "tests" / "data" / "gpt2_tiny";
  std::ifstream manifest_file(dir / "manifest.json");
  REQUIRE(manifest_file.good());
  const nlohmann::json manifest = nlohmann::json::parse(manifest_file);
  std::ifstream blob_file(dir / "weights.f32", std::ios::binary);
  const std::vector<char> blob((std::istreambuf_iterator<char>(blob_file)),
                               std::istreambuf_iterator<char>());
  Fixture fixture;
  const auto& config = manifest.at("config");
  fixture.config.n_layer = config.at("n_layer");
  fixture.config.n_embd = config.at("n_embd");
  fixture.config.n_head = config.at("n_head");
  fixture.config.n_positions = config.at("n_positions");
  fixture.config.vocab_size = config.at("vocab_size");
  fixture.config.num_labels = config.at("num_labels");
  fixture.config.pad_token_id = config.at("pad_token_id");
  for (const auto& entry : manifest.at("tensors")) {
    const auto shape = entry.at("shape").get<std::vector<int64_t>>();
    const int64_t offset = entry.at("offset");
    at::Tensor tensor = at::empty(shape, at::kFloat);
    const size_t bytes = static_cast<size_t>(tensor.numel()) * sizeof(float);
    REQUIRE(static_cast<size_t>(offset) * sizeof(float) + bytes <= blob.size());
    std::memcpy(tensor.data_ptr<float>(), blob.data() + offset * sizeof(float), bytes);
    fixture.weights[entry.at("name")] = tensor;
  }
  fixture.input_ids = FromJson(manifest.at("input_ids"), at::kLong);
  fixture.attention_mask = FromJson(manifest.at("attention_mask"), at::kLong);
  fixture.last_token_index =
      at::tensor(manifest.at("last_token_index").get<std::vector<int64_t>>(), at::kLong);
  fixture.logits = FromJson(manifest.at("logits"), at::kFloat);
  fixture.hidden_at_last = FromJson(manifest.at("hidden_at_last"), at::kFloat);
  return fixture;
}

TEST_CASE("Logits match an independent re-implementation of Hugging Face's GPT-2 classifier",
          "[core][gpt2_model]") {
  const Fixture fixture = ReadFixture();
  Gpt2ForSequenceClassificationOptions options;
  options.config = fixture.config;
  options.fine_tuning.method = FineTuningMethod::kFull;
  Gpt2ForSequenceClassification model(options);
  model->LoadHfWeights(fixture.weights);
  model->eval();
  torch::NoGradGuard no_grad;

  const at::Tensor last = LastTokenIndexFromAttentionMask(fixture.attention_mask);
  REQUIRE(at::equal(last, fixture.last_token_index));
  REQUIRE(at::equal(LastTokenIndexFromInputIds(fixture.input_ids, fixture.config.pad_token_id),
                    fixture.last_token_index));
  const at::Tensor logits = model(fixture.input_ids, fixture.attention_mask, last);
  INFO("ours " << logits << "\nreference " << fixture.logits);
  REQUIRE(at::allclose(logits, fixture.logits, 1e-4, 1e-5));
  const at::Tensor hidden = model->transformer(fixture.input_ids, fixture.attention_mask);
  for (int64_t row = 0; row < hidden.size(0); ++row) {
    REQUIRE(at::allclose(hidden[row][last[row].item<int64_t>()], fixture.hidden_at_last[row], 1e-4,
                         1e-5));
  }
  // The export gives back exactly what was loaded, in Hugging Face's layout.
  const auto exported = model->HfWeights();
  REQUIRE(exported.size() == fixture.weights.size());
  for (const auto& item : fixture.weights) REQUIRE(at::equal(exported.at(item.first), item.second));
}

TEST_CASE("LoadHfWeights names a missing tensor", "[core][gpt2_model]") {
  Gpt2ForSequenceClassification source(TinyOptions(FineTuningMethod::kFull, 1));
  Gpt2ForSequenceClassification target(TinyOptions(FineTuningMethod::kFull, 2));
  std::map<std::string, at::Tensor> weights = source->HfWeights();
  weights.erase("h.1.mlp.c_fc.weight");
  try {
    target->LoadHfWeights(weights);
    FAIL("LoadHfWeights accepted a checkpoint without h.1.mlp.c_fc.weight");
  } catch (const Error& e) {
    REQUIRE(e.code() == ErrorCode::kNotFound);
    REQUIRE_THAT(e.what(), Catch::Contains("missing: h.1.mlp.c_fc.weight"));
  }
}

TEST_CASE("LoadHfWeights names wrong shapes and unexpected tensors", "[core][gpt2_model]") {
  Gpt2ForSequenceClassification source(TinyOptions(FineTuningMethod::kFull, 1));
  Gpt2ForSequenceClassification target(TinyOptions(FineTuningMethod::kFull, 2));
  std::map<std::string, at::Tensor> weights = source->HfWeights();
  // Dense [out, in] instead of Conv1D [in, out]: the classic transposition mistake.
  weights["h.0.attn.c_attn.weight"] = weights["h.0.attn.c_attn.weight"].t().contiguous();
  weights["h.7.attn.c_attn.weight"] = at::zeros({32, 96});
  try {
    target->LoadHfWeights(weights);
    FAIL("LoadHfWeights accepted a malformed checkpoint");
  } catch (const Error& e) {
    REQUIRE(e.code() == ErrorCode::kInvalidArgument);
    REQUIRE_THAT(e.what(),
                 Catch::Contains("h.0.attn.c_attn.weight is [96, 32], expected [32, 96]"));
    REQUIRE_THAT(e.what(), Catch::Contains("unexpected: h.7.attn.c_attn.weight"));
  }
}

TEST_CASE("LoadHfWeights round-trips HfWeights and ignores Hugging Face's mask buffers",
          "[core][gpt2_model]") {
  Gpt2ForSequenceClassification source(TinyOptions(FineTuningMethod::kFull, 1));
  Gpt2ForSequenceClassification target(TinyOptions(FineTuningMethod::kFull, 2));
  source->eval();
  target->eval();
  std::map<std::string, at::Tensor> weights = source->HfWeights();
  REQUIRE(weights.size() == 2 + 2 * 12 + 2 + 1);
  REQUIRE(weights.at("h.0.attn.c_attn.weight").sizes() == at::IntArrayRef({32, 96}));
  REQUIRE(weights.at("h.0.mlp.c_proj.weight").sizes() == at::IntArrayRef({128, 32}));
  weights["h.0.attn.bias"] = at::ones({1, 1, 16, 16}).tril();
  weights["h.1.attn.masked_bias"] = at::full({}, -1e4);
  weights["lm_head.weight"] = weights.at("wte.weight");
  // A half-precision tensor converts to the parameters' dtype (the source takes the same rounding
  // below).
  weights["wpe.weight"] = weights.at("wpe.weight").to(at::kHalf);
  target->LoadHfWeights(weights);

  torch::NoGradGuard no_grad;
  const at::Tensor ids = RandomIds(2, 6, 5);
  const at::Tensor last = at::full({2}, 5, at::kLong);
  source->transformer->wpe->weight.copy_(weights.at("wpe.weight"));  // same rounding on both sides
  REQUIRE(at::equal(source(ids, at::Tensor(), last), target(ids, at::Tensor(), last)));
}

TEST_CASE("LoadHfWeights takes a classifier head when the checkpoint has one",
          "[core][gpt2_model]") {
  Gpt2ForSequenceClassification source(TinyOptions(FineTuningMethod::kFull, 1));
  Gpt2ForSequenceClassification target(TinyOptions(FineTuningMethod::kFull, 2));
  std::map<std::string, at::Tensor> weights = source->HfWeights();
  target->LoadHfWeights(weights);
  REQUIRE(at::equal(target->score->weight, source->score->weight));
  weights["score.weight"] = at::zeros({77, 32});
  REQUIRE_THROWS_WITH(target->LoadHfWeights(weights), Catch::Contains("score.weight"));
}

TEST_CASE("GPT-2 initialisation: seeded, std 0.02, c_proj scaled by 1/sqrt(2 n_layer)",
          "[core][gpt2_model]") {
  Gpt2ForSequenceClassification a(TinyOptions(FineTuningMethod::kFull, 5));
  Gpt2ForSequenceClassification b(TinyOptions(FineTuningMethod::kFull, 5));
  Gpt2ForSequenceClassification c(TinyOptions(FineTuningMethod::kFull, 6));
  const auto pa = a->named_parameters();
  const auto pb = b->named_parameters();
  const auto pc = c->named_parameters();
  REQUIRE(at::equal(pa["transformer.wte.weight"], pb["transformer.wte.weight"]));
  REQUIRE(at::equal(pa["score.weight"], pb["score.weight"]));
  REQUIRE_FALSE(at::equal(pa["transformer.wte.weight"], pc["transformer.wte.weight"]));

  const double fc_std = pa["transformer.h.0.mlp.c_fc.weight"].std().item<double>();
  const double proj_std = pa["transformer.h.0.mlp.c_proj.weight"].std().item<double>();
  const double wte_std = pa["transformer.wte.weight"].std().item<double>();
  REQUIRE(fc_std == Approx(0.02).epsilon(0.05));
  REQUIRE(wte_std == Approx(0.02).epsilon(0.05));
  REQUIRE(proj_std == Approx(0.02 / std::sqrt(4.0)).epsilon(0.05));
  REQUIRE(pa["transformer.h.1.attn.c_attn.bias"].abs().sum().item<double>() == 0.0);
  REQUIRE(at::equal(pa["transformer.h.1.ln_2.weight"], at::ones({32})));
  REQUIRE(at::equal(pa["transformer.ln_f.bias"], at::zeros({32})));
}

TEST_CASE("A frozen wte is held in a half-width compute dtype and gives the same logits",
          "[core][gpt2_model][compute_dtype]") {
  Gpt2ForSequenceClassificationOptions options = TinyOptions(FineTuningMethod::kLora, /*seed=*/7);
  options.compute_dtype = at::kBFloat16;
  Gpt2ForSequenceClassification model(options);
  model->eval();
  const at::Tensor& wte = model->transformer->wte->weight;
  REQUIRE(wte.scalar_type() == at::kBFloat16);
  REQUIRE(model->transformer->wpe->weight.scalar_type() == at::kFloat);
  const at::Tensor ids = RandomIds(2, 6, /*seed=*/3);
  const at::Tensor last = at::full({2}, 5, at::kLong);
  const at::Tensor logits = model->forward(ids, {}, last);
  REQUIRE(logits.scalar_type() == at::kFloat);

  // The same rounded values held in float32: the add promotes the bf16 rows exactly, so the
  // storage dtype changes nothing but memory.
  {
    torch::NoGradGuard no_grad;
    model->transformer->wte->weight.set_data(wte.to(at::kFloat));
  }
  REQUIRE(at::equal(model->forward(ids, {}, last), logits));

  // Pretrained weights load into the bf16 table (rounded once) and come out as float32.
  Gpt2ForSequenceClassification loaded(options);
  std::map<std::string, at::Tensor> weights = model->transformer->HfWeights();
  loaded->transformer->LoadHfWeights(weights);
  REQUIRE(loaded->transformer->wte->weight.scalar_type() == at::kBFloat16);
  REQUIRE(at::equal(loaded->transformer->HfWeights().at("wte.weight"), weights.at("wte.weight")));

  // A trainable wte (full fine-tuning) and a float32 compute dtype keep float32.
  options.fine_tuning.method = FineTuningMethod::kFull;
  REQUIRE(Gpt2ForSequenceClassification(options)->transformer->wte->weight.scalar_type() ==
          at::kFloat);
  options.fine_tuning.method = FineTuningMethod::kLora;
  options.compute_dtype = at::kFloat;
  REQUIRE(Gpt2ForSequenceClassification(options)->transformer->wte->weight.scalar_type() ==
          at::kFloat);
}

TEST_CASE("GeluNew matches GPT-2's tanh formula", "[core][gpt2_model]") {
  const at::Tensor x = at::linspace(-8.0, 8.0, 2001, at::kDouble);
  const double c = std::sqrt(2.0 / std::acos(-1.0));
  const at::Tensor expected = 0.5 * x * (1.0 + at::tanh(c * (x + 0.044715 * x.pow(3))));
  REQUIRE(at::allclose(GeluNew(x), expected, 0.0, 1e-12));
  REQUIRE(at::allclose(GeluNew(x.to(at::kFloat)).to(at::kDouble), expected, 1e-6, 1e-6));
  // Not the exact erf GELU: the two differ by ~1e-3 near |x| = 2.
  const at::Tensor exact = at::gelu(x);
  REQUIRE((GeluNew(x) - exact).abs().max().item<double>() > 1e-4);
}

TEST_CASE("Gpt2Model refuses sequences longer than n_positions and bad configs",
          "[core][gpt2_model]") {
  Gpt2ForSequenceClassification model(TinyOptions(FineTuningMethod::kFull));
  const at::Tensor ids = RandomIds(1, 17, 1);
  REQUIRE_THROWS_WITH(model(ids, at::Tensor(), at::full({1}, 16, at::kLong)),
                      Catch::Contains("n_positions = 16"));
  Gpt2ForSequenceClassificationOptions bad = TinyOptions(FineTuningMethod::kFull);
  bad.config.n_head = 5;
  REQUIRE_THROWS_WITH(Gpt2ForSequenceClassification(bad), Catch::Contains("n_head"));
  bad = TinyOptions(FineTuningMethod::kFull);
  bad.config.activation = "relu";
  REQUIRE_THROWS_AS(Gpt2ForSequenceClassification(bad), Error);
}

// Trains on a fixed toy batch in train mode (dropout on) and compares the eval-mode loss before and
// after.
double LossDropAfterAdamW(FineTuningMethod method, double lr, int steps) {
  Gpt2ForSequenceClassificationOptions options = TinyOptions(method, 3);
  options.fine_tuning.target_modules = {kAllLinearTarget};
  Gpt2ForSequenceClassification model(options);
  const at::Tensor ids = RandomIds(8, 6, 99);
  const at::Tensor mask = at::ones({8, 6}, at::kLong);
  const at::Tensor last = LastTokenIndexFromAttentionMask(mask);
  const at::Tensor labels = at::tensor({0, 1, 2, 0, 1, 2, 0, 1}, at::kLong);
  auto eval_loss = [&] {
    torch::NoGradGuard no_grad;
    model->eval();
    const double loss = SequenceClassificationLoss(model(ids, mask, last), labels).item<double>();
    model->train();
    return loss;
  };
  const double before = eval_loss();
  torch::manual_seed(0);
  torch::optim::AdamW optimizer(TrainableParameters(*model),
                                torch::optim::AdamWOptions(lr).weight_decay(0.0));
  for (int step = 0; step < steps; ++step) {
    optimizer.zero_grad();
    SequenceClassificationLoss(model(ids, mask, last), labels).backward();
    optimizer.step();
  }
  return eval_loss() / before;
}

TEST_CASE("A few AdamW steps reduce the loss on a toy batch", "[core][gpt2_model]") {
  REQUIRE(LossDropAfterAdamW(FineTuningMethod::kFull, 3e-3, 15) < 0.5);
  REQUIRE(LossDropAfterAdamW(FineTuningMethod::kLora, 1e-2, 15) < 0.8);
}

}  // namespace
}  // namespace hpsearch::core
