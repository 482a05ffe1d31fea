#include "formats/hf_config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "formats/error.h"
#include "formats/json_nesting.h"

namespace hpsearch::formats {
namespace {

using nlohmann::json;

[[noreturn]] void Invalid(const std::string& source, const std::string& key,
                          const std::string& what) {
  Fail(ErrorCode::kInvalidArgument, source + ": key \"" + key + "\" " + what);
}

// Sizes and ids must be JSON integers: transformers writes them so, and a float there means a
// hand-edited or foreign file whose other values deserve no more trust.
int64_t RequireInt(const json& j, const std::string& source, const std::string& key) {
  if (!j.is_number_integer()) Invalid(source, key, "must be an integer, got " + JsonExcerpt(j));
  return j.get<int64_t>();
}

double RequireNumber(const json& j, const std::string& source, const std::string& key) {
  if (!j.is_number()) Invalid(source, key, "must be a number, got " + JsonExcerpt(j));
  return j.get<double>();
}

int64_t PositiveInt(const json& config, const std::string& source, const std::string& key) {
  auto it = config.find(key);
  if (it == config.end()) Invalid(source, key, "is missing; a GPT-2 config.json must set it");
  int64_t value = RequireInt(*it, source, key);
  if (value <= 0) Invalid(source, key, "must be positive, got " + std::to_string(value));
  return value;
}

void OptionalNumber(const json& config, const std::string& source, const std::string& key,
                    double* out) {
  auto it = config.find(key);
  if (it != config.end() && !it->is_null()) *out = RequireNumber(*it, source, key);
}

void OptionalBool(const json& config, const std::string& source, const std::string& key,
                  bool* out) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return;
  if (!it->is_boolean()) Invalid(source, key, "must be true or false, got " + JsonExcerpt(*it));
  *out = it->get<bool>();
}

std::optional<int64_t> OptionalTokenId(const json& config, const std::string& source,
                                       const std::string& key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  int64_t id = RequireInt(*it, source, key);
  if (id < 0) Invalid(source, key, "must be a non-negative token id, got " + std::to_string(id));
  return id;
}

void CheckDropout(const std::string& source, const std::string& key, double p) {
  if (!(p >= 0.0 && p < 1.0)) Invalid(source, key, "must be in [0, 1), got " + std::to_string(p));
}

// id2label maps decimal strings to names: {"0": "card_arrival", ...}. The keys must be exactly
// 0..n-1.
std::vector<std::string> ParseId2Label(const json& id2label, const std::string& source) {
  if (!id2label.is_object())
    Invalid(source, "id2label", "must be an object, got " + JsonExcerpt(id2label));
  std::vector<std::string> labels(id2label.size());
  std::vector<bool> seen(id2label.size(), false);
  for (const auto& [key, value] : id2label.items()) {
    size_t parsed = 0;
    long long index = -1;
    try {
      index = std::stoll(key, &parsed);
    } catch (const std::exception&) {
      parsed = 0;
    }
    if (parsed != key.size() || index < 0 || index >= static_cast<long long>(labels.size())) {
      Invalid(source, "id2label",
              "has key \"" + key + "\"; keys must be the class ids 0.." +
                  std::to_string(labels.size() - 1));
    }
    if (!value.is_string()) {
      Invalid(source, "id2label",
              "entry \"" + key + "\" must be a string, got " + JsonExcerpt(value));
    }
    if (seen[index]) Invalid(source, "id2label", "lists class " + key + " twice");
    seen[index] = true;
    labels[index] = value.get<std::string>();
  }
  return labels;
}

}  // namespace

const std::vector<std::string>& KnownGpt2Activations() {
  static const std::vector<std::string> kNames = {
      "gelu_new", "gelu", "gelu_fast", "gelu_pytorch_tanh", "quick_gelu", "relu", "silu",
      "swish",    "tanh", "linear"};
  return kNames;
}

