// QLoRA: the model with NF4 base weights computes exactly what the model computes on the
// dequantised weights, and trains.
#include <ATen/ATen.h>
#include <torch/optim/adamw.h>
#include "core/catch_torch.h"

#include "core/nf4_frozen_weight.h"
#include "core/peft_state.h"
#include "gpt2_test_util.h"

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

}  // namespace
}  // namespace hpsearch::core
