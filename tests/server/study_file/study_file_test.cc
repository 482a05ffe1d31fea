#include "server/study_file/study_file.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <limits>

#include "google/protobuf/util/message_differencer.h"
#include "server/study_file/study_yaml.h"
#include "testing/testing.h"

namespace hpsearch::server {
namespace {

using google::protobuf::util::MessageDifferencer;

ValidationOptions NoFileChecks() {
  ValidationOptions options;
  options.check_files = false;
  options.dir_exists = [](const std::string&) { return true; };
  options.file_exists = [](const std::string&) { return true; };
  return options;
}

std::string Errors(const LoadedStudy& loaded) {
  std::string text;
  for (const auto& issue : loaded.issues) text += issue.ToString() + "\n";
  return text;
}

// YAML -> StudySpec -> normalised YAML -> StudySpec must give the same message.
void RequireRoundTrip(const std::string& yaml, const std::string& base_dir) {
  LoadedStudy first = ParseStudyYaml(yaml, "first.yaml", base_dir, NoFileChecks());
  INFO(Errors(first));
  REQUIRE(first.ok());
  const std::string normalised = StudySpecToYaml(first.spec);
  LoadedStudy second = ParseStudyYaml(normalised, "second.yaml", base_dir, NoFileChecks());
  INFO("normalised:\n" << normalised << Errors(second));
  REQUIRE(second.ok());
  std::string diff;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  INFO(diff);
  REQUIRE(differencer.Compare(first.spec, second.spec));
  // And normalising is idempotent: the second text is the first.
  REQUIRE(StudySpecToYaml(second.spec) == normalised);
}

TEST_CASE("Every example study round-trips through normalised YAML", "[server][study_file]") {
  const auto examples = testing::SourceDir() / "examples";
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(examples)) {
    if (entry.path().extension() != ".yaml") continue;
    SECTION(entry.path().filename().string()) {
      std::ifstream in(entry.path());
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      RequireRoundTrip(text, examples.string());
    }
    ++seen;
  }
  REQUIRE(seen >= 3);
}

TEST_CASE("Every example study validates against the committed data", "[server][study_file]") {
  const auto examples = testing::SourceDir() / "examples";
  for (const char* name :
       {"banking77-seed.yaml", "banking77-seed-replay.yaml", "banking77-tiny.yaml"}) {
    SECTION(name) {
      absl::StatusOr<LoadedStudy> loaded = LoadStudyFile((examples / name).string());
      REQUIRE(loaded.ok());
      INFO(Errors(*loaded));
      REQUIRE(loaded->ok());
    }
  }
}

TEST_CASE("A study using every kind of key round-trips", "[server][study_file]") {
  const std::string yaml = R"(
name: kitchen-sink
seed: 123
description: "all keys"
model:
  random_init: {n_layer: 1, n_embd: 64, n_head: 4, n_positions: 64, vocab_size: 300, dropout: 0.0}
  tokenizer: tok
data:
  train_file: train.jsonl
  validation_file: val.jsonl
  test_file: test.jsonl
  text_column: sentence
  label_column: intent
  labels: [b, a, "yes"]
  max_length: 32
  eval_batch_size: 16
  group_by_length: true
  format: jsonl
training: {learning_rate: 0.001, gradient_checkpointing: true, adam_epsilon: 1.0e-6}
fine_tune:
  method: lora
  lora: {r: 4, alpha: 8, dropout: 0.0, target_modules: all-linear}
runner:
  type: command
  command: /usr/bin/python3 "my trial.py" --fast
  env: {OMP_NUM_THREADS: "1"}
  kill_grace_seconds: 2s
search_space:
  lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
  dropout: {type: float, low: 0.0, high: 0.5, step: 0.1}
  layers: {type: int, low: 1, high: 64, log: true}
  width: {low: 32, high: 256, step: 32}
  optimizer: {choices: ["adam", sgd]}
  flag: {choices: [true, false]}
  scale: {choices: [0.5, 1, 2]}
sampler: {type: tpe, n_startup_trials: 3, multivariate: true}
pruner: {type: percentile, percentile: 40, n_warmup_epochs: 1}
objective: {metric: my_score, direction: minimize, from_epoch: best}
budget: {n_trials: 20, parallelism: 4, max_retries: 1, trial_timeout_seconds: 30m, time_limit_seconds: 2h}
enqueue:
  - {lr: 0.001, optimizer: sgd, flag: false}
  - {width: 64, scale: 1}
final_stage: {retrain_on: train_validation, evaluate_test: true}
artifacts_root: runs
)";
  RequireRoundTrip(yaml, "/base");
  LoadedStudy loaded = ParseStudyYaml(yaml, "k.yaml", "/base", NoFileChecks());
  const v1::StudySpec& spec = loaded.spec;
  REQUIRE(spec.runner().command_size() == 3);
  REQUIRE(spec.runner().command(1) == "my trial.py");
  REQUIRE(spec.runner().working_dir() == "/base");
  REQUIRE(spec.runner().kill_grace_seconds() == 2.0);
  REQUIRE(spec.budget().trial_timeout_seconds() == 1800.0);
  REQUIRE(spec.budget().time_limit_seconds() == 7200.0);
  REQUIRE(spec.data().train_file() == "/base/train.jsonl");
  REQUIRE(spec.artifacts_root() == "/base/runs");
  REQUIRE(spec.search_space(3).has_int_range());  // integer bounds without a type make an int range
  REQUIRE(spec.search_space(4).categorical().choices(0).string_value() == "adam");
  REQUIRE(spec.search_space(4).categorical().choices(1).string_value() == "sgd");
  REQUIRE(spec.search_space(5).categorical().choices(0).bool_value());
  REQUIRE(spec.search_space(6).categorical().choices(1).int_value() == 1);
  REQUIRE(spec.data().labels(2) == "yes");
  REQUIRE(spec.fine_tune().lora().target_modules(0) == "all-linear");
  REQUIRE(spec.sampler().n_ei_candidates() == 24);  // Optuna's default filled in
  REQUIRE(spec.sampler().constant_liar());
}

