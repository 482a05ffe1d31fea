#include "server/study_file/study_validator.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/training_defaults.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"
#include "nlohmann/json.hpp"
#include "server/study_file/study_view.h"
#include "server/study_file/validation_context.h"

namespace hpsearch::server {
namespace {

using internal::FormatNumber;
using internal::SuggestAmong;
using internal::ValidationContext;
namespace fs = std::filesystem;

constexpr int kNf4BlockSize = 64;

bool HasTokenizerFiles(const std::string& dir, const ValidationContext& ctx) {
  auto has = [&](const char* name) { return ctx.FileExists((fs::path(dir) / name).string()); };
  return (has("vocab.json") && has("merges.txt")) || (has("encoder.json") && has("vocab.bpe"));
}

// Width of a pretrained checkpoint from its config.json, or 0 when unknown.
int CheckpointWidth(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "config.json");
  if (!in) return 0;
  nlohmann::json config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) return 0;
  for (const char* key : {"n_embd", "hidden_size"}) {
    if (config.contains(key) && config[key].is_number_integer()) return config[key].get<int>();
  }
  return 0;
}

bool AskTellOnly(const v1::StudySpec& spec) { return spec.runner().type() == v1::RUNNER_TYPE_NONE; }

// A name as an error message quotes it: at most 80 bytes, control bytes escaped (\x01).
std::string Shown(const std::string& text) {
  std::string shown;
  for (unsigned char c : text.substr(0, 80)) {
    if (c < 0x20 || c == 0x7f) {
      shown += absl::StrFormat("\\x%02x", c);
    } else {
      shown += static_cast<char>(c);
    }
  }
  if (text.size() > 80) shown += "...";
  return shown;
}

// Every string of the spec that holds a NUL character, wherever the spec came from (a study file's
// reader refuses them with their line already; SubmitStudy and the Python client send protos). The
// operating system would cut a command argument, path or environment value short at a NUL, and a
// message quoting the string would show nothing there. The path names the field in the proto
// ("runner.command[2]", "runner.env.KEY").
void FindNulStrings(const google::protobuf::Message& message, const std::string& path,
                    std::vector<std::string>* found) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const std::string name = path.empty() ? field->name() : path + "." + field->name();
    if (field->is_map()) {
      // Entries are messages {key, value}: named by their key.
      for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
        const google::protobuf::Message& entry = reflection->GetRepeatedMessage(message, field, i);
        const FieldDescriptor* key = entry.GetDescriptor()->map_key();
        std::string key_text = key->cpp_type() == FieldDescriptor::CPPTYPE_STRING
                                   ? entry.GetReflection()->GetString(entry, key)
                                   : std::to_string(i);
        if (key_text.find('\0') != std::string::npos) found->push_back(name + " (a key)");
        const std::string entry_path = name + "." + Shown(key_text);
        const FieldDescriptor* value = entry.GetDescriptor()->map_value();
        if (value->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
          if (entry.GetReflection()->GetString(entry, value).find('\0') != std::string::npos) {
            found->push_back(entry_path);
          }
        } else if (value->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          FindNulStrings(entry.GetReflection()->GetMessage(entry, value), entry_path, found);
        }
      }
    } else if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
        const std::string item = absl::StrCat(name, "[", i, "]");
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
          if (reflection->GetRepeatedString(message, field, i).find('\0') != std::string::npos) {
            found->push_back(item);
          }
        } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          FindNulStrings(reflection->GetRepeatedMessage(message, field, i), item, found);
        }
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      if (reflection->GetString(message, field).find('\0') != std::string::npos) {
        found->push_back(name);
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      FindNulStrings(reflection->GetMessage(message, field), name, found);
    }
  }
}

void ValidateName(v1::StudySpec* spec, ValidationContext* ctx) {
  static const std::regex kName("[A-Za-z0-9._-]+");
  if (spec->name().empty()) {
    ctx->Error("name",
               "a study needs a name: add `name: my-study` (letters, digits, '.', '_', '-')");
  } else if (spec->name().size() > 128 || !std::regex_match(spec->name(), kName)) {
    ctx->Error("name", "'" + Shown(spec->name()) +
                           "' is not a valid study name: use at most 128 letters, digits, '.', '_' "
                           "or '-'");
  } else if (spec->name().front() == '.') {
    // The name becomes a folder under the artifacts root: "." and ".." would write above it.
    ctx->Error("name", "'" + spec->name() +
                           "' starts with '.': a study name is also a folder name, so start it "
                           "with a letter, digit, '_' or '-'");
  }
  if (!spec->has_seed()) spec->set_seed(0);
}

