// QLoRA: the model with NF4 base weights computes exactly what the model computes on the
// dequantised weights, and trains; FrozenLinear keeps no dense weight for backward; the bfloat16
// compute path agrees with float32 within bfloat16's precision and keeps master weights in float32.
#include <ATen/ATen.h>
#include <torch/optim/adamw.h>
#include "core/catch_torch.h"

#include <atomic>
#include <cmath>

#include <torch/cuda.h>

#include "core/flat_adamw.h"
#include "core/frozen_linear.h"
#include "core/nf4_frozen_weight.h"
#include "core/peft_state.h"
#include "core/torch_compat.h"
#include "gpt2_test_util.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

Gpt2ForSequenceClassificationOptions QloraOptions() {
  Gpt2ForSequenceClassificationOptions options = testing::TinyOptions(FineTuningMethod::kQlora, 4);
  options.config.n_embd = 64;  // NF4 blocks of 64 along rows of any width; 64 keeps it realistic
  options.config.n_head = 4;
  options.fine_tuning.target_modules = {kAllLinearTarget};
  return options;
}

TEST_CASE("QLoRA logits equal the model run on the dequantised weights", "[core][qlora]") {
  Gpt2ForSequenceClassification quantised(QloraOptions());
  Gpt2ForSequenceClassification reference(QloraOptions());  // same seed: same weights
  quantised->eval();
  reference->eval();
  const int64_t replaced = ReplaceFrozenBaseWeights(*quantised, Nf4FrozenWeightFactory({}));
  const int64_t replaced_reference = ReplaceFrozenBaseWeights(
      *reference, [](const torch::Tensor& w) -> std::shared_ptr<const FrozenWeight> {
        return std::make_shared<DenseFrozenWeight>(
            DequantizeWeight(QuantizeWeight(w), torch::kFloat32));
      });
  REQUIRE(replaced == 8);  // 2 layers x (c_attn, attn.c_proj, c_fc, mlp.c_proj)
  REQUIRE(replaced_reference == replaced);

  at::Tensor ids = testing::RandomIds(3, 10, 9);
  at::Tensor mask = at::ones({3, 10}, at::kLong);
  at::Tensor last = at::full({3}, 9, at::kLong);
  at::Tensor q = quantised->forward(ids, mask, last);
  at::Tensor r = reference->forward(ids, mask, last);
  REQUIRE(at::equal(q, r));

  // The unquantised model differs, but only by quantisation noise.
  Gpt2ForSequenceClassification dense(QloraOptions());
  dense->eval();
  at::Tensor d = dense->forward(ids, mask, last);
  REQUIRE_FALSE(at::equal(q, d));
  REQUIRE((q - d).abs().max().item<double>() < 0.3 * d.abs().max().item<double>());
}

TEST_CASE("QLoRA stores base weights in about 4.1 bits and still trains", "[core][qlora]") {
  Gpt2ForSequenceClassification model(QloraOptions());
  ReplaceFrozenBaseWeights(*model, Nf4FrozenWeightFactory({}));
  int64_t packed_bytes = 0, nf4_weights = 0;
  for (const auto& item : model->named_buffers()) {
    if (item.key().find("base_packed") != std::string::npos) {
      packed_bytes += item.value().numel();
      nf4_weights += 2 * item.value().numel();
    }
  }
  const int64_t c = 64;
  REQUIRE(nf4_weights == 2 * (3 * c * c + c * c + 4 * c * c + 4 * c * c));
  REQUIRE(packed_bytes * 2 == nf4_weights);
  for (const auto& item : model->named_parameters()) {
    INFO(item.key());
    // No dense base weight is left among the parameters of the transformer's linear layers.
    const bool linear_base = item.key().find(".weight") != std::string::npos &&
                             (item.key().find("c_attn.weight") != std::string::npos ||
                              item.key().find("c_proj.weight") != std::string::npos ||
                              item.key().find("c_fc.weight") != std::string::npos);
    REQUIRE_FALSE(linear_base);
  }
  std::vector<torch::Tensor> trainable = TrainableParameters(*model);
  torch::optim::AdamW optimizer(trainable, torch::optim::AdamWOptions(2e-3));
  at::Tensor ids = testing::RandomIds(8, 6, 2);
  at::Tensor mask = at::ones({8, 6}, at::kLong);
  at::Tensor last = at::full({8}, 5, at::kLong);
  at::Tensor labels = at::remainder(ids.select(1, 0), 3);
  double first = 0, last_loss = 0;
  for (int step = 0; step < 30; ++step) {
    optimizer.zero_grad();
    at::Tensor loss = SequenceClassificationLoss(model->forward(ids, mask, last), labels);
    loss.backward();
    optimizer.step();
    (step == 0 ? first : last_loss) = loss.item<double>();
  }
  REQUIRE(last_loss < first * 0.7);
}

