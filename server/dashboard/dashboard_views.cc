#include "server/dashboard/dashboard_views.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "server/report/dashboard_charts.h"
#include "server/report/importance.h"
#include "server/report/report_charts.h"
#include "server/report/report_format.h"
#include "server/report/study_progress.h"
#include "server/study_file/study_view.h"

namespace hpsearch::dashboard {
namespace {

using nlohmann::json;

json Number(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return nullptr;
  return *v;
}

std::string StudyStateWord(v1::StudyState state) {
  return server::EnumWord(v1::StudyState_Name(state), "STUDY_STATE_");
}

json ParamValueJson(const v1::ParamValue& v) {
  switch (v.kind_case()) {
    case v1::ParamValue::kDoubleValue:
      return Number(v.double_value());
    case v1::ParamValue::kIntValue:
      return v.int_value();
    case v1::ParamValue::kBoolValue:
      return v.bool_value();
    default:
      return v.string_value();
  }
}

json Summary(const db::StoredStudy& stored, absl::Time now) {
  const v1::Study& study = stored.study;
  const v1::StudySpec& spec = study.spec();
  std::vector<const v1::Trial*> trials;
  for (const db::StoredTrial& stored_trial : stored.trials) trials.push_back(&stored_trial.trial);
  const server::StudyProgress progress = server::EstimateStudyProgress(study, trials, now);
  json out;
  out["id"] = study.id();
  out["name"] = spec.name();
  out["state"] = StudyStateWord(study.state());
  out["state_reason"] = study.state_reason();
  out["metric"] = server::ObjectiveMetric(spec);
  out["direction"] = server::MinimizeObjective(spec) ? "minimize" : "maximize";
  out["budget_used"] = progress.search_ended;
  out["budget_total"] = progress.search_budget;
  out["running"] = progress.search_running;
  out["best_trial"] = study.has_best_trial_number() ? json(study.best_trial_number()) : json();
  out["best_value"] =
      study.has_best_objective_value() ? Number(study.best_objective_value()) : json();
  out["elapsed_seconds"] = progress.elapsed_seconds;
  out["eta_seconds"] = Number(progress.eta_seconds);
  json counts = json::object();
  for (const auto& [state, count] : study.trial_counts()) counts[state] = count;
  out["counts"] = counts;
  return out;
}

std::string UrlEncode(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

json EpochJson(const v1::EpochMetrics& e) {
  json out;
  out["epoch"] = e.epoch();
  for (const char* metric : {"train_loss", "val_loss", "val_accuracy", "val_f1", "val_f1_macro"}) {
    std::optional<double> v = server::MetricValue(e, metric);
    if (v) out[metric] = Number(v);
  }
  for (const auto& [name, value] : e.extra()) out[name] = Number(value);
  return out;
}

json ProtoJson(const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &text, options).ok()) return nullptr;
  return json::parse(text, nullptr, false);
}

json TrialJson(const v1::StudySpec& spec, const v1::Trial& t, absl::Time now) {
  json out;
  out["number"] = t.number();
  out["kind"] = t.kind() == v1::TRIAL_KIND_FINAL ? "final" : "search";
  out["state"] = server::TrialStateWord(t.state());
  json params = json::object();
  json params_text = json::object();
  for (const v1::ParamAssignment& p : t.params()) {
    params[p.name()] = ParamValueJson(p.value());
    params_text[p.name()] = server::ParamValueText(p.value());
  }
  out["params"] = params;
  out["params_text"] = params_text;
  out["objective"] = t.kind() == v1::TRIAL_KIND_SEARCH
                         ? Number(server::PlottedObjective(spec, t))
                         : (t.has_objective_value() ? Number(t.objective_value()) : json());
  json epochs = json::array();
  for (const v1::EpochMetrics& e : t.epochs()) epochs.push_back(EpochJson(e));
  out["epochs"] = epochs;
  out["attempts"] = t.attempt();
  out["worker"] = t.worker_id();
  out["error"] = t.error();
  json attempt_errors = json::array();
  for (const v1::TrialAttempt& a : t.attempts()) {
    if (!a.error().empty())
      attempt_errors.push_back(absl::StrCat("attempt ", a.attempt(), ": ", a.error()));
  }
  out["attempt_errors"] = attempt_errors;
  out["started_unix_ms"] = t.started_unix_ms();
  out["ended_unix_ms"] = t.ended_unix_ms();
  if (t.kind() == v1::TRIAL_KIND_FINAL) out["source_trial"] = t.source_trial_number();
  // Why a trial was pruned, and where a running one is with its time left (study_progress.h).
  if (t.has_prune_reason()) out["prune_reason"] = ProtoJson(t.prune_reason());
  if (t.has_progress()) out["progress"] = ProtoJson(t.progress());
  if (std::optional<double> left = server::TrialRemainingSeconds(spec, t, now)) {
    out["eta_seconds"] = *left;
  }
  return out;
}

json FinalJson(const v1::Trial& t) {
  json out;
  out["number"] = t.number();
  out["source_trial"] = t.source_trial_number();
  out["state"] = server::TrialStateWord(t.state());
  json test = json::object();
  const v1::TestMetrics& m = t.result().test();
  if (m.has_test_accuracy()) test["test_accuracy"] = Number(m.test_accuracy());
  if (m.has_test_f1()) test["test_f1"] = Number(m.test_f1());
  if (m.has_test_f1_macro()) test["test_f1_macro"] = Number(m.test_f1_macro());
  if (m.has_test_loss()) test["test_loss"] = Number(m.test_loss());
  for (const auto& [name, value] : m.extra()) test[name] = Number(value);
  out["test"] = test;
  json train = json::object();
  const v1::TrainSummary& s = t.result().train();
  if (s.global_steps() > 0) {
    train["global_steps"] = s.global_steps();
    train["train_loss"] = Number(s.train_loss());
    train["runtime_seconds"] = Number(s.runtime_seconds());
    train["samples_per_second"] = Number(s.samples_per_second());
    train["epochs"] = Number(s.epochs());
  }
  out["train"] = train;
  return out;
}

// The figure's SVG without its XML declaration, which has no place inside an HTML page.
json Chart(const std::string& id, const server::ReportFigure& figure) {
  std::string svg = figure.svg;
  if (svg.rfind("<?xml", 0) == 0) svg.erase(0, svg.find("?>") + 2);
  svg.erase(0, svg.find_first_not_of("\n"));
  return json{{"id", id}, {"title", figure.caption}, {"svg", svg}};
}

}  // namespace