void ValidateRandomInit(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::RandomInitArchitecture* arch = spec->mutable_model()->mutable_random_init();
  const std::string p = "model.random_init.";
  if (!arch->has_n_layer()) arch->set_n_layer(2);
  if (!arch->has_n_embd()) arch->set_n_embd(128);
  if (!arch->has_n_head()) arch->set_n_head(2);
  if (!arch->has_n_positions()) arch->set_n_positions(128);
  if (!arch->has_layer_norm_epsilon()) arch->set_layer_norm_epsilon(1e-5);
  if (!arch->has_initializer_range()) arch->set_initializer_range(0.02);
  if (!arch->has_dropout()) arch->set_dropout(0.1);
  if (!arch->has_activation()) arch->set_activation("gelu_new");
  if (arch->n_layer() < 1) ctx->Error(p + "n_layer", "must be at least 1");
  if (arch->n_embd() < 1) ctx->Error(p + "n_embd", "must be at least 1");
  if (arch->n_head() < 1) {
    ctx->Error(p + "n_head", "must be at least 1");
  } else if (arch->n_embd() >= 1 && arch->n_embd() % arch->n_head() != 0) {
    ctx->Error(
        p + "n_head",
        absl::StrCat("n_embd (", arch->n_embd(), ") must be divisible by n_head (", arch->n_head(),
                     "): pick a divisor such as ", arch->n_embd() % 2 == 0 ? 2 : 1));
  }
  if (arch->n_positions() < 1) ctx->Error(p + "n_positions", "must be at least 1");
  if (arch->has_vocab_size() && arch->vocab_size() < 1) {
    ctx->Error(p + "vocab_size", "must be at least 1, or leave it out to use the tokenizer's size");
  }
  if (arch->layer_norm_epsilon() <= 0) ctx->Error(p + "layer_norm_epsilon", "must be above 0");
  if (arch->initializer_range() <= 0) ctx->Error(p + "initializer_range", "must be above 0");
  if (arch->dropout() < 0 || arch->dropout() >= 1) {
    ctx->Error(p + "dropout", "must be in [0, 1), e.g. 0.1");
  }
  static const std::vector<std::string> kActivations = {"gelu_new"};  // what core/ implements
  if (std::find(kActivations.begin(), kActivations.end(), arch->activation()) ==
      kActivations.end()) {
    ctx->Error(p + "activation", "unknown activation '" + arch->activation() + "'" +
                                     SuggestAmong(arch->activation(), kActivations));
  }
}

void ValidateModel(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::ModelSpec* model = spec->mutable_model();
  switch (model->source_case()) {
    case v1::ModelSpec::SOURCE_NOT_SET:
      // A command trial brings its own model (or none): only the built-in trainer needs one here.
      if (!UsesBuiltInTrainer(*spec)) return;
      ctx->Error("model",
                 "choose a model: `path: DIR` (a Hugging Face GPT-2 checkpoint directory) or "
                 "`random_init: {...}` with a `tokenizer: DIR`");
      return;
    case v1::ModelSpec::kPath:
      if (model->path().empty()) {
        ctx->Error("model.path", "is empty: give the checkpoint directory");
        return;
      }
      if (model->tokenizer().empty()) model->set_tokenizer(model->path());
      if (!ctx->DirExists(model->path())) {
        ctx->Warning("model.path",
                     "directory '" + model->path() +
                         "' does not exist yet; put the checkpoint there before trials "
                         "start (they fail until it exists)");
        return;
      }
      if (!ctx->FileExists((fs::path(model->path()) / "config.json").string())) {
        ctx->Warning("model.path", "'" + model->path() +
                                       "' has no config.json yet: trials fail until " +
                                       "the Hugging Face checkpoint is complete");
      }
      break;
    case v1::ModelSpec::kRandomInit:
      ValidateRandomInit(spec, ctx);
      if (model->tokenizer().empty()) {
        ctx->Error("model.tokenizer",
                   "random_init needs a tokenizer directory (vocab.json + merges.txt), "
                   "e.g. `tokenizer: ../data/gpt2`");
        return;
      }
      break;
  }
  if (ctx->DirExists(model->tokenizer())) {
    if (!HasTokenizerFiles(model->tokenizer(), *ctx)) {
      ctx->Error("model.tokenizer", "'" + model->tokenizer() +
                                        "' has neither vocab.json + merges.txt nor encoder.json + "
                                        "vocab.bpe: copy the GPT-2 BPE files there");
    }
  } else if (model->source_case() == v1::ModelSpec::kRandomInit ||
             model->tokenizer() != model->path()) {
    ctx->Error("model.tokenizer",
               "directory '" + model->tokenizer() + "' does not exist: fix the path");
  }
}

