#include <ATen/ATen.h>
#include "core/catch_torch.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/checkpoint.h"
#include "core/core_test_files.h"
#include "core/error_matchers.h"
#include "core/safetensors.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

using nlohmann::json;

struct Loaded {
  Checkpoint checkpoint;
  std::vector<std::string> warnings;
};

Loaded Load(const std::filesystem::path& dir) {
  Loaded loaded;
  loaded.checkpoint =
      LoadCheckpoint(dir, [&](const std::string& w) { loaded.warnings.push_back(w); });
  return loaded;
}

bool AnyContains(const std::vector<std::string>& warnings, const std::string& part) {
  for (const std::string& w : warnings) {
    if (w.find(part) != std::string::npos) return true;
  }
  return false;
}

// A checkpoint directory in a temp dir: the tiny classifier's config (optionally edited) and its
// tensors (optionally edited), written with WriteSafetensors.
class ScratchCheckpoint {
 public:
  ScratchCheckpoint() {
    std::ifstream in(testing::CheckpointFixtureDir() / "tiny-gpt2-safetensors" / "config.json");
    config = json::parse(in);
    tensors = ReadSafetensors(testing::CheckpointFixtureDir() / "tiny-gpt2-safetensors" /
                              "model.safetensors")
                  .tensors;
  }
  std::filesystem::path Write() {
    std::ofstream(dir / "config.json") << config.dump();
    WriteSafetensors(dir / "model.safetensors", tensors);
    return dir.path();
  }
  std::string weights() const { return (dir / "model.safetensors").string(); }

  testing::TempDir dir;
  json config;
  TensorMap tensors;
};

TEST_CASE("LoadCheckpoint loads all three formats to the expected tensors", "[core][checkpoint]") {
  std::ifstream in(testing::CheckpointFixtureDir() / "expected.json");
  const json expected = json::parse(in);
  std::map<std::string, Loaded> loaded;
  for (const char* name : {"tiny-gpt2-safetensors", "tiny-gpt2-zip", "tiny-gpt2-legacy"}) {
    INFO(name);
    Loaded l = Load(testing::CheckpointFixtureDir() / name);
    const Checkpoint& c = l.checkpoint;
    REQUIRE(c.config.n_layer == 2);
    REQUIRE(c.config.n_positions == 32);
    const bool classifier = std::string(name) == "tiny-gpt2-safetensors";
    REQUIRE(c.weights_path.filename() == (classifier ? "model.safetensors" : "pytorch_model.bin"));
    REQUIRE(c.tensors.size() == 28u + (classifier ? 1 : 0));
    for (const auto& [tensor_name, shape] : Gpt2TensorShapes(c.config)) {
      INFO(tensor_name);
      const at::Tensor& t = c.tensors.at(tensor_name);
      REQUIRE(t.scalar_type() == at::kFloat);
      REQUIRE(t.is_contiguous());
      REQUIRE(t.sizes().vec() == shape);
      const json& want = expected.at(tensor_name);
      REQUIRE(t.sum().item<double>() == Approx(want["sum"].get<double>()).margin(1e-5));
      at::Tensor flat = t.reshape({-1});
      for (int i = 0; i < 4; ++i) {
        REQUIRE(flat[i].item<float>() == static_cast<float>(want["first"][i].get<double>()));
      }
      REQUIRE(flat[-1].item<float>() == static_cast<float>(want["last"].get<double>()));
    }
    REQUIRE(c.tensors.count("lm_head.weight") == 0);
    REQUIRE(c.tensors.count("transformer.h.0.attn.bias") == 0);
    REQUIRE_FALSE(AnyContains(l.warnings, "not used"));
    loaded.emplace(name, std::move(l));
  }
  // The three files hold the same weights: identical to the bit after loading.
  const TensorMap& zip = loaded.at("tiny-gpt2-zip").checkpoint.tensors;
  for (const auto& [name, tensor] : loaded.at("tiny-gpt2-legacy").checkpoint.tensors) {
    REQUIRE(at::equal(tensor, zip.at(name)));
    REQUIRE(at::equal(tensor, loaded.at("tiny-gpt2-safetensors").checkpoint.tensors.at(name)));
  }
  // The classifier's head is loaded; the language models' is reported as newly initialised.
  const Loaded& classifier = loaded.at("tiny-gpt2-safetensors");
  REQUIRE(classifier.checkpoint.tensors.at("score.weight").sizes() == at::IntArrayRef({3, 16}));
  REQUIRE(classifier.warnings.empty());
  for (const char* name : {"tiny-gpt2-zip", "tiny-gpt2-legacy"}) {
    const auto& warnings = loaded.at(name).warnings;
    REQUIRE(warnings.size() == 1);
    REQUIRE(AnyContains(warnings, "score.weight"));
    REQUIRE(AnyContains(warnings, "newly initialized"));
  }
}