TEST_CASE("Normalisation fills documented defaults", "[server][validator]") {
  v1::StudySpec spec;
  spec.set_name("defaults");
  spec.set_seed(9);
  spec.mutable_model()->set_path("/models/gpt2");
  spec.mutable_data()->set_train_file("/data/train.csv");
  spec.mutable_data()->set_test_file("/data/test.csv");
  spec.mutable_objective()->set_metric("val_loss");
  auto issues = NormalizeStudySpec(&spec, NoFileChecks());
  REQUIRE_FALSE(HasErrors(issues));
  REQUIRE(spec.model().tokenizer() == "/models/gpt2");
  REQUIRE(spec.data().validation_fraction() == 0.2);
  REQUIRE(spec.data().split_seed() == 9);
  REQUIRE(spec.data().max_length() == 128);
  REQUIRE(spec.training().learning_rate() == 5e-5);
  REQUIRE(spec.training().batch_size() == 8);
  REQUIRE(spec.fine_tune().method() == v1::FINE_TUNE_METHOD_QLORA);
  REQUIRE(spec.fine_tune().quantization().block_size() == 64);
  REQUIRE(spec.fine_tune().quantization().double_quant());
  REQUIRE(spec.fine_tune().lora().r() == 8);
  REQUIRE(spec.runner().type() == v1::RUNNER_TYPE_QLORA);
  REQUIRE(spec.sampler().type() == v1::SAMPLER_TYPE_RANDOM);
  REQUIRE(spec.pruner().type() == v1::PRUNER_TYPE_NONE);
  REQUIRE(spec.objective().direction() == v1::DIRECTION_MINIMIZE);  // a loss is minimised
  REQUIRE(spec.objective().from_epoch() == v1::EPOCH_SELECTION_LAST);
  REQUIRE(spec.budget().n_trials() == 10);
  REQUIRE(spec.final_stage().enabled());
  REQUIRE(spec.final_stage().retrain_on() == v1::RETRAIN_ON_TRAIN);
}

