// `hpsearch validate` on bad study files, through the real binary: each case must exit 2 and name
// the file, the line and the key, and say what is wrong.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "testing/subprocess.h"
#include "testing/testing.h"

namespace hpsearch {
namespace {

using testing::RunProcess;
using testing::TempDir;

struct BadStudy {
  const char* name;
  std::string yaml;     // written to study.yaml
  int line;             // expected line of the message; 0: any line
  const char* field;    // the key the message must name
  const char* message;  // a fragment of what it must say
};

// Lines 1-3 of most cases; the case's own lines start at line 4.
const std::string kHead =
    "name: t\n"
    "model: {path: model}\n"
    "data: {train_file: train.csv, test_file: test.csv}\n";

const std::vector<BadStudy>& BadStudies() {
  static const std::vector<BadStudy> kCases = {
      {"unknown top-level key", kHead + "nmae: x\n", 4, "nmae", "did you mean 'name'"},
      {"a data file that is a folder",
       "name: t\nmodel: {path: model}\ndata: {train_file: folder.csv, test_file: test.csv}\n", 0,
       "data.train_file", "is a folder, not a file"},
      {"unknown nested key", kHead + "training:\n  learnin_rate: 0.1\n", 5, "training.learnin_rate",
       "did you mean 'learning_rate'"},
      {"float low >= high",
       kHead + "search_space:\n  learning_rate: {type: float, low: 0.5, high: 0.1}\n", 5,
       "search_space.learning_rate.low", "must be below high"},
      {"log scale with low <= 0",
       kHead + "search_space:\n  learning_rate: {type: float, low: 0, high: 0.1, log: true}\n", 5,
       "search_space.learning_rate.low", "log-scale range needs low > 0"},
      {"empty choices", kHead + "search_space:\n  batch_size: {type: categorical, choices: []}\n",
       5, "search_space.batch_size.choices", "at least one value"},
      {"mixed-type choices", kHead + "search_space:\n  batch_size: {choices: [8, \"sixteen\"]}\n",
       5, "search_space.batch_size.choices[1]", "mixes types"},
      {"batch size < 1", kHead + "training:\n  batch_size: 0\n", 5, "training.batch_size",
       "at least 1"},
      {"epochs < 1", kHead + "training:\n  epochs: 0\n", 5, "training.epochs", "at least 1"},
      {"missing data file",
       "name: t\nmodel: {path: model}\ndata: {train_file: missing.csv, test_file: test.csv}\n", 3,
       "data.train_file", "does not exist"},
      {"unknown sampler", kHead + "sampler: annealing\n", 4, "sampler.type",
       "unknown type 'annealing'"},
      {"reuse with a command that does not say it can evaluate",
       "name: t\ndata: {train_file: train.csv, test_file: test.csv}\n"
       "runner: {type: command, command: [/bin/true]}\nfinal_stage: {retrain_on: reuse}\n",
       4, "final_stage.retrain_on", "set runner.supports_evaluate: true"},
      {"reuse in an ask/tell study",
       "name: t\nrunner: none\nfinal_stage: {enabled: true, retrain_on: reuse}\n", 3,
       "final_stage.retrain_on", "stores none"},
      {"supports_evaluate on the built-in runner",
       kHead + "runner: {type: qlora, supports_evaluate: true}\n", 4, "runner.supports_evaluate",
       "only used by the command runner"},
      {"unknown pruner", kHead + "pruner: {type: hyperband}\n", 4, "pruner.type",
       "unknown type 'hyperband'"},
      {"unknown tpe start-up design", kHead + "sampler: {type: tpe, startup: halton}\n", 4,
       "sampler.startup", "unknown startup 'halton'"},
      {"start-up design under the random sampler", kHead + "sampler: {startup: sobol}\n", 4,
       "sampler.startup", "is not an option of the random sampler"},
      {"unknown metric", kHead + "objective: {metric: val_acc}\n", 4, "objective.metric",
       "unknown metric 'val_acc'"},
      {"unknown method", kHead + "fine_tune: {method: qlora4}\n", 4, "fine_tune.method",
       "unknown method 'qlora4', did you mean 'qlora'?"},
      {"unknown runner", kHead + "runner: docker\n", 4, "runner.type", "unknown type 'docker'"},
      {"n_trials < 1", kHead + "budget: {n_trials: 0}\n", 4, "budget.n_trials", "at least 1"},
      {"parallelism < 1", kHead + "budget: {parallelism: 0}\n", 4, "budget.parallelism",
       "at least 1"},
      {"block size not 64 under qlora", kHead + "fine_tune:\n  quantization: {block_size: 32}\n", 5,
       "fine_tune.quantization.block_size", "blocks of 64"},
      {"width not a multiple of 64 under qlora",
       "name: t\nmodel:\n  random_init: {n_layer: 1, n_embd: 96, n_head: 2}\n  tokenizer: tok\n"
       "data: {train_file: train.csv, test_file: test.csv}\n",
       3, "model.random_init.n_embd", "not a multiple of 64"},
      {"searched batch size below 1",
       kHead + "search_space:\n  batch_size: {type: int, low: 0, high: 16}\n", 5,
       "search_space.batch_size", "must stay in [1, inf)"},
      {"unknown qlora parameter",
       kHead + "search_space:\n  learnig_rate: {type: float, low: 0.001, high: 0.01}\n", 5,
       "search_space.learnig_rate", "did you mean 'learning_rate'"},
      {"grid float without step",
       kHead + "sampler: grid\nsearch_space:\n  weight_decay: {type: float, low: 0.0, high: 0.1}\n",
       6, "search_space.weight_decay.step", "needs a step"},
      {"asha with searched epochs",
       kHead + "pruner: asha\nsearch_space:\n  epochs: {type: int, low: 1, high: 4}\n", 6,
       "search_space.epochs", "asha"},
      {"enqueued value outside its range",
       kHead + "search_space:\n  epochs: {type: int, low: 1, high: 4}\nenqueue:\n  - {epochs: 9}\n",
       7, "enqueue[0].epochs", "outside [1, 4]"},
      {"enqueued unknown parameter",
       kHead + "search_space:\n  epochs: {type: int, low: 1, high: 4}\nenqueue:\n  - {epoch: 2}\n",
       7, "enqueue[0].epoch", "did you mean 'epochs'"},
      {"YAML syntax error", kHead + "training: {batch_size: 8\n", 0, "", "YAML syntax error"},
      {"duplicate key", kHead + "training:\n  epochs: 2\n  epochs: 3\n", 6, "training.epochs",
       "duplicate key"},
      {"not a number", kHead + "training:\n  batch_size: sixteen\n", 5, "training.batch_size",
       "expected a whole number, got 'sixteen'"},
      {"test metric as objective", kHead + "objective: {metric: test_accuracy}\n", 4,
       "objective.metric", "must not steer"},
      {"missing name", "model: {path: model}\ndata: {train_file: train.csv, test_file: test.csv}\n",
       1, "name", "needs a name"},
      {"command runner without command", kHead + "runner: command\n", 4, "runner.command",
       "needs a command"},
      {"option of another sampler", kHead + "sampler: {type: random, n_startup_trials: 5}\n", 4,
       "sampler.n_startup_trials", "not an option of the random sampler"},
      {"sobol option on tpe", kHead + "sampler: {type: tpe, scramble: false}\n", 4,
       "sampler.scramble", "belongs to sobol): remove it, or set `sampler: {type: sobol"},
      {"option of another pruner", kHead + "pruner: {type: median, percentile: 40}\n", 4,
       "pruner.percentile", "not an option of the median pruner (it belongs to percentile)"},
      {"asha option on median", kHead + "pruner: {type: median, reduction_factor: 3}\n", 4,
       "pruner.reduction_factor", "set `pruner: {type: asha"},
      {"percentile outside (0, 100)", kHead + "pruner: {type: percentile, percentile: 100}\n", 4,
       "pruner.percentile", "must be in (0, 100)"},
      {"tpe gamma of 0", kHead + "sampler: {type: tpe, gamma: 0}\n", 4, "sampler.gamma",
       "must be in (0, 1]"},
      {"asha reduction factor below 2", kHead + "pruner: {type: asha, reduction_factor: 1}\n", 4,
       "pruner.reduction_factor", "at least 2"},
      {"misspelled sampler option", kHead + "sampler: {type: tpe, n_ei_candidate: 10}\n", 4,
       "sampler.n_ei_candidate", "did you mean 'n_ei_candidates'"},
      {"pruner option of the wrong type", kHead + "pruner: {type: asha, reduction_factor: three}\n",
       4, "pruner.reduction_factor", "expected a whole number, got 'three'"},
      {"sampler flag that is not a bool", kHead + "sampler: {type: tpe, multivariate: maybe}\n", 4,
       "sampler.multivariate", "expected true or false"},
      {"negative median warm-up", kHead + "pruner:\n  type: median\n  n_warmup_epochs: -1\n", 6,
       "pruner.n_warmup_epochs", "must be 0 or more"},
      {"asha minimum resource of 0", kHead + "pruner: {type: asha, min_resource: 0}\n", 4,
       "pruner.min_resource", "at least 1 epoch"},
      {"tpe without candidates", kHead + "sampler: {type: tpe, n_ei_candidates: 0}\n", 4,
       "sampler.n_ei_candidates", "at least 1"},
      {"tpe prior weight below 0", kHead + "sampler: {type: tpe, prior_weight: -1}\n", 4,
       "sampler.prior_weight", "above 0"},
      {"tpe bandwidth floor above 1", kHead + "sampler: {type: tpe, bandwidth_floor: 2}\n", 4,
       "sampler.bandwidth_floor", "must be in (0, 1]"},
      {"tpe late bandwidth floor above the floor",
       kHead + "sampler: {type: tpe, bandwidth_floor: 0.5, late_bandwidth_floor: 0.7}\n", 4,
       "sampler.late_bandwidth_floor", "must be in (0, bandwidth_floor] = (0, 0.5]"},
      {"tpe late bandwidth floor with multivariate",
       kHead + "sampler: {type: tpe, multivariate: true, late_bandwidth_floor: 0.5}\n", 4,
       "sampler.late_bandwidth_floor", "univariate TPE only"},
      {"tpe weight window of 0", kHead + "sampler: {type: tpe, late_weight_window: 0}\n", 4,
       "sampler.late_weight_window", "must be at least 1, e.g. 10 (the default) or 25"},
      {"weight window for the random sampler",
       kHead + "sampler: {type: random, late_weight_window: 10}\n", 4, "sampler.late_weight_window",
       "tpe"},
      {"tpe bandwidth floor with multivariate",
       kHead + "sampler: {type: tpe, multivariate: true, bandwidth_floor: 0.5}\n", 4,
       "sampler.bandwidth_floor", "univariate TPE only"},
      {"grid over a log float",
       kHead + "sampler: grid\nsearch_space:\n  learning_rate: {low: 1.0e-5, high: 1.0e-3, log: "
               "true}\n",
       6, "search_space.learning_rate.step", "choices such as [1e-5, 1e-4]"},
      {"validation fraction outside (0, 1)",
       "name: t\nmodel: {path: model}\ndata:\n  train_file: train.csv\n  test_file: test.csv\n"
       "  validation_fraction: 1.5\n",
       6, "data.validation_fraction", "must be in (0, 1)"},
      {"log int range from 0",
       kHead + "search_space:\n  warmup_steps: {type: int, low: 0, high: 400, log: true}\n", 5,
       "search_space.warmup_steps.low", "log-scale int range needs low >= 1"},
      {"duplicate choice", kHead + "search_space:\n  batch_size: {choices: [8, 8]}\n", 5,
       "search_space.batch_size.choices[1]", "listed twice"},
      {"heads do not divide width",
       "name: t\nfine_tune: {method: lora}\nmodel:\n  random_init: {n_embd: 128, n_head: 3}\n  "
       "tokenizer: tok\n"
       "data: {train_file: train.csv, test_file: test.csv}\n",
       4, "model.random_init.n_head", "divisible by n_head"},
      {"max length beyond positions",
       "name: t\nmodel:\n  random_init: {n_positions: 32}\n  tokenizer: tok\n"
       "data: {train_file: train.csv, test_file: test.csv, max_length: 64}\n",
       5, "data.max_length", "exceeds the model's n_positions"},
      {"unknown LoRA target", kHead + "fine_tune:\n  lora: {target_modules: [c_atn]}\n", 5,
       "fine_tune.lora.target_modules[0]", "did you mean 'c_attn'"},
      {"malformed duration", kHead + "budget: {trial_timeout_seconds: 2 hours}\n", 4,
       "budget.trial_timeout_seconds", "duration such as 90s"},
      {"final stage without test file",
       "name: t\nmodel: {path: model}\ndata: {train_file: train.csv}\n", 3, "data.test_file",
       "required by the final stage"},
      {"enqueued more than n_trials",
       kHead + "search_space:\n  epochs: {type: int, low: 1, high: 4}\nbudget: {n_trials: 1}\n"
               "enqueue:\n  - {epochs: 1}\n  - {epochs: 2}\n",
       7, "enqueue", "exceed budget.n_trials"},
      {"tokenizer folder without BPE files",
       "name: t\nmodel:\n  random_init: {n_embd: 64}\n  tokenizer: .\ndata: {train_file: "
       "train.csv, test_file: test.csv}\n",
       4, "model.tokenizer", "neither vocab.json"},
  };
  return kCases;
}

void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST_CASE("hpsearch validate rejects bad study files naming file, line and key",
          "[cli][validate]") {
  TempDir dir;
  WriteFile(dir / "train.csv", "text,label\nhello,a\nbye,b\n");
  WriteFile(dir / "test.csv", "text,label\nhi,a\n");
  std::filesystem::create_directories(dir / "tok");
  WriteFile(dir / "tok" / "vocab.json", "{}");
  WriteFile(dir / "tok" / "merges.txt", "#version: 0.2\n");
  std::filesystem::create_directories(dir / "folder.csv");  // a folder named like a data file
  const std::string hpsearch = (testing::BinDir() / "hpsearch").string();

  REQUIRE(BadStudies().size() >= 25);
  for (const BadStudy& bad : BadStudies()) {
    SECTION(bad.name) {
      const std::string path = (dir / "study.yaml").string();
      WriteFile(path, bad.yaml);
      testing::ProcessResult result = RunProcess({hpsearch, "validate", path});
      INFO("case: " << bad.name << "\nstderr:\n" << result.err);
      REQUIRE(result.exit_code == 2);
      REQUIRE(result.out.empty());
      const std::string located =
          bad.line > 0 ? path + ":" + std::to_string(bad.line) + ":" : path + ":";
      REQUIRE(result.err.find(located) != std::string::npos);
      REQUIRE(result.err.find(std::string("error: ") + bad.field) != std::string::npos);
      REQUIRE(result.err.find(bad.message) != std::string::npos);
    }
  }
}

TEST_CASE("hpsearch validate accepts a valid file and prints it normalised", "[cli][validate]") {
  TempDir dir;
  WriteFile(dir / "train.csv", "text,label\nhello,a\nbye,b\n");
  WriteFile(dir / "test.csv", "text,label\nhi,a\n");
  const std::string path = (dir / "study.yaml").string();
  WriteFile(
      path,
      kHead +
          "search_space:\n  learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}\n");
  testing::ProcessResult result =
      RunProcess({(testing::BinDir() / "hpsearch").string(), "validate", path});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  REQUIRE(result.out.find("valid") != std::string::npos);
  REQUIRE(result.out.find("learning_rate: {type: float, low: 1e-05, high: 0.001, log: true}") !=
          std::string::npos);
  // The model directory does not exist yet: a warning, not an error.
  REQUIRE(result.err.find("warning: model.path") != std::string::npos);
}

TEST_CASE("hpsearch validate reports a missing study file", "[cli][validate]") {
  testing::ProcessResult result = RunProcess(
      {(testing::BinDir() / "hpsearch").string(), "validate", "/nonexistent/study.yaml"});
  REQUIRE(result.exit_code == 2);
  REQUIRE(result.err.find("cannot open study file '/nonexistent/study.yaml'") != std::string::npos);
  TempDir dir;
  testing::ProcessResult folder =
      RunProcess({(testing::BinDir() / "hpsearch").string(), "validate", dir.path().string()});
  INFO(folder.err);
  REQUIRE(folder.exit_code == 2);
  REQUIRE(folder.err.find("is a folder, not a study file") != std::string::npos);
}

TEST_CASE("A mistyped command or flag gets a did-you-mean, and a port past 65535 is refused",
          "[cli][validate]") {
  const std::string hpsearch = (testing::BinDir() / "hpsearch").string();
  testing::ProcessResult command = RunProcess({hpsearch, "sumbit", "study.yaml"});
  INFO(command.err);
  CHECK(command.exit_code == 2);
  CHECK(command.err.find("'sumbit' is not a command: did you mean 'submit'?") != std::string::npos);

  testing::ProcessResult flag = RunProcess({hpsearch, "validate", "--quiett", "study.yaml"});
  INFO(flag.err);
  CHECK(flag.exit_code == 2);
  CHECK(flag.err.find("--quiett is not a flag of this command") != std::string::npos);

  TempDir dir;
  testing::ProcessResult port = RunProcess(
      {hpsearch, "serve", "--db", (dir.path() / "r.db").string(), "--listen", "127.0.0.1:99999"});
  INFO(port.err);
  CHECK(port.exit_code == 2);
  CHECK(port.err.find("0 (any free port) to 65535") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "r.db"));  // nothing written
}

}  // namespace
}  // namespace hpsearch