HfGpt2Config ParseHfGpt2Config(const json& config, const std::string& source) {
  if (!config.is_object()) {
    Fail(ErrorCode::kInvalidArgument,
         source + ": must hold a JSON object, got " + std::string(config.type_name()));
  }
  if (auto it = config.find("model_type"); it != config.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>() != "gpt2") {
      Fail(ErrorCode::kUnsupported, source + ": key \"model_type\" is " + JsonExcerpt(*it) +
                                        "; only GPT-2-family checkpoints (\"gpt2\") are supported");
    }
  }

  HfGpt2Config c;
  c.n_layer = PositiveInt(config, source, "n_layer");
  c.n_embd = PositiveInt(config, source, "n_embd");
  c.n_head = PositiveInt(config, source, "n_head");
  c.vocab_size = PositiveInt(config, source, "vocab_size");
  if (config.contains("n_positions")) {
    c.n_positions = PositiveInt(config, source, "n_positions");
  } else if (config.contains("n_ctx")) {
    c.n_positions = PositiveInt(config, source, "n_ctx");
  } else {
    Invalid(source, "n_positions",
            "is missing (and so is the older \"n_ctx\"); set the context length");
  }
  if (c.n_embd % c.n_head != 0) {
    Invalid(
        source, "n_head",
        "(" + std::to_string(c.n_head) + ") must divide n_embd (" + std::to_string(c.n_embd) + ")");
  }
  c.n_inner = 4 * c.n_embd;
  if (auto it = config.find("n_inner"); it != config.end() && !it->is_null()) {
    c.n_inner = PositiveInt(config, source, "n_inner");
  }

  OptionalNumber(config, source, "layer_norm_epsilon", &c.layer_norm_epsilon);
  if (!(c.layer_norm_epsilon > 0.0)) Invalid(source, "layer_norm_epsilon", "must be positive");
  OptionalNumber(config, source, "initializer_range", &c.initializer_range);
  if (!(c.initializer_range >= 0.0)) Invalid(source, "initializer_range", "must be non-negative");
  if (auto it = config.find("activation_function"); it != config.end() && !it->is_null()) {
    if (!it->is_string())
      Invalid(source, "activation_function", "must be a string, got " + JsonExcerpt(*it));
    c.activation_function = it->get<std::string>();
    const auto& known = KnownGpt2Activations();
    if (std::find(known.begin(), known.end(), c.activation_function) == known.end()) {
      Invalid(
          source, "activation_function",
          "is \"" + c.activation_function + "\", which GPT-2 does not know (expected gelu_new, " +
              "gelu, gelu_fast, gelu_pytorch_tanh, quick_gelu, relu, silu, swish, tanh or linear)");
    }
  }
  OptionalBool(config, source, "scale_attn_weights", &c.scale_attn_weights);
  OptionalBool(config, source, "scale_attn_by_inverse_layer_idx",
               &c.scale_attn_by_inverse_layer_idx);
  OptionalBool(config, source, "reorder_and_upcast_attn", &c.reorder_and_upcast_attn);

  OptionalNumber(config, source, "resid_pdrop", &c.resid_pdrop);
  OptionalNumber(config, source, "embd_pdrop", &c.embd_pdrop);
  OptionalNumber(config, source, "attn_pdrop", &c.attn_pdrop);
  CheckDropout(source, "resid_pdrop", c.resid_pdrop);
  CheckDropout(source, "embd_pdrop", c.embd_pdrop);
  CheckDropout(source, "attn_pdrop", c.attn_pdrop);

  if (auto it = config.find("id2label"); it != config.end() && !it->is_null()) {
    c.id2label = ParseId2Label(*it, source);
    if (c.id2label.empty())
      Invalid(source, "id2label", "is empty; a classifier needs at least 1 class");
    c.num_labels = static_cast<int64_t>(c.id2label.size());
  }
  if (auto it = config.find("num_labels"); it != config.end() && !it->is_null()) {
    int64_t num_labels = PositiveInt(config, source, "num_labels");
    if (!c.id2label.empty() && num_labels != c.num_labels) {
      Invalid(source, "num_labels",
              "is " + std::to_string(num_labels) + " but id2label lists " +
                  std::to_string(c.num_labels) + " classes");
    }
    c.num_labels = num_labels;
  }

  CheckGpt2ShapeLimits(source, c.n_layer, c.n_embd, c.n_head, c.n_positions, c.vocab_size,
                       c.num_labels);
  c.pad_token_id = OptionalTokenId(config, source, "pad_token_id");
  c.bos_token_id = OptionalTokenId(config, source, "bos_token_id");
  c.eos_token_id = OptionalTokenId(config, source, "eos_token_id");
  for (const auto& [key, id] :
       {std::pair{"pad_token_id", c.pad_token_id}, std::pair{"bos_token_id", c.bos_token_id},
        std::pair{"eos_token_id", c.eos_token_id}}) {
    if (id && *id >= c.vocab_size) {
      Invalid(source, key,
              "is " + std::to_string(*id) + ", outside the vocabulary of " +
                  std::to_string(c.vocab_size) + " tokens");
    }
  }
  return c;
}

HfGpt2Config LoadHfGpt2Config(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    Fail(ErrorCode::kNotFound, path.string() +
                                   ": no such config file (a checkpoint directory needs "
                                   "the config.json saved with its weights)");
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) Fail(ErrorCode::kIo, path.string() + ": cannot be read");
  json config;
  CheckJsonNesting(text.str(), path.string(), ErrorCode::kInvalidArgument);
  try {
    config = json::parse(text.str());
  } catch (const json::exception& e) {
    Fail(ErrorCode::kInvalidArgument, path.string() + ": not valid JSON: " + JsonErrorExcerpt(e));
  }
  return ParseHfGpt2Config(config, path.string());
}

}  // namespace hpsearch::formats