TEST_CASE("A spec submitted without YAML is validated the same way", "[server][validator]") {
  v1::StudySpec spec;  // as a gRPC client might send it: no name, no model, no data
  auto issues = NormalizeStudySpec(&spec, NoFileChecks());
  REQUIRE(HasErrors(issues));
  absl::Status status = IssuesToStatus(issues);
  REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
  const std::string message(status.message());
  REQUIRE(message.find("name: a study needs a name") != std::string::npos);
  REQUIRE(message.find("model: choose a model") != std::string::npos);
  REQUIRE(message.find("data.train_file: is required") != std::string::npos);
}

TEST_CASE("A search parameter warns only about overriding a value the user wrote",
          "[server][validator]") {
  const std::string base =
      "name: t\nmodel: {path: m}\ndata: {train_file: a.csv, test_file: b.csv}\n";
  LoadedStudy quiet = ParseStudyYaml(base + "search_space:\n  epochs: {low: 1, high: 3}\n",
                                     "s.yaml", "/", NoFileChecks());
  REQUIRE(quiet.ok());
  REQUIRE(quiet.issues.empty());
  LoadedStudy warned =
      ParseStudyYaml(base + "training: {epochs: 2}\nsearch_space:\n  epochs: {low: 1, high: 3}\n",
                     "s.yaml", "/", NoFileChecks());
  REQUIRE(warned.ok());
  REQUIRE(warned.issues.size() == 1);
  REQUIRE(warned.issues[0].line == 6);
  REQUIRE(warned.issues[0].message.find("overrides training.epochs") != std::string::npos);
}

TEST_CASE("Command lines split like a shell", "[server][study_file]") {
  std::vector<std::string> argv;
  REQUIRE(internal::SplitCommandLine(R"(python3 'a b.py' --x "c \"d\"" e\ f)", &argv));
  REQUIRE(argv == std::vector<std::string>{"python3", "a b.py", "--x", "c \"d\"", "e f"});
  std::vector<std::string> bad;
  REQUIRE_FALSE(internal::SplitCommandLine("python3 'unterminated", &bad));
}

TEST_CASE("Durations parse into seconds", "[server][study_file]") {
  double seconds = 0;
  REQUIRE(internal::ParseDurationSeconds("90", &seconds));
  REQUIRE(seconds == 90);
  REQUIRE(internal::ParseDurationSeconds("1.5h", &seconds));
  REQUIRE(seconds == 5400);
  REQUIRE(internal::ParseDurationSeconds("2d", &seconds));
  REQUIRE(seconds == 172800);
  REQUIRE_FALSE(internal::ParseDurationSeconds("2 hours", &seconds));
  REQUIRE_FALSE(internal::ParseDurationSeconds("h", &seconds));
}

}  // namespace
}  // namespace hpsearch::server

