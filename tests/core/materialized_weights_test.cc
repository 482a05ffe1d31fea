// MaterializedWeightsScope: a block's NF4 bases dequantised in one launch, bit for bit what
// materialising them one by one gives, and training through it unchanged.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/utils.h>

#include "core/catch_torch.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/frozen_linear.h"
#include "core/gpt2_sequence_classifier.h"
#include "core/kernel_count.h"
#include "core/materialized_weights.h"
#include "core/nf4_frozen_weight.h"
#include "core/peft_state.h"
#include "tests/core/gpt2_test_util.h"

namespace hpsearch::core {
namespace {

std::shared_ptr<const Nf4FrozenWeight> RandomNf4(int64_t out, int64_t in, uint64_t seed) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  return std::make_shared<Nf4FrozenWeight>(at::randn({out, in}, generator) * 0.02, Nf4Options{});
}

int64_t Nf4Launches(const KernelCount& count) {
  const auto it = count.launches_by_name.find(kNf4DequantizeOp);
  return it == count.launches_by_name.end() ? 0 : it->second;
}

// Another kind of FrozenWeight over the same NF4 codes: what the scope must not batch (it is no
// Nf4FrozenWeight), so FrozenLinear materialises it per call, one launch each, as before the scope.
class OpaqueNf4Weight final : public FrozenWeight {
 public:
  explicit OpaqueNf4Weight(std::shared_ptr<const Nf4FrozenWeight> nf4) : nf4_(std::move(nf4)) {}
  at::Tensor Materialize(c10::ScalarType dtype) const override {
    ++calls;
    return nf4_->Materialize(dtype);
  }
  int64_t in_features() const override { return nf4_->in_features(); }
  int64_t out_features() const override { return nf4_->out_features(); }
  std::vector<std::pair<std::string, at::Tensor>> Tensors() const override {
    return nf4_->Tensors();
  }
  std::string Describe() const override { return "opaque " + nf4_->Describe(); }
  mutable int calls = 0;

