#include "core/peft_adapter.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/peft_state.h"
#include "core/safetensors.h"
#include "formats/json_nesting.h"

namespace hpsearch::core {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kInfoFile[] = "hpsearch_model.json";

void WriteJson(const fs::path& path, const json& value) {
  const std::string text = value.dump(2) + "\n";
  AtomicFileWriter writer(path);
  writer.Write(text.data(), text.size());
  writer.Commit();
}

json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in)
    Fail(ErrorCode::kNotFound,
         path.string() + " is missing: this is not a model saved by hpsearch");
  std::stringstream text;
  text << in.rdbuf();
  formats::CheckJsonNesting(text.str(), path.string(), ErrorCode::kDataLoss);
  try {
    return json::parse(text.str());
  } catch (const json::exception& e) {
    Fail(ErrorCode::kDataLoss, path.string() + ": malformed JSON: " + e.what());
  }
}

bool IsAdapter(const Gpt2ForSequenceClassificationImpl& model) {
  return model.options().fine_tuning.method != FineTuningMethod::kFull;
}

// The tensors this model saves, by file key, and the parameter each belongs to.
std::map<std::string, torch::Tensor> SavedTensors(const Gpt2ForSequenceClassificationImpl& model) {
  std::map<std::string, torch::Tensor> tensors;
  if (!IsAdapter(model)) return model.HfWeights();
  for (const auto& item : model.named_parameters()) {
    if (item.value().requires_grad()) tensors[PeftSavedKey(item.key())] = item.value().detach();
  }
  return tensors;
}

}  // namespace

std::string PeftSavedKey(const std::string& name) {
  const bool adapter = name.size() > 7 && (name.compare(name.size() - 7, 7, ".lora_A") == 0 ||
                                           name.compare(name.size() - 7, 7, ".lora_B") == 0);
  return kPeftPrefix + name + (adapter ? ".weight" : "");
}

void SaveTrainedModel(const std::string& dir, const Gpt2ForSequenceClassificationImpl& model,
                      const SavedModelInfo& info) {
  const Gpt2ForSequenceClassificationOptions& options = model.options();
  const Gpt2Config& c = options.config;
  try {
    fs::create_directories(dir);
  } catch (const fs::filesystem_error& e) {
    Fail(ErrorCode::kIo, "cannot create " + dir + ": " + e.what());
  }
  std::map<std::string, torch::Tensor> tensors;
  for (auto& [key, tensor] : SavedTensors(model))
    tensors[key] = tensor.to(torch::kCPU).contiguous();
  int64_t vocab_size = c.vocab_size, pad_token_id = c.pad_token_id;
  if (const CompactVocabulary* compact = info.compact_vocabulary) {
    if (IsAdapter(model)) {
      Fail(ErrorCode::kInvalidArgument,
           "a compact vocabulary needs fine_tune.method full: an adapter's base is rebuilt at "
           "the tokenizer's whole vocabulary");
    }
    tensors["wte.weight"] = compact->ExpandEmbedding(tensors.at("wte.weight")).contiguous();
    vocab_size = compact->full_vocab_size();
    pad_token_id = compact->ToOriginal(static_cast<int32_t>(c.pad_token_id));
  }
  json labels = info.labels;
  if (IsAdapter(model)) {
    const FineTuningOptions& ft = options.fine_tuning;
    json config = {{"peft_type", "LORA"},
                   {"task_type", "SEQ_CLS"},
                   {"base_model_name_or_path", info.base_model},
                   {"r", ft.lora_r},
                   {"lora_alpha", ft.lora_alpha},
                   {"lora_dropout", ft.lora_dropout},
                   {"target_modules", ft.target_modules},
                   {"fan_in_fan_out", true},
                   {"bias", "none"},
                   {"modules_to_save", json::array({"score"})},
                   {"inference_mode", true},
                   {"init_lora_weights", true}};
    WriteJson(fs::path(dir) / "adapter_config.json", config);
    WriteSafetensors(fs::path(dir) / "adapter_model.safetensors", tensors, {{"format", "pt"}});
  } else {
    json id2label = json::object(), label2id = json::object();
    for (size_t i = 0; i < info.labels.size(); ++i) {
      id2label[std::to_string(i)] = info.labels[i];
      label2id[info.labels[i]] = i;
    }
    json config = {{"model_type", "gpt2"},
                   {"architectures", json::array({"GPT2ForSequenceClassification"})},
                   {"n_layer", c.n_layer},
                   {"n_embd", c.n_embd},
                   {"n_head", c.n_head},
                   {"n_positions", c.n_positions},
                   {"n_ctx", c.n_positions},
                   {"vocab_size", vocab_size},
                   {"layer_norm_epsilon", c.layer_norm_epsilon},
                   {"activation_function", c.activation},
                   {"initializer_range", c.initializer_range},
                   {"resid_pdrop", c.resid_pdrop},
                   {"embd_pdrop", c.embd_pdrop},
                   {"attn_pdrop", c.attn_pdrop},
                   {"pad_token_id", pad_token_id},
                   {"num_labels", c.num_labels},
                   {"id2label", id2label},
                   {"label2id", label2id}};
    WriteJson(fs::path(dir) / "config.json", config);
    WriteSafetensors(fs::path(dir) / "model.safetensors", tensors, {{"format", "pt"}});
  }
  json saved = {{"format_version", 1},
                {"base_model", info.base_model},
                {"labels", labels},
                {"init_seed", info.init_seed},
                {"method", FineTuningMethodName(options.fine_tuning.method)},
                {"lora",
                 {{"r", options.fine_tuning.lora_r},
                  {"alpha", options.fine_tuning.lora_alpha},
                  {"dropout", options.fine_tuning.lora_dropout},
                  {"target_modules", options.fine_tuning.target_modules}}},
                {"config",
                 {{"n_layer", c.n_layer},
                  {"n_embd", c.n_embd},
                  {"n_head", c.n_head},
                  {"n_positions", c.n_positions},
                  {"vocab_size", vocab_size},
                  {"layer_norm_epsilon", c.layer_norm_epsilon},
                  {"num_labels", c.num_labels},
                  {"pad_token_id", pad_token_id}}}};
  // Informational: the saved table is whole; its unused rows all hold the UNK row.
  if (info.compact_vocabulary != nullptr)
    saved["compact_vocab"] = {{"trained_rows", info.compact_vocabulary->size()}};
  WriteJson(fs::path(dir) / kInfoFile, saved);
}