void ValidateDataFile(const std::string& field, const std::string& path, v1::DataFormat format,
                      ValidationContext* ctx) {
  if (format == v1::DATA_FORMAT_AUTO) {
    std::string ext = fs::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (ext != ".csv" && ext != ".jsonl" && ext != ".json") {
      ctx->Error(field, "cannot tell the format of '" + path +
                            "' from its extension: name it .csv or .jsonl, or set data.format");
      return;
    }
  }
  ctx->RequireFile(field, path, "data file");
}

void ValidateData(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::DataSpec* data = spec->mutable_data();
  if (data->train_file().empty()) {
    ctx->Error("data.train_file", "is required: the labelled training texts (CSV or JSON Lines)");
  } else {
    ValidateDataFile("data.train_file", data->train_file(), data->format(), ctx);
  }
  if (!data->validation_file().empty()) {
    ValidateDataFile("data.validation_file", data->validation_file(), data->format(), ctx);
    if (data->has_validation_fraction()) {
      ctx->Warning("data.validation_fraction", "is ignored because data.validation_file is set");
    }
  }
  if (!data->has_validation_fraction()) {
    data->set_validation_fraction(training_defaults::kValidationFraction);
  }
  if (data->validation_file().empty() &&
      !(data->validation_fraction() > 0 && data->validation_fraction() < 1)) {
    ctx->Error("data.validation_fraction",
               "must be in (0, 1) (e.g. 0.2 keeps 20% of train for validation), got " +
                   FormatNumber(data->validation_fraction()));
  }
  if (!data->has_split_seed()) data->set_split_seed(spec->seed());
  if (!data->has_stratify()) data->set_stratify(false);
  if (!data->has_text_column()) data->set_text_column("text");
  if (!data->has_label_column()) data->set_label_column("label");
  if (data->text_column().empty()) ctx->Error("data.text_column", "must not be empty");
  if (data->label_column().empty()) ctx->Error("data.label_column", "must not be empty");
  if (!data->text_column().empty() && data->text_column() == data->label_column()) {
    ctx->Error("data.label_column", "must differ from data.text_column");
  }
  std::set<std::string> seen;
  for (int i = 0; i < data->labels_size(); ++i) {
    const std::string field = absl::StrCat("data.labels[", i, "]");
    if (data->labels(i).empty()) ctx->Error(field, "a label name must not be empty");
    if (!seen.insert(data->labels(i)).second) {
      ctx->Error(field, "label '" + data->labels(i) + "' is listed twice: each class once");
    }
  }
  if (data->labels_size() == 1) ctx->Error("data.labels", "needs at least two classes");
  if (!data->has_max_length()) data->set_max_length(training_defaults::kMaxLength);
  if (const char* rule = training_defaults::CheckMaxLength(data->max_length())) {
    ctx->Error("data.max_length", rule);
  }
  if (spec->model().has_random_init() &&
      data->max_length() > spec->model().random_init().n_positions()) {
    ctx->Error("data.max_length",
               absl::StrCat("(", data->max_length(), ") exceeds the model's n_positions (",
                            spec->model().random_init().n_positions(),
                            "): lower it or raise model.random_init.n_positions"));
  }
  if (!data->has_eval_batch_size()) data->set_eval_batch_size(training_defaults::kEvalBatchSize);
  if (const char* rule = training_defaults::CheckEvalBatchSize(data->eval_batch_size())) {
    ctx->Error("data.eval_batch_size", rule);
  }
  if (!data->has_group_by_length()) data->set_group_by_length(false);
}

