#include "server/report/study_report.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "db/results_store.h"
#include "server/report/importance.h"
#include "server/report/report_format.h"
#include "server/report/report_sections.h"
#include "server/study_file/study_view.h"

namespace hpsearch::server {
namespace {

std::string Metric(std::optional<double> value) {
  return value ? absl::StrFormat("%.4f", *value) : "—";
}

template <typename M>
std::optional<double> Opt(bool has, M value) {
  return has ? std::optional<double>(value) : std::nullopt;
}

void Parameters(std::string* out,
                const google::protobuf::RepeatedPtrField<v1::ParamAssignment>& ps) {
  absl::StrAppend(out, "- **Parameters**:\n");
  for (const v1::ParamAssignment& p : ps) {
    absl::StrAppend(out, "  - ", TitleCase(p.name()), ": ", ParamValueText(p.value()), "\n");
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
    absl::StrAppend(out, "  | ", e.epoch(), " | ", Metric(Opt(e.has_train_loss(), e.train_loss())),
                    " | ", Metric(Opt(e.has_val_loss(), e.val_loss())), " | ",
                    Metric(Opt(e.has_val_accuracy(), e.val_accuracy())), " | ",
                    Metric(Opt(e.has_val_f1(), e.val_f1())), " |");
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

std::string Seconds(int64_t from_ms, int64_t to_ms) {
  if (from_ms <= 0 || to_ms < from_ms) return "";
  return absl::StrFormat("%.1f s", (to_ms - from_ms) / 1000.0);
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

// An error as a fenced block inside a list item: every line indented with the item.
void ErrorBlock(std::string* out, const std::string& error) {
  std::string indented = error;
  for (size_t at = indented.find('\n'); at != std::string::npos; at = indented.find('\n', at + 3)) {
    indented.replace(at, 1, "\n  ");
  }
  absl::StrAppend(out, "- **Error**:\n  ```\n  ", indented, "\n  ```\n");
}

void Figure(std::string* out, const ReportFigure& f) {
  absl::StrAppend(out, "![", f.caption, "](", f.file_name, ")\n");
}

struct Counts {
  int search = 0, complete = 0, pruned = 0, failed = 0, unfinished = 0;
};

Counts CountTrials(const std::vector<v1::Trial>& trials) {
  Counts c;
  for (const v1::Trial& t : trials) {
    if (t.kind() != v1::TRIAL_KIND_SEARCH) continue;
    ++c.search;
    switch (t.state()) {
      case v1::TRIAL_STATE_COMPLETE:
        ++c.complete;
        break;
      case v1::TRIAL_STATE_PRUNED:
        ++c.pruned;
        break;
      case v1::TRIAL_STATE_FAILED:
        ++c.failed;
        break;
      default:
        ++c.unfinished;
    }
  }
  return c;
}

void TrialSection(const v1::Study& study, const v1::Trial& t, std::string* out) {
  const v1::StudySpec& spec = study.spec();
  const std::string metric_title = TitleCase(ObjectiveMetric(spec));
  absl::StrAppend(out, "### Trial ", t.number(), "\n");
  Parameters(out, t.params());
  absl::StrAppend(out, "- **State**: ", TrialStateWord(t.state()), " (attempt ", t.attempt(),
                  ", seed ", t.seed(), t.worker_id().empty() ? "" : ", worker " + t.worker_id());
  std::string runtime = Seconds(t.started_unix_ms(), t.ended_unix_ms());
  if (!runtime.empty()) absl::StrAppend(out, ", ", runtime);
  absl::StrAppend(out, ")\n");
  if (!t.attempts().empty()) {
    absl::StrAppend(out, "- **Earlier attempts** (kept as history):\n");
    for (const v1::TrialAttempt& a : t.attempts()) {
      absl::StrAppend(out, "  - attempt ", a.attempt(),
                      a.worker_id().empty() ? "" : " on " + a.worker_id(), ": ",
                      TrialStateWord(a.state()), " after ", a.epochs_size(), " epoch",
                      a.epochs_size() == 1 ? "" : "s",
                      a.error().empty() ? "" : " — " + FirstLine(a.error()), "\n");
    }
  }
  if (t.epochs_size() > 0) {
    absl::StrAppend(out, "- **Results**:\n");
    EpochTable(out, t.epochs());
  }
  if (t.has_objective_value()) {
    absl::StrAppend(out, "- **Final ", metric_title,
                    "**: ", absl::StrFormat("%.4f", t.objective_value()), "\n");
  }
  if (t.state() == v1::TRIAL_STATE_PRUNED) {
    std::optional<double> last = PlottedObjective(spec, t);
    absl::StrAppend(out, "- **Pruned** after epoch ",
                    t.epochs().empty() ? 0 : t.epochs(t.epochs_size() - 1).epoch(),
                    ": the pruner stopped it (", metric_title, " then ", Metric(last),
                    "); pruned trials are not candidates for the best trial\n");
    if (t.has_prune_reason()) {
      absl::StrAppend(out, "- **Why pruned**: ", PruneReasonText(t.prune_reason()), "\n");
    }
  }
  if (t.result().has_train() && t.result().train().global_steps() > 0) {
    const v1::TrainSummary& s = t.result().train();
    absl::StrAppendFormat(
        out, "- **Training**: %d steps, %.2f s, %.1f samples/s, training loss %.4f\n",
        s.global_steps(), s.runtime_seconds(), s.samples_per_second(), s.train_loss());
  }
  if (t.state() == v1::TRIAL_STATE_FAILED && !t.error().empty()) {
    ErrorBlock(out, t.error());
  }
  if (t.epochs_size() > 0) {
    absl::StrAppend(out, "- ![Trial ", t.number(), " learning curves](",
                    TrialCurvesFileName(t.number()), ")\n");
  }
  absl::StrAppend(out, "\n");
}

void BestTrialSection(const v1::Study& study, const std::map<int, const v1::Trial*>& by_number,
                      std::string* out) {
  const v1::StudySpec& spec = study.spec();
  const std::string metric = ObjectiveMetric(spec);
  const bool minimize = MinimizeObjective(spec);
  absl::StrAppend(out, "## Best Trial\n");
  // Candidates: complete search trials with an objective, as the coordinator chooses.
  std::vector<const v1::Trial*> candidates;
  const v1::Trial* best = nullptr;
  for (const auto& [number, t] : by_number) {
    if (t->kind() != v1::TRIAL_KIND_SEARCH || t->state() != v1::TRIAL_STATE_COMPLETE ||
        !t->has_objective_value()) {
      continue;
    }
    candidates.push_back(t);
    if (best == nullptr || BetterObjective(spec, t->objective_value(), best->objective_value())) {
      best = t;
    }
  }
  if (study.has_best_trial_number() && by_number.count(study.best_trial_number())) {
    best = by_number.at(study.best_trial_number());
  }
  if (best == nullptr) {
    absl::StrAppend(out,
                    "No search trial completed, so there is no best trial and no final "
                    "training.\n\n");
    return;
  }
  const bool decided = study.has_best_trial_number();
  absl::StrAppend(out, decided ? "" : "The search is still running; the best trial so far is ",
                  decided ? "Trial " : "trial ", best->number(), ".\n");
  Parameters(out, best->params());
  absl::StrAppend(out, "- **Best ", TitleCase(metric),
                  "**: ", absl::StrFormat("%.4f", best->objective_value()), "\n");
  if (!best->epochs().empty()) {
    const v1::EpochMetrics& last = best->epochs(best->epochs_size() - 1);
    if (last.has_val_f1() && metric != "val_f1") {
      absl::StrAppendFormat(out, "- **F1 Score** (last epoch): %.4f\n", last.val_f1());
    }
  }
  int pruned = 0, failed = 0;
  for (const auto& [number, t] : by_number) {
    if (t->kind() != v1::TRIAL_KIND_SEARCH) continue;
    pruned += t->state() == v1::TRIAL_STATE_PRUNED;
    failed += t->state() == v1::TRIAL_STATE_FAILED;
  }
  std::string why = absl::StrCat(
      "It has the ", minimize ? "lowest" : "highest", " `", metric, "` (the objective is to ",
      minimize ? "minimize" : "maximize", " it, taking each trial's ",
      spec.objective().from_epoch() == v1::EPOCH_SELECTION_BEST ? "best" : "last",
      " epoch) among the ", candidates.size(), " complete search trial",
      candidates.size() == 1 ? "" : "s");
  if (pruned + failed > 0) {
    absl::StrAppend(&why, "; ", pruned, " pruned and ", failed,
                    " failed trials are not candidates");
  }
  absl::StrAppend(&why, ".");
  std::vector<int> tied;
  const v1::Trial* runner_up = nullptr;
  for (const v1::Trial* t : candidates) {
    if (t->objective_value() == best->objective_value()) {
      tied.push_back(t->number());
    } else if (runner_up == nullptr ||
               BetterObjective(spec, t->objective_value(), runner_up->objective_value())) {
      runner_up = t;
    }
  }
  if (tied.size() > 1) {
    absl::StrAppend(&why, " Trials ", absl::StrJoin(tied, ", "), " tie at ",
                    absl::StrFormat("%.6g", best->objective_value()),
                    "; a tie goes to the lowest trial number.");
  } else if (candidates.size() > 1) {
    absl::StrAppend(&why, " No other trial tied (a tie would go to the lowest trial number).");
  }
  if (runner_up != nullptr) {
    absl::StrAppendFormat(&why, " The runner-up, trial %d, reached %.4f (%.4f %s).",
                          runner_up->number(), runner_up->objective_value(),
                          std::abs(best->objective_value() - runner_up->objective_value()),
                          minimize ? "higher" : "lower");
  }
  absl::StrAppend(out, "- **Why**: ", why, "\n");
  if (!study.state_reason().empty()) {
    absl::StrAppend(out, "- **Coordinator**: ", study.state_reason(), "\n");
  }
  absl::StrAppend(out, "\n");
}

void FinalSections(const v1::Study& study, const v1::Trial& f,
                   const std::map<int, const v1::Trial*>& by_number, std::string* out) {
  const v1::StudySpec& spec = study.spec();
  const bool on_validation = spec.final_stage().retrain_on() == v1::RETRAIN_ON_TRAIN_VALIDATION;
  bool converted = false;
  const bool reused = FinalTrialReused(spec, f, &converted);
  if (reused) {
    absl::StrAppend(out, "## Final Model\n");
    if (converted) {
      absl::StrAppend(out, "The final stage reused trial ", f.source_trial_number(),
                      "'s model instead of retraining it: a retrain on the same data with the "
                      "same seed would repeat it exactly. ");
    } else {
      absl::StrAppend(out, "The final stage reused trial ", f.source_trial_number(),
                      "'s stored model without retraining it (`retrain_on: reuse`). ");
    }
    absl::StrAppend(out, "The final trial (trial ", f.number(),
                    ") fetched that model from the coordinator and only evaluated it: it trained "
                    "no epoch.\n");
  } else {
    absl::StrAppend(out, "## Final Model Training\n", "The final model (trial ", f.number(), ", ",
                    TrialStateWord(f.state()),
                    ") was trained with the best hyperparameters from Trial ",
                    f.source_trial_number(), " and its seed ", f.seed(), " on ",
                    on_validation ? "train + validation" : "train", ".");
  }
  auto source = by_number.find(f.source_trial_number());
  if (reused) {
  } else if (on_validation) {
    absl::StrAppend(out,
                    " The validation columns are empty (—): the validation texts were part of the "
                    "training data, so no validation metric was measured; the test evaluation "
                    "below is the held-out measure.");
  } else if (source != by_number.end() && SameEpochs(f, *source->second)) {
    absl::StrAppend(out, " The results matched those of Trial ", f.source_trial_number(),
                    ", confirming the reproducibility of the configuration.");
  } else if (source != by_number.end() && f.epochs_size() > 0) {
    absl::StrAppend(out, " Its epochs differ from Trial ", f.source_trial_number(),
                    "'s: the run is not bit-reproducible.");
  }
  if (!reused) absl::StrAppend(out, "\n");
  if (f.epochs_size() > 0) {
    absl::StrAppend(out, "- **Results**:\n");
    EpochTable(out, f.epochs());
  }
  if (f.result().has_train()) {
    const v1::TrainSummary& t = f.result().train();
    absl::StrAppend(out, "- **Training Metrics**:\n", "  - Global Steps: ", t.global_steps(), "\n",
                    absl::StrFormat("  - Training Loss: %.4f\n", t.train_loss()),
                    absl::StrFormat("  - Train Runtime: %.2f seconds\n", t.runtime_seconds()),
                    absl::StrFormat("  - Train Samples per Second: %.3f\n", t.samples_per_second()),
                    absl::StrFormat("  - Train Steps per Second: %.3f\n", t.steps_per_second()),
                    absl::StrFormat("  - Total FLOPs: %.4e\n", t.total_flos()),
                    absl::StrFormat("  - Epochs: %.1f\n", t.epochs()));
  }
  if (f.state() == v1::TRIAL_STATE_FAILED) {
    ErrorBlock(out, f.error());
  }
  if (f.epochs_size() > 0) {
    absl::StrAppend(out, "- ![Final trial learning curves](", TrialCurvesFileName(f.number()),
                    ")\n");
  }
  absl::StrAppend(out, "\n## Test Set Evaluation\n");
  if (!f.result().has_test()) {
    absl::StrAppend(out, "No test metrics were recorded",
                    spec.data().test_file().empty() ? " (the study names no test file)" : "",
                    ".\n\n");
    return;
  }
  const v1::TestMetrics& t = f.result().test();
  std::optional<int64_t> n = ReportedCount({f}, v1::TRIAL_KIND_FINAL, "test_examples");
  absl::StrAppend(out, "The final model was evaluated on the test set",
                  n ? absl::StrCat(" (", *n, " texts)") : "", ":\n- **Test Metrics**:\n");
  if (t.has_test_loss()) absl::StrAppendFormat(out, "  - Evaluation Loss: %.4f\n", t.test_loss());
  if (t.has_test_accuracy()) {
    absl::StrAppendFormat(out, "  - Evaluation Accuracy: %.4f\n", t.test_accuracy());
  }
  if (t.has_test_f1()) {
    absl::StrAppendFormat(out, "  - Evaluation F1 Score (weighted): %.4f\n", t.test_f1());
  }
  if (t.has_test_f1_macro()) {
    absl::StrAppendFormat(out, "  - Evaluation F1 Score (macro): %.4f\n", t.test_f1_macro());
  }
  for (const auto& [name, value] :
       std::map<std::string, double>(t.extra().begin(), t.extra().end())) {
    absl::StrAppendFormat(out, "  - %s: %.4f\n", TitleCase(name), value);
  }
  absl::StrAppendFormat(out, "  - Evaluation Runtime: %.4f seconds\n", t.runtime_seconds());
  absl::StrAppendFormat(out, "  - Samples per Second: %.4f\n", t.samples_per_second());
  absl::StrAppendFormat(out, "  - Steps per Second: %.4f\n", t.steps_per_second());
  if (f.result().has_train()) {
    absl::StrAppendFormat(out, "  - Epochs: %.1f\n", f.result().train().epochs());
  }
  if (source != by_number.end() && source->second->has_objective_value() &&
      ObjectiveMetric(spec) == "val_accuracy" && t.has_test_accuracy()) {
    absl::StrAppendFormat(out,
                          "- **Validation vs test**: validation accuracy %.4f (trial %d), test "
                          "accuracy %.4f (%+.4f).\n",
                          source->second->objective_value(), source->second->number(),
                          t.test_accuracy(), t.test_accuracy() - source->second->objective_value());
  }
  absl::StrAppend(out, "\n");
}

// "## Parameter Importance": a table, most important first, and its bar chart; or why there is
// none yet.
void ImportanceSection(const v1::Study& study, const std::vector<v1::Trial>& trials,
                       StudyReport* report) {
  std::string& out = report->markdown;
  const std::string metric = ObjectiveMetric(study.spec());
  absl::StrAppend(&out, "## Parameter Importance\n");
  absl::StatusOr<StudyImportance> importance =
      ComputeParameterImportance(study.spec(), trials, ImportanceOptions());
  if (!importance.ok()) {
    absl::StrAppend(&out, "Not computed: ", importance.status().message(), "\n\n");
    return;
  }
  const ImportanceOptions defaults;
  absl::StrAppend(&out, "The share of the variance of `", metric,
                  "` each searched parameter explains on its own (fANOVA on a random forest of ",
                  defaults.n_trees, " trees fitted to the ", importance->trials_used,
                  " complete search trials, as Optuna's default importance evaluator; the "
                  "shares sum to 1",
                  importance->skipped_trials > 0
                      ? absl::StrCat("; ", importance->skipped_trials,
                                     " complete trials lacking a parameter value were left out")
                      : "",
                  "). `hpsearch importance` prints the same numbers.\n\n");
  absl::StrAppend(&out, "| Parameter | Importance |\n|-----------|------------|\n");
  for (const ParameterImportance& p : importance->parameters) {
    absl::StrAppend(&out, "| ", p.name, " | ", absl::StrFormat("%.4f", p.importance), " |\n");
  }
  absl::StrAppend(&out, "\n");
  report->figures.push_back(ImportanceFigure(study, *importance));
  Figure(&out, report->figures.back());
  absl::StrAppend(&out, "\n");
}

}  // namespace

StudyReport BuildStudyReport(const v1::Study& study, const std::vector<v1::Trial>& trials) {
  const v1::StudySpec& spec = study.spec();
  const std::string metric = ObjectiveMetric(spec);
  StudyReport report;
  std::string& out = report.markdown;
  absl::StrAppend(&out, "# Study report: ", spec.name(), "\n\n");
  absl::StrAppend(&out, "This report summarizes the hyperparameter search `", spec.name(),
                  "` (study ", study.id(),
                  "), written by hpsearch from the results database. The objective was to ",
                  MinimizeObjective(spec) ? "minimize " : "maximize ", "`", metric, "` (",
                  spec.objective().from_epoch() == v1::EPOCH_SELECTION_BEST ? "best" : "last",
                  " epoch of each trial). The study is **",
                  EnumWord(v1::StudyState_Name(study.state()), "STUDY_STATE_"), "**",
                  study.state_reason().empty() ? "" : ": " + study.state_reason(), ".\n\n");
  AppendSetupSection(study, trials, &out);

  const Counts counts = CountTrials(trials);
  report.figures.push_back(OptimizationHistoryFigure(study, trials));
  report.figures.push_back(LearningCurvesFigure(study, trials));
  absl::StrAppend(
      &out, "## Trial Results\n", counts.search, " search trial",
      counts.search == 1 ? " was" : "s were", " run: ", counts.complete, " complete, ",
      counts.pruned, " pruned, ", counts.failed, " failed",
      counts.unfinished > 0 ? absl::StrCat(", ", counts.unfinished, " unfinished") : "",
      ". The metrics of each trial's finished attempt were recorded for each epoch.\n\n");
  Figure(&out, report.figures[0]);
  Figure(&out, report.figures[1]);
  absl::StrAppend(&out, "\n");

  const v1::Trial* final_trial = nullptr;
  std::map<int, const v1::Trial*> by_number;
  for (const v1::Trial& t : trials) {
    by_number[t.number()] = &t;
    if (t.epochs_size() > 0) report.figures.push_back(TrialCurvesFigure(study, t));
    if (t.kind() == v1::TRIAL_KIND_FINAL) {
      final_trial = &t;
      continue;
    }
    TrialSection(study, t, &out);
  }

  if (!spec.search_space().empty()) {
    absl::StrAppend(&out, "## Parameters vs Objective\n", "Each searched parameter against `",
                    metric,
                    "`: complete trials as circles, pruned ones as hollow triangles at their last "
                    "epoch, failed ones as crosses, the best trial as a diamond.\n\n");
    for (ReportFigure& f : ParameterFigures(study, trials)) {
      Figure(&out, f);
      report.figures.push_back(std::move(f));
    }
    absl::StrAppend(&out, "\n");
  }

  if (!spec.search_space().empty()) ImportanceSection(study, trials, &report);

  BestTrialSection(study, by_number, &out);
  if (final_trial != nullptr) FinalSections(study, *final_trial, by_number, &out);

  absl::StrAppend(&out, "## Summary\n- **Trials**: ", counts.search, " search (", counts.complete,
                  " complete, ", counts.pruned, " pruned, ", counts.failed, " failed)",
                  final_trial != nullptr ? " + 1 final" : "", "\n");
  if (study.has_best_trial_number()) {
    absl::StrAppendFormat(&out, "- **Best**: trial %d, %s %.4f\n", study.best_trial_number(),
                          metric, study.best_objective_value());
  }
  if (final_trial != nullptr && final_trial->result().test().has_test_accuracy()) {
    const v1::TestMetrics& t = final_trial->result().test();
    absl::StrAppendFormat(&out, "- **Test**: accuracy %.4f, F1 weighted %.4f, F1 macro %.4f\n",
                          t.test_accuracy(), t.test_f1(), t.test_f1_macro());
  }
  absl::StrAppend(&out, "- **Pictures**: ", report.figures.size(),
                  " SVG files beside this report\n");
  return report;
}

std::string RenderStudyReport(const v1::Study& study, const std::vector<v1::Trial>& trials) {
  return BuildStudyReport(study, trials).markdown;
}

absl::StatusOr<std::string> WriteStudyReport(const StudyReport& report, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create the report folder ", dir, ": ", error.message()));
  }
  auto write = [&](const std::string& name, const std::string& content) -> absl::Status {
    const fs::path path = fs::path(dir) / name;
    const fs::path temp = fs::path(dir) / ("." + name + ".tmp");
    {
      std::ofstream file(temp, std::ios::binary | std::ios::trunc);
      file << content;
      file.close();
      if (!file) {
        fs::remove(temp, error);
        return absl::PermissionDeniedError(absl::StrCat("cannot write ", temp.string()));
      }
    }
    fs::rename(temp, path, error);
    if (error) {
      fs::remove(temp, error);
      return absl::PermissionDeniedError(
          absl::StrCat("cannot rename ", temp.string(), " to ", path.string()));
    }
    return absl::OkStatus();
  };
  for (const ReportFigure& f : report.figures) {
    if (absl::Status s = write(f.file_name, f.svg); !s.ok()) return s;
  }
  if (absl::Status s = write("report.md", report.markdown); !s.ok()) return s;
  return (fs::path(dir) / "report.md").string();
}

absl::StatusOr<db::StoredStudy> LoadStudyFromDatabase(const std::string& db_path,
                                                      const std::string& study) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(db_path, error)) {
    return absl::NotFoundError(absl::StrCat("no results database at ", db_path,
                                            std::filesystem::exists(db_path, error)
                                                ? " (it is not a regular file)"
                                                : " (no such file)"));
  }
  db::DatabaseOptions options;
  options.read_only = true;
  absl::StatusOr<std::unique_ptr<db::ResultsStore>> store =
      db::ResultsStore::Open(db_path, options);
  if (!store.ok()) return store.status();
  // An unknown study's NOT_FOUND names the studies there are (ResultsStore::LoadStudy).
  return (*store)->LoadStudy(study);
}

absl::StatusOr<std::string> WriteStudyReportFromDatabase(const std::string& db_path,
                                                         const std::string& study,
                                                         const std::string& dir) {
  absl::StatusOr<db::StoredStudy> stored = LoadStudyFromDatabase(db_path, study);
  if (!stored.ok()) return stored.status();
  std::vector<v1::Trial> trials;
  for (db::StoredTrial& t : stored->trials) trials.push_back(std::move(t.trial));
  return WriteStudyReport(BuildStudyReport(stored->study, trials), dir);
}

}  // namespace hpsearch::server
