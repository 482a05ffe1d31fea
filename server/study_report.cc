#include "server/study_report.h"

#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "server/study_view.h"

namespace hpsearch::server {
namespace {

std::string Value(const v1::ParamValue& value) {
  switch (value.kind_case()) {
    case v1::ParamValue::kDoubleValue:
      return absl::StrFormat("%.5g", value.double_value());
    case v1::ParamValue::kIntValue:
      return std::to_string(value.int_value());
    case v1::ParamValue::kBoolValue:
      return value.bool_value() ? "true" : "false";
    default:
      return value.string_value();
  }
}

std::string Metric(std::optional<double> value) {
  return value ? absl::StrFormat("%.4f", *value) : "—";
}

std::string Word(const std::string& enum_name, const std::string& prefix) {
  std::string word = enum_name.substr(prefix.size());
  for (char& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return word;
}

std::string TrialStateWord(v1::TrialState state) {
  return Word(v1::TrialState_Name(state), "TRIAL_STATE_");
}

std::string Time(int64_t unix_ms) {
  if (unix_ms == 0) return "—";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

void Parameters(std::string* out,
                const google::protobuf::RepeatedPtrField<v1::ParamAssignment>& ps) {
  absl::StrAppend(out, "- **Parameters**:\n");
  for (const v1::ParamAssignment& p : ps) {
    absl::StrAppend(out, "  - ", TitleCase(p.name()), ": ", Value(p.value()), "\n");
  }
}

// The seed's table (Epoch, Training Loss, Validation Loss, Accuracy, F1 Score) plus any extra
// metric.
void EpochTable(std::string* out,
                const google::protobuf::RepeatedPtrField<v1::EpochMetrics>& epochs) {
  std::set<std::string> extra;
  for (const v1::EpochMetrics& e : epochs) {
    for (const auto& [name, value] : e.extra()) extra.insert(name);
  }
  absl::StrAppend(out, "  | Epoch | Training Loss | Validation Loss | Accuracy | F1 Score |");
  for (const std::string& name : extra) absl::StrAppend(out, " ", TitleCase(name), " |");
  absl::StrAppend(out, "\n  |-------|---------------|-----------------|----------|----------|");
  for (size_t i = 0; i < extra.size(); ++i) absl::StrAppend(out, "------|");
  absl::StrAppend(out, "\n");
  for (const v1::EpochMetrics& e : epochs) {
    absl::StrAppend(out, "  | ", e.epoch(), " | ",
                    Metric(e.has_train_loss() ? std::optional(e.train_loss()) : std::nullopt),
                    " | ", Metric(e.has_val_loss() ? std::optional(e.val_loss()) : std::nullopt),
                    " | ",
                    Metric(e.has_val_accuracy() ? std::optional(e.val_accuracy()) : std::nullopt),
                    " | ", Metric(e.has_val_f1() ? std::optional(e.val_f1()) : std::nullopt), " |");
    for (const std::string& name : extra) {
      auto it = e.extra().find(name);
      absl::StrAppend(
          out, " ", Metric(it == e.extra().end() ? std::nullopt : std::optional(it->second)), " |");
    }
    absl::StrAppend(out, "\n");
  }
}

bool SameEpochs(const v1::Trial& a, const v1::Trial& b) {
  if (a.epochs_size() != b.epochs_size() || a.epochs_size() == 0) return false;
  for (int i = 0; i < a.epochs_size(); ++i) {
    const v1::EpochMetrics& x = a.epochs(i);
    const v1::EpochMetrics& y = b.epochs(i);
    auto close = [](double p, double q) { return std::abs(p - q) <= 5e-5; };
    if (!close(x.train_loss(), y.train_loss()) || !close(x.val_loss(), y.val_loss()) ||
        !close(x.val_accuracy(), y.val_accuracy()) || !close(x.val_f1(), y.val_f1())) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string TitleCase(const std::string& snake) {
  static const std::map<std::string, std::string> kKnown = {{"epochs", "Number of Epochs"},
                                                            {"val_accuracy", "Accuracy"},
                                                            {"val_f1", "F1 Score"},
                                                            {"val_loss", "Validation Loss"},
                                                            {"train_loss", "Training Loss"}};
  auto known = kKnown.find(snake);
  if (known != kKnown.end()) return known->second;
  std::string out;
  bool start = true;
  for (char c : snake) {
    if (c == '_') {
      out += ' ';
      start = true;
    } else {
      out += start ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      start = false;
    }
  }
  return out;
}

std::string RenderStudyReport(const v1::Study& study, const std::vector<v1::Trial>& trials) {
  const v1::StudySpec& spec = study.spec();
  const std::string metric = ObjectiveMetric(spec);
  const std::string metric_title = TitleCase(metric);
  std::string out;
  absl::StrAppend(&out, "# Study report: ", spec.name(), "\n\n");
  absl::StrAppend(
      &out, "This report summarizes the hyperparameter search `", spec.name(), "` (study ",
      study.id(),
      "), written by `hpsearch report` from the results database. The objective was to ",
      MinimizeObjective(spec) ? "minimize " : "maximize ", "`", metric, "` (",
      spec.objective().from_epoch() == v1::EPOCH_SELECTION_BEST ? "best" : "last",
      " epoch of each trial). The study is **",
      Word(v1::StudyState_Name(study.state()), "STUDY_STATE_"), "**",
      study.state_reason().empty() ? "" : ": " + study.state_reason(), ".\n\n");

  absl::StrAppend(&out, "## Experimental Setup\n");
  if (spec.model().has_random_init()) {
    const auto& a = spec.model().random_init();
    absl::StrAppend(&out, "- **Model**: GPT-2 architecture initialised at random (", a.n_layer(),
                    " layers, ", a.n_embd(), " wide, ", a.n_head(), " heads).\n");
  } else if (!spec.model().path().empty()) {
    absl::StrAppend(&out, "- **Model**: GPT2ForSequenceClassification from `", spec.model().path(),
                    "`.\n");
  }
  absl::StrAppend(
      &out, "- **Runner**: ", Word(v1::RunnerType_Name(spec.runner().type()), "RUNNER_TYPE_"));
  if (spec.runner().type() == v1::RUNNER_TYPE_COMMAND) {
    std::string command;
    for (const std::string& part : spec.runner().command()) absl::StrAppend(&command, " ", part);
    absl::StrAppend(&out, " (`", command.empty() ? "" : command.substr(1), "`)");
  }
  absl::StrAppend(&out, "\n");
  if (!spec.data().train_file().empty()) {
    absl::StrAppend(
        &out, "- **Data**: train `", spec.data().train_file(), "`",
        spec.data().test_file().empty() ? "" : ", test `" + spec.data().test_file() + "`", "\n");
  }
  StudyBudget budget = BudgetOf(spec);
  absl::StrAppend(&out, "- **Search**: ",
                  Word(v1::SamplerType_Name(spec.sampler().type() == v1::SAMPLER_TYPE_UNSPECIFIED
                                                ? v1::SAMPLER_TYPE_RANDOM
                                                : spec.sampler().type()),
                       "SAMPLER_TYPE_"),
                  " sampler, seed ", spec.seed(), ", ", budget.n_trials, " trials, parallelism ",
                  budget.parallelism, ", up to ", budget.max_retries, " retries per trial.\n");
  absl::StrAppend(&out, "- **Started**: ", Time(study.created_unix_ms()),
                  "; **ended**: ", Time(study.ended_unix_ms()), ".\n\n");

  int search = 0;
  for (const v1::Trial& t : trials) search += t.kind() == v1::TRIAL_KIND_SEARCH;
  absl::StrAppend(&out, "## Trial Results\n", search,
                  " search trials were run. The metrics of each trial's finished attempt were "
                  "recorded for each epoch.\n\n");
  const v1::Trial* final_trial = nullptr;
  std::map<int, const v1::Trial*> by_number;
  for (const v1::Trial& t : trials) {
    by_number[t.number()] = &t;
    if (t.kind() == v1::TRIAL_KIND_FINAL) {
      final_trial = &t;
      continue;
    }
    absl::StrAppend(&out, "### Trial ", t.number(), "\n");
    Parameters(&out, t.params());
    absl::StrAppend(&out, "- **State**: ", TrialStateWord(t.state()), " (attempt ", t.attempt(),
                    ", seed ", t.seed(), ")\n");
    for (const v1::TrialAttempt& a : t.attempts()) {
      absl::StrAppend(&out, "  - attempt ", a.attempt(), " ended ", TrialStateWord(a.state()),
                      a.error().empty() ? "" : ": " + a.error().substr(0, a.error().find('\n')),
                      "\n");
    }
    if (t.epochs_size() > 0) {
      absl::StrAppend(&out, "- **Results**:\n");
      EpochTable(&out, t.epochs());
    }
    if (t.has_objective_value()) {
      absl::StrAppend(&out, "- **Final ", metric_title,
                      "**: ", absl::StrFormat("%.4f", t.objective_value()), "\n");
    }
    if (t.state() == v1::TRIAL_STATE_FAILED && !t.error().empty()) {
      absl::StrAppend(&out, "- **Error**:\n  ```\n  ", t.error(), "\n  ```\n");
    }
    absl::StrAppend(&out, "\n");
  }

  absl::StrAppend(&out, "## Best Trial\n");
  if (study.has_best_trial_number() && by_number.count(study.best_trial_number())) {
    const v1::Trial& best = *by_number[study.best_trial_number()];
    absl::StrAppend(&out, "Trial ", best.number(), ".\n");
    Parameters(&out, best.params());
    absl::StrAppend(&out, "- **Best ", metric_title,
                    "**: ", absl::StrFormat("%.4f", study.best_objective_value()), "\n");
    absl::StrAppend(&out, "- **Why**: ", study.state_reason(), "\n\n");
  } else {
    absl::StrAppend(&out,
                    "No search trial completed, so there is no best trial and no final "
                    "training.\n\n");
  }

  if (final_trial != nullptr) {
    const v1::Trial& f = *final_trial;
    bool on_validation = spec.final_stage().retrain_on() == v1::RETRAIN_ON_TRAIN_VALIDATION;
    absl::StrAppend(&out, "## Final Model Training\n", "The final model (trial ", f.number(), ", ",
                    TrialStateWord(f.state()),
                    ") was trained with the best hyperparameters from "
                    "Trial ",
                    f.source_trial_number(), " and its seed ", f.seed(), " on ",
                    on_validation ? "train + validation" : "train", ".");
    auto source = by_number.find(f.source_trial_number());
    if (on_validation) {
      absl::StrAppend(&out, " Validation columns are empty: the validation data was trained on.");
    } else if (source != by_number.end() && SameEpochs(f, *source->second)) {
      absl::StrAppend(&out, " The results matched those of Trial ", f.source_trial_number(),
                      ", confirming the reproducibility of the configuration.");
    } else if (source != by_number.end() && f.epochs_size() > 0) {
      absl::StrAppend(&out, " Its epochs differ from Trial ", f.source_trial_number(),
                      "'s: the run is not bit-reproducible.");
    }
    absl::StrAppend(&out, "\n");
    if (f.epochs_size() > 0) {
      absl::StrAppend(&out, "- **Results**:\n");
      EpochTable(&out, f.epochs());
    }
    if (f.result().has_train()) {
      const v1::TrainSummary& t = f.result().train();
      absl::StrAppend(
          &out, "- **Training Metrics**:\n", "  - Global Steps: ", t.global_steps(), "\n",
          absl::StrFormat("  - Training Loss: %.4f\n", t.train_loss()),
          absl::StrFormat("  - Train Runtime: %.2f seconds\n", t.runtime_seconds()),
          absl::StrFormat("  - Train Samples per Second: %.3f\n", t.samples_per_second()),
          absl::StrFormat("  - Train Steps per Second: %.3f\n", t.steps_per_second()),
          absl::StrFormat("  - Total FLOPs: %.4e\n", t.total_flos()),
          absl::StrFormat("  - Epochs: %.1f\n", t.epochs()));
    }
    if (f.state() == v1::TRIAL_STATE_FAILED) {
      absl::StrAppend(&out, "- **Error**:\n  ```\n  ", f.error(), "\n  ```\n");
    }
    absl::StrAppend(&out, "\n## Test Set Evaluation\n");
    if (f.result().has_test()) {
      const v1::TestMetrics& t = f.result().test();
      absl::StrAppend(&out,
                      "The final model was evaluated on the test set:\n- **Test Metrics**:\n");
      if (t.has_test_loss())
        absl::StrAppendFormat(&out, "  - Evaluation Loss: %.4f\n", t.test_loss());
      if (t.has_test_accuracy()) {
        absl::StrAppendFormat(&out, "  - Evaluation Accuracy: %.4f\n", t.test_accuracy());
      }
      if (t.has_test_f1())
        absl::StrAppendFormat(&out, "  - Evaluation F1 Score: %.4f\n", t.test_f1());
      if (t.has_test_f1_macro()) {
        absl::StrAppendFormat(&out, "  - Evaluation F1 Score (macro): %.4f\n", t.test_f1_macro());
      }
      for (const auto& [name, value] : t.extra()) {
        absl::StrAppendFormat(&out, "  - %s: %.4f\n", TitleCase(name), value);
      }
      absl::StrAppendFormat(&out, "  - Evaluation Runtime: %.4f seconds\n", t.runtime_seconds());
      absl::StrAppendFormat(&out, "  - Samples per Second: %.4f\n", t.samples_per_second());
      absl::StrAppendFormat(&out, "  - Steps per Second: %.4f\n", t.steps_per_second());
      if (f.result().has_train()) {
        absl::StrAppendFormat(&out, "  - Epochs: %.1f\n", f.result().train().epochs());
      }
    } else {
      absl::StrAppend(&out, "No test metrics were recorded",
                      spec.data().test_file().empty() ? " (the study names no test file)" : "",
                      ".\n");
    }
  }
  return out;
}

}  // namespace hpsearch::server