json StudySummary(const db::StoredStudy& study, absl::Time now) { return Summary(study, now); }

json StudiesView(const std::vector<db::StoredStudy>& studies, absl::Time now) {
  json list = json::array();
  for (const db::StoredStudy& s : studies) list.push_back(Summary(s, now));
  return json{{"studies", list}};
}

json StudyView(const db::StoredStudy& stored, absl::Time now,
               const db::ArtifactRecord* final_artifact) {
  const v1::Study& study = stored.study;
  const v1::StudySpec& spec = study.spec();
  json out = Summary(stored, now);
  json params = json::array();
  for (const v1::ParameterSpec& p : spec.search_space()) params.push_back(p.name());
  out["params"] = params;
  std::vector<v1::Trial> trials;
  trials.reserve(stored.trials.size());
  for (const db::StoredTrial& t : stored.trials) trials.push_back(t.trial);
  json trial_list = json::array();
  const v1::Trial* final_trial = nullptr;
  for (const v1::Trial& t : trials) {
    trial_list.push_back(TrialJson(spec, t, now));
    if (t.kind() == v1::TRIAL_KIND_FINAL) final_trial = &t;
  }
  out["trials"] = trial_list;

  json charts = json::array();
  charts.push_back(Chart("history", server::OptimizationHistoryFigure(study, trials)));
  std::vector<v1::Trial> search;
  for (const v1::Trial& t : trials) {
    if (t.kind() == v1::TRIAL_KIND_SEARCH) search.push_back(t);
  }
  for (const std::string& metric : server::ReportedEpochMetrics(search)) {
    charts.push_back(
        Chart(absl::StrCat("curves-", metric), server::MetricCurvesFigure(study, trials, metric)));
  }
  if (!spec.search_space().empty()) {
    charts.push_back(Chart("parallel", server::ParallelCoordinatesFigure(study, trials)));
    std::vector<server::ReportFigure> slices = server::ParameterFigures(study, trials);
    for (int i = 0; i < spec.search_space_size() && i < static_cast<int>(slices.size()); ++i) {
      charts.push_back(
          Chart(absl::StrCat("slice-", server::FileSafe(spec.search_space(i).name())), slices[i]));
    }
  }
  if (!spec.search_space().empty()) {
    absl::StatusOr<server::StudyImportance> importance =
        server::ComputeParameterImportance(spec, trials);
    if (importance.ok()) {
      json parameters = json::array();
      for (const server::ParameterImportance& p : importance->parameters) {
        parameters.push_back({{"name", p.name}, {"importance", Number(p.importance)}});
      }
      out["importance"] = {{"parameters", parameters},
                           {"trials_used", importance->trials_used},
                           {"skipped_trials", importance->skipped_trials}};
      charts.push_back(Chart("importance", server::ImportanceFigure(study, *importance)));
    } else {
      out["importance"] = {{"error", std::string(importance.status().message())}};
    }
  }
  if (final_trial != nullptr && final_trial->epochs_size() > 0) {
    charts.push_back(Chart("final-curves", server::TrialCurvesFigure(study, *final_trial)));
  }
  out["charts"] = charts;
  out["final"] = final_trial != nullptr ? FinalJson(*final_trial) : json();
  if (final_trial != nullptr && final_artifact != nullptr) {
    json files = json::array();
    for (const db::ArtifactFileRecord& f : final_artifact->files) {
      files.push_back(
          {{"name", f.name},
           {"bytes", f.bytes},
           {"sha256", f.sha256},
           {"url", absl::StrCat("api/artifact?study=", study.id(), "&file=", UrlEncode(f.name))}});
    }
    out["final"]["files"] = files;
  }
  return out;
}

}  // namespace hpsearch::dashboard
