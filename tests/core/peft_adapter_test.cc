// Saving a trained classifier in PEFT's layout and loading it back gives identical logits.
#include <ATen/ATen.h>
#include "core/catch_torch.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/nf4_frozen_weight.h"
#include "core/peft_adapter.h"
#include "core/peft_state.h"
#include "core/safetensors.h"
#include "gpt2_test_util.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

// Perturbs every trainable tensor so a load that silently kept fresh weights would be caught.
void PretendTrained(Gpt2ForSequenceClassificationImpl& model) {
  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(77);
  for (auto& item : model.named_parameters()) {
    if (item.value().requires_grad())
      item.value().add_(at::randn(item.value().sizes(), generator) * 0.1);
  }
}

at::Tensor Logits(Gpt2ForSequenceClassificationImpl& model) {
  model.eval();
  at::Tensor ids = testing::RandomIds(4, 7, 3);
  return model.forward(ids, at::ones({4, 7}, at::kLong), at::full({4}, 6, at::kLong));
}

TEST_CASE("A LoRA adapter saved in PEFT's layout loads back to identical logits",
          "[core][adapter]") {
  hpsearch::testing::TempDir dir;
  Gpt2ForSequenceClassificationOptions options = testing::TinyOptions(FineTuningMethod::kLora, 2);
  options.fine_tuning.target_modules = {"c_attn", "c_fc"};
  Gpt2ForSequenceClassification trained(options);
  PretendTrained(*trained);
  SaveTrainedModel(dir.path().string(), *trained, {"random_init", {"a", "b", "c"}});

  // PEFT's files: the config PEFT reads and the saved key names.
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir / "adapter_config.json"));
  REQUIRE(config["peft_type"] == "LORA");
  REQUIRE(config["task_type"] == "SEQ_CLS");
  REQUIRE(config["r"] == 8);
  REQUIRE(config["fan_in_fan_out"] == true);
  REQUIRE(config["modules_to_save"] == nlohmann::json::array({"score"}));
  SafetensorsContents saved = ReadSafetensors(dir / "adapter_model.safetensors");
  REQUIRE(saved.tensors.count("base_model.model.transformer.h.1.attn.c_attn.lora_A.weight") == 1);
  REQUIRE(saved.tensors.count("base_model.model.transformer.h.0.mlp.c_fc.lora_B.weight") == 1);
  REQUIRE(saved.tensors.count("base_model.model.score.weight") == 1);
  REQUIRE(saved.tensors.size() == 2 * 2 * 2 + 1);  // 2 layers x 2 targets x (A, B) + score

  // Rebuilt from hpsearch_model.json with the same base weights (seed 2), the adapter restores the
  // logits.
  SavedModelInfo info;
  Gpt2ForSequenceClassificationOptions rebuilt_options =
      ReadSavedModelOptions(dir.path().string(), &info);
  REQUIRE(info.labels == std::vector<std::string>{"a", "b", "c"});
  rebuilt_options.seed = 2;
  Gpt2ForSequenceClassification loaded(rebuilt_options);
  REQUIRE_FALSE(at::equal(Logits(*loaded), Logits(*trained)));
  LoadTrainedModel(dir.path().string(), *loaded);
  REQUIRE(at::equal(Logits(*loaded), Logits(*trained)));
}

TEST_CASE("A QLoRA adapter loads onto a freshly quantised base", "[core][adapter]") {
  hpsearch::testing::TempDir dir;
  Gpt2ForSequenceClassificationOptions options = testing::TinyOptions(FineTuningMethod::kQlora, 2);
  options.config.n_embd = 64;
  Gpt2ForSequenceClassification trained(options);
  ReplaceFrozenBaseWeights(*trained, Nf4FrozenWeightFactory({}));
  PretendTrained(*trained);
  SaveTrainedModel(dir.path().string(), *trained, {"base", {"a", "b", "c"}});
  Gpt2ForSequenceClassification loaded(options);
  ReplaceFrozenBaseWeights(*loaded, Nf4FrozenWeightFactory({}));
  LoadTrainedModel(dir.path().string(), *loaded);
  REQUIRE(at::equal(Logits(*loaded), Logits(*trained)));
}

TEST_CASE("A fully fine-tuned model saves as a Hugging Face checkpoint", "[core][adapter]") {
  hpsearch::testing::TempDir dir;
  Gpt2ForSequenceClassification trained(testing::TinyOptions(FineTuningMethod::kFull, 2));
  PretendTrained(*trained);
  SaveTrainedModel(dir.path().string(), *trained, {"random_init", {"x", "y", "z"}});
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  REQUIRE(config["id2label"]["1"] == "y");
  REQUIRE(config["architectures"][0] == "GPT2ForSequenceClassification");
  SavedModelInfo info;
  Gpt2ForSequenceClassificationOptions rebuilt = ReadSavedModelOptions(dir.path().string(), &info);
  rebuilt.seed = 9;
  Gpt2ForSequenceClassification loaded(rebuilt);
  LoadTrainedModel(dir.path().string(), *loaded);
  REQUIRE(at::equal(Logits(*loaded), Logits(*trained)));
}

TEST_CASE("Loading an adapter into another model names the missing tensor", "[core][adapter]") {
  hpsearch::testing::TempDir dir;
  Gpt2ForSequenceClassification trained(testing::TinyOptions(FineTuningMethod::kLora, 2));
  SaveTrainedModel(dir.path().string(), *trained, {"b", {"a", "b", "c"}});
  Gpt2ForSequenceClassificationOptions other = testing::TinyOptions(FineTuningMethod::kLora, 2);
  other.fine_tuning.target_modules = {"c_fc"};
  Gpt2ForSequenceClassification loaded(other);
  REQUIRE_THROWS_WITH(
      LoadTrainedModel(dir.path().string(), *loaded),
      Catch::Contains("adapter_model.safetensors: tensor "
                      "base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight is missing"));
}

}  // namespace
}  // namespace hpsearch::core
