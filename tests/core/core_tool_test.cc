// hpsearch-core train, predict and logits through the built binary, checked against the core
// in-process.
#include <ATen/ATen.h>
#include "core/catch_torch.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/inference.h"
#include "core/peft_adapter.h"
#include "core/tokenizer.h"
#include "testing/subprocess.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(json::parse(line));
  }
  return lines;
}

void Write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Three intents of Banking77, a few texts each: enough for a real run in a second.
void WriteTinyData(const fs::path& dir) {
  const char* rows[][2] = {
      {"I still have not received my new card", "card_arrival"},
      {"When will my card arrive?", "card_arrival"},
      {"How long does card delivery take?", "card_arrival"},
      {"my card has not come yet", "card_arrival"},
      {"Where is the card you sent me?", "card_arrival"},
      {"Is there a fee for topping up?", "top_up_fee"},
      {"How much does a top up cost", "top_up_fee"},
      {"Why was I charged for topping up by card?", "top_up_fee"},
      {"top-up fees?", "top_up_fee"},
      {"what does it cost to add money", "top_up_fee"},
      {"I want to change my PIN", "change_pin"},
      {"How do I reset my pin code?", "change_pin"},
      {"Can I pick a new PIN at an ATM?", "change_pin"},
      {"change pin please", "change_pin"},
      {"I forgot my PIN, can I set another one", "change_pin"},
  };
  std::string csv = "text,category\r\n";
  for (const auto& row : rows) csv += std::string("\"") + row[0] + "\"," + row[1] + "\r\n";
  Write(dir / "train.csv", csv);
  Write(dir / "test.csv",
        "text,category\r\nmy card is late,card_arrival\r\nnew pin,change_pin\r\n");
}

TEST_CASE("hpsearch-core trains a run, then predicts with the saved adapter", "[core][tool]") {
  hpsearch::testing::TempDir dir;
  WriteTinyData(dir.path());
  const fs::path tokenizer = hpsearch::testing::SourceDir() / "data/gpt2";
  const json config = {
      {"seed", "3"},
      {"model",
       {{"randomInit", {{"nLayer", 1}, {"nEmbd", 64}, {"nHead", 2}, {"nPositions", 32}}},
        {"tokenizer", tokenizer.string()}}},
      {"data",
       {{"trainFile", "train.csv"},
        {"testFile", "test.csv"},
        {"labelColumn", "category"},
        {"validationFraction", 0.2},
        {"maxLength", 32}}},
      {"training", {{"learningRate", 0.003}, {"batchSize", 4}, {"epochs", 2}}},
      {"fineTune",
       {{"method", "FINE_TUNE_METHOD_LORA"}, {"lora", {{"r", 4}, {"targetModules", {"c_attn"}}}}}},
      {"evaluateTest", true},
      {"artifactDir", "out"}};
  Write(dir / "trial.json", config.dump());
  const std::string tool = (hpsearch::testing::BinDir() / "hpsearch-core").string();
  hpsearch::testing::ProcessResult train = hpsearch::testing::RunProcess(
      {tool, "train", "--config", (dir / "trial.json").string(), "--threads", "1"});
  INFO(train.err);
  REQUIRE(train.exit_code == 0);
  std::vector<json> lines = JsonLines(train.out);
  REQUIRE(lines.size() == 4);  // 2 epochs, train summary, test
  REQUIRE(lines[0]["type"] == "epoch");
  REQUIRE(lines[0]["epoch"] == 1);
  REQUIRE(lines[1]["val_accuracy"].get<double>() >= 0.0);
  REQUIRE(lines[1]["step"] == 6);  // 12 training texts / batch 4 x 2 epochs
  REQUIRE(lines[2]["type"] == "train_summary");
  REQUIRE(lines[2]["global_steps"] == 6);
  REQUIRE(lines[3]["type"] == "test");
  REQUIRE(lines[3].contains("test_f1_macro"));
  const fs::path model_dir = dir / "out" / "model";
  REQUIRE(fs::exists(model_dir / "adapter_model.safetensors"));
  REQUIRE(fs::exists(model_dir / "vocab.json"));

  Write(dir / "input.jsonl", "{\"text\": \"when does my card come\"}\n{\"text\": \"reset pin\"}\n");
  hpsearch::testing::ProcessResult predict =
      hpsearch::testing::RunProcess({tool, "predict", "--adapter", model_dir.string(), "--input",
                                     (dir / "input.jsonl").string()});
  INFO(predict.err);
  REQUIRE(predict.exit_code == 0);
  std::vector<json> predictions = JsonLines(predict.out);
  REQUIRE(predictions.size() == 2);

  // The same probabilities in-process: the random-init base is rebuilt from its seed, the adapter
  // loaded.
  SavedModelInfo info;
  Gpt2ForSequenceClassification model(ReadSavedModelOptions(model_dir.string(), &info));
  LoadTrainedModel(model_dir.string(), *model);
  REQUIRE(info.labels == std::vector<std::string>{"card_arrival", "change_pin", "top_up_fee"});
  Gpt2Tokenizer gpt2 = Gpt2Tokenizer::FromDirectory(tokenizer.string());
  at::Tensor expected =
      ClassifyTexts(*model, gpt2, {"when does my card come", "reset pin"}, 32, 8).softmax(1);
  for (int64_t i = 0; i < 2; ++i) {
    const json& p = predictions[static_cast<size_t>(i)];
    REQUIRE(p["label"] == info.labels[p["label_id"].get<size_t>()]);
    double sum = 0;
    for (int64_t j = 0; j < 3; ++j) {
      const double got = p["probabilities"][static_cast<size_t>(j)].get<double>();
      REQUIRE(got == Approx(expected[i][j].item<double>()).epsilon(1e-6));
      sum += got;
    }
    REQUIRE(sum == Approx(1.0));
  }
}

