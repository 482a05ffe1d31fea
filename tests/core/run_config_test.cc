#include "core/run_config.h"

#include <nlohmann/json.hpp>
#include "core/catch_torch.h"

#include "core/error.h"

namespace hpsearch::core {
namespace {

using nlohmann::json;

TEST_CASE("RunConfig reads a TrialSpec's proto3 JSON form", "[core][run_config]") {
  // As protobuf's JsonPrinter writes a TrialSpec by default: lowerCamelCase, int64 as strings, enum
  // names.
  const json trial = json::parse(R"({
    "studyId": "s1", "trialNumber": 3, "leaseId": "L", "seed": "18446744073709",
    "model": {"randomInit": {"nLayer": 1, "nEmbd": 64, "nHead": 2, "nPositions": 64, "dropout": 0.0},
              "tokenizer": "tok"},
    "data": {"trainFile": "train.csv", "testFile": "/abs/test.csv", "labelColumn": "category",
             "maxLength": 32, "evalBatchSize": 16, "format": "DATA_FORMAT_CSV", "splitSeed": "5"},
    "training": {"learningRate": 0.001, "batchSize": 16, "epochs": 2, "warmupSteps": 10},
    "fineTune": {"method": "FINE_TUNE_METHOD_FULL",
                 "quantization": {"computeDtype": "COMPUTE_DTYPE_FLOAT32"},
                 "lora": {"r": 4, "targetModules": ["c_attn", "c_fc"]}},
    "retrainOn": "RETRAIN_ON_TRAIN_VALIDATION", "evaluateTest": true, "artifactDir": "out"
  })");
  RunConfig c = RunConfigFromJson(trial, "/base");
  REQUIRE(c.seed == 18446744073709ull);
  REQUIRE(c.model.random_init);
  REQUIRE(c.model.architecture.n_embd == 64);
  REQUIRE(c.model.tokenizer == "/base/tok");
  REQUIRE(c.data.train_file == "/base/train.csv");
  REQUIRE(c.data.test_file == "/abs/test.csv");
  REQUIRE(c.data.label_column == "category");
  REQUIRE(c.data.format == "csv");
  REQUIRE(c.data.split_seed == 5);
  REQUIRE(c.training.batch_size == 16);
  REQUIRE(c.training.warmup_steps == 10);
  REQUIRE(c.training.adam_beta2 == 0.999);  // default kept
  REQUIRE(c.fine_tune.method == "full");
  REQUIRE(c.fine_tune.compute_dtype == "float32");
  REQUIRE(c.fine_tune.target_modules == std::vector<std::string>{"c_attn", "c_fc"});
  REQUIRE(c.retrain_on_train_validation);
  REQUIRE(c.evaluate_test);
  REQUIRE(c.artifact_dir == "/base/out");
}

TEST_CASE("RunConfig reads snake_case keys and short enum names", "[core][run_config]") {
  const json trial = json::parse(R"({
    "seed": 7, "model": {"path": "/models/gpt2"},
    "data": {"train_file": "/d/train.jsonl", "validation_file": "/d/val.jsonl"},
    "fine_tune": {"method": "lora"}
  })");
  RunConfig c = RunConfigFromJson(trial);
  REQUIRE(c.model.tokenizer == "/models/gpt2");  // defaults to the checkpoint
  REQUIRE(c.data.split_seed == 7);               // defaults to the seed
  REQUIRE(c.fine_tune.method == "lora");
  REQUIRE_FALSE(c.evaluate_test);
}

TEST_CASE("RunConfig errors name the key", "[core][run_config]") {
  struct Case {
    const char* json;
    const char* key;
  };
  const Case cases[] = {
      {R"({"model": {"path": "m"}, "data": {"train_file": "t"}, "training": {"batch_size": "x"}})",
       "training.batch_size: expected a whole number"},
      {R"({"model": {"path": "m"}, "data": {"train_file": "t"}, "training": {"epochs": 0}})",
       "training.epochs: must be at least 1"},
      {R"({"model": {"path": "m"}, "data": {}})", "data.train_file: is required"},
      {R"({"data": {"train_file": "t"}})", "model: set model.path"},
      {R"({"model": {"path": "m"}, "data": {"train_file": "t"}, "fine_tune": {"method": "adapter"}})",
       "fine_tune.method: expected qlora, lora or full"},
      {R"({"model": {"path": "m"}, "data": {"train_file": "t"}, "evaluate_test": true})",
       "data.test_file: is required"},
      {R"({"model": {"path": "m"}, "data": {"train_file": "t"}, "training": []})",
       "training: expected an object"},
  };
  for (const Case& c : cases) {
    INFO(c.json);
    try {
      RunConfigFromJson(json::parse(c.json));
      FAIL("accepted an invalid config");
    } catch (const Error& e) {
      REQUIRE(e.code() == ErrorCode::kInvalidArgument);
      REQUIRE(std::string(e.what()).find(c.key) != std::string::npos);
    }
  }
}

TEST_CASE("LoadRunConfig names the file in its errors", "[core][run_config]") {
  REQUIRE_THROWS_WITH(LoadRunConfig("/nonexistent/run.json"),
                      Catch::Contains("/nonexistent/run.json"));
}

}  // namespace
}  // namespace hpsearch::core