 private:
  std::shared_ptr<const Nf4FrozenWeight> nf4_;
};

TEST_CASE("MaterializedWeightsScope dequantises a block's NF4 bases in one launch, bit for bit",
          "[core][qlora][materialized_weights][kernel_count]") {
  // A GPT-2 block's four shapes at width 32 ([3C, C], [C, C], [4C, C], [C, 4C]).
  const std::vector<std::shared_ptr<const Nf4FrozenWeight>> bases = {
      RandomNf4(96, 32, 1), RandomNf4(32, 32, 2), RandomNf4(128, 32, 3), RandomNf4(32, 128, 4)};
  const DenseFrozenWeight dense(at::ones({4, 4}));
  const auto single_quant = std::make_shared<Nf4FrozenWeight>(
      at::ones({2, 64}), Nf4Options{/*double_quant=*/false, /*block_size=*/64});
  std::vector<FrozenWeightUse> uses;
  for (const auto& base : bases) uses.push_back({base.get(), at::kBFloat16});
  uses.push_back({bases[0].get(), at::kBFloat16});      // listed twice: made once
  uses.push_back({&dense, at::kBFloat16});              // not NF4: goes its own way
  uses.push_back({single_quant.get(), at::kBFloat16});  // not double-quantised: its own way
  uses.push_back({bases[1].get(), at::kHalf});          // no batched kernel for float16
  uses.push_back({nullptr, at::kBFloat16});             // a dense base's entry

  std::unique_ptr<MaterializedWeightsScope> scope;
  const KernelCount count =
      CountKernelLaunches([&] { scope = std::make_unique<MaterializedWeightsScope>(uses); });
  REQUIRE(count.launches == 1);
  REQUIRE(Nf4Launches(count) == 1);
  REQUIRE(scope->size() == bases.size());
  for (const auto& base : bases) {
    const at::Tensor scoped = ScopedMaterializedWeight(*base, at::kBFloat16);
    REQUIRE(scoped.defined());
    REQUIRE(scoped.scalar_type() == at::kBFloat16);
    REQUIRE_FALSE(scoped.requires_grad());
    REQUIRE(at::equal(scoped, base->Materialize(at::kBFloat16)));
    REQUIRE_FALSE(ScopedMaterializedWeight(*base, at::kFloat).defined());  // not asked for
  }
  REQUIRE_FALSE(ScopedMaterializedWeight(dense, at::kBFloat16).defined());
  REQUIRE_FALSE(ScopedMaterializedWeight(*single_quant, at::kBFloat16).defined());
  REQUIRE_FALSE(ScopedMaterializedWeight(*bases[1], at::kHalf).defined());

  SECTION("scopes nest; the outer one answers what the inner one does not hold") {
    {
      const MaterializedWeightsScope inner({{bases[2].get(), at::kFloat}});
      REQUIRE(inner.size() == 1);
      REQUIRE(at::equal(ScopedMaterializedWeight(*bases[2], at::kFloat),
                        bases[2]->Materialize(at::kFloat)));
      REQUIRE(ScopedMaterializedWeight(*bases[3], at::kBFloat16).defined());
    }
    REQUIRE_FALSE(ScopedMaterializedWeight(*bases[2], at::kFloat).defined());
    REQUIRE(ScopedMaterializedWeight(*bases[2], at::kBFloat16).defined());
  }
  SECTION("two dtypes are two groups, one launch each") {
    const KernelCount two = CountKernelLaunches([&] {
      const MaterializedWeightsScope mixed(
          {{bases[0].get(), at::kFloat}, {bases[1].get(), at::kBFloat16}});
      REQUIRE(mixed.size() == 2);
    });
    REQUIRE(Nf4Launches(two) == 2);
  }
  scope.reset();
  REQUIRE_FALSE(ScopedMaterializedWeight(*bases[0], at::kBFloat16).defined());
}

TEST_CASE("FrozenLinear takes its weight from the scope and is unchanged outside any scope",
          "[core][qlora][materialized_weights][frozen_linear]") {
  at::Generator generator = at::detail::createCPUGenerator(5);
  const auto nf4 = RandomNf4(48, 64, 6);
  const at::Tensor bias = at::randn({48}, generator).to(at::kBFloat16);
  const at::Tensor x = at::randn({3, 64}, generator).to(at::kBFloat16);
  const at::Tensor grad = at::randn({3, 48}, generator).to(at::kBFloat16);

  // Outside any scope: materialised in forward, and again in backward (only the handle is kept).
  const at::Tensor x1 = x.clone().requires_grad_(true);
  at::Tensor y1;
  const KernelCount forward_alone = CountKernelLaunches([&] { y1 = FrozenLinear(x1, nf4, bias); });
  REQUIRE(Nf4Launches(forward_alone) == 1);
  const KernelCount backward_alone = CountKernelLaunches([&] { y1.backward(grad); });
  REQUIRE(Nf4Launches(backward_alone) == 1);

  // Inside a scope that holds the weight: no dequantisation in forward, the same bits out, and
  // backward (after the scope closed) materialises per weight as before.
  const at::Tensor x2 = x.clone().requires_grad_(true);
  at::Tensor y2;
  {
    const MaterializedWeightsScope scope({{nf4.get(), at::kBFloat16}});
    const KernelCount forward_scoped =
        CountKernelLaunches([&] { y2 = FrozenLinear(x2, nf4, bias); });
    REQUIRE(Nf4Launches(forward_scoped) == 0);
  }
  REQUIRE(at::equal(y2, y1));
  const KernelCount backward_scoped = CountKernelLaunches([&] { y2.backward(grad); });
  REQUIRE(Nf4Launches(backward_scoped) == 1);
  REQUIRE(at::equal(x2.grad(), x1.grad()));

  // A scope holding other weights, or in another dtype, changes nothing for this one.
  const auto other = RandomNf4(48, 64, 7);
  const MaterializedWeightsScope unrelated({{other.get(), at::kBFloat16}, {nf4.get(), at::kFloat}});
  const KernelCount forward_unrelated =
      CountKernelLaunches([&] { REQUIRE(at::equal(FrozenLinear(x, nf4, bias), y1)); });
  REQUIRE(Nf4Launches(forward_unrelated) == 1);
}

// The tiny seed-like QLoRA model (LoRA r 8 with dropout 0.1 on every linear layer, dropout 0.1,
// bfloat16 compute) whose bases are NF4 (`opaque` false) or the same NF4 codes behind
// OpaqueNf4Weight, which the scope leaves alone: the model as it ran before the scope.
Gpt2ForSequenceClassification ScopeTestModel(bool opaque) {
  Gpt2ForSequenceClassificationOptions options = testing::TinyOptions(FineTuningMethod::kQlora, 4);
  options.config.n_embd = 64;
  options.fine_tuning.target_modules = {kAllLinearTarget};
  options.fine_tuning.lora_dropout = 0.1;
  options.compute_dtype = at::kBFloat16;
  Gpt2ForSequenceClassification model(options);
  {
    torch::NoGradGuard no_grad;
    at::Generator generator = at::detail::createCPUGenerator(8);
    for (const auto& item : model->named_parameters()) {
      if (item.key().find("lora_B") != std::string::npos) item.value().normal_(0, 0.02, generator);
    }
  }
  ReplaceFrozenBaseWeights(*model,
                           [opaque](const torch::Tensor& w) -> std::shared_ptr<const FrozenWeight> {
                             auto nf4 = std::make_shared<Nf4FrozenWeight>(w, Nf4Options{});
                             if (!opaque) return nf4;
                             return std::make_shared<OpaqueNf4Weight>(std::move(nf4));
                           });
  return model;
}

struct ScopeStep {
  double loss = 0.0;
  std::map<std::string, at::Tensor> grads;
  int64_t nf4_launches = 0;
};

ScopeStep ScopeTrainStep(Gpt2ForSequenceClassification& model, bool checkpointing) {
  model->train();
  model->transformer->set_gradient_checkpointing(checkpointing);
  const at::Tensor ids = testing::RandomIds(4, 9, 17);
  const at::Tensor mask = at::ones({4, 9}, at::kLong);
  const at::Tensor labels = at::tensor({0, 1, 2, 1}, at::kLong);
  torch::manual_seed(11);
  ScopeStep step;
  const KernelCount count = CountKernelLaunches([&] {
    const at::Tensor loss = SequenceClassificationLoss(
        model(ids, mask, LastTokenIndexFromAttentionMask(mask)).to(at::kFloat), labels);
    loss.backward();
    step.loss = loss.item<double>();
  });
  step.nf4_launches = Nf4Launches(count);
  for (const auto& item : model->named_parameters()) {
    if (item.value().requires_grad()) step.grads[item.key()] = item.value().grad().clone();
  }
  return step;
}

TEST_CASE("Training through the block's scope gives the same loss and gradients, bit for bit",
          "[core][qlora][materialized_weights][kernel_count]") {
  const bool checkpointing = GENERATE(false, true);
  CAPTURE(checkpointing);
  Gpt2ForSequenceClassification scoped_model = ScopeTestModel(/*opaque=*/false);
  Gpt2ForSequenceClassification plain_model = ScopeTestModel(/*opaque=*/true);
  const int64_t layers = scoped_model->transformer->h->size();
  const ScopeStep scoped = ScopeTrainStep(scoped_model, checkpointing);
  const ScopeStep plain = ScopeTrainStep(plain_model, checkpointing);
  REQUIRE(scoped.loss == plain.loss);
  REQUIRE(scoped.grads.size() == plain.grads.size());
  for (const auto& item : plain.grads) {
    INFO(item.first);
    REQUIRE(at::equal(scoped.grads.at(item.first), item.second));
  }
  // Per layer, with the scope: one launch for the four bases per block run (the first run and,
  // with checkpointing, the recomputation, whose dense weights backward keeps); without
  // checkpointing backward materialises each base again, except the first block's c_attn, whose
  // input (the frozen embeddings through a frozen LayerNorm) needs no gradient. Without the scope:
  // one per base and run.
  const int64_t unused_backward = checkpointing ? 0 : 1;
  REQUIRE(plain.nf4_launches == 8 * layers - unused_backward);
  REQUIRE(scoped.nf4_launches == (checkpointing ? 2 : 1 + 4) * layers - unused_backward);
}

TEST_CASE("A GPT-2 block's four NF4 dequantisations count one launch",
          "[core][qlora][materialized_weights][kernel_count]") {
  Gpt2ForSequenceClassification model = ScopeTestModel(/*opaque=*/false);
  model->eval();
  const at::Tensor ids = testing::RandomIds(2, 5, 3);
  const at::Tensor mask = at::ones({2, 5}, at::kLong);
  const KernelCount count = CountKernelLaunches([&] {
    torch::NoGradGuard no_grad;
    (void)model(ids, mask, LastTokenIndexFromAttentionMask(mask));
  });
  REQUIRE(Nf4Launches(count) == static_cast<int64_t>(model->transformer->h->size()));
}

}  // namespace
}  // namespace hpsearch::core