TEST_CASE("A compact-vocabulary run saves a whole-vocabulary model that predicts as it tested",
          "[core][tool][compact_vocab]") {
  hpsearch::testing::TempDir dir;
  WriteTinyData(dir.path());
  const fs::path tokenizer = hpsearch::testing::SourceDir() / "data/gpt2";
  const json config = {
      {"seed", "3"},
      {"model",
       {{"randomInit",
         {{"nLayer", 1}, {"nEmbd", 32}, {"nHead", 2}, {"nPositions", 32}, {"compactVocab", true}}},
        {"tokenizer", tokenizer.string()}}},
      {"data",
       {{"trainFile", "train.csv"},
        {"testFile", "test.csv"},
        {"labelColumn", "category"},
        {"validationFraction", 0.2},
        {"maxLength", 32}}},
      {"training", {{"learningRate", 0.003}, {"batchSize", 4}, {"epochs", 2}}},
      {"fineTune", {{"method", "FINE_TUNE_METHOD_FULL"}}},
      {"evaluateTest", true},
      {"artifactDir", "out"}};
  Write(dir / "trial.json", config.dump());
  const std::string tool = (hpsearch::testing::BinDir() / "hpsearch-core").string();
  hpsearch::testing::ProcessResult train = hpsearch::testing::RunProcess(
      {tool, "train", "--config", (dir / "trial.json").string(), "--threads", "1"});
  INFO(train.err);
  REQUIRE(train.exit_code == 0);
  std::vector<json> lines = JsonLines(train.out);
  REQUIRE(lines.size() == 4);
  REQUIRE(lines[3]["type"] == "test");
  const double test_loss = lines[3]["test_loss"].get<double>();

  // Saved over GPT-2's whole vocabulary, with the compact table's size on record.
  const fs::path model_dir = dir / "out" / "model";
  const json hf_config = json::parse(std::ifstream(model_dir / "config.json"));
  REQUIRE(hf_config["vocab_size"] == 50257);
  REQUIRE(hf_config["pad_token_id"] == 50256);
  const json saved = json::parse(std::ifstream(model_dir / "hpsearch_model.json"));
  const int64_t rows = saved["compact_vocab"]["trained_rows"].get<int64_t>();
  REQUIRE(rows > 10);
  REQUIRE(rows < 100);

  // predict on the raw test texts ("late" is in no training text) gives the test loss the run
  // computed over compact ids.
  Write(dir / "input.jsonl", "{\"text\": \"my card is late\"}\n{\"text\": \"new pin\"}\n");
  hpsearch::testing::ProcessResult predict =
      hpsearch::testing::RunProcess({tool, "predict", "--adapter", model_dir.string(), "--input",
                                     (dir / "input.jsonl").string(), "--max-length", "32"});
  INFO(predict.err);
  REQUIRE(predict.exit_code == 0);
  std::vector<json> predictions = JsonLines(predict.out);
  REQUIRE(predictions.size() == 2);
  const std::vector<std::string> labels = saved["labels"].get<std::vector<std::string>>();
  const std::vector<std::string> truth = {"card_arrival", "change_pin"};
  double loss = 0;
  for (size_t i = 0; i < 2; ++i) {
    const size_t label =
        static_cast<size_t>(std::find(labels.begin(), labels.end(), truth[i]) - labels.begin());
    loss -= std::log(predictions[i]["probabilities"][label].get<double>()) / 2;
  }
  REQUIRE(loss == Approx(test_loss).epsilon(1e-5));
}