void ValidateTraining(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::TrainingSpec* t = spec->mutable_training();
  namespace d = training_defaults;
  if (!t->has_learning_rate()) t->set_learning_rate(d::kLearningRate);
  if (!t->has_batch_size()) t->set_batch_size(d::kBatchSize);
  if (!t->has_epochs()) t->set_epochs(d::kEpochs);
  if (!t->has_weight_decay()) t->set_weight_decay(d::kWeightDecay);
  if (!t->has_warmup_steps()) t->set_warmup_steps(d::kWarmupSteps);
  if (!t->has_max_grad_norm()) t->set_max_grad_norm(d::kMaxGradNorm);
  if (!t->has_gradient_checkpointing()) t->set_gradient_checkpointing(d::kGradientCheckpointing);
  if (!t->has_adam_beta1()) t->set_adam_beta1(d::kAdamBeta1);
  if (!t->has_adam_beta2()) t->set_adam_beta2(d::kAdamBeta2);
  if (!t->has_adam_epsilon()) t->set_adam_epsilon(d::kAdamEpsilon);
  auto check = [ctx](const char* field, const char* broken_rule) {
    if (broken_rule != nullptr) ctx->Error(field, broken_rule);
  };
  check("training.learning_rate", d::CheckLearningRate(t->learning_rate()));
  check("training.batch_size", d::CheckBatchSize(t->batch_size()));
  check("training.epochs", d::CheckEpochs(t->epochs()));
  check("training.weight_decay", d::CheckWeightDecay(t->weight_decay()));
  check("training.warmup_steps", d::CheckWarmupSteps(t->warmup_steps()));
  check("training.max_grad_norm", d::CheckMaxGradNorm(t->max_grad_norm()));
  check("training.adam_beta1", d::CheckAdamBeta(t->adam_beta1()));
  check("training.adam_beta2", d::CheckAdamBeta(t->adam_beta2()));
  check("training.adam_epsilon", d::CheckAdamEpsilon(t->adam_epsilon()));
}

void ValidateFineTune(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::FineTuneSpec* ft = spec->mutable_fine_tune();
  if (ft->method() == v1::FINE_TUNE_METHOD_UNSPECIFIED) ft->set_method(v1::FINE_TUNE_METHOD_QLORA);
  v1::QuantizationSpec* q = ft->mutable_quantization();
  if (q->type() == v1::QUANTIZATION_TYPE_UNSPECIFIED) q->set_type(v1::QUANTIZATION_TYPE_NF4);
  if (!q->has_double_quant()) q->set_double_quant(true);
  if (!q->has_block_size()) q->set_block_size(kNf4BlockSize);
  const bool qlora = ft->method() == v1::FINE_TUNE_METHOD_QLORA;
  if (qlora && q->block_size() != kNf4BlockSize) {
    ctx->Error(
        "fine_tune.quantization.block_size",
        absl::StrCat("is ", q->block_size(), " but NF4 under qlora uses blocks of 64: set 64"));
  }
  if (qlora) {
    int width = spec->model().has_random_init() ? spec->model().random_init().n_embd()
                                                : CheckpointWidth(spec->model().path());
    if (width > 0 && width % kNf4BlockSize != 0) {
      ctx->Error(
          spec->model().has_random_init() ? "model.random_init.n_embd" : "model.path",
          absl::StrCat("the model width (", width,
                       ") is not a multiple of 64, which qlora's NF4 blocks need: use a width "
                       "such as ",
                       (width / kNf4BlockSize + 1) * kNf4BlockSize, ", or method lora"));
    }
  }
  v1::LoraSpec* lora = ft->mutable_lora();
  if (!lora->has_r()) lora->set_r(training_defaults::kLoraR);
  if (!lora->has_alpha()) lora->set_alpha(training_defaults::kLoraAlpha);
  if (!lora->has_dropout()) lora->set_dropout(training_defaults::kLoraDropout);
  if (lora->target_modules_size() == 0) lora->add_target_modules("c_attn");
  if (const char* rule = training_defaults::CheckLoraR(lora->r()))
    ctx->Error("fine_tune.lora.r", rule);
  if (const char* rule = training_defaults::CheckLoraAlpha(lora->alpha())) {
    ctx->Error("fine_tune.lora.alpha", rule);
  }
  if (const char* rule = training_defaults::CheckLoraDropout(lora->dropout())) {
    ctx->Error("fine_tune.lora.dropout", rule);
  }
  static const std::vector<std::string> kTargets = {"c_attn", "c_proj", "c_fc", "all-linear"};
  std::set<std::string> seen;
  for (int i = 0; i < lora->target_modules_size(); ++i) {
    const std::string& target = lora->target_modules(i);
    const std::string field = absl::StrCat("fine_tune.lora.target_modules[", i, "]");
    if (std::find(kTargets.begin(), kTargets.end(), target) == kTargets.end()) {
      ctx->Error(field, "unknown module '" + target + "'" + SuggestAmong(target, kTargets));
    } else if (!seen.insert(target).second) {
      ctx->Error(field, "'" + target + "' is listed twice");
    }
  }
  if (seen.count("all-linear") && lora->target_modules_size() > 1) {
    ctx->Error("fine_tune.lora.target_modules",
               "all-linear already covers every linear layer: list it alone");
  }
}

