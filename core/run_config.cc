#include "core/run_config.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "formats/json_nesting.h"

namespace hpsearch::core {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string CamelCase(const std::string& snake) {
  std::string out;
  bool upper = false;
  for (char c : snake) {
    if (c == '_') {
      upper = true;
    } else {
      out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      upper = false;
    }
  }
  return out;
}

// Reads keys of one JSON object under a dotted prefix used in messages.
class Section {
 public:
  Section(const json* object, std::string prefix) : object_(object), prefix_(std::move(prefix)) {}

  const json* Find(const std::string& key) const {
    if (object_ == nullptr || !object_->is_object()) return nullptr;
    auto it = object_->find(key);
    if (it == object_->end()) it = object_->find(CamelCase(key));
    if (it == object_->end() || it->is_null()) return nullptr;
    return &*it;
  }

  Section Child(const std::string& key) const {
    const json* child = Find(key);
    if (child != nullptr && !child->is_object())
      Fail(ErrorCode::kInvalidArgument, Name(key) + ": expected an object");
    return Section(child, Name(key));
  }
  bool Has(const std::string& key) const { return Find(key) != nullptr; }

  void Read(const std::string& key, std::string* out) const {
    if (const json* v = Find(key)) {
      if (!v->is_string()) Fail(ErrorCode::kInvalidArgument, Name(key) + ": expected a string");
      *out = v->get<std::string>();
    }
  }
  void Read(const std::string& key, bool* out) const {
    if (const json* v = Find(key)) {
      if (!v->is_boolean())
        Fail(ErrorCode::kInvalidArgument, Name(key) + ": expected true or false");
      *out = v->get<bool>();
    }
  }
  void Read(const std::string& key, double* out) const {
    if (const json* v = Find(key)) {
      if (!v->is_number()) Fail(ErrorCode::kInvalidArgument, Name(key) + ": expected a number");
      *out = v->get<double>();
    }
  }
  // proto3 JSON writes 64-bit integers as strings; both forms are accepted.
  void Read(const std::string& key, int64_t* out) const {
    if (const json* v = Find(key)) *out = Integer(*v, key);
  }
  void Read(const std::string& key, uint64_t* out) const {
    if (const json* v = Find(key)) {
      int64_t value = Integer(*v, key);
      if (value < 0) Fail(ErrorCode::kInvalidArgument, Name(key) + ": must not be negative");
      *out = static_cast<uint64_t>(value);
    }
  }
  void Read(const std::string& key, std::vector<std::string>* out) const {
    if (const json* v = Find(key)) {
      if (!v->is_array())
        Fail(ErrorCode::kInvalidArgument, Name(key) + ": expected a list of strings");
      out->clear();
      for (const json& item : *v) {
        if (!item.is_string())
          Fail(ErrorCode::kInvalidArgument, Name(key) + ": expected a list of strings");
        out->push_back(item.get<std::string>());
      }
    }
  }
  // An enum as proto3 JSON writes it ("FINE_TUNE_METHOD_QLORA") or its short lower-case name
  // ("qlora").
  void ReadEnum(const std::string& key, const std::string& prefix, std::string* out) const {
    std::string value;
    Read(key, &value);
    if (value.empty()) return;
    if (value.rfind(prefix, 0) == 0) value = value.substr(prefix.size());
    for (char& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (value != "unspecified") *out = value;
  }

  std::string Name(const std::string& key) const {
    return prefix_.empty() ? key : prefix_ + "." + key;
  }

 private:
  int64_t Integer(const json& v, const std::string& key) const {
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      size_t used = 0;
      try {
        int64_t value = std::stoll(s, &used);
        if (used == s.size()) return value;
      } catch (const std::exception&) {
      }
    }
    Fail(ErrorCode::kInvalidArgument, Name(key) + ": expected a whole number");
  }

  const json* object_;
  std::string prefix_;
};

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (base_dir.empty() || path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(base_dir) / path).lexically_normal().string();
}

void Require(bool ok, const std::string& key, const std::string& message) {
  if (!ok) Fail(ErrorCode::kInvalidArgument, key + ": " + message);
}

// A rule of base/training_defaults.h: `broken_rule` is its Check*'s answer.
void RequireRule(const char* broken_rule, const std::string& key) {
  if (broken_rule != nullptr) Fail(ErrorCode::kInvalidArgument, key + ": " + broken_rule);
}

}  // namespace