// Counts Materialize calls: what FrozenLinear dequantises, and when.
class CountingFrozenWeight final : public FrozenWeight {
 public:
  explicit CountingFrozenWeight(const at::Tensor& w) : dense_(w) {}
  at::Tensor Materialize(c10::ScalarType dtype) const override {
    ++calls;
    return dense_.Materialize(dtype);
  }
  int64_t in_features() const override { return dense_.in_features(); }
  int64_t out_features() const override { return dense_.out_features(); }
  std::vector<std::pair<std::string, at::Tensor>> Tensors() const override {
    return dense_.Tensors();
  }
  std::string Describe() const override { return "counting " + dense_.Describe(); }
  mutable std::atomic<int> calls{0};

 private:
  DenseFrozenWeight dense_;
};

TEST_CASE("FrozenLinear equals at::linear and materialises the weight again in backward",
          "[core][qlora][frozen_linear]") {
  at::Generator generator = at::detail::createCPUGenerator(3);
  const at::Tensor w = at::randn({24, 16}, generator);
  const at::Tensor bias = at::randn({24}, generator);
  const at::Tensor x = at::randn({2, 5, 16}, generator);
  auto counting = std::make_shared<CountingFrozenWeight>(w);

  at::Tensor x1 = x.clone().requires_grad_(true);
  at::Tensor y1 = FrozenLinear(x1, counting, bias);
  REQUIRE(counting->calls == 1);
  at::Tensor x2 = x.clone().requires_grad_(true);
  at::Tensor y2 = at::linear(x2, w, bias);
  REQUIRE(at::equal(y1, y2));

  const at::Tensor grad = at::randn({2, 5, 24}, generator);
  y1.backward(grad);
  REQUIRE(counting->calls == 2);  // backward dequantised again instead of keeping the dense copy
  y2.backward(grad);
  REQUIRE(at::allclose(x1.grad(), x2.grad(), 1e-6, 1e-6));

  // No input needs a gradient: nothing to materialise in backward, and a trainable bias is refused.
  REQUIRE_THROWS(FrozenLinear(x, counting, bias.clone().requires_grad_(true)));
}

// The tiny QLoRA model without dropout (so two runs see the same function) and with non-zero
// lora_B (so lora_A gets gradients too).
Gpt2ForSequenceClassification DeterministicQlora(c10::ScalarType compute_dtype,
                                                 const std::string& attn = "eager") {
  Gpt2ForSequenceClassificationOptions options = QloraOptions();
  options.config.attn_implementation = attn;
  options.config.resid_pdrop = options.config.embd_pdrop = options.config.attn_pdrop = 0.0;
  options.fine_tuning.lora_dropout = 0.0;
  options.compute_dtype = compute_dtype;
  Gpt2ForSequenceClassification model(options);
  at::Generator generator = at::detail::createCPUGenerator(17);
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    if (item.key().find("lora_B") != std::string::npos) {
      item.value().copy_(at::randn(item.value().sizes(), generator) * 0.05);
    }
  }
  ReplaceFrozenBaseWeights(*model, Nf4FrozenWeightFactory({}));
  return model;
}

double RelativeError(const at::Tensor& got, const at::Tensor& want) {
  return (got.to(at::kDouble) - want.to(at::kDouble)).norm().item<double>() /
         want.to(at::kDouble).norm().item<double>();
}