namespace hpsearch::server {
namespace {

v1::StudySpec MinimalSpec() {
  v1::StudySpec spec;
  spec.set_name("s");
  spec.mutable_model()->set_path("/models/gpt2");
  spec.mutable_data()->set_train_file("/data/train.csv");
  spec.mutable_data()->set_test_file("/data/test.csv");
  auto* lr = spec.add_search_space();
  lr->set_name("learning_rate");
  lr->mutable_float_range()->set_low(1e-5);
  lr->mutable_float_range()->set_high(1e-3);
  lr->mutable_float_range()->set_log(true);
  return spec;
}

bool HasIssue(const std::vector<ValidationIssue>& issues, ValidationIssue::Severity severity,
              const std::string& field, const std::string& fragment) {
  for (const auto& issue : issues) {
    if (issue.severity == severity && issue.field == field &&
        issue.message.find(fragment) != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST_CASE("Sampler and pruner defaults are filled per type", "[server][validator]") {
  v1::StudySpec sobol = MinimalSpec();
  sobol.mutable_sampler()->set_type(v1::SAMPLER_TYPE_SOBOL);
  sobol.mutable_pruner()->set_type(v1::PRUNER_TYPE_ASHA);
  REQUIRE_FALSE(HasErrors(NormalizeStudySpec(&sobol, NoFileChecks())));
  CHECK(sobol.sampler().scramble());
  CHECK_FALSE(sobol.sampler().has_n_startup_trials());  // a tpe option stays unset
  CHECK(sobol.pruner().min_resource() == 1);
  CHECK(sobol.pruner().reduction_factor() == 3);
  CHECK(sobol.pruner().min_early_stopping_rate() == 0);
  CHECK_FALSE(sobol.pruner().has_n_warmup_epochs());

  v1::StudySpec median = MinimalSpec();
  median.mutable_sampler()->set_type(v1::SAMPLER_TYPE_TPE);
  median.mutable_pruner()->set_type(v1::PRUNER_TYPE_MEDIAN);
  REQUIRE_FALSE(HasErrors(NormalizeStudySpec(&median, NoFileChecks())));
  CHECK(median.sampler().n_startup_trials() == 10);
  CHECK(median.sampler().gamma() == 0.1);
  CHECK(median.sampler().gamma_max() == 25);
  CHECK(median.sampler().prior_weight() == 1.0);
  CHECK_FALSE(median.sampler().multivariate());
  CHECK_FALSE(median.sampler().consider_endpoints());
  CHECK(median.sampler().bandwidth_floor() == 0.6);
  CHECK(median.sampler().late_bandwidth_floor() == 0.3);
  CHECK(median.sampler().late_weight_window() == 10);
  CHECK(median.sampler().startup() == v1::STARTUP_DESIGN_LATIN_HYPERCUBE);
  CHECK_FALSE(sobol.sampler().has_startup());
  CHECK(median.pruner().n_startup_trials() == 5);
  CHECK(median.pruner().n_warmup_epochs() == 0);
  CHECK(median.pruner().interval_epochs() == 1);
  CHECK(median.pruner().n_min_trials() == 1);
  CHECK_FALSE(median.pruner().has_percentile());
}

TEST_CASE("Sampler and pruner settings that cannot work are named", "[server][validator]") {
  using Severity = ValidationIssue::Severity;
  // ASHA whose first rung ends at or after the last epoch never stops anything.
  v1::StudySpec asha = MinimalSpec();
  asha.mutable_training()->set_epochs(3);
  asha.mutable_pruner()->set_type(v1::PRUNER_TYPE_ASHA);
  asha.mutable_pruner()->set_min_resource(3);
  auto issues = NormalizeStudySpec(&asha, NoFileChecks());
  CHECK(HasIssue(issues, Severity::kWarning, "pruner.min_resource", "asha never stops a trial"));

  // A grid smaller than the budget ends early (a warning); a stepped grid is fine.
  v1::StudySpec grid = MinimalSpec();
  grid.mutable_sampler()->set_type(v1::SAMPLER_TYPE_GRID);
  grid.mutable_search_space(0)->mutable_float_range()->set_log(false);
  grid.mutable_search_space(0)->mutable_float_range()->set_step(1e-4);  // 10 points
  grid.mutable_budget()->set_n_trials(50);
  issues = NormalizeStudySpec(&grid, NoFileChecks());
  CHECK_FALSE(HasErrors(issues));
  CHECK(HasIssue(issues, Severity::kWarning, "budget.n_trials", "the grid has 10 points"));

  // TPE whose start-up covers the whole budget is only random.
  v1::StudySpec tpe = MinimalSpec();
  tpe.mutable_sampler()->set_type(v1::SAMPLER_TYPE_TPE);
  tpe.mutable_budget()->set_n_trials(5);
  issues = NormalizeStudySpec(&tpe, NoFileChecks());
  CHECK(HasIssue(issues, Severity::kWarning, "sampler.n_startup_trials",
                 "every trial is a start-up trial"));

  // Sobol over more parameters than it has direction numbers for.
  v1::StudySpec wide = MinimalSpec();
  wide.mutable_runner()->set_type(v1::RUNNER_TYPE_COMMAND);
  wide.mutable_runner()->add_command("/bin/true");
  wide.mutable_sampler()->set_type(v1::SAMPLER_TYPE_SOBOL);
  for (int i = 0; i < 300; ++i) {
    auto* p = wide.add_search_space();
    p->set_name("p" + std::to_string(i));
    p->mutable_int_range()->set_low(0);
    p->mutable_int_range()->set_high(1);
  }
  issues = NormalizeStudySpec(&wide, NoFileChecks());
  CHECK(HasIssue(issues, Severity::kError, "search_space", "supports at most 256"));
  // ... and TPE's Sobol start-up likewise; its default Latin hypercube has no such limit.
  wide.mutable_sampler()->Clear();
  wide.mutable_sampler()->set_type(v1::SAMPLER_TYPE_TPE);
  wide.mutable_sampler()->set_startup(v1::STARTUP_DESIGN_SOBOL);
  issues = NormalizeStudySpec(&wide, NoFileChecks());
  CHECK(HasIssue(issues, Severity::kError, "sampler.startup", "use `startup: latin_hypercube`"));
  wide.mutable_sampler()->clear_startup();
  CHECK_FALSE(HasErrors(NormalizeStudySpec(&wide, NoFileChecks())));
}

TEST_CASE("Values a worker or submit would fail on are refused by the validator with their field",
          "[server][validator]") {
  using Severity = ValidationIssue::Severity;
  auto errors_of = [](v1::StudySpec spec) { return NormalizeStudySpec(&spec, NoFileChecks()); };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();

  v1::StudySpec spec = MinimalSpec();
  spec.mutable_training()->set_learning_rate(nan);
  spec.mutable_training()->set_weight_decay(inf);
  spec.mutable_training()->set_adam_beta1(nan);
  spec.mutable_fine_tune()->mutable_lora()->set_dropout(nan);
  auto issues = errors_of(spec);
  CHECK(HasIssue(issues, Severity::kError, "training.learning_rate", "finite"));
  CHECK(HasIssue(issues, Severity::kError, "training.weight_decay", "finite"));
  CHECK(HasIssue(issues, Severity::kError, "training.adam_beta1", "[0, 1)"));
  CHECK(HasIssue(issues, Severity::kError, "fine_tune.lora.dropout", "[0, 1)"));

  spec = MinimalSpec();
  spec.mutable_budget()->set_trial_timeout_seconds(nan);
  spec.mutable_budget()->set_time_limit_seconds(inf);
  issues = errors_of(spec);
  CHECK(HasIssue(issues, Severity::kError, "budget.trial_timeout_seconds", "no limit"));
  CHECK(HasIssue(issues, Severity::kError, "budget.time_limit_seconds", "no limit"));

  // A study name is also a folder name under the artifacts root.
  for (const char* name : {"..", ".", ".hidden"}) {
    spec = MinimalSpec();
    spec.set_name(name);
    INFO(name);
    CHECK(HasIssue(errors_of(spec), Severity::kError, "name", "starts with '.'"));
  }

  // An int range over all of int64 would overflow high - low (it sampled INT64_MIN).
  spec = MinimalSpec();
  auto* wide = spec.add_search_space();
  wide->set_name("seed_offset");
  wide->mutable_int_range()->set_low(std::numeric_limits<int64_t>::min());
  wide->mutable_int_range()->set_high(std::numeric_limits<int64_t>::max());
  spec.mutable_runner()->set_type(v1::RUNNER_TYPE_COMMAND);
  spec.mutable_runner()->add_command("/bin/true");
  CHECK(HasIssue(errors_of(spec), Severity::kError, "search_space.seed_offset", "2^53"));

  // A step so small that the grid's points are not distinct doubles.
  spec = MinimalSpec();
  spec.mutable_search_space(0)->mutable_float_range()->set_log(false);
  spec.mutable_search_space(0)->mutable_float_range()->set_step(1e-300);
  CHECK(HasIssue(errors_of(spec), Severity::kError, "search_space.learning_rate.step", "2^53"));

  // A 10 MB description passed validate and then failed submit on gRPC's message limit.
  spec = MinimalSpec();
  spec.set_description(std::string(10 * 1024 * 1024, 'x'));
  CHECK(HasIssue(errors_of(spec), Severity::kError, "description", "64 KiB"));

  // The same through the YAML front: `.nan` is YAML for NaN.
  LoadedStudy loaded = ParseStudyYaml(
      "name: s\nmodel: /models/gpt2\ndata: {train_file: /data/train.csv}\n"
      "training: {weight_decay: .nan}\n",
      "bad.yaml", "/", NoFileChecks());
  INFO(Errors(loaded));
  CHECK_FALSE(loaded.ok());
  CHECK(Errors(loaded).find("training.weight_decay") != std::string::npos);
}

TEST_CASE("A NUL character in any string of a spec is refused with its field, and alone",
          "[server][validator]") {
  using Severity = ValidationIssue::Severity;
  const std::string nul("a\0b", 3);
  // As SubmitStudy or the Python client send it (the YAML reader refuses it with its line before).
  v1::StudySpec spec = MinimalSpec();
  spec.set_name(nul);
  spec.mutable_runner()->set_type(v1::RUNNER_TYPE_COMMAND);
  spec.mutable_runner()->add_command("/bin/echo");
  spec.mutable_runner()->add_command(nul);
  (*spec.mutable_runner()->mutable_env())["MODE"] = nul;
  spec.mutable_search_space(0)->clear_float_range();
  spec.mutable_search_space(0)->mutable_categorical()->add_choices()->set_string_value(nul);
  std::vector<ValidationIssue> issues = NormalizeStudySpec(&spec, NoFileChecks());
  INFO(IssuesToStatus(issues).message());
  CHECK(HasIssue(issues, Severity::kError, "name", "holds a NUL character"));
  CHECK(HasIssue(issues, Severity::kError, "runner.command[1]", "holds a NUL character"));
  CHECK(HasIssue(issues, Severity::kError, "runner.env.MODE", "holds a NUL character"));
  CHECK(HasIssue(issues, Severity::kError, "search_space[0].categorical.choices[0].string_value",
                 "holds a NUL character"));
  // Nothing else: every other message would quote a string cut short at the NUL.
  CHECK(issues.size() == 4);

  // Other control bytes in a name are shown escaped.
  spec = MinimalSpec();
  spec.set_name("a\x01" "b");
  CHECK(HasIssue(NormalizeStudySpec(&spec, NoFileChecks()), Severity::kError, "name",
                 "'a\\x01b' is not a valid study name"));

  // Through the YAML front: the scalar's own line and column, whichever escape wrote it.
  for (const char* escape : {"\\0", "\\x00", "\\u0000"}) {
    LoadedStudy loaded = ParseStudyYaml(
        std::string("name: s\nmodel: /models/gpt2\ndata: {train_file: \"/data/x") + escape +
            ".csv\"}\n",
        "bad.yaml", "/", NoFileChecks());
    INFO(escape << ": " << Errors(loaded));
    CHECK(Errors(loaded).find("bad.yaml:3:20: error: data.train_file: holds a NUL character") !=
          std::string::npos);
  }
  // A raw NUL byte (yaml-cpp garbled the value it was in), and a UTF-16 file, whose NUL bytes are
  // part of its characters, still read.
  LoadedStudy raw = ParseStudyYaml(std::string("name: s\nmodel: a\0b\n", 19), "raw.yaml", "/",
                                   NoFileChecks());
  CHECK(Errors(raw).find("raw.yaml:2:9: error: a NUL byte (0x00)") != std::string::npos);
  std::string utf16 = "\xff\xfe";
  for (char c : std::string("name: s\n")) utf16 += std::string{c, '\0'};
  LoadedStudy wide = ParseStudyYaml(utf16, "wide.yaml", "/", NoFileChecks());
  CHECK(wide.spec.name() == "s");
}

}  // namespace
}  // namespace hpsearch::server
