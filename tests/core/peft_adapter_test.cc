// Saving a trained classifier in PEFT's layout and loading it back gives identical logits.
#include <ATen/ATen.h>
#include "core/catch_torch.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/checkpoint.h"
#include "core/nf4_frozen_weight.h"
#include "core/peft_adapter.h"
#include "core/peft_state.h"
#include "core/safetensors.h"
#include "core/tokenizer.h"
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

// tests/data/hf_gpt2_fixture is made by scripts/make_hf_logits_fixture.py where transformers and
// PEFT are installed (the GPU machine; scripts/gpu-check.sh runs it). Until it is committed this
// test reports skipped.
TEST_CASE("Logits equal Hugging Face's, with and without a PEFT LoRA adapter",
          "[core][adapter][hf_fixture]") {
  const std::filesystem::path dir = hpsearch::testing::SourceDir() / "tests/data/hf_gpt2_fixture";
  if (!std::filesystem::exists(dir / "logits.json")) {
    hpsearch::testing::Skip(
        "no " + dir.string() +
        "; make it with scripts/make_hf_logits_fixture.py (needs transformers)");
  }
  const nlohmann::json fixture = nlohmann::json::parse(std::ifstream(dir / "logits.json"));
  auto tensor2d = [](const nlohmann::json& rows, at::ScalarType dtype) {
    std::vector<at::Tensor> out;
    for (const auto& row : rows) out.push_back(at::tensor(row.get<std::vector<double>>()));
    return at::stack(out).to(dtype);
  };
  const at::Tensor ids = tensor2d(fixture["input_ids"], at::kLong);
  const at::Tensor mask = tensor2d(fixture["attention_mask"], at::kLong);

  // Our tokenizer gives Hugging Face's ids.
  const Gpt2Tokenizer tokenizer =
      Gpt2Tokenizer::FromDirectory((hpsearch::testing::SourceDir() / "data/gpt2").string());
  for (size_t row = 0; row < fixture["texts"].size(); ++row) {
    const std::vector<int32_t> ours = tokenizer.Encode(fixture["texts"][row].get<std::string>());
    const int64_t length = mask[static_cast<int64_t>(row)].sum().item<int64_t>();
    REQUIRE(static_cast<int64_t>(ours.size()) == length);
    for (int64_t t = 0; t < length; ++t) {
      REQUIRE(ours[static_cast<size_t>(t)] == ids[static_cast<int64_t>(row)][t].item<int64_t>());
    }
  }

  const Checkpoint checkpoint = LoadCheckpoint(dir / "base");
  const formats::HfGpt2Config& hf = checkpoint.config;
  Gpt2ForSequenceClassificationOptions options;
  options.config.n_layer = hf.n_layer;
  options.config.n_embd = hf.n_embd;
  options.config.n_head = hf.n_head;
  options.config.n_positions = hf.n_positions;
  options.config.vocab_size = hf.vocab_size;
  options.config.layer_norm_epsilon = hf.layer_norm_epsilon;
  options.config.num_labels = hf.num_labels;
  options.config.pad_token_id = hf.pad_token_id.value_or(50256);
  std::map<std::string, at::Tensor> weights;
  for (const auto& [name, tensor] : checkpoint.tensors) {
    weights[name.rfind("transformer.", 0) == 0 ? name.substr(12) : name] = tensor;
  }
  auto logits_of = [&](Gpt2ForSequenceClassification& model) {
    model->eval();
    return model->forward(ids, mask, LastTokenIndexFromAttentionMask(mask));
  };
  Gpt2ForSequenceClassification base(options);
  base->LoadHfWeights(weights);
  const at::Tensor want = tensor2d(fixture["logits"], at::kFloat);
  CAPTURE((logits_of(base) - want).abs().max().item<double>());
  REQUIRE(at::allclose(logits_of(base), want, 1e-4, 1e-4));

  // The adapter PEFT saved, read by PEFT's saved names.
  options.fine_tuning.method = FineTuningMethod::kLora;
  options.fine_tuning.lora_r = fixture["lora"]["r"].get<int64_t>();
  options.fine_tuning.lora_alpha = fixture["lora"]["alpha"].get<double>();
  options.fine_tuning.target_modules =
      fixture["lora"]["target_modules"].get<std::vector<std::string>>();
  Gpt2ForSequenceClassification adapted(options);
  adapted->LoadHfWeights(weights);
  const SafetensorsContents adapter = ReadSafetensors(dir / "adapter/adapter_model.safetensors");
  int64_t loaded = 0;
  torch::NoGradGuard no_grad;
  for (auto& item : adapted->named_parameters()) {
    if (item.key().find("lora_") == std::string::npos) continue;
    auto it = adapter.tensors.find(PeftSavedKey(item.key()));
    INFO(PeftSavedKey(item.key()));
    REQUIRE(it != adapter.tensors.end());
    item.value().copy_(it->second);
    ++loaded;
  }
  REQUIRE(loaded == hf.n_layer * 4 * 2);  // c_attn, attn.c_proj, c_fc, mlp.c_proj x (A, B)
  const at::Tensor want_adapted = tensor2d(fixture["adapter_logits"], at::kFloat);
  REQUIRE_FALSE(at::allclose(want_adapted, want, 1e-3, 1e-3));  // the adapter matters
  CAPTURE((logits_of(adapted) - want_adapted).abs().max().item<double>());
  REQUIRE(at::allclose(logits_of(adapted), want_adapted, 1e-4, 1e-4));
}

}  // namespace
}  // namespace hpsearch::core