TEST_CASE("bfloat16 QLoRA: logits and LoRA gradients agree with float32, master weights stay fp32",
          "[core][qlora][mixed_precision]") {
  Gpt2ForSequenceClassification fp32 = DeterministicQlora(c10::ScalarType::Undefined);
  Gpt2ForSequenceClassification bf16 = DeterministicQlora(at::kBFloat16);
  at::Tensor ids = testing::RandomIds(4, 9, 8);
  at::Tensor mask = at::ones({4, 9}, at::kLong);
  mask.slice(1, 6).select(0, 1).fill_(0);  // one right-padded row
  at::Tensor last = LastTokenIndexFromAttentionMask(mask);
  at::Tensor labels = at::tensor({0, 1, 2, 1}, at::kLong);

  // The linear layers really compute in bfloat16; the head reads float32 and returns float32.
  const at::Tensor hidden = at::randn({2, 3, 64});
  Gpt2Block bf16_block = bf16->transformer->blocks()[0];
  Gpt2Block fp32_block = fp32->transformer->blocks()[0];
  REQUIRE(bf16_block->attn->c_attn->forward(hidden).scalar_type() == at::kBFloat16);
  REQUIRE(fp32_block->attn->c_attn->forward(hidden).scalar_type() == at::kFloat);

  at::Tensor logits32 = fp32->forward(ids, mask, last);
  at::Tensor logits16 = bf16->forward(ids, mask, last);
  REQUIRE(logits16.scalar_type() == at::kFloat);
  REQUIRE_FALSE(at::equal(logits16, logits32));  // bf16 rounding is visible...
  CAPTURE(RelativeError(logits16, logits32));
  REQUIRE(RelativeError(logits16, logits32) < 2e-2);  // ...and small: bf16 has 8 bits of mantissa
  // A different input moves the logits far more than bf16 rounding does.
  REQUIRE(RelativeError(fp32->forward(testing::RandomIds(4, 9, 9), mask, last), logits32) > 0.1);

  SequenceClassificationLoss(logits32, labels).backward();
  SequenceClassificationLoss(logits16, labels).backward();
  auto params32 = fp32->named_parameters();
  int64_t compared = 0;
  for (const auto& item : bf16->named_parameters()) {
    INFO(item.key());
    // Master weights are float32; of the frozen tensors only wte is held in the compute dtype.
    REQUIRE(item.value().scalar_type() ==
            (item.key() == "transformer.wte.weight" ? at::kBFloat16 : at::kFloat));
    if (!item.value().requires_grad()) continue;
    REQUIRE(item.value().grad().scalar_type() == at::kFloat);
    const at::Tensor want = params32[item.key()].grad();
    CAPTURE(RelativeError(item.value().grad(), want));
    REQUIRE(RelativeError(item.value().grad(), want) < 5e-2);
    ++compared;
  }
  REQUIRE(compared == 2 * 4 * 2 + 1);  // lora_A and lora_B of 4 layers x 2 blocks, and score

  // The optimizer's state is float32 too, and a step keeps the parameters float32.
  std::vector<at::Tensor> trainable;
  for (const auto& p : bf16->parameters()) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  FlatAdamW optimizer({torch::optim::OptimizerParamGroup(trainable)},
                      torch::optim::AdamWOptions(1e-3));
  optimizer.ZeroGrad();
  SequenceClassificationLoss(bf16->forward(ids, mask, last), labels).backward();
  optimizer.step();
  REQUIRE(optimizer.flat_params().scalar_type() == at::kFloat);
  REQUIRE(optimizer.exp_avg().scalar_type() == at::kFloat);
  REQUIRE(optimizer.exp_avg_sq().scalar_type() == at::kFloat);
  REQUIRE(optimizer.exp_avg().abs().sum().item<double>() > 0);
  for (const auto& p : trainable) REQUIRE(p.scalar_type() == at::kFloat);
}

// Issue 7's correctness goal: the CUDA path (NF4 kernel, bf16 GEMMs, sdpa where LibTorch has it)
// computes the CPU float32 reference's logits and LoRA gradients within bfloat16's precision.
TEST_CASE("On CUDA, bfloat16 QLoRA agrees with the CPU float32 reference",
          "[core][qlora][mixed_precision][cuda]") {
  if (!torch::cuda::is_available()) hpsearch::testing::Skip("no CUDA device");
  std::vector<std::string> implementations = {"eager"};
  if (compat::kHasScaledDotProductAttention) implementations.push_back("sdpa");
  for (const std::string& attn : implementations) {
    CAPTURE(attn);
    Gpt2ForSequenceClassification reference = DeterministicQlora(c10::ScalarType::Undefined);
    Gpt2ForSequenceClassification cuda = DeterministicQlora(at::kBFloat16, attn);
    cuda->to(torch::kCUDA);
    at::Tensor ids = testing::RandomIds(4, 9, 8);
    at::Tensor mask = at::ones({4, 9}, at::kLong);
    mask.slice(1, 5).select(0, 2).fill_(0);
    at::Tensor last = LastTokenIndexFromAttentionMask(mask);
    at::Tensor labels = at::tensor({2, 0, 1, 1}, at::kLong);
    at::Tensor want = reference->forward(ids, mask, last);
    at::Tensor got = cuda->forward(ids.cuda(), mask.cuda(), last.cuda());
    REQUIRE(got.is_cuda());
    CAPTURE(RelativeError(got.cpu(), want));
    REQUIRE(RelativeError(got.cpu(), want) < 2e-2);
    SequenceClassificationLoss(want, labels).backward();
    SequenceClassificationLoss(got, labels.cuda()).backward();
    auto reference_params = reference->named_parameters();
    for (const auto& item : cuda->named_parameters()) {
      if (!item.value().requires_grad()) continue;
      INFO(item.key());
      REQUIRE(item.value().grad().scalar_type() == at::kFloat);
      CAPTURE(RelativeError(item.value().grad().cpu(), reference_params[item.key()].grad()));
      REQUIRE(RelativeError(item.value().grad().cpu(), reference_params[item.key()].grad()) < 5e-2);
    }
  }
}

}  // namespace
}  // namespace hpsearch::core