void ValidateRunner(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::RunnerSpec* runner = spec->mutable_runner();
  if (runner->type() == v1::RUNNER_TYPE_UNSPECIFIED) runner->set_type(v1::RUNNER_TYPE_QLORA);
  if (!runner->has_kill_grace_seconds()) runner->set_kill_grace_seconds(10);
  if (runner->kill_grace_seconds() < 0)
    ctx->Error("runner.kill_grace_seconds", "must be 0 or more");
  if (runner->type() == v1::RUNNER_TYPE_COMMAND) {
    if (runner->command_size() == 0 || runner->command(0).empty()) {
      ctx->Error("runner.command",
                 "the command runner needs a command, e.g. "
                 "`command: /usr/bin/python3 train.py`");
    }
    if (!runner->working_dir().empty() && !ctx->DirExists(runner->working_dir())) {
      ctx->Error("runner.working_dir", "directory '" + runner->working_dir() + "' does not exist");
    }
  } else if (runner->command_size() > 0) {
    ctx->Error("runner.command",
               "is only used by the command runner: set `runner: {type: command, ...}` "
               "or remove the command");
  }
  if (runner->has_supports_evaluate() && runner->type() != v1::RUNNER_TYPE_COMMAND) {
    ctx->Error("runner.supports_evaluate",
               "is only used by the command runner (the built-in trainer always evaluates a "
               "stored model): remove it");
  }
}

void ValidateObjective(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::ObjectiveSpec* objective = spec->mutable_objective();
  // Ask/tell studies: the objective is the value Tell carries, minimised unless told otherwise (as
  // Optuna's default).
  if (objective->metric().empty())
    objective->set_metric(AskTellOnly(*spec) ? "value" : "val_accuracy");
  if (AskTellOnly(*spec) && objective->direction() == v1::DIRECTION_UNSPECIFIED) {
    objective->set_direction(v1::DIRECTION_MINIMIZE);
  }
  const std::string& metric = objective->metric();
  const auto& canonical = internal::CanonicalEpochMetrics();
  const bool is_canonical =
      std::find(canonical.begin(), canonical.end(), metric) != canonical.end();
  if (metric.rfind("test_", 0) == 0) {
    ctx->Error("objective.metric", "'" + metric +
                                       "' is a test metric; the test set must not steer the "
                                       "search: use a validation metric such as val_accuracy");
  } else if (UsesBuiltInTrainer(*spec) && !is_canonical) {
    ctx->Error("objective.metric",
               "unknown metric '" + metric + "'" + SuggestAmong(metric, canonical));
  } else if (!internal::IsIdentifier(metric)) {
    ctx->Error("objective.metric", "'" + metric +
                                       "' is not a metric name: use lower-case letters, digits "
                                       "and '_'");
  }
  if (objective->direction() == v1::DIRECTION_UNSPECIFIED) {
    const bool loss = metric.size() >= 5 && metric.compare(metric.size() - 5, 5, "_loss") == 0;
    objective->set_direction(loss ? v1::DIRECTION_MINIMIZE : v1::DIRECTION_MAXIMIZE);
  }
  if (objective->from_epoch() == v1::EPOCH_SELECTION_UNSPECIFIED) {
    objective->set_from_epoch(v1::EPOCH_SELECTION_LAST);
  }
}