RunConfig RunConfigFromJson(const json& root, const std::string& base_dir) {
  if (!root.is_object()) Fail(ErrorCode::kInvalidArgument, "run config: expected a JSON object");
  RunConfig config;
  Section top(&root, "");
  top.Read("seed", &config.seed);

  Section model = top.Child("model");
  model.Read("path", &config.model.path);
  model.Read("tokenizer", &config.model.tokenizer);
  if (model.Has("random_init")) {
    config.model.random_init = true;
    Section arch = model.Child("random_init");
    RandomInitConfig& a = config.model.architecture;
    arch.Read("n_layer", &a.n_layer);
    arch.Read("n_embd", &a.n_embd);
    arch.Read("n_head", &a.n_head);
    arch.Read("n_positions", &a.n_positions);
    arch.Read("vocab_size", &a.vocab_size);
    arch.Read("layer_norm_epsilon", &a.layer_norm_epsilon);
    arch.Read("initializer_range", &a.initializer_range);
    arch.Read("dropout", &a.dropout);
    arch.Read("activation", &a.activation);
    arch.Read("compact_vocab", &a.compact_vocab);
  }
  if (config.model.tokenizer.empty()) config.model.tokenizer = config.model.path;
  config.model.path = Resolve(base_dir, config.model.path);
  config.model.tokenizer = Resolve(base_dir, config.model.tokenizer);

  Section data = top.Child("data");
  DataConfig& d = config.data;
  d.split_seed = config.seed;
  data.Read("train_file", &d.train_file);
  data.Read("validation_file", &d.validation_file);
  data.Read("test_file", &d.test_file);
  data.Read("validation_fraction", &d.validation_fraction);
  data.Read("split_seed", &d.split_seed);
  data.Read("stratify", &d.stratify);
  data.Read("text_column", &d.text_column);
  data.Read("label_column", &d.label_column);
  data.Read("labels", &d.labels);
  data.Read("max_length", &d.max_length);
  data.Read("eval_batch_size", &d.eval_batch_size);
  data.Read("group_by_length", &d.group_by_length);
  data.ReadEnum("format", "DATA_FORMAT_", &d.format);
  d.train_file = Resolve(base_dir, d.train_file);
  d.validation_file = Resolve(base_dir, d.validation_file);
  d.test_file = Resolve(base_dir, d.test_file);

  Section training = top.Child("training");
  TrainingConfig& t = config.training;
  training.Read("learning_rate", &t.learning_rate);
  training.Read("batch_size", &t.batch_size);
  training.Read("epochs", &t.epochs);
  training.Read("weight_decay", &t.weight_decay);
  training.Read("warmup_steps", &t.warmup_steps);
  training.Read("max_grad_norm", &t.max_grad_norm);
  training.Read("gradient_checkpointing", &t.gradient_checkpointing);
  training.Read("adam_beta1", &t.adam_beta1);
  training.Read("adam_beta2", &t.adam_beta2);
  training.Read("adam_epsilon", &t.adam_epsilon);

  Section fine_tune = top.Child("fine_tune");
  FineTuneConfig& f = config.fine_tune;
  fine_tune.ReadEnum("method", "FINE_TUNE_METHOD_", &f.method);
  Section quantization = fine_tune.Child("quantization");
  quantization.Read("double_quant", &f.double_quant);
  quantization.Read("block_size", &f.block_size);
  quantization.ReadEnum("compute_dtype", "COMPUTE_DTYPE_", &f.compute_dtype);
  Section lora = fine_tune.Child("lora");
  lora.Read("r", &f.lora_r);
  lora.Read("alpha", &f.lora_alpha);
  lora.Read("dropout", &f.lora_dropout);
  lora.Read("target_modules", &f.target_modules);

  std::string retrain_on = "train";
  top.ReadEnum("retrain_on", "RETRAIN_ON_", &retrain_on);
  // reuse (a final trial that evaluates a stored model, RunEvaluation) trains nothing itself; its
  // config still describes the run that made the model, on train.
  Require(retrain_on == "train" || retrain_on == "train_validation" || retrain_on == "reuse",
          "retrain_on", "expected train, train_validation or reuse, got '" + retrain_on + "'");
  config.retrain_on_train_validation = retrain_on == "train_validation";
  top.Read("evaluate_test", &config.evaluate_test);
  top.Read("artifact_dir", &config.artifact_dir);
  config.artifact_dir = Resolve(base_dir, config.artifact_dir);
  ValidateRunConfig(config);
  return config;
}

