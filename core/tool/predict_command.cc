// hpsearch-core predict --adapter DIR --input FILE.jsonl: labels and probabilities from a trained
// model.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/inference.h"
#include "core/nf4_frozen_weight.h"
#include "core/peft_adapter.h"
#include "core/peft_state.h"
#include "core/tool/commands.h"
#include "core/tool/tool_util.h"

namespace hpsearch::core::tool {
namespace {

constexpr char kPredictUsage[] =
    "usage: hpsearch-core predict --adapter DIR --input FILE.jsonl [--model DIR] [--tokenizer "
    "DIR]\n"
    "                             [--max-length N] [--batch-size N] [--logits]\n"
    "  Loads a model hpsearch trained (DIR: adapter_config.json + adapter_model.safetensors, or a\n"
    "  full checkpoint, with hpsearch_model.json; what `hpsearch export` writes) onto its base\n"
    "  (--model, default: the base it was trained on; random-init bases are rebuilt from their\n"
    "  seed) and prints per {\"text\": ...} line of FILE:\n"
    "  {\"label\": NAME, \"label_id\": K, \"probability\": P, \"probabilities\": [...]} (in label\n"
    "  id order), plus \"logits\": [...] with --logits. Texts are cut to --max-length tokens\n"
    "  (default: the model's n_positions; pass the study's data.max_length to match training).\n";

}  // namespace

int RunPredict(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  std::string error;
  if (!ParseFlags(argc, argv,
                  {"adapter", "model", "input", "tokenizer", "max-length", "batch-size"}, &flags,
                  &error, {"logits"})) {
    std::fprintf(stderr, "hpsearch-core predict: %s\n%s", error.c_str(), kPredictUsage);
    return 2;
  }
  if (flags.count("help")) return std::fputs(kPredictUsage, stdout), 0;
  if (!flags.count("adapter") || !flags.count("input")) {
    std::fprintf(stderr, "hpsearch-core predict: --adapter and --input are required\n%s",
                 kPredictUsage);
    return 2;
  }
  // Checked before anything is loaded; a max_length of 0 stands for the model's n_positions.
  int64_t max_length = 0, batch_size = 0;
  if (!IntFlag(flags, "max-length", 1, int64_t{1} << 20, 0, &max_length, &error) ||
      !IntFlag(flags, "batch-size", 1, 1 << 16, 8, &batch_size, &error)) {
    std::fprintf(stderr, "hpsearch-core predict: %s\n", error.c_str());
    return 2;
  }
  try {
    const std::string adapter = flags["adapter"];
    const std::vector<std::string> texts = ReadTextLines(flags["input"]);
    SavedModelInfo info;
    Gpt2ForSequenceClassificationOptions options = ReadSavedModelOptions(adapter, &info);
    Gpt2ForSequenceClassification model(options);
    const FineTuningMethod method = options.fine_tuning.method;
    if (method != FineTuningMethod::kFull && info.base_model != "random_init") {
      const std::string base = flags.count("model") ? flags["model"] : info.base_model;
      Checkpoint checkpoint = LoadCheckpoint(base);
      std::map<std::string, torch::Tensor> weights;
      for (auto& [name, tensor] : checkpoint.tensors) {
        if (name.rfind("transformer.", 0) == 0) weights[name.substr(12)] = tensor;
      }
      model->LoadHfWeights(weights);
    }
    if (method == FineTuningMethod::kQlora)
      ReplaceFrozenBaseWeights(*model, Nf4FrozenWeightFactory({}));
    LoadTrainedModel(adapter, *model);
    Gpt2Tokenizer tokenizer =
        Gpt2Tokenizer::FromDirectory(flags.count("tokenizer") ? flags["tokenizer"] : adapter);
    const int64_t positions = options.config.n_positions;
    if (max_length == 0) max_length = positions;
    const at::Tensor logits =
        ClassifyTexts(*model, tokenizer, texts, std::min(max_length, positions), batch_size,
                      flags["input"])
            .to(at::kDouble);
    const at::Tensor probabilities = logits.softmax(1);
    for (int64_t i = 0; i < probabilities.size(0); ++i) {
      std::vector<double> row, raw;
      for (int64_t j = 0; j < probabilities.size(1); ++j) {
        row.push_back(probabilities[i][j].item<double>());
        raw.push_back(logits[i][j].item<double>());
      }
      const int64_t best = probabilities[i].argmax().item<int64_t>();
      nlohmann::json line = {{"label", info.labels.at(static_cast<size_t>(best))},
                             {"label_id", best},
                             {"probability", row[static_cast<size_t>(best)]},
                             {"probabilities", row}};
      if (flags.count("logits")) line["logits"] = raw;
      std::cout << line.dump() << "\n";
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "hpsearch-core predict: %s\n", e.what());
    return ExitCodeFor(e.code());
  }
  return 0;
}

}  // namespace hpsearch::core::tool