void ValidateBudget(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::BudgetSpec* budget = spec->mutable_budget();
  if (!budget->has_n_trials()) budget->set_n_trials(10);
  // Ask/tell: the client decides how many trials it runs at once.
  if (!budget->has_parallelism())
    budget->set_parallelism(AskTellOnly(*spec) ? budget->n_trials() : 1);
  if (!budget->has_max_retries()) budget->set_max_retries(2);
  if (!budget->has_trial_timeout_seconds()) budget->set_trial_timeout_seconds(0);
  if (!budget->has_time_limit_seconds()) budget->set_time_limit_seconds(0);
  // Filled in here, so only studies submitted from now on get it: a study stored before has no
  // max_failures and keeps running without the limit (the coordinator keeps its stored spec).
  if (!budget->has_max_failures()) budget->set_max_failures(kDefaultMaxFailures);
  if (budget->max_failures() < 0) {
    ctx->Error("budget.max_failures", "must be 0 (no limit) or a number of failures in a row");
  }
  if (budget->n_trials() < 1) ctx->Error("budget.n_trials", "must be at least 1");
  if (budget->parallelism() < 1)
    ctx->Error("budget.parallelism", "must be at least 1 trial at a time");
  if (budget->max_retries() < 0) ctx->Error("budget.max_retries", "must be 0 or more");
  // NaN would compare as "no limit" and infinity overflows the coordinator's deadline.
  if (!(budget->trial_timeout_seconds() >= 0) || !std::isfinite(budget->trial_timeout_seconds())) {
    ctx->Error("budget.trial_timeout_seconds", "must be 0 (no limit) or a duration such as 2h");
  }
  if (!(budget->time_limit_seconds() >= 0) || !std::isfinite(budget->time_limit_seconds())) {
    ctx->Error("budget.time_limit_seconds", "must be 0 (no limit) or a duration such as 12h");
  }
}

// What `submit` would refuse later: a spec must fit in one gRPC message (4 MiB by default, and the
// coordinator stores it in every study row), so anything near that size is refused here already.
void ValidateSize(const v1::StudySpec& spec, ValidationContext* ctx) {
  constexpr size_t kMaxDescription = 64 * 1024;
  constexpr size_t kMaxSpecBytes = 1024 * 1024;
  if (spec.description().size() > kMaxDescription) {
    ctx->Error("description", absl::StrCat("is ", spec.description().size(),
                                           " bytes; keep it under 64 KiB (put long notes in a "
                                           "file beside the study)"));
  } else if (spec.ByteSizeLong() > kMaxSpecBytes) {
    ctx->Error("name", absl::StrCat("the study is ", spec.ByteSizeLong(),
                                    " bytes as a spec; the limit is 1 MiB: shorten its longest "
                                    "lists (choices, enqueue, runner.env)"));
  }
}