TEST_CASE("hpsearch-core logits prints a checkpoint's logits in full precision", "[core][tool]") {
  hpsearch::testing::TempDir dir;
  Gpt2ForSequenceClassificationOptions options;
  options.config.n_layer = 1;
  options.config.n_embd = 16;
  options.config.n_head = 2;
  options.config.n_positions = 32;
  options.config.num_labels = 4;
  options.fine_tuning.method = FineTuningMethod::kFull;
  options.seed = 8;
  Gpt2ForSequenceClassification model(options);
  SaveTrainedModel(dir.path().string(), *model, {"random_init", {"a", "b", "c", "d"}, 8});
  const fs::path tokenizer = hpsearch::testing::SourceDir() / "data/gpt2";
  Write(dir / "input.jsonl", "{\"text\": \"Hello world\"}\n\n{\"text\": \"How do I top up?\"}\n");
  hpsearch::testing::ProcessResult result = hpsearch::testing::RunProcess(
      {(hpsearch::testing::BinDir() / "hpsearch-core").string(), "logits", "--model",
       dir.path().string(), "--tokenizer", tokenizer.string(), "--input",
       (dir / "input.jsonl").string()});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  std::vector<json> lines = JsonLines(result.out);
  REQUIRE(lines.size() == 2);
  Gpt2Tokenizer gpt2 = Gpt2Tokenizer::FromDirectory(tokenizer.string());
  at::Tensor expected = ClassifyTexts(*model, gpt2, {"Hello world", "How do I top up?"}, 32, 8);
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 4; ++j) {
      // Printed as the float's exact double value: equal, not approximately equal.
      REQUIRE(lines[static_cast<size_t>(i)]["logits"][static_cast<size_t>(j)].get<double>() ==
              static_cast<double>(expected[i][j].item<float>()));
    }
  }
}

TEST_CASE("hpsearch-core refuses bad input naming the file and line", "[core][tool]") {
  hpsearch::testing::TempDir dir;
  Write(dir / "input.jsonl", "{\"text\": \"ok\"}\n{\"txt\": \"typo\"}\n");
  const std::string tool = (hpsearch::testing::BinDir() / "hpsearch-core").string();
  hpsearch::testing::ProcessResult result =
      hpsearch::testing::RunProcess({tool, "predict", "--adapter", dir.path().string(), "--input",
                                     (dir / "input.jsonl").string()});
  REQUIRE(result.exit_code == 2);
  REQUIRE(result.err.find("input.jsonl:2: expected a string field \"text\"") != std::string::npos);
  Write(dir / "bad.json",
        "{\"model\": {\"path\": \"m\"}, \"data\": {\"trainFile\": \"t.csv\"}, \"training\": "
        "{\"epochs\": 0}}");
  result = hpsearch::testing::RunProcess({tool, "train", "--config", (dir / "bad.json").string()});
  REQUIRE(result.exit_code == 2);
  REQUIRE(result.err.find("bad.json: training.epochs: must be at least 1") != std::string::npos);
  result = hpsearch::testing::RunProcess({tool, "train", "--bogus", "x"});
  REQUIRE(result.exit_code == 2);
  REQUIRE(result.err.find("unexpected argument '--bogus'") != std::string::npos);
}

}  // namespace
}  // namespace hpsearch::core
