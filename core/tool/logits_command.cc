// hpsearch-core logits --model DIR --input FILE.jsonl: the classifier's logits per text, full
// precision.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/inference.h"
#include "core/tool/commands.h"
#include "core/tool/tool_util.h"

namespace hpsearch::core::tool {
namespace {

constexpr char kLogitsUsage[] =
    "usage: hpsearch-core logits --model DIR --input FILE.jsonl [--tokenizer DIR] [--max-length "
    "N]\n"
    "  Runs the GPT2ForSequenceClassification in the Hugging Face checkpoint DIR in eval mode on "
    "every\n"
    "  {\"text\": ...} line of FILE (tokenised with DIR's tokenizer unless --tokenizer is given) "
    "and prints\n"
    "  one JSON object per line: {\"logits\": [...]}. A checkpoint without score.weight gets a "
    "fresh head\n"
    "  (seed 0) and a warning, as Hugging Face does.\n";

}  // namespace

int RunLogits(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  std::string error;
  if (!ParseFlags(argc, argv, {"model", "input", "tokenizer", "max-length"}, &flags, &error)) {
    std::fprintf(stderr, "hpsearch-core logits: %s\n%s", error.c_str(), kLogitsUsage);
    return 2;
  }
  if (flags.count("help")) return std::fputs(kLogitsUsage, stdout), 0;
  if (!flags.count("model") || !flags.count("input")) {
    std::fprintf(stderr, "hpsearch-core logits: --model and --input are required\n%s",
                 kLogitsUsage);
    return 2;
  }
  // Checked before anything is loaded; 0 stands for the model's n_positions.
  int64_t max_length = 0;
  if (!IntFlag(flags, "max-length", 1, int64_t{1} << 20, 0, &max_length, &error)) {
    std::fprintf(stderr, "hpsearch-core logits: %s\n", error.c_str());
    return 2;
  }
  try {
    const std::vector<std::string> texts = ReadTextLines(flags["input"]);
    Checkpoint checkpoint = LoadCheckpoint(flags["model"], [](const std::string& warning) {
      std::fprintf(stderr, "warning: %s\n", warning.c_str());
    });
    Gpt2ForSequenceClassificationOptions options;
    options.fine_tuning.method = FineTuningMethod::kFull;
    Gpt2Config& c = options.config;
    ApplyHfGpt2Config(checkpoint.config, flags["model"] + "/config.json", &c);
    c.num_labels = checkpoint.config.num_labels;
    Gpt2ForSequenceClassification model(options);
    std::map<std::string, torch::Tensor> weights;
    for (auto& [name, tensor] : checkpoint.tensors) {
      weights[name.rfind("transformer.", 0) == 0 ? name.substr(12) : name] = tensor;
    }
    model->LoadHfWeights(weights);
    Gpt2Tokenizer tokenizer = Gpt2Tokenizer::FromDirectory(
        flags.count("tokenizer") ? flags["tokenizer"] : flags["model"]);
    if (max_length == 0) max_length = c.n_positions;
    at::Tensor logits = ClassifyTexts(*model, tokenizer, texts, std::min(max_length, c.n_positions),
                                      8, flags["input"]);
    for (int64_t i = 0; i < logits.size(0); ++i) {
      std::vector<double> row;
      for (int64_t j = 0; j < logits.size(1); ++j) row.push_back(logits[i][j].item<double>());
      std::cout << nlohmann::json{{"logits", row}}.dump() << "\n";
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "hpsearch-core logits: %s\n", e.what());
    return ExitCodeFor(e.code());
  }
  return 0;
}

}  // namespace hpsearch::core::tool