void ValidateFinalStage(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::FinalStageSpec* final_stage = spec->mutable_final_stage();
  // Ask/tell studies have no trainer to retrain the best trial: no final stage unless asked for
  // (and then only handed out to an Ask that sets include_final).
  if (!final_stage->has_enabled()) final_stage->set_enabled(!AskTellOnly(*spec));
  if (AskTellOnly(*spec) && !final_stage->has_evaluate_test())
    final_stage->set_evaluate_test(false);
  if (final_stage->retrain_on() == v1::RETRAIN_ON_UNSPECIFIED) {
    final_stage->set_retrain_on(v1::RETRAIN_ON_TRAIN);
  }
  if (!final_stage->has_evaluate_test()) final_stage->set_evaluate_test(true);
  if (final_stage->enabled() && final_stage->retrain_on() == v1::RETRAIN_ON_REUSE) {
    const v1::RunnerSpec& runner = spec->runner();
    if (AskTellOnly(*spec)) {
      ctx->Error("final_stage.retrain_on",
                 "reuse evaluates the best trial's stored model, and an ask/tell study "
                 "(runner: none) stores none: use retrain_on: train");
    } else if (runner.type() == v1::RUNNER_TYPE_COMMAND && !runner.supports_evaluate()) {
      ctx->Error("final_stage.retrain_on",
                 "reuse starts the command with HPSEARCH_TRIAL_KIND=evaluate and "
                 "HPSEARCH_MODEL_DIR (the best trial's stored artifact) to evaluate it on test "
                 "without training, and this command does not say it can: once it does "
                 "(docs/control-plane.md, \"Command trials\"), set runner.supports_evaluate: true; "
                 "else use retrain_on: train");
    }
  }
  if (final_stage->enabled() && final_stage->evaluate_test()) {
    if (spec->data().test_file().empty()) {
      ctx->Error("data.test_file",
                 "is required by the final stage's test evaluation: set it, or set "
                 "final_stage.evaluate_test: false");
    } else {
      ValidateDataFile("data.test_file", spec->data().test_file(), spec->data().format(), ctx);
    }
  } else if (!spec->data().test_file().empty()) {
    ValidateDataFile("data.test_file", spec->data().test_file(), spec->data().format(), ctx);
  }
}

}  // namespace

std::vector<ValidationIssue> NormalizeStudySpec(v1::StudySpec* spec,
                                                const ValidationOptions& options) {
  ValidationContext ctx(options);
  std::vector<std::string> nul_fields;
  FindNulStrings(*spec, "", &nul_fields);
  if (!nul_fields.empty()) {
    // Checked first and alone: every later message would quote the string cut short.
    for (const std::string& field : nul_fields) {
      ctx.Error(field,
                "holds a NUL character (\"\\0\", \"\\x00\" or \"\\u0000\"): no name, path, "
                "command or text of a study may; remove it");
    }
    return ctx.TakeIssues();
  }
  ValidateName(spec, &ctx);
  ValidateModel(spec, &ctx);
  // An ask/tell study trains nothing here: data, training and fine-tuning options do not apply
  // (and are left out) unless given. A section holding only empty values counts as not given.
  if (AskTellOnly(*spec)) {
    if (spec->data().ByteSizeLong() == 0) spec->clear_data();
    if (spec->model().ByteSizeLong() == 0) spec->clear_model();
  }
  if (!AskTellOnly(*spec) || spec->has_data()) ValidateData(spec, &ctx);
  if (!AskTellOnly(*spec) || spec->has_training()) ValidateTraining(spec, &ctx);
  if (!AskTellOnly(*spec) || spec->has_fine_tune()) ValidateFineTune(spec, &ctx);
  ValidateRunner(spec, &ctx);
  internal::ValidateSearchSpace(spec, &ctx);
  internal::ValidateSampler(spec, &ctx);
  internal::ValidatePruner(spec, &ctx);
  ValidateObjective(spec, &ctx);
  ValidateBudget(spec, &ctx);
  internal::ValidateEnqueue(spec, &ctx);
  ValidateFinalStage(spec, &ctx);
  ValidateSize(*spec, &ctx);
  // Inside the files only once the spec around them holds together (columns named, files found).
  if (!ctx.has_errors()) {
    internal::CheckModelConfig(*spec, &ctx);
    internal::CheckDataFiles(*spec, &ctx);
  }
  return ctx.TakeIssues();
}

bool HasErrors(const std::vector<ValidationIssue>& issues) {
  return std::any_of(issues.begin(), issues.end(), [](const ValidationIssue& issue) {
    return issue.severity == ValidationIssue::Severity::kError;
  });
}

absl::Status IssuesToStatus(const std::vector<ValidationIssue>& issues) {
  std::vector<std::string> lines;
  for (const ValidationIssue& issue : issues) {
    if (issue.severity == ValidationIssue::Severity::kError) {
      lines.push_back(issue.field + ": " + issue.message);
    }
  }
  if (lines.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError("invalid study spec:\n" + absl::StrJoin(lines, "\n"));
}

}  // namespace hpsearch::server