RunConfig LoadRunConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) Fail(ErrorCode::kNotFound, "cannot open run config '" + path + "'");
  json root;
  std::stringstream text;
  text << in.rdbuf();
  formats::CheckJsonNesting(text.str(), path, ErrorCode::kInvalidArgument);
  try {
    root = json::parse(text.str());
  } catch (const json::exception& e) {
    Fail(ErrorCode::kInvalidArgument, path + ": malformed JSON: " + formats::JsonErrorExcerpt(e));
  }
  std::string base_dir = fs::absolute(fs::path(path)).parent_path().string();
  try {
    return RunConfigFromJson(root, base_dir);
  } catch (const Error& e) {
    Fail(e.code(), path + ": " + e.what());
  }
}

void ValidateRunConfig(const RunConfig& c) {
  Require(c.model.random_init || !c.model.path.empty(), "model",
          "set model.path or model.random_init");
  Require(!c.model.tokenizer.empty(), "model.tokenizer", "a tokenizer directory is required");
  if (c.model.random_init) {
    const RandomInitConfig& a = c.model.architecture;
    Require(a.n_layer >= 1, "model.random_init.n_layer", "must be at least 1");
    Require(a.n_embd >= 1 && a.n_head >= 1 && a.n_embd % a.n_head == 0, "model.random_init.n_head",
            "must be at least 1 and divide n_embd");
    Require(a.n_positions >= c.data.max_length, "model.random_init.n_positions",
            "must be at least data.max_length");
    Require(a.dropout >= 0 && a.dropout < 1, "model.random_init.dropout", "must be in [0, 1)");
  }
  Require(!c.data.train_file.empty(), "data.train_file", "is required");
  Require(!c.data.validation_file.empty() ||
              (c.data.validation_fraction > 0 && c.data.validation_fraction < 1),
          "data.validation_fraction", "must be in (0, 1)");
  Require(c.data.format == "auto" || c.data.format == "csv" || c.data.format == "jsonl",
          "data.format", "expected auto, csv or jsonl");
  namespace d = training_defaults;
  RequireRule(d::CheckMaxLength(c.data.max_length), "data.max_length");
  RequireRule(d::CheckEvalBatchSize(c.data.eval_batch_size), "data.eval_batch_size");
  RequireRule(d::CheckLearningRate(c.training.learning_rate), "training.learning_rate");
  RequireRule(d::CheckBatchSize(c.training.batch_size), "training.batch_size");
  RequireRule(d::CheckEpochs(c.training.epochs), "training.epochs");
  RequireRule(d::CheckWeightDecay(c.training.weight_decay), "training.weight_decay");
  RequireRule(d::CheckWarmupSteps(c.training.warmup_steps), "training.warmup_steps");
  RequireRule(d::CheckMaxGradNorm(c.training.max_grad_norm), "training.max_grad_norm");
  RequireRule(d::CheckAdamBeta(c.training.adam_beta1), "training.adam_beta1");
  RequireRule(d::CheckAdamBeta(c.training.adam_beta2), "training.adam_beta2");
  RequireRule(d::CheckAdamEpsilon(c.training.adam_epsilon), "training.adam_epsilon");
  const std::string& m = c.fine_tune.method;
  Require(m == "qlora" || m == "lora" || m == "full", "fine_tune.method",
          "expected qlora, lora or full");
  Require(m != "qlora" || c.fine_tune.block_size == 64, "fine_tune.quantization.block_size",
          "NF4 uses blocks of 64");
  const std::string& dtype = c.fine_tune.compute_dtype;
  Require(dtype == "auto" || dtype == "float32" || dtype == "bfloat16" || dtype == "float16",
          "fine_tune.quantization.compute_dtype", "expected auto, float32, bfloat16 or float16");
  RequireRule(d::CheckLoraR(c.fine_tune.lora_r), "fine_tune.lora.r");
  RequireRule(d::CheckLoraAlpha(c.fine_tune.lora_alpha), "fine_tune.lora.alpha");
  RequireRule(d::CheckLoraDropout(c.fine_tune.lora_dropout), "fine_tune.lora.dropout");
  Require(!c.evaluate_test || !c.data.test_file.empty(), "data.test_file",
          "is required to evaluate on test");
}

}  // namespace hpsearch::core
