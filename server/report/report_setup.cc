// The report's "Experimental Setup" section.
#include <cctype>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "server/report/report_format.h"
#include "server/report/report_sections.h"
#include "server/study_file/study_view.h"

namespace hpsearch::server {
namespace {

std::string Time(int64_t unix_ms) {
  if (unix_ms == 0) return "—";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

std::string Number(double v) { return absl::StrFormat("%g", v); }

std::string Count(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// "name value, name value" for every field set in `message` except `type` (the spec is normalised,
// so every option of the chosen type is set, defaults included).
std::string OptionsText(const google::protobuf::Message& message) {
  const google::protobuf::Reflection* r = message.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  r->ListFields(message, &fields);
  std::vector<std::string> parts;
  for (const google::protobuf::FieldDescriptor* f : fields) {
    if (f->name() == "type" || f->is_repeated()) continue;
    std::string value;
    switch (f->cpp_type()) {
      case google::protobuf::FieldDescriptor::CPPTYPE_INT32:
        value = std::to_string(r->GetInt32(message, f));
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_INT64:
        value = std::to_string(r->GetInt64(message, f));
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_UINT32:
        value = std::to_string(r->GetUInt32(message, f));
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_UINT64:
        value = std::to_string(r->GetUInt64(message, f));
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_DOUBLE:
        value = Number(r->GetDouble(message, f));
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_BOOL:
        value = r->GetBool(message, f) ? "true" : "false";
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_ENUM: {
        // The study file's word: STARTUP_DESIGN_LATIN_HYPERCUBE -> latin_hypercube.
        std::string prefix;
        for (char c : f->enum_type()->name()) {
          if (std::isupper(static_cast<unsigned char>(c)) && !prefix.empty()) prefix += '_';
          prefix += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        value = EnumWord(r->GetEnum(message, f)->name(), prefix + "_");
        break;
      }
      case google::protobuf::FieldDescriptor::CPPTYPE_STRING:
        value = r->GetString(message, f);
        break;
      default:
        continue;
    }
    parts.push_back(absl::StrCat(f->name(), " ", value));
  }
  return absl::StrJoin(parts, ", ");
}

std::string MethodText(const v1::StudySpec& spec) {
  const v1::FineTuneSpec& ft = spec.fine_tune();
  const v1::LoraSpec& lora = ft.lora();
  std::string targets =
      lora.target_modules().empty() ? "c_attn" : absl::StrJoin(lora.target_modules(), ", ");
  std::string adapters =
      absl::StrCat("LoRA adapters (r ", lora.has_r() ? lora.r() : 8, ", alpha ",
                   Number(lora.has_alpha() ? lora.alpha() : 16), ", dropout ",
                   Number(lora.has_dropout() ? lora.dropout() : 0.05), ") on ", targets,
                   "; the classification head (`score`) trained in full");
  switch (ft.method()) {
    case v1::FINE_TUNE_METHOD_LORA:
      return absl::StrCat("LoRA: frozen full-precision base weights, ", adapters);
    case v1::FINE_TUNE_METHOD_FULL:
      return "full fine-tuning: every weight trained";
    default: {
      const v1::QuantizationSpec& q = ft.quantization();
      return absl::StrCat(
          "QLoRA: frozen base linear weights stored in NF4 (block size ",
          q.has_block_size() ? q.block_size() : 64, ", double quantisation ",
          !q.has_double_quant() || q.double_quant() ? "on" : "off", ", compute dtype ",
          EnumWord(v1::ComputeDtype_Name(q.compute_dtype()), "COMPUTE_DTYPE_"), "), ", adapters);
    }
  }
}

std::string DistributionText(const v1::ParameterSpec& p) {
  if (p.has_float_range()) {
    const auto& r = p.float_range();
    return absl::StrCat("| float | ", Number(r.low()), " – ", Number(r.high()), " | ",
                        r.log()        ? "log"
                        : r.has_step() ? "step " + Number(r.step())
                                       : "uniform",
                        " |");
  }
  if (p.has_int_range()) {
    const auto& r = p.int_range();
    return absl::StrCat("| int | ", r.low(), " – ", r.high(), " | ",
                        r.log() ? "log" : absl::StrCat("step ", r.has_step() ? r.step() : 1), " |");
  }
  std::vector<std::string> choices;
  for (const v1::ParamValue& c : p.categorical().choices()) choices.push_back(ParamValueText(c));
  return absl::StrCat("| categorical | ", absl::StrJoin(choices, ", "), " | — |");
}

void AppendTraining(const v1::StudySpec& spec, std::string* out) {
  std::set<std::string> searched;
  for (const v1::ParameterSpec& p : spec.search_space()) searched.insert(p.name());
  const v1::TrainingSpec& t = spec.training();
  std::vector<std::string> parts;
  auto add = [&](const std::string& name, bool has, const std::string& value) {
    if (searched.count(name)) {
      parts.push_back(absl::StrCat(name, " searched"));
    } else if (has) {
      parts.push_back(absl::StrCat(name, " ", value));
    }
  };
  add("learning_rate", t.has_learning_rate(), Number(t.learning_rate()));
  add("batch_size", t.has_batch_size(), std::to_string(t.batch_size()));
  add("epochs", t.has_epochs(), std::to_string(t.epochs()));
  add("weight_decay", t.has_weight_decay(), Number(t.weight_decay()));
  add("warmup_steps", t.has_warmup_steps(), std::to_string(t.warmup_steps()));
  add("max_grad_norm", t.has_max_grad_norm(), Number(t.max_grad_norm()));
  add("gradient_checkpointing", t.has_gradient_checkpointing(),
      t.gradient_checkpointing() ? "on" : "off");
  if (t.has_adam_beta1() || t.has_adam_beta2() || t.has_adam_epsilon()) {
    parts.push_back(absl::StrCat("AdamW betas (", Number(t.adam_beta1()), ", ",
                                 Number(t.adam_beta2()), "), epsilon ", Number(t.adam_epsilon())));
  }
  if (!parts.empty()) {
    absl::StrAppend(out, "- **Training**: ", absl::StrJoin(parts, ", "),
                    "; linear warmup then linear decay of the learning rate.\n");
  }
}

void AppendData(const v1::StudySpec& spec, const std::vector<v1::Trial>& trials, std::string* out) {
  const v1::DataSpec& d = spec.data();
  if (d.train_file().empty()) return;
  std::optional<int64_t> train_n = ReportedCount(trials, v1::TRIAL_KIND_SEARCH, "train_examples");
  std::optional<int64_t> val_n =
      ReportedCount(trials, v1::TRIAL_KIND_SEARCH, "validation_examples");
  std::optional<int64_t> test_n = ReportedCount(trials, v1::TRIAL_KIND_FINAL, "test_examples");
  std::optional<int64_t> classes = ReportedCount(trials, v1::TRIAL_KIND_SEARCH, "num_labels");
  absl::StrAppend(out, "- **Data**:\n  - Train file: `", d.train_file(), "`");
  if (train_n && val_n && d.validation_file().empty()) {
    absl::StrAppend(out, " (", Count(*train_n + *val_n), " examples)");
  }
  absl::StrAppend(out, "\n");
  if (d.validation_file().empty()) {
    absl::StrAppend(
        out, "  - Validation: ",
        Number(100 * (d.has_validation_fraction() ? d.validation_fraction() : 0.2)),
        "% of the train file split off (n_validation = ceil(fraction × n)), split seed ",
        d.has_split_seed() ? d.split_seed() : spec.seed(), ", ",
        d.has_stratify() && d.stratify() ? "stratified by label" : "not stratified", "\n");
  } else {
    absl::StrAppend(out, "  - Validation file: `", d.validation_file(), "`\n");
  }
  if (train_n && val_n) {
    absl::StrAppend(out, "  - Split sizes: ", Count(*train_n), " train / ", Count(*val_n),
                    " validation", test_n ? " / " + Count(*test_n) + " test" : "", "\n");
  }
  if (!d.test_file().empty()) absl::StrAppend(out, "  - Test file: `", d.test_file(), "`\n");
  absl::StrAppend(out, "  - Columns: text `", d.has_text_column() ? d.text_column() : "text",
                  "`, label `", d.has_label_column() ? d.label_column() : "label", "`; ",
                  classes ? Count(*classes) + " classes" : "classes from the train file",
                  d.labels().empty() ? " (ids in lower-cased name order)" : " (ids as listed)",
                  "; at most ", d.has_max_length() ? d.max_length() : 128,
                  " tokens per text; evaluation batch ",
                  d.has_eval_batch_size() ? d.eval_batch_size() : 8, "\n");
}

void AppendSearch(const v1::StudySpec& spec, std::string* out) {
  if (!spec.search_space().empty()) {
    absl::StrAppend(out, "- **Search space**:\n\n",
                    "  | Parameter | Type | Range / choices | Scale |\n",
                    "  |-----------|------|-----------------|-------|\n");
    for (const v1::ParameterSpec& p : spec.search_space()) {
      absl::StrAppend(out, "  | ", p.name(), " ", DistributionText(p), "\n");
    }
    absl::StrAppend(out, "\n");
  } else {
    absl::StrAppend(out, "- **Search space**: none (every trial is enqueued).\n");
  }
  const v1::SamplerType sampler = spec.sampler().type() == v1::SAMPLER_TYPE_UNSPECIFIED
                                      ? v1::SAMPLER_TYPE_RANDOM
                                      : spec.sampler().type();
  std::string sampler_options = OptionsText(spec.sampler());
  absl::StrAppend(out, "- **Sampler**: ", EnumWord(v1::SamplerType_Name(sampler), "SAMPLER_TYPE_"),
                  sampler_options.empty() ? "" : " (" + sampler_options + ")",
                  ", seeded from the study seed", spec.enqueue().empty() ? "" : "; ",
                  spec.enqueue().empty()
                      ? ""
                      : absl::StrCat(spec.enqueue_size(), " enqueued trial",
                                     spec.enqueue_size() == 1 ? "" : "s", " ran first"),
                  "\n");
  const v1::PrunerType pruner = spec.pruner().type() == v1::PRUNER_TYPE_UNSPECIFIED
                                    ? v1::PRUNER_TYPE_NONE
                                    : spec.pruner().type();
  std::string pruner_options = OptionsText(spec.pruner());
  absl::StrAppend(
      out, "- **Pruner**: ", EnumWord(v1::PrunerType_Name(pruner), "PRUNER_TYPE_"),
      pruner == v1::PRUNER_TYPE_NONE || pruner_options.empty() ? "" : " (" + pruner_options + ")",
      "\n");
  absl::StrAppend(
      out, "- **Objective**: ", MinimizeObjective(spec) ? "minimize" : "maximize", " `",
      ObjectiveMetric(spec), "` at each trial's ",
      spec.objective().from_epoch() == v1::EPOCH_SELECTION_BEST ? "best epoch" : "last epoch",
      "\n");
  StudyBudget budget = BudgetOf(spec);
  absl::StrAppend(out, "- **Budget**: ", budget.n_trials, " search trials, ", budget.parallelism,
                  " at a time, up to ", budget.max_retries,
                  " retries per trial (after a lost lease or a retryable failure)");
  if (budget.trial_timeout > absl::ZeroDuration()) {
    absl::StrAppend(out, ", ", Number(absl::ToDoubleSeconds(budget.trial_timeout)),
                    " s per trial at most");
  }
  if (budget.time_limit > absl::ZeroDuration()) {
    absl::StrAppend(out, ", no new trial after ", Number(absl::ToDoubleSeconds(budget.time_limit)),
                    " s");
  }
  absl::StrAppend(out, "\n- **Seed**: ", spec.seed(), "; search trial k trains with seed ",
                  spec.seed(), " + k, and the final trial reuses its source trial's seed\n");
}

}  // namespace

std::optional<int64_t> ReportedCount(const std::vector<v1::Trial>& trials, v1::TrialKind kind,
                                     const std::string& name) {
  for (const v1::Trial& t : trials) {
    if (t.kind() != kind) continue;
    auto it = t.result().extra().find(name);
    if (it != t.result().extra().end() && std::isfinite(it->second)) {
      return static_cast<int64_t>(std::llround(it->second));
    }
  }
  return std::nullopt;
}

void AppendSetupSection(const v1::Study& study, const std::vector<v1::Trial>& trials,
                        std::string* out) {
  const v1::StudySpec& spec = study.spec();
  absl::StrAppend(out, "## Experimental Setup\n");
  if (!spec.description().empty()) absl::StrAppend(out, spec.description(), "\n\n");
  const v1::ModelSpec& model = spec.model();
  if (model.has_random_init()) {
    const auto& a = model.random_init();
    absl::StrAppend(out, "- **Model**: GPT2ForSequenceClassification on a GPT-2 architecture ",
                    "initialised at random (", a.n_layer(), " layers, ", a.n_embd(), " wide, ",
                    a.n_head(), " heads, ", a.n_positions(),
                    " positions). Random initialisation shows the system working, not "
                    "pretrained accuracy.\n");
  } else if (!model.path().empty()) {
    absl::StrAppend(out, "- **Model**: GPT2ForSequenceClassification from the checkpoint `",
                    model.path(),
                    "`; the classification head (`score.weight`) is newly "
                    "initialised, as the seed experiment notes.\n");
  }
  if (!model.tokenizer().empty() && model.tokenizer() != model.path()) {
    absl::StrAppend(out, "- **Tokenizer**: `", model.tokenizer(), "`\n");
  }
  if (UsesBuiltInTrainer(spec)) {
    absl::StrAppend(out, "- **Method**: ", MethodText(spec), "\n");
    AppendTraining(spec, out);  // another runner trains as it likes
  } else if (spec.runner().type() == v1::RUNNER_TYPE_COMMAND) {
    absl::StrAppend(out, "- **Runner**: command `", absl::StrJoin(spec.runner().command(), " "),
                    "` (one process per trial)\n");
  } else {
    absl::StrAppend(out, "- **Runner**: ",
                    EnumWord(v1::RunnerType_Name(spec.runner().type()), "RUNNER_TYPE_"), "\n");
  }
  AppendData(spec, trials, out);
  AppendSearch(spec, out);
  if (FinalStageEnabled(spec)) {
    const bool on_validation = spec.final_stage().retrain_on() == v1::RETRAIN_ON_TRAIN_VALIDATION;
    const bool test = !spec.final_stage().has_evaluate_test() || spec.final_stage().evaluate_test();
    const v1::Trial* final_trial = nullptr;
    for (const v1::Trial& t : trials) {
      if (t.kind() == v1::TRIAL_KIND_FINAL) final_trial = &t;
    }
    bool converted = false;
    if (final_trial != nullptr && FinalTrialReused(spec, *final_trial, &converted)) {
      absl::StrAppend(out, "- **Final stage**: ",
                      converted ? absl::StrCat("`retrain_on: train` ran as `reuse`: the final "
                                               "stage reused trial ",
                                               final_trial->source_trial_number(),
                                               "'s model instead of retraining it (a retrain on "
                                               "the same data with the same seed would repeat "
                                               "it exactly)")
                                : absl::StrCat("`retrain_on: reuse`: trial ",
                                               final_trial->source_trial_number(),
                                               "'s stored model, not retrained"),
                      test ? ", evaluated on the test file" : "", "\n");
    } else if (spec.final_stage().retrain_on() == v1::RETRAIN_ON_REUSE) {
      absl::StrAppend(out,
                      "- **Final stage**: the best search trial's stored model is reused "
                      "without retraining",
                      test ? ", then evaluated on the test file" : "", "\n");
    } else {
      absl::StrAppend(out,
                      "- **Final stage**: the best search trial is retrained with its parameters "
                      "and seed on ",
                      on_validation ? "train + validation" : "train",
                      test ? ", then evaluated on the test file" : "",
                      FinalRetrainConverted(spec, /*source_model_stored=*/true)
                          ? " (or, when its model is stored, that model is reused: the retrain "
                            "would repeat it exactly)"
                          : "",
                      "\n");
    }
  } else {
    absl::StrAppend(out, "- **Final stage**: disabled\n");
  }
  absl::StrAppend(out, "- **Started**: ", Time(study.created_unix_ms()),
                  "; **ended**: ", Time(study.ended_unix_ms()));
  if (study.ended_unix_ms() > study.created_unix_ms() && study.created_unix_ms() > 0) {
    absl::StrAppendFormat(out, " (%.1f s)",
                          (study.ended_unix_ms() - study.created_unix_ms()) / 1000.0);
  }
  absl::StrAppend(out, "\n\n");
}

}  // namespace hpsearch::server