TEST_CASE("LoadCheckpoint converts half-precision weights to float32", "[core][checkpoint]") {
  ScratchCheckpoint s;
  const TensorMap original = s.tensors;
  for (auto& [name, t] : s.tensors)
    t = (name.find("ln_") != std::string::npos) ? t : t.to(at::kHalf);
  s.tensors["transformer.ln_f.bias"] = s.tensors["transformer.ln_f.bias"].to(at::kBFloat16);
  Checkpoint c = LoadCheckpoint(s.Write());
  for (const auto& [name, t] : c.tensors) {
    INFO(name);
    REQUIRE(t.scalar_type() == at::kFloat);
    REQUIRE(at::allclose(t, original.at(name), /*rtol=*/1e-2, /*atol=*/1e-4));
  }
  REQUIRE(at::equal(c.tensors.at("transformer.ln_f.bias"),
                    s.tensors["transformer.ln_f.bias"].to(at::kFloat)));
}

TEST_CASE("LoadCheckpoint names the file and tensor of a missing or misshapen tensor",
          "[core][checkpoint]") {
  ScratchCheckpoint s;
  SECTION("missing tensor") {
    s.tensors.erase("transformer.h.1.mlp.c_fc.weight");
    REQUIRE_CORE_ERROR(LoadCheckpoint(s.Write()), ErrorCode::kNotFound, s.weights(),
                       "\"transformer.h.1.mlp.c_fc.weight\"", "missing");
  }
  SECTION("wrong shape") {
    s.tensors["transformer.h.0.attn.c_attn.weight"] = at::zeros({48, 16});  // [out, in]: transposed
    REQUIRE_CORE_ERROR(LoadCheckpoint(s.Write()), ErrorCode::kInvalidArgument, s.weights(),
                       "\"transformer.h.0.attn.c_attn.weight\"", "[48, 16]", "[16, 48]");
  }
  SECTION("config disagrees with the weights") {
    s.config["n_layer"] = 3;
    REQUIRE_CORE_ERROR(LoadCheckpoint(s.Write()), ErrorCode::kNotFound, s.weights(),
                       "transformer.h.2.");
  }
  SECTION("integer weights") {
    s.tensors["transformer.wpe.weight"] = at::zeros({32, 16}, at::kLong);
    REQUIRE_CORE_ERROR(LoadCheckpoint(s.Write()), ErrorCode::kInvalidArgument, s.weights(),
                       "\"transformer.wpe.weight\"", "dtype");
  }
  SECTION("score head for another number of labels") {
    s.config.erase("id2label");
    s.config.erase("label2id");
    s.config["num_labels"] = 77;
    REQUIRE_CORE_ERROR(LoadCheckpoint(s.Write()), ErrorCode::kInvalidArgument, s.weights(),
                       "\"score.weight\"", "[3, 16]", "[77, 16]");
  }
  SECTION("same tensor with and without the prefix") {
    s.tensors["wte.weight"] = s.tensors.at("transformer.wte.weight");
    REQUIRE_CORE_ERROR(LoadCheckpoint(s.Write()), ErrorCode::kInvalidArgument, s.weights(),
                       "\"transformer.wte.weight\"", "prefix");
  }
}

TEST_CASE("LoadCheckpoint warns about unused tensors and prefers safetensors",
          "[core][checkpoint]") {
  ScratchCheckpoint s;
  s.tensors["transformer.h.0.attn.c_attn.lora_A"] = at::zeros({4, 16});
  const auto dir = s.Write();
  std::ofstream(dir / "pytorch_model.bin") << "not a checkpoint";  // ignored: safetensors wins
  Loaded l = Load(dir);
  REQUIRE(l.checkpoint.weights_path.filename() == "model.safetensors");
  REQUIRE(l.warnings.size() == 1);
  REQUIRE(AnyContains(l.warnings, "not used"));
  REQUIRE(AnyContains(l.warnings, "transformer.h.0.attn.c_attn.lora_A"));
  REQUIRE(l.checkpoint.tensors.count("transformer.h.0.attn.c_attn.lora_A") == 0);
}

TEST_CASE("LoadCheckpoint reports missing and sharded weight files", "[core][checkpoint]") {
  testing::TempDir dir;
  REQUIRE_CORE_ERROR(LoadCheckpoint(dir.path()), ErrorCode::kNotFound, "config.json");
  std::filesystem::copy_file(testing::CheckpointFixtureDir() / "tiny-gpt2-zip" / "config.json",
                             dir / "config.json");
  REQUIRE_CORE_ERROR(LoadCheckpoint(dir.path()), ErrorCode::kNotFound, dir.path().string(),
                     "model.safetensors", "pytorch_model.bin");
  std::ofstream(dir / "model.safetensors.index.json") << "{}";
  REQUIRE_CORE_ERROR(LoadCheckpoint(dir.path()), ErrorCode::kUnsupported, "sharded");
}

}  // namespace
}  // namespace hpsearch::core