Gpt2ForSequenceClassificationOptions ReadSavedModelOptions(const std::string& dir,
                                                           SavedModelInfo* info) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    Fail(ErrorCode::kNotFound,
         dir + (fs::exists(dir, error) ? " is a file, not a model folder" : ": no such folder") +
             ": pass the folder a trial saved its model in (trial-NNNN/model), or one "
             "`hpsearch export` wrote");
  }
  const fs::path path = fs::path(dir) / kInfoFile;
  const json saved = ReadJson(path);
  Gpt2ForSequenceClassificationOptions options;
  try {
    const json& c = saved.at("config");
    options.config.n_layer = c.at("n_layer").get<int64_t>();
    options.config.n_embd = c.at("n_embd").get<int64_t>();
    options.config.n_head = c.at("n_head").get<int64_t>();
    options.config.n_positions = c.at("n_positions").get<int64_t>();
    options.config.vocab_size = c.at("vocab_size").get<int64_t>();
    options.config.layer_norm_epsilon = c.at("layer_norm_epsilon").get<double>();
    options.config.num_labels = c.at("num_labels").get<int64_t>();
    options.config.pad_token_id = c.at("pad_token_id").get<int64_t>();
    options.fine_tuning.method = ParseFineTuningMethod(saved.at("method").get<std::string>());
    const json& lora = saved.at("lora");
    options.fine_tuning.lora_r = lora.at("r").get<int64_t>();
    options.fine_tuning.lora_alpha = lora.at("alpha").get<double>();
    options.fine_tuning.lora_dropout = lora.at("dropout").get<double>();
    options.fine_tuning.target_modules = lora.at("target_modules").get<std::vector<std::string>>();
    info->base_model = saved.at("base_model").get<std::string>();
    info->labels = saved.at("labels").get<std::vector<std::string>>();
    info->init_seed = saved.at("init_seed").get<uint64_t>();
    options.seed = info->init_seed;
  } catch (const json::exception& e) {
    Fail(ErrorCode::kDataLoss, path.string() + ": " + e.what());
  }
  return options;
}

void LoadTrainedModel(const std::string& dir, Gpt2ForSequenceClassificationImpl& model) {
  const fs::path path =
      fs::path(dir) / (IsAdapter(model) ? "adapter_model.safetensors" : "model.safetensors");
  if (!fs::exists(path)) Fail(ErrorCode::kNotFound, path.string() + " is missing");
  SafetensorsContents contents = ReadSafetensors(path);
  if (!IsAdapter(model)) {
    model.LoadHfWeights(contents.tensors);
    return;
  }
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    if (!item.value().requires_grad()) continue;
    const std::string key = PeftSavedKey(item.key());
    auto it = contents.tensors.find(key);
    if (it == contents.tensors.end()) {
      Fail(ErrorCode::kDataLoss, path.string() + ": tensor " + key +
                                     " is missing; the adapter was saved "
                                     "for other LoRA targets or another model");
    }
    if (!it->second.sizes().equals(item.value().sizes())) {
      Fail(ErrorCode::kDataLoss,
           path.string() + ": tensor " + key + " has another shape than the model's");
    }
    item.value().copy_(it->second);
  }
}

}  // namespace hpsearch::core
