#include "core/hf_config.h"

#include "core/catch_torch.h"

#include <fstream>

#include "core/error_matchers.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

using nlohmann::json;

std::filesystem::path DataDir() { return testing::SourceDir() / "tests" / "data"; }

json TinyConfigJson() {
  return json{
      {"n_layer", 2}, {"n_embd", 16}, {"n_head", 2}, {"vocab_size", 64}, {"n_positions", 32}};
}

TEST_CASE("ParseHfGpt2Config reads DialoGPT-medium's GitHub config", "[core][hf_config]") {
  formats::HfGpt2Config c =
      formats::LoadHfGpt2Config(DataDir() / "configs" / "dialogpt_medium_github.json");
  REQUIRE(c.n_layer == 24);
  REQUIRE(c.n_embd == 1024);
  REQUIRE(c.n_head == 16);
  REQUIRE(c.head_dim() == 64);
  REQUIRE(c.n_positions == 1024);
  REQUIRE(c.vocab_size == 50257);
  REQUIRE(c.n_inner == 4096);
  REQUIRE(c.layer_norm_epsilon == Approx(1e-5));
  REQUIRE(c.activation_function == "gelu_new");
  REQUIRE(c.initializer_range == Approx(0.02));
  REQUIRE(c.resid_pdrop == Approx(0.1));
  REQUIRE(c.num_labels == 2);
  REQUIRE(c.id2label.empty());
  REQUIRE_FALSE(c.pad_token_id.has_value());
  REQUIRE_FALSE(c.eos_token_id.has_value());
}

TEST_CASE("ParseHfGpt2Config reads a Hugging Face classifier config", "[core][hf_config]") {
  formats::HfGpt2Config c = formats::LoadHfGpt2Config(DataDir() / "checkpoints" /
                                                      "tiny-gpt2-safetensors" / "config.json");
  REQUIRE(c.n_layer == 2);
  REQUIRE(c.n_positions == 32);
  REQUIRE(c.num_labels == 3);
  REQUIRE(c.id2label == std::vector<std::string>{"card_arrival", "card_linking", "exchange_rate"});
  REQUIRE(c.pad_token_id == 63);
  REQUIRE(c.eos_token_id == 63);
  REQUIRE(c.bos_token_id == 63);
}

TEST_CASE("ParseHfGpt2Config takes n_ctx when n_positions is absent", "[core][hf_config]") {
  json j = TinyConfigJson();
  j.erase("n_positions");
  j["n_ctx"] = 48;
  REQUIRE(formats::ParseHfGpt2Config(j, "config.json").n_positions == 48);
  j["n_inner"] = 20;
  j["num_labels"] = 77;
  j["activation_function"] = "relu";
  formats::HfGpt2Config c = formats::ParseHfGpt2Config(j, "config.json");
  REQUIRE(c.n_inner == 20);
  REQUIRE(c.num_labels == 77);
  REQUIRE(c.activation_function == "relu");
}

TEST_CASE("ParseHfGpt2Config names the file and key of every bad value", "[core][hf_config]") {
  struct Case {
    const char* key;
    json value;  // null erases the key
    ErrorCode code;
  };
  const Case cases[] = {
      {"n_layer", nullptr, ErrorCode::kInvalidArgument},
      {"n_embd", "16", ErrorCode::kInvalidArgument},
      {"n_head", 3, ErrorCode::kInvalidArgument},  // does not divide 16
      {"vocab_size", -1, ErrorCode::kInvalidArgument},
      {"n_layer", 2.5, ErrorCode::kInvalidArgument},
      {"activation_function", "swiglu", ErrorCode::kInvalidArgument},
      {"resid_pdrop", 1.0, ErrorCode::kInvalidArgument},
      {"layer_norm_epsilon", 0, ErrorCode::kInvalidArgument},
      {"pad_token_id", 64, ErrorCode::kInvalidArgument},
      {"id2label", json{{"0", "a"}, {"2", "b"}}, ErrorCode::kInvalidArgument},
      {"id2label", json{{"0", "a"}, {"x", "b"}}, ErrorCode::kInvalidArgument},
      {"model_type", "bert", ErrorCode::kUnsupported},
  };
  for (const Case& c : cases) {
    json j = TinyConfigJson();
    if (c.value.is_null()) {
      j.erase(c.key);
    } else {
      j[c.key] = c.value;
    }
    INFO("key " << c.key << " = " << c.value.dump());
    REQUIRE_CORE_ERROR(formats::ParseHfGpt2Config(j, "/models/x/config.json"), c.code,
                       "/models/x/config.json", c.key);
  }
  json no_positions = TinyConfigJson();
  no_positions.erase("n_positions");
  REQUIRE_CORE_ERROR(formats::ParseHfGpt2Config(no_positions, "c.json"),
                     ErrorCode::kInvalidArgument, "n_positions", "n_ctx");
  json disagree = TinyConfigJson();
  disagree["id2label"] = {{"0", "a"}, {"1", "b"}};
  disagree["num_labels"] = 3;
  REQUIRE_CORE_ERROR(formats::ParseHfGpt2Config(disagree, "c.json"), ErrorCode::kInvalidArgument,
                     "num_labels", "id2label");
}

TEST_CASE("LoadHfGpt2Config reports a missing file and invalid JSON", "[core][hf_config]") {
  testing::TempDir dir;
  REQUIRE_CORE_ERROR(formats::LoadHfGpt2Config(dir / "config.json"), ErrorCode::kNotFound,
                     (dir / "config.json").string());
  std::ofstream(dir / "config.json") << "{\"n_layer\": 2,";
  REQUIRE_CORE_ERROR(formats::LoadHfGpt2Config(dir / "config.json"), ErrorCode::kInvalidArgument,
                     (dir / "config.json").string(), "not valid JSON");
}

}  // namespace
}  // namespace hpsearch::core
