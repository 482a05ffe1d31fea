#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/utils.h>

#include "core/catch_torch.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "core/fine_tuning.h"
#include "core/frozen_weight.h"
#include "core/gpt2_sequence_classifier.h"
#include "core/lora_linear.h"
#include "core/peft_state.h"
#include "tests/core/gpt2_test_util.h"

namespace hpsearch::core {
namespace {

using testing::RandomIds;
using testing::TinyOptions;

at::Generator Seeded(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

std::set<std::string> AsSet(const std::vector<std::string>& names) {
  return {names.begin(), names.end()};
}

TEST_CASE("LoraLinear computes base + B A dropout(x) * alpha / r", "[core][lora_linear]") {
  LoraLinear layer(LoraLinearOptions(6, 5).lora_r(2).lora_alpha(4.0).base_trainable(false),
                   Seeded(1));
  torch::NoGradGuard no_grad;
  layer->lora_B.normal_(0.0, 1.0, Seeded(2));
  layer->bias.normal_(0.0, 1.0, Seeded(3));
  const at::Tensor x = at::randn({3, 4, 6}, Seeded(4));
  const at::Tensor expected = at::matmul(x, layer->weight.t()) + layer->bias +
                              at::matmul(at::matmul(x, layer->lora_A.t()), layer->lora_B.t()) * 2.0;
  REQUIRE(layer->lora_scale() == 2.0);
  REQUIRE(at::allclose(layer(x), expected, 1e-5, 1e-6));
}

TEST_CASE("LoraLinear with lora_B = 0 reproduces the base layer exactly", "[core][lora_linear]") {
  LoraLinear adapted(LoraLinearOptions(16, 8).lora_r(4).lora_dropout(0.5), Seeded(1));
  LoraLinear plain(LoraLinearOptions(16, 8), Seeded(9));
  torch::NoGradGuard no_grad;
  plain->weight.copy_(adapted->weight);
  plain->bias.copy_(adapted->bias);
  const at::Tensor x = at::randn({5, 16}, Seeded(2));
  // Train mode too: lora dropout touches only the adapter path.
  REQUIRE(at::equal(adapted(x), plain(x)));
  adapted->eval();
  REQUIRE(at::equal(adapted(x), plain(x)));
}

TEST_CASE("In bfloat16 the adapter node equals the autograd graph and accumulates into .grad",
          "[core][lora_linear]") {
  // With dropout (the mask in the input gradient) and without (a plain scaled add).
  const double dropout = GENERATE(0.25, 0.0);
  LoraLinear layer(LoraLinearOptions(16, 12)
                       .lora_r(4)
                       .lora_alpha(8.0)
                       .lora_dropout(dropout)
                       .base_trainable(false)
                       .compute_dtype(at::kBFloat16),
                   Seeded(1));
  {
    torch::NoGradGuard no_grad;
    layer->lora_B.normal_(0.0, 0.5, Seeded(2));
    layer->bias.normal_(0.0, 0.5, Seeded(3));
  }
  const at::Tensor base_weight = layer->weight.detach().clone();
  // A dense base (LoRA: the node adds to the base's output) or a FrozenWeight (QLoRA: the base
  // product is inside the node, which adds the two gradients of x itself).
  const bool frozen_base = GENERATE(false, true);
  INFO("frozen base: " << frozen_base << ", dropout " << dropout);
  if (frozen_base) layer->ReplaceBaseWeight(std::make_shared<DenseFrozenWeight>(base_weight));
  const at::Tensor x0 = at::randn({2, 5, 16}, Seeded(4));
  const at::Tensor grad_out = at::randn({2, 5, 12}, Seeded(5)).to(at::kBFloat16);
  // lora_A already holds a gradient (a second micro-batch, or FlatAdamW's zeroed view): the node
  // adds to it; lora_B has none yet: the node sets it.
  layer->lora_A.mutable_grad() = at::ones_like(layer->lora_A);
  const at::Tensor x = x0.clone().requires_grad_(true);
  at::manual_seed(7);
  const at::Tensor out = layer(x);
  out.backward(grad_out);

  // The same computation as plain autograd ops on bf16 casts of the adapters, the same draw.
  const at::Tensor x_ref = x0.clone().requires_grad_(true);
  const at::Tensor a_ref = layer->lora_A.detach().clone().requires_grad_(true);
  const at::Tensor b_ref = layer->lora_B.detach().clone().requires_grad_(true);
  at::manual_seed(7);
  const at::Tensor input = x_ref.to(at::kBFloat16);
  const at::Tensor base =
      at::linear(input, base_weight.to(at::kBFloat16), layer->bias.to(at::kBFloat16));
  const at::Tensor dropped =
      dropout > 0.0 ? std::get<0>(at::native_dropout(input, dropout, true)) : input;
  const at::Tensor expected =
      at::addmm(base.reshape({-1, 12}),
                at::mm(dropped.reshape({-1, 16}), a_ref.to(at::kBFloat16).t()),
                b_ref.to(at::kBFloat16).t(), 1, layer->lora_scale())
          .view(base.sizes());
  expected.backward(grad_out);

  REQUIRE(out.scalar_type() == at::kBFloat16);
  REQUIRE(at::equal(out, expected));
  REQUIRE(layer->lora_A.grad().scalar_type() == at::kFloat);
  REQUIRE(layer->lora_B.grad().scalar_type() == at::kFloat);
  // GEMMs of other orientations and the scale applied in float32: bf16 rounding apart.
  CHECK(at::allclose(layer->lora_A.grad() - 1.0, a_ref.grad(), 2e-2, 2e-2));
  CHECK(at::allclose(layer->lora_B.grad(), b_ref.grad(), 2e-2, 2e-2));
  CHECK(at::allclose(x.grad(), x_ref.grad(), 2e-2, 2e-2));
  CHECK_FALSE(at::allclose(a_ref.grad(), at::zeros_like(a_ref), 0.0, 1e-3));

  // A second backward accumulates again, as AccumulateGrad would.
  const at::Tensor b_grad_once = layer->lora_B.grad().clone();
  at::manual_seed(7);
  layer(x0).backward(grad_out);
  CHECK(at::allclose(layer->lora_B.grad(), b_grad_once * 2.0, 1e-6, 1e-6));
}

TEST_CASE("A LoRA classifier before training gives the base model's logits exactly",
          "[core][lora_linear]") {
  Gpt2ForSequenceClassificationOptions lora_options = TinyOptions(FineTuningMethod::kLora, 1);
  lora_options.fine_tuning.target_modules = {kAllLinearTarget};
  Gpt2ForSequenceClassification lora(lora_options);
  Gpt2ForSequenceClassification base(TinyOptions(FineTuningMethod::kFull, 2));
  base->LoadHfWeights(lora->HfWeights());
  lora->eval();
  base->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor ids = RandomIds(2, 7, 3);
  const at::Tensor last = at::full({2}, 6, at::kLong);
  REQUIRE(at::equal(lora(ids, at::Tensor(), last), base(ids, at::Tensor(), last)));
}

TEST_CASE("lora_A starts Kaiming-uniform with a = sqrt(5): bound 1/sqrt(in)",
          "[core][lora_linear]") {
  REQUIRE(KaimingUniformBound(256, std::sqrt(5.0)) == Approx(1.0 / 16.0).epsilon(1e-12));
  REQUIRE(KaimingUniformBound(100, 0.0) == Approx(std::sqrt(6.0 / 100.0)).epsilon(1e-12));
  LoraLinear layer(LoraLinearOptions(256, 64).lora_r(16), Seeded(7));
  const double bound = 1.0 / std::sqrt(256.0);
  const at::Tensor a = layer->lora_A;
  REQUIRE(a.sizes() == at::IntArrayRef({16, 256}));
  REQUIRE(a.abs().max().item<double>() <= bound);
  REQUIRE(a.abs().max().item<double>() > 0.95 * bound);
  // Uniform on [-b, b] has standard deviation b / sqrt(3).
  REQUIRE(a.std().item<double>() == Approx(bound / std::sqrt(3.0)).epsilon(0.05));
  REQUIRE(layer->lora_B.sizes() == at::IntArrayRef({64, 16}));
  REQUIRE(layer->lora_B.abs().sum().item<double>() == 0.0);
}

TEST_CASE("Trainable parameters follow the fine-tuning method and target modules",
          "[core][lora_linear]") {
  auto trainable = [](FineTuningMethod method, std::vector<std::string> targets) {
    Gpt2ForSequenceClassificationOptions options = TinyOptions(method);
    options.fine_tuning.target_modules = std::move(targets);
    Gpt2ForSequenceClassification model(options);
    return AsSet(TrainableParameterNames(*model));
  };
  auto adapters = [](std::vector<std::string> modules) {
    std::set<std::string> names = {"score.weight"};
    for (int layer = 0; layer < 2; ++layer) {
      for (const std::string& module : modules) {
        const std::string path = "transformer.h." + std::to_string(layer) + "." + module;
        names.insert(path + ".lora_A");
        names.insert(path + ".lora_B");
      }
    }
    return names;
  };

  SECTION("full trains everything, without adapters") {
    Gpt2ForSequenceClassification model(TinyOptions(FineTuningMethod::kFull));
    const auto names = TrainableParameterNames(*model);
    REQUIRE(names.size() == model->parameters().size());
    REQUIRE(names.size() == 2 + 2 * 12 + 2 + 1);
    REQUIRE(std::none_of(names.begin(), names.end(), [](const std::string& name) {
      return name.find("lora_") != std::string::npos;
    }));
  }
  SECTION("c_attn") {
    REQUIRE(trainable(FineTuningMethod::kLora, {"c_attn"}) == adapters({"attn.c_attn"}));
  }
  SECTION("c_proj adapts both output projections") {
    REQUIRE(trainable(FineTuningMethod::kLora, {"c_proj"}) ==
            adapters({"attn.c_proj", "mlp.c_proj"}));
  }
  SECTION("attn.c_proj adapts only the attention projection") {
    REQUIRE(trainable(FineTuningMethod::kLora, {"attn.c_proj"}) == adapters({"attn.c_proj"}));
  }
  SECTION("c_fc and c_attn") {
    REQUIRE(trainable(FineTuningMethod::kLora, {"c_fc", "c_attn"}) ==
            adapters({"attn.c_attn", "mlp.c_fc"}));
  }
  SECTION("all-linear adapts every transformer linear layer, not the head") {
    REQUIRE(trainable(FineTuningMethod::kQlora, {kAllLinearTarget}) ==
            adapters({"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"}));
  }
  SECTION("one layer by full path") {
    const auto names = trainable(FineTuningMethod::kLora, {"transformer.h.1.mlp.c_fc"});
    REQUIRE(names == std::set<std::string>{"score.weight", "transformer.h.1.mlp.c_fc.lora_A",
                                           "transformer.h.1.mlp.c_fc.lora_B"});
  }
  SECTION("unknown targets and the head are refused") {
    REQUIRE_THROWS_WITH(trainable(FineTuningMethod::kLora, {"q_proj"}),
                        Catch::Contains("\"q_proj\" names no linear layer"));
    try {
      trainable(FineTuningMethod::kLora, {"score"});
      FAIL("targeting the head was accepted");
    } catch (const Error& e) {
      REQUIRE(e.code() == ErrorCode::kUnsupported);
    }
    REQUIRE_THROWS_AS(trainable(FineTuningMethod::kLora, {kAllLinearTarget, "c_fc"}), Error);
  }
}

TEST_CASE("Adapter tensors carry PEFT's saved and in-memory names", "[core][lora_linear]") {
  Gpt2ForSequenceClassificationOptions options = TinyOptions(FineTuningMethod::kLora);
  options.fine_tuning.lora_r = 4;
  Gpt2ForSequenceClassification model(options);
  const auto saved = PeftAdapterStateDict(*model);
  REQUIRE(saved.size() == 2 * 2 + 1);
  REQUIRE(saved.at("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").sizes() ==
          at::IntArrayRef({4, 32}));
  REQUIRE(saved.at("base_model.model.transformer.h.1.attn.c_attn.lora_B.weight").sizes() ==
          at::IntArrayRef({96, 4}));
  REQUIRE(saved.at("base_model.model.score.weight").sizes() == at::IntArrayRef({3, 32}));

  const auto names = PeftInMemoryNames(*model);
  REQUIRE(names.at("score.weight") == "base_model.model.score.modules_to_save.default.weight");
  REQUIRE(names.at("transformer.h.0.attn.c_attn.lora_A") ==
          "base_model.model.transformer.h.0.attn.c_attn.lora_A.default.weight");
  REQUIRE(names.at("transformer.h.0.attn.c_attn.weight") ==
          "base_model.model.transformer.h.0.attn.c_attn.base_layer.weight");
  REQUIRE(names.at("transformer.h.0.mlp.c_fc.bias") ==
          "base_model.model.transformer.h.0.mlp.c_fc.bias");
  REQUIRE(names.at("transformer.wte.weight") == "base_model.model.transformer.wte.weight");
  REQUIRE(names.size() == model->parameters().size());

  Gpt2ForSequenceClassification full(TinyOptions(FineTuningMethod::kFull));
  REQUIRE_THROWS_AS(PeftAdapterStateDict(*full), Error);
}

TEST_CASE("ReplaceFrozenBaseWeights swaps dense bases for FrozenWeights without changing outputs",
          "[core][lora_linear]") {
  Gpt2ForSequenceClassification model(TinyOptions(FineTuningMethod::kQlora));
  model->eval();
  const at::Tensor ids = RandomIds(2, 5, 8);
  const at::Tensor last = at::full({2}, 4, at::kLong);
  at::Tensor before;
  {
    torch::NoGradGuard no_grad;
    before = model(ids, at::Tensor(), last);
  }
  const auto trainable_before = TrainableParameterNames(*model);
  int64_t made = 0;
  const int64_t replaced = ReplaceFrozenBaseWeights(*model, [&made](const at::Tensor& weight) {
    ++made;
    return std::make_shared<DenseFrozenWeight>(weight.clone());
  });
  REQUIRE(replaced == 8);
  REQUIRE(made == 8);
  const auto parameters = model->named_parameters();
  REQUIRE(parameters.find("transformer.h.0.attn.c_attn.weight") == nullptr);
  REQUIRE(parameters.find("transformer.h.0.attn.c_attn.bias") != nullptr);
  REQUIRE(model->named_buffers().find("transformer.h.0.mlp.c_fc.base_weight") != nullptr);
  REQUIRE(TrainableParameterNames(*model) == trainable_before);
  {
    torch::NoGradGuard no_grad;
    REQUIRE(at::equal(model(ids, at::Tensor(), last), before));
  }
  // Adapters still train on top of the frozen bases.
  model->train();
  SequenceClassificationLoss(model(ids, at::Tensor(), last), at::tensor({0, 2}, at::kLong))
      .backward();
  REQUIRE(model->named_parameters()["transformer.h.1.attn.c_attn.lora_B"].grad().defined());
  REQUIRE(model->HfWeights().at("h.0.attn.c_attn.weight").sizes() == at::IntArrayRef({32, 96}));
  // The frozen bases are buffers of the module, so Module::to converts them with everything else.
  model->eval();
  model->to(at::kDouble);
  REQUIRE(model->named_buffers()["transformer.h.1.mlp.c_proj.base_weight"].scalar_type() ==
          at::kDouble);
  {
    torch::NoGradGuard no_grad;
    const at::Tensor in_double = model(ids, at::Tensor(), last);
    REQUIRE(in_double.scalar_type() == at::kDouble);
    REQUIRE(at::allclose(in_double.to(at::kFloat), before, 1e-4, 1e-5));
  }
  model->to(at::kFloat);

  REQUIRE_THROWS_WITH(
      ReplaceFrozenBaseWeights(
          *model, [](const at::Tensor& w) { return std::make_shared<DenseFrozenWeight>(w); }),
      Catch::Contains("already has a frozen base"));
  Gpt2ForSequenceClassification full(TinyOptions(FineTuningMethod::kFull));
  REQUIRE_THROWS_AS(
      ReplaceFrozenBaseWeights(
          *full, [](const at::Tensor& w) { return std::make_shared<DenseFrozenWeight>(w); }),
      Error);
}

TEST_CASE("LoraLinear refuses a FrozenWeight of the wrong shape and training a frozen base",
          "[core][lora_linear]") {
  LoraLinear layer(LoraLinearOptions(4, 3).lora_r(2).base_trainable(false), Seeded(1));
  REQUIRE_THROWS_WITH(
      layer->ReplaceBaseWeight(std::make_shared<DenseFrozenWeight>(at::zeros({4, 3}))),
      Catch::Contains("does not fit"));
  layer->ReplaceBaseWeight(std::make_shared<DenseFrozenWeight>(at::zeros({3, 4})));
  REQUIRE_THROWS_AS(layer->SetBaseTrainable(true), Error);
  REQUIRE_THROWS_AS(LoraLinear(LoraLinearOptions(4, 3).lora_dropout(1.0), Seeded(1)), Error);
}

}  // namespace
}  // namespace hpsearch::core
